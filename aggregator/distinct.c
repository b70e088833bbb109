/* distinct: see distinct.h. */
#include "distinct.h"
#include "ig_hash.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, then the splitmix64 finaliser so that every bit is well mixed
 * (KMV needs hashes uniform over the whole 64-bit range). */
static uint64_t hash_member(const char *s, size_t len)
{
	return ig_mix64(ig_fnv64(IG_FNV64_INIT, s, len));
}

struct ig_distinct *ig_distinct_new(void)
{
	return calloc(1, sizeof(struct ig_distinct));
}

void ig_distinct_free(struct ig_distinct *d)
{
	if (!d)
		return;
	free(d->h);
	free(d);
}

void ig_distinct_reset(struct ig_distinct *d)
{
	d->n = 0;
}

/* Index of the first hash >= h. */
static uint32_t lower_bound(const struct ig_distinct *d, uint64_t h)
{
	uint32_t lo = 0, hi = d->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->h[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int ig_distinct_add(struct ig_distinct *d, const char *member, size_t len)
{
	uint64_t h = hash_member(member ? member : "", member ? len : 0);
	uint32_t at;

	if (d->n == IG_DISTINCT_K && h >= d->h[d->n - 1])
		return 0; /* not among the k smallest (or already the k-th) */
	at = lower_bound(d, h);
	if (at < d->n && d->h[at] == h)
		return 0;
	if (d->n < IG_DISTINCT_K) {
		if (d->n == d->cap) {
			uint32_t cap = d->cap ? d->cap * 2 : 16;
			uint64_t *nh;

			if (cap > IG_DISTINCT_K)
				cap = IG_DISTINCT_K;
			nh = realloc(d->h, cap * sizeof(*nh));
			if (!nh)
				return -ENOMEM;
			d->h = nh;
			d->cap = cap;
		}
		memmove(d->h + at + 1, d->h + at, (d->n - at) * sizeof(*d->h));
		d->n++;
	} else {
		/* Full: the largest falls off the end. */
		memmove(d->h + at + 1, d->h + at, (d->n - 1 - at) * sizeof(*d->h));
	}
	d->h[at] = h;
	return 0;
}

uint64_t ig_distinct_count(const struct ig_distinct *d)
{
	double kth;

	if (d->n < IG_DISTINCT_K)
		return d->n;
	kth = ((double)d->h[d->n - 1] + 1.0) / 18446744073709551616.0;
	return (uint64_t)llround((double)(IG_DISTINCT_K - 1) / kth);
}
