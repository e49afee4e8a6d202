/* The JSON codec behind every request and response body. Lua 5.4 and LuaJIT must produce the
 * same text for the same data, so number formatting and table classification avoid anything
 * that depends on the Lua version, the C locale or the hash order of a table. */

/***
The JSON codec.
@module flextell
*/

/***
Module functions and fields.
@section module
*/
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

#define ENC_MAXDEPTH 256
#define DEC_MAXDEPTH 512
#define ERRLEN 512
#define MARKERS_KEY "flextell.json.markers"
#define STATE_MT "flextell.json.State"
/* Large buffers go back to the allocator after a call instead of staying pinned to the module. */
#define KEEP_BYTES (64 * 1024)

/* The largest magnitudes an integer literal may have and still be pushed as a number. */
#define NEG_INT_MAX ((uint64_t)1 << FX_INT_EXACT_BITS)
#define POS_INT_MAX (FX_INT_EXACT_BITS >= 63 ? NEG_INT_MAX - 1 : NEG_INT_MAX)
#define EXACT_FLOAT_INT 9007199254740992.0 /* 2^53 */

/* Byte classes shared by both directions: 0 copies as is, 1 needs an escape (or ends a string
 * while decoding), 2 starts a multi-byte UTF-8 sequence that must be validated. */
static const unsigned char char_class[256] = {
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
  2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static const char hex_digits[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7), or 0: this one check
 * refuses overlong forms, surrogates, code points above U+10FFFF and truncated sequences. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
  unsigned c = p[0], lo = 0x80, hi = 0xBF;
  size_t n;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) n = 2;
  else if (c < 0xF0) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) return 0;
  if (n > 2 && (p[2] & 0xC0) != 0x80) return 0;
  if (n > 3 && (p[3] & 0xC0) != 0x80) return 0;
  return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Encoder                                                                                     */

typedef struct key_ref {
  const char *s; /* points into a string the table keeps alive */
  size_t len;
} key_ref;

typedef struct frame {
  const char *key; /* NULL: the step is the array index */
  size_t klen;
  lua_Integer index;
} frame;

/* Inline room for the sorted keys of all open objects; deeper or wider data spills to a buffer
 * owned by a userdata so a memory error cannot leak it. */
#define INLINE_KEYS 64

typedef struct encoder {
  lua_State *L;
  fx_buf *out;
  const char *what;
  char *err;
  size_t errlen;
  int depth;
  int nomem;    /* memory ran out: the caller raises, no message is built */
  int markers;  /* stack index of the marker registry table, 0 until the first table */
  int spill_ix; /* stack index of the slot reserved for the spill buffer's userdata */
  key_ref *keys;
  size_t nkeys, capkeys;
  fx_buf *spill;
  key_ref inline_keys[INLINE_KEYS];
  frame path[ENC_MAXDEPTH + 1];
} encoder;

static int is_ident(const char *s, size_t n)
{
  size_t i;
  if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return 0;
  }
  return 1;
}

/* Prepends text to the path being built right to left; returns 0 when it no longer fits. */
static int path_prepend(char *buf, size_t *pos, const char *s, size_t n)
{
  if (n > *pos) return 0;
  *pos -= n;
  memcpy(buf + *pos, s, n);
  return 1;
}

static int path_prepend_step(char *buf, size_t *pos, const frame *f)
{
  char tmp[96];
  size_t n = 0, i;
  if (f->key == NULL) {
    char num[24], *q = num + sizeof num;
    lua_Integer v = f->index;
    do {
      *--q = (char)('0' + v % 10);
      v /= 10;
    } while (v > 0);
    tmp[n++] = '[';
    memcpy(tmp + n, q, (size_t)(num + sizeof num - q));
    n += (size_t)(num + sizeof num - q);
    tmp[n++] = ']';
  } else if (is_ident(f->key, f->klen) && f->klen < sizeof tmp - 1) {
    tmp[n++] = '.';
    memcpy(tmp + n, f->key, f->klen);
    n += f->klen;
  } else {
    /* Keys in the path were validated as UTF-8 before we went below them. */
    tmp[n++] = '[';
    tmp[n++] = '"';
    for (i = 0; i < f->klen && n < sizeof tmp - 8; i++) {
      unsigned char c = (unsigned char)f->key[i];
      if (c == '"' || c == '\\') tmp[n++] = '\\';
      tmp[n++] = c < 0x20 ? '?' : (char)c;
    }
    if (i < f->klen) {
      while (n > 2 && ((unsigned char)tmp[n - 1] & 0xC0) == 0x80) n--;
      if (n > 2 && (unsigned char)tmp[n - 1] >= 0xC0) n--;
      tmp[n++] = '.';
      tmp[n++] = '.';
      tmp[n++] = '.';
    }
    tmp[n++] = '"';
    tmp[n++] = ']';
  }
  return path_prepend(buf, pos, tmp, n);
}

/* Writes "<path>: <reason>" where the path leads to the value at the current depth; a path too
 * long to show keeps its innermost steps, which are the ones that locate the fault. */
