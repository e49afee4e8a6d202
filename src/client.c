/* flextell.Client: options, lifecycle, and the call methods. A client owns a reference to the
 * shared state (tokens, the refresh in progress, the rate-limit window, the count of transfers
 * in flight); clients made with :with{} share it. A call method prepares and starts a call
 * (call.c), then drives it blocking (loop.c), or, in a task, hands it to the Lua driver. */

/***
The client's methods that are written in C: the calls, prepare, with, close, rate_limit, start.
@module flextell
*/

/***
@type Client
*/
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fx.h"
#include "json.h"

char *fx_strdup(const char *s)
{
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

double fx_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fx_wallclock(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the shared state --------------------------------------------------------------------- */

/* curl_global_init runs once per process, whichever thread (and lua_State) gets there first:
 * hosts run many states on many threads, and libcurl 7.88's global init is not thread-safe. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static unsigned long long seed_rng(void)
{
  unsigned long long v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = 0;
    close(fd);
  }
  if (v == 0) v = (unsigned long long)time(NULL) ^ (unsigned long long)(size_t)&v;
  return v | 1;
}

fx_shared *fx_shared_new(lua_State *L)
{
  fx_shared *S;
  if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_result != CURLE_OK)
    luaL_error(L, "flextell: libcurl could not be initialised (%s)", curl_easy_strerror(curl_init_result));
  S = (fx_shared *)calloc(1, sizeof *S);
  if (S == NULL) luaL_error(L, "not enough memory");
  S->refs = 1;
  S->rng = seed_rng();
  return S;
}

/* Overwrites a secret before freeing it, so it does not linger in freed memory. */
static void free_secret(char **p)
{
  if (*p != NULL) {
    volatile char *v = *p;
    while (*v) *v++ = 0;
    free(*p);
    *p = NULL;
  }
}

void fx_shared_release(fx_shared *S)
{
  if (--S->refs > 0) return;
  while (S->nspare > 0) free(S->spare[--S->nspare]);
  free_secret(&S->access_token);
  free_secret(&S->refresh_token);
  free_secret(&S->client_secret);
  free(S->token_type);
  free(S->scope);
  free(S->client_id);
  free(S->redirect_uri);
  free(S->token_url);
  free(S->authorize_url);
  free(S);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void client_release(fx_client *c)
{
  if (c->shared != NULL) {
    fx_shared *S = c->shared;
    c->shared = NULL;
    fx_shared_release(S);
  }
  free(c->base_url);
  free(c->prefix);
  free(c->user_agent);
  free(c->ca_file);
  free(c->ca_path);
  free(c->proxy);
  c->base_url = c->prefix = c->user_agent = c->ca_file = c->ca_path = c->proxy = NULL;
  curl_slist_free_all(c->headers);
  c->headers = NULL;
}

/* Creates a closed client (all NULL) with its metatable: safe to collect at any point. Its user
 * value is the hooks table (on_token, on_retry), shared with the clients made by :with{}: there
 * the collector sees a hook that refers back to its client, so the cycle is collected. */
static fx_client *client_push(lua_State *L, int hooks_from)
{
  fx_client *c = (fx_client *)fx_newuserdata(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, FX_CLIENT_MT);
  if (hooks_from != 0)
    fx_getuservalue(L, hooks_from);
  else
    lua_createtable(L, 0, 2);
  fx_setuservalue(L, -2);
  return c;
}

fx_client *fx_client_at(lua_State *L, int idx)
{
  return (fx_client *)luaL_checkudata(L, idx, FX_CLIENT_MT);
}

fx_client *fx_client_check(lua_State *L, int idx)
{
  fx_client *c = (fx_client *)luaL_checkudata(L, idx, FX_CLIENT_MT);
  if (c->shared == NULL) luaL_error(L, "attempt to use a closed client");
  return c;
}

static int client_gc(lua_State *L)
{
  client_release((fx_client *)luaL_checkudata(L, 1, FX_CLIENT_MT));
  return 0;
}

/* Later use raises; calls in flight end with usage/closed (their transfers are taken back). */
/***
Releases the client (also `__gc`, and `local c <close> = ...` on Lua 5.4).
Later use raises `attempt to use a closed client`. Calls in flight end with a `usage` error, code
`closed` (`maybe_sent = true` when the request was on the wire), except a token request on the
wire, which finishes. Clients made with `with{}` keep the shared connections.
@function Client:close
*/
static int client_close(lua_State *L)
{
  fx_client *c = (fx_client *)luaL_checkudata(L, 1, FX_CLIENT_MT);
  if (c->shared != NULL) {
    fx_shared *S = c->shared;
    c->shared = NULL; /* what the calls look at */
    fx_loop_close_client(L, c);
    c->shared = S;
  }
  client_release(c);
  return 0;
}

/***
`tostring(client)`: names the base URL and the tenant, never a token.
@function Client:__tostring
@treturn string
*/
static int client_tostring(lua_State *L)
{
  fx_client *c = (fx_client *)luaL_checkudata(L, 1, FX_CLIENT_MT);
  if (c->shared == NULL) {
    lua_pushfstring(L, "flextell.Client (closed): %p", (void *)c);
  } else if (c->has_tenant) {
    lua_pushfstring(L, "flextell.Client %s tenant %d: %p", c->base_url, (int)c->tenant,
                    (void *)c);
  } else {
    lua_pushfstring(L, "flextell.Client %s: %p", c->base_url, (void *)c);
  }
  return 1;
}

/* ---- options ------------------------------------------------------------------------------ */

enum { OPT_STR, OPT_NUM, OPT_INT, OPT_BOOL, OPT_TABLE, OPT_FUNC, OPT_TENANT, OPT_PROXY, OPT_STORE };

typedef struct opt_def {
  const char *name;
  int type;
  int derived; /* allowed in :with{} */
} opt_def;

static const opt_def client_options[] = {
  {"base_url", OPT_STR, 0},       {"prefix", OPT_STR, 1},
  {"token", OPT_STR, 0},          {"access_token", OPT_STR, 0},
  {"refresh_token", OPT_STR, 0},  {"expires_at", OPT_NUM, 0},
  {"client_id", OPT_STR, 0},      {"client_secret", OPT_STR, 0},
  {"redirect_uri", OPT_STR, 0},   {"token_url", OPT_STR, 0},
  {"authorize_url", OPT_STR, 0},  {"on_token", OPT_FUNC, 0},
  {"refresh_margin", OPT_NUM, 0}, {"tenant", OPT_TENANT, 1},
  {"on_retry", OPT_FUNC, 0},      {"pace", OPT_BOOL, 1},
  {"stall_timeout", OPT_NUM, 1},
  {"timeout", OPT_NUM, 1},        {"connect_timeout", OPT_NUM, 1},
  {"deadline", OPT_NUM, 1},       {"max_retries", OPT_INT, 1},
  {"headers", OPT_TABLE, 1},      {"user_agent", OPT_STR, 1},
  {"ca_file", OPT_STR, 0},        {"ca_path", OPT_STR, 0},
  {"proxy", OPT_PROXY, 0},        {"max_response_bytes", OPT_INT, 0},
  {"allow_http", OPT_BOOL, 0},    {"write_max_idle", OPT_INT, 1},
  {"max_concurrency", OPT_INT, 0}, {"token_store", OPT_STORE, 0},
  {"transport", OPT_STR, 1},
  {NULL, 0, 0}
};

static const char *const type_names[] = {"a string", "a number", "an integer", "a boolean",
                                         "a table", "a function", "an integer or false",
                                         "a URL string or false",
                                         "a token store (load, save and lock methods)"};

/* Raises on an unknown option or a value of the wrong type: these are programmer errors. */
static void check_options(lua_State *L, int idx, const char *fname, int derived)
{
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const opt_def *o;
    int t = lua_type(L, -1), ok;
    const char *k;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "%s: option names must be strings", fname);
    k = lua_tostring(L, -2);
    for (o = client_options; o->name != NULL; o++)
      if (strcmp(o->name, k) == 0) break;
    if (o->name == NULL || (derived && !o->derived))
      luaL_error(L, "%s: unknown option '%s'", fname, k);
    switch (o->type) {
    case OPT_STR: ok = t == LUA_TSTRING; break;
    case OPT_NUM: ok = t == LUA_TNUMBER; break;
    case OPT_INT: ok = t == LUA_TNUMBER && fx_isinteger(L, -1); break;
    case OPT_BOOL: ok = t == LUA_TBOOLEAN; break;
    case OPT_TABLE: ok = t == LUA_TTABLE; break;
    case OPT_FUNC: ok = t == LUA_TFUNCTION; break;
    case OPT_PROXY: ok = t == LUA_TSTRING || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)); break;
    case OPT_STORE: {
      static const char *const needs[] = {"load", "save", "lock"};
      int i;
      ok = t == LUA_TTABLE || t == LUA_TUSERDATA;
      for (i = 0; ok && i < 3; i++) {
        lua_getfield(L, -1, needs[i]);
        ok = lua_type(L, -1) == LUA_TFUNCTION;
        if (!ok && !lua_isnil(L, -1) && luaL_getmetafield(L, -1, "__call")) { /* a callable object */
          ok = 1;
          lua_pop(L, 1);
        }
        lua_pop(L, 1);
      }
      break;
    }
    default: /* OPT_TENANT */
      ok = (t == LUA_TNUMBER && fx_isinteger(L, -1)) || (t == LUA_TBOOLEAN && !lua_toboolean(L, -1));
      break;
    }
    if (!ok)
      luaL_error(L, "%s: option '%s' must be %s, got %s", fname, k, type_names[o->type],
                 luaL_typename(L, -1));
    /* C sees a string up to its first NUL byte: "http://a\0b" would quietly be "http://a" */
    if (t == LUA_TSTRING && strlen(lua_tostring(L, -1)) != (size_t)lua_rawlen(L, -1))
      luaL_error(L, "%s: option '%s' must not contain a NUL byte", fname, k);
    lua_pop(L, 1);
  }
}

