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

/* Opens `rel` (decoded, relative to --root). On success returns 0 and sets
 * *fd (read-only, the caller closes it), *size and *content_type. Otherwise
 * returns 404 (missing, or outside the root) or 403 (not a regular file). */
int static_open(const struct server *srv, const char *rel, size_t len, int *fd, uint64_t *size,
                const char **content_type);

/* The content type for a file name, by extension. */
const char *static_content_type(const char *name, size_t len);

#endif
