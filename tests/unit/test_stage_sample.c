/* sample stage: a numeric tag becomes a metric of its own beside the
 * original (dns.query's latency_ns -> the dns.latency histogram), with the
 * tags kept, the scale, the kinds, and the metrics it leaves alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "stage_harness.h"

extern const struct ig_stage_ops ig_stage_sample;

static void test_latency_becomes_a_histogram_beside_the_counter(void **state)
{
	struct ig_err err;
	struct capture cap;
	struct ig_metric m;
	char buf[512];
	(void)state;

	struct stage *s = stage_open(&ig_stage_sample,
				     "from: dns.query\nfield: latency_ns\nname: dns.latency\n"
				     "divide_by: 1000000\nkeep_tags: [pod, rcode]\n",
				     &err);
	assert_non_null(s);
	capture_init(&cap);
	metric_set(&m, "dns.query", "pod", "web-1", "qtype", "A", "rcode", "NOERROR", "latency_ns",
		   "2500000", NULL);
	m.ts_ns = 1234;
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_PASS);
	assert_int_equal(cap.n, 1);
	const struct ig_metric *h = cap.m[0];
	assert_string_equal(h->name, "dns.latency");
	assert_int_equal(h->kind, IG_M_HISTOGRAM);
	assert_true(h->value > 2.4999 && h->value < 2.5001);
	assert_int_equal(h->ts_ns, 1234);
	assert_string_equal(tags_str(h, buf, sizeof(buf)), "pod=web-1,rcode=NOERROR");
	/* the original is untouched */
	assert_string_equal(m.name, "dns.query");
	assert_int_equal(m.kind, IG_M_COUNTER);
	assert_string_equal(tags_str(&m, buf, sizeof(buf)),
			    "pod=web-1,qtype=A,rcode=NOERROR,latency_ns=2500000");
	capture_clear(&cap);
	stage_close(s);
}

static void test_other_metrics_and_bad_values_pass_untouched(void **state)
{
	struct ig_err err;
	struct capture cap;
	struct ig_metric m;
	char buf[512];
	(void)state;

	struct stage *s = stage_open(&ig_stage_sample,
				     "from: dns.query\nfield: latency_ns\nname: dns.latency\n"
				     "kind: gauge\n",
				     &err);
	assert_non_null(s);
	capture_init(&cap);
	metric_set(&m, "file.open", "latency_ns", "5", NULL);
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_PASS);
	metric_set(&m, "dns.query", "pod", "x", NULL); /* no field */
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_PASS);
	metric_set(&m, "dns.query", "latency_ns", "12ms", NULL); /* not a number */
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_PASS);
	assert_int_equal(cap.n, 0);
	/* keep_tags: [] keeps all but the field */
	metric_set(&m, "dns.query", "pod", "x", "latency_ns", "7", "server", "10.0.0.1:53", NULL);
	assert_int_equal(s->ops->process(s->state, &m, &cap.emit), IG_STAGE_PASS);
	assert_int_equal(cap.n, 1);
	assert_int_equal(cap.m[0]->kind, IG_M_GAUGE);
	assert_true(cap.m[0]->value == 7.0);
	assert_string_equal(tags_str(cap.m[0], buf, sizeof(buf)), "pod=x,server=10.0.0.1:53");
	capture_clear(&cap);
	stage_close(s);
}

static void test_required_options(void **state)
{
	struct ig_err err;
	(void)state;

	assert_null(stage_open(&ig_stage_sample, "from: dns.query\nname: dns.latency\n", &err));
	assert_non_null(strstr(ig_err_str(&err), "field"));
	assert_null(stage_open(&ig_stage_sample, "from: a\nfield: b\nname: c\nkind: set\n", &err));
	assert_null(
		stage_open(&ig_stage_sample, "from: a\nfield: b\nname: c\ndivide_by: 0\n", &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_latency_becomes_a_histogram_beside_the_counter),
		cmocka_unit_test(test_other_metrics_and_bad_values_pass_untouched),
		cmocka_unit_test(test_required_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
