/* The loop: one libcurl multi handle per lua_State, shared by every client in it (connections,
 * and DNS reused across clients); each transfer gets an easy handle of its own. libcurl 7.88 polls
 * one multi handle at a time and hosts run many states on many threads, so there is no
 * process-wide scheduler: the loop lives in the state's registry. Two drivers use it:
 *
 * - the blocking driver (fx_drive_blocking): what client:get does outside a task. It asks the
 *   call what next and does it: sends through libcurl, polls the multi handle (waking at least
 *   every 0.25 s to notice Ctrl-C), runs hooks under pcall, drives a token refresh as a child.
 * - the C half of the task driver (core.advance, core.loop_perform, core.loop_wait): sends go
 *   to the multi handle, and calls whose transfer ended are handed back to the Lua scheduler
 *   (lua/flextell/tasks.lua), which resumes their tasks. C never yields.
 *
 * A call in flight is anchored in the loop's user value (libcurl points at its buffers), and
 * found again from libcurl's private pointer through it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fx.h"

#define LOOP_KEY "flextell.loop"
#define PUMP_KEY "flextell.pump" /* the task scheduler's step, for a blocking call that waits on a task */

struct fx_loop {
  CURLM *multi;
  fx_call **flight;         /* calls whose transfer is in the multi handle */
  int nflight, capflight;
  fx_call **queued;         /* task calls sent but not yet handed to libcurl (see admit) */
  int nqueued, capqueued;
  CURL *idle[FX_IDLE_EASY]; /* easy handles of ended transfers, scrubbed, for the next ones */
  int nidle;
  int dead;                 /* collected (lua_close): calls finalized later must not touch it */
};

/* ---- the object ---------------------------------------------------------------------------- */

static int loop_gc(lua_State *L)
{
  fx_loop *lp = (fx_loop *)luaL_checkudata(L, 1, FX_LOOP_MT);
  int i;
  if (lp->dead) return 0;
  lp->dead = 1;
  for (i = 0; i < lp->nflight; i++) {
    fx_call *r = lp->flight[i];
    curl_multi_remove_handle(lp->multi, r->easy);
    r->loop = NULL;
  }
  lp->nflight = 0;
  free(lp->flight);
  lp->flight = NULL;
  for (i = 0; i < lp->nqueued; i++) lp->queued[i]->loop = NULL;
  lp->nqueued = 0;
  free(lp->queued);
  lp->queued = NULL;
  while (lp->nidle > 0) curl_easy_cleanup(lp->idle[--lp->nidle]);
  if (lp->multi != NULL) curl_multi_cleanup(lp->multi);
  lp->multi = NULL;
  return 0;
}

fx_loop *fx_loop_get(lua_State *L)
{
  fx_loop *lp;
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    lp = (fx_loop *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return lp;
  }
  lua_pop(L, 1);
  lp = (fx_loop *)fx_newuserdata(L, sizeof *lp, 1);
  memset(lp, 0, sizeof *lp);
  luaL_setmetatable(L, FX_LOOP_MT);
  lua_createtable(L, 0, 2); /* { anchors = { [lightuserdata] = call }, ready = { call... } } */
  lua_newtable(L);
  lua_setfield(L, -2, "anchors");
  lua_newtable(L);
  lua_setfield(L, -2, "ready");
  fx_setuservalue(L, -2);
  lp->multi = curl_multi_init();
  if (lp->multi == NULL) luaL_error(L, "not enough memory");
  lua_setfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  return lp;
}

static void push_loop_field(lua_State *L, const char *k)
{
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  fx_getuservalue(L, -1);
  lua_getfield(L, -1, k);
  lua_remove(L, -2);
  lua_remove(L, -2);
}

