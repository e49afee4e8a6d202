rockspec_format = "3.0"
package = "lua-flextell"
version = "0.1.0-1"

source = {
  url = "git+https://github.com/flextell/lua-flextell.git",
  tag = "v0.1.0",
}

description = {
  summary = "Lua client for the Flextell REST API, with a C core on libcurl",
  detailed = [[
    require "flextell", make a client, call it, get Lua tables back: OAuth 2.0 tokens that
    refresh themselves, iterators over both pagination styles, structured errors, retries,
    and a local Flextell-compatible sandbox server (nginx + Lua) to try scripts offline.
  ]],
  license = "MIT",
  labels = { "http", "rest", "api", "oauth2", "libcurl" },
}

dependencies = {
  "lua >= 5.1",
  -- for the `flextell` command only (the library needs neither)
  "argparse >= 0.7",
  "luasocket >= 3.0",
}

external_dependencies = {
  -- the header lives under a multiarch folder on Debian; the compiler finds it there itself
  CURL = { library = "curl" },
}

test_dependencies = {
  "busted",
}

test = {
  type = "busted",
}

build = {
  type = "builtin",
  modules = {
    ["flextell.core"] = {
      sources = {
        "src/buffer.c",
        "src/call.c",
        "src/client.c",
        "src/compat.c",
        "src/core.c",
        "src/crypto.c",
        "src/decide.c",
        "src/error.c",
        "src/file.c",
        "src/json.c",
        "src/loop.c",
        "src/oauth.c",
        "src/request.c",
        "src/response.c",
        "src/store.c",
        "src/transport.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "pthread" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    ["flextell.cli.account"] = "lua/flextell/cli/account.lua",
    ["flextell.cli.config"] = "lua/flextell/cli/config.lua",
    ["flextell.cli"] = "lua/flextell/cli/init.lua",
    ["flextell.cli.jsontext"] = "lua/flextell/cli/jsontext.lua",
    ["flextell.cli.output"] = "lua/flextell/cli/output.lua",
    ["flextell.cli.request"] = "lua/flextell/cli/request.lua",
    ["flextell.cli.sandbox"] = "lua/flextell/cli/sandbox.lua",
    ["flextell"] = "lua/flextell/init.lua",
    ["flextell.ngx.driver"] = "lua/flextell/ngx/driver.lua",
    ["flextell.ngx.http"] = "lua/flextell/ngx/http.lua",
    ["flextell.ngx.tasks"] = "lua/flextell/ngx/tasks.lua",
    ["flextell.pager"] = "lua/flextell/pager.lua",
    ["flextell.resource"] = "lua/flextell/resource.lua",
    ["flextell.sandbox.api"] = "lua/flextell/sandbox/api.lua",
    ["flextell.sandbox.app"] = "lua/flextell/sandbox/app.lua",
    ["flextell.sandbox.auth"] = "lua/flextell/sandbox/auth.lua",
    ["flextell.sandbox.collection"] = "lua/flextell/sandbox/collection.lua",
    ["flextell.sandbox.control"] = "lua/flextell/sandbox/control.lua",
    ["flextell.sandbox.echo"] = "lua/flextell/sandbox/echo.lua",
    ["flextell.sandbox.faults"] = "lua/flextell/sandbox/faults.lua",
    ["flextell.sandbox.http"] = "lua/flextell/sandbox/http.lua",
    ["flextell.sandbox"] = "lua/flextell/sandbox/init.lua",
    ["flextell.sandbox.json"] = "lua/flextell/sandbox/json.lua",
    ["flextell.sandbox.multipart"] = "lua/flextell/sandbox/multipart.lua",
    ["flextell.sandbox.oauth"] = "lua/flextell/sandbox/oauth.lua",
    ["flextell.sandbox.resources"] = "lua/flextell/sandbox/resources.lua",
    ["flextell.sandbox.router"] = "lua/flextell/sandbox/router.lua",
    ["flextell.sandbox.seed"] = "lua/flextell/sandbox/seed.lua",
    ["flextell.sandbox.sha256"] = "lua/flextell/sandbox/sha256.lua",
    ["flextell.sandbox.state"] = "lua/flextell/sandbox/state.lua",
    ["flextell.sandbox.store"] = "lua/flextell/sandbox/store.lua",
    ["flextell.sandbox.validate"] = "lua/flextell/sandbox/validate.lua",
    ["flextell.stores.common"] = "lua/flextell/stores/common.lua",
    ["flextell.stores.file"] = "lua/flextell/stores/file.lua",
    ["flextell.stores.memory"] = "lua/flextell/stores/memory.lua",
    ["flextell.stores.redis"] = "lua/flextell/stores/redis.lua",
    ["flextell.stores.shared_dict"] = "lua/flextell/stores/shared_dict.lua",
    ["flextell.tasks"] = "lua/flextell/tasks.lua",
    ["flextell.to_curl"] = "lua/flextell/to_curl.lua",
  },
  install = {
    bin = { ["flextell"] = "bin/flextell", ["flextell-sandbox"] = "bin/flextell-sandbox" },
  },
}
