/*
 * epoll.c - a readiness event loop on Linux epoll, edge-triggered.
 *
 * What it teaches: the reactor pattern with the cheapest bookkeeping Linux
 * offers. Each socket is registered once, for EPOLLIN | EPOLLOUT | EPOLLET,
 * and never modified again: zero epoll_ctl() calls per request.
 *
 * Why edge-triggered: level-triggered, a writable socket (almost always)
 * would be reported on every epoll_wait(), so the loop would have to switch
 * EPOLLOUT on and off with epoll_ctl(MOD) around every blocked write.
 * Edge-triggering reports a change once, so the rule is instead: after an
 * event, read (or write) until the kernel says EAGAIN, because no new event
 * comes for bytes already there. A shortcut keeps the rule cheap, safe since
 * every packet arriving after a read raises a new edge: a read shorter than
 * the buffer means the socket is drained (unless the peer hung up,
 * EPOLLRDHUP: then read on to the EOF). So a keep-alive request costs one
 * recv() and one send(), not a second recv() that could only say EAGAIN.
 *
 * Needs: Linux 2.6.17+ (EPOLLRDHUP); sendfile(2) for static files.
 * Run:   bin/server-epoll --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,   /* one per loop, shared by all connections */
	MAX_EVENTS = 256,       /* events taken per epoll_wait() */
	MAX_WAIT_MS = 1000,     /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100 /* pause accepting when out of descriptors */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;
};

/* Every connection has a deadline: the heap doubles as their list (shutdown). */
struct loop {
	struct worker *w;
	int ep;
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
	close(cl->fd); /* also removes it from the epoll set */
	conn_free(&cl->conn);
	free(cl);
	l->nclients--;
	server_conn_closed(l->w->srv);
}

/* Puts the connection's deadline in the heap, lazily. A busy keep-alive
 * connection pushes its idle deadline a little later with every request;
 * moving its node down the heap each time costs a cache miss per level, on
 * every request. Instead, a deadline that only moved later leaves the old
 * key in place: the heap holds a lower bound of each deadline, so the loop
 * wakes no later than it must, perhaps earlier, and expire_timers() moves a
 * key that came up early then: once per idle timeout, not per request. An
 * earlier deadline (a /delay, a slow head) is placed at once. */
static void client_arm(struct loop *l, struct client *cl)
{
	int64_t when = conn_deadline(&cl->conn);

	if (cl->timer.slot != 0 && when >= cl->timer.when && cl->timer.when > l->now)
		return; /* later (or the same): the early key stands, see above */
	timer_set(&l->timers, &cl->timer, when);
}

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	/* LAB 3 BEGIN: which events, edge- or level-triggered? This stub works, but read */
	/* LAB 3 HINT: the file header and measure it: what does a writable socket cost? */
	/* LAB 3 STUB: struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT }; */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
	/* LAB 3 END */

	ev.data.ptr = cl;
	if (cl == NULL || epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(cl);
		close(fd);
		server_conn_closed(l->w->srv);
		return;
	}
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	l->nclients++;
	client_arm(l, cl);
}

/* Sends what the connection has queued. Returns bytes sent, or -errno. */
static ssize_t client_send(struct client *cl)
{
	struct conn_out out;
	ssize_t n;

	conn_output(&cl->conn, &out);
	if (out.len == 0 && out.file_len == 0)
		return 0; /* conn_output found the file gone: conn_want() says CLOSE */
	if (out.len > 0)
		n = send(cl->fd, out.data, out.len, MSG_NOSIGNAL);
	else
		n = sendfile(cl->fd, out.file_fd, &(off_t){ (off_t)out.file_off }, out.file_len);
	return n >= 0 ? n : -errno;
}

/* Does what the connection wants until the socket would block. `hup` says the
 * peer hung up, so a short read does not prove the socket drained. */
