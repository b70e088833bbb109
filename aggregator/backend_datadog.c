/* backend_datadog: the Datadog metrics HTTP API (v2 series submit), for
 * where DogStatsD (backend_statsd's dogstatsd flavor) has no agent to talk
 * to.
 *
 * Metrics are aggregated per (name, tags) over flush_interval in a bounded
 * table (max_series; when full the interval is flushed early, counted):
 * counters sum (type count), gauges keep the last value (type gauge),
 * histograms become <name>.count (count), <name>.avg and <name>.max
 * (gauges), sets become <name> (count of observations in the interval; not
 * distinct members). At the end of an interval every series is written as
 *
 *   {"series":[{"metric":"ingrain.file.open","type":1,"interval":10,
 *     "points":[{"timestamp":1764072000,"value":42}],
 *     "tags":["namespace:default","pod:web-1"],
 *     "resources":[{"name":"<host>","type":"host"}]}, ...]}
 *
 * gzip-compressed, into payloads of at most 3 MB uncompressed, and handed
 * to the same spool/retry engine as the S3 backend (spool.h): POST
 * <url>/api/v2/series with the DD-API-KEY header. 408/429/5xx and transport
 * errors are retried with backoff; 401/403 (bad API key) halt delivery with
 * a clear error, keeping the payloads spooled; other 4xx (a payload Datadog
 * cannot parse) drop that payload, counted. Delivery is at least once: a
 * payload whose acknowledgement was lost is sent again, which counts twice.
 *
 * Acked means durable: each metric folded into the open interval is also
 * appended, in sync() before the aggregator acks the envelope, to the
 * interval's journal in the spool directory (spool.h) as one line
 *   <kind> TAB <value> TAB <name> (US <tag>)* LF
 * After a crash the journal is aggregated again into the payload the interval
 * would have sent (timestamp: the interval's start, named in its key).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <zlib.h>

#include "http_client.h"
#include "ig_backend.h"
#include "ig_log.h"
#include "ig_time.h"
#include "record_json.h"
#include "spool.h"
#include "ig_hash.h"

#define DD_MAX_PAYLOAD (3 * 1024 * 1024)

struct dd_conf {
	char *api_key, *site, *url, *prefix, *host;
	struct ig_strlist tags;
	uint64_t flush_interval_ns, max_series;
	char *spool_dir;
	uint64_t spool_max_bytes;
	bool spool_fsync;
	uint64_t retry_min_ns, retry_max_ns;
	uint64_t connect_timeout_ns, timeout_ns, shutdown_timeout_ns;
	char *ca_file;
	bool tls_verify;
};

#define OPT(n, t, d, f, dsc, ...)                                                      \
	{                                                                              \
		.name = n, .type = t, .def = d, .offset = offsetof(struct dd_conf, f), \
		.desc = dsc, __VA_ARGS__                                               \
	}
static const struct ig_opt dd_opts[] = {
	OPT("api_key", IG_OPT_STR, "", api_key, "Datadog API key; empty = $DD_API_KEY."),
	OPT("site", IG_OPT_STR, "datadoghq.com", site,
	    "Datadog site (datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...)."),
	OPT("url", IG_OPT_STR, "", url, "API base URL; empty = https://api.<site>."),
	OPT("prefix", IG_OPT_STR, "ingrain.", prefix, "Prepended to every metric name."),
	OPT("host", IG_OPT_STR, "", host,
	    "Host resource attached to every series; empty = none (pods move between hosts: "
	    "use the node tag)."),
	OPT("tags", IG_OPT_STRLIST, "[]", tags, "Extra tags (\"env:prod\") on every series."),
	OPT("flush_interval", IG_OPT_DURATION, "10s", flush_interval_ns,
	    "Aggregation interval; one point per series per interval.", .min = 100000000,
	    .max = 3600LL * 1000000000),
	OPT("max_series", IG_OPT_UINT, "100000", max_series,
	    "Distinct series kept per interval; beyond it the interval is flushed early.", .min = 1,
	    .max = 10000000),
	OPT("spool_dir", IG_OPT_STR, "/var/lib/ingrain/spool/<name>", spool_dir,
	    "Directory of undelivered payloads; empty = memory only."),
	OPT("spool_max_bytes", IG_OPT_SIZE, "256MiB", spool_max_bytes,
	    "Bound of the spool; the oldest payloads are dropped (counted) beyond it.", .min = 1024,
	    .max = INT64_MAX),
	OPT("spool_fsync", IG_OPT_BOOL, "true", spool_fsync, "fsync each spooled payload."),
	OPT("retry_min", IG_OPT_DURATION, "1s", retry_min_ns, "First retry delay.", .min = 1000000,
	    .max = 3600LL * 1000000000),
	OPT("retry_max", IG_OPT_DURATION, "2m", retry_max_ns, "Longest retry delay.",
	    .min = 1000000, .max = 24LL * 3600 * 1000000000),
	OPT("connect_timeout", IG_OPT_DURATION, "5s", connect_timeout_ns, "Connect timeout.",
	    .min = 1000000, .max = 600LL * 1000000000),
	OPT("timeout", IG_OPT_DURATION, "30s", timeout_ns, "Whole-request timeout.", .min = 1000000,
	    .max = 3600LL * 1000000000),
	OPT("shutdown_timeout", IG_OPT_DURATION, "10s", shutdown_timeout_ns,
	    "On flush (SIGTERM, reload), how long to try delivering before leaving payloads in "
	    "the spool.",
	    .min = 0, .max = 3600LL * 1000000000),
	OPT("ca_file", IG_OPT_STR, "", ca_file, "PEM CA bundle to trust; empty = system store."),
	OPT("tls_verify", IG_OPT_BOOL, "true", tls_verify,
	    "Verify the server certificate (never turn off in production)."),
	{ 0 }
};

enum { DD_COUNT = 1, DD_GAUGE = 3 };

struct series {
	char *key; /* name "\x1f" tag "\x1f" tag...: identity of the series */
	char *name;
	char **tags;
	uint32_t ntags;
	enum ig_metric_kind kind;
	double sum, last, max;
	uint64_t count;
};

