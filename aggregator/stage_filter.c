/* stage_filter: drops metrics, or keeps only some, by conditions on their
 * tags, name or value:
 *
 *   - {type: filter, drop_if: {key: namespace, op: eq, value: kube-system}}
 *   - type: filter
 *     keep_if:                       # a list: every condition must hold
 *       - {key: namespace, op: prefix, value: prod-}
 *       - {key: ret, op: lt, value: 0}
 *   - type: filter
 *     drop_if:
 *       any:                         # at least one must hold
 *         - {key: process, op: regex, value: '^(kubelet|containerd)$'}
 *         - {key: path, op: prefix, value: /proc/}
 *
 * Exactly one of `drop_if` (drop the metric when the condition holds) and
 * `keep_if` (drop it when the condition does not hold). A condition is
 * {key, op, value}, a list of conditions (all must hold), `{all: [...]}` or
 * `{any: [...]}`; groups nest. `key` is a tag key, or `__name__` (the metric
 * name) or `__value__` (its value). Operators:
 *
 *   eq, ne                      the value as a string (ne = not eq: true when the tag is absent)
 *   prefix, suffix, contains    substring tests
 *   regex                       a PCRE2 search (anchor with ^ and $ for a whole match)
 *   lt, le, gt, ge              numeric: the tag is read as a number; a tag that is
 *                               not one makes the condition false
 *   exists, absent              the tag is present / not present (no value)
 *
 * Every operator but `ne` and `absent` is false when the tag is absent.
 * Conditions are compiled at load (numbers parsed, regexes JIT-compiled,
 * mistakes reported with file:line:col); evaluation allocates nothing and
 * stops at the first condition that decides a group.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"
#include "re.h"

#define MAX_DEPTH 16

enum op {
	OP_EQ,
	OP_NE,
	OP_PREFIX,
	OP_SUFFIX,
	OP_CONTAINS,
	OP_REGEX,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_EXISTS,
	OP_ABSENT,
};

static const char *const op_choices[] = { "eq", "ne", "prefix", "suffix", "contains", "regex", "lt",
					  "le", "gt", "ge",	"exists", "absent",   NULL };

enum field { F_TAG, F_NAME, F_VALUE };
enum node_type { N_LEAF, N_ALL, N_ANY };

struct cond {
	enum node_type type;
	/* N_LEAF */
	enum field field;
	enum op op;
	char *key;
	char *value;
	size_t vlen;
	double num;
	pcre2_code *re;
	pcre2_match_data *md;
	/* N_ALL, N_ANY */
	uint32_t n;
	struct cond *kids;
};

struct filter_conf {
	const struct ig_ynode *drop_if;
	const struct ig_ynode *keep_if;
};

struct leaf_conf {
	char *key;
	int op;
	const struct ig_ynode *value;
};

struct filter {
	bool keep; /* keep_if: drop when the condition is false */
	struct cond root;
};

static const struct ig_opt filter_opts[] = {
	{ "drop_if", IG_OPT_NODE, NULL, offsetof(struct filter_conf, drop_if),
	  "Drop the metric when this condition holds: `{key, op, value}`, a list (all must hold), `{all: [...]}` or `{any: [...]}`. Give `drop_if` or `keep_if`, not both.",
	  .doc_type = "condition" },
	{ "keep_if", IG_OPT_NODE, NULL, offsetof(struct filter_conf, keep_if),
	  "Drop the metric unless this condition holds (same forms as `drop_if`).",
	  .doc_type = "condition" },
	{ 0 },
};

static const struct ig_opt leaf_opts[] = {
	{ "key", IG_OPT_STR, NULL, offsetof(struct leaf_conf, key),
	  "Tag key, or `__name__` / `__value__`.", .flags = IG_OPTF_REQUIRED },
	{ "op", IG_OPT_ENUM, "eq", offsetof(struct leaf_conf, op), "Comparison.", .flags = 0,
	  .choices = op_choices },
	{ "value", IG_OPT_NODE, NULL, offsetof(struct leaf_conf, value),
	  "What the tag is compared with (a number for lt/le/gt/ge; none for exists/absent).",
	  .doc_type = "string or number" },
	{ 0 },
};

static void cond_free(struct cond *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		cond_free(&c->kids[i]);
	free(c->kids);
	free(c->key);
	free(c->value);
	pcre2_match_data_free(c->md);
	pcre2_code_free(c->re);
}

static void filter_free(void *state)
{
	struct filter *st = state;

	if (!st)
		return;
	cond_free(&st->root);
	free(st);
}

static bool is_numeric_op(enum op op)
{
	return op == OP_LT || op == OP_LE || op == OP_GT || op == OP_GE;
}

/* A whole string as a finite number. */
static bool parse_number(const char *s, double *out)
{
	char *end;

	if (!*s || *s == ' ' || *s == '\t')
		return false;
	*out = strtod(s, &end);
	return !*end && isfinite(*out);
}

static int cond_parse(struct cond *c, const struct ig_ynode *n, const char *where, int depth,
		      struct ig_err *err);

