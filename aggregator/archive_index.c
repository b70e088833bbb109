/* archive_index: see archive_index.h. The builder keeps the distinct values
 * of the covered tags of the open batch in one open-addressing set (FNV-1a
 * over tag number and value; the values live in one arena), so a batch of a
 * million records with a thousand paths costs a thousand entries. At finish
 * the Bloom filter is sized for the distinct count (about 1% false
 * positives: 9.6 bits and 7 hashes per item) and each item is hashed once
 * with SHA-256, the hash the format documents. */
#include "archive_index.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "ig_time.h"
#include "ig_hash.h"

#define MAX_ENTRIES (1u << 20) /* beyond: the index covers no tag */
#define MAX_LIST_BYTES 4096
#define BLOOM_K 7
#define BITS_PER_ITEM 9.6

struct entry {
	uint64_t h;
	uint32_t off, len;
	uint32_t key;
	bool used;
};

struct ig_aindex_builder {
	char **keys;
	size_t nkeys;
	struct ig_aline line;
	struct entry *tab;
	size_t cap, n;
	char *arena;
	size_t alen, acap;
	bool saturated;
	uint64_t records, bytes;
	int64_t ts_min, ts_max;
	bool have_ts;
};

/* Part of the index format (archive_index.h): index objects already written
 * hold Bloom bits of this hash, so it never changes, seed included (an FNV
 * offset basis missing its last digit, as first written). */
#define AINDEX_FNV_SEED 1469598103934665603ULL

static uint64_t fnv(uint32_t key, const char *s, size_t n)
{
	return ig_fnv64(AINDEX_FNV_SEED ^ key, s, n);
}

struct ig_aindex_builder *ig_aindex_builder_new(const char *const *keys, size_t nkeys)
{
	struct ig_aindex_builder *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	ig_aline_init(&b->line);
	b->keys = calloc(nkeys ? nkeys : 1, sizeof(*b->keys));
	if (!b->keys)
		goto fail;
	for (size_t i = 0; i < nkeys; i++, b->nkeys++)
		if (!(b->keys[i] = strdup(keys[i])))
			goto fail;
	return b;
fail:
	ig_aindex_builder_free(b);
	return NULL;
}

void ig_aindex_builder_free(struct ig_aindex_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nkeys; i++)
		free(b->keys[i]);
	free(b->keys);
	ig_aline_free(&b->line);
	free(b->tab);
	free(b->arena);
	free(b);
}

void ig_aindex_reset(struct ig_aindex_builder *b)
{
	if (b->tab)
		memset(b->tab, 0, b->cap * sizeof(*b->tab));
	b->n = 0;
	b->alen = 0;
	b->saturated = false;
	b->records = b->bytes = 0;
	b->have_ts = false;
}

static int grow(struct ig_aindex_builder *b)
{
	size_t cap = b->cap ? b->cap * 2 : 1024;
	struct entry *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < b->cap; i++) {
		if (!b->tab[i].used)
			continue;
		size_t j = b->tab[i].h & (cap - 1);
		while (t[j].used)
			j = (j + 1) & (cap - 1);
		t[j] = b->tab[i];
	}
	free(b->tab);
	b->tab = t;
	b->cap = cap;
	return 0;
}

static void insert(struct ig_aindex_builder *b, uint32_t key, const char *v, size_t n)
{
	if (b->saturated)
		return;
	if ((b->n + 1) * 2 > b->cap && grow(b)) {
		b->saturated = true;
		return;
	}
	uint64_t h = fnv(key, v, n);
	size_t j = h & (b->cap - 1);
	for (; b->tab[j].used; j = (j + 1) & (b->cap - 1)) {
		struct entry *e = &b->tab[j];
		if (e->h == h && e->key == key && e->len == n && !memcmp(b->arena + e->off, v, n))
			return;
	}
	if (b->n >= MAX_ENTRIES || n > UINT32_MAX / 2) {
		b->saturated = true;
		return;
	}
	if (b->alen + n > b->acap) {
		size_t cap = b->acap ? b->acap : 64 * 1024;
		while (cap < b->alen + n)
			cap *= 2;
		char *a = realloc(b->arena, cap);
		if (!a) {
			b->saturated = true;
			return;
		}
		b->arena = a;
		b->acap = cap;
	}
	memcpy(b->arena + b->alen, v, n);
	b->tab[j] = (struct entry){ h, (uint32_t)b->alen, (uint32_t)n, key, true };
	b->alen += n;
	b->n++;
}

