/* ig_wire_dec2: the version 2 parts of the envelope decoder: the string
 * table "str", the identity table "ids" and the records "rec"
 * (docs/wire-format.md, "Version 2"). ig_wire_dec.c walks the envelope map
 * and calls these for those keys, in that order.
 *
 * As in version 1, the first pass checks everything a record could get
 * wrong (types, counts, nesting, string limits, unique keys, every index in
 * range, the arena bytes a record's strings need) so that the second pass,
 * wd2_read_record, cannot fail. The string table is copied once per
 * envelope, NUL-terminated, into the decoder's spool; records point into it
 * (no copy per record).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ig_mpack.h"
#include "ig_wire_dec_int.h"
#include "ig_wire_schema.h"
#include "ig_wire_v2.h"

#define NO_STR UINT32_MAX

static const char *const rec_pos[IG_W2_REC_N] = { "k",	 "p",	"ts",	"pid", "tid", "ppid",
						  "uid", "gid", "comm", "cg",  "id",  "f" };

void wd2_free(struct ig_wire_dec *d)
{
	free(d->sptr);
	free(d->slen);
	free(d->spool);
	free(d->ids);
	free(d->v2lbl);
}

static bool grow(void **p, uint32_t *cap, uint64_t need, size_t elem)
{
	uint64_t c = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return true;
	while (c < need)
		c *= 2;
	if (c > UINT32_MAX)
		return false;
	np = realloc(*p, (size_t)c * elem);
	if (!np)
		return false;
	*p = np;
	*cap = (uint32_t)c;
	return true;
}

static int oom(struct vctx *c)
{
	wd_verr(c, "out of memory in the aggregator decoding this envelope");
	return -EBADMSG;
}

static void at(struct vctx *c, const char *key)
{
	c->key = key;
	c->klen = key ? (uint32_t)strlen(key) : 0;
}

/* The lengths of rec_pos' names, so that naming the place costs no strlen
 * per element. */
static const uint8_t rec_pos_len[IG_W2_REC_N] = { 1, 1, 2, 3, 3, 4, 3, 3, 4, 2, 2, 1 };

static inline void at_pos(struct vctx *c, uint32_t i)
{
	c->key = i < IG_W2_REC_N ? rec_pos[i] : NULL;
	c->klen = i < IG_W2_REC_N ? rec_pos_len[i] : 0;
}

/* Fast paths of the checks: an unsigned integer <= max read with the
 * inline reader. 1 = it was one (consumed), 0 = it was something else (the
 * cursor is back where it was, for the reporting path). */
static inline int fast_uint(struct vctx *c, uint64_t max, uint64_t *x)
{
	const uint8_t *save = c->mp.p;
	struct ig_mp_val v;

	if (ig_mp_read_fast(&c->mp, &v) == 0 && ig_mp_uint_val(&v, max, x))
		return 1;
	c->mp.p = save;
	return 0;
}

/* An index into "str" (the value was read into v). 1 = valid, 0 = not
 * (reported). */
static int check_ref(struct vctx *c, const struct ig_mp_val *v, uint32_t *idx, bool nonempty)
{
	char got[32];
	uint64_t x;

	if (!ig_mp_uint_val(v, UINT32_MAX, &x) || x >= c->d->nstr) {
		wd_describe(v, got, sizeof(got));
		if (c->d->nstr)
			wd_verr(c, "expected an index into str (0..%u), got %s", c->d->nstr - 1,
				got);
		else
			wd_verr(c, "expected an index into str, got %s (str is empty)", got);
		return 0;
	}
	if (nonempty && c->d->slen[x] == 0) {
		wd_verr(c, "refers to an empty string (str[%llu])", (unsigned long long)x);
		return 0;
	}
	*idx = (uint32_t)x;
	c->need += c->d->slen[x] + 1;
	return 1;
}

/* Reads an element that must be a string index. 1 ok, 0 reported, < 0 stop. */
static int want_ref(struct vctx *c, unsigned depth, uint32_t *idx, bool nonempty)
{
	struct ig_mp_val v;
	uint64_t x;
	int rv;

	const uint8_t *save = c->mp.p;

	if (fast_uint(c, UINT32_MAX, &x) && x < c->d->nstr && (!nonempty || c->d->slen[x])) {
		*idx = (uint32_t)x;
		c->need += c->d->slen[x] + 1;
		return 1;
	}
	c->mp.p = save; /* the full check reports it */
	rv = wd_rd(c, &v);

	if (rv < 0)
		return rv;
	if (check_ref(c, &v, idx, nonempty))
		return 1;
	rv = wd_skip_body(c, &v, depth + 1);
	return rv < 0 ? rv : (wd_type_err(c) < 0 ? -EBADMSG : 0);
}

