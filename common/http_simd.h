/*
 * http_simd.h - SSE2 and AVX2 fast paths for the request parser's scanning
 * loops.
 *
 * What it teaches: how a parser looks at 16 or 32 bytes at once. Load 16
 * bytes into one 128-bit register, compare all of them against a constant in
 * a single instruction (each byte lane becomes 0xff where the compare holds,
 * else 0x00), combine such masks with and/or, then squeeze the 16 lanes into
 * a 16-bit integer (movemask: one bit per byte) and let "count trailing
 * zeros" name the first interesting byte. A loop that used to branch on every
 * byte branches once per 16. AVX2 does the same with 256-bit registers: 32
 * bytes per block, a 32-bit mask, the same instructions with a wider name.
 *
 * Two widths, chosen at two different times:
 *   - SSE2 is part of x86-64 itself, so the default build (no -march flag)
 *     compiles it in and every x86-64 CPU runs it: no check needed.
 *   - AVX2 is not (CPUs before 2013 lack it, and so do some small cores), so
 *     its helpers carry the compiler's target("avx2") attribute, which lets
 *     one function use AVX2 in a build that otherwise does not, and the
 *     parser calls them only after asking the CPU (http_simd_best()). An AVX2
 *     helper walks 32-byte blocks, then hands the rest (fewer than 32 bytes)
 *     to its SSE2 twin, which hands the last few to the scalar loop.
 * Which one the parser uses by default is decided by measurement
 * (bench/parser_bench.c; see http_parse.c).
 *
 * Why not SSE4.2's pcmpestri (picohttpparser's choice): it matches up to
 * eight byte ranges in one instruction, but it has a long latency on current
 * cores, and the plain compares below do the same work with a few cheap
 * instructions.
 *
 * The rules every helper here follows:
 *   - it only loads 16 (32) bytes when all of them lie before `end` (no
 *     over-read, not even inside a page: the unit tests put a guard page
 *     right after `end`);
 *   - it returns the first byte that stops the scan, or, if no stop was
 *     found, the first byte of the tail (too few bytes left for a load);
 *   - the caller's scalar loop always runs after it: that loop finishes the
 *     tail, and if it already stands on the stop byte it does nothing. So
 *     the scalar code stays the definition of what is accepted.
 *
 * Needs: an x86-64 (or x86 with -msse2) compiler; for AVX2, gcc or clang
 * targeting x86-64, and -DHTTP_NO_AVX2 turns it off. Everywhere else, and
 * with -DHTTP_NO_SIMD, HTTP_SIMD is 0 and only the scalar loops exist.
 * http_parse.c is the one user of the helpers; the unit tests and the
 * benchmark include this file for the levels and http_parse_set_simd().
 */
#ifndef HTTP_SIMD_H
#define HTTP_SIMD_H

#include <stdbool.h>

#if defined(__SSE2__) && !defined(HTTP_NO_SIMD)
#define HTTP_SIMD 1
#else
#define HTTP_SIMD 0
#endif

#if HTTP_SIMD && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
        !defined(HTTP_NO_AVX2)
#define HTTP_AVX2    1
#define HTTP_AVX2_FN __attribute__((target("avx2")))
#else
#define HTTP_AVX2 0
#endif

/* The scanning loops' fast paths, slowest first. */
enum http_simd_level { HTTP_SIMD_NONE, HTTP_SIMD_SSE2, HTTP_SIMD_AVX2 };

/* The widest level this build and this CPU can run. */
enum http_simd_level http_simd_best(void);

/* "scalar", "SSE2" or "AVX2". */
const char *http_simd_name(enum http_simd_level level);

/* Switches http_parse.c's scanning loops to `level`, or to
 * http_simd_best() where `level` is beyond it, so the unit tests and the
 * benchmark can run every level in one process. Returns the level in use
 * before the call. Not thread-safe: set it before any thread parses. */
enum http_simd_level http_parse_set_simd(enum http_simd_level level);

#if HTTP_SIMD
#include <emmintrin.h>

/* 0xff in each lane where x <= hi, comparing as unsigned bytes. SSE2 only
 * has signed byte compares, but it has an unsigned minimum: min(x, hi) is x
 * exactly when x <= hi. */
