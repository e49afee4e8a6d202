/* flextell.Call: one call as an explicit state machine. It never loops or waits by itself; a
 * driver asks "what next?" and does it:
 *
 *   START ──> READY ──> SEND ──(driver)──> FLIGHT ──> answered/failed ──> decide
 *     ^  │       │                                                         │
 *     │  │       └─> WAIT (rate-limit window) / HOLD (slot, first answer)   ├─> HOOK (on_retry) ─> WAIT ─> START
 *     │  └─> REFRESH (a child token call) / HOLD (another call's refresh)  ├─> START (401: refresh, replay)
 *     └──────────────────────────────────────────────────────────────────  └─> DONE (data, meta, res | nil, err)
 *
 * prepare is request.c, finish response.c, the decisions decide.c; the drivers are loop.c (the
 * blocking one and the C half of tasks, over libcurl) and any Lua code using the public methods
 * (next, response, failed, hooked, result, cancel). A call's user value holds the Lua values it
 * needs later: its client (hooks, closed check), a child call, a token call's result. */

/***
The call object, for drivers of your own.
@module flextell
*/

/***
A call for a driver of your own, from `Client:start`.
The library's own drivers are the blocking one and the task scheduler; a driver of your own asks
the call what to do until it is done. Retries, waits, refreshes and errors are decided by the
call, the same as for the built-in drivers. The methods are also in `flextell.Call`.
@type Call
@usage local what, arg = call:next()
-- "send", request  -> put request on the wire, then call:response(status, headers, body)
--                     or call:failed(code, message, maybe_sent)
-- "wait", seconds  -> come back after that long (nil: soon, another call has to move first)
-- "refresh", child -> drive the child call (the token refresh) to its end, then go on
-- "hook", info     -> call:hooked(pcall(info.fn, unpack(info.args, 1, info.args.n)))
-- "done"           -> local data, meta, res = call:result()    (or nil, err)
*/
#include <stdlib.h>
#include <string.h>
#include "fx.h"
#include "json.h"

/* ---- the object ---------------------------------------------------------------------------- */

/* A call's userdata holds a pointer to its state, which lives outside Lua's heap: the state is
 * large (error texts, hooks), and Lua's collector paces its work by the bytes allocated in its
 * heap, so a state inside the userdata made each small call pay for a good share of a
 * collection. __gc frees the state, or keeps it for the next call of the client (S->spare). */
fx_call *fx_call_at(lua_State *L, int idx)
{
  fx_call *r = *(fx_call **)luaL_checkudata(L, idx, FX_CALL_MT);
  if (r == NULL) luaL_error(L, "the call was finalized");
  return r;
}

/* The call's user value table is pushed; fields: client, child, result, err. */
static void push_uv(lua_State *L, int idx)
{
  fx_getuservalue(L, idx);
}

void fx_call_uv_set(lua_State *L, int idx, const char *k) /* pops the value */
{
  idx = fx_absindex(L, idx);
  push_uv(L, idx);
  lua_insert(L, -2);
  lua_setfield(L, -2, k);
  lua_pop(L, 1);
}

int fx_call_uv_get(lua_State *L, int idx, const char *k) /* pushes the value, returns its type */
{
  push_uv(L, idx);
  lua_getfield(L, -1, k);
  lua_remove(L, -2);
  return lua_type(L, -1);
}

fx_call *fx_call_new(lua_State *L, int cidx, int kind)
{
  fx_client *c = fx_client_check(L, cidx);
  fx_shared *S = c->shared;
  fx_call *r;
  fx_call **box;
  cidx = fx_absindex(L, cidx);
  box = (fx_call **)fx_newuserdata(L, sizeof *box, 1);
  *box = NULL;
  luaL_setmetatable(L, FX_CALL_MT);
  r = S->nspare > 0 ? S->spare[--S->nspare] : (fx_call *)malloc(sizeof *r);
  if (r == NULL) luaL_error(L, "not enough memory");
  memset(r, 0, sizeof *r);
  *box = r;
  r->retry_after = -1;
  r->out.retry_after = -1;
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, cidx);
  lua_setfield(L, -2, "client");
  fx_setuservalue(L, -2);
  r->kind = kind;
  r->client = c;
  r->shared = S;
  S->refs++;
  /* each call its own jitter sequence, from the client's */
  S->rng ^= S->rng << 13;
  S->rng ^= S->rng >> 7;
  S->rng ^= S->rng << 17;
  r->prog.rng = S->rng | 1;
  r->ca_file = fx_strdup(c->ca_file);
  r->ca_path = fx_strdup(c->ca_path);
  r->proxy = fx_strdup(c->proxy);
  if ((c->ca_file && !r->ca_file) || (c->ca_path && !r->ca_path) || (c->proxy && !r->proxy))
    luaL_error(L, "not enough memory");
  r->allow_http = c->allow_http;
  r->write_max_idle = c->write_max_idle;
  r->max_response_bytes = c->max_response_bytes;
  r->max_concurrency = c->max_concurrency;
  return r;
}

/* An attempt ended: its concurrency slot and its slot of the rate-limit window are free. */
static void release_attempt(fx_call *r)
{
  fx_shared *S = r->shared;
  if (S == NULL) return;
  if (r->in_flight_slot) {
    r->in_flight_slot = 0;
    if (S->inflight > 0) S->inflight--;
  }
  if (r->paced_slot == 1) fx_window_answer(&S->window, 1);
  r->paced_slot = 0; /* the store's (2) is given back by a hook: fx_call_answered, fx_call_failed */
}

