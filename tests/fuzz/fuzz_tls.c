/* fuzz_tls: the TLS hello parser (node-agent/tls_parse.c) on arbitrary bytes.
 *
 * Input: one byte (bit 0: the peer sent a HelloRetryRequest, so a second
 * ClientHello may follow; bits 1-7: how the rest is cut into feeds, as TCP
 * segments arrive, 0 = in one piece), then one direction of a TCP stream. Every hello the stream
 * completes is fingerprinted, and a few properties are checked: the fallible
 * functions agree with the side of the hello, JA4 is 36 characters, the
 * lengths returned equal the text written, the extension iterator counts
 * what the parser counted, and the same bytes fed in one piece give the same
 * result (reassembly does not depend on how the bytes were cut). The whole
 * input is also handed to ig_tls_parse_hello as one message.
 *
 * Seeds: tests/fuzz/corpus/fuzz_tls/ (both directions of the real handshakes
 * of test_tls_oracle: openssl, curl, Python, the hand-built 1.8 KB hello,
 * TLS 1.2 and 1.3, HRR, resumption).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void fingerprint(const struct ig_tls_hello *h, char *ja4_out)
{
	static char text[1 << 18];
	char md5[33], ja4[IG_TLS_JA4_LEN];
	bool client = h->type == IG_TLS_CLIENT_HELLO;
	int n;

	n = ig_tls_ja3(h, text, sizeof(text), md5);
	check(client ? n > 0 && (size_t)n == strlen(text) && strlen(md5) == 32 : n == -EINVAL);
	n = ig_tls_ja3s(h, text, sizeof(text), md5);
	check(!client ? n > 0 && (size_t)n == strlen(text) : n == -EINVAL);
	n = ig_tls_ja4(h, ja4);
	check(client ? n == 0 && strlen(ja4) == 36 : n == -EINVAL);
	n = ig_tls_ja4_r(h, text, sizeof(text));
	check(client ? n > 0 && (size_t)n == strlen(text) : n == -EINVAL);
	if (client && ja4_out)
		memcpy(ja4_out, ja4, sizeof(ja4));

	struct ig_tls_ext_iter it;
	uint16_t type, len, count = 0;
	const uint8_t *d;
	ig_tls_ext_begin(h, &it);
	while (ig_tls_ext_next(&it, &type, &d, &len))
		count++;
	check(count == h->n_ext);
	uint16_t pos = 0;
	const uint8_t *name;
	uint8_t nl;
	while (ig_tls_alpn_next(h, &pos, &name, &nl))
		check(name + nl <= h->alpn + h->alpn_len);
}

/* Feeds data cut by the pattern; returns the number of hellos, their JA4s
 * (or "" for a server hello) in ja4s, and the final status. */
static int run(struct ig_tls_stream *s, const uint8_t *data, size_t size, uint8_t pattern,
	       bool peer_hrr, char ja4s[4][IG_TLS_JA4_LEN], int *status)
{
	size_t off = 0;
	int hellos = 0, rc = IG_TLS_MORE;
	uint32_t step = (uint32_t)pattern;

	ig_tls_stream_reset(s);
	while (off < size) {
		size_t k = pattern ? (size - off < step ? size - off : step) : size - off;
		size_t used = 0;
		rc = ig_tls_stream_feed(s, data + off, k, &used);
		check(used <= k);
		off += used;
		if (rc == IG_TLS_HELLO) {
			const struct ig_tls_hello *h = ig_tls_stream_hello(s);
			check(h != NULL);
			char *out = hellos < 4 ? ja4s[hellos] : NULL;
			if (out)
				out[0] = '\0';
			fingerprint(h, out);
			if (hellos++ == 0 && h->type == IG_TLS_CLIENT_HELLO && peer_hrr)
				ig_tls_stream_expect_hello(s);
			continue;
		}
		if (rc < 0)
			break;
		check(used == k);
		step = step * 7 % 251 + 1;
	}
	*status = rc;
	return hellos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ig_tls_stream *s;
	struct ig_tls_hello h;
	char a[4][IG_TLS_JA4_LEN], b[4][IG_TLS_JA4_LEN];
	int sa, sb;

	if (!s) { /* once per process */
		s = ig_tls_stream_new(0);
		if (!s)
			abort();
	}
	if (ig_tls_parse_hello(data, size, &h) == 0)
		fingerprint(&h, NULL);
	if (size < 1)
		return 0;
	bool peer_hrr = data[0] & 1;
	int na = run(s, data + 1, size - 1, data[0] >> 1, peer_hrr, a, &sa);
	/* The same bytes in one piece. */
	int nb = run(s, data + 1, size - 1, 0, peer_hrr, b, &sb);
	check(na == nb && sa == sb);
	for (int i = 0; i < na && i < 4; i++)
		check(!strcmp(a[i], b[i]));
	return 0;
}
