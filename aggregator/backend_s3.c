/* backend_s3: the archive. Every metric that reaches it (a record with its
 * identity, as the pipeline's stages left it) becomes one line of
 * newline-delimited JSON (record_json.h; or one msgpack map with the same
 * schema), appended to an open batch that is gzip-compressed as it grows.
 * A batch closes when it holds batch_max_bytes (uncompressed) or
 * batch_max_records, when it is batch_max_age old, when a record of a later
 * hour arrives (so an object's partition is the hour of its first record;
 * late records stay in the open batch), and on flush (SIGTERM, reload).
 *
 * A closed batch gets its object key at once,
 *   <prefix>/cluster=<c>/date=YYYY-MM-DD/hour=HH/<source>-<ULID>.jsonl.gz
 * and goes to the spool (spool.h): written to spool_dir, then uploaded by
 * the spool's worker thread with a SigV4-signed PUT (Content-MD5 or
 * x-amz-checksum-sha256), or a multipart upload above multipart_threshold.
 * Because the key is fixed before the first attempt, a retried upload
 * rewrites the same object: retries never create duplicates.
 * Beside each jsonl object goes a small index object (archive_index.h:
 * time range, Bloom filter over index_tags), queued right after it, which
 * `ingrainctl archive query` reads to skip objects (s3_reader.h gives it
 * this backend's settings, credentials and signer, without a spool).
 *
 * Acked means durable: the lines an envelope added to the open batch are
 * appended to the batch's journal in the spool directory (spool.h) by sync(),
 * before the aggregator acks the envelope. The object key is chosen when the
 * batch opens and named in the journal, so after a crash the journal becomes
 * the object it would have been, and a journal whose batch was already
 * spooled is recognised by its key and not stored twice.
 *
 * Failures: transport errors, 5xx, 429 and S3's transient codes are retried
 * with exponential backoff and jitter; auth errors (403, InvalidAccessKeyId,
 * SignatureDoesNotMatch, wrong region), a missing bucket or any other 4xx
 * stop delivery with one clear error, keeping every batch in the spool until
 * the configuration is fixed and the aggregator restarts or reloads.
 *
 * Credentials, first found wins: access_key_id/secret_access_key (and
 * session_token) in the configuration; AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment; a web
 * identity token (EKS IRSA: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)
 * exchanged with STS AssumeRoleWithWebIdentity and refreshed before expiry.
 * Instance profiles (IMDS), SSO and ~/.aws files are not read.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <msgpack.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "archive_index.h"
#include "http_client.h"
#include "ig_backend.h"
#include "ig_log.h"
#include "ig_time.h"
#include "record_json.h"
#include "s3_reader.h"
#include "sigv4.h"
#include "spool.h"

static const char *const s3_formats[] = { "jsonl", "msgpack", NULL };
static const char *const s3_compressions[] = { "gzip", "none", NULL };
static const char *const s3_addressing[] = { "auto", "virtual", "path", NULL };
static const char *const s3_checksums[] = { "md5", "sha256", "none", NULL };
enum { FMT_JSONL, FMT_MSGPACK };
enum { COMP_GZIP, COMP_NONE };
enum { ADDR_AUTO, ADDR_VIRTUAL, ADDR_PATH };
enum { SUM_MD5, SUM_SHA256, SUM_NONE };

struct s3_conf {
	char *bucket, *region, *endpoint, *prefix, *cluster, *source;
	int addressing, format, compression, checksum;
	char *access_key_id, *secret_access_key, *session_token;
	char *role_arn, *web_identity_token_file, *sts_endpoint;
	char *storage_class;
	uint64_t batch_max_bytes, batch_max_records, batch_max_age_ns;
	uint64_t multipart_threshold, part_size;
	char *spool_dir;
	uint64_t spool_max_bytes;
	bool spool_fsync;
	uint64_t retry_min_ns, retry_max_ns;
	uint64_t connect_timeout_ns, timeout_ns, shutdown_timeout_ns;
	char *ca_file;
	bool tls_verify;
	struct ig_strlist index_tags;
};

#define OPT(n, t, d, f, dsc, ...)                                                      \
	{                                                                              \
		.name = n, .type = t, .def = d, .offset = offsetof(struct s3_conf, f), \
		.desc = dsc, __VA_ARGS__                                               \
	}
static const struct ig_opt s3_opts[] = {
	OPT("bucket", IG_OPT_STR, NULL, bucket, "Bucket name.", .flags = IG_OPTF_REQUIRED),
	OPT("region", IG_OPT_STR, "us-east-1", region, "Region the request is signed for."),
	OPT("endpoint", IG_OPT_STR, "", endpoint,
	    "Custom endpoint URL (MinIO, Ceph, GCS interoperability: "
	    "http(s)://host[:port]); empty = AWS (https://s3.<region>.amazonaws.com)."),
	OPT("addressing", IG_OPT_ENUM, "auto", addressing,
	    "Bucket in the host name (virtual) or in the path (path); auto = virtual on AWS, path "
	    "for a custom endpoint.",
	    .choices = s3_addressing),
	OPT("prefix", IG_OPT_STR, "ingrain", prefix, "Key prefix (no leading or trailing '/')."),
	OPT("cluster", IG_OPT_STR, "default", cluster, "Value of the cluster= key partition."),
	OPT("source", IG_OPT_STR, "", source,
	    "Object name prefix identifying the writer; empty = this host's name."),
	OPT("format", IG_OPT_ENUM, "jsonl", format,
	    "jsonl (one JSON object per line) or msgpack (a stream of maps, same schema).",
	    .choices = s3_formats),
	OPT("compression", IG_OPT_ENUM, "gzip", compression, "gzip or none.",
	    .choices = s3_compressions),
	OPT("checksum", IG_OPT_ENUM, "md5", checksum,
	    "Integrity header: md5 (Content-MD5), sha256 (x-amz-checksum-sha256) or none. "
	    "Multipart parts always carry Content-MD5 unless none.",
	    .choices = s3_checksums),
	OPT("access_key_id", IG_OPT_STR, "", access_key_id,
	    "Access key; empty = $AWS_ACCESS_KEY_ID, then web identity."),
	OPT("secret_access_key", IG_OPT_STR, "", secret_access_key,
	    "Secret key; empty = $AWS_SECRET_ACCESS_KEY."),
	OPT("session_token", IG_OPT_STR, "", session_token,
	    "Session token for temporary credentials; empty = $AWS_SESSION_TOKEN."),
	OPT("role_arn", IG_OPT_STR, "", role_arn,
	    "Web identity (IRSA): role to assume; empty = $AWS_ROLE_ARN."),
	OPT("web_identity_token_file", IG_OPT_STR, "", web_identity_token_file,
	    "Web identity token file; empty = $AWS_WEB_IDENTITY_TOKEN_FILE."),
	OPT("sts_endpoint", IG_OPT_STR, "", sts_endpoint,
	    "STS endpoint for web identity; empty = https://sts.<region>.amazonaws.com."),
	OPT("storage_class", IG_OPT_STR, "", storage_class,
	    "x-amz-storage-class of new objects (e.g. STANDARD_IA); empty = bucket default."),
	OPT("batch_max_bytes", IG_OPT_SIZE, "16MiB", batch_max_bytes,
	    "Close a batch at this many uncompressed bytes.", .min = 1024,
	    .max = 4LL * 1024 * 1024 * 1024),
	OPT("batch_max_records", IG_OPT_UINT, "1000000", batch_max_records,
	    "...or this many records.", .min = 1, .max = 100000000),
	OPT("batch_max_age", IG_OPT_DURATION, "5m", batch_max_age_ns,
	    "...or when the batch is this old.", .min = 10000000, .max = 24LL * 3600 * 1000000000),
	OPT("multipart_threshold", IG_OPT_SIZE, "64MiB", multipart_threshold,
	    "Objects larger than this (compressed) use a multipart upload.", .min = 5 * 1024 * 1024,
	    .max = 5LL * 1024 * 1024 * 1024),
	OPT("part_size", IG_OPT_SIZE, "16MiB", part_size,
	    "Multipart part size (S3 needs at least 5MiB).", .min = 5 * 1024 * 1024,
	    .max = 5LL * 1024 * 1024 * 1024),
	OPT("spool_dir", IG_OPT_STR, "/var/lib/ingrain/spool/<name>", spool_dir,
	    "Directory of undelivered batches (created; one per backend). Empty = memory only "
	    "(lost at exit)."),
	OPT("spool_max_bytes", IG_OPT_SIZE, "1GiB", spool_max_bytes,
	    "Bound of the spool; the oldest batches are dropped (counted) beyond it.", .min = 1024,
	    .max = INT64_MAX),
	OPT("spool_fsync", IG_OPT_BOOL, "true", spool_fsync,
	    "fsync each spooled batch before counting it stored."),
	OPT("retry_min", IG_OPT_DURATION, "1s", retry_min_ns, "First retry delay.", .min = 1000000,
	    .max = 3600LL * 1000000000),
	OPT("retry_max", IG_OPT_DURATION, "5m", retry_max_ns,
	    "Longest retry delay (the delay doubles up to it, with jitter).", .min = 1000000,
	    .max = 24LL * 3600 * 1000000000),
	OPT("connect_timeout", IG_OPT_DURATION, "5s", connect_timeout_ns,
	    "TCP/TLS connect timeout.", .min = 1000000, .max = 600LL * 1000000000),
	OPT("timeout", IG_OPT_DURATION, "2m", timeout_ns, "Whole-request timeout.", .min = 1000000,
	    .max = 3600LL * 1000000000),
	OPT("shutdown_timeout", IG_OPT_DURATION, "10s", shutdown_timeout_ns,
	    "On flush (SIGTERM, reload), how long to try delivering before leaving batches in "
	    "the spool.",
	    .min = 0, .max = 3600LL * 1000000000),
	OPT("ca_file", IG_OPT_STR, "", ca_file, "PEM CA bundle to trust; empty = system store."),
	OPT("tls_verify", IG_OPT_BOOL, "true", tls_verify,
	    "Verify the server certificate (never turn off in production)."),
	OPT("index_tags", IG_OPT_STRLIST, "[path, process, pod, namespace, container, node, uid]",
	    index_tags,
	    "Tags covered by the index object written beside each jsonl object "
	    "(docs/archive.md); [] = no index."),
	{ 0 }
};

struct creds {
	char *ak, *sk, *token;
	uint64_t expires_wall_ns; /* 0 = static */
	bool web_identity;
	char *role_arn, *token_file;
};