static const char *opt_str(lua_State *L, int idx, const char *k)
{
  const char *s;
  lua_getfield(L, idx, k);
  s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the options table keeps the string alive */
  return s;
}

static int opt_num(lua_State *L, int idx, const char *k, double *out)
{
  int found;
  lua_getfield(L, idx, k);
  found = lua_type(L, -1) == LUA_TNUMBER;
  if (found) *out = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return found;
}

static char *dup_or_raise(lua_State *L, const char *s)
{
  char *p;
  if (s == NULL) return NULL;
  p = fx_strdup(s);
  if (p == NULL) luaL_error(L, "not enough memory");
  return p;
}

/* Secrets and tokens go into header lines and form bodies: refuse anything that could break
 * out of them. The value itself is never echoed. */
int fx_token_chars_ok(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return 0;
  return 1;
}

static void set_secret(lua_State *L, int idx, const char *fname, const char *k, char **dst)
{
  const char *s = opt_str(L, idx, k);
  size_t n;
  if (s == NULL) return;
  lua_getfield(L, idx, k);
  n = (size_t)lua_rawlen(L, -1);
  lua_pop(L, 1);
  if (*s == '\0' || !fx_token_chars_ok(s) || strlen(s) != n)
    luaL_error(L, "%s: option '%s' must be non-empty printable ASCII without spaces", fname, k);
  free(*dst);
  *dst = dup_or_raise(L, s);
}

