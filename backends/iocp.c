/*
 * iocp.c - a completion-based event loop on a Windows I/O completion port.
 *
 * What it teaches: the proactor pattern, Windows' sibling of io_uring.c. The
 * loop starts operations (AcceptEx, WSARecv, WSASend, TransmitFile, the
 * Windows sendfile) and collects "this one finished, n bytes" from the port
 * with GetQueuedCompletionStatusEx. A buffer handed to an operation is the
 * kernel's until its completion comes back, so a connection has at most ONE
 * operation in flight and conn.h is called only between operations; a
 * deadline (or a stop, for a read) meanwhile cancels it with CancelIoEx,
 * and client_drive() applies it once the completion is back. Reads are
 * "zero-byte receives": the WSARecv completes when data (or EOF) is there,
 * then a non-blocking recv() copies it into the loop's one buffer, so an
 * idle connection pins no buffer in the kernel (conn.h's memory rule).
 * Fairness: a completion is one unit of work (a recv of at most READ_BUF
 * bytes, a send of at most FILE_CHUNK); then the connection queues again.
 *
 * --workers N: Windows has no SO_REUSEPORT and a socket belongs to one port,
 * so worker 0 alone accepts (ACCEPT_POOL sockets wait in AcceptEx) and hands
 * the connections round robin to the workers' ports (itself included) with
 * PostQueuedCompletionStatus.
 *
 * Needs: Windows 8+ or Wine 6+; ws2_32, mswsock (AcceptEx, TransmitFile).
 * Run:   bin/server-iocp.exe --port 8080 (under Wine: wine bin/server-iocp.exe)
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>

#include <errno.h>
#include <io.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,    /* one per loop, shared by all connections */
	MAX_EVENTS = 256,        /* completions taken per wait */
	MAX_WAIT_MS = 1000,      /* wake at least this often to notice a stop */
	ACCEPT_POOL = 16,        /* AcceptEx operations kept waiting */
	FILE_CHUNK = 256 * 1024, /* most bytes one send or TransmitFile takes */
};

enum { KEY_CLIENT, KEY_ACCEPT, KEY_HANDOFF }; /* what a completion is about */

/* A connection (or, until accepted, an acceptor waiting in AcceptEx). Every
 * completion's OVERLAPPED is the `ov` of one. */
struct client {
	union {
		struct conn conn; /* the HTTP state machine (common/conn.h) */
		char addrs[2 * (sizeof(struct sockaddr_in6) + 16)]; /* AcceptEx's */
	};
	struct timer_node timer; /* its deadline in the loop's heap */
	SOCKET s;
	OVERLAPPED ov; /* the operation in flight: the kernel's until it completes */
	bool busy;     /* an operation is in flight */
};

/* Each connection has a deadline: the timer heap lists them all. */
struct loop {
	struct worker *w;
	HANDLE port;
	SOCKET listener;
	WSAPROTOCOL_INFOW info; /* the listener's, for the acceptors' sockets */
	struct timer_heap timers;
	int naccepting;     /* acceptors with an AcceptEx pending (worker 0) */
	unsigned next_loop; /* worker 0: where the next connection goes */
	int64_t now;
	char buf[READ_BUF];
};

static _Atomic(HANDLE) ports[256]; /* each worker's, for hand-offs (<= MAX_WORKERS) */

/* Closes a connection; one with I/O in flight (only at exit) is not freed. */
static void client_close(struct loop *l, struct client *cl)
{
	timer_remove(&l->timers, &cl->timer);
	closesocket(cl->s);
	if (cl->busy)
		return;
	conn_free(&cl->conn);
	free(cl);
	server_conn_closed(l->w->srv);
}

static void client_drive(struct loop *l, struct client *cl);

/* Takes over an accepted and admitted socket, cl->s. */
static void client_open(struct loop *l, struct client *cl)
{
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	setsockopt(cl->s, IPPROTO_TCP, TCP_NODELAY, (const char *)&(BOOL){ TRUE }, sizeof(BOOL));
	net_set_nonblock((int)cl->s, true); /* for the recv() after a zero-byte read */
	if (CreateIoCompletionPort((HANDLE)cl->s, l->port, KEY_CLIENT, 0) == NULL)
		client_close(l, cl);
	else
		client_drive(l, cl);
}

