/*
 * wepoll.c - epoll over the AFD poll driver (see wepoll.h for the contract).
 *
 * How epoll is emulated on Windows, in five steps:
 *
 * 1. Open the driver. NtCreateFile("\Device\Afd\IoModels") gives a handle
 *    to the Ancillary Function Driver, the kernel side of Winsock; the
 *    handle is tied to the instance's I/O completion port. Polls are issued
 *    on this one handle, for any socket.
 * 2. Find the real socket. A SOCKET may be a handle of a layered service
 *    provider (LSP) stacked on top; AFD knows only the base socket, which
 *    WSAIoctl(SIO_BASE_HANDLE) returns. That is what a poll names.
 * 3. Poll. For each socket with a non-empty interest, one
 *    NtDeviceIoControlFile(IOCTL_AFD_POLL) is kept in flight. Its
 *    AFD_POLL_INFO names the socket and the AFD events wanted (receive,
 *    send, disconnect, abort, accept, ...). The call returns at once; the
 *    driver completes the request when one of the events is true, which may
 *    be immediately.
 * 4. Collect. epoll_wait() takes completions from the port with
 *    GetQueuedCompletionStatusEx. The completion's context pointer leads
 *    back to the socket's state; the AFD events found are translated into
 *    EPOLL* bits and handed to the caller.
 * 5. Re-arm. A completed poll is gone. Level-triggered semantics come from
 *    re-issuing it at the next epoll_wait(): a socket that is still ready
 *    completes again at once and is reported again; a drained one waits.
 *    EPOLLONESHOT instead drops the interest after one report. A change of
 *    interest (EPOLL_CTL_MOD) that the pending poll does not cover cancels
 *    it (NtCancelIoFileEx); the cancellation completes like any poll and
 *    the poll is then re-issued with the new events.
 *
 * Every socket's state is in a hash table keyed by the SOCKET (for
 * epoll_ctl) and, while it waits for its poll to be (re)issued, on a list
 * of pending updates. A state removed while its poll is in flight must not
 * be freed, because the kernel still owns its AFD_POLL_INFO and
 * IO_STATUS_BLOCK: it is cancelled, marked deleted, and freed when the
 * cancellation completes.
 *
 * Written for this project after studying how the wepoll library
 * (github.com/piscisaureus/wepoll) and libuv use IOCTL_AFD_POLL.
 */
#include "wepoll.h"

#include <winsock2.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* ---- what the AFD driver expects (not in the Windows SDK headers) ---- */

#define IOCTL_AFD_POLL 0x00012024

enum {
	AFD_POLL_RECEIVE = 0x0001,
	AFD_POLL_RECEIVE_EXPEDITED = 0x0002,
	AFD_POLL_SEND = 0x0004,
	AFD_POLL_DISCONNECT = 0x0008, /* the peer shut down its sending side */
	AFD_POLL_ABORT = 0x0010,      /* reset */
	AFD_POLL_LOCAL_CLOSE = 0x0020,
	AFD_POLL_ACCEPT = 0x0080,
	AFD_POLL_CONNECT_FAIL = 0x0100,
};

typedef struct {
	HANDLE Handle;
	ULONG Events;
	NTSTATUS Status;
} AFD_POLL_HANDLE_INFO;

typedef struct {
	LARGE_INTEGER Timeout; /* INT64_MAX: no timeout of its own */
	ULONG NumberOfHandles;
	ULONG Exclusive;
	AFD_POLL_HANDLE_INFO Handles[1];
} AFD_POLL_INFO;

#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#endif
#ifndef STATUS_PENDING
#define STATUS_PENDING ((NTSTATUS)0x00000103L)
#endif
#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#endif
#ifndef STATUS_NOT_FOUND
#define STATUS_NOT_FOUND ((NTSTATUS)0xC0000225L)
#endif

/* ntdll exports it; mingw-w64's winternl.h does not declare it. */
NTSTATUS NTAPI NtCancelIoFileEx(HANDLE file, PIO_STATUS_BLOCK request, PIO_STATUS_BLOCK status);

/* ---- one registered socket ---- */

enum { POLL_IDLE, POLL_PENDING, POLL_CANCELLED };

