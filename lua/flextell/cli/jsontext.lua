--- JSON text as a server sent it, for the `flextell` command: find values by byte span and print
-- them compact, indented or coloured, keeping key order, nulls, escapes and number spellings.

local byte, find, sub, rep, char = string.byte, string.find, string.sub, string.rep, string.char
local concat, floor, tonumber, type, error = table.concat, math.floor, tonumber, type, error
local format, setmetatable = string.format, setmetatable

local M = {}

local WS = "[^ \t\r\n]" -- the first byte that is not JSON whitespace
-- Where a string's plain run ends: its closing quote, an escape, or a raw control byte
-- (%z, not \0, because Lua 5.1 and LuaJIT patterns stop at a NUL).
local STR_SPECIAL = '[%z\1-\31"\\]'

local OBJ, ARR, CLOSE_OBJ, CLOSE_ARR = 123, 91, 125, 93
local QUOTE, BACKSLASH, COMMA, COLON, MINUS = 34, 92, 44, 58, 45

local SIMPLE_ESC = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n",
  [114] = "\r", [116] = "\t" }
local LITERALS = { [116] = "true", [102] = "false", [110] = "null" }

local KINDS = { [OBJ] = "object", [ARR] = "array", [QUOTE] = "string", [MINUS] = "number",
  [116] = "true", [102] = "false", [110] = "null" }
for d = 48, 57 do KINDS[d] = "number" end

-- jq's default colours
local RESET = "\27[0m"
local C_KEY, C_STR, C_NUM, C_BOOL, C_NULL, C_PUNCT =
  "\27[34;1m", "\27[0;32m", "\27[0;39m", "\27[0;39m", "\27[1;30m", "\27[1;39m"

local PLAIN = { [OBJ] = "{", [CLOSE_OBJ] = "}", [ARR] = "[", [CLOSE_ARR] = "]", [COMMA] = ",",
  [COLON] = ":" }
local COLORED = {}
for b, s in pairs(PLAIN) do COLORED[b] = C_PUNCT .. s .. RESET end

local function fail(pos, what)
  return format("malformed JSON: %s at byte %d", what, pos)
end

local function shown(text, p)
  local b = byte(text, p)
  if b >= 32 and b < 127 then return "'" .. char(b) .. "'" end
  return format("byte 0x%02X", b)
end

local function unterminated(text, open)
  return fail(open, byte(text, open) == OBJ and "unterminated object" or "unterminated array")
end

-- Past the end of the text when there is nothing but whitespace from p on.
local function skip_ws(text, p)
  return find(text, WS, p) or #text + 1
end

-- Checks the optional start/stop arguments; clamps them to the text so find never gets a
-- negative start (which would count from the end).
local function span_args(text, start, stop)
  if type(text) ~= "string" then return nil, "expected JSON text as a string, got " .. type(text) end
  start, stop = start or 1, stop or #text
  if type(start) ~= "number" or type(stop) ~= "number" or start % 1 ~= 0 or stop % 1 ~= 0 then
    return nil, "span bounds must be integers"
  end
  if start < 1 then start = 1 end
  if stop > #text then stop = #text end
  return start, stop
end

-- The closing quote of the string opening at p. Plain runs are skipped with find; only
-- escapes are looked at one by one.
local function string_end(text, p, limit)
  local q = p + 1
  while true do
    local i = find(text, STR_SPECIAL, q)
    if not i or i > limit then return nil, fail(p, "unterminated string") end
    local c = byte(text, i)
    if c == QUOTE then return i end
    if c ~= BACKSLASH then return nil, fail(i, "control character in string") end
    if i + 1 > limit then return nil, fail(p, "unterminated string") end
    local e = byte(text, i + 1)
    if e == 117 then -- \uXXXX
      if i + 5 > limit or not find(text, "^%x%x%x%x", i + 2) then return nil, fail(i, "bad \\u escape") end
      q = i + 6
    elseif SIMPLE_ESC[e] then
      q = i + 2
    else
      return nil, fail(i, "bad escape")
    end
  end
end

