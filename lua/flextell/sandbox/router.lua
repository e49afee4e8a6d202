-- A table of routes matched segment by segment; ":name" segments capture one decoded segment.
local M = {}
M.__index = M

function M.new()
  return setmetatable({ routes = {} }, M)
end

-- opts: scope ("customers:read"), tenant = "required" | "ignored" (default: optional)
function M:add(method, pattern, handler, opts)
  local parts = {}
  for seg in pattern:gmatch("[^/]+") do parts[#parts + 1] = seg end
  self.routes[#self.routes + 1] = { method = method, parts = parts, handler = handler, opts = opts or {} }
end

local function match(parts, segments, first)
  if #segments - first + 1 ~= #parts then return nil end
  local params = {}
  for i, part in ipairs(parts) do
    local seg = segments[first + i - 1]
    if part:sub(1, 1) == ":" then
      params[part:sub(2)] = seg
    elseif part ~= seg then
      return nil
    end
  end
  return params
end

-- Returns route, params; or nil, allowed-methods list (empty when the path is unknown).
function M:find(method, segments, first)
  local allowed = {}
  for _, r in ipairs(self.routes) do
    local params = match(r.parts, segments, first)
    if params then
      if r.method == method then return r, params end
      allowed[#allowed + 1] = r.method
    end
  end
  return nil, allowed
end

return M
