/* Pipeline engine: graphs built from YAML strings, records routed by probe
 * to pipelines, stages, fan-out to backends, and every configuration mistake
 * reported with its exact position. Backends are console backends writing
 * JSON to temporary files, read back with json-c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ig_pipeline.h"
#include "ig_record.h"
#include "ig_stage.h"

static char tmpdir[64];

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/ig_test_pipeline.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Formats the YAML (with %1$s = tmpdir), loads it as "test.yaml". */
static struct ig_conf *load(struct ig_err *err, const char *fmt, ...)
{
	char yaml[4096];
	struct ig_conf *c = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	ig_err_init(err);
	if (ig_conf_load_string("test.yaml", yaml, strlen(yaml), &c, err) < 0)
		fail_msg("configuration did not load: %s", ig_err_str(err));
	return c;
}

static struct ig_record *record(const char *probe, const char *path)
{
	struct ig_record *r = malloc(sizeof(*r));

	assert_non_null(r);
	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = probe;
	r->node = "node-1";
	r->ts_ns = 1700000000123456789ULL;
	r->pid = 42;
	r->comm = "cat";
	r->id.scope = "pod";
	r->id.namespace_ = "prod";
	r->id.pod_name = "web-1";
	assert_int_equal(ig_record_add_str(r, "path", path, strlen(path)), 0);
	assert_int_equal(ig_record_add_int(r, "ret", 3), 0);
	return r;
}

/* Every line of tmpdir/name parsed as a JSON object; returns the count. */
static int read_json(const char *name, json_object **objs, int max)
{
	char path[256], line[8192];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		json_object *o = json_tokener_parse(line);

		if (!o)
			fail_msg("%s: line is not JSON: %s", name, line);
		if (n < max)
			objs[n++] = o;
		else
			json_object_put(o);
	}
	fclose(f);
	return n;
}

static const char *jstr(json_object *o, const char *tag)
{
	json_object *tags, *v;

	if (!json_object_object_get_ex(o, "tags", &tags) ||
	    !json_object_object_get_ex(tags, tag, &v))
		return NULL;
	return json_object_get_string(v);
}

static void put_all(json_object **objs, int n)
{
	for (int i = 0; i < n; i++)
		json_object_put(objs[i]);
}

static struct ig_graph *build_ok(struct ig_conf *c)
{
	struct ig_graph *g = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_graph_build(c, &g, &err) < 0)
		fail_msg("graph did not build: %s", ig_err_str(&err));
	assert_non_null(g);
	return g;
}

/* Builds (and checks) a configuration that must fail; returns the messages. */
static const char *build_fails(struct ig_conf *c, struct ig_err *err)
{
	struct ig_graph *g = NULL;
	struct ig_err cerr;

	ig_err_init(err);
	assert_int_equal(ig_graph_build(c, &g, err), -EINVAL);
	assert_null(g);
	ig_err_init(&cerr);
	assert_int_equal(ig_graph_check(c, &cerr), -EINVAL);
	assert_string_equal(ig_err_str(&cerr), ig_err_str(err));
	return ig_err_str(err);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("expected \"%s\" in:\n%s", needle, hay);
}

static void test_record_feeds_every_pipeline_its_probe_names(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [a, b]}\n"
				 "pipelines:\n"
				 "  a: {backends: [outa]}\n"
				 "  b: {backends: [outb]}\n"
				 "backends:\n"
				 "  outa: {type: console, format: json, output: %1$s/a.json}\n"
				 "  outb: {type: console, format: json, output: %1$s/b.json}\n",
				 tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r = record("files", "/etc/passwd");
	struct ig_graph_stats st;
	json_object *objs[8];
	int n;

	for (int i = 0; i < 3; i++)
		ig_graph_process(g, r);
	ig_graph_sync(g);
	n = read_json("a.json", objs, 8);
	assert_int_equal(n, 3);
	assert_string_equal(json_object_get_string(json_object_object_get(objs[0], "name")),
			    "file.open");
	assert_string_equal(jstr(objs[0], "path"), "/etc/passwd");
	assert_string_equal(jstr(objs[0], "namespace"), "prod");
	put_all(objs, n);
	n = read_json("b.json", objs, 8);
	assert_int_equal(n, 3);
	put_all(objs, n);
	ig_graph_stats(g, &st);
	assert_int_equal(st.records_in, 3);
	assert_int_equal(st.unrouted, 0);
	assert_int_equal(st.metrics_out, 6);
	assert_int_equal(st.dropped, 0);
	ig_graph_free(g);
	ig_conf_free(c);
	free(r);
}

