--- One HTTP/1.1 exchange over an nginx cosocket (ngx.socket.tcp): the send step of the nginx
-- driver. It takes the request a call hands its driver (call:next() -> "send", req) and gives
-- back what the call wants to hear: status, headers, body; or a failure code, a message and
-- whether the request may have reached the server.
--
-- Connections are kept alive in nginx's pool, one pool per scheme, host and port. Writes (POST,
-- PATCH) use a pool of their own whose connections are dropped after write_max_idle seconds, so
-- a write reuses only a recently used connection (the at-most-once rule of the libcurl driver).
-- A request on a reused connection that closes before any byte of an answer is sent again once
-- on a new connection when it is idempotent (as libcurl does), and never when it is a write.
-- Bodies are not asked for compressed (no Accept-Encoding), so nothing needs decoding.
-- @module flextell.ngx.http

local ngx = ngx
local tcp = ngx.socket.tcp

local concat, ipairs, pairs, setmetatable, tonumber, tostring, type =
  table.concat, ipairs, pairs, setmetatable, tonumber, tostring, type
local min = math.min

local M = {}

local HEADERS_MAX = 64 * 1024 -- bytes of response headers in all, as the libcurl driver
local CHUNK = 16384

-- scheme, host, port, target (path and query), host header
local function parse_url(url)
  local scheme, authority, target = url:match("^(https?)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  local default = scheme == "https" and 443 or 80
  port = tonumber(port) or default
  if target == "" then target = "/" end
  target = target:gsub("#.*$", "")
  local hostname = authority:find("^%[") and "[" .. host .. "]" or host
  return scheme, host, port, target, port == default and hostname or hostname .. ":" .. port
end
--- Splits an http(s) URL: scheme, host, port, target (path and query), Host header value; nil
-- when it is not one.
-- @function parse_url
-- @tparam string url the URL
M.parse_url = parse_url

local function ms(seconds)
  return math.max(1, math.floor(seconds * 1000 + 0.5))
end

-- The attempt's clock: a read may wait the stall timeout, and no read goes past the attempt's
-- end. A read that times out is "stalled" unless the attempt's time is up ("timeout").
local Clock = {}
Clock.__index = Clock

local function clock(req)
  local timeout = req.timeout or 30
  return setmetatable({ t_end = ngx.now() + timeout, stall = req.stall_timeout or timeout,
    connect = min(req.connect_timeout or 10, timeout) }, Clock)
end

function Clock:arm(sock)
  ngx.update_time()
  local left = self.t_end - ngx.now()
  sock:settimeouts(ms(self.connect), ms(math.max(left, 0.001)), ms(math.max(min(self.stall, left), 0.001)))
end

function Clock:timed_out()
  ngx.update_time()
  return self.t_end - ngx.now() > 0.01 and "stalled" or "timeout"
end

-- The request head: request line, Host, the call's headers (a "Name:" entry only removes a
-- header the transport would add; this one adds none), Content-Length.
local function head(req, target, host_header, body_len, content_type)
  local lines = { req.method .. " " .. target .. " HTTP/1.1", "Host: " .. host_header }
  if content_type then lines[#lines + 1] = "Content-Type: " .. content_type end
  for _, h in ipairs(req.headers) do
    if not h:find("^[^:]+:%s*$") then lines[#lines + 1] = h end
  end
  if body_len then lines[#lines + 1] = "Content-Length: " .. body_len end
  lines[#lines + 1] = ""
  lines[#lines + 1] = ""
  return concat(lines, "\r\n")
end

-- Content types for a file part without one, by extension (what libcurl guesses too).
local TYPES = { gif = "image/gif", jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png",
  svg = "image/svg+xml", txt = "text/plain", htm = "text/html", html = "text/html", pdf = "application/pdf",
  xml = "application/xml" }

local function guess(filename)
  local ext = filename and filename:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()] or "application/octet-stream"
end

local function quoted(s)
  return '"' .. s:gsub('[\\"]', "\\%0") .. '"'
end

-- A multipart/form-data body (RFC 7578) from the parts as the call was given them: a list of
-- strings and { path = } pieces (files are streamed, never read whole), its length, and the
-- Content-Type header. Each part was checked by the call already (prepare).
local function multipart(parts)
  local boundary = "------------------------flextell" .. ngx.md5(tostring(parts) .. ngx.now()):sub(1, 16)
  local pieces, len = {}, 0
  local function add(piece)
    pieces[#pieces + 1] = piece
    if type(piece) == "string" then len = len + #piece else len = len + piece.size end
  end
  for name, v in pairs(parts) do
    local disposition = 'Content-Disposition: form-data; name=' .. quoted(name)
    if type(v) ~= "table" then
      add("--" .. boundary .. "\r\n" .. disposition .. "\r\n\r\n" .. tostring(v) .. "\r\n")
    else
      local filename = v.filename or (v.path and v.path:match("([^/]*)$")) or name
      add("--" .. boundary .. "\r\n" .. disposition .. "; filename=" .. quoted(filename) .. "\r\nContent-Type: " ..
        (v.content_type or guess(filename)) .. "\r\n\r\n")
      if v.path then
        local f = io.open(v.path, "rb")
        if not f then return nil, "cannot read file '" .. v.path .. "'" end
        local size = f:seek("end")
        f:close()
        add({ path = v.path, size = size })
      else
        add(v.data)
      end
      add("\r\n")
    end
  end
  add("--" .. boundary .. "--\r\n")
  return pieces, len, "multipart/form-data; boundary=" .. boundary
end

-- Sends the body pieces; bytes, or nil, err.
local function send_pieces(sock, pieces)
  for _, piece in ipairs(pieces) do
    if type(piece) == "string" then
      local ok, err = sock:send(piece)
      if not ok then return nil, err end
    else
      local f = io.open(piece.path, "rb")
      if not f then return nil, "cannot read file '" .. piece.path .. "'" end
      while true do
        local chunk = f:read(65536)
        if not chunk then break end
        local ok, err = sock:send(chunk)
        if not ok then
          f:close()
          return nil, err
        end
      end
      f:close()
    end
  end
  return true
end

local function failure(code, message, maybe_sent, resent)
  return nil, code, message, maybe_sent, resent
end

-- Reads the status line and the headers; status, headers (name -> value or list), raw block
-- length; or nil, code, message.
local function read_head(sock, cx)
  local reader = sock:receiveuntil("\r\n\r\n")
  local parts, size = {}, 0
  while true do
    cx:arm(sock)
    local data, err, partial = reader(CHUNK)
    if not data and not err then break end -- the boundary was reached
    if not data then
      if err == "timeout" then return nil, cx:timed_out(), "no answer in time" end
      if size + #(partial or "") == 0 then
        return nil, "empty_reply", "the server closed the connection without an answer"
      end
      return nil, err == "closed" and "bad_response" or "connection_reset",
        "the connection ended in the answer's headers: " .. tostring(err)
    end
    size = size + #data
    if size > HEADERS_MAX then return nil, "headers_too_large", "the answer's headers are larger than 64 KiB" end
    parts[#parts + 1] = data
  end
  local block = concat(parts)
  local status_line, rest = block:match("^([^\r\n]*)\r?\n?(.*)$")
  local version, status = status_line:match("^HTTP/(1%.[01]) (%d%d%d)")
  if not version then
    return nil, "bad_response", "the answer is not HTTP/1.x: " .. status_line:sub(1, 80)
  end
  local headers = {}
  for line in (rest .. "\r\n"):gmatch("([^\r\n]*)\r?\n") do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      local old = headers[name]
      if old == nil then
        headers[name] = value
      elseif type(old) == "table" then
        old[#old + 1] = value
      else
        headers[name] = { old, value }
      end
    end
  end
  return tonumber(status), headers, version
end

local function single(v)
  if type(v) == "table" then return v[#v] end
  return v
end

-- The body by Content-Length, chunked coding or until close, within max bytes.
local function read_body(sock, headers, status, method, max, cx)
  if method == "HEAD" or status == 204 or status == 304 or (status >= 100 and status < 200) then return "" end
  local te = single(headers["transfer-encoding"])
  local parts, size = {}, 0
  if te and te:lower():find("chunked", 1, true) then
    while true do
      cx:arm(sock)
      local line, err = sock:receive("*l")
      if not line then
        return nil, err == "timeout" and cx:timed_out() or "truncated_body", "the chunked body ended early"
      end
      local n = tonumber(line:match("^%s*(%x+)"), 16)
      if not n then return nil, "bad_response", "a chunk size that is not hexadecimal" end
      if n == 0 then
        repeat -- trailers, up to the empty line
          line = sock:receive("*l")
          if not line then return nil, "truncated_body", "the chunked body ended early" end
        until line == ""
        break
      end
      size = size + n
      if size > max then return nil, "response_too_large", "the answer is larger than max_response_bytes" end
      local data
      cx:arm(sock)
      data, err = sock:receive(n)
      if not data then
        return nil, err == "timeout" and cx:timed_out() or "truncated_body", "the chunked body ended early"
      end
      parts[#parts + 1] = data
      line = sock:receive("*l")
      if line ~= "" then return nil, "truncated_body", "a chunk without its CRLF" end
    end
    return concat(parts), nil, true
  end
  local len = tonumber(single(headers["content-length"]) or "")
  if len then
    if len > max then return nil, "response_too_large", "the answer is larger than max_response_bytes" end
    if len == 0 then return "", nil, true end
    local parts_l, got = {}, 0
    while got < len do -- in pieces, so the stall timeout applies to each
      cx:arm(sock)
      local data, err, partial = sock:receive(min(CHUNK * 4, len - got))
      if not data then
        partial = concat(parts_l) .. (partial or "")
        return nil, err == "timeout" and cx:timed_out() or (err == "closed" and #partial > 0) and "truncated_body"
          or "connection_reset", "the body ended after " .. #partial .. " of " .. len .. " bytes"
      end
      parts_l[#parts_l + 1] = data
      got = got + #data
    end
    return concat(parts_l), nil, true
  end
  while true do -- until the server closes
    cx:arm(sock)
    local data, err, partial = sock:receive(CHUNK)
    local got = data or partial or ""
    size = size + #got
    if size > max then return nil, "response_too_large", "the answer is larger than max_response_bytes" end
    parts[#parts + 1] = got
    if not data then
      if err == "closed" then break end
      return nil, err == "timeout" and cx:timed_out() or "connection_reset", "the body ended: " .. tostring(err)
    end
  end
  return concat(parts), nil, false
end

local function connect(scheme, host, port, write, cx)
  local sock = tcp()
  cx:arm(sock)
  local pool = scheme .. ":" .. host .. ":" .. port .. (write and ":w" or "")
  local ok, err = sock:connect(host, port, { pool = pool })
  if not ok then
    if err == "timeout" then return nil, "connect_timeout", "connecting to " .. host .. " timed out" end
    if err:find("no resolver defined", 1, true) then
      return nil, "resolve_failed", "cannot resolve " .. host .. ": nginx has no 'resolver' directive"
    end
    if err:find("could not be resolved", 1, true) then return nil, "resolve_failed", err end
    return nil, "connect_failed", "cannot connect to " .. host .. ":" .. port .. ": " .. err
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if scheme == "https" and not reused then
    -- SNI and the name check use the URL's host; nginx's Lua module matches DNS names only, so an
    -- IP address must be among the certificate's DNS names too
    local done
    done, err = sock:sslhandshake(false, host, true)
    if not done then
      sock:close()
      -- a verification failure is "<X509 error number>: <reason>" (or names the verify step)
      if err:find("^%d+: ") or err:find("verify", 1, true) or err:find("does not match", 1, true) then
        return nil, "tls_verify_failed", "TLS: " .. err
      end
      if err == "timeout" then return nil, "connect_timeout", "the TLS handshake with " .. host .. " timed out" end
      return nil, "tls_error", "TLS: " .. err
    end
    -- lua-nginx-module before 0.10.32 (its issue 2506) reports success when a handshake
    -- that completes at once fails its certificate check: the socket is closed and the reason
    -- only goes to nginx's error log. A closed socket here is that failed check.
    if not sock:getreusedtimes() then
      return nil, "tls_verify_failed", "TLS: the server's certificate failed verification (the reason is in " ..
        "nginx's error log)"
    end
  end
  return sock, reused
end

--- One exchange: status, headers, body; or nil, code, message, maybe_sent[, resent].
-- `resent` (a reason) is set when the request went out twice: a reused connection closed before
-- any answer, and the request was idempotent.
-- @tparam table req the request a call hands its driver (`call:next()` gives "send", req)
-- @return status, headers, body; or nil, code, message, maybe_sent, resent
function M.exchange(req)
  local scheme, host, port, target, host_header = parse_url(req.url)
  if not scheme then return failure("connect_failed", "cannot parse the URL " .. req.url, false) end
  local write = not req.idempotent
  local body = req.body
  local pieces, body_len, content_type
  if req.multipart then
    pieces, body_len, content_type = multipart(req.multipart)
    if not pieces then return failure("send_failed", body_len, false) end
  elseif body then
    pieces, body_len = { body }, #body
  else
    pieces, body_len = {}, write and 0 or nil
  end
  local resent
  local cx = clock(req)
  for attempt = 1, 2 do
    local sock, reused_or_code, message = connect(scheme, host, port, write, cx)
    if not sock then return failure(reused_or_code, message, false) end
    local reused = reused_or_code
    local bytes, err = sock:send(head(req, target, host_header, body_len, content_type))
    if bytes then bytes, err = send_pieces(sock, pieces) end
    if not bytes then
      sock:close()
      if reused and not write and attempt == 1 then
        resent = "connection closed before the request was written; sent again on a new connection"
      else
        return failure(err == "timeout" and "timeout" or "send_failed", "sending the request failed: " .. err,
          true, resent)
      end
    else
      local status, headers, version = read_head(sock, cx)
      if not status then
        sock:close()
        if headers == "empty_reply" and reused and not write and attempt == 1 then
          resent = "connection closed without an answer; sent again on a new connection"
        else
          local code = headers
          if code == "headers_too_large" then return failure(code, version, true, resent) end
          return failure(code, version, true, resent)
        end
      else
        local data, code, complete = read_body(sock, headers, status, req.method,
          req.max_response_bytes or 67108864, cx)
        if not data then
          sock:close()
          return failure(code, complete or "the answer's body could not be read", true, resent)
        end
        local conn = single(headers.connection)
        local idle = write and (req.write_max_idle or 2) or 60
        if complete and idle > 0 and version == "1.1" and not (conn and conn:lower():find("close", 1, true)) then
          sock:setkeepalive(ms(idle))
        else
          sock:close()
        end
        return status, headers, data, nil, resent
      end
    end
  end
end

return M