-- The last byte of the number at p: -?(0|[1-9]digits)(.digits)?([eE][+-]?digits)?
local function number_end(text, p, limit)
  local q = p
  if byte(text, q) == MINUS then q = q + 1 end
  local c = byte(text, q)
  if c == 48 then
    q = q + 1
  elseif c and c >= 49 and c <= 57 then
    local _, e = find(text, "^%d*", q + 1)
    q = e + 1
  else
    return nil, fail(p, "bad number")
  end
  local _, e = find(text, "^%.%d+", q)
  if e then q = e + 1 end
  _, e = find(text, "^[eE][+-]?%d+", q)
  if e then q = e + 1 end
  if q - 1 > limit then return nil, fail(p, "number runs past the end of the span") end
  return q - 1
end

-- Scalar at p (first byte c): its last byte and its colour.
local function scalar_end(text, p, limit, c)
  if c == QUOTE then
    local e, err = string_end(text, p, limit)
    return e, err or C_STR
  elseif c == MINUS or (c >= 48 and c <= 57) then
    local e, err = number_end(text, p, limit)
    return e, err or C_NUM
  end
  local word = LITERALS[c]
  if not word then return nil, fail(p, "unexpected " .. shown(text, p)) end
  local e = p + #word - 1
  if e > limit or sub(text, p, e) ~= word then return nil, fail(p, "bad literal") end
  return e, c == 110 and C_NULL or C_BOOL
end

-- States of the walk: just after an opener (the container may be empty), expecting a value,
-- a key, a colon, or a comma/closer after a member.
local S_OPEN, S_VALUE, S_KEY, S_COLON, S_AFTER = 1, 2, 3, 4, 5

-- Walks the one value at or after pos (not past limit) and returns its last byte. The nesting
-- is kept in a table rather than by recursion, so deep input cannot overflow the C stack.
-- With f (from M.format) the tokens are also appended to f.out.
local function walk(text, pos, limit, f)
  local out, punct, colon, nls, color = nil, nil, nil, nil, false
  if f then out, punct, colon, nls, color = f.out, f.punct, f.colon, f.nls, f.color end
  local n = 0
  local stack, depth, state, p = {}, 0, S_VALUE, pos
  while true do
    p = find(text, WS, p)
    if not p or p > limit then
      if depth == 0 then return nil, fail(pos, "no JSON value") end
      return nil, unterminated(text, stack[depth])
    end
    local c = byte(text, p)
    local done = false -- a value (scalar or whole container) ended at p - 1
    if state == S_OPEN and c == byte(text, stack[depth]) + 2 then -- '{'+2 is '}', '['+2 is ']'
      depth = depth - 1
      if out then n = n + 1; out[n] = punct[c] end
      p, done = p + 1, true
    elseif state == S_AFTER then
      local opener = byte(text, stack[depth])
      if c == COMMA then
        if out then
          n = n + 1; out[n] = punct[COMMA]
          if nls then n = n + 1; out[n] = nls[depth] end
        end
        state = opener == OBJ and S_KEY or S_VALUE
      elseif c == opener + 2 then
        depth = depth - 1
        if out then
          if nls then n = n + 1; out[n] = nls[depth] end
          n = n + 1; out[n] = punct[c]
        end
        done = true
      else
        return nil, fail(p, (opener == OBJ and "expected ',' or '}', found " or "expected ',' or ']', found ")
          .. shown(text, p))
      end
      p = p + 1
    elseif state == S_COLON then
      if c ~= COLON then return nil, fail(p, "expected ':', found " .. shown(text, p)) end
      if out then n = n + 1; out[n] = colon end
      state, p = S_VALUE, p + 1
    else
      if state == S_OPEN then -- first member of a non-empty container
        if nls then n = n + 1; out[n] = nls[depth] end
        state = byte(text, stack[depth]) == OBJ and S_KEY or S_VALUE
      end
      if state == S_KEY then
        if c ~= QUOTE then return nil, fail(p, "expected a string key, found " .. shown(text, p)) end
        local e, err = string_end(text, p, limit)
        if not e then return nil, err end
        if out then
          if color then
            out[n + 1], out[n + 2], out[n + 3] = C_KEY, sub(text, p, e), RESET
            n = n + 3
          else
            n = n + 1; out[n] = sub(text, p, e)
          end
        end
        state, p = S_COLON, e + 1
      elseif c == OBJ or c == ARR then
        depth = depth + 1
        stack[depth] = p
        if out then n = n + 1; out[n] = punct[c] end
        state, p = S_OPEN, p + 1
      else
        local e, paint = scalar_end(text, p, limit, c)
        if not e then return nil, paint end
        if out then
          if color then
            out[n + 1], out[n + 2], out[n + 3] = paint, sub(text, p, e), RESET
            n = n + 3
          else
            n = n + 1; out[n] = sub(text, p, e)
          end
        end
        p, done = e + 1, true
      end
    end
    if done then
      if depth == 0 then return p - 1 end
      state = S_AFTER
    end
  end