static void apply_timeouts(lua_State *L, int idx, const char *fname, fx_client *c)
{
  double v;
  if (opt_num(L, idx, "timeout", &v)) {
    if (!(v > 0)) luaL_error(L, "%s: option 'timeout' must be > 0", fname);
    c->timeout = v;
  }
  if (opt_num(L, idx, "connect_timeout", &v)) {
    if (!(v > 0)) luaL_error(L, "%s: option 'connect_timeout' must be > 0", fname);
    c->connect_timeout = v;
  }
  if (opt_num(L, idx, "deadline", &v)) {
    if (!(v > 0)) luaL_error(L, "%s: option 'deadline' must be > 0", fname);
    c->deadline = v;
  }
  if (opt_num(L, idx, "stall_timeout", &v)) {
    if (!(v >= 1)) luaL_error(L, "%s: option 'stall_timeout' must be >= 1", fname);
    c->stall_timeout = v;
  }
  lua_getfield(L, idx, "pace");
  if (lua_type(L, -1) == LUA_TBOOLEAN) c->pace = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "max_retries");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = fx_tointeger(L, -1);
    if (n < 0 || n > 10) luaL_error(L, "%s: option 'max_retries' must be 0..10", fname);
    c->max_retries = (int)n;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "write_max_idle");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = fx_tointeger(L, -1);
    if (n < 0 || n > 3600) luaL_error(L, "%s: option 'write_max_idle' must be 0..3600", fname);
    c->write_max_idle = (int)n;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "transport");
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *t = lua_tostring(L, -1);
    if (strcmp(t, "curl") != 0 && strcmp(t, "auto") != 0)
      luaL_error(L, "%s: option 'transport' must be \"curl\" or \"auto\"", fname);
    c->transport_curl = strcmp(t, "curl") == 0;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "tenant");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    lua_Integer t = fx_tointeger(L, -1);
    if (t < 0) luaL_error(L, "%s: option 'tenant' must be a non-negative integer", fname);
    c->tenant = (long long)t;
    c->has_tenant = 1;
  } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
    c->has_tenant = 0;
  }
  lua_pop(L, 1);
}

static void apply_prefix(lua_State *L, int idx, const char *fname, fx_client *c)
{
  const char *p = opt_str(L, idx, "prefix");
  size_t n;
  if (p == NULL) return;
  while (*p == '/') p++;
  n = strlen(p);
  while (n > 0 && p[n - 1] == '/') n--;
  free(c->prefix);
  c->prefix = NULL;
  if (n == 0) return;
  if (strcspn(p, "?#% \t\r\n") < n) luaL_error(L, "%s: option 'prefix' must be a plain path", fname);
  lua_pushlstring(L, p, n);
  c->prefix = dup_or_raise(L, lua_tostring(L, -1));
  lua_pop(L, 1);
}

static void apply_headers(lua_State *L, int idx, const char *fname, fx_client *c)
{
  char msg[200];
  lua_getfield(L, idx, "headers");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (fx_headers_from_table(L, lua_gettop(L), &c->headers, msg, sizeof msg) != 0)
    luaL_error(L, "%s: option 'headers': %s", fname, msg);
  lua_pop(L, 1);
}

int fx_host_is_loopback(const char *host)
{
  if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
    return 1;
  if (strncmp(host, "127.", 4) == 0) {
    const char *p = host + 4;
    for (; *p; p++)
      if (!isdigit((unsigned char)*p) && *p != '.') return 0;
    return 1;
  }
  return 0;
}

/* Checks an absolute http(s) URL; http only to loopback unless allowed. Raises. */
static void check_url(lua_State *L, const char *fname, const char *k, const char *url, int allow_http)
{
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *user = NULL;
  const char *problem = NULL;
  CURLUcode rc, urc = CURLUE_NO_USER;
  if (u == NULL) luaL_error(L, "not enough memory");
  rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
  if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
  if (rc == CURLUE_OK) urc = curl_url_get(u, CURLUPART_USER, &user, 0);
  if (urc == CURLUE_OUT_OF_MEMORY) rc = urc;
  if (rc == CURLUE_OUT_OF_MEMORY) {
    problem = "";
  } else if (rc != CURLUE_OK) {
    problem = "is not a valid absolute URL";
  } else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    problem = "must be an https:// URL";
  } else if (strcmp(scheme, "http") == 0 && !allow_http && !fx_host_is_loopback(host)) {
    problem = "uses http:// to a host that is not loopback (set allow_http = true to allow it)";
  } else if (strchr(url, '?') != NULL || strchr(url, '#') != NULL) {
    problem = "must not have a query or fragment";
  } else if (urc == CURLUE_OK) {
    /* libcurl would send them as Basic credentials, and the client would show them in
     * tostring(client), errors and to_curl; the API authenticates with OAuth tokens */
    problem = "must not carry credentials (user:password@)";
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(user);
  curl_url_cleanup(u);
  if (problem != NULL && *problem == '\0') luaL_error(L, "not enough memory");
  if (problem != NULL) luaL_error(L, "%s: option '%s' %s", fname, k, problem);
}

/* True when the URL's host is loopback (127.0.0.0/8, ::1, localhost). Raises when memory runs
 * out: a wrong answer would send a loopback token through an environment proxy. */