/* Gives back all the call holds of the shared state: the attempt's slots, and the refresh it is
 * (a refresh given up: the calls waiting for it start one of their own). */
void fx_call_release_slots(fx_call *r)
{
  fx_shared *S = r->shared;
  if (S == NULL) return;
  release_attempt(r);
  if (r->holds_refresh) {
    r->holds_refresh = 0;
    S->refreshing = 0;
    S->refresh_gen++;
    S->refresh_failed = 0; /* given up, not failed: a waiter starts a refresh of its own */
  }
}

static void queue_hook(fx_call *r, int which, int attempt, long status, double delay, const char *reason);

/* Ends the call with f. A call that holds a token store's lock gives it back first: one hook
 * (unlock) runs before it is done. */
void fx_call_end(fx_call *r, const fx_fail *f)
{
  fx_call_release_slots(r);
  r->fail = *f;
  /* cancelled, closed, interrupted, or out of time: could the server have it anyway? An earlier
   * attempt that may have been sent, or one on the wire now (written, as libcurl told, or in a
   * driver of the caller's own, which cannot tell) */
  if (r->state == FX_S_FLIGHT && (r->sends > 0 || r->driver == FX_D_NONE)) r->in_doubt = 1;
  if (r->fail.maybe_sent < 0) r->fail.maybe_sent = r->any_sent || r->in_doubt;
  r->ended = 1;
  r->nhooks = 0;
  r->state = FX_S_DONE;
  if (r->locked && r->in_doubt) {
    /* a token request that may have been processed, its answer lost: the refresh token in the
     * store may be spent. The lock is not given back: it expires by its ttl, so no other holder
     * presents that token while this request may still be on its way. */
    r->locked = 0;
  } else if (r->locked) {
    queue_hook(r, 2, 0, 0, 0, NULL);
    r->hooks[0].op = FX_ST_UNLOCK;
    r->after_hook = FX_S_DONE;
    r->state = FX_S_HOOK;
  }
}

static void end_with(fx_call *r, const char *kind, const char *code, const char *msg)
{
  fx_fail f;
  fx_fail_set(&f, kind, code, "%s", msg);
  fx_call_end(r, &f);
}

/* ---- hooks --------------------------------------------------------------------------------- */

static void queue_hook(fx_call *r, int which, int attempt, long status, double delay, const char *reason)
{
  fx_hook *h;
  if (r->nhooks >= (int)(sizeof r->hooks / sizeof r->hooks[0])) return;
  h = &r->hooks[r->nhooks++];
  h->which = which;
  h->attempt = attempt;
  h->status = status;
  h->delay = delay;
  h->op = 0;
  snprintf(h->reason, sizeof h->reason, "%s", reason ? reason : "");
}

void fx_call_queue_token_hook(fx_call *r)
{
  queue_hook(r, 1, 0, 0, 0, NULL);
}

void fx_call_queue_store_hook(fx_call *r, int op)
{
  int n = r->nhooks;
  queue_hook(r, 2, 0, 0, 0, NULL);
  if (r->nhooks > n) r->hooks[n].op = op;
}

static void pop_hook(fx_call *r)
{
  if (r->nhooks == 0) return;
  memmove(&r->hooks[0], &r->hooks[1], (size_t)(r->nhooks - 1) * sizeof r->hooks[0]);
  r->nhooks--;
}

static void push_seconds(lua_State *L, double s)
{
  if (s == (double)(long long)s && s < 9007199254740992.0)
    lua_pushinteger(L, (lua_Integer)s);
  else
    lua_pushnumber(L, s);
}

/* Pushes the hook function and its arguments for hooks[0] (r->hook_nargs of them); 0 (nothing
 * pushed) when the client has no such hook. The hooks table is the client's user value (shared
 * by with{} clients). */
static int push_hook(lua_State *L, int idx, fx_call *r)
{
  const fx_hook *h = &r->hooks[0];
  if (h->which == 2) {
    r->hook_nargs = fx_store_push_hook(L, idx, r, h->op);
    return r->hook_nargs > 0;
  }
  r->hook_nargs = 1;
  fx_call_uv_get(L, idx, "client");
  fx_getuservalue(L, -1);
  lua_remove(L, -2);
  lua_getfield(L, -1, h->which == 0 ? "on_retry" : "on_token");
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (h->which == 1) {
    fx_oauth_push_tokens(L, r->shared);
    return 1;
  }
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, h->attempt);
  lua_setfield(L, -2, "attempt");
  lua_pushstring(L, h->reason);
  lua_setfield(L, -2, "reason");
  push_seconds(L, h->delay);
  lua_setfield(L, -2, "delay");
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "url");
  if (h->status > 0) {
    lua_pushinteger(L, h->status);
    lua_setfield(L, -2, "status");
  }
  return 1;
}

