/* test_backend_s3: the S3 backend driven directly (init/write/tick/flush)
 * against an in-process S3 stand-in (http_stub.h) that keeps objects in
 * memory, implements multipart upload, checks each request's payload hash,
 * Content-MD5 and that the signature covers exactly what was sent, and can
 * be scripted to fail. The independent check of the signature itself
 * (botocore) and a real S3 server (s3rver) are in
 * tests/integration/test_s3_*.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <zlib.h>

#include "archive_index.h"
#include "http_stub.h"
#include "ig_backend.h"
#include "ig_config.h"
#include "ig_log.h"
#include "ig_time.h"
#include "ig_yaml.h"
#include "record_json.h"
#include "sigv4.h"

extern const struct ig_backend_ops ig_backend_s3;

#define AK "AKIDTEST"
#define SK "secret/test+key"
/* 2026-11-25T12:00:00Z */
#define T0 1795608000ULL

/* --- the S3 stand-in ---------------------------------------------------- */

struct object {
	char key[1024];
	unsigned char *data;
	size_t len;
	int puts;
};

struct s3sim {
	struct object obj[64];
	int nobj;
	unsigned char *parts[64];
	size_t part_len[64];
	int nparts_max;
	int script[64]; /* per request index: HTTP status to force (0 = none) */
	int cut[64]; /* per request index: cut the upload halfway */
	int bad; /* requests whose hash/MD5/signature did not check */
	char bad_why[256];
	int multipart_completed, aborted;
};

static struct object *find_obj(struct s3sim *m, const char *key)
{
	for (int i = 0; i < m->nobj; i++)
		if (!strcmp(m->obj[i].key, key))
			return &m->obj[i];
	return NULL;
}

static void store_obj(struct s3sim *m, const char *key, const void *d, size_t len)
{
	struct object *o = find_obj(m, key);

	if (!o) {
		o = &m->obj[m->nobj++];
		snprintf(o->key, sizeof(o->key), "%s", key);
	}
	free(o->data);
	o->data = malloc(len + 1);
	memcpy(o->data, d, len);
	o->len = len;
	o->puts++;
}

/* Recomputes the signature from what arrived (the headers it names). */
static bool check_request(const struct stub_req *r, char *why, size_t wl)
{
	char auth[1024], hash[65], want_hash[65], md5[64], want_md5[25], date[32];

	if (!stub_header(r, "authorization", auth, sizeof(auth)) ||
	    !stub_header(r, "x-amz-date", date, sizeof(date)) ||
	    !stub_header(r, "x-amz-content-sha256", hash, sizeof(hash))) {
		snprintf(why, wl, "missing auth headers");
		return false;
	}
	ig_sha256_hex(r->body, r->len, want_hash);
	if (strcmp(hash, want_hash)) {
		snprintf(why, wl, "payload hash mismatch");
		return false;
	}
	if (stub_header(r, "content-md5", md5, sizeof(md5))) {
		ig_md5_base64(r->body, r->len, want_md5);
		if (strcmp(md5, want_md5)) {
			snprintf(why, wl, "Content-MD5 mismatch");
			return false;
		}
	}
	const char *sh = strstr(auth, "SignedHeaders=");
	if (!sh) {
		snprintf(why, wl, "no SignedHeaders");
		return false;
	}
	char names[512];
	sscanf(sh + 14, "%511[^,]", names);
	struct ig_sigv4_header h[16];
	char vals[16][1024];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(names, ";", &save); t && n < 16;
	     t = strtok_r(NULL, ";", &save)) {
		if (!stub_header(r, t, vals[n], sizeof(vals[n]))) {
			snprintf(why, wl, "signed header %s not sent", t);
			return false;
		}
		h[n].name = t;
		h[n].value = vals[n];
		n++;
	}
	struct ig_sigv4_req req = { r->method, r->path, r->query, h, n, hash };
	struct ig_sigv4_cred cred = { AK, SK, NULL };
	char *want = NULL;
	ig_sigv4_sign(&req, &cred, "us-east-1", "s3", date, &want, NULL);
	bool ok = want && !strcmp(want, auth);
	if (!ok)
		snprintf(why, wl, "signature mismatch: got %s want %s", auth, want ? want : "");
	free(want);
	return ok;
}

