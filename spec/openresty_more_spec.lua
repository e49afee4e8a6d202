-- The nginx driver in an nginx app: phases without cosockets, a refresh that outlives the request
-- that started it, light threads and tasks, transport = "curl", and the clear errors for what
-- cosockets cannot do.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local nginx_app = require "spec.helpers.nginx_app"
local json = flextell.json

local function record(phase)
  return ([[
        local flextell = require "flextell"
        local c = flextell.new { base_url = "http://127.0.0.1:1/api", token = "t" }
        local _, err = c:get("/v1/customers/1")
        ngx.shared.results:set("%s", flextell.json.encode { kind = err.kind, code = err.code, message = err.message })]])
    :format(phase)
end

describe("#nginx the nginx driver", function()
  local sb, app
  setup(function()
    sb = sandbox.start { tls = false }
    app = nginx_app.start {
      workers = 2,
      http = [[
  lua_shared_dict results 1m;
  lua_shared_dict tokens 1m;
  lua_check_client_abort on;]],
      server = [[
    location = /results { content_by_lua_block { ngx.say(ngx.shared.results:get(ngx.var.arg_key) or "none") } }
    location = /set {
      set_by_lua_block $r { ]] .. record("set") .. [[ return "" }
      content_by_lua_block { ngx.say("ok") }
    }
    location = /filters {
      content_by_lua_block { ngx.say("ok") }
      header_filter_by_lua_block { ]] .. record("header_filter") .. [[ }
      body_filter_by_lua_block { ]] .. record("body_filter") .. [[ }
      log_by_lua_block { ]] .. record("log") .. [[ }
    }
    location = /seed {
      content_by_lua_block {
        local flextell = require "flextell"
        local store = flextell.shared_dict_store("tokens")
        local _, v = store:load()
        ngx.say(tostring(store:save(flextell.json.decode(ngx.unescape_uri(ngx.var.arg_tokens)), v)))
      }
    }
    location = /peek {
      content_by_lua_block {
        local t, v = require("flextell").shared_dict_store("tokens"):load()
        ngx.say(require("flextell").json.encode { refresh_token = t and t.refresh_token, version = v })
      }
    }
    location = /store_call {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, client_id = "sandbox-client",
          client_secret = "sandbox-secret", token_store = flextell.shared_dict_store("tokens") }
        local data, err = c:get("/v1/customers/1")
        ngx.say(data and "ok" or tostring(err))
      }
    }
    location = /threads {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, token = ngx.var.arg_token }
        local ids = {}
        local how = ngx.var.arg_how
        if how == "ngx" then
          local threads = {}
          for i = 1, 5 do threads[i] = ngx.thread.spawn(function() return c:get("/v1/customers/" .. i) end) end
          for i = 1, 5 do local _, d = ngx.thread.wait(threads[i]); ids[i] = d.id end
        elseif how == "tasks" then
          local tasks = {}
          for i = 1, 5 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
          local results = { flextell.wait(unpack(tasks)) }
          for i = 1, 5 do ids[i] = results[i][1].id end
        else
          local reqs = {}
          for i = 1, 5 do reqs[i] = { path = "/v1/customers/" .. i } end
          for i, r in ipairs(c:batch(reqs, { concurrency = 5 })) do ids[i] = r[1].id end
        end
        ngx.say(flextell.json.encode(ids))
      }
    }
    location = /cancel {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, token = ngx.var.arg_token, max_retries = 0 }
        local t = flextell.spawn(function() return c:get("/v1/customers/6") end)
        ngx.sleep(0.2)
        t:cancel()
        local _, err = t:result()
        ngx.say(flextell.json.encode { kind = err.kind, code = err.code, message = err.message, method = err.method,
          url = err.url, attempts = err.attempts, maybe_sent = err.maybe_sent,
          after = t:done() and "no call left" or "still running" })
      }
    }
    location = /curl {
      content_by_lua_block {
        local flextell = require "flextell"
        local c = flextell.new { base_url = ngx.var.arg_base, token = ngx.var.arg_token, transport = "curl" }
        local data, err = c:get("/v1/customers/3")
        ngx.say(data and data.id or tostring(err))
      }
    }
    location = /refused {
      content_by_lua_block {
        local flextell = require "flextell"
        local opts = flextell.json.decode(ngx.unescape_uri(ngx.var.arg_opts))
        local _, err = flextell.new(opts):get("/v1/customers/1")
        ngx.say(flextell.json.encode { kind = err.kind, code = err.code, message = err.message })
      }
    }
    location = /no_store {
      content_by_lua_block {
        require("flextell").new { base_url = "http://127.0.0.1:1/api", client_id = "a", client_secret = "b" }
        ngx.say("made")
      }
    }]],
    }
  end)
  teardown(function()
    if app then app:stop() end
    sb:stop()
  end)

  local function get_json(path)
    local status, body = app:get(path)
    return status, json.decode(body) or body
  end

  it("answers a call in set, header_filter, body_filter and log with a usage error naming the phase", function()
    assert.are.equal(200, (app:get("/set")))
    assert.are.equal(200, (app:get("/filters")))
    os.execute("sleep 0.2") -- log_by_lua runs after the answer
    for _, phase in ipairs { "set", "header_filter", "body_filter", "log" } do
      local _, r = get_json("/results?key=" .. phase)
      assert.are.same({ kind = "usage", code = "phase", message = "flextell: no network calls in nginx's " .. phase ..
        " phase (no cosockets there): call from rewrite, access or content handlers, or from a timer (ngx.timer.at)" },
        r, phase)
    end
  end)

  it("finishes a token refresh whose request's client went away: it runs in a timer", function()
    local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state = c:authorize_url {}
    local tokens = assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
    tokens.expires_at = os.time() - 10
    assert.are.equal(200, (app:get("/seed?tokens=" .. require("flextell.core").escape(json.encode(tokens)))))
    assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1 })
    -- the client gives up after 0.3 s; nginx ends the request (lua_check_client_abort on)
    os.execute(("curl -s -m 0.3 -o /dev/null '%s/store_call?base=%s'"):format(app.url, sb.url))
    os.execute("sleep 1.2")
    local _, peek = get_json("/peek")
    assert.are_not.equal(tokens.refresh_token, peek.refresh_token)
    assert.are.equal(2, peek.version)
    local o = sb:oauth()
    assert.are.same({ 1, 0 }, { o.grants.refresh_token, o.errors.invalid_grant or 0 })
    local _, body = app:get(("/store_call?base=%s"):format(sb.url))
    assert.are.equal("ok\n", body)
    assert.are.equal(1, sb:oauth().grants.refresh_token)
  end)

  -- The most requests the server had in hand at one moment, of those matching a pattern.
  local function peak(match)
    return sandbox.peak(sb:requests { match = match }.requests)
  end

  for _, how in ipairs { "ngx", "tasks", "batch" } do
    it("runs calls in parallel within one request: " .. how, function()
      sb:reset()
      assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = 0.3, count = 5 })
      local status, ids = get_json(("/threads?how=%s&base=%s&token=%s"):format(how, sb.url, sb.token))
      assert.are.same({ 200, { 1, 2, 3, 4, 5 } }, { status, ids })
      assert.are.equal(5, peak("^/api/v1/customers/%d+$")) -- all five held by the server at once
    end)
  end

  it("cancels a task whose call is on the wire: the error names the call and says it may have been sent", function()
    sb:reset()
    assert(sb:arm { path = "/api/v1/customers/6", fault = "delay", seconds = 1 })
    local status, r = get_json(("/cancel?base=%s&token=%s"):format(sb.url, sb.token))
    assert.are.same({ 200, { kind = "usage", code = "cancelled", message = "the task was cancelled", method = "GET",
      url = sb.url .. "/v1/customers/6", attempts = 1, maybe_sent = true, after = "no call left" } }, { status, r })
    assert.are.equal(1, #sb:requests { path = "/api/v1/customers/6" }.requests)
  end)

  it("uses libcurl for a client with transport = \"curl\"", function()
    local _, body = app:get(("/curl?base=%s&token=%s"):format(sb.url, sb.token))
    assert.are.equal("3\n", body)
    assert.has_error(function() flextell.new { transport = "bogus" } end,
      "flextell.new: option 'transport' must be \"curl\" or \"auto\"")
  end)

  it("says what cosockets cannot do: a host name without a resolver, a proxy", function()
    local port = sb.url:match(":(%d+)/")
    local esc = require("flextell.core").escape
    local _, r = get_json("/refused?opts=" .. esc(json.encode { base_url = "http://localhost:" .. port .. "/api",
      token = "t", max_retries = 0 }))
    assert.are.same({ kind = "network", code = "resolve_failed",
      message = "cannot resolve localhost: nginx has no 'resolver' directive" }, r)
    _, r = get_json("/refused?opts=" .. esc(json.encode { base_url = sb.url, token = "t",
      proxy = "http://127.0.0.1:1" }))
    assert.are.same({ kind = "usage", code = "unsupported", message = "the proxy option does not work under " ..
      "nginx's driver: connect directly, or use transport = \"curl\" in a thread of its own (ngx.run_worker_thread)" }, r)
  end)

  it("warns in the error log of an OAuth client in several workers without a token store", function()
    assert.are.equal(200, (app:get("/no_store")))
    assert.matches("flextell: an OAuth client in an nginx with 2 workers and no token_store: the workers will " ..
      "spend one refresh token twice and lose the grant; give it flextell.shared_dict_store%(name%) or " ..
      "flextell.redis_store{...}", app:log())
  end)
end)
