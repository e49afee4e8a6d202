-- multipart/form-data (RFC 7578) parsing of a body held in memory.
local M = {}

local function boundary_of(content_type)
  if type(content_type) ~= "string" or not content_type:lower():find("^%s*multipart/form%-data") then
    return nil
  end
  return content_type:match('[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]="([^"]+)"')
    or content_type:match("[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]=([^;%s]+)")
end

-- Returns a list of parts { name, filename, content_type, data }, or nil, reason.
function M.parse(content_type, body)
  local boundary = boundary_of(content_type)
  if not boundary then return nil, "The request must be multipart/form-data with a boundary." end
  local delim = "--" .. boundary
  local pos = body:find(delim, 1, true)
  if not pos then return nil, "The multipart body has no boundary line." end
  local parts = {}
  pos = pos + #delim
  while true do
    if body:sub(pos, pos + 1) == "--" then return parts end
    local head_start = body:find("\r\n", pos, true)
    if not head_start then break end
    local head_end = body:find("\r\n\r\n", head_start, true)
    if not head_end then break end
    local head = body:sub(head_start + 2, head_end + 1)
    local next_delim = body:find("\r\n" .. delim, head_end + 4, true)
    if not next_delim then break end
    local part = { data = body:sub(head_end + 4, next_delim - 1) }
    for line in head:gmatch("([^\r\n]+)") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      name = name and name:lower()
      if name == "content-disposition" then
        part.name = value:match('[; ]name="([^"]*)"') or value:match("[; ]name=([^;%s]+)")
        part.filename = value:match('filename="([^"]*)"') or value:match("filename=([^;%s]+)")
      elseif name == "content-type" then
        part.content_type = value
      end
    end
    parts[#parts + 1] = part
    pos = next_delim + 2 + #delim
  end
  return nil, "The multipart body is incomplete."
end

return M
