/*
 * io_uring.c - a completion event loop on Linux io_uring.
 *
 * What it teaches: the proactor pattern, beside epoll.c's reactor. The loop
 * hands the kernel whole operations (accept, receive, send) as submission
 * queue entries (SQEs), submits a batch with the one io_uring_enter() that
 * also waits, and reads their results as completion queue entries (CQEs)
 * without a system call. user_data, the 64 bits an SQE passes on to its
 * CQEs, holds the struct client * (8-aligned) with the operation in its low
 * 3 bits. Why each choice (a multishot accept, a provided-buffer ring, a
 * receive armed per request, sendfile with a poll): labs/lab6-io_uring.
 *
 * Needs: Linux 6.0 (IORING_SETUP_SINGLE_ISSUER), liburing 2.3. Where io_uring
 * is missing, older or refused (kernel.io_uring_disabled, seccomp), it says
 * so and exits with 3. -DIOM_FAULTS builds in uring_faults.h (tests).
 * Run:   bin/server-io_uring --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <liburing.h>
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
#include "uring_faults.h"

enum {
	SQ_ENTRIES = 1024,               /* a full queue is submitted early */
	CQ_ENTRIES = 8192,               /* a burst of accepts and receives */
	BUF_COUNT = FAULT_TINY(512, 8),  /* receive buffers per loop, a power of two */
	BUF_SIZE = FAULT_TINY(8192, 64), /* room for a head, or many pipelined ones */
	MAX_WAIT_MS = 1000,              /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100          /* pause accepting when out of descriptors */
};

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_POLL, OP_CANCEL, OP_MASK = 7 };
enum { RECEIVING = 1 << OP_RECV, SENDING = 1 << OP_SEND | 1 << OP_POLL };

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;                  /* once closed: ~fd (< 0) until its last CQE */
	uint8_t inflight;        /* 1 << op for each operation in flight */
};
_Static_assert(_Alignof(struct client) > OP_MASK, "user_data needs the low bits");

/* Every connection has a deadline: the heap doubles as their list (shutdown). */
struct loop {
	struct worker *w;
	struct io_uring ring;
	struct io_uring_buf_ring *br; /* the free receive buffers; the buffers follow */
	char *bufs;                   /* BUF_COUNT * BUF_SIZE bytes */
	struct timer_heap timers;
	int nclients; /* allocated, closed ones awaiting CQEs included */
	int64_t now;
	int64_t accept_again; /* while accept is not armed: when to arm it */
	bool accept_armed;
};

#define CLIENT_OF(t) ((struct client *)((char *)(t)-offsetof(struct client, timer)))

/* A free SQE carrying cl | op (the prep helpers leave user_data alone); a
 * client's op counts as in flight from here until its CQE. A full queue is
 * submitted first, so this always succeeds. */
static struct io_uring_sqe *get_sqe(struct loop *l, struct client *cl, unsigned op)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(&l->ring)) == NULL)
		io_uring_submit(&l->ring);
	io_uring_sqe_set_data64(sqe, (uintptr_t)cl | op);
	if (cl != NULL)
		cl->inflight |= 1u << op;
	return sqe;
}

/* Buffer `bid` goes (back) into the ring, for the kernel to fill. */
static void buf_give(struct loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* Ends the connection and cancels what is in flight on its socket; the
 * struct lives on until their last CQE, which calls this again to free it.
 * Until then the socket is only shut down, not closed: an operation the
 * kernel has not started yet looks its descriptor up when it starts, and
 * must not find another connection's socket that reused the number. */
static void client_close(struct loop *l, struct client *cl)
{
	if (cl->fd >= 0) {
		timer_remove(&l->timers, &cl->timer);
		server_conn_closed(l->w->srv);
		if (cl->inflight) {
			shutdown(cl->fd, SHUT_RDWR);
			io_uring_prep_cancel_fd(get_sqe(l, NULL, OP_CANCEL), cl->fd,
			                        IORING_ASYNC_CANCEL_ALL);
		}
		cl->fd = ~cl->fd;
	}
	if (cl->inflight)
		return;
	close(~cl->fd);
	conn_free(&cl->conn);
	free(cl);
	l->nclients--;
}

static void client_drive(struct loop *l, struct client *cl);

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		close(fd);
		server_conn_closed(l->w->srv);
		return;
	}
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	l->nclients++;
	client_drive(l, cl); /* arms the first receive and the deadline */
}

