/* Out-of-memory sweep for the C core, built with AddressSanitizer by `make check-oom` and run
 * against a sandbox. The core's policy: when memory runs out, a call raises "not enough memory"
 * (Lua's own memory errors as LUA_ERRMEM) after ending its transfer cleanly; it never returns a
 * structured error for it, never crashes and never leaks. This host makes memory run out at
 * every allocation a call makes, one at a time, and lets a Lua script (oom.lua) check each
 * outcome.
 *
 * Usage: oom SCRIPT [LUA_DIR [ARG...]]   (LUA_DIR: the folder that holds flextell/init.lua,
 * default "lua"; the ARGs are the script's `...`)
 *
 * Three allocators draw from one count, so "the n-th allocation" means the n-th of the call,
 * wherever it happens:
 *   - Lua's, given to lua_newstate;
 *   - the core's malloc, calloc, realloc and strdup: the core's sources are compiled into this
 *     program and linked with -Wl,--wrap=..., so their calls land in __wrap_* below;
 *   - libcurl's, through curl_global_init_mem before the core's own curl_global_init (which then
 *     only counts a reference): curl_easy_init, curl_slist_append, curl_mime_*, curl_url_* and
 *     the transfer's internals then fail as well, which is how libcurl reports running out.
 * Frees, and shrinking reallocations, never fail and are not counted: Lua and libc expect them
 * to succeed. OpenSSL and libc's own allocations (stdio, qsort) are not counted.
 *
 * Whose fault a bad outcome is depends on where libcurl ran out. In a libcurl call the core
 * makes itself (curl_easy_setopt, curl_slist_append...), the core must notice. Inside a transfer
 * (curl_multi_perform) libcurl has to say so, as CURLE_OUT_OF_MEMORY or CURLM_OUT_OF_MEMORY, and
 * libcurl 7.88 does not always: it drops a URL's query when copying it fails, and reports some
 * failures while resolving as "Couldn't resolve host name". So curl_multi_perform and curl_multi_info_read are
 * wrapped too, to tell the script whether the failure was inside a transfer and what libcurl
 * reported; the script holds the core to the policy only where libcurl told it.
 *
 * http_proxy points at a closed port on loopback: the core sends loopback calls directly
 * (CURLOPT_PROXY ""), and a run that loses that option to a failed copy fails visibly instead of
 * quietly going through a proxy.
 *
 * Two modes: "once" fails only the n-th allocation, so each run finds one path out of one
 * failure (and Lua's emergency collection may still rescue the call); "sustained" fails the n-th
 * and every later one, so the raise itself and the unwinding must cope with no memory at all.
 *
 * Functions for the script:
 *   oom_after(n [, sustained])  arm: the n-th following allocation fails (sustained: and every
 *       later one)
 *   oom_off() -> counted, injected   disarm; how many allocations were counted and failed
 *   oom_try(n, sustained, f, ...) -> info, ...   runs f(...) under lua_pcall with the injector
 *       armed only for that call, and returns an info table followed by f's results or its
 *       error value. info: status ("ok", "errrun", "errmem", "errerr"), counted, injected; for
 *       the first failed allocation domain ("Lua", "core", "libcurl"), in_transfer (libcurl's,
 *       inside curl_multi_perform), stack and site (its first frame in src/); curl_result (the
 *       first failure libcurl reported after it, as libcurl's text for the code) and curl_oom
 *       (libcurl reported running out of memory)
 *   oom_label(text)   what the script is doing, printed if a sanitizer stops the process
 *   oom_leaks() -> true | false | nil   LeakSanitizer's recoverable check (nil without LSan)
 *   oom_warnings() -> n   Lua warnings so far (an error in a __gc is one; each is printed) */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_flextell_core(lua_State *L);

