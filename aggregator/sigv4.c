/* sigv4: see sigv4.h. Builds the canonical request and the string to sign in
 * a growable buffer, then derives the signing key
 *   kDate = HMAC("AWS4" + secret, date), kRegion, kService, kSigning
 * and signs. Nothing here is per-record: one signature per HTTP request. */
#include "sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

struct sb {
	char *p;
	size_t len, cap;
	int err;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_putn(b, s, strlen(s));
}

static void sb_putc(struct sb *b, char c)
{
	sb_putn(b, &c, 1);
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void sb_encode(struct sb *b, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sb_putc(b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			sb_putn(b, e, 3);
		}
	}
}

char *ig_sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct sb b = { 0 };

	sb_putn(&b, "", 0);
	sb_encode(&b, s, len, keep_slash);
	if (b.err) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX in s[0..len) then appends the strict encoding. */
static void sb_reencode(struct sb *b, const char *s, size_t len)
{
	char *dec = malloc(len + 1);
	size_t n = 0;

	if (!dec) {
		b->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			dec[n++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			dec[n++] = s[i];
		}
	}
	sb_encode(b, dec, n, false);
	free(dec);
}

struct kv {
	char *k, *v;
	size_t idx;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	if (c)
		return c;
	if (x->v && y->v && (c = strcmp(x->v, y->v)))
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void kv_free(struct kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].k);
		free(v[i].v);
	}
	free(v);
}

static void canonical_query(struct sb *out, const char *q)
{
	size_t n = 0, cap = 0;
	struct kv *v = NULL;

	if (!q || !*q)
		return;
	for (const char *p = q; *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t klen = eq ? (size_t)(eq - p) : len;
			struct sb k = { 0 }, val = { 0 };
			sb_putn(&k, "", 0);
			sb_putn(&val, "", 0);
			sb_reencode(&k, p, klen);
			if (eq)
				sb_reencode(&val, eq + 1, len - klen - 1);
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				struct kv *nv = realloc(v, cap * sizeof(*v));
				if (!nv) {
					free(k.p);
					free(val.p);
					out->err = -ENOMEM;
					break;
				}
				v = nv;
			}
			if (k.err || val.err)
				out->err = -ENOMEM;
			v[n] = (struct kv){ k.p, val.p, n };
			n++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(v, n, sizeof(*v), kv_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(out, '&');
		sb_puts(out, v[i].k ? v[i].k : "");
		sb_putc(out, '=');
		sb_puts(out, v[i].v ? v[i].v : "");
	}
	kv_free(v, n);
}

/* Trims and collapses runs of spaces/tabs into one space. */
static char *norm_value(const char *s)
{
	size_t len = strlen(s);
	char *o = malloc(len + 1);
	size_t n = 0;
	bool sp = false;

	if (!o)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			sp = true;
			continue;
		}
		if (sp && n)
			o[n++] = ' ';
		sp = false;
		o[n++] = *s;
	}
	o[n] = '\0';
	return o;
}

