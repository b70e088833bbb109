/* probe_tcp: the TCP lifecycle probe, user side (kernel side:
 * bpf/tcp.bpf.c, shared event: bpf/tcp.h, reference: docs/probes.md).
 *
 * open() writes the configuration into the skeleton's .rodata
 * (include_failed, whether accept(2) is hooked, wakeup threshold), sizes the
 * ring buffer from agent.ringbuf_bytes, enables one variant of the state
 * program (tp_btf when the kernel can run it, the sock:inet_sock_set_state
 * tracepoint otherwise) and the accept(2) exit tracepoints when tracefs has
 * them, loads and attaches. consume() turns each event into a "tcp.connect",
 * "tcp.accept", "tcp.close" or "tcp.connect_failed" record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_util.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "tcp.h"
#include "tcp.skel.h"

#define RINGBUF_DEFAULT (8 * 1024 * 1024)
#define EVENT_RING_SIZE ((sizeof(struct ig_tcp_event) + 8 + 7) & ~7ULL)

struct tcp_state {
	struct tcp_bpf *skel;
	struct ring_buffer *rb;
	struct ig_sink sink;
	struct ig_record *rec;
	uint64_t events;
	uint64_t malformed;
	struct ig_ratelimit malformed_rl;
	bool btf_variant;
	bool accept_hooked;
};

static const char *const kinds[] = {
	[IG_TCP_CONNECT] = "tcp.connect",
	[IG_TCP_ACCEPT] = "tcp.accept",
	[IG_TCP_CLOSE] = "tcp.close",
	[IG_TCP_CONNECT_FAILED] = "tcp.connect_failed",
};

static const char *const owners[] = {
	[IG_TCP_OWNER_CONNECT] = "connect",
	[IG_TCP_OWNER_ACCEPT] = "accept",
	[IG_TCP_OWNER_LISTENER] = "listener",
	[IG_TCP_OWNER_UNKNOWN] = "unknown",
};

static bool v4mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return memcmp(a, pfx, sizeof(pfx)) == 0;
}

static bool v6unspec(const uint8_t a[16])
{
	static const uint8_t zero[16];
	return memcmp(a, zero, sizeof(zero)) == 0;
}

static void add_addr(struct ig_record *r, const char *key, int family, const uint8_t *a)
{
	char buf[INET6_ADDRSTRLEN];

	if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, a, buf, sizeof(buf)))
		buf[0] = 0;
	ig_record_add_str(r, key, buf, strlen(buf));
}

static void build_record(struct tcp_state *st, const struct ig_tcp_event *ev)
{
	struct ig_record *r = st->rec;

	ig_record_reset(r);
	r->kind = kinds[ev->type];
	r->probe = "tcp";
	r->ts_ns = ig_mono_to_wall(ev->ts_ns);
	r->pid = ev->pid;
	r->tid = ev->tid;
	r->ppid = ev->ppid;
	r->uid = ev->uid;
	r->gid = ev->gid;
	r->cgroup_id = ev->cgroup_id;
	r->comm = ig_record_strndup(r, ev->comm, strnlen(ev->comm, sizeof(ev->comm)));

	/* A dual-stack socket talking IPv4 has IPv4-mapped addresses
	 * (::ffff:a.b.c.d): report them as the IPv4 they are. */
	int family = ev->family;
	const uint8_t *sa = ev->saddr, *da = ev->daddr;
	if (family == 6 && v4mapped(da) && (v4mapped(sa) || v6unspec(sa))) {
		family = 4;
		sa = v6unspec(sa) ? sa : sa + 12;
		da += 12;
	}
	ig_record_add_uint(r, "family", (uint64_t)family);
	add_addr(r, "saddr", family, sa);
	add_addr(r, "daddr", family, da);
	ig_record_add_uint(r, "sport", ev->sport);
	ig_record_add_uint(r, "dport", ev->dport);
	const char *side = ev->active ? "client" : "server";
	ig_record_add_str(r, "side", side, strlen(side));
	const char *ow =
		ev->owner >= 1 && ev->owner <= IG_TCP_OWNER_UNKNOWN ? owners[ev->owner] : "unknown";
	ig_record_add_str(r, "owner", ow, strlen(ow));
	if (ev->type == IG_TCP_CLOSE) {
		ig_record_add_uint(r, "duration_ns", ev->duration_ns);
		ig_record_add_uint(r, "bytes_sent", ev->bytes_sent);
		ig_record_add_uint(r, "bytes_received", ev->bytes_received);
	}
	if (ev->type == IG_TCP_CONNECT_FAILED) {
		const char *name = ev->error > 0 ? strerrorname_np(ev->error) : "closed";
		char buf[24];
		if (!name) {
			snprintf(buf, sizeof(buf), "E%d", ev->error);
			name = buf;
		}
		ig_record_add_str(r, "error", name, strlen(name));
	}
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct tcp_state *st = ctx;
	const struct ig_tcp_event *ev = data;

	if (size < sizeof(*ev) || ev->type < IG_TCP_CONNECT || ev->type > IG_TCP_CONNECT_FAILED ||
	    (ev->family != 4 && ev->family != 6)) {
		uint64_t suppressed = 0;
		st->malformed++;
		if (ig_ratelimit_ok(&st->malformed_rl, &suppressed))
			ig_warn("tcp probe: malformed event from the kernel side; this is a bug, "
				"please report it",
				"size=%zu suppressed=%llu", size, (unsigned long long)suppressed);
		return 0;
	}
	st->events++;
	build_record(st, ev);
	st->sink.emit(st->sink.ctx, st->rec);
	return 0;
}

