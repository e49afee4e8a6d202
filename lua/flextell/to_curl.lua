--- client:to_curl(request): the same request as a curl command line, to replay by hand.
-- The bearer token shows as <redacted> unless the request says reveal_token = true.

local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type
local concat, sort = table.concat, table.sort

local M = {}

local function quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end

function M.install(methods)
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
    local out = { "curl" }
    local method = prepared.method
    if method ~= "GET" and not (method == "POST" and (prepared.body or multipart)) then
      out[#out + 1] = "-X " .. method
    end
    out[#out + 1] = quote(prepared.url)
    for _, h in ipairs(prepared.headers) do out[#out + 1] = "-H " .. quote(h) end
    if prepared.body then out[#out + 1] = "--data-binary " .. quote(prepared.body) end
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
