/* spool: a bounded disk spool and retry engine for batching backends (S3,
 * Datadog API).
 *
 * A backend closes a batch (an opaque payload plus a destination key and a
 * record count) and pushes it here. With a spool directory the batch is
 * first written to disk (write to a temporary name, fsync, rename), so it
 * survives a crash or a restart; then a worker thread delivers batches oldest
 * first through the backend's deliver callback, which answers:
 *
 *   OK     delivered: the file is removed;
 *   RETRY  transient failure (5xx, timeout, refused): retried after an
 *          exponential backoff with jitter, the batch stays first in line;
 *   HALT   needs an operator (bad credentials, no such bucket): the batch is
 *          kept and deliveries stop until the backend restarts (reload or
 *          process restart), with one clear error in the log;
 *   DROP   this batch can never be delivered (rejected as malformed): it is
 *          removed and counted as dropped.
 *
 * The spool is bounded by max_bytes of payload: pushing past the bound drops
 * the oldest batches (not the one being sent), counted. At start the
 * directory is scanned and what earlier runs left is queued first. Several
 * instances never share a directory at once: each takes an flock on
 * <dir>/.lock (a reload's new instance waits for the old one to let go,
 * then adopts its files). Without a directory, batches are kept in memory
 * under the same bound and are lost (counted) if still queued at exit.
 *
 * Open-batch journals ("acked means durable"). A backend that keeps an open
 * batch in memory (S3's batch, Datadog's interval) makes what each envelope
 * added durable before the aggregator acks it: in its sync() it appends the
 * new records to a journal, <dir>/<created_ns>-<rand>.journal (ig_wal.h
 * frames: first the key the batch will have when it closes, then one frame
 * per sync with the records' bytes in the backend's own encoding),
 * fdatasync'd when fsync is on (one write and one fdatasync per envelope: the
 * envelope is the group of the group commit). When the batch closes and
 * ig_spool_push has stored it, ig_spool_journal_end removes the journal. At
 * start (or when a reload's instance adopts the directory) every journal left
 * by an earlier instance becomes a closed batch again through the backend's
 * journal_to_batch callback, with the key it names; a journal whose key is
 * already spooled (a crash between storing the batch and removing the
 * journal) is removed instead, so nothing is stored twice. A torn or corrupt
 * tail (a machine crash during the last write, never acked) is detected by
 * its checksum, counted in journal_lost_records and skipped.
 *
 * When the disk refuses a batch (full, read-only), the batch is held in
 * memory (memory_batches/memory_records) and its journal, written while the
 * disk still had room, is kept until the batch is delivered: a crash then
 * loses only what could not be journaled either (journal_errors,
 * journal_unsynced_records).
 *
 * Delivery is at least once: a batch whose upload succeeded but whose
 * acknowledgement was lost is sent again. Callers that can make redelivery
 * idempotent (S3: the object key is chosen when the batch closes and stored
 * with it) do so.
 */
#ifndef IG_SPOOL_H
#define IG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"

struct ig_batch {
	char *key; /* destination (object key, endpoint path...) */
	uint64_t records; /* metrics it holds, for counting */
	uint64_t created_ns; /* wall clock when it was closed */
	void *data; /* payload */
	size_t len;
};

enum ig_deliver { IG_DELIVER_OK = 0, IG_DELIVER_RETRY, IG_DELIVER_HALT, IG_DELIVER_DROP };

/* Called from the worker thread (or from ig_spool_step). `why` receives a
 * one-line reason for anything but OK. */
typedef enum ig_deliver (*ig_deliver_fn)(void *ctx, const struct ig_batch *b, char *why,
					 size_t whylen);
/* Turns a recovered journal (the concatenated payloads of its frames) back
 * into a closed batch: fills out->data/len (malloc'd) and out->records; the
 * spool sets out->key. May run on the worker thread: use only immutable
 * configuration. Returns 0 or -errno (the journal is then kept). */
typedef int (*ig_journal_fn)(void *ctx, const char *key, const void *data, size_t len,
			     uint64_t records, struct ig_batch *out);

