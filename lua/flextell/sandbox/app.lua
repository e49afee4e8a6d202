-- Entry points called from the generated nginx.conf.
local state = require "flextell.sandbox.state"
local http = require "flextell.sandbox.http"
local auth = require "flextell.sandbox.auth"
local echo = require "flextell.sandbox.echo"
local control = require "flextell.sandbox.control"
local faults = require "flextell.sandbox.faults"
local sha256 = require "flextell.sandbox.sha256"
local api = require "flextell.sandbox.api"
local oauth = require "flextell.sandbox.oauth"

local M = {}

local MAX_LOGGED_BODY = 64 * 1024

-- init_by_lua: runs in the master before the worker forks.
function M.init(config_path)
  state.init(config_path)
end

-- init_worker_by_lua: the launcher kills the worker too when the master cannot be stopped.
function M.init_worker()
  local f = io.open(ngx.config.prefix() .. "logs/worker.pid", "w")
  if f then
    f:write(ngx.worker.pid(), "\n")
    f:close()
  end
end

local function log_request(ctx)
  local body = ctx.body
  local tenant = ctx.headers["x-tenant"]
  local entry = {
    id = ngx.ctx.request_id,
    time = ngx.now(),
    port = tonumber(ngx.var.server_port),
    connection = tonumber(ngx.var.connection),
    method = ctx.method,
    path = ctx.path,
    uri = ctx.uri,
    tenant = type(tenant) == "string" and (tonumber(tenant) or tenant) or nil,
    authorization = ctx.headers["authorization"] ~= nil,
    body_size = #body,
    body_sha256 = sha256.hex(body),
    body = #body <= MAX_LOGGED_BODY and body or nil,
  }
  if ngx.ctx.proxied then
    entry.proxied, entry.proxy_target = true, ngx.ctx.proxy_target
  end
  ngx.ctx.log_entry = state.append_log(entry)
end

local function dispatch_api(ctx)
  if not auth.rate_limit(ctx) then return end
  if ctx.segments[2] == "_echo" then return echo.handle(ctx) end
  local grant = auth.authenticate(ctx)
  if not grant then return end
  local route, params = api:find(ctx.method, ctx.segments, 2)
  if not route then
    if #params > 0 then
      return http.error(405, "method_not_allowed", ctx.method .. " is not allowed on " .. ctx.path .. ".",
        nil, { Allow = table.concat(params, ", ") })
    end
    return http.error(404, "not_found", "No such endpoint: " .. ctx.method .. " " .. ctx.path .. ".")
  end
  if not auth.check_scope(grant, route.opts.scope) then return end
  ctx.grant = grant
  if route.opts.tenant == "ignored" then
    ctx.tenant = auth.DEFAULT_TENANT
  else
    ctx.tenant = auth.tenant(ctx, route.opts.tenant == "required")
    if not ctx.tenant then return end
  end
  return route.handler(ctx, params)
end

local function handle()
  local ctx = http.context()
  local area = ctx.segments[1]
  if area == "_sandbox" then return control.handle(ctx) end
  ngx.ctx.request_id = state.next_request_id()
  http.add_header("X-Request-Id", ngx.ctx.request_id)
  if area ~= "api" and area ~= "oauth" then
    return http.error(404, "not_found", "No such endpoint: " .. ctx.method .. " " .. ctx.path .. ".")
  end
  log_request(ctx)
  local function real()
    if area == "oauth" then return oauth.handle(ctx) end
    return dispatch_api(ctx)
  end
  if faults.apply(ctx, real) then return end
  return real()
end

-- The redirect fault's default target: a port of its own, so a client that follows a redirect
-- shows up in the log (port, authorization) and gets an answer it cannot mistake for success.
local function trap()
  local ctx = http.context()
  ngx.ctx.request_id = state.next_request_id()
  http.add_header("X-Request-Id", ngx.ctx.request_id)
  log_request(ctx)
  ngx.ctx.log_entry.redirected = true
  return http.error(421, "misdirected_request",
    "This port only receives followed redirects: clients must not follow the sandbox's redirects.")
end

