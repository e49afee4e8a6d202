/* Internal declarations shared by the C core's files. A call is one state machine (call.c):
 *
 *   prepare (request.c) -> send (a driver) -> finish (response.c) -> decide (decide.c)
 *      ^                                                               |
 *      +---- token refresh (oauth.c, a child call) <-- retry/replay ---+--> done
 *
 * Drivers put requests on the wire: the libcurl one (transport.c: one transfer; loop.c: the
 * multi handle of the lua_State, the blocking driver and the task driver's C half), or any
 * driver written in Lua through the public call API (call:next/response/failed). */
#ifndef FLEXTELL_FX_H
#define FLEXTELL_FX_H

#include <curl/curl.h>
#include "compat.h"
#include "buffer.h"
#include "decide.h"

/* CURLOPT_PROTOCOLS_STR (7.85), CURLOPT_PREREQFUNCTION (7.80), CURLOPT_MAXAGE_CONN (7.65) */
#define FX_CURL_MIN 0x075500
#define FX_CURL_MIN_TEXT "7.85.0"
#if LIBCURL_VERSION_NUM < FX_CURL_MIN
#error "lua-flextell needs libcurl 7.85.0 or newer (Debian: libcurl4-openssl-dev)"
#endif

#define FX_VERSION "0.1.0"
#define FX_CLIENT_MT "flextell.Client"
#define FX_CALL_MT "flextell.Call"
#define FX_LOOP_MT "flextell.Loop"
#define FX_ERROR_MT "flextell.Error"
#define FX_TASKS_KEY "flextell.tasks" /* registry: weak table, coroutine -> task */
#define FX_LUA_DRIVER_KEY "flextell.lua_driver" /* registry: true when a Lua driver takes every call (nginx) */
#define FX_DEFAULT_BASE_URL "https://dev.flextell.ai/api"
#define FX_MAX_HEADER_BYTES (64 * 1024)
#define FX_MAX_KEYS 256 /* query parameters or headers in one table */

/* What went wrong, before it becomes a flextell.Error table. */
typedef struct fx_fail {
  const char *kind;  /* "usage", "network", ... (static strings) */
  char code[64];     /* "" when there is none */
  char message[512];
  int maybe_sent;    /* transport failures: 0 certainly not sent, 1 may have been; -1 n/a */
  long status;       /* an HTTP status that goes with it, 0 when none */
  double retry_after;/* < 0 when none */
} fx_fail;

/* State shared by a client and the clients derived from it with :with{}. */
typedef struct fx_shared {
  int refs;
  unsigned long long rng;   /* backoff jitter; seeded from the OS */
  /* tokens */
  char *access_token;
  char *refresh_token;
  char *token_type;
  char *scope;
  double expires_at; /* epoch seconds, 0 = unknown */
  unsigned long token_serial; /* bumped on every change, so a 401 refreshes only once */
  /* one refresh at a time: the others wait for it and take its result */
  int refreshing;
  unsigned long refresh_gen;  /* bumped when a refresh ends */
  int refresh_failed;         /* the last one failed: waiters end with refresh_fail */
  fx_fail refresh_fail;
  /* OAuth client */
  char *client_id;
  char *client_secret;
  char *redirect_uri;
  char *token_url;
  char *authorize_url;
  int token_url_loopback;  /* never sent through a proxy from the environment */
  double refresh_margin;
  int has_store;           /* a token_store (in the client's user value) */
  int store_rate;          /* ... that holds the rate-limit window too (rate_reserve, rate_note, rate_release) */
  /* the rate-limit window, and the calls in flight against it */
  fx_window window;
  int inflight;            /* transfers in flight, for max_concurrency */
  struct fx_call *spare[4]; /* freed call states, for the next calls (call.c) */
  int nspare;
} fx_shared;

typedef struct fx_client {
  fx_shared *shared; /* NULL once closed */
  char *base_url;    /* no trailing slash */
  char *prefix;      /* put before relative paths, no slashes around; may be NULL */
  char *user_agent;
  char *ca_file, *ca_path, *proxy;
  int proxy_off;     /* proxy = false: no proxy, not even from the environment */
  int base_loopback; /* the base URL's host is loopback: never through an environment proxy */
  int write_max_idle; /* seconds a kept-alive connection may idle and still carry a POST/PATCH */
  struct curl_slist *headers; /* "Name: value" defaults, validated */
  long long tenant;
  int has_tenant;
  int allow_http;
  int max_retries;
  int max_concurrency; /* transfers in flight per client family */
  int transport_curl;  /* transport = "curl": libcurl even where a Lua driver takes calls */
  int pace;          /* wait for the rate-limit window instead of sending a refused call */
  double timeout, connect_timeout, deadline; /* seconds; deadline 0 = none */
  double stall_timeout;
  long long max_response_bytes;
} fx_client;

