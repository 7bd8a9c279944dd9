/*
 * fuzz_parse.c - libFuzzer target for the request-head parser.
 *
 * What it checks: http_parse_request() never reads outside the buffer it is
 * given (the input is copied to a heap block of exactly its size, so ASan
 * stops the first byte read past the end), and what it returns is coherent:
 * a complete head ends where http_head_end() says it does, every view points
 * inside the buffer, and a strict prefix of a complete head is never itself
 * complete. http_parse_head(), which conn.c calls on a head it has found
 * whole, must give the same answer on that head, and refuse any input that
 * holds no blank line. Needs clang with -fsanitize=fuzzer,address,undefined
 * (fuzz.mk).
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Is the view empty or inside buf[0..size)? */
static bool inside(struct http_str v, const char *buf, size_t size)
{
	return v.len == 0 || (v.p >= buf && v.p + v.len <= buf + size);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	struct http_request req;
	size_t end;
	int rc, head;

	memcpy(buf, data, size);
	end = http_head_end(buf, size, 0);
	head = http_parse_head(buf, end ? end : size, &req);
	rc = http_parse_request(buf, size, &req);
	if (end ? head != rc : head >= 0)
		abort();
	if (rc > 0) {
		if ((size_t)rc > size || end != (size_t)rc)
			abort();
		if (!inside(req.target, buf, size) || !inside(req.path, buf, size) ||
		    !inside(req.query, buf, size) || !inside(req.host, buf, size) ||
		    req.nheaders > HTTP_MAX_HEADERS || (size_t)rc > HTTP_MAX_HEAD)
			abort();
		for (size_t i = 0; i < req.nheaders; i++)
			if (!inside(req.headers[i].name, buf, size) ||
			    !inside(req.headers[i].value, buf, size))
				abort();
		if ((req.body == HTTP_BODY_LENGTH) != (req.content_length > 0))
			abort();
		if (http_parse_request(buf, (size_t)rc - 1, &req) > 0)
			abort(); /* a head cannot be complete before its blank line */
	} else if (rc < -505 || (rc < 0 && rc > -400)) {
		abort(); /* an error is always minus a 4xx or 5xx status */
	}
	free(buf);
	return 0;
}
