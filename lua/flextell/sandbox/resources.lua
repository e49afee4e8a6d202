-- The endpoint reference's resources under /api/v1: integer ids, page-style (Laravel) lists,
-- both single-object envelopes, CRUD with state and soft deletes.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local store = require "flextell.sandbox.store"
local validate = require "flextell.sandbox.validate"
local seed = require "flextell.sandbox.seed"

local array, null, copy = json.array, json.null, json.copy

local M = {}

local function f(type_, extra)
  local spec = { type = type_ }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end
local REQ = { required = true }

-- envelope "data": {"data": {...}}; "success": {"success": "...", "data": {...}}
M.defs = {
  customers = { singular = "Customer", envelope = "data", unique = "email",
    search = { "first_name", "last_name", "email", "phone" },
    fields = { first_name = f("string", REQ), last_name = f("string"), email = f("email", REQ),
      phone = f("string"), tags = f("array"), notes = f("text") } },
  users = { singular = "User", envelope = "data", unique = "email", search = { "name", "email" },
    fields = { name = f("string", REQ), email = f("email", REQ), role = f("string"), active = f("boolean") } },
  conversations = { singular = "Conversation", envelope = "data", search = { "subject", "channel" },
    fields = { customer_id = f("integer", REQ), channel = f("string", REQ), subject = f("string"),
      status = f("string", { enum = { "open", "pending", "closed" } }), agent_enabled = f("boolean"),
      agent_disabled_until = f("datetime") } },
  messages = { singular = "Message", envelope = "data", parent = "conversation_id", search = { "message" },
    fields = { message = f("text", REQ), direction = f("string", { enum = { "inbound", "outbound" } }),
      type = f("string"), media = f("object") } },
  notes = { singular = "Note", envelope = "data", parent = "customer_id", search = { "body" },
    fields = { body = f("text", REQ) } },
  files = { singular = "File", envelope = "data", search = { "filename" },
    fields = { filename = f("string", REQ), content_type = f("string"), size = f("integer"),
      customer_id = f("integer"), sha256 = f("string"), md5 = f("string") } },
  products = { singular = "Product", envelope = "success", search = { "name", "sku", "description" },
    fields = { name = f("string", REQ), sku = f("string"), price = f("number", { min = 0 }),
      stock = f("integer", { min = 0 }), active = f("boolean"), description = f("text") } },
  sales = { singular = "Sale", envelope = "success", tenant_required_by_id = true, search = { "status" },
    fields = { customer_id = f("integer", REQ), items = f("array"), total = f("number", { min = 0 }),
      status = f("string", { enum = { "pending", "paid", "refunded", "cancelled" } }) } },
  appointments = { singular = "Appointment", envelope = "success", search = { "status", "notes" },
    fields = { customer_id = f("integer", REQ), room_id = f("integer"), treatment_id = f("integer"),
      starts_at = f("datetime", REQ), ends_at = f("datetime"),
      status = f("string", { enum = { "scheduled", "confirmed", "completed", "cancelled" } }),
      notes = f("text") } },
  rooms = { singular = "Room", envelope = "success", search = { "name" },
    fields = { name = f("string", REQ), capacity = f("integer", { min = 1 }) } },
  treatments = { singular = "Treatment", envelope = "success", search = { "name" },
    fields = { name = f("string", REQ), duration_minutes = f("integer", { min = 1 }),
      price = f("number", { min = 0 }), treatment_group_id = f("integer") } },
  ["treatment-groups"] = { singular = "Treatment group", envelope = "success", search = { "name" },
    fields = { name = f("string", REQ) } },
  doctors = { singular = "Doctor", envelope = "success", unique = "email", search = { "name", "email" },
    fields = { name = f("string", REQ), email = f("email", REQ), specialty = f("string") } },
  invoices = { singular = "Invoice", envelope = "data", search = { "number", "status" },
    fields = { sale_id = f("integer", REQ), number = f("string"), total = f("number", { min = 0 }),
      status = f("string", { enum = { "issued", "cancelled", "paid" } }) } },
  tags = { singular = "Tag", envelope = "data", tenant_required = true, unique = "name", search = { "name" },
    fields = { name = f("string", REQ) } },
  roles = { singular = "Role", envelope = "data", tenant_required = true, search = { "name" },
    fields = { name = f("string", REQ), permissions = f("array") } },
  ["channel-blacklists"] = { singular = "Channel blacklist entry", envelope = "data",
    search = { "value", "channel" },
    fields = { channel = f("string", REQ), value = f("string", REQ), reason = f("text") } },
  ["stock-movements"] = { singular = "Stock movement", envelope = "success", tenant_required = true,
    search = { "type" },
    fields = { type = f("string"), product_id = f("integer", REQ), quantity = f("integer", REQ),
      from_room_id = f("integer"), to_room_id = f("integer"), reason = f("text") } },
}