static void anchor(lua_State *L, fx_call *r, int idx) /* idx: the call, or 0 to drop it */
{
  push_loop_field(L, "anchors");
  lua_pushlightuserdata(L, (void *)r);
  if (idx != 0)
    lua_pushvalue(L, idx);
  else
    lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Pushes the call whose pointer libcurl holds. */
static void push_anchored(lua_State *L, fx_call *r)
{
  push_loop_field(L, "anchors");
  lua_pushlightuserdata(L, (void *)r);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* Easy handles are kept for the next transfer (libcurl's advice: making one costs more than
 * the rest of a small call's work in C), not curl_easy_reset: reset gives no word when it runs
 * out of memory and then leaves defaults unset. Instead a handle is scrubbed: every option that
 * fx_transport_start sets only for some calls, and every pointer into the call that ended, is
 * set back to libcurl's default; none of these settings allocates. A handle that had a CA file
 * or folder (whose default cannot be set back without allocating) is cleaned up instead; so is
 * one that held a multipart body (its mime part belongs to the handle), went through a proxy, or
 * ended otherwise than with one answer (fx_loop_keeps_easy). */
void fx_loop_release_easy(fx_loop *lp, CURL *easy, int keep)
{
  if (easy == NULL) return;
  if (lp == NULL || lp->dead || !keep || lp->nidle == FX_IDLE_EASY) {
    curl_easy_cleanup(easy);
    return;
  }
  curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, NULL);
  curl_easy_setopt(easy, CURLOPT_PREREQDATA, NULL);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, NULL);
  curl_easy_setopt(easy, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 0L);
  curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, 118L); /* libcurl's default */
  curl_easy_setopt(easy, CURLOPT_PROXY, NULL);
  lp->idle[lp->nidle++] = easy;
}

/* Whether a call's handle may be kept now that its transfer ended (see fx_loop_release_easy):
 * only after a transfer that went well and went on the wire once. libcurl 7.88 counts its
 * re-sends on a new connection per handle and sets the count back only in curl_easy_reset, so
 * a kept handle that had re-sent would refuse a later re-send too early ("Connection died,
 * tried 5 times"). */
int fx_loop_keeps_easy(const fx_call *r)
{
  return r->result == CURLE_OK && r->sends == 1 && r->mime == NULL && r->ca_file == NULL &&
         r->ca_path == NULL && r->proxy == NULL; /* a proxy's authentication state stays too */
}

CURL *fx_loop_take_easy(lua_State *L, fx_loop *lp, int *warm)
{
  CURL *e;
  if (lp != NULL && !lp->dead && lp->nidle > 0) {
    *warm = 1; /* fx_transport_start set its options that never change */
    return lp->idle[--lp->nidle];
  }
  e = curl_easy_init();
  if (e == NULL) luaL_error(L, "not enough memory");
  *warm = 0;
  return e;
}

/* Takes the call's transfer out of the multi handle: nothing libcurl holds points at it after. */
void fx_loop_detach(fx_call *r)
{
  fx_loop *lp = r->loop;
  int i;
  if (lp == NULL) return;
  r->loop = NULL;
  if (lp->dead) return;
  for (i = 0; i < lp->nqueued; i++)
    if (lp->queued[i] == r) { /* not handed to libcurl yet */
      memmove(&lp->queued[i], &lp->queued[i + 1], (size_t)(lp->nqueued - i - 1) * sizeof lp->queued[0]);
      lp->nqueued--;
      return;
    }
  curl_multi_remove_handle(lp->multi, r->easy);
  for (i = 0; i < lp->nflight; i++)
    if (lp->flight[i] == r) {
      lp->flight[i] = lp->flight[--lp->nflight];
      break;
    }
  if (r->mime == NULL) { /* a multipart body stays bound to its easy handle for retries */
    fx_loop_release_easy(lp, r->easy, 0); /* cut short: not kept */
    r->easy = NULL;
  }
}

/* ---- sending ------------------------------------------------------------------------------- */

static void grow(lua_State *L, fx_call ***arr, int n, int *cap)
{
  if (n == *cap) {
    int c = *cap ? *cap * 2 : 16;
    fx_call **p = (fx_call **)realloc(*arr, (size_t)c * sizeof *p);
    if (p == NULL) luaL_error(L, "not enough memory");
    *arr = p;
    *cap = c;
  }
}