static void test_pipeline_fans_out_to_every_backend(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [p]}\n"
				 "pipelines:\n"
				 "  p: {backends: [x, y]}\n"
				 "backends:\n"
				 "  x: {type: console, format: json, output: %1$s/x.json}\n"
				 "  y: {type: console, format: json, output: %1$s/y.json}\n",
				 tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r = record("files", "/etc/hosts");
	json_object *objs[4];
	int n;

	ig_graph_process(g, r);
	ig_graph_free(g); /* flushes */
	n = read_json("x.json", objs, 4);
	assert_int_equal(n, 1);
	assert_string_equal(jstr(objs[0], "path"), "/etc/hosts");
	put_all(objs, n);
	n = read_json("y.json", objs, 4);
	assert_int_equal(n, 1);
	assert_string_equal(jstr(objs[0], "path"), "/etc/hosts");
	put_all(objs, n);
	ig_conf_free(c);
	free(r);
}

static void test_add_tags_changes_only_its_pipelines_copy(void **state)
{
	struct ig_err err;
	struct ig_conf *c =
		load(&err,
		     "probes:\n"
		     "  files: {pipelines: [tagged, plain]}\n"
		     "pipelines:\n"
		     "  tagged:\n"
		     "    stages:\n"
		     "      - {type: add_tags, tags: {cluster: prod-eu, process: renamed}}\n"
		     "    backends: [t]\n"
		     "  plain: {stages: [], backends: [p]}\n"
		     "backends:\n"
		     "  t: {type: console, format: json, output: %1$s/t.json}\n"
		     "  p: {type: console, format: json, output: %1$s/p.json}\n",
		     tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r = record("files", "/etc/shadow");
	json_object *objs[4], *tags;
	int n, ntags_plain, ntags_tagged;

	ig_graph_process(g, r);
	ig_graph_sync(g);
	n = read_json("t.json", objs, 4);
	assert_int_equal(n, 1);
	assert_string_equal(jstr(objs[0], "cluster"), "prod-eu");
	/* an existing key gets the new value instead of a second entry */
	assert_string_equal(jstr(objs[0], "process"), "renamed");
	json_object_object_get_ex(objs[0], "tags", &tags);
	ntags_tagged = json_object_object_length(tags);
	put_all(objs, n);
	n = read_json("p.json", objs, 4);
	assert_int_equal(n, 1);
	assert_null(jstr(objs[0], "cluster"));
	assert_string_equal(jstr(objs[0], "process"), "cat");
	json_object_object_get_ex(objs[0], "tags", &tags);
	ntags_plain = json_object_object_length(tags);
	put_all(objs, n);
	assert_int_equal(ntags_tagged, ntags_plain + 1);
	ig_graph_free(g);
	ig_conf_free(c);
	free(r);
}

static void test_records_of_unconfigured_probes_are_counted_unrouted(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [p]}\n"
				 "pipelines:\n"
				 "  p: {backends: [x]}\n"
				 "backends:\n"
				 "  x: {type: console, format: json, output: %1$s/u.json}\n",
				 tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r1 = record("tcp", "/x"), *r2 = record(NULL, "/y"),
			 *r3 = record("files", "/z");
	struct ig_graph_stats st;
	json_object *objs[4];
	int n;

	ig_graph_process(g, r1);
	ig_graph_process(g, r2);
	ig_graph_process(g, r3);
	ig_graph_process(g, NULL);
	ig_graph_sync(g);
	ig_graph_stats(g, &st);
	assert_int_equal(st.records_in, 3);
	assert_int_equal(st.unrouted, 2);
	assert_int_equal(st.metrics_out, 1);
	n = read_json("u.json", objs, 4);
	assert_int_equal(n, 1);
	assert_string_equal(jstr(objs[0], "path"), "/z");
	put_all(objs, n);
	ig_graph_free(g);
	ig_conf_free(c);
	free(r1);
	free(r2);
	free(r3);
}

static void count_backend(void *ctx, const char *name, const char *type,
			  const struct ig_backend_stats *st)
{
	char *out = ctx;
	size_t len = strlen(out);

	snprintf(out + len, 256 - len, "%s/%s:%llu;", name, type, (unsigned long long)st->received);
}

