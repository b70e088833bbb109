/* ig_wire: the agent -> aggregator wire format (msgpack), see docs/wire-format.md.
 *
 * An envelope is one nng message: a msgpack map
 *   {v, agent_id, node, boot_id, seq, sent_ns, lost{cause: count}, records[...]}
 * Each record is a map with short keys (k, p, ts, pid, tid, ppid, uid, gid,
 * comm, cg, id{...}, f{...}). The aggregator answers every envelope with an
 * ack {v, seq, st, err}: st 0 = accepted, 1 = duplicate (already accepted),
 * 2 = rejected (malformed; the agent drops it and counts it lost).
 *
 * The decoder treats its input as hostile: every type, length, count and
 * nesting depth is checked against struct ig_wire_limits before anything is
 * used, and an envelope is accepted or rejected whole (ig_wire_decode
 * validates every record before the caller sees the first).
 */
#ifndef IG_WIRE_H
#define IG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"
#include "ig_record.h"

#define IG_WIRE_VERSION 1
#define IG_WIRE_MAX_LOST 16

enum ig_ack_status { IG_ACK_OK = 0, IG_ACK_DUPLICATE = 1, IG_ACK_REJECTED = 2 };

struct ig_wire_lost {
	const char *cause; /* "ringbuf_full", "queue_overflow", "rejected", ... */
	uint64_t count;	   /* cumulative since the agent started */
};

struct ig_envelope_hdr {
	uint32_t v;
	const char *agent_id;
	const char *node;
	uint64_t boot_id; /* random per agent process start */
	uint64_t seq;	  /* 1, 2, 3... per boot_id */
	uint64_t sent_ns;
	uint32_t nlost;
	struct ig_wire_lost lost[IG_WIRE_MAX_LOST];
	uint32_t nrecords;
};

struct ig_wire_limits {
	size_t max_msg_bytes; /* default 16 MiB */
	uint32_t max_records; /* default 65536 */
	uint32_t max_str;     /* default 8192 bytes for any one string */
};
void ig_wire_limits_default(struct ig_wire_limits *l);

/* --- encoding (agent) --- */
struct ig_wire_enc;
struct ig_wire_enc *ig_wire_enc_new(void);
void ig_wire_enc_free(struct ig_wire_enc *e);
/* Starts a new batch (forgets the previous one's records). */
void ig_wire_enc_reset(struct ig_wire_enc *e);
/* Appends one record; -ENOMEM on allocation failure. */
int ig_wire_enc_add(struct ig_wire_enc *e, const struct ig_record *r);
uint32_t ig_wire_enc_count(const struct ig_wire_enc *e);
size_t ig_wire_enc_bytes(const struct ig_wire_enc *e);
/* Builds the envelope (hdr->nrecords is taken from the encoder) into a newly
 * malloc'd buffer that the caller frees. 0 or -ENOMEM. */
int ig_wire_enc_finish(struct ig_wire_enc *e, const struct ig_envelope_hdr *hdr, void **buf,
		       size_t *len);

/* --- decoding (aggregator) --- */
struct ig_wire_dec;
struct ig_wire_dec *ig_wire_dec_new(const struct ig_wire_limits *limits);
void ig_wire_dec_free(struct ig_wire_dec *d);
/* Parses and validates a whole envelope. On success fills *hdr (strings live
 * until the next decode or free) and prepares record iteration. -EBADMSG with
 * messages in err (which field, what was wrong) otherwise. */
int ig_wire_decode(struct ig_wire_dec *d, const void *buf, size_t len, struct ig_envelope_hdr *hdr,
		   struct ig_err *err);
/* Fills r with the next record (r->node = hdr node). 1 = a record, 0 = no
 * more. Cannot fail after a successful ig_wire_decode. */
int ig_wire_next(struct ig_wire_dec *d, struct ig_record *r);

/* --- acks --- */
int ig_wire_ack_encode(uint64_t seq, enum ig_ack_status st, const char *errmsg, void **buf,
		       size_t *len);
/* errbuf receives the err text ("" if none). -EBADMSG on a malformed ack. */
int ig_wire_ack_decode(const void *buf, size_t len, uint64_t *seq, enum ig_ack_status *st,
		       char *errbuf, size_t errlen);

#endif
