/* test_wire: the agent -> aggregator wire format (common/ig_wire*.c).
 *
 * Round trips go through the real encoder and decoder. Rejections are built
 * two ways: by cutting or corrupting encoder output, and from a small tree
 * of msgpack values (struct node) that starts as a valid envelope and is
 * edited by path ("records[0].f.path") before it is packed, so each schema
 * rule is broken on its own and the error must name the place.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "ig_mpack.h"
#include "ig_wire.h"

/* ------------------------------------------------------------------ */
/* Fixtures                                                             */

/* The version the encoder-based tests run with: main() runs them once per
 * version (1 and 2). The hand-built-tree tests are of version 1; version 2
 * has its own below. */
static unsigned g_version = 1;

static struct ig_wire_enc *enc_new(void)
{
	struct ig_wire_enc *e = ig_wire_enc_new_version(g_version);

	assert_non_null(e);
	assert_int_equal(ig_wire_enc_version(e), g_version);
	return e;
}

/* Where the records are, in messages: "records[1]" (v1), "rec[1]" (v2). */
static const char *recs_name(void)
{
	return g_version == 1 ? "records" : "rec";
}

static struct ig_record *rec_new(void)
{
	struct ig_record *r = malloc(sizeof(*r));

	assert_non_null(r);
	ig_record_reset(r);
	return r;
}

/* A record using every part of the schema. */
static void fill_full(struct ig_record *r, unsigned i)
{
	char path[64];

	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->ts_ns = 1700000000123456789ULL + i;
	r->pid = 4242 + i;
	r->tid = 4243 + i;
	r->ppid = 1;
	r->uid = UINT32_MAX;
	r->gid = 0;
	r->comm = "cat";
	r->cgroup_id = 0xfeedfacecafebeefULL;
	r->id.scope = "pod";
	r->id.runtime = "containerd";
	r->id.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	r->id.pod_uid = "8a1e2c34-5b6d-4e7f-8091-a2b3c4d5e6f7";
	r->id.pod_name = "web-7d9f8b6c5-x2x4z";
	r->id.namespace_ = "shop";
	r->id.container_name = "nginx";
	r->id.image = "docker.io/library/nginx:1.25";
	r->id.owner_kind = "Deployment";
	r->id.owner_name = "web";
	r->id.cgroup_path = "/kubepods.slice/kubepods-pod8a1e.slice/cri-containerd-0123.scope";
	assert_int_equal(ig_record_add_label(r, "app", "web"), 0);
	assert_int_equal(ig_record_add_label(r, "tier", ""), 0);
	snprintf(path, sizeof(path), "/etc/passwd.%u", i);
	assert_int_equal(ig_record_add_str(r, "path", path, strlen(path)), 0);
	assert_int_equal(ig_record_add_uint(r, "flags", 0x80000), 0);
	assert_int_equal(ig_record_add_int(r, "ret", -2), 0);
	assert_int_equal(ig_record_add_int(r, "fd", 3), 0); /* signed, not negative */
	assert_int_equal(ig_record_add_int(r, "min", INT64_MIN), 0);
	assert_int_equal(ig_record_add_int(r, "max", INT64_MAX), 0);
	assert_int_equal(ig_record_add_uint(r, "umax", UINT64_MAX), 0);
	assert_int_equal(ig_record_add_int(r, "i16", -300), 0);
	assert_int_equal(ig_record_add_int(r, "i32", -70000), 0);
	assert_int_equal(ig_record_add_uint(r, "u16", 300), 0);
	assert_int_equal(ig_record_add_str(r, "empty", "", 0), 0);
}

static void hdr_init(struct ig_envelope_hdr *h, uint64_t seq)
{
	memset(h, 0, sizeof(*h));
	h->v = 0; /* the encoder's */
	h->agent_id = "agent-1";
	h->node = "node-a";
	h->boot_id = 0x1122334455667788ULL;
	h->seq = seq;
	h->sent_ns = 1700000001000000000ULL;
	h->lost[h->nlost++] = (struct ig_wire_lost){ "ringbuf_full", 7 };
	h->lost[h->nlost++] = (struct ig_wire_lost){ "queue_overflow", 0 };
}

/* An envelope of n full records. */
static void encode_n(unsigned n, void **buf, size_t *len)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;

	assert_non_null(e);
	for (unsigned i = 0; i < n; i++) {
		fill_full(r, i);
		assert_int_equal(ig_wire_enc_add(e, r), 0);
	}
	assert_int_equal(ig_wire_enc_count(e), n);
	hdr_init(&h, 42);
	assert_int_equal(ig_wire_enc_finish(e, &h, buf, len), 0);
	ig_wire_enc_free(e);
	free(r);
}

static int decode(const void *buf, size_t len, struct ig_envelope_hdr *h, struct ig_err *err,
		  const struct ig_wire_limits *lim)
{
	struct ig_wire_dec *d = ig_wire_dec_new(lim);
	struct ig_record *r = rec_new();
	int rv;

	assert_non_null(d);
	ig_err_init(err);
	rv = ig_wire_decode(d, buf, len, h, err);
	if (rv == 0) {
		uint32_t n = 0;
		while (ig_wire_next(d, r) == 1)
			n++;
		assert_int_equal(n, h->nrecords);
	} else {
		assert_int_equal(rv, -EBADMSG);
		assert_true(err->n > 0);
		assert_int_equal(ig_wire_next(d, r), 0);
	}
	ig_wire_dec_free(d);
	free(r);
	return rv;
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_record_equal(const struct ig_record *a, const struct ig_record *b)
{
	assert_string_equal(a->kind, b->kind);
	assert_string_equal(a->probe, b->probe);
	assert_string_equal(a->comm, b->comm);
	assert_true(a->ts_ns == b->ts_ns);
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->tid, b->tid);
	assert_int_equal(a->ppid, b->ppid);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_true(a->cgroup_id == b->cgroup_id);
	assert_str_eq_or_null(a->id.scope, b->id.scope);
	assert_str_eq_or_null(a->id.runtime, b->id.runtime);
	assert_str_eq_or_null(a->id.container_id, b->id.container_id);
	assert_str_eq_or_null(a->id.pod_uid, b->id.pod_uid);
	assert_str_eq_or_null(a->id.pod_name, b->id.pod_name);
	assert_str_eq_or_null(a->id.namespace_, b->id.namespace_);
	assert_str_eq_or_null(a->id.container_name, b->id.container_name);
	assert_str_eq_or_null(a->id.image, b->id.image);
	assert_str_eq_or_null(a->id.owner_kind, b->id.owner_kind);
	assert_str_eq_or_null(a->id.owner_name, b->id.owner_name);
	assert_str_eq_or_null(a->id.cgroup_path, b->id.cgroup_path);
	assert_int_equal(a->id.nlabels, b->id.nlabels);
	for (uint32_t i = 0; i < a->id.nlabels; i++) {
		assert_string_equal(a->id.labels[i].key, b->id.labels[i].key);
		assert_string_equal(a->id.labels[i].val, b->id.labels[i].val);
	}
	assert_int_equal(a->nfields, b->nfields);
	for (uint32_t i = 0; i < a->nfields; i++) {
		const struct ig_field *x = &a->fields[i], *y = &b->fields[i];
		assert_string_equal(x->key, y->key);
		assert_int_equal(x->type, y->type);
		if (x->type == IG_F_STR)
			assert_string_equal(x->s, y->s);
		else
			assert_true(x->u == y->u);
	}
}

/* ------------------------------------------------------------------ */
/* Round trips                                                          */

static void test_roundtrip_keeps_every_field_type_identity_and_labels(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *in = rec_new(), *out = rec_new(), *bare = rec_new();
	struct ig_envelope_hdr h, got;
	struct ig_err err;
	void *buf;
	size_t len;

	fill_full(in, 0);
	bare->kind = "proc.exec"; /* no identity, no fields, NULL probe and comm */
	bare->pid = 1;
	assert_int_equal(ig_wire_enc_add(e, in), 0);
	assert_int_equal(ig_wire_enc_add(e, bare), 0);
	assert_true(ig_wire_enc_bytes(e) > 0);
	hdr_init(&h, 9);
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);

	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, buf, len, &got, &err), 0);
	free(buf); /* the decoder keeps its own copy */
	assert_int_equal(got.v, g_version);
	assert_string_equal(got.agent_id, "agent-1");
	assert_string_equal(got.node, "node-a");
	assert_true(got.boot_id == h.boot_id);
	assert_true(got.seq == 9);
	assert_true(got.sent_ns == h.sent_ns);
	assert_int_equal(got.nlost, 2);
	assert_string_equal(got.lost[0].cause, "ringbuf_full");
	assert_true(got.lost[0].count == 7);
	assert_string_equal(got.lost[1].cause, "queue_overflow");
	assert_int_equal(got.nrecords, 2);

	assert_int_equal(ig_wire_next(d, out), 1);
	assert_record_equal(out, in);
	assert_string_equal(out->node, "node-a");
	/* Signedness survives even for non-negative values. */
	assert_int_equal(ig_record_field(out, "fd")->type, IG_F_INT);
	assert_int_equal(ig_record_field(out, "flags")->type, IG_F_UINT);
	assert_true(ig_record_field(out, "min")->i == INT64_MIN);
	assert_true(ig_record_field(out, "umax")->u == UINT64_MAX);

	assert_int_equal(ig_wire_next(d, out), 1);
	assert_string_equal(out->kind, "proc.exec");
	assert_string_equal(out->probe, "");
	assert_string_equal(out->comm, "");
	assert_null(out->id.scope);
	assert_null(out->id.pod_name);
	assert_int_equal(out->id.nlabels, 0);
	assert_int_equal(out->nfields, 0);
	assert_int_equal(ig_wire_next(d, out), 0);
	assert_int_equal(ig_wire_next(d, out), 0);

	ig_wire_enc_free(e);
	ig_wire_dec_free(d);
	free(in);
	free(out);
	free(bare);
}

static void test_empty_batch_roundtrips(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_envelope_hdr h, got;
	struct ig_err err;
	void *buf;
	size_t len;

	hdr_init(&h, 1);
	h.nlost = 0;
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	assert_int_equal(decode(buf, len, &got, &err, NULL), 0);
	assert_int_equal(got.nrecords, 0);
	assert_int_equal(got.nlost, 0);
	free(buf);
	ig_wire_enc_free(e);
}

