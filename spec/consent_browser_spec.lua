-- The consent page driven the way a person drives it: headless Chromium (through chromedriver's
-- WebDriver API, spoken with this library itself) opens the authorize URL, clicks Approve or
-- Deny, and the client turns the redirect it lands on into tokens or an error.
local flextell = require "flextell"
local sandbox = require "spec.helpers.sandbox"

local ELEMENT = "element-6066-11e4-a52e-4f735466cecf"

local function sh(cmd)
  local p = assert(io.popen("unset LD_PRELOAD; " .. cmd))
  local out = p:read("a")
  p:close()
  return (out:gsub("%s+$", ""))
end

-- Starts chromedriver on a free loopback port; returns a WebDriver client and a stop function.
local function start_driver()
  for _ = 1, 10 do
    local port = math.random(20000, 60999)
    local pid = sh("chromedriver --port=" .. port .. " --allowed-ips=127.0.0.1 >/dev/null 2>&1 & echo $!")
    local wd = flextell.new { base_url = "http://127.0.0.1:" .. port, max_retries = 0, timeout = 60 }
    for _ = 1, 50 do
      local status = wd:get("/status")
      if status and status.value and status.value.ready then
        return wd, function() os.execute("kill " .. pid .. " 2>/dev/null") end
      end
      sh("sleep 0.1")
    end
    os.execute("kill " .. pid .. " 2>/dev/null")
  end
  error("chromedriver did not start")
end

describe("the consent page in a browser", function()
  local sb, wd, stop_driver, session, profile

  setup(function()
    math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
    sb = sandbox.start()
    wd, stop_driver = start_driver()
    profile = sh("mktemp -d")
    local res = assert(wd:post("/session", { capabilities = { alwaysMatch = { ["goog:chromeOptions"] = {
      binary = "/usr/bin/chromium",
      args = { "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--user-data-dir=" .. profile },
    } } } }))
    session = "/session/" .. res.value.sessionId
  end)

  teardown(function()
    if session then wd:delete(session) end
    if stop_driver then stop_driver() end
    if profile then os.execute("rm -rf '" .. profile .. "'") end
    sb:stop()
  end)

  local function browse(url)
    assert(wd:post(session .. "/url", { url = url }))
  end

  local function click(css)
    local found = assert(wd:post(session .. "/element", { using = "css selector", value = css }))
    assert(wd:post(session .. "/element/" .. found.value[ELEMENT] .. "/click", {}))
  end

  -- The URL the browser lands on after the form posts (the redirect URI), waiting for it.
  local function landed_url()
    local url
    for _ = 1, 100 do
      url = assert(wd:get(session .. "/url")).value
      if url:sub(1, #sb.redirect_uri) == sb.redirect_uri then return url end
      sh("sleep 0.05")
    end
    return url
  end

  before_each(function()
    sb:reset()
  end)

  it("approves in the browser, and the redirect gives the client its tokens", function()
    local client = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state, verifier = client:authorize_url { scope = "customers:read", pkce = true }
    browse(url)
    local page = assert(wd:get(session .. "/source")).value
    assert.matches("Sandbox Client", page, 1, true)
    assert.matches("customers:read", page, 1, true)
    click("#approve")
    local landed = landed_url()
    assert.matches("^http://127%.0%.0%.1/callback%?code=sbac_[%w_-]+&state=" .. state:gsub("%-", "%%-") .. "$", landed)
    local tokens = assert(client:exchange_code(landed, { state = state, code_verifier = verifier }))
    assert.are.equal("customers:read", tokens.scope)
    assert.are.equal(1, assert(client:get("/v1/customers/1")).id)
    assert.are.equal(1, sb:oauth().authorizations.approved)
  end)

  it("denies in the browser, and the client reports access_denied", function()
    local client = flextell.new { base_url = sb.url, client_id = sb.client_id, client_secret = sb.client_secret,
      redirect_uri = sb.redirect_uri }
    local url, state = client:authorize_url { scope = "customers:read" }
    browse(url)
    click("#deny")
    local tokens, err = client:exchange_code(landed_url(), { state = state })
    assert.is_nil(tokens)
    assert.are.equal("auth", err.kind)
    assert.are.equal("access_denied", err.code)
    assert.are.equal(0, sb:oauth().grants.total)
  end)
end)
