/*
 * faultinject.c - an LD_PRELOAD shim that makes socket I/O as awkward as the
 * kernel is allowed to make it, to test that a backend copes.
 *
 * What it teaches: on a stream socket, read() may return fewer bytes than
 * asked for (down to one), write() may take fewer than offered, any call may
 * fail with EINTR, a non-blocking one with EAGAIN, and accept() may fail with
 * EMFILE, ENFILE or ECONNABORTED. Loopback tests almost never see any of
 * that; this shim makes it happen on purpose, at random, so the code paths
 * that handle it run.
 *
 * Wrapped: read recv recvfrom readv, write send sendto writev sendmsg,
 * sendfile, accept accept4 (plus the _FORTIFY_SOURCE variants of read and
 * recv). Only stream sockets are touched: each descriptor is checked once
 * with fstat() (S_ISSOCK) and SO_TYPE and the answer cached until close().
 * Short counts are real calls with a smaller length, so no byte is lost;
 * EINTR and EAGAIN are returned without calling the kernel at all. EAGAIN
 * is only faked for non-blocking sockets (O_NONBLOCK or MSG_DONTWAIT).
 *
 * Edge-triggered epoll: a fake EAGAIN, or a short read the kernel did not
 * mean, would swallow the edge (the kernel still holds the bytes, so no new
 * event comes; and an edge-triggered loop may rightly take a short read to
 * mean "drained"). The shim therefore records epoll_ctl() registrations and,
 * after faking either on an EPOLLET descriptor, re-arms it with
 * EPOLL_CTL_MOD, which queues an event at once if the descriptor is ready:
 * what the kernel does when more bytes arrive just after a call.
 *
 * Out of reach: io_uring (the kernel does the I/O; nothing passes through
 * these functions), and glibc-internal calls that bypass the PLT.
 *
 * Environment: FAULT_RATE (probability per call, default 0.1),
 * FAULT_ACCEPT_RATE (the same for accept(), default FAULT_RATE), FAULT_SEED
 * (default 1; each thread gets its own stream derived from it),
 * FAULT_VERBOSE=1 (print the fault counts on stderr at exit).
 *
 * Safe in threads and signal handlers: no locks, no allocation, no stdio in
 * the wrappers; per-descriptor state is atomic and the random state is
 * thread-local (initial-exec, so no lazy TLS allocation).
 *
 * Build: cc -shared -fPIC -o faultinject.so faultinject.c -ldl (fuzz/fuzz.mk)
 * Use:   LD_PRELOAD=$PWD/build/faults/faultinject.so FAULT_SEED=7 bin/server-poll
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault_random.h"

/* The glibc fortify entry points have no public prototypes. */
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);

enum {
	FD_TABLE = 1 << 16, /* descriptors above this are left alone */
	IOV_COPY = 64,      /* a trimmed iovec list keeps at most this many */
};

enum fd_kind { KIND_UNKNOWN, KIND_STREAM, KIND_OTHER };
enum fault { FAULT_NONE, FAULT_SHORT, FAULT_EINTR, FAULT_EAGAIN };

static _Atomic unsigned char fd_kind[FD_TABLE];

/* epoll registrations: (epfd + 1) << 32 | events, and the user data. */
static struct {
	_Atomic uint64_t key;
	_Atomic uint64_t data;
} armed[FD_TABLE];

static struct {
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, __SOCKADDR_ARG, socklen_t *);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, __CONST_SOCKADDR_ARG, socklen_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	int (*accept)(int, __SOCKADDR_ARG, socklen_t *);
	int (*accept4)(int, __SOCKADDR_ARG, socklen_t *, int);
	int (*close)(int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
} real;

static double rate = 0.1, accept_rate = -1; /* -1: the same as rate */
static uint64_t seed = 1;
static atomic_uint nthreads;
static atomic_ulong counts[4]; /* by enum fault */
static atomic_ulong accept_faults;
static _Thread_local __attribute__((tls_model("initial-exec"))) uint64_t rng;

#define RESOLVE(name) (real.name = (__typeof__(real.name))dlsym(RTLD_NEXT, #name))

