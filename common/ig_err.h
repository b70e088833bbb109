/* ig_err: an accumulator for operator-facing error messages.
 *
 * Validation (configuration, wire decoding) wants to report every problem it
 * finds, not only the first, and each message must tell the operator where
 * (file:line:column) and what to do. Functions that validate take a
 * `struct ig_err *` (may be NULL), append one line per problem with
 * ig_err_add(), and return -EINVAL when they added any.
 */
#ifndef IG_ERR_H
#define IG_ERR_H

#include <stddef.h>

#define IG_ERR_BUF 8192

struct ig_err {
	int n; /* number of messages added */
	size_t len; /* bytes used in buf */
	char buf[IG_ERR_BUF]; /* messages, one per line, NUL-terminated */
};

void ig_err_init(struct ig_err *e);
/* Appends one message (a newline is added). Messages that do not fit are
 * counted and summarised as "... and N more". Safe with e == NULL. */
void ig_err_add(struct ig_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The messages as one string ("" when none). */
const char *ig_err_str(const struct ig_err *e);

#endif
