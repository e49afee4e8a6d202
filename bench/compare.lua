-- make bench-compare OLD=<commit>: the blocking path of an older lua-flextell against the working
-- tree's, each as a ratio to plain libcurl (bench/peers/raw_get.c), timed in alternating rounds of one
-- run on one sandbox. The old side is `git archive <commit> src lua Makefile mk`, built in
-- build/bench-old/<commit>/ with that commit's own Makefile; it runs in processes of its own with
-- LUA_PATH and LUA_CPATH pointing there. The new side is the working tree (lua/ and the core that
-- `make core` built), as this script found them in its own LUA_PATH and LUA_CPATH.
--
-- Usage:  lua bench/compare.lua RAW_GET [OLD]     (from the repository's top directory)
-- OLD defaults to the newest commit on main without src/call.c: the last one before the core's
-- calls became state machines. Environment: COMPARE_ROUNDS (9), COMPARE_N (GETs of one customer
-- per round, 2000), COMPARE_PAGE_N (GETs of a 100-item page per round, 500), COMPARE_WALKS (walks
-- of 100 pages per round, 20), LUA (the interpreter's name for the old Makefile: lua5.4, luajit).
-- Prints a markdown table and writes it to bench/results/latest.md (its "compare" section).
--
-- Internally the same file is the worker: lua bench/compare.lua --worker CASE URL TOKEN COUNT
-- times COUNT runs of CASE with whichever flextell its LUA_PATH/LUA_CPATH give, and prints the
-- seconds; --which prints the files it would load.

local BENCH_DIR = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local stats = dofile(BENCH_DIR .. "/stats.lua")

local CASES = {
  { key = "customer", name = "GET one customer", path = "/v1/customers/1" },
  { key = "page", name = "GET a page of 100 resources", path = "/resources", query = { limit = 100 } },
  { key = "walk", name = "100-page cursor walk (limit=1)", path = "/resources", query = { limit = 1 }, pages = 100 },
}
local by_key = {}
for _, c in ipairs(CASES) do by_key[c.key] = c end

---------------------------------------------------------------------------------------------
-- Worker
---------------------------------------------------------------------------------------------
if arg[1] == "--which" then
  local core = package.searchpath("flextell.core", package.cpath)
  local lua = package.searchpath("flextell", package.path)
  local flextell = require "flextell"
  print(string.format("%s %s tasks=%s", lua, core, flextell.spawn and "yes" or "no"))
  os.exit(0)
end

if arg[1] == "--worker" then
  local flextell = require "flextell"
  local case, url, token, count = by_key[arg[2]], arg[3], arg[4], assert(tonumber(arg[5]))
  local client = flextell.new { base_url = url, token = token }
  local function once()
    if case.pages then
      local n = 0
      for _ in client:pages(case.path, case.query) do n = n + 1 end
      if n ~= case.pages then error("the walk took " .. n .. " pages, not " .. case.pages) end
    else
      assert(client:get(case.path, case.query))
    end
  end
  for _ = 1, case.pages and 1 or 20 do once() end -- the connection, the allocator, the JIT warm
  local t0 = stats.now()
  for _ = 1, count do once() end
  local t = stats.now() - t0
  client:close()
  print(string.format("%.6f", t))
  os.exit(0)
end

---------------------------------------------------------------------------------------------
-- Driver
---------------------------------------------------------------------------------------------
local raw_get = assert(arg[1], "usage: compare.lua RAW_GET [OLD]")
local old_arg = arg[2] ~= "" and arg[2] or nil
local LUA_NAME = os.getenv("LUA") or "lua5.4"
local INTERP = arg[-1] or "lua5.4"
local ROUNDS = tonumber(os.getenv("COMPARE_ROUNDS") or "9")
local COUNT = {
  customer = tonumber(os.getenv("COMPARE_N") or "2000"),
  page = tonumber(os.getenv("COMPARE_PAGE_N") or "500"),
  walk = tonumber(os.getenv("COMPARE_WALKS") or "20"),
}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end
local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read("a")
  local ok = p:close()
  return s:gsub("%s+$", ""), ok
end

-- The commit before the redesign: the newest on main whose tree has no src/call.c.
local function find_old()
  local list = capture("git rev-list main 2>/dev/null || git rev-list HEAD")
  for sha in list:gmatch("%x+") do
    if not sh("git cat-file -e " .. sha .. ":src/call.c 2>/dev/null") then return sha end
  end
  error("compare.lua: every commit on main has src/call.c; give OLD=<commit>")
end

local old = old_arg or find_old()
local sha, ok = capture("git rev-parse --verify --quiet " .. q(old .. "^{commit}"))
if not ok or sha == "" then error("compare.lua: not a commit: " .. old) end
local short = sha:sub(1, 12)
local subject = capture("git log -1 --format=%s " .. sha)
local has_call = sh("git cat-file -e " .. sha .. ":src/call.c 2>/dev/null")
-- The code measured is src/ and lua/ as of OLD, i.e. as of the commit that last changed them:
-- archive and build that one, so commits that touched neither share one build.
local code = capture("git log -1 --format=%H " .. sha .. " -- src lua")
if code == "" then code = sha end
local code_short = code:sub(1, 12)
local code_subject = capture("git log -1 --format=%s " .. code)

-- Build the old side once per commit (a commit's files never change, so the tree is kept).
local old_dir = "build/bench-old/" .. code_short
if not sh("test -f " .. q(old_dir .. "/.extracted")) then
  assert(sh("rm -rf " .. q(old_dir) .. " && mkdir -p " .. q(old_dir)))
  assert(sh("git archive " .. code .. " src lua Makefile mk | tar -x -C " .. q(old_dir)),
    "compare.lua: git archive failed")
  assert(sh("touch " .. q(old_dir .. "/.extracted")))
end
io.stderr:write("compare.lua: building the core of ", code_short, " in ", old_dir, "\n")
assert(sh("make -s -C " .. q(old_dir) .. " core LUA=" .. q(LUA_NAME) .. " >&2"),
  "compare.lua: the old core did not build")

local cwd = capture("pwd")
local sides = {
  raw = { label = "libcurl" },
  old = { label = "old",
          path = cwd .. "/" .. old_dir .. "/lua/?.lua;" .. cwd .. "/" .. old_dir .. "/lua/?/init.lua;;",
          cpath = cwd .. "/" .. old_dir .. "/build/" .. LUA_NAME .. "/?.so;;" },
  new = { label = "new", path = os.getenv("LUA_PATH") or "", cpath = os.getenv("LUA_CPATH") or "" },
}
local function lua_env(side)
  return "LUA_PATH=" .. q(side.path) .. " LUA_CPATH=" .. q(side.cpath) .. " " .. q(INTERP) .. " " ..
    q(BENCH_DIR .. "/compare.lua")
end
for _, k in ipairs { "old", "new" } do
  local which, wok = capture(lua_env(sides[k]) .. " --which")
  if not wok then error("compare.lua: the " .. k .. " side does not load: " .. which) end
  sides[k].which = which
  io.stderr:write("compare.lua: ", k, " side loads ", which, "\n")
end
if sides.old.which == sides.new.which then error("compare.lua: both sides load the same files: " .. sides.old.which) end

-- The sandbox, with the 16 more resources that make 100 for the walk.
local flextell = require "flextell"
local sandbox = require "flextell.sandbox"
local sb = assert(sandbox.start { tls = false, rate_limit = 1000000 })
local url, token = sb.url, sb.token
local setup = flextell.new { base_url = url, token = token }
local have = select(2, assert(setup:get("/resources", { limit = 1 }))).total
for i = have + 1, 100 do assert(setup:post("/resources", { name = "bench " .. i })) end

-- The raw side of each case: its URLs, in order (the walk's come from walking it once here).
local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end
local function with_query(path, query)
  local keys = {}
  for k in pairs(query or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = escape(k) .. "=" .. escape(query[k]) end
  return url .. path .. (#parts > 0 and "?" .. table.concat(parts, "&") or "")
end
for _, c in ipairs(CASES) do
  if c.pages then
    c.urls = {}
    local cursor
    repeat
      local query = { limit = c.query.limit, cursor = cursor }
      c.urls[#c.urls + 1] = with_query(c.path, query)
      local _, meta = assert(setup:get(c.path, query))
      cursor = meta.has_more and meta.cursor or nil
    until not cursor
    assert(#c.urls == c.pages, "the walk has " .. #c.urls .. " pages")
  else
    c.urls = { with_query(c.path, c.query) }
  end
end
setup:close()

local function run_raw(c)
  local calls = COUNT[c.key] * (c.pages or 1)
  local extra = {}
  for i = 2, #c.urls do extra[#extra + 1] = q(c.urls[i]) end
  local out, rok = capture(string.format("%s %s %s %d %s", q(raw_get), q(c.urls[1]), q(token), calls,
    table.concat(extra, " ")))
  return assert(rok and tonumber(out), "raw_get failed on " .. c.name)
end
local function run_lib(side, c)
  local out, wok = capture(string.format("%s --worker %s %s %s %d", lua_env(side), c.key, q(url), q(token),
    COUNT[c.key]))
  return assert(wok and tonumber(out), "the " .. side.label .. " worker failed on " .. c.name .. ": " .. out)
end

-- Rounds: in each, every case runs on the three sides back to back, the side that starts
-- moving on by one each round and each case, so no side always comes first.
local order = { "raw", "old", "new" }
local t = {}
for _, c in ipairs(CASES) do t[c.key] = { raw = {}, old = {}, new = {} } end
for r = 1, ROUNDS do
  for ci, c in ipairs(CASES) do
    for k = 0, 2 do
      local side = order[(r + ci + k) % 3 + 1]
      t[c.key][side][r] = side == "raw" and run_raw(c) or run_lib(sides[side], c)
    end
  end
  io.stderr:write(string.format("compare.lua: round %d of %d\n", r, ROUNDS))
end
sb:stop()

local lines = {}
local function md(line)
  print(line)
  lines[#lines + 1] = line
end
local tree_head = capture("git rev-parse --short=12 HEAD")
local dirty = capture("git status --porcelain -- src lua")
md(string.format("## make bench-compare, %s", os.date("!%Y-%m-%d %H:%M UTC")))
md("")
md(string.format("- old: `%s` %s%s", short, subject, has_call and " (NOTE: it already has src/call.c)" or ""))
md(string.format("  - src/ and lua/ as last changed in `%s` %s: `git archive` of its src, lua, Makefile, mk, "
  .. "built in %s", code_short, code_subject, old_dir))
md(string.format("- new: the working tree (HEAD `%s`%s)", tree_head,
  dirty ~= "" and ", with uncommitted changes in src/ and lua/" or ""))
md(string.format("- %s, blocking calls, one client and kept-alive connection per process (clock: %s); "
  .. "%d rounds, the three sides alternating within each; ratios are per round, shown as median (min-max)",
  (INTERP:find("luajit") and "LuaJIT" or _VERSION), stats.clock_name, ROUNDS))
md("- walk: `client:pages` over 100 one-item pages of /resources; libcurl replays the same 100 URLs "
  .. "(cursors known in advance, no JSON)")
md("")
md("| case | calls/round | libcurl us/call | old us/call | new us/call | old / libcurl | new / libcurl | new / old |")
md("|---|---|---|---|---|---|---|---|")
for _, c in ipairs(CASES) do
  local calls = COUNT[c.key] * (c.pages or 1)
  local tt = t[c.key]
  local function us(list) return string.format("%.1f", stats.median(list) / calls * 1e6) end
  md(string.format("| %s | %d | %s | %s | %s | %s | %s | %s |", c.name, calls, us(tt.raw), us(tt.old), us(tt.new),
    stats.spread(stats.ratios(tt.old, tt.raw)), stats.spread(stats.ratios(tt.new, tt.raw)),
    stats.spread(stats.ratios(tt.new, tt.old))))
end
local results_file = BENCH_DIR .. "/results/latest.md"
stats.write_section(results_file, "compare", table.concat(lines, "\n"))
print("(written to " .. results_file .. ")")
