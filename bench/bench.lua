-- make bench: lua-flextell against plain libcurl on the same sandbox, in the same run, and the
-- JSON codec against lua-cjson; then calls in flight at once (tasks) against one at a time, on a
-- server that holds each call 5 ms. Reports ratios (this machine is shared: absolute times drift,
-- ratios of interleaved runs hold). Prints to stdout and writes the same to
-- bench/results/latest.md (its "bench" section). Usage: lua bench/bench.lua path/to/raw_get
-- Environment: BENCH_N (calls per round, 2000), BENCH_CONC_N (calls per round of the in-flight
-- row, 1000), BENCH_CONC_ROUNDS (5).
local flextell = require "flextell"
local sandbox = require "flextell.sandbox"

local BENCH_DIR = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local stats = dofile(BENCH_DIR .. "/stats.lua")

local raw_get = assert(arg[1], "usage: bench.lua RAW_GET_BINARY")
local ROUNDS, N = 5, tonumber(os.getenv("BENCH_N") or "2000")
local clock = os.clock
local now = stats.now

-- Everything printed also goes to the results file: plain lines in a text block, markdown as is.
local report = {}
local in_text = false
local function out(line)
  print(line)
  if not in_text then report[#report + 1] = "```text"; in_text = true end
  report[#report + 1] = line
end
local function md(line)
  print(line)
  if in_text then report[#report + 1] = "```"; in_text = false end
  report[#report + 1] = line
end

local function raw(url, token, n)
  local p = assert(io.popen(string.format("%q %q %q %d", raw_get, url, token, n)))
  local t = tonumber(p:read("l"))
  p:close()
  return assert(t, "raw_get failed")
end

local function lib(client, path, query, n)
  local t0 = now()
  for _ = 1, n do assert(client:get(path, query)) end
  return now() - t0
end

local min = stats.min

local sb = assert(sandbox.start { tls = true, rate_limit = 1000000 })
local client = flextell.new { base_url = sb.url, token = sb.token }

md(string.format("## make bench, %s", os.date("!%Y-%m-%d %H:%M UTC")))
md("")
out(string.format("lua-flextell %s on %s, %d calls x %d rounds (best round shown)", flextell._VERSION,
  jit and jit.version or _VERSION, N, ROUNDS))
for _, case in ipairs {
  { name = "GET one customer", path = "/v1/customers/1" },
  { name = "GET a page of 100 resources", path = "/resources", query = { limit = 100 } },
} do
  local url = sb.url .. case.path
  if case.query then url = url .. "?limit=" .. case.query.limit end
  local r, l = {}, {}
  lib(client, case.path, case.query, 50) -- warm the connection
  for i = 1, ROUNDS do
    r[i] = raw(url, sb.token, N)
    l[i] = lib(client, case.path, case.query, N)
  end
  local br, bl = min(r), min(l)
  out(string.format("%-30s libcurl %7.1f us/call   flextell %7.1f us/call   ratio %.2f", case.name,
    br / N * 1e6, bl / N * 1e6, bl / br))
end

-- The cost of the at-most-once rule for writes: a POST on a warm kept-alive connection (what
-- write_max_idle allows right after another call) against a POST on a new connection each time
-- (write_max_idle = 0, and what any write gets after the connection idled longer), over plain
-- HTTP and over TLS, where a new connection costs a handshake.
local W = math.max(50, math.floor(N / 10))
local function posts(c, n)
  local t0 = now()
  for _ = 1, n do assert(c:post("/_echo/w", { n = 1 })) end
  return now() - t0
end
for _, base in ipairs { { "HTTP", sb.url }, { "HTTPS", sb.https_url } } do
  local warm_c = flextell.new { base_url = base[2], ca_file = sb.ca_file, token = sb.token }
  local fresh_c = flextell.new { base_url = base[2], ca_file = sb.ca_file, token = sb.token, write_max_idle = 0 }
  posts(warm_c, 10)
  posts(fresh_c, 10)
  local w, f = {}, {}
  for i = 1, ROUNDS do
    w[i] = posts(warm_c, W)
    f[i] = posts(fresh_c, W)
  end
  local bw, bf = min(w), min(f)
  out(string.format("%-30s warm %7.1f us/call   new connection %7.1f us/call   ratio %.2f",
    "POST over " .. base[1], bw / W * 1e6, bf / W * 1e6, bf / bw))
  warm_c:close()
  fresh_c:close()
end

-- JSON: decoding a 100-item page, against lua-cjson when it is installed.
local body = assert(io.popen(string.format("curl -s -H 'Authorization: Bearer %s' '%s/resources?limit=100'",
  sb.token, sb.url))):read("a")
local ok, cjson = pcall(require, "cjson")
local M = 2000
local function time_decode(decode)
  local best = math.huge
  for _ = 1, ROUNDS do
    local t0 = clock()
    for _ = 1, M do decode(body) end
    best = math.min(best, clock() - t0)
  end
  return best
end
local fx = time_decode(flextell.json.decode)
if ok then
  local cj = time_decode(cjson.decode)
  out(string.format("%-30s cjson %7.1f us   flextell %7.1f us   ratio %.2f", "decode a 100-item page (" .. #body
    .. " B)", cj / M * 1e6, fx / M * 1e6, fx / cj))
else
  out(string.format("decode a 100-item page: flextell %.1f us (lua-cjson not installed)", fx / M * 1e6))
end

-- Calls in flight at once: GET /v1/customers/<n> with the server holding each call DELAY
-- seconds, one at a time (the blocking client:get, and client:batch with concurrency 1) against
-- client:batch with 8 and 32 in flight, on a client that allows 32. The variants take turns
-- within each round, starting one later each round; rates are medians over the rounds, and each
-- ratio is taken within a round. The project's target: 8 in flight >= 6x the sequential rate.
-- Last of the rows, since the delay it arms would slow the GETs above.
local CN = tonumber(os.getenv("BENCH_CONC_N") or "1000")
local CROUNDS = tonumber(os.getenv("BENCH_CONC_ROUNDS") or "5")
local DELAY, TARGET = 0.005, 6
local cc = flextell.new { base_url = sb.url, token = sb.token, max_concurrency = 32 }
assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = DELAY, count = 100000 })
local reqs = {}
for i = 1, CN do reqs[i] = { method = "GET", path = "/v1/customers/" .. ((i - 1) % 45 + 1) } end

local function batch(conc)
  return function()
    local t0 = now()
    local results = cc:batch(reqs, { concurrency = conc })
    local t = now() - t0
    for i = 1, CN do
      if not results[i][1] then error("batch call " .. i .. " failed: " .. tostring(results[i][2])) end
    end
    return t
  end
end
local variants = {
  { label = "1 (blocking `client:get`)", run = function()
      local t0 = now()
      for i = 1, CN do assert(cc:get(reqs[i].path)) end
      return now() - t0
    end },
  { label = "1 (`batch`, concurrency 1)", run = batch(1) },
  { label = "8 (`batch`, concurrency 8)", run = batch(8) },
  { label = "32 (`batch`, concurrency 32)", run = batch(32) },
}
do -- warm up: 32 connections open, every path taken once
  local warm = {}
  for i = 1, 64 do warm[i] = reqs[(i - 1) % CN + 1] end
  cc:batch(warm, { concurrency = 32 })
  for i = 1, 5 do assert(cc:get(reqs[i].path)) end
end
-- A round that raises is left out of the medians and reported below the table (make bench then
-- fails): one bad round does not cost the others.
local rates, failures = {}, {}
for v = 1, #variants do rates[v] = {} end
for r = 1, CROUNDS do
  for k = 0, #variants - 1 do
    local v = (r - 1 + k) % #variants + 1
    local done, t = pcall(variants[v].run)
    if done then
      rates[v][r] = CN / t
    else
      failures[#failures + 1] = string.format("round %d, %s: %s", r, variants[v].label, tostring(t))
    end
  end
end
md("")
md(string.format("### Calls in flight: %d GETs of `/v1/customers/{n}` per round, server delay %g ms each, "
  .. "%d rounds (median, min-max)", CN, DELAY * 1000, CROUNDS))
md("")
md("| in flight | calls/s | x sequential (blocking) | x batch, 1 in flight |")
md("|---|---|---|---|")
local function versus(v, base)
  if v == base then return "1 (the base)" end
  return stats.spread(stats.ratios(rates[v], rates[base], CROUNDS))
end
for v = 1, #variants do
  md(string.format("| %s | %s | %s | %s |", variants[v].label, stats.spread(stats.present(rates[v], CROUNDS), "%.0f"),
    versus(v, 1), versus(v, 2)))
end
local r8 = stats.ratios(rates[3], rates[1], CROUNDS)
md("")
if #r8 > 0 then
  local m = stats.median(r8)
  md(string.format("Target 8 in flight >= %dx sequential: %.2fx, %s (ideal at this delay: 8x).", TARGET, m,
    m >= TARGET and "met" or "NOT met"))
end
if #failures > 0 then
  md(string.format("%d run(s) FAILED and are left out:", #failures))
  md("")
  for _, f in ipairs(failures) do md("- " .. f:gsub("\n.*", "")) end
end
cc:close()

if in_text then report[#report + 1] = "```" end
local results_file = BENCH_DIR .. "/results/latest.md"
stats.write_section(results_file, "bench", table.concat(report, "\n"))
print("(written to " .. results_file .. ")")

client:close()
sb:stop()
if #failures > 0 then os.exit(1) end
