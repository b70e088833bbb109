/* filter stage: a table of conditions (every operator, absent tags,
 * non-numeric values under numeric operators, all/any groups, nesting,
 * __name__ and __value__, UTF-8, empty tags) for drop_if and keep_if; the
 * configuration mistakes with their positions; and the engine's per-stage
 * in/out/dropped counters for a whitelist -> filter -> rollup pipeline. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ig_pipeline.h"
#include "stage_harness.h"

extern const struct ig_stage_ops ig_stage_filter;

/* The metric every case sees (unless `tags` says otherwise). */
#define STD_TAGS                                                                                \
	{                                                                                       \
		"namespace", "kube-system", "pod", "coredns-5d78", "ret", "-2", "comm", "café", \
			"size", "4096", "empty", "", NULL                                       \
	}

struct f_case {
	const char *cond; /* the YAML after `drop_if: ` */
	bool holds; /* expected truth of the condition */
	const char *tags[16];
};

static const struct f_case cases[] = {
	{ "{key: namespace, op: eq, value: kube-system}", true, STD_TAGS },
	{ "{key: namespace, value: kube-system}", true, STD_TAGS }, /* op defaults to eq */
	{ "{key: namespace, op: eq, value: kube}", false, STD_TAGS },
	{ "{key: namespace, op: ne, value: prod}", true, STD_TAGS },
	{ "{key: namespace, op: ne, value: kube-system}", false, STD_TAGS },
	{ "{key: nope, op: ne, value: x}", true, STD_TAGS }, /* ne = not eq */
	{ "{key: nope, op: eq, value: x}", false, STD_TAGS },
	{ "{key: pod, op: prefix, value: coredns-}", true, STD_TAGS },
	{ "{key: pod, op: prefix, value: coredns-5d78-extra}", false, STD_TAGS },
	{ "{key: pod, op: suffix, value: '5d78'}", true, STD_TAGS },
	{ "{key: pod, op: suffix, value: xcoredns-5d78}", false, STD_TAGS },
	{ "{key: pod, op: contains, value: dns}", true, STD_TAGS },
	{ "{key: pod, op: contains, value: DNS}", false, STD_TAGS },
	{ "{key: pod, op: regex, value: '^core[a-z]+-[0-9a-f]+$'}", true, STD_TAGS },
	{ "{key: pod, op: regex, value: '^dns'}", false, STD_TAGS },
	{ "{key: nope, op: regex, value: '.*'}", false, STD_TAGS },
	{ "{key: comm, op: eq, value: café}", true, STD_TAGS },
	{ "{key: comm, op: regex, value: '^caf.$'}", true, STD_TAGS }, /* é is one character */
	{ "{key: ret, op: lt, value: 0}", true, STD_TAGS },
	{ "{key: ret, op: le, value: -2}", true, STD_TAGS },
	{ "{key: ret, op: gt, value: -2}", false, STD_TAGS },
	{ "{key: ret, op: ge, value: -2.0}", true, STD_TAGS },
	{ "{key: size, op: gt, value: 4e3}", true, STD_TAGS },
	{ "{key: pod, op: lt, value: 1e300}", false, STD_TAGS }, /* not a number: false */
	{ "{key: empty, op: ge, value: 0}", false, STD_TAGS }, /* "" is not a number */
	{ "{key: nope, op: lt, value: 1}", false, STD_TAGS },
	{ "{key: empty, op: eq, value: ''}", true, STD_TAGS },
	{ "{key: empty, op: exists}", true, STD_TAGS },
	{ "{key: nope, op: exists}", false, STD_TAGS },
	{ "{key: nope, op: absent}", true, STD_TAGS },
	{ "{key: pod, op: absent}", false, STD_TAGS },
	{ "{key: __name__, op: prefix, value: file.}", true, STD_TAGS },
	{ "{key: __value__, op: gt, value: 2.5}", true, STD_TAGS }, /* the value is 3 */
	{ "{key: __value__, op: eq, value: '3'}", true, STD_TAGS },
	{ "[{key: namespace, value: kube-system}, {key: ret, op: lt, value: 0}]", true, STD_TAGS },
	{ "[{key: namespace, value: kube-system}, {key: ret, op: gt, value: 0}]", false, STD_TAGS },
	{ "{all: [{key: pod, op: exists}, {key: comm, value: café}]}", true, STD_TAGS },
	{ "{any: [{key: namespace, value: prod}, {key: ret, op: lt, value: 0}]}", true, STD_TAGS },
	{ "{any: [{key: namespace, value: prod}, {key: ret, op: gt, value: 0}]}", false, STD_TAGS },
	{ "{any: [{key: a, value: x}, {all: [{key: pod, op: exists}, {key: ret, value: '-2'}]}]}",
	  true, STD_TAGS },
	/* a metric without tags */
	{ "{key: namespace, value: kube-system}", false, { NULL } },
	{ "{key: namespace, op: absent}", true, { NULL } },
	{ "{any: [{key: x, op: exists}, {key: __name__, value: file.open}]}", true, { NULL } },
};

