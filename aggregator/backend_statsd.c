/* backend_statsd: metrics to a StatsD (Etsy) or DogStatsD server over UDP.
 *
 *   statsd:    ingrain.file.open:42|c
 *   dogstatsd: ingrain.file.open:42|c|#namespace:prod,pod:web-1
 *
 * Counters and gauges are aggregated here, per series (name + tag set),
 * during flush_interval: a storm of 100k opens per second becomes one
 * `...:100000|c` line per series and interval instead of 100k datagrams.
 * Counters sum, gauges keep the last value. The series table is a bounded
 * open-addressing hash (max_series); when it is full the backend sends
 * everything early and starts over (logged, rate-limited), so memory stays
 * bounded whatever the tag cardinality. Histograms and sets (|s) are not
 * aggregated: each sample is a line. On plain StatsD a histogram is a timer
 * (|ms): Etsy StatsD has no |h type and would count such lines as counters;
 * timers take no negative samples, so those are dropped (counted). DogStatsD
 * gets |h, or |d with `distribution: true`.
 *
 * Lines are packed into datagrams separated by "\n", never larger than `mtu`
 * bytes; a line that alone exceeds it is dropped and counted. Plain StatsD
 * has no tags: `tag_style: none` drops them, `graphite` appends the tag
 * values to the name as dot-separated segments in tag order. Names, tag keys
 * and values are sanitised: ':', '|', '@', ',', '#', control characters and
 * spaces become '_' (and '.' inside a graphite segment, so a value cannot
 * add levels). A negative gauge on plain StatsD is sent as "0|g" then "-N|g"
 * in one datagram, because StatsD reads a signed gauge as a delta.
 *
 * The socket is UDP, non-blocking and connected (getaddrinfo at start, IPv4
 * or IPv6), so an ICMP "port unreachable" is seen: right after each send
 * the socket's pending error (SO_ERROR) is read, and a datagram refused
 * there, or by a refusal that arrives before the next send (a remote
 * server's ICMP), counts as dropped; send errors are logged at most once a
 * minute and are never fatal. Every count is in metrics (events), not lines:
 * an aggregated line carries the number of metrics folded into it, so
 * received = sent + dropped + queued holds at every moment. UDP has no
 * acknowledgement: "sent" means the kernel took the datagram and no refusal
 * came back for it (a server that is up but loses datagrams is not seen).
 * Nothing is allocated per metric once the table and key arena have grown.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ig_backend.h"
#include "ig_log.h"
#include "ig_strpool.h"
#include "ig_time.h"
#include "ig_hash.h"

enum statsd_flavor { FLAVOR_STATSD, FLAVOR_DOGSTATSD };
enum statsd_tag_style { TAGS_AUTO, TAGS_NONE, TAGS_GRAPHITE, TAGS_DOGSTATSD };

struct statsd_conf {
	char *address;
	int flavor;
	char *prefix;
	uint64_t mtu;
	uint64_t flush_interval_ns;
	uint64_t max_series;
	int tag_style;
	bool distribution;
};

struct series {
	const char *key; /* "<name>|c|#tags": the line without ":<value>" */
	uint32_t keylen;
	uint32_t namelen; /* where ":<value>" goes */
	uint32_t hash;
	bool gauge;
	double value;
	uint64_t events; /* metrics folded into this line */
};

/* A bounded string builder: `over` records that something did not fit. */
struct sb {
	char *p;
	size_t len, cap;
	bool over;
};

struct statsd {
	char *name;
	char *address;
	int fd;
	int flavor, tag_style;
	bool distribution;
	char *prefix;
	size_t mtu;
	uint64_t interval_ns, last_flush_ns;
	/* series table */
	struct series *ser;
	uint32_t nser, ser_cap, max_series;
	uint32_t *slots; /* series index + 1, 0 = empty */
	uint32_t nslots;
	struct ig_strpool pool; /* series keys of the current interval */
	/* the datagram being filled */
	char *pkt;
	size_t pkt_len;
	uint32_t pkt_lines;
	uint64_t pkt_events; /* metrics in the datagram being filled */
	uint64_t table_events; /* metrics in the series table */
	uint64_t last_events; /* metrics of the last datagram counted sent */
	char *line; /* scratch: one rendered line */
	size_t line_cap;
	char *val; /* scratch: a value or set member */
	uint64_t early_flushes;
	struct ig_backend_stats st;
	struct ig_ratelimit rl_send, rl_full, rl_big;
};

