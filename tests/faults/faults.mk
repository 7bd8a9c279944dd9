# tests/faults/faults.mk - the fault-injection shim and `make test-faults`
# (included by fuzz/fuzz.mk).
#
#   make test-faults   for every Linux backend but io_uring: the shim's own
#                      smoke check (tests/faults/smoke.sh: curl, ab, h2load,
#                      every answer verified), then the integration suite,
#                      with the server process under LD_PRELOAD=faultinject.so
#   make test-faults-asan  the smoke check on the ASan+UBSan builds
#                      (ASan must be told that another library comes first)
#
# io_uring is left out on purpose: its reads and writes are done by the
# kernel from the submission ring, so no libc call exists for a shim to wrap.
# FAULT_SEED (default 1) and FAULT_RATE (default 0.1) pick the faults.
# FAULT_SUITE_ACCEPT_RATE (default 0.02) is the accept() fault rate during
# the suite: each EMFILE/ENFILE costs a backend a 100 ms back-off by design,
# and a connection still waiting in the listen backlog when SIGTERM comes is
# reset, not served, which the suite's shutdown test would then report
# although no read or write went wrong. smoke.sh uses the full FAULT_RATE.

FAULT_SO := build/faults/faultinject.so
FAULT_SEED ?= 1
FAULT_RATE ?= 0.1
FAULT_SUITE_ACCEPT_RATE ?= 0.02
FAULT_BACKENDS = $(filter-out io_uring,$(BACKENDS))

$(FAULT_SO): tests/faults/faultinject.c
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC -shared $< -o $@ -ldl

faults: $(FAULT_SO)

test-faults: $(FAULT_SO) $(FAULT_BACKENDS:%=bin/server-%)
	@echo "test-faults: io_uring skipped (its I/O is done by the kernel, out of reach of a shim)"
	@test -f tests/integration/run.py || \
		{ echo "test-faults: tests/integration/run.py is missing"; exit 1; }
	@failed=; for b in $(FAULT_BACKENDS); do \
		echo "== $$b under faults (seed $(FAULT_SEED), rate $(FAULT_RATE))"; \
		FAULT_SEED=$(FAULT_SEED) FAULT_RATE=$(FAULT_RATE) \
			tests/faults/smoke.sh $(CURDIR)/$(FAULT_SO) bin/server-$$b || failed="$$failed $$b"; \
		python3 tests/integration/run.py --server-env LD_PRELOAD=$(CURDIR)/$(FAULT_SO) \
			--server-env FAULT_SEED=$(FAULT_SEED) --server-env FAULT_RATE=$(FAULT_RATE) \
			--server-env FAULT_ACCEPT_RATE=$(FAULT_SUITE_ACCEPT_RATE) \
			--timeout-scale 2 bin/server-$$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-faults: FAILED:$$failed"; exit 1; fi; \
	echo "test-faults: every backend passed under faults"

test-faults-asan: $(FAULT_SO) $(FAULT_BACKENDS:%=bin/asan/server-%)
	@failed=; for b in $(FAULT_BACKENDS); do \
		ASAN_OPTIONS=verify_asan_link_order=0 FAULT_SEED=$(FAULT_SEED) \
		FAULT_RATE=$(FAULT_RATE) tests/faults/smoke.sh $(CURDIR)/$(FAULT_SO) \
		bin/asan/server-$$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-faults-asan: FAILED:$$failed"; exit 1; fi

.PHONY: faults test-faults test-faults-asan
