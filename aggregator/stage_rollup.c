/* stage_rollup: aggregates metrics over a time window per series (name, kind
 * and tag set), so a storm of events becomes a few numbers per window:
 *
 *   - {type: rollup, window: 10s, max_series: 10000, percentiles: [50, 90, 99]}
 *
 * Per series and window:
 *   counter    the sum of the values             -> <name> (counter)
 *   gauge      the last value (gauge: max: the largest) -> <name> (gauge)
 *   histogram  count, sum, min, max and percentiles within 1 % (sketch.h);
 *              a sample that is NaN or infinite is dropped
 *                                                -> <name>.count, <name>.sum (counters),
 *                                                   <name>.min, .max, .p50, .p99_9 (gauges)
 *   set        distinct members, exact below 1024, ~3 % above (distinct.h)
 *                                                -> <name> (gauge)
 * Each output metric carries the series' tags (in the order of the metric
 * that opened the series; the stages before keep one order per pipeline) and
 * ts = the window's end. The stage consumes what it is given
 * (IG_STAGE_CONSUMED) and emits through the rest of the pipeline when the
 * window ends (tick) and on flush (shutdown, or a reload that changed this
 * pipeline), series in the order they first appeared.
 *
 * Windows are processing-time: a metric belongs to the window during which it
 * arrived. Their ends are aligned to multiples of `window` on the wall clock
 * (10s windows end at :00, :10, ...) so that several aggregators' outputs
 * line up; the tick that crosses an end (every 100 ms) emits.
 *
 * Memory is bounded by max_series: once the window holds that many series, a
 * metric of a new series is folded into the series `<name>` tagged only
 * `__overflow__: "true"` (one per name and kind, at most OVERFLOW_SERIES of
 * them beyond max_series; past that the metric is dropped and counted by the
 * engine), the fold is counted and logged (rate-limited). Histograms hold at
 * most 2 x 4 KiB of buckets and sets 8 KiB, so the worst case is max_series x
 * (key + 8 KiB); keys and series are reused window after window.
 *
 * On a reload that leaves this pipeline's definition unchanged, the engine
 * calls adopt(): the new stage takes the old one's series and window, so
 * nothing is emitted early, lost or counted twice.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distinct.h"
#include "ig_log.h"
#include "ig_stage.h"
#include "ig_strpool.h"
#include "ig_time.h"
#include "sketch.h"

#define OVERFLOW_SERIES 256
#define OVERFLOW_KEY "__overflow__"
#define MAX_PERCENTILES 16

enum gauge_mode { GAUGE_LAST, GAUGE_MAX };
static const char *const gauge_choices[] = { "last", "max", NULL };

struct rollup_conf {
	uint64_t window_ns;
	uint64_t max_series;
	const struct ig_ynode *percentiles;
	int gauge;
};

struct series {
	const char *key; /* kind byte, name NUL, then key NUL value NUL per tag */
	uint32_t keylen;
	uint32_t hash;
	uint32_t ntags;
	uint64_t numtags; /* bit i: tag i came from a number */
	enum ig_metric_kind kind;
	uint64_t n; /* metrics folded in */
	double value; /* counter sum, gauge */
	struct ig_sketch *sk;
	struct ig_distinct *ds;
};

struct rollup {
	uint64_t window_ns;
	uint64_t window_end; /* wall ns; 0 until the first tick */
	uint32_t max_series;
	bool gauge_max;
	uint32_t npct;
	double pct[MAX_PERCENTILES];
	char pct_name[MAX_PERCENTILES][24]; /* ".p50", ".p99_9" */
	/* series of the current window */
	struct series *ser;
	uint32_t nser, ser_cap;
	uint32_t *slots; /* series index + 1, 0 = empty */
	uint32_t nslots;
	struct ig_strpool pool; /* series keys of the current window */
	char *key; /* scratch: the key being looked up */
	size_t key_cap;
	struct ig_metric *w; /* what is emitted */
	uint64_t overflowed, refused;
	struct ig_ratelimit rl;
};

