/* Transport: libcurl on the client's multi handle. A blocking call starts its transfer and
 * drives the multi handle until the call is done; backoff waits between attempts are timers in
 * that same loop. Callbacks only fill C buffers owned by the request; no Lua runs inside them. */
#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "fx.h"

/* curl_global_init runs once per process, whichever thread (and lua_State) gets there first:
 * hosts run many states on many threads, and libcurl 7.88's global init is not thread-safe. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
  curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static unsigned long long seed_rng(void)
{
  unsigned long long v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v) v = 0;
    close(fd);
  }
  if (v == 0) v = (unsigned long long)time(NULL) ^ (unsigned long long)(size_t)&v;
  return v | 1;
}

fx_shared *fx_shared_new(lua_State *L)
{
  fx_shared *S;
  if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_result != CURLE_OK)
    luaL_error(L, "flextell: libcurl could not be initialised (%s)", curl_easy_strerror(curl_init_result));
  S = (fx_shared *)calloc(1, sizeof *S);
  if (S == NULL) luaL_error(L, "not enough memory");
  S->multi = curl_multi_init();
  if (S->multi == NULL) {
    free(S);
    luaL_error(L, "not enough memory");
  }
  S->refs = 1;
  S->rng = seed_rng();
  return S;
}

/* Overwrites a secret before freeing it, so it does not linger in freed memory. */
static void free_secret(char **p)
{
  if (*p != NULL) {
    volatile char *v = *p;
    while (*v) *v++ = 0;
    free(*p);
    *p = NULL;
  }
}

void fx_shared_release(lua_State *L, fx_shared *S)
{
  int i;
  (void)L;
  if (--S->refs > 0) return;
  for (i = 0; i < S->nidle; i++) curl_easy_cleanup(S->idle[i]);
  S->nidle = 0;
  curl_multi_cleanup(S->multi);
  free_secret(&S->access_token);
  free_secret(&S->refresh_token);
  free_secret(&S->client_secret);
  free(S->token_type);
  free(S->scope);
  free(S->client_id);
  free(S->redirect_uri);
  free(S->token_url);
  free(S->authorize_url);
  free(S);
}

void fx_easy_release(fx_shared *S, CURL *easy)
{
  if (S->nidle < FX_POOL_SIZE) {
    curl_easy_reset(easy);
    S->idle[S->nidle++] = easy;
  } else {
    curl_easy_cleanup(easy);
  }
}

/* ---- callbacks: C memory only --------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  fx_request *r = (fx_request *)ud;
  size_t len = size * n;
  r->last_activity = fx_now();
  if ((long long)(r->resp_body.len + len) > r->max_response_bytes) {
    r->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (fx_buf_add(&r->resp_body, p, len) != 0) {
    r->oom = 1;
    return 0;
  }
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
  fx_request *r = (fx_request *)ud;
  size_t len = size * n;
  r->last_activity = fx_now();
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new block: 1xx, proxies */
    fx_buf_clear(&r->resp_headers);
    r->headers_done = 0;
  } else if (len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) {
    r->headers_done = 1;
  }
  if (r->resp_headers.len + len > FX_MAX_HEADER_BYTES) {
    r->headers_too_large = 1;
    return 0;
  }
  if (fx_buf_add(&r->resp_headers, p, len) != 0) {
    r->oom = 1;
    return 0;
  }
  return len;
}

/* libcurl calls this right before the request goes on the wire: once per send, and once more
 * when it re-sends on a new connection because a kept-alive one closed without an answer. No
 * libcurl option turns that re-send off, so it is decided here: an idempotent request may go
 * again (it is counted, and on_retry told); a POST or PATCH may have been processed by the first
 * send, so the second is refused and the call fails instead of writing twice. A transfer that
 * fails before this ever ran certainly sent nothing. */
