/*
 * net.c - socket set-up helpers (see net.h).
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NET_BACKLOG = 4096 }; /* a hint; the kernel caps it at somaxconn */

static int bound_port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -errno;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int listen_on(const struct addrinfo *ai, bool reuseport, bool nonblock)
{
	int one = 1;
#ifdef SOCK_CLOEXEC
	int type = ai->ai_socktype | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
#else
	/* macOS: no socket type flags; fcntl() below */
	int type = ai->ai_socktype;
#endif
	int fd = socket(ai->ai_family, type, ai->ai_protocol);

	if (fd < 0)
		return -errno;
#ifndef SOCK_CLOEXEC
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	net_set_nonblock(fd, nonblock);
#endif
	/* Responses go out whole, so Nagle's delay only adds latency. Sockets
	 * accepted from this one inherit the option (Linux, the BSDs, macOS):
	 * no setsockopt() per connection. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, NET_BACKLOG) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int net_listen(const char *host, int port, bool reuseport, bool nonblock, int *bound_port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char service[16];
	int fd = -EADDRNOTAVAIL, rc;

	snprintf(service, sizeof(service), "%d", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0)
		return rc == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if ((fd = listen_on(ai, reuseport, nonblock)) >= 0)
			break;
	freeaddrinfo(res);
	if (fd >= 0 && bound_port != NULL && (*bound_port = bound_port_of(fd)) < 0) {
		close(fd);
		return -EADDRNOTAVAIL;
	}
	return fd;
}

int net_accept(int listen_fd, bool nonblock)
{
#ifdef SOCK_CLOEXEC
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
#else
	int fd = accept(listen_fd, NULL, NULL); /* macOS has no accept4() */
#endif

	if (fd < 0)
		return -errno;
#ifndef SOCK_CLOEXEC
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	net_set_nonblock(fd, nonblock);
#endif
	return fd;
}

bool net_accept_retry(int err)
{
	switch (err) {
	case EINTR:
	case ECONNABORTED:
	case EPROTO:
	case EPERM:
	case ENETDOWN:
	case ENOPROTOOPT:
	case EHOSTDOWN:
#ifdef ENONET /* Linux only */
	case ENONET:
#endif
	case EHOSTUNREACH:
	case EOPNOTSUPP:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

void net_refuse(int fd)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
	                          "Content-Type: text/plain\r\nContent-Length: 20\r\n"
	                          "Connection: close\r\nRetry-After: 1\r\n\r\n"
	                          "too many connections";

	net_set_nonblock(fd, true);
	if (send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0) {
		/* nothing to do: the client is gone or its buffer is full */
	}
	close(fd);
}

int net_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) == 0 ? 0 : -errno;
}
