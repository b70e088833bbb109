/* ig_wire_enc2: the version 2 envelope encoder (ig_wire_v2.h; the format is
 * specified in docs/wire-format.md, "Version 2").
 *
 * A v2 envelope carries each distinct string once, in its string table
 * `str`, and each distinct identity once, in its identity table `ids`;
 * records are fixed-position arrays whose strings are indexes into `str`.
 * The encoder keeps, per batch:
 *   - the packed string table and an open-addressing hash table from string
 *     content to index (ig_hash_bytes; load kept under one half);
 *   - the packed identity table and, per cgroup id, the identity last used
 *     for it: a record whose identity has the same content reuses the entry
 *     (contents are compared, never pointers: the agent's identity cache may
 *     free and reuse its strings between two records);
 *   - the packed records.
 * Nothing is allocated per record once the buffers have grown to a batch's
 * size; enc2_reset keeps them.
 *
 * A record is checked against what the decoder accepts with default limits
 * before anything is written (the same rules as v1: ig_wire.h), so a refused
 * record leaves the batch as it was.
 */
#include "ig_wire_v2.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ig_hash.h"
#include "ig_mpack.h"
#include "ig_wire_schema.h"

#define NO_STR UINT32_MAX

struct str_ent {
	uint64_t hash;
	uint32_t off; /* of the bytes in e->strs.buf */
	uint32_t len;
};

struct id_ent {
	uint64_t cg;
	uint32_t m[IG_WIRE_ID_NSTR]; /* string index, NO_STR when absent */
	uint32_t nlabels;
	uint32_t lbl; /* first of 2 * nlabels indexes in e->lbl */
	uint32_t need; /* arena bytes its strings count for in a decoded record */
};

struct ig_wire_enc2 {
	struct ig_mpw recs, strs, ids;
	uint32_t n; /* records */
	uint64_t t0;
	/* string table */
	struct str_ent *str;
	uint32_t nstr, str_cap;
	uint32_t *slot; /* index + 1, 0 = empty */
	uint32_t slot_mask;
	/* identity table */
	struct id_ent *id;
	uint32_t nid, id_cap;
	uint32_t *lbl;
	uint32_t nlbl, lbl_cap;
	uint32_t *id_slot; /* by cgroup id: identity index + 1 */
	uint32_t id_slot_mask;
};

#define STR_SLOTS0 1024u
#define ID_SLOTS 256u

struct ig_wire_enc2 *ig_wire_enc2_new(void)
{
	struct ig_wire_enc2 *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->slot = calloc(STR_SLOTS0, sizeof(*e->slot));
	e->id_slot = calloc(ID_SLOTS, sizeof(*e->id_slot));
	if (!e->slot || !e->id_slot) {
		ig_wire_enc2_free(e);
		return NULL;
	}
	e->slot_mask = STR_SLOTS0 - 1;
	e->id_slot_mask = ID_SLOTS - 1;
	ig_mpw_init(&e->recs);
	ig_mpw_init(&e->strs);
	ig_mpw_init(&e->ids);
	return e;
}

void ig_wire_enc2_free(struct ig_wire_enc2 *e)
{
	if (!e)
		return;
	ig_mpw_free(&e->recs);
	ig_mpw_free(&e->strs);
	ig_mpw_free(&e->ids);
	free(e->str);
	free(e->slot);
	free(e->id);
	free(e->lbl);
	free(e->id_slot);
	free(e);
}

void ig_wire_enc2_reset(struct ig_wire_enc2 *e)
{
	e->recs.len = e->strs.len = e->ids.len = 0;
	e->recs.failed = e->strs.failed = e->ids.failed = false;
	e->n = e->nstr = e->nid = e->nlbl = 0;
	memset(e->slot, 0, ((size_t)e->slot_mask + 1) * sizeof(*e->slot));
	memset(e->id_slot, 0, ((size_t)e->id_slot_mask + 1) * sizeof(*e->id_slot));
}

uint32_t ig_wire_enc2_count(const struct ig_wire_enc2 *e)
{
	return e->n;
}

