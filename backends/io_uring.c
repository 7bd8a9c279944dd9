/*
 * io_uring.c - a completion event loop on Linux io_uring.
 *
 * What it teaches: the proactor pattern, next to epoll.c's reactor. epoll
 * says which sockets are ready and the loop makes every call itself; here
 * the loop hands the kernel whole operations (accept, receive, send) and is
 * told when they are done, with their results. Two rings shared with the
 * kernel carry this: the loop queues submission queue entries (SQEs) and
 * hands over a batch with one io_uring_enter(), which also waits; the kernel
 * posts completion queue entries (CQEs), read without a system call.
 * Multishot accept and receive stay armed: one SQE, many CQEs.
 *
 * user_data, the 64 bits an SQE passes on to each of its CQEs:
 *
 *     63                              2 1 0
 *     +-------------------------------+---+   op: 0 accept (no client)
 *     | struct client * (8-aligned)   |op |       1 receive, 2 send
 *     +-------------------------------+---+       3 cancel (ignored)
 *
 * The life of a receive buffer, one of BUF_COUNT owned by the loop:
 *   1. the loop puts it in the buffer ring it shares with the kernel;
 *   2. bytes arrive: the kernel takes a buffer, fills it and posts a CQE
 *      whose flags carry the buffer's id;
 *   3. the loop hands the bytes to conn_feed(), which only borrows them;
 *   4. the loop puts the buffer back at once: step 1.
 * So an idle connection holds no buffer. A receive that finds the ring
 * empty ends with -ENOBUFS and is armed again.
 *
 * Busy connections: conn_feed() is called only when conn_want() says READ,
 * as in epoll.c, so conn.c sees the same calls in the same order. But a
 * multishot receive reads on while a response is being sent or delayed: those
 * bytes (and an EOF) are held by the client and fed once it wants to read
 * again; past HOLD_MAX the receive is cancelled, so TCP flow control pushes
 * back on the peer as it does for epoll.c. It also means that nothing moves
 * conn.c's output while a send (at most one per connection) points into it.
 * A closed client's operations still point at it: they are cancelled, and
 * the last of their CQEs frees it.
 *
 * Needs: Linux 5.19 (buffer rings, multishot accept), liburing 2.3. Falls
 * back from multishot receive (6.0) to one receive per SQE, and from
 * IORING_SETUP_DEFER_TASKRUN (6.1: completions are run only when the loop
 * waits) to the default. Refused by the kernel.io_uring_disabled sysctl or a
 * seccomp filter, the binary says so and exits with code 3.
 * Run:   bin/server-io_uring --port 8080, then curl localhost:8080/plaintext
 *
 * TODO: files go through memory (conn.c's pread path); splice(2) from the
 *       file through a pipe would be zero-copy. Registered files would save
 *       every operation a look-up in the file table.
 * TODO: what a busy connection holds before its cancel lands is bounded only
 *       by the socket's receive buffer; a hard cap would close such a peer.
 */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"

enum {
	SQ_ENTRIES = 1024,      /* a full queue is submitted early */
	CQ_ENTRIES = 8192,      /* multishot SQEs post many CQEs each */
	BUF_COUNT = 512,        /* receive buffers per loop, a power of two */
	BUF_SIZE = 8192,        /* room for a head, or many pipelined ones */
	HOLD_MAX = 16384,       /* input held while busy before receiving stops */
	MAX_WAIT_MS = 1000,     /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100 /* pause accepting when out of descriptors */
};

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL, OP_MASK = 3 };

struct client {
	struct conn conn;            /* the HTTP state machine (common/conn.h) */
	struct timer_node timer;     /* its deadline in the loop's heap */
	int fd;                      /* -1 once closed, while CQEs are still due */
	bool recv_armed, sending;    /* an operation whose last CQE is due */
	bool held_eof;               /* the peer's EOF came while busy */
	char *held;                  /* bytes that came while busy (file header) */
	uint32_t held_len, held_off; /* held_off: how much was fed already */
};
_Static_assert(_Alignof(struct client) > OP_MASK, "user_data needs the low bits");

/* Every open connection has a deadline, so the timer heap doubles as the
 * list of open connections (used at shutdown). */
struct loop {
	struct worker *w;
	struct io_uring ring;
	struct io_uring_buf_ring *br; /* the free receive buffers */
	char *bufs;                   /* BUF_COUNT * BUF_SIZE bytes */
	struct timer_heap timers;
	int nclients; /* allocated, closed ones awaiting CQEs included */
	int64_t now;
	int64_t accept_again; /* when to re-arm accept after EMFILE, or 0 */
	bool accept_armed, multishot;
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

/* A free SQE carrying cl | op (the prep helpers leave user_data alone). A
 * full queue is submitted first, so this always succeeds. */
static struct io_uring_sqe *get_sqe(struct loop *l, struct client *cl, unsigned op)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(&l->ring)) == NULL)
		io_uring_submit(&l->ring);
	io_uring_sqe_set_data64(sqe, (uintptr_t)cl | op);
	return sqe;
}

