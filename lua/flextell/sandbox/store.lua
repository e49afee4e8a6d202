-- Records per tenant and collection. A tenant's data is built from the seed the first time
-- the tenant is used, so tenants never see each other's writes.
local seed = require "flextell.sandbox.seed"

local M = {}

local tenants = {}

function M.reset()
  tenants = {}
end

local function materialise(tenant)
  local data = {}
  for name, list in pairs(seed.build()) do
    local col = { list = list, by_id = {}, next_id = #list + 1 }
    for _, rec in ipairs(list) do col.by_id[tostring(rec.id)] = rec end
    data[name] = col
  end
  tenants[tenant] = data
  return data
end

function M.collection(tenant, name)
  local data = tenants[tenant] or materialise(tenant)
  local col = data[name]
  if not col then
    col = { list = {}, by_id = {}, next_id = 1 }
    data[name] = col
  end
  return col
end

function M.get(col, id)
  return col.by_id[tostring(id)]
end

function M.insert(col, rec)
  if rec.id == nil then
    rec.id = col.next_id
  end
  col.next_id = col.next_id + 1
  col.list[#col.list + 1] = rec
  col.by_id[tostring(rec.id)] = rec
  return rec
end

-- Hard delete (the guides' collection); page-style resources soft delete instead.
function M.remove(col, rec)
  for i, r in ipairs(col.list) do
    if r == rec then
      table.remove(col.list, i)
      break
    end
  end
  col.by_id[tostring(rec.id)] = nil
end

return M