/* Starts sending what the connection has queued: a send of its bytes, or a
 * file's next piece by sendfile(2) at once, or if the socket is full a poll
 * for room. Returns 0 or -errno. */
static int client_send(struct loop *l, struct client *cl)
{
	struct conn_out out;
	ssize_t n;

	conn_output(&cl->conn, &out);
	if (out.len == 0 && out.file_len == 0)
		return 0; /* conn_output found the file gone: conn_want() says CLOSE */
	if (out.len > 0) {
		io_uring_prep_send(get_sqe(l, cl, OP_SEND), cl->fd, out.data,
		                   FAULT_SEND_LEN(out.len), MSG_NOSIGNAL);
		return 0;
	}
	n = sendfile(cl->fd, out.file_fd, &(off_t){ (off_t)out.file_off },
	             FAULT_SEND_LEN(out.file_len));
	if (n >= 0) {
		conn_sent(&cl->conn, (size_t)n, l->now); /* 0: the file shrank, conn.c closes */
		return 0;
	}
	if (errno != EAGAIN)
		return -errno; /* the peer is gone */
	io_uring_prep_poll_add(get_sqe(l, cl, OP_POLL), cl->fd, POLLOUT);
	return 0;
}

/* Submits what the connection wants unless it is in flight already. Every
 * CQE calls this again: one step per completion, not a loop until EAGAIN. */
