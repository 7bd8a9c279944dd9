/*
 * test_http.c - unit tests of the request-head parser and the chunked
 * decoder (common/http.h, common/http_parse.c).
 *
 * What it teaches: how to test a parser so that it can be trusted with bytes
 * from the network. Each vector is one line with a name. Valid heads are
 * parsed whole and every proper prefix of them must answer "incomplete" (0),
 * the way a head trickles in; malformed ones must be refused with the exact
 * status RFC 9112 calls for, and no prefix may be refused with another one.
 * Every input ends at a guard page (unit.h), so reading one byte too far
 * crashes the run. The chunked decoder keeps state between calls, so its
 * vectors are also fed byte by byte and split at every offset, and each way
 * must decode the same body.
 *
 * The parser has three ways to scan (http_simd.h): SSE2 and AVX2 fast paths
 * and the scalar loops they stand in front of. Every test here runs once per
 * way this CPU has, and a differential test mutates every byte of many heads
 * and demands that every way give the scalar loops' answer down to the last
 * view. Fields longer than 16 and 32 bytes with the odd byte at every offset
 * test the block edges.
 *
 * Needs: cmocka. Run with `make test-unit`.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"
#include "http_simd.h"
#include "unit.h"

/* Room for the largest input: a head over HTTP_MAX_HEAD plus slack. */
enum { ROOM = 4 * HTTP_MAX_HEAD };

static struct guard g;

/* ---- request heads -------------------------------------------------------- */

/* A valid head and what the parser must make of it. `after` holds bytes that
 * follow the head in the same buffer (a body, a pipelined request), which
 * the parser must leave alone. Absent strings are expected empty. */
struct valid_vec {
	const char *name;
	const char *in, *after;
	enum http_method method;
	int minor;
	const char *target, *path, *query, *host;
	enum http_body body;
	uint64_t length;
	bool keep_alive, expect;
	size_t nheaders;
};

#define V11 .minor = 1, .keep_alive = true

