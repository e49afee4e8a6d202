-- The route table for /api: the guides' collection, the generic /v1 resources, and the
-- endpoint reference's sub-resources and actions.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local store = require "flextell.sandbox.store"
local resources = require "flextell.sandbox.resources"
local collection = require "flextell.sandbox.collection"
local multipart = require "flextell.sandbox.multipart"
local sha256 = require "flextell.sandbox.sha256"
local seed = require "flextell.sandbox.seed"
local router = require "flextell.sandbox.router"

local array, null, copy = json.array, json.null, json.copy
local defs = resources.defs

local r = router.new()

local function scopes(name)
  return { scope = name .. ":read" }, { scope = name .. ":write" }
end

local function crud(name, opts)
  opts = opts or {}
  local read, write = scopes(opts.scope or name)
  local tenant = defs[name].tenant_required and "required" or nil
  read.tenant, write.tenant = tenant, tenant
  local by_id_read, by_id_write = copy(read), copy(write)
  if defs[name].tenant_required_by_id then
    by_id_read.tenant, by_id_write.tenant = "required", "required"
  end
  local base = "v1/" .. name
  r:add("GET", base, resources.list_handler(name), read)
  if not opts.no_create then r:add("POST", base, resources.create_handler(name), write) end
  r:add("GET", base .. "/:id", resources.get_handler(name), by_id_read)
  r:add("PUT", base .. "/:id", resources.update_handler(name, true), by_id_write)
  r:add("PATCH", base .. "/:id", resources.update_handler(name, false), by_id_write)
  r:add("DELETE", base .. "/:id", resources.delete_handler(name), by_id_write)
end

-- account ------------------------------------------------------------------------------

r:add("GET", "v1/account/tenants", function()
  return http.json(200, { data = array(copy(seed.TENANTS)) })
end, { scope = "tenants:read", tenant = "ignored" })

