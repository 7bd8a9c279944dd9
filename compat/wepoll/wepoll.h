/*
 * wepoll.h - the epoll API on Windows, emulated over the AFD poll driver.
 *
 * What it teaches: Windows has no readiness API that scales (select and
 * WSAPoll scan every socket on every call), yet every socket is a file of
 * the Ancillary Function Driver (AFD, \Device\Afd), and AFD answers one
 * undocumented-but-stable request, IOCTL_AFD_POLL: "complete when any of
 * these events happens on this socket". Issued asynchronously, its
 * completion lands on an I/O completion port like any other I/O. One poll
 * per registered socket, all completing on one port, gives the epoll model:
 * the kernel remembers the interest, and a wait returns only ready sockets.
 * wepoll.c explains the mechanism; this header is the contract.
 *
 * Semantics: level-triggered (a socket that is still ready is reported on
 * every epoll_wait), or one-shot with EPOLLONESHOT (reported once, then
 * disabled until re-armed with EPOLL_CTL_MOD). There is no EPOLLET. Events:
 * EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLPRI, EPOLLHUP, EPOLLERR (the last two
 * are always reported). epoll_ctl() costs no system call: it records the
 * change, and the next epoll_wait() (re)issues the polls that changed.
 *
 * Differences from Linux a user must know:
 * - a port is used by one thread at a time (the server has one per loop);
 * - closing a socket removes it, but only once the port notices at its next
 *   wait; call EPOLL_CTL_DEL before closesocket() to be exact;
 * - errors are -1 with errno set, as on Linux.
 *
 * Needs: Windows Vista+ (or Wine 6+); links with ntdll and ws2_32.
 */
#ifndef WEPOLL_H
#define WEPOLL_H

#include <stdint.h>
#include <winsock2.h>

enum {
	EPOLLIN = 1 << 0,
	EPOLLPRI = 1 << 1,
	EPOLLOUT = 1 << 2,
	EPOLLERR = 1 << 3,
	EPOLLHUP = 1 << 4,
	EPOLLRDNORM = 1 << 6,
	EPOLLRDBAND = 1 << 7,
	EPOLLWRNORM = 1 << 8,
	EPOLLWRBAND = 1 << 9,
	EPOLLRDHUP = 1 << 13,
	EPOLLONESHOT = 1 << 30,
};

enum { EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3 };

typedef union epoll_data {
	void *ptr;
	int fd;
	uint32_t u32;
	uint64_t u64;
	SOCKET sock;
} epoll_data_t;

struct epoll_event {
	uint32_t events;
	epoll_data_t data;
};

/* An epoll instance: a completion port, an AFD handle, the sockets. */
typedef struct epoll_port *epoll_t;

/* Creates an instance; `size` is ignored (it must be > 0, as on Linux).
 * Returns NULL with errno set on failure. */
epoll_t epoll_create(int size);

/* Closes the instance and forgets every socket in it. Returns 0 or -1. */
int epoll_close(epoll_t ep);

/* Adds, changes or removes the interest in socket `sock`. Returns 0, or -1
 * with errno: EEXIST (ADD twice), ENOENT (not added), ENOTSOCK, ENOMEM. */
int epoll_ctl(epoll_t ep, int op, SOCKET sock, struct epoll_event *ev);

/* Waits up to `timeout` ms (-1: forever, 0: just look) for ready sockets.
 * Returns how many entries of `events` were filled (0 on timeout), or -1. */
int epoll_wait(epoll_t ep, struct epoll_event *events, int maxevents, int timeout);

#endif
