/* test_record: the record and metric blocks (common/ig_record.c,
 * common/ig_metric.c): arena bookkeeping, limits, and the exact tag list a
 * record becomes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ig_metric.h"
#include "ig_record.h"
#include "ig_wire_schema.h"

static struct ig_record *rec_new(void)
{
	struct ig_record *r = malloc(sizeof(*r));

	assert_non_null(r);
	memset(r, 0xa5, sizeof(*r)); /* reset must not rely on zeroed memory */
	ig_record_reset(r);
	return r;
}

static struct ig_metric *metric_new(void)
{
	struct ig_metric *m = malloc(sizeof(*m));

	assert_non_null(m);
	memset(m, 0x5a, sizeof(*m));
	ig_metric_reset(m);
	return m;
}

static bool in_arena(const struct ig_record *r, const char *s)
{
	return s >= r->arena && s < r->arena + sizeof(r->arena);
}

/* ------------------------------------------------------------------ */
/* Records                                                              */

static void test_reset_empties_a_used_record(void **state)
{
	struct ig_record *r = rec_new();

	assert_null(r->kind);
	assert_int_equal(r->nfields, 0);
	assert_int_equal(r->id.nlabels, 0);
	assert_int_equal(r->arena_used, 0);
	r->kind = "x";
	r->pid = 5;
	r->id.pod_name = "p";
	assert_int_equal(ig_record_add_str(r, "a", "b", 1), 0);
	assert_int_equal(ig_record_add_label(r, "k", "v"), 0);
	ig_record_reset(r);
	assert_null(r->kind);
	assert_int_equal(r->pid, 0);
	assert_null(r->id.pod_name);
	assert_int_equal(r->nfields, 0);
	assert_int_equal(r->id.nlabels, 0);
	assert_int_equal(r->arena_used, 0);
	free(r);
}

static void test_strndup_copies_exactly_len_bytes_and_terminates(void **state)
{
	struct ig_record *r = rec_new();
	const char *s = ig_record_strndup(r, "hello world", 5);

	assert_string_equal(s, "hello");
	assert_true(in_arena(r, s));
	assert_int_equal(r->arena_used, 6);
	assert_string_equal(ig_record_strdup(r, ""), "");
	assert_null(ig_record_strdup(r, NULL));
	assert_null(ig_record_strndup(r, NULL, 3));
	free(r);
}

static void test_arena_exhaustion_returns_null_and_keeps_the_record(void **state)
{
	struct ig_record *r = rec_new();
	static char big[IG_RECORD_ARENA];

	memset(big, 'a', sizeof(big));
	/* Exactly full: len + NUL == arena size. */
	assert_non_null(ig_record_strndup(r, big, IG_RECORD_ARENA - 1));
	assert_int_equal(r->arena_used, IG_RECORD_ARENA);
	assert_null(ig_record_strndup(r, "", 0));
	ig_record_reset(r);
	assert_null(ig_record_strndup(r, big, IG_RECORD_ARENA));
	assert_int_equal(r->arena_used, 0);

	assert_non_null(ig_record_strndup(r, big, IG_RECORD_ARENA - 10));
	assert_int_equal(ig_record_add_str(r, "path", big, 20), -ENOSPC);
	assert_int_equal(r->nfields, 0);
	assert_int_equal(r->arena_used, IG_RECORD_ARENA - 9);
	assert_int_equal(ig_record_add_uint(r, "n", 1), 0); /* numbers need no arena */
	free(r);
}

