/* rollup stage: counters, gauges, histograms and sets per series and window;
 * window boundaries (a tick before the end emits nothing, the tick at the
 * end emits with ts = the end, later metrics fall in the next window, empty
 * windows emit nothing); the max_series limit (overflow series, then drops);
 * flush; tags and their types; state carried over by adopt(), directly and
 * through a graph reload; option mistakes. Also the two sketches under the
 * stage: quantiles within 1 % on a table of distributions (negative, zero,
 * wide ranges that hit the bin limit) and bounded distinct counting.
 *
 * Tests never call ig_time_init, so wall time = the monotonic time passed
 * to tick(). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "distinct.h"
#include "ig_pipeline.h"
#include "ig_time.h"
#include "sketch.h"
#include "stage_harness.h"

extern const struct ig_stage_ops ig_stage_rollup;

#define SEC IG_NSEC_PER_SEC

static struct capture cap;

static int cap_setup(void **state)
{
	capture_init(&cap);
	return 0;
}

static int cap_teardown(void **state)
{
	capture_clear(&cap);
	return 0;
}

static struct stage *open_ok(const char *yaml)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_rollup, yaml, &err);

	if (!s)
		fail_msg("'%s': %s", yaml, ig_err_str(&err));
	return s;
}

static void feed(struct stage *s, enum ig_metric_kind kind, const char *name, double value,
		 const char *k, const char *v)
{
	struct ig_metric m;

	metric_set(&m, name, k, v, NULL);
	m.kind = kind;
	m.value = value;
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_CONSUMED);
}

static void tick(struct stage *s, uint64_t t)
{
	s->ops->tick(s->state, t, &cap.emit);
}

static double value_of(const char *name, const char *tags)
{
	const struct ig_metric *m = capture_find(&cap, name, tags);

	if (!m)
		fail_msg("no %s{%s} among the %zu emitted", name, tags ? tags : "*", cap.n);
	return m->value;
}

static void test_counters_sum_per_series_in_first_seen_order(void **state)
{
	struct stage *s = open_ok("window: 10s\n");
	char buf[256];

	tick(s, 5 * SEC); /* the first tick starts the clock: window ends at 10 s */
	feed(s, IG_M_COUNTER, "file.open", 1, "ns", "a");
	feed(s, IG_M_COUNTER, "file.exec", 2, "ns", "a");
	feed(s, IG_M_COUNTER, "file.open", 1, "ns", "b");
	feed(s, IG_M_COUNTER, "file.open", 1, "ns", "a");
	feed(s, IG_M_COUNTER, "file.exec", 2, "ns", "a");
	feed(s, IG_M_COUNTER, "file.open", 1, "ns", "a");
	tick(s, 10 * SEC - 1);
	assert_int_equal(cap.n, 0);
	tick(s, 10 * SEC);
	assert_int_equal(cap.n, 3);
	assert_string_equal(cap.m[0]->name, "file.open");
	assert_string_equal(tags_str(cap.m[0], buf, sizeof(buf)), "ns=a");
	assert_true(cap.m[0]->value == 3);
	assert_string_equal(cap.m[1]->name, "file.exec");
	assert_true(cap.m[1]->value == 4);
	assert_string_equal(tags_str(cap.m[2], buf, sizeof(buf)), "ns=b");
	assert_true(cap.m[2]->value == 1);
	for (size_t i = 0; i < cap.n; i++) {
		assert_int_equal(cap.m[i]->kind, IG_M_COUNTER);
		assert_int_equal(cap.m[i]->ts_ns, 10 * SEC);
		assert_null(cap.m[i]->rec);
	}
	stage_close(s);
}