static const struct ig_opt rollup_opts[] = {
	{ "window", IG_OPT_DURATION, "10s", offsetof(struct rollup_conf, window_ns),
	  "Aggregation window. Window ends are aligned to multiples of it on the wall clock.",
	  .min = (int64_t)IG_NSEC_PER_MSEC * 100, .max = (int64_t)IG_NSEC_PER_SEC * 86400 },
	{ "max_series", IG_OPT_UINT, "10000", offsetof(struct rollup_conf, max_series),
	  "Series (name + tags) per window. Beyond, new series fold into `<name>{__overflow__=\"true\"}` and the fold is counted.",
	  .min = 1, .max = 10000000 },
	{ "percentiles", IG_OPT_NODE, "[50, 90, 99]", offsetof(struct rollup_conf, percentiles),
	  "Percentiles emitted for histograms, as `<name>.p50`..., within 1 % relative error. `[]`: only count, sum, min, max.",
	  .doc_type = "list of numbers in (0, 100]" },
	{ "gauge", IG_OPT_ENUM, "last", offsetof(struct rollup_conf, gauge),
	  "What a gauge series reports for the window: its last value or its largest.", .flags = 0,
	  .choices = gauge_choices },
	{ 0 },
};

/* ---- key storage ---- */

static const char *store(struct rollup *st, const char *s, size_t len)
{
	return ig_strpool_copy(&st->pool, s, len);
}

/* ---- series table ---- */

/* 8 bytes a step, each mixed with the splitmix64 finaliser: keys are ~100
 * bytes, and a byte-at-a-time hash was a third of the stage's cost. */
static uint64_t mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

static uint32_t hash_key(const char *k, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ len, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, k + i, 8);
		h = mix64(h ^ w) + i;
	}
	w = 0;
	memcpy(&w, k + i, len - i);
	return (uint32_t)mix64(h ^ w);
}

static int grow_slots(struct rollup *st)
{
	uint32_t n = st->nslots ? st->nslots * 2 : 64;
	uint32_t *s = calloc(n, sizeof(*s));

	if (!s)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->nser; i++) {
		uint32_t j = st->ser[i].hash & (n - 1);

		while (s[j])
			j = (j + 1) & (n - 1);
		s[j] = i + 1;
	}
	free(st->slots);
	st->slots = s;
	st->nslots = n;
	return 0;
}

static struct series *lookup(struct rollup *st, const char *key, uint32_t len, uint32_t h,
			     uint32_t **slot)
{
	*slot = NULL;
	if (!st->nslots)
		return NULL;
	for (uint32_t j = h & (st->nslots - 1);; j = (j + 1) & (st->nslots - 1)) {
		struct series *s;

		if (!st->slots[j]) {
			*slot = &st->slots[j];
			return NULL;
		}
		s = &st->ser[st->slots[j] - 1];
		if (s->hash == h && s->keylen == len && !memcmp(s->key, key, len))
			return s;
	}
}

static struct series *insert(struct rollup *st, const char *key, uint32_t len, uint32_t h,
			     uint32_t ntags, uint64_t numtags, enum ig_metric_kind kind)
{
	struct series *s;
	uint32_t *slot;

	if ((st->nser + 1) * 2 > st->nslots && grow_slots(st) < 0)
		return NULL;
	lookup(st, key, len, h, &slot); /* the free slot, after a rehash too */
	if (st->nser == st->ser_cap) {
		uint32_t cap = st->ser_cap ? st->ser_cap * 2 : 64;
		struct series *ns = realloc(st->ser, cap * sizeof(*ns));

		if (!ns)
			return NULL;
		memset(ns + st->ser_cap, 0, (cap - st->ser_cap) * sizeof(*ns));
		st->ser = ns;
		st->ser_cap = cap;
	}
	s = &st->ser[st->nser];
	s->key = store(st, key, len);
	if (!s->key)
		return NULL;
	s->keylen = len;
	s->hash = h;
	s->ntags = ntags;
	s->numtags = numtags;
	s->kind = kind;
	s->n = 0;
	s->value = 0;
	/* s->sk / s->ds stay from an earlier window (reset, reused) */
	*slot = ++st->nser;
	return s;
}

/* Builds the key of (m's name and kind, and either m's tags or the overflow
 * tag) in st->key. Returns its length, or 0 when out of memory. */
