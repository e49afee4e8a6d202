-- Run with LUA_PATH/LUA_CPATH pointing only at an installed tree: the module loads from there
-- and works, and the sandbox's server modules are installed beside it.
local flextell = require "flextell"
local prepared = assert(flextell.new { token = "t" }:prepare { path = "/x" })
assert(prepared.url == "https://dev.flextell.ai/api/x")
assert(package.searchpath("flextell.sandbox.app", package.path), "sandbox modules missing")
print(arg[1] .. ": ok, flextell " .. flextell._VERSION .. " from " .. package.searchpath("flextell", package.path))
