/* Prepare, the first step of a call (see call.c): its options -> method, URL, headers and body,
 * validated before any I/O and kept in the call's C memory for every attempt. Only the
 * Authorization header changes later, set before each send from the token of that moment. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include "fx.h"
#include "json.h"

void fx_spec_init(fx_spec *s)
{
  memset(s, 0, sizeof *s);
  s->max_retries = -1;
  s->timeout = -1;
  s->deadline = -1;
}

static const char *const spec_keys[] = {"method", "path", "query", "body", "headers", "tenant",
                                        "timeout", "deadline", "max_retries", "form",
                                        "multipart", "reveal_token", "raw_body", NULL};

/* Reads a request table. Wrong types raise (programmer errors); the values stay on the stack
 * for as long as the call runs, so the spec may point at them. */
void fx_spec_from_table(lua_State *L, int idx, fx_spec *s)
{
  int i;
  idx = fx_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (i = 0; k != NULL && spec_keys[i] != NULL; i++)
      if (strcmp(spec_keys[i], k) == 0) break;
    if (k == NULL || spec_keys[i] == NULL)
      luaL_error(L, "unknown request field '%s'", k ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
#define FIELD(name, type, tname)                                                              \
  (lua_getfield(L, idx, name), lua_isnil(L, -1)                                               \
       ? (lua_pop(L, 1), 0)                                                                   \
       : (lua_type(L, -1) == (type)                                                           \
              ? lua_gettop(L)                                                                 \
              : luaL_error(L, "request field '%s' must be %s, got %s", name, tname,           \
                           luaL_typename(L, -1))))
  if ((i = FIELD("method", LUA_TSTRING, "a string")) != 0) {
    s->method = lua_tostring(L, i);
    s->method_len = (size_t)lua_rawlen(L, i);
  }
  if ((i = FIELD("path", LUA_TSTRING, "a string")) != 0) {
    s->path = lua_tostring(L, i);
    s->path_len = (size_t)lua_rawlen(L, i);
  }
  if ((i = FIELD("query", LUA_TTABLE, "a table")) != 0) s->query = i;
  if ((i = FIELD("headers", LUA_TTABLE, "a table")) != 0) s->headers = i;
  if ((i = FIELD("form", LUA_TTABLE, "a table")) != 0) s->form = i;
  if ((i = FIELD("multipart", LUA_TTABLE, "a table")) != 0) s->multipart = i;
  if ((i = FIELD("timeout", LUA_TNUMBER, "a number")) != 0) {
    s->timeout = lua_tonumber(L, i);
    if (!(s->timeout > 0)) luaL_error(L, "request field 'timeout' must be > 0");
  }
  if ((i = FIELD("deadline", LUA_TNUMBER, "a number")) != 0) {
    s->deadline = lua_tonumber(L, i);
    if (!(s->deadline > 0)) luaL_error(L, "request field 'deadline' must be > 0");
  }
  if ((i = FIELD("max_retries", LUA_TNUMBER, "a number")) != 0) {
    if (!fx_isinteger(L, i) || fx_tointeger(L, i) < 0 || fx_tointeger(L, i) > 10)
      luaL_error(L, "request field 'max_retries' must be an integer 0..10");
    s->max_retries = (int)fx_tointeger(L, i);
  }
  if ((i = FIELD("reveal_token", LUA_TBOOLEAN, "a boolean")) != 0)
    s->reveal_token = lua_toboolean(L, i);
  if ((i = FIELD("raw_body", LUA_TBOOLEAN, "a boolean")) != 0) s->raw_body = lua_toboolean(L, i);
#undef FIELD
  lua_getfield(L, idx, "body");
  if (lua_isnil(L, -1))
    lua_pop(L, 1);
  else
    s->body = lua_gettop(L);
  lua_getfield(L, idx, "tenant");
  if (lua_type(L, -1) == LUA_TNUMBER && fx_isinteger(L, -1) && fx_tointeger(L, -1) >= 0) {
    s->has_tenant = 1;
    s->tenant = (long long)fx_tointeger(L, -1);
  } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    s->no_tenant = 1;
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "request field 'tenant' must be a non-negative integer or false");
  }
  lua_pop(L, 1);
  if ((s->body != 0) + (s->form != 0) + (s->multipart != 0) > 1)
    luaL_error(L, "give only one of 'body', 'form' and 'multipart'");
}

