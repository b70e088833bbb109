/* distinct: a bounded distinct-value counter for the rollup stage's sets
 * (StatsD `|s`: "how many different users/paths/pods this window").
 *
 * It keeps the k smallest distinct 64-bit hashes of the members seen (a
 * "k minimum values" sketch, Bar-Yossef et al. 2002) in a sorted array:
 * while fewer than k distinct members were seen the count is exact; beyond,
 * it is estimated as (k - 1) / h_k, h_k the k-th smallest hash scaled to
 * [0, 1), with a relative standard error of about 1 / sqrt(k - 2) (3 % for
 * k = IG_DISTINCT_K). Memory is at most k * 8 bytes (8 KiB), whatever the
 * number of members. Adding a member costs a hash and a binary search; the
 * array only changes when the hash is among the k smallest, which becomes
 * rare as the stream grows.
 */
#ifndef IG_DISTINCT_H
#define IG_DISTINCT_H

#include <stddef.h>
#include <stdint.h>

#define IG_DISTINCT_K 1024

struct ig_distinct {
	uint32_t n, cap;
	uint64_t *h; /* ascending */
};

struct ig_distinct *ig_distinct_new(void);
void ig_distinct_free(struct ig_distinct *d);
void ig_distinct_reset(struct ig_distinct *d);
/* 0, or -ENOMEM (the member is then not counted). */
int ig_distinct_add(struct ig_distinct *d, const char *member, size_t len);
/* Exact below IG_DISTINCT_K members, an estimate above. */
uint64_t ig_distinct_count(const struct ig_distinct *d);

#endif
