--- flextell.token_file(path): tokens in a JSON file, shared by every process of one machine.
--
--   local store = flextell.token_file(os.getenv("HOME") .. "/.flextell-tokens.json")
--   local client = flextell.new { client_id = ..., client_secret = ..., token_store = store }
--
-- The file holds the tokens and a version; it is replaced atomically (a temporary file with mode
-- 0600, fsync, rename), so a reader sees the old tokens or the new ones, never half of either.
-- Beside it, "<path>.lock" (mode 0600) holds the refresh lock of lock{}: a lease, an owner and an
-- expiry by the wall clock, so a holder that died, or left a refresh in doubt (its request maybe
-- processed, its answer lost), keeps the others out until the ttl it asked for has run, and no
-- longer. Two advisory locks of the kernel (core.file_lock) guard the moments that read and
-- write: byte 0 the lease, byte 1 a compare-and-set of the tokens.
-- A missing or empty file reads as "no tokens yet"; its folder must exist.
-- @module flextell

local core = require "flextell.core"
local common = require "flextell.stores.common"

local io_open, pairs, setmetatable, tonumber, type = io.open, pairs, setmetatable, tonumber, type
local format = string.format
local file_lock, wallclock = core.file_lock, core.time

local M = {}

local Store = {}
Store.__index = Store
Store.__name = "flextell.TokenFile"

local function io_error(message)
  return common.error("usage", "io_error", message)
end

local Lock = {}
Lock.__index = Lock
Lock.__name = "flextell.TokenFileLock"

local function folder(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  return d == "" and "/" or d
end

--- A token store in a JSON file, from `token_file`.
-- Errors are kind `usage`, code `io_error`, naming the file and the system's reason.
-- @type TokenFile

--- store:load() -> tokens | nil, version | nil, err (usage io_error).
-- A missing or empty file is no tokens yet; a file written before versions is version 0.
-- @function TokenFile:load
-- @treturn[1] table|nil tokens the tokens, nil when there are none yet
-- @treturn[1] integer version the version (0 when empty)
-- @return[2] nil, err (kind `usage`, code `io_error`)
function Store:load()
  local f, failure, errno = io_open(self.path, "rb")
  if not f then
    if errno ~= 2 then -- it is there but cannot be read: not the same as "no tokens yet"
      return nil, io_error("cannot read tokens from " .. self.path .. ": " .. failure:sub(#self.path + 3))
    end
    local d = io_open(folder(self.path), "rb") -- a folder opens for reading
    if not d then
      return nil, io_error("cannot use " .. self.path .. ": its folder " .. folder(self.path) .. " does not exist")
    end
    d:close()
    return nil, 0 -- no file yet
  end
  local text = f:read("a")
  f:close()
  if text == nil then return nil, io_error("cannot read tokens from " .. self.path) end
  if not text:find("%S") then return nil, 0 end -- an empty file: no tokens yet
  local t, why = common.decode(text)
  if not t then return nil, io_error("cannot read tokens from " .. self.path .. ": " .. why) end
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
-- @function TokenFile:save
-- @tparam table tokens the tokens
-- @tparam integer|nil version the version loaded
-- @treturn[1] true
-- @treturn[1] integer new_version
-- @treturn[2] false when another holder saved since `version`
-- @return[3] nil, err (kind `usage`, code `io_error`)
function Store:save(tokens, version)
  tokens = common.tokens_arg(tokens)
  local guard, busy = file_lock(self.lock_path, 1, true) -- held for one read and one rename
  if not guard then return nil, busy end
  local _, current = self:load()
  if not common.is_version(current) then
    if version ~= nil then -- a compare-and-set against a file that cannot be read
      guard:unlock()
      return nil, current
    end
    current = 0 -- an explicit overwrite replaces whatever is there, a file it cannot read too
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

-- The lease in the lock file: "lease <expiry, epoch seconds> <owner>\n", read and written only
-- under the kernel lock on byte 0, which is held for that moment alone.
local function read_lease(path)
  local f = io_open(path, "rb")
  if not f then return 0, "" end
  local at, owner = (f:read("a") or ""):match("^lease%s+([%d%.]+)%s+(%S+)")
  f:close()
  return tonumber(at) or 0, owner or ""
end

-- true, or nil and why
local function write_lease(path, at, owner)
  local f, why = io_open(path, "r+b")
  if not f then return nil, why end
  local ok, err = f:write(format("lease %20.6f %-24s\n", at, owner))
  local closed, cerr = f:close()
  if not ok or not closed then return nil, ((err or cerr or "?"):gsub("^.-: ", "")) end
  return true
end

--- store:lock{ ttl = s, wait = s } -> lock | nil, "busy" | nil, err (usage io_error). Never
-- blocks on another holder: busy while another holder's lease runs.
-- @function TokenFile:lock
-- @tparam table opts `ttl` (seconds the lease runs), `wait` (seconds the caller is ready to keep
--   trying)
-- @treturn[1] TokenFileLock the lock
-- @return[2] nil, "busy"
-- @return[3] nil, err (kind `usage`, code `io_error`)
function Store:lock(opts)
  local ttl = common.lock_args(opts, "lock")
  local guard, busy = file_lock(self.lock_path, 0, true) -- for the read and write of the lease
  if not guard then return nil, busy end
  local at = read_lease(self.lock_path)
  local now = wallclock()
  if at > now then
    guard:unlock()
    return nil, "busy"
  end
  local owner = core.random_token(16)
  local written, why = write_lease(self.lock_path, now + ttl, owner)
  guard:unlock()
  if not written then return nil, io_error("cannot write the lease in " .. self.lock_path .. ": " .. why) end
  return setmetatable({ path = self.lock_path, owner = owner }, Lock)
end

--- The refresh lock of a `TokenFile`, from `TokenFile:lock`.
-- @type TokenFileLock

--- lock:unlock() -> true | false (its lease had run out: maybe another holder has it now) |
-- nil, err
-- @function TokenFileLock:unlock
-- @treturn[1] boolean
-- @return[2] nil, err
function Lock:unlock()
  local guard, busy = file_lock(self.path, 0, true)
  if not guard then return nil, busy end
  local at, owner = read_lease(self.path)
  local mine = owner == self.owner and at > wallclock()
  if owner == self.owner then write_lease(self.path, 0, "-") end
  guard:unlock()
  self.owner = nil
  return mine
end

--- @type TokenFile

--- A copy of opts with token_store = this file (what earlier versions did with on_token).
-- @function TokenFile:options
-- @tparam[opt] table opts options of `flextell.new`
-- @treturn table a copy with `token_store` set
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
