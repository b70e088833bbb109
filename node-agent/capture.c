/* capture: the payload capture layer, user side (see capture.h and
 * docs/capture.md; kernel side bpf/capture.bpf.c).
 *
 * One instance per process (the kernel object is shared by every payload
 * probe, so the instance is too: `the_capture`, reference-counted by
 * registration). Each ring-buffer event is dispatched to the client of its
 * classifier: UDP datagrams directly, TCP payload through the client's
 * reassembler (reasm.c). The per-stream user area holds the flow's
 * metadata as of its latest event. Owner events (accepted sockets whose
 * process became known on their first send/recv) go into a small
 * cookie -> owner table, used for events stamped before the owner was
 * known.
 */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_util.h"
#include "capture.skel.h"
#include "capture_event.h"
#include "cgroup_path.h"
#include "ig_log.h"
#include "ig_time.h"
#include "reasm.h"

#define RINGBUF_DEFAULT (8u << 20)
#define OWNERS 4096 /* cookie -> owner slots (direct-mapped: a collision replaces) */

struct owner {
	uint64_t cookie;
	uint32_t pid, tid, uid, gid, ppid;
	char comm[16];
};

struct client {
	bool used;
	struct ig_cap_client c;
	struct ig_reasm *reasm;
	struct ig_cap_stats st; /* user-side counters */
	uint64_t kbase[IG_CAP_CNT__COUNT]; /* kernel counters at registration */
};

struct ig_capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	int cgroup_fd;
	int refs;
	bool tp_ok; /* the send/recv owner programs are loaded (tp_btf works) */
	int tp_wanted; /* clients that asked for them */
	struct client cl[IG_CAP__COUNT];
	struct owner owners[OWNERS];
	int ncpu;
	uint64_t last_expire_ns;
	uint64_t unclaimed; /* events of a classifier nobody registered */
};

static struct ig_capture *the_capture;

const char *ig_cap_addr_str(int family, const uint8_t addr[16], char *buf, size_t cap)
{
	if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)cap))
		snprintf(buf, cap, "?");
	return buf;
}

bool ig_capture_v1_netcls_mounted(const char *mountinfo, char *where, size_t cap)
{
	FILE *f = fopen(mountinfo ? mountinfo : "/proc/self/mountinfo", "re");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		/* ... mount-point ... - fstype source super-options */
		char *dash = strstr(line, " - ");
		char mp[1024], fstype[64], src[256], opts[2048];
		if (!dash || sscanf(dash + 3, "%63s %255s %2047s", fstype, src, opts) != 3)
			continue;
		if (strcmp(fstype, "cgroup") != 0)
			continue;
		for (char *t = strtok(opts, ","); t; t = strtok(NULL, ","))
			if (!strcmp(t, "net_cls") || !strcmp(t, "net_prio"))
				found = true;
		if (found && sscanf(line, "%*s %*s %*s %*s %1023s", mp) == 1)
			snprintf(where, cap, "%s", mp);
	}
	fclose(f);
	return found;
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

static void kernel_counters(struct ig_capture *cap, int cls, uint64_t out[IG_CAP_CNT__COUNT])
{
	uint64_t *vals = calloc((size_t)cap->ncpu, sizeof(*vals));
	int fd = bpf_map__fd(cap->skel->maps.cap_counters);

	memset(out, 0, sizeof(uint64_t) * IG_CAP_CNT__COUNT);
	if (!vals)
		return;
	for (uint32_t i = 0; i < IG_CAP_CNT__COUNT; i++) {
		uint32_t k = (uint32_t)cls * IG_CAP_CNT__COUNT + i;
		if (bpf_map_lookup_elem(fd, &k, vals) == 0)
			for (int c = 0; c < cap->ncpu; c++)
				out[i] += vals[c];
	}
	free(vals);
}

