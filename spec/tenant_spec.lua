-- X-Tenant: the tenant option, :with{tenant=}, per-call tenants and :tenants().
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("tenancy", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end)

  it("lists the account's tenants without sending X-Tenant", function()
    local t7 = client:with { tenant = 7 }
    local tenants = assert(t7:tenants())
    assert.are.same({ { id = 1, name = "Flextell Demo Clinic" }, { id = 7, name = "Seven Oaks Spa" },
      { id = 42, name = "Answer Dental" } }, tenants)
    local log = sb:requests { path = "/api/v1/account/tenants" }
    assert.are.equal(1, log.count)
    assert.is_nil(log.requests[1].tenant)
  end)

  it("scopes data to the tenant of a derived client", function()
    local t7, t42 = client:with { tenant = 7 }, client:with { tenant = 42 }
    local made = assert(t7:post("/v1/customers", { first_name = "Only", email = "only7@example.com" }))
    assert.are.equal("Only", assert(t7:get("/v1/customers/" .. made.id)).first_name)
    local _, err = t42:get("/v1/customers/" .. made.id)
    assert.are.equal(404, err.status)
    local _, err1 = client:get("/v1/customers/" .. made.id)
    assert.are.equal(404, err1.status)
  end)

  it("shares connections and the token with the derived clients", function()
    local t7 = client:with { tenant = 7 }
    client:close()
    local data = assert(t7:get("/v1/customers/1"))
    assert.are.equal(1, data.id)
    assert.are.equal(7, sb:requests { path = "/api/v1/customers/1" }.requests[1].tenant)
  end)

  it("returns the API's error when a required tenant is missing", function()
    local _, err = client:get("/v1/appointments/calendar", { from = "2025-01-01", to = "2025-01-31" })
    assert.are.equal("http", err.kind)
    assert.are.equal(400, err.status)
    assert.are.equal("invalid_request", err.code)
    assert.are.equal("The X-Tenant header is required.", err.message)
    local data = client:get("/v1/appointments/calendar", { from = "2025-01-01", to = "2025-01-31" }, { tenant = 7 })
    assert.are.equal("table", type(data))
  end)

  it("returns forbidden for a tenant the account does not have", function()
    local _, err = client:with { tenant = 5 }:get("/v1/customers")
    assert.are.equal(403, err.status)
    assert.are.equal("forbidden", err.code)
  end)
end)
