/*
 * fuzz_router.c - libFuzzer target for percent-decoding, routing and query
 * strings, over the server's real route table (handlers_init()).
 *
 * What it checks: router_decode() never grows its input nor writes past it,
 * router_match() answers 0, -404 or -405 with a coherent match (the parameter
 * lies inside the decoded path, a 405 names other methods), and
 * router_query_get() only points inside the query. Input layout: byte 0 picks
 * the method, the rest is a target "path[?query]".
 */
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "router.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static struct server srv;

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	enum http_method method = size ? (enum http_method)(data[0] % HTTP_METHOD_COUNT) : 0;
	size_t len = size ? size - 1 : 0, plen;
	char *in = malloc(len ? len : 1), *out, *q;
	struct router_match m;
	struct http_str query = { NULL, 0 }, v;
	long n;

	if (srv.router == NULL && handlers_init(&srv) != 0)
		abort();
	memcpy(in, data + (size > 0), len);
	q = memchr(in, '?', len);
	plen = q ? (size_t)(q - in) : len;
	out = malloc(plen ? plen : 1); /* exactly the room router_decode may use */
	if (q != NULL)
		query = (struct http_str){ q + 1, len - plen - 1 };
	if ((n = router_decode(in, plen, out)) >= 0) {
		int rc = router_match(srv.router, method, out, (size_t)n, &m);
		if (n > (long)plen || (rc != 0 && rc != -404 && rc != -405))
			abort();
		if (rc == 0 &&
		    (m.route < 0 ||
		     (m.param.len > 0 && (m.param.p < out || m.param.p + m.param.len > out + n))))
			abort();
		if (rc == -405 && (m.allow == 0 || (m.allow & ROUTER_METHOD(method))))
			abort();
	} else if (n != -400) {
		abort();
	}
	const char *names[] = { "a", "ms", "name", "" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (router_query_get(query, names[i], &v) &&
		    (v.p < query.p || v.p + v.len > query.p + query.len))
			abort();
	free(in);
	free(out);
	return 0;
}
