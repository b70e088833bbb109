/* capture: the payload capture layer shared by the payload probes (dns,
 * tls). Kernel side: bpf/capture.bpf.c, shared layout: bpf/capture_event.h,
 * design and how to plug a probe in: docs/capture.md.
 *
 * One capture instance serves every payload probe of the agent: the first
 * ig_capture_register() loads and attaches the BPF object (cgroup/sock_create,
 * connect4/6, sendmsg4/6 and cgroup_skb egress/ingress on the cgroup v2 root,
 * send/recv tracepoints for accepted sockets), later ones only enable their
 * classifier; the last ig_capture_unregister() detaches and frees it.
 *
 * A probe gives a classifier id (enum ig_cap_classifier, bpf/capture_event.h) and
 * a callback. The kernel sends the candidate payloads of that classifier;
 * this layer reassembles TCP per (socket cookie, direction) by sequence
 * number (node-agent/reasm.c, bounded in bytes, flows and age, evictions
 * counted) and calls the probe with contiguous bytes. UDP datagrams are
 * passed one by one. Everything runs in the agent's thread (no locking).
 */
#ifndef IG_CAPTURE_H
#define IG_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture_event.h"
#include "ig_conf.h"
#include "ig_err.h"

/* What the callback knows about the bytes it is given. Addresses are as on
 * the wire (network order bytes, IPv4 in the first 4), ports host order. */
struct ig_cap_flow {
	uint64_t cookie; /* socket cookie: one per socket, never reused while it lives */
	uint64_t ts_ns; /* kernel CLOCK_MONOTONIC stamp of the packet that completed
			 * these bytes (TCP: the newest segment delivered) */
	uint32_t pid, tid; /* owner (0 = unknown: accepted socket before its first send/recv) */
	uint32_t uid, gid, ppid; /* owner's (0 when pid is) */
	uint64_t cgroup_id; /* the socket's cgroup (pod identity comes from it) */
	char comm[16]; /* owner's comm, "" when unknown */
	uint8_t proto; /* 6 = TCP, 17 = UDP */
	uint8_t dir; /* IG_CAP_EGRESS (sent by the local socket) or IG_CAP_INGRESS */
	uint8_t family; /* 4 or 6 */
	uint8_t saddr[16], daddr[16]; /* of the packet */
	uint16_t sport, dport;
	/* The destination the local process asked for (connect / sendmsg),
	 * before any NAT (e.g. a Service ClusterIP); has_orig = 0 when unknown
	 * (accepted sockets, sockets older than the agent). */
	int has_orig;
	uint8_t orig_family;
	uint8_t orig_daddr[16];
	uint16_t orig_dport;
	int truncated; /* the kernel cut this flow direction at its budget */
	int gap; /* TCP: bytes were lost just before these (framing may be lost) */
};

/* Called with the unconsumed contiguous bytes of one flow direction (TCP)
 * or with one whole datagram (UDP). Returns how many bytes it consumed
 * (TCP: the rest is kept and offered again with more bytes appended; UDP:
 * ignored). The bytes are only valid during the call. */
typedef size_t (*ig_cap_data_fn)(void *ctx, const struct ig_cap_flow *f, const uint8_t *data,
				 size_t len);
/* Optional: a TCP flow direction went away (FIN/RST seen, evicted or aged
 * out), with the bytes that were never consumed. */
typedef void (*ig_cap_end_fn)(void *ctx, const struct ig_cap_flow *f, int evicted);

struct ig_cap_client {
	enum ig_cap_classifier classifier;
	ig_cap_data_fn on_data;
	ig_cap_end_fn on_end; /* may be NULL */
	void *ctx;
	uint32_t budget; /* bytes per flow direction (TCP) / per datagram (UDP); 0 = 4096 */
	uint32_t max_flows; /* TCP flow directions held for reassembly; 0 = 4096 */
	uint32_t max_flow_bytes; /* unconsumed bytes held per flow direction; 0 = 2 * budget */
	uint64_t max_age_ns; /* a flow direction idle this long is dropped; 0 = 30 s */
	/* Learn the process of accepted sockets (a server's side) and of sockets
	 * older than the agent from their first send/recv: tp_btf programs on
	 * sock_send_length/sock_recv_length, attached while a client wants them.
	 * They run on every socket call of the node (~40 ns each here). */
	bool owner_tracepoints;
};

/* Counters of one classifier, cumulative since its registration. */
struct ig_cap_stats {
	uint64_t events; /* payload events read from the ring buffer */
	uint64_t bytes; /* payload bytes read */
	uint64_t ringbuf_full; /* kernel: events lost, no ring buffer space (loss) */
	uint64_t load_failed; /* kernel: events lost, payload unreadable (loss) */
	uint64_t budget_bytes; /* kernel: bytes past the budget, by design not sent */
	uint64_t retrans; /* kernel: TCP segments skipped as already sent */
	uint64_t no_storage; /* kernel: packets without socket storage */
	uint64_t span_skipped; /* kernel: bytes after a hello in its segment, by design not sent */
	uint64_t span_done; /* kernel: directions done after their hello (parked, then not one) */
	uint64_t reasm_evicted; /* flow directions evicted (table full) with bytes (loss) */
	uint64_t reasm_aged; /* flow directions dropped idle with bytes waiting */
	uint64_t reasm_overflow; /* segments dropped: flow buffer full (loss) */
	uint64_t reasm_gaps; /* bytes skipped over a hole that never filled (loss) */
};

struct ig_capture;

/* Registers c (copied) and returns the shared instance in *cap. The first
 * registration loads and attaches the BPF object (errors in err: negative
 * errno). One client per classifier. */
int ig_capture_register(const struct ig_cap_client *c, const struct ig_agent_conf *ac,
			struct ig_capture **cap, struct ig_err *err);
/* Removes the classifier's client; the last one detaches and frees. */
void ig_capture_unregister(struct ig_capture *cap, enum ig_cap_classifier id);
/* An fd for the agent's epoll, readable when events wait; each call returns
 * a new fd (a dup) owned by the caller, so every probe can register its own. */
int ig_capture_epoll_fd(struct ig_capture *cap);
/* Drains the ring buffer, dispatching to every registered client, and ages
 * out reassembly state. Events read, or negative errno. Any client's
 * consume() may call it; the layer drains once per call. */
int ig_capture_poll(struct ig_capture *cap);
void ig_capture_stats(struct ig_capture *cap, enum ig_cap_classifier id, struct ig_cap_stats *out);

/* Whether cgroup v1 net_cls or net_prio is mounted according to a
 * mountinfo file (NULL = /proc/self/mountinfo): cgroup BPF programs then may
 * not see sockets of processes placed in those controllers. Writes the
 * mount point into where. */
bool ig_capture_v1_netcls_mounted(const char *mountinfo, char *where, size_t cap);

/* Text form of an address in a flow ("10.0.0.1", "fd00::1"); buf >= 46. */
const char *ig_cap_addr_str(int family, const uint8_t addr[16], char *buf, size_t cap);

#endif
