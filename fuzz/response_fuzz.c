/* The finish step of a call: its last outcome (an answer: status, raw header block and body; or
 * a transport failure with its code) goes through fx_finish into data, meta, res or nil, err,
 * and every returned value is read.
 *
 * Input layout (see fuzz/README.md):
 *   [0..1] status, big-endian, modulo 1000 (so 0, 1xx and 6xx..9xx also occur)
 *   [2]    the outcome: 0 = an answer, else a failure code (byte % FX_F_COUNT; 0 there is an
 *          answer too)
 *   [3]    flags: 1 may have been sent, 8 a text of the failure,
 *          0x70 method index, 0x80 three attempts instead of one
 *   [4..]  raw header block up to and including the first "\r\n\r\n", then the body.
 *          Without that separator everything is headers and the body is empty. */
#include <ctype.h>
#include <time.h>
#include "fuzz_common.h"

static const char *const methods[8] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "GET",
                                       "OPTIONS"};

static int finish_one(lua_State *L)
{
  const uint8_t *data = (const uint8_t *)lua_touserdata(L, 1);
  size_t size = (size_t)lua_tointeger(L, 2), hlen, i;
  fx_client *c;
  fx_call *r;
  unsigned flags;
  int base, n, k;
  fuzz_reader in = {data, size};

  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the module table, at index 1 */
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "https://api.test/api");
  lua_setfield(L, -2, "base_url");
  lua_pushliteral(L, "t");
  lua_setfield(L, -2, "token");
  c = fuzz_client(L, 1);

  /* the call as prepare, a driver and decide leave it at its end */
  r = fx_call_new(L, lua_gettop(L), FX_K_API);
  r->status = (long)(((fuzz_byte(&in) << 8) | fuzz_byte(&in)) % 1000);
  k = (int)fuzz_byte(&in);
  r->out.failure = (fx_failure)(k % FX_F_COUNT);
  flags = fuzz_byte(&in);
  r->out.maybe_sent = (flags & 1) != 0;
  r->out.status = r->out.failure == FX_F_NONE ? r->status : 0;
  if (r->out.failure != FX_F_NONE)
    snprintf(r->detail, sizeof r->detail, "%s", (flags & 8) ? "simulated failure" : fx_failure_code(r->out.failure));
  snprintf(r->method, sizeof r->method, "%s", methods[(flags >> 4) & 7]);
  r->attempts = (flags & 0x80) ? 3 : 1;
  r->pol.max_retries = c->max_retries;
  r->pol.timeout = c->timeout;
  r->connect_timeout = c->connect_timeout;
  r->stall_timeout = c->stall_timeout;
  r->url = fx_strdup("https://api.test/api/v1/things?page=2");
  if (r->url == NULL) luaL_error(L, "not enough memory");
  r->started = fx_now();
  r->state = FX_S_DONE;

  hlen = in.n;
  for (i = 0; i + 4 <= in.n; i++)
    if (memcmp(in.p + i, "\r\n\r\n", 4) == 0) {
      hlen = i + 4;
      break;
    }
  if (fx_buf_add(&r->resp_headers, in.p, hlen) != 0 ||
      fx_buf_add(&r->resp_body, in.p + hlen, in.n - hlen) != 0)
    luaL_error(L, "not enough memory");
  fx_note_response(r); /* the transport's own Retry-After and X-RateLimit-* parsing */

  base = lua_gettop(L);
  n = fx_finish(L, r);
  FUZZ_CHECK(n == 2 || n == 3, "fx_finish returned %d values", n);
  FUZZ_CHECK(lua_gettop(L) >= base + n, "fx_finish returned more values than it pushed");
  if (n == 3) {
    /* success: data (never nil), meta table, res table whose status is the HTTP status */
    FUZZ_CHECK(r->out.failure == FX_F_NONE && r->status >= 200 && r->status < 300,
               "success for status %ld failure %d", r->status, (int)r->out.failure);
    FUZZ_CHECK(!lua_isnil(L, -3), "success with nil data");
    FUZZ_CHECK(lua_istable(L, -2) && lua_istable(L, -1), "meta or res is not a table");
    lua_getfield(L, -1, "status");
    FUZZ_CHECK(lua_tointeger(L, -1) == r->status, "res.status differs");
    lua_pop(L, 1);
    lua_getfield(L, -1, "headers");
    FUZZ_CHECK(lua_istable(L, -1), "res.headers is not a table");
    lua_pop(L, 1);
  } else {
    /* failure: nil, and a flextell.Error with a kind and a message */
    FUZZ_CHECK(lua_isnil(L, -2), "error without a leading nil");
    FUZZ_CHECK(lua_istable(L, -1), "err is not a table");
    FUZZ_CHECK(luaL_getmetafield(L, -1, "__name") == LUA_TSTRING &&
                   strcmp(lua_tostring(L, -1), FX_ERROR_MT) == 0,
               "err lacks the flextell.Error metatable");
    lua_pop(L, 1);
    lua_getfield(L, -1, "kind");
    FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "err.kind is not a string");
    lua_pop(L, 1);
    lua_getfield(L, -1, "message");
    FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "err.message is not a string");
    lua_pop(L, 1);
  }
  for (k = lua_gettop(L) - n + 1; k <= lua_gettop(L); k++) fuzz_touch(L, k, 0);
  if (getenv("FUZZ_VERBOSE") != NULL) { /* what a seed became, to check it does what it should */
    if (n == 2) {
      fprintf(stderr, "%s\n", luaL_tolstring(L, -1, NULL));
    } else {
      lua_getfield(L, -2, "style");
      lua_getfield(L, -3, "has_more");
      fprintf(stderr, "ok %s data=%s style=%s has_more=%s rate_limit=%s\n",
              luaL_typename(L, -5), luaL_typename(L, -5), lua_tostring(L, -2),
              lua_toboolean(L, -1) ? "true" : "false",
              lua_getfield(L, -3, "rate_limit") == LUA_TTABLE ? "yes" : "no");
    }
  }
  lua_settop(L, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lua_State *L = fuzz_state(); /* module table at 1, captured as the upvalue */
  lua_pushcclosure(L, finish_one, 1);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "response harness raised: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L); /* collects the request (its buffers, easy handle) and the client */
  return 0;
}