int fx_url_is_loopback(lua_State *L, const char *url)
{
  CURLU *u = curl_url();
  char *host = NULL;
  CURLUcode rc;
  int yes = 0;
  if (u == NULL) luaL_error(L, "not enough memory");
  rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc == CURLUE_OK) rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
  if (rc == CURLUE_OK) yes = fx_host_is_loopback(host);
  curl_free(host);
  curl_url_cleanup(u);
  if (rc == CURLUE_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
  return yes;
}

/* A proxy URL libcurl can use: http, https, socks4(a), socks5(h). Raises. */
static void check_proxy(lua_State *L, const char *fname, const char *url)
{
  static const char *const schemes[] = {"http://", "https://", "socks4://", "socks4a://",
                                        "socks5://", "socks5h://", NULL};
  int i;
  for (i = 0; schemes[i] != NULL; i++)
    if (strncmp(url, schemes[i], strlen(schemes[i])) == 0 && url[strlen(schemes[i])] != '\0') return;
  luaL_error(L, "%s: option 'proxy' must be a proxy URL (http://, https://, socks4://, socks4a://, "
             "socks5:// or socks5h://) or false", fname);
}

/* Trust files are read at the first TLS handshake; a wrong path is found here instead, with the
 * reason, rather than as a tls_error without one at the first call. Raises. */
static void check_trust(lua_State *L, const char *fname, const char *ca_file, const char *ca_path)
{
  if (ca_file != NULL) {
    FILE *fp = fopen(ca_file, "rb");
    int ch, e;
    if (fp == NULL)
      luaL_error(L, "%s: option 'ca_file': cannot read '%s': %s", fname, ca_file, strerror(errno));
    ch = fgetc(fp); /* a directory opens, then fails to read */
    e = ferror(fp) ? errno : 0;
    fclose(fp);
    if (e != 0) luaL_error(L, "%s: option 'ca_file': cannot read '%s': %s", fname, ca_file, strerror(e));
    if (ch == EOF) luaL_error(L, "%s: option 'ca_file': '%s' is empty", fname, ca_file);
  }
  if (ca_path != NULL) {
    DIR *d = opendir(ca_path);
    if (d == NULL)
      luaL_error(L, "%s: option 'ca_path': cannot open directory '%s': %s", fname, ca_path,
                 strerror(errno));
    closedir(d);
  }
}

static char *origin_join(lua_State *L, const char *base, const char *path)
{
  /* "https://host:port/api" + "/oauth/token" -> "https://host:port/oauth/token" */
  const char *p = strstr(base, "://");
  size_t n;
  p = p ? strchr(p + 3, '/') : NULL;
  n = p ? (size_t)(p - base) : strlen(base);
  lua_pushlstring(L, base, n);
  lua_pushstring(L, path);
  lua_concat(L, 2);
  {
    char *s = dup_or_raise(L, lua_tostring(L, -1));
    lua_pop(L, 1);
    return s;
  }
}

