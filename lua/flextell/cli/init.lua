--- The `flextell` command: the Flextell API from a shell. `require("flextell.cli").main(arg)`
-- parses a command line (lua-argparse), runs it, and returns the exit code:
--   0 ok; 1 the API answered with an error (kinds http, protocol, decode, limit);
--   2 usage (bad flags or input, kind usage); 3 authentication needed (kind auth);
--   4 network, timeout or TLS (kinds network, timeout, tls).

local argparse = require "argparse"
local config = require "flextell.cli.config"
local output = require "flextell.cli.output"

local M = {}

local EPILOG = [[
Settings: a flag wins over the environment, which wins over the profile (--profile NAME, or
FLEXTELL_PROFILE; default "default") in $XDG_CONFIG_HOME/flextell/config.json.
Environment: FLEXTELL_TOKEN (a bearer token; used instead of stored tokens), FLEXTELL_BASE_URL,
FLEXTELL_TENANT, FLEXTELL_CLIENT_ID, FLEXTELL_CLIENT_SECRET, FLEXTELL_CA_FILE, FLEXTELL_PROFILE,
NO_COLOR, BROWSER.

Exit codes:
  0  success
  1  the API answered with an error: HTTP 4xx/5xx, a broken contract, a body that is not JSON,
     a limit (error kinds http, protocol, decode, limit)
  2  usage: bad flags or input, found before sending; an interrupted call (kind usage)
  3  authentication needed: not logged in, token refused, login failed (kind auth)
  4  network, timeout or TLS failure (kinds network, timeout, tls)]]

local function integer(name, min, max)
  return function(s)
    local n = s:match("^%d+$") and math.tointeger(tonumber(s))
    if s:match("^%d+$") and not n then return nil, name .. " is too large" end
    if not n or n < min or (max and n > max) then
      return nil, name .. " must be a whole number" .. (max and (" from " .. min .. " to " .. max) or (" >= " .. min))
    end
    return math.floor(n)
  end
end

local function seconds(s)
  local n = tonumber(s)
  if not n or n ~= n or n <= 0 or n == math.huge then return nil, "expected a number of seconds > 0" end
  return n
end

-- Options every command takes.
local function common(cmd)
  cmd:option("--profile", "Profile to use (default: $FLEXTELL_PROFILE, else \"default\").")
  cmd:option("--base-url", "API base URL (default: $FLEXTELL_BASE_URL, the profile's, else " ..
    config.DEFAULT_BASE_URL .. ").")
  cmd:option("--ca-file", "PEM file of CA certificates to trust (default: $FLEXTELL_CA_FILE).")
  cmd:option("--color", "Colour output: auto (on a terminal, unless NO_COLOR is set), always, never.", "auto")
    :choices { "auto", "always", "never" }
end

local VERBS = {
  { "get", "GET a path: one object, or one page of a list (--paginate for all of it)." },
  { "post", "POST a path (create). Body from -d, or fields from -F/-f." },
  { "put", "PUT a path (replace). Body from -d, or fields from -F/-f." },
  { "patch", "PATCH a path (update). Body from -d, or fields from -F/-f." },
  { "delete", "DELETE a path." },
}

