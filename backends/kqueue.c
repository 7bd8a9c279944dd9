/*
 * kqueue.c - a readiness event loop on BSD kqueue, with EV_CLEAR.
 *
 * What it teaches: epoll.c's reactor on the BSD API. kevent() applies a list
 * of changes and collects events in one call: a new connection's EVFILT_READ
 * and EVFILT_WRITE ride along with the next wait. EV_CLEAR is kqueue's EPOLLET
 * (EV_EOF its EPOLLRDHUP), and one EVFILT_TIMER, re-armed only for an earlier
 * deadline, serves the whole heap. labs/lab7-portability tells the rest.
 *
 * Needs: FreeBSD, macOS, or Linux through compat/kqueue (numbers: emulated).
 * Run:   bin/server-kqueue --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sendfile.h>
#define HAVE_SENDFILE 1
#elif defined(__FreeBSD__) || defined(__APPLE__)
#define HAVE_SENDFILE 1 /* sendfile() from <sys/socket.h> and <sys/uio.h> */
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
	ACCEPT_BACKOFF_MS = 100, /* pause accepting when out of descriptors */
	TIMER_IDENT = 1          /* the loop's one EVFILT_TIMER */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;
};

/* Every connection has a deadline: the timer heap is the list of them all. */
struct loop {
	struct worker *w;
	int kq;
	struct timer_heap timers;
	int64_t now;
	int64_t accept_again; /* when to retry accept after EMFILE, or INT64_MAX */
	int64_t timer_at;     /* when the EVFILT_TIMER fires, or INT64_MAX */
	int nchanges, nevents;
	struct kevent changes[MAX_CHANGES];
	struct kevent events[MAX_EVENTS]; /* the batch kevent() returned */
	char buf[READ_BUF];
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

/* Queues a change for the next kevent(); a full list is applied at once. */
static void change(struct loop *l, uintptr_t id, int filter, int flags, intptr_t data, void *udata)
{
	if (l->nchanges == MAX_CHANGES) {
		kevent(l->kq, l->changes, l->nchanges, NULL, 0, NULL);
		l->nchanges = 0;
	}
	EV_SET(&l->changes[l->nchanges++], id, filter, flags, 0, data, udata);
}

/* Its other event may be further on in the batch: skipped, marked EV_ERROR. */
static void client_close(struct loop *l, struct client *cl)
{
	for (int i = 0; i < l->nevents; i++)
		if (l->events[i].udata == cl)
			l->events[i].flags |= EV_ERROR;
	timer_remove(&l->timers, &cl->timer);
	close(cl->fd); /* also removes its knotes */
	conn_free(&cl->conn);
	free(cl);
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
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, l->now, HAVE_SENDFILE ? CONN_SENDFILE : 0);
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
	/* LAB 7 BEGIN: queue the read and write registrations (EV_CLEAR) with change() */
	/* LAB 7 STUB: client_close(l, cl); */
	change(l, (uintptr_t)fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, cl);
	change(l, (uintptr_t)fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, cl);
	/* LAB 7 END */
}

/* Sends what the connection has queued. Returns bytes sent, or -errno. */
static ssize_t client_send(struct client *cl)
{
	struct conn_out out;
	ssize_t n;

	conn_output(&cl->conn, &out);
	if (out.len > 0) {
		n = send(cl->fd, out.data, out.len, MSG_NOSIGNAL);
	} else if (out.file_len > 0) {
		off_t off = (off_t)out.file_off, sent = (off_t)out.file_len;
#if defined(__linux__)
		n = sent = sendfile(cl->fd, out.file_fd, &off, out.file_len);
#elif defined(__FreeBSD__)
		n = sendfile(out.file_fd, cl->fd, off, out.file_len, NULL, &sent, 0);
#elif defined(__APPLE__)
		n = sendfile(out.file_fd, cl->fd, off, &sent, NULL, 0);
#else
		n = -1, sent = 0, errno = ENOSYS, (void)off; /* never: no CONN_SENDFILE */
#endif
		n = n == 0 || sent > 0 ? (ssize_t)sent : -1; /* BSD: a part sent counts */
	} else {
		return 0; /* conn_output found the file gone: conn_want() says CLOSE */
	}
	return n >= 0 ? n : -errno;
}

/* As in epoll.c, until the socket would block; `hup`: a short read proves nothing. */
static void client_drive(struct loop *l, struct client *cl, bool hup)
{
	bool drained = false; /* a short read emptied the socket (epoll.c's header) */
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
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* Accepts until EAGAIN; out of descriptors, it leaves the backlog until accept_again. */
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

/* The timer pass: conn_timeout() where due, then the EVFILT_TIMER re-armed. */
static void expire_timers(struct loop *l)
{
	struct timer_node *t;

	while ((t = timer_first(&l->timers)) != NULL && t->when <= l->now) {
		struct client *cl = CLIENT_OF(t);
		conn_timeout(&cl->conn, l->now);
		client_drive(l, cl, true);
	}
	int64_t when = t != NULL && t->when < l->accept_again ? t->when : l->accept_again;
	/* LAB 7 BEGIN: re-arm the one-shot timer if `when` < l->timer_at; data: ms, at least 1 */
	/* LAB 7 STUB: (void)when; */
	if (when < l->timer_at) {
		change(l, TIMER_IDENT, EVFILT_TIMER, EV_ADD | EV_ONESHOT,
		       when > l->now ? (intptr_t)(when - l->now) : 1, l);
		l->timer_at = when;
	}
	/* LAB 7 END */
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

static int kqueue_run(struct worker *w)
{
	struct timespec tick = { 1, 0 }; /* wake at least once a second to notice a stop */
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;

	if (l == NULL || (l->kq = kqueue()) < 0 || net_set_nonblock(w->listen_fd, true)) {
		int err = l == NULL ? -ENOMEM : -errno;
		free(l);
		return err;
	}
	l->w = w;
	l->timer_at = l->accept_again = INT64_MAX;
	change(l, (uintptr_t)w->listen_fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, NULL); /* no client */
	while (give_up == 0 || (l->timers.len > 0 && l->now < give_up)) {
		l->nevents = kevent(l->kq, l->changes, l->nchanges, l->events, MAX_EVENTS, &tick);
		l->nchanges = 0;
		l->now = clock_ms();
		/* LAB 7 BEGIN: each event: EV_ERROR, the timer, the listener (udata NULL) or a */
		/* LAB 7 HINT: client, driven once if its two events are adjacent in the batch. */
		/* LAB 7 STUB: if (l->nevents > 0) */
		/* LAB 7 STUB: 	accept_all(l); */
		for (int i = 0; i < l->nevents; i++) {
			struct kevent *ev = &l->events[i];
			struct client *cl = ev->udata;
			if (ev->flags & EV_ERROR)
				continue; /* a failed EV_ADD, or see client_close() */
			if (ev->filter == EVFILT_TIMER)
				l->timer_at = INT64_MAX; /* expire_timers() does the work */
			else if (cl == NULL)
				accept_all(l);
			else if (i + 1 < l->nevents && ev[1].udata == cl)
				ev[1].flags |= ev->flags & EV_EOF; /* its two events: drive once */
			else
				client_drive(l, cl, ev->flags & EV_EOF);
		}
		/* LAB 7 END */
		if (l->now >= l->accept_again && give_up == 0) {
			l->accept_again = INT64_MAX;
			accept_all(l);
		}
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
		expire_timers(l);
	}
	while (l->timers.len > 0)
		client_close(l, CLIENT_OF(timer_first(&l->timers)));
	timer_heap_free(&l->timers);
	close(l->kq);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "kqueue",
	.run = kqueue_run,
};
