-- TLS under the nginx driver: trust comes from nginx's lua_ssl_trusted_certificate (the Lua
-- module has no per-socket trust store), with lua_ssl_verify_depth deep enough for the chain.
-- A front nginx serves the sandbox over TLS with a chain of two intermediates: root -> 1 -> 2 -> leaf.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local nginx_app = require "spec.helpers.nginx_app"
local launcher = require "flextell.sandbox"
local json = flextell.json

local DO = [[
    location = /do {
      content_by_lua_block {
        ngx.req.read_body()
        local flextell = require "flextell"
        local t = flextell.json.decode(ngx.req.get_body_data())
        local data, err = flextell.new(t.opts):get("/v1/customers/1")
        ngx.say(flextell.json.encode(data and { id = data.id } or { kind = err.kind, code = err.code,
          message = err.message }))
      }
    }]]

describe("#nginx TLS under the nginx driver", function()
  local sb, dir, front, tls_port, apps = nil, nil, nil, nil, {}
  setup(function()
    sb = sandbox.start { tls = false }
    local p = assert(io.popen("mktemp -d"))
    dir = p:read("l")
    p:close()
    assert(os.execute("sh spec/helpers/make_chain.sh '" .. dir .. "'"))
    tls_port = launcher.free_port()
    front = nginx_app.start { http = ([[
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s/chain.pem;
    ssl_certificate_key %s/server.key;
    location /api/ { proxy_pass %s/; }
  }]]):format(tls_port, dir, dir, sb.url) }
  end)
  teardown(function()
    for _, a in ipairs(apps) do a:stop() end
    if front then front:stop() end
    os.execute("rm -rf '" .. dir .. "'")
    sb:stop()
  end)

  local function app(http)
    local a = nginx_app.start { http = http, server = DO }
    apps[#apps + 1] = a
    return a
  end

  local function call(a, opts)
    local o = { base_url = ("https://127.0.0.1:%d/api"):format(tls_port), token = sb.token }
    for k, v in pairs(opts or {}) do o[k] = v end
    local body = a.prefix .. "/req.json"
    local f = assert(io.open(body, "w"))
    f:write(json.encode { opts = o })
    f:close()
    local p = assert(io.popen(("curl -s --data-binary @%s '%s/do'"):format(body, a.url)))
    local out = p:read("a")
    p:close()
    return json.decode(out) or { raw = out, log = a:log():sub(-1500) }
  end

  it("verifies a chain of two intermediates against lua_ssl_trusted_certificate with a deep enough depth", function()
    local a = app(("  lua_ssl_trusted_certificate %s/root.pem;\n  lua_ssl_verify_depth 3;"):format(dir))
    assert.are.same({ id = 1 }, call(a))
  end)

  -- nginx's Lua module before 0.10.32 loses the reason when the handshake completes at once (it
  -- says success and closes the socket); which path a handshake takes is timing, so both
  -- messages are exact answers, and each failing check runs several times to meet both paths.
  local LOST = "TLS: the server's certificate failed verification (the reason is in nginx's error log)"
  local function verify_fails(a, reason)
    for _ = 1, 6 do
      local r = call(a)
      assert.are.same({ "tls", "tls_verify_failed" }, { r.kind, r.code })
      assert.is_true(r.message == reason or r.message == LOST, r.message)
    end
    -- one handshake per call: a failed check is never tried again
    local _, checks = a:log():gsub("lua ssl certificate verify error", "")
    assert.are.equal(6, checks)
  end

  it("fails verification with tls_verify_failed when the depth is nginx's default (1)", function()
    verify_fails(app(("  lua_ssl_trusted_certificate %s/root.pem;"):format(dir)),
      "TLS: 20: unable to get local issuer certificate")
  end)

  it("fails verification with tls_verify_failed without a trusted certificate", function()
    verify_fails(app(""), "TLS: 20: unable to get local issuer certificate")
  end)

  it("refuses a client's ca_file, naming the directive", function()
    local a = app(("  lua_ssl_trusted_certificate %s/root.pem;\n  lua_ssl_verify_depth 3;"):format(dir))
    local r = call(a, { ca_file = dir .. "/root.pem" })
    assert.are.same({ kind = "usage", code = "unsupported",
      message = "ca_file and ca_path do not work under nginx: trust comes from nginx's lua_ssl_trusted_certificate " ..
        "directive (and lua_ssl_verify_depth)" }, r)
  end)
end)