static void test_window_boundaries(void **state)
{
	struct stage *s = open_ok("window: 10s\n");

	tick(s, 3 * SEC);
	feed(s, IG_M_COUNTER, "c", 1, "k", "v");
	tick(s, 10 * SEC); /* exactly the end */
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.m[0]->ts_ns, 10 * SEC);
	/* After the boundary: the next window, ending at 20 s. */
	feed(s, IG_M_COUNTER, "c", 5, "k", "v");
	tick(s, 19 * SEC);
	assert_int_equal(cap.n, 1);
	tick(s, 20 * SEC + 50 * IG_NSEC_PER_MSEC);
	assert_int_equal(cap.n, 2);
	assert_true(cap.m[1]->value == 5);
	assert_int_equal(cap.m[1]->ts_ns, 20 * SEC);
	/* Empty windows emit nothing. */
	tick(s, 30 * SEC);
	tick(s, 40 * SEC);
	assert_int_equal(cap.n, 2);
	/* A long gap: what was collected carries the end of its window, and the
	 * next window ends at the next multiple after the gap. */
	feed(s, IG_M_COUNTER, "c", 7, "k", "v");
	tick(s, 95 * SEC);
	assert_int_equal(cap.n, 3);
	assert_int_equal(cap.m[2]->ts_ns, 50 * SEC);
	feed(s, IG_M_COUNTER, "c", 1, "k", "v");
	tick(s, 99 * SEC);
	assert_int_equal(cap.n, 3);
	tick(s, 100 * SEC);
	assert_int_equal(cap.n, 4);
	assert_int_equal(cap.m[3]->ts_ns, 100 * SEC);
	stage_close(s);
}

static void test_metrics_before_the_first_tick_go_in_the_first_window(void **state)
{
	struct stage *s = open_ok("window: 1s\n");

	feed(s, IG_M_COUNTER, "c", 1, "k", "v");
	tick(s, 2500 * IG_NSEC_PER_MSEC);
	assert_int_equal(cap.n, 0);
	tick(s, 3 * SEC);
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.m[0]->ts_ns, 3 * SEC);
	stage_close(s);
}

static void test_gauges_last_or_max(void **state)
{
	struct stage *last = open_ok("{}\n"), *max = open_ok("gauge: max\n");
	const double vals[] = { 3, 9, -1, 4 };

	for (size_t i = 0; i < 4; i++) {
		feed(last, IG_M_GAUGE, "g", vals[i], "k", "v");
		feed(max, IG_M_GAUGE, "g", vals[i], "k", "v");
	}
	last->ops->flush(last->state, &cap.emit);
	max->ops->flush(max->state, &cap.emit);
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.m[0]->kind, IG_M_GAUGE);
	assert_true(cap.m[0]->value == 4);
	assert_true(cap.m[1]->value == 9);
	capture_clear(&cap);
	/* max with only negative values is the largest of them, not 0 */
	feed(max, IG_M_GAUGE, "g", -5, "k", "v");
	feed(max, IG_M_GAUGE, "g", -2, "k", "v");
	max->ops->flush(max->state, &cap.emit);
	assert_true(cap.m[0]->value == -2);
	stage_close(last);
	stage_close(max);
}

static void test_histogram_outputs_and_percentiles(void **state)
{
	struct stage *s = open_ok("percentiles: [50, 90, 99, 99.9]\n");
	const char *names[] = { "lat.count", "lat.sum", "lat.min", "lat.max",
				"lat.p50",   "lat.p90", "lat.p99", "lat.p99_9" };

	for (int i = 1; i <= 10000; i++)
		feed(s, IG_M_HISTOGRAM, "lat", i, "svc", "api");
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 8);
	for (size_t i = 0; i < 8; i++) {
		assert_string_equal(cap.m[i]->name, names[i]);
		assert_int_equal(cap.m[i]->kind, i < 2 ? IG_M_COUNTER : IG_M_GAUGE);
		assert_string_equal(ig_metric_tag(cap.m[i], "svc"), "api");
	}
	assert_true(value_of("lat.count", NULL) == 10000);
	assert_true(value_of("lat.sum", NULL) == 50005000);
	assert_true(value_of("lat.min", NULL) == 1);
	assert_true(value_of("lat.max", NULL) == 10000);
	/* rank q*(n-1): element 4999 (value 5000), 8999, 9899, 9989 */
	assert_true(fabs(value_of("lat.p50", NULL) - 5000) <= 5000 * IG_SKETCH_ALPHA);
	assert_true(fabs(value_of("lat.p90", NULL) - 9000) <= 9000 * IG_SKETCH_ALPHA);
	assert_true(fabs(value_of("lat.p99", NULL) - 9900) <= 9900 * IG_SKETCH_ALPHA);
	assert_true(fabs(value_of("lat.p99_9", NULL) - 9990) <= 9990 * IG_SKETCH_ALPHA);
	stage_close(s);
}

