/* probe_dns: DNS on any port, user side (kernel side: the DNS classifier
 * bpf/dns.bpf.h in the shared capture object bpf/capture.bpf.c; the
 * capture layer: node-agent/capture.c, docs/capture.md; reference:
 * docs/probes.md).
 *
 * The capture layer hands over whole UDP datagrams and reassembled TCP
 * bytes (RFC 1035 4.2.2: each message after a 2-byte length; several per
 * segment, or one over several). Each message is parsed (dns_msg.c). A
 * query is held in a pending table keyed by (socket cookie, id) and
 * compared on the peer address and port and the question (ids repeat:
 * glibc sends A and AAAA in parallel with one id); its answer on the same
 * socket closes the exchange: one "dns.query" record with the question,
 * the answer, the latency between the two packets' kernel timestamps, the
 * process and pod of the socket, and the server's address as the client
 * asked for it (before NAT) and as on the wire. A query unanswered after
 * probes.dns.timeout becomes "dns.timeout"; an answer with no query
 * "dns.response" (mDNS announcements, or a query sent before the agent
 * started); an undecodable message "dns.malformed" (rate-limited; all are
 * counted). The socket that sent the query tells the role: egress = this
 * node's client, ingress = this node's server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "capture.h"
#include "dns_msg.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"

#define MALFORMED_PER_SEC 100

struct pend {
	struct pend *hnext; /* chain of bucket (cookie, id) */
	struct pend *prev, *next; /* age order, oldest first */
	uint64_t ts_ns;
	uint16_t id, qtype, qclass;
	bool multicast; /* sent to a multicast group: answers come from anyone */
	uint8_t rfamily;
	uint8_t raddr[16];
	uint16_t rport;
	/* The destination the client asked for (before NAT): the answer comes
	 * back from it once conntrack has undone a DNAT (a Service ClusterIP). */
	bool has_orig;
	uint8_t ofamily;
	uint8_t oaddr[16];
	uint16_t oport;
	uint16_t qflags; /* the query's header flags */
	struct ig_cap_flow flow;
	char *qname;
};

struct dns_state {
	struct ig_capture *cap;
	struct ig_sink sink;
	struct ig_record *rec;
	struct ig_dns_msg msg; /* large: kept here, not on the stack */
	struct ig_dns_conf conf;
	int epfd;
	struct pend **buckets;
	size_t nbuckets;
	struct pend *oldest, *newest;
	uint64_t npending;
	/* counters */
	uint64_t records, exchanges, timeouts, unmatched, malformed, malformed_reported;
	uint64_t pending_evicted, gaps, closed_pending;
	uint64_t mal_window_start, mal_window_n;
	struct ig_ratelimit mal_rl;
};

/* --- pending queries ------------------------------------------------------ */

static size_t bucket(const struct dns_state *st, uint64_t cookie, uint16_t id)
{
	uint64_t h = (cookie ^ ((uint64_t)id << 48)) * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & (st->nbuckets - 1);
}

static void pend_unlink(struct dns_state *st, struct pend *p)
{
	struct pend **pp = &st->buckets[bucket(st, p->flow.cookie, p->id)];

	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	if (p->prev)
		p->prev->next = p->next;
	else
		st->oldest = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		st->newest = p->prev;
	st->npending--;
}

static void pend_free(struct pend *p)
{
	if (p) {
		free(p->qname);
		free(p);
	}
}

static bool is_multicast(int family, const uint8_t *a)
{
	return family == 4 ? (a[0] & 0xf0) == 0xe0 : a[0] == 0xff;
}

/* The peer of a packet: the destination of what we send, the source of
 * what we receive. */
static void peer_of(const struct ig_cap_flow *f, uint8_t *fam, const uint8_t **addr, uint16_t *port)
{
	*fam = f->family;
	if (f->dir == IG_CAP_EGRESS) {
		*addr = f->daddr;
		*port = f->dport;
	} else {
		*addr = f->saddr;
		*port = f->sport;
	}
}

