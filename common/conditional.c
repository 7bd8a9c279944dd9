/*
 * conditional.c - HTTP-dates, validators, preconditions and ranges (see
 * conditional.h).
 */
#include "conditional.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum {
	NS_PER_S = 1000000000,
	S_PER_DAY = 86400,
	ETAG_MAX = 2 + 16 + 1 + 16, /* "<16 hex>-<16 hex>", quotes included */
};

/* The last second of 9999-12-31, the latest time a 4-digit year can show. */
#define LAST_DATE INT64_C(253402300799)

static const char day_names[7][10] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};
static const char month_names[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
/* Days in the months before each month, in a year that is not a leap year. */
static const int days_before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };

/* ---- calendar arithmetic (proleptic Gregorian, UTC) ----------------------- */

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

/* Leap years from year 1 up to, not including, y (y >= 0). */
static int64_t leaps_before(int64_t y)
{
	return y <= 0 ? 0 : (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
}

/* Days from 1970-01-01 to y-m-d (m 1-12), negative before it. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t days = (y - 1970) * 365 + leaps_before(y) - leaps_before(1970);

	return days + days_before[m - 1] + (m > 2 && is_leap(y)) + d - 1;
}

static int days_in_month(int64_t y, int m)
{
	return m == 12 ? 31 : days_before[m] - days_before[m - 1] + (m == 2 && is_leap(y));
}

/* The year that day `days` (since 1970-01-01) falls in: a first guess from
 * the mean Gregorian year (146097 days per 400 years), then a step or two. */
static int64_t year_of(int64_t days)
{
	int64_t y = 1970 + days * 400 / 146097;

	while (days_from_civil(y, 1, 1) > days)
		y--;
	while (days_from_civil(y + 1, 1, 1) <= days)
		y++;
	return y;
}

/* ---- formatting ------------------------------------------------------------ */

static char *put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

void http_date_format(char *dst, int64_t t)
{
	int64_t days, y;
	int secs, m = 1, doy;
	char *p = dst;

	t = t < 0 ? 0 : t > LAST_DATE ? LAST_DATE : t;
	days = t / S_PER_DAY;
	secs = (int)(t % S_PER_DAY);
	y = year_of(days);
	doy = (int)(days - days_from_civil(y, 1, 1));
	while (m < 12 && doy >= days_before[m] + (m >= 2 && is_leap(y)))
		m++;
	memcpy(p, day_names[(days + 4) % 7], 3); /* 1970-01-01 was a Thursday */
	memcpy(p + 3, ", ", 2);
	p = put2(p + 5, doy - days_before[m - 1] - (m > 2 && is_leap(y)) + 1);
	*p++ = ' ';
	memcpy(p, month_names[m - 1], 3);
	p[3] = ' ';
	p = put2(p + 4, (int)(y / 100));
	p = put2(p, (int)(y % 100));
	*p++ = ' ';
	p = put2(p, secs / 3600);
	*p++ = ':';
	p = put2(p, secs / 60 % 60);
	*p++ = ':';
	p = put2(p, secs % 60);
	memcpy(p, " GMT", 4);
}

/* ---- parsing --------------------------------------------------------------- */

/* The value of n ASCII digits at p, or -1. */
static int digits(const char *p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* 1-12 for the month name at p (3 letters, case-sensitive), or 0. */
static int month_at(const char *p)
{
	for (int m = 0; m < 12; m++)
		if (memcmp(p, month_names[m], 3) == 0)
			return m + 1;
	return 0;
}

/* Is p[0..len) a day name: the 3-letter one, or (full) the whole one? */
static bool day_name_is(const char *p, size_t len, bool full)
{
	for (int d = 0; d < 7; d++)
		if (full ? len == strlen(day_names[d]) && memcmp(p, day_names[d], len) == 0
		         : len == 3 && memcmp(p, day_names[d], 3) == 0)
			return true;
	return false;
}

/* "HH:MM:SS" at p as seconds of the day, or -1. */
static int time_of_day(const char *p)
{
	int h = digits(p, 2), m = digits(p + 3, 2), s = digits(p + 6, 2);

	if (p[2] != ':' || p[5] != ':' || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60)
		return -1;
	return h * 3600 + m * 60 + s;
}

/* The date's seconds since 1970, or INT64_MIN if any part is out of range. */
static int64_t to_seconds(int64_t y, int m, int d, int secs)
{
	if (y < 0 || m == 0 || d < 1 || d > days_in_month(y, m) || secs < 0)
		return INT64_MIN;
	return days_from_civil(y, m, d) * S_PER_DAY + secs;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int64_t parse_imf_fixdate(const char *p, size_t len)
{
	if (len != HTTP_DATE_LEN || !day_name_is(p, 3, false) || memcmp(p + 3, ", ", 2) != 0 ||
	    p[7] != ' ' || p[11] != ' ' || p[16] != ' ' || memcmp(p + 25, " GMT", 4) != 0)
		return INT64_MIN;
	return to_seconds(digits(p + 12, 4), month_at(p + 8), digits(p + 5, 2),
	                  time_of_day(p + 17));
}

/* "Sunday, 06-Nov-94 08:49:37 GMT": the century is not sent, so the year is
 * the latest one with those two digits that is not over 50 years ahead. */
static int64_t parse_rfc850_date(const char *p, size_t len, int64_t now)
{
	const char *comma = memchr(p, ',', len);
	int64_t year_now = year_of(now / S_PER_DAY), y;

	if (comma == NULL || !day_name_is(p, (size_t)(comma - p), true))
		return INT64_MIN;
	len -= (size_t)(comma - p);
	p = comma;
	if (len != 24 || p[1] != ' ' || p[4] != '-' || p[8] != '-' || p[11] != ' ' ||
	    memcmp(p + 20, " GMT", 4) != 0 || (y = digits(p + 9, 2)) < 0)
		return INT64_MIN;
	y += year_now - year_now % 100;
	if (y > year_now + 50)
		y -= 100;
	return to_seconds(y, month_at(p + 5), digits(p + 2, 2), time_of_day(p + 12));
}

/* "Sun Nov  6 08:49:37 1994": C's asctime(), a day under 10 space-padded. */
static int64_t parse_asctime_date(const char *p, size_t len)
{
	int day;

	if (len != 24 || !day_name_is(p, 3, false) || p[3] != ' ' || p[7] != ' ' || p[10] != ' ' ||
	    p[19] != ' ')
		return INT64_MIN;
	day = p[8] == ' ' ? digits(p + 9, 1) : digits(p + 8, 2);
	return to_seconds(digits(p + 20, 4), month_at(p + 4), day, time_of_day(p + 11));
}

int64_t http_date_parse(struct http_str s, int64_t now)
{
	if (s.len < 24)
		return INT64_MIN;
	if (s.p[3] == ',')
		return parse_imf_fixdate(s.p, s.len);
	if (s.p[3] == ' ')
		return parse_asctime_date(s.p, s.len);
	return parse_rfc850_date(s.p, s.len, now);
}

/* ---- validators ------------------------------------------------------------- */

int64_t validator_last_modified(const struct validator *v, int64_t now)
{
	int64_t s = v->mtime_ns / NS_PER_S - (v->mtime_ns % NS_PER_S < 0); /* rounded down */

	return s > now ? now : s < 0 ? 0 : s;
}

/* v in hexadecimal, without leading zeros. */
static char *put_hex(char *p, uint64_t v)
{
	int n = 1;

	while (n < 16 && v >> (4 * n) != 0)
		n++;
	for (int i = n - 1; i >= 0; i--, v >>= 4)
		p[i] = "0123456789abcdef"[v & 15];
	return p + n;
}

/* The entity tag: "<mtime in ns, hex>-<size, hex>", quotes included. A file
 * rewritten with the same size keeps its tag only if its modification time
 * does not change, to the nanosecond where the file system keeps them.
 * Returns its length. */
static size_t etag_format(char *dst, const struct validator *v)
{
	char *p = dst;

	*p++ = '"';
	p = put_hex(p, (uint64_t)v->mtime_ns);
	*p++ = '-';
	p = put_hex(p, v->size);
	*p++ = '"';
	return (size_t)(p - dst);
}

/* http_date_format() of t, remembered per thread: a file asked for again
 * and again (a site's stylesheet) has its date formatted once. */
static const char *date_text(int64_t t)
{
	static _Thread_local struct {
		int64_t t;
		char text[HTTP_DATE_LEN];
	} last = { INT64_MIN, "" };

	if (t != last.t) {
		http_date_format(last.text, t);
		last.t = t;
	}
	return last.text;
}

size_t validator_fields(char *dst, const struct validator *v, int status, int64_t now)
{
	char *p = dst;

	if (status != 304) { /* a 304 carries the ETag only: the client has the rest */
		memcpy(p, "Last-Modified: ", 15);
		memcpy(p + 15, date_text(validator_last_modified(v, now)), HTTP_DATE_LEN);
		memcpy(p + 15 + HTTP_DATE_LEN, "\r\n", 2);
		p += 15 + HTTP_DATE_LEN + 2;
	}
	memcpy(p, "ETag: ", 6);
	p += 6 + etag_format(p + 6, v);
	memcpy(p, "\r\n", 3);
	return (size_t)(p + 2 - dst);
}

/* ---- preconditions ---------------------------------------------------------- */

/* Past the OWS and commas between list elements; empty elements are allowed
 * (RFC 9110 5.6.1). */
static const char *skip_list_gap(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
		p++;
	return p;
}

/* How many lines of the field `name` (lower case) the request has; *value
 * is the last one's. */
static int field_lines(const struct http_request *r, const char *name, struct http_str *value)
{
	int lines = 0;

	for (size_t i = 0; i < r->nheaders; i++) {
		if (http_str_ieq(r->headers[i].name, name)) {
			lines++;
			*value = r->headers[i].value;
		}
	}
	return lines;
}

/* Does one field line, "*" or a list of entity-tags, name our tag `tag`?
 * With strong comparison (If-Match) a weak tag W/"..." never matches; with
 * weak comparison (If-None-Match) the W/ is ignored (RFC 9110 8.8.3.2). An
 * opaque tag may hold commas, so the list is read tag by tag, not split.
 * A line that is not a valid list names nothing. */
static bool etag_list_has(struct http_str list, const char *tag, size_t tag_len, bool strong)
{
	const char *p = list.p, *end = list.p + list.len;
	bool found = false;

	if (list.len == 1 && p[0] == '*')
		return true; /* any current version: the file exists */
	for (;;) {
		const char *open;
		bool weak = false;
		p = skip_list_gap(p, end);
		if (p == end)
			return found;
		if (end - p >= 2 && p[0] == 'W' && p[1] == '/') {
			weak = true;
			p += 2;
		}
		if (p == end || *p != '"')
			return false;
		for (open = p++; p < end && *p != '"'; p++)
			if ((unsigned char)*p < 0x21 || *p == 0x7f)
				return false; /* not an etagc */
		if (p == end)
			return false; /* no closing quote */
		p++;
		if ((size_t)(p - open) == tag_len && memcmp(open, tag, tag_len) == 0 &&
		    !(strong && weak))
			found = true;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && *p != ',')
			return false;
	}
}

/* What the request asks, gathered in one pass over its fields. A list field
 * may come in several lines (they add up); a date field must come once. */
struct preconditions {
	int if_match, if_none_match, if_unmodified, if_modified; /* lines of each */
	bool match_any, none_match_any; /* some If-(None-)Match line names our tag */
	struct http_str unmodified, modified;
};

static bool is_if_field(struct http_str name)
{
	return name.len >= 8 && (name.p[0] | 0x20) == 'i' && (name.p[1] | 0x20) == 'f';
}

static void gather(const struct http_request *r, const struct validator *v,
                   struct preconditions *pc)
{
	char tag[ETAG_MAX];
	size_t tag_len;

	memset(pc, 0, sizeof(*pc));
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];
		if (!is_if_field(h->name))
			continue; /* the common case, cheaply */
		if (http_str_ieq(h->name, "if-match")) {
			pc->if_match++;
		} else if (http_str_ieq(h->name, "if-none-match")) {
			pc->if_none_match++;
		} else if (http_str_ieq(h->name, "if-unmodified-since")) {
			pc->if_unmodified++;
			pc->unmodified = h->value;
		} else if (http_str_ieq(h->name, "if-modified-since")) {
			pc->if_modified++;
			pc->modified = h->value;
		}
	}
	if (pc->if_match == 0 && pc->if_none_match == 0)
		return;
	tag_len = etag_format(tag, v); /* only a request that asks needs the tag */
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];
		if (!is_if_field(h->name))
			continue;
		if (http_str_ieq(h->name, "if-match"))
			pc->match_any |= etag_list_has(h->value, tag, tag_len, true);
		else if (http_str_ieq(h->name, "if-none-match"))
			pc->none_match_any |= etag_list_has(h->value, tag, tag_len, false);
	}
}

