-- Every scripted fault of the sandbox, and what the client makes of it: the exact error, how
-- many attempts the server saw, and that a POST is never sent twice when it must not be.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("faults", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end)

  local function seen(method, path)
    return sb:requests { method = method, path = "/api" .. path }.count
  end

  local function arm(t)
    assert(sb:arm(t))
  end

  describe("retries", function()
    it("retries a GET after a 503 and reports the attempts", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      local retries = {}
      local c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function(i) retries[#retries + 1] = i end }
      local data, _, res = c:get("/v1/customers/1")
      assert.are.equal(1, data.id)
      assert.are.equal(2, res.attempts)
      assert.are.equal(2, seen("GET", "/v1/customers/1"))
      assert.are.same({ { attempt = 1, reason = "HTTP 503", delay = 0, status = 503, method = "GET",
        url = sb.url .. "/v1/customers/1" } }, retries)
    end)

    it("gives up after max_retries with the last error", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 502, count = 5 }
      local data, err = client:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.status)
      assert.are.equal("bad_gateway", err.code)
      assert.are.equal("Injected fault: HTTP 502 for GET /api/v1/customers/1.", err.message)
      assert.are.equal(3, err.attempts)
      assert.are.equal(3, seen("GET", "/v1/customers/1"))
    end)

    it("does not retry a POST after a 500, so nothing is sent twice", function()
      arm { path = "/api/v1/customers", method = "POST", fault = "status", status = 500 }
      local _, err = client:post("/v1/customers", { first_name = "A", email = "a1@example.com" })
      assert.are.equal(500, err.status)
      assert.are.equal("server_error", err.code)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, seen("POST", "/v1/customers"))
    end)

    it("retries a POST after a 503 (not processed) and creates one record", function()
      arm { path = "/api/v1/customers", method = "POST", fault = "status", status = 503, retry_after = 0 }
      local data, _, res = client:post("/v1/customers", { first_name = "B", email = "b1@example.com" })
      assert.are.equal(46, data.id)
      assert.are.equal(2, res.attempts)
      assert.are.equal(45 + 1, #assert(client:all("/v1/customers", { per_page = 100 })))
    end)

    it("does not retry a 4xx", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 404 }
      local _, err = client:get("/v1/customers/1")
      assert.are.equal(404, err.status)
      assert.are.equal(1, err.attempts)
    end)

    it("waits for Retry-After seconds on a 429", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 429, retry_after = "1" }
      local t0 = os.time()
      local data, _, res = client:get("/v1/customers/1")
      assert.are.equal(1, data.id)
      assert.are.equal(2, res.attempts)
      assert.is_true(res.elapsed >= 0.9, "waited " .. res.elapsed)
      assert.is_true(os.time() - t0 <= 3)
    end)

    it("reads Retry-After as an HTTP date, and a past one as now", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "Wed, 21 Oct 2015 07:28:00 GMT" }
      local _, _, res = client:get("/v1/customers/1")
      assert.are.equal(2, res.attempts)
      assert.is_true(res.elapsed < 1)
      arm { path = "/api/v1/customers/1", fault = "status", status = 429, count = 3,
        retry_after = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 100) }
      local _, err = client:get("/v1/customers/1")
      assert.are.equal("limit", err.kind)
      assert.is_true(err.retry_after > 95 and err.retry_after <= 100)
      if math.type then assert.are.equal("integer", math.type(err.retry_after)) end
    end)

    it("ignores a Retry-After it cannot read and backs off instead", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "soon-ish" }
      local _, _, res = client:get("/v1/customers/1")
      assert.are.equal(2, res.attempts)
    end)

    it("returns a 429 whose wait passes the deadline, with retry_after, without sleeping", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 429, retry_after = "30" }
      local c = flextell.new { base_url = sb.url, token = sb.token, deadline = 5 }
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("limit", err.kind)
      assert.are.equal(429, err.status)
      assert.are.equal("rate_limit_exceeded", err.code)
      assert.are.equal(30, err.retry_after)
      if math.type then assert.are.equal("integer", math.type(err.retry_after)) end
      assert.are.equal(1, err.attempts)
    end)

    it("stops retrying at the deadline", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "1", count = 10 }
      local _, err = client:get("/v1/customers/1", nil, { deadline = 1.5, max_retries = 10 })
      assert.are.equal(503, err.status)
      assert.are.equal(2, err.attempts)
    end)

    it("ends the call with an error raised in on_retry", function()
      arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      local c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() error("stop", 0) end }
      local _, err = c:get("/v1/customers/1")
      assert.are.equal("usage", err.kind)
      assert.are.equal("on_retry_error", err.code)
      assert.are.equal("on_retry raised an error: stop", err.message)
    end)
  end)

  describe("rate limits", function()
    it("paces calls when the window is used up", function()
      sb:config { rate_limit = 2, rate_window = 1 }
      local c = flextell.new { base_url = sb.url, token = sb.token, pace = true }
      for i = 1, 4 do
        assert.are.equal(i, assert(c:get("/v1/customers/" .. i)).id)
      end
      for _, r in ipairs(sb:requests {}.requests) do assert.are.equal(200, r.status) end
    end)

    it("returns a paced call that would wait past the deadline, sending nothing", function()
      sb:config { rate_limit = 1, rate_window = 60 }
      local c = flextell.new { base_url = sb.url, token = sb.token, pace = true, deadline = 2 }
      assert(c:get("/v1/customers/1"))
      local data, err = c:get("/v1/customers/2")
      assert.is_nil(data)
      assert.are.equal("limit", err.kind)
      assert.are.equal("rate_limit_exceeded", err.code)
      assert.are.equal(0, err.attempts)
      assert.is_true(err.retry_after > 50 and err.retry_after <= 60)
      if math.type then assert.are.equal("integer", math.type(err.retry_after)) end
      assert.are.equal(0, seen("GET", "/v1/customers/2"))
      assert.are.equal(0, c:rate_limit().remaining)
    end)
  end)

  describe("broken answers", function()
    it("reports an HTML 502 from a proxy as an http error", function()
      arm { path = "/api/v1/customers", fault = "html", count = 3 }
      local _, err = client:get("/v1/customers")
      assert.are.equal("http", err.kind)
      assert.are.equal(502, err.status)
      assert.are.equal("non_json_body", err.code)
      assert.are.equal("HTTP 502 Bad Gateway (text/html body)", err.message)
      assert.are.equal(3, err.attempts)
    end)

    it("reports malformed JSON in a 200 as a decode error, not retried", function()
      arm { path = "/api/v1/customers", fault = "malformed" }
      local _, err = client:get("/v1/customers")
      assert.are.equal("decode", err.kind)
      assert.are.equal(200, err.status)
      assert.are.equal("invalid_json", err.code)
      assert.matches("^the response body is not valid JSON: invalid JSON at byte 15: ", err.message)
      assert.are.equal(1, err.attempts)
    end)

    it("returns true for an empty 200", function()
      arm { path = "/api/v1/customers/1", fault = "empty" }
      local data, meta, res = client:get("/v1/customers/1")
      assert.are.equal(true, data)
      assert.are.same({}, meta)
      assert.are.equal(200, res.status)
    end)

    it("reports a truncated body as a network error and retries a GET", function()
      arm { path = "/api/v1/customers/1", fault = "truncated", count = 3 }
      local _, err = client:get("/v1/customers/1")
      assert.are.equal("network", err.kind)
      assert.are.equal("truncated_body", err.code)
      assert.is_nil(err.status)
      assert.are.equal(3, err.attempts)
    end)

    it("does not send a POST again after a connection reset", function()
      arm { path = "/api/v1/customers", method = "POST", fault = "reset" }
      local _, err = client:post("/v1/customers", { first_name = "R", email = "r@example.com" })
      assert.are.equal("network", err.kind)
      assert.are.equal("connection_reset", err.code)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, seen("POST", "/v1/customers"))
    end)

    it("times out a stalled answer", function()
      arm { path = "/api/v1/customers/1", fault = "stall", seconds = 5 }
      local _, err = client:get("/v1/customers/1", nil, { timeout = 1, max_retries = 0 })
      assert.are.equal("timeout", err.kind)
      assert.are.equal("timeout", err.code)
      assert.are.equal(1, err.attempts)
    end)

    it("notices a stall with stall_timeout", function()
      arm { path = "/api/v1/customers/1", fault = "stall", seconds = 5 }
      local c = flextell.new { base_url = sb.url, token = sb.token, stall_timeout = 1, max_retries = 0 }
      local _, err = c:get("/v1/customers/1")
      assert.are.equal("timeout", err.kind)
      assert.are.equal("stalled", err.code)
    end)

    it("times out a slow answer", function()
      arm { path = "/api/v1/customers/1", fault = "delay", seconds = 3 }
      local _, err = client:get("/v1/customers/1", nil, { timeout = 0.5, max_retries = 0 })
      assert.are.equal("timeout", err.kind)
      assert.are.equal("timeout", err.code)
    end)

    it("keeps a timeout shorter than a millisecond a timeout (never 0, libcurl's 'no limit')", function()
      arm { path = "/api/v1/customers/1", fault = "delay", seconds = 3 }
      local c = flextell.new { base_url = sb.url, token = sb.token, connect_timeout = 0.0001, max_retries = 0 }
      local _, err = c:get("/v1/customers/1", nil, { timeout = 0.0001 })
      assert.are.equal("timeout", err.kind)
      assert.is_true(err.code == "timeout" or err.code == "connect_timeout", err.code)
      c:close()
    end)

    it("refuses a body larger than max_response_bytes while it streams", function()
      arm { path = "/api/v1/customers", fault = "huge", bytes = 20 * 1024 * 1024 }
      local c = flextell.new { base_url = sb.url, token = sb.token, max_response_bytes = 1024 * 1024 }
      local _, err = c:get("/v1/customers")
      assert.are.equal("limit", err.kind)
      assert.are.equal("response_too_large", err.code)
      assert.are.equal("the response body is larger than max_response_bytes (1048576)", err.message)
      assert.are.equal(1, err.attempts)
    end)

    it("refuses a body whose Content-Length is over the cap before reading it", function()
      arm { path = "/api/v1/customers", fault = "huge", bytes = 4 * 1024 * 1024, content_length = true }
      local c = flextell.new { base_url = sb.url, token = sb.token, max_response_bytes = 1024 * 1024 }
      local _, err = c:get("/v1/customers")
      assert.are.equal("response_too_large", err.code)
    end)

    it("refuses response headers over the cap", function()
      arm { path = "/api/v1/customers", fault = "headers_huge" }
      local _, err = client:get("/v1/customers")
      assert.are.equal("limit", err.kind)
      assert.are.equal("headers_too_large", err.code)
    end)

    it("refuses one response header line over libcurl's limit as headers_too_large", function()
      arm { path = "/api/v1/customers", fault = "headers_huge", single = true, bytes = 200 * 1024 }
      local _, err = client:get("/v1/customers")
      assert.are.equal("limit", err.kind)
      assert.are.equal("headers_too_large", err.code)
      assert.are.equal("a response header line is larger than libcurl accepts (100 KB)", err.message)
      assert.are.equal(1, err.attempts)
    end)

    it("reports an answer that is not HTTP/1.x as a protocol error, retried for a GET", function()
      arm { path = "/api/v1/customers/1", fault = "garbage", count = 3 }
      local _, err = client:get("/v1/customers/1")
      assert.are.equal("protocol", err.kind)
      assert.are.equal("bad_response", err.code)
      assert.are.equal("Received HTTP/0.9 when not allowed", err.message)
      assert.is_true(err.maybe_sent)
      assert.are.equal(3, err.attempts)
      arm { path = "/api/v1/customers/1", fault = "garbage", raw = "HTTP/1.1 2x0 OK\r\n\r\n" }
      local data, _, res = client:get("/v1/customers/1")
      assert.are.equal(1, data.id)
      assert.are.equal(2, res.attempts)
    end)

    it("does not send a POST again after an answer that is not HTTP", function()
      arm { path = "/api/v1/customers", method = "POST", fault = "garbage", raw = "HTTP/1.1 2x0 OK\r\n\r\n" }
      local _, err = client:post("/v1/customers", { first_name = "G", email = "g@example.com" })
      assert.are.equal("protocol", err.kind)
      assert.are.equal("bad_response", err.code)
      assert.are.equal("Unsupported response code in HTTP response", err.message)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, seen("POST", "/v1/customers"))
    end)

    it("does not follow a redirect, so the token stays home", function()
      arm { path = "/api/v1/customers", fault = "redirect" }
      local _, err = client:get("/v1/customers")
      assert.are.equal("protocol", err.kind)
      assert.are.equal(302, err.status)
      assert.are.equal("redirect", err.code)
      assert.are.equal("unexpected redirect (HTTP 302) to " .. sb.redirect_origin .. "/api/v1/customers;" ..
        " redirects are not followed", err.message)
      local log = sb:requests {}
      assert.are.equal(1, log.count) -- the redirect target never heard from the client
      assert.is_nil(log.requests[1].redirected)
    end)

    it("names a redirect's target without its query, where signed URLs keep their secrets", function()
      arm { path = "/api/v1/customers", fault = "redirect", location = "https://files.example/x?sig=SECRET&exp=1" }
      local _, err = client:get("/v1/customers")
      assert.are.equal("redirect", err.code)
      assert.are.equal("unexpected redirect (HTTP 302) to https://files.example/x (query left out);" ..
        " redirects are not followed", err.message)
      assert.is_nil(tostring(err):find("SECRET", 1, true))
    end)
  end)

  describe("paging faults", function()
    it("stops with a protocol error on has_more without a cursor", function()
      arm { path = "/api/resources", fault = "no_cursor" }
      local pager = client:pager("/resources")
      local page, err = pager:next()
      assert.is_nil(page)
      assert.are.equal("protocol", err.kind)
      assert.are.equal("missing_cursor", err.code)
      assert.are.equal("the page says has_more but gives no cursor", err.message)
      arm { path = "/api/resources", fault = "no_cursor", null = true }
      local ok, err2 = pcall(function() for _ in client:each("/resources") do end end)
      assert.is_false(ok)
      assert.are.equal("missing_cursor", err2.code)
    end)

    it("stops with a protocol error on a cursor seen before", function()
      arm { path = "/api/resources", fault = "repeat_cursor", count = 2 }
      local items, err = client:all("/resources", { limit = 10 })
      assert.is_nil(items)
      assert.are.equal("protocol", err.kind)
      assert.are.equal("repeated_cursor", err.code)
      assert.are.equal(2, seen("GET", "/resources"))
    end)
  end)
end)