static char *lower_dup(const char *s)
{
	char *o = strdup(s);

	for (char *p = o; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return o;
}

/* Appends "name:v1,v2\n"... to ch and "name;name2" to sh. */
static void canonical_headers(struct sb *ch, struct sb *sh, const struct ig_sigv4_header *h,
			      size_t nh)
{
	struct kv *v = calloc(nh ? nh : 1, sizeof(*v));

	if (!v) {
		ch->err = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < nh; i++) {
		v[i].k = lower_dup(h[i].name);
		v[i].v = norm_value(h[i].value ? h[i].value : "");
		v[i].idx = i;
		if (!v[i].k || !v[i].v)
			ch->err = -ENOMEM;
	}
	if (!ch->err) {
		/* Sort by name only, keeping the order of repeated headers:
		 * insertion sort is stable and nh is small. */
		for (size_t i = 1; i < nh; i++) {
			struct kv x = v[i];
			size_t j = i;
			while (j > 0 && strcmp(v[j - 1].k, x.k) > 0) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
		for (size_t i = 0; i < nh; i++) {
			bool same = i > 0 && !strcmp(v[i - 1].k, v[i].k);
			if (same) {
				ch->len--; /* drop the previous '\n' */
				sb_putc(ch, ',');
			} else {
				if (i)
					sb_putc(sh, ';');
				sb_puts(sh, v[i].k);
				sb_puts(ch, v[i].k);
				sb_putc(ch, ':');
			}
			sb_puts(ch, v[i].v);
			sb_putc(ch, '\n');
		}
	}
	kv_free(v, nh);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen);
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void ig_sha256_hex(const void *data, size_t len, char out[IG_SHA256_HEX_LEN + 1])
{
	unsigned char d[32];
	unsigned int dl = 32;

	EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
	to_hex(d, 32, out);
}

void ig_md5_base64(const void *data, size_t len, char out[25])
{
	unsigned char d[16];
	unsigned int dl = 16;

	EVP_Digest(data, len, d, &dl, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, d, 16);
}

void ig_sha256_base64(const void *data, size_t len, char out[45])
{
	unsigned char d[32];
	unsigned int dl = 32;

	EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
	EVP_EncodeBlock((unsigned char *)out, d, 32);
}

void ig_sigv4_amz_date(long long epoch_s, char out[IG_SIGV4_DATE_LEN + 1])
{
	time_t t = (time_t)epoch_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, IG_SIGV4_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

int ig_sigv4_sign(const struct ig_sigv4_req *req, const struct ig_sigv4_cred *cred,
		  const char *region, const char *service, const char *amz_date, char **auth,
		  struct ig_sigv4_debug *dbg)
{
	struct sb cr = { 0 }, ch = { 0 }, sh = { 0 }, sts = { 0 }, a = { 0 };
	char crhash[IG_SHA256_HEX_LEN + 1], date[9], sig[65];
	unsigned char k[32];
	int err;

	*auth = NULL;
	if (!req->method || !req->path || !req->nheaders || !req->payload_hash || !amz_date ||
	    strlen(amz_date) != IG_SIGV4_DATE_LEN || amz_date[8] != 'T' || !cred->access_key ||
	    !cred->secret_key || !region || !service)
		return -EINVAL;
	memcpy(date, amz_date, 8);
	date[8] = '\0';

	sb_puts(&cr, req->method);
	sb_putc(&cr, '\n');
	sb_puts(&cr, req->path);
	sb_putc(&cr, '\n');
	canonical_query(&cr, req->query);
	sb_putc(&cr, '\n');
	sb_putn(&sh, "", 0);
	canonical_headers(&ch, &sh, req->headers, req->nheaders);
	if (ch.err || sh.err) {
		err = -ENOMEM;
		goto out;
	}
	sb_puts(&cr, ch.p);
	sb_putc(&cr, '\n');
	sb_puts(&cr, sh.p);
	sb_putc(&cr, '\n');
	sb_puts(&cr, req->payload_hash);
	if (cr.err) {
		err = -ENOMEM;
		goto out;
	}
	ig_sha256_hex(cr.p, cr.len, crhash);

	sb_puts(&sts, "AWS4-HMAC-SHA256\n");
	sb_puts(&sts, amz_date);
	sb_putc(&sts, '\n');
	sb_puts(&sts, date);
	sb_putc(&sts, '/');
	sb_puts(&sts, region);
	sb_putc(&sts, '/');
	sb_puts(&sts, service);
	sb_puts(&sts, "/aws4_request\n");
	sb_puts(&sts, crhash);

	/* Signing key. */
	{
		size_t sl = strlen(cred->secret_key);
		char *k0 = malloc(sl + 5);
		if (!k0) {
			err = -ENOMEM;
			goto out;
		}
		memcpy(k0, "AWS4", 4);
		memcpy(k0 + 4, cred->secret_key, sl + 1);
		hmac(k0, sl + 4, date, k);
		OPENSSL_cleanse(k0, sl + 4);
		free(k0);
		hmac(k, 32, region, k);
		hmac(k, 32, service, k);
		hmac(k, 32, "aws4_request", k);
	}
	if (sts.err) {
		err = -ENOMEM;
		goto out;
	}
	{
		unsigned char s[32];
		hmac(k, 32, sts.p, s);
		to_hex(s, 32, sig);
	}
	OPENSSL_cleanse(k, sizeof(k));

	sb_puts(&a, "AWS4-HMAC-SHA256 Credential=");
	sb_puts(&a, cred->access_key);
	sb_putc(&a, '/');
	sb_puts(&a, date);
	sb_putc(&a, '/');
	sb_puts(&a, region);
	sb_putc(&a, '/');
	sb_puts(&a, service);
	sb_puts(&a, "/aws4_request, SignedHeaders=");
	sb_puts(&a, sh.p);
	sb_puts(&a, ", Signature=");
	sb_puts(&a, sig);
	if (a.err) {
		err = -ENOMEM;
		goto out;
	}
	*auth = a.p;
	a.p = NULL;
	if (dbg) {
		dbg->canonical_request = cr.p;
		dbg->string_to_sign = sts.p;
		cr.p = sts.p = NULL;
	}
	err = 0;
out:
	free(cr.p);
	free(ch.p);
	free(sh.p);
	free(sts.p);
	free(a.p);
	return err;
}

void ig_sigv4_debug_free(struct ig_sigv4_debug *dbg)
{
	if (!dbg)
		return;
	free(dbg->canonical_request);
	free(dbg->string_to_sign);
	dbg->canonical_request = dbg->string_to_sign = NULL;
}
