-- A cron job that shares one OAuth grant with every other job on the machine: the tokens live
-- in a token file (0600, replaced atomically, with a lock), so when the access token expires
-- exactly one job refreshes it and the others take the new tokens, and a rotated refresh token
-- is never spent twice. Authorize once (flextell login, or client:exchange_code with the same
-- file); after that, run as many jobs as you like, at the same time if they happen to.
--   FLEXTELL_CLIENT_ID=... FLEXTELL_CLIENT_SECRET=... FLEXTELL_TOKEN_FILE=~/.flextell-tokens.json \
--     lua5.4 examples/cron_job.lua
local flextell = require "flextell"

local store = flextell.token_file(assert(os.getenv("FLEXTELL_TOKEN_FILE"), "set FLEXTELL_TOKEN_FILE"))
local client = flextell.new {
  base_url = os.getenv("FLEXTELL_BASE_URL"),
  client_id = assert(os.getenv("FLEXTELL_CLIENT_ID"), "set FLEXTELL_CLIENT_ID"),
  client_secret = assert(os.getenv("FLEXTELL_CLIENT_SECRET"), "set FLEXTELL_CLIENT_SECRET"),
  token_store = store,
}

local tenants, err = client:tenants()
if not tenants then
  io.stderr:write(tostring(err), "\n")
  -- reauth_required: the grant is gone (revoked, expired); someone has to authorize again
  os.exit(err.kind == "auth" and 3 or 1)
end
print(#tenants .. " tenants")
client:close()
