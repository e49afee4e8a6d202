#include <stdlib.h>
#include <string.h>
#include "buffer.h"

#define FX_BUFFER_MT "flextell.Buffer"

int fx_buf_reserve(fx_buf *b, size_t extra)
{
  size_t need, cap;
  char *p;
  if (extra <= b->cap - b->len) return 0;
  if (extra > (size_t)-1 / 2 - b->len) return -1;
  need = b->len + extra;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  p = realloc(b->data, cap);
  if (p == NULL) return -1;
  b->data = p;
  b->cap = cap;
  return 0;
}

int fx_buf_add(fx_buf *b, const void *p, size_t n)
{
  if (n == 0) return 0;
  if (fx_buf_reserve(b, n) != 0) return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int fx_buf_addc(fx_buf *b, char c)
{
  if (b->len == b->cap && fx_buf_reserve(b, 1) != 0) return -1;
  b->data[b->len++] = c;
  return 0;
}

int fx_buf_adds(fx_buf *b, const char *s)
{
  return fx_buf_add(b, s, strlen(s));
}

void fx_buf_free(fx_buf *b)
{
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static int buffer_gc(lua_State *L)
{
  fx_buf_free((fx_buf *)luaL_checkudata(L, 1, FX_BUFFER_MT));
  return 0;
}

fx_buf *fx_buf_push(lua_State *L)
{
  fx_buf *b = (fx_buf *)fx_newuserdata(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, FX_BUFFER_MT);
  return b;
}

void flextell_buffer_open(lua_State *L)
{
  if (luaL_newmetatable(L, FX_BUFFER_MT)) {
    lua_pushcfunction(L, buffer_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
