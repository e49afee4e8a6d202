-- examples/host: a C program that embeds Lua 5.4 with the core compiled in, and steps the task
-- scheduler once per 60 fps frame with a 2 ms budget. Built with `make host` and run against the
-- sandbox, with every customer GET held 300 ms by the server: the 50 calls must all be in flight
-- together. The time a frame spends in the step is printed, not asserted (a timed assertion
-- fails on a loaded machine): `make bench` reports its median, p99 and worst.
--
-- Tagged #host: the program embeds Lua 5.4 and is built without instrumentation, so it is
-- left out of the LuaJIT, ASan and valgrind runs (.busted); it runs in the plain Lua 5.4 run.
local sandbox = require "spec.helpers.sandbox"

local NCALLS = 50
local DELAY = 0.3

-- Output and success of a shell command (the exit status read from the shell itself).
local function sh(cmd)
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)exit=(%d+)%s*$")
  return body, code == "0"
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

describe("examples/host #host", function()
  local sb

  setup(function()
    local out, ok = sh("make host")
    assert(ok, "make host failed:\n" .. out)
    sb = sandbox.start { tls = false }
  end)
  teardown(function() sandbox.stop() end)

  it("runs 50 calls at once from a 60 fps frame loop", function()
    assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = DELAY, count = NCALLS })
    local out, ok = sh("build/host/flextell-host lua " .. quote(sb.url) .. " " .. quote(sb.token))
    local line = out:match("flextell%-host: frames[^\n]*") or ""
    local frames, calls, total, median, p99, worst = line:match(
      "frames (%d+), calls (%d+)/%d+, total ([%d.]+) s, step ms per frame: median ([%d.]+), p99 ([%d.]+), worst ([%d.]+)")
    assert(frames, "no figures in the host's output:\n" .. out)
    frames, calls, total = tonumber(frames), tonumber(calls), tonumber(total)
    median, p99, worst = tonumber(median), tonumber(p99), tonumber(worst)

    -- What the server saw: each request's arrival time and TCP connection.
    local log = assert(sb:requests { match = "^/api/v1/customers/%d+$" })
    local first, last, connections, nconnections, wanted = math.huge, -math.huge, {}, 0, {}
    for i = 1, NCALLS do
      local n = (i - 1) % 45 + 1
      wanted[n] = (wanted[n] or 0) + 1
    end
    for _, r in ipairs(log.requests) do
      first, last = math.min(first, r.time), math.max(last, r.time)
      if not connections[r.connection] then
        connections[r.connection] = true
        nconnections = nconnections + 1
      end
      local n = tonumber(r.path:match("(%d+)$"))
      wanted[n] = (wanted[n] or 0) - 1
    end
    local spread = log.count > 0 and last - first or 0

    print(("\nhost: frames %d, calls %d/%d, total %.3f s; step ms per frame: median %.3f, p99 %.3f, "
      .. "worst %.3f; server: %d requests on %d connections, arrivals spread over %.3f s")
      :format(frames, calls, NCALLS, total, median, p99, worst, log.count, nconnections, spread))

    assert.is_true(ok, "the host failed:\n" .. out)
    assert.are.equal(NCALLS, calls)
    -- Each call sent once, each of the customers asked for, each held by the delay.
    assert.are.equal(NCALLS, log.count)
    for n, left in pairs(wanted) do assert.are.equal(0, left, "requests for customer " .. n) end
    for _, r in ipairs(log.requests) do
      assert.are.equal("delay", r.fault)
      assert.are.equal(200, r.status)
    end
    -- Overlap: the log says when each request arrived and when the server was done with it, so
    -- the most it had in hand at once is counted: all 50 (each on a connection of its own).
    -- One after the other they would have taken 50 x 0.3 s.
    local peak = sandbox.peak(log.requests)
    assert.are.equal(NCALLS, nconnections)
    assert.are.equal(NCALLS, peak, ("arrivals spread over %.3f s"):format(spread))
    -- The calls waited for the server's delay (a bound that load cannot break).
    assert.is_true(total >= DELAY, ("the host ran %.3f s"):format(total))
  end)
end)
