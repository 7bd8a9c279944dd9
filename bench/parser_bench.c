/*
 * parser_bench.c - micro-benchmark of the request-head parser: the scalar
 * loops against the SSE2 and AVX2 fast paths (common/http_simd.h), in one
 * run.
 *
 * What it teaches: how to measure a few hundred nanoseconds honestly. Each
 * input is parsed the way conn.c parses it (http_head_end, then
 * http_parse_head on the head) many times in a row; one timed run is
 * `iters` such passes, and the figure reported is the median of several
 * runs, with the scalar, SSE2 and AVX2 runs interleaved so that a noisy
 * neighbour or a frequency change hurts all of them alike. The method (CPU,
 * compiler, flags, iterations) is printed with the numbers: a figure without
 * it means little.
 *
 * Needs: a POSIX clock (clock_gettime). Run with `make bench-parser`;
 * `build/bench/<cc>/parser_bench [runs] [ms per run]` runs it by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "http_simd.h"

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "(unknown)"
#endif

enum { MAX_RUNS = 31, PIPELINE = 16, LEVELS = HTTP_SIMD_AVX2 + 1 };

/* A plaintext request as a load generator pipelines it. */
#define PLAINTEXT_REQ                                                                            \
	"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: text/plain,text/html;q=0.9," \
	"application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"                        \
	"Connection: keep-alive\r\n\r\n"

struct input {
	const char *name;
	char *buf;
	size_t len;
	int nreq; /* requests in buf */
};

static const char wrk_get[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

static const char browser_get[] =
        "GET /static/index.html?lang=en HTTP/1.1\r\n"
        "Host: localhost:8080\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
        "image/webp,*/*;q=0.8\r\n"
        "Accept-Language: en-US,en;q=0.5\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Referer: http://localhost:8080/\r\n"
        "Connection: keep-alive\r\n"
        "Cookie: session=7f3a9c2e41b84d0f9e6a5c3b2d1e0f4a; theme=dark; _ga=GA1.1.123456789."
        "1700000000; consent=analytics%3Dfalse\r\n"
        "Upgrade-Insecure-Requests: 1\r\n"
        "Sec-Fetch-Dest: document\r\n"
        "Sec-Fetch-Mode: navigate\r\n"
        "\r\n";

static const char post_head[] = "POST /echo HTTP/1.1\r\n"
                                "Host: 127.0.0.1:8080\r\n"
                                "User-Agent: curl/7.88.1\r\n"
                                "Accept: */*\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: 27\r\n"
                                "\r\n";

static char *copy_of(const char *s, size_t len)
{
	char *p = malloc(len);

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(p, s, len);
	return p;
}

/* The long-header case where wide scanning should pay: a 2 KiB cookie. */
static char *long_cookie(size_t *len)
{
	static const char start[] = "GET /app HTTP/1.1\r\nHost: localhost\r\nCookie: ";
	size_t n = sizeof(start) - 1, cookie = 2048;
	char *p = malloc(n + cookie + 4);

	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memcpy(p, start, n);
	for (size_t i = 0; i < cookie; i++)
		p[n + i] = (i % 40 == 39) ? ';' : (i % 40 == 0) ? ' ' : "abcdef0123456789"[i % 16];
	memcpy(p + n + cookie, "\r\n\r\n", 4);
	*len = n + cookie + 4;
	return p;
}

/* Parses every request in buf as conn.c does: find the end of the head,
 * then parse exactly the head. Returns the requests parsed, or -1 if one
 * was refused (the benchmark would then measure an error path). */
static int parse_all(const char *buf, size_t len)
{
	struct http_request req;
	size_t off = 0;
	int n = 0;

	while (off < len) {
		size_t end = http_head_end(buf + off, len - off, 0);
		if (end == 0 || http_parse_head(buf + off, end, &req) != (int)end)
			return -1;
		off += end;
		n++;
	}
	return n;
}

/* The thread's CPU time, not the wall clock: on a shared machine the time
 * this thread spends preempted would otherwise count as parsing. */
static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Nanoseconds for `iters` passes over the input. */
static double time_passes(const struct input *in, long iters)
{
	volatile int sink = 0;
	double t0 = now_ns();

	for (long i = 0; i < iters; i++)
		sink += parse_all(in->buf, in->len);
	(void)sink;
	return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_method(int runs, double ms, enum http_simd_level default_level)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");
	const char *cpu = "(unknown)";

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':') != NULL) {
			cpu = strchr(line, ':') + 2;
			line[strcspn(line, "\n")] = '\0';
			break;
		}
	}
	printf("parser micro-benchmark: http_head_end + http_parse_head per request\n");
	printf("  cpu:       %s\n", cpu);
	printf("  compiler:  %s\n", __VERSION__);
	printf("  flags:     %s\n", BENCH_CFLAGS);
	printf("  simd:      up to %s on this CPU and build; the parser's default is %s\n",
	       http_simd_name(http_simd_best()), http_simd_name(default_level));
	printf("  method:    median of %d runs of ~%.0f ms of thread CPU time each, the levels "
	       "interleaved\n",
	       runs, ms);
	if (f != NULL)
		fclose(f);
}

