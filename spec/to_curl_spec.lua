-- What client:to_curl prints replays the call: run with the curl command line against the TLS
-- sandbox's echo endpoint, the server receives the same method, URI, headers and body as it
-- did from the client itself.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("client:to_curl", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset() end)

  local function curl(line)
    local p = assert(io.popen(line .. " --silent --show-error 2>&1"))
    local out = p:read("a")
    p:close()
    local doc, why = flextell.json.decode(out)
    assert(doc, "curl printed: " .. out .. (why or ""))
    return doc.data
  end

  local function replays(client, req)
    local direct = assert(client:request(req))
    local copy = { reveal_token = true }
    for k, v in pairs(req) do copy[k] = v end
    local replayed = curl(client:to_curl(copy))
    assert.are.equal(direct.method, replayed.method)
    assert.are.equal(direct.uri, replayed.uri)
    assert.are.same(direct.headers, replayed.headers)
    assert.are.equal(direct.body, replayed.body)
    return direct
  end

  it("replays a JSON POST over TLS with the client's trust store", function()
    local client = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token, tenant = 7,
      user_agent = "replay/1" }
    local seen = replays(client, { method = "POST", path = "/_echo/a b", query = { q = "x&y", n = 2 },
      body = { name = "Ada's", tags = flextell.array() } })
    assert.are.equal('{"name":"Ada\'s","tags":[]}', seen.body)
    assert.are.equal("application/json", seen.headers["content-type"])
  end)

  it("replays dropped and empty headers the way libcurl sent them", function()
    local client = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token }
    local seen = replays(client, { method = "PUT", path = "/_echo/h", body = "raw text",
      headers = { Accept = false, ["Content-Type"] = false, ["X-Empty"] = "" } })
    assert.is_nil(seen.headers.accept)
    assert.is_nil(seen.headers["content-type"])
    assert.are.equal("", seen.headers["x-empty"])
  end)

  it("replays a bodyless DELETE and a GET", function()
    local client = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token }
    replays(client, { method = "DELETE", path = "/_echo/d" })
    replays(client, { method = "GET", path = "/_echo/g", query = { ids = { 1, 2 } } })
  end)

  it("replays dot segments as written (--path-as-is), and only then adds it", function()
    local client = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token }
    local seen = replays(client, { method = "GET", path = "/_echo/../_echo/x/./y" })
    assert.are.equal("/api/_echo/../_echo/x/./y", seen.uri)
    assert.matches(" --path-as-is ", client:to_curl { path = "/a/.." }, 1, true)
    assert.is_nil(client:to_curl({ path = "/a/..b/c.d" }):find("path-as-is", 1, true))
  end)

  it("replays writes without a body, Content-Length: 0 included", function()
    local client = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token }
    for _, method in ipairs { "POST", "PUT", "PATCH" } do
      local seen = replays(client, { method = method, path = "/_echo/empty" })
      assert.are.equal("0", seen.headers["content-length"])
      assert.are.equal("", seen.body)
    end
  end)

  it("carries the proxy, its credentials redacted unless asked, or turns proxies off", function()
    local c = flextell.new { base_url = sb.https_url, ca_file = sb.ca_file, token = sb.token,
      proxy = "http://user:pw@127.0.0.1:3128" }
    assert.matches(" %-%-proxy 'http://<redacted>@127%.0%.0%.1:3128' ", c:to_curl { path = "/x" })
    assert.matches(" %-%-proxy 'http://user:pw@127%.0%.0%.1:3128' ", c:to_curl { path = "/x", reveal_token = true })
    assert.matches(" %-%-noproxy '%*' ", flextell.new { token = "t", proxy = false }:to_curl { path = "/x" })
    assert.matches(" %-%-noproxy '%*' ", flextell.new { base_url = sb.url, token = "t" }:to_curl { path = "/x" })
    assert.is_nil(flextell.new { token = "t" }:to_curl { path = "/x" }:find("proxy", 1, true))
  end)
end)
