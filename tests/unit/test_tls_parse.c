/* test_tls_parse: the TLS hello parser and fingerprints (node-agent/tls_parse.c).
 *
 * The fingerprints are checked against the published vectors: JA3's from
 * Salesforce's README, JA4's from FoxIO's technical_details/JA4.md and, for
 * the non-ASCII ALPN case, FoxIO's reference output for its
 * tls-non-ascii-alpn.pcapng capture (t13d151699_...). The hellos are built
 * here field by field, so each test states exactly what is on the wire.
 * Hostile input: lengths past their enclosure, truncation at every byte, the
 * most extensions a block can hold, repeated types, bounds of the stream.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tls_parse.h"

/* ---- a hello builder ---- */

struct buf {
	uint8_t b[80000];
	size_t n;
};

static void put8(struct buf *b, unsigned v)
{
	assert_true(b->n < sizeof(b->b));
	b->b[b->n++] = (uint8_t)v;
}

static void put16(struct buf *b, unsigned v)
{
	put8(b, v >> 8);
	put8(b, v);
}

static void put(struct buf *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->b));
	if (n) /* p may be NULL for an empty extension */
		memcpy(b->b + b->n, p, n);
	b->n += n;
}

/* Backpatch a length of width bytes at off, covering everything after it. */
static void patch(struct buf *b, size_t off, int width)
{
	size_t len = b->n - off - (size_t)width;
	for (int i = width - 1; i >= 0; i--, len >>= 8)
		b->b[off + (size_t)i] = (uint8_t)len;
}

struct ext {
	uint16_t type;
	const uint8_t *data;
	size_t len;
};

struct hello_spec {
	uint16_t version;
	const uint16_t *ciphers;
	size_t nciphers;
	const struct ext *exts;
	size_t nexts; /* (size_t)-1: no extensions block at all */
	const uint8_t *random; /* server: NULL = a plain random */
};

/* A ClientHello (or ServerHello with server) handshake message. */
static void build_hello(struct buf *b, const struct hello_spec *s, bool server)
{
	b->n = 0;
	put8(b, server ? IG_TLS_SERVER_HELLO : IG_TLS_CLIENT_HELLO);
	put8(b, 0);
	put16(b, 0); /* 24-bit length, patched */
	put16(b, s->version);
	if (s->random)
		put(b, s->random, 32);
	else
		for (int i = 0; i < 32; i++)
			put8(b, (unsigned)i * 7);
	put8(b, 32);
	for (int i = 0; i < 32; i++)
		put8(b, (unsigned)i);
	if (server) {
		put16(b, s->ciphers[0]);
		put8(b, 0);
	} else {
		put16(b, (unsigned)(2 * s->nciphers));
		for (size_t i = 0; i < s->nciphers; i++)
			put16(b, s->ciphers[i]);
		put8(b, 1);
		put8(b, 0);
	}
	if (s->nexts != (size_t)-1) {
		size_t at = b->n;
		put16(b, 0);
		for (size_t i = 0; i < s->nexts; i++) {
			put16(b, s->exts[i].type);
			put16(b, (unsigned)s->exts[i].len);
			put(b, s->exts[i].data, s->exts[i].len);
		}
		patch(b, at, 2);
	}
	patch(b, 0, 4);
	b->b[0] = server ? IG_TLS_SERVER_HELLO : IG_TLS_CLIENT_HELLO;
}

/* The message wrapped in records of at most frag bytes each. */
static void wrap_records(struct buf *out, const uint8_t *msg, size_t n, size_t frag)
{
	out->n = 0;
	for (size_t off = 0; off < n; off += frag) {
		size_t k = n - off < frag ? n - off : frag;
		put8(out, 22);
		put16(out, 0x0301);
		put16(out, (unsigned)k);
		put(out, msg + off, k);
	}
}

/* ---- the JA4 spec's ClientHello ---- */

static const uint16_t spec_ciphers[] = { 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
					 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
					 0xc014, 0x009c, 0x009d, 0x002f, 0x0035 };

static const uint8_t sni_example[] = { 0x00, 0x0e, 0x00, 0x00, 0x0b, 'e', 'x', 'a',
				       'm',  'p',  'l',	 'e',  '.',  'c', 'o', 'm' };
