-- The JSON codec of flextell.core. Numbers differ between Lua 5.4 (integer subtype, int64) and
-- LuaJIT (doubles only): where they must, tests branch on `jit`; everything else is identical.
local core = require "flextell.core"

local enc, dec = core.json_encode, core.json_decode
local null, array, array_mt = core.null, core.array, core.array_mt
local is_jit = rawget(_G, "jit") ~= nil

local function ntype(v)
  if is_jit then return type(v) end
  return math.type(v) or type(v)
end

-- Both results of a failing call, so a test sees the nil and the exact message together.
local function fails(f, ...)
  return { f(...) }
end

local function decode_error(text)
  return fails(dec, text)
end

-- A non-NULL light userdata, standing in for markers such as cjson.empty_array.
local function light_userdata()
  local up = 1
  return debug.upvalueid(function() return up end, 1)
end

describe("flextell.core json", function()
  describe("module fields", function()
    it("exposes null as the NULL light userdata", function()
      assert.are.equal("userdata", type(null))
      assert.are.equal(null, dec("null"))
    end)

    it("keeps array_mt in the registry under flextell.array with its __name", function()
      assert.are.equal(array_mt, debug.getregistry()["flextell.array"])
      assert.are.equal("flextell.array", array_mt.__name)
      assert.are.equal("array", array_mt.__jsontype)
    end)

    it("array(t) marks t and returns it", function()
      local t = { 1, 2 }
      assert.are.equal(t, array(t))
      assert.are.equal(array_mt, getmetatable(t))
    end)

    it("array() returns a new empty marked table", function()
      local t = array()
      assert.are.same({}, t)
      assert.are.equal(array_mt, getmetatable(t))
      assert.are.equal("[]", enc(t))
    end)

    it("array(x) raises for a non-table argument", function()
      assert.has_error(function() core.array(42) end,
        "bad argument #1 to 'array' (table expected, got number)")
    end)

    it("json_encode raises when called without a value", function()
      assert.has_error(function() core.json_encode() end, "bad argument #1 to 'json_encode' (value expected)")
    end)

    it("json_decode raises for a non-string argument", function()
      assert.has_error(function() core.json_decode(nil) end,
        "bad argument #1 to 'json_decode' (string expected, got nil)")
    end)

    it("json_mark_array refuses values that cannot be markers", function()
      local msg = "bad argument #1 to 'json_mark_array' (metatable or non-null light userdata expected)"
      assert.has_error(function() core.json_mark_array(42) end, msg)
      assert.has_error(function() core.json_mark_array(null) end, msg)
    end)
  end)

  describe("json_encode", function()
    it("writes scalars", function()
      assert.are.equal("null", enc(nil))
      assert.are.equal("null", enc(null))
      assert.are.equal("true", enc(true))
      assert.are.equal("false", enc(false))
      assert.are.equal('"hi"', enc("hi"))
      assert.are.equal('""', enc(""))
    end)

    it("returns exactly one value on success and two on failure", function()
      assert.are.equal(1, select("#", enc({ 1 })))
      assert.are.equal(2, select("#", enc({ 0 / 0 })))
    end)

    it("writes integers without a fraction", function()
      assert.are.equal("84", enc(84))
      assert.are.equal("-7", enc(-7))
      assert.are.equal("0", enc(0))
      assert.are.equal('{"total":84}', enc({ total = 84 }))
    end)

    it("writes integral floats up to 2^53 like integers on every Lua", function()
      assert.are.equal("2", enc(2.0))
      assert.are.equal("-3", enc(-3.0))
      assert.are.equal("0", enc(-0.0))
      assert.are.equal("1000000000000000", enc(1e15))
      assert.are.equal("9007199254740992", enc(2 ^ 53))
      assert.are.equal("-9007199254740992", enc(-2 ^ 53))
    end)

    it("keeps a fraction on integral floats beyond 2^53 so they decode as floats", function()
      assert.are.equal("9007199254740994.0", enc(2 ^ 53 + 2))
      assert.are.equal("1e+300", enc(1e300))
      assert.are.equal("1.8446744073709552e+19", enc(2 ^ 64))
    end)

    it("writes the full int64 range exactly on Lua 5.4", function()
      if is_jit then
        -- LuaJIT has no int64 numbers: the nearest double is written instead
        assert.are.equal("9.223372036854776e+18", enc(9223372036854775807))
      else
        assert.are.equal("9223372036854775807", enc(math.maxinteger))
        assert.are.equal("-9223372036854775808", enc(math.mininteger))
        assert.are.equal("9007199254740993", enc(9007199254740993))
      end
    end)

    it("writes floats with the shortest of 15, 16 or 17 digits that reads back exactly", function()
      assert.are.equal("0.1", enc(0.1))
      assert.are.equal("-2.5e-07", enc(-2.5e-7))
      assert.are.equal("0.30000000000000004", enc(0.1 + 0.2))
      assert.are.equal("0.3333333333333333", enc(1 / 3))
      assert.are.equal("3.141592653589793", enc(math.pi))
      assert.are.equal("123.456", enc(123.456))
      assert.are.equal("1.7976931348623157e+308", enc(1.7976931348623157e308))
      assert.are.equal("4.94065645841247e-324", enc(4.9406564584124654e-324))
    end)

    it("refuses NaN, Infinity and -Infinity with the path of the value", function()
      assert.are.same({ nil, "value: NaN is not valid JSON" }, fails(enc, 0 / 0))
      assert.are.same({ nil, "value: Infinity is not valid JSON" }, fails(enc, math.huge))
      assert.are.same({ nil, "value: -Infinity is not valid JSON" }, fails(enc, -math.huge))
      assert.are.same({ nil, "body.items[2].price: NaN is not valid JSON" },
        fails(enc, { items = { { price = 1 }, { price = 0 / 0 } } }, "body"))
    end)

    it("escapes quotes, backslashes and control bytes, and leaves / and DEL alone", function()
      assert.are.equal([["\"\\/\b\f\n\r\t\u0000\u0001\u001f]] .. "\127" .. [["]],
        enc("\"\\/\b\f\n\r\t\0\1\31\127"))
      assert.are.equal('"a\\u000bb"', enc("a\vb"))
    end)

    it("writes valid UTF-8 unchanged, up to U+10FFFF", function()
      local s = "é€😀" .. "\xED\x9F\xBF" .. "\xEE\x80\x80" .. "\xEF\xBF\xBF" .. "\xF4\x8F\xBF\xBF"
      assert.are.equal('"' .. s .. '"', enc(s))
    end)

    it("refuses invalid UTF-8: overlong forms, surrogates, > U+10FFFF, truncated, stray bytes", function()
      local bad = {
        "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF", -- overlong
        "\xED\xA0\x80", "\xED\xBF\xBF",                             -- surrogates
        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF",             -- beyond U+10FFFF
        "\xE2\x82", "ab\xF0\x9F\x98", "\xC3",                       -- truncated
        "\x80", "a\xBFb", "\xE2\x28\xA1",                           -- stray or bad continuation
      }
      for _, s in ipairs(bad) do
        assert.are.same({ nil, "body.name: invalid UTF-8" }, fails(enc, { name = s }, "body"))
      end
    end)

    it("refuses an object key that is not valid UTF-8", function()
      assert.are.same({ nil, "value.a: invalid UTF-8 in object key" },
        fails(enc, { a = { ["\xFF"] = 1 } }))
    end)

    it("writes a sequence 1..n as an array", function()
      assert.are.equal("[1,2,3]", enc({ 1, 2, 3 }))
      assert.are.equal('[["a"],{"b":false}]', enc({ { "a" }, { b = false } }))
    end)

    it("writes string-keyed tables as objects with keys in byte order", function()
      assert.are.equal('{"A":3,"a":2,"a b":4,"aa":5,"b":1}',
        enc({ b = 1, a = 2, A = 3, ["a b"] = 4, aa = 5 }))
    end)

    it("writes the same text for equal tables built in different orders", function()
      local one, two = {}, {}
      for i = 1, 100 do one["key" .. i] = i end
      for i = 100, 1, -1 do two["key" .. i] = i end
      assert.are.equal(enc(one), enc(two))
      assert.are.equal('{"key1":1,"key10":10,"key100":100,"key11":11,', enc(one):sub(1, 45))
    end)

    it("writes an unmarked empty table as {}", function()
      assert.are.equal("{}", enc({}))
      assert.are.equal('{"a":{}}', enc({ a = {} }))
    end)

    it("writes tables marked with array_mt or __jsontype = 'array' as arrays", function()
      assert.are.equal("[]", enc(array({})))
      assert.are.equal("[]", enc(setmetatable({}, array_mt)))
      assert.are.equal("[]", enc(setmetatable({}, { __jsontype = "array" })))
      assert.are.equal('{"tags":[]}', enc({ tags = array() }))
      assert.are.equal("[1,2]", enc(setmetatable({ 1, 2 }, { __jsontype = "array" })))
    end)

    it("writes t[1..#t] for a marked array, null for holes", function()
      assert.are.equal("[1,2]", enc(array({ 1, 2, x = "ignored" })))
      -- which border #t reports for a table with a hole is up to the implementation
      local t = array({ 1, 2, 3 })
      t[2] = nil
      local want = ({ [1] = "[1]", [3] = "[1,null,3]" })[#t]
      assert.are.equal(want, enc(t))
    end)

    it("writes tables marked __jsontype = 'object' as objects", function()
      local obj = { __jsontype = "object" }
      assert.are.equal("{}", enc(setmetatable({}, obj)))
      assert.are.equal('{"a":1}', enc(setmetatable({ a = 1 }, obj)))
      assert.are.same({ nil, "value.x: object key must be a string, not number" },
        fails(enc, { x = setmetatable({ 1, 2 }, obj) }))
    end)

    it("refuses an unknown __jsontype", function()
      assert.are.same({ nil, 'value[1]: __jsontype must be "array" or "object"' },
        fails(enc, { setmetatable({}, { __jsontype = "list" }) }))
      assert.are.same({ nil, 'value: __jsontype must be "array" or "object"' },
        fails(enc, setmetatable({}, { __jsontype = true })))
    end)

    it("refuses mixed and sparse tables, naming the table", function()
      local msg = "body.data: mixed or sparse table (keys must be all strings, or exactly 1..n)"
      local t = {}
      t[1], t[2], t[4] = 1, 2, 4
      for _, bad in ipairs({ { 1, 2, x = 3 }, { [1] = 1, [3] = 3 }, { [2] = "b" }, { [0] = "z" },
                             { [1.5] = 1 }, { [-1] = 1 }, t, { a = 1, [1] = 2 } }) do
        assert.are.same({ nil, msg }, fails(enc, { data = bad }, "body"))
      end
    end)

    it("refuses table keys that are neither strings nor indices", function()
      assert.are.same({ nil, "value: table key must be a string or an array index, not boolean" },
        fails(enc, { [true] = 1 }))
      assert.are.same({ nil, "value: table key must be a string or an array index, not table" },
        fails(enc, { [{}] = 1 }))
    end)

    it("refuses functions, threads, full userdata and unknown light userdata", function()
      assert.are.same({ nil, "value.cb: cannot encode a function value as JSON" },
        fails(enc, { cb = print }))
      assert.are.same({ nil, "value.co: cannot encode a thread value as JSON" },
        fails(enc, { co = coroutine.create(print) }))
      assert.are.same({ nil, "value[1]: cannot encode a userdata value as JSON" },
        fails(enc, { io.stdout }))
      assert.are.same({ nil, "value[1]: cannot encode a light userdata value as JSON (only null and "
        .. "registered array markers)" }, fails(enc, { light_userdata() }))
    end)

    it("quotes path steps that are not identifiers", function()
      assert.are.same({ nil, 'value["first name"].x: NaN is not valid JSON' },
        fails(enc, { ["first name"] = { x = 0 / 0 } }))
      assert.are.same({ nil, 'value["say \\"hi\\""]: NaN is not valid JSON' },
        fails(enc, { ['say "hi"'] = 0 / 0 }))
    end)

    it("encodes 256 nested tables and refuses 257", function()
      local t = {}
      for _ = 2, 256 do t = { t } end
      assert.are.equal(("["):rep(255) .. "{}" .. ("]"):rep(255), enc(t))
      assert.are.same({ nil, "..." .. ("[1]"):rep(84) .. ": nested deeper than 256 levels (is there a cycle?)" },
        fails(enc, { t }))
    end)

    it("refuses a cycle instead of looping", function()
      local t = {}
      t.a = t
      assert.are.same({ nil, "..." .. (".a"):rep(126) .. ": nested deeper than 256 levels (is there a cycle?)" },
        fails(enc, t))
    end)

    it("starts clean after a failed call", function()
      assert.are.same({ nil, "value.b: NaN is not valid JSON" }, fails(enc, { a = ("x"):rep(1000), b = 0 / 0 }))
      assert.are.equal("[1]", enc({ 1 }))
    end)

    it("encodes objects with many and long keys", function()
      local t, parts = {}, {}
      for i = 1, 300 do
        local k = ("k%03d"):format(i) .. ("_"):rep(50)
        t[k] = { [k] = i }
        parts[i] = ('"%s":{"%s":%d}'):format(k, k, i)
      end
      assert.are.equal("{" .. table.concat(parts, ",") .. "}", enc(t))
    end)
  end)

  describe("json_decode", function()
    it("reads scalars", function()
      assert.are.equal(true, dec("true"))
      assert.are.equal(false, dec("false"))
      assert.are.equal("hi", dec('"hi"'))
      assert.are.equal(null, dec("null"))
    end)

    it("returns exactly one value on success and two on failure", function()
      assert.are.equal(1, select("#", dec("[1]")))
      assert.are.equal(2, select("#", dec("[1")))
    end)

    it("reads integer literals as integers", function()
      local t = dec('{"total":84,"neg":-84,"zero":0}')
      assert.are.equal(84, t.total)
      assert.are.equal(-84, t.neg)
      assert.are.equal(0, t.zero)
      assert.are.equal(is_jit and "number" or "integer", ntype(t.total))
      assert.are.equal("84", tostring(t.total))
    end)

    it("reads -0 as the integer 0", function()
      local z = dec("-0")
      assert.are.equal(is_jit and "number" or "integer", ntype(z))
      assert.are.equal(math.huge, 1 / z)
    end)

    it("reads fractions and exponents as floats", function()
      local t = dec("[1.5, 1E2, 1e-2, 2.5e-7, -0.0, 0.000001e6, 100e-2, 1e300]")
      assert.are.same({ 1.5, 100.0, 0.01, 2.5e-7, -0.0, 1.0, 1.0, 1e300 }, t)
      for i = 1, #t do assert.are.equal(is_jit and "number" or "float", ntype(t[i])) end
      assert.are.equal(-math.huge, 1 / t[5])
    end)

    it("reads floats exactly, however many digits they have", function()
      assert.are.equal(0.1, dec("0.1000000000000000055511151231257827021181583404541015625"))
      assert.are.equal(1.2345678901234568e29, dec("123456789012345678901234567890.5"))
      assert.are.equal(1.7976931348623157e308, dec("1.7976931348623157e308"))
      assert.are.equal(4.9406564584124654e-324, dec("4.9406564584124654e-324"))
      assert.are.equal(2.2250738585072011e-308, dec("2.2250738585072011e-308"))
      assert.are.equal(9007199254740992.0, dec("9007199254740993.0"))
      assert.are.equal(0.30000000000000004, dec("0.30000000000000004"))
    end)

    it("reads underflowing floats as zero", function()
      assert.are.equal(0.0, dec("1e-400"))
      assert.are.equal(0.0, dec("0e99999999999999999999"))
      assert.are.equal(-math.huge, 1 / dec("-1e-99999999999"))
    end)

    it("returns integers beyond the exact range as the literal string", function()
      if is_jit then
        assert.are.equal(9007199254740992, dec("9007199254740992"))
        assert.are.equal(-9007199254740992, dec("-9007199254740992"))
        assert.are.equal("9007199254740993", dec("9007199254740993"))
        assert.are.equal("-9007199254740993", dec("-9007199254740993"))
        assert.are.equal("9223372036854775807", dec("9223372036854775807"))
      else
        assert.are.equal(math.maxinteger, dec("9223372036854775807"))
        assert.are.equal(math.mininteger, dec("-9223372036854775808"))
        assert.are.equal("integer", math.type(dec("-9223372036854775808")))
        assert.are.equal("9223372036854775808", dec("9223372036854775808"))
        assert.are.equal("-9223372036854775809", dec("-9223372036854775809"))
      end
      assert.are.equal("18446744073709551616", dec("18446744073709551616"))
      assert.are.equal("99999999999999999999", dec("99999999999999999999"))
      assert.are.same({ id = "123456789012345678901234567890" }, dec('{"id":123456789012345678901234567890}'))
    end)

    it("returns floats beyond the double range as the literal string", function()
      assert.are.equal("1e400", dec("1e400"))
      assert.are.equal("-1.5E+999", dec("-1.5E+999"))
      assert.are.equal("1.8e308", dec("1.8e308"))
    end)

    it("reads escapes, \\u escapes and surrogate pairs", function()
      assert.are.equal("\"\\/\b\f\n\r\t", dec([["\"\\\/\b\f\n\r\t"]]))
      assert.are.equal("é€", dec([["\u00e9\u20AC"]]))
      assert.are.equal("😀", dec([["\uD83D\uDE00"]]))
      assert.are.equal("a\0b", dec([["a\u0000b"]]))
      assert.are.equal("x\xF4\x8F\xBF\xBFy", dec([["x\udbff\udfffy"]]))
      assert.are.equal(("é"):rep(100) .. "\n", dec('"' .. ("é"):rep(100) .. '\\n"'))
    end)

    it("reads valid raw UTF-8", function()
      local s = "é€😀" .. "\xED\x9F\xBF" .. "\xEE\x80\x80" .. "\xF4\x8F\xBF\xBF"
      assert.are.equal(s, dec('"' .. s .. '"'))
    end)

    it("refuses lone surrogates", function()
      assert.are.same({ nil, "invalid JSON at byte 2: lone surrogate in \\u escape" }, decode_error([["\ud800"]]))
      assert.are.same({ nil, "invalid JSON at byte 3: lone surrogate in \\u escape" }, decode_error([["a\udc00"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: lone surrogate in \\u escape" },
        decode_error([["\ud800\u0041"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: lone surrogate in \\u escape" },
        decode_error([["\ud800\ud800"]]))
    end)

    it("refuses invalid UTF-8 in strings and keys", function()
      assert.are.same({ nil, "invalid JSON at byte 3: invalid UTF-8 in string" }, decode_error('"a\xC0\xAF"'))
      assert.are.same({ nil, "invalid JSON at byte 2: invalid UTF-8 in string" }, decode_error('"\xED\xA0\x80"'))
      assert.are.same({ nil, "invalid JSON at byte 2: invalid UTF-8 in string" }, decode_error('"\xF4\x90\x80\x80"'))
      assert.are.same({ nil, "invalid JSON at byte 2: invalid UTF-8 in string" }, decode_error('"\xE2\x82"'))
      assert.are.same({ nil, "invalid JSON at byte 3: invalid UTF-8 in string" }, decode_error('{"\xFF":1}'))
      assert.are.same({ nil, "invalid JSON at byte 4: invalid UTF-8 in string" }, decode_error('"\\n\x80"'))
    end)

    it("refuses bad escapes", function()
      assert.are.same({ nil, "invalid JSON at byte 2: invalid escape '\\x'" }, decode_error([["\x41"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: invalid escape '\\''" }, decode_error([["\'"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: \\u must be followed by 4 hex digits" },
        decode_error([["\u12"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: \\u must be followed by 4 hex digits" },
        decode_error([["\u12G4"]]))
      assert.are.same({ nil, "invalid JSON at byte 2: invalid escape (backslash before byte 0x0a)" },
        decode_error('"\\\n"'))
    end)

    it("refuses raw control characters and unterminated strings", function()
      assert.are.same({ nil, "invalid JSON at byte 3: unescaped control character in string" },
        decode_error('"a\nb"'))
      assert.are.same({ nil, "invalid JSON at byte 2: unescaped control character in string" },
        decode_error('"\tb"'))
      assert.are.same({ nil, "invalid JSON at byte 4: unescaped control character in string" },
        decode_error('"\\n\0"'))
      assert.are.same({ nil, "invalid JSON at byte 5: unterminated string" }, decode_error('"abc'))
      assert.are.same({ nil, "invalid JSON at byte 4: unterminated string" }, decode_error('"a\\'))
      assert.are.same({ nil, "invalid JSON at byte 6: unterminated string" }, decode_error('"a\\n\\'))
    end)

    it("refuses malformed numbers", function()
      local cases = {
        { "01", "invalid JSON at byte 1: leading zeros are not allowed" },
        { "-01", "invalid JSON at byte 2: leading zeros are not allowed" },
        { "[00]", "invalid JSON at byte 2: leading zeros are not allowed" },
        { "-", "invalid JSON at byte 2: expected a digit" },
        { "-a", "invalid JSON at byte 2: expected a digit" },
        { "1.", "invalid JSON at byte 3: expected a digit after '.'" },
        { "1.e5", "invalid JSON at byte 3: expected a digit after '.'" },
        { "1e", "invalid JSON at byte 3: expected a digit in the exponent" },
        { "1e+", "invalid JSON at byte 4: expected a digit in the exponent" },
        { ".5", "invalid JSON at byte 1: unexpected character '.'" },
        { "+1", "invalid JSON at byte 1: unexpected character '+'" },
        { "0x10", "invalid JSON at byte 2: trailing characters after the JSON value" },
      }
      for _, c in ipairs(cases) do assert.are.same({ nil, c[2] }, decode_error(c[1])) end
    end)

    it("refuses NaN and Infinity", function()
      for _, text in ipairs({ "NaN", "Infinity", "-Infinity", "[1,NaN]" }) do
        local at = text == "[1,NaN]" and 4 or 1
        assert.are.same({ nil, "invalid JSON at byte " .. at .. ": NaN and Infinity are not valid JSON" },
          decode_error(text))
      end
    end)

    it("refuses comments", function()
      assert.are.same({ nil, "invalid JSON at byte 1: comments are not allowed" }, decode_error("// x\n1"))
      assert.are.same({ nil, "invalid JSON at byte 3: comments are not allowed" }, decode_error("[1/* x */]"))
      assert.are.same({ nil, "invalid JSON at byte 3: comments are not allowed" }, decode_error("1 /* x */"))
    end)

    it("refuses trailing commas", function()
      assert.are.same({ nil, "invalid JSON at byte 4: trailing comma before ']'" }, decode_error("[1,]"))
      assert.are.same({ nil, "invalid JSON at byte 9: trailing comma before '}'" }, decode_error('{"a":1, }'))
      assert.are.same({ nil, "invalid JSON at byte 2: unexpected character ','" }, decode_error("[,1]"))
    end)

    it("refuses broken structure with the offending byte", function()
      local cases = {
        { "", "invalid JSON at byte 1: unexpected end of input" },
        { " \n\t\r ", "invalid JSON at byte 6: unexpected end of input" },
        { "[1", "invalid JSON at byte 3: unexpected end of input" },
        { "[1,", "invalid JSON at byte 4: unexpected end of input" },
        { '{"a":1', "invalid JSON at byte 7: unexpected end of input" },
        { '{"a"', "invalid JSON at byte 5: unexpected end of input" },
        { '{"a":', "invalid JSON at byte 6: unexpected end of input" },
        { "{", "invalid JSON at byte 2: unexpected end of input" },
        { "[1 2]", "invalid JSON at byte 4: unexpected character '2' (expected ',' or ']')" },
        { "[1}", "invalid JSON at byte 3: unexpected character '}' (expected ',' or ']')" },
        { '{"a" 1}', "invalid JSON at byte 6: unexpected character '1' (expected ':')" },
        { '{"a":1 "b":2}', "invalid JSON at byte 8: unexpected character '\"' (expected ',' or '}')" },
        { "{a:1}", "invalid JSON at byte 2: unexpected character 'a' (expected a string key)" },
        { "{1:1}", "invalid JSON at byte 2: unexpected character '1' (expected a string key)" },
        { "]", "invalid JSON at byte 1: unexpected character ']'" },
        { "'a'", "invalid JSON at byte 1: unexpected character '''" },
        { "\1", "invalid JSON at byte 1: unexpected byte 0x01" },
        { "\xFF", "invalid JSON at byte 1: unexpected byte 0xff" },
        { "\f1", "invalid JSON at byte 1: unexpected byte 0x0c" },
        { "[1,\xC2\xA0 2]", "invalid JSON at byte 4: unexpected byte 0xc2" },
        { "tru", "invalid JSON at byte 1: invalid literal (expected true)" },
        { "nul", "invalid JSON at byte 1: invalid literal (expected null)" },
        { "[True]", "invalid JSON at byte 2: unexpected character 'T'" },
        { "fals", "invalid JSON at byte 1: invalid literal (expected false)" },
      }
      for _, c in ipairs(cases) do assert.are.same({ nil, c[2] }, decode_error(c[1])) end
    end)

    it("refuses trailing garbage but allows trailing whitespace", function()
      assert.are.same({ nil, "invalid JSON at byte 4: trailing characters after the JSON value" },
        decode_error("{} x"))
      assert.are.same({ nil, "invalid JSON at byte 3: trailing characters after the JSON value" },
        decode_error("1 2"))
      assert.are.same({ nil, "invalid JSON at byte 4: trailing characters after the JSON value" },
        decode_error('"a""b"'))
      assert.are.same({ nil, "invalid JSON at byte 6: trailing characters after the JSON value" },
        decode_error("falsey"))
      assert.are.same({ nil, "invalid JSON at byte 3: trailing characters after the JSON value" },
        decode_error("[]\0"))
      assert.are.same({ 1, 2 }, dec(" \t\r\n[ 1 ,\n2 ]\n\t "))
    end)

    it("accepts one leading UTF-8 byte order mark and no other", function()
      assert.are.same({ a = 1 }, dec('\xEF\xBB\xBF{"a":1}'))
      assert.are.equal(7, dec("\xEF\xBB\xBF 7"))
      local bom = "\xEF\xBB\xBF"
      assert.are.same({ nil, "invalid JSON at byte 4: unexpected byte 0xef" }, decode_error(bom .. bom .. "1"))
      assert.are.same({ nil, "invalid JSON at byte 2: unexpected byte 0xef" }, decode_error("[" .. bom .. "]"))
      assert.are.same({ nil, "invalid JSON at byte 4: unexpected end of input" }, decode_error(bom))
    end)

    it("drops object members whose value is null", function()
      local t = dec('{"deleted_at":null,"id":3,"meta":{"cursor":null,"has_more":false}}')
      assert.are.same({ id = 3, meta = { has_more = false } }, t)
      assert.are.equal(nil, t.deleted_at)
      assert.are.equal(nil, t.meta.cursor)
    end)

    it("keeps null array elements as flextell.null so indices hold", function()
      local t = dec("[1,null,3,null]")
      assert.are.equal(4, #t)
      assert.are.equal(null, t[2])
      assert.are.equal(null, t[4])
      assert.are.equal(3, t[3])
    end)

    it("lets the last duplicate key win, also when it is null", function()
      assert.are.same({ a = 2 }, dec('{"a":1,"a":2}'))
      assert.are.same({}, dec('{"a":1,"a":null}'))
      assert.are.same({ a = 1 }, dec('{"a":null,"a":1}'))
      local parts = {}
      for i = 1, 40 do parts[i] = ('"k%d":%d'):format(i, i) end
      local t = dec("{" .. table.concat(parts, ",") .. ',"k1":"last","k2":null}')
      assert.are.equal("last", t.k1)
      assert.are.equal(nil, t.k2)
      assert.are.equal(40, t.k40)
    end)

    -- an object after another at the same depth is made the size of the one before and filled in
    -- place: the same rules hold there, and a size that does not fit changes nothing
    it("keeps those rules for objects that follow others at the same depth (list items)", function()
      local t = dec('[{"a":1,"b":2,"c":3},{"a":1,"a":2,"b":null,"b":4},{"a":1,"a":null},{"x":1},' ..
        '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":{"g":1,"h":2}},{"f":{"g":null,"g":3}},{}]')
      assert.are.same({ { a = 1, b = 2, c = 3 }, { a = 2, b = 4 }, {}, { x = 1 },
        { a = 1, b = 2, c = 3, d = 4, e = 5, f = { g = 1, h = 2 } }, { f = { g = 3 } }, {} }, t)
    end)

    it("marks decoded arrays with array_mt, including empty ones", function()
      assert.are.equal(array_mt, getmetatable(dec("[]")))
      assert.are.equal(array_mt, getmetatable(dec("[1]")))
      assert.are.equal(nil, getmetatable(dec("{}")))
      assert.are.same({}, dec("[]"))
    end)

    it("reads arrays and objects of every size exactly", function()
      for _, n in ipairs({ 1, 2, 31, 32, 33, 64, 65, 1000 }) do
        local items, members = {}, {}
        for i = 1, n do
          items[i] = tostring(i * 3)
          members[i] = ('"m%d":%d'):format(i, i)
        end
        local arr = dec("[" .. table.concat(items, ",") .. "]")
        local obj = dec("{" .. table.concat(members, ",") .. "}")
        assert.are.equal(n, #arr)
        local count = 0
        for k, v in pairs(obj) do
          count = count + 1
          assert.are.equal("m" .. v, k)
        end
        assert.are.equal(n, count)
        for i = 1, n do assert.are.equal(i * 3, arr[i]) end
      end
    end)

    it("reads 512 nested containers and refuses 513", function()
      local v = dec(("["):rep(512) .. ("]"):rep(512))
      for _ = 1, 511 do v = v[1] end
      assert.are.same({}, v)
      assert.are.equal(array_mt, getmetatable(v))
      assert.are.same({ nil, "invalid JSON at byte 513: nested deeper than 512 levels" },
        decode_error(("["):rep(513) .. ("]"):rep(513)))
      assert.are.same({ nil, "invalid JSON at byte 2561: nested deeper than 512 levels" },
        decode_error(('{"a":'):rep(513) .. "1" .. ("}"):rep(513)))
    end)

    it("reads deep and wide data without running out of Lua stack", function()
      -- each level waits with 31 elements and 15 members on the stack before the next opens
      local level = "[" .. ("1,"):rep(31) .. '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,'
        .. '"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"next":'
      local text = level:rep(255) .. "0" .. ("}]"):rep(255)
      local v = dec(text)
      assert.are.equal("table", type(v))
      for _ = 1, 254 do
        assert.are.equal(32, #v)
        assert.are.equal(15, v[32].o)
        v = v[32].next
      end
      assert.are.equal(0, v[32].next)
    end)

    it("copes with a __gc finalizer that uses the codec during a call", function()
      -- finalizers only record what they saw: raising inside one is not what this is about
      local inside, nested, seen = false, 0, {}
      local function on_gc()
        if inside then
          local v = dec('{"k":"a\\nb"}')
          seen[enc({ x = { 1, 2 } }) .. " " .. tostring(v and v.k)] = true
          nested = nested + 1
        end
      end
      local function garbage()
        if rawget(_G, "newproxy") then
          local p = newproxy(true)
          getmetatable(p).__gc = on_gc
        else
          setmetatable({}, { __gc = on_gc })
        end
      end
      local parts, keyed = {}, {}
      for i = 1, 2000 do
        parts[i] = ('{"id":%d,"name":"n\\t%d","tags":["a","b"]}'):format(i, i)
        keyed[("key %d "):format(i) .. ("-"):rep(40)] = ("v\t%d"):format(i)
      end
      local text, want = "[" .. table.concat(parts, ",") .. "]", nil
      local keyed_text = enc(keyed)
      -- a collector that starts each cycle at once and steps hard, so finalizers run inside the
      -- calls whatever heap the earlier specs left behind
      collectgarbage()
      local pause, stepmul = collectgarbage("setpause", 100), collectgarbage("setstepmul", 1000)
      local rounds = 0
      while rounds < 5 or (nested == 0 and rounds < 50) do
        rounds = rounds + 1
        for _ = 1, 200 do garbage() end
        inside = true
        local v = dec(text)
        local again = enc(keyed)
        inside = false
        want = want or enc(v)
        assert.are.equal(want, enc(v))
        assert.are.equal(keyed_text, again)
      end
      collectgarbage("setpause", pause)
      collectgarbage("setstepmul", stepmul)
      collectgarbage()
      assert.is_true(nested > 0)
      assert.are.same({ ['{"x":[1,2]} a\nb'] = true }, seen)
    end)
  end)

  describe("round trips", function()
    it("keeps integers integers", function()
      local t = dec(enc({ total = 84, page = 2.0 }))
      assert.are.equal(is_jit and "number" or "integer", ntype(t.total))
      assert.are.equal(is_jit and "number" or "integer", ntype(t.page))
      assert.are.equal('{"page":2,"total":84}', enc(t))
    end)

    it("keeps 2^53+1 and the largest int64 exact on Lua 5.4", function()
      if is_jit then
        assert.are.equal("9007199254740993", dec("9007199254740993"))
        assert.are.equal('"9007199254740993"', enc(dec("9007199254740993")))
      else
        for _, n in ipairs({ 9007199254740993, math.maxinteger, math.mininteger, -9007199254740993 }) do
          local back = dec(enc(n))
          assert.are.equal(n, back)
          assert.are.equal("integer", math.type(back))
        end
      end
    end)

    it("keeps floats exact", function()
      for _, x in ipairs({ 0.1, 1e300, -2.5e-7, 0.1 + 0.2, 1 / 3, math.pi, 5e-324, 1.7976931348623157e308,
                           2 ^ 53 + 2, -1.5, 123456.789e10, 2 ^ -1074, 1e22, 1e23 }) do
        local back = dec(enc(x))
        assert.are.equal(x, back)
        assert.are.equal(enc(x), enc(back))
      end
    end)

    it("keeps [] as [] through decode and encode", function()
      assert.are.equal("[]", enc(dec("[]")))
      assert.are.equal("{}", enc(dec("{}")))
    end)

    it("keeps a nested [] through a read-modify-write", function()
      local t = dec('{"a":[],"b":{},"c":[[]]}')
      t.d = 1
      t.c[1][1] = "x"
      assert.are.equal('{"a":[],"b":{},"c":[["x"]],"d":1}', enc(t))
    end)

    it("keeps null array elements and drops null members", function()
      assert.are.equal('[1,null,{}]', enc(dec('[1,null,{"x":null}]')))
    end)

    it("keeps every byte of strings", function()
      local all = {}
      for i = 0, 127 do all[#all + 1] = string.char(i) end
      local s = table.concat(all) .. "é€😀"
      assert.are.equal(s, dec(enc(s)))
      assert.are.equal(s, dec(enc({ s }))[1])
    end)
  end)

  describe("array markers", function()
    it("treats a registered metatable as an array marker", function()
      local mt = {}
      assert.are.equal(mt, core.json_mark_array(mt))
      assert.are.equal("[]", enc(setmetatable({}, mt)))
      assert.are.equal("[1,2]", enc({ list = setmetatable({ 1, 2 }, mt) }):sub(9, 13))
    end)

    it("writes a registered light userdata as []", function()
      local marker = light_userdata()
      assert.are.same({ nil, "value.x: cannot encode a light userdata value as JSON (only null and "
        .. "registered array markers)" }, fails(enc, { x = marker }))
      assert.are.equal(marker, core.json_mark_array(marker))
      assert.are.equal('{"x":[]}', enc({ x = marker }))
      assert.are.equal("[]", enc(marker))
    end)
  end)

  describe("cjson interoperability", function()
    local ok, cjson = pcall(require, "cjson")

    it("shares null with cjson", function()
      if ok then
        assert.are.equal(cjson.null, null)
        assert.are.equal("[null]", enc({ cjson.null }))
        assert.are.equal(cjson.null, dec("[null]")[1])
      else
        -- no cjson here: null is the value cjson.null is documented to be
        assert.are.equal("userdata", type(null))
        assert.are.equal("[null]", enc({ null }))
      end
    end)

    it("encodes what cjson decoded, floats included", function()
      local body = '{"items":[1,2.5,"x"],"meta":{"total":84}}'
      if ok then
        assert.are.equal(body, enc(cjson.decode(body)))
      else
        assert.are.equal(body, enc(dec(body)))
      end
    end)

    it("honours cjson's array markers once registered", function()
      local marker_mt = ok and rawget(cjson, "array_mt") or setmetatable({}, { __name = "stand-in" })
      local empty_mt = ok and rawget(cjson, "empty_array_mt") or {}
      local empty = ok and rawget(cjson, "empty_array") or light_userdata()
      core.json_mark_array(marker_mt)
      core.json_mark_array(empty_mt)
      core.json_mark_array(empty)
      assert.are.equal("[]", enc(setmetatable({}, marker_mt)))
      assert.are.equal("[]", enc(setmetatable({}, empty_mt)))
      assert.are.equal('{"a":[]}', enc({ a = empty }))
    end)
  end)

  describe("locale independence", function()
    local comma_locales = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "de_DE", "fr_FR",
                            "ru_RU.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8", "nl_NL.UTF-8" }
    -- The same checks run in this process or in a child; they print one line to compare.
    local probe = [[
      local core = require "flextell.core"
      local enc, dec = core.json_encode, core.json_decode
      local v = dec("[0.5,1.25e-7,0.30000000000000004,123.456e-2,1.7976931348623157e308,-2.5]")
      io.write(enc({ 0.5, 1.25e-7, 0.1 + 0.2, 1 / 3, -2.5e-7, 1e300 }), " ", enc(v), " ",
               tostring(v[2] == 1.25e-7 and v[3] == 0.1 + 0.2 and v[5] == 1.7976931348623157e308), "\n")
    ]]
    local want = "[0.5,1.25e-07,0.30000000000000004,0.3333333333333333,-2.5e-07,1e+300] "
      .. "[0.5,1.25e-07,0.30000000000000004,1.23456,1.7976931348623157e+308,-2.5] true"

    local function run_probe()
      local lines = {}
      local real_write = io.write
      io.write = function(...) -- luacheck: ignore 122
        for i = 1, select("#", ...) do lines[#lines + 1] = tostring((select(i, ...))) end
      end
      local ok, err = pcall(assert((loadstring or load)(probe)))
      io.write = real_write -- luacheck: ignore 122
      assert(ok, err)
      return (table.concat(lines):gsub("\n$", ""))
    end

    it("writes and reads '.' as the decimal point under a comma locale", function()
      local saved = os.setlocale(nil, "numeric")
      local active
      for _, name in ipairs(comma_locales) do
        if os.setlocale(name, "numeric") then
          active = name
          break
        end
      end
      if active then
        local ok, got = pcall(run_probe)
        local c_format = string.format("%.1f", 0.5)
        os.setlocale(saved, "numeric")
        assert(ok, got)
        if not is_jit then assert.are.equal("0,5", c_format) end -- the locale really is active
        assert.are.equal(want, got)
        return
      end
      -- No comma locale installed: build one with localedef in a temporary LOCPATH and run the
      -- probe in a child interpreter there (glibc reads LOCPATH at setlocale time).
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p '" .. dir .. "'"))
      -- (a sanitizer run preloads its runtime into every child; localedef does not need it)
      local built = os.execute("env -u LD_PRELOAD localedef -i de_DE -f UTF-8 '" .. dir
        .. "/de_DE.UTF-8' >/dev/null 2>&1")
      assert(built == true or built == 0,
        "no comma-decimal locale is installed and localedef could not build one (install `locales`)")
      local interp = (type(arg) == "table" and arg[-1]) or (is_jit and "luajit" or "lua5.4")
      local script = ("package.cpath = %q\n"):format(package.cpath)
        .. ("package.path = %q\n"):format(package.path)
        .. 'assert(os.setlocale("de_DE.UTF-8", "numeric"), "setlocale failed")\n'
        .. 'local f = string.format("%.1f", 0.5)\n'
        .. 'if not jit then assert(f == "0,5", "locale not active: " .. f) end\n'
        .. probe
      local path = dir .. "/probe.lua"
      local fh = assert(io.open(path, "w"))
      fh:write(script)
      fh:close()
      local pipe = assert(io.popen("LOCPATH='" .. dir .. "' '" .. interp .. "' '" .. path .. "' 2>&1"))
      local got = pipe:read("*a")
      pipe:close()
      os.execute("rm -rf '" .. dir .. "'")
      assert.are.equal(want .. "\n", got)
    end)

    it("reads numbers the same in the C locale", function()
      assert.are.equal(want, run_probe())
    end)
  end)
end)