static void fill_flow(struct ig_capture *cap, const struct ig_cap_event *ev, struct ig_cap_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->cookie = ev->cookie;
	f->ts_ns = ev->ts_ns;
	f->cgroup_id = ev->cgroup_id;
	f->proto = ev->proto;
	f->dir = ev->dir;
	f->family = ev->family;
	memcpy(f->saddr, ev->saddr, 16);
	memcpy(f->daddr, ev->daddr, 16);
	f->sport = ev->sport;
	f->dport = ev->dport;
	if (ev->flags & IG_CAP_F_ORIG) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		f->has_orig = 1;
		f->orig_family = ev->orig_family;
		memcpy(f->orig_daddr, ev->orig_daddr, 16);
		f->orig_dport = ev->orig_dport;
		/* A dual-stack socket sending to ::ffff:a.b.c.d sends IPv4. */
		if (f->orig_family == 6 && memcmp(f->orig_daddr, mapped, 12) == 0) {
			f->orig_family = 4;
			memmove(f->orig_daddr, f->orig_daddr + 12, 4);
			memset(f->orig_daddr + 4, 0, 12);
		}
	}
	if (ev->flags & IG_CAP_F_OWNER) {
		f->pid = ev->pid;
		f->tid = ev->tid;
		f->uid = ev->uid;
		f->gid = ev->gid;
		f->ppid = ev->ppid;
		memcpy(f->comm, ev->comm, sizeof(f->comm));
		f->comm[sizeof(f->comm) - 1] = 0;
	} else {
		const struct owner *o = &cap->owners[ev->cookie % OWNERS];
		if (o->cookie == ev->cookie && ev->cookie) {
			f->pid = o->pid;
			f->tid = o->tid;
			f->uid = o->uid;
			f->gid = o->gid;
			f->ppid = o->ppid;
			memcpy(f->comm, o->comm, sizeof(f->comm));
		}
	}
	f->truncated = (ev->flags & IG_CAP_F_TRUNC) != 0;
}

/* A stream's user area: its flow as of its latest event. */
static void on_stream_drop(void *ctx, struct ig_reasm_stream *s, bool evicted)
{
	struct client *cl = ctx;
	struct ig_cap_flow *f = ig_reasm_user(s);

	if (evicted && ig_reasm_held(s))
		cl->st.reasm_evicted++;
	if (!evicted && ig_reasm_held(s))
		cl->st.reasm_aged++;
	if (cl->c.on_end)
		cl->c.on_end(cl->c.ctx, f, evicted);
}

static void deliver_tcp(struct client *cl, struct ig_reasm_stream *s, struct ig_cap_flow *f)
{
	size_t len;
	const uint8_t *d = ig_reasm_data(s, &len);

	f->gap = ig_reasm_take_gap(s);
	if (len == 0)
		return;
	size_t used = cl->c.on_data(cl->c.ctx, f, d, len);
	ig_reasm_consume(s, used > len ? len : used);
	f->gap = 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct ig_capture *cap = ctx;
	const struct ig_cap_event *ev = data;

	if (size < sizeof(*ev))
		return 0;
	if (ev->flags & IG_CAP_F_OWNER_EV) {
		struct owner *o = &cap->owners[ev->cookie % OWNERS];
		o->cookie = ev->cookie;
		o->pid = ev->pid;
		o->tid = ev->tid;
		o->uid = ev->uid;
		o->gid = ev->gid;
		o->ppid = ev->ppid;
		memcpy(o->comm, ev->comm, sizeof(o->comm));
		o->comm[sizeof(o->comm) - 1] = 0;
		return 0;
	}
	if (ev->classifier >= IG_CAP__COUNT || !cap->cl[ev->classifier].used) {
		cap->unclaimed++;
		return 0;
	}
	struct client *cl = &cap->cl[ev->classifier];
	const uint8_t *payload = (const uint8_t *)(ev + 1);
	size_t plen = ev->payload_len;
	if (plen > size - sizeof(*ev))
		plen = size - sizeof(*ev);
	if (plen) {
		cl->st.events++;
		cl->st.bytes += plen;
	}
	struct ig_cap_flow f;
	fill_flow(cap, ev, &f);
	if (ev->proto == 17) {
		if (plen)
			cl->c.on_data(cl->c.ctx, &f, payload, plen);
		return 0;
	}
	bool fin = (ev->flags & IG_CAP_F_FIN) != 0;
	struct ig_reasm_stream *s =
		ig_reasm_get(cl->reasm, ev->cookie, ev->dir, ev->ts_ns, plen > 0);
	if (!s)
		return 0;
	struct ig_cap_flow *sf = ig_reasm_user(s);
	int was_trunc = sf->truncated;
	*sf = f;
	sf->truncated |= was_trunc;
	if (plen)
		ig_reasm_add(cl->reasm, s, ev->seq, payload, plen,
			     ev->ts_ns); /* -ENOSPC: counted */
	deliver_tcp(cl, s, sf);
	if (fin) {
		if (cl->c.on_end)
			cl->c.on_end(cl->c.ctx, sf, 0);
		ig_reasm_close(cl->reasm, s);
	}
	return 0;
}

