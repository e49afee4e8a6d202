/* Internal declarations shared by the C core's files: the client, the request (one call with
 * its attempts), and the three steps of an exchange: prepare, transport, finish. */
#ifndef FLEXTELL_FX_H
#define FLEXTELL_FX_H

#include <curl/curl.h>
#include "compat.h"
#include "buffer.h"

/* CURLOPT_PROTOCOLS_STR (7.85), CURLOPT_PREREQFUNCTION (7.80), CURLOPT_MAXAGE_CONN (7.65) */
#define FX_CURL_MIN 0x075500
#define FX_CURL_MIN_TEXT "7.85.0"
#if LIBCURL_VERSION_NUM < FX_CURL_MIN
#error "lua-flextell needs libcurl 7.85.0 or newer (Debian: libcurl4-openssl-dev)"
#endif

#define FX_VERSION "0.1.0"
#define FX_CLIENT_MT "flextell.Client"
#define FX_REQUEST_MT "flextell.Request"
#define FX_ERROR_MT "flextell.Error"
#define FX_DEFAULT_BASE_URL "https://dev.flextell.ai/api"
#define FX_MAX_HEADER_BYTES (64 * 1024)
#define FX_POOL_SIZE 8
#define FX_MAX_KEYS 256 /* query parameters or headers in one table */

/* What went wrong, before it becomes a flextell.Error table. */
typedef struct fx_fail {
  const char *kind;  /* "usage", "network", ... (static strings) */
  char code[64];     /* "" when there is none */
  char message[512];
  int maybe_sent;    /* transport failures: 0 certainly not sent, 1 may have been; -1 n/a */
} fx_fail;

/* State shared by a client and the clients derived from it with :with{}. */
typedef struct fx_shared {
  int refs;
  CURLM *multi;
  CURL *idle[FX_POOL_SIZE]; /* finished easy handles kept for reuse */
  int nidle;
  unsigned long long rng;   /* backoff jitter; seeded from the OS */
  /* tokens */
  char *access_token;
  char *refresh_token;
  char *token_type;
  char *scope;
  double expires_at; /* epoch seconds, 0 = unknown */
  unsigned long token_serial; /* bumped on every change, so a 401 refreshes only once */
  /* OAuth client */
  char *client_id;
  char *client_secret;
  char *redirect_uri;
  char *token_url;
  char *authorize_url;
  int token_url_loopback;  /* never sent through a proxy from the environment */
  double refresh_margin;
  /* last X-RateLimit-* seen */
  long long rl_limit, rl_remaining, rl_reset;
  int rl_known;
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
  int pace;          /* wait for the rate-limit window instead of sending a refused call */
  double timeout, connect_timeout, deadline; /* seconds; deadline 0 = none */
  double stall_timeout;
  long long max_response_bytes;
} fx_client;

enum { FX_IDLE, FX_RUNNING, FX_WAITING, FX_DONE };

/* One call: owns everything libcurl points at while it runs, and the response. */
typedef struct fx_request {
  fx_shared *shared;  /* held reference while the request exists */
  char method[16];
  char *url;
  struct curl_slist *headers;
  fx_buf body;
  int has_body;
  curl_mime *mime;
  CURL *easy;
  int state;
  int idempotent;
  int max_retries;
  int client_idx;     /* stack index of the client during the call: hooks, closed check */
  int tries;          /* transfers started: what max_retries and the backoff count */
  int attempts;       /* transfers started plus libcurl's re-sends (res.attempts) */
  int sends;          /* times the current transfer went on the wire (CURLOPT_PREREQFUNCTION) */
  int resent;         /* libcurl re-sent an idempotent request: on_retry is told after */
  int resend_refused; /* libcurl wanted to re-send a write: refused, it may have been processed */
  int oom;            /* a callback ran out of memory: the call raises once the transfer ends */
  double timeout, connect_timeout, stall_timeout;
  int pace;
  double started, deadline, wake_at; /* monotonic seconds */
  long long max_response_bytes;
  int allow_http;
  int direct;         /* no proxy, not even from the environment */
  int write_max_idle;
  char *ca_file, *ca_path, *proxy; /* copies: the client may close while this runs */
  /* last attempt */
  CURLcode result;
  long status;
  long connect_code;  /* a proxy's answer to CONNECT, 0 when there was none */
  int too_large, headers_too_large, stalled;
  int headers_done;   /* the blank line ending the header block arrived */
  double last_activity; /* monotonic seconds of the last byte in */
  fx_buf resp_body;
  fx_buf resp_headers; /* raw header lines of the final response */
  char errbuf[CURL_ERROR_SIZE];
  unsigned long token_serial; /* which token the request carries */
  long long rl_limit, rl_remaining, rl_reset; /* X-RateLimit-* of the last answer */
  int rl_known;
  int notify_retry;    /* a retry was scheduled and on_retry has not been told yet */
  double retry_delay;
  double retry_after;  /* seconds, < 0 when absent */
  char retry_reason[64];
} fx_request;

