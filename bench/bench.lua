-- make bench: lua-flextell against plain libcurl on the same sandbox, in the same run, and the
-- JSON codec against lua-cjson. Reports ratios (this machine is shared: absolute times drift,
-- ratios of interleaved runs hold). Usage: lua bench/bench.lua path/to/raw_get
local flextell = require "flextell"
local sandbox = require "flextell.sandbox"

local raw_get = assert(arg[1], "usage: bench.lua RAW_GET_BINARY")
local ROUNDS, N = 5, tonumber(os.getenv("BENCH_N") or "2000")
local clock = os.clock

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
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

local function min(t)
  local m = math.huge
  for _, v in ipairs(t) do m = math.min(m, v) end
  return m
end

local sb = assert(sandbox.start { tls = true, rate_limit = 1000000 })
local client = flextell.new { base_url = sb.url, token = sb.token }

print(string.format("lua-flextell %s on %s, %d calls x %d rounds (best round shown)", flextell._VERSION,
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
  print(string.format("%-30s libcurl %7.1f us/call   flextell %7.1f us/call   ratio %.2f", case.name,
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
  print(string.format("%-30s warm %7.1f us/call   new connection %7.1f us/call   ratio %.2f",
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
  print(string.format("%-30s cjson %7.1f us   flextell %7.1f us   ratio %.2f", "decode a 100-item page (" .. #body
    .. " B)", cj / M * 1e6, fx / M * 1e6, fx / cj))
else
  print(string.format("decode a 100-item page: flextell %.1f us (lua-cjson not installed)", fx / M * 1e6))
end

client:close()
sb:stop()
