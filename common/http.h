/*
 * http.h - the HTTP/1.1 vocabulary and the request parser.
 *
 * What it teaches: a stateless, zero-copy, allocation-free parser in the
 * style of picohttpparser. The caller owns the bytes; the parser only points
 * into them. Every call parses from the start of the buffer, so the caller
 * asks again when more bytes arrive (conn.c first checks cheaply whether the
 * head can be complete at all, so a trickled head costs O(n), not O(n^2)).
 *
 * Return convention shared by every parse function here:
 *   > 0   bytes consumed (the request head is complete);
 *   0     incomplete: call again with more bytes;
 *   < 0   minus the HTTP status the error calls for (-400, -414, -431, ...),
 *         so an error already is a response.
 *
 * Standards: RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 message syntax).
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits. Each is a named constant so SECURITY.md and the tests can cite it. */
enum {
	HTTP_MAX_URI = 8192,       /* request-target bytes; longer -> 414 */
	HTTP_MAX_HEAD = 16384,     /* request line + header block; longer -> 431 */
	HTTP_MAX_HEADERS = 64,     /* header fields per request; more -> 431 */
	HTTP_MAX_CHUNK_EXT = 1024, /* bytes of chunk extensions per chunk line */
	HTTP_MAX_BODY = 1 << 20,   /* request body bytes; more -> 413 */
};

/* One table yields the method enum and the method names. */
#define HTTP_METHOD_MAP(XX)    \
	XX(GET, "GET")         \
	XX(HEAD, "HEAD")       \
	XX(POST, "POST")       \
	XX(PUT, "PUT")         \
	XX(DELETE, "DELETE")   \
	XX(OPTIONS, "OPTIONS") \
	XX(PATCH, "PATCH")     \
	XX(TRACE, "TRACE")     \
	XX(CONNECT, "CONNECT")

enum http_method {
#define XX(name, str) HTTP_##name,
	HTTP_METHOD_MAP(XX)
#undef XX
	        HTTP_METHOD_COUNT
};

/* Status codes this server can send, with their reason phrases (RFC 9110 15). */
#define HTTP_STATUS_MAP(XX)                                           \
	XX(100, CONTINUE, "Continue")                                 \
	XX(200, OK, "OK")                                             \
	XX(204, NO_CONTENT, "No Content")                             \
	XX(206, PARTIAL_CONTENT, "Partial Content")                   \
	XX(304, NOT_MODIFIED, "Not Modified")                         \
	XX(400, BAD_REQUEST, "Bad Request")                           \
	XX(403, FORBIDDEN, "Forbidden")                               \
	XX(404, NOT_FOUND, "Not Found")                               \
	XX(405, METHOD_NOT_ALLOWED, "Method Not Allowed")             \
	XX(408, REQUEST_TIMEOUT, "Request Timeout")                   \
	XX(411, LENGTH_REQUIRED, "Length Required")                   \
	XX(412, PRECONDITION_FAILED, "Precondition Failed")           \
	XX(413, CONTENT_TOO_LARGE, "Content Too Large")               \
	XX(414, URI_TOO_LONG, "URI Too Long")                         \
	XX(416, RANGE_NOT_SATISFIABLE, "Range Not Satisfiable")       \
	XX(417, EXPECTATION_FAILED, "Expectation Failed")             \
	XX(431, HEADERS_TOO_LARGE, "Request Header Fields Too Large") \
	XX(500, INTERNAL_ERROR, "Internal Server Error")              \
	XX(501, NOT_IMPLEMENTED, "Not Implemented")                   \
	XX(503, SERVICE_UNAVAILABLE, "Service Unavailable")           \
	XX(505, VERSION_NOT_SUPPORTED, "HTTP Version Not Supported")

enum http_status {
#define XX(code, name, reason) HTTP_STATUS_##name = code,
	HTTP_STATUS_MAP(XX)
#undef XX
};

