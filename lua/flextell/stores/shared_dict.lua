--- flextell.shared_dict_store(name[, key]): tokens in an nginx lua_shared_dict, shared by every
-- worker of one nginx (lua_shared_dict <name> 1m; in the http block).
--
-- Keys (prefix `key`, default "flextell:tokens"): key .. ":v" the version, key .. ":t" the tokens
-- (JSON), key .. ":lock" the refresh lock (an owner, with the ttl as the dict's expiry, so the
-- lock of a worker that died goes by itself). A shared dict's operations are each atomic across
-- the workers; the few that must go together (compare-and-set, unlock by owner) run under a
-- short mutex of the dict's own (add with a 1 s expiry), which they hold without yielding.
-- @module flextell

local core = require "flextell.core"
local common = require "flextell.stores.common"

local ngx = ngx
local error, setmetatable, tostring, type = error, setmetatable, tostring, type

local Store = {}
Store.__index = Store
Store.__name = "flextell.SharedDictStore"

local Lock = {}
Lock.__index = Lock
Lock.__name = "flextell.SharedDictLock"

local function dict_error(message)
  return common.error("usage", "shared_dict_error", "token store (lua_shared_dict): " .. tostring(message))
end

-- Runs fn under the dict's mutex: a spin of at most about 1 s (the mutex's own expiry).
local function with_mutex(self, fn)
  local dict, key = self.dict, self.key .. ":mutex"
  for _ = 1, 1000 do
    local ok, err = dict:add(key, true, 1)
    if ok then
      local a, b = fn()
      dict:delete(key)
      return a, b
    end
    if err ~= "exists" then return nil, dict_error(err) end
    ngx.sleep(0.001)
  end
  return nil, dict_error("the dict's mutex stayed taken")
end

--- A token store in an nginx `lua_shared_dict`, from `shared_dict_store`.
-- @type SharedDictStore

--- store:load() -> tokens | nil, version | nil, err
-- @function SharedDictStore:load
-- @treturn[1] table|nil tokens the tokens, nil when there are none yet
-- @treturn[1] integer version the version (0 when empty)
-- @return[2] nil, err
function Store:load()
  local version = self.dict:get(self.key .. ":v")
  if version == nil then return nil, 0 end
  local text = self.dict:get(self.key .. ":t")
  if text == nil then return nil, version end
  local t, why, shape = common.decode(text)
  if not t then return nil, dict_error(shape and "the tokens are not a JSON object" or "the tokens: " .. why) end
  return common.copy(t), version
end

--- store:save(tokens, version) -> true, new_version | false | nil, err
-- @function SharedDictStore:save
-- @tparam table tokens the tokens
-- @tparam integer|nil version the version loaded (nil: whatever it holds)
-- @treturn[1] true
-- @treturn[1] integer new_version
-- @treturn[2] false when another holder saved since `version`
-- @return[3] nil, err
function Store:save(tokens, version)
  local t = common.tokens_arg(tokens)
  local text = core.json_encode(t)
  return with_mutex(self, function()
    local current = self.dict:get(self.key .. ":v") or 0
    if version ~= nil and version ~= current then return false end
    local ok, err = self.dict:set(self.key .. ":t", text)
    if not ok then return nil, dict_error(err) end
    ok, err = self.dict:set(self.key .. ":v", current + 1)
    if not ok then return nil, dict_error(err) end
    return true, current + 1
  end)
end

--- store:lock{ ttl = s, wait = s } -> lock | nil, "busy" | nil, err
-- @function SharedDictStore:lock
-- @tparam table opts `ttl` (seconds, the lock's expiry in the dict), `wait` (seconds the caller is
--   ready to keep trying)
-- @treturn[1] SharedDictLock the lock
-- @return[2] nil, "busy"
-- @return[3] nil, err
function Store:lock(opts)
  local ttl = common.lock_args(opts, "lock")
  local owner = core.random_token(16)
  local ok, err = self.dict:add(self.key .. ":lock", owner, ttl)
  if ok then return setmetatable({ store = self, owner = owner }, Lock) end
  if err == "exists" then return nil, "busy" end
  return nil, dict_error(err)
end

--- Reserves a slot of the rate-limit window for a call about to be sent (`pace = true`).
--- The rate-limit window shared by the workers (pace = true), as the memory store's: the
-- answer's numbers in the dict, and the calls in flight counted with incr, so a slot is taken
-- atomically across the workers.
-- @function SharedDictStore:rate_reserve
-- @treturn[1] true send
-- @treturn[2] false
-- @treturn[2] number seconds to wait before asking again
function Store:rate_reserve()
  local d, k = self.dict, self.key
  local limit, remaining, reset = d:get(k .. ":rl_limit"), d:get(k .. ":rl_remaining"), d:get(k .. ":rl_reset")
  local n = d:incr(k .. ":rl_inflight", 1, 0)
  if limit == nil then -- before the first answer: one call finds out
    if n == 1 then return true end
    d:incr(k .. ":rl_inflight", -1, 0)
    return false, 0.05
  end
  local wall = ngx.now()
  if n <= ((wall >= reset) and limit or remaining) then return true end
  d:incr(k .. ":rl_inflight", -1, 0)
  return false, wall >= reset and 0.05 or reset - wall
end

--- Notes the rate-limit headers of an answer to a call that reserved (`pace = true`).
-- @function SharedDictStore:rate_note
-- @tparam integer limit
-- @tparam integer remaining
-- @tparam number reset epoch seconds
function Store:rate_note(limit, remaining, reset)
  local d, k = self.dict, self.key
  if (d:incr(k .. ":rl_inflight", -1, 0) or 0) < 0 then d:set(k .. ":rl_inflight", 0) end
  local old_reset, old_remaining = d:get(k .. ":rl_reset"), d:get(k .. ":rl_remaining")
  if old_reset ~= nil and (reset < old_reset or (reset == old_reset and remaining > old_remaining)) then return end
  d:set(k .. ":rl_limit", limit)
  d:set(k .. ":rl_remaining", remaining)
  d:set(k .. ":rl_reset", reset)
end

--- Gives back the slot of a call that reserved and got no answer (`pace = true`).
-- @function SharedDictStore:rate_release
function Store:rate_release()
  local d, k = self.dict, self.key
  if (d:incr(k .. ":rl_inflight", -1, 0) or 0) < 0 then d:set(k .. ":rl_inflight", 0) end
end

--- The refresh lock of a `SharedDictStore`, from `SharedDictStore:lock`.
-- @type SharedDictLock

--- lock:unlock() -> true | false (it had expired)
-- @function SharedDictLock:unlock
-- @treturn[1] boolean
-- @return[2] nil, err
function Lock:unlock()
  local s = self.store
  return with_mutex(s, function()
    if s.dict:get(s.key .. ":lock") ~= self.owner then return false end
    s.dict:delete(s.key .. ":lock")
    return true
  end)
end

return function(name, key)
  if type(name) ~= "string" then
    error("bad argument #1 to 'shared_dict_store' (a lua_shared_dict name expected)", 2)
  end
  local dict = type(ngx) == "table" and ngx.shared and ngx.shared[name]
  if not dict then
    error("shared_dict_store: no lua_shared_dict '" .. name .. "' (add `lua_shared_dict " .. name ..
      " 1m;` to nginx's http block)", 2)
  end
  return setmetatable({ dict = dict, key = key or "flextell:tokens" }, Store)
end
