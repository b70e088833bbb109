/* probe_tls: TLS handshakes on any port, user side (kernel side: the TLS
 * classifier bpf/tls.bpf.h in the shared capture object bpf/capture.bpf.c;
 * the capture layer: node-agent/capture.c, docs/capture.md; the parser and
 * fingerprints: tls_parse.c; reference: docs/probes.md, "tls").
 *
 * The kernel sends the first capture_bytes of every TCP flow direction that
 * starts with a TLS handshake record holding a ClientHello or ServerHello;
 * the capture layer hands over the reassembled bytes. Per connection (socket
 * cookie) this probe keeps one ig_tls_stream per direction, which undoes the
 * record layer. The direction whose stream yields a ClientHello is the
 * client's; a copy of the hello is kept until the other direction's
 * ServerHello completes the connection: one "tls.handshake" record with both
 * (after a HelloRetryRequest, the second ClientHello and the real
 * ServerHello, hrr: 1). A ClientHello with no ServerHello within
 * probes.tls.timeout, or whose connection closes or is evicted first, is
 * reported alone (answered: 0). After the ServerHello the connection is done:
 * its state is kept only to ignore the rest of its capture budget, which the
 * kernel stops sending after capture_bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "tls_parse.h"

#define MALFORMED_PER_SEC 100

struct conn {
	struct conn *hnext; /* bucket chain */
	struct conn *prev, *next; /* age order, oldest first */
	uint64_t cookie;
	uint64_t first_ns; /* agent clock when first seen */
	struct ig_tls_stream *s[2]; /* by enum ig_cap_dir; NULL until data, freed when done */
	bool dead[2]; /* that direction failed to parse: ignored */
	bool done; /* reported (or given up): ignore the rest */
	bool hrr;
	int client_dir; /* -1 until a ClientHello */
	uint8_t *ch, *sh; /* copies of the ClientHello / ServerHello messages */
	size_t ch_len, sh_len;
	uint16_t ch_rver, sh_rver;
	struct ig_cap_flow fc, fs; /* the flows that carried them */
};

struct tls_state {
	struct ig_capture *cap;
	struct ig_sink sink;
	struct ig_record *rec;
	struct ig_tls_conf conf;
	int epfd;
	struct conn **buckets;
	size_t nbuckets;
	struct conn *oldest, *newest;
	uint64_t nconns;
	/* counters */
	uint64_t records, answered, alone, hrrs, not_tls, malformed, too_big, evicted, gaps;
	uint64_t alloc_failed, truncated, malformed_reported;
	uint64_t mal_window_start, mal_window_n;
	struct ig_ratelimit mal_rl;
};

/* --- connections ---------------------------------------------------------- */

static size_t bucket(const struct tls_state *st, uint64_t cookie)
{
	return (size_t)((cookie * 0x9E3779B97F4A7C15ULL) >> 32) & (st->nbuckets - 1);
}

static struct conn *conn_find(struct tls_state *st, uint64_t cookie)
{
	for (struct conn *c = st->buckets[bucket(st, cookie)]; c; c = c->hnext)
		if (c->cookie == cookie)
			return c;
	return NULL;
}

