-- The soak run (make soak): thousands of calls with random faults armed in the sandbox; at the
-- end the process's memory and open file descriptors must be where they were after warm-up.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

local CALLS = tonumber(os.getenv("FLEXTELL_SOAK_CALLS") or "800")

local function status_field(name)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match(name .. ":%s*(%d+)"))
end

local function open_fds()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("a"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd | wc -l"))
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

describe("soak #soak", function()
  local sb

  setup(function() sb = sandbox.start { rate_limit = 1000000 } end)
  teardown(function() sb:stop() end)

  it("keeps memory and file descriptors flat over thousands of faulty calls", function()
    local faults = {
      { fault = "status", status = 503, retry_after = "0" }, { fault = "status", status = 500 },
      { fault = "status", status = 429, retry_after = "0" }, { fault = "html" }, { fault = "malformed" },
      { fault = "empty" }, { fault = "truncated" }, { fault = "reset" }, { fault = "redirect" },
      { fault = "headers_huge" }, { fault = "huge", bytes = 300000 },
    }
    collectgarbage()
    local fds_start = open_fds()
    local client = flextell.new { base_url = sb.url, token = sb.token, max_retries = 1, timeout = 5,
      max_response_bytes = 100000 }
    local customers = client:resource("/v1/customers")
    math.randomseed(42)
    local outcomes = {}
    local function round(n)
      for i = 1, n do
        if i % 5 == 0 then
          local f = faults[math.random(#faults)]
          local armed = { path = "/api/v1/customers/" .. (i % 40 + 1), count = 1 }
          for k, v in pairs(f) do armed[k] = v end
          assert(sb:arm(armed))
        end
        local data, err, res = customers:get(i % 40 + 1)
        local key
        if data then
          key = res.attempts == 2 and "ok after a retry" or "ok"
        else
          key = err.kind .. "/" .. tostring(err.code)
        end
        outcomes[key] = (outcomes[key] or 0) + 1
        if i % 50 == 0 then
          assert(client:post("/v1/customers", { first_name = "S", email = "s" .. i .. "@example.com" }) or true)
        end
      end
    end
    -- warm up until the allocator and the connection pool have their working sizes, then two
    -- equal rounds: a leak grows in both, a working set only in neither
    round(CALLS)
    collectgarbage()
    collectgarbage()
    local rss0, fds0 = status_field("VmRSS"), open_fds()
    round(CALLS)
    collectgarbage()
    collectgarbage()
    local rss_mid = status_field("VmRSS")
    round(CALLS)
    collectgarbage()
    collectgarbage()
    local rss1, fds1 = status_field("VmRSS"), open_fds()
    -- the pool holds a few connections at any time; closing the client closes them all
    assert.is_true(fds1 <= fds0 + 2, string.format("fds grew from %d to %d", fds0, fds1))
    client:close()
    collectgarbage()
    assert.are.equal(fds_start, open_fds())
    assert.is_true(rss1 - rss_mid < 512, string.format("RSS grew from %d kB to %d kB to %d kB", rss0, rss_mid, rss1))
    assert.is_true(outcomes.ok > CALLS)
    -- a GET retries a fault armed once, so 5xx, 429, HTML pages and broken connections end in
    -- "ok after a retry"; the others are not retried
    for _, expected in ipairs { "ok after a retry", "decode/invalid_json", "protocol/redirect",
                                "limit/headers_too_large", "limit/response_too_large" } do
      assert.is_true((outcomes[expected] or 0) > 0, "no call ended in " .. expected)
    end
  end)
end)
