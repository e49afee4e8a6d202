-- bin/flextell, run as a separate process against the sandbox, as a user's shell would: every
-- command and flag, the exit code of each error class, paging output, --curl replayed by curl,
-- login end to end (the spec plays the browser), the files it writes, the progress line on a
-- terminal, and no secret printed anywhere.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

local json = flextell.json

local files = require "spec.helpers.files"
local q, read, write, mode_of = files.q, files.read, files.write, files.mode_of

local CLEAN = "unset LD_PRELOAD FLEXTELL_TOKEN FLEXTELL_BASE_URL FLEXTELL_TENANT FLEXTELL_CLIENT_ID " ..
  "FLEXTELL_CLIENT_SECRET FLEXTELL_CA_FILE FLEXTELL_PROFILE BROWSER DISPLAY WAYLAND_DISPLAY NO_COLOR " ..
  "http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy; "

local seen = {} -- every byte the command printed, for the secrets check

-- The command line of one run: environment, arguments, stdin.
local function command(args, o)
  local env = { "XDG_CONFIG_HOME=" .. q(o.config) }
  for k, v in pairs(o.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  local stdin = " </dev/null"
  if o.stdin_closed then
    stdin = " <&-"
  elseif o.stdin then
    local path = o.config .. "/.stdin"
    write(path, o.stdin)
    stdin = " <" .. q(path)
  end
  return CLEAN .. "env " .. table.concat(env, " ") .. " bin/flextell " .. table.concat(parts, " ") .. stdin
end

-- Runs the command; returns stdout, stderr, exit code.
local function run(args, o)
  local errf = os.tmpname()
  local p = assert(io.popen(command(args, o) .. " 2>" .. q(errf) .. "; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local stderr = read(errf) or ""
  os.remove(errf)
  local stdout, code = out:match("^(.*)exit=(%d+)\n$")
  seen[#seen + 1] = out
  seen[#seen + 1] = stderr
  return stdout, stderr, tonumber(code)
end

-- Runs the command on a pseudo-terminal (script(1)): stdout and stderr both a terminal.
local function run_tty(args, o)
  local inner = command(args, o)
  local p = assert(io.popen("script -qefc " .. q(inner) .. " /dev/null </dev/null; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  seen[#seen + 1] = out
  local text, code = out:match("^(.*)exit=(%d+)\n$")
  return text, tonumber(code)
end

describe("flextell (the command) #cli", function()
  local sb, port, secret, cfg, env
  local CUSTOMER_1 = '{"created_at":"2025-01-06T10:00:00Z","deleted_at":null,"email":"ada.knuth1@example.com",' ..
    '"first_name":"Ada","id":1,"last_name":"Knuth","notes":"Prefers morning appointments.",' ..
    '"phone":"+1-555-0101","tags":["vip"],"updated_at":"2025-01-07T10:00:00Z"}'

  setup(function()
    port = sandbox.launcher.free_port()
    secret = "cli-spec-secret-" .. require("flextell.core").random_token(12)
    sb = sandbox.start {
      tokens = { "sandbox-token" },
      clients = { { client_id = "cli-client", client_secret = secret,
        redirect_uris = { "http://127.0.0.1/callback", "http://127.0.0.1:" .. port .. "/callback" } } },
    }
  end)
  teardown(function() sandbox.stop() end)

  before_each(function()
    sb:reset()
    cfg = files.tmpdir()
    env = { FLEXTELL_BASE_URL = sb.url, FLEXTELL_TOKEN = sb.token }
  end)
  after_each(function()
    os.execute("rm -rf " .. q(cfg))
  end)

  local function cli(args, extra)
    local o = { config = cfg, env = {} }
    for k, v in pairs(env) do o.env[k] = v end
    for k, v in pairs(extra or {}) do
      if k == "env" then
        for ek, ev in pairs(v) do o.env[ek] = ev end
      else
        o[k] = v
      end
    end
    return run(args, o)
  end

  local function last_request(path)
    local log = assert(sb:requests { path = path })
    return log.requests[#log.requests], log.count
  end

  describe("help", function()
    it("explains every command, and the exit codes", function()
      local out, _, code = cli { "--help" }
      assert.are.equal(0, code)
      assert.matches("Usage: flextell", out, 1, true)
      for _, line in ipairs {
        "0  success",
        "1  the API answered with an error: HTTP 4xx/5xx",
        "2  usage: bad flags or input",
        "3  authentication needed",
        "4  network, timeout or TLS failure",
      } do
        assert.matches(line, out, 1, true)
      end
      for _, cmd in ipairs { "get", "post", "put", "patch", "delete", "login", "logout", "status", "tenants",
        "config", "sandbox", "completion" } do
        local help, _, c = cli { cmd, "--help" }
        assert.are.equal(0, c, cmd)
        assert.matches("Usage: flextell " .. cmd, help, 1, true)
      end
      local v, _, c = cli { "--version" }
      assert.are.equal(0, c)
      assert.are.equal("flextell " .. flextell._VERSION .. "\n", v)
    end)

    it("shows the usage of the command a bad flag belongs to", function()
      local _, err, code = cli { "get", "/x", "--tenant=-1" }
      assert.are.equal(2, code)
      assert.matches("^Usage: flextell get ", err)
      _, err = cli { "login", "--port", "0" }
      assert.matches("^Usage: flextell login ", err)
      assert.matches("\nflextell: --port must be a whole number from 1 to 65535\n", err, 1, true)
    end)

    it("refuses unknown flags and commands with exit code 2", function()
      for _, args in ipairs { { "get", "/v1/customers", "--bogus" }, { "frobnicate" }, { "get" }, {} } do
        local out, err, code = cli(args)
        assert.are.equal(2, code, table.concat(args, " "))
        assert.are.equal("", out)
        assert.is_truthy(err:find("Usage: flextell", 1, true))
      end
    end)

    it("prints a bash completion script that completes commands and flags", function()
      local script = cli { "completion", "bash" }
      assert.matches("complete -F _flextell", script, 1, true)
      local path = cfg .. "/completion.bash"
      write(path, script)
      local function complete(words)
        local p = io.popen("bash -c " .. q("source " .. q(path) .. "; COMP_WORDS=(" .. words ..
          "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _flextell; echo \"${COMPREPLY[*]}\""))
        local s = p:read("l")
        p:close()
        return s
      end
      assert.are.equal("get", complete("flextell ge"))
      assert.are.equal("--paginate", complete("flextell get /x --pagi"))
      assert.are.equal("start stop status", complete("flextell sandbox st"))
    end)
  end)

  describe("get", function()
    it("prints the envelope's data as the server sent it (order, nulls kept), compact in a pipe", function()
      local out, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.equal(CUSTOMER_1 .. "\n", out)
    end)

    it("--raw prints the whole envelope", function()
      local out, _, code = cli { "get", "/v1/customers/1", "--raw" }
      assert.are.equal(0, code)
      assert.are.equal('{"data":' .. CUSTOMER_1 .. '}\n', out)
    end)

    it("sends -q query parameters, -H headers and --tenant", function()
      local out, _, code = cli { "get", "/_echo/x", "-q", "a=1", "-q", "a=2", "-q", "b=x y", "-H", "X-Trace: abc",
        "--tenant", "7" }
      assert.are.equal(0, code)
      local echo = json.decode(out)
      assert.are.equal("/api/_echo/x?a=1&a=2&b=x%20y", echo.uri)
      assert.are.equal("abc", echo.headers["x-trace"])
      assert.are.equal("7", echo.headers["x-tenant"])
    end)

    it("-H of one name in any spelling: the last wins", function()
      local out, _, code = cli { "get", "/_echo/x", "-H", "X-A: 1", "-H", "x-a: 2", "-H", "X-a: 3",
        "-H", "content-type: text/plain" }
      assert.are.equal(0, code)
      local echo = json.decode(out)
      assert.are.equal("3", echo.headers["x-a"])
      out = cli { "post", "/_echo/x", "-d", "{}", "-H", "content-type: application/vnd.x+json" }
      assert.are.equal("application/vnd.x+json", json.decode(out).headers["content-type"])
    end)

    it("-f and -F on get become query parameters", function()
      local out, _, code = cli { "get", "/_echo/x", "-F", "n=5", "-f", "s=true", "-F", "t=true", "-F", "z=null" }
      assert.are.equal(0, code)
      assert.are.equal("/api/_echo/x?n=5&s=true&t=true", json.decode(out).uri)
    end)

    it("--include prints the status line and headers on stderr", function()
      local out, err, code = cli { "get", "/v1/customers/1", "--include" }
      assert.are.equal(0, code)
      assert.are.equal(CUSTOMER_1 .. "\n", out)
      assert.matches("^HTTP/1.1 200\n", err)
      assert.matches("\ncontent-type: application/json\n", err, 1, true)
      assert.matches("\nx%-request%-id: req_%w+\n", err)
      local _, err404, c404 = cli { "get", "/v1/customers/999999", "-i" }
      assert.are.equal(1, c404)
      assert.matches("^HTTP/1.1 404\n", err404)
      assert.matches("flextell: http 404 not_found: Customer 999999 not found (GET " .. sb.url ..
        "/v1/customers/999999)\n", err404, 1, true)
    end)

    it("pretty, coloured JSON on a terminal; NO_COLOR and --color=never keep it plain", function()
      local out, code = run_tty({ "get", "/v1/customers/1" }, { config = cfg, env = env })
      assert.are.equal(0, code)
      assert.matches('\27[1;39m{\27[0m\r\n  \27[34;1m"created_at"\27[0m\27[1;39m:\27[0m \27[0;32m"2025-01-06T10:00:00Z"',
        out, 1, true)
      local plain_env = { NO_COLOR = "1" }
      for k, v in pairs(env) do plain_env[k] = v end
      local plain = run_tty({ "get", "/v1/customers/1" }, { config = cfg, env = plain_env })
      assert.is_nil(plain:find("\27", 1, true))
      assert.matches('{\r\n  "created_at": "2025-01-06T10:00:00Z",\r\n  "deleted_at": null,', plain, 1, true)
      local never = run_tty({ "get", "/v1/customers/1", "--color", "never" }, { config = cfg, env = env })
      assert.is_nil(never:find("\27", 1, true))
      local always = cli { "get", "/v1/customers/1", "--color", "always" }
      assert.matches('\27[34;1m"created_at"\27[0m', always, 1, true)
    end)
  end)

  it("delete removes, and prints nothing for a 204", function()
    local out, err, code = cli { "delete", "/v1/customers/3" }
    assert.are.equal(0, code, err)
    assert.are.equal("", out)
    assert.are.equal("", err)
    local _, gone, c2 = cli { "delete", "/v1/customers/3" }
    assert.are.equal(1, c2)
    assert.matches("^flextell: http 404 not_found: ", gone)
  end)

  describe("bodies", function()
    it("-F builds typed JSON (numbers, booleans, null, @file, nesting) and -f strings", function()
      local file = cfg .. "/note.txt"
      write(file, "from a file\n")
      local out, _, code = cli { "post", "/_echo/x", "-F", "n=42", "-F", "f=1.5", "-F", "t=true", "-F", "z=null",
        "-f", "s=42", "-F", "tags[]=a", "-F", "tags[]=b", "-F", "addr[city]=Oslo", "-F", "note=@" .. file }
      assert.are.equal(0, code)
      local echo = json.decode(out)
      assert.are.equal("POST", echo.method)
      assert.are.equal("application/json", echo.headers["content-type"])
      assert.are.same({ n = 42, f = 1.5, t = true, s = "42", tags = { "a", "b" }, addr = { city = "Oslo" },
        note = "from a file\n" }, echo.json)
      assert.matches('"z":null', echo.body, 1, true)
      assert.are.equal(math.type(echo.json.n), "integer")
    end)

    it("-F keeps what is not a JSON number a string, and refuses numbers it cannot send exactly", function()
      local out, err, code = cli { "post", "/_echo/x", "-F", "zip=02134", "-F", "dot=1.", "-F", "e=1e3",
        "-F", "neg=-12", "-F", "big=9223372036854775807" }
      assert.are.equal(0, code, err)
      assert.are.equal('{"big":9223372036854775807,"dot":"1.","e":1000,"neg":-12,"zip":"02134"}',
        json.decode(out).body)
      for _, c in ipairs {
        { "n=123456789012345678901234567890", "flextell: -F n=123456789012345678901234567890: the integer " ..
          "does not fit in 64 bits (use -f to send it as a string, or -d for JSON text sent as given)\n" },
        { "n=1e400", "flextell: -F n=1e400: the number is out of range (use -f to send it as a string, or -d " ..
          "for JSON text sent as given)\n" },
        { "x=@" .. cfg, "flextell: -F x: cannot read " .. cfg .. " (Is a directory)\n" },
      } do
        local o, e, rc = cli { "post", "/_echo/x", "-F", c[1] }
        assert.are.equal(2, rc)
        assert.are.equal("", o)
        assert.are.equal(c[2], e)
      end
      local o, e, rc = run({ "post", "/_echo/x", "-d", "-" }, { config = cfg, env = env, stdin_closed = true })
      assert.are.equal(2, rc)
      assert.are.equal("", o)
      assert.are.equal("flextell: -d: cannot read stdin (Bad file descriptor)\n", e)
    end)

    it("-d sends the JSON text as given, from the argument, @file or stdin", function()
      local text = '{"b": 1, "a": [1.0, null]}'
      local out = cli { "put", "/_echo/x", "-d", text }
      assert.are.equal(text, json.decode(out).body)
      local file = cfg .. "/body.json"
      write(file, text)
      out = cli { "patch", "/_echo/x", "-d", "@" .. file }
      assert.are.equal(text, json.decode(out).body)
      out = cli({ "post", "/_echo/x", "-d", "-" }, { stdin = text })
      assert.are.equal(text, json.decode(out).body)
    end)

    it("refuses bad input with exit code 2 and sends nothing", function()
      local _, before = last_request()
      local cases = {
        { { "post", "/v1/customers", "-d", '{"first_name":' }, "flextell: -d: the body is not valid JSON" },
        { { "post", "/v1/customers", "-d", "@" .. cfg .. "/missing.json" }, "flextell: -d: cannot read " },
        { { "post", "/v1/customers", "-d", "{}", "-f", "a=1" }, "flextell: give a body with -d or fields with -f/-F" },
        { { "get", "/v1/customers", "-d", "{}" }, "flextell: -d sends a body: use post, put or patch" },
        { { "get", "/v1/customers", "-q", "novalue" }, "flextell: -q novalue: expected key=value" },
        { { "get", "/v1/customers", "-H", "NoColon" }, "flextell: -H NoColon: expected 'Name: value'" },
        { { "get", "/v1/customers", "-H", "Host: evil" }, "flextell: usage invalid_header" },
        { { "post", "/v1/customers", "-F", "a[=1" }, "flextell: -F a[=1: malformed key" },
        { { "get", "/v1/customers", "--tenant", "x" }, "--tenant must be a whole number" },
        { { "get", "/v1/customers", "--tenant", "99999999999999999999" }, "flextell: --tenant is too large" },
        { { "get", "/v1/customers", "--tenant", "1e2" }, "flextell: --tenant must be a whole number >= 0" },
        { { "get", "/v1/customers", "--paginate", "--raw" }, "flextell: --raw prints one answer's whole body" },
        { { "get", "/v1/customers", "--paginate", "--max-items", "99999999999999999999" },
          "flextell: --max-items is too large" },
        { { "get", "//x", "--dry-run" }, "flextell: usage invalid_path: " },
        { { "get", "//x", "--curl" }, "flextell: usage invalid_path: " },
        { { "post", "/x", "-F", "a[b]=2", "-F", "a=1" }, "flextell: -F a=1: a is already an object" },
        { { "post", "/x", "-F", "a=1", "-F", "a[b]=2" }, "flextell: -F a[b]=2: a is already a value" },
        { { "post", "/x", "-F", "a[]=1", "-F", "a[x]=2" }, "flextell: -F a[x]=2: a mixes a list and named keys" },
        { { "post", "/x", "-F", "a[x]=1", "-F", "a[]=2" }, "flextell: -F a[]=2: a mixes a list and named keys" },
        { { "post", "/x", "-F", "x=@-", "-F", "y=@-" }, "flextell: -F y: stdin was read already (by -F x); " ..
          "it can be read once" },
        { { "get", "/v1/customers", "--base-url", "not a url" }, "flextell: --base-url: base_url must be an absolute" },
        { { "get", "v1/customers" }, "flextell: PATH must start with /" },
        { { "get", "/v1/customers", "--jsonl" }, "flextell: --jsonl goes with --paginate" },
        { { "post", "/v1/customers", "--paginate" }, "flextell: --paginate walks a list: use get" },
        { { "get", "/v1/customers", "--show-secrets" }, "flextell: --show-secrets goes with --curl or --dry-run" },
      }
      for _, c in ipairs(cases) do
        local out, err, code = cli(c[1], { stdin = "x" })
        assert.are.equal(2, code, table.concat(c[1], " ") .. ": " .. err)
        assert.are.equal("", out)
        assert.is_truthy(err:find(c[2], 1, true), err)
      end
      local _, after = last_request()
      assert.are.equal(before, after)
    end)
  end)

  describe("exit codes", function()
    it("1 for API errors: http, protocol, decode, limit", function()
      local _, err, code = cli { "get", "/v1/customers/999999" }
      assert.are.equal(1, code)
      assert.are.equal("flextell: http 404 not_found: Customer 999999 not found (GET " .. sb.url ..
        "/v1/customers/999999)\n", err)
      _, err, code = cli { "post", "/v1/customers", "-F", "first_name=A" }
      assert.are.equal(1, code)
      assert.matches("^flextell: http 422 validation_error: ", err)
      assert(sb:arm { path = "/api/v1/customers/1", fault = "malformed" })
      _, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(1, code)
      assert.matches("^flextell: decode 200 invalid_json: ", err)
      assert(sb:arm { path = "/api/v1/customers/1", fault = "status", status = 429, retry_after = "7" })
      _, err, code = cli { "get", "/v1/customers/1", "--max-retries", "0" }
      assert.are.equal(1, code)
      assert.matches("^flextell: limit 429 rate_limit_exceeded: ", err)
      assert(sb:arm { path = "/api/v1/customers/1", fault = "redirect" })
      _, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(1, code)
      assert.matches("^flextell: protocol 302 redirect: ", err)
    end)

    it("3 when authentication is needed", function()
      local _, err, code = cli({ "get", "/v1/customers/1" }, { env = { FLEXTELL_TOKEN = "wrong-token" } })
      assert.are.equal(3, code)
      assert.matches("^flextell: auth 401 invalid_token: ", err)
      env.FLEXTELL_TOKEN = nil
      local out
      out, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(3, code)
      assert.are.equal("", out)
      assert.are.equal("flextell: not logged in (profile default): run `flextell login`, or set FLEXTELL_TOKEN\n", err)
    end)

    it("4 for network, timeout and TLS failures", function()
      local closed = "http://127.0.0.1:" .. sandbox.launcher.free_port() .. "/api"
      local _, err, code = cli({ "get", "/v1/customers/1", "--max-retries", "0" },
        { env = { FLEXTELL_BASE_URL = closed } })
      assert.are.equal(4, code)
      assert.matches("^flextell: network connect_failed: ", err)
      assert(sb:arm { path = "/api/v1/customers/1", fault = "delay", seconds = 3 })
      _, err, code = cli { "get", "/v1/customers/1", "--timeout", "0.5", "--max-retries", "0" }
      assert.are.equal(4, code)
      assert.matches("^flextell: timeout timeout: ", err)
    end)

    it("4 for TLS verification, which --ca-file fixes", function()
      local tls = sandbox.launcher.start { tls = true, tokens = { "sandbox-token" } }
      finally(function() tls:stop() end)
      local _, err, code = cli({ "get", "/v1/customers/1" }, { env = { FLEXTELL_BASE_URL = tls.https_url } })
      assert.are.equal(4, code)
      assert.matches("^flextell: tls tls_verify_failed: ", err)
      local out
      out, err, code = cli({ "get", "/v1/customers/1", "--ca-file", tls.ca_file },
        { env = { FLEXTELL_BASE_URL = tls.https_url } })
      assert.are.equal(0, code, err)
      assert.are.equal(CUSTOMER_1 .. "\n", out)
    end)
  end)

  it("exits 1 and says so when the output cannot be written", function()
    for _, args in ipairs { { "get", "/v1/customers/1" }, { "get", "/resources", "--paginate", "--jsonl" } } do
      local errf = os.tmpname()
      local p = assert(io.popen(command(args, { config = cfg, env = env }) .. " >/dev/full 2>" .. q(errf) ..
        "; echo \"exit=$?\""))
      local out = p:read("a")
      p:close()
      local err = read(errf)
      os.remove(errf)
      assert.are.equal("exit=1\n", out)
      assert.are.equal("flextell: cannot write the output (No space left on device)\n", err)
    end
    -- the walk stopped at the first page it could not write
    assert.are.equal(1, select(2, last_request("/api/resources")))
  end)

  describe("Ctrl-C", function()
    it("ends a call with exit code 2, and warns that a write may have been sent", function()
      for _, c in ipairs { { "get", "^flextell: interrupted\n$" },
        { "post", "^flextell: interrupted; the request may have reached the server %(check before repeating it%)\n$" } } do
        assert(sb:arm { path = "/api/_echo/slow", fault = "delay", seconds = 5 })
        local errf = os.tmpname()
        local p = assert(io.popen(CLEAN .. "env XDG_CONFIG_HOME=" .. q(cfg) .. " FLEXTELL_BASE_URL=" .. q(sb.url) ..
          " FLEXTELL_TOKEN=" .. q(sb.token) .. " timeout --preserve-status -s INT 1 bin/flextell " .. c[1] ..
          " /_echo/slow </dev/null 2>" .. q(errf) .. "; echo \"exit=$?\""))
        local out = p:read("a")
        p:close()
        local err = read(errf)
        os.remove(errf)
        assert.are.equal("exit=2\n", out)
        assert.matches(c[2], err)
      end
    end)
  end)

  describe("--paginate", function()
    local function all_ids(path, query)
      local client = flextell.new { base_url = sb.url, token = sb.token }
      local items = assert(client:all(path, query))
      client:close()
      local ids = {}
      for i, it_ in ipairs(items) do ids[i] = it_.id end
      return ids
    end

    it("walks page style into one JSON array, and cursor style as JSON lines", function()
      local out, err, code = cli { "get", "/v1/customers", "--paginate", "-q", "per_page=7" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local items = json.decode(out)
      local ids = {}
      for i, c in ipairs(items) do ids[i] = c.id end
      assert.are.same(all_ids("/v1/customers", { per_page = 7 }), ids)
      assert.are.equal(45, #ids)
      assert.matches('"deleted_at":null', out, 1, true)

      local _, before = last_request("/api/resources")
      out, err, code = cli { "get", "/resources", "--paginate", "--jsonl", "-q", "limit=10" }
      assert.are.equal(before + 9, select(2, last_request("/api/resources")))
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local n, got = 0, {}
      for line in out:gmatch("([^\n]*)\n") do
        n = n + 1
        got[n] = json.decode(line).id
        assert.matches('"description":null', line, 1, true)
      end
      assert.are.equal(84, n)
      assert.are.same(all_ids("/resources", { limit = 10 }), got)
    end)

    it("--max-items stops after N items and says so", function()
      local out, err, code = cli { "get", "/resources", "--paginate", "--max-items", "25", "-q", "limit=10" }
      assert.are.equal(0, code)
      assert.are.equal(25, #json.decode(out))
      assert.are.equal("flextell: stopped after 25 items (--max-items); the list has more (84 in all)\n", err)
      assert.are.equal(3, select(2, last_request("/api/resources")))
    end)

    it("a failure mid-walk leaves the array open and exits non-zero", function()
      -- faults answer in the order they were armed: the first page is real, the second broken
      assert(sb:arm { path = "/api/resources", fault = "delay", seconds = 0, count = 1 })
      assert(sb:arm { path = "/api/resources", fault = "malformed", count = 1 })
      local out, err, code = cli { "get", "/resources", "--paginate", "-q", "limit=10" }
      assert.are.equal(1, code)
      assert.matches('^%[{"created_at":', out)
      assert.are.equal(10, select(2, out:gsub('"id":"res_', "")))
      assert.is_nil(out:find("]", #out - 2, true))
      assert.is_nil(json.decode(out))
      assert.matches("^flextell: decode 200 invalid_json: ", err)
    end)

    it("shows a progress line on a terminal only", function()
      local out, code = run_tty({ "get", "/resources", "--paginate", "--jsonl", "-q", "limit=20" },
        { config = cfg, env = env })
      assert.are.equal(0, code)
      assert.matches("\r\27%[K20/84 items  %d+ items/s", out)
      assert.matches("\r\27%[K84/84 items  %d+ items/s", out)
      local _, err = cli { "get", "/resources", "--paginate", "--jsonl", "-q", "limit=20" }
      assert.are.equal("", err)
    end)
  end)

  describe("--curl and --dry-run", function()
    it("--curl prints a command that gives the same result, token redacted unless --show-secrets", function()
      local line, _, code = cli { "get", "/v1/customers/1" , "--curl" }
      assert.are.equal(0, code)
      assert.matches("Authorization: Bearer <redacted>", line, 1, true)
      assert.is_nil(line:find(sb.token, 1, true))
      local _, count = last_request()
      assert.are.equal(0, count)
      local shown = cli { "get", "/v1/customers/1", "--curl", "--show-secrets" }
      local p = io.popen(shown:gsub("\n$", "") .. " -s")
      local replay = p:read("a")
      p:close()
      local raw = cli { "get", "/v1/customers/1", "--raw" }
      assert.are.equal(raw, replay .. "\n")
    end)

    it("--dry-run prints the request and sends nothing", function()
      local out, _, code = cli { "post", "/v1/customers", "-F", "first_name=Ada", "--tenant", "7", "--dry-run" }
      assert.are.equal(0, code)
      assert.are.equal("POST " .. sb.url .. "/v1/customers\n" ..
        "Accept: application/json\n" ..
        "User-Agent: " .. out:match("User%-Agent: ([^\n]*)") .. "\n" ..
        "Authorization: Bearer <redacted>\n" ..
        "X-Tenant: 7\n" ..
        "Content-Type: application/json\n\n" ..
        '{"first_name":"Ada"}\n', out)
      local _, count = last_request()
      assert.are.equal(0, count)
    end)
  end)

  describe("settings", function()
    it("a flag wins over the environment, which wins over the profile", function()
      local _, _, code = cli { "config", "set", "tenant", "1" }
      assert.are.equal(0, code)
      assert.are.equal(0, select(3, cli { "config", "set", "base_url", "http://127.0.0.1:1/api" }))
      local function dry(args, extra)
        local out = cli(args, extra)
        return out:match("^POST (%S+)"), out:match("\nX%-Tenant: (%d+)\n")
      end
      env.FLEXTELL_BASE_URL = nil
      local url, tenant = dry { "post", "/x", "--dry-run" }
      assert.are.equal("http://127.0.0.1:1/api/x", url)
      assert.are.equal("1", tenant)
      url, tenant = dry({ "post", "/x", "--dry-run" }, { env = { FLEXTELL_BASE_URL = "http://127.0.0.1:2/api",
        FLEXTELL_TENANT = "7" } })
      assert.are.equal("http://127.0.0.1:2/api/x", url)
      assert.are.equal("7", tenant)
      url, tenant = dry({ "post", "/x", "--dry-run", "--base-url", "http://127.0.0.1:3/api", "--tenant", "42" },
        { env = { FLEXTELL_BASE_URL = "http://127.0.0.1:2/api", FLEXTELL_TENANT = "7" } })
      assert.are.equal("http://127.0.0.1:3/api/x", url)
      assert.are.equal("42", tenant)
    end)

    it("config changes from processes at once all land (the file is locked and replaced atomically)", function()
      local procs = {}
      for i = 1, 8 do
        procs[i] = assert(io.popen(command({ "config", "set", "scope", "s" .. i, "--profile", "p" .. i },
          { config = cfg, env = {} }) .. " 2>&1; echo \"exit=$?\""))
      end
      for i = 1, 8 do
        assert.are.equal("exit=0\n", procs[i]:read("a"))
        procs[i]:close()
      end
      local conf = json.decode(read(cfg .. "/flextell/config.json"))
      for i = 1, 8 do assert.are.equal("s" .. i, conf.profiles["p" .. i].scope) end
      assert.are.equal("600", mode_of(cfg .. "/flextell/config.json"))
    end)

    it("FLEXTELL_PROFILE naming a missing profile is refused as --profile is", function()
      local _, err, code = cli({ "get", "/v1/customers/1" }, { env = { FLEXTELL_PROFILE = "nope" } })
      assert.are.equal(2, code)
      assert.matches("^flextell: no profile 'nope' in ", err)
    end)

    it("a value of the wrong type in the file is named, shown as JSON, and can be fixed", function()
      os.execute("mkdir -p " .. q(cfg .. "/flextell"))
      write(cfg .. "/flextell/config.json", '{"profiles":{"default":{"client_id":[1],"tenant":"abc"}}}')
      local _, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(2, code)
      assert.are.equal("flextell: profile 'default': client_id must be a string, not a JSON array\n", err)
      local out = cli { "config", "list" }
      assert.are.equal("client_id = [1]\ntenant = abc\n", out)
      assert.are.equal(0, select(3, cli { "config", "unset", "client_id" }))
      assert.are.equal(0, select(3, cli { "config", "set", "tenant", "7" }))
      out, err, code = cli { "get", "/_echo/t" }
      assert.are.equal(0, code, err)
      assert.are.equal("7", json.decode(out).headers["x-tenant"])
      _, err, code = cli { "config", "set", "base_url", "not a url" }
      assert.are.equal(2, code)
      assert.matches("base_url must be an absolute http:// or https:// URL", err, 1, true)
    end)

    it("config set, get, unset and list; the secret is redacted", function()
      assert.are.equal(0, select(3, cli { "config", "set", "client_secret", "s3cret-value", "--profile", "work" }))
      assert.are.equal(0, select(3, cli { "config", "set", "client_id", "cid", "--profile", "work" }))
      local out, _, code = cli { "config", "list", "--profile", "work" }
      assert.are.equal(0, code)
      assert.are.equal("client_id = cid\nclient_secret = <redacted>\n", out)
      assert.are.equal("cid\n", (cli { "config", "get", "client_id", "--profile", "work" }))
      assert.are.equal(0, select(3, cli { "config", "unset", "client_id", "--profile", "work" }))
      assert.are.equal(1, select(3, cli { "config", "get", "client_id", "--profile", "work" }))
      local _, err
      _, err, code = cli { "config", "set", "port", "70000" }
      assert.are.equal(2, code)
      assert.are.equal("flextell: port must be a port number (1-65535)\n", err)
      _, err, code = cli { "config", "set", "colour", "x" }
      assert.are.equal(2, code)
      assert.matches("argument 'key' must be one of 'base_url', ", err, 1, true)
      _, err, code = cli { "get", "/v1/customers", "--profile", "nope" }
      assert.are.equal(2, code)
      assert.matches("no profile 'nope'", err, 1, true)
      _, err, code = cli { "config", "list", "--profile", "nope" }
      assert.are.equal(2, code)
      assert.matches("no profile 'nope'", err, 1, true)
      assert.are.equal("600", mode_of(cfg .. "/flextell/config.json"))
      assert.are.equal("700", mode_of(cfg .. "/flextell"))
      os.execute("chmod 755 " .. q(cfg .. "/flextell") .. " " .. q(cfg .. "/flextell/tokens"))
      assert.are.equal(0, select(3, cli { "config", "set", "scope", "x" }))
      assert.are.equal("700", mode_of(cfg .. "/flextell"))
      assert.are.equal("700", mode_of(cfg .. "/flextell/tokens"))
      write(cfg .. "/flextell/config.json", "[1]")
      _, err, code = cli { "get", "/v1/customers" }
      assert.are.equal(2, code)
      assert.matches("is not a flextell config file", err, 1, true)
    end)
  end)

  describe("login", function()
    local browser_dir

    before_each(function()
      env = { FLEXTELL_BASE_URL = sb.url }
      browser_dir = cfg .. "/browser"
      os.execute("mkdir -p " .. q(browser_dir))
      write(browser_dir .. "/open", "#!/bin/sh\nprintf '%s\\n' \"$1\" > " .. q(browser_dir .. "/url") .. "\n")
      os.execute("chmod +x " .. q(browser_dir .. "/open"))
    end)

    -- Starts `flextell login` in the background; returns a function that waits for its end.
    local function start_login(args)
      local o = { config = cfg, env = { FLEXTELL_BASE_URL = sb.url, BROWSER = browser_dir .. "/open",
        FLEXTELL_CLIENT_ID = "cli-client", FLEXTELL_CLIENT_SECRET = secret } }
      local errf = cfg .. "/login.err"
      local full = { "login", "--port", tostring(port) }
      for _, a in ipairs(args or {}) do full[#full + 1] = a end
      local p = assert(io.popen(command(full, o) .. " 2>" .. q(errf) .. "; echo \"exit=$?\""))
      return function()
        local out = p:read("a")
        p:close()
        local err = read(errf) or ""
        seen[#seen + 1] = out
        seen[#seen + 1] = err
        local stdout, code = out:match("^(.*)exit=(%d+)\n$")
        return stdout, err, tonumber(code)
      end
    end

    -- The browser: waits for the URL the command opened.
    local function opened_url()
      for _ = 1, 200 do
        local url = read(browser_dir .. "/url")
        if url and url:match("\n$") then return (url:gsub("\n$", "")) end
        os.execute("sleep 0.05")
      end
      error("the command never opened a browser")
    end

    -- The browser lands on the redirect: GET it from the command's loopback listener.
    local function land(location)
      local p = io.popen("curl -s --noproxy '*' -w '\\n%{http_code}' " .. q(location))
      local page = p:read("a")
      p:close()
      return page:match("^(.*)\n(%d+)$")
    end

    local function login_ok()
      local wait = start_login { "--scope", "customers:read tenants:read" }
      local url = opened_url()
      assert.matches("^" .. sb.url:gsub("/api$", ""):gsub("%p", "%%%0") .. "/oauth/authorize%?", url)
      assert.matches("code_challenge_method=S256", url, 1, true)
      assert.matches("redirect_uri=http%3A%2F%2F127.0.0.1%3A" .. port .. "%2Fcallback", url, 1, true)
      local location = assert(sb:approve(url))
      local page, status = land(location)
      assert.are.equal("200", status)
      assert.matches("<h1>Logged in</h1>", page, 1, true)
      local out, err, code = wait()
      assert.are.equal(0, code, err)
      assert.are.equal("", out)
      assert.matches("Logged in to " .. sb.url .. " (profile default)", err, 1, true)
      return err
    end

    it("runs the Authorization Code flow through a loopback redirect with PKCE and saves the tokens", function()
      login_ok()
      local dir = cfg .. "/flextell"
      assert.are.equal("700", mode_of(dir))
      assert.are.equal("600", mode_of(dir .. "/config.json"))
      assert.are.equal("600", mode_of(dir .. "/tokens/default.json"))
      local conf = json.decode(read(dir .. "/config.json"))
      assert.are.same({ base_url = sb.url, client_id = "cli-client", client_secret = secret, port = port,
        scope = "customers:read tenants:read", issuer = sb.url:match("^(http://[^/]+)") }, conf.profiles.default)
      local oauth = assert(sb:oauth())
      assert.are.equal(1, oauth.grants.authorization_code)
      -- later runs use the stored tokens, with no credentials in the environment
      local out, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(0, code, err)
      assert.are.equal(CUSTOMER_1 .. "\n", out)
      out, err, code = cli { "status" }
      assert.are.equal(0, code, err)
      assert.matches("\ntoken     %*%*%*%*%*%*%*%* %(%d+ characters%) from " .. dir:gsub("%p", "%%%0") ..
        "/tokens/default.json, with a refresh token\n", out)
      assert.matches("\nexpires   %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ %(in 5%d min%)\n", out)
      assert.matches("\nscope     customers:read tenants:read\n", out, 1, true)
      assert.matches("\naccount   3 tenants: Flextell Demo Clinic (1), Seven Oaks Spa (7), Answer Dental (42)\n",
        out, 1, true)
      out, err, code = cli { "tenants" }
      assert.are.equal(0, code, err)
      assert.are.equal('[{"id":1,"name":"Flextell Demo Clinic"},{"id":7,"name":"Seven Oaks Spa"},' ..
        '{"id":42,"name":"Answer Dental"}]\n', out)
    end)

    it("refreshes expired tokens and saves the new ones; processes at once refresh once", function()
      login_ok()
      local path = cfg .. "/flextell/tokens/default.json"
      local before = json.decode(read(path))
      assert(sb:expire_tokens())
      local waits = {}
      for i = 1, 4 do
        waits[i] = assert(io.popen(command({ "get", "/v1/customers/" .. i }, { config = cfg, env = env }) ..
          " 2>&1; echo \"exit=$?\""))
      end
      for i = 1, 4 do
        local out = waits[i]:read("a")
        waits[i]:close()
        seen[#seen + 1] = out
        assert.matches('"id":' .. i .. ',', out, 1, true)
        assert.matches("exit=0\n$", out)
      end
      local oauth = assert(sb:oauth())
      assert.are.equal(1, oauth.grants.refresh_token)
      assert.are.equal(0, oauth.refresh_tokens.revoked or 0)
      local after = json.decode(read(path))
      assert.are_not.equal(before.refresh_token, after.refresh_token)
      assert.are.equal(before.version + 1, after.version)
      assert.are.equal("600", mode_of(path))
    end)

    it("--no-browser reads the pasted redirect URL", function()
      local url_file = cfg .. "/pasted"
      -- the spec reads the URL from stderr and answers on stdin: run it in two steps with a fifo
      os.execute("mkfifo " .. q(url_file))
      local o = { config = cfg, env = { FLEXTELL_BASE_URL = sb.url, FLEXTELL_CLIENT_ID = "cli-client",
        FLEXTELL_CLIENT_SECRET = secret } }
      local errf = cfg .. "/nb.err"
      local p = assert(io.popen(command({ "login", "--no-browser", "--port", tostring(port) }, o):gsub(
        " </dev/null$", "") .. " <" .. q(url_file) .. " 2>" .. q(errf) .. "; echo \"exit=$?\""))
      local paste = assert(io.open(url_file, "w")) -- the command's stdin, open once its shell reads it
      local url
      for _ = 1, 200 do
        url = (read(errf) or ""):match("\n  (http://%S+)\n")
        if url then break end
        os.execute("sleep 0.05")
      end
      assert.is_string(url)
      local location = assert(sb:approve(url))
      paste:write(location .. "\n")
      paste:close()
      local out = p:read("a")
      p:close()
      local err = read(errf)
      seen[#seen + 1] = err
      assert.matches("exit=0\n$", out)
      assert.matches("Paste that whole address here: ", err, 1, true)
      assert.matches("Logged in to ", err, 1, true)
      assert.are.equal(0, select(3, cli { "get", "/v1/customers/1" }))
    end)

    it("redirects without this login's state are answered 400 and ignored; the real one logs in", function()
      local wait = start_login()
      local url = opened_url()
      local location = assert(sb:approve(url))
      for _, forged in ipairs { (location:gsub("state=[^&]+", "state=forged")), "http://127.0.0.1:" .. port ..
        "/callback", "http://127.0.0.1:" .. port .. "/callback?error=access_denied" } do
        local page, status = land(forged)
        assert.are.equal("400", status)
        assert.matches("This is not the redirect flextell login is waiting for", page, 1, true)
      end
      assert.is_nil(read(cfg .. "/flextell/tokens/default.json"))
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
      local page, status = land(location)
      assert.are.equal("200", status)
      assert.matches("<h1>Logged in</h1>", page, 1, true)
      local _, err, code = wait()
      assert.are.equal(0, code, err)
      local _, ignored = err:gsub("flextell: ignored a redirect to /callback whose state does not match", "")
      assert.are.equal(3, ignored)
    end)

    it("a denial, a busy port or missing credentials fail with the right exit code and save nothing", function()
      local page, status, err, code, location, _
      local wait = start_login()
      location = assert(sb:deny(opened_url()))
      page, status = land(location)
      assert.are.equal("400", status)
      assert.matches("access_denied", page, 1, true)
      _, err, code = wait()
      assert.are.equal(3, code)
      assert.matches("flextell: auth access_denied: ", err, 1, true)
      assert.is_nil(read(cfg .. "/flextell/tokens/default.json"))

      -- a browser that asks for something else first gets a 404 and the wait goes on
      os.remove(browser_dir .. "/url")
      local socket = require "socket"
      local busy = assert(socket.bind("127.0.0.1", port))
      _, err, code = cli({ "login", "--port", tostring(port) }, { env = { FLEXTELL_CLIENT_ID = "cli-client",
        FLEXTELL_CLIENT_SECRET = secret } })
      busy:close()
      assert.are.equal(2, code)
      assert.matches("flextell: login: cannot listen on 127.0.0.1:" .. port, err, 1, true)

      _, err, code = cli { "login" }
      assert.are.equal(2, code)
      assert.matches("login needs the OAuth client's id and secret", err, 1, true)
    end)

    it("--no-browser refuses pasted text that is not the redirect URL", function()
      local _, err, code = run({ "login", "--no-browser", "--port", tostring(port) }, { config = cfg, stdin = "garbage\n",
        env = { FLEXTELL_BASE_URL = sb.url, FLEXTELL_CLIENT_ID = "cli-client", FLEXTELL_CLIENT_SECRET = secret } })
      assert.are.equal(2, code)
      local want = "\nflextell: login: paste the whole address the browser was sent to (http://127.0.0.1:" .. port ..
        "/callback?code=...)\n"
      assert.are.equal(want, err:sub(-#want))
      assert.are.equal(0, sb:requests { path = "/oauth/token" }.count)
    end)

    it("shows the control characters of a redirect's error as \\xHH, never raw", function()
      local wait = start_login()
      local state = opened_url():match("[?&]state=([^&]+)")
      local page, status = land("http://127.0.0.1:" .. port .. "/callback?error=x&error_description=%1b%5b31mRED&state=" ..
        state)
      assert.are.equal("400", status)
      assert.matches("authorization failed: x: \\x1b[31mRED (x)", page, 1, true)
      local _, err, code = wait()
      assert.are.equal(3, code)
      assert.are.equal("flextell: auth x: authorization failed: x: \\x1b[31mRED\n", err:match("flextell: auth.*$"))
    end)

    it("ignores other requests to the listener, and times out", function()
      local wait = start_login { "--timeout", "2" }
      opened_url()
      local page, status = land("http://127.0.0.1:" .. port .. "/favicon.ico")
      assert.are.equal("404", status)
      assert.matches("waits on /callback only", page, 1, true)
      local _, err, code = wait()
      assert.are.equal(3, code)
      assert.are.equal("flextell: auth login_timeout: no answer from the browser within 2 s\n",
        err:match("(flextell: auth[^\n]*\n)"))
    end)

    it("never sends stored tokens to another server than the one that issued them", function()
      login_ok()
      local other = "http://127.0.0.1:" .. sandbox.launcher.free_port() .. "/api"
      for _, o in ipairs { { { "get", "/v1/customers/1", "--base-url", other }, {} },
        { { "get", "/v1/customers/1" }, { env = { FLEXTELL_BASE_URL = other } } } } do
        local out, err, code = cli(o[1], o[2])
        -- 3, not 4: nothing was sent (a connection to the closed port would be a network error)
        assert.are.equal(3, code, err)
        assert.are.equal("", out)
        assert.matches("^flextell: auth other_server: the tokens of profile 'default' were issued by " ..
          sb.url:match("^(http://[^/]+)"):gsub("%p", "%%%0") .. " and are not sent to ", err)
      end
      assert.are.equal(0, select(3, cli { "get", "/v1/customers/1" }))
    end)

    it("a profile without its client secret still uses the stored token, unrefreshed", function()
      login_ok()
      assert.are.equal(0, select(3, cli { "config", "unset", "client_secret" }))
      local out, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(0, code, err)
      assert.are.equal(CUSTOMER_1 .. "\n", out)
      out = cli { "status" }
      assert.matches("(not refreshed: the profile has no client secret)", out, 1, true)
    end)

    it("an unreadable token file: exit 3 with a hint, and login replaces it", function()
      login_ok()
      local path = cfg .. "/flextell/tokens/default.json"
      write(path, "garbage{")
      local _, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(3, code)
      assert.matches("^flextell: auth token_store_error: the token store failed to load: ", err)
      assert.matches("(flextell logout removes the stored tokens; then flextell login)\n", err, 1, true)
      os.remove(browser_dir .. "/url")
      local msg = login_ok()
      assert.matches("the stored tokens could not be read", msg, 1, true)
      assert.are.equal("garbage{", read(path .. ".unreadable"))
      assert.are.equal(0, select(3, cli { "get", "/v1/customers/1" }))
    end)

    it("logout forgets the tokens; the next call needs a login", function()
      login_ok()
      local _, err, code = cli { "logout" }
      assert.are.equal(0, code)
      assert.matches("Logged out of profile default", err, 1, true)
      assert.is_nil(read(cfg .. "/flextell/tokens/default.json"))
      _, err, code = cli { "get", "/v1/customers/1" }
      assert.are.equal(3, code)
      assert.matches("not logged in", err, 1, true)
      local out
      out, _, code = cli { "status" }
      assert.are.equal(3, code)
      assert.matches("\ntoken     none: not logged in (flextell login)\n", out, 1, true)
    end)
  end)

  it("runs the README's examples", function()
    local readme = read("README.md")
    local block = assert(readme:match("\n## The `flextell` command\n.-```sh\n(.-)```"))
    local lines = { "set -e", "cd " .. q(cfg) }
    for line in block:gmatch("[^\n]+") do
      if not line:match("^sh tools/") then lines[#lines + 1] = (line:gsub("%s+#.*$", "")) end
    end
    assert.are.equal(11, #lines) -- set -e, cd, and the nine commands
    write(cfg .. "/customer.json", '{"first_name":"Ada","last_name":"Knuth","email":"ada.knuth@example.com"}')
    write(cfg .. "/readme.sh", table.concat(lines, "\n") .. "\n")
    local root = io.popen("pwd"):read("l")
    local p = assert(io.popen(CLEAN .. "env XDG_CONFIG_HOME=" .. q(cfg) .. " PATH=" .. q(root .. "/bin") ..
      ":\"$PATH\" bash " .. q(cfg .. "/readme.sh") .. " 2>&1; echo \"exit=$?\""))
    local out = p:read("a")
    p:close()
    seen[#seen + 1] = out
    assert.matches("exit=0\n$", out)
    assert.matches('\n45\n', out, 1, true) -- the paginated count
    assert.matches("curl --http1.1", out, 1, true)
    assert.matches("Sandbox stopped.", out, 1, true)
  end)

  describe("sandbox", function()
    it("start --tls exports an HTTPS URL and its CA file", function()
      env = {}
      local out, err, code = cli { "sandbox", "start", "--tls" }
      assert.are.equal(0, code, err)
      finally(function() cli { "sandbox", "stop" } end)
      local vars = {}
      for k, v in out:gmatch("export ([%w_]+)='([^']*)'") do vars[k] = v end
      assert.matches("^https://127%.0%.0%.1:%d+/api$", vars.FLEXTELL_BASE_URL)
      assert.is_string(read(vars.FLEXTELL_CA_FILE))
      local got
      got, err, code = cli({ "get", "/v1/customers/1" }, { env = vars })
      assert.are.equal(0, code, err)
      assert.are.equal(CUSTOMER_1 .. "\n", got)
    end)

    it("start prints exports that work, status finds it, stop ends it", function()
      env = {}
      local out, err, code = cli { "sandbox", "start" }
      assert.are.equal(0, code, err)
      local vars = {}
      for k, v in out:gmatch("export ([%w_]+)='([^']*)'") do vars[k] = v end
      finally(function() cli { "sandbox", "stop" } end)
      assert.matches("^http://127%.0%.0%.1:%d+/api$", vars.FLEXTELL_BASE_URL)
      assert.are.equal("sandbox-token", vars.FLEXTELL_TOKEN)
      assert.matches("Sandbox started at " .. vars.FLEXTELL_BASE_URL, err, 1, true)
      local got
      got, err, code = cli({ "get", "/v1/customers/1" }, { env = vars })
      assert.are.equal(0, code, err)
      assert.are.equal(CUSTOMER_1 .. "\n", got)
      local again
      again, err, code = cli { "sandbox", "start" }
      assert.are.equal(0, code)
      assert.are.equal(out, again)
      assert.matches("already running", err, 1, true)
      local st, _
      st, _, code = cli { "sandbox", "status" }
      assert.are.equal(0, code)
      assert.are.equal(out, st)
      _, err, code = cli { "sandbox", "stop" }
      assert.are.equal(0, code)
      assert.are.equal("Sandbox stopped.\n", err)
      _, _, code = cli { "sandbox", "status" }
      assert.are.equal(1, code)
      _, err, code = cli({ "get", "/v1/customers/1", "--max-retries", "0" }, { env = vars })
      assert.are.equal(4, code)
      assert.matches("connect_failed", err, 1, true)
    end)

    it("a busy port and an unreadable state file are usage errors that say what to do", function()
      env = {}
      local socket = require "socket"
      local busy_port = sandbox.launcher.free_port()
      local busy = assert(socket.bind("127.0.0.1", busy_port))
      local _, err, code = cli { "sandbox", "start", "--port", tostring(busy_port) }
      busy:close()
      assert.are.equal(2, code)
      assert.are.equal("flextell: sandbox: port " .. busy_port .. " is already in use\n", err)
      os.execute("mkdir -p " .. q(cfg .. "/flextell"))
      write(cfg .. "/flextell/sandbox.json", "garbage")
      for _, sub in ipairs { "start", "stop", "status" } do
        _, err, code = cli { "sandbox", sub }
        assert.are.equal(2, code, sub)
        assert.matches("sandbox.json cannot be read as the sandbox's state; if no sandbox runs, remove it", err, 1, true)
      end
    end)
  end)

  it("never prints a secret: client secret, access or refresh token", function()
    local secrets = { secret, "sandbox-token" }
    -- the tokens issued to the command during these specs
    local oauth = assert(sb:oauth())
    assert.is_table(oauth)
    for _, text in ipairs(seen) do
      for _, s in ipairs(secrets) do
        if text:find(s, 1, true) then
          -- the sandbox's own static token is shown by `sandbox start` (it is public); nothing else
          assert.is_truthy(s == "sandbox-token" and text:find("export FLEXTELL_TOKEN='sandbox-token'", 1, true)
            or text:find("Bearer sandbox-token", 1, true), "printed a secret: " .. text)
        end
      end
      -- access and refresh tokens of the sandbox have recognisable prefixes
      assert.is_nil(text:match("sbat_[%w_-]+"), text)
      assert.is_nil(text:match("sbrt_[%w_-]+"), text)
    end
    assert.is_true(#seen > 50)
  end)
end)
