/* stage_whitelist: keeps only the listed tag keys (or removes the listed
 * ones), to bound the cardinality of what the later stages and the backends
 * see: a record carries pid, tid, path, container_id... and a metric tagged
 * with all of them is a new series per event.
 *
 *   - {type: whitelist, allow: [namespace, pod, process]}
 *   - {type: whitelist, deny: [pid, tid, ppid, cgroup_id]}
 *
 * Exactly one of `allow` and `deny`. The kept tags stay in the metric's
 * order (not the list's): later stages and tag-ordered backends (graphite
 * names) see the order the metric was built in. `allow: []` removes every
 * tag. The metric's name and value are never touched.
 *
 * The keys are copied at init; process() compacts the metric's tag array
 * in place, comparing each tag key with the (short) list: no allocation.
 * As a pipeline's first stage it does not even run: the engine asks
 * keeps_key() and builds the metric with only the kept tags.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"

struct whitelist_conf {
	const struct ig_ynode *allow;
	const struct ig_ynode *deny;
};

struct whitelist {
	bool deny; /* true: remove the listed keys, false: keep only them */
	uint32_t n;
	char **keys;
};

static const struct ig_opt whitelist_opts[] = {
	{ "allow", IG_OPT_NODE, NULL, offsetof(struct whitelist_conf, allow),
	  "Tag keys kept; every other tag is removed. `[]` removes all tags. Give `allow` or `deny`, not both.",
	  .doc_type = "list of tag keys" },
	{ "deny", IG_OPT_NODE, NULL, offsetof(struct whitelist_conf, deny),
	  "Tag keys removed; every other tag is kept. Give `allow` or `deny`, not both.",
	  .doc_type = "list of tag keys" },
	{ 0 },
};

static void whitelist_free(void *state)
{
	struct whitelist *st = state;

	if (!st)
		return;
	for (uint32_t i = 0; i < st->n; i++)
		free(st->keys[i]);
	free(st->keys);
	free(st);
}

static bool absent(const struct ig_ynode *n)
{
	return !n || (n->type == IG_Y_SCALAR && n->plain_null);
}

static int whitelist_init(void **state, const void *conf, struct ig_err *err)
{
	const struct whitelist_conf *c = conf;
	const struct ig_ynode *list;
	const char *opt;
	struct whitelist *st;
	char pos[300];
	int rc = 0;

	*state = NULL;
	if (absent(c->allow) == absent(c->deny)) {
		if (absent(c->allow))
			ig_err_add(
				err,
				"give the tag keys to keep as 'allow: [namespace, pod]' (or those to remove as 'deny: [...]')");
		else
			ig_err_add(err, "%s: deny: 'allow' and 'deny' are both given; keep one",
				   ig_ynode_pos(c->deny, pos, sizeof(pos)));
		return -EINVAL;
	}
	list = absent(c->allow) ? c->deny : c->allow;
	opt = absent(c->allow) ? "deny" : "allow";
	if (list->type != IG_Y_SEQ) {
		ig_err_add(err, "%s: %s: expected a list of tag keys like [namespace, pod]; got %s",
			   ig_ynode_pos(list, pos, sizeof(pos)), opt,
			   list->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(list->type));
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->deny = !absent(c->deny);
	st->keys = calloc(list->n ? list->n : 1, sizeof(*st->keys));
	if (!st->keys) {
		free(st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ig_ynode *it = list->items[i];

		if (it->type != IG_Y_SCALAR || !*it->scalar) {
			ig_err_add(err, "%s: %s[%zu]: expected a tag key; got %s",
				   ig_ynode_pos(it, pos, sizeof(pos)), opt, i,
				   it->type == IG_Y_SCALAR ? "an empty string" :
							     ig_ynode_type_name(it->type));
			rc = -EINVAL;
			continue;
		}
		st->keys[st->n] = strdup(it->scalar);
		if (!st->keys[st->n]) {
			rc = -ENOMEM;
			break;
		}
		st->n++;
	}
	if (rc < 0) {
		whitelist_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static bool listed(const struct whitelist *st, const char *key)
{
	for (uint32_t i = 0; i < st->n; i++)
		if (st->keys[i][0] == key[0] && !strcmp(st->keys[i], key))
			return true;
	return false;
}

static enum ig_stage_result whitelist_process(void *state, struct ig_metric *m,
					      const struct ig_emit *out)
{
	const struct whitelist *st = state;
	uint32_t kept = 0;

	for (uint32_t i = 0; i < m->ntags; i++) {
		if (listed(st, m->tags[i].key) == st->deny)
			continue;
		if (kept != i)
			m->tags[kept] = m->tags[i];
		kept++;
	}
	m->ntags = kept;
	return IG_STAGE_PASS;
}

static bool whitelist_keeps_key(const void *state, const char *key)
{
	const struct whitelist *st = state;

	return listed(st, key) != st->deny;
}

const struct ig_stage_ops ig_stage_whitelist = {
	.type = "whitelist",
	.summary =
		"Keeps only the listed tag keys (`allow`), or removes them (`deny`), to bound cardinality.",
	.opts = whitelist_opts,
	.conf_size = sizeof(struct whitelist_conf),
	.init = whitelist_init,
	.process = whitelist_process,
	.free = whitelist_free,
	.keeps_key = whitelist_keeps_key,
};
