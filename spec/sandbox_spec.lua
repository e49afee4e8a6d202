-- The sandbox server itself, checked through the curl CLI (not the library under test).
local sandbox = require "spec.helpers.sandbox"
local cjson = require("cjson.safe").new()

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function integers(v)
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = integers(x) end
  elseif type(v) == "number" and math.tointeger and v == math.floor(v) and math.abs(v) < 2^53 then
    return math.tointeger(v)
  end
  return v
end

-- A reaped-late zombie (the sandbox's init may not reap daemons at once) counts as gone.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local stat = f:read("*a")
  f:close()
  return stat:match("%) (%a)") ~= "Z"
end

local sb

-- One HTTP exchange with the curl CLI: { status, headers (lower-case), body, json, curl_exit }.
-- opts: token (false: none), headers, body (string), json (table), cacert, base, raw_url, form
local function call(method, path, opts)
  opts = opts or {}
  local hfile, bfile = os.tmpname(), os.tmpname()
  local cmd = { "curl -sS --noproxy '*' --max-time 20 -X", q(method), "-D", q(hfile), "-o", q(bfile),
    "-w '%{http_code}'" }
  if opts.token ~= false then
    cmd[#cmd + 1] = "-H " .. q("Authorization: Bearer " .. (opts.token or sb.token))
  end
  for name, value in pairs(opts.headers or {}) do
    cmd[#cmd + 1] = "-H " .. q(name .. ": " .. value)
  end
  if opts.json ~= nil then
    cmd[#cmd + 1] = "-H 'Content-Type: application/json' --data-binary " .. q(cjson.encode(opts.json))
  elseif opts.body ~= nil then
    cmd[#cmd + 1] = "--data-binary " .. q(opts.body)
  end
  for _, f in ipairs(opts.form or {}) do
    cmd[#cmd + 1] = "-F " .. q(f)
  end
  if opts.cacert then cmd[#cmd + 1] = "--cacert " .. q(opts.cacert) end
  cmd[#cmd + 1] = "--globoff " .. q(opts.raw_url or ((opts.base or sb.url) .. path))
  local out = capture(table.concat(cmd, " ") .. " 2>/dev/null; echo \" $?\"")
  local code, exit = out:match("^(%d*) (%d+)%s*$")
  local res = { status = tonumber(code), curl_exit = tonumber(exit), headers = {} }
  local head = read(hfile)
  for line in head:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then res.headers[k:lower()] = v end
  end
  res.body = read(bfile)
  res.json = integers(cjson.decode(res.body))
  os.remove(hfile)
  os.remove(bfile)
  return res
end

local function get(path, opts) return call("GET", path, opts) end

describe("flextell.sandbox", function()
  setup(function()
    sb = sandbox.start()
  end)

  teardown(function()
    sb:stop()
  end)

  before_each(function()
    assert(sb:reset())
  end)

  describe("launcher", function()
    it("returns a handle with loopback URLs, the CA and the fixed OAuth client", function()
      assert.equal("http://127.0.0.1:" .. sb.port .. "/api", sb.url)
      assert.equal("https://127.0.0.1:" .. sb.tls_port .. "/api", sb.https_url)
      assert.equal("http://127.0.0.1:" .. sb.port, sb.origin)
      assert.is_true(sb.port >= 20000 and sb.port <= 60999)
      assert.is_true(sb.tls_port >= 20000 and sb.tls_port <= 60999)
      assert.equal(sb.prefix .. "/tls/ca.pem", sb.ca_file)
      assert.equal("sandbox-token", sb.token)
      assert.equal("sandbox-client", sb.client_id)
      assert.equal("sandbox-secret", sb.client_secret)
      assert.equal("http://127.0.0.1/callback", sb.redirect_uri)
    end)

    it("serves HTTPS that verifies against the generated CA for 127.0.0.1 and localhost", function()
      local res = get("/v1/account/tenants", { base = sb.https_url, cacert = sb.ca_file })
      assert.equal(200, res.status)
      assert.equal(3, #res.json.data)
      res = get("", { raw_url = "https://localhost:" .. sb.tls_port .. "/api/v1/account/tenants",
        cacert = sb.ca_file })
      assert.equal(200, res.status)
    end)

    it("fails TLS verification without the CA", function()
      local res = get("/v1/account/tenants", { base = sb.https_url })
      assert.equal(60, res.curl_exit)
    end)

    it("uses an EC P-256 server certificate with the loopback names", function()
      local text = capture("openssl x509 -noout -text -in " .. q(sb.prefix .. "/tls/server.pem"))
      assert.truthy(text:find("prime256v1", 1, true))
      assert.truthy(text:find("IP Address:127.0.0.1", 1, true))
      assert.truthy(text:find("IP Address:0:0:0:0:0:0:0:1", 1, true))
      assert.truthy(text:find("DNS:localhost", 1, true))
    end)

    it("stops nginx, leaves no process and removes its prefix; stop is idempotent", function()
      local other = assert(sandbox.launcher.start({ tls = false }))
      assert.is_nil(other.tls_port)
      assert.is_nil(other.https_url)
      local master = tonumber(read(other.prefix .. "/logs/nginx.pid"))
      local worker = tonumber(read(other.prefix .. "/logs/worker.pid"))
      assert.is_true(alive(master))
      assert.is_true(alive(worker))
      assert.is_true(other:stop())
      assert.is_false(alive(master))
      assert.is_false(alive(worker))
      assert.is_nil(io.open(other.prefix .. "/nginx.conf"))
      assert.is_true(other:stop())
      local _, err = other:control("GET", "/_sandbox/health")
      assert.equal("the sandbox is stopped", err)
    end)

    it("uses a given prefix and keeps it after stop", function()
      local dir = os.tmpname()
      os.remove(dir)
      local other = assert(sandbox.launcher.start({ tls = false, prefix = dir }))
      assert.equal(dir, other.prefix)
      assert.truthy(read(dir .. "/nginx.conf"):find("lua_package_path", 1, true))
      other:stop()
      assert.is_nil(io.open(dir .. "/logs/nginx.pid"))
      assert.truthy(io.open(dir .. "/nginx.conf"))
      os.execute("rm -rf " .. q(dir))
    end)

    it("raises on an unknown option", function()
      assert.has_error(function() sandbox.launcher.start({ colour = "blue" }) end,
        "flextell.sandbox.start: unknown option 'colour'")
    end)
  end)

  describe("authentication", function()
    it("answers 401 unauthorized without an Authorization header", function()
      local res = get("/v1/customers", { token = false })
      assert.equal(401, res.status)
      assert.same({ error = "unauthorized",
        message = "Authentication required: send an Authorization: Bearer token." }, res.json)
      assert.equal('Bearer realm="flextell"', res.headers["www-authenticate"])
      assert.equal("application/json", res.headers["content-type"])
    end)

    it("answers 401 invalid_token for an unknown token", function()
      local res = get("/v1/customers", { token = "nope" })
      assert.equal(401, res.status)
      assert.same({ error = "invalid_token", message = "The access token is invalid." }, res.json)
    end)

    it("answers 401 invalid_token for a malformed header", function()
      local res = get("/v1/customers", { token = false, headers = { Authorization = "Basic abc" } })
      assert.equal(401, res.status)
      assert.equal("invalid_token", res.json.error)
    end)

    it("accepts every static token given at start", function()
      local res = get("/v1/customers/1")
      assert.equal(200, res.status)
    end)

    it("accepts tokens set through the control API", function()
      assert.same({ "t-one", "t-two" }, sb:config({ tokens = { "t-one", "t-two" } }).tokens)
      assert.equal(200, get("/v1/customers/1", { token = "t-two" }).status)
      assert.equal(401, get("/v1/customers/1").status)
    end)
  end)

  describe("responses", function()
    it("carry JSON, a unique X-Request-Id and rate-limit headers", function()
      local a, b = get("/v1/customers/1"), get("/v1/customers/1")
      assert.equal("application/json", a.headers["content-type"])
      assert.truthy(a.headers["x-request-id"]:match("^req_%x+$"))
      assert.are_not.equal(a.headers["x-request-id"], b.headers["x-request-id"])
      assert.equal("1000", a.headers["x-ratelimit-limit"])
      assert.equal("999", a.headers["x-ratelimit-remaining"])
      assert.equal("998", b.headers["x-ratelimit-remaining"])
      local reset = tonumber(a.headers["x-ratelimit-reset"])
      assert.is_true(reset > os.time() + 50 and reset <= os.time() + 61)
    end)

    it("answer 404 not_found for an unknown endpoint and 405 for a wrong method", function()
      local res = get("/v1/nothing")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "No such endpoint: GET /api/v1/nothing." }, res.json)
      res = call("POST", "/v1/account/tenants")
      assert.equal(405, res.status)
      assert.equal("method_not_allowed", res.json.error)
      assert.equal("GET", res.headers["allow"])
    end)
  end)

  describe("rate limits", function()
    it("refuse calls with 429 and Retry-After once the window's budget is spent", function()
      sb:config({ rate_limit = 2, rate_window = 30 })
      assert.equal("1", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      assert.equal("0", get("/v1/customers/1").headers["x-ratelimit-remaining"])
      local res = get("/v1/customers/1")
      assert.equal(429, res.status)
      assert.equal("rate_limit_exceeded", res.json.error)
      assert.equal("Rate limit of 2 requests per 30 seconds exceeded; retry in " ..
        res.headers["retry-after"] .. " seconds.", res.json.message)
      local wait = tonumber(res.headers["retry-after"])
      assert.is_true(wait >= 29 and wait <= 30)
      assert.equal("0", res.headers["x-ratelimit-remaining"])
      assert.equal("2", res.headers["x-ratelimit-limit"])
    end)

    it("count per token", function()
      sb:config({ rate_limit = 1, tokens = { "a", "b" } })
      assert.equal(200, get("/v1/customers/1", { token = "a" }).status)
      assert.equal(429, get("/v1/customers/1", { token = "a" }).status)
      assert.equal(200, get("/v1/customers/1", { token = "b" }).status)
    end)

    it("start again after the window", function()
      sb:config({ rate_limit = 1, rate_window = 1 })
      assert.equal(200, get("/v1/customers/1").status)
      assert.equal(429, get("/v1/customers/1").status)
      os.execute("sleep 2")
      assert.equal(200, get("/v1/customers/1").status)
    end)
  end)

  describe("/api/resources (cursor style)", function()
    it("lists 20 items by default with an opaque cursor", function()
      local res = get("/resources")
      assert.equal(200, res.status)
      assert.equal(20, #res.json.data)
      assert.same({ id = "res_001", name = "Resource 1", status = "active", description = cjson.null,
        created_at = "2025-01-06T09:01:00Z", updated_at = "2025-01-07T09:01:00Z" }, res.json.data[1])
      assert.equal(84, res.json.meta.total)
      assert.is_true(res.json.meta.has_more)
      assert.equal("string", type(res.json.meta.cursor))
      assert.is_nil(tonumber(res.json.meta.cursor))
    end)

    it("walks all 84 items with limit 25 and ends with a null cursor", function()
      local ids, cursor, pages = {}, nil, 0
      repeat
        local path = "/resources?limit=25"
        if cursor then
          path = path .. "&cursor=" .. cursor:gsub("[^%w]", function(c) return string.format("%%%02X", c:byte()) end)
        end
        local res = get(path)
        assert.equal(200, res.status)
        pages = pages + 1
        for _, item in ipairs(res.json.data) do ids[#ids + 1] = item.id end
        cursor = res.json.meta.cursor
        assert.equal(cursor ~= cjson.null, res.json.meta.has_more)
      until cursor == cjson.null
      assert.equal(4, pages)
      assert.equal(84, #ids)
      assert.equal("res_084", ids[84])
    end)

    it("refuses a bad limit and a garbled cursor with 400 invalid_request", function()
      for _, v in ipairs({ "0", "101", "abc", "1.5", "-1" }) do
        local res = get("/resources?limit=" .. v)
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request",
          message = "The limit parameter must be an integer between 1 and 100." }, res.json)
      end
      for _, c in ipairs({ "20", "garbage", "bzIwLjAwMDAwMDAw" }) do
        local res = get("/resources?cursor=" .. c)
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = "The cursor parameter is not a valid cursor." },
          res.json)
      end
    end)

    it("creates, reads, replaces, modifies and deletes an item", function()
      local res = call("POST", "/resources", { json = { name = "New one" } })
      assert.equal(201, res.status)
      local item = res.json.data
      assert.equal("res_085", item.id)
      assert.equal("New one", item.name)
      assert.equal("active", item.status)
      assert.equal(item.created_at, item.updated_at)
      assert.truthy(item.created_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
      assert.same(item, get("/resources/res_085").json.data)
      res = call("PUT", "/resources/res_085", { json = { name = "Renamed", status = "archived" } })
      assert.equal(200, res.status)
      assert.equal("archived", res.json.data.status)
      res = call("PATCH", "/resources/res_085", { json = { description = "patched" } })
      assert.equal("Renamed", res.json.data.name)
      assert.equal("patched", res.json.data.description)
      res = call("DELETE", "/resources/res_085")
      assert.equal(204, res.status)
      assert.equal("", res.body)
      res = get("/resources/res_085")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "Resource res_085 not found" }, res.json)
      assert.equal(84, get("/resources").json.meta.total)
    end)

    it("answers 422 validation_error without a name", function()
      local res = call("POST", "/resources", { json = { status = "active" } })
      assert.equal(422, res.status)
      assert.same({ error = "validation_error", message = "The given data was invalid.",
        errors = { name = { "The name field is required." } } }, res.json)
    end)
  end)

  describe("/api/v1 (page style)", function()
    it("lists customers with Laravel links and meta", function()
      local res = get("/v1/customers?per_page=10&page=2")
      assert.equal(200, res.status)
      local body = res.json
      assert.equal(10, #body.data)
      assert.equal(11, body.data[1].id)
      local base = sb.url .. "/v1/customers"
      assert.same({ first = base .. "?page=1&per_page=10", last = base .. "?page=5&per_page=10",
        prev = base .. "?page=1&per_page=10", next = base .. "?page=3&per_page=10" }, body.links)
      local meta = body.meta
      assert.equal(2, meta.current_page)
      assert.equal(11, meta.from)
      assert.equal(20, meta.to)
      assert.equal(5, meta.last_page)
      assert.equal(10, meta.per_page)
      assert.equal(45, meta.total)
      assert.equal(base, meta.path)
      assert.equal(7, #meta.links)
      assert.same({ url = base .. "?page=1&per_page=10", label = "&laquo; Previous", active = false },
        meta.links[1])
      assert.same({ url = base .. "?page=2&per_page=10", label = "2", active = true }, meta.links[3])
    end)

    it("defaults to 15 per page and ends with a null next link", function()
      local res = get("/v1/customers?page=3")
      assert.equal(15, res.json.meta.per_page)
      assert.equal(15, #res.json.data)
      assert.equal(cjson.null, res.json.links.next)
      assert.equal(3, res.json.meta.last_page)
    end)

    it("answers an empty page past the end", function()
      local res = get("/v1/customers?page=9")
      assert.equal(200, res.status)
      assert.same({}, res.json.data)
      assert.equal("[]", res.body:match('"data":(%[%])'))
      assert.equal(cjson.null, res.json.meta.from)
      assert.equal(cjson.null, res.json.meta.to)
    end)

    it("refuses bad page and per_page values with 400 invalid_request", function()
      local cases = {
        { "page=0", "The page parameter must be an integer >= 1." },
        { "page=x", "The page parameter must be an integer >= 1." },
        { "per_page=0", "The per_page parameter must be an integer between 1 and 100." },
        { "per_page=101", "The per_page parameter must be an integer between 1 and 100." },
        { "sort_order=up", "The sort_order parameter must be one of: asc, desc." },
        { "trashed=all", "The trashed parameter must be one of: with, only." },
        { "sort_by=password", "The sort_by parameter must be one of the resource's fields." },
      }
      for _, c in ipairs(cases) do
        local res = get("/v1/customers?" .. c[1])
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = c[2] }, res.json)
      end
    end)

    it("filters with search and sorts with sort_by and sort_order", function()
      local res = get("/v1/customers?search=ADA&per_page=100")
      assert.equal(3, res.json.meta.total)
      for _, c in ipairs(res.json.data) do assert.equal("Ada", c.first_name) end
      res = get("/v1/products?sort_by=price&sort_order=desc&per_page=100")
      local prev = math.huge
      for _, p in ipairs(res.json.data) do
        assert.is_true(p.price <= prev)
        prev = p.price
      end
    end)

    it("returns customers in the data envelope with seed values", function()
      local res = get("/v1/customers/2")
      assert.equal(200, res.status)
      assert.same({ data = { id = 2, first_name = "Grace", last_name = "Jones",
        email = "grace.jones2@example.com", phone = "+1-555-0102", tags = {}, notes = cjson.null,
        created_at = "2025-01-06T11:00:00Z", updated_at = "2025-01-08T11:00:00Z",
        deleted_at = cjson.null } }, res.json)
      assert.truthy(res.body:find('"tags":[]', 1, true))
    end)

    it("returns products in the success envelope", function()
      local res = get("/v1/products/1")
      assert.equal(200, res.status)
      assert.equal("Product retrieved successfully.", res.json.success)
      assert.equal(1, res.json.data.id)
      assert.equal("Hydrating Serum 1", res.json.data.name)
      for _, name in ipairs({ "sales", "appointments", "rooms", "treatments" }) do
        assert.truthy(get("/v1/" .. name .. "/1", { headers = { ["X-Tenant"] = "1" } }).json.success)
      end
      for _, name in ipairs({ "users", "conversations" }) do
        local body = get("/v1/" .. name .. "/1").json
        assert.is_nil(body.success)
        assert.equal(1, body.data.id)
      end
    end)

    it("has the documented seed counts", function()
      local counts = { customers = 45, products = 30, conversations = 12, appointments = 20, sales = 10,
        users = 5, rooms = 4, treatments = 8, invoices = 10 }
      for name, n in pairs(counts) do
        assert.equal(n, get("/v1/" .. name).json.meta.total, name)
      end
    end)

    it("answers 404 not_found with the resource name", function()
      local res = get("/v1/customers/999")
      assert.equal(404, res.status)
      assert.same({ error = "not_found", message = "Customer 999 not found" }, res.json)
      res = get("/v1/customers/a%2Fb")
      assert.same({ error = "not_found", message = "Customer a/b not found" }, res.json)
    end)

    it("creates a customer (201) with a new integer id and keeps it", function()
      local res = call("POST", "/v1/customers", { body = '{"first_name":"Linus","email":"linus@example.com","tags":[]}',
        headers = { ["Content-Type"] = "application/json" } })
      assert.equal(201, res.status)
      local c = res.json.data
      assert.equal(46, c.id)
      assert.equal("Linus", c.first_name)
      assert.equal(cjson.null, c.last_name)
      assert.equal(cjson.null, c.deleted_at)
      assert.truthy(res.body:find('"tags":[]', 1, true))
      assert.same(c, get("/v1/customers/46").json.data)
      assert.equal(46, get("/v1/customers").json.meta.total)
    end)

    it("validates with 422 validation_error and field messages", function()
      local res = call("POST", "/v1/customers", { json = { email = "not-an-email", tags = "x" } })
      assert.equal(422, res.status)
      assert.same({ error = "validation_error", message = "The given data was invalid.", errors = {
        first_name = { "The first name field is required." },
        email = { "The email must be a valid email address." },
        tags = { "The tags must be an array." },
      } }, res.json)
      res = call("POST", "/v1/products", { json = { name = "P", price = -1 } })
      assert.same({ price = { "The price must be at least 0." } }, res.json.errors)
      res = call("POST", "/v1/products", { json = { name = "P", price = "9" } })
      assert.same({ price = { "The price must be a number." } }, res.json.errors)
    end)

    it("answers 409 conflict for a duplicate customer email", function()
      local res = call("POST", "/v1/customers", { json = { first_name = "X", email = "ADA.KNUTH1@example.com" } })
      assert.equal(409, res.status)
      assert.same({ error = "conflict", message = "A customer with this email already exists." }, res.json)
    end)

    it("refuses a body that is not a JSON object with 400 invalid_request", function()
      for _, body in ipairs({ "{nope", "[1,2]", "\"text\"" }) do
        local res = call("POST", "/v1/customers", { body = body, headers = { ["Content-Type"] = "application/json" } })
        assert.equal(400, res.status)
        assert.same({ error = "invalid_request", message = "The request body must be a JSON object." }, res.json)
      end
    end)

    it("replaces with PUT and merges with PATCH", function()
      local res = call("PUT", "/v1/customers/1", { json = { first_name = "Ada", email = "ada@example.com" } })
      assert.equal(200, res.status)
      assert.equal("ada@example.com", res.json.data.email)
      assert.equal(cjson.null, res.json.data.last_name)
      assert.equal(cjson.null, res.json.data.phone)
      assert.equal("2025-01-06T10:00:00Z", res.json.data.created_at)
      res = call("PATCH", "/v1/customers/2", { json = { last_name = "Hopper" } })
      assert.equal(200, res.status)
      assert.equal("Grace", res.json.data.first_name)
      assert.equal("Hopper", res.json.data.last_name)
      res = call("PUT", "/v1/customers/3", { json = { last_name = "Only" } })
      assert.equal(422, res.status)
      res = call("PATCH", "/v1/customers/3", { json = { first_name = cjson.null } })
      assert.same({ first_name = { "The first name field is required." } }, res.json.errors)
      res = call("PATCH", "/v1/products/1", { json = { price = 12.5 } })
      assert.equal("Product updated successfully.", res.json.success)
      assert.equal(12.5, res.json.data.price)
    end)

    it("soft deletes with 204 and shows deleted records with trashed", function()
      local res = call("DELETE", "/v1/customers/5")
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.equal(404, get("/v1/customers/5").status)
      assert.equal(44, get("/v1/customers").json.meta.total)
      res = get("/v1/customers?trashed=only")
      assert.equal(1, res.json.meta.total)
      assert.equal(5, res.json.data[1].id)
      assert.truthy(res.json.data[1].deleted_at:match("^%d%d%d%d%-"))
      assert.equal(45, get("/v1/customers?trashed=with").json.meta.total)
    end)

    it("serves customer notes and files", function()
      local res = get("/v1/customers/1/notes")
      assert.equal(2, res.json.meta.total)
      res = call("POST", "/v1/customers/1/notes", { json = { body = "Called back" } })
      assert.equal(201, res.status)
      assert.equal(1, res.json.data.customer_id)
      assert.equal("Called back", res.json.data.body)
      assert.equal(3, get("/v1/customers/1/notes").json.meta.total)
      assert.equal(2, get("/v1/customers/1/files").json.meta.total)
    end)

    it("serves conversation messages", function()
      local res = get("/v1/conversations/2/messages")
      assert.equal(3, res.json.meta.total)
      assert.equal("Message 1 of conversation 2", res.json.data[1].message)
      res = call("POST", "/v1/conversations/2/messages", { json = { message = "Hello" } })
      assert.equal(201, res.status)
      local id = res.json.data.id
      assert.equal(37, id)
      assert.equal("outbound", res.json.data.direction)
      res = call("PUT", "/v1/conversations/2/messages/" .. id, { json = { message = "Edited" } })
      assert.equal("Edited", res.json.data.message)
      assert.equal(204, call("DELETE", "/v1/conversations/2/messages/" .. id).status)
      assert.equal(404, call("PUT", "/v1/conversations/3/messages/1", { json = { message = "x" } }).status)
    end)

    it("enables and disables the conversation agent", function()
      local res = call("POST", "/v1/conversations/2/agent/enable")
      assert.same({ success = "Agent enabled successfully.",
        data = { message = "The AI agent is enabled for conversation 2." } }, res.json)
      assert.is_true(get("/v1/conversations/2/agent").json.data.enabled)
      res = call("POST", "/v1/conversations/2/agent/disable", { json = { duration_minutes = 30 } })
      assert.same({ success = "Agent disabled successfully.",
        data = { message = "The AI agent is disabled for conversation 2 for 30 minutes." } }, res.json)
      assert.is_false(get("/v1/conversations/2/agent").json.data.enabled)
    end)

    it("cancels an invoice with a bare message", function()
      local res = call("POST", "/v1/invoices/3/cancel")
      assert.equal(200, res.status)
      assert.same({ message = "Invoice 3 cancelled." }, res.json)
      assert.equal(409, call("POST", "/v1/invoices/3/cancel").status)
      assert.same({ message = "Invoice 3 cancellation reverted." }, call("POST", "/v1/invoices/3/revert-cancel").json)
    end)

    it("accepts multipart uploads and echoes the file's size and digests", function()
      local file = os.tmpname()
      local f = assert(io.open(file, "wb"))
      f:write("hello upload\n")
      f:close()
      local res = call("POST", "/v1/files", { form = { "file=@" .. file .. ";filename=a b.txt;type=text/plain",
        "customer_id=3" } })
      assert.equal(201, res.status)
      local d = res.json.data
      assert.equal("a b.txt", d.filename)
      assert.equal(13, d.size)
      assert.equal("text/plain", d.content_type)
      assert.equal(3, d.customer_id)
      assert.equal(capture("sha256sum " .. q(file)):match("^%x+"), d.sha256)
      assert.equal(capture("md5sum " .. q(file)):match("^%x+"), d.md5)
      res = call("POST", "/v1/conversations/1/messages/media", { form = { "file=@" .. file, "message=Look" } })
      assert.equal(201, res.status)
      assert.equal("media", res.json.data.type)
      assert.equal("Look", res.json.data.message)
      assert.equal(13, res.json.data.media.size)
      res = call("POST", "/v1/files", { form = { "note=x" } })
      assert.equal(422, res.status)
      assert.same({ file = { "The file field is required." } }, res.json.errors)
      os.remove(file)
    end)
  end)

  describe("tenants", function()
    it("lists the account's tenants without X-Tenant", function()
      local res = get("/v1/account/tenants")
      assert.same({ data = { { id = 1, name = "Flextell Demo Clinic" }, { id = 7, name = "Seven Oaks Spa" },
        { id = 42, name = "Answer Dental" } } }, res.json)
    end)

    it("refuses a non-integer X-Tenant with 400 and an unknown one with 403", function()
      local res = get("/v1/customers", { headers = { ["X-Tenant"] = "abc" } })
      assert.equal(400, res.status)
      assert.same({ error = "invalid_request", message = "The X-Tenant header must be an integer tenant id." },
        res.json)
      res = get("/v1/customers", { headers = { ["X-Tenant"] = "99" } })
      assert.equal(403, res.status)
      assert.same({ error = "forbidden", message = "You do not have access to tenant 99." }, res.json)
    end)

    it("requires X-Tenant where the reference does", function()
      for _, path in ipairs({ "/v1/tags", "/v1/stocks/movements", "/v1/sales/1", "/v1/appointments/calendar",
        "/v1/roles/1" }) do
        local res = get(path)
        assert.equal(400, res.status, path)
        assert.same({ error = "invalid_request", message = "The X-Tenant header is required." }, res.json)
        assert.equal(200, get(path, { headers = { ["X-Tenant"] = "7" } }).status, path)
      end
      assert.equal(200, get("/v1/sales").status)
    end)

    it("keeps each tenant's data apart; no header is tenant 1", function()
      local res = call("POST", "/v1/customers", { json = { first_name = "Seven", email = "s@example.com" },
        headers = { ["X-Tenant"] = "7" } })
      assert.equal(46, res.json.data.id)
      assert.equal(200, get("/v1/customers/46", { headers = { ["X-Tenant"] = "7" } }).status)
      assert.equal(404, get("/v1/customers/46", { headers = { ["X-Tenant"] = "42" } }).status)
      assert.equal(404, get("/v1/customers/46").status)
      call("POST", "/v1/customers", { json = { first_name = "One", email = "one@example.com" } })
      assert.equal("One", get("/v1/customers/46", { headers = { ["X-Tenant"] = "1" } }).json.data.first_name)
    end)

    it("answers the calendar as a plain list between from and to", function()
      local res = get("/v1/appointments/calendar?from=2025-02-06&to=2025-02-07", { headers = { ["X-Tenant"] = "1" } })
      assert.equal(200, res.status)
      assert.is_nil(res.json.meta)
      assert.equal(4, #res.json.data)
      for _, a in ipairs(res.json.data) do
        assert.truthy(a.starts_at:match("^2025%-02%-0[67]"))
      end
    end)

    it("records stock movements under a tenant", function()
      local t = { ["X-Tenant"] = "7" }
      local res = call("POST", "/v1/stocks/entry", { json = { product_id = 2, quantity = 5 }, headers = t })
      assert.equal(201, res.status)
      assert.equal("Stock entry recorded successfully.", res.json.success)
      assert.equal("entry", res.json.data.type)
      assert.equal(11, get("/v1/products/2", { headers = t }).json.data.stock)
      assert.equal(1, get("/v1/stocks/movements", { headers = t }).json.meta.total)
    end)
  end)

  describe("/api/_echo", function()
    it("returns the request exactly as received, without auth", function()
      local res = call("POST", "/_echo/a%2Fb/c%20d?x=1%202&y=%2B&y=z&flag", {
        token = false, headers = { ["X-Custom"] = "v", ["Content-Type"] = "application/json" },
        body = '{"n":12345678901234567890,"e":[]}' })
      assert.equal(200, res.status)
      local d = res.json.data
      assert.equal("POST", d.method)
      assert.equal("/api/_echo/a%2Fb/c%20d?x=1%202&y=%2B&y=z&flag", d.uri)
      assert.equal("/api/_echo/a%2Fb/c%20d", d.path)
      assert.same({ x = "1 2", y = { "+", "z" }, flag = true }, d.query)
      assert.equal("v", d.headers["x-custom"])
      assert.equal("application/json", d.headers["content-type"])
      assert.is_nil(d.headers.authorization)
      assert.equal('{"n":12345678901234567890,"e":[]}', d.body)
      assert.truthy(res.body:find('"e":[]', 1, true))
      assert.truthy(res.body:find('"n":12345678901234567168', 1, true))
    end)

    it("shows the Authorization header and omits json for a non-JSON body", function()
      local res = call("PUT", "/_echo/x", { body = "a=1" })
      assert.equal("Bearer sandbox-token", res.json.data.headers.authorization)
      assert.equal("a=1", res.json.data.body)
      assert.is_nil(res.json.data.json)
    end)
  end)

  describe("control API", function()
    it("logs every /api request with method, path, uri, tenant and body digest", function()
      call("POST", "/v1/customers", { json = { first_name = "L", email = "l@example.com" },
        headers = { ["X-Tenant"] = "7" } })
      get("/v1/customers?page=2")
      get("/v1/products/1")
      local log = assert(sb:requests({ path = "/api/v1/customers" }))
      assert.equal(2, log.count)
      local first = log.requests[1]
      assert.equal("POST", first.method)
      assert.equal("/api/v1/customers", first.path)
      assert.equal("/api/v1/customers", first.uri)
      assert.equal(7, first.tenant)
      assert.equal(201, first.status)
      local sent = cjson.encode({ first_name = "L", email = "l@example.com" })
      assert.equal(sent, first.body)
      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      f:write(sent)
      f:close()
      assert.equal(capture("sha256sum " .. q(tmp)):match("^%x+"), first.body_sha256)
      os.remove(tmp)
      assert.equal("/api/v1/customers?page=2", log.requests[2].uri)
      assert.equal(1, sb:requests({ method = "POST" }).count)
      assert.equal(3, sb:requests().count)
      assert.equal(2, sb:requests({ match = "^/api/v1/c" }).count)
    end)

    it("reset restores seed data and clears the log", function()
      call("DELETE", "/v1/customers/1")
      assert(sb:reset())
      assert.equal(200, get("/v1/customers/1").status)
      assert.equal(1, sb:requests().count)
    end)

    it("reports and changes the configuration; unknown keys are refused", function()
      local c = sb:config()
      assert.same({ token_ttl = 3600, rate_limit = 1000, rate_window = 60, auto_approve = false,
        tokens = { "sandbox-token" }, client_id = "sandbox-client",
        redirect_uri = "http://127.0.0.1/callback" }, c)
      assert.equal(5, sb:config({ rate_limit = 5 }).rate_limit)
      local ok, err = sb:config({ nope = 1 })
      assert.is_nil(ok)
      assert.equal("control POST /_sandbox/config: HTTP 400: Unknown configuration key: nope.", err)
      assert(sb:reset())
      assert.equal(1000, sb:config().rate_limit)
    end)
  end)
end)
