/* flextell-host: an application that embeds Lua 5.4 and the flextell C core, and drives API
 * calls from its own frame loop, the way a game or an interactive app would.
 *
 * Usage: flextell-host LUA_DIR [BASE_URL [TOKEN]]
 *   LUA_DIR   the directory holding flextell/init.lua (the project's lua/ directory)
 *   BASE_URL  the API root, default $FLEXTELL_SANDBOX_URL
 *   TOKEN     a static access token, default $FLEXTELL_SANDBOX_TOKEN
 *
 * The Lua side spawns NCALLS tasks, each doing one GET. Inside a task a client call does not
 * block: it yields while its request is in flight. The frame loop below gives the scheduler a
 * small slice of every frame (flextell.step with a 2 ms budget) and sleeps the rest, so the
 * frame rate holds however slow the server is. It prints one line of figures and exits 0 when
 * every call returned the record it asked for, 1 when a check failed, 2 on bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* The core is compiled into this program (every .c file of src/), so there is no
 * flextell/core.so to find: its opener, defined in src/core.c, is registered by hand below. */
int luaopen_flextell_core(lua_State *L);

#define NCALLS 50
#define FRAME_NS 16666667L          /* 60 frames per second */
#define STEP_BUDGET 0.002           /* seconds of each frame the API calls may take */
#define MAX_FRAMES (60 * 30)        /* give up after 30 s: something is wrong */

/* Runs once before the first frame. It receives the base URL and the token, makes a client and
 * spawns the tasks, and returns the module (whose step the frame loop calls) and a function
 * that reports the outcome once every task has ended. max_concurrency lets all the requests be
 * in flight at once (the default is 16). Each task checks its own answer: the record's id must
 * be the one asked for. */
static const char setup_chunk[] =
  "local base_url, token, ncalls = ...\n"
  "local flextell = require 'flextell'\n"
  "local client = flextell.new { base_url = base_url, token = token, max_concurrency = ncalls }\n"
  "local outcome = {}\n"
  "for i = 1, ncalls do\n"
  "  local n = (i - 1) % 45 + 1 -- the sandbox has customers 1..45\n"
  "  flextell.spawn(function()\n"
  "    local data, err = client:get('/v1/customers/' .. n)\n"
  "    if not data then\n"
  "      outcome[i] = 'call ' .. i .. ': ' .. tostring(err)\n"
  "    elseif data.id ~= n then\n"
  "      outcome[i] = 'call ' .. i .. ': asked for customer ' .. n .. ', got id ' .. tostring(data.id)\n"
  "    else\n"
  "      outcome[i] = true\n"
  "    end\n"
  "  end)\n"
  "end\n"
  "-- returns how many calls succeeded, and the first failure (or nil)\n"
  "local function report()\n"
  "  local ok, first = 0, nil\n"
  "  for i = 1, ncalls do\n"
  "    if outcome[i] == true then\n"
  "      ok = ok + 1\n"
  "    elseif not first then\n"
  "      first = outcome[i] or ('call ' .. i .. ': no result')\n"
  "    end\n"
  "  end\n"
  "  return ok, first\n"
  "end\n"
  "return flextell, report\n";

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
  return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void add_ns(struct timespec *t, long ns)
{
  t->tv_nsec += ns;
  while (t->tv_nsec >= 1000000000L) {
    t->tv_nsec -= 1000000000L;
    t->tv_sec++;
  }
}

