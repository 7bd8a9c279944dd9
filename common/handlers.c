/*
 * handlers.c - the routes of the server contract (see handlers.h).
 */
#include "handlers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conditional.h"
#include "platform.h"
#include "response.h"
#include "router.h"
#include "server.h"
#include "static_files.h"

enum route {
	ROUTE_PLAINTEXT,
	ROUTE_JSON,
	ROUTE_STATIC,
	ROUTE_ECHO,
	ROUTE_DELAY,
	ROUTE_STATS,
	ROUTE_SERVER_OPTIONS, /* "OPTIONS *": what the server as a whole takes */
	/* Static answers other than the whole file, decided at head time: */
	ROUTE_NOT_MODIFIED, /* the client has this version already: 304 */
	ROUTE_RANGE,        /* one range of the file: 206 */
	ROUTE_NO_RANGE,     /* a range that starts past the end: 416 */
};

#define GET_HEAD (ROUTER_METHOD(HTTP_GET) | ROUTER_METHOD(HTTP_HEAD))

/* On every whole file and range: ranges of it may be asked for (RFC 9110 14.3). */
#define ACCEPT_RANGES "Accept-Ranges: bytes\r\n"

static const struct {
	const char *pattern;
	unsigned methods;
	enum route route;
} routes[] = {
	{ "/plaintext", GET_HEAD, ROUTE_PLAINTEXT },
	{ "/json", GET_HEAD, ROUTE_JSON },
	{ "/static/*", GET_HEAD, ROUTE_STATIC },
	{ "/echo", ROUTER_METHOD(HTTP_POST), ROUTE_ECHO },
	{ "/delay/:ms", GET_HEAD, ROUTE_DELAY },
	{ "/stats", GET_HEAD, ROUTE_STATS },
};

int handlers_init(struct server *srv)
{
	if ((srv->router = router_new()) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int rc = router_add(srv->router, routes[i].methods, routes[i].pattern,
		                    (int)routes[i].route);
		if (rc != 0)
			return rc;
	}
	return 0;
}

void handlers_cleanup(struct server *srv)
{
	router_free(srv->router);
	srv->router = NULL;
}

/* "/delay/<ms>": decimal milliseconds, 0..DELAY_MAX_MS. */
static int parse_delay(struct http_str s, uint16_t *ms)
{
	uint32_t v = 0;

	if (s.len == 0 || s.len > 5)
		return 400;
	for (size_t i = 0; i < s.len; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return 400;
		v = v * 10 + (uint32_t)(s.p[i] - '0');
	}
	if (v > DELAY_MAX_MS)
		return 400;
	*ms = (uint16_t)v;
	return 0;
}

/* A file served from the thread's cache has no descriptor (req.file_fd is
 * -1) but bytes, which stay valid until the thread's next static_open(). The
 * cache is asked only for a request without a body, which conn.c answers as
 * soon as its head is parsed: respond_static() comes first. */
static _Thread_local struct {
	const struct conn *c;
	const char *data;
} cached;

/* Opens the file, then judges the request's preconditions and, for a GET,
 * its Range against it (conditional.h): the answer is the file, one range
 * of it, or a 304, 412 or 416 without it. */
static int begin_static(struct conn *c, const struct http_request *r, struct http_str name)
{
	int64_t now = (int64_t)time(NULL);
	struct byte_range range = { 0, 0 };
	struct validator v;
	struct static_file f;
	int rc = static_open(c->srv, name.p, name.len, r->body == HTTP_BODY_NONE, &f);

	if (rc != 0)
		return rc;
	cached.c = f.data != NULL ? c : NULL;
	cached.data = f.data;
	v = (struct validator){ f.mtime_ns, f.size };
	c->req.file_size = f.size;
	c->req.file_mtime_ns = f.mtime_ns;
	rc = conditional_check(r, &v, now);
	if (rc == 0 && r->method == HTTP_GET)
		rc = range_check(r, &v, now, &range);
	if (rc == 304 || rc == 412 || rc == 416) {
		if (f.fd >= 0)
			platform_close_file(f.fd); /* no byte of it goes out */
		c->req.route = rc == 304 ? ROUTE_NOT_MODIFIED : ROUTE_NO_RANGE;
		return rc == 412 ? 412 : 0;
	}
	if (rc == 206)
		c->req.route = ROUTE_RANGE;
	c->req.file_fd = f.fd;
	c->req.type = (uint8_t)f.type;
	c->req.range_first = rc == 206 ? range.first : 0;
	c->req.range_len = rc == 206 ? range.len : f.size;
	return 0;
}

int handlers_begin(struct conn *c, const struct http_request *r)
{
	char decoded[HTTP_MAX_URI];
	const char *path = r->path.p;
	long len = (long)r->path.len;
	struct router_match m;
	int rc;

	if (r->target.p[0] == '*') { /* the parser allows it for OPTIONS only */
		c->req.route = ROUTE_SERVER_OPTIONS;
		return 0;
	}
	if (memchr(path, '%', (size_t)len) != NULL) {
		if ((len = router_decode(path, (size_t)len, decoded)) < 0)
			return 400;
		path = decoded;
	}
	rc = router_match(c->srv->router, r->method, path, (size_t)len, &m);
	if (rc == -405)
		c->req.allow = (uint16_t)m.allow;
	if (rc != 0)
		return -rc;
	c->req.route = (uint8_t)m.route;
	switch (m.route) {
	case ROUTE_DELAY:
		return parse_delay(m.param, &c->req.delay_ms);
	case ROUTE_STATIC:
		return begin_static(c, r, m.param);
	case ROUTE_ECHO:
		c->req.keep_body = true;
		return 0;
	default:
		return 0;
	}
}