static int on_prereq(void *ud, char *remote_ip, char *local_ip, int remote_port, int local_port)
{
  fx_request *r = (fx_request *)ud;
  (void)remote_ip;
  (void)local_ip;
  (void)remote_port;
  (void)local_port;
  if (r->sends > 0) {
    if (!r->idempotent) {
      r->resend_refused = 1;
      return CURL_PREREQFUNC_ABORT;
    }
    r->resent = 1;
    r->attempts++;
  }
  r->sends++;
  return CURL_PREREQFUNC_OK;
}

/* Value of the first header called name (lower case) in a raw header block, trimmed. */
const char *fx_header_find(const fx_buf *h, const char *name, size_t *len)
{
  size_t nlen = strlen(name), i = 0;
  while (i < h->len) {
    const char *line = h->data + i;
    const char *end = memchr(line, '\n', h->len - i);
    size_t llen = end ? (size_t)(end - line) : h->len - i;
    if (llen > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1, *e = line + llen;
      while (v < e && (*v == ' ' || *v == '\t')) v++;
      while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) e--;
      *len = (size_t)(e - v);
      return v;
    }
    i += llen + 1;
  }
  return NULL;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110); a past date means now. */
static double parse_retry_after(const fx_buf *h)
{
  size_t n, i;
  char tmp[64];
  const char *v = fx_header_find(h, "retry-after", &n);
  if (v == NULL || n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, v, n);
  tmp[n] = '\0';
  for (i = 0; i < n && isdigit((unsigned char)tmp[i]); i++) {}
  if (i == n) return n > 9 ? 1e9 : (double)atol(tmp);
  {
    time_t t = curl_getdate(tmp, NULL);
    double d;
    if (t == (time_t)-1) return -1;
    d = (double)t - fx_wallclock();
    return d > 0 ? ceil(d) : 0;
  }
}

/* ---- one attempt ---------------------------------------------------------------------------- */

static long ms(double s)
{
  return s <= 0 ? 1 : (long)(s * 1000 + 0.5);
}

/* Takes the transfer out of the multi handle, so nothing libcurl holds points at the request. */
static void detach(fx_request *r)
{
  if (r->state == FX_RUNNING && r->easy != NULL) curl_multi_remove_handle(r->shared->multi, r->easy);
  r->state = FX_DONE;
}

/* Raises "not enough memory" after ending the transfer cleanly (the one out-of-memory policy). */
static void raise_oom(lua_State *L, fx_request *r)
{
  detach(r);
  luaL_error(L, "not enough memory");
}

/* String options are copied by libcurl, so setting one can run out of memory: then the call
 * raises, before the handle is in the multi handle. */
