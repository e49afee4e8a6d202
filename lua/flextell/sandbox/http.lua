-- Request parsing and JSON responses shared by every handler.
local json = require "flextell.sandbox.json"

local M = {}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local f = io.open(file, "rb")
  if not f then return "" end
  body = f:read("*a")
  f:close()
  return body
end

-- Routing works on the raw request URI split at "/" and decoded per segment, so an id sent
-- as "a%2Fb" stays one segment (ngx.var.uri would already have decoded and merged it).
function M.context()
  local uri = ngx.var.request_uri
  local raw_path, raw_query = uri:match("^([^?]*)%??(.*)$")
  local segments = {}
  for seg in raw_path:gmatch("[^/]+") do segments[#segments + 1] = unescape(seg) end
  local headers = ngx.req.get_headers(0)
  return {
    method = ngx.req.get_method(),
    uri = uri,
    path = raw_path,
    raw_query = raw_query,
    segments = segments,
    query = ngx.req.get_uri_args(0),
    headers = headers,
    body = read_body(),
    scheme = ngx.var.scheme,
    host = ngx.var.http_host or (ngx.var.server_addr .. ":" .. ngx.var.server_port),
  }
end

-- Headers every response of this request carries (request id, rate limits).
function M.add_header(name, value)
  local extra = ngx.ctx.headers
  if not extra then
    extra = {}
    ngx.ctx.headers = extra
  end
  extra[name] = value
end

local function apply_headers(headers)
  if ngx.ctx.headers then
    for k, v in pairs(ngx.ctx.headers) do ngx.header[k] = v end
  end
  if headers then
    for k, v in pairs(headers) do ngx.header[k] = v end
  end
end

-- While a fault runs the real handler to cut its answer short (stall, reset, truncated),
-- ngx.ctx.capture collects the first response instead of sending it.
local function capture(cap, status, body, content_type, headers)
  if cap.status then return end
  local all = {}
  for k, v in pairs(ngx.ctx.headers or {}) do all[k] = v end
  for k, v in pairs(headers or {}) do all[k] = v end
  cap.status, cap.body, cap.content_type, cap.headers = status, body or "", content_type, all
end

function M.raw(status, body, content_type, headers)
  if ngx.ctx.capture then return capture(ngx.ctx.capture, status, body, content_type, headers) end
  ngx.status = status
  apply_headers(headers)
  if ngx.ctx.log_entry then ngx.ctx.log_entry.status = status end
  if status == 204 or status == 304 or body == nil then
    return ngx.exit(status == 204 and 204 or ngx.HTTP_OK)
  end
  if content_type then ngx.header["Content-Type"] = content_type end
  ngx.header["Content-Length"] = #body
  ngx.print(body)
  return ngx.exit(ngx.HTTP_OK)
end

-- Status and headers only, for answers that write their body themselves (faults). A
-- content_type of "" sends none; length sets Content-Length.
function M.begin(status, content_type, headers, length)
  ngx.status = status
  apply_headers(headers)
  if ngx.ctx.log_entry then ngx.ctx.log_entry.status = status end
  if content_type then ngx.header["Content-Type"] = content_type end
  if length then ngx.header["Content-Length"] = length end
end

function M.json(status, value, headers)
  local body = assert(json.encode(value))
  return M.raw(status, body, "application/json", headers)
end

function M.no_content()
  return M.raw(204, nil, nil)
end

function M.error(status, code, message, extra, headers)
  local body = { error = code, message = message }
  if extra then
    for k, v in pairs(extra) do body[k] = v end
  end
  return M.json(status, body, headers)
end

-- Decodes the request body as a JSON object: value, or nil after answering 400.
function M.json_object(ctx, allow_empty)
  local body = ctx.body
  if body == "" and allow_empty ~= false then return {} end
  local v = json.decode(body)
  if type(v) ~= "table" or json.is_array(v) then
    M.error(400, "invalid_request", "The request body must be a JSON object.")
    return nil
  end
  return v
end

return M
