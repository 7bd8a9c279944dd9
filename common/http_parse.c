/*
 * http_parse.c - the HTTP/1.1 request-head parser and chunked decoder.
 *
 * What it teaches: how little a parser needs. No allocation, no copies, no
 * state between calls for the head: every function here walks a buffer the
 * caller owns and returns how far it got. Each grammar rule of RFC 9112 is one
 * small static helper that takes a cursor and returns the new cursor, or NULL
 * on a syntax error, so the top-level function reads like the grammar.
 *
 * Never reads past `end`: every helper checks before it dereferences. The unit
 * tests place each input so that it ends exactly at a guard page.
 *
 * The four loops that walk most of the bytes (token names, the target, field
 * values, the search for the blank line) first let a SIMD fast path skip 16
 * or 32 bytes at a time where the compiler targets x86-64 (http_simd.h), then
 * run their scalar loop, which finishes the last few bytes and stays the
 * definition of what is accepted. bench/parser_bench.c measures each level.
 */
#include "http.h"
#include "http_simd.h"

#include <string.h>

#define XX(name, str) [HTTP_##name] = str,
static const char *const method_names[HTTP_METHOD_COUNT] = { HTTP_METHOD_MAP(XX) };
#undef XX

const char *http_method_name(enum http_method m)
{
	return (unsigned)m < HTTP_METHOD_COUNT ? method_names[m] : "?";
}

const char *http_status_reason(int status)
{
	switch (status) {
#define XX(code, name, reason) \
	case code:             \
		return reason;
		HTTP_STATUS_MAP(XX)
#undef XX
	}
	return "Unknown";
}

/* tchar from RFC 9110 5.6.2: the characters allowed in tokens, as a table
 * indexed by byte (one load per byte instead of a search). */
#define T1(c) [(unsigned char)(c)] = 1
static const unsigned char tchar_table[256] = {
	T1('!'), T1('#'), T1('$'), T1('%'), T1('&'), T1('\''), T1('*'), T1('+'), T1('-'), T1('.'),
	T1('^'), T1('_'), T1('`'), T1('|'), T1('~'), T1('0'),  T1('1'), T1('2'), T1('3'), T1('4'),
	T1('5'), T1('6'), T1('7'), T1('8'), T1('9'), T1('A'),  T1('B'), T1('C'), T1('D'), T1('E'),
	T1('F'), T1('G'), T1('H'), T1('I'), T1('J'), T1('K'),  T1('L'), T1('M'), T1('N'), T1('O'),
	T1('P'), T1('Q'), T1('R'), T1('S'), T1('T'), T1('U'),  T1('V'), T1('W'), T1('X'), T1('Y'),
	T1('Z'), T1('a'), T1('b'), T1('c'), T1('d'), T1('e'),  T1('f'), T1('g'), T1('h'), T1('i'),
	T1('j'), T1('k'), T1('l'), T1('m'), T1('n'), T1('o'),  T1('p'), T1('q'), T1('r'), T1('s'),
	T1('t'), T1('u'), T1('v'), T1('w'), T1('x'), T1('y'),  T1('z'),
};
#undef T1

static bool is_tchar(unsigned char c)
{
	return tchar_table[c] != 0;
}

/* field-vchar / SP / HTAB / obs-text (RFC 9110 5.5): anything but CTLs. */
static bool is_value_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Which fast path the scans take; see http_parse_set_simd(). The level is
 * read at run time, at the cost of a well-predicted branch or two per scan,
 * so that one test binary proves every path and one benchmark times each.
 * SSE2 is the default even where the CPU has AVX2: most fields end within
 * 32 bytes, and bench/parser_bench.c found AVX2 faster only where a field is
 * long (a 2 KiB cookie), slower on the short request a load generator sends
 * (docs/performance-notes.md, "The parser's AVX2 path"). */
static enum http_simd_level simd_level = HTTP_SIMD ? HTTP_SIMD_SSE2 : HTTP_SIMD_NONE;

enum http_simd_level http_simd_best(void)
{
#if HTTP_AVX2
	if (__builtin_cpu_supports("avx2"))
		return HTTP_SIMD_AVX2;
#endif
	return HTTP_SIMD ? HTTP_SIMD_SSE2 : HTTP_SIMD_NONE;
}