static void s3_respond(struct stub *s, const struct stub_req *r, int idx, struct stub_answer *a)
{
	struct s3sim *m = s->ctx;

	if (idx < 64 && m->cut[idx]) {
		a->status = 0;
		return;
	}
	if (!r->complete)
		return;
	if (idx < 64 && m->script[idx]) {
		a->status = m->script[idx];
		if (a->status == 403)
			snprintf(a->body, sizeof(a->body),
				 "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
				 "<Message>The request signature we calculated does not match"
				 "</Message></Error>");
		else
			snprintf(a->body, sizeof(a->body),
				 "<Error><Code>InternalError</Code></Error>");
		return;
	}
	char why[256];
	if (!check_request(r, why, sizeof(why))) {
		m->bad++;
		snprintf(m->bad_why, sizeof(m->bad_why), "%s", why);
		a->status = 400;
		snprintf(a->body, sizeof(a->body), "<Error><Code>BadDigest</Code></Error>");
		return;
	}
	/* path: /bucket/<encoded key> -> decoded key */
	const char *p = r->path + strlen("/bkt/");
	char key[1024];
	size_t k = 0;
	for (; *p && k < sizeof(key) - 1; p++) {
		if (*p == '%' && p[1] && p[2]) {
			char hx[3] = { p[1], p[2], 0 };
			key[k++] = (char)strtol(hx, NULL, 16);
			p += 2;
		} else {
			key[k++] = *p;
		}
	}
	key[k] = '\0';
	if (!strcmp(r->method, "PUT") && !*r->query) {
		store_obj(m, key, r->body, r->len);
	} else if (!strcmp(r->method, "POST") && !strcmp(r->query, "uploads")) {
		snprintf(a->body, sizeof(a->body),
			 "<InitiateMultipartUploadResult><UploadId>up+1/x</UploadId>"
			 "</InitiateMultipartUploadResult>");
	} else if (!strcmp(r->method, "PUT") && strstr(r->query, "partNumber=")) {
		int pn = atoi(strstr(r->query, "partNumber=") + 11);
		assert_non_null(strstr(r->query, "uploadId=up%2B1%2Fx"));
		free(m->parts[pn]);
		m->parts[pn] = malloc(r->len);
		memcpy(m->parts[pn], r->body, r->len);
		m->part_len[pn] = r->len;
		if (pn > m->nparts_max)
			m->nparts_max = pn;
		snprintf(a->headers, sizeof(a->headers), "ETag: \"etag%d\"\r\n", pn);
	} else if (!strcmp(r->method, "POST") && strstr(r->query, "uploadId=")) {
		size_t total = 0;
		for (int i = 1; i <= m->nparts_max; i++) {
			char want[64];
			snprintf(want, sizeof(want), "<PartNumber>%d</PartNumber><ETag>\"etag%d\"",
				 i, i);
			assert_non_null(strstr((const char *)r->body, want));
			total += m->part_len[i];
		}
		unsigned char *all = malloc(total), *w = all;
		for (int i = 1; i <= m->nparts_max; i++) {
			memcpy(w, m->parts[i], m->part_len[i]);
			w += m->part_len[i];
		}
		store_obj(m, key, all, total);
		free(all);
		m->multipart_completed++;
		snprintf(a->body, sizeof(a->body), "<CompleteMultipartUploadResult/>");
	} else if (!strcmp(r->method, "DELETE")) {
		m->aborted++;
		a->status = 204;
	} else {
		a->status = 405;
	}
}

static void sim_free(struct s3sim *m)
{
	for (int i = 0; i < m->nobj; i++)
		free(m->obj[i].data);
	for (int i = 0; i < 64; i++)
		free(m->parts[i]);
}

/* --- driving the backend ------------------------------------------------ */