void ig_aindex_add(struct ig_aindex_builder *b, const char *line, size_t len)
{
	const char *why;
	size_t at;
	int64_t ts;

	b->records++;
	b->bytes += len + 1;
	if (ig_aline_parse(&b->line, line, len, &why, &at))
		return;
	if (b->line.ts.type == IG_AVAL_STR &&
	    !ig_rfc3339_parse(b->line.ts.p, b->line.ts.len, &ts)) {
		if (!b->have_ts || ts < b->ts_min)
			b->ts_min = ts;
		if (!b->have_ts || ts > b->ts_max)
			b->ts_max = ts;
		b->have_ts = true;
	}
	for (size_t i = 0; i < b->nkeys; i++) {
		const struct ig_aval *v = ig_aline_tag(&b->line, b->keys[i], strlen(b->keys[i]));
		if (v && v->type != IG_AVAL_OTHER)
			insert(b, (uint32_t)i, v->p, v->len);
	}
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void ig_aindex_etag(const void *data, size_t len, uint64_t multipart_threshold, uint64_t part_size,
		    char out[48])
{
	unsigned char d[16];
	unsigned int dl = 16;
	char h[33];

	if (len <= multipart_threshold || !part_size) {
		EVP_Digest(data, len, d, &dl, EVP_md5(), NULL);
		hex(d, 16, h);
		snprintf(out, 48, "\"%s\"", h);
		return;
	}
	/* Multipart: MD5 of the parts' binary MD5s, then "-<parts>". */
	size_t nparts = (len + part_size - 1) / part_size;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx) {
		snprintf(out, 48, "\"\"");
		return;
	}
	EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
	for (size_t i = 0; i < nparts; i++) {
		size_t off = i * part_size, n = len - off < part_size ? len - off : part_size;
		EVP_Digest((const char *)data + off, n, d, &dl, EVP_md5(), NULL);
		EVP_DigestUpdate(ctx, d, 16);
	}
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	hex(d, 16, h);
	snprintf(out, 48, "\"%s-%zu\"", h, nparts);
}

static void bloom_hashes(const char *key, const char *v, size_t n, uint64_t *h1, uint64_t *h2)
{
	unsigned char d[32];
	unsigned int dl = 32;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	*h1 = *h2 = 0;
	if (!ctx)
		return;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, key, strlen(key));
	EVP_DigestUpdate(ctx, "=", 1);
	EVP_DigestUpdate(ctx, v, n);
	EVP_DigestFinal_ex(ctx, d, &dl);
	EVP_MD_CTX_free(ctx);
	for (int i = 7; i >= 0; i--) {
		*h1 = *h1 << 8 | d[i];
		*h2 = *h2 << 8 | d[8 + i];
	}
	*h2 |= 1;
}

static json_object *jstrn(const char *s, size_t n)
{
	return json_object_new_string_len(s, (int)n);
}