static struct valid_vec valid[] = {
	{ "origin-form", "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n", V11, .path = "/plaintext",
	  .host = "a", .nheaders = 1 },
	{ "query string", "GET /p?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n", V11, .target = "/p?x=1&y",
	  .path = "/p", .query = "x=1&y", .host = "a", .nheaders = 1 },
	{ "empty query", "GET /p? HTTP/1.1\r\nHost: a\r\n\r\n", V11, .target = "/p?", .path = "/p",
	  .host = "a", .nheaders = 1 },
	{ "percent-encoded path kept raw", "GET /a%20b HTTP/1.1\r\nHost: a\r\n\r\n", V11,
	  .path = "/a%20b", .host = "a", .nheaders = 1 },
	{ "absolute-form", "GET http://example.com:8080/x?q HTTP/1.1\r\nHost: other\r\n\r\n", V11,
	  .target = "http://example.com:8080/x?q", .path = "/x", .query = "q",
	  .host = "example.com:8080", .nheaders = 1 },
	{ "absolute-form, scheme in capitals", "GET HTTPS://h/ HTTP/1.1\r\nHost: h\r\n\r\n", V11,
	  .target = "HTTPS://h/", .path = "/", .host = "h", .nheaders = 1 },
	{ "absolute-form without a path", "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", V11,
	  .target = "http://h", .path = "", .host = "h", .nheaders = 1 },
	{ "absolute-form with a query only", "GET http://h?a=b HTTP/1.1\r\nHost: h\r\n\r\n", V11,
	  .target = "http://h?a=b", .path = "", .query = "a=b", .host = "h", .nheaders = 1 },
	{ "OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_OPTIONS,
	  .target = "*", .path = "", .host = "a", .nheaders = 1 },
	{ "HEAD", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_HEAD, .path = "/",
	  .host = "a", .nheaders = 1 },
	{ "PUT", "PUT /x HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_PUT, .path = "/x",
	  .host = "a", .nheaders = 1 },
	{ "DELETE", "DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_DELETE,
	  .path = "/x", .host = "a", .nheaders = 1 },
	{ "PATCH", "PATCH /x HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_PATCH, .path = "/x",
	  .host = "a", .nheaders = 1 },
	{ "TRACE", "TRACE /x HTTP/1.1\r\nHost: a\r\n\r\n", V11, .method = HTTP_TRACE, .path = "/x",
	  .host = "a", .nheaders = 1 },
	{ "HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", .minor = 0, .path = "/" },
	{ "HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .minor = 0,
	  .path = "/", .keep_alive = true, .nheaders = 1 },
	{ "HTTP/1.0 Keep-Alive in capitals", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	  .minor = 0, .path = "/", .keep_alive = true, .nheaders = 1 },
	{ "HTTP/1.0 keep-alive then close",
	  "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", .minor = 0, .path = "/",
	  .nheaders = 1 },
	{ "HTTP/1.1 keep-alive by default",
	  "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", V11, .path = "/", .host = "a",
	  .nheaders = 2 },
	{ "HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	  .minor = 1, .path = "/", .host = "a", .nheaders = 2 },
	{ "HTTP/1.1 close among tokens",
	  "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade ,, CLOSE\r\n\r\n", .minor = 1,
	  .path = "/", .host = "a", .nheaders = 2 },
	{ "HTTP/1.2 is answered as 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", V11, .path = "/",
	  .host = "a", .nheaders = 1 },
	{ "leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", V11, .path = "/",
	  .host = "a", .nheaders = 1 },
	{ "leading bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", V11, .path = "/", .host = "a",
	  .nheaders = 1 },
	{ "bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", V11, .path = "/", .host = "a",
	  .nheaders = 1 },
	{ "mixed line ends", "GET / HTTP/1.1\r\nHost: a\n\r\n", V11, .path = "/", .host = "a",
	  .nheaders = 1 },
	{ "many headers",
	  "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: "
	  "7\r\nAccept: */*\r\nUser-Agent: x/1.0\r\n\r\n",
	  V11, .path = "/", .host = "a", .nheaders = 10 },
	{ "OWS around a value", "GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n", V11, .path = "/",
	  .host = "a", .nheaders = 1 },
	{ "empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", V11, .path = "/", .nheaders = 1 },
	{ "obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", V11,
	  .path = "/", .host = "a", .nheaders = 2 },
	{ "header names are case-insensitive", "GET / HTTP/1.1\r\nhOST: a\r\n\r\n", V11,
	  .path = "/", .host = "a", .nheaders = 1 },
	{ "Content-Length", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", V11,
	  .method = HTTP_POST, .path = "/echo", .host = "a", .body = HTTP_BODY_LENGTH, .length = 5,
	  .nheaders = 2 },
	{ "Content-Length: 0 is no body",
	  "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", V11, .method = HTTP_POST,
	  .path = "/echo", .host = "a", .nheaders = 2 },
	{ "Content-Length repeated, equal",
	  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n", V11,
	  .method = HTTP_POST, .path = "/", .host = "a", .body = HTTP_BODY_LENGTH, .length = 7,
	  .nheaders = 3 },
	{ "Content-Length with leading zeros",
	  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n", V11, .method = HTTP_POST,
	  .path = "/", .host = "a", .body = HTTP_BODY_LENGTH, .length = 7, .nheaders = 2 },
	{ "Content-Length of 19 digits",
	  "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", V11,
	  .method = HTTP_POST, .path = "/", .host = "a", .body = HTTP_BODY_LENGTH,
	  .length = UINT64_C(9999999999999999999), .nheaders = 2 },
	{ "chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", V11,
	  .method = HTTP_POST, .path = "/", .host = "a", .body = HTTP_BODY_CHUNKED, .nheaders = 2 },
	{ "chunked in capitals", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
	  V11, .method = HTTP_POST, .path = "/", .host = "a", .body = HTTP_BODY_CHUNKED,
	  .nheaders = 2 },
	{ "Expect: 100-continue",
	  "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", V11,
	  .method = HTTP_POST, .path = "/", .host = "a", .body = HTTP_BODY_LENGTH, .length = 1,
	  .expect = true, .nheaders = 3 },
	{ "Expect: 100-Continue in capitals",
	  "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n", V11, .method = HTTP_POST,
	  .path = "/", .host = "a", .expect = true, .nheaders = 2 },
	{ "Expect on HTTP/1.0 is ignored",
	  "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	  .method = HTTP_POST, .path = "/", .body = HTTP_BODY_LENGTH, .length = 1, .nheaders = 2 },
	{ "a body follows the head", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
	  .after = "abc", V11, .method = HTTP_POST, .path = "/echo", .host = "a",
	  .body = HTTP_BODY_LENGTH, .length = 3, .nheaders = 2 },
	{ "a pipelined request follows", "GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
	  .after = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n", V11, .path = "/a", .host = "a",
	  .nheaders = 1 },
};

static void expect_str(struct http_str got, const char *want, const char *what)
{
	if (want == NULL)
		want = "";
	if (got.len != strlen(want) || (got.len > 0 && memcmp(got.p, want, got.len) != 0))
		fail_msg("%s: got \"%.*s\", want \"%s\"", what, (int)got.len, got.p ? got.p : "",
		         want);
}

/* Whether two parses of one buffer made the same views and decisions. The
 * fixed part of the struct holds them; headers past nheaders are stale, so
 * only the used ones count. */
static bool same_request(const struct http_request *a, const struct http_request *b)
{
	return memcmp(a, b, offsetof(struct http_request, headers)) == 0 &&
	       memcmp(a->headers, b->headers, a->nheaders * sizeof(a->headers[0])) == 0;
}

/* http_parse_head() on a head known whole must make of it exactly what
 * http_parse_request() makes: the same result and the same views. */
static void expect_head_same(const char *in, size_t len)
{
	struct http_request a, b;
	int ra = http_parse_request(in, len, &a), rb = http_parse_head(in, len, &b);

	assert_int_equal(ra, rb);
	if (ra > 0 && !same_request(&a, &b))
		fail_msg("http_parse_head parsed %zu bytes differently", len);
}

static void test_valid(void **state)
{
	const struct valid_vec *v = *state;
	struct sbuf all = { 0 };
	struct http_request req;
	size_t used = strlen(v->in), len;
	const char *in;
	int rc;

	sbuf_add(&all, v->in, used);
	if (v->after != NULL)
		sbuf_add(&all, v->after, strlen(v->after));
	len = all.len;
	in = guard_place(&g, all.p, len);
	rc = http_parse_request(in, len, &req);
	assert_int_equal(rc, (int)used);
	assert_int_equal(req.method, v->method);
	assert_int_equal(req.minor, v->minor);
	expect_str(req.target, v->target ? v->target : v->path, "target");
	expect_str(req.path, v->path, "path");
	expect_str(req.query, v->query, "query");
	expect_str(req.host, v->host, "host");
	assert_int_equal(req.body, v->body);
	if (v->body == HTTP_BODY_LENGTH)
		assert_true(req.content_length == v->length);
	assert_int_equal(req.keep_alive, v->keep_alive);
	assert_int_equal(req.expect_continue, v->expect);
	assert_int_equal(req.nheaders, v->nheaders);
	for (size_t i = 0; i < req.nheaders; i++) {
		/* views must stay inside the head */
		assert_true(req.headers[i].name.p >= in && req.headers[i].value.p >= in);
		assert_true(req.headers[i].value.p + req.headers[i].value.len <= in + used);
	}

	/* conn.c's way: the head found whole first, then parsed without a
	 * second search for its end. */
	in = guard_place(&g, all.p, used);
	assert_int_equal(http_head_end(in, used, 0), used);
	expect_head_same(in, used);

	/* The head trickling in: every prefix short of the head is incomplete,
	 * every longer one parses to the same head. */
	for (size_t k = 0; k < len; k++) {
		in = guard_place(&g, all.p, k);
		rc = http_parse_request(in, k, &req);
		if (rc != (k < used ? 0 : (int)used))
			fail_msg("prefix of %zu bytes: got %d", k, rc);
	}
	sbuf_free(&all);
}

/* A head that must be refused with `status`. `len` is needed only when the
 * input holds a NUL byte (WITH_NUL sets both). */
struct bad_vec {
	const char *name;
	const char *in;
	int status;
	size_t len;
};

#define H             "Host: a\r\n"
#define WITH_NUL(lit) .in = lit, .len = sizeof(lit) - 1

static struct bad_vec bad[] = {
	{ "method only", "GET\r\n\r\n", .status = 400 },
	{ "HTTP/0.9 request line", "GET /\r\n\r\n", .status = 400 },
	{ "two spaces after the method", "GET  / HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "tab as a separator", "GET\t/ HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "space before the method", " GET / HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "space after the version", "GET / HTTP/1.1 \r\n" H "\r\n", .status = 400 },
	{ "lowercase protocol name", "GET / http/1.1\r\n" H "\r\n", .status = 400 },
	{ "version not a digit", "GET / HTTP/1.x\r\n" H "\r\n", .status = 400 },
	{ "version with two minor digits", "GET / HTTP/1.10\r\n" H "\r\n", .status = 400 },
	{ "version with two major digits", "GET / HTTP/11.1\r\n" H "\r\n", .status = 400 },
	{ "CR inside the target", "GET /a\rb HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "CR alone ends the request line", "GET / HTTP/1.1\r" H "\r\n", .status = 400 },
	{ "method with a non-token byte", "G@T / HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "unknown method", "FOO / HTTP/1.1\r\n" H "\r\n", .status = 501 },
	{ "lowercase method (methods are case-sensitive)", "get / HTTP/1.1\r\n" H "\r\n",
	  .status = 501 },
	{ "method with a suffix", "GETS / HTTP/1.1\r\n" H "\r\n", .status = 501 },
	{ "HTTP/2.0", "GET / HTTP/2.0\r\n" H "\r\n", .status = 505 },
	{ "HTTP/0.9 with a version", "GET / HTTP/0.9\r\n" H "\r\n", .status = 505 },
	{ "HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", .status = 505 },
	{ "fragment in the target", "GET /a#b HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "asterisk with GET", "GET * HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "asterisk with a path", "OPTIONS */x HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "relative target", "GET a/b HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "absolute-form, other scheme", "GET ftp://h/ HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "absolute-form, one slash", "GET http:/h/ HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "absolute-form, empty authority", "GET http:///x HTTP/1.1\r\n" H "\r\n", .status = 400 },
	{ "CONNECT authority-form is not served", "CONNECT h:443 HTTP/1.1\r\n" H "\r\n",
	  .status = 400 },
	{ "space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", .status = 400 },
	{ "tab before the colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", .status = 400 },
	{ "obs-fold with a space", "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", .status = 400 },
	{ "obs-fold with a tab", "GET / HTTP/1.1\r\n" H "X: a\r\n\tb\r\n\r\n", .status = 400 },
	{ "field without a colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", .status = 400 },
	{ "empty field name", "GET / HTTP/1.1\r\n" H ": a\r\n\r\n", .status = 400 },
	{ "non-token byte in a name", "GET / HTTP/1.1\r\n" H "X(: a\r\n\r\n", .status = 400 },
	{ "CTL in a value", "GET / HTTP/1.1\r\n" H "X: a\x01z\r\n\r\n", .status = 400 },
	{ "DEL in a value", "GET / HTTP/1.1\r\n" H "X: a\x7fz\r\n\r\n", .status = 400 },
	{ "NUL in a value", WITH_NUL("GET / HTTP/1.1\r\n" H "X: a\0z\r\n\r\n"), .status = 400 },
	{ "NUL in the target", WITH_NUL("GET /a\0b HTTP/1.1\r\n" H "\r\n"), .status = 400 },
	{ "bare CR in a value", "GET / HTTP/1.1\r\n" H "X: a\rz\r\n\r\n", .status = 400 },
	{ "missing Host on HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", .status = 400 },
	{ "absolute-form still needs Host", "GET http://h/ HTTP/1.1\r\n\r\n", .status = 400 },
	{ "two Host fields", "GET / HTTP/1.1\r\n" H "Host: b\r\n\r\n", .status = 400 },
	{ "two Host fields on HTTP/1.0", "GET / HTTP/1.0\r\n" H H "\r\n", .status = 400 },
	{ "Content-Length not a number", "POST / HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n",
	  .status = 400 },
	{ "Content-Length negative", "POST / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n",
	  .status = 400 },
	{ "Content-Length with a sign", "POST / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\n",
	  .status = 400 },
	{ "Content-Length with a point", "POST / HTTP/1.1\r\n" H "Content-Length: 1.0\r\n\r\n",
	  .status = 400 },
	{ "Content-Length in hex", "POST / HTTP/1.1\r\n" H "Content-Length: 0x10\r\n\r\n",
	  .status = 400 },
	{ "Content-Length empty", "POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n",
	  .status = 400 },
	{ "Content-Length two numbers", "POST / HTTP/1.1\r\n" H "Content-Length: 1 2\r\n\r\n",
	  .status = 400 },
	{ "Content-Length of 20 digits",
	  "POST / HTTP/1.1\r\n" H "Content-Length: 18446744073709551616\r\n\r\n", .status = 400 },
	{ "Content-Length list differing", "POST / HTTP/1.1\r\n" H "Content-Length: 5, 6\r\n\r\n",
	  .status = 400 },
	{ "Content-Length fields differing",
	  "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", .status = 400 },
	{ "Content-Length and chunked",
	  "POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	  .status = 400 },
	{ "chunked and Content-Length",
	  "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	  .status = 400 },
	{ "Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	  .status = 400 },
	{ "unknown coding before chunked",
	  "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", .status = 501 },
	{ "unknown coding in an earlier field",
	  "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
	  .status = 501 },
	{ "chunked not last", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n",
	  .status = 400 },
	{ "chunked twice", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n",
	  .status = 400 },
	{ "a coding without chunked", "POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n",
	  .status = 400 },
	{ "regression: empty Transfer-Encoding with Content-Length",
	  "POST / HTTP/1.1\r\n" H "Transfer-Encoding: \r\nContent-Length: 5\r\n\r\n",
	  .status = 400 },
	{ "regression: Transfer-Encoding with only commas",
	  "POST / HTTP/1.1\r\n" H "Transfer-Encoding: , ,\r\n\r\n", .status = 400 },
	{ "Expect other than 100-continue", "POST / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n",
	  .status = 417 },
	{ "Expect with more than 100-continue",
	  "POST / HTTP/1.1\r\n" H "Expect: 100-continue, x\r\n\r\n", .status = 417 },
	{ "blank line missing its LF", "GET / HTTP/1.1\r\n" H "\rX\n\n", .status = 400 },
};

static void test_bad(void **state)
{
	const struct bad_vec *v = *state;
	size_t len = v->len ? v->len : strlen(v->in);
	struct http_request req;
	int rc = http_parse_request(guard_place(&g, v->in, len), len, &req);
	size_t end = http_head_end(v->in, len, 0);

	assert_int_equal(rc, -v->status);
	/* conn.c parses a head it has found whole with http_parse_head(). */
	if (end != 0)
		assert_int_equal(http_parse_head(guard_place(&g, v->in, end), end, &req),
		                 -v->status);
	/* Early refusal is welcome, a different verdict is not. */
	for (size_t k = 0; k < len; k++) {
		rc = http_parse_request(guard_place(&g, v->in, k), k, &req);
		if (rc != 0 && rc != -v->status)
			fail_msg("prefix of %zu bytes: got %d, want 0 or %d", k, rc, -v->status);
	}
}

/* Builds "GET /<uri_len - 1 bytes> HTTP/1.1\r\nHost: a\r\n" + nfields
 * one-byte fields + padding in one more field so the head is `total` bytes
 * (0: no padding), then the blank line. */
static char *make_head(struct sbuf *s, size_t uri_len, size_t nfields, size_t total)
{
	char line[32];

	s->len = 0;
	sbuf_add(s, "GET /", 5);
	for (size_t i = 1; i < uri_len; i++)
		sbuf_add(s, "u", 1);
	sbuf_add(s, " HTTP/1.1\r\nHost: a\r\n", 20);
	for (size_t i = 0; i < nfields; i++) {
		int n = snprintf(line, sizeof(line), "F%zu: v\r\n", i);
		sbuf_add(s, line, (size_t)n);
	}
	if (total > 0) {
		size_t fixed = s->len + strlen("P: \r\n\r\n");
		sbuf_add(s, "P: ", 3);
		for (size_t i = fixed; i < total; i++)
			sbuf_add(s, "p", 1);
		sbuf_add(s, "\r\n", 2);
	}
	sbuf_add(s, "\r\n", 2);
	return s->p;
}

static int parse(const char *in, size_t len)
{
	struct http_request req;

	return http_parse_request(guard_place(&g, in, len), len, &req);
}

static void test_limits_uri(void **state)
{
	struct sbuf s = { 0 };
	size_t line_max;

	(void)state;
	make_head(&s, HTTP_MAX_URI, 0, 0);
	assert_int_equal(parse(s.p, s.len), (int)s.len);
	for (size_t k = 0; k < s.len; k++)
		if (parse(s.p, k) != 0)
			fail_msg("prefix of %zu bytes of a URI at the limit refused", k);
	make_head(&s, HTTP_MAX_URI + 1, 0, 0);
	assert_int_equal(parse(s.p, s.len), -414);
	/* Refused before the line ends, once it cannot be a valid line. */
	line_max = strlen("OPTIONS ") + HTTP_MAX_URI + strlen(" HTTP/1.1\r\n");
	assert_int_equal(parse(s.p, line_max + 32), -414);
	sbuf_free(&s);
}

static void test_limits_fields(void **state)
{
	struct sbuf s = { 0 };

	(void)state;
	/* Host plus 63 more is the most a head may carry. */
	make_head(&s, 1, HTTP_MAX_HEADERS - 1, 0);
	assert_int_equal(parse(s.p, s.len), (int)s.len);
	make_head(&s, 1, HTTP_MAX_HEADERS, 0);
	assert_int_equal(parse(s.p, s.len), -431);
	sbuf_free(&s);
}

static void test_limits_head(void **state)
{
	struct sbuf s = { 0 };

	(void)state;
	make_head(&s, 1, 0, HTTP_MAX_HEAD);
	assert_int_equal(s.len, HTTP_MAX_HEAD);
	assert_int_equal(parse(s.p, s.len), HTTP_MAX_HEAD);
	make_head(&s, 1, 0, HTTP_MAX_HEAD + 1);
	assert_int_equal(parse(s.p, s.len), -431);
	assert_int_equal(parse(s.p, HTTP_MAX_HEAD), 0);
	/* Still incomplete, but already too large to ever be accepted. */
	make_head(&s, 1, 0, 2 * HTTP_MAX_HEAD);
	assert_int_equal(parse(s.p, HTTP_MAX_HEAD + 1), -431);
	sbuf_free(&s);
}

/* http_head_end finds the blank line, and resumes from where it stopped. */
static void test_head_end(void **state)
{
	static const char head[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nXYZ";
	size_t len = sizeof(head) - 1, want = len - 3;

	(void)state;
	for (size_t k = 0; k <= len; k++) {
		const char *in = guard_place(&g, head, k);
		assert_int_equal(http_head_end(in, k, 0), k < want ? 0 : want);
		/* What conn.c does after a scan of k bytes found nothing: scan
		 * the longer buffer again from three bytes before the old end. */
		if (k < want) {
			size_t more = k + 1, from = k > 3 ? k - 3 : 0;
			in = guard_place(&g, head, more);
			assert_int_equal(http_head_end(in, more, from), more < want ? 0 : want);
		}
	}
	assert_int_equal(http_head_end(guard_place(&g, "\n\n", 2), 2, 0), 0);
	assert_int_equal(http_head_end(guard_place(&g, "A\n\n", 3), 3, 0), 3);
	assert_int_equal(http_head_end(guard_place(&g, "A\n\r\n", 4), 4, 0), 4);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(http_method_name(HTTP_GET), "GET");
	assert_string_equal(http_method_name(HTTP_CONNECT), "CONNECT");
	assert_string_equal(http_method_name(HTTP_METHOD_COUNT), "?");
	assert_string_equal(http_status_reason(404), "Not Found");
	assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_reason(299), "Unknown");
	assert_true(http_str_ieq((struct http_str){ "HoSt", 4 }, "host"));
	assert_false(http_str_ieq((struct http_str){ "Hos", 3 }, "host"));
	assert_false(http_str_ieq((struct http_str){ "Hosts", 5 }, "host"));
}

/* ---- the two scanners ------------------------------------------------------ */

static enum http_simd_level simd_default; /* the parser's level before main set one */

/* With the default flags an x86-64 build must take the SSE2 fast paths
 * (http_parse.c says why not AVX2), and a CPU with AVX2 must be seen. */
static void test_simd_default(void **state)
{
	(void)state;
#if defined(__x86_64__) && !defined(HTTP_NO_SIMD)
	assert_true(HTTP_SIMD);
	assert_int_equal(simd_default, HTTP_SIMD_SSE2);
#if HTTP_AVX2
	assert_int_equal(http_simd_best() == HTTP_SIMD_AVX2, __builtin_cpu_supports("avx2") != 0);
#endif
#else
	assert_int_equal(simd_default, HTTP_SIMD ? HTTP_SIMD_SSE2 : HTTP_SIMD_NONE);
#endif
}

/* "GET /<target> HTTP/1.1\r\nHost: a\r\n<name>: <value>\r\n\r\n" with
 * text[0..n) as the name (field 0), target (1) or value (2). */
static void head_with(struct sbuf *s, int field, const char *text, size_t n)
{
	s->len = 0;
	sbuf_add(s, "GET /", 5);
	sbuf_add(s, field == 1 ? text : "p", field == 1 ? n : 1);
	sbuf_add(s, " HTTP/1.1\r\nHost: a\r\n", 20);
	sbuf_add(s, field == 0 ? text : "X", field == 0 ? n : 1);
	sbuf_add(s, ": ", 2);
	sbuf_add(s, field == 2 ? text : "v", field == 2 ? n : 1);
	sbuf_add(s, "\r\n\r\n", 4);
}

/* Lengths on both sides of the 16- and 32-byte block edges. */
static const size_t edge_lens[] = { 1, 15, 16, 17, 18, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70 };

/* One odd byte at every offset of a long name, target or value. `field`
 * is 0 (name), 1 (target) or 2 (value); `ok` says whether the byte is
 * allowed there. Checks the status and, when accepted, the view. */
static void odd_byte_everywhere(int field, char odd, bool ok)
{
	char text[80];
	struct sbuf s = { 0 };
	struct http_request req;

	for (size_t e = 0; e < sizeof(edge_lens) / sizeof(edge_lens[0]); e++) {
		size_t n = edge_lens[e];
		for (size_t at = 0; at < n; at++) {
			memset(text, field == 0 ? 'N' : field == 1 ? 't' : 'v', n);
			text[at] = odd;
			head_with(&s, field, text, n);
			int rc = http_parse_request(guard_place(&g, s.p, s.len), s.len, &req);
			if (rc != (ok ? (int)s.len : -400))
				fail_msg("byte 0x%02x at %zu of %zu (field %d): got %d",
				         (unsigned char)odd, at, n, field, rc);
			if (!ok)
				continue;
			struct http_str got = field == 0   ? req.headers[1].name
			                      : field == 1 ? req.target
			                                   : req.headers[1].value;
			size_t want = n + (field == 1); /* the target starts with '/' */
			if (field == 2 && (odd == '\t' || odd == ' ') && (at == 0 || at == n - 1))
				want--; /* OWS at either end is not part of the value */
			if (got.len != want)
				fail_msg("byte 0x%02x at %zu of %zu (field %d): view of %zu",
				         (unsigned char)odd, at, n, field, got.len);
		}
	}
	sbuf_free(&s);
}

static void test_long_names(void **state)
{
	(void)state;
	odd_byte_everywhere(0, '-', true);
	odd_byte_everywhere(0, '_', true);
	odd_byte_everywhere(0, '~', true);
	odd_byte_everywhere(0, '7', true);
	odd_byte_everywhere(0, '(', false);
	odd_byte_everywhere(0, '@', false);
	odd_byte_everywhere(0, ' ', false);
	odd_byte_everywhere(0, '\x80', false);
	odd_byte_everywhere(0, '\0', false);
}

static void test_long_targets(void **state)
{
	(void)state;
	odd_byte_everywhere(1, '%', true);
	odd_byte_everywhere(1, '\x80', true);
	odd_byte_everywhere(1, '\xff', true);
	odd_byte_everywhere(1, '~', true);
	odd_byte_everywhere(1, '\x7f', false);
	odd_byte_everywhere(1, '\x01', false);
	odd_byte_everywhere(1, '\t', false);
	odd_byte_everywhere(1, '\0', false);
}

static void test_long_values(void **state)
{
	(void)state;
	odd_byte_everywhere(2, '\t', true);
	odd_byte_everywhere(2, ' ', true);
	odd_byte_everywhere(2, '\x80', true);
	odd_byte_everywhere(2, '\xff', true);
	odd_byte_everywhere(2, '~', true);
	odd_byte_everywhere(2, '\0', false);
	odd_byte_everywhere(2, '\x1f', false);
	odd_byte_everywhere(2, '\x7f', false);
	odd_byte_everywhere(2, '\r', false);
}

/* The blank line at every offset of a long head, found from every `from`. */
static void test_head_end_offsets(void **state)
{
	static const char *const blanks[] = { "\n\n", "\n\r\n", "\r\n\r\n" };
	char buf[96];

	(void)state;
	for (size_t b = 0; b < 3; b++) {
		size_t blen = strlen(blanks[b]);
		for (size_t at = 1; at + blen <= sizeof(buf); at++) {
			/* Near-misses before it: "\n\r" and "\rx" must not count. */
			for (size_t i = 0; i < at; i++)
				buf[i] = i + 1 == at ? 'x' : "A\n\rx:"[i % 5];
			memcpy(buf + at, blanks[b], blen);
			size_t len = at + blen;
			const char *in = guard_place(&g, buf, len);
			for (size_t from = 0; from <= at; from++)
				if (http_head_end(in, len, from) != len)
					fail_msg("blank %zu at %zu from %zu: %zu", b, at, from,
					         http_head_end(in, len, from));
			if (http_head_end(in, len - 1, 0) != 0)
				fail_msg("blank %zu at %zu: found in a prefix", b, at);
		}
	}
}

/* Every fast path this CPU has must make of buf[0..len) what the scalar
 * loops make of it: same result, same views. */
static void expect_same(const char *buf, size_t len, const char *what, size_t at)
{
	struct http_request a, b;
	int ra, rb;
	size_t ea, eb;

	const char *in = guard_place(&g, buf, len);
	enum http_simd_level was = http_parse_set_simd(HTTP_SIMD_NONE);
	ra = http_parse_request(in, len, &a);
	ea = http_head_end(in, len, 0);
	for (enum http_simd_level level = HTTP_SIMD_SSE2; level <= http_simd_best(); level++) {
		http_parse_set_simd(level);
		rb = http_parse_request(in, len, &b);
		eb = http_head_end(in, len, 0);
		if (ra != rb || ea != eb)
			fail_msg("%s, byte %zu: scalar %d/%zu, %s %d/%zu", what, at, ra, ea,
			         http_simd_name(level), rb, eb);
		if (ra > 0 && !same_request(&a, &b))
			fail_msg("%s, byte %zu: scalar and %s parsed differently", what, at,
			         http_simd_name(level));
	}
	http_parse_set_simd(was);
}

/* A head a browser might send, long enough for every fast path to run. */
static const char browser_head[] =
        "GET /static/app/main.js?v=1234567890abcdef HTTP/1.1\r\n"
        "Host: localhost:8080\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n"
        "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
        "Accept-Language: en-US,en;q=0.5\r\n"
        "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
        "X_Odd_Name: \t value with tabs\t \r\n"
        "\r\n";

/* Every byte of in[0..len), replaced in turn by each byte the scanners
 * treat specially; the parse must not depend on which scanner ran. */
static void mutate_everywhere(const char *name, const char *in, size_t len)
{
	static const char odd[] = { '\0',   '\t', '\n', '\r', ' ', '\x1f', '\x7f', '\x80',
		                    '\xff', ':',  '-',  '_',  '(', 'A',    '/',    '?' };
	struct sbuf s = { 0 };

	sbuf_add(&s, in, len);
	expect_same(s.p, len, name, len);
	for (size_t at = 0; at < len; at++) {
		for (size_t o = 0; o < sizeof(odd); o++) {
			s.p[at] = odd[o];
			expect_same(s.p, len, name, at);
		}
		s.p[at] = in[at];
	}
	sbuf_free(&s);
}

static void test_scanners_agree(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		mutate_everywhere(valid[i].name, valid[i].in, strlen(valid[i].in));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		mutate_everywhere(bad[i].name, bad[i].in,
		                  bad[i].len ? bad[i].len : strlen(bad[i].in));
	mutate_everywhere("browser head", browser_head, sizeof(browser_head) - 1);
}

/* Random heads from an alphabet rich in the bytes the scanners stop at,
 * lengths on both sides of the block edges; a fixed seed keeps a failure
 * reproducible. */
static void test_scanners_agree_random(void **state)
{
	static const char alphabet[] = "GET /HTP1.\r\n\r\n: \tHost:aZz09-_~(\x7f\x01\x80\xff";
	static const char start[] = "GET /x HTTP/1.1\r\nHost: a\r\n";
	uint32_t seed = 12345;
	char buf[160];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = sizeof(start) - 1, n;
		memcpy(buf, start, len);
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % (sizeof(buf) - len);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			buf[len++] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		/* Half of them end a head, so the field scanners run to the end. */
		if (i % 2 == 0 && len + 4 <= sizeof(buf)) {
			memcpy(buf + len, "\r\n\r\n", 4);
			len += 4;
		}
		expect_same(buf, len, "random head", (size_t)i);
	}
}

/* ---- chunked bodies ------------------------------------------------------- */

/* A chunked body: what it decodes to and how much of the input it takes
 * (`used`, 0: all), or the status it must be refused with. */
struct chunk_vec {
	const char *name;
	const char *in;
	const char *body;
	int status;
	size_t used;
};

static struct chunk_vec chunks[] = {
	{ "one chunk", "5\r\nhello\r\n0\r\n\r\n", .body = "hello" },
	{ "two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", .body = "hello world" },
	{ "empty body", "0\r\n\r\n", .body = "" },
	{ "hex size in capitals", "A\r\n0123456789\r\n0\r\n\r\n", .body = "0123456789" },
	{ "hex size in lowercase", "a\r\n0123456789\r\n0\r\n\r\n", .body = "0123456789" },
	{ "leading zeros", "0005\r\nhello\r\n000\r\n\r\n", .body = "hello" },
	{ "sixteen hex digits", "000000000000000A\r\n0123456789\r\n0\r\n\r\n",
	  .body = "0123456789" },
	{ "data holding CRLFs", "4\r\n\r\n\r\n\r\n0\r\n\r\n", .body = "\r\n\r\n" },
	{ "extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", .body = "hello" },
	{ "extension, quoted", "5;a=\"b c\"\r\nhello\r\n0\r\n\r\n", .body = "hello" },
	{ "extensions, several", "5;a;b=1 ; c\r\nhello\r\n0\r\n\r\n", .body = "hello" },
	{ "whitespace before an extension", "5 \t;a\r\nhello\r\n0\r\n\r\n", .body = "hello" },
	{ "trailer fields", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", .body = "hello" },
	{ "bare LF everywhere", "5\nhello\n0\nX: 1\n\n", .body = "hello" },
	{ "bytes after the end are left", "2\r\nhi\r\n0\r\n\r\nGET /", .body = "hi", .used = 12 },
	{ "no digits", "\r\n", .status = 400 },
	{ "extension without a size", ";a\r\n", .status = 400 },
	{ "size not hex", "g\r\n", .status = 400 },
	{ "size with 0x", "0x5\r\nhello\r\n0\r\n\r\n", .status = 400 },
	{ "negative size", "-5\r\n", .status = 400 },
	{ "size with a sign", "+5\r\n", .status = 400 },
	{ "seventeen hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", .status = 400 },
	{ "size overflowing 64 bits", "1FFFFFFFFFFFFFFFF\r\n", .status = 400 },
	{ "whitespace after the size", "5 \t\r\nhello\r\n0 \r\n\r\n", .body = "hello" },
	{ "regression: a second number after the size", "5 6\r\nhello\r\n0\r\n\r\n",
	  .status = 400 },
	{ "regression: hex digit after whitespace", "1 a\r\nx\r\n0\r\n\r\n", .status = 400 },
	{ "whitespace then a non-';' byte", "5 x\r\nhello\r\n0\r\n\r\n", .status = 400 },
	{ "CR without LF after the size", "5\rX", .status = 400 },
	{ "CTL in an extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", .status = 400 },
	{ "DEL in an extension", "5;a\x7f\r\nhello\r\n0\r\n\r\n", .status = 400 },
	{ "data longer than its size", "5\r\nhelloX\r\n0\r\n\r\n", .status = 400 },
	{ "CR without LF after the data", "5\r\nhello\rX", .status = 400 },
	{ "CR CR after the data", "5\r\nhello\r\r\n", .status = 400 },
	{ "CTL in a trailer", "0\r\nX: \x01\r\n\r\n", .status = 400 },
	{ "trailer CR without LF", "0\r\nX: 1\rY\r\n\r\n", .status = 400 },
	{ "final CR without LF", "0\r\n\rX", .status = 400 },
};

/* The outcome of decoding one input. */
struct decoded {
	int status; /* 0 or the refusal */
	bool done;
	size_t used;
	struct sbuf body;
};

/* Feeds in[0..len) to a fresh decoder in pieces: first `first` bytes, then
 * pieces of `step` bytes (0: the rest at once). Each piece ends at the guard
 * page, as a read into a fresh buffer would. */
static void decode(const char *in, size_t len, size_t first, size_t step, struct decoded *out)
{
	struct http_chunked d = { 0 };
	size_t off = 0;

	out->status = 0;
	out->done = false;
	out->used = 0;
	out->body.len = 0;
	while (off < len && !out->done && out->status == 0) {
		size_t plen = off == 0 ? first : step ? step : len - off, pos = 0;
		const char *piece;
		if (plen > len - off)
			plen = len - off;
		piece = guard_place(&g, in + off, plen);
		while (pos < plen && d.state != HTTP_CHUNK_DONE) {
			const char *data = NULL;
			size_t n = 0;
			long rc = http_chunked_step(&d, piece + pos, plen - pos, &data, &n);
			if (rc < 0) {
				out->status = (int)-rc;
				break;
			}
			assert_true(rc > 0 || d.state == HTTP_CHUNK_DONE);
			if (n > 0) {
				assert_true(data >= piece + pos && data + n <= piece + plen);
				sbuf_add(&out->body, data, n);
			}
			pos += (size_t)rc;
		}
		out->done = d.state == HTTP_CHUNK_DONE;
		off += pos;
	}
	out->used = off;
}

static void expect_decoded(const struct chunk_vec *v, const struct decoded *r, const char *how)
{
	size_t len = strlen(v->in);

	if (v->status != 0) {
		if (r->status != v->status)
			fail_msg("%s: status %d, want %d", how, r->status, v->status);
		return;
	}
	if (r->status != 0 || !r->done)
		fail_msg("%s: status %d, done %d", how, r->status, r->done);
	if (r->used != (v->used ? v->used : len))
		fail_msg("%s: used %zu bytes", how, r->used);
	if (r->body.len != strlen(v->body) || memcmp(r->body.p, v->body, r->body.len) != 0)
		fail_msg("%s: body \"%.*s\"", how, (int)r->body.len, r->body.p);
}

static void test_chunked(void **state)
{
	const struct chunk_vec *v = *state;
	size_t len = strlen(v->in);
	struct decoded r = { 0 };
	char how[64];

	sbuf_add(&r.body, "", 0);
	decode(v->in, len, len, 0, &r);
	expect_decoded(v, &r, "whole");
	decode(v->in, len, 1, 1, &r);
	expect_decoded(v, &r, "byte by byte");
	for (size_t k = 1; k < len; k++) {
		decode(v->in, len, k, 0, &r);
		snprintf(how, sizeof(how), "split at %zu", k);
		expect_decoded(v, &r, how);
	}
	/* No proper prefix of a valid body may look finished. */
	if (v->status == 0) {
		size_t used = v->used ? v->used : len;
		for (size_t k = 0; k < used; k++) {
			decode(v->in, k, k, 0, &r);
			if (r.status != 0 || r.done)
				fail_msg("prefix of %zu bytes: status %d done %d", k, r.status,
				         r.done);
		}
	}
	sbuf_free(&r.body);
}

/* Extension and trailer sizes are bounded. */
static void test_chunked_limits(void **state)
{
	struct sbuf s = { 0 };
	struct decoded r = { 0 };

	(void)state;
	sbuf_add(&s, "1;", 2);
	for (int i = 1; i < HTTP_MAX_CHUNK_EXT; i++)
		sbuf_add(&s, "e", 1);
	sbuf_add(&s, "\r\nx\r\n0\r\n\r\n", 10);
	decode(s.p, s.len, s.len, 0, &r);
	assert_int_equal(r.status, 0);
	assert_true(r.done);

	s.len = 0;
	sbuf_add(&s, "1;", 2);
	for (int i = 0; i < HTTP_MAX_CHUNK_EXT; i++)
		sbuf_add(&s, "e", 1);
	sbuf_add(&s, "\r\nx\r\n0\r\n\r\n", 10);
	decode(s.p, s.len, s.len, 0, &r);
	assert_int_equal(r.status, 400);

	s.len = 0;
	sbuf_add(&s, "0\r\n", 3);
	while (s.len < 3 + HTTP_MAX_HEAD + 16)
		sbuf_add(&s, "X-Trailer: 0123456789\r\n", 23);
	sbuf_add(&s, "\r\n", 2);
	decode(s.p, s.len, 1, 1, &r);
	assert_int_equal(r.status, 431);
	sbuf_free(&s);
	sbuf_free(&r.body);
}

/* A huge size is framing, not an error: the decoder hands out what comes
 * and leaves the limit to the caller (conn.c answers 413). */
static void test_chunked_huge(void **state)
{
	static const char in[] = "FFFFFFFFFFFFFFFF\r\nabc";
	struct http_chunked d = { 0 };
	const char *data;
	size_t n, off = 0, len = sizeof(in) - 1;

	(void)state;
	while (off < len) {
		long rc = http_chunked_step(&d, guard_place(&g, in + off, len - off), len - off,
		                            &data, &n);
		assert_true(rc > 0);
		off += (size_t)rc;
	}
	assert_int_equal(d.state, HTTP_CHUNK_DATA);
	assert_true(d.remain == UINT64_MAX - 3);
}

/* The tripwire itself: reading one byte past a placed input must kill the
 * reader, or every "no over-read" above would prove nothing. The read runs
 * in a child, with the default SIGSEGV action (no cmocka or sanitizer
 * handler in the way). */
static void test_guard_page_trips(void **state)
{
	const volatile char *in = guard_place(&g, "GET", 3);
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(in[2], 'T');
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		(void)in[3];
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

static int setup(void **state)
{
	(void)state;
	guard_init(&g, ROOM);
	return 0;
}

static enum http_simd_level pass_level; /* the level main() runs the tests at */

static int setup_level(void **state)
{
	http_parse_set_simd(pass_level);
	return setup(state);
}

static int teardown(void **state)
{
	(void)state;
	guard_free(&g);
	return 0;
}

static void add_tests(struct unit_list *l)
{
	unit_add(l, "the guard page trips on an over-read", test_guard_page_trips, NULL);
	unit_add(l, "x86-64 builds take the SIMD path by default", test_simd_default, NULL);
	UNIT_ADD_TABLE(l, valid, test_valid);
	UNIT_ADD_TABLE(l, bad, test_bad);
	unit_add(l, "URI length limit (414)", test_limits_uri, NULL);
	unit_add(l, "field count limit (431)", test_limits_fields, NULL);
	unit_add(l, "head size limit (431)", test_limits_head, NULL);
	unit_add(l, "http_head_end resumes a scan", test_head_end, NULL);
	unit_add(l, "long names: an odd byte at every offset", test_long_names, NULL);
	unit_add(l, "long targets: an odd byte at every offset", test_long_targets, NULL);
	unit_add(l, "long values: an odd byte at every offset", test_long_values, NULL);
	unit_add(l, "http_head_end: the blank line at every offset", test_head_end_offsets, NULL);
	unit_add(l, "SIMD and scalar scanners agree on every mutation", test_scanners_agree, NULL);
	unit_add(l, "SIMD and scalar scanners agree on random heads", test_scanners_agree_random,
	         NULL);
	unit_add(l, "method names and reason phrases", test_names, NULL);
	UNIT_ADD_TABLE(l, chunks, test_chunked);
	unit_add(l, "chunked: extension and trailer limits", test_chunked_limits, NULL);
	unit_add(l, "chunked: a 64-bit size is framing, not an error", test_chunked_huge, NULL);
}

/* Every test runs with the scalar loops alone, then with each fast path the
 * build and the CPU have (SSE2, AVX2) in front of them; a level that cannot
 * run here says so. */
int main(void)
{
	struct unit_list l = { 0 };
	int failed;

	simd_default = http_parse_set_simd(HTTP_SIMD_NONE);
	failed = 0;
	for (pass_level = HTTP_SIMD_NONE; pass_level <= HTTP_SIMD_AVX2; pass_level++) {
		char group[64];
		if (pass_level > http_simd_best()) {
			printf("test_http: NOT RUN: the %s fast paths (%s)\n",
			       http_simd_name(pass_level),
			       HTTP_AVX2 && pass_level == HTTP_SIMD_AVX2 ? "this CPU has no AVX2"
			                                                 : "not in this build");
			continue;
		}
		snprintf(group, sizeof(group), "http parser, %s", http_simd_name(pass_level));
		printf("test_http: %s\n", group);
		add_tests(&l);
		failed += unit_run(&l, group, setup_level, teardown);
	}
	return failed != 0;
}
