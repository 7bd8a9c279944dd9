/*
 * conditional.h - validators, conditional and range requests (RFC 9110 8.8,
 * 13, 14).
 *
 * What it teaches: how a cache asks "has this changed?" without fetching it
 * again. A 200 for a file carries two validators, Last-Modified (the file's
 * modification time, to the second) and an ETag (an opaque tag that changes
 * whenever the file does). A client that kept the file sends them back in
 * If-Modified-Since or If-None-Match, and gets a 304 Not Modified with no
 * body when nothing changed. If-Match and If-Unmodified-Since ask the
 * opposite question ("only if it is still the version I know") and fail
 * with a 412. RFC 9110 13.2.2 fixes the order in which the four are judged.
 *
 * The same validators make a Range request safe to resume (RFC 9110 14): a
 * client that has the first half of a file asks for "bytes=N-" with
 * If-Range naming the version it has, and gets the rest (206) only if that
 * is still the file; otherwise the whole new file (200).
 *
 * Dates travel as HTTP-dates (RFC 9110 5.6.7): the server sends the
 * IMF-fixdate form, "Sun, 06 Nov 1994 08:49:37 GMT", and accepts the two
 * obsolete forms as well, as the RFC requires of a recipient.
 *
 * Everything here is arithmetic on strings and numbers: no system call, no
 * locale, no time zone, so the unit tests can pin every case.
 */
#ifndef CONDITIONAL_H
#define CONDITIONAL_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

enum {
	HTTP_DATE_LEN = 29, /* an IMF-fixdate, without a terminating NUL */
	/* "Last-Modified: <date>\r\nETag: \"<16 hex>-<16 hex>\"\r\n" is 90 bytes */
	VALIDATOR_FIELDS_MAX = 96,
	/* "Content-Range: bytes <first>-<last>/<size>\r\n" and a NUL */
	CONTENT_RANGE_MAX = 21 + 3 * 20 + 2 + 2 + 1,
};

/* Writes the IMF-fixdate of `t` (seconds since 1970, UTC; years 0-9999) to
 * dst: HTTP_DATE_LEN bytes, no NUL. */
void http_date_format(char *dst, int64_t t);

/* Parses an HTTP-date in any of its three forms; the whole of s must be one
 * date. Returns seconds since 1970, or INT64_MIN if s is not a valid date.
 * `now` (seconds since 1970) places the two-digit years of the obsolete
 * RFC 850 form: one that would lie more than 50 years ahead is taken to be
 * in the past century. */
int64_t http_date_parse(struct http_str s, int64_t now);

/* What tells one version of a file from another. */
struct validator {
	int64_t mtime_ns; /* modification time, nanoseconds since 1970 */
	uint64_t size;
};

/* The Last-Modified time to send, in seconds: the modification time, but
 * never later than `now` (RFC 9110 8.8.2.1: a date in the future would be
 * a promise about a version not yet seen). */
int64_t validator_last_modified(const struct validator *v, int64_t now);

/* Writes the header lines a 200 carries ("Last-Modified: ...\r\nETag:
 * ...\r\n") or, for a 304, the ETag line alone (RFC 9110 15.4.5), with a
 * NUL. dst has room for VALIDATOR_FIELDS_MAX bytes. Returns the length,
 * without the NUL. */
size_t validator_fields(char *dst, const struct validator *v, int status, int64_t now);

/* Judges the request's preconditions against the file's validators, in the
 * order of RFC 9110 13.2.2. Call it only for a GET or HEAD whose answer
 * would otherwise be a 200. Returns 0 (answer as usual), 304 (Not Modified)
 * or 412 (Precondition Failed). */
int conditional_check(const struct http_request *r, const struct validator *v, int64_t now);

/* The bytes of a file to send: len of them from first. */
struct byte_range {
	uint64_t first, len;
};

/* Judges a GET's Range field (and If-Range) for the file, once its
 * preconditions have passed. Returns 0 (send the whole file: no Range, or
 * one ignored as RFC 9110 14.2 allows: another unit, bad syntax, more than
 * one range, an empty file, or an If-Range that does not hold), 206 with
 * *out set (last byte clamped to the file's), or 416 (the range starts at
 * or past the end). *out is only written for a 206. */
int range_check(const struct http_request *r, const struct validator *v, int64_t now,
                struct byte_range *out);

/* Writes "Content-Range: bytes first-last/size\r\n", or for a 416 (rg
 * NULL) the form with a star in place of first-last, with a NUL; dst has
 * room for CONTENT_RANGE_MAX bytes. */
void content_range_field(char *dst, const struct byte_range *rg, uint64_t size);

#endif