static const uint8_t alpn_h2[] = { 0x00, 0x0c, 0x02, 'h', '2', 0x08, 'h',
				   't',	 't',  'p',  '/', '1', '.',  '1' };
static const uint8_t key_share_x25519[] = { 0x00, 0x06, 0x00, 0x1d, 0x00, 0x02, 0xaa, 0xbb };
static const uint8_t groups[] = { 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18 };
static const uint8_t point_formats[] = { 0x01, 0x00 };
static const uint8_t sigalgs[] = { 0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05,
				   0x03, 0x08, 0x05, 0x05, 0x01, 0x08, 0x06, 0x06, 0x01 };
static const uint8_t versions13[] = { 0x04, 0x03, 0x04, 0x03, 0x03 };
static const uint8_t psk_modes[] = { 0x01, 0x01 };
static const uint8_t reneg[] = { 0x00 };
static const uint8_t compress_cert[] = { 0x02, 0x00, 0x02 };
static const uint8_t alps[] = { 0x00, 0x03, 0x02, 'h', '2' };
static const uint8_t status_req[] = { 0x01, 0x00, 0x00, 0x00, 0x00 };
static const uint8_t padding[] = { 0, 0, 0, 0, 0, 0, 0, 0 };

#define E(t, d)                 \
	{                       \
		t, d, sizeof(d) \
	}
#define E0(t)              \
	{                  \
		t, NULL, 0 \
	}

/* Wire order of technical_details/JA4.md's example. */
static const struct ext spec_exts[] = {
	E(0x001b, compress_cert),
	E(0x0000, sni_example),
	E(0x0033, key_share_x25519),
	E(0x0010, alpn_h2),
	E(0x4469, alps),
	E0(0x0017),
	E(0x002d, psk_modes),
	E(0x000d, sigalgs),
	E(0x0005, status_req),
	E0(0x0023),
	E0(0x0012),
	E(0x002b, versions13),
	E(0xff01, reneg),
	E(0x000b, point_formats),
	E(0x000a, groups),
	E(0x0015, padding),
};

static void parse_ok(struct buf *b, struct ig_tls_hello *h)
{
	assert_int_equal(ig_tls_parse_hello(b->b, b->n, h), 0);
}

static void spec_hello(struct buf *b, const struct ext *exts, size_t n)
{
	struct hello_spec s = { 0x0303, spec_ciphers, 15, exts, n, NULL };
	build_hello(b, &s, false);
}

static void test_ja4_equals_the_spec_example(void **state)
{
	static struct buf b;
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN], raw[1024];

	spec_hello(&b, spec_exts, 16);
	parse_ok(&b, &h);
	assert_int_equal(ig_tls_ja4(&h, ja4), 0);
	assert_string_equal(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
	int n = ig_tls_ja4_r(&h, raw, sizeof(raw));
	assert_string_equal(raw, "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,"
				 "c02c,c02f,c030,cca8,cca9_0005,000a,000b,000d,0012,0015,0017,"
				 "001b,0023,002b,002d,0033,4469,ff01_0403,0804,0401,0503,0805,"
				 "0501,0806,0601");
	assert_int_equal(n, (int)strlen(raw));
	/* A truncated buffer still gets the exact length back. */
	char small[8];
	assert_int_equal(ig_tls_ja4_r(&h, small, sizeof(small)), n);
	assert_string_equal(small, "t13d151");
}

static void test_ja4_without_signature_algorithms_has_no_underscore(void **state)
{
	static struct buf b;
	struct ext exts[16];
	size_t n = 0;
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN];

	for (size_t i = 0; i < 16; i++)
		if (spec_exts[i].type != 0x000d)
			exts[n++] = spec_exts[i];
	spec_hello(&b, exts, n);
	parse_ok(&b, &h);
	assert_int_equal(ig_tls_ja4(&h, ja4), 0);
	/* No signature_algorithms extension: the list ends without "_". */
	assert_int_equal(strncmp(ja4, "t13d1515h2_8daaf6152771_", 24), 0);
	char raw[512];
	ig_tls_ja4_r(&h, raw, sizeof(raw));
	int underscores = 0;
	for (char *c = raw; *c; c++)
		underscores += *c == '_';
	assert_int_equal(underscores, 2);
	assert_int_equal(strcmp(raw + strlen(raw) - 4, "ff01"), 0);
}