struct s3 {
	struct s3_conf c; /* copy of the pointers; strings owned by the engine's conf */
	char *name;
	char *source;
	char *scheme_host; /* "https://s3.us-east-1.amazonaws.com" */
	char *host; /* Host header: "bucket.s3..." or "127.0.0.1:4569" */
	char *base_path; /* "" (virtual) or "/bucket" (path) */
	char *sts_url;
	struct ig_http *http; /* worker thread only */
	struct creds cr; /* worker thread only (after init) */
	struct ig_spool *spool;

	/* open batch (aggregator thread) */
	bool open;
	z_stream z;
	unsigned char *buf; /* compressed (or raw) output */
	size_t len, cap;
	uint64_t raw_bytes, records;
	uint64_t opened_mono_ns;
	uint64_t first_ts_ns, hour; /* partition of the batch */
	char *key; /* object key, chosen when the batch opens */
	msgpack_sbuffer mp;
	/* lines added since the last sync: the next journal frame */
	char *jbuf;
	size_t jlen, jcap;
	uint64_t jrecords;

	/* counters (aggregator thread) */
	uint64_t received, dropped_local;
	struct ig_aindex_builder *idx; /* NULL: no index objects */
};

/* --- ULID -------------------------------------------------------------- */

static void ulid(uint64_t wall_ns, char out[27])
{
	static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char r[10];
	uint64_t ms = wall_ns / IG_NSEC_PER_MSEC;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		for (size_t i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)random();
	}
	for (int i = 9; i >= 0; i--) {
		out[i] = b32[ms & 31];
		ms >>= 5;
	}
	/* 80 random bits = 16 base32 digits. */
	uint64_t hi = 0, lo = 0;
	for (int i = 0; i < 5; i++)
		hi = hi << 8 | r[i];
	for (int i = 5; i < 10; i++)
		lo = lo << 8 | r[i];
	for (int i = 17; i >= 10; i--) {
		out[i] = b32[hi & 31];
		hi >>= 5;
	}
	for (int i = 25; i >= 18; i--) {
		out[i] = b32[lo & 31];
		lo >>= 5;
	}
	out[26] = '\0';
}

/* --- batch building (aggregator thread) --------------------------------- */