/* The real allocators behind the wrapped names (the linker's --wrap). Calls in this file go to
 * them directly, so the injector's own bookkeeping is never counted. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
CURLMcode __real_curl_multi_perform(CURLM *multi, int *running);
CURLMsg *__real_curl_multi_info_read(CURLM *multi, int *left);
CURLMcode __wrap_curl_multi_perform(CURLM *multi, int *running);
CURLMsg *__wrap_curl_multi_info_read(CURLM *multi, int *left);

/* With AddressSanitizer these symbolize the failed allocation's stack and check for leaks
 * mid-run; built without it, the host still runs and says less. */
int __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out, size_t outlen) __attribute__((weak));
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

enum { DOMAIN_LUA, DOMAIN_CORE, DOMAIN_CURL };
static const char *const domain_names[] = {"Lua", "core", "libcurl"};

#define MAX_FRAMES 40

/* One injector for the whole process. libcurl may call its allocator from a resolver thread,
 * so the count is atomic; the rest is written only by the first failure of a run. */
static struct {
  int armed;
  int sustained;
  long target;   /* the allocation (1-based) that fails first */
  long counted;  /* allocations seen while armed */
  long injected; /* allocations failed */
  int domain;    /* of the first failure */
  int in_transfer_first; /* the first failure was libcurl's, inside curl_multi_perform */
  void *frames[MAX_FRAMES];
  int nframes;
  const char *curl_result; /* the first failure libcurl reported after the first injected one */
  int curl_oom;            /* libcurl reported running out of memory */
} inj;

static int in_transfer; /* inside curl_multi_perform, on the thread that drives the transfers */

static long warnings;

static int inject(int domain)
{
  long n;
  if (!__atomic_load_n(&inj.armed, __ATOMIC_ACQUIRE)) return 0;
  n = __atomic_add_fetch(&inj.counted, 1, __ATOMIC_ACQ_REL);
  if (n < inj.target || (n > inj.target && !inj.sustained)) return 0;
  if (__atomic_fetch_add(&inj.injected, 1, __ATOMIC_ACQ_REL) == 0) {
    inj.domain = domain;
    inj.in_transfer_first = domain == DOMAIN_CURL && in_transfer > 0;
    inj.nframes = backtrace(inj.frames, MAX_FRAMES);
  }
  return 1;
}

static void arm(long n, int sustained)
{
  __atomic_store_n(&inj.armed, 0, __ATOMIC_RELEASE);
  inj.target = n;
  inj.sustained = sustained;
  inj.counted = 0;
  inj.injected = 0;
  inj.domain = -1;
  inj.in_transfer_first = 0;
  inj.nframes = 0;
  inj.curl_result = NULL;
  inj.curl_oom = 0;
  __atomic_store_n(&inj.armed, n > 0, __ATOMIC_RELEASE);
}

static void disarm(void)
{
  __atomic_store_n(&inj.armed, 0, __ATOMIC_RELEASE);
}

/* ---- the three allocators ------------------------------------------------------------------ */

void *__wrap_malloc(size_t n)
{
  return inject(DOMAIN_CORE) ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
  return inject(DOMAIN_CORE) ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
  if (n == 0) return __real_realloc(p, n); /* a free in disguise: cannot fail */
  return inject(DOMAIN_CORE) ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
  return inject(DOMAIN_CORE) ? NULL : __real_strdup(s);
}

static void *lua_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
  (void)ud;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  /* Lua assumes a block never fails to shrink; osize is a type tag when p is NULL */
  if (p != NULL && nsize <= osize) return __real_realloc(p, nsize);
  return inject(DOMAIN_LUA) ? NULL : __real_realloc(p, nsize);
}

static void *curl_malloc_cb(size_t n)
{
  return inject(DOMAIN_CURL) ? NULL : __real_malloc(n);
}

static void curl_free_cb(void *p)
{
  free(p);
}

static void *curl_realloc_cb(void *p, size_t n)
{
  if (n == 0) return __real_realloc(p, n);
  return inject(DOMAIN_CURL) ? NULL : __real_realloc(p, n);
}

static char *curl_strdup_cb(const char *s)
{
  return inject(DOMAIN_CURL) ? NULL : __real_strdup(s);
}

static void *curl_calloc_cb(size_t n, size_t size)
{
  return inject(DOMAIN_CURL) ? NULL : __real_calloc(n, size);
}

