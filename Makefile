# lua-flextell build. Honours LuaRocks' variables (LUA_INCDIR, LUA_LIBDIR, LIBFLAG, CFLAGS,
# PREFIX, LUA_VERSION, INST_LIBDIR/INST_LUADIR); `make LUA=luajit` builds for LuaJIT/OpenResty.

LUA ?= lua5.4
ifeq ($(LUA),luajit)
LUA_VERSION ?= 5.1
LUA_PC ?= luajit
else
LUA_VERSION ?= 5.4
LUA_PC ?= lua$(LUA_VERSION)
endif

CC ?= cc
PKG_CONFIG ?= pkg-config
ifdef LUA_INCDIR
LUA_CFLAGS := -I$(LUA_INCDIR)
else
LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(LUA_PC))
endif
CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl)
# The oldest libcurl the core builds with (CURLOPT_PROTOCOLS_STR is 7.85); src/fx.h checks too.
CURL_MIN := 7.85.0

CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
FX_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) \
             $(LUA_CFLAGS) $(CURL_CFLAGS)
LIBFLAG ?= -shared
LDLIBS := $(CURL_LIBS) -lm -pthread

BUILD ?= build/$(LUA)
SRC := $(wildcard src/*.c)
OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRC))
CORE := $(BUILD)/flextell/core.so

PREFIX ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR ?= $(PREFIX)/bin

.PHONY: all core deps deps-demo check-curl test test-lua test-luajit lint check-asan check-oom check-valgrind check-tsan check-install demo \
        sandbox bench host install uninstall clean luajit openresty soak fuzz fuzz-build

all: $(CORE)
core: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)/obj
	$(CC) $(FX_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj: | check-curl

check-curl:
	@$(PKG_CONFIG) --atleast-version=$(CURL_MIN) libcurl || { \
	  echo "lua-flextell needs libcurl $(CURL_MIN) or newer (found: $$($(PKG_CONFIG) --modversion libcurl 2>/dev/null || echo none));" \
	       "on Debian: apt-get install libcurl4-openssl-dev" >&2; exit 1; }

$(CORE): $(OBJ) | $(BUILD)/flextell
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJ) $(LDLIBS)

$(BUILD)/obj $(BUILD)/flextell:
	mkdir -p $@

luajit:
	$(MAKE) LUA=luajit

# The core for nginx's Lua module (lua-nginx-module, OpenResty): the LuaJIT build, in build/luajit.
openresty: luajit

deps:
	sh tools/install-deps test

deps-demo:
	sh tools/install-deps demo

include mk/test.mk
include mk/fuzz.mk

install: $(CORE)
	install -d $(DESTDIR)$(INST_LIBDIR)/flextell $(DESTDIR)$(INST_LUADIR)/flextell/sandbox $(DESTDIR)$(INST_BINDIR)
	install -m 0755 $(CORE) $(DESTDIR)$(INST_LIBDIR)/flextell/core.so
	cd lua && find flextell -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(INST_LUADIR)/{} \;
	cd lua && find flextell -name '*.conf' -exec install -D -m 0644 {} $(DESTDIR)$(INST_LUADIR)/{} \;
	for f in bin/*; do install -m 0755 $$f $(DESTDIR)$(INST_BINDIR)/; done

uninstall:
	for f in bin/*; do rm -f $(DESTDIR)$(INST_BINDIR)/$${f#bin/}; done
	rm -f $(DESTDIR)$(INST_LIBDIR)/flextell/core.so
	rm -rf $(DESTDIR)$(INST_LUADIR)/flextell

clean:
	rm -rf build

# The main job: build, start the sandbox, walk the tour against it, stop the sandbox.
DEV_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;" LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

demo: deps-demo
	$(MAKE) core
	$(DEV_ENV) $(LUA) examples/tour.lua

sandbox: core
	$(DEV_ENV) $(LUA) bin/flextell-sandbox run --tls

bench: core $(BUILD)/bench/raw_get
	$(DEV_ENV) $(LUA) bench/bench.lua $(BUILD)/bench/raw_get

# make bench-compare OLD=<commit>: the blocking path (a small GET, a 100-item page, a 100-page
# cursor walk) of the code at <commit> against the working tree's, each as a ratio to raw libcurl,
# in alternating rounds of one run (bench/compare.lua). The old side is built from git archive in
# build/bench-old/; src/ is not touched. Without OLD: the newest commit on main without
# src/call.c, i.e. the last one before the call-state-machine redesign. Results also go to
# bench/results/latest.md.
.PHONY: bench-compare
OLD ?=
bench-compare: core $(BUILD)/bench/raw_get
	$(DEV_ENV) LUA=$(LUA) $(LUA) bench/compare.lua $(BUILD)/bench/raw_get $(OLD)

$(BUILD)/bench/raw_get: bench/raw_get.c
	mkdir -p $(BUILD)/bench
	$(CC) -O2 -Wall -Wextra -Werror $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

# examples/host: a program that embeds Lua 5.4 with the core compiled in (no core.so), whatever
# LUA the rest of the build is for.
HOST_LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua5.4)
HOST_LUA_LIBS := $(shell $(PKG_CONFIG) --libs lua5.4)

host: build/host/flextell-host

build/host/flextell-host: examples/host/host.c $(SRC) $(wildcard src/*.h) | check-curl
	mkdir -p build/host
	$(CC) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) $(CFLAGS) $(HOST_LUA_CFLAGS) $(CURL_CFLAGS) \
	  -o $@ examples/host/host.c $(SRC) $(LDFLAGS) $(HOST_LUA_LIBS) $(LDLIBS)
