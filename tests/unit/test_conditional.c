/*
 * test_conditional.c - unit tests of HTTP-dates, validators,
 * preconditions and ranges (common/conditional.h).
 *
 * What it teaches: a date formatter is checked against the C library's own
 * (every day from 1970 to 2400), a date parser against a table of the three
 * forms and of near misses, each placed against a guard page, and the
 * precondition and range rules against tables of requests that each pin
 * one line of RFC 9110 13.2.2 or 14.
 *
 * Needs: cmocka. Run with `make test-unit`.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conditional.h"
#include "unit.h"

static struct guard g;

/* 2026-11-26 00:00:00 UTC, the "now" of every vector. */
#define NOW INT64_C(1795651200)
/* Sun, 06 Nov 1994 08:49:37 GMT, and 5 ns. */
#define MTIME_S INT64_C(784111777)
static const struct validator file = { MTIME_S * 1000000000 + 5, 407 };
#define TAG "\"ae1b981bc490a05-197\""

/* ---- formatting ------------------------------------------------------------- */

struct format_vec {
	const char *name;
	int64_t t;
	const char *want;
};

static struct format_vec formats[] = {
	{ "the epoch", 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ "RFC 9110's example", MTIME_S, "Sun, 06 Nov 1994 08:49:37 GMT" },
	{ "a leap day", 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
	{ "2100 is no leap year: Feb 28", INT64_C(4107542399), "Sun, 28 Feb 2100 23:59:59 GMT" },
	{ "2100 is no leap year: Mar 1", INT64_C(4107542400), "Mon, 01 Mar 2100 00:00:00 GMT" },
	{ "the last 4-digit year", INT64_C(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT" },
	{ "before 1970: clamped", -5, "Thu, 01 Jan 1970 00:00:00 GMT" },
	{ "after 9999: clamped", INT64_C(253402300800), "Fri, 31 Dec 9999 23:59:59 GMT" },
};

static void test_format(void **state)
{
	const struct format_vec *v = *state;
	char out[HTTP_DATE_LEN + 1] = { 0 };

	http_date_format(out, v->t);
	assert_string_equal(out, v->want);
}

/* Every day from 1970 to 2400, at a second that moves through the day,
 * against gmtime_r() and strftime() (the C locale's names are English). */
static void test_format_model(void **state)
{
	char out[HTTP_DATE_LEN + 1] = { 0 }, want[64];

	(void)state;
	for (int64_t day = 0; day < 157000; day++) {
		time_t t = (time_t)(day * 86400 + day * 7919 % 86400);
		struct tm tm;
		assert_non_null(gmtime_r(&t, &tm));
		strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		http_date_format(out, (int64_t)t);
		if (strcmp(out, want) != 0)
			fail_msg("t=%" PRId64 ": got %s, want %s", (int64_t)t, out, want);
	}
}

/* ---- parsing ------------------------------------------------------------------ */

struct parse_vec {
	const char *name;
	const char *in;
	int64_t want; /* INT64_MIN: not a date */
};

static struct parse_vec parses[] = {
	{ "IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", MTIME_S },
	{ "RFC 850 date", "Sunday, 06-Nov-94 08:49:37 GMT", MTIME_S },
	{ "asctime date, one-digit day", "Sun Nov  6 08:49:37 1994", MTIME_S },
	{ "asctime date, two-digit day", "Wed Nov 16 08:49:37 1994", 784975777 },
	{ "the epoch", "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
	{ "a leap day", "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
	{ "the last 4-digit year", "Fri, 31 Dec 9999 23:59:59 GMT", INT64_C(253402300799) },
	{ "before 1970", "Wed, 31 Dec 1969 23:59:59 GMT", -1 },
	{ "RFC 850: '76 is 49 years ahead", "Wednesday, 01-Jan-76 00:00:00 GMT",
	  INT64_C(3345062400) },
	{ "RFC 850: '77 is over 50 ahead", "Saturday, 01-Jan-77 00:00:00 GMT", 220924800 },
	{ "a leap second", "Sat, 31 Dec 2016 23:59:60 GMT", INT64_C(1483228800) },
	{ "empty", "", INT64_MIN },
	{ "a word", "yesterday", INT64_MIN },
	{ "lower-case day name", "sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "lower-case month", "Sun, 06 nov 1994 08:49:37 GMT", INT64_MIN },
	{ "no such day name", "Sux, 06 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "Feb 31", "Sun, 31 Feb 1994 08:49:37 GMT", INT64_MIN },
	{ "1900 was no leap year", "Thu, 29 Feb 1900 00:00:00 GMT", INT64_MIN },
	{ "day 00", "Sun, 00 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "hour 24", "Sun, 06 Nov 1994 24:00:00 GMT", INT64_MIN },
	{ "minute 60", "Sun, 06 Nov 1994 08:60:00 GMT", INT64_MIN },
	{ "second 61", "Sun, 06 Nov 1994 08:49:61 GMT", INT64_MIN },
	{ "not GMT", "Sun, 06 Nov 1994 08:49:37 UTC", INT64_MIN },
	{ "one-digit day", "Sun, 6 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "two-digit year", "Sun, 06 Nov 94 08:49:37 GMT", INT64_MIN },
	{ "one-digit hour", "Sun, 06 Nov 1994 8:49:37 GMT", INT64_MIN },
	{ "a trailing space", "Sun, 06 Nov 1994 08:49:37 GMT ", INT64_MIN },
	{ "two dates", "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "no space after the comma", "Sun,06 Nov 1994 08:49:37 GMT", INT64_MIN },
	{ "a sign in the year", "Sun, 06 Nov +994 08:49:37 GMT", INT64_MIN },
	{ "RFC 850, four-digit year", "Sunday, 06-Nov-1994 08:49:37 GMT", INT64_MIN },
	{ "RFC 850, short day name", "Sun, 06-Nov-94 08:49:37 GMT", INT64_MIN },
	{ "RFC 850, no such day", "Funday, 06-Nov-94 08:49:37 GMT", INT64_MIN },
	{ "asctime, one space before the day", "Sun Nov 6 08:49:37 1994", INT64_MIN },
	{ "asctime, two-digit year", "Sun Nov  6 08:49:37 94", INT64_MIN },
	{ "asctime, with GMT", "Sun Nov  6 08:49:37 1994 GMT", INT64_MIN },
};

static void test_parse(void **state)
{
	const struct parse_vec *v = *state;
	size_t len = strlen(v->in);
	struct http_str s = { guard_place(&g, v->in, len), len };
	int64_t got = http_date_parse(s, NOW);

	if (got != v->want)
		fail_msg("\"%s\": got %" PRId64 ", want %" PRId64, v->in, got, v->want);
}

/* What the formatter writes, the parser reads back. */
static void test_round_trip(void **state)
{
	char out[HTTP_DATE_LEN];

	(void)state;
	for (int64_t t = 0; t < INT64_C(253402300799); t += INT64_C(86400) * 365 / 7 + 4099) {
		http_date_format(out, t);
		struct http_str s = { guard_place(&g, out, sizeof(out)), sizeof(out) };
		assert_int_equal(http_date_parse(s, NOW), t);
	}
}

/* ---- validators ---------------------------------------------------------------- */

static void test_last_modified(void **state)
{
	struct validator v = { 0, 0 };

	(void)state;
	assert_int_equal(validator_last_modified(&file, NOW), MTIME_S); /* rounded down */
	v.mtime_ns = (NOW + 10) * 1000000000;
	assert_int_equal(validator_last_modified(&v, NOW), NOW); /* never in the future */
	v.mtime_ns = -1;
	assert_int_equal(validator_last_modified(&v, NOW), 0); /* never before 1970 */
}

static void test_fields(void **state)
{
	char out[VALIDATOR_FIELDS_MAX];
	struct validator big = { INT64_MAX, UINT64_MAX };

	(void)state;
	validator_fields(out, &file, 200, NOW);
	assert_string_equal(out, "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
	                         "ETag: " TAG "\r\n");
	validator_fields(out, &file, 304, NOW);
	assert_string_equal(out, "ETag: " TAG "\r\n");
	validator_fields(out, &big, 200, NOW); /* the longest there is fits */
	assert_int_equal(strlen(out) + 1, 90);
}

/* ---- preconditions (RFC 9110 13.2.2) ------------------------------------------- */

struct pre_vec {
	const char *name;
	const char *fields[3]; /* "Name: value" */
	int want;
};

static struct pre_vec pres[] = {
	{ "none", { NULL }, 0 },
	{ "If-None-Match: the tag", { "If-None-Match: " TAG }, 304 },
	{ "If-None-Match: the tag, weak", { "If-None-Match: W/" TAG }, 304 },
	{ "If-None-Match: another tag", { "If-None-Match: \"abc\"" }, 0 },
	{ "If-None-Match: a list", { "If-None-Match: \"a\" ,W/\"b\"," TAG }, 304 },
	{ "If-None-Match: a comma inside a tag", { "If-None-Match: \"a,b\", " TAG }, 304 },
	{ "If-None-Match: empty elements", { "If-None-Match: ,, " TAG " ," }, 304 },
	{ "If-None-Match: *", { "If-None-Match: *" }, 304 },
	{ "If-None-Match: * in a list is no list", { "If-None-Match: *, \"a\"" }, 0 },
	{ "If-None-Match: unquoted", { "If-None-Match: ae1b981bc490a05-197" }, 0 },
	{ "If-None-Match: unclosed", { "If-None-Match: " TAG ", \"a" }, 0 },
	{ "If-None-Match: junk after a tag", { "If-None-Match: " TAG "x" }, 0 },
	{ "If-None-Match: a control byte in a tag", { "If-None-Match: \"a\x01b\", " TAG }, 0 },
	{ "If-None-Match: two lines", { "If-None-Match: \"a\"", "If-None-Match: " TAG }, 304 },
	{ "If-None-Match: lower-case name", { "if-none-match: " TAG }, 304 },
	{ "If-Modified-Since: the date",
	  { "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT" },
	  304 },
	{ "If-Modified-Since: a second before",
	  { "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT" },
	  0 },
	{ "If-Modified-Since: later", { "If-Modified-Since: Mon, 07 Nov 1994 08:49:37 GMT" }, 304 },
	{ "If-Modified-Since: asctime", { "If-Modified-Since: Sun Nov  6 08:49:37 1994" }, 304 },
	{ "If-Modified-Since: not a date", { "If-Modified-Since: yesterday" }, 0 },
	{ "If-Modified-Since: two lines",
	  { "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
	    "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT" },
	  0 },
	{ "If-Modified-Since ignored beside If-None-Match",
	  { "If-None-Match: \"a\"", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT" },
	  0 },
	{ "If-Match: the tag", { "If-Match: " TAG }, 0 },
	{ "If-Match: another tag", { "If-Match: \"a\"" }, 412 },
	{ "If-Match: weak never matches", { "If-Match: W/" TAG }, 412 },
	{ "If-Match: *", { "If-Match: *" }, 0 },
	{ "If-Match: not a list", { "If-Match: " TAG " junk" }, 412 },
	{ "If-Unmodified-Since: the date",
	  { "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT" },
	  0 },
	{ "If-Unmodified-Since: a second before",
	  { "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT" },
	  412 },
	{ "If-Unmodified-Since: not a date", { "If-Unmodified-Since: soon" }, 0 },
	{ "If-Unmodified-Since ignored beside If-Match",
	  { "If-Match: " TAG, "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT" },
	  0 },
	{ "If-Match is judged before If-None-Match",
	  { "If-None-Match: " TAG, "If-Match: \"a\"" },
	  412 },
	{ "If-Unmodified-Since is judged before If-None-Match",
	  { "If-None-Match: " TAG, "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:36 GMT" },
	  412 },
	{ "both pass, then If-None-Match", { "If-Match: " TAG, "If-None-Match: *" }, 304 },
	{ "If-Unmodified-Since passes, then If-Modified-Since",
	  { "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
	    "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT" },
	  304 },
	{ "a short field name", { "If: " TAG }, 0 },
};

/* Adds up to three "Name: value" fields to a request, as the parser would. */
static void add_fields(struct http_request *r, const char *const fields[3])
{
	for (size_t i = 0; i < 3 && fields[i] != NULL; i++) {
		const char *colon = strchr(fields[i], ':');
		struct http_header *h = &r->headers[r->nheaders++];
		h->name = (struct http_str){ fields[i], (size_t)(colon - fields[i]) };
		h->value = (struct http_str){ colon + 2, strlen(colon + 2) };
	}
}

static void test_preconditions(void **state)
{
	const struct pre_vec *v = *state;
	struct http_request r = { .method = HTTP_GET, .minor = 1 };

	add_fields(&r, v->fields);
	assert_int_equal(conditional_check(&r, &file, NOW), v->want);
}

/* ---- ranges (RFC 9110 14) ------------------------------------------------------- */

struct range_vec {
	const char *name;
	const char *fields[3]; /* "Name: value" */
	int want;
	uint64_t first, len; /* for 206 */
	uint64_t size;       /* of the file; 0 means the 407 bytes of `file` */
};

static struct range_vec ranges[] = {
	{ "no Range", { NULL }, .want = 0 },
	{ "first-last", { "Range: bytes=0-99" }, 206, .first = 0, .len = 100 },
	{ "one byte", { "Range: bytes=406-406" }, 206, .first = 406, .len = 1 },
	{ "open end", { "Range: bytes=400-" }, 206, .first = 400, .len = 7 },
	{ "last past the end: clamped",
	  { "Range: bytes=100-5000" },
	  206,
	  .first = 100,
	  .len = 307 },
	{ "suffix", { "Range: bytes=-10" }, 206, .first = 397, .len = 10 },
	{ "suffix longer than the file", { "Range: bytes=-1000" }, 206, .first = 0, .len = 407 },
	{ "unit in capitals", { "Range: BYTES=0-0" }, 206, .first = 0, .len = 1 },
	{ "empty list elements", { "Range: bytes=, 5-9 ," }, 206, .first = 5, .len = 5 },
	{ "starts at the end", { "Range: bytes=407-" }, .want = 416 },
	{ "starts past the end", { "Range: bytes=500-600" }, .want = 416 },
	{ "suffix of zero bytes", { "Range: bytes=-0" }, .want = 416 },
	{ "last before first: ignored", { "Range: bytes=10-5" }, .want = 0 },
	{ "two ranges: ignored", { "Range: bytes=0-1,5-6" }, .want = 0 },
	{ "two ranges, one past the end: ignored", { "Range: bytes=500-600,0-1" }, .want = 0 },
	{ "another unit: ignored", { "Range: items=0-1" }, .want = 0 },
	{ "no '=': ignored", { "Range: bytes 0-1" }, .want = 0 },
	{ "no numbers: ignored", { "Range: bytes=-" }, .want = 0 },
	{ "junk after: ignored", { "Range: bytes=0-1x" }, .want = 0 },
	{ "a sign: ignored", { "Range: bytes=+1-2" }, .want = 0 },
	{ "over 64 bits: ignored", { "Range: bytes=99999999999999999999-" }, .want = 0 },
	{ "two Range lines: ignored", { "Range: bytes=0-1", "Range: bytes=0-1" }, .want = 0 },
	{ "an empty file: ignored", { "Range: bytes=-5" }, .want = 0, .size = UINT64_MAX },
	{ "If-Range: the tag",
	  { "Range: bytes=0-9", "If-Range: " TAG },
	  206,
	  .first = 0,
	  .len = 10 },
	{ "If-Range: another tag", { "Range: bytes=0-9", "If-Range: \"abc\"" }, .want = 0 },
	{ "If-Range: a weak tag never holds",
	  { "Range: bytes=0-9", "If-Range: W/" TAG },
	  .want = 0 },
	{ "If-Range: the date",
	  { "Range: bytes=0-9", "If-Range: Sun, 06 Nov 1994 08:49:37 GMT" },
	  206,
	  .first = 0,
	  .len = 10 },
	{ "If-Range: another date",
	  { "Range: bytes=0-9", "If-Range: Sun, 06 Nov 1994 08:49:38 GMT" },
	  .want = 0 },
	{ "If-Range: not a date", { "Range: bytes=0-9", "If-Range: soon" }, .want = 0 },
	{ "If-Range: empty", { "Range: bytes=0-9", "If-Range: " }, .want = 0 },
	{ "If-Range: two lines",
	  { "Range: bytes=0-9", "If-Range: " TAG, "If-Range: " TAG },
	  .want = 0 },
	{ "If-Range that fails turns a 416 into the whole file",
	  { "Range: bytes=900-", "If-Range: \"abc\"" },
	  .want = 0 },
	{ "If-Range without Range", { "If-Range: " TAG }, .want = 0 },
};

static void test_range(void **state)
{
	const struct range_vec *v = *state;
	struct http_request r = { .method = HTTP_GET, .minor = 1 };
	struct validator f = file;
	struct byte_range got = { 12345, 12345 };

	if (v->size == UINT64_MAX)
		f.size = 0;
	add_fields(&r, v->fields);
	assert_int_equal(range_check(&r, &f, NOW, &got), v->want);
	if (v->want == 206) {
		assert_int_equal(got.first, v->first);
		assert_int_equal(got.len, v->len);
	} else { /* left alone: a caller may not take it for a range */
		assert_int_equal(got.first, 12345);
		assert_int_equal(got.len, 12345);
	}
}

/* A Last-Modified date in the current second is weak: If-Range by date
 * must not hold, the file may still change within that second. */
static void test_if_range_weak_date(void **state)
{
	struct http_request r = { .method = HTTP_GET, .minor = 1, .nheaders = 2 };
	struct byte_range got;

	(void)state;
	r.headers[0] = (struct http_header){ { "Range", 5 }, { "bytes=0-9", 9 } };
	r.headers[1] =
	        (struct http_header){ { "If-Range", 8 }, { "Sun, 06 Nov 1994 08:49:37 GMT", 29 } };
	assert_int_equal(range_check(&r, &file, MTIME_S + 1, &got), 206);
	assert_int_equal(range_check(&r, &file, MTIME_S, &got), 0);
}

static void test_content_range(void **state)
{
	char out[CONTENT_RANGE_MAX];
	struct byte_range rg = { 0, 10 }, max = { 0, UINT64_MAX };

	(void)state;
	content_range_field(out, &rg, 407);
	assert_string_equal(out, "Content-Range: bytes 0-9/407\r\n");
	content_range_field(out, NULL, 407);
	assert_string_equal(out, "Content-Range: bytes */407\r\n");
	max.first = UINT64_MAX - 1, max.len = 1;
	content_range_field(out, &max, UINT64_MAX); /* the longest there is fits */
	assert_string_equal(out, "Content-Range: bytes 18446744073709551614-18446744073709551614/"
	                         "18446744073709551615\r\n");
}

int main(void)
{
	struct unit_list l = { 0 };
	int failed;

	guard_init(&g, 4096);
	UNIT_ADD_TABLE(&l, formats, test_format);
	unit_add(&l, "format: every day 1970-2400 against gmtime_r", test_format_model, NULL);
	UNIT_ADD_TABLE(&l, parses, test_parse);
	unit_add(&l, "parse: what format writes", test_round_trip, NULL);
	unit_add(&l, "Last-Modified: rounded down, clamped", test_last_modified, NULL);
	unit_add(&l, "validator fields for a 200 and a 304", test_fields, NULL);
	UNIT_ADD_TABLE(&l, pres, test_preconditions);
	UNIT_ADD_TABLE(&l, ranges, test_range);
	unit_add(&l, "If-Range: a date in the current second is weak", test_if_range_weak_date,
	         NULL);
	unit_add(&l, "Content-Range fields", test_content_range, NULL);
	failed = unit_run(&l, "conditional requests", NULL, NULL);
	guard_free(&g);
	return failed != 0;
}
