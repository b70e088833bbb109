/* ig_metric: see ig_metric.h.
 *
 * A metric is built once per record on the aggregator's hot path, so it is a
 * fixed block like the record: tag slots plus a bump arena. Tags that come
 * from record strings point into the record (which outlives the metric while
 * a pipeline runs); only what is made here (numbers rendered as text,
 * "label_<key>" names) takes arena space. ig_metric_copy re-homes every
 * string for stages that keep a metric after its record is gone.
 */
#include "ig_metric.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *ig_metric_kind_name(enum ig_metric_kind k)
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
	return "unknown";
}

void ig_metric_reset(struct ig_metric *m)
{
	memset(m, 0, offsetof(struct ig_metric, arena));
	m->kind = IG_M_COUNTER;
}

const char *ig_metric_strndup(struct ig_metric *m, const char *s, size_t len)
{
	char *d;

	if (!s && len)
		return NULL;
	if (len >= sizeof(m->arena) - m->arena_used)
		return NULL;
	d = m->arena + m->arena_used;
	if (len)
		memcpy(d, s, len);
	d[len] = '\0';
	m->arena_used += len + 1;
	return d;
}

const char *ig_metric_strdup(struct ig_metric *m, const char *s)
{
	return s ? ig_metric_strndup(m, s, strlen(s)) : NULL;
}

int ig_metric_add_tag(struct ig_metric *m, const char *key, const char *val, enum ig_tag_type type)
{
	if (!key || !val)
		return -EINVAL;
	if (m->ntags >= IG_MAX_TAGS)
		return -ENOSPC;
	m->tags[m->ntags].key = key;
	m->tags[m->ntags].val = val;
	m->tags[m->ntags].type = type;
	m->ntags++;
	return 0;
}

const char *ig_metric_tag(const struct ig_metric *m, const char *key)
{
	if (!key)
		return NULL;
	for (uint32_t i = 0; i < m->ntags; i++)
		if (!strcmp(m->tags[i].key, key))
			return m->tags[i].val;
	return NULL;
}

void ig_metric_del_tag(struct ig_metric *m, uint32_t i)
{
	if (i >= m->ntags)
		return;
	memmove(&m->tags[i], &m->tags[i + 1], (m->ntags - i - 1) * sizeof(m->tags[0]));
	m->ntags--;
}

/* An identity tag: absent (NULL) members make none. */
static int tag_str(struct ig_metric *m, const char *key, const char *val)
{
	return val ? ig_metric_add_tag(m, key, val, IG_TAG_STR) : 0;
}

/* A number rendered as text in the arena, typed IG_TAG_NUM. */
static int tag_text(struct ig_metric *m, const char *key, const char *buf, int n)
{
	const char *v;

	if (m->ntags >= IG_MAX_TAGS)
		return -ENOSPC;
	v = ig_metric_strndup(m, buf, (size_t)n);
	if (!v)
		return -ENOSPC;
	return ig_metric_add_tag(m, key, v, IG_TAG_NUM);
}

/* Decimal digits of u, written backwards ending at end; returns the start.
 * What snprintf("%" PRIu64) prints, without its format parsing and stdio
 * machinery (that was a quarter of a record's pipeline cost). */
static char *udec(char *end, uint64_t u)
{
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";
	char *p = end;

	while (u >= 100) {
		unsigned d = (unsigned)(u % 100) * 2;

		u /= 100;
		*--p = pairs[d + 1];
		*--p = pairs[d];
	}
	if (u >= 10) {
		*--p = pairs[u * 2 + 1];
		*--p = pairs[u * 2];
	} else {
		*--p = (char)('0' + u);
	}
	return p;
}

static int tag_uint(struct ig_metric *m, const char *key, uint64_t u)
{
	char buf[24], *p = udec(buf + sizeof(buf), u);

	return tag_text(m, key, p, (int)(buf + sizeof(buf) - p));
}

