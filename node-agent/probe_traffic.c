/* probe_traffic: the traffic-volume probe, user side (kernel side:
 * bpf/traffic.bpf.c, shared table layout: bpf/traffic.h, reference:
 * docs/probes.md).
 *
 * There is no ring buffer: the kernel adds to a per-CPU LRU hash, and this
 * file reads the whole table every probes.traffic.interval from consume()
 * (which the agent calls at least every agent.poll_interval; epoll_fd() is
 * -1). Each pass walks the kernel table, sums the CPUs of every key and
 * compares with the totals of the previous pass, kept here in an
 * open-addressing table rebuilt on every pass (keys gone from the kernel
 * table drop out). A key with a changed total becomes one "net.traffic"
 * record carrying the difference. An entry's creation time (born_ns) tells
 * a key that was evicted and re-created from one that kept counting: the
 * former reports its whole new total.
 *
 * Evictions: the kernel counts inserts; inserts minus the keys a pass found
 * is how many were evicted (LRU, table full). Each eviction may lose the
 * bytes counted since the previous read; they are reported as other_lost
 * and logged. close() detaches first, then reads a last time, so a
 * shutdown or reload does not lose the partial interval.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_util.h"
#include "cgroup_path.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "traffic.h"
#include "ig_hash.h"
#include "traffic.skel.h"

enum method { M_SOCK_BTF, M_SOCK_TP, M_CGROUP_SKB };
static const char *const method_names[] = { "sock_tp_btf", "sock_tracepoint", "cgroup_skb" };

struct prev {
	struct ig_traffic_key key;
	uint64_t bytes, packets, born_ns;
	bool used;
};

struct table {
	struct prev *v;
	size_t cap, n; /* cap: a power of two */
};

struct traffic_state {
	struct traffic_bpf *skel;
	struct ig_sink sink;
	struct ig_record *rec;
	enum method method;
	bool per_remote, loaded;
	int cgroup_fd;
	uint64_t interval_ns, last_read_ns;
	struct table prev;
	int ncpu;
	size_t val_stride; /* per-CPU value size as the kernel lays it out */
	void *vals; /* ncpu * val_stride */
	uint64_t records, evictions, failed, passes;
	uint64_t last_warned_evictions;
	struct ig_ratelimit evict_rl;
};

static uint64_t key_hash(const struct ig_traffic_key *k)
{
	uint64_t h = ig_fnv64(IG_FNV64_INIT, k, sizeof(*k));

	return h ^ (h >> 29);
}

static int table_init(struct table *t, size_t want)
{
	size_t cap = 64;

	while (cap < want * 2)
		cap <<= 1;
	t->v = calloc(cap, sizeof(*t->v));
	if (!t->v)
		return -ENOMEM;
	t->cap = cap;
	t->n = 0;
	return 0;
}

static void table_free(struct table *t)
{
	free(t->v);
	t->v = NULL;
	t->cap = t->n = 0;
}

/* The slot holding k, or the empty slot where it would go. */
static struct prev *table_slot(const struct table *t, const struct ig_traffic_key *k)
{
	size_t mask = t->cap - 1;

	for (size_t i = key_hash(k) & mask;; i = (i + 1) & mask) {
		struct prev *p = &t->v[i];
		if (!p->used || memcmp(&p->key, k, sizeof(*k)) == 0)
			return p;
	}
}

/* Inserts (the table never holds more than half its slots: grows first). */
static struct prev *table_put(struct table *t, const struct ig_traffic_key *k)
{
	if ((t->n + 1) * 2 > t->cap) {
		struct table g;
		if (table_init(&g, t->cap) < 0)
			return NULL;
		for (size_t i = 0; i < t->cap; i++)
			if (t->v[i].used) {
				*table_slot(&g, &t->v[i].key) = t->v[i];
				g.n++;
			}
		table_free(t);
		*t = g;
	}
	struct prev *p = table_slot(t, k);
	if (!p->used) {
		memset(p, 0, sizeof(*p));
		p->key = *k;
		p->used = true;
		t->n++;
	}
	return p;
}

