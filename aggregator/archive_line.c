/* archive_line: see archive_line.h. A recursive-descent JSON reader that
 * keeps slices: one pass over the bytes, nesting bounded (64 levels). */
#include "archive_line.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 64

struct cur {
	const char *s, *e, *p;
	struct ig_aline *l;
	size_t sused;
	const char *why;
};

static void ws(struct cur *c)
{
	while (c->p < c->e && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int fail(struct cur *c, const char *why)
{
	c->why = why;
	return -EINVAL;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xC0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xE0 | cp >> 12);
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (char)(0xF0 | cp >> 18);
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	return o;
}

/* At the opening quote. Fills v (decoded when there are escapes). */
static int str(struct cur *c, struct ig_aval *v)
{
	const char *p = ++c->p, *start = p;

	/* Fast path: no escapes. */
	while (p < c->e) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '"') {
			v->p = start;
			v->len = (uint32_t)(p - start);
			v->type = IG_AVAL_STR;
			c->p = p + 1;
			return 0;
		}
		if (ch == '\\')
			break;
		if (ch < 0x20)
			return fail(c, "control character in a string");
		p++;
	}
	if (p >= c->e)
		return fail(c, "unterminated string");
	/* Slow path: decode into scratch (room for the whole line was made). */
	char *o0 = c->l->scratch + c->sused, *o = o0;
	memcpy(o, start, (size_t)(p - start));
	o += p - start;
	while (p < c->e) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '"') {
			v->p = o0;
			v->len = (uint32_t)(o - o0);
			v->type = IG_AVAL_STR;
			c->sused += (size_t)(o - o0);
			c->p = p + 1;
			return 0;
		}
		if (ch < 0x20)
			return fail(c, "control character in a string");
		if (ch != '\\') {
			*o++ = (char)ch;
			p++;
			continue;
		}
		if (++p >= c->e)
			break;
		switch (*p) {
		case '"':
		case '\\':
		case '/':
			*o++ = *p;
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			unsigned cp, lo;
			if (c->e - p < 5 || hex4(p + 1, &cp))
				return fail(c, "bad \\u escape");
			p += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && c->e - p >= 7 && p[1] == '\\' &&
			    p[2] == 'u' && !hex4(p + 3, &lo) && lo >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			} else if (cp >= 0xD800 && cp < 0xE000) {
				cp = 0xFFFD; /* lone surrogate */
			}
			/* A 6-byte escape decodes to at most 4 bytes (12 to 4 for a
			 * pair): the output never outruns the input. */
			o = put_utf8(o, cp);
			break;
		}
		default:
			return fail(c, "bad escape in a string");
		}
		p++;
	}
	return fail(c, "unterminated string");
}

static int num(struct cur *c, struct ig_aval *v)
{
	const char *p = c->p, *start = p;

	if (p < c->e && *p == '-')
		p++;
	if (p >= c->e)
		return fail(c, "bad number");
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < c->e && *p >= '0' && *p <= '9')
			p++;
	} else {
		return fail(c, "unexpected character");
	}
	if (p < c->e && *p == '.') {
		p++;
		if (p >= c->e || *p < '0' || *p > '9')
			return fail(c, "bad number");
		while (p < c->e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < c->e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < c->e && (*p == '+' || *p == '-'))
			p++;
		if (p >= c->e || *p < '0' || *p > '9')
			return fail(c, "bad number");
		while (p < c->e && *p >= '0' && *p <= '9')
			p++;
	}
	v->p = start;
	v->len = (uint32_t)(p - start);
	v->type = IG_AVAL_NUM;
	c->p = p;
	return 0;
}

static int lit(struct cur *c, struct ig_aval *v)
{
	static const char *const lits[] = { "true", "false", "null" };

	for (int i = 0; i < 3; i++) {
		size_t n = strlen(lits[i]);
		if ((size_t)(c->e - c->p) >= n && !memcmp(c->p, lits[i], n)) {
			v->p = c->p;
			v->len = (uint32_t)n;
			v->type = IG_AVAL_LIT;
			c->p += n;
			return 0;
		}
	}
	return fail(c, "unexpected character");
}

static int value(struct cur *c, struct ig_aval *v, int depth);

