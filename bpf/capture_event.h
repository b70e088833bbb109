/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* capture_event.h: the payload capture layer's shared layout, used by
 * bpf/capture.bpf.c (kernel side) and node-agent/capture.c (user side).
 * docs/capture.md describes the design and how a probe plugs in.
 *
 * One BPF object serves every payload probe (dns, tls): the same hooks, one
 * per-socket state in BPF_MAP_TYPE_SK_STORAGE, one ring buffer. Each probe
 * owns a classifier id; the kernel runs the enabled classifiers on the first
 * payload bytes of a flow direction (TCP) or of every datagram (UDP) and
 * sends only candidate payloads, bounded per flow direction, to user space.
 */
#ifndef IG_CAPTURE_EVENT_H
#define IG_CAPTURE_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Classifier ids: one per payload probe. The kernel classifier of id X is
 * ig_<x>_classify() in bpf/<x>.bpf.h, called from bpf/capture.bpf.c. */
enum ig_cap_classifier {
	IG_CAP_DNS = 0,
	IG_CAP_TLS = 1,
	IG_CAP__COUNT = 2,
};
#define IG_CAP_MAX_CLASSIFIERS 8

/* Directions, as the local socket sees them. */
enum ig_cap_dir { IG_CAP_EGRESS = 0, IG_CAP_INGRESS = 1 };

/* Largest payload one event carries; a bigger budget takes several events. */
#define IG_CAP_CHUNK 4096
/* Bytes the classifiers see (the start of the flow direction's payload). */
#define IG_CAP_PEEK 16
#define IG_CAP_COMM_LEN 16

/* Per-CPU counters (map "cap_counters"), indexed
 * [classifier * IG_CAP_CNT__COUNT + IG_CAP_CNT_x]. */
enum {
	IG_CAP_CNT_EVENTS = 0, /* events submitted */
	IG_CAP_CNT_RINGBUF_FULL, /* events lost: no ring buffer space (loss) */
	IG_CAP_CNT_LOAD_FAILED, /* events lost: bpf_skb_load_bytes failed (loss) */
	IG_CAP_CNT_BUDGET, /* payload bytes not sent: the flow direction's budget was spent */
	IG_CAP_CNT_RETRANS, /* TCP segments skipped: already sent (retransmissions) */
	IG_CAP_CNT_NO_STORAGE, /* packets with no socket storage (no full socket / map full) */
	IG_CAP_CNT_PARKED_SKIP, /* payload bytes not sent: past the classifier's span (a hello) */
	IG_CAP_CNT_PARKED_DONE, /* flow directions done at the first segment after the span */
	IG_CAP_CNT__COUNT
};

/* Runtime configuration, in .bss (user space writes it through the
 * skeleton's mmapped bss; the layer may enable a classifier after load). */
struct ig_cap_conf {
	__u32 enabled; /* bit i: classifier i runs */
	__u32 budget[IG_CAP_MAX_CLASSIFIERS]; /* TCP: bytes per flow direction; UDP: per datagram */
};

/* Event flags. */
#define IG_CAP_F_ORIG 0x01 /* orig_* holds the destination before NAT */
#define IG_CAP_F_OWNER 0x02 /* pid/comm are the socket's owner (else unknown: 0) */
#define IG_CAP_F_TRUNC 0x04 /* the payload was cut at the budget */
#define IG_CAP_F_SYN 0x08 /* TCP: SYN (no payload; seq is the ISN) */
#define IG_CAP_F_FIN 0x10 /* TCP: FIN or RST seen in this direction */
#define IG_CAP_F_OWNER_EV 0x20 /* an owner update: no payload (accepted sockets) */

/* One ring-buffer event: this header, then payload_len bytes. */
struct ig_cap_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() when the packet passed the hook */
	__u64 cookie; /* bpf_get_socket_cookie(): the socket (flow) key */
	__u64 cgroup_id; /* the socket's cgroup (owner, else bpf_skb_cgroup_id) */
	__u32 pid, tid; /* owner: tgid and thread that created/connected the socket */
	__u32 uid, gid, ppid; /* owner's */
	__u32 pad0;
	__u32 seq; /* TCP: sequence number of the first payload byte (host order) */
	__u32 payload_len; /* bytes that follow this header */
	__u32 skb_payload_len; /* payload bytes in the packet (>= payload_len) */
	__u16 sport, dport; /* as on the wire, host order */
	__u16 orig_dport; /* destination port before NAT (IG_CAP_F_ORIG) */
	__u8 family; /* 4 or 6 (of the packet) */
	__u8 proto; /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 dir; /* enum ig_cap_dir */
	__u8 classifier; /* enum ig_cap_classifier */
	__u8 flags; /* IG_CAP_F_* */
	__u8 orig_family; /* 4 or 6 (IG_CAP_F_ORIG) */
	__u8 pad[2];
	__u8 saddr[16], daddr[16]; /* IPv4: first 4 bytes */
	__u8 orig_daddr[16];
	char comm[IG_CAP_COMM_LEN];
	/* payload follows */
};

#endif