static uint64_t ringbuf_size(uint64_t want)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t sz = page > 0 ? (uint64_t)page : 4096;

	if (want == 0)
		want = RINGBUF_DEFAULT;
	while (sz < want && sz < (1ULL << 30))
		sz <<= 1;
	return sz;
}

/* tp_btf by default: a raw tracepoint program is called with the
 * tracepoint's arguments, while a classic tracepoint first builds a perf
 * record (docs/probes.md). The classic tracepoint when tp_btf is not
 * available. INGRAIN_TCP_VARIANT=tracepoint|tp_btf overrides (tests). */
static int choose_variant(bool *btf, struct ig_err *err)
{
	const char *v = getenv("INGRAIN_TCP_VARIANT");

	if (v && strcmp(v, "tracepoint") == 0) {
		*btf = false;
		if (ig_bpf_has_tracepoint("sock", "inet_sock_set_state"))
			return 0;
		ig_err_add(err, "INGRAIN_TCP_VARIANT=tracepoint but tracefs has no "
				"sock/inet_sock_set_state: mount tracefs or unset it");
		return -ENOENT;
	}
	if (v && strcmp(v, "tp_btf") == 0) {
		*btf = true;
		if (ig_bpf_has_tp_btf())
			return 0;
		ig_err_add(err, "INGRAIN_TCP_VARIANT=tp_btf but this kernel cannot attach "
				"tp_btf programs: unset it to use the tracepoint");
		return -EOPNOTSUPP;
	}
	if (v && *v) {
		ig_err_add(err,
			   "INGRAIN_TCP_VARIANT='%s' is not a variant: use tracepoint or tp_btf, "
			   "or unset it",
			   v);
		return -EINVAL;
	}
	*btf = ig_bpf_has_tp_btf();
	if (*btf || ig_bpf_has_tracepoint("sock", "inet_sock_set_state"))
		return 0;
	ig_err_add(err, "probes.tcp: the kernel can run neither tp_btf programs nor the "
			"sock:inet_sock_set_state tracepoint (is tracefs mounted at "
			"/sys/kernel/tracing? set agent.mount_tracefs: true)");
	return -ENOENT;
}

static void select_programs(struct tcp_state *st)
{
	struct tcp_bpf *s = st->skel;

	bpf_program__set_autoload(s->progs.ig_tcp_state_btf, st->btf_variant);
	bpf_program__set_autoload(s->progs.ig_tcp_state_tp, !st->btf_variant);
	bool a4 = ig_bpf_has_tracepoint("syscalls", "sys_exit_accept4");
	bool a = ig_bpf_has_tracepoint("syscalls", "sys_exit_accept");
	bpf_program__set_autoload(s->progs.ig_tcp_accept4_exit, a4);
	bpf_program__set_autoload(s->progs.ig_tcp_accept_exit, a);
	st->accept_hooked = a4;
	if (!a4)
		ig_warn("tcp probe: no syscalls/sys_exit_accept4 tracepoint (tracefs not mounted?); "
			"tcp.accept is reported at the handshake with the listening process as owner",
			NULL);
}

