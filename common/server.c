/*
 * server.c - main() of every server binary: the flags, the listeners, the
 * worker threads, the signals and the "listening on" line (the contract in
 * DESIGN.md). The I/O model itself is the `backend` this file is linked with.
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backends/backend.h"
#include "handlers.h"
#include "net.h"
#include "response.h"

#ifndef DEFAULT_ROOT
#define DEFAULT_ROOT "www"
#endif

enum { MAX_WORKERS = 256, MAX_IDLE_TIMEOUT_S = 3600 };

static const char usage[] =
        "usage: %s [options]\n"
        "\n"
        "An HTTP/1.1 server built on the %s I/O model.\n"
        "\n"
        "  --host ADDR          address to listen on (default 127.0.0.1)\n"
        "  --port N             port (default 8080; 0 picks a free one)\n"
        "  --root DIR           directory served under /static/ (default %s)\n"
        "  --workers N          event loops, each on its own SO_REUSEPORT listener (default 1)\n"
        "  --idle-timeout SECS  close idle or stalled connections after SECS (default 10)\n"
        "  --max-conns N        refuse connections beyond N with 503 (default 10000)\n"
        "  --help               show this help\n"
        "  --version            show the version\n"
        "\n"
        "Routes: GET|HEAD /plaintext /json /static/<path> /delay/<ms> /stats, POST /echo\n";

bool server_conn_admit(struct server *srv)
{
	int64_t now = atomic_fetch_add_explicit(&srv->stats.active, 1, memory_order_relaxed);

	if (now >= srv->cfg.max_conns) {
		atomic_fetch_sub_explicit(&srv->stats.active, 1, memory_order_relaxed);
		STAT_ADD(srv, rejected, 1);
		return false;
	}
	STAT_ADD(srv, accepted, 1);
	return true;
}

void server_conn_closed(struct server *srv)
{
	atomic_fetch_sub_explicit(&srv->stats.active, 1, memory_order_relaxed);
}

/* Parses a whole decimal int in [lo, hi]; returns 0 or -1. */
static int parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int bad_flag(const char *prog, const char *flag, const char *value, const char *want)
{
	fprintf(stderr, "%s: invalid value '%s' for %s: expected %s\n", prog, value, flag, want);
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	return EXIT_BAD_FLAGS;
}

/* Fills cfg from argv. Returns -1 to go on, or an exit code. */
static int parse_flags(int argc, char **argv, struct server_config *cfg)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "root", required_argument, NULL, 'r' },
		{ "workers", required_argument, NULL, 'w' },
		{ "idle-timeout", required_argument, NULL, 't' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = argv[0];
	int ch, secs;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			cfg->host = optarg;
			break;
		case 'p':
			if (parse_int(optarg, 0, 65535, &cfg->port) != 0)
				return bad_flag(prog, "--port", optarg, "a port number 0-65535");
			break;
		case 'r':
			cfg->root = optarg;
			break;
		case 'w':
			if (parse_int(optarg, 1, MAX_WORKERS, &cfg->workers) != 0)
				return bad_flag(prog, "--workers", optarg, "a number 1-256");
			break;
		case 't':
			if (parse_int(optarg, 1, MAX_IDLE_TIMEOUT_S, &secs) != 0)
				return bad_flag(prog, "--idle-timeout", optarg, "seconds, 1-3600");
			cfg->idle_timeout_ms = secs * 1000;
			break;
		case 'm':
			if (parse_int(optarg, 1, 1000000, &cfg->max_conns) != 0)
				return bad_flag(prog, "--max-conns", optarg, "a number 1-1000000");
			break;
		case 'h':
			printf(usage, prog, backend.name, DEFAULT_ROOT);
			return EXIT_OK;
		case 'V':
			printf("%s %s (backend %s)\n", SERVER_NAME, SERVER_VERSION, backend.name);
			return EXIT_OK;
		default:
			if (optopt != 0)
				fprintf(stderr, "%s: option '%s' needs a value or takes none\n",
				        prog, argv[optind - 1]);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", prog,
				        argv[optind - 1]);
			fprintf(stderr, "Try '%s --help' for more information.\n", prog);
			return EXIT_BAD_FLAGS;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return EXIT_BAD_FLAGS;
	}
	return -1;
}

static int open_root(struct server *srv)
{
	char real[PATH_MAX];

	if (platform_realpath(srv->cfg.root, real) == NULL)
		return -errno;
	srv->root_fd = platform_open_dir(real);
	if (srv->root_fd < 0)
		return -errno;
	srv->root_path = strdup(real);
	return srv->root_path ? 0 : -ENOMEM;
}

struct worker_thread {
	struct worker w;
	pthread_t tid;
	int rc;
	atomic_bool done;
};

static void *worker_main(void *arg)
{
	struct worker_thread *t = arg;

	t->rc = backend.run(&t->w);
	atomic_store(&t->done, true);
	return NULL;
}

