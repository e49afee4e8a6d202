--- flextell.memory_store(): tokens kept in this Lua state, shared by every client given the
-- same store (and by the tasks of those clients). For tests, and for many clients in one process.
-- The lock expires after its ttl, as a lock of a holder that went away must.
-- @module flextell

local core = require "flextell.core"
local common = require "flextell.stores.common"

local setmetatable = setmetatable
local now = core.now

local Store = {}
Store.__index = Store
Store.__name = "flextell.MemoryStore"

local Lock = {}
Lock.__index = Lock
Lock.__name = "flextell.MemoryLock"

--- A token store in this Lua state, from `memory_store`.
-- @type MemoryStore

--- Loads the tokens.
-- @function MemoryStore:load
-- @treturn table|nil tokens the tokens, nil when there are none yet
-- @treturn integer version the version (0 when empty)
function Store:load()
  return common.copy(self.tokens), self.version
end

--- Saves tokens, when the store is still at `version` (compare-and-set).
-- @function MemoryStore:save
-- @tparam table tokens the tokens
-- @tparam integer|nil version the version loaded (nil: whatever it holds)
-- @treturn[1] true
-- @treturn[1] integer new_version
-- @treturn[2] false when another holder saved since `version`
function Store:save(tokens, version)
  local copy = common.tokens_arg(tokens)
  if version ~= nil and version ~= self.version then return false end
  self.tokens = copy
  self.version = self.version + 1
  return true, self.version
end

--- Takes the refresh lock; it expires after its ttl. Never blocks.
-- @function MemoryStore:lock
-- @tparam table opts `ttl` (seconds), `wait` (seconds the caller is ready to keep trying)
-- @treturn[1] MemoryLock the lock
-- @return[2] nil, "busy"
function Store:lock(opts)
  local ttl = common.lock_args(opts, "lock")
  local t = now()
  if self.holder and self.holder.expires > t then return nil, "busy" end
  local lock = setmetatable({ store = self, expires = t + ttl }, Lock)
  self.holder = lock
  return lock
end

--- Reserves a slot of the rate-limit window for a call about to be sent (`pace = true`).
--- The rate-limit window, shared by the clients of this store (with pace = true):
-- store:rate_reserve() -> true (send) | false, seconds (wait that long, then ask again);
-- store:rate_note(limit, remaining, reset) after an answer of a call that reserved (reset: epoch
-- seconds); store:rate_release() after a call that reserved got no answer.
-- @function MemoryStore:rate_reserve
-- @treturn[1] true send
-- @treturn[2] false
-- @treturn[2] number seconds to wait before asking again
function Store:rate_reserve()
  local w = self.window
  if w.limit == nil then -- before the first answer nobody knows the window: one call finds out
    if w.inflight > 0 then return false, 0.05 end
    w.inflight = 1
    return true
  end
  local wall = core.time()
  local room = (wall >= w.reset and w.limit or w.remaining) - w.inflight
  if room > 0 then
    w.inflight = w.inflight + 1
    return true
  end
  return false, wall >= w.reset and 0.05 or w.reset - wall
end

--- Notes the rate-limit headers of an answer to a call that reserved (`pace = true`).
-- @function MemoryStore:rate_note
-- @tparam integer limit
-- @tparam integer remaining
-- @tparam number reset epoch seconds
function Store:rate_note(limit, remaining, reset)
  local w = self.window
  if w.inflight > 0 then w.inflight = w.inflight - 1 end
  if w.reset ~= nil and (reset < w.reset or (reset == w.reset and remaining > w.remaining)) then return end
  w.limit, w.remaining, w.reset = limit, remaining, reset
end

--- Gives back the slot of a call that reserved and got no answer (`pace = true`).
-- @function MemoryStore:rate_release
function Store:rate_release()
  local w = self.window
  if w.inflight > 0 then w.inflight = w.inflight - 1 end
end

--- The refresh lock of a `MemoryStore`, from `MemoryStore:lock`.
-- @type MemoryLock

--- Releases the lock; false when it had already expired (or been released).
-- @function MemoryLock:unlock
-- @treturn boolean
function Lock:unlock()
  local s = self.store
  if s.holder ~= self then return false end
  s.holder = nil
  return true
end

return function()
  return setmetatable({ tokens = nil, version = 0, window = { inflight = 0 } }, Store)
end
