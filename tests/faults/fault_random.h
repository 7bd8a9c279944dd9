/*
 * fault_random.h - the random stream both fault injectors draw from: the
 * LD_PRELOAD shim (faultinject.c) and io_uring's fault build
 * (backends/uring_faults.h).
 *
 * What it teaches: a test that injects faults at random must still be
 * repeatable, so every stream comes from one seed (FAULT_SEED). Each thread
 * gets a stream of its own, derived from the seed and the order in which
 * threads first ask (splitmix64 spreads neighbouring seeds apart), then
 * advanced by xorshift64*: a few shifts and a multiply, no lock, no
 * allocation, safe in a signal handler.
 */
#ifndef FAULT_RANDOM_H
#define FAULT_RANDOM_H

#include <stdatomic.h>
#include <stdint.h>

/* The next number of the calling thread's stream *state (0: not started;
 * it starts from seed and the next ticket of *nthreads). */
static inline uint64_t fault_random_next(uint64_t *state, uint64_t seed, _Atomic unsigned *nthreads)
{
	uint64_t x = *state;

	if (x == 0) {
		uint64_t z = seed + 0x9e3779b97f4a7c15ull * (atomic_fetch_add(nthreads, 1) + 1);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		x = (z ^ (z >> 31)) | 1;
	}
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

#endif