/* The states of a call (call.c has the transitions). */
enum {
  FX_S_START,    /* token checks, then READY */
  FX_S_READY,    /* concurrency and pacing, then SEND */
  FX_S_SEND,     /* a driver may take it */
  FX_S_FLIGHT,   /* a driver has it on the wire */
  FX_S_WAIT,     /* until wake_at: backoff, Retry-After, the rate-limit window */
  FX_S_HOLD,     /* until another call moves: a refresh, a concurrency slot, the first answer */
  FX_S_REFRESH,  /* its child call (the token refresh) runs */
  FX_S_HOOK,     /* a hook to run (on_retry, on_token) */
  FX_S_DONE
};

/* What a driver does next (fx_call_next). */
enum { FX_N_SEND, FX_N_WAIT, FX_N_HOLD, FX_N_FLIGHT, FX_N_REFRESH, FX_N_HOOK, FX_N_DONE };

enum { FX_K_API, FX_K_REFRESH, FX_K_EXCHANGE }; /* what a call is for */
enum { FX_D_NONE, FX_D_BLOCKING, FX_D_TASK, FX_D_DETACHED }; /* who drives it through libcurl */

typedef struct fx_loop fx_loop;

/* A pending hook: on_retry (a retry or a re-send) or on_token. */
/* the steps of a token store (store.c), run as hooks */
enum { FX_ST_LOAD = 1, FX_ST_LOCK, FX_ST_SAVE, FX_ST_UNLOCK,
       FX_ST_RATE_RESERVE, FX_ST_RATE_NOTE, FX_ST_RATE_RELEASE }; /* the rate_* steps: pacing shared */
/* where a token call is in them */
enum { FX_SY_NONE, FX_SY_PEEK, FX_SY_LOCK, FX_SY_LOCKING, FX_SY_RELOAD, FX_SY_GO };

typedef struct fx_hook {
  int which;           /* 0 on_retry, 1 on_token, 2 a step of the token store */
  int op;              /* FX_ST_* for a store step */
  int attempt;
  long status;
  double delay;
  char reason[80];
} fx_hook;

/* One call: owns everything libcurl points at while it runs, and the response. */
typedef struct fx_call {
  int state, kind, driver;
  int raw_body;       /* res.body: the 2xx body as received (the request's raw_body) */
  fx_shared *shared;  /* held reference while the call exists */
  fx_client *client;  /* the client userdata is kept alive by the call's user value */
  fx_loop *loop;      /* while a libcurl transfer is in flight */
  /* the request (prepare) */
  char method[16];
  char *url;
  struct curl_slist *headers;
  fx_buf body;
  int has_body;
  curl_mime *mime;
  CURL *easy;
  int easy_warm;      /* the handle has the options that are the same for every transfer */
  int no_auth;
  double connect_timeout, stall_timeout;
  long long max_response_bytes;
  int allow_http;
  int direct;         /* no proxy, not even from the environment */
  int write_max_idle;
  int max_concurrency;
  char *ca_file, *ca_path, *proxy; /* copies: the client may close while this runs */
  /* policy and progress */
  fx_policy pol;
  fx_progress prog;
  int attempts;       /* transfers started plus libcurl's re-sends (res.attempts) */
  double started, wake_at; /* monotonic seconds */
  unsigned long token_serial; /* which token the request carries */
  unsigned long refresh_gen_seen;
  int need_refresh;   /* a 401 asked for a refresh */
  int refreshed;      /* refreshed ahead of expiry already (once per call) */
  int in_flight_slot; /* counted in shared->inflight */
  int paced_slot;     /* holds a slot of the rate-limit window: 1 this state's, 2 the store's */
  int holds_refresh;  /* this (token) call is the shared state's one refresh */
  int has_auth;       /* the header list carries Authorization */
  int hold_ready;     /* held in READY (a slot), not for a refresh */
  int after_hook;     /* the state once the pending hooks ran */
  int by_child;       /* ended by its child's (the refresh's) error */
  int token_failed;   /* a token call whose result is an error (in its user value) */
  int adopted;        /* a refresh that took another's result instead of running */
  int raise_oom;      /* memory ran out while it moved: its result raises */
  /* the current attempt */
  int sends;          /* times it went on the wire (CURLOPT_PREREQFUNCTION) */
  int any_sent;       /* some attempt may have reached the server */
  int in_doubt;       /* the last attempt may have reached the server and no answer came */
  double start_limit; /* a token call: its caller's deadline, which ends it at any point but one:
                         never while its request is on the wire (the answer holds the only copy
                         of a rotated refresh token); 0 = none */
  int adopt_used;     /* a refresh took another holder's tokens: one more 401 may refresh */
  int resent;         /* libcurl re-sent an idempotent request: on_retry is told after */
  int resend_refused; /* libcurl wanted to re-send a write: refused, it may have been processed */
  int oom;            /* a callback ran out of memory: the call raises once the transfer ends */
  int too_large, headers_too_large, stalled, headers_done;
  double last_activity; /* monotonic seconds of the last byte in */
  CURLcode result;
  long connect_code;  /* a proxy's answer to CONNECT, 0 when there was none */
  char errbuf[CURL_ERROR_SIZE];
  /* the last outcome */
  long status;
  fx_outcome out;
  char detail[256];   /* a failure's text */
  fx_buf resp_body;
  fx_buf resp_headers; /* raw header lines of the final response */
  fx_buf scratch;      /* working space: the URL while it is built, strings while JSON is decoded */
  long long rl_limit, rl_remaining, rl_reset; /* X-RateLimit-* of the last answer */
  int rl_known;
  double retry_after;  /* seconds, < 0 when absent */
  /* the end when it is not an answer: a failure of the call itself */
  int ended;
  fx_fail fail;
  /* hooks waiting to run */
  fx_hook hooks[8];
  int nhooks;
  int hook_running;
  int hook_nargs;      /* the arguments pushed with the hook's function */
  /* a token call of a client with a token store (store.c) */
  int sync;            /* FX_SY_* */
  int forced;          /* client:refresh(): refresh even when another holder just did */
  int locked;          /* holds the store's lock (the lock object is in the user value) */
  double lock_since, lock_limit; /* monotonic: waiting for the lock began; give up by then */
  double lock_until;   /* the refresh must end by then: the lock's ttl covers it */
  double lock_delay;   /* the wait before the next try of a busy lock */
} fx_call;