static void test_empty_percentiles_list_emits_only_the_exact_figures(void **state)
{
	struct stage *s = open_ok("percentiles: []\n");

	feed(s, IG_M_HISTOGRAM, "lat", 2.5, "k", "v");
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 4);
	assert_true(value_of("lat.min", NULL) == 2.5);
	assert_true(value_of("lat.max", NULL) == 2.5);
	stage_close(s);
}

static void test_sets_count_distinct_members(void **state)
{
	struct stage *s = open_ok("{}\n");
	struct ig_metric m;
	char mem[32];

	for (int rep = 0; rep < 3; rep++)
		for (int i = 0; i < 500; i++) {
			snprintf(mem, sizeof(mem), "user-%d", i);
			metric_set(&m, "users", "ns", "a", NULL);
			m.kind = IG_M_SET;
			m.set_member = mem;
			s->ops->process(s->state, &m, &cap.emit);
		}
	for (int i = 0; i < 100000; i++) {
		snprintf(mem, sizeof(mem), "path-%d", i);
		metric_set(&m, "users", "ns", "b", NULL);
		m.kind = IG_M_SET;
		m.set_member = mem;
		s->ops->process(s->state, &m, &cap.emit);
	}
	/* no member: the value is the member */
	for (int i = 0; i < 10; i++)
		feed(s, IG_M_SET, "codes", i % 4, "ns", "a");
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.m[0]->kind, IG_M_GAUGE);
	assert_true(value_of("users", "ns=a") == 500);
	double est = value_of("users", "ns=b");
	print_message("100000 distinct members estimated as %.0f\n", est);
	assert_true(fabs(est - 100000) <= 100000 * 4 * 0.0313); /* 4 standard errors */
	assert_true(value_of("codes", "ns=a") == 4);
	stage_close(s);
}

static void test_non_finite_histogram_samples_are_dropped(void **state)
{
	struct stage *s = open_ok("percentiles: [50]\n");
	struct ig_metric m;

	metric_set(&m, "lat", "k", "v", NULL);
	m.kind = IG_M_HISTOGRAM;
	m.value = NAN;
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_DROP);
	m.value = INFINITY;
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_DROP);
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 0);
	feed(s, IG_M_HISTOGRAM, "lat", 4, "k", "v");
	s->ops->flush(s->state, &cap.emit);
	assert_true(value_of("lat.count", NULL) == 1);
	assert_true(value_of("lat.sum", NULL) == 4);
	stage_close(s);
}

static void test_kinds_are_separate_series(void **state)
{
	struct stage *s = open_ok("{}\n");

	feed(s, IG_M_COUNTER, "x", 1, "k", "v");
	feed(s, IG_M_GAUGE, "x", 7, "k", "v");
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 2);
	assert_int_equal(cap.m[0]->kind, IG_M_COUNTER);
	assert_int_equal(cap.m[1]->kind, IG_M_GAUGE);
	stage_close(s);
}

static void test_tags_keep_order_types_and_bytes(void **state)
{
	struct stage *s = open_ok("{}\n");
	struct ig_metric m;
	char buf[256];

	for (int i = 0; i < 2; i++) {
		ig_metric_reset(&m);
		m.name = "file.open";
		m.value = 1;
		ig_metric_add_tag(&m, "zeta", "é\xff", IG_TAG_STR);
		ig_metric_add_tag(&m, "pid", "42", IG_TAG_NUM);
		ig_metric_add_tag(&m, "alpha", "", IG_TAG_STR);
		s->ops->process(s->state, &m, &cap.emit);
	}
	/* the same tags in another order are another series */
	metric_set(&m, "file.open", "pid", "42", "zeta", "é\xff", "alpha", "", NULL);
	s->ops->process(s->state, &m, &cap.emit);
	/* no tags at all is a series too */
	metric_set(&m, "file.open", NULL);
	s->ops->process(s->state, &m, &cap.emit);
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 3);
	assert_string_equal(tags_str(cap.m[0], buf, sizeof(buf)), "zeta=é\xff,pid=42,alpha=");
	assert_int_equal(cap.m[0]->tags[0].type, IG_TAG_STR);
	assert_int_equal(cap.m[0]->tags[1].type, IG_TAG_NUM);
	assert_true(cap.m[0]->value == 2);
	assert_int_equal(cap.m[2]->ntags, 0);
	stage_close(s);
}

