-- flextell.token_file: tokens kept on disk, saved atomically with mode 0600.
local flextell = require "flextell"

local function tmpdir()
  local p = assert(io.popen("mktemp -d"))
  local d = p:read("l")
  p:close()
  return d
end

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("\n$", ""))
end

describe("flextell.token_file", function()
  local dir

  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("loads nothing when there is no file yet", function()
    local store = flextell.token_file(dir .. "/tokens.json")
    local tokens, err = store:load()
    assert.is_nil(tokens)
    assert.is_nil(err)
  end)

  it("saves with mode 0600 and loads the same tokens back", function()
    local path = dir .. "/tokens.json"
    local store = flextell.token_file(path)
    assert.is_true(store:save { access_token = "a1", refresh_token = "r1", expires_at = 1767225600,
      token_type = "Bearer", scope = "customers:read" })
    assert.are.equal("600", sh("stat -c %a '" .. path .. "'"))
    assert.are.same({ access_token = "a1", refresh_token = "r1", expires_at = 1767225600, token_type = "Bearer",
      scope = "customers:read" }, store:load())
    assert.are.equal("tokens.json", sh("ls '" .. dir .. "'")) -- no temporary file left behind
  end)

  it("replaces the old file in one step", function()
    local path = dir .. "/tokens.json"
    local store = flextell.token_file(path)
    store:save { access_token = "a1" }
    local inode = sh("stat -c %i '" .. path .. "'")
    store:save { access_token = "a2" }
    assert.are_not.equal(inode, sh("stat -c %i '" .. path .. "'"))
    assert.are.equal("a2", store:load().access_token)
  end)

  it("returns an io_error when the folder does not exist", function()
    local store = flextell.token_file(dir .. "/missing/tokens.json")
    local ok, err = store:save { access_token = "secret-a" }
    assert.is_nil(ok)
    assert.are.equal("usage", err.kind)
    assert.are.equal("io_error", err.code)
    assert.matches("^cannot create " .. dir:gsub("%p", "%%%0") .. "/missing/tokens%.json%.[%w_-]+%.tmp: No such file",
      err.message)
    assert.is_nil(tostring(err):find("secret-a", 1, true))
  end)

  it("returns an io_error for a file that is not JSON", function()
    local path = dir .. "/tokens.json"
    local f = assert(io.open(path, "w"))
    f:write("not json")
    f:close()
    local tokens, err = flextell.token_file(path):load()
    assert.is_nil(tokens)
    assert.are.equal("io_error", err.code)
    assert.matches("^cannot read tokens from .*: invalid JSON at byte 1", err.message)
  end)

  it("fills client options and saves every change through on_token", function()
    local path = dir .. "/tokens.json"
    local store = flextell.token_file(path)
    store:save { access_token = "a1", refresh_token = "r1", expires_at = 2000000000 }
    local seen
    local opts = store:options { client_id = "cid", on_token = function(t) seen = t end }
    assert.are.equal("a1", opts.access_token)
    assert.are.equal("r1", opts.refresh_token)
    assert.are.equal(2000000000, opts.expires_at)
    assert.are.equal("cid", opts.client_id)
    opts.on_token { access_token = "a2", refresh_token = "r2" }
    assert.are.equal("a2", store:load().access_token)
    assert.are.equal("a2", seen.access_token)
    local client = flextell.new(opts)
    assert.are.same({ access_token = "a1", refresh_token = "r1", expires_at = 2000000000, token_type = "Bearer" },
      client:tokens())
  end)

  it("raises on a path that is not a string", function()
    assert.has_error(function() flextell.token_file(nil) end, "bad argument #1 to 'token_file' (path expected)")
  end)
end)
