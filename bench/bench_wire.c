/* bench_wire: the wire format versions side by side on typical records: a
 * file.open from a pod (full identity, two labels, path/flags/ret), batched
 * as the agent does (512 records per envelope).
 *
 *   bench_wire [RECORDS [ROUNDS]]   (default 1000000 records, 5 rounds)
 *
 * Each round encodes and decodes RECORDS records with version 1, then with
 * version 2 (interleaved rounds, one process); the table gives medians per
 * version and the ratio v2/v1. Encode = ig_wire_enc_add per record plus
 * ig_wire_enc_finish per envelope; decode = ig_wire_decode (the validating
 * pass) plus ig_wire_next for every record, i.e. what the aggregator does
 * before its pipelines. The breakdown splits those into their parts (ns per
 * record); "fill" is building the record itself, as a probe does, and is
 * not counted in encode. Allocations per record count every malloc, calloc
 * and realloc in the timed part (bench_alloc.h). Thread CPU time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_alloc.h"
#include "ig_wire.h"

#define BATCH 512

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(struct ig_record *r, unsigned i)
{
	char path[64];
	int n = snprintf(path, sizeof(path), "/var/lib/app/data/segment-%06u.log", i % 100000);

	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->ts_ns = 1700000000000000000ULL + i;
	r->pid = 4000 + i % 64;
	r->tid = r->pid;
	r->ppid = 1;
	r->uid = 1000;
	r->gid = 1000;
	r->comm = "java";
	r->cgroup_id = 12345;
	r->id.scope = "pod";
	r->id.runtime = "containerd";
	r->id.container_id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";
	r->id.pod_uid = "8a1e2c34-5b6d-4e7f-8091-a2b3c4d5e6f7";
	r->id.pod_name = "orders-7d9f8b6c5-x2x4z";
	r->id.namespace_ = "shop";
	r->id.container_name = "orders";
	r->id.image = "registry.example.com/shop/orders:1.42.0";
	r->id.owner_kind = "Deployment";
	r->id.owner_name = "orders";
	ig_record_add_label(r, "app", "orders");
	ig_record_add_label(r, "tier", "backend");
	ig_record_add_str(r, "path", path, (size_t)n);
	ig_record_add_uint(r, "flags", 0x80000);
	ig_record_add_int(r, "ret", 7);
}

struct result {
	double bytes_per_rec;
	double fill_ns, add_ns, finish_ns, validate_ns, next_ns; /* per record */
	double enc_allocs, dec_allocs; /* per record */
};

static int run(unsigned version, long total, struct ig_record *r, struct result *res)
{
	long nenv = (total + BATCH - 1) / BATCH;
	struct ig_wire_enc *e = ig_wire_enc_new_version(version);
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	size_t bytes = 0;
	long done = 0, seen = 0;
	double t_fill = 0, t_add = 0, t_fin = 0, t_val = 0, t_next = 0, t;
	uint64_t a0, a1, a2, enc_allocs, dec_allocs;

	if (!e || !d) {
		fprintf(stderr, "bench_wire: out of memory\n");
		return -1;
	}
	/* fill alone, to subtract nothing and still show its size */
	t = now_s();
	for (long i = 0; i < total; i++)
		fill(r, (unsigned)i);
	t_fill = now_s() - t;
	/* Envelope by envelope, as in steady state: encode one, decode it,
	 * free it (the agent frees an envelope once it is acknowledged, so
	 * its next one reuses that memory). Allocations are counted apart
	 * for the two sides. */
	enc_allocs = dec_allocs = 0;
	for (long k = 0; k < nenv; k++) {
		struct ig_envelope_hdr h = { .agent_id = "bench",
					     .node = "n1",
					     .boot_id = 1,
					     .seq = (uint64_t)k + 1,
					     .sent_ns = 1 };
		struct ig_envelope_hdr got;
		struct ig_err err;
		void *buf;
		size_t len;

		a0 = bench_alloc_count();
		ig_wire_enc_reset(e);
		/* Timed per envelope (a clock read per record would cost more
		 * than v2's encoding); the fill time measured above is taken
		 * off afterwards. */
		t = now_s();
		for (int i = 0; i < BATCH && done < total; i++, done++) {
			fill(r, (unsigned)done);
			if (ig_wire_enc_add(e, r) < 0) {
				fprintf(stderr, "bench_wire: encode failed\n");
				return -1;
			}
		}
		t_add += now_s() - t;
		t = now_s();
		if (ig_wire_enc_finish(e, &h, &buf, &len) < 0) {
			fprintf(stderr, "bench_wire: out of memory\n");
			return -1;
		}
		t_fin += now_s() - t;
		bytes += len;
		a1 = bench_alloc_count();
		ig_err_init(&err);
		t = now_s();
		if (ig_wire_decode(d, buf, len, &got, &err) < 0) {
			fprintf(stderr, "bench_wire: v%u decode failed: %s\n", version,
				ig_err_str(&err));
			return -1;
		}
		t_val += now_s() - t;
		t = now_s();
		while (ig_wire_next(d, r) == 1)
			seen++;
		t_next += now_s() - t;
		a2 = bench_alloc_count();
		enc_allocs += a1 - a0;
		dec_allocs += a2 - a1;
		free(buf);
	}
	if (seen != total) {
		fprintf(stderr, "bench_wire: decoded %ld of %ld records\n", seen, total);
		return -1;
	}
	res->bytes_per_rec = (double)bytes / (double)total;
	res->fill_ns = t_fill * 1e9 / (double)total;
	res->add_ns = (t_add - t_fill) * 1e9 / (double)total;
	res->finish_ns = t_fin * 1e9 / (double)total;
	res->validate_ns = t_val * 1e9 / (double)total;
	res->next_ns = t_next * 1e9 / (double)total;
	/* The envelope buffer (one malloc per envelope, which the agent hands
	 * to its sender) is counted. */
	res->enc_allocs = (double)enc_allocs / (double)total;
	res->dec_allocs = (double)dec_allocs / (double)total;
	ig_wire_enc_free(e);
	ig_wire_dec_free(d);
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAXR 31

static double med(const struct result *rs, int n, size_t off)
{
	double v[MAXR];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&rs[i] + off);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_d);
	return v[n / 2];
}

