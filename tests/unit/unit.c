/*
 * unit.c - the shared pieces of the unit tests (see unit.h).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	abort();
}

void guard_init(struct guard *g, size_t room)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t readable = (room + page - 1) / page * page;

	if (readable == 0)
		readable = page;
	g->total = readable + page;
	g->base = mmap(NULL, g->total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->base == MAP_FAILED)
		die("mmap");
	/* The last page becomes the tripwire. */
	if (mprotect(g->base + readable, page, PROT_NONE) != 0)
		die("mprotect");
	g->room = readable;
}

void guard_free(struct guard *g)
{
	if (g->base != NULL)
		munmap(g->base, g->total);
	g->base = NULL;
}

char *guard_place(struct guard *g, const void *data, size_t len)
{
	char *dst;

	if (len > g->room) {
		fprintf(stderr, "guard_place: %zu bytes do not fit in %zu\n", len, g->room);
		abort();
	}
	dst = g->base + g->room - len;
	if (len > 0)
		memmove(dst, data, len);
	return dst;
}

void unit_add(struct unit_list *l, const char *name, CMUnitTestFunction fn, void *state)
{
	if (l->len == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct CMUnitTest *t = realloc(l->tests, ncap * sizeof(*t));
		if (t == NULL)
			die("realloc");
		l->tests = t;
		l->cap = ncap;
	}
	l->tests[l->len++] = (struct CMUnitTest){
		.name = name,
		.test_func = fn,
		.initial_state = state,
	};
}

void unit_add_table(struct unit_list *l, void *vectors, size_t count, size_t size,
                    CMUnitTestFunction fn)
{
	for (size_t i = 0; i < count; i++) {
		char *v = (char *)vectors + i * size;
		const char *name;
		/* Every vector struct starts with its name. */
		memcpy(&name, v, sizeof(name));
		unit_add(l, name, fn, v);
	}
}

int unit_run(struct unit_list *l, const char *group, CMFixtureFunction setup,
             CMFixtureFunction teardown)
{
	int failed = _cmocka_run_group_tests(group, l->tests, l->len, setup, teardown);

	free(l->tests);
	l->tests = NULL;
	l->len = l->cap = 0;
	return failed;
}

void sbuf_add(struct sbuf *s, const void *data, size_t len)
{
	if (s->len + len + 1 > s->cap) {
		size_t ncap = s->cap ? s->cap : 256;
		char *p;
		while (ncap < s->len + len + 1)
			ncap *= 2;
		if ((p = realloc(s->p, ncap)) == NULL)
			die("realloc");
		s->p = p;
		s->cap = ncap;
	}
	if (len > 0)
		memcpy(s->p + s->len, data, len);
	s->len += len;
	s->p[s->len] = '\0'; /* handy for string asserts; the length still rules */
}

void sbuf_free(struct sbuf *s)
{
	free(s->p);
	s->p = NULL;
	s->len = s->cap = 0;
}