/* client.c */
fx_client *fx_client_check(lua_State *L, int idx);
fx_client *fx_client_at(lua_State *L, int idx); /* the client at idx, closed or not */
int fx_host_is_loopback(const char *host);
int fx_url_is_loopback(lua_State *L, const char *url);
int fx_token_chars_ok(const char *s);
int fx_in_task(lua_State *L); /* the running coroutine is a task: calls go to the Lua driver */
int fx_lua_drives(lua_State *L, const fx_client *c); /* a task, or nginx's driver takes the call */
void flextell_client_open(lua_State *L);
char *fx_strdup(const char *s);
double fx_now(void);       /* monotonic seconds */
double fx_wallclock(void); /* epoch seconds */
void fx_shared_release(fx_shared *S);
fx_shared *fx_shared_new(lua_State *L); /* raises */

/* error.c */
void fx_fail_set(fx_fail *f, const char *kind, const char *code, const char *fmt, ...);
void fx_fail_closed(fx_fail *f); /* the client was closed while the call ran */
int fx_error_push(lua_State *L, const fx_fail *f, fx_call *r);
void fx_push_headers(lua_State *L, const fx_buf *h); /* response.c: lower-case names, repeats joined */
int fx_error_return(lua_State *L, const fx_fail *f, fx_call *r); /* pushes nil, err */
void flextell_error_open(lua_State *L);

/* request.c: prepare */
typedef struct fx_spec {
  const char *method;
  const char *path;
  size_t method_len, path_len; /* to refuse embedded NUL bytes; 0 = unchecked */
  const char *url;    /* internal: an absolute URL (the token endpoint) instead of a path */
  int query, body, headers, form, multipart; /* stack indices, 0 = none */
  int has_tenant;
  long long tenant;
  int no_tenant;      /* call explicitly without X-Tenant */
  int no_auth;        /* token endpoint calls */
  double timeout, deadline;
  int max_retries;    /* -1 = client default */
  int reveal_token;   /* prepare() only */
  int raw_body;       /* res.body: the body as received */
} fx_spec;
void fx_spec_init(fx_spec *s);
void fx_spec_from_table(lua_State *L, int idx, fx_spec *s);
int fx_prepare(lua_State *L, fx_client *c, const fx_spec *s, fx_call *r, fx_fail *f);
void fx_call_set_auth(lua_State *L, fx_call *r, const char *token); /* NULL: none */
int fx_url_escape(fx_buf *b, const char *s, size_t n, int keep_slash);
int fx_append_query(lua_State *L, int idx, fx_buf *b, const char *what, fx_fail *f);
int fx_sorted_keys(lua_State *L, int idx, const char **keys, int max);
const char *fx_header_check(const char *name, size_t nlen, const char *value, size_t vlen);
int fx_header_valid(const char *name, size_t nlen, const char *value, size_t vlen);
void fx_header_push_line(lua_State *L, const char *name, size_t nlen, const char *value);
int fx_headers_from_table(lua_State *L, int idx, struct curl_slist **list, char *msg, size_t msglen);

