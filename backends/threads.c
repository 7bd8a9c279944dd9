/*
 * threads.c - one thread per connection, blocking sockets.
 *
 * What it teaches: the oldest server design, the baseline for every event
 * loop. Each connection's own thread drives the conn.h loop with blocking
 * recv/send/sendfile: the scheduler is the event loop and the stack holds the
 * connection's place. --workers N starts N acceptors, each blocked in accept()
 * on its own SO_REUSEPORT listener: they spread accepts, not concurrency.
 *
 * Timeouts without a timer heap: a blocked call cannot look at a clock, but
 * the socket can. SO_RCVTIMEO and SO_SNDTIMEO hold the time left until
 * conn_deadline(); a call that times out fails with EAGAIN, and the loop then
 * calls conn_timeout(). A /delay simply sleeps: only its own thread waits.
 *
 * Stopping: a blocked thread hears nothing of the stop, so each acceptor keeps
 * a registry of its live connections and interrupts their threads with a
 * signal whose handler does nothing: the call fails with EINTR, and the thread
 * calls conn_stop() on the conn it alone owns (shutdown(SHUT_RD) would wake it
 * too, but then a half-received request could never finish).
 *
 * Stacks: 64 KiB, not 8 MiB (measured peaks: 15 KiB for /plaintext, 33 KiB
 * for /static with realpath(), 36 KiB under ASan).
 * Needs: POSIX threads; sendfile(2) (Linux) for static files.
 * Run:   bin/server-threads --port 8080, then curl localhost:8080/plaintext
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/conn.h"
#include "../common/net.h"
#include "backend.h"

enum {
	STACK_SIZE = 64 * 1024,  /* per connection thread (file header) */
	READ_BUF = 16 * 1024,    /* one per connection: every thread reads on its own */
	MAX_TIMEO_MS = 3600000,  /* SO_RCVTIMEO cap; 0 would mean "forever" */
	TIMEO_SLACK_MS = 50,     /* re-arm the socket timeouts only past this drift */
	ACCEPT_BACKOFF_MS = 100, /* pause accepting when out of descriptors */
	WAKE_SIGNAL = SIGUSR1,   /* interrupts a blocked call at shutdown */
	WAKE_AGAIN_MS = 20       /* repeat it for threads that missed it */
};

struct client {
	struct conn conn; /* the HTTP state machine (common/conn.h) */
	struct loop *l;
	struct client *next, **pprev; /* the acceptor's registry; pprev points at us */
	pthread_t tid;
	atomic_bool stopped; /* its thread has called conn_stop() */
	int fd;
	int64_t timeo; /* SO_RCVTIMEO/SO_SNDTIMEO as set now, ms; 0: not yet */
	char buf[READ_BUF];
};

/* One acceptor's state, shared with its connection threads under `lock`.
 * The last to leave frees it: the acceptor, or a connection that overran. */
struct loop {
	struct worker *w;
	pthread_mutex_t lock;
	struct client *clients;
	int nclients;
	bool abandoned;      /* the acceptor has returned */
	pthread_attr_t attr; /* detached, STACK_SIZE */
};

/* Leaves the registry, then closes: the acceptor only signals threads and
 * shuts down descriptors in the registry, never one that is gone. */
