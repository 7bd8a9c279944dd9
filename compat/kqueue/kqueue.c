/*
 * kqueue.c - kqueue() and kevent() on top of Linux epoll and timerfd, so the
 * kqueue backend can be built and tested on Linux (see sys/event.h beside
 * this file for what is emulated and what is not).
 *
 * What it teaches: how two readiness APIs differ in their bookkeeping.
 * kqueue registers (ident, filter) pairs and changes them in batches inside
 * the same call that waits; epoll registers a descriptor with one event mask
 * and changes it with one system call each. Each descriptor here becomes one
 * `struct watch` in the epoll set holding two knotes (read and write); each
 * timer becomes a timerfd with a watch of its own. After every change the
 * watch's epoll mask is recomputed from its knotes (watch_sync).
 *
 * Needs: Linux with epoll, EPOLLRDHUP and timerfd (2.6.27+). A test vehicle:
 * small, one thread per queue, and honest about what it leaves out.
 */
#include "sys/event.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

enum { MAX_BATCH = 64 }; /* epoll events taken per epoll_wait() */

/* One (ident, filter) registration. */
struct knote {
	bool on;        /* added and not yet deleted */
	bool enabled;   /* EV_ENABLE (the default) or EV_DISABLE */
	uint16_t flags; /* EV_ONESHOT and EV_CLEAR, as added */
	void *udata;
};

/* One member of the epoll set: a descriptor with its read and write knotes,
 * or one timer (its timerfd, and only `rd` in use). */
struct watch {
	int fd;
	bool in_epoll;
	bool is_timer;
	bool listening;   /* SO_ACCEPTCONN: EVFILT_READ reports data = 1 */
	bool write_first; /* a write event was left out for want of room */
	int sndbuf;       /* SO_SNDBUF, for EVFILT_WRITE's data */
	uintptr_t ident;  /* the timer's number, or the descriptor */
	struct knote rd, wr;
	struct watch *next; /* the queue's list of timers */
};

struct kq {
	int ep;
	struct watch **fds; /* descriptor watches, by descriptor number */
	size_t nfds;
	struct watch *timers;
};

/* Every queue, by its descriptor number. The lock guards the table only:
 * each queue is used by one thread at a time. */
static struct kq **queues;
static size_t nqueues;
static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER;

static void kq_free(struct kq *q)
{
	for (size_t i = 0; i < q->nfds; i++)
		free(q->fds[i]);
	while (q->timers != NULL) {
		struct watch *t = q->timers;
		q->timers = t->next;
		free(t); /* its timerfd may belong to someone else by now */
	}
	free(q->fds);
	free(q);
}

