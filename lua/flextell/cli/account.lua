--- `flextell login | logout | status`: the Authorization Code grant for a command line
-- (RFC 8252: the browser comes back to a loopback redirect URI; PKCE S256, RFC 7636), and what
-- the command knows about its tokens.

local flextell = require "flextell"
local config = require "flextell.cli.config"
local output = require "flextell.cli.output"

local M = {}

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function html_escape(s)
  local entities = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
  return (output.printable(s):gsub("[&<>\"']", entities))
end

local function page(title, text)
  return "<!doctype html><html><head><meta charset=\"utf-8\"><title>" .. html_escape(title) ..
    "</title></head><body style=\"font-family:sans-serif;margin:3em\"><h1>" .. html_escape(title) ..
    "</h1><p>" .. html_escape(text) .. "</p></body></html>\n"
end

local function respond(conn, status, reason, body)
  conn:send("HTTP/1.1 " .. status .. " " .. reason .. "\r\nContent-Type: text/html; charset=utf-8\r\n" ..
    "Content-Length: " .. #body .. "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" .. body)
end

--- Opens url in the user's browser: $BROWSER (the first command of the list; "%s" is replaced
-- by the URL), else xdg-open when there is a display. Returns true when it tried.
function M.open_browser(url)
  local cmd
  local browser = os.getenv("BROWSER")
  if browser and browser ~= "" then
    cmd = browser:match("^([^:]+)")
  elseif (os.getenv("DISPLAY") or os.getenv("WAYLAND_DISPLAY")) and
      (os.execute("command -v xdg-open >/dev/null 2>&1") == true) then
    cmd = "xdg-open"
  end
  if not cmd then return false end
  local program = cmd:match("^%s*(%S+)")
  if not program or os.execute("command -v " .. quote(program) .. " >/dev/null 2>&1") ~= true then
    output.note("flextell: could not start the browser (" .. cmd .. ": not found); open the URL yourself")
    return false
  end
  local line
  if cmd:find("%s", 1, true) then
    line = cmd:gsub("%%s", (quote(url):gsub("%%", "%%%%")))
  else
    line = cmd .. " " .. quote(url)
  end
  os.execute(line .. " </dev/null >/dev/null 2>&1 &")
  return true
end

-- Reads one HTTP request from a loopback connection: method, target; nil on a bad request.
local function read_request(conn)
  conn:settimeout(3) -- one connection at a time: an idle one must not hold the real redirect up
  local line = conn:receive("*l")
  if not line then return nil end
  local method, target = line:match("^(%u+) (%S+) HTTP/1%.[01]\r?$")
  for _ = 1, 100 do -- the headers, which are not needed
    local h = conn:receive("*l")
    if h == nil or h == "" or h == "\r" then break end
  end
  return method, target
end

-- The value of one query parameter of a request target, percent-decoded; nil when absent.
local function query_param(target, name)
  local query = target:match("%?([^#]*)")
  if not query then return nil end
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k == name then
      return (v:gsub("%+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
    end
  end
  return nil
end

-- Waits on the loopback listener for the browser's redirect; exchanges the code. Returns
-- tokens or nil, err. A request to /callback without this login's state (a stale tab, or a
-- page that forges a redirect to the loopback port) is answered 400 and ignored: only the
-- redirect of this authorization can end the wait, so no web page can cut a login short.
local function wait_for_browser(client, server, port, state, verifier, timeout)
  local socket = require "socket"
  server:settimeout(0.25)
  local deadline = socket.gettime() + timeout
  while socket.gettime() < deadline do
    local conn = server:accept()
    if conn then
      local method, target = read_request(conn)
      local path = target and target:match("^([^?#]*)")
      if method == "GET" and path == "/callback" and query_param(target, "state") ~= state then
        respond(conn, 400, "Bad Request", page("Not this login",
          "This is not the redirect flextell login is waiting for (its state does not match); it keeps waiting."))
        conn:close()
        output.note("flextell: ignored a redirect to /callback whose state does not match " ..
          "(a stale tab, or a forged redirect); still waiting")
      elseif method == "GET" and path == "/callback" then
        local tokens, err = client:exchange_code("http://127.0.0.1:" .. port .. target,
          { state = state, code_verifier = verifier })
        if tokens then
          respond(conn, 200, "OK", page("Logged in", "flextell is now authorized. You can close this tab."))
        else
          respond(conn, 400, "Bad Request", page("Not logged in", err.message .. " (" .. tostring(err.code) .. ")"))
        end
        conn:close()
        return tokens, err
      else
        respond(conn, 404, "Not Found", page("Not found", "flextell login waits on /callback only."))
        conn:close()
      end
    end
  end
  return nil, setmetatable({ kind = "auth", code = "login_timeout",
    message = "no answer from the browser within " .. timeout .. " s" }, flextell.Error)
end

local function save_profile(s, a)
  return config.update(function(conf)
    local p = conf.profiles[s.profile] or {}
    p.base_url = s.base_url ~= config.DEFAULT_BASE_URL and s.base_url or nil
    p.issuer = config.origin(s.base_url) -- the tokens go to this origin only
    p.client_id, p.client_secret = s.client_id, s.client_secret
    if s.port ~= config.DEFAULT_PORT then p.port = s.port end
    if a.scope then p.scope = a.scope end
    if s.ca_file then p.ca_file = s.ca_file end
    conf.profiles[s.profile] = p
    return true
  end)
end

local function when(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t))
end