static int buf_reserve(struct s3 *s, size_t more)
{
	if (s->len + more <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 64 * 1024;
	while (cap < s->len + more)
		cap *= 2;
	unsigned char *b = realloc(s->buf, cap);
	if (!b)
		return -ENOMEM;
	s->buf = b;
	s->cap = cap;
	return 0;
}

static int emit(struct s3 *s, const void *p, size_t n, int flush)
{
	if (s->c.compression == COMP_NONE) {
		if (buf_reserve(s, n))
			return -ENOMEM;
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		return 0;
	}
	s->z.next_in = (Bytef *)p;
	s->z.avail_in = (uInt)n;
	for (;;) {
		if (buf_reserve(s, 64 * 1024))
			return -ENOMEM;
		s->z.next_out = s->buf + s->len;
		s->z.avail_out = (uInt)(s->cap - s->len);
		int rc = deflate(&s->z, flush);
		s->len = s->cap - s->z.avail_out;
		if (rc == Z_STREAM_END)
			return 0;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return -EIO;
		if (s->z.avail_in == 0 && s->z.avail_out != 0)
			return 0;
	}
}

static char *object_key(struct s3 *s);

static int jbuf_add(struct s3 *s, const void *p, size_t n)
{
	if (s->jlen + n > s->jcap) {
		size_t cap = s->jcap ? s->jcap : 64 * 1024;
		while (cap < s->jlen + n)
			cap *= 2;
		char *b = realloc(s->jbuf, cap);
		if (!b)
			return -ENOMEM;
		s->jbuf = b;
		s->jcap = cap;
	}
	memcpy(s->jbuf + s->jlen, p, n);
	s->jlen += n;
	return 0;
}

static int batch_open(struct s3 *s, uint64_t ts_ns)
{
	s->len = 0;
	s->raw_bytes = s->records = 0;
	s->opened_mono_ns = ig_mono_ns();
	s->first_ts_ns = ts_ns;
	s->hour = ts_ns / (3600 * IG_NSEC_PER_SEC);
	free(s->key);
	if (!(s->key = object_key(s)))
		return -ENOMEM;
	if (s->idx)
		ig_aindex_reset(s->idx);
	if (s->c.compression == COMP_GZIP) {
		memset(&s->z, 0, sizeof(s->z));
		if (deflateInit2(&s->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
	}
	s->open = true;
	return 0;
}

static char *object_key(struct s3 *s)
{
	time_t t = (time_t)(s->first_ts_ns / IG_NSEC_PER_SEC);
	struct tm tm;
	char id[27], *key;
	const char *ext = s->c.format == FMT_JSONL ? "jsonl" : "msgpack";
	const char *z = s->c.compression == COMP_GZIP ? ".gz" : "";

	gmtime_r(&t, &tm);
	ulid(ig_wall_ns(), id);
	if (asprintf(&key, "%s%scluster=%s/date=%04d-%02d-%02d/hour=%02d/%s-%s.%s%s", s->c.prefix,
		     *s->c.prefix ? "/" : "", s->c.cluster, tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, s->source, id, ext, z) < 0)
		return NULL;
	return key;
}

/* The index object of a closed batch (archive_index.h). It is queued after
 * the data object, so an index never names an object not yet stored; a
 * batch whose index cannot be built is stored without one (queries scan it). */
static void index_batch(struct s3 *s, const struct ig_batch *b, struct ig_batch *ib)
{
	char *doc = NULL;
	size_t len = 0;

	if (ig_aindex_finish(s->idx, b->key, b->data, b->len, s->c.multipart_threshold,
			     s->c.part_size, &doc, &len) ||
	    !(ib->key = ig_aindex_key(b->key))) {
		free(doc);
		ig_warn("s3: no index for this object (out of memory)", "backend=%s key=%s",
			s->name, b->key);
		return;
	}
	ib->data = doc;
	ib->len = len;
	ib->created_ns = b->created_ns;
}

/* Closes the open batch and hands it to the spool. */
static void batch_close(struct s3 *s)
{
	struct ig_batch b = { 0 }, ib = { 0 };

	if (!s->open)
		return;
	s->open = false;
	/* What was not journaled yet is in the batch itself now. */
	s->jlen = 0;
	s->jrecords = 0;
	if (s->c.compression == COMP_GZIP) {
		int rc = emit(s, "", 0, Z_FINISH);
		deflateEnd(&s->z);
		if (rc) {
			ig_error("s3: compression failed, batch dropped",
				 "backend=%s records=%" PRIu64, s->name, s->records);
			s->dropped_local += s->records;
			ig_spool_journal_end(s->spool);
			return;
		}
	}
	if (!s->records) {
		ig_spool_journal_end(s->spool);
		return;
	}
	b.key = s->key;
	s->key = NULL;
	b.records = s->records;
	b.created_ns = ig_wall_ns();
	b.data = s->buf;
	b.len = s->len;
	if (!b.key) {
		s->dropped_local += s->records;
		return;
	}
	/* The buffer now belongs to the batch. */
	s->buf = NULL;
	s->len = s->cap = 0;
	ig_debug("s3: batch closed", "backend=%s key=%s records=%" PRIu64 " bytes=%zu", s->name,
		 b.key, b.records, b.len);
	if (s->idx)
		index_batch(s, &b, &ib);
	ig_spool_push(s->spool, &b);
	ig_spool_journal_end(s->spool);
	/* The index is derived from the batch: pushed after the batch is safe in the
	 * spool. A batch recovered from the journal after a crash has no index (the
	 * query then scans that object). */
	if (ib.key)
		ig_spool_push(s->spool, &ib);
}

/* json-c value -> msgpack (the msgpack format has the JSON schema). */
static void pack_json(msgpack_packer *pk, json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		msgpack_pack_nil(pk);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(o))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case json_type_double:
		msgpack_pack_double(pk, json_object_get_double(o));
		break;
	case json_type_int:
		if (json_object_get_int64(o) < 0)
			msgpack_pack_int64(pk, json_object_get_int64(o));
		else
			msgpack_pack_uint64(pk, json_object_get_uint64(o));
		break;
	case json_type_string: {
		size_t l = (size_t)json_object_get_string_len(o);
		msgpack_pack_str(pk, l);
		msgpack_pack_str_body(pk, json_object_get_string(o), l);
		break;
	}
	case json_type_object:
		msgpack_pack_map(pk, (size_t)json_object_object_length(o));
		json_object_object_foreach(o, k, v)
		{
			msgpack_pack_str(pk, strlen(k));
			msgpack_pack_str_body(pk, k, strlen(k));
			pack_json(pk, v);
		}
		break;
	case json_type_array: {
		size_t n = json_object_array_length(o);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			pack_json(pk, json_object_array_get_idx(o, i));
		break;
	}
	}
}

static int s3_write(void *state, const struct ig_metric *m)
{
	struct s3 *s = state;
	uint64_t ts = m->ts_ns ? m->ts_ns : ig_wall_ns();
	uint64_t hour = ts / (3600 * IG_NSEC_PER_SEC);
	int rc;

	s->received++;
	/* A record of a later hour starts the next partition's object. */
	if (s->open && hour > s->hour)
		batch_close(s);
	if (!s->open && batch_open(s, ts)) {
		s->dropped_local++;
		return -ENOMEM;
	}
	if (s->c.format == FMT_JSONL) {
		char *line;
		size_t len;
		if ((rc = ig_metric_to_json(m, &line, &len))) {
			s->dropped_local++;
			return rc;
		}
		if (s->idx)
			ig_aindex_add(s->idx, line, len);
		line[len] = '\n'; /* replaces the NUL: emit() takes a length */
		rc = emit(s, line, len + 1, Z_NO_FLUSH);
		if (!rc)
			rc = jbuf_add(s, line, len + 1);
		s->raw_bytes += len + 1;
		free(line);
	} else {
		json_object *o = ig_metric_to_jobj(m);
		msgpack_packer pk;
		if (!o) {
			s->dropped_local++;
			return -ENOMEM;
		}
		msgpack_sbuffer_clear(&s->mp);
		msgpack_packer_init(&pk, &s->mp, msgpack_sbuffer_write);
		pack_json(&pk, o);
		json_object_put(o);
		rc = emit(s, s->mp.data, s->mp.size, Z_NO_FLUSH);
		if (!rc)
			rc = jbuf_add(s, s->mp.data, s->mp.size);
		s->raw_bytes += s->mp.size;
	}
	if (rc) {
		s->dropped_local++;
		return rc;
	}
	s->records++;
	s->jrecords++;
	if (s->raw_bytes >= s->c.batch_max_bytes || s->records >= s->c.batch_max_records)
		batch_close(s);
	return 0;
}

static void s3_tick(void *state, uint64_t now_ns)
{
	struct s3 *s = state;

	(void)now_ns;
	if (s->open && ig_mono_ns() - s->opened_mono_ns >= s->c.batch_max_age_ns)
		batch_close(s);
}

/* Before the ack: the envelope's lines become durable in the journal. */
static void s3_sync(void *state)
{
	struct s3 *s = state;

	if (!s->open || !s->jrecords)
		return;
	ig_spool_journal_append(s->spool, s->key, s->jbuf, s->jlen, s->jrecords);
	s->jlen = 0;
	s->jrecords = 0;
}

/* A journal (raw lines or msgpack maps) back to a batch: compress it as the
 * open batch would have been. Spool worker thread or init: reads only c. */
static int s3_journal_to_batch(void *ctx, const char *key, const void *data, size_t len,
			       uint64_t records, struct ig_batch *out)
{
	struct s3 *s = ctx;

	(void)key;
	memset(out, 0, sizeof(*out));
	if (s->c.compression == COMP_NONE) {
		if (!(out->data = malloc(len ? len : 1)))
			return -ENOMEM;
		memcpy(out->data, data, len);
		out->len = len;
	} else {
		z_stream z = { 0 };
		if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return -ENOMEM;
		size_t cap = deflateBound(&z, (uLong)len) + 64;
		unsigned char *b = malloc(cap);
		if (!b) {
			deflateEnd(&z);
			return -ENOMEM;
		}
		z.next_in = (Bytef *)data;
		z.avail_in = (uInt)len;
		z.next_out = b;
		z.avail_out = (uInt)cap;
		int rc = deflate(&z, Z_FINISH);
		out->len = cap - z.avail_out;
		deflateEnd(&z);
		if (rc != Z_STREAM_END) {
			free(b);
			return -EIO;
		}
		out->data = b;
	}
	out->records = records;
	return 0;
}

static void s3_flush(void *state)
{
	struct s3 *s = state;
	struct ig_spool_stats st;

	batch_close(s);
	ig_spool_stats(s->spool, &st);
	if (!st.queued_batches)
		return;
	int rc = ig_spool_drain(s->spool, s->c.shutdown_timeout_ns);
	ig_spool_stats(s->spool, &st);
	if (rc) {
		ig_warn("s3: batches not yet delivered stay in the spool",
			"backend=%s batches=%" PRIu64 " records=%" PRIu64, s->name,
			st.queued_batches, st.queued_records);
		ig_spool_stop(s->spool); /* flush precedes free: stop waiting for S3 */
	}
}

static void s3_stats(void *state, struct ig_backend_stats *out)
{
	struct s3 *s = state;
	struct ig_spool_stats st;

	ig_spool_stats(s->spool, &st);
	out->received = s->received;
	out->sent = st.delivered_records;
	out->dropped = s->dropped_local + st.dropped_records;
	out->errors = st.failed_attempts;
	out->queued = (s->open ? s->records : 0) + st.queued_records;
	out->memory_held = st.memory_records;
	out->unjournaled = st.journal_unsynced_records;
	out->crash_lost = st.crash_lost_records;
}

/* --- credentials (worker thread after init) ----------------------------- */

static char *xml_value(const char *body, const char *tag)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	if (!body || !(a = strstr(body, open)))
		return NULL;
	a += strlen(open);
	if (!(b = strstr(a, close)))
		return NULL;
	return strndup(a, (size_t)(b - a));
}

