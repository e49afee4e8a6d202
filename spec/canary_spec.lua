-- Canary secrets driven through every failure path: no token or client secret may appear in
-- any error (its string or any field), in tostring(client), in to_curl or prepare output, or in
-- what on_retry is told.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

local TOKEN, SECRET, REFRESH = "CANARY-TOKEN-7f3a9c", "CANARY-SECRET-2b8e", "CANARY-REFRESH-91d4"

-- Every string reachable from v, tostring of tables with a metatable included.
local function dump(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "table" then
    if seen[v] then return out end
    seen[v] = true
    if getmetatable(v) and getmetatable(v).__tostring then out[#out + 1] = tostring(v) end
    for k, x in pairs(v) do
      dump(k, out, seen)
      dump(x, out, seen)
    end
  else
    out[#out + 1] = tostring(v)
  end
  return out
end

local function assert_clean(v, what)
  local text = table.concat(dump(v), "\n")
  for _, secret in ipairs { TOKEN, SECRET, REFRESH } do
    assert.is_nil(text:find(secret, 1, true), what .. " shows a secret: " .. text)
  end
end

describe("secrets", function()
  local sb, kinds

  setup(function()
    sb = sandbox.start()
    kinds = {}
  end)

  teardown(function()
    sb:stop()
  end)

  before_each(function()
    sb:reset()
  end)

  local function canary_client(opts)
    local o = { base_url = sb.url, token = TOKEN, client_id = sb.client_id, client_secret = SECRET,
      redirect_uri = sb.redirect_uri, max_retries = 1 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return flextell.new(o)
  end

  local function failing(what, data, err)
    assert.is_nil(data, what)
    assert.are.equal(flextell.Error, getmetatable(err), what)
    kinds[err.kind] = true
    assert_clean(err, what)
  end

  it("never appear in errors of any kind", function()
    local retries = {}
    local c = canary_client { on_retry = function(i) retries[#retries + 1] = i end }
    failing("auth", c:get("/v1/customers"))
    local ok = flextell.new { base_url = sb.url, token = sb.token, client_secret = SECRET, client_id = "x",
      max_retries = 1, on_retry = function(i) retries[#retries + 1] = i end }
    failing("http", ok:get("/v1/customers/999"))
    sb:arm { path = "/api/v1/customers", fault = "status", status = 429, retry_after = "0", count = 2 }
    failing("limit", ok:get("/v1/customers"))
    sb:arm { path = "/api/v1/customers", fault = "malformed" }
    failing("decode", ok:get("/v1/customers"))
    sb:arm { path = "/api/v1/customers", fault = "redirect" }
    failing("protocol", ok:get("/v1/customers"))
    sb:arm { path = "/api/v1/customers", fault = "delay", seconds = 2 }
    failing("timeout", ok:get("/v1/customers", nil, { timeout = 0.3, max_retries = 0 }))
    failing("network", canary_client { base_url = "http://127.0.0.1:1/api" }:get("/x"))
    failing("tls", canary_client { base_url = sb.https_url }:get("/x"))
    failing("usage", c:post("/x", { bad = 0 / 0 }))
    failing("usage header", c:get("/x", nil, { headers = { ["X-Token"] = TOKEN .. "\r\n" } }))
    assert_clean(retries, "on_retry")
    assert.is_true(#retries > 0)
    for _, kind in ipairs { "auth", "http", "limit", "decode", "protocol", "timeout", "network", "tls", "usage" } do
      assert.is_true(kinds[kind], "no " .. kind .. " error was driven")
    end
  end)

  it("never appear in OAuth failures", function()
    local c = flextell.new { base_url = sb.url, access_token = TOKEN, refresh_token = REFRESH,
      client_id = sb.client_id, client_secret = SECRET }
    failing("refresh with an unknown refresh token", c:refresh())
    local c2 = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = SECRET,
      redirect_uri = sb.redirect_uri }
    local url, state = c2:authorize_url {}
    failing("exchange with a wrong secret", c2:exchange_code(assert(sb:approve(url)), { state = state }))
    failing("state mismatch", c2:exchange_code(sb.redirect_uri .. "?code=abc&state=zzz", { state = "yyy" }))
  end)

  it("never appear in tostring(client), to_curl or prepare unless asked", function()
    local c = canary_client()
    assert_clean(tostring(c), "tostring(client)")
    assert_clean(tostring(c:with { tenant = 7 }), "tostring(derived client)")
    assert_clean(c:to_curl { method = "POST", path = "/v1/customers", body = { a = 1 } }, "to_curl")
    assert_clean(c:prepare { path = "/v1/customers" }, "prepare")
    assert.matches(TOKEN, c:to_curl { path = "/x", reveal_token = true }, 1, true)
  end)
end)