/* RFC 9110 13.2.2, steps 1-4 for a GET or HEAD. A date that is not exactly
 * one valid HTTP-date is ignored, as 13.1.3 and 13.1.4 ask. */
int conditional_check(const struct http_request *r, const struct validator *v, int64_t now)
{
	struct preconditions pc;
	int64_t date;

	gather(r, v, &pc);
	if (pc.if_match > 0) {
		if (!pc.match_any)
			return 412;
	} else if (pc.if_unmodified == 1 &&
	           (date = http_date_parse(pc.unmodified, now)) != INT64_MIN &&
	           validator_last_modified(v, now) > date) {
		return 412;
	}
	if (pc.if_none_match > 0)
		return pc.none_match_any ? 304 : 0;
	if (pc.if_modified == 1 && (date = http_date_parse(pc.modified, now)) != INT64_MIN &&
	    validator_last_modified(v, now) <= date)
		return 304;
	return 0;
}

/* ---- ranges (RFC 9110 14) ----------------------------------------------------- */

/* Digits at *p as a number, *p moved past them; false if there are none or
 * the number does not fit in 64 bits. */
static bool decimal(const char **p, const char *end, uint64_t *v)
{
	const char *start = *p;

	for (*v = 0; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return false;
		*v = *v * 10 + (uint64_t)(**p - '0');
	}
	return *p > start;
}