static void test_empty_signature_algorithms_is_malformed(void **state)
{
	/* RFC 8446 4.2.3: supported_signature_algorithms<2..2^16-2>. */
	static struct buf b;
	struct ext exts[16];
	static const uint8_t empty[] = { 0x00, 0x00 };
	struct ig_tls_hello h;
	memcpy(exts, spec_exts, sizeof(exts));
	for (size_t i = 0; i < 16; i++)
		if (exts[i].type == 0x000d)
			exts[i] = (struct ext)E(0x000d, empty);
	spec_hello(&b, exts, 16);
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
}

static void test_ja4_non_ascii_and_short_alpn_follow_the_reference(void **state)
{
	static struct buf b;
	struct ext exts[16];
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN];
	static const uint8_t baad[] = { 0x00, 0x0c, 0x02, 0xba, 0xad, 0x08, 'h',
					't',  't',  'p',  '/',	'1',  '.',  '1' };
	static const struct {
		uint8_t name[8];
		uint8_t len;
		const char *want;
	} cases[] = {
		{ { 'a' }, 1, "a0" }, /* spec text: "aa"; reference: 'a', none */
		{ { 'h', '2' }, 2, "h2" },
		{ { 'h', 't', 't', 'p', '/', '1', '.', '1' }, 8, "h1" },
		{ { 0xc3, 0xa9 }, 2, "90" }, /* one UTF-8 character, non-ASCII */
		{ { 0xba }, 1, "90" },
		{ { 'x', 0xba }, 2, "x9" },
		{ { 0xba, 'x' }, 2, "9x" },
		{ { 0x30, 0xab, 0xcd, 0x31 }, 4, "01" },
		{ { 0x00, 'a' }, 2, "9a" },
	};

	/* FoxIO's capture tls-non-ascii-alpn.pcapng: first ALPN 0xba 0xad; the
	 * reference output is t13d151699_8daaf6152771_e5627efa2ab1 (the spec
	 * text's hex rule would give "bd"). */
	memcpy(exts, spec_exts, sizeof(exts));
	exts[3] = (struct ext)E(0x0010, baad);
	spec_hello(&b, exts, 16);
	parse_ok(&b, &h);
	assert_int_equal(ig_tls_ja4(&h, ja4), 0);
	assert_string_equal(ja4, "t13d151699_8daaf6152771_e5627efa2ab1");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t a[16];
		a[0] = 0;
		a[1] = (uint8_t)(cases[i].len + 1);
		a[2] = cases[i].len;
		memcpy(a + 3, cases[i].name, cases[i].len);
		exts[3] = (struct ext){ 0x0010, a, (size_t)cases[i].len + 3 };
		spec_hello(&b, exts, 16);
		parse_ok(&b, &h);
		assert_int_equal(ig_tls_ja4(&h, ja4), 0);
		assert_memory_equal(ja4 + 8, cases[i].want, 2);
	}
	/* An empty first name, and no names at all: "00". */
	static const uint8_t empty_first[] = { 0x00, 0x03, 0x00, 0x01, 'x' };
	static const uint8_t no_names[] = { 0x00, 0x00 };
	exts[3] = (struct ext)E(0x0010, empty_first);
	spec_hello(&b, exts, 16);
	parse_ok(&b, &h);
	ig_tls_ja4(&h, ja4);
	assert_memory_equal(ja4 + 8, "00", 2);
	exts[3] = (struct ext)E(0x0010, no_names);
	spec_hello(&b, exts, 16);
	parse_ok(&b, &h);
	ig_tls_ja4(&h, ja4);
	assert_memory_equal(ja4 + 8, "00", 2);
}