struct fixture {
	struct stub stub;
	struct s3sim sim;
	char dir[64];
	char *conf;
	struct ig_ydoc *doc;
	void *state;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ig-s3-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->stub.respond = s3_respond;
	f->stub.ctx = &f->sim;
	stub_start(&f->stub);
	ig_log_set_level(IG_LOG_ERROR);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	stub_stop(&f->stub);
	sim_free(&f->sim);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Applies "bucket: bkt, endpoint: stub, credentials, spool" + extra YAML. */
static int open_backend(struct fixture *f, const char *extra, void **st, struct ig_err *err)
{
	char yaml[4096];

	snprintf(yaml, sizeof(yaml),
		 "b:\n  bucket: bkt\n  endpoint: http://127.0.0.1:%d\n  access_key_id: %s\n"
		 "  secret_access_key: \"%s\"\n  cluster: c1\n  source: agg-1\n"
		 "  spool_dir: %s/spool\n  spool_fsync: false\n  retry_min: 10ms\n"
		 "  retry_max: 40ms\n%s%s",
		 f->stub.port, AK, SK, f->dir,
		 strstr(extra, "index_tags") ? "" : "  index_tags: []\n", extra);
	struct ig_ydoc *doc;
	assert_int_equal(ig_ydoc_load_string("t.yaml", yaml, strlen(yaml), &doc, err), 0);
	const struct ig_ynode *map = ig_ymap_get(doc->root, "b");
	void *conf = calloc(1, ig_backend_s3.conf_size);
	int rc = ig_cfg_apply(ig_backend_s3.opts, map, conf, "backends.b", NULL, err);
	if (!rc)
		rc = ig_backend_s3.init(st, conf, "b", err);
	/* The backend keeps pointers into conf: freed by close_backend. */
	f->conf = conf;
	f->doc = doc;
	if (rc) {
		ig_cfg_free(ig_backend_s3.opts, conf);
		free(conf);
		ig_ydoc_free(doc);
		f->conf = NULL;
	}
	return rc;
}

static void close_backend(struct fixture *f, void *st)
{
	ig_backend_s3.flush(st);
	ig_backend_s3.free(st);
	ig_cfg_free(ig_backend_s3.opts, f->conf);
	free(f->conf);
	ig_ydoc_free(f->doc);
	f->conf = NULL;
}

static struct ig_record rec = { .kind = "file.open", .probe = "files" };

static void metric(struct ig_metric *m, uint64_t ts_s, const char *pod, const char *pid,
		   const char *path)
{
	memset(m, 0, offsetof(struct ig_metric, arena));
	m->name = "file.open";
	m->kind = IG_M_COUNTER;
	m->value = 1;
	m->ts_ns = ts_s * IG_NSEC_PER_SEC + 123456789;
	m->rec = &rec;
	m->tags[m->ntags++] = (struct ig_tag){ "node", "node-1", IG_TAG_STR };
	m->tags[m->ntags++] = (struct ig_tag){ "namespace", "default", IG_TAG_STR };
	m->tags[m->ntags++] = (struct ig_tag){ "pod", pod, IG_TAG_STR };
	m->tags[m->ntags++] = (struct ig_tag){ "process", "cat", IG_TAG_STR };
	m->tags[m->ntags++] = (struct ig_tag){ "pid", pid, IG_TAG_NUM };
	m->tags[m->ntags++] = (struct ig_tag){ "path", path, IG_TAG_STR };
}

static char *gunzip(const unsigned char *d, size_t len, size_t *olen)
{
	size_t cap = len * 20 + 1024;
	char *out = malloc(cap);
	z_stream z = { 0 };

	inflateInit2(&z, 15 + 16);
	z.next_in = (Bytef *)d;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap - 1;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*olen = cap - 1 - z.avail_out;
	out[*olen] = '\0';
	inflateEnd(&z);
	return out;
}

static int count_spooled(struct fixture *f)
{
	char p[128];
	int n = 0;

	snprintf(p, sizeof(p), "%s/spool", f->dir);
	DIR *d = opendir(p);
	if (!d)
		return 0;
	for (struct dirent *de; (de = readdir(d));)
		n += strstr(de->d_name, ".batch") != NULL;
	closedir(d);
	return n;
}

/* --- tests ---------------------------------------------------------------- */

static void test_batch_lands_under_partitioned_key_as_gzip_json_lines(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "", &st, &err), 0);
	metric(&m, T0 + 60, "web-1", "4242", "/etc/passwd");
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	metric(&m, T0 + 61, "web-2", "4243", "/etc/shadow");
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	close_backend(f, st);

	assert_int_equal(f->sim.bad, 0);
	assert_int_equal(f->sim.nobj, 1);
	const char *key = f->sim.obj[0].key;
	const char *want = "ingrain/cluster=c1/date=2026-11-25/hour=12/agg-1-";
	if (strncmp(key, want, strlen(want)))
		fail_msg("key %s", key);
	assert_int_equal(strlen(key), strlen(want) + 26 + strlen(".jsonl.gz"));
	assert_string_equal(key + strlen(key) - 9, ".jsonl.gz");
	size_t len;
	char *text = gunzip(f->sim.obj[0].data, f->sim.obj[0].len, &len);
	assert_string_equal(
		text,
		"{\"ts\":\"2026-11-25T12:01:00.123456789Z\",\"name\":\"file.open\",\"kind\":\"counter\","
		"\"value\":1,\"probe\":\"files\",\"tags\":{\"node\":\"node-1\",\"namespace\":\"default\","
		"\"pod\":\"web-1\",\"process\":\"cat\",\"pid\":4242,\"path\":\"/etc/passwd\"}}\n"
		"{\"ts\":\"2026-11-25T12:01:01.123456789Z\",\"name\":\"file.open\",\"kind\":\"counter\","
		"\"value\":1,\"probe\":\"files\",\"tags\":{\"node\":\"node-1\",\"namespace\":\"default\","
		"\"pod\":\"web-2\",\"process\":\"cat\",\"pid\":4243,\"path\":\"/etc/shadow\"}}\n");
	free(text);
	assert_int_equal(count_spooled(f), 0);
}