static void test_fields_are_typed_and_found_by_key(void **state)
{
	struct ig_record *r = rec_new();
	const struct ig_field *f;
	char buf[8] = "abc";

	assert_int_equal(ig_record_add_str(r, "path", buf, 3), 0);
	buf[0] = 'X'; /* the value was copied */
	assert_int_equal(ig_record_add_int(r, "ret", -13), 0);
	assert_int_equal(ig_record_add_uint(r, "flags", 0x8000), 0);
	assert_int_equal(ig_record_add_str(r, "none", NULL, 0), 0);
	f = ig_record_field(r, "path");
	assert_int_equal(f->type, IG_F_STR);
	assert_string_equal(f->s, "abc");
	f = ig_record_field(r, "ret");
	assert_int_equal(f->type, IG_F_INT);
	assert_true(f->i == -13);
	f = ig_record_field(r, "flags");
	assert_int_equal(f->type, IG_F_UINT);
	assert_true(f->u == 0x8000);
	assert_string_equal(ig_record_field(r, "none")->s, "");
	assert_null(ig_record_field(r, "missing"));
	assert_null(ig_record_field(r, NULL));
	assert_int_equal(ig_record_add_int(r, NULL, 1), -EINVAL);
	free(r);
}

static void test_field_slots_run_out_with_enospc(void **state)
{
	struct ig_record *r = rec_new();

	for (int i = 0; i < IG_MAX_FIELDS; i++)
		assert_int_equal(ig_record_add_uint(r, "k", (uint64_t)i), 0);
	assert_int_equal(ig_record_add_uint(r, "k", 1), -ENOSPC);
	assert_int_equal(ig_record_add_int(r, "k", 1), -ENOSPC);
	assert_int_equal(ig_record_add_str(r, "k", "v", 1), -ENOSPC);
	assert_int_equal(r->nfields, IG_MAX_FIELDS);
	assert_int_equal(r->arena_used, 0);
	free(r);
}

static void test_labels_are_copied_and_limited(void **state)
{
	struct ig_record *r = rec_new();
	char k[8] = "app", v[8] = "web";
	static char big[IG_RECORD_ARENA];

	assert_int_equal(ig_record_add_label(r, k, v), 0);
	k[0] = v[0] = 'X';
	assert_string_equal(r->id.labels[0].key, "app");
	assert_string_equal(r->id.labels[0].val, "web");
	assert_int_equal(ig_record_add_label(r, "empty", NULL), 0);
	assert_string_equal(r->id.labels[1].val, "");
	for (int i = 2; i < IG_MAX_LABELS; i++)
		assert_int_equal(ig_record_add_label(r, "l", "v"), 0);
	assert_int_equal(ig_record_add_label(r, "l", "v"), -ENOSPC);
	assert_int_equal(ig_record_add_label(r, NULL, "v"), -EINVAL);

	/* The key fits, the value does not: nothing is kept. */
	ig_record_reset(r);
	memset(big, 'b', sizeof(big) - 1);
	size_t before = r->arena_used;
	big[IG_RECORD_ARENA - 4] = '\0';
	assert_int_equal(ig_record_add_label(r, "key", big), -ENOSPC);
	assert_int_equal(r->arena_used, before);
	assert_int_equal(r->id.nlabels, 0);
	free(r);
}

/* ------------------------------------------------------------------ */
/* Metrics                                                              */

static void fill(struct ig_record *r)
{
	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->node = "node-a";
	r->ts_ns = 1700000000000000001ULL;
	r->pid = 10;
	r->tid = 11;
	r->ppid = 1;
	r->uid = 1000;
	r->gid = 100;
	r->comm = "cat";
	r->cgroup_id = 18446744073709551615ULL;
	r->id.scope = "pod";
	r->id.namespace_ = "shop";
	r->id.pod_name = "web-1";
	r->id.container_name = "nginx";
	r->id.container_id = "abc123";
	r->id.runtime = "containerd";
	r->id.image = "nginx:1.25";
	r->id.owner_kind = "Deployment";
	r->id.owner_name = "web";
	r->id.pod_uid = "uid-1";
	r->id.cgroup_path = "/kubepods/x"; /* not a tag */
	ig_record_add_label(r, "app", "web");
	ig_record_add_label(r, "tier", "front");
	ig_record_add_str(r, "path", "/etc/hosts", 10);
	ig_record_add_int(r, "ret", -2);
	ig_record_add_uint(r, "flags", 524288);
}

