/* test_disk_buffer: the agent's disk buffer (disk_buffer.h) on its own and
 * through the sender: what a crashed process left is replayed in order, a
 * finished segment disappears, a torn frame is counted, and an unusable
 * default directory degrades to memory only while an explicit one fails. */
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

#include "disk_buffer.h"
#include "ig_log.h"
#include "sender.h"

struct seen {
	uint64_t seqs[64];
	uint32_t recs[64];
	char bodies[64][16];
	int n;
};

static void collect(void *ctx, uint64_t seq, void *buf, size_t len, uint32_t nrecords)
{
	struct seen *s = ctx;
	s->seqs[s->n] = seq;
	s->recs[s->n] = nrecords;
	snprintf(s->bodies[s->n], sizeof(s->bodies[0]), "%.*s", (int)len, (const char *)buf);
	s->n++;
	free(buf);
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/ig-dbuf-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int count_segments(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '\\.seg$'", dir);
	FILE *p = popen(cmd, "r");
	int n = 0;
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static struct ig_dbuf *open_dir(const char *dir, uint64_t segment_bytes)
{
	struct ig_dbuf_opts o = { .dir = dir, .fsync = true, .segment_bytes = segment_bytes };
	struct ig_dbuf *d = NULL;
	struct ig_err err;
	ig_err_init(&err);
	assert_int_equal(ig_dbuf_open(&d, &o, &err), 0);
	return d;
}

static void test_what_a_crashed_process_left_is_replayed_in_order(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct ig_dbuf *d = open_dir(dir, 64); /* tiny segments: several files */
	struct seen s = { 0 };
	uint64_t corrupt = 1;

	for (int i = 1; i <= 5; i++) {
		char body[16];
		snprintf(body, sizeof(body), "env%d", i);
		assert_int_equal(
			ig_dbuf_append(d, (uint64_t)i, body, strlen(body), (uint32_t)i * 10), 0);
	}
	ig_dbuf_pop(d); /* env1 acked */
	assert_true(count_segments(dir) >= 2);
	ig_dbuf_close(d); /* the crash */

	d = open_dir(dir, 64);
	ig_dbuf_replay(d, collect, &s, &corrupt);
	assert_int_equal(corrupt, 0);
	/* env1 was acked, but its segment may still hold it: a re-send is a
	 * duplicate for the aggregator. Everything after it is there, in order. */
	assert_true(s.n == 4 || s.n == 5);
	int off = s.n == 5;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(s.seqs[i + off], (uint64_t)i + 2);
		assert_int_equal(s.recs[i + off], (uint32_t)(i + 2) * 10);
	}
	assert_string_equal(s.bodies[s.n - 1], "env5");
	for (int i = 0; i < s.n; i++)
		ig_dbuf_pop(d);
	assert_int_equal(count_segments(dir), 0); /* everything done: no file left */
	uint64_t envs, bytes;
	ig_dbuf_usage(d, &envs, &bytes);
	assert_int_equal(envs, 0);
	ig_dbuf_close(d);
	rm_rf(dir);
	free(dir);
}

static void test_a_torn_frame_is_counted_and_the_rest_replayed(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct ig_dbuf *d = open_dir(dir, 0);
	struct seen s = { 0 };
	uint64_t corrupt = 0;
	char cmd[400];

	assert_int_equal(ig_dbuf_append(d, 1, "first", 5, 3), 0);
	assert_int_equal(ig_dbuf_append(d, 2, "second", 6, 4), 0);
	ig_dbuf_close(d);
	snprintf(cmd, sizeof(cmd), "truncate -s -2 '%s'/*.seg", dir);
	assert_int_equal(system(cmd), 0);
	d = open_dir(dir, 0);
	ig_dbuf_replay(d, collect, &s, &corrupt);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.bodies[0], "first");
	assert_int_equal(corrupt, 4); /* the torn frame's header said 4 records */
	ig_dbuf_close(d);
	rm_rf(dir);
	free(dir);
}

static void test_one_agent_per_directory(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct ig_dbuf *d = open_dir(dir, 0), *d2 = NULL;
	struct ig_dbuf_opts o = { .dir = dir };
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_dbuf_open(&d2, &o, &err), -EBUSY);
	assert_non_null(strstr(ig_err_str(&err), "in use by another ingrain-agent"));
	ig_dbuf_close(d);
	rm_rf(dir);
	free(dir);
}

static void test_unusable_default_directory_degrades_and_an_explicit_one_fails(void **state)
{
	(void)state;
	struct ig_sender_opts o = { .url = "tcp://127.0.0.1:1",
				    .queue_max_batches = 4,
				    .queue_max_bytes = 1 << 20,
				    .ack_timeout_ns = 1000000000,
				    .reconnect_min_ns = 100000000,
				    .reconnect_max_ns = 100000000,
				    .buffer_dir = "/proc/ingrain-no-such-dir/buffer",
				    .buffer_fsync = true };
	struct ig_sender *s = NULL;
	struct ig_err err;

	ig_err_init(&err);
	assert_true(ig_sender_new(&s, &o, &err) < 0);
	assert_non_null(strstr(ig_err_str(&err), "agent.buffer_dir: cannot use"));
	o.buffer_dir_is_default = true;
	ig_err_init(&err);
	assert_int_equal(ig_sender_new(&s, &o, &err), 0);
	ig_sender_free(s);
}

static void test_sender_replays_a_crashed_queue_and_counts_overflow(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct ig_sender_opts o = { .url = "tcp://127.0.0.1:1",
				    .queue_max_batches = 3,
				    .queue_max_bytes = 1 << 20,
				    .ack_timeout_ns = 200000000,
				    .reconnect_min_ns = 100000000,
				    .reconnect_max_ns = 100000000,
				    .buffer_dir = dir,
				    .buffer_fsync = false };
	struct ig_sender *s = NULL;
	struct ig_sender_stats st;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_sender_new(&s, &o, &err), 0);
	for (int i = 1; i <= 3; i++)
		ig_sender_enqueue(s, (uint64_t)i, strdup("envelope"), 8, 10);
	ig_sender_stats(s, &st);
	assert_int_equal(st.buffered_records, 30);
	ig_sender_free(s); /* nothing acked: all on disk */

	o.queue_max_batches = 2; /* the new process holds fewer */
	assert_int_equal(ig_sender_new(&s, &o, &err), 0);
	ig_sender_stats(s, &st);
	assert_int_equal(st.replayed_records, 30);
	assert_int_equal(st.lost_queue_overflow, 10); /* the oldest, counted */
	assert_int_equal(st.queued_records, 20);
	assert_int_equal(st.buffered_records, 20);
	ig_sender_free(s);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	ig_log_init("test", IG_LOG_ERROR, IG_LOG_LOGFMT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_a_crashed_process_left_is_replayed_in_order),
		cmocka_unit_test(test_a_torn_frame_is_counted_and_the_rest_replayed),
		cmocka_unit_test(test_one_agent_per_directory),
		cmocka_unit_test(
			test_unusable_default_directory_degrades_and_an_explicit_one_fails),
		cmocka_unit_test(test_sender_replays_a_crashed_queue_and_counts_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
