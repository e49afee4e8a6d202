-- each, pages, all and pager over both pagination styles, and the guards against endless lists.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local it = require("spec.helpers.modes").both(it)

describe("paging", function()
  local sb, client
  sandbox.fixture(function(s, c) sb, client = s, c end)

  local function requests(path)
    return sb:requests { method = "GET", path = path }.count
  end

  describe(":each", function()
    it("walks a cursor-style list to its end", function()
      local ids = {}
      for item in client:each("/resources", { limit = 25 }) do ids[#ids + 1] = item.id end
      assert.are.equal(84, #ids)
      assert.are.equal("res_001", ids[1])
      assert.are.equal("res_084", ids[84])
      assert.are.equal(4, requests("/api/resources"))
    end)

    it("walks a page-style list to its end", function()
      local ids = {}
      for item in client:each("/v1/customers", { per_page = 10 }) do ids[#ids + 1] = item.id end
      assert.are.equal(45, #ids)
      for i = 1, 45 do assert.are.equal(i, ids[i]) end
      assert.are.equal(5, requests("/api/v1/customers"))
    end)

    it("keeps the caller's query on every page", function()
      local names = {}
      for item in client:each("/v1/customers", { per_page = 2, search = "Grace" }) do names[#names + 1] = item.first_name end
      assert.is_true(#names >= 1)
      for _, n in ipairs(names) do assert.are.equal("Grace", n) end
      for _, r in ipairs(sb:requests { path = "/api/v1/customers" }.requests) do
        assert.matches("search=Grace", r.uri)
      end
    end)

    it("raises the error when a page fails", function()
      local c = flextell.new { base_url = sb.url, token = "bad" }
      local ok, err = pcall(function()
        for _ in c:each("/v1/customers") do end
      end)
      assert.is_false(ok)
      assert.are.equal(flextell.Error, getmetatable(err))
      assert.are.equal("auth", err.kind)
      assert.are.equal("invalid_token", err.code)
    end)

    it("holds one page at a time", function()
      local seen = setmetatable({}, { __mode = "k" })
      local n = 0
      for item in client:each("/resources", { limit = 10 }) do
        seen[item] = true
        n = n + 1
        if n == 80 then
          collectgarbage()
          collectgarbage()
          local alive = 0
          for _ in pairs(seen) do alive = alive + 1 end
          assert.is_true(alive <= 10, "items of earlier pages are still alive: " .. alive)
        end
      end
      assert.are.equal(84, n)
    end)
  end)

  describe(":pages", function()
    it("yields each page with its meta", function()
      local sizes, styles = {}, {}
      for page, meta in client:pages("/v1/customers", { per_page = 20 }) do
        sizes[#sizes + 1] = #page
        styles[#styles + 1] = meta.style
      end
      assert.are.same({ 20, 20, 5 }, sizes)
      assert.are.same({ "page", "page", "page" }, styles)
    end)

    it("treats a list without paging information as one page", function()
      local count = 0
      for page, meta in client:pages("/v1/account/tenants") do
        count = count + 1
        assert.are.equal(3, #page)
        assert.is_nil(meta.style)
      end
      assert.are.equal(1, count)
    end)
  end)

  describe(":all", function()
    it("returns every item as one array", function()
      local items = assert(client:all("/resources", { limit = 100 }))
      assert.are.equal(84, #items)
      assert.are.equal("res_084", items[84].id)
    end)

    it("returns a limit error instead of a shortened list", function()
      local items, err = client:all("/resources", { limit = 50 }, { max_items = 60 })
      assert.is_nil(items)
      assert.are.equal("limit", err.kind)
      assert.are.equal("max_items", err.code)
      assert.are.equal("the list has more than 60 items", err.message)
    end)

    it("accepts a list exactly max_items long", function()
      local items = assert(client:all("/v1/customers", { per_page = 50 }, { max_items = 45 }))
      assert.are.equal(45, #items)
    end)

    it("holds pager:next to max_items: the page that goes past it is an error, not handed out in part", function()
      local p = client:pager("/resources", { limit = 50 }, { max_items = 60 })
      local page = assert(p:next())
      assert.are.equal(50, #page)
      local none, err = p:next()
      assert.is_nil(none)
      assert.are.same({ "limit", "max_items", "the list has more than 60 items", "/resources" },
        { err.kind, err.code, err.message, err.path })
      assert.are.same({ 50, 1 }, { p.items, p.pages }) -- it stayed where it was
    end)

    it("holds each and pages to max_items: they raise the limit error after the items within it", function()
      local seen = 0
      local ok, err = pcall(function()
        for _ in client:each("/resources", { limit = 50 }, { max_items = 60 }) do seen = seen + 1 end
      end)
      assert.is_false(ok)
      assert.are.same({ 50, "limit", "max_items" }, { seen, err.kind, err.code })
      local pages = 0
      ok, err = pcall(function()
        for _ in client:pages("/resources", { limit = 50 }, { max_items = 60 }) do pages = pages + 1 end
      end)
      assert.is_false(ok)
      assert.are.same({ 1, "limit", "max_items" }, { pages, err.kind, err.code })
      seen = 0
      for _ in client:each("/v1/customers", { per_page = 50 }, { max_items = 45 }) do seen = seen + 1 end
      assert.are.equal(45, seen)
    end)

    it("returns nil, err when a page fails", function()
      local items, err = client:all("/v1/customers", { per_page = 500 })
      assert.is_nil(items)
      assert.are.equal("http", err.kind)
      assert.are.equal(400, err.status)
      assert.are.equal("invalid_request", err.code)
    end)
  end)

  describe(":pager", function()
    it("steps page by page and returns nil at the end", function()
      local pager = client:pager("/resources", { limit = 40 })
      local p1, m1 = pager:next()
      assert.are.equal(40, #p1)
      assert.is_true(m1.has_more)
      local p2 = pager:next()
      assert.are.equal("res_041", p2[1].id)
      local p3, m3 = pager:next()
      assert.are.equal(4, #p3)
      assert.is_false(m3.has_more)
      assert.is_nil(pager:next())
      assert.is_nil(pager:next())
      assert.are.equal(3, requests("/api/resources"))
    end)

    it("resumes a cursor-style list from a checkpoint", function()
      local pager = client:pager("/resources", { limit = 30 })
      pager:next()
      local cp = pager:checkpoint()
      assert.are.equal("cursor", cp.style)
      assert.are.equal("string", type(cp.cursor))
      local again = client:pager("/resources", { limit = 30 }, { resume = cp })
      local page = again:next()
      assert.are.equal("res_031", page[1].id)
    end)

    it("resumes a page-style list from a checkpoint", function()
      local pager = client:pager("/v1/customers", { per_page = 10 })
      pager:next()
      pager:next()
      local cp = pager:checkpoint()
      assert.are.same({ path = "/v1/customers", query = { per_page = 10 }, style = "page", page = 3,
        last_page_seen = 2, done = false }, cp)
      local page = client:pager("/v1/customers", { per_page = 10 }, { resume = cp }):next()
      assert.are.equal(21, page[1].id)
    end)

    it("resumes a finished list as finished", function()
      local pager = client:pager("/v1/account/tenants")
      pager:next()
      local done = client:pager("/v1/account/tenants", nil, { resume = pager:checkpoint() })
      assert.is_nil(done:next())
    end)

    it("retries the same page after a failure", function()
      local pager = client:pager("/v1/customers", { per_page = 10 })
      pager:next()
      sb:config { rate_limit = 1 }
      assert.truthy(client:get("/v1/customers/1")) -- uses up the window
      local page, err = pager:next()
      assert.is_nil(page)
      assert.are.equal("limit", err.kind)
      sb:config { rate_limit = 1000 }
      sb:reset()
      page = assert(pager:next())
      assert.are.equal(11, page[1].id)
    end)

    it("stops at max_pages with a limit error", function()
      local pager = client:pager("/resources", { limit = 10 }, { max_pages = 2 })
      assert.truthy(pager:next())
      assert.truthy(pager:next())
      local page, err = pager:next()
      assert.is_nil(page)
      assert.are.equal("limit", err.kind)
      assert.are.equal("max_pages", err.code)
    end)

    it("has a default page cap", function()
      local pager_module = require "flextell.pager"
      assert.are.equal(100000, pager_module.DEFAULT_MAX_PAGES)
      pager_module.DEFAULT_MAX_PAGES = 2
      local items, err = client:all("/resources", { limit = 10 })
      pager_module.DEFAULT_MAX_PAGES = 100000
      assert.is_nil(items)
      assert.are.equal("max_pages", err.code)
      assert.are.equal("the list has more than 2 pages", err.message)
    end)

    -- the message of the error fn raises; it must name the line of fn (a one-line function),
    -- the caller's, not a line inside the library
    local function raised(fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.are.equal("string", type(err))
      local file, line, message = err:match("^(.-):(%d+): (.*)$")
      assert.matches("paging_spec%.lua$", file)
      assert.are.equal(debug.getinfo(fn, "S").linedefined, tonumber(line))
      return message
    end

    it("raises on a max_items or max_pages that is not a number", function()
      assert.are.equal("client:pager: option 'max_items' must be an integer >= 0, got string",
        raised(function() client:pager("/resources", nil, { max_items = "3" }) end))
      assert.are.equal("client:pager: option 'max_pages' must be an integer >= 1, got string",
        raised(function() client:pager("/resources", nil, { max_pages = "3" }) end))
      assert.are.equal("client:pager: option 'max_pages' must be an integer >= 1, got boolean",
        raised(function() client:pager("/resources", nil, { max_pages = false }) end))
    end)

    it("raises on a max_items that is negative, fractional, NaN or infinite", function()
      for _, v in ipairs({ -1, 1.5, 0 / 0, math.huge }) do
        assert.are.equal("client:pager: option 'max_items' must be an integer >= 0",
          raised(function() client:pager("/resources", nil, { max_items = v }) end))
      end
    end)

    it("raises on a max_pages below 1, fractional, NaN or infinite", function()
      for _, v in ipairs({ 0, -1, 1.5, 0 / 0, math.huge }) do
        assert.are.equal("client:pager: option 'max_pages' must be an integer >= 1",
          raised(function() client:pager("/resources", nil, { max_pages = v }) end))
      end
      assert.truthy(client:pager("/resources", { limit = 84 }, { max_pages = 1 }):next())
    end)

    it("takes max_items = 0 as a list that must be empty", function()
      local items = assert(client:all("/v1/customers", { search = "no-such-customer" }, { max_items = 0 }))
      assert.are.same({}, items)
      local page, err = client:pager("/resources", { limit = 5 }, { max_items = 0 }):next()
      assert.is_nil(page)
      assert.are.equal("limit", err.kind)
      assert.are.equal("max_items", err.code)
      assert.are.equal("the list has more than 0 items", err.message)
    end)

    it("raises on a prefetch, resume or opts of the wrong type", function()
      assert.are.equal("client:pager: option 'prefetch' must be a boolean, got string",
        raised(function() client:pager("/resources", nil, { prefetch = "yes" }) end))
      assert.are.equal("client:pager: option 'resume' must be a checkpoint table, got string",
        raised(function() client:pager("/resources", nil, { resume = "cp" }) end))
      assert.are.equal("client:pager: option 'resume' is not a checkpoint ('cursor' must be a string, got number)",
        raised(function() client:pager("/resources", nil, { resume = { path = "/resources", cursor = 5 } }) end))
      assert.are.equal("bad argument #3 to 'pager' (table expected, got string)",
        raised(function() client:pager("/resources", nil, "prefetch") end))
    end)

    it("raises on a per-call option of the wrong type when the pager is made, before any call", function()
      assert.are.equal("client:pager: option 'timeout' must be a number, got string",
        raised(function() client:pager("/resources", nil, { timeout = "5" }) end))
      assert.are.equal("client:pager: option 'raw_body' must be a boolean, got string",
        raised(function() client:pager("/resources", nil, { raw_body = "yes" }) end))
      assert.are.equal("client:pager: option 'headers' must be a table, got string",
        raised(function() client:pager("/resources", nil, { headers = "X-A: 1" }) end))
      assert.are.equal(0, requests("/api/resources"))
    end)

    it("checks the options of each, pages, all and resource:pager the same way, at the caller's line", function()
      assert.are.equal("client:each: option 'max_items' must be an integer >= 0, got string",
        raised(function() client:each("/resources", nil, { max_items = "3" }) end))
      assert.are.equal("client:pages: option 'max_pages' must be an integer >= 1",
        raised(function() client:pages("/resources", nil, { max_pages = -1 }) end))
      assert.are.equal("client:all: option 'prefetch' must be a boolean, got number",
        raised(function() client:all("/resources", nil, { prefetch = 1 }) end))
      assert.are.equal("client:pager: option 'max_items' must be an integer >= 0",
        raised(function() client:resource("/v1/customers"):pager(nil, { max_items = 1.5 }) end))
      assert.are.equal("bad argument #2 to 'each' (table expected, got string)",
        raised(function() client:each("/resources", "limit=5") end))
      assert.are.equal(0, requests("/api/resources"))
    end)

    it("raises on a checkpoint made under another query", function()
      local pager = client:pager("/resources", { limit = 30 })
      pager:next()
      local cp = pager:checkpoint()
      assert.are.equal("the checkpoint belongs to another list (query key 'limit' is 30 in the checkpoint, 10 here)",
        raised(function() client:pager("/resources", { limit = 10 }, { resume = cp }) end))
      assert.are.equal("the checkpoint belongs to another list (query key 'search' is absent in the checkpoint, " ..
        "\"res\" here)",
        raised(function() client:pager("/resources", { limit = 30, search = "res" }, { resume = cp }) end))
      assert.are.equal("the checkpoint belongs to another list (query key 'limit' is 30 in the checkpoint, absent here)",
        raised(function() client:pager("/resources", {}, { resume = cp }) end))
      assert.are.equal(1, requests("/api/resources"))
    end)

    it("resumes under the checkpoint's query when none is given, and ignores cursor and page keys", function()
      local pager = client:pager("/resources", { limit = 30 })
      pager:next()
      local cp = flextell.json.decode(flextell.json.encode(pager:checkpoint())) -- saved and read back
      local page = client:pager("/resources", nil, { resume = cp }):next()
      assert.are.equal(30, #page)
      assert.are.equal("res_031", page[1].id)
      page = client:pager("/resources", { limit = 30, cursor = "elsewhere" }, { resume = cp }):next()
      assert.are.equal("res_031", page[1].id)
      for _, r in ipairs(sb:requests { path = "/api/resources" }.requests) do
        assert.matches("limit=30", r.uri)
        assert.is_nil(r.uri:find("elsewhere", 1, true))
      end
    end)

    it("raises on a checkpoint of another list and unknown options", function()
      local cp = client:pager("/resources"):checkpoint()
      assert.has_error(function() client:pager("/v1/customers", nil, { resume = cp }) end,
        "the checkpoint belongs to another list (path /resources)")
      assert.has_error(function() client:pager("/resources", nil, { bogus = true }) end,
        "unknown pager option 'bogus'")
    end)
  end)
end)
