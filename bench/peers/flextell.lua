-- lua-flextell, on whichever interpreter runs this and whichever core LUA_CPATH finds. The
-- common workloads (see common.lua) through the public API: client:get, client:pages and
-- flextell.json.decode; and these of its own:
--   walk_prefetch  the walk with the pager's prefetch (the next page is fetched meanwhile)
--   inflight       COUNT GETs of BASE..PATH..<1..45> with EXTRA in flight (client:batch with
--                  that concurrency; 0: one blocking client:get after the other)
--   post           COUNT POSTs of a small JSON body to BASE..PATH, one after the other; EXTRA
--                  "new" sets write_max_idle = 0 (every write on a new connection), otherwise
--                  back-to-back writes reuse the write pool's connection
--   mem            one walk, then "<seconds> <items> <VmHWM KiB>" (run in a fresh process)
-- BENCH_CA_FILE: the CA of an https BASE.
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local common = dofile(here .. "common.lua")
local flextell = require "flextell"

local a = common.args()
local path, qs = a.path, nil
if path and path:find("?", 1, true) then path, qs = path:match("^([^?]*)%?(.*)$") end
local query
if qs then
  query = {}
  for k, v in qs:gmatch("([^&=]+)=([^&]*)") do query[k] = v end
end

local opts = { base_url = a.base, token = a.token, ca_file = os.getenv("BENCH_CA_FILE") }
if a.workload == "inflight" then opts.max_concurrency = math.max(1, tonumber(a.extra) or 1) end
if a.workload == "post" and a.extra == "new" then opts.write_max_idle = 0 end
local client = a.workload ~= "decode" and flextell.new(opts) or nil

local function walk(pager_opts)
  local items = 0
  for page in client:pages(path, query, pager_opts) do items = items + #page end
  return items
end

local once
if a.workload == "get" then
  once = function()
    local data, err = client:get(path, query)
    if data == nil then error(tostring(err)) end
    return 1
  end
elseif a.workload == "walk" or a.workload == "mem" then
  once = function() return walk(nil) end
elseif a.workload == "walk_prefetch" then
  local po = { prefetch = true }
  once = function() return walk(po) end
elseif a.workload == "decode" then
  local text = common.read_file(a.path)
  local decode = flextell.json.decode
  once = function()
    decode(text)
    return 1
  end
elseif a.workload == "post" then
  local body = { customer_id = 1, text = "Called back, all good.", tags = flextell.array { "call" } }
  once = function()
    local data, err = client:post(path, body)
    if data == nil then error(tostring(err)) end
    return 1
  end
elseif a.workload == "inflight" then
  local conc = tonumber(a.extra) or 0
  local reqs = {}
  for i = 1, a.count do reqs[i] = { method = "GET", path = path .. ((i - 1) % 45 + 1) } end
  local function run_all()
    if conc == 0 then
      for i = 1, a.count do
        local data, err = client:get(reqs[i].path)
        if data == nil then error(tostring(err)) end
      end
    else
      local results = client:batch(reqs, { concurrency = conc })
      for i = 1, a.count do
        if not results[i][1] then error("call " .. i .. ": " .. tostring(results[i][2])) end
      end
    end
    return a.count
  end
  -- warm: as many connections open as will be used, each path's code taken once
  local warm = {}
  for i = 1, math.max(conc, 1) * 2 do warm[i] = reqs[(i - 1) % a.count + 1] end
  client:batch(warm, { concurrency = math.max(conc, 1) })
  local t0 = common.now()
  local n = run_all()
  common.report(common.now() - t0, n)
  os.exit(0)
else
  error("unknown workload " .. a.workload)
end

if a.workload == "mem" then
  local t0 = common.now()
  local items = once()
  common.report(common.now() - t0, items, common.hwm_kb())
  os.exit(0)
end

for _ = 1, (a.workload == "get" or a.workload == "post") and 10 or 1 do once() end
local items = 0
local t0 = common.now()
for _ = 1, a.count do items = items + once() end
common.report(common.now() - t0, items)
if client then client:close() end