/* --- records -------------------------------------------------------------- */

static void add_addr(struct ig_record *r, const char *key, int family, const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	ig_cap_addr_str(family, a, buf, sizeof(buf));
	ig_record_add_str(r, key, buf, strlen(buf));
}

static void fmt_hostport(char *out, size_t cap, int family, const uint8_t *a, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];

	ig_cap_addr_str(family, a, buf, sizeof(buf));
	if (family == 6)
		snprintf(out, cap, "[%s]:%u", buf, port);
	else
		snprintf(out, cap, "%s:%u", buf, port);
}

static void add_flags(struct ig_record *r, const struct ig_dns_msg *m)
{
	char f[40];
	size_t o = 0;

	f[0] = 0;
#define FL(cond, s)                                                                           \
	do {                                                                                  \
		if (cond)                                                                     \
			o += (size_t)snprintf(f + o, sizeof(f) - o, "%s%s", o ? " " : "", s); \
	} while (0)
	FL(m->qr, "qr");
	FL(m->aa, "aa");
	FL(m->tc, "tc");
	FL(m->rd, "rd");
	FL(m->ra, "ra");
	FL(m->ad, "ad");
	FL(m->cd, "cd");
#undef FL
	ig_record_add_str(r, "dns.flags", f, strlen(f));
}

/* Joins the answers of type t (0 = all, as "TYPE data ttl=N"). */
static void add_answers(struct ig_record *r, const char *key, const struct ig_dns_msg *m,
			uint16_t t)
{
	char buf[8192], tb[16];
	size_t o = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < m->nanswers && o < sizeof(buf) - 1; i++) {
		const struct ig_dns_rr *rr = &m->an[i];
		if (t && rr->type != t)
			continue;
		int w;
		if (t)
			w = snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? "," : "", rr->data);
		else
			w = snprintf(buf + o, sizeof(buf) - o, "%s%s %s %s ttl=%u", o ? "; " : "",
				     rr->name, ig_dns_type_name(rr->type, tb, sizeof(tb)), rr->data,
				     rr->ttl);
		if (w < 0 || (size_t)w >= sizeof(buf) - o) {
			o = sizeof(buf) - 1;
			break;
		}
		o += (size_t)w;
	}
	if (o || !t)
		ig_record_add_str(r, key, buf, o);
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

/* Addresses of an exchange whose first packet is f. query: f is the query
 * (egress = client role) or else the response (egress = server role). */
static void add_endpoints(struct ig_record *r, const struct ig_cap_flow *f, bool query)
{
	bool client = query ? f->dir == IG_CAP_EGRESS : f->dir == IG_CAP_INGRESS;
	/* For a query the server is its destination, for a response its source. */
	const uint8_t *srv = query ? f->daddr : f->saddr, *cli = query ? f->saddr : f->daddr;
	uint16_t sport = query ? f->dport : f->sport, cport = query ? f->sport : f->dport;
	char hp[80];
	const char *role = client ? "client" : "server";
	const char *tr = f->proto == 6 ? "tcp" : "udp";

	ig_record_add_str(r, "role", role, strlen(role));
	ig_record_add_str(r, "transport", tr, strlen(tr));
	if (client && f->has_orig && !is_multicast(f->family, srv))
		fmt_hostport(hp, sizeof(hp), f->orig_family, f->orig_daddr, f->orig_dport);
	else
		fmt_hostport(hp, sizeof(hp), f->family, srv, sport);
	ig_record_add_str(r, "server", hp, strlen(hp));
	add_addr(r, "server_addr", f->family, srv);
	ig_record_add_uint(r, "server_port", sport);
	add_addr(r, "client_addr", f->family, cli);
	ig_record_add_uint(r, "client_port", cport);
	if (client && f->has_orig) {
		add_addr(r, "server_orig_addr", f->orig_family, f->orig_daddr);
		ig_record_add_uint(r, "server_orig_port", f->orig_dport);
	}
}

