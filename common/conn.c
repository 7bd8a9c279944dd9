/*
 * conn.c - the sans-I/O connection state machine (see conn.h for the model).
 *
 * The states and who moves between them:
 *
 *     HEAD --head complete, body follows--> BODY --body complete--+
 *       |                                                         |
 *       +--head complete, no body-------------> answer <----------+
 *                                                 |
 *                     /delay: DELAYED --deadline--+
 *                                                 v
 *                     keep-alive: HEAD     close: CLOSING
 *
 * conn_run() moves through as many requests as the buffered bytes allow.
 * It pauses when a response is delayed, when a file is being sent, or when
 * queued output passes CONN_OUT_HIGH: a client that pipelines without reading
 * cannot make the server queue without bound. Once the output drains,
 * conn_sent() resumes it.
 */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handlers.h"
#include "response.h"
#include "server.h"

enum {
	CONN_OUT_HIGH = 64 * 1024,               /* stop answering pipelined requests above this */
	CONN_IN_MAX = 64 * 1024 + HTTP_MAX_HEAD, /* buffered input while paused */
	CONN_FILE_CHUNK = 64 * 1024,             /* read size when the backend cannot sendfile */
	CONN_SMALL_FILE = 16 * 1024,             /* sent with its head: conn_respond_file */
	CONN_BUF_MIN = 512,                      /* first size of a buffer: see buf_reserve */
};

/* Private flags, above the public CONN_SENDFILE. */
enum {
	F_PEER_EOF = 1 << 1, /* the peer will send nothing more */
	F_STOP = 1 << 2,     /* the server is shutting down */
	F_LINE_OK = 1 << 3,  /* the pending head's request line was checked */
	F_DEAD = 1 << 4,     /* close now, drop whatever is queued */
	F_EOF_HELD = 1 << 5, /* EOF fed while busy: counts once what came before is answered */
	F_LINGER = 1 << 6,   /* input was dropped: close in stages (conn.h) */
};

static size_t conn_run(struct conn *c, const char *buf, size_t len);

static bool output_pending(const struct conn *c)
{
	return c->out_sent < c->out_len || c->file_left > 0;
}

/* Sending, or holding a /delay answer: input that arrives now is only kept,
 * and c->out must stay put (a completion backend may be sending from it). */
static bool busy(const struct conn *c)
{
	return output_pending(c) || c->state == CONN_DELAYED;
}

/* Grows *buf to hold at least `need` bytes. Returns 0 or -1 (no memory).
 *
 * Buffers start small (CONN_BUF_MIN) and double. The small start matters
 * more than it looks: every response allocates its output buffer and frees
 * it once sent, and allocators keep a per-thread cache of small freed blocks
 * (glibc's tcache holds blocks up to 1032 bytes) that hands the same block
 * back to the next request in a few dozen instructions, still hot in the CPU
 * cache. A 4 KiB first size missed that cache and took the general path,
 * several hundred instructions per request for the malloc() and free(). */
static int buf_reserve(char **buf, uint32_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : CONN_BUF_MIN;
	char *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = *buf ? realloc(*buf, ncap) : malloc(ncap)) == NULL) /* malloc: the usual case */
		return -1;
	*buf = p;
	*cap = (uint32_t)ncap;
	return 0;
}

static void buf_release(char **buf, uint32_t *len, uint32_t *cap)
{
	free(*buf);
	*buf = NULL;
	*len = *cap = 0;
}

/* Drops everything and closes: used for errors after which nothing sent
 * could be trusted, and when memory runs out. */
static void conn_kill(struct conn *c)
{
	c->flags |= F_DEAD;
	c->out_len = c->out_sent = 0;
	c->file_left = 0;
}