size_t ig_wire_enc2_bytes(const struct ig_wire_enc2 *e)
{
	return e->recs.len + e->strs.len + e->ids.len;
}

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t c = *cap ? *cap : 256;
	void *np;

	if (need <= *cap)
		return true;
	while (c < need)
		c *= 2;
	np = realloc(*p, (size_t)c * elem);
	if (!np)
		return false;
	*p = np;
	*cap = c;
	return true;
}

static bool rehash(struct ig_wire_enc2 *e)
{
	uint32_t nslots = 2 * (e->slot_mask + 1);
	uint32_t *ns = calloc(nslots, sizeof(*ns));

	if (!ns)
		return false;
	for (uint32_t i = 0; i < e->nstr; i++) {
		uint32_t s = (uint32_t)e->str[i].hash & (nslots - 1);

		while (ns[s])
			s = (s + 1) & (nslots - 1);
		ns[s] = i + 1;
	}
	free(e->slot);
	e->slot = ns;
	e->slot_mask = nslots - 1;
	return true;
}

static bool str_eq(const struct ig_wire_enc2 *e, uint32_t i, const char *s, uint32_t len)
{
	return e->str[i].len == len && !memcmp(e->strs.buf + e->str[i].off, s, len);
}

/* The index of s in the string table, added if new. NO_STR on ENOMEM. */
static uint32_t intern(struct ig_wire_enc2 *e, const char *s, uint32_t len)
{
	uint64_t h = ig_hash_bytes(s, len, 0);
	uint32_t slot = (uint32_t)h & e->slot_mask, idx;

	for (;;) {
		uint32_t v = e->slot[slot];

		if (!v)
			break;
		if (e->str[v - 1].hash == h && str_eq(e, v - 1, s, len))
			return v - 1;
		slot = (slot + 1) & e->slot_mask;
	}
	if (!grow((void **)&e->str, &e->str_cap, e->nstr + 1, sizeof(*e->str)))
		return NO_STR;
	ig_mpw_str(&e->strs, s, len);
	if (e->strs.failed)
		return NO_STR;
	idx = e->nstr++;
	e->str[idx] = (struct str_ent){ h, (uint32_t)(e->strs.len - len), len };
	e->slot[slot] = idx + 1;
	if (2 * e->nstr > e->slot_mask + 1 && !rehash(e)) {
		e->nstr--; /* not findable: forget it (its bytes stay, unused) */
		e->slot[slot] = 0;
		return NO_STR;
	}
	return idx;
}

/* Lengths of the record's strings, measured once by the check. */
struct lens {
	uint32_t kind, probe, comm;
	uint32_t id[IG_WIRE_ID_NSTR];
	uint32_t lk[IG_MAX_LABELS], lv[IG_MAX_LABELS];
	uint32_t fk[IG_MAX_FIELDS], fv[IG_MAX_FIELDS];
	size_t need_id; /* the identity's part of the arena bytes */
};

static bool measure(const char *s, uint32_t *len, size_t *need)
{
	size_t n = s ? strlen(s) : 0;

	*len = (uint32_t)n;
	*need += n + 1;
	return n <= IG_WIRE_DEFAULT_MAX_STR;
}

/* Would the decoder (default limits) accept this record? Same rules as
 * v1's check_record (ig_wire.c). hit: the identity table entry that r's
 * identity is equal to, if any (then it was checked when it was added). */
static int check_record(const struct ig_record *r, struct lens *L, const struct id_ent *hit)
{
	size_t need = 0;
	bool ok = true;

	if (!r->kind || !r->kind[0] || r->nfields > IG_MAX_FIELDS || r->id.nlabels > IG_MAX_LABELS)
		return -EINVAL;
	ok &= measure(r->kind, &L->kind, &need);
	ok &= measure(r->probe, &L->probe, &need);
	ok &= measure(r->comm, &L->comm, &need);
	L->need_id = 0;
	if (hit) {
		need += hit->need;
		goto fields;
	}
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++) {
		const char *s = ig_wire_id_get(&r->id, i);

		if (s)
			ok &= measure(s, &L->id[i], &L->need_id);
	}
	for (uint32_t i = 0; i < r->id.nlabels; i++) {
		const struct ig_label *l = &r->id.labels[i];

		if (!l->key || !l->key[0])
			return -EINVAL;
		ok &= measure(l->key, &L->lk[i], &L->need_id) &&
		      measure(l->val, &L->lv[i], &L->need_id);
		for (uint32_t j = 0; j < i; j++)
			if (L->lk[j] == L->lk[i] && !memcmp(l->key, r->id.labels[j].key, L->lk[i]))
				return -EINVAL;
	}
	need += L->need_id;