static const char *const flavor_choices[] = { "statsd", "dogstatsd", NULL };
static const char *const tag_style_choices[] = { "auto", "none", "graphite", "dogstatsd", NULL };

static const struct ig_opt statsd_opts[] = {
	{ "address", IG_OPT_STR, "127.0.0.1:8125", offsetof(struct statsd_conf, address),
	  "StatsD server as host:port (UDP); IPv6 as [addr]:port. Resolved once at start.",
	  .flags = 0 },
	{ "flavor", IG_OPT_ENUM, "statsd", offsetof(struct statsd_conf, flavor),
	  "`statsd` (Etsy StatsD: no tags) or `dogstatsd` (tags as `|#k:v,...`).",
	  .choices = flavor_choices },
	{ "prefix", IG_OPT_STR, "ingrain.", offsetof(struct statsd_conf, prefix),
	  "Prepended to every metric name.", .flags = 0 },
	{ "mtu", IG_OPT_SIZE, "1432", offsetof(struct statsd_conf, mtu),
	  "Largest datagram sent; several lines are packed into one datagram up to this size.",
	  .min = 512, .max = 65507 },
	{ "flush_interval", IG_OPT_DURATION, "1s", offsetof(struct statsd_conf, flush_interval_ns),
	  "Counters and gauges are aggregated per series and sent this often.", .min = 1000000,
	  .max = 3600000000000LL },
	{ "max_series", IG_OPT_UINT, "100000", offsetof(struct statsd_conf, max_series),
	  "Most distinct series (name + tags) held between flushes; when full, everything is sent early.",
	  .min = 1, .max = 100000000 },
	{ "tag_style", IG_OPT_ENUM, "auto", offsetof(struct statsd_conf, tag_style),
	  "How tags are sent. `auto`: `none` for statsd, `dogstatsd` for dogstatsd. `none`: dropped. "
	  "`graphite`: tag values appended to the name as dot-separated segments, in tag order. "
	  "`dogstatsd`: `|#k:v` (needs flavor dogstatsd).",
	  .choices = tag_style_choices },
	{ "distribution", IG_OPT_BOOL, "false", offsetof(struct statsd_conf, distribution),
	  "DogStatsD only: send histograms as distributions (`|d`) instead of `|h`. (Plain StatsD gets timers, `|ms`.)",
	  .flags = 0 },
	{ 0 },
};

/* ---- string building ---- */

static void sb_put(struct sb *b, const char *s, size_t n)
{
	if (b->over || b->len + n > b->cap) {
		b->over = true;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Appends s with the StatsD metacharacters replaced (see the top comment). */
static void sb_sanitized(struct sb *b, const char *s, bool no_dots)
{
	if (!s)
		return;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char out = (char)ch;

		if (ch <= ' ' || ch == 0x7f || ch == ':' || ch == '|' || ch == '@' || ch == ',' ||
		    ch == '#' || (no_dots && ch == '.'))
			out = '_';
		sb_put(b, &out, 1);
	}
}

static const char *fmt_value(double v, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, len, "%.17g", v);
	return buf;
}

/* Renders "<prefix><name>[.seg...]" then the type and tag suffix
 * ("|c|#k:v,...") into b; *namelen receives where the value goes. */
static void render_key(const struct statsd *s, const struct ig_metric *m, const char *type,
		       struct sb *b, size_t *namelen)
{
	sb_puts(b, s->prefix);
	sb_sanitized(b, m->name ? m->name : "unnamed", false);
	if (s->tag_style == TAGS_GRAPHITE) {
		for (uint32_t i = 0; i < m->ntags; i++) {
			const char *v = m->tags[i].val;

			sb_put(b, ".", 1);
			if (v && *v)
				sb_sanitized(b, v, true);
			else
				sb_put(b, "_", 1);
		}
	}
	*namelen = b->len;
	sb_puts(b, type);
	if (s->tag_style == TAGS_DOGSTATSD && m->ntags) {
		bool first = true;

		for (uint32_t i = 0; i < m->ntags; i++) {
			const struct ig_tag *t = &m->tags[i];

			if (!t->key || !*t->key)
				continue;
			sb_puts(b, first ? "|#" : ",");
			first = false;
			sb_sanitized(b, t->key, false);
			sb_put(b, ":", 1);
			sb_sanitized(b, t->val, false);
		}
	}
}

