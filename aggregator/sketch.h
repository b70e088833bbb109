/* sketch: a quantile sketch with bounded relative error (DDSketch, Masson et
 * al., VLDB 2019), for the rollup stage's histograms.
 *
 * A value v > 0 is counted in bucket i = ceil(log_gamma(v)), gamma =
 * (1 + a) / (1 - a); every value in a bucket is within a relative error a of
 * the bucket's representative 2 gamma^i / (gamma + 1). Negative values go to
 * a second store by |v|, values with |v| < IG_SKETCH_MIN_VALUE count as 0.
 * A quantile is found by walking the buckets in value order, so p50/p99 are
 * exact to within a (1 % with IG_SKETCH_ALPHA), however many samples.
 *
 * Memory is bounded: each store holds at most IG_SKETCH_MAX_BINS contiguous
 * buckets (4 KiB); when a sample would need more, the lowest buckets are
 * merged into the lowest kept one (with a = 1 % that happens only for data
 * spanning more than 8 orders of magnitude, and it only coarsens the
 * smallest quantiles: a single sample far above the rest, e.g. 1e300, does
 * that to everything below it). count, sum, min and max are exact; quantiles are
 * clamped to [min, max].
 */
#ifndef IG_SKETCH_H
#define IG_SKETCH_H

#include <stdint.h>

#define IG_SKETCH_ALPHA 0.01
#define IG_SKETCH_MAX_BINS 1024
#define IG_SKETCH_MIN_VALUE 1e-9

struct ig_sketch_store {
	uint32_t *bins; /* bins[k] counts bucket off + k */
	int32_t off;
	uint32_t n, cap;
};

struct ig_sketch {
	uint64_t count, zero;
	double sum, min, max;
	struct ig_sketch_store pos, neg;
};

struct ig_sketch *ig_sketch_new(void);
void ig_sketch_free(struct ig_sketch *s);
/* Empties the sketch, keeping its memory. */
void ig_sketch_reset(struct ig_sketch *s);
/* 0, or -ENOMEM (the sample is then only in count/sum/min/max). NaN and
 * infinities are not counted at all (-EINVAL): one infinite sample would
 * otherwise need every bucket up to DBL_MAX and merge all the others. */
int ig_sketch_add(struct ig_sketch *s, double v);
/* The value at quantile q (0..1); 0 for an empty sketch. */
double ig_sketch_quantile(const struct ig_sketch *s, double q);

#endif