struct dd {
	struct dd_conf c;
	char *name, *api_key, *url;
	struct ig_http *http;
	struct ig_spool *spool;
	struct series *tab; /* open addressing */
	size_t cap, used;
	uint64_t interval_start_mono, interval_start_wall;
	uint64_t received, dropped_local, early_flushes;
	uint64_t pending_metrics; /* metrics folded into the open interval */
	char *ikey; /* "series-<interval start wall ns>-<rand>": payloads and journal */
	char *jbuf; /* journal lines since the last sync */
	size_t jlen, jcap;
	uint64_t jrecords;
};

static uint64_t fnv1a(const char *s)
{
	return ig_fnv64_str(IG_FNV64_INIT, s);
}

static void series_clear(struct series *e)
{
	free(e->key);
	free(e->name);
	for (uint32_t i = 0; i < e->ntags; i++)
		free(e->tags[i]);
	free(e->tags);
	memset(e, 0, sizeof(*e));
}

/* Datadog tags are "key:value"; a ',' would split them on some paths. */
static char *dd_tag(const char *k, const char *v)
{
	char *t;

	if (asprintf(&t, "%s:%s", k, v) < 0)
		return NULL;
	for (char *p = t; *p; p++)
		if (*p == ',' || *p == '\n' || *p == '|')
			*p = '_';
	return t;
}

static char *series_key(const struct ig_metric *m, const char *name)
{
	size_t len = strlen(name) + 1;
	char *k, *p;

	for (uint32_t i = 0; i < m->ntags; i++)
		len += strlen(m->tags[i].key) + strlen(m->tags[i].val) + 2;
	if (!(k = malloc(len + 1)))
		return NULL;
	p = stpcpy(k, name);
	for (uint32_t i = 0; i < m->ntags; i++) {
		*p++ = '\x1f';
		p = stpcpy(p, m->tags[i].key);
		*p++ = '=';
		p = stpcpy(p, m->tags[i].val);
	}
	*p = '\0';
	return k;
}