static uint64_t counter_sum(struct traffic_state *st, uint32_t idx)
{
	uint64_t sum = 0;
	uint64_t *vals = calloc((size_t)st->ncpu, sizeof(*vals));

	if (!vals)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(st->skel->maps.counters), &idx, vals) == 0)
		for (int c = 0; c < st->ncpu; c++)
			sum += vals[c];
	free(vals);
	return sum;
}

static void emit(struct traffic_state *st, const struct ig_traffic_key *k,
		 const struct ig_traffic_val *meta, uint64_t bytes, uint64_t packets,
		 uint64_t now_wall, uint64_t span_ns)
{
	struct ig_record *r = st->rec;
	char buf[INET6_ADDRSTRLEN];

	ig_record_reset(r);
	r->kind = "net.traffic";
	r->probe = "traffic";
	r->ts_ns = now_wall;
	r->pid = k->pid;
	r->cgroup_id = k->cgroup_id;
	if (meta) {
		r->uid = meta->uid;
		r->gid = meta->gid;
		r->ppid = meta->ppid;
		r->comm = ig_record_strndup(r, meta->comm, strnlen(meta->comm, sizeof(meta->comm)));
	}
	const char *proto = k->proto == 6 ? "tcp" : "udp";
	const char *dir = k->dir == IG_TRAFFIC_TX ? "tx" : "rx";
	ig_record_add_str(r, "protocol", proto, strlen(proto));
	ig_record_add_str(r, "direction", dir, strlen(dir));
	ig_record_add_uint(r, "bytes", bytes);
	ig_record_add_uint(r, "packets", packets);
	ig_record_add_uint(r, "interval_ns", span_ns);
	const char *m = st->method == M_CGROUP_SKB ? "cgroup_skb" : "sock";
	ig_record_add_str(r, "method", m, strlen(m));
	if (k->family == 4 || k->family == 6) {
		static const uint8_t zero[16];
		int fam = k->family;
		const uint8_t *a = k->raddr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (fam == 6 && memcmp(a, mapped, sizeof(mapped)) == 0) {
			fam = 4;
			a += 12;
		}
		/* An unconnected UDP socket has no peer: the remote is unknown. */
		if (memcmp(a, zero, fam == 4 ? 4 : 16) != 0 || k->rport != 0) {
			if (!inet_ntop(fam == 6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf)))
				buf[0] = 0;
			ig_record_add_uint(r, "family", (uint64_t)fam);
			ig_record_add_str(r, "remote_addr", buf, strlen(buf));
			ig_record_add_uint(r, "remote_port", k->rport);
		}
	}
	st->records++;
	st->sink.emit(st->sink.ctx, r);
}

/* One pass over the kernel table: emits the differences, returns how many
 * records (or a negative errno when the table could not be read at all). */
