/* ig_err: see ig_err.h. A fixed buffer keeps error reporting allocation-free
 * (it is used on paths where memory may be what ran out). */
#include "ig_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ig_err_init(struct ig_err *e)
{
	if (!e)
		return;
	e->n = 0;
	e->len = 0;
	e->buf[0] = '\0';
}

void ig_err_add(struct ig_err *e, const char *fmt, ...)
{
	static const char more[] = "... (more errors not shown)\n";
	char line[1024];
	va_list ap;
	size_t n;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->n++;
	n = strlen(line);
	if (e->len + n + 1 + sizeof(more) > sizeof(e->buf)) {
		if (!strstr(e->buf, more) && e->len + sizeof(more) <= sizeof(e->buf)) {
			memcpy(e->buf + e->len, more, sizeof(more));
			e->len += sizeof(more) - 1;
		}
		return;
	}
	memcpy(e->buf + e->len, line, n);
	e->len += n;
	e->buf[e->len++] = '\n';
	e->buf[e->len] = '\0';
}

const char *ig_err_str(const struct ig_err *e)
{
	return e ? e->buf : "";
}
