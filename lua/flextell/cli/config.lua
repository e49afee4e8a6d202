--- Settings of the `flextell` command: where they live, and which one wins.
--
-- A setting comes from a flag, else the environment (FLEXTELL_*), else the profile in the config
-- file, else the default. The config folder is $XDG_CONFIG_HOME/flextell (~/.config/flextell):
--   config.json          { "profiles": { "default": { "base_url": ..., "client_id": ... } } }
--   tokens/<profile>.json the profile's tokens, a flextell.token_file (0600, atomic, locked)
-- Both files are written with mode 0600 in a folder of mode 0700, replaced atomically.

local M = {}

-- The library is loaded when a command needs it: parsing, --help and the completion script
-- work without the C core.
local function lib() return require "flextell" end

M.DEFAULT_BASE_URL = "https://dev.flextell.ai/api"
M.DEFAULT_PORT = 8765 -- the loopback redirect port of `flextell login`

-- Profile keys, their environment variables and what a value must look like.
M.KEYS = {
  base_url = { env = "FLEXTELL_BASE_URL", help = "the API's base URL" },
  client_id = { env = "FLEXTELL_CLIENT_ID", help = "the OAuth client id" },
  client_secret = { env = "FLEXTELL_CLIENT_SECRET", help = "the OAuth client secret", secret = true },
  tenant = { env = "FLEXTELL_TENANT", help = "the X-Tenant sent with every call (an integer)", integer = true },
  port = { env = nil, help = "the loopback port of login's redirect URI", integer = true },
  scope = { env = nil, help = "the scope login asks for (space separated)" },
  ca_file = { env = "FLEXTELL_CA_FILE", help = "a PEM file of CA certificates to trust" },
}
M.ORDER = { "base_url", "client_id", "client_secret", "tenant", "port", "scope", "ca_file" }

local function getenv(name)
  local v = name and os.getenv(name)
  if v == "" then return nil end
  return v
end

--- The config folder.
function M.dir()
  local base = getenv("XDG_CONFIG_HOME")
  if not base then
    local home = getenv("HOME")
    if not home then return nil, "neither XDG_CONFIG_HOME nor HOME is set" end
    base = home .. "/.config"
  end
  return base .. "/flextell"
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Makes the config folder (0700) and its tokens folder; nil, message on failure.
function M.ensure_dir()
  local dir, err = M.dir()
  if not dir then return nil, err end
  -- chmod too: a folder made earlier with looser modes is tightened
  local ok = os.execute("umask 077 && mkdir -p " .. quote(dir .. "/tokens") .. " 2>/dev/null && chmod 700 " ..
    quote(dir) .. " " .. quote(dir .. "/tokens"))
  if ok ~= true and ok ~= 0 then return nil, "cannot create " .. dir end
  return dir
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- The whole config file as a table { profiles = { name = {...} } }; nil, message when it
-- cannot be read as one.
function M.load()
  local dir, err = M.dir()
  if not dir then return nil, err end
  local path = dir .. "/config.json"
  local text = read_file(path)
  if text == nil or text:match("^%s*$") then return { profiles = {} }, path end
  local ok, t = pcall(lib().json.decode, text)
  if not ok or type(t) ~= "table" or getmetatable(t) == getmetatable(lib().array {}) or
      (t.profiles ~= nil and type(t.profiles) ~= "table") then
    return nil, path .. " is not a flextell config file (expected JSON { \"profiles\": {...} })"
  end
  t.profiles = t.profiles or {}
  for name, p in pairs(t.profiles) do
    if type(p) ~= "table" then return nil, path .. ": profile '" .. tostring(name) .. "' is not an object" end
  end
  return t, path
end

--- Writes the config file (0600, atomically); nil, message on failure.
function M.save(t)
  local dir, err = M.ensure_dir()
  if not dir then return nil, err end
  local path = dir .. "/config.json"
  local ok, werr = pcall(require("flextell.core").save_private_file, path, lib().json.encode(t) .. "\n")
  if not ok then return nil, tostring(werr) end
  return path
