-- A redis-server of the spec's own: loopback, a free port, its own directory, no persistence;
-- started and stopped by the spec. And lua-redis, the pure Lua client Debian packages for Lua
-- 5.1-5.3, which runs on 5.4 with its 5.3 path added.
--   local redis = require "spec.helpers.redis"
--   local server = redis.start()      -- server.port, server:connect(), server:stop()
local M = {}

if _VERSION == "Lua 5.4" and not package.path:find("/usr/share/lua/5.3/", 1, true) then
  package.path = package.path .. ";/usr/share/lua/5.3/?.lua;/usr/share/lua/5.3/?/init.lua"
end
M.path = package.path

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function busy_ports()
  local busy = {}
  for _, file in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    local f = io.open(file)
    if f then
      for port, st in f:read("a"):gmatch("%x+:(%x%x%x%x) %x+:%x+ (%x%x)") do
        if st == "0A" then busy[tonumber(port, 16)] = true end
      end
      f:close()
    end
  end
  return busy
end

local Server = {}
Server.__index = Server

function Server:connect()
  local redis = require "redis"
  return redis.connect("127.0.0.1", self.port)
end

function Server:stop()
  if self.stopped then return end
  self.stopped = true
  sh("kill $(cat '" .. self.dir .. "/redis.pid') 2>/dev/null; sleep 0.2; rm -rf '" .. self.dir .. "'")
end

function M.start()
  local _, dir = sh("mktemp -d")
  dir = dir:gsub("%s+$", "")
  local busy = busy_ports()
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000)
  for _ = 1, 20 do
    local port = math.random(20000, 60000)
    if not busy[port] then
      local ok, out = sh(("redis-server --port %d --bind 127.0.0.1 --dir '%s' --save '' --appendonly no " ..
        "--daemonize yes --pidfile '%s/redis.pid' --logfile '%s/redis.log'"):format(port, dir, dir, dir))
      if not ok then error("redis-server did not start: " .. out) end
      local server = setmetatable({ port = port, dir = dir }, Server)
      for _ = 1, 100 do
        local conn_ok, conn = pcall(Server.connect, server)
        if conn_ok and conn:ping() then
          conn:quit()
          return server
        end
        sh("sleep 0.05")
      end
      -- the port was taken after all (the daemon exits when it cannot listen): another one
      sh("kill $(cat '" .. dir .. "/redis.pid' 2>/dev/null) 2>/dev/null")
      busy[port] = true
    end
  end
  error("no free port for redis-server")
end

return M
