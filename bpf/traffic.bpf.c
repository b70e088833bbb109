// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* traffic.bpf.c: the traffic-volume probe, kernel side. Counts TCP and UDP
 * bytes and packets per (process, cgroup, protocol, direction[, remote
 * address and port]) into a per-CPU LRU hash that user space reads on an
 * interval (node-agent/probe_traffic.c). Nothing is sent per packet, so the
 * agent's cost does not grow with the packet rate; the kernel side costs
 * one hash lookup and two per-CPU adds per counted call or packet.
 *
 * Two methods, one enabled by user space (docs/probes.md has the
 * measurements that made sock the default):
 *   sock (default): sock:sock_send_length / sock:sock_recv_length, which
 *     fire at the end of every sock_sendmsg()/sock_recvmsg() (write, send*,
 *     read, recv*, splice, io_uring) in the calling task's context. Counts
 *     payload bytes as the call returned them, attributed to the process.
 *     As tp_btf programs when the kernel can run them (no perf record is
 *     built), else as classic tracepoints. MSG_PEEK reads are not counted.
 *   cgroup_skb: ingress/egress programs on the cgroup v2 root. Counts IP
 *     packets (headers included, pure ACKs too) per socket cgroup
 *     (bpf_skb_cgroup_id); no process: transmissions run in softirq as
 *     often as in the sender's context, so pid is 0.
 *
 * Map maintenance: an existing key is a lookup and two adds on this CPU's
 * copy (no atomics). A new key is inserted with BPF_NOEXIST; losing that
 * race to another CPU falls back to the lookup. Inserts are counted so that
 * user space can tell evictions (inserts - live keys) from a quiet table.
 */
#include "ig_bpf.h"
#include "traffic.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MSG_PEEK 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

const volatile bool ig_per_remote = false;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384); /* user space sets probes.traffic.max_entries */
	__type(key, struct ig_traffic_key);
	__type(value, struct ig_traffic_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_TRAFFIC_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void add(const struct ig_traffic_key *k, __u64 bytes, __u64 packets,
				bool from_task)
{
	struct ig_traffic_val *v = bpf_map_lookup_elem(&flows, k);
	if (v) {
		v->bytes += bytes;
		v->packets += packets;
		return;
	}
	struct ig_traffic_val n = {};
	n.bytes = bytes;
	n.packets = packets;
	n.born_ns = bpf_ktime_get_ns();
	if (from_task) {
		__u64 ug = bpf_get_current_uid_gid();
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		n.uid = (__u32)ug;
		n.gid = ug >> 32;
		n.ppid = ig_task_ppid(task);
		bpf_get_current_comm(n.comm, sizeof(n.comm));
	}
	long err = bpf_map_update_elem(&flows, k, &n, BPF_NOEXIST);
	if (!err) {
		ig_count(&counters, IG_TRAFFIC_CNT_INSERTS);
		return;
	}
	v = bpf_map_lookup_elem(&flows, k); /* created meanwhile by another CPU */
	if (v) {
		v->bytes += bytes;
		v->packets += packets;
		return;
	}
	ig_count(&counters, IG_TRAFFIC_CNT_FAILED);
}

/* --- sock method --------------------------------------------------------- */

/* family and proto come from the caller: the classic tracepoint carries
 * them in its record, the tp_btf program reads them with direct loads (a
 * BTF pointer: no helper call; each bpf_probe_read_kernel costs ~25 ns on
 * the development VM). The remote peer (per_remote only) is read the same
 * way per variant. */
static __always_inline int on_sock(struct sock *sk, __u16 family, __u16 proto, int ret, int flags,
				   __u8 dir, bool btf)
{
	if (ret <= 0)
		return 0;
	if (dir == IG_TRAFFIC_RX && (flags & MSG_PEEK))
		return 0;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;

	struct ig_traffic_key k = {};
	k.pid = bpf_get_current_pid_tgid() >> 32;
	k.cgroup_id = bpf_get_current_cgroup_id();
	k.proto = proto;
	k.dir = dir;
	if (ig_per_remote) {
		/* The connected peer; an unconnected UDP socket has none
		 * (all zero: user space reports the remote as unknown). */
		if (btf) {
			k.rport = __builtin_bswap16(sk->__sk_common.skc_dport);
			if (family == AF_INET6) {
				k.family = 6;
				__builtin_memcpy(k.raddr, &sk->__sk_common.skc_v6_daddr, 16);
			} else {
				k.family = 4;
				__builtin_memcpy(k.raddr, &sk->__sk_common.skc_daddr, 4);
			}
		} else {
			k.rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
			if (family == AF_INET6) {
				k.family = 6;
				bpf_core_read(k.raddr, 16, &sk->__sk_common.skc_v6_daddr);
			} else {
				k.family = 4;
				bpf_core_read(k.raddr, 4, &sk->__sk_common.skc_daddr);
			}
		}
	}
	add(&k, (__u64)ret, 1, true);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(ig_traffic_send_btf, struct sock *sk, int ret, int flags)
{
	if (!sk)
		return 0;
	return on_sock(sk, sk->__sk_common.skc_family, sk->sk_protocol, ret, flags, IG_TRAFFIC_TX,
		       true);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ig_traffic_recv_btf, struct sock *sk, int ret, int flags)
{
	if (!sk)
		return 0;
	return on_sock(sk, sk->__sk_common.skc_family, sk->sk_protocol, ret, flags, IG_TRAFFIC_RX,
		       true);
}

SEC("tracepoint/sock/sock_send_length")
int ig_traffic_send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return on_sock((struct sock *)ctx->sk, ctx->family, ctx->protocol, ctx->ret, ctx->flags,
		       IG_TRAFFIC_TX, false);
}

SEC("tracepoint/sock/sock_recv_length")
int ig_traffic_recv_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	return on_sock((struct sock *)ctx->sk, ctx->family, ctx->protocol, ctx->ret, ctx->flags,
		       IG_TRAFFIC_RX, false);
}