static void tcp_close(void *state);

static int tcp_open(void **state, const void *conf, const struct ig_agent_conf *ac,
		    const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_tcp_conf *tc = conf;
	struct tcp_state *st = calloc(1, sizeof(*st));
	int rv;

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->malformed_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	st->rec = calloc(1, sizeof(*st->rec));
	if (!st->rec) {
		rv = -ENOMEM;
		goto fail;
	}
	ig_bpf_log_init();

	st->skel = tcp_bpf__open();
	if (!st->skel) {
		rv = errno ? -errno : -EINVAL;
		ig_err_add(err, "probes.tcp: cannot open the BPF object (%s)", strerror(-rv));
		goto fail;
	}
	st->skel->rodata->ig_include_failed = tc->include_failed;
	uint64_t rbsz = ringbuf_size(ac->ringbuf_bytes);
	if (ac->wakeup_records) {
		uint64_t thr = ac->wakeup_records * EVENT_RING_SIZE;
		st->skel->rodata->ig_wakeup_bytes = thr < rbsz / 2 ? thr : rbsz / 2;
	}
	if ((rv = bpf_map__set_max_entries(st->skel->maps.events, (uint32_t)rbsz)) < 0) {
		ig_err_add(err, "agent.ringbuf_bytes: cannot use %llu bytes (%s)",
			   (unsigned long long)rbsz, strerror(-rv));
		goto fail;
	}
	if ((rv = choose_variant(&st->btf_variant, err)) < 0)
		goto fail;
	select_programs(st);
	st->skel->rodata->ig_accept_hooked = st->accept_hooked;

	if ((rv = tcp_bpf__load(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.tcp: the kernel refused the BPF programs (%s); the log above "
			   "has the verifier's reason. ingrain needs a BTF-enabled kernel and root "
			   "(or CAP_BPF + CAP_PERFMON)",
			   strerror(-rv));
		goto fail;
	}
	if ((rv = tcp_bpf__attach(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.tcp: attaching the programs failed (%s): check that tracefs is "
			   "mounted (agent.mount_tracefs) and that the agent runs as root",
			   strerror(-rv));
		goto fail;
	}
	st->rb = ring_buffer__new(bpf_map__fd(st->skel->maps.events), handle_event, st, NULL);
	if (!st->rb) {
		rv = errno ? -errno : -ENOMEM;
		ig_err_add(err, "probes.tcp: cannot map the ring buffer (%s)", strerror(-rv));
		goto fail;
	}
	ig_info("tcp probe attached",
		"variant=%s accept_hooked=%d ringbuf_bytes=%llu wakeup_bytes=%llu "
		"include_failed=%d",
		st->btf_variant ? "tp_btf" : "tracepoint", st->accept_hooked,
		(unsigned long long)rbsz, (unsigned long long)st->skel->rodata->ig_wakeup_bytes,
		tc->include_failed);
	*state = st;
	return 0;
fail:
	tcp_close(st);
	return rv;
}

static int tcp_epoll_fd(void *state)
{
	struct tcp_state *st = state;

	return ring_buffer__epoll_fd(st->rb);
}

static int tcp_consume(void *state)
{
	struct tcp_state *st = state;

	return ring_buffer__consume(st->rb);
}

static void tcp_stats(void *state, struct ig_probe_stats *out)
{
	struct tcp_state *st = state;

	memset(out, 0, sizeof(*out));
	out->events = st->events;
	out->variant = st->btf_variant ? "tp_btf" : "tracepoint";
	ig_bpf_read_lost(bpf_map__fd(st->skel->maps.lost), &out->ringbuf_full, &out->other_lost);
	/* State changes the kernel did not run the program for (a classic
	 * tracepoint program interrupted by a softirq that changes a TCP
	 * state on the same CPU): each may be a lost event. */
	out->other_lost += ig_bpf_prog_misses(st->skel->obj);
}

static void tcp_close(void *state)
{
	struct tcp_state *st = state;

	if (!st)
		return;
	ring_buffer__free(st->rb);
	tcp_bpf__destroy(st->skel);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_tcp_ops = {
	.name = "tcp",
	.kind = IG_PROBE_TCP,
	.open = tcp_open,
	.epoll_fd = tcp_epoll_fd,
	.consume = tcp_consume,
	.stats = tcp_stats,
	.close = tcp_close,
};