static void fold(struct series *e, const struct ig_metric *m)
{
	e->count++;
	e->last = m->value;
	e->sum += m->value;
	if (e->count == 1 || m->value > e->max)
		e->max = m->value;
}

/* --- payloads ---------------------------------------------------------- */

static json_object *series_json(struct dd *d, const char *metric, int type, double value,
				const struct series *e, uint64_t ts_s, uint64_t interval_s)
{
	json_object *o = json_object_new_object(), *pts = json_object_new_array();
	json_object *pt = json_object_new_object(), *tags = json_object_new_array();

	json_object_object_add(o, "metric", json_object_new_string(metric));
	json_object_object_add(o, "type", json_object_new_int(type));
	if (type == DD_COUNT)
		json_object_object_add(o, "interval", json_object_new_int64((int64_t)interval_s));
	json_object_object_add(pt, "timestamp", json_object_new_int64((int64_t)ts_s));
	if (value == (double)(int64_t)value)
		json_object_object_add(pt, "value", json_object_new_int64((int64_t)value));
	else
		json_object_object_add(pt, "value", json_object_new_double(value));
	json_object_array_add(pts, pt);
	json_object_object_add(o, "points", pts);
	for (uint32_t i = 0; i < e->ntags; i++)
		json_object_array_add(tags, json_object_new_string(e->tags[i]));
	for (size_t i = 0; i < d->c.tags.n; i++)
		json_object_array_add(tags, json_object_new_string(d->c.tags.v[i]));
	json_object_object_add(o, "tags", tags);
	if (*d->c.host) {
		json_object *res = json_object_new_array(), *r = json_object_new_object();
		json_object_object_add(r, "name", json_object_new_string(d->c.host));
		json_object_object_add(r, "type", json_object_new_string("host"));
		json_object_array_add(res, r);
		json_object_object_add(o, "resources", res);
	}
	return o;
}

static int gzip_buf(const char *in, size_t len, void **out, size_t *olen)
{
	z_stream z = { 0 };
	size_t cap;
	unsigned char *b;

	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, (uLong)len) + 64;
	if (!(b = malloc(cap))) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = b;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*olen = cap - z.avail_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(b);
		return -EIO;
	}
	*out = b;
	return 0;
}

/* Closes one payload: {"series":[...]} gzip'd, to the spool. */
static void push_payload(struct dd *d, json_object *arr, uint64_t metrics)
{
	json_object *root = json_object_new_object();
	struct ig_batch b = { 0 };
	size_t len;

	json_object_object_add(root, "series", arr);
	const char *s = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);
	if (!s || gzip_buf(s, len, &b.data, &b.len)) {
		d->dropped_local += metrics;
		json_object_put(root);
		return;
	}
	json_object_put(root);
	b.key = strdup(d->ikey ? d->ikey : "series");
	b.records = metrics;
	b.created_ns = ig_wall_ns();
	if (!b.key) {
		free(b.data);
		d->dropped_local += metrics;
		return;
	}
	ig_spool_push(d->spool, &b);
}

static size_t add_points(struct dd *d, json_object *arr, const struct series *e, uint64_t ts,
			 uint64_t iv);

static void new_interval_key(struct dd *d)
{
	free(d->ikey);
	if (asprintf(&d->ikey, "series-%020" PRIu64 "-%08x", d->interval_start_wall,
		     (unsigned)random()) < 0)
		d->ikey = NULL;
}

/* Ends the interval: every series becomes points in one or more payloads. */
static void close_interval(struct dd *d)
{
	uint64_t ts = d->interval_start_wall / IG_NSEC_PER_SEC;
	uint64_t iv = d->c.flush_interval_ns / IG_NSEC_PER_SEC;
	json_object *arr = NULL;
	size_t approx = 0;
	uint64_t metrics = 0;

	if (!iv)
		iv = 1;
	for (size_t i = 0; i < d->cap; i++) {
		struct series *e = &d->tab[i];
		if (!e->key)
			continue;
		if (!arr)
			arr = json_object_new_array();
		approx += add_points(d, arr, e, ts, iv);
		metrics += e->count;
		series_clear(e);
		if (approx >= DD_MAX_PAYLOAD) {
			push_payload(d, arr, metrics);
			arr = NULL;
			approx = 0;
			metrics = 0;
		}
	}
	if (arr)
		push_payload(d, arr, metrics);
	d->used = 0;
	d->pending_metrics = 0;
	d->jlen = 0;
	d->jrecords = 0;
	ig_spool_journal_end(d->spool);
	d->interval_start_mono = ig_mono_ns();
	d->interval_start_wall = ig_wall_ns();
	new_interval_key(d);
}

