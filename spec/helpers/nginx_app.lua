-- An nginx of the spec's own that runs app code calling the API through the library (the
-- nginx driver): loopback, a free port, its own prefix, started and stopped by the spec.
--   local app = require("spec.helpers.nginx_app").start { workers = 2, http = "...", server = "..." }
--   app.url, app:get(path) -> status, body, seconds; app:stop()
-- `http` is put in the http block (lua_shared_dict, resolver, init_worker_by_lua...), `server`
-- in the server block (locations). The library comes from this tree: lua/ and build/luajit/.
-- Or `conf = function(port, root) return text end` gives the whole configuration, and `port`
-- the port to listen on.
local launcher = require "flextell.sandbox"

local M = {}

local function sh(cmd)
  local p = assert(io.popen("{ " .. cmd .. "; } 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local App = {}
App.__index = App

function App:stop()
  if self.stopped then return end
  self.stopped = true
  sh(("%s -p '%s' -c '%s/nginx.conf' -e '%s/logs/error.log' -s stop; sleep 0.2"):format(self.nginx, self.prefix,
    self.prefix, self.prefix))
  sh(("pkill -9 -f 'nginx.*%s' ; rm -rf '%s'"):format(self.prefix, self.prefix))
end

--- app:get(path) -> status, body, seconds (curl's own figures)
function App:get(path)
  local _, out = sh(("curl -s -m 20 -o %s/body -w '%%{http_code} %%{time_total}' 'http://127.0.0.1:%d%s'")
    :format(self.prefix, self.port, path))
  local status, took = out:match("(%d+) ([%d.]+)")
  local f = io.open(self.prefix .. "/body")
  local body = f and f:read("a") or ""
  if f then f:close() end
  return tonumber(status), body, tonumber(took)
end

--- The error log, for a failing spec's message.
function App:log()
  local f = io.open(self.prefix .. "/logs/error.log")
  local text = f and f:read("a") or ""
  if f then f:close() end
  return text
end

function M.start(opts)
  local nginx, modules = assert(launcher.nginx())
  local _, prefix = sh("mktemp -d")
  prefix = prefix:gsub("%s+$", "")
  sh("mkdir -p '" .. prefix .. "/logs' '" .. prefix .. "/tmp'")
  local root = os.getenv("PWD")
  for _ = 1, 5 do
    local port = opts.port or launcher.free_port()
    local _, uid = sh("id -u")
    local conf = opts.conf and ((uid:match("^0") and "user root;\n" or "") .. opts.conf(port, root)) or table.concat({
      uid:match("^0") and "user root;" or "", -- workers that can read the spec's files
      "daemon on;", "master_process on;",
      ("worker_processes %d;"):format(opts.workers or 1),
      ("pid '%s/logs/nginx.pid';"):format(prefix),
      ("error_log '%s/logs/error.log' info;"):format(prefix),
      modules,
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      ("  client_body_temp_path '%s/tmp';"):format(prefix),
      ("  lua_package_path '%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;;';"):format(root, root, root),
      ("  lua_package_cpath '%s/build/luajit/?.so;;';"):format(root),
      opts.http or "",
      "  server {",
      ("    listen 127.0.0.1:%d;"):format(port),
      "    location = /ping { content_by_lua_block { ngx.say('pong') } }",
      opts.server or "",
      "  }",
      "}",
    }, "\n")
    local f = assert(io.open(prefix .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    -- -e: the log from the start on goes to the file, so no daemon keeps this pipe open
    local ok, out = sh(("%s -p '%s' -c '%s/nginx.conf' -e '%s/logs/error.log'"):format(nginx, prefix, prefix, prefix))
    if not ok then out = out .. App.log({ prefix = prefix }) end
    if ok then
      local app = setmetatable({ nginx = nginx, prefix = prefix, port = port,
        url = "http://127.0.0.1:" .. port }, App)
      for _ = 1, 50 do
        if (app:get("/ping") or 0) > 0 then return app end -- any answer: it listens
        sh("sleep 0.05")
      end
      app:stop()
      error("the app's nginx did not answer: " .. app:log())
    end
    if not out:find("in use", 1, true) then error("nginx did not start: " .. out) end
  end
  error("no free port for the app's nginx")
end

return M
