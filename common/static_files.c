/*
 * static_files.c - files under --root (see static_files.h).
 */
#include "static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/openat2.h>
#include <sys/syscall.h>
#endif

#include "http.h"
#include "server.h"

static const struct {
	const char *ext;
	const char *type;
} types[] = {
	{ "", "application/octet-stream" }, /* no extension, or one not listed */
	{ "html", "text/html; charset=utf-8" },
	{ "htm", "text/html; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "json", "application/json" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "md", "text/markdown; charset=utf-8" },
	{ "xml", "application/xml" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "ico", "image/x-icon" },
	{ "wasm", "application/wasm" },
	{ "pdf", "application/pdf" },
};

unsigned static_type_of(const char *name, size_t len)
{
	size_t dot = len;

	while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/')
		dot--;
	if (dot == 0 || name[dot - 1] != '.')
		return 0;
	for (unsigned i = 1; i < sizeof(types) / sizeof(types[0]); i++) {
		struct http_str ext = { name + dot, len - dot };
		if (http_str_ieq(ext, types[i].ext))
			return i;
	}
	return 0;
}

const char *static_type_name(unsigned type)
{
	return types[type < sizeof(types) / sizeof(types[0]) ? type : 0].type;
}

/* Refuses what no file under the root can be called: an empty name, an
 * absolute path, a ".." segment, a backslash (a separator on Windows). */
static bool name_is_sane(const char *name, size_t len)
{
	const char *seg = name, *end = name + len;

	if (len == 0 || name[0] == '/' || memchr(name, '\\', len) != NULL)
		return false;
	while (seg < end) {
		const char *slash = memchr(seg, '/', (size_t)(end - seg));
		size_t n = slash ? (size_t)(slash - seg) : (size_t)(end - seg);
		if (n == 2 && seg[0] == '.' && seg[1] == '.')
			return false;
		seg += n + 1;
	}
	return true;
}

/* The portable way: open, then check that the resolved path is inside. */
static int open_checked(const struct server *srv, const char *name)
{
	char full[PATH_MAX], real[PATH_MAX];
	size_t rootlen = strlen(srv->root_path);
	int fd;

	if (snprintf(full, sizeof(full), "%s/%s", srv->root_path, name) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	if (platform_realpath(full, real) == NULL)
		return -errno;
	if (strncmp(real, srv->root_path, rootlen) != 0 ||
	    (real[rootlen] != '/' && real[rootlen] != '\0'))
		return -EXDEV;
	fd = platform_open_file(real);
	return fd >= 0 ? fd : -errno;
}

static int open_beneath(const struct server *srv, const char *name)
{
#if defined(__linux__) && defined(SYS_openat2)
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, srv->root_fd, name, &how, sizeof(how));

	if (fd >= 0)
		return (int)fd;
	if (errno != ENOSYS && errno != EPERM)
		return -errno;
#endif
	return open_checked(srv, name);
}

/* A file time to the nanosecond where the system keeps it. */
#if defined(__APPLE__)
#define STAT_NS(st, t) \
	((int64_t)(st)->st_##t##timespec.tv_sec * 1000000000 + (st)->st_##t##timespec.tv_nsec)
#elif defined(_WIN32)
#define STAT_NS(st, t) ((int64_t)(st)->st_##t##time * 1000000000)
#else
#define STAT_NS(st, t) ((int64_t)(st)->st_##t##tim.tv_sec * 1000000000 + (st)->st_##t##tim.tv_nsec)
#endif

/* ---- the cache of small files, one per thread ----------------------------
 *
 * Opening a file costs more than its bytes do on loopback: openat2, fstat,
 * pread and close of a 1 KiB file took 5.5 us together on the test VM, a
 * quarter of the request, against 1.6 us for one fstatat() of its name
 * (docs/performance-notes.md). So each thread keeps the bytes of its last
 * CACHE_ENTRIES small files, and serves a copy only while a stat of the name
 * finds the same inode, size, modification and change times as when it was
 * read. Any write, chmod or utime gives a file a new change time, except
 * where a file system keeps coarse clock ticks and the write falls in the
 * tick of the read: the ETag has the same blind spot. (Since Linux 6.13, ext4,
 * XFS, btrfs and tmpfs give a change after a stat a fine-grained time.) The
 * stat follows symlinks where openat2 would refuse them, but it can only
 * match an inode that was under the root when it was read, and was served
 * then. Nothing is shared between threads, so nothing is locked;
 * CACHE_BUDGET bounds all threads together (the threads backend has one per
 * connection), and a thread's cache is freed as the thread ends. */
#ifndef _WIN32
enum {
	CACHE_ENTRIES = 8,              /* files per thread */
	CACHE_BUDGET = 8 * 1024 * 1024, /* bytes of files in all threads' caches */
};

struct cached {
	dev_t dev;
	ino_t ino;
	int64_t mtime_ns, ctime_ns;
	size_t size, name_len;
	unsigned type;
	char bytes[]; /* the file (size bytes), then its name */
};

struct cache {
	struct cached *slot[CACHE_ENTRIES];
	unsigned next; /* the slot the next file read takes */
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static atomic_size_t cache_bytes; /* in all threads' caches */

static void cache_drop(struct cache *c, unsigned i)
{
	if (c->slot[i] != NULL)
		atomic_fetch_sub(&cache_bytes, c->slot[i]->size);
	free(c->slot[i]);
	c->slot[i] = NULL;
}

static void cache_free(void *p) /* as its thread ends */
{
	for (unsigned i = 0; i < CACHE_ENTRIES; i++)
		cache_drop(p, i);
	free(p);
}

static void cache_key_init(void)
{
	pthread_key_create(&cache_key, cache_free);
}

/* This thread's cache, made on first use; NULL if out of memory. */
static struct cache *cache_of_thread(void)
{
	struct cache *c;

	pthread_once(&cache_once, cache_key_init);
	if ((c = pthread_getspecific(cache_key)) == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
	    pthread_setspecific(cache_key, c) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

/* Serves `name` from the cache if it is there and unchanged (fills *f and
 * returns true); a copy found stale is dropped. */
static bool cache_lookup(const struct server *srv, const char *name, size_t len,
                         struct static_file *f)
{
	struct cache *c = cache_of_thread();
	struct stat st;

	for (unsigned i = 0; c != NULL && i < CACHE_ENTRIES; i++) {
		struct cached *e = c->slot[i];
		if (e == NULL || e->name_len != len || memcmp(e->bytes + e->size, name, len) != 0)
			continue;
		if (fstatat(srv->root_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    st.st_dev != e->dev || st.st_ino != e->ino || (uint64_t)st.st_size != e->size ||
		    STAT_NS(&st, m) != e->mtime_ns || STAT_NS(&st, c) != e->ctime_ns) {
			cache_drop(c, i); /* changed, moved or gone: open it again */
			return false;
		}
		*f = (struct static_file){ .fd = -1,
			                   .data = e->bytes,
			                   .type = e->type,
			                   .size = e->size,
			                   .mtime_ns = e->mtime_ns };
		return true;
	}
	return false;
}

/* Reads the small file just opened (f, with its stat *st) into the cache;
 * on success closes the descriptor and serves the copy. Nothing changes if
 * the file is too large, the budget spent, or the read comes up short. */
static void cache_store(const char *name, size_t len, const struct stat *st, struct static_file *f)
{
	struct cache *c = cache_of_thread();
	struct cached *e;

	if (c == NULL || f->size > STATIC_CACHE_MAX_FILE)
		return;
	if (atomic_fetch_add(&cache_bytes, f->size) + f->size > CACHE_BUDGET) {
		atomic_fetch_sub(&cache_bytes, f->size);
		return;
	}
	if ((e = malloc(sizeof(*e) + f->size + len)) == NULL ||
	    platform_pread(f->fd, e->bytes, f->size, 0) != (ssize_t)f->size) {
		atomic_fetch_sub(&cache_bytes, f->size);
		free(e);
		return; /* served from the descriptor, as without a cache */
	}
	*e = (struct cached){ .dev = st->st_dev,
		              .ino = st->st_ino,
		              .mtime_ns = f->mtime_ns,
		              .ctime_ns = STAT_NS(st, c),
		              .size = f->size,
		              .name_len = len,
		              .type = f->type };
	memcpy(e->bytes + f->size, name, len);
	cache_drop(c, c->next);
	c->slot[c->next] = e;
	c->next = (c->next + 1) % CACHE_ENTRIES;
	platform_close_file(f->fd);
	f->fd = -1;
	f->data = e->bytes;
}

size_t static_cache_bytes(void)
{
	return atomic_load(&cache_bytes);
}
#else /* Windows: no fstatat(), and st_ino means nothing there */
static bool cache_lookup(const struct server *srv, const char *name, size_t len,
                         struct static_file *f)
{
	(void)srv, (void)name, (void)len, (void)f;
	return false;
}

static void cache_store(const char *name, size_t len, const struct stat *st, struct static_file *f)
{
	(void)name, (void)len, (void)st, (void)f;
}

size_t static_cache_bytes(void)
{
	return 0;
}
#endif

int static_open(const struct server *srv, const char *rel, size_t len, bool cache,
                struct static_file *f)
{
	char name[HTTP_MAX_URI + 1];
	struct stat st;

	if (len > HTTP_MAX_URI || !name_is_sane(rel, len) || memchr(rel, '\0', len) != NULL)
		return 404;
	memcpy(name, rel, len);
	name[len] = '\0';
	if (cache && cache_lookup(srv, name, len, f))
		return 0;
	if ((f->fd = open_beneath(srv, name)) < 0)
		return f->fd == -EACCES ? 403 : 404;
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		/* directories, FIFOs, devices and sockets are never served */
		platform_close_file(f->fd);
		return 403;
	}
	f->data = NULL;
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = STAT_NS(&st, m);
	f->type = static_type_of(name, len);
	if (cache)
		cache_store(name, len, &st, f);
	return 0;
}
