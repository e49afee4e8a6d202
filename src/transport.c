/* Transport: one libcurl transfer of a call (the "send" step for the libcurl driver). It sets
 * the easy handle up from the prepared call, and when the transfer ends it reports an answer
 * or a neutral failure (decide.h's codes, with whether the request may have been sent) to the
 * call. Callbacks only fill C buffers owned by the call; no Lua runs inside them. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "fx.h"

/* ---- callbacks: C memory only --------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
  fx_call *r = (fx_call *)ud;
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
  fx_call *r = (fx_call *)ud;
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
  fx_call *r = (fx_call *)ud;
  (void)remote_ip;
  (void)local_ip;
  (void)remote_port;
  (void)local_port;
  if (r->sends > 0) {
    if (!r->pol.idempotent) {
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

/* ---- the transfer ---------------------------------------------------------------------------- */

/* Seconds -> libcurl's milliseconds, rounded up and at least 1: 0 would mean "no limit". */
static long ms(double s)
{
  double v = ceil(s * 1000);
  return v < 1 ? 1 : v > 2147483647.0 ? 2147483647L : (long)v;
}

/* String options are copied by libcurl, so setting one can run out of memory: then the call
 * raises, before the handle is in the multi handle. */
static void set_str(lua_State *L, CURL *e, CURLoption opt, const char *value)
{
  CURLcode rc = curl_easy_setopt(e, opt, value);
  if (rc == CURLE_OUT_OF_MEMORY) luaL_error(L, "not enough memory");
  if (rc != CURLE_OK) luaL_error(L, "libcurl refused an option: %s", curl_easy_strerror(rc));
}

CURL *fx_transport_start(lua_State *L, fx_call *r, CURL *e)
{
  double now = fx_now(), timeout = r->pol.timeout, left = fx_time_left(&r->pol, now);
  if (left < timeout) timeout = left;
  r->easy = e;
  fx_buf_clear(&r->resp_body);
  fx_buf_clear(&r->resp_headers);
  r->status = 0;
  r->too_large = r->headers_too_large = r->stalled = 0;
  r->sends = r->resent = r->resend_refused = r->headers_done = r->oom = 0;
  r->last_activity = now;
  r->errbuf[0] = '\0';
  r->retry_after = -1;
  r->connect_code = 0;
  r->rl_known = 0;

  set_str(L, e, CURLOPT_URL, r->url);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)r);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, (void *)r);
  set_str(L, e, CURLOPT_PROTOCOLS_STR,
          r->allow_http || strncmp(r->url, "http:", 5) == 0 ? "http,https" : "https");
  if (!r->easy_warm) { /* the same for every transfer: a kept handle has them already */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    /* HTTP/1.1 everywhere (libcurl would negotiate HTTP/2 over TLS): one wire protocol for every
     * driver, whose re-send rules are the ones on_prereq enforces */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a token never follows a redirect */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    set_str(L, e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    r->easy_warm = 1;
  }
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms(timeout));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms(r->connect_timeout < timeout ? r->connect_timeout : timeout));
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response_bytes);
  if (!r->pol.idempotent) {
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
  return e;
}

/* libcurl 7.88 refuses a header line over 100 KB (CURL_MAX_HTTP_HEADER) with
 * CURLE_OUT_OF_MEMORY, as it would memory running out: a block twice the cap that can be had
 * says it was the cap. */
static int header_cap_hit(fx_call *r)
{
  void *probe;
  if (r->sends == 0 || r->headers_done) return 0;
  probe = malloc(2 * CURL_MAX_HTTP_HEADER);
  if (probe == NULL) return 0;
  free(probe);
  return 1;
}