/* A stage after the rollup that rewrites what it is given must not change
 * the next outputs of the same series. */
static void mutate_then_capture(void *ctx, struct ig_metric *m)
{
	m->tags[0].val = "MUTATED";
	ig_metric_add_tag(m, "extra", "1", IG_TAG_STR);
	capture_fn(ctx, m);
}

static void test_each_output_is_rebuilt(void **state)
{
	struct stage *s = open_ok("percentiles: [50]\n");
	struct ig_emit mut = { mutate_then_capture, &cap };

	feed(s, IG_M_HISTOGRAM, "lat", 3, "svc", "api");
	s->ops->flush(s->state, &mut);
	assert_int_equal(cap.n, 5);
	for (size_t i = 0; i < cap.n; i++)
		assert_int_equal(cap.m[i]->ntags, 2);
	stage_close(s);
}

static void test_max_series_folds_new_series_into_overflow(void **state)
{
	struct stage *s = open_ok("max_series: 3\n");
	const char *vals[] = { "a", "b", "c", "d", "e" };

	for (int rep = 0; rep < 2; rep++)
		for (size_t i = 0; i < 5; i++)
			feed(s, IG_M_COUNTER, "c", 1, "k", vals[i]);
	/* an existing series still counts once the table is full */
	feed(s, IG_M_COUNTER, "c", 10, "k", "a");
	/* a new name overflows into its own overflow series */
	feed(s, IG_M_COUNTER, "other", 1, "k", "z");
	tick(s, 1 * SEC);
	tick(s, 10 * SEC);
	assert_int_equal(cap.n, 5);
	assert_true(value_of("c", "k=a") == 12);
	assert_true(value_of("c", "k=b") == 2);
	assert_true(value_of("c", "k=c") == 2);
	assert_true(value_of("c", "__overflow__=true") == 4); /* d and e, twice */
	assert_true(value_of("other", "__overflow__=true") == 1);
	assert_null(capture_find(&cap, "c", "k=d"));
	/* the next window starts empty: d has its own series again */
	capture_clear(&cap);
	feed(s, IG_M_COUNTER, "c", 1, "k", "d");
	tick(s, 20 * SEC);
	assert_true(value_of("c", "k=d") == 1);
	stage_close(s);
}

static void test_overflow_series_are_bounded_too(void **state)
{
	struct stage *s = open_ok("max_series: 1\n");
	struct ig_metric m;
	char name[32];
	int consumed = 0, dropped = 0;

	feed(s, IG_M_COUNTER, "first", 1, "k", "v");
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		metric_set(&m, name, "k", "v", NULL);
		if (s->ops->process(s->state, &m, &cap.emit) == IG_STAGE_CONSUMED)
			consumed++;
		else
			dropped++;
	}
	assert_int_equal(consumed, 256);
	assert_int_equal(dropped, 300 - 256);
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 257);
	stage_close(s);
}

static void test_flush_emits_and_empties(void **state)
{
	struct stage *s = open_ok("{}\n");
	uint64_t before = ig_wall_ns();

	tick(s, 1 * SEC);
	feed(s, IG_M_COUNTER, "c", 2, "k", "v");
	s->ops->flush(s->state, &cap.emit);
	assert_int_equal(cap.n, 1);
	assert_true(cap.m[0]->ts_ns >= before); /* a partial window: stamped now */
	s->ops->flush(s->state, &cap.emit);
	tick(s, 10 * SEC);
	assert_int_equal(cap.n, 1);
	stage_close(s);
}