static int enc_fail(encoder *e, const char *fmt, ...)
{
  char reason[192], path[256];
  size_t pos = sizeof path, wlen;
  int d, complete = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  path[--pos] = '\0';
  for (d = e->depth - 1; d >= 0; d--) {
    if (!path_prepend_step(path, &pos, &e->path[d])) {
      complete = 0;
      break;
    }
  }
  wlen = strlen(e->what);
  if (!complete || !path_prepend(path, &pos, e->what, wlen)) {
    while (pos < sizeof path - 1 && ((unsigned char)path[pos] & 0xC0) == 0x80) pos++;
    if (pos < 3) pos = 3;
    path_prepend(path, &pos, "...", 3);
  }
  if (e->errlen > 0) snprintf(e->err, e->errlen, "%s: %s", path + pos, reason);
  return -1;
}

#define OUT(e, p, n) do { if (fx_buf_add((e)->out, (p), (n)) != 0) return enc_nomem(e); } while (0)
#define OUTC(e, c) do { if (out_byte((e)->out, (c)) != 0) return enc_nomem(e); } while (0)

/* fx_buf_addc lives in another file; this hot path wants to be inlined */
static int out_byte(fx_buf *b, char c)
{
  if (b->len == b->cap && fx_buf_reserve(b, 1) != 0) return -1;
  b->data[b->len++] = c;
  return 0;
}

static int enc_nomem(encoder *e)
{
  e->nomem = 1;
  return -1;
}

static int put_integer(encoder *e, lua_Integer v)
{
  char tmp[24], *q = tmp + sizeof tmp;
  /* unsigned arithmetic so the most negative value has a magnitude */
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do {
    *--q = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--q = '-';
  OUT(e, q, (size_t)(tmp + sizeof tmp - q));
  return 0;
}

static int put_float(encoder *e, double x)
{
  char tmp[48];
  int prec, n = 0, i, point = 0, num = 0;
  if (x != x) return enc_fail(e, "NaN is not valid JSON");
  if (x == HUGE_VAL) return enc_fail(e, "Infinity is not valid JSON");
  if (x == -HUGE_VAL) return enc_fail(e, "-Infinity is not valid JSON");
  /* 2.0 on Lua 5.4 and 2 on LuaJIT must print alike; up to 2^53 inclusive, the range LuaJIT
   * treats as integers both ways */
  if (x == floor(x) && fabs(x) <= EXACT_FLOAT_INT) return put_integer(e, (lua_Integer)x);
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(tmp, sizeof tmp, "%.*g", prec, x);
    /* snprintf and strtod share the locale, so the comparison holds whatever it is */
    if (prec == 17 || strtod(tmp, NULL) == x) break;
  }
  if (n < 0 || (size_t)n >= sizeof tmp) return enc_fail(e, "cannot format number");
  /* setlocale() in the host may have made the decimal point a comma, or several bytes */
  for (i = 0; i < n; i++) {
    char c = tmp[i];
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
      tmp[num++] = c;
      if (c == 'e') point = 1;
    } else if (num == 0 || tmp[num - 1] != '.') {
      tmp[num++] = '.';
      point = 1;
    }
  }
  OUT(e, tmp, (size_t)num);
  /* an integral double at or beyond 2^53 keeps a fraction so it decodes as a float again */
  if (!point) OUT(e, ".0", 2);
  return 0;
}

/* Validates and writes s as a JSON string; returns 1 on invalid UTF-8 so the caller can word
 * the message for values and keys, -1 when memory runs out. */
static int put_string(fx_buf *out, const char *str, size_t len)
{
  const unsigned char *s = (const unsigned char *)str, *end = s + len, *run = s;
  char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
  if (fx_buf_reserve(out, len + 2) != 0) return -1;
  out->data[out->len++] = '"';
  while (s < end) {
    unsigned char cls = char_class[*s];
    if (cls == 0) {
      s++;
    } else if (cls == 2) {
      size_t n = utf8_len(s, end);
      if (n == 0) return 1;
      s += n;
    } else {
      const char *seq = esc;
      size_t n = 2;
      if (fx_buf_add(out, run, (size_t)(s - run)) != 0) return -1;
      switch (*s) {
      case '"': seq = "\\\""; break;
      case '\\': seq = "\\\\"; break;
      case '\n': seq = "\\n"; break;
      case '\r': seq = "\\r"; break;
      case '\t': seq = "\\t"; break;
      case '\b': seq = "\\b"; break;
      case '\f': seq = "\\f"; break;
      default:
        esc[4] = hex_digits[*s >> 4];
        esc[5] = hex_digits[*s & 15];
        n = 6;
      }
      if (fx_buf_add(out, seq, n) != 0) return -1;
      run = ++s;
    }
  }
  if (fx_buf_add(out, run, (size_t)(s - run)) != 0 || out_byte(out, '"') != 0) return -1;
  return 0;
}

static int enc_value(encoder *e, int idx);