/* Recomputes the single deadline from the state (conn.h lists the cases). */
/* LAB 5 BEGIN: one deadline per state: stalled reader, /delay, slow head, idle */
/* LAB 5 STUB: static void update_deadline(struct conn *c) */
/* LAB 5 STUB: { */
/* LAB 5 STUB: 	c->deadline = c->now + c->srv->cfg.idle_timeout_ms; */
/* LAB 5 STUB: } */
static void update_deadline(struct conn *c)
{
	int64_t t = c->srv->cfg.idle_timeout_ms;

	if (output_pending(c))
		c->deadline = c->now + t; /* a reader must keep reading */
	else if (c->state == CONN_DELAYED)
		c->deadline = c->due; /* the held response */
	else if (c->state == CONN_HEAD && c->in_len > 0)
		c->deadline = c->req_start + t; /* a head must arrive whole in time */
	else
		c->deadline = c->now + t; /* idle, or a body: since progress */
}
/* LAB 5 END */

void conn_init(struct conn *c, struct server *srv, int64_t now, unsigned flags)
{
	memset(c, 0, sizeof(*c));
	c->srv = srv;
	c->flags = (uint8_t)(flags & CONN_SENDFILE);
	c->state = CONN_HEAD;
	c->req.file_fd = -1;
	c->now = c->req_start = now;
	if (server_stopping(srv))
		c->flags |= F_STOP;
	update_deadline(c);
}

void conn_free(struct conn *c)
{
	if (c->req.file_fd >= 0)
		platform_close_file(c->req.file_fd);
	c->req.file_fd = -1;
	buf_release(&c->in, &c->in_len, &c->in_cap);
	buf_release(&c->out, &c->out_len, &c->out_cap);
	buf_release(&c->body, &c->body_len, &c->body_cap);
}

/* ---- responses ---------------------------------------------------------- */

/* Reserves room for n more output bytes; NULL if out of memory (then the
 * connection is already marked dead). */
static char *out_reserve(struct conn *c, size_t n)
{
	if (buf_reserve(&c->out, &c->out_cap, (size_t)c->out_len + n) != 0) {
		conn_kill(c);
		return NULL;
	}
	return c->out + c->out_len;
}

static size_t head_len(const char *content_type, const char *extra)
{
	return RESPONSE_HEAD_MAX + (content_type ? strlen(content_type) : 0) +
	       (extra ? strlen(extra) : 0);
}

static void count_response(struct conn *c, int status)
{
	STAT_ADD(c->srv, requests, 1);
	STAT_ADD(c->srv, status[status / 100 % 6], 1);
}

static char *respond_head(struct conn *c, int status, const char *type, const char *extra,
                          uint64_t len, size_t body_room)
{
	struct response_head h = {
		.status = status,
		.content_type = type,
		.content_length = len,
		.extra = extra,
	};
	char *p;

	/* LAB 4 BEGIN: keep-alive rules: which Connection header does this answer carry? */
	/* LAB 4 HINT: HTTP/1.0 and 1.1 differ in their default; a stop or EOF ends it. */
	/* LAB 4 STUB: h.connection = RESPONSE_CLOSE; */
	if (c->flags & (F_STOP | F_PEER_EOF))
		c->req.keep_alive = false;
	h.connection = !c->req.keep_alive  ? RESPONSE_CLOSE
	               : c->req.minor == 0 ? RESPONSE_KEEP_ALIVE
	                                   : RESPONSE_DEFAULT;
	/* LAB 4 END */
	if ((p = out_reserve(c, head_len(type, extra) + body_room)) == NULL)
		return NULL;
	c->out_len += (uint32_t)response_head_write(p, &h);
	count_response(c, status);
	return c->out + c->out_len;
}

void conn_respond(struct conn *c, int status, const char *content_type, const char *extra,
                  const void *body, size_t len)
{
	bool with_body = c->req.method != HTTP_HEAD;
	char *p = respond_head(c, status, content_type, extra, len, with_body ? len : 0);

	if (p != NULL && with_body && len > 0) {
		memcpy(p, body, len);
		c->out_len += (uint32_t)len;
	}
}

/* A file of at most CONN_SMALL_FILE bytes is read into the output right
 * behind its head, so head and body leave in one send() and one TCP segment.
 * sendfile(2) would take a second system call and a second segment: on
 * loopback that costs more than copying a few KiB (docs/performance-notes.md).
 * Larger files go out by sendfile(2), or in CONN_FILE_CHUNK pieces. */
