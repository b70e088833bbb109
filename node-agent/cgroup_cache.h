/* cgroup_cache: the cgroup id -> identity table read on every event.
 *
 * Every record carries the cgroup id the kernel saw; identity enrichment is
 * one lookup in this table. It is an open-addressing hash table (linear
 * probing, multiplicative hash of the 64-bit id, at most half full, deletion
 * by backward shift, so no tombstones slow lookups down) of pointers to
 * entries. Each entry holds the cgroup's path, what the path says
 * (cgroup_path.h) and the identity to copy onto records, already merged
 * with pod metadata by identity.c, so the hot path copies a dozen pointers
 * and the pod's label pointers and does nothing else.
 *
 * Threading: the table belongs to one thread (the agent's event loop): it is
 * read by ig_ident_fill and changed by ig_ident_tick, never concurrently.
 * Entries replaced or deleted are not freed at once but retired: their
 * strings stay valid until the next ig_cg_cache_reclaim() (called at the
 * start of the next tick), so records filled earlier can still be encoded.
 */
#ifndef IG_CGROUP_CACHE_H
#define IG_CGROUP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup_path.h"
#include "ig_record.h"

/* The identity an entry stamps on records: struct ig_identity without the
 * inline label array (labels point at the pod's, to keep entries small). */
struct ig_cg_ident {
	const char *scope;
	const char *runtime;
	const char *container_id;
	const char *pod_uid;
	const char *pod_name;
	const char *namespace_;
	const char *container_name;
	const char *image;
	const char *owner_kind;
	const char *owner_name;
	const char *cgroup_path;
	uint32_t nlabels;
	const struct ig_label *labels;
};

enum ig_cge_state {
	IG_CGE_READY = 1, /* path known (identity may still lack pod fields) */
	IG_CGE_NEGATIVE = 2, /* looked up and not found: events stay anonymous */
	IG_CGE_PENDING = 3, /* a lookup is queued: events stay anonymous meanwhile */
};

/* What the hot path reads (ident, state, vanished_ns) comes first, in the
 * first two cache lines of a 64-byte aligned allocation. */
struct ig_cg_entry {
	struct ig_cg_ident ident;
	enum ig_cge_state state;
	uint64_t vanished_ns; /* when the cgroup was seen removed; 0 = alive */
	uint64_t id;
	uint64_t added_ns; /* CLOCK_MONOTONIC when it entered the table */
	uint64_t gen; /* identity.c's: last rescan that saw it */
	char *path; /* relative to the v2 root ("/kubepods.slice/..."); owned */
	struct ig_cgroup_info info;
	const void *pod; /* identity.c's: pod the entry was enriched from */
	struct ig_cg_entry *retired_next;
};

/* A READY entry for (id, path) with the identity the path alone gives.
 * NULL on allocation failure. */
struct ig_cg_entry *ig_cg_entry_new(uint64_t id, const char *path, uint64_t now_ns);
/* A path-less entry in state NEGATIVE or PENDING (anonymous identity). */
struct ig_cg_entry *ig_cg_entry_new_unresolved(uint64_t id, enum ig_cge_state state,
					       uint64_t now_ns);
/* Resets e->ident to what the path alone says (before pod enrichment). */
void ig_cg_entry_reset_ident(struct ig_cg_entry *e);
void ig_cg_entry_free(struct ig_cg_entry *e);

struct ig_cg_cache;

/* max_entries bounds the table (0 = 65536). 0 or -ENOMEM. */
int ig_cg_cache_new(struct ig_cg_cache **out, size_t max_entries);
/* Frees the table, every entry and every retired entry. */
void ig_cg_cache_free(struct ig_cg_cache *c);

/* The hot path: NULL when absent. */
struct ig_cg_entry *ig_cg_cache_get(const struct ig_cg_cache *c, uint64_t id);
/* Inserts e (ownership passes to the cache), replacing and retiring an entry
 * with the same id. -ENOSPC when the table holds max_entries already (e is
 * not taken: the caller frees it), -EINVAL for id 0. */
int ig_cg_cache_put(struct ig_cg_cache *c, struct ig_cg_entry *e);
/* Removes and retires the entry; -ENOENT when absent. */
int ig_cg_cache_del(struct ig_cg_cache *c, uint64_t id);
/* Frees the entries retired since the previous call. */
void ig_cg_cache_reclaim(struct ig_cg_cache *c);
size_t ig_cg_cache_count(const struct ig_cg_cache *c);
size_t ig_cg_cache_max(const struct ig_cg_cache *c);
/* Calls fn on every entry; entries for which fn returns non-zero are
 * removed (retired) after the walk. Returns how many were removed. */
size_t ig_cg_cache_sweep(struct ig_cg_cache *c, int (*fn)(void *arg, struct ig_cg_entry *e),
			 void *arg);

/* Copies an entry's identity onto a record's (labels as pointers, at most
 * IG_MAX_LABELS). */
static inline void ig_cg_ident_copy(struct ig_identity *dst, const struct ig_cg_ident *src)
{
	uint32_t n = src->nlabels < IG_MAX_LABELS ? src->nlabels : IG_MAX_LABELS;

	dst->scope = src->scope;
	dst->runtime = src->runtime;
	dst->container_id = src->container_id;
	dst->pod_uid = src->pod_uid;
	dst->pod_name = src->pod_name;
	dst->namespace_ = src->namespace_;
	dst->container_name = src->container_name;
	dst->image = src->image;
	dst->owner_kind = src->owner_kind;
	dst->owner_name = src->owner_name;
	dst->cgroup_path = src->cgroup_path;
	dst->nlabels = n;
	for (uint32_t i = 0; i < n; i++)
		dst->labels[i] = src->labels[i];
}

#endif
