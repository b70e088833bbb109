/* tls_parse: see tls_parse.h for the why; this file is the how.
 *
 * Parsing is done with a bounded cursor (struct cur): every read first checks
 * that the bytes are there, and every length-prefixed block becomes a
 * sub-cursor that must be used up exactly. So a length that points past its
 * enclosure, or a block with bytes left over, is -EBADMSG at the place it
 * occurs, and nothing is read beyond the message.
 *
 * Fingerprints are built with a string builder that feeds every byte to the
 * digest as it appends, and copies what fits into the caller's buffer: the
 * hash is always that of the full text, whatever the buffer size.
 */
#include "tls_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ---- bounded cursor ---- */

struct cur {
	const uint8_t *p, *end;
	bool bad;
};

static size_t cur_left(const struct cur *c)
{
	return c->bad ? 0 : (size_t)(c->end - c->p);
}

static uint32_t get_n(struct cur *c, int n)
{
	if (c->bad || cur_left(c) < (size_t)n) {
		c->bad = true;
		return 0;
	}
	uint32_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | *c->p++;
	return v;
}

static const uint8_t *get_bytes(struct cur *c, size_t n)
{
	if (c->bad || cur_left(c) < n) {
		c->bad = true;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += n;
	return p;
}

/* A block with an n-byte length prefix, as a sub-cursor. */
static struct cur get_block(struct cur *c, int n)
{
	struct cur sub = { .bad = true };
	uint32_t len = get_n(c, n);
	const uint8_t *p = get_bytes(c, len);
	if (p) {
		sub.p = p;
		sub.end = p + len;
		sub.bad = false;
	}
	return sub;
}

/* A list of width-byte values filling a block with an n-byte length prefix;
 * min: the fewest values allowed. */
static bool get_list(struct cur *c, int n, int width, uint32_t min, struct ig_tls_list *l)
{
	struct cur b = get_block(c, n);
	size_t len = cur_left(&b);
	if (b.bad || len % (size_t)width || len / (size_t)width < min)
		return false;
	l->p = b.p;
	l->n = (uint16_t)(len / (size_t)width);
	l->width = (uint8_t)width;
	return true;
}

/* ---- extensions ---- */

/* RFC 8446 4.1.3: the random of a HelloRetryRequest, SHA-256("HelloRetryRequest"). */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
	0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
	0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static bool ext_sni(struct cur *e, struct ig_tls_hello *h)
{
	h->has_sni = true;
	if (h->type == IG_TLS_SERVER_HELLO)
		return cur_left(e) == 0; /* the server's acknowledgement is empty */
	struct cur list = get_block(e, 2);
	if (list.bad || cur_left(&list) == 0)
		return false;
	while (cur_left(&list)) {
		uint8_t name_type = (uint8_t)get_n(&list, 1);
		struct cur name = get_block(&list, 2);
		if (list.bad || name.bad)
			return false;
		if (name_type == 0 && !h->sni) {
			h->sni = name.p;
			h->sni_len = (uint16_t)cur_left(&name);
		}
	}
	return true;
}

static bool ext_alpn(struct cur *e, struct ig_tls_hello *h)
{
	struct cur list = get_block(e, 2);
	if (list.bad)
		return false;
	h->has_alpn = true;
	h->alpn = list.p;
	h->alpn_len = (uint16_t)cur_left(&list);
	uint32_t n = 0;
	while (cur_left(&list)) {
		get_block(&list, 1); /* names may be empty here: JA4 says what that means */
		if (list.bad)
			return false;
		n++;
	}
	/* The server names exactly one protocol (RFC 7301 3.1). */
	return h->type == IG_TLS_CLIENT_HELLO || n == 1;
}

static bool ext_key_share(struct cur *e, struct ig_tls_hello *h)
{
	if (h->type == IG_TLS_SERVER_HELLO) {
		uint16_t group = (uint16_t)get_n(e, 2);
		if (!h->hrr) {
			struct cur key = get_block(e, 2);
			if (key.bad)
				return false;
		}
		if (e->bad)
			return false;
		h->key_share[0] = group;
		h->n_key_share = 1;
		return true;
	}
	struct cur list = get_block(e, 2);
	if (list.bad)
		return false;
	while (cur_left(&list)) {
		uint16_t group = (uint16_t)get_n(&list, 2);
		struct cur key = get_block(&list, 2);
		if (list.bad || key.bad)
			return false;
		if (h->n_key_share < IG_TLS_KEY_SHARES_MAX)
			h->key_share[h->n_key_share] = group;
		h->n_key_share++;
	}
	return true;
}

static bool ext_pre_shared_key(struct cur *e, struct ig_tls_hello *h)
{
	h->psk = true;
	if (h->type == IG_TLS_SERVER_HELLO) {
		get_n(e, 2); /* selected_identity */
		return !e->bad;
	}
	/* identities<7..2^16-1>, binders<33..2^16-1> (RFC 8446 4.2.11). */
	struct cur ids = get_block(e, 2);
	if (ids.bad || cur_left(&ids) == 0)
		return false;
	while (cur_left(&ids)) {
		struct cur id = get_block(&ids, 2);
		get_n(&ids, 4); /* obfuscated_ticket_age */
		if (ids.bad || id.bad || cur_left(&id) == 0)
			return false;
	}
	struct cur binders = get_block(e, 2);
	if (binders.bad || cur_left(&binders) == 0)
		return false;
	while (cur_left(&binders)) {
		struct cur b = get_block(&binders, 1);
		if (binders.bad || b.bad || cur_left(&b) < 32)
			return false;
	}
	return true;
}

/* One extension's content; false when it is malformed. Unknown types are
 * only counted. A type seen twice is malformed (RFC 8446 4.2). */
static bool parse_ext(uint16_t type, struct cur *e, struct ig_tls_hello *h)
{
	bool client = h->type == IG_TLS_CLIENT_HELLO;
	bool ok;

	switch (type) {
	case IG_TLS_EXT_SERVER_NAME:
		ok = ext_sni(e, h);
		break;
	case IG_TLS_EXT_ALPN:
		ok = ext_alpn(e, h);
		break;
	case IG_TLS_EXT_SUPPORTED_VERSIONS:
		if (client) {
			ok = get_list(e, 1, 2, 1, &h->versions);
		} else {
			h->versions.p = get_bytes(e, 2);
			h->versions.n = 1;
			h->versions.width = 2;
			ok = h->versions.p != NULL;
		}
		break;
	case IG_TLS_EXT_SUPPORTED_GROUPS:
		ok = get_list(e, 2, 2, 1, &h->groups);
		break;
	case IG_TLS_EXT_EC_POINT_FORMATS:
		ok = get_list(e, 1, 1, 1, &h->point_formats);
		break;
	case IG_TLS_EXT_SIGNATURE_ALGORITHMS:
		ok = get_list(e, 2, 2, 1, &h->sigalgs);
		break;
	case IG_TLS_EXT_PSK_KEY_EXCHANGE_MODES:
		ok = get_list(e, 1, 1, 1, &h->psk_modes);
		break;
	case IG_TLS_EXT_KEY_SHARE:
		ok = ext_key_share(e, h);
		break;
	case IG_TLS_EXT_PRE_SHARED_KEY:
		ok = ext_pre_shared_key(e, h);
		break;
	case IG_TLS_EXT_SESSION_TICKET:
		h->has_ticket_ext = true;
		h->ticket = client ? cur_left(e) > 0 : true;
		e->p = e->end;
		ok = true;
		break;
	case IG_TLS_EXT_EARLY_DATA:
		h->early_data = true;
		e->p = e->end;
		ok = true;
		break;
	default:
		e->p = e->end;
		ok = true;
	}
	return ok && !e->bad && cur_left(e) == 0;
}

/* Rejects a repeated extension type. The types are compared in a 64 Kibit
 * bitmap only when there are many; small lists are scanned. */
static bool ext_types_unique(const uint8_t *ext, uint16_t len, uint16_t n)
{
	if (n < 2)
		return true;
	uint8_t *seen = calloc(8192, 1);
	if (!seen)
		return false;
	bool ok = true;
	struct ig_tls_ext_iter it = { ext, ext + len };
	uint16_t type, elen;
	const uint8_t *data;
	while (ok && ig_tls_ext_next(&it, &type, &data, &elen)) {
		if (seen[type >> 3] & (1u << (type & 7)))
			ok = false;
		seen[type >> 3] |= (uint8_t)(1u << (type & 7));
	}
	free(seen);
	return ok;
}

bool ig_tls_ext_next(struct ig_tls_ext_iter *it, uint16_t *type, const uint8_t **data,
		     uint16_t *len)
{
	if (!it->p || it->end - it->p < 4)
		return false;
	uint16_t l = (uint16_t)(it->p[2] << 8 | it->p[3]);
	if (it->end - it->p - 4 < l)
		return false;
	*type = (uint16_t)(it->p[0] << 8 | it->p[1]);
	*len = l;
	*data = it->p + 4;
	it->p += 4 + l;
	return true;
}

bool ig_tls_alpn_next(const struct ig_tls_hello *h, uint16_t *pos, const uint8_t **name,
		      uint8_t *len)
{
	if (!h->has_alpn || *pos >= h->alpn_len)
		return false;
	uint8_t l = h->alpn[*pos];
	if ((uint32_t)*pos + 1 + l > h->alpn_len)
		return false;
	*name = h->alpn + *pos + 1;
	*len = l;
	*pos = (uint16_t)(*pos + 1 + l);
	return true;
}

int ig_tls_parse_hello(const uint8_t *msg, size_t len, struct ig_tls_hello *h)
{
	memset(h, 0, sizeof(*h));
	if (!msg)
		return -EBADMSG;
	struct cur m = { msg, msg + len, false };

	uint8_t type = (uint8_t)get_n(&m, 1);
	uint32_t blen = get_n(&m, 3);
	if (m.bad || blen != cur_left(&m))
		return -EBADMSG;
	if (type != IG_TLS_CLIENT_HELLO && type != IG_TLS_SERVER_HELLO)
		return -ENOMSG;
	h->type = type;
	bool client = type == IG_TLS_CLIENT_HELLO;

	h->legacy_version = (uint16_t)get_n(&m, 2);
	const uint8_t *random = get_bytes(&m, 32);
	struct cur sid = get_block(&m, 1);
	if (m.bad || sid.bad || cur_left(&sid) > 32)
		return -EBADMSG;
	h->session_id_len = (uint8_t)cur_left(&sid);
	if (client) {
		/* cipher_suites<2..2^16-2>, compression_methods<1..2^8-1> */
		if (!get_list(&m, 2, 2, 1, &h->ciphers) || !get_list(&m, 1, 1, 1, &h->compressions))
			return -EBADMSG;
	} else {
		h->hrr = !memcmp(random, hrr_random, sizeof(hrr_random));
		h->ciphers.p = get_bytes(&m, 2);
		h->ciphers.n = 1;
		h->ciphers.width = 2;
		h->compressions.p = get_bytes(&m, 1);
		h->compressions.n = 1;
		h->compressions.width = 1;
		if (m.bad)
			return -EBADMSG;
	}
	/* Extensions are optional before TLS 1.3: the body may end here. */
	if (cur_left(&m)) {
		struct cur exts = get_block(&m, 2);
		if (exts.bad || cur_left(&m))
			return -EBADMSG;
		h->has_ext_block = true;
		h->ext = exts.p;
		h->ext_len = (uint16_t)cur_left(&exts);
		while (cur_left(&exts)) {
			uint16_t etype = (uint16_t)get_n(&exts, 2);
			struct cur e = get_block(&exts, 2);
			if (exts.bad || e.bad || !parse_ext(etype, &e, h))
				return -EBADMSG;
			h->n_ext++;
		}
		if (!ext_types_unique(h->ext, h->ext_len, h->n_ext))
			return -EBADMSG;
	}

	h->version = h->legacy_version;
	if (client) {
		/* The highest non-GREASE value offered. */
		uint16_t best = 0;
		bool any = false;
		for (uint32_t i = 0; i < h->versions.n; i++) {
			uint16_t v = ig_tls_list_at(&h->versions, i);
			if (!ig_tls_is_grease(v) && (!any || v > best)) {
				best = v;
				any = true;
			}
		}
		if (h->versions.n)
			h->version = any ? best : 0;
	} else if (h->versions.n) {
		h->version = ig_tls_list_at(&h->versions, 0);
	}
	return 0;
}

/* ---- version names ---- */

const char *ig_tls_ja4_version(uint16_t v)
{
	switch (v) {
	case 0x0304:
		return "13";
	case 0x0303:
		return "12";
	case 0x0302:
		return "11";
	case 0x0301:
		return "10";
	case 0x0300:
		return "s3";
	case 0x0002:
		return "s2";
	case 0xfeff:
		return "d1";
	case 0xfefd:
		return "d2";
	case 0xfefc:
		return "d3";
	default:
		return "00";
	}
}

const char *ig_tls_version_name(uint16_t v)
{
	switch (v) {
	case 0x0304:
		return "TLS 1.3";
	case 0x0303:
		return "TLS 1.2";
	case 0x0302:
		return "TLS 1.1";
	case 0x0301:
		return "TLS 1.0";
	case 0x0300:
		return "SSL 3.0";
	case 0x0002:
		return "SSL 2.0";
	default:
		return NULL;
	}
}

/* ---- fingerprints ---- */

/* A string builder that hashes what it appends (when md is set): bytes are
 * gathered in a small chunk and handed to the digest a chunk at a time, and
 * numbers are formatted by hand, because a digest update or an snprintf per
 * number was most of the cost of a fingerprint. */
struct sb {
	char *buf;
	size_t cap, len;
	EVP_MD_CTX *md;
	size_t chunk_n;
	char chunk[512];
};

static void sb_flush(struct sb *b)
{
	if (b->md && b->chunk_n)
		EVP_DigestUpdate(b->md, b->chunk, b->chunk_n);
	b->chunk_n = 0;
}

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->md) {
		if (b->chunk_n + n > sizeof(b->chunk))
			sb_flush(b);
		if (n > sizeof(b->chunk)) {
			EVP_DigestUpdate(b->md, s, n);
		} else {
			memcpy(b->chunk + b->chunk_n, s, n);
			b->chunk_n += n;
		}
	}
	if (b->buf && b->len + 1 < b->cap) {
		size_t room = b->cap - 1 - b->len;
		memcpy(b->buf + b->len, s, n < room ? n : room);
	}
	b->len += n;
	if (b->buf && b->cap)
		b->buf[b->len < b->cap ? b->len : b->cap - 1] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_dec(struct sb *b, unsigned v)
{
	char tmp[12];
	size_t i = sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, tmp + i, sizeof(tmp) - i);
}