int wd2_check_str(struct vctx *c)
{
	struct ig_wire_dec *d = c->d;
	struct ig_mp_val a, v;
	const char *saved = c->recs_name;
	int rv;

	rv = wd_want(c, W_ARRAY, &a, 1);
	if (rv <= 0)
		return rv;
	if (a.n > IG_WIRE_MAX_STRINGS) {
		wd_verr(c, "%u strings, more than the limit of %u", a.n, IG_WIRE_MAX_STRINGS);
		return -EBADMSG;
	}
	/* The strings' bytes are within the message: the spool holds them
	 * and one NUL each. */
	if (a.n > d->scap) {
		const char **np = realloc(d->sptr, (size_t)a.n * sizeof(*np));
		uint32_t *nl;

		if (np)
			d->sptr = np;
		nl = np ? realloc(d->slen, (size_t)a.n * sizeof(*nl)) : NULL;
		if (!nl)
			return oom(c);
		d->slen = nl;
		d->scap = a.n;
	}
	if (d->spool_cap < ig_mp_left(&c->mp) + a.n) {
		char *np = realloc(d->spool, ig_mp_left(&c->mp) + a.n);

		if (!np)
			return oom(c);
		d->spool = np;
		d->spool_cap = ig_mp_left(&c->mp) + a.n;
	}
	c->recs_name = "str";
	c->key = NULL;
	for (uint32_t i = 0; i < a.n; i++) {
		char *s = d->spool + d->spool_used;

		c->rec = i;
		rv = wd_want(c, W_STR, &v, 2);
		if (rv < 0)
			return rv;
		if (rv == 0)
			v.s.len = 0; /* reported; kept as "" so indexes stay checkable */
		else
			memcpy(s, v.s.ptr, v.s.len);
		s[v.s.len] = '\0';
		d->spool_used += v.s.len + 1;
		d->sptr[i] = s;
		d->slen[i] = v.s.len;
		d->nstr = i + 1;
	}
	c->rec = -1;
	c->recs_name = saved;
	return 0;
}

/* A list of 2n string indexes (labels: keys non-empty and unique) into
 * d->v2lbl. */
static int check_labels(struct vctx *c, struct w2_ident *x, unsigned depth)
{
	struct ig_wire_dec *d = c->d;
	struct ig_mp_val a;
	int rv = wd_want(c, W_ARRAY, &a, depth - 1);

	if (rv <= 0)
		return rv;
	if (a.n % 2 || a.n / 2 > IG_MAX_LABELS) {
		wd_verr(c, "%u elements: expected key/value pairs, at most %d", a.n, IG_MAX_LABELS);
		rv = wd_skip_body(c, &a, depth);
		return rv < 0 ? rv : wd_type_err(c);
	}
	if (!grow((void **)&d->v2lbl, &d->v2lbl_cap, (uint64_t)d->nv2lbl + a.n, sizeof(uint32_t)))
		return oom(c);
	x->lbl = d->nv2lbl;
	for (uint32_t i = 0; i < a.n; i++) {
		uint32_t idx = 0;

		rv = want_ref(c, depth, &idx, i % 2 == 0);
		if (rv < 0)
			return rv;
		d->v2lbl[d->nv2lbl + i] = idx;
		if (rv == 0 || i % 2)
			continue;
		for (uint32_t j = 0; j < i; j += 2) {
			uint32_t o = d->v2lbl[d->nv2lbl + j];

			if (d->slen[o] == d->slen[idx] &&
			    !memcmp(d->sptr[o], d->sptr[idx], d->slen[idx])) {
				wd_verr(c, "duplicate label key \"%s\"", d->sptr[idx]);
				if (wd_type_err(c) < 0)
					return -EBADMSG;
				break;
			}
		}
	}
	x->nlabels = a.n / 2;
	d->nv2lbl += a.n;
	return 0;
}