__attribute__((constructor)) static void faults_init(void)
{
	const char *s;

	RESOLVE(read), RESOLVE(recv), RESOLVE(recvfrom), RESOLVE(readv);
	RESOLVE(write), RESOLVE(send), RESOLVE(sendto), RESOLVE(writev);
	RESOLVE(sendmsg), RESOLVE(sendfile), RESOLVE(accept), RESOLVE(accept4);
	RESOLVE(close), RESOLVE(epoll_ctl);
	if ((s = getenv("FAULT_RATE")) != NULL)
		rate = strtod(s, NULL);
	if ((s = getenv("FAULT_ACCEPT_RATE")) != NULL)
		accept_rate = strtod(s, NULL);
	if ((s = getenv("FAULT_SEED")) != NULL)
		seed = strtoull(s, NULL, 0);
}

__attribute__((destructor)) static void faults_report(void)
{
	char line[200];
	int n;

	if (getenv("FAULT_VERBOSE") == NULL)
		return;
	n = snprintf(line, sizeof(line),
	             "faultinject: seed=%llu rate=%g: %lu short, %lu EINTR, %lu EAGAIN, "
	             "%lu accept failures\n",
	             (unsigned long long)seed, rate, atomic_load(&counts[FAULT_SHORT]),
	             atomic_load(&counts[FAULT_EINTR]), atomic_load(&counts[FAULT_EAGAIN]),
	             atomic_load(&accept_faults));
	if (n > 0 && real.write != NULL && real.write(2, line, (size_t)n) < 0)
		return;
}

/* The calling thread's next random number (fault_random.h). */
static uint64_t next_random(void)
{
	return fault_random_next(&rng, seed, &nthreads);
}

static bool coin(double p)
{
	return (double)(next_random() >> 11) * 0x1p-53 < p;
}

/* Is fd a stream socket? Asked of the kernel once, then cached. */
static bool is_stream(int fd)
{
	unsigned char k;

	if (fd < 0 || fd >= FD_TABLE)
		return false;
	if ((k = atomic_load_explicit(&fd_kind[fd], memory_order_relaxed)) == KIND_UNKNOWN) {
		struct stat st;
		int type = 0;
		socklen_t len = sizeof(type);
		k = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
		                    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		                    type == SOCK_STREAM
		            ? KIND_STREAM
		            : KIND_OTHER;
		atomic_store_explicit(&fd_kind[fd], k, memory_order_relaxed);
	}
	return k == KIND_STREAM;
}

/* Forgets what was cached about fd (it was closed or is new). */
static void forget(int fd, unsigned char kind)
{
	if (fd < 0 || fd >= FD_TABLE)
		return;
	atomic_store_explicit(&fd_kind[fd], kind, memory_order_relaxed);
	atomic_store_explicit(&armed[fd].key, 0, memory_order_relaxed);
}

/* After a fake EAGAIN: give an edge-triggered registration its edge back. */
static void rearm(int fd)
{
	uint64_t key = atomic_load_explicit(&armed[fd].key, memory_order_relaxed);
	struct epoll_event ev = { .events = (uint32_t)key };

	if (key == 0 || !(ev.events & EPOLLET))
		return;
	ev.data.u64 = atomic_load_explicit(&armed[fd].data, memory_order_relaxed);
	real.epoll_ctl((int)(key >> 32) - 1, EPOLL_CTL_MOD, fd, &ev);
}

/* Decides the fate of one call on fd that asks for *len bytes. Returns 0 to
 * go ahead (maybe with a smaller *len), or -1 with errno set. */
