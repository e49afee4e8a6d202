/* The baseline of `make bench` and `make bench-compare`: the same GETs with plain libcurl (one
 * easy handle, kept alive, body into a growing buffer, no JSON decoding). One GET before the
 * clock starts opens the connection, as every peer does. Times with CLOCK_MONOTONIC.
 *
 *   raw_get URL TOKEN COUNT [URL2 ...]   COUNT GETs; prints the seconds. With more than one URL,
 *                                        call i goes to URL number i mod (number of URLs), so the
 *                                        page URLs of a walk, given in order, replay it.
 *   raw_get --walk URL TOKEN WALKS       WALKS cursor walks of the list at URL (which has a query
 *                                        already): each page's cursor is found by a byte scan of
 *                                        its meta (no JSON parser) and sent back as &cursor=...;
 *                                        prints the seconds and the pages fetched. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sink {
  char *p;
  size_t n, cap;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *ud)
{
  struct sink *s = ud;
  size_t len = size * nmemb;
  if (s->n + len + 1 > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    char *p;
    while (cap < s->n + len + 1) cap *= 2;
    p = realloc(s->p, cap);
    if (p == NULL) return 0;
    s->p = p;
    s->cap = cap;
  }
  memcpy(s->p + s->n, data, len);
  s->n += len;
  s->p[s->n] = '\0';
  return len;
}

static double seconds(void)
{
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int get(CURL *e, struct sink *s, const char *url)
{
  long status = 0;
  s->n = 0;
  curl_easy_setopt(e, CURLOPT_URL, url);
  if (curl_easy_perform(e) != CURLE_OK) return -1;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  return status == 200 ? 0 : -1;
}

/* The next page's cursor from the body's meta, into out; 0 when the list is done (a null
 * cursor), -1 when the body has no meta. Cursors are short and need no unescaping here. */
static int next_cursor(const struct sink *s, char *out, size_t size)
{
  const char *m, *c, *end;
  if (s->n == 0) return -1;
  m = strstr(s->p + (s->n > 300 ? s->n - 300 : 0), "\"meta\":");
  if (m == NULL) return -1;
  c = strstr(m, "\"cursor\":");
  if (c == NULL) return -1;
  c += 9;
  if (*c != '"') return 0;
  c++;
  end = strchr(c, '"');
  if (end == NULL || (size_t)(end - c) >= size) return -1;
  memcpy(out, c, (size_t)(end - c));
  out[end - c] = '\0';
  return 1;
}

int main(int argc, char **argv)
{
  struct sink s = {0};
  struct curl_slist *h = NULL;
  char auth[512];
  CURL *e;
  int i, n, nurls, walk = 0, status = 0;
  long pages = 0;
  double t0, t1;
  char **urls;
  if (argc > 1 && strcmp(argv[1], "--walk") == 0) {
    walk = 1;
    argv++;
    argc--;
  }
  if (argc < 4 || (walk && argc != 4)) {
    fprintf(stderr, "usage: raw_get URL TOKEN COUNT [URL2 ...] | raw_get --walk URL TOKEN WALKS\n");
    return 2;
  }
  n = atoi(argv[3]);
  nurls = argc - 3; /* argv[1], then argv[4..] */
  urls = malloc(sizeof *urls * (size_t)nurls);
  if (urls == NULL) return 1;
  urls[0] = argv[1];
  for (i = 4; i < argc; i++) urls[i - 3] = argv[i];
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e = curl_easy_init();
  if (e == NULL) return 1;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);
  h = curl_slist_append(h, auth);
  h = curl_slist_append(h, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  /* as lua-flextell and lua-curl do: without it libcurl swaps the SIGPIPE handler around every
   * transfer, six system calls a GET */
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  if (get(e, &s, urls[0]) != 0) {
    fprintf(stderr, "raw_get: GET %s failed\n", urls[0]);
    return 1;
  }
  t0 = seconds();
  if (walk) {
    size_t base = strlen(argv[1]);
    char *url = malloc(base + 128);
    if (url == NULL) return 1;
    for (i = 0; i < n && status == 0; i++) {
      char cursor[100];
      int more = 0;
      memcpy(url, argv[1], base + 1);
      do {
        if (get(e, &s, url) != 0 || (more = next_cursor(&s, cursor, sizeof cursor)) < 0) {
          fprintf(stderr, "raw_get: GET %s failed or has no meta\n", url);
          status = 1;
          break;
        }
        pages++;
        if (more) snprintf(url + base, 128, "&cursor=%s", cursor);
      } while (more);
    }
    free(url);
  } else {
    for (i = 0; i < n; i++) {
      if (get(e, &s, urls[i % nurls]) != 0) {
        fprintf(stderr, "raw_get: GET %s failed\n", urls[i % nurls]);
        status = 1;
        break;
      }
    }
  }
  t1 = seconds();
  if (status == 0) {
    if (walk)
      printf("%.6f %ld\n", t1 - t0, pages);
    else
      printf("%.6f\n", t1 - t0);
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  free(s.p);
  free(urls);
  curl_global_cleanup();
  return status;
}
