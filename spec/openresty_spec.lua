-- The nginx driver: calls made inside nginx go over cosockets and never block the worker. A real
-- nginx with the Lua module runs a small app that calls the sandbox through the library.
local sandbox = require "spec.helpers.sandbox"
local nginx_app = require "spec.helpers.nginx_app"
local json = require("flextell").json

describe("#nginx the nginx driver", function()
  local sb, app
  setup(function()
    sb = sandbox.start { tls = false }
    app = nginx_app.start {
      workers = 2,
      http = [[
  lua_shared_dict results 1m;
  init_worker_by_lua_block {
    local flextell = require "flextell"
    local c = flextell.new { base_url = "http://127.0.0.1:1/api", token = "t" }
    local data, err = c:get("/v1/customers/1")
    ngx.shared.results:set("init_worker", require("flextell").json.encode { kind = err.kind, code = err.code,
      message = err.message })
  }]],
      server = [[
    location = /call {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, token = ngx.var.arg_token }
        local data, err = c:get("/v1/customers/" .. ngx.var.arg_id)
        ngx.say(flextell.json.encode(data and { id = data.id } or { kind = err.kind, code = err.code,
          message = err.message }))
      }
    }
    location = /results {
      content_by_lua_block { ngx.say(ngx.shared.results:get(ngx.var.arg_key) or "none") }
    }]],
    }
  end)
  teardown(function()
    if app then app:stop() end
    sb:stop()
  end)

  local function call_path(id)
    return ("/call?base=%s&token=%s&id=%d"):format(sb.url, sb.token, id)
  end

  it("runs 20 calls of 300 ms at once in one worker's event loop, and /ping stays quick", function()
    assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = 0.3, count = 20 })
    local dir = app.prefix
    local cmd = {}
    for i = 1, 20 do
      cmd[#cmd + 1] = ("curl -s -o %s/out%d -w '%%{time_total}' '%s%s' > %s/t%d &"):format(dir, i, app.url,
        call_path(i), dir, i)
    end
    cmd[#cmd + 1] = ("sleep 0.1; curl -s -o /dev/null -w '%%{time_total}' '%s/ping' > %s/ping; wait"):format(app.url, dir)
    local t0 = require("flextell.core").now()
    os.execute(table.concat(cmd, " "))
    local took = require("flextell.core").now() - t0
    for i = 1, 20 do
      local f = assert(io.open(dir .. "/out" .. i))
      assert.are.same({ id = i }, json.decode(f:read("a")), app:log())
      f:close()
    end
    local f = assert(io.open(dir .. "/ping"))
    local ping = tonumber(f:read("a"))
    f:close()
    assert.is_true(took < 1.5, "20 calls of 300 ms took " .. took .. " s")
    assert.is_true(ping < 0.05, "/ping took " .. ping .. " s")
  end)

  it("answers a call in a phase without cosockets with a usage error naming the phase", function()
    local _, body = app:get("/results?key=init_worker")
    assert.are.same({ kind = "usage", code = "phase",
      message = "flextell: no network calls in nginx's init_worker phase (no cosockets there): call from " ..
        "rewrite, access or content handlers, or from a timer (ngx.timer.at)" }, json.decode(body))
  end)
end)

