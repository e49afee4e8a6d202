--- `flextell sandbox start | stop | status`: the local Flextell-compatible server in the
-- background, so the command (and scripts) can be tried offline.
--   eval "$(flextell sandbox start)"   # exports FLEXTELL_BASE_URL and FLEXTELL_TOKEN
-- Which sandbox runs is kept in <config folder>/sandbox.json (its prefix folder).

local flextell = require "flextell"
local core = require "flextell.core"
local config = require "flextell.cli.config"
local output = require "flextell.cli.output"

local M = {}

-- The sandbox's OAuth client; it accepts login's default loopback redirect URI too.
M.CLIENT_ID, M.CLIENT_SECRET = "sandbox-client", "sandbox-secret"

local function sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function state_path()
  local dir = config.dir()
  return dir and (dir .. "/sandbox.json")
end

-- The sandbox the state file names: handle, answering (true when it answers); nil when there
-- is no state file; nil, message when the file cannot be read.
local function recorded()
  local path = state_path()
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local ok, t = pcall(flextell.json.decode, text)
  if not ok or type(t) ~= "table" or type(t.prefix) ~= "string" then
    return nil, path .. " cannot be read as the sandbox's state; if no sandbox runs, remove it " ..
      "(a running one: stop its nginx, whose prefix is a flextell-sandbox.* folder under $TMPDIR or /tmp)"
  end
  local sb = require("flextell.sandbox").attach(t.prefix)
  if not sb then return nil end
  return sb, sb:control("GET", "/_sandbox/health") ~= nil
end

-- The running sandbox, or nil (, message when the state file is unreadable).
local function running()
  local sb, answering = recorded()
  if sb and answering then return sb end
  return nil, answering
end

local function exports(sb)
  local url = sb.https_url or sb.url
  local lines = {
    "export FLEXTELL_BASE_URL=" .. sh(url),
    "export FLEXTELL_TOKEN=" .. sh(sb.token),
  }
  if sb.https_url then lines[#lines + 1] = "export FLEXTELL_CA_FILE=" .. sh(sb.ca_file) end
  output.out(table.concat(lines, "\n"), "\n")
  return url
end

local function explain(sb, url, already)
  output.note((already and "A sandbox is already running" or "Sandbox started") .. " at " .. url ..
    " (nginx, prefix " .. sb.prefix .. ").\n" ..
    "  Use it:   eval \"$(flextell sandbox start)\"; flextell get /v1/customers\n" ..
    "  Log in:   flextell login --profile sandbox --base-url " .. url .. " --client-id " .. M.CLIENT_ID ..
    " --client-secret " .. M.CLIENT_SECRET .. (sb.https_url and " --ca-file " .. sb.ca_file or "") .. "\n" ..
    "  Stop it:  flextell sandbox stop")
end

function M.start(a)
  local sb, unreadable = running()
  if unreadable then
    output.error(unreadable)
    return 2
  end
  if sb then
    explain(sb, exports(sb), true)
    if a.tls or a.port then
      output.note("flextell: --tls and --port apply to a new sandbox: stop this one first (flextell sandbox stop)")
    end
    return 0
  end
  local dir, derr = config.ensure_dir()
  if not dir then
    output.error(derr)
    return 2
  end
  local err
  sb, err = require("flextell.sandbox").start {
    tls = a.tls or false, port = a.port, watch = false, quiet = true,
    clients = { { client_id = M.CLIENT_ID, client_secret = M.CLIENT_SECRET, name = "Sandbox Client",
      redirect_uris = { "http://127.0.0.1/callback", config.redirect_uri(config.DEFAULT_PORT) } } },
  }
  if not sb then
    err = tostring(err):gsub("^flextell%.sandbox: ", "sandbox: ")
    output.error(err)
    return err:match("is already in use") and 2 or 4
  end
  sb:detach()
  local ok, serr = pcall(core.save_private_file, state_path(), flextell.json.encode { prefix = sb.prefix } .. "\n")
  if not ok then
    sb.detached = false
    sb:stop()
    output.error(serr)
    return 2
  end
  explain(sb, exports(sb), false)
  return 0
end

function M.stop()
  local sb, answering = recorded()
  if sb == nil and answering then -- an unreadable state file
    output.error(answering)
    return 2
  end
  if not sb then
    output.note("No sandbox is running.")
    return 0
  end
  sb.detached = false
  sb:stop() -- also when nginx died: its prefix folder goes too
  os.remove(state_path())
  output.note(answering and "Sandbox stopped." or "The sandbox had stopped answering; its files are removed.")
  return 0
end

function M.status()
  local sb, unreadable = running()
  if unreadable then
    output.error(unreadable)
    return 2
  end
  if not sb then
    output.note("No sandbox is running (start one with: flextell sandbox start).")
    return 1
  end
  local url = exports(sb)
  output.note("Sandbox running at " .. url .. " (prefix " .. sb.prefix .. ").")
  return 0
end

return M
