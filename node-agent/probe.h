/* probe: the agent's view of one eBPF probe (files, tcp, ...). Each probe is
 * a trio, as in libbpf-tools: bpf/<name>.bpf.c (kernel side), bpf/<name>.h
 * (the event struct both sides share) and node-agent/probe_<name>.c (this
 * interface), listed in probes.c.
 *
 * open() loads the probe's skeleton (configured through .rodata before load),
 * picks the program variants this kernel can run (feature probing), attaches,
 * and returns an epoll-able fd for its ring buffer. consume() drains the ring
 * buffer, turning each kernel event into a struct ig_record handed to the
 * sink; stats() reports cumulative counters, including events the kernel side
 * could not reserve ring-buffer space for (lost, never silent).
 */
#ifndef IG_PROBE_H
#define IG_PROBE_H

#include <stdint.h>

#include "ig_conf.h"
#include "ig_err.h"
#include "ig_record.h"

struct ig_sink {
	/* Called for each record; the record is only valid during the call. */
	void (*emit)(void *ctx, struct ig_record *r);
	void *ctx;
};

struct ig_probe_stats {
	uint64_t events; /* events read from the ring buffer */
	uint64_t ringbuf_full; /* events dropped in the kernel: no ring buffer space */
	uint64_t other_lost; /* e.g. entry map full (enter seen, exit lost) */
};

struct ig_probe_ops {
	const char *name; /* == ig_probe_descs[kind].name */
	enum ig_probe_kind kind;
	/* conf points to the probe's conf struct (e.g. struct ig_files_conf). */
	int (*open)(void **state, const void *conf, const struct ig_agent_conf *ac,
		    const struct ig_sink *sink, struct ig_err *err);
	int (*epoll_fd)(void *state);
	/* Drains available events; number consumed or negative errno. */
	int (*consume)(void *state);
	void (*stats)(void *state, struct ig_probe_stats *st);
	/* Detaches and frees. */
	void (*close)(void *state);
};

extern const struct ig_probe_ops *const ig_probe_table[];

/* The probes (probe_<name>.c). */
extern const struct ig_probe_ops ig_probe_files_ops;
extern const struct ig_probe_ops ig_probe_tcp_ops;
extern const struct ig_probe_ops ig_probe_traffic_ops;
extern const struct ig_probe_ops ig_probe_file_io_ops;
extern const struct ig_probe_ops ig_probe_dns_ops;

#endif