/* ---- datagrams ---- */

static int pending_error(struct statsd *s)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l))
		return 0;
	return e;
}

static void send_failed(struct statsd *s, int e, uint64_t events)
{
	uint64_t sup = 0;

	s->st.errors++;
	s->st.dropped += events;
	if (ig_ratelimit_ok(&s->rl_send, &sup))
		ig_warn("statsd backend cannot send; metrics are dropped (is the StatsD server running at this address?)",
			"backend=%s address=%s error=\"%s\" metrics=%llu dropped_total=%llu "
			"suppressed=%llu",
			s->name, s->address, strerror(e), (unsigned long long)events,
			(unsigned long long)s->st.dropped, (unsigned long long)sup);
}

/* A refusal that arrived after the last datagram was counted sent (a remote
 * server's ICMP): that datagram was not delivered after all. */
static void late_refusal(struct statsd *s)
{
	int e = pending_error(s);

	if (!e)
		return;
	if (s->last_events <= s->st.sent)
		s->st.sent -= s->last_events;
	send_failed(s, e, s->last_events);
	s->last_events = 0;
}

static void send_pkt(struct statsd *s)
{
	ssize_t n;

	if (!s->pkt_len)
		return;
	late_refusal(s);
	do
		n = send(s->fd, s->pkt, s->pkt_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	int e = n == (ssize_t)s->pkt_len ? pending_error(s) : n < 0 ? errno : EMSGSIZE;
	if (!e) {
		s->st.sent += s->pkt_events;
		s->last_events = s->pkt_events;
	} else {
		send_failed(s, e, s->pkt_events);
		s->last_events = 0;
	}
	s->pkt_len = 0;
	s->pkt_lines = 0;
	s->pkt_events = 0;
}

/* line[0..len): (the start of) the offending line, for the log. */
static void too_big(struct statsd *s, const char *line, size_t len, uint64_t events)
{
	uint64_t sup = 0;

	s->st.dropped += events;
	if (ig_ratelimit_ok(&s->rl_big, &sup))
		ig_warn("statsd line longer than the mtu was dropped (shorten names or drop tags with a stage, or raise mtu)",
			"backend=%s mtu=%zu line=\"%.*s...\" suppressed=%llu", s->name, s->mtu,
			(int)(len < 60 ? len : 60), line, (unsigned long long)sup);
}

/* Adds one line (it may hold "\n" itself: kept in one datagram). */
static void pack(struct statsd *s, const char *line, size_t len, uint64_t events)
{
	if (len > s->mtu) {
		too_big(s, line, len, events);
		return;
	}
	if (s->pkt_len && s->pkt_len + 1 + len > s->mtu)
		send_pkt(s);
	if (s->pkt_len)
		s->pkt[s->pkt_len++] = '\n';
	memcpy(s->pkt + s->pkt_len, line, len);
	s->pkt_len += len;
	s->pkt_lines++;
	s->pkt_events += events;
}

/* ---- series table ---- */

static uint32_t hash_bytes(const char *p, size_t n)
{
	return ig_fnv32(IG_FNV32_INIT, p, n);
}

static const char *arena_copy(struct statsd *s, const char *p, size_t n)
{
	return ig_strpool_copy(&s->pool, p, n);
}

static void arena_reset(struct statsd *s)
{
	ig_strpool_reset(&s->pool);
}

static int grow(struct statsd *s)
{
	uint32_t ncap = s->ser_cap * 2, nslots = s->nslots * 2;
	struct series *ns;
	uint32_t *sl;

	if (ncap > s->max_series)
		ncap = s->max_series;
	ns = realloc(s->ser, (size_t)ncap * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	s->ser = ns;
	s->ser_cap = ncap;
	while (nslots < 2 * ncap)
		nslots *= 2;
	if (nslots == s->nslots)
		return 0;
	sl = calloc(nslots, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	free(s->slots);
	s->slots = sl;
	s->nslots = nslots;
	for (uint32_t i = 0; i < s->nser; i++) {
		uint32_t j = s->ser[i].hash & (nslots - 1);

		while (sl[j])
			j = (j + 1) & (nslots - 1);
		sl[j] = i + 1;
	}
	return 0;
}

static void flush_series(struct statsd *s)
{
	char num[40];

	for (uint32_t i = 0; i < s->nser; i++) {
		const struct series *se = &s->ser[i];
		size_t vlen, len;
		/* s->val, not s->line: an early flush runs while s->line holds
		 * the key about to be inserted. */
		char *p = s->val;

		/* Plain StatsD reads a signed gauge as a delta: set 0 first. */
		bool neg_gauge = se->gauge && se->value < 0 && s->flavor == FLAVOR_STATSD;

		fmt_value(se->value, num, sizeof(num));
		vlen = strlen(num);
		len = se->keylen + 1 + vlen + (neg_gauge ? se->keylen + 3 : 0);
		if (len > s->mtu) {
			too_big(s, se->key, se->keylen, se->events);
			continue;
		}
		if (neg_gauge) {
			memcpy(p, se->key, se->namelen);
			memcpy(p + se->namelen, ":0", 2);
			memcpy(p + se->namelen + 2, se->key + se->namelen,
			       se->keylen - se->namelen);
			p += se->keylen + 2;
			*p++ = '\n';
		}
		memcpy(p, se->key, se->namelen);
		p += se->namelen;
		*p++ = ':';
		memcpy(p, num, vlen);
		p += vlen;
		memcpy(p, se->key + se->namelen, se->keylen - se->namelen);
		p += se->keylen - se->namelen;
		pack(s, s->val, (size_t)(p - s->val), se->events);
	}
	if (s->nser)
		memset(s->slots, 0, (size_t)s->nslots * sizeof(*s->slots));
	s->nser = 0;
	s->table_events = 0;
	arena_reset(s);
}

static void flush_all(struct statsd *s)
{
	flush_series(s);
	send_pkt(s);
}

static int aggregate(struct statsd *s, const char *key, size_t keylen, size_t namelen, bool gauge,
		     double v)
{
	uint32_t h = hash_bytes(key, keylen), j;
	struct series *se;
	const char *copy;

	for (j = h & (s->nslots - 1); s->slots[j]; j = (j + 1) & (s->nslots - 1)) {
		se = &s->ser[s->slots[j] - 1];
		if (se->hash == h && se->keylen == keylen && !memcmp(se->key, key, keylen)) {
			se->value = gauge ? v : se->value + v;
			se->events++;
			s->table_events++;
			return 0;
		}
	}
	if (s->nser == s->max_series) {
		uint64_t sup = 0;

		s->early_flushes++;
		if (ig_ratelimit_ok(&s->rl_full, &sup))
			ig_warn("statsd series table full; sending early (raise max_series, or drop high-cardinality tags with a stage)",
				"backend=%s max_series=%u early_flushes=%llu suppressed=%llu",
				s->name, s->max_series, (unsigned long long)s->early_flushes,
				(unsigned long long)sup);
		flush_all(s);
	} else if (s->nser == s->ser_cap && grow(s) < 0) {
		s->st.dropped++;
		return -ENOMEM;
	}
	copy = arena_copy(s, key, keylen);
	if (!copy) {
		s->st.dropped++;
		return -ENOMEM;
	}
	se = &s->ser[s->nser];
	se->key = copy;
	se->keylen = (uint32_t)keylen;
	se->namelen = (uint32_t)namelen;
	se->hash = h;
	se->gauge = gauge;
	se->value = v;
	se->events = 1;
	s->table_events++;
	s->nser++;
	/* Slots were cleared if flush_all ran: search the free slot again. */
	for (j = h & (s->nslots - 1); s->slots[j]; j = (j + 1) & (s->nslots - 1))
		;
	s->slots[j] = s->nser;
	return 0;
}

/* ---- ops ---- */

static int statsd_write(void *state, const struct ig_metric *m)
{
	struct statsd *s = state;
	struct sb b = { .p = s->line, .cap = s->mtu };
	const char *type;
	size_t namelen = 0;
	char num[40];

	s->st.received++;
	switch (m->kind) {
	case IG_M_COUNTER:
		type = "|c";
		break;
	case IG_M_GAUGE:
		type = "|g";
		break;
	case IG_M_HISTOGRAM:
		if (s->flavor == FLAVOR_STATSD && m->value < 0) {
			s->st.dropped++; /* a timer sample cannot be negative */
			return -ERANGE;
		}
		type = s->flavor == FLAVOR_STATSD ? "|ms" : s->distribution ? "|d" : "|h";
		break;
	case IG_M_SET:
		type = "|s";
		break;
	default:
		s->st.dropped++;
		return -EINVAL;
	}
	if (m->kind != IG_M_SET && !isfinite(m->value)) {
		s->st.dropped++;
		return -EINVAL;
	}
	render_key(s, m, type, &b, &namelen);
	if (b.over) {
		too_big(s, b.p, b.len, 1);
		return -EMSGSIZE;
	}
	if (m->kind == IG_M_COUNTER || m->kind == IG_M_GAUGE)
		return aggregate(s, b.p, b.len, namelen, m->kind == IG_M_GAUGE, m->value);

	/* Histograms and sets: one line each, "<name>:<value><suffix>". The
	 * suffix moves right to make room for the value. */
	struct sb v = { .p = s->val, .cap = s->mtu };

	if (m->kind == IG_M_SET) {
		sb_sanitized(&v, m->set_member && *m->set_member ? m->set_member : "_", false);
		if (v.over) {
			too_big(s, b.p, b.len, 1);
			return -EMSGSIZE;
		}
	} else {
		sb_puts(&v, fmt_value(m->value, num, sizeof(num)));
	}
	if (b.len + 1 + v.len > s->mtu) {
		too_big(s, b.p, b.len, 1);
		return -EMSGSIZE;
	}
	memmove(s->line + namelen + 1 + v.len, s->line + namelen, b.len - namelen);
	s->line[namelen] = ':';
	memcpy(s->line + namelen + 1, s->val, v.len);
	pack(s, s->line, b.len + 1 + v.len, 1);
	return 0;
}

static void statsd_tick(void *state, uint64_t now_ns)
{
	struct statsd *s = state;

	late_refusal(s);
	if (now_ns - s->last_flush_ns < s->interval_ns)
		return;
	s->last_flush_ns = now_ns;
	flush_all(s);
}

static void statsd_flush(void *state)
{
	struct statsd *s = state;

	s->last_flush_ns = ig_mono_ns();
	flush_all(s);
}

static void statsd_stats(void *state, struct ig_backend_stats *st)
{
	struct statsd *s = state;

	*st = s->st;
	st->queued = s->table_events + s->pkt_events;
}

static void statsd_free(void *state)
{
	struct statsd *s = state;

	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	ig_strpool_free(&s->pool);
	free(s->ser);
	free(s->slots);
	free(s->pkt);
	free(s->line);
	free(s->val);
	free(s->prefix);
	free(s->address);
	free(s->name);
	free(s);
}

/* Splits "host:port" / "[v6]:port" into host and port. */
static int split_address(const char *a, char *host, size_t hlen, char *port, size_t plen,
			 struct ig_err *err)
{
	const char *colon, *h = a;
	size_t n;

	if (*a == '[') {
		const char *rb = strchr(a, ']');

		if (!rb || rb[1] != ':') {
			ig_err_add(err,
				   "address: '%.200s' is not [ipv6]:port; write it like [::1]:8125",
				   a);
			return -EINVAL;
		}
		h = a + 1;
		n = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon) {
			ig_err_add(
				err,
				"address: '%.200s' has no port; write it as host:port like 127.0.0.1:8125",
				a);
			return -EINVAL;
		}
		n = (size_t)(colon - a);
		if (memchr(a, ':', n)) {
			ig_err_add(
				err,
				"address: '%.200s': put an IPv6 address in brackets, like [::1]:8125",
				a);
			return -EINVAL;
		}
	}
	if (!n || n >= hlen) {
		ig_err_add(
			err,
			"address: '%.200s' has no usable host; write it as host:port like 127.0.0.1:8125",
			a);
		return -EINVAL;
	}
	memcpy(host, h, n);
	host[n] = '\0';
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 10);

	if (!colon[1] || *end || p == 0 || p > 65535 || strlen(colon + 1) >= plen) {
		ig_err_add(err, "address: '%.200s': the port must be a number from 1 to 65535", a);
		return -EINVAL;
	}
	snprintf(port, plen, "%lu", p);
	return 0;
}

static int open_socket(struct statsd *s, const char *address, struct ig_err *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_DGRAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	char host[256], port[8];
	int rc, e = 0, sndbuf = 1 << 20;

	if ((rc = split_address(address, host, sizeof(host), port, sizeof(port), err)) < 0)
		return rc;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		ig_err_add(
			err,
			"address: cannot resolve '%.200s': %s; check the host name (it is resolved once, at start)",
			host, gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		s->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd < 0) {
			e = errno;
			continue;
		}
		if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		e = errno;
		close(s->fd);
		s->fd = -1;
	}
	freeaddrinfo(res);
	if (s->fd < 0) {
		ig_err_add(err, "address: cannot open a UDP socket to '%.200s': %s", address,
			   strerror(e ? e : EADDRNOTAVAIL));
		return -(e ? e : EADDRNOTAVAIL);
	}
	/* A flush sends many datagrams at once: room for them (best effort). */
	setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return 0;
}

