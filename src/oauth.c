/* OAuth 2.0 Authorization Code grant (RFC 6749) with optional PKCE S256 (RFC 7636): the token
 * state lives in C on the shared client state; refreshes go through the same call path as any
 * request (prepare, transport, finish), so they work with every transport. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fx.h"
#include "crypto.h"
#include "json.h"

/* ---- token state ------------------------------------------------------------------------------ */

static void wipe(char **p)
{
  if (*p != NULL) {
    volatile char *v = *p;
    while (*v) *v++ = 0;
    free(*p);
    *p = NULL;
  }
}

static void push_tokens(lua_State *L, const fx_shared *S)
{
  lua_createtable(L, 0, 5);
  if (S->access_token) {
    lua_pushstring(L, S->access_token);
    lua_setfield(L, -2, "access_token");
  }
  if (S->refresh_token) {
    lua_pushstring(L, S->refresh_token);
    lua_setfield(L, -2, "refresh_token");
  }
  if (S->expires_at > 0) {
    lua_Number e = S->expires_at;
    if (e == (lua_Number)(lua_Integer)e)
      lua_pushinteger(L, (lua_Integer)e);
    else
      lua_pushnumber(L, e);
    lua_setfield(L, -2, "expires_at");
  }
  if (S->access_token && S->token_type) {
    lua_pushstring(L, S->token_type);
    lua_setfield(L, -2, "token_type");
  }
  if (S->scope) {
    lua_pushstring(L, S->scope);
    lua_setfield(L, -2, "scope");
  }
}

static int push_error(lua_State *L, const char *kind, const char *code, const char *msg)
{
  fx_fail f;
  fx_fail_set(&f, kind, code, "%s", msg);
  fx_error_push(L, &f, NULL);
  return -1;
}

/* Tells the app about new tokens. An error in the callback is returned (the tokens in memory are
 * already the new ones, so a retry works), never swallowed; so is a client the callback closed. */
