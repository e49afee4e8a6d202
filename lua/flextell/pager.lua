--- Paging over both of the API's list styles, detected from the first response:
-- cursor style (meta.cursor / meta.has_more, query cursor) and page style (meta.current_page /
-- meta.last_page, query page). One page is held at a time (two with prefetch), so memory stays
-- flat.
-- @module flextell

local core = require "flextell.core"
local tasks = require "flextell.tasks"

local error, getmetatable, ipairs, next, pairs, pcall, setmetatable, type, tostring =
  error, getmetatable, ipairs, next, pairs, pcall, setmetatable, type, tostring
local table = table
local Error, array_mt = core.Error, core.array_mt

local M = {}

-- A list longer than this many pages is far more likely a server that never ends than data.
M.DEFAULT_MAX_PAGES = 100000

local function fail(kind, code, message, extra)
  local err = { kind = kind, code = code, message = message }
  for k, v in pairs(extra or {}) do err[k] = v end
  return setmetatable(err, Error)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

local Pager = {}
Pager.__index = Pager
Pager.__name = "flextell.Pager"

--- A step pager over a list, from `Client:pager`.
-- The paging style is detected from the first response. Paging that does not advance
-- (`has_more` without a cursor, a cursor seen before, a page number that does not grow) is a
-- `protocol` error, never an endless loop.
-- @type Pager

