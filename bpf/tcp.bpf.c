// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* tcp.bpf.c: the TCP lifecycle probe, kernel side. Reports active opens
 * (connect), passive opens (accept), closes with duration and byte counts,
 * and failed connects with the error, for IPv4 and IPv6. Modelled on
 * libbpf-tools' tcplife/tcpconnect, without kprobes: docs/probes.md has the
 * design and the measurements.
 *
 * Hooks: the sock:inet_sock_set_state tracepoint sees every TCP state
 * change, as a tp_btf program when the kernel can run one (no perf record
 * is built) or as a classic tracepoint otherwise; user space enables one.
 * syscalls:sys_exit_accept{,4} tracepoints see accept(2) return.
 *
 * Owner attribution: most state changes (SYN-ACK received, FIN/ACK
 * processed) run in softirq context, where "current" is whatever task the
 * CPU was running. So the owner is recorded in process context and kept in
 * the socket-keyed "socks" map:
 *   CLOSE -> SYN_SENT   connect(2), in the caller's context: owner = caller.
 *   * -> LISTEN         listen(2): the listener's owner goes into "listeners"
 *                       under (netns, family, port).
 *   SYN_RECV -> ESTABLISHED  a child socket (softirq): owner = the listener's
 *                       owner until accept(2) returns it.
 *   accept(2) exit      fd -> file -> socket -> sk: owner = the accepting task,
 *                       "tcp.accept" emitted. Without the syscall tracepoints
 *                       (ig_accept_hooked false) the accept event is emitted
 *                       at ESTABLISHED with the listener's owner.
 * Events: SYN_SENT -> ESTABLISHED emits CONNECT; SYN_SENT -> CLOSE emits
 * CONNECT_FAILED with sk_err (set before the state change by tcp_reset and
 * tcp_write_err); an established socket reaching CLOSE emits CLOSE with
 * tcp_sock bytes_acked/bytes_received (CO-RE) and deletes the entry.
 * Sockets opened before the probe loaded have no entry and are not reported.
 */
#include "ig_bpf.h"
#include "tcp.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* include/net/tcp_states.h */
enum {
	ST_ESTABLISHED = 1,
	ST_SYN_SENT = 2,
	ST_SYN_RECV = 3,
	ST_FIN_WAIT1 = 4,
	ST_CLOSE = 7,
	ST_LAST_ACK = 9,
	ST_LISTEN = 10,
};

const volatile bool ig_include_failed = true;
const volatile bool ig_accept_hooked = false; /* the accept tracepoints are attached */
const volatile __u64 ig_wakeup_bytes = 0; /* 0: let the kernel decide */

struct owner {
	__u64 cgroup_id;
	__u32 pid, tid, ppid, uid, gid;
	char comm[IG_TCP_COMM_LEN];
};

struct sock_state {
	struct owner o;
	__u64 start_ns; /* ESTABLISHED, or first sight (accept of an unknown socket) */
	__u8 owner; /* enum ig_tcp_owner */
	__u8 active;
	__u8 established;
	__u8 fin_sent; /* went to FIN_WAIT1 or LAST_ACK: a FIN was queued */
	__u8 pad[4];
};

struct listener_key {
	__u32 netns;
	__u16 family;
	__u16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* user space sets agent.ringbuf_bytes */
} events SEC(".maps");

/* Connections being tracked, by struct sock address. Not preallocated; an
 * insert into a full table is counted (IG_TCP_LOST_OTHER). Entries go at
 * CLOSE, which every tracked socket reaches. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct sock_state);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct listener_key);
	__type(value, struct owner);
} listeners SEC(".maps");

IG_LOST_MAP(lost);

static __always_inline void fill_owner(struct owner *o)
{
	ig_fill_proc(&o->pid, &o->tid, &o->ppid, &o->uid, &o->gid, &o->cgroup_id, o->comm,
		     sizeof(o->comm));
}

/* The local port. inet_sport, not skc_num: by the time the CLOSE state
 * change is traced the port may already have been released (skc_num 0). */
