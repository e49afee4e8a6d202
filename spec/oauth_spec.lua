-- OAuth 2.0 in the client: authorize URL, code exchange, automatic refresh, rotation, reuse
-- detection, on_token, and no secret in any error.
local flextell = require "flextell"
local core = require "flextell.core"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("OAuth", function()
  local sb

  setup(function()
    sb = sandbox.start()
  end)

  teardown(function()
    sb:stop()
  end)

  local events
  local function new_client(opts)
    local o = { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri, on_token = function(t) events[#events + 1] = t end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return flextell.new(o)
  end

  -- Runs the whole code flow; returns the client and its tokens.
  local function authorized(opts, scope)
    local client = new_client(opts)
    local url, state, verifier = client:authorize_url { scope = scope or "customers:read customers:write", pkce = true }
    local redirect = assert(sb:approve(url))
    local tokens = assert(client:exchange_code(redirect, { state = state, code_verifier = verifier }))
    return client, tokens
  end

  local function grants()
    return sb:oauth().grants
  end

  local function no_secret(err, ...)
    local text = tostring(err)
    for _, secret in ipairs { sb.client_secret, ... } do
      assert.is_nil(text:find(secret, 1, true), "secret in error: " .. text)
    end
  end

  before_each(function()
    sb:reset()
    events = {}
  end)

  describe(":authorize_url", function()
    it("builds the consent URL with a random state", function()
      local client = new_client()
      local url, state, verifier = client:authorize_url { scope = { "customers:read", "tenants:read" } }
      assert.are.equal(43, #state)
      assert.matches("^[%w_-]+$", state)
      assert.is_nil(verifier)
      assert.are.equal(sb.origin .. "/oauth/authorize?response_type=code&client_id=sandbox-client" ..
        "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=customers%3Aread%20tenants%3Aread&state=" .. state, url)
      local _, state2 = client:authorize_url {}
      assert.are_not.equal(state, state2)
    end)

    it("adds an S256 PKCE challenge of the verifier", function()
      local url, state, verifier = new_client():authorize_url { state = "s1", pkce = true }
      assert.are.equal("s1", state)
      assert.are.equal(64, #verifier)
      assert.matches("^[%w_-]+$", verifier)
      assert.matches("&code_challenge=" .. core.pkce_challenge(verifier):gsub("%-", "%%-") ..
        "&code_challenge_method=S256$", url)
    end)

    it("computes the RFC 7636 test vector", function()
      assert.are.equal("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        core.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
    end)

    it("raises without a client_id or redirect_uri", function()
      assert.has_error(function() flextell.new { base_url = sb.url }:authorize_url {} end,
        "client:authorize_url: the client has no client_id")
      assert.has_error(function() flextell.new { base_url = sb.url, client_id = "c" }:authorize_url {} end,
        "client:authorize_url: no redirect_uri (give it here or to flextell.new)")
      assert.has_error(function() new_client():authorize_url { bogus = 1 } end,
        "client:authorize_url: unknown option 'bogus'")
    end)
  end)

  describe(":exchange_code", function()
    it("runs the code flow with PKCE and tells on_token", function()
      local before = os.time()
      local client, tokens = authorized()
      assert.matches("^sbat_", tokens.access_token)
      assert.matches("^sbrt_", tokens.refresh_token)
      assert.are.equal("Bearer", tokens.token_type)
      assert.are.equal("customers:read customers:write", tokens.scope)
      -- time() may lag the precise clock by a tick
      assert.is_true(tokens.expires_at >= before + 3600 and tokens.expires_at <= os.time() + 3601)
      assert.are.same(tokens, client:tokens())
      assert.are.equal(1, #events)
      assert.are.same(tokens, events[1])
      assert.are.equal(2, assert(client:get("/v1/customers/2")).id)
      assert.are.equal(1, grants().authorization_code)
    end)

    it("runs the code flow without PKCE, from the bare code", function()
      local client = new_client()
      local url = client:authorize_url { scope = "customers:read" }
      local _, query = assert(sb:approve(url))
      local tokens = assert(client:exchange_code(query.code))
      assert.are.equal("customers:read", tokens.scope)
      local _, err = client:post("/v1/customers", { first_name = "A", email = "a@example.com" })
      assert.are.equal(403, err.status)
      assert.are.equal("insufficient_scope", err.code)
    end)

    it("refuses a redirect whose state does not match, sending nothing", function()
      local client = new_client()
      local url = client:authorize_url { state = "mine" }
      local redirect = assert(sb:approve(url))
      local tokens, err = client:exchange_code(redirect, { state = "other" })
      assert.is_nil(tokens)
      assert.are.equal("auth", err.kind)
      assert.are.equal("state_mismatch", err.code)
      assert.are.equal("the redirect's state does not match the one sent (a forged or stale redirect)", err.message)
      assert.are.equal(0, grants().total)
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
    end)

    it("checks the state before anything else in the redirect, an error included", function()
      local client = new_client()
      local url = client:authorize_url { state = "mine" }
      local denied = assert(sb:deny(url)):gsub("state=mine", "state=forged")
      local tokens, err = client:exchange_code(denied, { state = "mine" })
      assert.is_nil(tokens)
      assert.are.equal("auth", err.kind)
      assert.are.equal("state_mismatch", err.code)
      tokens, err = client:exchange_code(sb.redirect_uri .. "?error=access_denied", { state = "mine" })
      assert.is_nil(tokens)
      assert.are.equal("state_mismatch", err.code)
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
    end)

    it("takes a redirect URL without a query for a redirect with no state and no code, never for a code", function()
      local client = new_client()
      local tokens, err = client:exchange_code(sb.redirect_uri, { state = "mine" })
      assert.is_nil(tokens)
      assert.are.equal("state_mismatch", err.code)
      tokens, err = client:exchange_code("http://127.0.0.1:8765/callback#x")
      assert.is_nil(tokens)
      assert.are.equal("auth", err.kind)
      assert.are.equal("missing_code", err.code)
      assert.are.equal("the redirect carries no authorization code", err.message)
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
    end)

    it("turns a denied consent into an auth error", function()
      local client = new_client()
      local url, state = client:authorize_url {}
      local redirect = assert(sb:deny(url))
      local tokens, err = client:exchange_code(redirect, { state = state })
      assert.is_nil(tokens)
      assert.are.equal("auth", err.kind)
      assert.are.equal("access_denied", err.code)
      assert.are.equal("authorization failed: access_denied: The user denied the request.", err.message)
      assert.are.equal(0, #events)
    end)

    it("refuses a code used twice, and never retries the exchange", function()
      local client = new_client()
      local url, state, verifier = client:authorize_url { pkce = true }
      local redirect = assert(sb:approve(url))
      assert(client:exchange_code(redirect, { state = state, code_verifier = verifier }))
      local tokens, err = new_client():exchange_code(redirect, { state = state, code_verifier = verifier })
      assert.is_nil(tokens)
      assert.are.equal("auth", err.kind)
      assert.are.equal(400, err.status)
      assert.are.equal("invalid_grant", err.code)
      assert.are.equal(1, err.attempts)
      sb:arm { path = "/oauth/token", fault = "status", status = 503 }
      local url2, state2 = client:authorize_url {}
      local _, err2 = client:exchange_code(assert(sb:approve(url2)), { state = state2 })
      assert.are.equal(503, err2.status)
      assert.are.equal(1, err2.attempts)
    end)

    it("refuses a wrong PKCE verifier", function()
      local client = new_client()
      local url, state = client:authorize_url { pkce = true }
      local _, err = client:exchange_code(assert(sb:approve(url)), { state = state, code_verifier = string.rep("x", 64) })
      assert.are.equal("invalid_grant", err.code)
    end)

    it("reports a wrong client secret without showing it", function()
      local client = new_client { client_secret = "not-the-secret" }
      local url, state = client:authorize_url {}
      local _, err = client:exchange_code(assert(sb:approve(url)), { state = state })
      assert.are.equal("auth", err.kind)
      assert.are.equal(401, err.status)
      assert.are.equal("invalid_client", err.code)
      no_secret(err, "not-the-secret")
    end)

    it("reports a redirect without a code", function()
      local _, err = new_client():exchange_code("http://127.0.0.1/callback?state=x")
      assert.are.equal("missing_code", err.code)
    end)
  end)

  describe("automatic refresh", function()
    it("refreshes a token near its expiry before the call", function()
      local client, first = authorized { refresh_margin = 3600 }
      assert.are.equal(2, assert(client:get("/v1/customers/2")).id)
      assert.are.equal(1, grants().refresh_token)
      assert.are_not.equal(first.access_token, client:tokens().access_token)
      assert.are.equal(1, sb:requests { path = "/api/v1/customers/2" }.count) -- no 401 on the way
    end)

    it("refreshes on a 401, replays the call once, and rotates the refresh token", function()
      local client, first = authorized()
      sb:expire_tokens()
      local data, _, res = client:get("/v1/customers/2")
      assert.are.equal(2, data.id)
      assert.are.equal(2, res.attempts)
      assert.are.equal(2, sb:requests { path = "/api/v1/customers/2" }.count)
      assert.are.equal(1, grants().refresh_token)
      local now = client:tokens()
      assert.are_not.equal(first.refresh_token, now.refresh_token)
      assert.are.equal(2, #events)
      assert.are.same(now, events[2])
    end)

    it("refreshes once for clients that share the tokens", function()
      local client = authorized()
      local t7 = client:with { tenant = 7 }
      sb:expire_tokens()
      assert(t7:get("/v1/customers/1"))
      assert(client:get("/v1/customers/1"))
      assert.are.equal(1, grants().refresh_token)
    end)

    it("keeps the old refresh token when the response has none", function()
      local client, first = authorized()
      sb:arm { path = "/oauth/token", fault = "status", status = 200,
        body = '{"access_token":"plain-new","token_type":"Bearer","expires_in":60}' }
      local tokens = assert(client:refresh())
      assert.are.equal("plain-new", tokens.access_token)
      assert.are.equal(first.refresh_token, tokens.refresh_token)
    end)

    it("refuses a token response without a usable access token", function()
      local client, first = authorized()
      sb:arm { path = "/oauth/token", fault = "status", status = 200,
        body = '{"access_token":"has space","token_type":"Bearer"}' }
      local tokens, err = client:refresh()
      assert.is_nil(tokens)
      assert.are.equal("protocol", err.kind)
      assert.are.equal("invalid_token_response", err.code)
      assert.are.same(first, client:tokens())
    end)

    it("needs re-authorization when a used refresh token comes back, and clears the tokens", function()
      local a, tokens = authorized()
      local b = new_client { access_token = tokens.access_token, refresh_token = tokens.refresh_token }
      assert(a:refresh()) -- rotates: b's refresh token is now used up
      events = {}
      local res, err = b:refresh()
      assert.is_nil(res)
      assert.are.equal("auth", err.kind)
      assert.are.equal("reauth_required", err.code)
      assert.are.equal(400, err.status)
      assert.matches("^the refresh token was refused %(", err.message)
      assert.are.same({}, b:tokens())
      assert.are.same({ {} }, events)
      no_secret(err, tokens.access_token, tokens.refresh_token)
      -- reuse revoked the whole family: a's new tokens too
      local _, err2 = a:get("/v1/customers/1")
      assert.are.equal("reauth_required", err2.code)
      -- with the tokens cleared, a call fails here instead of going out without Authorization
      local before = sb:requests { path = "/api/v1/customers/1" }.count
      local data, err3 = b:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("auth", err3.kind)
      assert.are.equal("reauth_required", err3.code)
      assert.are.equal("the client has no access token: authorize first (client:authorize_url, client:exchange_code)",
        err3.message)
      assert.are.equal(before, sb:requests { path = "/api/v1/customers/1" }.count)
    end)

    it("counts the refresh in res.elapsed, and lets a deadline end the call but not a refresh on the wire", function()
      local _, tokens = authorized()
      local function expired(opts)
        local o = { access_token = tokens.access_token, refresh_token = tokens.refresh_token,
          expires_at = os.time() - 1 }
        for k, v in pairs(opts) do o[k] = v end
        return new_client(o)
      end
      sb:arm { path = "/oauth/token", fault = "delay", seconds = 0.5 }
      local data, _, res = expired({}):get("/v1/customers/1")
      assert.are.equal(1, data.id)
      assert.is_true(res.elapsed >= 0.5, "elapsed " .. res.elapsed)
      -- the refresh's answer holds the only copy of the rotated refresh token: once sent, it is
      -- waited for past the deadline, and the call then ends with the deadline's error
      _, tokens = authorized() -- a grant of its own: the first refresh spent the other's token
      local grants_before = grants().refresh_token
      sb:arm { path = "/oauth/token", fault = "delay", seconds = 2 }
      local t0 = require("flextell.core").now()
      local c = expired({ deadline = 1 })
      local d2, err = c:get("/v1/customers/2")
      local took = require("flextell.core").now() - t0
      assert.is_nil(d2)
      assert.are.same({ "timeout", "timeout", "the call's deadline passed before it could be sent", false },
        { err.kind, err.code, err.message, err.maybe_sent })
      assert.is_true(took >= 2 and took < 4, "the call took " .. took .. " s")
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/2" }.count)
      assert.are.equal(grants_before + 1, grants().refresh_token)
      assert.are_not.equal(tokens.refresh_token, c:tokens().refresh_token) -- kept, not lost
      assert.are.equal(2, assert(c:get("/v1/customers/2")).id) -- and used, without a refresh
      assert.are.equal(grants_before + 1, grants().refresh_token)
      assert.are.equal(0, sb:oauth().errors.invalid_grant or 0)
    end)

    it("fails a call of an OAuth client that was never authorized, sending nothing", function()
      local data, err = new_client():get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("auth", err.kind)
      assert.are.equal("reauth_required", err.code)
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/1" }.count)
    end)

    it("returns an error from on_token and keeps the new tokens", function()
      local client = new_client { on_token = function() error("disk full", 0) end }
      local url, state = client:authorize_url {}
      local tokens, err = client:exchange_code(assert(sb:approve(url)), { state = state })
      assert.is_nil(tokens)
      assert.are.equal("usage", err.kind)
      assert.are.equal("on_token_error", err.code)
      assert.are.equal("on_token raised an error: disk full", err.message)
      assert.matches("^sbat_", client:tokens().access_token)
      assert(client:get("/v1/customers/1"))
    end)

    it("returns an error from on_token in a refresh the call needed, ahead of expiry and after a 401", function()
      local fail = false
      local client = authorized { on_token = function() if fail then error("disk full", 0) end end }
      fail = true
      sb:expire_tokens {}
      local data, err = client:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.same({ "usage", "on_token_error", "on_token raised an error: disk full" },
        { err.kind, err.code, err.message })
      assert(client:get("/v1/customers/1")) -- the new tokens are in memory
      fail = false
      local ahead = authorized { refresh_margin = 1000000, on_token = function() if fail then error("full", 0) end end }
      fail = true
      data, err = ahead:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("on_token_error", err.code)
    end)

    it("cannot refresh without a refresh token", function()
      local _, err = flextell.new { base_url = sb.url, token = sb.token }:refresh()
      assert.are.equal("usage", err.kind)
      assert.are.equal("no_refresh_token", err.code)
    end)

    it("saves every change through a token file", function()
      local dir = assert(io.popen("mktemp -d")):read("l")
      local store = flextell.token_file(dir .. "/t.json")
      local client = new_client(store:options {})
      local url, state = client:authorize_url {}
      assert(client:exchange_code(assert(sb:approve(url)), { state = state }))
      assert.are.equal(client:tokens().access_token, store:load().access_token)
      sb:expire_tokens()
      assert(client:get("/v1/customers/1"))
      assert.are.equal(client:tokens().refresh_token, store:load().refresh_token)
      local again = new_client(store:options {})
      assert(again:get("/v1/customers/1"))
      os.execute("rm -rf '" .. dir .. "'")
    end)
  end)
end)