local function api_options(cmd)
  cmd:argument("path", "Path under the base URL, such as /v1/customers/7.")
  cmd:option("-q --query", "Query parameter key=value (repeatable; a repeated key is a list)."):count("*")
    :argname("<key=value>")
  cmd:option("-F --field", "Typed field key=value: true, false, null and numbers become JSON values, " ..
    "@file (or @-) the file's contents; name[key]=v and name[]=v nest. Builds the JSON body " ..
    "(the query for get and delete)."):count("*"):argname("<key=value>")
  cmd:option("-f --raw-field", "String field key=value (never converted); otherwise as -F."):count("*")
    :argname("<key=value>")
  cmd:option("-d --data", "JSON body: the text itself, @file, or - for stdin (checked before sending).")
    :argname("<json|@file|->")
  cmd:option("-H --header", "Request header 'Name: value' (repeatable; of one name, the last wins).")
    :count("*"):argname("<header>")
  cmd:option("--tenant", "Send X-Tenant: ID (default: $FLEXTELL_TENANT or the profile's).")
    :convert(integer("--tenant", 0)):argname("<id>")
  cmd:flag("-i --include", "Print the status line and response headers on stderr.")
  cmd:flag("--raw", "Print the whole response body (the envelope), not just its data.")
  cmd:flag("--paginate", "Follow every page of a list (cursor or page style), streaming the items.")
  cmd:flag("--jsonl", "With --paginate: one item per line (JSON Lines) instead of one JSON array.")
  cmd:option("--max-items", "With --paginate: stop after N items (a note on stderr says when more remain).")
    :convert(integer("--max-items", 1)):argname("<n>")
  cmd:flag("--curl", "Print the request as a curl command and send nothing (token redacted).")
  cmd:flag("--dry-run", "Print the request that would be sent (line, headers, body) and send nothing.")
  cmd:flag("--show-secrets", "With --curl or --dry-run: show the token instead of <redacted>.")
  cmd:option("--timeout", "Seconds for each attempt (default 30).", nil):convert(seconds):argname("<s>")
  cmd:option("--max-retries", "Retries of a failed call (0-10; default 2).")
    :convert(integer("--max-retries", 0, 10)):argname("<n>")
  common(cmd)
end

local function build_parser()
  local p = argparse("flextell", "The Flextell API from a shell: calls, paging, login and tokens, a local sandbox.")
    :epilog(EPILOG)
    :help_max_width(100)
    :add_help_command()
    :add_complete_command()
  p:command_target("command")
  p:flag("--version", "Print the version and exit."):action(function()
    io.stdout:write("flextell ", require("flextell")._VERSION, "\n")
    os.exit(0)
  end)
  local commands = {}
  for _, v in ipairs(VERBS) do
    local cmd = p:command(v[1], v[2]):epilog(EPILOG)
    api_options(cmd)
    commands[v[1]] = cmd
  end
  local login = p:command("login", "Log in with the Authorization Code grant (loopback redirect, PKCE) " ..
    "and save the tokens for the profile."):epilog(EPILOG)
  login:option("--client-id", "OAuth client id (default: $FLEXTELL_CLIENT_ID or the profile's).")
  login:option("--client-secret", "OAuth client secret (default: $FLEXTELL_CLIENT_SECRET or the profile's; " ..
    "prefer the environment: a flag is visible to other users in ps).")
  login:option("--port", "Loopback port of the redirect URI http://127.0.0.1:PORT/callback, which must be " ..
    "registered with the OAuth client (default " .. config.DEFAULT_PORT .. ").")
    :convert(integer("--port", 1, 65535))
  login:option("--scope", "Scopes to ask for, space separated (such as 'customers:read tenants:read').")
  login:flag("--no-browser", "Do not listen or open a browser: print the URL and read the redirect URL pasted back.")
  login:option("--timeout", "Seconds to wait for the browser (default 300).", nil):convert(seconds)
  common(login)
  common(p:command("logout", "Forget the profile's tokens (its settings stay)."):epilog(EPILOG))
  common(p:command("status", "Show the profile, base URL, token (redacted), expiry, tenant and account.")
    :epilog(EPILOG))
  local tenants = p:command("tenants", "List the account's tenants (GET /v1/account/tenants).")
  tenants:flag("--raw", "Print the whole response body.")
  common(tenants)
  local cfg = p:command("config", "Show or change the profile's settings.")
  cfg:command_target("config_command")
  common(cfg:command("list", "Print the profile's settings (the client secret redacted)."))
  local get = cfg:command("get", "Print one setting.")
  get:argument("key", "One of: " .. table.concat(config.ORDER, ", ") .. "."):choices(config.ORDER)
  common(get)
  local set = cfg:command("set", "Set a setting in the profile.")
  set:argument("key", "One of: " .. table.concat(config.ORDER, ", ") .. "."):choices(config.ORDER)
  set:argument("value", "The value.")
  common(set)
  local unset = cfg:command("unset", "Remove a setting from the profile.")
  unset:argument("key", "One of: " .. table.concat(config.ORDER, ", ") .. "."):choices(config.ORDER)
  common(unset)
  commands.login, commands.tenants, commands.config = login, tenants, cfg
  local sb = p:command("sandbox", "Run the local Flextell sandbox in the background.")
  commands.sandbox = sb
  sb:command_target("sandbox_command")
  local start = sb:command("start", "Start it (or find the running one) and print shell exports: " ..
    "eval \"$(flextell sandbox start)\".")
  start:flag("--tls", "Serve HTTPS (with a CA of its own, exported as FLEXTELL_CA_FILE).")
  start:option("--port", "Port of the API (default: a free one)."):convert(integer("--port", 1, 65535))
  common(start)
  common(sb:command("stop", "Stop it."))
  common(sb:command("status", "Print its exports; exit 1 when none is running."))
  return p, commands