static void test_encoder_reset_starts_a_new_batch(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h, got;
	struct ig_err err;
	void *buf;
	size_t len;

	fill_full(r, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ig_wire_enc_add(e, r), 0);
	ig_wire_enc_reset(e);
	assert_int_equal(ig_wire_enc_count(e), 0);
	assert_int_equal(ig_wire_enc_bytes(e), 0);
	assert_int_equal(ig_wire_enc_add(e, r), 0);
	hdr_init(&h, 2);
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	assert_int_equal(decode(buf, len, &got, &err, NULL), 0);
	assert_int_equal(got.nrecords, 1);
	free(buf);
	free(r);
	ig_wire_enc_free(e);
}

static void test_decoder_is_reusable_and_resets_after_a_rejection(void **state)
{
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(3, &buf, &len);
	for (int round = 0; round < 3; round++) {
		ig_err_init(&err);
		assert_int_equal(ig_wire_decode(d, buf, len, &h, &err), 0);
		assert_int_equal(ig_wire_next(d, r), 1);
		/* A bad envelope in the middle of an iteration ends it. */
		ig_err_init(&err);
		assert_int_equal(ig_wire_decode(d, buf, len - 1, &h, &err), -EBADMSG);
		assert_int_equal(ig_wire_next(d, r), 0);
	}
	free(buf);
	free(r);
	ig_wire_dec_free(d);
}

static void test_limits_at_their_maximum_are_accepted(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = rec_new(), *out = rec_new();
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_envelope_hdr h, got;
	struct ig_err err;
	static char big[IG_WIRE_DEFAULT_MAX_STR + 1];
	static char keys[IG_MAX_FIELDS][16];
	static char lkeys[IG_MAX_LABELS][16];
	static char causes[IG_WIRE_MAX_LOST][16];
	void *buf;
	size_t len;

	memset(big, 'x', IG_WIRE_DEFAULT_MAX_STR);
	r->kind = "big";
	r->probe = "p";
	r->comm = "c";
	assert_int_equal(ig_record_add_str(r, "s", big, IG_WIRE_DEFAULT_MAX_STR), 0);
	for (int i = 1; i < IG_MAX_FIELDS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "f%d", i);
		assert_int_equal(ig_record_add_uint(r, keys[i], (uint64_t)i), 0);
	}
	for (int i = 0; i < IG_MAX_LABELS; i++) {
		snprintf(lkeys[i], sizeof(lkeys[i]), "l%d", i);
		assert_int_equal(ig_record_add_label(r, lkeys[i], "v"), 0);
	}
	assert_int_equal(ig_wire_enc_add(e, r), 0);
	hdr_init(&h, 3);
	h.nlost = 0;
	for (int i = 0; i < IG_WIRE_MAX_LOST; i++) {
		snprintf(causes[i], sizeof(causes[i]), "c%d", i);
		h.lost[h.nlost++] = (struct ig_wire_lost){ causes[i], (uint64_t)i };
	}
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, buf, len, &got, &err), 0);
	assert_int_equal(got.nlost, IG_WIRE_MAX_LOST);
	assert_int_equal(ig_wire_next(d, out), 1);
	assert_record_equal(out, r);
	assert_int_equal(strlen(ig_record_field(out, "s")->s), IG_WIRE_DEFAULT_MAX_STR);
	free(buf);
	free(r);
	free(out);
	ig_wire_enc_free(e);
	ig_wire_dec_free(d);
}

static void test_encoder_refuses_records_the_decoder_would_reject(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = rec_new();
	static char big[IG_WIRE_DEFAULT_MAX_STR + 2];

	memset(big, 'y', sizeof(big) - 1);
	/* no kind */
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	r->kind = "";
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* empty field key */
	fill_full(r, 0);
	r->fields[0].key = "";
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* duplicate field key */
	fill_full(r, 0);
	r->fields[1].key = "path";
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* duplicate label key */
	fill_full(r, 0);
	r->id.labels[1].key = "app";
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* unknown field type */
	fill_full(r, 0);
	r->fields[0].type = (enum ig_ftype)9;
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* string over the default max_str */
	fill_full(r, 0);
	r->comm = big;
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* two maximal strings: the decoded record's arena could not hold them */
	ig_record_reset(r);
	r->kind = "k";
	big[IG_WIRE_DEFAULT_MAX_STR] = '\0';
	r->comm = big;
	r->probe = big;
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	/* more fields than a record holds */
	fill_full(r, 0);
	r->nfields = IG_MAX_FIELDS + 1;
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);

	/* None of them touched the batch. */
	assert_int_equal(ig_wire_enc_count(e), 0);
	assert_int_equal(ig_wire_enc_bytes(e), 0);
	free(r);
	ig_wire_enc_free(e);
}

static void test_finish_refuses_bad_lost_table(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_envelope_hdr h;
	void *buf = (void *)1;
	size_t len = 1;

	hdr_init(&h, 1);
	h.nlost = IG_WIRE_MAX_LOST + 1;
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), -EINVAL);
	assert_null(buf);
	hdr_init(&h, 1);
	h.lost[0].cause = NULL;
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), -EINVAL);
	ig_wire_enc_free(e);
}

/* ------------------------------------------------------------------ */
/* Rejections of corrupted encoder output                               */

static void test_truncation_at_every_byte_offset_is_rejected(void **state)
{
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(2, &buf, &len);
	for (size_t cut = 0; cut < len; cut++) {
		ig_err_init(&err);
		/* A fresh copy of exactly `cut` bytes: ASan sees any overread. */
		void *part = malloc(cut ? cut : 1);
		memcpy(part, buf, cut);
		assert_int_equal(ig_wire_decode(d, part, cut, &h, &err), -EBADMSG);
		assert_true(strlen(ig_err_str(&err)) > 0);
		free(part);
	}
	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, buf, len, &h, &err), 0);
	free(buf);
	ig_wire_dec_free(d);
}

static void test_truncation_message_says_where(void **state)
{
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(2, &buf, &len);
	assert_int_equal(decode(buf, len - 3, &h, &err, NULL), -EBADMSG);
	char where[32];

	snprintf(where, sizeof(where), "%s[1]", recs_name());
	assert_non_null(strstr(ig_err_str(&err), where));
	assert_non_null(strstr(ig_err_str(&err), "truncated"));
	free(buf);
}

static void test_trailing_bytes_are_rejected(void **state)
{
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;
	uint8_t *more;

	encode_n(1, &buf, &len);
	more = malloc(len * 2);
	memcpy(more, buf, len);
	more[len] = 0xc0; /* nil */
	assert_int_equal(decode(more, len + 1, &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "1 bytes after the envelope"));
	/* Two envelopes back to back are not one message either. */
	memcpy(more + len, buf, len);
	assert_int_equal(decode(more, 2 * len, &h, &err, NULL), -EBADMSG);
	free(more);
	free(buf);
}

static void test_unknown_version_is_rejected_naming_it(void **state)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h, got;
	struct ig_err err;
	void *buf;
	size_t len;

	fill_full(r, 0);
	assert_int_equal(ig_wire_enc_add(e, r), 0);
	hdr_init(&h, 5);
	h.v = IG_WIRE_VERSION + 1;
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	assert_int_equal(decode(buf, len, &got, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "wire version 3 is not supported"));
	assert_non_null(strstr(ig_err_str(&err), "versions 1 to 2"));
	assert_int_equal(err.n, 1); /* only that: the rest follows another schema */
	free(buf);
	free(r);
	ig_wire_enc_free(e);
}

static void test_oversized_message_is_rejected_with_the_limit(void **state)
{
	struct ig_wire_limits lim = { .max_msg_bytes = 100 };
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(2, &buf, &len);
	assert_true(len > 100);
	assert_int_equal(decode(buf, len, &h, &err, &lim), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "more than the limit of 100"));
	assert_non_null(strstr(ig_err_str(&err), "aggregator.max_msg_bytes"));
	free(buf);
}

static void test_too_many_records_are_rejected(void **state)
{
	struct ig_wire_limits lim = { .max_records = 3 };
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(3, &buf, &len);
	assert_int_equal(decode(buf, len, &h, &err, &lim), 0);
	free(buf);
	encode_n(4, &buf, &len);
	assert_int_equal(decode(buf, len, &h, &err, &lim), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "4 records, more than the limit of 3"));
	free(buf);
}

static void test_string_over_max_str_is_rejected(void **state)
{
	struct ig_wire_limits lim = { .max_str = 12 };
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(1, &buf, &len); /* path "/etc/passwd.0" is 13 bytes */
	assert_int_equal(decode(buf, len, &h, &err, &lim), -EBADMSG);
	if (g_version == 1)
		assert_non_null(strstr(
			ig_err_str(&err),
			"records[0].f.path: string of 13 bytes is longer than the limit of 12"));
	else /* strings are in the table */
		assert_non_null(strstr(ig_err_str(&err),
				       ": string of 13 bytes is longer than the limit of 12"));
	free(buf);
}

static void test_seq_is_reported_even_when_rejected(void **state)
{
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	encode_n(2, &buf, &len);
	assert_int_equal(decode(buf, len - 1, &h, &err, NULL), -EBADMSG);
	assert_true(h.seq == 42); /* so the aggregator can ack the rejection */
	free(buf);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_bytes_are_rejected_without_crashing(void **state)
{
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	uint8_t buf[512];

	for (int i = 0; i < 20000; i++) {
		size_t len = xorshift(&seed) % sizeof(buf);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)xorshift(&seed);
		if (len && i % 2)
			buf[0] = 0x88; /* a map of 8, to get further in */
		ig_err_init(&err);
		assert_int_equal(ig_wire_decode(d, buf, len, &h, &err), -EBADMSG);
		assert_int_equal(ig_wire_next(d, r), 0);
	}
	free(r);
	ig_wire_dec_free(d);
}

