/* regex stage: a table of rewrites (capture groups, global or first match,
 * no match, absent key, the metric name, UTF-8 and invalid UTF-8 values,
 * empty matches, chained rules), tag types after a rewrite, a full metric
 * arena, and every configuration mistake reported at load with its position
 * (bad patterns with their offset, replacements naming missing groups),
 * including the engine's full "pipelines.p.stages[1].rules[0].pattern" form. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ig_pipeline.h"
#include "stage_harness.h"

extern const struct ig_stage_ops ig_stage_regex;

struct rx_case {
	const char *what;
	const char *yaml;
	const char *key; /* tag rewritten (NULL: the metric has no tags) */
	const char *in; /* its value */
	const char *want; /* after */
};

#define RULE(k, p, r) "rules: [{key: " k ", pattern: '" p "', replace_with: '" r "'}]\n"

static const struct rx_case cases[] = {
	{ "a pid in a /proc path", RULE("path", "^/proc/[0-9]+/", "/proc/N/"), "path",
	  "/proc/12345/status", "/proc/N/status" },
	{ "a pod uid through a capture group",
	  RULE("path", "^(/var/lib/kubelet/pods/)[^/]+/", "${1}ID/"), "path",
	  "/var/lib/kubelet/pods/0b7e-11aa/volumes/x", "/var/lib/kubelet/pods/ID/volumes/x" },
	{ "$1 and $2 reorder", RULE("path", "^([a-z]+)-([0-9]+)$", "$2-$1"), "path", "web-42",
	  "42-web" },
	{ "a named group", RULE("path", "^(?<dir>/[^/]+)/.*$", "${dir}/*"), "path", "/etc/passwd",
	  "/etc/*" },
	{ "$$ is a dollar", RULE("path", "[0-9]+", "$$"), "path", "a1b", "a$b" },
	{ "every match by default", RULE("path", "[0-9]+", "N"), "path", "a1b22c333", "aNbNcN" },
	{ "global: false rewrites the first only",
	  "rules: [{key: path, pattern: '[0-9]+', replace_with: N, global: false}]\n", "path",
	  "a1b22c333", "aNb22c333" },
	{ "no match leaves the value", RULE("path", "^/proc/", "X"), "path", "/etc/hosts",
	  "/etc/hosts" },
	{ "an empty value can match", RULE("path", "^$", "(empty)"), "path", "", "(empty)" },
	{ "empty matches advance one character", RULE("path", "x*", "-"), "path", "abc",
	  "-a-b-c-" },
	{ "'' deletes the match", RULE("path", "\\.[a-z]+$", ""), "path", "report.pdf", "report" },
	{ "UTF-8: . is one character", RULE("path", "^(.)", "[$1]"), "path", "été", "[é]té" },
	{ "UTF-8 classes", RULE("path", "[éè]+", "e"), "path", "crème brûlée", "creme brûlee" },
	{ "invalid UTF-8 in the value still matches around it",
	  RULE("path", "/proc/[0-9]+/", "/proc/N/"), "path", "\xff\xfe/proc/7/fd",
	  "\xff\xfe/proc/N/fd" },
	{ "rules chain: the second sees the first's result",
	  "rules:\n"
	  "  - {key: path, pattern: '[0-9]+', replace_with: N}\n"
	  "  - {key: path, pattern: 'N/N', replace_with: 'N'}\n",
	  "path", "/a/1/2/b", "/a/N/b" },
	{ "the single-rule form",
	  "key: process\nregex: 'conn\\d+'\nreplace_with: docker_conn_proxy\n", "process",
	  "conn1234", "docker_conn_proxy" },
	{ "a rule for another key leaves this one", RULE("comm", "[0-9]+", "N"), "path", "/x/1",
	  "/x/1" },
};

static void test_table_of_rewrites(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rx_case *c = &cases[i];
		struct ig_metric m;
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_regex, c->yaml, &err);
		const char *got;

		if (!s)
			fail_msg("case '%s': %s", c->what, ig_err_str(&err));
		metric_set(&m, "file.open", "namespace", "prod", c->key, c->in, "other", c->in,
			   NULL);
		assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
		got = ig_metric_tag(&m, c->key);
		if (strcmp(got, c->want))
			fail_msg("case '%s': got '%s', want '%s'", c->what, got, c->want);
		/* Only that key changed, nothing was added or removed. */
		assert_int_equal(m.ntags, 3);
		assert_string_equal(ig_metric_tag(&m, "namespace"), "prod");
		assert_string_equal(ig_metric_tag(&m, "other"), c->in);
		assert_string_equal(m.name, "file.open");
		stage_close(s);
	}
}

static void test_absent_key_and_empty_tags_are_left_alone(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_regex, RULE("path", ".*", "X"), &err);
	struct ig_metric m;

	assert_non_null(s);
	metric_set(&m, "file.open", "pod", "web", NULL);
	assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
	assert_int_equal(m.ntags, 1);
	assert_null(ig_metric_tag(&m, "path"));
	metric_set(&m, "file.open", NULL);
	assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
	assert_int_equal(m.ntags, 0);
	assert_int_equal(m.arena_used, 0);
	stage_close(s);
}