static int key_cmp(const void *a, const void *b)
{
  const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
  int c;
  if (x->len > 0 && y->len > 0 && x->s[0] != y->s[0])
    return (unsigned char)x->s[0] < (unsigned char)y->s[0] ? -1 : 1;
  c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int push_key(encoder *e, const char *s, size_t len)
{
  if (e->nkeys == e->capkeys) {
    lua_State *L = e->L;
    size_t bytes = e->capkeys * 2 * sizeof(key_ref);
    if (e->spill == NULL) {
      /* the slot keeps the buffer reachable; lua_next's key stays on top around this */
      e->spill = fx_buf_push(L);
      lua_replace(L, e->spill_ix);
    }
    if (e->capkeys > ((size_t)-1 / 4) / sizeof(key_ref)) return -1;
    if (fx_buf_reserve(e->spill, bytes) != 0) return -1;
    if (e->keys == e->inline_keys) memcpy(e->spill->data, e->keys, e->nkeys * sizeof(key_ref));
    e->keys = (key_ref *)(void *)e->spill->data;
    e->capkeys = e->spill->cap / sizeof(key_ref);
  }
  e->keys[e->nkeys].s = s;
  e->keys[e->nkeys].len = len;
  e->nkeys++;
  return 0;
}

/* Writes the object at idx with its string keys in byte order, so equal tables give equal text
 * on every Lua (hash order differs between versions and between two builds of one table). */
static int enc_object(encoder *e, int idx, size_t first)
{
  lua_State *L = e->L;
  size_t i, count = e->nkeys - first;
  frame *f = &e->path[e->depth - 1];
  if (count > 16) {
    qsort(e->keys + first, count, sizeof(key_ref), key_cmp);
  } else { /* insertion sort: API objects are small and often nearly sorted */
    key_ref *k = e->keys + first;
    for (i = 1; i < count; i++) {
      key_ref x = k[i];
      size_t j = i;
      while (j > 0 && key_cmp(&k[j - 1], &x) > 0) {
        k[j] = k[j - 1];
        j--;
      }
      k[j] = x;
    }
  }
  OUTC(e, '{');
  for (i = 0; i < count; i++) {
    key_ref k = e->keys[first + i]; /* copied: deeper levels may move the key array */
    int rc;
    if (i > 0) OUTC(e, ',');
    rc = put_string(e->out, k.s, k.len);
    if (rc > 0) {
      e->depth--; /* the fault is the object's, not one of its members' */
      return enc_fail(e, "invalid UTF-8 in object key");
    }
    if (rc < 0) return enc_nomem(e);
    OUTC(e, ':');
    f->key = k.s;
    f->klen = k.len;
    lua_pushlstring(L, k.s, k.len);
    lua_rawget(L, idx);
    if (enc_value(e, lua_gettop(L)) != 0) return -1;
    lua_pop(L, 1);
  }
  OUTC(e, '}');
  e->nkeys = first;
  return 0;
}

static int enc_array(encoder *e, int idx, lua_Integer n)
{
  lua_State *L = e->L;
  lua_Integer i;
  frame *f = &e->path[e->depth - 1];
  OUTC(e, '[');
  f->key = NULL;
  for (i = 1; i <= n; i++) {
    if (i > 1) OUTC(e, ',');
    f->index = i;
    lua_rawgeti(L, idx, (int)i);
    if (enc_value(e, lua_gettop(L)) != 0) return -1;
    lua_pop(L, 1);
  }
  OUTC(e, ']');
  return 0;
}

enum { SHAPE_AUTO, SHAPE_ARRAY, SHAPE_OBJECT };

/* The shape a metatable asks for: a registered array marker, or dkjson's __jsontype field. */
static int table_shape(encoder *e, int idx)
{
  lua_State *L = e->L;
  int shape = SHAPE_AUTO;
  if (!lua_getmetatable(L, idx)) return SHAPE_AUTO;
  lua_pushvalue(L, -1);
  lua_rawget(L, e->markers);
  if (lua_toboolean(L, -1)) shape = SHAPE_ARRAY;
  lua_pop(L, 1);
  if (shape == SHAPE_AUTO) {
    lua_pushliteral(L, "__jsontype");
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *t = lua_tostring(L, -1);
      if (strcmp(t, "array") == 0) shape = SHAPE_ARRAY;
      else if (strcmp(t, "object") == 0) shape = SHAPE_OBJECT;
      else shape = -1;
    } else if (!lua_isnil(L, -1)) {
      shape = -1;
    }
    if (shape < 0) {
      lua_pop(L, 2);
      return enc_fail(e, "__jsontype must be \"array\" or \"object\"");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return shape;
}

static int enc_table(encoder *e, int idx)
{
  lua_State *L = e->L;
  size_t first = e->nkeys, count = 0, nstr = 0;
  lua_Integer n;
  int shape;
  if (e->depth >= ENC_MAXDEPTH)
    return enc_fail(e, "nested deeper than %d levels (is there a cycle?)", ENC_MAXDEPTH);
  if (!lua_checkstack(L, 6)) return enc_nomem(e); /* the depth cap keeps far below Lua's limits */
  if (e->markers == 0) {
    lua_getfield(L, LUA_REGISTRYINDEX, MARKERS_KEY);
    e->markers = lua_gettop(L);
  }
  shape = table_shape(e, idx);
  if (shape < 0) return -1;
  n = (lua_Integer)lua_rawlen(L, idx);
  e->path[e->depth].key = NULL; /* a fault before the first member names the container */
  e->path[e->depth].klen = 0;
  e->path[e->depth].index = 0;
  e->depth++;
  if (shape == SHAPE_ARRAY) {
    if (enc_array(e, idx, n) != 0) return -1;
    e->depth--;
    return 0;
  }
  /* One pass classifies the keys and collects the string ones for sorting. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int kt = lua_type(L, -2);
    count++;
    if (kt == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, -2, &len);
      nstr++;
      if (push_key(e, s, len) != 0) {
        lua_pop(L, 2);
        e->depth--;
        return enc_nomem(e);
      }
    } else {
      int ok = shape == SHAPE_AUTO && kt == LUA_TNUMBER && nstr == 0 && fx_isinteger(L, -2);
      lua_Integer k = ok ? fx_tointeger(L, -2) : 0;
      if (!ok || k < 1 || k > n) {
        e->depth--;
        lua_pop(L, 2);
        e->nkeys = first;
        if (shape == SHAPE_OBJECT)
          return enc_fail(e, "object key must be a string, not %s", lua_typename(L, kt));
        if (kt != LUA_TNUMBER)
          return enc_fail(e, "table key must be a string or an array index, not %s",
                          lua_typename(L, kt));
        return enc_fail(e, "mixed or sparse table (keys must be all strings, or exactly 1..n)");
      }
    }
    lua_pop(L, 1);
    if (nstr > 0 && nstr != count) {
      lua_pop(L, 1);
      e->depth--;
      e->nkeys = first;
      return enc_fail(e, "mixed or sparse table (keys must be all strings, or exactly 1..n)");
    }
  }
  if (count == 0 && shape == SHAPE_AUTO) {
    e->depth--;
    OUT(e, "{}", 2);
    return 0;
  }
  if (nstr == count) {
    if (enc_object(e, idx, first) != 0) return -1;
  } else if ((lua_Integer)count == n) {
    if (enc_array(e, idx, n) != 0) return -1;
  } else {
    e->depth--;
    return enc_fail(e, "mixed or sparse table (keys must be all strings, or exactly 1..n)");
  }
  e->depth--;
  return 0;
}

static int enc_value(encoder *e, int idx)
{
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    OUT(e, "null", 4);
    return 0;
  case LUA_TBOOLEAN:
    if (lua_toboolean(L, idx)) OUT(e, "true", 4);
    else OUT(e, "false", 5);
    return 0;
  case LUA_TNUMBER:
    if (fx_isinteger(L, idx)) return put_integer(e, fx_tointeger(L, idx));
    return put_float(e, (double)lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    int rc = put_string(e->out, s, len);
    if (rc > 0) return enc_fail(e, "invalid UTF-8");
    if (rc < 0) return enc_nomem(e);
    return 0;
  }
  case LUA_TTABLE:
    return enc_table(e, idx);
  case LUA_TLIGHTUSERDATA: {
    int marker;
    if (lua_touserdata(L, idx) == NULL) {
      OUT(e, "null", 4);
      return 0;
    }
    if (e->markers == 0) {
      if (!lua_checkstack(L, 2)) return enc_nomem(e);
      lua_getfield(L, LUA_REGISTRYINDEX, MARKERS_KEY);
      e->markers = lua_gettop(L);
    }
    lua_pushvalue(L, idx);
    lua_rawget(L, e->markers);
    marker = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!marker)
      return enc_fail(e, "cannot encode a light userdata value as JSON (only null and "
                         "registered array markers)");
    OUT(e, "[]", 2);
    return 0;
  }
  default:
    return enc_fail(e, "cannot encode a %s value as JSON", luaL_typename(L, idx));
  }
}

int fx_json_encode(lua_State *L, int idx, const char *what, fx_buf *out, char *err, size_t errlen)
{
  encoder e;
  int top = lua_gettop(L), rc;
  size_t len0 = out->len;
  idx = fx_absindex(L, idx);
  e.L = L;
  e.out = out;
  e.what = what != NULL ? what : "value";
  e.err = err;
  e.errlen = errlen;
  e.depth = 0;
  e.markers = 0;
  e.keys = e.inline_keys;
  e.nkeys = 0;
  e.capkeys = INLINE_KEYS;
  e.spill = NULL;
  e.nomem = 0;
  if (!lua_checkstack(L, 4)) return FX_JSON_NOMEM;
  lua_pushnil(L);
  e.spill_ix = lua_gettop(L);
  rc = enc_value(&e, idx);
  if (e.spill != NULL) fx_buf_free(e.spill);
  if (rc != 0) out->len = len0;
  lua_settop(L, top);
  return rc != 0 && e.nomem ? FX_JSON_NOMEM : rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Decoder                                                                                     */

/* While the stack has room, up to this many array elements or object members wait on the stack
 * so the table is created at its final size; larger containers switch to direct stores. */
#define PENDING_ARRAY 32
#define PENDING_PAIRS 16
#define GUESS_DEPTHS 16
/* LuaJIT lets one C call hold at most LUAI_MAXCSTACK (8000) slots; stay well below it. */
#define STACK_BUDGET 4000

typedef struct decoder {
  lua_State *L;
  const char *start, *p, *end;
  fx_buf *scratch;
  char *err;
  size_t errlen;
  int base, mt, depth;
  int nomem; /* memory ran out: the caller raises */
  /* members of the last object ended at each depth: the next object there (the items of a
   * list) is made that size at once and filled in place, without rehashing or stacking pairs */
  int guess[GUESS_DEPTHS];
} decoder;

static int dec_fail(decoder *d, const char *at, const char *fmt, ...)
{
  char reason[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  if (d->errlen > 0)
    snprintf(d->err, d->errlen, "invalid JSON at byte %lu: %s", (unsigned long)(at - d->start) + 1,
             reason);
  return -1;
}

static int dec_unexpected(decoder *d, const char *at, const char *expected)
{
  unsigned char c;
  if (at >= d->end) return dec_fail(d, at, "unexpected end of input");
  c = (unsigned char)*at;
  if (c == '/') return dec_fail(d, at, "comments are not allowed");
  if (c > 0x20 && c < 0x7f) return dec_fail(d, at, "unexpected character '%c'%s", c, expected);
  return dec_fail(d, at, "unexpected byte 0x%02x%s", c, expected);
}

#define SKIP_WS(p, end) \
  while ((p) < (end) && (*(p) == ' ' || *(p) == '\n' || *(p) == '\r' || *(p) == '\t')) (p)++

static int dec_value(decoder *d);

static int hex4(const unsigned char *p)
{
  int v = 0, i;
  for (i = 0; i < 4; i++) {
    int c = p[i], h;
    if (c >= '0' && c <= '9') h = c - '0';
    else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
    else return -1;
    v = v * 16 + h;
  }
  return v;
}

/* The rest of a string from the first backslash on, unescaped into scratch. */
static int dec_string_slow(decoder *d, const unsigned char *start, const unsigned char *p)
{
  const unsigned char *end = (const unsigned char *)d->end, *run;
  fx_buf *b = d->scratch;
  fx_buf_clear(b);
  if (fx_buf_add(b, start, (size_t)(p - start)) != 0) goto nomem;
  run = p;
  for (;;) {
    unsigned char c;
    while (p < end && char_class[*p] == 0) p++;
    if (p >= end) return dec_fail(d, d->end, "unterminated string");
    c = *p;
    if (char_class[c] == 2) {
      size_t n = utf8_len(p, end);
      if (n == 0) return dec_fail(d, (const char *)p, "invalid UTF-8 in string");
      p += n;
      continue;
    }
    if (fx_buf_add(b, run, (size_t)(p - run)) != 0) goto nomem;
    if (c == '"') {
      lua_pushlstring(d->L, b->data, b->len);
      d->p = (const char *)p + 1;
      return 0;
    }
    if (c != '\\') return dec_fail(d, (const char *)p, "unescaped control character in string");
    if (p + 1 >= end) return dec_fail(d, d->end, "unterminated string");
    switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
      char utf[4];
      size_t n;
      long cp = end - p >= 6 ? hex4(p + 2) : -1;
      if (cp < 0) return dec_fail(d, (const char *)p, "\\u must be followed by 4 hex digits");
      if (cp >= 0xDC00 && cp <= 0xDFFF)
        return dec_fail(d, (const char *)p, "lone surrogate in \\u escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
          return dec_fail(d, (const char *)p, "lone surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      if (cp < 0x80) {
        utf[0] = (char)cp;
        n = 1;
      } else if (cp < 0x800) {
        utf[0] = (char)(0xC0 | (cp >> 6));
        utf[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
      } else if (cp < 0x10000) {
        utf[0] = (char)(0xE0 | (cp >> 12));
        utf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
      } else {
        utf[0] = (char)(0xF0 | (cp >> 18));
        utf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        utf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
      }
      if (fx_buf_add(b, utf, n) != 0) goto nomem;
      p += 6;
      run = p;
      continue;
    }
    default:
      if (p[1] >= 0x20 && p[1] < 0x7f)
        return dec_fail(d, (const char *)p, "invalid escape '\\%c'", p[1]);
      return dec_fail(d, (const char *)p, "invalid escape (backslash before byte 0x%02x)", p[1]);
    }
    if (fx_buf_addc(b, (char)c) != 0) goto nomem;
    p += 2;
    run = p;
  }
nomem:
  d->nomem = 1;
  return -1;
}

/* Strings without escapes, nearly all of them, go straight from the input to Lua. */
static int dec_string(decoder *d)
{
  const unsigned char *start = (const unsigned char *)d->p + 1, *p = start;
  const unsigned char *end = (const unsigned char *)d->end;
  for (;;) {
    unsigned char c;
    while (p < end && char_class[*p] == 0) p++;
    if (p >= end) return dec_fail(d, d->end, "unterminated string");
    c = *p;
    if (c == '"') {
      lua_pushlstring(d->L, (const char *)start, (size_t)(p - start));
      d->p = (const char *)p + 1;
      return 0;
    }
    if (c == '\\') return dec_string_slow(d, start, p);
    if (c < 0x20) return dec_fail(d, (const char *)p, "unescaped control character in string");
    {
      size_t n = utf8_len(p, end);
      if (n == 0) return dec_fail(d, (const char *)p, "invalid UTF-8 in string");
      p += n;
    }
  }
}

static const double pow10_exact[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

/* A float literal, given its significant digits and exponent (value = digits * 10^e10). */
static int dec_float(decoder *d, const char *lit, size_t litlen, int neg, const char *digits,
                     const char *digits_end, long long e10)
{
  lua_State *L = d->L;
  const char *q;
  size_t nsig = 0;
  uint64_t m = 0;
  double x;
  while (digits < digits_end && (*digits == '0' || *digits == '.')) digits++;
  while (digits_end > digits && (digits_end[-1] == '0' || digits_end[-1] == '.')) {
    if (digits_end[-1] == '0') e10++;
    digits_end--;
  }
  if (digits == digits_end) {
    lua_pushnumber(L, neg ? -0.0 : 0.0);
    return 0;
  }
  for (q = digits; q < digits_end; q++) {
    if (*q == '.') continue;
    if (nsig < 19) m = m * 10 + (uint64_t)(*q - '0');
    nsig++;
  }
#if FLT_EVAL_METHOD == 0
  /* Clinger's fast path: both operands exact, so the one rounding is the correct one. */
  if (nsig <= 15 && e10 >= -22 && e10 <= 22) {
    x = e10 >= 0 ? (double)m * pow10_exact[e10] : (double)m / pow10_exact[-e10];
    lua_pushnumber(L, neg ? -x : x);
    return 0;
  }
#else
  (void)pow10_exact;
#endif
  if ((long long)nsig + e10 > 311) goto overflow;
  if ((long long)nsig + e10 < -330) {
    lua_pushnumber(L, neg ? -0.0 : 0.0);
    return 0;
  }
  {
    /* Digits and an exponent only: no decimal point, so strtod's locale cannot matter. */
    fx_buf *b = d->scratch;
    char *w;
    fx_buf_clear(b);
    if (fx_buf_reserve(b, nsig + 32) != 0) {
      d->nomem = 1;
      return -1;
    }
    w = b->data;
    if (neg) *w++ = '-';
    for (q = digits; q < digits_end; q++)
      if (*q != '.') *w++ = *q;
    sprintf(w, "e%lld", e10);
    errno = 0;
    x = strtod(b->data, NULL);
    if (x == HUGE_VAL || x == -HUGE_VAL) goto overflow;
    lua_pushnumber(L, x);
    return 0;
  }
overflow:
  /* No double holds it; like a too-large integer, hand back the literal unchanged. */
  lua_pushlstring(L, lit, litlen);
  return 0;
}

static int dec_number(decoder *d)
{
  const char *start = d->p, *p = start, *end = d->end, *int_start, *int_end, *frac_end;
  int neg = 0;
  long long exp = 0;
  if (*p == '-') {
    neg = 1;
    p++;
  }
  int_start = p;
  if (p >= end || !IS_DIGIT(*p)) {
    if (p < end && (*p == 'I' || *p == 'i'))
      return dec_fail(d, start, "NaN and Infinity are not valid JSON");
    return dec_fail(d, p, "expected a digit");
  }
  if (*p == '0') {
    p++;
    if (p < end && IS_DIGIT(*p)) return dec_fail(d, int_start, "leading zeros are not allowed");
  } else {
    while (p < end && IS_DIGIT(*p)) p++;
  }
  int_end = frac_end = p;
  if (p < end && *p == '.') {
    p++;
    if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, p, "expected a digit after '.'");
    while (p < end && IS_DIGIT(*p)) p++;
    frac_end = p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    int eneg = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p >= end || !IS_DIGIT(*p)) return dec_fail(d, p, "expected a digit in the exponent");
    while (p < end && IS_DIGIT(*p)) {
      if (exp < 1000000000) exp = exp * 10 + (*p - '0'); /* beyond this, only the sign matters */
      p++;
    }
    if (eneg) exp = -exp;
  } else if (frac_end == int_end) {
    /* An integer literal: exact when it fits, otherwise the literal itself. */
    size_t nd = (size_t)(int_end - int_start);
    uint64_t u = 0;
    const char *q;
    d->p = p;
    if (nd <= 19) { /* 19 digits cannot wrap 64 bits; 20 exceed every limit */
      for (q = int_start; q < int_end; q++) u = u * 10 + (uint64_t)(*q - '0');
      if (!neg && u <= POS_INT_MAX) {
        fx_pushinteger(d->L, (int64_t)u);
        return 0;
      }
      if (neg && u <= NEG_INT_MAX) {
        fx_pushinteger(d->L, u == 0 ? 0 : -(int64_t)(u - 1) - 1);
        return 0;
      }
    }
    lua_pushlstring(d->L, start, (size_t)(p - start));
    return 0;
  }
  d->p = p;
  return dec_float(d, start, (size_t)(p - start), neg, int_start, frac_end,
                   exp - (frac_end > int_end ? (long long)(frac_end - int_end - 1) : 0));
}

static int dec_literal(decoder *d, const char *word, size_t n)
{
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
    return dec_fail(d, d->p, "invalid literal (expected %s)", word);
  d->p += n;
  return 0;
}

static int dec_enter(decoder *d)
{
  if (++d->depth > DEC_MAXDEPTH) return dec_fail(d, d->p, "nested deeper than %d levels", DEC_MAXDEPTH);
  if (!lua_checkstack(d->L, 2 * PENDING_PAIRS + 4)) { /* the depth cap keeps far below Lua's limits */
    d->nomem = 1;
    return -1;
  }
  return 0;
}

static int pending_allowed(decoder *d)
{
  return lua_gettop(d->L) - d->base < STACK_BUDGET;
}

static int dec_array(decoder *d)
{
  lua_State *L = d->L;
  int n = 0, tbl = 0, pending;
  if (dec_enter(d) != 0) return -1;
  d->p++;
  SKIP_WS(d->p, d->end);
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    lua_createtable(L, 0, 0);
  } else {
    pending = pending_allowed(d);
    if (!pending) {
      lua_createtable(L, 0, 0);
      tbl = lua_gettop(L);
    }
    for (;;) {
      if (dec_value(d) != 0) return -1;
      n++;
      if (tbl != 0) {
        lua_rawseti(L, tbl, n);
      } else if (n == PENDING_ARRAY) {
        int i;
        lua_createtable(L, 2 * PENDING_ARRAY, 0);
        lua_insert(L, -(n + 1));
        tbl = lua_gettop(L) - n;
        for (i = n; i >= 1; i--) lua_rawseti(L, tbl, i); /* the top value is element i */
      }
      SKIP_WS(d->p, d->end);
      if (d->p < d->end && *d->p == ',') {
        d->p++;
        SKIP_WS(d->p, d->end);
        if (d->p < d->end && *d->p == ']') return dec_fail(d, d->p, "trailing comma before ']'");
        continue;
      }
      if (d->p < d->end && *d->p == ']') break;
      return dec_unexpected(d, d->p, " (expected ',' or ']')");
    }
    d->p++;
    if (tbl == 0) {
      int i;
      lua_createtable(L, n, 0);
      lua_insert(L, -(n + 1));
      tbl = lua_gettop(L) - n;
      for (i = n; i >= 1; i--) lua_rawseti(L, tbl, i);
    }
  }
  lua_pushvalue(L, d->mt);
  lua_setmetatable(L, -2);
  d->depth--;
  return 0;
}

static int dec_object(decoder *d)
{
  lua_State *L = d->L;
  int npairs = 0, tbl = 0;
  if (dec_enter(d) != 0) return -1;
  d->p++;
  SKIP_WS(d->p, d->end);
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    lua_createtable(L, 0, 0);
    d->depth--;
    return 0;
  }
  if (!pending_allowed(d) || (d->depth < GUESS_DEPTHS && d->guess[d->depth] > 0)) {
    lua_createtable(L, 0, d->depth < GUESS_DEPTHS ? d->guess[d->depth] : 0);
    tbl = lua_gettop(L);
  }
  for (;;) {
    if (d->p >= d->end || *d->p != '"') return dec_unexpected(d, d->p, " (expected a string key)");
    if (dec_string(d) != 0) return -1;
    SKIP_WS(d->p, d->end);
    if (d->p >= d->end || *d->p != ':') return dec_unexpected(d, d->p, " (expected ':')");
    d->p++;
    SKIP_WS(d->p, d->end);
    if (dec_value(d) != 0) return -1;
    /* null members are dropped, and a later null still removes an earlier duplicate */
    if (lua_type(L, -1) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL) {
      lua_pop(L, 1);
      lua_pushnil(L);
    }
    npairs++;
    if (tbl != 0) {
      lua_rawset(L, tbl);
    } else if (npairs == PENDING_PAIRS) {
      int i, first;
      lua_createtable(L, 0, 2 * PENDING_PAIRS);
      lua_insert(L, -(2 * npairs + 1));
      tbl = lua_gettop(L) - 2 * npairs;
      first = tbl + 1;
      for (i = 0; i < npairs; i++) { /* in input order, so the last duplicate wins */
        lua_pushvalue(L, first + 2 * i);
        lua_pushvalue(L, first + 2 * i + 1);
        lua_rawset(L, tbl);
      }
      lua_settop(L, tbl);
    }
    SKIP_WS(d->p, d->end);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      SKIP_WS(d->p, d->end);
      if (d->p < d->end && *d->p == '}') return dec_fail(d, d->p, "trailing comma before '}'");
      continue;
    }
    if (d->p < d->end && *d->p == '}') break;
    return dec_unexpected(d, d->p, " (expected ',' or '}')");
  }
  d->p++;
  if (tbl == 0) {
    int i, first;
    lua_createtable(L, 0, npairs);
    lua_insert(L, -(2 * npairs + 1));
    tbl = lua_gettop(L) - 2 * npairs;
    first = tbl + 1;
    for (i = 0; i < npairs; i++) {
      lua_pushvalue(L, first + 2 * i);
      lua_pushvalue(L, first + 2 * i + 1);
      lua_rawset(L, tbl);
    }
    lua_settop(L, tbl);
  }
  if (d->depth < GUESS_DEPTHS) d->guess[d->depth] = npairs;
  d->depth--;
  return 0;
}