end

M.parser = build_parser

-- Settings for a parsed command line; nil, message on a bad setting.
local function settings(a)
  local flags = { base_url = a.base_url, ca_file = a.ca_file }
  if a.command == "login" then
    flags.client_id, flags.client_secret, flags.port, flags.scope = a.client_id, a.client_secret, a.port, a.scope
  end
  return config.resolve(flags, a.profile, a.command == "login")
end

local function make_client(s, a)
  return config.client(s, { timeout = a.timeout, max_retries = a.max_retries })
end

local function need_login(s)
  output.error("not logged in (profile " .. s.profile .. "): run `flextell login`, or set FLEXTELL_TOKEN")
  return 3
end

local function logged_in(client, how)
  if how == "token" or how == "stored" then return true end
  if how ~= "oauth" then return false end
  local t = client:tokens()
  return t ~= nil and t.access_token ~= nil
end

local function api(a, s)
  local request = require "flextell.cli.request"
  local method = a.command:upper()
  if a.jsonl and not a.paginate then return nil, "--jsonl goes with --paginate" end
  if a.max_items and not a.paginate then return nil, "--max-items goes with --paginate" end
  if a.raw and a.paginate then return nil, "--raw prints one answer's whole body: it does not go with --paginate" end
  if a.paginate and method ~= "GET" then return nil, "--paginate walks a list: use get" end
  if a.show_secrets and not (a.curl or a.dry_run) then return nil, "--show-secrets goes with --curl or --dry-run" end
  if a.curl and a.dry_run then return nil, "give --curl or --dry-run, not both" end
  local req, err = request.build(method, a, s)
  if not req then return nil, err end
  local client, how = make_client(s, a)
  if not client then return nil, how end
  local style = output.style(a.color)
  local ok, code = xpcall(function()
    if a.curl then
      req.reveal_token = a.show_secrets or nil
      local line, cerr = client:to_curl(req)
      if not line then
        output.error(cerr)
        return output.exit_code(cerr)
      end
      output.out(line, "\n")
      return 0
    elseif a.dry_run then
      return request.dry_run(client, req, a.show_secrets)
    end
    if not logged_in(client, how) then return need_login(s) end
    if a.paginate then return request.paginate(client, req, a, style) end
    return request.once(client, req, a, style)
  end, function(e) return e end)
  client:close()
  if not ok then
    if require("flextell").is_error(code) then
      output.error(code)
      return output.exit_code(code)
    end
    error(code, 0)
  end
  return code
end

-- A value of the config file as text (a string as it is, anything else as JSON).
local function shown(v)
  if type(v) == "string" then return v end
  return require("flextell").json.encode(v) or tostring(v)
end

