// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* capture.bpf.c: the payload capture layer, kernel side (user side:
 * node-agent/capture.c; layout: capture_event.h; design: docs/capture.md).
 *
 * The socket's owner is written into socket storage when the socket is
 * created (cgroup/sock_create, in the creating task) and refreshed on
 * connect and sendmsg, which also give the destination the process asked
 * for, before any NAT. Packets are seen on the cgroup v2 root by
 * cgroup_skb egress and ingress from L3 on: the first payload bytes of each
 * TCP flow direction, or of each UDP datagram, go through the enabled
 * classifiers (bpf/<probe>.bpf.h); candidate payloads, up to the
 * classifier's budget, are copied into a per-CPU scratch buffer with
 * bpf_skb_load_bytes and sent with bpf_ringbuf_output. A decided TCP
 * direction costs one storage lookup per packet. Every program returns 1
 * (allow): capture never drops traffic. Accepted sockets and sockets older
 * than the agent get their storage from their first packet (cgroup id from
 * the skb, no process) and their owner from the first send/recv
 * (tp_btf sock_send_length / sock_recv_length).
 */
#include "ig_bpf.h"
#include "capture_event.h"
#include "dns.bpf.h"
#include "tls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IG_CAP_MAX_CHUNKS 4
/* The verifier masks below (0xf, 0x1fff) are these sizes minus one. */
_Static_assert(IG_CAP_PEEK == 16, "peek mask");
_Static_assert(2 * IG_CAP_CHUNK == 0x2000, "chunk mask");

/* Per-direction decision (TCP). */
enum { CLS_UNDECIDED = 0, CLS_NONE = 0xfe, CLS_DONE = 0xff }; /* else classifier id + 1 */

struct cap_sk {
	__u64 cgroup_id;
	__u32 pid, tid, uid, gid, ppid, pad0;
	char comm[IG_CAP_COMM_LEN];
	__u8 orig_daddr[16];
	__u16 orig_dport;
	__u8 orig_family;
	__u8 owner; /* pid/tid/comm known */
	__u8 cls[2]; /* TCP, per direction */
	__u8 seq_valid[2];
	__u8 udp_seen; /* UDP: bit i = classifier i matched on this socket */
	__u8 pad[3];
	__u32 sent[2]; /* TCP: payload bytes sent per direction */
	__u32 next_seq[2]; /* TCP: end of what was sent per direction */
	__u32 span_end[2]; /* TCP: end (seq) of what the classifier wants now */
	__u8 span_set[2]; /* span_end is in force */
	__u8 parked[2]; /* the classifier's span was sent: it looks at the next segment */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cap_sk);
} cap_sk SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* user space sizes it */
} cap_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_CAP_MAX_CLASSIFIERS *IG_CAP_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} cap_counters SEC(".maps");

struct scratch {
	struct ig_cap_event ev;
	__u8 data[2 * IG_CAP_CHUNK]; /* twice the chunk: the verifier's mask bound */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} cap_scratch SEC(".maps");

struct ig_cap_conf ig_cap_conf = {}; /* .bss: written by user space */

static __always_inline void count(__u32 cls, __u32 idx, __u64 n)
{
	__u32 k = cls * IG_CAP_CNT__COUNT + idx;
	__u64 *v;

	if (k >= IG_CAP_MAX_CLASSIFIERS * IG_CAP_CNT__COUNT)
		return;
	v = bpf_map_lookup_elem(&cap_counters, &k);
	if (v)
		*v += n;
}

/* The generic classifier hook point: the first classifier (in id order)
 * that takes the payload, or -1. One `if` per payload probe. */
static __always_inline int classify(const __u8 *peek, __u32 n, __u8 proto, __u16 sport, __u16 dport)
{
	__u32 en = ig_cap_conf.enabled;

	if ((en & (1u << IG_CAP_DNS)) && ig_dns_classify(peek, n, proto, sport, dport))
		return IG_CAP_DNS;
	if ((en & (1u << IG_CAP_TLS)) && ig_tls_classify(peek, n, proto, sport, dport))
		return IG_CAP_TLS;
	return -1;
}

/* Span limits of TCP classifiers (bytes from a segment's start that the
 * classifier wants; 0: none, the capture budget bounds the direction). Only
 * tls has them: a hello's record, after which the direction is parked. */
static __always_inline __u32 first_span(int c, const __u8 *peek, __u32 n)
{
	__u32 span = c == IG_CAP_TLS ? ig_tls_hello_span(peek, n) : 0;
	return span == IG_TLS_SPAN_OPEN ? 0 : span;
}

