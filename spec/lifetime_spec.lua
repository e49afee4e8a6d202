-- Hooks run Lua from inside a call: whatever they do to the client (close it, drop it) the call
-- ends cleanly, and a client whose hooks refer back to it is still collected (on 5.4 and on
-- LuaJIT, which has no ephemeron tables).
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("client lifetime", function()
  local sb
  sandbox.fixture(function(s) sb = s end)

  local function closed(err)
    assert.are.equal("usage", err.kind)
    assert.are.equal("closed", err.code)
    assert.are.equal("the client was closed while the call was running", err.message)
  end

  local function oauth_client(opts)
    local o = { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    for k, v in pairs(opts) do o[k] = v end
    return flextell.new(o)
  end

  local function authorize(c)
    local url, state = c:authorize_url { scope = "customers:read" }
    return assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
  end

  describe("a hook that closes the client", function()
    it("ends the call from on_retry before the retry is sent, even when it would be a 401", function()
      sb:arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      sb:arm { path = "/api/v1/customers/1", fault = "status", status = 401 }
      local c
      c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() c:close() end }
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      closed(err)
      assert.are.equal(1, err.attempts)
      assert.are.equal(1, sb:requests { path = "/api/v1/customers/1" }.count)
      assert.has_error(function() c:get("/v1/customers/1") end, "attempt to use a closed client")
    end)

    it("lets a derived client's call go on when on_retry closes the parent", function()
      sb:arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      local parent
      parent = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() parent:close() end }
      local child = parent:with { tenant = 1 }
      local data, _, res = child:get("/v1/customers/1")
      assert.are.equal(1, data.id)
      assert.are.equal(2, res.attempts)
      assert.has_error(function() parent:get("/v1/customers/1") end, "attempt to use a closed client")
    end)

    it("ends the call from on_token during the refresh before it", function()
      local first = oauth_client {}
      local t = authorize(first)
      first:close()
      local c
      c = oauth_client { access_token = t.access_token, refresh_token = t.refresh_token, expires_at = os.time() - 1,
        on_token = function() c:close() end }
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      closed(err)
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/1" }.count)
      assert.are.equal(1, sb:oauth().grants.refresh_token)
    end)

    it("ends client:exchange_code() and client:refresh() from on_token", function()
      local c
      c = oauth_client { on_token = function() c:close() end }
      local url, state = c:authorize_url { scope = "customers:read" }
      local tokens, err = c:exchange_code(assert(sb:approve(url)), { state = state })
      assert.is_nil(tokens)
      closed(err)
      local first = oauth_client {}
      local t = authorize(first)
      first:close()
      c = oauth_client { refresh_token = t.refresh_token, on_token = function() c:close() end }
      tokens, err = c:refresh()
      assert.is_nil(tokens)
      closed(err)
      assert.are.equal(1, sb:oauth().grants.refresh_token)
    end)

    it("ends a refresh whose on_retry closes the client", function()
      sb:arm { path = "/oauth/token", fault = "status", status = 503, retry_after = "0" }
      local c
      c = oauth_client { refresh_token = "r", on_retry = function() c:close() end }
      local tokens, err = c:refresh()
      assert.is_nil(tokens)
      closed(err)
      assert.are.equal(1, sb:requests { path = "/oauth/token" }.count)
    end)
  end)

  describe("collection", function()
    local function collected(make)
      local weak = setmetatable({}, { __mode = "v" })
      weak[1] = make()
      for _ = 1, 4 do collectgarbage() end
      return weak[1] == nil
    end

    it("collects a client whose on_retry refers back to it", function()
      assert.is_true(collected(function()
        local c
        c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() return c end }
        assert(c:get("/v1/customers/1"))
        return c
      end))
    end)

    it("collects a client whose on_token refers back to it", function()
      assert.is_true(collected(function()
        local c
        c = oauth_client { on_token = function() return c end }
        return c
      end))
    end)

    it("collects a parent and a derived client whose hooks refer to each other", function()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local parent, child
        parent = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() return parent, child end }
        child = parent:with { tenant = 7 }
        assert(child:get("/v1/customers/1"))
        weak[1], weak[2] = parent, child
      end
      for _ = 1, 4 do collectgarbage() end
      assert.is_nil(weak[1])
      assert.is_nil(weak[2])
    end)

    it("keeps the hooks of a derived client alive while only the derived client is held", function()
      sb:arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      local told = 0
      local child = flextell.new { base_url = sb.url, token = sb.token, on_retry = function() told = told + 1 end }
        :with { tenant = 1 }
      for _ = 1, 4 do collectgarbage() end
      assert(child:get("/v1/customers/1"))
      assert.are.equal(1, told)
    end)
  end)
end)
