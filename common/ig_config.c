/* ig_config: fills a C struct from a YAML mapping using an option table.
 *
 * Why tables: every component describes its options once (name, type,
 * default, bounds, help), and the same table drives parsing, validation,
 * error messages and the Markdown reference, so docs cannot drift from code.
 *
 * How it works: ig_cfg_apply() first zeroes every field the table names (so
 * ig_cfg_free is always safe), reports keys the table does not know (with a
 * did-you-mean), then sets each option from the user's node or, when absent
 * or null, from its default. Defaults are YAML text parsed by the same YAML
 * loader and the same converters as user values, so "8MiB" means the same in
 * both places. Every problem is added to the ig_err and the walk continues,
 * so an operator sees all mistakes at once.
 */
#include "ig_config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ig_log.h"

struct unit {
	const char *name;
	uint64_t mult;
};

/* Longest names first where one is a prefix of another is irrelevant: the
 * whole suffix must match a name (case-insensitively). */
static const struct unit duration_units[] = {
	{ "ns", 1ULL },
	{ "us", 1000ULL },
	{ "µs", 1000ULL },
	{ "ms", 1000000ULL },
	{ "s", 1000000000ULL },
	{ "m", 60000000000ULL },
	{ "h", 3600000000000ULL },
	{ "d", 86400000000000ULL },
	{ NULL, 0 },
};

static const struct unit size_units[] = {
	{ "", 1ULL },
	{ "b", 1ULL },
	{ "k", 1000ULL },
	{ "kb", 1000ULL },
	{ "m", 1000000ULL },
	{ "mb", 1000000ULL },
	{ "g", 1000000000ULL },
	{ "gb", 1000000000ULL },
	{ "t", 1000000000000ULL },
	{ "tb", 1000000000000ULL },
	{ "ki", 1ULL << 10 },
	{ "kib", 1ULL << 10 },
	{ "mi", 1ULL << 20 },
	{ "mib", 1ULL << 20 },
	{ "gi", 1ULL << 30 },
	{ "gib", 1ULL << 30 },
	{ "ti", 1ULL << 40 },
	{ "tib", 1ULL << 40 },
	{ NULL, 0 },
};

/* "<digits>[.<digits>][ ]<unit>" -> value * unit, rounding the fraction
 * down. -EINVAL on syntax, -ERANGE on overflow. */
static int parse_scaled(const char *s, const struct unit *units, uint64_t *out)
{
	uint64_t ip = 0, frac = 0, fdiv = 1, mult = 0, v, f;
	const char *p = s;
	const struct unit *u;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (ip > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		ip = ip * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		for (; isdigit((unsigned char)*p); p++) {
			if (fdiv < 1000000000000ULL) { /* finer digits do not matter */
				frac = frac * 10 + (uint64_t)(*p - '0');
				fdiv *= 10;
			}
		}
	}
	if (*p == ' ')
		p++;
	for (u = units; u->name; u++) {
		if (!strcasecmp(p, u->name)) {
			mult = u->mult;
			break;
		}
	}
	if (!mult)
		return -EINVAL;
	if (ip > UINT64_MAX / mult)
		return -ERANGE;
	v = ip * mult;
	/* frac/fdiv * mult without overflow: mult and fdiv are both < 2^47. */
	f = (uint64_t)(((unsigned __int128)frac * mult) / fdiv);
	if (v > UINT64_MAX - f)
		return -ERANGE;
	*out = v + f;
	return 0;
}

int ig_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t v;
	size_t len;
	int rc;

	if (!s || !*s)
		return -EINVAL;
	len = strlen(s);
	if (isdigit((unsigned char)s[len - 1])) {
		/* A bare number is seconds. */
		char buf[64];

		if (len + 2 > sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, len);
		memcpy(buf + len, "s", 2);
		rc = parse_scaled(buf, duration_units, &v);
	} else {
		rc = parse_scaled(s, duration_units, &v);
	}
	if (rc < 0)
		return rc;
	*ns = v;
	return 0;
}

int ig_parse_size(const char *s, uint64_t *bytes)
{
	if (!s || !*s)
		return -EINVAL;
	return parse_scaled(s, size_units, bytes);
}

