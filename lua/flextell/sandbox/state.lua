-- Mutable server state. The sandbox runs one nginx worker, so plain module tables are the
-- whole "database"; /_sandbox/reset puts everything back to how init() left it.
local json = require "flextell.sandbox.json"

local M = {}

local defaults = {
  token_ttl = 3600,
  code_ttl = 60,
  refresh_ttl = 30 * 24 * 3600,
  rate_limit = 1000,
  rate_window = 60,
  auto_approve = false,
  tls_handshake_delay = 0,
  tokens = { "sandbox-token" },
  client_id = "sandbox-client",
  client_secret = "sandbox-secret",
  redirect_uri = "http://127.0.0.1/callback",
  max_logged_requests = 10000,
}

M.config = {}   -- effective configuration
M.boot = {}     -- configuration as started, what reset returns to
M.log = {}      -- logged /api and /oauth requests, oldest first
M.log_seq = 0
M.windows = {}  -- rate-limit windows by credential

local req_counter = 0
local boot_tag

function M.init(path)
  local conf = {}
  local f = path and io.open(path, "rb")
  if f then
    conf = assert(json.decode(f:read("*a")), "bad sandbox configuration in " .. path)
    f:close()
  end
  for k, v in pairs(defaults) do
    if conf[k] == nil then conf[k] = v end
  end
  conf.clients = conf.clients and M.normalize_clients(conf.clients) or M.normalize_clients({ {
    client_id = conf.client_id, client_secret = conf.client_secret, redirect_uri = conf.redirect_uri,
    name = "Sandbox Client" } })
  M.sync_client(conf)
  M.boot = conf
  M.config = json.copy(conf)
  boot_tag = string.format("%08x", (ngx and ngx.time() or os.time()) % 0x100000000)
end

function M.reset()
  M.config = json.copy(M.boot)
  M.log = {}
  M.windows = {}
end

-- OAuth clients: { client_id, client_secret, redirect_uris = {...}, name }, from entries with
-- redirect_uri (one) or redirect_uris; nil, message when the list is not usable.
function M.normalize_clients(list)
  if type(list) ~= "table" or #list == 0 then return nil, "clients must be a non-empty list" end
  local out = json.array()
  for i, c in ipairs(list) do
    if type(c) ~= "table" or type(c.client_id) ~= "string" or c.client_id == "" or
        type(c.client_secret) ~= "string" or c.client_secret == "" then
      return nil, "each client needs a client_id and a client_secret"
    end
    local uris = c.redirect_uris
    if uris == nil then uris = { c.redirect_uri } end
    if type(uris) ~= "table" or #uris == 0 then return nil, "each client needs redirect_uri or redirect_uris" end
    for _, u in ipairs(uris) do
      if type(u) ~= "string" or not u:match("^%a[%w+.-]*:.") or u:find("#", 1, true) then
        return nil, "a redirect URI must be an absolute URI without a fragment"
      end
    end
    out[i] = { client_id = c.client_id, client_secret = c.client_secret, redirect_uris = json.array(json.copy(uris)),
      name = type(c.name) == "string" and c.name or c.client_id }
  end
  return out
end

-- client_id, client_secret and redirect_uri mirror the first client (GET /_sandbox/config).
function M.sync_client(conf)
  conf = conf or M.config
  local first = conf.clients[1]
  conf.client_id, conf.client_secret, conf.redirect_uri = first.client_id, first.client_secret,
    first.redirect_uris[1]
end

-- Keys accepted by POST /_sandbox/config and the check each value must pass.
local function positive(v) return type(v) == "number" and v >= 0 and v == math.floor(v) end
M.config_checks = {
  token_ttl = positive,
  code_ttl = positive,
  refresh_ttl = positive,
  clients = function(v)
    local ok, why = M.normalize_clients(v)
    return ok ~= nil, why
  end,
  rate_limit = positive,
  rate_window = function(v) return positive(v) and v >= 1 end,
  -- seconds the TLS port waits inside the handshake: a client's connect timeout then fires
  -- before any byte of its request was written
  tls_handshake_delay = function(v) return type(v) == "number" and v >= 0 and v <= 60 end,
  auto_approve = function(v) return type(v) == "boolean" end,
  tokens = function(v)
    if type(v) ~= "table" then return false end
    for _, t in ipairs(v) do if type(t) ~= "string" or t == "" then return false end end
    return true
  end,
}

function M.is_static_token(token)
  for _, t in ipairs(M.config.tokens) do
    if t == token then return true end
  end
  return false
end

function M.next_request_id()
  req_counter = req_counter + 1
  return string.format("req_%s%08x", boot_tag, req_counter)
end

function M.append_log(entry)
  M.log_seq = M.log_seq + 1
  entry.seq = M.log_seq
  local log = M.log
  log[#log + 1] = entry
  if #log > M.config.max_logged_requests then table.remove(log, 1) end
  return entry
end

return M
