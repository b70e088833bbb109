/* bench_durability: what "acked means durable" costs per envelope, side by
 * side in one run: the agent's disk buffer append (ig_dbuf_append + pop) and
 * the aggregator's open-batch journal (ig_spool_journal_append), each without
 * and with fdatasync, for envelopes of the agent's default size (512 records
 * of ~150 bytes of wire format, ~75 KiB; the journal frame holds the same
 * records as JSON lines, ~400 bytes each).
 *
 *   bench_durability [ENVELOPES] [DIR]   (default 400, a temp dir under /tmp)
 *   -> one line per configuration: us_per_envelope, envelopes_per_s,
 *      records_per_s (at 512 records per envelope), and the fsync/no-fsync ratio.
 *
 * The numbers depend on the disk under DIR: run it on the volume the agent's
 * buffer_dir / the aggregator's spool_dir use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk_buffer.h"
#include "ig_log.h"
#include "spool.h"

#define RECORDS 512

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum ig_deliver never(void *ctx, const struct ig_batch *b, char *why, size_t len)
{
	(void)ctx, (void)b, (void)why, (void)len;
	return IG_DELIVER_RETRY;
}

static int to_batch(void *ctx, const char *key, const void *data, size_t len, uint64_t records,
		    struct ig_batch *out)
{
	(void)ctx, (void)key, (void)data, (void)len, (void)records, (void)out;
	return -ENOSYS;
}

static double agent_buffer(const char *dir, bool fsync, int n, const char *env, size_t len)
{
	struct ig_dbuf_opts o = { .dir = dir, .fsync = fsync };
	struct ig_dbuf *d;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_dbuf_open(&d, &o, &err)) {
		fprintf(stderr, "%s", ig_err_str(&err));
		exit(1);
	}
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		if (ig_dbuf_append(d, (uint64_t)i + 1, env, len, RECORDS))
			exit(1);
		ig_dbuf_pop(d); /* acked at once, as in steady state */
	}
	double t = now_s() - t0;
	ig_dbuf_close(d);
	return t;
}

static double journal(const char *dir, bool fsync, int n, const char *lines, size_t len)
{
	struct ig_spool_conf c = { .name = "bench",
				   .dir = dir,
				   .max_bytes = 1ull << 40,
				   .fsync = fsync,
				   .manual = true,
				   .journal_to_batch = to_batch };
	struct ig_spool *s;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_spool_new(&c, never, NULL, &s, &err)) {
		fprintf(stderr, "%s", ig_err_str(&err));
		exit(1);
	}
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		if (ig_spool_journal_append(s, "bench/key", lines, len, RECORDS))
			exit(1);
		if (i % 100 == 99)
			ig_spool_journal_end(s); /* a batch closes now and then */
	}
	double t = now_s() - t0;
	ig_spool_journal_end(s);
	ig_spool_free(s);
	return t;
}

static void row(const char *what, double t, int n, double base)
{
	printf("%-32s us_per_envelope=%8.1f envelopes_per_s=%8.0f records_per_s=%9.0f ratio=%.1f\n",
	       what, t / n * 1e6, n / t, n * (double)RECORDS / t, t / base);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 400;
	char tmpl[] = "/tmp/ingrain-bench-durability-XXXXXX", dir[600], cmd[700];
	const char *base = argc > 2 ? argv[2] : mkdtemp(tmpl);
	size_t elen = RECORDS * 150, jlen = RECORDS * 400;
	char *env = malloc(elen), *lines = malloc(jlen);

	ig_log_init("bench", IG_LOG_ERROR, IG_LOG_LOGFMT);
	for (size_t i = 0; i < elen; i++)
		env[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < jlen; i++)
		lines[i] = i % 400 == 399 ? '\n' : (char)('a' + i % 26);
	snprintf(dir, sizeof(dir), "%s/agent", base);
	double a0 = agent_buffer(dir, false, n, env, elen);
	double a1 = agent_buffer(dir, true, n, env, elen);
	snprintf(dir, sizeof(dir), "%s/spool", base);
	double j0 = journal(dir, false, n, lines, jlen);
	double j1 = journal(dir, true, n, lines, jlen);
	row("agent buffer, write only", a0, n, a0);
	row("agent buffer, fdatasync", a1, n, a0);
	row("aggregator journal, write only", j0, n, j0);
	row("aggregator journal, fdatasync", j1, n, j0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (argc <= 2 && system(cmd)) {
	}
	free(env);
	free(lines);
	return 0;
}
