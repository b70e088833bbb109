/* ig_wire_dec: the aggregator's envelope decoder (ig_wire.h; the format is in
 * docs/wire-format.md).
 *
 * Envelopes come from the network, so decoding is two passes over a private
 * copy of the bytes with ig_mpack's bounds-checked cursor (see ig_mpack.h for
 * why not msgpack-c's unpacker). The first pass, ig_wire_decode, walks every
 * byte: it checks the schema (types, required and duplicate keys, string
 * lengths, NUL bytes, counts, nesting) and sums, per record, the arena bytes
 * its strings will need, so that the second pass cannot fail. It reports each
 * problem with its place ("records[12].f.path: expected a string or an
 * integer, got an array") and keeps going after type errors, so one rejection
 * tells the whole story; it stops at the first structural error (truncation,
 * invalid byte, an over-limit count) since nothing after it can be trusted.
 * The second pass, ig_wire_next, re-reads one record at a time into struct
 * ig_record, copying strings into the record's arena.
 *
 * The version is checked first: an envelope of another version is reported
 * as that alone, since the rest of it follows a schema this code does not
 * know.
 */
#include "ig_wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ig_mpack.h"
#include "ig_wire_dec_int.h"
#include "ig_wire_schema.h"

struct ig_wire_dec *ig_wire_dec_new(const struct ig_wire_limits *limits)
{
	struct ig_wire_dec *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	ig_wire_limits_default(&d->lim);
	if (limits && limits->max_msg_bytes)
		d->lim.max_msg_bytes = limits->max_msg_bytes;
	if (limits && limits->max_records)
		d->lim.max_records = limits->max_records;
	if (limits && limits->max_str)
		d->lim.max_str = limits->max_str;
	/* agent_id, node and one cause per lost entry, each at most max_str. */
	d->pool_cap = (2 + IG_WIRE_MAX_LOST) * ((size_t)d->lim.max_str + 1);
	d->pool = malloc(d->pool_cap);
	if (!d->pool) {
		free(d);
		return NULL;
	}
	return d;
}

void ig_wire_dec_free(struct ig_wire_dec *d)
{
	if (!d)
		return;
	free(d->buf);
	free(d->pool);
	wd2_free(d);
	free(d);
}

/* ------------------------------------------------------------------ */
/* First pass: validation.                                             */

