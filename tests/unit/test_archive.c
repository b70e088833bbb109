/* Unit tests of the archive's reading side: the line parser
 * (archive_line.h), RFC 3339 times, query filters (archive_query.h) and the
 * index's answers (archive_index.h). The end-to-end behaviour against a real
 * S3 server and DuckDB is tests/integration/test_archive_query.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "archive_index.h"
#include "archive_line.h"
#include "archive_query.h"

static const struct ig_aval *tag(const struct ig_aline *l, const char *k)
{
	return ig_aline_tag(l, k, strlen(k));
}

static void assert_val(const struct ig_aval *v, int type, const char *text)
{
	assert_non_null(v);
	assert_int_equal(v->type, type);
	assert_int_equal(v->len, strlen(text));
	assert_memory_equal(v->p, text, v->len);
}

static void test_line_values_are_decoded_strings_and_literal_numbers(void **state)
{
	(void)state;
	struct ig_aline l;
	const char *why;
	size_t at;
	const char *s = "{\"ts\":\"2026-11-25T12:00:00.123456789Z\",\"name\":\"file.open\","
			"\"value\":1,\"probe\":\"files\",\"tags\":{\"pid\":4242,\"ret\":-2,"
			"\"path\":\"/a\\\"b\\\\c\\u00e9\\ud83d\\ude00\",\"x\":[1,{\"y\":null}],"
			"\"ok\":true,\"pid\":7}}";

	ig_aline_init(&l);
	assert_int_equal(ig_aline_parse(&l, s, strlen(s), &why, &at), 0);
	assert_val(&l.ts, IG_AVAL_STR, "2026-11-25T12:00:00.123456789Z");
	assert_val(&l.name, IG_AVAL_STR, "file.open");
	assert_val(&l.probe, IG_AVAL_STR, "files");
	assert_val(tag(&l, "pid"), IG_AVAL_NUM, "7"); /* a repeated key: the last */
	assert_val(tag(&l, "ret"), IG_AVAL_NUM, "-2");
	assert_val(tag(&l, "path"), IG_AVAL_STR, "/a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(tag(&l, "x")->type, IG_AVAL_OTHER);
	assert_val(tag(&l, "ok"), IG_AVAL_LIT, "true");
	assert_null(tag(&l, "pod"));
	ig_aline_free(&l);
}