/* Hands a call's transfer to libcurl (the call is anchored and marked sent already). */
static void hand_over(lua_State *L, fx_loop *lp, fx_call *r)
{
  CURL *e = r->easy != NULL ? r->easy : fx_loop_take_easy(L, lp, &r->easy_warm);
  r->easy = e;
  grow(L, &lp->flight, lp->nflight, &lp->capflight);
  fx_transport_start(L, r, e);
  if (curl_multi_add_handle(lp->multi, e) != CURLM_OK) luaL_error(L, "not enough memory");
  lp->flight[lp->nflight++] = r;
}

/* Sends the call at idx: now (the blocking driver, prefetch), or, for a task, into the queue
 * that loop_perform hands to libcurl a few at a time: curl_multi_perform starts every new
 * transfer it holds at once, and a frame's step must not pay for fifty connections. */
static void loop_send(lua_State *L, fx_loop *lp, int idx, int queue)
{
  fx_call *r = fx_call_at(L, idx);
  anchor(L, r, idx);
  r->loop = lp;
  fx_call_sent(r);
  if (queue) {
    grow(L, &lp->queued, lp->nqueued, &lp->capqueued);
    lp->queued[lp->nqueued++] = r;
    return;
  }
  hand_over(L, lp, r);
}

/* Hands at most max queued transfers to libcurl (max < 0: all). A failure to start one (memory)
 * raises; that call raises again from its result. */
static void admit(lua_State *L, fx_loop *lp, int max)
{
  while (lp->nqueued > 0 && max != 0) {
    fx_call *r = lp->queued[0];
    memmove(&lp->queued[0], &lp->queued[1], (size_t)(lp->nqueued - 1) * sizeof lp->queued[0]);
    lp->nqueued--;
    if (max > 0) max--;
    r->raise_oom = 1;
    hand_over(L, lp, r);
    r->raise_oom = 0;
  }
}

/* A call whose transfer ended: a task's goes on the ready list, to be resumed. */
static void handed_back(lua_State *L, fx_call *r, int idx)
{
  if (r->driver == FX_D_TASK) {
    push_loop_field(L, "ready");
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
    lua_pop(L, 1);
  }
  anchor(L, r, 0);
}

/* Moves every transfer of the multi handle on, and hands the ended ones to their calls. */
static void perform(lua_State *L, fx_loop *lp)
{
  CURLMsg *m;
  int running = 0, left, i;
  double now;
  CURLMcode mc = curl_multi_perform(lp->multi, &running);
  if (mc == CURLM_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
  while ((m = curl_multi_info_read(lp->multi, &left)) != NULL) {
    fx_call *r = NULL;
    CURLcode result;
    if (m->msg != CURLMSG_DONE) continue;
    result = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r == NULL) continue;
    push_anchored(L, r);
    {
      int idx = lua_gettop(L);
      CURL *e = r->easy;
      /* the answer is read while the handle still holds it, then it is let go */
      curl_multi_remove_handle(lp->multi, e);
      for (i = 0; i < lp->nflight; i++)
        if (lp->flight[i] == r) {
          lp->flight[i] = lp->flight[--lp->nflight];
          break;
        }
      r->loop = NULL;
      handed_back(L, r, idx);
      fx_transport_done(L, idx, result);
      if (r->mime == NULL && r->easy == e) {
        fx_loop_release_easy(lp, e, fx_loop_keeps_easy(r));
        r->easy = NULL;
      }
      lua_settop(L, idx - 1);
    }
  }
  /* the stall detector: libcurl's low-speed check averages over seconds, this does not */
  now = fx_now();
  for (i = 0; i < lp->nflight; i++) {
    fx_call *r = lp->flight[i];
    if (now - r->last_activity >= r->stall_timeout) {
      int idx;
      push_anchored(L, r);
      idx = lua_gettop(L);
      curl_multi_remove_handle(lp->multi, r->easy);
      lp->flight[i] = lp->flight[--lp->nflight];
      r->loop = NULL;
      handed_back(L, r, idx);
      fx_transport_stalled(L, idx);
      if (r->mime == NULL) {
        fx_loop_release_easy(lp, r->easy, 0); /* cut short: not kept */
        r->easy = NULL;
      }
      lua_settop(L, idx - 1);
      i = -1; /* the array changed: look again from the start */
    }
  }
}

