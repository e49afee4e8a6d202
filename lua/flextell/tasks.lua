--- Tasks: client calls that do not block. A task is a coroutine; inside one, every client call
-- (get, post, request, each, pages, all, pager, refresh, exchange_code, tenants...) yields while
-- its request is in flight, and a scheduler moves all of them on together over the lua_State's
-- one libcurl multi handle. Outside a task the same calls block, as always.
--
-- This is the Lua half of the task driver: core.advance(call) does what C can (sending goes to
-- libcurl), and this file does the rest: parks the task while its transfer runs, sleeps it for
-- backoff and rate-limit waits, runs hooks (which may yield here), and drives a token refresh
-- as a child call. C never yields.
-- @module flextell

local core = require "flextell.core"

local coroutine, error, getmetatable, next, pairs, pcall, select, setmetatable, type, tostring, xpcall =
  coroutine, error, getmetatable, next, pairs, pcall, select, setmetatable, type, tostring, xpcall
local co_create, co_resume, co_running, co_status, co_yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.yield
local co_close = coroutine.close -- 5.4: runs a cancelled task's to-be-closed variables
local traceback = debug.traceback
local unpack = table.unpack or unpack -- luacheck: ignore 143
local now, advance, loop_perform, loop_wait, loop_pending, sleep =
  core.now, core.advance, core.loop_perform, core.loop_wait, core.loop_pending, core.sleep
local Error, call_mt, keep_on_cancel = core.Error, core.call_mt, core.keep_on_cancel

local M = {}

-- Calls waiting for a slot (max_concurrency), for another call's token refresh or for the first
-- answer of a paced window are asked again this often.
M.HOLD_INTERVAL = 0.005
-- At most this many ready tasks are resumed per step(), whatever the budget, so a frame that
-- calls step() does a bounded amount of work; run() calls step() until nothing is left.
M.MAX_RESUMES_PER_STEP = 64
-- A step's budget is cut to this many seconds (a day): past it, nothing a step does changes, and
-- the budget's arithmetic (how many new transfers fit in it) stays in integers.
M.MAX_STEP = 86400

local registry = core.task_registry() -- weak: coroutine -> task; C looks here (see client.c)

local Task = {}
Task.__index = Task
Task.__name = "flextell.Task"

local alive, nalive = {}, 0 -- tasks not finished: the scheduler holds them
local runq, runq_head, runq_tail = {}, 1, 0 -- a queue: runq[head..tail]
local timers = {}           -- { at = t, task = task }, kept sorted by at
local parked = {}           -- call -> task whose transfer it waits for

local function current()
  local co = co_running()
  return co and registry[co] or nil
end
M.current = current

local function make_error(code, message)
  return setmetatable({ kind = "usage", code = code, message = message }, Error)
end

-- The scheduler's own steps are ordered so that running out of memory (which raises, out of
-- run or step) leaves it consistent: a table grows first, then the state that depends on it.
local function schedule(task)
  if task.queued or task.finished then return end
  runq[runq_tail + 1] = task
  runq_tail = runq_tail + 1
  task.queued = true
end

local function add_timer(task, at)
  local i = #timers
  while i >= 1 and timers[i].at > at do i = i - 1 end
  table.insert(timers, i + 1, { at = at, task = task })
end

local function finish(task, ok, ...)
  if task.finished then return end
  if ok then
    task.results = { n = select("#", ...), ... }
  else
    task.err = ...
  end
  task.finished = true
  registry[task.co] = nil
  if alive[task] then
    alive[task] = nil
    nalive = nalive - 1
  end
  local joiners = task.joiners
  for i = 1, #joiners do
    schedule(joiners[i])
    joiners[i] = false
  end
end

-- Runs the task until it yields or ends. An error in it ends that task, never the scheduler.
local function resume(task)
  task.queued = false
  if task.finished then return end
  local ok, err = co_resume(task.co)
  if not ok then
    finish(task, false, err)
  elseif co_status(task.co) == "dead" then
    -- finish() was called by the body itself (see spawn)
    if not task.finished then finish(task, true) end
  end
end

-- A number of seconds, for step (a budget) and sleep: raises at the caller's caller (level 3).
local function check_seconds(name, s)
  if type(s) ~= "number" then
    error("bad argument #1 to '" .. name .. "' (number expected, got " .. type(s) .. ")", 3)
  end
  if s ~= s then error("bad argument #1 to '" .. name .. "' (seconds expected, got NaN)", 3) end
  if s < 0 then error("bad argument #1 to '" .. name .. "' (seconds must be >= 0, got " .. tostring(s) .. ")", 3) end
