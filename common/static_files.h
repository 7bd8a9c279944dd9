/*
 * static_files.h - opening files under --root safely.
 *
 * What it teaches: path traversal is stopped by the kernel, not by string
 * checks alone. On Linux, openat2(RESOLVE_BENEATH) refuses any path that
 * would leave the root directory, through "..", an absolute path or a
 * symlink. Elsewhere the resolved path is compared with the resolved root.
 * The string checks in front ("..", backslash) only turn obvious attacks into
 * a clean 404 before any system call.
 *
 * It also teaches that opening a file can cost more than sending it: each
 * thread keeps the bytes of its last few small files, and serves one again
 * after a single stat of its name proves it unchanged (static_files.c).
 */
#ifndef STATIC_FILES_H
#define STATIC_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;

/* The largest file the cache keeps: files this small go out in memory anyway,
 * behind their head (conn.c's CONN_SMALL_FILE); larger ones by sendfile(2). */
#define STATIC_CACHE_MAX_FILE (16 * 1024)

/* A file to serve: an open descriptor, or its bytes from the cache. */
struct static_file {
	int fd;           /* read-only, the caller closes it; -1 when `data` is set */
	const char *data; /* or NULL: the whole file, held by this thread's cache,
	                   * valid until the thread's next static_open() */
	unsigned type;    /* its content type, for static_type_name() */
	uint64_t size;
	int64_t mtime_ns; /* modification time, nanoseconds since 1970 */
};

/* Opens `rel` (decoded, relative to --root). On success returns 0 and fills
 * *f. Otherwise returns 404 (missing, or outside the root) or 403 (not a
 * regular file). With `cache`, a file of at most STATIC_CACHE_MAX_FILE bytes
 * may come as `data` instead of a descriptor (never on Windows). */
int static_open(const struct server *srv, const char *rel, size_t len, bool cache,
                struct static_file *f);

/* Bytes of files held in all threads' caches together. */
size_t static_cache_bytes(void);

/* The content type of a file name, by its extension: a small number (a
 * connection keeps it in 4 bytes, not a pointer's 8), and its text. */
unsigned static_type_of(const char *name, size_t len);
const char *static_type_name(unsigned type);

#endif