void conn_respond_file(struct conn *c, int status, const char *content_type, const char *extra,
                       int fd, uint64_t first, uint64_t len)
{
	bool with_body = c->req.method != HTTP_HEAD && len > 0;
	bool small = with_body && len <= CONN_SMALL_FILE;
	char *p = respond_head(c, status, content_type, extra, len, small ? (size_t)len : 0);

	if (p != NULL && small) {
		if (platform_pread(fd, p, (size_t)len, (int64_t)first) == (ssize_t)len)
			c->out_len += (uint32_t)len;
		else
			conn_kill(c); /* the file shrank or failed: the length promised is a lie */
	}
	if (p == NULL || !with_body || small) {
		platform_close_file(fd);
		if (c->req.file_fd == fd)
			c->req.file_fd = -1;
		return;
	}
	c->req.file_fd = fd;
	c->file_off = (int64_t)first;
	c->file_left = len;
}

void conn_delay(struct conn *c, uint32_t ms)
{
	c->state = CONN_DELAYED;
	c->due = c->now + ms;
}

/* An error answer. After a framing or syntax error the rest of the byte
 * stream cannot be trusted, so the connection closes once it is sent. */
static void respond_error(struct conn *c, int status, bool close_after)
{
	char body[64];
	int n = snprintf(body, sizeof(body), "%d %s\n", status, http_status_reason(status));
	char allow[128] = "";

	if (close_after)
		c->req.keep_alive = false;
	if (status == 405)
		response_allow_header(allow, sizeof(allow), c->req.allow);
	conn_respond(c, status, "text/plain; charset=utf-8", allow[0] ? allow : NULL, body,
	             (size_t)n);
}

/* Forgets the previous request before a new head is judged. A head that
 * does not parse is answered like a GET: with the error text as body. */
static void req_reset(struct conn *c)
{
	if (c->req.file_fd >= 0) /* opened for an answer that went out without it */
		platform_close_file(c->req.file_fd);
	memset(&c->req, 0, sizeof(c->req));
	c->req.file_fd = -1;
	c->req.method = HTTP_GET;
	c->req.minor = 1;
}

/* Answers with `status` and closes; returns how much input to drop (all). */
static size_t fail(struct conn *c, int status, size_t len)
{
	respond_error(c, status, true);
	c->state = CONN_CLOSING;
	c->flags |= F_LINGER; /* the rest of the request may still be on its way */
	return len > 0 ? len : 1;
}

/* ---- one function per state --------------------------------------------- */

/* After a response: wait for the next request, or close. */
static void next_request(struct conn *c)
{
	/* LAB 4 BEGIN: keep the connection for another request, or close it? */
	/* LAB 4 STUB: c->state = CONN_CLOSING; */
	c->state = c->req.keep_alive ? CONN_HEAD : CONN_CLOSING;
	/* LAB 4 END */
	c->req_start = c->now;
}

/* The request is complete (head and body): answer it and pick the next state. */
static void finish_request(struct conn *c)
{
	if (c->req.status != 0)
		respond_error(c, c->req.status, false);
	else
		handlers_finish(c);
	buf_release(&c->body, &c->body_len, &c->body_cap);
	if (c->state != CONN_DELAYED)
		next_request(c);
}

/* Sets up the request just parsed; returns bytes consumed or fail()'s. */
static size_t start_request(struct conn *c, const struct http_request *r, size_t used)
{
	c->req.method = (uint8_t)r->method;
	c->req.minor = (uint8_t)r->minor;
	c->req.keep_alive = r->keep_alive;
	c->body_kind = (uint8_t)r->body;
	c->body_left = r->content_length;
	c->body_len = 0;
	memset(&c->chunk, 0, sizeof(c->chunk));
	if (r->body == HTTP_BODY_LENGTH && r->content_length > HTTP_MAX_BODY)
		return fail(c, 413, used);
	c->req.status = (uint16_t)handlers_begin(c, r);
	if (r->body == HTTP_BODY_NONE) {
		finish_request(c);
		return used;
	}
	if (r->expect_continue) {
		/* RFC 9110 10.1.1: a final answer instead of 100 means the client
		 * may never send the body; closing keeps the stream in step. */
		char *p;
		if (c->req.status != 0) {
			respond_error(c, c->req.status, true);
			c->state = CONN_CLOSING;
			return used;
		}
		if ((p = out_reserve(c, RESPONSE_CONTINUE_LEN)) != NULL)
			c->out_len += (uint32_t)response_continue(p);
	}
	c->state = CONN_BODY;
	return used;
}