static void test_backend_stats_are_listed_and_unused_backends_not_started(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [p]}\n"
				 "pipelines:\n"
				 "  p: {backends: [x]}\n"
				 "backends:\n"
				 "  x: {type: console, format: text, output: %1$s/x.txt}\n"
				 "  spare: {type: console, output: %1$s/spare.txt}\n",
				 tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r = record("files", "/etc/passwd");
	char out[256] = "", path[256];

	ig_graph_process(g, r);
	ig_graph_process(g, r);
	ig_graph_foreach_backend(g, count_backend, out);
	assert_string_equal(out, "x/console:2;");
	snprintf(path, sizeof(path), "%s/spare.txt", tmpdir);
	assert_int_equal(access(path, F_OK), -1);
	ig_graph_free(g);
	ig_conf_free(c);
	free(r);
}

static void test_check_validates_without_starting_backends(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [p]}\n"
				 "pipelines:\n"
				 "  p: {stages: [{type: add_tags, tags: {a: b}}], backends: [x]}\n"
				 "backends:\n"
				 "  x: {type: console, output: %1$s/never.txt}\n",
				 tmpdir);
	char path[256];

	ig_err_init(&err);
	assert_int_equal(ig_graph_check(c, &err), 0);
	assert_string_equal(ig_err_str(&err), "");
	snprintf(path, sizeof(path), "%s/never.txt", tmpdir);
	assert_int_equal(access(path, F_OK), -1);
	ig_conf_free(c);
}

static void test_default_configuration_builds(void **state)
{
	struct ig_conf *c = NULL;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_conf_load(NULL, &c, &err), 0);
	assert_int_equal(ig_graph_check(c, &err), 0);
	ig_conf_free(c);
}

static void test_unknown_stage_type_suggests_closest(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "probes:\n"
				       "  files: {pipelines: [p]}\n"
				       "pipelines:\n"
				       "  p:\n"
				       "    stages:\n"
				       "      - type: add_tags\n"
				       "        tags: {a: b}\n"
				       "      - type: add_tag\n"
				       "    backends: [x]\n"
				       "backends:\n"
				       "  x: {type: console}\n");

	assert_string_equal(build_fails(c, &err),
			    "test.yaml:8:15: pipelines.p.stages[1].type: unknown stage type "
			    "'add_tag' (did you mean 'add_tags'?)\n");
	ig_conf_free(c);
}

static void test_unknown_stage_type_lists_valid_types(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p:\n"
				       "    stages: [{type: zzzzzzzz}]\n"
				       "    backends: [x]\n"
				       "backends:\n"
				       "  x: {type: console}\n");

	assert_string_equal(
		build_fails(c, &err),
		"test.yaml:3:21: pipelines.p.stages[0].type: unknown stage type "
		"'zzzzzzzz' (valid types: add_tags, whitelist, regex, filter, rollup, sample)\n");
	ig_conf_free(c);
}

static void test_stage_without_type_says_what_to_add(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p:\n"
				       "    stages: [{tags: {a: b}}, add_tags]\n"
				       "    backends: [x]\n"
				       "backends:\n"
				       "  x: {type: console}\n");
	const char *msg = build_fails(c, &err);

	assert_contains(msg, "test.yaml:3:14: pipelines.p.stages[0]: missing 'type'; add 'type: "
			     "<add_tags, whitelist, regex, filter, rollup, sample>'\n");
	assert_contains(
		msg,
		"test.yaml:3:30: pipelines.p.stages[1]: expected a mapping with a "
		"'type:' key (one of add_tags, whitelist, regex, filter, rollup, sample); got a scalar\n");
	ig_conf_free(c);
}

static void test_unknown_backend_type_suggests_closest(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p: {backends: [x]}\n"
				       "backends:\n"
				       "  x:\n"
				       "    type: consol\n");

	assert_string_equal(build_fails(c, &err),
			    "test.yaml:5:11: backends.x.type: unknown backend type 'consol' "
			    "(did you mean 'console'?)\n");
	ig_conf_free(c);
}

static void test_pipeline_without_backends_is_rejected(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p: {stages: []}\n"
				       "  q: {backends: []}\n"
				       "backends:\n"
				       "  out: {type: console}\n");
	const char *msg = build_fails(c, &err);

	assert_string_equal(msg, "test.yaml:2:6: pipelines.p.backends: a pipeline needs at least "
				 "one backend; add 'backends: [<name>]' (defined backends: out)\n"
				 "test.yaml:3:17: pipelines.q.backends: a pipeline needs at least "
				 "one backend; add 'backends: [<name>]' (defined backends: out)\n");
	ig_conf_free(c);
}

