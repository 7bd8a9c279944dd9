/*
 * net_win.c - net.h for Windows: the same socket set-up helpers over Winsock.
 *
 * What it teaches: the differences a POSIX programmer trips over.
 * - Winsock must be started (WSAStartup) before the first socket call.
 * - Errors come from WSAGetLastError(), not errno; platform_errno_of()
 *   turns them into -errno so callers keep one convention.
 * - SO_REUSEADDR on Windows lets another process steal a bound port; the
 *   safe default is SO_EXCLUSIVEADDRUSE, and a TIME_WAIT port can be
 *   re-bound anyway. There is no SO_REUSEPORT, so every worker's listener
 *   cannot have its own socket on the same port (see net_listen).
 * - O_NONBLOCK is ioctlsocket(FIONBIO); accept() copies the listener's mode.
 * - Sockets are handles; they travel as `int` (see platform.h).
 *
 * Needs: Windows Vista or later (or Wine); -lws2_32. Compiled instead of
 * net.c by compat/windows.mk; empty on other systems.
 */
#ifdef _WIN32

#include <winsock2.h>
#include <ws2tcpip.h>

#include <errno.h>
#include <stdio.h>

#include "net.h"
#include "platform.h"

enum { NET_BACKLOG = SOMAXCONN };

static int wsa_err(void)
{
	return platform_errno_of((unsigned long)WSAGetLastError());
}

static int net_startup(void)
{
	static bool started;
	WSADATA wsa;

	if (!started && WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
		return -ENOSYS;
	started = true; /* only main() calls net_listen, before any worker runs */
	return 0;
}

static int bound_port_of(SOCKET s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (getsockname(s, (struct sockaddr *)&ss, &len) != 0)
		return wsa_err();
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int listen_on(const struct addrinfo *ai, bool nonblock)
{
	BOOL one = TRUE;
	SOCKET s = WSASocketW(ai->ai_family, ai->ai_socktype, ai->ai_protocol, NULL, 0,
	                      WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);

	if (s == INVALID_SOCKET)
		return wsa_err();
	if (setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&one, sizeof(one)) != 0 ||
	    bind(s, ai->ai_addr, (int)ai->ai_addrlen) != 0 || listen(s, NET_BACKLOG) != 0 ||
	    net_set_nonblock((int)s, nonblock) != 0) {
		int err = wsa_err();
		closesocket(s);
		return err;
	}
	return (int)s;
}

/* Without SO_REUSEPORT, a second listener on a port cannot exist: when
 * `reuseport` asks for one, the workers share the first listener instead
 * (every worker then accepts from the same queue, which Windows allows). */
int net_listen(const char *host, int port, bool reuseport, bool nonblock, int *bound_port)
{
	static int shared_fd = -1, shared_port = -1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char service[16];
	int fd = -EADDRNOTAVAIL, rc;

	if ((rc = net_startup()) < 0)
		return rc;
	if (reuseport && shared_fd >= 0 && port == shared_port)
		return shared_fd;
	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return -EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if ((fd = listen_on(ai, nonblock)) >= 0)
			break;
	freeaddrinfo(res);
	if (fd < 0)
		return fd;
	if ((rc = bound_port_of((SOCKET)fd)) < 0) {
		closesocket((SOCKET)fd);
		return -EADDRNOTAVAIL;
	}
	if (bound_port != NULL)
		*bound_port = rc;
	if (reuseport) {
		shared_fd = fd;
		shared_port = rc;
	}
	return fd;
}

int net_accept(int listen_fd, bool nonblock)
{
	BOOL one = TRUE;
	SOCKET s = accept((SOCKET)listen_fd, NULL, NULL);

	if (s == INVALID_SOCKET)
		return wsa_err();
	SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
	net_set_nonblock((int)s, nonblock);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	return (int)s;
}

bool net_accept_retry(int err)
{
	return err == EINTR || err == ECONNRESET || err == ECONNABORTED;
}

void net_refuse(int fd)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
	                          "Content-Type: text/plain\r\nContent-Length: 20\r\n"
	                          "Connection: close\r\nRetry-After: 1\r\n\r\n"
	                          "too many connections";

	net_set_nonblock(fd, true);
	if (send((SOCKET)fd, msg, sizeof(msg) - 1, 0) < 0) {
		/* nothing to do: the client is gone or its buffer is full */
	}
	closesocket((SOCKET)fd);
}

int net_set_nonblock(int fd, bool on)
{
	u_long mode = on;

	return ioctlsocket((SOCKET)fd, FIONBIO, &mode) == 0 ? 0 : wsa_err();
}

#endif /* _WIN32 */
