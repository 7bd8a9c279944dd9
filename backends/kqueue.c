/*
 * kqueue.c - a readiness event loop on BSD kqueue, with EV_CLEAR.
 *
 * What it teaches: the reactor pattern on the BSD API, next to epoll.c.
 * kqueue registers (descriptor, filter) pairs, and its one system call,
 * kevent(), both applies a list of changes and collects events: a new
 * connection's two registrations (EVFILT_READ and EVFILT_WRITE, EV_CLEAR)
 * ride along with the next wait, and are never changed again.
 *
 * Why EV_CLEAR: it is kqueue's EPOLLET. Level-triggered, a writable socket
 * (almost always) would be reported every turn, so the loop would have to
 * EV_ENABLE/EV_DISABLE EVFILT_WRITE around every blocked write. With it the
 * rule is epoll.c's: after an event, read (or write) until EAGAIN, with the
 * same short-read shortcut, EV_EOF standing in for EPOLLRDHUP.
 *
 * Why one timer: the deadlines live in the loop's heap (common/timer.h); one
 * EVFILT_TIMER is kept armed at or before the earliest. It is re-armed only
 * when an earlier deadline appears (a later one lets it fire early, once),
 * whereas a timer per connection would cost a change per request.
 *
 * Unlike epoll, read and write are separate events, so a connection can
 * appear twice in one batch: it is driven once when the two are adjacent,
 * and a closed one is freed only at the end of the turn.
 * A connection closed before its EV_ADDs were applied (at shutdown) costs an
 * EV_ERROR receipt (EBADF); if a new connection got its number meanwhile,
 * that one's later EV_ADDs win, as changes apply in order.
 *
 * Needs: FreeBSD or macOS (sendfile on both), or Linux through compat/kqueue,
 * this project's kqueue-on-epoll layer (its numbers are labelled emulated).
 * Run:   bin/server-kqueue --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sendfile.h>
#define HAVE_SENDFILE 1
#elif defined(__FreeBSD__) || defined(__APPLE__)
#include <sys/uio.h>
#define HAVE_SENDFILE 1
#else
#define HAVE_SENDFILE 0 /* other BSDs: conn.c sends files from memory */
#endif

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,    /* one per loop, shared by all connections */
	MAX_EVENTS = 256,        /* events taken per kevent() */
	MAX_CHANGES = 512,       /* changes queued for the next kevent() */
	MAX_WAIT_MS = 1000,      /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100, /* pause accepting when out of descriptors */
	TIMER_IDENT = 1          /* the loop's one EVFILT_TIMER */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;                  /* -1 once closed (it then waits on loop.dead) */
	struct client *next_dead;
};

/* Every connection always has a deadline, so the timer heap doubles as the
 * list of open connections (used at shutdown). */
struct loop {
	struct worker *w;
	int kq;
	struct timer_heap timers;
	int nclients;
	int64_t now;
	int64_t accept_again; /* when to retry accept after EMFILE, or 0 */
	int64_t timer_at;     /* when the EVFILT_TIMER fires, or INT64_MAX */
	struct client *dead;  /* closed this turn, freed at its end */
	int nchanges;
	struct kevent changes[MAX_CHANGES];
	char buf[READ_BUF];
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

/* Queues a change for the next kevent(); a full list is applied at once. */
static void change(struct loop *l, uintptr_t ident, int filter, int flags, intptr_t data,
                   void *udata)
{
	if (l->nchanges == MAX_CHANGES) {
		kevent(l->kq, l->changes, l->nchanges, NULL, 0, NULL);
		l->nchanges = 0;
	}
	EV_SET(&l->changes[l->nchanges++], ident, filter, flags, 0, data, udata);
}

static void client_close(struct loop *l, struct client *cl)
{
	timer_remove(&l->timers, &cl->timer);
	close(cl->fd); /* also removes its knotes */
	cl->fd = -1;
	conn_free(&cl->conn);
	cl->next_dead = l->dead;
	l->dead = cl;
	l->nclients--;
	server_conn_closed(l->w->srv);
}

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		close(fd);
		server_conn_closed(l->w->srv);
		return;
	}
	/* LAB 7 BEGIN: queue the two registrations (read and write filters, EV_CLEAR) */
	/* LAB 7 HINT: with change(); they ride along with the next kevent(). */
	/* LAB 7 STUB: free(cl); */
	/* LAB 7 STUB: close(fd); */
	/* LAB 7 STUB: server_conn_closed(l->w->srv); */
	/* LAB 7 STUB: return; */
	change(l, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, cl);
	change(l, (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, cl);
	/* LAB 7 END */
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, l->now, HAVE_SENDFILE ? CONN_SENDFILE : 0);
	l->nclients++;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* Sends up to len bytes of file_fd from off. Returns bytes sent, or -errno.
 * The BSD calls may send part and still fail with EAGAIN: that counts. */
static ssize_t send_file(int sock, int file_fd, int64_t off, size_t len)
{
	off_t pos = (off_t)off, sent = (off_t)len;
#if defined(__linux__)
	int rc = (sent = sendfile(sock, file_fd, &pos, len)) < 0 ? -1 : 0;
#elif defined(__FreeBSD__)
	int rc = sendfile(file_fd, sock, pos, len, NULL, &sent, 0);
#elif defined(__APPLE__)
	int rc = sendfile(file_fd, sock, pos, &sent, NULL, 0);
#else
	int rc = -1; /* never called: CONN_SENDFILE is off */
	errno = ENOSYS, sent = 0, (void)sock, (void)file_fd, (void)pos;
#endif
	return rc == 0 || sent > 0 ? (ssize_t)sent : -errno;
}