static void test_undefined_backend_reference_suggests_closest(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p:\n"
				       "    backends: [console, stasd]\n"
				       "backends:\n"
				       "  console: {type: console}\n"
				       "  statsd: {type: statsd}\n");

	assert_string_equal(build_fails(c, &err),
			    "test.yaml:3:25: pipelines.p.backends[1]: unknown backend 'stasd' "
			    "(did you mean 'statsd'?); define it under 'backends:'\n");
	ig_conf_free(c);
}

static void test_backend_listed_twice_is_rejected(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p: {backends: [x, x]}\n"
				       "backends:\n"
				       "  x: {type: console}\n");

	assert_string_equal(build_fails(c, &err),
			    "test.yaml:2:21: pipelines.p.backends[1]: backend 'x' is listed twice; "
			    "remove one\n");
	ig_conf_free(c);
}

static void test_probe_naming_unknown_pipeline_is_rejected(void **state)
{
	/* Refused by ig_conf_load already (the agent loads the same file), so
	 * no graph is ever built from it. */
	struct ig_err err;
	struct ig_conf *c = NULL;
	const char *y = "probes:\n"
			"  files:\n"
			"    pipelines: [live, lve2]\n"
			"pipelines:\n"
			"  live: {backends: [x]}\n"
			"  live2: {backends: [x]}\n"
			"backends:\n"
			"  x: {type: console}\n";

	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("test.yaml", y, strlen(y), &c, &err), -EINVAL);
	assert_null(c);
	assert_string_equal(ig_err_str(&err),
			    "test.yaml:3:23: probes.files.pipelines[1]: unknown pipeline "
			    "'lve2' (did you mean 'live2'?); define it under 'pipelines:'\n");
}

static void test_unknown_pipeline_key_suggests_closest(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p: {backend: [x]}\n"
				       "backends:\n"
				       "  x: {type: console}\n");
	const char *msg = build_fails(c, &err);

	assert_contains(msg, "test.yaml:2:7: pipelines.p.backend: unknown key (did you mean "
			     "'backends'?)\n");
	ig_conf_free(c);
}

static void test_stage_option_errors_name_the_stage(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p:\n"
				       "    stages:\n"
				       "      - {type: add_tags, tags: [a, b]}\n"
				       "      - {type: add_tags, tags: {team: {x: 1}}}\n"
				       "      - {type: add_tags, tag: {a: b}}\n"
				       "    backends: [x]\n"
				       "backends:\n"
				       "  x: {type: console}\n");
	const char *msg = build_fails(c, &err);

	assert_contains(msg, "test.yaml:4:32: pipelines.p.stages[0].tags: expected a mapping of "
			     "tag: value like {cluster: prod}; got a sequence\n");
	assert_contains(msg, "test.yaml:5:39: pipelines.p.stages[1].tags.team: expected a string "
			     "value; got a mapping\n");
	assert_contains(msg, "test.yaml:6:26: pipelines.p.stages[2].tag: unknown key (did you "
			     "mean 'tags'?)\n");
	ig_conf_free(c);
}

static void test_backend_option_errors_name_the_backend(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "pipelines:\n"
				       "  p: {backends: [x, s]}\n"
				       "backends:\n"
				       "  x: {type: console, format: yaml}\n"
				       "  s: {type: statsd, adress: 'localhost:8125'}\n");
	const char *msg = build_fails(c, &err);

	assert_contains(msg, "test.yaml:4:30: backends.x.format: expected one of text, json; got "
			     "'yaml'\n");
	assert_contains(msg, "test.yaml:5:21: backends.s.adress: unknown key (did you mean "
			     "'address'?)\n");
	ig_conf_free(c);
}

static void test_backend_start_failure_is_positioned_and_builds_nothing(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err, "probes:\n"
				       "  files: {pipelines: [p]}\n"
				       "pipelines:\n"
				       "  p: {backends: [x]}\n"
				       "backends:\n"
				       "  x: {type: console, output: /nonexistent-dir/out.txt}\n");
	struct ig_graph *g = NULL;

	ig_err_init(&err);
	/* check does not open files; build does and reports why it cannot */
	assert_int_equal(ig_graph_check(c, &err), 0);
	assert_int_equal(ig_graph_build(c, &g, &err), -EINVAL);
	assert_null(g);
	assert_contains(ig_err_str(&err),
			"test.yaml:6:6: backends.x.output: cannot open "
			"'/nonexistent-dir/out.txt' for appending: No such file or "
			"directory");
	ig_conf_free(c);
}

