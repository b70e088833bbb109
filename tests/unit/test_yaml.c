/* ig_yaml: positions, syntax errors with exact line:col, the document-level
 * rules (one document, mapping root, unique scalar keys), alias resolution
 * and its bounds, size limits, file errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ig_yaml.h"

static struct ig_ydoc *load_ok(const char *text)
{
	struct ig_ydoc *d = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_ydoc_load_string("t.yaml", text, strlen(text), &d, &err) != 0)
		fail_msg("unexpected error: %s", ig_err_str(&err));
	assert_non_null(d);
	assert_int_equal(err.n, 0);
	return d;
}

/* Loads text expecting failure; returns the message (static buffer). */
static const char *load_bad(const char *text, int want_rc)
{
	static struct ig_err err;
	struct ig_ydoc *d = (struct ig_ydoc *)1;

	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_string("t.yaml", text, strlen(text), &d, &err), want_rc);
	assert_null(d);
	assert_true(err.n >= 1);
	return ig_err_str(&err);
}

#define assert_has(hay, needle)                                            \
	do {                                                               \
		if (!strstr((hay), (needle)))                              \
			fail_msg("expected '%s' in: %s", (needle), (hay)); \
	} while (0)

static void test_nodes_carry_one_based_positions(void **state)
{
	struct ig_ydoc *d = load_ok("# comment\nagent:\n  aggregator: tcp://x:1\n  list: [a, b]\n");
	const struct ig_ynode *agent = ig_ymap_get(d->root, "agent");
	const struct ig_ynode *v, *list;

	assert_string_equal(d->file, "t.yaml");
	assert_non_null(agent);
	assert_int_equal(agent->type, IG_Y_MAP);
	assert_int_equal(agent->n, 2);
	assert_int_equal(agent->pairs[0].key->line, 3);
	assert_int_equal(agent->pairs[0].key->col, 3);
	v = ig_ymap_get(agent, "aggregator");
	assert_non_null(v);
	assert_string_equal(v->scalar, "tcp://x:1");
	assert_int_equal(v->line, 3);
	assert_int_equal(v->col, 15);
	assert_string_equal(v->file, "t.yaml");
	list = ig_ymap_get(agent, "list");
	assert_int_equal(list->type, IG_Y_SEQ);
	assert_int_equal(list->n, 2);
	assert_string_equal(list->items[1]->scalar, "b");
	assert_int_equal(list->items[1]->line, 4);
	assert_int_equal(list->items[1]->col, 13);
	assert_null(ig_ymap_get(agent, "missing"));
	assert_null(ig_ymap_get(v, "aggregator")); /* not a mapping */
	assert_null(ig_ymap_get(NULL, "x"));
	ig_ydoc_free(d);
}

static void test_null_scalars_are_marked_but_quoted_empty_is_not(void **state)
{
	struct ig_ydoc *d = load_ok("a:\nb: ~\nc: null\nd: \"\"\ne: 'null'\nf: NULL\n");

	assert_true(ig_ymap_get(d->root, "a")->plain_null);
	assert_string_equal(ig_ymap_get(d->root, "a")->scalar, "");
	assert_true(ig_ymap_get(d->root, "b")->plain_null);
	assert_string_equal(ig_ymap_get(d->root, "b")->scalar, "");
	assert_true(ig_ymap_get(d->root, "c")->plain_null);
	assert_true(ig_ymap_get(d->root, "f")->plain_null);
	assert_false(ig_ymap_get(d->root, "d")->plain_null);
	assert_false(ig_ymap_get(d->root, "e")->plain_null);
	assert_string_equal(ig_ymap_get(d->root, "e")->scalar, "null");
	ig_ydoc_free(d);
}

static void test_bad_indentation_reports_exact_position(void **state)
{
	const char *m = load_bad("agent:\n  aggregator: x\n   bad: 1\n", -EINVAL);

	assert_string_equal(m, "t.yaml:3:7: YAML syntax error: mapping values are not allowed "
			       "in this context\n");
}

static void test_unclosed_quote_names_where_it_started(void **state)
{
	const char *m = load_bad("agent:\n  aggregator: \"unclosed\n  log_level: info\n", -EINVAL);

	assert_string_equal(m, "t.yaml:4:1: YAML syntax error: found unexpected end of stream "
			       "(while scanning a quoted scalar at line 2)\n");
}

