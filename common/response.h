/*
 * response.h - writing response heads.
 *
 * What it teaches: a response head is a handful of memcpy()s. The Date field
 * changes once a second, so each thread formats it once a second and reuses
 * the text (RFC 9110 6.6.1 asks for it on every response).
 */
#ifndef RESPONSE_H
#define RESPONSE_H

#include <stddef.h>
#include <stdint.h>

#define SERVER_NAME    "iomodels"
#define SERVER_VERSION "1.0.0"

/* Upper bound of a head written by response_head_write, not counting the
 * content type and extra lines. */
enum { RESPONSE_HEAD_MAX = 256, RESPONSE_CONTINUE_LEN = 25 };

enum response_connection {
	RESPONSE_DEFAULT,    /* HTTP/1.1 keep-alive: no Connection field needed */
	RESPONSE_KEEP_ALIVE, /* HTTP/1.0 keep-alive: say so, or the client closes */
	RESPONSE_CLOSE,      /* this is the last response on the connection */
};

struct response_head {
	int status;
	const char *content_type;
	uint64_t content_length;
	enum response_connection connection;
	const char *extra; /* more header lines, each ending in CRLF, or NULL */
};

/* Writes the head (status line, Server, Date, Content-Type, Content-Length
 * (not for a 304), Connection, extra, blank line) to dst, which has room for
 * RESPONSE_HEAD_MAX + the lengths of content_type and extra. Returns the
 * bytes written. */
size_t response_head_write(char *dst, const struct response_head *h);

/* Writes "HTTP/1.1 100 Continue" and its blank line; returns its length. */
size_t response_continue(char *dst);

/* Writes "Allow: GET, HEAD\r\n" for a method mask (1u << enum http_method). */
void response_allow_header(char *dst, size_t cap, unsigned methods);

#endif