/* Waits for activity at most that long: whole milliseconds, rounded down, so a wait never
 * runs past the caller's budget (a scheduler's step). */
static void wait_for(fx_loop *lp, double seconds)
{
  int ms;
  if (seconds <= 0) return;
  ms = seconds > 60 ? 60000 : (int)(seconds * 1000);
  if (ms > 0) curl_multi_poll(lp->multi, NULL, 0, ms, NULL);
}

/* The earliest stall deadline of the calls in flight, as seconds from now (60 when none). */
static double next_stall(fx_loop *lp)
{
  double now = fx_now(), soonest = 60;
  int i;
  for (i = 0; i < lp->nflight; i++) {
    double left = lp->flight[i]->last_activity + lp->flight[i]->stall_timeout - now;
    if (left < soonest) soonest = left;
  }
  return soonest < 0 ? 0 : soonest;
}

void fx_loop_close_client(lua_State *L, fx_client *c)
{
  fx_loop *lp;
  int i;
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  if (lua_type(L, -1) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return;
  }
  lp = (fx_loop *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  for (i = 0; i < lp->nflight + lp->nqueued; i++) {
    fx_call *r = i < lp->nflight ? lp->flight[i] : lp->queued[i - lp->nflight];
    /* a token request on the wire finishes (its answer holds the only copy of the new tokens),
     * and one under a token store's lock saves them */
    if (r->client == c && !(r->kind != FX_K_API && (r->locked || r->sends > 0))) {
      fx_fail f;
      int idx;
      push_anchored(L, r);
      idx = lua_gettop(L);
      fx_loop_detach(r);
      handed_back(L, r, idx);
      fx_fail_closed(&f);
      fx_call_end(r, &f);
      lua_pop(L, 1);
      i = -1; /* the arrays changed: from the start again */
    }
  }
}

/* ---- the blocking driver ------------------------------------------------------------------- */

/* The standard interpreters (lua, luajit) answer Ctrl-C by setting a count hook on the main
 * state, which raises "interrupted!" at the next instruction. A call waiting in C notices the
 * hook appear, ends its transfer, and returns: the hook then raises as it should. */
typedef struct hook_snap {
  lua_State *main;
  lua_Hook hook;
} hook_snap;

static lua_State *main_thread(lua_State *L)
{
#if LUA_VERSION_NUM >= 502
  lua_State *M;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  M = lua_tothread(L, -1);
  lua_pop(L, 1);
  return M != NULL ? M : L;
#else
  return L; /* LuaJIT's hooks belong to the whole state */
#endif
}

static int interrupted(const hook_snap *s)
{
  lua_Hook h = lua_gethook(s->main);
  /* lua.c and luajit.c set call, return and count (5.4 adds line) hooks with a count of 1 */
  return h != NULL && h != s->hook && (lua_gethookmask(s->main) & LUA_MASKCOUNT) &&
         (lua_gethookmask(s->main) & LUA_MASKCALL) && lua_gethookcount(s->main) == 1;
}

/* Lets the task scheduler run a step, when a blocking call waits on something a task owns. */
static void pump_tasks(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, PUMP_KEY);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnumber(L, 0);
  if (lua_pcall(L, 1, 0, 0) != 0) lua_pop(L, 1); /* a task's trouble is the task's */
}

