/* ig_wire: the encoder and the acks (the decoder is ig_wire_dec.c); the
 * format is specified in docs/wire-format.md.
 *
 * The agent packs each record with msgpack-c as it arrives, into one growing
 * buffer, so sealing a batch costs one small header and one copy. Records are
 * checked before they are packed against what the aggregator's decoder
 * accepts with default limits: one record the aggregator would refuse would
 * otherwise get its whole envelope rejected, so it is refused here alone and
 * the agent counts it as lost.
 *
 * Integers in record bodies keep their type on the wire: IG_F_INT is packed
 * with a signed format (negative fixint, int 8..64) even when non-negative,
 * IG_F_UINT with an unsigned one (positive fixint, uint 8..64). Any msgpack
 * reader gets the right number; ingrain's decoder also gets the right type.
 */
#include "ig_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "ig_mpack.h"
#include "ig_wire_schema.h"
#include "ig_wire_v2.h"

void ig_wire_limits_default(struct ig_wire_limits *l)
{
	l->max_msg_bytes = IG_WIRE_DEFAULT_MAX_MSG;
	l->max_records = IG_WIRE_DEFAULT_MAX_RECORDS;
	l->max_str = IG_WIRE_DEFAULT_MAX_STR;
}

/* Version 1 is encoded here, version 2 by ig_wire_enc2.c. */
struct ig_wire_enc {
	unsigned version;
	struct ig_wire_enc2 *v2;
	msgpack_sbuffer sb; /* v1: the packed records, without the array header */
	msgpack_packer pk;
	uint32_t n;
};

struct ig_wire_enc *ig_wire_enc_new_version(unsigned version)
{
	struct ig_wire_enc *e;

	if (version == 0)
		version = IG_WIRE_VERSION;
	if (version < IG_WIRE_VERSION_MIN || version > IG_WIRE_VERSION)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->version = version;
	if (version == 2 && !(e->v2 = ig_wire_enc2_new())) {
		free(e);
		return NULL;
	}
	msgpack_sbuffer_init(&e->sb);
	msgpack_packer_init(&e->pk, &e->sb, msgpack_sbuffer_write);
	return e;
}

struct ig_wire_enc *ig_wire_enc_new(void)
{
	return ig_wire_enc_new_version(IG_WIRE_VERSION);
}

unsigned ig_wire_enc_version(const struct ig_wire_enc *e)
{
	return e->version;
}

void ig_wire_enc_free(struct ig_wire_enc *e)
{
	if (!e)
		return;
	ig_wire_enc2_free(e->v2);
	msgpack_sbuffer_destroy(&e->sb);
	free(e);
}

void ig_wire_enc_reset(struct ig_wire_enc *e)
{
	if (e->v2)
		ig_wire_enc2_reset(e->v2);
	msgpack_sbuffer_clear(&e->sb); /* keeps the allocation for the next batch */
	e->n = 0;
}

uint32_t ig_wire_enc_count(const struct ig_wire_enc *e)
{
	return e->v2 ? ig_wire_enc2_count(e->v2) : e->n;
}

size_t ig_wire_enc_bytes(const struct ig_wire_enc *e)
{
	return e->v2 ? ig_wire_enc2_bytes(e->v2) : e->sb.size;
}

