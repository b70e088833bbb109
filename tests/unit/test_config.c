/* ig_config (option tables) and ig_conf (ingrain's schema): every option
 * type with good and bad values and bounds, defaults, unknown keys with
 * positions and suggestions, several errors reported at once, probe rules,
 * the embedded default, file errors. Run under -DIG_SANITIZE=ON to check
 * that every string is freed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ig_conf.h"
#include "ig_config.h"
#include "ig_log.h"
#include "ig_yaml.h"

#define FIXTURES IG_SOURCE_DIR "/tests/fixtures/config/"
#define MS 1000000ULL
#define SEC (1000 * MS)

#define assert_has(hay, needle)                                             \
	do {                                                                \
		if (!strstr((hay), (needle)))                               \
			fail_msg("expected '%s' in:\n%s", (needle), (hay)); \
	} while (0)

/* ---- ig_config with a table exercising every type ---- */

struct tconf {
	char *name;
	char *nodef;
	bool on;
	int64_t delta;
	uint64_t count;
	uint64_t wait_ns;
	uint64_t size;
	int mode;
	struct ig_strlist tags;
	const struct ig_ynode *extra;
};

static const char *const modes[] = { "fast", "safe", "off", NULL };

#define T(f) offsetof(struct tconf, f)
static const struct ig_opt topts[] = {
	{ "name", IG_OPT_STR, "anon", T(name), "A name.", .flags = 0 },
	{ "nodef", IG_OPT_STR, NULL, T(nodef), "No default.", .flags = 0 },
	{ "on", IG_OPT_BOOL, "yes", T(on), "A switch.", .flags = 0 },
	{ "delta", IG_OPT_INT, "-3", T(delta), "Signed.", .min = -10, .max = 10 },
	{ "count", IG_OPT_UINT, "5", T(count), "Unsigned.", .min = 1, .max = 100 },
	{ "wait", IG_OPT_DURATION, "250ms", T(wait_ns), "A duration.", .min = (int64_t)MS,
	  .max = (int64_t)(60 * SEC) },
	{ "size", IG_OPT_SIZE, "4KiB", T(size), "A size.", .min = 1024, .max = 1 << 30 },
	{ "mode", IG_OPT_ENUM, "safe", T(mode), "A | choice.", .choices = modes },
	{ "tags", IG_OPT_STRLIST, "[a, b]", T(tags), "Strings.", .flags = 0 },
	{ "extra", IG_OPT_NODE, NULL, T(extra), "Anything.", .doc_type = "mapping" },
	{ 0 }
};

static const struct ig_opt treq[] = { { "must", IG_OPT_STR, NULL, 0, "Required.",
					.flags = IG_OPTF_REQUIRED },
				      { 0 } };

struct applied {
	struct ig_ydoc *doc;
	struct tconf c;
	struct ig_err err;
	int rc;
};

/* Applies topts to the mapping under "sec:" in yaml ("sec:" absent: NULL map). */
static void apply(struct applied *a, const char *yaml, const char *const *ignore)
{
	struct ig_err perr;

	memset(a, 0, sizeof(*a));
	ig_err_init(&perr);
	ig_err_init(&a->err);
	if (ig_ydoc_load_string("t.yaml", yaml, strlen(yaml), &a->doc, &perr) < 0)
		fail_msg("fixture does not parse: %s", ig_err_str(&perr));
	a->rc = ig_cfg_apply(topts, ig_ymap_get(a->doc->root, "sec"), &a->c, "sec", ignore,
			     &a->err);
}

static void applied_free(struct applied *a)
{
	ig_cfg_free(topts, &a->c);
	ig_ydoc_free(a->doc);
}

/* Expects exactly one error message (with its newline). */
static void expect_one(const char *yaml, const char *msg)
{
	struct applied a;
	char want[1024];

	apply(&a, yaml, NULL);
	snprintf(want, sizeof(want), "%s\n", msg);
	assert_int_equal(a.rc, -EINVAL);
	assert_string_equal(ig_err_str(&a.err), want);
	assert_int_equal(a.err.n, 1);
	applied_free(&a);
}

static void test_absent_section_takes_every_default(void **state)
{
	struct applied a;

	apply(&a, "other: 1\n", NULL);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.c.name, "anon");
	assert_null(a.c.nodef);
	assert_true(a.c.on);
	assert_int_equal(a.c.delta, -3);
	assert_int_equal(a.c.count, 5);
	assert_int_equal(a.c.wait_ns, 250 * MS);
	assert_int_equal(a.c.size, 4096);
	assert_int_equal(a.c.mode, 1);
	assert_int_equal(a.c.tags.n, 2);
	assert_string_equal(a.c.tags.v[0], "a");
	assert_string_equal(a.c.tags.v[1], "b");
	assert_null(a.c.extra);
	assert_int_equal(a.err.n, 0);
	applied_free(&a);
}

static void test_null_values_and_empty_section_take_defaults(void **state)
{
	struct applied a;

	apply(&a, "sec:\n", NULL);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.c.name, "anon");
	applied_free(&a);

	apply(&a, "sec:\n  name:\n  count: ~\n  tags:\n  extra:\n", NULL);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.c.name, "anon");
	assert_null(a.c.extra);
	assert_int_equal(a.c.count, 5);
	assert_int_equal(a.c.tags.n, 2);
	applied_free(&a);
}

static void test_every_type_accepts_good_values(void **state)
{
	struct applied a;

	apply(&a,
	      "sec:\n  name: \"x y\"\n  nodef: set\n  on: Off\n  delta: -10\n  count: 100\n"
	      "  wait: 1m\n  size: 1GiB\n  mode: FAST\n  tags: []\n  extra: {k: v}\n",
	      NULL);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.c.name, "x y");
	assert_string_equal(a.c.nodef, "set");
	assert_false(a.c.on);
	assert_int_equal(a.c.delta, -10);
	assert_int_equal(a.c.count, 100);
	assert_int_equal(a.c.wait_ns, 60 * SEC);
	assert_int_equal(a.c.size, 1ULL << 30);
	assert_int_equal(a.c.mode, 0);
	assert_int_equal(a.c.tags.n, 0);
	assert_non_null(a.c.extra);
	assert_int_equal(a.c.extra->type, IG_Y_MAP);
	assert_string_equal(ig_ymap_get(a.c.extra, "k")->scalar, "v");
	applied_free(&a);
}

static void test_booleans_accept_yaml_spellings(void **state)
{
	static const char *const t[] = { "true", "True", "yes", "on", "ON" };
	static const char *const f[] = { "false", "FALSE", "no", "off", "Off" };
	char yaml[64];
	struct applied a;
	size_t i;

	for (i = 0; i < 5; i++) {
		snprintf(yaml, sizeof(yaml), "sec: {on: %s}\n", t[i]);
		apply(&a, yaml, NULL);
		assert_int_equal(a.rc, 0);
		assert_true(a.c.on);
		applied_free(&a);
		snprintf(yaml, sizeof(yaml), "sec: {on: %s}\n", f[i]);
		apply(&a, yaml, NULL);
		assert_int_equal(a.rc, 0);
		assert_false(a.c.on);
		applied_free(&a);
	}
}

