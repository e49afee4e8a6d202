-- A 200 application/json answer whose paging information cannot be read is an error, never a
-- complete (empty or one-page) list: data that is not an array, a body without data, paging
-- fields of the wrong type, an empty cursor with more pages announced.
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("paging metadata", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end)

  local function serve(body, count)
    assert(sb:arm { path = "/api/resources", fault = "status", status = 200, body = body, count = count or 1 })
  end

  local function requests()
    return sb:requests { path = "/api/resources" }.count
  end

  local function protocol(err, code, message)
    assert.are.equal("protocol", err.kind)
    assert.are.equal(code, err.code)
    assert.are.equal(message, err.message)
    assert.are.equal(200, err.status)
    assert.are.equal("GET", err.method)
    assert.are.equal(sb.url .. "/resources?limit=5", err.url)
  end

  it("refuses an object in data with list paging meta", function()
    serve('{"data":{"a":1},"meta":{"cursor":null,"has_more":false}}')
    local items, err = client:all("/resources", { limit = 5 })
    assert.is_nil(items)
    protocol(err, "not_a_list", "expected a JSON array in the response's data, got an object")
  end)

  it("refuses a body without data", function()
    serve('{"meta":{"has_more":false}}')
    local items, err = client:all("/resources", { limit = 5 })
    assert.is_nil(items)
    protocol(err, "not_a_list", "expected a JSON array in the response's data, got an object")
  end)

  it("refuses page numbers given as strings, naming the field", function()
    serve('{"data":[{"id":1}],"meta":{"current_page":"1","last_page":3,"per_page":1,"total":3}}')
    local items, err = client:all("/resources", { limit = 5 })
    assert.is_nil(items)
    protocol(err, "invalid_meta", "meta.current_page is a string, expected an integer")
    assert.are.equal("1", err.body.meta.current_page) -- the raw fields stay readable
    serve('{"data":[{"id":1}],"meta":{"current_page":1,"last_page":"3","per_page":1,"total":3}}')
    items, err = client:all("/resources", { limit = 5 })
    assert.is_nil(items)
    protocol(err, "invalid_meta", "meta.last_page is a string, expected an integer")
    assert.are.equal(2, requests())
  end)

  it("refuses has_more as a string, whichever way it reads", function()
    for _, v in ipairs { '"false"', '"true"' } do
      serve('{"data":[{"id":1}],"meta":{"cursor":"abc","has_more":' .. v .. ',"total":9}}')
      local items, err = client:all("/resources", { limit = 5 })
      assert.is_nil(items)
      protocol(err, "invalid_meta", "meta.has_more is a string, expected true or false")
      assert.are.equal(v:sub(2, -2), err.body.meta.has_more)
    end
  end)

  it("refuses wrongly typed totals, cursors and next links", function()
    local cases = {
      { '{"data":[],"meta":{"cursor":null,"has_more":false,"total":8.5}}',
        "meta.total is a number that is not an integer, expected an integer" },
      { '{"data":[],"meta":{"cursor":12,"has_more":true}}', "meta.cursor is an integer, expected a string" },
      { '{"data":[],"meta":{"current_page":1,"per_page":true}}', "meta.per_page is a boolean, expected an integer" },
      { '{"data":[],"links":{"next":5},"meta":{"current_page":1}}', "links.next is an integer, expected a URL string" },
    }
    for _, case in ipairs(cases) do
      serve(case[1])
      local items, err = client:all("/resources", { limit = 5 })
      assert.is_nil(items)
      assert.are.equal("invalid_meta", err.code)
      assert.are.equal(case[2], err.message)
    end
  end)

  it("gives the same error to a plain get, with the body readable", function()
    serve('{"data":[{"id":1}],"meta":{"current_page":"1","last_page":3}}')
    local data, err = client:get("/resources", { limit = 5 })
    assert.is_nil(data)
    protocol(err, "invalid_meta", "meta.current_page is a string, expected an integer")
    assert.are.equal(1, err.body.data[1].id)
  end)

  it("stops at once on an empty cursor with more pages announced", function()
    serve('{"data":[{"id":1}],"meta":{"cursor":"","has_more":true}}')
    local items, err = client:all("/resources", { limit = 5 })
    assert.is_nil(items)
    protocol(err, "missing_cursor", "the page says has_more but gives an empty cursor")
    assert.are.equal(1, requests())
  end)

  it("still reads an empty cursor without has_more as the end", function()
    serve('{"data":[{"id":1}],"meta":{"cursor":""}}')
    local items = assert(client:all("/resources", { limit = 5 }))
    assert.are.equal(1, #items)
  end)
end)