static int group_parse(struct cond *c, enum node_type type, const struct ig_ynode *seq,
		       const char *where, int depth, struct ig_err *err)
{
	char pos[300], sub[300];
	int rc = 0;

	c->type = type;
	if (!seq || seq->type != IG_Y_SEQ || !seq->n) {
		ig_err_add(
			err,
			"%s: %s: expected a non-empty list of conditions like [{key: namespace, op: eq, value: kube-system}]; got %s",
			ig_ynode_pos(seq, pos, sizeof(pos)), where,
			!seq || (seq->type == IG_Y_SCALAR && seq->plain_null) ? "nothing" :
			seq->type == IG_Y_SEQ				      ? "an empty list" :
			seq->type == IG_Y_SCALAR			      ? "a scalar" :
										"a mapping");
		return -EINVAL;
	}
	c->kids = calloc(seq->n, sizeof(*c->kids));
	if (!c->kids)
		return -ENOMEM;
	c->n = (uint32_t)seq->n;
	for (size_t i = 0; i < seq->n; i++) {
		int r;

		snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
		r = cond_parse(&c->kids[i], seq->items[i], sub, depth + 1, err);
		if (r < 0 && (!rc || r == -ENOMEM))
			rc = r;
	}
	return rc;
}

static int leaf_parse(struct cond *c, const struct ig_ynode *n, const char *where,
		      struct ig_err *err)
{
	struct leaf_conf lc;
	char pos[300], msg[300];
	const struct ig_ynode *v;
	int rc = 0;

	c->type = N_LEAF;
	if (ig_cfg_apply(leaf_opts, n, &lc, where, NULL, err) < 0) {
		ig_cfg_free(leaf_opts, &lc);
		return -EINVAL;
	}
	v = lc.value;
	c->op = (enum op)lc.op;
	c->key = lc.key;
	lc.key = NULL;
	c->field = !strcmp(c->key, "__name__")	? F_NAME :
		   !strcmp(c->key, "__value__") ? F_VALUE :
						  F_TAG;
	if (!*c->key) {
		ig_err_add(err, "%s: %s.key: is empty; name a tag (or __name__, __value__)",
			   ig_ynode_pos(n, pos, sizeof(pos)), where);
		rc = -EINVAL;
	} else if (c->op == OP_EXISTS || c->op == OP_ABSENT) {
		if (v && !(v->type == IG_Y_SCALAR && v->plain_null)) {
			ig_err_add(err, "%s: %s.value: op %s takes no value; remove it",
				   ig_ynode_pos(v, pos, sizeof(pos)), where, op_choices[c->op]);
			rc = -EINVAL;
		}
	} else if (!v || (v->type == IG_Y_SCALAR && v->plain_null)) {
		ig_err_add(err, "%s: %s.value: missing; op %s compares the tag with a value",
			   ig_ynode_pos(n, pos, sizeof(pos)), where, op_choices[c->op]);
		rc = -EINVAL;
	} else if (v->type != IG_Y_SCALAR) {
		ig_err_add(err, "%s: %s.value: expected a string or a number; got %s",
			   ig_ynode_pos(v, pos, sizeof(pos)), where, ig_ynode_type_name(v->type));
		rc = -EINVAL;
	} else if (is_numeric_op(c->op) && !parse_number(v->scalar, &c->num)) {
		ig_err_add(err, "%s: %s.value: op %s needs a number; got '%.100s'",
			   ig_ynode_pos(v, pos, sizeof(pos)), where, op_choices[c->op], v->scalar);
		rc = -EINVAL;
	} else if (c->op == OP_REGEX) {
		c->re = ig_re_compile(v->scalar, msg, sizeof(msg));
		if (!c->re) {
			ig_err_add(err, "%s: %s.value: %s", ig_ynode_pos(v, pos, sizeof(pos)),
				   where, msg);
			rc = -EINVAL;
		} else if (!(c->md = pcre2_match_data_create_from_pattern(c->re, NULL))) {
			rc = -ENOMEM;
		}
	}
	if (!rc && v && v->type == IG_Y_SCALAR && !v->plain_null) {
		c->value = strdup(v->scalar);
		c->vlen = strlen(v->scalar);
		if (!c->value)
			rc = -ENOMEM;
	}
	ig_cfg_free(leaf_opts, &lc);
	return rc;
}

static int cond_parse(struct cond *c, const struct ig_ynode *n, const char *where, int depth,
		      struct ig_err *err)
{
	char pos[300], sub[300];