/* An object or array whose content is validated and dropped. */
static int container(struct cur *c, int depth)
{
	char close = *c->p == '{' ? '}' : ']';
	bool obj = close == '}';
	struct ig_aval tmp;
	size_t mark = c->sused;

	if (depth >= MAX_DEPTH)
		return fail(c, "nested too deeply");
	c->p++;
	ws(c);
	if (c->p < c->e && *c->p == close) {
		c->p++;
		return 0;
	}
	for (;;) {
		ws(c);
		if (obj) {
			if (c->p >= c->e || *c->p != '"')
				return fail(c, "expected a member name");
			if (str(c, &tmp))
				return -EINVAL;
			ws(c);
			if (c->p >= c->e || *c->p != ':')
				return fail(c, "expected ':'");
			c->p++;
			ws(c);
		}
		if (value(c, &tmp, depth + 1))
			return -EINVAL;
		c->sused = mark; /* nothing inside is kept */
		ws(c);
		if (c->p < c->e && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->e && *c->p == close) {
			c->p++;
			return 0;
		}
		return fail(c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int value(struct cur *c, struct ig_aval *v, int depth)
{
	if (c->p >= c->e)
		return fail(c, "unexpected end of line");
	switch (*c->p) {
	case '"':
		return str(c, v);
	case '{':
	case '[':
		v->type = IG_AVAL_OTHER;
		v->p = c->p;
		v->len = 0;
		return container(c, depth);
	case 't':
	case 'f':
	case 'n':
		return lit(c, v);
	default:
		return num(c, v);
	}
}

static int tags(struct cur *c)
{
	struct ig_aline *l = c->l;

	c->p++; /* '{' */
	ws(c);
	if (c->p < c->e && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		struct ig_aval k, v;
		ws(c);
		if (c->p >= c->e || *c->p != '"')
			return fail(c, "expected a tag name");
		if (str(c, &k))
			return -EINVAL;
		ws(c);
		if (c->p >= c->e || *c->p != ':')
			return fail(c, "expected ':'");
		c->p++;
		ws(c);
		if (value(c, &v, 2))
			return -EINVAL;
		if (l->ntags < IG_ALINE_MAX_TAGS)
			l->tags[l->ntags++] = (struct ig_atag){ k.p, k.len, v };
		ws(c);
		if (c->p < c->e && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->e && *c->p == '}') {
			c->p++;
			return 0;
		}
		return fail(c, "expected ',' or '}'");
	}
}

static bool is(const struct ig_aval *k, const char *name, size_t n)
{
	return k->len == n && !memcmp(k->p, name, n);
}

void ig_aline_init(struct ig_aline *l)
{
	memset(l, 0, sizeof(*l));
}

void ig_aline_free(struct ig_aline *l)
{
	free(l->scratch);
	l->scratch = NULL;
	l->scratch_cap = 0;
}

int ig_aline_parse(struct ig_aline *l, const char *s, size_t len, const char **why, size_t *at)
{
	struct cur c = { .s = s, .e = s + len, .p = s, .l = l };

	l->ts.type = l->name.type = l->kind.type = l->probe.type = IG_AVAL_ABSENT;
	l->ntags = 0;
	if (len + 1 > l->scratch_cap) {
		size_t cap = l->scratch_cap ? l->scratch_cap : 4096;
		while (cap < len + 1)
			cap *= 2;
		char *p = realloc(l->scratch, cap);
		if (!p)
			return -ENOMEM;
		l->scratch = p;
		l->scratch_cap = cap;
	}
	ws(&c);
	if (c.p >= c.e || *c.p != '{') {
		c.why = "not a JSON object";
		goto bad;
	}
	c.p++;
	ws(&c);
	if (c.p < c.e && *c.p == '}') {
		c.p++;
		goto end;
	}
	for (;;) {
		struct ig_aval k, v;
		ws(&c);
		if (c.p >= c.e || *c.p != '"') {
			c.why = "expected a member name";
			goto bad;
		}
		if (str(&c, &k))
			goto bad;
		ws(&c);
		if (c.p >= c.e || *c.p != ':') {
			c.why = "expected ':'";
			goto bad;
		}
		c.p++;
		ws(&c);
		if (c.p < c.e && *c.p == '{' && is(&k, "tags", 4)) {
			l->ntags = 0; /* a repeated "tags" keeps the last one */
			if (tags(&c))
				goto bad;
		} else {
			if (value(&c, &v, 1))
				goto bad;
			if (is(&k, "ts", 2))
				l->ts = v;
			else if (is(&k, "name", 4))
				l->name = v;
			else if (is(&k, "kind", 4))
				l->kind = v;
			else if (is(&k, "probe", 5))
				l->probe = v;
		}
		ws(&c);
		if (c.p < c.e && *c.p == ',') {
			c.p++;
			continue;
		}
		if (c.p < c.e && *c.p == '}') {
			c.p++;
			break;
		}
		c.why = "expected ',' or '}'";
		goto bad;
	}
end:
	ws(&c);
	if (c.p != c.e) {
		c.why = "text after the JSON object";
		goto bad;
	}
	return 0;
bad:
	*why = c.why ? c.why : "invalid JSON";
	*at = (size_t)(c.p - s);
	return -EINVAL;
}

const struct ig_aval *ig_aline_tag(const struct ig_aline *l, const char *key, size_t klen)
{
	for (uint32_t i = l->ntags; i-- > 0;)
		if (l->tags[i].klen == klen && !memcmp(l->tags[i].k, key, klen))
			return &l->tags[i].v;
	return NULL;
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

int ig_rfc3339_parse(const char *s, size_t len, int64_t *ns)
{
	int Y, M, D, h, m, sec;
	int64_t frac = 0;
	size_t i = 19;

	if (len < 20 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
	    digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &m) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -EINVAL;
	if (s[i] == '.') {
		int n = 0;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
			if (n < 9)
				frac = frac * 10 + (s[i] - '0');
		if (!n)
			return -EINVAL;
		for (; n < 9; n++)
			frac *= 10;
	}
	int64_t off = 0;
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != len)
		return -EINVAL;
	int64_t t = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + m * 60 + sec -
		    off;
	*ns = t * 1000000000LL + frac;
	return 0;
}
