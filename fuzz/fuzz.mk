# fuzz/fuzz.mk - libFuzzer targets and the fault-injection shim (included by
# the Makefile).
#
#   make fuzz          every target for FUZZ_TIME seconds (default 60) each, on
#                      fuzz/corpus-run/<target> (a scratch copy of the seeds)
#   make fuzz-smoke    fuzz-regress, then every target for FUZZ_SMOKE_TIME
#                      seconds (default 20); fails on any crash, leak or timeout
#   make fuzz-regress  every target over the saved crash inputs in
#                      fuzz/regressions/<target>/ (run once each, no fuzzing)
#   make test-faults   the integration suite on each backend under the
#                      fault-injection shim (tests/faults/faults.mk)
#
# The targets need clang and libFuzzer (scripts/ensure-deps.sh fuzz). common/
# is rebuilt for them with coverage instrumentation and ASan+UBSan in its own
# object tree, build/fuzz/; only the HTTP files, not main() (server.c):
# libFuzzer brings its own.
# A crash is written to fuzz/crash-<sha1> (git-ignored): reproduce it with
# build/fuzz/fuzz-<target> fuzz/crash-<sha1>, fix it, then keep it as
# fuzz/regressions/<target>/<name> so fuzz-regress runs it forever after.

FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_SMOKE_TIME ?= 20
FUZZ_TARGETS := parse chunked router conn
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -std=c11 $(WARNINGS) -g -O1 $(FUZZ_SAN) -pthread
FUZZ_OBJS := $(COMMON_SANS_IO:%.c=build/fuzz/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=build/fuzz/fuzz-%)

# Per-target input size caps: above each limit the code under test checks.
FUZZ_MAXLEN_parse := 20000
FUZZ_MAXLEN_chunked := 8192
FUZZ_MAXLEN_router := 10000
FUZZ_MAXLEN_conn := 24000
# -timeout: seconds per input before libFuzzer calls it a hang.
FUZZ_FLAGS = -max_len=$(FUZZ_MAXLEN_$*) -timeout=10 -dict=fuzz/http.dict \
	-artifact_prefix=fuzz/ -print_final_stats=1

build/fuzz/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

build/fuzz/fuzz-%: build/fuzz/fuzz/fuzz_%.o $(FUZZ_OBJS)
	$(call msg,LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@

# Keep the objects: they are intermediates of a pattern rule, not clutter.
.SECONDARY: $(FUZZ_OBJS) $(FUZZ_TARGETS:%=build/fuzz/fuzz/fuzz_%.o)

fuzz-build: fuzz-deps $(FUZZ_BINS)

fuzz-deps:
	@scripts/ensure-deps.sh fuzz

# fuzz-run-<target> TIME=seconds: seeds copied into the scratch corpus (what
# earlier runs found there is kept), then fuzzing until TIME runs out.
fuzz-run-%: SHELL := /bin/bash
fuzz-run-%: build/fuzz/fuzz-%
	@mkdir -p fuzz/corpus-run/$*
	@cp -n fuzz/corpus/$*/* fuzz/corpus-run/$*/ 2>/dev/null || true
	@echo "fuzz $* for $(TIME) s"
	$(Q)$< $(FUZZ_FLAGS) -max_total_time=$(TIME) fuzz/corpus-run/$* 2>&1 | \
		tee build/fuzz/fuzz-$*.log | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number|average)|==[0-9]+==|SUMMARY)'; \
		exit $${PIPESTATUS[0]}

# Each saved crash input, run once. No files: nothing to run (libFuzzer
# given no file would start fuzzing instead).
fuzz-regress-%: build/fuzz/fuzz-%
	@files=$$(find fuzz/regressions/$* -type f 2>/dev/null | sort); \
	if [ -z "$$files" ]; then echo "fuzz-regress $*: no saved inputs"; exit 0; fi; \
	echo "fuzz-regress $*: $$(echo $$files | wc -w) inputs"; \
	$< -runs=1 $$files >build/fuzz/regress-$*.log 2>&1 || \
		{ tail -40 build/fuzz/regress-$*.log; exit 1; }

fuzz: fuzz-build
	$(Q)for t in $(FUZZ_TARGETS); do \
		$(MAKE) --no-print-directory fuzz-run-$$t TIME=$(FUZZ_TIME) || exit 1; done

fuzz-regress: fuzz-build $(FUZZ_TARGETS:%=fuzz-regress-%)

fuzz-smoke: fuzz-regress
	$(Q)for t in $(FUZZ_TARGETS); do \
		$(MAKE) --no-print-directory fuzz-run-$$t TIME=$(FUZZ_SMOKE_TIME) || exit 1; done
	@echo "fuzz-smoke: no crash, leak or timeout"

.PHONY: fuzz fuzz-build fuzz-deps fuzz-smoke fuzz-regress

-include tests/faults/faults.mk
