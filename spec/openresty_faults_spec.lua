-- The same faults through both drivers: a call made by libcurl here, and the same call made by
-- the nginx driver inside an nginx app, end with the same error fields (kind, code, status,
-- maybe_sent, attempts) or the same data.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"
local nginx_app = require "spec.helpers.nginx_app"
local one_call = require "spec.helpers.one_call"
local json = flextell.json

describe("#nginx faults through both drivers", function()
  local sb, app
  setup(function()
    sb = sandbox.start { tls = false }
    app = nginx_app.start {
      server = [[
    location = /do {
      content_by_lua_block {
        ngx.req.read_body()
        local t = require("flextell").json.decode(ngx.req.get_body_data())
        ngx.say(require("spec.helpers.one_call")(t))
      }
    }]],
    }
  end)
  teardown(function()
    if app then app:stop() end
    sb:stop()
  end)

  -- what both drivers must agree on: the data without the clock's and the counter's fields
  local function stable(v)
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do
      if k ~= "created_at" and k ~= "updated_at" and k ~= "id" then out[k] = stable(x) end
    end
    return out
  end

  local function here(t)
    return json.decode(one_call(t))
  end

  local function there(t)
    local body = app.prefix .. "/req.json"
    local f = assert(io.open(body, "w"))
    f:write(json.encode(t))
    f:close()
    local p = assert(io.popen(("curl -s --data-binary @%s '%s/do'"):format(body, app.url)))
    local out = p:read("a")
    p:close()
    return json.decode(out) or { raw = out, log = app:log():sub(-2000) }
  end

  local cases = {
    { "a 503, then an answer: retried", { fault = "status", status = 503, retry_after = "0" }, {} },
    { "a 429 with Retry-After: retried", { fault = "status", status = 429, retry_after = "1" }, {} },
    { "a 500 for a POST: not retried", { fault = "status", status = 500, method = "POST" },
      { method = "POST", path = "/v1/customers", body = { first_name = "N", email = "n@example.com" } } },
    { "an answer slower than the timeout", { fault = "delay", seconds = 2 }, {}, { timeout = 1, max_retries = 0 } },
    { "a stalled body", { fault = "stall", seconds = 3 }, {}, { stall_timeout = 1, max_retries = 0 } },
    { "a reset in the body", { fault = "reset" }, {}, { max_retries = 0 } },
    { "a truncated body", { fault = "truncated" }, {}, { max_retries = 0 } },
    { "malformed JSON", { fault = "malformed" }, {} },
    { "an HTML 502 page", { fault = "html" }, {}, { max_retries = 0 } },
    { "a body over max_response_bytes", { fault = "huge", bytes = 2000000, content_length = true }, {},
      { max_response_bytes = 1000000 } },
    { "a chunked body over max_response_bytes", { fault = "huge", bytes = 2000000 }, {},
      { max_response_bytes = 1000000 } },
    { "headers over 64 KiB", { fault = "headers_huge", bytes = 70000 }, {} },
    { "an answer that is not HTTP", { fault = "garbage" }, {}, { max_retries = 0 } },
    { "a hang-up without an answer", { fault = "hangup" }, {}, { max_retries = 0 } },
    { "a redirect", { fault = "redirect" }, {} },
    { "a POST that a warm connection's server hangs up on: never sent twice", { fault = "hangup", method = "POST" },
      { method = "POST", path = "/v1/customers", body = { first_name = "H", email = "h@example.com" } },
      { max_retries = 0 }, "/v1/customers/2" },
    { "a GET that a warm connection's server hangs up on: sent again once", { fault = "hangup" }, {},
      { max_retries = 0 }, "/v1/customers/2" },
  }

  local upload = os.tmpname()
  local f = assert(io.open(upload, "wb"))
  f:write("hello upload")
  f:close()
  cases[#cases + 1] = { "a multipart upload: a file streamed, a field", { fault = "delay", seconds = 0 },
    { method = "POST", path = "/v1/conversations/1/messages/media",
      multipart = { file = { path = upload, filename = "note.txt", content_type = "text/plain" }, message = "hi" } } }
  cases[#cases + 1] = { "a multipart upload: data, a guessed type", { fault = "delay", seconds = 0 },
    { method = "POST", path = "/v1/conversations/1/messages/media",
      multipart = { file = { data = "<svg/>", filename = "a.svg" } } } }

  cases[#cases + 1] = { "a paged walk, cursor style, with a 503 on the way", { fault = "status", status = 503,
    retry_after = "0" }, { path = "/v1/customers", query = { per_page = 5 } }, {}, nil, true }
  cases[#cases + 1] = { "a paged walk, page style", { fault = "delay", seconds = 0 },
    { path = "/resources", query = { limit = 7 } }, {}, nil, true }
  cases[#cases + 1] = { "a body read until the server closes (no Content-Length, not chunked)",
    { fault = "garbage", raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" ..
      '{"data":{"id":9,"name":"until close"}}' }, {}, { max_retries = 0 } }
  cases[#cases + 1] = { "a call for a tenant the token does not have", { fault = "delay", seconds = 0 },
    { path = "/v1/customers/1", tenant = 424242 } }

  for _, case in ipairs(cases) do
    local name, fault, req, opts, warm, all = case[1], case[2], case[3], case[4] or {}, case[5], case[6]
    it(name, function()
      local t = { opts = { base_url = sb.url, token = sb.token }, req = req, warm = warm, all = all }
      for k, v in pairs(opts) do t.opts[k] = v end
      req.path = req.path or "/v1/customers/1"
      fault.path = fault.path or ("/api" .. req.path)
      sb:reset()
      assert(sb:arm(fault))
      local curl = here(t)
      local curl_posts = sb:requests { method = "POST" }.count
      sb:reset()
      assert(sb:arm(fault))
      local ngx = there(t)
      assert.are.same(stable(curl), stable(ngx))
      assert.are.equal(curl_posts, sb:requests { method = "POST" }.count)
    end)
  end
end)
