/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* tcp.h: the TCP lifecycle event, shared by bpf/tcp.bpf.c (which writes it
 * into the ring buffer) and node-agent/probe_tcp.c (which reads it).
 *
 * One fixed-size record per connect, accept, close or failed connect. The
 * process fields are those of the socket's *owner* (recorded in process
 * context at connect, listen or accept time), not of whatever task the
 * kernel happened to run when the state changed: handshakes and closes are
 * mostly processed in softirq context.
 */
#ifndef IG_TCP_H
#define IG_TCP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define IG_TCP_COMM_LEN 16

/* ig_tcp_event.type */
enum ig_tcp_type {
	IG_TCP_CONNECT = 1, /* active open reached ESTABLISHED */
	IG_TCP_ACCEPT = 2, /* passive open handed to a process (accept(2) returned) */
	IG_TCP_CLOSE = 3, /* an established connection reached CLOSE */
	IG_TCP_CONNECT_FAILED = 4, /* active open went from SYN_SENT to CLOSE */
};

/* ig_tcp_event.owner: where the process fields come from. */
enum ig_tcp_owner {
	IG_TCP_OWNER_CONNECT = 1, /* the task that called connect(2) */
	IG_TCP_OWNER_ACCEPT = 2, /* the task whose accept(2) returned the socket */
	IG_TCP_OWNER_LISTENER = 3, /* not accepted (yet): the task that called listen(2) */
	IG_TCP_OWNER_UNKNOWN = 4, /* none of the above was seen (all zero) */
};

/* Indices of the per-CPU counter map ("lost"). */
#define IG_TCP_LOST_RINGBUF 0 /* no ring-buffer space */
#define IG_TCP_LOST_OTHER 1 /* socket table full: a connection was not tracked */

struct ig_tcp_event {
	__u64 ts_ns; /* CLOCK_MONOTONIC when it happened */
	__u64 cgroup_id; /* owner's cgroup v2 id */
	__u64 duration_ns; /* CLOSE: ESTABLISHED (or first sight) to CLOSE */
	__u64 bytes_sent; /* CLOSE: payload sent and acknowledged (tcp_sock.bytes_acked
			   * less the SYN and FIN sequence numbers) */
	__u64 bytes_received; /* CLOSE: payload received (tcp_sock.bytes_received less FIN) */
	__u64 sock; /* kernel socket address: correlates events of one connection */
	__u32 pid, tid, ppid, uid, gid;
	__s32 error; /* CONNECT_FAILED: positive errno from sk_err, 0 = closed by its owner */
	__u16 sport, dport; /* host byte order; sport is the local port */
	__u8 type; /* enum ig_tcp_type */
	__u8 family; /* 4 or 6, the socket's (user space reports IPv4-mapped as 4) */
	__u8 owner; /* enum ig_tcp_owner */
	__u8 active; /* 1: this host connected, 0: this host accepted */
	__u8 saddr[16]; /* local address; IPv4 in the first 4 bytes */
	__u8 daddr[16]; /* remote address */
	char comm[IG_TCP_COMM_LEN];
};

#endif