end

-- The value at or after start that must fill [start, stop] up to whitespace.
local function whole(text, start, stop, f)
  local a, b = span_args(text, start, stop)
  if not a then return nil, b end
  local s = skip_ws(text, a)
  local e, err = walk(text, s, b, f)
  if not e then return nil, err end
  local t = skip_ws(text, e + 1)
  if t <= b then return nil, fail(t, "unexpected data after the value") end
  return s, e
end

-- Spans of the members of the container opening at p: for an array s1, e1, s2, e2, ...; for
-- an object key start, key stop, value start, value stop per member (keys with their quotes).
-- Also returns the closer's position.
local function entries(text, p, limit)
  local is_obj = byte(text, p) == OBJ
  local closer = is_obj and CLOSE_OBJ or CLOSE_ARR
  local list, n, open = {}, 0, p
  p = skip_ws(text, p + 1)
  if p <= limit and byte(text, p) == closer then return list, p end
  while true do
    if p > limit then return nil, unterminated(text, open) end
    if is_obj then
      if byte(text, p) ~= QUOTE then return nil, fail(p, "expected a string key, found " .. shown(text, p)) end
      local e, err = string_end(text, p, limit)
      if not e then return nil, err end
      list[n + 1], list[n + 2] = p, e
      n = n + 2
      p = skip_ws(text, e + 1)
      if p > limit then return nil, unterminated(text, open) end
      if byte(text, p) ~= COLON then return nil, fail(p, "expected ':', found " .. shown(text, p)) end
      p = skip_ws(text, p + 1)
      if p > limit then return nil, unterminated(text, open) end
    end
    local e, err = walk(text, p, limit)
    if not e then return nil, err end
    list[n + 1], list[n + 2] = p, e
    n = n + 2
    p = skip_ws(text, e + 1)
    if p > limit then return nil, unterminated(text, open) end
    local c = byte(text, p)
    if c == closer then return list, p end
    if c ~= COMMA then
      return nil, fail(p, (is_obj and "expected ',' or '}', found " or "expected ',' or ']', found ")
        .. shown(text, p))
    end
    p = skip_ws(text, p + 1)
  end
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40, 0x80 + floor(cp / 0x40) % 0x40,
    0x80 + cp % 0x40)
end

-- The bytes a (valid) string body stands for; one pass, so "\\u0041" stays a backslash and "u0041".
local function unescape(s)
  local parts, n, p = {}, 0, 1
  while true do
    local i = find(s, "\\", p, true)
    if not i then break end
    parts[n + 1] = sub(s, p, i - 1)
    n = n + 1
    local e = byte(s, i + 1)
    if e == 117 then
      local cp = tonumber(sub(s, i + 2, i + 5), 16)
      p = i + 6
      -- a surrogate pair is one code point
      if cp >= 0xD800 and cp <= 0xDBFF and find(s, "^\\u[dD][c-fC-F]%x%x", p) then
        cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(sub(s, p + 2, p + 5), 16) - 0xDC00)
        p = p + 6
      end
      parts[n + 1] = utf8_char(cp)
    else
      parts[n + 1] = SIMPLE_ESC[e]
      p = i + 2
    end
    n = n + 1
  end
  parts[n + 1] = sub(s, p)
  return concat(parts)
end

-- Whether the key string at [ks, ke] (with quotes) means key.
local function key_is(text, ks, ke, key)
  local raw = sub(text, ks + 1, ke - 1)
  if not find(raw, "\\", 1, true) then return raw == key end
  return unescape(raw) == key
end