static void test_a_later_hour_starts_the_next_partition(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	struct ig_backend_stats bs;

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  compression: none\n", &st, &err), 0);
	metric(&m, T0 + 3599, "a", "1", "/x");
	ig_backend_s3.write(st, &m);
	metric(&m, T0 + 3598, "late", "1", "/x"); /* late: stays in the open batch */
	ig_backend_s3.write(st, &m);
	metric(&m, T0 + 3600, "b", "1", "/x"); /* 13:00 */
	ig_backend_s3.write(st, &m);
	close_backend(f, st);
	(void)bs;
	assert_int_equal(f->sim.nobj, 2);
	int h12 = strstr(f->sim.obj[0].key, "hour=12/") ? 0 : 1;
	assert_non_null(strstr(f->sim.obj[h12].key, "date=2026-11-25/hour=12/"));
	assert_non_null(strstr(f->sim.obj[1 - h12].key, "date=2026-11-25/hour=13/"));
	assert_non_null(strstr(f->sim.obj[1 - h12].key, ".jsonl"));
	assert_null(strstr(f->sim.obj[1 - h12].key, ".gz"));
	assert_non_null(strstr((char *)f->sim.obj[h12].data, "\"pod\":\"late\""));
}

static void test_batch_closes_by_records_and_by_age(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;

	ig_err_init(&err);
	assert_int_equal(
		open_backend(f, "  batch_max_records: 2\n  batch_max_age: 50ms\n", &st, &err), 0);
	for (int i = 0; i < 5; i++) {
		metric(&m, T0 + (uint64_t)i, "p", "1", "/x");
		ig_backend_s3.write(st, &m);
	}
	/* Two full batches went at once; the fifth record waits for its age. */
	assert_true(stub_wait(&f->stub, 2, 3000));
	usleep(80000);
	ig_backend_s3.tick(st, ig_mono_ns());
	assert_true(stub_wait(&f->stub, 3, 3000));
	struct ig_backend_stats bs;
	for (int i = 0; i < 200; i++) {
		ig_backend_s3.stats(st, &bs);
		if (bs.sent == 5)
			break;
		usleep(10000);
	}
	assert_int_equal(bs.received, 5);
	assert_int_equal(bs.sent, 5);
	assert_int_equal(bs.queued, 0);
	close_backend(f, st);
	assert_int_equal(f->sim.nobj, 3);
}