end

--- Reads, changes (change(conf) -> true | nil, message) and writes the config file under a lock
-- (config.json.lock), so two commands changing it at once both keep their change. Returns the
-- path, or nil, message.
function M.update(change)
  local dir, err = M.ensure_dir()
  if not dir then return nil, err end
  local guard, lerr = require("flextell.core").file_lock(dir .. "/config.json.lock", 0, true)
  if not guard then return nil, tostring(lerr) end
  local conf, path = M.load()
  local ok, cerr = false, path
  if conf then ok, cerr = change(conf) end
  local saved
  if ok then saved, cerr = M.save(conf) end
  guard:unlock()
  if not saved then return nil, cerr end
  return saved
end

--- Checks and converts a profile value given as text; value | nil, message.
function M.check(key, value)
  local k = M.KEYS[key]
  if not k then return nil, "unknown setting '" .. key .. "' (one of: " .. table.concat(M.ORDER, ", ") .. ")" end
  if k.integer then
    local n = value:match("^%d+$") and math.tointeger(tonumber(value))
    if not n or (key == "port" and (n < 1 or n > 65535)) then
      return nil, key .. " must be " .. (key == "port" and "a port number (1-65535)" or "a whole number")
    end
    return n
  end
  if value == "" then return nil, key .. " must not be empty" end
  if value:find("[%z\1-\31\127]") then return nil, key .. " must not contain control characters" end
  if (key == "base_url") and not value:match("^[hH][tT][tT][pP][sS]?://[^/%s?#]+[^%s]*$") then
    return nil, "base_url must be an absolute http:// or https:// URL, such as " .. M.DEFAULT_BASE_URL
  end
  return value
end