static int check_ident(struct vctx *c, struct w2_ident *x)
{
	struct ig_mp_val a, v;
	int rv;

	c->need = 0;
	x->nlabels = 0;
	x->lbl = 0;
	for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
		x->m[i] = NO_STR;
	at(c, NULL);
	rv = wd_want(c, W_ARRAY, &a, 2);
	if (rv <= 0)
		return rv;
	if (a.n < IG_W2_ID_N || a.n > IG_W2_ID_N + IG_WIRE_MAX_UNKNOWN) {
		wd_verr(c, "%u elements, expected %d to %d", a.n, IG_W2_ID_N,
			IG_W2_ID_N + IG_WIRE_MAX_UNKNOWN);
		rv = wd_skip_body(c, &a, 3);
		return rv < 0 ? rv : wd_type_err(c);
	}
	for (uint32_t i = 0; i < a.n; i++) {
		if (i < IG_WIRE_ID_NSTR) {
			at(c, ig_wire_id_members[i].key);
			rv = wd_rd(c, &v);
			if (rv < 0)
				return rv;
			if (v.type == IG_MP_NIL)
				continue;
			if (!check_ref(c, &v, &x->m[i], false)) {
				rv = wd_skip_body(c, &v, 4);
				if (rv < 0 || wd_type_err(c) < 0)
					return -EBADMSG;
			}
		} else if (i == IG_W2_ID_LBL) {
			at(c, "lbl");
			rv = check_labels(c, x, 4);
		} else { /* a later version's member: skipped */
			at(c, NULL);
			rv = wd_skip_value(c, 3);
		}
		if (rv < 0)
			return rv;
	}
	at(c, NULL);
	x->need = (uint32_t)(c->need < UINT32_MAX ? c->need : UINT32_MAX);
	return 0;
}

int wd2_check_ids(struct vctx *c)
{
	struct ig_wire_dec *d = c->d;
	struct ig_mp_val a;
	const char *saved = c->recs_name;
	int rv;

	rv = wd_want(c, W_ARRAY, &a, 1);
	if (rv <= 0)
		return rv;
	if (a.n > d->lim.max_records) {
		wd_verr(c, "%u identities, more than the limit of %u", a.n, d->lim.max_records);
		return -EBADMSG;
	}
	if (!grow((void **)&d->ids, &d->ids_cap, a.n, sizeof(*d->ids)))
		return oom(c);
	c->recs_name = "ids";
	for (uint32_t i = 0; i < a.n; i++) {
		c->rec = i;
		rv = check_ident(c, &d->ids[i]);
		if (rv < 0)
			return rv;
		d->nids = i + 1;
	}
	c->rec = -1;
	c->recs_name = saved;
	return 0;
}

/* The body: 2n elements, (tag, value) pairs; tag = key index << 1 | 1 when
 * the value is a string index, | 0 when it is inline (integer or string). */
static inline int wd_rd_fast(struct vctx *c, struct ig_mp_val *v)
{
	int rv = ig_mp_read_fast(&c->mp, v);

	return rv < 0 ? wd_structural(c, rv) : 0;
}

static int check_fields(struct vctx *c)
{
	struct ig_wire_dec *d = c->d;
	uint32_t keys[IG_MAX_FIELDS];
	struct ig_mp_val a, t, v;
	int rv = wd_want(c, W_ARRAY, &a, 3);

	if (rv <= 0)
		return rv;
	if (a.n % 2 || a.n / 2 > IG_MAX_FIELDS) {
		wd_verr(c, "%u elements: expected key/value pairs, at most %d", a.n, IG_MAX_FIELDS);
		rv = wd_skip_body(c, &a, 4);
		return rv < 0 ? rv : wd_type_err(c);
	}
	c->sect = "f";
	for (uint32_t i = 0; i < a.n / 2; i++) {
		uint64_t tag;
		uint32_t k = NO_STR, dummy;
		char got[32];

		c->key = NULL;
		rv = wd_rd_fast(c, &t);
		if (rv < 0)
			return rv;
		if (!ig_mp_uint_val(&t, ((uint64_t)UINT32_MAX << 1) | 1, &tag) ||
		    (tag >> 1) >= d->nstr || d->slen[tag >> 1] == 0) {
			wd_describe(&t, got, sizeof(got));
			wd_verr(c,
				"field %u: expected a key tag (2 * index into str of a "
				"non-empty string, + 1 for a string value), got %s",
				i, got);
			rv = wd_skip_body(c, &t, 5);
			rv = rv < 0 ? rv : wd_skip_value(c, 4);
			if (rv < 0 || wd_type_err(c) < 0)
				return -EBADMSG;
			keys[i] = NO_STR;
			continue;
		}
		k = (uint32_t)(tag >> 1);
		keys[i] = k;
		c->key = d->sptr[k];
		c->klen = d->slen[k];
		c->need += d->slen[k] + 1;
		for (uint32_t j = 0; j < i; j++) {
			if (keys[j] != NO_STR && d->slen[keys[j]] == d->slen[k] &&
			    !memcmp(d->sptr[keys[j]], d->sptr[k], d->slen[k])) {
				wd_verr(c, "duplicate key");
				if (wd_type_err(c) < 0)
					return -EBADMSG;
				break;
			}
		}
		if (tag & 1) {
			rv = want_ref(c, 4, &dummy, false);
		} else {
			const uint8_t *save = c->mp.p;

			/* integers: the inline reader; anything else the full check */
			if (ig_mp_read_fast(&c->mp, &v) == 0 &&
			    (v.type == IG_MP_INT || v.type == IG_MP_UINT))
				continue;
			c->mp.p = save;
			rv = wd_want(c, W_FIELD, &v, 4);
		}
		if (rv < 0)
			return rv;
	}
	c->sect = NULL;
	at(c, NULL);
	return 0;
}