/* --- cgroup_skb method --------------------------------------------------- */

/* skb data starts at the network header in cgroup_skb programs. */
static __always_inline int on_skb(struct __sk_buff *skb, __u8 dir)
{
	struct ig_traffic_key k = {};
	__u32 l4off;
	__u8 proto;

	if (skb->protocol == __builtin_bswap16(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		proto = ip.protocol;
		l4off = (__u32)ip.ihl * 4;
		if (ig_per_remote) {
			k.family = 4;
			__u32 a = dir == IG_TRAFFIC_TX ? ip.daddr : ip.saddr;
			__builtin_memcpy(k.raddr, &a, 4);
		}
	} else if (skb->protocol == __builtin_bswap16(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		proto = ip6.nexthdr; /* extension headers are not walked */
		l4off = sizeof(ip6);
		if (ig_per_remote) {
			k.family = 6;
			if (dir == IG_TRAFFIC_TX)
				__builtin_memcpy(k.raddr, &ip6.daddr, 16);
			else
				__builtin_memcpy(k.raddr, &ip6.saddr, 16);
		}
	} else {
		return 1;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	if (ig_per_remote) {
		__u16 ports[2]; /* source, destination: same place in TCP and UDP */
		if (bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports)) == 0)
			k.rport = __builtin_bswap16(dir == IG_TRAFFIC_TX ? ports[1] : ports[0]);
	}
	k.cgroup_id = bpf_skb_cgroup_id(skb);
	k.proto = proto;
	k.dir = dir;
	add(&k, skb->len, skb->gso_segs ? skb->gso_segs : 1, false);
	return 1; /* never drops */
}

SEC("cgroup_skb/egress")
int ig_traffic_skb_egress(struct __sk_buff *skb)
{
	return on_skb(skb, IG_TRAFFIC_TX);
}

SEC("cgroup_skb/ingress")
int ig_traffic_skb_ingress(struct __sk_buff *skb)
{
	return on_skb(skb, IG_TRAFFIC_RX);
}