static void test_server_errors_are_retried_and_the_object_written_once(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	struct ig_backend_stats bs;

	f->sim.cut[0] = 1; /* server "killed" mid-upload */
	f->sim.script[1] = 500;
	f->sim.script[2] = 503;
	ig_err_init(&err);
	assert_int_equal(open_backend(f, "", &st, &err), 0);
	metric(&m, T0, "p", "1", "/etc/passwd");
	ig_backend_s3.write(st, &m);
	ig_backend_s3.flush(st);
	ig_backend_s3.stats(st, &bs);
	assert_int_equal(bs.errors, 3);
	assert_int_equal(bs.sent, 1);
	assert_int_equal(bs.dropped, 0);
	close_backend(f, st);
	assert_int_equal(f->sim.nobj, 1);
	assert_int_equal(f->sim.obj[0].puts, 1);
	/* Every attempt targeted the same key. */
	assert_int_equal(stub_count(&f->stub), 4);
	for (int i = 0; i < 3; i++)
		assert_string_equal(f->stub.reqs[i].path, f->stub.reqs[3].path);
}

static void test_auth_error_halts_keeps_the_batch_and_a_restart_delivers_it(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	struct ig_backend_stats bs;

	f->sim.script[0] = 403;
	ig_err_init(&err);
	assert_int_equal(open_backend(f, "", &st, &err), 0);
	metric(&m, T0, "p", "1", "/etc/passwd");
	ig_backend_s3.write(st, &m);
	metric(&m, T0, "q", "2", "/etc/passwd");
	ig_backend_s3.write(st, &m);
	ig_backend_s3.flush(st);
	usleep(150000); /* retry_max is 40ms: a retry would have happened */
	assert_int_equal(stub_count(&f->stub), 1);
	ig_backend_s3.stats(st, &bs);
	assert_int_equal(bs.errors, 1);
	assert_int_equal(bs.sent, 0);
	assert_int_equal(bs.dropped, 0);
	assert_int_equal(bs.queued, 2);
	close_backend(f, st);
	assert_int_equal(count_spooled(f), 1);
	assert_int_equal(f->sim.nobj, 0);

	/* Restart (credentials fixed): the spooled batch goes out. */
	assert_int_equal(open_backend(f, "", &st, &err), 0);
	close_backend(f, st);
	assert_int_equal(f->sim.nobj, 1);
	assert_int_equal(count_spooled(f), 0);
	size_t len;
	char *text = gunzip(f->sim.obj[0].data, f->sim.obj[0].len, &len);
	assert_non_null(strstr(text, "\"pod\":\"p\""));
	assert_non_null(strstr(text, "\"pod\":\"q\""));
	free(text);
}

static void test_server_down_spools_and_delivers_when_it_returns(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	char extra[256];

	/* Nothing listens on the endpoint: point it at a closed port. */
	int port = f->stub.port;
	f->stub.port = 1;
	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  shutdown_timeout: 100ms\n", &st, &err), 0);
	for (int i = 0; i < 3; i++) {
		metric(&m, T0 + (uint64_t)i, "p", "1", "/x");
		ig_backend_s3.write(st, &m);
	}
	close_backend(f, st);
	assert_int_equal(count_spooled(f), 1);
	f->stub.port = port;
	snprintf(extra, sizeof(extra), "  batch_max_records: 1\n");
	assert_int_equal(open_backend(f, extra, &st, &err), 0);
	metric(&m, T0 + 10, "after", "1", "/x");
	ig_backend_s3.write(st, &m);
	close_backend(f, st);
	assert_int_equal(f->sim.nobj, 2);
	assert_int_equal(count_spooled(f), 0);
}

static void test_large_batches_use_multipart_upload(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	char path[300];

	ig_err_init(&err);
	assert_int_equal(open_backend(f,
				      "  compression: none\n  multipart_threshold: 5MiB\n"
				      "  part_size: 5MiB\n  batch_max_bytes: 64MiB\n",
				      &st, &err),
			 0);
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	int n = 0;
	for (; n < 26000; n++) { /* ~11 MiB: 3 parts */
		metric(&m, T0, "p", "1", path);
		ig_backend_s3.write(st, &m);
	}
	close_backend(f, st);
	assert_int_equal(f->sim.bad, 0);
	assert_int_equal(f->sim.multipart_completed, 1);
	assert_int_equal(f->sim.nparts_max, 3);
	assert_int_equal(f->sim.part_len[1], 5 * 1024 * 1024);
	assert_int_equal(f->sim.nobj, 1);
	int lines = 0;
	for (size_t i = 0; i < f->sim.obj[0].len; i++)
		lines += f->sim.obj[0].data[i] == '\n';
	assert_int_equal(lines, n);
}