static int drive(lua_State *L, int idx, int results)
{
  fx_call *r = fx_call_at(L, idx);
  fx_loop *lp = fx_loop_get(L);
  hook_snap snap;
  snap.main = main_thread(L);
  snap.hook = lua_gethook(snap.main);
  r->driver = FX_D_BLOCKING;
  for (;;) {
    double wait = 0;
    int what = fx_call_next(L, idx, &wait), top = lua_gettop(L);
    switch (what) {
    case FX_N_SEND:
      loop_send(L, lp, idx, 0);
      perform(L, lp);
      break;
    case FX_N_FLIGHT:
    case FX_N_WAIT:
    case FX_N_HOLD: {
      double w = what == FX_N_WAIT ? wait : what == FX_N_HOLD ? 0.01 : 0.25;
      double stall = next_stall(lp);
      if (w > 0.25) w = 0.25; /* Ctrl-C is noticed within a quarter of a second */
      if (what == FX_N_FLIGHT && stall < w) w = stall;
      if (what == FX_N_HOLD) pump_tasks(L);
      wait_for(lp, w);
      perform(L, lp);
      if (interrupted(&snap)) {
        fx_fail f;
        fx_loop_detach(r);
        fx_fail_set(&f, "usage", "interrupted", "the call was interrupted");
        fx_call_end(r, &f);
      }
      break;
    }
    case FX_N_REFRESH: /* the child call is on top */
      drive(L, top, 0);
      lua_settop(L, top - 1);
      break;
    case FX_N_HOOK: { /* function and its arguments on top */
      int fn = top - r->hook_nargs, rc = lua_pcall(L, r->hook_nargs, LUA_MULTRET, 0);
      if (rc == LUA_ERRMEM) {
        fx_fail f;
        fx_fail_set(&f, "usage", "out_of_memory", "not enough memory");
        fx_call_end(r, &f);
        lua_error(L);
      }
      fx_call_hooked(L, idx, rc == 0, fn);
      lua_settop(L, fn - 1);
      break;
    }
    default: /* FX_N_DONE */
      return results ? fx_call_result(L, idx) : 0;
    }
  }
}

int fx_drive_blocking(lua_State *L, int idx)
{
  return drive(L, fx_absindex(L, idx), 1);
}

/* ---- the task driver's C half ---------------------------------------------------------------- */

/* core.advance(call): moves a task's call on as far as C can. Returns "flight" (in libcurl's
 * hands: the task parks until the scheduler hands the call back), "wait", seconds, "hold",
 * "refresh", child, "hook", nargs, fn, args..., or "done". */
static int core_advance(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  fx_loop *lp = fx_loop_get(L);
  double wait = 0;
  int what;
  lua_settop(L, 1);
  r->driver = FX_D_TASK;
  what = fx_call_next(L, 1, &wait);
  switch (what) {
  case FX_N_SEND:
    loop_send(L, lp, 1, 1);
    lua_pushliteral(L, "flight");
    return 1;
  case FX_N_FLIGHT:
    lua_pushliteral(L, "flight");
    return 1;
  case FX_N_WAIT:
    lua_pushliteral(L, "wait");
    lua_pushnumber(L, wait);
    return 2;
  case FX_N_HOLD:
    lua_pushliteral(L, "hold");
    return 1;
  case FX_N_REFRESH:
    lua_pushliteral(L, "refresh");
    lua_insert(L, -2);
    return 2;
  case FX_N_HOOK: { /* "hook", nargs, fn, args... */
    int fn = lua_gettop(L) - r->hook_nargs;
    lua_pushliteral(L, "hook");
    lua_insert(L, fn);
    lua_pushinteger(L, r->hook_nargs);
    lua_insert(L, fn + 1);
    return r->hook_nargs + 3;
  }
  default:
    lua_pushliteral(L, "done");
    return 1;
  }
}

/* core.send(call): sends the call now if it can go, and leaves it: a driver takes it up later
 * (core.drive, or a task's await). What the pager's prefetch uses. */
static int core_send(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  double wait = 0;
  lua_settop(L, 1);
  r->driver = FX_D_DETACHED;
  if (fx_call_next(L, 1, &wait) == FX_N_SEND) {
    fx_loop *lp = fx_loop_get(L);
    loop_send(L, lp, 1, 0);
    perform(L, lp); /* on a kept-alive connection this writes the request now */
  }
  lua_settop(L, 1);
  return 0;
}