static char *read_small_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(64 * 1024);
	n = buf ? fread(buf, 1, 64 * 1024 - 1, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return buf;
}

static uint64_t parse_iso8601(const char *s)
{
	struct tm tm = { 0 };

	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return (uint64_t)timegm(&tm) * IG_NSEC_PER_SEC;
}

/* STS AssumeRoleWithWebIdentity (an unsigned request: the token is the
 * proof). Returns 0, -EACCES when STS refused, -EAGAIN on transient errors. */
static int web_identity_refresh(struct s3 *s, char *why, size_t whylen)
{
	struct ig_http_resp r;
	char *token = read_small_file(s->cr.token_file), *url = NULL;
	char *et = NULL, *er = NULL, host[64];
	int rc;

	if (!token) {
		snprintf(why, whylen, "cannot read web identity token file %s: %s",
			 s->cr.token_file, strerror(errno));
		return -EACCES;
	}
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	et = ig_sigv4_uri_encode(token, strlen(token), false);
	er = ig_sigv4_uri_encode(s->cr.role_arn, strlen(s->cr.role_arn), false);
	free(token);
	if (!et || !er ||
	    asprintf(&url,
		     "%s/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&DurationSeconds=3600"
		     "&RoleSessionName=ingrain-%.32s&RoleArn=%s&WebIdentityToken=%s",
		     s->sts_url, host, er, et) < 0) {
		free(et);
		free(er);
		return -ENOMEM;
	}
	free(et);
	free(er);
	rc = ig_http_request(s->http, "GET", url, NULL, NULL, 0, &r);
	free(url);
	if (rc) {
		snprintf(why, whylen, "STS unreachable: %s", r.error);
		ig_http_resp_free(&r);
		return -EAGAIN;
	}
	if (r.status != 200) {
		char *code = xml_value(r.body, "Code"), *msg = xml_value(r.body, "Message");
		snprintf(why, whylen, "STS AssumeRoleWithWebIdentity answered %ld %s: %s", r.status,
			 code ? code : "", msg ? msg : "");
		free(code);
		free(msg);
		rc = ig_http_status_retryable(r.status) ? -EAGAIN : -EACCES;
		ig_http_resp_free(&r);
		return rc;
	}
	char *ak = xml_value(r.body, "AccessKeyId"), *sk = xml_value(r.body, "SecretAccessKey");
	char *st = xml_value(r.body, "SessionToken"), *exp = xml_value(r.body, "Expiration");
	ig_http_resp_free(&r);
	if (!ak || !sk || !st) {
		snprintf(why, whylen, "STS answer without credentials");
		free(ak);
		free(sk);
		free(st);
		free(exp);
		return -EAGAIN;
	}
	free(s->cr.ak);
	free(s->cr.sk);
	free(s->cr.token);
	s->cr.ak = ak;
	s->cr.sk = sk;
	s->cr.token = st;
	s->cr.expires_wall_ns = parse_iso8601(exp);
	if (!s->cr.expires_wall_ns)
		s->cr.expires_wall_ns = ig_wall_ns() + 3000 * IG_NSEC_PER_SEC;
	free(exp);
	ig_info("s3: web identity credentials obtained", "backend=%s role=%s", s->name,
		s->cr.role_arn);
	return 0;
}

