/* Prepare: a call's options -> method, URL, headers and body, validated before any I/O. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
                                        "multipart", "reveal_token", NULL};

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

/* ---- the request object --------------------------------------------------------------------- */

static int request_gc(lua_State *L)
{
  fx_request *r = (fx_request *)luaL_checkudata(L, 1, FX_REQUEST_MT);
  if (r->easy != NULL) {
    if (r->state == FX_RUNNING) curl_multi_remove_handle(r->shared->multi, r->easy);
    if (r->mime != NULL) curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, NULL);
    fx_easy_release(r->shared, r->easy);
    r->easy = NULL;
  }
  curl_mime_free(r->mime);
  r->mime = NULL;
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  free(r->url);
  free(r->ca_file);
  free(r->ca_path);
  free(r->proxy);
  r->url = r->ca_file = r->ca_path = r->proxy = NULL;
  fx_buf_free(&r->body);
  fx_buf_free(&r->resp_body);
  fx_buf_free(&r->resp_headers);
  if (r->shared != NULL) {
    fx_shared_release(L, r->shared);
    r->shared = NULL;
  }
  return 0;
}

fx_request *fx_request_new(lua_State *L, fx_client *c)
{
  fx_request *r = (fx_request *)lua_newuserdata(L, sizeof *r);
  memset(r, 0, sizeof *r);
  r->retry_after = -1;
  luaL_setmetatable(L, FX_REQUEST_MT);
  r->shared = c->shared;
  r->shared->refs++;
  r->ca_file = fx_strdup(c->ca_file);
  r->ca_path = fx_strdup(c->ca_path);
  r->proxy = fx_strdup(c->proxy);
  if ((c->ca_file && !r->ca_file) || (c->ca_path && !r->ca_path) || (c->proxy && !r->proxy))
    luaL_error(L, "not enough memory");
  r->allow_http = c->allow_http;
  r->max_response_bytes = c->max_response_bytes;
  return r;
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
  char num[64];
  const char *s = NULL;
  size_t n = 0;
  switch (lua_type(L, v)) {
  case LUA_TSTRING: s = lua_tolstring(L, v, &n); break;
  case LUA_TNUMBER:
    if (number_text(L, v, num, sizeof num) != 0) {
      fx_fail_set(f, "usage", "invalid_query", "%s value for '%s' is not a finite number", what, k);
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
    fx_fail_set(f, "usage", "invalid_query", "%s value for '%s' must be a string, number or boolean, got %s",
                what, k, luaL_typename(L, v));
    return -1;
  }
  if ((!*first && fx_buf_addc(b, '&') != 0) || fx_url_escape(b, k, kl, 0) != 0 ||
      fx_buf_addc(b, '=') != 0 || fx_url_escape(b, s, n, 0) != 0) {
    fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
    return -1;
  }
  *first = 0;
  return 0;
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
 * flextell.null leave the key out. */
int fx_append_query(lua_State *L, int idx, fx_buf *b, fx_fail *f)
{
  const char *keys[FX_MAX_KEYS];
  int nkeys, i, first = b->len == 0 || b->data[b->len - 1] == '?' || b->data[b->len - 1] == '&';
  idx = fx_absindex(L, idx);
  nkeys = fx_sorted_keys(L, idx, keys, FX_MAX_KEYS);
  if (nkeys < 0) {
    fx_fail_set(f, "usage", "invalid_query", "query keys must be strings without NUL bytes (at most %d)",
                FX_MAX_KEYS);
    return -1;
  }

  for (i = 0; i < nkeys; i++) {
    int v, rc = 0;
    lua_getfield(L, idx, keys[i]);
    v = lua_gettop(L);
    if (lua_type(L, v) == LUA_TLIGHTUSERDATA && lua_touserdata(L, v) == NULL) {
      rc = 0;
    } else if (lua_type(L, v) == LUA_TTABLE) {
      int j, n = (int)lua_rawlen(L, v);
      for (j = 1; j <= n && rc == 0; j++) {
        lua_rawgeti(L, v, j);
        rc = add_pair(L, b, keys[i], strlen(keys[i]), lua_gettop(L), &first, "query", f);
        lua_pop(L, 1);
      }
    } else {
      rc = add_pair(L, b, keys[i], strlen(keys[i]), v, &first, "query", f);
    }
    lua_pop(L, 1);
    if (rc != 0) return -1;
  }
  return 0;
}

/* RFC 9110 token characters for names; values without CR, LF, NUL or other controls. */
int fx_header_valid(const char *name, size_t nlen, const char *value, size_t vlen)
{
  size_t i;
  if (nlen == 0) return 0;
  for (i = 0; i < nlen; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (!isalnum(ch) && strchr("!#$%&'*+-.^_`|~", ch) == NULL) return 0;
    if (ch == 0) return 0;
  }
  for (i = 0; i < vlen; i++) {
    unsigned char ch = (unsigned char)value[i];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
  }
  return 1;
}

/* ---- headers -------------------------------------------------------------------------------- */

static int same_name(const char *line, const char *name, size_t nlen)
{
  return strncasecmp(line, name, nlen) == 0 && line[nlen] == ':';
}

static void header_remove(struct curl_slist **list, const char *name, size_t nlen)
{
  struct curl_slist **pp = list;
  while (*pp != NULL) {
    if (same_name((*pp)->data, name, nlen)) {
      struct curl_slist *dead = *pp;
      *pp = dead->next;
      dead->next = NULL;
      curl_slist_free_all(dead);
    } else {
      pp = &(*pp)->next;
    }
  }
}

/* Sets "Name: value", replacing any earlier header of that name. */
static int header_set(struct curl_slist **list, const char *line)
{
  const char *colon = strchr(line, ':');
  struct curl_slist *next;
  header_remove(list, line, (size_t)(colon - line));
  next = curl_slist_append(*list, line);
  if (next == NULL) return -1;
  *list = next;
  return 0;
}

static int header_setf(lua_State *L, fx_request *r, const char *fmt, const char *a, fx_fail *f)
{
  int rc;
  lua_pushfstring(L, fmt, a);
  rc = header_set(&r->headers, lua_tostring(L, -1));
  lua_pop(L, 1);
  if (rc != 0) fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
  return rc;
}

static int call_headers(lua_State *L, int idx, fx_request *r, fx_fail *f)
{
  const char *keys[FX_MAX_KEYS];
  int i, n = fx_sorted_keys(L, idx, keys, FX_MAX_KEYS);
  if (n < 0) {
    fx_fail_set(f, "usage", "invalid_header", "header names must be strings without NUL bytes (at most %d)",
                FX_MAX_KEYS);
    return -1;
  }
  for (i = 0; i < n; i++) {
    size_t nl = strlen(keys[i]), vl = 0;
    const char *name = keys[i], *value;
    int remove;
    lua_getfield(L, idx, name);
    remove = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    value = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &vl) : "";
    if ((!remove && lua_type(L, -1) != LUA_TSTRING) || !fx_header_valid(name, nl, value, vl)) {
      int named = fx_header_valid(name, nl, "", 0);
      lua_pop(L, 1);
      fx_fail_set(f, "usage", "invalid_header", "header %s%s%s has an invalid name or value",
                  named ? "'" : "", named ? name : "(unnamed)", named ? "'" : "");
      return -1;
    }
    if (remove) {
      header_remove(&r->headers, name, nl);
    } else {
      lua_pushfstring(L, "%s: %s", name, value);
      if (header_set(&r->headers, lua_tostring(L, -1)) != 0) {
        lua_pop(L, 2);
        fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
        return -1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* ---- bodies --------------------------------------------------------------------------------- */

static int form_body(lua_State *L, int idx, fx_request *r, fx_fail *f)
{
  fx_buf_clear(&r->body);
  r->has_body = 1;
  return fx_append_query(L, idx, &r->body, f);
}

static int multipart_body(lua_State *L, int idx, fx_request *r, fx_fail *f)
{
  curl_mime *mime = curl_mime_init(r->easy);
  if (mime == NULL) {
    fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
    return -1;
  }
  r->mime = mime;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    curl_mimepart *part;
    const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int v = lua_gettop(L);
    if (name == NULL) {
      lua_pop(L, 2);
      fx_fail_set(f, "usage", "invalid_body", "multipart field names must be strings");
      return -1;
    }
    part = curl_mime_addpart(mime);
    curl_mime_name(part, name);
    if (lua_type(L, v) == LUA_TSTRING || lua_type(L, v) == LUA_TNUMBER) {
      size_t n;
      const char *s = lua_tolstring(L, v, &n);
      curl_mime_data(part, s, n);
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
      if ((path == NULL) == (data == NULL)) {
        lua_pop(L, 6);
        fx_fail_set(f, "usage", "invalid_body", "multipart field '%s' needs exactly one of path and data",
                    name);
        return -1;
      }
      if (path != NULL) {
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) {
          fx_fail_set(f, "usage", "file_unreadable", "multipart field '%s': cannot read file '%s'",
                      name, path);
          lua_pop(L, 6);
          return -1;
        }
        fclose(fp);
        curl_mime_filedata(part, path); /* curl reads it while sending */
      } else {
        curl_mime_data(part, data, dlen);
        curl_mime_filename(part, filename ? filename : name);
      }
      if (filename != NULL) curl_mime_filename(part, filename);
      if (ctype != NULL) curl_mime_type(part, ctype);
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
                     const char *url_override, int query, fx_request *r, fx_fail *f)
{
  fx_buf *u = fx_buf_push(L);
  size_t i, n = path ? strlen(path) : 0;
  int oom = 0;
  if (url_override != NULL) {
    r->url = fx_strdup(url_override);
    if (r->url == NULL) {
      fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
      return -1;
    }
    lua_pop(L, 1);
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
    if (path_char(ch))
      oom |= fx_buf_addc(u, (char)ch);
    else
      oom |= fx_url_escape(u, path + i, 1, 0);
  }
  if (oom) {
    fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
    return -1;
  }
  if (query != 0) {
    size_t before = u->len;
    int has_q = memchr(u->data, '?', u->len) != NULL;
    if (fx_buf_addc(u, has_q ? '&' : '?') != 0) return -1;
    if (fx_append_query(L, query, u, f) != 0) return -1;
    if (u->len == before + 1) u->len = before; /* empty query table */
  }
  if (fx_buf_addc(u, '\0') != 0 || (r->url = fx_strdup(u->data)) == NULL) {
    fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
    return -1;
  }
  lua_pop(L, 1);
  return 0;
}

int fx_prepare(lua_State *L, fx_client *c, const fx_spec *s, fx_request *r, fx_fail *f)
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
  r->idempotent = strcmp(r->method, "POST") != 0 && strcmp(r->method, "PATCH") != 0;
  r->timeout = s->timeout > 0 ? s->timeout : c->timeout;
  r->connect_timeout = c->connect_timeout;
  r->stall_timeout = c->stall_timeout;
  r->pace = c->pace;
  r->max_retries = s->max_retries >= 0 ? s->max_retries : c->max_retries;
  r->deadline = s->deadline > 0 ? s->deadline : c->deadline; /* relative until the run starts */

  if (build_url(L, c, s->path, s->path_len, s->url, s->query, r, f) != 0) return -1;

  if (header_setf(L, r, "Accept: %s", "application/json", f) != 0) return -1;
  if (header_setf(L, r, "User-Agent: %s", c->user_agent, f) != 0) return -1;
  r->token_serial = S->token_serial;
  if (!s->no_auth && S->access_token != NULL &&
      header_setf(L, r, "Authorization: Bearer %s", S->access_token, f) != 0)
    return -1;
  has_tenant = s->has_tenant ? 1 : (s->no_tenant ? 0 : c->has_tenant);
  if (has_tenant) {
    snprintf(tenant, sizeof tenant, "%lld", s->has_tenant ? s->tenant : c->tenant);
    if (header_setf(L, r, "X-Tenant: %s", tenant, f) != 0) return -1;
  }

  if (s->body != 0) {
    if (lua_type(L, s->body) == LUA_TSTRING) {
      size_t n;
      const char *b = lua_tolstring(L, s->body, &n);
      if (fx_buf_add(&r->body, b, n) != 0) {
        fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
        return -1;
      }
    } else {
      char msg[256];
      if (fx_json_encode(L, s->body, "body", &r->body, msg, sizeof msg) != 0) {
        fx_fail_set(f, "usage", "invalid_body", "%s", msg);
        return -1;
      }
    }
    r->has_body = 1;
    if (header_setf(L, r, "Content-Type: %s", "application/json", f) != 0) return -1;
  } else if (s->form != 0) {
    if (form_body(L, s->form, r, f) != 0) return -1;
    if (header_setf(L, r, "Content-Type: %s", "application/x-www-form-urlencoded", f) != 0)
      return -1;
  } else if (s->multipart != 0) {
    if (r->easy == NULL) r->easy = S->nidle > 0 ? S->idle[--S->nidle] : curl_easy_init();
    if (r->easy == NULL || multipart_body(L, s->multipart, r, f) != 0) {
      if (r->easy == NULL) fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
      return -1;
    }
  }
  for (h = c->headers; h != NULL; h = h->next)
    if (header_set(&r->headers, h->data) != 0) {
      fx_fail_set(f, "usage", "out_of_memory", "not enough memory");
      return -1;
    }
  if (s->headers != 0 && call_headers(L, s->headers, r, f) != 0) return -1;
  if (r->has_body && header_setf(L, r, "Expect:%s", "", f) != 0) return -1;
  /* a bodyless POST/PUT/PATCH goes out with Content-Length: 0 and no made-up Content-Type */
  if (!r->has_body && (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
                       strcmp(r->method, "PATCH") == 0) &&
      header_setf(L, r, "Content-Type:%s", "", f) != 0)
    return -1;
  return 0;
}

void flextell_request_open(lua_State *L)
{
  luaL_newmetatable(L, FX_REQUEST_MT);
  lua_pushcfunction(L, request_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
