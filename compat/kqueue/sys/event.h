/*
 * sys/event.h - a small kqueue-on-epoll layer, so that backends/kqueue.c
 * builds and runs on Linux unchanged (`#include <sys/event.h>` finds this
 * file through -Icompat/kqueue).
 *
 * What it is: a test vehicle, not a general library. It lets the kqueue
 * backend be exercised by the same integration suite as every other backend
 * on the Linux machines this project is developed on. Numbers measured
 * through it are the cost of epoll plus this translation, and are labelled
 * "emulated"; they say nothing about kqueue on FreeBSD or macOS.
 *
 * What it teaches: the two models side by side. kqueue keys a registration
 * (a "knote") by (ident, filter) and takes a list of changes and returns a
 * list of events in one call; epoll keys by descriptor, holds one event mask
 * per descriptor, and changes it one epoll_ctl() at a time. The layer keeps
 * a small table per queue that maps the first onto the second.
 *
 * Emulated:
 *   - kqueue(), kevent() with a change list and an event list in one call;
 *     changes are applied in order, then events are collected.
 *   - EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_ONESHOT, EV_CLEAR, EV_EOF,
 *     EV_ERROR and EV_RECEIPT: a failed change is reported in the event list
 *     as an EV_ERROR event with `data` = errno while there is room, and then
 *     kevent() returns at once without waiting; without room it fails with
 *     -1/errno. EV_RECEIPT reports every change so, with data = 0 on success.
 *   - udata is stored per knote and returned unchanged.
 *   - EVFILT_READ: `data` is the bytes readable (FIONREAD); a listening
 *     socket reports 1, not the length of its backlog. EV_EOF when the peer
 *     shut its side (EPOLLRDHUP) or the socket hung up.
 *   - EVFILT_WRITE: `data` is the free space in the send buffer (SO_SNDBUF
 *     minus SIOCOUTQ) for sockets, else 0. EV_EOF when the socket hung up.
 *   - EVFILT_TIMER: one timerfd per timer; `data` on EV_ADD is the period in
 *     milliseconds (or NOTE_SECONDS, NOTE_USECONDS, NOTE_NSECONDS units);
 *     periodic unless EV_ONESHOT; the event's `data` is the number of
 *     expirations since the last report.
 *
 * Not emulated (differences a reader of a BSD man page will notice):
 *   - EV_CLEAR is per descriptor, because EPOLLET is: the READ and WRITE
 *     filters of one descriptor must agree on it (EINVAL otherwise). When an
 *     event list has no room for both filters of a ready descriptor, the one
 *     left out is re-armed and comes first next time, and the other may be
 *     reported again with it: spurious, never lost.
 *   - fflags on EV_EOF is 0: reading SO_ERROR would clear the socket's error
 *     before the program's own recv() could see it.
 *   - close(fd) drops the descriptor from the epoll set, as it drops the
 *     knotes on BSD; the layer notices the stale entry when the number is
 *     registered again. close(kq) does not free armed timers' timerfds:
 *     EV_DELETE timers before closing a queue.
 *   - Regular files (epoll refuses them: EPERM), EVFILT_VNODE, EVFILT_PROC,
 *     EVFILT_SIGNAL, EVFILT_USER, EV_DISPATCH and the NOTE_* flags of
 *     read/write filters are not there. A queue is used by one thread at a
 *     time, as the backends do.
 */
#ifndef COMPAT_SYS_EVENT_H
#define COMPAT_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

/* Filters: negative, as on the BSDs. */
#define EVFILT_READ  (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_TIMER (-7)

/* Action flags (in a change) and status flags (in an event). */
#define EV_ADD     0x0001 /* add the knote, or update it; enables it */
#define EV_DELETE  0x0002 /* remove the knote */
#define EV_ENABLE  0x0004 /* report its events again */
#define EV_DISABLE 0x0008 /* keep it, but do not report it */
#define EV_ONESHOT 0x0010 /* delete it once it has been reported */
#define EV_CLEAR   0x0020 /* reset its state once reported: edge-like */
#define EV_RECEIPT 0x0040 /* report this change in the event list */
#define EV_ERROR   0x4000 /* event: the change failed, data is the errno */
#define EV_EOF     0x8000 /* event: end of file, or the socket hung up */

/* EVFILT_TIMER units (fflags); milliseconds when none is given. The values
 * are FreeBSD's; portable code passes no unit and uses milliseconds. */
#define NOTE_SECONDS  0x0001
#define NOTE_MSECONDS 0x0002
#define NOTE_USECONDS 0x0004
#define NOTE_NSECONDS 0x0008

struct kevent {
	uintptr_t ident; /* the descriptor, or the timer's own number */
	int16_t filter;  /* EVFILT_* */
	uint16_t flags;  /* EV_* */
	uint32_t fflags; /* filter flags: NOTE_* */
	intptr_t data;   /* filter data (see the list above) */
	void *udata;     /* the caller's, returned unchanged */
};

#define EV_SET(kevp, a, b, c, d, e, f)             \
	do {                                       \
		struct kevent *ev_set_p_ = (kevp); \
		ev_set_p_->ident = (a);            \
		ev_set_p_->filter = (int16_t)(b);  \
		ev_set_p_->flags = (uint16_t)(c);  \
		ev_set_p_->fflags = (uint32_t)(d); \
		ev_set_p_->data = (intptr_t)(e);   \
		ev_set_p_->udata = (void *)(f);    \
	} while (0)

/* Creates a queue. Returns a descriptor (an epoll instance: close() it as
 * usual), or -1 with errno set. */
int kqueue(void);

/* Applies `nchanges` changes in order, then waits up to `timeout` (NULL:
 * forever; {0, 0}: not at all) for events and stores up to `nevents` of
 * them. Returns the number of events stored (error receipts included), or
 * -1 with errno set (EBADF: kq is not a queue; EINTR: a signal arrived; a
 * change's errno when it failed and there was no room to report it). */
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist,
           int nevents, const struct timespec *timeout);

#endif