static void client_close(struct client *cl)
{
	struct loop *l = cl->l;
	struct server *srv = l->w->srv; /* l may be gone once unlocked */

	pthread_mutex_lock(&l->lock);
	*cl->pprev = cl->next;
	if (cl->next != NULL)
		cl->next->pprev = cl->pprev;
	bool last = --l->nclients == 0 && l->abandoned;
	pthread_mutex_unlock(&l->lock);
	close(cl->fd);
	conn_free(&cl->conn);
	free(cl);
	server_conn_closed(srv);
	if (last) {
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
}

static void *client_main(void *arg);

static void client_open(struct loop *l, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	int err;

	if (cl == NULL) {
		close(fd);
		server_conn_closed(l->w->srv);
		return;
	}
	cl->l = l;
	cl->fd = fd;
	conn_init(&cl->conn, l->w->srv, clock_ms(), CONN_SENDFILE);
	pthread_mutex_lock(&l->lock);
	cl->next = l->clients;
	cl->pprev = &l->clients;
	if (l->clients != NULL)
		l->clients->pprev = &cl->next;
	l->clients = cl;
	l->nclients++;
	/* Under the lock, so the registry never holds a half-written tid. */
	/* LAB 1 BEGIN: one thread per connection: start client_main(cl) with l->attr */
	/* LAB 1 STUB: (void)client_main; */
	/* LAB 1 STUB: err = ENOSYS; */
	err = pthread_create(&cl->tid, &l->attr, client_main, cl);
	/* LAB 1 END */
	pthread_mutex_unlock(&l->lock);
	if (err != 0)
		client_close(cl); /* out of threads: this one is dropped */
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

/* Sets SO_RCVTIMEO and SO_SNDTIMEO to the time left until the deadline, so a
 * blocked call gives up when conn_timeout() is due. An idle keep-alive's time
 * left is the same after every request: then the system calls are skipped. */
static void client_arm(struct client *cl, int64_t now)
{
	/* LAB 1 BEGIN: set both to the time left (>= 1 ms: 0 is forever); skip if it barely moved */
	/* LAB 1 STUB: (void)cl; */
	/* LAB 1 STUB: (void)now; */
	int64_t left = conn_deadline(&cl->conn) - now;

	left = left < 1 ? 1 : left > MAX_TIMEO_MS ? MAX_TIMEO_MS : left;
	if (cl->timeo != 0 && llabs(left - cl->timeo) < TIMEO_SLACK_MS)
		return;
	struct timeval tv = { .tv_sec = left / 1000, .tv_usec = left % 1000 * 1000 };
	setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cl->timeo = left;
	/* LAB 1 END */
}

/* Does what the connection wants, blocking in every call, until it closes. */
static void client_drive(struct client *cl)
{
	/* LAB 1 BEGIN: loop on conn_want(): blocking recv / client_send / sleep to the deadline; */
	/* LAB 1 HINT: arm the timeouts first; EAGAIN: conn_timeout(); EINTR: server_stopping()? */
	/* LAB 1 STUB: (void)cl; */
	/* LAB 1 STUB: (void)client_send; */
	/* LAB 1 STUB: (void)client_arm; */
	struct timespec until;
	int64_t now;
	ssize_t n;

	for (;;) {
		now = clock_ms();
		if (server_stopping(cl->l->w->srv) && !atomic_exchange(&cl->stopped, true))
			conn_stop(&cl->conn); /* once */
		if (now >= conn_deadline(&cl->conn))
			conn_timeout(&cl->conn, now);
		switch (conn_want(&cl->conn)) {
		case CONN_WANT_READ:
			client_arm(cl, now);
			n = recv(cl->fd, cl->buf, sizeof(cl->buf), 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue; /* EINTR: the stop signal; EAGAIN: timed out */
			if (n < 0)
				n = 0; /* ECONNRESET and friends: treat as EOF */
			conn_feed(&cl->conn, cl->buf, (size_t)n, clock_ms());
			continue;
		case CONN_WANT_WRITE:
			client_arm(cl, now);
			n = client_send(cl);
			if (n == -EINTR || n == -EAGAIN)
				continue; /* EAGAIN: SO_SNDTIMEO ran out; see the top */
			if (n < 0)
				return;
			conn_sent(&cl->conn, (size_t)n, clock_ms());
			continue;
		case CONN_WANT_WAIT:
			until.tv_sec = conn_deadline(&cl->conn) / 1000;
			until.tv_nsec = conn_deadline(&cl->conn) % 1000 * 1000000;
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
			continue;
		case CONN_WANT_SHUTDOWN: /* a lingering close (conn.h) */
			shutdown(cl->fd, SHUT_WR);
			conn_shut(&cl->conn, clock_ms());
			continue;
		case CONN_WANT_CLOSE:
			return;
		}
	}
	/* LAB 1 END */
}

static void *client_main(void *arg)
{
	client_drive(arg);
	client_close(arg);
	return NULL;
}

/* Accepts, blocking, until main() shuts the listener down (accept() then
 * fails with EINVAL). Out of descriptors, it sleeps instead of spinning. */
static void accept_all(struct loop *l)
{
	for (;;) {
		int fd = net_accept(l->w->listen_fd, false);
		if (fd < 0) {
			if (server_stopping(l->w->srv))
				return;
			if (!net_accept_retry(-fd))
				usleep(ACCEPT_BACKOFF_MS * 1000); /* EMFILE and friends */
			continue;
		}
		if (!server_conn_admit(l->w->srv)) {
			net_refuse(fd);
			continue;
		}
		client_open(l, fd);
	}
}

static void on_wake(int sig)
{
	(void)sig; /* interrupting the blocked call is the whole point */
}

static int threads_run(struct worker *w)
{
	struct loop *l = calloc(1, sizeof(*l));
	struct sigaction sa = { .sa_handler = on_wake }; /* no SA_RESTART: EINTR */

	if (l == NULL)
		return -ENOMEM;
	l->w = w;
	pthread_mutex_init(&l->lock, NULL);
	pthread_attr_init(&l->attr);
	pthread_attr_setstacksize(&l->attr, STACK_SIZE);
	pthread_attr_setdetachstate(&l->attr, PTHREAD_CREATE_DETACHED);
	sigemptyset(&sa.sa_mask);
	sigaction(WAKE_SIGNAL, &sa, NULL);
	accept_all(l);
	pthread_attr_destroy(&l->attr);
	int64_t give_up = clock_ms() + SERVER_GRACE_MS;
	pthread_mutex_lock(&l->lock);
	/* Shutdown: interrupt each thread that has not seen the stop yet, again
	 * and again (a signal landing just before its thread blocks is lost).
	 * Under `lock`, no registered thread has exited. */
	while (l->nclients > 0 && clock_ms() < give_up) {
		for (struct client *cl = l->clients; cl != NULL; cl = cl->next)
			if (!atomic_load(&cl->stopped))
				pthread_kill(cl->tid, WAKE_SIGNAL);
		pthread_mutex_unlock(&l->lock);
		usleep(WAKE_AGAIN_MS * 1000);
		pthread_mutex_lock(&l->lock);
	}
	for (struct client *cl = l->clients; cl != NULL; cl = cl->next)
		shutdown(cl->fd, SHUT_RDWR); /* overran the grace: cut it short */
	l->abandoned = true;
	bool last = l->nclients == 0;
	pthread_mutex_unlock(&l->lock);
	if (last) {
		pthread_mutex_destroy(&l->lock);
		free(l);
	}
	return 0;
}

const struct backend backend = {
	.name = "threads",
	.run = threads_run,
};
