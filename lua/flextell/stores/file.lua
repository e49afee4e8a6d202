--- flextell.token_file(path): tokens in a JSON file, shared by every process of one machine.
--
--   local store = flextell.token_file(os.getenv("HOME") .. "/.flextell-tokens.json")
--   local client = flextell.new { client_id = ..., client_secret = ..., token_store = store }
--
-- The file holds the tokens and a version; it is replaced atomically (a temporary file with mode
-- 0600, fsync, rename), so a reader sees the old tokens or the new ones, never half of either.
-- Beside it, "<path>.lock" (mode 0600) carries two advisory locks (core.file_lock): byte 0 is the
-- refresh lock of lock{}, byte 1 guards the few microseconds of a compare-and-set. The kernel
-- releases both when their holder dies. A missing or empty file reads as "no tokens yet".

local core = require "flextell.core"
local common = require "flextell.stores.common"

local io_open, pairs, setmetatable, type = io.open, pairs, setmetatable, type
local file_lock = core.file_lock

local M = {}

local Store = {}
Store.__index = Store
Store.__name = "flextell.TokenFile"

local function io_error(message)
  return common.error("usage", "io_error", message)
end

--- store:load() -> tokens | nil, version | nil, err (usage io_error).
function Store:load()
  local f = io_open(self.path, "rb")
  if not f then return nil, 0 end -- no file yet
  local text = f:read("a")
  f:close()
  if text == nil then return nil, io_error("cannot read tokens from " .. self.path) end
  if not text:find("%S") then return nil, 0 end -- an empty file: no tokens yet
  local t, why = core.json_decode(text)
  if type(t) ~= "table" then
    return nil, io_error("cannot read tokens from " .. self.path .. ": " .. (why or "not a JSON object"))
  end
  local version = t.version
  if version == nil then
    version = 0 -- written before versions
  elseif not common.is_version(version) then
    return nil, io_error("cannot read tokens from " .. self.path .. ": version is not an integer >= 0")
  end
  return common.copy(t), version
end

local function write(self, tokens, version)
  local t = {}
  for _, k in pairs(common.FIELDS) do t[k] = tokens[k] end
  t.version = version
  local text, why = core.json_encode(t)
  if not text then return nil, io_error("cannot encode tokens: " .. why) end
  return core.save_private_file(self.path, text .. "\n")
end

--- store:save(tokens, version) -> true, new_version | false | nil, err (usage io_error).
-- Compare-and-set: writes only when the file is still at `version` (nil: whatever it holds).
function Store:save(tokens, version)
  if type(tokens) ~= "table" then error("bad argument #1 to 'save' (table expected)", 2) end
  local guard, busy = file_lock(self.lock_path, 1, true) -- held for one read and one rename
  if not guard then return nil, busy end
  local _, current = self:load()
  if not common.is_version(current) then
    guard:unlock()
    return nil, current
  end
  if version ~= nil and version ~= current then
    guard:unlock()
    return false
  end
  local ok, err = write(self, tokens, current + 1)
  guard:unlock()
  if not ok then return nil, err end
  return true, current + 1
end

--- store:lock{ ttl = s, wait = s } -> lock | nil, "busy" | nil, err. Never blocks. The ttl is
-- not needed here (the kernel releases the lock of a process that died) and is checked only.
function Store:lock(opts)
  common.lock_args(opts, "lock")
  return file_lock(self.lock_path, 0, false)
end

--- A copy of opts with token_store = this file (what earlier versions did with on_token).
function Store:options(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.token_store = self
  return o
end

function M.new(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'token_file' (path expected)", 2)
  end
  return setmetatable({ path = path, lock_path = path .. ".lock" }, Store)
end

return M