static void test_line_that_is_not_json_says_where(void **state)
{
	(void)state;
	static const char *const bad[] = { "",
					   "not json",
					   "{\"ts\":\"x\"",
					   "{\"tags\":{\"a\":1,}}",
					   "{\"a\":01}",
					   "{\"a\":\"\\x\"}",
					   "{\"a\":\"\\u12\"}",
					   "{\"a\":1} trailing",
					   "[1,2]",
					   "{\"a\":\"ctl\x01\"}",
					   "{\"a\":tru}" };
	struct ig_aline l;
	const char *why;
	size_t at;

	ig_aline_init(&l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (ig_aline_parse(&l, bad[i], strlen(bad[i]), &why, &at) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
		assert_true(at <= strlen(bad[i]));
	}
	/* Nesting is bounded. */
	char deep[300];
	size_t n = 0;
	n += (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
	while (n < 200)
		deep[n++] = '[';
	assert_int_equal(ig_aline_parse(&l, deep, n, &why, &at), -EINVAL);
	ig_aline_free(&l);
}

static void test_rfc3339_times(void **state)
{
	(void)state;
	int64_t ns;

	assert_int_equal(ig_rfc3339_parse("2026-11-25T12:00:00.123456789Z", 30, &ns), 0);
	assert_true(ns == 1795608000LL * 1000000000LL + 123456789);
	assert_int_equal(ig_rfc3339_parse("2026-11-25T13:00:00+01:00", 25, &ns), 0);
	assert_true(ns == 1795608000LL * 1000000000LL);
	assert_int_equal(ig_rfc3339_parse("1970-01-01T00:00:00.5Z", 22, &ns), 0);
	assert_true(ns == 500000000);
	assert_int_equal(ig_rfc3339_parse("2026-13-01T00:00:00Z", 20, &ns), -EINVAL);
	assert_int_equal(ig_rfc3339_parse("2026-11-25 12:00", 16, &ns), -EINVAL);
	assert_int_equal(ig_rfc3339_parse("2026-11-25T12:00:00", 19, &ns), -EINVAL);
}

static void test_filters_parse_and_reject(void **state)
{
	(void)state;
	struct ig_aq_filter f;
	char msg[256];

	assert_int_equal(ig_aq_filter_parse("path=/etc/passwd", &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.op, IG_AQ_EQ);
	assert_string_equal(f.key, "path");
	assert_string_equal(f.val, "/etc/passwd");
	ig_aq_filter_free(&f);
	assert_int_equal(ig_aq_filter_parse("path~^/etc/(passwd|shadow)$", &f, msg, sizeof(msg)),
			 0);
	assert_int_equal(f.op, IG_AQ_RE);
	assert_non_null(f.re);
	ig_aq_filter_free(&f);
	assert_int_equal(ig_aq_filter_parse("name=file.open", &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.field, IG_AQ_NAME);
	ig_aq_filter_free(&f);
	assert_int_equal(ig_aq_filter_parse("tags.name=x", &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.field, IG_AQ_TAG);
	assert_string_equal(f.key, "name");
	ig_aq_filter_free(&f);
	assert_int_equal(ig_aq_filter_parse("pod!=a=b", &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.op, IG_AQ_NE);
	assert_string_equal(f.val, "a=b");
	ig_aq_filter_free(&f);
	assert_int_equal(ig_aq_filter_parse("path", &f, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "expected KEY=VALUE"));
	assert_int_equal(ig_aq_filter_parse("path~(", &f, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "bad regex"));
}

static void test_index_lists_few_values_and_blooms_many(void **state)
{
	(void)state;
	const char *keys[] = { "path", "pod" };
	struct ig_aindex_builder *b = ig_aindex_builder_new(keys, 2);
	char line[256], *doc, why[256];
	size_t dl;

	assert_non_null(b);
	for (int i = 0; i < 500; i++) {
		int n = snprintf(line, sizeof(line),
				 "{\"ts\":\"2026-11-25T12:00:%02d.000000000Z\",\"tags\":{\"pod\":"
				 "\"web-%d\",\"path\":\"/data/f%d\"}}",
				 i % 60, i % 3, i);
		ig_aindex_add(b, line, (size_t)n);
	}
	assert_int_equal(ig_aindex_finish(b, "p/x.jsonl.gz", "data", 4, UINT64_MAX, 0, &doc, &dl),
			 0);
	struct ig_aindex *ix = ig_aindex_parse(doc, dl, why, sizeof(why));
	if (!ix)
		fail_msg("%s", why);
	const char *const *vals;
	const size_t *lens;
	size_t n;
	assert_true(ig_aindex_values(ix, "pod", &vals, &lens, &n));
	assert_int_equal(n, 3);
	assert_string_equal(vals[0], "web-0");
	assert_false(ig_aindex_values(ix, "path", &vals, &lens, &n)); /* too many */
	int hits = 0;
	for (int i = 0; i < 500; i++) {
		snprintf(line, sizeof(line), "/data/f%d", i);
		assert_true(ig_aindex_may_equal(ix, "path", line, strlen(line)));
	}
	for (int i = 500; i < 10500; i++) {
		snprintf(line, sizeof(line), "/data/f%d", i);
		hits += ig_aindex_may_equal(ix, "path", line, strlen(line));
	}
	/* ~1% false positives by construction; allow 2%. */
	assert_true(hits < 200);
	assert_false(ig_aindex_may_equal(ix, "pod", "web-3", 5));
	assert_int_equal(ig_aindex_records(ix), 500);
	ig_aindex_free(ix);
	free(doc);
	ig_aindex_builder_free(b);

	char *k = ig_aindex_key("a/b/c.jsonl.gz");
	assert_string_equal(k, "a/b/_c.jsonl.gz.idx");
	assert_true(ig_aindex_is_index_key(k));
	assert_false(ig_aindex_is_index_key("a/b/c.jsonl.gz"));
	free(k);
}

static void test_etag_of_a_multipart_upload(void **state)
{
	(void)state;
	char e[48];
	/* md5("") and, in two parts of "ab": md5(md5("a") . md5("b")) "-2". */
	ig_aindex_etag("", 0, 10, 5, e);
	assert_string_equal(e, "\"d41d8cd98f00b204e9800998ecf8427e\"");
	ig_aindex_etag("ab", 2, 1, 1, e);
	assert_string_equal(e, "\"96e024ba2074fe77e8e965ba43a704be-2\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_values_are_decoded_strings_and_literal_numbers),
		cmocka_unit_test(test_line_that_is_not_json_says_where),
		cmocka_unit_test(test_rfc3339_times),
		cmocka_unit_test(test_filters_parse_and_reject),
		cmocka_unit_test(test_index_lists_few_values_and_blooms_many),
		cmocka_unit_test(test_etag_of_a_multipart_upload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
