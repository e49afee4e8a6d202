/* Many lua_States on many threads, one client each: the way a threaded host (a server with a
 * state per worker thread) uses the library. Built and run with ThreadSanitizer by
 * `make check-tsan`, against a running sandbox.
 *
 * Usage: threads [BASE_URL [TOKEN]]   (defaults: $FLEXTELL_SANDBOX_URL, $FLEXTELL_SANDBOX_TOKEN)
 * LUA_PATH and LUA_CPATH must find lua/flextell and the instrumented flextell/core.so.
 *
 * Each thread opens its own state, requires flextell, makes its own client, checks NGETS single
 * GETs and one cursor-paged walk of /resources. Nothing Lua is shared between threads; whatever
 * the core keeps per process (libcurl's global init) is what this exercises. Exit status: 0 when
 * every check passed, 1 when one failed (the failure is printed), 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define NTHREADS 8
#define NGETS 200
#define NCUSTOMERS 45 /* the sandbox's seed customers, ids 1..45 */
#define NRESOURCES 84 /* the sandbox's cursor-style list, res_001..res_084 */
#define PAGE_LIMIT 10
#define NPAGES ((NRESOURCES + PAGE_LIMIT - 1) / PAGE_LIMIT)

static const char *base_url;
static const char *token;

/* Two start lines: one before require, so the core is loaded and opened by all threads at
 * once, and one before flextell.new, so the first client of every thread (which is where the
 * core initialises libcurl for the process) is made at once too. Every thread reaches both,
 * even after a failure, or the others would wait forever. */
static pthread_barrier_t load_line;
static pthread_barrier_t client_line;

typedef struct {
  int index;
  int failed;
} worker;

static void fail(worker *w, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "threads: thread %d: %s\n", w->index, msg);
  w->failed = 1;
}

/* The value at idx as text, for a failure message (flextell errors have __tostring). */
static const char *describe(lua_State *L, int idx)
{
  return luaL_tolstring(L, idx, NULL); /* leaves the string on the stack */
}

/* The flextell module on top of the stack, or 0 with the failure printed. */
static int require_flextell(worker *w, lua_State *L)
{
  lua_getglobal(L, "require");
  lua_pushliteral(L, "flextell");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fail(w, "require \"flextell\": %s", describe(L, -1));
    return 0;
  }
  return 1;
}

/* flextell.new{ base_url, token } on top of the stack, the module below it; or 0. */
static int new_client(worker *w, lua_State *L)
{
  lua_getfield(L, -1, "new");
  lua_createtable(L, 0, 2);
  lua_pushstring(L, base_url);
  lua_setfield(L, -2, "base_url");
  lua_pushstring(L, token);
  lua_setfield(L, -2, "token");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fail(w, "flextell.new: %s", describe(L, -1));
    return 0;
  }
  return 1;
}

/* client:get("/v1/customers/<id>") must give data.id == id, an integer. */
static int get_customer(worker *w, lua_State *L, int client, int call, lua_Integer id)
{
  char path[64];
  int ok = 1;
  snprintf(path, sizeof path, "/v1/customers/%lld", (long long)id);
  lua_getfield(L, client, "get");
  lua_pushvalue(L, client);
  lua_pushstring(L, path);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    fail(w, "call %d, GET %s raised: %s", call, path, describe(L, -1));
    lua_settop(L, client);
    return 0;
  }
  if (!lua_istable(L, -2)) {
    fail(w, "call %d, GET %s failed: %s", call, path, describe(L, -1));
    ok = 0;
  } else {
    lua_getfield(L, -2, "id");
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) != id) {
      fail(w, "call %d, GET %s: data.id is %s", call, path, describe(L, -1));
      ok = 0;
    }
  }
  lua_settop(L, client);
  return ok;
}