static void build_user_agent(lua_State *L, const char *fname, fx_client *c, const char *user)
{
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  const char *lv = LUA_VERSION; /* "Lua 5.4" */
  const char *sp = strchr(lv, ' ');
  if (user != NULL && !fx_header_valid("User-Agent", 10, user, strlen(user)))
    luaL_error(L, "%s: option 'user_agent' must not contain control characters (CR, LF...)", fname);
  if (user != NULL && *user != '\0')
    lua_pushfstring(L, "%s lua-flextell/%s libcurl/%s Lua/%s", user, FX_VERSION, v->version,
                    sp ? sp + 1 : lv);
  else
    lua_pushfstring(L, "lua-flextell/%s libcurl/%s Lua/%s", FX_VERSION, v->version, sp ? sp + 1 : lv);
  free(c->user_agent);
  c->user_agent = dup_or_raise(L, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* flextell.new(opts) */
static int client_new(lua_State *L)
{
  const char *fname = "flextell.new";
  fx_client *c;
  fx_shared *S;
  const char *s;
  int allow_http;
  double v;

  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  check_options(L, 1, fname, 0);
  lua_getfield(L, 1, "allow_http");
  allow_http = lua_toboolean(L, -1);
  lua_pop(L, 1);

  c = client_push(L, 0);
  c->max_concurrency = 16;
  c->timeout = 30;
  c->write_max_idle = 2;
  c->connect_timeout = 10;
  c->stall_timeout = 30;
  c->max_retries = 2;
  c->max_response_bytes = 64LL * 1024 * 1024;
  c->allow_http = allow_http;

  s = opt_str(L, 1, "base_url");
  if (s == NULL) s = FX_DEFAULT_BASE_URL;
  check_url(L, fname, "base_url", s, allow_http);
  c->base_url = dup_or_raise(L, s);
  {
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/') c->base_url[--n] = '\0';
  }
  apply_prefix(L, 1, fname, c);
  apply_timeouts(L, 1, fname, c);
  apply_headers(L, 1, fname, c);
  build_user_agent(L, fname, c, opt_str(L, 1, "user_agent"));
  check_trust(L, fname, opt_str(L, 1, "ca_file"), opt_str(L, 1, "ca_path"));
  c->ca_file = dup_or_raise(L, opt_str(L, 1, "ca_file"));
  c->ca_path = dup_or_raise(L, opt_str(L, 1, "ca_path"));
  lua_getfield(L, 1, "proxy");
  if (lua_type(L, -1) == LUA_TSTRING) {
    check_proxy(L, fname, lua_tostring(L, -1));
    c->proxy = dup_or_raise(L, lua_tostring(L, -1));
  } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
    c->proxy_off = 1;
  }
  lua_pop(L, 1);
  c->base_loopback = fx_url_is_loopback(L, c->base_url);
  lua_getfield(L, 1, "max_response_bytes");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = fx_tointeger(L, -1);
    if (n <= 0) luaL_error(L, "%s: option 'max_response_bytes' must be > 0", fname);
    c->max_response_bytes = (long long)n;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "max_concurrency");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = fx_tointeger(L, -1);
    if (n < 1 || n > 1000) luaL_error(L, "%s: option 'max_concurrency' must be 1..1000", fname);
    c->max_concurrency = (int)n;
  }
  lua_pop(L, 1);

  S = fx_shared_new(L);
  c->shared = S;
  S->refresh_margin = 60;
  if (opt_str(L, 1, "token") != NULL && opt_str(L, 1, "access_token") != NULL)
    luaL_error(L, "%s: give either 'token' or 'access_token', not both", fname);
  set_secret(L, 1, fname, "token", &S->access_token);
  set_secret(L, 1, fname, "access_token", &S->access_token);
  set_secret(L, 1, fname, "refresh_token", &S->refresh_token);
  set_secret(L, 1, fname, "client_id", &S->client_id);
  set_secret(L, 1, fname, "client_secret", &S->client_secret);
  if (opt_num(L, 1, "expires_at", &v)) S->expires_at = v;
  if (opt_num(L, 1, "refresh_margin", &v)) {
    if (!(v >= 0)) luaL_error(L, "%s: option 'refresh_margin' must be >= 0", fname);
    S->refresh_margin = v;
  }
  S->token_type = dup_or_raise(L, "Bearer");
  s = opt_str(L, 1, "redirect_uri");
  if (s != NULL) S->redirect_uri = dup_or_raise(L, s);
  s = opt_str(L, 1, "token_url");
  if (s != NULL) check_url(L, fname, "token_url", s, allow_http);
  S->token_url = s ? dup_or_raise(L, s) : origin_join(L, c->base_url, "/oauth/token");
  S->token_url_loopback = fx_url_is_loopback(L, S->token_url);
  s = opt_str(L, 1, "authorize_url");
  if (s != NULL) check_url(L, fname, "authorize_url", s, 1);
  S->authorize_url = s ? dup_or_raise(L, s) : origin_join(L, c->base_url, "/oauth/authorize");
  fx_getuservalue(L, -1); /* the hooks table */
  lua_getfield(L, 1, "on_token");
  lua_setfield(L, -2, "on_token");
  lua_getfield(L, 1, "on_retry");
  lua_setfield(L, -2, "on_retry");
  lua_getfield(L, 1, "token_store");
  S->has_store = !lua_isnil(L, -1);
  if (S->has_store) { /* a store that holds the rate-limit window too: pacing across its holders */
    lua_getfield(L, -1, "rate_reserve");
    S->store_rate = lua_type(L, -1) == LUA_TFUNCTION;
    lua_pop(L, 1);
  }
  lua_setfield(L, -2, "token_store");
  lua_pop(L, 1);
  return 1;
}

/* core.store_loaded(client, tokens|nil, version): what the token store held when the client was
 * made (flextell.new loads it, in Lua, so a store may yield there). Its tokens replace any given
 * in the options; the version is the one a save compares against. */
static int core_store_loaded(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  int rc = 0;
  luaL_checktype(L, 3, LUA_TNUMBER);
  if (lua_istable(L, 2) && (rc = fx_oauth_adopt(L, c->shared, 2)) < 0) {
    fx_fail f;
    fx_fail_set(&f, "auth", "token_store_error", "%s", fx_oauth_adopt_problem(rc));
    return fx_error_return(L, &f, NULL);
  }
  fx_getuservalue(L, 1);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "token_store_version");
  lua_pushboolean(L, 1);
  return 1;
}

/* client:with{ tenant = 7, headers = {...}, timeout = 5, ... } */
/***
A derived client with some options changed.
It shares the connections and the tokens of this client (a refresh through one is seen by all),
and its hooks.
@function Client:with
@tparam table opts `tenant` (a number, or `false` to remove the tenant), `headers`, `timeout`,
  `connect_timeout`, `deadline` (seconds), `max_retries`, `prefix`, `user_agent`, `pace`,
  `stall_timeout` (seconds), `write_max_idle` (seconds, 0 to 3600), `transport`
@treturn Client the derived client
@raise on an unknown option or a value of the wrong type
@usage local t7 = client:with { tenant = 7 } -- sends X-Tenant: 7
*/
static int client_with(lua_State *L)
{
  fx_client *p = fx_client_check(L, 1), *c;
  struct curl_slist *h;
  check_options(L, 2, "client:with", 1);
  c = client_push(L, 1);
  c->base_url = dup_or_raise(L, p->base_url);
  c->prefix = dup_or_raise(L, p->prefix);
  c->ca_file = dup_or_raise(L, p->ca_file);
  c->ca_path = dup_or_raise(L, p->ca_path);
  c->proxy = dup_or_raise(L, p->proxy);
  c->proxy_off = p->proxy_off;
  c->base_loopback = p->base_loopback;
  c->write_max_idle = p->write_max_idle;
  c->transport_curl = p->transport_curl;
  c->max_concurrency = p->max_concurrency;
  c->user_agent = dup_or_raise(L, p->user_agent);
  c->tenant = p->tenant;
  c->has_tenant = p->has_tenant;
  c->allow_http = p->allow_http;
  c->max_retries = p->max_retries;
  c->timeout = p->timeout;
  c->connect_timeout = p->connect_timeout;
  c->deadline = p->deadline;
  c->stall_timeout = p->stall_timeout;
  c->pace = p->pace;
  c->max_response_bytes = p->max_response_bytes;
  for (h = p->headers; h != NULL; h = h->next) {
    struct curl_slist *next = curl_slist_append(c->headers, h->data);
    if (next == NULL) luaL_error(L, "not enough memory");
    c->headers = next;
  }
  apply_prefix(L, 2, "client:with", c);
  apply_timeouts(L, 2, "client:with", c);
  apply_headers(L, 2, "client:with", c);
  if (opt_str(L, 2, "user_agent") != NULL)
    build_user_agent(L, "client:with", c, opt_str(L, 2, "user_agent"));
  c->shared = p->shared;
  c->shared->refs++;
  return 1;
}

