/* test_backend_datadog: the Datadog API backend driven directly against an
 * in-process stand-in of the series endpoint (http_stub.h) that checks the
 * DD-API-KEY header, gunzips and parses the body. The HTTPS variant with the
 * real aggregator is tests/integration/test_datadog_api.sh. */
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
#include <zlib.h>

#include "http_stub.h"
#include "ig_backend.h"
#include "ig_config.h"
#include "ig_log.h"
#include "ig_yaml.h"

extern const struct ig_backend_ops ig_backend_datadog;

struct ddsim {
	int script[32];
	json_object *payloads[32];
	int npayloads;
	int bad_key, not_gzip;
};

static json_object *gunzip_json(const unsigned char *d, size_t len)
{
	size_t cap = len * 50 + 4096;
	char *out = malloc(cap);
	z_stream z = { 0 };

	inflateInit2(&z, 15 + 16);
	z.next_in = (Bytef *)d;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap - 1;
	int rc = inflate(&z, Z_FINISH);
	size_t n = cap - 1 - z.avail_out;
	inflateEnd(&z);
	out[n] = '\0';
	json_object *o = rc == Z_STREAM_END ? json_tokener_parse(out) : NULL;
	free(out);
	return o;
}

static void dd_respond(struct stub *s, const struct stub_req *r, int idx, struct stub_answer *a)
{
	struct ddsim *m = s->ctx;
	char v[256];

	if (!r->complete)
		return;
	if (idx < 32 && m->script[idx]) {
		a->status = m->script[idx];
		return;
	}
	if (strcmp(r->path, "/api/v2/series") || strcmp(r->method, "POST")) {
		a->status = 404;
		return;
	}
	if (!stub_header(r, "dd-api-key", v, sizeof(v)) || strcmp(v, "k123")) {
		m->bad_key++;
		a->status = 403;
		snprintf(a->body, sizeof(a->body), "{\"errors\":[\"Forbidden\"]}");
		return;
	}
	json_object *o;
	if (!stub_header(r, "content-encoding", v, sizeof(v)) || strcmp(v, "gzip") ||
	    !(o = gunzip_json(r->body, r->len))) {
		m->not_gzip++;
		a->status = 400;
		return;
	}
	if (m->npayloads < 32)
		m->payloads[m->npayloads++] = o;
	else
		json_object_put(o);
	a->status = 202;
	snprintf(a->body, sizeof(a->body), "{\"errors\":[]}");
}

struct fixture {
	struct stub stub;
	struct ddsim sim;
	char *conf;
	struct ig_ydoc *doc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->stub.respond = dd_respond;
	f->stub.ctx = &f->sim;
	stub_start(&f->stub);
	ig_log_set_level(IG_LOG_ERROR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stub_stop(&f->stub);
	for (int i = 0; i < f->sim.npayloads; i++)
		json_object_put(f->sim.payloads[i]);
	free(f);
	return 0;
}

static int open_backend_spool(struct fixture *f, const char *extra, const char *spool, void **st,
			      struct ig_err *err)
{
	char yaml[2048];
	struct ig_ydoc *doc;

	snprintf(yaml, sizeof(yaml),
		 "b:\n  url: http://127.0.0.1:%d/\n  spool_dir: \"%s\"\n  retry_min: 10ms\n"
		 "  retry_max: 40ms\n  tags: [\"env:test\"]\n%s",
		 f->stub.port, spool, extra);
	assert_int_equal(ig_ydoc_load_string("t.yaml", yaml, strlen(yaml), &doc, err), 0);
	void *conf = calloc(1, ig_backend_datadog.conf_size);
	int rc = ig_cfg_apply(ig_backend_datadog.opts, ig_ymap_get(doc->root, "b"), conf, "b", NULL,
			      err);
	if (!rc)
		rc = ig_backend_datadog.init(st, conf, "b", err);
	f->conf = conf;
	f->doc = doc;
	if (rc) {
		ig_cfg_free(ig_backend_datadog.opts, conf);
		free(conf);
		ig_ydoc_free(doc);
	}
	return rc;
}

static int open_backend(struct fixture *f, const char *extra, void **st, struct ig_err *err)
{
	return open_backend_spool(f, extra, "", st, err);
}

static void close_backend(struct fixture *f, void *st)
{
	ig_backend_datadog.flush(st);
	ig_backend_datadog.free(st);
	ig_cfg_free(ig_backend_datadog.opts, f->conf);
	free(f->conf);
	ig_ydoc_free(f->doc);
}

static void metric(struct ig_metric *m, enum ig_metric_kind kind, double v, const char *pod)
{
	memset(m, 0, offsetof(struct ig_metric, arena));
	m->name = "file.open";
	m->kind = kind;
	m->value = v;
	m->tags[m->ntags++] = (struct ig_tag){ "namespace", "default", IG_TAG_STR };
	m->tags[m->ntags++] = (struct ig_tag){ "pod", pod, IG_TAG_STR };
}

/* The series whose metric name is `name` and whose tags include `tag`. */
static json_object *find_series(json_object *payload, const char *name, const char *tag)
{
	json_object *arr;

	if (!json_object_object_get_ex(payload, "series", &arr))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i), *m, *tags;
		json_object_object_get_ex(s, "metric", &m);
		json_object_object_get_ex(s, "tags", &tags);
		if (strcmp(json_object_get_string(m), name))
			continue;
		for (size_t t = 0; t < json_object_array_length(tags); t++)
			if (!strcmp(json_object_get_string(json_object_array_get_idx(tags, t)),
				    tag))
				return s;
	}
	return NULL;
}

