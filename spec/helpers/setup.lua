-- Runs before the specs: a full collection after every test, so __gc paths run (and are
-- checked by the sanitizer and valgrind runs) while the state they touch is still warm.
local busted = require "busted"

busted.subscribe({ "test", "end" }, function()
  collectgarbage()
  collectgarbage()
  return nil, true
end)