/* ---- calls -------------------------------------------------------------------------------- */

/* Is this coroutine a task (lua/flextell/tasks.lua)? There a call is handed to the Lua driver,
 * which yields while it is in flight; everywhere else the call is driven here, blocking. */
int fx_in_task(lua_State *L)
{
  int yes;
  lua_getfield(L, LUA_REGISTRYINDEX, FX_TASKS_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushthread(L);
  lua_rawget(L, -2);
  yes = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return yes;
}

/* Does a Lua driver take this client's calls: inside a task, or everywhere once a Lua driver has
 * said it takes every call (the nginx driver: core.set_lua_driver), unless the client asked for
 * libcurl (transport = "curl")? */
int fx_lua_drives(lua_State *L, const fx_client *c)
{
  int all;
  if (fx_in_task(L)) return 1;
  if (c->transport_curl) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, FX_LUA_DRIVER_KEY);
  all = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return all;
}

/* core.set_lua_driver(on) */
static int core_set_lua_driver(lua_State *L)
{
  lua_pushboolean(L, lua_toboolean(L, 1));
  lua_setfield(L, LUA_REGISTRYINDEX, FX_LUA_DRIVER_KEY);
  return 0;
}

/* Prepares and starts a call of the client at 1; pushes it. 0, or -1 with nil, err pushed. */
static int start_call(lua_State *L, fx_spec *s, int *idx)
{
  fx_client *c = fx_client_check(L, 1);
  fx_fail f;
  fx_call *r = fx_call_new(L, 1, FX_K_API);
  *idx = lua_gettop(L);
  if (s->multipart != 0) { /* the parts as given, for drivers that build the body themselves */
    fx_getuservalue(L, *idx);
    lua_pushvalue(L, s->multipart);
    lua_setfield(L, -2, "multipart");
    lua_pop(L, 1);
  }
  if (fx_prepare(L, c, s, r, &f) != 0) {
    fx_error_return(L, &f, r);
    return -1;
  }
  fx_call_start(r);
  return 0;
}

/* A call: blocking outside a task; inside one, the call itself for the Lua driver. */
static int client_call(lua_State *L, fx_spec *s)
{
  int idx;
  if (start_call(L, s, &idx) != 0) return 2;
  if (fx_lua_drives(L, fx_client_check(L, 1))) {
    lua_pushvalue(L, idx);
    return 1;
  }
  return fx_drive_blocking(L, idx);
}

/* Per-call options of get/post/...: query (delete only), headers, tenant, timeouts. */
static void read_call_opts(lua_State *L, int idx, fx_spec *s, int allow_query)
{
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    if (allow_query && strcmp(k, "body") == 0) /* delete: the only one that takes a query here */
      luaL_error(L, "bad per-call option 'body' (client:delete sends no body; use "
                    "client:request{ method = \"DELETE\", path = ..., body = ... })");
    if (strcmp(k, "method") == 0 || strcmp(k, "path") == 0 || strcmp(k, "body") == 0 ||
        (!allow_query && strcmp(k, "query") == 0))
      luaL_error(L, "bad per-call option '%s' (pass it as an argument)", k);
    lua_pop(L, 1);
  }
  fx_spec_from_table(L, idx, s);
}

static int call_with_body(lua_State *L, const char *method)
{
  (void)fx_client_check(L, 1);
  fx_spec s;
  fx_spec_init(&s);
  s.method = method;
  s.path = luaL_checklstring(L, 2, &s.path_len);
  if (!lua_isnoneornil(L, 3)) s.body = 3;
  read_call_opts(L, 4, &s, 1);
  return client_call(L, &s);
}

/***
GET path.
`path` is a path under the base URL (`/v1/customers/7`); a full URL is refused, so the token only
goes to the base URL's host. The call is retried (at most `max_retries` times) on 429, 500, 502,
503, 504, network failures and timeouts.
@function Client:get
@tparam string path the path under the base URL
@tparam[opt] table query the query: keys sent sorted, lists repeat the key, booleans as
  `true`/`false`, `flextell.null` leaves the key out
@tparam[opt] table opts per-call options: `headers` (`Name = false` leaves a header out), `tenant`
  (a number, or `false`), `timeout` and `deadline` (seconds), `max_retries`, `raw_body`
@treturn[1] table|true data the envelope's `data`, or the whole decoded body when it has none, or
  `true` for an empty 2xx body
@treturn[1] table meta always a table; for lists the API's `meta` with `style`, `has_more`,
  `cursor`, `total` (and for page style `current_page`, `last_page`, `per_page`, `next_page`)
@treturn[1] table res `status`, `headers` (lower-case names), `rate_limit`, `request_id`,
  `attempts`, `elapsed` (seconds), `method`, `url`, and `body` with `raw_body = true`
@return[2] nil, err (a `flextell.Error`; a nested or empty query table is kind `usage`, code
  `invalid_query`, and nothing is sent)
@raise on a wrong argument type, an unknown option, a closed client
*/
static int client_get(lua_State *L)
{
  (void)fx_client_check(L, 1);
  fx_spec s;
  fx_spec_init(&s);
  s.method = "GET";
  s.path = luaL_checklstring(L, 2, &s.path_len);
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    s.query = 3;
  }
  read_call_opts(L, 4, &s, 0);
  return client_call(L, &s);
}

