/*
 * test_kqueue.c - unit tests of the kqueue-on-epoll layer (cmocka).
 *
 * What it checks: that the layer behaves as kqueue does on the BSDs for
 * every flag and filter the kqueue backend relies on, and a few more: udata
 * round-trips, level versus EV_CLEAR, EV_ONESHOT, EV_DISABLE/EV_ENABLE,
 * EV_DELETE, EV_EOF on a peer's close, EV_ERROR and EV_RECEIPT in the event
 * list, timers one-shot and periodic, and the corners of the translation (an
 * event list with no room for both filters, a descriptor number reused).
 *
 * Needs: Linux, libcmocka-dev. Run: make test-kqueue-compat
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/event.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Fixture: a queue and a connected, non-blocking pair of stream sockets. */
struct fx {
	int kq;
	int sv[2];
};

static int setup(void **state)
{
	static struct fx f;

	f.kq = kqueue();
	if (f.kq < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f.sv) != 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	close(f->sv[0]);
	close(f->sv[1]);
	close(f->kq);
	return 0;
}

/* Applies one change with no room for receipts: kevent()'s return value. */
static int change(int kq, uintptr_t ident, int filter, int flags, intptr_t data, void *udata)
{
	struct kevent c;

	EV_SET(&c, ident, filter, flags, 0, data, udata);
	return kevent(kq, &c, 1, NULL, 0, NULL);
}

/* Collects events, waiting up to ms. */
static int wait_events(int kq, struct kevent *out, int n, int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	return kevent(kq, NULL, 0, out, n, &ts);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_not_a_queue(void **state)
{
	struct fx *f = *state;
	struct kevent ev;

	assert_int_equal(kevent(f->sv[0], NULL, 0, &ev, 1, NULL), -1);
	assert_int_equal(errno, EBADF);
}

static void test_read_level_with_udata(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	int tag;

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD, 0, &tag), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 0), 0);
	assert_int_equal(write(f->sv[1], "hello", 5), 5);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].ident, f->sv[0]);
	assert_int_equal(ev[0].filter, EVFILT_READ);
	assert_int_equal(ev[0].data, 5);
	assert_ptr_equal(ev[0].udata, &tag);
	assert_false(ev[0].flags & (EV_EOF | EV_ERROR));
	/* level: reported again while the bytes are there */
	assert_int_equal(wait_events(f->kq, ev, 4, 0), 1);
}

static void test_read_clear(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, f),
	                 0);
	assert_int_equal(write(f->sv[1], "abc", 3), 3);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_true(ev[0].flags & EV_CLEAR);
	/* cleared: not again until new bytes arrive */
	assert_int_equal(wait_events(f->kq, ev, 4, 50), 0);
	assert_int_equal(write(f->sv[1], "d", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].data, 4);
}

static void test_write_filter(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_WRITE, EV_ADD, 0, f), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].filter, EVFILT_WRITE);
	assert_true(ev[0].data > 0);
	assert_ptr_equal(ev[0].udata, f);
}

static void test_read_and_write_on_one_descriptor(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	int rtag, wtag;

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD, 0, &rtag), 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_WRITE, EV_ADD, 0, &wtag), 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 2);
	assert_int_equal(ev[0].filter, EVFILT_READ);
	assert_ptr_equal(ev[0].udata, &rtag);
	assert_int_equal(ev[1].filter, EVFILT_WRITE);
	assert_ptr_equal(ev[1].udata, &wtag);
}

/* Edge-like registrations must not lose the filter that did not fit. */
static void test_no_room_for_both_filters(void **state)
{
	struct fx *f = *state;
	struct kevent ev[1];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, f),
	                 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, f),
	                 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 1, 1000), 1);
	assert_int_equal(ev[0].filter, EVFILT_READ);
	assert_int_equal(wait_events(f->kq, ev, 1, 1000), 1);
	assert_int_equal(ev[0].filter, EVFILT_WRITE);
}

static void test_clear_must_agree_per_descriptor(void **state)
{
	struct fx *f = *state;

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, f),
	                 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_WRITE, EV_ADD, 0, f), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_oneshot(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD | EV_ONESHOT, 0, f),
	                 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_true(ev[0].flags & EV_ONESHOT);
	/* gone after one report, though the byte is still unread */
	assert_int_equal(wait_events(f->kq, ev, 4, 50), 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_DELETE, 0, NULL), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_disable_enable(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD, 0, f), 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_DISABLE, 0, f), 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 50), 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ENABLE, 0, f), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_ptr_equal(ev[0].udata, f);
}

static void test_delete(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD, 0, f), 0);
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_DELETE, 0, NULL), 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 50), 0);
	/* a second delete fails, and with room it is reported, not returned */
	EV_SET(&ev[0], f->sv[0], EVFILT_READ, EV_DELETE, 0, 0, NULL);
	assert_int_equal(kevent(f->kq, ev, 1, ev, 4, NULL), 1);
	assert_true(ev[0].flags & EV_ERROR);
	assert_int_equal(ev[0].data, ENOENT);
}

static void test_eof_on_peer_close(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], EVFILT_READ, EV_ADD | EV_CLEAR, 0, f),
	                 0);
	assert_int_equal(write(f->sv[1], "bye", 3), 3);
	close(f->sv[1]);
	f->sv[1] = -1;
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_true(ev[0].flags & EV_EOF);
	assert_int_equal(ev[0].data, 3); /* what is left to read before the EOF */
}