/* Step 1 of a buffer's life: buffer `bid` goes (back) to the kernel. */
static void buf_give(struct loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* Closes the socket and cancels what is in flight; the struct lives on until
 * their last CQE, which calls this again to free it. */
static void client_close(struct loop *l, struct client *cl)
{
	if (cl->fd >= 0) {
		timer_remove(&l->timers, &cl->timer);
		close(cl->fd); /* the kernel keeps the socket until the cancels */
		cl->fd = -1;
		server_conn_closed(l->w->srv);
		if (cl->recv_armed)
			io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), (uintptr_t)cl | OP_RECV,
			                       0);
		if (cl->sending)
			io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), (uintptr_t)cl | OP_SEND,
			                       0);
	}
	if (cl->recv_armed || cl->sending)
		return;
	conn_free(&cl->conn);
	free(cl->held);
	free(cl);
	l->nclients--;
}

static struct client *client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	int one = 1;

	if (cl == NULL) {
		close(fd);
		server_conn_closed(l->w->srv);
		return NULL;
	}
	/* net_accept() does this for the readiness backends */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, l->now, 0); /* no sendfile: conn.c reads files */
	l->nclients++;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
	return cl;
}

/* Submits a send of what the connection has queued; the bytes stay put in
 * conn.c until conn_sent() (see the file header). Returns 0 or -errno. */
static int client_send(struct loop *l, struct client *cl)
{
	struct conn_out out;

	conn_output(&cl->conn, &out);
	if (out.len == 0)
		return -EIO; /* conn_output found the file gone */
	io_uring_prep_send(get_sqe(l, cl, OP_SEND), cl->fd, out.data, out.len, MSG_NOSIGNAL);
	cl->sending = true;
	return 0;
}

/* Step 3 of a buffer's life: the bytes (len 0: the EOF) go to conn_feed() if
 * the connection wants them now, else they are held until it does. Returns 0
 * or -ENOMEM. */
static int client_take(struct loop *l, struct client *cl, const char *data, size_t len)
{
	char *p;

	if (cl->held_len == 0 && !cl->held_eof && conn_want(&cl->conn) == CONN_WANT_READ) {
		conn_feed(&cl->conn, data, len, l->now);
		return 0;
	}
	if (len == 0) {
		cl->held_eof = true;
		return 0;
	}
	if ((p = realloc(cl->held, cl->held_len + len)) == NULL)
		return -ENOMEM;
	memcpy(p + cl->held_len, data, len);
	cl->held = p;
	cl->held_len += (uint32_t)len;
	if (cl->held_len >= HOLD_MAX && cl->held_len - len < HOLD_MAX && cl->recv_armed)
		io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), (uintptr_t)cl | OP_RECV, 0);
	return 0;
}

/* Feeds what client_take() held: a buffer's worth at a time, as epoll.c
 * reads, so that conn.c never buffers more than it would there; then the
 * EOF. */
static void client_release(struct loop *l, struct client *cl)
{
	size_t n = cl->held_len - cl->held_off;

	if (n == 0) {
		cl->held_eof = false;
		conn_feed(&cl->conn, NULL, 0, l->now);
		return;
	}
	n = n < BUF_SIZE ? n : BUF_SIZE;
	conn_feed(&cl->conn, cl->held + cl->held_off, n, l->now);
	cl->held_off += (uint32_t)n;
	if (cl->held_off == cl->held_len) {
		free(cl->held);
		cl->held = NULL;
		cl->held_len = cl->held_off = 0;
	}
}

/* Submits what the connection wants unless it is in flight already. Every
 * CQE calls this again: one step per completion, not a loop until EAGAIN. */