static void test_adopt_moves_the_open_window(void **state)
{
	struct stage *old = open_ok("window: 10s\n"), *nw = open_ok("window: 10s\n");

	tick(old, 1 * SEC);
	feed(old, IG_M_COUNTER, "c", 5, "k", "v");
	old->ops->adopt(nw->state, old->state);
	old->ops->flush(old->state, &cap.emit);
	assert_int_equal(cap.n, 0); /* nothing left behind */
	feed(nw, IG_M_COUNTER, "c", 1, "k", "v");
	tick(nw, 9 * SEC);
	assert_int_equal(cap.n, 0); /* the window (ending at 10 s) came along */
	tick(nw, 10 * SEC);
	assert_int_equal(cap.n, 1);
	assert_true(cap.m[0]->value == 6);
	stage_close(old);
	stage_close(nw);
}

/* Through the engine: pipeline `same` is unchanged by the reload and keeps
 * its window; `changed` (another add_tags value) flushes to the old graph's
 * backend. Nothing is lost or counted twice. */
static void test_reload_carries_unchanged_pipelines_over(void **state)
{
	char dir[] = "/tmp/ig_test_stage_rollup.XXXXXX", yaml[2048], path[300];
	struct ig_record *r = malloc(sizeof(*r));
	struct ig_conf *c1 = NULL, *c2 = NULL;
	struct ig_graph *g1 = NULL, *g2 = NULL;
	struct ig_err err;
	double same_total = 0, changed_total = 0;
	int same_lines_after_reload = 0;
	char line[2048];
	FILE *f;

	assert_non_null(r);
	assert_non_null(mkdtemp(dir));
	for (int v = 1; v <= 2; v++) {
		snprintf(
			yaml, sizeof(yaml),
			"probes:\n"
			"  files: {pipelines: [same, changed]}\n"
			"pipelines:\n"
			"  same:\n"
			"    stages: [{type: whitelist, allow: [pod]}, {type: rollup, window: 1h}]\n"
			"    backends: [out]\n"
			"  changed:\n"
			"    stages:\n"
			"      - {type: whitelist, allow: [pod]}\n"
			"      - {type: rollup, window: 1h}\n"
			"      - {type: add_tags, tags: {v: '%d'}}\n"
			"    backends: [out]\n"
			"backends:\n"
			"  out: {type: console, format: json, output: %s/out.jsonl}\n",
			v, dir);
		ig_err_init(&err);
		assert_int_equal(ig_conf_load_string(v == 1 ? "a.yaml" : "b.yaml", yaml,
						     strlen(yaml), v == 1 ? &c1 : &c2, &err),
				 0);
	}
	if (ig_graph_build(c1, &g1, &err) < 0)
		fail_msg("%s", ig_err_str(&err));
	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->id.pod_name = "web-1";
	for (int i = 0; i < 7; i++)
		ig_graph_process(g1, r);
	/* the reload */
	if (ig_graph_build(c2, &g2, &err) < 0)
		fail_msg("%s", ig_err_str(&err));
	assert_int_equal(ig_graph_adopt(g2, g1), 1);
	ig_graph_free(g1);
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line), *v, *tags, *tv;

		assert_non_null(o);
		json_object_object_get_ex(o, "value", &v);
		json_object_object_get_ex(o, "tags", &tags);
		if (json_object_object_get_ex(tags, "v", &tv)) {
			assert_string_equal(json_object_get_string(tv), "1");
			changed_total += json_object_get_double(v);
		} else {
			same_total += json_object_get_double(v);
		}
		json_object_put(o);
	}
	fclose(f);
	assert_true(changed_total == 7); /* flushed by the old graph */
	assert_true(same_total == 0); /* carried over, not flushed */
	for (int i = 0; i < 3; i++)
		ig_graph_process(g2, r);
	ig_graph_free(g2); /* flushes the new graph */
	f = fopen(path, "r");
	same_total = changed_total = 0;
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line), *v, *tags, *tv;

		json_object_object_get_ex(o, "value", &v);
		json_object_object_get_ex(o, "tags", &tags);
		if (json_object_object_get_ex(tags, "v", &tv))
			changed_total += json_object_get_double(v);
		else {
			same_total += json_object_get_double(v);
			same_lines_after_reload++;
		}
		json_object_put(o);
	}
	fclose(f);
	assert_true(same_total == 10); /* 7 before + 3 after, in one series */
	assert_int_equal(same_lines_after_reload, 1);
	assert_true(changed_total == 10); /* 7 flushed + 3 in the new graph */
	ig_conf_free(c1);
	ig_conf_free(c2);
	unlink(path);
	rmdir(dir);
	free(r);
}

