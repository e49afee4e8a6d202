/* A growable byte buffer. Its memory belongs to whatever embeds it: a userdata whose __gc
 * calls fx_buf_free, so nothing leaks when Lua raises half way through filling it. */
#ifndef FLEXTELL_BUFFER_H
#define FLEXTELL_BUFFER_H

#include <stddef.h>
#include "compat.h"

typedef struct fx_buf {
  char *data;
  size_t len;
  size_t cap;
} fx_buf;

/* All adders return 0, or -1 when memory runs out (the buffer is then unchanged). */
int fx_buf_reserve(fx_buf *b, size_t extra);
int fx_buf_add(fx_buf *b, const void *p, size_t n);
int fx_buf_addc(fx_buf *b, char c);
int fx_buf_adds(fx_buf *b, const char *s);
void fx_buf_free(fx_buf *b);
#define fx_buf_clear(b) ((b)->len = 0)

/* A buffer owned by a new userdata pushed on the stack (metatable "flextell.Buffer"). */
fx_buf *fx_buf_push(lua_State *L);
void flextell_buffer_open(lua_State *L);

#endif
