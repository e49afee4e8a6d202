-- Shared by bench.lua and compare.lua: a clock, medians and ranges, and the results file.
-- Load with dofile(<bench dir> .. "/stats.lua"); it needs nothing from the library.
local M = {}

local ok, system = pcall(require, "system") -- luasystem, when installed: a monotonic clock

M.clock_name = (ok and system.monotime) and "luasystem monotime" or "date(1)"

--- Seconds from some fixed point: luasystem's monotonic clock, else date(1) (which adds the
-- cost of a process to each reading, so time long stretches with it).
function M.now()
  if ok and system.monotime then return system.monotime() end
  local p = assert(io.popen("date +%s.%N"))
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function sorted(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s
end

function M.median(t)
  local s = sorted(t)
  local n = #s
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

function M.min(t)
  local m = math.huge
  for _, v in ipairs(t) do m = math.min(m, v) end
  return m
end

function M.max(t)
  local m = -math.huge
  for _, v in ipairs(t) do m = math.max(m, v) end
  return m
end

--- "median (min-max)" with the given format for each number ("-" for no numbers).
function M.spread(t, fmt)
  fmt = fmt or "%.2f"
  if #t == 0 then return "-" end
  return string.format(fmt .. " (" .. fmt .. "-" .. fmt .. ")", M.median(t), M.min(t), M.max(t))
end

--- Element-wise a[i] / b[i] for i = 1..n: the per-round ratios of two series timed in the same
-- rounds, leaving out a round that either lacks (a round that failed).
function M.ratios(a, b, n)
  local r = {}
  for i = 1, n or #a do
    if a[i] and b[i] then r[#r + 1] = a[i] / b[i] end
  end
  return r
end

--- The values of t[1..n] that are there, in order.
function M.present(t, n)
  local r = {}
  for i = 1, n do
    if t[i] then r[#r + 1] = t[i] end
  end
  return r
end

--- Writes text as the named section of the markdown file at path (between the marker comments
-- <!-- name --> and <!-- /name -->), keeping the file's other sections: make bench and make
-- bench-compare share bench/results/latest.md.
function M.write_section(path, name, text)
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
  local old = ""
  local f = io.open(path, "rb")
  if f then
    old = f:read("a")
    f:close()
  end
  local open_tag, close_tag = "<!-- " .. name .. " -->", "<!-- /" .. name .. " -->"
  local block = open_tag .. "\n" .. text:gsub("\n*$", "") .. "\n" .. close_tag .. "\n"
  local a = old:find(open_tag, 1, true)
  local _, b = old:find(close_tag, 1, true)
  local new
  if a and b and b > a then
    new = old:sub(1, a - 1) .. block .. old:sub(b + 1):gsub("^\n", "")
  else
    new = old .. (old ~= "" and not old:find("\n\n$") and "\n" or "") .. block
  end
  f = assert(io.open(path, "wb"))
  f:write(new)
  f:close()
end

return M