static void test_metric_tags_follow_the_documented_order(void **state)
{
	static const struct {
		const char *key, *val;
		enum ig_tag_type type;
	} want[] = {
		{ "node", "node-a", IG_TAG_STR },
		{ "scope", "pod", IG_TAG_STR },
		{ "namespace", "shop", IG_TAG_STR },
		{ "pod", "web-1", IG_TAG_STR },
		{ "container", "nginx", IG_TAG_STR },
		{ "container_id", "abc123", IG_TAG_STR },
		{ "runtime", "containerd", IG_TAG_STR },
		{ "image", "nginx:1.25", IG_TAG_STR },
		{ "owner_kind", "Deployment", IG_TAG_STR },
		{ "owner_name", "web", IG_TAG_STR },
		{ "pod_uid", "uid-1", IG_TAG_STR },
		{ "label_app", "web", IG_TAG_STR },
		{ "label_tier", "front", IG_TAG_STR },
		{ "process", "cat", IG_TAG_STR },
		{ "pid", "10", IG_TAG_NUM },
		{ "tid", "11", IG_TAG_NUM },
		{ "ppid", "1", IG_TAG_NUM },
		{ "uid", "1000", IG_TAG_NUM },
		{ "gid", "100", IG_TAG_NUM },
		{ "cgroup_id", "18446744073709551615", IG_TAG_NUM },
		{ "path", "/etc/hosts", IG_TAG_STR },
		{ "ret", "-2", IG_TAG_NUM },
		{ "flags", "524288", IG_TAG_NUM },
	};
	struct ig_record *r = rec_new();
	struct ig_metric *m = metric_new();
	size_t n = sizeof(want) / sizeof(want[0]);

	fill(r);
	assert_int_equal(ig_metric_from_record(m, r), 0);
	assert_string_equal(m->name, "file.open");
	assert_int_equal(m->kind, IG_M_COUNTER);
	assert_true(m->value == 1.0);
	assert_true(m->ts_ns == r->ts_ns);
	assert_ptr_equal(m->rec, r);
	assert_null(m->set_member);
	assert_int_equal(m->ntags, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(m->tags[i].key, want[i].key);
		assert_string_equal(m->tags[i].val, want[i].val);
		assert_int_equal(m->tags[i].type, want[i].type);
	}
	free(r);
	free(m);
}

static void test_absent_identity_members_make_no_tag(void **state)
{
	static const char *const want[] = { "process", "pid", "tid",	   "ppid",
					    "uid",     "gid", "cgroup_id", "ret" };
	struct ig_record *r = rec_new();
	struct ig_metric *m = metric_new();

	r->kind = "proc.exec";
	r->comm = "sh";
	ig_record_add_int(r, "ret", 0);
	assert_int_equal(ig_metric_from_record(m, r), 0);
	assert_int_equal(m->ntags, 8);
	for (int i = 0; i < 8; i++)
		assert_string_equal(m->tags[i].key, want[i]);
	assert_null(ig_metric_tag(m, "node"));
	assert_null(ig_metric_tag(m, "pod"));
	/* Host process: scope only. */
	r->id.scope = "host";
	assert_int_equal(ig_metric_from_record(m, r), 0);
	assert_string_equal(m->tags[0].key, "scope");
	assert_string_equal(ig_metric_tag(m, "scope"), "host");
	free(r);
	free(m);
}

static void test_metric_from_record_rebuilds_a_reused_metric(void **state)
{
	struct ig_record *r = rec_new();
	struct ig_metric *m = metric_new();

	fill(r);
	assert_int_equal(ig_metric_from_record(m, r), 0);
	uint32_t n = m->ntags;
	size_t used = m->arena_used;
	assert_int_equal(ig_metric_from_record(m, r), 0);
	assert_int_equal(m->ntags, n);
	assert_int_equal(m->arena_used, used);
	free(r);
	free(m);
}

