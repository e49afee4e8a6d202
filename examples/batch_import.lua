-- A batch import: creates one customer per line of a JSON Lines file, eight requests in flight
-- at a time, and reports each line that failed with the API's reason. POSTs are not retried
-- where they may have reached the server, so a line is never created twice.
--   FLEXTELL_BASE_URL=... FLEXTELL_TOKEN=... lua5.4 examples/batch_import.lua customers.jsonl
local flextell = require "flextell"

local path = assert(arg[1], "usage: batch_import.lua FILE.jsonl")
local requests, lines = {}, {}
local n = 0
for line in assert(io.open(path)):lines() do
  n = n + 1
  if line:match("%S") then
    local body, why = flextell.json.decode(line)
    if type(body) ~= "table" then
      io.stderr:write(string.format("line %d: not a JSON object (%s)\n", n, why or type(body)))
      os.exit(2)
    end
    requests[#requests + 1] = { method = "POST", path = "/v1/customers", body = body }
    lines[#requests] = n
  end
end

local client = flextell.new { base_url = os.getenv("FLEXTELL_BASE_URL"), token = os.getenv("FLEXTELL_TOKEN") }
local results = client:batch(requests, { concurrency = 8 }) -- in input order
local created, failed = 0, 0
for i, r in ipairs(results) do
  if r[1] then
    created = created + 1
  else
    failed = failed + 1
    local err = r[2]
    io.stderr:write(string.format("line %d: %s%s\n", lines[i], tostring(err),
      err.maybe_sent and " (it may have been created: check before sending it again)" or ""))
  end
end
print(string.format("created %d, failed %d", created, failed))
client:close()
os.exit(failed == 0 and 0 or 1)