static void sb_hex4(struct sb *b, unsigned v)
{
	static const char hx[] = "0123456789abcdef";
	char tmp[4] = { hx[(v >> 12) & 15], hx[(v >> 8) & 15], hx[(v >> 4) & 15], hx[v & 15] };
	sb_put(b, tmp, 4);
}

/* The values of a list in decimal, '-'-separated, GREASE left out. */
static void sb_dec_list(struct sb *b, const struct ig_tls_list *l)
{
	bool first = true;
	for (uint32_t i = 0; i < l->n; i++) {
		uint16_t v = ig_tls_list_at(l, i);
		if (l->width == 2 && ig_tls_is_grease(v))
			continue;
		if (!first)
			sb_put(b, "-", 1);
		sb_dec(b, v);
		first = false;
	}
}

static void sb_ext_types_dec(struct sb *b, const struct ig_tls_hello *h)
{
	struct ig_tls_ext_iter it;
	uint16_t type, len;
	const uint8_t *data;
	bool first = true;
	ig_tls_ext_begin(h, &it);
	while (ig_tls_ext_next(&it, &type, &data, &len)) {
		if (ig_tls_is_grease(type))
			continue;
		if (!first)
			sb_put(b, "-", 1);
		sb_dec(b, type);
		first = false;
	}
}

