/* agents: what the aggregator knows about each agent that sends to it.
 *
 * Its first job is deduplication, the other half of acknowledged delivery:
 * an agent resends an envelope whose ack it did not see, so the aggregator
 * remembers, per agent_id and boot_id (one agent process), the highest seq it
 * has accepted; an envelope at or below it is a duplicate (acked again, not
 * processed again). Agents send one envelope at a time, in seq order, so one
 * number per (agent, boot) is enough; gaps are envelopes the agent itself
 * dropped (and counted as queue_overflow).
 *
 * With a state directory the seq is written to <state_dir>/agents/<agent_id>
 * after each accepted envelope, so an aggregator restarted after a crash still
 * recognises resends of what it had already processed. The write happens
 * after the backends were given the records and before the ack: a crash in
 * between (microseconds) can cause one duplicate envelope, never a loss.
 *
 * Bounded: at most max_agents agent_ids are kept (the state files too), and an
 * envelope whose seq is more than max_seq_gap ahead of the last accepted one
 * of its (known) agent process is refused without being remembered, so a
 * single forged seq of 2^64-1 cannot turn every later real envelope into a
 * "duplicate". A boot with no state yet is accepted at any seq (a new
 * process, or one that outlived this aggregator's state). With TLS the caller
 * only gets here once the envelope's agent_id has been matched to the
 * sender's certificate (server.c).
 *
 * It also keeps each agent's loss counters (cumulative, from the envelopes)
 * and traffic counts for status and logs.
 */
#ifndef IG_AGENTS_H
#define IG_AGENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "ig_err.h"
#include "ig_wire.h"

#define IG_AGENT_BOOTS 4

struct ig_agent_info {
	char *agent_id;
	char *node;
	struct {
		uint64_t boot_id;
		uint64_t seq;
	} boots[IG_AGENT_BOOTS]; /* most recent first */
	uint64_t envelopes, records, duplicates;
	uint64_t last_seen_ns; /* wall */
	uint32_t nlost;
	struct ig_wire_lost lost[IG_WIRE_MAX_LOST]; /* cause strings owned here */
	struct ig_agent_info *next;
};

struct ig_agents;

/* state_dir NULL or "" keeps state in memory only. */
int ig_agents_new(struct ig_agents **out, const char *state_dir, struct ig_err *err);
void ig_agents_free(struct ig_agents *a);
/* Bounds (0 = unlimited): distinct agents kept, and how far ahead of the last
 * accepted seq of an agent process an envelope may be. */
void ig_agents_set_limits(struct ig_agents *a, uint64_t max_agents, uint64_t max_seq_gap);

enum ig_agent_verdict {
	IG_AGENT_NEW = 0, /* not seen yet: process it, then ig_agents_accept */
	IG_AGENT_DUPLICATE, /* seq <= the last accepted for this (agent, boot) */
	IG_AGENT_LIMIT, /* a new agent_id while max_agents are known */
	IG_AGENT_SEQ_GAP, /* seq more than max_seq_gap ahead of a known boot's: refused */
};
/* What to do with this envelope. The caller has established that h->agent_id
 * is the sender's (its verified certificate carries it), or runs in
 * plaintext, where it cannot. */
enum ig_agent_verdict ig_agents_check(struct ig_agents *a, const struct ig_envelope_hdr *h);
/* True if this envelope was already accepted. */
bool ig_agents_is_duplicate(struct ig_agents *a, const struct ig_envelope_hdr *h);
/* Records an accepted envelope (persisting its seq) and updates loss counters.
 * Returns the number of records newly reported lost by the agent since the
 * previous envelope (0 if none). */
uint64_t ig_agents_accept(struct ig_agents *a, const struct ig_envelope_hdr *h);
void ig_agents_note_duplicate(struct ig_agents *a, const struct ig_envelope_hdr *h);
/* Calls fn for every agent seen (status output). */
void ig_agents_foreach(const struct ig_agents *a,
		       void (*fn)(void *ctx, const struct ig_agent_info *ai), void *ctx);
uint32_t ig_agents_count(const struct ig_agents *a);

#endif
