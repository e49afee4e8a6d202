-- Scripted faults (issue 4). POST /_sandbox/faults arms one: it answers the next `count` calls
-- whose path (exact) or match (Lua pattern) and method fit, in place of or around the real
-- handler. Faults armed on the same calls are used in the order they were armed.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"
local state = require "flextell.sandbox.state"
local store = require "flextell.sandbox.store"
local collection = require "flextell.sandbox.collection"
local resources = require "flextell.sandbox.resources"

local array, null, copy = json.array, json.null, json.copy
local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor, min, max = math.floor, math.min, math.max
local format, rep = string.format, string.rep

local M = {}

local armed = {}
local next_id = 0

function M.reset()
  armed = {}
  next_id = 0
end

-- parameter checks ---------------------------------------------------------------------------

local function integer(lo, hi)
  return function(v)
    return type(v) == "number" and v == floor(v) and v >= lo and v <= hi, format("an integer from %d to %d", lo, hi)
  end
end

local function number(lo, hi)
  return function(v)
    return type(v) == "number" and v >= lo and v <= hi, format("a number from %g to %g", lo, hi)
  end
end

local function string_(v) return type(v) == "string", "a string" end
local function boolean(v) return type(v) == "boolean", "true or false" end

-- Header values go out verbatim, garbage included, but never with CR, LF or NUL.
local function header_value(v)
  if type(v) == "number" then return v >= 0, "a string, or a number >= 0" end
  return type(v) == "string" and not v:find("[%z\r\n]"), "a string (or number) without CR, LF or NUL"
end

local function header_table(v)
  if type(v) ~= "table" or json.is_array(v) then return false, "an object of header names to values" end
  for k, x in pairs(v) do
    if type(k) ~= "string" or not k:match("^[!#$%%&'*+%-.^_`|~%w]+$") or not header_value(x) then
      return false, "an object of header names to values (no CR, LF or NUL)"
    end
  end
  return true
end

local function redirect_status(v)
  return v == 301 or v == 302 or v == 303 or v == 307 or v == 308, "one of 301, 302, 303, 307, 308"
end

local CHECKS = {
  status = integer(200, 599), error = string_, message = string_, body = string_,
  content_type = string_, retry_after = header_value, headers = header_table,
  seconds = number(0, 3600), bytes = integer(0, 2 ^ 40), content_length = boolean, null = boolean,
  location = string_, raw = string_, single = boolean,
}

-- kinds: the parameters each accepts (besides path, match, method, count) ------------------------

local ANSWER = { "status", "body", "content_type", "headers", "retry_after" }

