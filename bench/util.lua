-- Shell and file helpers for the bench driver (Lua 5.4). Load with dofile(<bench dir> .. "/util.lua").
local M = {}

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A child that died of SIGINT or SIGTERM means the user stopped the run: raise so the driver's
-- cleanup runs, instead of reading the failure as a bad measurement.
local function check_signal(how, code)
  if how == "signal" and (code == 2 or code == 15) then error("interrupted", 0) end
  if how == "exit" and (code == 130 or code == 143) then error("interrupted", 0) end
end

--- Runs cmd; true when it exited 0.
function M.run(cmd)
  local ok, how, code = os.execute(cmd)
  check_signal(how, code)
  return ok == true
end

--- Output of cmd (trailing white space cut), and whether it exited 0.
function M.capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a") or ""
  local ok, how, code = p:close()
  check_signal(how, code)
  return (out:gsub("%s+$", "")), ok == true
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  assert(f:write(data))
  f:close()
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- The pid of this Lua process (the parent of the shell popen starts).
function M.own_pid()
  return (M.capture("echo $PPID"))
end

--- A directory under TMPDIR that the caller removes.
function M.tempdir(tag)
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local dir = M.capture("mktemp -d " .. M.quote(tmp .. "/" .. tag .. ".XXXXXX"))
  assert(dir ~= "", "mktemp failed")
  return dir
end

--- A shell command that stops the nginx whose pid file is given, waiting until it is gone.
function M.stop_nginx_script(pidfile)
  local q = M.quote(pidfile)
  return "m=$(cat " .. q .. " 2>/dev/null); if [ -n \"$m\" ]; then kill -QUIT \"$m\" 2>/dev/null; i=0; " ..
    "while kill -0 \"$m\" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done; " ..
    "kill -KILL \"$m\" 2>/dev/null; fi; true"
end

--- Starts a shell in the background that, once this Lua process is gone without having removed
-- the mark file, runs script (stops a server a killed run left behind). Ignores Ctrl-C, which
-- the run it guards handles itself.
function M.watchdog(mark, script)
  M.write_file(mark, "")
  local owner = M.own_pid()
  local sh = "trap '' INT HUP TERM; while kill -0 " .. owner .. " 2>/dev/null && [ -e " .. M.quote(mark) ..
    " ]; do sleep 1; done; if [ -e " .. M.quote(mark) .. " ]; then " .. script .. "; fi"
  M.run("sh -c " .. M.quote(sh) .. " </dev/null >/dev/null 2>&1 &")
end

return M