static void hex_digest(struct sb *b, char *out, size_t nchars)
{
	EVP_MD_CTX *md = b->md;
	sb_flush(b);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	static const char hx[] = "0123456789abcdef";
	EVP_DigestFinal_ex(md, d, &dl);
	for (size_t i = 0; i < nchars && i / 2 < dl; i++)
		out[i] = hx[(i & 1) ? d[i / 2] & 15 : d[i / 2] >> 4];
	out[nchars] = '\0';
}

static int ja3_common(const struct ig_tls_hello *h, bool server, char *text, size_t textsz,
		      char hash[33])
{
	if (h->type != (server ? IG_TLS_SERVER_HELLO : IG_TLS_CLIENT_HELLO))
		return -EINVAL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_md5(), NULL)) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	struct sb b = { .buf = text, .cap = textsz, .md = md };
	if (text && textsz)
		text[0] = '\0';
	sb_dec(&b, h->legacy_version);
	sb_put(&b, ",", 1);
	sb_dec_list(&b, &h->ciphers);
	sb_put(&b, ",", 1);
	sb_ext_types_dec(&b, h);
	if (!server) {
		sb_put(&b, ",", 1);
		sb_dec_list(&b, &h->groups);
		sb_put(&b, ",", 1);
		sb_dec_list(&b, &h->point_formats);
	}
	hex_digest(&b, hash, 32);
	EVP_MD_CTX_free(md);
	return (int)b.len;
}

