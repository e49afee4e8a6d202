/* Token stores: one grant shared by many holders (processes, nginx workers, machines). Flextell
 * rotates refresh tokens and revokes the whole grant when a used one comes back, so two holders
 * must never spend the same refresh token. A token call of a client with a `token_store` runs
 * these steps around its request; each is a hook the driver runs (a store is Lua: a method may
 * block for a round trip, or yield under a driver that can), and each result comes back here:
 *
 *   refresh:  peek ──> lock ──busy──> WAIT ──> lock ... ──> reload ──> send ──> save ──> unlock
 *              │ newer tokens there: adopt them, done        │ newer tokens there: adopt, unlock, done
 *   exchange: lock ──> reload (for the version) ──> send ──> save ──> unlock
 *
 * peek and reload are store:load(); "newer" means another version than this client last saw,
 * holding another access token that is not about to expire. save is a compare-and-set on the
 * version reloaded under the lock. A failed refresh never saves: the store keeps what it had.
 * The lock's ttl covers the whole refresh (the refresh's deadline is set from it), so it cannot
 * expire under a slow refresh; a lock a dead holder left expires (or, for a file, the kernel
 * drops it). The store and the version this client family last saw live in the client's user
 * value (token_store, token_store_version); the lock held in the call's (lock). */
#include <string.h>
#include "fx.h"

/* the longest a refresh may run once it holds the lock (or its attempt's timeout and a second,
 * when shorter), and what the lock's ttl adds to it */
#define FX_STORE_REFRESH_S 30.0
#define FX_STORE_TTL_MARGIN 2.0
#define FX_STORE_RETRY_MIN 0.02 /* seconds between tries of a busy lock, doubling... */
#define FX_STORE_RETRY_MAX 0.2  /* ...up to this */

static const char *const op_names[] = {"", "load", "lock", "save", "unlock", "rate_reserve", "rate_note",
                                       "rate_release"};

const char *fx_store_op_name(int op)
{
  return op > 0 && op <= FX_ST_RATE_RELEASE ? op_names[op] : "?";
}

/* Pushes the client's user value (its hooks table: on_token, on_retry, token_store...). */
static void push_family(lua_State *L, int idx)
{
  fx_call_uv_get(L, idx, "client");
  fx_getuservalue(L, -1);
  lua_remove(L, -2);
}

static void family_set(lua_State *L, int idx, const char *k) /* pops the value */
{
  push_family(L, idx);
  lua_insert(L, -2);
  lua_setfield(L, -2, k);
  lua_pop(L, 1);
}

static int family_get(lua_State *L, int idx, const char *k) /* pushes it, returns its type */
{
  push_family(L, idx);
  lua_getfield(L, -1, k);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

/* ---- the steps -------------------------------------------------------------------------------- */

int fx_store_start(lua_State *L, int idx, fx_call *r)
{
  double now = fx_now();
  (void)L;
  (void)idx;
  switch (r->sync) {
  case FX_SY_NONE:
    if (r->kind == FX_K_REFRESH && !r->forced) { /* maybe another holder refreshed already */
      r->sync = FX_SY_PEEK;
      fx_call_queue_store_hook(r, FX_ST_LOAD);
      r->after_hook = FX_S_START;
      return FX_S_HOOK;
    }
    r->sync = FX_SY_LOCK;
    /* fall through */
  case FX_SY_LOCK:
    if (r->kind == FX_K_REFRESH && !fx_oauth_can_refresh(r->shared)) { /* nothing to spend */
      fx_fail f;
      if (r->shared->access_token == NULL)
        fx_fail_set(&f, "auth", "reauth_required",
                    "the client has no access token: authorize first (client:authorize_url, client:exchange_code)");
      else
        fx_fail_set(&f, "usage", "no_refresh_token", "cannot refresh: the client has no refresh_token and client_id");
      fx_call_end(r, &f);
      return FX_S_DONE;
    }
    if (r->lock_limit <= 0) { /* a live holder ends within its ttl, a dead one's lock expires */
      r->lock_since = now;
      r->lock_limit = r->start_limit > 0 ? r->start_limit
                                         : now + FX_STORE_REFRESH_S + FX_STORE_TTL_MARGIN + 1;
    }
    /* once locked the refresh must end before the lock's ttl does */
    r->lock_until = now + (r->pol.timeout + 1 < FX_STORE_REFRESH_S ? r->pol.timeout + 1 : FX_STORE_REFRESH_S);
    r->sync = FX_SY_LOCKING;
    fx_call_queue_store_hook(r, FX_ST_LOCK);
    r->after_hook = FX_S_START;
    return FX_S_HOOK;
  default: /* FX_SY_GO */
    return FX_S_READY;
  }
}

int fx_store_push_hook(lua_State *L, int idx, fx_call *r, int op)
{
  if (op == FX_ST_UNLOCK) {
    if (fx_call_uv_get(L, idx, "lock") == LUA_TNIL) {
      lua_pop(L, 1);
      r->locked = 0;
      return 0;
    }
    lua_getfield(L, -1, "unlock");
    lua_insert(L, -2);
    return 1;
  }
  family_get(L, idx, "token_store");
  lua_getfield(L, -1, fx_store_op_name(op));
  lua_insert(L, -2); /* method, store */
  switch (op) {
  case FX_ST_LOCK: {
    double now = fx_now();
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, r->lock_until - now + FX_STORE_TTL_MARGIN);
    lua_setfield(L, -2, "ttl");
    lua_pushnumber(L, r->lock_limit > now ? r->lock_limit - now : 0);
    lua_setfield(L, -2, "wait");
    return 2;
  }
  case FX_ST_SAVE:
    fx_oauth_push_tokens(L, r->shared);
    family_get(L, idx, "token_store_version");
    return 3;
  case FX_ST_RATE_NOTE: /* limit, remaining, reset (epoch seconds) of the answer */
    lua_pushinteger(L, (lua_Integer)r->rl_limit);
    lua_pushinteger(L, (lua_Integer)r->rl_remaining);
    lua_pushinteger(L, (lua_Integer)r->rl_reset);
    return 4;
  default: /* FX_ST_LOAD, FX_ST_RATE_RESERVE, FX_ST_RATE_RELEASE */
    return 1;
  }
}

