-- A short tour of lua-flextell against the local sandbox: OAuth from client credentials, CRUD,
-- paging and errors. Run it with `make demo`.
local flextell = require "flextell"
local sandbox = require "flextell.sandbox"

local sb = assert(sandbox.start { tls = true }) -- a local Flextell on 127.0.0.1, HTTPS

local client = flextell.new {
  base_url = sb.https_url, ca_file = sb.ca_file, -- for the real API, leave both out
  client_id = sb.client_id, client_secret = sb.client_secret, redirect_uri = sb.redirect_uri,
  on_token = function(tokens) print("tokens updated, valid until " .. os.date("!%H:%M:%SZ", tokens.expires_at)) end,
}

-- 1. Authorize: the user approves on the consent page and comes back to the redirect URI.
local url, state, verifier = client:authorize_url { scope = "customers:read customers:write", pkce = true }
local redirect = sb:approve(url) -- what a browser would land on after "Approve"
assert(client:exchange_code(redirect, { state = state, code_verifier = verifier }))

-- 2. Create, read, update.
local customers = client:resource("/v1/customers")
local ada = assert(customers:create { first_name = "Ada", last_name = "Lovelace", email = "ada@example.com" })
print("created customer " .. ada.id .. ": " .. ada.first_name .. " " .. ada.last_name)
local fetched = assert(customers:get(ada.id))
fetched.phone = "+44 20 7946 0000"
assert(customers:update(ada.id, fetched))
print("phone is now " .. assert(customers:get(ada.id)).phone)

-- 3. List with paging: the iterator fetches page after page, one at a time.
local count = 0
for customer in customers:each { per_page = 20, sort_by = "id", sort_order = "desc" } do
  count = count + 1
  if count == 1 then print("newest customer: " .. customer.first_name) end
end
print(count .. " customers in all")

-- 4. Errors are values you can act on.
local _, err = customers:get(999999)
print("get 999999 -> " .. err.kind .. " " .. err.status .. " " .. err.code .. ": " .. err.message)

-- 5. Delete, and see it gone.
assert(customers:delete(ada.id))
local _, gone = customers:get(ada.id)
print("after delete -> HTTP " .. gone.status)

client:close()
sb:stop()
