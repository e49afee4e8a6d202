-- Bearer tokens, scopes, rate limits and X-Tenant for /api calls.
local state = require "flextell.sandbox.state"
local http = require "flextell.sandbox.http"
local seed = require "flextell.sandbox.seed"

local M = {}

-- OAuth-issued access tokens: token -> { expires_at, scopes = set or nil, family }
M.access_tokens = {}

function M.reset()
  M.access_tokens = {}
end

local function bearer(ctx)
  local h = ctx.headers["authorization"]
  if h == nil then return nil, "missing" end
  if type(h) == "table" then return nil, "malformed" end
  local token = h:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +([%w%-%._~%+/]+=*)%s*$")
  if not token then return nil, "malformed" end
  return token
end

-- Fixed window per credential. The presented token (valid or not) is the key, so even a 401
-- carries the headers; calls with no token share one window per client address. OAuth tokens
-- count per grant, so a refresh does not start a new window.
function M.rate_limit(ctx)
  local cfg = state.config
  local token = bearer(ctx)
  local rec = token and M.access_tokens[token]
  local key = rec and ("grant:" .. rec.family) or token or ("addr:" .. (ngx.var.remote_addr or ""))
  local now = ngx.now()
  local w = state.windows[key]
  if not w or now >= w.reset then
    w = { count = 0, reset = math.floor(now) + cfg.rate_window }
    state.windows[key] = w
  end
  w.count = w.count + 1
  local remaining = cfg.rate_limit - w.count
  http.add_header("X-RateLimit-Limit", tostring(cfg.rate_limit))
  http.add_header("X-RateLimit-Remaining", tostring(remaining < 0 and 0 or remaining))
  http.add_header("X-RateLimit-Reset", tostring(w.reset))
  if remaining < 0 then
    local wait = math.max(1, math.ceil(w.reset - now))
    http.error(429, "rate_limit_exceeded",
      string.format("Rate limit of %d requests per %d seconds exceeded; retry in %d seconds.",
        cfg.rate_limit, cfg.rate_window, wait),
      nil, { ["Retry-After"] = tostring(wait) })
    return false
  end
  return true
end

local CHALLENGE = 'Bearer realm="flextell"'

-- Returns the token's grant ({ static = true } or the OAuth record), or nil after a 401.
function M.authenticate(ctx)
  local token, why = bearer(ctx)
  if not token then
    if why == "missing" then
      http.error(401, "unauthorized", "Authentication required: send an Authorization: Bearer token.",
        nil, { ["WWW-Authenticate"] = CHALLENGE })
    else
      http.error(401, "invalid_token", "The Authorization header is not a valid Bearer token.",
        nil, { ["WWW-Authenticate"] = CHALLENGE .. ', error="invalid_token"' })
    end
    return nil
  end
  if state.is_static_token(token) then return { static = true, token = token } end
  local rec = M.access_tokens[token]
  if rec and not rec.revoked and ngx.now() < rec.expires_at then return rec end
  local msg = rec and (rec.revoked and "The access token has been revoked." or "The access token has expired.")
    or "The access token is invalid."
  http.error(401, "invalid_token", msg, nil,
    { ["WWW-Authenticate"] = CHALLENGE .. ', error="invalid_token"' })
  return nil
end

-- Static tokens carry every scope; OAuth tokens carry what was granted (nil: all).
function M.check_scope(grant, scope)
  if not scope or grant.static or not grant.scopes then return true end
  local resource, action = scope:match("^([^:]+):(%a+)$")
  if grant.scopes[scope] or grant.scopes[resource .. ":*"] or grant.scopes["*"]
      or (action == "read" and grant.scopes[resource .. ":write"]) then
    return true
  end
  http.error(403, "insufficient_scope", "This call needs the scope " .. scope .. ".", nil,
    { ["WWW-Authenticate"] = CHALLENGE .. ', error="insufficient_scope", scope="' .. scope .. '"' })
  return false
end

local known_tenants = {}
for _, t in ipairs(seed.TENANTS) do known_tenants[t.id] = true end
M.DEFAULT_TENANT = 1

-- Returns the tenant id, or nil after answering 400/403.
function M.tenant(ctx, required)
  local h = ctx.headers["x-tenant"]
  if h == nil then
    if required then
      http.error(400, "invalid_request", "The X-Tenant header is required.")
      return nil
    end
    return M.DEFAULT_TENANT
  end
  local id = type(h) == "string" and h:match("^%s*(%d+)%s*$")
  id = id and tonumber(id)
  if not id then
    http.error(400, "invalid_request", "The X-Tenant header must be an integer tenant id.")
    return nil
  end
  if not known_tenants[id] then
    http.error(403, "forbidden", "You do not have access to tenant " .. id .. ".")
    return nil
  end
  return id
end

return M