/* ---- encoding helpers ----------------------------------------------------------------------- */

static int unreserved(unsigned char ch)
{
  return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int fx_url_escape(fx_buf *b, const char *s, size_t n, int keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  if (fx_buf_reserve(b, n * 3) != 0) return -1;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (unreserved(ch) || (keep_slash && ch == '/')) {
      b->data[b->len++] = (char)ch;
    } else {
      b->data[b->len++] = '%';
      b->data[b->len++] = hex[ch >> 4];
      b->data[b->len++] = hex[ch & 15];
    }
  }
  return 0;
}

/* Path characters kept as given (so pre-encoded %XX survive); the rest is percent-encoded. */
static int path_char(unsigned char ch)
{
  return unreserved(ch) || (ch != 0 && strchr("!$&'()*+,;=:@/%?", ch) != NULL);
}

static int number_text(lua_State *L, int idx, char *out, size_t outlen)
{
  if (fx_isinteger(L, idx)) {
    snprintf(out, outlen, "%lld", (long long)fx_tointeger(L, idx));
  } else {
    double d = lua_tonumber(L, idx);
    char *p;
    if (d != d || d - d != 0) return -1; /* NaN, inf */
    snprintf(out, outlen, "%.17g", d);
    for (p = out; *p; p++)
      if (*p == ',') *p = '.'; /* a host that called setlocale */
  }
  return 0;
}

/* Appends "k=v" for one scalar value; returns -1 with f set on a bad value. */
static int add_pair(lua_State *L, fx_buf *b, const char *k, size_t kl, int v, int *first,
                    const char *what, fx_fail *f)
{
  const char *code = strcmp(what, "query") == 0 ? "invalid_query" : "invalid_body";
  char num[64];
  const char *s = NULL;
  size_t n = 0;
  switch (lua_type(L, v)) {
  case LUA_TSTRING: s = lua_tolstring(L, v, &n); break;
  case LUA_TNUMBER:
    if (number_text(L, v, num, sizeof num) != 0) {
      fx_fail_set(f, "usage", code, "%s value for '%s' is not a finite number", what, k);
      return -1;
    }
    s = num;
    n = strlen(num);
    break;
  case LUA_TBOOLEAN:
    s = lua_toboolean(L, v) ? "true" : "false";
    n = strlen(s);
    break;
  default:
    fx_fail_set(f, "usage", code, "%s value for '%s' must be a string, number or boolean, got %s",
                what, k, luaL_typename(L, v));
    return -1;
  }
  if ((!*first && fx_buf_addc(b, '&') != 0) || fx_url_escape(b, k, kl, 0) != 0 ||
      fx_buf_addc(b, '=') != 0 || fx_url_escape(b, s, n, 0) != 0)
    luaL_error(L, "not enough memory");
  *first = 0;
  return 0;
}

/* A list value repeats its key; anything else that is a table would have to be flattened in a
 * way the API has not defined, and an empty one would silently drop the key (and with it the
 * filter it meant): both are refused. Returns the list's length, or -1 with f set. */
static int list_length(lua_State *L, int v, const char *k, const char *what, fx_fail *f)
{
  const char *code = strcmp(what, "query") == 0 ? "invalid_query" : "invalid_body";
  int n = (int)lua_rawlen(L, v), count = 0;
  lua_pushnil(L);
  while (lua_next(L, v) != 0) {
    int t = lua_type(L, -1);
    count++;
    if (t == LUA_TTABLE || count > n) {
      lua_pop(L, 2);
      fx_fail_set(f, "usage", code,
                  "%s value for '%s' is a nested table; give a list of strings, numbers or booleans "
                  "(or flatten it yourself, e.g. '%s[field]')",
                  what, k, k);
      return -1;
    }
    lua_pop(L, 1);
  }
  if (n == 0) {
    fx_fail_set(f, "usage", code, "%s value for '%s' is an empty table; leave the key out to send nothing",
                what, k);
    return -1;
  }
  return n;
}

static int key_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The string keys of the table at idx in byte order (maps become deterministic: URLs, headers
 * and logs agree run to run). Returns the count, or -1 for a key that is not a string, holds a
 * NUL byte, or is one more than max. */