static inline __m128i simd_le(__m128i x, unsigned char hi)
{
	return _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8((char)hi)), x);
}

/* 0xff in each lane where lo <= x <= hi (unsigned): clamping x into the
 * range leaves it unchanged exactly when it already was inside. */
static inline __m128i simd_in(__m128i x, unsigned char lo, unsigned char hi)
{
	__m128i clamped =
	        _mm_min_epu8(_mm_max_epu8(x, _mm_set1_epi8((char)lo)), _mm_set1_epi8((char)hi));
	return _mm_cmpeq_epi8(clamped, x);
}

static inline __m128i simd_eq(__m128i x, char c)
{
	return _mm_cmpeq_epi8(x, _mm_set1_epi8(c));
}

static inline __m128i simd_load(const char *p)
{
	return _mm_loadu_si128((const __m128i *)(const void *)p); /* any alignment */
}

/* p plus the index of the first byte whose bit is set in `bits` (a
 * movemask: bit i stands for byte i), or NULL if none is. */
static inline const char *simd_first(const char *p, unsigned bits)
{
	return bits != 0 ? p + __builtin_ctz(bits) : NULL;
}

/* field-value bytes: stops at a CTL other than HTAB (CR and LF among them,
 * which is how a value normally ends) and at DEL. Bytes >= 0x80 (obs-text)
 * pass: as unsigned bytes they are above 0x1f and are not 0x7f. */
static inline const char *simd_skip_value(const char *p, const char *end)
{
	for (; end - p >= 16; p += 16) {
		__m128i x = simd_load(p);
		__m128i ctl = _mm_andnot_si128(simd_eq(x, '\t'), simd_le(x, 0x1f));
		__m128i stop = _mm_or_si128(ctl, simd_eq(x, 0x7f));
		const char *hit = simd_first(p, (unsigned)_mm_movemask_epi8(stop));
		if (hit != NULL)
			return hit;
	}
	return p;
}

/* request-target bytes: stops at SP (the end of the target), any CTL, and
 * DEL. Bytes >= 0x80 pass here as in the scalar loop. */
static inline const char *simd_skip_target(const char *p, const char *end)
{
	for (; end - p >= 16; p += 16) {
		__m128i x = simd_load(p);
		__m128i stop = _mm_or_si128(simd_le(x, ' '), simd_eq(x, 0x7f));
		const char *hit = simd_first(p, (unsigned)_mm_movemask_epi8(stop));
		if (hit != NULL)
			return hit;
	}
	return p;
}

/* The usual token bytes: letters, digits and '-', which is all that method
 * and field names contain in practice. The rarer tchar bytes
 * ("!#$%&'*+.^_`|~") stop this scan and are judged by the scalar loop, which
 * then finishes the name: exact, and the common case costs three range
 * checks per block. OR-ing 0x20 folds 'A'-'Z' onto 'a'-'z' (and moves no
 * other byte into that range). */
static inline const char *simd_skip_name(const char *p, const char *end)
{
	for (; end - p >= 16; p += 16) {
		__m128i x = simd_load(p);
		__m128i alpha = simd_in(_mm_or_si128(x, _mm_set1_epi8(0x20)), 'a', 'z');
		__m128i ok =
		        _mm_or_si128(_mm_or_si128(alpha, simd_in(x, '0', '9')), simd_eq(x, '-'));
		/* stop where not ok: invert the 16 mask bits */
		const char *hit = simd_first(p, ~(unsigned)_mm_movemask_epi8(ok) & 0xffff);
		if (hit != NULL)
			return hit;
	}
	return p;
}

/* The first '\n' that starts an empty line ("\n\n" or "\n\r\n"), or the
 * tail. Three overlapping loads, at p, p + 1 and p + 2, line up each byte
 * with the two after it, so one block tests 16 candidate positions at once;
 * the loads at p + 2 need 18 bytes, so the tail here starts 18 before end. */
