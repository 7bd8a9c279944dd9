/*
 * timer.c - the deadline heap (see timer.h).
 */
#include "timer.h"

#include <errno.h>
#include <stdlib.h>

static void place(struct timer_heap *h, size_t i, struct timer_node *t)
{
	h->items[i] = t;
	t->slot = i + 1;
}

static void sift_up(struct timer_heap *h, size_t i)
{
	/* LAB 5 BEGIN: move items[i] up while its parent, (i - 1) / 2, is later */
	/* LAB 5 STUB: place(h, i, h->items[i]); */
	struct timer_node *t = h->items[i];

	while (i > 0 && h->items[(i - 1) / 2]->when > t->when) {
		place(h, i, h->items[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, t);
	/* LAB 5 END */
}

static void sift_down(struct timer_heap *h, size_t i)
{
	/* LAB 5 BEGIN: move items[i] down, swapping with its earlier child, 2i+1 or 2i+2 */
	/* LAB 5 STUB: place(h, i, h->items[i]); */
	struct timer_node *t = h->items[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->len)
			break;
		if (c + 1 < h->len && h->items[c + 1]->when < h->items[c]->when)
			c++;
		if (h->items[c]->when >= t->when)
			break;
		place(h, i, h->items[c]);
		i = c;
	}
	place(h, i, t);
	/* LAB 5 END */
}

void timer_remove(struct timer_heap *h, struct timer_node *t)
{
	size_t i;

	if (t->slot == 0)
		return;
	i = t->slot - 1;
	t->slot = 0;
	if (--h->len == i)
		return;
	place(h, i, h->items[h->len]);
	sift_down(h, i);
	sift_up(h, h->items[i]->slot - 1);
}

int timer_set(struct timer_heap *h, struct timer_node *t, int64_t when)
{
	if (when == INT64_MAX) {
		timer_remove(h, t);
		return 0;
	}
	if (t->slot != 0) {
		int64_t old = t->when;
		t->when = when;
		if (when < old)
			sift_up(h, t->slot - 1);
		else if (when > old)
			sift_down(h, t->slot - 1);
		return 0;
	}
	if (h->len == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct timer_node **p = realloc(h->items, ncap * sizeof(*p));
		if (p == NULL)
			return -ENOMEM;
		h->items = p;
		h->cap = ncap;
	}
	t->when = when;
	h->len++;
	place(h, h->len - 1, t);
	sift_up(h, h->len - 1);
	return 0;
}

int timer_wait_ms(const struct timer_heap *h, int64_t now, int max_ms)
{
	int64_t d;

	if (h->len == 0)
		return max_ms;
	d = h->items[0]->when - now;
	return d < 0 ? 0 : d > max_ms ? max_ms : (int)d;
}

void timer_heap_free(struct timer_heap *h)
{
	free(h->items);
	h->items = NULL;
	h->len = h->cap = 0;
}
