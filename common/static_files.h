/*
 * static_files.h - opening files under --root safely.
 *
 * What it teaches: path traversal is stopped by the kernel, not by string
 * checks alone. On Linux, openat2(RESOLVE_BENEATH) refuses any path that
 * would leave the root directory, through "..", an absolute path or a
 * symlink. Elsewhere the resolved path is compared with the resolved root.
 * The string checks in front ("..", backslash) only turn obvious attacks into
 * a clean 404 before any system call.
 */
#ifndef STATIC_FILES_H
#define STATIC_FILES_H

#include <stddef.h>
#include <stdint.h>

struct server;

/* An open file to serve. */
struct static_file {
	int fd;        /* read-only; the caller closes it */
	unsigned type; /* its content type, for static_type_name() */
	uint64_t size;
	int64_t mtime_ns; /* modification time, nanoseconds since 1970 */
};

/* Opens `rel` (decoded, relative to --root). On success returns 0 and fills
 * *f. Otherwise returns 404 (missing, or outside the root) or 403 (not a
 * regular file). */
int static_open(const struct server *srv, const char *rel, size_t len, struct static_file *f);

/* The content type of a file name, by its extension: a small number (a
 * connection keeps it in 4 bytes, not a pointer's 8), and its text. */
unsigned static_type_of(const char *name, size_t len);
const char *static_type_name(unsigned type);

#endif