const char *http_simd_name(enum http_simd_level level)
{
	return level == HTTP_SIMD_AVX2 ? "AVX2" : level == HTTP_SIMD_SSE2 ? "SSE2" : "scalar";
}

enum http_simd_level http_parse_set_simd(enum http_simd_level level)
{
	enum http_simd_level was = simd_level, best = http_simd_best();

	simd_level = level < best ? level : best;
	return was;
}

/* Moves p past what the fast path of the current level can skip in front
 * of a scan: `scan` names a pair of helpers in http_simd.h, simd_<scan>
 * (SSE2) and avx2_<scan>; the scan's scalar loop goes on from there. */
#if HTTP_AVX2
#define FAST_PATH(scan, p, end)                                     \
	((p) = simd_level == HTTP_SIMD_AVX2   ? avx2_##scan(p, end) \
	       : simd_level == HTTP_SIMD_SSE2 ? simd_##scan(p, end) \
	                                      : (p))
#elif HTTP_SIMD
#define FAST_PATH(scan, p, end) ((p) = simd_level == HTTP_SIMD_SSE2 ? simd_##scan(p, end) : (p))
#else
#define FAST_PATH(scan, p, end) ((void)0)
#endif

/* The scanning loops. Each returns the first byte at or after p that does
 * not belong to what it skips, or end. The SIMD step (if any) only skips
 * bytes the scalar loop would have skipped too. */
static const char *skip_tchars(const char *p, const char *end)
{
	FAST_PATH(skip_name, p, end);
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	return p;
}

/* request-target bytes: anything but SP, CTLs and DEL. */
static const char *skip_target_chars(const char *p, const char *end)
{
	FAST_PATH(skip_target, p, end);
	while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
		p++;
	return p;
}

static const char *skip_value_chars(const char *p, const char *end)
{
	FAST_PATH(skip_value, p, end);
	while (p < end && is_value_char((unsigned char)*p))
		p++;
	return p;
}

bool http_str_ieq(struct http_str s, const char *lower)
{
	size_t i;

	for (i = 0; i < s.len; i++)
		if (lower[i] == '\0' || (s.p[i] | 0x20) != lower[i])
			return false;
	return lower[i] == '\0';
}

/* Position just past a line ending (CRLF or a bare LF) at p, or NULL. */
static const char *eat_eol(const char *p, const char *end)
{
	if (p < end && *p == '\r')
		p++;
	if (p < end && *p == '\n')
		return p + 1;
	return NULL;
}

/* Skips the empty lines a client may send before a request (RFC 9112 2.2). */
static const char *skip_empty_lines(const char *p, const char *end)
{
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	return p;
}

size_t http_head_end(const char *buf, size_t len, size_t from)
{
	const char *end = buf + len;
	const char *p = skip_empty_lines(buf, end);

	if ((size_t)(p - buf) < from)
		p = buf + from;
	/* A fast path lands on the '\n' that starts the blank line, which the
	 * loop below then confirms at once, or on the last few bytes, which it
	 * searches. */
	FAST_PATH(find_blank_line, p, end);
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (p < end && *p == '\r')
			p++;
		if (p < end && *p == '\n')
			return (size_t)(p + 1 - buf);
		if (p >= end)
			break;
	}
	return 0;
}

static int parse_method(struct http_str tok, enum http_method *m)
{
	for (int i = 0; i < HTTP_METHOD_COUNT; i++) {
		if (strlen(method_names[i]) == tok.len &&
		    memcmp(method_names[i], tok.p, tok.len) == 0) {
			*m = (enum http_method)i;
			return 0;
		}
	}
	return -HTTP_STATUS_NOT_IMPLEMENTED;
}

