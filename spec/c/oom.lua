-- The out-of-memory sweep, run by spec/c/oom.c (see there for how allocations are made to fail).
-- For every scenario and n = 1, 2, 3, ... until a run reaches no injected failure, the
-- scenario runs with its n-th allocation failing (mode "once"), then with the n-th and every
-- later one failing (mode "sustained"). Each run must either give exactly the results of a run
-- without failures, or raise "not enough memory" (or Lua's own memory error). A structured
-- `nil, err` for running out, any other error, a wrong result, and a fresh client that no
-- longer works afterwards are failures. Every distinct failure is printed once (outcome, where
-- the allocation failed, the first n that shows it); the exit status is 1 when there was one.
--
-- With the argument "list" it prints the names of the scenarios it would run, one a line: make
-- check-oom runs each in a process of its own, so a crash in one hides nothing of the others and
-- LeakSanitizer's report at exit belongs to one scenario.
--
-- Environment: FLEXTELL_SANDBOX_URL and FLEXTELL_SANDBOX_TOKEN (required), and for the OAuth
-- scenario FLEXTELL_SANDBOX_PREFIX, _CLIENT_ID, _CLIENT_SECRET, _REDIRECT_URI, all as
-- bin/flextell-sandbox start exports them; FLEXTELL_OOM_ONLY=name[,name] runs only those
-- scenarios; FLEXTELL_OOM_MODES=once|sustained; FLEXTELL_OOM_LEAK_EACH=1 checks for leaks after
-- every run (slow; finds the run that leaked).

-- luacheck: globals oom_try oom_label oom_leaks oom_warnings

local command = ...

local flextell = require "flextell"

-- line by line, so a sanitizer that stops the process loses nothing of what was found before
io.stdout:setvbuf("line")

local URL, TOKEN = os.getenv "FLEXTELL_SANDBOX_URL", os.getenv "FLEXTELL_SANDBOX_TOKEN"
if not URL or URL == "" or not TOKEN or TOKEN == "" then
  io.stderr:write("oom: set FLEXTELL_SANDBOX_URL and FLEXTELL_SANDBOX_TOKEN (bin/flextell-sandbox start)\n")
  return 2
end

-- Set by the clients' on_retry: an injected failure that the core took for a network fault
-- and retried is reported even when the retry then succeeded. Storing the reason allocates
-- nothing, so the hook cannot fail itself.
local retried

local function on_retry(info)
  retried = info.reason
end

local function new_client(opts)
  local o = { base_url = URL, token = TOKEN, on_retry = on_retry }
  for k, v in pairs(opts or {}) do o[k] = v end
  return flextell.new(o)
end

local function describe(v)
  if flextell.is_error(v) then
    return string.format("flextell.Error{kind=%s, code=%s}: %s", tostring(v.kind), tostring(v.code), tostring(v))
  end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- For a result that should have been data: what came instead.
local function not_data(what, data, err)
  if data == nil and flextell.is_error(err) then
    local msg = tostring(err.message)
    if err.code == "out_of_memory" or msg:lower():find("memory", 1, true) then
      return "a structured error for running out of memory: " .. describe(err)
    end
    return "nil, err instead of " .. what .. ": " .. describe(err)
  end
  return what .. " is " .. describe(data) .. " (second value " .. describe(err) .. ")"
end

local function same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then return path .. " is " .. describe(a) .. ", expected " .. describe(b) end
  if type(a) ~= "table" then
    if a == b and math.type(a) == math.type(b) then return nil end
    return path .. " is " .. describe(a) .. ", expected " .. describe(b)
  end
  if getmetatable(a) ~= getmetatable(b) then return path .. " has another metatable" end
  for k, v in pairs(b) do
    local why = same(a[k], v, path .. "." .. tostring(k))
    if why then return why end
  end
  for k in pairs(a) do
    if b[k] == nil then return path .. "." .. tostring(k) .. " is not expected" end
  end
  return nil
end

-- The echo endpoint's view of a request that the client sent as it should.
local function check_echo(d, method, path)
  if type(d) ~= "table" then return "data is " .. describe(d) end
  if d.method ~= method then return "the server saw method " .. describe(d.method) .. ", not " .. method end
  if d.path ~= path then return "the server saw path " .. describe(d.path) .. ", not " .. path end
  local h = d.headers or {}
  if h.accept ~= "application/json" then return "Accept is " .. describe(h.accept) end
  if h.authorization ~= "Bearer " .. TOKEN then return "Authorization is " .. describe(h.authorization) end
  if type(h["user-agent"]) ~= "string" or not h["user-agent"]:find("^lua%-flextell/") then
    return "User-Agent is " .. describe(h["user-agent"])
  end
  if h["accept-encoding"] == nil then return "no Accept-Encoding: the transfer lost an option" end
  if h.expect ~= nil then return "Expect is " .. describe(h.expect) end
  return nil
end

-- ---- the JSON document of the codec scenario ------------------------------------------------

local function json_document()
  local parts = {}
  -- more keys than the encoder keeps inline (64), so it spills its key list to a buffer
  for i = 1, 70 do parts[#parts + 1] = string.format('"k%02d":%d', i, i * 7) end
  parts[#parts + 1] = '"list":[1,-2,2.5,true,false,null,[],{},"x"]'
  parts[#parts + 1] = '"nested":{"a":{"b":{"c":[{"d":"deep"}]}}}'
  parts[#parts + 1] = '"text":"tab\\tquote\\" slash\\/ \\u00e9\\u20ac \\ud83d\\ude00 line\\n"'
  parts[#parts + 1] = '"pi":3.14159265358979323846264338327950288419716939937510582097494459'
  parts[#parts + 1] = '"big":123456789012345678901234567890'
  parts[#parts + 1] = '"empty":[]'
  -- an escaped string longer than the decoder keeps its working buffer for (64 KiB), so every
  -- decode grows that buffer again
  parts[#parts + 1] = '"long":"' .. string.rep("0123456789abcdef\\n", 4500) .. '"'
  return "{" .. table.concat(parts, ",") .. "}"
end

local JSON_TEXT = json_document()
local JSON_DECODED = assert(flextell.json.decode(JSON_TEXT))
local JSON_ENCODED = assert(flextell.json.encode(JSON_DECODED))
-- the document takes the codec's slower paths: escapes, surrogate pairs, long numbers
assert(JSON_DECODED.k70 == 490 and JSON_DECODED.nested.a.b.c[1].d == "deep" and JSON_DECODED.list[6] == flextell.null)
assert(JSON_DECODED.text:find("\u{1F600}", 1, true) and JSON_DECODED.big == "123456789012345678901234567890")
assert(#JSON_DECODED.long == 17 * 4500)

-- The OAuth scenario needs a fresh authorization code for every run (a code is single use):
-- the sandbox's consent page gives one, through its control module, with nothing failing.
local oauth = {
  prefix = os.getenv "FLEXTELL_SANDBOX_PREFIX",
  client_id = os.getenv "FLEXTELL_SANDBOX_CLIENT_ID",
  client_secret = os.getenv "FLEXTELL_SANDBOX_CLIENT_SECRET",
  redirect_uri = os.getenv "FLEXTELL_SANDBOX_REDIRECT_URI",
}

local function authorization_code()
  if not oauth.sb then
    local sb, err = require("flextell.sandbox").attach(oauth.prefix)
    oauth.sb = assert(sb, err)
  end
  local _, q = oauth.sb:approve(oauth.sb:authorize_url { scope = "customers:read", state = "s" })
  assert(type(q) == "table" and q.code, "the sandbox's consent page gave no code")
  return q.code
end

-- ---- scenarios ------------------------------------------------------------------------------
-- run(...) is what runs with failing allocations, with the values prepare() returns (nothing
-- fails while prepare runs); check(...) gets run's results afterwards and returns nil when they
-- are exactly right, or what is wrong.

-- A task's error is the task's result (nil, err): a raised one (a string) is raised again, so
-- running out inside a task reads as running out; an error value is returned as the
-- scenario's own nil, err.
local function task_result(task)
  local a, b = task:result()
  if a == nil and type(b) == "string" then error(b, 0) end
  return a, b
end

-- Tasks a failed run left behind (run() raised): cancelled before the next run, as a program
-- would, so runs do not pile up work (in sustained mode each would otherwise do more than the
-- last and the sweep would never reach a run without failures).
local leftover = {}

local scenarios = {
  {
    name = "tasks",
    about = "three calls in tasks (flextell.spawn + run), one of them a prefetching walk",
    prepare = function()
      for _, t in ipairs(leftover) do
        if t then t:cancel() end
      end
      leftover = { false, false, false } -- sized now: filling it in run() allocates nothing
    end,
    run = function()
      local c = new_client()
      local one = flextell.spawn(function() return c:get("/v1/customers/1") end)
      leftover[1] = one
      local two = flextell.spawn(function() return c:post("/_echo/t", { n = 2 }) end)
      leftover[2] = two
      local walk = flextell.spawn(function()
        local n = 0
        for _ in c:each("/resources", { limit = 40 }, { prefetch = true }) do n = n + 1 end
        return n
      end)
      leftover[3] = walk
      flextell.run()
      local d1, e1 = task_result(one)
      if d1 == nil then return nil, e1 end
      local d2, e2 = task_result(two)
      if d2 == nil then return nil, e2 end
      local n, e3 = task_result(walk)
      if n == nil then return nil, e3 end
      return d1, d2, n
    end,
    check = function(d1, d2, n)
      if type(d1) ~= "table" or d1.id ~= 1 then return "first call gave " .. describe(d1) end
      if type(d2) ~= "table" or d2.json == nil or d2.json.n ~= 2 then return "second call gave " .. describe(d2) end
      if n ~= 84 then return "the walk gave " .. describe(n) .. " items, not 84" end
      return nil
    end,
  },
  {
    name = "get",
    about = "flextell.new + client:get(\"/v1/customers/1\")",
    run = function()
      local c = new_client()
      return c:get("/v1/customers/1")
    end,
    check = function(data, meta, res)
      if type(data) ~= "table" then return not_data("data", data, meta) end
      if math.type(data.id) ~= "integer" or data.id ~= 1 then return "data.id is " .. describe(data.id) end
      if type(data.email) ~= "string" then return "data.email is " .. describe(data.email) end
      if type(meta) ~= "table" then return "meta is " .. describe(meta) end
      if type(res) ~= "table" or res.status ~= 200 then return "res.status is " .. describe(res and res.status) end
      if type(res.headers) ~= "table" or res.headers["content-type"] == nil then return "res.headers lacks content-type" end
      return nil
    end,
  },
  {
    name = "post",
    about = "client:post(\"/_echo/x\", JSON body, { headers, query })",
    run = function()
      local c = new_client()
      return c:post("/_echo/x", { a = { 1, 2 }, s = "x" }, { headers = { ["X-A"] = "1" }, query = { q = "v" } })
    end,
    check = function(d, meta)
      if type(d) ~= "table" then return not_data("data", d, meta) end
      local why = check_echo(d, "POST", "/api/_echo/x")
      if why then return why end
      if d.uri ~= "/api/_echo/x?q=v" then return "uri is " .. describe(d.uri) end
      if type(d.query) ~= "table" or d.query.q ~= "v" then return "query.q is " .. describe(d.query and d.query.q) end
      if d.headers["x-a"] ~= "1" then return "X-A is " .. describe(d.headers["x-a"]) end
      if d.headers["content-type"] ~= "application/json" then
        return "Content-Type is " .. describe(d.headers["content-type"])
      end
      if d.body ~= '{"a":[1,2],"s":"x"}' then return "body is " .. describe(d.body) end
      return nil
    end,
  },
  {
    name = "all",
    about = "client:all(\"/resources\", { limit = 40 }): three cursor pages",
    run = function()
      local c = new_client()
      return c:all("/resources", { limit = 40 })
    end,
    check = function(items, err)
      if type(items) ~= "table" then return not_data("items", items, err) end
      if #items ~= 84 then return #items .. " items, not 84" end
      for i = 1, 84 do
        local want = string.format("res_%03d", i)
        if type(items[i]) ~= "table" or items[i].id ~= want then
          return "item " .. i .. " is " .. describe(items[i] and items[i].id) .. ", not " .. want
        end
      end
      return nil
    end,
  },
  {
    name = "not_found",
    about = "client:get(\"/v1/customers/999999\"): a 404 is nil, err (a data fault, not memory)",
    run = function()
      local c = new_client()
      return c:get("/v1/customers/999999")
    end,
    check = function(data, err)
      if data ~= nil then return "data is " .. describe(data) .. ", expected nil" end
      if not flextell.is_error(err) then return "err is " .. describe(err) end
      if err.status ~= 404 or err.kind ~= "http" or err.code ~= "not_found" or
         err.message ~= "Customer 999999 not found" then
        return "err is " .. describe(err)
      end
      if type(err.body) ~= "table" or err.body.error ~= "not_found" then return "err.body is " .. describe(err.body) end
      return nil
    end,
  },
  {
    name = "multipart",
    about = "multipart POST to \"/_echo/m\": a data part with filename and type, and a string part",
    run = function()
      local c = new_client()
      return c:post("/_echo/m", nil, { multipart = {
        f = { data = "hello", filename = "h.txt", content_type = "text/plain" },
        g = "v",
      } })
    end,
    check = function(d, meta)
      if type(d) ~= "table" then return not_data("data", d, meta) end
      local why = check_echo(d, "POST", "/api/_echo/m")
      if why then return why end
      local ct = d.headers["content-type"]
      if type(ct) ~= "string" or not ct:find("^multipart/form%-data; boundary=") then
        return "Content-Type is " .. describe(ct)
      end
      local body = d.body or ""
      if not body:find('Content%-Disposition: form%-data; name="f"; filename="h%.txt"\r\n' ..
                       'Content%-Type: text/plain\r\n\r\nhello\r\n') then
        return "part f is not in the body: " .. describe(body)
      end
      if not body:find('Content%-Disposition: form%-data; name="g"\r\n\r\nv\r\n') then
        return "part g is not in the body: " .. describe(body)
      end
      return nil
    end,
  },
  {
    name = "json",
    about = "flextell.json.decode + encode of a nested document (" .. #JSON_TEXT .. " bytes)",
    run = function()
      local t, err = flextell.json.decode(JSON_TEXT)
      if t == nil then return nil, err end
      return t, flextell.json.encode(t)
    end,
    check = function(t, s, e)
      if type(t) ~= "table" then return "decode gave " .. describe(t) .. ", " .. describe(s) end
      local why = same(t, JSON_DECODED, "decoded")
      if why then return why end
      if s ~= JSON_ENCODED then return "encode gave " .. describe(s) .. ", " .. describe(e) end
      return nil
    end,
  },
  {
    name = "delete",
    about = "client:delete(\"/_echo/d\"): a method libcurl is told as a custom request",
    run = function()
      local c = new_client()
      return c:delete("/_echo/d")
    end,
    check = function(d, meta)
      if type(d) ~= "table" then return not_data("data", d, meta) end
      return check_echo(d, "DELETE", "/api/_echo/d")
    end,
  },
  {
    name = "oauth",
    about = "OAuth client: exchange_code, refresh (a rotated refresh token), then get with the new token",
    enabled = oauth.prefix ~= nil and oauth.client_id ~= nil and oauth.client_secret ~= nil and
      oauth.redirect_uri ~= nil,
    prepare = authorization_code,
    run = function(code)
      local c = flextell.new { base_url = URL, client_id = oauth.client_id, client_secret = oauth.client_secret,
                               redirect_uri = oauth.redirect_uri, on_retry = on_retry }
      local first, err = c:exchange_code(code)
      if not first then return nil, err end
      local second
      second, err = c:refresh()
      if not second then return nil, err end
      local data, meta = c:get("/v1/customers/1")
      return data, meta, first, second
    end,
    check = function(data, meta, first, second)
      if type(data) ~= "table" then return not_data("data", data, meta) end
      if data.id ~= 1 then return "data.id is " .. describe(data.id) end
      if type(first) ~= "table" or type(second) ~= "table" then return "tokens are " .. describe(first) end
      if type(second.access_token) ~= "string" or second.access_token == first.access_token then
        return "refresh did not give a new access token"
      end
      if type(second.refresh_token) ~= "string" or second.refresh_token == first.refresh_token then
        return "refresh did not rotate the refresh token"
      end
      return nil
    end,
  },
  {
    name = "token_store",
    about = "OAuth client with a memory token store: exchange_code (lock, save), then a get whose refresh " ..
      "runs the store's steps (peek, lock, reload, save, unlock)",
    enabled = oauth.prefix ~= nil and oauth.client_id ~= nil and oauth.client_secret ~= nil and
      oauth.redirect_uri ~= nil,
    prepare = function() return authorization_code(), flextell.memory_store() end,
    run = function(code, store)
      local c = flextell.new { base_url = URL, client_id = oauth.client_id, client_secret = oauth.client_secret,
                               redirect_uri = oauth.redirect_uri, on_retry = on_retry, token_store = store }
      local first, err = c:exchange_code(code)
      if not first then return nil, err end
      local tokens, version = store:load()
      tokens.expires_at = os.time() - 10
      assert(store:save(tokens, version))
      local d = flextell.new { base_url = URL, client_id = oauth.client_id, client_secret = oauth.client_secret,
                               on_retry = on_retry, token_store = store }
      local data, meta = d:get("/v1/customers/1")
      return data, meta, first, d:tokens(), store
    end,
    check = function(data, meta, first, now, store)
      if type(data) ~= "table" then return not_data("data", data, meta) end
      if data.id ~= 1 then return "data.id is " .. describe(data.id) end
      local saved, version = store:load()
      if version ~= 3 then return "the store's version is " .. describe(version) end
      if saved.refresh_token ~= now.refresh_token or saved.refresh_token == first.refresh_token then
        return "the store does not hold the rotated refresh token"
      end
      return nil
    end,
  },
  {
    name = "with",
    about = "client:with{ tenant, headers }:get(\"/_echo/t\"): a derived client's copied options",
    run = function()
      local c = new_client { headers = { ["X-A"] = "1" } }
      return c:with({ tenant = 7, headers = { ["X-B"] = "2" } }):get("/_echo/t")
    end,
    check = function(d, meta)
      if type(d) ~= "table" then return not_data("data", d, meta) end
      local why = check_echo(d, "GET", "/api/_echo/t")
      if why then return why end
      local h = d.headers
      if h["x-tenant"] ~= "7" or h["x-a"] ~= "1" or h["x-b"] ~= "2" then
        return "X-Tenant, X-A, X-B are " .. describe(h["x-tenant"]) .. ", " .. describe(h["x-a"]) .. ", " ..
          describe(h["x-b"])
      end
      return nil
    end,
  },
}

-- ---- the sweep ------------------------------------------------------------------------------

local function is_oom_raise(info, e)
  if info.status == "errmem" then return true end -- Lua's own memory error
  return info.status == "errrun" and type(e) == "string" and e:find("not enough memory", 1, true) ~= nil
end

-- nil when the run followed the policy; or what went wrong, and whose fault it is: "core", or
-- "libcurl" when libcurl ran out inside a transfer and did not report it as running out (the
-- core cannot tell that from the failure libcurl did report).
local current_mode

-- libcurl 7.88 answers a header line over its 100 KB cap and a failed allocation of its header
-- buffer with the same CURLE_OUT_OF_MEMORY. The core asks the allocator which one it was: if a
-- block of twice the cap can be had, it was the cap (limit headers_too_large). So when only one
-- allocation fails (once mode) and it was libcurl's, headers_too_large is the core's right
-- answer; under sustained failure the same spot must raise.
local function header_cap_answer(info, data, err)
  return current_mode == "once" and info.in_transfer and info.curl_oom and data == nil
    and flextell.is_error(err) and err.kind == "limit" and err.code == "headers_too_large"
end

local function judge(sc, info, ...)
  local why
  if info.status == "ok" and header_cap_answer(info, ...) then return nil end
  if info.status == "ok" then
    why = sc.check(...)
    if why then
      why = "wrong result: " .. why
    elseif retried then
      why = "recovered by a retry: the failure was taken for a network fault (" .. retried .. ")"
    end
  else
    local e = ...
    if not is_oom_raise(info, e) then why = "raised (" .. info.status .. ") " .. describe(e) end
  end
  if why == nil then return nil end
  if info.in_transfer and not info.curl_oom then return why, "libcurl" end
  return why, "core"
end

-- After a failure the next client must work: nothing was left half done in shared state.
local function fresh_client_works()
  local c = new_client()
  local d, err = c:get("/v1/customers/2")
  if type(d) ~= "table" or d.id ~= 2 then return not_data("a fresh client's data", d, err) end
  local t = flextell.json.decode('{"a":[1,"b"]}')
  if type(t) ~= "table" or t.a[2] ~= "b" then return "json.decode no longer works: " .. describe(t) end
  c:close()
  return nil
end

local function split(s)
  local set = {}
  for w in (s or ""):gmatch("[^,%s]+") do set[w] = true end
  return set
end

local only = split(os.getenv "FLEXTELL_OOM_ONLY")

if command == "list" then
  for _, sc in ipairs(scenarios) do
    if sc.enabled ~= false and (next(only) == nil or only[sc.name]) then io.stdout:write(sc.name, "\n") end
  end
  return 0
elseif command ~= nil then
  io.stderr:write("oom: unknown command '", tostring(command), "' (the one there is: list)\n")
  return 2
end
local modes = {}
for _, m in ipairs { "once", "sustained" } do
  local wanted = os.getenv "FLEXTELL_OOM_MODES"
  if not wanted or wanted == "" or split(wanted)[m] then modes[#modes + 1] = m end
end
local leak_each = os.getenv "FLEXTELL_OOM_LEAK_EACH" == "1"

local failures, distinct, order = 0, {}, {}
local notes, note_order = 0, {}
local leaks_seen = false

-- Prints a failure (whose == "core") or a note on libcurl the first time it is seen; later runs
-- with the same outcome at the same place only count.
local function record(sc, mode, n, info, what, whose)
  local label, list = "FAIL", order
  if whose == "libcurl" then
    label, list = "NOTE libcurl", note_order
    notes = notes + 1
  else
    failures = failures + 1
  end
  -- one cause, one entry: the place in the core where the allocation failed and the kind of
  -- outcome (which scenario showed it, and its URL, do not matter)
  local class = what:match("flextell%.Error{[^}]*}") or what:gsub("%b()", ""):gsub("%d+", "#"):sub(1, 60)
  local key = label .. "|" .. (info.site or "") .. "|" .. class .. "|" .. tostring(info.in_transfer)
  local f = distinct[key]
  if f then
    f.count = f.count + 1
    return
  end
  local where = info.domain and (" in " .. info.domain) or ""
  if info.in_transfer then
    where = where .. " inside a transfer (libcurl then reported " .. (info.curl_result or "no failure") .. ")"
  end
  f = { count = 1 }
  f.summary = string.format("%s%s: %s%s", label, (info.site or "") ~= "" and " at " .. info.site or "",
    what:sub(1, 200), string.format(" (first: %s, %s mode, allocation %d)", sc.name, mode, n))
  distinct[key] = f
  list[#list + 1] = f
  f.text = string.format("%s %s (%s), %s mode, allocation %d failed%s:\n  %s\n%s", label, sc.name, sc.about, mode,
    n, where, what, info.stack or "    (no failed allocation)\n")
  io.stdout:write(f.text)
  io.stdout:flush()
end

local function check_leaks(where)
  if leaks_seen then return end
  local leaked = oom_leaks()
  if leaked then
    leaks_seen = true
    failures = failures + 1
    local text = "FAIL leak: LeakSanitizer found unreachable memory after " .. where .. " (its report is above)\n"
    order[#order + 1] = { count = 1, text = text, summary = text:sub(1, -2) }
    io.stdout:write(text)
  end
end

local started = os.clock()
local wall0 = os.time()
local summary = {}

for _, sc in ipairs(scenarios) do
  if sc.enabled == nil then sc.enabled = true end
  if not sc.enabled then
    io.stdout:write("  ", sc.name, ": skipped (the sandbox's FLEXTELL_SANDBOX_* OAuth variables are not set)\n")
  end
  local prepare = sc.prepare or function() end
  if sc.enabled and (next(only) == nil or only[sc.name]) then
    -- the scenario must pass as it is before failures are injected into it
    retried = nil
    oom_label(string.format("scenario %s, run without failures", sc.name))
    local base = table.pack(oom_try(math.maxinteger, false, sc.run, prepare()))
    local why, whose = judge(sc, base[1], table.unpack(base, 2, base.n))
    if why then
      record(sc, "no-failure", 0, base[1], why, whose)
    else
      for _, mode in ipairs(modes) do
        current_mode = mode
        local sustained = mode == "sustained"
        local n, t0 = 0, os.clock()
        while true do
          n = n + 1
          retried = nil
          oom_label(string.format("scenario %s (%s mode), run %d", sc.name, mode, n))
          local r = table.pack(oom_try(n, sustained, sc.run, prepare()))
          local info = r[1]
          if info.injected == 0 then
            -- the whole scenario ran without reaching allocation n: the sweep is complete
            why, whose = judge(sc, info, table.unpack(r, 2, r.n))
            if why then record(sc, mode, n, info, "with no failure injected: " .. why, whose) end
            break
          end
          why, whose = judge(sc, info, table.unpack(r, 2, r.n))
          if why then record(sc, mode, n, info, why, whose) end
          r = nil -- luacheck: ignore 311
          collectgarbage()
          collectgarbage() -- finalizers of the run's objects, with memory available again
          oom_label(string.format("the fresh client after scenario %s (%s mode), run %d", sc.name, mode, n))
          local broken = fresh_client_works()
          if broken then record(sc, mode, n, info, "afterwards: " .. broken, "core") end
          if leak_each then check_leaks(sc.name .. ", " .. mode .. " mode, allocation " .. n) end
        end
        collectgarbage()
        collectgarbage()
        check_leaks(sc.name .. ", " .. mode .. " mode")
        summary[#summary + 1] = string.format("  %-10s %-9s %6d injection points  %6.1f s cpu", sc.name, mode, n - 1,
          os.clock() - t0)
        io.stdout:write(summary[#summary], "\n")
        io.stdout:flush()
      end
    end
  end
end

io.stdout:write(string.format("oom: %d scenario runs in about %d s (%.1f s cpu), %d Lua warnings\n", #summary,
  os.time() - wall0, os.clock() - started, oom_warnings()))
if notes > 0 then
  io.stdout:write(string.format("oom: %d runs, %d distinct outcomes, where libcurl ran out inside a transfer and did "
    .. "not report it as running out (not the core's to catch):\n", notes, #note_order))
  for _, f in ipairs(note_order) do
    io.stdout:write(f.summary, f.count > 1 and string.format(" (%d runs)", f.count) or "", "\n")
  end
end
if failures > 0 then
  io.stdout:write(string.format("oom: %d failing runs, %d distinct failures:\n", failures, #order))
  for _, f in ipairs(order) do
    io.stdout:write(f.summary, f.count > 1 and string.format(" (%d runs)", f.count) or "", "\n")
  end
  return 1
end
io.stdout:write("oom: every run gave the right results or raised \"not enough memory\"\n")
return 0
