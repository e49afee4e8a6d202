-- client:resource(path): CRUD sugar with ids percent-encoded into the path.
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("flextell.Resource", function()
  local sb, client, customers
  sandbox.fixture(function(s, c)
    sb, client = s, c
    customers = client:resource("/v1/customers/")
  end)

  it("lists with the query and paging meta", function()
    local page, meta = customers:list { per_page = 5 }
    assert.are.equal(5, #page)
    assert.are.equal(9, meta.last_page)
  end)

  it("creates, reads, updates, modifies and deletes", function()
    local created, _, res = customers:create { first_name = "Ada", email = "ada@example.com" }
    assert.are.equal(201, res.status)
    assert.are.equal(46, created.id)
    assert.are.equal("Ada", customers:get(46).first_name)
    local updated = customers:update(46, { first_name = "Augusta", last_name = "King", email = "ada@example.com" })
    assert.are.equal("Augusta", updated.first_name)
    local modified = customers:modify(46, { phone = "+44-1" })
    assert.are.equal("Augusta", modified.first_name)
    assert.are.equal("+44-1", modified.phone)
    assert.are.equal(true, customers:delete(46))
    local gone, err = customers:get(46)
    assert.is_nil(gone)
    assert.are.equal(404, err.status)
    assert.are.equal("Customer 46 not found", err.message)
  end)

  it("walks every item with each and all", function()
    local n = 0
    for _ in customers:each { per_page = 20 } do n = n + 1 end
    assert.are.equal(45, n)
    assert.are.equal(45, #assert(customers:all { per_page = 50 }))
    local pager = customers:pager { per_page = 40 }
    assert.are.equal(40, #pager:next())
    local sizes = {}
    for page in customers:pages { per_page = 30 } do sizes[#sizes + 1] = #page end
    assert.are.same({ 30, 15 }, sizes)
  end)

  it("works with string ids of the cursor-style collection", function()
    local resources = client:resource("/resources")
    assert.are.equal("Resource 7", resources:get("res_007").name)
    local _, err = resources:get("res_999")
    assert.are.equal("not_found", err.code)
  end)

  it("percent-encodes ids so they cannot change the path", function()
    local echo = client:resource("/_echo/items")
    assert.are.equal("/api/_echo/items/a%2Fb%20c", echo:get("a/b c").uri)
    assert.are.equal("/api/_echo/items/%3F%23x", echo:get("?#x").uri)
    assert.are.equal("/api/_echo/items/..%2F..%2Fadmin", echo:delete("../../admin").uri)
    assert.are.equal("/api/_echo/items/42", echo:get(42).uri)
    assert.are.equal("/api/_echo/items/%C3%A9", echo:get("\195\169").uri)
  end)

  it("refuses ids that name no item before sending anything", function()
    for _, id in ipairs { "", ".", ".." } do
      local data, err = customers:get(id)
      assert.is_nil(data)
      assert.are.equal("usage", err.kind)
      assert.are.equal("invalid_id", err.code)
    end
    assert.are.equal(0, sb:requests {}.count)
  end)

  it("raises on a resource path that is not a string", function()
    assert.has_error(function() client:resource(5) end,
      "bad argument #1 to 'resource' (non-empty string expected, got 5)")
  end)
end)
