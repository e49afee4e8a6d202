-- The sandbox server itself, checked through the curl CLI (not the library under test).
local sandbox = require "spec.helpers.sandbox"
local cjson = require("cjson.safe").new()

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  elseif type(v) == "number" and math.tointeger and v == math.floor(v) and math.abs(v) < 2^53 then
    return math.tointeger(v)
  end
  return v
end

-- A reaped-late zombie (the sandbox's init may not reap daemons at once) counts as gone.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*a")
  f:close()
  return stat:match("%) (%a)") ~= "Z"
end

local sb

-- One HTTP exchange with the curl CLI: { status, headers (lower-case), body, json, curl_exit,
-- error (curl's message, "" when none), time (seconds), size (body bytes received), header_bytes }.
-- opts: token (false: none), headers, body (string), json (table), cacert, base, raw_url, form,
-- max_time, curl (more raw arguments), discard (do not keep the body), proxy (a proxy URL; by
-- default none, whatever the environment says)
local function call(method, path, opts)
  opts = opts or {}
  local hfile, bfile, efile = os.tmpname(), os.tmpname(), os.tmpname()
  local cmd = { "curl -sS", opts.proxy and ("-x " .. q(opts.proxy)) or "--noproxy '*'", "--max-time",
    tostring(opts.max_time or 20), "-X", q(method),
    "-D", q(hfile), "-o", opts.discard and "/dev/null" or q(bfile),
    "-w '%{http_code} %{time_total} %{size_download}'" }
  for _, a in ipairs(opts.curl or {}) do cmd[#cmd + 1] = a end
  if opts.token ~= false then
    cmd[#cmd + 1] = "-H " .. q("Authorization: Bearer " .. (opts.token or sb.token))
  end
  for name, value in pairs(opts.headers or {}) do
    cmd[#cmd + 1] = "-H " .. q(name .. ": " .. value)
  end
  if opts.json ~= nil then
    cmd[#cmd + 1] = "-H 'Content-Type: application/json' --data-binary " .. q(cjson.encode(opts.json))
  elseif opts.body ~= nil then
    cmd[#cmd + 1] = "--data-binary " .. q(opts.body)
  end
  for _, f in ipairs(opts.form or {}) do
    cmd[#cmd + 1] = "-F " .. q(f)
  end
  if opts.cacert then cmd[#cmd + 1] = "--cacert " .. q(opts.cacert) end
  cmd[#cmd + 1] = "--globoff " .. q(opts.raw_url or ((opts.base or sb.url) .. path))
  local out = capture(table.concat(cmd, " ") .. " 2>" .. q(efile) .. "; echo \" $?\"")
  local code, time, size, exit = out:match("^(%d*) ([%d.]+) (%d+) (%d+)%s*$")
  local res = { status = tonumber(code), curl_exit = tonumber(exit), headers = {}, time = tonumber(time),
    size = tonumber(size), error = (read(efile):gsub("%s+$", "")) }
  os.remove(efile)
  local head = read(hfile)
  res.header_bytes = #head
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then res.headers[k:lower()] = v end
  end
  res.body = read(bfile)
  res.json = integers(cjson.decode(res.body))
  os.remove(hfile)
  os.remove(bfile)
  return res
end

local function get(path, opts) return call("GET", path, opts) end

-- A shell command's stdout, exit status and stderr (the status read from the shell, since a
-- pipe's close() does not report it on LuaJIT).
local function sh(cmd)
  local efile = os.tmpname()
  local out = capture(cmd .. " 2>" .. q(efile) .. "; echo \" $?\"")
  local err = read(efile)
  os.remove(efile)
  local body, code = out:match("^(.*) (%d+)%s*$")
  return body, tonumber(code), (err:gsub("%s+$", ""))
end

-- A raw HTTP/1.1 request, as bytes.
local function raw_request(method, target, headers, body)
  local lines = { method .. " " .. target .. " HTTP/1.1" }
  for _, h in ipairs(headers or {}) do lines[#lines + 1] = h end
  if body then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

-- Everything one TCP connection to a loopback port receives until the server closes it, after
-- writing each of `requests` in turn on that connection, a pause apart (so each is read alone,
-- not pipelined). Driven by bash's /dev/tcp: a client that never re-sends anything.
local function raw_exchange(port, requests)
  local script = { "exec 3<>/dev/tcp/127.0.0.1/" .. port }
  for i, r in ipairs(requests) do
    if i > 1 then script[#script + 1] = "sleep 0.3" end
    script[#script + 1] = "printf '%s' " .. q(r) .. " >&3"
  end
  script[#script + 1] = "timeout 10 cat <&3"
  local out, code = sh("bash -c " .. q(table.concat(script, "\n")))
  assert.equal(0, code)
  return out
end

-- The status, headers (lower-case) and body of a raw response, and the bytes after its body.
local function parse_response(bytes)
  local head, rest = bytes:match("^(.-)\r\n\r\n(.*)$")
  local res = { status = tonumber(head:match("^HTTP/1%.1 (%d%d%d)")), headers = {} }
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do res.headers[k:lower()] = v end
  local n = tonumber(res.headers["content-length"]) or #rest
  res.body, res.after = rest:sub(1, n), rest:sub(n + 1)
  return res
end

describe("flextell.sandbox", function()
  setup(function()
    sb = sandbox.start()
  end)

  teardown(function()
    sb:stop()
  end)

  before_each(function()
    assert(sb:reset())
  end)

  describe("launcher", function()
    it("returns a handle with loopback URLs, the CA and the fixed OAuth client", function()
      assert.equal("http://127.0.0.1:" .. sb.port .. "/api", sb.url)
      assert.equal("https://127.0.0.1:" .. sb.tls_port .. "/api", sb.https_url)
      assert.equal("http://127.0.0.1:" .. sb.port, sb.origin)
      assert.is_true(sb.port >= 20000 and sb.port <= 60999)
      assert.is_true(sb.tls_port >= 20000 and sb.tls_port <= 60999)
      assert.equal(sb.prefix .. "/tls/ca.pem", sb.ca_file)
      assert.equal("sandbox-token", sb.token)
      assert.equal("sandbox-client", sb.client_id)
      assert.equal("sandbox-secret", sb.client_secret)
      assert.equal("http://127.0.0.1/callback", sb.redirect_uri)
    end)

    it("serves HTTPS that verifies against the generated CA for 127.0.0.1 and localhost", function()
      local res = get("/v1/account/tenants", { base = sb.https_url, cacert = sb.ca_file })
      assert.equal(200, res.status)
      assert.equal(3, #res.json.data)
      res = get("", { raw_url = "https://localhost:" .. sb.tls_port .. "/api/v1/account/tenants",
        cacert = sb.ca_file })
      assert.equal(200, res.status)
    end)

    it("fails TLS verification without the CA", function()
      local res = get("/v1/account/tenants", { base = sb.https_url })
      assert.equal(60, res.curl_exit)
    end)

    it("uses an EC P-256 server certificate with the loopback names", function()
      local text = capture("openssl x509 -noout -text -in " .. q(sb.prefix .. "/tls/server.pem"))
      assert.truthy(text:find("prime256v1", 1, true))
      assert.truthy(text:find("IP Address:127.0.0.1", 1, true))
      assert.truthy(text:find("IP Address:0:0:0:0:0:0:0:1", 1, true))
      assert.truthy(text:find("DNS:localhost", 1, true))
    end)

    it("stops nginx, leaves no process and removes its prefix; stop is idempotent", function()
      local other = assert(sandbox.launcher.start({ tls = false }))
      assert.is_nil(other.tls_port)
      assert.is_nil(other.https_url)
      local master = tonumber(read(other.prefix .. "/logs/nginx.pid"))
      local worker = tonumber(read(other.prefix .. "/logs/worker.pid"))
      assert.is_true(alive(master))
      assert.is_true(alive(worker))
      assert.is_true(other:stop())
      assert.is_false(alive(master))
      assert.is_false(alive(worker))
      assert.is_nil(io.open(other.prefix .. "/nginx.conf"))
      assert.is_true(other:stop())
      local _, err = other:control("GET", "/_sandbox/health")
      assert.equal("the sandbox is stopped", err)
      -- the port it let go of can be asked for
      local again = assert(sandbox.launcher.start({ tls = false, proxy_port = other.proxy_port }))
      finally(function() again:stop() end)
      assert.equal("http://127.0.0.1:" .. other.proxy_port, again.proxy_url)
      local res = call("GET", "", { proxy = again.proxy_url, raw_url = "http://x.test/api/v1/customers/1" })
      assert.equal(200, res.status)
    end)

    it("uses a given prefix and keeps it after stop", function()
      local dir = os.tmpname()
      os.remove(dir)
      local other = assert(sandbox.launcher.start({ tls = false, prefix = dir }))
      assert.equal(dir, other.prefix)
      assert.truthy(read(dir .. "/nginx.conf"):find("lua_package_path", 1, true))
      other:stop()
      assert.is_nil(io.open(dir .. "/logs/nginx.pid"))
      assert.truthy(io.open(dir .. "/nginx.conf"))
      os.execute("rm -rf " .. q(dir))
    end)

    it("takes OAuth clients at start; the handle carries the first one", function()
      local other = assert(sandbox.launcher.start({ tls = false, token_ttl = 5, clients = {
        { client_id = "app", client_secret = "s3cret", name = "App",
          redirect_uris = { "http://127.0.0.1:8080/cb", "app://cb" } } } }))
      finally(function() other:stop() end)
      assert.equal("app", other.client_id)
      assert.equal("s3cret", other.client_secret)
      assert.equal("http://127.0.0.1:8080/cb", other.redirect_uri)
      local location, query = other:approve(other:authorize_url({ redirect_uri = "app://cb", state = "k" }))
      assert.truthy(location:match("^app://cb%?code=sbac_[%w_-]+&state=k$"), location)
      assert.equal("k", query.state)
      local o = assert(other:oauth())
      assert.equal(5, o.settings.token_ttl)
      assert.same({ { client_id = "app", client_secret = "s3cret", name = "App",
        redirect_uris = { "http://127.0.0.1:8080/cb", "app://cb" } } }, o.settings.clients)
      other:stop()
      assert.has_error(function() sandbox.launcher.start({ clients = {} }) end,
        "flextell.sandbox.start: clients must be a non-empty list")
    end)

    it("prints the proxy URL from the command line launcher", function()
      local out, code = sh("unset LD_PRELOAD; bin/flextell-sandbox start")
      assert.equal(0, code, out)
      local env = {}
      for k, v in out:gmatch("export ([%w_]+)='([^']*)'") do env[k] = v end
      finally(function() sh("bin/flextell-sandbox stop " .. q(env.FLEXTELL_SANDBOX_PREFIX)) end)
      local port = tonumber(env.FLEXTELL_SANDBOX_PROXY_URL:match("^http://127%.0%.0%.1:(%d+)$"))
      assert.is_true(port >= 20000 and port <= 60999)
      local res = call("GET", "", { proxy = env.FLEXTELL_SANDBOX_PROXY_URL,
        raw_url = "http://api.flextell.test/api/v1/customers/1" })
      assert.equal(200, res.status)
      assert.equal(1, res.json.data.id)
    end)

    it("raises on an unknown option", function()
      assert.has_error(function() sandbox.launcher.start({ colour = "blue" }) end,
        "flextell.sandbox.start: unknown option 'colour'")
    end)

    -- the message of the error fn raises; it must name the line of fn (a one-line function), the
    -- caller's, not a line inside the module
    local function raised(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.equal("string", type(err))
      local file, line, message = err:match("^(.-):(%d+): (.*)$")
      assert.matches("sandbox_spec%.lua$", file)
      assert.equal(debug.getinfo(fn, "S").linedefined, tonumber(line))
      return message
    end

    it("raises on an option of the wrong type or value, at the caller's line, before starting anything", function()
      local start = sandbox.launcher.start
      assert.equal("flextell.sandbox.start: option 'port' must be an integer 1-65535, got string",
        raised(function() start({ port = "x" }) end))
      for _, port in ipairs({ 0, 65536, 1.5, 0 / 0, math.huge }) do
        assert.equal("flextell.sandbox.start: option 'port' must be an integer 1-65535",
          raised(function() start({ port = port }) end))
      end
      assert.equal("flextell.sandbox.start: option 'tls_port' must be an integer 1-65535, got boolean",
        raised(function() start({ tls_port = true }) end))
      assert.equal("flextell.sandbox.start: option 'tls' must be a boolean, got string",
        raised(function() start({ tls = "yes" }) end))
      assert.equal("flextell.sandbox.start: option 'rate_limit' must be an integer >= 0",
        raised(function() start({ rate_limit = -1 }) end))
      assert.equal("flextell.sandbox.start: option 'rate_window' must be an integer >= 1 (seconds)",
        raised(function() start({ rate_window = 0 }) end))
      assert.equal("flextell.sandbox.start: option 'token_ttl' must be an integer >= 0 (seconds), got string",
        raised(function() start({ token_ttl = "1h" }) end))
      assert.equal("flextell.sandbox.start: option 'tokens' must be a non-empty list of non-empty strings",
        raised(function() start({ tokens = {} }) end))
      assert.equal("flextell.sandbox.start: option 'tokens' must be a non-empty list of non-empty strings",
        raised(function() start({ tokens = { "a", 5 } }) end))
      assert.equal("flextell.sandbox.start: option 'tokens' must be a non-empty list of non-empty strings, got string",
        raised(function() start({ tokens = "a" }) end))
      assert.equal("flextell.sandbox.start: option 'log_level' must be one of debug, info, notice, warn, error, " ..
        "crit, alert, emerg", raised(function() start({ log_level = "loud" }) end))
      assert.equal("flextell.sandbox.start: option 'prefix' must be a non-empty string",
        raised(function() start({ prefix = "" }) end))
      assert.equal("flextell.sandbox.start: options 'port' and 'proxy_port' must be different ports",
        raised(function() start({ port = 30001, proxy_port = 30001 }) end))
      assert.equal("flextell.sandbox.start: unknown option 'colour'",
        raised(function() start({ colour = "blue" }) end))
      assert.equal("bad argument #1 to 'start' (table expected, got string)",
        raised(function() start("tls") end))
    end)

    it("raises on attach without a prefix, and returns nil, err for a prefix without a sandbox", function()
      assert.equal("bad argument #1 to 'attach' (string expected, got nil)",
        raised(function() sandbox.launcher.attach() end))
      local h, err = sandbox.launcher.attach("/nonexistent/flextell-sandbox")
      assert.is_nil(h)
      assert.equal("flextell.sandbox: no sandbox at /nonexistent/flextell-sandbox", err)
      local same = assert(sandbox.launcher.attach(sb.prefix))
      assert.equal(sb.url, same.url)
      assert.is_true(same.detached)
    end)

    it("raises on a handle method's argument of the wrong type or an unknown filter", function()
      assert.equal("sb:requests: unknown filter 'bogus'", raised(function() sb:requests { bogus = 1 } end))
      assert.equal("sb:requests: filter 'since' must be a number, got string",
        raised(function() sb:requests { since = "3" } end))
      assert.equal("bad argument #1 to 'requests' (table expected, got string)",
        raised(function() sb:requests("GET") end))
      assert.equal("bad argument #1 to 'control' (string expected, got nil)",
        raised(function() sb:control(nil, "health") end))
      assert.equal("bad argument #3 to 'control' (table or string expected, got number)",
        raised(function() sb:control("POST", "config", 5) end))
      assert.equal("bad argument #1 to 'arm' (table expected, got string)", raised(function() sb:arm("status") end))
      assert.equal("bad argument #1 to 'config' (table expected, got string)",
        raised(function() sb:config("rate_limit") end))
      assert.equal("sb:expire_tokens: unknown option 'all'", raised(function() sb:expire_tokens { all = true } end))
      assert.equal("sb:expire_tokens: option 'refresh' must be a boolean, got number",
        raised(function() sb:expire_tokens { refresh = 1 } end))
      assert.equal("bad argument #2 to 'authorize_url' (string expected, got number)",
        raised(function() sb:authorize_url(nil, 8080) end))
      assert.equal("bad argument #1 to 'approve' (string expected, got nil)", raised(function() sb:approve() end))
      assert.equal("bad argument #1 to 'deny' (string expected, got table)", raised(function() sb:deny({}) end))
      -- the filters that exist still work
      assert.equal(0, sb:requests { method = "GET", path = "/api/none", since = 0, proxied = false }.count)
    end)
  end)

  describe("authentication", function()
    it("answers 401 unauthorized without an Authorization header", function()
      local res = get("/v1/customers", { token = false })
      assert.equal(401, res.status)
      assert.same({ error = "unauthorized",
        message = "Authentication required: send an Authorization: Bearer token." }, res.json)
      assert.equal('Bearer realm="flextell"', res.headers["www-authenticate"])
      assert.equal("application/json", res.headers["content-type"])
    end)

    it("answers 401 invalid_token for an unknown token", function()
      local res = get("/v1/customers", { token = "nope" })
      assert.equal(401, res.status)
      assert.same({ error = "invalid_token", message = "The access token is invalid." }, res.json)
    end)

    it("answers 401 invalid_token for a malformed header", function()
      local res = get("/v1/customers", { token = false, headers = { Authorization = "Basic abc" } })
      assert.equal(401, res.status)
      assert.equal("invalid_token", res.json.error)
    end)

    it("accepts every static token given at start", function()
      local res = get("/v1/customers/1")
      assert.equal(200, res.status)
    end)

    it("accepts tokens set through the control API", function()
      assert.same({ "t-one", "t-two" }, sb:config({ tokens = { "t-one", "t-two" } }).tokens)
      assert.equal(200, get("/v1/customers/1", { token = "t-two" }).status)
      assert.equal(401, get("/v1/customers/1").status)
    end)
  end)

  describe("responses", function()
    it("carry JSON, a unique X-Request-Id and rate-limit headers", function()
      local a, b = get("/v1/customers/1"), get("/v1/customers/1")
      assert.equal("application/json", a.headers["content-type"])
      assert.truthy(a.headers["x-request-id"]:match("^req_%x+$"))
      assert.are_not.equal(a.headers["x-request-id"], b.headers["x-request-id"])
      assert.equal("1000", a.headers["x-ratelimit-limit"])
      assert.equal("999", a.headers["x-ratelimit-remaining"])
      assert.equal("998", b.headers["x-ratelimit-remaining"])
      local reset = tonumber(a.headers["x-ratelimit-reset"])
      assert.is_true(reset > os.time() + 50 and reset <= os.time() + 61)
    end)

    it("answer 404 not_found for an unknown endpoint and 405 for a wrong method", function()
      local res = get("/v1/nothing")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "No such endpoint: GET /api/v1/nothing." }, res.json)
      res = call("POST", "/v1/account/tenants")
      assert.equal(405, res.status)
      assert.equal("method_not_allowed", res.json.error)
      assert.equal("GET", res.headers["allow"])
    end)
  end)

  describe("rate limits", function()
    it("refuse calls with 429 and Retry-After once the window's budget is spent", function()
      sb:config({ rate_limit = 2, rate_window = 30 })
      assert.equal("1", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      assert.equal("0", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      local res = get("/v1/customers/1")
      assert.equal(429, res.status)
      assert.equal("rate_limit_exceeded", res.json.error)
      assert.equal("Rate limit of 2 requests per 30 seconds exceeded; retry in " ..
        res.headers["retry-after"] .. " seconds.", res.json.message)
      local wait = tonumber(res.headers["retry-after"])
      assert.is_true(wait >= 29 and wait <= 30)
      assert.equal("0", res.headers["x-ratelimit-remaining"])
      assert.equal("2", res.headers["x-ratelimit-limit"])
    end)

    it("count per token", function()
      sb:config({ rate_limit = 1, tokens = { "a", "b" } })
      assert.equal(200, get("/v1/customers/1", { token = "a" }).status)
      assert.equal(429, get("/v1/customers/1", { token = "a" }).status)
      assert.equal(200, get("/v1/customers/1", { token = "b" }).status)
    end)

    it("start again after the window", function()
      -- a window of 2 s holds at least 1 s whichever fraction of a second it starts at, so the
      -- second call lands in it even on a slow run (valgrind)
      sb:config({ rate_limit = 1, rate_window = 2 })
      assert.equal(200, get("/v1/customers/1").status)
      assert.equal(429, get("/v1/customers/1").status)
      os.execute("sleep 3")
      assert.equal(200, get("/v1/customers/1").status)
    end)
  end)

  describe("/api/resources (cursor style)", function()
    it("lists 20 items by default with an opaque cursor", function()
      local res = get("/resources")
      assert.equal(200, res.status)
      assert.equal(20, #res.json.data)
      assert.same({ id = "res_001", name = "Resource 1", status = "active", description = cjson.null,
        created_at = "2025-01-06T09:01:00Z", updated_at = "2025-01-07T09:01:00Z" }, res.json.data[1])
      assert.equal(84, res.json.meta.total)
      assert.is_true(res.json.meta.has_more)
      assert.equal("string", type(res.json.meta.cursor))
      assert.is_nil(tonumber(res.json.meta.cursor))
    end)

    it("walks all 84 items with limit 25 and ends with a null cursor", function()
      local ids, cursor, pages = {}, nil, 0
      repeat
        local path = "/resources?limit=25"
        if cursor then
          path = path .. "&cursor=" .. cursor:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)
        end
        local res = get(path)
        assert.equal(200, res.status)
        pages = pages + 1
        for _, item in ipairs(res.json.data) do ids[#ids + 1] = item.id end
        cursor = res.json.meta.cursor
        assert.equal(cursor ~= cjson.null, res.json.meta.has_more)
      until cursor == cjson.null
      assert.equal(4, pages)
      assert.equal(84, #ids)
      assert.equal("res_084", ids[84])
    end)

    it("refuses a bad limit and a garbled cursor with 400 invalid_request", function()
      for _, v in ipairs({ "0", "101", "abc", "1.5", "-1" }) do
        local res = get("/resources?limit=" .. v)
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request",
          message = "The limit parameter must be an integer between 1 and 100." }, res.json)
      end
      for _, c in ipairs({ "20", "garbage", "bzIwLjAwMDAwMDAw" }) do
        local res = get("/resources?cursor=" .. c)
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = "The cursor parameter is not a valid cursor." },
          res.json)
      end
    end)

    it("creates, reads, replaces, modifies and deletes an item", function()
      local res = call("POST", "/resources", { json = { name = "New one" } })
      assert.equal(201, res.status)
      local item = res.json.data
      assert.equal("res_085", item.id)
      assert.equal("New one", item.name)
      assert.equal("active", item.status)
      assert.equal(item.created_at, item.updated_at)
      assert.truthy(item.created_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
      assert.same(item, get("/resources/res_085").json.data)
      res = call("PUT", "/resources/res_085", { json = { name = "Renamed", status = "archived" } })
      assert.equal(200, res.status)
      assert.equal("archived", res.json.data.status)
      res = call("PATCH", "/resources/res_085", { json = { description = "patched" } })
      assert.equal("Renamed", res.json.data.name)
      assert.equal("patched", res.json.data.description)
      res = call("DELETE", "/resources/res_085")
      assert.equal(204, res.status)
      assert.equal("", res.body)
      res = get("/resources/res_085")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "Resource res_085 not found" }, res.json)
      assert.equal(84, get("/resources").json.meta.total)
    end)

    it("answers 422 validation_error without a name", function()
      local res = call("POST", "/resources", { json = { status = "active" } })
      assert.equal(422, res.status)
      assert.same({ error = "validation_error", message = "The given data was invalid.",
        errors = { name = { "The name field is required." } } }, res.json)
    end)
  end)

  describe("/api/v1 (page style)", function()
    it("lists customers with Laravel links and meta", function()
      local res = get("/v1/customers?per_page=10&page=2")
      assert.equal(200, res.status)
      local body = res.json
      assert.equal(10, #body.data)
      assert.equal(11, body.data[1].id)
      local base = sb.url .. "/v1/customers"
      assert.same({ first = base .. "?page=1&per_page=10", last = base .. "?page=5&per_page=10",
        prev = base .. "?page=1&per_page=10", next = base .. "?page=3&per_page=10" }, body.links)
      local meta = body.meta
      assert.equal(2, meta.current_page)
      assert.equal(11, meta.from)
      assert.equal(20, meta.to)
      assert.equal(5, meta.last_page)
      assert.equal(10, meta.per_page)
      assert.equal(45, meta.total)
      assert.equal(base, meta.path)
      assert.equal(7, #meta.links)
      assert.same({ url = base .. "?page=1&per_page=10", label = "&laquo; Previous", active = false },
        meta.links[1])
      assert.same({ url = base .. "?page=2&per_page=10", label = "2", active = true }, meta.links[3])
    end)

    it("defaults to 15 per page and ends with a null next link", function()
      local res = get("/v1/customers?page=3")
      assert.equal(15, res.json.meta.per_page)
      assert.equal(15, #res.json.data)
      assert.equal(cjson.null, res.json.links.next)
      assert.equal(3, res.json.meta.last_page)
    end)

    it("answers an empty page past the end", function()
      local res = get("/v1/customers?page=9")
      assert.equal(200, res.status)
      assert.same({}, res.json.data)
      assert.equal("[]", res.body:match('"data":(%[%])'))
      assert.equal(cjson.null, res.json.meta.from)
      assert.equal(cjson.null, res.json.meta.to)
    end)

    it("refuses bad page and per_page values with 400 invalid_request", function()
      local cases = {
        { "page=0", "The page parameter must be an integer >= 1." },
        { "page=x", "The page parameter must be an integer >= 1." },
        { "per_page=0", "The per_page parameter must be an integer between 1 and 100." },
        { "per_page=101", "The per_page parameter must be an integer between 1 and 100." },
        { "sort_order=up", "The sort_order parameter must be one of: asc, desc." },
        { "trashed=all", "The trashed parameter must be one of: with, only." },
        { "sort_by=password", "The sort_by parameter must be one of the resource's fields." },
      }
      for _, c in ipairs(cases) do
        local res = get("/v1/customers?" .. c[1])
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = c[2] }, res.json)
      end
    end)

    it("filters with search and sorts with sort_by and sort_order", function()
      local res = get("/v1/customers?search=ADA&per_page=100")
      assert.equal(3, res.json.meta.total)
      for _, c in ipairs(res.json.data) do assert.equal("Ada", c.first_name) end
      res = get("/v1/products?sort_by=price&sort_order=desc&per_page=100")
      local prev = math.huge
      for _, p in ipairs(res.json.data) do
        assert.is_true(p.price <= prev)
        prev = p.price
      end
    end)

    it("returns customers in the data envelope with seed values", function()
      local res = get("/v1/customers/2")
      assert.equal(200, res.status)
      assert.same({ data = { id = 2, first_name = "Grace", last_name = "Jones",
        email = "grace.jones2@example.com", phone = "+1-555-0102", tags = {}, notes = cjson.null,
        created_at = "2025-01-06T11:00:00Z", updated_at = "2025-01-08T11:00:00Z",
        deleted_at = cjson.null } }, res.json)
      assert.truthy(res.body:find('"tags":[]', 1, true))
    end)

    it("returns products in the success envelope", function()
      local res = get("/v1/products/1")
      assert.equal(200, res.status)
      assert.equal("Product retrieved successfully.", res.json.success)
      assert.equal(1, res.json.data.id)
      assert.equal("Hydrating Serum 1", res.json.data.name)
      for _, name in ipairs({ "sales", "appointments", "rooms", "treatments" }) do
        assert.truthy(get("/v1/" .. name .. "/1", { headers = { ["X-Tenant"] = "1" } }).json.success)
      end
      for _, name in ipairs({ "users", "conversations" }) do
        local body = get("/v1/" .. name .. "/1").json
        assert.is_nil(body.success)
        assert.equal(1, body.data.id)
      end
    end)

    it("has the documented seed counts", function()
      local counts = { customers = 45, products = 30, conversations = 12, appointments = 20, sales = 10,
        users = 5, rooms = 4, treatments = 8, invoices = 10 }
      for name, n in pairs(counts) do
        assert.equal(n, get("/v1/" .. name).json.meta.total, name)
      end
    end)

    it("answers 404 not_found with the resource name", function()
      local res = get("/v1/customers/999")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "Customer 999 not found" }, res.json)
      res = get("/v1/customers/a%2Fb")
      assert.same({ error = "not_found", message = "Customer a/b not found" }, res.json)
    end)

    it("creates a customer (201) with a new integer id and keeps it", function()
      local res = call("POST", "/v1/customers", { body = '{"first_name":"Linus","email":"linus@example.com","tags":[]}',
        headers = { ["Content-Type"] = "application/json" } })
      assert.equal(201, res.status)
      local c = res.json.data
      assert.equal(46, c.id)
      assert.equal("Linus", c.first_name)
      assert.equal(cjson.null, c.last_name)
      assert.equal(cjson.null, c.deleted_at)
      assert.truthy(res.body:find('"tags":[]', 1, true))
      assert.same(c, get("/v1/customers/46").json.data)
      assert.equal(46, get("/v1/customers").json.meta.total)
    end)

    it("validates with 422 validation_error and field messages", function()
      local res = call("POST", "/v1/customers", { json = { email = "not-an-email", tags = "x" } })
      assert.equal(422, res.status)
      assert.same({ error = "validation_error", message = "The given data was invalid.", errors = {
        first_name = { "The first name field is required." },
        email = { "The email must be a valid email address." },
        tags = { "The tags must be an array." },
      } }, res.json)
      res = call("POST", "/v1/products", { json = { name = "P", price = -1 } })
      assert.same({ price = { "The price must be at least 0." } }, res.json.errors)
      res = call("POST", "/v1/products", { json = { name = "P", price = "9" } })
      assert.same({ price = { "The price must be a number." } }, res.json.errors)
    end)

    it("answers 409 conflict for a duplicate customer email", function()
      local res = call("POST", "/v1/customers", { json = { first_name = "X", email = "ADA.KNUTH1@example.com" } })
      assert.equal(409, res.status)
      assert.same({ error = "conflict", message = "A customer with this email already exists." }, res.json)
    end)

    it("refuses a body that is not a JSON object with 400 invalid_request", function()
      for _, body in ipairs({ "{nope", "[1,2]", "\"text\"" }) do
        local res = call("POST", "/v1/customers", { body = body, headers = { ["Content-Type"] = "application/json" } })
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = "The request body must be a JSON object." }, res.json)
      end
    end)

    it("replaces with PUT and merges with PATCH", function()
      local res = call("PUT", "/v1/customers/1", { json = { first_name = "Ada", email = "ada@example.com" } })
      assert.equal(200, res.status)
      assert.equal("ada@example.com", res.json.data.email)
      assert.equal(cjson.null, res.json.data.last_name)
      assert.equal(cjson.null, res.json.data.phone)
      assert.equal("2025-01-06T10:00:00Z", res.json.data.created_at)
      res = call("PATCH", "/v1/customers/2", { json = { last_name = "Hopper" } })
      assert.equal(200, res.status)
      assert.equal("Grace", res.json.data.first_name)
      assert.equal("Hopper", res.json.data.last_name)
      res = call("PUT", "/v1/customers/3", { json = { last_name = "Only" } })
      assert.equal(422, res.status)
      res = call("PATCH", "/v1/customers/3", { json = { first_name = cjson.null } })
      assert.same({ first_name = { "The first name field is required." } }, res.json.errors)
      res = call("PATCH", "/v1/products/1", { json = { price = 12.5 } })
      assert.equal("Product updated successfully.", res.json.success)
      assert.equal(12.5, res.json.data.price)
    end)

    it("soft deletes with 204 and shows deleted records with trashed", function()
      local res = call("DELETE", "/v1/customers/5")
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.equal(404, get("/v1/customers/5").status)
      assert.equal(44, get("/v1/customers").json.meta.total)
      res = get("/v1/customers?trashed=only")
      assert.equal(1, res.json.meta.total)
      assert.equal(5, res.json.data[1].id)
      assert.truthy(res.json.data[1].deleted_at:match("^%d%d%d%d%-"))
      assert.equal(45, get("/v1/customers?trashed=with").json.meta.total)
    end)

    it("serves customer notes and files", function()
      local res = get("/v1/customers/1/notes")
      assert.equal(2, res.json.meta.total)
      res = call("POST", "/v1/customers/1/notes", { json = { body = "Called back" } })
      assert.equal(201, res.status)
      assert.equal(1, res.json.data.customer_id)
      assert.equal("Called back", res.json.data.body)
      assert.equal(3, get("/v1/customers/1/notes").json.meta.total)
      assert.equal(2, get("/v1/customers/1/files").json.meta.total)
    end)

    it("serves conversation messages", function()
      local res = get("/v1/conversations/2/messages")
      assert.equal(3, res.json.meta.total)
      assert.equal("Message 1 of conversation 2", res.json.data[1].message)
      res = call("POST", "/v1/conversations/2/messages", { json = { message = "Hello" } })
      assert.equal(201, res.status)
      local id = res.json.data.id
      assert.equal(37, id)
      assert.equal("outbound", res.json.data.direction)
      res = call("PUT", "/v1/conversations/2/messages/" .. id, { json = { message = "Edited" } })
      assert.equal("Edited", res.json.data.message)
      assert.equal(204, call("DELETE", "/v1/conversations/2/messages/" .. id).status)
      assert.equal(404, call("PUT", "/v1/conversations/3/messages/1", { json = { message = "x" } }).status)
    end)

    it("enables and disables the conversation agent", function()
      local res = call("POST", "/v1/conversations/2/agent/enable")
      assert.same({ success = "Agent enabled successfully.",
        data = { message = "The AI agent is enabled for conversation 2." } }, res.json)
      assert.is_true(get("/v1/conversations/2/agent").json.data.enabled)
      res = call("POST", "/v1/conversations/2/agent/disable", { json = { duration_minutes = 30 } })
      assert.same({ success = "Agent disabled successfully.",
        data = { message = "The AI agent is disabled for conversation 2 for 30 minutes." } }, res.json)
      assert.is_false(get("/v1/conversations/2/agent").json.data.enabled)
    end)

    it("cancels an invoice with a bare message", function()
      local res = call("POST", "/v1/invoices/3/cancel")
      assert.equal(200, res.status)
      assert.same({ message = "Invoice 3 cancelled." }, res.json)
      assert.equal(409, call("POST", "/v1/invoices/3/cancel").status)
      assert.same({ message = "Invoice 3 cancellation reverted." }, call("POST", "/v1/invoices/3/revert-cancel").json)
    end)

    it("accepts multipart uploads and echoes the file's size and digests", function()
      local file = os.tmpname()
      local f = assert(io.open(file, "wb"))
      f:write("hello upload\n")
      f:close()
      local res = call("POST", "/v1/files", { form = { "file=@" .. file .. ";filename=a b.txt;type=text/plain",
        "customer_id=3" } })
      assert.equal(201, res.status)
      local d = res.json.data
      assert.equal("a b.txt", d.filename)
      assert.equal(13, d.size)
      assert.equal("text/plain", d.content_type)
      assert.equal(3, d.customer_id)
      assert.equal(capture("sha256sum " .. q(file)):match("^%x+"), d.sha256)
      assert.equal(capture("md5sum " .. q(file)):match("^%x+"), d.md5)
      res = call("POST", "/v1/conversations/1/messages/media", { form = { "file=@" .. file, "message=Look" } })
      assert.equal(201, res.status)
      assert.equal("media", res.json.data.type)
      assert.equal("Look", res.json.data.message)
      assert.equal(13, res.json.data.media.size)
      res = call("POST", "/v1/files", { form = { "note=x" } })
      assert.equal(422, res.status)
      assert.same({ file = { "The file field is required." } }, res.json.errors)
      os.remove(file)
    end)
  end)

  describe("tenants", function()
    it("lists the account's tenants without X-Tenant", function()
      local res = get("/v1/account/tenants")
      assert.same({ data = { { id = 1, name = "Flextell Demo Clinic" }, { id = 7, name = "Seven Oaks Spa" },
        { id = 42, name = "Answer Dental" } } }, res.json)
    end)

    it("refuses a non-integer X-Tenant with 400 and an unknown one with 403", function()
      local res = get("/v1/customers", { headers = { ["X-Tenant"] = "abc" } })
      assert.equal(400, res.status)
      assert.same({ error = "invalid_request", message = "The X-Tenant header must be an integer tenant id." },
        res.json)
      res = get("/v1/customers", { headers = { ["X-Tenant"] = "99" } })
      assert.equal(403, res.status)
      assert.same({ error = "forbidden", message = "You do not have access to tenant 99." }, res.json)
    end)

    it("requires X-Tenant where the reference does", function()
      for _, path in ipairs({ "/v1/tags", "/v1/stocks/movements", "/v1/sales/1", "/v1/appointments/calendar",
        "/v1/roles/1" }) do
        local res = get(path)
        assert.equal(400, res.status, path)
        assert.same({ error = "invalid_request", message = "The X-Tenant header is required." }, res.json)
        assert.equal(200, get(path, { headers = { ["X-Tenant"] = "7" } }).status, path)
      end
      assert.equal(200, get("/v1/sales").status)
    end)

    it("keeps each tenant's data apart; no header is tenant 1", function()
      local res = call("POST", "/v1/customers", { json = { first_name = "Seven", email = "s@example.com" },
        headers = { ["X-Tenant"] = "7" } })
      assert.equal(46, res.json.data.id)
      assert.equal(200, get("/v1/customers/46", { headers = { ["X-Tenant"] = "7" } }).status)
      assert.equal(404, get("/v1/customers/46", { headers = { ["X-Tenant"] = "42" } }).status)
      assert.equal(404, get("/v1/customers/46").status)
      call("POST", "/v1/customers", { json = { first_name = "One", email = "one@example.com" } })
      assert.equal("One", get("/v1/customers/46", { headers = { ["X-Tenant"] = "1" } }).json.data.first_name)
    end)

    it("answers the calendar as a plain list between from and to", function()
      local res = get("/v1/appointments/calendar?from=2025-02-06&to=2025-02-07", { headers = { ["X-Tenant"] = "1" } })
      assert.equal(200, res.status)
      assert.is_nil(res.json.meta)
      assert.equal(4, #res.json.data)
      for _, a in ipairs(res.json.data) do
        assert.truthy(a.starts_at:match("^2025%-02%-0[67]"))
      end
    end)

    it("records stock movements under a tenant", function()
      local t = { ["X-Tenant"] = "7" }
      local res = call("POST", "/v1/stocks/entry", { json = { product_id = 2, quantity = 5 }, headers = t })
      assert.equal(201, res.status)
      assert.equal("Stock entry recorded successfully.", res.json.success)
      assert.equal("entry", res.json.data.type)
      assert.equal(11, get("/v1/products/2", { headers = t }).json.data.stock)
      assert.equal(1, get("/v1/stocks/movements", { headers = t }).json.meta.total)
    end)
  end)

  describe("/api/_echo", function()
    it("returns the request exactly as received, without auth", function()
      local res = call("POST", "/_echo/a%2Fb/c%20d?x=1%202&y=%2B&y=z&flag", {
        token = false, headers = { ["X-Custom"] = "v", ["Content-Type"] = "application/json" },
        body = '{"n":12345678901234567890,"e":[]}' })
      assert.equal(200, res.status)
      local d = res.json.data
      assert.equal("POST", d.method)
      assert.equal("/api/_echo/a%2Fb/c%20d?x=1%202&y=%2B&y=z&flag", d.uri)
      assert.equal("/api/_echo/a%2Fb/c%20d", d.path)
      assert.same({ x = "1 2", y = { "+", "z" }, flag = true }, d.query)
      assert.equal("v", d.headers["x-custom"])
      assert.equal("application/json", d.headers["content-type"])
      assert.is_nil(d.headers.authorization)
      assert.equal('{"n":12345678901234567890,"e":[]}', d.body)
      assert.truthy(res.body:find('"e":[]', 1, true))
      assert.truthy(res.body:find('"n":12345678901234567168', 1, true))
    end)

    it("shows the Authorization header and omits json for a non-JSON body", function()
      local res = call("PUT", "/_echo/x", { body = "a=1" })
      assert.equal("Bearer sandbox-token", res.json.data.headers.authorization)
      assert.equal("a=1", res.json.data.body)
      assert.is_nil(res.json.data.json)
    end)
  end)

  describe("control API", function()
    it("logs every /api request with method, path, uri, tenant and body digest", function()
      call("POST", "/v1/customers", { json = { first_name = "L", email = "l@example.com" },
        headers = { ["X-Tenant"] = "7" } })
      get("/v1/customers?page=2")
      get("/v1/products/1")
      local log = assert(sb:requests({ path = "/api/v1/customers" }))
      assert.equal(2, log.count)
      local first = log.requests[1]
      assert.equal("POST", first.method)
      assert.equal("/api/v1/customers", first.path)
      assert.equal("/api/v1/customers", first.uri)
      assert.equal(7, first.tenant)
      assert.equal(201, first.status)
      local sent = cjson.encode({ first_name = "L", email = "l@example.com" })
      assert.equal(sent, first.body)
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      f:write(sent)
      f:close()
      assert.equal(capture("sha256sum " .. q(tmp)):match("^%x+"), first.body_sha256)
      os.remove(tmp)
      assert.equal("/api/v1/customers?page=2", log.requests[2].uri)
      assert.equal(1, sb:requests({ method = "POST" }).count)
      assert.equal(3, sb:requests().count)
      assert.equal(2, sb:requests({ match = "^/api/v1/c" }).count)
    end)

    it("reset restores seed data and clears the log", function()
      call("DELETE", "/v1/customers/1")
      assert(sb:reset())
      assert.equal(200, get("/v1/customers/1").status)
      assert.equal(1, sb:requests().count)
    end)

    it("reports and changes the configuration; unknown keys are refused", function()
      local c = sb:config()
      assert.same({ token_ttl = 3600, rate_limit = 1000, rate_window = 60, auto_approve = false,
        tokens = { "sandbox-token" }, client_id = "sandbox-client",
        redirect_uri = "http://127.0.0.1/callback" }, c)
      assert.equal(5, sb:config({ rate_limit = 5 }).rate_limit)
      local ok, err = sb:config({ nope = 1 })
      assert.is_nil(ok)
      assert.equal("control POST /_sandbox/config: HTTP 400: Unknown configuration key: nope.", err)
      assert(sb:reset())
      assert.equal(1000, sb:config().rate_limit)
    end)
  end)

  describe("faults", function()
    local function arm(f)
      return assert(sb:arm(f))
    end

    local function entries(filter)
      return assert(sb:requests(filter)).requests
    end

    it("arms a fault and reports it with an id and its remaining count", function()
      local f = arm({ path = "/api/v1/customers", method = "get", fault = "status", status = 503 })
      assert.same({ id = 1, path = "/api/v1/customers", method = "GET", count = 1, remaining = 1,
        fault = "status", status = 503 }, f)
      assert.same({ f }, assert(sb:control("GET", "/_sandbox/faults")).faults)
    end)

    it("refuses a bad fault description with 400 and a message naming the problem", function()
      local cases = {
        { { path = "/api/x", fault = "boom" }, "fault must be one of: delay, empty, garbage, hangup, headers_huge, " ..
          "html, huge, malformed, no_cursor, redirect, repeat_cursor, reset, stall, status, truncated." },
        { { fault = "empty" }, "Give exactly one of path (an exact path) and match (a Lua pattern)." },
        { { path = "/a", match = "a", fault = "empty" },
          "Give exactly one of path (an exact path) and match (a Lua pattern)." },
        { { match = "[", fault = "empty" }, "match must be a valid Lua pattern." },
        { { path = "api", fault = "empty" }, "path must be a string that starts with /." },
        { { path = "/a", fault = "status" }, "The status fault needs status." },
        { { path = "/a", fault = "status", status = 700 }, "status must be an integer from 200 to 599." },
        { { path = "/a", fault = "status", status = 500, colour = 1 },
          "Unknown parameter colour for the status fault." },
        { { path = "/a", fault = "status", status = 500, body = "x", error = "e" },
          "Give either body or error and message, not both." },
        { { path = "/a", fault = "empty", count = 0 }, "count must be an integer >= 1." },
        { { path = "/a", fault = "status", status = 500, retry_after = "1\r\nX: y" },
          "retry_after must be a string (or number) without CR, LF or NUL." },
        { { path = "/a", fault = "redirect", status = 200 }, "status must be one of 301, 302, 303, 307, 308." },
        { { path = "/a", fault = "hangup", status = 200 }, "Unknown parameter status for the hangup fault." },
        { { path = "/a", fault = "garbage", raw = 1 }, "raw must be a string." },
        { { path = "/a", fault = "garbage", body = "x" }, "Unknown parameter body for the garbage fault." },
        { { path = "/a", fault = "headers_huge", single = "yes" }, "single must be true or false." },
      }
      for _, c in ipairs(cases) do
        local ok, err = sb:arm(c[1])
        assert.is_nil(ok)
        assert.equal("control POST /_sandbox/faults: HTTP 400: " .. c[2], err)
      end
    end)

    it("answers the next count matching calls, then the real handler again", function()
      arm({ path = "/api/v1/customers/1", fault = "status", status = 500, count = 2 })
      assert.equal(500, get("/v1/customers/1").status)
      assert.equal(200, get("/v1/customers/2").status)
      assert.equal(500, get("/v1/customers/1").status)
      assert.equal(200, get("/v1/customers/1").status)
      assert.same({}, assert(sb:control("GET", "/_sandbox/faults")).faults)
    end)

    it("matches a Lua pattern and an optional method, in the order faults were armed", function()
      arm({ match = "^/api/v1/customers/%d+$", method = "PATCH", fault = "status", status = 409 })
      arm({ match = "^/api/v1/customers/%d+$", fault = "status", status = 502 })
      arm({ match = "^/api/v1/customers/%d+$", fault = "status", status = 503 })
      assert.equal(502, get("/v1/customers/7").status)
      assert.equal(409, call("PATCH", "/v1/customers/8", { json = { notes = "x" } }).status)
      assert.equal(503, get("/v1/customers/9").status)
      assert.equal(200, get("/v1/customers/9").status)
    end)

    it("logs faulted calls with the fault that answered", function()
      local f = arm({ path = "/api/v1/customers", fault = "status", status = 503 })
      get("/v1/customers")
      get("/v1/customers")
      local log = entries({ path = "/api/v1/customers" })
      assert.equal(2, #log)
      assert.equal("status", log[1].fault)
      assert.equal(f.id, log[1].fault_id)
      assert.equal(503, log[1].status)
      assert.is_nil(log[2].fault)
      assert.equal(200, log[2].status)
    end)

    it("are cleared by DELETE /_sandbox/faults and by reset", function()
      arm({ path = "/api/v1/customers", fault = "empty" })
      assert.is_true(sb:control("DELETE", "/_sandbox/faults"))
      assert.equal(200, get("/v1/customers").status)
      assert.equal(45, get("/v1/customers").json.meta.total)
      arm({ path = "/api/v1/customers", fault = "empty" })
      assert(sb:reset())
      assert.equal(45, get("/v1/customers").json.meta.total)
    end)

    it("also apply to /oauth paths", function()
      arm({ path = "/oauth/token", fault = "status", status = 503, retry_after = 1 })
      local res = call("POST", "", { token = false, raw_url = sb.origin .. "/oauth/token", body = "grant_type=x" })
      assert.equal(503, res.status)
      assert.equal("1", res.headers["retry-after"])
    end)

    describe("status", function()
      it("answers the status with an error body and Retry-After sent verbatim", function()
        arm({ path = "/api/v1/customers", fault = "status", status = 429, error = "rate_limit_exceeded",
          message = "Slow down.", retry_after = "2" })
        local res = get("/v1/customers")
        assert.equal(429, res.status)
        assert.same({ error = "rate_limit_exceeded", message = "Slow down." }, res.json)
        assert.equal("application/json", res.headers["content-type"])
        assert.equal("2", res.headers["retry-after"])
        assert.truthy(res.headers["x-request-id"])
        for _, v in ipairs({ "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "-1" }) do
          arm({ path = "/api/v1/customers", fault = "status", status = 503, retry_after = v })
          assert.equal(v, get("/v1/customers").headers["retry-after"])
        end
      end)

      it("defaults the error code and message from the status", function()
        arm({ path = "/api/v1/customers", fault = "status", status = 503 })
        assert.same({ error = "service_unavailable", message = "Injected fault: HTTP 503 for GET /api/v1/customers." },
          get("/v1/customers").json)
        arm({ path = "/api/v1/customers", fault = "status", status = 500, error = "boom" })
        assert.same({ error = "boom", message = "Injected fault: HTTP 500 for GET /api/v1/customers." },
          get("/v1/customers").json)
      end)

      it("sends a raw body with its content type and extra headers", function()
        arm({ path = "/api/v1/customers", fault = "status", status = 500, body = "oops", content_type = "text/plain",
          headers = { ["X-Debug"] = "yes", ["X-Count"] = 3 } })
        local res = get("/v1/customers")
        assert.equal(500, res.status)
        assert.equal("oops", res.body)
        assert.equal("text/plain", res.headers["content-type"])
        assert.equal("yes", res.headers["x-debug"])
        assert.equal("3", res.headers["x-count"])
      end)

      it("does not run the real handler", function()
        arm({ path = "/api/v1/customers", method = "POST", fault = "status", status = 503 })
        local res = call("POST", "/v1/customers", { json = { first_name = "A", email = "a@example.com" } })
        assert.equal(503, res.status)
        assert.equal(45, get("/v1/customers").json.meta.total)
      end)
    end)

    describe("delay", function()
      it("waits, then answers normally", function()
        arm({ path = "/api/v1/customers/1", fault = "delay", seconds = 0.6 })
        local res = get("/v1/customers/1")
        assert.equal(200, res.status)
        assert.equal(1, res.json.data.id)
        assert.is_true(res.time >= 0.55, tostring(res.time))
        assert.equal("delay", entries()[1].fault)
      end)
    end)

    describe("stall", function()
      it("sends the headers and half the body, then nothing until the client gives up", function()
        local full = get("/v1/customers/1").body
        arm({ path = "/api/v1/customers/1", fault = "stall", seconds = 5 })
        local res = get("/v1/customers/1", { max_time = 1 })
        assert.equal(28, res.curl_exit)
        assert.equal(200, res.status)
        assert.equal(tostring(#full), res.headers["content-length"])
        assert.equal(math.floor(#full / 2), res.size)
        assert.equal(full:sub(1, math.floor(#full / 2)), res.body)
      end)

      it("sends the rest after `seconds`", function()
        local full = get("/v1/customers/1").body
        arm({ path = "/api/v1/customers/1", fault = "stall", seconds = 0.5, bytes = 10 })
        local res = get("/v1/customers/1")
        assert.equal(0, res.curl_exit)
        assert.equal(full, res.body)
        assert.is_true(res.time >= 0.45)
      end)
    end)

    describe("reset", function()
      it("aborts the connection mid-body after the real handler ran", function()
        arm({ path = "/api/v1/customers", method = "POST", fault = "reset" })
        local res = call("POST", "/v1/customers", { json = { first_name = "R", email = "r@example.com" } })
        assert.equal(56, res.curl_exit)
        assert.equal(201, res.status)
        assert.is_true(res.size < tonumber(res.headers["content-length"]))
        assert.equal("R", get("/v1/customers/46").json.data.first_name)
        local log = entries({ method = "POST" })
        assert.equal(1, #log)
        assert.equal("reset", log[1].fault)
      end)
    end)

    describe("truncated", function()
      it("declares a Content-Length larger than the body it sends, then closes", function()
        local full = get("/v1/customers/2").body
        arm({ path = "/api/v1/customers/2", fault = "truncated", bytes = 20 })
        local res = get("/v1/customers/2")
        assert.equal(18, res.curl_exit)
        assert.equal(tostring(#full), res.headers["content-length"])
        assert.equal(full:sub(1, 20), res.body)
      end)

      it("uses its own body and status when given", function()
        arm({ path = "/api/v1/customers", fault = "truncated", body = '{"data":[]}', status = 202 })
        local res = get("/v1/customers")
        assert.equal(18, res.curl_exit)
        assert.equal(202, res.status)
        assert.equal("11", res.headers["content-length"])
        assert.equal('{"dat', res.body)
      end)
    end)

    describe("malformed, html and empty", function()
      it("answers 200 application/json with JSON that does not parse", function()
        arm({ path = "/api/v1/customers", fault = "malformed" })
        local res = get("/v1/customers")
        assert.equal(200, res.status)
        assert.equal("application/json", res.headers["content-type"])
        assert.equal('{"data": [1, 2', res.body)
        assert.is_nil(res.json)
      end)

      it("answers a proxy's 502 HTML page", function()
        arm({ path = "/api/v1/customers", fault = "html" })
        local res = get("/v1/customers")
        assert.equal(502, res.status)
        assert.equal("text/html", res.headers["content-type"])
        assert.truthy(res.body:find("<h1>502 Bad Gateway</h1>", 1, true))
        arm({ path = "/api/v1/customers", fault = "html", status = 503, retry_after = 3 })
        res = get("/v1/customers")
        assert.equal(503, res.status)
        assert.truthy(res.body:find("<title>503 Service Temporarily Unavailable</title>", 1, true))
        assert.equal("3", res.headers["retry-after"])
      end)

      it("answers 200 with an empty body and no Content-Type", function()
        arm({ path = "/api/v1/customers", fault = "empty" })
        local res = get("/v1/customers")
        assert.equal(200, res.status)
        assert.equal("", res.body)
        assert.equal("0", res.headers["content-length"])
        assert.is_nil(res.headers["content-type"])
      end)
    end)

    describe("huge", function()
      it("streams valid JSON of exactly `bytes` bytes, chunked", function()
        arm({ path = "/api/resources", fault = "huge", bytes = 1000000 })
        local res = get("/resources")
        assert.equal(200, res.status)
        assert.equal(1000000, #res.body)
        assert.equal("chunked", res.headers["transfer-encoding"])
        assert.equal("huge", res.json.data[1].id)
        assert.equal("last", res.json.data[#res.json.data].id)
      end)

      it("sends Content-Length when asked", function()
        arm({ path = "/api/resources", fault = "huge", bytes = 5000, content_length = true })
        local res = get("/resources")
        assert.equal("5000", res.headers["content-length"])
        assert.equal(5000, #res.body)
      end)

      it("defaults to 200 MB and stops when the client goes away", function()
        arm({ path = "/api/resources", fault = "huge" })
        local res = get("/resources", { discard = true })
        assert.equal(0, res.curl_exit)
        assert.equal(200 * 1024 * 1024, res.size)
        assert.equal(200 * 1024 * 1024, entries()[1].bytes_sent)
        arm({ path = "/api/resources", fault = "huge" })
        res = get("/resources", { curl = { "--limit-rate 2M" }, discard = true, max_time = 0.5 })
        assert.equal(28, res.curl_exit)
        -- the server notices at its next write
        os.execute("sleep 0.2")
        local e = entries()[2]
        assert.is_true(e.aborted)
        assert.is_true(e.bytes_sent < 200 * 1024 * 1024)
        assert.equal(200, get("/v1/customers/1").status)
      end)
    end)

    describe("no_cursor and repeat_cursor", function()
      it("answer a real page with has_more and no cursor", function()
        arm({ path = "/api/resources", fault = "no_cursor" })
        local res = get("/resources?limit=5")
        assert.equal(5, #res.json.data)
        assert.equal("res_001", res.json.data[1].id)
        assert.same({ has_more = true, total = 84 }, res.json.meta)
        arm({ path = "/api/resources", fault = "no_cursor", null = true })
        res = get("/resources?limit=5")
        assert.same({ has_more = true, total = 84, cursor = cjson.null }, res.json.meta)
        assert.truthy(res.body:find('"cursor":null', 1, true))
      end)

      it("answer the cursor the request sent, or on the first page one the next call echoes", function()
        arm({ path = "/api/resources", fault = "repeat_cursor", count = 2 })
        local first = get("/resources?limit=10")
        local cursor = first.json.meta.cursor
        assert.equal("string", type(cursor))
        assert.is_true(first.json.meta.has_more)
        local encoded = cursor:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)
        local second = get("/resources?limit=10&cursor=" .. encoded)
        assert.equal(cursor, second.json.meta.cursor)
        assert.equal("res_011", second.json.data[1].id)
        -- the fixed cursor is a real one: without the fault it leads on
        local third = get("/resources?limit=10&cursor=" .. encoded)
        assert.equal("res_011", third.json.data[1].id)
        assert.are_not.equal(cursor, third.json.meta.cursor)
      end)
    end)

    describe("redirect", function()
      it("answers 302 to the sandbox's redirect port, which logs a client that follows it", function()
        arm({ path = "/api/v1/customers", fault = "redirect" })
        local res = get("/v1/customers?page=2")
        assert.equal(302, res.status)
        assert.equal(sb.redirect_origin .. "/api/v1/customers?page=2", res.headers["location"])
        assert.equal(sb.origin:gsub("%d+$", "") .. sb.redirect_port, sb.redirect_origin)
        arm({ path = "/api/v1/customers", fault = "redirect" })
        res = get("/v1/customers", { curl = { "-L", "--location-trusted" } })
        assert.equal(421, res.status)
        assert.equal("misdirected_request", res.json.error)
        local log = entries()
        assert.equal(3, #log)
        assert.is_true(log[3].redirected)
        assert.equal(sb.redirect_port, log[3].port)
        assert.is_true(log[3].authorization)
        assert.equal(sb.port, log[2].port)
      end)

      it("uses the given location and status", function()
        arm({ path = "/api/v1/customers", fault = "redirect", location = "https://evil.example/x", status = 307 })
        local res = get("/v1/customers")
        assert.equal(307, res.status)
        assert.equal("https://evil.example/x", res.headers["location"])
      end)
    end)

    describe("headers_huge", function()
      it("answers with more than 100 KB of response headers", function()
        arm({ path = "/api/v1/customers", fault = "headers_huge" })
        local res = get("/v1/customers")
        assert.equal(200, res.status)
        assert.equal(0, res.curl_exit)
        assert.is_true(res.header_bytes > 128 * 1024, tostring(res.header_bytes))
        assert.equal(string.rep("h", 1000), res.headers["x-filler-0001"])
        assert.same({ data = {} }, res.json)
      end)

      it("sends one header line of `bytes` with single, which curl refuses from 100 KiB on", function()
        -- "X-Filler: " + value + CRLF: 102399 bytes pass, 102400 do not
        arm({ path = "/api/v1/customers", fault = "headers_huge", single = true, bytes = 102387 })
        local res = get("/v1/customers")
        assert.equal(0, res.curl_exit)
        assert.equal(string.rep("h", 102387), res.headers["x-filler"])
        assert.is_nil(res.headers["x-filler-0001"])
        assert.same({ data = {} }, res.json)
        arm({ path = "/api/v1/customers", fault = "headers_huge", single = true, bytes = 102388 })
        res = get("/v1/customers")
        assert.equal(27, res.curl_exit)
        assert.equal("curl: (27) Out of memory", res.error)
        assert.equal(200, res.status)
        assert.equal("", res.body)
        arm({ path = "/api/v1/customers", fault = "headers_huge", single = true, count = 2 })
        res = get("/v1/customers")
        assert.equal(27, res.curl_exit)
        local raw = parse_response(raw_exchange(sb.port, { raw_request("GET", "/api/v1/customers",
          { "Host: 127.0.0.1", "Authorization: Bearer sandbox-token", "Connection: close" }) }))
        assert.equal(200, raw.status)
        assert.equal(string.rep("h", 131072), raw.headers["x-filler"])
        assert.equal('{"data":[]}', raw.body)
        local log = entries()
        assert.equal(4, #log)
        assert.equal("headers_huge", log[4].fault)
        assert.equal(200, log[4].status)
      end)
    end)

    describe("hangup", function()
      it("reads the whole request, then closes the connection without a byte", function()
        local f = arm({ path = "/api/v1/customers", method = "POST", fault = "hangup" })
        local body = cjson.encode({ first_name = "H", email = "h@example.com", notes = string.rep("n", 100000) })
        local res = call("POST", "/v1/customers", { body = body, headers = { ["Content-Type"] = "application/json" } })
        assert.equal(52, res.curl_exit)
        assert.equal("curl: (52) Empty reply from server", res.error)
        assert.equal(0, res.status)
        assert.equal(0, res.header_bytes)
        assert.equal("", res.body)
        local log = entries()
        assert.equal(1, #log)
        assert.equal("POST", log[1].method)
        assert.equal("hangup", log[1].fault)
        assert.equal(f.id, log[1].fault_id)
        assert.equal(#body, log[1].body_size)
        assert.is_true(log[1].authorization)
        assert.is_nil(log[1].status)
        -- the real handler did not run
        assert.equal(45, get("/v1/customers").json.meta.total)
        arm({ path = "/api/v1/customers", fault = "hangup" })
        res = get("/v1/customers", { base = sb.https_url, cacert = sb.ca_file })
        assert.equal(52, res.curl_exit)
        assert.equal("curl: (52) Empty reply from server", res.error)
      end)

      it("drops a kept-alive connection under its next request; a raw client sees it arrive once", function()
        arm({ path = "/api/v1/customers", method = "POST", fault = "hangup" })
        local auth = "Authorization: Bearer sandbox-token"
        local body = '{"first_name":"K","email":"k@example.com"}'
        local out = raw_exchange(sb.port, {
          raw_request("GET", "/api/v1/customers/1", { "Host: 127.0.0.1", auth }),
          raw_request("POST", "/api/v1/customers", { "Host: 127.0.0.1", auth, "Content-Type: application/json" }, body),
        })
        -- the first answer, whole, then the end of the stream: not one byte for the POST
        local first = parse_response(out)
        assert.equal(200, first.status)
        assert.equal("keep-alive", first.headers.connection)
        assert.equal(1, cjson.decode(first.body).data.id)
        assert.equal("", first.after)
        local log = entries()
        assert.equal(2, #log)
        assert.equal("GET", log[1].method)
        assert.equal("POST", log[2].method)
        assert.equal("hangup", log[2].fault)
        assert.equal(body, log[2].body)
        assert.equal("number", type(log[1].connection))
        assert.equal(log[1].connection, log[2].connection)
        assert.equal(45, get("/v1/customers").json.meta.total)
      end)

      it("makes curl re-send the request on a new connection, silently", function()
        local function two(count)
          assert(sb:reset())
          arm({ path = "/api/v1/customers", fault = "hangup", count = count })
          return sh("curl -sS --noproxy '*' -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\\n' -H " ..
            q("Authorization: Bearer " .. sb.token) .. " " .. q(sb.url .. "/v1/customers/1") .. " " ..
            q(sb.url .. "/v1/customers"))
        end
        -- count 1: the second request reached the server twice, and curl reports success
        local out, code, err = two(1)
        assert.equal(0, code)
        assert.equal("", err)
        assert.equal("200 1\n200 1\n", out)
        local log = entries()
        assert.equal(3, #log)
        assert.equal(log[1].connection, log[2].connection)
        assert.equal("hangup", log[2].fault)
        assert.are_not.equal(log[2].connection, log[3].connection)
        assert.equal("/api/v1/customers", log[3].path)
        assert.is_nil(log[3].fault)
        assert.equal(200, log[3].status)
        -- count 2: the re-send on the fresh connection is hung up on too, and that one counts
        out, code, err = two(2)
        assert.equal(52, code)
        assert.equal("curl: (52) Empty reply from server", err)
        assert.equal("200 1\n000 1\n", out)
        log = entries({ path = "/api/v1/customers" })
        assert.equal(2, #log)
        assert.equal("hangup", log[1].fault)
        assert.equal("hangup", log[2].fault)
        assert.are_not.equal(log[1].connection, log[2].connection)
      end)
    end)

    describe("garbage", function()
      local auth = "Authorization: Bearer sandbox-token"

      it("answers a bare body with no status line by default, then closes", function()
        local f = arm({ path = "/api/v1/customers", fault = "garbage" })
        local res = get("/v1/customers")
        assert.equal(1, res.curl_exit)
        assert.equal("curl: (1) Received HTTP/0.9 when not allowed", res.error)
        assert.equal(0, res.status)
        arm({ path = "/api/v1/customers", fault = "garbage" })
        res = get("/v1/customers", { curl = { "--http0.9" } })
        assert.equal(0, res.curl_exit)
        assert.equal('{"data":[]}', res.body)
        arm({ path = "/api/v1/customers", fault = "garbage" })
        assert.equal('{"data":[]}', raw_exchange(sb.port, { raw_request("GET", "/api/v1/customers",
          { "Host: 127.0.0.1", auth }) }))
        local log = entries()
        assert.equal(3, #log)
        assert.equal("garbage", log[1].fault)
        assert.equal(f.id, log[1].fault_id)
        assert.equal(11, log[1].bytes_sent)
        assert.is_nil(log[1].status)
      end)

      it("sends `raw` exactly: a status line curl cannot read, or nothing at all", function()
        arm({ path = "/api/v1/customers", fault = "garbage", raw = "HTTP/1.1 2x0 OK\r\n\r\n" })
        local res = get("/v1/customers")
        assert.equal(1, res.curl_exit)
        assert.equal("curl: (1) Unsupported response code in HTTP response", res.error)
        arm({ path = "/api/v1/customers", fault = "garbage", raw = "HTTP/1.1 2x0 OK\r\n\r\n" })
        local body = '{"a":1}'
        assert.equal("HTTP/1.1 2x0 OK\r\n\r\n", raw_exchange(sb.port, { raw_request("POST", "/api/v1/customers",
          { "Host: 127.0.0.1", auth, "Content-Type: application/json" }, body) }))
        assert.equal(body, entries({ method = "POST" })[1].body)
        arm({ path = "/api/v1/customers", fault = "garbage", raw = "" })
        res = get("/v1/customers")
        assert.equal(52, res.curl_exit)
        assert.equal("curl: (52) Empty reply from server", res.error)
        assert.equal(0, entries()[3].bytes_sent)
      end)

      it("works over TLS too", function()
        arm({ path = "/api/v1/customers", fault = "garbage", raw = "not http\n" })
        local res = get("/v1/customers", { base = sb.https_url, cacert = sb.ca_file, curl = { "--http0.9" } })
        assert.equal(0, res.curl_exit)
        assert.equal("not http\n", res.body)
      end)
    end)
  end)

  describe("proxy", function()
    local function proxied(method, url, opts)
      opts = opts or {}
      opts.proxy, opts.raw_url = sb.proxy_url, url
      return call(method, "", opts)
    end

    it("listens on its own loopback port", function()
      assert.equal("http://127.0.0.1:" .. sb.proxy_port, sb.proxy_url)
      assert.is_true(sb.proxy_port >= 20000 and sb.proxy_port <= 60999)
      for _, other in ipairs({ sb.port, sb.tls_port, sb.redirect_port }) do
        assert.are_not.equal(other, sb.proxy_port)
      end
    end)

    it("answers an absolute-form request as the API port would, and logs it as proxied", function()
      local res = proxied("GET", "http://api.flextell.test/api/v1/customers/1")
      assert.equal(0, res.curl_exit)
      assert.equal(200, res.status)
      assert.equal(1, res.json.data.id)
      assert.equal("999", res.headers["x-ratelimit-remaining"])
      local log = assert(sb:requests())
      assert.equal(1, log.count)
      local e = log.requests[1]
      assert.is_true(e.proxied)
      assert.equal("api.flextell.test:80", e.proxy_target)
      assert.equal(sb.proxy_port, e.port)
      assert.equal("GET", e.method)
      assert.equal("/api/v1/customers/1", e.path)
      assert.equal("/api/v1/customers/1", e.uri)
      assert.is_true(e.authorization)
      assert.equal(200, e.status)
      assert.equal(res.headers["x-request-id"], e.id)
    end)

    it("takes any host and port, forwards nothing and builds links with the host the client named", function()
      local res = proxied("GET", "http://api.flextell.test:8080/api/v1/customers?per_page=1")
      assert.equal(200, res.status)
      assert.equal("http://api.flextell.test:8080/api/v1/customers?page=2&per_page=1", res.json.links.next)
      -- a port where nothing listens, and a name that does not resolve: still the sandbox
      assert.equal(200, proxied("GET", "http://127.0.0.1:9/api/v1/customers/2").status)
      assert.equal(200, proxied("GET", "http://no-such-host.invalid/api/v1/customers/3").status)
      local res2 = proxied("POST", "http://[::1]:8443/api/_echo/x?a=1", { token = false, body = "b" })
      assert.equal("/api/_echo/x?a=1", res2.json.data.uri)
      assert.equal("b", res2.json.data.body)
      local targets = {}
      for _, e in ipairs(assert(sb:requests()).requests) do targets[#targets + 1] = e.proxy_target end
      assert.same({ "api.flextell.test:8080", "127.0.0.1:9", "no-such-host.invalid:80", "[::1]:8443" }, targets)
    end)

    it("applies auth, faults and rate limits as the API port does", function()
      sb:config({ rate_limit = 2 })
      local res = proxied("GET", "http://api.flextell.test/api/v1/customers/1", { token = false })
      assert.equal(401, res.status)
      assert.equal("unauthorized", res.json.error)
      local f = assert(sb:arm({ path = "/api/v1/customers/1", fault = "status", status = 503 }))
      res = proxied("GET", "http://api.flextell.test/api/v1/customers/1")
      assert.equal(503, res.status)
      assert.equal("service_unavailable", res.json.error)
      -- one window per token, whichever port the calls come in on
      assert.equal("1", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      assert.equal("0", proxied("GET", "http://api.flextell.test/api/v1/customers/1").headers["x-ratelimit-remaining"])
      assert.equal(429, get("/v1/customers/1").status)
      assert.equal(429, proxied("GET", "http://api.flextell.test/api/v1/customers/1").status)
      local log = assert(sb:requests({ proxied = true }))
      assert.equal(4, log.count)
      assert.equal("status", log.requests[2].fault)
      assert.equal(f.id, log.requests[2].fault_id)
      assert.is_false(log.requests[1].authorization)
      log = assert(sb:requests({ proxied = false }))
      assert.equal(2, log.count)
      assert.is_nil(log.requests[1].proxied)
      assert.is_nil(log.requests[1].proxy_target)
      assert.equal(sb.port, log.requests[1].port)
    end)

    it("refuses CONNECT with 403: curl reports the failed tunnel", function()
      local res = proxied("GET", "https://api.flextell.test/api/v1/customers/1")
      assert.equal(56, res.curl_exit)
      assert.equal("curl: (56) CONNECT tunnel failed, response 403", res.error)
      assert.equal(0, res.status)
      local log = assert(sb:requests())
      assert.equal(1, log.count)
      local e = log.requests[1]
      assert.equal("CONNECT", e.method)
      assert.equal("api.flextell.test:443", e.path)
      assert.equal("api.flextell.test:443", e.uri)
      assert.is_true(e.proxied)
      assert.equal("api.flextell.test:443", e.proxy_target)
      assert.equal(sb.proxy_port, e.port)
      assert.equal(403, e.status)
      -- nginx stopped at the request line, so it never read the headers
      assert.is_false(e.authorization)
      assert.equal(0, e.body_size)
    end)

    it("answers a raw CONNECT with a 403 JSON body and closes", function()
      local raw = parse_response(raw_exchange(sb.proxy_port, { raw_request("CONNECT", "api.flextell.test:443",
        { "Host: api.flextell.test:443", "Authorization: Bearer sandbox-token" }) }))
      assert.equal(403, raw.status)
      assert.equal("close", raw.headers.connection)
      assert.equal("application/json", raw.headers["content-type"])
      assert.same({ error = "forbidden", message = "The sandbox proxy does not open tunnels: CONNECT " ..
        "api.flextell.test:443 refused. Send http:// URLs through it; https:// ones go to the sandbox's " ..
        "TLS port directly." }, cjson.decode(raw.body))
      assert.equal("", raw.after)
      -- a CONNECT with an origin-form target gets past the request line: its headers are read
      raw = parse_response(raw_exchange(sb.proxy_port, { raw_request("CONNECT", "/",
        { "Host: api.flextell.test", "Authorization: Bearer sandbox-token" }) }))
      assert.equal(403, raw.status)
      local log = assert(sb:requests({ method = "CONNECT" }))
      assert.equal(2, log.count)
      assert.equal("api.flextell.test:443", log.requests[1].proxy_target)
      assert.equal("/", log.requests[2].path)
      assert.is_true(log.requests[2].authorization)
      assert.is_nil(log.requests[2].proxy_target)
      -- what else nginx turns away there comes back with its own status
      raw = parse_response(raw_exchange(sb.proxy_port, { raw_request("TRACE", "http://api.flextell.test/api",
        { "Host: api.flextell.test" }) }))
      assert.equal(405, raw.status)
      assert.same({ error = "invalid_request",
        message = "nginx refused the request: TRACE http://api.flextell.test/api HTTP/1.1" }, cjson.decode(raw.body))
      local e = assert(sb:requests({ method = "TRACE" })).requests[1]
      assert.equal(405, e.status)
      assert.equal("api.flextell.test:80", e.proxy_target)
      assert.equal("/api", e.path)
    end)

    it("refuses an origin-form request with 400: the proxy is not the API", function()
      local res = get("/v1/customers/1", { base = sb.proxy_url .. "/api" })
      assert.equal(400, res.status)
      assert.same({ error = "invalid_request", message = "This is the sandbox's HTTP proxy port: it takes " ..
        "absolute-form requests (GET http://host/path HTTP/1.1). Send API calls to the API port, or use this " ..
        "port as a proxy." }, res.json)
      local e = assert(sb:requests()).requests[1]
      assert.is_true(e.proxied)
      assert.is_nil(e.proxy_target)
      assert.equal(400, e.status)
    end)
  end)

  describe("rate limit headers", function()
    it("give a 429 a Retry-After that reaches the window's reset, and keep Reset fixed", function()
      sb:config({ rate_limit = 1, rate_window = 2 })
      local ok = get("/v1/customers/1")
      assert.equal("0", ok.headers["x-ratelimit-remaining"])
      local a, b = get("/v1/customers/1"), get("/v1/customers/1")
      for _, res in ipairs({ a, b }) do
        assert.equal(429, res.status)
        assert.equal("1", res.headers["x-ratelimit-limit"])
        assert.equal("0", res.headers["x-ratelimit-remaining"])
        assert.equal(ok.headers["x-ratelimit-reset"], res.headers["x-ratelimit-reset"])
        local wait, reset = tonumber(res.headers["retry-after"]), tonumber(res.headers["x-ratelimit-reset"])
        assert.truthy(res.headers["retry-after"]:match("^%d+$"))
        assert.is_true(wait >= 1 and wait <= 2)
        assert.is_true(math.abs(os.time() + wait - reset) <= 1)
      end
      os.execute("sleep " .. a.headers["retry-after"])
      local again = get("/v1/customers/1")
      assert.equal(200, again.status)
      assert.equal("0", again.headers["x-ratelimit-remaining"])
    end)
  end)

  describe("OAuth", function()
    -- RFC 7636 appendix B
    local VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    local CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    local function pct(s)
      return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
    end

    -- POST /oauth/token with a form; opts.basic = "id:secret" authenticates with HTTP Basic
    local function token_call(form, opts)
      opts = opts or {}
      local parts = {}
      for k, v in pairs(form) do parts[#parts + 1] = pct(k) .. "=" .. pct(v) end
      table.sort(parts)
      local curl = {}
      if opts.basic then curl[1] = "-u " .. q(opts.basic) end
      return call("POST", "", { token = false, raw_url = sb.origin .. "/oauth/token", curl = curl,
        body = table.concat(parts, "&"),
        headers = { ["Content-Type"] = opts.content_type or "application/x-www-form-urlencoded" } })
    end

    local function code_for(params)
      local location, query = sb:approve(sb:authorize_url(params or { scope = "customers:read", state = "s1" }))
      assert.truthy(location, query)
      assert.truthy(query.code, location)
      return query.code
    end

    -- the authorization_code grant with credentials in the body; extra overrides (false drops)
    local function exchange(code, extra)
      local form = { grant_type = "authorization_code", code = code, redirect_uri = sb.redirect_uri,
        client_id = sb.client_id, client_secret = sb.client_secret }
      for k, v in pairs(extra or {}) do form[k] = v or nil end
      return token_call(form)
    end

    local function refresh(token, extra)
      local form = { grant_type = "refresh_token", refresh_token = token, client_id = sb.client_id,
        client_secret = sb.client_secret }
      for k, v in pairs(extra or {}) do form[k] = v or nil end
      return token_call(form)
    end

    local function tokens(params)
      local res = exchange(code_for(params))
      assert.equal(200, res.status, res.body)
      return res.json
    end

    local function bearer(token, method, path, body)
      return call(method or "GET", path or "/v1/customers/1", { token = token, json = body })
    end

    local function grant_error(res, status, code, description)
      assert.equal(status, res.status, res.body)
      assert.same({ error = code, error_description = description }, res.json)
      assert.equal("no-store", res.headers["cache-control"])
    end

    describe("authorize", function()
      it("shows a consent page with the client, the scopes and an Approve/Deny form", function()
        local res = call("GET", "", { token = false, raw_url = sb:authorize_url({ scope = "customers:read tenants:read",
          state = "st" }) })
        assert.equal(200, res.status)
        assert.equal("text/html; charset=utf-8", res.headers["content-type"])
        assert.equal("no-store", res.headers["cache-control"])
        assert.equal("DENY", res.headers["x-frame-options"])
        assert.truthy(res.body:find("<title>Authorize Sandbox Client</title>", 1, true))
        assert.truthy(res.body:find('<ul id="scopes"><li>customers:read</li><li>tenants:read</li></ul>', 1, true))
        assert.truthy(res.body:find('<form method="post" action="/oauth/authorize">', 1, true))
        assert.truthy(res.body:find('<input type="hidden" name="consent_id" value="[%w_-]+">'))
        local approve = '<button type="submit" name="decision" value="approve" id="approve">Approve</button>'
        local deny = '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
        assert.truthy(res.body:find(approve, 1, true))
        assert.truthy(res.body:find(deny, 1, true))
      end)

      it("redirects with code and state when the form's Approve is posted; the consent id is single use", function()
        local page = call("GET", "", { token = false, raw_url = sb:authorize_url({ scope = "customers:read",
          state = "a b&c" }) })
        local id = page.body:match('name="consent_id" value="([^"]+)"')
        local form = { token = false, raw_url = sb.origin .. "/oauth/authorize",
          body = "consent_id=" .. id .. "&decision=approve",
          headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } }
        local res = call("POST", "", form)
        assert.equal(302, res.status)
        local code = res.headers.location:match("^http://127%.0%.0%.1/callback%?code=(sbac_[%w_-]+)&state=a%%20b%%26c$")
        assert.truthy(code, res.headers.location)
        res = call("POST", "", form)
        assert.equal(400, res.status)
        assert.truthy(res.body:find("This consent request is unknown, expired or already answered.", 1, true))
        assert.equal(200, exchange(code).status)
      end)

      it("redirects with error=access_denied when the form's Deny is posted", function()
        local location, query = sb:deny(sb:authorize_url({ scope = "customers:read", state = "xyz" }))
        assert.equal("http://127.0.0.1/callback?error=access_denied&error_description=" ..
          "The%20user%20denied%20the%20request.&state=xyz", location)
        assert.same({ error = "access_denied", error_description = "The user denied the request.", state = "xyz" },
          query)
        local o = assert(sb:oauth())
        assert.equal(1, o.authorizations.denied)
        assert.equal(0, o.authorizations.codes)
      end)

      it("works over HTTPS", function()
        local location, query = sb:approve(sb:authorize_url({ state = "t" }, sb.https_origin))
        assert.truthy(location:match("^http://127%.0%.0%.1/callback%?code="))
        assert.equal("t", query.state)
      end)

      it("redirects at once with auto_approve", function()
        sb:config({ auto_approve = true })
        local res = call("GET", "", { token = false, raw_url = sb:authorize_url({ state = "q" }) })
        assert.equal(302, res.status)
        assert.truthy(res.headers.location:match("^http://127%.0%.0%.1/callback%?code=sbac_[%w_-]+&state=q$"))
        local location, query = sb:approve(sb:authorize_url({ state = "r" }))
        assert.equal("r", query.state)
        assert.truthy(location:find("code=", 1, true))
        local ok, err = sb:deny(sb:authorize_url({ state = "r" }))
        assert.is_nil(ok)
        assert.equal("the sandbox auto-approved: there was no consent page to deny", err)
      end)

      it("shows an error page, never a redirect, for a bad client_id or redirect_uri", function()
        local cases = {
          { { client_id = "nope" }, "invalid_client", "Unknown client_id: nope." },
          { { client_id = false }, "invalid_request", "The client_id parameter is missing." },
          { { redirect_uri = "http://127.0.0.1/other" }, "invalid_request",
            "The redirect_uri is not registered for this client." },
          { { redirect_uri = "http://127.0.0.1/callback/" }, "invalid_request",
            "The redirect_uri is not registered for this client." },
        }
        for _, c in ipairs(cases) do
          local res = call("GET", "", { token = false, raw_url = sb:authorize_url(c[1]) })
          assert.equal(400, res.status)
          assert.is_nil(res.headers.location)
          assert.equal("text/html; charset=utf-8", res.headers["content-type"])
          assert.truthy(res.body:find('<code id="error">' .. c[2] .. "</code>", 1, true))
          local ok, err = sb:approve(sb:authorize_url(c[1]))
          assert.is_nil(ok)
          assert.equal("authorize: HTTP 400 " .. c[2] .. ": " .. c[3], err)
        end
      end)

      it("redirects other errors back to the client with state", function()
        local cases = {
          { { scope = "customers:read teleport:write", state = "s" }, "invalid_scope",
            "Unknown scope: teleport:write." },
          { { response_type = "token", state = "s" }, "unsupported_response_type",
            "Only response_type=code is supported." },
          { { response_type = false, state = "s" }, "invalid_request", "The response_type parameter is missing." },
          { { code_challenge = CHALLENGE, code_challenge_method = "plain", state = "s" }, "invalid_request",
            "PKCE with code_challenge_method=plain is not supported: use S256." },
          { { code_challenge = CHALLENGE, state = "s" }, "invalid_request",
            "PKCE with code_challenge_method=plain is not supported: use S256." },
          { { code_challenge = "short", code_challenge_method = "S256", state = "s" }, "invalid_request",
            "The code_challenge must be 43 characters of base64url (the S256 of the code_verifier)." },
        }
        for _, c in ipairs(cases) do
          local res = call("GET", "", { token = false, raw_url = sb:authorize_url(c[1]) })
          assert.equal(302, res.status)
          local _, query = sb:approve(sb:authorize_url(c[1]))
          assert.same({ error = c[2], error_description = c[3], state = "s" }, query)
        end
      end)

      it("keeps the registered redirect URI's query and accepts a missing redirect_uri for a one-URI client", function()
        sb:config({ clients = { { client_id = "app2", client_secret = "s2", name = "App <Two>",
          redirect_uris = { "http://127.0.0.1:9/cb?app=2" } } } })
        local page = call("GET", "", { token = false, raw_url = sb:authorize_url({ client_id = "app2",
          redirect_uri = false }) })
        assert.truthy(page.body:find("<title>Authorize App &lt;Two&gt;</title>", 1, true))
        local location = sb:approve(sb:authorize_url({ client_id = "app2", redirect_uri = false, state = "z" }))
        assert.truthy(location:match("^http://127%.0%.0%.1:9/cb%?app=2&code=sbac_[%w_-]+&state=z$"), location)
        assert.equal("app2", sb:config().client_id)
        assert.equal("http://127.0.0.1:9/cb?app=2", sb:config().redirect_uri)
        assert.same({ { client_id = "app2", client_secret = "s2", name = "App <Two>",
          redirect_uris = { "http://127.0.0.1:9/cb?app=2" } } }, assert(sb:oauth()).settings.clients)
        local ok, err = sb:config({ clients = { { client_id = "x" } } })
        assert.is_nil(ok)
        assert.equal("control POST /_sandbox/config: HTTP 400: Bad value for clients: each client needs a " ..
          "client_id and a client_secret.", err)
        err = select(2, sb:config({ clients = { { client_id = "x", client_secret = "y", redirect_uri = "/cb#f" } } }))
        assert.equal("control POST /_sandbox/config: HTTP 400: Bad value for clients: a redirect URI must be an " ..
          "absolute URI without a fragment.", err)
      end)
    end)

    describe("token", function()
      it("exchanges a code for tokens that the API accepts", function()
        local res = exchange(code_for({ scope = "customers:read tenants:read", state = "s" }))
        assert.equal(200, res.status)
        assert.equal("no-store", res.headers["cache-control"])
        assert.equal("no-cache", res.headers["pragma"])
        local t = res.json
        assert.equal("Bearer", t.token_type)
        assert.equal(3600, t.expires_in)
        assert.equal("customers:read tenants:read", t.scope)
        assert.truthy(t.access_token:match("^sbat_[%w_-]+$"))
        assert.truthy(t.refresh_token:match("^sbrt_[%w_-]+$"))
        assert.equal(200, bearer(t.access_token).status)
        assert.equal(200, bearer(t.access_token, "GET", "/v1/account/tenants").status)
        local o = assert(sb:oauth())
        assert.same({ authorization_code = 1, refresh_token = 0, total = 1 }, o.grants)
        assert.same({ active = 1, expired = 0, revoked = 0 }, o.access_tokens)
      end)

      it("grants every scope when the authorize request names none", function()
        local t = tokens({ state = "s" })
        local all = assert(sb:oauth()).settings.scopes
        assert.equal(table.concat(all, " "), t.scope)
        assert.equal(201, bearer(t.access_token, "POST", "/v1/customers", { first_name = "O", email = "o@example.com" })
          .status)
      end)

      it("checks PKCE S256 with the RFC 7636 appendix B vector", function()
        local params = { scope = "customers:read", state = "p", code_challenge = CHALLENGE,
          code_challenge_method = "S256" }
        local code = code_for(params)
        grant_error(exchange(code), 400, "invalid_request", "The code_verifier parameter is missing.")
        grant_error(exchange(code, { code_verifier = "x" }), 400, "invalid_request",
          "The code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'.")
        grant_error(exchange(code, { code_verifier = VERIFIER:sub(2) .. "A" }), 400, "invalid_grant",
          "The code_verifier does not match the code_challenge.")
        local res = exchange(code, { code_verifier = VERIFIER })
        assert.equal(200, res.status)
        grant_error(exchange(code_for(), { code_verifier = VERIFIER }), 400, "invalid_grant",
          "A code_verifier was sent but the authorization request had no code_challenge.")
      end)

      it("accepts a code once; a second use revokes the tokens issued with it", function()
        local code = code_for()
        local t = exchange(code).json
        grant_error(exchange(code), 400, "invalid_grant",
          "The authorization code was already used; the tokens issued with it are revoked.")
        local res = bearer(t.access_token)
        assert.equal(401, res.status)
        assert.same({ error = "invalid_token", message = "The access token has been revoked." }, res.json)
        grant_error(refresh(t.refresh_token), 400, "invalid_grant", "The refresh token has been revoked.")
      end)

      it("refuses an expired code", function()
        sb:config({ code_ttl = 1 })
        local code = code_for()
        os.execute("sleep 1.1")
        grant_error(exchange(code), 400, "invalid_grant", "The authorization code has expired.")
      end)

      it("refuses an unknown code and a redirect_uri other than the authorize request's", function()
        grant_error(exchange("sbac_nothing"), 400, "invalid_grant", "The authorization code is invalid.")
        local code = code_for()
        grant_error(exchange(code, { redirect_uri = "http://127.0.0.1/other" }), 400, "invalid_grant",
          "The redirect_uri does not match the one sent to the authorization endpoint.")
        grant_error(exchange(code, { redirect_uri = false }), 400, "invalid_grant",
          "The redirect_uri does not match the one sent to the authorization endpoint.")
        assert.equal(200, exchange(code).status)
      end)

      it("answers 401 invalid_client with WWW-Authenticate for a wrong or missing secret", function()
        local code = code_for()
        local res = exchange(code, { client_secret = "wrong" })
        grant_error(res, 401, "invalid_client", "Client authentication failed.")
        assert.equal('Basic realm="flextell"', res.headers["www-authenticate"])
        grant_error(exchange(code, { client_secret = false }), 401, "invalid_client",
          "Client authentication failed: send client_id and client_secret, or HTTP Basic.")
        grant_error(exchange(code, { client_id = "other" }), 401, "invalid_client", "Client authentication failed.")
        res = token_call({ grant_type = "authorization_code", code = code, redirect_uri = sb.redirect_uri },
          { basic = "sandbox-client:nope" })
        grant_error(res, 401, "invalid_client", "Client authentication failed.")
        assert.equal(200, exchange(code).status)
      end)

      it("authenticates the client with HTTP Basic", function()
        local res = token_call({ grant_type = "authorization_code", code = code_for(), redirect_uri = sb.redirect_uri },
          { basic = "sandbox-client:sandbox-secret" })
        assert.equal(200, res.status)
        assert.equal("Bearer", res.json.token_type)
        grant_error(token_call({ grant_type = "refresh_token", refresh_token = res.json.refresh_token,
          client_secret = "sandbox-secret" }, { basic = "sandbox-client:sandbox-secret" }), 400, "invalid_request",
          "Use one client authentication method: HTTP Basic or client_secret in the body, not both.")
        assert.equal(200, token_call({ grant_type = "refresh_token", refresh_token = res.json.refresh_token },
          { basic = "sandbox-client:sandbox-secret" }).status)
      end)

      it("answers RFC 6749 errors for bad requests", function()
        grant_error(token_call({ client_id = sb.client_id, client_secret = sb.client_secret }), 400, "invalid_request",
          "The grant_type parameter is missing.")
        grant_error(token_call({ grant_type = "password", client_id = sb.client_id, client_secret = sb.client_secret }),
          400, "unsupported_grant_type", "The grant type password is not supported.")
        grant_error(token_call({ grant_type = "authorization_code", client_id = sb.client_id,
          client_secret = sb.client_secret }), 400, "invalid_request", "The code parameter is missing.")
        grant_error(token_call({ grant_type = "refresh_token" }, { content_type = "application/json" }), 400,
          "invalid_request", "The token request must be application/x-www-form-urlencoded.")
        local res = call("GET", "", { token = false, raw_url = sb.origin .. "/oauth/token" })
        grant_error(res, 405, "invalid_request", "The token endpoint accepts POST only.")
        assert.equal("POST", res.headers.allow)
        res = call("POST", "", { token = false, raw_url = sb.origin .. "/oauth/token",
          body = "grant_type=refresh_token&grant_type=authorization_code",
          headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
        grant_error(res, 400, "invalid_request", "The grant_type parameter is repeated.")
        assert.same({ invalid_request = 5, unsupported_grant_type = 1 }, assert(sb:oauth()).errors)
      end)
    end)

    describe("refresh", function()
      it("rotates the refresh token; the old access token stays valid until it expires", function()
        local t = tokens()
        local res = refresh(t.refresh_token)
        assert.equal(200, res.status)
        local n = res.json
        assert.are_not.equal(t.refresh_token, n.refresh_token)
        assert.are_not.equal(t.access_token, n.access_token)
        assert.equal("customers:read", n.scope)
        assert.equal(3600, n.expires_in)
        assert.equal("no-store", res.headers["cache-control"])
        assert.equal(200, bearer(n.access_token).status)
        assert.equal(200, bearer(t.access_token).status)
        assert.equal(200, refresh(n.refresh_token).status)
        assert.same({ authorization_code = 1, refresh_token = 2, total = 3 }, assert(sb:oauth()).grants)
      end)

      it("revokes the whole family when a used refresh token comes back", function()
        local t = tokens()
        local n = refresh(t.refresh_token).json
        grant_error(refresh(t.refresh_token), 400, "invalid_grant",
          "The refresh token was already used; every token of this grant is now revoked.")
        for _, at in ipairs({ t.access_token, n.access_token }) do
          local res = bearer(at)
          assert.equal(401, res.status)
          assert.same({ error = "invalid_token", message = "The access token has been revoked." }, res.json)
        end
        grant_error(refresh(n.refresh_token), 400, "invalid_grant", "The refresh token has been revoked.")
        local o = assert(sb:oauth())
        assert.same({ total = 1, revoked = 1 }, o.families)
        assert.same({ active = 0, expired = 0, revoked = 2 }, o.access_tokens)
        -- other grants are untouched
        assert.equal(200, bearer(tokens().access_token).status)
      end)

      it("refuses an unknown token, another client's token, and a wider scope", function()
        grant_error(refresh("sbrt_nothing"), 400, "invalid_grant", "The refresh token is invalid.")
        local t = tokens({ scope = "customers:read tenants:read" })
        sb:config({ clients = { { client_id = "sandbox-client", client_secret = "sandbox-secret",
          redirect_uri = sb.redirect_uri }, { client_id = "app2", client_secret = "s2", redirect_uri = "x://y" } } })
        grant_error(refresh(t.refresh_token, { client_id = "app2", client_secret = "s2" }), 400, "invalid_grant",
          "The refresh token was issued to another client.")
        grant_error(refresh(t.refresh_token, { scope = "customers:read customers:write" }), 400, "invalid_scope",
          "The requested scope exceeds the scope granted: customers:write.")
        local res = refresh(t.refresh_token, { scope = "tenants:read" })
        assert.equal(200, res.status)
        assert.equal("tenants:read", res.json.scope)
        assert.equal(403, bearer(res.json.access_token).status)
        -- the refresh token keeps the scope of the grant
        assert.equal("customers:read tenants:read", refresh(res.json.refresh_token).json.scope)
      end)
    end)

    describe("access tokens", function()
      it("expire after token_ttl with 401 invalid_token", function()
        sb:config({ token_ttl = 1 })
        local t = tokens()
        assert.equal(1, t.expires_in)
        assert.equal(200, bearer(t.access_token).status)
        os.execute("sleep 1.1")
        local res = bearer(t.access_token)
        assert.equal(401, res.status)
        assert.same({ error = "invalid_token", message = "The access token has expired." }, res.json)
        assert.equal('Bearer realm="flextell", error="invalid_token"', res.headers["www-authenticate"])
        local n = refresh(t.refresh_token).json
        assert.equal(200, bearer(n.access_token).status)
      end)

      it("all expire at once through /_sandbox/oauth/expire", function()
        local a, b = tokens(), tokens()
        assert.same({ access_tokens = 2, refresh_tokens = 0 }, sb:expire_tokens())
        for _, t in ipairs({ a, b }) do
          assert.equal("The access token has expired.", bearer(t.access_token).json.message)
        end
        assert.equal(200, bearer(refresh(a.refresh_token).json.access_token).status)
        assert.same({ access_tokens = 1, refresh_tokens = 2 }, sb:expire_tokens({ refresh = true }))
        grant_error(refresh(b.refresh_token), 400, "invalid_grant", "The refresh token has expired.")
        assert.equal(200, get("/v1/customers/1").status)
      end)

      it("need the call's scope: 403 insufficient_scope", function()
        local t = tokens({ scope = "customers:read" })
        assert.equal(200, bearer(t.access_token, "GET", "/v1/customers").status)
        local res = bearer(t.access_token, "POST", "/v1/customers", { first_name = "S", email = "s@example.com" })
        assert.equal(403, res.status)
        assert.same({ error = "insufficient_scope", message = "This call needs the scope customers:write." }, res.json)
        assert.equal('Bearer realm="flextell", error="insufficient_scope", scope="customers:write"',
          res.headers["www-authenticate"])
        assert.equal("insufficient_scope", bearer(t.access_token, "GET", "/v1/account/tenants").json.error)
        assert.equal(403, bearer(t.access_token, "GET", "/v1/products/1").status)
        local w = tokens({ scope = "customers:write tenants:read" })
        assert.equal(200, bearer(w.access_token, "GET", "/v1/customers/1").status)
        assert.equal(200, bearer(w.access_token, "PATCH", "/v1/customers/1", { notes = "n" }).status)
        assert.equal(200, bearer(w.access_token, "GET", "/v1/account/tenants").status)
      end)

      it("share one rate-limit window per grant across refreshes", function()
        sb:config({ rate_limit = 3 })
        local t = tokens()
        assert.equal("2", bearer(t.access_token).headers["x-ratelimit-remaining"])
        local n = refresh(t.refresh_token).json
        assert.equal("1", bearer(n.access_token).headers["x-ratelimit-remaining"])
        assert.equal("2", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      end)
    end)
  end)
end)