static void test_msgpack_format_and_sha256_checksum(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	char sum[64];

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  format: msgpack\n  checksum: sha256\n", &st, &err), 0);
	metric(&m, T0, "p", "1", "/x");
	ig_backend_s3.write(st, &m);
	close_backend(f, st);
	assert_int_equal(f->sim.nobj, 1);
	assert_non_null(strstr(f->sim.obj[0].key, ".msgpack.gz"));
	assert_true(stub_header(&f->stub.reqs[0], "x-amz-checksum-sha256", sum, sizeof(sum)));
	assert_false(stub_header(&f->stub.reqs[0], "content-md5", sum, sizeof(sum)));
	size_t len;
	char *raw = gunzip(f->sim.obj[0].data, f->sim.obj[0].len, &len);
	assert_true((unsigned char)raw[0] >= 0x80 && (unsigned char)raw[0] <= 0x8f); /* fixmap */
	free(raw);
}

static void test_configuration_errors_say_what_to_do(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st = NULL;
	char yaml[512];
	struct ig_ydoc *doc;

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_ROLE_ARN");
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *cases[][2] = {
		{ "bucket: bkt\nspool_dir: \"\"\n", "no S3 credentials" },
		{ "bucket: Bad_Bucket\naccess_key_id: a\nsecret_access_key: b\n",
		  "not a valid bucket name" },
		{ "bucket: bkt\naccess_key_id: a\n", "only one of access_key_id" },
		{ "bucket: bkt\naccess_key_id: a\nsecret_access_key: b\nendpoint: ftp://x\n",
		  "not an http:// or https:// URL" },
		{ "bucket: bkt\naccess_key_id: a\nsecret_access_key: b\nprefix: /x\n",
		  "must not start or end with '/'" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(yaml, sizeof(yaml), "%s", cases[i][0]);
		ig_err_init(&err);
		assert_int_equal(ig_ydoc_load_string("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
		void *conf = calloc(1, ig_backend_s3.conf_size);
		assert_int_equal(
			ig_cfg_apply(ig_backend_s3.opts, doc->root, conf, "backends.b", NULL, &err),
			0);
		int rc = ig_backend_s3.init(&st, conf, "b", &err);
		if (rc != -EINVAL || !strstr(ig_err_str(&err), cases[i][1]))
			fail_msg("case %zu: rc %d, %s", i, rc, ig_err_str(&err));
		assert_null(st);
		ig_cfg_free(ig_backend_s3.opts, conf);
		free(conf);
		ig_ydoc_free(doc);
	}
	/* Credentials from the environment are enough. */
	setenv("AWS_ACCESS_KEY_ID", AK, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SK, 1);
	snprintf(yaml, sizeof(yaml),
		 "bucket: bkt\nendpoint: http://127.0.0.1:%d\nspool_dir: \"\"\nindex_tags: []\n",
		 f->stub.port);
	ig_err_init(&err);
	assert_int_equal(ig_ydoc_load_string("t.yaml", yaml, strlen(yaml), &doc, &err), 0);
	void *conf = calloc(1, ig_backend_s3.conf_size);
	assert_int_equal(ig_cfg_apply(ig_backend_s3.opts, doc->root, conf, "b", NULL, &err), 0);
	assert_int_equal(ig_backend_s3.init(&st, conf, "b", &err), 0);
	struct ig_metric m;
	metric(&m, T0, "env", "1", "/x");
	ig_backend_s3.write(st, &m);
	ig_backend_s3.flush(st);
	ig_backend_s3.free(st);
	ig_cfg_free(ig_backend_s3.opts, conf);
	free(conf);
	ig_ydoc_free(doc);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(f->sim.bad, 0);
	assert_int_equal(f->sim.nobj, 1);
	assert_non_null(strstr(f->sim.obj[0].key, "ingrain/cluster=default/"));
}

/* A record with full pod identity, as ig_metric_from_record makes it: the
 * stored line carries every identity member; after a whitelist and a rewrite
 * (what the seed example's Whitelist + Regex stages do) it carries exactly
 * the kept tags, with the rewritten value, and no identity. */
static void test_stored_line_has_identity_and_reflects_whitelist_and_rewrite(void **state)
{
	struct fixture *f = *state;
	static struct ig_record r;
	static struct ig_metric m;
	struct ig_err err;
	void *st;

	ig_record_reset(&r);
	r.kind = "tcp.connect";
	r.probe = "tls";
	r.node = "node-1";
	r.ts_ns = (T0 + 5) * IG_NSEC_PER_SEC;
	r.pid = 77;
	r.tid = 78;
	r.comm = "conn42";
	r.id.scope = "pod";
	r.id.namespace_ = "shop";
	r.id.pod_name = "web-7d9f";
	r.id.container_name = "app";
	r.id.owner_kind = "Deployment";
	r.id.owner_name = "web";
	ig_record_add_label(&r, "app", "web");
	ig_record_add_str(&r, "s_ip", "10.0.0.1", 8);
	ig_record_add_uint(&r, "d_port", 443);
	ig_record_add_str(&r, "path", "/etc/passwd", 11);

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  compression: none\n", &st, &err), 0);
	assert_int_equal(ig_metric_from_record(&m, &r), 0);
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	/* Whitelist allow = [process, s_ip, d_port, path]... */
	const char *allow[] = { "process", "s_ip", "d_port", "path" };
	for (uint32_t i = m.ntags; i-- > 0;) {
		bool keep = false;
		for (size_t a = 0; a < 4; a++)
			keep |= !strcmp(m.tags[i].key, allow[a]);
		if (!keep)
			ig_metric_del_tag(&m, i);
	}
	/* ...then Regex {key: process, regex: 'conn\d+', replace_with: docker_conn_proxy}. */
	for (uint32_t i = 0; i < m.ntags; i++)
		if (!strcmp(m.tags[i].key, "process"))
			m.tags[i].val = ig_metric_strdup(&m, "docker_conn_proxy");
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	close_backend(f, st);

	assert_int_equal(f->sim.nobj, 1);
	char *text = (char *)f->sim.obj[0].data;
	text[f->sim.obj[0].len] = '\0';
	char *second = strchr(text, '\n');
	assert_non_null(second);
	*second++ = '\0';
	json_object *full = json_tokener_parse(text), *cut = json_tokener_parse(second), *t, *v;
	assert_non_null(full);
	assert_non_null(cut);
	assert_true(json_object_object_get_ex(full, "tags", &t));
	const char *want[][2] = { { "node", "node-1" },	   { "scope", "pod" },
				  { "namespace", "shop" }, { "pod", "web-7d9f" },
				  { "container", "app" },  { "owner_kind", "Deployment" },
				  { "owner_name", "web" }, { "label_app", "web" },
				  { "process", "conn42" }, { "s_ip", "10.0.0.1" } };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!json_object_object_get_ex(t, want[i][0], &v) ||
		    strcmp(json_object_get_string(v), want[i][1]))
			fail_msg("full line: tag %s missing or wrong: %s", want[i][0], text);
	}
	assert_true(json_object_object_get_ex(t, "d_port", &v));
	assert_int_equal(json_object_get_type(v), json_type_int);
	assert_true(json_object_object_get_ex(full, "probe", &v));
	assert_string_equal(json_object_get_string(v), "tls");

	assert_true(json_object_object_get_ex(cut, "tags", &t));
	assert_int_equal(json_object_object_length(t), 4);
	assert_true(json_object_object_get_ex(t, "process", &v));
	assert_string_equal(json_object_get_string(v), "docker_conn_proxy");
	assert_false(json_object_object_get_ex(t, "pod", &v));
	assert_false(json_object_object_get_ex(t, "namespace", &v));
	assert_true(json_object_object_get_ex(t, "d_port", &v));
	assert_int_equal(json_object_get_int(v), 443);
	json_object_put(full);
	json_object_put(cut);
}

/* record_json on hostile strings: always one valid JSON object. */
static void test_json_lines_are_valid_for_any_bytes(void **state)
{
	(void)state;
	struct ig_metric m;
	char *line;
	size_t len;
	static const char *nasty[] = { "\xff\xfe",     "a\"b\\c\n\t\x01",     "\xc3\x28",
				       "\xed\xa0\x80", "\xf0\x9f\x98\x80 ok", "" };

	for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		metric(&m, T0, nasty[i], "notanumber", nasty[i]);
		m.tags[m.ntags++] = (struct ig_tag){ nasty[i], "x", IG_TAG_STR };
		assert_int_equal(ig_metric_to_json(&m, &line, &len), 0);
		json_tokener *tok = json_tokener_new();
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		json_object *o = json_tokener_parse_ex(tok, line, (int)len);
		if (!o)
			fail_msg("case %zu: not JSON: %s", i, line);
		json_object *tags, *pid;
		assert_true(json_object_object_get_ex(o, "tags", &tags));
		assert_true(json_object_object_get_ex(tags, "pid", &pid));
		/* A numeric tag a stage made non-numeric stays a string. */
		assert_string_equal(json_object_get_string(pid), "notanumber");
		assert_int_equal(json_object_get_type(pid), json_type_string);
		json_object_put(o);
		json_tokener_free(tok);
		free(line);
	}
	char *s = ig_utf8_sanitize("a\xff"
				   "b",
				   3);
	assert_string_equal(s, "a\xef\xbf\xbd"
			       "b");
	free(s);
}

