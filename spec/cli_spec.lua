-- bin/flextell-sandbox: start prints exports for a running sandbox, stop ends it.
local flextell = require "flextell"

-- Output and success of a command (the exit status read from the shell: on LuaJIT a pipe's
-- close() does not report it).
local function sh(cmd)
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)exit=(%d+)%s*$")
  return body, code == "0"
end

describe("bin/flextell-sandbox", function()
  it("starts a sandbox in the background and stops it", function()
    local out, ok = sh("bin/flextell-sandbox start")
    assert.is_truthy(ok, out)
    local env = {}
    for k, v in out:gmatch("export ([%w_]+)=(%S+)") do env[k] = v:gsub("^'(.*)'$", "%1") end
    assert.matches("^http://127%.0%.0%.1:%d+/api$", env.FLEXTELL_SANDBOX_URL)
    assert.are.equal("sandbox-token", env.FLEXTELL_SANDBOX_TOKEN)
    local client = flextell.new { base_url = env.FLEXTELL_SANDBOX_URL, token = env.FLEXTELL_SANDBOX_TOKEN }
    assert.are.equal(1, assert(client:get("/v1/customers/1")).id)
    client:close()
    local _, stopped = sh("bin/flextell-sandbox stop '" .. env.FLEXTELL_SANDBOX_PREFIX .. "'")
    assert.is_truthy(stopped)
    local dir = io.open(env.FLEXTELL_SANDBOX_PREFIX .. "/nginx.conf")
    assert.is_nil(dir)
    local _, err = flextell.new { base_url = env.FLEXTELL_SANDBOX_URL, token = "t", max_retries = 0 }:get("/x")
    assert.are.equal("connect_failed", err.code)
  end)

  it("explains its usage", function()
    local out, ok = sh("bin/flextell-sandbox bogus")
    assert.is_falsy(ok)
    assert.matches("usage: flextell%-sandbox run", out)
  end)
end)
