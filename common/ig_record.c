/* ig_record: see ig_record.h.
 *
 * A record lives in one fixed block (no allocation per event): the header,
 * IG_MAX_FIELDS field slots, and a bump arena for the strings it owns. Every
 * adder checks room first and leaves the record unchanged when something does
 * not fit, so a caller can drop one field and keep the event.
 */
#include "ig_record.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

void ig_record_reset(struct ig_record *r)
{
	/* The arena is not cleared: arena_used = 0 is enough. */
	memset(r, 0, offsetof(struct ig_record, arena));
}

const char *ig_record_strndup(struct ig_record *r, const char *s, size_t len)
{
	char *d;

	if (!s && len)
		return NULL;
	if (len >= sizeof(r->arena) - r->arena_used)
		return NULL;
	d = r->arena + r->arena_used;
	if (len)
		memcpy(d, s, len);
	d[len] = '\0';
	r->arena_used += len + 1;
	return d;
}

const char *ig_record_strdup(struct ig_record *r, const char *s)
{
	return s ? ig_record_strndup(r, s, strlen(s)) : NULL;
}

static struct ig_field *next_field(struct ig_record *r, const char *key)
{
	if (!key || r->nfields >= IG_MAX_FIELDS)
		return NULL;
	return &r->fields[r->nfields];
}

int ig_record_add_str(struct ig_record *r, const char *key, const char *val, size_t len)
{
	struct ig_field *f = next_field(r, key);
	const char *s;

	if (!f)
		return key ? -ENOSPC : -EINVAL;
	s = ig_record_strndup(r, val ? val : "", val ? len : 0);
	if (!s)
		return -ENOSPC;
	f->key = key;
	f->type = IG_F_STR;
	f->s = s;
	r->nfields++;
	return 0;
}

int ig_record_add_int(struct ig_record *r, const char *key, int64_t v)
{
	struct ig_field *f = next_field(r, key);

	if (!f)
		return key ? -ENOSPC : -EINVAL;
	f->key = key;
	f->type = IG_F_INT;
	f->i = v;
	r->nfields++;
	return 0;
}

int ig_record_add_uint(struct ig_record *r, const char *key, uint64_t v)
{
	struct ig_field *f = next_field(r, key);

	if (!f)
		return key ? -ENOSPC : -EINVAL;
	f->key = key;
	f->type = IG_F_UINT;
	f->u = v;
	r->nfields++;
	return 0;
}

const struct ig_field *ig_record_field(const struct ig_record *r, const char *key)
{
	if (!key)
		return NULL;
	for (uint32_t i = 0; i < r->nfields; i++)
		if (r->fields[i].key && !strcmp(r->fields[i].key, key))
			return &r->fields[i];
	return NULL;
}

int ig_record_add_label(struct ig_record *r, const char *key, const char *val)
{
	size_t mark = r->arena_used;
	const char *k, *v;

	if (!key)
		return -EINVAL;
	if (r->id.nlabels >= IG_MAX_LABELS)
		return -ENOSPC;
	k = ig_record_strdup(r, key);
	v = k ? ig_record_strdup(r, val ? val : "") : NULL;
	if (!v) {
		r->arena_used = mark;
		return -ENOSPC;
	}
	r->id.labels[r->id.nlabels].key = k;
	r->id.labels[r->id.nlabels].val = v;
	r->id.nlabels++;
	return 0;
}