static void set_str(lua_State *L, CURL *e, CURLoption opt, const char *value)
{
  CURLcode rc = curl_easy_setopt(e, opt, value);
  if (rc == CURLE_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
  if (rc != CURLE_OK) luaL_error(L, "libcurl refused an option: %s", curl_easy_strerror(rc));
}

static void start_attempt(lua_State *L, fx_request *r, double now)
{
  fx_shared *S = r->shared;
  CURL *e = r->easy;
  double timeout = r->timeout;
  if (e == NULL) {
    e = S->nidle > 0 ? S->idle[--S->nidle] : curl_easy_init();
    if (e == NULL) luaL_error(L, "not enough memory");
    r->easy = e;
  }
  if (r->deadline > 0 && r->deadline - now < timeout) timeout = r->deadline - now;
  fx_buf_clear(&r->resp_body);
  fx_buf_clear(&r->resp_headers);
  r->status = 0;
  r->too_large = r->headers_too_large = r->stalled = 0;
  r->sends = r->resent = r->resend_refused = r->headers_done = 0;
  r->last_activity = now;
  r->errbuf[0] = '\0';
  r->retry_after = -1;
  r->connect_code = 0;
  r->tries++;
  r->attempts++;

  set_str(L, e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, (void *)r);
  /* HTTP/1.1 everywhere (libcurl would negotiate HTTP/2 over TLS): one wire protocol for every
   * driver, whose re-send rules are the ones on_prereq enforces */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a token never follows a redirect */
  set_str(L, e, CURLOPT_PROTOCOLS_STR,
          r->allow_http || strncmp(r->url, "http:", 5) == 0 ? "http,https" : "https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  set_str(L, e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(timeout));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms(r->connect_timeout < timeout ? r->connect_timeout : timeout));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response_bytes);
  if (!r->idempotent) {
    /* A write goes on a connection that idled less than write_max_idle seconds, or on a new one:
     * a server closing an idle connection as the write arrives is what makes libcurl want to
     * re-send, which on_prereq then has to refuse. (libcurl compares whole idle seconds.) */
    if (r->write_max_idle <= 0)
      curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    else
      curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, (long)(r->write_max_idle - 1));
  }
  if (r->ca_file != NULL) set_str(L, e, CURLOPT_CAINFO, r->ca_file);
  if (r->ca_path != NULL) set_str(L, e, CURLOPT_CAPATH, r->ca_path);
  if (r->proxy != NULL)
    set_str(L, e, CURLOPT_PROXY, r->proxy);
  else if (r->direct)
    set_str(L, e, CURLOPT_PROXY, ""); /* not even one from the environment */
  if (r->mime != NULL) {
    curl_easy_setopt(e, CURLOPT_MIMEPOST, r->mime);
  } else if (r->has_body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data ? r->body.data : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
  }
  if (strcmp(r->method, "GET") == 0 && !r->has_body)
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  else if (strcmp(r->method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (strcmp(r->method, "POST") != 0 || !r->has_body)
    set_str(L, e, CURLOPT_CUSTOMREQUEST, r->method);
  if (!r->has_body && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
      strcmp(r->method, "DELETE") != 0 && strcmp(r->method, "OPTIONS") != 0) {
    /* POST/PUT/PATCH without a body still send Content-Length: 0 */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  }
  if (curl_multi_add_handle(S->multi, e) != CURLM_OK) luaL_error(L, "not enough memory");
  r->state = FX_RUNNING;
}

/* Failures before the request went on the wire, where trying again cannot write twice:
 * libcurl never reached the send (name resolution, connect, proxy tunnel, TLS handshake). TLS
 * verification failures are left out: they will not change by trying again. */
static int retry_unsent(fx_request *r)
{
  if (r->sends > 0) return 0;
  switch (r->result) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_RECV_ERROR: /* a connection reset during the TLS handshake */
  case CURLE_SEND_ERROR:
    return 1;
  default:
    return 0;
  }
}

static int retryable(fx_request *r)
{
  if (r->result != CURLE_OK) {
    if (r->too_large || r->headers_too_large || r->oom || r->resend_refused) return 0;
    if (r->stalled && !r->idempotent) return 0;
    if (retry_unsent(r)) {
      snprintf(r->retry_reason, sizeof r->retry_reason, "not sent: %s", curl_easy_strerror(r->result));
      return 1;
    }
    if (!r->idempotent) return 0;
    switch (r->result) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_UNSUPPORTED_PROTOCOL: /* an answer that is not HTTP/1.x (HTTP/0.9, garbage) */
    case CURLE_WEIRD_SERVER_REPLY:
      snprintf(r->retry_reason, sizeof r->retry_reason, "%s", curl_easy_strerror(r->result));
      return 1;
    default:
      return 0;
    }
  }
  if (r->status == 429 || r->status == 503 ||
      (r->idempotent && (r->status == 500 || r->status == 502 || r->status == 504))) {
    snprintf(r->retry_reason, sizeof r->retry_reason, "HTTP %ld", r->status);
    return 1;
  }
  return 0;
}

/* Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-1))]. */
static double backoff(fx_request *r)
{
  fx_shared *S = r->shared;
  double cap = 0.25, u;
  int i;
  for (i = 1; i < r->tries && cap < 8; i++) cap *= 2;
  if (cap > 8) cap = 8;
  S->rng ^= S->rng << 13;
  S->rng ^= S->rng >> 7;
  S->rng ^= S->rng << 17;
  u = (double)(S->rng >> 11) / 9007199254740992.0;
  return cap * u;
}

static int header_int(const fx_buf *h, const char *name, long long *out)
{
  size_t n, i;
  const char *v = fx_header_find(h, name, &n);
  long long x = 0;
  if (v == NULL || n == 0 || n > 18) return 0;
  for (i = 0; i < n; i++) {
    if (!isdigit((unsigned char)v[i])) return 0;
    x = x * 10 + (v[i] - '0');
  }
  *out = x;
  return 1;
}

/* X-RateLimit-*: kept on the request (res.rate_limit) and the client (pacing, rate_limit()). */
static void note_rate_limit(fx_request *r)
{
  fx_shared *S = r->shared;
  r->rl_known = header_int(&r->resp_headers, "x-ratelimit-limit", &r->rl_limit) &&
                header_int(&r->resp_headers, "x-ratelimit-remaining", &r->rl_remaining) &&
                header_int(&r->resp_headers, "x-ratelimit-reset", &r->rl_reset);
  if (r->rl_known) {
    S->rl_limit = r->rl_limit;
    S->rl_remaining = r->rl_remaining;
    S->rl_reset = r->rl_reset;
    S->rl_known = 1;
  }
}

void fx_note_response(fx_request *r)
{
  r->retry_after = parse_retry_after(&r->resp_headers);
  note_rate_limit(r);
}

static void finish_attempt(fx_request *r, CURLcode result)
{
  double now = fx_now(), delay;
  curl_multi_remove_handle(r->shared->multi, r->easy);
  r->result = result;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_CONNECTCODE, &r->connect_code);
  fx_note_response(r);
  r->state = FX_DONE;
  if (r->oom || r->tries > r->max_retries || r->connect_code >= 300 || !retryable(r)) return;
  delay = r->retry_after >= 0 ? r->retry_after : backoff(r);
  /* a wait past the deadline (without one: longer than a whole attempt may take) is not
   * slept through: the caller gets the answer, with retry_after, and decides */
  if (r->deadline > 0 ? now + delay >= r->deadline : delay > r->timeout) return;
  r->wake_at = now + delay;
  r->retry_delay = delay;
  r->notify_retry = 1;
  r->state = FX_WAITING;
}

