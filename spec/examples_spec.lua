-- Every script in examples/ runs as its header says, as a separate lua5.4 process against the
-- sandbox, and prints what it promises: the examples cannot rot.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

local files = require "spec.helpers.files"
local q, read = files.q, files.read

local ROOT = io.popen("pwd"):read("l")
local ENV = "unset LD_PRELOAD FLEXTELL_TOKEN FLEXTELL_BASE_URL; LUA_PATH=" ..
  q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;") .. " LUA_CPATH=" .. q(ROOT .. "/build/lua5.4/?.so;;")

-- The command line of a run of examples/<name> with env (a table) and args.
local function command(name, env, args)
  local parts = { ENV }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = "lua5.4 " .. q(ROOT .. "/examples/" .. name)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- stdout, stderr, exit code of one run.
local function run(name, env, args)
  local errf = os.tmpname()
  local p = assert(io.popen(command(name, env, args) .. " 2>" .. q(errf) .. "; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local err = read(errf)
  os.remove(errf)
  local stdout, code = out:match("^(.*)exit=(%d+)\n$")
  return stdout, err, tonumber(code)
end

describe("examples #cli", function()
  local sb, env, client
  setup(function() sb = sandbox.start() end)
  teardown(function() sandbox.stop() end)
  before_each(function()
    sb:reset()
    env = { FLEXTELL_BASE_URL = sb.url, FLEXTELL_TOKEN = sb.token }
    client = flextell.new { base_url = sb.url, token = sb.token }
  end)
  after_each(function() client:close() end)

  describe("automation.lua", function()
    local function expected()
      local counts, tags = {}, {}
      local items = assert(client:all("/v1/customers"))
      for _, c in ipairs(items) do
        for _, t in ipairs(c.tags) do
          if not counts[t] then tags[#tags + 1] = t end
          counts[t] = (counts[t] or 0) + 1
        end
      end
      table.sort(tags)
      local out = { #items .. " customers" }
      for _, t in ipairs(tags) do out[#out + 1] = string.format("  %-12s %d", t, counts[t]) end
      return table.concat(out, "\n") .. "\n"
    end

    it("counts the customers of every page by tag, retrying a 503", function()
      local want = expected()
      assert.are.equal("45 customers\n", want:match("^[^\n]*\n"))
      assert(sb:arm { path = "/api/v1/customers", fault = "status", status = 503, retry_after = "1" })
      local out, err, code = run("automation.lua", env)
      assert.are.equal(0, code, err)
      assert.are.equal(want, out)
      assert.are.equal("retrying GET " .. sb.url .. "/v1/customers?per_page=100 after HTTP 503 (attempt 1, in 1.0 s)\n", err)
    end)

    it("fails with one line and no report when a page fails", function()
      assert(sb:arm { path = "/api/v1/customers", fault = "status", status = 404 })
      local out, err, code = run("automation.lua", env)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal("flextell: http 404 not_found: Injected fault: HTTP 404 for GET /api/v1/customers. (GET " ..
        sb.url .. "/v1/customers?per_page=100)\n", err)
    end)
  end)

  describe("cron_job.lua", function()
    it("jobs started at once share one grant: one refresh, every job served", function()
      local dir = files.tmpdir()
      finally(function() os.execute("rm -rf " .. q(dir)) end)
      local path = dir .. "/tokens.json"
      local oauth = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
        redirect_uri = sb.redirect_uri, token_store = flextell.token_file(path) }
      local url, state, verifier = oauth:authorize_url { pkce = true }
      assert(oauth:exchange_code(assert(sb:approve(url)), { state = state, code_verifier = verifier }))
      oauth:close()
      assert(sb:expire_tokens())
      local jobs = {}
      local jenv = { FLEXTELL_BASE_URL = sb.url, FLEXTELL_CLIENT_ID = sb.client_id,
        FLEXTELL_CLIENT_SECRET = sb.client_secret, FLEXTELL_TOKEN_FILE = path }
      for i = 1, 4 do jobs[i] = assert(io.popen(command("cron_job.lua", jenv) .. " 2>&1; echo \"exit=$?\"")) end
      for i = 1, 4 do
        local out = jobs[i]:read("a")
        jobs[i]:close()
        assert.are.equal("3 tenants\nexit=0\n", out)
      end
      local stats = assert(sb:oauth())
      assert.are.equal(1, stats.grants.refresh_token)
      assert.are.equal(0, stats.refresh_tokens.revoked or 0)
    end)

    it("exits 3 when the grant is gone", function()
      local dir = files.tmpdir()
      finally(function() os.execute("rm -rf " .. q(dir)) end)
      local _, err, code = run("cron_job.lua", { FLEXTELL_BASE_URL = sb.url, FLEXTELL_CLIENT_ID = sb.client_id,
        FLEXTELL_CLIENT_SECRET = sb.client_secret, FLEXTELL_TOKEN_FILE = dir .. "/none.json" })
      assert.are.equal(3, code)
      assert.matches("^flextell: auth reauth_required: ", err)
    end)
  end)

  describe("frame_pump.lua", function()
    it("loads 20 customers while the frame loop runs", function()
      assert(sb:arm { match = "^/api/v1/customers/", fault = "delay", seconds = 0.3, count = 20 })
      local out, err, code = run("frame_pump.lua", env)
      assert.are.equal(0, code, err)
      local loaded, failed, frames = out:match("^(%d+) customers loaded, (%d+) failed, over (%d+) frames\n$")
      assert.are.equal("20", loaded)
      assert.are.equal("0", failed)
      -- 0.3 s of server delay at 60 frames per second: the loop kept running meanwhile
      assert.is_true(tonumber(frames) >= 10, out)
      assert.matches("^slowest network slice: %d+%.%d ms\n$", err)
    end)
  end)

  describe("batch_import.lua", function()
    it("creates each line, and names the lines that failed", function()
      local path = os.tmpname()
      finally(function() os.remove(path) end)
      local f = assert(io.open(path, "w"))
      for i = 1, 10 do
        f:write(string.format('{"first_name":"Imp%d","last_name":"Orter","email":"imp%d@example.com"}\n', i, i))
        if i == 3 then f:write('{"first_name":"NoEmail","last_name":"Orter"}\n\n') end
      end
      f:close()
      local out, err, code = run("batch_import.lua", env, { path })
      assert.are.equal(1, code)
      assert.are.equal("created 10, failed 1\n", out)
      assert.are.equal("line 4: flextell: http 422 validation_error: The given data was invalid. " ..
        "(email: The email field is required.) (POST " .. sb.url .. "/v1/customers)\n", err)
      local made = assert(client:all("/v1/customers", { search = "Orter" }))
      assert.are.equal(10, #made)
      f = assert(io.open(path, "w"))
      f:write('{"first_name":\n')
      f:close()
      local _, bad, c2 = run("batch_import.lua", env, { path })
      assert.are.equal(2, c2)
      assert.matches("^line 1: not a JSON object %(", bad)
    end)
  end)

  describe("csv_export.lua", function()
    it("writes every customer as an RFC 4180 row", function()
      assert(client:post("/v1/customers", { first_name = 'Ann, "Jr"', last_name = "Line\nBreak",
        email = "ann@example.com" }))
      local out, err, code = run("csv_export.lua", env)
      assert.are.equal(0, code, err)
      local rows = {}
      for row in out:gmatch("(.-)\r\n") do rows[#rows + 1] = row end
      assert.are.equal(47, #rows)
      assert.are.equal("id,first_name,last_name,email,phone,tags,created_at", rows[1])
      assert.are.equal("1,Ada,Knuth,ada.knuth1@example.com,+1-555-0101,vip,2025-01-06T10:00:00Z", rows[2])
      assert.matches('\r\n46,"Ann, ""Jr""","Line\nBreak",ann@example.com,,,', out, 1, true)
    end)

    it("exits non-zero when the list fails", function()
      assert(sb:arm { path = "/api/v1/customers", fault = "status", status = 500, count = 5 })
      local out, err, code = run("csv_export.lua", env)
      assert.are.equal(1, code)
      assert.are.equal("id,first_name,last_name,email,phone,tags,created_at\r\n", out)
      assert.matches("^flextell: http 500 server_error: ", err)
    end)
  end)
end)
