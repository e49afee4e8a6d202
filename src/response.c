/* Finish, the step after send (see call.c): the status, headers and body of the call's last
 * attempt -> data, meta, res, or nil, err; a failure outcome (no answer) -> its error. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fx.h"
#include "json.h"

static const char *reason(long status)
{
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return status >= 500 ? "Server Error" : "Client Error";
  }
}

/* ---- transport failures --------------------------------------------------------------------- */

/* A failure outcome (decide.h's code) as an error: the kind goes with the code. */
void fx_failure_to_fail(const fx_call *r, fx_fail *f)
{
  const char *kind;
  switch (r->out.failure) {
  case FX_F_CONNECT_TIMEOUT:
  case FX_F_TIMEOUT:
  case FX_F_STALLED: kind = "timeout"; break;
  case FX_F_TLS_VERIFY:
  case FX_F_TLS:
  case FX_F_TLS_SETUP: kind = "tls"; break;
  case FX_F_BAD_RESPONSE: kind = "protocol"; break;
  case FX_F_TOO_LARGE:
  case FX_F_HEADERS_TOO_LARGE: kind = "limit"; break;
  case FX_F_CANCELLED: kind = "usage"; break;
  default: kind = "network"; break;
  }
  fx_fail_set(f, kind, fx_failure_code(r->out.failure), "%s", r->detail);
  f->maybe_sent = r->out.maybe_sent;
  if (r->out.failure == FX_F_TOO_LARGE || r->out.failure == FX_F_HEADERS_TOO_LARGE) f->maybe_sent = -1;
}

/* ---- headers and rate limits ---------------------------------------------------------------- */

void fx_push_headers(lua_State *L, const fx_buf *h)
{
  size_t i = 0;
  int t, lines = 0;
  /* sized for every line (the status line and the blank one too): no rehash while filling */
  if (h->data != NULL) { /* none yet: no pointer arithmetic on NULL */
    const char *q = h->data, *qe = h->data + h->len;
    while (q < qe && (q = memchr(q, '\n', (size_t)(qe - q))) != NULL) {
      lines++;
      q++;
    }
  }
  lua_createtable(L, 0, lines);
  t = lua_gettop(L);
  while (i < h->len) {
    const char *line = h->data + i, *colon, *v, *e;
    const char *end = memchr(line, '\n', h->len - i);
    size_t llen = end ? (size_t)(end - line) : h->len - i, k;
    i += llen + 1;
    colon = memchr(line, ':', llen);
    if (colon == NULL || colon == line) continue; /* status line, blank line */
    v = colon + 1;
    e = line + llen;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
    {
      char name[128];
      size_t nlen = (size_t)(colon - line);
      if (nlen >= sizeof name) continue;
      for (k = 0; k < nlen; k++) name[k] = (char)tolower((unsigned char)line[k]);
      lua_pushlstring(L, name, nlen);
      lua_pushvalue(L, -1);
      lua_rawget(L, t);
      if (lua_isstring(L, -1)) { /* repeated header: join as RFC 9110 allows */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, (size_t)(e - v));
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, (size_t)(e - v));
      }
      lua_rawset(L, t);
    }
  }
}

static int push_rate_limit(lua_State *L, const fx_call *r)
{
  if (!r->rl_known) return 0;
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)r->rl_limit);
  lua_setfield(L, -2, "limit");
  lua_pushinteger(L, (lua_Integer)r->rl_remaining);
  lua_setfield(L, -2, "remaining");
  lua_pushinteger(L, (lua_Integer)r->rl_reset);
  lua_setfield(L, -2, "reset");
  return 1;
}

static void push_res(lua_State *L, fx_call *r)
{
  size_t n;
  const char *rid;
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  fx_push_headers(L, &r->resp_headers);
  lua_setfield(L, -2, "headers");
  if (push_rate_limit(L, r)) lua_setfield(L, -2, "rate_limit");
  rid = fx_header_find(&r->resp_headers, "x-request-id", &n);
  if (rid != NULL) {
    lua_pushlstring(L, rid, n);
    lua_setfield(L, -2, "request_id");
  }
  lua_pushinteger(L, r->attempts);
  lua_setfield(L, -2, "attempts");
  lua_pushnumber(L, fx_now() - r->started);
  lua_setfield(L, -2, "elapsed");
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "url");
  if (r->raw_body) {
    lua_pushlstring(L, r->resp_body.data ? r->resp_body.data : "", r->resp_body.len);
    lua_setfield(L, -2, "body");
  }
}

/* ---- bodies --------------------------------------------------------------------------------- */

static int blank(const fx_buf *b)
{
  size_t i;
  for (i = 0; i < b->len; i++)
    if (!isspace((unsigned char)b->data[i])) return 0;
  return 1;
}

