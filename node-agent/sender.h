/* sender: the agent's side of acknowledged delivery.
 *
 * Sealed envelopes wait in a bounded in-memory queue. A sender thread sends
 * the oldest one over an nng REQ socket and waits for the aggregator's ack
 * (the REP reply) for that seq; only then is the envelope removed. On a
 * timeout or a lost connection the same bytes are sent again (nng redials with
 * backoff), so delivery is at-least-once from here and the aggregator's dedup
 * by (agent_id, boot_id, seq) makes it exactly-once in the normal case.
 *
 * The queue is bounded by envelope count and bytes; when full, the OLDEST
 * envelope is dropped (the newest data is usually the most useful during an
 * outage) and its records are counted as lost "queue_overflow". An envelope
 * the aggregator rejects as malformed is dropped and counted "rejected".
 *
 * With a buffer directory the queue is also on disk (disk_buffer.h): every
 * envelope is appended there before it is queued and removed when it leaves
 * the queue, and a new sender first queues what an earlier process left, so
 * the queue survives a crash or restart of the agent. The bound is the same
 * (envelopes and bytes); what the bound drops is counted as before.
 *
 * Why REQ/REP: each request carries exactly one envelope and its reply is the
 * ack, so the protocol itself pairs acks with envelopes; nng reconnects
 * transparently; one request in flight per agent is enough (an envelope holds
 * hundreds of records and a loopback round trip is tens of µs), which keeps
 * ordering trivial and the aggregator's dedup state one number per agent.
 */
#ifndef IG_SENDER_H
#define IG_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"

struct ig_sender;

struct ig_sender_opts {
	const char *url;
	/* Several addresses behind url's name (a headless Service): dial the one
	 * aggr_pick.h ranks first for pick_key, re-resolving every
	 * resolve_interval_ns (0: resolve once) and moving when that changes. */
	const char *pick_key;
	uint64_t resolve_interval_ns;
	uint64_t queue_max_batches;
	uint64_t queue_max_bytes;
	uint64_t ack_timeout_ns;
	uint64_t reconnect_min_ns, reconnect_max_ns;
	/* tls+tcp:// URLs: the directory with tls.crt/tls.key/ca.crt and the
	 * name the aggregator's certificate must carry ("" = the URL's host). */
	const char *tls_dir;
	const char *tls_server_name;
	const char *buffer_dir; /* NULL or "" = memory only */
	bool buffer_dir_is_default; /* unusable default: warn, memory only */
	bool buffer_fsync;
};

struct ig_sender_stats {
	uint64_t batches_sent; /* envelopes acked (ok or duplicate) */
	uint64_t records_acked;
	uint64_t resends; /* sends after a timeout / reconnect */
	uint64_t duplicates; /* acks saying "already had it" */
	uint64_t lost_queue_overflow; /* records dropped with the oldest envelopes */
	uint64_t lost_rejected; /* records in envelopes the aggregator rejected */
	uint64_t lost_buffer_corrupt; /* records in damaged disk buffer frames (at start) */
	uint64_t buffer_errors; /* envelopes that could not be written to the buffer */
	uint64_t buffered_records; /* queued records that are on disk */
	uint64_t replayed_records; /* queued at start from an earlier run's buffer */
	uint64_t queued_batches, queued_bytes, queued_records;
	uint64_t moves; /* switches to another aggregator replica */
	int connected;
};

int ig_sender_new(struct ig_sender **out, const struct ig_sender_opts *o, struct ig_err *err);
/* Takes ownership of buf (malloc'd envelope bytes). Never blocks. */
void ig_sender_enqueue(struct ig_sender *s, uint64_t seq, void *buf, size_t len, uint32_t nrecords);
/* Waits until the queue is empty or timeout; returns records still unacked. */
uint64_t ig_sender_drain(struct ig_sender *s, uint64_t timeout_ns);
void ig_sender_stats(struct ig_sender *s, struct ig_sender_stats *st);
/* Re-reads the TLS files when they changed (call it now and then, e.g. every
 * second): new connections use the new certificate; the established one
 * continues, so nothing queued or in flight is lost. A file set that does not
 * load is logged and the previous one kept. */
void ig_sender_tls_check(struct ig_sender *s);
/* The URL being dialed (a replica's address when url names several), copied. */
void ig_sender_target(struct ig_sender *s, char *out, size_t outlen);
/* Stops the thread and frees everything, unacked envelopes included. */
void ig_sender_free(struct ig_sender *s);

#endif