static void test_too_many_tags_gives_enospc_and_keeps_a_prefix(void **state)
{
	struct ig_record *r = rec_new();
	struct ig_metric *m = metric_new();
	static char keys[IG_MAX_FIELDS][16];

	fill(r); /* 13 identity + 7 process + 3 body tags */
	for (int i = r->nfields; i < IG_MAX_FIELDS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "f%d", i);
		assert_int_equal(ig_record_add_uint(r, keys[i], 7), 0);
	}
	/* 13 + 7 + 32 = 52 > 48 */
	assert_int_equal(ig_metric_from_record(m, r), -ENOSPC);
	assert_int_equal(m->ntags, IG_MAX_TAGS);
	assert_string_equal(m->tags[0].key, "node");
	assert_string_equal(m->tags[IG_MAX_TAGS - 1].key, "f27");
	free(r);
	free(m);
}

static void test_metric_arena_exhaustion_gives_enospc(void **state)
{
	struct ig_record *r = rec_new();
	struct ig_metric *m = metric_new();
	static char key[700];

	/* 16 labels with 600-byte keys: "label_" + key for each > 8 KiB. */
	memset(key, 'k', 600);
	for (int i = 0; i < IG_MAX_LABELS; i++) {
		key[0] = (char)('a' + i);
		assert_int_equal(ig_record_add_label(r, key, "v"), 0);
	}
	r->kind = "k";
	assert_int_equal(ig_metric_from_record(m, r), -ENOSPC);
	assert_true(m->ntags > 0 && m->ntags < IG_MAX_LABELS);
	assert_true(m->arena_used <= IG_METRIC_ARENA);
	for (uint32_t i = 0; i < m->ntags; i++)
		assert_int_equal(strncmp(m->tags[i].key, "label_", 6), 0);
	free(r);
	free(m);
}

static void test_tags_can_be_added_looked_up_and_deleted_in_order(void **state)
{
	struct ig_metric *m = metric_new();

	assert_int_equal(ig_metric_add_tag(m, "a", "1", IG_TAG_NUM), 0);
	assert_int_equal(ig_metric_add_tag(m, "b", "2", IG_TAG_STR), 0);
	assert_int_equal(ig_metric_add_tag(m, "c", "3", IG_TAG_STR), 0);
	assert_int_equal(ig_metric_add_tag(m, NULL, "3", IG_TAG_STR), -EINVAL);
	assert_string_equal(ig_metric_tag(m, "b"), "2");
	ig_metric_del_tag(m, 1);
	assert_int_equal(m->ntags, 2);
	assert_string_equal(m->tags[0].key, "a");
	assert_string_equal(m->tags[1].key, "c");
	assert_null(ig_metric_tag(m, "b"));
	ig_metric_del_tag(m, 5); /* out of range: nothing */
	assert_int_equal(m->ntags, 2);
	ig_metric_del_tag(m, 1);
	ig_metric_del_tag(m, 0);
	assert_int_equal(m->ntags, 0);
	for (int i = 0; i < IG_MAX_TAGS; i++)
		assert_int_equal(ig_metric_add_tag(m, "k", "v", IG_TAG_STR), 0);
	assert_int_equal(ig_metric_add_tag(m, "k", "v", IG_TAG_STR), -ENOSPC);
	free(m);
}

static void test_metric_strdup_uses_the_arena_and_runs_out(void **state)
{
	struct ig_metric *m = metric_new();
	static char big[IG_METRIC_ARENA];
	const char *s = ig_metric_strdup(m, "xyz");

	assert_string_equal(s, "xyz");
	assert_true(s >= m->arena && s < m->arena + IG_METRIC_ARENA);
	memset(big, 'q', sizeof(big) - 1);
	assert_null(ig_metric_strdup(m, big));
	assert_int_equal(m->arena_used, 4);
	assert_null(ig_metric_strdup(m, NULL));
	free(m);
}