/* Sends what the connection has queued. Returns bytes sent, or -errno. */
static ssize_t client_send(struct client *cl)
{
	struct conn_out out;
	ssize_t n;

	conn_output(&cl->conn, &out);
	if (out.len > 0) {
		n = send(cl->fd, out.data, out.len, MSG_NOSIGNAL);
		return n >= 0 ? n : -errno;
	} else if (out.file_len > 0) {
		return send_file(cl->fd, out.file_fd, out.file_off, out.file_len);
	}
	return 0; /* conn_output found the file gone: conn_want() says CLOSE */
}

/* Does what the connection wants until the socket would block. `hup` says the
 * peer hung up, so a short read does not prove the socket drained. */
static void client_drive(struct loop *l, struct client *cl, bool hup)
{
	bool drained = false; /* a short read emptied the socket (see file header) */
	ssize_t n;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			if (drained)
				goto wait; /* even after the answer: no recv() just for EAGAIN */
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
				goto wait; /* EVFILT_WRITE will call us back */
			if (n < 0) {
				client_close(l, cl);
				return;
			}
			conn_sent(&cl->conn, (size_t)n, l->now);
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

/* Calls conn_timeout() for every connection whose deadline has passed. */
static void expire_timers(struct loop *l)
{
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CLIENT_OF(t);
		conn_timeout(&cl->conn, l->now);
		client_drive(l, cl, true);
	}
}

/* Shutdown: stop accepting, and tell every connection to finish up. */
static void begin_stop(struct loop *l)
{
	size_t n = l->timers.len;
	struct client **all = malloc(n * sizeof(*all) + 1);

	change(l, (uintptr_t)l->w->listen_fd, EVFILT_READ, EV_DELETE, 0, NULL);
	for (size_t i = 0; all != NULL && i < n; i++)
		all[i] = CLIENT_OF(l->timers.items[i]);
	for (size_t i = 0; all != NULL && i < n; i++) {
		conn_stop(&all[i]->conn);
		client_drive(l, all[i], true);
	}
	free(all);
}

/* Keeps the loop's EVFILT_TIMER at or before the earliest deadline (see the
 * file header), and frees the clients closed this turn. */
static void end_turn(struct loop *l)
{
	struct timer_node *t = timer_first(&l->timers);
	int64_t when = t != NULL ? t->when : INT64_MAX;

	if (l->accept_again != 0 && l->accept_again < when)
		when = l->accept_again;
	/* LAB 7 BEGIN: re-arm the one-shot EVFILT_TIMER only if `when` is earlier than */
	/* LAB 7 HINT: l->timer_at (the time it fires now); data is ms, at least 1. */
	/* LAB 7 STUB: (void)when; */
	if (when < l->timer_at) {
		change(l, TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ONESHOT,
		       when > l->now ? (intptr_t)(when - l->now) : 1, l);
		l->timer_at = when;
	}
	/* LAB 7 END */
	while (l->dead != NULL) {
		struct client *cl = l->dead;
		l->dead = cl->next_dead;
		free(cl);
	}
}

static int kqueue_run(struct worker *w)
{
	struct kevent events[MAX_EVENTS];
	struct timespec max_wait = { MAX_WAIT_MS / 1000, (MAX_WAIT_MS % 1000) * 1000000 };
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	l->now = clock_ms();
	l->timer_at = INT64_MAX;
	if ((l->kq = kqueue()) < 0 || net_set_nonblock(w->listen_fd, true)) {
		int err = -errno;
		free(l);
		return err;
	}
	/* the listener is the one event without a client */
	change(l, (uintptr_t)w->listen_fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL);
	while (give_up == 0 || (l->nclients > 0 && l->now < give_up)) {
		int n = kevent(l->kq, l->changes, l->nchanges, events, MAX_EVENTS, &max_wait);
		l->nchanges = 0;
		l->now = clock_ms();
		/* LAB 7 BEGIN: handle the n events: a failed change (EV_ERROR), the timer, */
		/* LAB 7 HINT: the listener (udata NULL), or a client, driven once per batch */
		/* LAB 7 HINT: even when its read and write events both came (they are adjacent). */
		/* LAB 7 STUB: (void)events; */
		/* LAB 7 STUB: if (n > 0) */
		/* LAB 7 STUB: 	accept_all(l); */
		for (int i = 0; i < n; i++) {
			struct client *cl = events[i].udata;
			if (events[i].flags & EV_ERROR)
				continue; /* an EV_ADD for a connection already closed */
			if (events[i].filter == EVFILT_TIMER)
				l->timer_at = INT64_MAX; /* expire_timers() does the work */
			else if (cl == NULL)
				accept_all(l);
			else if (i + 1 < n && events[i + 1].udata == cl)
				events[i + 1].flags |= events[i].flags & EV_EOF; /* drive once */
			else if (cl->fd >= 0)
				client_drive(l, cl, events[i].flags & EV_EOF);
		}
		/* LAB 7 END */
		if (l->accept_again != 0 && l->now >= l->accept_again && give_up == 0) {
			l->accept_again = 0;
			accept_all(l);
		}
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
		end_turn(l);
	}
	while (l->timers.len > 0)
		client_close(l, CLIENT_OF(timer_first(&l->timers)));
	end_turn(l);
	timer_heap_free(&l->timers);
	close(l->kq);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "kqueue",
	.run = kqueue_run,
};
