-- flextell.new, :with, :close and the other parts of a client that need no server.
local flextell = require "flextell"

describe("flextell", function()
  it("carries its version, null and array", function()
    assert.are.equal("0.1.0", flextell._VERSION)
    assert.are.equal("userdata", type(flextell.null))
    local t = flextell.array()
    assert.are.equal("table", type(t))
    assert.are.equal("[]", flextell.json.encode(t))
  end)
end)

describe("flextell.new", function()
  it("makes a client for the default base URL", function()
    local c = flextell.new()
    assert.matches("^flextell.Client https://dev.flextell.ai/api: 0x%x+$", tostring(c))
  end)

  it("raises on an unknown option", function()
    assert.has_error(function() flextell.new { bogus = 1 } end, "flextell.new: unknown option 'bogus'")
  end)

  it("raises on an option of the wrong type", function()
    assert.has_error(function() flextell.new { timeout = "5" } end,
      "flextell.new: option 'timeout' must be a number, got string")
    assert.has_error(function() flextell.new { tenant = 1.5 } end,
      "flextell.new: option 'tenant' must be an integer or false, got number")
    assert.has_error(function() flextell.new { headers = "x" } end,
      "flextell.new: option 'headers' must be a table, got string")
    assert.has_error(function() flextell.new { on_token = {} } end,
      "flextell.new: option 'on_token' must be a function, got table")
  end)

  it("raises on out-of-range values", function()
    assert.has_error(function() flextell.new { timeout = 0 } end, "flextell.new: option 'timeout' must be > 0")
    assert.has_error(function() flextell.new { max_retries = 11 } end,
      "flextell.new: option 'max_retries' must be 0..10")
    assert.has_error(function() flextell.new { max_response_bytes = 0 } end,
      "flextell.new: option 'max_response_bytes' must be > 0")
  end)

  it("refuses http:// to a host that is not loopback", function()
    assert.has_error(function() flextell.new { base_url = "http://api.example.com/api" } end,
      "flextell.new: option 'base_url' uses http:// to a host that is not loopback" ..
      " (set allow_http = true to allow it)")
  end)

  it("allows http:// to loopback hosts and with allow_http", function()
    for _, url in ipairs { "http://127.0.0.1:8080/api", "http://127.3.4.5/api", "http://localhost:1/api",
                            "http://[::1]:9/api" } do
      assert.matches("^flextell.Client " .. url:gsub("[%[%]%.%-]", "%%%0"), tostring(flextell.new { base_url = url }))
    end
    local c = flextell.new { base_url = "http://api.example.com/api", allow_http = true }
    assert.matches("^flextell.Client http://api.example.com/api", tostring(c))
  end)

  it("refuses base URLs that are not http(s) or carry a query", function()
    assert.has_error(function() flextell.new { base_url = "ftp://h/x" } end,
      "flextell.new: option 'base_url' must be an https:// URL")
    assert.has_error(function() flextell.new { base_url = "not a url" } end,
      "flextell.new: option 'base_url' is not a valid absolute URL")
    assert.has_error(function() flextell.new { base_url = "https://h/api?x=1" } end,
      "flextell.new: option 'base_url' must not have a query or fragment")
  end)

  it("refuses tokens and secrets with spaces or control characters, without echoing them", function()
    local ok, err = pcall(flextell.new, { token = "abc\r\nX-Evil: 1" })
    assert.is_false(ok)
    assert.are.equal("flextell.new: option 'token' must be non-empty printable ASCII without spaces", err)
    ok, err = pcall(flextell.new, { client_secret = "s3cr et" })
    assert.is_false(ok)
    assert.are.equal("flextell.new: option 'client_secret' must be non-empty printable ASCII without spaces", err)
  end)

  it("refuses invalid default headers", function()
    assert.has_error(function() flextell.new { headers = { ["X-A"] = "a\r\nb" } } end,
      "flextell.new: option 'headers': header 'X-A' has a control character (CR, LF, NUL...) in its value")
    assert.has_error(function() flextell.new { headers = { ["Bad Name"] = "v" } } end,
      "flextell.new: option 'headers': a header has a name that is not an RFC 9110 token")
  end)

  it("checks ca_file and ca_path when the client is made, naming the problem", function()
    assert.has_error(function() flextell.new { ca_file = "/nonexistent/ca.pem" } end,
      "flextell.new: option 'ca_file': cannot read '/nonexistent/ca.pem': No such file or directory")
    assert.has_error(function() flextell.new { ca_file = "spec" } end,
      "flextell.new: option 'ca_file': cannot read 'spec': Is a directory")
    local empty = os.tmpname()
    assert.has_error(function() flextell.new { ca_file = empty } end,
      "flextell.new: option 'ca_file': '" .. empty .. "' is empty")
    os.remove(empty)
    assert.has_error(function() flextell.new { ca_path = "/nonexistent/certs" } end,
      "flextell.new: option 'ca_path': cannot open directory '/nonexistent/certs': No such file or directory")
    assert.is_truthy(flextell.new { ca_file = "spec/client_spec.lua", ca_path = "spec" })
  end)

  it("takes a proxy URL or false, and refuses anything else", function()
    assert.is_truthy(flextell.new { proxy = "http://127.0.0.1:3128" })
    assert.is_truthy(flextell.new { proxy = "socks5h://user:pw@127.0.0.1:1080" })
    assert.is_truthy(flextell.new { proxy = false })
    assert.has_error(function() flextell.new { proxy = "127.0.0.1:3128" } end,
      "flextell.new: option 'proxy' must be a proxy URL (http://, https://, socks4://, socks4a://, socks5:// or" ..
      " socks5h://) or false")
    assert.has_error(function() flextell.new { proxy = true } end,
      "flextell.new: option 'proxy' must be a URL string or false, got boolean")
  end)

  it("takes write_max_idle from 0 to 3600 seconds", function()
    assert.is_truthy(flextell.new { write_max_idle = 0 })
    assert.has_error(function() flextell.new { write_max_idle = -1 } end,
      "flextell.new: option 'write_max_idle' must be 0..3600")
    assert.has_error(function() flextell.new { write_max_idle = 1.5 } end,
      "flextell.new: option 'write_max_idle' must be an integer, got number")
  end)

  it("refuses both token and access_token", function()
    assert.has_error(function() flextell.new { token = "a", access_token = "b" } end,
      "flextell.new: give either 'token' or 'access_token', not both")
  end)
end)

