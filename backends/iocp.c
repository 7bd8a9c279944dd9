/*
 * iocp.c - a completion-based event loop on a Windows I/O completion port.
 *
 * What it teaches: the proactor pattern, Windows' sibling of io_uring.c. The
 * loop does not ask "which socket is ready?" but starts operations
 * (AcceptEx, WSARecv, WSASend) and later collects "this one finished, with n
 * bytes" from the port with GetQueuedCompletionStatusEx. Two rules follow:
 * - a buffer handed to an operation belongs to the kernel until the
 *   completion comes back; so each connection has at most ONE operation in
 *   flight, and a timeout or a stop that arrives meanwhile is remembered
 *   (`later`) and applied when the operation completes (after CancelIoEx);
 * - accepting is an operation too: a pool of sockets is created up front and
 *   each waits in an AcceptEx on the listener, so connections arrive as
 *   completions with their socket already made.
 *
 * Reads use the "zero-byte receive": a WSARecv of zero bytes completes when
 * data (or the EOF) arrives, then a non-blocking recv() copies it into the
 * loop's one buffer. An idle connection thus pins no buffer in the kernel,
 * the memory rule of conn.h, at the price of one extra call per read.
 *
 * Fairness: one completion is one unit of work (one recv of at most READ_BUF
 * bytes, or one send of at most FILE_CHUNK), and a connection has one
 * operation in flight, so a busy keep-alive client gets one turn per loop
 * pass and re-queues behind the others, as in io_uring.c.
 *
 * Timers: the wait timeout is the earliest deadline of the timer heap.
 * Static files go out with TransmitFile, the Windows sendfile: the kernel
 * reads the file at the OVERLAPPED's offset and sends it, FILE_CHUNK bytes
 * per operation so that a big download also takes turns. --workers N: Windows has no SO_REUSEPORT, so the
 * workers share one listener; a socket is tied to one completion port, so
 * worker 0 accepts and hands every other connection to the next worker's
 * port (PostQueuedCompletionStatus), round robin.
 *
 * Needs: Windows 8+ or Wine 6+; mswsock (AcceptEx), ws2_32.
 * Run:   bin/server-iocp.exe --port 8080 (under Wine: wine bin/server-iocp.exe)
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>

#include <errno.h>
#include <io.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,    /* one per loop, shared by all connections */
	MAX_EVENTS = 256,        /* completions taken per wait */
	MAX_WAIT_MS = 1000,      /* wake at least this often to notice a stop */
	ACCEPT_POOL = 16,        /* AcceptEx operations kept waiting */
	ACCEPT_BACKOFF_MS = 100, /* pause accepting when out of sockets */
	CANCEL_RETRY_MS = 1000,  /* re-check a connection whose I/O was cancelled */
	FILE_CHUNK = 256 * 1024, /* most bytes one send or TransmitFile takes */
	MAX_LOOPS = 256,         /* = MAX_WORKERS of server.c */
};

/* Completion keys: what a completion is about. Client sockets use the
 * address of their struct client, which is never one of these. */
enum { KEY_ACCEPT = 1, KEY_HANDOFF = 2 };

enum { OP_NONE, OP_RECV, OP_SEND };         /* the operation in flight */
enum { LATER_TIMEOUT = 1, LATER_STOP = 2 }; /* to apply once it completes */

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	SOCKET s;
	OVERLAPPED ov; /* the one operation in flight: owned by the kernel */
	uint8_t op;    /* OP_* */
	uint8_t later; /* LATER_* */
	bool dead;     /* closed while an operation was in flight: free later */
};

/* One AcceptEx waiting on the listener with its pre-created socket. */
struct acceptor {
	OVERLAPPED ov;
	SOCKET s; /* INVALID_SOCKET when no AcceptEx is pending */
	char addrs[2 * (sizeof(struct sockaddr_in6) + 16)]; /* AcceptEx's layout */
};

struct loop {
	struct worker *w;
	HANDLE port;
	SOCKET listener;
	int family;
	LPFN_ACCEPTEX acceptex;
	LPFN_TRANSMITFILE transmitfile;
	struct timer_heap timers;
	int nclients;   /* open, or dead with an operation in flight */
	int naccepting; /* acceptors with an AcceptEx pending */
	int64_t now;
	int64_t accept_again; /* when to retry AcceptEx after a failure, or 0 */
	unsigned next_loop;   /* worker 0: where the next connection goes */
	struct acceptor acc[ACCEPT_POOL];
	char buf[READ_BUF];
};

/* Each worker's completion port, for worker 0's hand-offs. */
static _Atomic(HANDLE) ports[MAX_LOOPS];

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

static void client_free(struct loop *l, struct client *cl)
{
	conn_free(&cl->conn);
	free(cl);
	l->nclients--;
	server_conn_closed(l->w->srv);
}