r:add("GET", "v1/account/roles", function(ctx)
  local out = array()
  for _, rec in ipairs(store.collection(ctx.tenant, "roles").list) do out[#out + 1] = copy(rec) end
  return http.json(200, { data = out })
end, { scope = "roles:read", tenant = "ignored" })

-- appointments -------------------------------------------------------------------------

local function date_param(q, name)
  local v = resources.query_value(q, name)
  if v == nil then return true, nil end
  if type(v) ~= "string" or not v:match("^%d%d%d%d%-%d%d%-%d%d") then
    http.error(400, "invalid_request", "The " .. name .. " parameter must be a date (YYYY-MM-DD).")
    return false
  end
  return true, v
end

-- A list without paging information ({"data": [...]}), ordered by start time.
r:add("GET", "v1/appointments/calendar", function(ctx)
  local ok, from = date_param(ctx.query, "from")
  if not ok then return end
  local ok2, to = date_param(ctx.query, "to")
  if not ok2 then return end
  local out = array()
  for _, rec in ipairs(store.collection(ctx.tenant, "appointments").list) do
    local s = rec.starts_at
    if rec.deleted_at == null and (not from or s:sub(1, #from) >= from) and (not to or s:sub(1, #to) <= to) then
      out[#out + 1] = copy(rec)
    end
  end
  table.sort(out, function(a, b) return a.starts_at < b.starts_at end)
  return http.json(200, { data = out })
end, { scope = "appointments:read", tenant = "required" })

r:add("POST", "v1/appointment-reminders/:id/send", function(ctx, p)
  if resources.find(defs.appointments, store.collection(ctx.tenant, "appointments"), p.id) then
    return http.json(200, { message = "Reminder for appointment " .. p.id .. " sent." })
  end
end, { scope = "appointments:write" })

-- invoices -----------------------------------------------------------------------------

local function invoice_action(to_cancel)
  return function(ctx, p)
    local rec = resources.find(defs.invoices, store.collection(ctx.tenant, "invoices"), p.id)
    if not rec then return end
    if (rec.status == "cancelled") == to_cancel then
      return http.error(409, "conflict", "Invoice " .. p.id ..
        (to_cancel and " is already cancelled." or " is not cancelled."))
    end
    rec.status = to_cancel and "cancelled" or "issued"
    rec.updated_at = seed.iso(ngx.time())
    return http.json(200, { message = "Invoice " .. p.id ..
      (to_cancel and " cancelled." or " cancellation reverted.") })
  end
end
r:add("POST", "v1/invoices/:id/cancel", invoice_action(true), { scope = "invoices:write" })
r:add("POST", "v1/invoices/:id/revert-cancel", invoice_action(false), { scope = "invoices:write" })

-- sales --------------------------------------------------------------------------------

defs.payments = { singular = "Payment", envelope = "success",
  fields = { amount = { type = "number", required = true, min = 0.01 }, method = { type = "string" } } }

r:add("POST", "v1/sales/:id/payments", function(ctx, p)
  local sale = resources.find(defs.sales, store.collection(ctx.tenant, "sales"), p.id)
  if not sale then return end
  local body = http.json_object(ctx)
  if not body then return end
  local rec = resources.create(defs.payments, store.collection(ctx.tenant, "payments"), body,
    { sale_id = sale.id })
  if rec then return http.json(201, resources.single(defs.payments, rec, "recorded")) end
end, { scope = "sales:write", tenant = "required" })

-- stocks -------------------------------------------------------------------------------

local function stock_action(kind, label)
  return function(ctx)
    local body = http.json_object(ctx)
    if not body then return end
    local def = defs["stock-movements"]
    local products = store.collection(ctx.tenant, "products")
    local col = store.collection(ctx.tenant, "stock-movements")
    local product = type(body.product_id) == "number" and store.get(products, body.product_id)
    if type(body.product_id) == "number" and (not product or product.deleted_at ~= null) then
      return http.error(422, "validation_error", "The given data was invalid.",
        { errors = { product_id = array({ "The selected product id is invalid." }) } })
    end
    if kind == "transfer" and (body.from_room_id == nil or body.to_room_id == nil) then
      local errors = {}
      if body.from_room_id == nil then errors.from_room_id = array({ "The from room id field is required." }) end
      if body.to_room_id == nil then errors.to_room_id = array({ "The to room id field is required." }) end
      return http.error(422, "validation_error", "The given data was invalid.", { errors = errors })
    end
    body.type = kind
    local rec = resources.create(def, col, body)
    if not rec then return end
    if kind ~= "transfer" then product.stock = (product.stock or 0) + rec.quantity end
    return http.json(201, { success = label .. " recorded successfully.", data = copy(rec) })
  end
end
r:add("POST", "v1/stocks/entry", stock_action("entry", "Stock entry"),
  { scope = "stocks:write", tenant = "required" })
r:add("POST", "v1/stocks/transfer", stock_action("transfer", "Stock transfer"),
  { scope = "stocks:write", tenant = "required" })
r:add("POST", "v1/stocks/adjustment", stock_action("adjustment", "Stock adjustment"),
  { scope = "stocks:write", tenant = "required" })
r:add("GET", "v1/stocks/movements", resources.list_handler("stock-movements"),
  { scope = "stocks:read", tenant = "required" })

-- uploads ------------------------------------------------------------------------------

-- Reads a multipart upload; returns the file part and the other fields, or nil after a 400/422.
local function upload(ctx)
  local parts, err = multipart.parse(ctx.headers["content-type"], ctx.body)
  if not parts then return http.error(400, "invalid_request", err) end
  local file, fields = nil, {}
  for _, part in ipairs(parts) do
    if part.filename and part.name == "file" and not file then
      file = part
    elseif part.name then
      fields[part.name] = part.data
    end
  end
  if not file then
    return http.error(422, "validation_error", "The given data was invalid.",
      { errors = { file = array({ "The file field is required." }) } })
  end
  return {
    filename = file.filename,
    content_type = file.content_type or "application/octet-stream",
    size = #file.data,
    sha256 = sha256.hex(file.data),
    md5 = ngx.md5(file.data),
  }, fields
end

r:add("POST", "v1/files", function(ctx)
  local info, fields = upload(ctx)
  if not info then return end
  local cid = fields.customer_id and tonumber(fields.customer_id)
  info.customer_id = cid or null
  local now = seed.iso(ngx.time())
  info.created_at, info.updated_at, info.deleted_at = now, now, null
  local rec = store.insert(store.collection(ctx.tenant, "files"), info)
  local out = copy(rec)
  out.fields = fields
  return http.json(201, { data = out })
end, { scope = "files:write" })

-- conversations ------------------------------------------------------------------------

local function conversation(ctx, p)
  return resources.find(defs.conversations, store.collection(ctx.tenant, "conversations"), p.id)
end

local function message(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  local rec = store.get(store.collection(ctx.tenant, "messages"), p.message_id)
  if not rec or rec.conversation_id ~= conv.id or rec.deleted_at ~= null then
    resources.not_found(defs.messages, p.message_id)
    return nil
  end
  return rec
end

local conv_read, conv_write = scopes("conversations")

r:add("GET", "v1/conversations/:id/messages", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  local rows = resources.select(defs.messages, store.collection(ctx.tenant, "messages"), ctx.query, conv.id)
  if not rows then return end
  local page = resources.paginate(ctx, rows, ctx.query)
  if page then return http.json(200, page) end
end, conv_read)

r:add("POST", "v1/conversations/:id/messages", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  local body = http.json_object(ctx)
  if not body then return end
  if body.direction == nil then body.direction = "outbound" end
  if body.type == nil then body.type = "text" end
  local rec = resources.create(defs.messages, store.collection(ctx.tenant, "messages"), body,
    { conversation_id = conv.id })
  if rec then return http.json(201, { data = copy(rec) }) end
end, conv_write)

r:add("POST", "v1/conversations/:id/messages/media", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  local info, fields = upload(ctx)
  if not info then return end
  local now = seed.iso(ngx.time())
  local rec = store.insert(store.collection(ctx.tenant, "messages"), {
    conversation_id = conv.id, direction = "outbound", type = "media",
    message = fields.message or null, media = info,
    created_at = now, updated_at = now, deleted_at = null,
  })
  local out = copy(rec)
  out.fields = fields
  return http.json(201, { data = out })
end, conv_write)

local function message_update(full)
  return function(ctx, p)
    local rec = message(ctx, p)
    if not rec then return end
    local body = http.json_object(ctx)
    if not body then return end
    if full then
      body.direction = body.direction or rec.direction
      body.type = body.type or rec.type
      if body.media == nil then body.media = rec.media end
    end
    if resources.update(defs.messages, store.collection(ctx.tenant, "messages"), rec, body, full) then
      return http.json(200, { data = copy(rec) })
    end
  end
end
r:add("PUT", "v1/conversations/:id/messages/:message_id", message_update(true), conv_write)
r:add("PATCH", "v1/conversations/:id/messages/:message_id", message_update(false), conv_write)
r:add("DELETE", "v1/conversations/:id/messages/:message_id", function(ctx, p)
  local rec = message(ctx, p)
  if not rec then return end
  resources.soft_delete(rec)
  return http.no_content()
end, conv_write)

r:add("GET", "v1/conversations/:id/agent", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  return http.json(200, { data = { conversation_id = conv.id, enabled = conv.agent_enabled,
    disabled_until = conv.agent_disabled_until } })
end, conv_read)

r:add("POST", "v1/conversations/:id/agent/enable", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  conv.agent_enabled, conv.agent_disabled_until = true, null
  conv.updated_at = seed.iso(ngx.time())
  return http.json(200, { success = "Agent enabled successfully.",
    data = { message = "The AI agent is enabled for conversation " .. conv.id .. "." } })
end, conv_write)

r:add("POST", "v1/conversations/:id/agent/disable", function(ctx, p)
  local conv = conversation(ctx, p)
  if not conv then return end
  local body = http.json_object(ctx)
  if not body then return end
  local minutes = body.duration_minutes
  if minutes ~= nil and minutes ~= null and
      (type(minutes) ~= "number" or minutes ~= math.floor(minutes) or minutes < 1) then
    return http.error(422, "validation_error", "The given data was invalid.",
      { errors = { duration_minutes = array({ "The duration minutes must be an integer of at least 1." }) } })
  end
  conv.agent_enabled = false
  local now = ngx.time()
  conv.agent_disabled_until = (minutes and minutes ~= null) and seed.iso(now + minutes * 60) or null
  conv.updated_at = seed.iso(now)
  local text = "The AI agent is disabled for conversation " .. conv.id ..
    ((minutes and minutes ~= null) and (" for " .. string.format("%d", minutes) .. " minutes.") or ".")
  return http.json(200, { success = "Agent disabled successfully.", data = { message = text } })
end, conv_write)

-- customers' notes and files ------------------------------------------------------------

local function customer(ctx, p)
  return resources.find(defs.customers, store.collection(ctx.tenant, "customers"), p.id)
end
local cust_read, cust_write = scopes("customers")

local function child_list(name)
  return function(ctx, p)
    local cust = customer(ctx, p)
    if not cust then return end
    local def = copy(defs[name])
    def.parent = "customer_id"
    local rows = resources.select(def, store.collection(ctx.tenant, name), ctx.query, cust.id)
    if not rows then return end
    local page = resources.paginate(ctx, rows, ctx.query)
    if page then return http.json(200, page) end
  end
end
r:add("GET", "v1/customers/:id/notes", child_list("notes"), cust_read)
r:add("GET", "v1/customers/:id/files", child_list("files"), cust_read)
r:add("POST", "v1/customers/:id/notes", function(ctx, p)
  local cust = customer(ctx, p)
  if not cust then return end
  local body = http.json_object(ctx)
  if not body then return end
  local rec = resources.create(defs.notes, store.collection(ctx.tenant, "notes"), body, { customer_id = cust.id })
  if rec then return http.json(201, { data = copy(rec) }) end
end, cust_write)

-- generic resources ---------------------------------------------------------------------

for _, name in ipairs({ "customers", "users", "conversations", "products", "sales", "appointments",
  "rooms", "treatments", "treatment-groups", "doctors", "invoices", "tags", "roles",
  "channel-blacklists" }) do
  crud(name)
end
crud("files", { no_create = true })

collection.routes(r)

return r