int fx_sorted_keys(lua_State *L, int idx, const char **keys, int max)
{
  int n = 0;
  idx = fx_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING || n == max ||
        strlen(lua_tostring(L, -1)) != (size_t)lua_rawlen(L, -1)) {
      lua_pop(L, 1);
      return -1;
    }
    keys[n++] = lua_tostring(L, -1); /* kept alive by the table */
  }
  qsort(keys, (size_t)n, sizeof keys[0], key_cmp);
  return n;
}

/* Encodes a table as k=v&k=v with keys sorted. A list value repeats its key; nil and
 * flextell.null leave the key out; what ("query" or "form") names the table in errors. */
int fx_append_query(lua_State *L, int idx, fx_buf *b, const char *what, fx_fail *f)
{
  const char *keys[FX_MAX_KEYS];
  int nkeys, i, first = b->len == 0 || b->data[b->len - 1] == '?' || b->data[b->len - 1] == '&';
  idx = fx_absindex(L, idx);
  nkeys = fx_sorted_keys(L, idx, keys, FX_MAX_KEYS);
  if (nkeys < 0) {
    fx_fail_set(f, "usage", strcmp(what, "query") == 0 ? "invalid_query" : "invalid_body",
                "%s keys must be strings without NUL bytes (at most %d)", what, FX_MAX_KEYS);
    return -1;
  }

  for (i = 0; i < nkeys; i++) {
    int v, rc = 0;
    lua_getfield(L, idx, keys[i]);
    v = lua_gettop(L);
    if (lua_type(L, v) == LUA_TLIGHTUSERDATA && lua_touserdata(L, v) == NULL) {
      rc = 0;
    } else if (lua_type(L, v) == LUA_TTABLE) {
      int j, n = list_length(L, v, keys[i], what, f);
      rc = n < 0 ? -1 : 0;
      for (j = 1; j <= n && rc == 0; j++) {
        lua_rawgeti(L, v, j);
        rc = add_pair(L, b, keys[i], strlen(keys[i]), lua_gettop(L), &first, what, f);
        lua_pop(L, 1);
      }
    } else {
      rc = add_pair(L, b, keys[i], strlen(keys[i]), v, &first, what, f);
    }
    lua_pop(L, 1);
    if (rc != 0) return -1;
  }
  return 0;
}

/* ---- headers -------------------------------------------------------------------------------- */

/* Headers that frame the message: libcurl writes them from the request itself, and a caller's
 * value would break the framing or smuggle a second request. */
static const char *const managed_headers[] = {"Host", "Content-Length", "Transfer-Encoding",
                                              "Connection", "Keep-Alive", "Proxy-Connection",
                                              "TE", "Trailer", "Upgrade", "Expect", NULL};

/* The one check every header passes, whoever gives it (client options, per-call headers, the
 * user agent, tokens from a token response): an RFC 9110 token for the name, a value without
 * CR, LF, NUL or other controls (tab allowed), and not a header that frames the message.
 * Returns NULL when the header may be sent, or why not. */
const char *fx_header_check(const char *name, size_t nlen, const char *value, size_t vlen)
{
  size_t i;
  if (nlen == 0) return "has an empty name";
  for (i = 0; i < nlen; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (ch == 0 || (!isalnum(ch) && strchr("!#$%&'*+-.^_`|~", ch) == NULL))
      return "has a name that is not an RFC 9110 token";
  }
  for (i = 0; managed_headers[i] != NULL; i++)
    if (strlen(managed_headers[i]) == nlen && strncasecmp(name, managed_headers[i], nlen) == 0)
      return "is set by the library from the request itself";
  for (i = 0; i < vlen; i++) {
    unsigned char ch = (unsigned char)value[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return "has a control character (CR, LF, NUL...) in its value";
  }
  return NULL;
}

int fx_header_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
  return fx_header_check(name, nlen, value, vlen) == NULL;
}

/* Pushes the line libcurl takes for a header: "Name: value"; "Name;" for an empty value (libcurl
 * drops "Name:" and sends "Name;" as an empty header); "Name:" when value is NULL, which also
 * stops libcurl from adding its own (its Accept, a form Content-Type...). */
