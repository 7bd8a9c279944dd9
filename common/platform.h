/*
 * platform.h - the little the HTTP code needs from the operating system:
 * a monotonic clock. Socket set-up lives in net.h, for the backends.
 */
#ifndef PLATFORM_H
#define PLATFORM_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds: for deadlines, never for dates. */
static inline int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