static void client_drive(struct loop *l, struct client *cl)
{
	struct io_uring_sqe *sqe;

	for (;;) {
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			/* LAB 6 BEGIN: unless one is in flight, queue a receive (get_sqe, OP_RECV): */
			/* LAB 6 HINT: no buffer of its own, IOSQE_BUFFER_SELECT from group 0. */
			/* LAB 6 STUB: (void)sqe; */
			/* LAB 6 STUB: client_close(l, cl); */
			/* LAB 6 STUB: return; */
			if (cl->inflight & RECEIVING)
				goto wait;
			sqe = get_sqe(l, cl, OP_RECV);
			io_uring_prep_recv(sqe, cl->fd, NULL, 0, 0); /* the kernel picks a buffer */
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0; /* our one buffer ring */
			goto wait;
			/* LAB 6 END */
		case CONN_WANT_WRITE:
			if (!(cl->inflight & SENDING) && client_send(l, cl) < 0) {
				client_close(l, cl);
				return;
			}
			if (cl->inflight & SENDING)
				goto wait;
			continue; /* sendfile(2) is done: conn_want() says what next */
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

/* One CQE of a client's operation: a receive, a send (whole or short: the
 * rest goes out on the next drive), or the poll that says a full socket has
 * room again. */
static void client_complete(struct loop *l, struct client *cl, unsigned op,
                            const struct io_uring_cqe *cqe)
{
	/* LAB 6 BEGIN: the operation is over: clear its bit in cl->inflight. */
	/* LAB 6 HINT: Receive: conn_feed() buffer `bid` (res 0: EOF; -ENOBUFS: re-arm). */
	/* LAB 6 HINT: Send: conn_sent(). Errors, closed clients: client_close(). */
	/* LAB 6 HINT: Give back the buffer (IORING_CQE_F_BUFFER), then client_drive() again. */
	/* LAB 6 STUB: (void)op; */
	/* LAB 6 STUB: (void)cqe; */
	/* LAB 6 STUB: client_close(l, cl); */
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	int res = cqe->res;

	cl->inflight &= ~(1u << op); /* this operation is over */
	if (cl->fd >= 0 && op == OP_RECV && res > 0)
		conn_feed(&cl->conn, l->bufs + (size_t)bid * BUF_SIZE, (size_t)res, l->now);
	if (cqe->flags & IORING_CQE_F_BUFFER)
		buf_give(l, bid);
	if (cl->fd < 0 || (op != OP_RECV && res < 0)) {
		client_close(l, cl); /* EPIPE, ECONNRESET; or counting down */
		return;
	}
	if (op == OP_SEND)
		conn_sent(&cl->conn, (size_t)res, l->now);
	else if (op == OP_RECV && res <= 0 && res != -ENOBUFS)
		conn_feed(&cl->conn, NULL, 0, l->now); /* EOF; ECONNRESET and friends too */
	client_drive(l, cl);
	/* LAB 6 END */
}

/* One accept CQE: a new socket, or an error. Out of descriptors (or with the
 * listener shut down at a stop), it backs off instead of spinning: pending
 * connections wait in the backlog until accept_again, when it is armed again. */
static void accept_complete(struct loop *l, const struct io_uring_cqe *cqe)
{
	int res;

	l->accept_armed = cqe->flags & IORING_CQE_F_MORE;
	res = FAULT_ACCEPT_RES(cqe->res, l->accept_armed);
	if (res < 0)
		l->accept_again = l->now + (net_accept_retry(-res) ? 0 : ACCEPT_BACKOFF_MS);
	else if (!server_conn_admit(l->w->srv))
		net_refuse(res);
	else
		client_open(l, res);
	if (l->accept_armed && FAULT_ACCEPT_CANCEL())
		io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), OP_ACCEPT, 0);
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

/* Shutdown: stop accepting, and tell every connection to finish up. main()
 * shuts the listener down, which ends the multishot accept. */
static void begin_stop(struct loop *l)
{
	size_t n = l->timers.len;
	struct client **all = malloc(n * sizeof(*all) + 1);

	l->accept_again = INT64_MAX; /* never again */
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

	if (!l->accept_armed && l->accept_again - l->now < ms)
		ms = l->accept_again > l->now ? (int)(l->accept_again - l->now) : 0;
	return ms;
}

/* Releases what loop_open() set up (it calls this itself if it fails). */
static void loop_close(struct loop *l)
{
	io_uring_queue_exit(&l->ring); /* unregisters the buffer ring too */
	timer_heap_free(&l->timers);
	free(l->br);
}

/* Sets up the ring and a buffer ring holding all BUF_COUNT receive buffers.
 * COOP_TASKRUN: completions that need this thread wait for its next system
 * call; DEFER_TASKRUN (its next io_uring_enter) left a 100 ms tail at 1024
 * connections (docs/performance-notes.md). Returns 0 or -errno: ENOSYS (no
 * io_uring), EPERM (refused), EINVAL (a kernel older than 6.0). */
static int loop_open(struct loop *l)
{
	struct io_uring_params p = { .cq_entries = CQ_ENTRIES };
	struct io_uring_buf_reg reg = { .ring_entries = BUF_COUNT };
	size_t ring_size = BUF_COUNT * sizeof(struct io_uring_buf);
	int rc;

	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
	if ((rc = io_uring_queue_init_params(SQ_ENTRIES, &l->ring, &p)) < 0)
		return rc;
	/* the kernel maps the buffer ring: it must start on a page */
	rc = -posix_memalign((void **)&l->br, 4096, ring_size + (size_t)BUF_COUNT * BUF_SIZE);
	reg.ring_addr = (uintptr_t)l->br;
	if (rc < 0 || (rc = io_uring_register_buf_ring(&l->ring, &reg, 0)) < 0) {
		loop_close(l);
		return rc;
	}
	l->bufs = (char *)l->br + ring_size;
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < BUF_COUNT; i++)
		buf_give(l, i);
	return 0;
}

static int io_uring_probe(void)
{
	struct loop l = { 0 };
	int rc = loop_open(&l);

	if (rc == 0)
		loop_close(&l);
	return rc;
}

static int io_uring_run(struct worker *w)
{
	struct loop loop = { .w = w }, *l = &loop;
	int64_t give_up = 0, end;
	int rc = loop_open(l);

	if (rc < 0)
		return rc;
	l->now = clock_ms();
	while (give_up == 0 || (l->timers.len > 0 && l->now < give_up)) {
		if (!l->accept_armed && l->now >= l->accept_again) {
			/* one multishot accept: a CQE per connection until an error */
			io_uring_prep_multishot_accept(get_sqe(l, NULL, OP_ACCEPT), w->listen_fd,
			                               NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			l->accept_armed = true;
		}
		submit_and_reap(l, wait_ms(l));
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
	loop_close(l);
	return 0;
}

const struct backend backend = {
	.name = "io_uring",
	.probe = io_uring_probe,
	.run = io_uring_run,
};