static inline const char *simd_find_blank_line(const char *p, const char *end)
{
	while (end - p >= 18) {
		__m128i b0 = simd_load(p), b1 = simd_load(p + 1), b2 = simd_load(p + 2);
		__m128i crlf = _mm_and_si128(simd_eq(b1, '\r'), simd_eq(b2, '\n'));
		__m128i hit =
		        _mm_and_si128(simd_eq(b0, '\n'), _mm_or_si128(simd_eq(b1, '\n'), crlf));
		const char *at = simd_first(p, (unsigned)_mm_movemask_epi8(hit));
		if (at != NULL)
			return at;
		p += 16;
	}
	return p;
}

#endif /* HTTP_SIMD */

#if HTTP_AVX2
#include <immintrin.h>

/* The same four scans, 32 bytes per block: the lane tricks above with
 * 256-bit registers. The compiler inlines them only into callers compiled
 * for AVX2 too (each other), never into the parser's plain code, so the
 * parser reaches them by a call it makes only on a CPU that has AVX2. */

static inline HTTP_AVX2_FN __m256i avx2_le(__m256i x, unsigned char hi)
{
	return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8((char)hi)), x);
}

static inline HTTP_AVX2_FN __m256i avx2_in(__m256i x, unsigned char lo, unsigned char hi)
{
	__m256i clamped = _mm256_min_epu8(_mm256_max_epu8(x, _mm256_set1_epi8((char)lo)),
	                                  _mm256_set1_epi8((char)hi));
	return _mm256_cmpeq_epi8(clamped, x);
}

static inline HTTP_AVX2_FN __m256i avx2_eq(__m256i x, char c)
{
	return _mm256_cmpeq_epi8(x, _mm256_set1_epi8(c));
}

static inline HTTP_AVX2_FN __m256i avx2_load(const char *p)
{
	return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

static inline HTTP_AVX2_FN const char *avx2_skip_value(const char *p, const char *end)
{
	for (; end - p >= 32; p += 32) {
		__m256i x = avx2_load(p);
		__m256i ctl = _mm256_andnot_si256(avx2_eq(x, '\t'), avx2_le(x, 0x1f));
		__m256i stop = _mm256_or_si256(ctl, avx2_eq(x, 0x7f));
		const char *hit = simd_first(p, (unsigned)_mm256_movemask_epi8(stop));
		if (hit != NULL)
			return hit;
	}
	return simd_skip_value(p, end);
}

static inline HTTP_AVX2_FN const char *avx2_skip_target(const char *p, const char *end)
{
	for (; end - p >= 32; p += 32) {
		__m256i x = avx2_load(p);
		__m256i stop = _mm256_or_si256(avx2_le(x, ' '), avx2_eq(x, 0x7f));
		const char *hit = simd_first(p, (unsigned)_mm256_movemask_epi8(stop));
		if (hit != NULL)
			return hit;
	}
	return simd_skip_target(p, end);
}

static inline HTTP_AVX2_FN const char *avx2_skip_name(const char *p, const char *end)
{
	for (; end - p >= 32; p += 32) {
		__m256i x = avx2_load(p);
		__m256i alpha = avx2_in(_mm256_or_si256(x, _mm256_set1_epi8(0x20)), 'a', 'z');
		__m256i ok = _mm256_or_si256(_mm256_or_si256(alpha, avx2_in(x, '0', '9')),
		                             avx2_eq(x, '-'));
		/* all 32 mask bits are lanes here: inverting needs no mask */
		const char *hit = simd_first(p, ~(unsigned)_mm256_movemask_epi8(ok));
		if (hit != NULL)
			return hit;
	}
	return simd_skip_name(p, end);
}

static inline HTTP_AVX2_FN const char *avx2_find_blank_line(const char *p, const char *end)
{
	while (end - p >= 34) {
		__m256i b0 = avx2_load(p), b1 = avx2_load(p + 1), b2 = avx2_load(p + 2);
		__m256i crlf = _mm256_and_si256(avx2_eq(b1, '\r'), avx2_eq(b2, '\n'));
		__m256i hit = _mm256_and_si256(avx2_eq(b0, '\n'),
		                               _mm256_or_si256(avx2_eq(b1, '\n'), crlf));
		const char *at = simd_first(p, (unsigned)_mm256_movemask_epi8(hit));
		if (at != NULL)
			return at;
		p += 32;
	}
	return simd_find_blank_line(p, end);
}

#endif /* HTTP_AVX2 */

#endif