int ig_tls_ja3(const struct ig_tls_hello *h, char *text, size_t textsz, char hash[33])
{
	return ja3_common(h, false, text, textsz, hash);
}

int ig_tls_ja3s(const struct ig_tls_hello *h, char *text, size_t textsz, char hash[33])
{
	return ja3_common(h, true, text, textsz, hash);
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* The two ALPN characters of JA4_a, as FoxIO's reference implementation
 * computes them (rust/ja4/src/tls.rs, first_last over Wireshark's
 * extensions_alpn_str): the first and the last character of the first name,
 * a non-ASCII character counting as '9'; a name of one character gives that
 * character and '0'; no ALPN, no names or an empty first name give "00".
 * Characters are counted as Wireshark decodes the bytes: a valid UTF-8
 * sequence is one character, every other byte one (replacement) character.
 * A NUL byte, which the reference would copy, is written as '9' here. */
static size_t utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t need;
	uint32_t min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		min = 0x10000;
	} else {
		return 1;
	}
	if (n < need)
		return 1;
	uint32_t cp = c & (0x7f >> need);
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 1;
	return need;
}

static char alpn_char(const uint8_t *p, size_t seqlen)
{
	if (seqlen > 1 || p[0] >= 0x80 || p[0] == 0)
		return '9';
	return (char)p[0];
}

