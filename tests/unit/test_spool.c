/* test_spool: the disk spool and retry engine. Most cases run in manual mode
 * (no worker thread, a fake clock) so that backoff and ordering are exact;
 * the last ones run the real worker thread. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>

#include "ig_err.h"
#include "ig_time.h"
#include "spool.h"

#define MS IG_NSEC_PER_MSEC

struct sink {
	enum ig_deliver answer[64]; /* per attempt; past the script: OK */
	int nscript;
	int attempts;
	int delivered;
	char keys[64][64];
	char payloads[64][64];
};

static enum ig_deliver deliver(void *ctx, const struct ig_batch *b, char *why, size_t len)
{
	struct sink *k = ctx;
	enum ig_deliver a = k->attempts < k->nscript ? k->answer[k->attempts] : IG_DELIVER_OK;

	k->attempts++;
	if (a == IG_DELIVER_OK && k->delivered < 64) {
		snprintf(k->keys[k->delivered], 64, "%s", b->key);
		snprintf(k->payloads[k->delivered], 64, "%.*s", (int)b->len, (const char *)b->data);
		k->delivered++;
	} else {
		snprintf(why, len, "scripted failure");
	}
	return a;
}

static char *make_dir(void)
{
	char tmpl[] = "/tmp/ig-spool-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (l >= sl && !strcmp(de->d_name + l - sl, suffix))
			n++;
	}
	closedir(d);
	return n;
}

static void push(struct ig_spool *s, const char *key, const char *payload, uint64_t records,
		 uint64_t created)
{
	struct ig_batch b = { strdup(key), records, created, strdup(payload), strlen(payload) };
	assert_int_equal(ig_spool_push(s, &b), 0);
	assert_null(b.key);
	assert_null(b.data);
}

static struct ig_spool *open_manual(const char *dir, struct sink *k, uint64_t max_bytes)
{
	struct ig_spool_conf c = { .name = "t",
				   .dir = dir,
				   .max_bytes = max_bytes,
				   .backoff_min_ns = 100 * MS,
				   .backoff_max_ns = 1000 * MS,
				   .manual = true,
				   .seed = 7 };
	struct ig_spool *s = NULL;
	struct ig_err err;

	ig_err_init(&err);
	int rc = ig_spool_new(&c, deliver, k, &s, &err);
	if (rc)
		fail_msg("ig_spool_new: %d %s", rc, ig_err_str(&err));
	return s;
}

