-- Lua 5.4 + lua-socket + lua-cjson, two ways a user writes it:
--   EXTRA = "keepalive" (the default): a small HTTP/1.1 client over socket.tcp that keeps its
--     one connection open (luasocket's socket.http cannot: it sends Connection: close), reads
--     the status line and headers, then Content-Length bytes;
--   EXTRA = "http": socket.http.request per call, so a new connection per call.
-- Every body is decoded by cjson.
local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local common = dofile(here .. "common.lua")
local socket = require "socket"
local cjson = require "cjson"

local a = common.args()
local mode = a.extra or "keepalive"
local fetch

if mode == "http" then
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local headers = { authorization = "Bearer " .. tostring(a.token), accept = "application/json" }
  fetch = function(url)
    local parts = {}
    local ok, code = http.request { url = url, headers = headers, sink = ltn12.sink.table(parts) }
    if not ok or code ~= 200 then error("GET " .. url .. ": " .. tostring(code)) end
    return cjson.decode(table.concat(parts))
  end
elseif a.workload ~= "decode" then
  local host, port = a.base:match("^http://([^:/]+):(%d+)")
  local prefix = a.base:match("^http://[^/]+(.*)$")
  local conn
  local function connect()
    conn = assert(socket.tcp())
    assert(conn:connect(host, tonumber(port)))
    conn:setoption("tcp-nodelay", true)
  end
  local head = " HTTP/1.1\r\nHost: " .. host .. ":" .. port .. "\r\nAuthorization: Bearer " .. tostring(a.token) ..
    "\r\nAccept: application/json\r\n\r\n"
  local function exchange(target)
    assert(conn:send("GET " .. target .. head))
    local line, err = conn:receive("*l")
    if not line then return nil, err end
    local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
    local length, close
    while true do
      local h = assert(conn:receive("*l"))
      if h == "" then break end
      local name, value = h:match("^([^:]+):%s*(.-)%s*$")
      name = name and name:lower()
      if name == "content-length" then length = tonumber(value)
      elseif name == "connection" and value:lower() == "close" then close = true
      elseif name == "transfer-encoding" then error("chunked bodies are not handled by this client") end
    end
    if not length then error("no Content-Length in the answer") end
    local body = assert(conn:receive(length))
    if close then conn:close(); conn = nil end
    return status, body
  end
  fetch = function(url)
    local target = prefix .. url:sub(#a.base + 1)
    if not conn then connect() end
    local status, body = exchange(target)
    if not status then -- the server closed the kept-alive connection: once more on a new one
      conn:close()
      connect()
      status, body = exchange(target)
    end
    if status ~= 200 then error("GET " .. url .. ": HTTP " .. tostring(status)) end
    return cjson.decode(body)
  end
end

common.run(a, fetch, cjson.decode)
