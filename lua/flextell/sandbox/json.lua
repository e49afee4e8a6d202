-- JSON for the sandbox server. Debian's lua-cjson 2.1.0 cannot tell `[]` from `{}` and prints
-- 14 significant digits, so the server carries its own small codec: decoded arrays keep a marker
-- metatable (an empty array written back stays `[]`) and integral numbers print without exponent.
local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local concat, sort = table.concat, table.sort
local byte, char, find, format, sub, gsub = string.byte, string.char, string.find, string.format,
  string.sub, string.gsub
local floor, huge = math.floor, math.huge

local M = {}

local array_mt = { __name = "flextell.sandbox.json.array" }
M.array_mt = array_mt

-- JSON null: ngx.null inside nginx so handlers can compare against the usual value.
M.null = (rawget(_G, "ngx") and ngx.null) or setmetatable({}, { __tostring = function() return "null" end })

function M.array(t)
  return setmetatable(t or {}, array_mt)
end

function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == array_mt
end

-- encoding -------------------------------------------------------------------------------

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return escapes[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  return '"' .. gsub(s, '[%z\1-\31"\\\127]', escape_char) .. '"'
end

local function encode_number(n)
  if n ~= n or n == huge or n == -huge then
    error("cannot encode a non-finite number", 0)
  end
  if floor(n) == n and n > -1e21 and n < 1e21 then
    return format("%.0f", n)
  end
  return format("%.17g", n)
end

local encode_value

local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

encode_value = function(v, out)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif v == nil or v == M.null then
    out[#out + 1] = "null"
  elseif tv == "table" then
    if getmetatable(v) == array_mt or is_sequence(v) then
      out[#out + 1] = "["
      for i, item in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        encode_value(item, out)
      end
      out[#out + 1] = "]"
    else
      -- sorted keys: the same record always prints the same way (diffs, logs, specs)
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("cannot encode a non-string key", 0) end
        keys[#keys + 1] = k
      end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = encode_string(k)
        out[#out + 1] = ":"
        encode_value(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    error("cannot encode a " .. tv, 0)
  end
end

function M.encode(v)
  local out = {}
  local ok, err = pcall(encode_value, v, out)
  if not ok then return nil, err end
  return concat(out)
end

-- decoding -------------------------------------------------------------------------------

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local function fail(pos, what)
  error({ pos = pos, msg = what }, 0)
end

local function skip_ws(s, pos)
  return (find(s, "[^ \t\r\n]", pos)) or #s + 1
end

local decode_value

local unescapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r",
  t = "\t" }

local function decode_string(s, pos)
  -- pos is just after the opening quote
  local parts, start = {}, pos
  while true do
    local q = find(s, '["\\%z\1-\31]', pos)
    if not q then fail(start, "unterminated string") end
    local c = sub(s, q, q)
    if c == '"' then
      parts[#parts + 1] = sub(s, pos, q - 1)
      return concat(parts), q + 1
    elseif c ~= "\\" then
      fail(q, "control character in string")
    end
    parts[#parts + 1] = sub(s, pos, q - 1)
    local e = sub(s, q + 1, q + 1)
    if e == "u" then
      local hex = sub(s, q + 2, q + 5)
      if not find(hex, "^%x%x%x%x$") then fail(q, "bad \\u escape") end
      local cp, nextpos = tonumber(hex, 16), q + 6
      if cp >= 0xD800 and cp <= 0xDBFF then
        local lo = find(s, "^\\u[dD][c-fC-F]%x%x", nextpos) and tonumber(sub(s, nextpos + 2, nextpos + 5), 16)
        if not lo then fail(q, "lone surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
        nextpos = nextpos + 6
      elseif cp >= 0xDC00 and cp <= 0xDFFF then
        fail(q, "lone surrogate")
      end
      parts[#parts + 1] = utf8_char(cp)
      pos = nextpos
    else
      if not unescapes[e] then fail(q, "bad escape") end
      parts[#parts + 1] = unescapes[e]
      pos = q + 2
    end
  end
end

local function decode_number(s, pos)
  local _, last = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  local text = last and sub(s, pos, last)
  if not text or not (find(text, "^-?0$") or find(text, "^-?[1-9]%d*$") or
      find(text, "^-?0%.%d+$") or find(text, "^-?[1-9]%d*%.%d+$") or
      find(text, "^-?0[eE][-+]?%d+$") or find(text, "^-?[1-9]%d*[eE][-+]?%d+$") or
      find(text, "^-?0%.%d+[eE][-+]?%d+$") or find(text, "^-?[1-9]%d*%.%d+[eE][-+]?%d+$")) then
    fail(pos, "bad number")
  end
  return tonumber(text), last + 1
end

decode_value = function(s, pos, depth)
  if depth > 200 then fail(pos, "nesting too deep") end
  pos = skip_ws(s, pos)
  local c = sub(s, pos, pos)
  if c == "{" then
    local obj = {}
    pos = skip_ws(s, pos + 1)
    if sub(s, pos, pos) == "}" then return obj, pos + 1 end
    while true do
      if sub(s, pos, pos) ~= '"' then fail(pos, "expected a string key") end
      local key
      key, pos = decode_string(s, pos + 1)
      pos = skip_ws(s, pos)
      if sub(s, pos, pos) ~= ":" then fail(pos, "expected ':'") end
      local val
      val, pos = decode_value(s, pos + 1, depth + 1)
      obj[key] = val
      pos = skip_ws(s, pos)
      local d = sub(s, pos, pos)
      if d == "}" then return obj, pos + 1 end
      if d ~= "," then fail(pos, "expected ',' or '}'") end
      pos = skip_ws(s, pos + 1)
    end
  elseif c == "[" then
    local arr, n = setmetatable({}, array_mt), 0
    pos = skip_ws(s, pos + 1)
    if sub(s, pos, pos) == "]" then return arr, pos + 1 end
    while true do
      local val
      val, pos = decode_value(s, pos, depth + 1)
      n = n + 1
      arr[n] = val
      pos = skip_ws(s, pos)
      local d = sub(s, pos, pos)
      if d == "]" then return arr, pos + 1 end
      if d ~= "," then fail(pos, "expected ',' or ']'") end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(s, pos + 1)
  elseif c == "-" or find(c, "^%d$") then
    return decode_number(s, pos)
  elseif sub(s, pos, pos + 3) == "true" then
    return true, pos + 4
  elseif sub(s, pos, pos + 4) == "false" then
    return false, pos + 5
  elseif sub(s, pos, pos + 3) == "null" then
    return M.null, pos + 4
  end
  fail(pos, c == "" and "unexpected end of input" or "unexpected character")
end

-- Returns value or nil, "message at byte N".
function M.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" then return nil, format("%s at byte %d", v.msg, v.pos) end
    return nil, tostring(v)
  end
  pos = skip_ws(s, pos)
  if pos <= #s then return nil, format("trailing data at byte %d", pos) end
  return v
end

-- Deep copy that keeps array markers (records handed out must not alias the store).
local function copy(v)
  if type(v) ~= "table" or v == M.null then return v end
  local t = {}
  for k, x in next, v do t[k] = copy(x) end
  return setmetatable(t, getmetatable(v))
end
M.copy = copy

return M
