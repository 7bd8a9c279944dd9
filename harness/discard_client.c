/*
 * discard_client.c - a closed-loop HTTP/1.1 load generator that throws the
 * response bodies away inside the kernel.
 *
 * What it is for: the benchmark's static-file workload. wrk copies every
 * body byte into its own memory, 8 KiB per read (with an ioctl(FIONREAD)
 * beside each): about 4x the server's own CPU time for a 1 MiB file on
 * loopback, so with wrk every server showed the client's speed, not its
 * own. Here only the response head is copied; the body is dropped with
 * recv(fd, buf, left, MSG_TRUNC), which on a TCP socket frees the bytes
 * without copying them (tcp(7)). Each call is bounded by what is left of
 * the body, so the next response's bytes are never thrown away.
 *
 * What it teaches: a closed loop (one request in flight per connection, the
 * next sent when the last body byte is in), a non-blocking client over
 * level-triggered epoll, a response head that arrives split or together
 * with the start of its body, and a latency histogram of fixed size.
 *
 * Latency: from just before the request's send() to the recv() that takes
 * the last body byte, CLOCK_MONOTONIC. Kept in a log-linear histogram of
 * nanoseconds: exact below 128 ns, then 64 buckets per power of two, each
 * reported at its midpoint, so a percentile is within 0.8 % of the true
 * value; memory is fixed whatever the run length. min, max, mean and stdev
 * are exact. A request still in flight at the end is not counted.
 *
 * Errors, by kind (the keys of the wrk rows): connect (refused, or a
 * connection that failed to open), read (closed or reset by the server, a
 * response that cannot be parsed or has no Content-Length), write (the
 * request could not be sent whole), status (an answer other than 200),
 * timeout (no complete answer within --timeout). After any of them the
 * connection is closed and opened again; none of them counts as a request.
 *
 * Output: one JSON object on stdout. Exit 0 after a run, 2 on bad flags,
 * 1 if no connection could be opened at all.
 *
 * Needs: Linux (epoll, MSG_TRUNC on TCP). Built as build/harness/discard_client
 * by make bench-tools.
 * Run:   build/harness/discard_client --port 8080 --path /static/1m.bin \
 *            --conns 64 --duration 2
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	MAX_CONNS = 10000,
	MAX_EVENTS = 256,
	HEAD_MAX = 4096,       /* a response head must fit here */
	RETRY_MS = 10,         /* a connection that failed to open waits this long */
	SUB_BITS = 6,          /* 2^6 = 64 histogram buckets per power of two */
	EXACT = 2 << SUB_BITS, /* values below this have a bucket each */
	BUCKETS = EXACT + (64 - SUB_BITS - 1) * (1 << SUB_BITS),
};

enum conn_state { CS_CLOSED, CS_CONNECTING, CS_HEAD, CS_BODY };
enum err_kind { E_CONNECT, E_READ, E_WRITE, E_STATUS, E_TIMEOUT, E_KINDS };
static const char *const err_names[E_KINDS] = { "connect", "read", "write", "status", "timeout" };

struct conn {
	int fd;
	enum conn_state state;
	uint64_t sent_ns;  /* when the request in flight was sent */
	uint64_t retry_ns; /* CS_CLOSED: when to try opening again */
	size_t have;       /* head bytes in head[] */
	uint64_t left;     /* body bytes still to discard */
	char head[HEAD_MAX + 1];
};

struct options {
	const char *host;
	int port;
	const char *path;
	int conns;
	double duration_s;
	double timeout_s;
};

struct stats {
	uint64_t requests;
	uint64_t bytes;
	uint64_t errors[E_KINDS];
	uint64_t hist[BUCKETS];
	uint64_t min_ns, max_ns;
	double sum, sum_sq; /* in microseconds */
	int ever_connected;
};

static volatile sig_atomic_t stopping;
static struct stats st = { .min_ns = UINT64_MAX };
static char request[1024];
static size_t request_len;
static struct sockaddr_in server;
static int epfd;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The histogram bucket of a value: itself below EXACT, otherwise the power
 * of two it lies in and its top SUB_BITS + 1 bits. */
