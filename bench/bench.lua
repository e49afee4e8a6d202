-- make bench: lua-flextell against the other ways of calling an HTTP JSON API from Lua (and
-- against plain libcurl, curl, Python and wrk), on loopback servers this script starts and stops.
--
--   lua5.4 bench/bench.lua RAW_GET HOST_PROGRAM      (from the repository's top directory, with
--                                                    LUA_PATH/LUA_CPATH on lua/ and build/lua5.4;
--                                                    `make bench` builds and passes both programs)
--
-- Servers: Debian's nginx serving fixed bodies written into a temporary directory (see
-- fixtures.lua), and the sandbox (flextell.sandbox) for the calls in flight, whose server holds
-- each call 5 ms, and for the host program. Both are stopped at the end, on error and on Ctrl-C.
--
-- Every measurement is a process of its own (bench/peers/) that reports its elapsed time on a
-- monotonic clock and what it did; in each round every workload runs every client once, the
-- client that starts moving on by one each round. Medians and min-max are over the rounds;
-- a ratio is taken within a round, then its median is shown. The machine may be shared: the
-- absolute figures drift, the ratios of one round hold better.
--
-- Writes bench/results/latest.md (the whole file) and bench/results/latest.png (gnuplot), and
-- prints the tables. Exits 1 when a run failed (the failures are listed under the tables).
--
-- Environment:
--   BENCH_QUICK=1         a short run: 2 rounds and fewer calls per run (a smoke test)
--   BENCH_ROUNDS          rounds (default 5; 2 with BENCH_QUICK)
--   BENCH_MAX_SECONDS     no new round starts after this many seconds of rounds (default 420)
--   BENCH_N               small GETs per run (default 5000)
--   BENCH_WALKS           walks of the 10,000 items per run (default 10)
--   BENCH_BIG_N           GETs / decodes of the 3 MiB body per run (default 20)
--   BENCH_CONC_N          calls per run in the in-flight rows (default 1000)
--   BENCH_POST_N          calls per run in the write rows (default 1000; a quarter on new connections)
--   BENCH_HOST_RUNS       runs of the host program (default 3)
--   BENCH_RUN_TIMEOUT     seconds before one run is stopped and counted as failed (default 120)
--   LUACURLV3_SRC         a Lua-cURLv3 source tree: `make bench` builds it and it joins as a peer
--   BENCH_RESULTS         the directory for latest.md and latest.png (default bench/results)

local BENCH_DIR = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local util = dofile(BENCH_DIR .. "/util.lua")
local stats = dofile(BENCH_DIR .. "/stats.lua")
local fixtures = dofile(BENCH_DIR .. "/fixtures.lua")
local quote, run, capture = util.quote, util.run, util.capture
local fmt = string.format

local RAW_GET = assert(arg[1], "usage: bench.lua RAW_GET HOST_PROGRAM")
local HOST = arg[2]

local function env_num(name, default)
  local v = os.getenv(name)
  return v and v ~= "" and assert(tonumber(v), name .. " is not a number") or default
end
local QUICK = os.getenv("BENCH_QUICK") == "1"
local ROUNDS = env_num("BENCH_ROUNDS", QUICK and 2 or 5)
local MAX_SECONDS = env_num("BENCH_MAX_SECONDS", 420)
local N = env_num("BENCH_N", QUICK and 500 or 5000)
local WALKS = env_num("BENCH_WALKS", QUICK and 1 or 10)
local BIG_N = env_num("BENCH_BIG_N", QUICK and 4 or 20)
local CONC_N = env_num("BENCH_CONC_N", QUICK and 300 or 1000)
local POST_N = env_num("BENCH_POST_N", QUICK and 200 or 1000)
local HOST_RUNS = env_num("BENCH_HOST_RUNS", QUICK and 1 or 3)
local RUN_TIMEOUT = env_num("BENCH_RUN_TIMEOUT", 120)
local RESULTS = os.getenv("BENCH_RESULTS") or (BENCH_DIR .. "/results")
local DELAY = 0.005
local HOST_DELAY, HOST_CALLS = 0.3, 50

local ROOT = capture("pwd")
local function abs(p) return p:sub(1, 1) == "/" and p or (ROOT .. "/" .. p) end
RAW_GET = abs(RAW_GET)
if HOST then HOST = abs(HOST) end
local PEERS_DIR = abs(BENCH_DIR .. "/peers")

