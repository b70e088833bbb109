/* stages: the table of every pipeline stage type.
 *
 * A stage type is one file exposing one `const struct ig_stage_ops`
 * (ig_stage.h); adding a type means writing that file and listing it here.
 * The engine (pipeline.c) looks types up by their YAML `type:` value, and
 * the configuration reference lists them in this order.
 */
#include "ig_stage.h"

#include <string.h>

/* Defined by the stage files; only this table refers to them. */
extern const struct ig_stage_ops ig_stage_add_tags;
extern const struct ig_stage_ops ig_stage_whitelist;
extern const struct ig_stage_ops ig_stage_regex;
extern const struct ig_stage_ops ig_stage_filter;
extern const struct ig_stage_ops ig_stage_rollup;
extern const struct ig_stage_ops ig_stage_sample;

const struct ig_stage_ops *const ig_stage_table[] = {
	&ig_stage_add_tags,
	&ig_stage_whitelist,
	&ig_stage_regex,
	&ig_stage_filter,
	&ig_stage_rollup,
	&ig_stage_sample,
	NULL,
};

const struct ig_stage_ops *ig_stage_find(const char *type)
{
	if (!type)
		return NULL;
	for (size_t i = 0; ig_stage_table[i]; i++)
		if (!strcmp(ig_stage_table[i]->type, type))
			return ig_stage_table[i];
	return NULL;
}
