/*
 * test_router.c - unit tests of the radix-tree router, percent-decoding and
 * query strings (common/router.h).
 *
 * What it teaches: a router is a table from (method, path) to a route, so
 * its tests are a table too. The routes below are chosen to make the tree
 * split its edges ("/plain" inside "/plaintext"), to put a literal next to a
 * parameter ("/users/me" beside "/users/:id"), and to end in a catch-all.
 *
 * Needs: cmocka. Run with `make test-unit`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "router.h"
#include "unit.h"

#define M(x)     ROUTER_METHOD(HTTP_##x)
#define GET_HEAD (M(GET) | M(HEAD))

enum {
	R_ROOT = 1,
	R_PLAINTEXT,
	R_PLAIN,
	R_USER,
	R_USER_POST,
	R_ME,
	R_POSTS,
	R_STATIC,
	R_ECHO,
	R_FILES,
};

static const struct {
	unsigned methods;
	const char *pattern;
	int route;
} routes[] = {
	{ GET_HEAD, "/plaintext", R_PLAINTEXT },
	{ M(GET), "/plain", R_PLAIN },
	{ M(GET), "/", R_ROOT },
	{ M(GET), "/users/:id", R_USER },
	{ M(POST), "/users/:id", R_USER_POST },
	{ M(GET) | M(DELETE), "/users/me", R_ME },
	{ M(GET), "/users/:id/posts", R_POSTS },
	{ GET_HEAD, "/static/*", R_STATIC },
	{ M(POST), "/echo", R_ECHO },
	{ M(GET), "/files/:name/*", R_FILES },
};

static struct router *router;

/* A lookup and what it must give: rc 0 with route and param, or -404, or
 * -405 with the Allow mask. */
struct match_vec {
	const char *name;
	enum http_method method;
	const char *path;
	int rc, route;
	const char *param;
	unsigned allow;
};

static struct match_vec matches[] = {
	{ "literal", HTTP_GET, "/plaintext", .route = R_PLAINTEXT },
	{ "literal, second method", HTTP_HEAD, "/plaintext", .route = R_PLAINTEXT },
	{ "literal that split an edge", HTTP_GET, "/plain", .route = R_PLAIN },
	{ "root", HTTP_GET, "/", .route = R_ROOT },
	{ "prefix of a literal", HTTP_GET, "/pla", .rc = -404 },
	{ "literal plus a byte", HTTP_GET, "/plaintexts", .rc = -404 },
	{ "trailing slash is another path", HTTP_GET, "/plaintext/", .rc = -404 },
	{ "case matters", HTTP_GET, "/PLAINTEXT", .rc = -404 },
	{ "empty path", HTTP_GET, "", .rc = -404 },
	{ "param", HTTP_GET, "/users/42", .route = R_USER, .param = "42" },
	{ "param, other method", HTTP_POST, "/users/42", .route = R_USER_POST, .param = "42" },
	{ "literal beats param", HTTP_GET, "/users/me", .route = R_ME },
	{ "literal prefix falls back to param", HTTP_GET, "/users/m", .route = R_USER,
	  .param = "m" },
	{ "literal extended falls back to param", HTTP_GET, "/users/mex", .route = R_USER,
	  .param = "mex" },
	{ "param is one segment", HTTP_GET, "/users/42/posts", .route = R_POSTS, .param = "42" },
	{ "param must not be empty", HTTP_GET, "/users/", .rc = -404 },
	{ "param then unknown segment", HTTP_GET, "/users/42/x", .rc = -404 },
	{ "param then a slash", HTTP_GET, "/users/42/", .rc = -404 },
	{ "catch-all", HTTP_GET, "/static/css/site.css", .route = R_STATIC,
	  .param = "css/site.css" },
	{ "catch-all keeps dots", HTTP_GET, "/static/../x", .route = R_STATIC, .param = "../x" },
	{ "catch-all may be empty", HTTP_GET, "/static/", .route = R_STATIC, .param = "" },
	{ "catch-all needs its slash", HTTP_GET, "/static", .rc = -404 },
	{ "param then catch-all: the last one is kept", HTTP_GET, "/files/a/b/c", .route = R_FILES,
	  .param = "b/c" },
	{ "unknown path", HTTP_GET, "/nope", .rc = -404 },
	{ "405 lists GET and HEAD", HTTP_POST, "/plaintext", .rc = -405, .allow = GET_HEAD },
	{ "405 lists POST", HTTP_GET, "/echo", .rc = -405, .allow = M(POST) },
	{ "405 on the literal beside a param", HTTP_POST, "/users/me", .rc = -405,
	  .allow = M(GET) | M(DELETE) },
	{ "405 on a param", HTTP_PUT, "/users/7", .rc = -405, .allow = M(GET) | M(POST) },
	{ "405 on a catch-all", HTTP_DELETE, "/static/a", .rc = -405, .allow = GET_HEAD },
};

