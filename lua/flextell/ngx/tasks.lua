--- The task API on nginx's own machinery (lua-nginx-module light threads): flextell.spawn is
-- ngx.thread.spawn, flextell.sleep is ngx.sleep, flextell.wait waits for the threads; run and
-- step return at once, since nginx's event loop is the scheduler.

local ngx = ngx
local driver = require "flextell.ngx.driver"
local coroutine, error, getmetatable, pcall, select, setmetatable, tostring, type =
  coroutine, error, getmetatable, pcall, select, setmetatable, tostring, type
local unpack = table.unpack or unpack -- luacheck: ignore 143

local M = {}

local Task = {}
Task.__index = Task
Task.__name = "flextell.Task"

local Error

local function cancelled()
  return setmetatable({ kind = "usage", code = "cancelled", message = "the task was cancelled" }, Error)
end

local function collect(task)
  if task.finished then return end
  local r = { n = 0 }
  local function keep(ok, ...) r = { n = select("#", ...), ok = ok, ... } end
  keep(ngx.thread.wait(task.thread))
  task.finished = true
  if r.ok then
    task.results = r
  else
    task.err = r[1]
  end
end

function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2) end
  local task = setmetatable({ finished = false }, Task)
  local thread, err = ngx.thread.spawn(function(...)
    task.co = coroutine.running()
    return fn(...)
  end, ...)
  if not thread then error("flextell.spawn: " .. tostring(err), 2) end
  task.thread = thread
  return task
end

function M.wait(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if getmetatable(t) ~= Task then error("bad argument #" .. i .. " to 'wait' (task expected)", 2) end
    collect(t)
    out[i] = t.err ~= nil and { nil, t.err } or { unpack(t.results, 1, t.results.n) }
  end
  return unpack(out, 1, select("#", ...))
end

-- The same argument rules as the scheduler outside nginx (flextell/tasks.lua).
local function check_seconds(name, s)
  if type(s) ~= "number" then
    error("bad argument #1 to '" .. name .. "' (number expected, got " .. type(s) .. ")", 3)
  end
  if s ~= s then error("bad argument #1 to '" .. name .. "' (seconds expected, got NaN)", 3) end
  if s < 0 then error("bad argument #1 to '" .. name .. "' (seconds must be >= 0, got " .. tostring(s) .. ")", 3) end
end

function M.sleep(s)
  if s ~= nil then check_seconds("sleep", s) end
  s = s or 0
  while s > 86400 do -- ngx.sleep takes at most a day at a time here too
    ngx.sleep(86400)
    s = s - 86400
  end
  ngx.sleep(s)
end

function M.run(...)
  if select("#", ...) > 0 then
    error("bad argument #1 to 'run' (no value expected, got " .. type((...)) .. "; " ..
      "flextell.step(seconds) runs the scheduler for a while)", 2)
  end
end

function M.step(max_seconds)
  if max_seconds ~= nil then check_seconds("step", max_seconds) end
  return 0
end

function M.current()
  return nil
end

function Task:result()
  collect(self)
  if self.err ~= nil then return nil, self.err end
  return unpack(self.results, 1, self.results.n)
end

function Task:done()
  if self.finished then return true end
  return coroutine.status(self.thread) == "dead"
end

-- Kills the light thread; the call it was driving ends too, and the error is that call's (method,
-- url, attempts, maybe_sent), as with the task API outside nginx.
function Task:cancel()
  if self.finished then return end
  local call = self.co and driver.driving(self.co)
  ngx.thread.kill(self.thread)
  self.finished = true
  local err
  if call then
    call:cancel()
    local ok, _, e = pcall(call.result, call)
    if ok and type(e) == "table" then
      e.message = "the task was cancelled"
      err = e
    end
  end
  self.err = err or cancelled()
end

function M.init(core)
  Error = core.Error
end

return M