static int read_pass(struct traffic_state *st)
{
	int fd = bpf_map__fd(st->skel->maps.flows);
	uint64_t max = bpf_map__max_entries(st->skel->maps.flows);
	uint64_t inserts = counter_sum(st, IG_TRAFFIC_CNT_INSERTS);
	uint64_t now = ig_mono_ns();
	uint64_t now_wall = ig_wall_ns();
	uint64_t span = st->last_read_ns ? now - st->last_read_ns : 0;
	struct ig_traffic_key key, next;
	struct table cur;
	int emitted = 0;
	bool first = true;

	if (table_init(&cur, st->prev.n + 16) < 0)
		return -ENOMEM;
	/* A key evicted between two get_next_key calls restarts the walk from
	 * the first key; the bound keeps a churning table from holding us. */
	for (uint64_t steps = 0; steps < 4 * max + 16; steps++) {
		if (bpf_map_get_next_key(fd, first ? NULL : &key, &next) != 0)
			break;
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, st->vals) != 0)
			continue; /* evicted meanwhile */
		struct prev *c = table_slot(&cur, &key);
		if (c->used)
			continue; /* seen before a restart */
		uint64_t bytes = 0, packets = 0, born = 0;
		const struct ig_traffic_val *meta = NULL;
		for (int cpu = 0; cpu < st->ncpu; cpu++) {
			const struct ig_traffic_val *v =
				(const void *)((char *)st->vals + (size_t)cpu * st->val_stride);
			bytes += v->bytes;
			packets += v->packets;
			if (v->born_ns > born) {
				born = v->born_ns;
				meta = v;
			}
		}
		c = table_put(&cur, &key);
		if (!c)
			break;
		c->bytes = bytes;
		c->packets = packets;
		c->born_ns = born;

		uint64_t db = bytes, dp = packets;
		struct prev *p = st->prev.v ? table_slot(&st->prev, &key) : NULL;
		if (p && p->used && p->born_ns == born && bytes >= p->bytes &&
		    packets >= p->packets) {
			db = bytes - p->bytes;
			dp = packets - p->packets;
		}
		if (db || dp) {
			emit(st, &key, meta, db, dp, now_wall, span);
			emitted++;
		}
	}
	uint64_t live = cur.n;
	table_free(&st->prev);
	st->prev = cur;
	st->last_read_ns = now;
	st->passes++;

	if (inserts > live && inserts - live > st->evictions)
		st->evictions = inserts - live;
	st->failed = counter_sum(st, IG_TRAFFIC_CNT_FAILED);
	if (st->evictions > st->last_warned_evictions) {
		uint64_t sup = 0;
		if (ig_ratelimit_ok(&st->evict_rl, &sup)) {
			ig_warn("traffic probe: flow table full, entries evicted (bytes counted since "
				"the last read of an evicted entry are lost): raise "
				"probes.traffic.max_entries or shorten probes.traffic.interval",
				"evictions=%llu max_entries=%llu live=%llu",
				(unsigned long long)st->evictions, (unsigned long long)max,
				(unsigned long long)live);
			st->last_warned_evictions = st->evictions;
		}
	}
	return emitted;
}

/* sock (tp_btf, else tracepoint) unless asked for cgroup_skb or neither
 * sock variant can run; INGRAIN_TRAFFIC_VARIANT=tracepoint|tp_btf picks the
 * sock variant (tests, benchmarks). */
static int choose_method(const struct ig_traffic_conf *tc, enum method *m, struct ig_err *err)
{
	const char *v = getenv("INGRAIN_TRAFFIC_VARIANT");
	bool tp = ig_bpf_has_tracepoint("sock", "sock_send_length") &&
		  ig_bpf_has_tracepoint("sock", "sock_recv_length");
	/* The sock tracepoints are 6.2+: older kernels count with cgroup_skb. */
	bool btf = ig_bpf_has_tp_btf() && ig_bpf_has_tp_btf_event("sock_send_length") &&
		   ig_bpf_has_tp_btf_event("sock_recv_length");

	if (tc->method == 2) {
		*m = M_CGROUP_SKB;
		return 0;
	}
	if (v && strcmp(v, "tracepoint") == 0) {
		*m = M_SOCK_TP;
		if (tp)
			return 0;
		ig_err_add(err, "INGRAIN_TRAFFIC_VARIANT=tracepoint but tracefs has no "
				"sock/sock_send_length: mount tracefs or unset it");
		return -ENOENT;
	}
	if (v && strcmp(v, "tp_btf") == 0) {
		*m = M_SOCK_BTF;
		if (btf)
			return 0;
		ig_err_add(err, "INGRAIN_TRAFFIC_VARIANT=tp_btf but this kernel cannot attach "
				"tp_btf programs to sock_send_length (kernel 6.2+): unset it");
		return -EOPNOTSUPP;
	}
	if (v && *v) {
		ig_err_add(err,
			   "INGRAIN_TRAFFIC_VARIANT='%s' is not a variant: use tracepoint or "
			   "tp_btf, or unset it",
			   v);
		return -EINVAL;
	}
	if (btf) {
		*m = M_SOCK_BTF;
		return 0;
	}
	if (tp) {
		*m = M_SOCK_TP;
		return 0;
	}
	if (tc->method == 0) {
		ig_warn("traffic probe: no sock tracepoints (sock_send_length, kernel 6.2+); "
			"counting with cgroup_skb (IP packet "
			"bytes per cgroup, no process)",
			NULL);
		*m = M_CGROUP_SKB;
		return 0;
	}
	ig_err_add(err, "probes.traffic.method is sock_tracepoint but the kernel can run neither "
			"tp_btf programs nor the sock:sock_send_length tracepoint: mount tracefs "
			"(agent.mount_tracefs: true) or use method: cgroup_skb");
	return -ENOENT;
}