/* Human forms for bounds in messages and docs: the largest exact unit. */
static const char *fmt_duration(uint64_t ns, char *buf, size_t len)
{
	static const struct unit show[] = {
		{ "h", 3600000000000ULL }, { "m", 60000000000ULL }, { "s", 1000000000ULL },
		{ "ms", 1000000ULL },	   { "us", 1000ULL },	    { "ns", 1ULL },
	};
	size_t i;

	if (ns == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	for (i = 0; i < sizeof(show) / sizeof(show[0]); i++) {
		if (ns % show[i].mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ns / show[i].mult, show[i].name);
			break;
		}
	}
	return buf;
}

static const char *fmt_size(uint64_t b, char *buf, size_t len)
{
	static const struct unit show[] = {
		{ "TiB", 1ULL << 40 },
		{ "GiB", 1ULL << 30 },
		{ "MiB", 1ULL << 20 },
		{ "KiB", 1ULL << 10 },
	};
	size_t i;

	for (i = 0; b && i < sizeof(show) / sizeof(show[0]); i++) {
		if (b % show[i].mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", b / show[i].mult, show[i].name);
			return buf;
		}
	}
	snprintf(buf, len, "%" PRIu64, b);
	return buf;
}

static const char *fmt_value(const struct ig_opt *o, int64_t v, char *buf, size_t len)
{
	if (o->type == IG_OPT_DURATION)
		return fmt_duration((uint64_t)v, buf, len);
	if (o->type == IG_OPT_SIZE)
		return fmt_size((uint64_t)v, buf, len);
	if (o->type == IG_OPT_INT)
		snprintf(buf, len, "%" PRId64, v);
	else
		snprintf(buf, len, "%" PRIu64, (uint64_t)v);
	return buf;
}

const char *ig_ynode_pos(const struct ig_ynode *n, char *buf, size_t len)
{
	if (!n)
		snprintf(buf, len, "<unknown>");
	else
		snprintf(buf, len, "%s:%u:%u", n->file ? n->file : "<unknown>", n->line, n->col);
	return buf;
}

void ig_strlist_free(struct ig_strlist *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent
 * transpositions), case-insensitive. Words longer than 64 bytes get a large
 * distance: no one mistypes a key that long. */