struct ig_spool_conf {
	const char *name; /* backend name, for logs */
	const char *dir; /* NULL or "" = memory only */
	uint64_t max_bytes; /* bound on queued payload bytes */
	uint64_t backoff_min_ns; /* first retry delay (0 = 1 s) */
	uint64_t backoff_max_ns; /* cap (0 = 5 min) */
	bool fsync; /* fsync each spooled file before it counts as stored */
	bool manual; /* no worker thread: the caller runs ig_spool_step (tests) */
	unsigned seed; /* jitter PRNG seed; 0 = from the clock */
	ig_journal_fn journal_to_batch; /* NULL: the backend keeps no journal */
};

struct ig_spool_stats {
	uint64_t queued_batches, queued_bytes, queued_records;
	uint64_t delivered_batches, delivered_records;
	uint64_t dropped_batches, dropped_records; /* over the bound, rejected, corrupt */
	uint64_t failed_attempts; /* RETRY/HALT answers */
	uint64_t recovered_batches; /* found on disk at start */
	uint64_t memory_batches, memory_records; /* held in memory: the disk refused them */
	uint64_t journal_records; /* in the open journal (durable, batch not closed) */
	uint64_t journal_errors; /* journal writes that failed (disk full...) */
	uint64_t journal_unsynced_records; /* total: acked without being journaled */
	uint64_t recovered_journals, recovered_journal_records;
	uint64_t journal_lost_records; /* torn/corrupt journal tails found at start */
	uint64_t crash_lost_records; /* acked, never journaled, lost by the previous run */
	bool halted;
};

struct ig_spool;

/* Creates the directory if needed. Errors (directory not creatable/writable)
 * are reported in err with what to do; returns -errno. */
int ig_spool_new(const struct ig_spool_conf *conf, ig_deliver_fn fn, void *ctx,
		 struct ig_spool **out, struct ig_err *err);
/* Queues b (takes ownership of b->key and b->data, also on error; b is
 * cleared). Returns 0, or -errno when the spool file could not be written
 * (the batch is then kept in memory, still bounded). */
int ig_spool_push(struct ig_spool *s, struct ig_batch *b);
/* Appends one frame of `records` records to the journal of the open batch
 * that will be pushed with `key` (opening the journal on first use), and
 * fdatasyncs it when fsync is on. Aggregator thread only. Returns 0, or
 * -errno when the bytes could not be made durable (counted; the caller still
 * holds the records in memory). Without a directory: 0, nothing written. */
int ig_spool_journal_append(struct ig_spool *s, const char *key, const void *data, size_t len,
			    uint64_t records);
/* The open batch was pushed (or discarded): its journal is removed unless a
 * memory-held batch still depends on it. */
void ig_spool_journal_end(struct ig_spool *s);
/* Manual mode: makes at most one delivery attempt if the oldest batch is due
 * at now_ns. Returns 1 when it attempted, 0 when nothing was due. */
int ig_spool_step(struct ig_spool *s, uint64_t now_ns);
/* Monotonic time at which the next attempt is due; UINT64_MAX when none. */
uint64_t ig_spool_next_due(struct ig_spool *s);
/* Waits up to timeout_ns for the queue to empty (retries keep their
 * backoff); returns early when the spool halts. What is left stays spooled.
 * 0 when empty, -ETIMEDOUT or -EAGAIN (halted, or manual mode) otherwise. */
int ig_spool_drain(struct ig_spool *s, uint64_t timeout_ns);
void ig_spool_stats(struct ig_spool *s, struct ig_spool_stats *st);
/* True once ig_spool_free has begun (an ig_http abort callback: the
 * delivery in progress is abandoned, its batch stays spooled). */
bool ig_spool_stopping(void *spool);
/* Shutdown bound: between begin and end (ig_graph_flush), every
 * ig_spool_drain counts its timeout from the moment of begin, so backends
 * drained one after the other share one shutdown_timeout instead of adding
 * theirs up. */
void ig_spool_flush_begin(void);
/* After a drain that timed out at shutdown: tells the worker to stop and
 * abandon the delivery in progress now (ig_spool_free then joins it),
 * so backends flushed one after the other abandon theirs in parallel. */
void ig_spool_stop(struct ig_spool *s);
void ig_spool_flush_end(void);
/* Stops the worker after its current attempt and frees; spooled files stay. */
void ig_spool_free(struct ig_spool *s);
void ig_batch_clear(struct ig_batch *b);

#endif