/* A (pointer, length) view into the caller's buffer; never NUL-terminated. */
struct http_str {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_str name;
	struct http_str value;
};

/* Body framing decided from the head (RFC 9112 6.3). */
enum http_body {
	HTTP_BODY_NONE,
	HTTP_BODY_LENGTH,  /* Content-Length: content_length bytes */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

/* Everything the parser learns about one request. Strings point into the
 * buffer given to http_parse_request and live as long as it does. */
struct http_request {
	enum http_method method;
	int minor;              /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	struct http_str target; /* as sent: origin-form or absolute-form */
	struct http_str path;   /* the path part, still percent-encoded */
	struct http_str query;  /* after '?', without it; len 0 if none */
	struct http_str host;   /* Host field, or the authority of an absolute-form target */
	enum http_body body;
	uint64_t content_length;
	bool keep_alive;      /* after version defaults and Connection tokens */
	bool expect_continue; /* Expect: 100-continue */
	size_t nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
};

/* Parses a request head from buf[0..len).
 * Returns bytes consumed, 0 if incomplete, or -status (see file comment).
 * Checks everything RFC 9112 asks of a server before it may act on a head:
 * method token (unknown -> 501), target form (400; too long -> 414),
 * version (505), header syntax (400), count and size (431), Host (400),
 * Content-Length / Transfer-Encoding framing (400, 501), Expect (417).
 * Leading empty lines are skipped, and a bare LF ends a line (RFC 9112 2.2). */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* http_parse_request() for a caller that has already found the head whole:
 * buf[0..len) must hold the blank line that ends it, as when len is what
 * http_head_end() returned. The same checks and returns, without scanning
 * for the blank line a second time (a head without one gets -400). */
int http_parse_head(const char *buf, size_t len, struct http_request *req);

/* Cheap pre-check: the offset just past the blank line that ends a head,
 * scanning buf[from..len), or 0 if there is none yet. Callers remember how
 * far they scanned and pass it back as `from` next time. */
size_t http_head_end(const char *buf, size_t len, size_t from);

/* Incremental chunked-body decoder (RFC 9112 7.1). Feed it bytes as they
 * arrive; it hands back chunk data as views into those bytes. */
enum http_chunked_state {
	HTTP_CHUNK_SIZE,
	HTTP_CHUNK_SIZE_WS, /* whitespace after the size: ';' or the line end must follow */
	HTTP_CHUNK_EXT,
	HTTP_CHUNK_SIZE_LF,
	HTTP_CHUNK_DATA,
	HTTP_CHUNK_DATA_CR,
	HTTP_CHUNK_DATA_LF,
	HTTP_CHUNK_TRAILER_START,
	HTTP_CHUNK_TRAILER_LINE,
	HTTP_CHUNK_TRAILER_LF,
	HTTP_CHUNK_END_LF,
	HTTP_CHUNK_DONE,
};

struct http_chunked {
	uint8_t state;    /* enum http_chunked_state */
	uint8_t ndigits;  /* hex digits seen in this size line */
	uint16_t ext_len; /* extension bytes on this size line */
	uint32_t trailer; /* trailer bytes so far */
	uint64_t remain;  /* data bytes left in the current chunk */
};

/* Consumes a prefix of buf[0..len). When that prefix ends in chunk data,
 * data and data_len view it (else *data_len is 0). Returns bytes consumed
 * (>= 0) or -status on malformed framing. Loop until it consumes everything
 * or d->state == HTTP_CHUNK_DONE. */
long http_chunked_step(struct http_chunked *d, const char *buf, size_t len, const char **data,
                       size_t *data_len);

/* Names and reason phrases from the tables above. */
const char *http_method_name(enum http_method m);
const char *http_status_reason(int status);

/* Case-insensitive comparison of a view with a NUL-terminated lowercase literal. */
bool http_str_ieq(struct http_str s, const char *lower);

#endif
