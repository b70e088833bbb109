/* re: PCRE2 patterns as the regex and filter stages use them, compiled once
 * at load.
 *
 * Patterns are Perl-compatible (`\d`, `(?<name>...)`, lazy quantifiers),
 * UTF-8 aware (`.` is one character, `[é]` works) and tolerant of subjects
 * that are not valid UTF-8 (a path is bytes: PCRE2_MATCH_INVALID_UTF makes
 * invalid sequences simply not match a character instead of failing the
 * match). Each pattern is JIT-compiled when the platform allows (the stage
 * then matches at several hundred MB/s; see docs/performance.md for the
 * measurement against POSIX <regex.h>), else interpreted.
 */
#ifndef IG_RE_H
#define IG_RE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stddef.h>

/* The compiled pattern, or NULL with "missing closing parenthesis at offset
 * 7" (PCRE2's message and the byte offset where it stopped) in msg. */
pcre2_code *ig_re_compile(const char *pattern, char *msg, size_t msglen);

#endif
