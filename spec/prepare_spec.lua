-- What a call would send, checked without sending it: client:prepare and client:to_curl.
local flextell = require "flextell"

local function client(opts)
  local o = { base_url = "https://api.test/api", token = "tok-123" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return flextell.new(o)
end

describe("flextell.Client", function()
  describe(":prepare", function()
    it("joins the base URL and an absolute path", function()
      assert.are.equal("https://api.test/api/v1/customers", client():prepare { path = "/v1/customers" }.url)
    end)

    it("puts the prefix before relative paths only", function()
      local c = client { prefix = "/v1/" }
      assert.are.equal("https://api.test/api/v1/customers", c:prepare { path = "customers" }.url)
      assert.are.equal("https://api.test/api/v2/x", c:prepare { path = "/v2/x" }.url)
      assert.are.equal("https://api.test/api/customers", client():prepare { path = "customers" }.url)
    end)

    it("encodes the query with sorted keys, lists as repeated keys and skips null", function()
      local p = client():prepare { path = "/v1/customers", query = {
        search = "Ada Lovelace & co", per_page = 100, page = 2, trashed = false, tags = { "a b", "c" },
        sort_by = flextell.null, ratio = 0.5,
      } }
      assert.are.equal("https://api.test/api/v1/customers?page=2&per_page=100&ratio=0.5&search=Ada%20Lovelace%20%26%20co"
        .. "&tags=a%20b&tags=c&trashed=false", p.url)
    end)

    it("appends the query to a path that already has one", function()
      assert.are.equal("https://api.test/api/x?a=1&b=2", client():prepare { path = "/x?a=1", query = { b = 2 } }.url)
      assert.are.equal("https://api.test/api/x", client():prepare { path = "/x", query = {} }.url)
    end)

    it("percent-encodes characters a path cannot carry and keeps %XX as given", function()
      assert.are.equal("https://api.test/api/files/a%20b%22%3C%3E%23/%C3%A9%2F",
        client():prepare { path = "/files/a b\"<>#/\195\169%2F" }.url)
    end)

    it("sends Accept, User-Agent, the bearer token and the tenant", function()
      local p = client { tenant = 42 }:prepare { path = "/x", reveal_token = true }
      assert.are.same({
        "Accept: application/json",
        "User-Agent: lua-flextell/0.1.0 libcurl/" .. p.headers[2]:match("libcurl/(%S+)") .. " Lua/"
          .. _VERSION:match("%d+%.%d+"),
        "Authorization: Bearer tok-123",
        "X-Tenant: 42",
      }, p.headers)
    end)

    it("puts the user's product before its own in the User-Agent", function()
      local p = client { user_agent = "myapp/1.2" }:prepare { path = "/x" }
      assert.matches("^User%-Agent: myapp/1%.2 lua%-flextell/0%.1%.0 libcurl/", p.headers[2])
    end)

    it("redacts the token unless asked", function()
      local p = client():prepare { path = "/x" }
      assert.are.equal("Authorization: Bearer <redacted>", p.headers[3])
    end)

    it("lets a call set, replace and drop headers and the tenant", function()
      local c = client { tenant = 1, headers = { ["X-App"] = "a" } }
      local p = c:prepare { path = "/x", tenant = 7, headers = { ["x-app"] = "b", Accept = false, ["X-Trace"] = "t" } }
      assert.are.same({ p.headers[1], "Authorization: Bearer <redacted>", "X-Tenant: 7", "X-Trace: t", "x-app: b" },
        p.headers)
      assert.are.same({ "Accept" }, p.dropped)
      assert.matches("^User%-Agent:", p.headers[1])
      assert.are.equal(4, #c:prepare { path = "/x", tenant = false }.headers)
    end)

    it("encodes a table body as JSON with Content-Type and no Expect", function()
      local p = client():prepare { method = "post", path = "/v1/customers", body = { first_name = "Ada" } }
      assert.are.equal("POST", p.method)
      assert.are.equal('{"first_name":"Ada"}', p.body)
      assert.are.equal("Content-Type: application/json", p.headers[4])
      assert.is_nil(p.headers[5])
      assert.are.same({ "Expect" }, p.dropped)
    end)

    it("keeps large integers exact in the body", function()
      if math.type then
        assert.are.equal('{"id":9007199254740993}', client():prepare { path = "/x", body = { id = 9007199254740993 } }.body)
      else
        assert.are.equal('{"id":9007199254740992}', client():prepare { path = "/x", body = { id = 2 ^ 53 } }.body)
      end
    end)

    it("sends a string body as it is", function()
      assert.are.equal('{"raw":true}', client():prepare { method = "PUT", path = "/x", body = '{"raw":true}' }.body)
    end)

    it("form-encodes a form body", function()
      local p = client():prepare { method = "POST", path = "/x", form = { b = "x y", a = 1 } }
      assert.are.equal("a=1&b=x%20y", p.body)
      assert.are.equal("Content-Type: application/x-www-form-urlencoded", p.headers[4])
    end)
  end)

  describe("bad input", function()
    local function usage(req)
      local res, err = client():prepare(req)
      assert.is_nil(res)
      assert.are.equal(flextell.Error, getmetatable(err))
      assert.are.equal("usage", err.kind)
      return err
    end

    it("refuses NaN and infinity in a body before anything is sent", function()
      local err = usage { method = "POST", path = "/x", body = { price = 0 / 0 } }
      assert.are.equal("invalid_body", err.code)
      assert.are.equal("body.price: NaN is not valid JSON", err.message)
      err = usage { method = "POST", path = "/x", body = { items = { { n = 1 }, { n = math.huge } } } }
      assert.are.equal("body.items[2].n: Infinity is not valid JSON", err.message)
    end)

    it("refuses invalid UTF-8 in a body", function()
      local err = usage { method = "POST", path = "/x", body = { name = "\255" } }
      assert.are.equal("invalid_body", err.code)
      assert.are.equal("body.name: invalid UTF-8", err.message)
    end)

    it("refuses header values with CR, LF or NUL", function()
      local err = usage { path = "/x", headers = { ["X-A"] = "1\r\nX-Evil: 2" } }
      assert.are.equal("invalid_header", err.code)
      assert.are.equal("header 'X-A' has a control character (CR, LF, NUL...) in its value", err.message)
      err = usage { path = "/x", headers = { ["X A"] = "1" } }
      assert.are.equal("a header has a name that is not an RFC 9110 token", err.message)
      err = usage { path = "/x", headers = { ["X-N"] = "a\0b" } }
      assert.are.equal("header 'X-N' has a control character (CR, LF, NUL...) in its value", err.message)
    end)

    it("refuses query values that are not scalars", function()
      local err = usage { path = "/x", query = { f = function() end } }
      assert.are.equal("invalid_query", err.code)
      assert.are.equal("query value for 'f' must be a string, number or boolean, got function", err.message)
      err = usage { path = "/x", query = { n = 0 / 0 } }
      assert.are.equal("query value for 'n' is not a finite number", err.message)
    end)

    it("refuses a URL where a path belongs, so the token goes nowhere else", function()
      local err = usage { path = "https://evil.test/steal" }
      assert.are.equal("invalid_path", err.code)
      assert.are.equal("the path must be a path under the base URL, not a URL (the token goes only there)",
        err.message)
      assert.are.equal("invalid_path", usage { path = "//evil.test/x" }.code)
      assert.are.equal("the path is empty", usage { path = "" }.message)
    end)

    it("refuses a multipart file it cannot read", function()
      local err = usage { method = "POST", path = "/x", multipart = { file = { path = "/nonexistent/a.png" } } }
      assert.are.equal("file_unreadable", err.code)
      assert.are.equal("multipart field 'file': cannot read file '/nonexistent/a.png'", err.message)
    end)

    it("raises on programmer errors", function()
      local c = client()
      assert.has_error(function() c:prepare { path = "/x", bogus = 1 } end, "unknown request field 'bogus'")
      assert.has_error(function() c:prepare { path = 5 } end, "request field 'path' must be a string, got number")
      assert.has_error(function() c:prepare { path = "/x", body = {}, form = {} } end,
        "give only one of 'body', 'form' and 'multipart'")
      assert.has_error(function() c:prepare { path = "/x", method = "GE T" } end, "invalid HTTP method 'GE T'")
      assert.has_error(function() c:get("/x", nil, { body = 1 }) end,
        "bad per-call option 'body' (pass it as an argument)")
      assert.has_error(function() c:delete("/x", { body = {} }) end,
        "bad per-call option 'body' (client:delete sends no body; use client:request{ method = \"DELETE\", " ..
        "path = ..., body = ... })")
    end)
  end)

  describe(":to_curl", function()
    it("prints the request as a curl command with the token redacted", function()
      local c = client { tenant = 3 }
      local line = c:to_curl { method = "POST", path = "/v1/customers", body = { first_name = "Ada's" } }
      local ua = c:prepare { path = "/x" }.headers[2]
      assert.are.equal("curl --http1.1 --compressed 'https://api.test/api/v1/customers' -H 'Accept: application/json'" ..
        " -H '" .. ua .. "' -H 'Authorization: Bearer <redacted>' -H 'X-Tenant: 3' -H 'Content-Type: application/json'" ..
        " -H 'Expect:' --data-binary '{\"first_name\":\"Ada'\\''s\"}'", line)
    end)

    it("shows the token when asked", function()
      assert.matches("Authorization: Bearer tok%-123", client():to_curl { path = "/x", reveal_token = true })
    end)

    it("names the method when curl would not guess it", function()
      assert.matches("^curl %-%-http1%.1 %-%-compressed %-X DELETE 'https://api.test/api/v1/customers/1'", client():to_curl {
        method = "DELETE", path = "/v1/customers/1" })
    end)

    it("prints multipart fields as -F", function()
      local line = client():to_curl { method = "POST", path = "/v1/files",
        multipart = { file = { path = "/tmp/a.png", content_type = "image/png" }, message = "hi" } }
      assert.matches(" %-F 'file=@/tmp/a%.png;type=image/png' %-F 'message=hi'$", line)
    end)
  end)

  describe(":resource", function()
    it("refuses ids that would change the path's meaning", function()
      local r = client():resource("/v1/customers")
      for _, id in ipairs { "", ".", ".." } do
        local res, err = r:get(id)
        assert.is_nil(res)
        assert.are.equal("usage", err.kind)
        assert.are.equal("invalid_id", err.code)
      end
      local _, err = r:delete(1.5)
      assert.are.equal("the id must be a string or an integer, got a float", err.message)
      _, err = r:update({}, {})
      assert.are.equal("the id must be a string or an integer, got table", err.message)
    end)
  end)
end)

describe("flextell.Error", function()
  it("reads as one line", function()
    local err = setmetatable({ kind = "http", status = 404, code = "not_found", message = "Customer 9 not found",
      method = "GET", url = "https://api.test/api/v1/customers/9" }, flextell.Error)
    assert.are.equal("flextell: http 404 not_found: Customer 9 not found (GET https://api.test/api/v1/customers/9)",
      tostring(err))
    assert.is_true(flextell.is_error(err))
    assert.is_false(flextell.is_error({}))
  end)
end)

describe("flextell.core.escape", function()
  it("percent-encodes everything but unreserved characters", function()
    local core = require "flextell.core"
    assert.are.equal("a%2Fb%20c", core.escape("a/b c"))
    assert.are.equal("..", core.escape(".."))
    assert.are.equal("res_001", core.escape("res_001"))
    assert.are.equal("42", core.escape(42))
  end)
end)

describe("NUL bytes", function()
  local c = flextell.new { base_url = "https://api.test/api", token = "t" }

  it("are refused in paths, header names and query keys", function()
    local _, err = c:prepare { path = "/v1/a\0b" }
    assert.are.equal("invalid_path", err.code)
    assert.are.equal("the path contains a NUL byte", err.message)
    _, err = c:get("/v1/a\0b")
    assert.are.equal("the path contains a NUL byte", err.message)
    _, err = c:prepare { path = "/x", headers = { ["X-A\0B"] = "v" } }
    assert.are.equal("invalid_header", err.code)
    assert.are.equal("header names must be strings without NUL bytes (at most 256)", err.message)
    _, err = c:prepare { path = "/x", query = { ["a\0b"] = "v" } }
    assert.are.equal("invalid_query", err.code)
    assert.are.equal("query keys must be strings without NUL bytes (at most 256)", err.message)
  end)

  it("are encoded in query values and refused in header values", function()
    assert.are.equal("https://api.test/api/x?a=b%00c", c:prepare { path = "/x", query = { a = "b\0c" } }.url)
    local _, err = c:prepare { path = "/x", headers = { ["X-A"] = "a\0b" } }
    assert.are.equal("header 'X-A' has a control character (CR, LF, NUL...) in its value", err.message)
  end)

  it("raise in methods and secrets", function()
    assert.has_error(function() c:prepare { path = "/x", method = "GET\0X" } end, "invalid HTTP method 'GET'")
    assert.has_error(function() flextell.new { token = "abc\0def" } end,
      "flextell.new: option 'token' must not contain a NUL byte")
    assert.has_error(function() flextell.new { client_secret = "abc\0def" } end,
      "flextell.new: option 'client_secret' must not contain a NUL byte")
  end)
end)