static int tag_int(struct ig_metric *m, const char *key, int64_t i)
{
	char buf[24], *p;

	/* The magnitude as unsigned: -INT64_MIN does not fit an int64_t. */
	p = udec(buf + sizeof(buf), i < 0 ? 0 - (uint64_t)i : (uint64_t)i);
	if (i < 0)
		*--p = '-';
	return tag_text(m, key, p, (int)(buf + sizeof(buf) - p));
}

static int tag_label(struct ig_metric *m, const struct ig_label *l)
{
	size_t klen = strlen(l->key), mark = m->arena_used;
	char *k;

	if (m->ntags >= IG_MAX_TAGS)
		return -ENOSPC;
	if (klen + sizeof("label_") > sizeof(m->arena) - m->arena_used)
		return -ENOSPC;
	k = m->arena + m->arena_used;
	memcpy(k, "label_", 6);
	memcpy(k + 6, l->key, klen + 1);
	m->arena_used += 6 + klen + 1;
	if (ig_metric_add_tag(m, k, l->val ? l->val : "", IG_TAG_STR) < 0) {
		m->arena_used = mark;
		return -ENOSPC;
	}
	return 0;
}

static int tag_identity(struct ig_metric *m, const struct ig_record *r)
{
	const struct ig_identity *id = &r->id;
	int rv = 0;

	rv = rv ?: tag_str(m, "node", r->node);
	rv = rv ?: tag_str(m, "scope", id->scope);
	rv = rv ?: tag_str(m, "namespace", id->namespace_);
	rv = rv ?: tag_str(m, "pod", id->pod_name);
	rv = rv ?: tag_str(m, "container", id->container_name);
	rv = rv ?: tag_str(m, "container_id", id->container_id);
	rv = rv ?: tag_str(m, "runtime", id->runtime);
	rv = rv ?: tag_str(m, "image", id->image);
	rv = rv ?: tag_str(m, "owner_kind", id->owner_kind);
	rv = rv ?: tag_str(m, "owner_name", id->owner_name);
	rv = rv ?: tag_str(m, "pod_uid", id->pod_uid);
	for (uint32_t i = 0; !rv && i < id->nlabels && i < IG_MAX_LABELS; i++)
		if (id->labels[i].key)
			rv = tag_label(m, &id->labels[i]);
	return rv;
}

static int tag_process(struct ig_metric *m, const struct ig_record *r)
{
	int rv = 0;

	rv = rv ?: tag_str(m, "process", r->comm);
	rv = rv ?: tag_uint(m, "pid", r->pid);
	rv = rv ?: tag_uint(m, "tid", r->tid);
	rv = rv ?: tag_uint(m, "ppid", r->ppid);
	rv = rv ?: tag_uint(m, "uid", r->uid);
	rv = rv ?: tag_uint(m, "gid", r->gid);
	rv = rv ?: tag_uint(m, "cgroup_id", r->cgroup_id);
	return rv;
}

static int tag_body(struct ig_metric *m, const struct ig_record *r)
{
	int rv = 0;

	for (uint32_t i = 0; !rv && i < r->nfields && i < IG_MAX_FIELDS; i++) {
		const struct ig_field *f = &r->fields[i];

		if (!f->key)
			continue;
		switch (f->type) {
		case IG_F_STR:
			rv = tag_str(m, f->key, f->s ? f->s : "");
			break;
		case IG_F_INT:
			rv = tag_int(m, f->key, f->i);
			break;
		case IG_F_UINT:
			rv = tag_uint(m, f->key, f->u);
			break;
		}
	}
	return rv;
}

int ig_metric_from_record(struct ig_metric *m, const struct ig_record *r)
{
	int rv;

	ig_metric_reset(m);
	m->name = r->kind;
	m->kind = IG_M_COUNTER;
	m->value = 1;
	m->ts_ns = r->ts_ns;
	m->rec = r;
	rv = tag_identity(m, r);
	rv = rv ?: tag_process(m, r);
	rv = rv ?: tag_body(m, r);
	return rv < 0 ? -ENOSPC : 0;
}

