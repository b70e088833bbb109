/* stage_add_tags: appends static tags (cluster: prod, team: infra) to every
 * metric.
 *
 *   - {type: add_tags, tags: {cluster: prod, region: eu-west-1}}
 *
 * The tags are copied out of the configuration at init (the document does not
 * outlive the graph), so process() only points the metric at them: no copy,
 * no allocation. A tag whose key the metric already has replaces its value
 * (a metric never carries the same key twice). When the metric has no room
 * left (IG_MAX_TAGS) the remaining tags are skipped and the metric passes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"

struct add_tags_conf {
	const struct ig_ynode *tags;
};

struct add_tags {
	uint32_t n;
	char *key[IG_MAX_TAGS];
	char *val[IG_MAX_TAGS];
};

static const struct ig_opt add_tags_opts[] = {
	{ "tags", IG_OPT_NODE, NULL, offsetof(struct add_tags_conf, tags),
	  "Tags added to every metric, as key: value. A key the metric already has gets the new value.",
	  IG_OPTF_REQUIRED, .doc_type = "mapping of tag: value" },
	{ 0 },
};

static void add_tags_free(void *state)
{
	struct add_tags *st = state;

	if (!st)
		return;
	for (uint32_t i = 0; i < st->n; i++) {
		free(st->key[i]);
		free(st->val[i]);
	}
	free(st);
}

static int add_tags_init(void **state, const void *conf, struct ig_err *err)
{
	const struct add_tags_conf *c = conf;
	const struct ig_ynode *t = c->tags;
	struct add_tags *st;
	char pos[300];
	int rc = 0;

	*state = NULL;
	if (!t || t->type != IG_Y_MAP || !t->n) {
		ig_err_add(
			err,
			"%s: tags: expected a mapping of tag: value like {cluster: prod}; got %s",
			ig_ynode_pos(t, pos, sizeof(pos)),
			!t || (t->type == IG_Y_SCALAR && t->plain_null) ? "nothing" :
			t->type == IG_Y_MAP				? "an empty mapping" :
			t->type == IG_Y_SCALAR				? "a scalar" :
						 ig_ynode_type_name(t->type));
		return -EINVAL;
	}
	if (t->n > IG_MAX_TAGS) {
		ig_err_add(err, "%s: tags: %zu tags given; a metric holds at most %d tags",
			   ig_ynode_pos(t, pos, sizeof(pos)), t->n, IG_MAX_TAGS);
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct ig_ynode *k = t->pairs[i].key, *v = t->pairs[i].val;

		if (!*k->scalar) {
			ig_err_add(err, "%s: tags: a tag key is empty; give it a name",
				   ig_ynode_pos(k, pos, sizeof(pos)));
			rc = -EINVAL;
			continue;
		}
		if (v->type != IG_Y_SCALAR) {
			ig_err_add(err, "%s: tags.%.100s: expected a string value; got %s",
				   ig_ynode_pos(v, pos, sizeof(pos)), k->scalar,
				   ig_ynode_type_name(v->type));
			rc = -EINVAL;
			continue;
		}
		st->key[st->n] = strdup(k->scalar);
		st->val[st->n] = strdup(v->scalar);
		st->n++;
		if (!st->key[st->n - 1] || !st->val[st->n - 1]) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc < 0) {
		add_tags_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static enum ig_stage_result add_tags_process(void *state, struct ig_metric *m,
					     const struct ig_emit *out)
{
	const struct add_tags *st = state;

	for (uint32_t i = 0; i < st->n; i++) {
		uint32_t j;

		for (j = 0; j < m->ntags; j++)
			if (!strcmp(m->tags[j].key, st->key[i]))
				break;
		if (j < m->ntags) {
			m->tags[j].val = st->val[i];
			m->tags[j].type = IG_TAG_STR;
		} else if (ig_metric_add_tag(m, st->key[i], st->val[i], IG_TAG_STR) < 0) {
			break;
		}
	}
	return IG_STAGE_PASS;
}

const struct ig_stage_ops ig_stage_add_tags = {
	.type = "add_tags",
	.summary = "Adds static tags (`cluster: prod`) to every metric.",
	.opts = add_tags_opts,
	.conf_size = sizeof(struct add_tags_conf),
	.init = add_tags_init,
	.process = add_tags_process,
	.free = add_tags_free,
};
