# Benchmarks. `make bench` installs what it lacks (tools/install-deps bench), builds the core for
# Lua 5.4 and LuaJIT, the host program and the raw libcurl loop, then runs bench/bench.lua: every
# client against loopback servers it starts and stops, in rounds, into bench/results/latest.md and
# latest.png. Its knobs (BENCH_QUICK=1, BENCH_ROUNDS, ...) are described at the top of bench.lua.
# With LUACURLV3_SRC=<a Lua-cURLv3 source tree>, Lua-cURLv3 is built for Lua 5.4 and joins in.

BENCH_RAW_GET := build/bench/raw_get
BENCH_LCURLV3 := build/bench/lcurlv3/lcurl.so
BENCH_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/build/lua5.4/?.so;;"

.PHONY: bench bench-deps bench-build bench-compare

bench: bench-deps
	$(MAKE) bench-build
	$(BENCH_ENV) lua5.4 bench/bench.lua $(BENCH_RAW_GET) build/host/flextell-host

bench-deps:
	sh tools/install-deps bench

# A separate make, so that the pkg-config flags are read after bench-deps installed the packages.
bench-build:
	$(MAKE) LUA=lua5.4 core
	$(MAKE) LUA=luajit core
	$(MAKE) host $(BENCH_RAW_GET) $(if $(strip $(LUACURLV3_SRC)),$(BENCH_LCURLV3))

$(BENCH_RAW_GET): bench/peers/raw_get.c
	mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# Lua-cURLv3's own sources as they are (its warnings are its own business: -w).
$(BENCH_LCURLV3): $(wildcard $(LUACURLV3_SRC)/src/*.c)
	@test -f "$(LUACURLV3_SRC)/src/lcurl.c" || { echo "LUACURLV3_SRC=$(LUACURLV3_SRC) has no src/lcurl.c" >&2; exit 1; }
	mkdir -p $(@D)
	$(CC) -O2 -w -shared -fPIC $(shell $(PKG_CONFIG) --cflags lua5.4) $(CURL_CFLAGS) -o $@ \
	  $(LUACURLV3_SRC)/src/*.c $(CURL_LIBS)

# make bench-compare OLD=<commit>: the blocking path (a small GET, a 100-item page, a 100-page
# cursor walk) of the code at <commit> against the working tree's, each as a ratio to raw libcurl,
# in alternating rounds of one run (bench/compare.lua). The old side is built from git archive in
# build/bench-old/; src/ is not touched. Without OLD: the newest commit on main without
# src/call.c, i.e. the last one before the call-state-machine redesign. Results also go to
# bench/results/latest.md (its "compare" section).
OLD ?=
bench-compare: core $(BENCH_RAW_GET)
	$(DEV_ENV) LUA=$(LUA) $(LUA) bench/compare.lua $(BENCH_RAW_GET) $(OLD)