static size_t on_head(struct conn *c, const char *p, size_t len)
{
	struct http_request req;
	size_t end = http_head_end(p, len, c->scan);
	int rc;

	req_reset(c);

	if (end == 0) {
		bool new_line =
		        !(c->flags & F_LINE_OK) && memchr(p + c->scan, '\n', len - c->scan) != NULL;
		c->scan = len > 3 ? (uint32_t)len - 3 : 0;
		if (new_line || len > HTTP_MAX_URI) {
			rc = http_parse_request(p, len, &req);
			if (rc < 0)
				return fail(c, -rc, len);
			/* Only a request line that was really judged counts: a
			 * newline of a leading empty line leaves target empty. */
			c->flags |= new_line && req.target.len > 0 ? F_LINE_OK : 0;
		}
		return 0;
	}
	c->scan = 0;
	c->flags &= (uint8_t)~F_LINE_OK;
	rc = http_parse_head(p, end, &req); /* whole: no second search for its end */
	if (rc < 0)
		return fail(c, -rc, len);
	return start_request(c, &req, (size_t)rc);
}

/* Keeps body bytes for the handler, or just counts them. */
static int take_body(struct conn *c, const char *data, size_t n)
{
	if ((uint64_t)c->body_len + n > HTTP_MAX_BODY)
		return -413;
	if (c->req.keep_body) {
		if (buf_reserve(&c->body, &c->body_cap, (size_t)c->body_len + n) != 0)
			return -500;
		memcpy(c->body + c->body_len, data, n);
	}
	c->body_len += (uint32_t)n;
	return 0;
}

static size_t on_body(struct conn *c, const char *p, size_t len)
{
	size_t used = 0;

	while (used < len) {
		const char *data = p + used;
		size_t n;
		long step;
		if (c->body_kind == HTTP_BODY_LENGTH) {
			n = len - used < c->body_left ? len - used : (size_t)c->body_left;
			c->body_left -= n;
			step = (long)n;
		} else if ((step = http_chunked_step(&c->chunk, p + used, len - used, &data, &n)) <
		           0) {
			return fail(c, (int)-step, len);
		}
		if (n > 0) {
			int err = take_body(c, data, n);
			if (err < 0)
				return fail(c, -err, len);
		}
		used += (size_t)step;
		if (c->body_kind == HTTP_BODY_LENGTH ? c->body_left == 0
		                                     : c->chunk.state == HTTP_CHUNK_DONE) {
			finish_request(c);
			break;
		}
	}
	return used;
}

/* Runs the state machine over buf[0..len); returns bytes consumed. */
static size_t conn_run(struct conn *c, const char *buf, size_t len)
{
	/* LAB 4 BEGIN: pipelining: step on_head/on_body over the buffer while they consume */
	/* LAB 4 HINT: bytes; stop when dead, sending a file, or output passes CONN_OUT_HIGH. */
	/* LAB 4 STUB: (void)buf; */
	/* LAB 4 STUB: (void)len; */
	/* LAB 4 STUB: (void)on_head; */
	/* LAB 4 STUB: (void)on_body; */
	/* LAB 4 STUB: conn_kill(c); */
	/* LAB 4 STUB: return 0; */
	size_t used = 0, n;

	while (used < len && !(c->flags & F_DEAD) && c->file_left == 0 &&
	       c->out_len - c->out_sent < CONN_OUT_HIGH) {
		if (c->state == CONN_HEAD)
			n = on_head(c, buf + used, len - used);
		else if (c->state == CONN_BODY)
			n = on_body(c, buf + used, len - used);
		else
			break; /* DELAYED and CLOSING take no input */
		if (n == 0)
			break;
		used += n;
	}
	return used;
	/* LAB 4 END */
}

/* ---- the backend-facing API ----------------------------------------------- */

