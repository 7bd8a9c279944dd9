/*
 * server.h - the server as a whole: configuration, shared state, counters,
 * and the lifecycle every backend binary shares (flags, listeners, workers,
 * signals, the "listening on" line).
 *
 * main() lives in server.c. It parses the flags, opens one listening socket
 * per worker (SO_REUSEPORT, so the kernel spreads connections), prints the
 * ready line, and runs the backend's loop once per worker thread. A signal
 * sets `stopping` and shuts the listeners down, which wakes every loop.
 */
#ifndef SERVER_H
#define SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

/* Exit codes of every server binary. */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_RUNTIME = 1, /* could not listen, out of memory, ... */
	EXIT_BAD_FLAGS = 2,       /* bad command line */
	EXIT_UNAVAILABLE = 3,     /* the I/O model is not available here */
};

struct server_config {
	const char *host;    /* --host, default 127.0.0.1 */
	int port;            /* --port, default 8080; 0 picks a free port */
	const char *root;    /* --root, default the sample site */
	int workers;         /* --workers, default 1 */
	int idle_timeout_ms; /* --idle-timeout (seconds on the command line) */
	int max_conns;       /* --max-conns per server, default 10000 */
};

/* Counters behind GET /stats. Relaxed atomics: exact totals, no ordering. */
struct server_stats {
	atomic_uint_fast64_t accepted;  /* connections accepted */
	atomic_int_fast64_t active;     /* connections open now */
	atomic_uint_fast64_t rejected;  /* refused: --max-conns reached */
	atomic_uint_fast64_t requests;  /* responses started */
	atomic_uint_fast64_t status[6]; /* responses by class: [2] is 2xx ... */
	atomic_uint_fast64_t timeouts;  /* connections closed by a deadline */
	atomic_uint_fast64_t bytes_in;
	atomic_uint_fast64_t bytes_out;
};

struct router;

struct server {
	struct server_config cfg;
	const char *backend; /* the backend's name */
	int root_fd;         /* --root, opened as a directory */
	char *root_path;     /* --root, resolved (realpath) */
	struct router *router;
	struct server_stats stats;
	atomic_bool stopping; /* set once by a signal */
	int64_t started_ms;
};

#define STAT_ADD(srv, field, n) \
	atomic_fetch_add_explicit(&(srv)->stats.field, (n), memory_order_relaxed)

static inline bool server_stopping(struct server *srv)
{
	return atomic_load_explicit(&srv->stopping, memory_order_relaxed);
}

/* How long in-flight work may take after a stop signal before the process
 * exits anyway. */
enum { SERVER_GRACE_MS = 3000 };

/* Admission: returns true and counts the connection if the server is below
 * --max-conns, else counts a rejection and returns false (the caller closes
 * the socket). Every accept path calls this, and server_conn_closed() when
 * an admitted connection ends. */
bool server_conn_admit(struct server *srv);
void server_conn_closed(struct server *srv);

#endif
