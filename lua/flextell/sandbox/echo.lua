-- ANY /api/_echo/...: answers with the request exactly as received, so client specs can check
-- URL encoding, headers and JSON text byte for byte.
local json = require "flextell.sandbox.json"
local http = require "flextell.sandbox.http"

local M = {}

function M.handle(ctx)
  local query = {}
  for k, v in pairs(ctx.query) do
    query[k] = type(v) == "table" and json.array(v) or v
  end
  local headers = {}
  for k, v in pairs(ctx.headers) do
    headers[k] = type(v) == "table" and json.array(v) or v
  end
  local data = {
    method = ctx.method,
    uri = ctx.uri,
    path = ctx.path,
    query = query,
    headers = headers,
    body = ctx.body,
  }
  if ctx.body ~= "" then
    local v = json.decode(ctx.body)
    if v ~= nil then data.json = v end
  end
  return http.json(200, { data = data })
end

return M
