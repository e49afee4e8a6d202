/* The baseline for `make bench`: the same GETs done with plain libcurl (one easy handle, kept
 * alive, body into a growing buffer, no JSON). Prints the seconds the loop took.
 * raw_get URL TOKEN COUNT [URL2 ...]: with more than one URL, call i goes to URL number
 * i mod (number of URLs), so a list of page URLs, given in order, replays a paged walk. */
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
  if (s->n + len > s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 65536;
    while (cap < s->n + len) cap *= 2;
    s->p = realloc(s->p, cap);
    if (s->p == NULL) return 0;
    s->cap = cap;
  }
  memcpy(s->p + s->n, data, len);
  s->n += len;
  return len;
}

int main(int argc, char **argv)
{
  struct sink s = {0};
  struct curl_slist *h = NULL;
  struct timespec t0, t1;
  char auth[512];
  CURL *e;
  int i, n, nurls;
  char **urls;
  if (argc < 4) {
    fprintf(stderr, "usage: raw_get URL TOKEN COUNT [URL2 ...]\n");
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
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", argv[2]);
  h = curl_slist_append(h, auth);
  h = curl_slist_append(h, "Accept: application/json");
  curl_easy_setopt(e, CURLOPT_URL, argv[1]);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &s);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (i = 0; i < n; i++) {
    long status = 0;
    s.n = 0;
    if (nurls > 1) curl_easy_setopt(e, CURLOPT_URL, urls[i % nurls]);
    if (curl_easy_perform(e) != CURLE_OK) return 1;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  free(s.p);
  free(urls);
  curl_global_cleanup();
  return 0;
}
