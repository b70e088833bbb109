/* cgroup_cache: the cgroup id -> identity hash table (see cgroup_cache.h).
 *
 * Slots hold (id, entry*) pairs so a probe touches one cache line per step
 * without dereferencing entries; id 0 marks an empty slot (the kernel never
 * hands out cgroup id 0). The home slot of an id is the top bits of
 * id * 2^64/phi: cgroup ids are inode numbers that grow by small steps, and
 * Fibonacci hashing spreads such runs evenly.
 */
#include "cgroup_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IG_CG_DEFAULT_MAX 65536

struct ig_cg_slot {
	uint64_t id;
	struct ig_cg_entry *e;
};

struct ig_cg_cache {
	struct ig_cg_slot *slots;
	unsigned shift; /* 64 - log2(capacity) */
	size_t mask;
	size_t count;
	size_t max;
	struct ig_cg_entry *retired;
};

static inline size_t home_slot(const struct ig_cg_cache *c, uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ULL) >> c->shift);
}

static void entry_fill_ident(struct ig_cg_entry *e)
{
	memset(&e->ident, 0, sizeof(e->ident));
	e->pod = NULL;
	if (e->state != IG_CGE_READY)
		return;
	e->ident.scope = ig_cg_scope_name(e->info.scope);
	e->ident.runtime = e->info.runtime;
	e->ident.container_id = e->info.container_id[0] ? e->info.container_id : NULL;
	e->ident.pod_uid = e->info.pod_uid[0] ? e->info.pod_uid : NULL;
	e->ident.cgroup_path = e->path;
}

static struct ig_cg_entry *entry_alloc(void)
{
	size_t size = (sizeof(struct ig_cg_entry) + 63) & ~(size_t)63;
	struct ig_cg_entry *e = aligned_alloc(64, size);

	if (e)
		memset(e, 0, size);
	return e;
}

struct ig_cg_entry *ig_cg_entry_new(uint64_t id, const char *path, uint64_t now_ns)
{
	struct ig_cg_entry *e = entry_alloc();

	if (!e)
		return NULL;
	e->path = strdup(path ? path : "");
	if (!e->path) {
		free(e);
		return NULL;
	}
	e->id = id;
	e->state = IG_CGE_READY;
	e->added_ns = now_ns;
	if (ig_cgroup_path_parse(e->path, &e->info) != 0)
		e->info.scope = IG_CG_UNKNOWN;
	entry_fill_ident(e);
	return e;
}

struct ig_cg_entry *ig_cg_entry_new_unresolved(uint64_t id, enum ig_cge_state state,
					       uint64_t now_ns)
{
	struct ig_cg_entry *e = entry_alloc();

	if (!e)
		return NULL;
	e->id = id;
	e->state = state == IG_CGE_READY ? IG_CGE_NEGATIVE : state;
	e->added_ns = now_ns;
	return e;
}

void ig_cg_entry_reset_ident(struct ig_cg_entry *e)
{
	entry_fill_ident(e);
}

void ig_cg_entry_free(struct ig_cg_entry *e)
{
	if (!e)
		return;
	free(e->path);
	free(e);
}

int ig_cg_cache_new(struct ig_cg_cache **out, size_t max_entries)
{
	struct ig_cg_cache *c;
	size_t cap = 64;
	unsigned bits = 6;

	*out = NULL;
	if (!max_entries)
		max_entries = IG_CG_DEFAULT_MAX;
	while (cap < max_entries * 2) {
		cap <<= 1;
		bits++;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->slots = calloc(cap, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return -ENOMEM;
	}
	c->mask = cap - 1;
	c->shift = 64 - bits;
	c->max = max_entries;
	*out = c;
	return 0;
}

static void retire(struct ig_cg_cache *c, struct ig_cg_entry *e)
{
	e->retired_next = c->retired;
	c->retired = e;
}

void ig_cg_cache_reclaim(struct ig_cg_cache *c)
{
	struct ig_cg_entry *e = c->retired, *next;

	for (; e; e = next) {
		next = e->retired_next;
		ig_cg_entry_free(e);
	}
	c->retired = NULL;
}

void ig_cg_cache_free(struct ig_cg_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i <= c->mask; i++)
		if (c->slots[i].id)
			ig_cg_entry_free(c->slots[i].e);
	ig_cg_cache_reclaim(c);
	free(c->slots);
	free(c);
}

struct ig_cg_entry *ig_cg_cache_get(const struct ig_cg_cache *c, uint64_t id)
{
	size_t i = home_slot(c, id);

	for (;;) {
		const struct ig_cg_slot *s = &c->slots[i];

		if (s->id == id)
			return id ? s->e : NULL;
		if (!s->id)
			return NULL;
		i = (i + 1) & c->mask;
	}
}

int ig_cg_cache_put(struct ig_cg_cache *c, struct ig_cg_entry *e)
{
	size_t i;

	if (!e || !e->id)
		return -EINVAL;
	for (i = home_slot(c, e->id);; i = (i + 1) & c->mask) {
		struct ig_cg_slot *s = &c->slots[i];

		if (s->id == e->id) {
			if (s->e != e)
				retire(c, s->e);
			s->e = e;
			return 0;
		}
		if (!s->id)
			break;
	}
	if (c->count >= c->max)
		return -ENOSPC;
	c->slots[i].id = e->id;
	c->slots[i].e = e;
	c->count++;
	return 0;
}

/* Backward-shift deletion: close the gap at i by moving later members of
 * the probe run whose home slot is not in (i, j]. */
static void remove_slot(struct ig_cg_cache *c, size_t i)
{
	size_t j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & c->mask;
		if (!c->slots[j].id)
			break;
		k = home_slot(c, c->slots[j].id);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			c->slots[i] = c->slots[j];
			i = j;
		}
	}
	c->slots[i].id = 0;
	c->slots[i].e = NULL;
	c->count--;
}

int ig_cg_cache_del(struct ig_cg_cache *c, uint64_t id)
{
	if (!id)
		return -ENOENT;
	for (size_t i = home_slot(c, id);; i = (i + 1) & c->mask) {
		struct ig_cg_slot *s = &c->slots[i];

		if (s->id == id) {
			retire(c, s->e);
			remove_slot(c, i);
			return 0;
		}
		if (!s->id)
			return -ENOENT;
	}
}

size_t ig_cg_cache_count(const struct ig_cg_cache *c)
{
	return c->count;
}

size_t ig_cg_cache_max(const struct ig_cg_cache *c)
{
	return c->max;
}

size_t ig_cg_cache_sweep(struct ig_cg_cache *c, int (*fn)(void *arg, struct ig_cg_entry *e),
			 void *arg)
{
	uint64_t *doomed = NULL;
	size_t n = 0, cap = 0, removed = 0;

	for (size_t i = 0; i <= c->mask; i++) {
		if (!c->slots[i].id || !fn(arg, c->slots[i].e))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			uint64_t *nd = realloc(doomed, ncap * sizeof(*nd));

			if (!nd)
				break; /* the rest stays until the next sweep */
			doomed = nd;
			cap = ncap;
		}
		doomed[n++] = c->slots[i].id;
	}
	for (size_t i = 0; i < n; i++)
		if (ig_cg_cache_del(c, doomed[i]) == 0)
			removed++;
	free(doomed);
	return removed;
}