static void client_drive(struct loop *l, struct client *cl, bool hup)
{
	/* LAB 3 BEGIN: loop on conn_want(): recv + conn_feed, client_send + conn_sent, */
	/* LAB 3 HINT: until EAGAIN (then wait for the next edge), WAIT, or CLOSE. */
	/* LAB 3 HINT: Whenever you stop, re-arm the timer with conn_deadline(). */
	/* LAB 3 STUB: (void)hup; */
	/* LAB 3 STUB: (void)client_send; */
	/* LAB 3 STUB: client_close(l, cl); */
	bool drained = false; /* a short read emptied the socket (see file header) */
	ssize_t n;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			if (drained)
				goto wait;
			n = recv(cl->fd, l->buf, sizeof(l->buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				goto wait;
			if (n < 0)
				n = 0; /* ECONNRESET and friends: treat as EOF */
			conn_feed(&cl->conn, l->buf, (size_t)n, l->now);
			drained = n > 0 && (size_t)n < sizeof(l->buf) && !hup;
			continue;
		case CONN_WANT_WRITE:
			n = client_send(cl);
			if (n == -EINTR)
				continue;
			if (n == -EAGAIN)
				goto wait; /* EPOLLOUT's edge will call us back */
			if (n < 0) {
				client_close(l, cl);
				return;
			}
			conn_sent(&cl->conn, (size_t)n, l->now);
			continue;
		case CONN_WANT_WAIT:
			goto wait;
		case CONN_WANT_SHUTDOWN: /* a lingering close (conn.h) */
			shutdown(cl->fd, SHUT_WR);
			conn_shut(&cl->conn, l->now);
			continue;
		case CONN_WANT_CLOSE:
			client_close(l, cl);
			return;
		}
	}
wait:
	client_arm(l, cl);
	/* LAB 3 END */
}

/* Accepts until EAGAIN. Out of descriptors, it backs off instead of spinning:
 * the pending connections stay in the backlog until accept_again. */
static void accept_all(struct loop *l)
{
	for (;;) {
		int fd = net_accept(l->w->listen_fd, true);
		if (fd < 0) {
			if (net_accept_retry(-fd))
				continue;
			if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM)
				l->accept_again = l->now + ACCEPT_BACKOFF_MS;
			return;
		}
		if (!server_conn_admit(l->w->srv)) {
			net_refuse(fd);
			continue;
		}
		client_open(l, fd);
	}
}

/* Calls conn_timeout() for every connection whose deadline has passed; a key
 * that came up early (see client_arm()) moves to the real deadline instead. */
static void expire_timers(struct loop *l)
{
	/* LAB 5 BEGIN: pop every due deadline: conn_timeout(), then client_drive() it */
	/* LAB 5 STUB: (void)l; */
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CLIENT_OF(t);
		if (conn_deadline(&cl->conn) > l->now) {
			client_arm(l, cl); /* an early key: not due yet */
			continue;
		}
		conn_timeout(&cl->conn, l->now);
		client_drive(l, cl, true);
	}
	/* LAB 5 END */
}

/* Shutdown: stop accepting, and tell every connection to finish up. */
static void begin_stop(struct loop *l)
{
	size_t n = l->timers.len;
	struct client **all = malloc(n * sizeof(*all) + 1);

	epoll_ctl(l->ep, EPOLL_CTL_DEL, l->w->listen_fd, NULL);
	for (size_t i = 0; all != NULL && i < n; i++)
		all[i] = CLIENT_OF(l->timers.items[i]);
	for (size_t i = 0; all != NULL && i < n; i++) {
		conn_stop(&all[i]->conn);
		client_drive(l, all[i], true);
	}
	free(all);
}

static int wait_ms(struct loop *l)
{
	/* LAB 5 BEGIN: sleep no longer than until the earliest deadline (timer_wait_ms) */
	/* LAB 5 STUB: int ms = MAX_WAIT_MS; */
	int ms = timer_wait_ms(&l->timers, l->now, MAX_WAIT_MS);
	/* LAB 5 END */

	if (l->accept_again != 0 && l->accept_again - l->now < ms)
		ms = l->accept_again > l->now ? (int)(l->accept_again - l->now) : 0;
	return ms;
}

static int epoll_run(struct worker *w)
{
	/* the listener is the one event without a client: data.ptr NULL */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, events[MAX_EVENTS];
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	l->now = clock_ms();
	if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || net_set_nonblock(w->listen_fd, true) ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, w->listen_fd, &ev) != 0) {
		int err = -errno;
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
				client_drive(l, cl,
				             events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
		}
		if (l->accept_again != 0 && l->now >= l->accept_again && give_up == 0) {
			l->accept_again = 0;
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
	close(l->ep);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "epoll",
	.run = epoll_run,
};
