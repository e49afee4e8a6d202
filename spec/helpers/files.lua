-- Small file and shell helpers for specs that run commands as separate processes.
local M = {}

--- s quoted for sh.
function M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The whole file, or nil when it cannot be read.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- The octal mode of a file ("600"), or nil.
function M.mode_of(path)
  local p = io.popen("stat -c %a " .. M.q(path) .. " 2>/dev/null")
  local m = p:read("l")
  p:close()
  return m
end

--- A new temporary folder.
function M.tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

return M