static void add_question(struct ig_record *r, uint16_t id, const char *qname, uint16_t qtype,
			 uint16_t qclass)
{
	char tb[16];
	const char *tn = ig_dns_type_name(qtype, tb, sizeof(tb));

	ig_record_add_uint(r, "dns.id", id);
	ig_record_add_str(r, "dns.qry.name", qname, strlen(qname));
	ig_record_add_str(r, "qtype", tn, strlen(tn));
	ig_record_add_uint(r, "dns.qry.type", qtype);
	if (qclass != 1)
		ig_record_add_uint(r, "dns.qry.class", qclass);
}

static void add_response(struct ig_record *r, const struct ig_dns_msg *m)
{
	char rb[16];
	const char *rn = ig_dns_rcode_name(m->rcode, rb, sizeof(rb));

	ig_record_add_str(r, "rcode", rn, strlen(rn));
	ig_record_add_uint(r, "dns.flags.rcode", m->rcode);
	add_flags(r, m);
	ig_record_add_uint(r, "dns.count.answers", m->ancount);
	add_answers(r, "dns.a", m, IG_DNS_T_A);
	add_answers(r, "dns.aaaa", m, IG_DNS_T_AAAA);
	add_answers(r, "dns.cname", m, IG_DNS_T_CNAME);
	add_answers(r, "dns.answers", m, 0);
}

static void emit(struct dns_state *st)
{
	st->records++;
	st->sink.emit(st->sink.ctx, st->rec);
}

static void emit_exchange(struct dns_state *st, const struct pend *q, const struct ig_dns_msg *m,
			  const struct ig_cap_flow *rf)
{
	struct ig_record *r = st->rec;
	char t[32];

	ig_record_reset(r);
	r->kind = "dns.query";
	r->probe = "dns";
	r->ts_ns = ig_mono_to_wall(q->flow.ts_ns);
	header_from(r, &q->flow, rf);
	add_endpoints(r, &q->flow, true);
	add_question(r, q->id, q->qname, q->qtype, q->qclass);
	add_response(r, m);
	uint64_t lat = rf->ts_ns > q->flow.ts_ns ? rf->ts_ns - q->flow.ts_ns : 0;
	snprintf(t, sizeof(t), "%llu.%09llu", (unsigned long long)(lat / IG_NSEC_PER_SEC),
		 (unsigned long long)(lat % IG_NSEC_PER_SEC));
	ig_record_add_str(r, "dns.time", t, strlen(t));
	ig_record_add_uint(r, "latency_ns", lat);
	st->exchanges++;
	emit(st);
}

static void emit_timeout(struct dns_state *st, const struct pend *q, uint64_t waited)
{
	struct ig_record *r = st->rec;

	ig_record_reset(r);
	r->kind = "dns.timeout";
	r->probe = "dns";
	r->ts_ns = ig_mono_to_wall(q->flow.ts_ns);
	header_from(r, &q->flow, NULL);
	add_endpoints(r, &q->flow, true);
	add_question(r, q->id, q->qname, q->qtype, q->qclass);
	ig_record_add_uint(r, "waited_ns", waited);
	st->timeouts++;
	emit(st);
}

static void emit_unmatched(struct dns_state *st, const struct ig_dns_msg *m,
			   const struct ig_cap_flow *f)
{
	struct ig_record *r = st->rec;

	ig_record_reset(r);
	r->kind = "dns.response";
	r->probe = "dns";
	r->ts_ns = ig_mono_to_wall(f->ts_ns);
	header_from(r, f, NULL);
	add_endpoints(r, f, false);
	add_question(r, m->id, m->has_question ? m->qname : "", m->qtype, m->qclass);
	add_response(r, m);
	st->unmatched++;
	emit(st);
}