void fx_call_hooked(lua_State *L, int idx, int ok, int err_idx)
{
  fx_call *r = fx_call_at(L, idx);
  int which, op;
  if (r->state != FX_S_HOOK || r->nhooks == 0) luaL_error(L, "the call is not waiting for a hook");
  which = r->hooks[0].which;
  op = r->hooks[0].op;
  pop_hook(r);
  r->hook_running = 0;
  if (which == 2) {
    fx_store_hooked(L, idx, r, op, ok, err_idx);
  } else if (!ok) {
    const char *m = lua_tostring(L, err_idx);
    fx_fail f;
    if (which == 0) {
      fx_fail_set(&f, "usage", "on_retry_error", "on_retry raised an error: %s", m ? m : "(not a string)");
      fx_call_end(r, &f);
    } else {
      /* the tokens in memory are the new ones: a retry works; the error is not swallowed */
      fx_fail_set(&f, "usage", "on_token_error", "on_token raised an error: %s",
                  m ? m : luaL_typename(L, err_idx));
      fx_error_push(L, &f, NULL);
      fx_call_uv_set(L, idx, "err");
      r->token_failed = 1; /* and the call that needed the refresh returns it too */
    }
  }
  if (r->state != FX_S_DONE && r->client->shared == NULL && !(r->kind != FX_K_API && r->locked)) {
    /* the hook closed the client (a token call holding the store's lock saves what it got) */
    fx_fail f;
    fx_fail_closed(&f);
    fx_call_end(r, &f);
  }
}

/* ---- answers ------------------------------------------------------------------------------- */

/* After an attempt: hooks, then the decision's state (a token call applies its result first).
 * Memory running out in here raises: raise_oom is set until it is done, so the call's result
 * raises too instead of reporting a half-made state. */
static void decide(lua_State *L, int idx, fx_call *r)
{
  fx_decision d;
  int next = FX_S_DONE;
  double now = fx_now();
  r->raise_oom = 1;
  r->pol.can_refresh = r->kind == FX_K_API && !r->no_auth && fx_oauth_can_refresh(r->shared);
  if (r->resent) /* libcurl sent it again on a new connection: on_retry hears of it */
    queue_hook(r, 0, r->attempts - 1, 0, 0,
               "connection closed without an answer; sent again on a new connection");
  fx_decide_after(&r->pol, &r->prog, &r->out, r->out.failure != FX_F_NONE ? r->detail : NULL, now, &d);
  switch (d.verdict) {
  case FX_V_RETRY:
    queue_hook(r, 0, r->attempts, r->status, d.delay, d.reason);
    r->wake_at = d.at;
    next = FX_S_WAIT;
    break;
  case FX_V_REPLAY:
    /* refresh unless another call already did since this one was sent */
    r->need_refresh = r->token_serial == r->shared->token_serial;
    next = FX_S_START;
    break;
  default:
    next = FX_S_DONE;
    break;
  }
  if (next == FX_S_DONE && r->kind != FX_K_API) fx_oauth_finish(L, idx); /* may queue on_token */
  r->state = r->nhooks > 0 ? FX_S_HOOK : next;
  r->after_hook = next;
  r->raise_oom = 0;
}

void fx_call_sent(fx_call *r)
{
  r->state = FX_S_FLIGHT;
}

void fx_call_answered(lua_State *L, int idx)
{
  fx_call *r = fx_call_at(L, idx);
  fx_shared *S = r->shared;
  if (r->state != FX_S_FLIGHT) return; /* cancelled or closed meanwhile */
  fx_note_response(r);
  if (r->paced_slot == 2) /* the store's window hears of the answer first */
    fx_call_queue_store_hook(r, r->rl_known ? FX_ST_RATE_NOTE : FX_ST_RATE_RELEASE);
  release_attempt(r);
  if (r->rl_known) fx_window_note(&S->window, r->rl_limit, r->rl_remaining, r->rl_reset);
  r->out.status = r->status;
  r->out.failure = FX_F_NONE;
  r->out.maybe_sent = 1;
  /* an answer that says the request was not carried out does not count (decide.c retries a
   * write after these too) */
  if (r->status != 401 && r->status != 429 && r->status != 503) r->any_sent = 1;
  r->in_doubt = 0;
  r->out.retry_after = r->retry_after;
  r->detail[0] = '\0';
  decide(L, fx_absindex(L, idx), r);
}

void fx_call_failed(lua_State *L, int idx, fx_failure fl, int maybe_sent, const char *detail)
{
  fx_call *r = fx_call_at(L, idx);
  if (r->state != FX_S_FLIGHT) return;
  if (r->paced_slot == 2) fx_call_queue_store_hook(r, FX_ST_RATE_RELEASE);
  release_attempt(r);
  r->status = 0;
  r->out.status = 0;
  r->out.failure = fl;
  r->out.maybe_sent = maybe_sent;
  if (maybe_sent) r->any_sent = 1;
  r->in_doubt = maybe_sent;
  r->out.retry_after = -1;
  r->retry_after = -1;
  snprintf(r->detail, sizeof r->detail, "%s", detail && *detail ? detail : fx_failure_code(fl));
  decide(L, fx_absindex(L, idx), r);
}

/* ---- what next ----------------------------------------------------------------------------- */

static int closed(fx_call *r)
{
  if (r->client->shared != NULL) return 0;
  if (r->kind != FX_K_API && r->any_sent && !r->ended && r->locked) return 0; /* save what it got */
  {
    fx_fail f;
    fx_fail_closed(&f);
    fx_call_end(r, &f);
  }
  return 1;
}

