/* ig_wire_schema: the parts of the wire schema the encoder (ig_wire.c) and
 * the decoder (ig_wire_dec.c) must agree on, kept in one place. Internal to
 * ig_common; docs/wire-format.md is the reference for readers.
 */
#ifndef IG_WIRE_SCHEMA_H
#define IG_WIRE_SCHEMA_H

#include <stddef.h>

#include "ig_record.h"

/* The string members of "id", in wire order, with their short keys. ("lbl",
 * the labels map, follows them.) */
#define IG_WIRE_ID_NSTR 11

static const struct {
	const char *key;
	size_t off; /* of a `const char *` in struct ig_identity */
} ig_wire_id_members[IG_WIRE_ID_NSTR] = {
	{ "scope", offsetof(struct ig_identity, scope) },
	{ "rt", offsetof(struct ig_identity, runtime) },
	{ "cid", offsetof(struct ig_identity, container_id) },
	{ "puid", offsetof(struct ig_identity, pod_uid) },
	{ "pod", offsetof(struct ig_identity, pod_name) },
	{ "ns", offsetof(struct ig_identity, namespace_) },
	{ "ctr", offsetof(struct ig_identity, container_name) },
	{ "img", offsetof(struct ig_identity, image) },
	{ "ok", offsetof(struct ig_identity, owner_kind) },
	{ "on", offsetof(struct ig_identity, owner_name) },
	{ "cgp", offsetof(struct ig_identity, cgroup_path) },
};

static inline const char *ig_wire_id_get(const struct ig_identity *id, int i)
{
	return *(const char *const *)((const char *)id + ig_wire_id_members[i].off);
}

static inline void ig_wire_id_set(struct ig_identity *id, int i, const char *v)
{
	*(const char **)((char *)id + ig_wire_id_members[i].off) = v;
}

#endif
