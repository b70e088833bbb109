/* ig_wire_dec_int: what the envelope decoder's two files share, internal to
 * ig_common. ig_wire_dec.c walks the envelope map, its header keys and the
 * version 1 records; ig_wire_dec2.c the version 2 tables and records. Both
 * report problems through the same validation context (struct vctx), so a
 * message names its place the same way in either version.
 */
#ifndef IG_WIRE_DEC_INT_H
#define IG_WIRE_DEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_err.h"
#include "ig_mpack.h"
#include "ig_wire.h"

/* Type errors reported before giving up on an envelope. */
#define MAX_ERRORS 20

/* A v2 identity table entry, validated: string indexes (UINT32_MAX when the
 * member is absent), labels as 2 * nlabels indexes in d->v2lbl, and the
 * arena bytes its strings count for in each record that uses it. */
struct w2_ident {
	uint32_t m[11];
	uint32_t nlabels;
	uint32_t lbl;
	uint32_t need;
};

struct ig_wire_dec {
	struct ig_wire_limits lim;
	uint8_t *buf; /* private copy of the envelope */
	size_t cap;
	char *pool; /* NUL-terminated header strings (agent_id, node, causes) */
	size_t pool_cap, pool_used;
	const char *node;
	struct ig_mp it; /* at the next record */
	uint32_t left; /* records not yet returned */
	struct ig_err tmp;
	unsigned version; /* of the envelope decoded last */
	/* v2: the string table (NUL-terminated copies in spool) and the
	 * identity table. */
	uint64_t t0;
	const char **sptr;
	uint32_t *slen;
	uint32_t nstr, scap;
	char *spool;
	size_t spool_cap, spool_used;
	struct w2_ident *ids;
	uint32_t nids, ids_cap;
	uint32_t *v2lbl;
	uint32_t nv2lbl, v2lbl_cap;
};

enum want { W_STR, W_U32, W_U64, W_MAP, W_ARRAY, W_FIELD };

/* Where the walk is, for messages: records[rec].sect.key */
struct vctx {
	struct ig_wire_dec *d;
	struct ig_mp mp;
	struct ig_err *err;
	int nerr;
	bool version_bad;
	uint64_t version;
	int64_t rec; /* -1 outside records */
	const char *sect;
	const char *key;
	uint32_t klen;
	size_t need; /* arena bytes of the current record */
	const char *recs_name; /* "records" (v1) or "rec" (v2) */
};

void wd_verr(struct vctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A type error: reported; walking stops once there are too many. */
int wd_type_err(struct vctx *c);
/* Reports a structural error (rv from ig_mpack); always -EBADMSG. */
int wd_structural(struct vctx *c, int rv);
int wd_rd(struct vctx *c, struct ig_mp_val *v);
int wd_skip_body(struct vctx *c, const struct ig_mp_val *v, unsigned depth);
int wd_skip_value(struct vctx *c, unsigned depth);
void wd_describe(const struct ig_mp_val *v, char *out, size_t len);
bool wd_str_ok(struct vctx *c, const struct ig_mp_val *v);
/* Reads the value of the current key (nested at `depth`: that of its map).
 * 1 = it is what was wanted, 0 = it was not (reported and skipped), < 0 =
 * stop. */
int wd_want(struct vctx *c, enum want w, struct ig_mp_val *v, unsigned depth);
bool wd_key_is(const struct ig_mp_val *k, const char *name);
bool wd_same_str(const struct ig_mp_val *a, const struct ig_mp_val *b);

/* v2 (ig_wire_dec2.c): the values of the envelope keys "str", "ids" and
 * "rec", in that order; 0, or < 0 to stop (reported). */
int wd2_check_str(struct vctx *c);
int wd2_check_ids(struct vctx *c);
int wd2_check_rec(struct vctx *c, struct ig_envelope_hdr *h, size_t *first);
/* Fills r from the next v2 record at d->it. */
int wd2_read_record(struct ig_wire_dec *d, struct ig_record *r);
void wd2_free(struct ig_wire_dec *d);

#endif
