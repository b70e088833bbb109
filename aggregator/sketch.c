/* sketch: see sketch.h. */
#include "sketch.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GAMMA ((1.0 + IG_SKETCH_ALPHA) / (1.0 - IG_SKETCH_ALPHA))

static double ln_gamma(void)
{
	static double v;

	if (!v)
		v = log(GAMMA);
	return v;
}

static int32_t bucket_of(double v)
{
	return (int32_t)ceil(log(v) / ln_gamma());
}

static double bucket_value(int32_t i)
{
	return 2.0 * exp((double)i * ln_gamma()) / (GAMMA + 1.0);
}

static int store_reserve(struct ig_sketch_store *st, uint32_t n)
{
	uint32_t cap = st->cap ? st->cap : 32;
	uint32_t *b;

	if (n <= st->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (cap > IG_SKETCH_MAX_BINS)
		cap = IG_SKETCH_MAX_BINS;
	b = realloc(st->bins, cap * sizeof(*b));
	if (!b)
		return -ENOMEM;
	st->bins = b;
	st->cap = cap;
	return 0;
}

static void bump(uint32_t *c)
{
	if (*c != UINT32_MAX)
		(*c)++;
}

static void add_sat(uint32_t *c, uint32_t v)
{
	*c = UINT32_MAX - *c < v ? UINT32_MAX : *c + v;
}

/* Counts bucket i, keeping at most IG_SKETCH_MAX_BINS buckets (the lowest
 * ones merge into the lowest kept one). */
static int store_add(struct ig_sketch_store *st, int32_t i)
{
	if (!st->n) {
		if (store_reserve(st, 1) < 0)
			return -ENOMEM;
		st->off = i;
		st->n = 1;
		st->bins[0] = 1;
		return 0;
	}
	if (i >= st->off && i < st->off + (int32_t)st->n) {
		bump(&st->bins[i - st->off]);
		return 0;
	}
	if (i >= st->off + (int32_t)st->n) {
		int64_t want = (int64_t)i - st->off + 1;
		uint32_t drop =
			want > IG_SKETCH_MAX_BINS ? (uint32_t)(want - IG_SKETCH_MAX_BINS) : 0;
		uint32_t keep_n = (uint32_t)(want - drop);

		if (store_reserve(st, keep_n) < 0)
			return -ENOMEM;
		if (drop >= st->n) {
			/* Everything counted so far is below the new range. */
			uint32_t total = 0;

			for (uint32_t k = 0; k < st->n; k++)
				add_sat(&total, st->bins[k]);
			memset(st->bins, 0, keep_n * sizeof(*st->bins));
			st->bins[0] = total;
		} else if (drop) {
			for (uint32_t k = 0; k < drop; k++)
				add_sat(&st->bins[drop], st->bins[k]);
			memmove(st->bins, st->bins + drop, (st->n - drop) * sizeof(*st->bins));
			memset(st->bins + (st->n - drop), 0,
			       (keep_n - (st->n - drop)) * sizeof(*st->bins));
		} else {
			memset(st->bins + st->n, 0, (keep_n - st->n) * sizeof(*st->bins));
		}
		st->off += (int32_t)drop;
		st->n = keep_n;
		bump(&st->bins[i - st->off]);
		return 0;
	}
	/* i < off: grow downwards, at most to the bin limit. */
	int64_t top = (int64_t)st->off + st->n - 1;
	int64_t lo = top - IG_SKETCH_MAX_BINS + 1;
	int32_t new_off = (int32_t)(i > lo ? i : lo);
	uint32_t grow = (uint32_t)(st->off - new_off);

	if (grow) {
		if (store_reserve(st, st->n + grow) < 0)
			return -ENOMEM;
		memmove(st->bins + grow, st->bins, st->n * sizeof(*st->bins));
		memset(st->bins, 0, grow * sizeof(*st->bins));
		st->off = new_off;
		st->n += grow;
	}
	bump(&st->bins[(i > new_off ? i : new_off) - st->off]);
	return 0;
}

struct ig_sketch *ig_sketch_new(void)
{
	struct ig_sketch *s = calloc(1, sizeof(*s));

	return s;
}

void ig_sketch_free(struct ig_sketch *s)
{
	if (!s)
		return;
	free(s->pos.bins);
	free(s->neg.bins);
	free(s);
}

void ig_sketch_reset(struct ig_sketch *s)
{
	s->count = s->zero = 0;
	s->sum = s->min = s->max = 0;
	s->pos.n = s->neg.n = 0;
	s->pos.off = s->neg.off = 0;
}

int ig_sketch_add(struct ig_sketch *s, double v)
{
	if (!isfinite(v))
		return -EINVAL;
	if (!s->count || v < s->min)
		s->min = v;
	if (!s->count || v > s->max)
		s->max = v;
	s->count++;
	s->sum += v;
	if (fabs(v) < IG_SKETCH_MIN_VALUE) {
		s->zero++;
		return 0;
	}
	return v > 0 ? store_add(&s->pos, bucket_of(v)) : store_add(&s->neg, bucket_of(-v));
}

double ig_sketch_quantile(const struct ig_sketch *s, double q)
{
	double rank, seen = 0, v = s->max;

	if (!s->count)
		return 0;
	if (q <= 0)
		return s->min;
	if (q >= 1)
		return s->max;
	rank = q * (double)(s->count - 1);
	for (uint32_t k = s->neg.n; k-- > 0;) {
		seen += s->neg.bins[k];
		if (seen > rank) {
			v = -bucket_value(s->neg.off + (int32_t)k);
			goto out;
		}
	}
	seen += (double)s->zero;
	if (seen > rank) {
		v = 0;
		goto out;
	}
	for (uint32_t k = 0; k < s->pos.n; k++) {
		seen += s->pos.bins[k];
		if (seen > rank) {
			v = bucket_value(s->pos.off + (int32_t)k);
			goto out;
		}
	}
out:
	if (v < s->min)
		v = s->min;
	if (v > s->max)
		v = s->max;
	return v;
}
