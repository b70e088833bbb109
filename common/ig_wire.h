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
 * validates every record before the caller sees the first). Keys it does not
 * know (at envelope, record and "id" level, and in acks) are skipped, so a
 * newer agent may add keys an older aggregator ignores; a key it knows must
 * have its type. A change that old decoders would misread bumps the version.
 */
#ifndef IG_WIRE_H
#define IG_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"
#include "ig_record.h"

/* The envelope version this code writes by default, and the oldest it
 * still reads (rolling upgrades: docs/wire-format.md, "Versioning"). Acks
 * keep their own version, 1, which every agent speaks. */
#define IG_WIRE_VERSION 2
#define IG_WIRE_VERSION_MIN 1
#define IG_WIRE_ACK_VERSION 1
/* v2: strings in one envelope's string table, identities in its identity
 * table (each also bounded by max_msg_bytes, since an entry takes at least
 * one byte). */
#define IG_WIRE_MAX_STRINGS (1u << 20)
#define IG_WIRE_MAX_LOST 16
/* Containers nested in an envelope, the envelope map included (the schema
 * itself needs 5: envelope, records, record, id, lbl). */
#define IG_WIRE_MAX_DEPTH 8
/* Unknown keys one map may carry (forward compatibility, bounded). */
#define IG_WIRE_MAX_UNKNOWN 32
#define IG_WIRE_DEFAULT_MAX_MSG (16u << 20)
#define IG_WIRE_DEFAULT_MAX_RECORDS 65536
#define IG_WIRE_DEFAULT_MAX_STR 8192
/* Acks: at most this big, and the err text is cut to IG_WIRE_ACK_MAX_ERR. */
#define IG_WIRE_ACK_MAX_BYTES 65536
#define IG_WIRE_ACK_MAX_ERR 8192

enum ig_ack_status { IG_ACK_OK = 0, IG_ACK_DUPLICATE = 1, IG_ACK_REJECTED = 2 };

struct ig_wire_lost {
	const char *cause; /* "ringbuf_full", "queue_overflow", "rejected", ... */
	uint64_t count; /* cumulative since the agent started */
};

struct ig_envelope_hdr {
	uint32_t v;
	const char *agent_id;
	const char *node;
	uint64_t boot_id; /* random per agent process start */
	uint64_t seq; /* 1, 2, 3... per boot_id */
	uint64_t sent_ns;
	uint32_t nlost;
	struct ig_wire_lost lost[IG_WIRE_MAX_LOST];
	uint32_t nrecords;
};

struct ig_wire_limits {
	size_t max_msg_bytes; /* default 16 MiB */
	uint32_t max_records; /* default 65536 */
	uint32_t max_str; /* default 8192 bytes for any one string */
};
void ig_wire_limits_default(struct ig_wire_limits *l);

/* --- encoding (agent) --- */
struct ig_wire_enc;
/* An encoder of IG_WIRE_VERSION envelopes. */
struct ig_wire_enc *ig_wire_enc_new(void);
/* An encoder of envelopes of version `version` (1 or 2; 0 = IG_WIRE_VERSION),
 * e.g. for agents that must talk to aggregators not yet upgraded. NULL on
 * allocation failure or an unknown version. */
struct ig_wire_enc *ig_wire_enc_new_version(unsigned version);
unsigned ig_wire_enc_version(const struct ig_wire_enc *e);
void ig_wire_enc_free(struct ig_wire_enc *e);
/* Starts a new batch (forgets the previous one's records). */
void ig_wire_enc_reset(struct ig_wire_enc *e);
/* Appends one record. -EINVAL when the aggregator (default limits) would
 * reject it: no kind, a NULL or empty field or label key, a duplicate key,
 * more than IG_MAX_FIELDS/IG_MAX_LABELS, a string longer than
 * IG_WIRE_DEFAULT_MAX_STR, or strings that would not fit a decoded record's
 * arena. -ENOMEM on allocation failure. The batch is unchanged on error.
 * NULL probe/comm are sent as "". */
int ig_wire_enc_add(struct ig_wire_enc *e, const struct ig_record *r);
uint32_t ig_wire_enc_count(const struct ig_wire_enc *e);
size_t ig_wire_enc_bytes(const struct ig_wire_enc *e);
/* Builds the envelope (hdr->nrecords is taken from the encoder; hdr->v 0
 * means the encoder's version; another value is written as is, for tests)
 * into a newly malloc'd buffer that the caller frees.
 * The batch is kept (enc_reset starts the next). 0, -EINVAL (nlost >
 * IG_WIRE_MAX_LOST or a NULL cause) or -ENOMEM. */
int ig_wire_enc_finish(struct ig_wire_enc *e, const struct ig_envelope_hdr *hdr, void **buf,
		       size_t *len);

/* --- decoding (aggregator) --- */
struct ig_wire_dec;
/* Reads only the envelope's seq (the first top-level "seq" key), for a reply
 * to an envelope that is not decoded (too large): 0, -EBADMSG or -ENOENT. */
int ig_wire_peek_seq(const void *buf, size_t len, uint64_t *seq);
/* limits NULL, or a member 0: the default. NULL on allocation failure. */
struct ig_wire_dec *ig_wire_dec_new(const struct ig_wire_limits *limits);
void ig_wire_dec_free(struct ig_wire_dec *d);
/* Parses and validates a whole envelope of any version from
 * IG_WIRE_VERSION_MIN to IG_WIRE_VERSION (hdr->v says which) (buf is copied: the caller may free
 * it at once). On success fills *hdr (strings live until the next decode or
 * free) and prepares record iteration. -EBADMSG with messages in err (which
 * field, what was wrong) otherwise; hdr->seq is then still set when it could
 * be read, so the rejection can be acked against it. */
int ig_wire_decode(struct ig_wire_dec *d, const void *buf, size_t len, struct ig_envelope_hdr *hdr,
		   struct ig_err *err);
/* Fills r with the next record (r->node = hdr node). 1 = a record, 0 = no
 * more. Cannot fail after a successful ig_wire_decode. The record's strings
 * are valid until the next ig_wire_decode or ig_wire_dec_free: in r's arena
 * (version 1) or in the decoder's string table (version 2). */
int ig_wire_next(struct ig_wire_dec *d, struct ig_record *r);

/* --- acks --- */
/* Into a newly malloc'd buffer (caller frees). errmsg may be NULL. 0,
 * -EINVAL (unknown status) or -ENOMEM. */
int ig_wire_ack_encode(uint64_t seq, enum ig_ack_status st, const char *errmsg, void **buf,
		       size_t *len);
/* errbuf receives the err text ("" if none; cut to errlen). -EBADMSG on a
 * malformed ack (then *seq and *st are untouched). */
int ig_wire_ack_decode(const void *buf, size_t len, uint64_t *seq, enum ig_ack_status *st,
		       char *errbuf, size_t errlen);

#endif
