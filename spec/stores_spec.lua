-- The token stores on their own: the contract every store keeps (load, compare-and-set save,
-- a lock that never blocks and expires), then what each kind adds.
local flextell = require "flextell"
local redis_server = require "spec.helpers.redis"

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end

local function tmpdir()
  return sh("mktemp -d")
end

local TOKENS = { access_token = "a1", refresh_token = "r1", expires_at = 2000000000, token_type = "Bearer",
  scope = "customers:read" }

local server
setup(function() server = redis_server.start() end)
teardown(function() server:stop() end)

local dirs = {}
after_each(function()
  for _, d in ipairs(dirs) do os.execute("rm -rf '" .. d .. "'") end
  dirs = {}
end)

local n = 0
local kinds = {
  memory = function() return flextell.memory_store() end,
  file = function()
    local d = tmpdir()
    dirs[#dirs + 1] = d
    return flextell.token_file(d .. "/tokens.json")
  end,
  redis = function()
    n = n + 1
    return flextell.redis_store { redis = server:connect(), key = "flextell:spec:" .. n }
  end,
}

for _, kind in ipairs { "memory", "file", "redis" } do
  describe("the " .. kind .. " store", function()
    local new = kinds[kind]

    it("loads no tokens and version 0 when nothing was saved", function()
      local tokens, version = new():load()
      assert.is_nil(tokens)
      assert.are.equal(0, version)
    end)

    it("saves with compare-and-set on the version", function()
      local s = new()
      local ok, v = s:save(TOKENS, 0)
      assert.is_true(ok)
      assert.are.equal(1, v)
      local tokens, version = s:load()
      assert.are.same(TOKENS, tokens)
      assert.are.equal(1, version)
      -- another holder saved since version 0: refused, nothing changed
      assert.is_false(s:save({ access_token = "stale", refresh_token = "stale" }, 0))
      assert.are.same({ TOKENS, 1 }, { s:load() })
      ok, v = s:save({ access_token = "a2", refresh_token = "r2" }, 1)
      assert.is_true(ok)
      assert.are.equal(2, v)
      assert.are.same({ { access_token = "a2", refresh_token = "r2" }, 2 }, { s:load() })
      -- nil: an explicit overwrite, whatever the version
      assert.are.same({ true, 3 }, { s:save({ access_token = "a3" }, nil) })
    end)

    it("keeps only the token fields", function()
      local s = new()
      s:save({ access_token = "a1", password = "x", expires_at = 5 }, 0)
      assert.are.same({ access_token = "a1", expires_at = 5 }, (s:load()))
    end)

    -- a store never holds what its next load() would refuse: that would leave every holder of
    -- the grant with token_store_error until someone removed it by hand
    it("refuses tokens it could not give back, and keeps what it had", function()
      local s = new()
      assert.are.same({ true, 1 }, { s:save(TOKENS, 0) })
      for _, case in ipairs {
        { { access_token = 5, refresh_token = {}, expires_at = "soon" }, "access_token is not a string" },
        { { access_token = "a\r\nb" }, "access_token is not a non-empty string of visible ASCII" },
        { { access_token = "a b" }, "access_token is not a non-empty string of visible ASCII" },
        { { refresh_token = "" }, "refresh_token is not a non-empty string of visible ASCII" },
        { { access_token = "a", scope = "read\nwrite" }, "scope has a control character" },
        { { access_token = "a", expires_at = -1 }, "expires_at is not a number >= 0" },
        { { access_token = "a", expires_at = math.huge }, "expires_at is not a number >= 0" },
        { { scope = "read" }, "neither access_token nor refresh_token" },
      } do
        local ok, err = pcall(s.save, s, case[1], nil)
        assert.are.same({ false, "bad argument #1 to 'save' (" .. case[2] .. ")" }, { ok, err })
      end
      assert.has_error(function() s:save("tokens", 1) end, "bad argument #1 to 'save' (table expected, got string)")
      assert.are.same({ TOKENS, 1 }, { s:load() })
    end)

    it("has a lock that another holder cannot take until it is given back", function()
      local s = new()
      local lock = assert(s:lock { ttl = 10, wait = 0 })
      local other = kind == "memory" and s or (kind == "file" and flextell.token_file(s.path) or
        flextell.redis_store { redis = server:connect(), key = s.key })
      assert.are.same({ nil, "busy" }, { other:lock { ttl = 10 } })
      assert.is_true(lock:unlock())
      local again = assert(other:lock { ttl = 10 })
      assert.are.same({ nil, "busy" }, { s:lock { ttl = 10 } })
      assert.is_true(again:unlock())
    end)

    it("refuses a lock without a ttl", function()
      assert.has_error(function() new():lock {} end, "lock: ttl must be a number of seconds > 0")
      assert.has_error(function() new():lock { ttl = 0 } end, "lock: ttl must be a number of seconds > 0")
      assert.has_error(function() new():lock { ttl = 1, wait = -1 } end, "lock: wait must be a number of seconds >= 0")
    end)

    if kind ~= "file" then
      it("lets a lock expire after its ttl, and the late holder cannot unlock the next one's", function()
        local s = new()
        local first = assert(s:lock { ttl = 0.2 })
        assert.are.same({ nil, "busy" }, { s:lock { ttl = 10 } })
        os.execute("sleep 0.35")
        local second = assert(s:lock { ttl = 10 })
        assert.is_false(first:unlock())
        assert.are.same({ nil, "busy" }, { s:lock { ttl = 10 } })
        assert.is_true(second:unlock())
      end)
    end
  end)
end

describe("the file store", function()
  local dir
  before_each(function()
    dir = tmpdir()
    dirs[#dirs + 1] = dir
  end)

  it("writes mode 0600 files, a version in the file, and no temporary file left behind", function()
    local path = dir .. "/tokens.json"
    local s = flextell.token_file(path)
    assert.is_true(s:save(TOKENS, 0))
    assert.are.equal("600", sh("stat -c %a '" .. path .. "'"))
    assert.are.equal("600", sh("stat -c %a '" .. path .. ".lock'"))
    assert.are.equal("tokens.json\ntokens.json.lock", sh("ls '" .. dir .. "'"))
    local f = assert(io.open(path))
    local saved = flextell.json.decode(f:read("a"))
    f:close()
    assert.are.equal(1, saved.version)
    assert.are.equal("a1", saved.access_token)
  end)

  it("replaces the file in one step (a reader sees old or new tokens, never half)", function()
    local path = dir .. "/tokens.json"
    local s = flextell.token_file(path)
    s:save({ access_token = "a1" }, 0)
    local inode = sh("stat -c %i '" .. path .. "'")
    s:save({ access_token = "a2" }, 1)
    assert.are_not.equal(inode, sh("stat -c %i '" .. path .. "'"))
  end)

  it("reads an empty file, and a file written before versions, as version 0", function()
    local path = dir .. "/tokens.json"
    local f = assert(io.open(path, "w"))
    f:write("  \n")
    f:close()
    assert.are.same({ nil, 0 }, { flextell.token_file(path):load() })
    f = assert(io.open(path, "w"))
    f:write('{"access_token":"a0","refresh_token":"r0"}')
    f:close()
    assert.are.same({ { access_token = "a0", refresh_token = "r0" }, 0 }, { flextell.token_file(path):load() })
  end)

  it("gives io_error for a file that is not JSON, or a bad version", function()
    local path = dir .. "/tokens.json"
    local f = assert(io.open(path, "w"))
    f:write("not json")
    f:close()
    local tokens, err = flextell.token_file(path):load()
    assert.is_nil(tokens)
    assert.are.same({ "usage", "io_error" }, { err.kind, err.code })
    assert.matches("^cannot read tokens from .*: invalid JSON at byte 1", err.message)
    f = assert(io.open(path, "w"))
    f:write('{"version":-1}')
    f:close()
    tokens, err = flextell.token_file(path):load()
    assert.is_nil(tokens)
    assert.are.equal("cannot read tokens from " .. path .. ": version is not an integer >= 0", err.message)
  end)

  it("overwrites a file it cannot read when told to (version nil), and only then", function()
    local path = dir .. "/tokens.json"
    local f = assert(io.open(path, "w"))
    f:write('{"access_token":5}')
    f:close()
    local s = flextell.token_file(path)
    local _, err = s:save({ access_token = "a2" }, 3)
    assert.are.equal("cannot read tokens from " .. path .. ": access_token is not a string", err.message)
    assert.are.same({ true, 1 }, { s:save({ access_token = "a2" }, nil) })
    assert.are.same({ { access_token = "a2" }, 1 }, { s:load() })
  end)

  it("gives io_error when the folder does not exist, and never echoes a token", function()
    local s = flextell.token_file(dir .. "/missing/tokens.json")
    local ok, err = s:save({ access_token = "secret-a" }, 0)
    assert.is_nil(ok)
    assert.are.same({ "usage", "io_error" }, { err.kind, err.code })
    assert.are.equal("cannot open the lock file " .. dir .. "/missing/tokens.json.lock: No such file or directory",
      err.message)
    assert.is_nil(tostring(err):find("secret-a", 1, true))
    local lock
    lock, err = s:lock { ttl = 1 }
    assert.is_nil(lock)
    assert.are.equal("io_error", err.code)
  end)

  it("leaves no half-written file when a write fails (a file size limit)", function()
    local path = dir .. "/tokens.json"
    flextell.token_file(path):save(TOKENS, 0)
    local script = dir .. "/save.lua"
    local f = assert(io.open(script, "w"))
    f:write('local flextell = require "flextell"\n',
      'local ok, err = flextell.token_file(', string.format("%q", path), '):save({ access_token = "a2" }, 1)\n',
      'io.write(tostring(ok), " ", err and err.code or "", " ", err and err.message or "")\n')
    f:close()
    local out = sh("unset LD_PRELOAD; trap '' XFSZ; ulimit -f 0; LUA_PATH='" .. package.path .. "' LUA_CPATH='" ..
      package.cpath .. "' " .. arg[-1] .. " " .. script .. " 2>&1")
    assert.matches("^nil io_error cannot write " .. path:gsub("%p", "%%%0") .. "%.[%w_-]+%.tmp: File too large$", out)
    assert.are.same({ TOKENS, 1 }, { flextell.token_file(path):load() })
    assert.are.equal("save.lua\ntokens.json\ntokens.json.lock", sh("ls '" .. dir .. "'"))
  end)

  it("excludes two holders in one process (two tasks); a dead holder's lock lasts until its lease ends", function()
    local path = dir .. "/tokens.json"
    local a, b = flextell.token_file(path), flextell.token_file(path)
    local lock = assert(a:lock { ttl = 5 })
    assert.are.same({ nil, "busy" }, { b:lock { ttl = 5 } })
    lock:unlock()
    -- a process that holds the lock and is killed
    local script = dir .. "/hold.lua"
    local f = assert(io.open(script, "w"))
    f:write('local flextell = require "flextell"\n',
      'local lock = assert(flextell.token_file(', string.format("%q", path), '):lock { ttl = 1 })\n',
      'io.write("locked\\n") io.stdout:flush() os.execute("sleep 30")\n')
    f:close()
    local p = assert(io.popen("unset LD_PRELOAD; LUA_PATH='" .. package.path .. "' LUA_CPATH='" .. package.cpath ..
      "' exec " .. arg[-1] .. " " .. script .. " & echo $!; wait"))
    local pid = p:read("l")
    assert.are.equal("locked", p:read("l"))
    assert.are.same({ nil, "busy" }, { b:lock { ttl = 5 } })
    local t0 = require("flextell.core").time()
    os.execute("kill -9 " .. pid)
    p:close()
    -- the kernel dropped its lock, but its lease (1 s) still keeps others out
    assert.are.same({ nil, "busy" }, { b:lock { ttl = 5 } })
    local again
    repeat
      again = b:lock { ttl = 5 }
    until again or require("flextell.core").time() - t0 > 3
    assert.is_not_nil(again)
    assert.is_true(again:unlock())
    assert.is_false(again:unlock())
    -- given back properly, the lease is cleared: the next holder gets it at once
    assert(b:lock { ttl = 5 }):unlock()
  end)

  it("reads a file that is there but cannot be read as an error, not as no tokens", function()
    local path = dir .. "/tokens.json"
    os.execute("mkdir '" .. path .. "'") -- a folder in its place
    local tokens, err = flextell.token_file(path):load()
    assert.is_nil(tokens)
    assert.are.same({ "usage", "io_error" }, { err.kind, err.code })
    assert.are.equal("cannot read tokens from " .. path, err.message)
    tokens, err = flextell.token_file(dir .. "/missing/tokens.json"):load()
    assert.is_nil(tokens)
    assert.are.equal("cannot use " .. dir .. "/missing/tokens.json: its folder " .. dir .. "/missing does not exist",
      err.message)
    local cases = {
      ["[1,2,3]"] = "not a JSON object",
      ['{"access_token":5}'] = "access_token is not a string",
      ['{"access_token":"a","expires_at":"tomorrow"}'] = "expires_at is not a number >= 0",
    }
    for text, why in pairs(cases) do
      local f = assert(io.open(dir .. "/t.json", "w"))
      f:write(text)
      f:close()
      tokens, err = flextell.token_file(dir .. "/t.json"):load()
      assert.is_nil(tokens)
      assert.are.equal("cannot read tokens from " .. dir .. "/t.json: " .. why, err.message)
    end
  end)

  it("needs a path", function()
    assert.has_error(function() flextell.token_file(nil) end, "bad argument #1 to 'token_file' (path expected)")
    assert.has_error(function() flextell.token_file("") end, "bad argument #1 to 'token_file' (path expected)")
  end)

  it("keeps options() working: the store goes in as token_store", function()
    local s = flextell.token_file(dir .. "/tokens.json")
    local hook = function() end
    local opts = s:options { client_id = "cid", on_token = hook }
    assert.are.same({ client_id = "cid", on_token = hook, token_store = s }, opts)
  end)
end)

describe("the redis store", function()
  it("takes a command function instead of a connection", function()
    local conn = server:connect()
    local calls = {}
    local s = flextell.redis_store { key = "flextell:spec:command", command = function(cmd, ...)
      calls[#calls + 1] = cmd
      return conn:eval(...)
    end }
    assert.are.same({ true, 1 }, { s:save(TOKENS, 0) })
    assert.are.same({ TOKENS, 1 }, { s:load() })
    assert.are.same({ "EVAL", "EVAL" }, calls)
  end)

  it("refuses bad options", function()
    assert.has_error(function() flextell.redis_store { key = "k" } end,
      "redis_store: give exactly one of 'redis' (a connection) and 'command' (a function)")
    assert.has_error(function() flextell.redis_store { redis = {}, key = "k" } end,
      "redis_store: 'redis' must be a connection with an eval method")
    assert.has_error(function() flextell.redis_store { redis = server:connect() } end,
      "redis_store: 'key' must be a non-empty string")
    assert.has_error(function() flextell.redis_store { redis = server:connect(), key = "k", ttl = 1 } end,
      "redis_store: unknown option 'ttl'")
  end)

  it("gives network redis_error when the server is gone", function()
    local other = redis_server.start()
    local s = flextell.redis_store { redis = other:connect(), key = "k" }
    other:stop()
    local tokens, err = s:load()
    assert.is_nil(tokens)
    assert.are.same({ "network", "redis_error" }, { err.kind, err.code })
    assert.matches("^token store %(redis%): ", err.message)
    local ok
    ok, err = s:save(TOKENS, 0)
    assert.is_nil(ok)
    assert.are.equal("redis_error", err.code)
    ok, err = s:lock { ttl = 1 }
    assert.is_nil(ok)
    assert.are.equal("redis_error", err.code)
  end)

  it("keeps the tokens in a hash with the version, the lock beside it with an expiry", function()
    local conn = server:connect()
    local s = flextell.redis_store { redis = conn, key = "flextell:spec:layout" }
    s:save(TOKENS, 0)
    assert.are.equal("1", conn:hget("flextell:spec:layout", "version"))
    local lock = assert(s:lock { ttl = 5 })
    local pttl = conn:pttl("flextell:spec:layout:lock")
    assert.is_true(pttl > 4000 and pttl <= 5000, "pttl " .. tostring(pttl))
    lock:unlock()
    assert.is_false(conn:exists("flextell:spec:layout:lock"))
  end)
end)