static void test_match(void **state)
{
	const struct match_vec *v = *state;
	struct router_match m;
	int rc = router_match(router, v->method, v->path, strlen(v->path), &m);

	assert_int_equal(rc, v->rc);
	if (rc == 0) {
		const char *want = v->param ? v->param : "";
		assert_int_equal(m.route, v->route);
		assert_int_equal(m.param.len, strlen(want));
		if (m.param.len > 0)
			assert_memory_equal(m.param.p, want, m.param.len);
	}
	if (rc == -405)
		assert_int_equal(m.allow, v->allow);
}

/* The path is only read within its length: no NUL terminator is needed. */
static void test_match_unterminated(void **state)
{
	static const char buf[] = "/plaintextXYZ";
	struct router_match m;

	(void)state;
	assert_int_equal(router_match(router, HTTP_GET, buf, 10, &m), 0);
	assert_int_equal(m.route, R_PLAINTEXT);
	assert_int_equal(router_match(router, HTTP_GET, buf, 6, &m), 0);
	assert_int_equal(m.route, R_PLAIN);
	assert_int_equal(router_match(router, HTTP_GET, "/users/42/posts", 9, &m), 0);
	assert_int_equal(m.route, R_USER);
	assert_int_equal(m.param.len, 2);
}

static void test_add_errors(void **state)
{
	struct router *r = router_new();

	(void)state;
	assert_non_null(r);
	assert_int_equal(router_add(r, M(GET), "/a", 1), 0);
	assert_int_equal(router_add(r, M(GET), "a", 1), -EINVAL);
	assert_int_equal(router_add(r, M(GET), "", 1), -EINVAL);
	assert_int_equal(router_add(r, M(GET), "/b", -1), -EINVAL);
	assert_int_equal(router_add(r, 0, "/b", 1), -EINVAL);
	assert_int_equal(router_add(r, M(GET), "/c/*/d", 1), -EINVAL);
	assert_int_equal(router_add(r, M(GET), "/a", 2), -EINVAL);
	assert_int_equal(router_add(r, M(GET) | M(POST), "/a", 2), -EINVAL);
	/* another method on the same path is fine */
	assert_int_equal(router_add(r, M(POST), "/a", 2), 0);
	assert_int_equal(router_add(r, M(GET), "/p/:x", 3), 0);
	assert_int_equal(router_add(r, M(GET), "/p/:y", 4), -EINVAL);
	router_free(r);
	router_free(NULL);
}

/* ---- percent-decoding ------------------------------------------------------- */

struct decode_vec {
	const char *name;
	const char *in;
	const char *out; /* NULL: refused with -400 */
};