static void test_mutated_envelopes_decode_or_reject_cleanly(void **state)
{
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	uint64_t seed = 12345;
	void *buf;
	size_t len;
	int accepted = 0;

	encode_n(3, &buf, &len);
	uint8_t *m = malloc(len);
	for (int i = 0; i < 20000; i++) {
		memcpy(m, buf, len);
		for (int k = 0; k < 1 + (int)(xorshift(&seed) % 4); k++)
			m[xorshift(&seed) % len] = (uint8_t)xorshift(&seed);
		ig_err_init(&err);
		int rv = ig_wire_decode(d, m, len, &h, &err);
		assert_true(rv == 0 || rv == -EBADMSG);
		if (rv == 0) {
			uint32_t n = 0;
			accepted++;
			while (ig_wire_next(d, r) == 1) {
				assert_non_null(r->kind);
				assert_true(r->kind[0] != '\0');
				assert_true(r->arena_used <= IG_RECORD_ARENA);
				n++;
			}
			assert_int_equal(n, h.nrecords);
		} else {
			assert_true(err.n > 0);
		}
	}
	/* Changing a string's bytes keeps an envelope valid: some must pass. */
	assert_true(accepted > 0);
	free(m);
	free(buf);
	free(r);
	ig_wire_dec_free(d);
}

static void test_huge_declared_counts_are_rejected_cheaply(void **state)
{
	/* Headers announcing 4 billion elements in a few bytes. */
	static const uint8_t arr[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t map[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v' };
	static const uint8_t str[] = { 0xdb, 0xff, 0xff, 0xff, 0xff, 'x' };
	static const uint8_t bad[] = { 0xc1 };
	struct ig_envelope_hdr h;
	struct ig_err err;

	assert_int_equal(decode(arr, sizeof(arr), &h, &err, NULL), -EBADMSG);
	assert_int_equal(decode(map, sizeof(map), &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "truncated"));
	assert_int_equal(decode(str, sizeof(str), &h, &err, NULL), -EBADMSG);
	assert_int_equal(decode(bad, sizeof(bad), &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "invalid msgpack (byte 0xc1"));
	assert_int_equal(decode(NULL, 0, &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "empty message"));
}

/* ------------------------------------------------------------------ */
/* A msgpack tree for hand-made envelopes                               */

enum { N_MAP, N_ARR, N_STR, N_UINT, N_INT, N_NIL, N_FLOAT, N_BIN, N_RAW };

#define NODE_MAX 80

struct node {
	int t;
	const char *s; /* N_STR, N_BIN, N_RAW (bytes packed as they are) */
	uint32_t slen;
	uint64_t u;
	int64_t i;
	uint32_t n;
	struct node *k[NODE_MAX], *v[NODE_MAX];
};

static struct node pool[4096];
static int pool_used;

static struct node *nnew(int t)
{
	struct node *x;

	assert_true(pool_used < (int)(sizeof(pool) / sizeof(pool[0])));
	x = &pool[pool_used++];
	memset(x, 0, sizeof(*x));
	x->t = t;
	return x;
}

static struct node *nstrn(const char *s, uint32_t len)
{
	struct node *x = nnew(N_STR);
	x->s = s;
	x->slen = len;
	return x;
}

static struct node *nstr(const char *s)
{
	return nstrn(s, (uint32_t)strlen(s));
}

static struct node *nuint(uint64_t u)
{
	struct node *x = nnew(N_UINT);
	x->u = u;
	return x;
}

static struct node *nint(int64_t i)
{
	struct node *x = nnew(N_INT);
	x->i = i;
	return x;
}

static void nput(struct node *m, struct node *k, struct node *v)
{
	assert_true(m->n < NODE_MAX);
	m->k[m->n] = k;
	m->v[m->n] = v;
	m->n++;
}

static void nset(struct node *m, const char *k, struct node *v)
{
	nput(m, nstr(k), v);
}

static void npush(struct node *a, struct node *v)
{
	assert_true(a->n < NODE_MAX);
	a->v[a->n++] = v;
}

static struct node *std_record(int i)
{
	struct node *r = nnew(N_MAP), *id = nnew(N_MAP), *lbl = nnew(N_MAP), *f = nnew(N_MAP);

	nset(r, "k", nstr("file.open"));
	nset(r, "p", nstr("files"));
	nset(r, "ts", nuint(1700000000000000000ULL + (uint64_t)i));
	nset(r, "pid", nuint(100));
	nset(r, "tid", nuint(101));
	nset(r, "ppid", nuint(1));
	nset(r, "uid", nuint(0));
	nset(r, "gid", nuint(0));
	nset(r, "comm", nstr("cat"));
	nset(r, "cg", nuint(77));
	nset(id, "scope", nstr("pod"));
	nset(id, "pod", nstr("web-1"));
	nset(id, "ns", nstr("shop"));
	nset(lbl, "app", nstr("web"));
	nset(id, "lbl", lbl);
	nset(r, "id", id);
	nset(f, "path", nstr("/etc/hosts"));
	nset(f, "ret", nint(-1));
	nset(f, "flags", nuint(0));
	nset(r, "f", f);
	return r;
}

static struct node *std_envelope(void)
{
	struct node *e, *lost, *recs;

	pool_used = 0;
	e = nnew(N_MAP);
	lost = nnew(N_MAP);
	recs = nnew(N_ARR);
	nset(e, "v", nuint(1));
	nset(e, "agent_id", nstr("agent-1"));
	nset(e, "node", nstr("node-a"));
	nset(e, "boot_id", nuint(5));
	nset(e, "seq", nuint(77));
	nset(e, "sent_ns", nuint(1700000000000000000ULL));
	nset(lost, "ringbuf_full", nuint(3));
	nset(e, "lost", lost);
	npush(recs, std_record(0));
	npush(recs, std_record(1));
	nset(e, "records", recs);
	return e;
}

/* Finds path ("records[1].f.path") below root: the container holding the
 * last component and its index there. */
static void nfind(struct node *root, const char *path, struct node **parent, uint32_t *idx)
{
	char buf[128], *save = NULL, *tok;
	struct node *cur = root;

	snprintf(buf, sizeof(buf), "%s", path);
	*parent = NULL;
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		char *br = strchr(tok, '[');
		long index = -1;
		uint32_t i;

		if (br) {
			index = strtol(br + 1, NULL, 10);
			*br = '\0';
		}
		assert_int_equal(cur->t, N_MAP);
		for (i = 0; i < cur->n; i++)
			if (cur->k[i]->t == N_STR && cur->k[i]->slen == strlen(tok) &&
			    !memcmp(cur->k[i]->s, tok, cur->k[i]->slen))
				break;
		assert_true(i < cur->n);
		*parent = cur;
		*idx = i;
		cur = cur->v[i];
		if (index >= 0) {
			assert_int_equal(cur->t, N_ARR);
			assert_true(index < (long)cur->n);
			*parent = cur;
			*idx = (uint32_t)index;
			cur = cur->v[index];
		}
	}
	assert_non_null(*parent);
}

static struct node *nget(struct node *root, const char *path)
{
	struct node *p;
	uint32_t i;

	nfind(root, path, &p, &i);
	return p->v[i];
}

static void nreplace(struct node *root, const char *path, struct node *v)
{
	struct node *p;
	uint32_t i;

	nfind(root, path, &p, &i);
	p->v[i] = v;
}

static void ndelete(struct node *root, const char *path)
{
	struct node *p;
	uint32_t i;

	nfind(root, path, &p, &i);
	memmove(&p->k[i], &p->k[i + 1], (p->n - i - 1) * sizeof(p->k[0]));
	memmove(&p->v[i], &p->v[i + 1], (p->n - i - 1) * sizeof(p->v[0]));
	p->n--;
}

static void nduplicate(struct node *root, const char *path)
{
	struct node *p;
	uint32_t i;

	nfind(root, path, &p, &i);
	nput(p, p->k[i], p->v[i]);
}

static void npack(msgpack_packer *pk, const struct node *x)
{
	switch (x->t) {
	case N_MAP:
		msgpack_pack_map(pk, x->n);
		for (uint32_t i = 0; i < x->n; i++) {
			npack(pk, x->k[i]);
			npack(pk, x->v[i]);
		}
		break;
	case N_ARR:
		msgpack_pack_array(pk, x->n);
		for (uint32_t i = 0; i < x->n; i++)
			npack(pk, x->v[i]);
		break;
	case N_STR:
		msgpack_pack_str_with_body(pk, x->s, x->slen);
		break;
	case N_BIN:
		msgpack_pack_bin_with_body(pk, x->s, x->slen);
		break;
	case N_UINT:
		msgpack_pack_uint64(pk, x->u);
		break;
	case N_INT:
		msgpack_pack_fix_int64(pk, x->i);
		break;
	case N_NIL:
		msgpack_pack_nil(pk);
		break;
	case N_FLOAT:
		msgpack_pack_double(pk, 1.5);
		break;
	case N_RAW:
		pk->callback(pk->data, x->s, x->slen);
		break;
	}
}

/* Packs the tree and decodes it; returns the decoder's result. */
static int ntry(const struct node *root, struct ig_envelope_hdr *h, struct ig_err *err,
		const struct ig_wire_limits *lim)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	npack(&pk, root);
	rv = decode(sb.data, sb.size, h, err, lim);
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static void expect_reject(const struct node *root, const char *needle)
{
	struct ig_envelope_hdr h;
	struct ig_err err;

	if (ntry(root, &h, &err, NULL) != -EBADMSG)
		fail_msg("accepted; expected a rejection mentioning \"%s\"", needle);
	if (!strstr(ig_err_str(&err), needle))
		fail_msg("error \"%s\" does not mention \"%s\"", ig_err_str(&err), needle);
}

static void test_hand_built_envelope_is_accepted(void **state)
{
	struct ig_envelope_hdr h;
	struct ig_err err;

	assert_int_equal(ntry(std_envelope(), &h, &err, NULL), 0);
	assert_int_equal(h.nrecords, 2);
	assert_true(h.seq == 77);
}

static void test_wrong_type_for_each_key_is_rejected_naming_it(void **state)
{
	static const struct {
		const char *path;
		int repl;
		const char *msg;
	} cases[] = {
		{ "v", N_STR, "v: expected an unsigned 32-bit integer, got a string" },
		{ "agent_id", N_UINT, "agent_id: expected a string, got 7" },
		{ "node", N_ARR, "node: expected a string, got an array" },
		{ "boot_id", N_STR, "boot_id: expected an unsigned 64-bit integer, got a string" },
		{ "seq", N_INT, "seq: expected an unsigned 64-bit integer, got -7" },
		{ "sent_ns", N_FLOAT, "sent_ns: expected an unsigned 64-bit integer, got a float" },
		{ "lost", N_ARR, "lost: expected a map, got an array" },
		{ "lost.ringbuf_full", N_STR, "lost.ringbuf_full: expected an unsigned 64-bit" },
		{ "records", N_MAP, "records: expected an array, got a map" },
		{ "records[1]", N_ARR, "records[1]: expected a map, got an array" },
		{ "records[0].k", N_UINT, "records[0].k: expected a string, got 7" },
		{ "records[0].p", N_NIL, "records[0].p: expected a string, got nil" },
		{ "records[0].ts", N_STR, "records[0].ts: expected an unsigned 64-bit integer" },
		{ "records[0].pid", N_STR, "records[0].pid: expected an unsigned 32-bit integer" },
		{ "records[0].tid", N_MAP,
		  "records[0].tid: expected an unsigned 32-bit integer, got a map" },
		{ "records[0].ppid", N_INT,
		  "records[0].ppid: expected an unsigned 32-bit integer, got -7" },
		{ "records[0].uid", N_BIN,
		  "records[0].uid: expected an unsigned 32-bit integer, got binary data" },
		{ "records[1].gid", N_FLOAT,
		  "records[1].gid: expected an unsigned 32-bit integer" },
		{ "records[0].comm", N_BIN, "records[0].comm: expected a string, got binary data" },
		{ "records[0].cg", N_ARR,
		  "records[0].cg: expected an unsigned 64-bit integer, got an array" },
		{ "records[0].id", N_STR, "records[0].id: expected a map, got a string" },
		{ "records[0].id.scope", N_UINT, "records[0].id.scope: expected a string, got 7" },
		{ "records[0].id.pod", N_MAP, "records[0].id.pod: expected a string, got a map" },
		{ "records[0].id.lbl", N_ARR, "records[0].id.lbl: expected a map, got an array" },
		{ "records[0].id.lbl.app", N_UINT,
		  "records[0].id.lbl.app: expected a string, got 7" },
		{ "records[0].f", N_ARR, "records[0].f: expected a map, got an array" },
		{ "records[1].f.path", N_ARR,
		  "records[1].f.path: expected a string or an integer, got an array" },
		{ "records[0].f.ret", N_MAP,
		  "records[0].f.ret: expected a string or an integer, got a map" },
		{ "records[0].f.flags", N_NIL,
		  "records[0].f.flags: expected a string or an integer, got nil" },
		{ "records[0].f.path", N_FLOAT,
		  "records[0].f.path: expected a string or an integer, got a float" },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct node *e = std_envelope();
		struct node *x = nnew(cases[c].repl);

		if (x->t == N_UINT)
			x->u = 7;
		if (x->t == N_INT)
			x->i = -7;
		if (x->t == N_BIN || x->t == N_STR) {
			x->s = "ab";
			x->slen = 2;
		}
		if (x->t == N_ARR)
			npush(x, nuint(1));
		if (x->t == N_MAP)
			nset(x, "a", nuint(1));
		nreplace(e, cases[c].path, x);
		expect_reject(e, cases[c].msg);
	}
}

static void test_u32_fields_reject_values_above_uint32_max(void **state)
{
	struct node *e = std_envelope();
	struct ig_envelope_hdr h;
	struct ig_err err;

	nreplace(e, "records[0].pid", nuint(UINT32_MAX));
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	nreplace(e, "records[0].pid", nuint((uint64_t)UINT32_MAX + 1));
	expect_reject(e, "records[0].pid: expected an unsigned 32-bit integer, got 4294967296");
	e = std_envelope();
	nreplace(e, "v", nuint((uint64_t)UINT32_MAX + 5));
	expect_reject(e, "v: expected an unsigned 32-bit integer");
}

static void test_signed_format_with_non_negative_value_is_accepted_for_unsigned_keys(void **state)
{
	/* Other encoders may pack 5 as int64: a number is a number. */
	struct node *e = std_envelope();
	struct ig_envelope_hdr h;
	struct ig_err err;

	nreplace(e, "seq", nint(5));
	nreplace(e, "records[0].pid", nint(9));
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	assert_true(h.seq == 5);
}

static void test_missing_required_keys_are_rejected(void **state)
{
	static const char *const env[] = { "v",	  "agent_id", "node", "boot_id",
					   "seq", "sent_ns",  "lost", "records" };
	static const char *const rec[] = { "k",	  "p",	 "ts",	 "pid", "tid", "ppid",
					   "uid", "gid", "comm", "cg",	"f" };
	char path[64], msg[96];

	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
		struct node *e = std_envelope();
		ndelete(e, env[i]);
		snprintf(msg, sizeof(msg), "envelope: missing required key \"%s\"", env[i]);
		expect_reject(e, msg);
	}
	for (size_t i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
		struct node *e = std_envelope();
		snprintf(path, sizeof(path), "records[1].%s", rec[i]);
		ndelete(e, path);
		snprintf(msg, sizeof(msg), "records[1]: missing required key \"%s\"", rec[i]);
		expect_reject(e, msg);
	}
}