/* The deadline that ends the call now, if one has passed: its own, or for a token call its
 * caller's (start_limit), which never cuts a request on the wire. */
static int out_of_time(fx_call *r, double now)
{
  if (r->pol.deadline > 0 && now >= r->pol.deadline) return 1;
  return r->start_limit > 0 && now >= r->start_limit && r->state != FX_S_FLIGHT;
}

static const char *late_message(fx_call *r)
{
  return r->kind == FX_K_API ? "the call's deadline passed before it could be sent"
                             : "the call's deadline passed before the token request could be sent";
}

/* START for a call of the API: the token. Returns the next state, or -1 with a child pushed. */
static int start_api(lua_State *L, int idx, fx_call *r)
{
  fx_shared *S = r->shared;
  int can = fx_oauth_can_refresh(S);
  if (r->no_auth) return FX_S_READY;
  if (r->refresh_gen_seen != 0) { /* waited for another call's refresh */
    unsigned long seen = r->refresh_gen_seen - 1;
    r->refresh_gen_seen = 0;
    if (S->refresh_gen == seen + 1 && S->refresh_failed) {
      fx_call_end(r, &S->refresh_fail); /* its error is ours */
      return FX_S_DONE;
    }
  }
  if (r->need_refresh && r->token_serial != S->token_serial) r->need_refresh = 0; /* done since */
  /* with a token store, a client without tokens looks there first (another holder may have
   * authorized since) */
  if (S->has_store && S->access_token == NULL && S->client_id != NULL && !r->refreshed) can = 1;
  /* ahead of expiry once per call: a token that lives shorter than refresh_margin is used */
  if (can && (r->need_refresh || (S->access_token == NULL && !r->refreshed) ||
              (!r->refreshed && fx_decide_refresh_ahead(S->access_token != NULL, can, S->expires_at,
                                                        S->refresh_margin, fx_wallclock())))) {
    if (S->refreshing) {
      r->refresh_gen_seen = S->refresh_gen + 1; /* +1: 0 means "not waiting" */
      r->refreshed = 1;
      return FX_S_HOLD;
    }
    r->need_refresh = 0;
    lua_pushvalue(L, idx);
    fx_call_uv_get(L, idx, "client");
    {
      fx_call *child = fx_oauth_refresh_call(L, lua_gettop(L)); /* the client, then the child */
      /* the refresh is part of the call: the call's deadline ends it, except while its request
       * is on the wire (see start_limit) */
      if (r->pol.deadline > 0 && (child->start_limit <= 0 || child->start_limit > r->pol.deadline))
        child->start_limit = r->pol.deadline;
      /* a 401 after taking another holder's tokens: this refresh spends the newest token */
      if (r->adopt_used && r->need_refresh) child->forced = 1;
    }
    lua_remove(L, -2);
    lua_remove(L, -2);
    lua_pushvalue(L, -1);
    fx_call_uv_set(L, idx, "child");
    return -1;
  }
  if (S->access_token == NULL && S->client_id != NULL) {
    end_with(r, "auth", "reauth_required",
             "the client has no access token: authorize first (client:authorize_url, client:exchange_code)");
    return FX_S_DONE;
  }
  if (S->access_token != NULL && (r->token_serial != S->token_serial || !r->has_auth)) {
    fx_call_set_auth(L, r, S->access_token);
    r->token_serial = S->token_serial;
  }
  return FX_S_READY;
}

/* START for a token call: one refresh at a time per shared state, then the token store's steps. */
static int start_token(lua_State *L, int idx, fx_call *r)
{
  fx_shared *S = r->shared;
  if (r->kind != FX_K_REFRESH || r->holds_refresh) return S->has_store ? fx_store_start(L, idx, r) : FX_S_READY;
  if (r->refresh_gen_seen != 0) {
    unsigned long seen = r->refresh_gen_seen - 1;
    r->refresh_gen_seen = 0;
    if (S->refresh_gen == seen + 1) { /* another refresh ended while this one waited: its result */
      if (S->refresh_failed) {
        fx_call_end(r, &S->refresh_fail);
      } else {
        r->adopted = 1;
        r->state = FX_S_DONE;
      }
      return FX_S_DONE;
    }
  }
  if (S->refreshing) {
    r->refresh_gen_seen = S->refresh_gen + 1;
    return FX_S_HOLD;
  }
  S->refreshing = 1;
  r->holds_refresh = 1;
  return S->has_store ? fx_store_start(L, idx, r) : FX_S_READY;
}

/* READY: a concurrency slot, then a slot of the rate-limit window, then go. */
static int ready(fx_call *r, double *wait)
{
  fx_shared *S = r->shared;
  double now = fx_now();
  if (r->max_concurrency > 0 && S->inflight >= r->max_concurrency) return FX_S_HOLD;
  if (r->pol.pace && !r->paced_slot && S->store_rate && r->kind == FX_K_API) { /* the store's window */
    fx_call_queue_store_hook(r, FX_ST_RATE_RESERVE);
    r->after_hook = FX_S_READY;
    return FX_S_HOOK;
  }
  if (r->pol.pace && !r->paced_slot) {
    double at = 0, ra = 0;
    switch (fx_decide_pace(&r->pol, &S->window, now, fx_wallclock(), r->started, &at, &ra)) {
    case FX_G_SEND:
      r->paced_slot = 1;
      break;
    case FX_G_WAIT:
      r->wake_at = at;
      *wait = at - now;
      return FX_S_WAIT;
    case FX_G_HOLD:
      return FX_S_HOLD;
    default: { /* FX_G_REFUSE */
      fx_fail f;
      fx_fail_set(&f, "limit", "rate_limit_exceeded",
                  "the rate limit is used up until the window resets in %.0f s (not sent)", ra);
      f.retry_after = ra;
      fx_call_end(r, &f);
      return FX_S_DONE;
    }
    }
  }
  S->inflight++;
  r->in_flight_slot = 1;
  r->prog.tries++;
  r->attempts++;
  r->resent = 0;
  return FX_S_SEND;
}