/* The series of one (name, tags) as points of the payload array; returns an
 * estimate of the bytes added. */
static size_t add_points(struct dd *d, json_object *arr, const struct series *e, uint64_t ts,
			 uint64_t iv)
{
	json_object *o[3];
	char name[512];
	size_t approx = 0;
	int n = 0;

	{
		switch (e->kind) {
		case IG_M_COUNTER:
			snprintf(name, sizeof(name), "%s%s", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_COUNT, e->sum, e, ts, iv);
			break;
		case IG_M_GAUGE:
			snprintf(name, sizeof(name), "%s%s", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_GAUGE, e->last, e, ts, iv);
			break;
		case IG_M_HISTOGRAM:
			snprintf(name, sizeof(name), "%s%s.count", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_COUNT, (double)e->count, e, ts, iv);
			snprintf(name, sizeof(name), "%s%s.avg", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_GAUGE, e->sum / (double)e->count, e, ts,
					     iv);
			snprintf(name, sizeof(name), "%s%s.max", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_GAUGE, e->max, e, ts, iv);
			break;
		case IG_M_SET:
			snprintf(name, sizeof(name), "%s%s", d->c.prefix, e->name);
			o[n++] = series_json(d, name, DD_COUNT, (double)e->count, e, ts, iv);
			break;
		}
		for (int k = 0; k < n; k++) {
			json_object_array_add(arr, o[k]);
			approx += 160 + strlen(e->name);
		}
	}
	return approx;
}

/* One journal line for a metric folded into series e. */
static void journal_add(struct dd *d, const struct series *e, double value)
{
	size_t need = strlen(e->name) + 40;

	for (uint32_t i = 0; i < e->ntags; i++)
		need += strlen(e->tags[i]) + 1;
	if (d->jlen + need > d->jcap) {
		size_t cap = d->jcap ? d->jcap : 16 * 1024;
		while (cap < d->jlen + need)
			cap *= 2;
		char *b = realloc(d->jbuf, cap);
		if (!b)
			return; /* not journaled: sync counts nothing for it */
		d->jbuf = b;
		d->jcap = cap;
	}
	char *p = d->jbuf + d->jlen;
	p += sprintf(p, "%d\t%.17g\t%s", (int)e->kind, value, e->name);
	for (uint32_t i = 0; i < e->ntags; i++) {
		*p++ = '\x1f';
		p = stpcpy(p, e->tags[i]);
	}
	*p++ = '\n';
	d->jlen = (size_t)(p - d->jbuf);
	d->jrecords++;
}

struct jline {
	const char *id; /* name US tags..., up to the LF */
	size_t idlen, order;
	int kind;
	double value;
};