static int cmp_entry_val(const void *a, const void *b, void *arena)
{
	const struct entry *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp((char *)arena + x->off, (char *)arena + y->off, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

int ig_aindex_finish(struct ig_aindex_builder *b, const char *key, const void *data, size_t len,
		     uint64_t multipart_threshold, uint64_t part_size, char **out, size_t *outlen)
{
	json_object *o = json_object_new_object(), *keys = json_object_new_array();
	json_object *vals = json_object_new_object(), *bl = json_object_new_object();
	unsigned char *bits = NULL;
	char *b64 = NULL, etag[48], ts[40];
	int rc = -ENOMEM;

	*out = NULL;
	if (!o || !keys || !vals || !bl) {
		json_object_put(keys);
		json_object_put(vals);
		json_object_put(bl);
		goto out;
	}
	ig_aindex_etag(data, len, multipart_threshold, part_size, etag);
	json_object_object_add(o, "ingrain_index", json_object_new_int(1));
	json_object_object_add(o, "object", json_object_new_string(key));
	json_object_object_add(o, "object_bytes", json_object_new_uint64(len));
	json_object_object_add(o, "object_etag", json_object_new_string(etag));
	json_object_object_add(o, "records", json_object_new_uint64(b->records));
	json_object_object_add(o, "record_bytes", json_object_new_uint64(b->bytes));
	if (b->have_ts) {
		ig_fmt_rfc3339((uint64_t)b->ts_min, ts, sizeof(ts));
		json_object_object_add(o, "ts_min", json_object_new_string(ts));
		ig_fmt_rfc3339((uint64_t)b->ts_max, ts, sizeof(ts));
		json_object_object_add(o, "ts_max", json_object_new_string(ts));
	} else {
		json_object_object_add(o, "ts_min", NULL);
		json_object_object_add(o, "ts_max", NULL);
	}
	size_t n = b->saturated ? 0 : b->n;
	uint64_t m = (uint64_t)ceil((double)n * BITS_PER_ITEM);
	m = m < 64 ? 64 : (m + 63) / 64 * 64;
	bits = calloc(m / 8, 1);
	b64 = malloc(4 * ((m / 8 + 2) / 3) + 1);
	if (!bits || !b64) {
		json_object_put(keys);
		json_object_put(vals);
		json_object_put(bl);
		goto out;
	}
	if (!b->saturated) {
		/* Per covered tag: its entries, sorted, listed when few. */
		struct entry *list = malloc((b->n ? b->n : 1) * sizeof(*list));
		if (!list) {
			json_object_put(keys);
			json_object_put(vals);
			json_object_put(bl);
			goto out;
		}
		for (size_t k = 0; k < b->nkeys; k++) {
			size_t cnt = 0, bytes = 0;
			json_object_array_add(keys, json_object_new_string(b->keys[k]));
			for (size_t i = 0; i < b->cap; i++) {
				const struct entry *e = &b->tab[i];
				if (!e->used || e->key != k)
					continue;
				list[cnt++] = *e;
				bytes += e->len;
				uint64_t h1, h2;
				bloom_hashes(b->keys[k], b->arena + e->off, e->len, &h1, &h2);
				for (uint64_t j = 0; j < BLOOM_K; j++) {
					uint64_t bit = (h1 + j * h2) % m;
					bits[bit / 8] |= (unsigned char)(1u << (bit % 8));
				}
			}
			if (cnt > IG_AINDEX_MAX_VALUES || bytes > MAX_LIST_BYTES)
				continue;
			qsort_r(list, cnt, sizeof(*list), cmp_entry_val, b->arena);
			json_object *arr = json_object_new_array();
			for (size_t i = 0; arr && i < cnt; i++)
				json_object_array_add(arr,
						      jstrn(b->arena + list[i].off, list[i].len));
			json_object_object_add(vals, b->keys[k], arr);
		}
		free(list);
	}
	EVP_EncodeBlock((unsigned char *)b64, bits, (int)(m / 8));
	json_object_object_add(o, "keys", keys);
	json_object_object_add(o, "values", vals);
	json_object_object_add(bl, "m", json_object_new_uint64(m));
	json_object_object_add(bl, "k", json_object_new_int(BLOOM_K));
	json_object_object_add(bl, "bits", json_object_new_string(b64));
	json_object_object_add(o, "bloom", bl);

	size_t jl;
	const char *js = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jl);
	if (!js || jl < 2)
		goto out;
	/* Drop the closing '}', append the CRC of what precedes it. */
	size_t body = jl - 1;
	char *doc = malloc(body + 32);
	if (!doc)
		goto out;
	memcpy(doc, js, body);
	uLong crc = crc32(0L, (const Bytef *)doc, (uInt)body);
	int tail = snprintf(doc + body, 32, ",\"crc32\":\"%08lx\"}\n", (unsigned long)crc);
	*out = doc;
	*outlen = body + (size_t)tail;
	rc = 0;
out:
	json_object_put(o);
	free(bits);
	free(b64);
	ig_aindex_reset(b);
	return rc;
}

char *ig_aindex_key(const char *data_key)
{
	const char *slash = strrchr(data_key, '/');
	size_t dir = slash ? (size_t)(slash - data_key + 1) : 0;
	char *k;

	if (asprintf(&k, "%.*s_%s%s", (int)dir, data_key, data_key + dir, IG_AINDEX_SUFFIX) < 0)
		return NULL;
	return k;
}

bool ig_aindex_is_index_key(const char *key)
{
	const char *slash = strrchr(key, '/');
	const char *base = slash ? slash + 1 : key;
	size_t l = strlen(base), sl = strlen(IG_AINDEX_SUFFIX);

	return base[0] == '_' && l > sl && !strcmp(base + l - sl, IG_AINDEX_SUFFIX);
}

/* --- reading ----------------------------------------------------------- */

struct ixkey {
	char *name;
	bool listed;
	size_t nvals;
	char **vals;
	size_t *lens;
};

struct ig_aindex {
	char *object, *etag;
	uint64_t size, records;
	int64_t ts_min, ts_max;
	bool have_ts;
	size_t nkeys;
	struct ixkey *keys;
	unsigned char *bits;
	uint64_t m, k;
};

void ig_aindex_free(struct ig_aindex *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->nkeys; i++) {
		for (size_t j = 0; j < ix->keys[i].nvals; j++)
			free(ix->keys[i].vals[j]);
		free(ix->keys[i].vals);
		free(ix->keys[i].lens);
		free(ix->keys[i].name);
	}
	free(ix->keys);
	free(ix->object);
	free(ix->etag);
	free(ix->bits);
	free(ix);
}

