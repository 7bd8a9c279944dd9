/*
 * fuzz_conn.c - libFuzzer target for the whole connection state machine.
 *
 * What it teaches: a sans-I/O state machine can be driven by a fuzzer exactly
 * as a backend drives it, with the byte stream cut at arbitrary points, the
 * output drained in arbitrary amounts and the clock jumping at arbitrary
 * moments, and every answer checked.
 *
 * Input layout: byte 0 bit 0 = CONN_SENDFILE, bit 1 = feed like a completion
 * backend (io_uring's multishot receive: whenever bytes come, also while the
 * connection is busy, and then the output must not move); byte 1 = n, the number of
 * control bytes that follow; then the control bytes; then the request
 * stream. Each control byte is one step (top two bits the kind, low six the
 * size): feed the next size^2+1 stream bytes, send size^2+1 output bytes,
 * advance the clock by size*200 ms, or (kind 3) stop, EOF or "do the natural
 * thing". Steps the connection does not want right now are skipped, as a
 * backend would. After the control bytes the rest is fed, the output is
 * drained and time runs until the connection wants CLOSE.
 *
 * Invariants checked: never CONN_WANT_READ with output pending; a deadline
 * whenever the connection is open; it reaches CLOSE; each response's
 * Content-Length matches the body sent (only a response cut off by a kill may
 * be short; a 304 has neither); nothing follows a "Connection: close" response; conn_free()
 * leaves no memory (ASan) and no descriptor behind. And when the control
 * bytes only cut the stream and the output (no clock, EOF or stop), the
 * answers, byte for byte but the Date, are those the stream gets when fed
 * whole: parsing must not depend on where the reads happen to end.
 * Uses a real struct server whose --root is a temporary directory.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "handlers.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

enum { CAPTURE_MAX = 1 << 21, STEP_MAX = 20000 };

static struct server srv;
static char root[] = "/tmp/fuzz-conn-XXXXXX";
static const char *const files[] = { "index.html", "big.bin", "empty.txt" };
static bool anytime; /* byte 0 bit 1: feeds are not held back while busy */
static struct capture {
	size_t len; /* may exceed CAPTURE_MAX: then only the start is kept */
	char buf[CAPTURE_MAX];
} cap[2];

static void remove_root(void)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlinkat(srv.root_fd, files[i], 0);
	rmdir(root);
}

/* The site: a small page, a file larger than one output chunk, an empty one. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char big[100000];
	const char *text[] = { "<h1>fuzz</h1>\n", big, "" };
	size_t len[] = { 14, sizeof(big), 0 };

	(void)argc, (void)argv;
	memset(big, 'b', sizeof(big));
	if (mkdtemp(root) == NULL || (srv.root_fd = open(root, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd = openat(srv.root_fd, files[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, text[i], len[i]) != (ssize_t)len[i] || close(fd) != 0)
			abort();
	}
	srv.root_path = root;
	srv.cfg = (struct server_config){ .host = "127.0.0.1",
		                          .root = root,
		                          .workers = 1,
		                          .idle_timeout_ms = 10000,
		                          .max_conns = 100 };
	srv.backend = "fuzz";
	atexit(remove_root);
	return handlers_init(&srv);
}

static uint64_t queued(const struct conn *c)
{
	return (uint64_t)(c->out_len - c->out_sent) + c->file_left;
}

/* Sends up to max bytes of the pending output into the capture, as a
 * backend's send() or sendfile() would. Returns the bytes sent. */
static size_t drain(struct conn *c, struct capture *to, size_t max, int64_t now)
{
	static char file_buf[1 << 16];
	struct conn_out out;
	const char *p = file_buf;
	size_t n;

	conn_output(c, &out);
	if (out.len > 0) {
		n = out.len < max ? out.len : max;
		p = out.data;
	} else if (out.file_len > 0) {
		n = out.file_len < max ? out.file_len : max;
		n = n < sizeof(file_buf) ? n : sizeof(file_buf);
		if (pread(out.file_fd, file_buf, n, (off_t)out.file_off) != (ssize_t)n)
			abort();
	} else {
		return 0; /* conn_output() killed the connection */
	}
	if (to->len + n <= CAPTURE_MAX)
		memcpy(to->buf + to->len, p, n);
	to->len += n;
	conn_sent(c, n, now);
	return n;
}