static void test_ja4_ignores_grease_and_marks_ip_destinations(void **state)
{
	static struct buf b;
	struct ext exts[18];
	static const uint8_t versions_grease[] = { 0x06, 0x7a, 0x7a, 0x03, 0x04, 0x03, 0x03 };
	uint16_t ciphers[16];
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN];
	size_t n = 0;

	ciphers[0] = 0x0a0a;
	memcpy(ciphers + 1, spec_ciphers, sizeof(spec_ciphers));
	exts[n++] = (struct ext)E0(0x1a1a);
	for (size_t i = 0; i < 16; i++) {
		if (spec_exts[i].type == 0x0000)
			continue; /* no SNI: "i" */
		exts[n] = spec_exts[i];
		if (exts[n].type == 0x002b)
			exts[n] = (struct ext)E(0x002b, versions_grease);
		n++;
	}
	exts[n++] = (struct ext){ 0xfafa, reneg, 1 };
	struct hello_spec s = { 0x0303, ciphers, 16, exts, n, NULL };
	build_hello(&b, &s, false);
	parse_ok(&b, &h);
	assert_int_equal(h.version, 0x0304);
	assert_false(h.has_sni);
	assert_int_equal(ig_tls_ja4(&h, ja4), 0);
	assert_string_equal(ja4, "t13i1515h2_8daaf6152771_e5627efa2ab1");
	/* JA3 leaves GREASE out too; the version is the legacy one. */
	char text[512], md5[33];
	ig_tls_ja3(&h, text, sizeof(text), md5);
	assert_int_equal(strncmp(text, "771,4865-4866-4867-", 19), 0);
	assert_null(strstr(text, "2570")); /* 0x0a0a */
	assert_null(strstr(text, "6682")); /* 0x1a1a */
}

static void test_ja4_only_grease_versions_is_00(void **state)
{
	static struct buf b;
	static const uint8_t v[] = { 0x02, 0x7a, 0x7a };
	struct ext exts[] = { E(0x002b, v) };
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN];
	struct hello_spec s = { 0x0303, spec_ciphers, 1, exts, 1, NULL };
	build_hello(&b, &s, false);
	parse_ok(&b, &h);
	ig_tls_ja4(&h, ja4);
	assert_int_equal(h.version, 0);
	assert_memory_equal(ja4, "t00i010100_", 11);
}

/* ---- JA3 ---- */

static void test_ja3_equals_the_published_vectors(void **state)
{
	static struct buf b;
	static const uint16_t c1[] = { 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4 };
	static const uint8_t g[] = { 0x00, 0x06, 0x00, 23, 0x00, 24, 0x00, 25 };
	static const uint8_t pf[] = { 0x01, 0x00 };
	static const uint8_t sni[] = { 0x00, 0x04, 0x00, 0x00, 0x01, 'a' };
	struct ext e1[] = { E(0, sni), E(10, g), E(11, pf) };
	static const uint16_t c2[] = { 4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99 };
	struct ig_tls_hello h;
	char text[256], md5[33];

	struct hello_spec s1 = { 769, c1, 12, e1, 3, NULL };
	build_hello(&b, &s1, false);
	parse_ok(&b, &h);
	int n = ig_tls_ja3(&h, text, sizeof(text), md5);
	assert_string_equal(text, "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-"
				  "25,0");
	assert_int_equal(n, (int)strlen(text));
	assert_string_equal(md5, "ada70206e40642a3e4461f35503241d5");

	struct hello_spec s2 = { 769, c2, 11, NULL, (size_t)-1, NULL };
	build_hello(&b, &s2, false);
	parse_ok(&b, &h);
	assert_false(h.has_ext_block);
	ig_tls_ja3(&h, text, sizeof(text), md5);
	assert_string_equal(text, "769,4-5-10-9-100-98-3-6-19-18-99,,,");
	assert_string_equal(md5, "de350869b8c85de67a350c8d186f11e6");

	/* The hash is of the full text even when the buffer is too small. */
	char tiny[4], md5b[33];
	assert_int_equal(ig_tls_ja3(&h, tiny, sizeof(tiny), md5b), (int)strlen(text));
	assert_string_equal(tiny, "769");
	assert_string_equal(md5b, md5);
	assert_int_equal(ig_tls_ja3(&h, NULL, 0, md5b), (int)strlen(text));
	assert_string_equal(md5b, md5);
	/* Wrong side. */
	assert_int_equal(ig_tls_ja3s(&h, text, sizeof(text), md5), -EINVAL);
}

static const uint8_t sv13[] = { 0x03, 0x04 };
static const uint8_t ks_server[] = { 0x00, 0x1d, 0x00, 0x02, 0x11, 0x22 };