#define DM_MAX 64
static unsigned dl_distance(const char *a, const char *b)
{
	unsigned d[DM_MAX + 1][DM_MAX + 1];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > DM_MAX || lb > DM_MAX)
		return 1000;
	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = tolower((unsigned char)a[i - 1]) !=
					tolower((unsigned char)b[j - 1]);
			unsigned v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *ig_did_you_mean(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	unsigned best_d = ~0u, limit;
	size_t i, wl;

	if (!word || !candidates)
		return NULL;
	wl = strlen(word);
	if (!wl)
		return NULL;
	limit = wl <= 3 ? 1 : 2;
	for (i = 0; i < n && candidates[i]; i++) {
		unsigned d = dl_distance(word, candidates[i]);

		if (d > limit) {
			/* "monitor" for "monitor_dirs": a prefix is a good guess too,
			 * ranked after every close spelling. */
			if (wl >= 3 && !strncasecmp(candidates[i], word, wl))
				d = limit + 1;
			else
				continue;
		}
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}

/* Names of a table (plus ignored keys) as a candidates array. */
static size_t table_names(const struct ig_opt *table, const char *const *ignore, const char **names,
			  size_t max)
{
	size_t n = 0;

	for (; table && table->name && n < max; table++)
		names[n++] = table->name;
	for (; ignore && *ignore && n < max; ignore++)
		names[n++] = *ignore;
	return n;
}

static void report_unknown_key(const struct ig_opt *table, const char *const *ignore,
			       const struct ig_ynode *key, const char *where, struct ig_err *err)
{
	const char *names[128];
	size_t n = table_names(table, ignore, names, 128), i, used = 0;
	const char *guess = ig_did_you_mean(key->scalar, names, n);
	char pos[300], list[512] = "";

	ig_ynode_pos(key, pos, sizeof(pos));
	if (guess) {
		ig_err_add(err, "%s: %s.%.100s: unknown key (did you mean '%s'?)", pos, where,
			   key->scalar, guess);
		return;
	}
	for (i = 0; i < n && used < sizeof(list); i++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (n)
		ig_err_add(err, "%s: %s.%.100s: unknown key (valid keys: %s)", pos, where,
			   key->scalar, list);
	else
		ig_err_add(err, "%s: %s.%.100s: unknown key (this section takes no options)", pos,
			   where, key->scalar);
}

static int in_list(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

static const char *type_expect(const struct ig_opt *o)
{
	switch (o->type) {
	case IG_OPT_STR:
		return "a string";
	case IG_OPT_BOOL:
		return "a boolean (true/false, yes/no, on/off)";
	case IG_OPT_INT:
		return "an integer";
	case IG_OPT_UINT:
		return "a non-negative integer";
	case IG_OPT_DURATION:
		return "a duration like 250ms, 10s, 5m";
	case IG_OPT_SIZE:
		return "a size like 512, 64KiB, 4MiB, 1GiB";
	case IG_OPT_ENUM:
		return "one of the listed values";
	case IG_OPT_STRLIST:
		return "a list of strings like [a, b]";
	case IG_OPT_NODE:
		return o->doc_type ? o->doc_type : "a YAML value";
	}
	return "a value";
}

/* One option being set: where messages go. */
struct ctx {
	const struct ig_opt *o;
	const char *where;
	const char *pos; /* "file:line:col" of the value, or "<default>" */
	struct ig_err *err;
	int is_default;
};

static void bad(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(const struct ctx *c, const char *fmt, ...)
{
	char msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->is_default)
		ig_err_add(c->err, "internal error: the default of %s.%s is invalid: %s", c->where,
			   c->o->name, msg);
	else
		ig_err_add(c->err, "%s: %s.%s: %s", c->pos, c->where, c->o->name, msg);
}

static void bad_type(const struct ctx *c, const struct ig_ynode *n)
{
	if (c->o->type == IG_OPT_ENUM && c->o->choices) {
		char list[400] = "";
		size_t k, used = 0;

		for (k = 0; c->o->choices[k] && used < sizeof(list); k++) {
			int w = snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "",
					 c->o->choices[k]);
			if (w < 0)
				break;
			used += (size_t)w;
		}
		bad(c, "expected one of %s; got %s", list, ig_ynode_type_name(n->type));
	} else if (n->type == IG_Y_SCALAR)
		bad(c, "expected %s; got '%.200s'", type_expect(c->o), n->scalar);
	else
		bad(c, "expected %s; got %s", type_expect(c->o), ig_ynode_type_name(n->type));
}

static int check_bounds(const struct ctx *c, const struct ig_ynode *n, uint64_t uv, int64_t sv)
{
	const struct ig_opt *o = c->o;
	char lo[48], hi[48], got[48];
	int out;

	if (o->min >= o->max)
		return 0;
	if (o->type == IG_OPT_INT)
		out = sv < o->min || sv > o->max;
	else
		out = (o->min > 0 && uv < (uint64_t)o->min) ||
		      (o->max >= 0 && uv > (uint64_t)o->max);
	if (!out)
		return 0;
	fmt_value(o, o->min, lo, sizeof(lo));
	fmt_value(o, o->max, hi, sizeof(hi));
	if (o->type == IG_OPT_INT)
		fmt_value(o, sv, got, sizeof(got));
	else
		snprintf(got, sizeof(got), "%.40s", n->scalar);
	bad(c, "must be between %s and %s; got %s", lo, hi, got);
	return -1;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", NULL };
	static const char *const no[] = { "false", "no", "off", NULL };
	int i;

	for (i = 0; yes[i]; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int set_strlist(const struct ctx *c, const struct ig_ynode *n, struct ig_strlist *l)
{
	size_t i;
	int rc = 0;

	if (n->type != IG_Y_SEQ) {
		bad_type(c, n);
		return -1;
	}
	/* For lists, .max (when min < max) bounds the number of entries. */
	if (c->o->min < c->o->max && (int64_t)n->n > c->o->max) {
		bad(c, "at most %lld entries; got %zu", (long long)c->o->max, n->n);
		return -1;
	}
	if (n->n) {
		l->v = calloc(n->n, sizeof(*l->v));
		if (!l->v) {
			bad(c, "out of memory");
			return -1;
		}
	}
	for (i = 0; i < n->n; i++) {
		const struct ig_ynode *it = n->items[i];

		if (it->type != IG_Y_SCALAR) {
			char pos[300];
			struct ctx ic = *c;

			ic.pos = ig_ynode_pos(it, pos, sizeof(pos));
			bad(&ic, "item %zu: expected a string; got %s", i + 1,
			    ig_ynode_type_name(it->type));
			rc = -1;
			continue;
		}
		l->v[l->n] = strdup(it->scalar);
		if (!l->v[l->n]) {
			bad(c, "out of memory");
			return -1;
		}
		l->n++;
	}
	return rc;
}

static int set_enum(const struct ctx *c, const struct ig_ynode *n, int *out)
{
	const struct ig_opt *o = c->o;
	bool b;
	char list[400] = "";
	size_t k, used = 0;
	const char *guess;

	for (k = 0; o->choices && o->choices[k]; k++) {
		if (!strcasecmp(n->scalar, o->choices[k])) {
			*out = (int)k;
			return 0;
		}
	}
	/* An enum offering on/off also takes YAML booleans: tools that re-render
	 * YAML 1.1 (Helm) turn a bare `on` into `true`. */
	if (parse_bool(n->scalar, &b) == 0) {
		for (k = 0; o->choices && o->choices[k]; k++) {
			if (!strcmp(o->choices[k], b ? "on" : "off")) {
				*out = (int)k;
				return 0;
			}
		}
	}
	for (k = 0; o->choices && o->choices[k] && used < sizeof(list); k++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s", k ? ", " : "",
				 o->choices[k]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	guess = ig_did_you_mean(n->scalar, (const char *const *)o->choices, k);
	if (guess)
		bad(c, "expected one of %s; got '%.200s' (did you mean '%s'?)", list, n->scalar,
		    guess);
	else
		bad(c, "expected one of %s; got '%.200s'", list, n->scalar);
	return -1;
}

/* Converts node n for option c->o into the field at p. */
static int set_value(const struct ctx *c, const struct ig_ynode *n, void *p)
{
	const struct ig_opt *o = c->o;
	uint64_t uv = 0;
	int64_t sv = 0;
	char *end;
	int rc;

	if (o->type == IG_OPT_NODE) {
		*(const struct ig_ynode **)p = n;
		return 0;
	}
	if (o->type == IG_OPT_STRLIST)
		return set_strlist(c, n, p);
	if (n->type != IG_Y_SCALAR) {
		bad_type(c, n);
		return -1;
	}
	switch (o->type) {
	case IG_OPT_STR:
		/* For strings, .max (when min < max) is a length limit in bytes:
		 * the wire's or the kernel's, checked here so that no value the
		 * agent accepts is rejected later by the aggregator. */
		if (o->min < o->max && (int64_t)strlen(n->scalar) > o->max) {
			bad(c, "%zu bytes long; at most %lld", strlen(n->scalar),
			    (long long)o->max);
			return -1;
		}
		*(char **)p = strdup(n->scalar);
		if (!*(char **)p) {
			bad(c, "out of memory");
			return -1;
		}
		return 0;
	case IG_OPT_BOOL:
		if (parse_bool(n->scalar, p) < 0) {
			bad_type(c, n);
			return -1;
		}
		return 0;
	case IG_OPT_ENUM:
		return set_enum(c, n, p);
	case IG_OPT_INT:
		errno = 0;
		sv = strtoll(n->scalar, &end, 10);
		if (!*n->scalar || *end || isspace((unsigned char)*n->scalar)) {
			bad_type(c, n);
			return -1;
		}
		if (errno == ERANGE) {
			bad(c, "'%.40s' is out of range for a 64-bit integer", n->scalar);
			return -1;
		}
		if (check_bounds(c, n, 0, sv) < 0)
			return -1;
		*(int64_t *)p = sv;
		return 0;
	case IG_OPT_UINT:
		if (!isdigit((unsigned char)n->scalar[0])) {
			bad_type(c, n);
			return -1;
		}
		errno = 0;
		uv = strtoull(n->scalar, &end, 10);
		if (*end) {
			bad_type(c, n);
			return -1;
		}
		if (errno == ERANGE) {
			bad(c, "'%.40s' is out of range for a 64-bit integer", n->scalar);
			return -1;
		}
		break;
	case IG_OPT_DURATION:
	case IG_OPT_SIZE:
		rc = o->type == IG_OPT_DURATION ? ig_parse_duration(n->scalar, &uv) :
						  ig_parse_size(n->scalar, &uv);
		if (rc == -ERANGE) {
			bad(c, "'%.40s' is too large", n->scalar);
			return -1;
		}
		if (rc < 0) {
			bad_type(c, n);
			return -1;
		}
		break;
	default:
		bad(c, "internal error: unknown option type %d", (int)o->type);
		return -1;
	}
	if (check_bounds(c, n, uv, 0) < 0)
		return -1;
	*(uint64_t *)p = uv;
	return 0;
}

/* Parses a default ("8MiB", "[/]", "") with the YAML loader, as "v: <def>". */
static int set_default(const struct ctx *c, void *p)
{
	const struct ig_opt *o = c->o;
	struct ig_ydoc *d = NULL;
	struct ig_err perr;
	const struct ig_ynode *v;
	char *text;
	size_t len = strlen(o->def) + 4;
	int rc;

	if (o->type == IG_OPT_NODE)
		return 0; /* documentation only: the component handles absence */
	if (o->type == IG_OPT_STR) {
		/* Strings verbatim: "" and "auto" need no YAML round trip. */
		*(char **)p = strdup(o->def);
		if (!*(char **)p) {
			bad(c, "out of memory");
			return -1;
		}
		return 0;
	}
	text = malloc(len);
	if (!text) {
		bad(c, "out of memory");
		return -1;
	}
	snprintf(text, len, "v: %s", o->def);
	ig_err_init(&perr);
	rc = ig_ydoc_load_string("<default>", text, len - 1, &d, &perr);
	free(text);
	if (rc < 0) {
		bad(c, "%s", ig_err_str(&perr));
		return -1;
	}
	v = ig_ymap_get(d->root, "v");
	rc = v->type == IG_Y_SCALAR && v->plain_null ? 0 : set_value(c, v, p);
	ig_ydoc_free(d);
	return rc;
}

static size_t table_len(const struct ig_opt *table)
{
	size_t n = 0;

	while (table && table[n].name)
		n++;
	return n;
}

static void zero_field(const struct ig_opt *o, void *dst)
{
	char *p = (char *)dst + o->offset;

	switch (o->type) {
	case IG_OPT_STR:
		*(char **)p = NULL;
		break;
	case IG_OPT_BOOL:
		*(bool *)p = false;
		break;
	case IG_OPT_INT:
		*(int64_t *)p = 0;
		break;
	case IG_OPT_UINT:
	case IG_OPT_DURATION:
	case IG_OPT_SIZE:
		*(uint64_t *)p = 0;
		break;
	case IG_OPT_ENUM:
		*(int *)p = 0;
		break;
	case IG_OPT_STRLIST:
		((struct ig_strlist *)p)->n = 0;
		((struct ig_strlist *)p)->v = NULL;
		break;
	case IG_OPT_NODE:
		*(const struct ig_ynode **)p = NULL;
		break;
	}
}

int ig_cfg_apply(const struct ig_opt *table, const struct ig_ynode *map, void *dst,
		 const char *where, const char *const *ignore, struct ig_err *err)
{
	int failed = 0, nerr = err ? err->n : 0;
	size_t i, n = table_len(table);
	char pos[300];

	for (i = 0; i < n; i++)
		zero_field(&table[i], dst);
	if (map && map->type == IG_Y_SCALAR && map->plain_null)
		map = NULL; /* "agent:" with nothing after it: all defaults */
	if (map && map->type != IG_Y_MAP) {
		ig_err_add(err, "%s: %s: expected a mapping of options (key: value); got %s",
			   ig_ynode_pos(map, pos, sizeof(pos)), where,
			   map->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(map->type));
		map = NULL;
		failed = 1;
	}
	for (i = 0; map && i < map->n; i++) {
		const char *k = map->pairs[i].key->scalar;
		size_t j;

		for (j = 0; j < n && strcmp(table[j].name, k); j++)
			;
		if (j == n && !in_list(k, ignore)) {
			report_unknown_key(table, ignore, map->pairs[i].key, where, err);
			failed = 1;
		}
	}
	for (i = 0; i < n; i++) {
		const struct ig_opt *o = &table[i];
		const struct ig_ynode *v = ig_ymap_get(map, o->name);
		struct ctx c = { .o = o, .where = where, .err = err };
		void *p = (char *)dst + o->offset;

		if (v && v->type == IG_Y_SCALAR && v->plain_null)
			v = NULL; /* "key:" / "key: ~" = not set */
		if (v) {
			c.pos = ig_ynode_pos(v, pos, sizeof(pos));
			if (set_value(&c, v, p) < 0)
				failed = 1;
		} else if (o->flags & IG_OPTF_REQUIRED) {
			if (map)
				ig_err_add(err,
					   "%s: %s.%s: required option missing; add '%s: <%s>'",
					   ig_ynode_pos(map, pos, sizeof(pos)), where, o->name,
					   o->name, type_expect(o));
			else
				ig_err_add(err, "%s.%s: required option missing; add '%s: <%s>'",
					   where, o->name, o->name, type_expect(o));
			failed = 1;
		} else if (o->def) {
			c.is_default = 1;
			if (set_default(&c, p) < 0)
				failed = 1;
		}
	}
	if (failed || (err && err->n > nerr))
		return -EINVAL;
	return 0;
}

void ig_cfg_free(const struct ig_opt *table, void *dst)
{
	if (!dst)
		return;
	for (; table && table->name; table++) {
		char *p = (char *)dst + table->offset;

		if (table->type == IG_OPT_STR) {
			free(*(char **)p);
			*(char **)p = NULL;
		} else if (table->type == IG_OPT_STRLIST) {
			ig_strlist_free((struct ig_strlist *)p);
		} else if (table->type == IG_OPT_NODE) {
			*(const struct ig_ynode **)p = NULL;
		}
	}
}

static bool strlist_eq(const struct ig_strlist *a, const struct ig_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* The value at p as text, for a log line. */
static const char *value_text(const struct ig_opt *o, const void *p, char *buf, size_t len)
{
	switch (o->type) {
	case IG_OPT_STR:
		return *(char *const *)p ? *(char *const *)p : "";
	case IG_OPT_BOOL:
		return *(const bool *)p ? "true" : "false";
	case IG_OPT_INT:
		return fmt_value(o, *(const int64_t *)p, buf, len);
	case IG_OPT_UINT:
	case IG_OPT_DURATION:
	case IG_OPT_SIZE:
		return fmt_value(o, (int64_t) * (const uint64_t *)p, buf, len);
	case IG_OPT_ENUM: {
		int k = *(const int *)p;
		return o->choices && k >= 0 ? o->choices[k] : "?";
	}
	case IG_OPT_STRLIST: {
		const struct ig_strlist *l = p;
		size_t used = 0;
		buf[0] = 0;
		for (size_t i = 0; i < l->n && used + 1 < len; i++)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
						 l->v[i]);
		return buf;
	}
	default:
		return "";
	}
}

/* Bytes of a fixed-size option value (0 for strings, lists and nodes). */
static size_t scalar_size(enum ig_opt_type t)
{
	switch (t) {
	case IG_OPT_BOOL:
		return sizeof(bool);
	case IG_OPT_INT:
		return sizeof(int64_t);
	case IG_OPT_UINT:
	case IG_OPT_DURATION:
	case IG_OPT_SIZE:
		return sizeof(uint64_t);
	case IG_OPT_ENUM:
		return sizeof(int);
	default:
		return 0;
	}
}

/* Whether the values at a and b are equal. */
static bool value_eq(const struct ig_opt *o, const void *a, const void *b)
{
	if (o->type == IG_OPT_STR) {
		const char *x = *(char *const *)a, *y = *(char *const *)b;
		return (!x && !y) || (x && y && !strcmp(x, y));
	}
	if (o->type == IG_OPT_STRLIST)
		return strlist_eq(a, b);
	size_t n = scalar_size(o->type);
	return !n || !memcmp(a, b, n);
}

/* Replaces the value at dst with a copy of the one at src. 0 or -ENOMEM. */
static int value_copy(const struct ig_opt *o, void *dst, const void *src)
{
	if (o->type == IG_OPT_STR) {
		const char *b = *(char *const *)src;
		char *c = b ? strdup(b) : NULL;
		if (b && !c)
			return -ENOMEM;
		free(*(char **)dst);
		*(char **)dst = c;
	} else if (o->type == IG_OPT_STRLIST) {
		const struct ig_strlist *b = src;
		struct ig_strlist c = { 0, NULL };
		if (b->n && !(c.v = calloc(b->n, sizeof(char *))))
			return -ENOMEM;
		for (; c.n < b->n; c.n++)
			if (!(c.v[c.n] = strdup(b->v[c.n]))) {
				ig_strlist_free(&c);
				return -ENOMEM;
			}
		ig_strlist_free(dst);
		*(struct ig_strlist *)dst = c;
	} else {
		memcpy(dst, src, scalar_size(o->type));
	}
	return 0;
}

int ig_cfg_keep_restart(const struct ig_opt *table, void *newc, const void *oldc, const char *where,
			char *pending, size_t pending_len)
{
	int kept = 0;

	for (; table && table->name; table++) {
		const struct ig_opt *o = table;
		char *np = (char *)newc + o->offset;
		const char *op = (const char *)oldc + o->offset;
		char nb[256], ob[256];

		if (!(o->flags & IG_OPTF_RESTART) || value_eq(o, np, op))
			continue;
		ig_warn("reload: this setting takes effect at restart only; the running value stays",
			"setting=%s.%s file=\"%s\" running=\"%s\"", where, o->name,
			value_text(o, np, nb, sizeof(nb)), value_text(o, op, ob, sizeof(ob)));
		if (value_copy(o, np, op) < 0)
			return -ENOMEM;
		kept++;
		if (pending && pending_len) {
			size_t l = strlen(pending);
			snprintf(pending + l, pending_len - l, "%s%s.%s", l ? "," : "", where,
				 o->name);
		}
	}
	return kept;
}

/* Markdown: '|' would end a cell and a newline would end the row. */
static void md_cell(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			fputs("\\|", out);
		else if (*s == '\n')
			fputc(' ', out);
		else
			fputc(*s, out);
	}
}

static void doc_type(FILE *out, const struct ig_opt *o)
{
	static const char *const names[] = {
		[IG_OPT_STR] = "string",	[IG_OPT_BOOL] = "boolean",
		[IG_OPT_INT] = "integer",	[IG_OPT_UINT] = "unsigned integer",
		[IG_OPT_DURATION] = "duration", [IG_OPT_SIZE] = "size",
		[IG_OPT_ENUM] = "enum",		[IG_OPT_STRLIST] = "list of strings",
		[IG_OPT_NODE] = "YAML",
	};
	size_t k;

	if (o->type == IG_OPT_NODE && o->doc_type) {
		md_cell(out, o->doc_type);
		return;
	}
	if (o->type == IG_OPT_ENUM && o->choices) {
		for (k = 0; o->choices[k]; k++) {
			fputs(k ? " \\| " : "", out);
			fprintf(out, "`%s`", o->choices[k]);
		}
		return;
	}
	if ((size_t)o->type < sizeof(names) / sizeof(names[0]) && names[o->type])
		fputs(names[o->type], out);
}

void ig_cfg_doc(FILE *out, const char *title, const char *intro, const struct ig_opt *table)
{
	char lo[48], hi[48];

	if (title)
		fprintf(out, "### %s\n\n", title);
	if (intro && *intro)
		fprintf(out, "%s\n\n", intro);
	if (!table || !table->name) {
		fputs("No options.\n\n", out);
		return;
	}
	fputs("| Option | Type | Default | Description |\n", out);
	fputs("|---|---|---|---|\n", out);
	for (; table->name; table++) {
		const struct ig_opt *o = table;

		fprintf(out, "| `%s` | ", o->name);
		doc_type(out, o);
		fputs(" | ", out);
		if (o->flags & IG_OPTF_REQUIRED)
			fputs("*required*", out);
		else if (o->def && *o->def) {
			fputc('`', out);
			md_cell(out, o->def);
			fputc('`', out);
		} else if (o->def)
			fputs("`\"\"`", out);
		else
			fputs("(none)", out);
		fputs(" | ", out);
		md_cell(out, o->desc);
		if (o->min < o->max && (o->type == IG_OPT_INT || o->type == IG_OPT_UINT ||
					o->type == IG_OPT_DURATION || o->type == IG_OPT_SIZE))
			fprintf(out, " Range: %s to %s.", fmt_value(o, o->min, lo, sizeof(lo)),
				fmt_value(o, o->max, hi, sizeof(hi)));
		if (o->min < o->max && o->type == IG_OPT_STR)
			fprintf(out, " At most %lld bytes.", (long long)o->max);
		if (o->min < o->max && o->type == IG_OPT_STRLIST)
			fprintf(out, " At most %lld entries.", (long long)o->max);
		if (o->flags & IG_OPTF_RESTART)
			fputs(" *Restart to change* (a reload keeps the running value and warns).",
			      out);
		fputs(" |\n", out);
	}
	fputc('\n', out);
}
