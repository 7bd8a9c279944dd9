/*
 * idle_holder.c - opens K keep-alive connections to a server, makes one
 * request on each, then holds them all open and idle until told to stop.
 *
 * What it is for: the idle-connection and memory-per-connection workloads of
 * the benchmark harness. While this program holds K idle connections, the
 * load generator measures 64 busy ones. A loop that scans every descriptor
 * it watches on every wake-up (poll, select) slows down as K grows; one that
 * is told only about the ready ones (epoll, kqueue, io_uring) does not. The
 * server's resident memory with K idle connections, minus its memory before
 * them, divided by K, is its memory per connection.
 *
 * Protocol with the harness: prints "holding K" on stdout once every
 * connection has had its answer, then waits for SIGTERM, SIGINT, EOF on
 * stdin or --max-seconds; on the way out it prints "closed-by-server N"
 * (connections the server dropped while they were idle; a server whose idle
 * timeout is shorter than the measurement makes that non-zero).
 *
 * Needs: POSIX sockets and poll(2); RLIMIT_NOFILE above K (it raises its own
 * soft limit to the hard one).
 * Run:   build/harness/idle_holder --port 8080 --conns 1000
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum {
	MAX_CONNS = 100000,
	IO_TIMEOUT_S = 10, /* per connect, send or receive */
	BATCH = 128,       /* connections opened before their answers are read */
};

struct options {
	const char *host;
	int port;
	int conns;
	const char *path;
	int max_seconds;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return -1;
		if (strcmp(argv[i], "--host") == 0)
			o->host = v;
		else if (strcmp(argv[i], "--port") == 0)
			o->port = atoi(v);
		else if (strcmp(argv[i], "--conns") == 0)
			o->conns = atoi(v);
		else if (strcmp(argv[i], "--path") == 0)
			o->path = v;
		else if (strcmp(argv[i], "--max-seconds") == 0)
			o->max_seconds = atoi(v);
		else
			return -1;
	}
	return o->port > 0 && o->conns >= 0 && o->conns <= MAX_CONNS && o->max_seconds > 0 ? 0 : -1;
}

/* Reads one response whose head ends in "\r\n\r\n" and whose body is
 * Content-Length bytes long. Returns 0, or -errno (-EPROTO: not HTTP). */
static int read_response(int fd)
{
	char buf[4096];
	size_t have = 0;
	char *end = NULL, *cl;

	while (end == NULL) {
		ssize_t n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		have += (size_t)n;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL && have == sizeof(buf) - 1)
			return -EPROTO;
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
		return -EPROTO;
	cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl != NULL && cl < end) {
		long body = strtol(cl + 17, NULL, 10) - (long)(have - (size_t)(end + 4 - buf));
		while (body > 0) {
			ssize_t n =
			        recv(fd, buf,
			             sizeof(buf) < (size_t)body ? sizeof(buf) : (size_t)body, 0);
			if (n <= 0)
				return n == 0 ? -ECONNRESET : -errno;
			body -= n;
		}
	}
	return 0;
}

/* Connects to the server and sends one keep-alive request. Returns the
 * socket, or -errno. The socket stays blocking with a receive/send timeout,
 * so a server that never answers cannot hang us. */
static int open_one(const struct sockaddr_in *sa, const char *req, size_t req_len)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 ||
	    send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Opens fds[from..to): first every connection and its request, then every
 * answer. Batching matters: the kernel completes a loopback handshake
 * without the server, so the server finds a whole batch ready at each
 * wake-up; one connection at a time would cost a server whose every wake-up
 * scans all its descriptors (poll) minutes at 10,000 connections.
 * Returns 0, or -errno with *failed set to the connection that failed. */
static int open_batch(int *fds, int from, int to, const struct sockaddr_in *sa, const char *req,
                      size_t req_len, int *failed)
{
	int rc;

	for (int i = from; i < to; i++) {
		if ((fds[i] = open_one(sa, req, req_len)) < 0) {
			*failed = i;
			return fds[i];
		}
	}
	for (int i = from; i < to; i++) {
		if ((rc = read_response(fds[i])) != 0) {
			*failed = i;
			return rc;
		}
	}
	return 0;
}

/* Counts held connections the server has closed (readable: EOF or reset). */
static int count_closed(int *fds, int n)
{
	struct pollfd *p = calloc((size_t)n + 1, sizeof(*p));
	int closed = 0;

	if (p == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	if (poll(p, (nfds_t)n, 0) > 0)
		for (int i = 0; i < n; i++)
			closed += (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
	free(p);
	return closed;
}

/* Holds until a signal, EOF on stdin, or the time limit. */
static void hold(int max_seconds)
{
	struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;

	for (int waited_ms = 0; !stopping && waited_ms < max_seconds * 1000; waited_ms += 200) {
		if (poll(&in, 1, 200) > 0 && read(STDIN_FILENO, &c, 1) <= 0)
			return;
	}
}

int main(int argc, char **argv)
{
	struct options o = { .host = "127.0.0.1", .path = "/plaintext", .max_seconds = 600 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct rlimit rl;
	char req[512];
	int *fds, n;

	if (parse_options(argc, argv, &o) != 0 || inet_pton(AF_INET, o.host, &sa.sin_addr) != 1) {
		fprintf(stderr,
		        "usage: %s --port N --conns K [--host IPv4] [--path /plaintext] "
		        "[--max-seconds 600]\n",
		        argv[0]);
		return 2;
	}
	sa.sin_port = htons((uint16_t)o.port);
	/* One descriptor per connection: take all the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", o.path, o.host);
	if ((fds = calloc((size_t)o.conns + 1, sizeof(*fds))) == NULL)
		return 1;
	for (int i = 0; i < o.conns; i += BATCH) {
		int failed = 0, end = i + BATCH < o.conns ? i + BATCH : o.conns;
		int rc = open_batch(fds, i, end, &sa, req, (size_t)n, &failed);
		if (rc != 0) {
			fprintf(stderr, "idle_holder: connection %d of %d: %s\n", failed + 1,
			        o.conns, strerror(-rc));
			return 1;
		}
	}
	printf("holding %d\n", o.conns);
	fflush(stdout);
	hold(o.max_seconds);
	printf("closed-by-server %d\n", count_closed(fds, o.conns));
	fflush(stdout);
	return 0;
}