static json_object *member(json_object *o, const char *k, json_type t)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

struct ig_aindex *ig_aindex_parse(const char *doc, size_t len, char *why, size_t whylen)
{
	static const char tag[] = ",\"crc32\":\"";
	struct ig_aindex *ix = NULL;
	json_object *o = NULL, *v;
	char *copy = NULL;

	while (len && (doc[len - 1] == '\n' || doc[len - 1] == '\r'))
		len--;
	/* ...,"crc32":"xxxxxxxx"}  : 10 + 8 + 2 bytes at the end. */
	if (len < sizeof(tag) - 1 + 10 || memcmp(doc + len - 20, tag, sizeof(tag) - 1) ||
	    doc[len - 2] != '"' || doc[len - 1] != '}') {
		snprintf(why, whylen, "not an index (no crc32 at its end)");
		return NULL;
	}
	size_t body = len - 20;
	char want[9];
	snprintf(want, sizeof(want), "%08lx",
		 (unsigned long)crc32(0L, (const Bytef *)doc, (uInt)body));
	if (memcmp(doc + len - 10, want, 8)) {
		snprintf(why, whylen, "crc32 does not match: the index is corrupt");
		return NULL;
	}
	if (!(copy = malloc(body + 2)))
		goto nomem;
	memcpy(copy, doc, body);
	copy[body] = '}';
	copy[body + 1] = '\0';
	json_tokener *tok = json_tokener_new();
	if (!tok)
		goto nomem;
	o = json_tokener_parse_ex(tok, copy, (int)body + 1);
	json_tokener_free(tok);
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(why, whylen, "not valid JSON");
		goto fail;
	}
	if (!(v = member(o, "ingrain_index", json_type_int)) || json_object_get_int(v) != 1) {
		snprintf(why, whylen, "unknown index version");
		goto fail;
	}
	if (!(ix = calloc(1, sizeof(*ix))))
		goto nomem;
	json_object *obj = member(o, "object", json_type_string),
		    *size = member(o, "object_bytes", json_type_int),
		    *recs = member(o, "records", json_type_int),
		    *keys = member(o, "keys", json_type_array),
		    *vals = member(o, "values", json_type_object),
		    *bl = member(o, "bloom", json_type_object), *etag;
	if (!obj || !size || !recs || !keys || !vals || !bl) {
		snprintf(why, whylen, "a required member is missing or has the wrong type");
		goto fail;
	}
	ix->object = strdup(json_object_get_string(obj));
	ix->size = json_object_get_uint64(size);
	ix->records = json_object_get_uint64(recs);
	if ((etag = member(o, "object_etag", json_type_string)))
		ix->etag = strdup(json_object_get_string(etag));
	json_object *tmin = member(o, "ts_min", json_type_string),
		    *tmax = member(o, "ts_max", json_type_string);
	if (tmin && tmax) {
		if (ig_rfc3339_parse(json_object_get_string(tmin),
				     (size_t)json_object_get_string_len(tmin), &ix->ts_min) ||
		    ig_rfc3339_parse(json_object_get_string(tmax),
				     (size_t)json_object_get_string_len(tmax), &ix->ts_max) ||
		    ix->ts_min > ix->ts_max) {
			snprintf(why, whylen, "bad ts_min/ts_max");
			goto fail;
		}
		ix->have_ts = true;
	}
	json_object *m = member(bl, "m", json_type_int), *k = member(bl, "k", json_type_int),
		    *bits = member(bl, "bits", json_type_string);
	if (!m || !k || !bits || json_object_get_uint64(m) % 8 || !json_object_get_uint64(m) ||
	    json_object_get_int(k) < 1 || json_object_get_int(k) > 32) {
		snprintf(why, whylen, "bad bloom parameters");
		goto fail;
	}
	ix->m = json_object_get_uint64(m);
	ix->k = (uint64_t)json_object_get_int(k);
	size_t bl64 = (size_t)json_object_get_string_len(bits), nbytes = ix->m / 8;
	if (bl64 != 4 * ((nbytes + 2) / 3) || !(ix->bits = malloc(bl64 / 4 * 3 + 3)) ||
	    EVP_DecodeBlock(ix->bits, (const unsigned char *)json_object_get_string(bits),
			    (int)bl64) < (int)nbytes) {
		snprintf(why, whylen, "bloom bits do not match m");
		goto fail;
	}
	ix->nkeys = json_object_array_length(keys);
	if (!(ix->keys = calloc(ix->nkeys ? ix->nkeys : 1, sizeof(*ix->keys))) || !ix->object)
		goto nomem;
	for (size_t i = 0; i < ix->nkeys; i++) {
		json_object *kn = json_object_array_get_idx(keys, i), *list;
		if (!json_object_is_type(kn, json_type_string)) {
			snprintf(why, whylen, "keys[%zu] is not a string", i);
			goto fail;
		}
		struct ixkey *xk = &ix->keys[i];
		if (!(xk->name = strdup(json_object_get_string(kn))))
			goto nomem;
		if (!json_object_object_get_ex(vals, xk->name, &list))
			continue;
		if (!json_object_is_type(list, json_type_array)) {
			snprintf(why, whylen, "values.%s is not a list", xk->name);
			goto fail;
		}
		xk->listed = true;
		size_t nv = json_object_array_length(list);
		xk->vals = calloc(nv ? nv : 1, sizeof(*xk->vals));
		xk->lens = calloc(nv ? nv : 1, sizeof(*xk->lens));
		if (!xk->vals || !xk->lens)
			goto nomem;
		for (size_t j = 0; j < nv; j++, xk->nvals++) {
			json_object *s = json_object_array_get_idx(list, j);
			if (!json_object_is_type(s, json_type_string)) {
				snprintf(why, whylen, "values.%s[%zu] is not a string", xk->name,
					 j);
				goto fail;
			}
			xk->lens[j] = (size_t)json_object_get_string_len(s);
			if (!(xk->vals[j] = malloc(xk->lens[j] + 1)))
				goto nomem;
			memcpy(xk->vals[j], json_object_get_string(s), xk->lens[j] + 1);
		}
	}
	json_object_put(o);
	free(copy);
	return ix;