/* Splits a target into host (absolute-form only), path and query. */
static int parse_target(struct http_request *req)
{
	const char *p = req->target.p, *end = p + req->target.len;

	if (*p == '*')
		return req->target.len == 1 && req->method == HTTP_OPTIONS ? 0 : -400;
	if (*p != '/') {
		/* absolute-form: scheme "://" authority [path-abempty] [ "?" query ] */
		struct http_str scheme = { p, 0 };
		while (p < end && *p != ':')
			p++;
		scheme.len = (size_t)(p - scheme.p);
		if (!http_str_ieq(scheme, "http") && !http_str_ieq(scheme, "https"))
			return -400;
		if (end - p < 3 || memcmp(p, "://", 3) != 0)
			return -400;
		p += 3;
		req->host.p = p;
		while (p < end && *p != '/' && *p != '?')
			p++;
		req->host.len = (size_t)(p - req->host.p);
		if (req->host.len == 0)
			return -400;
	}
	req->path.p = p;
	while (p < end && *p != '?')
		p++;
	req->path.len = (size_t)(p - req->path.p);
	if (p < end) {
		req->query.p = p + 1;
		req->query.len = (size_t)(end - p - 1);
	}
	if (memchr(req->target.p, '#', req->target.len) != NULL)
		return -400; /* a fragment is never sent to a server */
	return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF */
static const char *parse_request_line(const char *p, const char *end, struct http_request *req,
                                      int *err)
{
	struct http_str tok = { p, 0 };

	p = skip_tchars(p, end);
	tok.len = (size_t)(p - tok.p);
	if (p == end || *p != ' ' || tok.len == 0)
		return *err = -400, NULL;
	if ((*err = parse_method(tok, &req->method)) != 0)
		return NULL;
	req->target.p = ++p;
	p = skip_target_chars(p, end);
	req->target.len = (size_t)(p - req->target.p);
	if (req->target.len > HTTP_MAX_URI)
		return *err = -414, NULL;
	if (p == end || *p != ' ' || req->target.len == 0)
		return *err = -400, NULL;
	p++;
	if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
	    p[7] < '0' || p[7] > '9')
		return *err = -400, NULL;
	if (p[5] != '1')
		return *err = -505, NULL;
	req->minor = p[7] == '0' ? 0 : 1; /* 1.2+ is answered as 1.1 (RFC 9110 2.5) */
	if ((p = eat_eol(p + 8, end)) == NULL)
		return *err = -400, NULL;
	if ((*err = parse_target(req)) != 0)
		return NULL;
	return p;
}

/* field-line = field-name ":" OWS field-value OWS, then CRLF. */
static const char *parse_header_line(const char *p, const char *end, struct http_header *h,
                                     int *err)
{
	const char *v_end;

	h->name.p = p;
	p = skip_tchars(p, end);
	h->name.len = (size_t)(p - h->name.p);
	/* An empty name also rejects obs-fold; a space before ':' is an error
	 * by RFC 9112 5.1 (it once enabled request smuggling). */
	if (p == end || *p != ':' || h->name.len == 0)
		return *err = -400, NULL;
	p++;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	h->value.p = p;
	p = skip_value_chars(p, end);
	v_end = p;
	while (v_end > h->value.p && (v_end[-1] == ' ' || v_end[-1] == '\t'))
		v_end--;
	h->value.len = (size_t)(v_end - h->value.p);
	if ((p = eat_eol(p, end)) == NULL)
		return *err = -400, NULL;
	return p;
}