static void test_server_hello_ja3s_version_and_choices(void **state)
{
	static struct buf b;
	static const uint16_t c[] = { 0x1301 };
	static const uint8_t alpn[] = { 0x00, 0x03, 0x02, 'h', '2' };
	struct ext e[] = { E(0x002b, sv13), E(0x0033, ks_server), E(0x0010, alpn) };
	struct ig_tls_hello h;
	char text[256], md5[33];

	struct hello_spec s = { 0x0303, c, 1, e, 3, NULL };
	build_hello(&b, &s, true);
	parse_ok(&b, &h);
	assert_int_equal(h.type, IG_TLS_SERVER_HELLO);
	assert_false(h.hrr);
	assert_int_equal(h.legacy_version, 0x0303);
	assert_int_equal(h.version, 0x0304);
	assert_int_equal(ig_tls_list_at(&h.ciphers, 0), 0x1301);
	assert_int_equal(h.n_key_share, 1);
	assert_int_equal(h.key_share[0], 0x001d);
	uint16_t pos = 0;
	const uint8_t *name;
	uint8_t len;
	assert_true(ig_tls_alpn_next(&h, &pos, &name, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(name, "h2", 2);
	ig_tls_ja3s(&h, text, sizeof(text), md5);
	assert_string_equal(text, "771,4865,43-51-16");
	char ja4[IG_TLS_JA4_LEN];
	assert_int_equal(ig_tls_ja4(&h, ja4), -EINVAL); /* JA4 is the client's */

	/* A server naming two protocols is malformed. */
	static const uint8_t alpn2[] = { 0x00, 0x06, 0x02, 'h', '2', 0x02, 'h', '3' };
	e[2] = (struct ext)E(0x0010, alpn2);
	build_hello(&b, &s, true);
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
}

static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
	0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
	0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static void test_hello_retry_request_is_recognised(void **state)
{
	static struct buf b;
	static const uint16_t c[] = { 0x1302 };
	static const uint8_t ks_hrr[] = { 0x00, 0x17 };
	struct ext e[] = { E(0x002b, sv13), E(0x0033, ks_hrr) };
	struct ig_tls_hello h;

	struct hello_spec s = { 0x0303, c, 1, e, 2, hrr_random };
	build_hello(&b, &s, true);
	parse_ok(&b, &h);
	assert_true(h.hrr);
	assert_int_equal(h.key_share[0], 0x0017);
	/* The same key_share in a real ServerHello lacks its key: malformed. */
	s.random = NULL;
	build_hello(&b, &s, true);
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
}

static void test_client_fields_are_decoded(void **state)
{
	static struct buf b;
	struct ig_tls_hello h;
	/* identities: one of 4 bytes + age; binders: one of 32 bytes */
	static uint8_t psk[47] = {
		0x00, 0x0a, 0x00, 0x04, 1, 2, 3, 4, 0, 0, 0, 9, 0x00, 0x21, 0x20
	};
	static const uint8_t ticket[] = { 1, 2, 3 };
	struct ext e[] = { E(0x0000, sni_example), E(0x0033, key_share_x25519), E(0x000a, groups),
			   E(0x0023, ticket),	   E(0x002d, psk_modes),	E(0x0029, psk) };
	struct hello_spec s = { 0x0303, spec_ciphers, 15, e, 6, NULL };
	build_hello(&b, &s, false);
	parse_ok(&b, &h);
	assert_true(h.has_sni);
	assert_int_equal(h.sni_len, 11);
	assert_memory_equal(h.sni, "example.com", 11);
	assert_int_equal(h.n_key_share, 1);
	assert_int_equal(h.key_share[0], 0x1d);
	assert_int_equal(h.groups.n, 3);
	assert_int_equal(ig_tls_list_at(&h.groups, 1), 0x17);
	assert_true(h.psk);
	assert_true(h.ticket);
	assert_int_equal(h.psk_modes.n, 1);
	assert_int_equal(h.session_id_len, 32);
	assert_int_equal(h.n_ext, 6);
	assert_int_equal(h.version, 0x0303);

	/* pre_shared_key with a binder shorter than 32 bytes: malformed. */
	uint8_t bad[sizeof(psk)];
	memcpy(bad, psk, sizeof(bad));
	bad[13] = 0x20;
	bad[14] = 0x1f;
	e[5] = (struct ext){ 0x0029, bad, sizeof(bad) - 1 };
	build_hello(&b, &s, false);
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
}

/* ---- hostile input ---- */

static void test_truncation_at_every_byte_is_rejected(void **state)
{
	static struct buf b, t;
	struct ig_tls_hello h;

	spec_hello(&b, spec_exts, 16);
	/* The end of the compression methods: a hello without extensions. */
	size_t pre_ext = 4 + 2 + 32 + 33 + 2 + 30 + 2;
	for (size_t len = 0; len < b.n; len++) {
		/* (a) the bytes cut, the header left claiming the full length */
		int rc = ig_tls_parse_hello(b.b, len, &h);
		assert_int_equal(rc, -EBADMSG);
		/* (b) the header made to agree with the cut: the inner lengths
		 * then point past it */
		if (len < 4)
			continue;
		memcpy(t.b, b.b, len);
		t.n = len;
		patch(&t, 0, 4);
		t.b[0] = 1;
		rc = ig_tls_parse_hello(t.b, t.n, &h);
		if (len == pre_ext)
			assert_int_equal(rc, 0);
		else
			assert_int_equal(rc, -EBADMSG);
	}
	/* (c) the stream never completes a hello from a cut record stream */
	static struct buf r;
	wrap_records(&r, b.b, b.n, 16384);
	struct ig_tls_stream *s = ig_tls_stream_new(0);
	assert_non_null(s);
	for (size_t len = 0; len < r.n; len++) {
		size_t used;
		ig_tls_stream_reset(s);
		assert_int_equal(ig_tls_stream_feed(s, r.b, len, &used), IG_TLS_MORE);
		assert_int_equal(used, len);
		assert_null(ig_tls_stream_hello(s));
	}
	ig_tls_stream_free(s);
}

static void test_lengths_past_their_enclosure_are_rejected(void **state)
{
	static struct buf b;
	struct ig_tls_hello h;

	spec_hello(&b, spec_exts, 16);
	/* Every 1- and 2-byte field in turn raised by one and by 0xff...: the
	 * parse must fail or succeed, never read outside (ASan watches), and
	 * succeed only if the change left every length consistent. */
	for (size_t i = 4; i < b.n; i++) {
		uint8_t saved = b.b[i];
		b.b[i] = (uint8_t)(saved + 1);
		(void)ig_tls_parse_hello(b.b, b.n, &h);
		b.b[i] = 0xff;
		(void)ig_tls_parse_hello(b.b, b.n, &h);
		b.b[i] = saved;
	}
	parse_ok(&b, &h);
	/* The extensions block claiming 65,535 bytes. */
	size_t ext_len_at = 4 + 2 + 32 + 33 + 2 + 30 + 2;
	b.b[ext_len_at] = 0xff;
	b.b[ext_len_at + 1] = 0xff;
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
	/* The first extension claiming more than the block holds. */
	spec_hello(&b, spec_exts, 16);
	b.b[ext_len_at + 4] = 0x7f;
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
	/* A session id longer than 32. */
	spec_hello(&b, spec_exts, 16);
	b.b[4 + 2 + 32] = 33;
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
	/* An odd cipher list length. */
	spec_hello(&b, spec_exts, 16);
	b.b[4 + 2 + 32 + 33 + 1] = 29;
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);
	/* Not a hello. */
	spec_hello(&b, spec_exts, 16);
	b.b[0] = 11;
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -ENOMSG);
}

