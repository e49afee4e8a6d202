/* flextell.Error: the structured value every remote or data fault is returned as. It is a plain
 * table (easy to inspect, log and compare) with a metatable for tostring and type checks. */
#include <stdarg.h>
#include <stdio.h>
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
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

int fx_error_push(lua_State *L, const fx_fail *f, fx_request *r)
{
  lua_createtable(L, 0, 12);
  set_str(L, "kind", f->kind);
  if (f->code[0] != '\0') set_str(L, "code", f->code);
  set_str(L, "message", f->message);
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
    }
    if (r->retry_after >= 0) {
      lua_pushnumber(L, r->retry_after);
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

int fx_error_return(lua_State *L, const fx_fail *f, fx_request *r)
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

/* "flextell: http 404 not_found: Customer 9 not found (GET https://.../v1/customers/9)" */
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
  if (method != NULL && url != NULL) {
    lua_pushfstring(L, " (%s %s)", method, url);
    parts++;
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