static double point_value(json_object *s, int *type)
{
	json_object *pts, *v, *t;

	json_object_object_get_ex(s, "type", &t);
	*type = json_object_get_int(t);
	json_object_object_get_ex(s, "points", &pts);
	json_object_object_get_ex(json_object_array_get_idx(pts, 0), "value", &v);
	return json_object_get_double(v);
}

static void test_counters_are_summed_per_tag_set_and_sent_gzipped_with_the_key(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	struct ig_metric m;
	void *st;
	int type;

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  api_key: k123\n", &st, &err), 0);
	for (int i = 0; i < 3; i++) {
		metric(&m, IG_M_COUNTER, 1, "web-a");
		ig_backend_datadog.write(st, &m);
	}
	metric(&m, IG_M_COUNTER, 2, "web-b");
	ig_backend_datadog.write(st, &m);
	metric(&m, IG_M_GAUGE, 5, "web-a");
	m.name = "queue.depth";
	ig_backend_datadog.write(st, &m);
	metric(&m, IG_M_GAUGE, 7, "web-a");
	m.name = "queue.depth";
	ig_backend_datadog.write(st, &m);
	close_backend(f, st);

	assert_int_equal(f->sim.bad_key, 0);
	assert_int_equal(f->sim.not_gzip, 0);
	assert_int_equal(f->sim.npayloads, 1);
	json_object *p = f->sim.payloads[0], *s, *iv;
	assert_non_null(s = find_series(p, "ingrain.file.open", "pod:web-a"));
	assert_int_equal(point_value(s, &type), 3);
	assert_int_equal(type, 1);
	assert_true(json_object_object_get_ex(s, "interval", &iv));
	assert_int_equal(json_object_get_int(iv), 10);
	assert_non_null(find_series(p, "ingrain.file.open", "env:test"));
	assert_non_null(s = find_series(p, "ingrain.file.open", "pod:web-b"));
	assert_int_equal(point_value(s, &type), 2);
	assert_non_null(s = find_series(p, "ingrain.queue.depth", "pod:web-a"));
	assert_int_equal(point_value(s, &type), 7);
	assert_int_equal(type, 3);
}

/* Acked means durable: what sync() journaled before a crash is aggregated
 * again into the interval's payload at the next start; what was written
 * after the last sync (never acked) is not. */