static void check_case(const struct f_case *c, bool keep)
{
	char yaml[512];
	struct ig_metric m;
	struct ig_err err;
	struct stage *s;
	enum ig_stage_result want, got;

	snprintf(yaml, sizeof(yaml), "%s: %s\n", keep ? "keep_if" : "drop_if", c->cond);
	s = stage_open(&ig_stage_filter, yaml, &err);
	if (!s)
		fail_msg("'%s': %s", yaml, ig_err_str(&err));
	ig_metric_reset(&m);
	m.name = "file.open";
	m.value = 3;
	for (size_t k = 0; c->tags[k]; k += 2)
		ig_metric_add_tag(&m, c->tags[k], c->tags[k + 1], IG_TAG_STR);
	want = c->holds != keep ? IG_STAGE_DROP : IG_STAGE_PASS;
	got = s->ops->process(s->state, &m, NULL);
	if (got != want)
		fail_msg("'%s' on %u tags: got %s, want %s", yaml, m.ntags,
			 got == IG_STAGE_DROP ? "drop" : "pass",
			 want == IG_STAGE_DROP ? "drop" : "pass");
	stage_close(s);
}

static void test_table_of_conditions_with_drop_if(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], false);
}

static void test_keep_if_is_the_inverse(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], true);
}

struct err_case {
	const char *yaml;
	const char *want;
};

static const struct err_case errs[] = {
	{ "{}\n", "give a condition as 'drop_if: {key: namespace, op: eq, value: kube-system}'" },
	{ "drop_if: {key: a, value: b}\nkeep_if: {key: a, value: b}\n",
	  "stage.yaml:2:10: keep_if: 'drop_if' and 'keep_if' are both given; keep one\n" },
	{ "drop_if: {key: a, op: equals, value: b}\n",
	  "stage.yaml:1:23: drop_if.op: expected one of eq, ne, prefix, suffix, contains, regex, lt, le, gt, ge, exists, absent; got 'equals'\n" },
	{ "drop_if: {op: eq, value: b}\n", "drop_if.key: " },
	{ "drop_if: {key: a}\n",
	  "stage.yaml:1:10: drop_if.value: missing; op eq compares the tag with a value\n" },
	{ "drop_if: {key: a, op: exists, value: x}\n",
	  "stage.yaml:1:38: drop_if.value: op exists takes no value; remove it\n" },
	{ "drop_if: {key: a, op: lt, value: ten}\n",
	  "stage.yaml:1:34: drop_if.value: op lt needs a number; got 'ten'\n" },
	{ "drop_if: {key: a, op: regex, value: '(x'}\n",
	  "stage.yaml:1:37: drop_if.value: missing closing parenthesis at offset 2\n" },
	{ "drop_if: {key: a, value: [x]}\n",
	  "stage.yaml:1:26: drop_if.value: expected a string or a number; got a sequence\n" },
	{ "drop_if: {key: '', value: x}\n", "drop_if.key: is empty; name a tag" },
	{ "drop_if: []\n",
	  "stage.yaml:1:10: drop_if: expected a non-empty list of conditions like [{key: namespace, op: eq, value: kube-system}]; got an empty list\n" },
	{ "drop_if: {any: {key: a, value: b}}\n",
	  "stage.yaml:1:16: drop_if.any: expected a non-empty list of conditions" },
	{ "drop_if: {any: [{key: a, value: b}], key: c}\n",
	  "stage.yaml:1:10: drop_if: 'any'/'all' must be the only key of its mapping" },
	{ "drop_if: [{key: a, value: b}, x, {key: c, op: gt, value: z}]\n",
	  "stage.yaml:1:31: drop_if[1]: expected a condition like {key: namespace, op: eq, value: kube-system}, a list of them, or {any: [...]}; got a scalar\n"
	  "stage.yaml:1:58: drop_if[2].value: op gt needs a number; got 'z'\n" },
	{ "keep_if: {any: [{all: [{key: a, vale: b}]}]}\n",
	  "keep_if.any[0].all[0].vale: unknown key (did you mean 'value'?)" },
	{ "drop_if: [[[[[[[[[[[[[[[[[[{key: a, value: b}]]]]]]]]]]]]]]]]]]\n",
	  "conditions nest deeper than 16 levels; flatten them" },
};

static void test_configuration_mistakes_are_positioned(void **state)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_filter, errs[i].yaml, &err);

		if (s)
			fail_msg("'%s' was accepted", errs[i].yaml);
		if (!strstr(ig_err_str(&err), errs[i].want))
			fail_msg("'%s': got\n%s\nwant\n%s", errs[i].yaml, ig_err_str(&err),
				 errs[i].want);
	}
}