describe("#nginx the nginx driver with 4 workers", function()
  local sb, app
  setup(function()
    sb = sandbox.start { tls = false }
    app = nginx_app.start {
      workers = 4,
      http = [[
  lua_shared_dict tokens 1m;]],
      server = [[
    location = /seed {
      content_by_lua_block {
        local flextell = require "flextell"
        local store = flextell.shared_dict_store("tokens")
        local t = flextell.json.decode(ngx.unescape_uri(ngx.var.arg_tokens))
        local _, v = store:load()
        ngx.say(tostring(store:save(t, v)))
      }
    }
    location = /paced {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, token = ngx.var.arg_token, pace = true,
          token_store = flextell.shared_dict_store("tokens", "pace") }
        local data, err = c:get("/v1/customers/" .. ngx.var.arg_id)
        ngx.say(data and data.id or tostring(err))
      }
    }
    location = /store_call {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, client_id = "sandbox-client",
          client_secret = "sandbox-secret", token_store = flextell.shared_dict_store("tokens") }
        local data, err = c:get("/v1/customers/1")
        ngx.say(flextell.json.encode(data and { id = data.id, pid = ngx.worker.pid() } or
          { kind = err.kind, code = err.code, message = err.message }))
      }
    }]],
    }
  end)
  teardown(function()
    if app then app:stop() end
    sb:stop()
  end)

  it("refreshes once for all workers when the token expired, through a shared dict store", function()
    local flextell = require "flextell"
    local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state = c:authorize_url {}
    local tokens = assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
    tokens.expires_at = os.time() - 10
    local status, body = app:get("/seed?tokens=" .. require("flextell.core").escape(json.encode(tokens)))
    assert.are.same({ 200, "true\n" }, { status, body })
    assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1 })
    local dir = app.prefix
    local cmd = {}
    for i = 1, 16 do
      cmd[#cmd + 1] = ("curl -s -o %s/s%d '%s/store_call?base=%s' &"):format(dir, i, app.url, sb.url)
    end
    cmd[#cmd + 1] = "wait"
    os.execute(table.concat(cmd, " "))
    for i = 1, 16 do
      local f = assert(io.open(dir .. "/s" .. i))
      local r = json.decode(f:read("a"))
      f:close()
      assert.are.equal(1, r.id, app:log())
    end
    local o = sb:oauth()
    assert.are.same({ 1, 0 }, { o.grants.refresh_token, o.errors.invalid_grant or 0 })
  end)

  it("paces all workers together through the shared dict: the sandbox refuses no call", function()
    sb:reset()
    sb:config { rate_limit = 5, rate_window = 1 }
    local dir = app.prefix
    local cmd = {}
    for i = 1, 15 do
      cmd[#cmd + 1] = ("curl -s -o %s/p%d '%s/paced?base=%s&token=%s&id=%d' &"):format(dir, i, app.url, sb.url,
        sb.token, i)
    end
    cmd[#cmd + 1] = "wait"
    os.execute(table.concat(cmd, " "))
    for i = 1, 15 do
      local f = assert(io.open(dir .. "/p" .. i))
      assert.are.equal(i .. "\n", f:read("a"), app:log():sub(-1500))
      f:close()
    end
    local statuses = {}
    for _, r in ipairs(sb:requests { match = "^/api/v1/customers" }.requests) do
      statuses[r.status] = (statuses[r.status] or 0) + 1
    end
    assert.are.same({ [200] = 15 }, statuses)
  end)
end)

describe("#nginx two nginx servers sharing one grant through Redis", function()
  local sb, apps, server = nil, {}, nil
  local KEY = "flextell:spec:nginx"
  setup(function()
    sb = sandbox.start { tls = false }
    server = require("spec.helpers.redis").start()
    for i = 1, 2 do
      apps[i] = nginx_app.start {
        workers = 2,
        server = ([[
    location = /redis_call {
      content_by_lua_block {
        local flextell = require "flextell"
        local redis = require "nginx.redis"
        -- a cosocket belongs to the request or timer that made it, and a token refresh runs in a
        -- timer: each command takes a connection from the keepalive pool where it runs
        local function command(...)
          local red = redis:new()
          red:set_timeout(2000)
          local ok, err = red:connect("127.0.0.1", %d)
          if not ok then return nil, err end
          local reply, rerr = red:eval(select(2, ...))
          red:set_keepalive(10000, 10)
          return reply, rerr
        end
        local c = flextell.new { base_url = ngx.var.arg_base, client_id = "sandbox-client",
          client_secret = "sandbox-secret", token_store = flextell.redis_store { command = command, key = "%s" } }
        local data, err = c:get("/v1/customers/1")
        ngx.say(data and data.id or tostring(err))
      }
    }]]):format(server.port, KEY),
      }
    end
  end)
  teardown(function()
    for _, a in ipairs(apps) do a:stop() end
    if server then server:stop() end
    sb:stop()
  end)

  it("refreshes once when the workers of both find the token expired", function()
    local flextell = require "flextell"
    local store = flextell.redis_store { redis = server:connect(), key = KEY }
    local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri, token_store = store }
    local url, state = c:authorize_url {}
    assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
    local tokens, version = store:load()
    tokens.expires_at = os.time() - 10
    assert(store:save(tokens, version))
    assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1 })
    local dir = apps[1].prefix
    local cmd = {}
    for i = 1, 16 do
      cmd[#cmd + 1] = ("curl -s -o %s/r%d '%s/redis_call?base=%s' &"):format(dir, i, apps[i % 2 + 1].url, sb.url)
    end
    cmd[#cmd + 1] = "wait"
    os.execute(table.concat(cmd, " "))
    for i = 1, 16 do
      local f = assert(io.open(dir .. "/r" .. i))
      assert.are.equal("1\n", f:read("a"), apps[i % 2 + 1]:log():sub(-1500))
      f:close()
    end
    local o = sb:oauth()
    assert.are.same({ 1, 0 }, { o.grants.refresh_token, o.errors.invalid_grant or 0 })
    local saved, now_version = store:load()
    assert.are.equal(version + 2, now_version)
    assert.are_not.equal(tokens.refresh_token, saved.refresh_token)
  end)
end)
