/* bench_wire: throughput of the wire format on typical records: a file.open
 * from a pod (full identity, two labels, path/flags/ret), batched as the
 * agent does (512 records per envelope).
 *
 *   bench_wire [RECORDS]   (default 2000000)
 *   -> "encode_rec_per_s=<n> decode_rec_per_s=<n> bytes_per_rec=<n> records=<n>"
 *
 * Encode = ig_wire_enc_add per record plus ig_wire_enc_finish per envelope.
 * Decode = ig_wire_decode (the validating pass) plus ig_wire_next for every
 * record, i.e. what the aggregator does before its pipelines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ig_wire.h"

#define BATCH 512

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
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

int main(int argc, char **argv)
{
	long total = argc > 1 ? atol(argv[1]) : 2000000;
	long nenv = (total + BATCH - 1) / BATCH;
	struct ig_record *r = malloc(sizeof(*r));
	struct ig_wire_enc *e = ig_wire_enc_new();
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	void **bufs = calloc((size_t)nenv, sizeof(*bufs));
	size_t *lens = calloc((size_t)nenv, sizeof(*lens));
	size_t bytes = 0;
	long done = 0, seen = 0;
	double t0, t1, t2;

	if (total <= 0 || !r || !e || !d || !bufs || !lens) {
		fprintf(stderr, "usage: bench_wire [RECORDS > 0]\n");
		return 2;
	}
	/* Records are prepared inside the timed loop as the agent's probes
	 * would hand them over; fill() is cheap next to encoding. */
	t0 = now_s();
	for (long k = 0; k < nenv; k++) {
		struct ig_envelope_hdr h = { .v = IG_WIRE_VERSION,
					     .agent_id = "bench",
					     .node = "n1",
					     .boot_id = 1,
					     .seq = (uint64_t)k + 1,
					     .sent_ns = 1 };
		ig_wire_enc_reset(e);
		for (int i = 0; i < BATCH && done < total; i++, done++) {
			fill(r, (unsigned)done);
			if (ig_wire_enc_add(e, r) < 0) {
				fprintf(stderr, "bench_wire: encode failed\n");
				return 1;
			}
		}
		if (ig_wire_enc_finish(e, &h, &bufs[k], &lens[k]) < 0) {
			fprintf(stderr, "bench_wire: out of memory\n");
			return 1;
		}
		bytes += lens[k];
	}
	t1 = now_s();
	for (long k = 0; k < nenv; k++) {
		struct ig_envelope_hdr h;
		struct ig_err err;

		ig_err_init(&err);
		if (ig_wire_decode(d, bufs[k], lens[k], &h, &err) < 0) {
			fprintf(stderr, "bench_wire: decode failed: %s\n", ig_err_str(&err));
			return 1;
		}
		while (ig_wire_next(d, r) == 1)
			seen++;
	}
	t2 = now_s();
	if (seen != total) {
		fprintf(stderr, "bench_wire: decoded %ld of %ld records\n", seen, total);
		return 1;
	}
	printf("encode_rec_per_s=%.0f decode_rec_per_s=%.0f bytes_per_rec=%.1f records=%ld\n",
	       (double)total / (t1 - t0), (double)total / (t2 - t1), (double)bytes / (double)total,
	       total);
	for (long k = 0; k < nenv; k++)
		free(bufs[k]);
	free(bufs);
	free(lens);
	free(r);
	ig_wire_enc_free(e);
	ig_wire_dec_free(d);
	return 0;
}
