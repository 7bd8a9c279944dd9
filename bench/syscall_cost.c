/*
 * syscall_cost.c - what it costs to enter the kernel and come back, here.
 *
 * What it teaches: the price of a system call that does nothing (getppid(),
 * made with syscall(2) so that no library can answer from a cache), so that
 * a count of system calls per request can be turned into time. On a VM with
 * the kernel's speculative-execution mitigations on, the round trip costs a
 * few hundred nanoseconds; on bare metal without them, under a hundred. Set
 * it beside a request's whole cost (`make bench-cpu`, about 10 us on
 * loopback): saving two calls per request cannot save more than their share.
 *
 * Needs: Linux (SYS_getppid). Built and run by `make bench-syscall-cost`.
 * Run:   build/bench/<cc>/syscall_cost [calls]   (default 5,000,000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no kernel entry */
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 5000000;
	double best = 0;

	if (calls <= 0) {
		fprintf(stderr, "usage: syscall_cost [calls > 0]\n");
		return 2;
	}
	for (int run = 0; run < 5; run++) { /* the best of 5: noise only adds */
		double t0 = now_ns();
		for (long i = 0; i < calls; i++)
			syscall(SYS_getppid);
		double ns = (now_ns() - t0) / (double)calls;
		if (run == 0 || ns < best)
			best = ns;
	}
	printf("syscall_cost: %.0f ns per empty system call (best of 5 x %ld)\n", best, calls);
	return 0;
}