static int notify(lua_State *L, int cidx)
{
  fx_client *c = fx_client_at(L, cidx);
  fx_fail f;
  if (c->shared == NULL) {
    fx_fail_closed(&f);
    fx_error_push(L, &f, NULL);
    return -1;
  }
  if (!fx_client_push_hook(L, cidx, "on_token")) return 0;
  push_tokens(L, c->shared);
  if (lua_pcall(L, 1, 0, 0) != 0) {
    const char *m = lua_tostring(L, -1);
    lua_pushfstring(L, "on_token raised an error: %s", m ? m : luaL_typename(L, -1));
    push_error(L, "usage", "on_token_error", lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_remove(L, -2);
    return -1;
  }
  if (c->shared == NULL) { /* the hook closed the client */
    fx_fail_closed(&f);
    fx_error_push(L, &f, NULL);
    return -1;
  }
  return 0;
}

static void clear_tokens(fx_shared *S)
{
  wipe(&S->access_token);
  wipe(&S->refresh_token);
  free(S->scope);
  S->scope = NULL;
  S->expires_at = 0;
  S->token_serial++;
}

/* Stores a token response (the table at idx) after checking all of it; 0, or -1 with an error
 * pushed. A response without refresh_token keeps the old one (RFC 6749 6). */
static int apply_tokens(lua_State *L, fx_shared *S, int idx)
{
  const char *access, *refresh, *type, *scope;
  double expires_in = -1;
  char *na = NULL, *nr = NULL, *nt = NULL, *ns = NULL;
  lua_getfield(L, idx, "access_token");
  lua_getfield(L, idx, "refresh_token");
  lua_getfield(L, idx, "token_type");
  lua_getfield(L, idx, "scope");
  lua_getfield(L, idx, "expires_in");
  access = lua_type(L, -5) == LUA_TSTRING ? lua_tostring(L, -5) : NULL;
  refresh = lua_type(L, -4) == LUA_TSTRING ? lua_tostring(L, -4) : NULL;
  type = lua_type(L, -3) == LUA_TSTRING ? lua_tostring(L, -3) : "Bearer";
  scope = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
  if (lua_type(L, -1) == LUA_TNUMBER) expires_in = lua_tonumber(L, -1);
  if (access == NULL || !fx_token_chars_ok(access) || (refresh && !fx_token_chars_ok(refresh)) ||
      *access == '\0') {
    lua_pop(L, 5);
    return push_error(L, "protocol", "invalid_token_response",
                      "the token endpoint answered without a usable access_token");
  }
  if (strcasecmp(type, "Bearer") != 0) {
    lua_pop(L, 5);
    return push_error(L, "protocol", "invalid_token_response",
                      "the token endpoint issued a token type other than Bearer");
  }
  na = fx_strdup(access);
  nr = refresh ? fx_strdup(refresh) : NULL;
  nt = fx_strdup("Bearer");
  ns = scope ? fx_strdup(scope) : NULL;
  lua_pop(L, 5);
  if (!na || !nt || (refresh && !nr) || (scope && !ns)) {
    wipe(&na);
    wipe(&nr);
    free(nt);
    free(ns);
    luaL_error(L, "not enough memory");
  }
  wipe(&S->access_token);
  S->access_token = na;
  if (nr != NULL) {
    wipe(&S->refresh_token);
    S->refresh_token = nr;
  }
  free(S->token_type);
  S->token_type = nt;
  if (ns != NULL) {
    free(S->scope);
    S->scope = ns;
  }
  S->expires_at = expires_in >= 0 ? (double)(long long)fx_wallclock() + expires_in : 0;
  S->token_serial++;
  return 0;
}

/* POSTs the form table at form_idx to the token endpoint. 0 with the token response table
 * pushed, or -1 with an error pushed (kind auth for any OAuth error answer). */
static int token_post(lua_State *L, int cidx, int form_idx, int max_retries)
{
  fx_client *c = fx_client_at(L, cidx);
  fx_spec s;
  int top = lua_gettop(L), n;
  fx_spec_init(&s);
  s.method = "POST";
  s.url = c->shared->token_url;
  s.form = form_idx;
  s.no_auth = 1;
  s.no_tenant = 1;
  s.max_retries = max_retries;
  n = fx_client_call(L, cidx, &s);
  if (lua_isnil(L, -n)) { /* nil, err */
    int err = lua_gettop(L);
    lua_getfield(L, err, "status");
    if (lua_isnumber(L, -1) && lua_tointeger(L, -1) >= 400 && lua_tointeger(L, -1) < 500) {
      lua_pushliteral(L, "auth");
      lua_setfield(L, err, "kind");
    }
    lua_pop(L, 1);
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return -1;
  }
  lua_pushvalue(L, -n); /* data; the call left other values below its results */
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return push_error(L, "protocol", "invalid_token_response", "the token endpoint answered with no JSON object");
  }
  return 0;
}

static void form_set(lua_State *L, const char *k, const char *v)
{
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

int fx_oauth_can_refresh(const fx_shared *S)
{
  return S->refresh_token != NULL && S->client_id != NULL;
}

int fx_oauth_refresh(lua_State *L, int cidx)
{
  fx_client *c = fx_client_at(L, cidx);
  fx_shared *S = c->shared;
  int form;
  if (!fx_oauth_can_refresh(S))
    return push_error(L, "usage", "no_refresh_token",
                      "cannot refresh: the client has no refresh_token and client_id");
  lua_createtable(L, 0, 4);
  form = lua_gettop(L);
  form_set(L, "grant_type", "refresh_token");
  form_set(L, "refresh_token", S->refresh_token);
  form_set(L, "client_id", S->client_id);
  form_set(L, "client_secret", S->client_secret);
  if (token_post(L, cidx, form, -1) != 0) {
    int err = lua_gettop(L);
    lua_getfield(L, err, "code");
    if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "invalid_grant") == 0 && c->shared != NULL) {
      /* expired, revoked or reused: only a new authorization helps */
      lua_pushliteral(L, "auth");
      lua_setfield(L, err, "kind");
      lua_pushliteral(L, "reauth_required");
      lua_setfield(L, err, "code");
      lua_getfield(L, err, "message");
      lua_pushfstring(L, "the refresh token was refused (%s); authorize again",
                      lua_isstring(L, -1) ? lua_tostring(L, -1) : "invalid_grant");
      lua_setfield(L, err, "message");
      lua_pop(L, 1);
      clear_tokens(c->shared);
      if (notify(L, cidx) != 0) lua_pop(L, 1); /* the refusal is the news worth returning */
    }
    lua_pop(L, 1);
    lua_remove(L, form);
    return -1;
  }
  lua_remove(L, form);
  if (c->shared == NULL) { /* a hook closed the client while the refresh ran */
    fx_fail f;
    lua_pop(L, 1);
    fx_fail_closed(&f);
    fx_error_push(L, &f, NULL);
    return -1;
  }
  if (apply_tokens(L, c->shared, lua_gettop(L)) != 0) {
    lua_remove(L, -2);
    return -1;
  }
  lua_pop(L, 1);
  return notify(L, cidx);
}

