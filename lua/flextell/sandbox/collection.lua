-- The guides' cursor-style collection at /api/resources: string ids, `limit` + opaque `cursor`.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local store = require "flextell.sandbox.store"
local resources = require "flextell.sandbox.resources"

local array, null, copy = json.array, json.null, json.copy

local M = {}

M.def = { singular = "Resource", envelope = "data",
  fields = {
    name = { type = "string", required = true },
    status = { type = "string", enum = { "active", "archived" } },
    description = { type = "text" },
  } }

-- A cursor is base64 of the offset plus a check value, so a client that treats it as a number,
-- or edits it, gets a 400 instead of a silently different page.
local SALT = "flextell-sandbox-cursor"

function M.encode_cursor(offset)
  local check = ngx.md5(SALT .. offset):sub(1, 8)
  return ngx.encode_base64("o" .. offset .. "." .. check)
end

function M.decode_cursor(cursor)
  local raw = type(cursor) == "string" and ngx.decode_base64(cursor)
  local offset, check = (raw or ""):match("^o(%d+)%.(%x+)$")
  if not offset or ngx.md5(SALT .. offset):sub(1, 8) ~= check then return nil end
  return tonumber(offset)
end

-- One page: data, meta. Nil after an error response.
function M.page(ctx)
  local q = ctx.query
  local limit = resources.int_param(q, "limit", 20, 1, 100)
  if not limit then return end
  local offset = 0
  local cursor = resources.query_value(q, "cursor")
  if cursor ~= nil then
    offset = M.decode_cursor(cursor)
    if not offset then
      return http.error(400, "invalid_request", "The cursor parameter is not a valid cursor.")
    end
  end
  local col = store.collection(ctx.tenant, "resources")
  local status = resources.query_value(q, "status")
  local rows = col.list
  if status then
    rows = {}
    for _, rec in ipairs(col.list) do
      if rec.status == status then rows[#rows + 1] = rec end
    end
  end
  local data = array()
  for i = offset + 1, math.min(#rows, offset + limit) do data[#data + 1] = copy(rows[i]) end
  local has_more = offset + limit < #rows
  return data, { cursor = has_more and M.encode_cursor(offset + limit) or null, has_more = has_more,
    total = #rows }, offset, limit
end

local function list(ctx)
  local data, meta = M.page(ctx)
  if data then return http.json(200, { data = data, meta = meta }) end
end

local function find(ctx, id)
  local rec = store.get(store.collection(ctx.tenant, "resources"), id)
  if not rec then resources.not_found(M.def, id) end
  return rec
end

local function create(ctx)
  local body = http.json_object(ctx)
  if not body then return end
  local col = store.collection(ctx.tenant, "resources")
  if body.status == nil then body.status = "active" end
  local rec = resources.create(M.def, col, body, { id = string.format("res_%03d", col.next_id) })
  if rec then
    rec.deleted_at = nil
    return http.json(201, { data = copy(rec) })
  end
end

local function update(full)
  return function(ctx, p)
    local rec = find(ctx, p.id)
    if not rec then return end
    local body = http.json_object(ctx)
    if not body then return end
    if full and body.status == nil then body.status = "active" end
    if resources.update(M.def, store.collection(ctx.tenant, "resources"), rec, body, full) then
      return http.json(200, { data = copy(rec) })
    end
  end
end

function M.routes(r)
  local read, write = { scope = "resources:read" }, { scope = "resources:write" }
  r:add("GET", "resources", list, read)
  r:add("POST", "resources", create, write)
  r:add("GET", "resources/:id", function(ctx, p)
    local rec = find(ctx, p.id)
    if rec then return http.json(200, { data = copy(rec) }) end
  end, read)
  r:add("PUT", "resources/:id", update(true), write)
  r:add("PATCH", "resources/:id", update(false), write)
  r:add("DELETE", "resources/:id", function(ctx, p)
    local rec = find(ctx, p.id)
    if not rec then return end
    store.remove(store.collection(ctx.tenant, "resources"), rec)
    return http.no_content()
  end, write)
end

return M