static void test_option_mistakes(void **state)
{
	static const struct {
		const char *yaml, *want;
	} errs[] = {
		{ "percentiles: [50, 0, 101, x, [1]]\n",
		  "stage.yaml:1:19: percentiles[1]: expected a number above 0 and at most 100 (like 99.9); got '0'\n"
		  "stage.yaml:1:22: percentiles[2]: expected a number above 0 and at most 100 (like 99.9); got '101'\n"
		  "stage.yaml:1:27: percentiles[3]: expected a number above 0 and at most 100 (like 99.9); got 'x'\n"
		  "stage.yaml:1:30: percentiles[4]: expected a number above 0 and at most 100 (like 99.9); got a sequence\n" },
		{ "percentiles: 99\n",
		  "stage.yaml:1:14: percentiles: expected a list of numbers like [50, 90, 99]; got a scalar\n" },
		{ "percentiles: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n",
		  "percentiles: 17 given; at most 16\n" },
		{ "window: 1ms\n", "stage.window:" },
		{ "max_series: 0\n", "stage.max_series:" },
		{ "gauge: avg\n", "stage.gauge: expected one of last, max; got 'avg'" },
		{ "windw: 10s\n", "did you mean 'window'" },
	};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_rollup, errs[i].yaml, &err);

		if (s)
			fail_msg("'%s' was accepted", errs[i].yaml);
		if (!strstr(ig_err_str(&err), errs[i].want))
			fail_msg("'%s': got\n%s\nwant\n%s", errs[i].yaml, ig_err_str(&err),
				 errs[i].want);
	}
}

/* ---- the sketches ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static uint64_t rng = 88172645463325252ULL;

static double uniform01(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

enum dist { D_UNIFORM, D_EXP, D_LOGNORMAL_WIDE, D_MIXED_SIGN, D_CONSTANT, D_WITH_ZEROS, D_TINY };

static double sample(enum dist d, int i)
{
	switch (d) {
	case D_UNIFORM:
		return 1 + 999 * uniform01();
	case D_EXP:
		return -log(1 - uniform01()) * 0.005;
	case D_LOGNORMAL_WIDE:
		return exp(20 * (uniform01() - 0.5)); /* e^-10 .. e^10 */
	case D_MIXED_SIGN:
		return (uniform01() - 0.3) * 1e6;
	case D_CONSTANT:
		return 42.5;
	case D_WITH_ZEROS:
		return i % 3 ? 0 : 1 + uniform01();
	case D_TINY:
		return 1e-12 * (1 + uniform01()); /* below the indexable range: zero bucket */
	}
	return 0;
}

static void test_sketch_quantiles_within_relative_error(void **state)
{
	static const double qs[] = { 0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1 };
	enum { N = 20000 };
	static double v[N];

	for (int d = D_UNIFORM; d <= D_TINY; d++) {
		struct ig_sketch *sk = ig_sketch_new();

		assert_non_null(sk);
		for (int i = 0; i < N; i++) {
			v[i] = sample((enum dist)d, i);
			assert_int_equal(ig_sketch_add(sk, v[i]), 0);
		}
		qsort(v, N, sizeof(v[0]), cmp_double);
		assert_int_equal(sk->count, N);
		assert_true(sk->min == v[0] && sk->max == v[N - 1]);
		for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
			double want = v[(size_t)floor(qs[k] * (N - 1))];
			double got = ig_sketch_quantile(sk, qs[k]);
			double tol = fabs(want) * IG_SKETCH_ALPHA * 1.000001;

			if (fabs(want) < IG_SKETCH_MIN_VALUE)
				tol = IG_SKETCH_MIN_VALUE;
			if (fabs(got - want) > tol)
				fail_msg("distribution %d q=%g: got %.9g, want %.9g (+-%g)", d,
					 qs[k], got, want, tol);
		}
		ig_sketch_reset(sk);
		assert_true(ig_sketch_quantile(sk, 0.5) == 0);
		ig_sketch_free(sk);
	}
}