static void test_batches_are_spooled_then_delivered_oldest_first(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };
	struct ig_spool *s = open_manual(dir, &k, 1 << 20);
	struct ig_spool_stats st;

	push(s, "a", "one", 1, 100);
	push(s, "b", "two", 2, 200);
	push(s, "c", "three", 3, 300);
	assert_int_equal(count_files(dir, ".batch"), 3);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 3);
	assert_string_equal(k.keys[0], "a");
	assert_string_equal(k.payloads[0], "one");
	assert_string_equal(k.keys[2], "c");
	assert_string_equal(k.payloads[2], "three");
	assert_int_equal(count_files(dir, ".batch"), 0);
	ig_spool_stats(s, &st);
	assert_int_equal(st.delivered_batches, 3);
	assert_int_equal(st.delivered_records, 6);
	assert_int_equal(st.queued_batches, 0);
	assert_int_equal(st.queued_bytes, 0);
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_transient_failures_back_off_exponentially_with_jitter(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { .answer = { IG_DELIVER_RETRY, IG_DELIVER_RETRY, IG_DELIVER_RETRY,
				      IG_DELIVER_RETRY, IG_DELIVER_RETRY },
			  .nscript = 5 };
	struct ig_spool *s = open_manual(dir, &k, 1 << 20);
	uint64_t now = 1000 * MS;
	/* backoff 100ms doubling, capped at 1s; jitter keeps [d/2, d] */
	const uint64_t full[] = { 100, 200, 400, 800, 1000 };

	push(s, "a", "x", 1, 1);
	push(s, "b", "y", 1, 2);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(ig_spool_step(s, now), 1);
		uint64_t due = ig_spool_next_due(s);
		uint64_t d = due - now;
		if (d < full[i] * MS / 2 || d > full[i] * MS)
			fail_msg("attempt %d: retry in %llu ms, want %llu/2..%llu", i + 1,
				 (unsigned long long)(d / MS), (unsigned long long)full[i],
				 (unsigned long long)full[i]);
		/* Not due yet: nothing happens, and "b" does not overtake "a". */
		assert_int_equal(ig_spool_step(s, due - 1), 0);
		now = due;
	}
	while (ig_spool_step(s, now))
		;
	assert_int_equal(k.delivered, 2);
	assert_string_equal(k.keys[0], "a");
	assert_string_equal(k.keys[1], "b");
	struct ig_spool_stats st;
	ig_spool_stats(s, &st);
	assert_int_equal(st.failed_attempts, 5);
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_auth_failure_halts_and_keeps_batches_for_restart(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { .answer = { IG_DELIVER_HALT }, .nscript = 1 };
	struct ig_spool *s = open_manual(dir, &k, 1 << 20);
	struct ig_spool_stats st;

	push(s, "a", "one", 4, 1);
	push(s, "b", "two", 5, 2);
	assert_int_equal(ig_spool_step(s, 0), 1);
	/* No retry: halted until restart, whatever the time. */
	assert_int_equal(ig_spool_step(s, UINT64_MAX - 1), 0);
	assert_int_equal(ig_spool_next_due(s), UINT64_MAX);
	ig_spool_stats(s, &st);
	assert_true(st.halted);
	assert_int_equal(st.queued_batches, 2);
	assert_int_equal(st.queued_records, 9);
	assert_int_equal(st.dropped_batches, 0);
	ig_spool_free(s);
	assert_int_equal(count_files(dir, ".batch"), 2);

	/* "Restart" with fixed credentials: everything is delivered, in order. */
	struct sink k2 = { 0 };
	s = open_manual(dir, &k2, 1 << 20);
	ig_spool_stats(s, &st);
	assert_int_equal(st.recovered_batches, 2);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k2.delivered, 2);
	assert_string_equal(k2.keys[0], "a");
	assert_string_equal(k2.payloads[1], "two");
	ig_spool_stats(s, &st);
	assert_int_equal(st.delivered_records, 9);
	ig_spool_free(s);
	assert_int_equal(count_files(dir, ".batch"), 0);
	rm_rf(dir);
	free(dir);
}

static void test_over_the_bound_oldest_batches_are_dropped_and_counted(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };
	struct ig_spool *s = open_manual(dir, &k, 10); /* bytes of payload */
	struct ig_spool_stats st;

	push(s, "a", "1234", 1, 1);
	push(s, "b", "5678", 2, 2);
	push(s, "c", "9abc", 3, 3); /* 12 > 10: "a" goes */
	ig_spool_stats(s, &st);
	assert_int_equal(st.dropped_batches, 1);
	assert_int_equal(st.dropped_records, 1);
	assert_int_equal(st.queued_batches, 2);
	assert_int_equal(st.queued_bytes, 8);
	assert_int_equal(count_files(dir, ".batch"), 2);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 2);
	assert_string_equal(k.keys[0], "b");
	assert_string_equal(k.keys[1], "c");
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_rejected_batch_is_dropped_and_the_next_goes_on(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { .answer = { IG_DELIVER_DROP }, .nscript = 1 };
	struct ig_spool *s = open_manual(dir, &k, 1 << 20);
	struct ig_spool_stats st;

	push(s, "bad", "x", 7, 1);
	push(s, "good", "y", 1, 2);
	while (ig_spool_step(s, 0))
		;
	ig_spool_stats(s, &st);
	assert_int_equal(st.dropped_batches, 1);
	assert_int_equal(st.dropped_records, 7);
	assert_int_equal(k.delivered, 1);
	assert_string_equal(k.keys[0], "good");
	assert_int_equal(count_files(dir, ".batch"), 0);
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_corrupt_and_half_written_files_are_removed_at_start(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };

	write_file(dir, "00000000000000000001-00000000.batch", "garbage\n");
	write_file(dir, "00000000000000000002-00000000.batch", "IGSPOOL1 3 2 1\nk\npayload");
	write_file(dir, "00000000000000000003-00000000.batch", "IGSPOOL1 1 3 99\nshort");
	write_file(dir, ".00000000000000000004-00000000.batch.tmp", "IGSPOOL1 1 4 1\nk\nhalf");
	write_file(dir, "unrelated.txt", "kept");
	struct ig_spool *s = open_manual(dir, &k, 1 << 20);
	struct ig_spool_stats st;
	ig_spool_stats(s, &st);
	assert_int_equal(st.recovered_batches, 1);
	assert_int_equal(st.dropped_batches, 2);
	assert_int_equal(count_files(dir, ".tmp"), 0);
	assert_int_equal(count_files(dir, ".txt"), 1);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 1);
	assert_string_equal(k.keys[0], "k");
	assert_string_equal(k.payloads[0], "payload");
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_second_instance_on_the_same_directory_is_refused(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };
	struct ig_spool *a = open_manual(dir, &k, 100), *b = NULL;
	struct ig_spool_conf c = { .name = "t", .dir = dir, .max_bytes = 100, .manual = true };
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_spool_new(&c, deliver, &k, &b, &err), -EBUSY);
	assert_null(b);
	assert_non_null(strstr(ig_err_str(&err), "in use by another instance"));
	ig_spool_free(a);
	rm_rf(dir);
	free(dir);
}

