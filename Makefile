# conch: build, run, test.
#
#   make          builds bin/conch (warnings are errors)
#   make run      installs missing build and run packages, starts a dev PostgreSQL under var/, migrates, serves
#   make test     installs missing build, run and test packages, runs every suite (also under ASan + UBSan)
#   make fuzz     runs each libFuzzer target for FUZZ_SECONDS (default 60)
#   make bench    the benchmark suite (not part of make test)

SHELL      := /bin/bash
PKGS       := libmicrohttpd jansson libcurl libpq openssl
CC         ?= cc
CLANG      ?= clang
# The release is VERSION; the commit comes from git (unknown outside a checkout).
VERSION    := $(shell cat VERSION)
COMMIT     := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -Wno-unused-parameter
BASEFLAGS  := -std=c11 -D_GNU_SOURCE -Isrc $(WARN)
PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CFLAGS     ?= -O2 -g
SANFLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

SRC        := $(sort $(wildcard src/*.c src/*/*.c))
LIB_SRC    := $(filter-out src/main.c,$(SRC))
OBJ        := $(SRC:%.c=build/%.o)
LIB_OBJ    := $(LIB_SRC:%.c=build/%.o)
ASAN_OBJ   := $(SRC:%.c=build/asan/%.o)
ASAN_LIB   := $(LIB_SRC:%.c=build/asan/%.o)
UNIT_SRC   := $(sort $(wildcard tests/unit/*.c))
DB_TEST_SRC := tests/unit/main.c $(sort $(wildcard tests/db/*.c))
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: FORCE all deps deps-run deps-test run test test-unit test-integration fuzz fuzz-quick bench clean format

all: bin/conch

# --- build ---------------------------------------------------------------

# Only main.c includes build/version.h, rewritten when the version or the
# commit changes, so a new commit rebuilds one object.
build/version.h: FORCE
	@mkdir -p build
	@printf '#define CONCH_VERSION "%s"\n#define CONCH_COMMIT "%s"\n' '$(VERSION)' '$(COMMIT)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
build/src/main.o build/asan/src/main.o: build/version.h
build/src/main.o build/asan/src/main.o: BASEFLAGS += -Ibuild
FORCE:

# V=1 shows the full compiler lines.
Q := $(if $(V),,@)

build/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(BASEFLAGS) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC asan $<")
	$(Q)$(CC) $(BASEFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

bin/conch: $(OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

bin/conch-asan: $(ASAN_OBJ)
	@mkdir -p bin
	$(CC) $(SANFLAGS) -o $@ $^ $(PKG_LIBS)

# Unit tests (Check) link every object but main.o.
bin/unit-tests: $(UNIT_SRC) $(LIB_OBJ)
	@mkdir -p bin
	$(CC) $(BASEFLAGS) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(UNIT_SRC) $(LIB_OBJ) \
		$(shell pkg-config --libs check) $(PKG_LIBS)

bin/unit-tests-asan: $(UNIT_SRC) $(ASAN_LIB)
	@mkdir -p bin
	$(CC) $(BASEFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -o $@ $(UNIT_SRC) $(ASAN_LIB) \
		$(shell pkg-config --libs check) $(PKG_LIBS)

# Database tests (Check) against a real PostgreSQL named by TEST_CONCH_DATABASE_URL.
bin/db-tests: $(DB_TEST_SRC) $(LIB_OBJ)
	@mkdir -p bin
	$(CC) $(BASEFLAGS) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(DB_TEST_SRC) $(LIB_OBJ) \
		$(shell pkg-config --libs check) $(PKG_LIBS)

bin/db-tests-asan: $(DB_TEST_SRC) $(ASAN_LIB)
	@mkdir -p bin
	$(CC) $(BASEFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -o $@ $(DB_TEST_SRC) $(ASAN_LIB) \
		$(shell pkg-config --libs check) $(PKG_LIBS)

# libFuzzer targets are built with clang against the sources they exercise.
build/fuzz/%: tests/fuzz/%.c $(LIB_SRC)
	@mkdir -p build/fuzz
	$(CLANG) $(BASEFLAGS) -Wno-unused-command-line-argument -O1 -g \
		-fsanitize=fuzzer,address,undefined $(PKG_CFLAGS) -o $@ $< $(LIB_SRC) $(PKG_LIBS)

-include $(OBJ:.o=.d) $(ASAN_OBJ:.o=.d)

# --- packages ------------------------------------------------------------

# What building and running need (make run), and that plus the test tools
# (make test, make bench): scripts/deps.sh says which packages each is.
deps-run:
	@scripts/deps.sh run

deps deps-test:
	@scripts/deps.sh test

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# --- run -----------------------------------------------------------------

run: deps-run
	@$(MAKE) --no-print-directory bin/conch
	@scripts/devdb.sh start
	@set -a; . var/dev.env; set +a; bin/conch migrate && exec bin/conch serve

# --- test ----------------------------------------------------------------

test: deps-test
	@$(MAKE) --no-print-directory bin/conch bin/conch-asan bin/unit-tests bin/unit-tests-asan \
		bin/db-tests bin/db-tests-asan $(FUZZ_BIN)
	@$(MAKE) --no-print-directory node_modules/.package-lock.json
	@scripts/test.sh

test-unit: bin/unit-tests bin/unit-tests-asan
	bin/unit-tests && bin/unit-tests-asan

fuzz: $(FUZZ_BIN)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

fuzz-quick: $(FUZZ_BIN)
	@scripts/fuzz.sh 5 $(FUZZ_BIN)

# --- bench ---------------------------------------------------------------

# The load generator: signs Slack requests with OpenSSL, checks answers with jansson.
build/bench/loadgen: bench/loadgen.c
	@mkdir -p build/bench
	$(CC) $(BASEFLAGS) $(CFLAGS) $(shell pkg-config --cflags jansson openssl) -o $@ $< \
		$(shell pkg-config --libs jansson openssl)

# The peer of the benchmark (a Bolt-js app) has its own locked packages.
bench/peer/node_modules/.package-lock.json: bench/peer/package.json bench/peer/package-lock.json
	cd bench/peer && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bench: deps-test bin/conch build/bench/loadgen node_modules/.package-lock.json \
		bench/peer/node_modules/.package-lock.json
	@scripts/bench.sh

format:
	clang-format -i $(SRC) $(wildcard src/*.h src/*/*.h) $(UNIT_SRC) $(FUZZ_SRC)

clean:
	rm -rf build bin
