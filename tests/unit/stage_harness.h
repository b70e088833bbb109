/* stage_harness: what the test_stage_*.c programs share.
 *
 *   struct stage *s = stage_open(&ig_stage_regex, "rules: [...]\n", &err);
 *   metric_set(&m, "file.open", "path", "/proc/1/", NULL);
 *   r = s->ops->process(s->state, &m, &cap.emit);
 *
 * stage_open() parses a stage's YAML mapping as "stage.yaml" the way the
 * engine does (the ops' option table, `type` ignored, where = "stage"), then
 * calls init(); init's messages stay in err exactly as the stage wrote them.
 * A capture collects what a stage emits, as copies (ig_metric_copy). Every
 * function is static inline so a test uses only what it needs.
 */
#ifndef STAGE_HARNESS_H
#define STAGE_HARNESS_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ig_stage.h"
#include "ig_yaml.h"

struct stage {
	const struct ig_stage_ops *ops;
	struct ig_ydoc *doc;
	void *conf;
	void *state;
};

static inline void stage_close(struct stage *s)
{
	if (!s)
		return;
	if (s->state)
		s->ops->free(s->state);
	if (s->conf) {
		ig_cfg_free(s->ops->opts, s->conf);
		free(s->conf);
	}
	ig_ydoc_free(s->doc);
	free(s);
}

/* NULL when the YAML, the options or init() failed (messages in err). */
static inline struct stage *stage_open(const struct ig_stage_ops *ops, const char *yaml,
				       struct ig_err *err)
{
	static const char *const type_key[] = { "type", NULL };
	struct stage *s = calloc(1, sizeof(*s));

	ig_err_init(err);
	if (!s)
		return NULL;
	s->ops = ops;
	s->conf = calloc(1, ops->conf_size ? ops->conf_size : 1);
	if (!s->conf || ig_ydoc_load_string("stage.yaml", yaml, strlen(yaml), &s->doc, err) < 0 ||
	    ig_cfg_apply(ops->opts, s->doc->root, s->conf, "stage", type_key, err) < 0 ||
	    ops->init(&s->state, s->conf, err) < 0) {
		s->state = NULL;
		stage_close(s);
		return NULL;
	}
	return s;
}

/* name, then key, value pairs, NULL-terminated; every tag a string. */
static inline void metric_set(struct ig_metric *m, const char *name, ...)
{
	va_list ap;
	const char *k;

	ig_metric_reset(m);
	m->name = name;
	m->value = 1;
	va_start(ap, name);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		ig_metric_add_tag(m, k, v, IG_TAG_STR);
	}
	va_end(ap);
}

/* "k=v,k=v" of m's tags, into buf. */
static inline const char *tags_str(const struct ig_metric *m, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < m->ntags && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s=%s", i ? "," : "",
					 m->tags[i].key, m->tags[i].val);
	return buf;
}

#define CAPTURE_MAX 4096

struct capture {
	struct ig_emit emit;
	size_t n;
	size_t dropped; /* beyond CAPTURE_MAX */
	struct ig_metric *m[CAPTURE_MAX];
};

static inline void capture_fn(void *ctx, struct ig_metric *m)
{
	struct capture *c = ctx;
	struct ig_metric *copy;

	if (c->n == CAPTURE_MAX) {
		c->dropped++;
		return;
	}
	copy = malloc(sizeof(*copy));
	if (!copy || ig_metric_copy(copy, m) < 0)
		abort();
	c->m[c->n++] = copy;
}

static inline void capture_init(struct capture *c)
{
	c->emit.fn = capture_fn;
	c->emit.ctx = c;
	c->n = c->dropped = 0;
}

static inline void capture_clear(struct capture *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->m[i]);
	c->n = c->dropped = 0;
}

/* The captured metric named `name` whose tags render as `tags` (NULL: any). */
static inline const struct ig_metric *capture_find(const struct capture *c, const char *name,
						   const char *tags)
{
	char buf[2048];

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->m[i]->name, name) &&
		    (!tags || !strcmp(tags_str(c->m[i], buf, sizeof(buf)), tags)))
			return c->m[i];
	return NULL;
}

#endif
