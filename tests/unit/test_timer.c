/*
 * test_timer.c - unit tests of the deadline heap (common/timer.h).
 *
 * What it teaches: checking a clever data structure against a dumb one. A
 * few thousand random operations (insert, move earlier or later, remove,
 * pop the earliest) run on the heap and on a plain array searched linearly;
 * after every step both must agree on the earliest deadline, and the heap
 * must still be a heap whose nodes know their slots.
 *
 * Needs: cmocka. Run with `make test-unit`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "timer.h"
#include "unit.h"

enum { NODES = 97 };

/* The model: every node's deadline, or INT64_MAX when it is not queued. */
struct model {
	int64_t when[NODES];
};

static int64_t model_min(const struct model *m)
{
	int64_t min = INT64_MAX;

	for (int i = 0; i < NODES; i++)
		if (m->when[i] < min)
			min = m->when[i];
	return min;
}

/* The heap property, each node's slot, and the same set as the model. */
static void check(const struct timer_heap *h, const struct timer_node *nodes, const struct model *m)
{
	size_t queued = 0;

	for (size_t i = 0; i < h->len; i++) {
		assert_int_equal(h->items[i]->slot, i + 1);
		if (i > 0)
			assert_true(h->items[(i - 1) / 2]->when <= h->items[i]->when);
	}
	for (int i = 0; i < NODES; i++) {
		if (m->when[i] == INT64_MAX) {
			assert_int_equal(nodes[i].slot, 0);
			continue;
		}
		queued++;
		assert_true(nodes[i].slot >= 1 && nodes[i].slot <= h->len);
		assert_ptr_equal(h->items[nodes[i].slot - 1], &nodes[i]);
		assert_true(nodes[i].when == m->when[i]);
	}
	assert_int_equal(queued, h->len);
	if (h->len == 0)
		assert_null(timer_first(h));
	else
		assert_true(timer_first(h)->when == model_min(m));
}

static void test_random(void **state)
{
	struct timer_node nodes[NODES] = { { 0, 0 } };
	struct timer_heap h = { 0 };
	struct model m;
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < NODES; i++)
		m.when[i] = INT64_MAX;
	for (int step = 0; step < 20000; step++) {
		int i = rand_r(&seed) % NODES, op = rand_r(&seed) % 8;
		/* a small range of times makes many ties */
		int64_t when = rand_r(&seed) % 64;
		if (op < 4) { /* insert or move */
			assert_int_equal(timer_set(&h, &nodes[i], when), 0);
			m.when[i] = when;
		} else if (op == 4) {
			timer_remove(&h, &nodes[i]);
			m.when[i] = INT64_MAX;
		} else if (op == 5) { /* INT64_MAX also removes */
			assert_int_equal(timer_set(&h, &nodes[i], INT64_MAX), 0);
			m.when[i] = INT64_MAX;
		} else if (op == 6 && h.len > 0) { /* what a loop does: pop the earliest */
			struct timer_node *t = timer_first(&h);
			timer_remove(&h, t);
			m.when[t - nodes] = INT64_MAX;
		} else if (op == 7 && nodes[i].slot != 0) { /* same deadline again */
			assert_int_equal(timer_set(&h, &nodes[i], nodes[i].when), 0);
		}
		check(&h, nodes, &m);
	}
	/* Drain in order. */
	for (int64_t last = INT64_MIN; h.len > 0;) {
		struct timer_node *t = timer_first(&h);
		assert_true(t->when >= last);
		last = t->when;
		timer_remove(&h, t);
		m.when[t - nodes] = INT64_MAX;
		check(&h, nodes, &m);
	}
	timer_heap_free(&h);
	assert_null(h.items);
}

static void test_wait_ms(void **state)
{
	struct timer_heap h = { 0 };
	struct timer_node a = { 0, 0 };

	(void)state;
	assert_int_equal(timer_wait_ms(&h, 1000, 500), 500);
	assert_int_equal(timer_set(&h, &a, 1200), 0);
	assert_int_equal(timer_wait_ms(&h, 1000, 500), 200);
	assert_int_equal(timer_wait_ms(&h, 1000, 100), 100);
	assert_int_equal(timer_wait_ms(&h, 1300, 500), 0);
	assert_int_equal(timer_set(&h, &a, INT64_MAX - 1), 0);
	assert_int_equal(timer_wait_ms(&h, 0, 1000), 1000);
	timer_remove(&h, &a);
	timer_remove(&h, &a); /* removing twice is harmless */
	assert_int_equal(h.len, 0);
	timer_heap_free(&h);
}

/* The heap grows past its first allocation and keeps its order. */
static void test_grow(void **state)
{
	static struct timer_node many[1000];
	struct timer_heap h = { 0 };

	(void)state;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(timer_set(&h, &many[i], 1000 - i), 0);
	for (int i = 999; i >= 0; i--) {
		assert_ptr_equal(timer_first(&h), &many[i]);
		timer_remove(&h, &many[i]);
	}
	timer_heap_free(&h);
}

int main(void)
{
	struct unit_list l = { 0 };

	unit_add(&l, "random operations against a brute-force model", test_random, NULL);
	unit_add(&l, "timer_wait_ms clamps", test_wait_ms, NULL);
	unit_add(&l, "growing past the first allocation", test_grow, NULL);
	return unit_run(&l, "timer heap", NULL, NULL) != 0;
}
