/*
 * response.c - response heads and their once-a-second Server and Date block.
 */
#include "response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conditional.h"
#include "http.h"

/* Appends a NUL-terminated string; returns the new end. */
static char *put(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* A status code is always three digits (RFC 9110 15). */
static char *put_status(char *p, int status)
{
	p[0] = (char)('0' + status / 100 % 10);
	p[1] = (char)('0' + status / 10 % 10);
	p[2] = (char)('0' + status % 10);
	return p + 3;
}

/* The middle of every head, the same for a whole second:
 * "\r\nServer: iomodels\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT" (the Date is
 * an IMF-fixdate). RFC 9110 6.6.1 asks for a Date on every response, but
 * nothing asks to format it every time: each thread rebuilds this block when
 * the second changes, and every response of that second copies it whole,
 * one copy of a known length instead of a strlen() and a copy per field. */
struct head_block {
	time_t second;
	size_t len;
	char text[64];
};

static const struct head_block *server_and_date(void)
{
	static _Thread_local struct head_block b = { .second = -1 };
	time_t now = time(NULL);

	if (now != b.second) {
		b.len = (size_t)(put(b.text, "\r\nServer: " SERVER_NAME "\r\nDate: ") - b.text);
		http_date_format(b.text + b.len, (int64_t)now);
		b.len += HTTP_DATE_LEN;
		b.second = now;
	}
	return &b;
}

size_t response_head_write(char *dst, const struct response_head *h)
{
	const struct head_block *mid = server_and_date();
	char *p = dst;

	p = put(p, "HTTP/1.1 ");
	p = put_status(p, h->status);
	*p++ = ' ';
	p = put(p, http_status_reason(h->status));
	memcpy(p, mid->text, mid->len);
	p += mid->len;
	if (h->content_type != NULL) {
		p = put(p, "\r\nContent-Type: ");
		p = put(p, h->content_type);
	}
	if (h->status != 304) { /* a 304 has no content, and need not say how long it was */
		p = put(p, "\r\nContent-Length: ");
		p = put_u64(p, h->content_length);
	}
	if (h->connection == RESPONSE_CLOSE)
		p = put(p, "\r\nConnection: close");
	else if (h->connection == RESPONSE_KEEP_ALIVE)
		p = put(p, "\r\nConnection: keep-alive");
	p = put(p, "\r\n");
	if (h->extra != NULL)
		p = put(p, h->extra);
	p = put(p, "\r\n");
	return (size_t)(p - dst);
}

size_t response_continue(char *dst)
{
	static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";

	memcpy(dst, line, sizeof(line) - 1);
	return sizeof(line) - 1;
}

void response_allow_header(char *dst, size_t cap, unsigned methods)
{
	size_t n = (size_t)snprintf(dst, cap, "Allow: ");

	for (int m = 0; m < HTTP_METHOD_COUNT && n < cap; m++)
		if (methods & (1u << m))
			n += (size_t)snprintf(dst + n, cap - n, "%s%s", n > 7 ? ", " : "",
			                      http_method_name((enum http_method)m));
	if (n < cap)
		snprintf(dst + n, cap - n, "\r\n");
}