end

local step -- the scheduler's step, below

--- Tasks.
-- @section tasks

--- The running task, or nil outside one.
-- @local
M.current = function() return current() end

--- Suspends the running task for s seconds (a timer); outside a task, runs the scheduler for
-- that long, so the tasks go on meanwhile. `math.huge` sleeps until the task is cancelled.
-- @tparam number s seconds, >= 0
-- @raise when `s` is not a number, is NaN or is negative
function M.sleep(s)
  if s == nil then s = 0 else check_seconds("sleep", s) end
  local task = current()
  if not task then
    local t_end = now() + s
    while now() < t_end do
      local left = t_end - now()
      if nalive == 0 then
        sleep(left < M.MAX_STEP and left or M.MAX_STEP)
      else
        step(left)
      end
    end
    return
  end
  add_timer(task, now() + s)
  co_yield()
end

local function hold(task)
  add_timer(task, now() + M.HOLD_INTERVAL)
  co_yield()
end

-- Drives a call of the running task to its end (its result is read by the caller). task.calls
-- lists the calls it drives, outermost first (a call, then its token refresh), for cancel.
local function drive(task, call)
  local calls = task.calls
  calls[#calls + 1] = call
  while true do
    local what, a, b, c, d, e, f = advance(call)
    if what == "done" then
      calls[#calls] = nil
      return
    elseif what == "flight" then
      parked[call] = task
      task.call = call
      co_yield()
      task.call = nil
    elseif what == "wait" then
      add_timer(task, now() + a)
      co_yield()
    elseif what == "hold" then
      hold(task)
    elseif what == "hook" then
      -- a hook may yield: it runs in the task. a = how many arguments (1 to 4)
      if a == 1 then
        call:hooked(pcall(b, c))
      elseif a == 2 then
        call:hooked(pcall(b, c, d))
      elseif a == 3 then
        call:hooked(pcall(b, c, d, e))
      else
        call:hooked(pcall(b, c, d, e, f))
      end
    elseif what == "refresh" then
      drive(task, a) -- the token refresh, as a child call on the same machinery
    else
      error("flextell: unexpected step '" .. tostring(what) .. "' of a call")
    end
  end
end

--- The Lua driver of a call started in a task: yields until it is done; returns its result.
-- @local
function M.await(call)
  local task = current()
  if not task then error("flextell: await needs a task", 2) end
  drive(task, call)
  return call:result()
end

--- True when v is a call object (what C returns inside a task instead of blocking).
-- @local
function M.is_call(v)
  return getmetatable(v) == call_mt
end

--- Starts fn(...) as a task; it runs when the scheduler does (run, step, wait, sleep).
-- Tasks may spawn tasks. An error in one task never stops the scheduler or the other tasks.
-- @tparam function fn the task's body
-- @param ... its arguments
-- @treturn Task the task
-- @raise when `fn` is not a function
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2) end
  local args = { n = select("#", ...), ... }
  local task = setmetatable({ joiners = {}, calls = {}, finished = false, queued = false }, Task)
  local function handler(err)
    if type(err) == "table" then return err end
    return traceback(tostring(err), 2)
  end
  task.co = co_create(function()
    finish(task, xpcall(function() return fn(unpack(args, 1, args.n)) end, handler))
  end)
  registry[task.co] = task
  -- the queue's slot and the alive set grow first: running out of memory here leaves no task
  -- that is alive but can never run
  runq[runq_tail + 1] = task
  alive[task] = true
  nalive = nalive + 1
  runq_tail = runq_tail + 1
  task.queued = true
  return task
end

-- Wakes the tasks whose timers are due; returns the time of the next timer, or nil.
local function wake_timers(t)
  local n = 0
  while timers[n + 1] and timers[n + 1].at <= t do
    n = n + 1
    schedule(timers[n].task)
  end
  if n > 0 then
    local rest = {}
    for i = n + 1, #timers do rest[#rest + 1] = timers[i] end
    timers = rest
  end
  return timers[1] and timers[1].at
end

-- A step waits for the network only with at least this much of its budget left: a frame's few
-- milliseconds are better spent drawing (the next frame takes what arrived) than in a wait that
-- the system may end late.
M.MIN_WAIT = 0.005

-- One new transfer costs libcurl about this much of a step (a loopback connect and send; a TLS
-- handshake more): a step with a budget hands libcurl no more new transfers than fit in it.
M.NEW_TRANSFER_COST = 0.0005

-- The calls libcurl is done with, handed back by the loop; kept here until every one's task is
-- scheduled, so a step that runs out of memory half way loses none of them.
local backlog, backlog_i = nil, 1

local function take_backlog()
  while backlog and backlog[backlog_i] do
    local call = backlog[backlog_i]
    local task = parked[call]
    if task then
      schedule(task)
      parked[call] = nil
    end
    backlog_i = backlog_i + 1
  end
  backlog = nil
end

local function take_ready(max_new)
  take_backlog()
  backlog, backlog_i = loop_perform(max_new), 1
  take_backlog()
end

-- A safety net: with nothing in libcurl's hands, a parked task cannot be woken by a transfer
-- (its call ended some other way: closed, cancelled, or memory ran out while it was handed
-- over), and a task waiting for one that has ended must go on: both are scheduled to look again.
local function rescue()
  if loop_pending() == 0 then
    for call, task in pairs(parked) do
      schedule(task)
      parked[call] = nil
    end
  end
  for task in pairs(alive) do
    if task.joining and task.joining.finished then schedule(task) end
  end
end

--- Moves the tasks on, for at most max_seconds; once per frame in a game or app loop.
--- Does the work that is ready (transfers that moved, timers due, tasks to resume) for at most
-- max_seconds; when nothing was ready and at least MIN_WAIT (5 ms) of the budget is left, it
-- waits once for activity within the budget, then does what arrived. Returns the number of tasks
-- still running. max_seconds 0 (the default) does what is ready and never waits. Call it once
-- per frame from a game or app loop (a frame's budget is too short to wait in).
-- @tparam[opt=0] number max_seconds the budget, in seconds (>= 0; more than MAX_STEP, a day,
--   counts as a day)
-- @treturn integer the number of tasks still running
-- @raise when `max_seconds` is not a number, is NaN or is negative
-- @usage while running do
--   flextell.step(0.002) -- at most ~2 ms of work and waiting
--   draw_frame()
-- end
function M.step(max_seconds)
  if max_seconds == nil then max_seconds = 0 else check_seconds("step", max_seconds) end
  local n = step(max_seconds)
  return n
end

-- The step itself, for the scheduler's own callers (a budget they computed: a number >= 0).
function step(budget)
  if budget > M.MAX_STEP then budget = M.MAX_STEP end
  local deadline = now() + budget
  local max_new = budget > 0 and math.max(1, math.floor(budget / M.NEW_TRANSFER_COST)) or nil
  local resumed, waited = 0, false
  while true do
    take_ready(waited and max_new and 0 or max_new) -- new transfers once per step
    wake_timers(now())
    -- resume what is ready, within the budget (at least one task, so every step progresses)
    while runq_head <= runq_tail do
      local task = runq[runq_head]
      runq[runq_head] = nil
      runq_head = runq_head + 1
      resume(task)
      resumed = resumed + 1
      if resumed >= M.MAX_RESUMES_PER_STEP or (budget > 0 and now() >= deadline) then break end
    end
    if runq_head > runq_tail then runq_head, runq_tail = 1, 0 end
    local t = now()
    if nalive == 0 or resumed > 0 or waited or deadline - t < M.MIN_WAIT then return nalive end
    rescue()
    if runq_head > runq_tail then
      -- idle: wait for the network or the next timer, within the budget, then take what came
      local until_t = deadline
      if timers[1] and timers[1].at < until_t then until_t = timers[1].at end
      if until_t > t then
        if loop_pending() > 0 then
          loop_wait(until_t - t)
        else
          sleep(until_t - t)
        end
      end
    end
    waited = true
  end
end

--- Runs every task to its end (blocking). Raises when the tasks left all wait for each other.
-- @raise on a deadlock, when called inside a task (use `wait` there), or with an argument (it
--   takes none: `step(seconds)` is the bounded run)
function M.run(...)
  if select("#", ...) > 0 then
    error("bad argument #1 to 'run' (no value expected, got " .. type((...)) .. "; " ..
      "flextell.step(seconds) runs the scheduler for a while)", 2)
  end
  if current() then error("flextell.run: called inside a task (use flextell.wait for other tasks)", 2) end
  while nalive > 0 do
    step(0.25)
    if nalive > 0 and runq_head > runq_tail and not timers[1] and loop_pending() == 0 and not next(parked) then
      error("flextell.run: every task left is waiting for another task (a deadlock)", 2)
    end
  end
end

local function outcome(task)
  if task.err ~= nil or not task.results then return { nil, task.err } end
  return { unpack(task.results, 1, task.results.n) }
end

--- Waits for the tasks to end: inside a task it yields, outside it runs the scheduler. Returns
-- one table per task: { data, meta, res } (whatever the task returned) or { nil, err }.
-- @param ... the tasks
-- @return one table per task
-- @raise when an argument is not a task, a task waits for itself, or on a deadlock
function M.wait(...)
  local list = { n = select("#", ...), ... }
  local me = current()
  for i = 1, list.n do
    local t = list[i]
    if getmetatable(t) ~= Task then
      error("bad argument #" .. i .. " to 'wait' (task expected, got " .. type(t) .. ")", 2)
    end
    if t == me then error("a task cannot wait for itself", 2) end
    while not t.finished do
      if me then
        t.joiners[#t.joiners + 1] = me
        me.joining = t
        co_yield()
        me.joining = nil
      else
        step(0.25)
        if not t.finished and nalive > 0 and runq_head > runq_tail and not timers[1] and loop_pending() == 0
          and not next(parked) then
          error("flextell.wait: the task waits for another task that never ends (a deadlock)", 2)
        end
      end
    end
  end
  local out = {}
  for i = 1, list.n do out[i] = outcome(list[i]) end
  return unpack(out, 1, list.n)
end

--- A task, from `spawn`.
-- @type Task

--- task:done() -> true once the task has ended (returned, raised or was cancelled).
-- @treturn boolean
function Task:done()
  return self.finished
end

--- task:result() -> what the task returned (data, meta, res), or nil, err when it raised or
-- was cancelled. Waits for the task first if it has not ended.
-- @return[1] what the task returned, such as `data, meta, res`
-- @return[2] nil, err: the error value it raised (a string with a traceback, or a
--   `flextell.Error`), or for a cancelled task a `usage` error, code `cancelled`
function Task:result()
  if not self.finished then M.wait(self) end
  if self.err ~= nil or not self.results then return nil, self.err end
  return unpack(self.results, 1, self.results.n)
end

--- task:cancel(): ends the task now; a call it had in flight is cancelled with it, and the task's
-- result is nil, err (usage, "cancelled").
-- A token request already on the wire goes on in a task of its own (its answer holds the new
-- tokens), and the workers of a `Client:batch` the task was running are cancelled too. The
-- error says `maybe_sent = true` when the request may have reached the server.
function Task:cancel()
  if self.finished then return end
  local err
  -- the calls it drives, innermost first: a token refresh gives back what it holds (the one
  -- refresh of the client, a token store's lock) before the call that waits for it ends
  local calls = self.calls
  for i = #calls, 1, -1 do
    local call = calls[i]
    parked[call] = nil
    if keep_on_cancel(call) then
      -- a token request on the wire (a refresh, a code exchange): a task of its own finishes it,
      -- since its answer holds the only copy of the new tokens the client and the store need
      M.spawn(function() drive(current(), call) end)
      if i == 1 then
        err = make_error("cancelled", "the task was cancelled")
        err.maybe_sent = true
      end
    else
      call:cancel()
    end
    calls[i] = nil
    if i == 1 then
      local ok, _, e = pcall(call.result, call)
      if ok and type(e) == "table" then -- the call's error: method, url, attempts, maybe_sent
        e.message = "the task was cancelled"
        err = e
      end
    end
  end
  self.call = nil
  err = err or make_error("cancelled", "the task was cancelled")
  -- tasks it started to do its work (a batch's workers) end with it
  local owned = self.owned
  self.owned = nil
  if owned then
    for i = 1, #owned do owned[i]:cancel() end
  end
  finish(self, false, err)
  if co_running() == self.co then error(err, 0) end
  if co_close and co_status(self.co) == "suspended" then co_close(self.co) end
end

function Task:__tostring()
  return "flextell.Task (" .. (self.finished and (self.err ~= nil and "failed" or "done") or "running") .. ")"
end

--- The number of tasks not finished.
-- @local
function M.count()
  return nalive
end

-- A blocking call that waits on something a task owns (the token refresh it runs) lets the
-- scheduler step meanwhile.
core.set_pump(function(s) step(s) end)

return M
