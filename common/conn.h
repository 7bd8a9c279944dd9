/*
 * conn.h - the sans-I/O connection state machine.
 *
 * What it teaches: how one HTTP/1.1 connection can be driven by any I/O
 * model. This module never reads or writes a socket. A backend hands it the
 * bytes it received, asks what to send, reports how much went out, and asks
 * what the connection wants next and until when. A blocking thread, a
 * readiness loop (poll, epoll, kqueue) and a completion ring (io_uring, IOCP)
 * all drive exactly the same code, and the unit tests drive it with nothing
 * but byte strings.
 *
 * The driving loop every backend implements, in one picture:
 *
 *     conn_init(c, srv, now, flags)
 *     loop:
 *       switch (conn_want(c)):
 *       READ:  n = read(fd, buf);          conn_feed(c, buf, n, now)   (n == 0: EOF)
 *       WRITE: conn_output(c, &out);       n = write(fd, out...);      conn_sent(c, n, now)
 *       WAIT:  sleep until conn_deadline(c)
 *       SHUTDOWN: shutdown(fd, SHUT_WR);   conn_shut(c, now)           (then READ)
 *       CLOSE: close(fd); conn_free(c); done
 *       whenever now >= conn_deadline(c):  conn_timeout(c, now)
 *
 * Memory: an idle keep-alive connection holds no buffers, only this struct.
 * conn_feed() parses straight out of the caller's buffer and copies only the
 * bytes of an unfinished request; output is queued in a buffer that is freed
 * once it has been sent.
 */
#ifndef CONN_H
#define CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

struct server;

/* What the connection needs from its backend next. */
enum conn_want {
	CONN_WANT_READ,     /* wait for input, then conn_feed() it */
	CONN_WANT_WRITE,    /* conn_output() has bytes: send them, then conn_sent() */
	CONN_WANT_WAIT,     /* nothing to do until conn_deadline(): then conn_timeout() */
	CONN_WANT_SHUTDOWN, /* shut the socket's sending side, then conn_shut() */
	CONN_WANT_CLOSE,    /* close the socket, then conn_free() */
};

/* The states of one connection; conn.c has one function per state. */
enum conn_state {
	CONN_HEAD,    /* waiting for (the rest of) a request head */
	CONN_BODY,    /* receiving a request body */
	CONN_DELAYED, /* a response is held until its deadline (/delay) */
	CONN_CLOSING, /* sending what is queued, then closing */
	CONN_LINGER,  /* all sent, sending side shut: reading to the peer's EOF */
};

/* Options a backend passes to conn_init. */
enum {
	CONN_SENDFILE = 1 << 0, /* backend sends file ranges itself (sendfile) */
};

/* Pending output: memory bytes first; when there are none, maybe a file
 * range, which only backends that passed CONN_SENDFILE ever see (a file of
 * 16 KiB or less comes in memory, behind its head, for every backend). */
struct conn_out {
	const char *data;
	size_t len;
	int file_fd;
	int64_t file_off;
	size_t file_len;
};

/* One request's summary, kept across feeds (the head's bytes may be gone).
 * Packed by size: it is most of what an idle connection costs. */
struct conn_req {
	uint8_t method;    /* enum http_method */
	uint8_t minor;     /* HTTP/1.minor */
	uint8_t route;     /* handlers.c route id */
	bool keep_alive;   /* the client allows another request after this one */
	bool keep_body;    /* the handler wants the body bytes (/echo) */
	uint8_t type;      /* static route: the content type (static_files.h) */
	uint16_t status;   /* an error decided at head time, answered after the body */
	uint16_t allow;    /* for 405: the methods the path allows */
	uint16_t delay_ms; /* /delay: how long */
	int file_fd;       /* static route: the open file, or -1 */
	/* static route: the file's size and modification time (its validators),
	 * and the bytes to send: all of them, or one range (RFC 9110 14) */
	uint64_t file_size;
	int64_t file_mtime_ns;
	uint64_t range_first, range_len;
};

/* The state of one connection. Backends embed it in their own per-connection
 * struct and treat every field as private; handlers.c uses the request. */
struct conn {
	struct server *srv;
	uint8_t state;     /* enum conn_state */
	uint8_t flags;     /* CONN_SENDFILE and private flags */
	uint8_t body_kind; /* enum http_body of the request being read */
	uint32_t scan;     /* bytes of the pending head already scanned */
	struct conn_req req;
	char *in; /* unparsed input, or NULL (then in_len == 0) */
	uint32_t in_len, in_cap;
	char *out; /* queued output, or NULL */
	uint32_t out_len, out_sent, out_cap;
	char *body; /* request body kept for the handler (/echo) */
	uint32_t body_len, body_cap;
	struct http_chunked chunk;
	uint64_t body_left; /* Content-Length bytes still to come */
	int64_t file_off;   /* next byte of the file being sent */
	uint64_t file_left; /* file bytes still to send */
	int64_t deadline;   /* next timeout, monotonic ms (INT64_MAX: none) */
	int64_t req_start;  /* when the pending head began to arrive */
	int64_t due;        /* DELAYED: when the held response is due */
	int64_t now;        /* time of the latest event, monotonic ms */
};