/* client:all("/resources", { limit = PAGE_LIMIT }) must give res_001..res_084, in order. */
static int walk_resources(worker *w, lua_State *L, int client)
{
  lua_Integer i, n;
  int ok = 1;
  lua_getfield(L, client, "all");
  lua_pushvalue(L, client);
  lua_pushliteral(L, "/resources");
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, PAGE_LIMIT);
  lua_setfield(L, -2, "limit");
  if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
    fail(w, "all /resources raised: %s", describe(L, -1));
    lua_settop(L, client);
    return 0;
  }
  if (!lua_istable(L, -2)) {
    fail(w, "all /resources failed: %s", describe(L, -1));
    lua_settop(L, client);
    return 0;
  }
  lua_pop(L, 1);
  n = (lua_Integer)lua_rawlen(L, -1);
  if (n != NRESOURCES) {
    fail(w, "all /resources gave %lld items, not %d", (long long)n, NRESOURCES);
    ok = 0;
  }
  for (i = 1; ok && i <= n; i++) {
    char want[16];
    const char *got;
    snprintf(want, sizeof want, "res_%03lld", (long long)i);
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "id");
    got = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (got == NULL || strcmp(got, want) != 0) {
      fail(w, "all /resources: item %lld has id %s, not %s", (long long)i, describe(L, -1), want);
      ok = 0;
    }
    lua_pop(L, 2);
  }
  lua_settop(L, client);
  return ok;
}

static void *run(void *arg)
{
  worker *w = (worker *)arg;
  lua_State *L = luaL_newstate();
  int ok = L != NULL, client, i;
  if (!ok) fail(w, "luaL_newstate failed");
  else luaL_openlibs(L);

  pthread_barrier_wait(&load_line);
  ok = ok && require_flextell(w, L);
  pthread_barrier_wait(&client_line);
  ok = ok && new_client(w, L);
  if (ok) {
    client = lua_gettop(L);
    /* Threads start at different customers, so they do not ask for the same ids in step. */
    for (i = 0; ok && i < NGETS; i++)
      ok = get_customer(w, L, client, i + 1, (lua_Integer)((w->index * 7 + i) % NCUSTOMERS + 1));
    ok = ok && walk_resources(w, L, client);
  }
  if (L != NULL) lua_close(L); /* also collects the client, which closes its handles */
  return NULL;
}

int main(int argc, char **argv)
{
  pthread_t tids[NTHREADS];
  worker workers[NTHREADS];
  struct timespec t0, t1;
  int i, failed = 0;

  base_url = argc > 1 ? argv[1] : getenv("FLEXTELL_SANDBOX_URL");
  token = argc > 2 ? argv[2] : getenv("FLEXTELL_SANDBOX_TOKEN");
  if (argc > 3 || base_url == NULL || *base_url == '\0' || token == NULL || *token == '\0') {
    fprintf(stderr, "usage: %s [BASE_URL [TOKEN]]  (or set FLEXTELL_SANDBOX_URL and "
                    "FLEXTELL_SANDBOX_TOKEN)\n", argv[0]);
    return 2;
  }

  if (pthread_barrier_init(&load_line, NULL, NTHREADS) != 0 ||
      pthread_barrier_init(&client_line, NULL, NTHREADS) != 0) {
    fprintf(stderr, "threads: pthread_barrier_init failed\n");
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < NTHREADS; i++) {
    workers[i].index = i;
    workers[i].failed = 0;
    if (pthread_create(&tids[i], NULL, run, &workers[i]) != 0) {
      /* The barriers count NTHREADS: with one missing the others cannot go on. */
      fprintf(stderr, "threads: pthread_create failed for thread %d\n", i);
      exit(1);
    }
  }
  for (i = 0; i < NTHREADS; i++) {
    pthread_join(tids[i], NULL);
    failed += workers[i].failed;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  pthread_barrier_destroy(&load_line);
  pthread_barrier_destroy(&client_line);

  if (failed) {
    fprintf(stderr, "threads: %d of %d threads failed\n", failed, NTHREADS);
    return 1;
  }
  printf("threads: %d threads x %d calls (%d GETs + %d pages of /resources), all checks passed "
         "in %.2f s\n", NTHREADS, NGETS + NPAGES, NGETS, NPAGES,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
