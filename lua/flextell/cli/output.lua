--- Output of the `flextell` command: JSON as the server sent it (pretty and coloured on a
-- terminal, compact otherwise), errors as one line on stderr, and the exit code of each error.

local jsontext = require "flextell.cli.jsontext"

local M = {}

-- Exit codes by error kind (documented in `flextell --help`).
M.EXIT = { ok = 0, api = 1, usage = 2, auth = 3, network = 4 }
local KIND_EXIT = {
  http = 1, protocol = 1, decode = 1, limit = 1,
  usage = 2,
  auth = 3,
  network = 4, timeout = 4, tls = 4,
}

--- The exit code for an error value (a flextell.Error, or a message: usage).
function M.exit_code(err)
  if type(err) == "table" then return KIND_EXIT[err.kind] or 1 end
  return 2
end

local tty_cache = {}
--- Whether file descriptor fd (1 stdout, 2 stderr) is a terminal. The test runs in a shell that
-- inherits the descriptor, which is what isatty(3) would look at.
function M.isatty(fd)
  if tty_cache[fd] == nil then
    local ok = os.execute("[ -t " .. fd .. " ]")
    tty_cache[fd] = ok == true or ok == 0
  end
  return tty_cache[fd]
end

--- Output settings from the --color flag ("auto", "always", "never") and the terminal.
function M.style(color_flag)
  local tty = M.isatty(1)
  local color
  if color_flag == "always" then
    color = true
  elseif color_flag == "never" then
    color = false
  else
    local no_color = os.getenv("NO_COLOR")
    color = tty and (no_color == nil or no_color == "") and os.getenv("TERM") ~= "dumb"
  end
  return { pretty = tty, color = color, indent = tty and 2 or nil }
end

--- Writes to stdout, remembering the first failure (a full disk...) in M.write_error: the
-- command then exits 1 instead of claiming output it lost.
function M.out(...)
  local ok, err = io.stdout:write(...)
  if not ok and not M.write_error then M.write_error = err or "write failed" end
  return ok ~= nil
end

--- Flushes stdout (the same failure rule); true when everything written so far went out.
function M.flush()
  local ok, err = io.stdout:flush()
  if not ok and not M.write_error then M.write_error = err or "write failed" end
  return M.write_error == nil
end

--- Writes the JSON value at text[a..b] to stdout, followed by a newline.
function M.json(style, text, a, b)
  local s, err = jsontext.format(text, a or 1, b or #text, { indent = style.indent, color = style.color })
  if not s then return nil, err end
  M.out(s, "\n")
  return true
end

--- Writes a Lua value (encoded by the library's codec) to stdout as JSON.
function M.value(style, v)
  local text = require("flextell").json.encode(v)
  return M.json(style, text, 1, #text)
end

--- Text from the network made safe for a terminal: control characters (an escape sequence
-- would be obeyed by the terminal) are shown as \xHH.
function M.printable(s)
  return (tostring(s):gsub("[%z\1-\31\127]", function(c) return string.format("\\x%02x", c:byte()) end))
end

--- One line on stderr: "flextell: <message>".
function M.error(err)
  local line
  if type(err) == "table" then
    line = tostring(err)
    if line:sub(1, 10) ~= "flextell: " then line = "flextell: " .. line end
  else
    line = "flextell: " .. tostring(err)
  end
  io.stderr:write(M.printable((line:gsub("[\r\n]+", " "))), "\n")
end

--- A note on stderr (hints, progress ends).
function M.note(s)
  io.stderr:write(s, "\n")
end

return M