/* ---- through the engine: the per-stage counters ---- */

static struct ig_record *rec(struct ig_record *r, const char *ns, const char *path)
{
	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->node = "node-1";
	r->pid = 42;
	r->comm = "cat";
	r->id.scope = "pod";
	r->id.namespace_ = ns;
	r->id.pod_name = "web-1";
	ig_record_add_str(r, "path", path, strlen(path));
	return r;
}

static json_object *stage_stats(json_object *graph, int i)
{
	json_object *pls, *stages;

	assert_true(json_object_object_get_ex(graph, "pipelines", &pls));
	assert_true(
		json_object_object_get_ex(json_object_array_get_idx(pls, 0), "stages", &stages));
	return json_object_array_get_idx(stages, (size_t)i);
}

static long long jget(json_object *o, const char *k)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return (long long)json_object_get_int64(v);
}

static void test_engine_counts_in_out_and_dropped_per_stage(void **state)
{
	char dir[] = "/tmp/ig_test_stage_filter.XXXXXX", yaml[1024], path[300], line[1024];
	struct ig_record *r = malloc(sizeof(*r));
	struct ig_graph_stats gs;
	struct ig_conf *c = NULL;
	struct ig_graph *g = NULL;
	struct ig_err err;
	json_object *d;
	FILE *f;
	int lines = 0;

	assert_non_null(r);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	snprintf(yaml, sizeof(yaml),
		 "probes:\n"
		 "  files: {pipelines: [p]}\n"
		 "pipelines:\n"
		 "  p:\n"
		 "    stages:\n"
		 "      - {type: whitelist, allow: [namespace, path]}\n"
		 "      - {type: filter, drop_if: {key: namespace, value: kube-system}}\n"
		 "      - {type: regex, rules: [{key: path, pattern: '[0-9]+', replace_with: N}]}\n"
		 "      - {type: rollup, window: 10s}\n"
		 "    backends: [out]\n"
		 "backends:\n"
		 "  out: {type: console, format: json, output: %s}\n",
		 path);
	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("test.yaml", yaml, strlen(yaml), &c, &err), 0);
	if (ig_graph_build(c, &g, &err) < 0)
		fail_msg("%s", ig_err_str(&err));
	/* 6 records: 2 from kube-system (dropped), 4 from prod on 2 paths after
	 * the rewrite (/p/N twice, /q once... see below). */
	ig_graph_process(g, rec(r, "kube-system", "/p/1"));
	ig_graph_process(g, rec(r, "kube-system", "/p/2"));
	ig_graph_process(g, rec(r, "prod", "/p/1"));
	ig_graph_process(g, rec(r, "prod", "/p/22"));
	ig_graph_process(g, rec(r, "prod", "/p/333"));
	ig_graph_process(g, rec(r, "prod", "/q"));
	d = ig_graph_describe(g);
	assert_int_equal(jget(stage_stats(d, 0), "in"), 6);
	assert_int_equal(jget(stage_stats(d, 0), "out"), 6);
	assert_int_equal(jget(stage_stats(d, 1), "in"), 6);
	assert_int_equal(jget(stage_stats(d, 1), "out"), 4);
	assert_int_equal(jget(stage_stats(d, 1), "dropped"), 2);
	assert_int_equal(jget(stage_stats(d, 2), "out"), 4);
	assert_int_equal(jget(stage_stats(d, 3), "in"), 4);
	assert_int_equal(jget(stage_stats(d, 3), "out"), 0); /* held until the window ends */
	json_object_put(d);
	ig_graph_flush(g);
	d = ig_graph_describe(g);
	assert_int_equal(jget(stage_stats(d, 3), "out"), 2); /* path=/p/N (3) and path=/q (1) */
	json_object_put(d);
	ig_graph_stats(g, &gs);
	assert_int_equal(gs.records_in, 6);
	assert_int_equal(gs.dropped, 2);
	assert_int_equal(gs.metrics_out, 2);
	ig_graph_free(g);
	ig_conf_free(c);

	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line), *v, *tags, *p;

		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "value", &v));
		assert_true(json_object_object_get_ex(o, "tags", &tags));
		assert_true(json_object_object_get_ex(tags, "path", &p));
		if (!strcmp(json_object_get_string(p), "/p/N"))
			assert_int_equal(json_object_get_int(v), 3);
		else
			assert_int_equal(json_object_get_int(v), 1);
		lines++;
		json_object_put(o);
	}
	fclose(f);
	assert_int_equal(lines, 2);
	unlink(path);
	rmdir(dir);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_of_conditions_with_drop_if),
		cmocka_unit_test(test_keep_if_is_the_inverse),
		cmocka_unit_test(test_configuration_mistakes_are_positioned),
		cmocka_unit_test(test_engine_counts_in_out_and_dropped_per_stage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
