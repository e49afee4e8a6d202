--- flextell.redis_store{ redis = conn | command = fn, key = "flextell:tokens:app" }: tokens in
-- Redis, shared by every holder of a grant on any machine that reaches the server.
--
-- It speaks to Redis only through EVAL, over the client the caller already has:
--   redis = conn        an object with conn:eval(script, numkeys, keys..., args...), such as
--                       lua-redis (redis.connect) or resty.redis
--   command = fn        fn("EVAL", script, numkeys, ...) -> reply, for any other client
-- Replies are read as those clients give them: a nil bulk as nil (or ngx.null), a status as
-- true or "OK". An error reply or a broken connection (raised, or returned as nil, message) is
-- `network` `redis_error`. The calls block for one round trip with a blocking client.
--
-- Keys: `key` is a hash { version = n, tokens = JSON }; `key .. ":lock"` the refresh lock, a
-- random owner value set with NX and PX (the ttl), deleted only by its owner (a script checks).
-- @module flextell

local core = require "flextell.core"
local common = require "flextell.stores.common"

local error, pairs, pcall, setmetatable, tonumber, tostring, type =
  error, pairs, pcall, setmetatable, tonumber, tostring, type
local math_ceil = math.ceil

local Store = {}
Store.__index = Store
Store.__name = "flextell.RedisStore"

local Lock = {}
Lock.__index = Lock
Lock.__name = "flextell.RedisLock"

local LOAD = [[return { redis.call('HGET', KEYS[1], 'version'), redis.call('HGET', KEYS[1], 'tokens') }]]

-- ARGV: expected version ("" for any), tokens JSON. Returns the new version, or -1.
local SAVE = [[
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then return -1 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'tokens', ARGV[2])
return current + 1]]

local LOCK = [[return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0]]

local UNLOCK = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0]]

local function redis_error(message)
  message = tostring(message)
  if message:find("bad request", 1, true) and ngx then -- luacheck: ignore 113
    message = message .. " (under nginx a connection belongs to the request or timer that made it, and " ..
      "token refreshes run in a timer: give redis_store a command function that connects where it runs)"
  end
  return common.error("network", "redis_error", "token store (redis): " .. message)
end

local function is_null(v)
  return v == nil or v == false or (type(v) == "userdata" and tostring(v) == "userdata: NULL")
    or (ngx and v == ngx.null) -- luacheck: ignore 113
end

-- Runs a script; reply or nil, err.
local function eval(self, script, ...)
  local ok, reply, why
  if self.command then
    ok, reply, why = pcall(self.command, "EVAL", script, ...)
  else
    local conn = self.redis
    ok, reply, why = pcall(conn.eval, conn, script, ...)
  end
  if not ok then return nil, redis_error(reply) end
  if reply == nil and why ~= nil then return nil, redis_error(why) end
  return reply
end

--- A token store in Redis, from `redis_store`.
-- Errors are kind `network`, code `redis_error` (a refused connection, an error reply). With a
-- blocking client the store blocks for one round trip, inside tasks too.
-- @type RedisStore

--- store:load() -> tokens | nil, version | nil, err (network redis_error)
-- @function RedisStore:load
-- @treturn[1] table|nil tokens the tokens, nil when there are none yet
-- @treturn[1] integer version the version (0 when empty)
-- @return[2] nil, err (kind `network`, code `redis_error`)
function Store:load()
  local reply, err = eval(self, LOAD, 1, self.key)
  if err then return nil, err end
  if type(reply) ~= "table" then return nil, redis_error("unexpected reply to the load script") end
  local version, text = reply[1], reply[2]
  if is_null(version) then return nil, 0 end
  version = tonumber(version)
  if not common.is_version(version) then
    return nil, redis_error("the version in " .. self.key .. " is not an integer")
  end
  if is_null(text) then return nil, version end
  local t, why, shape = common.decode(tostring(text))
  if not t then
    return nil, redis_error("the tokens in " .. self.key .. (shape and " are not a JSON object" or ": " .. why))
  end
  return common.copy(t), version
end

--- store:save(tokens, version) -> true, new_version | false | nil, err: compare-and-set by script.
-- @function RedisStore:save
-- @tparam table tokens the tokens
-- @tparam integer|nil version the version loaded (nil: whatever it holds)
-- @treturn[1] true
-- @treturn[1] integer new_version
-- @treturn[2] false when another holder saved since `version`
-- @return[3] nil, err (kind `network`, code `redis_error`)
function Store:save(tokens, version)
  local t = common.tokens_arg(tokens)
  local text = core.json_encode(t)
  local reply, err = eval(self, SAVE, 1, self.key, version == nil and "" or tostring(version), text)
  if err then return nil, err end
  reply = tonumber(reply)
  if reply == nil then return nil, redis_error("unexpected reply to the save script") end
  if reply < 0 then return false end
  return true, reply
end

--- store:lock{ ttl = s, wait = s } -> lock | nil, "busy" | nil, err. One try, never a wait.
-- @function RedisStore:lock
-- @tparam table opts `ttl` (seconds), `wait` (seconds the caller is ready to keep trying)
-- @treturn[1] RedisLock the lock
-- @return[2] nil, "busy"
-- @return[3] nil, err (kind `network`, code `redis_error`)
function Store:lock(opts)
  local ttl = common.lock_args(opts, "lock")
  local owner = core.random_token(16)
  local reply, err = eval(self, LOCK, 1, self.lock_key, owner, tostring(math_ceil(ttl * 1000)))
  if err then return nil, err end
  if tonumber(reply) ~= 1 then return nil, "busy" end
  return setmetatable({ store = self, owner = owner }, Lock)
end

--- The refresh lock of a `RedisStore`, from `RedisStore:lock`.
-- @type RedisLock

--- lock:unlock() -> true | false (it had expired and maybe another holder has it now) | nil, err
-- @function RedisLock:unlock
-- @treturn[1] boolean
-- @return[2] nil, err (kind `network`, code `redis_error`)
function Lock:unlock()
  local s = self.store
  local reply, err = eval(s, UNLOCK, 1, s.lock_key, self.owner)
  if err then return nil, err end
  return tonumber(reply) == 1
end

return function(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'redis_store' (table expected)", 2) end
  local conn, command, key = opts.redis, opts.command, opts.key
  for k in pairs(opts) do
    if k ~= "redis" and k ~= "command" and k ~= "key" then
      error("redis_store: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  if (conn == nil) == (command == nil) then
    error("redis_store: give exactly one of 'redis' (a connection) and 'command' (a function)", 2)
  end
  if command ~= nil and type(command) ~= "function" then error("redis_store: 'command' must be a function", 2) end
  if conn ~= nil then
    local ok, has_eval = pcall(function() return type(conn.eval) == "function" end)
    if not (ok and has_eval) then error("redis_store: 'redis' must be a connection with an eval method", 2) end
  end
  if type(key) ~= "string" or key == "" then error("redis_store: 'key' must be a non-empty string", 2) end
  return setmetatable({ redis = conn, command = command, key = key, lock_key = key .. ":lock" }, Store)
end