static void test_identity_is_optional(void **state)
{
	struct node *e = std_envelope();
	struct ig_envelope_hdr h;
	struct ig_err err;

	ndelete(e, "records[0].id");
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
}

static void test_duplicate_keys_are_rejected_at_every_level(void **state)
{
	static const struct {
		const char *path, *msg;
	} cases[] = {
		{ "seq", "seq: duplicate key" },
		{ "records", "records: duplicate key" },
		{ "lost.ringbuf_full", "lost.ringbuf_full: duplicate key" },
		{ "records[0].k", "records[0].k: duplicate key" },
		{ "records[1].id", "records[1].id: duplicate key" },
		{ "records[0].id.pod", "records[0].id.pod: duplicate key" },
		{ "records[0].id.lbl.app", "records[0].id.lbl.app: duplicate key" },
		{ "records[0].f.path", "records[0].f.path: duplicate key" },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct node *e = std_envelope();
		nduplicate(e, cases[c].path);
		expect_reject(e, cases[c].msg);
	}
	/* Unknown keys are skipped, but not twice. */
	struct node *e = std_envelope();
	nset(e, "future", nuint(1));
	nset(e, "future", nuint(2));
	expect_reject(e, "future: duplicate key");
}

static void test_nul_in_any_string_is_rejected(void **state)
{
	static const char *const paths[] = { "agent_id",	  "node",
					     "records[0].k",	  "records[0].comm",
					     "records[1].id.pod", "records[0].id.lbl.app",
					     "records[0].f.path" };
	char msg[96];

	for (size_t c = 0; c < sizeof(paths) / sizeof(paths[0]); c++) {
		struct node *e = std_envelope();
		nreplace(e, paths[c], nstrn("a\0b", 3));
		snprintf(msg, sizeof(msg), "%s: string contains a NUL byte", paths[c]);
		expect_reject(e, msg);
	}
	/* In keys too. */
	struct node *e = std_envelope();
	nput(nget(e, "records[0].f"), nstrn("k\0y", 3), nuint(1));
	expect_reject(e, "records[0].f.k?y: string contains a NUL byte");
	e = std_envelope();
	nput(nget(e, "lost"), nstrn("x\0", 2), nuint(1));
	expect_reject(e, "string contains a NUL byte");
	/* Even in the name of a key the decoder does not know. */
	e = std_envelope();
	nput(nget(e, "records[1]"), nstrn("new\0", 4), nuint(1));
	expect_reject(e, "records[1].new?: string contains a NUL byte");
}

static void test_empty_kind_agent_id_and_keys_are_rejected(void **state)
{
	struct node *e = std_envelope();

	nreplace(e, "records[0].k", nstr(""));
	expect_reject(e, "records[0].k: empty record kind");
	e = std_envelope();
	nreplace(e, "agent_id", nstr(""));
	expect_reject(e, "agent_id: empty agent_id");
	e = std_envelope();
	nset(nget(e, "records[0].f"), "", nuint(1));
	expect_reject(e, "records[0].f: empty key");
	e = std_envelope();
	nset(nget(e, "records[0].id.lbl"), "", nstr("x"));
	expect_reject(e, "records[0].id.lbl: empty key");
}

static void test_non_string_keys_are_rejected(void **state)
{
	struct node *e = std_envelope();

	nput(e, nuint(3), nuint(1));
	expect_reject(e, "envelope: a key is 3, expected a string");
	e = std_envelope();
	nput(nget(e, "records[0].f"), nnew(N_ARR), nuint(1));
	expect_reject(e, "records[0].f: a key is an array, expected a string");
	e = std_envelope();
	nput(nget(e, "records[0]"), nint(-1), nuint(1));
	expect_reject(e, "records[0]: a key is -1, expected a string");
}

static void test_too_many_fields_labels_and_lost_entries_are_rejected(void **state)
{
	static char names[64][16];
	struct node *e, *m;

	for (int i = 0; i < 64; i++)
		snprintf(names[i], sizeof(names[i]), "n%d", i);
	e = std_envelope();
	m = nget(e, "records[0].f");
	while (m->n < IG_MAX_FIELDS)
		nset(m, names[m->n], nuint(1));
	{
		struct ig_envelope_hdr h;
		struct ig_err err;
		assert_int_equal(ntry(e, &h, &err, NULL), 0);
	}
	nset(m, names[m->n], nuint(1));
	expect_reject(e, "records[0].f: 33 entries, more than the limit of 32");

	e = std_envelope();
	m = nget(e, "records[0].id.lbl");
	while (m->n <= IG_MAX_LABELS)
		nset(m, names[m->n], nstr("v"));
	expect_reject(e, "records[0].id.lbl: 17 entries, more than the limit of 16");

	e = std_envelope();
	m = nget(e, "lost");
	while (m->n <= IG_WIRE_MAX_LOST)
		nset(m, names[m->n], nuint(1));
	expect_reject(e, "lost: 17 entries, more than the limit of 16");
}

