--- CRUD sugar over one collection path: client:resource("/v1/customers").
-- Ids are percent-encoded into the path, so an id never changes the path's meaning.
-- @module flextell

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

--- One collection of the API, from `Client:resource`, with the client's tenant.
-- Ids are strings or integers, percent-encoded into one path segment (`"a/b c"` is `a%2Fb%20c`);
-- `""`, `"."` and `".."` are a `usage` error, code `invalid_id`, and nothing is sent. Each method
-- returns what the client's call returns.
-- @type Resource
-- @usage local customers = client:resource("/v1/customers")
-- local customer, err = customers:get(7)

--- GET the collection.
-- @tparam[opt] table query
-- @tparam[opt] table opts the per-call options of `Client:get`
-- @return `data, meta, res`, or `nil, err`
function Resource:list(query, opts) return self.client:get(self.path, query, opts) end
--- Iterates over the collection's items, as `Client:each`.
-- @tparam[opt] table query
-- @tparam[opt] table opts
-- @return an iterator of the items
-- @raise the error when a page fails
function Resource:each(query, opts) return self.client:each(self.path, query, opts) end
--- Iterates over the collection's pages, as `Client:pages`.
-- @tparam[opt] table query
-- @tparam[opt] table opts
-- @return an iterator of `page, meta, res`
-- @raise the error when a page fails
function Resource:pages(query, opts) return self.client:pages(self.path, query, opts) end
--- Every item of the collection, as `Client:all`.
-- @tparam[opt] table query
-- @tparam[opt] table opts
-- @return `items`, or `nil, err`
function Resource:all(query, opts) return self.client:all(self.path, query, opts) end
--- A pager over the collection, as `Client:pager`.
-- @tparam[opt] table query
-- @tparam[opt] table opts
-- @treturn Pager
function Resource:pager(query, opts) return self.client:pager(self.path, query, opts) end
--- POST to the collection.
-- @tparam table|string body
-- @tparam[opt] table opts the per-call options of `Client:get`
-- @return `data, meta, res`, or `nil, err`
function Resource:create(body, opts) return self.client:post(self.path, body, opts) end

--- GET one item.
-- @tparam string|integer id
-- @tparam[opt] table query
-- @tparam[opt] table opts the per-call options of `Client:get`
-- @return `data, meta, res`, or `nil, err` (kind `usage`, code `invalid_id` for a bad id)
function Resource:get(id, query, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:get(path, query, opts)
end

--- PUT one item.
-- @tparam string|integer id
-- @tparam table|string body
-- @tparam[opt] table opts the per-call options of `Client:get`
-- @return `data, meta, res`, or `nil, err` (kind `usage`, code `invalid_id` for a bad id)
function Resource:update(id, body, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:put(path, body, opts)
end

--- PATCH one item.
-- @tparam string|integer id
-- @tparam table|string body
-- @tparam[opt] table opts the per-call options of `Client:get`
-- @return `data, meta, res`, or `nil, err` (kind `usage`, code `invalid_id` for a bad id)
function Resource:modify(id, body, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:patch(path, body, opts)
end

--- DELETE one item.
-- @tparam string|integer id
-- @tparam[opt] table opts the per-call options of `Client:delete`
-- @return `data, meta, res`, or `nil, err` (kind `usage`, code `invalid_id` for a bad id)
function Resource:delete(id, opts)
  local path, err = item_path(self, id)
  if not path then return nil, err end
  return self.client:delete(path, opts)
end

--- @type Client

function M.install(methods)
  --- A resource bound to this client (and so to its tenant).
  -- @function Client:resource
  -- @tparam string path the collection's path, such as `"/v1/customers"`
  -- @treturn Resource
  -- @raise when `path` is not a non-empty string
  function methods:resource(path)
    if type(path) ~= "string" or path == "" then
      error("bad argument #1 to 'resource' (non-empty string expected, got " .. tostring(path) .. ")", 2)
    end
    return setmetatable({ client = self, path = (path:gsub("/+$", "")) }, Resource)
  end
end

return M