static void conn_unlink(struct tls_state *st, struct conn *c)
{
	struct conn **pp = &st->buckets[bucket(st, c->cookie)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	if (c->prev)
		c->prev->next = c->next;
	else
		st->oldest = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		st->newest = c->prev;
	st->nconns--;
}

static void conn_release(struct conn *c)
{
	for (int d = 0; d < 2; d++) {
		ig_tls_stream_free(c->s[d]);
		c->s[d] = NULL;
	}
	free(c->ch);
	free(c->sh);
	c->ch = c->sh = NULL;
}

static void conn_free(struct conn *c)
{
	if (c) {
		conn_release(c);
		free(c);
	}
}

/* --- records -------------------------------------------------------------- */

static void add_str(struct ig_record *r, const char *key, const char *v)
{
	ig_record_add_str(r, key, v, strlen(v));
}

static void add_addr(struct ig_record *r, const char *key, int family, const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	ig_cap_addr_str(family, a, buf, sizeof(buf));
	add_str(r, key, buf);
}

/* A list as text: hex ("0x1301,0x1302") or decimal, GREASE kept (as on the
 * wire; the fingerprints leave it out). */
static void add_list(struct ig_record *r, const char *key, const struct ig_tls_list *l, bool hex)
{
	char buf[4096];
	size_t o = 0;

	buf[0] = 0;
	for (uint32_t i = 0; i < l->n && o + 8 < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, hex ? "%s0x%04x" : "%s%u",
				      i ? "," : "", ig_tls_list_at(l, i));
	ig_record_add_str(r, key, buf, o);
}

static void add_ext_types(struct ig_record *r, const char *key, const struct ig_tls_hello *h)
{
	char buf[4096];
	size_t o = 0;
	struct ig_tls_ext_iter it;
	uint16_t type, len;
	const uint8_t *data;

	buf[0] = 0;
	ig_tls_ext_begin(h, &it);
	while (ig_tls_ext_next(&it, &type, &data, &len) && o + 8 < sizeof(buf))
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%u", o ? "," : "", type);
	ig_record_add_str(r, key, buf, o);
}

/* ALPN names joined by ","; bytes outside printable ASCII as \xNN. */
static void add_alpn(struct ig_record *r, const char *key, const struct ig_tls_hello *h,
		     bool first_only)
{
	char buf[1024];
	size_t o = 0;
	uint16_t pos = 0;
	const uint8_t *name;
	uint8_t len;

	buf[0] = 0;
	while (ig_tls_alpn_next(h, &pos, &name, &len) && o + 8 < sizeof(buf)) {
		if (o)
			buf[o++] = ',';
		for (uint8_t i = 0; i < len && o + 5 < sizeof(buf); i++) {
			if (name[i] >= 0x21 && name[i] < 0x7f && name[i] != ',' && name[i] != '\\')
				buf[o++] = (char)name[i];
			else
				o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", name[i]);
		}
		if (first_only)
			break;
	}
	ig_record_add_str(r, key, buf, o);
}

static void add_sni(struct ig_record *r, const struct ig_tls_hello *h)
{
	char buf[1024];
	size_t o = 0;

	for (uint16_t i = 0; h->sni && i < h->sni_len && o + 5 < sizeof(buf); i++) {
		uint8_t c = h->sni[i];
		if (c >= 0x21 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\\x%02x", c);
	}
	ig_record_add_str(r, "sni", buf, o);
}

static void add_version(struct ig_record *r, const char *key, uint16_t v)
{
	const char *n = ig_tls_version_name(v);
	char buf[16];

	if (!n) {
		snprintf(buf, sizeof(buf), "0x%04x", v);
		n = buf;
	}
	add_str(r, key, n);
}

static void header_from(struct ig_record *r, const struct ig_cap_flow *a,
			const struct ig_cap_flow *b)
{
	/* The process: the first flow that knows it (a server's accepted
	 * socket learns it on its first recv/send). */
	const struct ig_cap_flow *f = (a && a->pid) ? a : (b && b->pid) ? b : a ? a : b;

	r->pid = f->pid;
	r->tid = f->tid;
	r->uid = f->uid;
	r->gid = f->gid;
	r->ppid = f->ppid;
	r->cgroup_id = f->cgroup_id;
	r->comm = ig_record_strndup(r, f->comm, strnlen(f->comm, sizeof(f->comm)));
}

/* Addresses, from the flow that carried the ClientHello. */
static void add_endpoints(struct ig_record *r, const struct ig_cap_flow *f)
{
	bool client = f->dir == IG_CAP_EGRESS;
	char hp[80], a[INET6_ADDRSTRLEN];

	add_str(r, "role", client ? "client" : "server");
	if (client && f->has_orig) {
		ig_cap_addr_str(f->orig_family, f->orig_daddr, a, sizeof(a));
		snprintf(hp, sizeof(hp), f->orig_family == 6 ? "[%s]:%u" : "%s:%u", a,
			 f->orig_dport);
	} else {
		ig_cap_addr_str(f->family, f->daddr, a, sizeof(a));
		snprintf(hp, sizeof(hp), f->family == 6 ? "[%s]:%u" : "%s:%u", a, f->dport);
	}
	add_str(r, "server", hp);
	add_addr(r, "server_addr", f->family, f->daddr);
	ig_record_add_uint(r, "server_port", f->dport);
	add_addr(r, "client_addr", f->family, f->saddr);
	ig_record_add_uint(r, "client_port", f->sport);
	/* The destination before NAT, when it differs from the wire's. */
	if (client && f->has_orig &&
	    (f->orig_family != f->family || f->orig_dport != f->dport ||
	     memcmp(f->orig_daddr, f->daddr, f->family == 6 ? 16 : 4))) {
		add_addr(r, "server_orig_addr", f->orig_family, f->orig_daddr);
		ig_record_add_uint(r, "server_orig_port", f->orig_dport);
	}
}

static void emit(struct tls_state *st, struct conn *c)
{
	struct ig_tls_hello ch, sh;
	struct ig_record *r = st->rec;
	char md5[33], ja4[IG_TLS_JA4_LEN];
	static char text[8192];
	bool answered = c->sh != NULL;

	c->done = true;
	if (!c->ch || ig_tls_parse_hello(c->ch, c->ch_len, &ch) < 0)
		return;
	if (answered && ig_tls_parse_hello(c->sh, c->sh_len, &sh) < 0)
		answered = false;
	ig_record_reset(r);
	r->kind = "tls.handshake";
	r->probe = "tls";
	r->ts_ns = ig_mono_to_wall(c->fc.ts_ns);
	header_from(r, &c->fc, answered ? &c->fs : NULL);
	add_endpoints(r, &c->fc);
	ig_record_add_uint(r, "answered", answered);
	ig_record_add_uint(r, "hrr", c->hrr);
	add_sni(r, &ch);
	/* version: negotiated (ServerHello) or, alone, the highest offered */
	add_version(r, "version", answered ? sh.version : ch.version);
	if (answered)
		add_alpn(r, "alpn", &sh, true);
	else
		ig_record_add_str(r, "alpn", "", 0);
	add_alpn(r, "tls.handshake.extensions_alpn_str", &ch, false);
	ig_tls_ja4(&ch, ja4);
	add_str(r, "ja4", ja4);
	ig_tls_ja4_r(&ch, text, sizeof(text));
	add_str(r, "ja4_r", text);
	ig_tls_ja3(&ch, text, sizeof(text), md5);
	add_str(r, "tls.handshake.ja3", md5);
	add_str(r, "tls.handshake.ja3_full", text);
	ig_record_add_uint(r, "tls.record.version", c->ch_rver);
	ig_record_add_uint(r, "tls.handshake.version", ch.legacy_version);
	add_list(r, "tls.handshake.extensions.supported_version", &ch.versions, true);
	add_list(r, "tls.handshake.ciphersuite", &ch.ciphers, true);
	add_list(r, "tls.handshake.extensions_supported_group", &ch.groups, true);
	char ksbuf[256];
	size_t o = 0;
	ksbuf[0] = 0;
	for (uint32_t i = 0; i < ch.n_key_share && i < IG_TLS_KEY_SHARES_MAX; i++)
		o += (size_t)snprintf(ksbuf + o, sizeof(ksbuf) - o, "%s0x%04x", i ? "," : "",
				      ch.key_share[i]);
	ig_record_add_str(r, "tls.handshake.extensions_key_share_group", ksbuf, o);
	add_list(r, "tls.handshake.sig_hash_alg", &ch.sigalgs, true);
	add_ext_types(r, "tls.handshake.extension.type", &ch);
	/* Resumption offered: "psk", "ticket", both or "". */
	const char *res = ch.psk && ch.ticket ? "psk,ticket" :
			  ch.psk	      ? "psk" :
			  ch.ticket	      ? "ticket" :
						"";
	add_str(r, "resumption", res);
	if (answered) {
		char cs[8];
		snprintf(cs, sizeof(cs), "0x%04x", ig_tls_list_at(&sh.ciphers, 0));
		add_str(r, "cipher", cs);
		if (sh.n_key_share) {
			snprintf(cs, sizeof(cs), "0x%04x", sh.key_share[0]);
			add_str(r, "key_share_group", cs);
		}
		ig_record_add_uint(r, "resumed", sh.psk);
		ig_tls_ja3s(&sh, text, sizeof(text), md5);
		add_str(r, "tls.handshake.ja3s", md5);
		add_str(r, "tls.handshake.ja3s_full", text);
		st->answered++;
	} else {
		st->alone++;
	}
	st->records++;
	st->sink.emit(st->sink.ctx, r);
}

/* A flow direction that started like a TLS hello but is not one: counted,
 * and reported as tls.malformed (at most MALFORMED_PER_SEC a second). */
static void malformed(struct tls_state *st, const struct ig_cap_flow *f, const char *why)
{
	uint64_t now = ig_mono_ns(), sup = 0;

	if (ig_ratelimit_ok(&st->mal_rl, &sup))
		ig_warn("tls probe: undecodable TLS hello (counted; reported as tls.malformed)",
			"reason=\"%s\" pid=%u comm=%s suppressed=%llu", why, f->pid, f->comm,
			(unsigned long long)sup);
	if (now - st->mal_window_start > IG_NSEC_PER_SEC) {
		st->mal_window_start = now;
		st->mal_window_n = 0;
	}
	if (++st->mal_window_n > MALFORMED_PER_SEC)
		return;
	struct ig_record *r = st->rec;
	ig_record_reset(r);
	r->kind = "tls.malformed";
	r->probe = "tls";
	r->ts_ns = ig_mono_to_wall(f->ts_ns);
	header_from(r, f, NULL);
	add_str(r, "reason", why);
	add_str(r, "direction", f->dir == IG_CAP_EGRESS ? "egress" : "ingress");
	add_addr(r, "src_addr", f->family, f->saddr);
	ig_record_add_uint(r, "src_port", f->sport);
	add_addr(r, "dst_addr", f->family, f->daddr);
	ig_record_add_uint(r, "dst_port", f->dport);
	st->malformed_reported++;
	st->sink.emit(st->sink.ctx, r);
}

/* Finishes a connection that goes away: a ClientHello without its answer is
 * reported alone. */
static void conn_end(struct tls_state *st, struct conn *c)
{
	if (!c->done && c->ch)
		emit(st, c);
	c->done = true;
	conn_release(c);
}

static struct conn *conn_get(struct tls_state *st, uint64_t cookie)
{
	struct conn *c = conn_find(st, cookie);

	if (c)
		return c;
	if (st->nconns >= st->conf.max_conns && st->oldest) {
		struct conn *o = st->oldest;
		conn_unlink(st, o);
		if (!o->done)
			st->evicted++;
		conn_end(st, o);
		conn_free(o);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		st->alloc_failed++;
		return NULL;
	}
	c->cookie = cookie;
	c->client_dir = -1;
	c->first_ns = ig_mono_ns();
	size_t b = bucket(st, cookie);
	c->hnext = st->buckets[b];
	st->buckets[b] = c;
	c->prev = st->newest;
	if (st->newest)
		st->newest->next = c;
	else
		st->oldest = c;
	st->newest = c;
	st->nconns++;
	return c;
}

static uint8_t *copy_msg(struct ig_tls_stream *s, size_t *len)
{
	const uint8_t *m = ig_tls_stream_msg(s, len);
	uint8_t *p = m ? malloc(*len) : NULL;

	if (p)
		memcpy(p, m, *len);
	return p;
}

static void on_hello(struct tls_state *st, struct conn *c, int dir, const struct ig_cap_flow *f)
{
	struct ig_tls_stream *s = c->s[dir];
	const struct ig_tls_hello *h = ig_tls_stream_hello(s);

	if (h->type == IG_TLS_CLIENT_HELLO) {
		if (c->client_dir >= 0 && c->client_dir != dir) {
			c->dead[dir] = true;
			st->malformed++;
			malformed(st, f, "a ClientHello from both sides");
			return;
		}
		if (dir == IG_CAP_INGRESS && !st->conf.server_side) {
			c->done = true;
			conn_release(c);
			return;
		}
		free(c->ch);
		c->ch = copy_msg(s, &c->ch_len);
		c->ch_rver = h->record_version;
		c->client_dir = dir;
		c->fc = *f;
		if (!c->ch)
			st->alloc_failed++;
		return;
	}
	if (c->client_dir < 0 && c->dead[!dir]) {
		/* The ClientHello was there but bad (already counted). */
		c->done = true;
		conn_release(c);
		return;
	}
	if (c->client_dir < 0 || c->client_dir == dir) {
		c->dead[dir] = true;
		st->malformed++;
		malformed(st, f, "a ServerHello with no ClientHello before it");
		return;
	}
	if (h->hrr) {
		c->hrr = true;
		st->hrrs++;
		struct ig_tls_stream *cs = c->s[c->client_dir];
		if (cs)
			ig_tls_stream_expect_hello(cs);
		return;
	}
	c->sh = copy_msg(s, &c->sh_len);
	c->sh_rver = h->record_version;
	c->fs = *f;
	if (!c->sh)
		st->alloc_failed++;
	emit(st, c);
	conn_release(c);
}

/* --- capture callbacks ------------------------------------------------------ */

static size_t on_data(void *ctx, const struct ig_cap_flow *f, const uint8_t *d, size_t n)
{
	struct tls_state *st = ctx;
	int dir = f->dir == IG_CAP_INGRESS;

	if (f->proto != 6)
		return n;
	struct conn *c = conn_get(st, f->cookie);
	if (!c || c->done || c->dead[dir])
		return n;
	if (f->gap) {
		/* Bytes were lost before these: the record framing is gone. */
		st->gaps++;
		c->dead[dir] = true;
		return n;
	}
	if (!c->s[dir]) {
		c->s[dir] = ig_tls_stream_new(st->conf.capture_bytes);
		if (!c->s[dir]) {
			st->alloc_failed++;
			return n;
		}
	}
	size_t off = 0;
	while (off < n && !c->done && !c->dead[dir]) {
		size_t used = 0;
		int rc = ig_tls_stream_feed(c->s[dir], d + off, n - off, &used);
		off += used;
		if (rc == IG_TLS_HELLO) {
			on_hello(st, c, dir, f);
			continue;
		}
		if (rc < 0) {
			if (rc == -EPROTO) {
				st->not_tls++;
				malformed(st, f, "not a TLS handshake after a hello-like start");
			} else if (rc == -EMSGSIZE) {
				st->too_big++;
				malformed(st, f,
					  "hello longer than probes.tls.capture_bytes: not parsed");
			} else {
				st->malformed++;
				malformed(st, f,
					  "malformed hello: a length disagrees with its enclosure");
			}
			c->dead[dir] = true;
			if (c->dead[0] && c->dead[1])
				conn_end(st, c);
		}
		break;
	}
	return n;
}

static void on_end(void *ctx, const struct ig_cap_flow *f, int evicted)
{
	struct tls_state *st = ctx;
	struct conn *c = conn_find(st, f->cookie);

	if (!c)
		return;
	int dir = f->dir == IG_CAP_INGRESS;
	if (!c->done && c->s[dir] && ig_tls_stream_inside_hello(c->s[dir])) {
		st->truncated++;
		malformed(st, f,
			  evicted ? "evicted inside a hello" : "connection ended inside a hello");
	}
	if (evicted && !c->done)
		st->evicted++;
	/* The entry stays, done, until it ages out: the other direction's
	 * remaining capture bytes may still come and must not start a new
	 * connection in mid-stream. */
	conn_end(st, c);
}

/* --- probe ops ---------------------------------------------------------------- */

static void tls_close(void *state);

static int tls_open(void **state, const void *conf, const struct ig_agent_conf *ac,
		    const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_tls_conf *tc = conf;
	struct tls_state *st = calloc(1, sizeof(*st));
	int rv;

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->conf = *tc;
	st->epfd = -1;
	st->mal_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	if (!st->conf.capture_bytes)
		st->conf.capture_bytes = 4096;
	if (!st->conf.timeout_ns)
		st->conf.timeout_ns = 5 * IG_NSEC_PER_SEC;
	if (!st->conf.max_conns)
		st->conf.max_conns = 16384;
	st->rec = calloc(1, sizeof(*st->rec));
	st->nbuckets = 64;
	while (st->nbuckets < st->conf.max_conns)
		st->nbuckets <<= 1;
	st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
	if (!st->rec || !st->buckets) {
		rv = -ENOMEM;
		goto fail;
	}
	struct ig_cap_client c = {
		.classifier = IG_CAP_TLS,
		.on_data = on_data,
		.on_end = on_end,
		.ctx = st,
		.budget = (uint32_t)st->conf.capture_bytes,
		.max_flows = (uint32_t)tc->max_flows,
		.max_flow_bytes = (uint32_t)(2 * st->conf.capture_bytes),
		.owner_tracepoints = st->conf.server_side,
	};
	if ((rv = ig_capture_register(&c, ac, &st->cap, err)) < 0)
		goto fail;
	st->epfd = ig_capture_epoll_fd(st->cap);
	if (st->epfd < 0) {
		rv = -errno;
		ig_err_add(err, "probes.tls: cannot duplicate the ring buffer's fd (%s)",
			   strerror(-rv));
		goto fail;
	}
	ig_info("tls probe attached",
		"capture_bytes=%llu timeout_ms=%llu max_conns=%llu server_side=%d",
		(unsigned long long)st->conf.capture_bytes,
		(unsigned long long)(st->conf.timeout_ns / IG_NSEC_PER_MSEC),
		(unsigned long long)st->conf.max_conns, st->conf.server_side);
	*state = st;
	return 0;
fail:
	tls_close(st);
	return rv;
}

static int tls_epoll_fd(void *state)
{
	return ((struct tls_state *)state)->epfd;
}

static void expire(struct tls_state *st, uint64_t now)
{
	while (st->oldest && now - st->oldest->first_ns >= st->conf.timeout_ns) {
		struct conn *c = st->oldest;
		conn_unlink(st, c);
		conn_end(st, c);
		conn_free(c);
	}
}

static int tls_consume(void *state)
{
	struct tls_state *st = state;
	uint64_t before = st->records;
	int rv = ig_capture_poll(st->cap);

	if (rv < 0)
		return rv;
	expire(st, ig_mono_ns());
	return (int)(st->records - before);
}

static void tls_stats(void *state, struct ig_probe_stats *out)
{
	struct tls_state *st = state;
	struct ig_cap_stats cs;

	memset(out, 0, sizeof(*out));
	ig_capture_stats(st->cap, IG_CAP_TLS, &cs);
	out->events = cs.events;
	out->ringbuf_full = cs.ringbuf_full + cs.load_failed;
	out->other_lost =
		cs.reasm_evicted + cs.reasm_overflow + st->gaps + st->evicted + st->alloc_failed;
}

static void tls_close(void *state)
{
	struct tls_state *st = state;

	if (!st)
		return;
	if (st->cap) {
		struct ig_cap_stats cs;
		ig_capture_poll(st->cap);
		ig_capture_stats(st->cap, IG_CAP_TLS, &cs);
		ig_info("tls probe capture",
			"events=%llu bytes=%llu ringbuf_full=%llu load_failed=%llu "
			"past_capture_bytes=%llu past_hello_bytes=%llu done_after_hello=%llu "
			"retransmissions=%llu reasm_evicted=%llu "
			"reasm_aged=%llu reasm_overflow=%llu reasm_gap_bytes=%llu",
			(unsigned long long)cs.events, (unsigned long long)cs.bytes,
			(unsigned long long)cs.ringbuf_full, (unsigned long long)cs.load_failed,
			(unsigned long long)cs.budget_bytes, (unsigned long long)cs.span_skipped,
			(unsigned long long)cs.span_done, (unsigned long long)cs.retrans,
			(unsigned long long)cs.reasm_evicted, (unsigned long long)cs.reasm_aged,
			(unsigned long long)cs.reasm_overflow, (unsigned long long)cs.reasm_gaps);
		ig_capture_unregister(st->cap, IG_CAP_TLS);
	}
	if (st->epfd >= 0)
		close(st->epfd);
	/* ClientHellos still waiting for their answer are reported alone (the
	 * agent delivers what probes emit while they close). */
	uint64_t alone_before = st->alone;
	while (st->oldest) {
		struct conn *c = st->oldest;
		conn_unlink(st, c);
		if (st->cap)
			conn_end(st, c);
		conn_free(c);
	}
	if (st->alone > alone_before)
		ig_info("tls probe: ClientHellos without an answer at close, reported alone",
			"count=%llu", (unsigned long long)(st->alone - alone_before));
	ig_info("tls probe",
		"records=%llu answered=%llu alone=%llu hrr=%llu not_tls=%llu malformed=%llu "
		"too_big=%llu truncated=%llu malformed_reported=%llu evicted=%llu gaps=%llu "
		"alloc_failed=%llu",
		(unsigned long long)st->records, (unsigned long long)st->answered,
		(unsigned long long)st->alone, (unsigned long long)st->hrrs,
		(unsigned long long)st->not_tls, (unsigned long long)st->malformed,
		(unsigned long long)st->too_big, (unsigned long long)st->truncated,
		(unsigned long long)st->malformed_reported, (unsigned long long)st->evicted,
		(unsigned long long)st->gaps, (unsigned long long)st->alloc_failed);
	free(st->buckets);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_tls_ops = {
	.name = "tls",
	.kind = IG_PROBE_TLS,
	.open = tls_open,
	.epoll_fd = tls_epoll_fd,
	.consume = tls_consume,
	.stats = tls_stats,
	.close = tls_close,
};
