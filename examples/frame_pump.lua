-- The per-frame pump of a game or app host: the calls run as tasks, and the frame loop gives
-- the network a slice of each frame with flextell.step, so no frame waits for a response.
--   FLEXTELL_BASE_URL=... FLEXTELL_TOKEN=... lua5.4 examples/frame_pump.lua
local flextell = require "flextell"
local now = require("flextell.core").time

local client = flextell.new { base_url = os.getenv("FLEXTELL_BASE_URL"), token = os.getenv("FLEXTELL_TOKEN") }

local names, failed = {}, 0
for id = 1, 20 do
  flextell.spawn(function()
    local customer, err = client:get("/v1/customers/" .. id) -- yields while in flight
    if customer then names[#names + 1] = customer.first_name else failed = failed + 1; print(err) end
  end)
end

local FRAME = 1 / 60
local frames, slowest = 0, 0
while true do
  local start = now()
  local running = flextell.step(0.002) -- the network's share of this frame: at most ~2 ms
  slowest = math.max(slowest, now() - start)
  frames = frames + 1 -- the game's update and render would go here
  if running == 0 then break end
  local left = FRAME - (now() - start)
  if left > 0 then flextell.step(left) end -- until the next frame (a game waits for vsync here)
end
print(string.format("%d customers loaded, %d failed, over %d frames", #names, failed, frames))
io.stderr:write(string.format("slowest network slice: %.1f ms\n", slowest * 1000))
client:close()