/* A key from the input, printable and short. */
static void key_text(char *out, size_t outlen, const char *k, uint32_t len)
{
	size_t n = 0;

	for (uint32_t i = 0; i < len && n + 4 < outlen; i++) {
		unsigned char ch = (unsigned char)k[i];
		out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (n + 4 >= outlen && len > n)
		memcpy(out + n, "...", 3), n += 3;
	out[n] = '\0';
}

static void where(const struct vctx *c, char *out, size_t outlen)
{
	char k[64];
	int n = 0;

	out[0] = '\0';
	if (c->rec >= 0)
		n += snprintf(out, outlen, "%s[%lld]", c->recs_name ? c->recs_name : "records",
			      (long long)c->rec);
	if (c->sect)
		n += snprintf(out + n, outlen - (size_t)n, "%s%s", n ? "." : "", c->sect);
	if (c->key && c->klen) {
		key_text(k, sizeof(k), c->key, c->klen);
		n += snprintf(out + n, outlen - (size_t)n, "%s%s", n ? "." : "", k);
	}
	if (!n)
		snprintf(out, outlen, "envelope");
}

void wd_verr(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wd_verr(struct vctx *c, const char *fmt, ...)
{
	char at[160], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	where(c, at, sizeof(at));
	ig_err_add(c->err, "%s: %s", at, msg);
	c->nerr++;
}

/* A type error: reported; walking stops once there are too many. */
int wd_type_err(struct vctx *c)
{
	if (c->nerr < MAX_ERRORS)
		return 0;
	ig_err_add(c->err, "stopped after %d errors", c->nerr);
	return -EBADMSG;
}

int wd_structural(struct vctx *c, int rv)
{
	if (rv == -ENODATA)
		wd_verr(c,
			"the envelope ends inside this value (at byte %zu of %zu): truncated "
			"message",
			ig_mp_pos(&c->mp), ig_mp_pos(&c->mp) + ig_mp_left(&c->mp));
	else if (rv == -ELOOP)
		wd_verr(c, "values nested deeper than %d levels", IG_WIRE_MAX_DEPTH);
	else
		wd_verr(c, "invalid msgpack (byte 0x%02x at offset %zu)", *c->mp.p,
			ig_mp_pos(&c->mp));
	return -EBADMSG;
}

int wd_rd(struct vctx *c, struct ig_mp_val *v)
{
	int rv = ig_mp_read(&c->mp, v);

	return rv < 0 ? wd_structural(c, rv) : 0;
}

/* Skips the elements of a container whose header was just read. depth: of
 * that container. */
int wd_skip_body(struct vctx *c, const struct ig_mp_val *v, unsigned depth)
{
	uint64_t n;
	int rv;

	if (v->type != IG_MP_ARRAY && v->type != IG_MP_MAP)
		return 0;
	if (depth > IG_WIRE_MAX_DEPTH)
		return wd_structural(c, -ELOOP);
	n = v->type == IG_MP_MAP ? 2 * (uint64_t)v->n : v->n;
	for (uint64_t i = 0; i < n; i++) {
		rv = ig_mp_skip(&c->mp, IG_WIRE_MAX_DEPTH - depth);
		if (rv < 0)
			return wd_structural(c, rv);
	}
	return 0;
}

/* Skips one value nested in a container at depth `depth`. */
int wd_skip_value(struct vctx *c, unsigned depth)
{
	int rv = ig_mp_skip(&c->mp, IG_WIRE_MAX_DEPTH - depth);

	return rv < 0 ? wd_structural(c, rv) : 0;
}

static const char *want_name(enum want w)
{
	switch (w) {
	case W_STR:
		return "a string";
	case W_U32:
		return "an unsigned 32-bit integer";
	case W_U64:
		return "an unsigned 64-bit integer";
	case W_MAP:
		return "a map";
	case W_ARRAY:
		return "an array";
	case W_FIELD:
		return "a string or an integer";
	}
	return "?";
}

void wd_describe(const struct ig_mp_val *v, char *out, size_t len)
{
	if (v->type == IG_MP_INT)
		snprintf(out, len, "%lld", (long long)v->i);
	else if (v->type == IG_MP_UINT)
		snprintf(out, len, "%llu", (unsigned long long)v->u);
	else
		snprintf(out, len, "%s", ig_mp_type_name(v->type));
}

bool wd_str_ok(struct vctx *c, const struct ig_mp_val *v)
{
	if (v->s.len > c->d->lim.max_str) {
		wd_verr(c, "string of %u bytes is longer than the limit of %u", v->s.len,
			c->d->lim.max_str);
		return false;
	}
	if (memchr(v->s.ptr, '\0', v->s.len)) {
		wd_verr(c, "string contains a NUL byte");
		return false;
	}
	return true;
}

/* Reads the value of the current key (nested at `depth`: that of its map).
 * 1 = it is what was wanted (v filled; a string is also within limits and
 * NUL-free), 0 = it was not (reported and skipped), < 0 = stop. */
int wd_want(struct vctx *c, enum want w, struct ig_mp_val *v, unsigned depth)
{
	char got[32];
	uint64_t x;
	bool ok;
	int rv = wd_rd(c, v);

	if (rv < 0)
		return rv;
	switch (w) {
	case W_STR:
		ok = v->type == IG_MP_STR;
		break;
	case W_U32:
	case W_U64:
		ok = ig_mp_uint_val(v, w == W_U32 ? UINT32_MAX : UINT64_MAX, &x);
		if (ok)
			v->u = x;
		break;
	case W_MAP:
		ok = v->type == IG_MP_MAP;
		break;
	case W_ARRAY:
		ok = v->type == IG_MP_ARRAY;
		break;
	case W_FIELD:
		ok = v->type == IG_MP_STR || v->type == IG_MP_INT || v->type == IG_MP_UINT;
		break;
	default:
		ok = false;
	}
	if (!ok) {
		wd_describe(v, got, sizeof(got));
		wd_verr(c, "expected %s, got %s", want_name(w), got);
		rv = wd_skip_body(c, v, depth + 1);
		return rv < 0 ? rv : wd_type_err(c);
	}
	if (v->type == IG_MP_STR && !wd_str_ok(c, v))
		return wd_type_err(c);
	if (v->type == IG_MP_STR)
		c->need += v->s.len + 1;
	return 1;
}

bool wd_key_is(const struct ig_mp_val *k, const char *name)
{
	uint32_t i;

	/* No strlen: keys are short and most differ in the first byte. */
	for (i = 0; i < k->s.len; i++)
		if (!name[i] || name[i] != k->s.ptr[i])
			return false;
	return name[i] == '\0';
}

bool wd_same_str(const struct ig_mp_val *a, const struct ig_mp_val *b)
{
	return a->s.len == b->s.len && !memcmp(a->s.ptr, b->s.ptr, a->s.len);
}

/* Walking one map of known keys. */
struct kmap {
	const char *const *names; /* known keys */
	int nnames;
	uint32_t seen; /* bit per known key */
	uint32_t nunknown;
	struct ig_mp_val unknown[IG_WIRE_MAX_UNKNOWN]; /* [0, nunknown) in use */
};

static void kmap_init(struct kmap *km, const char *const *names, int nnames)
{
	km->names = names;
	km->nnames = nnames;
	km->seen = 0;
	km->nunknown = 0;
}

/* Reads the next key of a map at `depth`. Returns the known key's index,
 * -1 when the key was bad or unknown (handled: reported or skipped with its
 * value), < -1 to stop (-EBADMSG). */
static int next_key(struct vctx *c, struct kmap *km, unsigned depth)
{
	struct ig_mp_val k;
	int rv;

	c->key = NULL;
	rv = wd_rd(c, &k);
	if (rv < 0)
		return rv;
	if (k.type != IG_MP_STR) {
		char got[32];
		wd_describe(&k, got, sizeof(got));
		wd_verr(c, "a key is %s, expected a string", got);
		rv = wd_skip_body(c, &k, depth + 1);
		rv = rv < 0 ? rv : wd_skip_value(c, depth);
		return rv < 0 ? rv : (wd_type_err(c) < 0 ? -EBADMSG : -1);
	}
	c->key = k.s.ptr;
	c->klen = k.s.len;
	for (int i = 0; i < km->nnames; i++) {
		if (!wd_key_is(&k, km->names[i]))
			continue;
		if (km->seen & (1u << i)) {
			wd_verr(c, "duplicate key");
			rv = wd_skip_value(c, depth);
			return rv < 0 ? rv : (wd_type_err(c) < 0 ? -EBADMSG : -1);
		}
		km->seen |= 1u << i;
		return i;
	}
	/* Unknown: skipped for forward compatibility, but bounded, unique, and
	 * a string like any other. */
	if (!wd_str_ok(c, &k)) {
		rv = wd_skip_value(c, depth);
		return rv < 0 ? rv : (wd_type_err(c) < 0 ? -EBADMSG : -1);
	}
	for (uint32_t i = 0; i < km->nunknown; i++) {
		if (wd_same_str(&k, &km->unknown[i])) {
			wd_verr(c, "duplicate key");
			rv = wd_skip_value(c, depth);
			return rv < 0 ? rv : (wd_type_err(c) < 0 ? -EBADMSG : -1);
		}
	}
	if (km->nunknown >= IG_WIRE_MAX_UNKNOWN) {
		wd_verr(c, "more than %d unknown keys in one map", IG_WIRE_MAX_UNKNOWN);
		return -EBADMSG;
	}
	km->unknown[km->nunknown++] = k;
	rv = wd_skip_value(c, depth);
	return rv < 0 ? rv : -1;
}

static int missing(struct vctx *c, const struct kmap *km, uint32_t required)
{
	c->key = NULL;
	for (int i = 0; i < km->nnames; i++) {
		if ((required & (1u << i)) && !(km->seen & (1u << i))) {
			wd_verr(c, "missing required key \"%s\"", km->names[i]);
			if (wd_type_err(c) < 0)
				return -EBADMSG;
		}
	}
	return 0;
}

/* A map of string -> string or string -> value with unique, non-empty keys
 * and at most `max` entries (labels, fields): `map` was read already. */
static int check_dict(struct vctx *c, const struct ig_mp_val *map, uint32_t max, enum want vw,
		      unsigned depth, bool empty_ok)
{
	struct ig_mp_val keys[IG_MAX_FIELDS > IG_MAX_LABELS ? IG_MAX_FIELDS : IG_MAX_LABELS];
	struct ig_mp_val k, v;
	int rv;

	c->key = NULL;
	if (map->n > max) {
		wd_verr(c, "%u entries, more than the limit of %u", map->n, max);
		rv = wd_skip_body(c, map, depth);
		return rv < 0 ? rv : wd_type_err(c);
	}
	for (uint32_t i = 0; i < map->n; i++) {
		c->key = NULL;
		rv = wd_rd(c, &k);
		if (rv < 0)
			return rv;
		keys[i].s.len = 0;
		keys[i].s.ptr = NULL;
		if (k.type != IG_MP_STR) {
			char got[32];
			wd_describe(&k, got, sizeof(got));
			wd_verr(c, "a key is %s, expected a string", got);
			rv = wd_skip_body(c, &k, depth + 1);
			rv = rv < 0 ? rv : wd_skip_value(c, depth);
			rv = rv < 0 ? rv : wd_type_err(c);
			if (rv < 0)
				return rv;
			continue;
		}
		c->key = k.s.ptr;
		c->klen = k.s.len;
		keys[i] = k;
		if (!k.s.len && !empty_ok) {
			wd_verr(c, "empty key");
			if (wd_type_err(c) < 0)
				return -EBADMSG;
		} else if (!wd_str_ok(c, &k)) {
			if (wd_type_err(c) < 0)
				return -EBADMSG;
		}
		for (uint32_t j = 0; j < i; j++) {
			if (keys[j].s.ptr && wd_same_str(&k, &keys[j])) {
				wd_verr(c, "duplicate key");
				if (wd_type_err(c) < 0)
					return -EBADMSG;
				break;
			}
		}
		c->need += k.s.len + 1;
		rv = wd_want(c, vw, &v, depth);
		if (rv < 0)
			return rv;
	}
	c->key = NULL;
	return 0;
}

/* The keys of "id": ig_wire_id_members' order, then the labels. */
static const char *const id_keys[IG_WIRE_ID_NSTR + 1] = { "scope", "rt", "cid", "puid",
							  "pod",   "ns", "ctr", "img",
							  "ok",	   "on", "cgp", "lbl" };

static int check_identity(struct vctx *c, unsigned depth)
{
	struct kmap km;
	struct ig_mp_val m, v;
	int rv, i;

	kmap_init(&km, id_keys, IG_WIRE_ID_NSTR + 1);
	rv = wd_want(c, W_MAP, &m, depth - 1);
	if (rv <= 0)
		return rv;
	c->sect = "id";
	c->key = NULL;
	for (uint32_t n = 0; n < m.n; n++) {
		i = next_key(c, &km, depth);
		if (i < -1)
			return i;
		if (i < 0)
			continue;
		if (i < IG_WIRE_ID_NSTR) {
			rv = wd_want(c, W_STR, &v, depth);
		} else {
			rv = wd_want(c, W_MAP, &v, depth);
			if (rv > 0) {
				c->sect = "id.lbl";
				rv = check_dict(c, &v, IG_MAX_LABELS, W_STR, depth + 1, false);
				c->sect = "id";
			}
		}
		if (rv < 0)
			return rv;
	}
	c->sect = NULL;
	return 0;
}

enum { R_K, R_P, R_TS, R_PID, R_TID, R_PPID, R_UID, R_GID, R_COMM, R_CG, R_ID, R_F, R_N };
static const char *const rec_keys[R_N] = { "k",	  "p",	 "ts",	 "pid", "tid", "ppid",
					   "uid", "gid", "comm", "cg",	"id",  "f" };

static int check_record(struct vctx *c, unsigned depth)
{
	struct kmap km;
	struct ig_mp_val m, v;
	int rv, i;

	kmap_init(&km, rec_keys, R_N);
	c->key = NULL;
	c->need = 0;
	rv = wd_want(c, W_MAP, &m, depth - 1);
	if (rv <= 0)
		return rv;
	for (uint32_t n = 0; n < m.n; n++) {
		i = next_key(c, &km, depth);
		if (i < -1)
			return i;
		if (i < 0)
			continue;
		switch (i) {
		case R_K:
			rv = wd_want(c, W_STR, &v, depth);
			if (rv > 0 && v.s.len == 0) {
				wd_verr(c, "empty record kind");
				rv = wd_type_err(c);
			}
			break;
		case R_P:
		case R_COMM:
			rv = wd_want(c, W_STR, &v, depth);
			break;
		case R_TS:
		case R_CG:
			rv = wd_want(c, W_U64, &v, depth);
			break;
		case R_ID:
			rv = check_identity(c, depth + 1);
			break;
		case R_F:
			rv = wd_want(c, W_MAP, &v, depth);
			if (rv > 0) {
				c->sect = "f";
				rv = check_dict(c, &v, IG_MAX_FIELDS, W_FIELD, depth + 1, false);
				c->sect = NULL;
			}
			break;
		default:
			rv = wd_want(c, W_U32, &v, depth);
		}
		if (rv < 0)
			return rv;
	}
	rv = missing(c, &km, ~(1u << R_ID) & ((1u << R_N) - 1));
	if (rv < 0)
		return rv;
	if (c->need > IG_RECORD_ARENA) {
		wd_verr(c, "its strings need %zu bytes, more than a record holds (%d)", c->need,
			IG_RECORD_ARENA);
		return wd_type_err(c);
	}
	return 0;
}

/* E_T0.. are version 2 keys: in a version 1 envelope they are unknown keys
 * (skipped), and in a version 2 envelope "records" is. */
enum {
	E_V,
	E_AGENT,
	E_NODE,
	E_BOOT,
	E_SEQ,
	E_SENT,
	E_LOST,
	E_RECORDS,
	E_T0,
	E_STR,
	E_IDS,
	E_REC,
	E_N
};
static const char *const env_keys[E_N] = { "v",	   "agent_id", "node", "boot_id", "seq", "sent_ns",
					   "lost", "records",  "t0",   "str",	  "ids", "rec" };
#define E_V1_KEYS ((1u << (E_RECORDS + 1)) - 1)
#define E_V2_KEYS \
	(((1u << (E_LOST + 1)) - 1) | (1u << E_T0) | (1u << E_STR) | (1u << E_IDS) | (1u << E_REC))

static const char *pool_str(struct ig_wire_dec *d, const struct ig_mp_val *v)
{
	char *s;

	if (v->s.len >= d->pool_cap - d->pool_used)
		return NULL; /* cannot happen: the pool holds every header string */
	s = d->pool + d->pool_used;
	memcpy(s, v->s.ptr, v->s.len);
	s[v->s.len] = '\0';
	d->pool_used += v->s.len + 1;
	return s;
}

static int check_lost(struct vctx *c, struct ig_envelope_hdr *h)
{
	struct ig_mp_val m, k, v;
	int rv;

	rv = wd_want(c, W_MAP, &m, 1);
	if (rv <= 0)
		return rv;
	c->sect = "lost";
	if (m.n > IG_WIRE_MAX_LOST) {
		c->key = NULL;
		wd_verr(c, "%u entries, more than the limit of %d", m.n, IG_WIRE_MAX_LOST);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < m.n; i++) {
		bool keep;

		c->key = NULL;
		rv = wd_want(c, W_STR, &k, 2);
		if (rv < 0)
			return rv;
		keep = rv > 0;
		if (keep) {
			c->key = k.s.ptr;
			c->klen = k.s.len;
			for (uint32_t j = 0; j < h->nlost && keep; j++) {
				if (strlen(h->lost[j].cause) == k.s.len &&
				    !memcmp(h->lost[j].cause, k.s.ptr, k.s.len))
					keep = false;
			}
			if (!keep) {
				wd_verr(c, "duplicate key");
				if (wd_type_err(c) < 0)
					return -EBADMSG;
			}
		}
		rv = wd_want(c, W_U64, &v, 2);
		if (rv < 0)
			return rv;
		if (keep && rv > 0) {
			const char *cause = pool_str(c->d, &k);
			if (cause) {
				h->lost[h->nlost].cause = cause;
				h->lost[h->nlost].count = v.u;
				h->nlost++;
			}
		}
	}
	c->sect = NULL;
	return 0;
}

static int check_records(struct vctx *c, struct ig_envelope_hdr *h, size_t *first)
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
		rv = check_record(c, 3);
		if (rv < 0)
			return rv;
	}
	c->rec = -1;
	return 0;
}