int fx_call_next(lua_State *L, int idx, double *wait)
{
  fx_call *r;
  idx = fx_absindex(L, idx);
  r = fx_call_at(L, idx);
  *wait = 0;
  if (r->raise_oom) { /* memory ran out while it moved: nothing more to do but raise */
    fx_loop_detach(r);
    fx_call_release_slots(r);
    r->state = FX_S_DONE;
    return FX_N_DONE;
  }
  for (;;) {
    switch (r->state) {
    case FX_S_START: {
      int next;
      if (closed(r)) break;
      if (out_of_time(r, fx_now())) {
        end_with(r, "timeout", "timeout", late_message(r));
        break;
      }
      next = r->kind == FX_K_API ? start_api(L, idx, r) : start_token(L, idx, r);
      if (next < 0) {
        r->state = FX_S_REFRESH;
        return FX_N_REFRESH; /* the child is pushed */
      }
      if (!r->ended && r->state != FX_S_DONE) r->state = next;
      break;
    }
    case FX_S_READY: {
      int next;
      if (closed(r)) break;
      if (out_of_time(r, fx_now())) { /* held for a slot or the window */
        end_with(r, "timeout", "timeout", late_message(r));
        break;
      }
      next = ready(r, wait);
      if (r->ended || r->state == FX_S_DONE) break;
      r->state = next;
      if (next == FX_S_WAIT) return FX_N_WAIT;
      if (next == FX_S_HOLD) {
        r->hold_ready = 1;
        return FX_N_HOLD;
      }
      if (next == FX_S_SEND) return FX_N_SEND;
      break;
    }
    case FX_S_SEND:
      return FX_N_SEND;
    case FX_S_FLIGHT:
      return FX_N_FLIGHT;
    case FX_S_WAIT: {
      double now = fx_now();
      if (closed(r)) break;
      if (r->start_limit > 0 && now >= r->start_limit) {
        end_with(r, "timeout", "timeout", late_message(r));
        break;
      }
      if (now < r->wake_at) {
        *wait = r->wake_at - now;
        if (r->start_limit > 0 && r->start_limit - now < *wait) *wait = r->start_limit - now;
        return FX_N_WAIT;
      }
      r->state = FX_S_START; /* the token may have changed or expired meanwhile */
      break;
    }
    case FX_S_HOLD:
      if (closed(r)) break;
      if (out_of_time(r, fx_now())) { /* another call's refresh, a slot */
        end_with(r, "timeout", "timeout", late_message(r));
        break;
      }
      if (r->hold_ready) { /* held for a slot: READY asks again, and holds again if it must */
        r->hold_ready = 0;
        r->state = FX_S_READY;
        break;
      }
      if (r->shared->refreshing &&
          r->shared->refresh_gen + 1 == r->refresh_gen_seen) /* still the same refresh */
        return FX_N_HOLD;
      r->state = FX_S_START;
      break;
    case FX_S_REFRESH: {
      fx_call *child;
      if (fx_call_uv_get(L, idx, "child") != LUA_TUSERDATA) {
        lua_pop(L, 1);
        r->state = FX_S_START;
        break;
      }
      child = fx_call_at(L, -1);
      if (child->state != FX_S_DONE) return FX_N_REFRESH; /* the child is pushed */
      lua_pop(L, 1);
      if (child->raise_oom) { /* memory ran out in the refresh: this call raises too */
        r->raise_oom = 1;
        fx_call_release_slots(r);
        r->state = FX_S_DONE;
        break;
      }
      if ((child->ended || child->token_failed) && closed(r)) break; /* its own "closed" error */
      if (child->ended || child->token_failed) {
        r->by_child = 1; /* the refresh's error is the call's */
        fx_call_release_slots(r);
        r->state = FX_S_DONE;
        break;
      }
      if (child->adopted && !r->adopt_used) { /* another holder's tokens: if they draw a 401 */
        r->adopt_used = 1;                      /* too, one refresh of its own may follow */
        r->prog.replayed = 0;
      }
      lua_pushnil(L);
      fx_call_uv_set(L, idx, "child");
      r->refreshed = 1;
      r->state = FX_S_START;
      break;
    }
    case FX_S_HOOK:
      if (r->nhooks == 0) {
        r->state = r->after_hook;
        break;
      }
      if (push_hook(L, idx, r)) {
        r->hook_running = 1;
        return FX_N_HOOK; /* function and argument pushed */
      }
      pop_hook(r);
      break;
    default:
      return FX_N_DONE;
    }
  }
}

/* ---- results ------------------------------------------------------------------------------- */