static void test_record_that_would_overflow_the_arena_is_rejected(void **state)
{
	static char big[6000];
	struct node *e = std_envelope();
	struct node *f = nget(e, "records[1].f");

	memset(big, 'z', sizeof(big));
	nset(f, "a", nstrn(big, sizeof(big)));
	nset(f, "b", nstrn(big, sizeof(big)));
	{
		struct ig_envelope_hdr h;
		struct ig_err err;
		assert_int_equal(ntry(e, &h, &err, NULL), 0); /* ~12 KB fits */
	}
	nset(f, "c", nstrn(big, sizeof(big)));
	expect_reject(e, "records[1]: its strings need");
}

static void test_unknown_keys_are_ignored_for_forward_compatibility(void **state)
{
	struct node *e = std_envelope(), *deep = nnew(N_ARR), *inner = nnew(N_MAP);
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	nset(inner, "x", nnew(N_NIL));
	npush(deep, inner);
	npush(deep, nnew(N_FLOAT));
	nset(e, "compression", nstr("none"));
	nset(e, "future", deep);
	nset(nget(e, "records[0]"), "cpu", nuint(1));
	nset(nget(e, "records[0]"), "extra", nget(e, "lost"));
	nset(nget(e, "records[0].id"), "zone", nstr("eu-1a"));
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	npack(&pk, e);
	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, sb.data, sb.size, &h, &err), 0);
	assert_int_equal(ig_wire_next(d, r), 1);
	assert_string_equal(r->kind, "file.open");
	assert_string_equal(r->id.pod_name, "web-1");
	assert_string_equal(r->id.labels[0].val, "web");
	assert_int_equal(r->nfields, 3);
	assert_int_equal(ig_wire_next(d, r), 1);
	assert_int_equal(ig_wire_next(d, r), 0);
	msgpack_sbuffer_destroy(&sb);
	free(r);
	ig_wire_dec_free(d);
}

static void test_too_many_unknown_keys_are_rejected(void **state)
{
	static char names[40][16];
	struct node *e = std_envelope();

	for (int i = 0; i <= IG_WIRE_MAX_UNKNOWN; i++) {
		snprintf(names[i], sizeof(names[i]), "u%d", i);
		nset(nget(e, "records[0].id"), names[i], nuint(1));
	}
	expect_reject(e, "more than 32 unknown keys in one map");
}

/* `levels` arrays, one inside the other, around a 1. */
static struct node *nested(int levels)
{
	struct node *x = nuint(1);

	for (int i = 0; i < levels; i++) {
		struct node *a = nnew(N_ARR);
		npush(a, x);
		x = a;
	}
	return x;
}

static void test_deep_nesting_is_rejected(void **state)
{
	struct node *e = std_envelope();
	struct ig_envelope_hdr h;
	struct ig_err err;

	/* The envelope map is level 1: 7 arrays under it fit in 8 levels. */
	nset(e, "nested", nested(IG_WIRE_MAX_DEPTH - 1));
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	e = std_envelope();
	nset(e, "nested", nested(IG_WIRE_MAX_DEPTH));
	expect_reject(e, "nested: values nested deeper than 8 levels");

	/* A deep structure where a scalar belongs: a type error, skipped. */
	e = std_envelope();
	nreplace(e, "records[0].f.path", nested(15));
	expect_reject(e, "records[0].f.path: values nested deeper than 8 levels");

	/* 100000 nested arrays (one byte each): no recursion, no crash. */
	static uint8_t deep[100002];
	deep[0] = 0x81;
	deep[1] = 0xa1;
	deep[2] = 'z';
	memset(deep + 3, 0x91, sizeof(deep) - 4);
	deep[sizeof(deep) - 1] = 0x00;
	assert_int_equal(decode(deep, sizeof(deep), &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "deeper"));
}

static void test_root_must_be_a_map(void **state)
{
	struct node *a;
	struct ig_envelope_hdr h;
	struct ig_err err;

	pool_used = 0;
	a = nnew(N_ARR);
	npush(a, nuint(1));
	assert_int_equal(ntry(a, &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "envelope: expected a map, got an array"));
}

static void test_many_errors_are_reported_then_capped(void **state)
{
	struct node *e = std_envelope();
	struct ig_envelope_hdr h;
	struct ig_err err;

	nreplace(e, "records[0].pid", nstr("x"));
	nreplace(e, "records[1].f.path", nnew(N_NIL));
	assert_int_equal(ntry(e, &h, &err, NULL), -EBADMSG);
	assert_int_equal(err.n, 2);
	assert_non_null(strstr(ig_err_str(&err), "records[0].pid"));
	assert_non_null(strstr(ig_err_str(&err), "records[1].f.path"));

	/* 40 bad records: the walk stops after 20 errors. */
	e = std_envelope();
	struct node *recs = nget(e, "records");
	while (recs->n < 40)
		npush(recs, nstr("not a record"));
	assert_int_equal(ntry(e, &h, &err, NULL), -EBADMSG);
	assert_non_null(strstr(ig_err_str(&err), "stopped after 20 errors"));
}

static void test_hostile_keys_are_printed_safely(void **state)
{
	static char longkey[300];
	struct node *e = std_envelope();

	memset(longkey, 'k', sizeof(longkey));
	longkey[5] = '\n';
	nput(nget(e, "records[0].f"), nstrn(longkey, sizeof(longkey)), nnew(N_NIL));
	expect_reject(e, "records[0].f.kkkkk?kkk");
	expect_reject(e, "...: expected a string or an integer, got nil");
}

/* ------------------------------------------------------------------ */
/* Acks                                                                 */

static void test_ack_roundtrip_for_every_status(void **state)
{
	static const enum ig_ack_status sts[] = { IG_ACK_OK, IG_ACK_DUPLICATE, IG_ACK_REJECTED };

	for (size_t i = 0; i < 3; i++) {
		void *buf;
		size_t len;
		uint64_t seq = 0;
		enum ig_ack_status st = IG_ACK_OK;
		char msg[64];

		assert_int_equal(ig_wire_ack_encode(UINT64_MAX - i, sts[i],
						    i == 2 ? "records[0].k: bad" : NULL, &buf,
						    &len),
				 0);
		assert_int_equal(ig_wire_ack_decode(buf, len, &seq, &st, msg, sizeof(msg)), 0);
		assert_true(seq == UINT64_MAX - i);
		assert_int_equal(st, sts[i]);
		assert_string_equal(msg, i == 2 ? "records[0].k: bad" : "");
		free(buf);
	}
}

static void test_ack_error_text_is_cut_to_the_buffer(void **state)
{
	void *buf;
	size_t len;
	uint64_t seq;
	enum ig_ack_status st;
	char small[6];

	assert_int_equal(ig_wire_ack_encode(1, IG_ACK_REJECTED, "0123456789", &buf, &len), 0);
	assert_int_equal(ig_wire_ack_decode(buf, len, &seq, &st, small, sizeof(small)), 0);
	assert_string_equal(small, "01234");
	assert_int_equal(ig_wire_ack_decode(buf, len, &seq, &st, NULL, 0), 0);
	free(buf);
}

static void test_ack_encode_refuses_unknown_status(void **state)
{
	void *buf;
	size_t len;

	assert_int_equal(ig_wire_ack_encode(1, (enum ig_ack_status)3, "", &buf, &len), -EINVAL);
}

static int ack_try(const struct node *root)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint64_t seq = 99;
	enum ig_ack_status st = IG_ACK_OK;
	char msg[16] = "untouched";
	int rv;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	npack(&pk, root);
	rv = ig_wire_ack_decode(sb.data, sb.size, &seq, &st, msg, sizeof(msg));
	if (rv < 0) {
		assert_true(seq == 99); /* untouched */
		assert_string_equal(msg, "");
	}
	msgpack_sbuffer_destroy(&sb);
	return rv;
}

static struct node *std_ack(void)
{
	struct node *a;

	pool_used = 0;
	a = nnew(N_MAP);
	nset(a, "v", nuint(1));
	nset(a, "seq", nuint(8));
	nset(a, "st", nuint(0));
	nset(a, "err", nstr("fine"));
	return a;
}

static void test_malformed_acks_are_rejected(void **state)
{
	struct node *a;

	assert_int_equal(ack_try(std_ack()), 0);
	a = std_ack();
	nreplace(a, "v", nuint(2));
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	nreplace(a, "st", nuint(3));
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	nreplace(a, "seq", nint(-1));
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	nreplace(a, "err", nuint(1));
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	nreplace(a, "err", nstrn("a\0", 2));
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	ndelete(a, "seq");
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	ndelete(a, "st");
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	nduplicate(a, "seq");
	assert_int_equal(ack_try(a), -EBADMSG);
	a = std_ack();
	ndelete(a, "err"); /* optional */
	assert_int_equal(ack_try(a), 0);
	a = std_ack();
	nset(a, "later", nstr("x")); /* unknown: ignored */
	assert_int_equal(ack_try(a), 0);
	pool_used = 0;
	a = nnew(N_ARR);
	assert_int_equal(ack_try(a), -EBADMSG);
}

