-- Laravel-style validation: field specs in, {field = {messages}} out.
local json = require "flextell.sandbox.json"
local null = json.null

local M = {}

local function label(field)
  return (field:gsub("_", " "))
end

local function is_integer(v) return type(v) == "number" and v == math.floor(v) and v == v end

local checks = {
  string = function(v, f)
    if type(v) ~= "string" then return "The " .. label(f) .. " must be a string." end
    if #v > 255 then return "The " .. label(f) .. " must not be greater than 255 characters." end
  end,
  text = function(v, f)
    if type(v) ~= "string" then return "The " .. label(f) .. " must be a string." end
  end,
  email = function(v, f)
    if type(v) ~= "string" or not v:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") or #v > 255 then
      return "The " .. label(f) .. " must be a valid email address."
    end
  end,
  integer = function(v, f)
    if not is_integer(v) then return "The " .. label(f) .. " must be an integer." end
  end,
  number = function(v, f)
    if type(v) ~= "number" then return "The " .. label(f) .. " must be a number." end
  end,
  boolean = function(v, f)
    if type(v) ~= "boolean" then return "The " .. label(f) .. " field must be true or false." end
  end,
  array = function(v, f)
    if not json.is_array(v) then return "The " .. label(f) .. " must be an array." end
  end,
  object = function(v, f)
    if type(v) ~= "table" or json.is_array(v) or v == null then
      return "The " .. label(f) .. " must be an object."
    end
  end,
  datetime = function(v, f)
    if type(v) ~= "string" or not v:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d") then
      return "The " .. label(f) .. " is not a valid date."
    end
  end,
}

local function missing(v)
  return v == nil or v == null or v == ""
end

-- partial = true (PATCH): only the fields present in body are checked.
-- Returns nil when valid, else the errors table.
function M.check(fields, body, partial)
  local errors, any = {}, false
  for name, spec in pairs(fields) do
    local v = body[name]
    local msg
    if missing(v) then
      if spec.required and (not partial or v ~= nil) then
        msg = "The " .. label(name) .. " field is required."
      end
    else
      msg = checks[spec.type](v, name)
      if not msg and spec.min and v < spec.min then
        msg = "The " .. label(name) .. " must be at least " .. spec.min .. "."
      end
      if not msg and spec.enum then
        local ok = false
        for _, e in ipairs(spec.enum) do if e == v then ok = true end end
        if not ok then msg = "The selected " .. label(name) .. " is invalid." end
      end
    end
    if msg then
      errors[name] = json.array({ msg })
      any = true
    end
  end
  return any and errors or nil
end

return M
