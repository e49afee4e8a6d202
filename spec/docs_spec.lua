-- The HTML API reference (`make docs`, LDoc with docs/config.ld) documents every public function.
-- The API is read from live objects, not from a list kept here: a new function or method without
-- a doc comment fails this spec, and so does any warning of LDoc (--fatalwarnings).
local files = require "spec.helpers.files"
local flextell = require "flextell"
local sandbox = require "flextell.sandbox"

local q = files.q

-- Runs LDoc into dir: ok, and what it printed.
local function ldoc(dir)
  local p = assert(io.popen("unset LD_PRELOAD; ldoc --fatalwarnings -c docs/config.ld -d " .. q(dir) ..
    " . 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local text, code = out:match("^(.*)exit=(%d+)%s*$")
  return code == "0", text or out
end

-- The names LDoc gave anchors in a page: functions as "new", "json.encode", methods as "Client:get".
local function anchors(path)
  local html = assert(files.read(path), "LDoc wrote no " .. path)
  local names = {}
  for name in html:gmatch('<a name%s*=%s*"([^"]+)"') do names[name] = true end
  return names
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The public functions of a table (names not starting with "_"), as prefix .. name.
local function functions_of(t, prefix, into)
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) == "function" and not k:match("^_") then into[prefix .. k] = true end
  end
end

-- The public methods of an object, named after its class: the metatable's __name without
-- "flextell." ("flextell.Client" -> "Client:get"). Returns the class name.
local function methods_of(obj, into)
  local mt = getmetatable(obj)
  assert(type(mt) == "table" and type(mt.__name) == "string", "no metatable with __name: " .. tostring(obj))
  local class = mt.__name:gsub("^flextell%.", "")
  assert(type(mt.__index) == "table", class .. ": __index is not a table, its methods cannot be listed")
  functions_of(mt.__index, class .. ":", into)
  return class
end

-- A shared-dict token store exists only inside nginx: a fresh copy of its module, given a stand-in
-- for ngx.shared, makes one here (the lock and unlock below use add, get and delete).
local function shared_dict_store()
  local path = assert(package.searchpath("flextell.stores.shared_dict", package.path))
  local dict = {}
  function dict.add() return true end
  function dict.get() return nil end
  function dict.delete() end
  local env = setmetatable({ ngx = { shared = { docs = dict } } }, { __index = _G })
  local new = assert(loadfile(path, "t", env))()
  return new("docs")
end

describe("API reference #docs", function()
  local dir, ok, output
  local client
  local api, sandbox_api, classes = {}, {}, {}

  setup(function()
    dir = files.tmpdir()
    ok, output = ldoc(dir .. "/html")

    -- module flextell: its functions, and the methods of each kind of object it hands out
    functions_of(flextell, "", api)
    functions_of(flextell.json, "json.", api)
    client = flextell.new { token = "t" }
    local function add(obj) classes[methods_of(obj, api)] = true end
    add(client)
    api["Client:__tostring"] = true -- tostring(client) is documented
    local call = assert(client:start { path = "/x" })
    add(call)
    call:cancel()
    local task = flextell.spawn(function() end)
    flextell.run()
    add(task)
    add(client:pager("/x"))
    add(client:resource("/v1/customers"))
    local stores = {
      flextell.token_file(dir .. "/tokens.json"),
      flextell.memory_store(),
      flextell.redis_store { command = function() return 1 end, key = "docs" }, -- 1: the lock is taken
      shared_dict_store(),
    }
    for _, store in ipairs(stores) do
      add(store)
      local lock = assert(store:lock { ttl = 1 })
      add(lock)
      lock:unlock()
    end
    for k, v in pairs(flextell.Error) do -- the metatable of errors: its metamethods are its API
      if type(v) == "function" then api["Error:" .. k] = true end
    end
    classes.Error = true

    -- module flextell.sandbox: its functions and the methods of a handle (one attached to a
    -- sandbox.json of its own: nothing is started)
    functions_of(sandbox, "", sandbox_api)
    os.execute("mkdir -p " .. q(dir .. "/sb"))
    files.write(dir .. "/sb/sandbox.json", '{"url":"http://127.0.0.1:9/api","prefix":"' .. dir .. '/sb"}')
    local sb = assert(sandbox.attach(dir .. "/sb"))
    classes[methods_of(sb, sandbox_api)] = true
  end)

  teardown(function()
    if client then client:close() end
    if dir then os.execute("rm -rf " .. q(dir)) end
  end)

  it("is built by LDoc without a warning", function()
    assert(ok, "ldoc failed:\n" .. output)
  end)

  local function missing(api_names, page)
    local documented = anchors(dir .. "/html/modules/" .. page)
    local out = {}
    for _, name in ipairs(sorted_keys(api_names)) do
      if not documented[name] then out[#out + 1] = name end
    end
    return out
  end

  it("documents every public function and method of flextell", function()
    assert(next(api) ~= nil and api.new and api["Client:get"] and api["Call:next"], "the API was not listed")
    assert.are.same({}, missing(api, "flextell.html"),
      "public functions without a doc comment in the reference (modules/flextell.html)")
  end)

  it("documents every public function of flextell.sandbox and the methods of its handle", function()
    assert(sandbox_api.start and sandbox_api["Sandbox:stop"], "the API was not listed")
    assert.are.same({}, missing(sandbox_api, "flextell.sandbox.html"),
      "public functions without a doc comment in the reference (modules/flextell.sandbox.html)")
  end)

  it("documents no method that its class does not have", function()
    local stale = {}
    for page, api_names in pairs { ["flextell.html"] = api, ["flextell.sandbox.html"] = sandbox_api } do
      for name in pairs(anchors(dir .. "/html/modules/" .. page)) do
        local class = name:match("^(%w+):")
        if class and classes[class] and not api_names[name] then stale[#stale + 1] = name end
      end
    end
    table.sort(stale)
    assert.are.same({}, stale, "documented methods that the live objects do not have")
  end)
end)
