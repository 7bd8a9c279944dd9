/*
 * poll.c - a readiness event loop on POSIX poll(2), level-triggered.
 *
 * What it teaches: the reactor pattern on the oldest portable readiness call,
 * and its cost. One array of struct pollfd goes to the kernel on every call:
 * the kernel checks every descriptor and the loop scans every slot for the
 * few ready ones, O(n) in open connections, idle ones included (epoll avoids
 * both). Level-triggered, poll reports a descriptor for as long as it is
 * ready: one read per readiness is enough, no drain-until-EAGAIN rule, and an
 * EINTR can wait for the next poll(). The price: interest must follow
 * conn_want() exactly (POLLIN for READ, POLLOUT for WRITE, nothing for WAIT),
 * or an always writable socket wakes the loop forever. Changing it is a store
 * into the array, not a system call.
 *
 * Needs: any POSIX system for poll(2); sendfile(2) (Linux) for static files.
 * Run:   bin/server-poll --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	READ_BUF = 64 * 1024,   /* one per loop, shared by all connections */
	FIRST_SLOTS = 64,       /* initial size of the pollfd array; it doubles */
	MAX_WAIT_MS = 1000,     /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100 /* pause accepting when out of descriptors */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;
	int slot; /* its index in loop.fds and loop.owner */
};

/* fds[0] is the listener; fds[1..nclients] are the clients, owner[i] the
 * client of fds[i]: the list of open connections (used at shutdown). */
struct loop {
	struct worker *w;
	struct pollfd *fds;
	struct client **owner;
	int cap; /* slots allocated in fds and owner */
	struct timer_heap timers;
	int nclients;
	int64_t now;
	int64_t accept_again; /* when to retry accept after EMFILE, or 0 */
	char buf[READ_BUF];
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

static void client_close(struct loop *l, struct client *cl)
{
	/* LAB 2 BEGIN: move the last slot (fds and owner) into this one; fix its ->slot */
	l->fds[cl->slot] = l->fds[l->nclients];
	l->owner[cl->slot] = l->owner[l->nclients];
	l->owner[cl->slot]->slot = cl->slot;
	/* LAB 2 END */
	timer_remove(&l->timers, &cl->timer);
	close(cl->fd);
	conn_free(&cl->conn);
	free(cl);
	l->nclients--;
	server_conn_closed(l->w->srv);
}

/* Makes room for one more slot. Returns 0 or -ENOMEM. */
static int grow(struct loop *l)
{
	int cap = l->cap ? l->cap * 2 : FIRST_SLOTS;
	struct pollfd *fds = realloc(l->fds, (size_t)cap * sizeof(*fds));
	struct client **owner = fds ? realloc(l->owner, (size_t)cap * sizeof(*owner)) : NULL;

	if (fds != NULL)
		l->fds = fds;
	if (owner == NULL)
		return -ENOMEM;
	l->owner = owner;
	l->cap = cap;
	return 0;
}

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	int slot = l->nclients + 1;