static void test_tab_indentation_is_a_positioned_syntax_error(void **state)
{
	const char *m = load_bad("agent:\n\tlog_level: info\n", -EINVAL);

	assert_string_equal(m, "t.yaml:2:1: YAML syntax error: found character that cannot "
			       "start any token (while scanning for the next token at line 2)\n");
}

static void test_invalid_utf8_is_positioned(void **state)
{
	const char *m = load_bad("a: ok\nb: \xff\n", -EINVAL);

	assert_has(m, "t.yaml:2:4: YAML syntax error: invalid leading UTF-8 octet");
}

static void test_duplicate_key_names_both_positions(void **state)
{
	const char *m = load_bad("agent:\n  log_level: info\n  log_level: debug\n", -EINVAL);

	assert_string_equal(m, "t.yaml:3:3: duplicate key 'log_level' (first defined at line 2, "
			       "column 3); remove one of them\n");
	m = load_bad("a: 1\nb: 2\na: 3\n", -EINVAL);
	assert_has(m, "t.yaml:3:1: duplicate key 'a'");
}

static void test_empty_input_is_a_clear_error(void **state)
{
	assert_has(load_bad("", -EINVAL), "t.yaml:1:1: the configuration is empty");
	assert_has(load_bad("# nothing but a comment\n\n", -EINVAL),
		   "t.yaml:1:1: the configuration is empty");
	assert_has(load_bad("---\n", -EINVAL), "the configuration is empty");
}

static void test_multiple_documents_are_rejected(void **state)
{
	assert_string_equal(load_bad("a: 1\n---\nb: 2\n", -EINVAL),
			    "t.yaml:2:1: more than one YAML document ('---'); put the whole "
			    "configuration in one document\n");
}

static void test_root_must_be_a_mapping(void **state)
{
	assert_has(load_bad("- a\n- b\n", -EINVAL),
		   "t.yaml:1:1: the configuration must be a YAML mapping of sections (agent:, "
		   "probes:, ...), not a sequence");
	assert_has(load_bad("just a string\n", -EINVAL), "not a scalar");
}

static void test_non_scalar_keys_are_rejected(void **state)
{
	assert_string_equal(load_bad("{[a]: 1}\n", -EINVAL),
			    "t.yaml:1:2: a mapping key must be a plain string, not a sequence\n");
	assert_has(load_bad("? {x: 1}\n: v\n", -EINVAL),
		   "a mapping key must be a plain string, not a mapping");
}

static void test_aliases_are_copied(void **state)
{
	struct ig_ydoc *d = load_ok("base: &b {x: 1, l: [p, q]}\nother: *b\nname: &n hello\n"
				    "again: *n\n");
	const struct ig_ynode *o = ig_ymap_get(d->root, "other");

	assert_non_null(o);
	assert_int_equal(o->type, IG_Y_MAP);
	assert_string_equal(ig_ymap_get(o, "x")->scalar, "1");
	assert_string_equal(ig_ymap_get(o, "l")->items[1]->scalar, "q");
	/* A copy, not a shared node: each parent owns its children. */
	assert_ptr_not_equal(o, ig_ymap_get(d->root, "base"));
	assert_string_equal(ig_ymap_get(d->root, "again")->scalar, "hello");
	ig_ydoc_free(d);
}

static void test_alias_bomb_is_refused(void **state)
{
	const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
			   "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
			   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
			   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
			   "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";

	assert_has(load_bad(bomb, -EINVAL), "document too large: more than 10000 nodes");
}

static void test_unknown_and_self_referencing_aliases_are_errors(void **state)
{
	assert_has(load_bad("a: *nope\n", -EINVAL), "t.yaml:1:4: unknown alias '*nope'");
	/* The anchor is not complete where it is used: no cycles. */
	assert_has(load_bad("a: &x [*x]\n", -EINVAL), "unknown alias '*x'");
}

static void test_nul_in_string_is_rejected(void **state)
{
	assert_string_equal(load_bad("a: \"x\\0y\"\n", -EINVAL),
			    "t.yaml:1:4: a string contains a NUL character ('\\0')\n");
}