#define MED(rs, n, member) med(rs, n, offsetof(struct result, member))

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 1000000;
	int rounds = argc > 2 ? atoi(argv[2]) : 5;
	struct ig_record *r = malloc(sizeof(*r));
	static struct result res[2][MAXR];
	double enc[2], dec[2];

	if (total <= 0 || rounds <= 0 || rounds > MAXR || !r) {
		fprintf(stderr, "usage: bench_wire [RECORDS > 0 [ROUNDS 1..%d]]\n", MAXR);
		return 2;
	}
	for (int k = 0; k < rounds; k++)
		for (unsigned v = 1; v <= 2; v++)
			if (run(v, total, r, &res[v - 1][k]) < 0)
				return 1;
	printf("wire format, pod file.open records, %ld records x %d rounds (median), "
	       "512 per envelope, thread CPU time:\n",
	       total, rounds);
	printf("  %-34s %12s %12s %8s\n", "", "v1", "v2", "v2/v1");
	for (int v = 0; v < 2; v++) {
		enc[v] = 1e3 / (MED(res[v], rounds, add_ns) + MED(res[v], rounds, finish_ns));
		dec[v] = 1e3 / (MED(res[v], rounds, validate_ns) + MED(res[v], rounds, next_ns));
	}
#define ROW(label, fmt, a, b) printf("  %-34s " fmt " " fmt " %8.3f\n", label, a, b, (b) / (a))
	ROW("bytes per record", "%12.1f", MED(res[0], rounds, bytes_per_rec),
	    MED(res[1], rounds, bytes_per_rec));
	ROW("encode, M records/s per core", "%12.2f", enc[0], enc[1]);
	ROW("decode, M records/s per core", "%12.2f", dec[0], dec[1]);
	ROW("  encode: ig_wire_enc_add ns/rec", "%12.1f", MED(res[0], rounds, add_ns),
	    MED(res[1], rounds, add_ns));
	ROW("  encode: enc_finish ns/rec", "%12.1f", MED(res[0], rounds, finish_ns),
	    MED(res[1], rounds, finish_ns));
	ROW("  decode: validate ns/rec", "%12.1f", MED(res[0], rounds, validate_ns),
	    MED(res[1], rounds, validate_ns));
	ROW("  decode: ig_wire_next ns/rec", "%12.1f", MED(res[0], rounds, next_ns),
	    MED(res[1], rounds, next_ns));
	ROW("  (record fill, not counted) ns", "%12.1f", MED(res[0], rounds, fill_ns),
	    MED(res[1], rounds, fill_ns));
	printf("  %-34s %12.4f %12.4f\n", "allocations per record, encode",
	       res[0][rounds - 1].enc_allocs, res[1][rounds - 1].enc_allocs);
	printf("  %-34s %12.4f %12.4f\n", "allocations per record, decode",
	       res[0][rounds - 1].dec_allocs, res[1][rounds - 1].dec_allocs);
	printf("encode_rec_per_s_v1=%.0f encode_rec_per_s_v2=%.0f decode_rec_per_s_v1=%.0f "
	       "decode_rec_per_s_v2=%.0f bytes_per_rec_v1=%.1f bytes_per_rec_v2=%.1f\n",
	       enc[0] * 1e6, enc[1] * 1e6, dec[0] * 1e6, dec[1] * 1e6,
	       MED(res[0], rounds, bytes_per_rec), MED(res[1], rounds, bytes_per_rec));
	free(r);
	return 0;
}