/* The store failed (it raised, or answered nil, err): the call ends with auth token_store_error;
 * a lock it holds is given back first. */
static void store_failed(lua_State *L, int idx, fx_call *r, int op, int ok, int first)
{
  fx_fail f;
  const char *why = NULL;
  (void)idx;
  if (!ok) {
    why = lua_tostring(L, first);
  } else if (lua_istable(L, first + 1)) {
    lua_getfield(L, first + 1, "message");
    why = lua_tostring(L, -1);
  } else if (lua_type(L, first + 1) == LUA_TSTRING) {
    why = lua_tostring(L, first + 1);
  }
  if (ok && op == FX_ST_LOAD && (lua_istable(L, first) || lua_type(L, first + 1) == LUA_TNUMBER))
    why = lua_type(L, first) != LUA_TTABLE && !lua_isnil(L, first)
              ? "load() returned tokens that are not a table"
              : "load() returned a version that is not an integer >= 0";
  if (ok && why == NULL)
    why = op == FX_ST_LOAD ? "load() did not return tokens and a version (an integer)"
                           : "it answered neither a lock nor nil, \"busy\"";
  fx_fail_set(&f, "auth", "token_store_error", "the token store failed to %s: %s", fx_store_op_name(op),
              why ? why : "(an error that is not a string)");
  fx_call_end(r, &f);
}

/* A lock: a table or userdata whose unlock is a function. */
static int is_lock(lua_State *L, int i)
{
  int ok;
  if (lua_type(L, i) == LUA_TUSERDATA) {
    if (!luaL_getmetafield(L, i, "__index")) return 0;
    lua_pop(L, 1);
  } else if (lua_type(L, i) != LUA_TTABLE) {
    return 0;
  }
  lua_getfield(L, i, "unlock");
  ok = lua_type(L, -1) == LUA_TFUNCTION;
  lua_pop(L, 1);
  return ok;
}

static int is_version(lua_State *L, int i)
{
  lua_Number v;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  v = lua_tonumber(L, i);
  return v >= 0 && v == (lua_Number)(long long)v && v < 9007199254740992.0;
}

/* After a load: the version seen, and the tokens adopted when they are another holder's. Returns
 * 1 when the access token changed to one that is not about to expire (no refresh needed). */