static int inject(int fd, int flags, size_t *len)
{
	uint64_t r;

	if (real.read == NULL)
		faults_init(); /* called from another library's constructor */
	if (*len == 0 || !is_stream(fd) || !coin(rate))
		return 0;
	r = next_random();
	switch (r % 8) {
	case 0:
		atomic_fetch_add(&counts[FAULT_EINTR], 1);
		errno = EINTR;
		return -1;
	case 1:
	case 2:
		/* a blocking socket never says EAGAIN: make it a short call */
		if ((flags & MSG_DONTWAIT) || (fcntl(fd, F_GETFL) & O_NONBLOCK)) {
			atomic_fetch_add(&counts[FAULT_EAGAIN], 1);
			rearm(fd);
			errno = EAGAIN;
			return -1;
		}
		/* fall through */
	default:
		if (*len > 1) {
			atomic_fetch_add(&counts[FAULT_SHORT], 1);
			rearm(fd); /* as if the rest arrived just after the call */
			*len = (r >> 8) % 4 == 0 ? 1 : 1 + (size_t)((r >> 16) % (*len - 1));
		}
		return 0;
	}
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Copies the first `lim` bytes' worth of iov into out[]; returns the count. */
static int iov_trim(const struct iovec *iov, int cnt, size_t lim, struct iovec *out)
{
	int n = 0;

	for (int i = 0; i < cnt && n < IOV_COPY && lim > 0; i++) {
		out[n] = iov[i];
		if (out[n].iov_len > lim)
			out[n].iov_len = lim;
		lim -= out[n++].iov_len;
	}
	return n;
}

ssize_t read(int fd, void *buf, size_t len)
{
	return inject(fd, 0, &len) < 0 ? -1 : real.read(fd, buf, len);
}

ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	(void)buflen;
	return read(fd, buf, len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	return inject(fd, flags, &len) < 0 ? -1 : real.recv(fd, buf, len, flags);
}

ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	(void)buflen;
	return recv(fd, buf, len, flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG addr, socklen_t *alen)
{
	return inject(fd, flags, &len) < 0 ? -1 : real.recvfrom(fd, buf, len, flags, addr, alen);
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct iovec copy[IOV_COPY];
	size_t total = iov_total(iov, cnt), lim = total;

	if (inject(fd, 0, &lim) < 0)
		return -1;
	if (lim == total)
		return real.readv(fd, iov, cnt);
	return real.readv(fd, copy, iov_trim(iov, cnt, lim, copy));
}

ssize_t write(int fd, const void *buf, size_t len)
{
	return inject(fd, 0, &len) < 0 ? -1 : real.write(fd, buf, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	return inject(fd, flags, &len) < 0 ? -1 : real.send(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG addr,
               socklen_t alen)
{
	return inject(fd, flags, &len) < 0 ? -1 : real.sendto(fd, buf, len, flags, addr, alen);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct iovec copy[IOV_COPY];
	size_t total = iov_total(iov, cnt), lim = total;

	if (inject(fd, 0, &lim) < 0)
		return -1;
	if (lim == total)
		return real.writev(fd, iov, cnt);
	return real.writev(fd, copy, iov_trim(iov, cnt, lim, copy));
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct iovec copy[IOV_COPY];
	struct msghdr m = *msg;
	size_t total = iov_total(msg->msg_iov, (int)msg->msg_iovlen), lim = total;

	if (inject(fd, flags, &lim) < 0)
		return -1;
	if (lim == total)
		return real.sendmsg(fd, msg, flags);
	m.msg_iov = copy;
	m.msg_iovlen = (size_t)iov_trim(msg->msg_iov, (int)msg->msg_iovlen, lim, copy);
	return real.sendmsg(fd, &m, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return inject(out_fd, 0, &count) < 0 ? -1 : real.sendfile(out_fd, in_fd, offset, count);
}

/* accept() and accept4(): sometimes fail as a loaded server would see. */
static int accept_fault(int fd)
{
	static const int errs[] = { EMFILE, ENFILE, ECONNABORTED };

	if (real.accept == NULL)
		faults_init();
	if (!is_stream(fd) || !coin(accept_rate < 0 ? rate : accept_rate))
		return 0;
	atomic_fetch_add(&accept_faults, 1);
	errno = errs[next_random() % 3];
	return -1;
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *alen)
{
	int c;

	if (accept_fault(fd) < 0)
		return -1;
	if ((c = real.accept(fd, addr, alen)) >= 0)
		forget(c, KIND_STREAM);
	return c;
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *alen, int flags)
{
	int c;

	if (accept_fault(fd) < 0)
		return -1;
	if ((c = real.accept4(fd, addr, alen, flags)) >= 0)
		forget(c, KIND_STREAM);
	return c;
}

int close(int fd)
{
	if (real.close == NULL)
		faults_init();
	forget(fd, KIND_UNKNOWN);
	return real.close(fd);
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int rc;

	if (real.epoll_ctl == NULL)
		faults_init();
	rc = real.epoll_ctl(epfd, op, fd, ev);
	if (rc == 0 && fd >= 0 && fd < FD_TABLE && epfd >= 0) {
		uint64_t key = op == EPOLL_CTL_DEL || ev == NULL
		                       ? 0
		                       : (uint64_t)(epfd + 1) << 32 | ev->events;
		atomic_store_explicit(&armed[fd].data, ev ? ev->data.u64 : 0, memory_order_relaxed);
		atomic_store_explicit(&armed[fd].key, key, memory_order_relaxed);
	}
	return rc;
}