struct sock_state {
	IO_STATUS_BLOCK iosb; /* the poll in flight: owned by the kernel */
	AFD_POLL_INFO poll;
	SOCKET sock, base;
	uint32_t events;  /* the caller's interest; 0 after a one-shot report */
	uint32_t polling; /* the EPOLL* bits the pending poll asks for */
	epoll_data_t data;
	uint8_t status; /* POLL_* */
	bool deleted;   /* removed while the kernel still owned it */
	bool queued;    /* on the update list */
	struct sock_state *next_hash, *next_update;
};

struct epoll_port {
	HANDLE iocp, afd;
	struct sock_state **buckets;
	size_t nbuckets, nsocks;
	struct sock_state *updates; /* polls to (re)issue at the next wait */
	size_t in_flight;           /* polls the kernel holds */
};

enum { FIRST_BUCKETS = 64, MAX_COMPLETIONS = 256 };

static int fail(int err)
{
	errno = err;
	return -1;
}

/* ---- the hash table, keyed by SOCKET ---- */

static size_t bucket_of(const struct epoll_port *ep, SOCKET s)
{
	return ((size_t)s >> 2) & (ep->nbuckets - 1); /* handles are multiples of 4 */
}

static struct sock_state **find_slot(struct epoll_port *ep, SOCKET s)
{
	struct sock_state **p = &ep->buckets[bucket_of(ep, s)];

	while (*p != NULL && (*p)->sock != s)
		p = &(*p)->next_hash;
	return p;
}

static int grow(struct epoll_port *ep)
{
	size_t old_n = ep->nbuckets, n = old_n ? old_n * 2 : FIRST_BUCKETS;
	struct sock_state **old = ep->buckets;

	if ((ep->buckets = calloc(n, sizeof(*old))) == NULL) {
		ep->buckets = old;
		return -ENOMEM;
	}
	ep->nbuckets = n;
	for (size_t i = 0; i < old_n; i++) {
		while (old[i] != NULL) {
			struct sock_state *st = old[i];
			old[i] = st->next_hash;
			st->next_hash = ep->buckets[bucket_of(ep, st->sock)];
			ep->buckets[bucket_of(ep, st->sock)] = st;
		}
	}
	free(old);
	return 0;
}

static void queue_update(struct epoll_port *ep, struct sock_state *st)
{
	if (!st->queued) {
		st->queued = true;
		st->next_update = ep->updates;
		ep->updates = st;
	}
}

/* ---- translating events ---- */

static ULONG afd_events_of(uint32_t ev)
{
	ULONG afd = AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL | AFD_POLL_LOCAL_CLOSE;

	if (ev & (EPOLLIN | EPOLLRDNORM))
		afd |= AFD_POLL_RECEIVE | AFD_POLL_ACCEPT;
	if (ev & (EPOLLPRI | EPOLLRDBAND))
		afd |= AFD_POLL_RECEIVE_EXPEDITED;
	if (ev & (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND))
		afd |= AFD_POLL_SEND;
	if (ev & (EPOLLIN | EPOLLRDNORM | EPOLLRDHUP))
		afd |= AFD_POLL_DISCONNECT;
	return afd;
}

static uint32_t epoll_events_of(ULONG afd)
{
	uint32_t ev = 0;

	if (afd & (AFD_POLL_RECEIVE | AFD_POLL_ACCEPT))
		ev |= EPOLLIN | EPOLLRDNORM;
	if (afd & AFD_POLL_RECEIVE_EXPEDITED)
		ev |= EPOLLPRI | EPOLLRDBAND;
	if (afd & AFD_POLL_SEND)
		ev |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
	if (afd & AFD_POLL_DISCONNECT)
		ev |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
	if (afd & AFD_POLL_ABORT)
		ev |= EPOLLHUP;
	if (afd & AFD_POLL_CONNECT_FAIL)
		ev |= EPOLLERR;
	return ev;
}

/* The bits a poll is issued for: the interest, plus the two always on. */
static uint32_t wanted(const struct sock_state *st)
{
	uint32_t ev = st->events & ~(uint32_t)EPOLLONESHOT;

	return ev ? ev | EPOLLERR | EPOLLHUP : 0;
}

/* ---- issuing and cancelling polls (steps 3 and 5) ---- */