void fx_header_push_line(lua_State *L, const char *name, size_t nlen, const char *value)
{
  lua_pushlstring(L, name, nlen);
  if (value == NULL)
    lua_pushliteral(L, ":");
  else if (*value == '\0')
    lua_pushliteral(L, ";");
  else
    lua_pushfstring(L, ": %s", value);
  lua_concat(L, 2);
}

static size_t line_name_len(const char *line)
{
  return strcspn(line, ":;");
}

static void header_remove(struct curl_slist **list, const char *name, size_t nlen)
{
  struct curl_slist **pp = list;
  while (*pp != NULL) {
    if (line_name_len((*pp)->data) == nlen && strncasecmp((*pp)->data, name, nlen) == 0) {
      struct curl_slist *dead = *pp;
      *pp = dead->next;
      dead->next = NULL;
      curl_slist_free_all(dead);
    } else {
      pp = &(*pp)->next;
    }
  }
}

/* Sets a line made by fx_header_push_line, replacing any earlier one of that name. Raises when
 * memory runs out (the list keeps its other lines). */
static void header_set(lua_State *L, struct curl_slist **list, const char *line)
{
  struct curl_slist *next;
  header_remove(list, line, line_name_len(line));
  next = curl_slist_append(*list, line);
  if (next == NULL) luaL_error(L, "not enough memory");
  *list = next;
}

/* Sets "Name: <prefix><value>" for a header the library itself adds (always valid: checked
 * values); value NULL removes the header from what libcurl would send ("Name:"), "" sends it
 * empty ("Name;"). The line is made on the C stack (in Lua only when it is long): libcurl copies
 * it, and no Lua string is left holding it (a token, say). */
static void header_put2(lua_State *L, fx_call *r, const char *name, const char *prefix, const char *value)
{
  char line[2048];
  size_t nl = strlen(name), pl = strlen(prefix), vl = value != NULL ? strlen(value) : 0;
  if (value != NULL && *value != '\0' && nl + 2 + pl + vl < sizeof line) {
    memcpy(line, name, nl);
    memcpy(line + nl, ": ", 2);
    memcpy(line + nl + 2, prefix, pl);
    memcpy(line + nl + 2 + pl, value, vl + 1);
    header_set(L, &r->headers, line);
    memset(line, 0, nl + 2 + pl + vl);
    return;
  }
  if (value != NULL && *value != '\0' && *prefix != '\0') {
    lua_pushstring(L, prefix);
    lua_pushstring(L, value);
    lua_concat(L, 2);
    value = lua_tostring(L, -1);
  } else {
    lua_pushnil(L);
  }
  fx_header_push_line(L, name, nl, value);
  header_set(L, &r->headers, lua_tostring(L, -1));
  lua_pop(L, 2);
}

static void header_put(lua_State *L, fx_call *r, const char *name, const char *value)
{
  header_put2(L, r, name, "", value);
}

/* A headers table, { Name = "value" | false }, as lines (set or drop) appended to *list; the
 * same rules for the client's option and for one call. Returns 0, or -1 with why in msg. */
