/* identity: container and pod identity for every event.
 *
 * The facade the agent calls. ig_ident_fill() runs on every record: it looks
 * the record's cgroup id up in the cgroup cache (cgroup_cache.h) and copies
 * the precomputed identity (scope, runtime, container id, pod uid, pod name,
 * namespace, container name, image, owner, labels, cgroup path) onto the
 * record. It takes no lock, does no I/O and never blocks: an unknown id
 * leaves the identity empty (never guessed), is counted as a miss and is
 * queued for a lazy lookup.
 *
 * Everything slow happens elsewhere:
 *   - a cgroup thread watches the v2 hierarchy with inotify (mkdir/rmdir of
 *     cgroup directories), rescans it every kubernetes.cgroup_rescan, and
 *     resolves queued unknown ids through kernfs file handles;
 *   - a Kubernetes thread (k8s_client.h) lists and watches this node's pods;
 * Both hand their results to a queue that ig_ident_tick() applies on the
 * agent thread, so the table the hot path reads only ever changes on the
 * thread that reads it.
 *
 * Strings on a filled record point into the cache or into pod data; they
 * stay valid until the next-but-one ig_ident_tick() (retired entries and
 * pods are freed one tick after they are replaced).
 *
 * A cgroup that vanished (short-lived container) keeps its entry for a
 * while, so late events still get the full identity; those events are
 * counted in `vanished`.
 */
#ifndef IG_IDENTITY_H
#define IG_IDENTITY_H

#include <stdint.h>

#include "ig_conf.h"
#include "ig_err.h"
#include "ig_record.h"
#include "k8s_client.h"

struct ig_ident;

struct ig_ident_stats {
	uint64_t hits; /* events enriched from the cache */
	uint64_t misses; /* events whose cgroup id was unknown (identity left empty) */
	uint64_t vanished; /* events whose cgroup had already been removed (still enriched) */
	uint64_t lazy_lookups; /* unknown ids queued for lookup */
	uint64_t lazy_resolved; /* ... found */
	uint64_t lazy_failed; /* ... gone before they could be looked up */
	uint64_t cache_full; /* cgroups not cached: kubernetes.cache_max_entries reached */
	uint64_t cgroups_known; /* entries in the cache */
	uint64_t inotify_watches;
	uint64_t rescans;
	enum ig_api_state api_state;
	uint64_t pods_known;
	uint64_t watch_restarts;
	uint64_t relists_410;
	uint64_t api_errors;
};

/* Starts identity enrichment. kc may be NULL (no Kubernetes). node_name
 * selects this node's pods. cgroup_root is "auto" (or NULL) or a directory
 * (a plain directory works too: tests and benchmarks use one). The cgroup
 * tree is walked before this returns. 0, -EINVAL (err says what to fix),
 * -ENOMEM. Without a cgroup v2 hierarchy ("auto" finds none) it still
 * succeeds, logs a warning, and every event stays anonymous. */
int ig_ident_new(struct ig_ident **out, const struct ig_kube_conf *kc, const char *node_name,
		 const char *cgroup_root, struct ig_err *err);
/* HOT PATH: fills r->id from r->cgroup_id. id may be NULL (enrichment off):
 * the identity is then cleared. */
void ig_ident_fill(struct ig_ident *id, struct ig_record *r);
/* Agent thread, every ~100 ms: applies queued updates, expires vanished
 * cgroups, frees what the previous tick retired, queues lazy lookups.
 * now_ns is CLOCK_MONOTONIC (ig_mono_ns()). */
void ig_ident_tick(struct ig_ident *id, uint64_t now_ns);
void ig_ident_stats(struct ig_ident *id, struct ig_ident_stats *st);
/* Stops both threads and frees everything. */
void ig_ident_free(struct ig_ident *id);

#endif
