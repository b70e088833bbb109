/* ig_stage: one pipeline stage = one file exposing one `const struct
 * ig_stage_ops`, listed in the table in stages.c. The engine (pipeline.c)
 * parses the stage's YAML mapping with the ops' option table into a conf
 * struct of conf_size bytes, then calls init(); it frees the conf (with
 * ig_cfg_free) after free().
 *
 * process() sees each metric in order. It returns IG_STAGE_PASS to hand the
 * (possibly modified) metric to the next stage, IG_STAGE_DROP to discard it,
 * or IG_STAGE_CONSUMED when it kept what it needed (a rollup); such stages
 * emit their own metrics later from tick() or flush() through `out`, which
 * runs the rest of the pipeline.
 *
 * adopt() (optional) carries state across a reload: when a pipeline's
 * definition is unchanged, the engine calls it on each stage of the new
 * graph with the running graph's stage of the same position and type, before
 * the running graph is flushed and freed; the stage moves what it holds
 * (a rollup's open window) into new_state and leaves old_state empty. */
#ifndef IG_STAGE_H
#define IG_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_config.h"
#include "ig_err.h"
#include "ig_metric.h"

enum ig_stage_result { IG_STAGE_PASS = 0, IG_STAGE_DROP = 1, IG_STAGE_CONSUMED = 2 };

struct ig_emit {
	void (*fn)(void *ctx, struct ig_metric *m);
	void *ctx;
};

struct ig_stage_ops {
	const char *type; /* the `type:` value in YAML */
	const char *summary; /* one line for the docs */
	const struct ig_opt *opts;
	size_t conf_size;
	int (*init)(void **state, const void *conf, struct ig_err *err);
	enum ig_stage_result (*process)(void *state, struct ig_metric *m,
					const struct ig_emit *out);
	void (*tick)(void *state, uint64_t now_ns, const struct ig_emit *out); /* may be NULL */
	void (*flush)(void *state, const struct ig_emit *out); /* may be NULL */
	void (*adopt)(void *new_state, void *old_state); /* may be NULL */
	void (*free)(void *state);
	/* May be NULL. A stage whose process() only removes tags by key (a
	 * whitelist) says here which keys it keeps; when it is a pipeline's
	 * first stage, the engine builds the metric with only those tags
	 * (ig_metric_from_record_sel) instead of calling process(): the same
	 * metric, without building what would be removed. */
	bool (*keeps_key)(const void *state, const char *key);
};

/* NULL-terminated table of every stage type (stages.c). */
extern const struct ig_stage_ops *const ig_stage_table[];
const struct ig_stage_ops *ig_stage_find(const char *type);

#endif