/* Closing the socket cancels its operation; the struct must outlive the
 * kernel's last write to cl->ov, so it is freed when that completion comes. */
static void client_close(struct loop *l, struct client *cl)
{
	timer_remove(&l->timers, &cl->timer);
	closesocket(cl->s);
	if (cl->op != OP_NONE)
		cl->dead = true;
	else
		client_free(l, cl);
}

static void client_drive(struct loop *l, struct client *cl);

static void client_open(struct loop *l, SOCKET s)
{
	struct client *cl = calloc(1, sizeof(*cl));
	BOOL one = TRUE;

	if (cl == NULL || CreateIoCompletionPort((HANDLE)s, l->port, (ULONG_PTR)cl, 0) == NULL) {
		free(cl);
		closesocket(s);
		server_conn_closed(l->w->srv);
		return;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	net_set_nonblock((int)s, true); /* for the recv() after a zero-byte read */
	cl->s = s;
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	l->nclients++;
	client_drive(l, cl); /* a completion loop starts the first read itself */
}

/* Starts a zero-byte WSARecv. Returns 0 if it is in flight, else -errno. */
static int post_recv(struct client *cl)
{
	WSABUF none = { .len = 0, .buf = NULL };
	DWORD flags = 0;

	memset(&cl->ov, 0, sizeof(cl->ov));
	if (WSARecv(cl->s, &none, 1, NULL, &flags, &cl->ov, NULL) != 0 &&
	    WSAGetLastError() != WSA_IO_PENDING)
		return platform_errno_of((unsigned long)WSAGetLastError());
	cl->op = OP_RECV; /* even an immediate success is reported on the port */
	return 0;
}

/* Starts a TransmitFile of the next FILE_CHUNK bytes of a file range: the
 * kernel reads the file and sends it, at the offset in the OVERLAPPED. */
static BOOL post_file(struct loop *l, struct client *cl, const struct conn_out *out)
{
	HANDLE file = (HANDLE)_get_osfhandle(out->file_fd);
	DWORD n = out->file_len > FILE_CHUNK ? FILE_CHUNK : (DWORD)out->file_len;

	cl->ov.Offset = (DWORD)out->file_off;
	cl->ov.OffsetHigh = (DWORD)((uint64_t)out->file_off >> 32);
	return l->transmitfile(cl->s, file, n, 0, &cl->ov, NULL, 0);
}

/* Starts a WSASend of the pending output, or a TransmitFile of a file range.
 * Returns 0 if it is in flight, 1 if there was nothing to send (ask
 * conn_want again), else -errno. */
static int post_send(struct loop *l, struct client *cl)
{
	struct conn_out out;
	WSABUF b;
	BOOL done;

	conn_output(&cl->conn, &out);
	memset(&cl->ov, 0, sizeof(cl->ov));
	if (out.len > 0) {
		b.buf = (char *)(uintptr_t)out.data; /* WSABUF is not const; only read */
		b.len = out.len > FILE_CHUNK ? FILE_CHUNK : (ULONG)out.len;
		done = WSASend(cl->s, &b, 1, NULL, 0, &cl->ov, NULL) == 0;
	} else if (out.file_len > 0) {
		done = post_file(l, cl, &out);
	} else {
		return 1; /* conn_output found the file gone: conn_want() says CLOSE */
	}
	if (!done && WSAGetLastError() != WSA_IO_PENDING)
		return platform_errno_of((unsigned long)WSAGetLastError());
	cl->op = OP_SEND;
	return 0;
}

/* Starts the next operation the connection wants, or closes it. */
static void client_drive(struct loop *l, struct client *cl)
{
	int rc;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			if (post_recv(cl) == 0)
				goto wait;
			conn_feed(&cl->conn, l->buf, 0, l->now); /* reset: treat as EOF */
			continue;
		case CONN_WANT_WRITE:
			if ((rc = post_send(l, cl)) == 0)
				goto wait;
			if (rc < 0) {
				client_close(l, cl);
				return;
			}
			continue;
		case CONN_WANT_WAIT:
			goto wait;
		case CONN_WANT_CLOSE:
			client_close(l, cl);
			return;
		}
	}
wait:
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* The zero-byte read completed (or was cancelled): take what is there. */
static void client_read(struct loop *l, struct client *cl)
{
	int n = recv(cl->s, l->buf, sizeof(l->buf), 0);

	if (n == SOCKET_ERROR && WSAGetLastError() == WSAEWOULDBLOCK)
		return; /* nothing yet (the read was cancelled): conn_want still READ */
	conn_feed(&cl->conn, l->buf, n > 0 ? (size_t)n : 0, l->now); /* <= 0: EOF */
}