/* core.drive(call) -> its result: the blocking driver, for a call started elsewhere. */
static int core_drive(lua_State *L)
{
  (void)fx_call_at(L, 1);
  lua_settop(L, 1);
  return fx_drive_blocking(L, 1);
}

/* core.loop_perform(max_new) -> calls, in_flight: hands at most max_new queued transfers to
 * libcurl (all by default), moves every transfer on, and returns the task calls whose transfer
 * ended (their tasks are to be resumed) and the number in flight or queued. */
static int core_loop_perform(lua_State *L)
{
  fx_loop *lp = fx_loop_get(L);
  admit(L, lp, (int)luaL_optinteger(L, 1, -1));
  perform(L, lp);
  push_loop_field(L, "ready");
  lua_getfield(L, LUA_REGISTRYINDEX, LOOP_KEY);
  fx_getuservalue(L, -1);
  lua_newtable(L);
  lua_setfield(L, -2, "ready");
  lua_pop(L, 2);
  lua_pushinteger(L, lp->nflight + lp->nqueued);
  return 2;
}

/* core.loop_wait(seconds): waits for activity on the transfers, or libcurl's own timers, at
 * most that long (and at most until a transfer in flight would count as stalled). */
static int core_loop_wait(lua_State *L)
{
  fx_loop *lp = fx_loop_get(L);
  double s = luaL_checknumber(L, 1), stall = next_stall(lp);
  if (lp->nflight > 0 && stall < s) s = stall;
  if (lp->nflight == 0) return 0; /* nothing to wake for: the scheduler sleeps by itself */
  wait_for(lp, s);
  return 0;
}

static int core_loop_pending(lua_State *L)
{
  fx_loop *lp = fx_loop_get(L);
  lua_pushinteger(L, lp->nflight + lp->nqueued);
  return 1;
}

/* core.task_registry() -> the weak table coroutine -> task the scheduler fills; a client call
 * made in one of those coroutines returns its call for the Lua driver instead of blocking. */
static int core_task_registry(lua_State *L)
{
  lua_getfield(L, LUA_REGISTRYINDEX, FX_TASKS_KEY);
  return 1;
}

static int core_set_pump(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, PUMP_KEY);
  return 0;
}

/* core.now() -> monotonic seconds; core.sleep(seconds): a plain sleep, for a scheduler with
 * nothing in flight to wait on. */
static int core_now(lua_State *L)
{
  lua_pushnumber(L, fx_now());
  return 1;
}

/* core.time(): the wall clock, epoch seconds with a fraction (for leases between processes) */
static int core_time(lua_State *L)
{
  lua_pushnumber(L, fx_wallclock());
  return 1;
}

/* core.keep_on_cancel(call): true for a token request on the wire. Cancelling its task must not
 * end it: its answer holds the only copy of the new tokens (see start_limit in fx.h). */
static int core_keep_on_cancel(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  lua_pushboolean(L, r->kind != FX_K_API && r->state == FX_S_FLIGHT && r->sends > 0);
  return 1;
}

static int core_sleep(lua_State *L)
{
  double s = luaL_checknumber(L, 1);
  struct timespec ts;
  if (!(s > 0)) return 0;
  if (s > 3600) s = 3600;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
  return 0;
}

static const luaL_Reg loop_functions[] = {
  {"now", core_now},                   {"sleep", core_sleep},
  {"send", core_send},                 {"drive", core_drive},
  {"advance", core_advance},           {"loop_perform", core_loop_perform},
  {"loop_wait", core_loop_wait},       {"loop_pending", core_loop_pending},
  {"task_registry", core_task_registry}, {"set_pump", core_set_pump},
  {"time", core_time},                 {"keep_on_cancel", core_keep_on_cancel},
  {NULL, NULL}
};

void flextell_loop_open(lua_State *L)
{
  luaL_newmetatable(L, FX_LOOP_MT);
  lua_pushcfunction(L, loop_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, FX_TASKS_KEY);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, FX_TASKS_KEY);
  } else {
    lua_pop(L, 1);
  }
  luaL_setfuncs(L, loop_functions, 0);
}