static void test_deep_nesting_is_refused(void **state)
{
	char buf[512];
	int i, n = 0;

	n += sprintf(buf + n, "a: ");
	for (i = 0; i < 100; i++)
		buf[n++] = '[';
	for (i = 0; i < 100; i++)
		buf[n++] = ']';
	buf[n++] = '\n';
	buf[n] = '\0';
	assert_has(load_bad(buf, -EINVAL), "nesting deeper than 64 levels");
}

static void test_input_over_4mib_is_refused(void **state)
{
	size_t len = (4u << 20) + 1;
	char *big = malloc(len + 1);
	struct ig_ydoc *d = NULL;
	struct ig_err err;

	assert_non_null(big);
	memset(big, '#', len);
	big[len] = '\0';
	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_string("big.yaml", big, len, &d, &err), -EINVAL);
	assert_null(d);
	assert_has(ig_err_str(&err),
		   "big.yaml: configuration is 4194305 bytes; the limit is 4 MiB");
	free(big);
}

static void test_file_over_4mib_is_refused(void **state)
{
	char path[] = "/tmp/ig_test_yaml_XXXXXX";
	int fd = mkstemp(path);
	struct ig_ydoc *d = NULL;
	struct ig_err err;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (4 << 20) + 10), 0);
	close(fd);
	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_file(path, &d, &err), -EINVAL);
	assert_null(d);
	assert_has(ig_err_str(&err), "the limit is 4 MiB");
	unlink(path);
}

static void test_file_is_read_and_named_in_positions(void **state)
{
	char path[] = "/tmp/ig_test_yaml_XXXXXX";
	int fd = mkstemp(path);
	static const char text[] = "agent:\n  x: 1\n";
	struct ig_ydoc *d = NULL;
	struct ig_err err;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_file(path, &d, &err), 0);
	assert_string_equal(d->file, path);
	assert_string_equal(ig_ymap_get(ig_ymap_get(d->root, "agent"), "x")->file, path);
	ig_ydoc_free(d);
	unlink(path);
}

static void test_missing_file_is_enoent_naming_the_path(void **state)
{
	struct ig_ydoc *d = (struct ig_ydoc *)1;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_file("/nonexistent/ingrain.yaml", &d, &err), -ENOENT);
	assert_null(d);
	assert_has(ig_err_str(&err), "/nonexistent/ingrain.yaml: cannot open the configuration "
				     "file: No such file or directory");
}

static void test_directory_is_not_a_config_file(void **state)
{
	struct ig_ydoc *d = NULL;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_file("/tmp", &d, &err), -EINVAL);
	assert_has(ig_err_str(&err), "/tmp: not a regular file");
}

static void test_type_names_read_as_phrases(void **state)
{
	assert_string_equal(ig_ynode_type_name(IG_Y_SCALAR), "a scalar");
	assert_string_equal(ig_ynode_type_name(IG_Y_SEQ), "a sequence");
	assert_string_equal(ig_ynode_type_name(IG_Y_MAP), "a mapping");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodes_carry_one_based_positions),
		cmocka_unit_test(test_null_scalars_are_marked_but_quoted_empty_is_not),
		cmocka_unit_test(test_bad_indentation_reports_exact_position),
		cmocka_unit_test(test_unclosed_quote_names_where_it_started),
		cmocka_unit_test(test_tab_indentation_is_a_positioned_syntax_error),
		cmocka_unit_test(test_invalid_utf8_is_positioned),
		cmocka_unit_test(test_duplicate_key_names_both_positions),
		cmocka_unit_test(test_empty_input_is_a_clear_error),
		cmocka_unit_test(test_multiple_documents_are_rejected),
		cmocka_unit_test(test_root_must_be_a_mapping),
		cmocka_unit_test(test_non_scalar_keys_are_rejected),
		cmocka_unit_test(test_aliases_are_copied),
		cmocka_unit_test(test_alias_bomb_is_refused),
		cmocka_unit_test(test_unknown_and_self_referencing_aliases_are_errors),
		cmocka_unit_test(test_nul_in_string_is_rejected),
		cmocka_unit_test(test_deep_nesting_is_refused),
		cmocka_unit_test(test_input_over_4mib_is_refused),
		cmocka_unit_test(test_file_over_4mib_is_refused),
		cmocka_unit_test(test_file_is_read_and_named_in_positions),
		cmocka_unit_test(test_missing_file_is_enoent_naming_the_path),
		cmocka_unit_test(test_directory_is_not_a_config_file),
		cmocka_unit_test(test_type_names_read_as_phrases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