fields:
	for (uint32_t i = 0; i < r->nfields; i++) {
		const struct ig_field *f = &r->fields[i];

		if (!f->key || !f->key[0])
			return -EINVAL;
		if (f->type != IG_F_STR && f->type != IG_F_INT && f->type != IG_F_UINT)
			return -EINVAL;
		ok &= measure(f->key, &L->fk[i], &need);
		if (f->type == IG_F_STR)
			ok &= measure(f->s, &L->fv[i], &need);
		for (uint32_t j = 0; j < i; j++)
			if (L->fk[j] == L->fk[i] && !memcmp(f->key, r->fields[j].key, L->fk[i]))
				return -EINVAL;
	}
	if (!ok || need > IG_RECORD_ARENA)
		return -EINVAL;
	return 0;
}

/* Whether the C string s equals string table entry i, without measuring
 * s first (strncmp stops at s's end; entries hold no NUL). */
static bool str_is(const struct ig_wire_enc2 *e, uint32_t i, const char *s)
{
	uint32_t n = e->str[i].len;

	return !strncmp(s, (const char *)e->strs.buf + e->str[i].off, n) && s[n] == '\0';
}

static bool id_matches(const struct ig_wire_enc2 *e, const struct id_ent *x,
		       const struct ig_identity *id)
{
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++) {
		const char *s = ig_wire_id_get(id, i);

		if (!s != (x->m[i] == NO_STR))
			return false;
		if (s && !str_is(e, x->m[i], s))
			return false;
	}
	if (x->nlabels != id->nlabels)
		return false;
	for (uint32_t i = 0; i < id->nlabels; i++) {
		const char *v = id->labels[i].val ? id->labels[i].val : "";

		if (!id->labels[i].key || !str_is(e, e->lbl[x->lbl + 2 * i], id->labels[i].key) ||
		    !str_is(e, e->lbl[x->lbl + 2 * i + 1], v))
			return false;
	}
	return true;
}

static bool has_identity(const struct ig_identity *id)
{
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
		if (ig_wire_id_get(id, i))
			return true;
	return id->nlabels > 0;
}

static uint32_t id_slot(const struct ig_wire_enc2 *e, uint64_t cg)
{
	return (uint32_t)ig_hash_mix(cg, 0x9e3779b97f4a7c15ULL) & e->id_slot_mask;
}

/* The entry of the identity last added for r's cgroup id, when r's
 * identity equals it; NULL otherwise. */
static const struct id_ent *cached_identity(const struct ig_wire_enc2 *e, const struct ig_record *r)
{
	uint32_t cur = e->id_slot[id_slot(e, r->cgroup_id)];

	if (cur && e->id[cur - 1].cg == r->cgroup_id && id_matches(e, &e->id[cur - 1], &r->id))
		return &e->id[cur - 1];
	return NULL;
}