/* With index_tags, each data object gets an index object beside it
 * (archive_index.h) that names it (key, size, the ETag S3 computes) and
 * covers the tags' values and the records' time range. */
static void test_index_object_is_written_beside_each_object(void **state)
{
	struct fixture *f = *state;
	struct ig_err err;
	void *st;
	struct ig_metric m;
	char why[256];

	ig_err_init(&err);
	assert_int_equal(open_backend(f, "  index_tags: [path, pod, process]\n", &st, &err), 0);
	metric(&m, T0 + 60, "web-1", "4242", "/etc/passwd");
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	metric(&m, T0 + 61, "web-2", "4243", "/etc/shadow");
	assert_int_equal(ig_backend_s3.write(st, &m), 0);
	close_backend(f, st);

	assert_int_equal(f->sim.bad, 0);
	assert_int_equal(f->sim.nobj, 2);
	struct object *data = &f->sim.obj[0], *idx = &f->sim.obj[1];
	char *ikey = ig_aindex_key(data->key);
	assert_string_equal(idx->key, ikey);
	assert_non_null(strstr(ikey, "/hour=12/_agg-1-"));
	free(ikey);
	struct ig_aindex *ix = ig_aindex_parse((const char *)idx->data, idx->len, why, sizeof(why));
	if (!ix)
		fail_msg("index does not parse: %s", why);
	char etag[48];
	ig_aindex_etag(data->data, data->len, UINT64_MAX, 0, etag);
	assert_null(ig_aindex_binding_mismatch(ix, data->key, data->len, etag));
	assert_non_null(ig_aindex_binding_mismatch(ix, data->key, data->len + 1, etag));
	assert_int_equal(ig_aindex_records(ix), 2);
	int64_t lo, hi;
	ig_aindex_range(ix, &lo, &hi);
	assert_true(lo == (int64_t)((T0 + 60) * IG_NSEC_PER_SEC + 123456789));
	assert_true(hi == (int64_t)((T0 + 61) * IG_NSEC_PER_SEC + 123456789));
	assert_true(ig_aindex_may_equal(ix, "path", "/etc/passwd", 11));
	assert_false(ig_aindex_may_equal(ix, "path", "/etc/hosts", 10));
	assert_false(ig_aindex_may_equal(ix, "pod", "web-3", 5));
	assert_true(ig_aindex_may_equal(ix, "pid", "1", 1)); /* not covered: may */
	ig_aindex_free(ix);
	/* A flipped byte is caught by the CRC. */
	idx->data[40] ^= 1;
	assert_null(ig_aindex_parse((const char *)idx->data, idx->len, why, sizeof(why)));
	assert_non_null(strstr(why, "crc32"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_batch_lands_under_partitioned_key_as_gzip_json_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_later_hour_starts_the_next_partition, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_closes_by_records_and_by_age, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_server_errors_are_retried_and_the_object_written_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_auth_error_halts_keeps_the_batch_and_a_restart_delivers_it, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_server_down_spools_and_delivers_when_it_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_object_is_written_beside_each_object,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_batches_use_multipart_upload, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msgpack_format_and_sha256_checksum, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_configuration_errors_say_what_to_do, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_stored_line_has_identity_and_reflects_whitelist_and_rewrite, setup,
			teardown),
		cmocka_unit_test(test_json_lines_are_valid_for_any_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
