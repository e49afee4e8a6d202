/* Transport: libcurl on the client's multi handle. A blocking call starts its transfer and
 * drives the multi handle until the call is done; backoff waits between attempts are timers in
 * that same loop. Callbacks only fill C buffers owned by the request; no Lua runs inside them. */
#include <ctype.h>
#include <fcntl.h>
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

fx_shared *fx_shared_new(void)
{
  fx_shared *S;
  if (pthread_once(&curl_once, curl_init_once) != 0 || curl_init_result != CURLE_OK) return NULL;
  S = (fx_shared *)calloc(1, sizeof *S);
  if (S == NULL) return NULL;
  S->multi = curl_multi_init();
  if (S->multi == NULL) {
    free(S);
    return NULL;
  }
  S->refs = 1;
  S->on_token_ref = LUA_NOREF;
  S->on_retry_ref = LUA_NOREF;
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
  if (--S->refs > 0) return;
  if (S->on_token_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, S->on_token_ref);
  if (S->on_retry_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, S->on_retry_ref);
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
  if (fx_buf_add(&r->resp_body, p, len) != 0) return 0;
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
  fx_request *r = (fx_request *)ud;
  size_t len = size * n;
  r->last_activity = fx_now();
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) fx_buf_clear(&r->resp_headers); /* 1xx, proxies */
  if (r->resp_headers.len + len > FX_MAX_HEADER_BYTES) {
    r->headers_too_large = 1;
    return 0;
  }
  if (fx_buf_add(&r->resp_headers, p, len) != 0) return 0;
  return len;
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
    return d > 0 ? d : 0;
  }
}

/* ---- one attempt ---------------------------------------------------------------------------- */

static long ms(double s)
{
  return s <= 0 ? 1 : (long)(s * 1000 + 0.5);
}

static int start_attempt(fx_request *r, double now, fx_fail *f)
{
  fx_shared *S = r->shared;
  CURL *e = r->easy;
  double timeout = r->timeout;
  if (e == NULL) {
    e = S->nidle > 0 ? S->idle[--S->nidle] : curl_easy_init();
    if (e == NULL) {
      fx_fail_set(f, "network", "transport_error", "could not create a libcurl handle");
      return -1;
    }
    r->easy = e;
  }
  if (r->deadline > 0 && r->deadline - now < timeout) timeout = r->deadline - now;
  fx_buf_clear(&r->resp_body);
  fx_buf_clear(&r->resp_headers);
  r->status = 0;
  r->too_large = r->headers_too_large = r->stalled = 0;
  r->last_activity = now;
  r->errbuf[0] = '\0';
  r->retry_after = -1;
  r->attempts++;

  curl_easy_setopt(e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a token never follows a redirect */
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, r->allow_http || strncmp(r->url, "http:", 5) == 0
                                                 ? "http,https" : "https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(timeout));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms(r->connect_timeout < timeout ? r->connect_timeout : timeout));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response_bytes);
  if (r->ca_file != NULL) curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);
  if (r->ca_path != NULL) curl_easy_setopt(e, CURLOPT_CAPATH, r->ca_path);
  if (r->proxy != NULL) curl_easy_setopt(e, CURLOPT_PROXY, r->proxy);
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
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  if (!r->has_body && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 &&
      strcmp(r->method, "DELETE") != 0 && strcmp(r->method, "OPTIONS") != 0) {
    /* POST/PUT/PATCH without a body still send Content-Length: 0 */
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
  }
  if (curl_multi_add_handle(S->multi, e) != CURLM_OK) {
    fx_fail_set(f, "network", "transport_error", "could not start the transfer");
    return -1;
  }
  r->state = FX_RUNNING;
  return 0;
}

/* Failures where the request certainly did not reach the server. */
static int before_send(fx_request *r)
{
  switch (r->result) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_COULDNT_CONNECT:
    return 1;
  case CURLE_OPERATION_TIMEDOUT: {
    curl_off_t connected = 0;
    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &connected);
    return connected == 0;
  }
  default:
    return 0;
  }
}

static int retryable(fx_request *r)
{
  if (r->result != CURLE_OK) {
    if (r->too_large || r->headers_too_large) return 0;
    if (before_send(r)) {
      snprintf(r->retry_reason, sizeof r->retry_reason, "%s", "connection failed");
      return 1;
    }
    if (!r->idempotent) return 0;
    switch (r->result) {
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
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
  for (i = 1; i < r->attempts && cap < 8; i++) cap *= 2;
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
  fx_note_response(r);
  r->state = FX_DONE;
  if (r->attempts > r->max_retries || !retryable(r)) return;
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

/* Tells on_retry about a scheduled retry; an error in the hook ends the call with it. */
static int notify_retry(lua_State *L, fx_request *r, fx_fail *f)
{
  fx_shared *S = r->shared;
  r->notify_retry = 0;
  if (S->on_retry_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->on_retry_ref);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, r->attempts);
  lua_setfield(L, -2, "attempt");
  lua_pushstring(L, r->retry_reason);
  lua_setfield(L, -2, "reason");
  lua_pushnumber(L, r->retry_delay);
  lua_setfield(L, -2, "delay");
  lua_pushstring(L, r->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, r->url);
  lua_setfield(L, -2, "url");
  if (r->status > 0) {
    lua_pushinteger(L, r->status);
    lua_setfield(L, -2, "status");
  }
  if (lua_pcall(L, 1, 0, 0) != 0) {
    const char *m = lua_tostring(L, -1);
    fx_fail_set(f, "usage", "on_retry_error", "on_retry raised an error: %s", m ? m : "(not a string)");
    lua_pop(L, 1);
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
    r->retry_after = wait;
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
    if (r->state == FX_WAITING && now >= r->wake_at) {
      if (start_attempt(r, now, f) != 0) return -1;
    }
    if (curl_multi_perform(S->multi, &running) != CURLM_OK) {
      fx_fail_set(f, "network", "transport_error", "libcurl multi handle failed");
      return -1;
    }
    collect(S);
    /* the stall detector: libcurl's low-speed check averages over seconds, this does not */
    if (r->state == FX_RUNNING && fx_now() - r->last_activity >= r->stall_timeout) {
      r->stalled = 1;
      finish_attempt(r, CURLE_OPERATION_TIMEDOUT);
    }
    if (r->state == FX_DONE) break;
    if (r->notify_retry && notify_retry(L, r, f) != 0) return -1;
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
