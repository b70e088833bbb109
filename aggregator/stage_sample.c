/* stage_sample: turns a numeric tag of a record's metric into a sample of a
 * metric of its own, so a field (dns.query's latency_ns) becomes a
 * histogram (dns.latency) that a rollup aggregates into count, sum, min,
 * max and percentiles.
 *
 *   - {type: sample, from: dns.query, field: latency_ns, name: dns.latency,
 *      kind: histogram, divide_by: 1000000, keep_tags: [pod, qtype, rcode, server]}
 *
 * A metric named `from` that has the tag `field` with a number in it emits a
 * new metric through the rest of the pipeline: name `name`, kind `kind`,
 * value = the tag's number / divide_by, the metric's timestamp and source
 * record, and the tags listed in keep_tags (all but `field` when the list
 * is empty). The original metric then passes on unchanged, so a pipeline
 * gets both the counter and the histogram from one record. Other metrics
 * pass untouched; a `from` metric without the tag (or with a value that is
 * not a number) passes and counts nothing.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"

struct sample_conf {
	char *from;
	char *field;
	char *name;
	int kind; /* index into kinds[] */
	uint64_t divide_by;
	struct ig_strlist keep_tags;
};

static const char *const kinds[] = { "histogram", "gauge", "counter", NULL };
static const enum ig_metric_kind kind_of[] = { IG_M_HISTOGRAM, IG_M_GAUGE, IG_M_COUNTER };

#define S(f) offsetof(struct sample_conf, f)
static const struct ig_opt sample_opts[] = {
	{ "from", IG_OPT_STR, NULL, S(from), "Name of the metrics sampled (e.g. dns.query).",
	  .flags = IG_OPTF_REQUIRED },
	{ "field", IG_OPT_STR, NULL, S(field),
	  "Tag whose number becomes the sample's value (e.g. latency_ns).",
	  .flags = IG_OPTF_REQUIRED },
	{ "name", IG_OPT_STR, NULL, S(name), "Name of the metric emitted (e.g. dns.latency).",
	  .flags = IG_OPTF_REQUIRED },
	{ "kind", IG_OPT_ENUM, "histogram", S(kind),
	  "Kind of the metric emitted: histogram, gauge or counter.", .choices = kinds },
	{ "divide_by", IG_OPT_UINT, "1", S(divide_by),
	  "The value is the tag's number divided by this (1000000: ns to ms).", .min = 1,
	  .max = 1000000000000 },
	{ "keep_tags", IG_OPT_STRLIST, "[]", S(keep_tags),
	  "Tags the emitted metric keeps ([] = all but `field`).", .flags = 0 },
	{ 0 },
};
#undef S

struct sample {
	const struct sample_conf *c;
	struct ig_metric out;
};

static int sample_init(void **state, const void *conf, struct ig_err *err)
{
	struct sample *st = calloc(1, sizeof(*st));

	(void)err;
	if (!st)
		return -ENOMEM;
	st->c = conf; /* the engine keeps the conf until after free() */
	*state = st;
	return 0;
}

static bool kept(const struct sample_conf *c, const char *key)
{
	if (!strcmp(key, c->field))
		return false;
	if (c->keep_tags.n == 0)
		return true;
	for (size_t i = 0; i < c->keep_tags.n; i++)
		if (!strcmp(c->keep_tags.v[i], key))
			return true;
	return false;
}

static enum ig_stage_result sample_process(void *state, struct ig_metric *m,
					   const struct ig_emit *out)
{
	struct sample *st = state;
	const struct sample_conf *c = st->c;

	if (!m->name || strcmp(m->name, c->from) != 0)
		return IG_STAGE_PASS;
	const char *v = ig_metric_tag(m, c->field);
	if (!v || !*v)
		return IG_STAGE_PASS;
	char *end;
	double x = strtod(v, &end);
	if (*end || !isfinite(x))
		return IG_STAGE_PASS;
	struct ig_metric *o = &st->out;
	ig_metric_reset(o);
	o->name = c->name;
	o->kind = kind_of[c->kind];
	o->value = x / (double)c->divide_by;
	o->ts_ns = m->ts_ns;
	o->rec = m->rec;
	for (uint32_t i = 0; i < m->ntags; i++) {
		if (!kept(c, m->tags[i].key))
			continue;
		const char *k = ig_metric_strdup(o, m->tags[i].key);
		const char *val = ig_metric_strdup(o, m->tags[i].val);
		if (!k || !val || ig_metric_add_tag(o, k, val, m->tags[i].type) < 0)
			break;
	}
	out->fn(out->ctx, o);
	return IG_STAGE_PASS;
}

static void sample_free(void *state)
{
	free(state);
}

const struct ig_stage_ops ig_stage_sample = {
	.type = "sample",
	.summary = "Emits a numeric tag of matching metrics as a metric of its own (a "
		   "histogram of dns.query's latency_ns), beside the original.",
	.opts = sample_opts,
	.conf_size = sizeof(struct sample_conf),
	.init = sample_init,
	.process = sample_process,
	.free = sample_free,
};