/* ---- what libcurl reports ----------------------------------------------------------------- */

static void note_curl_failure(const char *what, int oom)
{
  if (!__atomic_load_n(&inj.armed, __ATOMIC_ACQUIRE) || inj.injected == 0) return;
  if (inj.curl_result == NULL) inj.curl_result = what;
  if (oom) inj.curl_oom = 1;
}

CURLMcode __wrap_curl_multi_perform(CURLM *multi, int *running)
{
  CURLMcode mc;
  in_transfer++;
  mc = __real_curl_multi_perform(multi, running);
  in_transfer--;
  if (mc != CURLM_OK) note_curl_failure(curl_multi_strerror(mc), mc == CURLM_OUT_OF_MEMORY);
  return mc;
}

CURLMsg *__wrap_curl_multi_info_read(CURLM *multi, int *left)
{
  CURLMsg *m = __real_curl_multi_info_read(multi, left);
  if (m != NULL && m->msg == CURLMSG_DONE && m->data.result != CURLE_OK)
    note_curl_failure(curl_easy_strerror(m->data.result), m->data.result == CURLE_OUT_OF_MEMORY);
  return m;
}

/* ---- reporting ----------------------------------------------------------------------------- */

/* The part of a source path from the checkout's top folder on (src/..., spec/...), so reports
 * read the same on every machine. */
static const char *short_path(const char *s)
{
  static const char *const tops[] = {"/src/", "/spec/", "/lua/", NULL};
  int i;
  for (i = 0; tops[i] != NULL; i++) {
    const char *p = strstr(s, tops[i]);
    if (p != NULL) return p + 1;
  }
  return s;
}

/* Appends to out (of size cap, at *len) without overflowing it. */
static void put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
  if (*len + 1 >= cap) return;
  if (n > cap - 1 - *len) n = cap - 1 - *len;
  memcpy(out + *len, s, n);
  *len += n;
  out[*len] = '\0';
}

/* The core's small allocation helpers: the place that matters is the one that called them. */
static int alloc_helper(const char *frame)
{
  static const char *const names[] = {"fx_buf_", "fx_strdup ", "out_byte ", NULL};
  int i;
  for (i = 0; names[i] != NULL; i++)
    if (strncmp(frame, names[i], strlen(names[i])) == 0) return 1;
  return 0;
}

/* Writes the stack of the first failed allocation to out, one "function file:line" a line,
 * without the frames of this file and of the sanitizer's interceptors, stopping at oom_try's
 * lua_pcallk (below it is only the script), with a run of frames in a library without symbols
 * (liblua's internals) as one line; and its first frame in the core (src/) that is not an
 * allocation helper to site, or "". */
static void format_stack(char *out, size_t cap, char *site, size_t sitecap)
{
  char line[512], last_module[256] = "";
  size_t len = 0;
  int i, shown = 0;
  out[0] = site[0] = '\0';
  for (i = 0; i < inj.nframes && shown < 12; i++) {
    const char *sp, *pos;
    if (__sanitizer_symbolize_pc != NULL)
      __sanitizer_symbolize_pc((char *)inj.frames[i] - 1, "%f %L", line, sizeof line);
    else
      snprintf(line, sizeof line, "? %p", inj.frames[i]);
    if (strstr(line, "spec/c/oom.c") != NULL || strstr(line, "libsanitizer") != NULL ||
        strncmp(line, "__interceptor_", 14) == 0)
      continue;
    if (strncmp(line, "lua_pcallk ", 11) == 0) break;
    sp = strchr(line, ' ');
    pos = sp != NULL ? short_path(sp + 1) : line;
    if (strncmp(line, "<null> (", 8) == 0 || strncmp(line, "?? (", 4) == 0) {
      /* no symbol: "(/path/libfoo.so+0x1234)" */
      const char *plus = strchr(pos, '+'), *name;
      size_t mlen = plus != NULL ? (size_t)(plus - pos) : strlen(pos);
      if (mlen < sizeof last_module && strncmp(last_module, pos, mlen) == 0 && last_module[mlen] == '\0')
        continue;
      snprintf(last_module, sizeof last_module, "%.*s", (int)mlen, pos);
      name = strrchr(last_module, '/') != NULL ? strrchr(last_module, '/') + 1 : last_module;
      put(out, cap, &len, "    ... ", 8);
      put(out, cap, &len, name, strlen(name));
      put(out, cap, &len, " internals\n", 11);
      shown++;
      continue;
    }
    last_module[0] = '\0';
    put(out, cap, &len, "    ", 4);
    if (sp != NULL) put(out, cap, &len, line, (size_t)(sp - line) + 1);
    put(out, cap, &len, pos, strlen(pos));
    put(out, cap, &len, "\n", 1);
    if (site[0] == '\0' && strncmp(pos, "src/", 4) == 0 && !alloc_helper(line))
      snprintf(site, sitecap, "%.*s %s", sp != NULL ? (int)(sp - line) : 0, line, pos);
    shown++;
  }
}

