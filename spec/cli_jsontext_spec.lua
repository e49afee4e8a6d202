-- flextell.cli.jsontext works on the JSON text a server sent: what it prints keeps the key
-- order, nulls, escapes and number spellings of that text, and bad text gives nil and a message.
local J = require "flextell.cli.jsontext"

local function compact(text, s, e) return (assert(J.format(text, s, e))) end
local function pretty(text, n, s, e) return (assert(J.format(text, s, e, { indent = n or 2 }))) end

-- the text between a span's bounds
local function at(text, s, e)
  assert.is_number(s)
  assert.is_number(e)
  return text:sub(s, e)
end

local function spans(text, s, e)
  local got = {}
  for a, b in J.elements(text, s, e) do got[#got + 1] = text:sub(a, b) end
  return got
end

local DOC = ' {"z": 1, "a" : [ true, false, null, {"deep": {"x": []}} ], "n": null,\r\n\t"e": {} } '

describe("jsontext.format", function()
  it("prints compact JSON with the server's key order and nulls", function()
    assert.are.equal('{"z":1,"a":[true,false,null,{"deep":{"x":[]}}],"n":null,"e":{}}', compact(DOC))
  end)

  it("prints indented JSON, one member per line", function()
    assert.are.equal(table.concat({
      '{',
      '  "z": 1,',
      '  "a": [',
      '    true,',
      '    false,',
      '    null,',
      '    {',
      '      "deep": {',
      '        "x": []',
      '      }',
      '    }',
      '  ],',
      '  "n": null,',
      '  "e": {}',
      '}',
    }, "\n"), pretty(DOC))
    assert.are.equal('[\n    1,\n    [\n        2\n    ]\n]', pretty("[1,[2]]", 4))
  end)

  it("treats indent 0 as compact", function()
    assert.are.equal(compact(DOC), assert(J.format(DOC, nil, nil, { indent = 0 })))
  end)

  it("prints empty objects and arrays as {} and [], whatever whitespace they had", function()
    assert.are.equal("{}", pretty("{ }"))
    assert.are.equal("[]", pretty(" [ \n\t ] "))
    assert.are.equal("[]", compact("[\r\n]"))
    assert.are.equal('[\n  {},\n  [],\n  [\n    []\n  ]\n]', pretty("[{}, [], [[ ]]]"))
  end)

  it("keeps strings byte for byte: escapes, unicode, spaces and brackets inside them", function()
    local text = '[ "caf\\u00e9", "café", "a\\/b", "\\ud83d\\ude00", "q\\"[ {x} ]\\"", "\\\\u0041", ' ..
      '"  two  spaces  ", "\\b\\f\\n\\r\\t", "\127" ]'
    assert.are.equal('["caf\\u00e9","café","a\\/b","\\ud83d\\ude00","q\\"[ {x} ]\\"","\\\\u0041",' ..
      '"  two  spaces  ","\\b\\f\\n\\r\\t","\127"]', compact(text))
    assert.are.equal('{\n  "k\\u0020ey": "v\\u00e9"\n}', pretty('{"k\\u0020ey":"v\\u00e9"}'))
  end)

  it("keeps number spellings", function()
    local text = "[1.0, 1e5, -0, 1E+2, 0.5e-10, -12.50, 12345678901234567890123, 0]"
    assert.are.equal("[1.0,1e5,-0,1E+2,0.5e-10,-12.50,12345678901234567890123,0]", compact(text))
    assert.are.equal("[\n 1.0,\n 1e5,\n -0,\n 1E+2,\n 0.5e-10,\n -12.50,\n 12345678901234567890123,\n 0\n]",
      pretty(text, 1))
  end)

  it("prints scalars on their own", function()
    assert.are.equal('"x"', pretty('  "x"  '))
    assert.are.equal("-1.5e3", compact("-1.5e3"))
    assert.are.equal("null", pretty("\nnull\n"))
  end)

  it("prints a span inside the text", function()
    local s, e = J.member(DOC, "a")
    assert.are.equal('[true,false,null,{"deep":{"x":[]}}]', compact(DOC, s, e))
    assert.are.equal('[\n  true,\n  false,\n  null,\n  {\n    "deep": {\n      "x": []\n    }\n  }\n]',
      pretty(DOC, 2, s, e))
  end)

  describe("level", function()
    it("indents inner lines, not the first one, from the given level", function()
      assert.are.equal('{\n      "a": [\n        1\n      ]\n    }',
        assert(J.format('{"a":[1]}', nil, nil, { indent = 2, level = 2 })))
      assert.are.equal("[]", assert(J.format("[ ]", nil, nil, { indent = 2, level = 3 })))
      assert.are.equal("7", assert(J.format(" 7 ", nil, nil, { indent = 2, level = 3 })))
    end)

    it("lets a caller print an array's elements one by one", function()
      local text = '[{"a": 1, "b": [2, {}]}, "s", [], {"c": {"d": null}}]'
      local lines = {}
      for s, e in J.elements(text) do
        lines[#lines + 1] = "  " .. assert(J.format(text, s, e, { indent = 2, level = 1 }))
      end
      assert.are.equal(pretty(text), "[\n" .. table.concat(lines, ",\n") .. "\n]")
    end)

    it("is ignored by compact output", function()
      assert.are.equal('{"a":[1]}', assert(J.format('{ "a": [1] }', nil, nil, { level = 4 })))
    end)
  end)

  describe("color", function()
    local KEY, STR, NUM, BOOL, NULL, PUNCT, R =
      "\27[34;1m", "\27[0;32m", "\27[0;39m", "\27[0;39m", "\27[1;30m", "\27[1;39m", "\27[0m"
    local text = '{"a": [1, "x", null, true, false], "e": {}}'

    it("paints each token like jq, compact", function()
      assert.are.equal(
        PUNCT .. "{" .. R .. KEY .. '"a"' .. R .. PUNCT .. ":" .. R .. PUNCT .. "[" .. R ..
        NUM .. "1" .. R .. PUNCT .. "," .. R .. STR .. '"x"' .. R .. PUNCT .. "," .. R ..
        NULL .. "null" .. R .. PUNCT .. "," .. R .. BOOL .. "true" .. R .. PUNCT .. "," .. R ..
        BOOL .. "false" .. R .. PUNCT .. "]" .. R .. PUNCT .. "," .. R ..
        KEY .. '"e"' .. R .. PUNCT .. ":" .. R .. PUNCT .. "{" .. R .. PUNCT .. "}" .. R ..
        PUNCT .. "}" .. R,
        assert(J.format(text, nil, nil, { color = true })))
    end)

    it("paints each token like jq, indented, with whitespace left unpainted", function()
      assert.are.equal(
        PUNCT .. "{" .. R .. "\n" ..
        "  " .. KEY .. '"k"' .. R .. PUNCT .. ":" .. R .. " " .. PUNCT .. "[" .. R .. "\n" ..
        "    " .. STR .. '"v\\u00e9"' .. R .. PUNCT .. "," .. R .. "\n" ..
        "    " .. NUM .. "-0.0" .. R .. "\n" ..
        "  " .. PUNCT .. "]" .. R .. "\n" ..
        PUNCT .. "}" .. R,
        assert(J.format('{"k":["v\\u00e9",-0.0]}', nil, nil, { indent = 2, color = true })))
    end)

    it("is off unless asked for: no escape codes at all", function()
      for _, opts in ipairs({ {}, { indent = 2 }, { color = false } }) do
        local out = assert(J.format(text, nil, nil, opts))
        assert.is_nil(out:find("\27", 1, true))
      end
    end)
  end)
end)

describe("jsontext.value_span", function()
  it("gives the span of the value after whitespace", function()
    local text = ' \t\r\n {"a": "}]\\"", "b": [1, {"c": 2}]} , 5'
    local s, e = J.value_span(text, 1)
    assert.are.equal('{"a": "}]\\"", "b": [1, {"c": 2}]}', at(text, s, e))
    s, e = J.value_span(text, e + 1)
    assert.is_nil(s)
    assert.is_string(e) -- a comma starts no value
    assert.are.equal("5", at(text, J.value_span(text, #text - 1)))
  end)

  it("spans scalars exactly", function()
    local text = '["x\\"y", -1.5e+3, true, false, null]'
    assert.are.equal('"x\\"y"', at(text, J.value_span(text, 2)))
    assert.are.equal("-1.5e+3", at(text, J.value_span(text, 9)))
    assert.are.equal("true", at(text, J.value_span(text, 18)))
    assert.are.equal("null", at(text, J.value_span(text, 31)))
  end)
end)

describe("jsontext.member", function()
  it("finds a member of the whole text", function()
    assert.are.equal("1", at(DOC, J.member(DOC, "z")))
    assert.are.equal("null", at(DOC, J.member(DOC, "n")))
    assert.are.equal("{}", at(DOC, J.member(DOC, "e")))
  end)

  it("finds a member of an object inside the text", function()
    local text = '{"data": {"items": [1, 2], "next": "b\\u0032"}, "next": null}'
    local ds, de = J.member(text, "data")
    assert.are.equal('"b\\u0032"', at(text, J.member(text, "next", ds, de)))
    assert.are.equal("[1, 2]", at(text, J.member(text, "items", ds, de)))
    assert.is_nil(J.member(text, "items"))
  end)

  it("compares keys after unescaping them", function()
    local text = '{"d\\u0061ta": 1, "q\\"k": 2, "\\ud83d\\ude00": 3, "\\\\u0041": 4, "sl\\/ash": 5, "t\\tb": 6}'
    assert.are.equal("1", at(text, J.member(text, "data")))
    assert.are.equal("2", at(text, J.member(text, 'q"k')))
    assert.are.equal("3", at(text, J.member(text, "\240\159\152\128"))) -- U+1F600 in UTF-8
    assert.are.equal("4", at(text, J.member(text, "\\u0041")))
    assert.is_nil(J.member(text, "A"))
    assert.are.equal("5", at(text, J.member(text, "sl/ash")))
    assert.are.equal("6", at(text, J.member(text, "t\tb")))
  end)

  it("takes the last of duplicate keys, as the decoder does", function()
    local text = '{"a": 1, "b": 2, "\\u0061": [3], "a": {"x": 4}}'
    assert.are.equal('{"x": 4}', at(text, J.member(text, "a")))
    assert.are.equal("2", at(text, J.member(text, "b")))
    assert.are.equal("null", at('{"a": 1, "a": null}', J.member('{"a": 1, "a": null}', "a")))
  end)

  it("gives nil alone for a missing member or a value that is not an object", function()
    for _, text in ipairs({ DOC, "{}", "[1, 2]", '"data"', "null", " 3 " }) do
      local s, msg = J.member(text, "data")
      assert.is_nil(s)
      assert.is_nil(msg)
    end
  end)
end)

describe("jsontext.elements", function()
  it("yields the span of each element of mixed values", function()
    local text = ' [ 1 , "two,]" , {"three": [3]}, [4, [5]], true, false, null, -6.0e1, "" ] '
    assert.are.same({ "1", '"two,]"', '{"three": [3]}', "[4, [5]]", "true", "false", "null", "-6.0e1", '""' },
      spans(text))
  end)

  it("yields nothing for an empty array", function()
    assert.are.same({}, spans("[]"))
    assert.are.same({}, spans(" [ \n ] "))
  end)

  it("walks an array inside the text", function()
    local text = '{"items": [{"id": 1}, {"id": 2}], "more": true}'
    assert.are.same({ '{"id": 1}', '{"id": 2}' }, spans(text, J.member(text, "items")))
  end)

  it("raises a clear error when the span is not an array", function()
    assert.has_error(function() J.elements('{"a": 1}') end,
      "jsontext.elements: expected an array at byte 1, found object")
    assert.has_error(function() J.elements("  ") end, "jsontext.elements: expected an array at byte 3, found nothing")
  end)

  it("checks the whole array before the loop starts", function()
    local yielded = 0
    local ok, err = pcall(function()
      for _ in J.elements("[1, 2, {]") do yielded = yielded + 1 end
    end)
    assert.is_false(ok)
    assert.matches("jsontext.elements: malformed JSON", err, 1, true)
    assert.are.equal(0, yielded)
  end)
end)

describe("jsontext.kind", function()
  it("names the value from its first byte after whitespace", function()
    local cases = { ["{}"] = "object", [" \n[1]"] = "array", ['"s"'] = "string", ["-1"] = "number",
      ["0.5"] = "number", ["9"] = "number", ["true"] = "true", ["\tfalse"] = "false", ["null"] = "null" }
    for text, kind in pairs(cases) do assert.are.equal(kind, J.kind(text)) end
  end)

  it("looks from start", function()
    assert.is_nil(J.kind(DOC, 15)) -- the colon
    assert.are.equal("array", J.kind(DOC, 16))
    assert.are.equal("string", J.kind('[1, "x"]', 4))
  end)

  it("gives nil when no value starts there", function()
    assert.is_nil(J.kind(""))
    assert.is_nil(J.kind("   "))
    assert.is_nil(J.kind(", 1"))
    assert.is_nil(J.kind("[1]", 4))
  end)
end)

describe("jsontext on malformed text", function()
  local BAD = {
    ["empty text"] = "",
    ["only whitespace"] = " \r\n\t",
    ["unterminated string"] = '{"a": "abc',
    ["string ending in a backslash"] = '"abc\\',
    ["unterminated array"] = "[1, 2",
    ["unterminated object"] = '{"a": {"b": 1}',
    ["missing value"] = '{"a": }',
    ["missing colon"] = '{"a" 1}',
    ["key that is no string"] = "{1: 2}",
    ["trailing comma"] = "[1, 2,]",
    ["mismatched closer"] = "[1}",
    ["trailing garbage"] = "[1] x",
    ["two values"] = "1 2",
    ["leading zero"] = "01",
    ["bare dot"] = "1.",
    ["bare minus"] = "-",
    ["cut literal"] = "[tru]",
    ["bad escape"] = '"a\\x"',
    ["short unicode escape"] = '"\\u12"',
    ["non-hex unicode escape"] = '["\\u12zz"]',
    ["raw control byte"] = '"a\1b"',
    ["raw NUL"] = '"a\0b"',
    ["lone closer"] = "]",
    ["deep unterminated nesting"] = ("["):rep(100000),
  }

  for name, text in pairs(BAD) do
    it("returns nil and a message, never an error: " .. name, function()
      local calls = {
        format = function() return J.format(text) end,
        pretty = function() return J.format(text, nil, nil, { indent = 2, color = true }) end,
        value_span = function() return J.value_span(text, 1) end,
        member = function() return J.member(text, "a") end,
      }
      for fname, call in pairs(calls) do
        local ok, v, msg = pcall(call)
        assert(ok, fname .. " raised: " .. tostring(v))
        if not (fname == "value_span" and v) then -- a value may start well even when more follows
          assert(v == nil, fname .. " gave a result for " .. name)
          assert.is_string(msg)
        end
      end
    end)
  end

  it("says what is wrong and where", function()
    assert.are.same({ nil, "malformed JSON: unterminated string at byte 7" }, { J.format('{"a": "abc') })
    assert.are.same({ nil, "malformed JSON: unterminated array at byte 1" }, { J.format("[1, 2") })
    assert.are.same({ nil, "malformed JSON: no JSON value at byte 1" }, { J.format("") })
    assert.are.same({ nil, "malformed JSON: unexpected data after the value at byte 5" }, { J.format("[1] x") })
    assert.are.same({ nil, "malformed JSON: unterminated object at byte 1" }, { J.member('{"a": 1', "a") })
  end)

  it("rejects garbage after the value inside a span", function()
    local text = '{"a": [1] x, "b": 2}'
    assert.is_nil(J.member(text, "b")) -- the whole object is malformed
    local s, msg = J.format(text, 7, 11)
    assert.is_nil(s)
    assert.are.equal("malformed JSON: unexpected data after the value at byte 11", msg)
    s, msg = J.member('{"a": 1} {', "a", 1, 10)
    assert.is_nil(s)
    assert.are.equal("malformed JSON: unexpected data after the value at byte 10", msg)
    assert.are.equal("[1]", compact(text, 7, 10))
  end)

  it("does not read past the end of a span", function()
    local text = '["abc", 12345, {"k": 1}]'
    assert.is_nil((J.format(text, 2, 4))) -- the string's closing quote is outside
    assert.is_nil((J.format(text, 9, 11))) -- so is the number's end
    assert.is_nil((J.format(text, 16, 22))) -- and the object's closer
    assert.is_nil((J.member(text, "k", 16, 22)))
    assert.are.equal("12345", compact(text, 9, 13))
  end)

  it("handles deep nesting without recursion", function()
    local deep = ("["):rep(100000) .. ("]"):rep(100000)
    assert.are.equal(deep, compact(deep))
    assert.are.equal(#deep, select(2, J.value_span(deep, 1)))
  end)
end)

describe("jsontext on a 2 MB array", function()
  local text, count
  setup(function()
    local parts, size = {}, 0
    count = 0
    while size < 2 * 1024 * 1024 do
      count = count + 1
      local part = ('{"id": %d, "name": "it\\u00e9m \\"%d\\" [x]", "tags": ["a", {}, []],\n  "v": %s, "n": null}')
        :format(count, count, count % 3 == 0 and "1.0e-3" or "-0")
      parts[count] = part
      size = size + #part + 3
    end
    text = "[ " .. table.concat(parts, ",\r\n ") .. " ]"
  end)

  it("formats it correctly", function()
    local flat = compact(text)
    local indented = pretty(text)
    local painted = assert(J.format(text, nil, nil, { indent = 2, color = true }))
    local n = 0
    for s, e in J.elements(text) do
      n = n + 1
      if n == count then assert.are.equal(count, tonumber(text:sub(s, e):match('"id": (%d+)'))) end
    end
    assert.are.equal(count, n)
    assert.are.equal(flat, compact(indented))
    assert.are.equal(flat, compact((painted:gsub("\27%[[%d;]*m", ""))))
    assert.are.equal('{"id":1,"name":"it\\u00e9m \\"1\\" [x]","tags":["a",{},[]],"v":-0,"n":null}',
      compact(text, J.elements(text)()))
  end)
end)