static int pk_str(msgpack_packer *pk, const char *s)
{
	if (!s)
		s = "";
	return msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int pk_key(msgpack_packer *pk, const char *k)
{
	return msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* A key that is a string literal: its length is known at compile time. */
#define PK_KEY(pk, lit) msgpack_pack_str_with_body(pk, lit, sizeof(lit) - 1)

/* A signed-format integer of the smallest width: see the top comment. */
static int pk_signed(msgpack_packer *pk, int64_t v)
{
	if (v >= -32 && v < 0)
		return msgpack_pack_int8(pk, (int8_t)v); /* negative fixint */
	if (v >= INT8_MIN && v <= INT8_MAX)
		return msgpack_pack_fix_int8(pk, (int8_t)v);
	if (v >= INT16_MIN && v <= INT16_MAX)
		return msgpack_pack_fix_int16(pk, (int16_t)v);
	if (v >= INT32_MIN && v <= INT32_MAX)
		return msgpack_pack_fix_int32(pk, (int32_t)v);
	return msgpack_pack_fix_int64(pk, v);
}

static bool str_ok(const char *s, size_t *need)
{
	size_t n = s ? strlen(s) : 0;

	*need += n + 1;
	return n <= IG_WIRE_DEFAULT_MAX_STR;
}

/* Would the decoder (default limits) accept this record? */
static int check_record(const struct ig_record *r)
{
	size_t need = 0;
	bool ok = true;

	if (!r->kind || !r->kind[0] || r->nfields > IG_MAX_FIELDS || r->id.nlabels > IG_MAX_LABELS)
		return -EINVAL;
	ok &= str_ok(r->kind, &need);
	ok &= str_ok(r->probe, &need);
	ok &= str_ok(r->comm, &need);
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
		if (ig_wire_id_get(&r->id, i))
			ok &= str_ok(ig_wire_id_get(&r->id, i), &need);
	for (uint32_t i = 0; i < r->id.nlabels; i++) {
		const struct ig_label *l = &r->id.labels[i];

		if (!l->key || !l->key[0])
			return -EINVAL;
		ok &= str_ok(l->key, &need) && str_ok(l->val, &need);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(l->key, r->id.labels[j].key))
				return -EINVAL;
	}
	for (uint32_t i = 0; i < r->nfields; i++) {
		const struct ig_field *f = &r->fields[i];

		if (!f->key || !f->key[0])
			return -EINVAL;
		if (f->type != IG_F_STR && f->type != IG_F_INT && f->type != IG_F_UINT)
			return -EINVAL;
		ok &= str_ok(f->key, &need);
		if (f->type == IG_F_STR)
			ok &= str_ok(f->s, &need);
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(f->key, r->fields[j].key))
				return -EINVAL;
	}
	if (!ok || need > IG_RECORD_ARENA)
		return -EINVAL;
	return 0;
}

static int pack_identity(msgpack_packer *pk, const struct ig_identity *id)
{
	size_t n = 0;
	int rv = 0;

	for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
		n += ig_wire_id_get(id, i) != NULL;
	rv |= msgpack_pack_map(pk, n + (id->nlabels > 0));
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++) {
		if (!ig_wire_id_get(id, i))
			continue;
		rv |= pk_key(pk, ig_wire_id_members[i].key);
		rv |= pk_str(pk, ig_wire_id_get(id, i));
	}
	if (id->nlabels) {
		rv |= PK_KEY(pk, "lbl");
		rv |= msgpack_pack_map(pk, id->nlabels);
		for (uint32_t i = 0; i < id->nlabels; i++) {
			rv |= pk_str(pk, id->labels[i].key);
			rv |= pk_str(pk, id->labels[i].val);
		}
	}
	return rv;
}

static bool has_identity(const struct ig_identity *id)
{
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
		if (ig_wire_id_get(id, i))
			return true;
	return id->nlabels > 0;
}

static int pack_fields(msgpack_packer *pk, const struct ig_record *r)
{
	int rv = msgpack_pack_map(pk, r->nfields);

	for (uint32_t i = 0; i < r->nfields; i++) {
		const struct ig_field *f = &r->fields[i];

		rv |= pk_str(pk, f->key);
		if (f->type == IG_F_STR)
			rv |= pk_str(pk, f->s);
		else if (f->type == IG_F_INT)
			rv |= pk_signed(pk, f->i);
		else
			rv |= msgpack_pack_uint64(pk, f->u);
	}
	return rv;
}