int fx_call_result(lua_State *L, int idx)
{
  fx_call *r = fx_call_at(L, idx);
  idx = fx_absindex(L, idx);
  if (r->raise_oom) luaL_error(L, "not enough memory");
  if (r->state != FX_S_DONE) luaL_error(L, "the call is not done yet");
  if (r->by_child) { /* the token refresh before it failed: that error */
    fx_call_uv_get(L, idx, "child");
    return fx_call_result(L, lua_gettop(L));
  }
  if (r->ended) {
    long status = r->status;
    double ra = r->retry_after;
    r->status = r->fail.status;
    r->retry_after = r->fail.retry_after;
    fx_error_return(L, &r->fail, r);
    r->status = status;
    r->retry_after = ra;
    return 2;
  }
  if (r->kind != FX_K_API) {
    if (fx_call_uv_get(L, idx, "err") == LUA_TTABLE) {
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    lua_pop(L, 1);
    fx_oauth_push_tokens(L, r->shared);
    return 1;
  }
  return fx_finish(L, r);
}

/* ---- lifetime ------------------------------------------------------------------------------ */

void fx_call_start(fx_call *r)
{
  r->started = fx_now();
  if (r->pol.deadline > 0) r->pol.deadline += r->started; /* relative until now */
  r->state = FX_S_START;
}

static void call_free(fx_call *r)
{
  fx_loop_detach(r);
  fx_call_release_slots(r);
  if (r->easy != NULL) {
    if (r->mime != NULL) curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, NULL);
    fx_loop_release_easy(NULL, r->easy, 0);
    r->easy = NULL;
  }
  curl_mime_free(r->mime);
  r->mime = NULL;
  curl_slist_free_all(r->headers);
  r->headers = NULL;
  free(r->url);
  free(r->ca_file);
  free(r->ca_path);
  free(r->proxy);
  r->url = r->ca_file = r->ca_path = r->proxy = NULL;
  fx_buf_free(&r->body);
  fx_buf_free(&r->resp_body);
  fx_buf_free(&r->resp_headers);
  fx_buf_free(&r->scratch);
  if (r->shared != NULL) {
    fx_shared_release(r->shared);
    r->shared = NULL;
  }
}

static int call_gc(lua_State *L)
{
  fx_call **box = (fx_call **)luaL_checkudata(L, 1, FX_CALL_MT);
  fx_call *r = *box;
  fx_shared *S;
  if (r == NULL) return 0;
  *box = NULL;
  S = r->shared;
  if (S != NULL) S->refs++; /* call_free lets go of it: keep it for the spare */
  call_free(r);
  if (S != NULL && S->nspare < (int)(sizeof S->spare / sizeof S->spare[0])) {
    S->spare[S->nspare++] = r;
  } else {
    free(r);
  }
  if (S != NULL) fx_shared_release(S);
  return 0;
}

/* call:cancel(): ends the call now (usage error "cancelled"); its transfer is taken back from
 * libcurl. Idempotent; also __close. */
/***
Ends the call now (also `__close`): its result is a `usage` error, code `cancelled`.
@function Call:cancel
*/
static int call_cancel(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  lua_settop(L, 1);
  if (r->state != FX_S_DONE && r->shared != NULL) {
    fx_loop_detach(r);
    end_with(r, "usage", "cancelled", "the call was cancelled");
  }
  if (r->locked && !r->in_doubt) { /* give the token store's lock back now, not at its expiry */
    int base = lua_gettop(L);
    r->locked = 0;
    r->nhooks = 0;
    r->state = FX_S_DONE;
    if (fx_call_uv_get(L, 1, "lock") != LUA_TNIL) {
      lua_getfield(L, -1, "unlock");
      lua_insert(L, -2);
      if (lua_pcall(L, 1, 0, 0) == LUA_ERRMEM) lua_error(L);
    }
    lua_settop(L, base);
    lua_pushnil(L);
    fx_call_uv_set(L, 1, "lock");
  }
  return 0;
}

/* ---- the public driver API ------------------------------------------------------------------- */

static void set_num(lua_State *L, const char *k, double v)
{
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void set_string(lua_State *L, const char *k, const char *v)
{
  if (v == NULL) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

/* The request a driver puts on the wire: method, url, headers ("Name: value", the token in
 * clear: the driver sends it), body (a string) or multipart (the parts as given), and the
 * limits and trust settings that go with it. */
static void push_request(lua_State *L, int idx, fx_call *r)
{
  struct curl_slist *h;
  int i = 1;
  double left = fx_time_left(&r->pol, fx_now());
  lua_createtable(L, 0, 12);
  set_string(L, "method", r->method);
  set_string(L, "url", r->url);
  lua_newtable(L);
  for (h = r->headers; h != NULL; h = h->next) {
    size_t nlen = strcspn(h->data, ":;");
    if (h->data[nlen] == ':' && h->data[nlen + 1] == '\0') continue; /* only drops libcurl's own */
    if (h->data[nlen] == ';') {
      lua_pushlstring(L, h->data, nlen);
      lua_pushliteral(L, ":");
      lua_concat(L, 2);
    } else {
      lua_pushstring(L, h->data);
    }
    lua_rawseti(L, -2, i++);
  }
  lua_setfield(L, -2, "headers");
  if (r->has_body && r->mime == NULL) {
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_setfield(L, -2, "body");
  }
  if (fx_call_uv_get(L, idx, "multipart") == LUA_TTABLE)
    lua_setfield(L, -2, "multipart");
  else
    lua_pop(L, 1);
  set_num(L, "timeout", left < r->pol.timeout ? left : r->pol.timeout);
  set_num(L, "connect_timeout", r->connect_timeout);
  set_num(L, "stall_timeout", r->stall_timeout);
  set_num(L, "max_response_bytes", (double)r->max_response_bytes);
  lua_pushboolean(L, r->pol.idempotent);
  lua_setfield(L, -2, "idempotent");
  if (!r->pol.idempotent) set_num(L, "write_max_idle", r->write_max_idle);
  set_string(L, "ca_file", r->ca_file);
  set_string(L, "ca_path", r->ca_path);
  set_string(L, "proxy", r->proxy);
  if (r->direct) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "no_proxy");
  }
}

