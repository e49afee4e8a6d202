-- What every Lua peer of `make bench` shares (Lua 5.1 to 5.4 and LuaJIT alike): the command
-- line, the monotonic clock, the peak memory of the process and the one line it reports.
-- A peer is run as:  <interpreter> bench/peers/<peer>.lua WORKLOAD BASE PATH TOKEN COUNT [EXTRA]
--   get     COUNT GETs of BASE..PATH, each body decoded
--   walk    COUNT walks of the cursor-paged list at BASE..PATH (PATH has ?limit=...): the next
--           cursor is read from the decoded meta, until has_more is false
--   decode  COUNT decodes of the file PATH (no HTTP)
-- and prints "<seconds> <items>" (items: calls, or list items for a walk), timed from after a
-- warm-up (the connection open, the code paths taken once).
local M = {}

local system = require "system" -- luasystem: a monotonic clock on both interpreters
M.now = system.monotime

function M.args()
  local a = {
    workload = assert(arg[1], "no workload"), base = arg[2], path = arg[3], token = arg[4],
    count = assert(tonumber(arg[5]), "no count"), extra = arg[6],
  }
  a.url = (a.base or "") .. (a.path or "")
  return a
end

--- Peak resident memory of this process in KiB (VmHWM), or nil without /proc.
function M.hwm_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end

function M.report(seconds, items, ...)
  local extra = { ... }
  for i = 1, #extra do extra[i] = tostring(extra[i]) end
  io.write(string.format("%.6f %d", seconds, items), #extra > 0 and (" " .. table.concat(extra, " ")) or "", "\n")
end

function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- Runs the three common workloads with fetch(url) -> decoded body (raises on failure) and
-- decode(text) -> value; one untimed round first.
function M.run(a, fetch, decode)
  local function once()
    if a.workload == "get" then
      local body = fetch(a.url)
      if type(body) ~= "table" or body.data == nil then error("no data in the answer of " .. a.url) end
      return 1
    elseif a.workload == "walk" then
      local url, items = a.url, 0
      while true do
        local body = fetch(url)
        local data, meta = body.data, body.meta
        items = items + #data
        if meta.has_more ~= true then break end
        url = a.url .. "&cursor=" .. meta.cursor
      end
      return items
    elseif a.workload == "decode" then
      decode(a.text)
      return 1
    end
    error("unknown workload " .. a.workload)
  end
  if a.workload == "decode" then a.text = M.read_file(a.path) end
  for _ = 1, (a.workload == "get" and 10 or 1) do once() end
  local items = 0
  local t0 = M.now()
  for _ = 1, a.count do items = items + once() end
  M.report(M.now() - t0, items)
end

return M
