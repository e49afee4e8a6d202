-- A grant shared by many holders through a token store: the sandbox rotates refresh tokens and
-- revokes the whole grant when a used one comes back, so any second spend shows up in its
-- counters (sb:oauth(): grants.refresh_token, errors.invalid_grant).
-- In one process first (clients sharing a memory store, blocking and in tasks), then as cron
-- jobs are: separate processes sharing a token file, or only a Redis server.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local redis_server = require "spec.helpers.redis"
local it_both = require("spec.helpers.modes").both(it)

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end

describe("token stores", function()
  local sb
  setup(function() sb = sandbox.start { tls = false } end)
  teardown(function() sb:stop() end)
  before_each(function() sb:reset() end)

  local function new_client(store, opts)
    local o = { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri, token_store = store }
    for k, v in pairs(opts or {}) do o[k] = v end
    return flextell.new(o)
  end

  -- A grant, saved in store (version 1) by the code exchange itself.
  local function authorize(store)
    local c = new_client(store)
    local url, state = c:authorize_url { scope = "customers:read" }
    local tokens = assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
    c:close()
    return tokens
  end

  -- The stored tokens, with their local expiry moved into the past (a compare-and-set).
  local function expire_locally(store)
    local tokens, version = store:load()
    tokens.expires_at = os.time() - 10
    assert(store:save(tokens, version))
    return tokens
  end

  local function grants()
    local o = sb:oauth()
    return o.grants.refresh_token, o.errors.invalid_grant or 0
  end

  describe("in one process", function()
    it_both("start a client from the stored tokens, and the exchange saves under the lock", function()
      local store = flextell.memory_store()
      local tokens = authorize(store)
      local saved, version = store:load()
      assert.are.equal(1, version)
      assert.are.equal(tokens.access_token, saved.access_token)
      local c = new_client(store, { access_token = "given-but-older", refresh_token = "r" })
      assert.are.equal(tokens.access_token, c:tokens().access_token)
      assert.are.equal(tokens.refresh_token, c:tokens().refresh_token)
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id)
    end)

    it_both("adopt what another holder saved instead of refreshing, and tell on_token", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      local told = {}
      local stale = new_client(store, { on_token = function(t) told[#told + 1] = t.access_token end })
      local other = new_client(store)
      assert(other:refresh()) -- another holder refreshes first
      local data = assert(stale:get("/v1/customers/1"))
      assert.are.equal(1, data.id)
      assert.are.same({ 1, 0 }, { grants() })
      assert.are.equal(other:tokens().access_token, stale:tokens().access_token)
      assert.are.same({ other:tokens().access_token }, told)
    end)

    it_both("refresh once for two clients whose tokens expired, and never spend a used token", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      local a, b = new_client(store), new_client(store)
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 0.3 })
      local ta = flextell.spawn(function() return a:get("/v1/customers/1") end)
      local tb = flextell.spawn(function() return b:get("/v1/customers/2") end)
      flextell.wait(ta, tb)
      assert.are.equal(1, (ta:result()).id)
      assert.are.equal(2, (tb:result()).id)
      assert.are.same({ 1, 0 }, { grants() })
      assert.are.equal(a:tokens().access_token, b:tokens().access_token)
      local saved, version = store:load()
      assert.are.equal(a:tokens().refresh_token, saved.refresh_token)
      assert.are.equal(3, version) -- the exchange, the expiry moved, the refresh
    end)

    it_both("refresh with the newest refresh token when asked, after another holder refreshed", function()
      local store = flextell.memory_store()
      authorize(store)
      local stale, other = new_client(store), new_client(store)
      assert(other:refresh())
      local tokens, err = stale:refresh()
      assert.is_nil(err)
      assert.are_not.equal(other:tokens().refresh_token, tokens.refresh_token)
      assert.are.same({ 2, 0 }, { grants() })
      assert.are.equal(tokens.refresh_token, (store:load()).refresh_token)
    end)

    it_both("fail with auth token_store_busy when the lock stays taken past the deadline", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      local held = assert(store:lock { ttl = 30 })
      local c = new_client(store)
      local data, err = c:get("/v1/customers/1", nil, { deadline = 0.3 })
      assert.is_nil(data)
      assert.are.same({ "auth", "token_store_busy" }, { err.kind, err.code })
      assert.matches("^another holder of the grant held the token store's lock for all 0%.%d s this refresh could " ..
        "wait %(the call's deadline%)$", err.message)
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count - 1) -- only the exchange
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/1" }.count)
      held:unlock()
      assert(c:get("/v1/customers/1")) -- and once it is free, the refresh goes ahead
      assert.are.same({ 1, 0 }, { grants() })
    end)

    it_both("take over a lock its holder left behind once the lock expires", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      assert(store:lock { ttl = 0.4 }) -- never given back
      local c = new_client(store)
      local t0 = require("flextell.core").now()
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id)
      local waited = require("flextell.core").now() - t0
      assert.is_true(waited >= 0.3, "waited " .. waited .. " s")
      assert.are.same({ 1, 0 }, { grants() })
    end)

    it_both("keep the store as it was when the refresh token is refused", function()
      local store = flextell.memory_store()
      authorize(store)
      local before, version = store:load()
      assert(new_client(flextell.memory_store(), { access_token = before.access_token,
        refresh_token = before.refresh_token }):refresh()) -- spent behind the store's back
      local c = new_client(store)
      local tokens, err = c:refresh()
      assert.is_nil(tokens)
      assert.are.same({ "auth", "reauth_required" }, { err.kind, err.code })
      assert.are.same({ before, version }, { store:load() })
      assert.is_nil(c:tokens().access_token) -- cleared in memory only
    end)

    it_both("fail with auth token_store_error when the store fails, and give the lock back", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      local c = new_client(store)
      local save = store.save
      store.save = function() return nil, "disk on fire" end
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.same({ "auth", "token_store_error",
        "the new tokens could not be saved in the token store (this client keeps them): disk on fire" },
        { err.kind, err.code, err.message })
      assert(store:lock { ttl = 1 }):unlock() -- not left locked
      store.save = save
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id) -- it kept the new tokens
      expire_locally(store)
      local d = new_client(store)
      store.load = function() error("connection refused") end
      data, err = d:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("token_store_error", err.code)
      assert.matches("^the token store failed to load: .*connection refused$", err.message)
      store.load = nil
      store.lock = function() return nil, "busy?" end
      data, err = d:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.equal("the token store failed to lock: busy?", err.message)
    end)

    it_both("let a holder whose deadline passes mid-refresh finish it, so the next holder spends nothing twice", function()
      local store = flextell.memory_store()
      authorize(store)
      expire_locally(store)
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1.5 })
      local a = new_client(store)
      local data, err = a:get("/v1/customers/1", nil, { deadline = 1 })
      assert.is_nil(data)
      assert.are.same({ "timeout", "the call's deadline passed before it could be sent" }, { err.code, err.message })
      local b = new_client(store)
      assert.are.equal(1, assert(b:get("/v1/customers/1")).id)
      assert.are.same({ 1, 0 }, { grants() })
      assert.are.equal(a:tokens().refresh_token, (store:load()).refresh_token)
    end)

    it("finish a refresh on the wire when its task is cancelled or its client closed, and save it", function()
      for _, how in ipairs { "cancel", "close" } do
        sb:reset()
        local store = flextell.memory_store()
        authorize(store)
        expire_locally(store)
        assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 0.5 })
        local a = new_client(store)
        local task = flextell.spawn(function() return a:get("/v1/customers/1") end)
        local t0 = require("flextell.core").now()
        while require("flextell.core").now() - t0 < 0.2 do flextell.step(0.01) end
        if how == "cancel" then task:cancel() else a:close() end
        local _, err = task:result()
        assert.are.same({ how == "cancel" and "cancelled" or "closed", "GET" }, { err.code, err.method })
        flextell.run() -- the refresh goes on in a task of its own, and saves
        local saved, version = store:load()
        assert.are.equal(3, version, how)
        local b = new_client(store)
        assert.are.equal(saved.access_token, b:tokens().access_token)
        assert.are.equal(1, assert(b:get("/v1/customers/1")).id)
        assert.are.same({ 1, 0 }, { grants() }, how)
      end
    end)

    it("finish a refresh() or an exchange_code on the wire whose own task is cancelled", function()
      local c = new_client(nil, { timeout = 5 })
      local url, state = c:authorize_url {}
      local redirect = assert(sb:approve(url))
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 0.5, count = 2 })
      for _, what in ipairs { "exchange", "refresh" } do
        local task = flextell.spawn(function()
          if what == "exchange" then return c:exchange_code(redirect, { state = state }) end
          return c:refresh()
        end)
        local t0 = require("flextell.core").now()
        while require("flextell.core").now() - t0 < 0.2 do flextell.step(0.01) end
        task:cancel()
        local _, err = task:result()
        assert.are.same({ "usage", "cancelled", true }, { err.kind, err.code, err.maybe_sent }, what)
        flextell.run() -- the token request goes on in a task of its own
        assert.matches("^sbat_", c:tokens().access_token, what)
      end
      assert.are.equal(1, assert(c:get("/v1/customers/1")).id)
      local o = sb:oauth()
      assert.are.same({ 1, 1, 0 }, { o.grants.authorization_code, o.grants.refresh_token, o.errors.invalid_grant or 0 })
    end)

    it("leave a token file's lock to its ttl, and no longer, after a refresh whose answer was lost", function()
      local dir = sh("mktemp -d")
      local store = flextell.token_file(dir .. "/tokens.json")
      authorize(store)
      expire_locally(store)
      assert(sb:arm { path = "/oauth/token", fault = "reset", bytes = 0 })
      local a = new_client(store, { timeout = 2 }) -- a refresh bound to 3 s, a lock of 5 s
      local _, err = a:get("/v1/customers/1")
      -- on the connection the exchange left open: libcurl's resend of the POST refused
      assert.are.same({ "network", "empty_reply", true }, { err.kind, err.code, err.maybe_sent })
      local t0 = require("flextell.core").now()
      local b = new_client(store) -- the same process, and a while holds the first client alive
      local data
      data, err = b:get("/v1/customers/1", nil, { deadline = 10 })
      local took = require("flextell.core").now() - t0
      assert.is_nil(data)
      assert.are.same({ "auth", "reauth_required" }, { err.kind, err.code })
      assert.is_true(took >= 4 and took < 7, "took " .. took .. " s")
      -- a, alive to here, kept the tokens it had; so did the store
      assert.are.equal((store:load()).refresh_token, a:tokens().refresh_token)
      os.execute("rm -rf '" .. dir .. "'")
    end)

    it_both("take tokens another holder authorized, when it had none", function()
      local store = flextell.memory_store()
      local worker = new_client(store)
      local data, err = worker:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.same({ "auth", "reauth_required" }, { err.kind, err.code })
      authorize(store)
      assert.are.equal(1, assert(worker:get("/v1/customers/1")).id)
      local _, none = new_client(flextell.memory_store()):refresh()
      assert.are.same({ "reauth_required",
        "the client has no access token: authorize first (client:authorize_url, client:exchange_code)" },
        { none.code, none.message })
      local t = assert(new_client(store):refresh()) -- refresh() looks in the store too
      assert.are.equal(t.refresh_token, (store:load()).refresh_token)
    end)

    it_both("refresh once more when another holder's tokens draw a 401 too", function()
      local store = flextell.memory_store()
      authorize(store)
      local a, b = new_client(store), new_client(store)
      assert(a:refresh())
      sb:expire_tokens {} -- a's new token too
      assert.are.equal(1, assert(b:get("/v1/customers/1")).id)
      assert.are.same({ 2, 0 }, { grants() })
    end)

    it("refuse what a store of its own answers out of contract", function()
      local base = flextell.memory_store()
      authorize(base)
      expire_locally(base)
      local function wrapped(over)
        local s = { load = function() return base:load() end, save = function(_, t, v) return base:save(t, v) end,
          lock = function(_, o) return base:lock(o) end }
        for k, v in pairs(over) do s[k] = v end
        return s
      end
      local cases = {
        { { lock = function() return true end },
          "the token store failed to lock: lock() returned boolean, neither a lock (with an unlock method) nor nil, \"busy\"" },
        { { save = function() return "yes" end },
          "the new tokens could not be saved in the token store (this client keeps them): save() answered string, " ..
          "not true, false or nil, err" },
        { { save = function(_, t, v) base:save(t, v) return true end },
          "the token store's save() answered true without the new version (an integer >= 0)" },
        { { save = function() return false end },
          "another holder saved tokens while this refresh held the store's lock (its ttl ran out); the new tokens " ..
          "were not saved, this client keeps them" },
      }
      for i, case in ipairs(cases) do
        local c = new_client(wrapped(case[1]))
        local data, err = c:get("/v1/customers/1")
        assert.is_nil(data, i)
        assert.are.same({ "auth", "token_store_error", case[2] }, { err.kind, err.code, err.message }, i)
        authorize(base) -- the stored refresh token was spent without being replaced: a new grant
        expire_locally(base)
      end
      local bad_loads = {
        { function() return base:load(), 1.5 end, "load() returned a version that is not an integer >= 0" },
        { function() local t = base:load() return t, "2" end, "load() returned a version that is not an integer >= 0" },
        { function() return "tokens", 1 end, "load() returned tokens that are not a table" },
        { function() return { access_token = "a", expires_at = -5 }, 9 end,
          "the token store holds an expires_at that is not a number of seconds >= 0" },
        { function() return { access_token = string.rep("a", 70000) }, 9 end,
          "the token store holds a token longer than 64 KiB" },
      }
      for i, case in ipairs(bad_loads) do
        local ok, err = pcall(new_client, wrapped { load = case[1] })
        assert.is_false(ok, i)
        assert.are.same({ "auth", "token_store_error" }, { err.kind, err.code }, i)
        assert.are.equal(case[2], err.message:gsub("^the token store failed to load: ", ""), i)
      end
    end)

    it("paces clients that share a store's rate-limit window: none gets a 429", function()
      sb:config { rate_limit = 3, rate_window = 1 }
      local store = flextell.memory_store()
      local a = flextell.new { base_url = sb.url, token = sb.token, pace = true, token_store = store }
      local b = flextell.new { base_url = sb.url, token = sb.token, pace = true, token_store = store }
      local tasks = {}
      for i = 1, 9 do
        local c = i % 2 == 0 and a or b
        tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end)
      end
      flextell.wait((table.unpack or unpack)(tasks))
      for i = 1, 9 do assert.are.equal(i, (tasks[i]:result()).id) end
      for _, r in ipairs(sb:requests { match = "^/api/v1/customers" }.requests) do assert.are.equal(200, r.status) end
      -- each client alone would have sent 3 at once into a window of 3 that the other one shares
      local c = flextell.new { base_url = sb.url, token = sb.token, pace = true, token_store = flextell.memory_store() }
      local d = flextell.new { base_url = sb.url, token = sb.token, pace = true, token_store = flextell.memory_store() }
      sb:reset()
      sb:config { rate_limit = 3, rate_window = 1 }
      local t2 = {}
      for i = 1, 6 do
        local x = i % 2 == 0 and c or d
        t2[i] = flextell.spawn(function() return x:get("/v1/customers/" .. i, nil, { max_retries = 0 }) end)
      end
      flextell.wait((table.unpack or unpack)(t2))
      local refused = 0
      for _, r in ipairs(sb:requests { match = "^/api/v1/customers" }.requests) do
        if r.status == 429 then refused = refused + 1 end
      end
      assert.is_true(refused > 0, "without a shared window, some call is refused")
    end)

    it("raise at creation when the store cannot be read, or holds what no token can be", function()
      local broken = flextell.memory_store()
      broken.load = function() return nil, flextell.Error and setmetatable({ message = "no such table" },
        flextell.Error) end
      local ok, err = pcall(new_client, broken)
      assert.is_false(ok)
      assert.are.same({ "auth", "token_store_error", "the token store failed to load: no such table" },
        { err.kind, err.code, err.message })
      local bad = flextell.memory_store() -- a store of one's own that holds what no token can be
      bad.load = function() return { access_token = "has space" }, 1 end
      ok, err = pcall(new_client, bad)
      assert.is_false(ok)
      assert.are.equal("the token store holds tokens that are not valid (no token, or not strings of token characters)",
        err.message)
      assert.has_error(function() new_client({ load = true }) end)
    end)

    it("refuse a token_store without the store's methods", function()
      assert.has_error(function() flextell.new { base_url = sb.url, token_store = { load = function() end } } end,
        "flextell.new: option 'token_store' must be a token store (load, save and lock methods), got table")
    end)
  end)

  -- Separate processes, started together. Returns each one's decoded report.
  local function workers(n, env)
    local dir = sh("mktemp -d")
    local cmd = { "unset LD_PRELOAD;" }
    for i = 1, n do
      local e = {}
      for k, v in pairs(env(i)) do e[#e + 1] = k .. "='" .. v .. "'" end
      cmd[#cmd + 1] = ("env %s FX_URL='%s' LUA_PATH='%s' LUA_CPATH='%s' %s spec/helpers/store_worker.lua > %s/%d 2>&1 &")
        :format(table.concat(e, " "), sb.url, package.path, package.cpath, arg[-1], dir, i)
    end
    cmd[#cmd + 1] = "wait"
    os.execute(table.concat(cmd, " "))
    local out = {}
    for i = 1, n do
      local f = assert(io.open(dir .. "/" .. i))
      local text = f:read("a")
      f:close()
      out[i] = flextell.json.decode(text) or { raw = text }
    end
    os.execute("rm -rf '" .. dir .. "'")
    return out
  end

  -- n holders, tokens expired for all (round 1: by the local clock; later: revoked at the
  -- server, so each gets a 401), the token endpoint slow: one refresh_token grant per round.
  local function rounds(store, store_env, groups)
    authorize(store)
    for round = 1, 3 do
      if round == 1 then expire_locally(store) else sb:expire_tokens {} end
      local _, version = store:load()
      local before = grants()
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1 })
      local out = workers(8, function(i) return { FX_STORE = store_env(groups and math.ceil(i / 4) or 1) } end)
      local saved, now_version = store:load()
      for i = 1, 8 do
        assert.are.same({ ok = true, id = 1, access_token = saved.access_token }, out[i],
          "round " .. round .. ", holder " .. i)
      end
      assert.are.same({ before + 1, 0 }, { grants() }, "round " .. round)
      assert.are.equal(version + 1, now_version)
    end
  end

  describe("in many processes", function()
    local dir, server
    setup(function() server = redis_server.start() end)
    teardown(function() server:stop() end)
    before_each(function() dir = sh("mktemp -d") end)
    after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

    it("8 cron jobs sharing one token file refresh once per expiry, 3 expiries in a row", function()
      local path = dir .. "/tokens.json"
      rounds(flextell.token_file(path), function() return "file:" .. path end)
    end)

    it("2 groups of 4 sharing only a Redis server refresh once per expiry, 3 expiries in a row", function()
      local key = "flextell:spec:rounds:" .. os.time()
      local conn = server:connect()
      rounds(flextell.redis_store { redis = conn, key = key }, function() return "redis:" .. server.port .. ":" .. key end,
        true)
    end)

    local function killed_holder(store, store_env)
      authorize(store)
      local expired = expire_locally(store)
      local _, version = store:load()
      -- the holder takes the lock and hangs before its token request goes out
      local p = assert(io.popen(("unset LD_PRELOAD; FX_STORE='%s' FX_TIMEOUT=2 FX_HANG=reload FX_URL='%s' " ..
        "LUA_PATH='%s' LUA_CPATH='%s' exec %s spec/helpers/store_worker.lua & echo $!; wait")
        :format(store_env, sb.url, package.path, package.cpath, arg[-1])))
      local pid = p:read("l")
      assert.are.equal("locked", p:read("l"))
      local t0 = os.time()
      os.execute("(sleep 0.5; kill -9 " .. pid .. ") &")
      local out = workers(3, function() return { FX_STORE = store_env, FX_DEADLINE = "15" } end)
      p:close()
      local saved, now_version = store:load()
      for i = 1, 3 do assert.are.same({ ok = true, id = 1, access_token = saved.access_token }, out[i]) end
      assert.are.same({ 1, 0 }, { grants() })
      assert.are.equal(version + 1, now_version)
      assert.are_not.equal(expired.refresh_token, saved.refresh_token)
      return os.time() - t0
    end

    -- its timeout of 2 s bounds its refresh to 3 s and its lock to 5 s: the others wait that
    -- long (the kernel drops the file's lock at once, its lease holds them off), then refresh
    it("go on when a holder is killed holding the file's lock, once its lease runs out", function()
      local path = dir .. "/tokens.json"
      local took = killed_holder(flextell.token_file(path), "file:" .. path)
      assert.is_true(took >= 4 and took <= 8, "took " .. took .. " s")
    end)

    it("go on when a holder is killed holding the Redis lock, once the lock expires", function()
      local key = "flextell:spec:killed:" .. os.time()
      local store = flextell.redis_store { redis = server:connect(), key = key }
      local took = killed_holder(store, "redis:" .. server.port .. ":" .. key)
      assert.is_true(took >= 4 and took <= 8, "took " .. took .. " s")
    end)

    it("keep others out while a holder killed after sending its refresh may still be answered", function()
      local path = dir .. "/tokens.json"
      local store = flextell.token_file(path)
      authorize(store)
      expire_locally(store)
      local before, version = store:load()
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 1 })
      local p = assert(io.popen(("unset LD_PRELOAD; FX_STORE='file:%s' FX_TIMEOUT=2 FX_URL='%s' LUA_PATH='%s' " ..
        "LUA_CPATH='%s' exec %s spec/helpers/store_worker.lua & echo $!; wait")
        :format(path, sb.url, package.path, package.cpath, arg[-1])))
      local pid = p:read("l")
      repeat os.execute("sleep 0.05") until sb:requests { path = "/oauth/token" }.count == 2 -- the exchange, then its refresh
      local t0 = require("flextell.core").now()
      os.execute("kill -9 " .. pid)
      p:close()
      -- the server rotates the token a moment later; the kernel dropped the lock, the lease holds
      local out = workers(1, function() return { FX_STORE = "file:" .. path } end)
      local took = require("flextell.core").now() - t0
      assert.is_true(took >= 3, "took " .. took .. " s")
      assert.are.same({ "auth", "reauth_required" }, { out[1].kind, out[1].code }) -- never a false OK
      assert.are.same({ before, version }, { store:load() })
      assert.are.same({ 1, 1 }, { grants() })
    end)

    it("give the next holder a clear reauth_required when a refresh's answer was lost, and keep the file", function()
      local path = dir .. "/tokens.json"
      local store = flextell.token_file(path)
      authorize(store)
      expire_locally(store)
      local before, version = store:load()
      assert(sb:arm { path = "/oauth/token", fault = "reset", bytes = 0 }) -- rotated, then the connection reset
      -- its timeout of 2 s bounds the lock's ttl to 5 s
      local t0 = require("flextell.core").now()
      local out = workers(1, function() return { FX_STORE = "file:" .. path, FX_TIMEOUT = "2" } end)
      assert.are.same({ "network", "connection_reset" }, { out[1].kind, out[1].code })
      assert.are.same({ before, version }, { store:load() })
      -- the request may have been processed (it was), so the lock was not given back: the next
      -- holder waits for its ttl rather than race a request that may still be on its way
      out = workers(1, function() return { FX_STORE = "file:" .. path } end)
      local took = require("flextell.core").now() - t0
      assert.is_true(took >= 4.5 and took < 8, "took " .. took .. " s")
      assert.are.same({ "auth", "reauth_required" }, { out[1].kind, out[1].code })
      assert.are.same({ before, version }, { store:load() }) -- not wiped
      assert.are.same({ 1, 1 }, { grants() })
    end)

    it("give a clear error, and no half-written file, when the store's files cannot be written", function()
      local path = dir .. "/tokens.json"
      local store = flextell.token_file(path)
      authorize(store)
      expire_locally(store)
      local before, version = store:load()
      local out = sh(("unset LD_PRELOAD; trap '' XFSZ; ulimit -f 0; FX_STORE='file:%s' FX_URL='%s' LUA_PATH='%s' " ..
        "LUA_CPATH='%s' %s spec/helpers/store_worker.lua 2>&1"):format(path, sb.url, package.path, package.cpath, arg[-1]))
      out = flextell.json.decode(out)
      assert.are.same({ "auth", "token_store_error" }, { out.kind, out.code })
      assert.are.equal("the token store failed to lock: cannot write the lease in " .. path .. ".lock: File too large",
        out.message)
      assert.are.same({ before, version }, { store:load() })
      assert.are.equal("tokens.json\ntokens.json.lock", sh("ls '" .. dir .. "'"))
    end)

    it("give a clear error when Redis is down, at creation and at a refresh", function()
      local other = redis_server.start()
      local store = flextell.redis_store { redis = other:connect(), key = "k" }
      authorize(store)
      expire_locally(store)
      local c = new_client(store)
      other:stop()
      local data, err = c:get("/v1/customers/1")
      assert.is_nil(data)
      assert.are.same({ "auth", "token_store_error" }, { err.kind, err.code })
      assert.matches("^the token store failed to load: token store %(redis%): ", err.message)
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/1" }.count)
      local ok
      ok, err = pcall(new_client, store)
      assert.is_false(ok)
      assert.are.same({ "auth", "token_store_error" }, { err.kind, err.code })
    end)
  end)
end)
