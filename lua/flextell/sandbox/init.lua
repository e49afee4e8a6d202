-- flextell.sandbox: starts and stops the local Flextell-compatible server (nginx + the Lua module)
-- that the specs, the demo and the benchmarks run against. Plain Lua for lua5.4 and LuaJIT: it
-- only writes files and runs nginx, openssl and curl through the shell.

--- A local Flextell-compatible server for specs, demos and benchmarks.
-- nginx with the Lua module on loopback ports: the whole API contract with seed data, OAuth with
-- a consent page, rate limits, tenants, and scripted faults. See docs/sandbox.md.
-- @module flextell.sandbox
-- @usage local sandbox = require "flextell.sandbox"
-- local sb = assert(sandbox.start { tls = true })
-- local client = flextell.new { base_url = sb.url, token = sb.token }
-- sb:stop()
local io, os, string, table, math = io, os, string, table, math
local type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable, error =
  type, tostring, tonumber, pairs, ipairs, setmetatable, getmetatable, error
local concat, format = table.concat, string.format

-- the library's own codec: integers stay integers whatever lua-cjson is installed
local core = require "flextell.core"
local json = { encode = core.json_encode, decode = core.json_decode }

local M = {}
--- The library's version (the sandbox ships with it).
M._VERSION = core._VERSION

--- Starting and attaching.
-- @section start

local DEFAULTS = {
  tls = true,
  prefix = nil,
  token_ttl = 3600,
  code_ttl = 60,
  refresh_ttl = 30 * 24 * 3600,
  rate_limit = 1000,
  rate_window = 60,
  auto_approve = false,
  tokens = { "sandbox-token" },
  quiet = true,
  port = nil,
  tls_port = nil,
  proxy_port = nil,
  watch = true,
  log_level = "warn",
}

local CLIENT = {
  client_id = "sandbox-client",
  client_secret = "sandbox-secret",
  redirect_uri = "http://127.0.0.1/callback",
}

-- OAuth clients as the server keeps them (state.lua is plain Lua outside nginx too); nil gives
-- the one default client.
local function normalize_clients(list)
  if list == nil then
    list = { { client_id = CLIENT.client_id, client_secret = CLIENT.client_secret,
      redirect_uri = CLIENT.redirect_uri, name = "Sandbox Client" } }
  end
  return require("flextell.sandbox.state").normalize_clients(list)
end

-- shell helpers ---------------------------------------------------------------------------

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Child processes (nginx, openssl, curl) must not inherit a sanitizer runtime preloaded into
-- this interpreter by the memory-checking test runs.
local function clean_env(cmd)
  return "unset LD_PRELOAD; " .. cmd
end

-- os.execute returns a status number on Lua 5.1/LuaJIT and true/nil on 5.2+.
local function run(cmd)
  local a, _, code = os.execute(clean_env(cmd))
  if type(a) == "number" then return a == 0 end
  return a == true and (code == nil or code == 0)
end

