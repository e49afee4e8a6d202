-- One version everywhere: the newest release in CHANGELOG.md, the rockspec (its file name, its
-- version and its source tag), flextell._VERSION (and the sandbox's) and the rockspec the README
-- tells users to build must agree exactly (README, "Release").
local files = require "spec.helpers.files"

local read = files.read

-- The rockspec: its path and its fields (a rockspec is Lua that sets globals).
local function rockspec()
  local p = assert(io.popen("ls rockspec/*.rockspec"))
  local paths = {}
  for line in p:lines() do paths[#paths + 1] = line end
  p:close()
  assert.are.equal(1, #paths, "expected one rockspec, found: " .. table.concat(paths, " "))
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadfile(paths[1]))
    setfenv(chunk, env)
  else
    chunk = assert(loadfile(paths[1], "t", env))
  end
  chunk()
  return paths[1], env
end

-- The version headings of the CHANGELOG, top down: "Unreleased" or "X.Y.Z" (a date or other
-- words may follow the version).
local function changelog_headings()
  local text = assert(read("CHANGELOG.md"), "no CHANGELOG.md")
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local heading = line:match("^## (.-)%s*$")
    if heading then out[#out + 1] = heading end
  end
  return out
end

local function released(heading)
  return heading:match("^v?(%d+%.%d+%.%d+)$") or heading:match("^v?(%d+%.%d+%.%d+)[%s%(%-]")
end

describe("release", function()
  it("has one version: CHANGELOG, rockspec and flextell._VERSION agree exactly", function()
    local path, spec = rockspec()
    local version, revision = spec.version:match("^(%d+%.%d+%.%d+)%-(%d+)$")
    assert(version, "the rockspec's version is not X.Y.Z-N: " .. tostring(spec.version))
    local newest
    for _, heading in ipairs(changelog_headings()) do
      newest = released(heading)
      if newest then break end
    end
    assert(newest, "CHANGELOG.md has no release heading (## X.Y.Z)")
    assert.are.equal(newest, version, "the CHANGELOG's newest release and the rockspec's version differ")
    assert.are.equal(version, require("flextell")._VERSION, "flextell._VERSION and the rockspec's version differ")
    assert.are.equal(version, require("flextell.sandbox")._VERSION, "the sandbox's _VERSION and the rockspec's differ")
    assert.are.equal("rockspec/" .. spec.package .. "-" .. version .. "-" .. revision .. ".rockspec", path)
    assert.are.equal("v" .. version, spec.source.tag, "the rockspec's source.tag is not v" .. version)
  end)

  it("keeps changes not yet released under Unreleased, above the releases", function()
    local headings = changelog_headings()
    local seen_release, unreleased = false, 0
    for _, heading in ipairs(headings) do
      if heading == "Unreleased" then
        unreleased = unreleased + 1
        assert.is_false(seen_release, "## Unreleased must come before every release")
      else
        assert(released(heading), "a CHANGELOG heading that is neither Unreleased nor a version: " .. heading)
        seen_release = true
      end
    end
    assert(unreleased <= 1, "more than one ## Unreleased")
  end)

  it("lists each release once, newest first", function()
    local versions = {}
    for _, heading in ipairs(changelog_headings()) do versions[#versions + 1] = released(heading) end
    local function key(v)
      local a, b, c = v:match("^(%d+)%.(%d+)%.(%d+)$")
      return tonumber(a) * 1e12 + tonumber(b) * 1e6 + tonumber(c)
    end
    for i = 2, #versions do
      assert(key(versions[i - 1]) > key(versions[i]), "CHANGELOG: " .. versions[i - 1] .. " before " .. versions[i])
    end
  end)

  it("names the current rockspec wherever the README names one", function()
    local path = rockspec()
    local readme = assert(read("README.md"))
    local named = 0
    for file in readme:gmatch("rockspec/lua%-flextell%-%d+%.%d+%.%d+%-%d+%.rockspec") do
      named = named + 1
      assert.are.equal(path, file, "the README names another rockspec")
    end
    assert(named > 0, "the README names no rockspec to build")
  end)
end)
