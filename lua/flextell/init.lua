--- flextell: the Lua client for the Flextell REST API.
-- The C core (flextell.core) does HTTP, authentication, JSON and errors; this module adds the
-- helpers that compose its calls: paging iterators, resources, tenants, to_curl, and tasks
-- (calls that do not block: spawn, run, step, sleep, wait, batch).
--
-- Every call returns `data, meta, res` on success and `nil, err` on failure, where `err` is a
-- `flextell.Error` (see Class Error). Programmer errors (an unknown option, a wrong argument
-- type, a closed client) raise at once instead.
-- @module flextell

local core = require "flextell.core"
local pager = require "flextell.pager"
local resource = require "flextell.resource"
local to_curl = require "flextell.to_curl"
local file_store = require "flextell.stores.file"
local store_common = require "flextell.stores.common"
local ngx_driver = require "flextell.ngx.driver"
-- inside nginx every call goes to the cosocket driver, and tasks are nginx's light threads
local tasks, await
if ngx_driver.active() then
  ngx_driver.init(core)
  tasks = require "flextell.ngx.tasks"
  tasks.init(core)
  await = ngx_driver.await
else
  tasks = require "flextell.tasks"
  await = tasks.await
end

local package = package
local error, getmetatable, ipairs, pairs, pcall, setmetatable, tostring, type =
  error, getmetatable, ipairs, pairs, pcall, setmetatable, tostring, type

--- Module functions and fields.
-- @section module

--- The library's version, such as `"0.1.0"`.
-- @class field
-- @name _VERSION

--- JSON `null` to send: a NULL light userdata, equal to `cjson.null`.
-- In a decoded array a `null` is `flextell.null`, so indices are kept; an object member that
-- is `null` is left out.
-- @class field
-- @name null

--- The metatable of errors (`flextell.Error`): `getmetatable(err) == flextell.Error`, or
-- `flextell.is_error(err)`. Its `__tostring` gives one readable line.
-- @class field
-- @name Error
local M = {
  _VERSION = core._VERSION,
  null = core.null,
  array = core.array,
  Error = core.Error,
  json = { encode = core.json_encode, decode = core.json_decode },
}

local registered = {}

-- cjson's markers (array_mt, empty_array) mean "JSON array" to us too, when cjson is in use.
local function adopt_cjson_markers()
  for _, name in ipairs { "cjson", "cjson.safe" } do
    local cjson = package.loaded[name]
    if type(cjson) == "table" and not registered[cjson] then
      registered[cjson] = true
      for _, marker in ipairs { "array_mt", "empty_array_mt", "empty_array" } do
        if cjson[marker] ~= nil then core.json_mark_array(cjson[marker]) end
      end
    end
  end
end

local core_new, store_loaded = core.new, core.store_loaded

local function store_error(why)
  local message = type(why) == "table" and why.message or tostring(why)
  return setmetatable({ kind = "auth", code = "token_store_error",
    message = "the token store failed to load: " .. tostring(message) }, core.Error)
end

--- Creates a client; see the README for the options. Raises on unknown or mistyped options.
-- With a token_store the client starts from the tokens the store holds (loaded here, in Lua,
-- so a store may yield); a store that cannot be read raises its error (auth token_store_error).
-- @tparam table opts the options, among them `base_url`, `prefix`, `token`, `client_id`,
--   `client_secret`, `redirect_uri`, `access_token`, `refresh_token`, `expires_at` (epoch seconds),
--   `on_token`, `token_store`, `refresh_margin` (seconds, default 60), `tenant`, `timeout`
--   (seconds per attempt, default 30), `connect_timeout` (seconds, default 10), `deadline` (seconds
--   for the whole call), `max_retries` (default 2), `on_retry`, `pace`, `stall_timeout` (seconds,
--   default 30), `headers`, `user_agent`, `ca_file`, `ca_path`, `proxy`, `write_max_idle` (whole
--   seconds, default 2), `max_response_bytes` (bytes, default 64 MiB), `allow_http`, `transport`,
--   `max_concurrency` (default 16); the README's table under flextell.new says what each does
-- @treturn Client the client
-- @raise on an unknown option or a value of the wrong type, an `http://` base URL to a host that is
--   not loopback (unless `allow_http`), a missing or unreadable `ca_file`/`ca_path`; with a
--   `token_store` that cannot be read, its error (kind `auth`, code `token_store_error`)
-- @usage local client = flextell.new { token = os.getenv "FLEXTELL_TOKEN" }
function M.new(opts)
  local made, client = pcall(core_new, opts)
  if not made then error(client, 2) end -- the error points at the caller's line
  local store = type(opts) == "table" and opts.token_store or nil
  if store == nil then
    if ngx_driver.active() and opts.client_id and ngx.worker.count() > 1 then -- luacheck: ignore 113
      -- each worker would refresh on its own, and the second refresh revokes the grant
      ngx.log(ngx.WARN, "flextell: an OAuth client in an nginx with ", ngx.worker.count(), -- luacheck: ignore 113
        " workers and no token_store: the workers will spend one refresh token twice and lose the grant; ",
        "give it flextell.shared_dict_store(name) or flextell.redis_store{...}")
    end
    return client
  end
  local ok, tokens, version = pcall(store.load, store)
  local why
  if not ok then
    why = tokens
  elseif tokens ~= nil and type(tokens) ~= "table" then
    why = "load() returned tokens that are not a table"
  elseif not store_common.is_version(version) then
    why = (tokens ~= nil or type(version) == "number") and "load() returned a version that is not an integer >= 0"
      or version or "load() did not return tokens and a version (an integer)"
  end
  if why ~= nil then
    client:close()
    error(store_error(why), 2)
  end
  local loaded, err = store_loaded(client, tokens, version)
  if not loaded then
    client:close()
    error(err, 2)
  end
  return client
