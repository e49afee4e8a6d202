-- The curl command, as the API's documentation shows it: one process per call (started here
-- from Lua 5.4, the output read back and decoded by lua-cjson, as a script gluing curl would).
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local common = dofile(here .. "common.lua")
local cjson = require "cjson"

local a = common.args()
local auth = "'Authorization: Bearer " .. tostring(a.token):gsub("'", "'\\''") .. "'"

local function fetch(url)
  local p = assert(io.popen("curl -sS --fail -H " .. auth .. " -H 'Accept: application/json' '" ..
    url:gsub("'", "'\\''") .. "'"))
  local body = p:read("a")
  if not p:close() then error("curl failed on " .. url) end
  return cjson.decode(body)
end

common.run(a, fetch, cjson.decode)
