/* backends: the table of every backend type.
 *
 * A backend type is one file exposing one `const struct ig_backend_ops`
 * (ig_backend.h); adding a type means writing that file and listing it here.
 * The engine (pipeline.c) looks types up by their YAML `type:` value, and
 * the configuration reference lists them in this order.
 */
#include "ig_backend.h"

#include <string.h>

/* Defined by the backend files; only this table refers to them. */
extern const struct ig_backend_ops ig_backend_console;
extern const struct ig_backend_ops ig_backend_statsd;
extern const struct ig_backend_ops ig_backend_s3;
extern const struct ig_backend_ops ig_backend_datadog;

const struct ig_backend_ops *const ig_backend_table[] = {
	&ig_backend_console, &ig_backend_statsd, &ig_backend_s3, &ig_backend_datadog, NULL,
};

const struct ig_backend_ops *ig_backend_find(const char *type)
{
	if (!type)
		return NULL;
	for (size_t i = 0; ig_backend_table[i]; i++)
		if (!strcmp(ig_backend_table[i]->type, type))
			return ig_backend_table[i];
	return NULL;
}
