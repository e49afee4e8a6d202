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

--- Releases the lock; false when it had already expired (or been released).
function Lock:unlock()
  local s = self.store
  if s.holder ~= self then return false end
  s.holder = nil
  return true
end

return function()
  return setmetatable({ tokens = nil, version = 0 }, Store)
end