int ig_wire_enc_add(struct ig_wire_enc *e, const struct ig_record *r)
{
	msgpack_packer *pk = &e->pk;
	size_t mark = e->sb.size;
	bool id = has_identity(&r->id);
	int rv;

	if (e->v2)
		return ig_wire_enc2_add(e->v2, r);
	rv = check_record(r);
	if (rv < 0)
		return rv;
	rv = msgpack_pack_map(pk, 11 + id);
	rv |= PK_KEY(pk, "k");
	rv |= pk_str(pk, r->kind);
	rv |= PK_KEY(pk, "p");
	rv |= pk_str(pk, r->probe);
	rv |= PK_KEY(pk, "ts");
	rv |= msgpack_pack_uint64(pk, r->ts_ns);
	rv |= PK_KEY(pk, "pid");
	rv |= msgpack_pack_uint32(pk, r->pid);
	rv |= PK_KEY(pk, "tid");
	rv |= msgpack_pack_uint32(pk, r->tid);
	rv |= PK_KEY(pk, "ppid");
	rv |= msgpack_pack_uint32(pk, r->ppid);
	rv |= PK_KEY(pk, "uid");
	rv |= msgpack_pack_uint32(pk, r->uid);
	rv |= PK_KEY(pk, "gid");
	rv |= msgpack_pack_uint32(pk, r->gid);
	rv |= PK_KEY(pk, "comm");
	rv |= pk_str(pk, r->comm);
	rv |= PK_KEY(pk, "cg");
	rv |= msgpack_pack_uint64(pk, r->cgroup_id);
	if (id) {
		rv |= PK_KEY(pk, "id");
		rv |= pack_identity(pk, &r->id);
	}
	rv |= PK_KEY(pk, "f");
	rv |= pack_fields(pk, r);
	if (rv) {
		e->sb.size = mark; /* drop the partial record */
		return -ENOMEM;
	}
	e->n++;
	return 0;
}

int ig_wire_enc_finish(struct ig_wire_enc *e, const struct ig_envelope_hdr *hdr, void **buf,
		       size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rv = 0;
	char *out;

	if (e->v2)
		return ig_wire_enc2_finish(e->v2, hdr, buf, len);
	*buf = NULL;
	*len = 0;
	if (hdr->nlost > IG_WIRE_MAX_LOST)
		return -EINVAL;
	for (uint32_t i = 0; i < hdr->nlost; i++)
		if (!hdr->lost[i].cause)
			return -EINVAL;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rv |= msgpack_pack_map(&pk, 8);
	/* v first: a decoder learns the version before anything else. A
	 * non-zero hdr->v is kept so tests can build other versions. */
	rv |= PK_KEY(&pk, "v");
	rv |= msgpack_pack_uint32(&pk, hdr->v ? hdr->v : 1);
	rv |= PK_KEY(&pk, "agent_id");
	rv |= pk_str(&pk, hdr->agent_id);
	rv |= PK_KEY(&pk, "node");
	rv |= pk_str(&pk, hdr->node);
	rv |= PK_KEY(&pk, "boot_id");
	rv |= msgpack_pack_uint64(&pk, hdr->boot_id);
	rv |= PK_KEY(&pk, "seq");
	rv |= msgpack_pack_uint64(&pk, hdr->seq);
	rv |= PK_KEY(&pk, "sent_ns");
	rv |= msgpack_pack_uint64(&pk, hdr->sent_ns);
	rv |= PK_KEY(&pk, "lost");
	rv |= msgpack_pack_map(&pk, hdr->nlost);
	for (uint32_t i = 0; i < hdr->nlost; i++) {
		rv |= pk_str(&pk, hdr->lost[i].cause);
		rv |= msgpack_pack_uint64(&pk, hdr->lost[i].count);
	}
	rv |= PK_KEY(&pk, "records");
	rv |= msgpack_pack_array(&pk, e->n);
	out = rv ? NULL : malloc(sb.size + e->sb.size);
	if (!out) {
		msgpack_sbuffer_destroy(&sb);
		return -ENOMEM;
	}
	memcpy(out, sb.data, sb.size);
	if (e->sb.size)
		memcpy(out + sb.size, e->sb.data, e->sb.size);
	*buf = out;
	*len = sb.size + e->sb.size;
	msgpack_sbuffer_destroy(&sb);
	return 0;
}

/* --- acks --- */