static int dec_value(decoder *d)
{
  if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
  switch (*d->p) {
  case '{': return dec_object(d);
  case '[': return dec_array(d);
  case '"': return dec_string(d);
  case 't':
    if (dec_literal(d, "true", 4) != 0) return -1;
    lua_pushboolean(d->L, 1);
    return 0;
  case 'f':
    if (dec_literal(d, "false", 5) != 0) return -1;
    lua_pushboolean(d->L, 0);
    return 0;
  case 'n':
    if (dec_literal(d, "null", 4) != 0) return -1;
    lua_pushlightuserdata(d->L, NULL);
    return 0;
  case '-': case '0': case '1': case '2': case '3': case '4':
  case '5': case '6': case '7': case '8': case '9':
    return dec_number(d);
  case 'N': case 'I':
    return dec_fail(d, d->p, "NaN and Infinity are not valid JSON");
  default:
    return dec_unexpected(d, d->p, "");
  }
}

int fx_json_decode(lua_State *L, const char *s, size_t len, fx_buf *scratch, char *err,
                   size_t errlen)
{
  decoder d;
  int rc;
  d.L = L;
  d.start = d.p = s;
  d.end = s + len;
  d.scratch = scratch;
  d.err = err;
  d.errlen = errlen;
  d.depth = 0;
  d.nomem = 0;
  memset(d.guess, 0, sizeof d.guess);
  d.base = lua_gettop(L);
  if (!lua_checkstack(L, 4)) return FX_JSON_NOMEM;
  lua_getfield(L, LUA_REGISTRYINDEX, FX_ARRAY_MT);
  d.mt = lua_gettop(L);
  if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) d.p += 3;
  SKIP_WS(d.p, d.end);
  rc = dec_value(&d);
  if (rc == 0) {
    SKIP_WS(d.p, d.end);
    if (d.p < d.end) {
      rc = *d.p == '/' ? dec_fail(&d, d.p, "comments are not allowed")
                       : dec_fail(&d, d.p, "trailing characters after the JSON value");
    }
  }
  if (rc != 0) {
    lua_settop(L, d.base);
    return d.nomem ? FX_JSON_NOMEM : -1;
  }
  lua_replace(L, d.mt);
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Lua functions                                                                               */