static int attach_cg(struct bpf_program *p, int fd, struct bpf_link **link, const char *root,
		     struct ig_err *err)
{
	*link = bpf_program__attach_cgroup(p, fd);
	if (*link)
		return 0;
	int rv = errno ? -errno : -EINVAL;
	ig_err_add(err,
		   "capture: attaching %s to %s failed (%s): the agent must run as root in the "
		   "host cgroup namespace",
		   bpf_program__name(p), root, strerror(-rv));
	return rv;
}

static void capture_destroy(struct ig_capture *cap)
{
	if (!cap)
		return;
	ring_buffer__free(cap->rb);
	capture_bpf__destroy(cap->skel);
	if (cap->cgroup_fd >= 0)
		close(cap->cgroup_fd);
	for (int i = 0; i < IG_CAP__COUNT; i++)
		ig_reasm_free(cap->cl[i].reasm);
	free(cap);
}

/* The send/recv programs run on every socket call of the node: attached
 * only while a client wants them. */
static void owner_tracepoints(struct ig_capture *cap, bool on)
{
	struct capture_bpf *s = cap->skel;

	if (on && !s->links.ig_cap_send) {
		if (!cap->tp_ok) {
			ig_warn("capture: this kernel has no tp_btf sock_send_length/"
				"sock_recv_length (Linux 6.2+); accepted sockets (the server "
				"side) older than their first payload are reported with their "
				"cgroup (pod) but without a process",
				NULL);
			return;
		}
		s->links.ig_cap_send = bpf_program__attach(s->progs.ig_cap_send);
		s->links.ig_cap_recv = bpf_program__attach(s->progs.ig_cap_recv);
		if (!s->links.ig_cap_send || !s->links.ig_cap_recv) {
			ig_warn("capture: attaching the sock_send_length/sock_recv_length programs "
				"failed; accepted sockets are reported without a process",
				"err=\"%s\"", strerror(errno));
			on = false;
		} else {
			ig_info("capture: owner tracepoints attached", NULL);
		}
	}
	if (!on) {
		bpf_link__destroy(s->links.ig_cap_send);
		bpf_link__destroy(s->links.ig_cap_recv);
		s->links.ig_cap_send = s->links.ig_cap_recv = NULL;
	}
}

static int capture_start(const struct ig_agent_conf *ac, struct ig_capture **out,
			 struct ig_err *err)
{
	struct ig_capture *cap = calloc(1, sizeof(*cap));
	char root[PATH_MAX], where[1024];
	bool cg2 = false;
	int rv;

