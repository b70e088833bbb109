/* bench_identity: what identity enrichment costs per event.
 *
 *   bench_identity [PODS] [ITERATIONS]    (defaults 2000 pods, 20000000)
 *
 * Builds a kubelet-shaped tree of PODS pods x 3 containers in a temporary
 * directory (a plain directory: the cache cannot tell, and no root is
 * needed), starts ig_ident on it with Kubernetes off, and times
 * ig_ident_fill():
 *
 *   hit        ids of existing containers, in a shuffled order
 *   hit+labels the same lookups against a cache whose entries carry 4 pod
 *              labels (what an allowlist of 4 costs on top)
 *   miss       ids the agent does not know (after the first miss each id is
 *              a PENDING placeholder: this is the steady-state miss)
 *   big table  65536 entries, random ids: the lookup when the table is far
 *              larger than the CPU caches
 * Each figure is measured 7 times (ITERATIONS/7 lookups each) and printed as
 * "name_ns=<min> (median <m>)": the minimum is what the code costs, the
 * median what a busy 2-core VM lets it have.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_cache.h"
#include "cgroup_path.h"
#include "identity.h"
#include "ig_log.h"
#include "ig_time.h"

static volatile uintptr_t sink;

struct ids {
	uint64_t *v;
	size_t n, cap;
};

static int collect(void *arg, uint64_t id, const char *path)
{
	struct ids *ids = arg;

	if (!strstr(path, ".scope"))
		return 0;
	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 1024;
		ids->v = realloc(ids->v, ids->cap * sizeof(*ids->v));
		if (!ids->v)
			return -ENOMEM;
	}
	ids->v[ids->n++] = id;
	return 0;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void shuffle(uint64_t *v, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = xorshift() % i;
		uint64_t t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static double time_fill(struct ig_ident *id, struct ig_record *r, const uint64_t *ids, size_t n,
			long iters)
{
	uint64_t t0 = ig_mono_ns();

	for (long i = 0; i < iters; i++) {
		r->cgroup_id = ids[(size_t)i % n];
		ig_ident_fill(id, r);
		sink += (uintptr_t)r->id.container_id;
	}
	return (double)(ig_mono_ns() - t0) / (double)iters;
}

static double time_cache(struct ig_cg_cache *c, struct ig_record *r, const uint64_t *ids, size_t n,
			 long iters)
{
	uint64_t t0 = ig_mono_ns();

	for (long i = 0; i < iters; i++) {
		struct ig_cg_entry *e = ig_cg_cache_get(c, ids[(size_t)i % n]);

		if (e)
			ig_cg_ident_copy(&r->id, &e->ident);
		sink += (uintptr_t)r->id.container_id + r->id.nlabels;
	}
	return (double)(ig_mono_ns() - t0) / (double)iters;
}

#define REPS 7

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct fig {
	double min, median;
};

static struct fig summarize(double *v)
{
	qsort(v, REPS, sizeof(*v), dcmp);
	return (struct fig){ v[0], v[REPS / 2] };
}

static struct fig rep_fill(struct ig_ident *id, struct ig_record *r, const uint64_t *ids, size_t n,
			   long iters)
{
	double v[REPS];

	for (int i = 0; i < REPS; i++)
		v[i] = time_fill(id, r, ids, n, iters / REPS);
	return summarize(v);
}

static struct fig rep_cache(struct ig_cg_cache *c, struct ig_record *r, const uint64_t *ids,
			    size_t n, long iters)
{
	double v[REPS];

	for (int i = 0; i < REPS; i++)
		v[i] = time_cache(c, r, ids, n, iters / REPS);
	return summarize(v);
}

static void make_tree(const char *root, long pods)
{
	char path[PATH_MAX];

	for (long p = 0; p < pods; p++) {
		const char *qos = p % 3 == 0 ? "burstable" : p % 3 == 1 ? "besteffort" : NULL;
		char slice[PATH_MAX], uid[64];

		snprintf(uid, sizeof(uid), "%08x_1111_4222_8333_%012x", (unsigned)p, (unsigned)p);
		if (qos)
			snprintf(slice, sizeof(slice),
				 "%s/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice",
				 root, qos, qos, uid);
		else
			snprintf(slice, sizeof(slice), "%s/kubepods.slice/kubepods-pod%s.slice",
				 root, uid);
		for (int c = 0; c < 3; c++) {
			char cmd[PATH_MAX + 16];

			if (snprintf(path, sizeof(path), "%s/cri-containerd-%056lx%08x.scope",
				     slice, (unsigned long)p, c) >= (int)sizeof(path))
				exit(1);
			if (mkdir(path, 0755) == 0)
				continue;
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
			if (system(cmd) != 0) {
				fprintf(stderr, "cannot create %s\n", path);
				exit(1);
			}
		}
	}
}

int main(int argc, char **argv)
{
	long pods = argc > 1 ? atol(argv[1]) : 2000;
	long iters = argc > 2 ? atol(argv[2]) : 20000000;
	char root[] = "/tmp/ig_bench_identity_XXXXXX", cmd[PATH_MAX];
	struct ig_kube_conf kc;
	struct ig_ident *id;
	struct ig_ident_stats st;
	struct ig_record *r = calloc(1, sizeof(*r));
	struct ig_err err;
	struct ids ids = { 0 };
	struct ig_cg_cache *c;
	struct ig_label labels[4] = { { "app", "web" },
				      { "team", "payments" },
				      { "tier", "backend" },
				      { "version", "v42" } };
	uint64_t *missing, *big;
	enum { BIG = 65536 };
	struct fig hit, hit_labels, miss, bigt;

	if (pods <= 0 || iters <= 0 || !r || !mkdtemp(root)) {
		fprintf(stderr, "usage: bench_identity [PODS] [ITERATIONS]\n");
		return 2;
	}
	ig_log_init("bench_identity", IG_LOG_ERROR, IG_LOG_LOGFMT);
	ig_time_init();
	make_tree(root, pods);
	memset(&kc, 0, sizeof(kc));
	kc.enabled = 2;
	ig_err_init(&err);
	if (ig_ident_new(&id, &kc, "bench", root, &err)) {
		fprintf(stderr, "ig_ident_new: %s\n", ig_err_str(&err));
		return 1;
	}
	ig_cgroup_walk(root, 64, collect, &ids);
	shuffle(ids.v, ids.n);

	/* hits */
	time_fill(id, r, ids.v, ids.n, (long)ids.n); /* warm */
	hit = rep_fill(id, r, ids.v, ids.n, iters);

	/* steady-state misses: ids nobody has, queued once, then PENDING */
	missing = calloc(1024, sizeof(*missing));
	for (size_t i = 0; i < 1024; i++)
		missing[i] = (1ULL << 40) + i * 7919;
	time_fill(id, r, missing, 1024, 1024);
	miss = rep_fill(id, r, missing, 1024, iters / 4);
	ig_ident_stats(id, &st);

	/* the copy with labels, and a table far larger than the caches */
	ig_cg_cache_new(&c, BIG);
	big = calloc(BIG, sizeof(*big));
	for (size_t i = 0; i < BIG; i++) {
		struct ig_cg_entry *e = ig_cg_entry_new(
			4096 + i * 3,
			"/kubepods.slice/kubepods-besteffort.slice/"
			"kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice/"
			"cri-containerd-f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830.scope",
			0);

		e->ident.labels = labels;
		e->ident.nlabels = 4;
		e->ident.pod_name = "web-7d4b9c8f6-x2x9q";
		ig_cg_cache_put(c, e);
		big[i] = e->id;
	}
	shuffle(big, BIG);
	time_cache(c, r, big, ids.n, (long)ids.n);
	hit_labels = rep_cache(c, r, big, ids.n < BIG ? ids.n : BIG, iters);
	time_cache(c, r, big, BIG, BIG);
	bigt = rep_cache(c, r, big, BIG, iters);

	printf("cgroups=%zu containers=%zu iterations=%ld\n", (size_t)st.cgroups_known, ids.n,
	       iters);
	printf("hit_ns=%.1f (median %.1f)\n", hit.min, hit.median);
	printf("hit_with_4_labels_ns=%.1f (median %.1f)\n", hit_labels.min, hit_labels.median);
	printf("miss_ns=%.1f (median %.1f; lazy lookups queued: %llu)\n", miss.min, miss.median,
	       (unsigned long long)st.lazy_lookups);
	printf("hit_65536_entries_ns=%.1f (median %.1f)\n", bigt.min, bigt.median);

	ig_cg_cache_free(c);
	ig_ident_free(id);
	free(missing);
	free(big);
	free(ids.v);
	free(r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : 1;
}