/* call:next() -> "send", request | "wait", seconds (nil: until other calls move) | "refresh",
 * child | "hook", { hook = "on_retry"|"on_token"|"token_store", op = store step, fn = f,
 * args = { n = k, ... }, arg = args[1] } | "done". The driver answers a hook with
 * call:hooked(pcall(fn, unpack(args, 1, args.n))). */
/***
What the driver is to do next.
@function Call:next
@treturn string what: `"send"`, `"wait"`, `"refresh"`, `"hook"` or `"done"`
@return arg: for `"send"` the request `{ method, url, headers = { "Name: value", ... }, body,
  multipart, timeout, connect_timeout, stall_timeout, max_response_bytes, idempotent,
  write_max_idle, ca_file, ca_path, proxy, no_proxy }` (the token is in it: the driver sends it);
  for `"wait"` seconds (nil: soon, another call has to move first); for `"refresh"` the child call
  (the token refresh) to drive to its end first; for `"hook"` `{ hook, op, fn, args }` (`hook`:
  `"on_retry"`, `"on_token"` or `"token_store"`, whose `op` is `"load"`, `"lock"`, `"save"` or
  `"unlock"`)
*/
static int call_next(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  double wait = 0;
  int what;
  lua_settop(L, 1);
  what = fx_call_next(L, 1, &wait);
  switch (what) {
  case FX_N_SEND:
    fx_call_sent(r); /* the driver has it now */
    lua_pushliteral(L, "send");
    push_request(L, 1, r);
    return 2;
  case FX_N_WAIT:
    lua_pushliteral(L, "wait");
    lua_pushnumber(L, wait);
    return 2;
  case FX_N_FLIGHT:
  case FX_N_HOLD:
    lua_pushliteral(L, "wait");
    return 1;
  case FX_N_REFRESH:
    lua_pushliteral(L, "refresh");
    lua_insert(L, -2);
    return 2;
  case FX_N_HOOK: { /* fn and its arguments on the stack */
    int n = r->hook_nargs, fn = lua_gettop(L) - n, i;
    const fx_hook *h = &r->hooks[0];
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, fn);
    lua_setfield(L, -2, "fn");
    lua_createtable(L, n, 1);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(L, fn + i);
      lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    lua_setfield(L, -2, "args");
    lua_pushvalue(L, fn + 1);
    lua_setfield(L, -2, "arg");
    lua_pushstring(L, h->which == 0 ? "on_retry" : h->which == 1 ? "on_token" : "token_store");
    lua_setfield(L, -2, "hook");
    if (h->which == 2) {
      lua_pushstring(L, fx_store_op_name(h->op));
      lua_setfield(L, -2, "op");
    }
    lua_pushliteral(L, "hook");
    lua_insert(L, -2);
    return 2;
  }
  default:
    lua_pushliteral(L, "done");
    return 1;
  }
}

/* call:response(status, headers, body): the driver's answer. headers is a table of name ->
 * value (a list of values for a repeated header) or the raw header block. */
/***
Reports the answer to the request of `"send"`.
@function Call:response
@tparam integer status the HTTP status
@tparam[opt] table|string headers `{ name = value | {values} }`, or the raw header block
@tparam[opt] string body the response body
@raise when the call is not waiting for an answer
*/
static int call_response(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  lua_Integer status = luaL_checkinteger(L, 2);
  size_t n;
  const char *body = luaL_optlstring(L, 4, "", &n);
  if (r->state != FX_S_FLIGHT && r->state != FX_S_SEND)
    return luaL_error(L, "call:response: the call is not waiting for an answer");
  if (status < 100 || status > 999) return luaL_argerror(L, 2, "an HTTP status (100..999) expected");
  fx_buf_clear(&r->resp_headers);
  fx_buf_clear(&r->resp_body);
  if (lua_type(L, 3) == LUA_TSTRING) {
    size_t hl;
    const char *h = lua_tolstring(L, 3, &hl);
    if (fx_buf_add(&r->resp_headers, h, hl) != 0) return luaL_error(L, "not enough memory");
  } else if (lua_istable(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      int v = lua_gettop(L), k = v - 1;
      if (lua_type(L, k) == LUA_TSTRING) {
        int j, many = lua_istable(L, v), count = many ? (int)lua_rawlen(L, v) : 1;
        for (j = 1; j <= count; j++) {
          if (many)
            lua_rawgeti(L, v, j);
          else
            lua_pushvalue(L, v);
          if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
            lua_pushfstring(L, "%s: %s\r\n", lua_tostring(L, k), lua_tostring(L, -1));
            if (fx_buf_adds(&r->resp_headers, lua_tostring(L, -1)) != 0) return luaL_error(L, "not enough memory");
            lua_pop(L, 1);
          }
          lua_pop(L, 1);
        }
      }
      lua_settop(L, k);
    }
  } else if (!lua_isnoneornil(L, 3)) {
    return luaL_argerror(L, 3, "a table of headers or the raw header block expected");
  }
  if (fx_buf_add(&r->resp_body, body, n) != 0) return luaL_error(L, "not enough memory");
  if (r->state == FX_S_SEND) fx_call_sent(r);
  r->status = (long)status;
  r->sends = 1;
  fx_call_answered(L, 1);
  return 0;
}