static void test_no_match_costs_no_arena(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_regex, RULE("path", "^/proc/", "X"), &err);
	struct ig_metric m;
	const char *before;

	assert_non_null(s);
	metric_set(&m, "file.open", "path", "/etc/hosts", NULL);
	before = m.tags[0].val;
	s->ops->process(s->state, &m, NULL);
	assert_ptr_equal(m.tags[0].val, before);
	assert_int_equal(m.arena_used, 0);
	stage_close(s);
}

static void test_name_key_rewrites_the_metric_name(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_regex, RULE("__name__", "^file\\.", "fs."), &err);
	struct ig_metric m;

	if (!s)
		fail_msg("%s", ig_err_str(&err));
	metric_set(&m, "file.open", "__name__", "tag-not-name", NULL);
	s->ops->process(s->state, &m, NULL);
	assert_string_equal(m.name, "fs.open");
	assert_string_equal(ig_metric_tag(&m, "__name__"), "tag-not-name");
	stage_close(s);
}

static void test_numeric_tag_stays_numeric_only_while_a_number(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_regex,
				     "rules:\n"
				     "  - {key: pid, pattern: '^1', replace_with: '9'}\n"
				     "  - {key: uid, pattern: '^.*$', replace_with: 'user-$0'}\n",
				     &err);
	struct ig_metric m;

	if (!s)
		fail_msg("%s", ig_err_str(&err));
	ig_metric_reset(&m);
	m.name = "file.open";
	ig_metric_add_tag(&m, "pid", "123", IG_TAG_NUM);
	ig_metric_add_tag(&m, "uid", "1000", IG_TAG_NUM);
	s->ops->process(s->state, &m, NULL);
	assert_string_equal(ig_metric_tag(&m, "pid"), "923");
	assert_int_equal(m.tags[0].type, IG_TAG_NUM);
	assert_string_equal(ig_metric_tag(&m, "uid"), "user-1000");
	assert_int_equal(m.tags[1].type, IG_TAG_STR);
	stage_close(s);
}

static void test_full_arena_leaves_the_value_unchanged(void **state)
{
	struct ig_err err;
	struct stage *s = stage_open(&ig_stage_regex, RULE("path", "[0-9]", "NN"), &err);
	struct ig_metric m;

	assert_non_null(s);
	metric_set(&m, "file.open", "path", "/proc/1/x", NULL);
	m.arena_used = sizeof(m.arena) - 4; /* someone filled it */
	assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
	assert_string_equal(ig_metric_tag(&m, "path"), "/proc/1/x");
	/* ...and a value whose rewrite is larger than any arena too. */
	static char big[6000];
	memset(big, '7', sizeof(big) - 1);
	metric_set(&m, "file.open", "path", big, NULL);
	assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
	assert_ptr_equal(ig_metric_tag(&m, "path"), big);
	stage_close(s);
}

struct err_case {
	const char *what;
	const char *yaml;
	const char *want;
};

static const struct err_case errs[] = {
	{ "a pattern that does not compile, with its offset",
	  "rules:\n  - {key: path, pattern: '^(/proc/[0-9]+', replace_with: x}\n",
	  "stage.yaml:2:26: rules[0].pattern: missing closing parenthesis at offset 14\n" },
	{ "the alias reports under its own name", "key: path\nregex: '[a-'\nreplace_with: x\n",
	  "stage.yaml:2:8: regex: missing terminating ] for character class at offset 3\n" },
	{ "$2 with one group", "rules:\n  - {key: path, pattern: '(a)', replace_with: '$2'}\n",
	  "stage.yaml:2:47: rules[0].replace_with: $2 refers to group 2, but the pattern has 1 capture group\n" },
	{ "an unknown group name",
	  "rules: [{key: path, pattern: '(?<x>a)', replace_with: '${y}'}]\n",
	  "stage.yaml:1:55: rules[0].replace_with: ${y}: the pattern has no group named 'y' (name one with (?<y>...))\n" },
	{ "an unclosed ${", "rules: [{key: path, pattern: '(a)', replace_with: 'x${1'}]\n",
	  "rules[0].replace_with: '${' at offset 1 has no closing '}'\n" },
	{ "a lone $", "rules: [{key: path, pattern: a, replace_with: 'cost: $ 5'}]\n",
	  "rules[0].replace_with: '$' at offset 6 must be followed by a group number, {name} or another '$' (write '$$' for a literal '$')\n" },
	{ "pattern and regex both", "rules: [{key: path, pattern: a, regex: b, replace_with: x}]\n",
	  "stage.yaml:1:40: rules[0].regex: 'pattern' and its alias 'regex' are both given; keep one\n" },
	{ "a missing replace_with", "rules: [{key: path, pattern: a}]\n",
	  "stage.yaml:1:9: rules[0].replace_with: missing; give the replacement" },
	{ "a missing key", "rules: [{pattern: a, replace_with: b}]\n",
	  "stage.yaml:1:9: rules[0].key: missing; name the tag to rewrite" },
	{ "an empty pattern", "rules: [{key: a, pattern: '', replace_with: b}]\n",
	  "stage.yaml:1:27: rules[0].pattern: is empty" },
	{ "a typo in a rule's key", "rules: [{key: a, patern: x, replace_with: b}]\n",
	  "rules[0].patern: unknown key (did you mean 'pattern'?)" },
	{ "rules not a list", "rules: {key: a}\n",
	  "stage.yaml:1:8: rules: expected a list like [{key: path, pattern: '[0-9]+', replace_with: N}]; got a mapping\n" },
	{ "an empty rules list", "rules: []\n",
	  "stage.yaml:1:8: rules: the list is empty; add a rule or remove the stage\n" },
	{ "a rule that is not a mapping", "rules: [path]\n",
	  "stage.yaml:1:9: rules[0]: expected a mapping like {key: path, pattern: '[0-9]+', replace_with: N}; got a scalar\n" },
	{ "rules and a rule on the stage",
	  "rules: [{key: a, pattern: b, replace_with: c}]\nkey: x\n",
	  "stage.yaml:1:8: rules: give either 'rules: [...]' or one rule's key/pattern/replace_with/global on the stage, not both\n" },
	{ "nothing at all", "{}\n", "give the rewrites as 'rules: [" },
	{ "every bad rule is reported, not only the first",
	  "rules:\n  - {key: a, pattern: '(', replace_with: b}\n  - {key: a, pattern: ')', replace_with: b}\n",
	  "rules[1].pattern: unmatched closing parenthesis at offset 0\n" },
};

