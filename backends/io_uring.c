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
 *     63                            3 2   0   op: 0 accept (no client)
 *     +-----------------------------+-----+       1 receive, 2 send, 3 file to pipe,
 *     | struct client * (8-aligned) | op  |       4 pipe to socket (splices),
 *     +-----------------------------+-----+       5 cancel (ignored)
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
 * bytes (and an EOF) are held and fed once the connection wants to read
 * again; past HOLD_MAX the receive is cancelled, so TCP flow control pushes
 * back on the peer as it does for epoll.c. Nothing moves conn.c's output
 * while a send points into it. A closed client's operations still point at
 * it: they are cancelled, and the last of their CQEs frees it.
 *
 * Static files go out without a copy through user space, as sendfile(2) does
 * for epoll.c: a splice moves up to a pipe's worth of the file into a pipe
 * (page references, not bytes), and a second splice, linked to it with
 * IOSQE_IO_LINK so that it starts only once the first is done, moves them on
 * into the socket. A short first splice breaks the link (the second ends
 * -ECANCELED); what is left in the pipe goes out on the next drive. Splices
 * run on kernel worker threads (io-wq), so a slow reader ties one up while
 * its socket is full; `ps -L` shows them as iou-wrk.
 *
 * Needs: Linux 5.19 (buffer rings, multishot accept), liburing 2.3. Falls
 * back from multishot receive (6.0) to one receive per SQE, and from
 * IORING_SETUP_DEFER_TASKRUN (6.1: completions are run only when the loop
 * waits) to the default. Refused by the kernel.io_uring_disabled sysctl or a
 * seccomp filter, the binary says so and exits with code 3. Built with
 * -DIOM_FAULTS, uring_faults.h makes its I/O awkward on purpose (tests).
 * Run:   bin/server-io_uring --port 8080, then curl localhost:8080/plaintext
 *
 * TODO: registered files would save every operation a look-up in the file
 *       table. What a busy connection holds before its cancel lands is
 *       bounded only by the socket's receive buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "../common/timer.h"
#include "backend.h"
#include "uring_faults.h"

enum {
	SQ_ENTRIES = 1024,               /* a full queue is submitted early */
	CQ_ENTRIES = 8192,               /* multishot SQEs post many CQEs each */
	BUF_COUNT = FAULT_TINY(512, 8),  /* receive buffers per loop, a power of two */
	BUF_SIZE = FAULT_TINY(8192, 64), /* room for a head, or many pipelined ones */
	HOLD_MAX = 16384,                /* input held while busy before receiving stops */
	PIPE_BYTES = 64 * 1024,          /* a pipe's default capacity: one splice's worth */
	MAX_WAIT_MS = 1000,              /* wake at least this often to notice a stop */
	ACCEPT_BACKOFF_MS = 100          /* pause accepting when out of descriptors */
};

enum { OP_ACCEPT, OP_RECV, OP_SEND, OP_FILL, OP_DRAIN, OP_CANCEL, OP_MASK = 7 };

/* What only a busy client needs, allocated while it does: an idle one costs
 * no more than its struct client. */
struct busy {
	char *held;                  /* bytes that came while busy (file header) */
	uint32_t held_len, held_off; /* held_off: how much was fed already */
	bool held_eof;               /* the peer's EOF came while busy */
	uint32_t piped;              /* file bytes in the pipe, not yet sent */
	int pipe[2];                 /* read and write end while sending a file */
};