nomem:
	snprintf(why, whylen, "out of memory");
fail:
	json_object_put(o);
	free(copy);
	ig_aindex_free(ix);
	return NULL;
}

const char *ig_aindex_binding_mismatch(const struct ig_aindex *ix, const char *key, uint64_t size,
				       const char *etag)
{
	if (strcmp(ix->object, key))
		return "it names another object";
	if (ix->size != size)
		return "the object's size differs from the index's";
	if (etag && ix->etag && strcmp(ix->etag, etag))
		return "the object's ETag differs from the index's";
	return NULL;
}

void ig_aindex_range(const struct ig_aindex *ix, int64_t *min_ns, int64_t *max_ns)
{
	if (ix->have_ts) {
		*min_ns = ix->ts_min;
		*max_ns = ix->ts_max;
	} else { /* no record has a time: an empty range */
		*min_ns = INT64_MAX;
		*max_ns = INT64_MIN;
	}
}

uint64_t ig_aindex_records(const struct ig_aindex *ix)
{
	return ix->records;
}

static const struct ixkey *find_key(const struct ig_aindex *ix, const char *key)
{
	for (size_t i = 0; i < ix->nkeys; i++)
		if (!strcmp(ix->keys[i].name, key))
			return &ix->keys[i];
	return NULL;
}

bool ig_aindex_may_equal(const struct ig_aindex *ix, const char *key, const char *val, size_t vlen)
{
	const struct ixkey *k = find_key(ix, key);
	uint64_t h1, h2;

	if (!k)
		return true;
	if (k->listed) {
		for (size_t i = 0; i < k->nvals; i++)
			if (k->lens[i] == vlen && !memcmp(k->vals[i], val, vlen))
				return true;
		return false;
	}
	bloom_hashes(key, val, vlen, &h1, &h2);
	for (uint64_t j = 0; j < ix->k; j++) {
		uint64_t bit = (h1 + j * h2) % ix->m;
		if (!(ix->bits[bit / 8] & (1u << (bit % 8))))
			return false;
	}
	return true;
}

bool ig_aindex_values(const struct ig_aindex *ix, const char *key, const char *const **values,
		      const size_t **lens, size_t *n)
{
	const struct ixkey *k = find_key(ix, key);

	if (!k || !k->listed)
		return false;
	*values = (const char *const *)k->vals;
	*lens = k->lens;
	*n = k->nvals;
	return true;
}