/***
DELETE path.
@function Client:delete
@tparam string path the path under the base URL
@tparam[opt] table opts the per-call options of `Client:get`, and `query`
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`)
@raise on a wrong argument type, an unknown option, a closed client
*/
static int client_delete(lua_State *L)
{
  (void)fx_client_check(L, 1);
  fx_spec s;
  fx_spec_init(&s);
  s.method = "DELETE";
  s.path = luaL_checklstring(L, 2, &s.path_len);
  read_call_opts(L, 3, &s, 1);
  return client_call(L, &s);
}

/***
POST path with a body.
A POST goes on the wire at most once, unless the library knows the earlier attempt was not
processed (a 429 or 503 answer, a 401, or a failure before any byte of the request was written).
@function Client:post
@tparam string path the path under the base URL
@tparam[opt] table|string body a table is sent as JSON (`Content-Type: application/json`), a
  string as it is
@tparam[opt] table opts the per-call options of `Client:get`
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`; a table that is not valid JSON, such as one holding NaN, is
  kind `usage`, code `invalid_body`, and nothing is sent)
@raise on a wrong argument type, an unknown option, a closed client
*/
static int client_post(lua_State *L) { return call_with_body(L, "POST"); }
/***
PUT path with a body.
@function Client:put
@tparam string path the path under the base URL
@tparam[opt] table|string body as for `Client:post`
@tparam[opt] table opts the per-call options of `Client:get`
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`; kind `usage`, code `invalid_body` for a body that is not
  valid JSON)
@raise on a wrong argument type, an unknown option, a closed client
*/
static int client_put(lua_State *L) { return call_with_body(L, "PUT"); }
/***
PATCH path with a body.
Like POST, a PATCH goes on the wire at most once unless the earlier attempt is known not to
have been processed.
@function Client:patch
@tparam string path the path under the base URL
@tparam[opt] table|string body as for `Client:post`
@tparam[opt] table opts the per-call options of `Client:get`
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`; kind `usage`, code `invalid_body` for a body that is not
  valid JSON)
@raise on a wrong argument type, an unknown option, a closed client
*/
static int client_patch(lua_State *L) { return call_with_body(L, "PATCH"); }

/***
Any call, described by one table.
@function Client:request
@tparam table request `method` (default `"GET"`), `path` (required), `query`, `body`, `form`
  (sent as `application/x-www-form-urlencoded`), `multipart` (sent as `multipart/form-data`:
  each part a string, or `{ path = "a.png", filename =, content_type = }` or `{ data = "..." }`),
  `headers`, `tenant`, `timeout`, `deadline` (seconds), `max_retries`, `raw_body`
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`; bad input found before sending is kind `usage`, such as
  `invalid_body`, `invalid_query`, `invalid_header`, `file_unreadable`)
@raise without `path`, on a wrong argument type, an unknown option, a closed client
*/
static int client_request(lua_State *L)
{
  (void)fx_client_check(L, 1);
  fx_spec s;
  luaL_checktype(L, 2, LUA_TTABLE);
  fx_spec_init(&s);
  fx_spec_from_table(L, 2, &s);
  if (s.method == NULL) s.method = "GET";
  if (s.path == NULL) luaL_error(L, "client:request: 'path' is required");
  return client_call(L, &s);
}

/* client:start(request) -> call: the call object for a driver of one's own (see call.c); it is
 * not sent until the driver asks call:next(). Raises like request{}; nil, err for bad input. */
/***
The call object for a request, not sent yet, for a driver of your own.
The driver asks `call:next()` what to do until the call is done (see Class Call).
@function Client:start
@tparam table request as for `Client:request`
@treturn[1] Call the call
@return[2] nil, err (a `flextell.Error`) for bad input
@raise like `Client:request`
*/
static int client_start(lua_State *L)
{
  fx_spec s;
  int idx;
  (void)fx_client_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  fx_spec_init(&s);
  fx_spec_from_table(L, 2, &s);
  if (s.method == NULL) s.method = "GET";
  if (s.path == NULL) luaL_error(L, "client:start: 'path' is required");
  if (start_call(L, &s, &idx) != 0) return 2;
  lua_pushvalue(L, idx);
  return 1;
}

/* Pushes a proxy URL with its user:password replaced by <redacted> unless reveal. */
static void push_proxy(lua_State *L, const char *proxy, int reveal)
{
  const char *scheme = strstr(proxy, "://"), *host = scheme ? scheme + 3 : proxy;
  const char *at = strchr(host, '@');
  if (reveal || at == NULL || (strchr(host, '/') != NULL && strchr(host, '/') < at)) {
    lua_pushstring(L, proxy);
    return;
  }
  lua_pushlstring(L, proxy, (size_t)(host - proxy));
  lua_pushfstring(L, "<redacted>%s", at);
  lua_concat(L, 2);
}

/* client:prepare(req) -> { method, url, headers = {"Name: value", ...}, body } without sending:
 * the same bytes the call would send (the token redacted unless req.reveal_token). */
