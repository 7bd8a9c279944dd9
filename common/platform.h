/*
 * platform.h - the little the HTTP code and main() need from the operating
 * system: a monotonic clock, reading and closing static files, resolving
 * paths under --root, the stop signals, and waking a loop's listener.
 * Socket set-up lives in net.h, for the backends.
 *
 * What it teaches: a portable program keeps its operating-system calls in one
 * thin layer instead of #ifdefs scattered through the logic. On POSIX systems
 * every function here is a small inline wrapper around the calls it names.
 * On Windows (mingw-w64) they are declared here and written in
 * platform_win.c, next to net_win.c (the Windows net.h).
 *
 * One Windows convention the whole build relies on: a SOCKET is a kernel
 * handle, and 64-bit Windows keeps handle values within 32 bits so that 32-
 * and 64-bit processes can share them. The server therefore carries sockets
 * in an `int`, like a POSIX descriptor, and casts at the Winsock call.
 */
#ifndef PLATFORM_H
#define PLATFORM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#ifndef _WIN32
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* Monotonic milliseconds: for deadlines, never for dates. */
static inline int64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads up to len bytes of an open file at offset off, without moving any
 * shared file position. Returns bytes read (0 at the end) or -1 (errno). */
static inline ssize_t platform_pread(int fd, void *buf, size_t len, int64_t off)
{
	return pread(fd, buf, len, (off_t)off);
}

/* Closes a file opened by platform_open_file() or platform_open_dir(). */
static inline void platform_close_file(int fd)
{
	close(fd);
}

/* Opens a static file read-only; returns a descriptor or -1 (errno). */
static inline int platform_open_file(const char *path)
{
	return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

/* Opens a directory (the --root), or returns -1 (errno). */
static inline int platform_open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The absolute path of an existing file with every link resolved, written to
 * `real` (PATH_MAX bytes), with '/' separators; NULL (errno) if none. */
static inline char *platform_realpath(const char *path, char *real)
{
	return realpath(path, real);
}

/* Called once by main() before any thread starts: SIGINT and SIGTERM are
 * blocked in every thread (main takes them with platform_wait_stop), and a
 * closed peer must never kill us with SIGPIPE. */
static inline void platform_signals_init(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* Waits up to ms for a stop request (SIGINT, SIGTERM); true if one came. */
static inline bool platform_wait_stop(int ms)
{
	struct timespec tick = { ms / 1000, (long)(ms % 1000) * 1000000 };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
#ifdef __APPLE__
	/* macOS has no sigtimedwait(): look at the pending set, else sleep */
	sigset_t pending;
	if (sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1))
		return sigwait(&set, &sig) == 0;
	nanosleep(&tick, NULL);
	return false;
#else
	sig = sigtimedwait(&set, NULL, &tick);
	return sig == SIGINT || sig == SIGTERM;
#endif
}

/* Wakes the loop sleeping on this listener at shutdown: after shutdown(2),
 * accept fails with EINVAL and readiness APIs report the socket readable. */
static inline void platform_wake_listener(int fd)
{
	shutdown(fd, SHUT_RDWR);
}

#else /* _WIN32: see platform_win.c */

int64_t clock_ms(void);
ssize_t platform_pread(int fd, void *buf, size_t len, int64_t off);
void platform_close_file(int fd);
int platform_open_file(const char *path);
int platform_open_dir(const char *path);
char *platform_realpath(const char *path, char *real);
void platform_signals_init(void);
bool platform_wait_stop(int ms);
void platform_wake_listener(int fd);

/* Windows only: -errno for a Winsock or Win32 error code (WSAGetLastError,
 * GetLastError), so that Windows code keeps the 0 / -errno convention. */
int platform_errno_of(unsigned long win_error);

#endif

#endif