static void test_truncated_or_padded_acks_are_rejected(void **state)
{
	void *buf;
	size_t len;
	uint64_t seq;
	enum ig_ack_status st;
	char msg[32];

	assert_int_equal(ig_wire_ack_encode(123456789, IG_ACK_DUPLICATE, "dup", &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		void *part = malloc(cut ? cut : 1);
		memcpy(part, buf, cut);
		assert_int_equal(ig_wire_ack_decode(part, cut, &seq, &st, msg, sizeof(msg)),
				 -EBADMSG);
		free(part);
	}
	uint8_t *pad = malloc(len + 1);
	memcpy(pad, buf, len);
	pad[len] = 0;
	assert_int_equal(ig_wire_ack_decode(pad, len + 1, &seq, &st, msg, sizeof(msg)), -EBADMSG);
	free(pad);
	free(buf);

	uint64_t seed = 77;
	uint8_t rnd[64];
	for (int i = 0; i < 20000; i++) {
		size_t n = xorshift(&seed) % sizeof(rnd);
		for (size_t j = 0; j < n; j++)
			rnd[j] = (uint8_t)xorshift(&seed);
		int rv = ig_wire_ack_decode(rnd, n, &seq, &st, msg, sizeof(msg));
		assert_true(rv == 0 || rv == -EBADMSG);
	}
}

/* ------------------------------------------------------------------ */
/* The bounded reader itself                                            */

static void test_reader_keeps_integer_signedness_and_widths(void **state)
{
	static const uint8_t b[] = {
		0x05, /* positive fixint */
		0xe0, /* negative fixint -32 */
		0xcc, 0xff, /* uint8 255 */
		0xd0, 0x05, /* int8 5: signed format */
		0xd1, 0xff, 0x00, /* int16 -256 */
		0xce, 0xff, 0xff, 0xff, 0xff, /* uint32 */
		0xd3, 0x80, 0,	  0,	0,    0, 0, 0, 0, /* int64 min */
		0xc3, /* true */
		0xd4, 0x01, 0x02, /* fixext1 */
		0xca, 0x3f, 0xc0, 0,	0, /* float32 1.5 */
	};
	struct ig_mp mp;
	struct ig_mp_val v;

	ig_mp_init(&mp, b, sizeof(b));
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_int_equal(v.type, IG_MP_UINT);
	assert_true(v.u == 5);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_int_equal(v.type, IG_MP_INT);
	assert_true(v.i == -32);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_UINT && v.u == 255);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_INT && v.i == 5);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_INT && v.i == -256);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_UINT && v.u == UINT32_MAX);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_INT && v.i == INT64_MIN);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_BOOL && v.b);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_EXT && v.s.len == 1 && v.s.ext_type == 1);
	assert_int_equal(ig_mp_read(&mp, &v), 0);
	assert_true(v.type == IG_MP_FLOAT && v.f == 1.5);
	assert_int_equal(ig_mp_left(&mp), 0);
	assert_int_equal(ig_mp_read(&mp, &v), -ENODATA);
}

/* ------------------------------------------------------------------ */
/* Version 2 envelopes built by hand                                    */

/* The string table of std_envelope_v2, by index. */
enum {
	S_KIND,
	S_PROBE,
	S_COMM,
	S_POD,
	S_WEB1,
	S_SHOP,
	S_APP,
	S_WEB,
	S_PATH,
	S_HOSTS,
	S_RET,
	S_FLAGS,
	S_EMPTY,
	S_PATH2, /* "path" again, at another index */
	S_N
};

static const char *const v2_strs[S_N] = { "file.open", "files", "cat", "pod",  "web-1",
					  "shop",      "app",	"web", "path", "/etc/hosts",
					  "ret",       "flags", "",    "path" };

static struct node *nnil(void)
{
	return nnew(N_NIL);
}

static struct node *v2_ident(void)
{
	struct node *id = nnew(N_ARR), *lbl = nnew(N_ARR);

	for (int i = 0; i < 11; i++)
		npush(id, nnil());
	id->v[0] = nuint(S_POD); /* scope */
	id->v[4] = nuint(S_WEB1); /* pod */
	id->v[5] = nuint(S_SHOP); /* ns */
	npush(lbl, nuint(S_APP));
	npush(lbl, nuint(S_WEB));
	npush(id, lbl);
	return id;
}

static struct node *v2_record(int i, bool with_id)
{
	struct node *r = nnew(N_ARR), *f = nnew(N_ARR);

	npush(r, nuint(S_KIND));
	npush(r, nuint(S_PROBE));
	npush(r, nuint((uint64_t)i * 1000)); /* ts - t0 */
	npush(r, nuint(100));
	npush(r, nuint(101));
	npush(r, nuint(1));
	npush(r, nuint(0));
	npush(r, nuint(0));
	npush(r, nuint(S_COMM));
	npush(r, nuint(77));
	npush(r, with_id ? nuint(0) : nnil());
	npush(f, nuint(S_PATH << 1 | 1));
	npush(f, nuint(S_HOSTS));
	npush(f, nuint(S_RET << 1));
	npush(f, nint(-1));
	npush(f, nuint(S_FLAGS << 1));
	npush(f, nuint(0));
	npush(r, f);
	return r;
}

static struct node *std_envelope_v2(void)
{
	struct node *e, *lost, *str, *ids, *recs;

	pool_used = 0;
	e = nnew(N_MAP);
	lost = nnew(N_MAP);
	str = nnew(N_ARR);
	ids = nnew(N_ARR);
	recs = nnew(N_ARR);
	nset(e, "v", nuint(2));
	nset(e, "agent_id", nstr("agent-1"));
	nset(e, "node", nstr("node-a"));
	nset(e, "boot_id", nuint(5));
	nset(e, "seq", nuint(77));
	nset(e, "sent_ns", nuint(1700000000000000000ULL));
	nset(lost, "ringbuf_full", nuint(3));
	nset(e, "lost", lost);
	nset(e, "t0", nuint(1700000000000000000ULL));
	for (int i = 0; i < S_N; i++)
		npush(str, nstr(v2_strs[i]));
	nset(e, "str", str);
	npush(ids, v2_ident());
	nset(e, "ids", ids);
	npush(recs, v2_record(0, true));
	npush(recs, v2_record(1, false));
	nset(e, "rec", recs);
	return e;
}

/* The record array of record i, and element j of a record. */
static struct node *v2_rec(struct node *e, int i)
{
	return nget(e, "rec")->v[i];
}

static void test_v2_hand_built_envelope_is_accepted_with_every_value(void **state)
{
	struct node *e = std_envelope_v2();
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	npack(&pk, e);
	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, sb.data, sb.size, &h, &err), 0);
	assert_int_equal(h.v, 2);
	assert_string_equal(h.agent_id, "agent-1");
	assert_string_equal(h.node, "node-a");
	assert_true(h.boot_id == 5 && h.seq == 77 && h.nrecords == 2 && h.nlost == 1);
	assert_int_equal(ig_wire_next(d, r), 1);
	assert_string_equal(r->kind, "file.open");
	assert_string_equal(r->probe, "files");
	assert_string_equal(r->comm, "cat");
	assert_string_equal(r->node, "node-a");
	assert_true(r->ts_ns == 1700000000000000000ULL);
	assert_true(r->pid == 100 && r->tid == 101 && r->ppid == 1 && r->cgroup_id == 77);
	assert_string_equal(r->id.scope, "pod");
	assert_string_equal(r->id.pod_name, "web-1");
	assert_string_equal(r->id.namespace_, "shop");
	assert_null(r->id.runtime);
	assert_null(r->id.image);
	assert_int_equal(r->id.nlabels, 1);
	assert_string_equal(r->id.labels[0].key, "app");
	assert_string_equal(r->id.labels[0].val, "web");
	assert_int_equal(r->nfields, 3);
	assert_string_equal(r->fields[0].key, "path");
	assert_int_equal(r->fields[0].type, IG_F_STR);
	assert_string_equal(r->fields[0].s, "/etc/hosts");
	assert_int_equal(r->fields[1].type, IG_F_INT);
	assert_true(r->fields[1].i == -1);
	assert_int_equal(r->fields[2].type, IG_F_UINT);
	assert_true(r->fields[2].u == 0);
	assert_int_equal(ig_wire_next(d, r), 1);
	assert_true(r->ts_ns == 1700000000000001000ULL);
	assert_null(r->id.scope);
	assert_int_equal(r->id.nlabels, 0);
	assert_int_equal(ig_wire_next(d, r), 0);
	msgpack_sbuffer_destroy(&sb);
	ig_wire_dec_free(d);
	free(r);
}

