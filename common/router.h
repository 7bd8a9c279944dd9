/*
 * router.h - a radix-tree router over method + path.
 *
 * What it teaches: a compressed trie (radix tree) where each edge carries a
 * run of bytes, so matching a path costs one pass over its bytes. Patterns may
 * end a segment with a parameter (":name" matches one segment) or end with a
 * catch-all ("*" matches the rest). The router answers 404 and 405 (with the
 * Allow set) by itself, so handlers never see a path they did not ask for.
 *
 * Routes are added once at start-up (that allocates); matching never allocates.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include "http.h"

struct router;

/* What a match yields: the route id given to router_add, the text matched by
 * ":name" or "*" (empty if the pattern has none), and on 405 the methods the
 * path does allow, as a bit mask (1u << enum http_method). */
struct router_match {
	int route;
	struct http_str param;
	unsigned allow;
};

#define ROUTER_METHOD(m) (1u << (m))

/* Returns a new, empty router, or NULL when out of memory. */
struct router *router_new(void);

/* Adds `pattern` (starting with '/') for every method in `methods`, mapping
 * to `route` (>= 0). Returns 0, -EINVAL for a malformed pattern or a route
 * already present, or -ENOMEM. */
int router_add(struct router *r, unsigned methods, const char *pattern, int route);

/* Matches a decoded path. Returns 0 and fills *m, or -404 (no such path) or
 * -405 (path exists, method not allowed: m->allow says which are). */
int router_match(const struct router *r, enum http_method method, const char *path, size_t len,
                 struct router_match *m);

void router_free(struct router *r);

/* Percent-decodes `in` into `out` (room for `len` bytes: decoding never
 * grows). Returns the decoded length, or -400 for a bad escape or an encoded
 * NUL, which no file name or route may contain. */
long router_decode(const char *in, size_t len, char *out);

/* Finds `name` in a query string ("a=1&b=2"); sets *value (still encoded)
 * and returns true if present. */
bool router_query_get(struct http_str query, const char *name, struct http_str *value);

#endif
