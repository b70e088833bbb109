/* ig_wire_v2: the version 2 envelope encoder (ig_wire_enc2.c), internal to
 * ig_common; ig_wire.c dispatches to it. docs/wire-format.md ("Version 2")
 * specifies the format; the decoder is in ig_wire_dec.c and ig_wire_dec2.c.
 */
#ifndef IG_WIRE_V2_H
#define IG_WIRE_V2_H

#include <stddef.h>
#include <stdint.h>

#include "ig_wire.h"

/* Positions in a v2 record array and in a v2 identity array. */
enum {
	IG_W2_K,
	IG_W2_P,
	IG_W2_TS,
	IG_W2_PID,
	IG_W2_TID,
	IG_W2_PPID,
	IG_W2_UID,
	IG_W2_GID,
	IG_W2_COMM,
	IG_W2_CG,
	IG_W2_ID,
	IG_W2_F,
	IG_W2_REC_N /* elements of a record this version knows */
};
/* Identity: the IG_WIRE_ID_NSTR members of ig_wire_id_members, then labels. */
#define IG_W2_ID_LBL IG_WIRE_ID_NSTR
#define IG_W2_ID_N (IG_WIRE_ID_NSTR + 1)

struct ig_wire_enc2;
struct ig_wire_enc2 *ig_wire_enc2_new(void);
void ig_wire_enc2_free(struct ig_wire_enc2 *e);
void ig_wire_enc2_reset(struct ig_wire_enc2 *e);
int ig_wire_enc2_add(struct ig_wire_enc2 *e, const struct ig_record *r);
uint32_t ig_wire_enc2_count(const struct ig_wire_enc2 *e);
size_t ig_wire_enc2_bytes(const struct ig_wire_enc2 *e);
int ig_wire_enc2_finish(struct ig_wire_enc2 *e, const struct ig_envelope_hdr *hdr, void **buf,
			size_t *len);

#endif
