/* archive_query: see archive_query.h. One thread drives every transfer
 * through a curl multi handle; each transfer owns its buffers (a listing or
 * an index is collected whole, bounded; a data object is inflated and split
 * into lines as it arrives), so memory is bounded by parallel x (max_line +
 * one inflate chunk) plus the matches waiting for their turn to print. */
#include "archive_query.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

#include "archive_index.h"
#include "archive_line.h"
#include "re.h"
#include "sigv4.h"

#define LIST_MAX_BYTES (16u << 20)
#define INDEX_MAX_BYTES (4u << 20)
#define ERRBODY_MAX 4096
#define INFLATE_CHUNK (256 * 1024)
#define REPORTS_PER_OBJECT 5

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_free(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* --- objects ------------------------------------------------------------ */

struct obj {
	char *key;
	uint64_t size;
	char *etag;
	int index_at; /* position of its index in the listing, -1 none */
	struct ig_aindex *ix; /* a valid index that describes it */
	bool scan, done;
	struct sbuf out; /* its matches, printed in key order */
	/* table rows are collected instead */
};

struct listed {
	char *key, *etag;
	uint64_t size;
};

enum xkind { X_LIST, X_INDEX, X_DATA };

struct query;

struct xfer {
	struct query *q;
	struct xfer *prev, *next; /* the live transfers */
	enum xkind kind;
	CURL *e;
	struct curl_slist *hl;
	char *url;
	char errbuf[CURL_ERROR_SIZE];
	long status;
	struct sbuf body; /* LIST/INDEX, or an error body */
	size_t cap;
	/* LIST */
	char *prefix;
	/* INDEX/DATA */
	struct obj *o;
	/* DATA streaming */
	bool gz, zinit, zend, zerr;
	z_stream z;
	unsigned char *zout;
	struct sbuf line;
	bool skipping; /* inside a line longer than max_line */
	uint64_t lineno, nrec;
	unsigned reports;
	int64_t tmin, tmax;
};

struct row {
	char *cells[10];
};

struct query {
	struct ig_s3_reader *r;
	const struct ig_aq_opts *o;
	struct ig_aq_stats *st;
	struct ig_err *err;
	CURLM *m;
	int fatal;
	/* listing */
	struct listed *ls;
	size_t nls, capls;
	/* objects */
	struct obj *objs;
	size_t nobjs, next_emit;
	struct ig_aline al;
	/* table output */
	struct row *rows;
	size_t nrows, caprows;
	uint64_t last_progress_ns;
	uint64_t total_scan_bytes;
	unsigned inflight;
	struct xfer *live;
	int64_t hour_next, hour_last; /* partitions still to list */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void report(struct query *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct query *q, const char *fmt, ...)
{
	va_list ap;

	if (q->o->progress)
		fputs("\r\033[K", stderr);
	fputs("archive: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void progress(struct query *q, bool force)
{
	uint64_t t = now_ns();

	if (!q->o->progress || (!force && t - q->last_progress_ns < 200000000ULL))
		return;
	q->last_progress_ns = t;
	fprintf(stderr,
		"\r\033[Karchive: objects %" PRIu64 "/%zu read, %.1f of %.1f MiB, %" PRIu64
		" matches",
		q->st->scanned, q->nobjs, (double)q->st->bytes_read / 1048576.0,
		(double)q->total_scan_bytes / 1048576.0, q->st->matches);
}

/* --- filters ------------------------------------------------------------ */

int ig_aq_filter_parse(const char *arg, struct ig_aq_filter *f, char *msg, size_t msglen)
{
	size_t kl = strcspn(arg, "=~!");
	const char *op = arg + kl, *val;

	memset(f, 0, sizeof(*f));
	if (!kl || !*op) {
		snprintf(msg, msglen,
			 "filter '%s': expected KEY=VALUE, KEY!=VALUE, KEY~REGEX or KEY!~REGEX",
			 arg);
		return -EINVAL;
	}
	if (op[0] == '=') {
		f->op = IG_AQ_EQ;
		val = op + 1;
	} else if (op[0] == '~') {
		f->op = IG_AQ_RE;
		val = op + 1;
	} else if (op[0] == '!' && op[1] == '=') {
		f->op = IG_AQ_NE;
		val = op + 2;
	} else if (op[0] == '!' && op[1] == '~') {
		f->op = IG_AQ_NRE;
		val = op + 2;
	} else {
		snprintf(msg, msglen, "filter '%s': expected =, !=, ~ or !~ after the key", arg);
		return -EINVAL;
	}
	f->key = strndup(arg, kl);
	f->val = strdup(val);
	if (!f->key || !f->val) {
		ig_aq_filter_free(f);
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	f->vlen = strlen(f->val);
	if (!strncmp(f->key, "tags.", 5) && f->key[5]) {
		memmove(f->key, f->key + 5, strlen(f->key + 5) + 1);
	} else if (!strcmp(f->key, "name")) {
		f->field = IG_AQ_NAME;
	} else if (!strcmp(f->key, "kind")) {
		f->field = IG_AQ_KIND;
	} else if (!strcmp(f->key, "probe")) {
		f->field = IG_AQ_PROBE;
	}
	if (f->op == IG_AQ_RE || f->op == IG_AQ_NRE) {
		char why[300];
		if (!(f->re = ig_re_compile(f->val, why, sizeof(why)))) {
			snprintf(msg, msglen, "filter '%s': bad regex: %s", arg, why);
			ig_aq_filter_free(f);
			return -EINVAL;
		}
		if (!(f->md = pcre2_match_data_create_from_pattern(f->re, NULL))) {
			ig_aq_filter_free(f);
			snprintf(msg, msglen, "out of memory");
			return -ENOMEM;
		}
	}
	return 0;
}

void ig_aq_filter_free(struct ig_aq_filter *f)
{
	free(f->key);
	free(f->val);
	if (f->md)
		pcre2_match_data_free(f->md);
	if (f->re)
		pcre2_code_free(f->re);
	memset(f, 0, sizeof(*f));
}

static bool re_match(const struct ig_aq_filter *f, const char *s, size_t n)
{
	return pcre2_match(f->re, (PCRE2_SPTR)s, n, 0, 0, f->md, NULL) >= 0;
}

static const struct ig_aval *field_of(const struct ig_aline *l, const struct ig_aq_filter *f)
{
	const struct ig_aval *v;

	switch (f->field) {
	case IG_AQ_NAME:
		v = &l->name;
		break;
	case IG_AQ_KIND:
		v = &l->kind;
		break;
	case IG_AQ_PROBE:
		v = &l->probe;
		break;
	default:
		return ig_aline_tag(l, f->key, strlen(f->key));
	}
	return v->type == IG_AVAL_ABSENT ? NULL : v;
}

static bool filters_pass(struct query *q, const struct ig_aline *l)
{
	for (size_t i = 0; i < q->o->nfilters; i++) {
		const struct ig_aq_filter *f = &q->o->filters[i];
		const struct ig_aval *v = field_of(l, f);
		bool has = v && v->type != IG_AVAL_OTHER, hit;
		switch (f->op) {
		case IG_AQ_EQ:
		case IG_AQ_NE:
			hit = has && v->len == f->vlen && !memcmp(v->p, f->val, f->vlen);
			if (hit != (f->op == IG_AQ_EQ))
				return false;
			break;
		default:
			hit = has && re_match(f, v->p, v->len);
			if (hit != (f->op == IG_AQ_RE))
				return false;
		}
	}
	return true;
}

/* Can the object the index describes hold a match? */
static bool index_may_match(struct query *q, const struct ig_aindex *ix)
{
	int64_t lo, hi;

	ig_aindex_range(ix, &lo, &hi);
	if (hi < q->o->from_ns || lo >= q->o->to_ns)
		return false;
	for (size_t i = 0; i < q->o->nfilters; i++) {
		const struct ig_aq_filter *f = &q->o->filters[i];
		const char *const *vals;
		const size_t *lens;
		size_t n;
		if (f->field != IG_AQ_TAG)
			continue;
		if (f->op == IG_AQ_EQ && !ig_aindex_may_equal(ix, f->key, f->val, f->vlen))
			return false;
		if (f->op == IG_AQ_RE && ig_aindex_values(ix, f->key, &vals, &lens, &n)) {
			bool any = false;
			for (size_t j = 0; j < n && !any; j++)
				any = re_match(f, vals[j], lens[j]);
			if (!any)
				return false;
		}
	}
	return true;
}

/* --- output ------------------------------------------------------------- */

static const char *const columns[] = { "time",	  "node", "namespace", "pod",  "container",
				       "process", "pid",  "uid",       "path", "result" };
#define NCOLS 10

/* The columns' text for one record ("" when absent). */
static void cells_of(const struct ig_aline *l, const struct ig_aval *out[NCOLS], const char **fixed)
{
	static const struct ig_aval none = { "", 0, IG_AVAL_ABSENT };
	const struct ig_aval *err = ig_aline_tag(l, "error", 5);

	out[0] = l->ts.type == IG_AVAL_ABSENT ? &none : &l->ts;
	for (int i = 1; i < 9; i++) {
		const struct ig_aval *v = ig_aline_tag(l, columns[i], strlen(columns[i]));
		out[i] = v && v->type != IG_AVAL_OTHER ? v : &none;
	}
	*fixed = NULL;
	if (err && err->type != IG_AVAL_OTHER)
		out[9] = err;
	else {
		out[9] = &none;
		*fixed = "ok";
	}
}

static void csv_cell(struct sbuf *b, const char *p, size_t n)
{
	if (!memchr(p, ',', n) && !memchr(p, '"', n) && !memchr(p, '\n', n) &&
	    !memchr(p, '\r', n)) {
		sb_add(b, p, n);
		return;
	}
	sb_add(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			sb_add(b, "\"", 1);
		sb_add(b, p + i, 1);
	}
	sb_add(b, "\"", 1);
}

static char *dupn(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		/* Table cells stay on one line. */
		for (size_t i = 0; i < n; i++)
			s[i] = p[i] == '\n' || p[i] == '\r' || p[i] == '\t' ? ' ' : p[i];
		s[n] = '\0';
	}
	return s;
}

static void emit_match(struct query *q, struct obj *o, const struct ig_aline *l, const char *line,
		       size_t len)
{
	const struct ig_aval *c[NCOLS];
	const char *fixed;

	q->st->matches++;
	if (q->o->format == IG_AQ_JSONL) {
		sb_add(&o->out, line, len);
		sb_add(&o->out, "\n", 1);
		return;
	}
	cells_of(l, c, &fixed);
	if (q->o->format == IG_AQ_CSV) {
		for (int i = 0; i < NCOLS; i++) {
			if (i)
				sb_add(&o->out, ",", 1);
			if (i == 9 && fixed)
				sb_str(&o->out, fixed);
			else
				csv_cell(&o->out, c[i]->p, c[i]->len);
		}
		sb_add(&o->out, "\n", 1);
		return;
	}
	/* Table: rows are kept (in emission order) to size the columns. Each
	 * cell is stored in the object's buffer as NUL-separated text. */
	for (int i = 0; i < NCOLS; i++) {
		if (i == 9 && fixed) {
			sb_str(&o->out, fixed);
		} else if (i == 2) {
			/* namespace/pod */
			const struct ig_aval *ns = c[2], *pod = c[3];
			if (!ns->len && !pod->len) {
				sb_str(&o->out, "-");
			} else {
				sb_add(&o->out, ns->p, ns->len);
				sb_add(&o->out, "/", 1);
				sb_add(&o->out, pod->p, pod->len);
			}
		} else if (i == 3) {
			continue;
		} else {
			if (c[i]->len)
				sb_add(&o->out, c[i]->p, c[i]->len);
			else
				sb_str(&o->out, "-");
		}
		sb_add(&o->out, "", 1); /* NUL separator */
	}
}

static void table_take(struct query *q, struct obj *o)
{
	/* o->out holds 9 NUL-terminated cells per row. */
	size_t pos = 0;

	while (pos < o->out.len) {
		if (q->nrows == q->caprows) {
			size_t cap = q->caprows ? q->caprows * 2 : 64;
			struct row *r = realloc(q->rows, cap * sizeof(*r));
			if (!r)
				return;
			q->rows = r;
			q->caprows = cap;
		}
		struct row *r = &q->rows[q->nrows++];
		memset(r, 0, sizeof(*r));
		for (int i = 0; i < 9 && pos < o->out.len; i++) {
			size_t n = strlen(o->out.p + pos);
			r->cells[i] = dupn(o->out.p + pos, n);
			pos += n + 1;
		}
	}
}

static void emit_ready(struct query *q)
{
	while (q->next_emit < q->nobjs && q->objs[q->next_emit].done) {
		struct obj *o = &q->objs[q->next_emit++];
		if (o->out.oom)
			report(q, "%s: out of memory collecting its matches; some are missing",
			       o->key);
		if (q->o->format == IG_AQ_TABLE)
			table_take(q, o);
		else if (o->out.len)
			fwrite(o->out.p, 1, o->out.len, q->o->out);
		sb_free(&o->out);
	}
}

static void print_table(struct query *q)
{
	static const char *const head[9] = { "TIME",	  "NODE",    "NAMESPACE/POD",
					     "CONTAINER", "PROCESS", "PID",
					     "UID",	  "PATH",    "RESULT" };
	size_t w[9];

	for (int i = 0; i < 9; i++)
		w[i] = strlen(head[i]);
	for (size_t r = 0; r < q->nrows; r++)
		for (int i = 0; i < 9; i++)
			if (q->rows[r].cells[i] && strlen(q->rows[r].cells[i]) > w[i])
				w[i] = strlen(q->rows[r].cells[i]);
	for (int i = 0; i < 9; i++)
		fprintf(q->o->out, "%-*s%s", i < 8 ? (int)w[i] : 0, head[i], i < 8 ? "  " : "\n");
	for (size_t r = 0; r < q->nrows; r++) {
		for (int i = 0; i < 9; i++) {
			const char *c = q->rows[r].cells[i] ? q->rows[r].cells[i] : "";
			fprintf(q->o->out, "%-*s%s", i < 8 ? (int)w[i] : 0, c, i < 8 ? "  " : "\n");
			free(q->rows[r].cells[i]);
		}
	}
	free(q->rows);
	q->rows = NULL;
	q->nrows = q->caprows = 0;
}

/* --- data objects: lines -------------------------------------------------- */

static void line_report(struct xfer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_report(struct xfer *x, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	x->q->st->bad_lines++;
	if (x->reports++ >= REPORTS_PER_OBJECT)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(x->q, "%s line %" PRIu64 ": %s%s", x->o->key, x->lineno, msg,
	       x->reports == REPORTS_PER_OBJECT ? " (further problems in this object are only "
						  "counted)" :
						  "");
}

static void do_line(struct xfer *x, const char *s, size_t n)
{
	struct query *q = x->q;
	const char *why;
	size_t at;
	int64_t ts;

	x->lineno++;
	if (n && s[n - 1] == '\r')
		n--;
	if (!n)
		return;
	q->st->records++;
	q->st->record_bytes += n + 1;
	x->nrec++;
	int rc = ig_aline_parse(&q->al, s, n, &why, &at);
	if (rc) {
		if (rc == -ENOMEM)
			line_report(x, "out of memory");
		else
			line_report(x, "not a JSON record: %s at byte %zu", why, at);
		return;
	}
	if (q->al.ts.type != IG_AVAL_STR || ig_rfc3339_parse(q->al.ts.p, q->al.ts.len, &ts)) {
		line_report(x, "record without a valid \"ts\"");
		return;
	}
	if (ts < x->tmin)
		x->tmin = ts;
	if (ts > x->tmax)
		x->tmax = ts;
	if (ts < q->o->from_ns || ts >= q->o->to_ns || !filters_pass(q, &q->al))
		return;
	emit_match(q, x->o, &q->al, s, n);
}

static void feed(struct xfer *x, const char *p, size_t n)
{
	size_t max = x->q->o->max_line;

	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		if (x->skipping) {
			/* the rest of an over-long line */
		} else if (!x->line.len && nl && take <= max) {
			do_line(x, p, take); /* whole line in the chunk: no copy */
		} else if (x->line.len + take > max) {
			x->skipping = true;
			x->line.len = 0;
		} else {
			sb_add(&x->line, p, take);
			if (nl) {
				do_line(x, x->line.p, x->line.len);
				x->line.len = 0;
			}
		}
		if (nl && x->skipping) {
			x->lineno++;
			x->q->st->records++;
			x->nrec++;
			line_report(x, "longer than the %zu-byte line limit (--max-line): skipped",
				    max);
			x->skipping = false;
		}
		if (!nl)
			return;
		p = nl + 1;
		n -= take + 1;
	}
}

static void inflate_feed(struct xfer *x, const unsigned char *p, size_t n)
{
	x->z.next_in = (Bytef *)p;
	x->z.avail_in = (uInt)n;
	while (x->z.avail_in && !x->zerr) {
		if (x->zend) {
			/* Another gzip member follows (concatenated streams are one
			 * stream, as gunzip reads them). */
			inflateReset(&x->z);
			x->zend = false;
		}
		x->z.next_out = x->zout;
		x->z.avail_out = INFLATE_CHUNK;
		int rc = inflate(&x->z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
			x->zerr = true;
			report(x->q,
			       "%s: corrupt gzip data after %" PRIu64 " bytes (%s): rest skipped",
			       x->o->key, (uint64_t)x->z.total_in,
			       x->z.msg ? x->z.msg : "inflate failed");
			x->q->st->bad_objects++;
			return;
		}
		feed(x, (const char *)x->zout, INFLATE_CHUNK - x->z.avail_out);
		if (rc == Z_STREAM_END)
			x->zend = true;
		else if (rc == Z_BUF_ERROR)
			break;
	}
}

/* --- transfers ----------------------------------------------------------- */

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (!x->status)
		curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status != 200 || x->kind != X_DATA) {
		size_t cap = x->status != 200 ? ERRBODY_MAX : x->cap;
		if (x->body.len + n > cap)
			return x->status != 200 ? n : 0; /* too big: abort (reported) */
		sb_add(&x->body, p, n);
		return x->body.oom ? 0 : n;
	}
	x->q->st->bytes_read += n;
	if (x->gz)
		inflate_feed(x, (const unsigned char *)p, n);
	else
		feed(x, p, n);
	progress(x->q, false);
	return n;
}

static void xfer_free(struct xfer *x)
{
	if (!x)
		return;
	if (x->e) {
		curl_multi_remove_handle(x->q->m, x->e);
		curl_easy_cleanup(x->e);
	}
	if (x->prev || x->q->live == x) {
		if (x->prev)
			x->prev->next = x->next;
		else
			x->q->live = x->next;
		if (x->next)
			x->next->prev = x->prev;
		x->q->inflight--;
	}
	curl_slist_free_all(x->hl);
	free(x->url);
	free(x->prefix);
	sb_free(&x->body);
	sb_free(&x->line);
	if (x->zinit)
		inflateEnd(&x->z);
	free(x->zout);
	free(x);
}

static int xfer_start(struct query *q, enum xkind kind, const char *key, const char *query,
		      struct obj *o, const char *prefix)
{
	struct xfer *x = calloc(1, sizeof(*x));
	char **hdrs = NULL, *url = NULL, why[512] = "";
	int rc;

	if (!x)
		return -ENOMEM;
	x->q = q;
	x->kind = kind;
	x->o = o;
	x->cap = kind == X_LIST ? LIST_MAX_BYTES : INDEX_MAX_BYTES;
	x->tmin = INT64_MAX;
	x->tmax = INT64_MIN;
	if (prefix && !(x->prefix = strdup(prefix)))
		goto nomem;
	rc = ig_s3_reader_sign_get(q->r, key, query, &url, &hdrs, why, sizeof(why));
	if (rc) {
		ig_err_add(q->err, "cannot sign the request: %s", *why ? why : strerror(-rc));
		xfer_free(x);
		return rc;
	}
	x->url = url;
	for (size_t i = 0; hdrs[i]; i++) {
		struct curl_slist *t = curl_slist_append(x->hl, hdrs[i]);
		if (!t) {
			ig_s3_reader_signed_free(NULL, hdrs);
			goto nomem;
		}
		x->hl = t;
	}
	ig_s3_reader_signed_free(NULL, hdrs);
	if (kind == X_DATA) {
		size_t kl = strlen(key);
		x->gz = kl > 3 && !strcmp(key + kl - 3, ".gz");
		if (x->gz) {
			if (!(x->zout = malloc(INFLATE_CHUNK)) ||
			    inflateInit2(&x->z, 15 + 16) != Z_OK)
				goto nomem;
			x->zinit = true;
		}
	}
	if (!(x->e = curl_easy_init()))
		goto nomem;
	curl_easy_setopt(x->e, CURLOPT_URL, x->url);
	curl_easy_setopt(x->e, CURLOPT_HTTPHEADER, x->hl);
	curl_easy_setopt(x->e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(x->e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(x->e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->e, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(x->e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->e, CURLOPT_USERAGENT, "ingrainctl-archive");
	curl_easy_setopt(x->e, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (getenv("INGRAIN_ARCHIVE_INSECURE")) {
		curl_easy_setopt(x->e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(x->e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (curl_multi_add_handle(q->m, x->e) != CURLM_OK)
		goto nomem;
	x->next = q->live;
	if (q->live)
		q->live->prev = x;
	q->live = x;
	q->inflight++;
	return 0;
nomem:
	ig_err_add(q->err, "out of memory");
	xfer_free(x);
	return -ENOMEM;
}

static char *xml_text(const char *s, const char *e, const char *tag, const char **after)
{
	char open[64], close[64];
	const char *a, *b;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(s, (size_t)(e - s), open, strlen(open));
	if (!a)
		return NULL;
	a += strlen(open);
	b = memmem(a, (size_t)(e - a), close, strlen(close));
	if (!b)
		return NULL;
	if (after)
		*after = b + strlen(close);
	/* Entities: &amp; &lt; &gt; &quot; &apos; &#N; &#xN; */
	char *o = malloc((size_t)(b - a) + 1), *w = o;
	if (!o)
		return NULL;
	for (const char *p = a; p < b;) {
		if (*p != '&') {
			*w++ = *p++;
			continue;
		}
		static const struct {
			const char *n;
			char c;
		} ents[] = { { "&amp;", '&' },
			     { "&lt;", '<' },
			     { "&gt;", '>' },
			     { "&quot;", '"' },
			     { "&apos;", '\'' } };
		bool done = false;
		for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !done; i++) {
			size_t l = strlen(ents[i].n);
			if ((size_t)(b - p) >= l && !memcmp(p, ents[i].n, l)) {
				*w++ = ents[i].c;
				p += l;
				done = true;
			}
		}
		if (!done && b - p > 3 && p[1] == '#') {
			char *end;
			unsigned long cp =
				p[2] == 'x' ? strtoul(p + 3, &end, 16) : strtoul(p + 2, &end, 10);
			if (end < b && *end == ';' && cp && cp < 0x110000) {
				/* at most 4 UTF-8 bytes for >= 4 bytes of input */
				if (cp < 0x80) {
					*w++ = (char)cp;
				} else if (cp < 0x800) {
					*w++ = (char)(0xC0 | cp >> 6);
					*w++ = (char)(0x80 | (cp & 0x3F));
				} else if (cp < 0x10000) {
					*w++ = (char)(0xE0 | cp >> 12);
					*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
					*w++ = (char)(0x80 | (cp & 0x3F));
				} else {
					*w++ = (char)(0xF0 | cp >> 18);
					*w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
					*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
					*w++ = (char)(0x80 | (cp & 0x3F));
				}
				p = end + 1;
				done = true;
			}
		}
		if (!done)
			*w++ = *p++;
	}
	*w = '\0';
	return o;
}

static int list_start(struct query *q, const char *prefix, const char *token)
{
	char *ep = ig_sigv4_uri_encode(prefix, strlen(prefix), false), *et = NULL, *qs = NULL;
	int rc = -ENOMEM;

	if (token)
		et = ig_sigv4_uri_encode(token, strlen(token), false);
	if (ep && (!token || et) &&
	    asprintf(&qs, "list-type=2&prefix=%s%s%s", ep, token ? "&continuation-token=" : "",
		     token ? et : "") >= 0)
		rc = xfer_start(q, X_LIST, NULL, qs, NULL, prefix);
	else
		ig_err_add(q->err, "out of memory");
	if (!token)
		q->st->partitions++;
	free(ep);
	free(et);
	free(qs);
	return rc;
}

static const char *s3_hint(const char *code, long status)
{
	if (!strcmp(code, "NoSuchBucket"))
		return "the bucket does not exist: check `bucket` (and `endpoint`, `region`) in the "
		       "backend's configuration";
	if (status == 403 || !strcmp(code, "InvalidAccessKeyId") ||
	    !strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "AccessDenied"))
		return "check the credentials (access key, secret key, session token) and that "
		       "the policy allows s3:ListBucket and s3:GetObject";
	if (!strcmp(code, "AuthorizationHeaderMalformed") || !strcmp(code, "PermanentRedirect"))
		return "the bucket is in another region: fix `region`";
	return "";
}

static void list_done(struct query *q, struct xfer *x)
{
	const char *p = x->body.p ? x->body.p : "", *e = p + x->body.len;

	if (x->status != 200) {
		char *code = xml_text(p, e, "Code", NULL), *msg = xml_text(p, e, "Message", NULL);
		const char *hint = s3_hint(code ? code : "", x->status);
		/* The hint first: S3's message can be long (it may quote the
		 * canonical request). */
		ig_err_add(q->err, "listing s3://%s/%s at %s failed: HTTP %ld %s%s%s%s%s%.100s",
			   ig_s3_reader_bucket(q->r), x->prefix, ig_s3_reader_endpoint(q->r),
			   x->status, code ? code : "", *hint ? " (" : "", hint, *hint ? ")" : "",
			   msg ? " - " : "", msg ? msg : "");
		free(code);
		free(msg);
		q->fatal = -EIO;
		return;
	}
	/* <Contents><Key>..</Key>..<ETag>..</ETag><Size>..</Size>..</Contents> */
	for (;;) {
		const char *bs = memmem(p, (size_t)(e - p), "<Contents>", 10), *be;
		if (!bs || !(be = memmem(bs, (size_t)(e - bs), "</Contents>", 11)))
			break;
		char *key = xml_text(bs, be, "Key", NULL), *etag = xml_text(bs, be, "ETag", NULL);
		char *size = xml_text(bs, be, "Size", NULL);
		p = be + 11;
		if (!key) {
			free(etag);
			free(size);
			continue;
		}
		if (q->nls == q->capls) {
			size_t cap = q->capls ? q->capls * 2 : 256;
			struct listed *l = realloc(q->ls, cap * sizeof(*l));
			if (!l) {
				free(key);
				free(etag);
				free(size);
				q->fatal = -ENOMEM;
				ig_err_add(q->err, "out of memory");
				return;
			}
			q->ls = l;
			q->capls = cap;
		}
		q->ls[q->nls++] = (struct listed){ key, etag, size ? strtoull(size, NULL, 10) : 0 };
		free(size);
	}
	p = x->body.p ? x->body.p : "";
	char *trunc = xml_text(p, e, "IsTruncated", NULL);
	if (trunc && !strcmp(trunc, "true")) {
		char *tok = xml_text(p, e, "NextContinuationToken", NULL);
		if (tok && list_start(q, x->prefix, tok))
			q->fatal = -ENOMEM;
		free(tok);
	}
	free(trunc);
}

static void index_done(struct query *q, struct xfer *x)
{
	struct obj *o = x->o;
	const char *ikey = q->ls[o->index_at].key;
	char why[300];

	q->st->indexes++;
	q->st->index_bytes += x->body.len;
	if (x->status != 200) {
		report(q, "index %s: HTTP %ld: scanning %s", ikey, x->status, o->key);
		q->st->bad_indexes++;
		return;
	}
	struct ig_aindex *ix =
		ig_aindex_parse(x->body.p ? x->body.p : "", x->body.len, why, sizeof(why));
	if (!ix) {
		report(q, "index %s: %s: scanning %s", ikey, why, o->key);
		q->st->bad_indexes++;
		return;
	}
	const char *mis = ig_aindex_binding_mismatch(ix, o->key, o->size, o->etag);
	if (mis) {
		report(q, "index %s does not describe its object (%s): scanning %s", ikey, mis,
		       o->key);
		q->st->bad_indexes++;
		ig_aindex_free(ix);
		return;
	}
	o->ix = ix;
	if (!index_may_match(q, ix)) {
		o->scan = false;
		q->st->skipped++;
		q->st->skipped_bytes += o->size;
	}
}

static void data_done(struct query *q, struct xfer *x, CURLcode rc)
{
	struct obj *o = x->o;

	if (rc != CURLE_OK || x->status != 200) {
		char *code = x->body.p ?
				     xml_text(x->body.p, x->body.p + x->body.len, "Code", NULL) :
				     NULL;
		if (rc != CURLE_OK)
			report(q, "%s: fetch failed: %s: its records are missing from the answer",
			       o->key, *x->errbuf ? x->errbuf : curl_easy_strerror(rc));
		else
			report(q, "%s: HTTP %ld %s: its records are missing from the answer",
			       o->key, x->status, code ? code : "");
		free(code);
		q->st->bad_objects++;
		return;
	}
	if (x->gz && !x->zerr && !x->zend) {
		report(q,
		       "%s: truncated gzip stream (%" PRIu64 " bytes read): the records after "
		       "line %" PRIu64 " are missing",
		       o->key, (uint64_t)x->z.total_in, x->lineno);
		q->st->bad_objects++;
	} else if (!x->zerr && x->skipping) {
		x->lineno++;
		x->nrec++;
		q->st->records++;
		line_report(x, "longer than the %zu-byte line limit (--max-line): skipped",
			    q->o->max_line);
	} else if (!x->zerr && x->line.len) {
		do_line(x, x->line.p, x->line.len); /* last line without '\n' */
	}
	/* What the object holds must agree with its index. */
	if (o->ix && !x->zerr && (!x->gz || x->zend)) {
		int64_t lo, hi;
		ig_aindex_range(o->ix, &lo, &hi);
		const char *lie = NULL;
		if (x->nrec != ig_aindex_records(o->ix))
			lie = "its record count";
		else if (x->nrec && (x->tmin < lo || x->tmax > hi))
			lie = "its time range";
		if (lie) {
			report(q, "index of %s lies about %s (the object was scanned)", o->key,
			       lie);
			q->st->index_lies++;
		}
	}
}

/* Runs transfers until none is in flight and `next` adds no more: at most
 * `parallel` at once (a listing's next page is added by its completion). */
static int run(struct query *q, bool (*next)(struct query *, size_t *), size_t *cursor)
{
	unsigned limit = q->o->parallel ? q->o->parallel : 8;

	for (;;) {
		while (!q->fatal && q->inflight < limit && next(q, cursor))
			;
		if (q->fatal || !q->inflight)
			break;
		int still = 0, left;
		CURLMsg *msg;
		curl_multi_perform(q->m, &still);
		while ((msg = curl_multi_info_read(q->m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			struct xfer *x;
			CURLcode rc = msg->data.result;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &x->status);
			if (x->kind == X_LIST) {
				if (rc != CURLE_OK) {
					ig_err_add(q->err,
						   "cannot reach the S3 endpoint %s: %s (check "
						   "`endpoint`, `region` and the network)",
						   ig_s3_reader_endpoint(q->r),
						   *x->errbuf ? x->errbuf : curl_easy_strerror(rc));
					q->fatal = -EHOSTUNREACH;
				} else {
					list_done(q, x);
				}
			} else if (x->kind == X_INDEX) {
				if (rc != CURLE_OK) {
					report(q, "index of %s: fetch failed: %s: scanning it",
					       x->o->key,
					       *x->errbuf ? x->errbuf : curl_easy_strerror(rc));
					q->st->bad_indexes++;
				} else {
					index_done(q, x);
				}
			} else {
				data_done(q, x, rc);
				q->st->scanned++;
				x->o->done = true;
				emit_ready(q);
				progress(q, false);
			}
			xfer_free(x);
			if (q->fatal)
				return q->fatal;
		}
		if (q->inflight)
			curl_multi_poll(q->m, NULL, 0, 100, NULL);
	}
	return q->fatal;
}

/* --- phases -------------------------------------------------------------- */

static bool next_index(struct query *q, size_t *i)
{
	while (*i < q->nobjs) {
		struct obj *o = &q->objs[(*i)++];
		if (o->index_at < 0)
			continue;
		if (xfer_start(q, X_INDEX, q->ls[o->index_at].key, NULL, o, NULL)) {
			q->fatal = -ENOMEM;
			return false;
		}
		return true;
	}
	return false;
}

static bool next_data(struct query *q, size_t *i)
{
	while (*i < q->nobjs) {
		struct obj *o = &q->objs[(*i)++];
		if (!o->scan)
			continue;
		if (xfer_start(q, X_DATA, o->key, NULL, o, NULL)) {
			q->fatal = -ENOMEM;
			return false;
		}
		return true;
	}
	return false;
}

static int cmp_listed(const void *a, const void *b)
{
	return strcmp(((const struct listed *)a)->key, ((const struct listed *)b)->key);
}

static bool is_data_key(const char *k)
{
	const char *slash = strrchr(k, '/'), *base = slash ? slash + 1 : k;
	size_t l = strlen(base);

	if (base[0] == '_' || base[0] == '.')
		return false;
	return (l > 9 && !strcmp(base + l - 9, ".jsonl.gz")) ||
	       (l > 6 && !strcmp(base + l - 6, ".jsonl"));
}

static int build_objects(struct query *q)
{
	qsort(q->ls, q->nls, sizeof(*q->ls), cmp_listed);
	q->objs = calloc(q->nls ? q->nls : 1, sizeof(*q->objs));
	if (!q->objs)
		return -ENOMEM;
	for (size_t i = 0; i < q->nls; i++) {
		const struct listed *l = &q->ls[i];
		if (ig_aindex_is_index_key(l->key))
			continue;
		if (!is_data_key(l->key)) {
			const char *slash = strrchr(l->key, '/');
			if ((slash ? slash[1] : l->key[0]) != '_')
				q->st->other_objects++;
			continue;
		}
		struct obj *o = &q->objs[q->nobjs++];
		o->key = l->key;
		o->etag = l->etag;
		o->size = l->size;
		o->index_at = -1;
		o->scan = true;
		q->st->objects++;
		q->st->object_bytes += l->size;
		char *ik = ig_aindex_key(l->key);
		if (!ik)
			return -ENOMEM;
		struct listed probe = { ik, NULL, 0 };
		struct listed *hit = bsearch(&probe, q->ls, q->nls, sizeof(*q->ls), cmp_listed);
		free(ik);
		if (hit)
			o->index_at = (int)(hit - q->ls);
		else
			q->st->unindexed++;
	}
	return 0;
}

static char *partition_prefix(struct query *q, int64_t hour)
{
	time_t t = (time_t)(hour * 3600);
	struct tm tm;
	const char *prefix = ig_s3_reader_prefix(q->r);
	const char *cluster = q->o->cluster ? q->o->cluster : ig_s3_reader_cluster(q->r);
	char *s;

	gmtime_r(&t, &tm);
	if (asprintf(&s, "%s%scluster=%s/date=%04d-%02d-%02d/hour=%02d/", prefix,
		     *prefix ? "/" : "", cluster, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		     tm.tm_hour) < 0)
		return NULL;
	return s;
}

static bool next_list(struct query *q, size_t *unused)
{
	(void)unused;
	if (q->hour_next > q->hour_last)
		return false;
	char *p = partition_prefix(q, q->hour_next++);
	if (!p || list_start(q, p, NULL)) {
		free(p);
		q->fatal = -ENOMEM;
		return false;
	}
	free(p);
	return true;
}

int ig_archive_query(struct ig_s3_reader *r, const struct ig_aq_opts *o, struct ig_aq_stats *st,
		     struct ig_err *err)
{
	struct query q = { .r = r, .o = o, .st = st, .err = err };
	uint64_t t0 = now_ns();
	size_t cur = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	ig_aline_init(&q.al);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(q.m = curl_multi_init())) {
		ig_err_add(err, "out of memory");
		return -ENOMEM;
	}
	if (o->to_ns <= o->from_ns) {
		ig_err_add(err, "the time window is empty (--to must be after --from)");
		rc = -EINVAL;
		goto out;
	}
	/* Partitions: the window's hours, and one more for late records. */
	q.hour_next = o->from_ns / 3600000000000LL;
	q.hour_last = (o->to_ns - 1) / 3600000000000LL + 1;
	if (q.hour_last - q.hour_next > 24 * 366 * 5) {
		ig_err_add(err, "the time window spans more than five years; narrow it");
		rc = -EINVAL;
		goto out;
	}
	if ((rc = run(&q, next_list, &cur)))
		goto out;
	if ((rc = build_objects(&q))) {
		ig_err_add(err, "out of memory");
		goto out;
	}
	if (o->use_index) {
		cur = 0;
		if ((rc = run(&q, next_index, &cur)))
			goto out;
	} else {
		st->unindexed = st->objects;
	}
	for (size_t i = 0; i < q.nobjs; i++) {
		if (q.objs[i].scan)
			q.total_scan_bytes += q.objs[i].size;
		else
			q.objs[i].done = true;
	}
	emit_ready(&q);
	cur = 0;
	if ((rc = run(&q, next_data, &cur)))
		goto out;
	emit_ready(&q);
	if (o->format == IG_AQ_TABLE)
		print_table(&q);
	fflush(o->out);
	progress(&q, true);
	if (o->progress)
		fputs("\r\033[K", stderr);
out:
	st->seconds = (double)(now_ns() - t0) / 1e9;
	for (size_t i = 0; i < q.nobjs; i++) {
		ig_aindex_free(q.objs[i].ix);
		sb_free(&q.objs[i].out);
	}
	free(q.objs);
	for (size_t i = 0; i < q.nls; i++) {
		free(q.ls[i].key);
		free(q.ls[i].etag);
	}
	free(q.ls);
	for (size_t i = 0; i < q.nrows; i++)
		for (int j = 0; j < 9; j++)
			free(q.rows[i].cells[j]);
	free(q.rows);
	/* Transfers still attached after a fatal error. */
	while (q.live)
		xfer_free(q.live);
	curl_multi_cleanup(q.m);
	ig_aline_free(&q.al);
	return rc;
}

void ig_aq_stats_json(const struct ig_aq_stats *s, FILE *f)
{
	fprintf(f,
		"{\"partitions\":%" PRIu64 ",\"objects\":%" PRIu64 ",\"object_bytes\":%" PRIu64
		",\"other_objects\":%" PRIu64 ",\"indexes\":%" PRIu64 ",\"index_bytes\":%" PRIu64
		",\"skipped\":%" PRIu64 ",\"skipped_bytes\":%" PRIu64 ",\"unindexed\":%" PRIu64
		",\"scanned\":%" PRIu64 ",\"bytes_read\":%" PRIu64 ",\"records\":%" PRIu64
		",\"record_bytes\":%" PRIu64 ",\"matches\":%" PRIu64 ",\"bad_objects\":%" PRIu64
		",\"bad_lines\":%" PRIu64 ",\"bad_indexes\":%" PRIu64 ",\"index_lies\":%" PRIu64
		",\"seconds\":%.3f}",
		s->partitions, s->objects, s->object_bytes, s->other_objects, s->indexes,
		s->index_bytes, s->skipped, s->skipped_bytes, s->unindexed, s->scanned,
		s->bytes_read, s->records, s->record_bytes, s->matches, s->bad_objects,
		s->bad_lines, s->bad_indexes, s->index_lies, s->seconds);
}