-- The interpreters' environments: flextell's from this tree; the other peers get the
-- system's modules only.
local function lua_env(cpath_dir)
  return "env LUA_PATH=" .. quote(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;") ..
    " LUA_CPATH=" .. quote(ROOT .. "/" .. cpath_dir .. "/?.so;;")
end
local PLAIN = "env -u LUA_PATH -u LUA_CPATH -u LUA_INIT"
local LCURLV3_SO = ROOT .. "/build/bench/lcurlv3/lcurl.so"
local LCURLV3_SRC = os.getenv("LUACURLV3_SRC")
local have_lcurlv3 = LCURLV3_SRC ~= nil and LCURLV3_SRC ~= "" and util.exists(LCURLV3_SO)

---------------------------------------------------------------------------------------------
-- Clients
---------------------------------------------------------------------------------------------
-- lua: how a Lua peer is started; scale: its share of the calls of a run (the slow ones do
-- fewer, so a run stays short); kind: "lua" peers compete for "best Lua peer".
local PEERS = {
  raw = { label = "raw C loop: libcurl, one easy handle, no JSON decoding" },
  fx54 = { label = "**lua-flextell, Lua 5.4**", flextell = true,
    cmd = lua_env("build/lua5.4") .. " lua5.4 " .. quote(PEERS_DIR .. "/flextell.lua") },
  fxjit = { label = "**lua-flextell, LuaJIT**", flextell = true,
    cmd = lua_env("build/luajit") .. " luajit " .. quote(PEERS_DIR .. "/flextell.lua") },
  fx54pf = { label = "lua-flextell, Lua 5.4, pager prefetch", flextell = true,
    cmd = lua_env("build/lua5.4") .. " lua5.4 " .. quote(PEERS_DIR .. "/flextell.lua") },
  fxjitpf = { label = "lua-flextell, LuaJIT, pager prefetch", flextell = true,
    cmd = lua_env("build/luajit") .. " luajit " .. quote(PEERS_DIR .. "/flextell.lua") },
  luacurl = { label = "LuaJIT + lua-curl 0.3 (Debian) + cjson", kind = "lua",
    cmd = PLAIN .. " luajit " .. quote(PEERS_DIR .. "/luacurl.lua") },
  sockka = { label = "Lua 5.4 + luasocket, hand-written keep-alive HTTP/1.1 + cjson", kind = "lua",
    cmd = PLAIN .. " lua5.4 " .. quote(PEERS_DIR .. "/luasocket.lua"), extra = "keepalive" },
  sockhttp = { label = "Lua 5.4 + luasocket socket.http (a connection per call) + cjson", kind = "lua",
    cmd = PLAIN .. " lua5.4 " .. quote(PEERS_DIR .. "/luasocket.lua"), extra = "http", scale = 0.5 },
  lcurlv3 = { label = "Lua 5.4 + Lua-cURLv3 + cjson", kind = "lua",
    cmd = "env LUA_PATH=" .. quote((LCURLV3_SRC or "") .. "/src/lua/?.lua;;") .. " LUA_CPATH=" ..
      quote(ROOT .. "/build/bench/lcurlv3/?.so;;") .. " lua5.4 " .. quote(PEERS_DIR .. "/lcurlv3.lua"),
    skipped = not have_lcurlv3 and "skipped: no Lua-cURLv3 source (set LUACURLV3_SRC)" or nil },
  curlcli = { label = "curl command, a process per call (from Lua 5.4, + cjson)", scale = 0.02,
    cmd = PLAIN .. " lua5.4 " .. quote(PEERS_DIR .. "/curl_cli.lua") },
  requests = { label = "Python 3 + requests, one Session", scale = 0.25,
    cmd = "python3 " .. quote(PEERS_DIR .. "/requests_peer.py") },
  wrk = { label = "wrk, 1 connection (what the server serves; no client work)" },
  -- the decode rows: the JSON library of each interpreter on its own
  cjson54 = { label = "lua-cjson, Lua 5.4", cmd = PLAIN .. " lua5.4 " .. quote(PEERS_DIR .. "/luasocket.lua") },
  cjsonjit = { label = "lua-cjson, LuaJIT", cmd = PLAIN .. " luajit " .. quote(PEERS_DIR .. "/luacurl.lua") },
  pyjson = { label = "Python 3 json.loads", cmd = "python3 " .. quote(PEERS_DIR .. "/requests_peer.py") },
}

---------------------------------------------------------------------------------------------
-- Servers, and their end whatever happens
---------------------------------------------------------------------------------------------
local server, sb, fixdir, info
local function cleanup()
  if server then pcall(server.stop, server) end
  if sb then pcall(sb.stop, sb) end
  if fixdir then run("rm -rf " .. quote(fixdir)) end
  server, sb, fixdir = nil, nil, nil
end

local T_START = os.time()
local failures = {}

-- One run of a peer: its report as numbers, or nil after noting the failure.
local function run_peer(what, cmd)
  local out, ok = capture("timeout --foreground -k 5 " .. RUN_TIMEOUT .. " " .. cmd .. " 2>&1")
  local nums = {}
  local last = out:match("([^\n]*)$")
  for x in last:gmatch("%S+") do nums[#nums + 1] = tonumber(x) end
  if not ok or not nums[1] then
    failures[#failures + 1] = fmt("%s: %s", what, (out:gsub("%s+", " "):sub(-300)))
    io.stderr:write("bench: FAILED ", what, "\n")
    return nil
  end
  return nums
end

---------------------------------------------------------------------------------------------
-- Workloads: each has its clients, a command per client and what a run's numbers mean
---------------------------------------------------------------------------------------------
local W = {} -- in the order they run within a round

local function peer_cmd(p, workload, base, path, token, count, extra)
  local e = extra or PEERS[p].extra
  return fmt("%s %s %s %s %s %d%s", PEERS[p].cmd, workload, quote(base), quote(path), quote(token), count,
    e and (" " .. quote(e)) or "")
end
local function scaled(p, n)
  return math.max(1, math.floor(n * (PEERS[p].scale or 1) + 0.5))
end

local function http_workload(key, path, count, clients, per_item)
  local w = { key = key, clients = clients, unit = per_item and "items/s" or "calls/s", results = {} }
  function w.command(p)
    local url = server.url .. path
    local n = scaled(p, count)
    if p == "raw" then
      if per_item then return fmt("%s --walk %s tok %d", quote(RAW_GET), quote(url), n), n end
      return fmt("%s %s tok %d", quote(RAW_GET), quote(url), n), n
    elseif p == "wrk" then
      return fmt("sh %s %s tok 1", quote(PEERS_DIR .. "/wrk.sh"), quote(url)), 0
    end
    local workload = per_item and "walk" or "get"
    if p == "fx54pf" or p == "fxjitpf" then workload = "walk_prefetch" end
    if p == "curlcli" and per_item then n = 1 end
    return peer_cmd(p, workload, server.url, path, "tok", n), n
  end
  function w.rate(p, nums, n)
    local seconds, did = nums[1], nums[2]
    if p == "raw" and not per_item then
      did = n -- raw_get's plain mode prints the seconds only (make bench-compare reads that)
    elseif p == "raw" and per_item then
      did = did * fixtures.PER_PAGE -- raw reports pages: it decodes nothing to count items with
    elseif p == "wrk" and per_item then
      did = did * fixtures.PER_PAGE
    end
    local want = per_item and n * info.lists.items.items or n
    if p ~= "wrk" and did ~= want then
      return nil, fmt("did %d, not %d", did, want)
    end
    return did / seconds
  end
  return w
end

local HTTP_CLIENTS = { "raw", "fx54", "fxjit", "luacurl", "sockka", "sockhttp", "lcurlv3", "curlcli", "requests",
  "wrk" }
local WALK_CLIENTS = { "raw", "fx54", "fxjit", "fx54pf", "fxjitpf", "luacurl", "sockka", "sockhttp", "lcurlv3",
  "curlcli", "requests", "wrk" }

local function decode_workload()
  local w = { key = "decode", clients = { "fx54", "cjson54", "fxjit", "cjsonjit", "pyjson" },
    unit = "MB/s", results = {} }
  function w.command(p)
    return peer_cmd(p, "decode", "-", info.export.file, "-", BIG_N), BIG_N
  end
  function w.rate(_, nums, n)
    if nums[2] ~= n then return nil, "decoded " .. nums[2] .. " times, not " .. n end
    return n * info.export.bytes / 1e6 / nums[1]
  end
  return w
end

local function inflight_workload()
  local w = { key = "inflight", clients = { "fx54:0", "fx54:1", "fx54:8", "fx54:32", "fxjit:0", "fxjit:8", "fxjit:32" },
    unit = "calls/s", results = {} }
  function w.command(c)
    local p, conc = c:match("^(%w+):(%d+)$")
    return peer_cmd(p, "inflight", sb.url, "/v1/customers/", sb.token, CONC_N, conc), CONC_N
  end
  function w.rate(_, nums, n)
    if nums[2] ~= n then return nil, "did " .. nums[2] .. " calls, not " .. n end
    return n / nums[1]
  end
  return w
end

local function memory_workload()
  local w = { key = "mem", clients = { "fx54:few", "fx54:many", "fxjit:few", "fxjit:many" }, unit = "KiB",
    results = {} }
  function w.command(c)
    local p, list = c:match("^(%w+):(%w+)$")
    return peer_cmd(p, "mem", server.url, "/v1/" .. list .. "?limit=" .. fixtures.PER_PAGE, "tok", 1),
      info.lists[list].items
  end
  function w.rate(_, nums, n)
    if nums[2] ~= n then return nil, "walked " .. nums[2] .. " items, not " .. n end
    return nums[3]
  end
  return w
end

local function writes_workload()
  local clients = {}
  for _, scheme in ipairs { "http", "https" } do
    for _, what in ipairs { "get", "post", "postnew" } do clients[#clients + 1] = scheme .. ":" .. what end
  end
  local w = { key = "writes", clients = clients, unit = "us/call", results = {} }
  function w.command(c)
    local scheme, what = c:match("^(%w+):(%w+)$")
    local base = scheme == "https" and server.https_url or server.url
    local n = what == "postnew" and POST_N // 4 or POST_N
    local cmd = peer_cmd("fx54", what == "get" and "get" or "post", base, "/v1/notes", "tok", n,
      what == "postnew" and "new" or "-")
    return "env BENCH_CA_FILE=" .. quote(server.ca_file) .. " " .. cmd, n
  end
  function w.rate(_, nums, n)
    if nums[2] ~= n then return nil, "did " .. nums[2] .. " calls, not " .. n end
    return nums[1] / n * 1e6
  end
  return w
end

---------------------------------------------------------------------------------------------
-- The run
---------------------------------------------------------------------------------------------
local function label(c)
  local p = c:match("^(%w+)")
  return PEERS[p] and PEERS[p].label or c
end

local function measure(w, r)
  local clients = w.clients
  local k = #clients
  for i = 0, k - 1 do
    local c = clients[(r - 1 + i) % k + 1]
    local p = c:match("^(%w+)")
    w.results[c] = w.results[c] or {}
    if PEERS[p] and PEERS[p].skipped then
      w.results[c].skipped = PEERS[p].skipped
    else
      local cmd, n = w.command(c)
      local nums = run_peer(fmt("round %d, %s, %s", r, w.key, c), cmd)
      if nums then
        local v, why = w.rate(p, nums, n)
        if v then
          w.results[c][r] = v
        else
          failures[#failures + 1] = fmt("round %d, %s, %s: %s", r, w.key, c, why)
        end
      end
    end
  end
end

local function versions()
  local function first_line(cmd) return (capture(cmd .. " 2>&1")):match("[^\n]*") end
  local cpu = (util.read_file("/proc/cpuinfo") or ""):match("model name%s*:%s*([^\n]+)") or "unknown"
  local pkg = function(name) return first_line("dpkg-query -W -f='${Version}' " .. name) end
  return {
    date = os.date("!%Y-%m-%d %H:%M UTC"),
    cpu = cpu, cores = capture("nproc"), kernel = capture("uname -r"),
    load = (util.read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)"),
    lua = first_line("lua5.4 -v"), luajit = first_line("luajit -v"),
    libcurl = capture("pkg-config --modversion libcurl"), nginx = first_line("nginx -v"),
    python = first_line("python3 --version"),
    requests = first_line("python3 -c 'import requests; print(requests.__version__)'"),
    wrk = first_line("wrk -v"):match("^(wrk %S+)") or "?",
    luacurl = pkg("lua-curl"), cjson = pkg("lua-cjson"), luasocket = pkg("lua-socket"),
    lcurlv3 = have_lcurlv3 and first_line(PEERS.lcurlv3.cmd:gsub(" lua5%.4 .*$", "") ..
      " lua5.4 -e 'print(require(\"cURL\")._VERSION)'") or nil,
    head = capture("git rev-parse --short=12 HEAD 2>/dev/null"),
    dirty = capture("git status --porcelain -- src lua 2>/dev/null") ~= "",
  }
end

local function host_runs()
  local out = {}
  if not HOST or not util.exists(HOST) then return out end
  assert(sb:reset())
  for i = 1, HOST_RUNS do
    assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = HOST_DELAY, count = HOST_CALLS })
    local text, ok = capture("timeout --foreground -k 5 " .. RUN_TIMEOUT .. " " .. quote(HOST) .. " " ..
      quote(ROOT .. "/lua") .. " " .. quote(sb.url) .. " " .. quote(sb.token) .. " 2>&1")
    local frames, calls, total, median, p99, worst = text:match(
      "frames (%d+), calls (%d+)/%d+, total ([%d.]+) s, step ms per frame: " ..
      "median ([%d.]+), p99 ([%d.]+), worst ([%d.]+)")
    if ok and frames and tonumber(calls) == HOST_CALLS then
      out[#out + 1] = { frames = tonumber(frames), total = tonumber(total), median = tonumber(median),
        p99 = tonumber(p99), worst = tonumber(worst) }
    else
      failures[#failures + 1] = fmt("host run %d: %s", i, (text:gsub("%s+", " "):sub(-300)))
    end
    assert(sb:reset())
  end
  return out
end

local function main()
  local sandbox = require "flextell.sandbox"
  io.stderr:write("bench: writing the fixed bodies and starting nginx\n")
  fixdir = util.tempdir("flextell-bench")
  run("chmod 755 " .. quote(fixdir))
  info = fixtures.generate(fixdir)
  server = assert(fixtures.start(fixdir, info))
  sb = assert(sandbox.start { tls = false, rate_limit = 100000000 })
  assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = DELAY, count = 100000000 })
  local env = versions()

  local small_path = "/v1/customers/1"
  local page_path = "/v1/items?limit=" .. fixtures.PER_PAGE
  W = {
    http_workload("small", small_path, N, HTTP_CLIENTS, false),
    http_workload("walk", page_path, WALKS, WALK_CLIENTS, true),
    http_workload("big", "/v1/export", BIG_N,
      { "raw", "fx54", "fxjit", "luacurl", "sockka", "sockhttp", "lcurlv3", "curlcli", "requests" }, false),
    decode_workload(),
    inflight_workload(),
    memory_workload(),
    writes_workload(),
  }
  local rounds_done = 0
  local t_rounds = os.time()
  for r = 1, ROUNDS do
    if r > 1 and os.time() - t_rounds > MAX_SECONDS then
      io.stderr:write(fmt("bench: %d s of rounds, past BENCH_MAX_SECONDS: no round %d\n", os.time() - t_rounds, r))
      break
    end
    for _, w in ipairs(W) do measure(w, r) end
    rounds_done = r
    io.stderr:write(fmt("bench: round %d of %d done (%d s)\n", r, ROUNDS, os.time() - T_START))
  end
  local host = host_runs()
  return env, rounds_done, host
end

---------------------------------------------------------------------------------------------
-- Report
---------------------------------------------------------------------------------------------
local lines = {}
local function md(s)
  print(s)
  lines[#lines + 1] = s
end

local function series(w, c, rounds)
  return stats.present(w.results[c] or {}, rounds)
end

local function spread(t, f)
  if #t == 0 then return "-" end
  return stats.spread(t, f)
end

local function by_key(key)
  for _, w in ipairs(W) do if w.key == key then return w end end
end

local function rate_fmt(v)
  if v >= 100 then return "%.0f" elseif v >= 10 then return "%.1f" end
  return "%.2f"
end

-- A table of clients with their rate and its ratio to the base client of each round.
local function rate_table(w, rounds, base, base_name, extra_col)
  md(fmt("| client | %s, median (min-max) | x %s (median of per-round ratios, min-max) |%s",
    w.unit, base_name, extra_col and (" " .. extra_col.title .. " |") or ""))
  md("|---|---|---|" .. (extra_col and "---|" or ""))
  for _, c in ipairs(w.clients) do
    local res = w.results[c] or {}
    local row
    if res.skipped then
      row = fmt("| %s | %s | - |%s", label(c), res.skipped, extra_col and " - |" or "")
    else
      local s = series(w, c, rounds)
      local ratio = c == base and "1 (the base)" or spread(stats.ratios(w.results[c], w.results[base], rounds))
      row = fmt("| %s | %s | %s |%s", label(c), #s > 0 and spread(s, rate_fmt(stats.median(s))) or "FAILED", ratio,
        extra_col and (" " .. extra_col.cell(c) .. " |") or "")
    end
    md(row)
  end
end

local targets = {}
local function target(name, value, limit, cmp, detail)
  local met = value == value and (cmp == ">=" and value >= limit or cmp == "<=" and value <= limit)
  targets[#targets + 1] = { name = name, value = value, limit = limit, cmp = cmp, met = met, detail = detail }
end

local function report(env, rounds, host)
  md("# make bench")
  md("")
  local load_end = (util.read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")
  md(fmt("%s; %s (%s cores), Linux %s; load average %s at the start, %s at the end (other work on the machine "
    .. "shows here).", env.date, env.cpu, env.cores, env.kernel, env.load or "?", load_end or "?"))
  md(fmt("lua-flextell at `%s`%s; %s; %s; libcurl %s; %s; %s, requests %s; %s; lua-curl %s, lua-cjson %s, "
    .. "lua-socket %s (Debian).", env.head, env.dirty and " with uncommitted changes in src/ or lua/" or "",
    env.lua, env.luajit, env.libcurl, env.nginx, env.python, env.requests, env.wrk, env.luacurl, env.cjson,
    env.luasocket) .. (env.lcurlv3 and (" Lua-cURLv3 " .. env.lcurlv3 .. ", built from LUACURLV3_SRC.") or ""))
  md("")
  md(fmt("Loopback only. %d rounds; in each, every client of a table runs once, in a process of its own, "
    .. "the first client moving on by one each round; figures are medians over the rounds with (min-max); "
    .. "a ratio is taken within each round, then its median and range are shown. The machine may be shared "
    .. "with other work: trust ratios over absolute figures.", rounds))
  md("Server: Debian's nginx serving fixed files (keep-alive, 1 worker), except the calls in flight and the host "
    .. "program, which go to the sandbox (nginx + Lua). Every client decodes every body with its JSON library, "
    .. "except the raw C loop (no decoding: the cost of the transport alone) and wrk.")
  md("")

  local small, walk, big = by_key("small"), by_key("walk"), by_key("big")
  md(fmt("## (a) Small GETs: `GET /v1/customers/1` (%d B, one customer in an object envelope), one after the "
    .. "other", info.small_bytes))
  md("")
  md(fmt("%d calls per run (socket.http %d, Python %d, the curl command %d); wrk runs 1 s.", N,
    scaled("sockhttp", N), scaled("requests", N), scaled("curlcli", N)))
  md("")
  rate_table(small, rounds, "raw", "raw C")
  md("")

  md(fmt("## (b) Paged walks: %d items in %d cursor pages of %d (%d B a page), `GET /v1/items?limit=%d`",
    info.lists.items.items, info.lists.items.pages, fixtures.PER_PAGE, info.lists.items.page_bytes, fixtures.PER_PAGE))
  md("")
  md(fmt("%d walks per run (socket.http %d, Python %d, the curl command 1). Each client reads the next cursor "
    .. "from the decoded `meta` and stops on `has_more = false`. The raw C loop follows the cursors itself, "
    .. "found by a byte scan of each page's meta (no JSON decoding). wrk: the first page, again and again "
    .. "(x%d items a request).",
    WALKS, scaled("sockhttp", WALKS), scaled("requests", WALKS), fixtures.PER_PAGE))
  md("")
  -- The best Lua peer of the walk, for the target and a column: the highest median of its
  -- per-round ratios to the raw C loop (a slow round moves that less than the plain rates).
  local best, best_rate = nil, -1
  for _, c in ipairs(walk.clients) do
    local p = PEERS[c]
    if p and p.kind == "lua" and not (walk.results[c] or {}).skipped then
      local r = stats.ratios(walk.results[c], walk.results.raw, rounds)
      local m = #r > 0 and stats.median(r) or -1
      if m > best_rate then best, best_rate = c, m end
    end
  end
  rate_table(walk, rounds, "raw", "raw C", best and {
    title = "x best Lua peer (" .. best .. ")",
    cell = function(c)
      if (walk.results[c] or {}).skipped then return "-" end
      return spread(stats.ratios(walk.results[c], walk.results[best], rounds))
    end,
  })
  md("")
  -- Where a page's time goes: the transport (the raw loop's page) against decoding it, estimated
  -- from the decode rate measured on the 3 MiB body.
  local dec = by_key("decode")
  local function per_page_us(c)
    local m = stats.median(series(walk, c, rounds))
    return 1e6 * fixtures.PER_PAGE / m
  end
  local decode_us = info.lists.items.page_bytes / stats.median(series(dec, "fx54", rounds))
  local cjson_us = info.lists.items.page_bytes / stats.median(series(dec, "cjson54", rounds))
  local fx_us = per_page_us("fx54")
  md(fmt("Where a page's time goes (medians): lua-flextell on Lua 5.4 takes %.0f us a page, the raw C loop %.0f us "
    .. "(the transport, no decoding); decoding a %d-byte page takes about %.0f us with `flextell.json.decode` "
    .. "(%.0f%% of lua-flextell's page) and %.0f us with `cjson.decode` on Lua 5.4, at the rates measured on the "
    .. "3 MiB body in (d).", fx_us, per_page_us("raw"), info.lists.items.page_bytes, decode_us,
    100 * decode_us / fx_us, cjson_us))
  md("")

  md(fmt("## (d) The 3 MiB list body (%d items, %d B)", info.export.items, info.export.bytes))
  md("")
  md(fmt("Whole GETs, each decoded: %d per run (socket.http %d, Python %d, the curl command %d).", BIG_N,
    scaled("sockhttp", BIG_N), scaled("requests", BIG_N), scaled("curlcli", BIG_N)))
  md("")
  rate_table(big, rounds, "raw", "raw C")
  md("")
  md(fmt("Decoding only, %d times per run: `flextell.json.decode` against `cjson.decode` on the same "
    .. "interpreter (Python's json for scale).", BIG_N))
  md("")
  md("| decoder | MB/s, median (min-max) | x lua-cjson on the same interpreter |")
  md("|---|---|---|")
  local base_of = { fx54 = "cjson54", fxjit = "cjsonjit" }
  local dlabel = { fx54 = "flextell.json.decode, Lua 5.4", fxjit = "flextell.json.decode, LuaJIT" }
  for _, c in ipairs(dec.clients) do
    local s = series(dec, c, rounds)
    local ratio = base_of[c] and spread(stats.ratios(dec.results[c], dec.results[base_of[c]], rounds)) or "-"
    md(fmt("| %s | %s | %s |", dlabel[c] or label(c), #s > 0 and spread(s, "%.1f") or "FAILED", ratio))
  end
  md("")

  local inf = by_key("inflight")
  md(fmt("## (c) Calls in flight: %d GETs of `/v1/customers/{n}` a run, the sandbox holding each %g ms",
    CONC_N, DELAY * 1000))
  md("")
  md("In flight 0 is one blocking `client:get` after the other (the sequential rate); 1, 8 and 32 are "
    .. "`client:batch` with that concurrency (tasks, one libcurl multi handle). The sandbox is nginx with Lua: "
    .. "its own cost per call limits the 32 row.")
  md("")
  md("| client | in flight | calls/s, median (min-max) | x sequential (same interpreter, per round) |")
  md("|---|---|---|---|")
  for _, c in ipairs(inf.clients) do
    local p, conc = c:match("^(%w+):(%d+)$")
    local s = series(inf, c, rounds)
    local seq = p .. ":0"
    md(fmt("| %s | %s | %s | %s |", label(p), conc == "0" and "1: blocking `get` loop" or (conc .. ": `batch`"),
      #s > 0 and spread(s, "%.0f") or "FAILED",
      c == seq and "1 (the base)" or spread(stats.ratios(inf.results[c], inf.results[seq], rounds))))
  end
  md("")

  local mem = by_key("mem")
  md("## (e) Peak memory of a walk (VmHWM of a fresh process, KiB)")
  md("")
  md(fmt("One `for page in client:pages(...)` walk over %d or %d items (pages of %d), the process's peak "
    .. "resident memory read at the end (interpreter, libraries and all).", info.lists.few.items,
    info.lists.many.items, fixtures.PER_PAGE))
  md("")
  md(fmt("| client | %d items | %d items | ratio (per round) |", info.lists.few.items, info.lists.many.items))
  md("|---|---|---|---|")
  for _, p in ipairs { "fx54", "fxjit" } do
    local few, many = p .. ":few", p .. ":many"
    md(fmt("| %s | %s | %s | %s |", label(p), spread(series(mem, few, rounds), "%.0f"),
      spread(series(mem, many, rounds), "%.0f"),
      spread(stats.ratios(mem.results[many], mem.results[few], rounds), "%.3f")))
  end
  md("")

  local wr = by_key("writes")
  md(fmt("## (f) The at-most-once rule for writes: %d calls a run (%d on new connections), one after the other, "
    .. "lua-flextell on Lua 5.4", POST_N, POST_N // 4))
  md("")
  md("`/v1/notes` answers GET and POST with the same bytes. Writes go on a connection pool of their own, "
    .. "and never on a connection idle longer than `write_max_idle` (2 s by default): back-to-back POSTs "
    .. "reuse a warm connection; `write_max_idle = 0` puts every POST on a new one, which is what a write "
    .. "gets after the client idled: over HTTPS that is a full TLS handshake per call.")
  md("")
  md("| scheme | GET us/call | POST, warm connection | POST, new connection | POST warm / GET | POST new / POST warm |")
  md("|---|---|---|---|---|---|")
  for _, scheme in ipairs { "http", "https" } do
    local g, p, n = scheme .. ":get", scheme .. ":post", scheme .. ":postnew"
    md(fmt("| %s | %s | %s | %s | %s | %s |", scheme:upper(), spread(series(wr, g, rounds), "%.1f"),
      spread(series(wr, p, rounds), "%.1f"), spread(series(wr, n, rounds), "%.1f"),
      spread(stats.ratios(wr.results[p], wr.results[g], rounds)),
      spread(stats.ratios(wr.results[n], wr.results[p], rounds))))
  end
  md("")

  md(fmt("## The host program (examples/host): %d calls from a 60 fps frame loop, the sandbox holding each %g ms",
    HOST_CALLS, HOST_DELAY * 1000))
  md("")
  if #host == 0 then
    md("Not run (no host program, or every run failed: see below).")
  else
    local function col(k) local t = {} for i, h in ipairs(host) do t[i] = h[k] end return t end
    md(fmt("`flextell.step(0.002)` once a frame, timed by the program; %d runs (median of the runs, min-max).",
      #host))
    md("")
    md("| frames | total s | step ms per frame: median | p99 | worst |")
    md("|---|---|---|---|---|")
    md(fmt("| %s | %s | %s | %s | %s |", spread(col("frames"), "%.0f"), spread(col("total"), "%.3f"),
      spread(col("median"), "%.3f"), spread(col("p99"), "%.3f"), spread(col("worst"), "%.3f")))
  end
  md("")

  -- Targets, from the ratios of this run
  local function med(t) return #t > 0 and stats.median(t) or 0 / 0 end
  for _, p in ipairs { "fx54", "fxjit" } do
    target("small GET >= 0.95x the raw C loop, " .. (p == "fx54" and "Lua 5.4" or "LuaJIT"),
      med(stats.ratios(small.results[p], small.results.raw, rounds)), 0.95, ">=")
  end
  if best then
    for _, p in ipairs { "fx54", "fxjit" } do
      target(fmt("paged walk items/s >= 1.5x the best Lua peer (%s), %s", PEERS[best].label,
        p == "fx54" and "Lua 5.4" or "LuaJIT"), med(stats.ratios(walk.results[p], walk.results[best], rounds)),
        1.5, ">=",
        fmt("with prefetch: %.2fx", med(stats.ratios(walk.results[p .. "pf"], walk.results[best], rounds))))
    end
  end
  for _, p in ipairs { "fx54", "fxjit" } do
    target("8 in flight >= 6x the sequential rate (5 ms server delay), " .. (p == "fx54" and "Lua 5.4" or "LuaJIT"),
      med(stats.ratios(inf.results[p .. ":8"], inf.results[p .. ":0"], rounds)), 6, ">=")
  end
  for _, p in ipairs { "fx54", "fxjit" } do
    target("peak memory of a 100,000-item walk <= 1.2x a 1,000-item walk, " .. (p == "fx54" and "Lua 5.4" or "LuaJIT"),
      med(stats.ratios(mem.results[p .. ":many"], mem.results[p .. ":few"], rounds)), 1.2, "<=")
  end
  md("## Targets (ratios from this run)")
  md("")
  for _, t in ipairs(targets) do
    md(fmt("- %s: %s (%.2fx, limit %s %gx)%s", t.name, t.met and "**met**" or "**MISSED**", t.value, t.cmp, t.limit,
      t.detail and ("; " .. t.detail) or ""))
  end
  md("")
  if #failures > 0 then
    md(fmt("## %d run(s) FAILED (left out of the figures)", #failures))
    md("")
    for _, f in ipairs(failures) do md("- " .. f) end
    md("")
  end
  md(fmt("Chart: latest.png (rates relative to the raw C loop, log scale). Took %d s.", os.time() - T_START))
end

-- The chart: per workload (small GET, walk, 3 MiB GET), each client's median of its per-round
-- ratios to the raw C loop.
local function chart(rounds)
  local rows = {}
  local cols = { "small", "walk", "big" }
  local order = { "fx54", "fxjit", "fx54pf", "fxjitpf", "luacurl", "sockka", "sockhttp", "lcurlv3", "requests",
    "curlcli", "wrk" }
  local short = { fx54 = "flextell 5.4", fxjit = "flextell LuaJIT", fx54pf = "flextell 5.4 prefetch",
    fxjitpf = "flextell LuaJIT prefetch", luacurl = "LuaJIT lua-curl", sockka = "luasocket keep-alive",
    sockhttp = "socket.http", lcurlv3 = "Lua-cURLv3", requests = "Python requests", curlcli = "curl command",
    wrk = "wrk (server)" }
  for _, p in ipairs(order) do
    local cells, any = {}, false
    for i, k in ipairs(cols) do
      local w = by_key(k)
      local r = w.results[p] and not w.results[p].skipped and stats.ratios(w.results[p], w.results.raw, rounds) or {}
      cells[i] = #r > 0 and fmt("%.4f", stats.median(r)) or "-"
      any = any or #r > 0
    end
    if any then rows[#rows + 1] = fmt('"%s" %s', short[p], table.concat(cells, " ")) end
  end
  local data = os.tmpname()
  util.write_file(data, table.concat(rows, "\n") .. "\n")
  local ok = run(fmt("gnuplot -e %s %s >/dev/null 2>&1", quote(fmt("datafile=%q; outfile=%q", data,
    abs(RESULTS .. "/latest.png"))), quote(BENCH_DIR .. "/chart.gp")))
  os.remove(data)
  if not ok then io.stderr:write("bench: gnuplot failed, no chart\n") end
end

local ok, env, rounds, host = xpcall(main, function(e)
  if tostring(e):find("interrupted", 1, true) then return "interrupted" end
  return debug.traceback(e, 2)
end)
cleanup()
if not ok then
  io.stderr:write("bench: ", tostring(env), "\n")
  os.exit(env == "interrupted" and 130 or 1)
end
run("mkdir -p " .. quote(RESULTS))
report(env, rounds, host)
util.write_file(RESULTS .. "/latest.md", table.concat(lines, "\n") .. "\n")
chart(rounds)
print("(written to " .. RESULTS .. "/latest.md and latest.png)")
os.exit(#failures == 0 and 0 or 1)