/* Measures one input at every level this CPU has (scalar, SSE2, AVX2) and
 * prints its line; a level the CPU lacks prints dashes. */
static void bench_input(const struct input *in, int runs, double ms)
{
	double t[LEVELS][MAX_RUNS], ns[LEVELS];
	int top = (int)http_simd_best();
	long iters = 1;

	for (int level = 0; level <= top; level++) {
		http_parse_set_simd((enum http_simd_level)level);
		if (parse_all(in->buf, in->len) != in->nreq) {
			fprintf(stderr, "%s: the parser refused the input\n", in->name);
			exit(1);
		}
	}
	/* Calibrate: enough passes for one run to last about `ms`. */
	http_parse_set_simd(HTTP_SIMD_NONE);
	while (time_passes(in, iters) < ms * 1e6 / 8)
		iters *= 2;
	iters *= 8;
	for (int r = 0; r < runs; r++) {
		for (int level = 0; level <= top; level++) {
			http_parse_set_simd((enum http_simd_level)level);
			t[level][r] = time_passes(in, iters);
		}
	}
	printf("%-26s %6zu %4d %9ld", in->name, in->len, in->nreq, iters);
	for (int level = 0; level < LEVELS; level++) {
		if (level > top) {
			printf(" | %6s %8s", "-", "-");
			continue;
		}
		double total = median(t[level], runs);
		ns[level] = total / ((double)iters * in->nreq);
		/* bytes per ns = GB/s */
		printf(" | %6.2f %8.1f", (double)in->len * (double)iters / total, ns[level]);
	}
	for (int level = HTTP_SIMD_SSE2; level < LEVELS; level++) {
		if (level > top)
			printf(" | %6s", "-");
		else
			printf(" | %5.2fx", ns[0] / ns[level]);
	}
	printf("\n");
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 7;
	double ms = argc > 2 ? atof(argv[2]) : 40;
	struct input in[5];
	size_t plen = sizeof(PLAINTEXT_REQ) - 1;

	if (runs < 1 || runs > MAX_RUNS || ms <= 0) {
		fprintf(stderr, "usage: %s [runs 1..%d] [ms per run]\n", argv[0], MAX_RUNS);
		return 2;
	}
	in[0] = (struct input){ "wrk GET (short)", copy_of(wrk_get, sizeof(wrk_get) - 1),
		                sizeof(wrk_get) - 1, 1 };
	in[1] = (struct input){ "browser GET (11 fields)",
		                copy_of(browser_get, sizeof(browser_get) - 1),
		                sizeof(browser_get) - 1, 1 };
	in[2] = (struct input){ "16 pipelined plaintext", malloc(plen * PIPELINE), plen * PIPELINE,
		                PIPELINE };
	if (in[2].buf == NULL)
		return 1;
	for (int i = 0; i < PIPELINE; i++)
		memcpy(in[2].buf + (size_t)i * plen, PLAINTEXT_REQ, plen);
	in[3] = (struct input){ "POST head", copy_of(post_head, sizeof(post_head) - 1),
		                sizeof(post_head) - 1, 1 };
	in[4] = (struct input){ "GET with a 2 KiB cookie", NULL, 0, 1 };
	in[4].buf = long_cookie(&in[4].len);

	print_method(runs, ms, http_parse_set_simd(HTTP_SIMD_NONE));
	printf("\n%-26s %6s %4s %9s | %-15s | %-15s | %-15s | %-6s | %s\n", "", "", "", "",
	       "scalar loops", "SSE2 fast paths", "AVX2 fast paths", "scalar", "scalar");
	printf("%-26s %6s %4s %9s | %6s %8s | %6s %8s | %6s %8s | %6s | %s\n", "input", "bytes",
	       "reqs", "iters", "GB/s", "ns/req", "GB/s", "ns/req", "GB/s", "ns/req", "/ SSE2",
	       "/ AVX2");
	for (int i = 0; i < 5; i++) {
		bench_input(&in[i], runs, ms);
		free(in[i].buf);
	}
	printf("\n(scalar / SSE2 or AVX2 > 1 means that fast path is faster; time per request\n"
	       " includes both http_head_end and http_parse_head, as conn.c calls them)\n");
	return 0;
}