	if (depth > MAX_DEPTH) {
		ig_err_add(err, "%s: %s: conditions nest deeper than %d levels; flatten them",
			   ig_ynode_pos(n, pos, sizeof(pos)), where, MAX_DEPTH);
		return -EINVAL;
	}
	if (n && n->type == IG_Y_SEQ)
		return group_parse(c, N_ALL, n, where, depth, err);
	if (n && n->type == IG_Y_MAP && n->n == 1 &&
	    (!strcmp(n->pairs[0].key->scalar, "any") || !strcmp(n->pairs[0].key->scalar, "all"))) {
		bool any = !strcmp(n->pairs[0].key->scalar, "any");

		snprintf(sub, sizeof(sub), "%s.%s", where, any ? "any" : "all");
		return group_parse(c, any ? N_ANY : N_ALL, n->pairs[0].val, sub, depth, err);
	}
	if (!n || n->type != IG_Y_MAP) {
		ig_err_add(
			err,
			"%s: %s: expected a condition like {key: namespace, op: eq, value: kube-system}, a list of them, or {any: [...]}; got %s",
			ig_ynode_pos(n, pos, sizeof(pos)), where,
			!n || (n->type == IG_Y_SCALAR && n->plain_null) ? "nothing" : "a scalar");
		return -EINVAL;
	}
	if (ig_ymap_get(n, "any") || ig_ymap_get(n, "all")) {
		ig_err_add(
			err,
			"%s: %s: 'any'/'all' must be the only key of its mapping; put the other conditions inside its list",
			ig_ynode_pos(n, pos, sizeof(pos)), where);
		return -EINVAL;
	}
	return leaf_parse(c, n, where, err);
}

static bool absent_node(const struct ig_ynode *n)
{
	return !n || (n->type == IG_Y_SCALAR && n->plain_null);
}

static int filter_init(void **state, const void *conf, struct ig_err *err)
{
	const struct filter_conf *c = conf;
	struct filter *st;
	char pos[300];
	int rc;

	*state = NULL;
	if (absent_node(c->drop_if) == absent_node(c->keep_if)) {
		if (absent_node(c->drop_if))
			ig_err_add(
				err,
				"give a condition as 'drop_if: {key: namespace, op: eq, value: kube-system}' (or keep_if: ...)");
		else
			ig_err_add(err,
				   "%s: keep_if: 'drop_if' and 'keep_if' are both given; keep one",
				   ig_ynode_pos(c->keep_if, pos, sizeof(pos)));
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->keep = absent_node(c->drop_if);
	rc = cond_parse(&st->root, st->keep ? c->keep_if : c->drop_if,
			st->keep ? "keep_if" : "drop_if", 0, err);
	if (rc < 0) {
		filter_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static bool leaf_eval(const struct cond *c, const struct ig_metric *m)
{
	char buf[40];
	const char *s = NULL;
	size_t len;
	double num;

	switch (c->field) {
	case F_NAME:
		s = m->name;
		break;
	case F_VALUE:
		snprintf(buf, sizeof(buf), "%.15g", m->value);
		s = buf;
		break;
	case F_TAG:
		s = ig_metric_tag(m, c->key);
		break;
	}
	if (!s)
		return c->op == OP_ABSENT || c->op == OP_NE;
	switch (c->op) {
	case OP_EQ:
		return !strcmp(s, c->value);
	case OP_NE:
		return strcmp(s, c->value) != 0;
	case OP_PREFIX:
		return !strncmp(s, c->value, c->vlen);
	case OP_SUFFIX:
		len = strlen(s);
		return len >= c->vlen && !memcmp(s + len - c->vlen, c->value, c->vlen);
	case OP_CONTAINS:
		return strstr(s, c->value) != NULL;
	case OP_REGEX:
		return pcre2_match(c->re, (PCRE2_SPTR)s, strlen(s), 0, 0, c->md, NULL) >= 0;
	case OP_LT:
	case OP_LE:
	case OP_GT:
	case OP_GE:
		if (c->field == F_VALUE)
			num = m->value;
		else if (!parse_number(s, &num))
			return false;
		return c->op == OP_LT ? num < c->num :
		       c->op == OP_LE ? num <= c->num :
		       c->op == OP_GT ? num > c->num :
					num >= c->num;
	case OP_EXISTS:
		return true;
	case OP_ABSENT:
		return false;
	}
	return false;
}

static bool cond_eval(const struct cond *c, const struct ig_metric *m)
{
	if (c->type == N_LEAF)
		return leaf_eval(c, m);
	for (uint32_t i = 0; i < c->n; i++) {
		bool r = cond_eval(&c->kids[i], m);

		if (c->type == N_ANY && r)
			return true;
		if (c->type == N_ALL && !r)
			return false;
	}
	return c->type == N_ALL;
}

static enum ig_stage_result filter_process(void *state, struct ig_metric *m,
					   const struct ig_emit *out)
{
	const struct filter *st = state;

	return cond_eval(&st->root, m) != st->keep ? IG_STAGE_DROP : IG_STAGE_PASS;
}

const struct ig_stage_ops ig_stage_filter = {
	.type = "filter",
	.summary =
		"Drops metrics (`drop_if`), or keeps only some (`keep_if`), by conditions on tags, name or value.",
	.opts = filter_opts,
	.conf_size = sizeof(struct filter_conf),
	.init = filter_init,
	.process = filter_process,
	.free = filter_free,
};
