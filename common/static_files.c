/*
 * static_files.c - files under --root (see static_files.h).
 */
#include "static_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

/* The modification time to the nanosecond where the system keeps it. */
static int64_t mtime_ns(const struct stat *st)
{
#if defined(__APPLE__)
	return (int64_t)st->st_mtimespec.tv_sec * 1000000000 + st->st_mtimespec.tv_nsec;
#elif defined(_WIN32)
	return (int64_t)st->st_mtime * 1000000000;
#else
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
#endif
}

int static_open(const struct server *srv, const char *rel, size_t len, struct static_file *f)
{
	char name[HTTP_MAX_URI + 1];
	struct stat st;

	if (len > HTTP_MAX_URI || !name_is_sane(rel, len) || memchr(rel, '\0', len) != NULL)
		return 404;
	memcpy(name, rel, len);
	name[len] = '\0';
	if ((f->fd = open_beneath(srv, name)) < 0)
		return f->fd == -EACCES ? 403 : 404;
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		/* directories, FIFOs, devices and sockets are never served */
		platform_close_file(f->fd);
		return 403;
	}
	f->size = (uint64_t)st.st_size;
	f->mtime_ns = mtime_ns(&st);
	f->type = static_type_of(name, len);
	return 0;
}