/* What the run that crashed was doing, for the sanitizer's report: set by oom_label. */
static char label[256];

static void on_death(void)
{
  static char stack[4096];
  char site[600];
  fflush(stdout);
  fprintf(stderr, "oom: died in %s, with allocation %ld failing (%s mode, %ld failed so far)\n",
          label[0] ? label : "the script", inj.target, inj.sustained ? "sustained" : "once", inj.injected);
  if (inj.injected > 0) {
    format_stack(stack, sizeof stack, site, sizeof site);
    fprintf(stderr, "oom: the first failed allocation (%s):\n%s", domain_names[inj.domain], stack);
  }
}

/* ---- functions for the script -------------------------------------------------------------- */

static int l_oom_after(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0, 1, "must be > 0");
  arm((long)n, lua_toboolean(L, 2));
  return 0;
}

static int l_oom_off(lua_State *L)
{
  disarm();
  lua_pushinteger(L, (lua_Integer)inj.counted);
  lua_pushinteger(L, (lua_Integer)inj.injected);
  return 2;
}

static const char *status_name(int status)
{
  switch (status) {
  case LUA_OK: return "ok";
  case LUA_ERRRUN: return "errrun";
  case LUA_ERRMEM: return "errmem";
  case LUA_ERRERR: return "errerr";
  default: return "other";
  }
}

static int l_oom_try(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 1);
  int sustained = lua_toboolean(L, 2), status, nres;
  luaL_checktype(L, 3, LUA_TFUNCTION);
  luaL_argcheck(L, n > 0, 1, "must be > 0");
  lua_remove(L, 2);
  lua_remove(L, 1); /* f and its arguments */
  arm((long)n, sustained);
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  disarm();
  nres = lua_gettop(L);
  luaL_checkstack(L, 8, "oom_try");
  lua_createtable(L, 0, 8);
  lua_pushstring(L, status_name(status));
  lua_setfield(L, -2, "status");
  lua_pushinteger(L, (lua_Integer)inj.counted);
  lua_setfield(L, -2, "counted");
  lua_pushinteger(L, (lua_Integer)inj.injected);
  lua_setfield(L, -2, "injected");
  if (inj.injected > 0) {
    lua_pushstring(L, domain_names[inj.domain]);
    lua_setfield(L, -2, "domain");
    lua_pushboolean(L, inj.in_transfer_first);
    lua_setfield(L, -2, "in_transfer");
    if (inj.curl_result != NULL) {
      lua_pushstring(L, inj.curl_result);
      lua_setfield(L, -2, "curl_result");
    }
    lua_pushboolean(L, inj.curl_oom);
    lua_setfield(L, -2, "curl_oom");
    {
      static char stack[4096];
      char site[600];
      format_stack(stack, sizeof stack, site, sizeof site);
      lua_pushstring(L, stack);
      lua_setfield(L, -2, "stack");
      lua_pushstring(L, site);
      lua_setfield(L, -2, "site");
    }
  }
  lua_insert(L, 1);
  return nres + 1;
}

