-- Proxies, against the sandbox's recording proxy port: an explicit `proxy` is used; proxies from
-- the environment (http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY) are honoured as curl honours
-- them, except for a loopback base URL, and `proxy = false` turns them all off. The environment
-- cases run in a child process (Lua cannot set its own environment), with the same interpreter
-- and build as this run.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

describe("proxies", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset() end)

  local function port()
    return sb.url:match(":(%d+)/api$")
  end

  -- 0.0.0.0 reaches the sandbox on this machine without being a loopback name, so the
  -- environment's proxy applies to it (no DNS involved either way).
  local function elsewhere()
    return "http://0.0.0.0:" .. port() .. "/api"
  end

  local function proxied()
    local n = 0
    for _, r in ipairs(sb:requests {}.requests) do
      if r.proxied then n = n + 1 end
    end
    return n
  end

  local function literal(t)
    local parts = {}
    for k, v in pairs(t) do
      parts[#parts + 1] = string.format("[%q] = %s", k, type(v) == "string" and string.format("%q", v) or tostring(v))
    end
    return "{ " .. table.concat(parts, ", ") .. " }"
  end

  -- Runs one GET of /v1/customers/1 in a child with env set; returns what it got.
  local function child(env, opts)
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write('local flextell = require "flextell"\n',
      "local c = flextell.new(", literal(opts), ")\n",
      'local data, err = c:get("/v1/customers/1")\n',
      "io.write(flextell.json.encode(data and { id = data.id } or ",
      "{ kind = err.kind, code = err.code, maybe_sent = err.maybe_sent, attempts = err.attempts }))\n")
    f:close()
    local exports = {}
    for k, v in pairs(env) do exports[#exports + 1] = k .. "='" .. v .. "'" end
    local cmd = "unset LD_PRELOAD http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY; " ..
      "env " .. table.concat(exports, " ") .. " LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath ..
      "' " .. arg[-1] .. " " .. script .. " 2>&1"
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    os.remove(script)
    return assert(flextell.json.decode(out), out)
  end

  describe("given as an option", function()
    it("carries calls to any base URL, loopback included", function()
      local c = flextell.new { base_url = sb.url, token = sb.token, proxy = sb.proxy_url }
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id)
      local r = sb:requests { proxied = true }.requests[1]
      assert.are.equal("127.0.0.1:" .. port(), r.proxy_target)
      assert.is_true(r.authorization)
      c = flextell.new { base_url = "http://api.flextell.test/api", allow_http = true, token = sb.token,
        proxy = sb.proxy_url }
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id)
      assert.are.equal("api.flextell.test:80", sb:requests { proxied = true }.requests[2].proxy_target)
    end)

    it("names the proxy when it refuses the tunnel to an https API, and does not retry", function()
      local c = flextell.new { base_url = "https://api.flextell.test/api", token = sb.token, proxy = sb.proxy_url }
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("network", err.kind)
      assert.are.equal("proxy_refused", err.code)
      assert.are.equal("the proxy refused to open a tunnel to the API (CONNECT answered 403)", err.message)
      assert.is_false(err.maybe_sent)
      assert.are.equal(1, err.attempts)
      local log = sb:requests { proxied = true }.requests
      assert.are.equal(1, #log)
      assert.are.equal("CONNECT", log[1].method)
      assert.is_false(log[1].authorization)
    end)
  end)

  describe("from the environment", function()
    it("honours http_proxy for a host that is not loopback", function()
      local got = child({ http_proxy = sb.proxy_url }, { base_url = elsewhere(), allow_http = true, token = sb.token })
      assert.are.same({ id = 1 }, got)
      assert.are.equal(1, proxied())
      assert.are.equal("0.0.0.0:" .. port(), sb:requests { proxied = true }.requests[1].proxy_target)
    end)

    it("honours ALL_PROXY", function()
      assert.are.same({ id = 1 }, child({ ALL_PROXY = sb.proxy_url }, { base_url = elsewhere(), allow_http = true,
        token = sb.token }))
      assert.are.equal(1, proxied())
    end)

    it("respects NO_PROXY", function()
      local got = child({ http_proxy = sb.proxy_url, NO_PROXY = "0.0.0.0" },
        { base_url = elsewhere(), allow_http = true, token = sb.token })
      assert.are.same({ id = 1 }, got)
      assert.are.equal(0, proxied())
      assert.are.equal(1, sb:requests { path = "/api/v1/customers/1" }.count)
    end)

    it("never sends a loopback base URL through it", function()
      local got = child({ http_proxy = sb.proxy_url, HTTP_PROXY = sb.proxy_url, ALL_PROXY = sb.proxy_url },
        { base_url = sb.url, token = sb.token })
      assert.are.same({ id = 1 }, got)
      assert.are.equal(0, proxied())
    end)

    it("is turned off with proxy = false", function()
      local got = child({ http_proxy = sb.proxy_url, ALL_PROXY = sb.proxy_url },
        { base_url = elsewhere(), allow_http = true, token = sb.token, proxy = false })
      assert.are.same({ id = 1 }, got)
      assert.are.equal(0, proxied())
    end)

    it("takes HTTPS_PROXY for an https API, and reports its refusal", function()
      local got = child({ HTTPS_PROXY = sb.proxy_url }, { base_url = "https://api.flextell.test/api", token = sb.token })
      assert.are.same({ kind = "network", code = "proxy_refused", maybe_sent = false, attempts = 1 }, got)
      assert.are.equal(1, proxied())
    end)
  end)
end)