static __always_inline __u16 local_port(struct sock *sk)
{
	return __builtin_bswap16(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
}

static __always_inline void listener_key_of(struct sock *sk, struct listener_key *k)
{
	k->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	k->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k->port = local_port(sk);
}

/* Payload bytes from tcp_sock counters, which count sequence space: the
 * active side's SYN and an acknowledged FIN are in bytes_acked, a received
 * FIN in bytes_received (SOCK_DONE is set by tcp_fin()). */
static __always_inline void payload_bytes(struct sock *sk, const struct sock_state *st, __u64 *sent,
					  __u64 *received)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 acked = BPF_CORE_READ(tp, bytes_acked);
	__u64 rcvd = BPF_CORE_READ(tp, bytes_received);
	__u64 seq_extra = st->active ? 1 : 0;

	if (st->fin_sent && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq))
		seq_extra++;
	*sent = acked > seq_extra ? acked - seq_extra : 0;
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if (flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE)) && rcvd > 0)
		rcvd--;
	*received = rcvd;
}

static __always_inline void emit(struct sock *sk, const struct sock_state *st, __u8 type,
				 __s32 error)
{
	__u64 wflags = 0;
	if (ig_wakeup_bytes) {
		/* Wake the consumer only when this record takes the unread
		 * data across the threshold (see files.bpf.c). */
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		__u64 used = (sizeof(struct ig_tcp_event) + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL;
		wflags = (avail < ig_wakeup_bytes && avail + used >= ig_wakeup_bytes) ?
				 BPF_RB_FORCE_WAKEUP :
				 BPF_RB_NO_WAKEUP;
	}
	/* Reserved in place, not built in a per-CPU buffer: a softirq can
	 * run this program in the middle of the accept program on the same
	 * CPU, and reservations nest safely. */
	struct ig_tcp_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		ig_count(&lost, IG_TCP_LOST_RINGBUF);
		return;
	}
	__u64 now = bpf_ktime_get_ns();

	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = now;
	ev->type = type;
	ev->sock = (__u64)sk;
	ev->error = error;
	ev->owner = st->owner;
	ev->active = st->active;
	ev->pid = st->o.pid;
	ev->tid = st->o.tid;
	ev->ppid = st->o.ppid;
	ev->uid = st->o.uid;
	ev->gid = st->o.gid;
	ev->cgroup_id = st->o.cgroup_id;
	__builtin_memcpy(ev->comm, st->o.comm, sizeof(ev->comm));

	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->sport = local_port(sk);
	ev->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		ev->family = 6;
		bpf_core_read(ev->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(ev->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		ev->family = 4;
		BPF_CORE_READ_INTO((__u32 *)ev->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)ev->daddr, sk, __sk_common.skc_daddr);
	}
	if (type == IG_TCP_CLOSE) {
		ev->duration_ns = st->start_ns && now > st->start_ns ? now - st->start_ns : 0;
		payload_bytes(sk, st, &ev->bytes_sent, &ev->bytes_received);
	}
	bpf_ringbuf_submit(ev, wflags);
}

