-- Runs a spec file's tests twice: as written (the calls block), and inside a task (the same
-- calls yield to the scheduler while in flight), so every result and every error is asserted on
-- both drivers:
--   local it = require("spec.helpers.modes").both(it)
local M = {}

function M.both(it)
  return function(name, fn)
    it(name, fn)
    it(name .. " (in a task)", function()
      local flextell = require "flextell"
      local task = flextell.spawn(fn)
      flextell.run()
      local ok, err = task:result()
      if ok == nil and err ~= nil then error(err, 0) end
    end)
  end
end

return M
