--- flextell.memory_store(): tokens kept in this Lua state, shared by every client given the
-- same store (and by the tasks of those clients). For tests, and for many clients in one process.
-- The lock expires after its ttl, as a lock of a holder that went away must.

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

function Store:load()
  return common.copy(self.tokens), self.version
end

function Store:save(tokens, version)
  if version ~= nil and version ~= self.version then return false end
  local copy = common.copy(tokens)
  if copy == nil then error("bad argument #1 to 'save' (tokens expected)", 2) end
  self.tokens = copy
  self.version = self.version + 1
  return true, self.version
end

function Store:lock(opts)
  local ttl = common.lock_args(opts, "lock")
  local t = now()
  if self.holder and self.holder.expires > t then return nil, "busy" end
  local lock = setmetatable({ store = self, expires = t + ttl }, Lock)
  self.holder = lock
  return lock
end

--- The rate-limit window, shared by the clients of this store (with pace = true):
-- store:rate_reserve() -> true (send) | false, seconds (wait that long, then ask again);
-- store:rate_note(limit, remaining, reset) after an answer of a call that reserved (reset: epoch
-- seconds); store:rate_release() after a call that reserved got no answer.
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

function Store:rate_note(limit, remaining, reset)
  local w = self.window
  if w.inflight > 0 then w.inflight = w.inflight - 1 end
  if w.reset ~= nil and (reset < w.reset or (reset == w.reset and remaining > w.remaining)) then return end
  w.limit, w.remaining, w.reset = limit, remaining, reset
end

function Store:rate_release()
  local w = self.window
  if w.inflight > 0 then w.inflight = w.inflight - 1 end
end

--- Releases the lock; false when it had already expired (or been released).
function Lock:unlock()
  local s = self.store
  if s.holder ~= self then return false end
  s.holder = nil
  return true
end

return function()
  return setmetatable({ tokens = nil, version = 0, window = { inflight = 0 } }, Store)
end