static int check_record(struct vctx *c)
{
	struct ig_wire_dec *d = c->d;
	struct ig_mp_val a, v;
	uint32_t idx;
	int rv;

	c->need = 0;
	at(c, NULL);
	rv = wd_want(c, W_ARRAY, &a, 2);
	if (rv <= 0)
		return rv;
	if (a.n < IG_W2_REC_N || a.n > IG_W2_REC_N + IG_WIRE_MAX_UNKNOWN) {
		wd_verr(c, "%u elements, expected %d to %d", a.n, IG_W2_REC_N,
			IG_W2_REC_N + IG_WIRE_MAX_UNKNOWN);
		rv = wd_skip_body(c, &a, 3);
		return rv < 0 ? rv : wd_type_err(c);
	}
	for (uint32_t i = 0; i < a.n; i++) {
		uint64_t x;

		at_pos(c, i);
		switch (i) {
		case IG_W2_K:
		case IG_W2_P:
		case IG_W2_COMM:
			rv = want_ref(c, 3, &idx, i == IG_W2_K);
			break;
		case IG_W2_TS:
			if (fast_uint(c, UINT64_MAX, &x))
				break;
			rv = wd_rd(c, &v);
			if (rv == 0 && v.type != IG_MP_INT && v.type != IG_MP_UINT) {
				char got[32];

				wd_describe(&v, got, sizeof(got));
				wd_verr(c, "expected an integer (ns from t0), got %s", got);
				rv = wd_skip_body(c, &v, 4);
				rv = rv < 0 ? rv : wd_type_err(c);
			}
			break;
		case IG_W2_CG:
			if (!fast_uint(c, UINT64_MAX, &x))
				rv = wd_want(c, W_U64, &v, 3);
			break;
		case IG_W2_ID:
			rv = wd_rd_fast(c, &v);
			if (rv < 0 || v.type == IG_MP_NIL)
				break;
			{
				if (ig_mp_uint_val(&v, UINT32_MAX, &x) && x < d->nids) {
					c->need += d->ids[x].need;
					break;
				}
				char got[32];
				wd_describe(&v, got, sizeof(got));
				wd_verr(c, "expected nil or an index into ids (%u entries), got %s",
					d->nids, got);
				rv = wd_skip_body(c, &v, 4);
				rv = rv < 0 ? rv : wd_type_err(c);
			}
			break;
		case IG_W2_F:
			rv = check_fields(c);
			break;
		default:
			if (i < IG_W2_REC_N) { /* pid, tid, ppid, uid, gid */
				if (!fast_uint(c, UINT32_MAX, &x))
					rv = wd_want(c, W_U32, &v, 3);
			} else /* a later version's element: skipped */
				rv = wd_skip_value(c, 3);
		}
		if (rv < 0)
			return rv;
	}
	at(c, NULL);
	if (c->need > IG_RECORD_ARENA) {
		wd_verr(c, "its strings need %zu bytes, more than a record holds (%d)", c->need,
			IG_RECORD_ARENA);
		return wd_type_err(c);
	}
	return 0;
}

