/* Request building: a Lua request table built from the input goes through fx_spec_from_table
 * and fx_prepare for a client made by the real flextell.new. Programmer errors may raise (the
 * whole step runs under lua_pcall); on success the URL and header lines must be safe to hand
 * to libcurl, and a JSON body must be valid, canonical JSON.
 *
 * Input layout (see fuzz/README.md): byte 0 picks client options, then a sequence of ops, each
 * an op byte followed by its operands; strings are length-prefixed (fuzz_push_lstr). */
#include <ctype.h>
#include <math.h>
#include "fuzz_common.h"

static const char *const base_urls[4] = {"https://api.test/api", "https://api.test/api/",
                                         "https://api.test", "http://127.0.0.1:8080/api/v2"};
static const char *const known_methods[6] = {"GET", "post", "PUT", "Patch", "DELETE", "HEAD"};
/* multipart reads files by name; a fixed list keeps the fuzzer away from FIFOs and devices */
static const char *const part_paths[3] = {"/etc/hostname", "/nonexistent/file", "/"};

enum {
  OP_METHOD, OP_PATH, OP_QUERY, OP_HEADER, OP_BODY_RAW, OP_BODY_JSON, OP_FORM, OP_MULTIPART,
  OP_TENANT, OP_MISC, OP_COUNT
};

/* Indices of the fields being built, 0 until the first op that needs them. */
typedef struct builder {
  lua_State *L;
  fuzz_reader in;
  int req, query, headers, form, multipart, scratch;
} builder;

static int subtable(builder *b, int *slot, const char *field)
{
  lua_State *L = b->L;
  if (*slot == 0) {
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, b->req, field);
    *slot = lua_gettop(L);
  }
  return *slot;
}

/* A key: usually a string of any bytes, sometimes a non-string (raises or is refused). */
static void push_key(builder *b)
{
  unsigned sel = fuzz_byte(&b->in);
  if (sel == 0xFE) lua_pushinteger(b->L, 1);
  else if (sel == 0xFD) lua_pushboolean(b->L, 1);
  else fuzz_push_lstr_from(b->L, &b->in, sel); /* not a selector: the string's length */
}

static void push_scalar(builder *b, unsigned sel)
{
  lua_State *L = b->L;
  uint64_t u;
  double d;
  switch (sel % 8) {
  case 0: fuzz_push_lstr(L, &b->in); break;
  case 1: lua_pushinteger(L, (lua_Integer)fuzz_u64(&b->in)); break;
  case 2: /* any double, NaN and infinities included */
    u = fuzz_u64(&b->in);
    memcpy(&d, &u, sizeof d);
    lua_pushnumber(L, d);
    break;
  case 3: lua_pushboolean(L, 1); break;
  case 4: lua_pushboolean(L, 0); break;
  case 5: lua_pushlightuserdata(L, NULL); break; /* flextell.null */
  case 6: lua_newtable(L); break;                /* not a scalar */
  default: lua_pushnumber(L, (double)(int8_t)fuzz_byte(&b->in) / 4.0); break;
  }
}

/* A query or form value: a scalar or a list of scalars (the key repeats). */
static void push_value(builder *b)
{
  unsigned sel = fuzz_byte(&b->in);
  if (sel % 9 == 8) {
    int i, n = (int)(fuzz_byte(&b->in) % 6);
    lua_createtable(b->L, n, 0);
    for (i = 1; i <= n; i++) {
      push_scalar(b, fuzz_byte(&b->in));
      lua_rawseti(b->L, -2, i);
    }
  } else {
    push_scalar(b, sel);
  }
}

static void set_pair(builder *b, int t)
{
  push_key(b);
  push_value(b);
  lua_rawset(b->L, t);
}

static void op_header(builder *b)
{
  lua_State *L = b->L;
  int t = subtable(b, &b->headers, "headers");
  push_key(b);
  switch (fuzz_byte(&b->in) % 5) {
  case 0: case 1: fuzz_push_lstr(L, &b->in); break;
  case 2: lua_pushboolean(L, 0); break; /* removes a default header */
  case 3: lua_pushboolean(L, 1); break; /* invalid */
  default: lua_pushinteger(L, 42); break; /* invalid: must be a string */
  }
  lua_rawset(L, t);
}

static void op_body_json(builder *b)
{
  lua_State *L = b->L;
  size_t n;
  const char *s;
  char err[256];
  fuzz_push_lstr(L, &b->in);
  s = lua_tolstring(L, -1, &n);
  if (fx_json_decode(L, s, n, (fx_buf *)lua_touserdata(L, b->scratch), err, sizeof err) == 0)
    lua_remove(L, -2); /* the decoded value, else the text itself as a raw body */
  lua_setfield(L, b->req, "body");
}