static int creds_valid(struct s3 *s, char *why, size_t whylen)
{
	if (!s->cr.web_identity)
		return 0;
	if (s->cr.ak && ig_wall_ns() + 300 * IG_NSEC_PER_SEC < s->cr.expires_wall_ns)
		return 0;
	return web_identity_refresh(s, why, whylen);
}

static int creds_init(struct s3 *s, struct ig_err *err)
{
	const char *ak = *s->c.access_key_id ? s->c.access_key_id : getenv("AWS_ACCESS_KEY_ID");
	const char *sk =
		*s->c.secret_access_key ? s->c.secret_access_key : getenv("AWS_SECRET_ACCESS_KEY");
	const char *tk = *s->c.session_token ? s->c.session_token : getenv("AWS_SESSION_TOKEN");
	const char *role = *s->c.role_arn ? s->c.role_arn : getenv("AWS_ROLE_ARN");
	const char *tf = *s->c.web_identity_token_file ? s->c.web_identity_token_file :
							 getenv("AWS_WEB_IDENTITY_TOKEN_FILE");

	if (ak && *ak && sk && *sk) {
		s->cr.ak = strdup(ak);
		s->cr.sk = strdup(sk);
		s->cr.token = tk && *tk ? strdup(tk) : NULL;
		return s->cr.ak && s->cr.sk ? 0 : -ENOMEM;
	}
	if ((ak && *ak) || (sk && *sk)) {
		ig_err_add(
			err,
			"backends.%s: only one of access_key_id / secret_access_key is set (in "
			"the configuration or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): set both",
			s->name);
		return -EINVAL;
	}
	if (role && *role && tf && *tf) {
		s->cr.web_identity = true;
		s->cr.role_arn = strdup(role);
		s->cr.token_file = strdup(tf);
		return s->cr.role_arn && s->cr.token_file ? 0 : -ENOMEM;
	}
	ig_err_add(
		err,
		"backends.%s: no S3 credentials: set access_key_id and secret_access_key, or "
		"export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or "
		"use a web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, as EKS IRSA sets)",
		s->name);
	return -EINVAL;
}

/* --- requests (worker thread) ------------------------------------------ */

struct hdrs {
	struct ig_sigv4_header h[12];
	size_t n;
	char *lines[14];
	size_t nl;
};

static void hdr_add(struct hdrs *h, const char *name, const char *value)
{
	h->h[h->n].name = name;
	h->h[h->n].value = value;
	h->n++;
}

static void hdrs_free(struct hdrs *h)
{
	for (size_t i = 0; i < h->nl; i++)
		free(h->lines[i]);
	h->nl = 0;
}

/* Signs a request: the URL into *url and the header lines (NULL-terminated,
 * Host excluded: curl sends it from the URL) into h->lines. path is the
 * encoded key path ("/a%3Db/c"); query without '?'. extra headers are signed
 * too. 0 or -ENOMEM; free with hdrs_free and free(*url). */
static int s3_sign(struct s3 *s, const char *method, const char *path, const char *query,
		   const void *body, size_t len, const struct ig_sigv4_header *extra, size_t nextra,
		   struct hdrs *hp, char **url_out)
{
	char date[IG_SIGV4_DATE_LEN + 1], hash[IG_SHA256_HEX_LEN + 1];
	struct hdrs h = { .n = 0 };
	char *auth = NULL, *full_path = NULL, *url = NULL;
	int rc;

