/* aggr_pick: which aggregator replica an agent dials. URLs that name one
 * endpoint are kept as written; the rendezvous choice spreads agents and,
 * when a replica leaves or joins, moves only the agents it concerns. The
 * resolution of a name with several addresses runs end to end in
 * tests/integration/test_scale_out.sh (a network namespace's /etc/hosts). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aggr_pick.h"

static void test_one_endpoint_urls_are_dialed_as_written(void **state)
{
	(void)state;
	const char *same[] = { "tcp://127.0.0.1:7700", "tcp://[::1]:7700",
			       "ipc:///run/ingrain/a.sock",
			       "tls+tcp://aggregator.ingrain.svc:7700" };
	char out[256];
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		int n = ig_aggr_pick(same[i], "node-a", out, sizeof(out));
		assert_true(n == 1 || n == 0);
		assert_string_equal(out, same[i]);
	}
}

static void test_unresolvable_names_are_kept_for_nng_to_retry(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(ig_aggr_pick("tcp://no-such-host.invalid:7700", "k", out, sizeof(out)), 0);
	assert_string_equal(out, "tcp://no-such-host.invalid:7700");
}

static void test_bad_urls_are_refused(void **state)
{
	(void)state;
	char out[256], tiny[8];
	assert_int_equal(ig_aggr_pick("aggregator:7700", "k", out, sizeof(out)), -EINVAL);
	assert_int_equal(ig_aggr_pick("tcp://aggregator", "k", out, sizeof(out)), -EINVAL);
	assert_int_equal(ig_aggr_pick("tcp://aggregator:", "k", out, sizeof(out)), -EINVAL);
	assert_int_equal(ig_aggr_pick("tcp://127.0.0.1:7700", "k", tiny, sizeof(tiny)),
			 -ENAMETOOLONG);
}

static int pick(const char *key, char addrs[][32], int n)
{
	int best = -1;
	unsigned long long bs = 0;
	for (int i = 0; i < n; i++) {
		if (!addrs[i][0])
			continue;
		unsigned long long s = ig_aggr_pick_score(key, addrs[i]);
		if (best < 0 || s > bs) {
			best = i;
			bs = s;
		}
	}
	return best;
}

/* 3000 agents over 3 replicas: each gets within 10 % of a third; removing
 * replica 1 moves exactly its agents; adding a 4th takes agents only onto
 * itself. */
static void test_rendezvous_spreads_and_moves_only_what_it_must(void **state)
{
	(void)state;
	enum { AGENTS = 3000 };
	char addrs[4][32] = { "10.0.0.11", "10.0.0.12", "10.0.0.13", "" };
	static int before[AGENTS];
	int load[3] = { 0 };
	char key[32];
	for (int a = 0; a < AGENTS; a++) {
		snprintf(key, sizeof(key), "node-%d", a);
		before[a] = pick(key, addrs, 3);
		assert_int_equal(before[a], pick(key, addrs, 3)); /* stable */
		load[before[a]]++;
	}
	for (int r = 0; r < 3; r++)
		assert_true(load[r] > AGENTS / 3 * 9 / 10 && load[r] < AGENTS / 3 * 11 / 10);

	addrs[1][0] = '\0'; /* replica 1 leaves */
	for (int a = 0; a < AGENTS; a++) {
		snprintf(key, sizeof(key), "node-%d", a);
		int now = pick(key, addrs, 3);
		if (before[a] == 1)
			assert_true(now == 0 || now == 2);
		else
			assert_int_equal(now, before[a]);
	}
	strcpy(addrs[1], "10.0.0.12");
	strcpy(addrs[3], "10.0.0.14"); /* a 4th joins */
	int moved = 0;
	for (int a = 0; a < AGENTS; a++) {
		snprintf(key, sizeof(key), "node-%d", a);
		int now = pick(key, addrs, 4);
		if (now != before[a]) {
			assert_int_equal(now, 3);
			moved++;
		}
	}
	assert_true(moved > AGENTS / 4 * 9 / 10 && moved < AGENTS / 4 * 11 / 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_endpoint_urls_are_dialed_as_written),
		cmocka_unit_test(test_unresolvable_names_are_kept_for_nng_to_retry),
		cmocka_unit_test(test_bad_urls_are_refused),
		cmocka_unit_test(test_rendezvous_spreads_and_moves_only_what_it_must),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
