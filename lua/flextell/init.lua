--- flextell: the Lua client for the Flextell REST API.
-- The C core (flextell.core) does HTTP, authentication, JSON and errors; this module adds the
-- helpers that compose its calls: paging iterators, resources, tenants and to_curl.

local core = require "flextell.core"
local pager = require "flextell.pager"
local resource = require "flextell.resource"
local to_curl = require "flextell.to_curl"
local token_file = require "flextell.token_file"

local package = package

local M = {
  _VERSION = core._VERSION,
  null = core.null,
  array = core.array,
  Error = core.Error,
  json = { encode = core.json_encode, decode = core.json_decode },
}

local registered = {}

-- cjson's markers (array_mt, empty_array) mean "JSON array" to us too, when cjson is in use.
local function adopt_cjson_markers()
  for _, name in ipairs { "cjson", "cjson.safe" } do
    local cjson = package.loaded[name]
    if type(cjson) == "table" and not registered[cjson] then
      registered[cjson] = true
      for _, marker in ipairs { "array_mt", "empty_array_mt", "empty_array" } do
        if cjson[marker] ~= nil then core.json_mark_array(cjson[marker]) end
      end
    end
  end
end

--- Creates a client; see the README for the options. Raises on unknown or mistyped options
-- (the error points at the caller's line, so it is the C function itself).
M.new = core.new

--- A token store on disk; see flextell/token_file.lua.
M.token_file = token_file.new

--- True when v is a flextell.Error.
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.Error
end

local methods = core.Client

pager.install(methods)
resource.install(methods)
to_curl.install(methods)

--- The tenants of the token's user (GET /v1/account/tenants, sent without X-Tenant).
function methods:tenants()
  return self:get("/v1/account/tenants", nil, { tenant = false })
end

adopt_cjson_markers()

return M