static void test_sketch_memory_is_bounded_on_huge_ranges(void **state)
{
	struct ig_sketch *sk = ig_sketch_new();

	/* 1e-9 .. 1e15: far more than 1024 buckets of 1 % */
	for (int i = 0; i < 100000; i++)
		ig_sketch_add(sk, pow(10, -9 + 24 * uniform01()));
	assert_int_equal(ig_sketch_add(sk, INFINITY), -EINVAL);
	assert_int_equal(ig_sketch_add(sk, -INFINITY), -EINVAL);
	assert_int_equal(ig_sketch_add(sk, NAN), -EINVAL);
	assert_int_equal(sk->count, 100000);
	assert_true(sk->pos.n <= IG_SKETCH_MAX_BINS);
	assert_true(sk->pos.cap <= IG_SKETCH_MAX_BINS);
	/* the high quantiles keep their accuracy (the lowest buckets merged) */
	double p99 = ig_sketch_quantile(sk, 0.99);
	assert_true(p99 > 1e14 * 0.5 && p99 < 1e15 * 1.01);
	/* values arriving in descending order hit the other side of the store */
	ig_sketch_reset(sk);
	for (int e = 15; e >= -9; e--)
		ig_sketch_add(sk, pow(10, e));
	assert_true(sk->pos.n <= IG_SKETCH_MAX_BINS);
	assert_true(fabs(ig_sketch_quantile(sk, 1) - 1e15) < 1e15 * 0.01);
	ig_sketch_free(sk);
}

/* Exact below k; above, the relative standard error is 1/sqrt(k - 2) = 3.1 %:
 * each estimate within 4 of them, and their root mean square within 5 %. */
static void test_distinct_is_exact_below_k_and_close_above(void **state)
{
	static const int sizes[] = { 0,	   1,	 2,	1000,  1023,   1024,   1025,
				     2000, 5000, 20000, 50000, 100000, 300000, 1000000 };
	const char *prefixes[] = { "m", "path-", "/var/lib/kubelet/pods/" };
	double se = 1 / sqrt(IG_DISTINCT_K - 2), sq = 0;
	int nest = 0;
	char buf[64];

	for (size_t p = 0; p < 3; p++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			struct ig_distinct *d = ig_distinct_new();
			double got, rel;

			for (int rep = 0; rep < 2; rep++)
				for (int i = 0; i < sizes[s]; i++)
					ig_distinct_add(d, buf,
							(size_t)snprintf(buf, sizeof(buf), "%s%d",
									 prefixes[p], i));
			got = (double)ig_distinct_count(d);
			assert_true(d->cap <= IG_DISTINCT_K);
			ig_distinct_free(d);
			if (sizes[s] < IG_DISTINCT_K) {
				assert_true(got == sizes[s]);
				continue;
			}
			rel = (got - sizes[s]) / sizes[s];
			if (fabs(rel) > 4 * se)
				fail_msg("%d distinct '%s...' estimated as %.0f", sizes[s],
					 prefixes[p], got);
			sq += rel * rel;
			nest++;
		}
	}
	print_message("distinct: rms relative error %.2f %% over %d estimates\n",
		      100 * sqrt(sq / nest), nest);
	assert_true(sqrt(sq / nest) < 0.05);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, cap_setup, cap_teardown)
		T(test_counters_sum_per_series_in_first_seen_order),
		T(test_window_boundaries),
		T(test_metrics_before_the_first_tick_go_in_the_first_window),
		T(test_gauges_last_or_max),
		T(test_histogram_outputs_and_percentiles),
		T(test_empty_percentiles_list_emits_only_the_exact_figures),
		T(test_sets_count_distinct_members),
		T(test_non_finite_histogram_samples_are_dropped),
		T(test_kinds_are_separate_series),
		T(test_tags_keep_order_types_and_bytes),
		T(test_each_output_is_rebuilt),
		T(test_max_series_folds_new_series_into_overflow),
		T(test_overflow_series_are_bounded_too),
		T(test_flush_emits_and_empties),
		T(test_adopt_moves_the_open_window),
		T(test_reload_carries_unchanged_pipelines_over),
		T(test_option_mistakes),
		T(test_sketch_quantiles_within_relative_error),
		T(test_sketch_memory_is_bounded_on_huge_ranges),
		T(test_distinct_is_exact_below_k_and_close_above),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
