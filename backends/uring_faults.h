/*
 * uring_faults.h - fault hooks for io_uring.c, compiled in with -DIOM_FAULTS.
 *
 * What it is for: tests/faults/faultinject.c makes the other backends' reads
 * and writes short and their accepts fail by wrapping the libc calls. An
 * io_uring loop makes no such calls: the kernel does its I/O. So the fault
 * build of io_uring.c (bin/faults/server-io_uring, tests/faults/faults.mk)
 * asks these hooks instead, at the points where the kernel could have been
 * just as awkward, and the loop's paths for the awkward cases run:
 *
 *   FAULT_TINY(n, tiny)    the receive buffer ring: tiny buffers, and few of
 *                          them. Real kernel behaviour, not simulated: every
 *                          receive is short, and a receive that finds the
 *                          ring empty fails with -ENOBUFS and is armed
 *                          again.
 *   FAULT_SEND_LEN(len)    a send (or sendfile) of 1..len bytes: what the
 *                          kernel does when the socket buffer is nearly
 *                          full. The short-send path continues it.
 *   FAULT_ACCEPT_CANCEL()  true: end the multishot accept now (the caller
 *                          cancels it). Connections waiting in the listen
 *                          backlog stay there; a cancel loses none.
 *   FAULT_ACCEPT_RES(res, armed)  an accept CQE's result: once such a
 *                          cancel has ended the accept (!armed), its
 *                          -ECANCELED turns into EMFILE, ENFILE or
 *                          ECONNABORTED, so the back-off and re-arm run.
 *
 * Environment, as for the shim: FAULT_RATE (per hook call, default 0.1),
 * FAULT_ACCEPT_RATE (default FAULT_RATE; keep it low, each EMFILE or ENFILE
 * pauses accepting for 100 ms), FAULT_SEED (default 1, one stream per
 * thread), FAULT_VERBOSE=1 (the counts on stderr at exit).
 *
 * Without IOM_FAULTS every hook is the identity or false, so the ordinary
 * build compiles to exactly the same code as if they were not there.
 */
#ifndef URING_FAULTS_H
#define URING_FAULTS_H

#ifndef IOM_FAULTS

#define FAULT_TINY(n, tiny)          (n)
#define FAULT_SEND_LEN(len)          (len)
#define FAULT_ACCEPT_CANCEL()        false
#define FAULT_ACCEPT_RES(res, armed) (res)

#else

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../tests/faults/fault_random.h"

#define FAULT_TINY(n, tiny)          (tiny)
#define FAULT_SEND_LEN(len)          uring_fault_len(len, 0)
#define FAULT_ACCEPT_CANCEL()        uring_fault_accept_cancel()
#define FAULT_ACCEPT_RES(res, armed) uring_fault_accept_res(res, armed)

static double uring_fault_rate = 0.1, uring_fault_accept_rate = 0.1;
static uint64_t uring_fault_seed = 1;
static _Atomic unsigned long uring_fault_counts[2]; /* send, accept */
static const char *const uring_fault_names[2] = { "short sends", "accept errors" };
static _Thread_local uint64_t uring_fault_rng;
static _Thread_local bool uring_fault_cancelled; /* this loop's accept was cancelled */

static void uring_fault_report(void)
{
	fprintf(stderr, "uring_faults: seed=%llu rate=%g:", (unsigned long long)uring_fault_seed,
	        uring_fault_rate);
	for (int i = 0; i < 2; i++)
		fprintf(stderr, " %lu %s%s", atomic_load(&uring_fault_counts[i]),
		        uring_fault_names[i], i < 1 ? "," : "\n");
}

/* Reads the environment once, before the workers start. */
__attribute__((constructor)) static void uring_fault_setup(void)
{
	const char *s;

	if ((s = getenv("FAULT_RATE")) != NULL)
		uring_fault_rate = strtod(s, NULL);
	uring_fault_accept_rate = uring_fault_rate;
	if ((s = getenv("FAULT_ACCEPT_RATE")) != NULL)
		uring_fault_accept_rate = strtod(s, NULL);
	if ((s = getenv("FAULT_SEED")) != NULL)
		uring_fault_seed = strtoull(s, NULL, 0);
	if ((s = getenv("FAULT_VERBOSE")) != NULL && *s == '1')
		atexit(uring_fault_report);
}

/* The calling thread's next random number (tests/faults/fault_random.h). */
static uint64_t uring_fault_random(void)
{
	static _Atomic unsigned nthreads;

	return fault_random_next(&uring_fault_rng, uring_fault_seed, &nthreads);
}

/* True with probability `rate`; counted under `kind`. */
static bool uring_fault_hit(double rate, int kind)
{
	if ((double)(uring_fault_random() >> 11) * 0x1p-53 >= rate)
		return false;
	atomic_fetch_add(&uring_fault_counts[kind], 1);
	return true;
}

/* len, or now and then 1..len-1 of it. */
static size_t uring_fault_len(size_t len, int kind)
{
	if (len < 2 || !uring_fault_hit(uring_fault_rate, kind))
		return len;
	return 1 + (size_t)(uring_fault_random() % (len - 1));
}

static bool uring_fault_accept_cancel(void)
{
	if (uring_fault_cancelled || !uring_fault_hit(uring_fault_accept_rate, 1))
		return false;
	return uring_fault_cancelled = true;
}

static int uring_fault_accept_res(int res, bool armed)
{
	static const int errs[] = { -EMFILE, -ENFILE, -ECONNABORTED };

	if (armed || !uring_fault_cancelled)
		return res;
	uring_fault_cancelled = false;
	return res == -ECANCELED ? errs[uring_fault_random() % 3] : res;
}

#endif /* IOM_FAULTS */
#endif