static void test_v2_out_of_range_indexes_are_rejected_naming_the_place(void **state)
{
	static const struct {
		int rec, elem; /* rec < 0: ids[0], elem = member */
		int64_t idx;
		const char *want;
	} cases[] = {
		{ 0, 0, S_N, "rec[0].k: expected an index into str (0..13), got 14" },
		{ 1, 1, 1000000, "rec[1].p: expected an index into str (0..13), got 1000000" },
		{ 0, 8, -1, "rec[0].comm: expected an index into str (0..13), got -1" },
		{ 0, 10, 1, "rec[0].id: expected nil or an index into ids (1 entries), got 1" },
		{ -1, 4, S_N, "ids[0].pod: expected an index into str (0..13), got 14" },
		{ -1, 0, -3, "ids[0].scope: expected an index into str (0..13), got -3" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct node *e = std_envelope_v2();
		struct node *x =
			cases[i].idx < 0 ? nint(cases[i].idx) : nuint((uint64_t)cases[i].idx);

		if (cases[i].rec >= 0)
			v2_rec(e, cases[i].rec)->v[cases[i].elem] = x;
		else
			nget(e, "ids")->v[0]->v[cases[i].elem] = x;
		expect_reject(e, cases[i].want);
	}
	/* In the labels and the fields. */
	struct node *e = std_envelope_v2();
	nget(e, "ids")->v[0]->v[11]->v[1] = nuint(S_N);
	expect_reject(e, "ids[0].lbl: expected an index into str (0..13), got 14");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[11]->v[0] = nuint((uint64_t)S_N << 1 | 1);
	expect_reject(e, "rec[0].f: field 0: expected a key tag");
	e = std_envelope_v2();
	v2_rec(e, 1)->v[11]->v[1] = nuint(S_N);
	expect_reject(e, "rec[1].f.path: expected an index into str (0..13), got 14");
	/* An index into an empty table. */
	e = std_envelope_v2();
	nget(e, "str")->n = 0;
	expect_reject(e, "rec[0].k: expected an index into str, got 0 (str is empty)");
}

static void test_v2_wrong_shapes_and_counts_are_rejected(void **state)
{
	struct node *e = std_envelope_v2();

	v2_rec(e, 0)->n = 11; /* no f */
	expect_reject(e, "rec[0]: 11 elements, expected 12 to 44");
	e = std_envelope_v2();
	while (v2_rec(e, 0)->n < 12 + 33)
		npush(v2_rec(e, 0), nnil());
	expect_reject(e, "rec[0]: 45 elements, expected 12 to 44");
	e = std_envelope_v2();
	nget(e, "ids")->v[0]->n = 11;
	expect_reject(e, "ids[0]: 11 elements, expected 12 to 44");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[11]->n = 5;
	expect_reject(e, "rec[0].f: 5 elements: expected key/value pairs, at most 32");
	e = std_envelope_v2();
	{
		struct node *f = nnew(N_ARR);
		/* 33 distinct keys do not exist in str: the count is checked first. */
		for (int i = 0; i < 33; i++) {
			npush(f, nuint(S_FLAGS << 1));
			npush(f, nuint(1));
		}
		v2_rec(e, 0)->v[11] = f;
	}
	expect_reject(e, "rec[0].f: 66 elements: expected key/value pairs, at most 32");
	e = std_envelope_v2();
	{
		struct node *l = nnew(N_ARR);
		for (int i = 0; i < 17; i++) {
			npush(l, nuint(S_APP));
			npush(l, nuint(S_WEB));
		}
		nget(e, "ids")->v[0]->v[11] = l;
	}
	expect_reject(e, "ids[0].lbl: 34 elements: expected key/value pairs, at most 16");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[3] = nuint((uint64_t)UINT32_MAX + 1);
	expect_reject(e, "rec[0].pid: expected an unsigned 32-bit integer");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[2] = nstr("soon");
	expect_reject(e, "rec[0].ts: expected an integer (ns from t0), got a string");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[11]->v[5] = nnew(N_FLOAT);
	expect_reject(e, "rec[0].f.flags: expected a string or an integer, got a float");
	e = std_envelope_v2();
	nget(e, "rec")->v[1] = nnew(N_MAP);
	expect_reject(e, "rec[1]: expected an array, got a map");
	e = std_envelope_v2();
	nget(e, "str")->v[3] = nuint(3);
	expect_reject(e, "str[3]: expected a string, got 3");
	e = std_envelope_v2();
	nget(e, "str")->v[9] = nstrn("a\0b", 3);
	expect_reject(e, "str[9]: string contains a NUL byte");
}

static void test_v2_keys_are_unique_by_content_and_not_empty(void **state)
{
	struct node *e = std_envelope_v2();

	/* "path" twice, at two different indexes of str. */
	v2_rec(e, 0)->v[11]->v[4] = nuint(S_PATH2 << 1 | 1);
	v2_rec(e, 0)->v[11]->v[5] = nuint(S_HOSTS);
	expect_reject(e, "rec[0].f.path: duplicate key");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[11]->v[2] = nuint(S_PATH << 1); /* same index */
	expect_reject(e, "rec[0].f.path: duplicate key");
	e = std_envelope_v2();
	npush(nget(e, "ids")->v[0]->v[11], nuint(S_APP));
	npush(nget(e, "ids")->v[0]->v[11], nuint(S_SHOP));
	expect_reject(e, "ids[0].lbl: duplicate label key \"app\"");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[0] = nuint(S_EMPTY);
	expect_reject(e, "rec[0].k: refers to an empty string (str[12])");
	e = std_envelope_v2();
	v2_rec(e, 0)->v[11]->v[0] = nuint(S_EMPTY << 1 | 1);
	expect_reject(e, "rec[0].f: field 0: expected a key tag");
	e = std_envelope_v2();
	nget(e, "ids")->v[0]->v[11]->v[0] = nuint(S_EMPTY);
	expect_reject(e, "ids[0].lbl: refers to an empty string (str[12])");
}

static void test_v2_envelope_keys_order_and_presence(void **state)
{
	struct node *e = std_envelope_v2();

	/* v must come first in version 2. */
	struct node *k0 = e->k[0], *v0 = e->v[0];
	e->k[0] = e->k[1];
	e->v[0] = e->v[1];
	e->k[1] = k0;
	e->v[1] = v0;
	expect_reject(e, "a version 2 envelope starts with its \"v\" key");
	/* rec before str / ids. */
	e = std_envelope_v2();
	{
		struct node *k = e->k[e->n - 1], *v = e->v[e->n - 1];
		memmove(&e->k[9], &e->k[8], (e->n - 9) * sizeof(e->k[0]));
		memmove(&e->v[9], &e->v[8], (e->n - 9) * sizeof(e->v[0]));
		e->k[8] = k;
		e->v[8] = v;
	}
	expect_reject(e, "\"str\" and \"ids\" must come before \"rec\"");
	static const char *const required[] = { "t0", "str", "ids", "rec", "seq", "lost" };
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char want[64];

		e = std_envelope_v2();
		if (!strcmp(required[i], "str")) {
			/* without str, ids and rec complain about the order */
			ndelete(e, "str");
			expect_reject(e, "\"str\" must come before \"ids\"");
			continue;
		}
		if (!strcmp(required[i], "ids")) {
			ndelete(e, "ids");
			expect_reject(e, "\"str\" and \"ids\" must come before \"rec\"");
			continue;
		}
		ndelete(e, required[i]);
		snprintf(want, sizeof(want), "missing required key \"%s\"", required[i]);
		expect_reject(e, want);
	}
	/* "records" is unknown in version 2 (skipped), "rec" unknown in version 1. */
	e = std_envelope_v2();
	nset(e, "records", nuint(1));
	struct ig_envelope_hdr h;
	struct ig_err err;
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	e = std_envelope();
	nset(e, "rec", nnew(N_ARR));
	nset(e, "str", nuint(5));
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	assert_int_equal(h.nrecords, 2);
	/* a key twice */
	e = std_envelope_v2();
	nduplicate(e, "t0");
	expect_reject(e, "t0: duplicate key");
}

static void test_v2_later_elements_are_skipped_but_bounded(void **state)
{
	struct node *e = std_envelope_v2(), *deep;
	struct ig_envelope_hdr h;
	struct ig_err err;

	npush(v2_rec(e, 0), nstr("a later version's element"));
	npush(v2_rec(e, 1), nuint(9));
	npush(nget(e, "ids")->v[0], nnew(N_MAP));
	assert_int_equal(ntry(e, &h, &err, NULL), 0);
	/* nesting still bounded: envelope > rec > record > 6 arrays */
	e = std_envelope_v2();
	deep = nnew(N_ARR);
	npush(v2_rec(e, 0), deep);
	for (int i = 0; i < 5; i++) {
		struct node *x = nnew(N_ARR);
		npush(deep, x);
		deep = x;
	}
	expect_reject(e, "nested deeper than 8 levels");
}

static void test_v2_inline_string_values_and_arena_bound(void **state)
{
	static char big[8000];
	struct node *e = std_envelope_v2();
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	/* An inline string value (tag bit 0) is allowed and copied. */
	v2_rec(e, 0)->v[11]->v[0] = nuint(S_PATH << 1);
	v2_rec(e, 0)->v[11]->v[1] = nstr("/inline");
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	npack(&pk, e);
	ig_err_init(&err);
	assert_int_equal(ig_wire_decode(d, sb.data, sb.size, &h, &err), 0);
	assert_int_equal(ig_wire_next(d, r), 1);
	assert_string_equal(r->fields[0].s, "/inline");
	msgpack_sbuffer_destroy(&sb);
	/* One 8000-byte string referenced three times needs more than a
	 * record's 16 KiB arena: rejected as in version 1. */
	memset(big, 'x', sizeof(big));
	e = std_envelope_v2();
	nget(e, "str")->v[S_HOSTS] = nstrn(big, sizeof(big));
	nget(e, "str")->v[S_COMM] = nstrn(big, sizeof(big));
	v2_rec(e, 0)->v[0] = nuint(S_HOSTS);
	expect_reject(e, "rec[0]: its strings need");
	ig_wire_dec_free(d);
	free(r);
}

static bool opt_eq(const char *a, const char *b)
{
	return (!a || !b) ? a == b : !strcmp(a, b);
}

static void expect_same_records(struct ig_wire_dec *a, struct ig_wire_dec *b)
{
	struct ig_record *ra = rec_new(), *rb = rec_new();

	while (ig_wire_next(a, ra) == 1) {
		assert_int_equal(ig_wire_next(b, rb), 1);
		assert_string_equal(ra->kind, rb->kind);
		assert_string_equal(ra->probe, rb->probe);
		assert_string_equal(ra->comm, rb->comm);
		assert_true(ra->ts_ns == rb->ts_ns && ra->pid == rb->pid && ra->tid == rb->tid &&
			    ra->ppid == rb->ppid && ra->uid == rb->uid && ra->gid == rb->gid &&
			    ra->cgroup_id == rb->cgroup_id);
		assert_true(opt_eq(ra->id.container_id, rb->id.container_id));
		assert_true(opt_eq(ra->id.pod_name, rb->id.pod_name));
		assert_true(opt_eq(ra->id.cgroup_path, rb->id.cgroup_path));
		assert_int_equal(ra->id.nlabels, rb->id.nlabels);
		for (uint32_t i = 0; i < ra->id.nlabels; i++) {
			assert_string_equal(ra->id.labels[i].key, rb->id.labels[i].key);
			assert_string_equal(ra->id.labels[i].val, rb->id.labels[i].val);
		}
		assert_int_equal(ra->nfields, rb->nfields);
		for (uint32_t i = 0; i < ra->nfields; i++) {
			assert_string_equal(ra->fields[i].key, rb->fields[i].key);
			assert_int_equal(ra->fields[i].type, rb->fields[i].type);
			if (ra->fields[i].type == IG_F_STR)
				assert_string_equal(ra->fields[i].s, rb->fields[i].s);
			else
				assert_true(ra->fields[i].u == rb->fields[i].u);
		}
	}
	assert_int_equal(ig_wire_next(b, rb), 0);
	free(ra);
	free(rb);
}

/* Rolling upgrades: one decoder takes v1 and v2 envelopes in turn, and the
 * same records give the same decoded records. Timestamps before t0 and
 * identities that change under one cgroup id included. */