static int hist_index(uint64_t v)
{
	if (v < EXACT)
		return (int)v;
	int msb = 63 - __builtin_clzll(v);
	int shift = msb - SUB_BITS;
	return EXACT + (shift - 1) * (1 << SUB_BITS) + (int)((v >> shift) - (1u << SUB_BITS));
}

/* The middle of a bucket's range of values (the inverse of hist_index). */
static double hist_value(int i)
{
	if (i < EXACT)
		return i;
	int shift = (i - EXACT) / (1 << SUB_BITS) + 1;
	uint64_t low = ((uint64_t)((i - EXACT) % (1 << SUB_BITS)) + (1u << SUB_BITS)) << shift;
	return (double)low + (double)((uint64_t)1 << shift) / 2.0;
}

static void record(uint64_t ns)
{
	double us = (double)ns / 1000.0;

	st.hist[hist_index(ns)]++;
	st.min_ns = ns < st.min_ns ? ns : st.min_ns;
	st.max_ns = ns > st.max_ns ? ns : st.max_ns;
	st.sum += us;
	st.sum_sq += us * us;
}

/* The q-quantile (0 < q <= 1) in microseconds: the smallest bucket under
 * which at least q of the samples lie, clamped to the exact min and max. */
static double percentile_us(double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)st.requests), seen = 0;
	double v = (double)st.max_ns;

	if (want == 0)
		want = 1;
	for (int i = 0; i < BUCKETS; i++) {
		seen += st.hist[i];
		if (seen >= want) {
			v = hist_value(i);
			break;
		}
	}
	if (v < (double)st.min_ns)
		v = (double)st.min_ns;
	if (v > (double)st.max_ns)
		v = (double)st.max_ns;
	return v / 1000.0;
}

/* Closes a connection after an error of that kind (or at the end, with
 * E_KINDS: no error) and schedules it to be opened again. */
static void drop(struct conn *c, enum err_kind kind, uint64_t now)
{
	if (kind < E_KINDS)
		st.errors[kind]++;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CS_CLOSED;
	c->retry_ns = now + (kind == E_CONNECT ? RETRY_MS * 1000000u : 0);
}

/* Sends the request on a connected socket; the clock of the request starts
 * here. The request is far smaller than any socket buffer, so it goes whole
 * or the connection is broken. */
static void send_request(struct conn *c)
{
	c->sent_ns = now_ns();
	if (send(c->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
		drop(c, E_WRITE, c->sent_ns);
		return;
	}
	c->state = CS_HEAD;
	c->have = 0;
}

/* Starts a non-blocking connect. Loopback usually completes it at once;
 * otherwise EPOLLOUT says when it is done (or failed). */
static void open_conn(struct conn *c, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		drop(c, E_CONNECT, now);
		return;
	}
	if (connect(c->fd, (const struct sockaddr *)&server, sizeof(server)) != 0 &&
	    errno != EINPROGRESS) {
		drop(c, E_CONNECT, now);
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		drop(c, E_CONNECT, now);
		return;
	}
	c->state = CS_CONNECTING;
	c->sent_ns = now; /* the connect's own timeout starts now */
}

/* The connect finished: check how, then watch for reading only. */
static void on_connected(struct conn *c, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		drop(c, E_CONNECT, now);
		return;
	}
	st.ever_connected = 1;
	send_request(c);
}

/* A whole head is in head[0..have) and ends at end. Checks the status line
 * and takes Content-Length. Returns the body length, or -1 (an error of
 * kind *kind). */
static long long parse_head(struct conn *c, const char *end, enum err_kind *kind)
{
	const char *p = c->head;

	*kind = E_READ;
	if (strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
		return -1;
	if (strncmp(p + 9, "200", 3) != 0 || (p[12] != ' ' && p[12] != '\r')) {
		*kind = E_STATUS;
		return -1;
	}
	while ((p = strchr(p, '\n')) != NULL && p < end) {
		p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0) {
			char *stop;
			long long n = strtoll(p + 15, &stop, 10);
			return n >= 0 && stop != p + 15 && (*stop == '\r' || *stop == ' ') ? n : -1;
		}
	}
	return -1;
}