/* Opens the listeners: the first on the requested port, the others on the
 * port it got (so --port 0 works with several workers). */
static int open_listeners(struct server *srv, struct worker_thread *t, int *port)
{
	bool reuse = srv->cfg.workers > 1;

	for (int i = 0; i < srv->cfg.workers; i++) {
		int fd = net_listen(srv->cfg.host, i == 0 ? srv->cfg.port : *port, reuse, false,
		                    i == 0 ? port : NULL);
		if (fd < 0)
			return fd;
		t[i].w = (struct worker){ .srv = srv, .id = i, .listen_fd = fd };
	}
	return 0;
}

/* Waits for SIGINT/SIGTERM (or for every worker to end on its own). */
static int wait_for_stop(struct worker_thread *t, int n)
{
	for (;;) {
		int alive = 0;
		if (platform_wait_stop(200))
			return 0;
		for (int i = 0; i < n; i++)
			alive += !atomic_load(&t[i].done);
		if (alive < n)
			return -1; /* a loop failed: stop the others too */
	}
}

/* Stops the loops: each sees `stopping` once its listener wakes it. Waits up
 * to the grace period for them to finish what is in flight. */
static int stop_workers(struct server *srv, struct worker_thread *t, int n)
{
	int64_t give_up = clock_ms() + SERVER_GRACE_MS + 1000;
	int rc = 0;

	atomic_store(&srv->stopping, true);
	for (int i = 0; i < n; i++)
		platform_wake_listener(t[i].w.listen_fd);
	for (int i = 0; i < n; i++) {
		while (!atomic_load(&t[i].done) && clock_ms() < give_up)
			usleep(10 * 1000);
		if (!atomic_load(&t[i].done))
			return 0; /* a loop overran its grace: exit anyway */
		pthread_join(t[i].tid, NULL);
		if (t[i].rc < 0 && rc == 0)
			rc = t[i].rc;
	}
	return rc;
}

static void format_host(char *dst, size_t cap, const char *host)
{
	snprintf(dst, cap, strchr(host, ':') ? "[%s]" : "%s", host);
}

int main(int argc, char **argv)
{
	static struct server srv = {
		.cfg = { .host = "127.0.0.1",
		         .port = 8080,
		         .root = DEFAULT_ROOT,
		         .workers = 1,
		         .idle_timeout_ms = 10000,
		         .max_conns = 10000 },
	};
	static struct worker_thread *threads; /* static: a loop past its grace still uses it */
	char host[300];
	int rc, port = 0;

	if ((rc = parse_flags(argc, argv, &srv.cfg)) >= 0)
		return rc;
	srv.backend = backend.name;
	if (backend.probe != NULL && (rc = backend.probe()) < 0) {
		fprintf(stderr, "%s: the %s I/O model is not available here: %s\n", argv[0],
		        backend.name, strerror(-rc));
		return EXIT_UNAVAILABLE;
	}
	if ((rc = open_root(&srv)) < 0) {
		fprintf(stderr, "%s: --root %s: %s\n", argv[0], srv.cfg.root, strerror(-rc));
		return EXIT_BAD_FLAGS;
	}
	if (handlers_init(&srv) != 0 ||
	    (threads = calloc((size_t)srv.cfg.workers, sizeof(*threads))) == NULL) {
		fprintf(stderr, "%s: out of memory\n", argv[0]);
		return EXIT_FAILURE_RUNTIME;
	}
	if ((rc = open_listeners(&srv, threads, &port)) < 0) {
		fprintf(stderr, "%s: cannot listen on %s:%d: %s\n", argv[0], srv.cfg.host,
		        srv.cfg.port, strerror(-rc));
		return EXIT_FAILURE_RUNTIME;
	}
	/* Stop signals are taken by platform_wait_stop() in this thread only;
	 * the workers inherit the blocked mask (platform.h). */
	platform_signals_init();
	srv.started_ms = clock_ms();
	for (int i = 0; i < srv.cfg.workers; i++) {
		if ((rc = pthread_create(&threads[i].tid, NULL, worker_main, &threads[i])) != 0) {
			fprintf(stderr, "%s: cannot start worker: %s\n", argv[0], strerror(rc));
			return EXIT_FAILURE_RUNTIME;
		}
	}
	format_host(host, sizeof(host), srv.cfg.host);
	printf("listening on http://%s:%d backend=%s workers=%d\n", host, port, backend.name,
	       srv.cfg.workers);
	fflush(stdout);
	rc = wait_for_stop(threads, srv.cfg.workers);
	int wrc = stop_workers(&srv, threads, srv.cfg.workers);
	if (rc < 0 || wrc < 0) {
		fprintf(stderr, "%s: the %s loop failed: %s\n", argv[0], backend.name,
		        strerror(wrc < 0 ? -wrc : EIO));
		return EXIT_FAILURE_RUNTIME;
	}
	return EXIT_OK;
}