static void malformed(struct dns_state *st, const struct ig_cap_flow *f, const char *why,
		      size_t len)
{
	uint64_t now = ig_mono_ns(), sup = 0;

	st->malformed++;
	if (ig_ratelimit_ok(&st->mal_rl, &sup))
		ig_warn("dns probe: undecodable DNS message (counted; reported as dns.malformed)",
			"reason=\"%s\" pid=%u comm=%s bytes=%zu suppressed=%llu", why, f->pid,
			f->comm, len, (unsigned long long)sup);
	if (!st->conf.malformed_records)
		return;
	if (now - st->mal_window_start > IG_NSEC_PER_SEC) {
		st->mal_window_start = now;
		st->mal_window_n = 0;
	}
	if (++st->mal_window_n > MALFORMED_PER_SEC)
		return;
	struct ig_record *r = st->rec;
	const char *dir = f->dir == IG_CAP_EGRESS ? "egress" : "ingress";
	const char *tr = f->proto == 6 ? "tcp" : "udp";
	ig_record_reset(r);
	r->kind = "dns.malformed";
	r->probe = "dns";
	r->ts_ns = ig_mono_to_wall(f->ts_ns);
	header_from(r, f, NULL);
	ig_record_add_str(r, "reason", why, strlen(why));
	ig_record_add_str(r, "transport", tr, strlen(tr));
	ig_record_add_str(r, "direction", dir, strlen(dir));
	add_addr(r, "src_addr", f->family, f->saddr);
	ig_record_add_uint(r, "src_port", f->sport);
	add_addr(r, "dst_addr", f->family, f->daddr);
	ig_record_add_uint(r, "dst_port", f->dport);
	ig_record_add_uint(r, "bytes", len);
	st->malformed_reported++;
	emit(st);
}

/* --- matching --------------------------------------------------------------- */

static void add_query(struct dns_state *st, const struct ig_dns_msg *m, const struct ig_cap_flow *f)
{
	if (st->npending >= st->conf.max_pending && st->oldest) {
		struct pend *o = st->oldest;
		pend_unlink(st, o);
		pend_free(o);
		st->pending_evicted++;
	}
	struct pend *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->qname = strdup(m->qname);
	if (!p->qname) {
		free(p);
		return;
	}
	const uint8_t *a;
	p->ts_ns = f->ts_ns;
	p->id = m->id;
	p->qtype = m->qtype;
	p->qclass = m->qclass;
	p->flow = *f;
	peer_of(f, &p->rfamily, &a, &p->rport);
	memcpy(p->raddr, a, 16);
	p->multicast = is_multicast(f->family, a);
	if (f->dir == IG_CAP_EGRESS && f->has_orig) {
		p->has_orig = true;
		p->ofamily = f->orig_family;
		memcpy(p->oaddr, f->orig_daddr, 16);
		p->oport = f->orig_dport;
	}
	size_t b = bucket(st, f->cookie, m->id);
	p->hnext = st->buckets[b];
	st->buckets[b] = p;
	p->prev = st->newest;
	if (st->newest)
		st->newest->next = p;
	else
		st->oldest = p;
	st->newest = p;
	st->npending++;
}

static struct pend *find_query(struct dns_state *st, const struct ig_dns_msg *m,
			       const struct ig_cap_flow *f)
{
	uint8_t fam;
	const uint8_t *a;
	uint16_t port;
	struct pend *idonly = NULL;

	peer_of(f, &fam, &a, &port);
	/* An mDNS answer sent to the group answers whoever asked. */
	bool to_group = is_multicast(fam, a);
	for (struct pend *p = st->buckets[bucket(st, f->cookie, m->id)]; p; p = p->hnext) {
		if (p->flow.cookie != f->cookie || p->id != m->id)
			continue;
		bool wire = p->rfamily == fam && p->rport == port &&
			    memcmp(p->raddr, a, fam == 4 ? 4 : 16) == 0;
		bool orig = p->has_orig && p->ofamily == fam && p->oport == port &&
			    memcmp(p->oaddr, a, fam == 4 ? 4 : 16) == 0;
		if (!p->multicast && !to_group && !wire && !orig)
			continue;
		if (m->has_question) {
			if (p->qtype == m->qtype && p->qclass == m->qclass &&
			    strcasecmp(p->qname, m->qname) == 0)
				return p;
			continue;
		}
		/* No question (mDNS answers, some errors): the answer's name. */
		if (m->nanswers && strcasecmp(p->qname, m->an[0].name) == 0)
			return p;
		if (!idonly)
			idonly = p;
	}
	return idonly;
}