local function capture(cmd)
  local p = io.popen(clean_env(cmd), "r")
  if not p then return nil end
  local out = p:read("*a")
  p:close()
  return out
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, data)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return true
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function tail(path, n)
  local s = read_file(path)
  if not s or s == "" then return "" end
  local lines = {}
  for line in s:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return concat(lines, "\n", math.max(1, #lines - n + 1))
end


local function random_u32()
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(4)
    f:close()
    if b and #b == 4 then
      local x1, x2, x3, x4 = b:byte(1, 4)
      return ((x1 * 256 + x2) * 256 + x3) * 256 + x4
    end
  end
  return math.floor(os.time() + os.clock() * 1e6) % 4294967296
end

-- where things are --------------------------------------------------------------------------

-- The directory that holds flextell/sandbox/*.lua, absolute: nginx's lua_package_path points
-- there, so a checkout runs its own server code and an installed copy runs the installed one.
local function lua_root()
  local src = debug.getinfo(1, "S").source
  local dir = src:match("^@(.*)flextell[/\\]sandbox[/\\]init%.lua$")
  if not dir then
    local path = package.searchpath and package.searchpath("flextell.sandbox.app", package.path)
    dir = path and path:match("^(.*)flextell[/\\]sandbox[/\\]app%.lua$")
  end
  if not dir then return nil, "cannot locate the flextell/sandbox directory" end
  if dir == "" then dir = "./" end
  if dir:sub(1, 1) ~= "/" then
    local cwd = (capture("pwd") or ""):gsub("%s+$", "")
    dir = cwd .. "/" .. dir:gsub("^%./", "")
  end
  return dir
end

local function find_nginx()
  local env = os.getenv("FLEXTELL_NGINX")
  if env and env ~= "" then return env end
  local out = capture('PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin:/usr/local/openresty/nginx/sbin" ' ..
    "command -v nginx openresty 2>/dev/null")
  local path = out and out:match("[^\n]+")
  if not path then return nil, "nginx not found (install nginx and libnginx-mod-http-lua, or set FLEXTELL_NGINX)" end
  return path
end

-- load_module lines for a distribution nginx whose Lua module is dynamic; none when the binary
-- has it built in (OpenResty).
local function module_lines(nginx)
  local v = capture(quote(nginx) .. " -V 2>&1") or ""
  if v:find("lua%-nginx%-module") or v:find("openresty") then return "" end
  local dirs = {}
  local env = os.getenv("FLEXTELL_NGINX_MODULES")
  if env and env ~= "" then dirs[#dirs + 1] = env end
  local mp = v:match("%-%-modules%-path=(%S+)")
  if mp then dirs[#dirs + 1] = mp end
  local np = v:match("%-%-prefix=(%S+)")
  if np then dirs[#dirs + 1] = np .. "/modules" end
  for _, d in ipairs(dirs) do
    if exists(d .. "/ngx_http_lua_module.so") then
      local lines = {}
      if exists(d .. "/ndk_http_module.so") then
        lines[#lines + 1] = format('load_module "%s/ndk_http_module.so";', d)
      end
      lines[#lines + 1] = format('load_module "%s/ngx_http_lua_module.so";', d)
      return concat(lines, "\n")
    end
  end
  return nil, "nginx's Lua module (ngx_http_lua_module.so) not found: install libnginx-mod-http-lua " ..
    "or set FLEXTELL_NGINX_MODULES"
end

local function ipv6_loopback()
  local s = read_file("/proc/net/if_inet6")
  return s ~= nil and s:find("00000000000000000000000000000001", 1, true) ~= nil
end

-- Ports something already listens on, so a random pick rarely collides (nginx takes 2.5 s to
-- give up on a busy port).
local function busy_ports()
  local busy = {}
  for _, file in ipairs({ "/proc/net/tcp", "/proc/net/tcp6" }) do
    local s = read_file(file)
    if s then
      for port, st in s:gmatch("%x+:(%x%x%x%x) %x+:%x+ (%x%x)") do
        if st == "0A" then busy[tonumber(port, 16)] = true end
      end
    end
  end
  return busy
end

local function pick_port(taken)
  local busy = busy_ports()
  for _ = 1, 200 do
    local p = 20000 + random_u32() % 41000
    if not busy[p] and not taken[p] then return p end
  end
  return 20000 + random_u32() % 41000
end

-- TLS --------------------------------------------------------------------------------------

-- A throw-away CA and a server certificate for 127.0.0.1, ::1 and localhost, all inside the prefix.
local function make_certs(dir)
  local ext = concat({
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature,keyEncipherment",
    "extendedKeyUsage=serverAuth",
    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid,issuer",
  }, "\n") .. "\n"
  assert(write_file(dir .. "/server.ext", ext))
  local q = function(name) return quote(dir .. "/" .. name) end
  local env = "RANDFILE=" .. q(".rnd") .. " "
  local cmds = {
    env .. "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 30" ..
      " -subj '/CN=lua-flextell sandbox CA' -keyout " .. q("ca.key") .. " -out " .. q("ca.pem") ..
      " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'" ..
      " -addext 'subjectKeyIdentifier=hash'",
    env .. "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost'" ..
      " -keyout " .. q("server.key") .. " -out " .. q("server.csr"),
    env .. "openssl x509 -req -sha256 -days 30 -in " .. q("server.csr") .. " -CA " .. q("ca.pem") ..
      " -CAkey " .. q("ca.key") .. format(" -set_serial 0x%08x%08x", random_u32(), random_u32()) ..
      " -extfile " .. q("server.ext") .. " -out " .. q("server.pem"),
  }
  for _, cmd in ipairs(cmds) do
    if not run(cmd .. " >>" .. q("openssl.log") .. " 2>&1") then
      return nil, "openssl failed: " .. tail(dir .. "/openssl.log", 5)
    end
  end
  return {
    ca_file = dir .. "/ca.pem",
    cert = dir .. "/server.pem",
    key = dir .. "/server.key",
  }
end

-- nginx.conf ---------------------------------------------------------------------------------

local function lua_string(s)
  return "[==[" .. s .. "]==]"
end

local function nginx_conf(h, o, modules, root, user_root, v6)
  local p = h.prefix
  local function listen(port, extra)
    local l = { format("    listen 127.0.0.1:%d%s;", port, extra) }
    if v6 then l[2] = format("    listen [::1]:%d%s;", port, extra) end
    return concat(l, "\n")
  end
  local location = [[
    location / {
      content_by_lua_block { require("flextell.sandbox.app").run() }
    }]]
  local lines = {
    "# Written by flextell.sandbox for one sandbox run; everything it uses lives under this prefix.",
    user_root and "user root;" or "",
    "worker_processes 1;",
    "daemon on;",
    "master_process on;",
    format('pid "%s/logs/nginx.pid";', p),
    format('lock_file "%s/logs/nginx.lock";', p),
    format('error_log "%s/logs/error.log" %s;', p, o.log_level),
    modules,
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    "  server_tokens off;",
    format('  client_body_temp_path "%s/tmp/body";', p),
    format('  proxy_temp_path "%s/tmp/proxy";', p),
    format('  fastcgi_temp_path "%s/tmp/fastcgi";', p),
    format('  uwsgi_temp_path "%s/tmp/uwsgi";', p),
    format('  scgi_temp_path "%s/tmp/scgi";', p),
    "  client_max_body_size 256m;",
    "  client_body_buffer_size 1m;",
    "  keepalive_requests 100000;",
    -- the reset fault ends with 444: with this, nginx closes with RST instead of FIN
    "  reset_timedout_connection on;",
    "  lua_socket_log_errors off;",
    format('  lua_package_path "%s?.lua;%s?/init.lua;;";', root, root),
    format("  init_by_lua_block { require(\"flextell.sandbox.app\").init(%s) }",
      lua_string(p .. "/conf/sandbox.json")),
    '  init_worker_by_lua_block { require("flextell.sandbox.app").init_worker() }',
    '  log_by_lua_block { require("flextell.sandbox.app").finished() }',
    "  server {",
    listen(h.port, ""),
    location,
    "  }",
    "  server {",
    listen(h.redirect_port, ""),
    "    location / {",
    '      content_by_lua_block { require("flextell.sandbox.app").run("trap") }',
    "    }",
    "  }",
    -- nginx refuses CONNECT before any handler runs; these bring the refusal to Lua, which
    -- answers and logs it
    "  server {",
    listen(h.proxy_port, ""),
    "    error_page 400 = /.proxy-refused/400;",
    "    error_page 405 = /.proxy-refused/405;",
    "    location / {",
    '      content_by_lua_block { require("flextell.sandbox.app").run("proxy") }',
    "    }",
    "  }",
  }
  if h.tls_port then
    local more = {
      "  server {",
      listen(h.tls_port, " ssl"),
      format('    ssl_certificate "%s";', h.cert),
      format('    ssl_certificate_key "%s";', h.key),
      "    ssl_protocols TLSv1.2 TLSv1.3;",
      '    ssl_certificate_by_lua_block { require("flextell.sandbox.app").handshake() }',
      location,
      "  }",
    }
    for _, l in ipairs(more) do lines[#lines + 1] = l end
  end
  lines[#lines + 1] = "}"
  return concat(lines, "\n") .. "\n"
end

-- process control ------------------------------------------------------------------------------

-- A zombie still answers kill -0; /proc tells it apart, where there is a /proc.
local SH_ALIVE = [[alive() { kill -0 "$1" 2>/dev/null || return 1; ]] ..
  [[if [ -r "/proc/$1/stat" ]; then read -r s < "/proc/$1/stat"; case "${s##*) }" in Z*) return 1;; esac; fi; ]] ..
  [[return 0; }; ]]

-- Fast shutdown of the master, then of anything that survived; waits until they are gone.
local function stop_script(prefix)
  local logs = quote(prefix .. "/logs")
  return SH_ALIVE ..
    "m=$(cat " .. logs .. "/nginx.pid 2>/dev/null); w=$(cat " .. logs .. "/worker.pid 2>/dev/null); " ..
    'if [ -n "$m" ]; then kill -TERM "$m" 2>/dev/null; i=0; ' ..
    'while alive "$m" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ' ..
    'alive "$m" && kill -KILL "$m" 2>/dev/null; fi; ' ..
    'if [ -n "$w" ]; then i=0; while alive "$w" && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; ' ..
    'alive "$w" && kill -KILL "$w" 2>/dev/null; fi; true'
end

local function kill_nginx(prefix)
  return run("sh -c " .. quote(stop_script(prefix)) .. " >/dev/null 2>&1")
end

-- A watchdog shell that stops nginx when the owning Lua process dies without calling stop
-- (a crashed or killed spec run), so no nginx outlives its owner.
local function spawn_watchdog(h)
  local owner = (capture("echo $PPID") or ""):match("%d+")
  if not owner then return end
  local mark = quote(h.prefix .. "/.watched")
  local cleanup = h.remove_prefix and ("rm -rf " .. quote(h.prefix)) or ("rm -f " .. mark)
  local script = "trap '' INT HUP TERM; " .. SH_ALIVE ..
    "while alive " .. owner .. " && [ -e " .. mark .. " ]; do sleep 1; done; " ..
    "if [ -e " .. mark .. " ]; then " .. stop_script(h.prefix) .. "; " .. cleanup .. "; fi"
  write_file(h.prefix .. "/.watched", owner .. "\n")
  run("sh -c " .. quote(script) .. " </dev/null >/dev/null 2>&1 &")
end

-- the handle -----------------------------------------------------------------------------------

--- A running sandbox, from `start` or `attach`.
-- Its fields: `url`, `origin`, `https_url`, `https_origin` and `ca_file` (with `tls`), `token`,
-- `tokens`, `prefix`, `client_id`, `client_secret`, `redirect_uri` (the first client's), `clients`,
-- `port`, `tls_port`, `redirect_port`, `redirect_origin`, `proxy_port`, `proxy_url`.
-- @type Sandbox
local Sandbox = {}
Sandbox.__index = Sandbox
Sandbox.__name = "flextell.Sandbox"

function Sandbox:__tostring()
  return format("flextell.Sandbox (%s%s)", self.url, self.stopped and ", stopped" or "")
end

-- Argument i of method name must be of type want (or nil, when optional): raises at the
-- method's caller.
local function check_arg(name, i, v, want, optional)
  if type(v) ~= want and not (optional and v == nil) then
    error("bad argument #" .. i .. " to '" .. name .. "' (" .. want .. " expected, got " .. type(v) .. ")", 3)
  end
end

local function percent(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return format("%%%02X", c:byte()) end))
end

--- Any call of the control API (`/_sandbox/`).
-- HTTP to the control API: decoded JSON (true for 204), or nil, err.
-- @tparam string method the HTTP method
-- @tparam string path `/_sandbox/...`, or a path relative to it
-- @param[opt] body a table (sent as JSON) or a string
-- @return[1] the decoded JSON answer, or `true` for 204
-- @return[2] nil, err (a string)
function Sandbox:control(method, path, body)
  check_arg("control", 1, method, "string")
  check_arg("control", 2, path, "string")
  if body ~= nil and type(body) ~= "table" and type(body) ~= "string" then
    error("bad argument #3 to 'control' (table or string expected, got " .. type(body) .. ")", 2)
  end
  if self.stopped then return nil, "the sandbox is stopped" end
  if path:sub(1, 1) ~= "/" then path = "/_sandbox/" .. path end
  local cmd = { "curl -sS --noproxy '*' --max-time 30 -X", quote(method:upper()),
    "-H 'Accept: application/json'", "-w '\\n%{http_code}'" }
  if body ~= nil then
    local text = type(body) == "string" and body or json.encode(body)
    if not text then return nil, "cannot encode the control request body" end
    cmd[#cmd + 1] = "-H 'Content-Type: application/json' --data-binary " .. quote(text)
  end
  cmd[#cmd + 1] = quote(self.origin .. path)
  local out = capture(concat(cmd, " ") .. " 2>&1")
  local text, status = (out or ""):match("^(.*)\n(%d%d%d)$")
  status = tonumber(status)
  if not status or status == 0 then
    return nil, format("control %s %s failed: %s", method, path, (out or ""):gsub("%s+$", ""))
  end
  if status == 204 then return true end
  local decoded = json.decode(text)
  if status >= 300 then
    local msg = type(decoded) == "table" and decoded.message or text
    return nil, format("control %s %s: HTTP %d: %s", method, path, status, tostring(msg)), decoded
  end
  if decoded == nil then return nil, "control " .. path .. ": response is not JSON" end
  return decoded
end

--- Puts the seed data back; clears the request log, rate windows, faults and OAuth state.
-- @return[1] true
-- @return[2] nil, err
function Sandbox:reset()
  local ok, err = self:control("POST", "/_sandbox/reset")
  if not ok then return nil, err end
  return true
end

--- Arms a fault for the next matching requests (see Faults in docs/sandbox.md).
-- @tparam table fault such as `{ path = "/api/v1/customers", fault = "status", status = 503 }`
-- @return[1] the armed fault
-- @return[2] nil, err
function Sandbox:arm(fault)
  check_arg("arm", 1, fault, "table")
  local res, err = self:control("POST", "/_sandbox/faults", fault)
  if not res then return nil, err end
  return res.fault
end

local REQUEST_FILTERS -- the filters of requests() and their types (set below it)

--- The requests the server saw.
-- filter: { method =, path =, match =, since =, proxied = } -> { count = N, requests = {...} }
-- @tparam[opt] table filter `method`, `path`, `match` (strings), `since` (a number), `proxied`
--   (a boolean: only what came through the proxy)
-- @return[1] `{ count = N, requests = {...} }`
-- @return[2] nil, err
-- @raise on an unknown filter, or one of the wrong type
function Sandbox:requests(filter)
  check_arg("requests", 1, filter, "table", true)
  for k, v in pairs(filter or {}) do
    local want = REQUEST_FILTERS[k]
    if not want then error("sb:requests: unknown filter '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then error("sb:requests: filter '" .. k .. "' must be a " .. want .. ", got " .. type(v), 2) end
  end
  local q = {}
  for _, k in ipairs({ "method", "path", "match", "since", "proxied" }) do
    if filter and filter[k] ~= nil then q[#q + 1] = k .. "=" .. percent(filter[k]) end
  end
  return self:control("GET", "/_sandbox/requests" .. (#q > 0 and ("?" .. concat(q, "&")) or ""))
end
REQUEST_FILTERS = { method = "string", path = "string", match = "string", since = "number", proxied = "boolean" }

--- Reads the server's configuration, or changes it.
-- @tparam[opt] table t settings to change, such as `{ rate_limit = 5 }`; without it, only reads
-- @return[1] the effective configuration
-- @return[2] nil, err
function Sandbox:config(t)
  check_arg("config", 1, t, "table", true)
  local res, err
  if t == nil then
    res, err = self:control("GET", "/_sandbox/config")
  else
    res, err = self:control("POST", "/_sandbox/config", t)
  end
  if not res then return nil, err end
  return res.config
end

-- OAuth ----------------------------------------------------------------------------------------

--- GET /_sandbox/oauth.
-- The server's OAuth state: settings, clients, grant and token counts.
-- @return[1] the decoded state
-- @return[2] nil, err
function Sandbox:oauth()
  return self:control("GET", "/_sandbox/oauth")
end

--- Expires every live access token now.
-- Expires every current access token at once (opts.refresh: refresh tokens too); returns the
-- counts { access_tokens = N, refresh_tokens = M }.
-- @tparam[opt] table opts `refresh = true` to expire refresh tokens too
-- @return[1] the counts
-- @return[2] nil, err
function Sandbox:expire_tokens(opts)
  check_arg("expire_tokens", 1, opts, "table", true)
  for k, v in pairs(opts or {}) do
    if k ~= "refresh" then error("sb:expire_tokens: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= "boolean" then error("sb:expire_tokens: option 'refresh' must be a boolean, got " .. type(v), 2) end
  end
  return self:control("POST", "/_sandbox/oauth/expire", { refresh = opts and opts.refresh or false })
end

local function encode_query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    if params[k] ~= false then parts[#parts + 1] = percent(k) .. "=" .. percent(params[k]) end
  end
  return concat(parts, "&")
end

--- Builds an authorize URL, for `approve` or `deny`.
-- An authorize URL for the first client: response_type, client_id and redirect_uri filled in,
-- every other parameter from `params` (false leaves a default out); origin defaults to sb.origin.
-- @tparam[opt] table params such as `{ scope = "customers:read", state = "s" }`
-- @tparam[opt] string origin
-- @treturn string the URL
function Sandbox:authorize_url(params, origin)
  check_arg("authorize_url", 1, params, "table", true)
  check_arg("authorize_url", 2, origin, "string", true)
  local q = { response_type = "code", client_id = self.client_id, redirect_uri = self.redirect_uri }
  for k, v in pairs(params or {}) do q[k] = v end
  return (origin or self.origin) .. "/oauth/authorize?" .. encode_query(q)
end

local function unpercent(s)
  return (s:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function query_of(url)
  local t = {}
  local q = url:match("%?([^#]*)")
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[unpercent(k)] = unpercent(v)
  end
  return t
end

-- One request with the curl CLI, redirects not followed: status, headers (lower-case), body.
local function fetch(self, method, url, form)
  local hfile, bfile = os.tmpname(), os.tmpname()
  local cmd = { "curl -sS --noproxy '*' --max-time 30 -X", quote(method), "-D", quote(hfile), "-o", quote(bfile),
    "-w '%{http_code}'" }
  if url:match("^https:") and self.ca_file then cmd[#cmd + 1] = "--cacert " .. quote(self.ca_file) end
  if form then
    cmd[#cmd + 1] = "-H 'Content-Type: application/x-www-form-urlencoded' --data-binary " .. quote(form)
  end
  cmd[#cmd + 1] = quote(url)
  local out = capture(concat(cmd, " ") .. " 2>&1") or ""
  local res = { status = tonumber(out:match("(%d%d%d)$")), headers = {}, body = read_file(bfile) or "" }
  for line in (read_file(hfile) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then res.headers[k:lower()] = v end
  end
  os.remove(hfile)
  os.remove(bfile)
  if not res.status or res.status == 0 then
    return nil, format("%s %s failed: %s", method, url, out:gsub("%s+$", ""))
  end
  return res
end

local function html_unescape(s)
  return (s:gsub("&quot;", '"'):gsub("&#39;", "'"):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&amp;", "&"))
end

-- What a user does in the browser: open the authorize URL, then press the consent page's
-- button. Returns the final redirect URL (never followed) and its decoded query.
local function consent(self, authorize_url, decision)
  local res, err = fetch(self, "GET", authorize_url)
  if not res then return nil, err end
  if res.status >= 300 and res.status < 400 and res.headers.location then
    if decision == "deny" then
      return nil, "the sandbox auto-approved: there was no consent page to deny"
    end
    return res.headers.location, query_of(res.headers.location)
  end
  local id = res.status == 200 and res.body:match('name="consent_id" value="([^"]*)"')
  if not id then
    local code = res.body:match('<code id="error">([^<]*)</code>') or ""
    local desc = res.body:match('<p id="error_description">([^<]*)</p>') or ""
    return nil, format("authorize: HTTP %d %s: %s", res.status, html_unescape(code), html_unescape(desc))
  end
  local action = html_unescape(res.body:match('<form[^>]-action="([^"]*)"') or "/oauth/authorize")
  local origin = authorize_url:match("^(%a+://[^/?#]+)")
  res, err = fetch(self, "POST", origin .. action,
    "consent_id=" .. percent(html_unescape(id)) .. "&decision=" .. decision)
  if not res then return nil, err end
  local location = res.headers.location
  if res.status < 300 or res.status >= 400 or not location then
    return nil, format("consent: HTTP %d without a redirect", res.status)
  end
  return location, query_of(location)
end

--- Does what a user does: opens the authorize URL and presses Approve on the consent page.
-- Under `auto_approve` it takes the redirect. HTTPS URLs are fetched with `sb.ca_file`.
-- @tparam string authorize_url
-- @treturn[1] string the final redirect URL (not followed), with the code and state
-- @treturn[1] table its decoded query, `{ code =, state = }`
-- @return[2] nil, err
function Sandbox:approve(authorize_url)
  check_arg("approve", 1, authorize_url, "string")
  return consent(self, authorize_url, "approve")
end

--- Opens the authorize URL and presses Deny on the consent page.
-- @tparam string authorize_url
-- @treturn[1] string the final redirect URL, with `error=access_denied`
-- @treturn[1] table its decoded query
-- @return[2] nil, err (also under `auto_approve`, where there is no page to deny)
function Sandbox:deny(authorize_url)
  check_arg("deny", 1, authorize_url, "string")
  return consent(self, authorize_url, "deny")
end

--- Stops the sandbox; also runs from `__gc` and `__close`.
-- Idempotent: stops nginx (waiting until it is gone) and removes a prefix this module created.
-- @return true
function Sandbox:stop()
  if self.stopped then return true end
  self.stopped = true
  os.remove(self.prefix .. "/.watched")
  kill_nginx(self.prefix)
  if self.remove_prefix then
    run("rm -rf " .. quote(self.prefix))
  end
  return true
end

local function finalize(self)
  if not self.detached then pcall(Sandbox.stop, self) end
end
Sandbox.__gc = finalize
Sandbox.__close = finalize

--- Lets the sandbox outlive this handle.
-- Keeps nginx running after this handle is collected or the Lua process exits.
-- @treturn Sandbox the handle
function Sandbox:detach()
  self.detached = true
  os.remove(self.prefix .. "/.watched")
  return self
end

local function new_handle(h)
  h = setmetatable(h, Sandbox)
  -- LuaJIT runs __gc for userdata only; a proxy carries the finalizer there.
  local newproxy = rawget(_G, "newproxy")
  if newproxy then
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() finalize(h) end
    h._finalizer = proxy
  end
  return h
end

local function public_fields(h)
  return {
    url = h.url, https_url = h.https_url, origin = h.origin, https_origin = h.https_origin,
    port = h.port, tls_port = h.tls_port, ca_file = h.ca_file, prefix = h.prefix, token = h.token,
    tokens = h.tokens, client_id = h.client_id, client_secret = h.client_secret,
    redirect_uri = h.redirect_uri, remove_prefix = h.remove_prefix, clients = h.clients,
    redirect_port = h.redirect_port, redirect_origin = h.redirect_origin,
    proxy_port = h.proxy_port, proxy_url = h.proxy_url,
  }
end

-- start ----------------------------------------------------------------------------------------

local function whole(v) return type(v) == "number" and v % 1 == 0 and v - v == 0 end

local LOG_LEVELS = { debug = true, info = true, notice = true, warn = true, error = true, crit = true,
                     alert = true, emerg = true }

-- Each option of start: the type it must have, what else it must be (nil: any value of the
-- type), and the words that say so. The server's own settings follow POST /_sandbox/config.
local function port_ok(v) return whole(v) and v >= 1 and v <= 65535 end
local function ttl_ok(v) return whole(v) and v >= 0 end
local OPTIONS = {
  tls = { "boolean", nil, "a boolean" },
  prefix = { "string", function(v) return v ~= "" end, "a non-empty string" },
  port = { "number", port_ok, "an integer 1-65535" },
  tls_port = { "number", port_ok, "an integer 1-65535" },
  proxy_port = { "number", port_ok, "an integer 1-65535" },
  token_ttl = { "number", ttl_ok, "an integer >= 0 (seconds)" },
  code_ttl = { "number", ttl_ok, "an integer >= 0 (seconds)" },
  refresh_ttl = { "number", ttl_ok, "an integer >= 0 (seconds)" },
  rate_limit = { "number", ttl_ok, "an integer >= 0" },
  rate_window = { "number", function(v) return whole(v) and v >= 1 end, "an integer >= 1 (seconds)" },
  auto_approve = { "boolean", nil, "a boolean" },
  tokens = { "table", function(v)
    if #v == 0 then return false end
    for k, t in pairs(v) do
      if type(k) ~= "number" or not whole(k) or k < 1 or k > #v or type(t) ~= "string" or t == "" then
        return false
      end
    end
    return true
  end, "a non-empty list of non-empty strings" },
  clients = { "table", nil, "a list of clients" }, -- the rest is normalize_clients's to check
  quiet = { "boolean", nil, "a boolean" },
  watch = { "boolean", nil, "a boolean" },
  log_level = { "string", function(v) return LOG_LEVELS[v] ~= nil end,
    "one of debug, info, notice, warn, error, crit, alert, emerg" },
}

-- Raises (at start's caller) on an unknown option, or one of the wrong type or value.
local function check_options(opts)
  for k, v in pairs(opts) do
    local o = OPTIONS[k]
    if not o then error("flextell.sandbox.start: unknown option '" .. tostring(k) .. "'", 3) end
    if type(v) ~= o[1] then
      error("flextell.sandbox.start: option '" .. k .. "' must be " .. o[3] .. ", got " .. type(v), 3)
    end
    if o[2] and not o[2](v) then error("flextell.sandbox.start: option '" .. k .. "' must be " .. o[3], 3) end
  end
  local seen = {}
  for _, k in ipairs({ "port", "tls_port", "proxy_port" }) do
    local port = opts[k]
    if port and not (k == "tls_port" and opts.tls == false) then
      if seen[port] then
        error("flextell.sandbox.start: options '" .. seen[port] .. "' and '" .. k .. "' must be different ports", 3)
      end
      seen[port] = k
    end
  end
end

local function wait_ready(h, seconds)
  local url = h.origin .. "/_sandbox/health"
  local deadline = os.time() + seconds
  local cmd = "curl -s --noproxy '*' -o /dev/null --max-time 1 -w '%{http_code}' " .. quote(url)
  repeat
    if capture(cmd) == "200" then return true end
    run("sleep 0.05")
  until os.time() > deadline
  return false
end

local function fail(h, msg)
  kill_nginx(h.prefix)
  local log = tail(h.prefix .. "/logs/error.log", 15)
  local startup = tail(h.prefix .. "/logs/startup.log", 15)
  local detail = msg
  if startup ~= "" then detail = detail .. "\nnginx said:\n" .. startup end
  if log ~= "" then detail = detail .. "\nerror.log:\n" .. log end
  if h.remove_prefix then run("rm -rf " .. quote(h.prefix)) end
  return nil, "flextell.sandbox: " .. detail
end

--- Starting and attaching.
-- @section start

--- Starts a sandbox.
-- Defaults: `tls = true`, a new temporary prefix (removed on stop; a given `prefix` is kept),
-- random free ports in 20000-60999, `quiet = true`. A watchdog process stops nginx if the Lua
-- process that started it dies without calling `stop`.
-- @tparam[opt] table opts `tls`, `prefix`, `port`, `tls_port`, `proxy_port`, `token_ttl`,
--   `code_ttl`, `refresh_ttl` (seconds), `rate_limit`, `rate_window` (seconds), `auto_approve`,
--   `tokens`, `clients`, `quiet`, `watch`, `log_level`
-- @treturn[1] Sandbox the handle
-- @return[2] nil, err (with nginx's error log tail) when nginx does not answer within 5 s or a
--   given port is taken
-- @raise on an unknown option, an option of the wrong type or value (such as a port that is not
--   an integer 1-65535, or two options with the same port), or a bad `clients` list
function M.start(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'start' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  check_options(opts)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts) do o[k] = v end
  local clients, bad = normalize_clients(o.clients)
  if not clients then error("flextell.sandbox.start: " .. bad, 2) end

  local root, err = lua_root()
  if not root then return nil, "flextell.sandbox: " .. err end
  if not exists(root .. "flextell/sandbox/app.lua") then
    return nil, "flextell.sandbox: server modules not found under " .. root
  end
  local nginx
  nginx, err = find_nginx()
  if not nginx then return nil, "flextell.sandbox: " .. err end
  local modules
  modules, err = module_lines(nginx)
  if not modules then return nil, "flextell.sandbox: " .. err end

  local h = { tokens = o.tokens, token = o.tokens[1], quiet = o.quiet, clients = clients }
  h.client_id, h.client_secret = clients[1].client_id, clients[1].client_secret
  h.redirect_uri = clients[1].redirect_uris[1]
  if o.prefix then
    h.prefix = o.prefix:gsub("/+$", "")
    if not run("mkdir -p " .. quote(h.prefix)) then return nil, "flextell.sandbox: cannot create " .. h.prefix end
  else
    local tmp = os.getenv("TMPDIR")
    if not tmp or tmp == "" then tmp = "/tmp" end
    h.prefix = (capture("mktemp -d " .. quote(tmp .. "/flextell-sandbox.XXXXXX")) or ""):gsub("%s+$", "")
    if h.prefix == "" then return nil, "flextell.sandbox: mktemp failed" end
    h.remove_prefix = true
  end
  if h.prefix:sub(1, 1) ~= "/" then
    h.prefix = (capture("pwd") or ""):gsub("%s+$", "") .. "/" .. h.prefix
  end
  local p = h.prefix
  run("mkdir -p " .. quote(p .. "/conf") .. " " .. quote(p .. "/logs") .. " " .. quote(p .. "/tmp") ..
    " " .. quote(p .. "/tls"))
  run("chmod 700 " .. quote(p .. "/tls"))

  if o.tls then
    local certs, cerr = make_certs(p .. "/tls")
    if not certs then return fail(h, cerr) end
    h.ca_file, h.cert, h.key = certs.ca_file, certs.cert, certs.key
  end

  local function server_conf()
    return json.encode({
      token_ttl = o.token_ttl, code_ttl = o.code_ttl, refresh_ttl = o.refresh_ttl,
      rate_limit = o.rate_limit, rate_window = o.rate_window,
      auto_approve = o.auto_approve, tokens = o.tokens, client_id = h.client_id,
      client_secret = h.client_secret, redirect_uri = h.redirect_uri, clients = clients,
      redirect_port = h.redirect_port,
    })
  end

  local busy = busy_ports()
  for _, port in ipairs({ o.port or false, o.tls and o.tls_port or false, o.proxy_port or false }) do
    if port and busy[port] then return fail(h, "port " .. port .. " is already in use") end
  end

  local user_root = (capture("id -u") or ""):match("^0%s") ~= nil
  local v6 = ipv6_loopback()
  local startup = p .. "/logs/startup.log"
  local started = false
  for _ = 1, 8 do
    local taken = {}
    h.port = o.port or pick_port(taken)
    taken[h.port] = true
    h.tls_port = o.tls and (o.tls_port or pick_port(taken)) or nil
    if h.tls_port then taken[h.tls_port] = true end
    h.redirect_port = pick_port(taken)
    taken[h.redirect_port] = true
    h.proxy_port = o.proxy_port or pick_port(taken)
    assert(write_file(p .. "/conf/sandbox.json", server_conf()))
    assert(write_file(p .. "/nginx.conf", nginx_conf(h, o, modules, root, user_root, v6)))
    os.remove(p .. "/logs/error.log")
    local cmd = quote(nginx) .. " -p " .. quote(p .. "/") .. " -c " .. quote(p .. "/nginx.conf") ..
      " -e " .. quote(p .. "/logs/error.log") .. " >" .. quote(startup) .. " 2>&1"
    if run(cmd) then
      started = true
      break
    end
    local said = (read_file(startup) or "") .. (read_file(p .. "/logs/error.log") or "")
    if not said:find("Address already in use", 1, true) then
      return fail(h, "nginx did not start")
    end
  end
  if not started then return fail(h, "no free port found") end

  h.origin = format("http://127.0.0.1:%d", h.port)
  h.url = h.origin .. "/api"
  h.redirect_origin = format("http://127.0.0.1:%d", h.redirect_port)
  h.proxy_url = format("http://127.0.0.1:%d", h.proxy_port)
  if h.tls_port then
    h.https_origin = format("https://127.0.0.1:%d", h.tls_port)
    h.https_url = h.https_origin .. "/api"
  end
  if not wait_ready(h, 5) then return fail(h, "nginx started but does not answer on " .. h.origin) end
  if not o.quiet then
    io.stderr:write(tail(startup, 20), "\n")
  end
  assert(write_file(p .. "/sandbox.json", json.encode(public_fields(h))))
  h = new_handle(h)
  if o.watch then spawn_watchdog(h) end
  return h
end

--- Attaches to a sandbox that runs already.
-- A handle for a sandbox started elsewhere (`flextell-sandbox start`), from its prefix.
-- @tparam string prefix the sandbox's prefix directory
-- @treturn[1] Sandbox the handle (detached: it does not stop the sandbox when collected)
-- @return[2] nil, err
-- @raise when `prefix` is not a string
function M.attach(prefix)
  if type(prefix) ~= "string" then
    error("bad argument #1 to 'attach' (string expected, got " .. type(prefix) .. ")", 2)
  end
  local text = read_file(prefix .. "/sandbox.json")
  local t = text and json.decode(text)
  if type(t) ~= "table" then return nil, "flextell.sandbox: no sandbox at " .. prefix end
  local h = new_handle(t)
  h.detached = true
  return h
end

--- The nginx binary and the load_module lines its Lua module needs (for other nginx servers the
-- specs start, such as an app that calls the API from nginx); or nil, err.
-- @treturn[1] string the nginx binary
-- @treturn[1] string the `load_module` lines (empty when the Lua module is built in)
-- @return[2] nil, err
function M.nginx()
  local nginx, err = find_nginx()
  if not nginx then return nil, err end
  local modules
  modules, err = module_lines(nginx)
  if not modules then return nil, err end
  return nginx, modules
end

--- A free loopback port (nothing listens on it now, as far as /proc tells).
-- @treturn integer the port
function M.free_port()
  return pick_port({})
end

--- The class of the handles `start` and `attach` return (its methods are the handle's).
M.Sandbox = Sandbox
--- The default options of `start`.
M.defaults = DEFAULTS
--- The default OAuth client: `client_id`, `client_secret`, `redirect_uri`.
M.client = CLIENT
return M
