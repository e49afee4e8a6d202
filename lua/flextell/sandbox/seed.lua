-- Deterministic seed data: the same records, ids and timestamps on every start and reset,
-- so specs can assert exact values. Every tenant starts from its own copy of this set.
local json = require "flextell.sandbox.json"
local array, null = json.array, json.null

local M = {}

-- 2025-01-06T09:00:00Z
local EPOCH = 1736154000

function M.iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end
local iso = M.iso

local function stamp(rec, i, step)
  local created = EPOCH + i * (step or 3600)
  rec.created_at = iso(created)
  rec.updated_at = iso(created + (i % 4) * 86400)
  rec.deleted_at = null
  return rec
end

local FIRST = { "Ada", "Grace", "Alan", "Barbara", "Edsger", "Margaret", "Donald", "Frances",
  "Ken", "Radia", "Niklaus", "Hedy", "John", "Karen", "Tim" }
local LAST = { "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Hamilton", "Knuth", "Allen",
  "Thompson", "Perlman", "Wirth", "Lamarr", "McCarthy", "Jones", "Berners-Lee" }
local TAGS = { { "vip" }, {}, { "newsletter" }, { "vip", "newsletter" }, {} }
local NOTES = { "Prefers morning appointments.", null, "Allergic to latex." }

function M.customer(i)
  local first, last = FIRST[(i - 1) % 15 + 1], LAST[(i * 7 - 1) % 15 + 1]
  return stamp({
    id = i,
    first_name = first,
    last_name = last,
    email = (first .. "." .. last .. i .. "@example.com"):lower(),
    phone = string.format("+1-555-01%02d", i % 100),
    tags = array(json.copy(TAGS[(i - 1) % 5 + 1])),
    notes = NOTES[(i - 1) % 3 + 1],
  }, i)
end

local ADJ = { "Hydrating", "Soothing", "Gentle", "Intense", "Daily", "Nourishing" }
local NOUN = { "Serum", "Cream", "Cleanser", "Mask", "Toner" }

function M.product(i)
  return stamp({
    id = i,
    name = ADJ[(i - 1) % 6 + 1] .. " " .. NOUN[(i - 1) % 5 + 1] .. " " .. i,
    sku = string.format("SKU-%04d", i),
    price = 5 + (i * 37) % 90 + (i % 2) * 0.5,
    stock = (i * 3) % 40,
    active = i % 7 ~= 0,
    description = null,
  }, i, 7200)
end

local CHANNELS = { "whatsapp", "email", "sms", "instagram" }
local CONV_STATUS = { "open", "pending", "closed" }

function M.conversation(i)
  return stamp({
    id = i,
    customer_id = i,
    channel = CHANNELS[(i - 1) % 4 + 1],
    subject = "Conversation " .. i,
    status = CONV_STATUS[(i - 1) % 3 + 1],
    agent_enabled = i % 2 == 1,
    agent_disabled_until = null,
  }, i, 5400)
end

-- Three messages per conversation; message ids run across all conversations.
function M.message(conv, k, id)
  return stamp({
    id = id,
    conversation_id = conv,
    direction = k % 2 == 1 and "inbound" or "outbound",
    type = "text",
    message = string.format("Message %d of conversation %d", k, conv),
    media = null,
  }, id, 600)
end

local APPT_STATUS = { "scheduled", "confirmed", "completed", "cancelled" }

function M.appointment(i)
  local starts = EPOCH + 86400 * 30 + i * 86400 / 2
  return stamp({
    id = i,
    customer_id = (i - 1) % 45 + 1,
    room_id = (i - 1) % 4 + 1,
    treatment_id = (i - 1) % 8 + 1,
    starts_at = iso(starts),
    ends_at = iso(starts + 3600),
    status = APPT_STATUS[(i - 1) % 4 + 1],
    notes = null,
  }, i)
end

