-- The HTML API reference (`make docs`, LDoc with docs/config.ld) documents every public function,
-- and so does the README's reference, with a `syntax:` line for each.
-- The API is read from live objects, not from a list kept here: a new function or method without
-- a doc comment, or without a `syntax:` line in the README, fails this spec, and so does any
-- warning of LDoc (--fatalwarnings).
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

-- The public fields of a table that are not functions (such as _VERSION), as prefix .. name.
local function fields_of(t, prefix, into, skip)
  for k, v in pairs(t) do
    if type(k) == "string" and type(v) ~= "function" and not (skip and skip[k]) then into[prefix .. k] = true end
  end
end

-- A module that needs nginx's ngx table when it loads: a fresh copy, given a stand-in.
local function load_with_ngx(name)
  local path = assert(package.searchpath(name, package.path))
  local ngx = { socket = { tcp = function() end } }
  local env = setmetatable({ ngx = ngx }, { __index = _G })
  return assert(loadfile(path, "t", env))()
end

-- How the README's syntax lines name the receiver of each class's methods.
local RECEIVER = {
  Client = "client", Call = "call", Task = "task", Pager = "pager", Resource = "resource",
  TokenFile = "store", MemoryStore = "store", RedisStore = "store", SharedDictStore = "store",
  TokenFileLock = "lock", MemoryLock = "lock", RedisLock = "lock", SharedDictLock = "lock",
  Error = "err", Sandbox = "sb",
}

-- The README's reference section, and its `syntax:` lines.
local function readme_syntax_lines()
  local readme = assert(files.read("README.md"), "no README.md")
  local reference = assert(readme:match("\n## Reference\n(.-)\n## "), "the README has no ## Reference section")
  local lines = {}
  for line in reference:gmatch("[^\n]+") do
    if line:match("^syntax:") then lines[#lines + 1] = line end
  end
  return lines
end

-- True when one of lines names `name` as a whole word: a function when followed by ( or {, a
-- field when followed by anything but a name character.
local function named(lines, name, is_function)
  for _, line in ipairs(lines) do
    local from = 1
    while true do
      local i, j = line:find(name, from, true)
      if not i then break end
      local before, after = line:sub(i - 1, i - 1), line:sub(j + 1, j + 1)
      local starts = i == 1 or not before:match("[%w_%.:]")
      local ends
      if is_function then ends = after == "(" or after == "{" or after == " " and line:sub(j + 2, j + 2) == "{"
      else ends = not after:match("[%w_]") end
      if starts and ends then return true end
      from = j + 1
    end
  end
  return false
end

describe("API reference #docs", function()
  local dir, ok, output
  local client
  local api, sandbox_api, classes = {}, {}, {}
  local fields, sandbox_fields, driver_api, http_api = {}, {}, {}, {}

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

    -- the fields that are not functions, and the nginx driver's entry points
    fields_of(flextell, "", fields, { json = true }) -- json: its functions are listed above
    fields_of(sandbox, "", sandbox_fields)
    local driver = require "flextell.ngx.driver"
    functions_of(driver, "", driver_api)
    fields_of(driver, "", driver_api)
    functions_of(load_with_ngx("flextell.ngx.http"), "", http_api)
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

  -- What a README syntax line shows for each name: name -> { text, is_function }.
  local function expected()
    local out = {}
    local function add(name, text, fn) out[name] = { text, fn } end
    for name in pairs(api) do
      local class, method = name:match("^(%w+):([%w_]+)$")
      if class then
        local recv = assert(RECEIVER[class], "the README has no receiver name for class " .. class ..
          ": add it to RECEIVER in this spec")
        if method == "__tostring" then add(name, "tostring(" .. recv .. ")", false)
        else add(name, recv .. ":" .. method, true) end
      else
        add(name, "flextell." .. name, true)
      end
    end
    for name in pairs(fields) do add(name, "flextell." .. name, false) end
    for name in pairs(sandbox_api) do
      local class, method = name:match("^(%w+):([%w_]+)$")
      if class then add("sandbox " .. name, assert(RECEIVER[class], "no receiver name for " .. class) .. ":" .. method, true)
      else add("sandbox." .. name, "sandbox." .. name, true) end
    end
    for name in pairs(sandbox_fields) do add("sandbox." .. name, "sandbox." .. name, false) end
    for name in pairs(driver_api) do add("driver." .. name, "driver." .. name, name ~= "PHASES") end
    for name in pairs(http_api) do add("http." .. name, "http." .. name, true) end
    return out
  end

  it("has a syntax line in the README's reference for every public function, method and field", function()
    local lines = readme_syntax_lines()
    local want = expected()
    assert(want["Client:get"] and want["sandbox.start"] and want["driver.await"] and want._VERSION,
      "the API was not listed")
    local absent = {}
    for _, name in ipairs(sorted_keys(want)) do
      if not named(lines, want[name][1], want[name][2]) then absent[#absent + 1] = name .. " (" .. want[name][1] .. ")" end
    end
    assert.are.same({}, absent, "public names without a `syntax:` line in the README's ## Reference")
  end)

  it("names nothing in the README's syntax lines that the live objects do not have", function()
    local methods_by_receiver = {}
    local function note(class, method)
      local recv = RECEIVER[class]
      if recv then
        methods_by_receiver[recv] = methods_by_receiver[recv] or {}
        methods_by_receiver[recv][method] = true
      end
    end
    for _, set in ipairs { api, sandbox_api } do
      for name in pairs(set) do
        local class, method = name:match("^(%w+):([%w_]+)$")
        if class then note(class, method) end
      end
    end
    local modules = { flextell = {}, sandbox = {}, driver = driver_api, http = http_api }
    for name in pairs(api) do if not name:find(":", 1, true) then modules.flextell[name] = true end end
    for name in pairs(fields) do modules.flextell[name] = true end
    for name in pairs(sandbox_api) do if not name:find(":", 1, true) then modules.sandbox[name] = true end end
    for name in pairs(sandbox_fields) do modules.sandbox[name] = true end
    local stale = {}
    for _, line in ipairs(readme_syntax_lines()) do
      for recv, method in line:gmatch("([%a_][%w_]*):([%a_][%w_]*)%s*[%({]") do
        if methods_by_receiver[recv] and not methods_by_receiver[recv][method] then
          stale[#stale + 1] = recv .. ":" .. method
        end
      end
      for mod, name in line:gmatch("([%a_][%w_]*)%.([%a_][%w_%.]*)") do
        local known = modules[mod]
        local i = line:find(mod .. "." .. name, 1, true)
        local before = i and i > 1 and line:sub(i - 1, i - 1) or ""
        if known and not before:match("[%w_%.:\"']") and not known[name] then -- not in require "..."
          stale[#stale + 1] = mod .. "." .. name
        end
      end
    end
    table.sort(stale)
    assert.are.same({}, stale, "the README's syntax lines name functions the live objects do not have")
  end)
end)
