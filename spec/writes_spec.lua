-- A POST or PATCH goes on the wire at most once unless the library knows the earlier attempt was
-- not processed (429, 503, or a failure before any byte of it was written), on reused and fresh
-- connections, whether the library or libcurl would send it again. Every send is an attempt,
-- and on_retry hears of each. Tried hard: warm connections, slow answers, stalls, servers that
-- hang up after reading the request, timeouts in the TLS handshake.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("writes", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset() end)

  local retries
  local function new(opts)
    retries = {}
    local o = { base_url = sb.url, token = sb.token, on_retry = function(i) retries[#retries + 1] = i end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return flextell.new(o)
  end

  local function log(method, path)
    return sb:requests { method = method, path = "/api" .. path }.requests
  end

  local function warm(c)
    local _, _, res = assert(c:get("/v1/customers/1"))
    assert.are.equal(1, res.attempts)
    return log("GET", "/v1/customers/1")[1].connection
  end

  local function customers()
    return #assert(flextell.new { base_url = sb.url, token = sb.token }:all("/v1/customers", { per_page = 100 }))
  end

  describe("on a reused connection", function()
    it("sends a POST once when the answer takes longer than the timeout", function()
      local c = new { timeout = 1 }
      local conn = warm(c)
      sb:arm { path = "/api/v1/customers", method = "POST", fault = "delay", seconds = 2 }
      local data, err = c:post("/v1/customers", { first_name = "Once", email = "once@example.com" })
      assert.is_nil(data)
      assert.are.equal("timeout", err.kind)
      assert.are.equal("timeout", err.code) -- not connect_timeout: the connection was up
      assert.is_true(err.maybe_sent)
      assert.are.equal(1, err.attempts)
      local posts = log("POST", "/v1/customers")
      assert.are.equal(1, #posts)
      assert.are.equal(conn, posts[1].connection)
      assert.are.same({}, retries)
      os.execute("sleep 1.2") -- let the slow handler finish before counting
      assert.are.equal(46, customers())
    end)

    it("sends a PATCH once when the server stalls after the headers", function()
      local c = new { stall_timeout = 1 }
      warm(c)
      sb:arm { path = "/api/v1/customers/2", method = "PATCH", fault = "stall", seconds = 3 }
      local _, err = c:patch("/v1/customers/2", { phone = "1" })
      assert.are.equal("timeout", err.kind)
      assert.are.equal("stalled", err.code)
      assert.is_true(err.maybe_sent)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #log("PATCH", "/v1/customers/2"))
    end)

    it("refuses libcurl's silent re-send of a PATCH when the server hangs up without answering", function()
      local c = new { max_retries = 0 }
      local conn = warm(c)
      sb:arm { path = "/api/v1/customers/2", method = "PATCH", fault = "hangup" }
      local data, err = c:patch("/v1/customers/2", { phone = "+1-555-0000" })
      assert.is_nil(data)
      assert.are.equal("network", err.kind)
      assert.are.equal("empty_reply", err.code)
      assert.are.equal("the server closed the kept-alive connection without an answer; the PATCH may have been" ..
        " processed, so it was not sent again", err.message)
      assert.is_true(err.maybe_sent)
      assert.are.equal(1, err.attempts)
      local patches = log("PATCH", "/v1/customers/2")
      assert.are.equal(1, #patches)
      assert.are.equal(conn, patches[1].connection)
      assert.are.same({}, retries)
    end)

    it("refuses it for a POST with retries allowed too", function()
      local c = new {}
      warm(c)
      sb:arm { path = "/api/v1/customers", method = "POST", fault = "hangup" }
      local _, err = c:post("/v1/customers", { first_name = "H", email = "h@example.com" })
      assert.are.equal("empty_reply", err.code)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #log("POST", "/v1/customers"))
      assert.are.same({}, retries)
      assert.are.equal(45, customers())
    end)

    it("lets libcurl re-send a GET, even with max_retries = 0, counting it and telling on_retry", function()
      local c = new { max_retries = 0 }
      local conn = warm(c)
      sb:arm { path = "/api/v1/customers/3", fault = "hangup" }
      local data, _, res = c:get("/v1/customers/3")
      assert.are.equal(3, data.id)
      assert.are.equal(2, res.attempts)
      local gets = log("GET", "/v1/customers/3")
      assert.are.equal(2, #gets)
      assert.are.equal(conn, gets[1].connection)
      assert.are_not.equal(conn, gets[2].connection)
      assert.are.same({ { attempt = 1, reason = "connection closed without an answer; sent again on a new connection",
        delay = 0, method = "GET", url = sb.url .. "/v1/customers/3" } }, retries)
    end)

    -- easy handles are kept from call to call: a re-send of one call must not count against the
    -- next (libcurl gives up after 5 re-sends per handle, counted until the handle is reset)
    it("lets libcurl re-send a GET on each of seven calls in a row", function()
      local c = new { max_retries = 0 }
      for n = 1, 7 do
        warm(c)
        sb:arm { path = "/api/v1/customers/3", fault = "hangup" }
        local data, meta_or_err, res = c:get("/v1/customers/3")
        assert.is_truthy(data, "call " .. n .. ": " .. tostring(meta_or_err))
        assert.are.same({ 3, 2 }, { data.id, res.attempts })
      end
      assert.are.equal(14, #log("GET", "/v1/customers/3"))
      assert.are.equal(7, #retries)
    end)

    it("reports a read timeout on a reused connection as timeout, not connect_timeout", function()
      local c = new { timeout = 1, max_retries = 0 }
      warm(c)
      sb:arm { path = "/api/v1/customers/4", fault = "delay", seconds = 2 }
      local _, err = c:get("/v1/customers/4")
      assert.are.equal("timeout", err.kind)
      assert.are.equal("timeout", err.code)
      assert.is_true(err.maybe_sent)
    end)
  end)

  describe("on a fresh connection", function()
    -- every client of a lua_State shares its kept-alive connections: a sandbox on new ports is
    -- the way to be sure the next request opens one
    before_each(function()
      sb:stop()
      sb = sandbox.start()
    end)

    it("does not retry a POST whose connection closed without an answer", function()
      local c = new {}
      sb:arm { path = "/api/v1/customers", method = "POST", fault = "hangup" }
      local _, err = c:post("/v1/customers", { first_name = "F", email = "f@example.com" })
      assert.are.equal("network", err.kind)
      assert.are.equal("empty_reply", err.code)
      assert.is_true(err.maybe_sent)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, #log("POST", "/v1/customers"))
    end)

    it("retries a GET whose connection closed without an answer", function()
      local c = new {}
      sb:arm { path = "/api/v1/customers/5", fault = "hangup" }
      local data, _, res = c:get("/v1/customers/5")
      assert.are.equal(5, data.id)
      assert.are.equal(2, res.attempts)
      assert.are.equal(2, #log("GET", "/v1/customers/5"))
      assert.are.equal(1, #retries)
      assert.are.equal("Empty reply from server", retries[1].reason)
    end)

    it("retries a POST whose connection was refused: nothing was sent", function()
      local port = sb.redirect_port + 1 -- nothing listens there
      local c = new { base_url = "http://127.0.0.1:" .. port .. "/api", max_retries = 2 }
      c = c:with { timeout = 2 }
      local _, err = c:post("/v1/customers", { first_name = "R" })
      assert.are.equal("network", err.kind)
      assert.are.equal("connect_failed", err.code)
      assert.is_false(err.maybe_sent)
      assert.are.equal(3, err.attempts)
      assert.are.equal(2, #retries)
      assert.matches("^not sent: ", retries[1].reason)
    end)

    it("retries a POST whose TLS handshake timed out: nothing was sent", function()
      sb:config { tls_handshake_delay = 2 }
      local c = new { base_url = sb.https_url, ca_file = sb.ca_file, connect_timeout = 0.5, max_retries = 1 }
      local _, err = c:post("/v1/customers", { first_name = "T", email = "t@example.com" })
      assert.are.equal("timeout", err.kind)
      assert.are.equal("connect_timeout", err.code)
      assert.is_false(err.maybe_sent)
      assert.are.equal(2, err.attempts)
      assert.are.equal(0, #log("POST", "/v1/customers"))
      sb:config { tls_handshake_delay = 0 }
    end)
  end)

  describe("connections for writes", function()
    it("puts a write on a connection that idled less than write_max_idle seconds", function()
      local c = new { write_max_idle = 2 }
      local conn = warm(c)
      assert(c:post("/v1/customers", { first_name = "W", email = "w1@example.com" }))
      assert.are.equal(conn, log("POST", "/v1/customers")[1].connection)
    end)

    it("puts a write on a new connection after a longer idle time, while a GET reuses it", function()
      local c = new { write_max_idle = 1 }
      local conn = warm(c)
      os.execute("sleep 1.1")
      assert(c:post("/v1/customers", { first_name = "W", email = "w2@example.com" }))
      local post_conn = log("POST", "/v1/customers")[1].connection
      assert.are_not.equal(conn, post_conn)
      os.execute("sleep 1.1")
      assert(c:get("/v1/customers/2"))
      assert.are.equal(post_conn, log("GET", "/v1/customers/2")[1].connection)
    end)

    it("puts every write on a new connection with write_max_idle = 0", function()
      local c = new { write_max_idle = 0 }
      local conn = warm(c)
      assert(c:post("/v1/customers", { first_name = "W", email = "w3@example.com" }))
      assert(c:patch("/v1/customers/2", { phone = "2" }))
      local post, patch = log("POST", "/v1/customers")[1], log("PATCH", "/v1/customers/2")[1]
      assert.are_not.equal(conn, post.connection)
      assert.are_not.equal(post.connection, patch.connection)
    end)

    it("still retries a POST on a 503 and a 429, which say it was not processed", function()
      local c = new {}
      warm(c)
      sb:arm { path = "/api/v1/customers", method = "POST", fault = "status", status = 503, retry_after = "0" }
      sb:arm { path = "/api/v1/customers", method = "POST", fault = "status", status = 429, retry_after = "0" }
      local data, _, res = c:post("/v1/customers", { first_name = "S", email = "s@example.com" })
      assert.are.equal(46, data.id)
      assert.are.equal(3, res.attempts)
      assert.are.equal(3, #log("POST", "/v1/customers"))
      assert.are.equal(46, customers())
    end)
  end)
end)