/* The identity table index for r's identity, added if new. -ENOMEM. */
static int64_t identity(struct ig_wire_enc2 *e, const struct ig_record *r, const struct lens *L)
{
	uint32_t slot = id_slot(e, r->cgroup_id);
	struct id_ent *x;
	uint32_t idx;
	size_t mark;

	if (!grow((void **)&e->id, &e->id_cap, e->nid + 1, sizeof(*e->id)) ||
	    !grow((void **)&e->lbl, &e->lbl_cap, e->nlbl + 2 * r->id.nlabels, sizeof(*e->lbl)))
		return -ENOMEM;
	x = &e->id[e->nid];
	x->cg = r->cgroup_id;
	x->nlabels = r->id.nlabels;
	x->lbl = e->nlbl;
	x->need = (uint32_t)L->need_id;
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++) {
		const char *s = ig_wire_id_get(&r->id, i);

		x->m[i] = s ? intern(e, s, L->id[i]) : NO_STR;
		if (s && x->m[i] == NO_STR)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->id.nlabels; i++) {
		const char *v = r->id.labels[i].val ? r->id.labels[i].val : "";
		uint32_t k = intern(e, r->id.labels[i].key, L->lk[i]);
		uint32_t vi = intern(e, v, L->lv[i]);

		if (k == NO_STR || vi == NO_STR)
			return -ENOMEM;
		e->lbl[x->lbl + 2 * i] = k;
		e->lbl[x->lbl + 2 * i + 1] = vi;
	}
	/* Written only now that every string is in: a failure above leaves
	 * the packed table as it was. */
	mark = e->ids.len;
	ig_mpw_array(&e->ids, IG_W2_ID_N);
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++) {
		if (x->m[i] == NO_STR)
			ig_mpw_nil(&e->ids);
		else
			ig_mpw_uint(&e->ids, x->m[i]);
	}
	ig_mpw_array(&e->ids, 2 * x->nlabels);
	for (uint32_t i = 0; i < 2 * x->nlabels; i++)
		ig_mpw_uint(&e->ids, e->lbl[x->lbl + i]);
	if (e->ids.failed) {
		e->ids.len = mark; /* no partial entry */
		return -ENOMEM;
	}
	e->nlbl += 2 * x->nlabels;
	idx = e->nid++;
	e->id_slot[slot] = idx + 1;
	return idx;
}

int ig_wire_enc2_add(struct ig_wire_enc2 *e, const struct ig_record *r)
{
	struct lens L;
	size_t mark = e->recs.len;
	uint32_t k, p, c, fk[IG_MAX_FIELDS], fv[IG_MAX_FIELDS];
	int64_t id = -1;
	bool has_id = has_identity(&r->id);
	const struct id_ent *hit = has_id ? cached_identity(e, r) : NULL;
	int rv = check_record(r, &L, hit);

	if (rv < 0)
		return rv;
	k = intern(e, r->kind, L.kind);
	p = intern(e, r->probe ? r->probe : "", L.probe);
	c = intern(e, r->comm ? r->comm : "", L.comm);
	if (k == NO_STR || p == NO_STR || c == NO_STR)
		goto nomem;
	for (uint32_t i = 0; i < r->nfields; i++) {
		const struct ig_field *f = &r->fields[i];

		fk[i] = intern(e, f->key, L.fk[i]);
		fv[i] = f->type == IG_F_STR ? intern(e, f->s ? f->s : "", L.fv[i]) : 0;
		if (fk[i] == NO_STR || fv[i] == NO_STR)
			goto nomem;
	}
	if (hit) {
		id = hit - e->id;
	} else if (has_id) {
		id = identity(e, r, &L);
		if (id < 0)
			goto nomem;
	}
	if (e->n == 0)
		e->t0 = r->ts_ns;
	ig_mpw_array(&e->recs, IG_W2_REC_N);
	ig_mpw_uint(&e->recs, k);
	ig_mpw_uint(&e->recs, p);
	/* The offset from t0, mod 2^64: small and usually positive. */
	if (r->ts_ns >= e->t0)
		ig_mpw_uint(&e->recs, r->ts_ns - e->t0);
	else
		ig_mpw_int(&e->recs, (int64_t)(r->ts_ns - e->t0));
	ig_mpw_uint(&e->recs, r->pid);
	ig_mpw_uint(&e->recs, r->tid);
	ig_mpw_uint(&e->recs, r->ppid);
	ig_mpw_uint(&e->recs, r->uid);
	ig_mpw_uint(&e->recs, r->gid);
	ig_mpw_uint(&e->recs, c);
	ig_mpw_uint(&e->recs, r->cgroup_id);
	if (id < 0)
		ig_mpw_nil(&e->recs);
	else
		ig_mpw_uint(&e->recs, (uint64_t)id);
	ig_mpw_array(&e->recs, 2 * r->nfields);
	for (uint32_t i = 0; i < r->nfields; i++) {
		const struct ig_field *f = &r->fields[i];

		ig_mpw_uint(&e->recs, (uint64_t)fk[i] << 1 | (f->type == IG_F_STR));
		if (f->type == IG_F_STR)
			ig_mpw_uint(&e->recs, fv[i]);
		else if (f->type == IG_F_INT)
			ig_mpw_int(&e->recs, f->i);
		else
			ig_mpw_uint(&e->recs, f->u);
	}
	if (e->recs.failed)
		goto nomem;
	e->n++;
	return 0;
nomem:
	/* Strings and identities interned for this record stay (valid, just
	 * unused); the record itself is dropped. */
	e->recs.len = mark;
	e->recs.failed = false;
	e->strs.failed = false;
	e->ids.failed = false;
	return -ENOMEM;
}