	if (!cap)
		return -ENOMEM;
	cap->cgroup_fd = -1;
	cap->ncpu = libbpf_num_possible_cpus();
	if (cap->ncpu <= 0) {
		rv = cap->ncpu < 0 ? cap->ncpu : -EINVAL;
		ig_err_add(err, "capture: cannot count the possible CPUs (%s)", strerror(-rv));
		goto fail;
	}
	rv = ig_cgroup_root_detect(ac->cgroup_root, root, sizeof(root), &cg2);
	if (rv < 0 || !cg2) {
		ig_err_add(err,
			   "payload capture (dns, tls) needs the cgroup v2 hierarchy; "
			   "agent.cgroup_root '%s' %s: set it to the cgroup2 mount (e.g. "
			   "/sys/fs/cgroup or /sys/fs/cgroup/unified)",
			   ac->cgroup_root ? ac->cgroup_root : "auto",
			   rv < 0 ? strerror(-rv) : "is not a cgroup2 mount");
		rv = rv < 0 ? rv : -ENOTSUP;
		goto fail;
	}
	if (ig_capture_v1_netcls_mounted(NULL, where, sizeof(where)))
		ig_warn("cgroup v1 net_cls/net_prio is mounted: sockets of processes placed in "
			"those controllers may be invisible to cgroup BPF, so their DNS/TLS "
			"payloads are not captured; unmount them or keep workloads out of them",
			"mount=%s", where);
	ig_bpf_log_init();
	cap->skel = capture_bpf__open();
	if (!cap->skel) {
		rv = errno ? -errno : -EINVAL;
		ig_err_add(err, "capture: cannot open the BPF object (%s)", strerror(-rv));
		goto fail;
	}
	uint64_t rbsz = ringbuf_size(ac->ringbuf_bytes);
	if ((rv = bpf_map__set_max_entries(cap->skel->maps.cap_events, (uint32_t)rbsz)) < 0) {
		ig_err_add(err, "agent.ringbuf_bytes: cannot use %llu bytes (%s)",
			   (unsigned long long)rbsz, strerror(-rv));
		goto fail;
	}
	/* sock_send_length/sock_recv_length exist from Linux 6.2 (5.10 and 6.1
	 * have neither): without them the object loads without these two. */
	cap->tp_ok = ig_bpf_has_tp_btf() && ig_bpf_has_tp_btf_event("sock_send_length") &&
		     ig_bpf_has_tp_btf_event("sock_recv_length");
	bpf_program__set_autoload(cap->skel->progs.ig_cap_send, cap->tp_ok);
	bpf_program__set_autoload(cap->skel->progs.ig_cap_recv, cap->tp_ok);
	if ((rv = capture_bpf__load(cap->skel)) < 0) {
		ig_err_add(err,
			   "capture: the kernel refused the BPF programs (%s); the log above has "
			   "the verifier's reason. Payload capture needs cgroup_skb, cgroup sock "
			   "hooks and socket storage (Linux 5.10+), and root",
			   strerror(-rv));
		goto fail;
	}
	cap->cgroup_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cap->cgroup_fd < 0) {
		rv = -errno;
		ig_err_add(err, "capture: cannot open %s (%s)", root, strerror(-rv));
		goto fail;
	}
	struct capture_bpf *s = cap->skel;
	if ((rv = attach_cg(s->progs.ig_cap_sock_create, cap->cgroup_fd,
			    &s->links.ig_cap_sock_create, root, err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_connect4, cap->cgroup_fd, &s->links.ig_cap_connect4,
			    root, err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_connect6, cap->cgroup_fd, &s->links.ig_cap_connect6,
			    root, err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_sendmsg4, cap->cgroup_fd, &s->links.ig_cap_sendmsg4,
			    root, err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_sendmsg6, cap->cgroup_fd, &s->links.ig_cap_sendmsg6,
			    root, err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_egress, cap->cgroup_fd, &s->links.ig_cap_egress, root,
			    err)) < 0 ||
	    (rv = attach_cg(s->progs.ig_cap_ingress, cap->cgroup_fd, &s->links.ig_cap_ingress, root,
			    err)) < 0)
		goto fail;
	cap->rb = ring_buffer__new(bpf_map__fd(s->maps.cap_events), handle_event, cap, NULL);
	if (!cap->rb) {
		rv = errno ? -errno : -ENOMEM;
		ig_err_add(err, "capture: cannot set up the ring buffer (%s)", strerror(-rv));
		goto fail;
	}
	ig_info("payload capture attached", "cgroup_root=%s ringbuf_bytes=%llu", root,
		(unsigned long long)rbsz);
	*out = cap;
	return 0;
fail:
	capture_destroy(cap);
	return rv;
}

int ig_capture_register(const struct ig_cap_client *c, const struct ig_agent_conf *ac,
			struct ig_capture **out, struct ig_err *err)
{
	int rv;

