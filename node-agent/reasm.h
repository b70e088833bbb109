/* reasm: TCP stream reassembly for the payload capture layer
 * (node-agent/capture.c; docs/capture.md).
 *
 * One stream per (socket cookie, direction). Segments are placed by
 * sequence number relative to the first one seen: duplicates and overlaps
 * are trimmed, segments ahead of the stream wait in a sorted list until the
 * hole before them fills. The reader sees the contiguous unconsumed bytes
 * and consumes a prefix. Everything is bounded and every bound counts what
 * it costs:
 *   max_flows       streams held; the least recently used one is evicted
 *   max_flow_bytes  bytes held per stream (contiguous + waiting); a segment
 *                   that does not fit is dropped (overflow); when the
 *                   waiting segments alone fill the stream, the hole is
 *                   given up: its size and the unconsumed bytes before it are counted
 *                   (gap_bytes), the stream
 *                   continues after it and reports the gap once
 *   max_age_ns      a stream idle this long is dropped by ig_reasm_expire
 * Not thread-safe.
 */
#ifndef IG_REASM_H
#define IG_REASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ig_reasm_opts {
	uint32_t max_flows; /* 0 = 4096 */
	uint32_t max_flow_bytes; /* 0 = 8192 */
	uint64_t max_age_ns; /* 0 = 30 s */
	size_t user_size; /* bytes of caller data kept per stream (zeroed at creation) */
};

struct ig_reasm_stats {
	uint64_t streams; /* streams created */
	uint64_t evicted; /* streams evicted (table full) */
	uint64_t evicted_bytes; /* bytes they held */
	uint64_t aged; /* streams dropped idle */
	uint64_t aged_bytes;
	uint64_t overflow; /* segments dropped: the stream was full */
	uint64_t overflow_bytes;
	uint64_t gap_bytes; /* bytes of holes given up, with the bytes before them */
	uint64_t dup_bytes; /* bytes received twice (trimmed) */
	uint64_t live; /* streams held now */
};

struct ig_reasm;
struct ig_reasm_stream;

/* Called for a stream removed by eviction or age (not by ig_reasm_close),
 * before it is freed. */
typedef void (*ig_reasm_drop_fn)(void *ctx, struct ig_reasm_stream *s, bool evicted);

struct ig_reasm *ig_reasm_new(const struct ig_reasm_opts *o, ig_reasm_drop_fn drop, void *ctx);
void ig_reasm_free(struct ig_reasm *r);

/* The stream of (cookie, dir), or NULL. With create, a new stream (starting
 * at the first segment added) is made when absent, evicting the least
 * recently used one when full; NULL only when out of memory. */
struct ig_reasm_stream *ig_reasm_get(struct ig_reasm *r, uint64_t cookie, uint8_t dir,
				     uint64_t now_ns, bool create);
/* Adds a segment. 0, or -ENOSPC when it was dropped (stream full). */
int ig_reasm_add(struct ig_reasm *r, struct ig_reasm_stream *s, uint32_t seq, const uint8_t *data,
		 size_t len, uint64_t now_ns);
/* The contiguous unconsumed bytes (*len may be 0). */
const uint8_t *ig_reasm_data(const struct ig_reasm_stream *s, size_t *len);
void ig_reasm_consume(struct ig_reasm_stream *s, size_t n);
/* True once after a hole was given up (the bytes after it are not
 * contiguous with what came before). */
bool ig_reasm_take_gap(struct ig_reasm_stream *s);
void *ig_reasm_user(struct ig_reasm_stream *s);
uint64_t ig_reasm_cookie(const struct ig_reasm_stream *s);
uint8_t ig_reasm_dir(const struct ig_reasm_stream *s);
/* Bytes held (contiguous + waiting). */
size_t ig_reasm_held(const struct ig_reasm_stream *s);
/* Removes and frees s (no drop callback). */
void ig_reasm_close(struct ig_reasm *r, struct ig_reasm_stream *s);
/* Drops streams idle for max_age_ns (drop callback with evicted=false). */
void ig_reasm_expire(struct ig_reasm *r, uint64_t now_ns);
void ig_reasm_stats(const struct ig_reasm *r, struct ig_reasm_stats *out);

#endif
