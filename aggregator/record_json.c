/* record_json: see record_json.h. Built with json-c objects; every string
 * goes through ig_utf8_sanitize first because json-c copies non-ASCII bytes
 * through unchecked. */
#include "record_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ig_time.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

char *ig_utf8_sanitize(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(len * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_seq(u + i, len - i);
		if (l) {
			memcpy(o, u + i, l);
			o += l;
			i += l;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

static json_object *jstr(const char *s)
{
	char *c = ig_utf8_sanitize(s, strlen(s));
	json_object *o = c ? json_object_new_string(c) : NULL;

	free(c);
	return o;
}

/* A numeric tag as a JSON number when its text is one. */
static json_object *jnum(const char *s)
{
	char *end;

	if (!*s)
		return NULL;
	errno = 0;
	if (*s == '-') {
		long long v = strtoll(s, &end, 10);
		if (!*end && !errno)
			return json_object_new_int64(v);
	} else {
		unsigned long long v = strtoull(s, &end, 10);
		if (!*end && !errno && (s[0] >= '0' && s[0] <= '9'))
			return json_object_new_uint64(v);
	}
	errno = 0;
	double d = strtod(s, &end);
	if (!*end && !errno && d == d && d - d == 0) /* finite */
		return json_object_new_double(d);
	return NULL;
}

static const char *kind_name(enum ig_metric_kind k)
{
	switch (k) {
	case IG_M_COUNTER:
		return "counter";
	case IG_M_GAUGE:
		return "gauge";
	case IG_M_HISTOGRAM:
		return "histogram";
	case IG_M_SET:
		return "set";
	}
	return "counter";
}

struct json_object *ig_metric_to_jobj(const struct ig_metric *m)
{
	json_object *o = json_object_new_object(), *tags = json_object_new_object();
	char ts[40];

	if (!o || !tags)
		goto out;
	ig_fmt_rfc3339(m->ts_ns, ts, sizeof(ts));
	if (json_object_object_add(o, "ts", json_object_new_string(ts)) ||
	    json_object_object_add(o, "name", jstr(m->name ? m->name : "")) ||
	    json_object_object_add(o, "kind", json_object_new_string(kind_name(m->kind))))
		goto out;
	/* Whole values print as integers ("value":1), others as doubles. */
	json_object *v;
	if (m->value == (double)(int64_t)m->value && m->value < 9.2e18 && m->value > -9.2e18)
		v = json_object_new_int64((int64_t)m->value);
	else
		v = json_object_new_double(m->value == m->value ? m->value : 0);
	if (json_object_object_add(o, "value", v))
		goto out;
	if (m->kind == IG_M_SET && m->set_member &&
	    json_object_object_add(o, "member", jstr(m->set_member)))
		goto out;
	if (m->rec && m->rec->probe && json_object_object_add(o, "probe", jstr(m->rec->probe)))
		goto out;
	for (uint32_t i = 0; i < m->ntags && i < IG_MAX_TAGS; i++) {
		const struct ig_tag *t = &m->tags[i];
		if (!t->key || !t->val)
			continue;
		json_object *tv = t->type == IG_TAG_NUM ? jnum(t->val) : NULL;
		if (!tv)
			tv = jstr(t->val);
		char *k = ig_utf8_sanitize(t->key, strlen(t->key));
		if (!tv || !k) {
			json_object_put(tv);
			free(k);
			goto out;
		}
		json_object_object_add(tags, k, tv);
		free(k);
	}
	if (json_object_object_add(o, "tags", tags)) {
		json_object_put(o);
		return NULL;
	}
	return o;
out:
	json_object_put(tags);
	json_object_put(o);
	return NULL;
}

int ig_metric_to_json(const struct ig_metric *m, char **out, size_t *len)
{
	json_object *o = ig_metric_to_jobj(m);
	const char *s;
	size_t l;

	*out = NULL;
	if (!o)
		return -ENOMEM;
	s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &l);
	if (s && (*out = malloc(l + 1))) {
		memcpy(*out, s, l + 1);
		*len = l;
	}
	json_object_put(o);
	return *out ? 0 : -ENOMEM;
}