static void test_doc_lists_every_stage_and_backend_type(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	ig_graph_doc(f);
	fclose(f);
	for (size_t i = 0; ig_stage_table[i]; i++) {
		char title[128];

		snprintf(title, sizeof(title), "### Stage `%s`", ig_stage_table[i]->type);
		assert_contains(buf, title);
	}
	for (size_t i = 0; ig_backend_table[i]; i++) {
		char title[128];

		snprintf(title, sizeof(title), "### Backend `%s`", ig_backend_table[i]->type);
		assert_contains(buf, title);
	}
	assert_contains(buf, "| `flush_interval` |");
	assert_contains(buf, "| `tags` |");
	free(buf);
}

static void test_describe_lists_routes_pipelines_stages_and_backends(void **state)
{
	struct ig_err err;
	struct ig_conf *c = load(&err,
				 "probes:\n"
				 "  files: {pipelines: [p]}\n"
				 "pipelines:\n"
				 "  p: {stages: [{type: add_tags, tags: {a: b}}], backends: [x]}\n"
				 "backends:\n"
				 "  x: {type: console, output: %1$s/d.txt}\n",
				 tmpdir);
	struct ig_graph *g = build_ok(c);
	struct ig_record *r = record("files", "/etc/passwd");
	struct json_object *o;

	ig_graph_process(g, r);
	ig_graph_process(g, r);
	o = ig_graph_describe(g);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"routes\":{\"files\":[\"p\"]},\"pipelines\":[{\"name\":\"p\","
			    "\"stages\":[{\"type\":\"add_tags\",\"in\":2,\"out\":2,\"dropped\":0}],"
			    "\"backends\":[\"x\"]}],\"backends\":[{\"name\":\"x\",\"type\":"
			    "\"console\"}]}");
	json_object_put(o);
	o = ig_graph_describe(NULL);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"routes\":{},\"pipelines\":[],\"backends\":[]}");
	json_object_put(o);
	ig_graph_free(g);
	ig_conf_free(c);
	free(r);
}

static void test_null_graph_is_harmless(void **state)
{
	struct ig_graph_stats st = { .records_in = 7 };

	ig_graph_free(NULL);
	ig_graph_tick(NULL, 1);
	ig_graph_flush(NULL);
	ig_graph_sync(NULL);
	ig_graph_process(NULL, NULL);
	ig_graph_stats(NULL, &st);
	assert_int_equal(st.records_in, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_feeds_every_pipeline_its_probe_names),
		cmocka_unit_test(test_pipeline_fans_out_to_every_backend),
		cmocka_unit_test(test_add_tags_changes_only_its_pipelines_copy),
		cmocka_unit_test(test_records_of_unconfigured_probes_are_counted_unrouted),
		cmocka_unit_test(test_backend_stats_are_listed_and_unused_backends_not_started),
		cmocka_unit_test(test_check_validates_without_starting_backends),
		cmocka_unit_test(test_default_configuration_builds),
		cmocka_unit_test(test_unknown_stage_type_suggests_closest),
		cmocka_unit_test(test_unknown_stage_type_lists_valid_types),
		cmocka_unit_test(test_stage_without_type_says_what_to_add),
		cmocka_unit_test(test_unknown_backend_type_suggests_closest),
		cmocka_unit_test(test_pipeline_without_backends_is_rejected),
		cmocka_unit_test(test_undefined_backend_reference_suggests_closest),
		cmocka_unit_test(test_backend_listed_twice_is_rejected),
		cmocka_unit_test(test_probe_naming_unknown_pipeline_is_rejected),
		cmocka_unit_test(test_unknown_pipeline_key_suggests_closest),
		cmocka_unit_test(test_stage_option_errors_name_the_stage),
		cmocka_unit_test(test_backend_option_errors_name_the_backend),
		cmocka_unit_test(test_backend_start_failure_is_positioned_and_builds_nothing),
		cmocka_unit_test(test_doc_lists_every_stage_and_backend_type),
		cmocka_unit_test(test_describe_lists_routes_pipelines_stages_and_backends),
		cmocka_unit_test(test_null_graph_is_harmless),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
