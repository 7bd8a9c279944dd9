# harness/harness.mk - the benchmark targets (included by the Makefile).
#
#   make bench-all          build everything, check the tools, run every backend
#                           and the reference servers, write results/<stamp>-<host>/
#   make bench-all PRESET=full   the long version (quick is the default)
#   make plots RUN=dir      redraw the charts and the report of a results folder
#   make compare A=dir B=dir    how far two runs agree on the targets, row by row
#   make test-harness       the harness's unit tests plus a short end-to-end bench
#   make bench-scaling      --workers 1 against 2 (SCALING_WORKERS), plaintext,
#                           server and client sharing CPUs 0,1 (docs/scaling.md)
#   make bench-tools        only build the floor server, the idle holder and
#                           discard_client (the static workload's load generator)
#
# Knobs (make variables, passed on as flags of harness/bench.py):
#   BACKENDS     backends to measure (default: every one this platform builds)
#   WORKLOADS    workloads to run (default: all; harness/README.md lists them)
#   REFS         reference servers (default: floor nginx h2o; "none" for none)
#   CONNS        connection counts of the plaintext sweep, e.g. "1 64 1024"
#   DURATION     seconds of each measured trial
#   TRIALS       measured trials per point
#   SERVER_CPUS  CPUs the server is pinned to (default 0)
#   CLIENT_CPUS  CPUs the load generator is pinned to (default 1)
#   WORKERS      event loops per server: our --workers, nginx worker_processes,
#                h2o num-threads (default 1; the floor always runs one)
#   OUT          results folder (default results/<UTC stamp>-<host>)
#   WINE         auto (default: bin/server-*.exe run under Wine, labelled) or no
#   PRESET       quick (default) or full

PRESET ?= quick
HARNESS_TOOLS := build/harness/floor build/harness/idle_holder build/harness/discard_client
HARNESS_PY := python3

# The make variables become flags only when they are set, so the preset's
# defaults stay in one place (bench.py).
harness_flag = $(if $(strip $($(1))),--$(2) "$(strip $($(1)))")
HARNESS_FLAGS = --preset $(PRESET) --backends "$(BACKENDS)" \
	$(call harness_flag,WORKLOADS,workloads) $(call harness_flag,REFS,refs) \
	$(call harness_flag,CONNS,conns) $(call harness_flag,DURATION,duration) \
	$(call harness_flag,TRIALS,trials) $(call harness_flag,SERVER_CPUS,server-cpus) \
	$(call harness_flag,CLIENT_CPUS,client-cpus) $(call harness_flag,OUT,out) \
	$(call harness_flag,WINE,wine) $(call harness_flag,WORKERS,workers) \
	--cc "$(CC)" --cflags "$(ALL_CFLAGS)"

build/harness/%: build/plain/harness/%.o
	$(call msg,LD,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(ALL_LDFLAGS)

.PRECIOUS: build/plain/harness/%.o

# discard_client's latency stdev takes a square root.
build/harness/discard_client: ALL_LDFLAGS += -lm

bench-tools: $(HARNESS_TOOLS)

# wrk, hyperfine, ab, taskset and matplotlib are required; nginx and h2o
# only draw reference lines, so their absence is a note, not a failure.
bench-deps:
	@scripts/ensure-deps.sh bench-core
	@scripts/ensure-deps.sh bench >/dev/null 2>&1 || \
		echo "note: nginx/h2o missing: their reference lines are skipped" \
		"(apt-get install nginx-light h2o)"

bench-all: $(SERVERS) $(HARNESS_TOOLS) bench-deps
	$(HARNESS_PY) harness/bench.py $(HARNESS_FLAGS)

# Scaling with --workers: one run per worker count, then a comparison
# (harness/scaling.py, docs/scaling.md). The defaults suit a 2-core machine:
# the server may use both cores and the client shares them. On a bigger one,
# give disjoint lists, e.g. SERVER_CPUS=0-7 CLIENT_CPUS=8-15
# SCALING_WORKERS="1 2 4 8".
SCALING_WORKERS ?= 1 2
bench-scaling: SERVER_CPUS ?= 0,1
bench-scaling: CLIENT_CPUS ?= 0,1
bench-scaling: WORKLOADS ?= plaintext
bench-scaling: CONNS ?= 64 256 1024
bench-scaling: REFS ?= nginx h2o
bench-scaling: WINE ?= no
bench-scaling: $(SERVERS) $(HARNESS_TOOLS) bench-deps
	$(HARNESS_PY) harness/scaling.py --workers-list "$(SCALING_WORKERS)" -- $(HARNESS_FLAGS)

plots:
	@test -n "$(RUN)" || { echo "usage: make plots RUN=results/<run folder>"; exit 2; }
	@PY=$$(scripts/find-python.sh) && $$PY scripts/plot.py "$(RUN)"
	@$(HARNESS_PY) scripts/report.py "$(RUN)"

test-harness: $(SERVERS) $(HARNESS_TOOLS)
	@$(HARNESS_PY) harness/test_harness.py

compare:
	@test -n "$(A)" -a -n "$(B)" || \
		{ echo "usage: make compare A=results/<run> B=results/<run>"; exit 2; }
	@$(HARNESS_PY) scripts/compare.py "$(A)" "$(B)"

.PHONY: bench-all bench-deps bench-scaling bench-tools compare plots test-harness
