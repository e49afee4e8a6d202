/* flextell.Error: the structured value every remote or data fault is returned as. It is a plain
 * table (easy to inspect, log and compare) with a metatable for tostring and type checks. */

/***
Errors.
@module flextell
*/

/***
An error: a plain table with the metatable `flextell.Error` (see `is_error`).
Fields: `kind` (`http`, `auth`, `limit`, `network`, `timeout`, `tls`, `decode`, `protocol`,
`usage`), `status` (when a response arrived), `code` (the API's, such as `invalid_token` or
`validation_error`, or the library's), `message`, `body` (the decoded error body), `fields` (the
field errors of a 422), `retry_after` (whole seconds), `maybe_sent` (for a failure without an
answer: `false` when the request certainly never went on the wire), `request_id`, `headers`,
`method`, `url`, `attempts`. Running out of memory is not an error value: it raises.
@type Error
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fx.h"

void fx_fail_set(fx_fail *f, const char *kind, const char *code, const char *fmt, ...)
{
  va_list ap;
  f->kind = kind;
  snprintf(f->code, sizeof f->code, "%s", code ? code : "");
  va_start(ap, fmt);
  vsnprintf(f->message, sizeof f->message, fmt, ap);
  va_end(ap);
  f->maybe_sent = -1;
  f->status = 0;
  f->retry_after = -1;
}

void fx_fail_closed(fx_fail *f)
{
  fx_fail_set(f, "usage", "closed", "the client was closed while the call was running");
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

int fx_error_push(lua_State *L, const fx_fail *f, fx_call *r)
{
  lua_createtable(L, 0, 12);
  set_str(L, "kind", f->kind);
  if (f->code[0] != '\0') set_str(L, "code", f->code);
  set_str(L, "message", f->message);
  if (f->maybe_sent >= 0) {
    lua_pushboolean(L, f->maybe_sent);
    lua_setfield(L, -2, "maybe_sent");
  }
  if (r != NULL) {
    size_t n;
    const char *rid;
    set_str(L, "method", r->method);
    set_str(L, "url", r->url);
    lua_pushinteger(L, r->attempts);
    lua_setfield(L, -2, "attempts");
    if (r->status > 0) {
      lua_pushinteger(L, r->status);
      lua_setfield(L, -2, "status");
      fx_push_headers(L, &r->resp_headers);
      lua_setfield(L, -2, "headers");
    }
    if (r->retry_after >= 0) {
      double ra = ceil(r->retry_after); /* whole seconds, an integer on 5.4 */
      if (ra < 9007199254740992.0)
        lua_pushinteger(L, (lua_Integer)ra);
      else
        lua_pushnumber(L, ra);
      lua_setfield(L, -2, "retry_after");
    }
    rid = fx_header_find(&r->resp_headers, "x-request-id", &n);
    if (rid != NULL) {
      lua_pushlstring(L, rid, n);
      lua_setfield(L, -2, "request_id");
    }
  }
  luaL_setmetatable(L, FX_ERROR_MT);
  return 1;
}

int fx_error_return(lua_State *L, const fx_fail *f, fx_call *r)
{
  lua_pushnil(L);
  fx_error_push(L, f, r);
  return 2;
}

static const char *field(lua_State *L, int idx, const char *k)
{
  const char *s;
  lua_getfield(L, idx, k);
  s = lua_isstring(L, -1) ? lua_tostring(L, -1) : NULL;
  lua_pop(L, 1); /* the table still holds the string, so s stays valid */
  return s;
}

static int key_cmp(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* " (email: The email must be a valid email address. +1 more)": the first field error of
 * err.fields in name order, so the line is the same every time. Pushes it and returns 1, or 0. */
static int push_first_field(lua_State *L, int err)
{
  const char *names[64];
  int n = 0, total = 0, t;
  lua_getfield(L, err, "fields");
  t = lua_gettop(L);
  if (!lua_istable(L, t)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      total++;
      if (n < (int)(sizeof names / sizeof names[0])) names[n++] = lua_tostring(L, -1);
    }
  }
  if (n == 0) {
    lua_pop(L, 1);
    return 0;
  }
  qsort(names, (size_t)n, sizeof names[0], key_cmp);
  lua_getfield(L, t, names[0]);
  if (lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    if (total > 1)
      lua_pushfstring(L, " (%s: %s +%d more)", names[0], lua_tostring(L, -1), total - 1);
    else
      lua_pushfstring(L, " (%s: %s)", names[0], lua_tostring(L, -1));
  } else {
    lua_pushfstring(L, " (%s)", names[0]);
  }
  lua_replace(L, t);
  lua_settop(L, t);
  return 1;
}

/* "flextell: http 404 not_found: Customer 9 not found (GET https://.../v1/customers/9)" */
/***
`tostring(err)`: the error on one line.
Such as `flextell: http 404 not_found: Customer 9 not found (GET https://.../v1/customers/9)`; a
validation error adds its first field error and how many more, and a URL longer than 300 bytes
is cut there (`err.url` has it whole).
@function Error:__tostring
@treturn string
*/
static int error_tostring(lua_State *L)
{
  const char *kind, *code, *msg, *method, *url;
  int parts = 1;
  luaL_checktype(L, 1, LUA_TTABLE);
  kind = field(L, 1, "kind");
  code = field(L, 1, "code");
  msg = field(L, 1, "message");
  method = field(L, 1, "method");
  url = field(L, 1, "url");
  lua_pushfstring(L, "flextell: %s", kind ? kind : "error");
  lua_getfield(L, 1, "status");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_pushfstring(L, " %d", (int)lua_tointeger(L, -1));
    lua_remove(L, -2);
    parts++;
  } else {
    lua_pop(L, 1);
  }
  if (code != NULL) {
    lua_pushfstring(L, " %s", code);
    parts++;
  }
  lua_pushfstring(L, ": %s", msg ? msg : "unknown error");
  parts++;
  parts += push_first_field(L, 1);
  if (method != NULL && url != NULL) {
    /* one line stays one readable line: a URL of kilobytes (a huge query) is cut; err.url has it */
    size_t n = strlen(url);
    if (n > 300) {
      lua_pushfstring(L, " (%s ", method);
      lua_pushlstring(L, url, 300);
      lua_pushfstring(L, "... (%d more bytes))", (int)(n - 300));
      parts += 3;
    } else {
      lua_pushfstring(L, " (%s %s)", method, url);
      parts++;
    }
  }
  lua_concat(L, parts);
  return 1;
}

void flextell_error_open(lua_State *L)
{
  luaL_newmetatable(L, FX_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushstring(L, FX_ERROR_MT);
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "Error");
}