int ig_wire_ack_encode(uint64_t seq, enum ig_ack_status st, const char *errmsg, void **buf,
		       size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t elen = errmsg ? strlen(errmsg) : 0;
	int rv = 0;

	*buf = NULL;
	*len = 0;
	if (st != IG_ACK_OK && st != IG_ACK_DUPLICATE && st != IG_ACK_REJECTED)
		return -EINVAL;
	/* The message is informational: cut it rather than fail the ack. */
	if (elen > IG_WIRE_ACK_MAX_ERR)
		elen = IG_WIRE_ACK_MAX_ERR;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rv |= msgpack_pack_map(&pk, 4);
	rv |= PK_KEY(&pk, "v");
	rv |= msgpack_pack_uint32(&pk, IG_WIRE_ACK_VERSION);
	rv |= PK_KEY(&pk, "seq");
	rv |= msgpack_pack_uint64(&pk, seq);
	rv |= PK_KEY(&pk, "st");
	rv |= msgpack_pack_uint32(&pk, (uint32_t)st);
	rv |= PK_KEY(&pk, "err");
	rv |= msgpack_pack_str_with_body(&pk, errmsg ? errmsg : "", elen);
	if (rv) {
		msgpack_sbuffer_destroy(&sb);
		return -ENOMEM;
	}
	*len = sb.size;
	*buf = msgpack_sbuffer_release(&sb);
	return 0;
}

enum { ACK_V = 1, ACK_SEQ = 2, ACK_ST = 4, ACK_ERR = 8 };

static int ack_key(const struct ig_mp_val *k)
{
	static const char *const names[] = { "v", "seq", "st", "err" };

	for (int i = 0; i < 4; i++)
		if (k->s.len == strlen(names[i]) && !memcmp(k->s.ptr, names[i], k->s.len))
			return 1 << i;
	return 0;
}

static int ack_parse(const void *buf, size_t len, uint64_t *seq, enum ig_ack_status *st,
		     char *errbuf, size_t errlen)
{
	struct ig_mp mp;
	struct ig_mp_val m, k, v;
	uint64_t x, ver = 0, s = 0, status = 0;
	unsigned seen = 0;

	if (!buf || len > IG_WIRE_ACK_MAX_BYTES)
		return -EBADMSG;
	ig_mp_init(&mp, buf, len);
	if (ig_mp_read(&mp, &m) < 0 || m.type != IG_MP_MAP || m.n > 4 + IG_WIRE_MAX_UNKNOWN)
		return -EBADMSG;
	for (uint32_t i = 0; i < m.n; i++) {
		int bit;

		if (ig_mp_read(&mp, &k) < 0 || k.type != IG_MP_STR)
			return -EBADMSG;
		bit = ack_key(&k);
		if (bit & seen)
			return -EBADMSG; /* duplicate key */
		seen |= bit;
		if (!bit) { /* unknown: ignored, as in envelopes */
			if (ig_mp_skip(&mp, IG_WIRE_MAX_DEPTH - 1) < 0)
				return -EBADMSG;
			continue;
		}
		if (ig_mp_read(&mp, &v) < 0)
			return -EBADMSG;
		if (bit == ACK_ERR) {
			if (v.type != IG_MP_STR || memchr(v.s.ptr, '\0', v.s.len))
				return -EBADMSG;
			if (errbuf && errlen) {
				size_t n = v.s.len < errlen - 1 ? v.s.len : errlen - 1;
				memcpy(errbuf, v.s.ptr, n);
				errbuf[n] = '\0';
			}
			continue;
		}
		if (!ig_mp_uint_val(&v, UINT64_MAX, &x))
			return -EBADMSG;
		if (bit == ACK_V)
			ver = x;
		else if (bit == ACK_SEQ)
			s = x;
		else
			status = x;
	}
	if (ig_mp_left(&mp) != 0 ||
	    (seen & (ACK_V | ACK_SEQ | ACK_ST)) != (ACK_V | ACK_SEQ | ACK_ST))
		return -EBADMSG;
	if (ver != IG_WIRE_ACK_VERSION || status > IG_ACK_REJECTED)
		return -EBADMSG;
	if (seq)
		*seq = s;
	if (st)
		*st = (enum ig_ack_status)status;
	return 0;
}

int ig_wire_ack_decode(const void *buf, size_t len, uint64_t *seq, enum ig_ack_status *st,
		       char *errbuf, size_t errlen)
{
	int rv;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	rv = ack_parse(buf, len, seq, st, errbuf, errlen);
	if (rv < 0 && errbuf && errlen)
		errbuf[0] = '\0';
	return rv;
}