static uint32_t build_key(struct rollup *st, const struct ig_metric *m, bool overflow,
			  uint64_t *numtags)
{
	const char *name = m->name ? m->name : "";
	size_t lens[2 * IG_MAX_TAGS + 1], need = 1, used = 0;
	uint32_t nstr = 0;
	char *k;

	*numtags = 0;
	lens[nstr] = strlen(name) + 1;
	need += lens[nstr++];
	if (overflow) {
		lens[nstr] = sizeof(OVERFLOW_KEY);
		need += lens[nstr++];
		lens[nstr] = sizeof("true");
		need += lens[nstr++];
	} else {
		for (uint32_t i = 0; i < m->ntags; i++) {
			lens[nstr] = strlen(m->tags[i].key) + 1;
			need += lens[nstr++];
			lens[nstr] = strlen(m->tags[i].val) + 1;
			need += lens[nstr++];
		}
	}
	if (need > UINT32_MAX)
		return 0;
	if (need > st->key_cap) {
		size_t cap = need * 2;
		char *nk = realloc(st->key, cap);

		if (!nk)
			return 0;
		st->key = nk;
		st->key_cap = cap;
	}
	k = st->key;
	k[used++] = (char)('0' + m->kind);
	memcpy(k + used, name, lens[0]);
	used += lens[0];
	if (overflow) {
		memcpy(k + used, OVERFLOW_KEY, lens[1]);
		used += lens[1];
		memcpy(k + used, "true", lens[2]);
		used += lens[2];
		return (uint32_t)used;
	}
	for (uint32_t i = 0; i < m->ntags; i++) {
		memcpy(k + used, m->tags[i].key, lens[1 + 2 * i]);
		used += lens[1 + 2 * i];
		memcpy(k + used, m->tags[i].val, lens[2 + 2 * i]);
		used += lens[2 + 2 * i];
		if (m->tags[i].type == IG_TAG_NUM && i < 64)
			*numtags |= 1ULL << i;
	}
	return (uint32_t)used;
}

/* ---- emitting ---- */

static void reset_window(struct rollup *st)
{
	for (uint32_t i = 0; i < st->nser; i++) {
		if (st->ser[i].sk)
			ig_sketch_reset(st->ser[i].sk);
		if (st->ser[i].ds)
			ig_distinct_reset(st->ser[i].ds);
	}
	st->nser = 0;
	if (st->slots)
		memset(st->slots, 0, st->nslots * sizeof(*st->slots));
	ig_strpool_reset(&st->pool);
}

/* Fills st->w with the series' tags and one output (name + suffix). A stage
 * after this one may change st->w, so it is rebuilt for every output. */
static void emit_one(struct rollup *st, const struct series *s, const char *suffix,
		     enum ig_metric_kind kind, double value, uint64_t ts, const struct ig_emit *out)
{
	struct ig_metric *w = st->w;
	const char *p = s->key + 1, *name = p;

	ig_metric_reset(w);
	p += strlen(p) + 1;
	for (uint32_t i = 0; i < s->ntags; i++) {
		const char *k = p, *v = k + strlen(k) + 1;

		p = v + strlen(v) + 1;
		ig_metric_add_tag(w, k, v,
				  i < 64 && (s->numtags >> i & 1) ? IG_TAG_NUM : IG_TAG_STR);
	}
	if (suffix) {
		char buf[512];

		snprintf(buf, sizeof(buf), "%s%s", name, suffix);
		w->name = ig_metric_strdup(w, buf);
	} else {
		w->name = name;
	}
	w->kind = kind;
	w->value = value;
	w->ts_ns = ts;
	out->fn(out->ctx, w);
}

static void emit_series(struct rollup *st, const struct series *s, uint64_t ts,
			const struct ig_emit *out)
{
	switch (s->kind) {
	case IG_M_COUNTER:
		emit_one(st, s, NULL, IG_M_COUNTER, s->value, ts, out);
		break;
	case IG_M_GAUGE:
		emit_one(st, s, NULL, IG_M_GAUGE, s->value, ts, out);
		break;
	case IG_M_SET:
		emit_one(st, s, NULL, IG_M_GAUGE, s->ds ? (double)ig_distinct_count(s->ds) : 0, ts,
			 out);
		break;
	case IG_M_HISTOGRAM:
		if (!s->sk)
			break;
		emit_one(st, s, ".count", IG_M_COUNTER, (double)s->sk->count, ts, out);
		emit_one(st, s, ".sum", IG_M_COUNTER, s->sk->sum, ts, out);
		emit_one(st, s, ".min", IG_M_GAUGE, s->sk->min, ts, out);
		emit_one(st, s, ".max", IG_M_GAUGE, s->sk->max, ts, out);
		for (uint32_t i = 0; i < st->npct; i++)
			emit_one(st, s, st->pct_name[i], IG_M_GAUGE,
				 ig_sketch_quantile(s->sk, st->pct[i] / 100.0), ts, out);
		break;
	}
}