end

--- Token stores.
--- Token stores, for a grant shared by many holders (see flextell/stores/ and the README).
-- Give every holder of one grant the same store, as `token_store` of `flextell.new`, and no
-- refresh token is ever spent twice. A store of your own has `load`, `save` and `lock` (and its
-- lock `unlock`) as the stores below.
-- @section stores

--- A token store in a JSON file, for the processes of one machine.
-- The file (mode 0600) holds the tokens and a version and is replaced atomically; beside it,
-- `path .. ".lock"` carries the refresh lock. A missing or empty file reads as no tokens yet, but
-- its folder must exist.
-- @function token_file
-- @tparam string path the file of the tokens
-- @treturn TokenFile the store
-- @raise when `path` is not a non-empty string
-- @usage local store = flextell.token_file(os.getenv("HOME") .. "/.flextell-tokens.json")
M.token_file = file_store.new
--- A token store in this Lua state, shared by every client given the same store.
-- For tests, and for clients that do not come from one `with{}`.
-- @function memory_store
-- @treturn MemoryStore the store
M.memory_store = require "flextell.stores.memory"
--- A token store in Redis, for many machines, over the Redis client you already have.
-- The tokens and their version are a hash at `key`; the lock is `key .. ":lock"`.
-- @function redis_store
-- @tparam table opts `redis` (a connection with `conn:eval(script, numkeys, ...)`, such as
--   lua-redis or resty.redis) or `command` (a function called as `fn("EVAL", script, numkeys, ...)`),
--   exactly one of them, and `key` (a non-empty string)
-- @treturn RedisStore the store
-- @raise on an unknown option, both or neither of `redis` and `command`, or a bad `redis`, `command`
--   or `key`
-- @usage local store = flextell.redis_store { redis = redis.connect("127.0.0.1", 6379), key = "flextell:tokens:myapp" }
M.redis_store = require "flextell.stores.redis"
--- A token store in an nginx `lua_shared_dict`, shared by every worker of one nginx.
-- It holds the tokens, the refresh lock (with its ttl as the dict's expiry) and the rate-limit
-- window of `pace = true`. Only inside nginx.
-- @function shared_dict_store
-- @tparam string name the name of the `lua_shared_dict`
-- @tparam[opt="flextell:tokens"] string key the prefix of the keys in the dict
-- @treturn SharedDictStore the store
-- @raise when there is no `lua_shared_dict` of that name
M.shared_dict_store = require "flextell.stores.shared_dict"

--- Module functions and fields.
-- @section module

--- True when v is a flextell.Error.
-- @param v any value
-- @treturn boolean
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.Error
end

local methods = core.Client

-- The calls: the C method blocks outside a task; inside one it returns the call, which the
-- Lua driver then awaits, yielding. The same code runs either way.
local call_mt = core.call_mt
-- A programmer error raised by the C method (a bad argument or option) is raised again at the
-- caller's line, not this wrapper's.
local function rethrow(e, name)
  if type(e) == "string" then
    e = e:gsub("^bad argument #(%d+) to '%?'", function(n) -- counted as a method's: self is not
      return "bad argument #" .. (tonumber(n) - 1) .. " to '" .. name .. "'"
    end)
  end
  error(e, 3)
end
local function nonblocking(fn, name)
  return function(self, ...)
    local ok, a, b, c = pcall(fn, self, ...)
    if not ok then rethrow(a, name) end
    if getmetatable(a) == call_mt then return await(a) end
    return a, b, c
  end
end
for _, name in ipairs { "get", "post", "put", "patch", "delete", "request", "refresh", "exchange_code" } do
  methods[name] = nonblocking(methods[name], name)
end

--- Tasks.
--- Tasks (see flextell/tasks.lua and the README's Non-blocking section).
-- Inside a task every client call yields while its request is in flight, and a scheduler moves
-- all tasks on together; outside a task the same calls block. Results and errors are the same
-- either way. Inside nginx, tasks are nginx's light threads, and `run` and `step` return at once.
-- @section tasks
M.spawn = tasks.spawn
M.run = tasks.run
M.step = tasks.step
M.sleep = tasks.sleep
M.wait = tasks.wait
--- The call object's methods (Class Call), for drivers of your own: `flextell.Call.next(call)`
-- is `call:next()`.
-- @class field
-- @name Call
M.Call = core.Call
--- True when libcurl resolves host names without blocking (a threaded or c-ares resolver): a
-- frame that calls step() then never waits on DNS.
M.async_dns = core.async_dns

--- A client of the API, made by `flextell.new` (and `Client:with`).
-- Its call methods return `data, meta, res` or `nil, err`; inside a task they yield while the
-- request is in flight. All clients of a `lua_State` share one libcurl multi handle, so
-- connections and DNS lookups are reused. `tostring(client)` names the base URL and tenant,
-- never a token.
-- @type Client

--- Runs many requests, at most `concurrency` at once.
--- client:batch(requests, { concurrency = 8 }) -> results: every request (a request{} table)
-- run with at most `concurrency` in flight; results in input order, each { data, meta, res }
-- or { nil, err }. Inside a task it yields; outside it runs the scheduler until all are done.
-- Cancelling the task that runs the batch cancels its workers too.
-- @function Client:batch
-- @tparam {table,...} requests the requests, each a table as for `Client:request`
-- @tparam[opt] table opts `concurrency`: the most requests in flight (an integer >= 1, default 8)
-- @treturn {table,...} one result per request, in input order: `{ data, meta, res }` or `{ nil, err }`
-- @raise when `requests` is not a list of tables, or on a bad option
function methods:batch(requests, opts)
  if type(requests) ~= "table" then
    error("bad argument #1 to 'batch' (table expected, got " .. type(requests) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'batch' (table expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "concurrency" then error("unknown batch option '" .. tostring(k) .. "'", 2) end
  end
  local n, concurrency = #requests, opts.concurrency or 8
  -- a list: no key but 1..n (a table of named requests would otherwise run none, and say nothing)
  for k in pairs(requests) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      error("bad argument #1 to 'batch' (a list of requests expected)", 2)
    end
  end
  if type(concurrency) ~= "number" or concurrency < 1 or concurrency % 1 ~= 0 then
    error("batch option 'concurrency' must be an integer >= 1", 2)
  end
  for i = 1, n do
    if type(requests[i]) ~= "table" then error("batch request " .. i .. " must be a table", 2) end
  end
  local results, next_i = {}, 0
  local function worker()
    while next_i < n do
      next_i = next_i + 1
      local i = next_i
      local ok, data, meta, res = pcall(self.request, self, requests[i])
      if ok then
        results[i] = data ~= nil and { data, meta, res } or { nil, meta }
      else -- a request{} that raises (a programmer error) is that entry's error, not the batch's
        results[i] = { nil, data }
      end
    end
  end
  local workers = {}
  for w = 1, math.min(concurrency, n) do workers[w] = tasks.spawn(worker) end
  -- cancelling the task that runs the batch cancels its workers too
  local me = tasks.current()
  local outer = me and me.owned
  if me then me.owned = workers end
  for w = 1, #workers do tasks.wait(workers[w]) end
  if me then me.owned = outer end
  return results
end

pager.install(methods)
resource.install(methods)
to_curl.install(methods)

--- The tenants of the token's user (GET /v1/account/tenants, sent without X-Tenant).
-- @function Client:tenants
-- @treturn[1] table tenants the list
-- @treturn[1] table meta
-- @treturn[1] table res
-- @return[2] nil, err (a `flextell.Error`)
function methods:tenants()
  return self:get("/v1/account/tenants", nil, { tenant = false })
end

adopt_cjson_markers()

return M
