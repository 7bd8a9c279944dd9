/*
 * fuzz_chunked.c - libFuzzer target for the incremental chunked decoder.
 *
 * What it checks: http_chunked_step() decodes the same body, stops at the
 * same byte and fails with the same status however its input is split, and
 * never reads outside the piece it is given (each piece is copied to a heap
 * block of exactly its size). Input layout: byte 0 says how many of the next
 * bytes are piece sizes (0-15, used in turn; none: the whole input at once);
 * the rest is the chunked stream.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

struct result {
	long err;        /* 0 or -status */
	size_t consumed; /* bytes used when it finished or failed */
	bool done;
	size_t body_len;
	char body[8192];
};

/* Decodes s[0..len) in pieces of the sizes in cuts[] (ncuts == 0: whole). */
static void decode(const unsigned char *s, size_t len, const unsigned char *cuts, size_t ncuts,
                   struct result *r)
{
	struct http_chunked d = { 0 };
	size_t off = 0;

	memset(r, 0, offsetof(struct result, body));
	for (size_t k = 0; off < len && d.state != HTTP_CHUNK_DONE; k++) {
		size_t n = ncuts ? (size_t)cuts[k % ncuts] + 1 : len;
		char *piece = malloc(n = n < len - off ? n : len - off);
		size_t used = 0;
		memcpy(piece, s + off, n);
		while (used < n && d.state != HTTP_CHUNK_DONE && r->err == 0) {
			const char *p;
			size_t plen;
			long step = http_chunked_step(&d, piece + used, n - used, &p, &plen);
			if (step < 0) {
				r->err = step;
				break;
			}
			if (plen > 0 && (p < piece + used || p + plen > piece + n))
				abort(); /* the data view must lie inside the piece */
			if (plen > 0 && r->body_len + plen <= sizeof(r->body))
				memcpy(r->body + r->body_len, p, plen);
			r->body_len += plen;
			used += (size_t)step;
		}
		free(piece);
		off += used;
		if (r->err != 0)
			break;
	}
	r->consumed = off;
	r->done = d.state == HTTP_CHUNK_DONE;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static struct result whole, split;
	size_t ncuts = size ? data[0] % 16 : 0;

	if (size < 1 + ncuts)
		return 0;
	decode(data + 1 + ncuts, size - 1 - ncuts, NULL, 0, &whole);
	decode(data + 1 + ncuts, size - 1 - ncuts, data + 1, ncuts, &split);
	if (whole.err != split.err || whole.done != split.done || whole.body_len != split.body_len)
		abort();
	if (whole.err == 0 && whole.consumed != split.consumed)
		abort();
	if (whole.body_len <= sizeof(whole.body) &&
	    memcmp(whole.body, split.body, whole.body_len) != 0)
		abort();
	return 0;
}
