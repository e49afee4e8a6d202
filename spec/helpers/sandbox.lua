-- The one way specs get a sandbox:
--   local sandbox = require "spec.helpers.sandbox"
--   local sb
--   setup(function() sb = sandbox.start() end)
--   teardown(function() sb:stop() end)
-- busted insulates each spec file (package.loaded is restored), so this module, and with it the
-- running sandbox, belongs to one spec file. start() called again in the same file returns the
-- running sandbox after a reset, unless other options are asked for.
local launcher = require "flextell.sandbox"

local M = {}

local current, current_key

-- Options as one string, nested tables (clients) included, so equal options give equal keys.
local function key_of(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. key_of(v[k]) end
  return "{" .. table.concat(parts, ";") .. "}"
end

-- Returns the running handle (fields url, https_url, ca_file, token, client_id, client_secret,
-- redirect_uri, redirect_origin...; methods control, reset, arm, requests, config, oauth,
-- expire_tokens, authorize_url, approve, deny, stop). Raises on failure:
-- a spec without its server cannot do anything useful.
function M.start(opts)
  opts = opts or {}
  local key = key_of(opts)
  if current and not current.stopped then
    if key == current_key then
      assert(current:reset())
      return current
    end
    current:stop()
  end
  local sb, err = launcher.start(opts)
  if not sb then error(err, 2) end
  current, current_key = sb, key
  return sb
end

function M.current()
  return current
end

function M.stop()
  if current then current:stop() end
  current = nil
end

-- Registers, in the current describe block, the file's sandbox (reset before each test) and a
-- fresh client with the static token; bind(sb, client) receives both before each test.
function M.fixture(bind, opts)
  local busted = require "busted"
  local sb
  busted.setup(function() sb = M.start(opts) end)
  busted.teardown(function() sb:stop() end)
  busted.before_each(function()
    sb:reset()
    bind(sb, require("flextell").new { base_url = sb.url, token = sb.token })
  end)
end

M.launcher = launcher
--- The most requests the server had in hand at one moment, from a request log (a list of
-- requests with `time` and `finished`, as sb:requests gives): how many calls really overlapped.
function M.peak(requests)
  local events = {}
  for _, r in ipairs(requests) do
    events[#events + 1] = { r.time, 1 }
    events[#events + 1] = { r.finished, -1 }
  end
  table.sort(events, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
  local n, most = 0, 0
  for _, e in ipairs(events) do
    n = n + e[2]
    if n > most then most = n end
  end
  return most
end

return M