static int poll_issue(struct epoll_port *ep, struct sock_state *st)
{
	NTSTATUS rc;

	st->poll.Timeout.QuadPart = INT64_MAX;
	st->poll.NumberOfHandles = 1;
	st->poll.Exclusive = FALSE;
	st->poll.Handles[0].Handle = (HANDLE)st->base;
	st->poll.Handles[0].Events = afd_events_of(st->events);
	st->poll.Handles[0].Status = 0;
	st->iosb.Status = STATUS_PENDING;
	rc = NtDeviceIoControlFile(ep->afd, NULL, NULL, &st->iosb, &st->iosb, IOCTL_AFD_POLL,
	                           &st->poll, sizeof(st->poll), &st->poll, sizeof(st->poll));
	if (rc != STATUS_SUCCESS && rc != STATUS_PENDING)
		return -EBADF; /* the socket is gone or not an AFD socket */
	st->status = POLL_PENDING;
	st->polling = wanted(st);
	ep->in_flight++;
	return 0;
}

static void poll_cancel(struct epoll_port *ep, struct sock_state *st)
{
	IO_STATUS_BLOCK cancel;
	NTSTATUS rc = NtCancelIoFileEx(ep->afd, &st->iosb, &cancel);

	/* STATUS_NOT_FOUND: it completed already; the completion is queued */
	if (rc == STATUS_SUCCESS || rc == STATUS_NOT_FOUND)
		st->status = POLL_CANCELLED;
}

/* Brings one socket's poll in line with its interest. */
static void update_one(struct epoll_port *ep, struct sock_state *st)
{
	uint32_t want = wanted(st);

	if (st->status == POLL_PENDING && (want & ~st->polling) == 0 && want != 0)
		return; /* the pending poll covers it; extra reports are masked out */
	if (st->status == POLL_PENDING)
		poll_cancel(ep, st); /* re-issued when the cancellation completes */
	else if (st->status == POLL_IDLE && want != 0 && poll_issue(ep, st) != 0)
		st->events = 0; /* a dead socket: nothing will ever be reported */
}

static void update_all(struct epoll_port *ep)
{
	while (ep->updates != NULL) {
		struct sock_state *st = ep->updates;
		ep->updates = st->next_update;
		st->queued = false;
		update_one(ep, st);
	}
}

/* ---- the public API ---- */

epoll_t epoll_create(int size)
{
	static const wchar_t name[] = L"\\Device\\Afd\\IoModels";
	UNICODE_STRING path = { sizeof(name) - 2, sizeof(name), (PWSTR)(uintptr_t)name };
	OBJECT_ATTRIBUTES attr;
	IO_STATUS_BLOCK iosb;
	struct epoll_port *ep;

	if (size <= 0 || (ep = calloc(1, sizeof(*ep))) == NULL || grow(ep) != 0) {
		errno = size <= 0 ? EINVAL : ENOMEM;
		return NULL;
	}
	InitializeObjectAttributes(&attr, &path, 0, NULL, NULL);
	ep->iocp = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
	if (ep->iocp == NULL ||
	    NtCreateFile(&ep->afd, SYNCHRONIZE, &attr, &iosb, NULL, 0,
	                 FILE_SHARE_READ | FILE_SHARE_WRITE, FILE_OPEN, 0, NULL, 0) != 0 ||
	    CreateIoCompletionPort(ep->afd, ep->iocp, 0, 0) == NULL) {
		if (ep->afd != NULL)
			CloseHandle(ep->afd);
		if (ep->iocp != NULL)
			CloseHandle(ep->iocp);
		free(ep->buckets);
		free(ep);
		errno = ENOSYS;
		return NULL;
	}
	return ep;
}

int epoll_close(epoll_t ep)
{
	/* Closing the AFD handle cancels every poll; the port goes with it, so
	 * no completion can reach a freed state afterwards. */
	CloseHandle(ep->afd);
	CloseHandle(ep->iocp);
	for (size_t i = 0; i < ep->nbuckets; i++) {
		while (ep->buckets[i] != NULL) {
			struct sock_state *st = ep->buckets[i];
			ep->buckets[i] = st->next_hash;
			if (st->status == POLL_IDLE)
				free(st); /* others: the kernel may still write; left */
		}
	}
	free(ep->buckets);
	free(ep);
	return 0;
}