/* Before a call: refresh a token that is missing or about to expire. An OAuth client with no
 * token and nothing to refresh it with fails here, before anything is sent. */
int fx_oauth_before(lua_State *L, int cidx)
{
  fx_shared *S = fx_client_at(L, cidx)->shared;
  if (!fx_oauth_can_refresh(S)) {
    if (S->access_token == NULL && S->client_id != NULL)
      return push_error(L, "auth", "reauth_required",
                        "the client has no access token: authorize first (client:authorize_url, "
                        "client:exchange_code)");
    return 0;
  }
  if (S->access_token != NULL &&
      (S->expires_at <= 0 || fx_wallclock() + S->refresh_margin < S->expires_at))
    return 0;
  return fx_oauth_refresh(L, cidx);
}

/* ---- methods ---------------------------------------------------------------------------------- */

static int oauth_tokens(lua_State *L)
{
  push_tokens(L, fx_client_check(L, 1)->shared);
  return 1;
}

static int oauth_refresh(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  if (fx_oauth_refresh(L, 1) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  push_tokens(L, c->shared); /* notify() checked that the client is still open */
  return 1;
}

static void random_token(lua_State *L, size_t nbytes)
{
  unsigned char raw[64];
  char text[100];
  if (nbytes > sizeof raw || fx_random_bytes(raw, nbytes) != 0)
    luaL_error(L, "no secure random source is available");
  fx_base64url(raw, nbytes, text);
  lua_pushstring(L, text);
}

static void add_param(lua_State *L, fx_buf *b, const char *k, const char *v)
{
  if (v == NULL) return;
  if (fx_buf_addc(b, b->len == 0 ? '?' : '&') != 0 || fx_url_escape(b, k, strlen(k), 0) != 0 ||
      fx_buf_addc(b, '=') != 0 || fx_url_escape(b, v, strlen(v), 0) != 0)
    luaL_error(L, "not enough memory");
}

/* client:authorize_url{ scope=, state=, redirect_uri=, pkce= } -> url, state, verifier */
static int oauth_authorize_url(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_shared *S = c->shared;
  const char *scope = NULL, *state, *redirect, *verifier = NULL;
  char challenge[64];
  int pkce;
  fx_buf *q;
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushnil(L);
  while (lua_next(L, 2) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (strcmp(k, "scope") && strcmp(k, "state") && strcmp(k, "redirect_uri") && strcmp(k, "pkce"))
      luaL_error(L, "client:authorize_url: unknown option '%s'", k);
    lua_pop(L, 1);
  }
  if (S->client_id == NULL) luaL_error(L, "client:authorize_url: the client has no client_id");
  lua_getfield(L, 2, "scope"); /* 3 */
  if (lua_istable(L, 3)) {     /* a list of scopes */
    int i, n = (int)lua_rawlen(L, 3);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      if (!lua_isstring(L, -1)) luaL_error(L, "client:authorize_url: scopes must be strings");
      if (i > 1) luaL_addchar(&b, ' ');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 3);
  } else if (!lua_isnil(L, 3) && !lua_isstring(L, 3)) {
    luaL_error(L, "client:authorize_url: 'scope' must be a string or a list of strings");
  }
  scope = lua_tostring(L, 3);
  lua_getfield(L, 2, "state"); /* 4 */
  if (lua_isnil(L, 4)) {
    lua_pop(L, 1);
    random_token(L, 32);
  } else if (lua_type(L, 4) != LUA_TSTRING) {
    luaL_error(L, "client:authorize_url: 'state' must be a string");
  }
  state = lua_tostring(L, 4);
  lua_getfield(L, 2, "redirect_uri"); /* 5 */
  redirect = lua_isstring(L, 5) ? lua_tostring(L, 5) : S->redirect_uri;
  if (redirect == NULL) luaL_error(L, "client:authorize_url: no redirect_uri (give it here or to flextell.new)");
  lua_getfield(L, 2, "pkce"); /* 6 */
  pkce = lua_toboolean(L, 6);
  if (pkce) {
    unsigned char digest[32];
    random_token(L, 48); /* 7: a 64-character verifier, within RFC 7636's 43..128 */
    verifier = lua_tostring(L, 7);
    fx_sha256((const unsigned char *)verifier, strlen(verifier), digest);
    fx_base64url(digest, 32, challenge);
  }
  q = fx_buf_push(L);
  add_param(L, q, "response_type", "code");
  add_param(L, q, "client_id", S->client_id);
  add_param(L, q, "redirect_uri", redirect);
  add_param(L, q, "scope", scope);
  add_param(L, q, "state", state);
  if (pkce) {
    add_param(L, q, "code_challenge", challenge);
    add_param(L, q, "code_challenge_method", "S256");
  }
  lua_pushstring(L, S->authorize_url);
  lua_pushlstring(L, q->data, q->len);
  lua_concat(L, 2);
  lua_pushvalue(L, 4);
  if (pkce)
    lua_pushvalue(L, 7);
  else
    lua_pushnil(L);
  return 3;
}

