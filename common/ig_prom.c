/* ig_prom: see ig_prom.h. */
#include "ig_prom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ig_prom_init(struct ig_prom *p)
{
	memset(p, 0, sizeof(*p));
}

void ig_prom_free(struct ig_prom *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

static void put(struct ig_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct ig_prom *p, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = p->cap - p->len;
		va_start(ap, fmt);
		int n = vsnprintf(p->buf ? p->buf + p->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			p->len += (size_t)n;
			return;
		}
		size_t ncap = (p->cap ? p->cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(p->buf, ncap);
		if (!nb)
			return;
		p->buf = nb;
		p->cap = ncap;
	}
}

static void put_label_value(struct ig_prom *p, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			put(p, "\\%c", *v);
		else if (*v == '\n')
			put(p, "\\n");
		else
			put(p, "%c", *v);
	}
}

void ig_prom_family(struct ig_prom *p, const char *name, const char *type, const char *help)
{
	put(p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ig_prom_sample2(struct ig_prom *p, const char *name, const char *k1, const char *v1,
		     const char *k2, const char *v2, double v)
{
	put(p, "%s", name);
	if (k1) {
		put(p, "{%s=\"", k1);
		put_label_value(p, v1 ? v1 : "");
		put(p, "\"");
		if (k2) {
			put(p, ",%s=\"", k2);
			put_label_value(p, v2 ? v2 : "");
			put(p, "\"");
		}
		put(p, "}");
	}
	put(p, " %.17g\n", v);
}

void ig_prom_sample(struct ig_prom *p, const char *name, const char *k1, const char *v1, double v)
{
	ig_prom_sample2(p, name, k1, v1, NULL, NULL, v);
}