/* call:resent(): the driver sent an idempotent request a second time in this attempt (a
 * kept-alive connection closed before any answer): counted in attempts, on_retry is told. A
 * write may not be sent again: raises. Before response() or failed(). */
/***
Reports that an idempotent request went out a second time in this attempt.
(A kept-alive connection closed first.) Call it before `Call:response` or `Call:failed`: it is
counted in `attempts`, and `on_retry` is told.
@function Call:resent
@raise for a write (a POST or PATCH is never sent twice), or when the call is not waiting for an
  answer
*/
static int call_resent(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  if (r->state != FX_S_FLIGHT && r->state != FX_S_SEND)
    return luaL_error(L, "call:resent: the call is not waiting for an answer");
  if (!r->pol.idempotent) return luaL_error(L, "call:resent: a %s is never sent twice", r->method);
  r->resent = 1;
  r->attempts++;
  return 0;
}

/* call:failed(code, message, maybe_sent): no answer. code is one of the transport codes
 * (connect_failed, timeout, connection_reset...); maybe_sent defaults to true (the safe side). */
/***
Reports that the request of `"send"` got no answer.
@function Call:failed
@tparam string code `connect_failed`, `resolve_failed`, `connect_timeout`, `timeout`, `stalled`,
  `send_failed`, `connection_reset`, `empty_reply`, `truncated_body`, `bad_response`, `tls_error`,
  `tls_verify_failed`, `proxy_refused`...; a code the library does not know becomes `network`
  `transport_error`
@tparam[opt] string message what happened
@tparam[opt=true] boolean maybe_sent whether the request may have reached the server
@raise when the call is not waiting for an answer
*/
static int call_failed(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  const char *code = luaL_checkstring(L, 2);
  const char *msg = luaL_optstring(L, 3, NULL);
  int maybe_sent = lua_isnoneornil(L, 4) ? 1 : lua_toboolean(L, 4);
  if (r->state != FX_S_FLIGHT && r->state != FX_S_SEND)
    return luaL_error(L, "call:failed: the call is not waiting for an answer");
  if (r->state == FX_S_SEND) fx_call_sent(r);
  r->sends = maybe_sent;
  fx_call_failed(L, 1, fx_failure_from_code(code), maybe_sent, msg);
  return 0;
}

/* call:hooked(ok, err): the hook the call asked for ran (pcall's results). */
/***
Reports the outcome of the hook of `"hook"`: what `pcall(info.fn, ...)` returned.
@function Call:hooked
@tparam boolean ok whether the hook ran without raising
@param ... the hook's results, or its error
*/
static int call_hooked(lua_State *L)
{
  fx_call_hooked(L, 1, lua_toboolean(L, 2), 3);
  return 0;
}

/***
The call's result, once it is done.
@function Call:result
@treturn[1] table|true data
@treturn[1] table meta
@treturn[1] table res
@return[2] nil, err (a `flextell.Error`)
*/
static int call_result(lua_State *L)
{
  return fx_call_result(L, 1);
}

/***
Whether the call has ended.
@function Call:done
@treturn boolean
*/
static int call_done(lua_State *L)
{
  lua_pushboolean(L, fx_call_at(L, 1)->state == FX_S_DONE);
  return 1;
}

static int call_tostring(lua_State *L)
{
  fx_call *r = fx_call_at(L, 1);
  static const char *const names[] = {"start", "ready", "send", "flight", "wait", "hold",
                                      "refresh", "hook", "done"};
  lua_pushfstring(L, "flextell.Call %s %s (%s): %p", r->method, r->url ? r->url : "?",
                  names[r->state], (void *)r);
  return 1;
}

static const luaL_Reg call_methods[] = {
  {"next", call_next},     {"response", call_response}, {"failed", call_failed},
  {"hooked", call_hooked}, {"result", call_result},     {"cancel", call_cancel},
  {"resent", call_resent},
  {"done", call_done},     {NULL, NULL}
};

static const luaL_Reg call_metamethods[] = {
  {"__gc", call_gc}, {"__close", call_cancel}, {"__tostring", call_tostring}, {NULL, NULL}
};

void flextell_call_open(lua_State *L)
{
  luaL_newmetatable(L, FX_CALL_MT);
  luaL_setfuncs(L, call_metamethods, 0);
  luaL_newlib(L, call_methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__index");
  lua_setfield(L, -3, "Call"); /* module.Call: the methods, for the Lua layer */
  lua_pushstring(L, FX_CALL_MT);
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "call_mt"); /* to tell a call from other values */
}
