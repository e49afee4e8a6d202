--- CRUD sugar over one collection path: client:resource("/v1/customers").
-- Ids are percent-encoded into the path, so an id never changes the path's meaning.

local core = require "flextell.core"

local error, setmetatable, type, tostring = error, setmetatable, type, tostring
local math_type = math.type

local M = {}

local Resource = {}
Resource.__index = Resource
Resource.__name = "flextell.Resource"

local function is_integer(v)
  if math_type then return math_type(v) == "integer" end
  return type(v) == "number" and v % 1 == 0
end

-- The path of one item, or nil, err for an id that cannot name one.
local function item_path(self, id)
  local bad
  if type(id) == "string" then
    if id == "" then
      bad = "the id is empty"
    elseif id == "." or id == ".." then
      bad = "the id '" .. id .. "' is not allowed"
    end
  elseif not is_integer(id) then
    bad = "the id must be a string or an integer, got " .. (type(id) == "number" and "a float" or type(id))
  end
  if bad then
    return nil, setmetatable({ kind = "usage", code = "invalid_id", message = bad }, core.Error)
  end
  return self.path .. "/" .. core.escape(id)
end

function Resource:list(query, opts) return self.client:get(self.path, query, opts) end
function Resource:each(query, opts) return self.client:each(self.path, query, opts) end
function Resource:pages(query, opts) return self.client:pages(self.path, query, opts) end
function Resource:all(query, opts) return self.client:all(self.path, query, opts) end
function Resource:pager(query, opts) return self.client:pager(self.path, query, opts) end
function Resource:create(body, opts) return self.client:post(self.path, body, opts) end

function Resource:get(id, query, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:get(path, query, opts)
end

function Resource:update(id, body, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:put(path, body, opts)
end

function Resource:modify(id, body, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:patch(path, body, opts)
end

function Resource:delete(id, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:delete(path, opts)
end

function M.install(methods)
  --- A resource bound to this client (and so to its tenant).
  function methods:resource(path)
    if type(path) ~= "string" or path == "" then
      error("bad argument #1 to 'resource' (non-empty string expected, got " .. tostring(path) .. ")", 2)
    end
    return setmetatable({ client = self, path = (path:gsub("/+$", "")) }, Resource)
  end
end

return M