--- flextell login
function M.login(a, s)
  if not s.client_id or not s.client_secret then
    output.error("login needs the OAuth client's id and secret: --client-id and --client-secret, " ..
      "FLEXTELL_CLIENT_ID and FLEXTELL_CLIENT_SECRET, or a profile that has them")
    return 2
  end
  if s.token then
    output.note("flextell: note: FLEXTELL_TOKEN is set; it takes the place of the tokens login saves " ..
      "until you unset it")
  end
  local dir, derr = config.ensure_dir()
  if not dir then
    output.error(derr)
    return 2
  end
  local redirect_uri = config.redirect_uri(s.port)
  local opts = {
    base_url = s.base_url, ca_file = s.ca_file, client_id = s.client_id, client_secret = s.client_secret,
    redirect_uri = redirect_uri, token_store = flextell.token_file(s.token_path),
    user_agent = "flextell-cli/" .. flextell._VERSION,
  }
  local ok, client = pcall(flextell.new, opts)
  if not ok and flextell.is_error(client) and (client.code == "token_store_error" or client.code == "io_error") then
    -- an unreadable token file is what login replaces: keep it aside, start afresh
    local aside = s.token_path .. ".unreadable"
    os.rename(s.token_path, aside)
    output.note("flextell: the stored tokens could not be read (" .. output.printable(client.message) ..
      "); moved them to " .. aside)
    ok, client = pcall(flextell.new, opts)
  end
  if not ok then
    output.error(flextell.is_error(client) and client or tostring(client):gsub("^[^:]*:%d+: ", ""))
    return flextell.is_error(client) and output.exit_code(client) or 2
  end
  local url, state, verifier = client:authorize_url { scope = s.scope, pkce = true }
  local tokens, err
  if a.no_browser then
    io.stderr:write("Open this URL in a browser and approve:\n\n  ", url, "\n\n",
      "The browser is then sent to ", redirect_uri, "?code=... (the page may not load).\n",
      "Paste that whole address here: ")
    io.stderr:flush()
    local line = io.stdin:read("l")
    if not output.isatty(0) then io.stderr:write("\n") end -- no echo ended the prompt's line
    if not line or line:match("^%s*$") then
      client:close()
      output.error("login: no redirect URL given")
      return 2
    end
    local pasted = line:match("^%s*(.-)%s*$")
    if not pasted:match("^https?://") then
      client:close()
      output.error("login: paste the whole address the browser was sent to (" .. redirect_uri .. "?code=...)")
      return 2
    end
    tokens, err = client:exchange_code(pasted, { state = state, code_verifier = verifier })
  else
    local socket = require "socket"
    local server, berr = socket.bind("127.0.0.1", s.port)
    if not server then
      client:close()
      output.error("login: cannot listen on 127.0.0.1:" .. s.port .. " (" .. tostring(berr) ..
        "); pass --port N and register " .. config.redirect_uri("N") .. " with the OAuth client")
      return 2
    end
    io.stderr:write("Open this URL in a browser and approve:\n\n  ", url, "\n\n")
    if M.open_browser(url) then io.stderr:write("(opening it in your browser)\n") end
    io.stderr:write("Waiting for the browser on ", redirect_uri, " ...\n")
    io.stderr:flush()
    tokens, err = wait_for_browser(client, server, s.port, state, verifier, a.timeout or 300)
    server:close()
  end
  if not tokens then
    client:close()
    output.error(err)
    return output.exit_code(err)
  end
  local saved, serr = save_profile(s, a)
  client:close()
  if not saved then
    output.error("logged in, but the profile could not be saved: " .. tostring(serr))
    return 2
  end
  output.note("Logged in to " .. s.base_url .. " (profile " .. s.profile .. "); the token is valid until " ..
    when(tokens.expires_at) .. " and refreshes itself. Tokens: " .. s.token_path)
  return 0