static void on_message(struct dns_state *st, const uint8_t *d, size_t n,
		       const struct ig_cap_flow *f)
{
	struct ig_dns_msg *m = &st->msg;
	const char *why = NULL;

	if (ig_dns_parse(d, n, m, &why) < 0) {
		malformed(st, f, why, n);
		return;
	}
	if (!m->qr) {
		if (!m->has_question) {
			malformed(st, f, "query without a question", n);
			return;
		}
		if (f->dir == IG_CAP_INGRESS && !st->conf.server_side)
			return;
		add_query(st, m, f);
		return;
	}
	struct pend *q = find_query(st, m, f);
	if (q) {
		pend_unlink(st, q);
		emit_exchange(st, q, m, f);
		pend_free(q);
		return;
	}
	if (f->dir == IG_CAP_EGRESS && !st->conf.server_side)
		return;
	emit_unmatched(st, m, f);
}

/* --- capture callbacks ------------------------------------------------------ */

static size_t on_data(void *ctx, const struct ig_cap_flow *f, const uint8_t *d, size_t n)
{
	struct dns_state *st = ctx;
	size_t used = 0;

	if (f->proto == 17) {
		on_message(st, d, n, f);
		return n;
	}
	if (f->gap)
		st->gaps++;
	while (n - used >= 2) {
		size_t len = ((size_t)d[used] << 8) | d[used + 1];
		if (len < 12) {
			malformed(st, f, "TCP length shorter than a DNS header", n - used);
			return n; /* framing lost: drop what is here */
		}
		if (len + 2 > st->conf.capture_bytes) {
			malformed(st, f,
				  "TCP message longer than probes.dns.capture_bytes: not parsed",
				  n - used);
			return n;
		}
		if (n - used < len + 2)
			break; /* the rest comes in later segments */
		on_message(st, d + used + 2, len, f);
		used += len + 2;
	}
	return used;
}

/* --- probe ops ---------------------------------------------------------------- */

static void dns_close(void *state);

static int dns_open(void **state, const void *conf, const struct ig_agent_conf *ac,
		    const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_dns_conf *dc = conf;
	struct dns_state *st = calloc(1, sizeof(*st));
	int rv;

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->conf = *dc;
	st->epfd = -1;
	if (!st->conf.capture_bytes)
		st->conf.capture_bytes = 4096;
	if (!st->conf.timeout_ns)
		st->conf.timeout_ns = 5 * IG_NSEC_PER_SEC;
	if (!st->conf.max_pending)
		st->conf.max_pending = 16384;
	st->mal_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	st->rec = calloc(1, sizeof(*st->rec));
	st->nbuckets = 64;
	while (st->nbuckets < st->conf.max_pending)
		st->nbuckets <<= 1;
	st->buckets = calloc(st->nbuckets, sizeof(*st->buckets));
	if (!st->rec || !st->buckets) {
		rv = -ENOMEM;
		goto fail;
	}
	struct ig_cap_client c = {
		.classifier = IG_CAP_DNS,
		.on_data = on_data,
		.ctx = st,
		.budget = (uint32_t)st->conf.capture_bytes,
		.max_flows = (uint32_t)dc->max_flows,
		.max_flow_bytes = (uint32_t)(2 * st->conf.capture_bytes),
		.owner_tracepoints = st->conf.server_side,
	};
	if ((rv = ig_capture_register(&c, ac, &st->cap, err)) < 0)
		goto fail;
	st->epfd = ig_capture_epoll_fd(st->cap);
	if (st->epfd < 0) {
		rv = -errno;
		ig_err_add(err, "probes.dns: cannot duplicate the ring buffer's fd (%s)",
			   strerror(-rv));
		goto fail;
	}
	ig_info("dns probe attached",
		"capture_bytes=%llu timeout_ms=%llu max_pending=%llu server_side=%d",
		(unsigned long long)st->conf.capture_bytes,
		(unsigned long long)(st->conf.timeout_ns / IG_NSEC_PER_MSEC),
		(unsigned long long)st->conf.max_pending, st->conf.server_side);
	*state = st;
	return 0;
fail:
	dns_close(st);
	return rv;
}