static void test_bad_bool_names_the_accepted_spellings(void **state)
{
	expect_one(
		"sec:\n  on: maybe\n",
		"t.yaml:2:7: sec.on: expected a boolean (true/false, yes/no, on/off); got 'maybe'");
	expect_one("sec:\n  on: 1\n",
		   "t.yaml:2:7: sec.on: expected a boolean (true/false, yes/no, on/off); got '1'");
}

static void test_bad_duration_shows_examples(void **state)
{
	expect_one("sec:\n  wait: fast\n",
		   "t.yaml:2:9: sec.wait: expected a duration like 250ms, 10s, 5m; got 'fast'");
	expect_one("sec:\n  wait: -5s\n",
		   "t.yaml:2:9: sec.wait: expected a duration like 250ms, 10s, 5m; got '-5s'");
	expect_one("sec:\n  wait: [1s]\n",
		   "t.yaml:2:9: sec.wait: expected a duration like 250ms, 10s, 5m; got a sequence");
}

static void test_duration_bounds_are_shown_in_units(void **state)
{
	expect_one("sec:\n  wait: 2m\n",
		   "t.yaml:2:9: sec.wait: must be between 1ms and 1m; got 2m");
	expect_one("sec:\n  wait: 500us\n",
		   "t.yaml:2:9: sec.wait: must be between 1ms and 1m; got 500us");
}

static void test_bad_size_shows_examples_and_bounds(void **state)
{
	expect_one("sec:\n  size: big\n",
		   "t.yaml:2:9: sec.size: expected a size like 512, 64KiB, 4MiB, 1GiB; got 'big'");
	expect_one("sec:\n  size: 2GiB\n",
		   "t.yaml:2:9: sec.size: must be between 1KiB and 1GiB; got 2GiB");
	expect_one("sec:\n  size: 100\n",
		   "t.yaml:2:9: sec.size: must be between 1KiB and 1GiB; got 100");
	expect_one("sec:\n  size: 99999999999999999999\n",
		   "t.yaml:2:9: sec.size: '99999999999999999999' is too large");
}

static void test_integers_check_type_and_bounds(void **state)
{
	expect_one("sec:\n  count: 0\n",
		   "t.yaml:2:10: sec.count: must be between 1 and 100; got 0");
	expect_one("sec:\n  count: 101\n",
		   "t.yaml:2:10: sec.count: must be between 1 and 100; got 101");
	expect_one("sec:\n  count: -1\n",
		   "t.yaml:2:10: sec.count: expected a non-negative integer; got '-1'");
	expect_one("sec:\n  count: 5x\n",
		   "t.yaml:2:10: sec.count: expected a non-negative integer; got '5x'");
	expect_one("sec:\n  count: 99999999999999999999\n",
		   "t.yaml:2:10: sec.count: '99999999999999999999' is out of range for a 64-bit "
		   "integer");
	expect_one("sec:\n  delta: -11\n",
		   "t.yaml:2:10: sec.delta: must be between -10 and 10; got -11");
	expect_one("sec:\n  delta: 1.5\n",
		   "t.yaml:2:10: sec.delta: expected an integer; got '1.5'");
	expect_one("sec:\n  delta: \"\"\n", "t.yaml:2:10: sec.delta: expected an integer; got ''");
}

static void test_bad_enum_lists_choices_and_suggests(void **state)
{
	expect_one("sec:\n  mode: saef\n",
		   "t.yaml:2:9: sec.mode: expected one of fast, safe, off; got 'saef' (did you "
		   "mean 'safe'?)");
	expect_one("sec:\n  mode: turbo\n",
		   "t.yaml:2:9: sec.mode: expected one of fast, safe, off; got 'turbo'");
	/* Booleans only map onto enums that offer on/off. */
	expect_one("sec:\n  mode: yes\n",
		   "t.yaml:2:9: sec.mode: expected one of fast, safe, off; got 'yes'");
	expect_one("sec:\n  mode: {a: 1}\n",
		   "t.yaml:2:9: sec.mode: expected one of fast, safe, off; got a mapping");
}

static void test_strings_and_lists_reject_wrong_shapes(void **state)
{
	expect_one("sec:\n  name: [a]\n",
		   "t.yaml:2:9: sec.name: expected a string; got a sequence");
	expect_one("sec:\n  tags: a\n",
		   "t.yaml:2:9: sec.tags: expected a list of strings like [a, b]; got 'a'");
	expect_one("sec:\n  tags: [a, [b], c]\n",
		   "t.yaml:2:13: sec.tags: item 2: expected a string; got a sequence");
}

static void test_unknown_key_suggests_closest(void **state)
{
	expect_one("sec:\n  nmae: x\n", "t.yaml:2:3: sec.nmae: unknown key (did you mean 'name'?)");
	expect_one("sec:\n  coutn: 1\n",
		   "t.yaml:2:3: sec.coutn: unknown key (did you mean 'count'?)");
}

static void test_unknown_key_without_close_match_lists_valid_keys(void **state)
{
	expect_one("sec:\n  zzzzzz: 1\n",
		   "t.yaml:2:3: sec.zzzzzz: unknown key (valid keys: name, nodef, on, delta, "
		   "count, wait, size, mode, tags, extra)");
}

static void test_ignored_keys_are_accepted(void **state)
{
	static const char *const ignore[] = { "type", NULL };
	struct applied a;

	apply(&a, "sec:\n  type: console\n  name: n\n", ignore);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.c.name, "n");
	applied_free(&a);
	/* ... and offered as suggestions. */
	apply(&a, "sec:\n  tpye: console\n", ignore);
	assert_int_equal(a.rc, -EINVAL);
	assert_has(ig_err_str(&a.err), "sec.tpye: unknown key (did you mean 'type'?)");
	applied_free(&a);
}

static void test_section_that_is_not_a_mapping_is_an_error(void **state)
{
	expect_one("sec: [a, b]\n",
		   "t.yaml:1:6: sec: expected a mapping of options (key: value); got a sequence");
	expect_one("sec: word\n",
		   "t.yaml:1:6: sec: expected a mapping of options (key: value); got a scalar");
}

static void test_all_problems_are_reported_at_once(void **state)
{
	struct applied a;

	apply(&a,
	      "sec:\n  nmae: x\n  on: maybe\n  count: 0\n  wait: soon\n  mode: x\n  tags: [[1]]\n",
	      NULL);
	assert_int_equal(a.rc, -EINVAL);
	assert_int_equal(a.err.n, 6);
	assert_has(ig_err_str(&a.err), "t.yaml:2:3: sec.nmae: unknown key");
	assert_has(ig_err_str(&a.err), "t.yaml:3:7: sec.on:");
	assert_has(ig_err_str(&a.err), "t.yaml:4:10: sec.count:");
	assert_has(ig_err_str(&a.err), "t.yaml:5:9: sec.wait:");
	assert_has(ig_err_str(&a.err), "t.yaml:6:9: sec.mode:");
	assert_has(ig_err_str(&a.err), "t.yaml:7:10: sec.tags: item 1");
	/* Fields that did parse are set, and ig_cfg_free releases them. */
	assert_string_equal(a.c.name, "anon");
	applied_free(&a);
}

