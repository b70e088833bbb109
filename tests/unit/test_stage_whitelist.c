/* whitelist stage: a table of allow/deny lists against tag sets (order kept,
 * absent keys, empty tags, UTF-8 keys, everything removed), and every
 * configuration mistake with its position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "stage_harness.h"

extern const struct ig_stage_ops ig_stage_whitelist;

struct wl_case {
	const char *what;
	const char *yaml;
	const char *in[12]; /* key, value pairs, NULL-terminated */
	const char *want; /* tags after, "k=v,k=v" */
};

static const struct wl_case cases[] = {
	{ "allow keeps the metric's order, not the list's",
	  "allow: [pod, namespace]\n",
	  { "namespace", "prod", "pid", "42", "pod", "web-1", "path", "/etc/passwd", NULL },
	  "namespace=prod,pod=web-1" },
	{ "allow of keys the metric lacks removes everything else",
	  "allow: [container]\n",
	  { "namespace", "prod", "pod", "web-1", NULL },
	  "" },
	{ "allow: [] removes every tag", "allow: []\n", { "a", "1", "b", "2", NULL }, "" },
	{ "a metric without tags stays without tags", "allow: [a]\n", { NULL }, "" },
	{ "deny removes only the listed keys",
	  "deny: [pid, tid]\n",
	  { "namespace", "prod", "pid", "42", "tid", "43", "path", "/x", NULL },
	  "namespace=prod,path=/x" },
	{ "deny: [] keeps everything", "deny: []\n", { "a", "1", NULL }, "a=1" },
	{ "UTF-8 keys compare byte for byte",
	  "allow: [\"clé\", \"名前\"]\n",
	  { "cle", "x", "clé", "é", "名前", "値", NULL },
	  "clé=é,名前=値" },
	{ "a key listed twice is kept once",
	  "allow: [a, a]\n",
	  { "a", "1", "b", "2", NULL },
	  "a=1" },
	{ "keys are case-sensitive and whole", "allow: [Pod, po]\n", { "pod", "x", NULL }, "" },
	{ "the name and value are never touched", "deny: [__name__]\n", { "x", "1", NULL }, "x=1" },
};

static void test_table_of_allow_and_deny_lists(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct wl_case *c = &cases[i];
		struct ig_metric m;
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_whitelist, c->yaml, &err);
		char buf[512];

		if (!s)
			fail_msg("case '%s': %s", c->what, ig_err_str(&err));
		ig_metric_reset(&m);
		m.name = "file.open";
		m.value = 7;
		for (size_t k = 0; c->in[k]; k += 2)
			ig_metric_add_tag(&m, c->in[k], c->in[k + 1], IG_TAG_STR);
		assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
		if (strcmp(tags_str(&m, buf, sizeof(buf)), c->want))
			fail_msg("case '%s': got '%s', want '%s'", c->what, buf, c->want);
		assert_string_equal(m.name, "file.open");
		assert_true(m.value == 7);
		stage_close(s);
	}
}

static void test_tag_types_survive(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_whitelist, "allow: [pid, path]\n", &err);
	struct ig_metric m;

	assert_non_null(s);
	ig_metric_reset(&m);
	ig_metric_add_tag(&m, "comm", "cat", IG_TAG_STR);
	ig_metric_add_tag(&m, "pid", "42", IG_TAG_NUM);
	ig_metric_add_tag(&m, "path", "/x", IG_TAG_STR);
	s->ops->process(s->state, &m, NULL);
	assert_int_equal(m.ntags, 2);
	assert_int_equal(m.tags[0].type, IG_TAG_NUM);
	assert_int_equal(m.tags[1].type, IG_TAG_STR);
	stage_close(s);
}

static void test_full_metric_is_compacted(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_whitelist, "deny: [even]\n", &err);
	struct ig_metric m;

	assert_non_null(s);
	ig_metric_reset(&m);
	for (int i = 0; i < IG_MAX_TAGS; i++)
		ig_metric_add_tag(&m, i % 2 ? "odd" : "even", i % 2 ? "1" : "0", IG_TAG_STR);
	s->ops->process(s->state, &m, NULL);
	assert_int_equal(m.ntags, IG_MAX_TAGS / 2);
	for (uint32_t i = 0; i < m.ntags; i++)
		assert_string_equal(m.tags[i].key, "odd");
	stage_close(s);
}

struct err_case {
	const char *yaml;
	const char *want;
};

static void test_configuration_mistakes_are_positioned(void **state)
{
	static const struct err_case errs[] = {
		{ "allow: [a]\ndeny: [b]\n",
		  "stage.yaml:2:7: deny: 'allow' and 'deny' are both given; keep one\n" },
		{ "allow:\n",
		  "give the tag keys to keep as 'allow: [namespace, pod]' (or those to remove as 'deny: [...]')\n" },
		{ "allow: pod\n",
		  "stage.yaml:1:8: allow: expected a list of tag keys like [namespace, pod]; got a scalar\n" },
		{ "deny: {a: b}\n",
		  "stage.yaml:1:7: deny: expected a list of tag keys like [namespace, pod]; got a mapping\n" },
		{ "allow: [a, [b], \"\"]\n",
		  "stage.yaml:1:12: allow[1]: expected a tag key; got a sequence\n"
		  "stage.yaml:1:17: allow[2]: expected a tag key; got an empty string\n" },
		{ "alow: [a]\n", "did you mean 'allow'" },
	};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_whitelist, errs[i].yaml, &err);

		if (s)
			fail_msg("'%s' was accepted", errs[i].yaml);
		if (!strstr(ig_err_str(&err), errs[i].want))
			fail_msg("'%s': got\n%s\nwant\n%s", errs[i].yaml, ig_err_str(&err),
				 errs[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_of_allow_and_deny_lists),
		cmocka_unit_test(test_tag_types_survive),
		cmocka_unit_test(test_full_metric_is_compacted),
		cmocka_unit_test(test_configuration_mistakes_are_positioned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