static int took_newer(lua_State *L, int idx, fx_call *r, int first)
{
  fx_shared *S = r->shared;
  int same, changed;
  family_get(L, idx, "token_store_version");
  same = lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == lua_tonumber(L, first + 1);
  lua_pop(L, 1);
  if (same) return 0;
  lua_pushvalue(L, first + 1);
  family_set(L, idx, "token_store_version");
  if (r->kind != FX_K_REFRESH || !lua_istable(L, first)) return 0; /* an exchange replaces them */
  changed = fx_oauth_adopt(L, S, first);
  if (changed < 0) return changed;
  fx_call_queue_token_hook(r); /* on_token hears of every change, whoever made it */
  return changed && S->access_token != NULL &&
         !fx_decide_refresh_ahead(1, fx_oauth_can_refresh(S), S->expires_at, S->refresh_margin,
                                  fx_wallclock());
}

/* A refresh that took another holder's tokens: done without a request of its own. */
static void done_adopted(fx_call *r)
{
  fx_shared *S = r->shared;
  r->adopted = 1;
  if (r->holds_refresh) {
    r->holds_refresh = 0;
    S->refreshing = 0;
    S->refresh_gen++;
    S->refresh_failed = 0;
  }
  r->after_hook = FX_S_DONE;
}

/* A store method that ran out of memory raised "not enough memory" (Lua's own error, or the
 * core's from a C function it called): that raises here too, as running out does everywhere. */
static int ran_out(lua_State *L, int ok, int first)
{
  const char *m;
  if (ok || lua_type(L, first) != LUA_TSTRING) return 0;
  m = lua_tostring(L, first);
  return strstr(m, "not enough memory") != NULL;
}

