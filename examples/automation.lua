-- An automation script (a nightly report): walks every customer page by page, retrying what
-- the API lets a GET retry, and prints how many customers carry each tag. A failure is one line
-- on stderr and a non-zero exit, never a report built from part of the list.
--   FLEXTELL_BASE_URL=... FLEXTELL_TOKEN=... lua5.4 examples/automation.lua
local flextell = require "flextell"

local client = flextell.new {
  base_url = os.getenv("FLEXTELL_BASE_URL"), -- nil: the real API
  token = assert(os.getenv("FLEXTELL_TOKEN"), "set FLEXTELL_TOKEN"),
  max_retries = 4, -- 429, 5xx and network failures are retried with backoff (Retry-After honoured)
  on_retry = function(info)
    io.stderr:write(string.format("retrying %s %s after %s (attempt %d, in %.1f s)\n",
      info.method, info.url, info.reason, info.attempt, info.delay))
  end,
}

local counts, customers = {}, 0
-- all() returns every item or nil, err: a page that fails after its retries fails the walk
local items, err = client:all("/v1/customers", { per_page = 100 })
if not items then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
for _, customer in ipairs(items) do
  customers = customers + 1
  for _, tag in ipairs(customer.tags or {}) do counts[tag] = (counts[tag] or 0) + 1 end
end

local tags = {}
for tag in pairs(counts) do tags[#tags + 1] = tag end
table.sort(tags)
print(customers .. " customers")
for _, tag in ipairs(tags) do print(string.format("  %-12s %d", tag, counts[tag])) end
client:close()