static __always_inline void set_span(struct cap_sk *s, __u8 d, __u32 seq, __u32 span)
{
	s->span_set[d] = span != 0;
	s->span_end[d] = seq + span;
}

static __always_inline void set_owner(struct cap_sk *s)
{
	__u64 pt = bpf_get_current_pid_tgid();

	__u64 ug = bpf_get_current_uid_gid();

	s->pid = pt >> 32;
	s->tid = (__u32)pt;
	s->uid = (__u32)ug;
	s->gid = ug >> 32;
	s->ppid = ig_task_ppid((struct task_struct *)bpf_get_current_task());
	s->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(s->comm, sizeof(s->comm));
	s->owner = 1;
}

/* --- socket hooks: owner and destination before NAT ---------------------- */

SEC("cgroup/sock_create")
int ig_cap_sock_create(struct bpf_sock *sk)
{
	if (sk->family != AF_INET && sk->family != AF_INET6)
		return 1;
	if (sk->type != SOCK_STREAM && sk->type != SOCK_DGRAM)
		return 1;
	struct cap_sk *s = bpf_sk_storage_get(&cap_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s)
		set_owner(s);
	return 1;
}

static __always_inline void on_addr(struct bpf_sock_addr *ctx, bool v6)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk)
		return;
	struct cap_sk *s = bpf_sk_storage_get(&cap_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	set_owner(s);
	if (v6) {
		__u32 a[4];
		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(s->orig_daddr, a, 16);
		s->orig_family = 6;
	} else {
		__u32 a = ctx->user_ip4;
		__builtin_memset(s->orig_daddr, 0, 16);
		__builtin_memcpy(s->orig_daddr, &a, 4);
		s->orig_family = 4;
	}
	s->orig_dport = __builtin_bswap16((__u16)ctx->user_port);
}

SEC("cgroup/connect4")
int ig_cap_connect4(struct bpf_sock_addr *ctx)
{
	on_addr(ctx, false);
	return 1;
}

SEC("cgroup/connect6")
int ig_cap_connect6(struct bpf_sock_addr *ctx)
{
	on_addr(ctx, true);
	return 1;
}

SEC("cgroup/sendmsg4")
int ig_cap_sendmsg4(struct bpf_sock_addr *ctx)
{
	on_addr(ctx, false);
	return 1;
}

SEC("cgroup/sendmsg6")
int ig_cap_sendmsg6(struct bpf_sock_addr *ctx)
{
	on_addr(ctx, true);
	return 1;
}

/* --- accepted sockets: the owner from the first send/recv ----------------- */