local function public(rec)
  return copy(rec)
end

function M.single(def, rec, verb)
  if def.envelope == "success" then
    return { success = def.singular .. " " .. verb .. " successfully.", data = public(rec) }
  end
  return { data = public(rec) }
end

function M.not_found(def, id)
  return http.error(404, "not_found", def.singular .. " " .. tostring(id) .. " not found")
end

-- query helpers -------------------------------------------------------------------------

local function query_value(q, name)
  local v = q[name]
  if type(v) == "table" then v = v[#v] end
  return v
end
M.query_value = query_value

local function int_param(q, name, default, min, max)
  local v = query_value(q, name)
  if v == nil then return default end
  local n = type(v) == "string" and v:match("^%d+$") and tonumber(v)
  if not n or n < min or (max and n > max) then
    local range = max and (min .. " and " .. max) or (">= " .. min)
    http.error(400, "invalid_request",
      string.format("The %s parameter must be an integer %s%s.", name, max and "between " or "", range))
    return nil
  end
  return n
end
M.int_param = int_param

local function encode_query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = ngx.escape_uri(k) .. "=" .. ngx.escape_uri(tostring(params[k]))
  end
  return table.concat(parts, "&")
end

local RESERVED = { page = true, per_page = true, search = true, sort_by = true, sort_order = true,
  trashed = true }

local function compare_values(a, b)
  if a == b then return nil end
  if a == nil or a == null then return false end
  if b == nil or b == null then return true end
  if type(a) ~= type(b) then a, b = tostring(a), tostring(b) end
  if type(a) == "boolean" then a, b = a and 1 or 0, b and 1 or 0 end
  if type(a) == "table" then return nil end
  return a < b
end

-- Laravel's paginator: {"data", "links", "meta"} with absolute URLs. Other query parameters are
-- kept in the page links so following links.next keeps the page size and filters.
function M.paginate(ctx, rows, q)
  local page = int_param(q, "page", 1, 1)
  if not page then return end
  local per_page = int_param(q, "per_page", 15, 1, 100)
  if not per_page then return end
  local total = #rows
  local last_page = math.max(1, math.ceil(total / per_page))
  local from_i = (page - 1) * per_page + 1
  local data = array()
  for i = from_i, math.min(total, page * per_page) do data[#data + 1] = public(rows[i]) end

  local base = ctx.scheme .. "://" .. ctx.host .. ctx.path
  local keep = {}
  for k, v in pairs(q) do
    if k ~= "page" then
      if type(v) == "table" then v = v[#v] end
      if v ~= true then keep[k] = v end
    end
  end
  local function url(p)
    if p < 1 or p > last_page then return null end
    local params = copy(keep)
    params.page = p
    return base .. "?" .. encode_query(params)
  end
  local links = array({ { url = page > 1 and url(page - 1) or null, label = "&laquo; Previous",
    active = false } })
  for p = 1, last_page do
    links[#links + 1] = { url = url(p), label = tostring(p), active = p == page }
  end
  links[#links + 1] = { url = page < last_page and url(page + 1) or null, label = "Next &raquo;",
    active = false }
  return {
    data = data,
    links = { first = url(1), last = url(last_page), prev = page > 1 and url(page - 1) or null,
      next = page < last_page and url(page + 1) or null },
    meta = {
      current_page = page,
      from = #data > 0 and from_i or null,
      last_page = last_page,
      links = links,
      path = base,
      per_page = per_page,
      to = #data > 0 and from_i + #data - 1 or null,
      total = total,
    },
  }
end

-- Filters and sorts a collection for a list call; nil after answering 400.
function M.select(def, col, q, parent_id)
  local trashed = query_value(q, "trashed")
  if trashed ~= nil and trashed ~= "with" and trashed ~= "only" then
    return http.error(400, "invalid_request", "The trashed parameter must be one of: with, only.")
  end
  local order = query_value(q, "sort_order") or "asc"
  if order ~= "asc" and order ~= "desc" then
    return http.error(400, "invalid_request", "The sort_order parameter must be one of: asc, desc.")
  end
  local sort_by = query_value(q, "sort_by") or "id"
  if not (def.fields[sort_by] or sort_by == "id" or sort_by == "created_at" or sort_by == "updated_at") then
    return http.error(400, "invalid_request", "The sort_by parameter must be one of the resource's fields.")
  end
  local search = query_value(q, "search")
  search = type(search) == "string" and search ~= "" and search:lower() or nil
  local filters = {}
  for k in pairs(q) do
    local spec = def.fields[k]
    if not RESERVED[k] and spec and spec.type ~= "array" and spec.type ~= "object" then
      filters[k] = tostring(query_value(q, k))
    end
  end

  local rows = {}
  for _, rec in ipairs(col.list) do
    local deleted = rec.deleted_at ~= null and rec.deleted_at ~= nil
    local keep = (trashed == "with") or (trashed == "only" and deleted) or (trashed == nil and not deleted)
    if keep and parent_id and rec[def.parent] ~= parent_id then keep = false end
    if keep and search then
      keep = false
      for _, name in ipairs(def.search or {}) do
        local v = rec[name]
        if type(v) == "string" and v:lower():find(search, 1, true) then
          keep = true
          break
        end
      end
    end
    if keep then
      for k, want in pairs(filters) do
        local v = rec[k]
        if v == null or v == nil or tostring(v) ~= want then
          keep = false
          break
        end
      end
    end
    if keep then rows[#rows + 1] = rec end
  end
  table.sort(rows, function(a, b)
    local lt = compare_values(a[sort_by], b[sort_by])
    if lt == nil then return compare_values(a.id, b.id) == true end
    if order == "desc" then return not lt end
    return lt
  end)
  return rows
end

-- records ------------------------------------------------------------------------------

local function default_for(spec)
  if spec.type == "array" then return array() end
  return null
end

local function conflict(def, col, body, self)
  local key = def.unique
  local v = key and body[key]
  if type(v) ~= "string" then return false end
  v = v:lower()
  for _, rec in ipairs(col.list) do
    if rec ~= self and (rec.deleted_at == null or rec.deleted_at == nil) and type(rec[key]) == "string"
        and rec[key]:lower() == v then
      http.error(409, "conflict", string.format("A %s with this %s already exists.", def.singular:lower(),
        key))
      return true
    end
  end
  return false
end

local function invalid(errors)
  return http.error(422, "validation_error", "The given data was invalid.", { errors = errors })
end

-- POST: 201 with the new record; nil after an error response.
function M.create(def, col, body, extra)
  local errors = validate.check(def.fields, body, false)
  if errors then return invalid(errors) end
  if conflict(def, col, body, nil) then return end
  local rec = {}
  for name, spec in pairs(def.fields) do
    local v = body[name]
    if v == nil then v = default_for(spec) end
    rec[name] = copy(v)
  end
  for k, v in pairs(extra or {}) do rec[k] = v end
  local now = seed.iso(ngx.time())
  rec.created_at, rec.updated_at, rec.deleted_at = now, now, null
  return store.insert(col, rec)
end

-- PUT (full = true) replaces every writable field; PATCH merges the fields sent.
function M.update(def, col, rec, body, full)
  local errors = validate.check(def.fields, body, not full)
  if errors then return invalid(errors) end
  if conflict(def, col, body, rec) then return end
  for name, spec in pairs(def.fields) do
    local v = body[name]
    if v ~= nil then
      rec[name] = copy(v)
    elseif full and def.parent ~= name then
      rec[name] = default_for(spec)
    end
  end
  rec.updated_at = seed.iso(ngx.time())
  return rec
end

function M.soft_delete(rec)
  local now = seed.iso(ngx.time())
  rec.deleted_at, rec.updated_at = now, now
end

-- generic handlers used by the router ---------------------------------------------------

local function find(def, col, id)
  local rec = store.get(col, id)
  if not rec or (rec.deleted_at ~= null and rec.deleted_at ~= nil) then
    M.not_found(def, id)
    return nil
  end
  return rec
end
M.find = find

function M.list_handler(name)
  return function(ctx)
    local def = M.defs[name]
    local col = store.collection(ctx.tenant, name)
    local rows = M.select(def, col, ctx.query)
    if not rows then return end
    local page = M.paginate(ctx, rows, ctx.query)
    if page then return http.json(200, page) end
  end
end

function M.create_handler(name)
  return function(ctx)
    local def = M.defs[name]
    local body = http.json_object(ctx)
    if not body then return end
    local rec = M.create(def, store.collection(ctx.tenant, name), body)
    if rec then return http.json(201, M.single(def, rec, "created")) end
  end
end

function M.get_handler(name)
  return function(ctx, p)
    local def = M.defs[name]
    local rec = find(def, store.collection(ctx.tenant, name), p.id)
    if rec then return http.json(200, M.single(def, rec, "retrieved")) end
  end
end

function M.update_handler(name, full)
  return function(ctx, p)
    local def = M.defs[name]
    local col = store.collection(ctx.tenant, name)
    local rec = find(def, col, p.id)
    if not rec then return end
    local body = http.json_object(ctx)
    if not body then return end
    if M.update(def, col, rec, body, full) then
      return http.json(200, M.single(def, rec, "updated"))
    end
  end
end

function M.delete_handler(name)
  return function(ctx, p)
    local def = M.defs[name]
    local rec = find(def, store.collection(ctx.tenant, name), p.id)
    if not rec then return end
    M.soft_delete(rec)
    return http.no_content()
  end
end

return M