static void client_drive(struct loop *l, struct client *cl)
{
	struct io_uring_sqe *sqe;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			if (cl->held_len > 0 || cl->held_eof) {
				client_release(l, cl);
				continue;
			}
			/* LAB 6 BEGIN: unless one is armed, queue a receive (get_sqe with OP_RECV): */
			/* LAB 6 HINT: no buffer of its own, IOSQE_BUFFER_SELECT from group 0, */
			/* LAB 6 HINT: IORING_RECV_MULTISHOT in ioprio when l->multishot. */
			/* LAB 6 STUB: (void)sqe; */
			/* LAB 6 STUB: client_close(l, cl); */
			/* LAB 6 STUB: return; */
			if (cl->recv_armed)
				goto wait;
			sqe = get_sqe(l, cl, OP_RECV);
			io_uring_prep_recv(sqe, cl->fd, NULL, 0, 0); /* the kernel picks a buffer */
			sqe->ioprio |= l->multishot ? IORING_RECV_MULTISHOT : 0;
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0; /* our one buffer ring */
			cl->recv_armed = true;
			goto wait;
			/* LAB 6 END */
		case CONN_WANT_WRITE:
			if (!cl->sending && client_send(l, cl) != 0) {
				client_close(l, cl);
				return;
			}
			goto wait;
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

/* One CQE of a client's receive (steps 2 to 4 of a buffer's life) or send
 * (whole or short: the rest goes out on the next drive). */
static void client_complete(struct loop *l, struct client *cl, unsigned op,
                            const struct io_uring_cqe *cqe)
{
	/* LAB 6 BEGIN: no IORING_CQE_F_MORE: the operation is over (clear its flag). */
	/* LAB 6 HINT: Receive: client_take() the bytes of buffer `bid`. Errors and */
	/* LAB 6 HINT: closed clients: client_close(). Send: conn_sent(). EOF: take */
	/* LAB 6 HINT: 0 bytes. -ENOBUFS, -ECANCELED: just re-arm. Then give the */
	/* LAB 6 HINT: buffer back (IORING_CQE_F_BUFFER) and client_drive() again. */
	/* LAB 6 STUB: (void)op; */
	/* LAB 6 STUB: (void)cqe; */
	/* LAB 6 STUB: (void)client_take; */
	/* LAB 6 STUB: client_close(l, cl); */
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE)) /* the operation is over */
		*(op == OP_RECV ? &cl->recv_armed : &cl->sending) = false;
	if (op == OP_RECV && res > 0 && cl->fd >= 0 &&
	    client_take(l, cl, l->bufs + (size_t)bid * BUF_SIZE, (size_t)res) != 0)
		res = -ENOMEM; /* could not hold it: give up on the connection */
	if (cl->fd < 0 || res == -ENOMEM || (op == OP_SEND && res < 0)) {
		if (cqe->flags & IORING_CQE_F_BUFFER)
			buf_give(l, bid);
		client_close(l, cl); /* EPIPE, ECONNRESET; or counting down */
		return;
	}
	if (op == OP_SEND)
		conn_sent(&cl->conn, (size_t)res, l->now);
	else if (res == -EINVAL && l->multishot)
		l->multishot = false; /* before Linux 6.0: one receive per SQE */
	else if (res <= 0 && res != -ENOBUFS && res != -ECANCELED) /* those: re-armed */
		client_take(l, cl, NULL, 0); /* EOF; ECONNRESET and friends too */
	if (cqe->flags & IORING_CQE_F_BUFFER)
		buf_give(l, bid);
	client_drive(l, cl);
	/* LAB 6 END */
}

/* One multishot accept: a CQE for every connection until an error ends it. */
static void accept_arm(struct loop *l)
{
	io_uring_prep_multishot_accept(get_sqe(l, NULL, OP_ACCEPT), l->w->listen_fd, NULL, NULL,
	                               SOCK_CLOEXEC);
	l->accept_armed = true;
}

/* One accept CQE: a new socket, or an error. Out of descriptors (or shut
 * down by main()), it backs off instead of spinning: pending connections
 * wait in the backlog until accept_again. */
static void accept_complete(struct loop *l, const struct io_uring_cqe *cqe)
{
	struct client *cl;

	l->accept_armed = cqe->flags & IORING_CQE_F_MORE;
	if (cqe->res < 0) {
		if (!net_accept_retry(-cqe->res))
			l->accept_again = l->now + ACCEPT_BACKOFF_MS;
	} else if (!server_conn_admit(l->w->srv)) {
		net_refuse(cqe->res);
	} else if ((cl = client_open(l, cqe->res)) != NULL) {
		client_drive(l, cl);
	}
	if (!l->accept_armed && l->accept_again == 0 && !server_stopping(l->w->srv))
		accept_arm(l);
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

	if (l->accept_armed)
		io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), OP_ACCEPT, 0);
	for (size_t i = 0; all != NULL && i < n; i++)
		all[i] = CLIENT_OF(l->timers.items[i]);
	for (size_t i = 0; all != NULL && i < n; i++) {
		conn_stop(&all[i]->conn);
		client_drive(l, all[i]);
	}
	free(all);
}

/* Submits the queued SQEs, waits up to ms for a CQE, and handles all there
 * are, each copied and released first so the CQ has room for what it starts. */