static uint32_t bit(int i)
{
	return 1u << i;
}

static void verr_first_v(struct vctx *c)
{
	c->key = NULL;
	wd_verr(c, "a version 2 envelope starts with its \"v\" key");
}

static int check_envelope(struct vctx *c, struct ig_envelope_hdr *h, size_t *first)
{
	struct kmap km;
	struct ig_mp_val m, v;
	bool v2 = false;
	int rv, i;

	kmap_init(&km, env_keys, E_N);
	rv = wd_rd(c, &m);
	if (rv < 0)
		return rv;
	if (m.type != IG_MP_MAP) {
		wd_verr(c, "expected a map, got %s", ig_mp_type_name(m.type));
		return -EBADMSG;
	}
	for (uint32_t n = 0; n < m.n; n++) {
		i = next_key(c, &km, 1);
		if (i < -1)
			return i;
		if (i < 0)
			continue;
		if (!(bit(i) & (v2 ? E_V2_KEYS : E_V1_KEYS))) {
			/* A key of the other version: unknown in this one. */
			rv = wd_skip_value(c, 1);
			if (rv < 0)
				return rv;
			continue;
		}
		switch (i) {
		case E_V:
			rv = wd_want(c, W_U32, &v, 1);
			if (rv > 0 && (v.u < IG_WIRE_VERSION_MIN || v.u > IG_WIRE_VERSION)) {
				c->version_bad = true;
				c->version = v.u;
				return -EBADMSG;
			}
			if (rv > 0 && v.u == 2 && n != 0) {
				verr_first_v(c);
				return -EBADMSG;
			}
			if (rv > 0) {
				h->v = (uint32_t)v.u;
				v2 = v.u == 2;
				c->recs_name = v2 ? "rec" : "records";
			}
			break;
		case E_T0:
			rv = wd_want(c, W_U64, &v, 1);
			if (rv > 0)
				c->d->t0 = v.u;
			break;
		case E_STR:
			rv = wd2_check_str(c);
			break;
		case E_IDS:
			if (!(km.seen & bit(E_STR))) {
				wd_verr(c, "\"str\" must come before \"ids\"");
				return -EBADMSG;
			}
			rv = wd2_check_ids(c);
			break;
		case E_REC:
			if (!(km.seen & bit(E_STR)) || !(km.seen & bit(E_IDS))) {
				wd_verr(c, "\"str\" and \"ids\" must come before \"rec\"");
				return -EBADMSG;
			}
			rv = wd2_check_rec(c, h, first);
			break;
		case E_AGENT:
		case E_NODE:
			rv = wd_want(c, W_STR, &v, 1);
			if (rv > 0 && i == E_AGENT && v.s.len == 0) {
				wd_verr(c, "empty agent_id");
				rv = wd_type_err(c);
			} else if (rv > 0) {
				const char *s = pool_str(c->d, &v);
				if (i == E_AGENT)
					h->agent_id = s;
				else
					h->node = s;
			}
			break;
		case E_BOOT:
		case E_SEQ:
		case E_SENT:
			rv = wd_want(c, W_U64, &v, 1);
			if (rv > 0 && i == E_BOOT)
				h->boot_id = v.u;
			else if (rv > 0 && i == E_SEQ)
				h->seq = v.u;
			else if (rv > 0)
				h->sent_ns = v.u;
			break;
		case E_LOST:
			rv = check_lost(c, h);
			break;
		case E_RECORDS:
			rv = check_records(c, h, first);
			break;
		}
		if (rv < 0)
			return rv;
	}
	rv = missing(c, &km, v2 ? E_V2_KEYS : E_V1_KEYS);
	if (rv < 0)
		return rv;
	c->key = NULL;
	if (ig_mp_left(&c->mp)) {
		wd_verr(c, "%zu bytes after the envelope: a message holds exactly one envelope",
			ig_mp_left(&c->mp));
		return -EBADMSG;
	}
	return c->nerr ? -EBADMSG : 0;
}