/* Moves every finished transfer on this multi handle forward (other calls' too). */
static void collect(fx_shared *S)
{
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(S->multi, &left)) != NULL) {
    fx_request *r = NULL;
    if (m->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r != NULL) finish_attempt(r, m->data.result);
  }
}

/* What on_retry is told. */
typedef struct retry_info {
  int attempt;
  const char *reason;
  double delay;
  long status;
  const char *method, *url;
} retry_info;

static void push_seconds(lua_State *L, double s)
{
  if (s == floor(s) && s < 9007199254740992.0)
    lua_pushinteger(L, (lua_Integer)s);
  else
    lua_pushnumber(L, s);
}

/* Runs under lua_pcall, so a memory error building the table is caught like the hook's own. */
static int call_on_retry(lua_State *L)
{
  const retry_info *i = (const retry_info *)lua_touserdata(L, 2);
  lua_settop(L, 1);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, i->attempt);
  lua_setfield(L, -2, "attempt");
  lua_pushstring(L, i->reason);
  lua_setfield(L, -2, "reason");
  push_seconds(L, i->delay);
  lua_setfield(L, -2, "delay");
  lua_pushstring(L, i->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, i->url);
  lua_setfield(L, -2, "url");
  if (i->status > 0) {
    lua_pushinteger(L, i->status);
    lua_setfield(L, -2, "status");
  }
  lua_call(L, 1, 0);
  return 0;
}

/* Tells on_retry of a retry or a re-send. The transfer is out of the multi handle by now, so the
 * hook may do anything, close the client included; an error in it ends the call with it. */
