-- /_sandbox/...: the control API that specs use to reset state, tune limits, arm faults and
-- read back what the server received. No auth; answers loopback clients only.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local state = require "flextell.sandbox.state"
local store = require "flextell.sandbox.store"
local auth = require "flextell.sandbox.auth"
local faults = require "flextell.sandbox.faults"
local oauth = require "flextell.sandbox.oauth"

local array, copy = json.array, json.copy

local M = {}

-- every module with state; reset reaches them all
M.resetters = { store.reset, auth.reset, faults.reset, oauth.reset }

function M.reset_all()
  state.reset()
  for _, f in ipairs(M.resetters) do f() end
end

local function public_config()
  local c = state.config
  return { token_ttl = c.token_ttl, rate_limit = c.rate_limit, rate_window = c.rate_window,
    auto_approve = c.auto_approve, tokens = array(copy(c.tokens)), client_id = c.client_id,
    redirect_uri = c.redirect_uri }
end

local function set_config(ctx)
  local body = http.json_object(ctx)
  if not body then return end
  for k, v in pairs(body) do
    local check = state.config_checks[k]
    if not check then return http.error(400, "invalid_request", "Unknown configuration key: " .. k .. ".") end
    local ok, why = check(v)
    if not ok then
      return http.error(400, "invalid_request", "Bad value for " .. k .. (why and (": " .. why) or "") .. ".")
    end
  end
  for k, v in pairs(body) do state.config[k] = copy(v) end
  if body.clients then
    state.config.clients = state.normalize_clients(body.clients)
    state.sync_client()
  end
  if body.rate_limit or body.rate_window then state.windows = {} end
  return http.json(200, { config = public_config() })
end

local function requests(ctx)
  local q = ctx.query
  local method = type(q.method) == "string" and q.method:upper() or nil
  local path = type(q.path) == "string" and q.path or nil
  local match = type(q.match) == "string" and q.match or nil
  local since = tonumber(q.since)
  local proxied = q.proxied
  if proxied ~= nil then proxied = proxied == true or proxied == "true" or proxied == "1" end
  local out = array()
  for _, e in ipairs(state.log) do
    if (not method or e.method == method) and (not path or e.path == path)
        and (not match or e.path:find(match)) and (not since or e.seq > since)
        and (proxied == nil or (e.proxied == true) == proxied) then
      out[#out + 1] = e
    end
  end
  return http.json(200, { count = #out, requests = out })
end

local function loopback(addr)
  return addr == "::1" or (addr or ""):match("^127%.") ~= nil
end

function M.handle(ctx)
  if not loopback(ngx.var.remote_addr) then
    return http.error(403, "forbidden", "The control API only answers loopback clients.")
  end
  local op, m = ctx.segments[2], ctx.method
  if #ctx.segments > 2 then
    op = (op == "oauth" and ctx.segments[3] == "expire" and #ctx.segments == 3) and "oauth/expire" or nil
  end
  if op == "health" and m == "GET" then
    return http.json(200, { status = "ok", worker_pid = ngx.worker.pid() })
  elseif op == "reset" and m == "POST" then
    M.reset_all()
    return http.json(200, { status = "reset" })
  elseif op == "config" and m == "GET" then
    return http.json(200, { config = public_config() })
  elseif op == "config" and m == "POST" then
    return set_config(ctx)
  elseif op == "requests" and m == "GET" then
    return requests(ctx)
  elseif op == "requests" and m == "DELETE" then
    state.log = {}
    return http.no_content()
  elseif op == "faults" and m == "POST" then
    local body = http.json_object(ctx, false)
    if not body then return end
    local fault, err = faults.arm(body)
    if not fault then return http.error(400, "invalid_request", err) end
    return http.json(201, { fault = fault })
  elseif op == "faults" and m == "GET" then
    return http.json(200, { faults = faults.list() })
  elseif op == "faults" and m == "DELETE" then
    faults.reset()
    return http.no_content()
  elseif op == "oauth" and m == "GET" then
    return http.json(200, oauth.report())
  elseif op == "oauth/expire" and m == "POST" then
    local body = http.json_object(ctx)
    if not body then return end
    return http.json(200, oauth.expire(body.refresh == true))
  end
  return http.error(404, "not_found", "No control operation " .. m .. " " .. ctx.path .. ".")
end

return M