/* Do the bytes at p (maybe cut short by `end`) begin a response head? */
static bool head_at(const char *p, const char *end)
{
	size_t avail = (size_t)(end - p) < 9 ? (size_t)(end - p) : 9;

	return memcmp(p, "HTTP/1.1 ", avail) == 0;
}

/* Walks the responses sent. A body follows each head unless the request was
 * a HEAD, so either the body or the next head (or the end) must follow.
 * Only when output was dropped (`cut`) may the last response be short. */
static void check_responses(const char *p, const char *end, bool cut)
{
	while (p < end) {
		const char *h = memmem(p, (size_t)(end - p), "\r\n\r\n", 4), *cl;
		uint64_t len = 0;
		bool last;
		if (!head_at(p, end) || (h == NULL && !cut))
			abort();
		if (h == NULL)
			return; /* a head cut short */
		h += 4;
		last = memmem(p, (size_t)(h - p), "\r\nConnection: close\r\n", 21) != NULL;
		if (memcmp(p, "HTTP/1.1 100 ", 13) == 0 || memcmp(p, "HTTP/1.1 304 ", 13) == 0) {
			/* no content, so no Content-Length: the next head follows */
			if (memmem(p, (size_t)(h - p), "\r\nContent-Length: ", 18) != NULL ||
			    (last && h != end))
				abort();
			p = h;
			continue;
		}
		cl = memmem(p, (size_t)(h - p), "\r\nContent-Length: ", 18);
		if (cl == NULL)
			abort();
		for (cl += 18; *cl >= '0' && *cl <= '9'; cl++)
			len = len * 10 + (uint64_t)(*cl - '0');
		if ((uint64_t)(end - h) >= len && (last ? h + len == end : head_at(h + len, end)))
			p = h + len;
		else if (last ? h == end : head_at(h, end))
			p = h; /* the answer to a HEAD */
		else if (!cut || (uint64_t)(end - h) >= len)
			abort(); /* a wrong length, or bytes after "Connection: close" */
		else
			return; /* a body cut short */
	}
}

/* Did a feed move or change the output that a send may be in flight from?
 * (A kill drops it: that is allowed, the backend closes.) */
static bool output_moved(struct conn *c, const struct conn_out *before)
{
	struct conn_out now;

	if (conn_want(c) == CONN_WANT_CLOSE)
		return false;
	conn_output(c, &now);
	return now.data != before->data || now.len != before->len ||
	       now.file_off != before->file_off || now.file_len != before->file_len;
}

/* One step: a control byte, or (ctl < 0) what the connection wants. */
static size_t step(struct conn *c, struct capture *to, int ctl, const unsigned char **s,
                   const unsigned char *end, int64_t *now)
{
	enum conn_want w = conn_want(c);
	size_t arg = ctl < 0 ? SIZE_MAX : (size_t)(ctl & 63) * (size_t)(ctl & 63) + 1;
	int kind = ctl < 0 ? 3 : ctl >> 6;

	if (*now >= conn_deadline(c)) {
		conn_timeout(c, *now);
	} else if (w == CONN_WANT_SHUTDOWN) {
		conn_shut(c, *now); /* as a backend would, at once */
	} else if (kind == 2) {
		*now += (ctl & 63) * 200;
	} else if (kind == 3 && (ctl & 63) == 0) {
		conn_stop(c);
	} else if ((w == CONN_WANT_READ && (kind == 0 || kind == 3)) ||
	           (anytime && w != CONN_WANT_CLOSE && kind == 0 && *s < end)) {
		size_t n = (size_t)(end - *s) < arg ? (size_t)(end - *s) : arg;
		struct conn_out before;
		if (kind == 3 && (ctl & 63) == 1)
			n = 0; /* EOF even if bytes remain */
		if (w == CONN_WANT_WRITE)
			conn_output(c, &before);
		conn_feed(c, (const char *)*s, n, *now);
		*s += n;
		if (w == CONN_WANT_WRITE && output_moved(c, &before))
			abort(); /* a send in flight points at that output */
	} else if (w == CONN_WANT_WRITE && (kind == 1 || kind == 3)) {
		return drain(c, to, arg, *now);
	} else if (w == CONN_WANT_WAIT && ctl < 0) {
		*now = conn_deadline(c);
	}
	return 0;
}