static void hdr_str(struct ig_mpw *w, const char *s)
{
	if (!s)
		s = "";
	ig_mpw_str(w, s, (uint32_t)strlen(s));
}

#define KEY(w, lit) ig_mpw_str(w, lit, sizeof(lit) - 1)

int ig_wire_enc2_finish(struct ig_wire_enc2 *e, const struct ig_envelope_hdr *hdr, void **buf,
			size_t *len)
{
	struct ig_mpw h;
	size_t total;
	char *out;

	*buf = NULL;
	*len = 0;
	if (hdr->nlost > IG_WIRE_MAX_LOST)
		return -EINVAL;
	for (uint32_t i = 0; i < hdr->nlost; i++)
		if (!hdr->lost[i].cause)
			return -EINVAL;
	ig_mpw_init(&h);
	ig_mpw_map(&h, 11);
	/* v first: v2 decoders require it (docs/wire-format.md). A non-zero
	 * hdr->v is kept so tests can build other versions. */
	KEY(&h, "v");
	ig_mpw_uint(&h, hdr->v ? hdr->v : 2);
	KEY(&h, "agent_id");
	hdr_str(&h, hdr->agent_id);
	KEY(&h, "node");
	hdr_str(&h, hdr->node);
	KEY(&h, "boot_id");
	ig_mpw_uint(&h, hdr->boot_id);
	KEY(&h, "seq");
	ig_mpw_uint(&h, hdr->seq);
	KEY(&h, "sent_ns");
	ig_mpw_uint(&h, hdr->sent_ns);
	KEY(&h, "lost");
	ig_mpw_map(&h, hdr->nlost);
	for (uint32_t i = 0; i < hdr->nlost; i++) {
		hdr_str(&h, hdr->lost[i].cause);
		ig_mpw_uint(&h, hdr->lost[i].count);
	}
	KEY(&h, "t0");
	ig_mpw_uint(&h, e->n ? e->t0 : 0);
	KEY(&h, "str");
	ig_mpw_array(&h, e->nstr);
	if (h.failed) {
		ig_mpw_free(&h);
		return -ENOMEM;
	}
	/* "ids" and "rec" keys and array headers: at most 4 + 5 bytes each. */
	total = h.len + e->strs.len + 18 + e->ids.len + e->recs.len;
	out = malloc(total);
	if (!out) {
		ig_mpw_free(&h);
		return -ENOMEM;
	}
	memcpy(out, h.buf, h.len);
	total = h.len;
	if (e->strs.len)
		memcpy(out + total, e->strs.buf, e->strs.len);
	total += e->strs.len;
	h.len = 0;
	KEY(&h, "ids");
	ig_mpw_array(&h, e->nid);
	memcpy(out + total, h.buf, h.len);
	total += h.len;
	if (e->ids.len)
		memcpy(out + total, e->ids.buf, e->ids.len);
	total += e->ids.len;
	h.len = 0;
	KEY(&h, "rec");
	ig_mpw_array(&h, e->n);
	memcpy(out + total, h.buf, h.len);
	total += h.len;
	if (e->recs.len)
		memcpy(out + total, e->recs.buf, e->recs.len);
	total += e->recs.len;
	ig_mpw_free(&h);
	*buf = out;
	*len = total;
	return 0;
}