static int notify_retry(lua_State *L, fx_request *r, const retry_info *info, fx_fail *f)
{
  int rc;
  lua_pushcfunction(L, call_on_retry);
  if (!fx_client_push_hook(L, r->client_idx, "on_retry")) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushlightuserdata(L, (void *)info);
  rc = lua_pcall(L, 2, 0, 0);
  if (rc == LUA_ERRMEM) lua_error(L);
  if (rc != 0) {
    const char *m = lua_tostring(L, -1);
    fx_fail_set(f, "usage", "on_retry_error", "on_retry raised an error: %s", m ? m : "(not a string)");
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* After a transfer ended: on_retry hears of a re-send libcurl made, then of a retry scheduled. */
static int after_transfer(lua_State *L, fx_request *r, fx_fail *f)
{
  retry_info info;
  info.method = r->method;
  info.url = r->url;
  if (r->resent) {
    r->resent = 0;
    info.attempt = r->attempts - 1;
    info.reason = "connection closed without an answer; sent again on a new connection";
    info.delay = 0;
    info.status = 0;
    if (notify_retry(L, r, &info, f) != 0) return -1;
  }
  if (r->notify_retry) {
    r->notify_retry = 0;
    info.attempt = r->attempts;
    info.reason = r->retry_reason;
    info.delay = r->retry_delay;
    info.status = r->status;
    if (notify_retry(L, r, &info, f) != 0) return -1;
  }
  if (fx_client_at(L, r->client_idx)->shared == NULL) { /* a hook closed the client */
    fx_fail_closed(f);
    return -1;
  }
  return 0;
}

/* With pace = true, a call that the last X-RateLimit-* says would be refused waits for the
 * window to reset (a timer in the loop, like a backoff) instead of being sent. */
static int pace_wait(fx_request *r, fx_fail *f)
{
  fx_shared *S = r->shared;
  double wait;
  if (!r->pace || !S->rl_known || S->rl_remaining > 0) return 0;
  wait = (double)S->rl_reset - fx_wallclock();
  if (wait <= 0) return 0;
  if (r->deadline > 0 ? r->started + wait >= r->deadline : wait > r->timeout) {
    r->retry_after = ceil(wait);
    fx_fail_set(f, "limit", "rate_limit_exceeded",
                "the rate limit is used up until the window resets in %.0f s (not sent)", wait);
    return -1;
  }
  r->wake_at = r->started + wait;
  return 0;
}

int fx_transport_run(lua_State *L, fx_request *r, fx_fail *f)
{
  fx_shared *S = r->shared;
  r->started = fx_now();
  if (r->deadline > 0) r->deadline += r->started;
  r->wake_at = r->started;
  r->state = FX_WAITING;
  if (pace_wait(r, f) != 0) return -1;
  for (;;) {
    double now = fx_now();
    int running = 0;
    long wait_ms = 1000;
    CURLMcode mc;
    if (r->state == FX_WAITING && now >= r->wake_at) start_attempt(L, r, now);
    mc = curl_multi_perform(S->multi, &running);
    if (mc != CURLM_OK) {
      if (mc == CURLM_OUT_OF_MEMORY) raise_oom(L, r);
      detach(r);
      fx_fail_set(f, "network", "transport_error", "libcurl: %s", curl_multi_strerror(mc));
      return -1;
    }
    collect(S);
    /* the stall detector: libcurl's low-speed check averages over seconds, this does not */
    if (r->state == FX_RUNNING && fx_now() - r->last_activity >= r->stall_timeout) {
      r->stalled = 1;
      finish_attempt(r, CURLE_OPERATION_TIMEDOUT);
    }
    if (r->state != FX_RUNNING) {
      if (r->oom) raise_oom(L, r);
      if (after_transfer(L, r, f) != 0) {
        r->state = FX_DONE;
        return -1;
      }
      if (r->state == FX_DONE) break;
    }
    if (r->state == FX_WAITING) {
      wait_ms = (long)((r->wake_at - fx_now()) * 1000) + 1;
    } else {
      wait_ms = (long)((r->last_activity + r->stall_timeout - fx_now()) * 1000) + 1;
    }
    if (wait_ms < 0) wait_ms = 0;
    if (wait_ms > 1000) wait_ms = 1000;
    curl_multi_poll(S->multi, NULL, 0, (int)wait_ms, NULL);
  }
  return 0;
}
