--- client:to_curl(request): the same request as a curl command line, to replay by hand: the
-- headers libcurl would add by itself are dropped the way curl drops them (-H 'Name:'), and the
-- client's trust store, proxy and HTTP version go along. The bearer token shows as <redacted>
-- unless the request says reveal_token = true, and so do a proxy's credentials.
-- @module flextell

local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type
local concat, sort = table.concat, table.sort

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

--- @type Client

function M.install(methods)
  --- The same request as a `curl` command line that replays it.
  -- The same headers (dropped ones as `-H 'Name:'`), body, trust (`--cacert`, `--capath`), proxy
  -- (`--proxy`, or `--noproxy '*'`), `--http1.1`, `--compressed`, and `--path-as-is` when the path
  -- has `.` or `..` segments. The token and a proxy's credentials are shown as `<redacted>` unless
  -- `reveal_token = true`.
  -- @function Client:to_curl
  -- @tparam table request as for `Client:request`, and `reveal_token`
  -- @treturn[1] string the command line
  -- @return[2] nil, err (a `flextell.Error`), as `Client:prepare`
  function methods:to_curl(req)
    local multipart = req.multipart
    local prepared, err
    if multipart then
      local copy = {}
      for k, v in pairs(req) do if k ~= "multipart" then copy[k] = v end end
      prepared, err = self:prepare(copy)
    else
      prepared, err = self:prepare(req)
    end
    if not prepared then return nil, err end
    local out = { "curl", "--http1.1", "--compressed" }
    local method = prepared.method
    -- a write without a body still goes out with "Content-Length: 0", as libcurl sends it
    local empty_write = (method == "POST" or method == "PUT" or method == "PATCH") and not prepared.body
      and not multipart
    if method ~= "GET" and not (method == "POST" and (prepared.body or multipart or empty_write)) then
      out[#out + 1] = "-X " .. method
    end
    if prepared.ca_file then out[#out + 1] = "--cacert " .. quote(prepared.ca_file) end
    if prepared.ca_path then out[#out + 1] = "--capath " .. quote(prepared.ca_path) end
    if prepared.proxy then
      out[#out + 1] = "--proxy " .. quote(prepared.proxy)
    elseif prepared.no_proxy then
      out[#out + 1] = "--noproxy '*'"
    end
    -- the library sends "." and ".." segments as written; curl would resolve them without this
    local path = prepared.url:match("^%a[%w+.-]*://[^/]*(/[^?#]*)") or ""
    if ("/" .. path .. "/"):find("/%.%.?/") then out[#out + 1] = "--path-as-is" end
    out[#out + 1] = quote(prepared.url)
    for _, h in ipairs(prepared.headers) do
      -- curl's syntax for a header with an empty value is "Name;" ("Name:" drops it)
      local empty = h:match("^([^:]+):%s*$")
      out[#out + 1] = "-H " .. quote(empty and empty .. ";" or h)
    end
    for _, name in ipairs(prepared.dropped) do out[#out + 1] = "-H " .. quote(name .. ":") end
    if prepared.body then
      out[#out + 1] = "--data-binary " .. quote(prepared.body)
    elseif empty_write then
      out[#out + 1] = "--data-binary ''"
    end
    if multipart then
      local names = {}
      for k in pairs(multipart) do names[#names + 1] = k end
      sort(names)
      for _, k in ipairs(names) do
        local v = multipart[k]
        if type(v) == "table" and v.path then
          out[#out + 1] = "-F " .. quote(k .. "=@" .. v.path .. (v.content_type and ";type=" .. v.content_type or ""))
        elseif type(v) == "table" then
          out[#out + 1] = "-F " .. quote(k .. "=" .. tostring(v.data))
        else
          out[#out + 1] = "-F " .. quote(k .. "=" .. tostring(v))
        end
      end
    end
    return concat(out, " ")
  end
end

return M
