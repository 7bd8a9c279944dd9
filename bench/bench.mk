# bench/bench.mk - micro-benchmarks, apart from the load tests of harness/
# (included by the Makefile).
#
#   make bench-parser  the request-head parser on typical requests, scalar
#                      loops against the SSE2 and AVX2 fast paths
#                      (bench/parser_bench.c)
#   make bench-conn    one GET /plaintext through conn_feed/output/sent, with
#                      sizeof(struct conn) and allocations per request
#                      (bench/conn_bench.c)
#   make bench-micro   both
#   make bench-syscalls  system calls per response of bin/server-$(BACKEND)
#                      next to the floor's (bench/per_request.py, perf's
#                      syscall tracepoints), at PR_CONNS connections
#   make bench-instr   user-space instructions per response, the same pair,
#                      under callgrind
#   make bench-cpu     server CPU time per request, the same pair, PR_TRIALS
#                      runs back to back (medians)
#   make bench-tail    the latency tail under a saturated wrk and the turns of
#                      both event loops: $(TAIL_BACKEND) beside epoll, nginx
#   make bench-syscall-cost  what one empty system call costs on this machine
#
# The code under test is compiled with the same flags as the servers
# ($(ALL_CFLAGS): -O2 -g by default, no -march), in its own object tree per
# compiler, build/bench/<cc>/, so the numbers describe what bin/server-* runs
# and `make bench-micro CC=clang` compares compilers. The flags are compiled
# into the binaries, which print them with their results.
# BENCH_RUNS and BENCH_MS set the parser benchmark's runs and ms per run.
# The machine is shared: expect a few percent of noise between runs.

BENCH_DIR := build/bench/$(notdir $(firstword $(CC)))
BENCH_RUNS ?= 7
BENCH_MS ?= 40
BENCH_DEFS = -DBENCH_CFLAGS='"$(strip $(ALL_CFLAGS))"'
BENCH_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

$(BENCH_DIR)/%.o: %.c
	$(call msg,CC,$@)
	@mkdir -p $(@D)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(BENCH_DEFS) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BENCH_DIR)/parser_bench: $(BENCH_DIR)/bench/parser_bench.o $(BENCH_DIR)/common/http_parse.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(ALL_LDFLAGS)

$(BENCH_DIR)/conn_bench: $(BENCH_DIR)/bench/conn_bench.o \
		$(COMMON_SANS_IO:%.c=$(BENCH_DIR)/%.o)
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(ALL_LDFLAGS) $(BENCH_WRAP)

bench-parser: $(BENCH_DIR)/parser_bench
	$(BENCH_DIR)/parser_bench $(BENCH_RUNS) $(BENCH_MS)

bench-conn: $(BENCH_DIR)/conn_bench
	$(BENCH_DIR)/conn_bench

bench-micro: bench-parser bench-conn

$(BENCH_DIR)/syscall_cost: $(BENCH_DIR)/bench/syscall_cost.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) $^ -o $@ $(ALL_LDFLAGS)

# The price of one empty system call, pinned like the servers (CPU 0).
bench-syscall-cost: $(BENCH_DIR)/syscall_cost
	taskset -c 0 $(BENCH_DIR)/syscall_cost

# Whole servers under wrk, per request (bench/per_request.py). BACKEND picks
# the server (default epoll); the floor is the reference beside it.
BACKEND ?= epoll
PR_CONNS ?= 64,256,1024
PR_TRIALS ?= 3
PR_DURATION ?= 3
PR_SCRIPT = $(HARNESS_PY) bench/per_request.py --conns $(PR_CONNS) --trials $(PR_TRIALS) \
	--duration $(PR_DURATION)
PR_RUN = $(PR_SCRIPT) $(BACKEND)=bin/server-$(BACKEND) floor=build/harness/floor

bench-syscalls: bin/server-$(BACKEND) build/harness/floor
	$(PR_RUN) --mode syscalls

bench-instr: bin/server-$(BACKEND) build/harness/floor
	$(PR_RUN) --mode instr

bench-cpu: bin/server-$(BACKEND) build/harness/floor
	$(PR_RUN) --mode cpu

# The latency tail under a saturated wrk, with the turns of wrk's loop and of
# the server's: TAIL_BACKEND beside epoll and nginx (bench/per_request.py).
TAIL_BACKEND ?= poll
bench-tail: bin/server-$(TAIL_BACKEND) bin/server-epoll
	$(PR_SCRIPT) --mode tail $(TAIL_BACKEND)=bin/server-$(TAIL_BACKEND) \
		epoll=bin/server-epoll nginx=@nginx

.PHONY: bench-parser bench-conn bench-micro bench-syscalls bench-instr bench-cpu \
	bench-tail bench-syscall-cost