static void test_journaled_interval_is_delivered_after_a_crash(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	struct ig_metric m;
	void *st;
	int type;
	char tmpl[] = "/tmp/ig-dd-journal-XXXXXX", cmd[128];
	char *dir = mkdtemp(tmpl);

	ig_err_init(&err);
	assert_non_null(dir);
	assert_int_equal(
		open_backend_spool(f, "  api_key: k123\n  flush_interval: 1h\n", dir, &st, &err),
		0);
	for (int i = 0; i < 3; i++) {
		metric(&m, IG_M_COUNTER, 1, "web-a");
		ig_backend_datadog.write(st, &m);
	}
	metric(&m, IG_M_GAUGE, 5, "web-a");
	m.name = "queue.depth";
	ig_backend_datadog.write(st, &m);
	metric(&m, IG_M_GAUGE, 7, "web-a");
	m.name = "queue.depth";
	ig_backend_datadog.write(st, &m);
	ig_backend_datadog.sync(st); /* the envelope is acked after this */
	metric(&m, IG_M_COUNTER, 100, "web-a");
	ig_backend_datadog.write(st, &m); /* not synced: never acked */
	ig_backend_datadog.free(st); /* a crash: no flush */
	ig_cfg_free(ig_backend_datadog.opts, f->conf);
	free(f->conf);
	ig_ydoc_free(f->doc);
	assert_int_equal(f->sim.npayloads, 0);

	assert_int_equal(
		open_backend_spool(f, "  api_key: k123\n  flush_interval: 1h\n", dir, &st, &err),
		0);
	for (int i = 0; i < 500 && f->sim.npayloads < 1; i++)
		usleep(10000);
	assert_int_equal(f->sim.npayloads, 1);
	json_object *p = f->sim.payloads[0], *s;
	assert_non_null(s = find_series(p, "ingrain.file.open", "pod:web-a"));
	assert_int_equal(point_value(s, &type), 3);
	assert_int_equal(type, 1);
	assert_non_null(s = find_series(p, "ingrain.queue.depth", "pod:web-a"));
	assert_int_equal(point_value(s, &type), 7);
	assert_int_equal(type, 3);
	close_backend(f, st);
	assert_int_equal(f->sim.npayloads, 1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_histograms_become_count_avg_and_max(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	struct ig_metric m;
	void *st;
	int type;

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  api_key: k123\n  prefix: \"\"\n", &st, &err), 0);
	double v[] = { 2, 4, 9 };
	for (int i = 0; i < 3; i++) {
		metric(&m, IG_M_HISTOGRAM, v[i], "p");
		m.name = "lat";
		ig_backend_datadog.write(st, &m);
	}
	close_backend(f, st);
	json_object *p = f->sim.payloads[0], *s;
	assert_non_null(s = find_series(p, "lat.count", "pod:p"));
	assert_int_equal(point_value(s, &type), 3);
	assert_non_null(s = find_series(p, "lat.avg", "pod:p"));
	assert_int_equal(point_value(s, &type), 5);
	assert_non_null(s = find_series(p, "lat.max", "pod:p"));
	assert_int_equal(point_value(s, &type), 9);
}

static void test_refused_api_key_halts_and_keeps_the_payload(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	struct ig_metric m;
	struct ig_backend_stats bs;
	void *st;

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  api_key: wrong\n", &st, &err), 0);
	metric(&m, IG_M_COUNTER, 1, "p");
	ig_backend_datadog.write(st, &m);
	ig_backend_datadog.flush(st);
	usleep(150000);
	assert_int_equal(stub_count(&f->stub), 1); /* no retry */
	ig_backend_datadog.stats(st, &bs);
	assert_int_equal(bs.received, 1);
	assert_int_equal(bs.errors, 1);
	assert_int_equal(bs.sent, 0);
	assert_int_equal(bs.queued, 1);
	close_backend(f, st);
	assert_int_equal(f->sim.bad_key, 1);
}

static void test_server_errors_are_retried_until_accepted(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	struct ig_metric m;
	struct ig_backend_stats bs;
	void *st;
	int type;

	f->sim.script[0] = 503;
	f->sim.script[1] = 429;
	setenv("DD_API_KEY", "k123", 1);
	ig_err_init(&err);
	assert_int_equal(open_backend(f, "", &st, &err), 0);
	metric(&m, IG_M_COUNTER, 1, "p");
	ig_backend_datadog.write(st, &m);
	ig_backend_datadog.flush(st);
	ig_backend_datadog.stats(st, &bs);
	assert_int_equal(bs.errors, 2);
	assert_int_equal(bs.sent, 1);
	close_backend(f, st);
	unsetenv("DD_API_KEY");
	assert_int_equal(f->sim.npayloads, 1);
	assert_int_equal(
		point_value(find_series(f->sim.payloads[0], "ingrain.file.open", "pod:p"), &type),
		1);
}

static void test_missing_api_key_is_a_configuration_error(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st = NULL;

	unsetenv("DD_API_KEY");
	ig_err_init(&err);
	assert_int_equal(open_backend(f, "", &st, &err), -EINVAL);
	assert_null(st);
	assert_non_null(strstr(ig_err_str(&err), "set api_key or export DD_API_KEY"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_counters_are_summed_per_tag_set_and_sent_gzipped_with_the_key, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_histograms_become_count_avg_and_max, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_journaled_interval_is_delivered_after_a_crash,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_api_key_halts_and_keeps_the_payload,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_errors_are_retried_until_accepted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_api_key_is_a_configuration_error,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
