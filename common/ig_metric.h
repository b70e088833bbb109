/* ig_metric: what a pipeline works on and a backend receives.
 *
 * Each record entering a pipeline becomes one metric: name = the record's kind
 * ("file.open"), kind = counter, value = 1, and tags = the record's identity,
 * process and body fields rendered as strings (see ig_metric_from_record for
 * the exact list and order). Stages then whitelist, rewrite, filter and roll
 * up tags; metric backends (StatsD, Datadog) send name/value/tags, archive
 * backends (console, S3) also keep the timestamp and the record it came from.
 *
 * Strings (tag keys and values) are static, point into the source record, or
 * live in the metric's arena (ig_metric_strdup).
 */
#ifndef IG_METRIC_H
#define IG_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_record.h"

#define IG_MAX_TAGS 48
#define IG_METRIC_ARENA 8192

enum ig_metric_kind { IG_M_COUNTER, IG_M_GAUGE, IG_M_HISTOGRAM, IG_M_SET };

/* A tag's value kept its numeric origin (pid, ret, flags...) so JSON output
 * can print numbers; stages treat every value as a string. */
enum ig_tag_type { IG_TAG_STR = 0, IG_TAG_NUM = 1 };

struct ig_tag {
	const char *key;
	const char *val;
	enum ig_tag_type type;
};

struct ig_metric {
	const char *name;
	enum ig_metric_kind kind;
	double value;
	const char *set_member; /* IG_M_SET: the distinct value counted */
	uint64_t ts_ns;
	uint32_t ntags;
	struct ig_tag tags[IG_MAX_TAGS];
	const struct ig_record *rec; /* source record, NULL for rolled-up metrics */
	size_t arena_used;
	char arena[IG_METRIC_ARENA];
};

const char *ig_metric_kind_name(enum ig_metric_kind k);
void ig_metric_reset(struct ig_metric *m);
const char *ig_metric_strndup(struct ig_metric *m, const char *s, size_t len);
const char *ig_metric_strdup(struct ig_metric *m, const char *s);
/* Appends a tag (key and val must outlive m; use ig_metric_strdup). -ENOSPC when full,
 * -EINVAL when key or val is NULL. */
int ig_metric_add_tag(struct ig_metric *m, const char *key, const char *val, enum ig_tag_type type);
/* NULL when absent. */
const char *ig_metric_tag(const struct ig_metric *m, const char *key);
/* Removes tag i, keeping order. */
void ig_metric_del_tag(struct ig_metric *m, uint32_t i);
/* Builds a counter(1) metric from a record. Tags, in order: node, scope,
 * namespace, pod, container, container_id, runtime, image, owner_kind,
 * owner_name, pod_uid, label_<k> per label, process (comm), pid, tid, ppid,
 * uid, gid, cgroup_id, then every body field by its key. Absent identity
 * members (and a NULL node or comm) produce no tag. Numbers are rendered in
 * m's arena and typed IG_TAG_NUM; string values point into r. -ENOSPC if the
 * tags did not all fit (IG_MAX_TAGS or the arena): the metric then holds the
 * tags before the first that did not. */
int ig_metric_from_record(struct ig_metric *m, const struct ig_record *r);
/* A selection of tags by key, for ig_metric_from_record_sel: keep(ctx, key)
 * says whether a tag with that key is wanted. ig_metric_sel_init asks it
 * once about each fixed key ig_metric_from_record uses (node ... cgroup_id)
 * and keeps the answers as a mask; labels ("label_<k>") and body fields are
 * asked per record. */
struct ig_metric_sel {
	bool (*keep)(const void *ctx, const char *key);
	const void *ctx;
	uint32_t fixed; /* bit per fixed key, in ig_metric_from_record's order */
};
void ig_metric_sel_init(struct ig_metric_sel *sel, bool (*keep)(const void *ctx, const char *key),
			const void *ctx);
/* The same metric as ig_metric_from_record followed by removing every tag
 * whose key sel does not keep (order kept), without building the tags that
 * are removed: a whitelist as the first stage costs nothing per dropped tag.
 * When the full build would not fit (IG_MAX_TAGS or the arena), it does the
 * full build and then removes, so the result is the same in that case too;
 * the return value is ig_metric_from_record's. */
int ig_metric_from_record_sel(struct ig_metric *m, const struct ig_record *r,
			      const struct ig_metric_sel *sel);
/* Copies src into dst, re-homing every string (name, set_member, tag keys
 * and values) into dst's arena; rec is copied as is. -ENOSPC when they do
 * not fit (dst then holds the tags that did). dst == src does nothing. */
int ig_metric_copy(struct ig_metric *dst, const struct ig_metric *src);

#endif
