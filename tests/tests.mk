# tests/tests.mk - `make test` and its parts (included by the Makefile).
#
#   test-unit         C unit tests (cmocka): parser, router, state machine, timers
#   test-integration  the integration suite against every bin/server-<backend>
#   test-sanitizers   the same suite against ASan+UBSan builds, and TSan for threads
#
# Each part has its own fragment, owned by its folder.
-include tests/unit/unit.mk
-include tests/integration/integration.mk

test: test-deps test-unit test-integration test-sanitizers
	@echo "make test: every layer passed"

test-deps:
	@scripts/ensure-deps.sh build test

.PHONY: test test-deps
-include tests/soak/soak.mk
