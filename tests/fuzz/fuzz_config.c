/* Fuzz target: the whole configuration path (libyaml events -> ig_ynode
 * tree -> option tables -> ingrain schema) on arbitrary bytes. It must never
 * crash, leak or accept a document without producing a usable ig_conf; on
 * failure it must have said why. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ig_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ig_conf *c = NULL;
	struct ig_err err;
	int rc;

	/* NODE_NAME keeps the result independent of the host. */
	setenv("NODE_NAME", "fuzz", 0);
	ig_err_init(&err);
	rc = ig_conf_load_string("fuzz.yaml", (const char *)data, size, &c, &err);
	if (rc == 0) {
		if (!c || !c->agent.node_name || !c->agent.agent_id || !c->aggregator.listen)
			abort();
		ig_conf_free(c);
	} else if (c || err.n == 0) {
		abort(); /* a failure must explain itself and return nothing */
	}
	return 0;
}