	ig_sigv4_amz_date((long long)(ig_wall_ns() / IG_NSEC_PER_SEC), date);
	ig_sha256_hex(body ? body : "", len, hash);
	hdr_add(&h, "host", s->host);
	hdr_add(&h, "x-amz-date", date);
	hdr_add(&h, "x-amz-content-sha256", hash);
	if (s->cr.token)
		hdr_add(&h, "x-amz-security-token", s->cr.token);
	for (size_t i = 0; i < nextra && h.n < 12; i++)
		hdr_add(&h, extra[i].name, extra[i].value);
	if (asprintf(&full_path, "%s%s", s->base_path, path) < 0) {
		full_path = NULL;
		rc = -ENOMEM;
		goto out;
	}
	struct ig_sigv4_req req = { method, full_path, query, h.h, h.n, hash };
	struct ig_sigv4_cred cred = { s->cr.ak, s->cr.sk, s->cr.token };
	if ((rc = ig_sigv4_sign(&req, &cred, s->c.region, "s3", date, &auth, NULL)))
		goto out;
	if (asprintf(&url, "%s%s%s%s", s->scheme_host, full_path, query && *query ? "?" : "",
		     query ? query : "") < 0) {
		url = NULL;
		rc = -ENOMEM;
		goto out;
	}
	/* curl sends Host itself (from the URL, the same value). */
	for (size_t i = 1; i < h.n; i++) {
		char *l;
		if (asprintf(&l, "%s: %s", h.h[i].name, h.h[i].value) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		h.lines[h.nl++] = l;
	}
	char *al;
	if (asprintf(&al, "Authorization: %s", auth) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	h.lines[h.nl++] = al;
	h.lines[h.nl] = NULL;
	*hp = h;
	*url_out = url;
	free(auth);
	free(full_path);
	return 0;
out:
	hdrs_free(&h);
	free(auth);
	free(full_path);
	free(url);
	return rc;
}

/* Signs and sends (see s3_sign). */
static int s3_request(struct s3 *s, const char *method, const char *path, const char *query,
		      const void *body, size_t len, const struct ig_sigv4_header *extra,
		      size_t nextra, struct ig_http_resp *resp)
{
	struct hdrs h;
	char *url;
	int rc = s3_sign(s, method, path, query, body, len, extra, nextra, &h, &url);

	if (rc) {
		memset(resp, 0, sizeof(*resp));
		snprintf(resp->error, sizeof(resp->error), "cannot build request: %s",
			 strerror(-rc));
		return rc;
	}
	rc = ig_http_request(s->http, method, url, (const char *const *)h.lines, body, len, resp);
	hdrs_free(&h);
	free(url);
	return rc;
}

/* Maps an S3 answer to a delivery verdict, with a reason for the log. */
static enum ig_deliver classify(struct s3 *s, int rc, const struct ig_http_resp *r, const char *op,
				char *why, size_t whylen)
{
	if (rc) {
		snprintf(why, whylen, "%s: %s", op, r->error);
		return IG_DELIVER_RETRY;
	}
	if (r->status >= 200 && r->status < 300) {
		/* CompleteMultipartUpload can fail inside a 200. */
		if (r->body && strstr(r->body, "<Error>")) {
			char *code = xml_value(r->body, "Code");
			snprintf(why, whylen, "%s: error inside 200 answer: %s", op,
				 code ? code : "");
			free(code);
			return IG_DELIVER_RETRY;
		}
		return IG_DELIVER_OK;
	}
	char *code = xml_value(r->body, "Code"), *msg = xml_value(r->body, "Message");
	const char *c = code ? code : "";
	enum ig_deliver v;
	const char *hint = "";

	if (ig_http_status_retryable(r->status) || !strcmp(c, "BadDigest") ||
	    !strcmp(c, "RequestTimeout") || !strcmp(c, "IncompleteBody") ||
	    !strcmp(c, "SlowDown") || !strcmp(c, "InternalError")) {
		v = IG_DELIVER_RETRY;
	} else if (!strcmp(c, "ExpiredToken") && s->cr.web_identity) {
		s->cr.expires_wall_ns = 0; /* refresh before the retry */
		v = IG_DELIVER_RETRY;
	} else if (!strcmp(c, "EntityTooLarge")) {
		v = IG_DELIVER_DROP;
		hint = " (lower batch_max_bytes or multipart_threshold)";
	} else {
		v = IG_DELIVER_HALT;
		if (r->status == 403 || !strcmp(c, "InvalidAccessKeyId") ||
		    !strcmp(c, "SignatureDoesNotMatch"))
			hint = " (check the access key, secret key and session token, and that the "
			       "policy allows s3:PutObject on the bucket)";
		else if (!strcmp(c, "NoSuchBucket"))
			hint = " (create the bucket or fix the bucket name)";
		else if (!strcmp(c, "AuthorizationHeaderMalformed") ||
			 !strcmp(c, "PermanentRedirect"))
			hint = " (the bucket is in another region: fix region)";
	}
	/* The hint first: S3's message can be long (it may quote the
	 * canonical request). */
	snprintf(why, whylen, "%s: HTTP %ld %s%s%s%.100s", op, r->status, c, hint, msg ? " - " : "",
		 msg ? msg : "");
	free(code);
	free(msg);
	return v;
}

static enum ig_deliver put_object(struct s3 *s, const char *path, const struct ig_batch *b,
				  char *why, size_t whylen)
{
	struct ig_sigv4_header extra[4];
	size_t n = 0;
	char md5[25], sha[45];
	struct ig_http_resp r;
	const char *ctype = s->c.compression == COMP_GZIP ? "application/gzip" :
			    s->c.format == FMT_JSONL	  ? "application/x-ndjson" :
							    "application/msgpack";

	extra[n++] = (struct ig_sigv4_header){ "content-type", ctype };
	if (s->c.checksum == SUM_MD5) {
		ig_md5_base64(b->data, b->len, md5);
		extra[n++] = (struct ig_sigv4_header){ "content-md5", md5 };
	} else if (s->c.checksum == SUM_SHA256) {
		ig_sha256_base64(b->data, b->len, sha);
		extra[n++] = (struct ig_sigv4_header){ "x-amz-checksum-sha256", sha };
	}
	if (*s->c.storage_class)
		extra[n++] = (struct ig_sigv4_header){ "x-amz-storage-class", s->c.storage_class };
	int rc = s3_request(s, "PUT", path, NULL, b->data, b->len, extra, n, &r);
	enum ig_deliver v = classify(s, rc, &r, "PutObject", why, whylen);
	ig_http_resp_free(&r);
	return v;
}

static enum ig_deliver multipart(struct s3 *s, const char *path, const struct ig_batch *b,
				 char *why, size_t whylen)
{
	struct ig_http_resp r;
	struct ig_sigv4_header extra[3];
	size_t n = 0, nparts = (b->len + s->c.part_size - 1) / s->c.part_size;
	char *upload_id = NULL, *enc_id = NULL, *body = NULL, **etags = NULL;
	enum ig_deliver v;
	char q[512], md5[25];
	int rc;
	const char *ctype = s->c.compression == COMP_GZIP ? "application/gzip" :
			    s->c.format == FMT_JSONL	  ? "application/x-ndjson" :
							    "application/msgpack";

	extra[n++] = (struct ig_sigv4_header){ "content-type", ctype };
	if (*s->c.storage_class)
		extra[n++] = (struct ig_sigv4_header){ "x-amz-storage-class", s->c.storage_class };
	rc = s3_request(s, "POST", path, "uploads", NULL, 0, extra, n, &r);
	v = classify(s, rc, &r, "CreateMultipartUpload", why, whylen);
	if (v == IG_DELIVER_OK && !(upload_id = xml_value(r.body, "UploadId"))) {
		snprintf(why, whylen, "CreateMultipartUpload: no UploadId in the answer");
		v = IG_DELIVER_RETRY;
	}
	ig_http_resp_free(&r);
	if (v != IG_DELIVER_OK)
		return v;
	enc_id = ig_sigv4_uri_encode(upload_id, strlen(upload_id), false);
	etags = calloc(nparts, sizeof(*etags));
	if (!enc_id || !etags) {
		snprintf(why, whylen, "out of memory");
		v = IG_DELIVER_RETRY;
		goto abort;
	}
	for (size_t i = 0; i < nparts; i++) {
		size_t off = i * s->c.part_size;
		size_t len = b->len - off < s->c.part_size ? b->len - off : s->c.part_size;
		struct ig_sigv4_header pe[1];
		size_t np = 0;
		if (s->c.checksum != SUM_NONE) {
			ig_md5_base64((const char *)b->data + off, len, md5);
			pe[np++] = (struct ig_sigv4_header){ "content-md5", md5 };
		}
		snprintf(q, sizeof(q), "partNumber=%zu&uploadId=%s", i + 1, enc_id);
		rc = s3_request(s, "PUT", path, q, (const char *)b->data + off, len, pe, np, &r);
		v = classify(s, rc, &r, "UploadPart", why, whylen);
		if (v == IG_DELIVER_OK && !(etags[i] = strdup(r.etag[0] ? r.etag : "\"\""))) {
			snprintf(why, whylen, "out of memory");
			v = IG_DELIVER_RETRY;
		}
		ig_http_resp_free(&r);
		if (v != IG_DELIVER_OK)
			goto abort;
	}
	{
		size_t cap = 128 + nparts * 200, used = 0;
		body = malloc(cap);
		if (!body) {
			v = IG_DELIVER_RETRY;
			goto abort;
		}
		used += (size_t)snprintf(body + used, cap - used, "<CompleteMultipartUpload>");
		for (size_t i = 0; i < nparts; i++)
			used += (size_t)snprintf(body + used, cap - used,
						 "<Part><PartNumber>%zu</PartNumber><ETag>%.128s"
						 "</ETag></Part>",
						 i + 1, etags[i]);
		used += (size_t)snprintf(body + used, cap - used, "</CompleteMultipartUpload>");
		snprintf(q, sizeof(q), "uploadId=%s", enc_id);
		struct ig_sigv4_header ce[] = { { "content-type", "application/xml" } };
		rc = s3_request(s, "POST", path, q, body, used, ce, 1, &r);
		v = classify(s, rc, &r, "CompleteMultipartUpload", why, whylen);
		ig_http_resp_free(&r);
		if (v != IG_DELIVER_OK)
			goto abort;
	}
	goto out;
abort:
	if (enc_id) {
		char w2[64];
		snprintf(q, sizeof(q), "uploadId=%s", enc_id);
		rc = s3_request(s, "DELETE", path, q, NULL, 0, NULL, 0, &r);
		(void)classify(s, rc, &r, "AbortMultipartUpload", w2, sizeof(w2));
		ig_http_resp_free(&r);
	}
out:
	for (size_t i = 0; etags && i < nparts; i++)
		free(etags[i]);
	free(etags);
	free(body);
	free(enc_id);
	free(upload_id);
	return v;
}

static enum ig_deliver s3_deliver(void *ctx, const struct ig_batch *b, char *why, size_t whylen)
{
	struct s3 *s = ctx;
	char *path;
	enum ig_deliver v;
	int rc;

	if ((rc = creds_valid(s, why, whylen)))
		return rc == -EACCES ? IG_DELIVER_HALT : IG_DELIVER_RETRY;
	char *enc = ig_sigv4_uri_encode(b->key, strlen(b->key), true);
	if (!enc || asprintf(&path, "/%s", enc) < 0) {
		free(enc);
		snprintf(why, whylen, "out of memory");
		return IG_DELIVER_RETRY;
	}
	free(enc);
	if (b->len > s->c.multipart_threshold)
		v = multipart(s, path, b, why, whylen);
	else
		v = put_object(s, path, b, why, whylen);
	if (v == IG_DELIVER_OK)
		ig_debug("s3: object stored", "backend=%s key=%s records=%" PRIu64 " bytes=%zu",
			 s->name, b->key, b->records, b->len);
	free(path);
	return v;
}

/* --- lifecycle --------------------------------------------------------- */

static void s3_free(void *state)
{
	struct s3 *s = state;

	if (!s)
		return;
	ig_spool_free(s->spool);
	if (s->open && s->c.compression == COMP_GZIP)
		deflateEnd(&s->z);
	if (s->open && s->records)
		ig_warn("s3: open batch discarded at free (flush was not called)",
			"backend=%s records=%" PRIu64, s->name, s->records);
	ig_http_free(s->http);
	ig_aindex_builder_free(s->idx);
	free(s->buf);
	free(s->key);
	free(s->jbuf);
	msgpack_sbuffer_destroy(&s->mp);
	free(s->cr.ak);
	free(s->cr.sk);
	free(s->cr.token);
	free(s->cr.role_arn);
	free(s->cr.token_file);
	free(s->name);
	free(s->source);
	free(s->scheme_host);
	free(s->host);
	free(s->base_path);
	free(s->sts_url);
	free(s);
}

/* Worker thread: abandon a request in progress once the spool stops. */
static bool s3_stopping(void *ctx)
{
	struct s3 *s = ctx;
	struct ig_spool *sp = __atomic_load_n(&s->spool, __ATOMIC_ACQUIRE);
	return sp && ig_spool_stopping(sp);
}

static bool valid_bucket(const char *b)
{
	size_t l = strlen(b);

	if (l < 3 || l > 63)
		return false;
	for (const char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.'))
			return false;
	return true;
}

static int s3_init(void **state, const void *conf, const char *name, struct ig_err *err)
{
	const struct s3_conf *c = conf;
	struct s3 *s = calloc(1, sizeof(*s));
	int rc = -EINVAL;

	*state = NULL;
	if (!s)
		return -ENOMEM;
	s->c = *c;
	s->name = strdup(name);
	msgpack_sbuffer_init(&s->mp);
	if (!s->name)
		goto nomem;
	if (!valid_bucket(c->bucket)) {
		ig_err_add(err,
			   "backends.%s.bucket: '%s' is not a valid bucket name (3-63 characters: "
			   "lower-case letters, digits, '-', '.')",
			   name, c->bucket);
		goto fail;
	}
	if (c->prefix[0] == '/' || (*c->prefix && c->prefix[strlen(c->prefix) - 1] == '/')) {
		ig_err_add(err, "backends.%s.prefix: '%s' must not start or end with '/'", name,
			   c->prefix);
		goto fail;
	}
	if (c->retry_max_ns < c->retry_min_ns) {
		ig_err_add(err, "backends.%s.retry_max: must not be less than retry_min", name);
		goto fail;
	}
	if (strpbrk(c->cluster, "/=") || !*c->cluster) {
		ig_err_add(err, "backends.%s.cluster: '%s' must be non-empty, without '/' or '='",
			   name, c->cluster);
		goto fail;
	}
	/* Source name. */
	if (*c->source) {
		s->source = strdup(c->source);
	} else {
		char h[256];
		if (gethostname(h, sizeof(h)))
			snprintf(h, sizeof(h), "aggregator");
		h[sizeof(h) - 1] = '\0';
		s->source = strdup(h);
	}
	if (!s->source)
		goto nomem;
	for (char *p = s->source; *p; p++)
		if (*p == '/')
			*p = '_';

	/* Endpoint and addressing. */
	const char *ep = c->endpoint;
	char *aws = NULL;
	if (!*ep) {
		if (asprintf(&aws, "https://s3.%s.amazonaws.com", c->region) < 0)
			goto nomem;
		ep = aws;
	}
	const char *sep = strstr(ep, "://");
	if (!sep || (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))) {
		ig_err_add(err,
			   "backends.%s.endpoint: '%s' is not an http:// or https:// URL (e.g. "
			   "http://minio:9000)",
			   name, ep);
		free(aws);
		goto fail;
	}
	const char *hp = sep + 3;
	size_t hl = strcspn(hp, "/");
	bool path_style = c->addressing == ADDR_PATH ||
			  (c->addressing == ADDR_AUTO && *c->endpoint) ||
			  strchr(c->bucket, '.'); /* dotted buckets break TLS wildcards */
	if (path_style) {
		s->host = strndup(hp, hl);
		if (asprintf(&s->base_path, "/%s", c->bucket) < 0)
			s->base_path = NULL;
		s->scheme_host = strndup(ep, (size_t)(hp - ep) + hl);
	} else {
		if (asprintf(&s->host, "%s.%.*s", c->bucket, (int)hl, hp) < 0)
			s->host = NULL;
		s->base_path = strdup("");
		if (asprintf(&s->scheme_host, "%.*s%s", (int)(hp - ep), ep,
			     s->host ? s->host : "") < 0)
			s->scheme_host = NULL;
	}
	free(aws);
	if (!s->host || !s->base_path || !s->scheme_host)
		goto nomem;
	if (*c->sts_endpoint)
		s->sts_url = strdup(c->sts_endpoint);
	else if (asprintf(&s->sts_url, "https://sts.%s.amazonaws.com", c->region) < 0)
		s->sts_url = NULL;
	if (!s->sts_url)
		goto nomem;
	if ((rc = creds_init(s, err)))
		goto fail;
	if (c->format == FMT_JSONL && c->index_tags.n &&
	    !(s->idx =
		      ig_aindex_builder_new((const char *const *)c->index_tags.v, c->index_tags.n)))
		goto nomem;

	struct ig_http_conf hc = { .connect_timeout_ns = c->connect_timeout_ns,
				   .timeout_ns = c->timeout_ns,
				   .ca_file = c->ca_file,
				   .insecure = !c->tls_verify,
				   .user_agent = "ingrain-s3" };
	if (!(s->http = ig_http_new(&hc)))
		goto nomem;

	/* Spool: "<name>" in the default path is this backend's name. */
	char *dir = NULL;
	const char *ph = strstr(c->spool_dir, "<name>");
	if (ph) {
		if (asprintf(&dir, "%.*s%s%s", (int)(ph - c->spool_dir), c->spool_dir, name,
			     ph + 6) < 0)
			goto nomem;
	}
	uint64_t max_bytes = c->spool_max_bytes;
	struct ig_spool_conf sc = { .name = name,
				    .dir = dir ? dir : c->spool_dir,
				    .max_bytes = max_bytes,
				    .backoff_min_ns = c->retry_min_ns,
				    .backoff_max_ns = c->retry_max_ns,
				    .fsync = c->spool_fsync,
				    .journal_to_batch = s3_journal_to_batch };
	ig_http_set_abort(s->http, s3_stopping, s);
	struct ig_spool *sp = NULL;
	rc = ig_spool_new(&sc, s3_deliver, s, &sp, err);
	__atomic_store_n(&s->spool, sp, __ATOMIC_RELEASE);
	free(dir);
	if (rc)
		goto fail;
	ig_info("s3 backend ready", "backend=%s bucket=%s endpoint=%s%s region=%s credentials=%s",
		name, c->bucket, s->scheme_host, s->base_path, c->region,
		s->cr.web_identity ? "web-identity" : "static");
	*state = s;
	return 0;
nomem:
	rc = -ENOMEM;
	ig_err_add(err, "backends.%s: out of memory", name);
fail:
	s3_free(s);
	return rc;
}

const struct ig_backend_ops ig_backend_s3 = {
	.type = "s3",
	.summary = "Archive to S3 (or compatible): batched, gzip JSON lines, SigV4, disk spool.",
	.opts = s3_opts,
	.conf_size = sizeof(struct s3_conf),
	.init = s3_init,
	.write = s3_write,
	.tick = s3_tick,
	.flush = s3_flush,
	.sync = s3_sync,
	.stats = s3_stats,
	.free = s3_free,
};

/* --- read access for ingrainctl archive (s3_reader.h) ------------------- */

struct ig_s3_reader *ig_s3_reader_new(const void *conf, const char *name, struct ig_err *err)
{
	struct s3_conf c = *(const struct s3_conf *)conf;
	void *state = NULL;

	c.spool_dir = (char *)""; /* nothing is written: no spool directory, no lock */
	if (s3_init(&state, &c, name, err))
		return NULL;
	struct s3 *s = state;
	ig_aindex_builder_free(s->idx);
	s->idx = NULL;
	return (struct ig_s3_reader *)s;
}

void ig_s3_reader_free(struct ig_s3_reader *r)
{
	s3_free(r);
}

int ig_s3_reader_sign_get(struct ig_s3_reader *r, const char *key, const char *query, char **url,
			  char ***headers, char *why, size_t whylen)
{
	struct s3 *s = (struct s3 *)r;
	struct hdrs h;
	char *path = NULL;
	int rc;

	*url = NULL;
	*headers = NULL;
	if ((rc = creds_valid(s, why, whylen)))
		return rc;
	if (key) {
		char *enc = ig_sigv4_uri_encode(key, strlen(key), true);
		if (!enc || asprintf(&path, "/%s", enc) < 0)
			path = NULL;
		free(enc);
	} else {
		path = strdup("/");
	}
	if (!path)
		return -ENOMEM;
	rc = s3_sign(s, "GET", path, query, NULL, 0, NULL, 0, &h, url);
	free(path);
	if (rc)
		return rc;
	char **lines = calloc(h.nl + 1, sizeof(*lines));
	if (!lines) {
		hdrs_free(&h);
		free(*url);
		*url = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < h.nl; i++)
		lines[i] = h.lines[i]; /* ownership moves to the caller */
	*headers = lines;
	return 0;
}

void ig_s3_reader_signed_free(char *url, char **headers)
{
	for (size_t i = 0; headers && headers[i]; i++)
		free(headers[i]);
	free(headers);
	free(url);
}

const char *ig_s3_reader_bucket(const struct ig_s3_reader *r)
{
	return ((const struct s3 *)r)->c.bucket;
}

const char *ig_s3_reader_prefix(const struct ig_s3_reader *r)
{
	return ((const struct s3 *)r)->c.prefix;
}

const char *ig_s3_reader_cluster(const struct ig_s3_reader *r)
{
	return ((const struct s3 *)r)->c.cluster;
}

const char *ig_s3_reader_endpoint(const struct ig_s3_reader *r)
{
	const struct s3 *s = (const struct s3 *)r;
	static __thread char buf[512];

	snprintf(buf, sizeof(buf), "%s%s", s->scheme_host, s->base_path);
	return buf;
}