	*out = NULL;
	if ((unsigned)c->classifier >= IG_CAP__COUNT || !c->on_data) {
		ig_err_add(err, "capture: invalid client (classifier %d)", (int)c->classifier);
		return -EINVAL;
	}
	if (!the_capture && (rv = capture_start(ac, &the_capture, err)) < 0)
		return rv;
	struct ig_capture *cap = the_capture;
	struct client *cl = &cap->cl[c->classifier];
	if (cl->used) {
		ig_err_add(err, "capture: classifier %d is already registered", (int)c->classifier);
		return -EBUSY;
	}
	memset(cl, 0, sizeof(*cl));
	cl->c = *c;
	if (!cl->c.budget)
		cl->c.budget = 4096;
	struct ig_reasm_opts ro = {
		.max_flows = c->max_flows,
		.max_flow_bytes = c->max_flow_bytes ? c->max_flow_bytes : 2 * cl->c.budget,
		.max_age_ns = c->max_age_ns,
		.user_size = sizeof(struct ig_cap_flow),
	};
	cl->reasm = ig_reasm_new(&ro, on_stream_drop, cl);
	if (!cl->reasm) {
		if (cap->refs == 0) {
			capture_destroy(cap);
			the_capture = NULL;
		}
		return -ENOMEM;
	}
	cl->used = true;
	kernel_counters(cap, c->classifier, cl->kbase);
	cap->skel->bss->ig_cap_conf.budget[c->classifier] = cl->c.budget;
	__atomic_or_fetch(&cap->skel->bss->ig_cap_conf.enabled, 1u << c->classifier,
			  __ATOMIC_SEQ_CST);
	if (c->owner_tracepoints && cap->tp_wanted++ == 0)
		owner_tracepoints(cap, true);
	cap->refs++;
	*out = cap;
	return 0;
}

void ig_capture_unregister(struct ig_capture *cap, enum ig_cap_classifier id)
{
	if (!cap || (unsigned)id >= IG_CAP__COUNT || !cap->cl[id].used)
		return;
	__atomic_and_fetch(&cap->skel->bss->ig_cap_conf.enabled, ~(1u << id), __ATOMIC_SEQ_CST);
	ring_buffer__consume(cap->rb); /* what is already queued */
	struct client *cl = &cap->cl[id];
	if (cl->c.owner_tracepoints && --cap->tp_wanted == 0)
		owner_tracepoints(cap, false);
	cl->used = false;
	ig_reasm_free(cl->reasm);
	cl->reasm = NULL;
	if (--cap->refs == 0) {
		capture_destroy(cap);
		if (the_capture == cap)
			the_capture = NULL;
	}
}

int ig_capture_epoll_fd(struct ig_capture *cap)
{
	return fcntl(ring_buffer__epoll_fd(cap->rb), F_DUPFD_CLOEXEC, 0);
}

int ig_capture_poll(struct ig_capture *cap)
{
	int n = ring_buffer__consume(cap->rb);
	uint64_t now = ig_mono_ns();

	if (now - cap->last_expire_ns > 100 * IG_NSEC_PER_MSEC) {
		cap->last_expire_ns = now;
		for (int i = 0; i < IG_CAP__COUNT; i++)
			if (cap->cl[i].used)
				ig_reasm_expire(cap->cl[i].reasm, now);
	}
	return n;
}

void ig_capture_stats(struct ig_capture *cap, enum ig_cap_classifier id, struct ig_cap_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!cap || (unsigned)id >= IG_CAP__COUNT || !cap->cl[id].used)
		return;
	struct client *cl = &cap->cl[id];
	uint64_t k[IG_CAP_CNT__COUNT];
	struct ig_reasm_stats rs;

	*out = cl->st;
	kernel_counters(cap, id, k);
	out->ringbuf_full = k[IG_CAP_CNT_RINGBUF_FULL] - cl->kbase[IG_CAP_CNT_RINGBUF_FULL];
	out->load_failed = k[IG_CAP_CNT_LOAD_FAILED] - cl->kbase[IG_CAP_CNT_LOAD_FAILED];
	out->budget_bytes = k[IG_CAP_CNT_BUDGET] - cl->kbase[IG_CAP_CNT_BUDGET];
	out->retrans = k[IG_CAP_CNT_RETRANS] - cl->kbase[IG_CAP_CNT_RETRANS];
	out->no_storage = k[IG_CAP_CNT_NO_STORAGE] - cl->kbase[IG_CAP_CNT_NO_STORAGE];
	out->span_skipped = k[IG_CAP_CNT_PARKED_SKIP] - cl->kbase[IG_CAP_CNT_PARKED_SKIP];
	out->span_done = k[IG_CAP_CNT_PARKED_DONE] - cl->kbase[IG_CAP_CNT_PARKED_DONE];
	ig_reasm_stats(cl->reasm, &rs);
	out->reasm_overflow = rs.overflow;
	out->reasm_gaps = rs.gap_bytes;
}
