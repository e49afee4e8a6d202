--- `flextell get|post|put|patch|delete PATH`: one API call (or a paged walk) from the shell.
-- Output is what the server sent: the envelope's data (or the whole body with --raw), with key
-- order, nulls and number spellings kept.

local flextell = require "flextell"
local core = require "flextell.core"
local jsontext = require "flextell.cli.jsontext"
local output = require "flextell.cli.output"

local M = {}

local function usage(msg)
  return nil, msg
end

local stdin_used

local function read_source(spec, what)
  local f, err, s
  if spec == "-" then
    if stdin_used then
      return nil, what .. ": stdin was read already (by " .. stdin_used .. "); it can be read once"
    end
    stdin_used = what
    f = io.stdin
  else
    f, err = io.open(spec, "rb")
  end
  if f then
    s, err = f:read("a")
    if f ~= io.stdin then f:close() end
  end
  if s == nil then
    return nil, what .. ": cannot read " .. (spec == "-" and "stdin" or spec) .. " (" ..
      tostring(err or "no data"):gsub("^[^:]*: ", "") .. ")"
  end
  return s
end

-- "key=value" -> key, value
local function pair(s, flag)
  local k, v = s:match("^([^=]+)=(.*)$")
  if not k then return nil, flag .. " " .. s .. ": expected key=value" end
  return k, v
end