end

--- flextell logout: forgets the profile's tokens (the profile's settings stay).
function M.logout(_, s)
  local f = io.open(s.token_path, "rb")
  if f then
    f:close()
    local ok, err = os.remove(s.token_path)
    if not ok then
      output.error("logout: " .. tostring(err))
      return 2
    end
    os.remove(s.token_path .. ".lock")
    output.note("Logged out of profile " .. s.profile .. " (removed " .. s.token_path .. ")")
  else
    output.note("Not logged in (profile " .. s.profile .. ")")
  end
  if s.token then output.note("flextell: note: FLEXTELL_TOKEN is still set in the environment") end
  return 0
end

local function redact(token)
  if type(token) ~= "string" then return "none" end
  return string.rep("*", 8) .. " (" .. #token .. " characters)"
end

--- flextell status: profile, base URL, where the token comes from, its expiry, the tenant, and
-- the account's tenants as the API reports them (one GET /v1/account/tenants).
function M.status(_, s, client, how)
  local lines = {}
  local function line(k, v) lines[#lines + 1] = string.format("%-9s %s", k, v) end
  line("profile", s.profile .. " (" .. tostring(s.config_path) .. ")")
  line("base URL", s.base_url)
  local code = 0
  if how == "token" then
    line("token", redact(s.token) .. " from FLEXTELL_TOKEN (expiry unknown; not refreshed)")
  elseif how == "stored" then
    local t = flextell.token_file(s.token_path):load() or {}
    line("token", redact(t.access_token) .. " from " .. s.token_path ..
      " (not refreshed: the profile has no client secret)")
    if t.expires_at then
      local left = t.expires_at - require("flextell.core").time()
      line("expires", when(t.expires_at) .. (left > 0 and string.format(" (in %d min)", math.floor(left / 60))
        or " (expired: set the client secret, or log in again)"))
    end
  elseif how == "oauth" then
    local t = client:tokens()
    if t and t.access_token then
      line("token", redact(t.access_token) .. " from " .. s.token_path ..
        (t.refresh_token and ", with a refresh token" or ", without a refresh token"))
      if t.expires_at then
        local left = t.expires_at - require("flextell.core").time()
        line("expires", when(t.expires_at) .. (left > 0 and string.format(" (in %d min)", math.floor(left / 60))
          or t.refresh_token and " (expired: refreshed on the next call)" or " (expired: log in again)"))
      end
      if t.scope then line("scope", t.scope) end
    else
      line("token", "none: not logged in (flextell login)")
      code = 3
    end
  else
    line("token", "none: not logged in (flextell login, or set FLEXTELL_TOKEN)")
    code = 3
  end
  line("tenant", s.tenant and tostring(s.tenant) or "none (calls go without X-Tenant)")
  if code == 0 then
    local tenants, err = client:tenants()
    if tenants then
      local names = {}
      for _, t in ipairs(tenants) do names[#names + 1] = tostring(t.name) .. " (" .. tostring(t.id) .. ")" end
      line("account", #tenants .. " tenant" .. (#tenants == 1 and "" or "s") ..
        (#names > 0 and ": " .. table.concat(names, ", ") or ""))
    else
      line("account", "unreachable: " .. tostring(err):gsub("^flextell: ", ""))
      code = output.exit_code(err)
    end
  end
  output.out(table.concat(lines, "\n"), "\n")
  return code
end

return M
