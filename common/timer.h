/*
 * timer.h - a binary min-heap of deadlines, for the event loops.
 *
 * What it teaches: an event loop sleeps until the earliest deadline of all
 * its connections. A heap finds that deadline in O(1) and moves one in
 * O(log n). Each node remembers its slot, so a connection whose deadline
 * changes (every request, for an idle timeout) is moved, not searched for.
 * The node is embedded in the backend's per-connection struct.
 */
#ifndef TIMER_H
#define TIMER_H

#include <stddef.h>
#include <stdint.h>

struct timer_node {
	int64_t when; /* monotonic ms */
	size_t slot;  /* 1-based position in the heap; 0 when not in it */
};

struct timer_heap {
	struct timer_node **items;
	size_t len, cap;
};

/* Puts t in the heap at `when`, or moves it there. INT64_MAX removes it.
 * Returns 0 or -ENOMEM. */
int timer_set(struct timer_heap *h, struct timer_node *t, int64_t when);

void timer_remove(struct timer_heap *h, struct timer_node *t);

/* The node with the earliest deadline, or NULL. */
static inline struct timer_node *timer_first(const struct timer_heap *h)
{
	return h->len ? h->items[0] : NULL;
}

/* Milliseconds from now to the earliest deadline, clamped to [0, max_ms];
 * max_ms if the heap is empty. For the timeout of poll() or epoll_wait(). */
int timer_wait_ms(const struct timer_heap *h, int64_t now, int max_ms);

void timer_heap_free(struct timer_heap *h);

#endif
