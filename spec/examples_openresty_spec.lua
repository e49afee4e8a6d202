-- examples/openresty runs as its README says: nginx with the example's configuration, the
-- Authorization Code flow through its /login and /callback once, then calls from any worker.
local sandbox = require "spec.helpers.sandbox"
local nginx_app = require "spec.helpers.nginx_app"
local launcher = require "flextell.sandbox"
local json = require("flextell").json

describe("#nginx examples/openresty", function()
  local sb, app
  local port = launcher.free_port()
  setup(function()
    sb = sandbox.start { tls = false, clients = { { client_id = "example-app", client_secret = "example-secret",
      redirect_uri = "http://127.0.0.1:" .. port .. "/callback", name = "Example" } } }
    local f = assert(io.open("examples/openresty/nginx.conf.in"))
    local template = f:read("a")
    f:close()
    app = nginx_app.start { port = port, conf = function(p, root)
      return (template:gsub("@([%u_]+)@", { ROOT = root, PORT = tostring(p), BASE_URL = sb.url,
        MODULES = select(2, assert(launcher.nginx())),
        CLIENT_ID = "example-app", CLIENT_SECRET = "example-secret" }))
    end }
  end)
  teardown(function()
    if app then app:stop() end
    sb:stop()
  end)

  local function curl(args)
    local p = assert(io.popen("curl -s -m 20 " .. args))
    local out = p:read("a")
    p:close()
    return out
  end

  it("authorizes once through /login, then answers from the API", function()
    local status, body = app:get("/customers/2")
    assert.are.equal(503, status, app:log():sub(-1500))
    assert.are.equal("reauth_required", json.decode(body).error)
    local authorize = curl(("-o /dev/null -w '%%{redirect_url}' '%s/login'"):format(app.url))
    assert.matches("^" .. sb.url:gsub("/api$", ""):gsub("%p", "%%%0") .. "/oauth/authorize%?", authorize)
    local redirect = assert(sb:approve(authorize))
    assert.are.same({ authorized = true }, json.decode(curl("'" .. redirect .. "'")))
    status, body = app:get("/customers/2")
    assert.are.equal(200, status)
    assert.are.equal(2, json.decode(body).id)
    status, body = app:get("/customers")
    assert.are.equal(200, status)
    assert.are.equal(3, #json.decode(body))
    -- the state was used once: the same redirect again is refused before anything is sent
    assert.are.same({ error = "state_mismatch", message = "unknown or used state" },
      json.decode(curl("'" .. redirect .. "'")))
  end)
end)