/* call.c: the state machine; idx is the call's stack index */
fx_call *fx_call_new(lua_State *L, int cidx, int kind); /* pushes it; the client at cidx */
fx_call *fx_call_at(lua_State *L, int idx);
/* What next: FX_N_*. For FX_N_WAIT *wait is the seconds to wait; for FX_N_REFRESH the child
 * call is pushed; for FX_N_HOOK the hook function and its argument are pushed. */
int fx_call_next(lua_State *L, int idx, double *wait);
void fx_call_hooked(lua_State *L, int idx, int ok, int err_idx); /* after FX_N_HOOK */
void fx_call_sent(fx_call *r);                /* a driver took it: FX_S_FLIGHT */
void fx_call_answered(lua_State *L, int idx); /* resp_* and status are filled in */
void fx_call_failed(lua_State *L, int idx, fx_failure f, int maybe_sent, const char *detail);
void fx_call_end(fx_call *r, const fx_fail *f); /* ends it with f (closed, cancelled...) */
int fx_call_result(lua_State *L, int idx);    /* data, meta, res | tokens | nil, err */
void fx_call_release_slots(fx_call *r);
void fx_call_start(fx_call *r); /* after prepare: the clock and the deadline start */
void fx_call_queue_token_hook(fx_call *r); /* on_token is told once the tokens changed */
void fx_call_queue_store_hook(fx_call *r, int op); /* a step of the token store */
int fx_call_uv_get(lua_State *L, int idx, const char *k); /* pushes a field of its user value */
void fx_call_uv_set(lua_State *L, int idx, const char *k); /* pops the value into it */
void flextell_call_open(lua_State *L);

/* loop.c: one per lua_State */
fx_loop *fx_loop_get(lua_State *L); /* the state's loop, made on first use */
#define FX_IDLE_EASY 8 /* easy handles a loop keeps for the next transfers */
/* a kept one (*warm = 1), or new (*warm = 0); lp may be NULL; raises */
CURL *fx_loop_take_easy(lua_State *L, fx_loop *lp, int *warm);
/* keeps the handle for the next transfer when keep (fx_loop_keeps_easy) and lp is alive, else
 * cleans it up */
void fx_loop_release_easy(fx_loop *lp, CURL *easy, int keep);
int fx_loop_keeps_easy(const fx_call *r);
void fx_loop_detach(fx_call *r);                   /* out of the multi handle, if it is in */
int fx_drive_blocking(lua_State *L, int idx); /* drives the call at idx to its result */
void fx_loop_close_client(lua_State *L, fx_client *c); /* in-flight calls of c end as closed */
void flextell_loop_open(lua_State *L);

/* transport.c: one libcurl transfer of a call */
CURL *fx_transport_start(lua_State *L, fx_call *r, CURL *easy); /* raises on OOM */
void fx_transport_done(lua_State *L, int idx, CURLcode result); /* the transfer ended */
void fx_transport_stalled(lua_State *L, int idx);
const char *fx_header_find(const fx_buf *h, const char *name, size_t *len);
void fx_note_response(fx_call *r); /* Retry-After and X-RateLimit-* of the answer in r */

/* oauth.c */
int fx_oauth_can_refresh(const fx_shared *S);
/* Pushes a new token call of the client at cidx: the refresh, or the code exchange. */
fx_call *fx_oauth_refresh_call(lua_State *L, int cidx);
void fx_oauth_finish(lua_State *L, int idx); /* a token call's end: apply the tokens */
void fx_oauth_push_tokens(lua_State *L, const fx_shared *S);
/* Takes the tokens of a store's table at idx: 1 when the access token changed, 0 when not, < 0
 * when they are not valid (nothing changed). */
int fx_oauth_adopt(lua_State *L, fx_shared *S, int idx);
const char *fx_oauth_adopt_problem(int rc); /* why fx_oauth_adopt refused, for an error */
#define FX_TOKEN_MAX 65536 /* bytes: longer tokens from a store are refused */
int fx_oauth_refresh_body(lua_State *L, fx_call *r, fx_fail *f); /* the form, from the tokens now */
void flextell_oauth_open(lua_State *L);          /* adds methods to the table at top */

/* store.c: the token store's steps of a token call */
int fx_store_start(lua_State *L, int idx, fx_call *r); /* START: the next state */
int fx_store_push_hook(lua_State *L, int idx, fx_call *r, int op); /* fn, args: how many args */
void fx_store_hooked(lua_State *L, int idx, fx_call *r, int op, int ok, int first);
const char *fx_store_op_name(int op);

/* file.c */
void flextell_file_open(lua_State *L);

/* response.c: finish */
int fx_finish(lua_State *L, fx_call *r);            /* data, meta, res | nil, err */
void fx_failure_to_fail(const fx_call *r, fx_fail *f); /* a failure outcome as an error */

#endif