static __always_inline int on_sock_call(struct sock *sk)
{
	if (!sk)
		return 0;
	__u16 fam = sk->__sk_common.skc_family;
	if (fam != AF_INET && fam != AF_INET6)
		return 0;
	struct cap_sk *s = bpf_sk_storage_get(&cap_sk, sk, 0, 0);
	if (!s || s->owner)
		return 0;
	set_owner(s);
	/* Tell user space, for bytes that arrived before the owner was known. */
	struct ig_cap_event ev = {};
	ev.ts_ns = bpf_ktime_get_ns();
	ev.cookie = bpf_get_socket_cookie(sk);
	ev.cgroup_id = s->cgroup_id;
	ev.pid = s->pid;
	ev.tid = s->tid;
	ev.uid = s->uid;
	ev.gid = s->gid;
	ev.ppid = s->ppid;
	ev.flags = IG_CAP_F_OWNER_EV | IG_CAP_F_OWNER;
	ev.proto = sk->sk_protocol;
	__builtin_memcpy(ev.comm, s->comm, sizeof(ev.comm));
	if (bpf_ringbuf_output(&cap_events, &ev, sizeof(ev), 0))
		count(0, IG_CAP_CNT_RINGBUF_FULL, 1);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(ig_cap_send, struct sock *sk, int ret, int flags)
{
	return on_sock_call(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ig_cap_recv, struct sock *sk, int ret, int flags)
{
	return on_sock_call(sk);
}

/* --- packets ------------------------------------------------------------- */

/* Sends payload [off, off+len) of skb as events of classifier cls, at most
 * IG_CAP_MAX_CHUNKS chunks. sc->ev is filled but for the lengths and seq. */
static __always_inline void send_payload(struct __sk_buff *skb, struct scratch *sc, __u32 cls,
					 __u32 off, __u32 len, __u32 seq)
{
	for (int i = 0; i < IG_CAP_MAX_CHUNKS; i++) {
		__u64 n = len;
		if (n == 0)
			return;
		if (n > IG_CAP_CHUNK)
			n = IG_CAP_CHUNK;
		/* In the register passed to the helper, so the verifier sees a
		 * range of [1, 2 * IG_CAP_CHUNK]: n is already in [1, IG_CAP_CHUNK],
		 * so this leaves it unchanged. Verifiers before 5.13 or so do not
		 * narrow a range on `n != 0`, so the lower bound comes from the +1. */
		asm volatile("%[n] -= 1\n\t%[n] &= 0x1fff\n\t%[n] += 1" : [n] "+r"(n));
		if (bpf_skb_load_bytes(skb, off, sc->data, n)) {
			count(cls, IG_CAP_CNT_LOAD_FAILED, 1);
			return;
		}
		sc->ev.payload_len = n;
		sc->ev.seq = seq;
		if (bpf_ringbuf_output(&cap_events, sc, sizeof(sc->ev) + n, 0))
			count(cls, IG_CAP_CNT_RINGBUF_FULL, 1);
		else
			count(cls, IG_CAP_CNT_EVENTS, 1);
		off += n;
		seq += n;
		len -= n;
	}
}

static __always_inline void fill_event(struct scratch *sc, struct __sk_buff *skb, struct cap_sk *s,
				       __u8 dir, __u8 proto, __u8 cls)
{
	struct ig_cap_event *ev = &sc->ev;

	ev->ts_ns = bpf_ktime_get_ns();
	ev->cookie = bpf_get_socket_cookie(skb);
	ev->cgroup_id = s->cgroup_id ? s->cgroup_id : bpf_skb_cgroup_id(skb);
	ev->pid = s->pid;
	ev->tid = s->tid;
	ev->uid = s->uid;
	ev->gid = s->gid;
	ev->ppid = s->ppid;
	ev->dir = dir;
	ev->proto = proto;
	ev->classifier = cls;
	ev->flags = s->owner ? IG_CAP_F_OWNER : 0;
	__builtin_memcpy(ev->comm, s->comm, sizeof(ev->comm));
	ev->orig_family = s->orig_family;
	ev->orig_dport = s->orig_dport;
	__builtin_memcpy(ev->orig_daddr, s->orig_daddr, 16);
	if (s->orig_family)
		ev->flags |= IG_CAP_F_ORIG;
}

static __always_inline bool udp_fast_reject(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *u, *peek;
	__u32 hl;

	if (skb->protocol == __builtin_bswap16(ETH_P_IP)) {
		__u8 *ip = data;
		if ((void *)(ip + 20) > end || ip[0] != 0x45 || ip[9] != IPPROTO_UDP)
			return false;
		if ((ip[6] & 0x3f) || ip[7]) /* a fragment */
			return false;
		hl = 20;
	} else if (skb->protocol == __builtin_bswap16(ETH_P_IPV6)) {
		__u8 *ip6 = data;
		if ((void *)(ip6 + 40) > end || ip6[6] != IPPROTO_UDP)
			return false;
		hl = 40;
	} else {
		return false;
	}
	u = (__u8 *)data + hl;
	peek = u + 8;
	if ((void *)(peek + IG_CAP_PEEK) > end)
		return false;
	__u16 sport = ((__u16)u[0] << 8) | u[1], dport = ((__u16)u[2] << 8) | u[3];
	return classify(peek, IG_CAP_PEEK, IPPROTO_UDP, sport, dport) < 0;
}

static __always_inline int on_skb(struct __sk_buff *skb, __u8 dir)
{
	struct bpf_sock *sk = skb->sk;
	__u32 zero = 0;

	if (!ig_cap_conf.enabled || !sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	__u32 proto = sk->protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	struct cap_sk *s = bpf_sk_storage_get(&cap_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) {
		count(0, IG_CAP_CNT_NO_STORAGE, 1);
		return 1;
	}
	if (!s->cgroup_id)
		s->cgroup_id = bpf_skb_cgroup_id(skb);
	/* The fast path of decided TCP directions: one lookup, one compare. */
	if (proto == IPPROTO_TCP && s->cls[dir & 1] >= CLS_NONE)
		return 1;
	/* UDP: a datagram that no classifier takes, on a socket that never
	 * carried a match, is rejected from the linear data without a helper
	 * call (IPv4 without options, IPv6 without extension headers, at least
	 * IG_CAP_PEEK payload bytes linear); anything else takes the full path. */
	if (proto == IPPROTO_UDP && !s->udp_seen && udp_fast_reject(skb))
		return 1;

	struct scratch *sc = bpf_map_lookup_elem(&cap_scratch, &zero);
	if (!sc)
		return 1;
	struct ig_cap_event *ev = &sc->ev;
	__u32 l4off, plen;
	__u8 l4proto;

	if (skb->protocol == __builtin_bswap16(ETH_P_IP)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if (ip.frag_off & __builtin_bswap16(0x1fff)) /* a non-first fragment */
			return 1;
		l4proto = ip.protocol;
		l4off = (__u32)ip.ihl * 4;
		ev->family = 4;
		__builtin_memset(ev->saddr, 0, 16);
		__builtin_memset(ev->daddr, 0, 16);
		__builtin_memcpy(ev->saddr, &ip.saddr, 4);
		__builtin_memcpy(ev->daddr, &ip.daddr, 4);
	} else if (skb->protocol == __builtin_bswap16(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		l4proto = ip6.nexthdr; /* extension headers are not walked */
		l4off = sizeof(ip6);
		ev->family = 6;
		__builtin_memcpy(ev->saddr, &ip6.saddr, 16);
		__builtin_memcpy(ev->daddr, &ip6.daddr, 16);
	} else {
		return 1;
	}
	if (l4proto != proto)
		return 1;

	__u8 peek[IG_CAP_PEEK] = {};
	__u32 n, seq = 0, poff;
	__u8 tflags = 0;

	if (proto == IPPROTO_UDP) {
		struct udphdr uh;
		if (bpf_skb_load_bytes(skb, l4off, &uh, sizeof(uh)))
			return 1;
		ev->sport = __builtin_bswap16(uh.source);
		ev->dport = __builtin_bswap16(uh.dest);
		poff = l4off + sizeof(uh);
	} else {
		struct tcphdr th;
		if (bpf_skb_load_bytes(skb, l4off, &th, sizeof(th)))
			return 1;
		ev->sport = __builtin_bswap16(th.source);
		ev->dport = __builtin_bswap16(th.dest);
		seq = __builtin_bswap32(th.seq);
		poff = l4off + (__u32)th.doff * 4;
		tflags = ((__u8 *)&th)[13];
	}
	if (skb->len <= poff) {
		/* No payload: only a FIN/RST of a direction being captured. */
		if (proto == IPPROTO_TCP && (tflags & 0x05) && s->cls[dir & 1] != CLS_UNDECIDED) {
			__u8 c = s->cls[dir & 1] - 1;
			fill_event(sc, skb, s, dir, proto, c);
			ev->flags |= IG_CAP_F_FIN;
			ev->payload_len = 0;
			ev->skb_payload_len = 0;
			ev->seq = seq;
			if (bpf_ringbuf_output(&cap_events, ev, sizeof(*ev), 0))
				count(c, IG_CAP_CNT_RINGBUF_FULL, 1);
		}
		return 1;
	}
	plen = skb->len - poff;
	__u64 n64 = plen < IG_CAP_PEEK ? plen : IG_CAP_PEEK; /* in [1, IG_CAP_PEEK] */
	/* For the verifier, as in send_payload: [1, 16], unchanged. */
	asm volatile("%[n] -= 1\n\t%[n] &= 0xf\n\t%[n] += 1" : [n] "+r"(n64));
	n = (__u32)n64;

	int c;
	if (proto == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, poff, peek, n64))
			return 1;
		c = classify(peek, n, proto, ev->sport, ev->dport);
		if (c < 0) {
			/* A socket that carried DNS before: the parser decides. */
			if (s->udp_seen & (1u << IG_CAP_DNS))
				c = IG_CAP_DNS;
			else
				return 1;
		}
		s->udp_seen |= 1u << (c & 7);
		__u32 budget = ig_cap_conf.budget[c & (IG_CAP_MAX_CLASSIFIERS - 1)];
		__u32 take = plen < budget ? plen : budget;
		fill_event(sc, skb, s, dir, proto, (__u8)c);
		ev->skb_payload_len = plen;
		if (take < plen) {
			ev->flags |= IG_CAP_F_TRUNC;
			count(c, IG_CAP_CNT_BUDGET, plen - take);
		}
		if (take > IG_CAP_CHUNK)
			take = IG_CAP_CHUNK; /* one datagram, one event */
		send_payload(skb, sc, c, poff, take, 0);
		return 1;
	}

	/* TCP */
	__u8 d = dir & 1;
	__u8 st = s->cls[d];
	if (st == CLS_UNDECIDED) {
		if (bpf_skb_load_bytes(skb, poff, peek, n64))
			return 1;
		c = classify(peek, n, proto, ev->sport, ev->dport);
		if (c < 0) {
			s->cls[d] = CLS_NONE;
			return 1;
		}
		s->cls[d] = (__u8)c + 1;
		s->next_seq[d] = seq;
		s->seq_valid[d] = 1;
		set_span(s, d, seq, first_span(c, peek, n));
	} else {
		c = st - 1;
	}
	c &= IG_CAP_MAX_CLASSIFIERS - 1;
	/* Retransmission of what was sent already. */
	if (s->seq_valid[d] && (__s32)(seq + plen - s->next_seq[d]) <= 0) {
		count(c, IG_CAP_CNT_RETRANS, 1);
		return 1;
	}
	if (s->parked[d]) {
		/* The classifier's span was sent: does this segment start another? */
		__u32 span = 0;
		if (c == IG_CAP_TLS && !bpf_skb_load_bytes(skb, poff, peek, n64))
			span = ig_tls_next_span(peek, n, plen);
		if (!span) {
			s->cls[d] = CLS_DONE;
			count(c, IG_CAP_CNT_PARKED_DONE, 1);
			return 1;
		}
		s->parked[d] = 0;
		set_span(s, d, seq, span == IG_TLS_SPAN_OPEN ? 0 : span);
	}
	__u32 budget = ig_cap_conf.budget[c];
	__u32 left = s->sent[d] < budget ? budget - s->sent[d] : 0;
	bool to_span = false;
	if (s->span_set[d]) {
		__s32 want = (__s32)(s->span_end[d] - seq);
		if (want <= 0) {
			want = 0;
		} else if ((__u32)want < plen && plen - (__u32)want >= 6 && c == IG_CAP_TLS) {
			/* A CCS record right after the hello (HelloRetryRequest in
			 * compatibility mode) joins it: the stream stays gapless. */
			__u8 ccs[6];
			if (!bpf_skb_load_bytes(skb, poff + (__u32)want, ccs, sizeof(ccs)) &&
			    ig_tls_is_ccs(ccs)) {
				want += 6;
				s->span_end[d] += 6;
			}
		}
		if ((__u32)want <= left) {
			left = (__u32)want;
			to_span = true;
		}
	}
	__u32 take = plen < left ? plen : left;
	if (to_span && take == 0) {
		s->parked[d] = 1;
		s->span_set[d] = 0;
		return 1;
	}
	fill_event(sc, skb, s, dir, proto, (__u8)c);
	ev->skb_payload_len = plen;
	if (to_span && take == left) {
		/* The span ends in or at the end of this segment: park. */
		s->parked[d] = 1;
		s->span_set[d] = 0;
		if (take < plen)
			count(c, IG_CAP_CNT_PARKED_SKIP, plen - take);
	} else if (take < plen) {
		ev->flags |= IG_CAP_F_TRUNC;
		count(c, IG_CAP_CNT_BUDGET, plen - take);
		s->cls[d] = CLS_DONE;
	}
	if (tflags & 0x05)
		ev->flags |= IG_CAP_F_FIN;
	if (take > IG_CAP_MAX_CHUNKS * IG_CAP_CHUNK)
		take = IG_CAP_MAX_CHUNKS * IG_CAP_CHUNK;
	s->sent[d] += take;
	if ((__s32)(seq + take - s->next_seq[d]) > 0)
		s->next_seq[d] = seq + take;
	if (take == 0) {
		/* The budget was spent before this packet: say so once. */
		ev->payload_len = 0;
		ev->seq = seq;
		if (bpf_ringbuf_output(&cap_events, ev, sizeof(*ev), 0))
			count(c, IG_CAP_CNT_RINGBUF_FULL, 1);
		return 1;
	}
	send_payload(skb, sc, c, poff, take, seq);
	return 1;
}

SEC("cgroup_skb/egress")
int ig_cap_egress(struct __sk_buff *skb)
{
	return on_skb(skb, IG_CAP_EGRESS);
}

SEC("cgroup_skb/ingress")
int ig_cap_ingress(struct __sk_buff *skb)
{
	return on_skb(skb, IG_CAP_INGRESS);
}