static void emit_all(struct rollup *st, uint64_t ts, const struct ig_emit *out)
{
	for (uint32_t i = 0; i < st->nser; i++)
		if (st->ser[i].n)
			emit_series(st, &st->ser[i], ts, out);
	reset_window(st);
}

/* ---- ops ---- */

static void rollup_free(void *state)
{
	struct rollup *st = state;

	if (!st)
		return;
	for (uint32_t i = 0; i < st->ser_cap; i++) {
		ig_sketch_free(st->ser[i].sk);
		ig_distinct_free(st->ser[i].ds);
	}
	free(st->ser);
	free(st->slots);
	ig_strpool_free(&st->pool);
	free(st->key);
	free(st->w);
	free(st);
}

static int parse_percentiles(struct rollup *st, const struct ig_ynode *n, struct ig_err *err)
{
	static const double def[] = { 50, 90, 99 };
	char pos[300];
	int rc = 0;

	if (!n || (n->type == IG_Y_SCALAR && n->plain_null)) {
		st->npct = 3;
		memcpy(st->pct, def, sizeof(def));
	} else if (n->type != IG_Y_SEQ) {
		ig_err_add(err,
			   "%s: percentiles: expected a list of numbers like [50, 90, 99]; got %s",
			   ig_ynode_pos(n, pos, sizeof(pos)),
			   n->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(n->type));
		return -EINVAL;
	} else if (n->n > MAX_PERCENTILES) {
		ig_err_add(err, "%s: percentiles: %zu given; at most %d",
			   ig_ynode_pos(n, pos, sizeof(pos)), n->n, MAX_PERCENTILES);
		return -EINVAL;
	} else {
		for (size_t i = 0; i < n->n; i++) {
			const struct ig_ynode *it = n->items[i];
			char *end = NULL;
			double p = 0;

			if (it->type == IG_Y_SCALAR && *it->scalar)
				p = strtod(it->scalar, &end);
			if (it->type != IG_Y_SCALAR || !end || *end || !(p > 0 && p <= 100)) {
				ig_err_add(
					err,
					"%s: percentiles[%zu]: expected a number above 0 and at most 100 (like 99.9); got %s%.40s%s",
					ig_ynode_pos(it, pos, sizeof(pos)), i,
					it->type == IG_Y_SCALAR ? "'" : "",
					it->type == IG_Y_SCALAR ? it->scalar :
								  ig_ynode_type_name(it->type),
					it->type == IG_Y_SCALAR ? "'" : "");
				rc = -EINVAL;
				continue;
			}
			st->pct[st->npct++] = p;
		}
	}
	for (uint32_t i = 0; i < st->npct; i++) {
		char *dot;

		snprintf(st->pct_name[i], sizeof(st->pct_name[i]), ".p%g", st->pct[i]);
		dot = strchr(st->pct_name[i] + 1, '.');
		if (dot)
			*dot = '_';
	}
	return rc;
}

