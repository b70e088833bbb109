/* ig_pipeline: the aggregator's processing graph, built from a configuration.
 *
 *   record --(route by record.probe)--> pipeline A: stage, stage, ... -> backend x, y
 *                                    \-> pipeline B: ...               -> backend y
 *
 * ig_graph_build() instantiates every backend and every pipeline (stages in
 * order) and checks each reference (a probe naming an unknown pipeline, a
 * pipeline naming an unknown backend) with a file:line:col message. A graph
 * is complete or not built at all, so a reload can build the new one before
 * dropping the old. Processing is single-threaded (the aggregator's loop).
 */
#ifndef IG_PIPELINE_H
#define IG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ig_backend.h"
#include "ig_conf.h"
#include "ig_err.h"
#include "ig_record.h"

struct ig_graph;

int ig_graph_build(const struct ig_conf *conf, struct ig_graph **out, struct ig_err *err);
/* Flushes every stage and backend, then frees. NULL is fine. */
void ig_graph_free(struct ig_graph *g);
/* Reload: for each pipeline of ng whose definition is identical to the one
 * of the same name in old, moves the state of its stages that have adopt()
 * (a rollup's open window) from old to ng, so that freeing old flushes only
 * the pipelines that changed. Returns the number of pipelines carried over. */
size_t ig_graph_adopt(struct ig_graph *ng, struct ig_graph *old);
/* Runs one record through every pipeline its probe feeds. */
void ig_graph_process(struct ig_graph *g, const struct ig_record *r);
void ig_graph_tick(struct ig_graph *g, uint64_t now_ns);
void ig_graph_flush(struct ig_graph *g);
/* Calls every backend's sync (see ig_backend.h) before an envelope is acked. */
void ig_graph_sync(struct ig_graph *g);

struct ig_graph_stats {
	uint64_t records_in; /* records given to ig_graph_process */
	uint64_t unrouted; /* records whose probe feeds no pipeline */
	uint64_t metrics_out; /* metrics written to backends */
	uint64_t dropped; /* metrics dropped by stages */
};
void ig_graph_stats(const struct ig_graph *g, struct ig_graph_stats *st);
/* Calls fn for each backend instance. */
void ig_graph_foreach_backend(struct ig_graph *g,
			      void (*fn)(void *ctx, const char *name, const char *type,
					 const struct ig_backend_stats *st),
			      void *ctx);
/* The graph as JSON, for `ingrainctl pipelines`:
 * {"routes": {probe: [pipeline...]}, "pipelines": [{"name", "stages": [{"type",
 *  "in", "out", "dropped"}], "backends": [name...]}], "backends": [{"name","type"}]}
 * (a new json-c object owned by the caller). */
struct json_object *ig_graph_describe(const struct ig_graph *g);
/* Markdown reference of every stage and backend type's options. */
void ig_graph_doc(FILE *out);
/* Validates pipelines/backends of conf without keeping anything. */
int ig_graph_check(const struct ig_conf *conf, struct ig_err *err);

#endif
