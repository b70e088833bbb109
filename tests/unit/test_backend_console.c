/* Console backend: exact text lines, JSON that parses (strict UTF-8) for any
 * input bytes, numeric tags as numbers, buffering until sync/interval, and
 * write failures counted rather than fatal. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ig_backend.h"
#include "ig_time.h"

static char tmpdir[64];
static const char *const type_key[] = { "type", NULL };

/* 2026-11-25T12:00:00.123456789Z */
static uint64_t ts_fixed(void)
{
	struct tm tm = { .tm_year = 126, .tm_mon = 10, .tm_mday = 25, .tm_hour = 12 };

	return (uint64_t)timegm(&tm) * IG_NSEC_PER_SEC + 123456789;
}

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/ig_test_console.XXXXXX");
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

struct console_t {
	const struct ig_backend_ops *ops;
	void *conf;
	void *state;
	struct ig_ydoc *doc;
};

/* Starts a console backend from YAML options; returns init's result. */
static int start(struct console_t *t, struct ig_err *err, const char *fmt, ...)
{
	char yaml[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	memset(t, 0, sizeof(*t));
	ig_err_init(err);
	t->ops = ig_backend_find("console");
	assert_non_null(t->ops);
	assert_int_equal(ig_ydoc_load_string("test.yaml", yaml, strlen(yaml), &t->doc, err), 0);
	t->conf = calloc(1, t->ops->conf_size);
	assert_non_null(t->conf);
	rc = ig_cfg_apply(t->ops->opts, t->doc->root, t->conf, "backends.c", type_key, err);
	if (rc < 0)
		return rc;
	return t->ops->init(&t->state, t->conf, "c", err);
}

static void stop(struct console_t *t)
{
	if (t->state)
		t->ops->free(t->state);
	ig_cfg_free(t->ops->opts, t->conf);
	free(t->conf);
	ig_ydoc_free(t->doc);
}

static struct ig_metric *metric(const char *name)
{
	struct ig_metric *m = malloc(sizeof(*m));

	assert_non_null(m);
	ig_metric_reset(m);
	m->name = name;
	m->kind = IG_M_COUNTER;
	m->value = 1;
	m->ts_ns = ts_fixed();
	return m;
}

static char *slurp(const char *name)
{
	char path[256];
	static char buf[1 << 20];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "r");
	if (!f) {
		buf[0] = '\0';
		return buf;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_text_line_puts_identity_first(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");

	assert_int_equal(start(&t, &err, "output: %s/a.txt\nflush_interval: 1h", tmpdir), 0);
	ig_metric_add_tag(m, "node", "n1", IG_TAG_STR);
	ig_metric_add_tag(m, "namespace", "ns", IG_TAG_STR);
	ig_metric_add_tag(m, "pod", "pod", IG_TAG_STR);
	ig_metric_add_tag(m, "container", "c", IG_TAG_STR);
	ig_metric_add_tag(m, "process", "cat", IG_TAG_STR);
	ig_metric_add_tag(m, "pid", "1", IG_TAG_NUM);
	ig_metric_add_tag(m, "path", "/etc/passwd", IG_TAG_STR);
	ig_metric_add_tag(m, "ret", "3", IG_TAG_NUM);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->sync(t.state);
	assert_string_equal(slurp("a.txt"), "2026-11-25T12:00:00.123456789Z file.open ns/pod "
					    "container=c node=n1 process=cat pid=1 "
					    "path=/etc/passwd ret=3\n");
	free(m);
	stop(&t);
}

static void test_text_quotes_values_so_a_metric_stays_one_line(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");

	assert_int_equal(start(&t, &err, "output: %s/q.txt", tmpdir), 0);
	ig_metric_add_tag(m, "path", "/tmp/a b", IG_TAG_STR);
	ig_metric_add_tag(m, "evil", "x\ny=\"z\"\\", IG_TAG_STR);
	ig_metric_add_tag(m, "empty", "", IG_TAG_STR);
	ig_metric_add_tag(m, "bad key", "\x01", IG_TAG_STR);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	assert_string_equal(slurp("q.txt"),
			    "2026-11-25T12:00:00.123456789Z file.open path=\"/tmp/a b\" "
			    "evil=\"x\\ny=\\\"z\\\"\\\\\" empty=\"\" bad_key=\"\\x01\"\n");
	free(m);
	stop(&t);
}

static void test_text_shows_kind_and_value_when_not_a_plain_count(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("queue.depth");

	assert_int_equal(start(&t, &err, "output: %s/g.txt", tmpdir), 0);
	m->kind = IG_M_GAUGE;
	m->value = 2.5;
	assert_int_equal(t.ops->write(t.state, m), 0);
	m->kind = IG_M_COUNTER;
	m->value = 7;
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	assert_string_equal(slurp("g.txt"),
			    "2026-11-25T12:00:00.123456789Z queue.depth kind=gauge value=2.5\n"
			    "2026-11-25T12:00:00.123456789Z queue.depth value=7\n");
	free(m);
	stop(&t);
}

/* Parses every line with json-c in strict mode, validating UTF-8. */
static int parse_lines(const char *text, json_object **objs, int max)
{
	int n = 0;

	while (*text) {
		const char *eol = strchr(text, '\n');
		json_tokener *tok = json_tokener_new();
		json_object *o;

		assert_non_null(eol);
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		o = json_tokener_parse_ex(tok, text, (int)(eol - text));
		if (!o || json_tokener_get_error(tok) != json_tokener_success)
			fail_msg("line %d is not valid JSON (%s): %.*s", n + 1,
				 json_tokener_error_desc(json_tokener_get_error(tok)),
				 (int)(eol - text), text);
		json_tokener_free(tok);
		assert_true(n < max);
		objs[n++] = o;
		text = eol + 1;
	}
	return n;
}

static const char *tag_of(json_object *o, const char *key)
{
	json_object *tags, *v;

	assert_true(json_object_object_get_ex(o, "tags", &tags));
	if (!json_object_object_get_ex(tags, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_json_lines_parse_for_nasty_bytes(void **state)
{
	static const char *const nasty[] = {
		"plain",
		"quote\" backslash\\ slash/",
		"ctl\x01\x02\x1f\x7f tab\t nl\n cr\r",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* valid UTF-8 */
		"\xff\xfe lone bytes",
		"\xc3", /* truncated */
		"\xc0\xaf overlong", /* overlong '/' */
		"\xed\xa0\x80 surrogate",
		"\xf4\x90\x80\x80 too big",
		"\xe2\x82 cut \xe2\x82\xac",
		"\x80\xbf continuation only",
		"",
	};
	const size_t n_nasty = sizeof(nasty) / sizeof(nasty[0]);
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");
	json_object *objs[32];
	int n;

	assert_int_equal(start(&t, &err, "format: json\noutput: %s/n.json", tmpdir), 0);
	for (size_t i = 0; i < n_nasty; i++) {
		ig_metric_reset(m);
		m->name = nasty[i];
		m->ts_ns = ts_fixed();
		m->value = 1;
		ig_metric_add_tag(m, nasty[i], nasty[i], IG_TAG_STR);
		ig_metric_add_tag(m, "v", nasty[i], IG_TAG_STR);
		assert_int_equal(t.ops->write(t.state, m), 0);
	}
	t.ops->flush(t.state);
	n = parse_lines(slurp("n.json"), objs, 32);
	assert_int_equal(n, (int)n_nasty);
	/* Valid strings come back byte for byte; invalid bytes become U+00XX. */
	assert_string_equal(tag_of(objs[0], "v"), "plain");
	assert_string_equal(tag_of(objs[1], "v"), "quote\" backslash\\ slash/");
	assert_string_equal(tag_of(objs[2], "v"), "ctl\x01\x02\x1f\x7f tab\t nl\n cr\r");
	assert_string_equal(tag_of(objs[3], "v"), nasty[3]);
	assert_string_equal(tag_of(objs[4], "v"), "\xc3\xbf\xc3\xbe lone bytes");
	assert_string_equal(tag_of(objs[9], "v"), "\xc3\xa2\xc2\x82 cut \xe2\x82\xac");
	assert_string_equal(json_object_get_string(json_object_object_get(objs[3], "name")),
			    nasty[3]);
	for (int i = 0; i < n; i++)
		json_object_put(objs[i]);
	free(m);
	stop(&t);
}

static void test_json_has_numbers_where_tags_were_numbers(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");
	json_object *objs[2], *tags, *v;

	assert_int_equal(start(&t, &err, "format: json\noutput: %s/num.json", tmpdir), 0);
	ig_metric_add_tag(m, "pid", "42", IG_TAG_NUM);
	ig_metric_add_tag(m, "ret", "-13", IG_TAG_NUM);
	ig_metric_add_tag(m, "odd", "12abc", IG_TAG_NUM); /* rewritten by a stage */
	ig_metric_add_tag(m, "lead", "007", IG_TAG_NUM);
	ig_metric_add_tag(m, "str", "42", IG_TAG_STR);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	assert_int_equal(parse_lines(slurp("num.json"), objs, 2), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(objs[0], "ts")),
			    "2026-11-25T12:00:00.123456789Z");
	assert_string_equal(json_object_get_string(json_object_object_get(objs[0], "kind")),
			    "counter");
	assert_int_equal(json_object_get_int(json_object_object_get(objs[0], "value")), 1);
	json_object_object_get_ex(objs[0], "tags", &tags);
	json_object_object_get_ex(tags, "pid", &v);
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int(v), 42);
	json_object_object_get_ex(tags, "ret", &v);
	assert_int_equal(json_object_get_int(v), -13);
	json_object_object_get_ex(tags, "odd", &v);
	assert_true(json_object_is_type(v, json_type_string));
	json_object_object_get_ex(tags, "lead", &v);
	assert_true(json_object_is_type(v, json_type_string));
	json_object_object_get_ex(tags, "str", &v);
	assert_true(json_object_is_type(v, json_type_string));
	json_object_put(objs[0]);
	free(m);
	stop(&t);
}

static void test_json_set_member_and_non_finite_value(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("users");
	json_object *objs[4];

	assert_int_equal(start(&t, &err, "format: json\noutput: %s/set.json", tmpdir), 0);
	m->kind = IG_M_SET;
	m->set_member = "alice";
	assert_int_equal(t.ops->write(t.state, m), 0);
	m->kind = IG_M_GAUGE;
	m->value = 0.0 / 0.0;
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	assert_int_equal(parse_lines(slurp("set.json"), objs, 4), 2);
	assert_string_equal(json_object_get_string(json_object_object_get(objs[0], "member")),
			    "alice");
	assert_string_equal(json_object_get_string(json_object_object_get(objs[0], "kind")), "set");
	assert_null(json_object_object_get(objs[1], "value"));
	assert_true(json_object_object_get_ex(objs[1], "value", NULL));
	json_object_put(objs[0]);
	json_object_put(objs[1]);
	free(m);
	stop(&t);
}

static void test_lines_wait_for_sync_or_the_interval(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");
	struct ig_backend_stats st;
	uint64_t now = ig_mono_ns();

	assert_int_equal(start(&t, &err, "output: %s/b.txt\nflush_interval: 10s", tmpdir), 0);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->tick(t.state, now + IG_NSEC_PER_SEC);
	assert_string_equal(slurp("b.txt"), "");
	t.ops->stats(t.state, &st);
	assert_int_equal(st.received, 1);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.sent, 0);
	t.ops->tick(t.state, now + 11 * IG_NSEC_PER_SEC);
	assert_string_equal(slurp("b.txt"), "2026-11-25T12:00:00.123456789Z file.open\n");
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->sync(t.state);
	t.ops->stats(t.state, &st);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.queued, 0);
	assert_int_equal(strlen(slurp("b.txt")),
			 2 * strlen("2026-11-25T12:00:00.123456789Z file.open\n"));
	free(m);
	stop(&t);
}

static void test_output_file_is_appended_to(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("x");
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/app.txt", tmpdir);
	f = fopen(path, "w");
	fputs("before\n", f);
	fclose(f);
	assert_int_equal(start(&t, &err, "output: %s", path), 0);
	assert_int_equal(t.ops->write(t.state, m), 0);
	stop(&t); /* free writes what is buffered */
	assert_string_equal(slurp("app.txt"), "before\n2026-11-25T12:00:00.123456789Z x\n");
	free(m);
}

static void test_write_failure_is_counted_not_fatal(void **state)
{
	struct console_t t;
	struct ig_err err;
	struct ig_metric *m = metric("file.open");
	struct ig_backend_stats st;

	/* /dev/full: every write fails with ENOSPC */
	assert_int_equal(start(&t, &err, "output: /dev/full"), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->sync(t.state);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	t.ops->stats(t.state, &st);
	assert_int_equal(st.received, 4);
	assert_int_equal(st.errors, 2);
	assert_int_equal(st.dropped, 4);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.queued, 0);
	free(m);
	stop(&t);
}

static void test_unopenable_output_says_why(void **state)
{
	struct console_t t;
	struct ig_err err;

	assert_int_equal(start(&t, &err, "output: /nonexistent-dir/x.log"), -ENOENT);
	assert_null(t.state);
	assert_string_equal(ig_err_str(&err),
			    "output: cannot open '/nonexistent-dir/x.log' for appending: No such "
			    "file or directory; check that the directory exists and the aggregator "
			    "may write there\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "output: ''"), -EINVAL);
	assert_string_equal(ig_err_str(&err),
			    "output: is empty; use '-' for standard output or a file path\n");
	stop(&t);
}

static void test_bad_format_is_rejected_with_choices(void **state)
{
	struct console_t t;
	struct ig_err err;

	assert_int_equal(start(&t, &err, "format: jsn"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "test.yaml:1:9: backends.c.format: expected one of "
					      "text, json; got 'jsn' (did you mean 'json'?)\n");
	stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_line_puts_identity_first),
		cmocka_unit_test(test_text_quotes_values_so_a_metric_stays_one_line),
		cmocka_unit_test(test_text_shows_kind_and_value_when_not_a_plain_count),
		cmocka_unit_test(test_json_lines_parse_for_nasty_bytes),
		cmocka_unit_test(test_json_has_numbers_where_tags_were_numbers),
		cmocka_unit_test(test_json_set_member_and_non_finite_value),
		cmocka_unit_test(test_lines_wait_for_sync_or_the_interval),
		cmocka_unit_test(test_output_file_is_appended_to),
		cmocka_unit_test(test_write_failure_is_counted_not_fatal),
		cmocka_unit_test(test_unopenable_output_says_why),
		cmocka_unit_test(test_bad_format_is_rejected_with_choices),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
