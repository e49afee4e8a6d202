/* JSON codec round trip: decode(input) -> encode -> decode -> encode; the two encodings must be
 * identical, because the encoder writes object keys in byte order and numbers in a canonical
 * form. Also catches memory errors in both directions on arbitrary bytes. */
#include "fuzz_common.h"

/* The encoder refuses more nesting than the decoder accepts (256 vs 512), so a deep document
 * may decode and then fail to encode; any other encode failure of a decoded value is a bug. */
static int depth_refusal(const char *err)
{
  return strstr(err, "nested deeper than") != NULL;
}

/* Runs inside lua_pcall: a raise (only memory errors are allowed to) ends up in the caller. */
static int round_trip(lua_State *L)
{
  const uint8_t *data = (const uint8_t *)lua_touserdata(L, 1);
  size_t size = (size_t)lua_tointeger(L, 2);
  char err[512];
  fx_buf *scratch, *first, *second;
  int value;
  lua_settop(L, 0);
  scratch = fx_buf_push(L); /* userdata-owned buffers: freed by __gc even if Lua raises */
  first = fx_buf_push(L);
  second = fx_buf_push(L);
  if (fx_json_decode(L, (const char *)data, size, scratch, err, sizeof err) != 0) {
    FUZZ_CHECK(lua_gettop(L) == 3, "failed decode left %d values", lua_gettop(L) - 3);
    FUZZ_CHECK(strncmp(err, "invalid JSON at byte ", 21) == 0, "odd decode error: %s", err);
    return 0;
  }
  value = lua_gettop(L);
  FUZZ_CHECK(value == 4, "decode pushed %d values", value - 3);
  fuzz_touch(L, value, 0);
  if (fx_json_encode(L, value, "value", first, err, sizeof err) != 0) {
    FUZZ_CHECK(depth_refusal(err), "decoded value does not encode: %s", err);
    FUZZ_CHECK(first->len == 0, "failed encode left %zu bytes", first->len);
    return 0;
  }
  FUZZ_CHECK(lua_gettop(L) == value, "encode changed the stack");
  if (fx_json_decode(L, first->data, first->len, scratch, err, sizeof err) != 0)
    FUZZ_CHECK(0, "encoder output does not decode: %s\n  text: %.*s", err,
               (int)(first->len > 2000 ? 2000 : first->len), first->data);
  if (fx_json_encode(L, -1, "value", second, err, sizeof err) != 0)
    FUZZ_CHECK(0, "re-decoded value does not encode: %s", err);
  FUZZ_CHECK(first->len == second->len && memcmp(first->data, second->data, first->len) == 0,
             "round trip not stable\n  first:  %.*s\n  second: %.*s",
             (int)(first->len > 2000 ? 2000 : first->len), first->data,
             (int)(second->len > 2000 ? 2000 : second->len), second->data);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lua_State *L = fuzz_state();
  lua_pushcfunction(L, round_trip);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "json round trip raised: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L);
  return 0;
}
