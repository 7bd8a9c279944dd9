/*
 * router.c - radix-tree routing, percent-decoding and query strings.
 *
 * Each node owns the edge label that leads to it. Inserting a pattern walks
 * down while labels match, and splits a label where the new pattern leaves
 * it: "/plain" + "/pl" becomes "/pl" -> "ain". A ":param" or "*" is a child of
 * its own kind, tried only after the literal children fail, so literal routes
 * always win over parameters.
 */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct node {
	char *label;
	size_t label_len;
	struct node *child; /* first literal child */
	struct node *next;  /* next sibling */
	struct node *param; /* ":name": one segment */
	struct node *rest;  /* "*": everything after */
	unsigned methods;   /* methods with a route here */
	int route[HTTP_METHOD_COUNT];
};

struct router {
	struct node root;
};

static struct node *node_new(const char *label, size_t len)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->label = malloc(len + 1);
	if (n->label == NULL) {
		free(n);
		return NULL;
	}
	memcpy(n->label, label, len);
	n->label[len] = '\0';
	n->label_len = len;
	return n;
}

static void node_free(struct node *n)
{
	while (n != NULL) {
		struct node *next = n->next;
		node_free(n->child);
		node_free(n->param);
		node_free(n->rest);
		free(n->label);
		free(n);
		n = next;
	}
}

struct router *router_new(void)
{
	return calloc(1, sizeof(struct router));
}

void router_free(struct router *r)
{
	if (r == NULL)
		return;
	node_free(r->root.child);
	node_free(r->root.param);
	node_free(r->root.rest);
	free(r);
}

static size_t common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0;

	while (i < alen && i < blen && a[i] == b[i])
		i++;
	return i;
}

/* Splits n's label at k: n keeps label[0..k), a new child takes the rest
 * together with n's children and routes. */
static int node_split(struct node *n, size_t k)
{
	struct node *tail = node_new(n->label + k, n->label_len - k);

	if (tail == NULL)
		return -ENOMEM;
	tail->child = n->child;
	tail->param = n->param;
	tail->rest = n->rest;
	tail->methods = n->methods;
	memcpy(tail->route, n->route, sizeof(n->route));
	n->child = tail;
	n->param = n->rest = NULL;
	n->methods = 0;
	n->label_len = k;
	n->label[k] = '\0';
	return 0;
}

/* Descends (creating nodes) along the literal run s[0..len). */
static struct node *insert_literal(struct node *n, const char *s, size_t len)
{
	while (len > 0) {
		struct node *c;
		size_t k = 0;
		for (c = n->child; c != NULL; c = c->next)
			if ((k = common_prefix(c->label, c->label_len, s, len)) > 0)
				break;
		if (c == NULL) {
			if ((c = node_new(s, len)) == NULL)
				return NULL;
			c->next = n->child;
			n->child = c;
			return c;
		}
		if (k < c->label_len && node_split(c, k) != 0)
			return NULL;
		n = c;
		s += k;
		len -= k;
	}
	return n;
}

int router_add(struct router *r, unsigned methods, const char *pattern, int route)
{
	struct node *n = &r->root;
	const char *s = pattern;

	if (pattern[0] != '/' || route < 0 || methods == 0)
		return -EINVAL;
	while (*s != '\0') {
		size_t lit = strcspn(s, ":*");
		struct node **special;
		if ((n = insert_literal(n, s, lit)) == NULL)
			return -ENOMEM;
		s += lit;
		if (*s == '\0')
			break;
		special = *s == ':' ? &n->param : &n->rest;
		if (*s == '*' && s[1] != '\0')
			return -EINVAL; /* a catch-all must end the pattern */
		if (*special == NULL && (*special = node_new(s, 1)) == NULL)
			return -ENOMEM;
		n = *special;
		s += *s == ':' ? strcspn(s, "/") : 1;
	}
	if (n->methods & methods)
		return -EINVAL;
	for (int m = 0; m < HTTP_METHOD_COUNT; m++)
		if (methods & ROUTER_METHOD(m))
			n->route[m] = route;
	n->methods |= methods;
	return 0;
}

/* Finds the node for p[0..len), literal children first, then ":param", then
 * "*". Records what a parameter matched in *param. */
static const struct node *lookup(const struct node *n, const char *p, size_t len,
                                 struct http_str *param)
{
	const struct node *c, *hit;

	if (len == 0 && n->methods != 0)
		return n;
	/* Siblings never share a first byte (insert_literal() splits them), so
	 * that byte picks the one child worth a memcmp(). */
	for (c = n->child; c != NULL; c = c->next) {
		if (c->label_len <= len && c->label[0] == p[0] &&
		    memcmp(c->label, p, c->label_len) == 0 &&
		    (hit = lookup(c, p + c->label_len, len - c->label_len, param)) != NULL)
			return hit;
	}
	if (n->param != NULL && len > 0 && *p != '/') {
		const char *slash = memchr(p, '/', len);
		size_t seg = slash ? (size_t)(slash - p) : len;
		if ((hit = lookup(n->param, p + seg, len - seg, param)) != NULL) {
			if (param->p == NULL)
				*param = (struct http_str){ p, seg };
			return hit;
		}
	}
	if (n->rest != NULL && n->rest->methods != 0) {
		*param = (struct http_str){ p, len };
		return n->rest;
	}
	return NULL;
}

int router_match(const struct router *r, enum http_method method, const char *path, size_t len,
                 struct router_match *m)
{
	const struct node *n;

	m->param = (struct http_str){ NULL, 0 };
	m->allow = 0;
	m->route = -1;
	n = lookup(&r->root, path, len, &m->param);
	if (n == NULL)
		return -404;
	if (!(n->methods & ROUTER_METHOD(method))) {
		m->allow = n->methods;
		return -405;
	}
	m->route = n->route[method];
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

long router_decode(const char *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		int hi, lo;
		if (in[i] != '%') {
			out[o++] = in[i++];
			continue;
		}
		if (len - i < 3)
			return -400;
		hi = hex_digit(in[i + 1]);
		lo = hex_digit(in[i + 2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			return -400;
		out[o++] = (char)(hi * 16 + lo);
		i += 3;
	}
	return (long)o;
}

bool router_query_get(struct http_str query, const char *name, struct http_str *value)
{
	const char *p = query.p, *end = p ? p + query.len : p; /* "none" is {NULL, 0} */
	size_t nlen = strlen(name);

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) >= nlen && memcmp(p, name, nlen) == 0 &&
		    (p + nlen == stop || p[nlen] == '=')) {
			const char *v = p + nlen == stop ? stop : p + nlen + 1;
			*value = (struct http_str){ v, (size_t)(stop - v) };
			return true;
		}
		p = stop + (amp != NULL);
	}
	return false;
}
