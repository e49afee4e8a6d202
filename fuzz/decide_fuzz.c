/* The decide step alone (src/decide.c: plain C, no Lua, no libcurl): a policy and a run of
 * outcomes, then a run of pacing gates, checked against the rules every driver relies on.
 *
 * Input layout (see fuzz/README.md):
 *   [0]    policy flags: 1 idempotent, 2 can refresh, 4 pace, 8 a deadline
 *   [1]    max_retries (% 11)
 *   [2]    timeout, tenths of a second (1 + byte)
 *   [3]    deadline, tenths of a second from now (when flag 8)
 *   then outcomes of 4 bytes each until a 0xFF marker (or the end):
 *          [a] 0 = an answer, else failure code (a % FX_F_COUNT)
 *          [b][c] status, big-endian, % 1000
 *          [d] 1 may have been sent, 0xFE mask: Retry-After in seconds (d >> 1), 0x7F = none
 *   then pacing ops of 4 bytes each:
 *          [a] % 3: 0 a gate, 1 an answer freeing a slot, 2 new X-RateLimit values
 *          [b][c][d] limit, remaining, seconds until reset (for op 2) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/decide.h"

#define CHECK(cond, ...)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "decide_fuzz: " __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                                     \
      abort();                                                                                 \
    }                                                                                          \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fx_policy p;
  fx_progress g;
  fx_window w;
  size_t i = 4;
  double now = 1000.0, wall = 1.7e9;
  int k, sent = 0;
  if (size < 4) return 0;
  memset(&p, 0, sizeof p);
  memset(&g, 0, sizeof g);
  memset(&w, 0, sizeof w);
  p.idempotent = data[0] & 1;
  p.can_refresh = (data[0] & 2) != 0;
  p.pace = (data[0] & 4) != 0;
  p.max_retries = data[1] % 11;
  p.timeout = (1 + data[2]) / 10.0;
  p.deadline = (data[0] & 8) ? now + data[3] / 10.0 : 0;
  g.rng = 0x9e3779b97f4a7c15ULL;

  /* every failure code has its word, and the word leads back to a code with that word */
  for (k = 1; k < FX_F_COUNT; k++) {
    const char *code = fx_failure_code((fx_failure)k);
    CHECK(code[0] != '\0', "failure %d has no code", k);
    CHECK(strcmp(fx_failure_code(fx_failure_from_code(code)), code) == 0, "code %s does not read back", code);
  }

  while (i + 4 <= size && data[i] != 0xFF) {
    fx_outcome o;
    fx_decision d;
    int replayed_before = g.replayed, tries_before;
    o.failure = data[i] == 0 ? FX_F_NONE : (fx_failure)(data[i] % FX_F_COUNT);
    o.status = o.failure == FX_F_NONE ? (long)(((data[i + 1] << 8) | data[i + 2]) % 1000) : 0;
    o.maybe_sent = o.failure == FX_F_NONE ? 1 : (data[i + 3] & 1);
    o.retry_after = (data[i + 3] >> 1) == 0x7F ? -1 : (double)(data[i + 3] >> 1);
    i += 4;
    g.tries++; /* the attempt this outcome ends */
    tries_before = g.tries;
    fx_decide_after(&p, &g, &o, "detail", now, &d);
    switch (d.verdict) {
    case FX_V_RETRY:
      CHECK(tries_before <= p.max_retries, "retry %d past max_retries %d", tries_before, p.max_retries);
      CHECK(d.delay >= 0 && d.at == now + d.delay, "retry at %f, delay %f", d.at, d.delay);
      if (o.retry_after >= 0)
        CHECK(d.delay == o.retry_after, "delay %f, Retry-After %f", d.delay, o.retry_after);
      else
        CHECK(d.delay <= 8, "backoff %f over 8 s", d.delay);
      if (p.deadline > 0)
        CHECK(d.at < p.deadline, "a retry at %f after the deadline %f", d.at, p.deadline);
      else
        CHECK(d.delay <= p.timeout, "a wait of %f longer than the timeout %f", d.delay, p.timeout);
      CHECK(d.reason[0] != '\0', "a retry without a reason");
      /* the at-most-once rule */
      if (!p.idempotent) {
        if (o.failure == FX_F_NONE)
          CHECK(o.status == 429 || o.status == 503, "a write retried after HTTP %ld", o.status);
        else
          CHECK(!o.maybe_sent, "a write that may have been sent (%s) retried", fx_failure_code(o.failure));
      }
      CHECK(o.failure != FX_F_TLS_VERIFY && o.failure != FX_F_TOO_LARGE &&
                o.failure != FX_F_HEADERS_TOO_LARGE && o.failure != FX_F_RESEND_REFUSED &&
                o.failure != FX_F_PROXY_REFUSED && o.failure != FX_F_CANCELLED,
            "retried after %s", fx_failure_code(o.failure));
      now = d.at;
      break;
    case FX_V_REPLAY:
      CHECK(o.failure == FX_F_NONE && o.status == 401, "a replay without a 401");
      CHECK(p.can_refresh && !replayed_before && g.replayed, "a second replay, or one without a refresh");
      CHECK(g.tries == 0, "a replay that does not start the retry budget again");
      break;
    case FX_V_GIVE_UP:
    case FX_V_DONE:
      break;
    }
    if (d.verdict == FX_V_DONE || d.verdict == FX_V_GIVE_UP) {
      if (o.failure == FX_F_NONE && o.status == 401 && p.can_refresh)
        CHECK(replayed_before, "a 401 not replayed the first time");
      break;
    }
  }
  if (i < size && data[i] == 0xFF) i++;

  /* pacing: a gate never lets a call go when the known window, counting the calls in flight,
   * has no room before its reset */
  p.pace = 1;
  while (i + 4 <= size) {
    int op = data[i] % 3;
    if (op == 0) {
      double at = 0, ra = 0;
      long long room = w.known ? (wall >= (double)w.reset ? w.limit : w.remaining) - w.inflight : 0;
      int inflight = w.inflight;
      fx_gate gate = fx_decide_pace(&p, &w, now, wall, now, &at, &ra);
      switch (gate) {
      case FX_G_SEND:
        CHECK(w.inflight == inflight + 1, "a send that takes no slot");
        CHECK(w.known ? room > 0 : inflight == 0, "a send without room (room %lld, in flight %d)", room, inflight);
        sent++;
        break;
      case FX_G_WAIT:
        CHECK(w.known && room <= 0 && at > now && at <= now + ((double)w.reset - wall) + 1e-9,
              "a wait to %f", at);
        CHECK(w.inflight == inflight, "a wait that takes a slot");
        break;
      case FX_G_HOLD:
        CHECK(w.inflight == inflight && (inflight > 0 || (w.known && room <= 0)), "a hold with nothing to wait for");
        break;
      case FX_G_REFUSE:
        CHECK(w.known && room <= 0 && ra > 0, "a refusal with room, or without retry_after");
        break;
      }
    } else if (op == 1) {
      int before = w.inflight;
      fx_window_answer(&w, 1);
      CHECK(w.inflight == (before > 0 ? before - 1 : 0), "an answer freed %d slots", before - w.inflight);
    } else {
      fx_window_note(&w, data[i + 1], data[i + 2] % (data[i + 1] + 1), (long long)wall + data[i + 3]);
      CHECK(w.known, "the window is not known after X-RateLimit-*");
    }
    CHECK(w.inflight >= 0, "negative slots in flight");
    i += 4;
    wall += 0.1;
    now += 0.1;
  }
  (void)sent;
  return 0;
}