static void test_copy_rehomes_every_string(void **state)
{
	struct ig_record *r = rec_new();
	struct ig_metric *src = metric_new(), *dst = metric_new();
	char name[] = "dyn.name";

	fill(r);
	assert_int_equal(ig_metric_from_record(src, r), 0);
	src->name = name;
	src->set_member = "member";
	src->kind = IG_M_SET;
	assert_int_equal(ig_metric_copy(dst, src), 0);
	/* Scribble over everything the source pointed to. */
	name[0] = 'X';
	fill(r);
	memset(r->arena, '#', r->arena_used);
	memset(src->arena, '#', src->arena_used);
	assert_string_equal(dst->name, "dyn.name");
	assert_string_equal(dst->set_member, "member");
	assert_int_equal(dst->kind, IG_M_SET);
	assert_int_equal(dst->ntags, src->ntags);
	assert_string_equal(ig_metric_tag(dst, "label_app"), "web");
	assert_string_equal(ig_metric_tag(dst, "pid"), "10");
	assert_string_equal(ig_metric_tag(dst, "path"), "/etc/hosts");
	for (uint32_t i = 0; i < dst->ntags; i++) {
		assert_true(dst->tags[i].key >= dst->arena &&
			    dst->tags[i].key < dst->arena + IG_METRIC_ARENA);
		assert_true(dst->tags[i].val >= dst->arena &&
			    dst->tags[i].val < dst->arena + IG_METRIC_ARENA);
		assert_int_equal(dst->tags[i].type, src->tags[i].type);
	}
	free(r);
	free(src);
	free(dst);
}

static void test_copy_reports_enospc_when_strings_do_not_fit(void **state)
{
	struct ig_metric *src = metric_new(), *dst = metric_new();
	static char big[3000];

	memset(big, 'v', sizeof(big) - 1);
	src->name = "n";
	for (int i = 0; i < 3; i++)
		assert_int_equal(ig_metric_add_tag(src, "k", big, IG_TAG_STR), 0);
	assert_int_equal(ig_metric_copy(dst, src), -ENOSPC);
	assert_int_equal(dst->ntags, 2);
	assert_true(dst->arena_used <= IG_METRIC_ARENA);
	free(src);
	free(dst);
}

static void test_kind_names(void **state)
{
	assert_string_equal(ig_metric_kind_name(IG_M_COUNTER), "counter");
	assert_string_equal(ig_metric_kind_name(IG_M_GAUGE), "gauge");
	assert_string_equal(ig_metric_kind_name(IG_M_HISTOGRAM), "histogram");
	assert_string_equal(ig_metric_kind_name(IG_M_SET), "set");
	assert_string_equal(ig_metric_kind_name((enum ig_metric_kind)42), "unknown");
}

static uint64_t sel_rng = 88172645463325252ULL;

static uint32_t sel_rnd(uint32_t n)
{
	sel_rng ^= sel_rng << 13;
	sel_rng ^= sel_rng >> 7;
	sel_rng ^= sel_rng << 17;
	return (uint32_t)(sel_rng % n);
}

static bool keep_listed(const void *ctx, const char *key)
{
	for (const char *const *k = ctx; *k; k++)
		if (!strcmp(*k, key))
			return true;
	return false;
}

static bool keep_unlisted(const void *ctx, const char *key)
{
	return !keep_listed(ctx, key);
}

/* ig_metric_from_record_sel = ig_metric_from_record, then removing the tags
 * the selection does not keep: same tags, order, values, types and return
 * value, on random records (absent members, labels, many fields, records
 * that do not fit a metric) and selections (allow and deny lists). */