local function config_command(a)
  local conf, path = config.load()
  if not conf then return nil, path end
  local name = a.profile or os.getenv("FLEXTELL_PROFILE")
  if name == "" then name = nil end
  local sub = a.config_command
  if name and name ~= "default" and conf.profiles[name] == nil and sub ~= "set" then
    return nil, "no profile '" .. name .. "' in " .. path
  end
  name = name or "default"
  local p = conf.profiles[name] or {}
  if sub == "list" then
    for _, k in ipairs(config.ORDER) do
      if p[k] ~= nil then
        output.out(k, " = ", config.KEYS[k].secret and "<redacted>" or shown(p[k]), "\n")
      end
    end
    return 0
  end
  if not config.KEYS[a.key] then
    return nil, "unknown setting '" .. a.key .. "' (one of: " .. table.concat(config.ORDER, ", ") .. ")"
  end
  if sub == "get" then
    if p[a.key] == nil then return 1 end
    output.out(shown(p[a.key]), "\n")
    return 0
  end
  local v, err
  if sub == "set" then
    v, err = config.check(a.key, a.value)
    if v == nil then return nil, err end
  end
  local saved
  saved, err = config.update(function(c)
    local prof = c.profiles[name] or {}
    prof[a.key] = v -- nil for unset
    c.profiles[name] = prof
    return true
  end)
  if not saved then return nil, err end
  return 0
end

local function run(a)
  local cmd = a.command
  -- config reads and repairs the file itself: a bad value elsewhere must not lock it out
  if cmd == "config" then return config_command(a) end
  local s, err = settings(a)
  if not s then return nil, err end
  if cmd == "get" or cmd == "post" or cmd == "put" or cmd == "patch" or cmd == "delete" then
    return api(a, s)
  elseif cmd == "login" then
    return require("flextell.cli.account").login(a, s)
  elseif cmd == "logout" then
    return require("flextell.cli.account").logout(a, s)
  elseif cmd == "status" or cmd == "tenants" then
    local client, how = make_client(s, a)
    if not client then return nil, how end
    local code
    if cmd == "status" then
      code = require("flextell.cli.account").status(a, s, client, how)
    elseif not logged_in(client, how) then
      code = need_login(s)
    else
      code = require("flextell.cli.request").once(client, { method = "GET", path = "/v1/account/tenants",
        tenant = false }, a, output.style(a.color))
    end
    client:close()
    return code
  elseif cmd == "sandbox" then
    return require("flextell.cli.sandbox")[a.sandbox_command](a)
  end
  return nil, "unknown command"
end

--- Runs the command line args (a list of strings); returns the exit code.
function M.main(args)
  local parser, commands = build_parser()
  local ok, a = parser:pparse(args)
  if not ok then
    -- the usage of the command the error is about, when the line names one
    local usage_of = parser
    for _, word in ipairs(args) do
      if commands[word] then
        usage_of = commands[word]
        break
      end
    end
    io.stderr:write(usage_of:get_usage(), "\n\nflextell: ", a, "\n(flextell --help, or flextell help COMMAND)\n")
    return 2
  end
  if not a.command then
    io.stderr:write(parser:get_help(), "\n")
    return 2
  end
  local ran, code, err = pcall(run, a)
  if not ran then
    -- Ctrl-C: the interpreter raises "interrupted!" in whatever Lua code runs next
    local msg = tostring(code)
    if msg:match("interrupted!?$") then
      local write = a.command == "post" or a.command == "patch" or a.command == "put" or a.command == "delete"
      output.error("interrupted" ..
        (write and "; the request may have reached the server (check before repeating it)" or ""))
    else
      output.error(msg:gsub("^[^:]*:%d+: ", ""))
    end
    return 2
  end
  if code == nil then
    output.error(err)
    return output.exit_code(err)
  end
  if not output.flush() then
    output.error("cannot write the output (" .. tostring(output.write_error) .. ")")
    return code ~= 0 and code or 1
  end
  return code
end

return M
