/* OAuth 2.0 Authorization Code grant (RFC 6749) with optional PKCE S256 (RFC 7636): the token
 * state lives in C on the shared client state. A refresh or a code exchange is a call of its own
 * (a token call, kinds FX_K_REFRESH and FX_K_EXCHANGE) on the same machinery as any request, so
 * it works with every driver; a call that needs a fresh token runs the refresh as its child. */

/***
The client's OAuth methods: the Authorization Code grant with optional PKCE.
@module flextell
*/

/***
@type Client
*/
#include <ctype.h>
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

void fx_oauth_push_tokens(lua_State *L, const fx_shared *S)
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

static void form_set(lua_State *L, const char *k, const char *v)
{
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static int same(const char *a, const char *b)
{
  return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Tokens a token store holds (the table at idx: access_token, refresh_token, expires_at as
 * epoch seconds, token_type, scope), taken as they are: another holder got them. */
int fx_oauth_adopt(lua_State *L, fx_shared *S, int idx)
{
  const char *access, *refresh, *scope;
  char *na = NULL, *nr = NULL, *ns = NULL, *nt = NULL;
  double expires_at = 0;
  int changed;
  idx = fx_absindex(L, idx);
  lua_getfield(L, idx, "access_token");
  lua_getfield(L, idx, "refresh_token");
  lua_getfield(L, idx, "scope");
  lua_getfield(L, idx, "expires_at");
  access = lua_type(L, -4) == LUA_TSTRING ? lua_tostring(L, -4) : NULL;
  refresh = lua_type(L, -3) == LUA_TSTRING ? lua_tostring(L, -3) : NULL;
  scope = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
  if (lua_type(L, -1) == LUA_TNUMBER) expires_at = lua_tonumber(L, -1);
  if ((access == NULL && refresh == NULL) || (access && (!*access || !fx_token_chars_ok(access))) ||
      (refresh && (!*refresh || !fx_token_chars_ok(refresh)))) {
    lua_pop(L, 4);
    return -1;
  }
  if ((access && strlen(access) > FX_TOKEN_MAX) || (refresh && strlen(refresh) > FX_TOKEN_MAX)) {
    lua_pop(L, 4);
    return -2;
  }
  if (!(expires_at >= 0) || (lua_type(L, -1) != LUA_TNUMBER && !lua_isnil(L, -1))) {
    lua_pop(L, 4);
    return -3;
  }
  changed = !same(access, S->access_token);
  if ((access && !(na = fx_strdup(access))) || (refresh && !(nr = fx_strdup(refresh))) ||
      (scope && !(ns = fx_strdup(scope))) || !(nt = fx_strdup("Bearer"))) {
    wipe(&na);
    wipe(&nr);
    free(ns);
    free(nt);
    luaL_error(L, "not enough memory");
  }
  lua_pop(L, 4);
  wipe(&S->access_token);
  wipe(&S->refresh_token);
  free(S->scope);
  free(S->token_type);
  S->access_token = na;
  S->refresh_token = nr;
  S->scope = ns;
  S->token_type = nt;
  S->expires_at = expires_at;
  S->token_serial++;
  return changed;
}

const char *fx_oauth_adopt_problem(int rc)
{
  switch (rc) {
  case -2: return "the token store holds a token longer than 64 KiB";
  case -3: return "the token store holds an expires_at that is not a number of seconds >= 0";
  default: return "the token store holds tokens that are not valid (no token, or not strings of token characters)";
  }
}

/* The refresh's form again, with the refresh token held now (a store may have a newer one). */
int fx_oauth_refresh_body(lua_State *L, fx_call *r, fx_fail *f)
{
  fx_shared *S = r->shared;
  int rc;
  if (!fx_oauth_can_refresh(S)) {
    fx_fail_set(f, "usage", "no_refresh_token", "cannot refresh: the client has no refresh_token and client_id");
    return -1;
  }
  lua_createtable(L, 0, 4);
  form_set(L, "grant_type", "refresh_token");
  form_set(L, "refresh_token", S->refresh_token);
  form_set(L, "client_id", S->client_id);
  form_set(L, "client_secret", S->client_secret);
  fx_buf_clear(&r->body);
  rc = fx_append_query(L, lua_gettop(L), &r->body, "form", f);
  lua_pop(L, 1);
  return rc;
}

int fx_oauth_can_refresh(const fx_shared *S)
{
  return S->refresh_token != NULL && S->client_id != NULL;
}

/* Pushes a started token call of the client at cidx that POSTs the form at form_idx. */
static fx_call *token_call(lua_State *L, int cidx, int form_idx, int kind, int max_retries)
{
  fx_client *c = fx_client_check(L, cidx);
  fx_spec s;
  fx_fail f;
  fx_call *r;
  cidx = fx_absindex(L, cidx);
  form_idx = fx_absindex(L, form_idx);
  fx_spec_init(&s);
  s.method = "POST";
  s.url = c->shared->token_url;
  s.form = form_idx;
  s.no_auth = 1;
  s.no_tenant = 1;
  s.max_retries = max_retries;
  r = fx_call_new(L, cidx, kind);
  if (fx_prepare(L, c, &s, r, &f) != 0) luaL_error(L, "%s", f.message); /* our own form: cannot fail */
  fx_call_start(r);
  /* a token request on the wire is never cut short by a deadline: its answer holds the only
   * copy of the new tokens (a rotated refresh token lost is the grant lost). The deadline ends
   * it at any other point. */
  r->start_limit = r->pol.deadline;
  r->pol.deadline = 0;
  return r;
}

fx_call *fx_oauth_refresh_call(lua_State *L, int cidx)
{
  fx_shared *S = fx_client_check(L, cidx)->shared;
  fx_call *r;
  cidx = fx_absindex(L, cidx);
  lua_createtable(L, 0, 4);
  form_set(L, "grant_type", "refresh_token");
  form_set(L, "refresh_token", S->refresh_token);
  form_set(L, "client_id", S->client_id);
  form_set(L, "client_secret", S->client_secret);
  r = token_call(L, cidx, lua_gettop(L), FX_K_REFRESH, -1);
  lua_remove(L, -2);
  return r;
}

static const char *static_kind(const char *k)
{
  static const char *const kinds[] = {"http", "auth", "limit", "network", "timeout", "tls",
                                      "decode", "protocol", "usage", NULL};
  int i;
  for (i = 0; k != NULL && kinds[i] != NULL; i++)
    if (strcmp(k, kinds[i]) == 0) return kinds[i];
  return "auth";
}

/* The error table at idx, as an fx_fail (for the calls that waited on this refresh). */
static void fail_from_table(lua_State *L, int idx, fx_fail *f)
{
  const char *code, *msg;
  lua_getfield(L, idx, "kind");
  lua_getfield(L, idx, "code");
  lua_getfield(L, idx, "message");
  code = lua_tostring(L, -2);
  msg = lua_tostring(L, -1);
  fx_fail_set(f, static_kind(lua_tostring(L, -3)), code, "%s", msg ? msg : "the token refresh failed");
  lua_pop(L, 3);
  lua_getfield(L, idx, "status");
  f->status = lua_type(L, -1) == LUA_TNUMBER ? (long)lua_tointeger(L, -1) : 0;
  lua_getfield(L, idx, "retry_after");
  f->retry_after = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
  lua_getfield(L, idx, "maybe_sent");
  f->maybe_sent = lua_type(L, -1) == LUA_TBOOLEAN ? lua_toboolean(L, -1) : -1;
  lua_pop(L, 3);
}

/* A token call's outcome: the tokens applied (on_token to be told), or its error kept in the
 * call's user value (an OAuth error answer is kind auth; a refused refresh token clears the
 * tokens: only a new authorization helps). A refresh also ends the shared state's refresh. */
void fx_oauth_finish(lua_State *L, int idx)
{
  fx_call *r;
  fx_shared *S;
  int top = lua_gettop(L), err = 0, first, tell = 0;
  idx = fx_absindex(L, idx);
  r = fx_call_at(L, idx);
  S = r->shared;
  first = fx_finish(L, r); /* data, meta, res | nil, err */
  first = lua_gettop(L) - first + 1;
  if (lua_isnil(L, first)) {
    err = first + 1;
    lua_getfield(L, err, "status");
    if (lua_isnumber(L, -1) && lua_tointeger(L, -1) >= 400 && lua_tointeger(L, -1) < 500) {
      lua_pushliteral(L, "auth");
      lua_setfield(L, err, "kind");
    }
    lua_pop(L, 1);
    lua_getfield(L, err, "code");
    if (r->kind == FX_K_REFRESH && lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "invalid_grant") == 0) {
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
      clear_tokens(S); /* in memory only: a store keeps what it has */
      tell = 1;
    }
    lua_pop(L, 1);
  } else if (!lua_istable(L, first)) {
    push_error(L, "protocol", "invalid_token_response", "the token endpoint answered with no JSON object");
    err = lua_gettop(L);
  } else if (apply_tokens(L, S, first) != 0) {
    err = lua_gettop(L);
  } else {
    tell = 1;
  }
  if (r->locked && err != 0 && r->in_doubt) {
    /* no answer, and the request may have been processed: the stored refresh token may be
     * spent. The lock is left to expire, so no holder presents it while this one may still be
     * on its way to the server. */
    r->locked = 0;
  } else if (r->locked) { /* new tokens go to the store, then the lock goes back */
    if (err == 0) fx_call_queue_store_hook(r, FX_ST_SAVE);
    fx_call_queue_store_hook(r, FX_ST_UNLOCK);
  }
  if (tell) fx_call_queue_token_hook(r);
  if (err != 0) {
    r->token_failed = 1;
    fx_getuservalue(L, idx);
    lua_pushvalue(L, err);
    lua_setfield(L, -2, "err");
    lua_pop(L, 1);
  }
  if (r->kind == FX_K_REFRESH && r->holds_refresh) {
    r->holds_refresh = 0;
    S->refreshing = 0;
    S->refresh_gen++;
    S->refresh_failed = err != 0;
    if (err != 0) fail_from_table(L, err, &S->refresh_fail);
  }
  lua_settop(L, top);
}

/* ---- methods ---------------------------------------------------------------------------------- */

/***
A copy of the client's tokens.
@function Client:tokens
@treturn table `access_token`, `refresh_token`, `expires_at` (epoch seconds, from `expires_in` and
  the local clock), `token_type`, `scope`: those the client holds
*/
static int oauth_tokens(lua_State *L)
{
  fx_oauth_push_tokens(L, fx_client_check(L, 1)->shared);
  return 1;
}

/* A token call: blocking outside a task, the call itself inside one (see client.c). */
static int run_token_call(lua_State *L)
{
  int idx = lua_gettop(L);
  if (fx_lua_drives(L, fx_client_check(L, 1))) return 1;
  return fx_drive_blocking(L, idx);
}

/* client:refresh() -> tokens | nil, err */
/***
Refreshes the access token now.
With a `token_store`, it refreshes with the newest refresh token in the store. A rotated refresh
token replaces the old one; `on_token` is told.
@function Client:refresh
@treturn[1] table tokens the new tokens
@return[2] nil, err (a `flextell.Error`: kind `auth`, code `reauth_required` when the refresh token
  is refused (expired, revoked or reused; the tokens are then cleared); kind `usage`, code
  `no_refresh_token` or `on_token_error`; kind `auth`, code `token_store_busy` or
  `token_store_error` with a store)
*/
static int oauth_refresh(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  lua_settop(L, 1);
  if (!fx_oauth_can_refresh(c->shared) && !(c->shared->has_store && c->shared->client_id)) {
    push_error(L, "usage", "no_refresh_token", "cannot refresh: the client has no refresh_token and client_id");
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  fx_oauth_refresh_call(L, 1)->forced = 1; /* asked for: spends the newest refresh token */
  return run_token_call(L);
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
/* The option k of the table at idx: NULL when absent; a raise when it is not a non-empty string
 * without NUL bytes (C would read such a string only up to its first NUL). */
static const char *opt_text(lua_State *L, int idx, const char *fname, const char *k)
{
  const char *s;
  size_t n;
  lua_getfield(L, idx, k);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: '%s' must be a string", fname, k);
  s = lua_tolstring(L, -1, &n);
  if (n == 0 || strlen(s) != n) luaL_error(L, "%s: '%s' must be a non-empty string without NUL bytes", fname, k);
  lua_pop(L, 1); /* the options table keeps it alive */
  return s;
}

/* Raises on a key of the options table at idx that is not in names (NULL-terminated). */
static void check_names(lua_State *L, int idx, const char *fname, const char *const *names)
{
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    const char *const *nm = names;
    while (k != NULL && *nm != NULL && strcmp(*nm, k) != 0) nm++;
    if (k == NULL || *nm == NULL) luaL_error(L, "%s: unknown option '%s'", fname, k ? k : "?");
    lua_pop(L, 1);
  }
}

/***
The consent URL to send the user to.
Keep `state` and `verifier` for `Client:exchange_code`.
@function Client:authorize_url
@tparam[opt] table opts `scope` (a string or a list), `state` (without it a random one is made,
  32 bytes from the kernel's CSPRNG), `redirect_uri`, `pkce` (`true`: a 64-character verifier is
  made and its S256 challenge sent)
@treturn string url the consent URL
@treturn string state the state sent
@treturn string|nil verifier the PKCE verifier, with `pkce = true`
*/
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
  static const char *const names[] = {"scope", "state", "redirect_uri", "pkce", NULL};
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  check_names(L, 2, "client:authorize_url", names);
  (void)opt_text(L, 2, "client:authorize_url", "state");
  (void)opt_text(L, 2, "client:authorize_url", "redirect_uri");
  if (S->client_id == NULL) luaL_error(L, "client:authorize_url: the client has no client_id");
  lua_getfield(L, 2, "scope"); /* 3 */
  if (lua_istable(L, 3)) {     /* a list of scopes */
    int i, n = (int)lua_rawlen(L, 3);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 3, i);
      if (lua_type(L, -1) != LUA_TSTRING || strlen(lua_tostring(L, -1)) != (size_t)lua_rawlen(L, -1))
        luaL_error(L, "client:authorize_url: scopes must be strings without NUL bytes");
      if (i > 1) luaL_addchar(&b, ' ');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    lua_replace(L, 3);
  } else if (!lua_isnil(L, 3) && (lua_type(L, 3) != LUA_TSTRING ||
                                   strlen(lua_tostring(L, 3)) != (size_t)lua_rawlen(L, 3))) {
    luaL_error(L, "client:authorize_url: 'scope' must be a string or a list of strings, without NUL bytes");
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

/* "scheme://...": a redirect URL, even one without a query (which then carries no code and no
 * state), never a code to send. */
static int looks_like_url(const char *s, size_t n)
{
  size_t i = 0;
  if (n == 0 || !isalpha((unsigned char)s[0])) return 0;
  while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-')) i++;
  return i + 2 < n && s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/';
}

/* client:exchange_code(code_or_redirect_url, { state=, code_verifier=, redirect_uri= }) */
/***
Exchanges an authorization code for tokens.
With the redirect URL and `state`, the state is checked before anything else in the redirect,
and nothing is sent when it differs. The exchange is never retried: a code is single use. With a
`token_store`, the new tokens are saved under the store's lock.
@function Client:exchange_code
@tparam string code_or_redirect_url the bare code, or the whole redirect URL
@tparam[opt] table opts `state`, `code_verifier` (the PKCE verifier), `redirect_uri`
@treturn[1] table tokens the new tokens
@return[2] nil, err (a `flextell.Error`: kind `auth`, code `state_mismatch` for a different or
  missing state, `missing_code` for a redirect without a code, or the OAuth error of an `error=`
  redirect such as `access_denied`; kind `usage`, code `on_token_error` when `on_token` raised)
*/
static int oauth_exchange_code(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_shared *S = c->shared;
  size_t n;
  const char *arg = luaL_checklstring(L, 2, &n), *code, *expected, *verifier, *redirect, *q;
  int params, form, is_url;
  if (lua_isnoneornil(L, 3)) {
    lua_settop(L, 2);
    lua_newtable(L);
  }
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  {
    static const char *const names[] = {"state", "code_verifier", "redirect_uri", NULL};
    check_names(L, 3, "client:exchange_code", names);
    (void)opt_text(L, 3, "client:exchange_code", "state");
    (void)opt_text(L, 3, "client:exchange_code", "code_verifier");
    (void)opt_text(L, 3, "client:exchange_code", "redirect_uri");
  }
  if (n == 0 || strlen(arg) != n)
    luaL_error(L, "client:exchange_code: the code must be a non-empty string without NUL bytes");
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
  is_url = q != NULL || looks_like_url(arg, n);
  if (q != NULL) { /* the whole redirect URL */
    const char *hash = memchr(q, '#', n - (size_t)(q - arg));
    parse_query(L, q + 1, (size_t)((hash ? hash : arg + n) - q - 1), params);
  } else if (!is_url) {
    lua_pushvalue(L, 2);
    lua_setfield(L, params, "code");
  }
  /* the state first (RFC 6749 10.12): a forged redirect is refused whatever else it says */
  if (expected != NULL && is_url) {
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
  token_call(L, 1, form, FX_K_EXCHANGE, 0);
  return run_token_call(L);
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

/* core.random_token(nbytes) -> base64url of nbytes (1-64) from the kernel's CSPRNG */
static int core_random_token(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 1 && n <= 64, 1, "1 to 64 bytes expected");
  random_token(L, (size_t)n);
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
  lua_pushcfunction(L, core_random_token);
  lua_setfield(L, -4, "random_token");
}
