--- What the token stores share: the token fields they keep, and checks of their arguments.
-- A store (see the README's "Sharing a grant") has
--   load() -> tokens | nil, version          (nil: no tokens yet; version: an integer >= 0)
--          | nil, err
--   save(tokens, version) -> true, new_version  (compare-and-set: only when the store is still at
--          | false                               `version`; false when another holder saved since)
--          | nil, err
--   lock{ ttl = s, wait = s } -> lock | nil, "busy" | nil, err    (never blocks)
--   lock:unlock()
-- A version of nil in save() means "whatever is there" (an explicit overwrite).

local core = require "flextell.core"

local getmetatable, pairs, setmetatable, type = getmetatable, pairs, setmetatable, type
local math_type = math.type

local M = {}

M.FIELDS = { "access_token", "refresh_token", "expires_at", "token_type", "scope" }

--- A copy of the token fields of t, or nil when t holds neither token.
function M.copy(t)
  if type(t) ~= "table" then return nil end
  local out = {}
  for _, k in pairs(M.FIELDS) do out[k] = t[k] end
  if out.access_token == nil and out.refresh_token == nil then return nil end
  return out
end

function M.error(kind, code, message)
  return setmetatable({ kind = kind, code = code, message = message }, core.Error)
end

--- True when v is a version: an integer from 0 to 2^53 (a float with an integer value counts,
-- for LuaJIT).
function M.is_version(v)
  if type(v) ~= "number" or v ~= v or v < 0 or v >= 2 ^ 53 then return false end
  if math_type and math_type(v) == "integer" then return true end
  return v % 1 == 0
end

--- Decodes the JSON text of stored tokens: the table, or nil, why, and whether it was the shape
-- (not a JSON object) rather than a field of the wrong type.
function M.decode(text)
  local t, why = core.json_decode(text)
  if type(t) ~= "table" or getmetatable(t) == core.array_mt then return nil, why or "not a JSON object", true end
  local bad = M.check(t)
  if bad then return nil, bad, false end
  return t
end

--- Checks the token fields of a table read from storage; nil, or what is wrong.
function M.check(t)
  for _, k in pairs { "access_token", "refresh_token", "token_type", "scope" } do
    if t[k] ~= nil and type(t[k]) ~= "string" then return k .. " is not a string" end
  end
  local e = t.expires_at
  if e ~= nil and (type(e) ~= "number" or e ~= e or e < 0) then return "expires_at is not a number >= 0" end
  return nil
end

--- The tokens given to save(): a copy of their token fields, or a raise (level 3: the caller of
-- save) when they are not what the client could send or keep: an access or refresh token that is
-- not a non-empty string of visible ASCII (RFC 6750's b64token, RFC 6749's VSCHAR), a token_type
-- or scope with a control character, an expires_at that is not a number >= 0. A store never
-- holds tokens its next load() would refuse.
function M.tokens_arg(tokens)
  if type(tokens) ~= "table" then error("bad argument #1 to 'save' (table expected, got " .. type(tokens) .. ")", 3) end
  local bad = M.check(tokens)
  if not bad then
    for _, k in pairs { "access_token", "refresh_token" } do
      local v = tokens[k]
      if v ~= nil and not v:find("^[\33-\126]+$") then bad = k .. " is not a non-empty string of visible ASCII" end
    end
    for _, k in pairs { "token_type", "scope" } do
      local v = tokens[k]
      if v ~= nil and not v:find("^[\32-\126]*$") then bad = k .. " has a control character" end
    end
    local e = tokens.expires_at
    if e == math.huge then bad = "expires_at is not a number >= 0" end
  end
  if bad then error("bad argument #1 to 'save' (" .. bad .. ")", 3) end
  local copy = M.copy(tokens)
  if copy == nil then error("bad argument #1 to 'save' (neither access_token nor refresh_token)", 3) end
  return copy
end

--- Checks lock{ ttl =, wait = }; returns ttl, wait (seconds) or raises.
function M.lock_args(opts, who)
  if type(opts) ~= "table" then error("bad argument #1 to '" .. who .. "' (table expected)", 3) end
  local ttl, wait = opts.ttl, opts.wait
  if type(ttl) ~= "number" or ttl ~= ttl or ttl <= 0 or ttl == math.huge then
    error(who .. ": ttl must be a number of seconds > 0", 3)
  end
  if wait ~= nil and (type(wait) ~= "number" or wait ~= wait or wait < 0) then
    error(who .. ": wait must be a number of seconds >= 0", 3)
  end
  return ttl, wait or 0
end

return M
