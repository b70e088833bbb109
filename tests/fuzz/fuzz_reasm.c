/* fuzz_reasm: the capture layer's TCP reassembler (node-agent/reasm.c)
 * driven by arbitrary segment sequences: positions (relative sequence
 * numbers, wrapping), lengths, duplicates, holes, consumption, several
 * streams, eviction and ageing.
 *
 * Every byte of the true stream at sequence number s is (s * 131 + 7) & 0xff,
 * so what the reader is given can be checked: until the first gap is
 * reported, the i-th byte read must be the byte at first_seq + i. Bounds
 * hold at every step (bytes held per stream, streams held).
 *
 * Input: a list of 8-byte operations
 *   [op][stream][off_hi][off_lo][len][consume][t][pad]
 * Seeds: tests/fuzz/corpus/fuzz_reasm/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BYTES 256
#define MAX_FLOWS 4
#define BASE 0xfffff000u /* wraps inside the input's range */

static void check(int cond)
{
	if (!cond)
		abort();
}

static uint8_t byte_at(uint32_t seq)
{
	return (uint8_t)(seq * 131u + 7u);
}

struct model {
	int started, gapped;
	uint32_t next; /* sequence number of the next byte the reader should see */
};

static void on_drop(void *ctx, struct ig_reasm_stream *s, bool evicted)
{
	struct model *m = ctx;
	(void)evicted;
	memset(&m[ig_reasm_cookie(s) % 8], 0, sizeof(*m));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model m[8];
	struct ig_reasm_opts o = { MAX_FLOWS, MAX_BYTES, 1000, 8 };
	struct ig_reasm *r;
	uint8_t seg[256];
	uint64_t now = 1;

	memset(m, 0, sizeof(m));
	r = ig_reasm_new(&o, on_drop, m);
	if (!r)
		return 0;
	for (size_t i = 0; i + 8 <= size; i += 8) {
		const uint8_t *op = data + i;
		uint64_t cookie = op[1] % 8;
		uint32_t seq = BASE + (((uint32_t)op[2] << 8) | op[3]);
		size_t len = op[4];
		now += op[6];
		if (op[0] % 4 == 3) {
			ig_reasm_expire(r, now);
			continue;
		}
		struct ig_reasm_stream *s = ig_reasm_get(r, cookie, 0, now, true);
		if (!s)
			continue;
		struct model *md = &m[cookie];
		if (!md->started && len > 0) { /* a stream starts at its first byte */
			md->started = 1;
			md->next = seq;
		}
		for (size_t k = 0; k < len; k++)
			seg[k] = byte_at(seq + (uint32_t)k);
		ig_reasm_add(r, s, seq, seg, len, now);
		check(ig_reasm_held(s) <= MAX_BYTES);
		if (ig_reasm_take_gap(s))
			md->gapped = 1;
		size_t n;
		const uint8_t *d = ig_reasm_data(s, &n);
		if (!md->gapped)
			for (size_t k = 0; k < n; k++)
				check(d[k] == byte_at(md->next + (uint32_t)k));
		size_t c = op[5] % 2 ? n : (op[5] < n ? op[5] : n);
		ig_reasm_consume(s, c);
		md->next += (uint32_t)c;
		struct ig_reasm_stats st;
		ig_reasm_stats(r, &st);
		check(st.live <= MAX_FLOWS);
	}
	ig_reasm_free(r);
	return 0;
}