/* application/json, or any type with a +json suffix (problem+json, vnd.api+json). */
static int json_type(const char *ct, size_t n)
{
  size_t i, end = n;
  for (i = 0; i < n; i++)
    if (ct[i] == ';') {
      end = i;
      break;
    }
  while (end > 0 && ct[end - 1] == ' ') end--;
  if (end == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
  return end >= 5 && strncasecmp(ct + end - 5, "+json", 5) == 0;
}

/* Decodes the body; on failure sets f (kind decode) and pushes nothing. */
static int decode_body(lua_State *L, fx_call *r, fx_fail *f)
{
  char msg[200];
  fx_buf *scratch = &r->scratch;
  int rc;
  fx_buf_clear(scratch);
  rc = fx_json_decode(L, r->resp_body.data, r->resp_body.len, scratch, msg, sizeof msg);
  if (rc == FX_JSON_NOMEM) luaL_error(L, "not enough memory");
  if (rc != 0) {
    size_t n;
    const char *ct = fx_header_find(&r->resp_headers, "content-type", &n);
    if (ct != NULL && !json_type(ct, n))
      fx_fail_set(f, "decode", "not_json", "the response body is not JSON (Content-Type %.*s)",
                  (int)(n > 80 ? 80 : n), ct);
    else
      fx_fail_set(f, "decode", "invalid_json", "the response body is not valid JSON: %s", msg);
    return -1;
  }
  return 0;
}

static int is_int_number(lua_State *L, int idx)
{
  return lua_type(L, idx) == LUA_TNUMBER && fx_isinteger(L, idx);
}

static int is_null(lua_State *L, int idx)
{
  return lua_isnil(L, idx) || (lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL);
}

static const char *type_word(lua_State *L, int idx)
{
  if (lua_type(L, idx) == LUA_TNUMBER)
    return is_int_number(L, idx) ? "an integer" : "a number that is not an integer";
  if (lua_type(L, idx) == LUA_TSTRING) return "a string";
  if (lua_type(L, idx) == LUA_TBOOLEAN) return "a boolean";
  if (lua_type(L, idx) == LUA_TTABLE) return "an object or array";
  return lua_typename(L, lua_type(L, idx));
}

/* The paging fields of meta (and links.next) must have their documented types: a wrong one
 * ("has_more": "false", "last_page": "3") would be read as a different list. Sets f and
 * returns -1 for the first field that does not. */
static int check_meta(lua_State *L, int meta, int body, fx_fail *f)
{
  static const struct { const char *name; int type; } fields[] = {
    {"current_page", 'i'}, {"last_page", 'i'}, {"per_page", 'i'}, {"total", 'i'},
    {"has_more", 'b'},     {"cursor", 's'},    {NULL, 0}};
  int i;
  for (i = 0; fields[i].name != NULL; i++) {
    int ok;
    lua_getfield(L, meta, fields[i].name);
    ok = is_null(L, -1) || (fields[i].type == 'i' ? is_int_number(L, -1)
                            : fields[i].type == 'b' ? lua_type(L, -1) == LUA_TBOOLEAN
                                                    : lua_type(L, -1) == LUA_TSTRING);
    if (!ok) {
      fx_fail_set(f, "protocol", "invalid_meta", "meta.%s is %s, expected %s", fields[i].name,
                  type_word(L, -1), fields[i].type == 'i' ? "an integer"
                                    : fields[i].type == 'b' ? "true or false" : "a string");
      lua_pop(L, 1);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, body, "links");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "next");
    if (!is_null(L, -1) && lua_type(L, -1) != LUA_TSTRING) {
      fx_fail_set(f, "protocol", "invalid_meta", "links.next is %s, expected a URL string", type_word(L, -1));
      lua_pop(L, 2);
      return -1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* Adds the normalised paging fields to the meta table at the top (raw fields stay); the types
 * were checked by check_meta. */
static void normalise_meta(lua_State *L, int body)
{
  int meta = lua_gettop(L);
  lua_getfield(L, meta, "current_page");
  if (is_int_number(L, -1)) {
    lua_Integer cur = fx_tointeger(L, -1), last = 0;
    int has_last, has_more;
    lua_getfield(L, meta, "last_page");
    has_last = is_int_number(L, -1);
    if (has_last) last = fx_tointeger(L, -1);
    lua_pop(L, 1);
    if (has_last) {
      has_more = cur < last;
    } else { /* fall back to links.next */
      lua_getfield(L, body, "links");
      has_more = lua_istable(L, -1) && (lua_getfield(L, -1, "next"), lua_type(L, -1) == LUA_TSTRING);
      lua_settop(L, meta + 1);
    }
    lua_pushliteral(L, "page");
    lua_setfield(L, meta, "style");
    lua_pushboolean(L, has_more);
    lua_setfield(L, meta, "has_more");
    if (has_more) {
      lua_pushinteger(L, cur + 1);
      lua_setfield(L, meta, "next_page");
    }
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_getfield(L, meta, "cursor");
  lua_getfield(L, meta, "has_more");
  if (!lua_isnil(L, -2) || !lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TBOOLEAN) { /* no has_more: a non-empty cursor means more */
      lua_pushboolean(L, lua_type(L, -2) == LUA_TSTRING && lua_rawlen(L, -2) > 0);
      lua_setfield(L, meta, "has_more");
    }
    lua_pushliteral(L, "cursor");
    lua_setfield(L, meta, "style");
  }
  lua_pop(L, 2);
}

/* Success: pushes data, meta; or sets f (leaving nothing) when the paging fields are unusable. */
static int push_success(lua_State *L, int body, fx_fail *f)
{
  if (lua_istable(L, body)) {
    lua_getfield(L, body, "data");
    if (!lua_isnil(L, -1)) {
      lua_getfield(L, body, "meta");
      if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
      }
      if (check_meta(L, lua_gettop(L), body, f) != 0) {
        lua_pop(L, 2);
        return -1;
      }
      normalise_meta(L, body);
      lua_getfield(L, body, "success");
      if (lua_isstring(L, -1))
        lua_setfield(L, -2, "success");
      else
        lua_pop(L, 1);
      return 0;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, body);
  lua_newtable(L);
  return 0;
}

/* HTTP error: fills f from an API error body {error, message} when there is one, and leaves
 * the decoded body on the stack (*body_idx) for err.body. */
static void http_fail(lua_State *L, fx_call *r, fx_fail *f, int *body_idx)
{
  const char *kind = r->status == 401 ? "auth" : r->status == 429 ? "limit" : "http";
  const char *code = r->status == 429 ? "rate_limit_exceeded" : r->status == 401 ? "unauthorized" : NULL;
  const char *msg;
  fx_fail ignored;
  *body_idx = 0;
  if (blank(&r->resp_body)) {
    fx_fail_set(f, kind, code ? code : "empty_body", "HTTP %ld %s (empty body)", r->status,
                reason(r->status));
    return;
  }
  if (decode_body(L, r, &ignored) != 0 || !lua_istable(L, -1)) {
    size_t n;
    const char *ct = fx_header_find(&r->resp_headers, "content-type", &n);
    if (!ct) n = 0;
    fx_fail_set(f, kind, code ? code : "non_json_body", "HTTP %ld %s (%.*s body)", r->status,
                reason(r->status), ct ? (int)(n > 60 ? 60 : n) : 8, ct ? ct : "non-JSON");
    return;
  }
  *body_idx = lua_gettop(L);
  lua_getfield(L, *body_idx, "error");
  if (lua_type(L, -1) == LUA_TSTRING) code = lua_tostring(L, -1);
  lua_getfield(L, *body_idx, "message");
  if (lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_getfield(L, *body_idx, "error_description");
  }
  msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : reason(r->status);
  fx_fail_set(f, kind, code ? code : "http_error", "%s", msg);
  lua_pop(L, 2);
}

int fx_finish(lua_State *L, fx_call *r)
{
  fx_fail f;
  if (r->out.failure != FX_F_NONE) {
    fx_failure_to_fail(r, &f);
    r->status = 0; /* no complete response */
    return fx_error_return(L, &f, r);
  }
  if (r->status >= 200 && r->status < 300) {
    int body;
    if (blank(&r->resp_body)) {
      lua_pushboolean(L, 1);
      lua_newtable(L);
      push_res(L, r);
      return 3;
    }
    if (decode_body(L, r, &f) != 0) return fx_error_return(L, &f, r);
    body = lua_gettop(L);
    if (push_success(L, body, &f) != 0) {
      lua_pushnil(L);
      fx_error_push(L, &f, r);
      lua_pushvalue(L, body); /* the raw fields stay readable: err.body.meta */
      lua_setfield(L, -2, "body");
      return 2;
    }
    push_res(L, r);
    return 3;
  }
  if (r->status >= 300 && r->status < 400) {
    size_t n, shown;
    const char *loc = fx_header_find(&r->resp_headers, "location", &n);
    /* the query and fragment are left out: signed URLs carry their secrets there */
    for (shown = 0; loc != NULL && shown < n && loc[shown] != '?' && loc[shown] != '#'; shown++) {}
    fx_fail_set(&f, "protocol", "redirect", "unexpected redirect (HTTP %ld) to %.*s%s; redirects are not followed",
                r->status, loc ? (int)(shown > 300 ? 300 : shown) : 9, loc ? loc : "(nowhere)",
                loc && shown < n ? " (query left out)" : "");
    return fx_error_return(L, &f, r);
  }
  if (r->status >= 400) {
    int body;
    http_fail(L, r, &f, &body);
    lua_pushnil(L);
    fx_error_push(L, &f, r);
    if (body != 0) {
      lua_pushvalue(L, body);
      lua_setfield(L, -2, "body");
      lua_getfield(L, body, "errors"); /* field errors: { field = { message, ... } } */
      if (lua_istable(L, -1))
        lua_setfield(L, -2, "fields");
      else
        lua_pop(L, 1);
    }
    return 2;
  }
  fx_fail_set(&f, "protocol", "bad_status", "unexpected HTTP status %ld", r->status);
  return fx_error_return(L, &f, r);
}
