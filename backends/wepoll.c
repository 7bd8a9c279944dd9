/*
 * wepoll.c - a readiness event loop on Windows, through the epoll API that
 * compat/wepoll/ emulates over the AFD poll driver; level-triggered.
 *
 * What it teaches: the reactor pattern of epoll.c, carried to Windows. Diff
 * this file against epoll.c: what changes is exactly what Windows changes.
 * - Winsock: SOCKET handles (carried in an int, see common/platform.h),
 *   closesocket(), errors from WSAGetLastError() and never WSAEINTR on a
 *   non-blocking socket, no sendfile (static files reach us as memory chunks
 *   from conn_output()).
 * - Level-triggered, like poll.c: the emulation has no EPOLLET, so interest
 *   follows conn_want(): EPOLLIN for READ, EPOLLOUT for WRITE, nothing for
 *   WAIT. Here an epoll_ctl(MOD) is cheap: it only records the change, and
 *   the next epoll_wait() re-issues the AFD poll (compat/wepoll/wepoll.c).
 * - A socket leaves the set with EPOLL_CTL_DEL before it is closed, because
 *   the emulation learns of a close only at its next wait.
 *
 * Fairness: a ready connection gets at most TURN_OPS reads or sends per loop
 * turn (one read per readiness, as in poll.c); with level-triggering a
 * connection that still has work is simply reported again at the next wait,
 * after every other ready connection has had its turn.
 *
 * Needs: Windows Vista+ or Wine 6+; ws2_32, ntdll.
 * Run:   bin/server-wepoll.exe --port 8080 (under Wine: wine bin/server-wepoll.exe)
 */
#include <winsock2.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "../compat/wepoll/wepoll.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,    /* one per loop, shared by all connections */
	MAX_EVENTS = 256,        /* events taken per epoll_wait() */
	MAX_WAIT_MS = 1000,      /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100, /* pause accepting when out of sockets */
	TURN_OPS = 8             /* reads + sends per connection per loop turn */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;
	uint32_t interest; /* the events registered now */
};

/* Every connection always has a deadline, so the timer heap doubles as the
 * list of open connections (used at shutdown). */
struct loop {
	struct worker *w;
	epoll_t ep;
	struct timer_heap timers;
	int nclients;
	int64_t now;
	int64_t accept_again; /* when to retry accept after EMFILE, or 0 */
	char buf[READ_BUF];
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

static void client_close(struct loop *l, struct client *cl)
{
	timer_remove(&l->timers, &cl->timer);
	epoll_ctl(l->ep, EPOLL_CTL_DEL, (SOCKET)cl->fd, NULL);
	closesocket((SOCKET)cl->fd);
	conn_free(&cl->conn);
	free(cl);
	l->nclients--;
	server_conn_closed(l->w->srv);
}

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };

	ev.data.ptr = cl;
	if (cl == NULL || epoll_ctl(l->ep, EPOLL_CTL_ADD, (SOCKET)fd, &ev) != 0) {
		free(cl);
		closesocket((SOCKET)fd);
		server_conn_closed(l->w->srv);
		return;
	}
	cl->fd = fd;
	cl->interest = ev.events;
	conn_init(&cl->conn, l->w->srv, l->now, 0);
	l->nclients++;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* Sends what the connection has queued. Returns bytes sent, or -errno. */
static int client_send(struct client *cl)
{
	struct conn_out out;
	int n;

	conn_output(&cl->conn, &out);
	if (out.len == 0)
		return 0; /* conn_output found the file gone: conn_want() says CLOSE */
	n = send((SOCKET)cl->fd, out.data, out.len > INT_MAX ? INT_MAX : (int)out.len, 0);
	return n >= 0 ? n : platform_errno_of((unsigned long)WSAGetLastError());
}

/* Registers the interest that conn_want() implies, if it changed. */
static void client_interest(struct loop *l, struct client *cl)
{
	enum conn_want want = conn_want(&cl->conn);
	struct epoll_event ev = { .events = want == CONN_WANT_READ    ? EPOLLIN | EPOLLRDHUP
		                            : want == CONN_WANT_WRITE ? EPOLLOUT
		                                                      : 0 };

	ev.data.ptr = cl;
	if (ev.events != cl->interest && epoll_ctl(l->ep, EPOLL_CTL_MOD, (SOCKET)cl->fd, &ev) == 0)
		cl->interest = ev.events;
}

/* Does what the connection wants until the socket would block or its turn
 * is used up (TURN_OPS), then registers the interest conn_want() implies. */