void fx_store_hooked(lua_State *L, int idx, fx_call *r, int op, int ok, int first)
{
  int top = lua_gettop(L);
  idx = fx_absindex(L, idx);
  if (first <= top && ran_out(L, ok, first)) {
    fx_fail f;
    fx_fail_set(&f, "usage", "out_of_memory", "not enough memory");
    fx_call_end(r, &f);
    r->raise_oom = 1;
    luaL_error(L, "not enough memory");
  }
  if (first > top) { /* no results: as if it returned nil */
    lua_pushnil(L);
    first = lua_gettop(L);
  }
  lua_settop(L, first + 1 > top ? first + 1 : top);
  switch (op) {
  case FX_ST_LOAD: {
    int newer;
    if (!ok || !is_version(L, first + 1) || !(lua_isnoneornil(L, first) || lua_istable(L, first))) {
      store_failed(L, idx, r, op, ok, first);
      break;
    }
    newer = took_newer(L, idx, r, first);
    if (newer < 0) {
      fx_fail f;
      fx_fail_set(&f, "auth", "token_store_error", "%s", fx_oauth_adopt_problem(newer));
      fx_call_end(r, &f);
      break;
    }
    if (r->sync == FX_SY_PEEK) {
      if (newer) {
        done_adopted(r);
      } else {
        r->sync = FX_SY_LOCK;
      }
    } else { /* FX_SY_RELOAD, under the lock */
      if (newer && !r->forced) {
        done_adopted(r);
        fx_call_queue_store_hook(r, FX_ST_UNLOCK);
      } else {
        fx_fail f;
        if (r->kind == FX_K_REFRESH && fx_oauth_refresh_body(L, r, &f) != 0) {
          fx_call_end(r, &f);
          break;
        }
        r->sync = FX_SY_GO;
        r->pol.deadline = r->lock_until; /* its own bound: within the lock's ttl */
      }
    }
    break;
  }
  case FX_ST_LOCK:
    if (ok && lua_toboolean(L, first) && !is_lock(L, first)) {
      fx_fail f;
      fx_fail_set(&f, "auth", "token_store_error",
                  "the token store failed to lock: lock() returned %s, neither a lock (with an unlock "
                  "method) nor nil, \"busy\"", luaL_typename(L, first));
      fx_call_end(r, &f);
    } else if (ok && lua_toboolean(L, first)) {
      lua_pushvalue(L, first);
      fx_call_uv_set(L, idx, "lock");
      r->locked = 1;
      r->sync = FX_SY_RELOAD;
      fx_call_queue_store_hook(r, FX_ST_LOAD);
    } else if (ok && lua_isnil(L, first) && lua_type(L, first + 1) == LUA_TSTRING &&
               strcmp(lua_tostring(L, first + 1), "busy") == 0) {
      double now = fx_now();
      r->lock_delay = r->lock_delay <= 0 ? FX_STORE_RETRY_MIN : r->lock_delay * 2;
      if (r->lock_delay > FX_STORE_RETRY_MAX) r->lock_delay = FX_STORE_RETRY_MAX;
      if (now + r->lock_delay >= r->lock_limit) {
        fx_fail f;
        fx_fail_set(&f, "auth", "token_store_busy",
                    "another holder of the grant held the token store's lock for all %.1f s this "
                    "refresh could wait (%s)",
                    now - r->lock_since, r->start_limit > 0 ? "the call's deadline" : "a refresh's longest hold");
        fx_call_end(r, &f);
        break;
      }
      r->wake_at = now + r->lock_delay;
      r->sync = FX_SY_LOCK;
      r->after_hook = FX_S_WAIT;
    } else {
      store_failed(L, idx, r, op, ok, first);
    }
    break;
  case FX_ST_SAVE:
    if (ok && lua_type(L, first) == LUA_TBOOLEAN && lua_toboolean(L, first) && is_version(L, first + 1)) {
      lua_pushvalue(L, first + 1);
      family_set(L, idx, "token_store_version");
    } else if (ok && lua_type(L, first) == LUA_TBOOLEAN && lua_toboolean(L, first)) {
      fx_fail f;
      lua_pushnil(L); /* unknown: the next load takes what is there */
      family_set(L, idx, "token_store_version");
      fx_fail_set(&f, "auth", "token_store_error",
                  "the token store's save() answered true without the new version (an integer >= 0)");
      fx_error_push(L, &f, NULL);
      fx_call_uv_set(L, idx, "err");
      r->token_failed = 1;
    } else if (ok && lua_type(L, first) == LUA_TBOOLEAN) {
      /* another holder saved since the reload: the lock's ttl ran out under this refresh, and
       * the grant may be lost. Its tokens are not overwritten; this client keeps its own. */
      fx_fail f;
      lua_pushnil(L);
      family_set(L, idx, "token_store_version");
      fx_fail_set(&f, "auth", "token_store_error",
                  "another holder saved tokens while this refresh held the store's lock (its ttl ran "
                  "out); the new tokens were not saved, this client keeps them");
      fx_error_push(L, &f, NULL);
      fx_call_uv_set(L, idx, "err");
      r->token_failed = 1;
    } else if (ok && !(lua_isnoneornil(L, first))) {
      fx_fail f;
      fx_fail_set(&f, "auth", "token_store_error",
                  "the new tokens could not be saved in the token store (this client keeps them): "
                  "save() answered %s, not true, false or nil, err", luaL_typename(L, first));
      fx_error_push(L, &f, NULL);
      fx_call_uv_set(L, idx, "err");
      r->token_failed = 1;
    } else {
      /* the tokens are new and in memory, but the other holders cannot see them: say so */
      const char *why;
      if (!ok) {
        why = lua_tostring(L, first);
      } else if (lua_istable(L, first + 1)) {
        lua_getfield(L, first + 1, "message");
        why = lua_tostring(L, -1);
      } else {
        why = lua_tostring(L, first + 1);
      }
      fx_fail f;
      fx_fail_set(&f, "auth", "token_store_error",
                  "the new tokens could not be saved in the token store (this client keeps them): %s",
                  why ? why : "(an error that is not a string)");
      fx_error_push(L, &f, NULL);
      fx_call_uv_set(L, idx, "err");
      r->token_failed = 1;
    }
    break;
  case FX_ST_RATE_RESERVE:
    if (ok && lua_toboolean(L, first)) { /* a slot of the shared window: send */
      r->paced_slot = 2;
    } else if (ok && lua_type(L, first) == LUA_TBOOLEAN && lua_type(L, first + 1) == LUA_TNUMBER) {
      double now = fx_now(), wait = lua_tonumber(L, first + 1);
      if (wait < 0.005) wait = 0.005;
      if (r->pol.deadline > 0 ? now + wait >= r->pol.deadline : wait > r->pol.timeout) {
        fx_fail f;
        fx_fail_set(&f, "limit", "rate_limit_exceeded",
                    "the rate limit is used up until the window resets in %.0f s (not sent)", wait);
        f.retry_after = wait;
        fx_call_end(r, &f);
        break;
      }
      r->wake_at = now + wait;
      r->after_hook = FX_S_WAIT;
    } else {
      store_failed(L, idx, r, op, ok, first);
    }
    break;
  case FX_ST_RATE_NOTE:
  case FX_ST_RATE_RELEASE: /* a failure leaves the shared count of calls in flight one too high */
    break;
  default: /* FX_ST_UNLOCK: a failure to unlock leaves the lock to its expiry */
    lua_pushnil(L);
    fx_call_uv_set(L, idx, "lock");
    r->locked = 0;
    break;
  }
  lua_settop(L, top);
}