int fx_headers_from_table(lua_State *L, int idx, struct curl_slist **list, char *msg, size_t msglen)
{
  const char *keys[FX_MAX_KEYS];
  int i, n = fx_sorted_keys(L, idx, keys, FX_MAX_KEYS);
  if (n < 0) {
    snprintf(msg, msglen, "header names must be strings without NUL bytes (at most %d)", FX_MAX_KEYS);
    return -1;
  }
  /* names are case-insensitive (RFC 9110 section 5.1): two spellings of one name in a table have
   * no order to decide which is meant */
  for (i = 0; i < n; i++) {
    int j;
    for (j = i + 1; j < n; j++)
      if (strcasecmp(keys[i], keys[j]) == 0 && fx_header_check(keys[i], strlen(keys[i]), "", 0) == NULL) {
        snprintf(msg, msglen, "header '%s' is given twice (as '%s' and '%s'); names are case-insensitive",
                 keys[i], keys[i], keys[j]);
        return -1;
      }
  }
  for (i = 0; i < n; i++) {
    size_t nl = strlen(keys[i]), vl = 0;
    const char *value = NULL, *why, *named;
    int t;
    lua_getfield(L, idx, keys[i]);
    t = lua_type(L, -1);
    if (t == LUA_TSTRING) {
      value = lua_tolstring(L, -1, &vl);
      why = strlen(value) != vl ? "has a control character (CR, LF, NUL...) in its value"
                                : fx_header_check(keys[i], nl, value, vl);
    } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      why = fx_header_check(keys[i], nl, "", 0);
    } else {
      why = "must be a string, or false to leave the header out";
    }
    if (why != NULL) {
      /* a name that is not a token is not echoed: it may be anything */
      named = fx_header_check(keys[i], nl, "", 0);
      if (named == NULL || strcmp(named, "is set by the library from the request itself") == 0)
        snprintf(msg, msglen, "header '%s' %s", keys[i], why);
      else
        snprintf(msg, msglen, "a header %s", why);
      lua_pop(L, 1);
      return -1;
    }
    fx_header_push_line(L, keys[i], nl, value);
    header_set(L, list, lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  return 0;
}

static int call_headers(lua_State *L, int idx, fx_call *r, fx_fail *f)
{
  char msg[200];
  if (fx_headers_from_table(L, idx, &r->headers, msg, sizeof msg) == 0) return 0;
  fx_fail_set(f, "usage", "invalid_header", "%s", msg);
  return -1;
}

/* ---- bodies --------------------------------------------------------------------------------- */

static int form_body(lua_State *L, int idx, fx_call *r, fx_fail *f)
{
  fx_buf_clear(&r->body);
  r->has_body = 1;
  return fx_append_query(L, idx, &r->body, "form", f);
}

static int multipart_body(lua_State *L, int idx, fx_call *r, fx_fail *f)
{
  curl_mime *mime = curl_mime_init(r->easy);
  if (mime == NULL) luaL_error(L, "not enough memory");
  r->mime = mime;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    curl_mimepart *part;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int v = lua_gettop(L);
    if (name == NULL || strlen(name) != (size_t)lua_rawlen(L, -2)) {
      lua_pop(L, 2);
      fx_fail_set(f, "usage", "invalid_body", "multipart field names must be strings without NUL bytes");
      return -1;
    }
    part = curl_mime_addpart(mime);
    if (part == NULL || curl_mime_name(part, name) != CURLE_OK) luaL_error(L, "not enough memory");
    if (lua_type(L, v) == LUA_TSTRING || lua_type(L, v) == LUA_TNUMBER) {
      size_t n;
      const char *s = lua_tolstring(L, v, &n);
      if (curl_mime_data(part, s, n) != CURLE_OK) luaL_error(L, "not enough memory");
    } else if (lua_type(L, v) == LUA_TTABLE) {
      const char *path, *data, *filename, *ctype;
      size_t dlen = 0;
      lua_getfield(L, v, "path");
      lua_getfield(L, v, "data");
      lua_getfield(L, v, "filename");
      lua_getfield(L, v, "content_type");
      path = lua_tostring(L, -4);
      data = lua_tolstring(L, -3, &dlen);
      filename = lua_tostring(L, -2);
      ctype = lua_tostring(L, -1);
      if ((path != NULL && strlen(path) != (size_t)lua_rawlen(L, -4)) ||
          (filename != NULL && strlen(filename) != (size_t)lua_rawlen(L, -2)) ||
          (ctype != NULL && strlen(ctype) != (size_t)lua_rawlen(L, -1))) {
        /* C would read them up to the NUL: another file, a shorter name */
        fx_fail_set(f, "usage", "invalid_body", "multipart field '%s': path, filename and content_type "
                    "must not contain a NUL byte", name);
        lua_pop(L, 6);
        return -1;
      }
      if ((path == NULL) == (data == NULL)) {
        fx_fail_set(f, "usage", "invalid_body", "multipart field '%s' needs exactly one of path and data",
                    name);
        lua_pop(L, 6);
        return -1;
      }
      if (ctype != NULL && fx_header_check("Content-Type", 12, ctype, strlen(ctype)) != NULL) {
        fx_fail_set(f, "usage", "invalid_header",
                    "multipart field '%s': content_type has a control character (CR, LF, NUL...)", name);
        lua_pop(L, 6);
        return -1;
      }
      if (path != NULL) {
        FILE *fp = fopen(path, "rb");
        struct stat st;
        const char *why = NULL;
        if (fp == NULL)
          why = "cannot read file";
        else if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode))
          why = "not a regular file:"; /* a folder, a pipe, a device */
        else if (st.st_size == 0 && fgetc(fp) != EOF)
          /* libcurl sends as many bytes as the size says: none of a /proc or /sys file's */
          why = "the file says it is empty but is not (read it and pass it as data):";
        if (fp != NULL) fclose(fp);
        if (why != NULL) {
          fx_fail_set(f, "usage", "file_unreadable", "multipart field '%s': %s '%s'", name, why, path);
          lua_pop(L, 6);
          return -1;
        }
        if (curl_mime_filedata(part, path) != CURLE_OK) /* curl reads it while sending */
          luaL_error(L, "not enough memory");
      } else {
        if (curl_mime_data(part, data, dlen) != CURLE_OK ||
            curl_mime_filename(part, filename ? filename : name) != CURLE_OK)
          luaL_error(L, "not enough memory");
      }
      if ((filename != NULL && curl_mime_filename(part, filename) != CURLE_OK) ||
          (ctype != NULL && curl_mime_type(part, ctype) != CURLE_OK))
        luaL_error(L, "not enough memory");
      lua_pop(L, 4);
    } else {
      fx_fail_set(f, "usage", "invalid_body", "multipart field '%s' must be a string or a file table",
                  name);
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  r->has_body = 1;
  return 0;
}

