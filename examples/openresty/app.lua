-- An OpenResty app that calls the Flextell API without blocking its nginx worker (nginx.conf.in
-- beside it). One client per worker, made on first use. Its tokens live in a lua_shared_dict,
-- so every worker shares one grant and one refresh; /login and /callback run the Authorization
-- Code flow once to put them there.
local flextell = require "flextell"

local M = {}

local client

local function get_client()
  if client == nil then
    client = flextell.new {
      base_url = ngx.var.flextell_base_url,
      client_id = ngx.var.flextell_client_id,
      client_secret = ngx.var.flextell_client_secret,
      redirect_uri = ngx.var.flextell_redirect_uri,
      token_store = flextell.shared_dict_store("flextell_tokens"),
      timeout = 5,
    }
  end
  return client
end

local function reply(status, value)
  ngx.status = status
  ngx.header.content_type = "application/json"
  ngx.say(flextell.json.encode(value))
end

-- An error of the API as an answer of this app: the API's own status for an http error, 503
-- while the grant needs a person to authorize again, 502 for the rest.
local function fail(err)
  local status = err.kind == "http" and err.status or (err.kind == "auth" and 503 or 502)
  reply(status, { error = err.code, message = err.message })
end

--- GET /login: to the API's consent page (state kept in the shared dict for ten minutes).
function M.login()
  local url, state = get_client():authorize_url { scope = "customers:read" }
  ngx.shared.flextell_tokens:set("state:" .. state, true, 600)
  return ngx.redirect(url)
end

--- GET /callback?code=&state=: the code exchanged; the tokens go to the shared dict.
function M.callback()
  local state = ngx.var.arg_state or ""
  if not ngx.shared.flextell_tokens:get("state:" .. state) then
    return reply(400, { error = "state_mismatch", message = "unknown or used state" })
  end
  ngx.shared.flextell_tokens:delete("state:" .. state)
  local _, err = get_client():exchange_code(ngx.var.request_uri, { state = state })
  if err then return fail(err) end
  reply(200, { authorized = true })
end

--- GET /customers/<id>: the customer as JSON.
function M.customer(id)
  local data, err = get_client():get("/v1/customers/" .. id)
  if not data then return fail(err) end
  reply(200, data)
end

--- GET /customers: the names of customers 1 to 3, fetched at once.
function M.first_three()
  local results = get_client():batch({ { path = "/v1/customers/1" }, { path = "/v1/customers/2" },
    { path = "/v1/customers/3" } }, { concurrency = 3 })
  local names = {}
  for i, r in ipairs(results) do
    if not r[1] then return fail(r[2]) end
    names[i] = r[1].first_name
  end
  reply(200, flextell.array(names))
end

return M