static void client_drive(struct loop *l, struct client *cl)
{
	int n;

	for (int ops = 0; ops < TURN_OPS; ops++) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			n = recv((SOCKET)cl->fd, l->buf, sizeof(l->buf), 0);
			if (n < 0 && WSAGetLastError() == WSAEWOULDBLOCK)
				goto wait;
			if (n < 0)
				n = 0; /* WSAECONNRESET and friends: treat as EOF */
			conn_feed(&cl->conn, l->buf, (size_t)n, l->now);
			if (n > 0 && conn_want(&cl->conn) == CONN_WANT_READ)
				goto wait; /* one read per readiness: the next wait says if more */
			continue;
		case CONN_WANT_WRITE:
			n = client_send(cl);
			if (n == -EAGAIN)
				goto wait; /* EPOLLOUT will call us back */
			if (n < 0) {
				client_close(l, cl);
				return;
			}
			conn_sent(&cl->conn, (size_t)n, l->now);
			continue;
		case CONN_WANT_WAIT:
			goto wait;
		case CONN_WANT_SHUTDOWN: /* a lingering close (conn.h) */
			shutdown((SOCKET)cl->fd, SD_SEND);
			conn_shut(&cl->conn, l->now);
			continue;
		case CONN_WANT_CLOSE:
			client_close(l, cl);
			return;
		}
	}
	if (conn_want(&cl->conn) == CONN_WANT_CLOSE) {
		client_close(l, cl);
		return;
	}
wait:
	/* Interest follows the want; WAIT listens for nothing, only the timer. */
	client_interest(l, cl);
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* Sets the listener's interest: EPOLLIN, or 0 while accepting is paused
 * (level-triggered, a ready listener left in the set would spin the loop). */
static void listener_interest(struct loop *l, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	ev.data.ptr = NULL; /* the listener is the one event without a client */
	epoll_ctl(l->ep, EPOLL_CTL_MOD, (SOCKET)l->w->listen_fd, &ev);
}

/* Accepts until EAGAIN. Out of sockets, it backs off instead of spinning:
 * the pending connections stay in the backlog until accept_again. */
static void accept_all(struct loop *l)
{
	for (;;) {
		int fd = net_accept(l->w->listen_fd, true);
		if (fd < 0) {
			if (net_accept_retry(-fd))
				continue;
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
				l->accept_again = l->now + ACCEPT_BACKOFF_MS;
				listener_interest(l, 0);
			}
			return;
		}
		if (!server_conn_admit(l->w->srv)) {
			net_refuse(fd);
			continue;
		}
		client_open(l, fd);
	}
}

/* Calls conn_timeout() for every connection whose deadline has passed. */
static void expire_timers(struct loop *l)
{
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CLIENT_OF(t);
		conn_timeout(&cl->conn, l->now);
		client_drive(l, cl);
	}
}

/* Shutdown: stop accepting, and tell every connection to finish up. */
static void begin_stop(struct loop *l)
{
	size_t n = l->timers.len;
	struct client **all = malloc(n * sizeof(*all) + 1);

	epoll_ctl(l->ep, EPOLL_CTL_DEL, (SOCKET)l->w->listen_fd, NULL);
	for (size_t i = 0; all != NULL && i < n; i++)
		all[i] = CLIENT_OF(l->timers.items[i]);
	for (size_t i = 0; all != NULL && i < n; i++) {
		conn_stop(&all[i]->conn);
		client_drive(l, all[i]);
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

static int wepoll_run(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN }, events[MAX_EVENTS];
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	l->now = clock_ms();
	ev.data.ptr = NULL; /* the listener is the one event without a client */
	if ((l->ep = epoll_create(1)) == NULL || net_set_nonblock(w->listen_fd, true) ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, (SOCKET)w->listen_fd, &ev) != 0) {
		int err = -errno;
		if (l->ep != NULL)
			epoll_close(l->ep);
		free(l);
		return err;
	}
	while (give_up == 0 || (l->nclients > 0 && l->now < give_up)) {
		int n = epoll_wait(l->ep, events, MAX_EVENTS, wait_ms(l));
		l->now = clock_ms();
		for (int i = 0; i < n; i++) {
			struct client *cl = events[i].data.ptr;
			if (cl == NULL)
				accept_all(l);
			else
				client_drive(l, cl);
		}
		if (l->accept_again != 0 && l->now >= l->accept_again && give_up == 0) {
			l->accept_again = 0;
			listener_interest(l, EPOLLIN);
			accept_all(l);
		}
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
	}
	while (l->timers.len > 0)
		client_close(l, CLIENT_OF(timer_first(&l->timers)));
	timer_heap_free(&l->timers);
	epoll_close(l->ep);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "wepoll",
	.run = wepoll_run,
};