int kqueue(void)
{
	struct kq *q = calloc(1, sizeof(*q));
	struct kq *stale = NULL;

	if (q == NULL || (q->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		free(q);
		return -1; /* errno set by calloc or epoll_create1 */
	}
	pthread_mutex_lock(&queues_lock);
	if ((size_t)q->ep >= nqueues) {
		size_t n = (size_t)q->ep * 2 + 8;
		struct kq **grown = realloc(queues, n * sizeof(*grown));
		if (grown == NULL) {
			pthread_mutex_unlock(&queues_lock);
			close(q->ep);
			free(q);
			errno = ENOMEM;
			return -1;
		}
		memset(grown + nqueues, 0, (n - nqueues) * sizeof(*grown));
		queues = grown;
		nqueues = n;
	}
	stale = queues[q->ep]; /* a closed queue whose number came back */
	queues[q->ep] = q;
	pthread_mutex_unlock(&queues_lock);
	if (stale != NULL)
		kq_free(stale);
	return q->ep;
}

static struct kq *kq_lookup(int kq)
{
	struct kq *q = NULL;

	pthread_mutex_lock(&queues_lock);
	if (kq >= 0 && (size_t)kq < nqueues)
		q = queues[kq];
	pthread_mutex_unlock(&queues_lock);
	return q;
}

/* Makes the epoll registration of w match its knotes: the union of what its
 * enabled knotes wait for, edge-triggered if they asked for EV_CLEAR, and no
 * registration at all when nothing is enabled (epoll would still report
 * EPOLLHUP for it, and a level-triggered hang-up would then spin). A MOD of
 * an edge-triggered watch also re-arms it: epoll re-checks readiness. */
static int watch_sync(struct kq *q, struct watch *w)
{
	struct epoll_event ev = { .events = 0, .data.ptr = w };
	bool rd = w->rd.on && w->rd.enabled, wr = w->wr.on && w->wr.enabled;
	int op = w->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (rd)
		ev.events |= w->is_timer ? EPOLLIN : EPOLLIN | EPOLLRDHUP;
	if (wr)
		ev.events |= EPOLLOUT;
	if (!rd && !wr) {
		if (w->in_epoll)
			epoll_ctl(q->ep, EPOLL_CTL_DEL, w->fd, NULL);
		w->in_epoll = false;
		return 0;
	}
	if (((rd ? w->rd.flags : w->wr.flags) & EV_CLEAR) && !w->is_timer)
		ev.events |= EPOLLET;
	if (epoll_ctl(q->ep, op, w->fd, &ev) != 0) {
		/* The descriptor was closed and its number reused (MOD: ENOENT),
		 * or someone else added it (ADD: EEXIST): try the other op. */
		op = errno == ENOENT ? EPOLL_CTL_ADD : errno == EEXIST ? EPOLL_CTL_MOD : -1;
		if (op < 0 || epoll_ctl(q->ep, op, w->fd, &ev) != 0)
			return -errno;
	}
	w->in_epoll = true;
	return 0;
}

/* The watch of descriptor fd, created if `create`, or NULL. A watch whose
 * descriptor was closed behind the layer's back (close() removed it from
 * the epoll set, so an ADD succeeds) is stale: its knotes are forgotten. */
static struct watch *fd_watch(struct kq *q, int fd, bool create)
{
	struct epoll_event probe = { .events = 0 };

	if ((size_t)fd >= q->nfds) {
		size_t n = (size_t)fd * 2 + 8;
		struct watch **grown = create ? realloc(q->fds, n * sizeof(*grown)) : NULL;
		if (grown == NULL)
			return NULL;
		memset(grown + q->nfds, 0, (n - q->nfds) * sizeof(*grown));
		q->fds = grown;
		q->nfds = n;
	}
	if (q->fds[fd] == NULL && create && (q->fds[fd] = calloc(1, sizeof(struct watch))) != NULL)
		*q->fds[fd] = (struct watch){ .fd = fd, .ident = (uintptr_t)fd };
	if (create && q->fds[fd] != NULL && q->fds[fd]->in_epoll) {
		probe.data.ptr = q->fds[fd];
		if (epoll_ctl(q->ep, EPOLL_CTL_ADD, fd, &probe) == 0) {
			memset(&q->fds[fd]->rd, 0, sizeof(struct knote));
			memset(&q->fds[fd]->wr, 0, sizeof(struct knote));
		}
	}
	return q->fds[fd];
}

/* Applies one change to EVFILT_READ or EVFILT_WRITE. Returns 0 or -errno. */
static int change_fd(struct kq *q, const struct kevent *c)
{
	int fd = c->ident <= INT_MAX ? (int)c->ident : -1, one = 0, rc;
	socklen_t len = sizeof(one);
	struct watch *w;
	struct knote *kn, *other, saved;

	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	if ((w = fd_watch(q, fd, c->flags & EV_ADD)) == NULL)
		return c->flags & EV_ADD ? -ENOMEM : -ENOENT;
	kn = c->filter == EVFILT_READ ? &w->rd : &w->wr;
	other = c->filter == EVFILT_READ ? &w->wr : &w->rd;
	saved = *kn;
	if (c->flags & EV_ADD) {
		if (other->on && ((other->flags ^ c->flags) & EV_CLEAR))
			return -EINVAL; /* EPOLLET is per descriptor (see sys/event.h) */
		*kn = (struct knote){ .on = true,
			              .enabled = true,
			              .flags = c->flags & (EV_ONESHOT | EV_CLEAR),
			              .udata = c->udata };
		w->listening = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &one, &len) == 0 && one;
		len = sizeof(w->sndbuf);
		if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &w->sndbuf, &len) != 0)
			w->sndbuf = 0;
	} else if (!kn->on) {
		return -ENOENT;
	}
	if (c->flags & EV_ENABLE)
		kn->enabled = true;
	if (c->flags & EV_DISABLE)
		kn->enabled = false;
	if (c->flags & EV_DELETE)
		kn->on = false;
	if ((rc = watch_sync(q, w)) < 0) {
		*kn = saved; /* e.g. EPERM: epoll refuses regular files */
		watch_sync(q, w);
	}
	return rc;
}