/* Drops the first n buffered input bytes. */
static void in_consume(struct conn *c, size_t n)
{
	if (n >= c->in_len) {
		buf_release(&c->in, &c->in_len, &c->in_cap);
		return;
	}
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= (uint32_t)n;
}

static void in_append(struct conn *c, const char *data, size_t len)
{
	if (len > 0 && c->state == CONN_CLOSING)
		c->flags |= F_LINGER; /* pipelined behind a close: dropped */
	if (len == 0 || c->state == CONN_CLOSING || (c->flags & F_DEAD))
		return; /* nothing more will be read from this stream */
	if (c->in_len == 0 && c->state == CONN_HEAD)
		c->req_start = c->now; /* a new head starts arriving */
	if ((size_t)c->in_len + len > CONN_IN_MAX ||
	    buf_reserve(&c->in, &c->in_cap, (size_t)c->in_len + len) != 0) {
		conn_kill(c); /* a client that sends without reading its answers */
		return;
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len += (uint32_t)len;
}

/* Processes whatever is buffered (after output drained or a delay ended). */
static void conn_resume(struct conn *c)
{
	if (c->in_len > 0)
		in_consume(c, conn_run(c, c->in, c->in_len));
	if ((c->flags & F_EOF_HELD) && !busy(c)) /* what is left is no whole request */
		c->flags = (uint8_t)((c->flags & ~F_EOF_HELD) | F_PEER_EOF);
}

void conn_feed(struct conn *c, const char *data, size_t len, int64_t now)
{
	c->now = now;
	if (c->state == CONN_LINGER) { /* (conn_want() says why) */
		if (len == 0)
			c->flags |= F_PEER_EOF; /* now it can close without a reset */
		return;                         /* else thrown away */
	}
	if (len == 0) {
		c->flags |= busy(c) ? F_EOF_HELD : F_PEER_EOF;
	} else if (c->in_len == 0 && !busy(c)) {
		/* Fast path: parse straight out of the backend's buffer, keep
		 * only the bytes of an unfinished request. */
		size_t used;
		STAT_ADD(c->srv, bytes_in, len);
		if (c->state == CONN_HEAD)
			c->req_start = now;
		used = conn_run(c, data, len);
		in_append(c, data + used, len - used);
	} else {
		STAT_ADD(c->srv, bytes_in, len);
		in_append(c, data, len);
		if (!busy(c))
			conn_resume(c); /* else conn_sent() or conn_timeout() will */
	}
	update_deadline(c);
}

void conn_output(struct conn *c, struct conn_out *out)
{
	memset(out, 0, sizeof(*out));
	out->file_fd = -1;
	if (c->out_sent < c->out_len) {
		out->data = c->out + c->out_sent;
		out->len = c->out_len - c->out_sent;
		return;
	}
	if (c->file_left == 0)
		return;
	if (c->flags & CONN_SENDFILE) {
		out->file_fd = c->req.file_fd;
		out->file_off = c->file_off;
		out->file_len = c->file_left;
		return;
	}
	/* No sendfile: copy the next piece of the file through the out buffer. */
	size_t want = c->file_left < CONN_FILE_CHUNK ? (size_t)c->file_left : CONN_FILE_CHUNK;
	c->out_len = c->out_sent = 0;
	char *p = out_reserve(c, want);
	ssize_t n = p ? platform_pread(c->req.file_fd, p, want, c->file_off) : -1;
	if (n <= 0) {
		conn_kill(c); /* the file shrank or failed: the length promised is a lie now */
		return;
	}
	c->out_len = (uint32_t)n;
	c->out_sent = 0;
	c->file_off += n;
	c->file_left -= (uint64_t)n;
	if (c->file_left == 0) {
		/* The last piece is in memory now: close the file before a
		 * pipelined request can start and reuse c->req. */
		platform_close_file(c->req.file_fd);
		c->req.file_fd = -1;
	}
	out->data = c->out;
	out->len = (size_t)n;
}

void conn_sent(struct conn *c, size_t n, int64_t now)
{
	c->now = now;
	STAT_ADD(c->srv, bytes_out, n);
	/* sendfile(2) met the file's end early: it shrank, the length is a lie */
	if (n == 0 && c->out_sent == c->out_len && c->file_left > 0)
		conn_kill(c);
	/* LAB 4 BEGIN: partial writes: account n against memory output, then the file; */
	/* LAB 4 HINT: close the file once its range is out; once all is out, free the buffer and */
	/* LAB 4 HINT: resume pipelined input (a request still reading its body may hold a file). */
	/* LAB 4 STUB: (void)n; */
	/* LAB 4 STUB: conn_kill(c); */
	if (c->out_sent < c->out_len) {
		c->out_sent += (uint32_t)n;
	} else if (c->file_left > 0) {
		c->file_off += (int64_t)n;
		c->file_left -= n;
		if (c->file_left == 0) { /* the file range is out: its file is done */
			platform_close_file(c->req.file_fd);
			c->req.file_fd = -1;
		}
	}
	if (c->out_sent == c->out_len && c->file_left == 0) {
		/* Not the file here: a pipelined request whose body is still to
		 * come may hold one open for its answer. */
		buf_release(&c->out, &c->out_len, &c->out_cap);
		c->out_sent = 0;
		conn_resume(c);
	}
	/* LAB 4 END */
	update_deadline(c);
}

enum conn_want conn_want(const struct conn *c)
{
	if (c->flags & F_LINGER) { /* closing in stages (conn.h); rare, so tested once */
		bool done = c->flags & (F_PEER_EOF | F_STOP | F_DEAD);
		if (c->state == CONN_LINGER)
			return done ? CONN_WANT_CLOSE : CONN_WANT_READ;
		if (!done && c->state == CONN_CLOSING && !output_pending(c))
			return CONN_WANT_SHUTDOWN;
	}
	/* LAB 4 BEGIN: what next? In priority order: dead, output pending, delayed, */
	/* LAB 4 HINT: closing or peer EOF, stopping while idle; otherwise read. */
	/* LAB 4 STUB: (void)c; */
	/* LAB 4 STUB: return CONN_WANT_CLOSE; */
	if (c->flags & F_DEAD)
		return CONN_WANT_CLOSE;
	if (output_pending(c))
		return CONN_WANT_WRITE;
	if (c->state == CONN_DELAYED)
		return CONN_WANT_WAIT;
	if (c->state == CONN_CLOSING || (c->flags & F_PEER_EOF))
		return CONN_WANT_CLOSE;
	if ((c->flags & F_STOP) && c->state == CONN_HEAD && c->in_len == 0)
		return CONN_WANT_CLOSE;
	return CONN_WANT_READ;
	/* LAB 4 END */
}

void conn_timeout(struct conn *c, int64_t now)
{
	c->now = now;
	if (now < c->deadline)
		return;
	if (c->state == CONN_LINGER) {
		conn_kill(c); /* the peer never closed its side: stop waiting */
		return;
	}
	/* LAB 5 BEGIN: the deadline passed: release a /delay answer; else count a timeout */
	/* LAB 5 HINT: and drop a stalled reader or an idle connection, or answer 408. */
	/* LAB 5 STUB: conn_kill(c); */
	if (c->state == CONN_DELAYED && !output_pending(c)) {
		handlers_delayed(c);
		next_request(c);
		conn_resume(c);
	} else if (output_pending(c) || (c->state == CONN_HEAD && c->in_len == 0)) {
		STAT_ADD(c->srv, timeouts, 1);
		conn_kill(c); /* a reader that stalled, or an idle keep-alive */
	} else {
		STAT_ADD(c->srv, timeouts, 1);
		fail(c, 408, 0); /* a head or body that came too slowly */
	}
	/* LAB 5 END */
	update_deadline(c);
}

void conn_shut(struct conn *c, int64_t now)
{
	int64_t t = c->srv->cfg.idle_timeout_ms;

	c->now = now;
	c->state = CONN_LINGER;
	buf_release(&c->in, &c->in_len, &c->in_cap);
	c->deadline = now + (t < CONN_LINGER_MS ? t : CONN_LINGER_MS);
}

void conn_stop(struct conn *c)
{
	c->flags |= F_STOP;
	if (c->state == CONN_HEAD && c->in_len == 0 && !output_pending(c))
		c->state = CONN_CLOSING;
}