/* ---- prepare -------------------------------------------------------------------------------- */

static int build_url(lua_State *L, fx_client *c, const char *path, size_t path_len,
                     const char *url_override, int query, fx_call *r, fx_fail *f)
{
  fx_buf *u;
  size_t i, n = path ? strlen(path) : 0;
  int oom = 0;
  if (url_override != NULL) {
    r->url = fx_strdup(url_override);
    if (r->url == NULL) luaL_error(L, "not enough memory");
    return 0;
  }
  if (n == 0) {
    fx_fail_set(f, "usage", "invalid_path", "the path is empty");
    return -1;
  }
  if (path_len != 0 && n != path_len) {
    fx_fail_set(f, "usage", "invalid_path", "the path contains a NUL byte");
    return -1;
  }
  if (strstr(path, "://") != NULL || (path[0] == '/' && path[1] == '/')) {
    fx_fail_set(f, "usage", "invalid_path",
                "the path must be a path under the base URL, not a URL (the token goes only there)");
    return -1;
  }
  u = &r->scratch;
  fx_buf_clear(u);
  oom |= fx_buf_adds(u, c->base_url);
  if (path[0] != '/') {
    oom |= fx_buf_addc(u, '/');
    if (c->prefix != NULL) {
      oom |= fx_buf_adds(u, c->prefix);
      oom |= fx_buf_addc(u, '/');
    }
  }
  for (i = 0; i < n && !oom; i++) {
    unsigned char ch = (unsigned char)path[i];
    if (ch == '%' && !(isxdigit((unsigned char)path[i + 1]) && isxdigit((unsigned char)path[i + 2])))
      oom |= fx_buf_adds(u, "%25"); /* a lone % is a literal percent sign, not an escape */
    else if (path_char(ch))
      oom |= fx_buf_addc(u, (char)ch);
    else
      oom |= fx_url_escape(u, path + i, 1, 0);
  }
  if (oom) luaL_error(L, "not enough memory");
  if (query != 0) {
    size_t before = u->len;
    int has_q = memchr(u->data, '?', u->len) != NULL;
    if (fx_buf_addc(u, has_q ? '&' : '?') != 0) luaL_error(L, "not enough memory");
    if (fx_append_query(L, query, u, "query", f) != 0) return -1;
    if (u->len == before + 1) u->len = before; /* empty query table */
  }
  if (fx_buf_addc(u, '\0') != 0 || (r->url = fx_strdup(u->data)) == NULL)
    luaL_error(L, "not enough memory");
  return 0;
}

