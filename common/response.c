/*
 * response.c - response heads and the once-a-second Date cache.
 */
#include "response.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), formatted at most once a
 * second per thread. */
static const char *http_date(void)
{
	static _Thread_local time_t cached = -1;
	static _Thread_local char text[32];
	time_t now = time(NULL);

	if (now != cached) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		cached = now;
	}
	return text;
}

size_t response_head_write(char *dst, const struct response_head *h)
{
	char *p = dst;

	p = put(p, "HTTP/1.1 ");
	p = put_u64(p, (uint64_t)h->status);
	*p++ = ' ';
	p = put(p, http_status_reason(h->status));
	p = put(p, "\r\nServer: " SERVER_NAME "\r\nDate: ");
	p = put(p, http_date());
	if (h->content_type != NULL) {
		p = put(p, "\r\nContent-Type: ");
		p = put(p, h->content_type);
	}
	p = put(p, "\r\nContent-Length: ");
	p = put_u64(p, h->content_length);
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