/* Reads head bytes until the head is whole. Returns 1 when it is, 0 when
 * the socket has no more for now, -1 when the connection was dropped. */
static int read_head(struct conn *c, uint64_t now)
{
	enum err_kind kind;

	for (;;) {
		ssize_t n = recv(c->fd, c->head + c->have, HEAD_MAX - c->have, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			drop(c, E_READ, now);
			return -1;
		}
		c->have += (size_t)n;
		c->head[c->have] = '\0';
		char *end = strstr(c->head, "\r\n\r\n");
		if (end == NULL && c->have == HEAD_MAX) {
			drop(c, E_READ, now); /* a head this long is not a static file's */
			return -1;
		}
		if (end == NULL)
			continue;
		long long body = parse_head(c, end, &kind);
		size_t head_len = (size_t)(end + 4 - c->head);
		/* One request in flight: nothing may follow this body yet. */
		if (body < 0 || (unsigned long long)body < c->have - head_len) {
			drop(c, body < 0 ? kind : E_READ, now);
			return -1;
		}
		st.bytes += c->have;
		c->left = (uint64_t)body - (c->have - head_len);
		c->state = CS_BODY;
		return 1;
	}
}

/* Discards body bytes without copying them. When the last one is gone the
 * request counts, and the next one is sent. */
static void discard_body(struct conn *c, uint64_t now)
{
	char sink[1];

	while (c->left > 0) {
		size_t want = c->left > SSIZE_MAX ? SSIZE_MAX : (size_t)c->left;
		ssize_t n = recv(c->fd, sink, want, MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			drop(c, E_READ, now);
			return;
		}
		c->left -= (uint64_t)n;
		st.bytes += (uint64_t)n;
	}
	now = now_ns();
	st.requests++;
	record(now - c->sent_ns);
	send_request(c);
}

static void on_event(struct conn *c)
{
	uint64_t now = now_ns();

	if (c->state == CS_CONNECTING) {
		on_connected(c, now);
		return;
	}
	if (c->state == CS_HEAD && read_head(c, now) <= 0)
		return;
	if (c->state == CS_BODY)
		discard_body(c, now);
}

/* Opens the closed connections whose retry time has come, and drops those
 * whose request (or connect) has waited past the timeout. */
static void tend(struct conn *conns, int n, uint64_t now, uint64_t timeout_ns)
{
	for (int i = 0; i < n; i++) {
		struct conn *c = &conns[i];
		if (c->state == CS_CLOSED && now >= c->retry_ns)
			open_conn(c, now);
		else if (c->state != CS_CLOSED && now - c->sent_ns > timeout_ns)
			drop(c, c->state == CS_CONNECTING ? E_CONNECT : E_TIMEOUT, now);
	}
}

static void print_json(double duration_s)
{
	double n = (double)st.requests;
	double mean = n > 0 ? st.sum / n : 0;
	double var = n > 1 ? (st.sum_sq - n * mean * mean) / (n - 1) : 0;
	static const struct {
		const char *name;
		double q;
	} pct[] = { { "p50", 0.50 }, { "p75", 0.75 },    { "p90", 0.90 },
		    { "p99", 0.99 }, { "p99_9", 0.999 }, { "p99_99", 0.9999 } };

	printf("{\"tool\": \"discard_client\", \"requests\": %llu, \"duration_s\": %.6f, "
	       "\"bytes\": %llu, \"errors\": {",
	       (unsigned long long)st.requests, duration_s, (unsigned long long)st.bytes);
	for (int k = 0; k < E_KINDS; k++)
		printf("%s\"%s\": %llu", k ? ", " : "", err_names[k],
		       (unsigned long long)st.errors[k]);
	printf("}, \"latency_us\": {");
	if (st.requests == 0) {
		printf("\"min\": null, \"mean\": null, \"stdev\": null, \"max\": null");
		for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
			printf(", \"%s\": null", pct[i].name);
	} else {
		printf("\"min\": %.3f, \"mean\": %.3f, \"stdev\": %.3f, \"max\": %.3f",
		       (double)st.min_ns / 1000.0, mean, sqrt(var > 0 ? var : 0),
		       (double)st.max_ns / 1000.0);
		for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
			printf(", \"%s\": %.3f", pct[i].name, percentile_us(pct[i].q));
	}
	printf("}}\n");
}