static int attach_cgroup(struct traffic_state *st, const struct ig_agent_conf *ac,
			 struct ig_err *err)
{
	char root[PATH_MAX];
	bool cg2 = false;
	int rv = ig_cgroup_root_detect(ac->cgroup_root, root, sizeof(root), &cg2);

	if (rv < 0 || !cg2) {
		ig_err_add(err,
			   "probes.traffic.method cgroup_skb needs the cgroup v2 hierarchy; "
			   "agent.cgroup_root '%s' %s: set it to the cgroup2 mount (e.g. "
			   "/sys/fs/cgroup or /sys/fs/cgroup/unified)",
			   ac->cgroup_root ? ac->cgroup_root : "auto",
			   rv < 0 ? strerror(-rv) : "is not a cgroup2 mount");
		return rv < 0 ? rv : -ENOTSUP;
	}
	st->cgroup_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->cgroup_fd < 0) {
		rv = -errno;
		ig_err_add(err, "probes.traffic: cannot open %s (%s)", root, strerror(-rv));
		return rv;
	}
	struct bpf_link *e =
		bpf_program__attach_cgroup(st->skel->progs.ig_traffic_skb_egress, st->cgroup_fd);
	if (!e) {
		rv = errno ? -errno : -EINVAL;
		goto fail;
	}
	st->skel->links.ig_traffic_skb_egress = e;
	struct bpf_link *i =
		bpf_program__attach_cgroup(st->skel->progs.ig_traffic_skb_ingress, st->cgroup_fd);
	if (!i) {
		rv = errno ? -errno : -EINVAL;
		goto fail;
	}
	st->skel->links.ig_traffic_skb_ingress = i;
	return 0;
fail:
	ig_err_add(err,
		   "probes.traffic: attaching cgroup_skb programs to %s failed (%s): the agent "
		   "must run as root in the host cgroup namespace",
		   root, strerror(-rv));
	return rv;
}

static void traffic_close(void *state);