static void test_required_option_missing_is_reported(void **state)
{
	struct ig_ydoc *d = NULL;
	struct ig_err err;
	char *must = (char *)"garbage"; /* ig_cfg_apply zeroes table fields first */

	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_string("t.yaml", "sec:\n  x: 1\n", 12, &d, &err), 0);
	ig_err_init(&err);
	/* The unknown key and the missing one are both reported. */
	static const char *const ignore[] = { "x", NULL };
	assert_int_equal(
		ig_cfg_apply(treq, ig_ymap_get(d->root, "sec"), &must, "sec", ignore, &err),
		-EINVAL);
	assert_null(must);
	assert_string_equal(
		ig_err_str(&err),
		"t.yaml:2:3: sec.must: required option missing; add 'must: <a string>'\n");
	ig_err_init(&err);
	assert_int_equal(ig_cfg_apply(treq, NULL, &must, "top", NULL, &err), -EINVAL);
	assert_string_equal(ig_err_str(&err),
			    "top.must: required option missing; add 'must: <a string>'\n");
	ig_cfg_free(treq, &must);
	ig_ydoc_free(d);
}

static void test_invalid_default_is_reported_as_internal_error(void **state)
{
	static const struct ig_opt bad[] = {
		{ "n", IG_OPT_UINT, "lots", 0, "Broken default.", .flags = 0 },
		{ 0 },
	};
	uint64_t v = 0;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_cfg_apply(bad, NULL, &v, "x", NULL, &err), -EINVAL);
	assert_has(ig_err_str(&err), "internal error: the default of x.n is invalid");
}

static void test_errors_with_null_err_still_fail(void **state)
{
	struct ig_ydoc *d = NULL;
	struct tconf c;

	assert_int_equal(ig_ydoc_load_string("t", "sec: {count: 0}\n", 16, &d, NULL), 0);
	assert_int_equal(ig_cfg_apply(topts, ig_ymap_get(d->root, "sec"), &c, "sec", NULL, NULL),
			 -EINVAL);
	ig_cfg_free(topts, &c);
	ig_ydoc_free(d);
}