/* The memo of each rule (values seen before are not matched again) gives
 * the same results as matching: for values seen again, for more distinct
 * values than it holds (it empties and refills), for values that do not
 * match, and when the same value comes back after a reset. */
static void test_memo_gives_the_same_results_across_refills(void **state)
{
	struct ig_err err;
	struct stage *s =
		stage_open(&ig_stage_regex, RULE("path", "^/proc/[0-9]+/", "/proc/N/"), &err);
	struct ig_metric m;

	assert_non_null(s);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 20000; i++) {
			char in[64], want[64];
			int v = (i * 7919) % 9000; /* 9000 distinct values, revisited */

			if (v % 3 == 0) {
				snprintf(in, sizeof(in), "/etc/file-%d", v);
				snprintf(want, sizeof(want), "%s", in);
			} else {
				snprintf(in, sizeof(in), "/proc/%d/status", v);
				snprintf(want, sizeof(want), "/proc/N/status");
			}
			metric_set(&m, "file.open", "path", in, NULL);
			assert_int_equal(s->ops->process(s->state, &m, NULL), IG_STAGE_PASS);
			if (strcmp(ig_metric_tag(&m, "path"), want))
				fail_msg("round %d value %d: got '%s', want '%s'", round, i,
					 ig_metric_tag(&m, "path"), want);
		}
	}
	stage_close(s);
}

static void test_configuration_mistakes_are_positioned(void **state)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		struct ig_err err;
		struct stage *s = stage_open(&ig_stage_regex, errs[i].yaml, &err);

		if (s)
			fail_msg("case '%s' was accepted", errs[i].what);
		if (!strstr(ig_err_str(&err), errs[i].want))
			fail_msg("case '%s': got\n%s\nwant\n%s", errs[i].what, ig_err_str(&err),
				 errs[i].want);
	}
}

static void test_engine_scopes_pattern_errors_to_the_stage(void **state)
{
	static const char yaml[] = "pipelines:\n"
				   "  p:\n"
				   "    stages:\n"
				   "      - {type: whitelist, allow: [path]}\n"
				   "      - type: regex\n"
				   "        rules:\n"
				   "          - {key: path, pattern: '(a|b', replace_with: x}\n"
				   "    backends: [x]\n"
				   "backends:\n"
				   "  x: {type: console}\n";
	struct ig_conf *c = NULL;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("test.yaml", yaml, strlen(yaml), &c, &err), 0);
	assert_int_equal(ig_graph_check(c, &err), -EINVAL);
	assert_string_equal(
		ig_err_str(&err),
		"test.yaml:7:34: pipelines.p.stages[1].rules[0].pattern: missing closing "
		"parenthesis at offset 4\n");
	ig_conf_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_of_rewrites),
		cmocka_unit_test(test_absent_key_and_empty_tags_are_left_alone),
		cmocka_unit_test(test_no_match_costs_no_arena),
		cmocka_unit_test(test_name_key_rewrites_the_metric_name),
		cmocka_unit_test(test_numeric_tag_stays_numeric_only_while_a_number),
		cmocka_unit_test(test_full_arena_leaves_the_value_unchanged),
		cmocka_unit_test(test_memo_gives_the_same_results_across_refills),
		cmocka_unit_test(test_configuration_mistakes_are_positioned),
		cmocka_unit_test(test_engine_scopes_pattern_errors_to_the_stage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