static int jline_cmp(const void *a, const void *b)
{
	const struct jline *x = a, *y = b;
	size_t n = x->idlen < y->idlen ? x->idlen : y->idlen;
	int c = memcmp(x->id, y->id, n);

	if (c)
		return c;
	if (x->idlen != y->idlen)
		return x->idlen < y->idlen ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind - y->kind;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A recovered journal back to one payload: the lines are sorted by series
 * (stable: gauges keep their last value) and folded as dd_write would have.
 * Runs at init or on the spool's worker: reads only the configuration. */
static int dd_journal_to_batch(void *ctx, const char *key, const void *data, size_t len,
			       uint64_t records, struct ig_batch *out)
{
	struct dd *d = ctx;
	const char *p = data, *end = p + len;
	/* A line is at least "0\t0\t\n": the frames' counts cannot claim more. */
	if (records > len / 5 + 1)
		records = len / 5 + 1;
	struct jline *lines = calloc(records ? records : 1, sizeof(*lines));
	size_t n = 0;
	unsigned long long start_ns = 0;

	(void)records;
	memset(out, 0, sizeof(*out));
	if (!lines)
		return -ENOMEM;
	sscanf(key, "series-%llu-", &start_ns);
	while (p < end && n < records) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		char *t1, *t2;
		if (!lf)
			break;
		lines[n].kind = (int)strtol(p, &t1, 10);
		if (*t1 != '\t')
			break;
		lines[n].value = strtod(t1 + 1, &t2);
		if (*t2 != '\t')
			break;
		lines[n].id = t2 + 1;
		lines[n].idlen = (size_t)(lf - (t2 + 1));
		lines[n].order = n;
		n++;
		p = lf + 1;
	}
	qsort(lines, n, sizeof(*lines), jline_cmp);
	uint64_t iv = d->c.flush_interval_ns / IG_NSEC_PER_SEC;
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct series e = { .kind = (enum ig_metric_kind)lines[i].kind };
		while (j < n && !jline_cmp(&(struct jline){ lines[i].id, lines[i].idlen, 0,
							    lines[i].kind, 0 },
					   &(struct jline){ lines[j].id, lines[j].idlen, 0,
							    lines[j].kind, 0 })) {
			struct ig_metric m = { .value = lines[j].value };
			fold(&e, &m);
			j++;
		}
		/* name US tag US tag ... */
		char *id = strndup(lines[i].id, lines[i].idlen), *sv = NULL;
		char *tok = id ? strtok_r(id, "\x1f", &sv) : NULL;
		char *tags[128];
		e.name = tok ? tok : (char *)"";
		while (tok && (tok = strtok_r(NULL, "\x1f", &sv)) && e.ntags < 128)
			tags[e.ntags++] = tok;
		e.tags = tags;
		add_points(d, arr, &e, start_ns / IG_NSEC_PER_SEC, iv ? iv : 1);
		free(id);
		i = j;
	}
	free(lines);
	json_object *root = json_object_new_object();
	json_object_object_add(root, "series", arr);
	size_t jl;
	const char *js = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &jl);
	int rc = js ? gzip_buf(js, jl, &out->data, &out->len) : -ENOMEM;
	json_object_put(root);
	out->records = n;
	return rc;
}

/* Before the ack: the envelope's metrics become durable in the journal. */
static void dd_sync(void *state)
{
	struct dd *d = state;

	if (!d->jrecords || !d->ikey)
		return;
	ig_spool_journal_append(d->spool, d->ikey, d->jbuf, d->jlen, d->jrecords);
	d->jlen = 0;
	d->jrecords = 0;
}

static int dd_write(void *state, const struct ig_metric *m)
{
	struct dd *d = state;
	const char *name = m->name ? m->name : "";
	char *key;

	d->received++;
	if (!(key = series_key(m, name))) {
		d->dropped_local++;
		return -ENOMEM;
	}
	uint64_t h = fnv1a(key);
	for (int pass = 0; pass < 2; pass++) {
		size_t i = (size_t)(h % d->cap);
		while (d->tab[i].key && strcmp(d->tab[i].key, key))
			i = (i + 1) % d->cap;
		struct series *e = &d->tab[i];
		if (e->key && e->kind == m->kind) {
			fold(e, m);
			d->pending_metrics++;
			journal_add(d, e, m->value);
			free(key);
			return 0;
		}
		if (!e->key && d->used < d->c.max_series) {
			e->key = key;
			e->name = strdup(name);
			e->kind = m->kind;
			e->tags = calloc(m->ntags ? m->ntags : 1, sizeof(char *));
			if (!e->name || !e->tags) {
				series_clear(e);
				d->dropped_local++;
				return -ENOMEM;
			}
			for (uint32_t t = 0; t < m->ntags; t++) {
				char *san =
					ig_utf8_sanitize(m->tags[t].val, strlen(m->tags[t].val));
				e->tags[t] = san ? dd_tag(m->tags[t].key, san) : NULL;
				free(san);
				if (!e->tags[t]) {
					e->ntags = t;
					series_clear(e);
					d->dropped_local++;
					return -ENOMEM;
				}
				e->ntags = t + 1;
			}
			d->used++;
			fold(e, m);
			d->pending_metrics++;
			journal_add(d, e, m->value);
			return 0;
		}
		if (e->key) {
			/* Same series with another kind: a separate series would
			 * clash in Datadog; keep the first kind. */
			d->dropped_local++;
			free(key);
			return -EINVAL;
		}
		/* Table full: flush this interval early and retry once. */
		d->early_flushes++;
		close_interval(d);
	}
	free(key);
	d->dropped_local++;
	return -ENOSPC;
}

