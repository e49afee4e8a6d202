# Test targets. `make test` is what CI runs: it installs what is missing, builds for Lua 5.4 and
# LuaJIT, lints, runs the specs on both, then again under ASan+UBSan, sweeps out-of-memory
# failures through every allocation of a set of calls under ASan (check-oom), runs the specs under
# valgrind, runs eight threads with a state each under ThreadSanitizer (check-tsan), checks the
# installs, soaks, and fuzzes each harness for FUZZ_SECONDS (mk/fuzz.mk).

BUSTED ?= /usr/bin/busted
BUSTED_FLAGS ?= -o utfTerminal
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
TSAN_FLAGS := -fsanitize=thread -O1 -g
VALGRIND_FLAGS := --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                  --show-leak-kinds=definite --track-fds=no --num-callers=30 -q

test: deps
	$(MAKE) core
	$(MAKE) LUA=luajit core
	$(MAKE) lint
	$(MAKE) test-lua
	$(MAKE) test-luajit
	$(MAKE) check-asan
	$(MAKE) check-oom
	$(MAKE) check-valgrind
	$(MAKE) check-tsan
	$(MAKE) check-install
	$(MAKE) soak
	$(MAKE) fuzz
	@echo "make test: all suites passed"

lint:
	luacheck -q lua spec bin/flextell bin/flextell-sandbox examples bench tools/*.lua

test-lua: core
	lua5.4 $(BUSTED) $(BUSTED_FLAGS)

test-luajit:
	$(MAKE) LUA=luajit core
	luajit $(BUSTED) $(BUSTED_FLAGS) --run=luajit

# The C core instrumented with AddressSanitizer and UBSan, run by an interpreter that links the
# sanitizer runtime (tools/lua-asan.c), so child processes stay uninstrumented. Leak checking
# is on: every allocation of the core has an owner that frees it.
build/asan/lua-asan: tools/lua-asan.c
	mkdir -p build/asan
	$(CC) $(ASAN_FLAGS) $(shell $(PKG_CONFIG) --cflags lua5.4) -o $@ $< \
	  -fsanitize=address,undefined $(shell $(PKG_CONFIG) --libs lua5.4) -lm -ldl

check-asan: build/asan/lua-asan
	$(MAKE) BUILD=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" core
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:exitcode=98 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	build/asan/lua-asan $(BUSTED) $(BUSTED_FLAGS) --run=asan

# The out-of-memory policy: when memory runs out, a call raises "not enough memory" after ending
# its transfer cleanly; never a structured error, a crash or a leak. spec/c/oom.c embeds Lua 5.4
# with the core's sources compiled in, and fails the n-th allocation of a call (Lua's, the
# core's malloc family through --wrap, libcurl's through curl_global_init_mem), for every n, once
# and then from n on; spec/c/oom.lua checks each outcome and a fresh client after it. Under ASan
# and UBSan with leak checking, each scenario in a process of its own (a crash in one hides no
# other, a leak report names one), against a sandbox of its own (no rate limit; consent approved
# at once, as the OAuth scenario needs a new code for every run), stopped by the trap however
# the run ends. FLEXTELL_OOM_ONLY=get,post... and FLEXTELL_OOM_MODES=once narrow it.
OOM_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup \
            -Wl,--wrap=curl_multi_perform,--wrap=curl_multi_info_read
build/oom/oom: spec/c/oom.c $(SRC) $(wildcard src/*.h)
	mkdir -p build/oom
	$(CC) $(ASAN_FLAGS) -std=c99 -D_POSIX_C_SOURCE=200809L $(WARN) $(shell $(PKG_CONFIG) --cflags lua5.4) \
	  $(CURL_CFLAGS) -Isrc -o $@ spec/c/oom.c $(SRC) -fsanitize=address,undefined $(OOM_WRAP) \
	  $(shell $(PKG_CONFIG) --libs lua5.4) $(LDLIBS) -ldl

check-oom: core build/oom/oom
	@sb=$$($(DEV_ENV) lua5.4 bin/flextell-sandbox start --rate-limit 1000000 --auto-approve) || exit 1; \
	eval "$$sb"; \
	trap '$(DEV_ENV) lua5.4 bin/flextell-sandbox stop "$$FLEXTELL_SANDBOX_PREFIX"' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "check-oom: sandbox at $$FLEXTELL_SANDBOX_URL"; \
	export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:exitcode=98 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	names=$$(build/oom/oom spec/c/oom.lua lua list) && [ -n "$$names" ] || exit 1; \
	failed=; \
	for s in $$names; do \
	  echo "check-oom: scenario $$s"; \
	  FLEXTELL_OOM_ONLY=$$s build/oom/oom spec/c/oom.lua lua || failed="$$failed $$s"; \
	done; \
	if [ -n "$$failed" ]; then echo "check-oom: failed:$$failed" >&2; exit 1; fi; \
	echo "check-oom: every scenario passed"

check-valgrind: core
	valgrind $(VALGRIND_FLAGS) lua5.4 $(BUSTED) $(BUSTED_FLAGS) --run=valgrind

# The C core instrumented with ThreadSanitizer, used by eight threads at once, each with its own
# lua_State and client (spec/c/threads.c), against a sandbox of its own. Process-wide state in
# the core, such as libcurl's global init, must be safe when those threads meet it together.
# The host links the TSan runtime; Lua, libcurl and OpenSSL are not instrumented, so only the
# core's own memory accesses (and the libc calls TSan intercepts) are checked. The sandbox's
# rate limit is lifted: all threads share one token, and 429 waits would only slow the run.
# The trap stops the sandbox however the run ends.
TSAN_ENV = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua" LUA_CPATH="$(CURDIR)/build/tsan/?.so" \
           TSAN_OPTIONS=halt_on_error=1:exitcode=97
build/tsan/threads: spec/c/threads.c
	mkdir -p build/tsan
	$(CC) $(TSAN_FLAGS) -std=c99 -Wall -Wextra -Werror $(shell $(PKG_CONFIG) --cflags lua5.4) \
	  -o $@ $< -fsanitize=thread $(shell $(PKG_CONFIG) --libs lua5.4) -pthread -ldl -lm

check-tsan: core build/tsan/threads
	$(MAKE) BUILD=build/tsan CFLAGS="$(TSAN_FLAGS)" LDFLAGS=-fsanitize=thread core
	@sb=$$($(DEV_ENV) lua5.4 bin/flextell-sandbox start --rate-limit 1000000) || exit 1; \
	eval "$$sb"; \
	trap '$(DEV_ENV) lua5.4 bin/flextell-sandbox stop "$$FLEXTELL_SANDBOX_PREFIX"' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "check-tsan: sandbox at $$FLEXTELL_SANDBOX_URL"; \
	$(TSAN_ENV) build/tsan/threads

# `make install` and `luarocks make` put a working module where require finds it.
INSTALLED = $(CURDIR)/build/install-check/usr/local
ROCKS = $(CURDIR)/build/rocks-check
check-install: core
	rm -rf build/install-check build/rocks-check
	$(MAKE) install DESTDIR=$(CURDIR)/build/install-check PREFIX=/usr/local
	cd build && LUA_PATH="$(INSTALLED)/share/lua/5.4/?.lua;$(INSTALLED)/share/lua/5.4/?/init.lua" \
	  LUA_CPATH="$(INSTALLED)/lib/lua/5.4/?.so" lua5.4 ../tools/check-installed.lua "make install"
	test -x $(INSTALLED)/bin/flextell-sandbox || { echo "make install: bin/flextell-sandbox missing" >&2; exit 1; }
	LUA_PATH="$(INSTALLED)/share/lua/5.4/?.lua;$(INSTALLED)/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$(INSTALLED)/lib/lua/5.4/?.so;;" $(INSTALLED)/bin/flextell --version | grep -qx 'flextell [0-9.]*' \
	  || { echo "make install: the flextell command does not run" >&2; exit 1; }
	grep -q 'complete -F _flextell' $(INSTALLED)/share/bash-completion/completions/flextell \
	  || { echo "make install: the bash completion of flextell is missing" >&2; exit 1; }
	luarocks --lua-version 5.4 make rockspec/lua-flextell-*.rockspec --deps-mode=none --tree $(ROCKS) >/dev/null
	cd build && LUA_PATH="$(ROCKS)/share/lua/5.4/?.lua;$(ROCKS)/share/lua/5.4/?/init.lua" \
	  LUA_CPATH="$(ROCKS)/lib/lua/5.4/?.so" lua5.4 ../tools/check-installed.lua "luarocks make"
	test -x $(ROCKS)/bin/flextell-sandbox || { echo "luarocks make: bin/flextell-sandbox missing" >&2; exit 1; }
	LUA_PATH="$(ROCKS)/share/lua/5.4/?.lua;$(ROCKS)/share/lua/5.4/?/init.lua;;" \
	  LUA_CPATH="$(ROCKS)/lib/lua/5.4/?.so;;" $(ROCKS)/bin/flextell --version | grep -qx 'flextell [0-9.]*' \
	  || { echo "luarocks make: the flextell command does not run" >&2; exit 1; }

# Thousands of calls with random faults; memory and file descriptors must stay flat.
soak: core
	lua5.4 $(BUSTED) $(BUSTED_FLAGS) --run=soak
