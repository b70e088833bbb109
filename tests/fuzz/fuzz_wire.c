/* fuzz_wire: the envelope decoder and the ack decoder on arbitrary bytes.
 *
 * ig_wire_peek_seq (the too_large path reads only the seq) runs on the same
 * bytes; when the full decoder accepts an envelope the peeked seq must agree.
 *
 * Beyond "no crash, no leak, no overread" it checks a round-trip property:
 * every envelope the decoder accepts (version 1 or 2) is made of records the
 * encoders of both versions also accept, and re-encoding them with each
 * gives an envelope that decodes to the same records. A disagreement
 * between any two sides aborts.
 *
 * Seeds: tests/fuzz/corpus/fuzz_wire/ (valid v1 and v2 envelopes of several
 * shapes, truncated ones, out-of-range indexes, acks).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ig_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(c) check_at((c), __LINE__)
/* Aborts naming the line, so a crash reproducer tells which property broke. */
static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_wire: check at line %d failed\n", line);
		abort();
	}
}

static int same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

static void same_record(const struct ig_record *a, const struct ig_record *b)
{
	check(same_str(a->kind, b->kind) && same_str(a->probe, b->probe) &&
	      same_str(a->comm, b->comm));
	check(a->ts_ns == b->ts_ns && a->pid == b->pid && a->tid == b->tid && a->ppid == b->ppid &&
	      a->uid == b->uid && a->gid == b->gid && a->cgroup_id == b->cgroup_id);
	check(same_str(a->id.scope, b->id.scope) && same_str(a->id.pod_name, b->id.pod_name) &&
	      same_str(a->id.cgroup_path, b->id.cgroup_path) && same_str(a->id.image, b->id.image));
	check(a->id.nlabels == b->id.nlabels && a->nfields == b->nfields);
	for (uint32_t i = 0; i < a->id.nlabels; i++)
		check(same_str(a->id.labels[i].key, b->id.labels[i].key) &&
		      same_str(a->id.labels[i].val, b->id.labels[i].val));
	for (uint32_t i = 0; i < a->nfields; i++) {
		check(same_str(a->fields[i].key, b->fields[i].key));
		check(a->fields[i].type == b->fields[i].type);
		if (a->fields[i].type == IG_F_STR)
			check(same_str(a->fields[i].s, b->fields[i].s));
		else
			check(a->fields[i].u == b->fields[i].u);
	}
}

/* Re-encodes what d decoded from data with encoder e, decodes that with d2
 * and checks both give the same envelope and records. */
static void roundtrip(struct ig_wire_dec *d, struct ig_wire_dec *d2, struct ig_wire_enc *e,
		      const uint8_t *data, size_t size)
{
	static struct ig_record r, r2;
	struct ig_envelope_hdr h, h2;
	struct ig_err err;
	void *buf = NULL;
	size_t len = 0;
	uint32_t n = 0;

	ig_wire_enc_reset(e);
	ig_err_init(&err);
	check(ig_wire_decode(d, data, size, &h, &err) == 0);
	while (ig_wire_next(d, &r) == 1) {
		check(r.arena_used <= sizeof(r.arena));
		check(ig_wire_enc_add(e, &r) == 0);
		n++;
	}
	check(n == h.nrecords);
	h.v = 0; /* the encoder's own version */
	check(ig_wire_enc_finish(e, &h, &buf, &len) == 0);
	ig_err_init(&err);
	check(ig_wire_decode(d2, buf, len, &h2, &err) == 0);
	check(h2.v == ig_wire_enc_version(e));
	check(h2.nrecords == h.nrecords && h2.seq == h.seq && h2.nlost == h.nlost &&
	      h2.boot_id == h.boot_id && h2.sent_ns == h.sent_ns);
	check(same_str(h2.agent_id, h.agent_id) && same_str(h2.node, h.node));
	for (uint32_t i = 0; i < h.nlost; i++)
		check(same_str(h.lost[i].cause, h2.lost[i].cause) &&
		      h.lost[i].count == h2.lost[i].count);
	/* Pair the records up again. */
	check(ig_wire_decode(d, data, size, &h, &err) == 0);
	while (ig_wire_next(d, &r) == 1) {
		check(ig_wire_next(d2, &r2) == 1);
		same_record(&r, &r2);
	}
	check(ig_wire_next(d2, &r2) == 0);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ig_record r;
	static struct ig_wire_dec *d, *d2;
	static struct ig_wire_enc *e1, *e2;
	struct ig_envelope_hdr h;
	struct ig_err err;
	uint64_t seq;
	enum ig_ack_status st;
	char msg[64];

	if (!e1) { /* once per process: the fuzzer runs millions of inputs */
		d = ig_wire_dec_new(NULL);
		d2 = ig_wire_dec_new(NULL);
		e1 = ig_wire_enc_new_version(1);
		e2 = ig_wire_enc_new_version(2);
		if (!d || !d2 || !e1 || !e2)
			abort();
	}
	ig_wire_ack_decode(data, size, &seq, &st, msg, sizeof(msg));
	uint64_t peeked = 0;
	int prv = ig_wire_peek_seq(data, size, &peeked);

	ig_err_init(&err);
	if (ig_wire_decode(d, data, size, &h, &err) == 0) {
		check(prv == 0 && peeked == h.seq);
		roundtrip(d, d2, e1, data, size);
		roundtrip(d, d2, e2, data, size);
	} else {
		check(ig_wire_next(d, &r) == 0);
	}
	return 0;
}
