/* Decide: the one place where retry, backoff, Retry-After, pacing, concurrency, token refresh
 * and the whole-call deadline are decided. Plain C over plain structs: no Lua, no libcurl types,
 * so every driver (libcurl, tasks, nginx cosockets) shares it, and it can be tested and fuzzed
 * alone. Times are seconds: `now` is monotonic, `wall` is epoch time (for X-RateLimit-Reset and
 * token expiry, which the server and the token endpoint give in epoch seconds). */
#ifndef FLEXTELL_DECIDE_H
#define FLEXTELL_DECIDE_H

/* What went wrong on the wire, in words every driver can report (call:failed's codes). */
typedef enum fx_failure {
  FX_F_NONE = 0,
  FX_F_RESOLVE,          /* resolve_failed */
  FX_F_CONNECT,          /* connect_failed */
  FX_F_CONNECT_TIMEOUT,  /* connect_timeout: connect, proxy or TLS handshake too slow */
  FX_F_TIMEOUT,          /* timeout: the answer took longer than the attempt's timeout */
  FX_F_STALLED,          /* stalled: no byte for stall_timeout seconds */
  FX_F_SEND,             /* send_failed */
  FX_F_RESET,            /* connection_reset */
  FX_F_EMPTY,            /* empty_reply: closed without an answer */
  FX_F_TRUNCATED,        /* truncated_body */
  FX_F_BAD_RESPONSE,     /* bad_response: not HTTP/1.x */
  FX_F_TLS_VERIFY,       /* tls_verify_failed */
  FX_F_TLS,              /* tls_error: the handshake failed */
  FX_F_TLS_SETUP,        /* tls_error: the client's TLS settings (trust, keys) are unusable */
  FX_F_TOO_LARGE,        /* response_too_large */
  FX_F_HEADERS_TOO_LARGE,/* headers_too_large */
  FX_F_PROXY_REFUSED,    /* proxy_refused */
  FX_F_RESEND_REFUSED,   /* empty_reply on a reused connection, whose re-send was refused */
  FX_F_CANCELLED,        /* cancelled: the driver or the caller gave up */
  FX_F_OTHER,            /* transport_error */
  FX_F_COUNT
} fx_failure;

const char *fx_failure_code(fx_failure f);     /* "connect_failed"... */
fx_failure fx_failure_from_code(const char *code); /* FX_F_OTHER for an unknown code */

/* How one attempt ended: an answer, or a failure with whether the request may have been sent. */
typedef struct fx_outcome {
  long status;          /* 0 when there is no answer */
  fx_failure failure;   /* FX_F_NONE when there is an answer */
  int maybe_sent;       /* failures only: 0 = certainly not written, 1 = may have reached the server */
  double retry_after;   /* seconds from Retry-After, < 0 when absent */
} fx_outcome;

/* The call's rules, fixed when it starts. */
typedef struct fx_policy {
  int idempotent;       /* GET, PUT, DELETE...: may be sent again */
  int max_retries;      /* library retries */
  double timeout;       /* one attempt, seconds */
  double deadline;      /* monotonic time the whole call must end by, 0 = none */
  int can_refresh;      /* a 401 may refresh the token once and replay */
  int pace;             /* wait for the rate-limit window instead of sending a refused call */
} fx_policy;

/* What the call has done so far. */
typedef struct fx_progress {
  int tries;            /* transfers started (what max_retries counts) */
  int replayed;         /* the 401 replay was used */
  unsigned long long rng; /* backoff jitter state, never 0 */
} fx_progress;

typedef enum fx_verdict {
  FX_V_DONE,            /* the outcome is the call's result */
  FX_V_RETRY,           /* send again at `at` (monotonic); `reason` says why */
  FX_V_REPLAY,          /* a 401: refresh the token (unless another call did), then send again */
  FX_V_GIVE_UP          /* a retry was due but its wait passes the deadline: the outcome is the
                           result, with retry_after for the caller */
} fx_verdict;

typedef struct fx_decision {
  fx_verdict verdict;
  double at;            /* FX_V_RETRY: when */
  double delay;         /* FX_V_RETRY: at - now */
  char reason[80];      /* FX_V_RETRY: "HTTP 503", "not sent: Couldn't connect to server"... */
} fx_decision;

/* After an attempt: retry (when, why), replay after a refresh, or done. detail is a short text
 * for reason ("Couldn't connect to server"), may be NULL. */
void fx_decide_after(const fx_policy *p, fx_progress *g, const fx_outcome *o, const char *detail,
                     double now, fx_decision *d);

/* The rate-limit window as the responses told it, and what is in flight against it. */
typedef struct fx_window {
  int known;
  long long limit, remaining, reset; /* reset: epoch seconds */
  int inflight;         /* calls sent and not answered yet, each holding a slot */
} fx_window;

typedef enum fx_gate {
  FX_G_SEND,            /* go: a slot is reserved (inflight + 1) */
  FX_G_WAIT,            /* wait until `at` (monotonic), then ask again */
  FX_G_HOLD,            /* wait for an answer in flight (the window is not known yet) */
  FX_G_REFUSE           /* the window opens after the deadline: fail with retry_after */
} fx_gate;

/* Before a send with pacing: a call may go when the window has room for it counting the calls
 * in flight; before the first answer, one call goes and the others hold. */
fx_gate fx_decide_pace(const fx_policy *p, fx_window *w, double now, double wall, double started,
                       double *at, double *retry_after);
void fx_window_answer(fx_window *w, int paced); /* an answer (or failure) freed a slot */
void fx_window_note(fx_window *w, long long limit, long long remaining, long long reset);

/* Before a call: refresh a token that is missing or expires within margin seconds. */
int fx_decide_refresh_ahead(int has_access, int can_refresh, double expires_at, double margin,
                            double wall);

/* Exponential backoff with full jitter: uniform in [0, min(8, 0.25 * 2^(tries-1))] seconds. */
double fx_backoff(fx_progress *g);

/* Seconds left before the deadline (a large number without one), never negative. */
double fx_time_left(const fx_policy *p, double now);

#endif