/* One completion of a client's operation. `ok`: it succeeded; `n`: bytes. */
static void client_complete(struct loop *l, struct client *cl, DWORD n, bool ok)
{
	uint8_t op = cl->op;

	cl->op = OP_NONE;
	if (cl->dead) {
		client_free(l, cl);
		return;
	}
	if (op == OP_RECV) {
		client_read(l, cl);
	} else if (!ok) {
		client_close(l, cl); /* a failed send: the peer is gone */
		return;
	} else {
		conn_sent(&cl->conn, n, l->now);
	}
	if (cl->later & LATER_STOP)
		conn_stop(&cl->conn);
	if ((cl->later & LATER_TIMEOUT) && l->now >= conn_deadline(&cl->conn))
		conn_timeout(&cl->conn, l->now);
	cl->later = 0;
	client_drive(l, cl);
}

/* Puts one acceptor to work: a fresh socket waiting in AcceptEx. */
static void accept_post(struct loop *l, struct acceptor *a)
{
	DWORD len = sizeof(struct sockaddr_in6) + 16, got;

	a->s = WSASocketW(l->family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
	                  WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
	if (a->s == INVALID_SOCKET) {
		l->accept_again = l->now + ACCEPT_BACKOFF_MS; /* out of sockets */
		return;
	}
	memset(&a->ov, 0, sizeof(a->ov));
	if (!l->acceptex(l->listener, a->s, a->addrs, 0, len, len, &got, &a->ov) &&
	    WSAGetLastError() != ERROR_IO_PENDING) {
		closesocket(a->s);
		a->s = INVALID_SOCKET;
		l->accept_again = l->now + ACCEPT_BACKOFF_MS;
		return;
	}
	l->naccepting++;
}

/* Sends a new connection to a loop: this one, or round robin among all
 * workers (worker 0 only; a hand-off is a posted completion). */
static void accept_dispatch(struct loop *l, SOCKET s)
{
	int n = l->w->srv->cfg.workers;

	for (int tries = 0; n > 1 && tries < n; tries++) {
		unsigned to = l->next_loop++ % (unsigned)n;
		HANDLE p = atomic_load(&ports[to]);
		if (to == 0)
			break;
		if (p != NULL && PostQueuedCompletionStatus(p, 0, KEY_HANDOFF, (LPOVERLAPPED)s))
			return;
	}
	client_open(l, s);
}

/* An AcceptEx completed: admit the socket, and put the acceptor back. */
static void accept_complete(struct loop *l, struct acceptor *a, bool ok)
{
	SOCKET s = a->s;

	a->s = INVALID_SOCKET;
	l->naccepting--;
	if (!ok) {
		closesocket(s); /* cancelled (shutdown) or an aborted connection */
	} else if (setsockopt(s, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (char *)&l->listener,
	                      sizeof(l->listener)) != 0 ||
	           !server_conn_admit(l->w->srv)) {
		net_refuse((int)s);
	} else {
		accept_dispatch(l, s);
	}
	if (!server_stopping(l->w->srv) && l->accept_again == 0)
		accept_post(l, a);
}

/* Keeps every acceptor busy (after a back-off, or at start). */
static void accept_refill(struct loop *l)
{
	l->accept_again = 0;
	for (int i = 0; i < ACCEPT_POOL && l->accept_again == 0; i++)
		if (l->acc[i].s == INVALID_SOCKET)
			accept_post(l, &l->acc[i]);
}

/* Calls conn_timeout() for every connection whose deadline has passed; one
 * with an operation in flight has it cancelled first (see file header). */
static void expire_timers(struct loop *l)
{
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CLIENT_OF(t);
		if (cl->op != OP_NONE) {
			cl->later |= LATER_TIMEOUT;
			CancelIoEx((HANDLE)cl->s, &cl->ov);
			timer_set(&l->timers, &cl->timer, l->now + CANCEL_RETRY_MS);
			continue;
		}
		conn_timeout(&cl->conn, l->now);
		client_drive(l, cl);
	}
}

/* Shutdown: stop accepting, and tell every connection to finish up. An idle
 * connection's pending read is cancelled so that it can close now. */
static void begin_stop(struct loop *l)
{
	size_t n = l->timers.len;
	struct client **all = malloc(n * sizeof(*all) + 1);

	if (l->w->id == 0)
		CancelIoEx((HANDLE)l->listener, NULL); /* acceptors come back cancelled */
	for (size_t i = 0; all != NULL && i < n; i++)
		all[i] = CLIENT_OF(l->timers.items[i]);
	for (size_t i = 0; all != NULL && i < n; i++) {
		struct client *cl = all[i];
		if (cl->op == OP_NONE) {
			conn_stop(&cl->conn);
			client_drive(l, cl);
			continue;
		}
		cl->later |= LATER_STOP;
		if (cl->op == OP_RECV)
			CancelIoEx((HANDLE)cl->s, &cl->ov);
	}
	free(all);
}

