/*
 * test_wepoll.c - checks the semantics of compat/wepoll on a connected pair
 * of loopback sockets: level-triggered reports, EPOLLOUT, EPOLLONESHOT and
 * re-arming, EPOLLRDHUP on a half close, EPOLLHUP on a reset, and the
 * errors of epoll_ctl. Run by `make test-windows` (under Wine here).
 *
 * Each check prints one line; the exit code is the number of failures.
 */
#include <winsock2.h>
#include <ws2tcpip.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wepoll.h"

static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok  " : "FAIL", what);
	failures += !ok;
}

/* Waits up to ms; returns the events reported for the one socket, or 0. */
static uint32_t wait_events(epoll_t ep, int ms)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, ms);

	return n == 1 ? ev[0].events : 0;
}

static int set(epoll_t ep, int op, SOCKET s, uint32_t events)
{
	struct epoll_event ev = { .events = events };

	ev.data.sock = s;
	return epoll_ctl(ep, op, s, &ev);
}

/* A connected pair over 127.0.0.1: *a is the client side, *b the accepted. */
static int make_pair(SOCKET *a, SOCKET *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int len = sizeof(sin);
	SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	*a = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (connect(*a, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		return -1;
	*b = accept(l, NULL, NULL);
	closesocket(l);
	return *b == INVALID_SOCKET ? -1 : 0;
}

static void test_level_and_oneshot(epoll_t ep, SOCKET a, SOCKET b)
{
	char c;

	check(set(ep, EPOLL_CTL_ADD, b, EPOLLIN) == 0, "add");
	check(set(ep, EPOLL_CTL_ADD, b, EPOLLIN) == -1 && errno == EEXIST, "add twice: EEXIST");
	check(wait_events(ep, 0) == 0, "nothing to read: no event");
	send(a, "x", 1, 0);
	check(wait_events(ep, 2000) == EPOLLIN, "a byte arrives: EPOLLIN");
	check(wait_events(ep, 2000) == EPOLLIN, "still unread: EPOLLIN again (level)");
	recv(b, &c, 1, 0);
	check(wait_events(ep, 100) == 0, "read: quiet");
	check(set(ep, EPOLL_CTL_MOD, b, EPOLLOUT) == 0 && wait_events(ep, 2000) == EPOLLOUT,
	      "mod to EPOLLOUT: writable");
	check(set(ep, EPOLL_CTL_MOD, b, EPOLLIN | EPOLLONESHOT) == 0, "mod to one-shot");
	send(a, "y", 1, 0);
	check(wait_events(ep, 2000) == EPOLLIN, "one-shot: reported once");
	check(wait_events(ep, 100) == 0, "one-shot: then disabled");
	check(set(ep, EPOLL_CTL_MOD, b, EPOLLIN | EPOLLONESHOT) == 0 &&
	              wait_events(ep, 2000) == EPOLLIN,
	      "re-armed: reported again");
	recv(b, &c, 1, 0);
}

static void test_hangups(epoll_t ep, SOCKET a, SOCKET b)
{
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };

	check(set(ep, EPOLL_CTL_MOD, b, EPOLLIN | EPOLLRDHUP) == 0, "mod to EPOLLIN|EPOLLRDHUP");
	shutdown(a, SD_SEND);
	check(wait_events(ep, 2000) == (EPOLLIN | EPOLLRDHUP), "peer half-closed: EPOLLRDHUP");
	setsockopt(a, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof(hard));
	closesocket(a); /* linger 0: a reset */
	check((wait_events(ep, 2000) & EPOLLHUP) != 0, "peer reset: EPOLLHUP");
	check(epoll_ctl(ep, EPOLL_CTL_DEL, b, NULL) == 0, "del");
	check(epoll_ctl(ep, EPOLL_CTL_DEL, b, NULL) == -1 && errno == ENOENT, "del twice: ENOENT");
	check(wait_events(ep, 100) == 0, "deleted: quiet");
}

int main(void)
{
	WSADATA wsa;
	SOCKET a, b;
	epoll_t ep;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0 || make_pair(&a, &b) != 0) {
		printf("FAIL cannot make a loopback socket pair\n");
		return 1;
	}
	if ((ep = epoll_create(1)) == NULL) {
		printf("FAIL epoll_create: errno %d\n", errno);
		return 1;
	}
	test_level_and_oneshot(ep, a, b);
	test_hangups(ep, a, b);
	epoll_close(ep);
	closesocket(b);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
	return failures;
}