static void ja4_alpn(const struct ig_tls_hello *h, char out[2])
{
	uint16_t pos = 0;
	const uint8_t *name;
	uint8_t len;
	out[0] = out[1] = '0';
	if (!ig_tls_alpn_next(h, &pos, &name, &len) || len == 0)
		return;
	/* Walk the characters to find the first, the last and their count. */
	size_t i = 0, nchars = 0, last_at = 0, last_len = 1;
	size_t first_len = utf8_seq_len(name, len);
	while (i < len) {
		size_t l = utf8_seq_len(name + i, len - i);
		last_at = i;
		last_len = l;
		nchars++;
		i += l;
	}
	out[0] = alpn_char(name, first_len);
	if (nchars > 1)
		out[1] = alpn_char(name + last_at, last_len);
}

/* The parts of JA4 both ja4 and ja4_r print. a: 10 characters + NUL. The
 * sorted lists are returned in malloc'd arrays (caller frees). */
struct ja4_parts {
	char a[11];
	uint16_t *ciphers, *exts;
	uint32_t nciphers, nexts;
};

static int ja4_parts(const struct ig_tls_hello *h, struct ja4_parts *p)
{
	memset(p, 0, sizeof(*p));
	if (h->type != IG_TLS_CLIENT_HELLO)
		return -EINVAL;
	p->ciphers = malloc(((size_t)h->ciphers.n + 1) * sizeof(uint16_t));
	p->exts = malloc(((size_t)h->n_ext + 1) * sizeof(uint16_t));
	if (!p->ciphers || !p->exts) {
		free(p->ciphers);
		free(p->exts);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < h->ciphers.n; i++) {
		uint16_t v = ig_tls_list_at(&h->ciphers, i);
		if (!ig_tls_is_grease(v))
			p->ciphers[p->nciphers++] = v;
	}
	uint32_t ext_count = 0;
	struct ig_tls_ext_iter it;
	uint16_t type, len;
	const uint8_t *data;
	ig_tls_ext_begin(h, &it);
	while (ig_tls_ext_next(&it, &type, &data, &len)) {
		if (ig_tls_is_grease(type))
			continue;
		ext_count++;
		if (type != IG_TLS_EXT_SERVER_NAME && type != IG_TLS_EXT_ALPN)
			p->exts[p->nexts++] = type;
	}
	qsort(p->ciphers, p->nciphers, sizeof(uint16_t), cmp_u16);
	qsort(p->exts, p->nexts, sizeof(uint16_t), cmp_u16);
	char alpn[2];
	ja4_alpn(h, alpn);
	snprintf(p->a, sizeof(p->a), "t%s%c%02u%02u%c%c", ig_tls_ja4_version(h->version),
		 h->has_sni ? 'd' : 'i', p->nciphers > 99 ? 99 : p->nciphers,
		 ext_count > 99 ? 99 : ext_count, alpn[0], alpn[1]);
	return 0;
}