static int compare_doubles(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The p-th percentile of a sorted sample, by nearest rank (p = 0.5: the median). With fewer
 * than 100 frames the 99th percentile is the worst frame. */
static double percentile(const double *sorted, int n, double p)
{
  int rank = (int)ceil(p * n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return sorted[rank - 1];
}

/* A message handler for lua_pcall: adds a traceback to errors raised as strings. */
static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int main(int argc, char **argv)
{
  static double step_ms[MAX_FRAMES]; /* wall time inside each step call */
  const char *lua_dir, *base_url, *token, *failure;
  struct timespec start, end, next_frame;
  int frames = 0, left = NCALLS, completed, status = 0;
  lua_State *L;

  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s LUA_DIR [BASE_URL [TOKEN]]\n", argv[0]);
    return 2;
  }
  lua_dir = argv[1];
  base_url = argc > 2 ? argv[2] : getenv("FLEXTELL_SANDBOX_URL");
  token = argc > 3 ? argv[3] : getenv("FLEXTELL_SANDBOX_TOKEN");
  if (base_url == NULL || token == NULL) {
    fprintf(stderr, "%s: give BASE_URL and TOKEN, or set FLEXTELL_SANDBOX_URL and "
            "FLEXTELL_SANDBOX_TOKEN (eval \"$(bin/flextell-sandbox start)\")\n", argv[0]);
    return 2;
  }

  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "flextell-host: cannot create a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);

  /* Put the core in package.loaded, as if a flextell/core.so had been required: the Lua layer's
   * require "flextell.core" then finds it without searching. */
  luaL_requiref(L, "flextell.core", luaopen_flextell_core, 0);
  lua_pop(L, 1);

  /* The Lua layer comes from LUA_DIR, and only from there: no stray installed copy can shadow
   * it, and no C module is looked for anywhere. */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, "");
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);

  /* Stack from here on: 1 traceback, 2 the flextell module, 3 report. */
  lua_pushcfunction(L, traceback);
  if (luaL_loadbuffer(L, setup_chunk, sizeof setup_chunk - 1, "=setup") != LUA_OK) {
    fprintf(stderr, "flextell-host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_pushstring(L, base_url);
  lua_pushstring(L, token);
  lua_pushinteger(L, NCALLS);
  if (lua_pcall(L, 3, 2, 1) != LUA_OK) {
    fprintf(stderr, "flextell-host: setup: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }

  /* The frame loop. A real application would update and draw here; this one only steps the
   * scheduler, and times the step, because that is what the calls cost the frame. Frames are
   * paced on absolute deadlines, so the time spent working is not added to the sleep. */
  clock_gettime(CLOCK_MONOTONIC, &start);
  next_frame = start;
  while (left > 0) {
    struct timespec t0, t1;
    if (frames == MAX_FRAMES) {
      fprintf(stderr, "flextell-host: %d calls still running after %d frames\n", left, frames);
      status = 1;
      break;
    }
    lua_getfield(L, 2, "step");
    lua_pushnumber(L, STEP_BUDGET);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
      fprintf(stderr, "flextell-host: step: %s\n", lua_tostring(L, -1));
      status = 1;
      break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    left = (int)lua_tointeger(L, -1); /* the number of tasks still running */
    lua_pop(L, 1);
    step_ms[frames++] = seconds_between(&t0, &t1) * 1000.0;
    if (left == 0) break; /* done: no need to wait for the next frame */

    add_ns(&next_frame, FRAME_NS);
    if (seconds_between(&t1, &next_frame) > 0) {
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next_frame, NULL) == EINTR) {
      }
    } else {
      next_frame = t1; /* a frame overran: start the next one now rather than catch up */
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);

  /* Every task has ended: ask the Lua side how the calls went. */
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 0, 2, 1) != LUA_OK) {
    fprintf(stderr, "flextell-host: report: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  completed = (int)lua_tointeger(L, -2);
  failure = lua_tostring(L, -1);
  if (failure != NULL) {
    fprintf(stderr, "flextell-host: %s\n", failure);
    status = 1;
  }
  if (completed != NCALLS) status = 1;

  if (frames > 0) {
    qsort(step_ms, (size_t)frames, sizeof step_ms[0], compare_doubles);
    printf("flextell-host: frames %d, calls %d/%d, total %.3f s, step ms per frame: "
           "median %.3f, p99 %.3f, worst %.3f\n",
           frames, completed, NCALLS, seconds_between(&start, &end),
           percentile(step_ms, frames, 0.5), percentile(step_ms, frames, 0.99),
           step_ms[frames - 1]);
  }
  lua_close(L);
  return status;
}