static int traffic_open(void **state, const void *conf, const struct ig_agent_conf *ac,
			const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_traffic_conf *tc = conf;
	struct traffic_state *st = calloc(1, sizeof(*st));
	int rv;

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->cgroup_fd = -1;
	st->per_remote = tc->per_remote;
	st->interval_ns = tc->interval_ns ? tc->interval_ns : 10 * IG_NSEC_PER_SEC;
	st->evict_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	st->ncpu = libbpf_num_possible_cpus();
	st->val_stride = (sizeof(struct ig_traffic_val) + 7) & ~(size_t)7;
	st->rec = calloc(1, sizeof(*st->rec));
	if (st->ncpu <= 0) {
		rv = st->ncpu < 0 ? st->ncpu : -EINVAL;
		ig_err_add(err, "probes.traffic: cannot count the possible CPUs (%s)",
			   strerror(-rv));
		goto fail;
	}
	st->vals = calloc((size_t)st->ncpu, st->val_stride);
	if (!st->rec || !st->vals) {
		rv = -ENOMEM;
		goto fail;
	}
	if (tc->max_entries < 64 || tc->max_entries > (1u << 22)) {
		ig_err_add(err,
			   "probes.traffic.max_entries is %llu: use a value from 64 to 4194304",
			   (unsigned long long)tc->max_entries);
		rv = -EINVAL;
		goto fail;
	}
	ig_bpf_log_init();
	if ((rv = choose_method(tc, &st->method, err)) < 0)
		goto fail;

	st->skel = traffic_bpf__open();
	if (!st->skel) {
		rv = errno ? -errno : -EINVAL;
		ig_err_add(err, "probes.traffic: cannot open the BPF object (%s)", strerror(-rv));
		goto fail;
	}
	st->skel->rodata->ig_per_remote = tc->per_remote;
	if ((rv = bpf_map__set_max_entries(st->skel->maps.flows, (uint32_t)tc->max_entries)) < 0) {
		ig_err_add(err, "probes.traffic.max_entries: cannot use %llu (%s)",
			   (unsigned long long)tc->max_entries, strerror(-rv));
		goto fail;
	}
	struct traffic_bpf *s = st->skel;
	bpf_program__set_autoload(s->progs.ig_traffic_send_btf, st->method == M_SOCK_BTF);
	bpf_program__set_autoload(s->progs.ig_traffic_recv_btf, st->method == M_SOCK_BTF);
	bpf_program__set_autoload(s->progs.ig_traffic_send_tp, st->method == M_SOCK_TP);
	bpf_program__set_autoload(s->progs.ig_traffic_recv_tp, st->method == M_SOCK_TP);
	bpf_program__set_autoload(s->progs.ig_traffic_skb_egress, st->method == M_CGROUP_SKB);
	bpf_program__set_autoload(s->progs.ig_traffic_skb_ingress, st->method == M_CGROUP_SKB);

	if ((rv = traffic_bpf__load(s)) < 0) {
		ig_err_add(
			err,
			"probes.traffic: the kernel refused the BPF programs (%s); the log "
			"above has the verifier's reason. ingrain needs a BTF-enabled kernel and "
			"root (or CAP_BPF + CAP_PERFMON)",
			strerror(-rv));
		goto fail;
	}
	st->loaded = true;
	if (st->method == M_CGROUP_SKB) {
		if ((rv = attach_cgroup(st, ac, err)) < 0)
			goto fail;
	} else if ((rv = traffic_bpf__attach(s)) < 0) {
		ig_err_add(err,
			   "probes.traffic: attaching to the sock tracepoints failed (%s): check "
			   "that tracefs is mounted (agent.mount_tracefs) and that the agent runs "
			   "as root",
			   strerror(-rv));
		goto fail;
	}
	if ((rv = table_init(&st->prev, 64)) < 0)
		goto fail;
	st->last_read_ns = ig_mono_ns();
	ig_info("traffic probe attached",
		"method=%s interval_ms=%llu max_entries=%llu per_remote=%d",
		method_names[st->method], (unsigned long long)(st->interval_ns / IG_NSEC_PER_MSEC),
		(unsigned long long)tc->max_entries, tc->per_remote);
	*state = st;
	return 0;
fail:
	st->loaded = false; /* nothing to flush */
	traffic_close(st);
	return rv;
}

static int traffic_epoll_fd(void *state)
{
	(void)state;
	return -1; /* no ring buffer: consume() reads on its interval */
}

static int traffic_consume(void *state)
{
	struct traffic_state *st = state;

	if (ig_mono_ns() - st->last_read_ns < st->interval_ns)
		return 0;
	return read_pass(st);
}

static void traffic_stats(void *state, struct ig_probe_stats *out)
{
	struct traffic_state *st = state;

	memset(out, 0, sizeof(*out));
	out->events = st->records;
	out->variant = method_names[st->method];
	/* Skipped program runs (see ig_bpf_prog_misses) are uncounted bytes. */
	out->other_lost = st->evictions + st->failed + ig_bpf_prog_misses(st->skel->obj);
}

static void traffic_close(void *state)
{
	struct traffic_state *st = state;

	if (!st)
		return;
	if (st->loaded) {
		/* Detach, then report what was counted since the last pass. */
		traffic_bpf__detach(st->skel);
		read_pass(st);
	}
	traffic_bpf__destroy(st->skel);
	if (st->cgroup_fd >= 0)
		close(st->cgroup_fd);
	table_free(&st->prev);
	free(st->vals);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_traffic_ops = {
	.name = "traffic",
	.kind = IG_PROBE_TRAFFIC,
	.open = traffic_open,
	.epoll_fd = traffic_epoll_fd,
	.consume = traffic_consume,
	.stats = traffic_stats,
	.close = traffic_close,
};
