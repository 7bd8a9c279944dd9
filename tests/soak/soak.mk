# tests/soak/soak.mk - long-running checks (included by tests/tests.mk).
#
#   soak           every Linux backend: at least a million mixed requests
#                  each (wrk), then RSS and descriptors must be back to
#                  their warm-up values (tests/soak/soak.py explains how)
#   soak-short     the same with 100k requests per backend: the CI form
#   test-valgrind  the integration suite under valgrind memcheck, on the
#                  threads and epoll backends: no invalid access, no
#                  uninitialised value used, no definite leak at exit
#
# Variables: SOAK_REQUESTS=N (requests per backend for `make soak`),
# SOAK_FLAGS, VALGRIND_FLAGS (extra run.py options, e.g. "-k static").
# Needs wrk (soak) and valgrind (test-valgrind): scripts/ensure-deps.sh.

PYTHON ?= python3
SOAK_REQUESTS ?= 1000000
SOAK_FLAGS ?=
SOAK_BACKENDS := $(filter-out iocp wepoll,$(BACKENDS))
VALGRIND_BACKENDS := threads epoll
VALGRIND_FLAGS ?=
# valgrind 3.19 (Debian 12) gives up on some DWARF 5 debug info, so its
# binaries are a variant of their own: -O1 (memcheck's reports stay exact)
# with DWARF 4, in build/valgrind/ and bin/valgrind/ (Makefile's variant_rules).
# --error-exitcode makes any memcheck error an unclean exit, which the suite
# reports as a failure of that server. --max-threads: the threads backend
# holds 2000 idle connections in hostile_many_idle_connections (default 500).
SAN_valgrind := -O1 -g -gdwarf-4
$(eval $(call variant_rules,valgrind,bin/valgrind/))
VALGRIND_WRAPPER := valgrind -q --error-exitcode=99 --max-threads=3000 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite

soak-deps:
	@scripts/ensure-deps.sh build test bench

soak: soak-deps $(SOAK_BACKENDS:%=bin/server-%)
	$(Q)$(PYTHON) tests/soak/soak.py --requests $(SOAK_REQUESTS) $(SOAK_FLAGS) $(SOAK_BACKENDS:%=bin/server-%)

soak-short: soak-deps $(SOAK_BACKENDS:%=bin/server-%)
	$(Q)$(PYTHON) tests/soak/soak.py --requests 100000 --max-seconds 40 $(SOAK_FLAGS) $(SOAK_BACKENDS:%=bin/server-%)

test-valgrind: $(VALGRIND_BACKENDS:%=bin/valgrind/server-%) $(TEST_TOOLS)
	$(Q)$(INTEGRATION_RUN) --wrapper "$(VALGRIND_WRAPPER)" --timeout-scale 6 \
		$(VALGRIND_FLAGS) $(VALGRIND_BACKENDS:%=bin/valgrind/server-%)

.PHONY: soak soak-deps soak-short test-valgrind
