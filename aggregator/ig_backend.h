/* ig_backend: one backend = one file exposing one `const struct
 * ig_backend_ops`, listed in backends.c. Like stages, options come from the
 * ops' table (the `type:` key selects the ops). write() receives every metric
 * that reaches the backend; backends batch internally and send from tick()
 * (called at least every 100 ms) or when a batch is full; flush() sends what
 * is pending (shutdown, reload). Backends count what they could not deliver
 * in their stats; they never block the pipeline for long (bounded timeouts). */
#ifndef IG_BACKEND_H
#define IG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ig_config.h"
#include "ig_err.h"
#include "ig_metric.h"

struct ig_backend_stats {
	uint64_t received; /* metrics given to write() */
	uint64_t sent; /* metrics (or lines) delivered */
	uint64_t dropped; /* metrics lost (counted, never silent) */
	uint64_t errors; /* failed sends */
	uint64_t queued; /* currently buffered */
	/* Durable backends (S3, Datadog): records of batches the spool's disk
	 * refused (full, read-only), held in memory, and the total of acked
	 * records that could not be journaled either: a crash loses those. */
	uint64_t memory_held;
	uint64_t unjournaled;
	uint64_t crash_lost; /* of those, found lost at start (the previous run died) */
};

struct ig_backend_ops {
	const char *type;
	const char *summary;
	const struct ig_opt *opts;
	size_t conf_size;
	int (*init)(void **state, const void *conf, const char *name, struct ig_err *err);
	int (*write)(void *state, const struct ig_metric *m);
	void (*tick)(void *state, uint64_t now_ns); /* may be NULL */
	void (*flush)(void *state); /* may be NULL */
	/* Called after each accepted envelope, before it is acked: a backend
	 * whose writes can be made durable cheaply (console to a file: fflush)
	 * does so here. May be NULL. */
	void (*sync)(void *state);
	void (*stats)(void *state, struct ig_backend_stats *st);
	void (*free)(void *state);
};

extern const struct ig_backend_ops *const ig_backend_table[];
const struct ig_backend_ops *ig_backend_find(const char *type);

#endif