/* Drives one connection over s[0..end) as the control bytes ctl[0..nctl)
 * say, then naturally, capturing what it sends. Checks the invariants after
 * every step. Returns whether output was ever dropped (a kill). */
static bool drive(struct capture *to, const unsigned char *ctl, size_t nctl, const unsigned char *s,
                  const unsigned char *end, unsigned flags)
{
	int64_t now = 1000;
	bool cut = false;
	struct conn c;

	to->len = 0;
	conn_init(&c, &srv, now, flags);
	for (size_t i = 0; i < nctl + STEP_MAX && conn_want(&c) != CONN_WANT_CLOSE; i++) {
		uint64_t before = queued(&c);
		size_t sent = step(&c, to, i < nctl ? ctl[i] : -1, &s, end, &now);
		if (conn_want(&c) == CONN_WANT_READ && queued(&c) > 0)
			abort(); /* output would wait for input that may never come */
		if (conn_want(&c) != CONN_WANT_CLOSE && conn_deadline(&c) == INT64_MAX)
			abort(); /* an open connection with no deadline can hang forever */
		cut |= conn_want(&c) == CONN_WANT_CLOSE && before > sent + queued(&c);
	}
	if (conn_want(&c) != CONN_WANT_CLOSE)
		abort(); /* it never finished */
	conn_free(&c);
	if (getenv("FUZZ_CONN_DUMP") != NULL) /* to read what a crash sent */
		fwrite(to->buf, 1, to->len < CAPTURE_MAX ? to->len : CAPTURE_MAX, stderr);
	if (to->len <= CAPTURE_MAX)
		check_responses(to->buf, to->buf + to->len, cut);
	return cut;
}

/* Did a /stats answer go out? Its counters (and so its Content-Length, even
 * for HEAD) differ between runs. It is the only JSON answer that is not the
 * 27 bytes of /json: the temporary site holds no .json file. */
static bool sent_stats(const struct capture *k)
{
	static const char tag[] = "application/json\r\nContent-Length: ";
	const char *p = k->buf, *end = k->buf + k->len;

	while ((p = memmem(p, (size_t)(end - p), tag, sizeof(tag) - 1)) != NULL) {
		p += sizeof(tag) - 1;
		if (end - p < 4 || memcmp(p, "27\r\n", 4) != 0)
			return true;
	}
	return false;
}

/* Blanks the Date values, the one thing two runs may rightly differ in. */
static void blank_dates(struct capture *k)
{
	char *p = k->buf, *end = k->buf + k->len;

	while ((p = memmem(p, (size_t)(end - p), "\r\nDate: ", 8)) != NULL)
		for (p += 8; p < end && *p != '\r'; p++)
			*p = '-';
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	size_t nctl = size >= 2 ? data[1] : 0;
	const unsigned char *ctl = data + 2, *s = data + 2 + nctl, *end = data + size;
	unsigned flags = size > 0 && (data[0] & 1) ? CONN_SENDFILE : 0;

	anytime = size > 0 && (data[0] & 2);
	bool plain = true;
	int fd_mark, fd_end;

	if (size < 2 + nctl)
		return 0;
	fd_mark = fcntl(0, F_DUPFD, 0); /* the number the next open() gets */
	close(fd_mark);
	for (size_t i = 0; i < nctl; i++)
		plain &= ctl[i] < 0x80 || ctl[i] >= 0xc2; /* feeds and sends only */
	/* Cut or whole, the same stream must get the same answers. Above
	 * HTTP_MAX_URI a head may rightly be refused before it is complete,
	 * and /stats answers with counters that differ between runs. */
	if (!drive(&cap[0], ctl, nctl, s, end, flags) && plain && nctl > 0 &&
	    end - s <= HTTP_MAX_URI && cap[0].len <= CAPTURE_MAX && !sent_stats(&cap[0])) {
		drive(&cap[1], NULL, 0, s, end, flags);
		blank_dates(&cap[0]);
		blank_dates(&cap[1]);
		if (cap[0].len != cap[1].len || memcmp(cap[0].buf, cap[1].buf, cap[0].len) != 0)
			abort();
	}
	fd_end = fcntl(0, F_DUPFD, 0);
	close(fd_end);
	if (fd_end != fd_mark)
		abort(); /* a descriptor was left open */
	return 0;
}