static int wait_ms(struct loop *l)
{
	int ms = timer_wait_ms(&l->timers, l->now, MAX_WAIT_MS);

	if (l->accept_again != 0 && l->accept_again - l->now < ms)
		ms = l->accept_again > l->now ? (int)(l->accept_again - l->now) : 0;
	return ms;
}

/* One completion: an accept, a hand-off from worker 0, or a client's I/O.
 * The OVERLAPPED's Internal field holds the operation's NTSTATUS (negative
 * on failure, STATUS_CANCELLED after CancelIoEx). */
static void dispatch(struct loop *l, const OVERLAPPED_ENTRY *e)
{
	bool ok;

	if (e->lpCompletionKey == KEY_HANDOFF) {
		client_open(l, (SOCKET)e->lpOverlapped); /* not an OVERLAPPED: the socket */
		return;
	}
	ok = (LONG)e->lpOverlapped->Internal >= 0;
	if (e->lpCompletionKey == KEY_ACCEPT)
		accept_complete(l, CONTAINING_RECORD(e->lpOverlapped, struct acceptor, ov), ok);
	else
		client_complete(l, (struct client *)e->lpCompletionKey,
		                e->dwNumberOfBytesTransferred, ok);
}

/* The extension functions of Winsock (AcceptEx, TransmitFile) are not
 * linked: a socket ioctl hands out their addresses. Returns 0 or -errno. */
static int extension(SOCKET s, GUID guid, void *fn, size_t size)
{
	DWORD got;

	if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn, (DWORD)size,
	             &got, NULL, NULL) != 0)
		return platform_errno_of((unsigned long)WSAGetLastError());
	return 0;
}

/* The port, the listener tied to it (worker 0) and the extension functions.
 * Returns 0 or -errno. */
static int loop_open(struct loop *l)
{
	WSAPROTOCOL_INFOW info;
	int len = sizeof(info), rc;

	l->listener = (SOCKET)l->w->listen_fd;
	if ((l->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1)) == NULL)
		return -ENOMEM;
	if (getsockopt(l->listener, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &len) != 0)
		return platform_errno_of((unsigned long)WSAGetLastError());
	if ((rc = extension(l->listener, (GUID)WSAID_ACCEPTEX, &l->acceptex, sizeof(l->acceptex))) <
	            0 ||
	    (rc = extension(l->listener, (GUID)WSAID_TRANSMITFILE, &l->transmitfile,
	                    sizeof(l->transmitfile))) < 0)
		return rc;
	l->family = info.iAddressFamily;
	for (int i = 0; i < ACCEPT_POOL; i++)
		l->acc[i].s = INVALID_SOCKET;
	if (l->w->id == 0 &&
	    CreateIoCompletionPort((HANDLE)l->listener, l->port, KEY_ACCEPT, 0) == NULL)
		return platform_errno_of(GetLastError());
	if (l->w->id < MAX_LOOPS)
		atomic_store(&ports[l->w->id], l->port);
	return 0;
}

static int iocp_run(struct worker *w)
{
	OVERLAPPED_ENTRY events[MAX_EVENTS];
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;
	int rc;

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	l->now = clock_ms();
	if ((rc = loop_open(l)) < 0) {
		if (l->port != NULL)
			CloseHandle(l->port);
		free(l);
		return rc;
	}
	if (w->id == 0)
		accept_refill(l);
	while (give_up == 0 || ((l->nclients > 0 || l->naccepting > 0) && l->now < give_up)) {
		ULONG n = 0;
		if (!GetQueuedCompletionStatusEx(l->port, events, MAX_EVENTS, &n, (DWORD)wait_ms(l),
		                                 FALSE))
			n = 0; /* WAIT_TIMEOUT */
		l->now = clock_ms();
		for (ULONG i = 0; i < n; i++)
			dispatch(l, &events[i]);
		if (l->accept_again != 0 && l->now >= l->accept_again && give_up == 0)
			accept_refill(l);
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
	}
	/* What is left after the grace period is closed; a struct whose
	 * operation never completed is left to the process exit (the kernel
	 * may still write its OVERLAPPED). */
	while (l->timers.len > 0)
		client_close(l, CLIENT_OF(timer_first(&l->timers)));
	timer_heap_free(&l->timers);
	atomic_store(&ports[w->id], NULL);
	if (l->naccepting == 0) {
		CloseHandle(l->port);
		free(l);
	}
	return 0;
}

const struct backend backend = {
	.name = "iocp",
	.run = iocp_run,
};
