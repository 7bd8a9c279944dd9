/*
 * unit.h - what every unit test file shares: cmocka, guard pages, and a way
 * to turn a table of named vectors into one cmocka test per vector.
 *
 * What it teaches: a parser that reads one byte too far usually gets away
 * with it, because the next byte is mapped. Put the input so that it ends
 * exactly where a PROT_NONE page begins and that byte is no longer there: any
 * over-read becomes a crash the test run reports. The sanitizer build
 * (unit.mk) catches the rest of the memory errors on the heap.
 *
 * Needs: cmocka (libcmocka-dev), a POSIX system with mmap/mprotect.
 */
#ifndef UNIT_H
#define UNIT_H

/* cmocka.h relies on these being included first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A block of readable pages followed by one PROT_NONE page. */
struct guard {
	char *base;   /* first readable byte */
	size_t room;  /* readable bytes before the guard page */
	size_t total; /* the whole mapping, guard page included */
};

/* Maps at least `room` readable bytes followed by a guard page. Aborts the
 * test run if the mapping fails: no test could mean anything then. */
void guard_init(struct guard *g, size_t room);
void guard_free(struct guard *g);

/* Copies data[0..len) so that its last byte is the last readable byte, and
 * returns where the copy starts. len may be 0 (then the guard page itself
 * is returned: reading even one byte crashes). */
char *guard_place(struct guard *g, const void *data, size_t len);

/* A list of tests built at run time, so that every vector of a table
 * becomes its own named cmocka test. One list per file: one group, one
 * summary. */
struct unit_list {
	struct CMUnitTest *tests;
	size_t len, cap;
};

/* Adds one test; *state is `state` when fn runs. */
void unit_add(struct unit_list *l, const char *name, CMUnitTestFunction fn, void *state);

/* Adds one test per vector of a table: fn runs with *state pointing to the
 * vector, and the test is named by the `const char *` each vector starts with. */
void unit_add_table(struct unit_list *l, void *vectors, size_t count, size_t size,
                    CMUnitTestFunction fn);

#define UNIT_ADD_TABLE(list, vectors, fn)                                     \
	unit_add_table(list, vectors, sizeof(vectors) / sizeof((vectors)[0]), \
	               sizeof((vectors)[0]), fn)

/* Runs the list as one cmocka group and frees it. Returns the number of
 * failed tests (main() returns it: 0 means all passed). */
int unit_run(struct unit_list *l, const char *group, CMFixtureFunction setup,
             CMFixtureFunction teardown);

/* A growable byte string for collecting output. */
struct sbuf {
	char *p;
	size_t len, cap;
};

void sbuf_add(struct sbuf *s, const void *data, size_t len);
void sbuf_free(struct sbuf *s);

#endif