/* The fixed keys, in the order ig_metric_from_record adds them (labels come
 * between pod_uid and process). */
enum {
	FK_NODE,
	FK_SCOPE,
	FK_NS,
	FK_POD,
	FK_CTR,
	FK_CID,
	FK_RT,
	FK_IMG,
	FK_OK,
	FK_ON,
	FK_PUID,
	FK_PROCESS,
	FK_PID,
	FK_TID,
	FK_PPID,
	FK_UID,
	FK_GID,
	FK_CG,
	FK_N
};
static const char *const fixed_keys[FK_N] = {
	"node",	   "scope", "namespace",  "pod",	"container", "container_id",
	"runtime", "image", "owner_kind", "owner_name", "pod_uid",   "process",
	"pid",	   "tid",   "ppid",	  "uid",	"gid",	     "cgroup_id",
};

void ig_metric_sel_init(struct ig_metric_sel *sel, bool (*keep)(const void *ctx, const char *key),
			const void *ctx)
{
	sel->keep = keep;
	sel->ctx = ctx;
	sel->fixed = 0;
	for (int i = 0; i < FK_N; i++)
		if (keep(ctx, fixed_keys[i]))
			sel->fixed |= 1u << i;
}

/* Whether the full build is sure to fit (tags and arena): then building only
 * the kept tags gives the same result as building all and removing. */
static bool full_build_fits(const struct ig_record *r)
{
	const struct ig_identity *id = &r->id;
	const char *const ids[] = { r->node,	    id->scope,		id->namespace_,
				    id->pod_name,   id->container_name, id->container_id,
				    id->runtime,    id->image,		id->owner_kind,
				    id->owner_name, id->pod_uid };
	uint32_t ntags = 0;
	size_t arena = 0;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		ntags += ids[i] != NULL;
	for (uint32_t i = 0; i < id->nlabels && i < IG_MAX_LABELS; i++) {
		if (!id->labels[i].key)
			continue;
		ntags++;
		arena += 7 + strlen(id->labels[i].key);
	}
	ntags += (r->comm != NULL) + 6;
	arena += 6 * 21; /* a 64-bit number and its NUL, at most */
	for (uint32_t i = 0; i < r->nfields && i < IG_MAX_FIELDS; i++) {
		if (!r->fields[i].key)
			continue;
		ntags++;
		if (r->fields[i].type != IG_F_STR)
			arena += 21;
	}
	return ntags <= IG_MAX_TAGS && arena <= IG_METRIC_ARENA;
}

static int sel_str(struct ig_metric *m, const struct ig_metric_sel *sel, int fk, const char *val)
{
	return val && (sel->fixed >> fk & 1) ?
		       ig_metric_add_tag(m, fixed_keys[fk], val, IG_TAG_STR) :
		       0;
}

static int sel_uint(struct ig_metric *m, const struct ig_metric_sel *sel, int fk, uint64_t u)
{
	return sel->fixed >> fk & 1 ? tag_uint(m, fixed_keys[fk], u) : 0;
}

static bool keep_key(const struct ig_metric_sel *sel, const char *key)
{
	return sel->keep(sel->ctx, key);
}

