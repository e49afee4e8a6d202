-- Tasks: calls that do not block. The same client calls, inside flextell.spawn, yield while in
-- flight; a scheduler (run, step) moves them on together over one libcurl multi handle. Overlap
-- is asserted on what the sandbox saw (its log has when each request arrived and was done), not
-- on wall time.
local flextell = require "flextell"
local core = require "flextell.core"
local sandbox = require "spec.helpers.sandbox"

describe("tasks", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end, { tls = false })

  -- The most requests the server had in hand at one moment, of those matching a pattern.
  local function peak(match)
    return sandbox.peak(sb:requests { match = match }.requests)
  end

  local function delay(seconds, count)
    assert(sb:arm { match = "^/api/v1/customers/%d+$", fault = "delay", seconds = seconds, count = count or 1000 })
  end

  describe("flextell.spawn and flextell.run", function()
    it("give a task's call the same result as a blocking call", function()
      local task = flextell.spawn(function(id) return client:get("/v1/customers/" .. id) end, 7)
      assert.is_false(task:done())
      flextell.run()
      assert.is_true(task:done())
      local data, meta, res = task:result()
      local bdata, bmeta, bres = client:get("/v1/customers/7")
      assert.are.same(bdata, data)
      assert.are.same(bmeta, meta)
      assert.are.equal(bres.status, res.status)
      assert.are.equal(1, res.attempts)
    end)

    it("overlap 50 calls of 300 ms, 16 at a time (max_concurrency)", function()
      delay(0.3, 50)
      local tasks = {}
      for i = 1, 50 do
        tasks[i] = flextell.spawn(function() return client:get("/v1/customers/" .. ((i - 1) % 45 + 1)) end)
      end
      flextell.run()
      for i = 1, 50 do assert.are.equal((i - 1) % 45 + 1, (tasks[i]:result()).id) end
      assert.are.equal(16, peak("^/api/v1/customers/%d+$"))
    end)

    it("keeps to a client's max_concurrency across all tasks", function()
      delay(0.2, 20)
      local c = flextell.new { base_url = sb.url, token = sb.token, max_concurrency = 4 }
      local tasks = {}
      for i = 1, 12 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.run()
      for i = 1, 12 do assert.are.equal(i, (tasks[i]:result()).id) end
      assert.are.equal(4, peak("^/api/v1/customers/%d+$"))
    end)

    it("keep an error in one task to that task", function()
      local bad = flextell.spawn(function() error("boom", 0) end)
      local good = flextell.spawn(function() return client:get("/v1/customers/1") end)
      local raised = flextell.spawn(function() for _ in client:each("/nope") do end end)
      flextell.run()
      local data, err = bad:result()
      assert.is_nil(data)
      assert.matches("^boom", err)
      assert.are.equal(1, (good:result()).id)
      local _, e2 = raised:result()
      assert.are.equal("http", e2.kind)
      assert.are.equal(404, e2.status)
    end)

    it("let a task spawn tasks and wait for them", function()
      local outer = flextell.spawn(function()
        local a = flextell.spawn(function() return client:get("/v1/customers/1") end)
        local b = flextell.spawn(function() return client:get("/v1/customers/999") end)
        return flextell.wait(a, b)
      end)
      flextell.run()
      local ra, rb = outer:result()
      assert.are.equal(1, ra[1].id)
      assert.is_nil(rb[1])
      assert.are.equal("not_found", rb[2].code)
    end)

    it("wait at top level runs the scheduler until the tasks are done", function()
      delay(0.2, 2)
      local a = flextell.spawn(function() return client:get("/v1/customers/1") end)
      local b = flextell.spawn(function() return client:get("/v1/customers/2") end)
      local ra, rb = flextell.wait(a, b)
      assert.are.equal(1, ra[1].id)
      assert.are.equal(2, rb[1].id)
      assert.are.equal(2, peak("^/api/v1/customers/%d+$"))
    end)

    it("report a deadlock instead of spinning", function()
      local t1
      local t2 = flextell.spawn(function() return flextell.wait(t1) end)
      t1 = flextell.spawn(function() return flextell.wait(t2) end)
      assert.has_error(function() flextell.run() end,
        "flextell.run: every task left is waiting for another task (a deadlock)")
      t1:cancel()
      t2:cancel()
    end)
  end)

  describe("flextell.step", function()
    it("returns at once while responses are pending, and finishes them over later steps", function()
      delay(0.3, 3)
      local tasks = {}
      for i = 1, 3 do tasks[i] = flextell.spawn(function() return client:get("/v1/customers/" .. i) end) end
      local t0 = core.now()
      assert.are.equal(3, flextell.step(0))
      assert.is_true(core.now() - t0 < 0.1, "step(0) took " .. (core.now() - t0))
      local steps = 1
      while flextell.step(0.01) > 0 do steps = steps + 1 end
      assert.is_true(steps > 5, "finished in " .. steps .. " steps")
      for i = 1, 3 do assert.are.equal(i, (tasks[i]:result()).id) end
    end)

    it("never takes much longer than asked", function()
      delay(0.5, 4)
      for i = 1, 4 do flextell.spawn(function() return client:get("/v1/customers/" .. i) end) end
      local worst = 0
      while true do
        local t0 = core.now()
        local left = flextell.step(0.02)
        worst = math.max(worst, core.now() - t0)
        if left == 0 then break end
      end
      assert.is_true(worst < 0.1, "a step took " .. worst .. " s")
    end)
  end)

  describe("flextell.sleep", function()
    it("lets the other tasks run while one sleeps", function()
      local order = {}
      local sleeper = flextell.spawn(function()
        flextell.sleep(0.3)
        order[#order + 1] = "slept"
      end)
      local caller = flextell.spawn(function()
        assert(client:get("/v1/customers/1"))
        order[#order + 1] = "called"
      end)
      flextell.wait(sleeper, caller)
      assert.are.same({ "called", "slept" }, order)
    end)
  end)

  describe("task:cancel", function()
    it("cancels the call in flight and gives the task a usage error", function()
      delay(2, 1)
      local task = flextell.spawn(function() return client:get("/v1/customers/1") end)
      flextell.step(0.05)
      task:cancel()
      assert.is_true(task:done())
      local data, err = task:result()
      assert.is_nil(data)
      assert.are.equal("usage", err.kind)
      assert.are.equal("cancelled", err.code)
      assert.are.equal(0, core.loop_pending())
      assert.are.equal(1, assert(client:get("/v1/customers/1")).id) -- the client goes on
    end)
  end)

  describe("task:cancel of work that may have reached the server", function()
    local function stalled_post(c, email)
      assert(sb:arm { path = "/api/v1/customers", method = "POST", fault = "stall", seconds = 1, bytes = 5 })
      local task = flextell.spawn(function() return c:post("/v1/customers", { first_name = "Q", email = email }) end)
      local t0 = core.now()
      while core.now() - t0 < 0.3 do flextell.step(0.01) end
      return task
    end

    it("says maybe_sent = true, with the call's method, url and attempts", function()
      local task = stalled_post(client, "q1@example.com")
      task:cancel()
      local data, err = task:result()
      assert.is_nil(data)
      assert.are.same({ "usage", "cancelled", "the task was cancelled", true, "POST", sb.url .. "/v1/customers", 1 },
        { err.kind, err.code, err.message, err.maybe_sent, err.method, err.url, err.attempts })
      assert.are.equal(1, sb:requests { method = "POST", path = "/api/v1/customers" }.count)
    end)

    it("says maybe_sent = true when the client is closed under a POST", function()
      local c = flextell.new { base_url = sb.url, token = sb.token }
      local task = stalled_post(c, "q2@example.com")
      c:close()
      flextell.run()
      local _, err = task:result()
      assert.are.same({ "usage", "closed", true, "POST" }, { err.kind, err.code, err.maybe_sent, err.method })
    end)

    it("says maybe_sent = false for a call that never went out", function()
      local c = flextell.new { base_url = sb.url, token = sb.token, max_concurrency = 1 }
      delay(2, 1)
      flextell.spawn(function() return c:get("/v1/customers/1") end)
      local held = flextell.spawn(function() return c:post("/v1/customers", { first_name = "H", email = "h@example.com" }) end)
      flextell.step(0.05)
      held:cancel()
      local _, err = held:result()
      assert.are.same({ "cancelled", false, 0 }, { err.code, err.maybe_sent, err.attempts })
      assert.are.equal(0, sb:requests { method = "POST" }.count)
    end)

    it("ends the token refresh the task was waiting on, so other tasks refresh at once", function()
      local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        redirect_uri = sb.redirect_uri }
      local url, state = c:authorize_url {}
      assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
      sb:expire_tokens {}
      assert(sb:arm { path = "/oauth/token", fault = "status", status = 503, retry_after = "3" })
      local a = flextell.spawn(function() return c:get("/v1/customers/1") end)
      local t0 = core.now()
      while core.now() - t0 < 0.3 do flextell.step(0.01) end -- a: 401, refresh, 503, waits 3 s
      a:cancel()
      local b = flextell.spawn(function() return c:get("/v1/customers/2") end)
      t0 = core.now()
      while not b:done() and core.now() - t0 < 2 do flextell.step(0.02) end
      assert.is_true(b:done())
      assert.are.equal(2, (b:result()).id)
      assert.are.equal(1, sb:oauth().grants.refresh_token)
    end)

    it("cancels the workers of a batch the task runs: no request goes out after", function()
      assert(sb:arm { path = "/api/v1/customers", method = "POST", fault = "delay", seconds = 0.3, count = 100 })
      local reqs = {}
      for i = 1, 20 do
        reqs[i] = { method = "POST", path = "/v1/customers",
          body = { first_name = "B" .. i, email = "b" .. i .. "@example.com" } }
      end
      local task = flextell.spawn(function() return client:batch(reqs, { concurrency = 2 }) end)
      local t0 = core.now()
      while core.now() - t0 < 0.5 do flextell.step(0.01) end
      task:cancel()
      local sent = sb:requests { method = "POST" }.count
      flextell.run()
      assert.are.equal(sent, sb:requests { method = "POST" }.count)
      assert.are.equal(4, sent)
      assert.are.equal(0, core.loop_pending())
    end)
  end)

  describe("a deadline while held", function()
    it("ends a call held for a max_concurrency slot when it passes: never sent late", function()
      local c = flextell.new { base_url = sb.url, token = sb.token, max_concurrency = 1 }
      delay(2, 1)
      flextell.spawn(function() return c:get("/v1/customers/1") end)
      local t0 = core.now()
      local post = flextell.spawn(function()
        local data, err = c:post("/v1/customers", { first_name = "D", email = "d@example.com" }, { deadline = 0.5 })
        return data, err, core.now() - t0
      end)
      flextell.run()
      local data, err, took = post:result()
      assert.is_nil(data)
      assert.are.same({ "timeout", "timeout", "the call's deadline passed before it could be sent", false, 0 },
        { err.kind, err.code, err.message, err.maybe_sent, err.attempts })
      assert.is_true(took < 1.5, "ended after " .. took .. " s")
      assert.are.equal(0, sb:requests { method = "POST" }.count)
    end)

    it("ends a blocking call held for a slot a task holds", function()
      local c = flextell.new { base_url = sb.url, token = sb.token, max_concurrency = 1 }
      delay(2, 1)
      flextell.spawn(function() return c:get("/v1/customers/1") end)
      flextell.step(0.05)
      local data, err = c:get("/v1/customers/2", nil, { deadline = 0.3 })
      assert.is_nil(data)
      assert.are.same({ "timeout", "the call's deadline passed before it could be sent" }, { err.code, err.message })
      flextell.run()
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/2" }.count)
    end)
  end)

  describe("flextell.run inside a task", function()
    it("raises a clear error", function()
      local t = flextell.spawn(function() flextell.run() end)
      flextell.run()
      local _, err = t:result()
      assert.matches("flextell.run: called inside a task %(use flextell.wait for other tasks%)", err)
    end)
  end)

  describe("client:close with calls in flight", function()
    it("ends them with usage/closed and makes new calls raise", function()
      delay(2, 3)
      local c = flextell.new { base_url = sb.url, token = sb.token }
      local tasks = {}
      for i = 1, 3 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.step(0.05)
      assert.are.equal(3, core.loop_pending())
      c:close()
      flextell.run()
      for i = 1, 3 do
        local data, err = tasks[i]:result()
        assert.is_nil(data)
        assert.are.equal("usage", err.kind)
        assert.are.equal("closed", err.code)
      end
      assert.are.equal(0, core.loop_pending())
      assert.has_error(function() c:get("/v1/customers/1") end, "attempt to use a closed client")
    end)
  end)

  describe("client:batch", function()
    it("raises on a table that is not a list of requests", function()
      assert.has_error(function() client:batch({ a = { path = "/v1/customers/1" } }) end,
        "bad argument #1 to 'batch' (a list of requests expected)")
      assert.has_error(function() client:batch({ { path = "/v1/customers/1" }, b = { path = "/v1/customers/2" } }) end,
        "bad argument #1 to 'batch' (a list of requests expected)")
      assert.has_error(function() client:batch({ { path = "/v1/customers/1" }, "x" }) end, "batch request 2 must be a table")
      assert.has_error(function() client:batch({}, "x") end, "bad argument #2 to 'batch' (table expected, got string)")
      assert.are.same({}, client:batch({}))
      assert.are.equal(0, sb:requests { path = "/api/v1/customers/1" }.count)
    end)
    it("returns results in input order, errors in place", function()
      delay(0.2, 10)
      local reqs = {}
      for i = 1, 10 do reqs[i] = { path = "/v1/customers/" .. (11 - i) } end
      reqs[11] = { path = "/v1/customers/999999" }
      local results = client:batch(reqs, { concurrency = 5 })
      for i = 1, 10 do assert.are.equal(11 - i, results[i][1].id) end
      assert.is_nil(results[11][1])
      assert.are.equal("not_found", results[11][2].code)
      assert.are.equal(5, peak("^/api/v1/customers/%d+$"))
    end)

    it("works inside a task too", function()
      local task = flextell.spawn(function()
        return client:batch({ { path = "/v1/customers/1" }, { method = "POST", path = "/v1/customers",
          body = { first_name = "B", email = "batch@example.com" } } })
      end)
      flextell.run()
      local results = task:result()
      assert.are.equal(1, results[1][1].id)
      assert.are.equal(46, results[2][1].id)
    end)
  end)

  describe("prefetch", function()
    it("has the next page in flight while the caller works on the current one", function()
      assert(sb:arm { path = "/api/resources", fault = "delay", seconds = 0.3, count = 10 })
      local pages, t0 = 0, core.now()
      for _ in client:pages("/resources", { limit = 30 }, { prefetch = true }) do
        pages = pages + 1
        core.sleep(0.3) -- the caller's work on a page, as long as the server's on the next
      end
      local elapsed = core.now() - t0
      assert.are.equal(3, pages)
      local log = sb:requests { path = "/api/resources" }.requests
      assert.are.equal(3, #log)
      -- page 2 arrived at the server before the caller was done with page 1
      assert.is_true(log[2].time < log[1].finished + 0.25, "page 2 was asked for late")
      assert.is_true(elapsed < 3 * 0.6, "no overlap: " .. elapsed)
    end)

    it("gives the same items, also inside a task", function()
      local plain = assert(client:all("/resources", { limit = 10 }))
      local t = flextell.spawn(function()
        local ids = {}
        for item in client:each("/resources", { limit = 10 }, { prefetch = true }) do ids[#ids + 1] = item.id end
        return ids
      end)
      flextell.run()
      local ids = t:result()
      assert.are.equal(84, #ids)
      for i = 1, 84 do assert.are.equal(plain[i].id, ids[i]) end
    end)
  end)

  describe("pacing with many in flight", function()
    it("sends no call the server refuses, with 16 tasks and a window of 5", function()
      sb:config { rate_limit = 5, rate_window = 2 }
      local c = flextell.new { base_url = sb.url, token = sb.token, pace = true, deadline = 20 }
      local tasks = {}
      for i = 1, 16 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.run()
      for i = 1, 16 do assert.are.equal(i, (tasks[i]:result()).id) end
      for _, r in ipairs(sb:requests { match = "^/api/v1/customers/%d+$" }.requests) do
        assert.are.equal(200, r.status)
      end
    end)
  end)

  describe("one refresh for many tasks", function()
    local function authorized()
      local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        redirect_uri = sb.redirect_uri }
      local url, state = c:authorize_url { scope = "customers:read" }
      local tokens = assert(c:exchange_code(assert(sb:approve(url)), { state = state }))
      c:close()
      return tokens
    end

    local function expired_client(tokens)
      return flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        access_token = tokens.access_token, refresh_token = tokens.refresh_token, expires_at = os.time() - 1 }
    end

    it("refreshes once when ten tasks find the token expired; all go on with the new one", function()
      local c = expired_client(authorized())
      assert(sb:arm { path = "/oauth/token", fault = "delay", seconds = 0.3 })
      local tasks = {}
      for i = 1, 10 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.run()
      for i = 1, 10 do assert.are.equal(i, (tasks[i]:result()).id) end
      assert.are.equal(1, sb:oauth().grants.refresh_token)
      assert.are.equal(1, sb:requests { path = "/oauth/token", method = "POST" }.count - 1) -- and the exchange
    end)

    it("refreshes once when ten tasks get a 401 for a revoked token", function()
      local tokens = authorized()
      local c = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        access_token = tokens.access_token, refresh_token = tokens.refresh_token }
      sb:expire_tokens {}
      local tasks = {}
      for i = 1, 10 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.run()
      for i = 1, 10 do assert.are.equal(i, (tasks[i]:result()).id) end
      assert.are.equal(1, sb:oauth().grants.refresh_token)
    end)

    it("gives every waiting task the refresh's error when it fails", function()
      local c = expired_client(authorized())
      assert(sb:arm { path = "/oauth/token", fault = "status", status = 500 })
      local tasks = {}
      for i = 1, 10 do tasks[i] = flextell.spawn(function() return c:get("/v1/customers/" .. i) end) end
      flextell.run()
      for i = 1, 10 do
        local data, err = tasks[i]:result()
        assert.is_nil(data)
        assert.are.equal("http", err.kind)
        assert.are.equal(500, err.status)
        assert.are.equal("server_error", err.code)
      end
      assert.are.equal(2, sb:requests { path = "/oauth/token" }.count) -- the exchange and one refresh
      assert.are.equal(0, sb:requests { match = "^/api/v1/customers/" }.count)
    end)
  end)

  describe("hooks in tasks", function()
    it("run on_retry in the task, where it may yield", function()
      sb:arm { path = "/api/v1/customers/1", fault = "status", status = 503, retry_after = "0" }
      local told = {}
      local c = flextell.new { base_url = sb.url, token = sb.token, on_retry = function(info)
        flextell.sleep(0.05) -- yields: the hook runs in the task
        told[#told + 1] = info.reason
      end }
      local t = flextell.spawn(function() return c:get("/v1/customers/1") end)
      flextell.run()
      assert.are.equal(1, (t:result()).id)
      assert.are.same({ "HTTP 503" }, told)
    end)
  end)

  describe("collection", function()
    it("collects a task whose handle was dropped once its calls ended, with its calls", function()
      local weak = setmetatable({}, { __mode = "v" })
      do
        local t = flextell.spawn(function()
          local call = client:start { path = "/v1/customers/1" }
          weak.call = call
          return (require("flextell.tasks").await(call)).id
        end)
        weak.task = t
      end
      flextell.run()
      for _ = 1, 4 do collectgarbage() end
      assert.is_nil(weak.task)
      assert.is_nil(weak.call)
    end)
  end)
end)

describe("flextell.step, sleep, wait and run", function()
  -- the message of the error fn raises; it must name the line of fn (a one-line function), the
  -- caller's, not a line inside the library
  local function raised(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok)
    assert.are.equal("string", type(err))
    local file, line, message = err:match("^(.-):(%d+): (.*)$")
    assert.matches("tasks_spec%.lua$", file)
    assert.are.equal(debug.getinfo(fn, "S").linedefined, tonumber(line))
    return message
  end

  it("raise on a step budget that is not a number, is NaN or is negative", function()
    assert.are.equal("bad argument #1 to 'step' (number expected, got string)",
      raised(function() flextell.step("x") end))
    assert.are.equal("bad argument #1 to 'step' (seconds expected, got NaN)",
      raised(function() flextell.step(0 / 0) end))
    assert.are.equal("bad argument #1 to 'step' (seconds must be >= 0, got -1)",
      raised(function() flextell.step(-1) end))
  end)

  it("take a huge step budget as a day: a step still returns once it has done something", function()
    assert.are.equal(86400, require("flextell.tasks").MAX_STEP)
    for _, budget in ipairs({ 1e300, math.huge, 2 ^ 53 }) do
      local task = flextell.spawn(function() flextell.sleep(0.02) return "slept" end)
      local t0 = core.now()
      assert.are.equal(1, flextell.step(budget)) -- the task ran up to its sleep
      assert.are.equal(0, flextell.step(budget)) -- waited for its timer, then ended it
      assert.is_true(core.now() - t0 < 1, "a step took " .. (core.now() - t0) .. " s")
      assert.are.same({ "slept" }, { task:result() })
    end
    assert.are.equal(0, flextell.step(math.huge)) -- nothing to do: at once
  end)

  it("raise on a sleep that is not a number, is NaN or is negative, outside a task", function()
    assert.are.equal("bad argument #1 to 'sleep' (number expected, got string)",
      raised(function() flextell.sleep("x") end))
    assert.are.equal("bad argument #1 to 'sleep' (seconds expected, got NaN)",
      raised(function() flextell.sleep(0 / 0) end))
    assert.are.equal("bad argument #1 to 'sleep' (seconds must be >= 0, got -1)",
      raised(function() flextell.sleep(-1) end))
  end)

  it("end a task that sleeps NaN seconds with the error, instead of leaving it asleep forever", function()
    local other = flextell.spawn(function() flextell.sleep(0.01) return "woke" end)
    local task = flextell.spawn(function() flextell.sleep(0 / 0) end)
    flextell.run()
    local ok, err = task:result()
    assert.is_nil(ok)
    assert.matches("^[^\n]*tasks_spec%.lua:%d+: bad argument #1 to 'sleep' %(seconds expected, got NaN%)\n", err)
    assert.are.same({ "woke" }, { other:result() }) -- and its timer did not hold up the others
  end)

  it("let a task sleep math.huge seconds, until it is cancelled", function()
    local task = flextell.spawn(function() flextell.sleep(math.huge) end)
    assert.are.equal(1, flextell.step(0))
    assert.are.equal(1, flextell.step(0.01))
    task:cancel()
    local _, err = task:result()
    assert.are.equal("cancelled", err.code)
    assert.are.equal(0, flextell.step(0))
  end)

  it("raise on a wait for something that is not a task", function()
    assert.are.equal("bad argument #2 to 'wait' (task expected, got string)",
      raised(function() flextell.wait(flextell.spawn(function() end), "task") end))
    flextell.run() -- the task it was given first
  end)

  it("raise on run with an argument (it takes none)", function()
    assert.are.equal("bad argument #1 to 'run' (no value expected, got number; " ..
      "flextell.step(seconds) runs the scheduler for a while)",
      raised(function() flextell.run(5) end))
  end)
end)

-- Ctrl-C in the standard interpreters: they set a count hook on the main state when SIGINT
-- comes; a blocking call waiting in C notices it within a quarter of a second, ends its
-- transfer, and the interpreter's "interrupted!" goes up as usual.
describe("Ctrl-C during a blocking call", function()
  local sb
  setup(function() sb = sandbox.start { tls = false } end)
  teardown(function() sb:stop() end)

  it("is noticed within half a second, even during a long wait", function()
    assert(sb:arm { path = "/api/v1/customers/1", fault = "delay", seconds = 10 })
    local jit_run = arg and arg[-1] == "luajit"
    local interp = jit_run and "luajit" or "lua5.4"
    local cpath = jit_run and "build/luajit/?.so" or "build/lua5.4/?.so"
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write('local flextell = require "flextell"\n',
      ("local c = flextell.new { base_url = %q, token = %q }\n"):format(sb.url, sb.token),
      'io.stdout:write("calling\\n") io.stdout:flush()\n',
      'local data, err = c:get("/v1/customers/1")\n',
      'print("returned", data, err)\n')
    f:close()
    local t0 = core.now()
    local p = assert(io.popen("unset LD_PRELOAD; LUA_PATH='lua/?.lua;lua/?/init.lua' LUA_CPATH='" .. cpath ..
      "' timeout -s INT 1 " .. interp .. " " .. script .. " 2>&1; echo \"exit=$?\""))
    local out = p:read("a")
    p:close()
    local elapsed = core.now() - t0
    os.remove(script)
    assert.matches("calling", out)
    assert.matches("interrupted!", out)
    assert.is_nil(out:find("returned", 1, true))
    assert.matches("exit=124", out) -- timeout's status when it had to signal
    assert.is_true(elapsed < 1.5, "the interpreter stopped " .. elapsed .. " s after the start, 1 s after Ctrl-C")
    local log = sb:requests { path = "/api/v1/customers/1" }.requests
    assert.are.equal(1, #log)
  end)
end)