static void test_most_extensions_a_block_holds(void **state)
{
	/* 16,383 empty extensions (65,532 bytes: all a 16-bit block holds),
	 * every type distinct, in a message far beyond the 4 KiB default. */
	static struct buf b;
	static struct ext e[16383];
	struct ig_tls_hello h;
	char ja4[IG_TLS_JA4_LEN], md5[33];

	for (size_t i = 0; i < 16383; i++)
		e[i] = (struct ext){ (uint16_t)(0x1000 + i), NULL, 0 };
	struct hello_spec s = { 0x0303, spec_ciphers, 15, e, 16383, NULL };
	build_hello(&b, &s, false);
	parse_ok(&b, &h);
	assert_int_equal(h.n_ext, 16383);
	assert_int_equal(ig_tls_ja4(&h, ja4), 0);
	assert_memory_equal(ja4, "t12i1599", 8); /* the count is capped at 99 */
	assert_true(ig_tls_ja3(&h, NULL, 0, md5) > 16383 * 5);
	/* One type twice: malformed. */
	e[16382].type = 0x1000;
	build_hello(&b, &s, false);
	assert_int_equal(ig_tls_parse_hello(b.b, b.n, &h), -EBADMSG);

	/* The stream with its default bound refuses such a hello. */
	e[16382].type = 0x1000 + 16382;
	build_hello(&b, &s, false);
	static struct buf r;
	wrap_records(&r, b.b, b.n, 16384);
	struct ig_tls_stream *st = ig_tls_stream_new(0);
	size_t used;
	assert_int_equal(ig_tls_stream_feed(st, r.b, r.n, &used), -EMSGSIZE);
	/* The error is sticky. */
	assert_int_equal(ig_tls_stream_feed(st, r.b, r.n, &used), -EMSGSIZE);
	ig_tls_stream_free(st);
	/* A large enough bound takes it, across five records. */
	st = ig_tls_stream_new(70000);
	assert_int_equal(ig_tls_stream_feed(st, r.b, r.n, &used), IG_TLS_HELLO);
	assert_int_equal(used, r.n);
	assert_int_equal(ig_tls_stream_hello(st)->n_ext, 16383);
	assert_int_equal(ig_tls_stream_records(st), 5);
	ig_tls_stream_free(st);
}

