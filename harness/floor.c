/*
 * floor.c - the floor: the cheapest HTTP-shaped server the kernel allows.
 *
 * What it is for: a reference line on every benchmark chart. It does not
 * parse HTTP at all. Every time the bytes it has read contain the end of a
 * request head ("\r\n\r\n") it owes the client one fixed response, the same
 * bytes /plaintext returns; a read that holds 16 pipelined requests is
 * answered with 16 responses in one write. What is left of the cost of a
 * request here is the kernel's: the system calls, the loopback TCP stack
 * and the wake-ups. A real backend can approach this line, never beat it.
 *
 * What it teaches: how small a level-triggered epoll loop can be, and that
 * most of a fast server's time on loopback is spent in the kernel.
 *
 * Needs: Linux (epoll). Built as build/harness/floor by make bench-all,
 * make test-harness or make bench-tools.
 * Run:   build/harness/floor --port 0   (prints the contract's ready line)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

enum {
	MAX_FDS = 65536,  /* descriptors are indexes into the state table */
	MAX_EVENTS = 256, /* events taken per epoll_wait() */
	READ_BUF = 16384, /* one buffer for every connection */
	BATCH = 64,       /* responses in the pre-built output block */
	WAIT_MS = 500,    /* wake this often to notice a stop signal */
};

static const char response[] = "HTTP/1.1 200 OK\r\n"
                               "Server: floor\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 13\r\n"
                               "\r\n"
                               "Hello, World!";
#define RESPONSE_LEN (sizeof(response) - 1)

/* Per connection: how many response bytes are owed (written from the
 * pre-built block, which is why only a count is needed), and how many bytes
 * of "\r\n\r\n" the last read ended with (a head may straddle two reads). */
struct peer {
	size_t owed;
	unsigned char matched;
};

static struct peer peers[MAX_FDS];
static char block[BATCH * RESPONSE_LEN];
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Counts the request heads that end in buf[0..n), carrying a partial match of
 * "\r\n\r\n" across reads in *matched. */
static size_t count_heads(const char *buf, size_t n, unsigned char *matched)
{
	static const char end[] = "\r\n\r\n";
	size_t heads = 0;
	unsigned m = *matched;

	for (size_t i = 0; i < n; i++) {
		if (buf[i] == end[m])
			m++;
		else
			m = buf[i] == '\r' ? 1 : 0;
		if (m == 4) {
			heads++;
			m = 0;
		}
	}
	*matched = (unsigned char)m;
	return heads;
}

/* Writes what peer fd is owed. Returns 0 when all of it went out, 1 when the
 * socket is full (wait for EPOLLOUT), -1 when the connection is dead. */
static int flush_owed(int fd)
{
	struct peer *p = &peers[fd];

	while (p->owed > 0) {
		/* What is owed always ends on a response boundary, so a short
		 * earlier write is resumed at the matching offset of the block. */
		size_t start = (RESPONSE_LEN - p->owed % RESPONSE_LEN) % RESPONSE_LEN;
		size_t room = sizeof(block) - start;
		ssize_t n = send(fd, block + start, p->owed < room ? p->owed : room, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n < 0)
			return -1;
		p->owed -= (size_t)n;
	}
	return 0;
}

static void drop(int ep, int fd)
{
	peers[fd] = (struct peer){ 0 };
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
}

/* Reads what is there, owes one response per complete head, writes. */
static void serve(int ep, int fd, char *buf)
{
	struct epoll_event ev = { .data.fd = fd };
	ssize_t n = recv(fd, buf, READ_BUF, 0);
	int rc;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(ep, fd);
		return;
	}
	peers[fd].owed += count_heads(buf, (size_t)n, &peers[fd].matched) * RESPONSE_LEN;
	rc = flush_owed(fd);
	if (rc < 0) {
		drop(ep, fd);
		return;
	}
	/* Level-triggered: ask for EPOLLOUT only while output is stuck. */
	ev.events = EPOLLIN | EPOLLOUT;
	if (rc == 1)
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void resume(int ep, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	int rc = flush_owed(fd);

	if (rc < 0)
		drop(ep, fd);
	else if (rc == 0)
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void accept_all(int ep, int lfd)
{
	int one = 1;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		if (fd < 0)
			return;
		if (fd >= MAX_FDS) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
			close(fd);
	}
}

/* Opens the listener on host:port (IPv4); prints the port it got. */
static int listen_on(const char *host, int port, int *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t len = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return -1;
	*bound = ntohs(sa.sin_port);
	return fd;
}

int main(int argc, char **argv)
{
	static char buf[READ_BUF];
	struct epoll_event events[MAX_EVENTS], ev = { .events = EPOLLIN };
	const char *host = "127.0.0.1";
	int port = 8080, bound = 0, lfd, ep;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		/* Other contract flags (--root, --idle-timeout, ...) mean
		 * nothing here and are accepted so the harness can pass them. */
	}
	for (size_t i = 0; i < BATCH; i++)
		memcpy(block + i * RESPONSE_LEN, response, RESPONSE_LEN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = listen_on(host, port, &bound)) < 0 || (ep = epoll_create1(0)) < 0) {
		fprintf(stderr, "floor: cannot listen on %s:%d: %s\n", host, port, strerror(errno));
		return 1;
	}
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("listening on http://%s:%d backend=floor workers=1\n", host, bound);
	fflush(stdout);
	while (!stopping) {
		int n = epoll_wait(ep, events, MAX_EVENTS, WAIT_MS);
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == lfd)
				accept_all(ep, lfd);
			else if (events[i].events & EPOLLOUT)
				resume(ep, fd);
			else
				serve(ep, fd, buf);
		}
	}
	return 0;
}