static void sb_hex_list(struct sb *b, const uint16_t *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_hex4(b, v[i]);
	}
}

static void sb_sigalgs(struct sb *b, const struct ig_tls_hello *h)
{
	for (uint32_t i = 0; i < h->sigalgs.n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_hex4(b, ig_tls_list_at(&h->sigalgs, i));
	}
}

/* JA4_b or JA4_c: 12 hex of SHA-256 of the text, "000000000000" if empty. */
static int ja4_hash_part(const struct ig_tls_hello *h, const struct ja4_parts *p, bool exts,
			 char out[13])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	struct sb b = { .md = md };
	if (exts) {
		sb_hex_list(&b, p->exts, p->nexts);
		if (h->sigalgs.n) {
			sb_put(&b, "_", 1);
			sb_sigalgs(&b, h);
		}
	} else {
		sb_hex_list(&b, p->ciphers, p->nciphers);
	}
	hex_digest(&b, out, 12);
	EVP_MD_CTX_free(md);
	if (b.len == 0)
		memcpy(out, "000000000000", 13);
	return 0;
}

int ig_tls_ja4(const struct ig_tls_hello *h, char out[IG_TLS_JA4_LEN])
{
	struct ja4_parts p;
	char b[13], c[13];
	int rc = ja4_parts(h, &p);
	if (rc < 0)
		return rc;
	rc = ja4_hash_part(h, &p, false, b);
	if (rc == 0)
		rc = ja4_hash_part(h, &p, true, c);
	if (rc == 0)
		snprintf(out, IG_TLS_JA4_LEN, "%s_%s_%s", p.a, b, c);
	free(p.ciphers);
	free(p.exts);
	return rc;
}