/* "bytes=" and one range-spec: "first-last", "first-" or "-suffix", for a
 * file of size > 0 bytes. Returns 206 with *rg set, 416, or 0 when the
 * field is to be ignored (another unit, bad syntax, several ranges). */
static int parse_range(struct http_str s, uint64_t size, struct byte_range *rg)
{
	const char *p, *end = s.p + s.len;
	uint64_t first = 0, last = UINT64_MAX, suffix = 0;
	bool is_suffix;

	if (s.len < 6 || !http_str_ieq((struct http_str){ s.p, 6 }, "bytes="))
		return 0;
	p = skip_list_gap(s.p + 6, end);
	is_suffix = p < end && *p == '-';
	if (is_suffix) {
		p++;
		if (!decimal(&p, end, &suffix))
			return 0;
	} else {
		if (!decimal(&p, end, &first) || p == end || *p++ != '-')
			return 0;
		if (p < end && *p >= '0' && *p <= '9' && (!decimal(&p, end, &last) || last < first))
			return 0;
	}
	if (skip_list_gap(p, end) != end)
		return 0; /* a second range (or junk): the whole file will do */
	if (is_suffix) {  /* the last `suffix` bytes, or the whole file if it is shorter */
		if (suffix == 0)
			return 416;
		first = suffix < size ? size - suffix : 0;
	}
	if (first >= size)
		return 416;
	last = last < size ? last : size - 1;
	*rg = (struct byte_range){ first, last - first + 1 };
	return 206;
}

