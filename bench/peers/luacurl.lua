-- LuaJIT + Debian's lua-curl (the luacurl 0.3 binding, module `curl`) + lua-cjson: one easy
-- handle kept alive, the body gathered by a Lua write callback, the status read from the
-- status line (this binding has no getinfo), the body decoded by cjson.
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local common = dofile(here .. "common.lua")
local curl = require "curl"
local cjson = require "cjson"

local a = common.args()
local e = curl.easy_init()
e:setopt(curl.OPT_HTTPHEADER, { "Authorization: Bearer " .. tostring(a.token), "Accept: application/json" })
local parts, n, status = {}, 0, nil
e:setopt(curl.OPT_WRITEFUNCTION, function(s, len)
  n = n + 1
  parts[n] = s
  return len
end)
e:setopt(curl.OPT_HEADERFUNCTION, function(s, len)
  local code = s:match("^HTTP/%S+ (%d%d%d)")
  if code then status = tonumber(code) end
  return len
end)

local function fetch(url)
  n, status = 0, nil
  e:setopt(curl.OPT_URL, url)
  local code, err = e:perform()
  if code ~= 0 then error("GET " .. url .. ": " .. tostring(err)) end
  if status ~= 200 then error("GET " .. url .. ": HTTP " .. tostring(status)) end
  local body = table.concat(parts, "", 1, n)
  return cjson.decode(body)
end

common.run(a, fetch, cjson.decode)