int ig_tls_ja4_r(const struct ig_tls_hello *h, char *text, size_t textsz)
{
	struct ja4_parts p;
	int rc = ja4_parts(h, &p);
	if (rc < 0)
		return rc;
	struct sb b = { .buf = text, .cap = textsz };
	if (text && textsz)
		text[0] = '\0';
	sb_str(&b, p.a);
	sb_put(&b, "_", 1);
	sb_hex_list(&b, p.ciphers, p.nciphers);
	sb_put(&b, "_", 1);
	sb_hex_list(&b, p.exts, p.nexts);
	if (h->sigalgs.n) {
		sb_put(&b, "_", 1);
		sb_sigalgs(&b, h);
	}
	free(p.ciphers);
	free(p.exts);
	return (int)b.len;
}

/* ---- the record layer ---- */

#define REC_HANDSHAKE 22
#define REC_CCS 20
#define REC_ALERT 21
#define REC_APPDATA 23
#define REC_HEARTBEAT 24
/* RFC 8446 5.2: a TLSCiphertext is at most 2^14 + 256 bytes; TLS 1.2 allows
 * 2^14 + 2048. */
#define REC_MAX (16384 + 2048)

struct ig_tls_stream {
	size_t max_msg;
	int err; /* sticky */
	bool encrypted; /* change_cipher_spec seen, no second hello expected */
	bool expect_hello; /* a second ClientHello follows an HRR */
	bool seen_msg; /* a first handshake message was complete */
	uint8_t rhdr[5];
	uint8_t rhdr_n;
	uint8_t rtype;
	uint16_t rver;
	uint32_t rrem; /* body bytes left in the current record */
	uint16_t msg_rver; /* record version where the current message began */
	uint32_t skip; /* bytes left of a handshake message not kept */
	uint8_t *msg;
	uint32_t msg_n;
	bool pending; /* msg holds the hello last returned: drop it first */
	uint64_t records;
	struct ig_tls_hello hello;
};

struct ig_tls_stream *ig_tls_stream_new(size_t max_msg)
{
	struct ig_tls_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max_msg = max_msg ? max_msg : IG_TLS_MAX_MSG_DEFAULT;
	if (s->max_msg < 4)
		s->max_msg = 4;
	s->msg = malloc(s->max_msg);
	if (!s->msg) {
		free(s);
		return NULL;
	}
	return s;
}

void ig_tls_stream_free(struct ig_tls_stream *s)
{
	if (!s)
		return;
	free(s->msg);
	free(s);
}

void ig_tls_stream_reset(struct ig_tls_stream *s)
{
	uint8_t *msg = s->msg;
	size_t max = s->max_msg;
	memset(s, 0, sizeof(*s));
	s->msg = msg;
	s->max_msg = max;
}

const struct ig_tls_hello *ig_tls_stream_hello(const struct ig_tls_stream *s)
{
	return s->pending ? &s->hello : NULL;
}

const uint8_t *ig_tls_stream_msg(const struct ig_tls_stream *s, size_t *len)
{
	*len = s->pending ? s->msg_n : 0;
	return s->pending ? s->msg : NULL;
}

void ig_tls_stream_expect_hello(struct ig_tls_stream *s)
{
	s->expect_hello = true;
	s->encrypted = false;
}

bool ig_tls_stream_inside_hello(const struct ig_tls_stream *s)
{
	return !s->err && !s->seen_msg && (s->rhdr_n || s->rrem || s->msg_n);
}

uint64_t ig_tls_stream_records(const struct ig_tls_stream *s)
{
	return s->records;
}

static int fail(struct ig_tls_stream *s, int err)
{
	s->err = err;
	return err;
}

/* The 4-byte header of the message in msg is complete: decide to keep or skip. */
static int msg_header(struct ig_tls_stream *s)
{
	uint8_t type = s->msg[0];
	uint32_t len = (uint32_t)s->msg[1] << 16 | (uint32_t)s->msg[2] << 8 | s->msg[3];
	bool hello = type == IG_TLS_CLIENT_HELLO || type == IG_TLS_SERVER_HELLO;
	if (!s->seen_msg && !hello)
		return fail(s, -EPROTO);
	if (!hello) {
		s->skip = len;
		s->msg_n = 0;
		return 0;
	}
	if ((size_t)len + 4 > s->max_msg)
		return fail(s, -EMSGSIZE);
	return 0;
}

