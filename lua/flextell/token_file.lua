--- flextell.token_file(path): keeps a client's tokens in a JSON file (mode 0600, saved
-- atomically), so a script authorizes once and then runs unattended.
--
--   local store = flextell.token_file(os.getenv("HOME") .. "/.flextell-tokens.json")
--   local client = flextell.new(store:options { client_id = ..., client_secret = ... })

local core = require "flextell.core"

local io_open, pairs, setmetatable, type = io.open, pairs, setmetatable, type

local M = {}

local Store = {}
Store.__index = Store
Store.__name = "flextell.TokenFile"

local fields = { "access_token", "refresh_token", "expires_at", "token_type", "scope" }

local function io_error(message)
  return setmetatable({ kind = "usage", code = "io_error", message = message }, core.Error)
end

--- The saved tokens, or nil when there is no file yet, or nil, err when it cannot be read.
function Store:load()
  local f = io_open(self.path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local t, why = core.json_decode(text or "")
  if type(t) ~= "table" then
    return nil, io_error("cannot read tokens from " .. self.path .. ": " .. (why or "not a JSON object"))
  end
  local tokens = {}
  for _, k in pairs(fields) do tokens[k] = t[k] end
  return tokens
end

--- Saves tokens (the table on_token receives); true, or nil, err.
function Store:save(tokens)
  local t = {}
  for _, k in pairs(fields) do t[k] = tokens[k] end
  local text, why = core.json_encode(t)
  if not text then return nil, io_error("cannot encode tokens: " .. why) end
  return core.save_private_file(self.path, text .. "\n")
end

--- A copy of opts with the saved tokens filled in and on_token saving every change. An error
-- while saving is raised inside on_token, so the call that refreshed reports it.
function Store:options(opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  local saved, err = self:load()
  if err then error(err, 2) end
  if saved then
    o.access_token, o.refresh_token, o.expires_at = saved.access_token, saved.refresh_token, saved.expires_at
  end
  local user_hook = o.on_token
  o.on_token = function(tokens)
    local ok, why = self:save(tokens)
    if not ok then error(why.message, 0) end
    if user_hook then user_hook(tokens) end
  end
  return o
end

function M.new(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'token_file' (path expected)", 2)
  end
  return setmetatable({ path = path }, Store)
end

return M
