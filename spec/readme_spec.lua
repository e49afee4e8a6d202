-- The README's tour is examples/tour.lua, which `make demo` runs: they must not drift apart.
describe("README", function()
  local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end

  it("prints the tour exactly as examples/tour.lua has it", function()
    local readme = read("README.md")
    local block = readme:match("\n## Tour\n.-```lua\n(.-)```")
    local tour = read("examples/tour.lua"):gsub("^%-%-[^\n]*\n%-%-[^\n]*\n", "")
    assert.are.equal(tour, block)
  end)

  it("starts with the two set-up commands", function()
    local readme = read("README.md")
    local first = readme:match("\n## Quick start\n(.-)\n## ")
    assert.matches("sh tools/install%-deps demo && make demo", first)
    assert.matches("sh tools/install%-deps && make test", first)
  end)
end)