int fx_prepare(lua_State *L, fx_client *c, const fx_spec *s, fx_call *r, fx_fail *f)
{
  fx_shared *S = c->shared;
  size_t i, mlen = strlen(s->method);
  char tenant[32];
  struct curl_slist *h;
  int has_tenant;

  if (mlen == 0 || mlen >= sizeof r->method || (s->method_len != 0 && s->method_len != mlen))
    luaL_error(L, "invalid HTTP method '%s'", s->method);
  for (i = 0; i < mlen; i++) {
    if (!isalpha((unsigned char)s->method[i])) luaL_error(L, "invalid HTTP method '%s'", s->method);
    r->method[i] = (char)toupper((unsigned char)s->method[i]);
  }
  r->method[mlen] = '\0';
  r->pol.idempotent = strcmp(r->method, "POST") != 0 && strcmp(r->method, "PATCH") != 0;
  r->pol.timeout = s->timeout > 0 ? s->timeout : c->timeout;
  r->pol.pace = c->pace;
  r->pol.max_retries = s->max_retries >= 0 ? s->max_retries : c->max_retries;
  r->pol.deadline = s->deadline > 0 ? s->deadline : c->deadline; /* relative until the call starts */
  r->connect_timeout = c->connect_timeout;
  r->stall_timeout = c->stall_timeout;
  r->no_auth = s->no_auth;
  r->raw_body = s->raw_body;
  /* environment proxies are honoured, except for loopback hosts or with proxy = false */
  r->direct = c->proxy == NULL && (c->proxy_off || (s->url ? S->token_url_loopback : c->base_loopback));

  if (build_url(L, c, s->path, s->path_len, s->url, s->query, r, f) != 0) return -1;

  header_put(L, r, "Accept", "application/json");
  header_put(L, r, "User-Agent", c->user_agent);
  r->token_serial = S->token_serial;
  if (!s->no_auth && S->access_token != NULL) fx_call_set_auth(L, r, S->access_token);
  has_tenant = s->has_tenant ? 1 : (s->no_tenant ? 0 : c->has_tenant);
  if (has_tenant) {
    snprintf(tenant, sizeof tenant, "%lld", s->has_tenant ? s->tenant : c->tenant);
    header_put(L, r, "X-Tenant", tenant);
  }

  if (s->body != 0) {
    if (lua_type(L, s->body) == LUA_TSTRING) {
      size_t n;
      const char *b = lua_tolstring(L, s->body, &n);
      if (fx_buf_add(&r->body, b, n) != 0) luaL_error(L, "not enough memory");
    } else {
      char msg[256];
      int rc = fx_json_encode(L, s->body, "body", &r->body, msg, sizeof msg);
      if (rc == FX_JSON_NOMEM) luaL_error(L, "not enough memory");
      if (rc != 0) {
        fx_fail_set(f, "usage", "invalid_body", "%s", msg);
        return -1;
      }
    }
    r->has_body = 1;
    header_put(L, r, "Content-Type", "application/json");
  } else if (s->form != 0) {
    if (form_body(L, s->form, r, f) != 0) return -1;
    header_put(L, r, "Content-Type", "application/x-www-form-urlencoded");
  } else if (s->multipart != 0) {
    if (r->easy == NULL) r->easy = fx_loop_take_easy(L, NULL, &r->easy_warm); /* a mime body belongs to a handle */
    if (multipart_body(L, s->multipart, r, f) != 0) return -1;
  }
  for (h = c->headers; h != NULL; h = h->next) header_set(L, &r->headers, h->data);
  if (s->headers != 0 && call_headers(L, s->headers, r, f) != 0) return -1;
  /* no 100-continue round trip: the API answers a bad request after the body anyway */
  if (r->has_body) header_put(L, r, "Expect", NULL);
  /* a bodyless POST/PUT/PATCH goes out with Content-Length: 0 and no made-up Content-Type */
  if (!r->has_body && (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
                       strcmp(r->method, "PATCH") == 0))
    header_put(L, r, "Content-Type", NULL);
  return 0;
}

/* Sets (or removes, with NULL) the Authorization header: before each send, from the token of
 * that moment. */
void fx_call_set_auth(lua_State *L, fx_call *r, const char *token)
{
  if (token == NULL) {
    header_remove(&r->headers, "Authorization", 13);
    r->has_auth = 0;
    return;
  }
  header_put2(L, r, "Authorization", "Bearer ", token);
  r->has_auth = 1;
}
