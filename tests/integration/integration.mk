# tests/integration/integration.mk - the integration suite (included by tests/tests.mk).
#
#   make test-integration   the suite on every bin/server-<backend> of $(BACKENDS)
#   make test-sanitizers    the suite on the ASan+UBSan build of every backend,
#                           and on the TSan build of the threads backend
#
# Each run starts the binary on --port 0 with a temporary site and talks to
# it over loopback sockets (tests/integration/README.md). Variables:
#   PYTHON=python3            the interpreter (standard library only)
#   INTEGRATION_FLAGS="-k echo"  extra run.py options, e.g. to run a few tests

PYTHON ?= python3
INTEGRATION_RUN := $(PYTHON) tests/integration/run_all.py
INTEGRATION_FLAGS ?=
TEST_TOOLS := build/tools/deny_io_uring

# Sanitizer runs: stop at the first report, look for leaks at exit, and give
# the slower binaries more time. The suite fails on any report in stderr.
# ASan keeps freed blocks out of reuse (its quarantine, 256 MB by default) to
# catch use-after-free; the hostile tests measure RSS growth, which a full
# quarantine would inflate, so it is held to 16 MB: recent frees still caught.
ASAN_SUITE_FLAGS := --timeout-scale 3 \
	--server-env ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:strict_string_checks=1:quarantine_size_mb=16 \
	--server-env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
TSAN_SUITE_FLAGS := --timeout-scale 4 \
	--server-env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# Small C helpers the suite runs (tests/tools/*.c), one pattern rule for all.
build/tools/%: tests/tools/%.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS)

test-tools: $(TEST_TOOLS)

test-integration: $(SERVERS) $(TEST_TOOLS)
	$(Q)$(INTEGRATION_RUN) $(INTEGRATION_FLAGS) $(SERVERS)

test-sanitizers: $(BACKENDS:%=bin/asan/server-%) bin/tsan/server-threads $(TEST_TOOLS)
	$(Q)$(INTEGRATION_RUN) $(ASAN_SUITE_FLAGS) $(INTEGRATION_FLAGS) \
		$(BACKENDS:%=bin/asan/server-%)
	$(Q)$(INTEGRATION_RUN) $(TSAN_SUITE_FLAGS) $(INTEGRATION_FLAGS) bin/tsan/server-threads

.PHONY: test-tools test-integration test-sanitizers