static void test_selected_build_equals_build_then_remove(void **state)
{
	static const char *const lists[][8] = {
		{ "namespace", "pod", "process", "path", NULL },
		{ "pid", "label_app", "f3", "node", "cgroup_id", NULL },
		{ "nothing", NULL },
		{ "f0", "f1", "f2", "f3", "f4", "f5", "scope", NULL },
	};
	static const char *const vals[] = { "a", "", "prod", "/etc/passwd" };
	struct ig_record *r = malloc(sizeof(*r));
	struct ig_metric *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char keys[40][8];

	for (int i = 0; i < 40; i++)
		snprintf(keys[i], sizeof(keys[i]), "f%d", i);
	for (int iter = 0; iter < 20000; iter++) {
		struct ig_metric_sel sel;
		const void *ctx = lists[sel_rnd(4)];
		bool deny = sel_rnd(2);
		int ra, rb;
		uint32_t kept = 0;

		ig_record_reset(r);
		r->kind = "file.open";
		r->node = sel_rnd(3) ? "node-1" : NULL;
		r->comm = sel_rnd(4) ? "cat" : NULL;
		r->pid = sel_rnd(100000);
		r->cgroup_id = (uint64_t)sel_rnd(1000) << 40;
		for (int k = 0; k < IG_WIRE_ID_NSTR; k++)
			if (sel_rnd(2))
				ig_wire_id_set(&r->id, k, vals[sel_rnd(4)]);
		for (uint32_t k = sel_rnd(IG_MAX_LABELS + 1); k; k--) {
			char lk[16];
			snprintf(lk, sizeof(lk), "%s", k == 1 ? "app" : keys[k]);
			ig_record_add_label(r, lk, vals[sel_rnd(4)]);
		}
		for (uint32_t k = 0, n = sel_rnd(IG_MAX_FIELDS + 1); k < n; k++) {
			switch (sel_rnd(3)) {
			case 0:
				ig_record_add_str(r, keys[k], vals[k % 4], strlen(vals[k % 4]));
				break;
			case 1:
				ig_record_add_int(r, keys[k], -(int64_t)sel_rnd(1000000));
				break;
			default:
				ig_record_add_uint(r, keys[k], UINT64_MAX - sel_rnd(10));
			}
		}
		ig_metric_sel_init(&sel, deny ? keep_unlisted : keep_listed, ctx);
		ra = ig_metric_from_record(a, r);
		for (uint32_t i = 0; i < a->ntags; i++)
			if ((deny ? keep_unlisted : keep_listed)(ctx, a->tags[i].key))
				a->tags[kept++] = a->tags[i];
		a->ntags = kept;
		rb = ig_metric_from_record_sel(b, r, &sel);
		assert_int_equal(ra, rb);
		assert_int_equal(a->ntags, b->ntags);
		assert_ptr_equal(a->name, b->name);
		assert_true(a->ts_ns == b->ts_ns && a->value == b->value && a->kind == b->kind);
		for (uint32_t i = 0; i < a->ntags; i++) {
			assert_string_equal(a->tags[i].key, b->tags[i].key);
			assert_string_equal(a->tags[i].val, b->tags[i].val);
			assert_int_equal(a->tags[i].type, b->tags[i].type);
		}
	}
	free(r);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selected_build_equals_build_then_remove),
		cmocka_unit_test(test_reset_empties_a_used_record),
		cmocka_unit_test(test_strndup_copies_exactly_len_bytes_and_terminates),
		cmocka_unit_test(test_arena_exhaustion_returns_null_and_keeps_the_record),
		cmocka_unit_test(test_fields_are_typed_and_found_by_key),
		cmocka_unit_test(test_field_slots_run_out_with_enospc),
		cmocka_unit_test(test_labels_are_copied_and_limited),
		cmocka_unit_test(test_metric_tags_follow_the_documented_order),
		cmocka_unit_test(test_absent_identity_members_make_no_tag),
		cmocka_unit_test(test_metric_from_record_rebuilds_a_reused_metric),
		cmocka_unit_test(test_too_many_tags_gives_enospc_and_keeps_a_prefix),
		cmocka_unit_test(test_metric_arena_exhaustion_gives_enospc),
		cmocka_unit_test(test_tags_can_be_added_looked_up_and_deleted_in_order),
		cmocka_unit_test(test_metric_strdup_uses_the_arena_and_runs_out),
		cmocka_unit_test(test_copy_rehomes_every_string),
		cmocka_unit_test(test_copy_reports_enospc_when_strings_do_not_fit),
		cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
