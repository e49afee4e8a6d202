-- An OpenResty app that calls the Flextell API without blocking its nginx worker (see nginx.conf
-- beside it). One client per worker, made on first use; its tokens live in a lua_shared_dict so
-- every worker shares one grant and one refresh.
local flextell = require "flextell"

local M = {}

local client

local function get_client()
  if client == nil then
    client = flextell.new {
      base_url = os.getenv("FLEXTELL_BASE_URL") or ngx.var.flextell_base_url, -- luacheck: ignore 113
      client_id = ngx.var.flextell_client_id,                                  -- luacheck: ignore 113
      client_secret = ngx.var.flextell_client_secret,                          -- luacheck: ignore 113
      token_store = flextell.shared_dict_store("flextell_tokens"),
      timeout = 5,
    }
  end
  return client
end

--- GET /customers/<id>: the customer as JSON, or the error with a status that fits it.
function M.customer(id)
  local ngx = ngx -- luacheck: ignore 113
  local data, err = get_client():get("/v1/customers/" .. id)
  ngx.header.content_type = "application/json"
  if data then
    ngx.say(flextell.json.encode(data))
    return
  end
  ngx.status = err.kind == "http" and err.status or (err.kind == "auth" and 503 or 502)
  ngx.say(flextell.json.encode { error = err.code, message = err.message })
end

--- GET /customers: the first page of customers and their names, three calls at once.
function M.first_three()
  local ngx = ngx -- luacheck: ignore 113
  local c = get_client()
  local results = c:batch({ { path = "/v1/customers/1" }, { path = "/v1/customers/2" }, { path = "/v1/customers/3" } },
    { concurrency = 3 })
  local names = {}
  for i, r in ipairs(results) do names[i] = r[1] and r[1].first_name or flextell.json.null end
  ngx.header.content_type = "application/json"
  ngx.say(flextell.json.encode(flextell.array(names)))
end

return M
