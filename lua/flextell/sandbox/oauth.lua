-- /oauth/authorize and /oauth/token: the Authorization Code grant (RFC 6749) with PKCE S256
-- (RFC 7636), single-use short-lived codes, and rotating refresh tokens with reuse detection
-- (a used refresh token or code presented again revokes everything issued from that grant).
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local state = require "flextell.sandbox.state"
local auth = require "flextell.sandbox.auth"
local sha256 = require "flextell.sandbox.sha256"
local api = require "flextell.sandbox.api"

local array = json.array
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local concat = table.concat

local M = {}

local CONSENT_TTL = 600

-- state: consent id -> request; code -> record; refresh token -> record; family id -> family.
-- A family is everything issued from one authorization code: its access and refresh tokens.
local consents, codes, refresh_tokens, families
local stats
local family_seq

function M.reset()
  consents, codes, refresh_tokens, families = {}, {}, {}, {}
  family_seq = 0
  stats = {
    consents = 0, approved = 0, denied = 0, codes = 0,
    grants = { authorization_code = 0, refresh_token = 0 },
    errors = {},
  }
end
M.reset()

-- helpers ------------------------------------------------------------------------------------

local urandom

local function random_bytes(n)
  if not urandom then urandom = assert(io.open("/dev/urandom", "rb")) end
  local b = urandom:read(n)
  assert(b and #b == n, "cannot read /dev/urandom")
  return b
end

local function b64url(s)
  return (ngx.encode_base64(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end
M.b64url = b64url

local function new_secret(prefix)
  return prefix .. b64url(random_bytes(32))
end

local function find_client(id)
  for _, c in ipairs(state.config.clients) do
    if c.client_id == id then return c end
  end
end

local function registered(client, uri)
  for _, u in ipairs(client.redirect_uris) do
    if u == uri then return true end
  end
  return false
end

-- Every scope a route asks for: <resource>:read and <resource>:write, tenants:read, ...
local known_list, known_set
local function known_scopes()
  if not known_set then
    known_set, known_list = {}, {}
    for _, r in ipairs(api.routes) do
      local s = r.opts.scope
      if s and not known_set[s] then
        known_set[s] = true
        known_list[#known_list + 1] = s
      end
    end
    table.sort(known_list)
  end
  return known_set, known_list
end

-- "a b a" -> { "a", "b" }, or nil, the unknown scopes
local function parse_scope(s, allowed)
  local list, seen, unknown = {}, {}, {}
  for word in s:gmatch("[^ ]+") do
    if not allowed[word] then
      unknown[#unknown + 1] = word
    elseif not seen[word] then
      seen[word] = true
      list[#list + 1] = word
    end
  end
  if #unknown > 0 then return nil, unknown end
  return list
end

local function set_of(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local function html_escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

-- One value of a parameter: the string, nil when absent, false when repeated (RFC 6749 3.1).
local function single(args, name)
  local v = args[name]
  if type(v) == "table" then return false end
  if v == true then return "" end
  return v
end

-- uri + query parameters (kept in order), after any query the registered URI already has.
local function with_params(uri, params)
  local parts = {}
  for _, kv in ipairs(params) do
    if kv[2] ~= nil then parts[#parts + 1] = kv[1] .. "=" .. ngx.escape_uri(kv[2]) end
  end
  return uri .. (uri:find("?", 1, true) and "&" or "?") .. concat(parts, "&")
end

local PAGE_HEADERS = {
  ["Cache-Control"] = "no-store",
  ["X-Frame-Options"] = "DENY",
  ["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  ["Referrer-Policy"] = "no-referrer",
}

local STYLE = "<style>body{font-family:sans-serif;max-width:32em;margin:3em auto}" ..
  "button{font-size:1em;margin-right:1em;padding:.4em 1.2em}</style>"

local function page(status, title, body)
  local html = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' ..
    '<meta name="viewport" content="width=device-width, initial-scale=1">' ..
    "<title>" .. html_escape(title) .. "</title>" .. STYLE .. "</head>\n<body>\n" ..
    "<h1>" .. html_escape(title) .. "</h1>\n" .. body .. "\n</body></html>\n"
  return http.raw(status, html, "text/html; charset=utf-8", PAGE_HEADERS)
end

-- Errors that cannot go back to the client (unknown client, bad redirect URI): a page, never
-- a redirect.
local function error_page(code, description)
  return page(400, "Authorization error", '<p>The application sent an invalid authorization request.</p>\n' ..
    '<p>Error: <code id="error">' .. html_escape(code) .. '</code></p>\n' ..
    '<p id="error_description">' .. html_escape(description) .. "</p>")
end

local function redirect(uri, params)
  return http.raw(302, nil, nil, { Location = with_params(uri, params), ["Cache-Control"] = "no-store" })
end

local function redirect_error(req, code, description)
  return redirect(req.target, { { "error", code }, { "error_description", description }, { "state", req.state } })
end

-- authorize ----------------------------------------------------------------------------------

local function issue_code(req)
  local code = new_secret("sbac_")
  codes[code] = {
    client_id = req.client_id, redirect_uri = req.redirect_uri, target = req.target,
    scopes = req.scopes, challenge = req.challenge, expires_at = ngx.now() + state.config.code_ttl,
  }
  stats.codes = stats.codes + 1
  return redirect(req.target, { { "code", code }, { "state", req.state } })
end

local function consent_page(req, client)
  local id = new_secret("")
  consents[id] = { req = req, expires_at = ngx.now() + CONSENT_TTL }
  stats.consents = stats.consents + 1
  local items = {}
  for _, s in ipairs(req.scopes) do items[#items + 1] = "<li>" .. html_escape(s) .. "</li>" end
  return page(200, "Authorize " .. client.name, concat({
    '<p><strong id="client">' .. html_escape(client.name) .. "</strong> (" .. html_escape(client.client_id) ..
      ") asks for access to your Flextell account:</p>",
    '<ul id="scopes">' .. concat(items) .. "</ul>",
    '<form method="post" action="/oauth/authorize">',
    '<input type="hidden" name="consent_id" value="' .. html_escape(id) .. '">',
    '<button type="submit" name="decision" value="approve" id="approve">Approve</button>',
    '<button type="submit" name="decision" value="deny" id="deny">Deny</button>',
    "</form>",
  }, "\n"))
end

local function authorize_get(ctx)
  local q = ctx.query
  local client_id = single(q, "client_id")
  if client_id == false then return error_page("invalid_request", "The client_id parameter is repeated.") end
  if not client_id or client_id == "" then
    return error_page("invalid_request", "The client_id parameter is missing.")
  end
  local client = find_client(client_id)
  if not client then return error_page("invalid_client", "Unknown client_id: " .. client_id .. ".") end
  local redirect_uri = single(q, "redirect_uri")
  if redirect_uri == false then return error_page("invalid_request", "The redirect_uri parameter is repeated.") end
  local target = redirect_uri
  if redirect_uri == nil or redirect_uri == "" then
    if #client.redirect_uris ~= 1 then
      return error_page("invalid_request", "The redirect_uri parameter is missing.")
    end
    redirect_uri, target = nil, client.redirect_uris[1]
  elseif not registered(client, redirect_uri) then
    return error_page("invalid_request", "The redirect_uri is not registered for this client.")
  end

  -- from here on, errors go back to the client's redirect URI
  local req = { client_id = client_id, redirect_uri = redirect_uri, target = target }
  for _, name in ipairs({ "state", "response_type", "scope", "code_challenge", "code_challenge_method" }) do
    if single(q, name) == false then
      return redirect_error(req, "invalid_request", "The " .. name .. " parameter is repeated.")
    end
  end
  req.state = single(q, "state")
  local response_type = single(q, "response_type")
  if not response_type or response_type == "" then
    return redirect_error(req, "invalid_request", "The response_type parameter is missing.")
  elseif response_type ~= "code" then
    return redirect_error(req, "unsupported_response_type", "Only response_type=code is supported.")
  end
  local scope = single(q, "scope")
  local allowed, all = known_scopes()
  if scope and scope:find("[^ ]") then
    local list, unknown = parse_scope(scope, allowed)
    if not list then
      return redirect_error(req, "invalid_scope", "Unknown scope: " .. concat(unknown, " ") .. ".")
    end
    req.scopes = list
  else
    req.scopes = all
  end
  local challenge, method = single(q, "code_challenge"), single(q, "code_challenge_method")
  if challenge and challenge ~= "" then
    if method == nil or method == "plain" then
      return redirect_error(req, "invalid_request",
        "PKCE with code_challenge_method=plain is not supported: use S256.")
    elseif method ~= "S256" then
      return redirect_error(req, "invalid_request", "Transform algorithm not supported: use S256.")
    elseif #challenge ~= 43 or not challenge:match("^[%w%-_]+$") then
      return redirect_error(req, "invalid_request",
        "The code_challenge must be 43 characters of base64url (the S256 of the code_verifier).")
    end
    req.challenge = challenge
  elseif method then
    return redirect_error(req, "invalid_request", "code_challenge_method was sent without code_challenge.")
  end

  if state.config.auto_approve then
    stats.approved = stats.approved + 1
    return issue_code(req)
  end
  return consent_page(req, client)
end

-- The consent form's POST: consent_id (single use) and decision=approve|deny.
local function authorize_post(ctx)
  local args = ngx.decode_args(ctx.body, 0)
  local id, decision = single(args, "consent_id"), single(args, "decision")
  local c = id and consents[id]
  if not c or ngx.now() >= c.expires_at then
    return error_page("invalid_request", "This consent request is unknown, expired or already answered.")
  end
  if decision ~= "approve" and decision ~= "deny" then
    return error_page("invalid_request", "The decision must be approve or deny.")
  end
  consents[id] = nil
  if decision == "deny" then
    stats.denied = stats.denied + 1
    return redirect_error(c.req, "access_denied", "The user denied the request.")
  end
  stats.approved = stats.approved + 1
  return issue_code(c.req)
end

-- token --------------------------------------------------------------------------------------

local NO_STORE = { ["Cache-Control"] = "no-store", Pragma = "no-cache" }

local function token_error(status, code, description, headers)
  local h = {}
  for k, v in pairs(NO_STORE) do h[k] = v end
  for k, v in pairs(headers or {}) do h[k] = v end
  stats.errors[code] = (stats.errors[code] or 0) + 1
  return http.json(status, { error = code, error_description = description }, h)
end

local function invalid_client(description)
  return token_error(401, "invalid_client", description, { ["WWW-Authenticate"] = 'Basic realm="flextell"' })
end

-- RFC 6749 2.3.1: Basic credentials are form-urlencoded before base64.
local function form_decode(s)
  return (s:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The authenticated client, or nil after answering.
local function client_auth(ctx, args)
  local header = ctx.headers["authorization"]
  local id, secret
  if header ~= nil then
    local b64 = type(header) == "string" and header:match("^[Bb][Aa][Ss][Ii][Cc]%s+(%S+)%s*$")
    local raw = b64 and ngx.decode_base64(b64)
    local user, pass = (raw or ""):match("^([^:]*):(.*)$")
    if not user then return invalid_client("The Authorization header is not valid Basic credentials.") end
    if args.client_secret ~= nil then
      return token_error(400, "invalid_request",
        "Use one client authentication method: HTTP Basic or client_secret in the body, not both.")
    end
    id, secret = form_decode(user), form_decode(pass)
    local body_id = single(args, "client_id")
    if body_id ~= nil and body_id ~= id then
      return invalid_client("The client_id in the body does not match the Basic credentials.")
    end
  else
    id, secret = single(args, "client_id"), single(args, "client_secret")
    if not id or id == "" or not secret then
      return invalid_client("Client authentication failed: send client_id and client_secret, or HTTP Basic.")
    end
  end
  local client = find_client(id)
  if not client or client.client_secret ~= secret then
    return invalid_client("Client authentication failed.")
  end
  return client
end

local function new_family(client_id, scopes)
  family_seq = family_seq + 1
  local fam = { id = family_seq, client_id = client_id, scopes = scopes, access = {}, refresh = {} }
  families[fam.id] = fam
  return fam
end

local function revoke_family(id)
  local fam = id and families[id]
  if not fam or fam.revoked then return end
  fam.revoked = true
  for _, t in ipairs(fam.access) do
    local rec = auth.access_tokens[t]
    if rec then rec.revoked = true end
  end
  for _, t in ipairs(fam.refresh) do
    local rec = refresh_tokens[t]
    if rec then rec.revoked = true end
  end
end

local function issue_tokens(fam, scopes, grant_type)
  local cfg, now = state.config, ngx.now()
  local scope = concat(scopes, " ")
  local access = new_secret("sbat_")
  auth.access_tokens[access] = { family = fam.id, client_id = fam.client_id, scopes = set_of(scopes),
    scope = scope, expires_at = now + cfg.token_ttl }
  fam.access[#fam.access + 1] = access
  local refresh = new_secret("sbrt_")
  refresh_tokens[refresh] = { family = fam.id, client_id = fam.client_id, expires_at = now + cfg.refresh_ttl }
  fam.refresh[#fam.refresh + 1] = refresh
  stats.grants[grant_type] = stats.grants[grant_type] + 1
  return http.json(200, { access_token = access, token_type = "Bearer", expires_in = cfg.token_ttl,
    refresh_token = refresh, scope = scope }, NO_STORE)
end

local function grant_code(client, args)
  local code = single(args, "code")
  if not code or code == "" then return token_error(400, "invalid_request", "The code parameter is missing.") end
  local rec = codes[code]
  if not rec then return token_error(400, "invalid_grant", "The authorization code is invalid.") end
  if rec.client_id ~= client.client_id then
    return token_error(400, "invalid_grant", "The authorization code was issued to another client.")
  end
  if rec.used then
    revoke_family(rec.family)
    return token_error(400, "invalid_grant",
      "The authorization code was already used; the tokens issued with it are revoked.")
  end
  if ngx.now() >= rec.expires_at then
    return token_error(400, "invalid_grant", "The authorization code has expired.")
  end
  local redirect_uri = single(args, "redirect_uri")
  if (rec.redirect_uri and redirect_uri ~= rec.redirect_uri) or
      (not rec.redirect_uri and redirect_uri and redirect_uri ~= rec.target) then
    return token_error(400, "invalid_grant",
      "The redirect_uri does not match the one sent to the authorization endpoint.")
  end
  local verifier = single(args, "code_verifier")
  if rec.challenge then
    if not verifier or verifier == "" then
      return token_error(400, "invalid_request", "The code_verifier parameter is missing.")
    end
    if #verifier < 43 or #verifier > 128 or not verifier:match("^[%w%-%._~]+$") then
      return token_error(400, "invalid_request",
        "The code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'.")
    end
    if b64url(sha256.digest(verifier)) ~= rec.challenge then
      return token_error(400, "invalid_grant", "The code_verifier does not match the code_challenge.")
    end
  elseif verifier ~= nil then
    return token_error(400, "invalid_grant",
      "A code_verifier was sent but the authorization request had no code_challenge.")
  end
  rec.used = true
  local fam = new_family(client.client_id, rec.scopes)
  rec.family = fam.id
  return issue_tokens(fam, rec.scopes, "authorization_code")
end

local function grant_refresh(client, args)
  local token = single(args, "refresh_token")
  if not token or token == "" then
    return token_error(400, "invalid_request", "The refresh_token parameter is missing.")
  end
  local rec = refresh_tokens[token]
  if not rec then return token_error(400, "invalid_grant", "The refresh token is invalid.") end
  if rec.client_id ~= client.client_id then
    return token_error(400, "invalid_grant", "The refresh token was issued to another client.")
  end
  local fam = families[rec.family]
  if rec.revoked or fam.revoked then
    return token_error(400, "invalid_grant", "The refresh token has been revoked.")
  end
  if rec.used then
    revoke_family(fam.id)
    return token_error(400, "invalid_grant",
      "The refresh token was already used; every token of this grant is now revoked.")
  end
  if ngx.now() >= rec.expires_at then
    return token_error(400, "invalid_grant", "The refresh token has expired.")
  end
  local scopes = fam.scopes
  local scope = single(args, "scope")
  if scope and scope:find("[^ ]") then
    local list, unknown = parse_scope(scope, set_of(fam.scopes))
    if not list then
      return token_error(400, "invalid_scope",
        "The requested scope exceeds the scope granted: " .. concat(unknown, " ") .. ".")
    end
    scopes = list
  end
  rec.used = true
  return issue_tokens(fam, scopes, "refresh_token")
end

local function token(ctx)
  if ctx.method ~= "POST" then
    return token_error(405, "invalid_request", "The token endpoint accepts POST only.", { Allow = "POST" })
  end
  local ct = ctx.headers["content-type"]
  if type(ct) ~= "string" or not ct:lower():find("^%s*application/x%-www%-form%-urlencoded%s*;?") then
    return token_error(400, "invalid_request", "The token request must be application/x-www-form-urlencoded.")
  end
  local args = ngx.decode_args(ctx.body, 0)
  for k, v in pairs(args) do
    if type(v) == "table" then return token_error(400, "invalid_request", "The " .. k .. " parameter is repeated.") end
  end
  local client = client_auth(ctx, args)
  if not client then return end
  local grant_type = single(args, "grant_type")
  if not grant_type or grant_type == "" then
    return token_error(400, "invalid_request", "The grant_type parameter is missing.")
  elseif grant_type == "authorization_code" then
    return grant_code(client, args)
  elseif grant_type == "refresh_token" then
    return grant_refresh(client, args)
  end
  return token_error(400, "unsupported_grant_type", "The grant type " .. grant_type .. " is not supported.")
end

function M.handle(ctx)
  local op = #ctx.segments == 2 and ctx.segments[2] or nil
  if op == "authorize" then
    if ctx.method == "GET" then return authorize_get(ctx) end
    if ctx.method == "POST" then return authorize_post(ctx) end
    return http.error(405, "method_not_allowed", ctx.method .. " is not allowed on " .. ctx.path .. ".",
      nil, { Allow = "GET, POST" })
  elseif op == "token" then
    return token(ctx)
  end
  return http.error(404, "not_found", "No such endpoint: " .. ctx.method .. " " .. ctx.path .. ".")
end

-- control ------------------------------------------------------------------------------------

-- GET /_sandbox/oauth
function M.report()
  local cfg, now = state.config, ngx.now()
  local access = { active = 0, expired = 0, revoked = 0 }
  for _, rec in pairs(auth.access_tokens) do
    local k = rec.revoked and "revoked" or (now >= rec.expires_at and "expired" or "active")
    access[k] = access[k] + 1
  end
  local refresh = { active = 0, used = 0, expired = 0, revoked = 0 }
  for _, rec in pairs(refresh_tokens) do
    local k = (rec.revoked or families[rec.family].revoked) and "revoked" or rec.used and "used"
      or (now >= rec.expires_at and "expired" or "active")
    refresh[k] = refresh[k] + 1
  end
  local fams = { total = 0, revoked = 0 }
  for _, f in pairs(families) do
    fams.total = fams.total + 1
    if f.revoked then fams.revoked = fams.revoked + 1 end
  end
  local grants = json.copy(stats.grants)
  grants.total = grants.authorization_code + grants.refresh_token
  local _, scopes = known_scopes()
  return {
    settings = { token_ttl = cfg.token_ttl, code_ttl = cfg.code_ttl, refresh_ttl = cfg.refresh_ttl,
      auto_approve = cfg.auto_approve, clients = json.copy(cfg.clients), scopes = array(json.copy(scopes)) },
    authorizations = { consent_pages = stats.consents, approved = stats.approved, denied = stats.denied,
      codes = stats.codes },
    grants = grants,
    errors = json.copy(stats.errors),
    access_tokens = access,
    refresh_tokens = refresh,
    families = fams,
  }
end

-- POST /_sandbox/oauth/expire: every live access token (and with refresh, refresh token) expires now.
function M.expire(refresh)
  local now = ngx.now()
  local n, m = 0, 0
  for _, rec in pairs(auth.access_tokens) do
    if not rec.revoked and now < rec.expires_at then
      rec.expires_at = now
      n = n + 1
    end
  end
  if refresh then
    for _, rec in pairs(refresh_tokens) do
      if not rec.revoked and not rec.used and now < rec.expires_at then
        rec.expires_at = now
        m = m + 1
      end
    end
  end
  return { access_tokens = n, refresh_tokens = m }
end

return M
