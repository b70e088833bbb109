/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* traffic.h: the in-kernel traffic table, shared by bpf/traffic.bpf.c
 * (which counts into it) and node-agent/probe_traffic.c (which reads it).
 *
 * No events: the kernel side adds bytes and packets to a per-CPU LRU hash
 * keyed by (process, cgroup, protocol, direction[, remote address/port]),
 * and user space reads the table every probes.traffic.interval, sums the
 * CPUs and reports the change since its previous read.
 */
#ifndef IG_TRAFFIC_H
#define IG_TRAFFIC_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define IG_TRAFFIC_COMM_LEN 16

enum ig_traffic_dir { IG_TRAFFIC_TX = 0, IG_TRAFFIC_RX = 1 };

/* Indices of the per-CPU counter map ("counters"). */
#define IG_TRAFFIC_CNT_INSERTS 0 /* new keys added (evictions = inserts - live keys) */
#define IG_TRAFFIC_CNT_FAILED 1 /* a new key could not be added: its bytes are lost */
#define IG_TRAFFIC_CNT__COUNT 2

/* Every byte is written (padding included) before use as a key. */
struct ig_traffic_key {
	__u64 cgroup_id; /* sock: the task's cgroup; cgroup_skb: the socket's */
	__u32 pid; /* thread group id; 0 with cgroup_skb (no process there) */
	__u8 proto; /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 dir; /* enum ig_traffic_dir */
	__u8 family; /* per_remote: 4 or 6; 0 = no remote in the key */
	__u8 pad0;
	__u16 rport; /* remote port, host order (per_remote) */
	__u16 pad1;
	__u32 pad2;
	__u8 raddr[16]; /* remote address; IPv4 in the first 4 bytes (per_remote) */
};

/* One per CPU per key; user space sums bytes and packets over the CPUs.
 * The other fields are set on the CPU that created the entry (zero on the
 * others). */
struct ig_traffic_val {
	__u64 bytes; /* sock: payload bytes; cgroup_skb: IP packet bytes (skb->len) */
	__u64 packets; /* sock: send/receive calls; cgroup_skb: packets (GSO segments) */
	__u64 born_ns; /* creation time: a changed value means evicted and re-created */
	__u32 uid, gid, ppid, pad;
	char comm[IG_TRAFFIC_COMM_LEN];
};

#endif
