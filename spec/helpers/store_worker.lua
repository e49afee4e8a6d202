-- One holder of a shared grant, as a cron job is: a process of its own that makes one call and
-- prints what happened as one JSON object. Set by the environment:
--   FX_URL       the sandbox's API base URL
--   FX_STORE     file:<path> | redis:<port>:<key>
--   FX_DEADLINE  the call's deadline in seconds (optional)
--   FX_TIMEOUT   the client's timeout in seconds (optional; a refresh under the lock is bounded
--                by it plus a second, and the lock's ttl by that plus 2 s)
--   FX_HANG      "reload": stop for good in the reload under the store's lock, before the token
--                request goes out (a holder that hangs or is killed there)
local flextell = require "flextell"

local env = os.getenv
local kind, a, b = env("FX_STORE"):match("^(%w+):([^:]+):?(.*)$")
local store
if kind == "file" then
  store = flextell.token_file(a)
else
  require "spec.helpers.redis" -- lua-redis's path on Lua 5.4
  local redis = require "redis"
  store = flextell.redis_store { redis = redis.connect("127.0.0.1", tonumber(a)), key = b }
end

if env("FX_HANG") == "reload" then
  local load, n = store.load, 0
  store.load = function(self) -- 1: at creation, 2: the peek, 3: the reload under the lock
    n = n + 1
    if n == 3 then
      io.write("locked\n")
      io.stdout:flush()
      while true do os.execute("sleep 1") end
    end
    return load(self)
  end
end

local client = flextell.new { base_url = env("FX_URL"), client_id = "sandbox-client",
  client_secret = "sandbox-secret", token_store = store, timeout = tonumber(env("FX_TIMEOUT") or "") }
local data, err = client:get("/v1/customers/1", nil, { deadline = tonumber(env("FX_DEADLINE") or "") })
if data then
  io.write(flextell.json.encode { ok = true, id = data.id, access_token = client:tokens().access_token })
else
  io.write(flextell.json.encode { kind = err.kind, code = err.code, message = err.message })
end