describe("flextell.Client", function()
  describe(":close", function()
    it("makes every later use raise, and is idempotent", function()
      local c = flextell.new()
      c:close()
      c:close()
      assert.has_error(function() c:get("/v1/customers") end, "attempt to use a closed client")
      assert.matches("^flextell.Client %(closed%): 0x%x+$", tostring(c))
    end)

    it("is the __close metamethod", function()
      local c = flextell.new()
      getmetatable(c).__close(c)
      assert.has_error(function() c:prepare { path = "/x" } end, "attempt to use a closed client")
    end)

    -- to-be-closed variables are Lua 5.4 syntax; LuaJIT has no such statement to test
    if _VERSION == "Lua 5.4" then it("runs for a to-be-closed variable", function()
      local chunk = assert(load [[
        local flextell = ...
        local kept
        do
          local c <close> = flextell.new()
          kept = c
        end
        return kept
      ]])
      local c = chunk(flextell)
      assert.has_error(function() c:prepare { path = "/x" } end, "attempt to use a closed client")
    end) end
  end)

  describe(":with", function()
    it("derives a client with its own tenant that shares the token", function()
      local c = flextell.new { token = "tok", base_url = "https://api.test/api" }
      local t7 = c:with { tenant = 7 }
      assert.matches("^flextell.Client https://api.test/api tenant 7: 0x%x+$", tostring(t7))
      local p = t7:prepare { path = "/v1/sales/1", reveal_token = true }
      assert.are.same({ "Accept: application/json", p.headers[2], "Authorization: Bearer tok", "X-Tenant: 7" },
        p.headers)
      local none = t7:with { tenant = false }
      assert.are.equal(3, #none:prepare { path = "/x" }.headers)
    end)

    it("keeps working after the parent is closed", function()
      local c = flextell.new { token = "tok" }
      local d = c:with { tenant = 1 }
      c:close()
      assert.are.equal("https://dev.flextell.ai/api/x", d:prepare { path = "/x" }.url)
    end)

    it("raises on options a derived client cannot change", function()
      local c = flextell.new()
      assert.has_error(function() c:with { base_url = "https://x/api" } end, "client:with: unknown option 'base_url'")
      assert.has_error(function() c:with { token = "x" } end, "client:with: unknown option 'token'")
    end)
  end)
end)
