/* Fuzz target: one pipeline stage, configured and then fed, from arbitrary
 * bytes. The input is a YAML mapping (the stage, with its `type:`), a line
 * "...", then one metric per line:
 *
 *   type: regex
 *   rules: [{key: path, pattern: '[0-9]+', replace_with: N}]
 *   ...
 *   file.open c 1 path=/proc/12/status pid=12
 *   lat h 2.5 svc=api
 *
 * (kind c|g|h|s, then the value, then key=value tags; a set's member is its
 * value text). The stage is built as the engine builds it (option table,
 * `type` ignored, init); a failure must explain itself. A built stage gets
 * every metric, then a tick and a flush; what it emits is checked for
 * well-formedness (a name, tags with keys and values). Nothing may crash,
 * leak or read out of bounds, whatever the patterns, conditions, values or
 * tag bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"
#include "ig_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_emitted(void *ctx, struct ig_metric *m)
{
	size_t *n = ctx;

	if (!m->name || m->ntags > IG_MAX_TAGS)
		abort();
	for (uint32_t i = 0; i < m->ntags; i++)
		if (!m->tags[i].key || !m->tags[i].val)
			abort();
	(*n)++;
}

/* Splits line into a metric; its strings point into line (modified). */
static void parse_metric(struct ig_metric *m, char *line)
{
	char *save = NULL, *tok;

	ig_metric_reset(m);
	m->name = strtok_r(line, " ", &save);
	if (!m->name)
		m->name = "";
	tok = strtok_r(NULL, " ", &save);
	m->kind = !tok		? IG_M_COUNTER :
		  tok[0] == 'g' ? IG_M_GAUGE :
		  tok[0] == 'h' ? IG_M_HISTOGRAM :
		  tok[0] == 's' ? IG_M_SET :
				  IG_M_COUNTER;
	tok = strtok_r(NULL, " ", &save);
	m->value = tok ? strtod(tok, NULL) : 1;
	m->set_member = tok;
	while ((tok = strtok_r(NULL, " ", &save))) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = '\0';
		if (ig_metric_add_tag(m, tok, eq ? eq + 1 : "", IG_TAG_STR) < 0)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const type_key[] = { "type", NULL };
	char *text = malloc(size + 1), *metrics = NULL, *sep;
	const struct ig_stage_ops *ops = NULL;
	const struct ig_ynode *t;
	struct ig_ydoc *doc = NULL;
	struct ig_metric *m = NULL;
	void *conf = NULL, *state = NULL;
	struct ig_err err;
	size_t emitted = 0;
	struct ig_emit out = { check_emitted, &emitted };

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	sep = strstr(text, "\n...\n");
	if (sep) {
		*sep = '\0';
		metrics = sep + 5;
	}
	ig_err_init(&err);
	if (ig_ydoc_load_string("fuzz.yaml", text, strlen(text), &doc, &err) < 0)
		goto out;
	t = ig_ymap_get(doc->root, "type");
	ops = t && t->type == IG_Y_SCALAR ? ig_stage_find(t->scalar) : NULL;
	if (!ops)
		goto out;
	conf = calloc(1, ops->conf_size ? ops->conf_size : 1);
	if (!conf)
		goto out;
	ig_err_init(&err);
	if (ig_cfg_apply(ops->opts, doc->root, conf, "fuzz", type_key, &err) < 0 ||
	    ops->init(&state, conf, &err) < 0) {
		if (err.n == 0)
			abort(); /* a rejection must say why */
		state = NULL;
		goto out;
	}
	m = malloc(sizeof(*m));
	for (char *line = metrics, *next; m && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		parse_metric(m, line);
		ops->process(state, m, &out);
	}
	if (ops->tick) {
		ops->tick(state, 1, &out);
		ops->tick(state, UINT64_MAX / 2, &out);
	}
	if (ops->flush)
		ops->flush(state, &out);
out:
	if (state)
		ops->free(state);
	if (conf) {
		ig_cfg_free(ops->opts, conf);
		free(conf);
	}
	ig_ydoc_free(doc);
	free(m);
	free(text);
	return 0;
}