static void op_multipart(builder *b)
{
  lua_State *L = b->L;
  int t = subtable(b, &b->multipart, "multipart");
  unsigned sel;
  push_key(b);
  sel = fuzz_byte(&b->in);
  switch (sel % 5) {
  case 0: fuzz_push_lstr(L, &b->in); break;
  case 1: lua_pushinteger(L, (lua_Integer)fuzz_byte(&b->in)); break;
  case 2: case 3:
    lua_newtable(L);
    if (sel & 0x10) {
      lua_pushstring(L, part_paths[(sel >> 5) % 3]);
      lua_setfield(L, -2, "path");
    }
    if (sel % 5 == 2 || (sel & 0x80)) {
      fuzz_push_lstr(L, &b->in);
      lua_setfield(L, -2, "data");
    }
    if (sel & 0x20) {
      fuzz_push_lstr(L, &b->in);
      lua_setfield(L, -2, "filename");
    }
    if (sel & 0x40) {
      fuzz_push_lstr(L, &b->in);
      lua_setfield(L, -2, "content_type");
    }
    break;
  default: lua_pushboolean(L, 1); break;
  }
  lua_rawset(L, t);
}

static void op_tenant(builder *b)
{
  lua_State *L = b->L;
  switch (fuzz_byte(&b->in) % 6) {
  case 0: lua_pushinteger(L, (lua_Integer)fuzz_u64(&b->in)); break;
  case 1: lua_pushinteger(L, (lua_Integer)fuzz_byte(&b->in)); break;
  case 2: lua_pushboolean(L, 0); break;
  case 3: lua_pushnumber(L, 1.5); break;
  case 4: lua_pushliteral(L, "7"); break;
  default: lua_pushnil(L); break;
  }
  lua_setfield(L, b->req, "tenant");
}

static void op_misc(builder *b)
{
  lua_State *L = b->L;
  static const char *const fields[] = {"timeout", "deadline", "max_retries", "reveal_token",
                                       "unknown", "query", "headers", "body"};
  unsigned sel = fuzz_byte(&b->in);
  const char *f = fields[sel % 8];
  if (sel & 0x80) {
    lua_pushliteral(L, "not-a-table");
  } else if (sel % 8 == 3) {
    lua_pushboolean(L, (sel >> 3) & 1);
  } else if (sel % 8 >= 5) {
    return; /* those have their own ops; only the wrong-type case is interesting here */
  } else {
    lua_pushinteger(L, (lua_Integer)((int)((sel >> 3) & 15) - 4));
  }
  lua_setfield(L, b->req, f);
  if (strcmp(f, "query") == 0) b->query = 0;
  if (strcmp(f, "headers") == 0) b->headers = 0;
}

/* FUZZ_VERBOSE=1 prints what each input became, to check that a seed does what it should. */
static int verbose;

/* ---- invariants ------------------------------------------------------------------------------ */