static int hexval(int ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Sets t[name] = decoded value for each name=value of a query string. */
static void parse_query(lua_State *L, const char *q, size_t n, int t)
{
  size_t i = 0;
  while (i < n) {
    size_t start = i, eq = (size_t)-1;
    luaL_Buffer b;
    for (; i < n && q[i] != '&'; i++)
      if (q[i] == '=' && eq == (size_t)-1) eq = i;
    if (eq != (size_t)-1) {
      size_t j;
      lua_pushlstring(L, q + start, eq - start);
      luaL_buffinit(L, &b);
      for (j = eq + 1; j < i; j++) {
        int h1, h2;
        if (q[j] == '+') {
          luaL_addchar(&b, ' ');
        } else if (q[j] == '%' && j + 2 < i + 1 && (h1 = hexval(q[j + 1])) >= 0 &&
                   (h2 = hexval(q[j + 2])) >= 0) {
          luaL_addchar(&b, (char)(h1 * 16 + h2));
          j += 2;
        } else {
          luaL_addchar(&b, q[j]);
        }
      }
      luaL_pushresult(&b);
      lua_rawset(L, t);
    }
    i++;
  }
}

/* client:exchange_code(code_or_redirect_url, { state=, code_verifier=, redirect_uri= }) */
static int oauth_exchange_code(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_shared *S = c->shared;
  size_t n;
  const char *arg = luaL_checklstring(L, 2, &n), *code, *expected, *verifier, *redirect, *q;
  int params, form;
  if (lua_isnoneornil(L, 3)) {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  if (S->client_id == NULL) luaL_error(L, "client:exchange_code: the client has no client_id");
  lua_getfield(L, 3, "state");
  lua_getfield(L, 3, "code_verifier");
  lua_getfield(L, 3, "redirect_uri");
  expected = lua_tostring(L, 4);
  verifier = lua_tostring(L, 5);
  redirect = lua_isstring(L, 6) ? lua_tostring(L, 6) : S->redirect_uri;
  lua_newtable(L);
  params = lua_gettop(L);
  q = memchr(arg, '?', n);
  if (q != NULL) { /* the whole redirect URL */
    const char *hash = memchr(q, '#', n - (size_t)(q - arg));
    parse_query(L, q + 1, (size_t)((hash ? hash : arg + n) - q - 1), params);
  } else {
    lua_pushvalue(L, 2);
    lua_setfield(L, params, "code");
  }
  /* the state first (RFC 6749 10.12): a forged redirect is refused whatever else it says */
  if (expected != NULL && q != NULL) {
    lua_getfield(L, params, "state");
    if (!lua_isstring(L, -1) || strcmp(lua_tostring(L, -1), expected) != 0) {
      fx_fail f;
      fx_fail_set(&f, "auth", "state_mismatch",
                  "the redirect's state does not match the one sent (a forged or stale redirect)");
      return fx_error_return(L, &f, NULL);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, params, "error");
  if (lua_isstring(L, -1)) {
    const char *e = lua_tostring(L, -1);
    lua_getfield(L, params, "error_description");
    lua_pushfstring(L, "authorization failed: %s%s%s", e, lua_isstring(L, -1) ? ": " : "",
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_pushnil(L);
    {
      fx_fail f;
      fx_fail_set(&f, "auth", strlen(e) < 60 && fx_token_chars_ok(e) ? e : "authorization_error", "%s",
                  lua_tostring(L, -2));
      fx_error_push(L, &f, NULL);
    }
    return 2;
  }
  lua_pop(L, 1);
  lua_getfield(L, params, "code");
  code = lua_tostring(L, -1);
  if (code == NULL || *code == '\0' || !fx_token_chars_ok(code)) {
    fx_fail f;
    fx_fail_set(&f, "auth", "missing_code", code == NULL || *code == '\0'
                                               ? "the redirect carries no authorization code"
                                               : "the authorization code has characters no code can have");
    return fx_error_return(L, &f, NULL);
  }
  if (redirect == NULL) luaL_error(L, "client:exchange_code: no redirect_uri (give it here or to flextell.new)");
  lua_createtable(L, 0, 6);
  form = lua_gettop(L);
  form_set(L, "grant_type", "authorization_code");
  form_set(L, "code", code);
  form_set(L, "redirect_uri", redirect);
  form_set(L, "client_id", S->client_id);
  form_set(L, "client_secret", S->client_secret);
  form_set(L, "code_verifier", verifier);
  /* never retried: a code is single use, a second try can only fail or look like a replay */
  if (token_post(L, 1, form, 0) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  if (c->shared == NULL) { /* on_retry closed the client */
    fx_fail f;
    fx_fail_closed(&f);
    return fx_error_return(L, &f, NULL);
  }
  if (apply_tokens(L, c->shared, lua_gettop(L)) != 0 || notify(L, 1) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  push_tokens(L, c->shared);
  return 1;
}

/* core.pkce_challenge(verifier): base64url(SHA-256(verifier)), exposed for tests and tools. */
static int core_pkce_challenge(lua_State *L)
{
  size_t n;
  const char *v = luaL_checklstring(L, 1, &n);
  unsigned char digest[32];
  char out[64];
  fx_sha256((const unsigned char *)v, n, digest);
  fx_base64url(digest, 32, out);
  lua_pushstring(L, out);
  return 1;
}

static const luaL_Reg oauth_methods[] = {
  {"tokens", oauth_tokens},       {"refresh", oauth_refresh},
  {"authorize_url", oauth_authorize_url}, {"exchange_code", oauth_exchange_code},
  {NULL, NULL}
};

void flextell_oauth_open(lua_State *L)
{
  luaL_setfuncs(L, oauth_methods, 0);
  lua_pushcfunction(L, core_pkce_challenge);
  lua_setfield(L, -4, "pkce_challenge");
}