static void test_unusable_directory_is_reported_with_what_to_do(void **state)
{
	(void)state;
	char *dir = make_dir();
	char sub[512];
	struct ig_spool *s = NULL;
	struct sink k = { 0 };
	struct ig_err err;

	write_file(dir, "file", "x");
	snprintf(sub, sizeof(sub), "%s/file/spool", dir);
	struct ig_spool_conf c = { .name = "arch", .dir = sub, .max_bytes = 100, .manual = true };
	ig_err_init(&err);
	assert_int_equal(ig_spool_new(&c, deliver, &k, &s, &err), -ENOTDIR);
	assert_null(s);
	assert_non_null(strstr(ig_err_str(&err), "backends.arch: spool directory"));
	assert_non_null(strstr(ig_err_str(&err), "set spool_dir"));
	rm_rf(dir);
	free(dir);
}

static void test_memory_only_spool_is_bounded_too(void **state)
{
	(void)state;
	struct sink k = { .answer = { IG_DELIVER_RETRY }, .nscript = 1 };
	struct ig_spool *s = open_manual(NULL, &k, 6);
	struct ig_spool_stats st;

	push(s, "a", "123", 1, 1);
	push(s, "b", "456", 1, 2);
	push(s, "c", "789", 1, 3);
	ig_spool_stats(s, &st);
	assert_int_equal(st.dropped_batches, 1);
	assert_int_equal(ig_spool_step(s, 0), 1); /* RETRY */
	assert_int_equal(ig_spool_step(s, UINT64_MAX / 2), 1);
	assert_int_equal(k.delivered, 1);
	assert_string_equal(k.keys[0], "b");
	ig_spool_free(s); /* "c" is lost and logged */
}

/* Worker thread: delivery happens in the background; drain waits for it. */
struct slow_sink {
	int delivered;
	int fail_first;
};

static enum ig_deliver slow_deliver(void *ctx, const struct ig_batch *b, char *why, size_t len)
{
	struct slow_sink *k = ctx;

	usleep(2000);
	if (k->fail_first > 0) {
		k->fail_first--;
		snprintf(why, len, "server down");
		return IG_DELIVER_RETRY;
	}
	k->delivered++;
	return IG_DELIVER_OK;
}

static void test_worker_delivers_in_background_and_drain_waits(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct slow_sink k = { .fail_first = 2 };
	struct ig_spool_conf c = { .name = "w",
				   .dir = dir,
				   .max_bytes = 1 << 20,
				   .backoff_min_ns = 5 * MS,
				   .backoff_max_ns = 20 * MS };
	struct ig_spool *s = NULL;
	struct ig_err err;

	ig_err_init(&err);
	assert_int_equal(ig_spool_new(&c, slow_deliver, &k, &s, &err), 0);
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		push(s, key, "payload", 10, (uint64_t)i + 1);
	}
	/* Drain rides out the failures (their backoff is short here). */
	assert_int_equal(ig_spool_drain(s, 5 * IG_NSEC_PER_SEC), 0);
	assert_int_equal(k.delivered, 20);
	struct ig_spool_stats st;
	ig_spool_stats(s, &st);
	assert_int_equal(st.delivered_records, 200);
	assert_int_equal(st.failed_attempts, 2);
	ig_spool_free(s);
	assert_int_equal(count_files(dir, ".batch"), 0);
	rm_rf(dir);
	free(dir);
}

/* A reload: the new instance starts while the old one still holds the
 * directory, queues its own batches, and adopts the old one's when it goes. */
