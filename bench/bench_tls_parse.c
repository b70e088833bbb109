/* bench_tls_parse: user-space cost of one handshake in the tls probe's parser:
 * a 1.8 KB browser-like ClientHello (tests/integration/tls_hello.py) and an
 * openssl ServerHello fed through ig_tls_stream, then JA3, JA4, JA4_r and JA3S,
 * as probe_tls.c does per connection. Prints ns per handshake.
 *
 *   bench_tls_parse CLIENT_BYTES SERVER_BYTES [ITERATIONS]
 * (bench_tls.sh passes two seeds of tests/fuzz/corpus/fuzz_tls without
 * their first byte.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls_parse.h"

static uint8_t *load(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *b = malloc(1 << 16);
	*n = fread(b, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	size_t cn, sn;
	uint8_t *c = load(argv[1], &cn), *s = load(argv[2], &sn);
	int iters = argc > 3 ? atoi(argv[3]) : 20000;
	static char text[8192];
	char md5[33], ja4[IG_TLS_JA4_LEN];
	if (!c || !s)
		return 1;
	uint64_t t_parse = 0, t_fp = 0;
	for (int i = 0; i < iters; i++) {
		uint64_t t0 = now_ns();
		struct ig_tls_stream *a = ig_tls_stream_new(0), *b = ig_tls_stream_new(0);
		size_t used;
		if (ig_tls_stream_feed(a, c, cn, &used) != IG_TLS_HELLO ||
		    ig_tls_stream_feed(b, s, sn, &used) != IG_TLS_HELLO)
			return 2;
		uint64_t t1 = now_ns();
		const struct ig_tls_hello *ch = ig_tls_stream_hello(a),
					  *sh = ig_tls_stream_hello(b);
		ig_tls_ja3(ch, text, sizeof(text), md5);
		ig_tls_ja4(ch, ja4);
		ig_tls_ja4_r(ch, text, sizeof(text));
		ig_tls_ja3s(sh, text, sizeof(text), md5);
		uint64_t t2 = now_ns();
		ig_tls_stream_free(a);
		ig_tls_stream_free(b);
		t_parse += t1 - t0;
		t_fp += t2 - t1;
	}
	printf("per handshake: streams+parse %.0f ns, fingerprints (JA3, JA4, JA4_r, JA3S) %.0f ns\n",
	       (double)t_parse / iters, (double)t_fp / iters);
	return 0;
}