/* Calls fn on each comma-separated, OWS-trimmed element of a list value. */
static int for_each_token(struct http_str v, int (*fn)(struct http_str, void *), void *arg)
{
	const char *p = v.p, *end = v.p + v.len;

	while (p < end) {
		struct http_str t;
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		t.p = p;
		while (p < end && *p != ',')
			p++;
		t.len = (size_t)(p - t.p);
		while (t.len > 0 && (t.p[t.len - 1] == ' ' || t.p[t.len - 1] == '\t'))
			t.len--;
		if (t.len > 0) {
			int rc = fn(t, arg);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

struct framing {
	int hosts;
	bool have_length, chunked, other_coding, close, keep_alive;
	uint64_t length;
};

static int on_length(struct http_str t, void *arg)
{
	struct framing *f = arg;
	uint64_t n = 0;

	if (t.len == 0 || t.len > 19)
		return -400; /* 19 digits cannot overflow 64 bits */
	for (size_t i = 0; i < t.len; i++) {
		if (t.p[i] < '0' || t.p[i] > '9')
			return -400;
		n = n * 10 + (uint64_t)(t.p[i] - '0');
	}
	if (f->have_length && n != f->length)
		return -400; /* differing lengths: framing cannot be trusted */
	f->have_length = true;
	f->length = n;
	return 0;
}

static int on_coding(struct http_str t, void *arg)
{
	struct framing *f = arg;

	if (f->chunked)
		return -400; /* chunked must be the final coding, applied once */
	if (http_str_ieq(t, "chunked"))
		f->chunked = true;
	else
		f->other_coding = true;
	return 0;
}

static int on_connection(struct http_str t, void *arg)
{
	struct framing *f = arg;

	if (http_str_ieq(t, "close"))
		f->close = true;
	else if (http_str_ieq(t, "keep-alive"))
		f->keep_alive = true;
	return 0;
}

/* Applies the fields that decide host, framing and persistence. */
static int interpret_header(struct http_request *req, const struct http_header *h,
                            struct framing *f)
{
	struct http_str n = h->name;

	if (http_str_ieq(n, "host")) {
		f->hosts++;
		if (req->host.len == 0)
			req->host = h->value;
		return 0;
	}
	if (http_str_ieq(n, "content-length"))
		return h->value.len ? for_each_token(h->value, on_length, f) : -400;
	if (http_str_ieq(n, "transfer-encoding")) {
		int rc = for_each_token(h->value, on_coding, f);
		/* A field that names no coding frames nothing: count it as an
		 * unknown one (400) rather than fall back to Content-Length. */
		if (rc == 0 && !f->chunked && !f->other_coding)
			f->other_coding = true;
		return rc;
	}
	if (http_str_ieq(n, "connection"))
		return for_each_token(h->value, on_connection, f);
	if (http_str_ieq(n, "expect")) {
		if (!http_str_ieq(h->value, "100-continue"))
			return -417;
		req->expect_continue = true;
	}
	return 0;
}

/* RFC 9112 6.1-6.3 and 9.3: framing and persistence from the fields seen. */
static int finish_request(struct http_request *req, const struct framing *f)
{
	if (f->hosts > 1 || (req->minor == 1 && f->hosts == 0))
		return -400;
	if (f->chunked || f->other_coding) {
		if (req->minor == 0 || f->have_length)
			return -400;
		if (f->other_coding)
			return f->chunked ? -501 : -400;
		req->body = HTTP_BODY_CHUNKED;
	} else if (f->have_length && f->length > 0) {
		req->body = HTTP_BODY_LENGTH;
		req->content_length = f->length;
	}
	req->keep_alive = req->minor == 1 ? !f->close : (f->keep_alive && !f->close);
	if (req->minor == 0)
		req->expect_continue = false; /* 1.0 clients cannot expect 100 */
	return 0;
}

/* Limits for a head that is still incomplete: 414 if the request line is
 * already too long, 431 if the whole head is; else 0. */
static int incomplete_limits(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	if (lf == NULL && end - p > HTTP_MAX_URI + 32)
		return -414;
	if (end - p > HTTP_MAX_HEAD)
		return -431;
	return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	const char *end = buf + len, *p;
	int err = 0;

	if (http_head_end(buf, len, 0) != 0)
		return http_parse_head(buf, len, req);
	p = skip_empty_lines(buf, end);
	/* Judge the request line as soon as it is whole, so garbage is refused
	 * at once instead of after HTTP_MAX_HEAD bytes. */
	memset(req, 0, offsetof(struct http_request, headers));
	if (memchr(p, '\n', (size_t)(end - p)) != NULL &&
	    parse_request_line(p, end, req, &err) == NULL)
		return err;
	return incomplete_limits(p, end);
}

int http_parse_head(const char *buf, size_t len, struct http_request *req)
{
	const char *end = buf + len, *p = skip_empty_lines(buf, end);
	struct framing f = { 0 };
	int err = 0;

	memset(req, 0, offsetof(struct http_request, headers));
	if ((p = parse_request_line(p, end, req, &err)) == NULL)
		return err;
	while (p < end && *p != '\r' && *p != '\n') {
		struct http_header *h;
		if (req->nheaders == HTTP_MAX_HEADERS)
			return -431;
		h = &req->headers[req->nheaders++];
		if ((p = parse_header_line(p, end, h, &err)) == NULL)
			return err;
		if ((err = interpret_header(req, h, &f)) != 0)
			return err;
	}
	if ((p = eat_eol(p, end)) == NULL)
		return -400;
	if (p - buf > HTTP_MAX_HEAD)
		return -431;
	if ((err = finish_request(req, &f)) != 0)
		return err;
	return (int)(p - buf);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One byte of a chunk-size line. Returns 0 or -status. */
static int chunk_size_byte(struct http_chunked *d, unsigned char c)
{
	int v = hex_value(c);

	if (v >= 0 && d->state == HTTP_CHUNK_SIZE) {
		if (++d->ndigits > 16)
			return -400;
		d->remain = d->remain * 16 + (uint64_t)v;
		return 0;
	}
	if (d->ndigits == 0)
		return -400;
	if (c == '\r') {
		d->state = HTTP_CHUNK_SIZE_LF;
	} else if (c == '\n') {
		d->state = d->remain ? HTTP_CHUNK_DATA : HTTP_CHUNK_TRAILER_START;
		d->ndigits = 0;
		d->ext_len = 0;
	} else if (d->state != HTTP_CHUNK_EXT && c != ';') {
		/* Only whitespace may stand between the size and the first ';':
		 * "5 6" is no size at all, whatever another parser makes of it. */
		if ((c != ' ' && c != '\t') || ++d->ext_len > HTTP_MAX_CHUNK_EXT)
			return -400;
		d->state = HTTP_CHUNK_SIZE_WS;
	} else {
		/* chunk-ext: skipped, but bounded and free of control bytes */
		if ((c < 0x20 && c != '\t') || c == 0x7f || ++d->ext_len > HTTP_MAX_CHUNK_EXT)
			return -400;
		d->state = HTTP_CHUNK_EXT;
	}
	return 0;
}

/* One byte of the trailer section, which is read and discarded. */
static int chunk_trailer_byte(struct http_chunked *d, unsigned char c)
{
	if (++d->trailer > HTTP_MAX_HEAD)
		return -431;
	switch (d->state) {
	case HTTP_CHUNK_TRAILER_START:
		d->state = c == '\r'   ? HTTP_CHUNK_END_LF
		           : c == '\n' ? HTTP_CHUNK_DONE
		                       : HTTP_CHUNK_TRAILER_LINE;
		return 0;
	case HTTP_CHUNK_TRAILER_LINE:
		if (c == '\r')
			d->state = HTTP_CHUNK_TRAILER_LF;
		else if (c == '\n')
			d->state = HTTP_CHUNK_TRAILER_START;
		else if (!is_value_char(c))
			return -400;
		return 0;
	default: /* TRAILER_LF, END_LF */
		if (c != '\n')
			return -400;
		d->state =
		        d->state == HTTP_CHUNK_END_LF ? HTTP_CHUNK_DONE : HTTP_CHUNK_TRAILER_START;
		return 0;
	}
}

long http_chunked_step(struct http_chunked *d, const char *buf, size_t len, const char **data,
                       size_t *data_len)
{
	size_t i = 0;
	int err = 0;

	*data_len = 0;
	while (i < len && d->state != HTTP_CHUNK_DONE) {
		unsigned char c = (unsigned char)buf[i];
		switch (d->state) {
		case HTTP_CHUNK_SIZE:
		case HTTP_CHUNK_SIZE_WS:
		case HTTP_CHUNK_EXT:
			err = chunk_size_byte(d, c);
			break;
		case HTTP_CHUNK_SIZE_LF:
			if (c != '\n')
				return -400;
			d->state = d->remain ? HTTP_CHUNK_DATA : HTTP_CHUNK_TRAILER_START;
			d->ndigits = 0;
			d->ext_len = 0;
			break;
		case HTTP_CHUNK_DATA: {
			size_t n = len - i < d->remain ? len - i : (size_t)d->remain;
			*data = buf + i;
			*data_len = n;
			d->remain -= n;
			if (d->remain == 0)
				d->state = HTTP_CHUNK_DATA_CR;
			return (long)(i + n);
		}
		case HTTP_CHUNK_DATA_CR:
		case HTTP_CHUNK_DATA_LF:
			if (c == '\r' && d->state == HTTP_CHUNK_DATA_CR)
				d->state = HTTP_CHUNK_DATA_LF;
			else if (c == '\n')
				d->state = HTTP_CHUNK_SIZE;
			else
				return -400;
			break;
		default:
			err = chunk_trailer_byte(d, c);
			break;
		}
		if (err != 0)
			return err;
		i++;
	}
	return (long)i;
}