-- Whether s is a JSON number (RFC 8259 section 6: no leading zeros, no bare dot).
local function json_number(s)
  local int, rest = s:match("^-?(%d+)(.*)$")
  if not int or (#int > 1 and int:sub(1, 1) == "0") then return false end
  return rest == "" or rest:match("^%.%d+$") ~= nil or rest:match("^%.%d+[eE][-+]?%d+$") ~= nil or
    rest:match("^[eE][-+]?%d+$") ~= nil
end

-- A typed value of -F: true, false, null, JSON numbers, @file (its contents), else the string
-- (so "02134" stays a string). A number the JSON encoder could not send exactly (an integer
-- beyond 64 bits, a float beyond the double range) is refused rather than rounded.
local function typed(v, flag, key)
  if v == "true" then return true end
  if v == "false" then return false end
  if v == "null" then return flextell.null end
  if json_number(v) then
    local n = tonumber(v)
    local integral = not v:find("[.eE]")
    if integral and math.type and math.type(n) ~= "integer" then
      return nil, flag .. " " .. key .. "=" .. v .. ": the integer does not fit in 64 bits " ..
        "(use -f to send it as a string, or -d for JSON text sent as given)"
    end
    if n ~= n or n == math.huge or n == -math.huge then
      return nil, flag .. " " .. key .. "=" .. v .. ": the number is out of range " ..
        "(use -f to send it as a string, or -d for JSON text sent as given)"
    end
    return n
  end
  if v:sub(1, 1) == "@" then
    local s, err = read_source(v:sub(2), flag .. " " .. key)
    if not s then return nil, err end
    return s
  end
  return v
end

-- "a[b][]" -> { "a", "b", "" }; nil for a malformed key.
local function key_path(k)
  local head, rest = k:match("^([^%[%]]+)(.*)$")
  if not head then return nil end
  local out = { head }
  while rest ~= "" do
    local part, more = rest:match("^%[([^%[%]]*)%](.*)$")
    if not part then return nil end
    out[#out + 1] = part
    rest = more
  end
  return out
end

-- Puts value at key path p into t (gh api's field syntax: a[b]=1, a[]=1). A name holds an
-- object, a list or a value, whatever order the flags come in: a clash is refused, never a
-- silent overwrite or a table the encoder cannot send.
local function put(t, p, value, flag, raw)
  local is_list = function(x) return getmetatable(x) == getmetatable(flextell.array {}) end
  local function clash(name, what)
    return nil, flag .. " " .. raw .. ": " .. name .. " " .. what
  end
  for i = 1, #p - 1 do
    local k, nextk = p[i], p[i + 1]
    local want_list = nextk == ""
    local cur
    if k == "" then -- a[][x]: a new object appended to the list
      cur = nil
    else
      cur = t[k]
    end
    if cur == nil then
      cur = want_list and flextell.array {} or {}
      if k == "" then t[#t + 1] = cur else t[k] = cur end
    elseif type(cur) ~= "table" then
      return clash(k, "is already a value")
    elseif is_list(cur) ~= want_list then
      return clash(k, "mixes a list and named keys")
    end
    t = cur
  end
  local last = p[#p]
  if last == "" then
    t[#t + 1] = value
  elseif type(t[last]) == "table" then
    return clash(last, "is already " .. (is_list(t[last]) and "a list" or "an object"))
  else
    t[last] = value -- a value given again: the last wins
  end
  return true
end

--- The request table for a parsed command line, or nil, usage message.
function M.build(method, a, settings)
  local req = { method = method, path = a.path }
  if not a.path:match("^/") then return usage("PATH must start with / (such as /v1/customers)") end
  if #a.query > 0 then
    req.query = {}
    for _, q in ipairs(a.query) do
      local k, v = pair(q, "-q")
      if not k then return usage(v) end
      local cur = req.query[k]
      if cur == nil then
        req.query[k] = v
      elseif type(cur) == "table" then
        cur[#cur + 1] = v
      else
        req.query[k] = { cur, v }
      end
    end
  end
  if #a.header > 0 then
    -- names are case-insensitive: the last -H of a name wins, in the spelling it was given
    local byname = {}
    for _, h in ipairs(a.header) do
      local name, value = h:match("^([^:]+):%s*(.-)%s*$")
      if not name then return usage("-H " .. h .. ": expected 'Name: value'") end
      byname[name:lower()] = { name, value }
    end
    req.headers = {}
    for _, nv in pairs(byname) do req.headers[nv[1]] = nv[2] end
  end
  if a.tenant ~= nil then
    req.tenant = a.tenant
  elseif settings.tenant ~= nil then
    req.tenant = settings.tenant
  end

  local fields = {}
  for _, f in ipairs(a.raw_field) do fields[#fields + 1] = { f, "-f" } end
  for _, f in ipairs(a.field) do fields[#fields + 1] = { f, "-F" } end
  local writes = method == "POST" or method == "PUT" or method == "PATCH"
  if a.data ~= nil and #fields > 0 then return usage("give a body with -d or fields with -f/-F, not both") end
  if a.data ~= nil then
    if not writes then return usage("-d sends a body: use post, put or patch (" .. method .. " has none)") end
    local text = a.data
    if text == "-" or text:sub(1, 1) == "@" then
      local err
      text, err = read_source(text == "-" and "-" or text:sub(2), "-d")
      if not text then return usage(err) end
    end
    local ok, v, why = pcall(flextell.json.decode, text)
    if not ok or (v == nil and why ~= nil) then
      return usage("-d: the body is not valid JSON (" .. tostring(ok and why or v):gsub("^.-: ", "") .. ")")
    end
    req.body = text
    req.headers = req.headers or {}
    local has_type = false
    for name in pairs(req.headers) do has_type = has_type or name:lower() == "content-type" end
    if not has_type then req.headers["Content-Type"] = "application/json" end
  elseif #fields > 0 then
    local target
    if writes then
      target = {}
    else
      req.query = req.query or {}
      target = req.query
    end
    for _, f in ipairs(fields) do
      local raw, flag = f[1], f[2]
      local k, v = pair(raw, flag)
      if not k then return usage(v) end
      if flag == "-F" then
        local err
        v, err = typed(v, flag, k)
        if v == nil then return usage(err) end
      end
      if writes then
        local p = key_path(k)
        if not p then return usage(flag .. " " .. raw .. ": malformed key (use name, name[key] or name[])") end
        local ok, err = put(target, p, v, flag, raw)
        if not ok then return usage(err) end
      else
        if v ~= flextell.null then
          local s = type(v) == "string" and v or tostring(v)
          local cur = target[k]
          if cur == nil then target[k] = s
          elseif type(cur) == "table" then cur[#cur + 1] = s
          else target[k] = { cur, s } end
        end
      end
    end
    if writes then req.body = target end
  end
  return req
end

-- The status line and headers on stderr (--include).
local function include(status, headers)
  local names = {}
  for k in pairs(headers or {}) do names[#names + 1] = k end
  table.sort(names)
  local out = { "HTTP/1.1 " .. tostring(status) }
  for _, k in ipairs(names) do out[#out + 1] = output.printable(k .. ": " .. headers[k]) end
  io.stderr:write(table.concat(out, "\n"), "\n\n")
end

-- The text of `data` (or the whole body when raw or when it has none): text, a, b.
local function payload(body, raw)
  if raw then return body, 1, #body end
  local a, b = jsontext.member(body, "data")
  if a then return body, a, b end
  return body, 1, #body
end

--- Prints what the request would send (--dry-run): the request line, headers, a blank line and
-- the body.
function M.dry_run(client, req, show_secrets)
  req.reveal_token = show_secrets or nil
  local p, err = client:prepare(req)
  if not p then
    output.error(err)
    return output.exit_code(err)
  end
  local out = { p.method .. " " .. p.url }
  for _, h in ipairs(p.headers) do out[#out + 1] = h end
  output.out(table.concat(out, "\n"), "\n\n")
  if p.body and p.body ~= "" then output.out(p.body, "\n") end
  return 0
end

--- One call; prints the result. Returns the exit code.
function M.once(client, req, a, style)
  req.raw_body = true
  local data, meta, res = client:request(req)
  if data == nil then
    local err = meta
    if a.include and err.status then include(err.status, err.headers) end
    output.error(err)
    return output.exit_code(err)
  end
  if a.include then include(res.status, res.headers) end
  if data == true and (res.body == nil or res.body:match("^%s*$")) then return 0 end -- 204: no body
  local text, x, y = payload(res.body, a.raw)
  local ok, err = output.json(style, text, x, y)
  if not ok then
    output.error("the response could not be printed: " .. tostring(err))
    return 1
  end
  if not a.raw and meta.has_more and output.isatty(2) then
    output.note("(more pages follow: add --paginate to get them all)")
  end
  return 0
end

-- A progress line on stderr, only for a terminal: items so far / total, and the rate.
local function progress(started, n, total, final)
  if final then
    io.stderr:write("\r\27[K")
    return
  end
  local elapsed = core.time() - started
  local rate = elapsed > 0 and n / elapsed or 0
  io.stderr:write(string.format("\r\27[K%d%s items  %.0f items/s", n, total and ("/" .. tostring(total)) or "", rate))
end

--- Every page of a list, items streamed as they arrive: one JSON array, or JSON lines with
-- --jsonl. On a failure the array is left open (not valid JSON) and the exit code says why.
function M.paginate(client, req, a, style)
  local show = output.isatty(2)
  local pager = client:pager(req.path, req.query, { headers = req.headers, tenant = req.tenant, raw_body = true })
  local n, opened, first = 0, false, true
  local started = core.time()
  local max = a.max_items
  local function open()
    if not opened and not a.jsonl then
      output.out("[")
      opened = true
    end
  end
  while true do
    local page, meta, res = pager:next()
    if page == nil then
      if show then progress(started, n, nil, true) end
      if meta ~= nil then
        if a.include and meta.status then include(meta.status, meta.headers) end
        output.flush()
        output.error(meta)
        return output.exit_code(meta)
      end
      break
    end
    if a.include and n == 0 then include(res.status, res.headers) end
    local body = res.body
    local da, db = jsontext.member(body, "data")
    local chunk = {}
    local stopped = false
    for s, e in jsontext.elements(body, da, db) do
      if max and n >= max then
        stopped = true
        break
      end
      n = n + 1
      if a.jsonl then
        chunk[#chunk + 1] = jsontext.format(body, s, e, { color = style.color }) .. "\n"
      else
        local sep = first and (style.indent and "\n  " or "") or (style.indent and ",\n  " or ",")
        first = false
        chunk[#chunk + 1] = sep ..
          jsontext.format(body, s, e, { indent = style.indent, level = 1, color = style.color })
      end
    end
    if show then progress(started, n, nil, true) end
    open()
    output.out(table.concat(chunk))
    if not output.flush() then return 1 end -- main names the write error
    if show then progress(started, n, meta.total, false) end
    if stopped or (max and n >= max and not pager.done) then
      if show then progress(started, n, nil, true) end
      if stopped or not pager.done then
        output.note("flextell: stopped after " .. max .. " items (--max-items); the list has more" ..
          (meta.total and (" (" .. tostring(meta.total) .. " in all)") or ""))
      end
      break
    end
  end
  open()
  if not a.jsonl then output.out((style.indent and not first) and "\n]\n" or "]\n") end
  return 0
end

return M