int wd2_check_rec(struct vctx *c, struct ig_envelope_hdr *h, size_t *first)
{
	struct ig_mp_val a;
	int rv;

	rv = wd_want(c, W_ARRAY, &a, 1);
	if (rv <= 0)
		return rv;
	if (a.n > c->d->lim.max_records) {
		wd_verr(c,
			"%u records, more than the limit of %u (lower the agent's "
			"agent.batch_max_records)",
			a.n, c->d->lim.max_records);
		return -EBADMSG;
	}
	*first = ig_mp_pos(&c->mp);
	h->nrecords = a.n;
	c->key = NULL;
	for (uint32_t i = 0; i < a.n; i++) {
		c->rec = i;
		rv = check_record(c);
		if (rv < 0)
			return rv;
	}
	c->rec = -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Second pass: validated input, so a failed read only ends iteration.  */

static inline uint64_t as_u64(const struct ig_mp_val *v)
{
	return v->type == IG_MP_INT ? (uint64_t)v->i : v->u;
}

static inline int rd_u64(struct ig_mp *mp, uint64_t *x)
{
	struct ig_mp_val v;

	if (ig_mp_read_fast(mp, &v) < 0)
		return -EBADMSG;
	*x = as_u64(&v);
	return 0;
}

int wd2_read_record(struct ig_wire_dec *d, struct ig_record *r)
{
	struct ig_mp *mp = &d->it;
	struct ig_mp_val a, v;
	uint64_t x[IG_W2_F];
	uint32_t nel;

	if (ig_mp_read_fast(mp, &a) < 0 || a.type != IG_MP_ARRAY || a.n < IG_W2_REC_N)
		return -EBADMSG;
	nel = a.n;
	for (int i = 0; i < IG_W2_F; i++) {
		if (i == IG_W2_ID) {
			if (ig_mp_read_fast(mp, &v) < 0)
				return -EBADMSG;
			x[i] = v.type == IG_MP_NIL ? UINT64_MAX : as_u64(&v);
		} else if (rd_u64(mp, &x[i]) < 0) {
			return -EBADMSG;
		}
	}
	r->kind = d->sptr[x[IG_W2_K]];
	r->probe = d->sptr[x[IG_W2_P]];
	r->ts_ns = d->t0 + x[IG_W2_TS];
	r->pid = (uint32_t)x[IG_W2_PID];
	r->tid = (uint32_t)x[IG_W2_TID];
	r->ppid = (uint32_t)x[IG_W2_PPID];
	r->uid = (uint32_t)x[IG_W2_UID];
	r->gid = (uint32_t)x[IG_W2_GID];
	r->comm = d->sptr[x[IG_W2_COMM]];
	r->cgroup_id = x[IG_W2_CG];
	if (x[IG_W2_ID] != UINT64_MAX) {
		const struct w2_ident *id = &d->ids[x[IG_W2_ID]];

		for (int i = 0; i < IG_WIRE_ID_NSTR; i++)
			if (id->m[i] != NO_STR)
				ig_wire_id_set(&r->id, i, d->sptr[id->m[i]]);
		for (uint32_t i = 0; i < id->nlabels; i++) {
			r->id.labels[i].key = d->sptr[d->v2lbl[id->lbl + 2 * i]];
			r->id.labels[i].val = d->sptr[d->v2lbl[id->lbl + 2 * i + 1]];
		}
		r->id.nlabels = id->nlabels;
	}
	if (ig_mp_read_fast(mp, &a) < 0 || a.type != IG_MP_ARRAY)
		return -EBADMSG;
	for (uint32_t i = 0; i < a.n / 2; i++) {
		struct ig_field *f = &r->fields[i];
		uint64_t tag;

		if (rd_u64(mp, &tag) < 0 || ig_mp_read_fast(mp, &v) < 0)
			return -EBADMSG;
		f->key = d->sptr[tag >> 1];
		if (tag & 1) {
			f->type = IG_F_STR;
			f->s = d->sptr[as_u64(&v)];
		} else if (v.type == IG_MP_STR) {
			/* Inline: copied, NUL-terminated (the check counted it). */
			f->type = IG_F_STR;
			f->s = ig_record_strndup(r, v.s.ptr, v.s.len);
			if (!f->s)
				return -EBADMSG;
		} else if (v.type == IG_MP_INT) {
			f->type = IG_F_INT;
			f->i = v.i;
		} else {
			f->type = IG_F_UINT;
			f->u = v.u;
		}
	}
	r->nfields = a.n / 2;
	/* Elements of a later version. */
	for (uint32_t i = IG_W2_REC_N; i < nel; i++)
		if (ig_mp_skip(mp, IG_WIRE_MAX_DEPTH - 3) < 0)
			return -EBADMSG;
	return 0;
}