/* Consumes handshake-record body bytes; IG_TLS_HELLO when a hello completed. */
static int handshake_bytes(struct ig_tls_stream *s, const uint8_t *p, size_t n, size_t *used)
{
	size_t i = 0;
	while (i < n) {
		if (s->skip) {
			size_t k = n - i < s->skip ? n - i : s->skip;
			s->skip -= (uint32_t)k;
			i += k;
			continue;
		}
		if (s->msg_n < 4) {
			if (s->msg_n == 0)
				s->msg_rver = s->rver;
			s->msg[s->msg_n++] = p[i++];
			if (s->msg_n == 4) {
				int rc = msg_header(s);
				if (rc < 0) {
					*used = i;
					return rc;
				}
			}
			if (s->msg_n < 4) /* header incomplete, or a message to skip */
				continue;
		}
		uint32_t len = (uint32_t)s->msg[1] << 16 | (uint32_t)s->msg[2] << 8 | s->msg[3];
		size_t want = (size_t)len + 4 - s->msg_n;
		size_t k = n - i < want ? n - i : want;
		memcpy(s->msg + s->msg_n, p + i, k);
		s->msg_n += (uint32_t)k;
		i += k;
		if (s->msg_n == len + 4) {
			*used = i;
			int rc = ig_tls_parse_hello(s->msg, s->msg_n, &s->hello);
			if (rc < 0)
				return fail(s, rc == -ENOMSG ? -EPROTO : rc);
			s->hello.record_version = s->msg_rver;
			s->seen_msg = true;
			s->pending = true;
			/* A ServerHello that is an HRR announces a second one; a
			 * ClientHello uses up an announced second ClientHello. */
			s->expect_hello = s->hello.type == IG_TLS_SERVER_HELLO && s->hello.hrr;
			return IG_TLS_HELLO;
		}
	}
	*used = i;
	return IG_TLS_MORE;
}

int ig_tls_stream_feed(struct ig_tls_stream *s, const uint8_t *data, size_t len, size_t *used)
{
	size_t i = 0;
	*used = 0;
	if (s->err)
		return s->err;
	if (s->pending) {
		s->pending = false;
		s->msg_n = 0;
	}
	while (i < len) {
		if (s->rrem == 0) {
			/* Collect a record header. */
			while (s->rhdr_n < 5 && i < len)
				s->rhdr[s->rhdr_n++] = data[i++];
			if (s->rhdr_n < 5)
				break;
			s->rhdr_n = 0;
			s->rtype = s->rhdr[0];
			s->rver = (uint16_t)(s->rhdr[1] << 8 | s->rhdr[2]);
			s->rrem = (uint32_t)(s->rhdr[3] << 8 | s->rhdr[4]);
			s->records++;
			if (s->rtype < REC_CCS || s->rtype > REC_HEARTBEAT || s->rhdr[1] != 3 ||
			    s->rhdr[2] > 4 || s->rrem > REC_MAX ||
			    (s->records == 1 && s->rtype != REC_HANDSHAKE)) {
				*used = i;
				return fail(s, -EPROTO);
			}
			if (s->rtype == REC_CCS && !s->expect_hello)
				s->encrypted = true;
			continue;
		}
		size_t k = len - i < s->rrem ? len - i : s->rrem;
		if (s->rtype == REC_HANDSHAKE && !s->encrypted) {
			size_t u = 0;
			int rc = handshake_bytes(s, data + i, k, &u);
			s->rrem -= (uint32_t)u;
			i += u;
			if (rc != IG_TLS_MORE) {
				*used = i;
				return rc;
			}
		} else {
			s->rrem -= (uint32_t)k;
			i += k;
		}
	}
	*used = i;
	return IG_TLS_MORE;
}