static void dd_tick(void *state, uint64_t now_ns)
{
	struct dd *d = state;

	(void)now_ns;
	if (ig_mono_ns() - d->interval_start_mono >= d->c.flush_interval_ns)
		close_interval(d);
}

static void dd_flush(void *state)
{
	struct dd *d = state;
	struct ig_spool_stats st;

	close_interval(d);
	ig_spool_stats(d->spool, &st);
	if (st.queued_batches && ig_spool_drain(d->spool, d->c.shutdown_timeout_ns)) {
		ig_spool_stats(d->spool, &st);
		ig_warn("datadog: payloads not yet delivered stay in the spool",
			"backend=%s payloads=%" PRIu64 " metrics=%" PRIu64, d->name,
			st.queued_batches, st.queued_records);
		ig_spool_stop(d->spool); /* flush precedes free: stop waiting */
	}
}

static void dd_stats(void *state, struct ig_backend_stats *out)
{
	struct dd *d = state;
	struct ig_spool_stats st;

	ig_spool_stats(d->spool, &st);
	out->received = d->received;
	out->sent = st.delivered_records;
	out->dropped = d->dropped_local + st.dropped_records;
	out->errors = st.failed_attempts;
	out->queued = d->pending_metrics + st.queued_records;
	out->memory_held = st.memory_records;
	out->unjournaled = st.journal_unsynced_records;
	out->crash_lost = st.crash_lost_records;
}

/* Worker thread. */
static enum ig_deliver dd_deliver(void *ctx, const struct ig_batch *b, char *why, size_t whylen)
{
	struct dd *d = ctx;
	struct ig_http_resp r;
	char *url, *keyh;
	enum ig_deliver v;

	if (asprintf(&url, "%s/api/v2/series", d->url) < 0)
		return IG_DELIVER_RETRY;
	if (asprintf(&keyh, "DD-API-KEY: %s", d->api_key) < 0) {
		free(url);
		return IG_DELIVER_RETRY;
	}
	const char *h[] = { keyh, "Content-Type: application/json", "Content-Encoding: gzip",
			    "Accept: application/json", NULL };
	int rc = ig_http_request(d->http, "POST", url, h, b->data, b->len, &r);
	free(url);
	free(keyh);
	if (rc) {
		snprintf(why, whylen, "series submit: %s", r.error);
		v = IG_DELIVER_RETRY;
	} else if (r.status >= 200 && r.status < 300) {
		v = IG_DELIVER_OK;
	} else if (ig_http_status_retryable(r.status)) {
		snprintf(why, whylen, "series submit: HTTP %ld", r.status);
		v = IG_DELIVER_RETRY;
	} else if (r.status == 401 || r.status == 403) {
		snprintf(why, whylen,
			 "series submit: HTTP %ld: the API key was refused (check api_key / "
			 "DD_API_KEY and site)",
			 r.status);
		v = IG_DELIVER_HALT;
	} else {
		snprintf(why, whylen, "series submit: HTTP %ld: %.160s", r.status,
			 r.body ? r.body : "");
		v = IG_DELIVER_DROP;
	}
	ig_http_resp_free(&r);
	return v;
}

static void dd_free(void *state)
{
	struct dd *d = state;

	if (!d)
		return;
	ig_spool_free(d->spool);
	for (size_t i = 0; d->tab && i < d->cap; i++)
		series_clear(&d->tab[i]);
	free(d->tab);
	free(d->ikey);
	free(d->jbuf);
	ig_http_free(d->http);
	free(d->name);
	free(d->api_key);
	free(d->url);
	free(d);
}