static int rollup_init(void **state, const void *conf, struct ig_err *err)
{
	const struct rollup_conf *c = conf;
	struct rollup *st;
	int rc;

	*state = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->window_ns = c->window_ns;
	st->max_series = (uint32_t)c->max_series;
	st->gauge_max = c->gauge == GAUGE_MAX;
	st->rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	st->w = malloc(sizeof(*st->w));
	if (!st->w) {
		rollup_free(st);
		return -ENOMEM;
	}
	rc = parse_percentiles(st, c->percentiles, err);
	if (rc < 0) {
		rollup_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

static void note_overflow(struct rollup *st, const struct ig_metric *m, bool refused)
{
	uint64_t sup = 0;

	if (refused)
		st->refused++;
	else
		st->overflowed++;
	if (ig_ratelimit_ok(&st->rl, &sup))
		ig_warn("rollup: max_series reached; new series are folded into one tagged __overflow__ (raise max_series, or whitelist fewer tags)",
			"name=%s max_series=%u folded_total=%llu dropped_total=%llu suppressed=%llu",
			m->name ? m->name : "", st->max_series, (unsigned long long)st->overflowed,
			(unsigned long long)st->refused, (unsigned long long)sup);
}

static enum ig_stage_result rollup_process(void *state, struct ig_metric *m,
					   const struct ig_emit *out)
{
	struct rollup *st = state;
	uint64_t numtags;
	uint32_t len, h, *slot;
	struct series *s;

	/* A histogram sample that is not a finite number has no place in a
	 * sketch (nor in sum/min/max): drop it, counted by the engine. */
	if (m->kind == IG_M_HISTOGRAM && !isfinite(m->value))
		return IG_STAGE_DROP;
	len = build_key(st, m, false, &numtags);
	if (!len)
		return IG_STAGE_DROP;
	h = hash_key(st->key, len);
	s = lookup(st, st->key, len, h, &slot);
	if (!s && st->nser < st->max_series) {
		s = insert(st, st->key, len, h, m->ntags, numtags, m->kind);
	} else if (!s) {
		len = build_key(st, m, true, &numtags);
		if (!len)
			return IG_STAGE_DROP;
		h = hash_key(st->key, len);
		s = lookup(st, st->key, len, h, &slot);
		if (!s && st->nser < st->max_series + OVERFLOW_SERIES)
			s = insert(st, st->key, len, h, 1, 0, m->kind);
		note_overflow(st, m, !s);
	}
	if (!s)
		return IG_STAGE_DROP;
	switch (s->kind) {
	case IG_M_COUNTER:
		s->value += m->value;
		break;
	case IG_M_GAUGE:
		if (!s->n || !st->gauge_max || m->value > s->value)
			s->value = m->value;
		break;
	case IG_M_HISTOGRAM:
		if (!s->sk && !(s->sk = ig_sketch_new()))
			return IG_STAGE_DROP;
		ig_sketch_add(s->sk, m->value);
		break;
	case IG_M_SET: {
		char buf[40];
		const char *mem = m->set_member;

		if (!mem) {
			snprintf(buf, sizeof(buf), "%.17g", m->value);
			mem = buf;
		}
		if (!s->ds && !(s->ds = ig_distinct_new()))
			return IG_STAGE_DROP;
		ig_distinct_add(s->ds, mem, strlen(mem));
		break;
	}
	}
	s->n++;
	return IG_STAGE_CONSUMED;
}

static uint64_t align_up(uint64_t t, uint64_t window)
{
	return (t / window + 1) * window;
}

static void rollup_tick(void *state, uint64_t now_ns, const struct ig_emit *out)
{
	struct rollup *st = state;
	uint64_t wall = ig_mono_to_wall(now_ns);

	if (!st->window_end) {
		st->window_end = align_up(wall, st->window_ns);
		return;
	}
	if (wall < st->window_end)
		return;
	emit_all(st, st->window_end, out);
	st->window_end = align_up(wall, st->window_ns);
}

static void rollup_flush(void *state, const struct ig_emit *out)
{
	struct rollup *st = state;

	emit_all(st, ig_wall_ns(), out);
}

/* Reload with this pipeline unchanged: take the running stage's series and
 * window (same options: the definitions are identical). */
static void rollup_adopt(void *state, void *old_state)
{
	struct rollup *nw = state, *old = old_state, tmp;

	tmp = *nw;
	*nw = *old;
	*old = tmp;
}

const struct ig_stage_ops ig_stage_rollup = {
	.type = "rollup",
	.summary =
		"Aggregates per series over a window: counters sum, gauges last/max, histograms count/sum/min/max/percentiles, sets distinct count; bounded by max_series.",
	.opts = rollup_opts,
	.conf_size = sizeof(struct rollup_conf),
	.init = rollup_init,
	.process = rollup_process,
	.tick = rollup_tick,
	.flush = rollup_flush,
	.adopt = rollup_adopt,
	.free = rollup_free,
};
