--- The nginx driver of a call (lua-nginx-module, OpenResty): every client call made inside nginx
-- goes through here, over cosockets, so an nginx worker never blocks on the network. It speaks
-- only the call object's public API (call:next, response, failed, resent, hooked, result):
-- prepare, finish and the decisions (retries, the deadline, token refresh) stay the C core's.
--
-- Sending is flextell/ngx/http.lua; waits are ngx.sleep; a token refresh runs in a timer
-- (ngx.timer.at), so a client that disconnects does not end it half way: its answer holds the
-- only copy of a rotated refresh token. Calls are possible where nginx allows cosockets.
-- @module flextell.ngx.driver

local http -- flextell.ngx.http, loaded by init (it needs nginx's ngx table)

local ngx = ngx
local coroutine, pcall, select, setmetatable, type = coroutine, pcall, select, setmetatable, type
local unpack = table.unpack or unpack -- luacheck: ignore 143
local pack = table.pack or function(...) return { n = select("#", ...), ... } end -- luacheck: ignore 143

local M = {}

--- The phases where cosockets work (lua-nginx-module 0.10.23): a set of phase names.
-- @table PHASES
M.PHASES = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
  ssl_session_fetch = true, ssl_client_hello = true }

local Error

local function usage(code, message)
  return setmetatable({ kind = "usage", code = code, message = message }, Error)
end

-- A Lua error the driver cannot report otherwise is a usage error of the call.
local function refuse(call, err)
  call:cancel()
  local _, cerr = call:result()
  if type(cerr) == "table" then
    cerr.code, cerr.message, cerr.maybe_sent = err.code, err.message, false
    return nil, cerr
  end
  return nil, err
end

local semaphore

local drive

-- The call each light thread is driving now, for task:cancel() (flextell/ngx/tasks.lua), which
-- kills the thread and ends that call, so its error says which request it was and whether it may
-- have been sent.
local driving = setmetatable({}, { __mode = "k" })

--- The call the coroutine (a light thread) is driving now, or nil.
-- @param co a coroutine
-- @return the call (a `flextell.Call`), or nil
function M.driving(co)
  return driving[co]
end

-- A token refresh (the child call) runs in a timer of its own; the request waits for it.
local function refresh(child)
  semaphore = semaphore or require "ngx.semaphore"
  local done = semaphore.new()
  local ok, err = ngx.timer.at(0, function()
    drive(child)
    done:post(1)
  end)
  if not ok then -- no timer to be had (worker_connections, lua_max_pending_timers): drive it here
    ngx.log(ngx.WARN, "flextell: token refresh in the request, no timer: ", err)
    drive(child)
    return
  end
  while not child:done() do done:wait(60) end
end

local drive_steps

function drive(call)
  local co = coroutine.running()
  local outer = driving[co] -- a refresh driven here when no timer was to be had
  driving[co] = call
  local r = pack(drive_steps(call))
  driving[co] = outer
  return unpack(r, 1, r.n)
end

function drive_steps(call)
  while true do
    local what, a = call:next()
    if what == "send" then
      if a.ca_file or a.ca_path then
        return refuse(call, usage("unsupported", "ca_file and ca_path do not work under nginx: trust comes from " ..
          "nginx's lua_ssl_trusted_certificate directive (and lua_ssl_verify_depth)"))
      end
      if a.proxy then
        return refuse(call, usage("unsupported", "the proxy option does not work under nginx's driver: connect " ..
          "directly, or use transport = \"curl\" in a thread of its own (ngx.run_worker_thread)"))
      end
      local status, headers, body, maybe_sent, resent = http.exchange(a)
      if resent then call:resent() end -- (resent is the reason, for the log)
      if status then
        call:response(status, headers, body)
      else
        call:failed(headers, body, maybe_sent) -- code, message
      end
    elseif what == "wait" then
      ngx.sleep(a and a > 0.001 and a or 0.001)
    elseif what == "hook" then
      call:hooked(pcall(a.fn, unpack(a.args, 1, a.args.n)))
    elseif what == "refresh" then
      refresh(a)
    else -- "done"
      return call:result()
    end
  end
end

--- Drives a call to its end over cosockets: the call's result; a usage error naming the phase
-- where nginx has no cosockets.
-- @param call a `flextell.Call`
-- @return the call's result: data, meta, res; or nil, err
function M.await(call)
  local phase = ngx.get_phase()
  if not M.PHASES[phase] then
    return refuse(call, usage("phase", "flextell: no network calls in nginx's " .. phase .. " phase (no " ..
      "cosockets there): call from rewrite, access or content handlers, or from a timer (ngx.timer.at)"))
  end
  return drive(call)
end

--- Makes this the driver of every call of the state (flextell's init does it when it finds
-- itself inside nginx).
-- @param core the module `flextell.core`
function M.init(core)
  Error = core.Error
  http = require "flextell.ngx.http"
  core.set_lua_driver(true)
end

--- True inside nginx's Lua module.
-- @treturn boolean
function M.active()
  return type(ngx) == "table" and type(ngx.get_phase) == "function" and type(ngx.socket) == "table"
end

return M