static struct decode_vec decodes[] = {
	{ "nothing to decode", "/a/b.txt", "/a/b.txt" },
	{ "empty", "", "" },
	{ "space", "/a%20b", "/a b" },
	{ "lowercase hex", "%2f%2e", "/." },
	{ "uppercase hex", "%2F%2E", "/." },
	{ "dot-dot stays dot-dot", "/%2e%2e/x", "/../x" },
	{ "decoded once only", "%252e", "%2e" },
	{ "high byte", "%C3%A9", "\xc3\xa9" },
	{ "plus is not space in a path", "a+b", "a+b" },
	{ "escape at the end", "/a%41", "/aA" },
	{ "encoded NUL", "/a%00b", NULL },
	{ "lone percent", "/a%", NULL },
	{ "one hex digit at the end", "/a%4", NULL },
	{ "non-hex digit", "/a%4g", NULL },
	{ "non-hex first digit", "/a%g4", NULL },
	{ "percent then percent", "%%41", NULL },
};

static void test_decode(void **state)
{
	const struct decode_vec *v = *state;
	size_t len = strlen(v->in);
	char out[64];
	long rc;

	memset(out, 0xAA, sizeof(out));
	rc = router_decode(v->in, len, out);
	if (v->out == NULL) {
		assert_int_equal(rc, -400);
		return;
	}
	assert_int_equal(rc, (long)strlen(v->out));
	assert_memory_equal(out, v->out, (size_t)rc);
	/* decoding never grows, and writes nothing past what it returns */
	assert_true((size_t)rc <= len);
	assert_int_equal((unsigned char)out[rc], 0xAA);
}

/* ---- query strings ----------------------------------------------------------- */

struct query_vec {
	const char *name;
	const char *query, *key;
	const char *value; /* NULL: absent */
};

static struct query_vec queries[] = {
	{ "first", "a=1&b=2", "a", "1" },
	{ "last", "a=1&b=2", "b", "2" },
	{ "absent", "a=1&b=2", "c", NULL },
	{ "empty query", "", "a", NULL },
	{ "key without value", "a&b=2", "a", "" },
	{ "key with empty value", "a=&b=2", "a", "" },
	{ "value stays encoded", "q=a%20b", "q", "a%20b" },
	{ "prefix of a key is not the key", "ab=1", "a", NULL },
	{ "key longer than any", "a=1", "abc", NULL },
	{ "value that looks like a key", "x=a&a=2", "a", "2" },
	{ "empty pairs skipped", "&&a=1&&", "a", "1" },
	{ "first of repeated keys", "a=1&a=2", "a", "1" },
	{ "value with '='", "a=b=c", "a", "b=c" },
};

static void test_query(void **state)
{
	const struct query_vec *v = *state;
	struct http_str q = { v->query, strlen(v->query) }, val = { NULL, 0 };
	bool found = router_query_get(q, v->key, &val);

	assert_int_equal(found, v->value != NULL);
	if (found) {
		assert_int_equal(val.len, strlen(v->value));
		assert_memory_equal(val.p, v->value, val.len);
		assert_true(val.p >= q.p && val.p + val.len <= q.p + q.len);
	}
}

/* The parser's "no query" is { NULL, 0 }: no pointer arithmetic on NULL. */
static void test_query_absent(void **state)
{
	struct http_str val = { NULL, 0 };

	(void)state;
	assert_false(router_query_get((struct http_str){ NULL, 0 }, "a", &val));
}

static int setup(void **state)
{
	(void)state;
	if ((router = router_new()) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (router_add(router, routes[i].methods, routes[i].pattern, routes[i].route) != 0)
			return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	router_free(router);
	return 0;
}

int main(void)
{
	struct unit_list l = { 0 };

	UNIT_ADD_TABLE(&l, matches, test_match);
	unit_add(&l, "match reads only the given length", test_match_unterminated, NULL);
	unit_add(&l, "router_add refuses bad patterns", test_add_errors, NULL);
	UNIT_ADD_TABLE(&l, decodes, test_decode);
	UNIT_ADD_TABLE(&l, queries, test_query);
	unit_add(&l, "regression: absent query (NULL, 0)", test_query_absent, NULL);
	return unit_run(&l, "router", setup, teardown) != 0;
}
