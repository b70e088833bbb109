/* ig_tls_fp: runs the agent's TLS parser (node-agent/tls_parse.c) over one
 * direction of a TCP stream and prints what it found, one line per hello, as
 * tab-separated key=value pairs. The tshark oracle test feeds it the bytes
 * tshark's "follow,tcp,raw" printed (hex, any whitespace) and compares.
 *
 * Usage: ig_tls_fp [-r] [max_msg] < hex
 *   -r: the peer answered the first ClientHello with a HelloRetryRequest, so
 *       a second ClientHello follows (what the probe tells the client stream
 *       when it sees the HRR on the server stream).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_parse.h"

static void print_list(const char *key, const struct ig_tls_list *l, bool skip_grease)
{
	printf("\t%s=", key);
	bool first = true;
	for (uint32_t i = 0; i < l->n; i++) {
		uint16_t v = ig_tls_list_at(l, i);
		if (skip_grease && ig_tls_is_grease(v))
			continue;
		printf("%s%u", first ? "" : ",", v);
		first = false;
	}
}

static void print_hello(const struct ig_tls_hello *h)
{
	static char text[1 << 20];
	char md5[33], ja4[IG_TLS_JA4_LEN];
	bool client = h->type == IG_TLS_CLIENT_HELLO;

	printf("type=%s\thrr=%d\trecord_version=%u\tlegacy_version=%u\tversion=%u",
	       client ? "client" : "server", h->hrr, h->record_version, h->legacy_version,
	       h->version);
	if (client) {
		ig_tls_ja3(h, text, sizeof(text), md5);
		printf("\tja3=%s\tja3_full=%s", md5, text);
		ig_tls_ja4(h, ja4);
		printf("\tja4=%s", ja4);
		ig_tls_ja4_r(h, text, sizeof(text));
		printf("\tja4_r=%s", text);
	} else {
		ig_tls_ja3s(h, text, sizeof(text), md5);
		printf("\tja3s=%s\tja3s_full=%s", md5, text);
	}
	printf("\tsni=%.*s", h->has_sni && h->sni ? (int)h->sni_len : 0,
	       h->sni ? (const char *)h->sni : "");
	printf("\talpn=");
	uint16_t pos = 0;
	const uint8_t *name;
	uint8_t len;
	bool first = true;
	while (ig_tls_alpn_next(h, &pos, &name, &len)) {
		printf("%s%.*s", first ? "" : ",", (int)len, (const char *)name);
		first = false;
	}
	print_list("ciphers", &h->ciphers, false);
	print_list("versions", &h->versions, false);
	print_list("groups", &h->groups, false);
	print_list("sigalgs", &h->sigalgs, false);
	printf("\tkey_share=");
	for (uint32_t i = 0; i < h->n_key_share && i < IG_TLS_KEY_SHARES_MAX; i++)
		printf("%s%u", i ? "," : "", h->key_share[i]);
	printf("\text=");
	struct ig_tls_ext_iter it;
	uint16_t type, elen;
	const uint8_t *data;
	first = true;
	ig_tls_ext_begin(h, &it);
	while (ig_tls_ext_next(&it, &type, &data, &elen)) {
		printf("%s%u", first ? "" : ",", type);
		first = false;
	}
	printf("\tpsk=%d\tticket=%d\tsession_id_len=%u\n", h->psk, h->ticket, h->session_id_len);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int main(int argc, char **argv)
{
	bool peer_hrr = argc > 1 && !strcmp(argv[1], "-r");
	if (peer_hrr) {
		argc--;
		argv++;
	}
	size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	int c, hi = -1;

	while (buf && (c = getchar()) != EOF) {
		int v = hexval(c);
		if (v < 0)
			continue;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		if (buf)
			buf[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	struct ig_tls_stream *s = ig_tls_stream_new(max);
	if (!buf || !s) {
		fprintf(stderr, "ig_tls_fp: out of memory\n");
		return 2;
	}
	size_t off = 0, used;
	int rc = 0, hellos = 0;
	while (off < n) {
		rc = ig_tls_stream_feed(s, buf + off, n - off, &used);
		off += used;
		if (rc == IG_TLS_HELLO) {
			print_hello(ig_tls_stream_hello(s));
			if (hellos++ == 0 && peer_hrr)
				ig_tls_stream_expect_hello(s);
			continue;
		}
		break;
	}
	if (rc < 0)
		printf("error=%s\n", strerror(-rc));
	ig_tls_stream_free(s);
	free(buf);
	return hellos ? 0 : 1;
}