static void test_new_instance_adopts_the_old_ones_batches_after_it_exits(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink old_sink = { .answer = { IG_DELIVER_RETRY }, .nscript = 1 };
	struct ig_spool *old = open_manual(dir, &old_sink, 1 << 20);

	push(old, "old1", "a", 1, 1);
	push(old, "old2", "b", 1, 2);
	assert_int_equal(ig_spool_step(old, 0), 1); /* fails, stays */

	struct slow_sink k = { 0 };
	struct ig_spool_conf c = { .name = "w",
				   .dir = dir,
				   .max_bytes = 1 << 20,
				   .backoff_min_ns = 5 * MS,
				   .backoff_max_ns = 20 * MS };
	struct ig_spool *s = NULL;
	struct ig_err err;
	ig_err_init(&err);
	assert_int_equal(ig_spool_new(&c, slow_deliver, &k, &s, &err), 0);
	push(s, "new1", "c", 1, 3);
	usleep(50000);
	assert_int_equal(k.delivered, 0); /* waits for the lock */
	ig_spool_free(old);
	for (int i = 0; i < 500 && k.delivered < 3; i++)
		usleep(10000);
	assert_int_equal(k.delivered, 3);
	struct ig_spool_stats st;
	ig_spool_stats(s, &st);
	assert_int_equal(st.recovered_batches, 2);
	ig_spool_free(s);
	assert_int_equal(count_files(dir, ".batch"), 0);
	rm_rf(dir);
	free(dir);
}

static int concat_journal(void *ctx, const char *key, const void *data, size_t len,
			  uint64_t records, struct ig_batch *out)
{
	(void)ctx;
	(void)key;
	memset(out, 0, sizeof(*out));
	out->data = malloc(len + 1);
	memcpy(out->data, data, len);
	out->len = len;
	out->records = records;
	return 0;
}

static struct ig_spool *open_journaled(const char *dir, struct sink *k)
{
	struct ig_spool_conf c = { .name = "j",
				   .dir = dir,
				   .max_bytes = 1 << 20,
				   .backoff_min_ns = 100 * MS,
				   .backoff_max_ns = 1000 * MS,
				   .manual = true,
				   .fsync = true,
				   .journal_to_batch = concat_journal };
	struct ig_spool *s = NULL;
	struct ig_err err;

	ig_err_init(&err);
	int rc = ig_spool_new(&c, deliver, k, &s, &err);
	if (rc)
		fail_msg("ig_spool_new: %d %s", rc, ig_err_str(&err));
	return s;
}

static void append_to_journal(const char *dir, const void *bytes, size_t n)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls %s/*.journal", dir);
	FILE *p = popen(cmd, "r");
	char path[512];
	assert_non_null(fgets(path, sizeof(path), p));
	pclose(p);
	path[strcspn(path, "\n")] = '\0';
	FILE *f = fopen(path, "ab");
	assert_int_equal(fwrite(bytes, 1, n, f), n);
	fclose(f);
}

static void test_journal_of_a_crashed_run_becomes_its_batch_and_a_torn_tail_is_counted(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };
	struct ig_spool *s = open_journaled(dir, &k);
	struct ig_spool_stats st;

	assert_int_equal(ig_spool_journal_append(s, "k1", "aa", 2, 2), 0);
	assert_int_equal(ig_spool_journal_append(s, "k1", "bb", 2, 3), 0);
	ig_spool_stats(s, &st);
	assert_int_equal(st.journal_records, 5);
	ig_spool_free(s); /* a crash: the batch never closed */
	/* A machine crash tore the next frame: header of 100 bytes, 5 written. */
	const unsigned char torn[] = { 'I', 'G', 'W', '1', 100, 0,   0,	  0,   7,   0,	0,
				       0,   1,	 2,   3,   4,	'x', 'x', 'x', 'x', 'x' };
	append_to_journal(dir, torn, sizeof(torn));
	s = open_journaled(dir, &k);
	ig_spool_stats(s, &st);
	assert_int_equal(st.recovered_journals, 1);
	assert_int_equal(st.recovered_journal_records, 5);
	assert_int_equal(st.journal_lost_records, 7);
	assert_int_equal(st.crash_lost_records, 0); /* every acked record was journaled */
	assert_int_equal(count_files(dir, ".journal"), 0);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 1);
	assert_string_equal(k.keys[0], "k1");
	assert_string_equal(k.payloads[0], "aabb");
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_journal_whose_batch_was_already_spooled_is_not_stored_twice(void **state)
{
	(void)state;
	char *dir = make_dir();
	struct sink k = { 0 };
	struct ig_spool *s = open_journaled(dir, &k);
	struct ig_spool_stats st;

	assert_int_equal(ig_spool_journal_append(s, "k2", "cc", 2, 1), 0);
	push(s, "k2", "cc", 1, 100);
	ig_spool_free(s); /* a crash between storing the batch and ending its journal */
	assert_int_equal(count_files(dir, ".journal"), 1);
	s = open_journaled(dir, &k);
	ig_spool_stats(s, &st);
	assert_int_equal(st.recovered_batches, 1);
	assert_int_equal(st.recovered_journals, 0);
	assert_int_equal(count_files(dir, ".journal"), 0);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 1);
	ig_spool_free(s);
	rm_rf(dir);
	free(dir);
}

