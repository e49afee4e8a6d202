/* Decide: retry, backoff, Retry-After, pacing, refresh-ahead and the deadline, over plain structs
 * (see decide.h). The rules are the API's guidance (flextell-api.md) and RFC 9110:
 * - idempotent methods retry on 429, 500, 502, 503, 504 and on transport failures;
 * - POST and PATCH retry only where the request was certainly not processed: 429, 503, and
 *   failures before any byte of it was written;
 * - never on other 4xx, TLS verification failures, limits, or a refused re-send;
 * - a 401 refreshes the token once and replays the call. */
#include <stdio.h>
#include <string.h>
#include "decide.h"

static const char *const codes[FX_F_COUNT] = {
  "",                 "resolve_failed", "connect_failed",   "connect_timeout", "timeout",
  "stalled",          "send_failed",    "connection_reset", "empty_reply",     "truncated_body",
  "bad_response",     "tls_verify_failed", "tls_error",     "tls_error",       "response_too_large",
  "headers_too_large", "proxy_refused", "empty_reply",      "cancelled",       "transport_error"};

const char *fx_failure_code(fx_failure f)
{
  return f > FX_F_NONE && f < FX_F_COUNT ? codes[f] : "transport_error";
}

fx_failure fx_failure_from_code(const char *code)
{
  int i;
  for (i = 1; i < FX_F_COUNT; i++)
    if (i != FX_F_RESEND_REFUSED && strcmp(codes[i], code) == 0) return (fx_failure)i;
  return FX_F_OTHER;
}

/* Failures that may pass when tried again. Before anything was written they are safe for every
 * method; after, only for idempotent ones. */
static int transient(fx_failure f, int maybe_sent)
{
  switch (f) {
  case FX_F_RESOLVE:
  case FX_F_CONNECT:
  case FX_F_CONNECT_TIMEOUT:
  case FX_F_TLS: /* a handshake cut short; a verification failure is FX_F_TLS_VERIFY */
  case FX_F_SEND:
  case FX_F_RESET:
    return 1;
  case FX_F_EMPTY:
  case FX_F_TRUNCATED:
  case FX_F_TIMEOUT:
  case FX_F_STALLED:
  case FX_F_BAD_RESPONSE:
    return maybe_sent; /* these only happen once the request went out */
  default:
    return 0;
  }
}

double fx_backoff(fx_progress *g)
{
  double cap = 0.25, u;
  int i;
  for (i = 1; i < g->tries && cap < 8; i++) cap *= 2;
  if (cap > 8) cap = 8;
  g->rng ^= g->rng << 13;
  g->rng ^= g->rng >> 7;
  g->rng ^= g->rng << 17;
  u = (double)(g->rng >> 11) / 9007199254740992.0;
  return cap * u;
}

double fx_time_left(const fx_policy *p, double now)
{
  double left;
  if (p->deadline <= 0) return 1e9;
  left = p->deadline - now;
  return left > 0 ? left : 0;
}

void fx_decide_after(const fx_policy *p, fx_progress *g, const fx_outcome *o, const char *detail,
                     double now, fx_decision *d)
{
  double delay;
  int retry = 0;
  d->verdict = FX_V_DONE;
  d->at = d->delay = 0;
  d->reason[0] = '\0';
  if (o->failure != FX_F_NONE) {
    if (transient(o->failure, o->maybe_sent) && (!o->maybe_sent || p->idempotent)) {
      retry = 1;
      snprintf(d->reason, sizeof d->reason, "%s%s", o->maybe_sent ? "" : "not sent: ",
               detail != NULL && *detail ? detail : fx_failure_code(o->failure));
    }
  } else if (o->status == 401) {
    if (p->can_refresh && !g->replayed) {
      g->replayed = 1;
      g->tries = 0; /* the replay has the whole retry budget again */
      d->verdict = FX_V_REPLAY;
    }
    return;
  } else if (o->status == 429 || o->status == 503 ||
             (p->idempotent && (o->status == 500 || o->status == 502 || o->status == 504))) {
    retry = 1;
    snprintf(d->reason, sizeof d->reason, "HTTP %ld", o->status);
  }
  if (!retry || g->tries > p->max_retries) return;
  delay = o->retry_after >= 0 ? o->retry_after : fx_backoff(g);
  /* a wait past the deadline (without one: longer than a whole attempt may take) is not slept
   * through: the caller gets the answer, with retry_after, and decides */
  if (p->deadline > 0 ? now + delay >= p->deadline : delay > p->timeout) {
    d->verdict = FX_V_GIVE_UP;
    return;
  }
  d->verdict = FX_V_RETRY;
  d->delay = delay;
  d->at = now + delay;
}

void fx_window_note(fx_window *w, long long limit, long long remaining, long long reset)
{
  /* answers arrive out of order: an older window never overwrites a newer one */
  if (w->known && reset < w->reset) return;
  if (w->known && reset == w->reset && remaining > w->remaining) return;
  w->known = 1;
  w->limit = limit;
  w->remaining = remaining;
  w->reset = reset;
}

void fx_window_answer(fx_window *w, int paced)
{
  if (paced && w->inflight > 0) w->inflight--;
}

fx_gate fx_decide_pace(const fx_policy *p, fx_window *w, double now, double wall, double started,
                       double *at, double *retry_after)
{
  long long room;
  double wait;
  (void)started;
  if (!w->known) {
    /* before the first answer nobody knows the window: one call finds out, the rest hold */
    if (w->inflight > 0) return FX_G_HOLD;
    w->inflight++;
    return FX_G_SEND;
  }
  /* answers in flight may or may not be counted in `remaining` yet: count them all */
  room = (wall >= (double)w->reset ? w->limit : w->remaining) - w->inflight;
  if (room > 0) {
    w->inflight++;
    return FX_G_SEND;
  }
  if (wall >= (double)w->reset) return FX_G_HOLD; /* a new window, full of calls in flight */
  wait = (double)w->reset - wall;
  if (p->deadline > 0 ? now + wait >= p->deadline : wait > p->timeout) {
    *retry_after = wait;
    return FX_G_REFUSE;
  }
  *at = now + wait;
  return FX_G_WAIT;
}

int fx_decide_refresh_ahead(int has_access, int can_refresh, double expires_at, double margin,
                            double wall)
{
  if (!can_refresh) return 0;
  if (!has_access) return 1;
  return expires_at > 0 && wall + margin >= expires_at;
}