/* client.c */
fx_client *fx_client_check(lua_State *L, int idx);
fx_client *fx_client_at(lua_State *L, int idx); /* the client at idx, closed or not */
struct fx_spec;
/* One call of the client at stack index cidx: data, meta, res | nil, err. */
int fx_client_call(lua_State *L, int cidx, struct fx_spec *s);
/* Pushes the client's hook (on_token, on_retry) and returns 1, or pushes nothing and returns 0. */
int fx_client_push_hook(lua_State *L, int cidx, const char *name);
int fx_host_is_loopback(const char *host);
int fx_url_is_loopback(lua_State *L, const char *url);
int fx_token_chars_ok(const char *s);
void flextell_client_open(lua_State *L);
char *fx_strdup(const char *s);
double fx_now(void);       /* monotonic seconds */
double fx_wallclock(void); /* epoch seconds */

/* error.c */
void fx_fail_set(fx_fail *f, const char *kind, const char *code, const char *fmt, ...);
void fx_fail_closed(fx_fail *f); /* the client was closed while the call ran (a hook did it) */
int fx_error_push(lua_State *L, const fx_fail *f, fx_request *r);
int fx_error_return(lua_State *L, const fx_fail *f, fx_request *r); /* pushes nil, err */
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
} fx_spec;
void fx_spec_init(fx_spec *s);
void fx_spec_from_table(lua_State *L, int idx, fx_spec *s);
fx_request *fx_request_new(lua_State *L, fx_client *c);
int fx_prepare(lua_State *L, fx_client *c, const fx_spec *s, fx_request *r, fx_fail *f);
int fx_url_escape(fx_buf *b, const char *s, size_t n, int keep_slash);
int fx_append_query(lua_State *L, int idx, fx_buf *b, const char *what, fx_fail *f);
int fx_sorted_keys(lua_State *L, int idx, const char **keys, int max);
const char *fx_header_check(const char *name, size_t nlen, const char *value, size_t vlen);
int fx_header_valid(const char *name, size_t nlen, const char *value, size_t vlen);
void fx_header_push_line(lua_State *L, const char *name, size_t nlen, const char *value);
int fx_headers_from_table(lua_State *L, int idx, struct curl_slist **list, char *msg, size_t msglen);
void flextell_request_open(lua_State *L);

/* transport.c */
int fx_transport_run(lua_State *L, fx_request *r, fx_fail *f); /* blocking; 0 ok, -1 failed */
void fx_shared_release(lua_State *L, fx_shared *S);
fx_shared *fx_shared_new(lua_State *L); /* raises */
void fx_easy_release(fx_shared *S, CURL *easy);
const char *fx_header_find(const fx_buf *h, const char *name, size_t *len);
/* Reads Retry-After and X-RateLimit-* of the response in r (done after every attempt). */
void fx_note_response(fx_request *r);

/* oauth.c: cidx is the client's stack index (hooks run, and may close it) */
int fx_oauth_before(lua_State *L, int cidx);          /* 0, or -1 with an error pushed */
int fx_oauth_can_refresh(const fx_shared *S);
int fx_oauth_refresh(lua_State *L, int cidx);         /* 0, or -1 with an error pushed */
void flextell_oauth_open(lua_State *L);                /* adds methods to the table at top */

/* file.c */
void flextell_file_open(lua_State *L);

/* response.c: finish */
int fx_finish(lua_State *L, fx_client *c, fx_request *r);

#endif
