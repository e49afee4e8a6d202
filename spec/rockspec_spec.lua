-- The rockspec must install every module of the tree (luarocks make builds from it alone).
describe("rockspec", function()
  local function load_rockspec()
    local p = assert(io.popen("ls rockspec/*.rockspec"))
    local path = p:read("l")
    p:close()
    local env = {}
    local chunk = assert(loadfile(path))
    if setfenv then setfenv(chunk, env) else chunk = assert(loadfile(path, "t", env)) end
    chunk()
    return env, path
  end

  local function list(cmd)
    local out, p = {}, assert(io.popen(cmd))
    for line in p:lines() do out[#out + 1] = line end
    p:close()
    table.sort(out)
    return out
  end

  it("names itself after its file and uses format 3.0", function()
    local spec, path = load_rockspec()
    assert.are.equal("3.0", spec.rockspec_format)
    assert.are.equal("rockspec/" .. spec.package .. "-" .. spec.version .. ".rockspec", path)
    assert.are.equal(require("flextell")._VERSION, spec.version:match("^(.-)%-%d+$"))
  end)

  it("builds the C core from every C source", function()
    local spec = load_rockspec()
    local sources = spec.build.modules["flextell.core"].sources
    table.sort(sources)
    assert.are.same(list("ls src/*.c"), sources)
  end)

  it("installs every Lua module", function()
    local spec = load_rockspec()
    local files = {}
    for name, file in pairs(spec.build.modules) do
      if name ~= "flextell.core" then
        local expect = file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
        assert.are.equal(expect, name)
        files[#files + 1] = file
      end
    end
    table.sort(files)
    assert.are.same(list("find lua -name '*.lua'"), files)
  end)
end)