static int dns_epoll_fd(void *state)
{
	return ((struct dns_state *)state)->epfd;
}

static void expire(struct dns_state *st, uint64_t now)
{
	while (st->oldest && now > st->oldest->ts_ns &&
	       now - st->oldest->ts_ns >= st->conf.timeout_ns) {
		struct pend *p = st->oldest;
		pend_unlink(st, p);
		emit_timeout(st, p, now - p->ts_ns);
		pend_free(p);
	}
}

static int dns_consume(void *state)
{
	struct dns_state *st = state;
	uint64_t before = st->records;
	int rv = ig_capture_poll(st->cap);

	if (rv < 0)
		return rv;
	expire(st, ig_mono_ns());
	return (int)(st->records - before);
}

static void dns_stats(void *state, struct ig_probe_stats *out)
{
	struct dns_state *st = state;
	struct ig_cap_stats cs;

	memset(out, 0, sizeof(*out));
	ig_capture_stats(st->cap, IG_CAP_DNS, &cs);
	out->events = cs.events;
	out->ringbuf_full = cs.ringbuf_full + cs.load_failed;
	out->other_lost = cs.reasm_evicted + cs.reasm_overflow + st->gaps + st->pending_evicted;
}

static void dns_close(void *state)
{
	struct dns_state *st = state;

	if (!st)
		return;
	if (st->cap) {
		struct ig_cap_stats cs;
		ig_capture_poll(st->cap);
		ig_capture_stats(st->cap, IG_CAP_DNS, &cs);
		ig_info("dns probe capture",
			"events=%llu bytes=%llu ringbuf_full=%llu load_failed=%llu "
			"past_capture_bytes=%llu retransmissions=%llu reasm_evicted=%llu "
			"reasm_aged=%llu reasm_overflow=%llu reasm_gap_bytes=%llu",
			(unsigned long long)cs.events, (unsigned long long)cs.bytes,
			(unsigned long long)cs.ringbuf_full, (unsigned long long)cs.load_failed,
			(unsigned long long)cs.budget_bytes, (unsigned long long)cs.retrans,
			(unsigned long long)cs.reasm_evicted, (unsigned long long)cs.reasm_aged,
			(unsigned long long)cs.reasm_overflow, (unsigned long long)cs.reasm_gaps);
		ig_capture_unregister(st->cap, IG_CAP_DNS);
	}
	if (st->epfd >= 0)
		close(st->epfd);
	while (st->oldest) {
		struct pend *p = st->oldest;
		pend_unlink(st, p);
		pend_free(p);
		st->closed_pending++;
	}
	if (st->closed_pending)
		ig_info("dns probe: queries still waiting for an answer at close, not reported",
			"queries=%llu", (unsigned long long)st->closed_pending);
	ig_info("dns probe stopped",
		"exchanges=%llu timeouts=%llu unmatched=%llu malformed=%llu pending_evicted=%llu",
		(unsigned long long)st->exchanges, (unsigned long long)st->timeouts,
		(unsigned long long)st->unmatched, (unsigned long long)st->malformed,
		(unsigned long long)st->pending_evicted);
	free(st->buckets);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_dns_ops = {
	.name = "dns",
	.kind = IG_PROBE_DNS,
	.open = dns_open,
	.epoll_fd = dns_epoll_fd,
	.consume = dns_consume,
	.stats = dns_stats,
	.close = dns_close,
};