int ig_metric_from_record_sel(struct ig_metric *m, const struct ig_record *r,
			      const struct ig_metric_sel *sel)
{
	const struct ig_identity *id = &r->id;
	int rv = 0;

	if (!full_build_fits(r)) {
		uint32_t kept = 0;

		rv = ig_metric_from_record(m, r);
		for (uint32_t i = 0; i < m->ntags; i++) {
			if (!keep_key(sel, m->tags[i].key))
				continue;
			m->tags[kept++] = m->tags[i];
		}
		m->ntags = kept;
		return rv;
	}
	ig_metric_reset(m);
	m->name = r->kind;
	m->kind = IG_M_COUNTER;
	m->value = 1;
	m->ts_ns = r->ts_ns;
	m->rec = r;
	/* The order of tag_identity, tag_process and tag_body. */
	rv = rv ?: sel_str(m, sel, FK_NODE, r->node);
	rv = rv ?: sel_str(m, sel, FK_SCOPE, id->scope);
	rv = rv ?: sel_str(m, sel, FK_NS, id->namespace_);
	rv = rv ?: sel_str(m, sel, FK_POD, id->pod_name);
	rv = rv ?: sel_str(m, sel, FK_CTR, id->container_name);
	rv = rv ?: sel_str(m, sel, FK_CID, id->container_id);
	rv = rv ?: sel_str(m, sel, FK_RT, id->runtime);
	rv = rv ?: sel_str(m, sel, FK_IMG, id->image);
	rv = rv ?: sel_str(m, sel, FK_OK, id->owner_kind);
	rv = rv ?: sel_str(m, sel, FK_ON, id->owner_name);
	rv = rv ?: sel_str(m, sel, FK_PUID, id->pod_uid);
	for (uint32_t i = 0; !rv && i < id->nlabels && i < IG_MAX_LABELS; i++) {
		size_t mark = m->arena_used;
		uint32_t n = m->ntags;

		if (!id->labels[i].key)
			continue;
		rv = tag_label(m, &id->labels[i]);
		if (!rv && !keep_key(sel, m->tags[n].key)) {
			m->ntags = n; /* not wanted: undone */
			m->arena_used = mark;
		}
	}
	rv = rv ?: sel_str(m, sel, FK_PROCESS, r->comm);
	rv = rv ?: sel_uint(m, sel, FK_PID, r->pid);
	rv = rv ?: sel_uint(m, sel, FK_TID, r->tid);
	rv = rv ?: sel_uint(m, sel, FK_PPID, r->ppid);
	rv = rv ?: sel_uint(m, sel, FK_UID, r->uid);
	rv = rv ?: sel_uint(m, sel, FK_GID, r->gid);
	rv = rv ?: sel_uint(m, sel, FK_CG, r->cgroup_id);
	for (uint32_t i = 0; !rv && i < r->nfields && i < IG_MAX_FIELDS; i++) {
		const struct ig_field *f = &r->fields[i];

		if (!f->key || !keep_key(sel, f->key))
			continue;
		switch (f->type) {
		case IG_F_STR:
			rv = tag_str(m, f->key, f->s ? f->s : "");
			break;
		case IG_F_INT:
			rv = tag_int(m, f->key, f->i);
			break;
		case IG_F_UINT:
			rv = tag_uint(m, f->key, f->u);
			break;
		}
	}
	return rv < 0 ? -ENOSPC : 0;
}

int ig_metric_copy(struct ig_metric *dst, const struct ig_metric *src)
{
	uint32_t n = src->ntags < IG_MAX_TAGS ? src->ntags : IG_MAX_TAGS;

	if (dst == src)
		return 0;
	ig_metric_reset(dst);
	dst->kind = src->kind;
	dst->value = src->value;
	dst->ts_ns = src->ts_ns;
	dst->rec = src->rec;
	if (src->name && !(dst->name = ig_metric_strdup(dst, src->name)))
		return -ENOSPC;
	if (src->set_member && !(dst->set_member = ig_metric_strdup(dst, src->set_member)))
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++) {
		const struct ig_tag *t = &src->tags[i];
		size_t mark = dst->arena_used;
		const char *k = ig_metric_strdup(dst, t->key);
		const char *v = k ? ig_metric_strdup(dst, t->val) : NULL;

		if (!v) {
			dst->arena_used = mark;
			return -ENOSPC;
		}
		dst->tags[dst->ntags].key = k;
		dst->tags[dst->ntags].val = v;
		dst->tags[dst->ntags].type = t->type;
		dst->ntags++;
	}
	return 0;
}
