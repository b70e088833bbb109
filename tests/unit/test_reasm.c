/* test_reasm: the TCP reassembler of the capture layer (node-agent/reasm.c):
 * in-order, split, merged, duplicated, overlapping and reordered segments;
 * sequence wrap-around; every bound (flows, bytes per stream, age) and what
 * it counts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reasm.h"

static int drops, drops_evicted;

static void on_drop(void *ctx, struct ig_reasm_stream *s, bool evicted)
{
	(void)ctx;
	(void)s;
	drops++;
	drops_evicted += evicted;
}

static struct ig_reasm *mk(uint32_t flows, uint32_t bytes, uint64_t age)
{
	struct ig_reasm_opts o = { flows, bytes, age, 16 };
	drops = drops_evicted = 0;
	struct ig_reasm *r = ig_reasm_new(&o, on_drop, NULL);
	assert_non_null(r);
	return r;
}

static void expect_data(struct ig_reasm_stream *s, const char *want)
{
	size_t n;
	const uint8_t *d = ig_reasm_data(s, &n);

	if (n != strlen(want) || memcmp(d, want, n) != 0)
		fail_msg("stream holds '%.*s', expected '%s'", (int)n, d ? (const char *)d : "",
			 want);
}

static void add(struct ig_reasm *r, struct ig_reasm_stream *s, uint32_t seq, const char *p)
{
	assert_int_equal(ig_reasm_add(r, s, seq, (const uint8_t *)p, strlen(p), 1), 0);
}

static void test_in_order_and_consume(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(0, 0, 0);
	struct ig_reasm_stream *s = ig_reasm_get(r, 42, 0, 1, true);
	assert_non_null(s);
	assert_ptr_equal(ig_reasm_get(r, 42, 0, 1, false), s);
	assert_null(ig_reasm_get(r, 42, 1, 1, false)); /* the other direction */
	add(r, s, 1000, "hello ");
	add(r, s, 1006, "world");
	expect_data(s, "hello world");
	ig_reasm_consume(s, 6);
	expect_data(s, "world");
	add(r, s, 1011, "!");
	expect_data(s, "world!");
	ig_reasm_free(r);
}

static void test_duplicates_overlaps_and_reorder(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(0, 0, 0);
	struct ig_reasm_stream *s = ig_reasm_get(r, 1, 1, 1, true);
	struct ig_reasm_stats rs;

	add(r, s, 100, "abc");
	add(r, s, 100, "abc"); /* retransmission */
	add(r, s, 101, "bcde"); /* overlap */
	expect_data(s, "abcde");
	add(r, s, 110, "klm"); /* ahead: waits */
	add(r, s, 107, "hij");
	expect_data(s, "abcde");
	add(r, s, 105, "fg"); /* fills the hole: everything joins */
	expect_data(s, "abcdefghijklm");
	ig_reasm_stats(r, &rs);
	assert_int_equal(rs.dup_bytes, 3 + 2);
	assert_int_equal(rs.gap_bytes, 0);
	assert_false(ig_reasm_take_gap(s));
	ig_reasm_free(r);
}

static void test_sequence_wraps(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(0, 0, 0);
	struct ig_reasm_stream *s = ig_reasm_get(r, 1, 0, 1, true);

	add(r, s, 0xfffffffe, "ab");
	add(r, s, 1, "d");
	add(r, s, 0, "c");
	expect_data(s, "abcd");
	ig_reasm_free(r);
}

static void test_stream_bound_drops_and_gives_up_holes(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(0, 16, 0);
	struct ig_reasm_stream *s = ig_reasm_get(r, 1, 0, 1, true);
	struct ig_reasm_stats rs;

	add(r, s, 0, "0123456789");
	/* 7 more contiguous bytes do not fit in 16: dropped, counted */
	assert_int_equal(ig_reasm_add(r, s, 10, (const uint8_t *)"abcdefg", 7, 1), -ENOSPC);
	ig_reasm_stats(r, &rs);
	assert_int_equal(rs.overflow, 1);
	assert_int_equal(rs.overflow_bytes, 7);
	ig_reasm_consume(s, 10);
	/* a hole that never fills: segments beyond it fill the stream, so the
	 * hole is given up and the stream goes on after it, flagged */
	add(r, s, 20, "uvwxyz");
	add(r, s, 26, "ABCDEFGH");
	expect_data(s, "");
	/* 6 + 8 + 6 > 16: the hole goes; the new segment still does not fit
	 * beside the 14 bytes that now lie after it, so it is dropped */
	assert_int_equal(ig_reasm_add(r, s, 34, (const uint8_t *)"IJKLMN", 6, 1), -ENOSPC);
	assert_true(ig_reasm_take_gap(s));
	assert_false(ig_reasm_take_gap(s));
	expect_data(s, "uvwxyzABCDEFGH");
	ig_reasm_stats(r, &rs);
	assert_int_equal(rs.gap_bytes, 10);
	assert_int_equal(rs.overflow, 2);
	ig_reasm_consume(s, 14);
	add(r, s, 34, "IJKLMN"); /* the retransmission fits */
	expect_data(s, "IJKLMN");
	ig_reasm_free(r);
}

static void test_flow_bound_evicts_least_recent(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(2, 0, 0);
	struct ig_reasm_stats rs;

	struct ig_reasm_stream *a = ig_reasm_get(r, 1, 0, 1, true);
	add(r, a, 0, "a");
	struct ig_reasm_stream *b = ig_reasm_get(r, 2, 0, 2, true);
	add(r, b, 0, "b");
	assert_non_null(ig_reasm_get(r, 1, 0, 3, false)); /* a is now the most recent */
	assert_non_null(ig_reasm_get(r, 3, 0, 4, true)); /* evicts b */
	assert_null(ig_reasm_get(r, 2, 0, 5, false));
	assert_non_null(ig_reasm_get(r, 1, 0, 5, false));
	ig_reasm_stats(r, &rs);
	assert_int_equal(rs.evicted, 1);
	assert_int_equal(rs.evicted_bytes, 1);
	assert_int_equal(rs.live, 2);
	assert_int_equal(drops_evicted, 1);
	ig_reasm_free(r);
}

static void test_idle_streams_age_out(void **st)
{
	(void)st;
	struct ig_reasm *r = mk(0, 0, 100);
	struct ig_reasm_stats rs;

	struct ig_reasm_stream *a = ig_reasm_get(r, 1, 0, 1000, true);
	add(r, a, 0, "xyz");
	ig_reasm_get(r, 2, 0, 1050, true);
	ig_reasm_expire(r, 1120); /* only the first is older than 100 */
	assert_null(ig_reasm_get(r, 1, 0, 1120, false));
	assert_non_null(ig_reasm_get(r, 2, 0, 1120, false));
	ig_reasm_stats(r, &rs);
	assert_int_equal(rs.aged, 1);
	assert_int_equal(rs.aged_bytes, 3);
	assert_int_equal(drops, 1);
	assert_int_equal(drops_evicted, 0);
	ig_reasm_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_and_consume),
		cmocka_unit_test(test_duplicates_overlaps_and_reorder),
		cmocka_unit_test(test_sequence_wraps),
		cmocka_unit_test(test_stream_bound_drops_and_gives_up_holes),
		cmocka_unit_test(test_flow_bound_evicts_least_recent),
		cmocka_unit_test(test_idle_streams_age_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