static __always_inline int on_state(struct sock *sk, int oldstate, int newstate)
{
	__u64 key = (__u64)sk;
	struct sock_state *st;

	if (newstate == ST_SYN_SENT) {
		/* connect(2): process context, current is the owner. */
		struct sock_state n = {};
		fill_owner(&n.o);
		n.owner = IG_TCP_OWNER_CONNECT;
		n.active = 1;
		if (bpf_map_update_elem(&socks, &key, &n, BPF_ANY))
			ig_count(&lost, IG_TCP_LOST_OTHER);
		return 0;
	}
	if (newstate == ST_LISTEN) {
		struct listener_key lk;
		struct owner o = {};
		listener_key_of(sk, &lk);
		fill_owner(&o);
		bpf_map_update_elem(&listeners, &lk, &o, BPF_ANY);
		return 0;
	}
	if (oldstate == ST_LISTEN) {
		if (newstate == ST_CLOSE) {
			struct listener_key lk;
			listener_key_of(sk, &lk);
			bpf_map_delete_elem(&listeners, &lk);
		}
		return 0; /* LISTEN -> SYN_RECV: a child, tracked once established */
	}
	if (newstate == ST_ESTABLISHED) {
		st = bpf_map_lookup_elem(&socks, &key);
		if (st) {
			/* Active open (SYN_SENT, or SYN_RECV after a
			 * simultaneous open). */
			if (st->established)
				return 0;
			st->established = 1;
			st->start_ns = bpf_ktime_get_ns();
			emit(sk, st, IG_TCP_CONNECT, 0);
			return 0;
		}
		if (oldstate != ST_SYN_RECV)
			return 0;
		/* A passive open: the listener's owner until accept(2). */
		struct sock_state n = {};
		struct listener_key lk;
		listener_key_of(sk, &lk);
		struct owner *lo = bpf_map_lookup_elem(&listeners, &lk);
		if (lo) {
			n.o = *lo;
			n.owner = IG_TCP_OWNER_LISTENER;
		} else {
			n.owner = IG_TCP_OWNER_UNKNOWN;
		}
		n.established = 1;
		n.start_ns = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&socks, &key, &n, BPF_ANY)) {
			ig_count(&lost, IG_TCP_LOST_OTHER);
			return 0;
		}
		if (!ig_accept_hooked)
			emit(sk, &n, IG_TCP_ACCEPT, 0);
		return 0;
	}
	if (newstate == ST_FIN_WAIT1 || newstate == ST_LAST_ACK) {
		st = bpf_map_lookup_elem(&socks, &key);
		if (st)
			st->fin_sent = 1;
		return 0;
	}
	if (newstate == ST_CLOSE) {
		st = bpf_map_lookup_elem(&socks, &key);
		if (!st)
			return 0;
		if (st->established)
			emit(sk, st, IG_TCP_CLOSE, 0);
		else if (st->active && oldstate == ST_SYN_SENT && ig_include_failed)
			emit(sk, st, IG_TCP_CONNECT_FAILED, BPF_CORE_READ(sk, sk_err));
		bpf_map_delete_elem(&socks, &key);
	}
	return 0;
}

/* accept(2)/accept4(2) returned fd: the socket it names gets its owner. */
static __always_inline int on_accept(long fd)
{
	if (fd < 0)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fda = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if ((__u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if ((family != AF_INET && family != AF_INET6) ||
	    BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;

	__u64 key = (__u64)sk;
	struct sock_state *st = bpf_map_lookup_elem(&socks, &key);
	if (st) {
		if (st->active)
			return 0;
		fill_owner(&st->o);
		st->owner = IG_TCP_OWNER_ACCEPT;
		emit(sk, st, IG_TCP_ACCEPT, 0);
		return 0;
	}
	/* Established before the probe loaded, or not tracked (table full):
	 * report the accept and track it from now on, unless it is closed
	 * already (no CLOSE would ever remove the entry). */
	if (BPF_CORE_READ(sk, __sk_common.skc_state) == ST_CLOSE)
		return 0;
	struct sock_state n = {};
	fill_owner(&n.o);
	n.owner = IG_TCP_OWNER_ACCEPT;
	n.established = 1;
	n.start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&socks, &key, &n, BPF_NOEXIST))
		ig_count(&lost, IG_TCP_LOST_OTHER);
	emit(sk, &n, IG_TCP_ACCEPT, 0);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ig_tcp_state_btf, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	return on_state(sk, oldstate, newstate);
}

SEC("tracepoint/sock/inet_sock_set_state")
int ig_tcp_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	return on_state((struct sock *)ctx->skaddr, ctx->oldstate, ctx->newstate);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ig_tcp_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ig_tcp_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx->ret);
}