--- Fetches the next page: page, meta; nil when the list is done; nil, err on failure (the
-- pager does not advance then, so calling next() again retries the same page).
-- @treturn[1] table page the page's items (a JSON array)
-- @treturn[1] table meta
-- @treturn[1] table res
-- @treturn[2] nil when the list is done
-- @return[3] nil, err (a `flextell.Error`: kind `limit`, code `max_pages` past `max_pages`, or
--   code `max_items` when this page would take the list past `max_items`; kind
--   `protocol`, codes `not_a_list`, `invalid_meta`, `missing_cursor`, `repeated_cursor`,
--   `repeated_page`, `style_changed`; or the call's error)
function Pager:next()
  if self.done then return nil end
  if self.max_pages and self.pages >= self.max_pages then
    return nil, fail("limit", "max_pages", "the list has more than " .. self.max_pages .. " pages",
      { path = self.path })
  end
  local data, meta, res
  local ahead = self.ahead
  if ahead then -- the page fetched while the caller worked on the last one
    self.ahead = nil
    if tasks.current() then
      data, meta, res = tasks.await(ahead)
    else
      data, meta, res = core.drive(ahead)
    end
  else
    data, meta, res = self.client:get(self.path, self:_query(), self.call_opts)
  end
  if data == nil then return nil, meta end
  -- only a JSON array is a page: an object, or a body without data, is not an empty list
  if type(data) ~= "table" or getmetatable(data) ~= array_mt then
    return nil, fail("protocol", "not_a_list", "expected a JSON array in the response's data, got " ..
      (type(data) == "table" and "an object" or type(data)),
      { method = res.method, url = res.url, status = res.status })
  end
  local function protocol(code, message)
    return nil, fail("protocol", code, message, { method = res.method, url = res.url, status = res.status })
  end
  -- a page that would take the list past max_items is not handed out in part: the caller gets the
  -- error instead, and the pager stays where it was
  if self.max_items and self.items + #data > self.max_items then
    return nil, fail("limit", "max_items", "the list has more than " .. self.max_items .. " items",
      { path = self.path, method = res.method, url = res.url, status = res.status })
  end
  local style = meta.style
  if self.style ~= nil and style ~= nil and style ~= self.style then
    return protocol("style_changed", "the list changed from " .. self.style .. " to " .. style .. " paging")
  end
  if style == "cursor" then
    if meta.has_more then
      local cursor = meta.cursor
      if cursor == nil or cursor == "" then
        return protocol("missing_cursor", "the page says has_more but gives " ..
          (cursor == "" and "an empty cursor" or "no cursor"))
      end
      if self.seen[cursor] then
        return protocol("repeated_cursor", "the API returned a cursor it had returned before")
      end
      self.seen[cursor] = true
      self.cursor = cursor
    else
      self.done = true
    end
  elseif style == "page" then
    local current = meta.current_page
    if self.last_page_seen ~= nil and current <= self.last_page_seen then
      return protocol("repeated_page", "the API returned page " .. tostring(current) .. " again")
    end
    self.last_page_seen = current
    if meta.has_more then
      self.page = meta.next_page
    else
      self.done = true
    end
  else
    self.done = true -- a list without paging information is a single page
  end
  self.style = self.style or style
  self.pages = self.pages + 1
  self.items = self.items + #data
  if self.prefetch and not self.done and (not self.max_pages or self.pages < self.max_pages) then
    -- the next page goes out now; next() takes it up (a failure there is next()'s to return)
    local req = copy(self.call_opts)
    req.method, req.path, req.query = "GET", self.path, self:_query()
    local call = self.client:start(req)
    if call then
      core.send(call)
      self.ahead = call
    end
  end
  return data, meta, res
end

-- The query of the page to fetch next.
function Pager:_query()
  local query = copy(self.query)
  if self.style == "cursor" and self.cursor ~= nil then
    query.cursor = self.cursor
  elseif self.style == "page" and self.page ~= nil then
    query.page = self.page
  end
  return query
end

--- A plain table that resumes this pager later: client:pager(path, query, { resume = cp }).
-- Save it as JSON.
-- @treturn table the checkpoint
function Pager:checkpoint()
  return {
    path = self.path,
    query = copy(self.query),
    style = self.style,
    cursor = self.cursor,
    page = self.page,
    last_page_seen = self.last_page_seen,
    done = self.done,
  }
end

local pager_opts = { resume = true, max_pages = true, max_items = true, headers = true, tenant = true,
                     timeout = true, deadline = true, max_retries = true, prefetch = true,
                     raw_body = true }
-- the pager's own: the rest are the per-call options, checked by the core
local own_opts = { resume = true, max_pages = true, max_items = true, prefetch = true }
-- query keys the pager sets itself, from the checkpoint's position
local position_keys = { cursor = true, page = true }

-- A whole number, finite (NaN and math.huge fail every test here).
local function is_count(v)
  return type(v) == "number" and v % 1 == 0 and v - v == 0
end

local function show(v)
  if type(v) == "string" then return '"' .. v .. '"' end
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return v == nil and "absent" or tostring(v)
end

local function same_value(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  if #a ~= #b then return false end
  for k, v in pairs(a) do if not same_value(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The first key (sorted) where two queries differ, the pager's own position keys left out.
local function query_difference(a, b)
  local keys, seen = {}, {}
  for _, t in ipairs({ a, b }) do
    for k in pairs(t) do
      if not seen[k] and not position_keys[k] then
        seen[k] = true
        keys[#keys + 1] = k
      end
    end
  end
  table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
  for _, k in ipairs(keys) do
    if not same_value(a[k], b[k]) then return k end
  end
end

local checkpoint_fields = { path = "string", query = "table", style = "string", cursor = "string",
                            page = "number", last_page_seen = "number", done = "boolean" }

-- name: the method's name in messages ("pager", "each", "pages", "all"); errors point at the
-- line that called that method (level 3: new_pager, the method, its caller).
local function new_pager(client, path, query, opts, name)
  local fname = "client:" .. name
  if type(path) ~= "string" then
    error("bad argument #1 to '" .. name .. "' (string expected, got " .. type(path) .. ")", 3)
  end
  if query ~= nil and type(query) ~= "table" then
    error("bad argument #2 to '" .. name .. "' (table expected, got " .. type(query) .. ")", 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to '" .. name .. "' (table expected, got " .. type(opts) .. ")", 3)
  end
  opts = opts or {}
  local call_opts = {}
  for k, v in pairs(opts) do
    if not pager_opts[k] then error("unknown pager option '" .. tostring(k) .. "'", 3) end
    if not own_opts[k] then call_opts[k] = v end
  end
  local max_pages, max_items, prefetch, cp = opts.max_pages, opts.max_items, opts.prefetch, opts.resume
  if max_pages ~= nil and not (is_count(max_pages) and max_pages >= 1) then
    error(fname .. ": option 'max_pages' must be an integer >= 1" ..
      (type(max_pages) ~= "number" and ", got " .. type(max_pages) or ""), 3)
  end
  if max_items ~= nil and not (is_count(max_items) and max_items >= 0) then
    error(fname .. ": option 'max_items' must be an integer >= 0" ..
      (type(max_items) ~= "number" and ", got " .. type(max_items) or ""), 3)
  end
  if prefetch ~= nil and type(prefetch) ~= "boolean" then
    error(fname .. ": option 'prefetch' must be a boolean, got " .. type(prefetch), 3)
  end
  if cp ~= nil and type(cp) ~= "table" then
    error(fname .. ": option 'resume' must be a checkpoint table, got " .. type(cp), 3)
  end
  if next(call_opts) ~= nil then
    -- the per-call options are the core's to check: a wrong one raises here, at the caller's
    -- line, rather than at the first next()
    local req = copy(call_opts)
    req.method, req.path = "GET", path
    local ok, err = pcall(client.prepare, client, req)
    if not ok then
      error(fname .. ": " .. tostring(err):gsub("^request field '", "option '"), 3)
    end
  end
  if cp ~= nil then
    for field, t in pairs(checkpoint_fields) do
      if cp[field] ~= nil and type(cp[field]) ~= t then
        error(fname .. ": option 'resume' is not a checkpoint ('" .. field .. "' must be a " .. t ..
          ", got " .. type(cp[field]) .. ")", 3)
      end
    end
    if cp.path ~= path then
      error("the checkpoint belongs to another list (path " .. tostring(cp.path) .. ")", 3)
    end
    -- the checkpoint holds the query it was made with: an omitted query is that one, a given one
    -- must be the same (cursor and page aside: the checkpoint's position decides those)
    if query == nil then
      query = cp.query
    else
      local k = query_difference(cp.query or {}, query)
      if k ~= nil then
        error("the checkpoint belongs to another list (query key '" .. tostring(k) .. "' is " ..
          show((cp.query or {})[k]) .. " in the checkpoint, " .. show(query[k]) .. " here)", 3)
      end
      query = cp.query
    end
  end
  local p = setmetatable({
    client = client, path = path, query = copy(query), call_opts = call_opts,
    max_pages = max_pages or M.DEFAULT_MAX_PAGES, max_items = max_items, prefetch = prefetch,
    seen = {}, pages = 0, items = 0, done = false,
  }, Pager)
  if cp ~= nil then
    p.style, p.cursor, p.page, p.done = cp.style, cp.cursor, cp.page, cp.done and true or false
    p.last_page_seen = cp.last_page_seen
    if cp.cursor ~= nil then p.seen[cp.cursor] = true end
  end
  return p
end

--- @type Client

function M.install(methods)
  --- A step pager: page, meta = pager:next().
  -- `pager:checkpoint()` gives a table that `{ resume = checkpoint }` carries on from.
  -- @function Client:pager
  -- @tparam string path the list's path
  -- @tparam[opt] table query the query
  -- @tparam[opt] table opts `max_pages` (an integer >= 1, default 100000), `max_items` (an
  --   integer >= 0; a page that would take the list past it is a `limit` `max_items` error
  --   instead), `resume` (a checkpoint; with `query` nil its query is used, a given one must
  --   equal it), `prefetch` (a boolean: the next page is fetched while you work on this one), and
  --   the per-call `headers`, `tenant`, `timeout`, `deadline`, `max_retries`, `raw_body`
  -- @treturn Pager the pager
  -- @raise at the caller's line, on a wrong argument type, an option of the wrong type or value,
  --   an unknown option, a checkpoint of another list (another path or query)
  function methods:pager(path, query, opts)
    local p = new_pager(self, path, query, opts, "pager") -- not a tail call: errors name the caller's line
    return p
  end

  --- Iterates over the pages of a list.
  --- for page, meta, res in client:pages(path, query) do ... end  (raises on failure)
  -- @function Client:pages
  -- @tparam string path the list's path
  -- @tparam[opt] table query the query
  -- @tparam[opt] table opts as for `Client:pager`
  -- @return an iterator of `page, meta, res`
  -- @raise the error (a `flextell.Error`) when a page fails: a generic `for` cannot return it
  function methods:pages(path, query, opts)
    local p = new_pager(self, path, query, opts, "pages")
    return function()
      local page, meta, res = p:next()
      if page == nil and meta ~= nil then error(meta, 2) end
      return page, meta, res
    end
  end

  --- Iterates over the items of a list, page after page.
  --- for item in client:each(path, query) do ... end  (raises on failure)
  -- @function Client:each
  -- @tparam string path the list's path
  -- @tparam[opt] table query the query
  -- @tparam[opt] table opts as for `Client:pager`
  -- @return an iterator of the items
  -- @raise the error (a `flextell.Error`) when a page fails: a generic `for` cannot return it
  function methods:each(path, query, opts)
    local p = new_pager(self, path, query, opts, "each")
    local page, i = nil, 0
    return function()
      while true do
        if page ~= nil and i < #page then
          i = i + 1
          return page[i]
        end
        local err
        page, err = p:next()
        if page == nil then
          if err ~= nil then error(err, 2) end
          return nil
        end
        i = 0
      end
    end
  end

  --- Every item of the list in one table, or nil, err. With max_items, a longer list is a
  -- `limit` error rather than a silently shortened result.
  -- @function Client:all
  -- @tparam string path the list's path
  -- @tparam[opt] table query the query
  -- @tparam[opt] table opts as for `Client:pager`
  -- @treturn[1] table items every item, in one array
  -- @return[2] nil, err (a `flextell.Error`; kind `limit`, code `max_items` past `max_items`, or
  --   `max_pages` past `max_pages`)
  function methods:all(path, query, opts)
    local p = new_pager(self, path, query, opts, "all")
    local items, n = core.array(), 0
    while true do
      local page, err = p:next() -- checks max_items
      if page == nil then
        if err ~= nil then return nil, err end
        return items
      end
      for j = 1, #page do
        n = n + 1
        items[n] = page[j]
      end
    end
  end
end

return M
