/*
 * net.h - socket set-up helpers shared by the backends and main().
 *
 * The one place in common/ that makes socket calls, and only to create,
 * configure and accept: reading and writing belong to the backends. Each
 * helper returns a descriptor or 0, or -errno, and never prints.
 */
#ifndef NET_H
#define NET_H

#include <stdbool.h>

/* Opens a listening TCP socket on host:port with SO_REUSEADDR, TCP_NODELAY
 * (which the sockets accepted from it inherit) and, when
 * `reuseport`, SO_REUSEPORT (several workers then share the port and the
 * kernel spreads connections among them). The socket is blocking unless
 * `nonblock`. On success *bound_port holds the port (useful with port 0). */
int net_listen(const char *host, int port, bool reuseport, bool nonblock, int *bound_port);

/* accept4() with close-on-exec, optionally non-blocking. The new socket has
 * TCP_NODELAY from the listener (net_listen sets it there). */
int net_accept(int listen_fd, bool nonblock);

/* Should the accept loop try again at once after this error? EINTR and
 * errors of the aborted connection itself (ECONNABORTED, EPROTO, ...): yes.
 * EAGAIN, EMFILE, ENFILE, ENOBUFS, ENOMEM: no (wait for readiness or back
 * off; spinning on EMFILE would burn a core). */
bool net_accept_retry(int err);

/* Refuses an admitted-too-many connection with a short 503 (best effort,
 * never blocks) and closes it. */
void net_refuse(int fd);

int net_set_nonblock(int fd, bool on);

#endif
