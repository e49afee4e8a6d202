-- Scripted faults (issue 4). Placeholder until stage B: nothing can be armed yet.
local M = {}

local armed = {}

function M.reset() armed = {} end

function M.list() return armed end

function M.arm()
  return nil, "faults are not implemented yet"
end

function M.apply()
  return false
end

return M
