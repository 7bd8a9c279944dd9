/*
 * backend.h - the contract between an I/O model and the rest of the server.
 *
 * Each file in backends/ defines exactly one `const struct backend backend`
 * and is linked with common/ into its own binary, bin/server-<name>. The
 * backend owns the loop, the wait primitive and the buffers; common/ owns
 * HTTP (conn.h explains the driving loop a backend implements).
 *
 * The shape every backend file follows, in this order, so that two of them
 * diff cleanly: file header (what it teaches, what it needs), the
 * per-connection struct, the per-loop struct, conn_open, conn_close,
 * conn_drive (act on conn_want until the socket would block), the accept
 * path, the timer pass, the loop (`run`), and the `backend` definition.
 */
#ifndef BACKEND_H
#define BACKEND_H

#include "../common/server.h"

/* One event loop's share of the server: run() is called once per worker, each
 * on its own thread, each with its own listening socket (SO_REUSEPORT). */
struct worker {
	struct server *srv;
	int id;        /* 0 .. workers-1 */
	int listen_fd; /* blocking; a backend makes it non-blocking if it wants */
};

struct backend {
	/* The name in "backend=NAME" and in bin/server-NAME. */
	const char *name;

	/* Optional. Checks, before anything is printed, that this I/O model
	 * works here (io_uring can be disabled by a sysctl or a seccomp
	 * filter). Returns 0, or -errno; the binary then says so on stderr
	 * and exits with EXIT_UNAVAILABLE (3). NULL means always available. */
	int (*probe)(void);

	/* The loop. Accepts on w->listen_fd and serves every connection it
	 * accepts until server_stopping(w->srv) becomes true; then stops
	 * accepting, calls conn_stop() on each connection, keeps serving until
	 * they have all closed or SERVER_GRACE_MS has passed, closes what is
	 * left and returns 0. main() wakes a sleeping loop at that moment by
	 * shutting the listening socket down (accept fails with EINVAL, and
	 * readiness APIs report it readable). Returns -errno if the loop could
	 * not run at all. Calls server_conn_admit() for every accepted
	 * connection (net_refuse() the ones it declines) and
	 * server_conn_closed() for every admitted one that ends. */
	int (*run)(struct worker *w);
};

extern const struct backend backend;

#endif
