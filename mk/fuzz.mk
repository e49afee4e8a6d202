# libFuzzer harnesses over the C core (fuzz/README.md). Included from the Makefile:
#   make fuzz-build                    build build/fuzz/<harness> for every harness
#   make fuzz [FUZZ_SECONDS=60]        run each on a copy of its seed corpus; fails on a crash
#   make fuzz FUZZ_TARGETS=json_fuzz   only some harnesses
# The core is built again here (clang, ASan+UBSan, coverage instrumentation) into build/fuzz,
# always against Lua 5.4, whatever LUA the rest of the Makefile builds for.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= json_fuzz response_fuzz request_fuzz decide_fuzz
FUZZ_FLAGS ?=
FUZZ_DIR := build/fuzz
FUZZ_PKGS := $(shell $(PKG_CONFIG) --cflags lua5.4 libcurl)
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_COMMON := -std=c99 -D_POSIX_C_SOURCE=200809L -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
               $(FUZZ_PKGS)
# -Werror only for the harnesses: the core's own build enforces it with its compiler, and a
# clang-only warning in src/ should not stop a fuzz run.
FUZZ_WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
FUZZ_LIBS := -llua5.4 $(shell $(PKG_CONFIG) --libs libcurl) -lm
FUZZ_OBJ := $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(wildcard src/*.c))
FUZZ_BINS := $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
# LeakSanitizer stays on: each input runs in its own lua_State, closed at the end, so a leak is
# pinned on the input that caused it.
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
FUZZ_RUN_FLAGS := -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
                  -max_total_time=$(FUZZ_SECONDS)

.PHONY: fuzz fuzz-build

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: src/%.c $(wildcard src/*.h) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_COMMON) -Wall -Wextra -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BINS): $(FUZZ_DIR)/%: fuzz/%.c fuzz/fuzz_common.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_COMMON) $(FUZZ_WARN) -Werror -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJ) \
	  $(FUZZ_LIBS)

$(FUZZ_DIR)/obj:
	mkdir -p $@

# Each harness fuzzes build/fuzz/corpus-<name> (kept between runs so local runs build on each
# other; the checked-in seeds are copied in first). Crashes land in build/fuzz/artifacts-<name>/.
# All harnesses run even when one fails; the target fails if any did. libFuzzer's progress goes
# to build/fuzz/log-<name>.txt: the final stats are shown, or the log's end on a crash.
fuzz: fuzz-build
	@failed=""; \
	for n in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus-$$n $(FUZZ_DIR)/artifacts-$$n; \
	  cp fuzz/corpus/$$n/* $(FUZZ_DIR)/corpus-$$n/; \
	  dict=""; if [ -f fuzz/$$n.dict ]; then dict="-dict=fuzz/$$n.dict"; fi; \
	  echo "== $$n: $(FUZZ_SECONDS) s"; \
	  if $(FUZZ_ENV) $(FUZZ_DIR)/$$n $(FUZZ_RUN_FLAGS) $$dict \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts-$$n/ $(FUZZ_FLAGS) $(FUZZ_DIR)/corpus-$$n \
	    > $(FUZZ_DIR)/log-$$n.txt 2>&1; then \
	    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss)' \
	      $(FUZZ_DIR)/log-$$n.txt; \
	  else \
	    tail -n 60 $(FUZZ_DIR)/log-$$n.txt; failed="$$failed $$n"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashes in:$$failed (see $(FUZZ_DIR)/artifacts-*)"; exit 1; fi; \
	echo "fuzz: no crashes"

# Line coverage of the core reached by each harness's corpus (build/fuzz/corpus-<name>, else
# the seeds): a separate build with clang's source-based coverage, no sanitizers.
FUZZ_COV_DIR := build/fuzz/cov
FUZZ_COV_FLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -O0 -g -fprofile-instr-generate \
                  -fcoverage-mapping $(FUZZ_PKGS)
LLVM_PROFDATA ?= $(firstword $(wildcard /usr/bin/llvm-profdata-*) llvm-profdata)
LLVM_COV ?= $(firstword $(wildcard /usr/bin/llvm-cov-*) llvm-cov)

.PHONY: fuzz-coverage
fuzz-coverage:
	@mkdir -p $(FUZZ_COV_DIR)
	@for n in $(FUZZ_TARGETS); do \
	  $(FUZZ_CC) $(FUZZ_COV_FLAGS) -fsanitize=fuzzer -o $(FUZZ_COV_DIR)/$$n fuzz/$$n.c src/*.c \
	    $(FUZZ_LIBS) || exit 1; \
	  corpus=$(FUZZ_DIR)/corpus-$$n; [ -d $$corpus ] || corpus=fuzz/corpus/$$n; \
	  LLVM_PROFILE_FILE=$(FUZZ_COV_DIR)/$$n.profraw $(FUZZ_COV_DIR)/$$n -runs=0 $$corpus \
	    >/dev/null 2>&1 || exit 1; \
	  $(LLVM_PROFDATA) merge -sparse -o $(FUZZ_COV_DIR)/$$n.profdata $(FUZZ_COV_DIR)/$$n.profraw; \
	  echo "== $$n ($$corpus)"; \
	  case $$n in json_fuzz) files=src/json.c;; response_fuzz) files="src/response.c src/error.c";; \
	    request_fuzz) files="src/request.c src/json.c";; *) files=src;; esac; \
	  $(LLVM_COV) report $(FUZZ_COV_DIR)/$$n -instr-profile=$(FUZZ_COV_DIR)/$$n.profdata $$files \
	    | awk 'NF >= 13 && $$2 ~ /^[0-9]+$$/ { sub(".*/", "", $$1); \
	      printf "  %-12s lines %5s  missed %4s  line cover %s\n", $$1, $$8, $$9, $$10 }'; \
	done