	if (cl == NULL || (slot >= l->cap && grow(l) != 0)) {
		free(cl);
		close(fd);
		server_conn_closed(l->w->srv);
		return;
	}
	cl->fd = fd;
	cl->slot = slot;
	l->fds[slot] = (struct pollfd){ .fd = fd, .events = POLLIN };
	l->owner[slot] = cl;
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	l->nclients++;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
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

/* Does what the connection wants until the socket would block, then sets the
 * slot's interest from conn_want(). `hup` says poll reported POLLHUP or
 * POLLERR: the peer is gone for good. */
static void client_drive(struct loop *l, struct client *cl, bool hup)
{
	/* LAB 2 BEGIN: loop on conn_want() until EAGAIN, WAIT or CLOSE; then set the slot's */
	/* LAB 2 HINT: events from the want (level-triggered!) and re-arm the timer. */
	/* LAB 2 STUB: (void)hup; */
	/* LAB 2 STUB: (void)client_send; */
	/* LAB 2 STUB: client_close(l, cl); */
	bool did_read = false; /* one read per readiness: poll says if more */
	enum conn_want want;
	ssize_t n;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			if (did_read)
				goto wait; /* not a recv() that would only say EAGAIN */
			n = recv(cl->fd, l->buf, sizeof(l->buf), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				goto wait; /* EINTR: poll() reports it again */
			if (n < 0)
				n = 0; /* ECONNRESET and friends: treat as EOF */
			conn_feed(&cl->conn, l->buf, (size_t)n, l->now);
			did_read = n > 0; /* after the answer, too: the next poll() tells */
			continue;
		case CONN_WANT_WRITE:
			n = client_send(cl);
			if (n == -EAGAIN || n == -EINTR)
				goto wait; /* POLLOUT will call us back */
			if (n < 0) {
				client_close(l, cl);
				return;
			}
			conn_sent(&cl->conn, (size_t)n, l->now);
			continue;
		case CONN_WANT_WAIT:
			if (!hup)
				goto wait;
			client_close(l, cl); /* POLLHUP ignores `events`: it would spin */
			return;
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
	/* Interest follows the want; WAIT listens for nothing, only the timer. */
	want = conn_want(&cl->conn);
	l->fds[cl->slot].events = want == CONN_WANT_READ    ? POLLIN
	                          : want == CONN_WANT_WRITE ? POLLOUT
	                                                    : 0;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
	/* LAB 2 END */
}

/* Accepts until EAGAIN. Out of descriptors, it backs off instead of spinning:
 * the listener leaves the poll set and the pending connections stay in the
 * backlog until accept_again. */
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
		client_drive(l, cl, false);
	}
}

/* Shutdown: tell every connection to finish up (poll_run() drops the listener).
 * Last slot to first, as in the scan: a close swaps in a slot already done. */
static void begin_stop(struct loop *l)
{
	for (int i = l->nclients; i >= 1; i--) {
		conn_stop(&l->owner[i]->conn);
		client_drive(l, l->owner[i], false);
	}
}

static int poll_run(struct worker *w)
{
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0;
	int err;

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	l->now = clock_ms();
	if ((err = grow(l)) != 0 || (err = net_set_nonblock(w->listen_fd, true)) != 0)
		goto out;
	l->fds[0].events = POLLIN;
	while (give_up == 0 || (l->nclients > 0 && l->now < give_up)) {
		int ms = timer_wait_ms(&l->timers, l->now, MAX_WAIT_MS);
		if (l->accept_again != 0 && l->accept_again - l->now < ms)
			ms = l->accept_again > l->now ? (int)(l->accept_again - l->now) : 0;
		/* The listener sits out a back-off and the shutdown: poll skips fd -1. */
		l->fds[0].fd = l->accept_again == 0 && give_up == 0 ? w->listen_fd : -1;
		int n = poll(l->fds, (nfds_t)l->nclients + 1, ms);
		l->now = clock_ms();
		/* LAB 2 BEGIN: find the n ready slots (revents): slot 0 accepts, others drive */
		/* LAB 2 HINT: their client. Which scan order survives a close swapping slots? */
		/* LAB 2 STUB: (void)n; */
		/* LAB 2 STUB: accept_all(l); */
		/* LAB 2 STUB: for (int i = l->nclients; i >= 1; i--) */
		/* LAB 2 STUB: 	client_close(l, l->owner[i]); */
		/* Last slot to first: a close swaps in the last slot, already scanned,
		 * and clients accepted at slot 0 land past the part still to scan. */
		for (int i = l->nclients; n > 0 && i >= 0; i--) {
			short rev = l->fds[i].revents;
			if (rev == 0)
				continue;
			n--;
			if (i == 0)
				accept_all(l);
			else
				client_drive(l, l->owner[i], rev & (POLLHUP | POLLERR | POLLNVAL));
		}
		/* LAB 2 END */
		if (l->accept_again != 0 && l->now >= l->accept_again)
			l->accept_again = 0; /* over: the next poll() reports the backlog */
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
	}
	while (l->nclients > 0)
		client_close(l, l->owner[l->nclients]);
out:
	timer_heap_free(&l->timers);
	free(l->fds);
	free(l->owner);
	free(l);
	return err;
}

const struct backend backend = {
	.name = "poll",
	.run = poll_run,
};
