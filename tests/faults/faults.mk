# tests/faults/faults.mk - the fault-injection shim and `make test-faults`
# (included by fuzz/fuzz.mk).
#
#   make test-faults   for every Linux backend: the shim's own smoke check
#                      (tests/faults/smoke.sh: curl, ab, h2load, every answer
#                      verified), then the integration suite, with the server
#                      process under LD_PRELOAD=faultinject.so; for io_uring,
#                      the integration suite on bin/faults/server-io_uring
#   make test-faults-asan  the smoke check on the ASan+UBSan builds
#                      (ASan must be told that another library comes first),
#                      and the suite on bin/asan-faults/server-io_uring
#
# io_uring's reads and writes are done by the kernel from the submission
# ring, so no libc call exists for a shim to wrap. Its fault build instead
# compiles hooks in (-DIOM_FAULTS, backends/uring_faults.h explains each):
# short sends, a tiny buffer ring (real short reads and
# -ENOBUFS), and multishot accepts ended by EMFILE, ENFILE or ECONNABORTED.
# Both builds read the same variables.
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
FAULT_URING = $(filter io_uring,$(BACKENDS))

# bin/faults/server-io_uring and bin/asan-faults/server-io_uring, each from
# its own object tree like the Makefile's other variants.
SAN_faults := -DIOM_FAULTS
SAN_asan-faults := $(SAN_asan) -DIOM_FAULTS
$(eval $(call variant_rules,faults,bin/faults/))
$(eval $(call variant_rules,asan-faults,bin/asan-faults/))
.PRECIOUS: build/faults/%.o build/asan-faults/%.o
FAULT_SUITE = python3 tests/integration/run.py --server-env FAULT_SEED=$(FAULT_SEED) \
	--server-env FAULT_RATE=$(FAULT_RATE) --server-env FAULT_ACCEPT_RATE=$(FAULT_SUITE_ACCEPT_RATE) \
	--timeout-scale 2

$(FAULT_SO): tests/faults/faultinject.c
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -fPIC -shared $< -o $@ -ldl

faults: $(FAULT_SO)

test-faults: $(FAULT_SO) $(FAULT_BACKENDS:%=bin/server-%) $(FAULT_URING:%=bin/faults/server-%)
	@test -f tests/integration/run.py || \
		{ echo "test-faults: tests/integration/run.py is missing"; exit 1; }
	@failed=; for b in $(FAULT_BACKENDS); do \
		echo "== $$b under faults (seed $(FAULT_SEED), rate $(FAULT_RATE))"; \
		FAULT_SEED=$(FAULT_SEED) FAULT_RATE=$(FAULT_RATE) \
			tests/faults/smoke.sh $(CURDIR)/$(FAULT_SO) bin/server-$$b || failed="$$failed $$b"; \
		$(FAULT_SUITE) --server-env LD_PRELOAD=$(CURDIR)/$(FAULT_SO) \
			bin/server-$$b || failed="$$failed $$b"; \
	done; \
	for b in $(FAULT_URING); do \
		echo "== $$b, fault build (seed $(FAULT_SEED), rate $(FAULT_RATE))"; \
		$(FAULT_SUITE) bin/faults/server-$$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-faults: FAILED:$$failed"; exit 1; fi; \
	echo "test-faults: every backend passed under faults"

test-faults-asan: $(FAULT_SO) $(FAULT_BACKENDS:%=bin/asan/server-%) \
		$(FAULT_URING:%=bin/asan-faults/server-%)
	@failed=; for b in $(FAULT_BACKENDS); do \
		ASAN_OPTIONS=verify_asan_link_order=0 FAULT_SEED=$(FAULT_SEED) \
		FAULT_RATE=$(FAULT_RATE) tests/faults/smoke.sh $(CURDIR)/$(FAULT_SO) \
		bin/asan/server-$$b || failed="$$failed $$b"; \
	done; \
	for b in $(FAULT_URING); do \
		$(FAULT_SUITE) $(ASAN_SUITE_FLAGS) bin/asan-faults/server-$$b || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-faults-asan: FAILED:$$failed"; exit 1; fi

.PHONY: faults test-faults test-faults-asan