struct client {
	struct conn conn;        /* the HTTP state machine (common/conn.h) */
	struct timer_node timer; /* its deadline in the loop's heap */
	int fd;                  /* once closed: ~fd (< 0) until its last CQE */
	unsigned recv_armed : 1; /* a receive whose last CQE is due */
	unsigned sends : 2;      /* sends or splices whose CQE is due (0..2) */
	struct busy *busy;       /* or NULL */
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

static void cancel(struct loop *l, struct client *cl, unsigned op)
{
	io_uring_prep_cancel64(get_sqe(l, NULL, OP_CANCEL), (uintptr_t)cl | op, 0);
}

/* Step 1 of a buffer's life: buffer `bid` goes (back) to the kernel. */
static void buf_give(struct loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE,
	                      (unsigned short)bid, io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* A pipe costs two descriptors, so a client holds one only while it sends
 * a file: 10,000 idle connections hold none. (A per-loop stock of spare
 * pipes would save a pipe2() and two close() per file, but would keep
 * descriptors open while the server is idle.) */
static void pipe_close(struct busy *b)
{
	close(b->pipe[0]);
	close(b->pipe[1]);
	b->pipe[0] = b->pipe[1] = -1;
	b->piped = 0;
}

static struct busy *busy_get(struct client *cl)
{
	if (cl->busy == NULL && (cl->busy = calloc(1, sizeof(*cl->busy))) != NULL)
		cl->busy->pipe[0] = cl->busy->pipe[1] = -1;
	return cl->busy;
}

/* Frees cl->busy once it holds nothing; closing, whatever it holds. */
static void busy_put(struct client *cl, bool closing)
{
	struct busy *b = cl->busy;

	if (b == NULL || (!closing && (b->held || b->held_eof || b->pipe[0] >= 0)))
		return;
	if (b->pipe[0] >= 0)
		pipe_close(b);
	free(b->held);
	free(b);
	cl->busy = NULL;
}

static bool client_holds(const struct client *cl)
{
	return cl->busy && (cl->busy->held_len > 0 || cl->busy->held_eof);
}

/* Ends the connection and cancels what is in flight; the struct lives on
 * until their last CQE, which calls this again to free it. Until then the
 * socket is only shut down, not closed: an operation not yet started (a
 * splice waiting for its link) looks its descriptor up when it starts, and
 * must not find another file that reused the number. */
static void client_close(struct loop *l, struct client *cl)
{
	if (cl->fd >= 0) {
		timer_remove(&l->timers, &cl->timer);
		server_conn_closed(l->w->srv);
		if (cl->recv_armed || cl->sends > 0)
			shutdown(cl->fd, SHUT_RDWR); /* also wakes a blocked splice */
		cl->fd = ~cl->fd;
		if (cl->recv_armed)
			cancel(l, cl, OP_RECV);
		for (unsigned op = OP_SEND; cl->sends > 0 && op <= OP_DRAIN; op++)
			cancel(l, cl, op);
	}
	if (cl->recv_armed || cl->sends > 0)
		return;
	close(~cl->fd);
	conn_free(&cl->conn);
	busy_put(cl, true);
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
	conn_init(&cl->conn, l->w->srv, l->now, CONN_SENDFILE);
	l->nclients++;
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
	return cl;
}

/* Submits a send of what the connection has queued: memory bytes stay put
 * in conn.c until conn_sent() (see the file header); a file's next piece is
 * spliced into the client's pipe, and from there into the socket, unless the
 * pipe still holds bytes: those go first. Returns 0 or -errno. */
static int client_send(struct loop *l, struct client *cl)
{
	struct conn_out out;
	struct io_uring_sqe *sqe;
	struct busy *b;
	size_t n;

	conn_output(&cl->conn, &out);
	if (out.len > 0) {
		sqe = get_sqe(l, cl, OP_SEND);
		io_uring_prep_send(sqe, cl->fd, out.data, FAULT_SEND_LEN(out.len), MSG_NOSIGNAL);
		cl->sends = 1;
		return 0;
	}
	if ((b = busy_get(cl)) == NULL)
		return -ENOMEM;
	if (b->pipe[0] < 0 && pipe2(b->pipe, O_CLOEXEC) != 0)
		return -errno;
	n = b->piped;
	if (n == 0) {
		n = out.file_len < PIPE_BYTES ? out.file_len : PIPE_BYTES;
		if (io_uring_sq_space_left(&l->ring) < 2)
			io_uring_submit(&l->ring); /* a link must not straddle a submit */
		sqe = get_sqe(l, cl, OP_FILL);
		io_uring_prep_splice(sqe, out.file_fd, out.file_off, b->pipe[1], -1,
		                     (unsigned)FAULT_SEND_LEN(n), 0);
		sqe->flags |= IOSQE_IO_LINK;
		cl->sends++;
	}
	sqe = get_sqe(l, cl, OP_DRAIN);
	io_uring_prep_splice(sqe, b->pipe[0], -1, cl->fd, -1, (unsigned)FAULT_SEND_LEN(n), 0);
	cl->sends++;
	return 0;
}

/* Step 3 of a buffer's life: the bytes (len 0: the EOF) go to conn_feed() if
 * the connection wants them now, else they are held until it does. Returns 0
 * or -ENOMEM. */
static int client_take(struct loop *l, struct client *cl, const char *data, size_t len)
{
	struct busy *b;
	char *p;

	if (!client_holds(cl) && conn_want(&cl->conn) == CONN_WANT_READ) {
		size_t n = FAULT_FEED_LEN(len);
		conn_feed(&cl->conn, data, n, l->now);
		if (n == len)
			return 0;
		data += n, len -= n; /* faults: the rest waits for client_release() */
	}
	if ((b = busy_get(cl)) == NULL)
		return -ENOMEM;
	if (len == 0) {
		b->held_eof = true;
		return 0;
	}
	if ((p = realloc(b->held, b->held_len + len)) == NULL)
		return -ENOMEM;
	memcpy(p + b->held_len, data, len);
	b->held = p;
	b->held_len += (uint32_t)len;
	if (b->held_len >= HOLD_MAX && b->held_len - len < HOLD_MAX && cl->recv_armed)
		cancel(l, cl, OP_RECV);
	return 0;
}

/* Feeds what client_take() held: a buffer's worth at a time, as epoll.c
 * reads, so that conn.c never buffers more than it would there; then the
 * EOF. */
static void client_release(struct loop *l, struct client *cl)
{
	struct busy *b = cl->busy;
	size_t n = b->held_len - b->held_off;

	if (n == 0) {
		b->held_eof = false;
		conn_feed(&cl->conn, NULL, 0, l->now);
		return;
	}
	n = FAULT_FEED_LEN(n < BUF_SIZE ? n : BUF_SIZE);
	conn_feed(&cl->conn, b->held + b->held_off, n, l->now);
	b->held_off += (uint32_t)n;
	if (b->held_off == b->held_len) {
		free(b->held);
		b->held = NULL;
		b->held_len = b->held_off = 0;
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
			if (client_holds(cl)) {
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
			sqe->ioprio |= l->multishot && !FAULT_ONESHOT() ? IORING_RECV_MULTISHOT : 0;
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0; /* our one buffer ring */
			cl->recv_armed = true;
			goto wait;
			/* LAB 6 END */
		case CONN_WANT_WRITE:
			if (cl->sends == 0 && client_send(l, cl) != 0) {
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
	busy_put(cl, false);
	timer_set(&l->timers, &cl->timer, conn_deadline(&cl->conn));
}

/* One CQE of a client's receive (steps 2 to 4 of a buffer's life) or send
 * (whole or short: the rest goes out on the next drive). */
static void client_complete(struct loop *l, struct client *cl, unsigned op,
                            const struct io_uring_cqe *cqe)
{
	/* LAB 6 BEGIN: no IORING_CQE_F_MORE: the operation is over (recv_armed, sends). */
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

	if (op == OP_SEND)
		cl->sends--;
	else if (!(cqe->flags & IORING_CQE_F_MORE)) /* the receive is over */
		cl->recv_armed = false;
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

/* One CQE of a file's splices: OP_FILL moved file bytes into the pipe,
 * OP_DRAIN moved them on into the socket (-ECANCELED: the fill before it was
 * short). Once the whole file is out, the pipe is closed. */
static void file_complete(struct loop *l, struct client *cl, unsigned op, int res)
{
	struct busy *b = cl->busy;
	struct conn_out out;

	cl->sends--;
	if (cl->fd < 0 || res == 0 || (res < 0 && !(op == OP_DRAIN && res == -ECANCELED))) {
		client_close(l, cl); /* the file shrank or failed; EPIPE; or counting down */
		return;
	}
	if (op == OP_FILL) {
		b->piped += (uint32_t)res;
	} else if (res > 0) {
		b->piped -= (uint32_t)res;
		conn_sent(&cl->conn, (size_t)res, l->now);
	}
	if (cl->sends == 0 && b->piped == 0) {
		conn_output(&cl->conn, &out);
		if (out.file_len == 0)
			pipe_close(b); /* the file is out */
	}
	client_drive(l, cl);
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
	int res;

	l->accept_armed = cqe->flags & IORING_CQE_F_MORE;
	res = FAULT_ACCEPT_RES(cqe->res, l->accept_armed);
	if (res < 0) {
		if (!net_accept_retry(-res))
			l->accept_again = l->now + ACCEPT_BACKOFF_MS;
	} else if (!server_conn_admit(l->w->srv)) {
		net_refuse(res);
	} else if ((cl = client_open(l, res)) != NULL) {
		client_drive(l, cl);
	}
	if (l->accept_armed && FAULT_ACCEPT_CANCEL())
		cancel(l, NULL, OP_ACCEPT);
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
		cancel(l, NULL, OP_ACCEPT);
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
		struct client *cl = (struct client *)(uintptr_t)(cqe->user_data - op);
		done = *cqe;
		io_uring_cq_advance(&l->ring, 1);
		if (op == OP_ACCEPT)
			accept_complete(l, &done);
		else if (op == OP_FILL || op == OP_DRAIN)
			file_complete(l, cl, op, done.res);
		else if (op != OP_CANCEL)
			client_complete(l, cl, op, &done);
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