static int ctl_add(struct epoll_port *ep, SOCKET s, const struct epoll_event *ev)
{
	struct sock_state *st;
	DWORD got;

	if (*find_slot(ep, s) != NULL)
		return fail(EEXIST);
	if (ep->nsocks >= ep->nbuckets && grow(ep) != 0)
		return fail(ENOMEM);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return fail(ENOMEM);
	if (WSAIoctl(s, SIO_BASE_HANDLE, NULL, 0, &st->base, sizeof(st->base), &got, NULL, NULL) !=
	    0) {
		free(st);
		return fail(ENOTSOCK);
	}
	st->sock = s;
	st->events = ev->events;
	st->data = ev->data;
	*find_slot(ep, s) = st;
	ep->nsocks++;
	queue_update(ep, st);
	return 0;
}

/* Forgets a socket. Its memory waits for the kernel if a poll is out. */
static void forget(struct epoll_port *ep, struct sock_state **slot)
{
	struct sock_state *st = *slot;

	*slot = st->next_hash;
	ep->nsocks--;
	if (st->queued) {
		struct sock_state **p = &ep->updates;
		while (*p != st)
			p = &(*p)->next_update;
		*p = st->next_update;
	}
	if (st->status == POLL_IDLE) {
		free(st);
		return;
	}
	st->deleted = true;
	if (st->status == POLL_PENDING)
		poll_cancel(ep, st);
}

int epoll_ctl(epoll_t ep, int op, SOCKET s, struct epoll_event *ev)
{
	struct sock_state **slot;

	if (op == EPOLL_CTL_ADD)
		return ev != NULL ? ctl_add(ep, s, ev) : fail(EINVAL);
	slot = find_slot(ep, s);
	if (*slot == NULL)
		return fail(ENOENT);
	if (op == EPOLL_CTL_DEL) {
		forget(ep, slot);
		return 0;
	}
	if (op != EPOLL_CTL_MOD || ev == NULL)
		return fail(EINVAL);
	(*slot)->events = ev->events;
	(*slot)->data = ev->data;
	queue_update(ep, *slot);
	return 0;
}

/* One completed poll (step 4). Returns the events to report, or 0. */
static uint32_t completed(struct epoll_port *ep, struct sock_state *st)
{
	uint32_t ev;

	ep->in_flight--;
	st->status = POLL_IDLE;
	if (st->deleted) {
		free(st);
		return 0;
	}
	if (st->iosb.Status == STATUS_CANCELLED || st->poll.NumberOfHandles < 1) {
		queue_update(ep, st); /* cancelled (interest changed): re-issue */
		return 0;
	}
	if (st->iosb.Status < 0) {
		ev = wanted(st) & (EPOLLERR | EPOLLHUP); /* the poll itself failed */
		st->events = 0; /* re-issuing would fail again: report once, stop */
		return ev;
	}
	if (st->poll.Handles[0].Events & AFD_POLL_LOCAL_CLOSE) {
		forget(ep, find_slot(ep, st->sock)); /* closed without DEL */
		return 0;
	}
	ev = epoll_events_of(st->poll.Handles[0].Events) & wanted(st);
	if (ev != 0 && (st->events & EPOLLONESHOT))
		st->events = 0; /* disabled until EPOLL_CTL_MOD re-arms it */
	queue_update(ep, st);   /* level-triggered: ask again at the next wait */
	return ev;
}

int epoll_wait(epoll_t ep, struct epoll_event *events, int maxevents, int timeout)
{
	OVERLAPPED_ENTRY done[MAX_COMPLETIONS];
	ULONGLONG until = timeout < 0 ? 0 : GetTickCount64() + (ULONGLONG)timeout;
	int n = 0;

	if (maxevents <= 0)
		return fail(EINVAL);
	if (maxevents > MAX_COMPLETIONS)
		maxevents = MAX_COMPLETIONS;
	for (;;) {
		ULONG got = 0;
		DWORD ms = INFINITE;
		update_all(ep);
		if (timeout >= 0) {
			ULONGLONG now = GetTickCount64();
			ms = now >= until ? 0 : (DWORD)(until - now);
		}
		if (!GetQueuedCompletionStatusEx(ep->iocp, done, (ULONG)maxevents, &got, ms, FALSE))
			got = 0; /* WAIT_TIMEOUT */
		for (ULONG i = 0; i < got; i++) {
			struct sock_state *st = (struct sock_state *)done[i].lpOverlapped;
			uint32_t ev = completed(ep, st);
			if (ev != 0) {
				events[n].events = ev;
				events[n].data = st->data;
				n++;
			}
		}
		/* Only cancellations and closes came back: keep waiting. */
		if (n > 0 || ms == 0)
			return n;
	}
}