/* ---- the record layer ---- */

static void test_stream_reassembles_across_records_and_feeds(void **state)
{
	static struct buf b, r;
	struct ig_tls_hello ref;
	char want[IG_TLS_JA4_LEN], got[IG_TLS_JA4_LEN];

	spec_hello(&b, spec_exts, 16);
	parse_ok(&b, &ref);
	ig_tls_ja4(&ref, want);
	/* Record sizes 1, 3 (header split across records), 100, whole; fed
	 * whole and one byte at a time. */
	const size_t frags[] = { 1, 3, 100, 16384 };
	for (size_t f = 0; f < 4; f++) {
		wrap_records(&r, b.b, b.n, frags[f]);
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			struct ig_tls_stream *s = ig_tls_stream_new(0);
			int rc = IG_TLS_MORE;
			size_t off = 0, used;
			while (off < r.n && rc == IG_TLS_MORE) {
				size_t k = bytewise ? 1 : r.n - off;
				rc = ig_tls_stream_feed(s, r.b + off, k, &used);
				off += used;
			}
			assert_int_equal(rc, IG_TLS_HELLO);
			assert_int_equal(off, r.n);
			const struct ig_tls_hello *h = ig_tls_stream_hello(s);
			assert_non_null(h);
			assert_int_equal(h->record_version, 0x0301);
			ig_tls_ja4(h, got);
			assert_string_equal(got, want);
			ig_tls_stream_free(s);
		}
	}
}