/* Worker thread: abandon a request in progress once the spool stops. */
static bool dd_stopping(void *ctx)
{
	struct dd *d = ctx;
	struct ig_spool *sp = __atomic_load_n(&d->spool, __ATOMIC_ACQUIRE);
	return sp && ig_spool_stopping(sp);
}

static int dd_init(void **state, const void *conf, const char *name, struct ig_err *err)
{
	const struct dd_conf *c = conf;
	struct dd *d = calloc(1, sizeof(*d));
	const char *key;
	int rc = -EINVAL;

	*state = NULL;
	if (!d)
		return -ENOMEM;
	d->c = *c;
	d->name = strdup(name);
	key = *c->api_key ? c->api_key : getenv("DD_API_KEY");
	if (!key || !*key) {
		ig_err_add(err, "backends.%s: no Datadog API key: set api_key or export DD_API_KEY",
			   name);
		goto fail;
	}
	d->api_key = strdup(key);
	if (*c->url) {
		if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8)) {
			ig_err_add(err, "backends.%s.url: '%s' is not an http(s):// URL", name,
				   c->url);
			goto fail;
		}
		d->url = strdup(c->url);
		size_t l = d->url ? strlen(d->url) : 0;
		while (l && d->url[l - 1] == '/')
			d->url[--l] = '\0';
	} else if (asprintf(&d->url, "https://api.%s", c->site) < 0) {
		d->url = NULL;
	}
	if (c->retry_max_ns < c->retry_min_ns) {
		ig_err_add(err, "backends.%s.retry_max: must not be less than retry_min", name);
		goto fail;
	}
	d->cap = 16;
	while (d->cap < c->max_series * 2)
		d->cap *= 2;
	d->tab = calloc(d->cap, sizeof(*d->tab));
	struct ig_http_conf hc = { .connect_timeout_ns = c->connect_timeout_ns,
				   .timeout_ns = c->timeout_ns,
				   .ca_file = c->ca_file,
				   .insecure = !c->tls_verify,
				   .user_agent = "ingrain-datadog" };
	d->http = ig_http_new(&hc);
	if (!d->name || !d->api_key || !d->url || !d->tab || !d->http) {
		rc = -ENOMEM;
		ig_err_add(err, "backends.%s: out of memory", name);
		goto fail;
	}
	char *dir = NULL;
	const char *ph = strstr(c->spool_dir, "<name>");
	if (ph &&
	    asprintf(&dir, "%.*s%s%s", (int)(ph - c->spool_dir), c->spool_dir, name, ph + 6) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	struct ig_spool_conf sc = { .name = name,
				    .dir = dir ? dir : c->spool_dir,
				    .max_bytes = c->spool_max_bytes,
				    .backoff_min_ns = c->retry_min_ns,
				    .backoff_max_ns = c->retry_max_ns,
				    .fsync = c->spool_fsync,
				    .journal_to_batch = dd_journal_to_batch };
	ig_http_set_abort(d->http, dd_stopping, d);
	struct ig_spool *sp = NULL;
	rc = ig_spool_new(&sc, dd_deliver, d, &sp, err);
	__atomic_store_n(&d->spool, sp, __ATOMIC_RELEASE);
	free(dir);
	if (rc)
		goto fail;
	d->interval_start_mono = ig_mono_ns();
	d->interval_start_wall = ig_wall_ns();
	new_interval_key(d);
	ig_info("datadog backend ready", "backend=%s url=%s interval_ms=%" PRIu64, name, d->url,
		(uint64_t)(c->flush_interval_ns / IG_NSEC_PER_MSEC));
	*state = d;
	return 0;
fail:
	dd_free(d);
	return rc;
}

const struct ig_backend_ops ig_backend_datadog = {
	.type = "datadog",
	.summary = "Datadog metrics HTTP API (v2 series): aggregated, gzip, retried, spooled.",
	.opts = dd_opts,
	.conf_size = sizeof(struct dd_conf),
	.init = dd_init,
	.write = dd_write,
	.tick = dd_tick,
	.flush = dd_flush,
	.sync = dd_sync,
	.stats = dd_stats,
	.free = dd_free,
};
