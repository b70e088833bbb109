/* archive_line: one line of the archive (record_json.h's schema) parsed for
 * querying, fast and strictly.
 *
 * `ingrainctl archive query` and the S3 backend's index builder read the
 * same lines with this parser, so the values an index records are exactly
 * the values a query compares: a JSON string is its decoded text, a number
 * (or true/false/null) its literal text as stored ("pid":4242 is "4242").
 *
 * The line must be one JSON object (RFC 8259; whitespace allowed, nothing
 * after it). Only the members a query uses are kept: ts, name, kind, probe
 * and the scalar members of tags; everything else is validated and skipped.
 * Strings without escapes point into the line; strings with escapes are
 * decoded (\uXXXX and surrogate pairs to UTF-8) into the parser's scratch
 * buffer. No allocation per line once the scratch buffer is big enough: the
 * parser is the inner loop of a full scan (bench/bench_archive.sh).
 */
#ifndef IG_ARCHIVE_LINE_H
#define IG_ARCHIVE_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG_ALINE_MAX_TAGS 128

enum ig_aval_type { IG_AVAL_ABSENT = 0, IG_AVAL_STR, IG_AVAL_NUM, IG_AVAL_LIT, IG_AVAL_OTHER };

struct ig_aval {
	const char *p; /* not NUL-terminated */
	uint32_t len;
	uint8_t type; /* enum ig_aval_type; OTHER = an object or array (no text) */
};

struct ig_atag {
	const char *k;
	uint32_t klen;
	struct ig_aval v;
};

struct ig_aline {
	struct ig_aval ts, name, kind, probe;
	uint32_t ntags; /* tags beyond IG_ALINE_MAX_TAGS are validated, not kept */
	struct ig_atag tags[IG_ALINE_MAX_TAGS];
	char *scratch; /* decoded strings of the current line */
	size_t scratch_cap;
};

void ig_aline_init(struct ig_aline *l);
void ig_aline_free(struct ig_aline *l);
/* Parses s[0..len) (no newline). 0, -ENOMEM, or -EINVAL with a short reason
 * ("expected ':' at byte 17") in *why (static text + the offset in *at). */
int ig_aline_parse(struct ig_aline *l, const char *s, size_t len, const char **why, size_t *at);
/* The tag's value (the last one when a key repeats), NULL when absent. */
const struct ig_aval *ig_aline_tag(const struct ig_aline *l, const char *key, size_t klen);
/* "2026-11-25T12:00:00.123456789Z" (or any RFC 3339 time) -> ns since the
 * epoch. 0 on success, -EINVAL. */
int ig_rfc3339_parse(const char *s, size_t len, int64_t *ns);

#endif