static void respond_stats(struct conn *c)
{
	const struct server_stats *s = &c->srv->stats;
	char body[1024];
	int n = snprintf(body, sizeof(body),
	                 "{\"backend\":\"%s\",\"workers\":%d,\"uptime_ms\":%" PRId64 ","
	                 "\"connections\":{\"accepted\":%" PRIu64 ",\"active\":%" PRId64
	                 ",\"rejected\":%" PRIu64 ",\"timeouts\":%" PRIu64 "},"
	                 "\"requests\":%" PRIu64 ",\"responses\":{\"1xx\":%" PRIu64
	                 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64 ",\"4xx\":%" PRIu64
	                 ",\"5xx\":%" PRIu64 "},\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
	                 "}\n",
	                 c->srv->backend, c->srv->cfg.workers, c->now - c->srv->started_ms,
	                 (uint64_t)s->accepted, (int64_t)s->active, (uint64_t)s->rejected,
	                 (uint64_t)s->timeouts, (uint64_t)s->requests, (uint64_t)s->status[1],
	                 (uint64_t)s->status[2], (uint64_t)s->status[3], (uint64_t)s->status[4],
	                 (uint64_t)s->status[5], (uint64_t)s->bytes_in, (uint64_t)s->bytes_out);
	conn_respond(c, 200, "application/json", NULL, body, (size_t)n);
}

/* RFC 9110 9.3.7: a 200 naming, in Allow, every method some route takes. */
static void respond_server_options(struct conn *c)
{
	unsigned methods = ROUTER_METHOD(HTTP_OPTIONS);
	char allow[128];

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		methods |= routes[i].methods;
	response_allow_header(allow, sizeof(allow), methods);
	conn_respond(c, 200, NULL, allow, "", 0);
}

/* The file (200), a range of it (206), or a 304: all carry its validators.
 * A 416 says how long the file is instead. */
static void respond_static(struct conn *c)
{
	static const char no_range[] = "416 Range Not Satisfiable\n";
	struct validator v = { c->req.file_mtime_ns, c->req.file_size };
	struct byte_range range = { c->req.range_first, c->req.range_len };
	char fields[sizeof(ACCEPT_RANGES) + VALIDATOR_FIELDS_MAX + CONTENT_RANGE_MAX];
	size_t n = sizeof(ACCEPT_RANGES) - 1;
	const char *type;
	int status;

	switch ((enum route)c->req.route) {
	case ROUTE_NOT_MODIFIED:
		validator_fields(fields, &v, 304, (int64_t)time(NULL));
		conn_respond(c, 304, NULL, fields, "", 0);
		return;
	case ROUTE_NO_RANGE:
		content_range_field(fields, NULL, c->req.file_size);
		conn_respond(c, 416, "text/plain; charset=utf-8", fields, no_range,
		             sizeof(no_range) - 1);
		return;
	default: /* ROUTE_STATIC, ROUTE_RANGE */
		memcpy(fields, ACCEPT_RANGES, n);
		n += validator_fields(fields + n, &v, 200, (int64_t)time(NULL));
		if (c->req.route == ROUTE_RANGE)
			content_range_field(fields + n, &range, c->req.file_size);
		status = c->req.route == ROUTE_RANGE ? 206 : 200;
		type = static_type_name(c->req.type);
		if (c->req.file_fd >= 0) {
			conn_respond_file(c, status, type, fields, c->req.file_fd, range.first,
			                  range.len);
			return;
		}
		if (cached.c != c) { /* cannot happen: see `cached` */
			fputs("handlers.c: a cached file's bytes outlived their request\n", stderr);
			abort();
		}
		conn_respond(c, status, type, fields, cached.data + range.first, (size_t)range.len);
		cached.c = NULL;
	}
}

void handlers_finish(struct conn *c)
{
	static const char hello[] = "Hello, World!";
	static const char json[] = "{\"message\":\"Hello, World!\"}";

	switch ((enum route)c->req.route) {
	case ROUTE_PLAINTEXT:
		conn_respond(c, 200, "text/plain", NULL, hello, sizeof(hello) - 1);
		break;
	case ROUTE_JSON:
		conn_respond(c, 200, "application/json", NULL, json, sizeof(json) - 1);
		break;
	case ROUTE_STATIC:
	case ROUTE_NOT_MODIFIED:
	case ROUTE_RANGE:
	case ROUTE_NO_RANGE:
		respond_static(c);
		break;
	case ROUTE_ECHO:
		conn_respond(c, 200, "application/octet-stream", NULL, c->body, c->body_len);
		break;
	case ROUTE_DELAY:
		conn_delay(c, c->req.delay_ms);
		break;
	case ROUTE_STATS:
		respond_stats(c);
		break;
	case ROUTE_SERVER_OPTIONS:
		respond_server_options(c);
		break;
	}
}

void handlers_delayed(struct conn *c)
{
	char body[32];
	int n = snprintf(body, sizeof(body), "delayed %u ms\n", (unsigned)c->req.delay_ms);

	conn_respond(c, 200, "text/plain", NULL, body, (size_t)n);
}
