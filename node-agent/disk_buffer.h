/* disk_buffer: the agent's unacknowledged queue on disk, so that it survives
 * a crash or restart of the agent (in the manner of Vector's disk buffer and
 * Fluent Bit's filesystem storage).
 *
 * Every sealed envelope is appended to a write-ahead segment in buffer_dir
 * before it is queued for sending; the sender removes it (ig_dbuf_pop) when
 * the aggregator acked it, rejected it, or the queue bound dropped it. The
 * queue is FIFO, so a pop always concerns the oldest envelope on disk, and a
 * segment ("<created_ns:020>.seg", ig_wal.h frames: u64 seq + the envelope's
 * bytes, aux = its record count) is deleted once all its envelopes are done.
 * Segments are closed at segment_bytes, so what an acked envelope costs is at
 * most one segment of re-sends after a crash: those come back as duplicates,
 * which the aggregator acks without processing them again.
 *
 * At start the segments earlier processes left are replayed, oldest first,
 * ahead of anything new: the same bytes (their own agent_id, boot_id and
 * seq), so the aggregator's dedup sees them for what they are. A segment that
 * ends in a torn or corrupt frame (a machine crash during a write) is read up
 * to that frame; the records the damaged frame held (its header's count,
 * when readable) are reported so the agent counts them (`buffer_corrupt`).
 *
 * fsync policy: with fsync (the default) each append is fdatasync'd before
 * the envelope is queued (power loss safe); without, the bytes are written
 * (write(2)) before it is queued, which survives a crash of the agent process
 * but not of the machine. One agent per directory: an flock on <dir>/.lock.
 */
#ifndef IG_DISK_BUFFER_H
#define IG_DISK_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"

struct ig_dbuf;

struct ig_dbuf_opts {
	const char *dir;
	bool fsync;
	uint64_t segment_bytes; /* 0 = 8 MiB */
};

/* Creates the directory if needed and takes its lock. -EBUSY when another
 * agent holds it; errors say what to do. */
int ig_dbuf_open(struct ig_dbuf **out, const struct ig_dbuf_opts *o, struct ig_err *err);
/* Calls fn for every envelope earlier processes left, oldest first; fn takes
 * ownership of buf (malloc'd). Returns the records lost in damaged frames
 * (counted by the caller) via *corrupt_records. Call once, before appends. */
void ig_dbuf_replay(struct ig_dbuf *d,
		    void (*fn)(void *ctx, uint64_t seq, void *buf, size_t len, uint32_t nrecords),
		    void *ctx, uint64_t *corrupt_records);
/* Appends one envelope. 0, or -errno (the envelope is then in memory only:
 * the caller must not pop it later). */
int ig_dbuf_append(struct ig_dbuf *d, uint64_t seq, const void *buf, size_t len, uint32_t nrecords);
/* The oldest envelope on disk is done. */
void ig_dbuf_pop(struct ig_dbuf *d);
/* Envelopes and bytes currently on disk. */
void ig_dbuf_usage(const struct ig_dbuf *d, uint64_t *envelopes, uint64_t *bytes);
void ig_dbuf_close(struct ig_dbuf *d);

#endif