static int statsd_init(void **state, const void *conf, const char *name, struct ig_err *err)
{
	const struct statsd_conf *c = conf;
	struct statsd *s;
	int rc = 0, style = c->tag_style;

	*state = NULL;
	if (style == TAGS_AUTO)
		style = c->flavor == FLAVOR_DOGSTATSD ? TAGS_DOGSTATSD : TAGS_NONE;
	if (style == TAGS_DOGSTATSD && c->flavor != FLAVOR_DOGSTATSD) {
		ig_err_add(
			err,
			"tag_style: 'dogstatsd' needs 'flavor: dogstatsd' (plain StatsD does not read tags); use none or graphite");
		rc = -EINVAL;
	}
	if (c->distribution && c->flavor != FLAVOR_DOGSTATSD) {
		ig_err_add(
			err,
			"distribution: only DogStatsD has distributions; set 'flavor: dogstatsd' or remove it");
		rc = -EINVAL;
	}
	if (rc < 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->flavor = c->flavor;
	s->tag_style = style;
	s->distribution = c->distribution;
	s->mtu = (size_t)c->mtu;
	s->interval_ns = c->flush_interval_ns;
	s->last_flush_ns = ig_mono_ns();
	s->max_series = (uint32_t)c->max_series;
	s->ser_cap = s->max_series < 256 ? s->max_series : 256;
	s->nslots = 16;
	while (s->nslots < 2 * s->ser_cap)
		s->nslots *= 2;
	s->rl_send = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	s->rl_full = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	s->rl_big = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	s->name = strdup(name ? name : "statsd");
	s->address = strdup(c->address ? c->address : "");
	s->pkt = malloc(s->mtu);
	s->line_cap = s->mtu + 64;
	s->line = malloc(s->line_cap);
	s->val = malloc(s->mtu);
	s->ser = malloc((size_t)s->ser_cap * sizeof(*s->ser));
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	if (c->prefix) {
		/* The prefix is a name too: same sanitising, but dots stay. */
		struct sb b = { .p = malloc(strlen(c->prefix) + 1), .cap = strlen(c->prefix) };

		if (b.p) {
			sb_sanitized(&b, c->prefix, false);
			b.p[b.len] = '\0';
		}
		s->prefix = b.p;
	} else {
		s->prefix = strdup("");
	}
	if (!s->name || !s->address || !s->pkt || !s->line || !s->val || !s->ser || !s->slots ||
	    !s->prefix) {
		statsd_free(s);
		return -ENOMEM;
	}
	rc = open_socket(s, s->address, err);
	if (rc < 0) {
		statsd_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

const struct ig_backend_ops ig_backend_statsd = {
	.type = "statsd",
	.summary = "Sends metrics to StatsD or DogStatsD over UDP; counters and gauges are "
		   "aggregated per series for each flush_interval.",
	.opts = statsd_opts,
	.conf_size = sizeof(struct statsd_conf),
	.init = statsd_init,
	.write = statsd_write,
	.tick = statsd_tick,
	.flush = statsd_flush,
	.stats = statsd_stats,
	.free = statsd_free,
};
