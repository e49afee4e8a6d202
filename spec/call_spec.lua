-- flextell.Call, the state machine of one call, driven by a driver written in Lua: here one that
-- sends with the curl command line, so every step a driver meets (send, wait, hook, refresh,
-- done) runs against the real sandbox, with the same retry, refresh and error decisions as the
-- libcurl drivers.
local flextell = require "flextell"
local core = require "flextell.core"
local sandbox = require "spec.helpers.sandbox"

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

local function quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

-- curl's exit codes, as the call's transport codes (and whether the request may have gone out)
local CURL_CODES = { [6] = { "resolve_failed", false }, [7] = { "connect_failed", false },
  [28] = { "timeout", true }, [52] = { "empty_reply", true }, [56] = { "connection_reset", true },
  [18] = { "truncated_body", true } }

local log
local function send(call, req)
  log[#log + 1] = req
  local hdr, body, data = os.tmpname(), os.tmpname(), os.tmpname()
  local cmd = { "curl -s -S -D", quote(hdr), "-o", quote(body), "-w '%{http_code}'", "-X", req.method,
    "--max-time", tostring(req.timeout), "-H 'Accept:'" }
  for _, h in ipairs(req.headers) do cmd[#cmd + 1] = "-H " .. quote(h) end
  if req.body then
    local f = assert(io.open(data, "wb"))
    f:write(req.body)
    f:close()
    cmd[#cmd + 1] = "--data-binary @" .. quote(data)
  end
  cmd[#cmd + 1] = quote(req.url)
  local p = assert(io.popen(table.concat(cmd, " ") .. " 2>&1; echo \" exit=$?\""))
  local out = p:read("a")
  p:close()
  local status, exit = out:match("(%d+) exit=(%d+)")
  exit = tonumber(exit)
  if exit ~= 0 then
    local code = CURL_CODES[exit] or { "transport_error", true }
    call:failed(code[1], "curl exited with " .. exit, code[2])
  else
    local headers = read(hdr):gsub("^HTTP/[^\r\n]*\r\n", "")
    call:response(tonumber(status), headers, read(body))
  end
  os.remove(hdr)
  os.remove(body)
  os.remove(data)
end

-- The driver: nothing but call:next() and what it asks for.
local function drive(call, seen)
  while true do
    local what, arg = call:next()
    seen[#seen + 1] = what
    if what == "send" then
      send(call, arg)
    elseif what == "wait" then
      if arg then core.sleep(arg) end
    elseif what == "hook" then
      seen[#seen] = arg.op and "hook " .. arg.hook .. " " .. arg.op or "hook " .. arg.hook
      call:hooked(pcall(arg.fn, (table.unpack or unpack)(arg.args, 1, arg.args.n)))
    elseif what == "refresh" then
      drive(arg, seen)
    elseif what == "done" then
      return call:result()
    end
  end
end

describe("flextell.Call", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end, { tls = false })
  before_each(function() log = {} end)

  it("gives a Lua driver the request to send, and the same result as a blocking call", function()
    local seen = {}
    local call = client:start { path = "/v1/customers/3", query = { x = "y z" } }
    local data, meta, res = drive(call, seen)
    assert.are.same({ "send", "done" }, seen)
    assert.are.same(assert(client:get("/v1/customers/3")), data)
    assert.are.same({}, meta)
    assert.are.equal(200, res.status)
    assert.are.equal(1, res.attempts)
    local req = log[1]
    assert.are.equal("GET", req.method)
    assert.are.equal(sb.url .. "/v1/customers/3?x=y%20z", req.url)
    assert.are.equal("Authorization: Bearer " .. sb.token, req.headers[3])
    assert.are.equal(30, req.timeout)
    assert.are.equal(10, req.connect_timeout)
    assert.is_true(req.idempotent)
    assert.is_nil(req.write_max_idle)
    assert.is_true(req.no_proxy)
    local post = flextell.new { base_url = sb.url, token = sb.token, write_max_idle = 5 }:start {
      method = "POST", path = "/v1/customers", body = { first_name = "W", email = "w@example.com" } }
    local what, preq = post:next()
    assert.are.equal("send", what)
    assert.is_false(preq.idempotent)
    assert.are.equal(5, preq.write_max_idle)
    post:cancel()
  end)

  it("asks its driver to wait and tells on_retry, after a 503", function()
    sb:arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "1" }
    local told = {}
    local c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function(i) told[#told + 1] = i end }
    local seen = {}
    local data, _, res = drive(c:start { path = "/v1/customers/1" }, seen)
    assert.are.equal(1, data.id)
    assert.are.equal(2, res.attempts)
    assert.are.same({ "send", "hook on_retry", "wait", "send", "done" }, seen)
    assert.are.equal("HTTP 503", told[1].reason)
    assert.are.equal(1, told[1].delay)
  end)

  it("retries a POST its driver could not connect for, and not one that may have gone out", function()
    local call = client:start { method = "POST", path = "/v1/customers", body = { first_name = "D",
      email = "d@example.com" } }
    local what = call:next()
    assert.are.equal("send", what)
    call:failed("connect_failed", "no route", false) -- certainly not sent
    local seen = {}
    local data, _, res = drive(call, seen)
    assert.are.equal(46, data.id)
    assert.are.equal(2, res.attempts)
    call = client:start { method = "POST", path = "/v1/customers", body = { first_name = "E", email = "e@example.com" } }
    assert.are.equal("send", (call:next()))
    call:failed("empty_reply", "closed without an answer", true)
    assert.are.equal("done", (call:next()))
    local _, err = call:result()
    assert.are.equal("network", err.kind)
    assert.are.equal("empty_reply", err.code)
    assert.are.equal("closed without an answer", err.message)
    assert.is_true(err.maybe_sent)
    assert.are.equal(1, err.attempts)
  end)

  it("hands its driver the token refresh as a child call", function()
    local o = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state = o:authorize_url { scope = "customers:read" }
    local tokens = assert(o:exchange_code(assert(sb:approve(url)), { state = state }))
    local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      access_token = tokens.access_token, refresh_token = tokens.refresh_token, expires_at = os.time() - 1 }
    local seen = {}
    local data = drive(c:start { path = "/v1/customers/2" }, seen)
    assert.are.equal(2, data.id)
    assert.are.same({ "refresh", "send", "done", "send", "done" }, seen)
    assert.are_not.equal(tokens.access_token, c:tokens().access_token)
    assert.are.equal(sb.url:gsub("/api$", "") .. "/oauth/token", log[1].url)
  end)

  it("hands its driver a token store's steps as hooks, with their arguments", function()
    local o = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state = o:authorize_url { scope = "customers:read" }
    local tokens = assert(o:exchange_code(assert(sb:approve(url)), { state = state }))
    local store = flextell.memory_store()
    tokens.expires_at = os.time() - 1
    assert(store:save(tokens, 0))
    local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      token_store = store }
    local seen = {}
    local data = drive(c:start { path = "/v1/customers/2" }, seen)
    assert.are.equal(2, data.id)
    assert.are.same({ "refresh", "hook token_store load", "hook token_store lock", "hook token_store load", "send",
      "hook token_store save", "hook token_store unlock", "done", "send", "done" }, seen)
    local saved, version = store:load()
    assert.are.equal(2, version)
    assert.are.equal(c:tokens().access_token, saved.access_token)
    assert.are_not.equal(tokens.refresh_token, saved.refresh_token)
    local lock = store:lock { ttl = 1 } -- given back
    assert.are.equal("flextell.MemoryLock", getmetatable(lock).__name)
    lock:unlock()
  end)

  it("refuses driver reports out of turn, and a result before the end", function()
    local call = client:start { path = "/v1/customers/1" }
    assert.has_error(function() call:response(200, {}, "{}") end,
      "call:response: the call is not waiting for an answer")
    assert.has_error(function() call:result() end, "the call is not done yet")
    assert.is_false(call:done())
  end)

  it("ends on cancel with a usage error", function()
    local call = client:start { path = "/v1/customers/1" }
    assert.are.equal("send", (call:next()))
    call:cancel()
    assert.is_true(call:done())
    local data, err = call:result()
    assert.is_nil(data)
    assert.are.equal("usage", err.kind)
    assert.are.equal("cancelled", err.code)
  end)

  it("takes headers as a table, a repeated header as a list", function()
    local call = client:start { path = "/v1/customers/1" }
    call:next()
    call:response(200, { ["Content-Type"] = "application/json", ["X-Request-Id"] = "req_1",
      ["Set-Cookie"] = { "a=1", "b=2" } }, '{"data":{"id":1}}')
    local data, _, res = call:result()
    assert.are.equal(1, data.id)
    assert.are.equal("req_1", res.request_id)
    assert.are.equal("a=1, b=2", res.headers["set-cookie"])
  end)
end)
