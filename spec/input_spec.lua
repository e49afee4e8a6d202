-- Input that would silently change what a call means: nested or empty tables in a query or a
-- form, a lone % in a path, header removal that libcurl would undo, and strings that would
-- inject a header, through every entry point. Each is either sent exactly as meant (checked on
-- the sandbox's echo endpoint, which returns what it received) or refused before sending.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("input", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end)

  local function sent(path)
    return sb:requests { path = "/api" .. path }.count
  end

  describe("query and form tables", function()
    it("refuses a nested table in a query, sending nothing", function()
      local data, err = client:get("/_echo/q", { filter = { status = "open" } })
      assert.is_nil(data)
      assert.are.equal("usage", err.kind)
      assert.are.equal("invalid_query", err.code)
      assert.are.equal("query value for 'filter' is a nested table; give a list of strings, numbers or booleans" ..
        " (or flatten it yourself, e.g. 'filter[field]')", err.message)
      assert.are.equal(0, sent("/_echo/q"))
    end)

    it("refuses an empty table in a query, sending nothing", function()
      local _, err = client:get("/_echo/q", { tags = {}, page = 1 })
      assert.are.equal("invalid_query", err.code)
      assert.are.equal("query value for 'tags' is an empty table; leave the key out to send nothing", err.message)
      _, err = client:get("/_echo/q", { tags = flextell.array() })
      assert.are.equal("invalid_query", err.code)
      assert.are.equal(0, sent("/_echo/q"))
    end)

    it("refuses a list holding a table, and a list with extra keys", function()
      local _, err = client:get("/_echo/q", { ids = { 1, { 2 } } })
      assert.are.equal("invalid_query", err.code)
      assert.matches("^query value for 'ids' is a nested table", err.message)
      _, err = client:get("/_echo/q", { ids = { 1, 2, x = 3 } })
      assert.are.equal("invalid_query", err.code)
      assert.matches("^query value for 'ids' is a nested table", err.message)
    end)

    it("still sends a list as a repeated key", function()
      local data = assert(client:get("/_echo/q", { ids = { 1, "b", true } }))
      assert.are.equal("/api/_echo/q?ids=1&ids=b&ids=true", data.uri)
    end)

    it("refuses nested and empty tables in a form body the same way", function()
      local _, err = client:request { method = "POST", path = "/_echo/f", form = { a = { b = 1 } } }
      assert.are.equal("usage", err.kind)
      assert.are.equal("invalid_body", err.code)
      assert.matches("^form value for 'a' is a nested table", err.message)
      _, err = client:request { method = "POST", path = "/_echo/f", form = { a = {} } }
      assert.are.equal("invalid_body", err.code)
      assert.are.equal("form value for 'a' is an empty table; leave the key out to send nothing", err.message)
      assert.are.equal(0, sent("/_echo/f"))
    end)
  end)

  describe("paths", function()
    it("sends a lone % as %25 and keeps a valid %XX", function()
      assert.are.equal("/api/_echo/files/100%25", assert(client:get("/_echo/files/100%")).uri)
      assert.are.equal("/api/_echo/a%25zz/%41%2f", assert(client:get("/_echo/a%zz/%41%2f")).uri)
      assert.are.equal("/api/_echo/x%25", assert(client:get("/_echo/x%")).uri)
      assert.are.equal("/api/_echo/x%254", assert(client:get("/_echo/x%4")).uri)
      assert.are.equal("https://api.test/api/100%25?a=%25", flextell.new { base_url = "https://api.test/api", token = "t" }
        :prepare { path = "/100%", query = { a = "%" } }.url)
    end)
  end)

  describe("headers", function()
    local function received(opts, call_headers)
      local o = { base_url = sb.url, token = sb.token }
      for k, v in pairs(opts) do o[k] = v end
      local c = flextell.new(o)
      return assert(c:post("/_echo/h", { a = 1 }, { headers = call_headers })).headers
    end

    it("drops a default header for real when it is set to false", function()
      local h = received({}, { Accept = false, ["Content-Type"] = false, ["User-Agent"] = false,
        ["Accept-Encoding"] = false })
      assert.is_nil(h.accept)
      assert.is_nil(h["content-type"])
      assert.is_nil(h["user-agent"])
      assert.is_nil(h["accept-encoding"])
      assert.are.equal("Bearer " .. sb.token, h.authorization)
    end)

    it("drops a default header from the client's own headers option too", function()
      local h = received({ headers = { Accept = false } }, nil)
      assert.is_nil(h.accept)
      assert.are.equal("application/json", h["content-type"])
    end)

    it("sends a header with an empty value instead of dropping it", function()
      local h = received({ headers = { ["X-Empty-Client"] = "" } }, { ["X-Empty"] = "" })
      assert.are.equal("", h["x-empty"])
      assert.are.equal("", h["x-empty-client"])
    end)

    it("refuses headers that frame the message, in options and per call", function()
      for _, name in ipairs { "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "TE", "Upgrade" } do
        local _, err = client:get("/_echo/h", nil, { headers = { [name] = "x" } })
        assert.are.equal("invalid_header", err.code)
        assert.are.equal("header '" .. name .. "' is set by the library from the request itself", err.message)
        _, err = client:get("/_echo/h", nil, { headers = { [name] = false } })
        assert.are.equal("invalid_header", err.code)
        assert.has_error(function() flextell.new { headers = { [name] = "x" } } end,
          "flextell.new: option 'headers': header '" .. name .. "' is set by the library from the request itself")
      end
      assert.are.equal(0, sent("/_echo/h"))
    end)

    it("refuses one header name given twice in two spellings, in options, with and per call", function()
      local twice = { ["X-A"] = "1", ["x-a"] = "2" }
      local _, err = client:get("/_echo/h", nil, { headers = twice })
      assert.are.equal("usage", err.kind)
      assert.are.equal("invalid_header", err.code)
      assert.are.equal("header 'X-A' is given twice (as 'X-A' and 'x-a'); names are case-insensitive", err.message)
      assert.has_error(function() flextell.new { headers = twice } end,
        "flextell.new: option 'headers': header 'X-A' is given twice (as 'X-A' and 'x-a'); names are case-insensitive")
      assert.has_error(function() client:with { headers = { Accept = false, accept = "x" } } end,
        "client:with: option 'headers': header 'Accept' is given twice (as 'Accept' and 'accept'); " ..
        "names are case-insensitive")
      assert.are.equal(0, sent("/_echo/h"))
    end)

    it("refuses CR or LF in user_agent, in new and in with", function()
      assert.has_error(function() flextell.new { user_agent = "app/1\r\nX-Evil: 1" } end,
        "flextell.new: option 'user_agent' must not contain control characters (CR, LF...)")
      assert.has_error(function() client:with { user_agent = "app/1\nX-Evil: 1" } end,
        "client:with: option 'user_agent' must not contain control characters (CR, LF...)")
      assert.has_error(function() client:with { headers = { ["X-A"] = "1\r\nX-Evil: 1" } } end,
        "client:with: option 'headers': header 'X-A' has a control character (CR, LF, NUL...) in its value")
    end)

    it("refuses CR or LF in a per-call header and in a multipart part's content type", function()
      local _, err = client:get("/_echo/h", nil, { headers = { ["X-A"] = "1\nX-Evil: 1" } })
      assert.are.equal("usage", err.kind)
      assert.are.equal("invalid_header", err.code)
      _, err = client:request { method = "POST", path = "/_echo/m",
        multipart = { file = { data = "x", filename = "a.txt", content_type = "text/plain\r\nX-Evil: 1" } } }
      assert.are.equal("invalid_header", err.code)
      assert.are.equal("multipart field 'file': content_type has a control character (CR, LF, NUL...)", err.message)
      assert.are.equal(0, sent("/_echo/h") + sent("/_echo/m"))
    end)

    it("refuses tokens that would break the Authorization line, from options and token responses", function()
      assert.has_error(function() flextell.new { token = "abc\r\nX-Evil: 1" } end,
        "flextell.new: option 'token' must be non-empty printable ASCII without spaces")
      sb:arm { path = "/oauth/token", fault = "status", status = 200,
        body = '{"access_token":"a\\r\\nX-Evil: 1","token_type":"Bearer","expires_in":60}' }
      local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        refresh_token = "r" }
      local _, err = c:refresh()
      assert.are.equal("protocol", err.kind)
      assert.are.equal("invalid_token_response", err.code)
      assert.is_nil(c:tokens().access_token)
    end)
  end)
  -- C reads a string up to its first NUL byte: "http://127.0.0.1\0evil" would quietly be another
  -- URL, "/etc/hostname\0.secret" another file. Every string that reaches C as text is refused.
  describe("NUL bytes and credentials", function()
    it("refuses a NUL byte in every string option of new and with", function()
      for _, k in ipairs { "base_url", "prefix", "user_agent", "ca_file", "ca_path", "proxy", "redirect_uri",
                           "token_url", "authorize_url" } do
        local o = { base_url = sb.url, token = sb.token }
        o[k] = (o[k] or "http://127.0.0.1/x") .. "\0evil"
        assert.has_error(function() flextell.new(o) end, "flextell.new: option '" .. k .. "' must not contain a NUL byte")
      end
      assert.has_error(function() client:with { prefix = "v1\0x" } end,
        "client:with: option 'prefix' must not contain a NUL byte")
    end)

    it("refuses credentials in base_url, token_url and authorize_url", function()
      for _, k in ipairs { "base_url", "token_url", "authorize_url" } do
        local o = { base_url = sb.url, token = sb.token }
        o[k] = "https://user:pw@api.example/api"
        assert.has_error(function() flextell.new(o) end,
          "flextell.new: option '" .. k .. "' must not carry credentials (user:password@)")
      end
    end)

    it("refuses NUL bytes, an empty state and unknown options in the OAuth calls, sending nothing", function()
      local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        redirect_uri = sb.redirect_uri }
      assert.has_error(function() c:authorize_url { state = "" } end,
        "client:authorize_url: 'state' must be a non-empty string without NUL bytes")
      assert.has_error(function() c:authorize_url { redirect_uri = "http://127.0.0.1/cb\0x" } end,
        "client:authorize_url: 'redirect_uri' must be a non-empty string without NUL bytes")
      assert.has_error(function() c:authorize_url { scope = { "read", "wr\0ite" } } end,
        "client:authorize_url: scopes must be strings without NUL bytes")
      local ok, err = pcall(c.exchange_code, c, "abc", { stat = "typo" })
      assert.are.same({ false, "client:exchange_code: unknown option 'stat'" }, { ok, err })
      ok, err = pcall(c.exchange_code, c, "abc", { state = "a\0b" })
      assert.are.same({ false, "client:exchange_code: 'state' must be a non-empty string without NUL bytes" }, { ok, err })
      ok, err = pcall(c.exchange_code, c, "ab\0c")
      assert.are.same({ false, "client:exchange_code: the code must be a non-empty string without NUL bytes" },
        { ok, err })
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
    end)

    it("refuses a NUL byte in a multipart name, path or filename, and a path that is no regular file", function()
      local function refused(multipart)
        local data, err = client:post("/_echo/m", nil, { multipart = multipart })
        assert.is_nil(data)
        return err.kind .. " " .. err.code .. ": " .. err.message
      end
      assert.are.equal("usage invalid_body: multipart field names must be strings without NUL bytes",
        refused { ["a\0b"] = "x" })
      assert.are.equal("usage invalid_body: multipart field 'f': path, filename and content_type must not contain " ..
        "a NUL byte", refused { f = { path = "/etc/hostname\0.secret" } })
      assert.are.equal("usage invalid_body: multipart field 'f': path, filename and content_type must not contain " ..
        "a NUL byte", refused { f = { data = "x", filename = "a\0b.txt" } })
      assert.are.equal("usage file_unreadable: multipart field 'f': not a regular file: '/tmp'",
        refused { f = { path = "/tmp" } })
      assert.are.equal("usage file_unreadable: multipart field 'f': the file says it is empty but is not (read it " ..
        "and pass it as data): '/proc/self/status'", refused { f = { path = "/proc/self/status" } })
      assert.are.equal(0, sent("/_echo/m"))
    end)

    it("raises a programmer error at the caller's line, naming the method", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() local r = client:get("/x", 5); return r end)
      assert.are.same({ false, ("spec/input_spec.lua:%d: bad argument #2 to 'get' (table expected, got number)"):format(line) },
        { ok, err })
    end)
  end)
end)