static int l_oom_label(lua_State *L)
{
  snprintf(label, sizeof label, "%s", luaL_checkstring(L, 1));
  return 0;
}

static int l_oom_leaks(lua_State *L)
{
  if (__lsan_do_recoverable_leak_check == NULL) return 0;
  lua_pushboolean(L, __lsan_do_recoverable_leak_check() != 0);
  return 1;
}

static int l_oom_warnings(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)warnings);
  return 1;
}

/* Lua 5.4 reports an error in a __gc metamethod as a warning: print it, and count it. */
static void on_warning(void *ud, const char *msg, int tocont)
{
  static int continued;
  (void)ud;
  if (!continued && msg[0] == '@') return; /* control messages ("@on") */
  if (!continued) {
    warnings++;
    fputs("oom: Lua warning: ", stderr);
  }
  fputs(msg, stderr);
  if (!tocont) fputc('\n', stderr);
  continued = tocont;
}

/* http_proxy at a loopback port that is bound but not listening, so connections to it are
 * refused; the socket stays open to keep the port. Returns 0, or -1 when there is no socket. */
static int proxy_to_nowhere(void)
{
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  char url[64];
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
    close(fd);
    return -1;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d", (int)ntohs(a.sin_port));
  setenv("http_proxy", url, 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  return 0;
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : luaL_tolstring(L, 1, NULL), 1);
  return 1;
}

int main(int argc, char **argv)
{
  const char *script, *lua_dir;
  lua_State *L;
  void *warm[4];
  int status;

  if (argc < 2) {
    fprintf(stderr, "usage: %s SCRIPT [LUA_DIR [ARG...]]\n", argv[0]);
    return 2;
  }
  script = argv[1];
  lua_dir = argc > 2 ? argv[2] : "lua";

  if (proxy_to_nowhere() != 0) {
    fprintf(stderr, "oom: cannot reserve a loopback port for http_proxy\n");
    return 1;
  }
  /* backtrace() loads its unwinder on first use; do that now, not inside a failing malloc */
  (void)backtrace(warm, 4);
  if (__sanitizer_set_death_callback != NULL) __sanitizer_set_death_callback(on_death);
  /* before the core's curl_global_init, which then only counts one more user */
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, curl_malloc_cb, curl_free_cb, curl_realloc_cb,
                           curl_strdup_cb, curl_calloc_cb) != CURLE_OK) {
    fprintf(stderr, "oom: curl_global_init_mem failed\n");
    return 1;
  }

  L = lua_newstate(lua_alloc, NULL);
  if (L == NULL) {
    fprintf(stderr, "oom: lua_newstate failed\n");
    return 1;
  }
  lua_setwarnf(L, on_warning, NULL);
  luaL_openlibs(L);
  /* the core as a static part of this program; require "flextell.core" finds it loaded */
  luaL_requiref(L, "flextell.core", luaopen_flextell_core, 0);
  lua_pop(L, 1);
  /* the Lua layer from the checkout only, and no C modules from anywhere */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_register(L, "oom_after", l_oom_after);
  lua_register(L, "oom_off", l_oom_off);
  lua_register(L, "oom_try", l_oom_try);
  lua_register(L, "oom_label", l_oom_label);
  lua_register(L, "oom_leaks", l_oom_leaks);
  lua_register(L, "oom_warnings", l_oom_warnings);

  lua_pushcfunction(L, traceback);
  status = luaL_loadfile(L, script);
  if (status == LUA_OK) {
    int i;
    for (i = 3; i < argc; i++) lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc > 3 ? argc - 3 : 0, 1, 1);
  }
  if (status != LUA_OK) {
    fprintf(stderr, "oom: %s\n", lua_tostring(L, -1));
  } else if (lua_isinteger(L, -1)) {
    status = (int)lua_tointeger(L, -1); /* the script's exit status */
  }
  disarm();
  lua_close(L);
  curl_global_cleanup();
  /* LeakSanitizer's exit at the end does not flush stdio */
  fflush(NULL);
  return status;
}
