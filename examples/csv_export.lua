-- A CSV export: every customer as one row (RFC 4180: fields with commas, quotes or line breaks
-- are quoted, quotes doubled), written as the pages arrive; the next page is fetched while this
-- one is written (prefetch). A failure mid-way exits non-zero, so a partial file is never taken
-- for the whole list.
--   FLEXTELL_BASE_URL=... FLEXTELL_TOKEN=... lua5.4 examples/csv_export.lua > customers.csv
local flextell = require "flextell"

local COLUMNS = { "id", "first_name", "last_name", "email", "phone", "tags", "created_at" }

local function field(v)
  if v == nil or v == flextell.null then return "" end
  if type(v) == "table" then v = table.concat(v, ";") end
  v = tostring(v)
  if v:find('[,"\r\n]') then v = '"' .. v:gsub('"', '""') .. '"' end
  return v
end

local client = flextell.new { base_url = os.getenv("FLEXTELL_BASE_URL"), token = os.getenv("FLEXTELL_TOKEN") }
io.stdout:write(table.concat(COLUMNS, ","), "\r\n")
local ok, err = pcall(function()
  for customer in client:each("/v1/customers", { per_page = 100, sort_by = "id" }, { prefetch = true }) do
    local row = {}
    for i, c in ipairs(COLUMNS) do row[i] = field(customer[c]) end
    io.stdout:write(table.concat(row, ","), "\r\n")
  end
end)
client:close()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