/* Arms a timer's timerfd: `data` in the units of fflags, periodic unless
 * EV_ONESHOT. A period of 0 fires at once (timerfd takes 0 as "disarm"). */
static int ktimer_arm(struct watch *t, const struct kevent *c)
{
	int64_t unit = c->fflags & NOTE_SECONDS    ? 1000000000
	               : c->fflags & NOTE_USECONDS ? 1000
	               : c->fflags & NOTE_NSECONDS ? 1
	                                           : 1000000;
	int64_t ns = (int64_t)c->data * unit;
	struct itimerspec its = { .it_value = { 0, 0 } };

	if (c->data < 0 || ns / unit != (int64_t)c->data)
		return -EINVAL;
	its.it_value.tv_sec = ns / 1000000000;
	its.it_value.tv_nsec = ns % 1000000000;
	if (ns == 0)
		its.it_value.tv_nsec = 1;
	if (!(c->flags & EV_ONESHOT))
		its.it_interval = its.it_value;
	return timerfd_settime(t->fd, 0, &its, NULL) == 0 ? 0 : -errno;
}

static void ktimer_delete(struct kq *q, struct watch *t)
{
	struct watch **p = &q->timers;

	while (*p != t)
		p = &(*p)->next;
	*p = t->next;
	close(t->fd); /* also leaves the epoll set */
	free(t);
}

