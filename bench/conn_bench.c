/*
 * conn_bench.c - micro-benchmark of one whole request in the sans-I/O
 * connection: conn_feed() of a GET /plaintext, conn_output(), conn_sent(),
 * with no socket anywhere.
 *
 * What it teaches: what a server spends per request outside the kernel.
 * Because conn.c never touches a socket, the cost of parsing, routing,
 * writing the response head (with its Date) and managing the buffers can be
 * timed alone, and compared with the time a whole round trip takes in the
 * load tests. Every malloc/calloc/realloc that common/ makes goes through the
 * counting wrappers below (the linker's --wrap option renames those calls in
 * the objects being linked, so the C library's own allocations are not
 * counted), which shows how many allocations one request costs.
 *
 * Needs: GNU ld or lld (--wrap), a POSIX clock. Run with `make bench-conn`.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "handlers.h"
#include "http.h"
#include "server.h"

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "(unknown)"
#endif

enum { RUNS = 7, MAX_ITERS = 1 << 24 };

static const char request[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/* ---- counting allocations --------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static unsigned long allocations;

void *__wrap_malloc(size_t n)
{
	allocations++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	allocations++;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocations++;
	return __real_realloc(p, n);
}

/* ---- one request, as a backend drives it ---------------------------------------- */

/* Feeds the request and "sends" everything the connection offers. Returns
 * the bytes of response, or 0 if the connection did not behave. `first`
 * checks the response once. */
static size_t one_request(struct conn *c, int64_t now, bool first)
{
	struct conn_out out;
	size_t total = 0;

	conn_feed(c, request, sizeof(request) - 1, now);
	while (conn_want(c) == CONN_WANT_WRITE) {
		conn_output(c, &out);
		if (first && total == 0 &&
		    (out.len < 12 || memcmp(out.data, "HTTP/1.1 200", 12) != 0))
			return 0;
		total += out.len;
		conn_sent(c, out.len, now);
	}
	return conn_want(c) == CONN_WANT_READ ? total : 0;
}

/* The thread's CPU time, not the wall clock: on a shared machine the time
 * this thread spends preempted would otherwise count as parsing. */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Nanoseconds for `iters` requests on c. */
static double time_requests(struct conn *c, long iters)
{
	double t0 = now_ns();

	for (long i = 0; i < iters; i++)
		one_request(c, 1000, false);
	return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	static struct server srv; /* static: zeroed, and its atomics too */
	struct conn c;
	double t[RUNS];
	long iters = 1 << 16;
	unsigned long before;
	double allocs;
	size_t bytes;

	srv.cfg.host = "127.0.0.1";
	srv.cfg.root = DEFAULT_ROOT;
	srv.cfg.workers = 1;
	srv.cfg.idle_timeout_ms = 5000;
	srv.cfg.max_conns = 100;
	srv.backend = "bench";
	srv.root_fd = open(DEFAULT_ROOT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	srv.root_path = realpath(DEFAULT_ROOT, NULL);
	if (srv.root_fd < 0 || srv.root_path == NULL || handlers_init(&srv) != 0) {
		perror("conn_bench: setting up the server");
		return 1;
	}
	conn_init(&c, &srv, 1000, 0);
	if ((bytes = one_request(&c, 1000, true)) == 0) {
		fprintf(stderr, "conn_bench: GET /plaintext did not get a 200\n");
		return 1;
	}

	before = allocations;
	for (int i = 0; i < 1000; i++)
		one_request(&c, 1000, false);
	allocs = (double)(allocations - before) / 1000;

	/* Calibrate: double the count until one run lasts 50 ms; then take the
	 * median of RUNS runs. */
	while (time_requests(&c, iters) < 50e6 && iters < MAX_ITERS)
		iters *= 2;
	for (int r = 0; r < RUNS; r++)
		t[r] = time_requests(&c, iters);
	qsort(t, RUNS, sizeof(t[0]), cmp_double);

	printf("conn micro-benchmark: conn_feed -> conn_output -> conn_sent, one GET /plaintext\n");
	printf("  compiler:  %s\n", __VERSION__);
	printf("  flags:     %s\n", BENCH_CFLAGS);
	printf("  method:    median of %d runs of %ld requests on one connection (thread CPU "
	       "time)\n",
	       RUNS, iters);
	printf("  request:   %zu bytes in one feed; response: %zu bytes\n", sizeof(request) - 1,
	       bytes);
	printf("\n  sizeof(struct conn)          %5zu bytes\n", sizeof(struct conn));
	printf("  sizeof(struct http_request)  %5zu bytes (on the stack while a head is parsed)\n",
	       sizeof(struct http_request));
	printf("  time per request             %7.1f ns (min %.1f, max %.1f)\n",
	       t[RUNS / 2] / (double)iters, t[0] / (double)iters, t[RUNS - 1] / (double)iters);
	printf("  allocations per request      %7.2f (malloc + calloc + realloc in common/)\n",
	       allocs);

	conn_free(&c);
	handlers_cleanup(&srv);
	close(srv.root_fd);
	free(srv.root_path);
	return 0;
}