void fx_transport_done(lua_State *L, int idx, CURLcode result)
{
  fx_call *r = fx_call_at(L, idx);
  const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(result);
  char text[256];
  fx_failure fl;
  int maybe_sent = r->sends > 0;
  r->result = result;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(r->easy, CURLINFO_HTTP_CONNECTCODE, &r->connect_code);
  if (r->oom) { /* a callback ran out: the call's result raises (whoever drives the loop now) */
    r->raise_oom = 1;
    return;
  }
  if (result == CURLE_OK) {
    fx_call_answered(L, idx);
    return;
  }
  if (r->too_large || result == CURLE_FILESIZE_EXCEEDED) {
    fl = FX_F_TOO_LARGE;
    snprintf(text, sizeof text, "the response body is larger than max_response_bytes (%lld)",
             r->max_response_bytes);
    detail = text;
  } else if (r->headers_too_large) {
    fl = FX_F_HEADERS_TOO_LARGE;
    snprintf(text, sizeof text, "the response headers are larger than %d bytes", FX_MAX_HEADER_BYTES);
    detail = text;
  } else if (r->resend_refused) {
    fl = FX_F_RESEND_REFUSED;
    snprintf(text, sizeof text,
             "the server closed the kept-alive connection without an answer; the %s may have been "
             "processed, so it was not sent again", r->method);
    detail = text;
  } else if (r->connect_code >= 300) {
    fl = FX_F_PROXY_REFUSED;
    maybe_sent = 0;
    snprintf(text, sizeof text, "the proxy refused to open a tunnel to the API (CONNECT answered %ld)",
             r->connect_code);
    detail = text;
  } else {
    switch (result) {
    case CURLE_OUT_OF_MEMORY:
      if (!header_cap_hit(r)) {
        r->raise_oom = 1; /* memory ran out in libcurl: the call's result raises */
        return;
      }
      fl = FX_F_HEADERS_TOO_LARGE;
      detail = "a response header line is larger than libcurl accepts (100 KB)";
      break;
    case CURLE_OPERATION_TIMEDOUT:
      if (r->stalled) {
        fl = FX_F_STALLED;
        snprintf(text, sizeof text, "no data from the server for %.0f seconds", r->stall_timeout);
        detail = text;
      } else {
        fl = r->sends == 0 ? FX_F_CONNECT_TIMEOUT : FX_F_TIMEOUT; /* connect, proxy, TLS handshake */
      }
      break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: fl = FX_F_RESOLVE; break;
    case CURLE_COULDNT_CONNECT: fl = FX_F_CONNECT; break;
    case CURLE_SEND_ERROR: fl = FX_F_SEND; break;
    case CURLE_RECV_ERROR: fl = FX_F_RESET; break;
    case CURLE_GOT_NOTHING: fl = FX_F_EMPTY; break;
    case CURLE_PARTIAL_FILE: fl = FX_F_TRUNCATED; break;
    case CURLE_PEER_FAILED_VERIFICATION: fl = FX_F_TLS_VERIFY; break;
    case CURLE_SSL_CONNECT_ERROR: fl = FX_F_TLS; break;
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED: fl = FX_F_TLS_SETUP; break;
    case CURLE_UNSUPPORTED_PROTOCOL: /* the answer was not HTTP/1.x: HTTP/0.9 or garbage */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING: fl = FX_F_BAD_RESPONSE; break;
    default: fl = FX_F_OTHER; break;
    }
  }
  fx_call_failed(L, idx, fl, maybe_sent, detail);
}

void fx_transport_stalled(lua_State *L, int idx)
{
  fx_call *r = fx_call_at(L, idx);
  r->stalled = 1;
  fx_transport_done(L, idx, CURLE_OPERATION_TIMEDOUT);
}

/* ---- the answer's headers --------------------------------------------------------------------- */

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
/* X-RateLimit-*: kept on the call (res.rate_limit); the call passes them to the window. */
static void note_rate_limit(fx_call *r)
{
  r->rl_known = header_int(&r->resp_headers, "x-ratelimit-limit", &r->rl_limit) &&
                header_int(&r->resp_headers, "x-ratelimit-remaining", &r->rl_remaining) &&
                header_int(&r->resp_headers, "x-ratelimit-reset", &r->rl_reset);
}

void fx_note_response(fx_call *r)
{
  r->retry_after = parse_retry_after(&r->resp_headers);
  note_rate_limit(r);
}