/***
What a request would send, without sending it.
The token and a proxy's credentials are `<redacted>` unless `reveal_token = true`.
@function Client:prepare
@tparam table request as for `Client:request`, and `reveal_token`
@treturn[1] table `{ method, url, headers = { "Name: value", ... }, dropped = { "Name", ... },
  body, ca_file, ca_path, proxy, no_proxy }`: `dropped` names the headers left out that libcurl
  would otherwise add, `proxy` is an explicit proxy, `no_proxy = true` when no proxy at all is used
@return[2] nil, err (a `flextell.Error`) for input the call would refuse
@raise without `path`, on a wrong argument type, an unknown option, a closed client
*/
static int client_prepare(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_spec s;
  fx_fail f;
  fx_call *r;
  struct curl_slist *h;
  int i = 1, dropped = 1;
  luaL_checktype(L, 2, LUA_TTABLE);
  fx_spec_init(&s);
  fx_spec_from_table(L, 2, &s);
  if (s.method == NULL) s.method = "GET";
  if (s.path == NULL) luaL_error(L, "client:prepare: 'path' is required");
  r = fx_call_new(L, 1, FX_K_API);
  if (fx_prepare(L, c, &s, r, &f) != 0) return fx_error_return(L, &f, r);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "url");
  lua_newtable(L); /* headers, as sent */
  lua_newtable(L); /* dropped: names of headers left out that libcurl would add itself */
  for (h = r->headers; h != NULL; h = h->next) {
    size_t nlen = strcspn(h->data, ":;");
    if (h->data[nlen] == ':' && h->data[nlen + 1] == '\0') { /* "Name:" */
      lua_pushlstring(L, h->data, nlen);
      lua_rawseti(L, -2, dropped++);
      continue;
    }
    if (!s.reveal_token && strncmp(h->data, "Authorization:", 14) == 0) {
      lua_pushstring(L, "Authorization: Bearer <redacted>");
    } else if (h->data[nlen] == ';') { /* "Name;" is an empty header */
      lua_pushlstring(L, h->data, nlen);
      lua_pushliteral(L, ":");
      lua_concat(L, 2);
    } else {
      lua_pushstring(L, h->data);
    }
    lua_rawseti(L, -3, i++);
  }
  lua_setfield(L, -3, "dropped");
  lua_setfield(L, -2, "headers");
  if (r->proxy != NULL) {
    push_proxy(L, r->proxy, s.reveal_token);
    lua_setfield(L, -2, "proxy");
  } else if (r->direct) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "no_proxy");
  }
  if (r->ca_file != NULL) {
    lua_pushstring(L, r->ca_file);
    lua_setfield(L, -2, "ca_file");
  }
  if (r->ca_path != NULL) {
    lua_pushstring(L, r->ca_path);
    lua_setfield(L, -2, "ca_path");
  }
  if (r->has_body) {
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
  }
  return 1;
}

/***
The last `X-RateLimit-*` values seen.
@function Client:rate_limit
@treturn[1] table `{ limit, remaining, reset }`
@treturn[2] nil before any were seen
*/
static int client_rate_limit(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_window *w = &c->shared->window;
  if (!w->known) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)w->limit);
  lua_setfield(L, -2, "limit");
  lua_pushinteger(L, (lua_Integer)w->remaining);
  lua_setfield(L, -2, "remaining");
  lua_pushinteger(L, (lua_Integer)w->reset);
  lua_setfield(L, -2, "reset");
  return 1;
}

/* Percent-encodes one path segment (an id): everything but RFC 3986 unreserved characters. */
static int core_escape(lua_State *L)
{
  size_t n;
  const char *s;
  fx_buf *b;
  if (lua_type(L, 1) == LUA_TNUMBER && fx_isinteger(L, 1)) {
    lua_pushfstring(L, "%s", lua_tostring(L, 1));
    return 1;
  }
  s = luaL_checklstring(L, 1, &n);
  b = fx_buf_push(L);
  if (fx_url_escape(b, s, n, 0) != 0) luaL_error(L, "not enough memory");
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  return 1;
}

static const luaL_Reg client_methods[] = {
  {"request", client_request}, {"get", client_get},         {"post", client_post},
  {"put", client_put},         {"patch", client_patch},     {"delete", client_delete},
  {"prepare", client_prepare}, {"with", client_with},       {"close", client_close},
  {"rate_limit", client_rate_limit}, {"start", client_start}, {NULL, NULL}
};

static const luaL_Reg client_metamethods[] = {
  {"__gc", client_gc}, {"__close", client_close}, {"__tostring", client_tostring}, {NULL, NULL}
};

void flextell_client_open(lua_State *L)
{
  luaL_newmetatable(L, FX_CLIENT_MT);
  luaL_setfuncs(L, client_metamethods, 0);
  luaL_newlib(L, client_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  flextell_oauth_open(L);
  lua_setfield(L, -3, "Client"); /* module.Client: the methods table, for the Lua layer */
  lua_pushstring(L, FX_CLIENT_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  lua_pushcfunction(L, client_new);
  lua_setfield(L, -2, "new");
  lua_pushcfunction(L, core_escape);
  lua_setfield(L, -2, "escape");
  lua_pushcfunction(L, core_store_loaded);
  lua_setfield(L, -2, "store_loaded");
  lua_pushcfunction(L, core_set_lua_driver);
  lua_setfield(L, -2, "set_lua_driver");
  lua_pushstring(L, FX_VERSION);
  lua_setfield(L, -2, "_VERSION");
}