static void test_batch_the_disk_refuses_is_held_in_memory_and_counted(void **state)
{
	(void)state;
	char *dir = make_dir(), moved[600], cmd[1300];
	struct sink k = { 0 };
	struct ig_spool *s = open_journaled(dir, &k);
	struct ig_spool_stats st;

	assert_int_equal(ig_spool_journal_append(s, "k3", "dd", 2, 4), 0);
	/* The directory becomes unusable (as a full disk would be). */
	snprintf(moved, sizeof(moved), "%s.moved", dir);
	assert_int_equal(rename(dir, moved), 0);
	FILE *f = fopen(dir, "w");
	fclose(f);
	struct ig_batch b = { strdup("k3"), 4, 100, strdup("dd"), 2 };
	assert_true(ig_spool_push(s, &b) < 0);
	ig_spool_journal_end(s);
	ig_spool_stats(s, &st);
	assert_int_equal(st.memory_batches, 1);
	assert_int_equal(st.memory_records, 4);
	/* Now even the journal cannot be written: counted as at risk. */
	assert_true(ig_spool_journal_append(s, "k4", "ee", 2, 6) < 0);
	ig_spool_stats(s, &st);
	assert_int_equal(st.journal_errors, 1);
	assert_int_equal(st.journal_unsynced_records, 6);
	/* The memory-held batch's journal survived in the directory. */
	assert_int_equal(count_files(moved, ".journal"), 1);
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rename(moved, dir), 0);
	while (ig_spool_step(s, 0))
		;
	assert_int_equal(k.delivered, 1);
	ig_spool_stats(s, &st);
	assert_int_equal(st.memory_batches, 0);
	assert_int_equal(count_files(dir, ".journal"), 0); /* delivered: journal gone */
	/* The 6 unjournaled records of the open batch k4 are still at risk:
	 * the process dies now, and the next start counts them as lost. */
	ig_spool_free(s);
	s = open_journaled(dir, &k);
	ig_spool_stats(s, &st);
	assert_int_equal(st.crash_lost_records, 6);
	ig_spool_free(s);
	s = open_journaled(dir, &k); /* counted once, not at every start */
	ig_spool_stats(s, &st);
	assert_int_equal(st.crash_lost_records, 0);
	ig_spool_free(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, moved);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batches_are_spooled_then_delivered_oldest_first),
		cmocka_unit_test(test_transient_failures_back_off_exponentially_with_jitter),
		cmocka_unit_test(test_auth_failure_halts_and_keeps_batches_for_restart),
		cmocka_unit_test(test_over_the_bound_oldest_batches_are_dropped_and_counted),
		cmocka_unit_test(test_rejected_batch_is_dropped_and_the_next_goes_on),
		cmocka_unit_test(test_corrupt_and_half_written_files_are_removed_at_start),
		cmocka_unit_test(test_second_instance_on_the_same_directory_is_refused),
		cmocka_unit_test(test_unusable_directory_is_reported_with_what_to_do),
		cmocka_unit_test(test_memory_only_spool_is_bounded_too),
		cmocka_unit_test(test_worker_delivers_in_background_and_drain_waits),
		cmocka_unit_test(test_new_instance_adopts_the_old_ones_batches_after_it_exits),
		cmocka_unit_test(
			test_journal_of_a_crashed_run_becomes_its_batch_and_a_torn_tail_is_counted),
		cmocka_unit_test(test_journal_whose_batch_was_already_spooled_is_not_stored_twice),
		cmocka_unit_test(test_batch_the_disk_refuses_is_held_in_memory_and_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
