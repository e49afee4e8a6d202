-- Lua 5.4 + Lua-cURLv3 (module `cURL`, built from a source tree given by LUACURLV3_SRC) +
-- lua-cjson: one easy handle kept alive, the body gathered by a Lua write callback, decoded by cjson.
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local common = dofile(here .. "common.lua")
local cURL = require "cURL"
local cjson = require "cjson"

local a = common.args()
local parts, n = {}, 0
local e = cURL.easy {
  httpheader = { "Authorization: Bearer " .. tostring(a.token), "Accept: application/json" },
  writefunction = function(s)
    n = n + 1
    parts[n] = s
    return #s
  end,
}

local function fetch(url)
  n = 0
  e:setopt_url(url)
  e:perform()
  local status = e:getinfo_response_code()
  if status ~= 200 then error("GET " .. url .. ": HTTP " .. tostring(status)) end
  return cjson.decode(table.concat(parts, "", 1, n))
end

common.run(a, fetch, cjson.decode)