local function with(list, ...)
  local out = {}
  for _, v in ipairs(list) do out[#out + 1] = v end
  for _, v in ipairs({ ... }) do out[#out + 1] = v end
  return out
end

local KINDS = {
  status = { params = with(ANSWER, "error", "message"), required = "status" },
  delay = { params = { "seconds" } },
  stall = { params = with(ANSWER, "seconds", "bytes") },
  reset = { params = with(ANSWER, "bytes") },
  truncated = { params = with(ANSWER, "bytes") },
  malformed = { params = ANSWER },
  html = { params = ANSWER },
  empty = { params = { "status", "headers", "retry_after" } },
  huge = { params = { "status", "headers", "bytes", "content_length" } },
  no_cursor = { params = { "headers", "null" } },
  repeat_cursor = { params = { "headers" } },
  redirect = { params = { "status", "headers", "location" } },
  headers_huge = { params = { "status", "headers", "bytes", "body", "content_type", "single" } },
  hangup = { params = {} },
  garbage = { params = { "raw" } },
}

local KIND_NAMES = {}
for k in pairs(KINDS) do KIND_NAMES[#KIND_NAMES + 1] = k end
table.sort(KIND_NAMES)

-- Validates a fault description; returns the armed record or nil, message.
function M.arm(body)
  local kind = body.fault
  if type(kind) ~= "string" or not KINDS[kind] then
    return nil, "fault must be one of: " .. table.concat(KIND_NAMES, ", ") .. "."
  end
  local spec = KINDS[kind]
  local allowed = { fault = true, path = true, match = true, method = true, count = true }
  for _, p in ipairs(spec.params) do allowed[p] = true end
  for k in pairs(body) do
    if not allowed[k] then return nil, format("Unknown parameter %s for the %s fault.", tostring(k), kind) end
  end
  if (body.path == nil) == (body.match == nil) then
    return nil, "Give exactly one of path (an exact path) and match (a Lua pattern)."
  end
  if body.path ~= nil and (type(body.path) ~= "string" or body.path:sub(1, 1) ~= "/") then
    return nil, "path must be a string that starts with /."
  end
  if body.match ~= nil then
    if type(body.match) ~= "string" or not pcall(string.find, "", body.match) then
      return nil, "match must be a valid Lua pattern."
    end
  end
  if body.method ~= nil and (type(body.method) ~= "string" or not body.method:match("^%a+$")) then
    return nil, "method must be an HTTP method name."
  end
  local count = body.count
  if count == nil then count = 1 end
  if not integer(1, 2 ^ 31)(count) then return nil, "count must be an integer >= 1." end
  for _, p in ipairs(spec.params) do
    local v = body[p]
    if v ~= nil then
      local ok, what = CHECKS[p](v)
      if not ok then return nil, format("%s must be %s.", p, what) end
    end
  end
  if spec.required and body[spec.required] == nil then
    return nil, format("The %s fault needs %s.", kind, spec.required)
  end
  if kind == "status" and body.body ~= nil and (body.error ~= nil or body.message ~= nil) then
    return nil, "Give either body or error and message, not both."
  end
  if kind == "redirect" and body.status ~= nil and not redirect_status(body.status) then
    return nil, "status must be one of 301, 302, 303, 307, 308."
  end
  next_id = next_id + 1
  local f = copy(body)
  f.id = next_id
  f.count = count
  f.remaining = count
  if f.method then f.method = f.method:upper() end
  armed[#armed + 1] = f
  return copy(f)
end

function M.list()
  local out = array()
  for _, f in ipairs(armed) do out[#out + 1] = copy(f) end
  return out
end

-- answers ----------------------------------------------------------------------------------

local function header_string(v)
  if type(v) == "number" then return v == floor(v) and format("%d", v) or tostring(v) end
  return v
end

local function extra_headers(p)
  local h = {}
  for k, v in pairs(p.headers or {}) do h[k] = header_string(v) end
  if p.retry_after ~= nil then h["Retry-After"] = header_string(p.retry_after) end
  return h
end

local REASON = {
  [400] = "invalid_request", [401] = "invalid_token", [403] = "forbidden", [404] = "not_found",
  [409] = "conflict", [422] = "validation_error", [429] = "rate_limit_exceeded", [500] = "server_error",
  [502] = "bad_gateway", [503] = "service_unavailable", [504] = "gateway_timeout",
}

local PHRASE = { [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Temporarily Unavailable", [504] = "Gateway Time-out" }

-- nginx's own error page, as a proxy in front of the API would send it.
local HTML = [[<html>
<head><title>%d %s</title></head>
<body>
<center><h1>%d %s</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

local function status_fault(ctx, p)
  local status = p.status
  local headers = extra_headers(p)
  if p.body then
    return http.raw(status, p.body, p.content_type or "application/json", headers)
  end
  if status == 204 or status == 304 then return http.raw(status, nil, nil, headers) end
  if status < 400 and not p.error and not p.message then
    return http.raw(status, "{}", p.content_type or "application/json", headers)
  end
  local code = p.error or REASON[status] or (status >= 500 and "server_error" or "error")
  local message = p.message or format("Injected fault: HTTP %d for %s %s.", status, ctx.method, ctx.path)
  local body = assert(json.encode({ error = code, message = message }))
  return http.raw(status, body, p.content_type or "application/json", headers)
end

-- The real handler's answer (its side effects happen), or the fault's own body.
local function response(p, real)
  if p.body then
    return { status = p.status or 200, body = p.body, content_type = p.content_type or "application/json",
      headers = extra_headers(p) }
  end
  local cap = {}
  ngx.ctx.capture = cap
  local ok, err = pcall(real)
  ngx.ctx.capture = nil
  if not ok then error(err, 0) end
  if not cap.status then
    cap.status, cap.body, cap.headers = 500, '{"error":"server_error","message":"No response."}', {}
    cap.content_type = "application/json"
  end
  for k, v in pairs(extra_headers(p)) do cap.headers[k] = v end
  if p.status then cap.status = p.status end
  if p.content_type then cap.content_type = p.content_type end
  return cap
end

-- How much of the body goes out before the fault strikes: `bytes` (default half), always short
-- of the whole body when there is one.
local function cut(p, body)
  local n = p.bytes or floor(#body / 2)
  return min(n, max(#body - 1, 0))
end

local function send_part(p, real, declared)
  local r = response(p, real)
  local n = cut(p, r.body)
  http.begin(r.status, r.content_type or "", r.headers, declared and declared(r.body, n) or #r.body)
  if n > 0 then ngx.print(r.body:sub(1, n)) end
  ngx.flush(true)
  return r, n
end

local function stall(_, p, real)
  local r, n = send_part(p, real)
  ngx.sleep(p.seconds or 30)
  if n < #r.body then ngx.print(r.body:sub(n + 1)) end
  return ngx.exit(ngx.HTTP_OK)
end

local function reset(_, p, real)
  send_part(p, real)
  -- let the client read what was sent, then abort: with reset_timedout_connection on, nginx
  -- closes a 444 with SO_LINGER 0, which sends RST instead of FIN
  ngx.sleep(0.02)
  return ngx.exit(444)
end

local function truncated(_, p, real)
  send_part(p, real, function(body, n) return max(#body, n + 1) end)
  return ngx.exit(ngx.ERROR)
end

local function simple(status, body, content_type)
  return function(_, p)
    return http.raw(p.status or status, p.body or body, p.content_type or content_type, extra_headers(p))
  end
end

local function empty(_, p)
  http.begin(p.status or 200, "", extra_headers(p), 0)
  return ngx.exit(ngx.HTTP_OK)
end

local HUGE_DEFAULT = 200 * 1024 * 1024
local ITEM = '{"id":"huge","name":"A body larger than any sane cap","padding":"' .. rep("x", 64) .. '"},'
local HUGE_HEAD = '{"data":['
local HUGE_TAIL_MIN = '{"id":"last","padding":""}]}'
local CHUNK = rep(ITEM, floor(65536 / #ITEM))

-- Valid JSON of exactly `bytes` bytes (at least the fixed frame), built on the fly chunk by
-- chunk; stops as soon as a write fails (the client went away). The log entry tells how far
-- it got: bytes_sent, and aborted = true when the client left first.
local function huge(_, p)
  local total = max(p.bytes or HUGE_DEFAULT, #HUGE_HEAD + #HUGE_TAIL_MIN)
  local items = floor((total - #HUGE_HEAD - #HUGE_TAIL_MIN) / #ITEM)
  local pad = total - #HUGE_HEAD - #HUGE_TAIL_MIN - items * #ITEM
  local tail = '{"id":"last","padding":"' .. rep("x", pad) .. '"}]}'
  http.begin(p.status or 200, "application/json", extra_headers(p), p.content_length and total or nil)
  local entry = ngx.ctx.log_entry or {}
  entry.bytes_sent = 0
  local function send(s)
    if not ngx.print(s) or not ngx.flush(true) then
      entry.aborted = true
      return false
    end
    entry.bytes_sent = entry.bytes_sent + #s
    return true
  end
  local per_chunk = #CHUNK / #ITEM
  if not send(HUGE_HEAD) then return ngx.exit(ngx.ERROR) end
  while items > 0 do
    local n = min(items, per_chunk)
    if not send(n == per_chunk and CHUNK or rep(ITEM, n)) then return ngx.exit(ngx.ERROR) end
    items = items - n
  end
  if not send(tail) then return ngx.exit(ngx.ERROR) end
  return ngx.exit(ngx.HTTP_OK)
end

-- cursor-style pages with real items -----------------------------------------------------------

local function tenant_of(ctx)
  local t = tonumber(type(ctx.headers["x-tenant"]) == "string" and ctx.headers["x-tenant"] or nil)
  return t or 1
end

-- Records for the path: /api/v1/<name> when that is a resource, else /api/resources.
local function page_items(ctx)
  local name = "resources"
  if ctx.segments[2] == "v1" and resources.defs[ctx.segments[3] or ""] then name = ctx.segments[3] end
  local rows = {}
  for _, rec in ipairs(store.collection(tenant_of(ctx), name).list) do
    if rec.deleted_at == nil or rec.deleted_at == null then rows[#rows + 1] = rec end
  end
  local limit = tonumber(resources.query_value(ctx.query, "limit")) or 20
  limit = min(max(floor(limit), 1), 100)
  local cursor = resources.query_value(ctx.query, "cursor")
  if type(cursor) ~= "string" then cursor = nil end
  local offset = cursor and collection.decode_cursor(cursor) or 0
  local data = array()
  for i = offset + 1, min(#rows, offset + limit) do data[#data + 1] = copy(rows[i]) end
  return data, { has_more = true, total = #rows }, cursor, offset + limit
end

local function no_cursor(ctx, p)
  local data, meta = page_items(ctx)
  if p.null then meta.cursor = null end
  return http.raw(200, assert(json.encode({ data = data, meta = meta })), "application/json", extra_headers(p))
end

local function repeat_cursor(ctx, p)
  local data, meta, cursor, next_offset = page_items(ctx)
  meta.cursor = cursor or collection.encode_cursor(next_offset)
  return http.raw(200, assert(json.encode({ data = data, meta = meta })), "application/json", extra_headers(p))
end

local function redirect(ctx, p)
  local location = p.location
  if not location then
    location = format("http://127.0.0.1:%d%s", state.config.redirect_port or 9, ctx.uri)
  end
  local headers = extra_headers(p)
  headers.Location = location
  local body = assert(json.encode({ error = "moved", message = "Moved to " .. location .. "." }))
  return http.raw(p.status or 302, body, "application/json", headers)
end

-- Either many 1000-byte lines adding up to more than `bytes`, or (single) one line whose value
-- alone is `bytes` long: clients cap the two differently.
local function headers_huge(_, p)
  local headers = extra_headers(p)
  local total = p.bytes or 128 * 1024
  if p.single then
    headers["X-Filler"] = rep("h", total)
  else
    local value = rep("h", 1000)
    for i = 1, floor(total / 1000) + 1 do
      headers[format("X-Filler-%04d", i)] = value
    end
  end
  return http.raw(p.status or 200, p.body or '{"data":[]}', p.content_type or "application/json", headers)
end

-- The request (body included: http.context read it) is consumed, then the connection is closed
-- without a byte. Not with 444: reset_timedout_connection turns that into an RST, and the point
-- here is the clean FIN a server (or a middlebox) sends when it drops an idle kept-alive
-- connection just as a request arrives on it.
local function hangup()
  return ngx.exit(ngx.ERROR)
end

-- Bytes that are not an HTTP/1.1 response, written to the raw connection so nginx adds no status
-- line or headers of its own; then a clean close, which is where an HTTP/0.9 body ends. The raw
-- socket is only handed out once the body has been read, as http.context has done.
local GARBAGE_DEFAULT = '{"data":[]}'

local function garbage(_, p)
  local sock, err = ngx.req.socket(true)
  if not sock then error("garbage fault: no raw socket: " .. tostring(err), 0) end
  local entry = ngx.ctx.log_entry or {}
  local raw = p.raw or GARBAGE_DEFAULT
  entry.bytes_sent = 0
  if raw ~= "" then
    local sent = sock:send(raw)
    entry.bytes_sent = sent or 0
  end
  return ngx.exit(ngx.ERROR)
end

local RUN = {
  status = status_fault,
  delay = function(_, p)
    ngx.sleep(p.seconds or 1)
    return false
  end,
  stall = stall,
  reset = reset,
  truncated = truncated,
  malformed = simple(200, '{"data": [1, 2', "application/json"),
  html = function(ctx, p)
    local status = p.status or 502
    local phrase = PHRASE[status] or "Error"
    return simple(502, format(HTML, status, phrase, status, phrase), "text/html")(ctx, p)
  end,
  empty = empty,
  huge = huge,
  no_cursor = no_cursor,
  repeat_cursor = repeat_cursor,
  redirect = redirect,
  headers_huge = headers_huge,
  hangup = hangup,
  garbage = garbage,
}

local function matches(f, ctx)
  if f.method and f.method ~= ctx.method then return false end
  if f.path then return f.path == ctx.path end
  return ctx.path:find(f.match) ~= nil
end

-- Called for every logged /api and /oauth request. Returns true when the fault answered;
-- false to let the real handler answer (no fault, or a delay that has elapsed).
function M.apply(ctx, real)
  for i, f in ipairs(armed) do
    if matches(f, ctx) then
      f.remaining = f.remaining - 1
      if f.remaining <= 0 then table.remove(armed, i) end
      local entry = ngx.ctx.log_entry
      if entry then
        entry.fault, entry.fault_id = f.fault, f.id
      end
      return RUN[f.fault](ctx, f, real) ~= false
    end
  end
  return false
end

return M