/* Starts a zero-byte WSARecv, or a send of at most FILE_CHUNK bytes. Returns
 * whether it is in flight (even an immediate success is reported on the port). */
static bool client_post(struct client *cl, enum conn_want want)
{
	WSABUF b;
	struct conn_out out;
	BOOL done;

	conn_output(&cl->conn, &out); /* READ: none; WRITE: bytes or a file range */
	cl->ov = (OVERLAPPED){ .Offset = (DWORD)out.file_off,
		               .OffsetHigh = (DWORD)((uint64_t)out.file_off >> 32) };
	b.buf = (char *)(uintptr_t)out.data; /* WSABUF is not const; only read */
	b.len = out.len > FILE_CHUNK ? FILE_CHUNK : (ULONG)out.len;
	if (want == CONN_WANT_READ) /* b is empty: a zero-byte read */
		done = WSARecv(cl->s, &b, 1, NULL, &(DWORD){ 0 }, &cl->ov, NULL) == 0;
	else if (out.len > 0)
		done = WSASend(cl->s, &b, 1, NULL, 0, &cl->ov, NULL) == 0;
	else /* the kernel reads the file at the OVERLAPPED's offset */
		done = TransmitFile(cl->s, (HANDLE)_get_osfhandle(out.file_fd),
		                    out.file_len > FILE_CHUNK ? FILE_CHUNK : (DWORD)out.file_len, 0,
		                    &cl->ov, NULL, 0);
	cl->busy = done || WSAGetLastError() == WSA_IO_PENDING;
	return cl->busy;
}

/* Applies a stop and a passed deadline, then starts the operation the
 * connection wants, or closes it. Only called with nothing in flight. */