--- Span of the value that begins at pos (after JSON whitespace), or nil and a message.
function M.value_span(text, pos)
  local a, b = span_args(text, pos)
  if not a then return nil, b end
  local s = skip_ws(text, a)
  local e, err = walk(text, s, b)
  if not e then return nil, err end
  return s, e
end

--- Span of the value of member key in the object at [start, stop] (default: the whole text).
-- The last of duplicate keys wins, as in the project's decoder. nil alone when the value is
-- no object or has no such member; nil and a message when it is malformed.
function M.member(text, key, start, stop)
  if type(key) ~= "string" then error("jsontext.member: key must be a string", 2) end
  local a, b = span_args(text, start, stop)
  if not a then return nil, b end
  local p = skip_ws(text, a)
  if p > b or byte(text, p) ~= OBJ then
    local ok, err = whole(text, a, b) -- still say so when it is not even valid JSON
    if not ok then return nil, err end
    return nil
  end
  local list, close = entries(text, p, b)
  if not list then return nil, close end
  local t = skip_ws(text, close + 1)
  if t <= b then return nil, fail(t, "unexpected data after the value") end
  for i = #list - 3, 1, -4 do -- from the end: the last duplicate wins
    if key_is(text, list[i], list[i + 1], key) then return list[i + 2], list[i + 3] end
  end
  return nil
end

--- Iterator over the spans of the elements of the array at [start, stop]:
-- `for s, e in jsontext.elements(text, a, b) do ... end`. The whole array is checked first, so
-- a loop never starts on bad input: it raises an error when [start, stop] is not a well-formed
-- array (check with M.kind / M.value_span first).
function M.elements(text, start, stop)
  local a, b = span_args(text, start, stop)
  if not a then error("jsontext.elements: " .. b, 2) end
  local p = skip_ws(text, a)
  if p > b or byte(text, p) ~= ARR then
    local found = p <= b and KINDS[byte(text, p)] or (p <= b and shown(text, p)) or "nothing"
    error(format("jsontext.elements: expected an array at byte %d, found %s", p, found), 2)
  end
  local list, close = entries(text, p, b)
  if not list then error("jsontext.elements: " .. close, 2) end
  local t = skip_ws(text, close + 1)
  if t <= b then error("jsontext.elements: " .. fail(t, "unexpected data after the value"), 2) end
  local i = -1
  return function()
    i = i + 2
    return list[i], list[i + 1]
  end
end

--- "object", "array", "string", "number", "true", "false" or "null" from the first byte that
-- is not whitespace at or after start (default 1); nil when there is none or it starts no value.
-- Only that byte is looked at: this does not check the value.
function M.kind(text, start)
  local a, b = span_args(text, start)
  if not a then return nil end
  local p = skip_ws(text, a)
  if p > b then return nil end
  return KINDS[byte(text, p)]
end

local function check_count(name, v)
  if v ~= nil and (type(v) ~= "number" or v < 0 or v % 1 ~= 0) then
    error("jsontext.format: " .. name .. " must be a non-negative integer", 3)
  end
  return v or 0
end

--- The value at [start, stop] (default: the whole text) re-emitted with the text's own strings
-- and numbers; only whitespace outside strings changes. opts.indent: nil/0 compact, n > 0 one
-- member per line indented n spaces a level; opts.level: nesting level the value sits at (the
-- first line is not indented); opts.color: jq's ANSI colours. nil and a message when malformed.
function M.format(text, start, stop, opts)
  opts = opts or {}
  local indent, level = check_count("indent", opts.indent), check_count("level", opts.level)
  local punct = opts.color and COLORED or PLAIN
  local f = { out = {}, punct = punct, colon = punct[COLON], color = opts.color and true or false }
  if indent > 0 then
    f.colon = punct[COLON] .. " "
    -- "\n" and the indent of each depth, made once per depth
    f.nls = setmetatable({}, { __index = function(t, d)
      local s = "\n" .. rep(" ", (level + d) * indent)
      t[d] = s
      return s
    end })
  end
  -- Indented output can grow with the square of the nesting depth: check the text before
  -- building any, so that a run of "[[[[..." fails fast instead of filling memory.
  if indent > 0 then
    local ok, err = whole(text, start, stop)
    if not ok then return nil, err end
  end
  local s, err = whole(text, start, stop, f)
  if not s then return nil, err end
  return concat(f.out)
end

return M
