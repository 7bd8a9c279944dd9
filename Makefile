# One non-recursive Makefile: the only entry point for building, testing,
# benchmarking and the labs. Areas with many rules keep them in a fragment
# (tests/tests.mk, harness/harness.mk, ...) included below; there is no
# recursive make anywhere.
#
#   make                 build bin/server-<backend> for every backend here
#   make test            unit tests, then the integration suite on every backend,
#                        plain and under sanitizers
#   make bench-all       the full comparison (see harness/README.md)
#   make help            every target
#
# V=1 shows the commands. CI=true (as in CI) turns warnings into errors.

.DEFAULT_GOAL := all
MAKEFLAGS += --no-builtin-rules

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
OPT ?= -O2
CFLAGS ?= $(OPT) -g
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wwrite-strings -Wformat=2 -Wundef -Wvla -Wcast-qual
ifeq ($(CI),true)
WARNINGS += -Werror
endif
ifneq ($(WERROR),)
WARNINGS += -Werror
endif
ALL_CPPFLAGS := -D_GNU_SOURCE -DDEFAULT_ROOT='"$(CURDIR)/www"' -Icommon $(CPPFLAGS)
ALL_CFLAGS := -std=c11 $(WARNINGS) $(CFLAGS) -pthread
ALL_LDFLAGS := -pthread $(LDFLAGS)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

# ---- what this platform builds ------------------------------------------
UNAME := $(shell uname -s)
BACKENDS := threads poll
ifeq ($(UNAME),Linux)
BACKENDS += epoll
HAVE_LIBURING := $(shell printf '\#include <liburing.h>\n' | $(CC) -E - >/dev/null 2>&1 && echo yes)
ifeq ($(HAVE_LIBURING),yes)
BACKENDS += io_uring
endif
endif
LIBS_io_uring := -luring

# Backends built from more than their one file (kqueue over its epoll layer)
# add themselves to BACKENDS and name their extra objects here.
-include compat/kqueue/kqueue.mk

COMMON_SRC := $(wildcard common/*.c)
# The sans-I/O part of common/: no sockets, no process. What the fuzz targets
# and the micro-benchmarks link, derived so that a new file cannot be missed.
COMMON_SANS_IO := $(filter-out $(addprefix common/,net.c net_win.c platform_win.c server.c), \
	$(COMMON_SRC))
SERVERS = $(BACKENDS:%=bin/server-%)

# Build variants: plain, ASan+UBSan, TSan. Each has its own object tree.
SAN_asan := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_tsan := -fsanitize=thread

all: $(SERVERS)
ifeq ($(UNAME)$(HAVE_LIBURING),Linux)
	@echo "note: io_uring backend skipped: liburing.h not found (apt-get install liburing-dev)"
endif

# build/<variant>/<dir>/<file>.o from <dir>/<file>.c
define variant_rules
build/$(1)/%.o: %.c
	$$(call msg,CC,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(ALL_CPPFLAGS) $$(ALL_CFLAGS) $$(SAN_$(1)) -MMD -MP -c $$< -o $$@

$(2)server-%: build/$(1)/backends/%.o $$(COMMON_SRC:%.c=build/$(1)/%.o)
	$$(call msg,LD,$$@)
	@mkdir -p $$(@D)
	$$(Q)$$(CC) $$(ALL_CFLAGS) $$(SAN_$(1)) $$^ -o $$@ $$(ALL_LDFLAGS) $$(LIBS_$$*)
endef
$(eval $(call variant_rules,plain,bin/))
$(eval $(call variant_rules,asan,bin/asan/))
$(eval $(call variant_rules,tsan,bin/tsan/))

# Objects are never deleted as intermediates (the sanitizer trees included).
.SECONDARY:
-include $(shell find build -name '*.d' 2>/dev/null)

asan: $(BACKENDS:%=bin/asan/server-%)
tsan: bin/tsan/server-threads

# ---- housekeeping -----------------------------------------------------------
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format: clean"

line-budget:
	@scripts/line-budget.py

clean:
	rm -rf build bin

help:
	@echo "Targets:"
	@echo "  all (default)   build bin/server-<backend>: $(BACKENDS)"
	@echo "  test            unit tests + integration suite on every backend (plain, ASan+UBSan, TSan)"
	@echo "  test-unit       C unit tests only (cmocka)"
	@echo "  test-integration  integration suite on the plain builds only"
	@echo "  bench-all       benchmark every backend and draw the charts (harness/README.md)"
	@echo "  bench-micro     parser and state-machine micro-benchmarks (bench/README.md)"
	@echo "  plots RUN=dir   redraw the charts of a results folder"
	@echo "  compare A=dir B=dir   how far two runs agree on the targets, row by row"
	@echo "  fuzz            libFuzzer targets for FUZZ_TIME seconds each; fuzz-smoke is the short CI form"
	@echo "  soak            a million mixed requests per backend, then RSS and fds back to baseline"
	@echo "  test-valgrind   the integration suite under valgrind memcheck (threads, epoll)"
	@echo "  test-faults     the integration suite under injected short reads/writes, EAGAIN, EINTR, accept errors"
	@echo "  windows         cross-build the Windows backends; test-windows runs the suite under Wine"
	@echo "  lab-start LAB=n, grade LAB=n   the course labs (labs/README.md)"
	@echo "  asan, tsan      sanitizer builds under bin/asan, bin/tsan"
	@echo "  format          clang-format every source file; format-check only checks"
	@echo "  line-budget     every backend within 100-300 lines of code (comments not counted)"
	@echo "  deps            install the build and test packages (Debian/Ubuntu, as root)"
	@echo "  clean           remove build/ and bin/"
	@echo "Variables: V=1 (show commands), CC=clang, OPT=-O0, CI=true (warnings are errors)"

deps:
	@scripts/ensure-deps.sh build test

.PHONY: all asan tsan format format-check line-budget clean help deps

-include tests/tests.mk
-include harness/harness.mk
-include fuzz/fuzz.mk
-include compat/windows.mk
-include labs/labs.mk
-include bench/bench.mk
