/* Helpers shared by the libFuzzer harnesses (header-only so each harness is one translation
 * unit next to the core's objects). Every input gets a fresh lua_State that is closed at the
 * end: mallocs and frees then balance per input, so libFuzzer's leak detector attributes a
 * leak to the exact input that caused it instead of re-running inputs for Lua's own growth. */
#ifndef FLEXTELL_FUZZ_COMMON_H
#define FLEXTELL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "../src/fx.h"
#include "../src/json.h"

#define FUZZ_UNUSED __attribute__((unused))

int luaopen_flextell_core(lua_State *L);

/* Fails loudly: libFuzzer saves the input, and the message says which invariant broke. */
#define FUZZ_CHECK(cond, ...)                                                                   \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);     \
      fprintf(stderr, __VA_ARGS__);                                                             \
      fputc('\n', stderr);                                                                      \
      abort();                                                                                  \
    }                                                                                           \
  } while (0)

/* A state with the core loaded (registry metatables, JSON markers); the module table is left
 * at index 1. No standard libraries: the harnesses call C functions directly. */
static FUZZ_UNUSED lua_State *fuzz_state(void)
{
  lua_State *L = luaL_newstate();
  if (L == NULL) abort();
  lua_pushcfunction(L, luaopen_flextell_core);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "luaopen_flextell_core failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  return L;
}

/* Makes a client through the real constructor, flextell.new(opts), with opts the table at the
 * top (popped). Leaves the userdata on the stack and returns it. */
static FUZZ_UNUSED fx_client *fuzz_client(lua_State *L, int module)
{
  lua_getfield(L, module, "new");
  lua_insert(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "flextell.new failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  return fx_client_check(L, -1);
}

/* Reads every byte of every reachable value so ASan sees any dangling or short buffer behind a
 * returned string, and calls __tostring where a metatable has one (flextell.Error). */
static unsigned fuzz_sink;

static FUZZ_UNUSED void fuzz_touch(lua_State *L, int idx, int depth)
{
  idx = lua_absindex(L, idx);
  if (!lua_checkstack(L, 8)) abort();
  switch (lua_type(L, idx)) {
  case LUA_TSTRING: {
    size_t n, i;
    const char *s = lua_tolstring(L, idx, &n);
    FUZZ_CHECK(s[n] == '\0', "Lua string not terminated");
    for (i = 0; i < n; i++) fuzz_sink += (unsigned char)s[i];
    break;
  }
  case LUA_TNUMBER:
    fuzz_sink += lua_isinteger(L, idx) ? (unsigned)lua_tointeger(L, idx)
                                       : (unsigned)(lua_tonumber(L, idx) != 0);
    break;
  case LUA_TLIGHTUSERDATA:
    fuzz_sink += lua_touserdata(L, idx) == NULL;
    break;
  case LUA_TTABLE:
    /* decoded JSON is at most 512 deep; the limit only guards the C stack */
    if (depth > 600) break;
    if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
      lua_pop(L, 1);
      luaL_tolstring(L, idx, NULL); /* runs __tostring, e.g. flextell.Error's */
      fuzz_touch(L, -1, depth + 1);
      lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      fuzz_touch(L, -2, depth + 1);
      fuzz_touch(L, -1, depth + 1);
      lua_pop(L, 1);
    }
    break;
  default:
    break;
  }
}

/* A cursor over the fuzz input; reads past the end yield zeros / empty strings so every input
 * is a valid program. */
typedef struct fuzz_reader {
  const uint8_t *p;
  size_t n;
} fuzz_reader;

static FUZZ_UNUSED unsigned fuzz_byte(fuzz_reader *r)
{
  if (r->n == 0) return 0;
  r->n--;
  return *r->p++;
}

static FUZZ_UNUSED const char *fuzz_bytes(fuzz_reader *r, size_t want, size_t *got)
{
  const char *s = (const char *)r->p;
  if (want > r->n) want = r->n;
  r->p += want;
  r->n -= want;
  *got = want;
  return s;
}

/* Length-prefixed byte string: one length byte, 0xFF means a 16-bit little-endian length.
 * The _from form takes a length byte the caller has already read (and looked at). */
static FUZZ_UNUSED void fuzz_push_lstr_from(lua_State *L, fuzz_reader *r, size_t len)
{
  size_t got;
  const char *s;
  if (len == 0xFF) {
    len = fuzz_byte(r);
    len |= (size_t)fuzz_byte(r) << 8;
  }
  s = fuzz_bytes(r, len, &got);
  lua_pushlstring(L, s, got);
}

static FUZZ_UNUSED void fuzz_push_lstr(lua_State *L, fuzz_reader *r)
{
  size_t len = fuzz_byte(r);
  fuzz_push_lstr_from(L, r, len);
}

static FUZZ_UNUSED uint64_t fuzz_u64(fuzz_reader *r)
{
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v |= (uint64_t)fuzz_byte(r) << (8 * i);
  return v;
}

#endif