static void test_stream_hrr_then_server_hello_in_one_feed(void **state)
{
	static struct buf a, c, r;
	static const uint16_t cs[] = { 0x1301 };
	static const uint8_t ks_hrr[] = { 0x00, 0x17 };
	struct ext eh[] = { E(0x002b, sv13), E(0x0033, ks_hrr) };
	struct ext es[] = { E(0x002b, sv13), E(0x0033, ks_server) };
	struct hello_spec hs = { 0x0303, cs, 1, eh, 2, hrr_random };
	struct hello_spec ss = { 0x0303, cs, 1, es, 2, NULL };

	build_hello(&a, &hs, true);
	build_hello(&c, &ss, true);
	/* HRR record, CCS record, ServerHello + a Certificate-like message in
	 * one record, then CCS and an "encrypted" handshake record. */
	r.n = 0;
	put8(&r, 22);
	put16(&r, 0x0303);
	put16(&r, (unsigned)a.n);
	put(&r, a.b, a.n);
	static const uint8_t ccs[] = { 20, 3, 3, 0, 1, 1 };
	put(&r, ccs, sizeof(ccs));
	put8(&r, 22);
	put16(&r, 0x0303);
	put16(&r, (unsigned)(c.n + 4 + 10));
	put(&r, c.b, c.n);
	static const uint8_t cert[] = { 11, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	put(&r, cert, sizeof(cert));
	put(&r, ccs, sizeof(ccs));
	static const uint8_t junk[] = { 22, 3, 3, 0, 5, 1, 0xff, 0xff, 0xff, 0x00 };
	put(&r, junk, sizeof(junk));

	struct ig_tls_stream *s = ig_tls_stream_new(0);
	size_t used, off = 0;
	assert_int_equal(ig_tls_stream_feed(s, r.b, r.n, &used), IG_TLS_HELLO);
	assert_true(ig_tls_stream_hello(s)->hrr);
	off += used;
	assert_int_equal(ig_tls_stream_feed(s, r.b + off, r.n - off, &used), IG_TLS_HELLO);
	assert_false(ig_tls_stream_hello(s)->hrr);
	assert_int_equal(ig_tls_stream_hello(s)->key_share[0], 0x1d);
	off += used;
	assert_int_equal(ig_tls_stream_feed(s, r.b + off, r.n - off, &used), IG_TLS_MORE);
	assert_int_equal(off + used, r.n);
	assert_null(ig_tls_stream_hello(s));
	ig_tls_stream_free(s);
}

static void test_stream_rejects_what_is_not_a_tls_hello(void **state)
{
	static const struct {
		const char *what;
		uint8_t b[12];
		size_t n;
	} cases[] = {
		{ "HTTP", { 'G', 'E', 'T', ' ', '/', ' ', 'H' }, 7 },
		{ "alert first", { 21, 3, 3, 0, 2, 2, 40 }, 7 },
		{ "record version 2.0", { 22, 2, 0, 0, 4, 1, 0, 0, 0 }, 9 },
		{ "record version 3.5", { 22, 3, 5, 0, 4, 1, 0, 0, 0 }, 9 },
		{ "record too long", { 22, 3, 1, 0x48, 0x01 }, 5 },
		{ "certificate first", { 22, 3, 3, 0, 4, 11, 0, 0, 0 }, 9 },
		{ "record type 25", { 25, 3, 3, 0, 1, 0 }, 6 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ig_tls_stream *s = ig_tls_stream_new(0);
		size_t used;
		int rc = ig_tls_stream_feed(s, cases[i].b, cases[i].n, &used);
		if (rc != -EPROTO)
			fail_msg("%s: %d", cases[i].what, rc);
		ig_tls_stream_free(s);
	}
	/* A hello whose header claims more than max_msg. */
	static const uint8_t big[] = { 22, 3, 1, 0x10, 0x00, 1, 0x00, 0x10, 0x00 };
	struct ig_tls_stream *s = ig_tls_stream_new(4096);
	size_t used;
	assert_int_equal(ig_tls_stream_feed(s, big, sizeof(big), &used), -EMSGSIZE);
	ig_tls_stream_free(s);
	/* A zero-length hello body. */
	static const uint8_t empty[] = { 22, 3, 1, 0, 4, 1, 0, 0, 0 };
	s = ig_tls_stream_new(0);
	assert_int_equal(ig_tls_stream_feed(s, empty, sizeof(empty), &used), -EBADMSG);
	ig_tls_stream_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ja4_equals_the_spec_example),
		cmocka_unit_test(test_ja4_without_signature_algorithms_has_no_underscore),
		cmocka_unit_test(test_empty_signature_algorithms_is_malformed),
		cmocka_unit_test(test_ja4_non_ascii_and_short_alpn_follow_the_reference),
		cmocka_unit_test(test_ja4_ignores_grease_and_marks_ip_destinations),
		cmocka_unit_test(test_ja4_only_grease_versions_is_00),
		cmocka_unit_test(test_ja3_equals_the_published_vectors),
		cmocka_unit_test(test_server_hello_ja3s_version_and_choices),
		cmocka_unit_test(test_hello_retry_request_is_recognised),
		cmocka_unit_test(test_client_fields_are_decoded),
		cmocka_unit_test(test_truncation_at_every_byte_is_rejected),
		cmocka_unit_test(test_lengths_past_their_enclosure_are_rejected),
		cmocka_unit_test(test_most_extensions_a_block_holds),
		cmocka_unit_test(test_stream_reassembles_across_records_and_feeds),
		cmocka_unit_test(test_stream_hrr_then_server_hello_in_one_feed),
		cmocka_unit_test(test_stream_rejects_what_is_not_a_tls_hello),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