/* Applies one change to EVFILT_TIMER. Returns 0 or -errno. */
static int change_timer(struct kq *q, const struct kevent *c)
{
	struct watch *t = q->timers;
	int rc;

	while (t != NULL && t->ident != c->ident)
		t = t->next;
	if (t == NULL && !(c->flags & EV_ADD))
		return -ENOENT;
	if (t == NULL) {
		if ((t = calloc(1, sizeof(*t))) == NULL)
			return -ENOMEM;
		if ((t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) {
			free(t);
			return -errno;
		}
		*t = (struct watch){ .fd = t->fd, .is_timer = true, .ident = c->ident };
		t->next = q->timers;
		q->timers = t;
	}
	if (c->flags & EV_DELETE) {
		ktimer_delete(q, t);
		return 0;
	}
	if (c->flags & EV_ADD) {
		t->rd = (struct knote){ .on = true,
			                .enabled = true,
			                .flags = c->flags & (EV_ONESHOT | EV_CLEAR),
			                .udata = c->udata };
		if ((rc = ktimer_arm(t, c)) < 0) {
			ktimer_delete(q, t);
			return rc;
		}
	}
	if (c->flags & EV_ENABLE)
		t->rd.enabled = true;
	if (c->flags & EV_DISABLE)
		t->rd.enabled = false;
	return watch_sync(q, t);
}

static int apply_change(struct kq *q, const struct kevent *c)
{
	switch (c->filter) {
	case EVFILT_READ:
	case EVFILT_WRITE:
		return change_fd(q, c);
	case EVFILT_TIMER:
		return change_timer(q, c);
	default:
		return -EINVAL;
	}
}

/* Stores the event of knote kn into *out. A reported EV_ONESHOT knote is
 * deleted, as on BSD; the caller then syncs the watch. */
static void fill(struct kevent *out, struct watch *w, struct knote *kn, int16_t filter, bool eof,
                 intptr_t data)
{
	EV_SET(out, w->ident, filter, kn->flags | EV_ADD | (eof ? EV_EOF : 0), 0, data, kn->udata);
	if (kn->flags & EV_ONESHOT)
		kn->on = false;
}

/* Turns one epoll event into up to `room` kevents, read before write unless
 * a write was owed from last time. When an edge-triggered watch had more to
 * report than there was room for, re-arming it makes epoll report it again
 * on the next call, and the filter left out goes first then (so a caller
 * with room for one event sees the two filters take turns). */
static int report(struct kq *q, struct watch *w, uint32_t ev, struct kevent *out, int room)
{
	bool rd = w->rd.on && w->rd.enabled && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR));
	bool wr = w->wr.on && w->wr.enabled && (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR));
	int n = 0, avail = 0, queued = 0;
	uint64_t count = 0;

	if (w->is_timer) {
		if (!rd || read(w->fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
			return 0; /* already consumed, or disabled meanwhile */
		fill(out, w, &w->rd, EVFILT_TIMER, false, (intptr_t)count);
		if (!w->rd.on)
			ktimer_delete(q, w);
		return 1;
	}
	for (int pass = 0; pass < 2 && n < room; pass++) {
		if ((pass == 0) == w->write_first && wr) {
			if (ioctl(w->fd, SIOCOUTQ, &queued) != 0)
				queued = w->sndbuf;
			fill(&out[n++], w, &w->wr, EVFILT_WRITE, ev & (EPOLLHUP | EPOLLERR),
			     w->sndbuf > queued ? w->sndbuf - queued : 0);
			wr = false;
		} else if ((pass == 0) != w->write_first && rd) {
			if (w->listening || ioctl(w->fd, FIONREAD, &avail) != 0)
				avail = w->listening;
			fill(&out[n++], w, &w->rd, EVFILT_READ,
			     ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR), avail);
			rd = false;
		}
	}
	w->write_first = wr;
	if (rd || wr || (w->rd.flags | w->wr.flags) & EV_ONESHOT)
		watch_sync(q, w);
	return n;
}

static int timeout_ms(const struct timespec *ts)
{
	int64_t ms;

	if (ts == NULL)
		return -1;
	ms = (int64_t)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000; /* round up */
	return ms > INT_MAX ? INT_MAX : ms < 0 ? 0 : (int)ms;
}

/* Waits up to ms (-1: forever) and stores events. Epoll events that turn
 * into no kevent (a timer read by then) do not end the wait early. */
static int collect(struct kq *q, struct kevent *out, int room, int ms)
{
	struct epoll_event evs[MAX_BATCH];
	struct timespec start, now;
	int got = 0, n, left = ms;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		n = epoll_wait(q->ep, evs, room < MAX_BATCH ? room : MAX_BATCH, left);
		if (n < 0)
			return -1; /* EINTR, as kevent() on BSD */
		for (int i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;
			if (got < room)
				got += report(q, w, evs[i].events, out + got, room - got);
			else if (!w->is_timer)
				watch_sync(q, w); /* no room: re-arm, so no edge is lost */
		}
		if (got > 0 || n == 0 || ms == 0)
			return got;
		if (ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
			                  (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0)
				return 0;
		}
	}
}

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout)
{
	struct kq *q = kq_lookup(kq);
	int receipts = 0;

	if (q == NULL || nchanges < 0 || nevents < 0) {
		errno = q == NULL ? EBADF : EINVAL;
		return -1;
	}
	for (int i = 0; i < nchanges; i++) {
		struct kevent c = changelist[i]; /* eventlist may alias changelist */
		int rc = apply_change(q, &c);
		if (rc == 0 && !(c.flags & EV_RECEIPT))
			continue;
		if (receipts >= nevents) {
			if (rc == 0)
				continue;
			errno = -rc;
			return -1;
		}
		c.flags = EV_ERROR;
		c.data = -rc;
		eventlist[receipts++] = c;
	}
	if (receipts > 0 || nevents == 0)
		return receipts; /* as on BSD: reported changes end the call */
	return collect(q, eventlist, nevents, timeout_ms(timeout));
}