static void client_drive(struct loop *l, struct client *cl)
{
	enum conn_want want;

	if (server_stopping(l->w->srv))
		conn_stop(&cl->conn);
	conn_timeout(&cl->conn, l->now); /* does nothing before the deadline */
	want = conn_want(&cl->conn);
	if (want == CONN_WANT_SHUTDOWN) { /* a lingering close (conn.h) */
		shutdown(cl->s, SD_SEND);
		conn_shut(&cl->conn, l->now);
		want = conn_want(&cl->conn);
	}
	/* WAIT sleeps until the deadline; a failed post means the peer is gone */
	if (want == CONN_WANT_CLOSE || (want != CONN_WANT_WAIT && !client_post(cl, want)))
		client_close(l, cl);
	else
		timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* A client's operation completed, or failed; n: bytes sent. Which
 * operation it was, conn_want() still says: conn.h was not called since. */
static void client_complete(struct loop *l, struct client *cl, DWORD n)
{
	cl->busy = false;
	if (conn_want(&cl->conn) == CONN_WANT_READ) {
		int got = recv(cl->s, l->buf, sizeof(l->buf), 0);
		/* got <= 0: EOF or a reset; nothing there (a cancelled read) waits on */
		if (got != SOCKET_ERROR || WSAGetLastError() != WSAEWOULDBLOCK)
			conn_feed(&cl->conn, l->buf, got > 0 ? (size_t)got : 0, l->now);
	} else if ((LONG)cl->ov.Internal >= 0) {
		conn_sent(&cl->conn, n, l->now);
	} else {
		client_close(l, cl); /* a failed or cancelled send: the peer is gone */
		return;
	}
	client_drive(l, cl);
}

/* Tops the pool up to ACCEPT_POOL acceptors, each a fresh socket waiting in
 * AcceptEx. Out of sockets, it stops; the next loop turn tries again. */
static void accept_refill(struct loop *l)
{
	DWORD len = sizeof(struct sockaddr_in6) + 16, got;

	while (l->naccepting < ACCEPT_POOL) {
		struct client *a = calloc(1, sizeof(*a));
		SOCKET s = WSASocketW(l->info.iAddressFamily, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
		                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
		if (a == NULL || s == INVALID_SOCKET ||
		    (!AcceptEx(l->listener, s, a->addrs, 0, len, len, &got, &a->ov) &&
		     WSAGetLastError() != ERROR_IO_PENDING)) {
			if (s != INVALID_SOCKET)
				closesocket(s);
			free(a);
			return;
		}
		a->s = s;
		l->naccepting++;
	}
}

/* An AcceptEx completed: admit the connection and hand it to the next worker
 * in turn (if that is worker 0, or one not running, serve it here). */
static void accept_complete(struct loop *l, struct client *cl)
{
	unsigned to = l->next_loop++ % (unsigned)l->w->srv->cfg.workers;

	l->naccepting--;
	if ((LONG)cl->ov.Internal < 0 ||
	    setsockopt(cl->s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&l->listener,
	               sizeof(l->listener)) != 0 ||
	    !server_conn_admit(l->w->srv)) {
		net_refuse((int)cl->s); /* a cancelled or aborted accept: only closed */
		free(cl);
	} else if (to == 0 ||
	           !PostQueuedCompletionStatus(atomic_load(&ports[to]), 0, KEY_HANDOFF, &cl->ov)) {
		client_open(l, cl);
	}
}

/* Drives every connection whose deadline has passed (client_drive() applies
 * it), or cancels its operation in flight: the completion will drive it. */
static void expire_timers(struct loop *l)
{
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CONTAINING_RECORD(t, struct client, timer);
		if (!cl->busy) {
			client_drive(l, cl);
			continue;
		}
		CancelIoEx((HANDLE)cl->s, &cl->ov);
		timer_set(&l->timers, &cl->timer, l->now + MAX_WAIT_MS); /* should it not take */
	}
}

/* Shutdown (main() has cancelled the AcceptEx operations): an idle
 * connection's read is cancelled so that it closes now; a send may finish,
 * and a /delay (nothing in flight) has its timer. */
static void begin_stop(struct loop *l)
{
	for (size_t i = 0; i < l->timers.len; i++) {
		struct client *cl = CONTAINING_RECORD(l->timers.items[i], struct client, timer);
		if (cl->busy && conn_want(&cl->conn) == CONN_WANT_READ)
			CancelIoEx((HANDLE)cl->s, &cl->ov);
	}
}

/* The loop. A completion's OVERLAPPED holds the operation's NTSTATUS in its
 * Internal field: negative on failure, STATUS_CANCELLED after CancelIoEx. */
static int iocp_run(struct worker *w)
{
	OVERLAPPED_ENTRY e[MAX_EVENTS];
	int len = sizeof(WSAPROTOCOL_INFOW);
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;

	if (l == NULL ||
	    (l->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1)) == NULL) {
		free(l);
		return -ENOMEM;
	}
	l->w = w;
	l->listener = (SOCKET)w->listen_fd;
	if (getsockopt(l->listener, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&l->info, &len) != 0 ||
	    (w->id == 0 && !CreateIoCompletionPort((HANDLE)l->listener, l->port, KEY_ACCEPT, 0))) {
		int err = platform_errno_of(GetLastError()); /* = WSAGetLastError() */
		CloseHandle(l->port);
		free(l);
		return err;
	}
	atomic_store(&ports[w->id], l->port);
	while (give_up == 0 || (l->timers.len > 0 && l->now < give_up)) {
		DWORD ms = (DWORD)timer_wait_ms(&l->timers, l->now, MAX_WAIT_MS);
		ULONG n = 0;
		if (w->id == 0 && give_up == 0)
			accept_refill(l);
		if (!GetQueuedCompletionStatusEx(l->port, e, MAX_EVENTS, &n, ms, FALSE))
			n = 0; /* WAIT_TIMEOUT */
		l->now = clock_ms();
		for (ULONG i = 0; i < n; i++) {
			struct client *cl = CONTAINING_RECORD(e[i].lpOverlapped, struct client, ov);
			if (e[i].lpCompletionKey == KEY_ACCEPT)
				accept_complete(l, cl);
			else if (e[i].lpCompletionKey == KEY_HANDOFF)
				client_open(l, cl); /* accepted by worker 0 */
			else
				client_complete(l, cl, e[i].dwNumberOfBytesTransferred);
		}
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
	}
	while (l->timers.len > 0)
		client_close(l, CONTAINING_RECORD(timer_first(&l->timers), struct client, timer));
	timer_heap_free(&l->timers);
	atomic_store(&ports[w->id], NULL);
	CloseHandle(l->port);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "iocp",
	.run = iocp_run,
};