/* A working buffer shared by calls of one function. A __gc finalizer may run Lua code (and so
 * this codec) in the middle of a call; such a nested call gets a buffer of its own. */
typedef struct json_state {
  fx_buf buf;
  int busy;
} json_state;

static int state_gc(lua_State *L)
{
  json_state *st = (json_state *)luaL_checkudata(L, 1, STATE_MT);
  fx_buf_free(&st->buf);
  return 0;
}

static fx_buf *state_acquire(lua_State *L, json_state *st)
{
  if (st->busy) return fx_buf_push(L);
  st->busy = 1;
  fx_buf_clear(&st->buf);
  return &st->buf;
}

static void state_release(json_state *st, fx_buf *b)
{
  if (b != &st->buf) {
    fx_buf_free(b);
    return;
  }
  if (st->buf.cap > KEEP_BYTES) fx_buf_free(&st->buf);
  st->busy = 0;
}

/***
Encodes a value as JSON, with the library's own codec (your `cjson` settings are never touched).
Integers stay integers. A table marked with `array` (or decoded from an array, or with cjson's
array markers) is an array.
@function json.encode
@param v the value
@treturn[1] string the JSON text
@return[2] nil, message: NaN, infinities, invalid UTF-8, mixed or sparse tables, functions and
  cycles are refused, the message naming the place
*/
static int json_encode_lua(lua_State *L)
{
  json_state *st = (json_state *)lua_touserdata(L, lua_upvalueindex(1));
  const char *what = luaL_optstring(L, 2, "value");
  char err[ERRLEN];
  fx_buf *b;
  int rc;
  luaL_checkany(L, 1);
  b = state_acquire(L, st);
  rc = fx_json_encode(L, 1, what, b, err, sizeof err);
  if (rc != 0) {
    state_release(st, b);
    if (rc == FX_JSON_NOMEM) return luaL_error(L, "not enough memory");
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushlstring(L, b->data, b->len);
  state_release(st, b);
  return 1;
}

/***
Decodes JSON text.
A number the Lua number type cannot hold exactly is decoded as its decimal string. An object
member that is `null` is left out; a `null` in an array is `flextell.null`. Decoded arrays carry
the array mark, so `[]` read and sent back is `[]` again.
@function json.decode
@tparam string s the JSON text
@return[1] the value
@return[2] nil, message
*/
static int json_decode_lua(lua_State *L)
{
  json_state *st = (json_state *)lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[ERRLEN];
  fx_buf *b = state_acquire(L, st);
  int rc = fx_json_decode(L, s, len, b, err, sizeof err);
  state_release(st, b);
  if (rc == FX_JSON_NOMEM) return luaL_error(L, "not enough memory");
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

/***
Marks a table as a JSON array, so an empty one encodes as `[]`.
@function array
@tparam[opt] table t the table (a new one without it)
@treturn table t, marked
*/
static int json_array_lua(lua_State *L)
{
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, FX_ARRAY_MT);
  lua_setmetatable(L, 1);
  return 1;
}

static int json_mark_array_lua(lua_State *L)
{
  int t = lua_type(L, 1);
  luaL_argcheck(L, t == LUA_TTABLE || (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, 1) != NULL),
                1, "metatable or non-null light userdata expected");
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, MARKERS_KEY);
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_settop(L, 1);
  return 1;
}

static void push_state_closure(lua_State *L, lua_CFunction f)
{
  json_state *st = (json_state *)fx_newuserdata(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  luaL_setmetatable(L, STATE_MT);
  lua_pushcclosure(L, f, 1);
}

void flextell_json_open(lua_State *L)
{
  luaL_checkstack(L, 6, NULL);
  if (luaL_newmetatable(L, STATE_MT)) {
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);

  /* LuaJIT's luaL_newmetatable sets no __name; dkjson reads __jsontype */
  luaL_newmetatable(L, FX_ARRAY_MT);
  lua_pushliteral(L, FX_ARRAY_MT);
  lua_setfield(L, -2, "__name");
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");

  lua_getfield(L, LUA_REGISTRYINDEX, MARKERS_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, MARKERS_KEY);
  }
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_setfield(L, -2, "array_mt");

  push_state_closure(L, json_encode_lua);
  lua_setfield(L, -2, "json_encode");
  push_state_closure(L, json_decode_lua);
  lua_setfield(L, -2, "json_decode");
  lua_pushcfunction(L, json_array_lua);
  lua_setfield(L, -2, "array");
  lua_pushcfunction(L, json_mark_array_lua);
  lua_setfield(L, -2, "json_mark_array");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
}