--- The origin (scheme://host:port, lower-case) of a URL; tokens belong to the origin that issued
-- them.
function M.origin(url)
  local scheme, host = tostring(url):match("^(%a[%w+.-]*)://([^/?#]+)")
  if not scheme then return nil end
  scheme, host = scheme:lower(), host:lower():gsub("^.*@", "")
  if not host:match(":%d+$") then host = host .. (scheme == "https" and ":443" or ":80") end
  return scheme .. "://" .. host
end

--- Resolves every setting for a run: flags (a table keyed like the profile) > environment >
-- profile > default; a profile named with --profile must exist unless allow_new. Returns
-- settings, where (key -> "flag"|"env"|"profile"|"default"), or nil, message.
function M.resolve(flags, profile_name, allow_new)
  local conf, path = M.load()
  if not conf then return nil, path end
  local named = profile_name or getenv("FLEXTELL_PROFILE")
  local name = named or "default"
  local profile = conf.profiles[name]
  if profile == nil and named ~= nil and name ~= "default" and not allow_new then
    return nil, "no profile '" .. name .. "' in " .. path .. " (flextell login --profile " .. name ..
      " or flextell config set --profile " .. name .. " makes one)"
  end
  profile = profile or {}
  local s, where = { profile = name, config_path = path }, {}
  for _, key in ipairs(M.ORDER) do
    local v, from = flags[key], "flag"
    if v == nil and M.KEYS[key].env then v, from = getenv(M.KEYS[key].env), "env" end
    if v == nil then v, from = profile[key], "profile" end
    if v ~= nil then
      local checked, err
      if type(v) ~= "string" and not (type(v) == "number" and M.KEYS[key].integer) then
        err = key .. " must be " .. (M.KEYS[key].integer and "a whole number" or "a string") .. ", not " ..
          (type(v) == "table" and "a JSON " .. (#v > 0 and "array" or "object") or type(v))
      else
        checked, err = M.check(key, tostring(v))
      end
      if checked == nil then
        local src = from == "env" and M.KEYS[key].env or from == "flag" and "--" .. key:gsub("_", "-") or
          ("profile '" .. name .. "'")
        return nil, src .. ": " .. err
      end
      s[key], where[key] = checked, from
    end
  end
  if s.base_url == nil then s.base_url, where.base_url = M.DEFAULT_BASE_URL, "default" end
  if s.port == nil then s.port, where.port = M.DEFAULT_PORT, "default" end
  s.token = getenv("FLEXTELL_TOKEN")
  if s.token then where.token = "env" end
  s.token_path = (M.dir() or ".") .. "/tokens/" .. name .. ".json"
  -- the origin whose server issued the profile's tokens (recorded by login)
  s.issuer = type(profile.issuer) == "string" and profile.issuer or
    M.origin(type(profile.base_url) == "string" and profile.base_url or M.DEFAULT_BASE_URL)
  return s, where
end

--- The redirect URI `flextell login` listens on (RFC 8252 section 7.3: loopback, by IP literal).
function M.redirect_uri(port)
  return "http://127.0.0.1:" .. port .. "/callback"
end

local function fail(kind, code, message)
  return setmetatable({ kind = kind, code = code, message = message }, lib().Error)
end

--- A client for the settings. Returns client, how, or nil, err (a flextell.Error):
--   "token"  FLEXTELL_TOKEN, used as it is;
--   "oauth"  the profile's OAuth client with its token file (tokens refresh and are saved);
--   "stored" the token file's access token without the client secret to refresh it;
--   "none"   nothing to authenticate with.
-- Stored tokens go only to the origin that issued them: a base URL of another origin (a flag,
-- FLEXTELL_BASE_URL) is refused with auth other_server rather than sending them there.
-- Bad settings (a base URL the library refuses...) are usage errors.
function M.client(s, extra)
  local flextell = lib()
  local opts = { base_url = s.base_url, ca_file = s.ca_file, user_agent = "flextell-cli/" .. flextell._VERSION }
  for k, v in pairs(extra or {}) do opts[k] = v end
  if s.tenant then opts.tenant = s.tenant end
  local how = "none"
  local store
  if s.token then
    opts.token, how = s.token, "token"
  else
    local f = io.open(s.token_path, "rb")
    local has_file = f ~= nil and f:read(1) ~= nil
    if f then f:close() end
    if has_file then
      if M.origin(s.base_url) ~= s.issuer then
        return nil, fail("auth", "other_server", "the tokens of profile '" .. s.profile .. "' were issued by " ..
          tostring(s.issuer) .. " and are not sent to " .. tostring(M.origin(s.base_url)) ..
          "; log in to that server under another profile (flextell login --profile NAME --base-url URL), " ..
          "or give its token in FLEXTELL_TOKEN")
      end
      store = flextell.token_file(s.token_path)
    end
    if s.client_id and s.client_secret then
      opts.client_id, opts.client_secret = s.client_id, s.client_secret
      opts.redirect_uri = M.redirect_uri(s.port)
      if store then opts.token_store = store elseif M.ensure_dir() then
        opts.token_store = flextell.token_file(s.token_path)
      end
      how = "oauth"
    elseif store then
      local tokens, err = store:load()
      if tokens == nil and err ~= nil then return nil, err end
      if tokens and tokens.access_token then opts.token, how = tokens.access_token, "stored" end
    end
  end
  local ok, client = pcall(flextell.new, opts)
  if not ok then
    if flextell.is_error(client) then
      if client.code == "token_store_error" or client.code == "io_error" then
        client.message = client.message .. " (flextell logout removes the stored tokens; then flextell login)"
      end
      return nil, client
    end
    local msg = tostring(client):gsub("^[^:]*:%d+: ", ""):gsub("^flextell%.new: ", "")
      :gsub("option 'base_url'", "the base URL " .. s.base_url):gsub("option 'ca_file'", "the CA file")
      :gsub("option 'token'", "FLEXTELL_TOKEN"):gsub(" %(set allow_http = true to allow it%)", " (use https://)")
    return nil, fail("usage", "invalid_setting", msg)
  end
  return client, how
end

return M