static int token_char(unsigned char ch)
{
  return isalnum(ch) || (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static void check_request(lua_State *L, fx_client *c, const fx_spec *s, fx_call *r)
{
  size_t blen = strlen(c->base_url), i;
  struct curl_slist *h;
  FUZZ_CHECK(r->method[0] != '\0', "empty method");
  for (i = 0; r->method[i]; i++)
    FUZZ_CHECK(isupper((unsigned char)r->method[i]), "method %s", r->method);
  FUZZ_CHECK(r->url != NULL, "no URL");
  FUZZ_CHECK(strncmp(r->url, c->base_url, blen) == 0 && r->url[blen] == '/',
             "URL %s is not under the base URL %s", r->url, c->base_url);
  for (i = 0; r->url[i]; i++) {
    unsigned char ch = (unsigned char)r->url[i];
    FUZZ_CHECK(ch >= 0x21 && ch <= 0x7e, "URL byte 0x%02x at %zu: %s", ch, i, r->url);
    FUZZ_CHECK(ch != '#', "URL has a fragment: %s", r->url); /* it would cut the path short */
  }
  if (verbose) fprintf(stderr, "%s %s\n", r->method, r->url);
  for (h = r->headers; h != NULL; h = h->next) {
    /* "Name: value", "Name:" (left out, libcurl's too) or "Name;" (sent empty) */
    const char *line = h->data, *colon = line + strcspn(line, ":;");
    FUZZ_CHECK(*colon != '\0' && colon > line, "header line without a name: %s", line);
    FUZZ_CHECK(*colon == ':' || colon[1] == '\0', "a ';' line with a value: %s", line);
    for (i = 0; line + i < colon; i++)
      FUZZ_CHECK(token_char((unsigned char)line[i]), "bad header name byte 0x%02x in %s",
                 (unsigned char)line[i], line);
    for (i = 0; line[i]; i++)
      FUZZ_CHECK(line[i] != '\r' && line[i] != '\n', "CR/LF in header line: %s", line);
    if (verbose) fprintf(stderr, "  %s\n", line);
  }
  if (r->has_body && s->body != 0 && lua_type(L, s->body) != LUA_TSTRING) {
    /* the encoder's output must read back and re-encode to the same canonical text */
    char err[256];
    fx_buf *scratch = fx_buf_push(L), *again = fx_buf_push(L);
    FUZZ_CHECK(fx_json_decode(L, r->body.data, r->body.len, scratch, err, sizeof err) == 0,
               "JSON body does not decode: %s", err);
    FUZZ_CHECK(fx_json_encode(L, -1, "body", again, err, sizeof err) == 0,
               "JSON body does not re-encode: %s", err);
    FUZZ_CHECK(again->len == r->body.len && memcmp(again->data, r->body.data, again->len) == 0,
               "JSON body not canonical: %.*s", (int)r->body.len, r->body.data);
    lua_pop(L, 3);
  }
}

/* (client, request table) -> true, or nil, err; raises on programmer errors like client:prepare */
static int prepare(lua_State *L)
{
  fx_client *c = fx_client_check(L, 1);
  fx_spec s;
  fx_fail f;
  fx_call *r;
  luaL_checktype(L, 2, LUA_TTABLE);
  fx_spec_init(&s);
  fx_spec_from_table(L, 2, &s); /* raises on a malformed table */
  if (s.method == NULL) s.method = "GET";
  if (s.path == NULL) luaL_error(L, "'path' is required");
  r = fx_call_new(L, 1, FX_K_API);
  if (fx_prepare(L, c, &s, r, &f) != 0) {
    FUZZ_CHECK(f.kind != NULL && f.message[0] != '\0', "failure without kind or message");
    return fx_error_return(L, &f, r);
  }
  check_request(L, c, &s, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int build_and_prepare(lua_State *L)
{
  builder b;
  unsigned cflags;
  int client;
  memset(&b, 0, sizeof b);
  b.L = L;
  b.in.p = (const uint8_t *)lua_touserdata(L, 2);
  b.in.n = (size_t)lua_tointeger(L, 3);
  lua_settop(L, 1); /* the module table */

  cflags = fuzz_byte(&b.in);
  lua_newtable(L);
  lua_pushstring(L, base_urls[(cflags >> 3) & 3]);
  lua_setfield(L, -2, "base_url");
  if (!(cflags & 0x20)) {
    lua_pushliteral(L, "t");
    lua_setfield(L, -2, "token");
  }
  if (cflags & 1) {
    lua_pushliteral(L, "/v1/");
    lua_setfield(L, -2, "prefix");
  }
  if (cflags & 2) {
    lua_pushinteger(L, 7);
    lua_setfield(L, -2, "tenant");
  }
  if (cflags & 4) {
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "fuzz");
    lua_setfield(L, -2, "X-Client");
    lua_pushliteral(L, "text/plain");
    lua_setfield(L, -2, "Accept");
    lua_setfield(L, -2, "headers");
  }
  fuzz_client(L, 1);
  client = lua_gettop(L);

  lua_newtable(L);
  b.req = lua_gettop(L);
  lua_pushliteral(L, "/v1/things");
  lua_setfield(L, b.req, "path");
  fx_buf_push(L);
  b.scratch = lua_gettop(L);

  while (b.in.n > 0 && lua_gettop(L) < 200) {
    switch (fuzz_byte(&b.in) % OP_COUNT) {
    case OP_METHOD: {
      unsigned sel = fuzz_byte(&b.in);
      if (sel < 6) lua_pushstring(L, known_methods[sel]);
      else fuzz_push_lstr(L, &b.in);
      lua_setfield(L, b.req, "method");
      break;
    }
    case OP_PATH:
      fuzz_push_lstr(L, &b.in);
      lua_setfield(L, b.req, "path");
      break;
    case OP_QUERY: set_pair(&b, subtable(&b, &b.query, "query")); break;
    case OP_HEADER: op_header(&b); break;
    case OP_BODY_RAW:
      fuzz_push_lstr(L, &b.in);
      lua_setfield(L, b.req, "body");
      break;
    case OP_BODY_JSON: op_body_json(&b); break;
    case OP_FORM: set_pair(&b, subtable(&b, &b.form, "form")); break;
    case OP_MULTIPART: op_multipart(&b); break;
    case OP_TENANT: op_tenant(&b); break;
    default: op_misc(&b); break;
    }
  }

  /* prepare in its own protected call: raising there is allowed, it must only not leak */
  lua_pushcfunction(L, prepare);
  lua_pushvalue(L, client);
  lua_pushvalue(L, b.req);
  if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
    FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "non-string error from prepare");
    fuzz_touch(L, -1, 0);
    if (verbose) fprintf(stderr, "raised: %s\n", lua_tostring(L, -1));
  } else {
    fuzz_touch(L, -1, 0);
    fuzz_touch(L, -2, 0);
    if (verbose) fprintf(stderr, "%s\n", lua_isnil(L, -2) ? luaL_tolstring(L, -1, NULL) : "ok");
  }
  lua_settop(L, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  lua_State *L = fuzz_state(); /* module table at 1 */
  verbose = getenv("FUZZ_VERBOSE") != NULL;
  lua_pushcfunction(L, build_and_prepare);
  lua_insert(L, 1);
  lua_pushlightuserdata(L, (void *)data);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    fprintf(stderr, "request harness raised outside prepare: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_close(L); /* collects the client, the request and their C memory */
  return 0;
}