static void submit_and_reap(struct loop *l, int ms)
{
	struct __kernel_timespec ts = { .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L };
	struct io_uring_cqe *cqe, done;
	unsigned head;

	io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
	l->now = clock_ms();
	io_uring_for_each_cqe(&l->ring, head, cqe)
	{
		unsigned op = (unsigned)(cqe->user_data & OP_MASK);
		done = *cqe;
		io_uring_cq_advance(&l->ring, 1);
		if (op == OP_ACCEPT)
			accept_complete(l, &done);
		else if (op != OP_CANCEL)
			client_complete(l, (struct client *)(uintptr_t)(done.user_data - op), op,
			                &done);
	}
}

static int wait_ms(struct loop *l)
{
	int ms = timer_wait_ms(&l->timers, l->now, MAX_WAIT_MS);

	if (l->accept_again != 0 && l->accept_again - l->now < ms)
		ms = l->accept_again > l->now ? (int)(l->accept_again - l->now) : 0;
	return ms;
}

/* Sets up a ring with the most this kernel offers, and registers an empty
 * ring for nbufs receive buffers at *br. Returns 0 or -errno. */
static int ring_init(struct io_uring *ring, struct io_uring_buf_ring **br, unsigned nbufs)
{
	struct io_uring_params p = { .cq_entries = CQ_ENTRIES };
	struct io_uring_buf_reg reg = { .ring_entries = nbufs };
	void *mem = NULL;
	int rc;

	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if ((rc = io_uring_queue_init_params(SQ_ENTRIES, ring, &p)) == -EINVAL) {
		/* before Linux 6.1: completions run whenever the kernel likes */
		p = (struct io_uring_params){ .flags = IORING_SETUP_CQSIZE,
			                      .cq_entries = CQ_ENTRIES };
		rc = io_uring_queue_init_params(SQ_ENTRIES, ring, &p);
	}
	if (rc < 0)
		return rc;
	/* the kernel maps the buffer ring: it must start on a page */
	if ((rc = -posix_memalign(&mem, 4096, nbufs * sizeof(struct io_uring_buf))) == 0) {
		reg.ring_addr = (uintptr_t)mem;
		rc = io_uring_register_buf_ring(ring, &reg, 0);
	}
	if (rc < 0) {
		io_uring_queue_exit(ring);
		free(mem);
		return rc;
	}
	*br = mem;
	io_uring_buf_ring_init(*br);
	return 0;
}

/* Can this process use io_uring? It may be missing (ENOSYS), too old for
 * buffer rings (EINVAL), or refused by the kernel.io_uring_disabled sysctl
 * or a seccomp filter (EPERM). */
static int io_uring_probe(void)
{
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	int rc = ring_init(&ring, &br, 1);

	if (rc == 0) {
		io_uring_queue_exit(&ring);
		free(br);
	}
	return rc;
}

static int io_uring_run(struct worker *w)
{
	struct loop *l = calloc(1, sizeof(*l));
	int64_t give_up = 0, end;
	int rc = -ENOMEM;

	if (l == NULL || (l->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE)) == NULL ||
	    (rc = ring_init(&l->ring, &l->br, BUF_COUNT)) < 0) {
		free(l ? l->bufs : NULL);
		free(l);
		return rc;
	}
	l->w = w;
	l->now = clock_ms();
	l->multishot = true;
	for (unsigned i = 0; i < BUF_COUNT; i++)
		buf_give(l, i);
	accept_arm(l);
	while (give_up == 0 || (l->timers.len > 0 && l->now < give_up)) {
		submit_and_reap(l, wait_ms(l));
		if (l->accept_again != 0 && l->now >= l->accept_again && give_up == 0) {
			l->accept_again = 0;
			if (!l->accept_armed)
				accept_arm(l);
		}
		expire_timers(l);
		if (give_up == 0 && server_stopping(w->srv)) {
			give_up = l->now + SERVER_GRACE_MS;
			begin_stop(l);
		}
	}
	while (l->timers.len > 0)
		client_close(l, CLIENT_OF(timer_first(&l->timers)));
	/* Closed clients wait for the CQEs of their cancelled operations. */
	for (end = l->now + MAX_WAIT_MS; (l->nclients > 0 || l->accept_armed) && l->now < end;)
		submit_and_reap(l, 10);
	io_uring_queue_exit(&l->ring); /* unregisters the buffer ring too */
	timer_heap_free(&l->timers);
	free(l->br);
	free(l->bufs);
	free(l);
	return 0;
}

const struct backend backend = {
	.name = "io_uring",
	.probe = io_uring_probe,
	.run = io_uring_run,
};