/* If-Range (RFC 9110 13.1.5): absent, or naming the current version, by
 * its entity-tag (compared strongly) or by its Last-Modified date exactly,
 * and only if that date is a strong validator: a second already over, in
 * which the file can no longer change unseen. */
static bool if_range_holds(const struct http_request *r, const struct validator *v, int64_t now)
{
	struct http_str val = { NULL, 0 };
	int lines = field_lines(r, "if-range", &val);
	int64_t last_modified;

	if (lines == 0)
		return true;
	if (lines > 1 || val.len == 0)
		return false;
	if (val.p[0] == '"') {
		char tag[ETAG_MAX];
		size_t tag_len = etag_format(tag, v);
		return val.len == tag_len && memcmp(val.p, tag, tag_len) == 0;
	}
	last_modified = validator_last_modified(v, now);
	return last_modified < now && http_date_parse(val, now) == last_modified;
}

int range_check(const struct http_request *r, const struct validator *v, int64_t now,
                struct byte_range *out)
{
	struct http_str range = { NULL, 0 };
	struct byte_range rg;
	int rc;

	if (field_lines(r, "range", &range) != 1 || v->size == 0)
		return 0; /* no range, or one an empty file cannot express: all of it */
	rc = parse_range(range, v->size, &rg);
	if (rc == 0 || !if_range_holds(r, v, now))
		return 0;
	if (rc == 206)
		*out = rg;
	return rc;
}

void content_range_field(char *dst, const struct byte_range *rg, uint64_t size)
{
	if (rg == NULL)
		snprintf(dst, CONTENT_RANGE_MAX, "Content-Range: bytes */%" PRIu64 "\r\n", size);
	else
		snprintf(dst, CONTENT_RANGE_MAX,
		         "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", rg->first,
		         rg->first + rg->len - 1, size);
}