static void copy_errors(struct ig_err *dst, const struct ig_err *src)
{
	const char *p = src->buf;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		ig_err_add(dst, "%.*s", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
}

int ig_wire_decode(struct ig_wire_dec *d, const void *buf, size_t len, struct ig_envelope_hdr *hdr,
		   struct ig_err *err)
{
	struct ig_envelope_hdr local;
	struct vctx c = { .d = d, .err = &d->tmp, .rec = -1 };
	size_t first = 0;
	int rv;

	if (!hdr)
		hdr = &local;
	memset(hdr, 0, sizeof(*hdr));
	d->left = 0;
	d->node = NULL;
	d->pool_used = 0;
	d->version = 0;
	d->t0 = 0;
	d->nstr = d->nids = d->nv2lbl = 0;
	d->spool_used = 0;
	if (!buf || len == 0) {
		ig_err_add(err, "envelope: empty message");
		return -EBADMSG;
	}
	if (len > d->lim.max_msg_bytes) {
		ig_err_add(err,
			   "envelope: %zu bytes, more than the limit of %zu "
			   "(raise aggregator.max_msg_bytes, or lower the agent's "
			   "agent.batch_max_records)",
			   len, d->lim.max_msg_bytes);
		return -EBADMSG;
	}
	if (len > d->cap) {
		uint8_t *nb = realloc(d->buf, len);
		if (!nb) {
			ig_err_add(err, "envelope: out of memory copying %zu bytes", len);
			return -ENOMEM;
		}
		d->buf = nb;
		d->cap = len;
	}
	memcpy(d->buf, buf, len);
	ig_err_init(&d->tmp);
	ig_mp_init(&c.mp, d->buf, len);
	rv = check_envelope(&c, hdr, &first);
	if (c.version_bad) {
		ig_err_add(err,
			   "v: wire version %llu is not supported (this aggregator speaks "
			   "versions %d to %d); upgrade the aggregators before the agents, or "
			   "set the agents' agent.wire_version to one of these",
			   (unsigned long long)c.version, IG_WIRE_VERSION_MIN, IG_WIRE_VERSION);
		return -EBADMSG;
	}
	if (rv < 0) {
		copy_errors(err, &d->tmp);
		return -EBADMSG;
	}
	d->version = hdr->v;
	d->node = hdr->node;
	d->left = hdr->nrecords;
	ig_mp_init(&d->it, d->buf, len);
	d->it.p += first;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Second pass: one record at a time. The input was validated, so reads  */
/* cannot fail; a failure anyway ends the iteration.                    */

static const char *copy_str(struct ig_record *r, const struct ig_mp_val *v)
{
	return ig_record_strndup(r, v->s.ptr, v->s.len);
}

static int index_of(const char *const *names, int n, const struct ig_mp_val *k)
{
	for (int i = 0; i < n; i++)
		if (wd_key_is(k, names[i]))
			return i;
	return -1;
}

static int read_dict(struct ig_mp *mp, struct ig_record *r, bool labels)
{
	struct ig_mp_val m, k, v;

	if (ig_mp_read(mp, &m) < 0 || m.type != IG_MP_MAP)
		return -EBADMSG;
	for (uint32_t i = 0; i < m.n; i++) {
		const char *key;

		if (ig_mp_read(mp, &k) < 0 || ig_mp_read(mp, &v) < 0 || k.type != IG_MP_STR)
			return -EBADMSG;
		key = copy_str(r, &k);
		if (!key)
			return -EBADMSG;
		if (labels) {
			struct ig_label *l = &r->id.labels[r->id.nlabels];
			if (r->id.nlabels >= IG_MAX_LABELS || v.type != IG_MP_STR)
				return -EBADMSG;
			l->key = key;
			l->val = copy_str(r, &v);
			if (!l->val)
				return -EBADMSG;
			r->id.nlabels++;
			continue;
		}
		struct ig_field *f = &r->fields[r->nfields];
		if (r->nfields >= IG_MAX_FIELDS)
			return -EBADMSG;
		f->key = key;
		if (v.type == IG_MP_STR) {
			f->type = IG_F_STR;
			f->s = copy_str(r, &v);
			if (!f->s)
				return -EBADMSG;
		} else if (v.type == IG_MP_INT) {
			f->type = IG_F_INT;
			f->i = v.i;
		} else if (v.type == IG_MP_UINT) {
			f->type = IG_F_UINT;
			f->u = v.u;
		} else {
			return -EBADMSG;
		}
		r->nfields++;
	}
	return 0;
}

static int read_identity(struct ig_mp *mp, struct ig_record *r)
{
	struct ig_mp_val m, k, v;

	if (ig_mp_read(mp, &m) < 0 || m.type != IG_MP_MAP)
		return -EBADMSG;
	for (uint32_t i = 0; i < m.n; i++) {
		int idx;

		if (ig_mp_read(mp, &k) < 0 || k.type != IG_MP_STR)
			return -EBADMSG;
		idx = index_of(id_keys, IG_WIRE_ID_NSTR + 1, &k);
		if (idx < 0) {
			if (ig_mp_skip(mp, IG_WIRE_MAX_DEPTH - 4) < 0)
				return -EBADMSG;
		} else if (idx == IG_WIRE_ID_NSTR) {
			if (read_dict(mp, r, true) < 0)
				return -EBADMSG;
		} else {
			const char *s;
			if (ig_mp_read(mp, &v) < 0 || v.type != IG_MP_STR)
				return -EBADMSG;
			s = copy_str(r, &v);
			if (!s)
				return -EBADMSG;
			ig_wire_id_set(&r->id, idx, s);
		}
	}
	return 0;
}

static int read_record(struct ig_mp *mp, struct ig_record *r)
{
	struct ig_mp_val m, k, v;

	if (ig_mp_read(mp, &m) < 0 || m.type != IG_MP_MAP)
		return -EBADMSG;
	for (uint32_t n = 0; n < m.n; n++) {
		int i;

		if (ig_mp_read(mp, &k) < 0 || k.type != IG_MP_STR)
			return -EBADMSG;
		i = index_of(rec_keys, R_N, &k);
		if (i < 0) {
			if (ig_mp_skip(mp, IG_WIRE_MAX_DEPTH - 3) < 0)
				return -EBADMSG;
			continue;
		}
		if (i == R_ID) {
			if (read_identity(mp, r) < 0)
				return -EBADMSG;
			continue;
		}
		if (i == R_F) {
			if (read_dict(mp, r, false) < 0)
				return -EBADMSG;
			continue;
		}
		if (ig_mp_read(mp, &v) < 0)
			return -EBADMSG;
		switch (i) {
		case R_K:
		case R_P:
		case R_COMM: {
			const char *s = v.type == IG_MP_STR ? copy_str(r, &v) : NULL;
			if (!s)
				return -EBADMSG;
			if (i == R_K)
				r->kind = s;
			else if (i == R_P)
				r->probe = s;
			else
				r->comm = s;
			break;
		}
		case R_TS:
			r->ts_ns = v.type == IG_MP_INT ? (uint64_t)v.i : v.u;
			break;
		case R_CG:
			r->cgroup_id = v.type == IG_MP_INT ? (uint64_t)v.i : v.u;
			break;
		default: {
			uint32_t x = (uint32_t)(v.type == IG_MP_INT ? (uint64_t)v.i : v.u);
			if (i == R_PID)
				r->pid = x;
			else if (i == R_TID)
				r->tid = x;
			else if (i == R_PPID)
				r->ppid = x;
			else if (i == R_UID)
				r->uid = x;
			else
				r->gid = x;
		}
		}
	}
	return 0;
}

int ig_wire_next(struct ig_wire_dec *d, struct ig_record *r)
{
	if (!d->left)
		return 0;
	ig_record_reset(r);
	r->node = d->node;
	if ((d->version == 2 ? wd2_read_record(d, r) : read_record(&d->it, r)) < 0) {
		d->left = 0;
		return 0;
	}
	d->left--;
	return 1;
}

int ig_wire_peek_seq(const void *buf, size_t len, uint64_t *seq)
{
	struct ig_mp m;
	struct ig_mp_val v;

	ig_mp_init(&m, buf, len);
	if (ig_mp_read(&m, &v) < 0 || v.type != IG_MP_MAP)
		return -EBADMSG;
	for (uint32_t i = 0, n = v.n; i < n; i++) {
		struct ig_mp_val k;
		if (ig_mp_read(&m, &k) < 0 || k.type != IG_MP_STR)
			return -EBADMSG;
		if (k.s.len == 3 && !memcmp(k.s.ptr, "seq", 3)) {
			if (ig_mp_read(&m, &v) < 0 || !ig_mp_uint_val(&v, UINT64_MAX, seq))
				return -EBADMSG;
			return 0;
		}
		if (ig_mp_skip(&m, IG_WIRE_MAX_DEPTH) < 0)
			return -EBADMSG;
	}
	return -ENOENT;
}