static int usage(void)
{
	fprintf(stderr, "usage: discard_client --port PORT --path PATH [--host 127.0.0.1]\n"
	                "                      [--conns N (1)] [--duration SECONDS (1)]\n"
	                "                      [--timeout SECONDS (5)]\n");
	return 2;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (v == NULL)
			return -1;
		if (strcmp(argv[i], "--host") == 0)
			o->host = v;
		else if (strcmp(argv[i], "--path") == 0)
			o->path = v;
		else if (strcmp(argv[i], "--port") == 0)
			o->port = (int)strtol(v, &end, 10);
		else if (strcmp(argv[i], "--conns") == 0)
			o->conns = (int)strtol(v, &end, 10);
		else if (strcmp(argv[i], "--duration") == 0)
			o->duration_s = strtod(v, &end);
		else if (strcmp(argv[i], "--timeout") == 0)
			o->timeout_s = strtod(v, &end);
		else
			return -1;
		if (end != NULL && (end == v || *end != '\0'))
			return -1;
	}
	if (o->port <= 0 || o->port > 65535 || o->path == NULL || o->path[0] != '/' ||
	    o->conns < 1 || o->conns > MAX_CONNS || !(o->duration_s > 0) || o->duration_s > 86400 ||
	    !(o->timeout_s > 0) || o->timeout_s > 3600)
		return -1;
	if (inet_pton(AF_INET, o->host, &server.sin_addr) != 1)
		return -1;
	server.sin_family = AF_INET;
	server.sin_port = htons((uint16_t)o->port);
	int len = snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
	                   o->path, o->host, o->port);
	if (len < 0 || (size_t)len >= sizeof(request))
		return -1;
	request_len = (size_t)len;
	return 0;
}

/* The loop: every wait ends by the deadline (or within RETRY_MS when a
 * connection waits to be opened again), so a hung server cannot hold us. */
static void run(struct conn *conns, int n, uint64_t deadline, uint64_t timeout_ns)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t now = now_ns();

	while (!stopping && now < deadline) {
		tend(conns, n, now, timeout_ns);
		int wait_ms = (int)((deadline - now + 999999) / 1000000);
		if (wait_ms > RETRY_MS)
			wait_ms = RETRY_MS;
		int k = epoll_wait(epfd, events, MAX_EVENTS, wait_ms);
		for (int i = 0; i < k; i++)
			on_event(events[i].data.ptr);
		now = now_ns();
	}
}

int main(int argc, char **argv)
{
	struct options o = { .host = "127.0.0.1", .conns = 1, .duration_s = 1, .timeout_s = 5 };
	struct rlimit rl;
	struct conn *conns;

	if (parse_options(argc, argv, &o) != 0)
		return usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)o.conns, sizeof(*conns));
	if (epfd < 0 || conns == NULL) {
		perror("discard_client");
		return 1;
	}
	uint64_t t0 = now_ns();
	for (int i = 0; i < o.conns; i++)
		conns[i].fd = -1; /* CS_CLOSED, retry at 0: opened by the first pass */
	run(conns, o.conns, t0 + (uint64_t)(o.duration_s * 1e9), (uint64_t)(o.timeout_s * 1e9));
	double duration_s = (double)(now_ns() - t0) / 1e9;
	for (int i = 0; i < o.conns; i++)
		if (conns[i].fd >= 0)
			close(conns[i].fd);
	free(conns);
	close(epfd);
	print_json(duration_s);
	if (!st.ever_connected) {
		fprintf(stderr, "discard_client: could not connect to %s:%d\n", o.host, o.port);
		return 1;
	}
	return 0;
}