static void test_parse_duration_units_and_fractions(void **state)
{
	uint64_t v;

	assert_int_equal(ig_parse_duration("250ms", &v), 0);
	assert_int_equal(v, 250 * MS);
	assert_int_equal(ig_parse_duration("10", &v), 0);
	assert_int_equal(v, 10 * SEC);
	assert_int_equal(ig_parse_duration("1.5s", &v), 0);
	assert_int_equal(v, 1500 * MS);
	assert_int_equal(ig_parse_duration("0.5", &v), 0);
	assert_int_equal(v, 500 * MS);
	assert_int_equal(ig_parse_duration("5m", &v), 0);
	assert_int_equal(v, 300 * SEC);
	assert_int_equal(ig_parse_duration("1h", &v), 0);
	assert_int_equal(v, 3600 * SEC);
	assert_int_equal(ig_parse_duration("7us", &v), 0);
	assert_int_equal(v, 7000);
	assert_int_equal(ig_parse_duration("3ns", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(ig_parse_duration("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ig_parse_duration("", &v), -EINVAL);
	assert_int_equal(ig_parse_duration(NULL, &v), -EINVAL);
	assert_int_equal(ig_parse_duration("s", &v), -EINVAL);
	assert_int_equal(ig_parse_duration("5x", &v), -EINVAL);
	assert_int_equal(ig_parse_duration("1.s", &v), -EINVAL);
	assert_int_equal(ig_parse_duration("-1s", &v), -EINVAL);
	assert_int_equal(ig_parse_duration("5 s", &v), 0);
	assert_int_equal(ig_parse_duration("99999999999h", &v), -ERANGE);
}

static void test_parse_size_binary_and_decimal_units(void **state)
{
	uint64_t v;

	assert_int_equal(ig_parse_size("512", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(ig_parse_size("64KiB", &v), 0);
	assert_int_equal(v, 64 * 1024);
	assert_int_equal(ig_parse_size("4MiB", &v), 0);
	assert_int_equal(v, 4 << 20);
	assert_int_equal(ig_parse_size("1GiB", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(ig_parse_size("1k", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(ig_parse_size("2MB", &v), 0);
	assert_int_equal(v, 2000000);
	assert_int_equal(ig_parse_size("1.5KiB", &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(ig_parse_size("16Mi", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(ig_parse_size("", &v), -EINVAL);
	assert_int_equal(ig_parse_size("KiB", &v), -EINVAL);
	assert_int_equal(ig_parse_size("4 parsecs", &v), -EINVAL);
	assert_int_equal(ig_parse_size("-1", &v), -EINVAL);
	assert_int_equal(ig_parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(ig_parse_size("17179869184GiB", &v), -ERANGE);
}

static void test_did_you_mean_distance_rules(void **state)
{
	static const char *const c[] = { "address",	 "aggregator", "log_level",
					 "monitor_dirs", "on",	       "tls" };
	const size_t n = sizeof(c) / sizeof(c[0]);

	assert_string_equal(ig_did_you_mean("adress", c, n), "address");
	assert_string_equal(ig_did_you_mean("agregator", c, n), "aggregator");
	assert_string_equal(ig_did_you_mean("log_lveel", c, n), "log_level"); /* transposition */
	assert_string_equal(ig_did_you_mean("LOG_LEVEL", c, n), "log_level");
	assert_string_equal(ig_did_you_mean("monitor", c, n), "monitor_dirs"); /* prefix */
	assert_string_equal(ig_did_you_mean("tsl", c, n), "tls");
	/* Short words allow one edit only. */
	assert_null(ig_did_you_mean("xy", c, n));
	assert_null(ig_did_you_mean("tx", c, n) ? "tls?" : NULL);
	assert_null(ig_did_you_mean("zzzzzzzz", c, n));
	assert_null(ig_did_you_mean("", c, n));
	assert_null(ig_did_you_mean("x", NULL, 0));
}

static void test_ynode_pos_formats_file_line_col(void **state)
{
	struct ig_ynode n = { .type = IG_Y_SCALAR, .file = "f.yaml", .line = 3, .col = 7 };
	char buf[64];

	assert_string_equal(ig_ynode_pos(&n, buf, sizeof(buf)), "f.yaml:3:7");
	assert_string_equal(ig_ynode_pos(NULL, buf, sizeof(buf)), "<unknown>");
}

static char *capture(void (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return buf;
}

static void doc_topts(FILE *f, void *arg)
{
	ig_cfg_doc(f, "`sec`", "The test section.", topts);
}

static void test_cfg_doc_prints_a_markdown_table(void **state)
{
	char *s = capture(doc_topts, NULL);

	assert_has(s,
		   "### `sec`\n\nThe test section.\n\n| Option | Type | Default | Description |\n"
		   "|---|---|---|---|\n");
	assert_has(s, "| `wait` | duration | `250ms` | A duration. Range: 1ms to 1m. |\n");
	assert_has(s, "| `mode` | `fast` \\| `safe` \\| `off` | `safe` | A \\| choice. |\n");
	assert_has(s, "| `nodef` | string | (none) | No default. |\n");
	assert_has(s, "| `extra` | mapping | (none) | Anything. |\n");
	assert_has(s, "| `size` | size | `4KiB` | A size. Range: 1KiB to 1GiB. |\n");
	free(s);
}

/* ---- ig_conf: the ingrain schema ---- */

static struct ig_conf *conf_ok(const char *yaml)
{
	struct ig_conf *c = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_conf_load_string("c.yaml", yaml, strlen(yaml), &c, &err) != 0)
		fail_msg("unexpected error:\n%s", ig_err_str(&err));
	assert_non_null(c);
	return c;
}

static const char *conf_bad(const char *yaml)
{
	static struct ig_err err;
	struct ig_conf *c = (struct ig_conf *)1;

	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("c.yaml", yaml, strlen(yaml), &c, &err), -EINVAL);
	assert_null(c);
	return ig_err_str(&err);
}

static void test_embedded_default_config_loads(void **state)
{
	struct ig_conf *c = NULL;
	struct ig_err err;
	const struct ig_files_conf *f;

	ig_err_init(&err);
	assert_int_equal(ig_conf_load(NULL, &c, &err), 0);
	assert_string_equal(ig_err_str(&err), "");
	assert_string_equal(c->source, "<default>");
	/* The quick start's loopback plaintext, chosen explicitly. */
	assert_string_equal(c->agent.aggregator, "tcp://127.0.0.1:7700");
	assert_true(c->agent.plaintext);
	assert_true(c->aggregator.plaintext);
	assert_int_equal(c->agent.batch_max_records, 512);
	assert_int_equal(c->agent.batch_max_age_ns, 200 * MS);
	assert_int_equal(c->agent.queue_max_batches, 4096);
	assert_int_equal(c->agent.queue_max_bytes, 256ULL << 20);
	assert_int_equal(c->agent.ack_timeout_ns, 5 * SEC);
	assert_int_equal(c->agent.log_level, IG_LOG_INFO);
	assert_int_equal(c->agent.log_format, IG_LOG_LOGFMT);
	assert_string_equal(c->aggregator.listen, "tcp://127.0.0.1:7700");
	assert_string_equal(c->aggregator.state_dir, "/var/lib/ingrain");
	f = c->probes[IG_PROBE_FILES];
	assert_non_null(f);
	assert_true(f->c.enabled);
	assert_int_equal(f->monitor_dirs.n, 1);
	assert_string_equal(f->monitor_dirs.v[0], "/etc");
	assert_int_equal(f->c.pipelines.n, 1);
	assert_string_equal(f->c.pipelines.v[0], "live");
	assert_ptr_equal(ig_conf_probe_common(c, IG_PROBE_FILES), &f->c);
	assert_non_null(c->pipelines);
	assert_non_null(ig_ymap_get(c->pipelines, "live"));
	assert_non_null(c->backends);
	assert_non_null(ig_ymap_get(c->backends, "console"));
	ig_conf_free(c);
}

static void test_absent_sections_take_production_defaults(void **state)
{
	struct ig_conf *c;

	setenv("NODE_NAME", "worker-3", 1);
	c = conf_ok("agent: {}\n");
	assert_string_equal(c->source, "c.yaml");
	assert_string_equal(c->agent.node_name, "worker-3");
	assert_string_equal(c->agent.agent_id, "worker-3");
	assert_string_equal(c->agent.aggregator, "tls+tcp://127.0.0.1:7700");
	assert_string_equal(c->agent.tls_dir, "/etc/ingrain/tls");
	assert_false(c->agent.plaintext);
	assert_string_equal(c->aggregator.listen, "tls+tcp://127.0.0.1:7700");
	assert_int_equal(c->aggregator.max_agents, 8192);
	assert_int_equal(c->agent.reconnect_min_ns, 100 * MS);
	assert_int_equal(c->agent.reconnect_max_ns, 5 * SEC);
	assert_int_equal(c->agent.ringbuf_bytes, 8ULL << 20);
	assert_int_equal(c->agent.wakeup_records, 64);
	assert_int_equal(c->agent.poll_interval_ns, 100 * MS);
	assert_int_equal(c->agent.shutdown_timeout_ns, 5 * SEC);
	assert_true(c->agent.mount_tracefs);
	assert_true(c->agent.mount_bpffs);
	assert_string_equal(c->agent.cgroup_root, "auto");
	assert_string_equal(c->agent.metrics_listen, "");
	assert_string_equal(c->aggregator.control, "ipc:///run/ingrain/control.sock");
	assert_string_equal(c->aggregator.state_dir, "/var/lib/ingrain");
	assert_int_equal(c->aggregator.max_msg_bytes, 16ULL << 20);
	assert_string_equal(c->aggregator.metrics_listen, "");
	assert_int_equal(c->kubernetes.enabled, 0);
	assert_string_equal(c->kubernetes.api_server, "");
	assert_string_equal(c->kubernetes.token_file,
			    "/var/run/secrets/kubernetes.io/serviceaccount/token");
	assert_string_equal(c->kubernetes.ca_file,
			    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
	assert_string_equal(c->kubernetes.kubeconfig, "");
	assert_int_equal(c->kubernetes.label_allowlist.n, 0);
	assert_int_equal(c->kubernetes.watch_timeout_ns, 300 * SEC);
	assert_int_equal(c->kubernetes.relist_backoff_max_ns, 30 * SEC);
	assert_int_equal(c->kubernetes.cgroup_rescan_ns, 30 * SEC);
	assert_int_equal(c->kubernetes.cache_max_entries, 65536);
	assert_null(c->probes[IG_PROBE_FILES]);
	assert_null(ig_conf_probe_common(c, IG_PROBE_FILES));
	assert_null(c->pipelines);
	assert_null(c->backends);
	ig_conf_free(c);
	unsetenv("NODE_NAME");
}

static void test_node_name_falls_back_to_hostname(void **state)
{
	char host[256];
	struct ig_conf *c;

	unsetenv("NODE_NAME");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	c = conf_ok("agent: {agent_id: a1}\n");
	assert_string_equal(c->agent.node_name, host);
	assert_string_equal(c->agent.agent_id, "a1");
	ig_conf_free(c);
}

static void test_fixture_with_every_option_set(void **state)
{
	struct ig_conf *c = NULL;
	struct ig_err err;
	const struct ig_files_conf *f;

	ig_err_init(&err);
	if (ig_conf_load(FIXTURES "full.yaml", &c, &err) != 0)
		fail_msg("%s", ig_err_str(&err));
	assert_string_equal(c->source, FIXTURES "full.yaml");
	assert_string_equal(c->agent.node_name, "node-a");
	assert_string_equal(c->agent.agent_id, "agent-7");
	assert_string_equal(c->agent.aggregator, "tcp://10.0.0.5:7701");
	assert_int_equal(c->agent.batch_max_records, 1000);
	assert_int_equal(c->agent.batch_max_age_ns, 1500 * MS);
	assert_int_equal(c->agent.queue_max_batches, 100);
	assert_int_equal(c->agent.queue_max_bytes, 64ULL << 20);
	assert_int_equal(c->agent.ack_timeout_ns, 30 * SEC);
	assert_int_equal(c->agent.reconnect_min_ns, 50 * MS);
	assert_int_equal(c->agent.reconnect_max_ns, 60 * SEC);
	assert_int_equal(c->agent.ringbuf_bytes, 16ULL << 20);
	assert_int_equal(c->agent.wakeup_records, 1);
	assert_int_equal(c->agent.poll_interval_ns, 250 * MS);
	assert_int_equal(c->agent.shutdown_timeout_ns, 0);
	assert_false(c->agent.mount_tracefs);
	assert_false(c->agent.mount_bpffs);
	assert_string_equal(c->agent.cgroup_root, "/sys/fs/cgroup/unified");
	assert_int_equal(c->agent.log_level, IG_LOG_DEBUG);
	assert_int_equal(c->agent.log_format, IG_LOG_JSON);
	assert_string_equal(c->agent.metrics_listen, "0.0.0.0:9464");
	assert_int_equal(c->kubernetes.enabled, 2);
	assert_string_equal(c->kubernetes.api_server, "https://10.96.0.1:443");
	assert_string_equal(c->kubernetes.token_file, "/tmp/token");
	assert_string_equal(c->kubernetes.ca_file, "/tmp/ca.crt");
	assert_string_equal(c->kubernetes.kubeconfig, "/root/.kube/config");
	assert_int_equal(c->kubernetes.label_allowlist.n, 2);
	assert_string_equal(c->kubernetes.label_allowlist.v[1], "team");
	assert_int_equal(c->kubernetes.watch_timeout_ns, 600 * SEC);
	assert_int_equal(c->kubernetes.relist_backoff_max_ns, 60 * SEC);
	assert_int_equal(c->kubernetes.cgroup_rescan_ns, 10 * SEC);
	assert_int_equal(c->kubernetes.cache_max_entries, 1024);
	assert_string_equal(c->aggregator.listen, "ipc:///tmp/ingrain.sock");
	assert_string_equal(c->aggregator.control, "ipc:///tmp/control.sock");
	assert_string_equal(c->aggregator.state_dir, "/tmp/ingrain-state");
	assert_int_equal(c->aggregator.max_msg_bytes, 1ULL << 20);
	assert_int_equal(c->aggregator.log_level, IG_LOG_WARN);
	assert_int_equal(c->aggregator.log_format, IG_LOG_JSON);
	assert_string_equal(c->aggregator.metrics_listen, "127.0.0.1:9465");
	f = c->probes[IG_PROBE_FILES];
	assert_false(f->c.enabled);
	assert_int_equal(f->c.pipelines.n, 2);
	assert_string_equal(f->c.pipelines.v[1], "audit");
	assert_int_equal(f->monitor_dirs.n, 2);
	assert_string_equal(f->monitor_dirs.v[0], "/etc");
	assert_string_equal(f->monitor_dirs.v[1], "/var/lib/kubelet");
	assert_false(f->include_failed);
	ig_conf_free(c);
}

static void test_fixture_typos_are_all_reported_with_positions(void **state)
{
	struct ig_conf *c = (struct ig_conf *)1;
	struct ig_err err;
	const char *p = FIXTURES "typo.yaml";
	char want[512];

	ig_err_init(&err);
	assert_int_equal(ig_conf_load(p, &c, &err), -EINVAL);
	assert_null(c);
	/* The sixth: probes.files.pipelines names 'live', which the misspelt
	 * section leaves undefined. */
	assert_int_equal(err.n, 6);
	snprintf(want, sizeof(want),
		 "%s:11:1: pipeline: unknown section (did you mean 'pipelines'?)", p);
	assert_has(ig_err_str(&err), want);
	snprintf(want, sizeof(want),
		 "%s:2:3: agent.agregator: unknown key (did you mean 'aggregator'?)", p);
	assert_has(ig_err_str(&err), want);
	snprintf(
		want, sizeof(want),
		"%s:3:18: agent.batch_max_age: expected a duration like 250ms, 10s, 5m; got 'fast'",
		p);
	assert_has(ig_err_str(&err), want);
	snprintf(
		want, sizeof(want),
		"%s:4:14: agent.log_level: expected one of debug, info, warn, error; got 'verbose'",
		p);
	assert_has(ig_err_str(&err), want);
	snprintf(
		want, sizeof(want),
		"%s:8:20: probes.files.monitor_dirs: 'etc' must be an absolute path (start with '/')",
		p);
	assert_has(ig_err_str(&err), want);
}

static void test_fixture_broken_yaml_is_a_syntax_error(void **state)
{
	struct ig_conf *c = NULL;
	struct ig_err err;
	char want[512];

	ig_err_init(&err);
	assert_int_equal(ig_conf_load(FIXTURES "broken.yaml", &c, &err), -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:4:1: YAML syntax error: found unexpected end of stream (while scanning a "
		 "quoted scalar at line 2)\n",
		 FIXTURES "broken.yaml");
	assert_string_equal(ig_err_str(&err), want);
}

static void test_missing_file_is_enoent_with_path(void **state)
{
	struct ig_conf *c = (struct ig_conf *)1;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_conf_load("/nonexistent/dir/ingrain.yaml", &c, &err), -ENOENT);
	assert_null(c);
	assert_has(ig_err_str(&err), "/nonexistent/dir/ingrain.yaml: cannot open the "
				     "configuration file: No such file or directory");
}

static void test_empty_file_is_a_clear_error(void **state)
{
	assert_has(conf_bad(""), "c.yaml:1:1: the configuration is empty");
}

static void test_unknown_top_level_section(void **state)
{
	assert_string_equal(conf_bad("agnet: {}\n"),
			    "c.yaml:1:1: agnet: unknown section (did you mean 'agent'?)\n");
	assert_string_equal(conf_bad("x: 1\n"),
			    "c.yaml:1:1: x: unknown section (valid: agent, kubernetes, aggregator, "
			    "probes, pipelines, backends)\n");
}

static void test_agent_unknown_key_exact_position(void **state)
{
	assert_string_equal(conf_bad("agent:\n  log_level: info\n  agregator: tcp://a:1\n"),
			    "c.yaml:3:3: agent.agregator: unknown key (did you mean "
			    "'aggregator'?)\n");
}

static void test_agent_cross_field_rules(void **state)
{
	const char *m = conf_bad("agent: {reconnect_min: 10s, reconnect_max: 1s, ringbuf_bytes: "
				 "3MiB, aggregator: localhost, cgroup_root: sys/fs}\n");

	assert_has(m, "c.yaml:1:24: agent.reconnect_min: must not exceed reconnect_max");
	assert_has(m, "c.yaml:1:63: agent.ringbuf_bytes: must be a power of two");
	assert_has(m, "c.yaml:1:81: agent.aggregator: expected an nng URL like "
		      "tcp://127.0.0.1:7700 or ipc:///run/ingrain/sock; got 'localhost'");
	assert_has(m, "agent.cgroup_root: expected an absolute path (or auto); got 'sys/fs'");
}

static void test_aggregator_and_kubernetes_checks(void **state)
{
	const char *m = conf_bad("aggregator:\n  state_dir: var/lib\n  listen: nowhere\n"
				 "  max_msg_bytes: 1KiB\nkubernetes:\n  enabled: maybe\n"
				 "  api_server: 10.0.0.1\n  cache_max_entries: 1\n");

	assert_has(m,
		   "c.yaml:2:14: aggregator.state_dir: expected an absolute path; got 'var/lib'");
	assert_has(m, "c.yaml:3:11: aggregator.listen: expected an nng URL");
	assert_has(m, "c.yaml:4:18: aggregator.max_msg_bytes: must be between 64KiB and 1GiB");
	assert_has(m,
		   "c.yaml:6:12: kubernetes.enabled: expected one of auto, on, off; got 'maybe'");
	assert_has(m, "c.yaml:8:22: kubernetes.cache_max_entries: must be between 16 and 16777216");
	assert_has(m,
		   "c.yaml:7:15: kubernetes.api_server: expected a URL like https://10.0.0.1:443");
	assert_has(conf_bad("kubernetes: {api_server: 10.0.0.1}\n"),
		   "c.yaml:1:26: kubernetes.api_server: expected a URL like https://10.0.0.1:443; "
		   "got '10.0.0.1'");
}

static void test_empty_state_dir_and_control_mean_off(void **state)
{
	struct ig_conf *c = conf_ok("aggregator: {state_dir: \"\", control: \"\"}\n");

	assert_string_equal(c->aggregator.state_dir, "");
	assert_string_equal(c->aggregator.control, "");
	ig_conf_free(c);
}

static void test_kubernetes_enabled_is_an_enum(void **state)
{
	struct ig_conf *c = conf_ok("kubernetes: {enabled: on}\n");

	assert_int_equal(c->kubernetes.enabled, 1);
	ig_conf_free(c);
	/* Helm re-renders a bare on/off as true/false: both spellings work. */
	c = conf_ok("kubernetes: {enabled: true}\n");
	assert_int_equal(c->kubernetes.enabled, 1);
	ig_conf_free(c);
	c = conf_ok("kubernetes: {enabled: no}\n");
	assert_int_equal(c->kubernetes.enabled, 2);
	ig_conf_free(c);
	c = conf_ok("kubernetes: {enabled: auto, label_allowlist: [app]}\n");
	assert_int_equal(c->kubernetes.enabled, 0);
	assert_int_equal(c->kubernetes.label_allowlist.n, 1);
	ig_conf_free(c);
}

static void test_plaintext_needs_an_explicit_opt_in(void **state)
{
	const char *m = conf_bad("agent: {aggregator: \"tcp://a:1\"}\n");

	assert_has(m, "c.yaml:1:21: agent.aggregator: 'tcp://a:1' is plaintext");
	assert_has(conf_bad("aggregator: {listen: \"tcp://0.0.0.0:1\"}\n"),
		   "aggregator.listen: 'tcp://0.0.0.0:1' is plaintext");
	assert_has(conf_bad("agent: {aggregator: \"tls+tcp://a:1\", plaintext: true}\n"),
		   "agent.plaintext: true, but agent.aggregator is a tls+ URL");
	struct ig_conf *c = conf_ok("agent: {aggregator: \"tcp://a:1\", plaintext: true}\n");
	assert_true(c->agent.plaintext);
	ig_conf_free(c);
}

/* The wire carries node and agent_id as DNS names (and certificates as SANs):
 * the option table refuses what the aggregator would refuse, with a position. */
static void test_node_name_longer_than_a_dns_name_is_refused(void **state)
{
	char yaml[10000], name[9001];

	memset(name, 'n', 9000);
	name[9000] = '\0';
	snprintf(yaml, sizeof(yaml), "agent:\n  node_name: %s\n", name);
	assert_has(conf_bad(yaml), "c.yaml:2:14: agent.node_name: 9000 bytes long; at most 253");
	name[253] = '\0';
	snprintf(yaml, sizeof(yaml), "agent:\n  agent_id: %s\n", name);
	struct ig_conf *c = conf_ok(yaml);
	ig_conf_free(c);
	name[253] = 'n';
	name[254] = '\0';
	snprintf(yaml, sizeof(yaml), "agent:\n  agent_id: %s\n", name);
	assert_has(conf_bad(yaml), "agent.agent_id: 254 bytes long; at most 253");
}

/* A record carries at most IG_MAX_LABELS labels: a longer allowlist would
 * make the encoder drop records. */
static void test_label_allowlist_is_bounded_by_the_wire(void **state)
{
	assert_has(
		conf_bad("kubernetes:\n  label_allowlist: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n"),
		"c.yaml:2:20: kubernetes.label_allowlist: at most 16 entries; got 17");
	struct ig_conf *c =
		conf_ok("kubernetes:\n  label_allowlist: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p]\n");
	ig_conf_free(c);
}

/* The agent refuses a pipeline name the aggregator would refuse. */
static void test_probe_pipeline_must_be_defined(void **state)
{
	assert_has(conf_bad("probes:\n  files: {pipelines: [live, lve2]}\npipelines:\n"
			    "  live: {}\n  live2: {}\n"),
		   "c.yaml:2:29: probes.files.pipelines[1]: unknown pipeline 'lve2' (did you "
		   "mean 'live2'?); define it under 'pipelines:'");
	assert_has(conf_bad("probes:\n  files: {pipelines: [a, a]}\npipelines: {a: {}}\n"),
		   "probes.files.pipelines[1]: pipeline 'a' is listed twice");
}

static void test_monitor_dirs_are_normalised(void **state)
{
	struct ig_conf *c = conf_ok("probes:\n  files:\n    pipelines: [p]\n    monitor_dirs: "
				    "[\"/etc/\", \"//var//log/\", \"/\", \"/./x/.\", \"///\"]\n"
				    "pipelines: {p: {}}\n");
	const struct ig_files_conf *f = c->probes[IG_PROBE_FILES];

	assert_int_equal(f->monitor_dirs.n, 5);
	assert_string_equal(f->monitor_dirs.v[0], "/etc");
	assert_string_equal(f->monitor_dirs.v[1], "/var/log");
	assert_string_equal(f->monitor_dirs.v[2], "/");
	assert_string_equal(f->monitor_dirs.v[3], "/x");
	assert_string_equal(f->monitor_dirs.v[4], "/");
	assert_true(f->include_failed);
	ig_conf_free(c);
}

static void test_monitor_dirs_default_is_everything(void **state)
{
	struct ig_conf *c = conf_ok("probes:\n  files: {pipelines: [p]}\npipelines: {p: {}}\n");
	const struct ig_files_conf *f = c->probes[IG_PROBE_FILES];

	assert_int_equal(f->monitor_dirs.n, 1);
	assert_string_equal(f->monitor_dirs.v[0], "/");
	ig_conf_free(c);
}

static void test_monitor_dirs_bad_entries_are_rejected(void **state)
{
	const char *m = conf_bad("probes:\n  files:\n    pipelines: [p]\n    monitor_dirs: "
				 "[rel, /a/../b, \"\", /ok, /..]\n");

	assert_has(m, "c.yaml:4:20: probes.files.monitor_dirs: 'rel' must be an absolute path "
		      "(start with '/')");
	assert_has(m, "c.yaml:4:25: probes.files.monitor_dirs: '/a/../b' must not contain '..'");
	assert_has(m, "c.yaml:4:34: probes.files.monitor_dirs: '' is empty");
	assert_has(m, "c.yaml:4:43: probes.files.monitor_dirs: '/..' must not contain '..'");
	assert_has(conf_bad("probes:\n  files: {pipelines: [p], monitor_dirs: []}\n"),
		   "c.yaml:2:41: probes.files.monitor_dirs: empty; use [/] to watch everything");
}

static void test_monitor_dirs_limits(void **state)
{
	char yaml[4096], long_dir[300];
	int i, n;

	n = snprintf(yaml, sizeof(yaml),
		     "probes:\n  files:\n    pipelines: [p]\n    monitor_dirs: [");
	for (i = 0; i < 17; i++)
		n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "%s/d%d", i ? ", " : "", i);
	snprintf(yaml + n, sizeof(yaml) - (size_t)n, "]\n");
	assert_has(conf_bad(yaml), "c.yaml:4:19: probes.files.monitor_dirs: at most 16 "
				   "directories; got 17");

	/* 255 bytes is fine, 256 is not; trailing '/' does not count. */
	memset(long_dir, 'a', sizeof(long_dir));
	long_dir[0] = '/';
	long_dir[255] = '/';
	long_dir[256] = '\0';
	snprintf(yaml, sizeof(yaml),
		 "probes: {files: {pipelines: [p], monitor_dirs: [%s]}}\npipelines: {p: {}}\n",
		 long_dir);
	struct ig_conf *c = conf_ok(yaml);
	assert_int_equal(strlen(((struct ig_files_conf *)c->probes[0])->monitor_dirs.v[0]), 255);
	ig_conf_free(c);
	long_dir[255] = 'a';
	snprintf(yaml, sizeof(yaml), "probes: {files: {pipelines: [p], monitor_dirs: [%s]}}\n",
		 long_dir);
	assert_has(conf_bad(yaml), "is longer than 255 bytes");
}

static void test_enabled_probe_must_feed_a_pipeline(void **state)
{
	assert_string_equal(conf_bad("probes:\n  files:\n    enabled: true\n"),
			    "c.yaml:3:5: probes.files: enabled but feeds no pipeline; add "
			    "pipelines: [name]\n");
	assert_string_equal(conf_bad("probes:\n  files:\n"),
			    "c.yaml:2:3: probes.files: enabled but feeds no pipeline; add "
			    "pipelines: [name]\n");
	/* Disabled, it may feed nothing. */
	struct ig_conf *c = conf_ok("probes:\n  files: {enabled: false}\n");
	assert_false(ig_conf_probe_common(c, IG_PROBE_FILES)->enabled);
	ig_conf_free(c);
}

static void test_unknown_probe_kind_suggests(void **state)
{
	assert_string_equal(
		conf_bad("probes:\n  file: {}\n"),
		"c.yaml:2:3: probes.file: unknown probe kind (did you mean 'files'?)\n");
	assert_string_equal(
		conf_bad("probes:\n  network: {}\n"),
		"c.yaml:2:3: probes.network: unknown probe kind (known: files, tcp, traffic, file_io, "
		"dns, tls)\n");
	assert_has(conf_bad("probes:\n  files: {pipelines: [p], montor_dirs: [/]}\n"),
		   "probes.files.montor_dirs: unknown key (did you mean 'monitor_dirs'?)");
}

static void test_sections_must_be_mappings(void **state)
{
	assert_string_equal(conf_bad("pipelines: [a]\n"),
			    "c.yaml:1:12: pipelines: expected a mapping of name: {...}; got a "
			    "sequence\n");
	assert_string_equal(conf_bad("backends: console\n"),
			    "c.yaml:1:11: backends: expected a mapping of name: {...}; got a "
			    "scalar\n");
	assert_string_equal(conf_bad("probes: [files]\n"),
			    "c.yaml:1:9: probes: expected a mapping of probe kind: {...}; got a "
			    "sequence\n");
	assert_string_equal(conf_bad("agent: 3\n"),
			    "c.yaml:1:8: agent: expected a mapping of options (key: value); got a "
			    "scalar\n");
	/* Empty sections are absent sections. */
	struct ig_conf *c = conf_ok("pipelines:\nbackends: ~\nprobes:\nagent:\n");
	assert_null(c->pipelines);
	assert_null(c->backends);
	assert_null(c->probes[IG_PROBE_FILES]);
	ig_conf_free(c);
}

static void test_errors_across_sections_are_all_reported(void **state)
{
	struct ig_conf *c = (struct ig_conf *)1;
	struct ig_err err;
	const char *yaml = "agent: {batch_max_records: 0}\naggregator: {log_format: xml}\n"
			   "kubernetes: {watch_timeout: 1ms}\nprobes: {files: {enabled: 2}}\n"
			   "backends: []\n";

	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("c.yaml", yaml, strlen(yaml), &c, &err), -EINVAL);
	assert_null(c);
	assert_int_equal(err.n, 5);
	assert_has(ig_err_str(&err), "agent.batch_max_records: must be between 1 and 65536; got 0");
	assert_has(ig_err_str(&err),
		   "aggregator.log_format: expected one of logfmt, json; got 'xml'");
	assert_has(ig_err_str(&err),
		   "kubernetes.watch_timeout: must be between 1s and 1h; got 1ms");
	assert_has(ig_err_str(&err), "probes.files.enabled: expected a boolean");
	assert_has(ig_err_str(&err), "backends: expected a mapping");
}

static void doc_conf(FILE *f, void *arg)
{
	ig_conf_doc(f);
}

static void test_conf_doc_lists_every_section(void **state)
{
	char *s = capture(doc_conf, NULL);

	assert_has(s, "### `agent`\n");
	assert_has(s, "### `kubernetes`\n");
	assert_has(s, "### `aggregator`\n");
	assert_has(s, "### `probes.files`\n");
	assert_has(s, "| `batch_max_age` | duration | `200ms` |");
	assert_has(s, "| `log_level` | `debug` \\| `info` \\| `warn` \\| `error` | `info` |");
	assert_has(s, "| `monitor_dirs` | list of strings | `[/]` |");
	assert_has(s, "| `control` | string | `ipc:///run/ingrain/control.sock` |");
	free(s);
}

static void test_probe_descs_match_the_enum(void **state)
{
	assert_string_equal(ig_probe_descs[IG_PROBE_FILES].name, "files");
	assert_int_equal(ig_probe_descs[IG_PROBE_FILES].conf_size, sizeof(struct ig_files_conf));
	assert_non_null(ig_probe_descs[IG_PROBE_FILES].opts);
	assert_non_null(ig_probe_descs[IG_PROBE_FILES].summary);
}

/* A reload: restart-only settings keep their running values (strings, numbers,
 * lists, enums), each named in pending; the others take the file's. */
static void test_keep_restart(void **state)
{
	(void)state;
	struct ig_conf *run = conf_ok("agent: {aggregator: tcp://a:1, queue_max_batches: 10,\n"
				      "  batch_max_records: 5, plaintext: true}\n"
				      "kubernetes: {enabled: \"off\", label_allowlist: [app]}\n"
				      "aggregator: {max_msg_bytes: 1MiB, max_agents: 3}\n");
	struct ig_conf *nc = conf_ok("agent: {aggregator: tcp://b:2, queue_max_batches: 20,\n"
				     "  batch_max_records: 6, plaintext: true}\n"
				     "kubernetes: {enabled: \"on\", label_allowlist: [app, tier]}\n"
				     "aggregator: {max_msg_bytes: 2MiB, max_agents: 4}\n");
	char pending[256] = "";

	assert_int_equal(ig_conf_keep_restart_agent(nc, run, pending, sizeof(pending)), 4);
	assert_string_equal(pending, "agent.aggregator,agent.queue_max_batches,"
				     "kubernetes.enabled,kubernetes.label_allowlist");
	assert_string_equal(nc->agent.aggregator, "tcp://a:1");
	assert_int_equal(nc->agent.queue_max_batches, 10);
	assert_int_equal(nc->agent.batch_max_records, 6); /* applied on reload */
	assert_int_equal(nc->kubernetes.enabled, run->kubernetes.enabled);
	assert_int_equal(nc->kubernetes.label_allowlist.n, 1);
	assert_string_equal(nc->kubernetes.label_allowlist.v[0], "app");
	pending[0] = 0;
	assert_int_equal(ig_conf_keep_restart_aggregator(nc, run, pending, sizeof(pending)), 1);
	assert_string_equal(pending, "aggregator.max_msg_bytes");
	assert_int_equal(nc->aggregator.max_msg_bytes, 1024 * 1024);
	assert_int_equal(nc->aggregator.max_agents, 4);
	/* Nothing left to keep: the same again changes nothing. */
	assert_int_equal(ig_conf_keep_restart_agent(nc, run, NULL, 0), 0);
	ig_conf_free(nc);
	ig_conf_free(run);
}

static void test_conf_free_accepts_null(void **state)
{
	ig_conf_free(NULL);
	ig_ydoc_free(NULL);
	ig_cfg_free(topts, NULL);
	ig_strlist_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_absent_section_takes_every_default),
		cmocka_unit_test(test_null_values_and_empty_section_take_defaults),
		cmocka_unit_test(test_every_type_accepts_good_values),
		cmocka_unit_test(test_booleans_accept_yaml_spellings),
		cmocka_unit_test(test_bad_bool_names_the_accepted_spellings),
		cmocka_unit_test(test_bad_duration_shows_examples),
		cmocka_unit_test(test_duration_bounds_are_shown_in_units),
		cmocka_unit_test(test_bad_size_shows_examples_and_bounds),
		cmocka_unit_test(test_integers_check_type_and_bounds),
		cmocka_unit_test(test_bad_enum_lists_choices_and_suggests),
		cmocka_unit_test(test_strings_and_lists_reject_wrong_shapes),
		cmocka_unit_test(test_unknown_key_suggests_closest),
		cmocka_unit_test(test_unknown_key_without_close_match_lists_valid_keys),
		cmocka_unit_test(test_ignored_keys_are_accepted),
		cmocka_unit_test(test_section_that_is_not_a_mapping_is_an_error),
		cmocka_unit_test(test_all_problems_are_reported_at_once),
		cmocka_unit_test(test_required_option_missing_is_reported),
		cmocka_unit_test(test_invalid_default_is_reported_as_internal_error),
		cmocka_unit_test(test_errors_with_null_err_still_fail),
		cmocka_unit_test(test_parse_duration_units_and_fractions),
		cmocka_unit_test(test_parse_size_binary_and_decimal_units),
		cmocka_unit_test(test_did_you_mean_distance_rules),
		cmocka_unit_test(test_ynode_pos_formats_file_line_col),
		cmocka_unit_test(test_cfg_doc_prints_a_markdown_table),
		cmocka_unit_test(test_embedded_default_config_loads),
		cmocka_unit_test(test_absent_sections_take_production_defaults),
		cmocka_unit_test(test_node_name_falls_back_to_hostname),
		cmocka_unit_test(test_fixture_with_every_option_set),
		cmocka_unit_test(test_fixture_typos_are_all_reported_with_positions),
		cmocka_unit_test(test_fixture_broken_yaml_is_a_syntax_error),
		cmocka_unit_test(test_missing_file_is_enoent_with_path),
		cmocka_unit_test(test_empty_file_is_a_clear_error),
		cmocka_unit_test(test_unknown_top_level_section),
		cmocka_unit_test(test_agent_unknown_key_exact_position),
		cmocka_unit_test(test_agent_cross_field_rules),
		cmocka_unit_test(test_aggregator_and_kubernetes_checks),
		cmocka_unit_test(test_empty_state_dir_and_control_mean_off),
		cmocka_unit_test(test_kubernetes_enabled_is_an_enum),
		cmocka_unit_test(test_plaintext_needs_an_explicit_opt_in),
		cmocka_unit_test(test_node_name_longer_than_a_dns_name_is_refused),
		cmocka_unit_test(test_probe_pipeline_must_be_defined),
		cmocka_unit_test(test_label_allowlist_is_bounded_by_the_wire),
		cmocka_unit_test(test_monitor_dirs_are_normalised),
		cmocka_unit_test(test_monitor_dirs_default_is_everything),
		cmocka_unit_test(test_monitor_dirs_bad_entries_are_rejected),
		cmocka_unit_test(test_monitor_dirs_limits),
		cmocka_unit_test(test_enabled_probe_must_feed_a_pipeline),
		cmocka_unit_test(test_unknown_probe_kind_suggests),
		cmocka_unit_test(test_sections_must_be_mappings),
		cmocka_unit_test(test_errors_across_sections_are_all_reported),
		cmocka_unit_test(test_conf_doc_lists_every_section),
		cmocka_unit_test(test_probe_descs_match_the_enum),
		cmocka_unit_test(test_conf_free_accepts_null),
		cmocka_unit_test(test_keep_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