static void test_v1_and_v2_decode_to_the_same_records(void **state)
{
	struct ig_wire_enc *e1 = ig_wire_enc_new_version(1), *e2 = ig_wire_enc_new();
	struct ig_wire_dec *d1 = ig_wire_dec_new(NULL), *d2 = ig_wire_dec_new(NULL);
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h, g1, g2;
	struct ig_err err;
	void *b1, *b2;
	size_t l1, l2;

	assert_int_equal(ig_wire_enc_version(e2), 2);
	for (int round = 0; round < 3; round++) {
		ig_wire_enc_reset(e1);
		ig_wire_enc_reset(e2);
		for (unsigned i = 0; i < 50; i++) {
			fill_full(r, i);
			if (i % 7 == 3)
				r->ts_ns -= 1000000; /* before the first record */
			if (i % 5 == 4)
				r->id.pod_name = "another"; /* same cgroup, other identity */
			if (i % 11 == 10)
				memset(&r->id, 0, sizeof(r->id)); /* no identity */
			assert_int_equal(ig_wire_enc_add(e1, r), 0);
			assert_int_equal(ig_wire_enc_add(e2, r), 0);
		}
		hdr_init(&h, (uint64_t)round + 1);
		assert_int_equal(ig_wire_enc_finish(e1, &h, &b1, &l1), 0);
		assert_int_equal(ig_wire_enc_finish(e2, &h, &b2, &l2), 0);
		ig_err_init(&err);
		assert_int_equal(ig_wire_decode(d1, b1, l1, &g1, &err), 0);
		/* d2 decodes v1 first, then v2: one decoder for both */
		assert_int_equal(ig_wire_decode(d2, b1, l1, &g2, &err), 0);
		assert_int_equal(g2.v, 1);
		assert_int_equal(ig_wire_decode(d2, b2, l2, &g2, &err), 0);
		assert_int_equal(g2.v, 2);
		assert_true(g1.seq == g2.seq && g1.boot_id == g2.boot_id &&
			    g1.nrecords == g2.nrecords && g1.nlost == g2.nlost);
		assert_string_equal(g1.agent_id, g2.agent_id);
		assert_string_equal(g1.node, g2.node);
		for (uint32_t i = 0; i < g1.nlost; i++) {
			assert_string_equal(g1.lost[i].cause, g2.lost[i].cause);
			assert_true(g1.lost[i].count == g2.lost[i].count);
		}
		expect_same_records(d1, d2);
		assert_true(l2 * 3 < l1);
		free(b1);
		free(b2);
	}
	ig_wire_enc_free(e1);
	ig_wire_enc_free(e2);
	ig_wire_dec_free(d1);
	ig_wire_dec_free(d2);
	free(r);
}

/* The size target of docs/wire-format.md: a typical pod file.open record
 * (the agent's fields, a full identity, two labels, a distinct path each)
 * takes at most 120 bytes in a 512-record v2 envelope. */
static void test_v2_typical_pod_record_is_at_most_120_bytes(void **state)
{
	struct ig_wire_enc *e = ig_wire_enc_new();
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	void *buf;
	size_t len;

	for (unsigned i = 0; i < 512; i++) {
		char path[64];
		int n = snprintf(path, sizeof(path), "/var/lib/app/data/segment-%06u.log", i);

		ig_record_reset(r);
		r->kind = "file.open";
		r->probe = "files";
		r->ts_ns = 1700000000000000000ULL + i * 150000ULL;
		r->pid = r->tid = 4000 + i % 8;
		r->ppid = 1;
		r->uid = r->gid = 1000;
		r->comm = "java";
		r->cgroup_id = 12345;
		r->id.scope = "pod";
		r->id.runtime = "containerd";
		r->id.container_id =
			"3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
		r->id.pod_uid = "8a1e2c34-5b6d-4e7f-8091-a2b3c4d5e6f7";
		r->id.pod_name = "orders-7d9f8b6c5-x2x4z";
		r->id.namespace_ = "shop";
		r->id.container_name = "orders";
		r->id.image = "registry.example.com/shop/orders:1.42.0";
		r->id.owner_kind = "Deployment";
		r->id.owner_name = "orders";
		ig_record_add_label(r, "app", "orders");
		ig_record_add_label(r, "tier", "backend");
		ig_record_add_str(r, "path", path, (size_t)n);
		ig_record_add_uint(r, "flags", 0x80000);
		ig_record_add_uint(r, "mode", 0);
		ig_record_add_int(r, "ret", 7);
		ig_record_add_str(r, "syscall", "openat", 6);
		ig_record_add_str(r, "access", "r", 1);
		assert_int_equal(ig_wire_enc_add(e, r), 0);
	}
	hdr_init(&h, 1);
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	print_message("v2: %.1f bytes per record\n", (double)len / 512);
	assert_true(len <= 120 * 512);
	free(buf);
	free(r);
	ig_wire_enc_free(e);
}

/* A v2 encoder leaves no trace of a record it refuses, and what it did
 * encode still decodes. */
static void test_v2_refused_record_leaves_the_batch_decodable(void **state)
{
	struct ig_wire_enc *e = ig_wire_enc_new();
	struct ig_record *r = rec_new();
	struct ig_envelope_hdr h;
	struct ig_err err;
	void *buf;
	size_t len;

	fill_full(r, 0);
	assert_int_equal(ig_wire_enc_add(e, r), 0);
	fill_full(r, 1);
	r->fields[1].key = "path"; /* duplicate */
	assert_int_equal(ig_wire_enc_add(e, r), -EINVAL);
	fill_full(r, 2);
	assert_int_equal(ig_wire_enc_add(e, r), 0);
	assert_int_equal(ig_wire_enc_count(e), 2);
	hdr_init(&h, 1);
	assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
	assert_int_equal(decode(buf, len, &h, &err, NULL), 0);
	assert_int_equal(h.nrecords, 2);
	free(buf);
	free(r);
	ig_wire_enc_free(e);
	assert_null(ig_wire_enc_new_version(3));
}

static int run_v2_tests(void)
{
	const struct CMUnitTest v2[] = {
		cmocka_unit_test(test_v2_hand_built_envelope_is_accepted_with_every_value),
		cmocka_unit_test(test_v2_out_of_range_indexes_are_rejected_naming_the_place),
		cmocka_unit_test(test_v2_wrong_shapes_and_counts_are_rejected),
		cmocka_unit_test(test_v2_keys_are_unique_by_content_and_not_empty),
		cmocka_unit_test(test_v2_envelope_keys_order_and_presence),
		cmocka_unit_test(test_v2_later_elements_are_skipped_but_bounded),
		cmocka_unit_test(test_v2_inline_string_values_and_arena_bound),
		cmocka_unit_test(test_v1_and_v2_decode_to_the_same_records),
		cmocka_unit_test(test_v2_typical_pod_record_is_at_most_120_bytes),
		cmocka_unit_test(test_v2_refused_record_leaves_the_batch_decodable),
	};

	return _cmocka_run_group_tests("wire_v2_schema", v2, sizeof(v2) / sizeof(v2[0]), NULL,
				       NULL);
}

int main(void)
{
	/* With the encoder of each version. */
	const struct CMUnitTest by_version[] = {
		cmocka_unit_test(test_roundtrip_keeps_every_field_type_identity_and_labels),
		cmocka_unit_test(test_empty_batch_roundtrips),
		cmocka_unit_test(test_encoder_reset_starts_a_new_batch),
		cmocka_unit_test(test_decoder_is_reusable_and_resets_after_a_rejection),
		cmocka_unit_test(test_limits_at_their_maximum_are_accepted),
		cmocka_unit_test(test_encoder_refuses_records_the_decoder_would_reject),
		cmocka_unit_test(test_finish_refuses_bad_lost_table),
		cmocka_unit_test(test_truncation_at_every_byte_offset_is_rejected),
		cmocka_unit_test(test_truncation_message_says_where),
		cmocka_unit_test(test_trailing_bytes_are_rejected),
		cmocka_unit_test(test_unknown_version_is_rejected_naming_it),
		cmocka_unit_test(test_oversized_message_is_rejected_with_the_limit),
		cmocka_unit_test(test_too_many_records_are_rejected),
		cmocka_unit_test(test_string_over_max_str_is_rejected),
		cmocka_unit_test(test_seq_is_reported_even_when_rejected),
		cmocka_unit_test(test_random_bytes_are_rejected_without_crashing),
		cmocka_unit_test(test_mutated_envelopes_decode_or_reject_cleanly),
		cmocka_unit_test(test_huge_declared_counts_are_rejected_cheaply),
	};
	/* Version 1 envelopes built by hand, acks, the reader. */
	const struct CMUnitTest v1[] = {
		cmocka_unit_test(test_hand_built_envelope_is_accepted),
		cmocka_unit_test(test_wrong_type_for_each_key_is_rejected_naming_it),
		cmocka_unit_test(test_u32_fields_reject_values_above_uint32_max),
		cmocka_unit_test(
			test_signed_format_with_non_negative_value_is_accepted_for_unsigned_keys),
		cmocka_unit_test(test_missing_required_keys_are_rejected),
		cmocka_unit_test(test_identity_is_optional),
		cmocka_unit_test(test_duplicate_keys_are_rejected_at_every_level),
		cmocka_unit_test(test_nul_in_any_string_is_rejected),
		cmocka_unit_test(test_empty_kind_agent_id_and_keys_are_rejected),
		cmocka_unit_test(test_non_string_keys_are_rejected),
		cmocka_unit_test(test_too_many_fields_labels_and_lost_entries_are_rejected),
		cmocka_unit_test(test_record_that_would_overflow_the_arena_is_rejected),
		cmocka_unit_test(test_unknown_keys_are_ignored_for_forward_compatibility),
		cmocka_unit_test(test_too_many_unknown_keys_are_rejected),
		cmocka_unit_test(test_deep_nesting_is_rejected),
		cmocka_unit_test(test_root_must_be_a_map),
		cmocka_unit_test(test_many_errors_are_reported_then_capped),
		cmocka_unit_test(test_hostile_keys_are_printed_safely),
		cmocka_unit_test(test_ack_roundtrip_for_every_status),
		cmocka_unit_test(test_ack_error_text_is_cut_to_the_buffer),
		cmocka_unit_test(test_ack_encode_refuses_unknown_status),
		cmocka_unit_test(test_malformed_acks_are_rejected),
		cmocka_unit_test(test_truncated_or_padded_acks_are_rejected),
		cmocka_unit_test(test_reader_keeps_integer_signedness_and_widths),
	};
	int failed = 0;

	g_version = 1;
	failed += _cmocka_run_group_tests("wire_v1_encoder", by_version,
					  sizeof(by_version) / sizeof(by_version[0]), NULL, NULL);
	failed += _cmocka_run_group_tests("wire_v1_schema", v1, sizeof(v1) / sizeof(v1[0]), NULL,
					  NULL);
	g_version = 2;
	failed += _cmocka_run_group_tests("wire_v2_encoder", by_version,
					  sizeof(by_version) / sizeof(by_version[0]), NULL, NULL);
	failed += run_v2_tests();
	return failed;
}