-- The proxy port. A request in absolute form (GET http://host/path, what clients send to an
-- HTTP proxy) is answered here, as the API port would answer its path: nothing leaves the
-- machine, whatever the host. CONNECT never reaches Lua as a request of its own: nginx refuses
-- it (400 for an authority-form target, 405 otherwise) and error_page brings that refusal here
-- as an internal redirect to /.proxy-refused/<status>, where $request still holds the line.

-- host:port of an absolute-form (scheme://authority/...) or authority-form (host:port) target.
local function authority(target, default_port)
  local scheme, rest = target:match("^(%a[%w+.-]*)://([^/?#]*)")
  if scheme then
    default_port = scheme:lower() == "https" and 443 or 80
  else
    rest = target
  end
  rest = rest:match("([^@]*)$")
  local host, port = rest:match("^(%[[^%]]*%])(.*)$")
  if not host then host, port = rest:match("^([^:]*)(.*)$") end
  port = port:match("^:(%d+)$") or (port == "" and default_port) or nil
  if host == "" or host:find("/", 1, true) or not port then return nil end
  return host .. ":" .. port
end

local function proxy_refused()
  local line = ngx.var.request or ""
  local method, target = line:match("^(%S+)%s+(%S+)")
  local status = tonumber(ngx.var.uri:match("(%d+)$")) or 400
  ngx.ctx.request_id = state.next_request_id()
  http.add_header("X-Request-Id", ngx.ctx.request_id)
  ngx.ctx.proxied = true
  ngx.ctx.proxy_target = target and authority(target, 443)
  -- For an authority-form target nginx gave up at the request line: no URI, no header was read,
  -- so the target stands in for both path and uri.
  local uri = ngx.var.request_uri or target or ""
  log_request({ method = method or "", path = uri:match("^[^?]*"), uri = uri, body = "",
    headers = ngx.req.get_headers(0) })
  if method == "CONNECT" then
    return http.error(403, "forbidden", "The sandbox proxy does not open tunnels: CONNECT " .. target ..
      " refused. Send http:// URLs through it; https:// ones go to the sandbox's TLS port directly.")
  end
  return http.error(status, "invalid_request", "nginx refused the request: " .. line)
end

local function proxy()
  if ngx.req.is_internal() then return proxy_refused() end
  local target = (ngx.var.request or ""):match("^%S+%s+(%S+)") or ""
  ngx.ctx.proxied = true
  if target:match("^%a[%w+.-]*://") then
    ngx.ctx.proxy_target = authority(target, 80)
    return handle()
  end
  -- origin form: a client that took the proxy for the server
  local ctx = http.context()
  ngx.ctx.request_id = state.next_request_id()
  http.add_header("X-Request-Id", ngx.ctx.request_id)
  log_request(ctx)
  return http.error(400, "invalid_request", "This is the sandbox's HTTP proxy port: it takes absolute-form " ..
    "requests (GET http://host/path HTTP/1.1). Send API calls to the API port, or use this port as a proxy.")
end

local ENTRIES = { trap = trap, proxy = proxy }

-- A bug in a handler still answers in the API's error shape, so a client spec sees a 500 it can
-- name instead of nginx's HTML page; the traceback goes to the error log.
-- ssl_certificate_by_lua: holds the handshake for tls_handshake_delay seconds (the certificate
-- itself comes from the server block).
function M.handshake()
  local delay = state.config.tls_handshake_delay
  if delay and delay > 0 then ngx.sleep(delay) end
end

-- log_by_lua: the answer is out; with `time`, the log entry tells how long it was in hand.
function M.finished()
  local logged = ngx.ctx.log_entry
  if logged then
    ngx.update_time()
    logged.finished = ngx.now()
  end
end

function M.run(entry)
  local ok, err = xpcall(ENTRIES[entry] or handle, debug.traceback)
  if not ok then
    ngx.log(ngx.ERR, err)
    if not ngx.headers_sent then
      return http.error(500, "server_error", "The sandbox failed to handle this request; see its error.log.")
    end
    return ngx.exit(ngx.ERROR)
  end
end

return M