static void test_error_on_bad_descriptor(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	int fd = dup(f->sv[0]);

	close(fd); /* a number that is surely not open */
	EV_SET(&ev[0], fd, EVFILT_READ, EV_ADD, 0, 0, f);
	assert_int_equal(kevent(f->kq, ev, 1, ev, 4, NULL), 1);
	assert_int_equal(ev[0].flags, EV_ERROR);
	assert_int_equal(ev[0].data, EBADF);
	assert_int_equal((int)ev[0].ident, fd);
	assert_ptr_equal(ev[0].udata, f);
	/* without room in the event list, the call itself fails */
	assert_int_equal(change(f->kq, (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, f), -1);
	assert_int_equal(errno, EBADF);
	/* an unknown filter is refused */
	assert_int_equal(change(f->kq, (uintptr_t)f->sv[0], -42, EV_ADD, 0, f), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_receipt(void **state)
{
	struct fx *f = *state;
	struct kevent ch[2], ev[4];

	EV_SET(&ch[0], f->sv[0], EVFILT_READ, EV_ADD | EV_RECEIPT, 0, 0, f);
	EV_SET(&ch[1], f->sv[0], EVFILT_WRITE, EV_ADD | EV_RECEIPT, 0, 0, f);
	assert_int_equal(kevent(f->kq, ch, 2, ev, 4, NULL), 2);
	assert_int_equal(ev[0].flags, EV_ERROR);
	assert_int_equal(ev[0].data, 0);
	assert_int_equal(ev[1].filter, EVFILT_WRITE);
	assert_int_equal(ev[1].data, 0);
}

static void test_listening_socket(void **state)
{
	struct fx *f = *state;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	struct kevent ev[4];
	int ls = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 8), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(change(f->kq, (uintptr_t)ls, EVFILT_READ, EV_ADD, 0, NULL), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 0), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].data, 1);
	assert_null(ev[0].udata);
	close(c);
	close(ls);
}

/* close() drops a descriptor's knotes; its number, reused, starts afresh. */
static void test_reused_descriptor_number(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	int old = f->sv[0], tag;

	assert_int_equal(change(f->kq, (uintptr_t)old, EVFILT_READ, EV_ADD, 0, f), 0);
	close(f->sv[0]);
	close(f->sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->sv), 0);
	assert_int_equal(f->sv[0], old);
	assert_int_equal(change(f->kq, (uintptr_t)old, EVFILT_WRITE, EV_ADD, 0, &tag), 0);
	assert_int_equal(write(f->sv[1], "x", 1), 1);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].filter, EVFILT_WRITE); /* no stale read knote */
	assert_ptr_equal(ev[0].udata, &tag);
}

static void test_timer_oneshot(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	int64_t start = now_ms();

	assert_int_equal(change(f->kq, 7, EVFILT_TIMER, EV_ADD | EV_ONESHOT, 30, f), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 2000), 1);
	assert_true(now_ms() - start >= 29);
	assert_int_equal(ev[0].ident, 7);
	assert_int_equal(ev[0].filter, EVFILT_TIMER);
	assert_int_equal(ev[0].data, 1);
	assert_ptr_equal(ev[0].udata, f);
	assert_int_equal(wait_events(f->kq, ev, 4, 80), 0);
	assert_int_equal(change(f->kq, 7, EVFILT_TIMER, EV_DELETE, 0, NULL), -1);
	assert_int_equal(errno, ENOENT);
}

static void test_timer_periodic(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];

	assert_int_equal(change(f->kq, 1, EVFILT_TIMER, EV_ADD, 10, NULL), 0);
	usleep(55 * 1000);
	assert_int_equal(wait_events(f->kq, ev, 4, 0), 1);
	assert_true(ev[0].data >= 3); /* expirations since the last report */
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_true(ev[0].data >= 1);
	assert_int_equal(change(f->kq, 1, EVFILT_TIMER, EV_DISABLE, 0, NULL), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 40), 0);
	assert_int_equal(change(f->kq, 1, EVFILT_TIMER, EV_ENABLE, 0, NULL), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(change(f->kq, 1, EVFILT_TIMER, EV_DELETE, 0, NULL), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 40), 0);
}

static void test_timer_units_and_bad_period(void **state)
{
	struct fx *f = *state;
	struct kevent ev[4];
	struct kevent c;

	EV_SET(&c, 2, EVFILT_TIMER, EV_ADD | EV_ONESHOT, NOTE_USECONDS, 5000, NULL);
	assert_int_equal(kevent(f->kq, &c, 1, NULL, 0, NULL), 0);
	assert_int_equal(wait_events(f->kq, ev, 4, 1000), 1);
	assert_int_equal(ev[0].ident, 2);
	assert_int_equal(change(f->kq, 3, EVFILT_TIMER, EV_ADD, -1, NULL), -1);
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_not_a_queue),
		T(test_read_level_with_udata),
		T(test_read_clear),
		T(test_write_filter),
		T(test_read_and_write_on_one_descriptor),
		T(test_no_room_for_both_filters),
		T(test_clear_must_agree_per_descriptor),
		T(test_oneshot),
		T(test_disable_enable),
		T(test_delete),
		T(test_eof_on_peer_close),
		T(test_error_on_bad_descriptor),
		T(test_receipt),
		T(test_listening_socket),
		T(test_reused_descriptor_number),
		T(test_timer_oneshot),
		T(test_timer_periodic),
		T(test_timer_units_and_bad_period),
#undef T
	};

	return cmocka_run_group_tests_name("kqueue-on-epoll layer", tests, NULL, NULL);
}