/* Sets up a new connection accepted at `now` (monotonic milliseconds).
 * flags: CONN_SENDFILE if the backend can send file ranges. */
void conn_init(struct conn *c, struct server *srv, int64_t now, unsigned flags);

/* Hands received bytes to the connection; len == 0 means the peer closed its
 * side (EOF). Every complete request buffered is answered, in order, before
 * this returns, as far as output limits allow. The bytes are only borrowed:
 * the caller may reuse `data` as soon as the call returns.
 *
 * Every backend here feeds only when conn_want() says READ (io_uring.c arms
 * a receive only then), so the kernel holds what a busy connection's peer
 * sends next and TCP pushes back. Bytes fed at any other time, while the
 * connection is busy sending or holding a /delay answer, are kept,
 * untouched, and answered once it is done; the pending output does not move
 * meanwhile. Past a limit (64 KiB and a head) the connection is dropped: a
 * receive that stays armed (a multishot one drains the socket) would lose a
 * deep pipeline that way. */
void conn_feed(struct conn *c, const char *data, size_t len, int64_t now);

/* Bytes received and kept but not parsed yet. */
static inline size_t conn_input_held(const struct conn *c)
{
	return c->in_len;
}

/* Describes the pending output (see struct conn_out). Only meaningful while
 * conn_want() is CONN_WANT_WRITE or CONN_WANT_CLOSE is not yet reached. */
void conn_output(struct conn *c, struct conn_out *out);

/* Reports that n bytes of what conn_output described were sent (n may be
 * less than offered). Resumes any pipelined requests that were waiting for
 * the output to drain. n == 0 for a file range (sendfile(2) returned 0) means
 * the file ended before the length promised: the connection closes. */
void conn_sent(struct conn *c, size_t n, int64_t now);

/* What the connection wants next (see enum conn_want). */
enum conn_want conn_want(const struct conn *c);

/* The absolute monotonic ms at which conn_timeout() must be called, or
 * INT64_MAX. Idle keep-alive, a slow head, a slow body, a stalled reader and
 * a /delay all show up here. */
static inline int64_t conn_deadline(const struct conn *c)
{
	return c->deadline;
}

/* Called once the deadline has passed: a /delay response is released, an
 * idle connection is closed, a slow request gets 408 and a close. */
void conn_timeout(struct conn *c, int64_t now);

/* Closing in stages (RFC 9112, 9.6). A socket closed while input it has not
 * read is waiting, or still arriving, makes TCP answer with a reset instead
 * of a FIN, and a reset may destroy the last response before the client has
 * read it: the 413 to an upload that is still coming, or the answers to the
 * requests before a "Connection: close" that had more pipelined behind it.
 * So a connection that closes after it dropped input wants SHUTDOWN once its
 * output is out: the backend shuts the sending side (the peer reads the whole
 * answer, then EOF) and calls conn_shut(); the connection then wants READ,
 * throws away what comes, and wants CLOSE at the peer's EOF, or once
 * CONN_LINGER_MS have passed (a deadline as any other). A close with nothing
 * dropped, a kill, and a server stop close at once. */
enum { CONN_LINGER_MS = 2000 };

/* The backend has shut the socket's sending side, as CONN_WANT_SHUTDOWN asked. */
void conn_shut(struct conn *c, int64_t now);

/* Server shutdown: finish what is in flight, answer with Connection: close,
 * and close idle connections at once (conn_want() then says CLOSE). */
void conn_stop(struct conn *c);

/* Releases buffers and files. The socket is the backend's to close. */
void conn_free(struct conn *c);

/* For handlers: queue a complete response. Status line, Server, Date,
 * Content-Length and Connection are written here; `extra` holds further
 * header lines ("Name: value\r\n"...) or is NULL, and content_type may be
 * NULL for none. For HEAD the body is left out but Content-Length still
 * describes it. */
void conn_respond(struct conn *c, int status, const char *content_type, const char *extra,
                  const void *body, size_t len);

/* For handlers: queue a response (200, or 206 for a range) whose body is
 * `len` bytes of the open file fd from byte `first` (the file is taken
 * over: closed by the connection); `extra` as for conn_respond(). */
void conn_respond_file(struct conn *c, int status, const char *content_type, const char *extra,
                       int fd, uint64_t first, uint64_t len);

/* For handlers: answer later. The response is built by the handler's finish
 * function again once `ms` milliseconds have passed. */
void conn_delay(struct conn *c, uint32_t ms);

#endif