function M.sale(i)
  local qty, price = i % 3 + 1, 5 + (i * 37) % 90 + (i % 2) * 0.5
  return stamp({
    id = i,
    customer_id = i,
    items = array({ { product_id = i, quantity = qty, price = price } }),
    total = qty * price,
    status = i % 4 == 0 and "pending" or "paid",
  }, i, 86400)
end

local ROLES = { "admin", "agent", "doctor", "receptionist", "agent" }
local USERS = { "Olivia Admin", "Liam Agent", "Dr. Emma Stone", "Noah Desk", "Ava Agent" }

function M.user(i)
  return stamp({
    id = i,
    name = USERS[i],
    email = string.format("user%d@example.com", i),
    role = ROLES[i],
    active = true,
  }, i)
end

function M.room(i)
  return stamp({ id = i, name = "Room " .. string.char(64 + i), capacity = i % 2 + 1 }, i)
end

local TREATMENTS = { "Facial", "Massage", "Peeling", "Laser", "Manicure", "Pedicure", "Botox", "Consultation" }

function M.treatment(i)
  return stamp({
    id = i,
    name = TREATMENTS[i],
    duration_minutes = 30 + (i % 3) * 15,
    price = 40 + i * 10,
    treatment_group_id = (i - 1) % 3 + 1,
  }, i)
end

-- name -> list of records, a fresh copy every call
function M.build()
  local d = {}
  local function gen(name, n, f)
    local list = {}
    for i = 1, n do list[i] = f(i) end
    d[name] = list
  end
  gen("customers", 45, M.customer)
  gen("products", 30, M.product)
  gen("conversations", 12, M.conversation)
  gen("appointments", 20, M.appointment)
  gen("sales", 10, M.sale)
  gen("users", 5, M.user)
  gen("rooms", 4, M.room)
  gen("treatments", 8, M.treatment)
  local msgs = {}
  for c = 1, 12 do
    for k = 1, 3 do msgs[#msgs + 1] = M.message(c, k, #msgs + 1) end
  end
  d.messages = msgs
  gen("invoices", 10, function(i)
    return stamp({ id = i, sale_id = i, number = string.format("INV-2025-%04d", i),
      total = d.sales[i].total, status = "issued" }, i, 86400)
  end)
  gen("notes", 10, function(i)
    return stamp({ id = i, customer_id = (i - 1) % 5 + 1, body = "Note " .. i }, i)
  end)
  gen("files", 6, function(i)
    return stamp({ id = i, customer_id = (i - 1) % 3 + 1, filename = string.format("scan-%d.pdf", i),
      content_type = "application/pdf", size = 1000 * i, sha256 = null, md5 = null }, i)
  end)
  local tag_names = { "vip", "newsletter", "new", "follow-up", "no-show" }
  gen("tags", 5, function(i) return stamp({ id = i, name = tag_names[i] }, i) end)
  gen("roles", 4, function(i)
    local perms = { { "*" }, { "conversations:*", "customers:read" }, { "appointments:*", "customers:*" },
      { "appointments:*" } }
    return stamp({ id = i, name = ROLES[i], permissions = array(perms[i]) }, i)
  end)
  gen("doctors", 3, function(i)
    return stamp({ id = i, name = "Dr. " .. LAST[i], email = string.format("doctor%d@example.com", i),
      specialty = ({ "dermatology", "aesthetics", "physiotherapy" })[i] }, i)
  end)
  gen("treatment-groups", 3, function(i)
    return stamp({ id = i, name = ({ "Face", "Body", "Hands & feet" })[i] }, i)
  end)
  gen("channel-blacklists", 0, nil)
  gen("stock-movements", 0, nil)
  -- /api/resources (cursor style, guides): string ids
  gen("resources", 84, function(i)
    local rec = stamp({ id = string.format("res_%03d", i), name = "Resource " .. i, status = "active",
      description = null }, i, 60)
    rec.deleted_at = nil -- the guides' collection deletes for real
    return rec
  end)
  return d
end

M.TENANTS = {
  { id = 1, name = "Flextell Demo Clinic" },
  { id = 7, name = "Seven Oaks Spa" },
  { id = 42, name = "Answer Dental" },
}

return M
