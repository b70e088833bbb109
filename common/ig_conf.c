/* ig_conf: the schema of ingrain's configuration file.
 *
 * Why one schema for both binaries: the agent and the aggregator ship with
 * the same file (a Helm chart renders one ConfigMap), so both must accept
 * exactly the same keys; a typo in the aggregator section is caught by the
 * agent's --check-config too.
 *
 * How it works: the YAML document is loaded once (ig_yaml), each known
 * top-level section is handed to ig_cfg_apply with its option table, and the
 * few rules a table cannot express (node name fallback, probe directory
 * normalisation, "a probe must feed a pipeline", reconnect bounds ordered)
 * run afterwards. `pipelines` and `backends` are only checked to be mappings
 * and kept as nodes of the document, which the ig_conf owns, for the
 * aggregator's stage and backend tables.
 */
#include "ig_conf.h"
#include "ig_record.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ULL
#define SEC (1000 * MS)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define IG_MONITOR_DIRS_MAX 16
/* Node names and agent ids: DNS names (Kubernetes node names, certificate SANs). */
#define IG_NAME_MAX 253
#define IG_MONITOR_DIR_LEN 255

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };
static const char *const kube_modes[] = { "auto", "on", "off", NULL };

#define A(f) offsetof(struct ig_agent_conf, f)
static const struct ig_opt agent_opts[] = {
	{ "node_name", IG_OPT_STR, "", A(node_name),
	  "Name of this node in records (at most 253 bytes, a DNS name as Kubernetes node names "
	  "are). Empty: $NODE_NAME (set it from the downward API), else the host name. With TLS "
	  "it must be one of the names (DNS SAN or CN) of the agent's certificate.",
	  .max = IG_NAME_MAX, .flags = IG_OPTF_RESTART },
	{ "agent_id", IG_OPT_STR, "", A(agent_id),
	  "Identity the aggregator tracks delivery under (at most 253 bytes). Empty: the node "
	  "name. With TLS it must be one of the names of the agent's certificate.",
	  .max = IG_NAME_MAX, .flags = IG_OPTF_RESTART },
	{ "aggregator", IG_OPT_STR, "tls+tcp://127.0.0.1:7700", A(aggregator),
	  "nng URL of the aggregator: tls+tcp://host:port (mutual TLS), or tcp://host:port / "
	  "ipc:///path in plaintext, which needs plaintext: true.",
	  .flags = IG_OPTF_RESTART },
	{ "tls_dir", IG_OPT_STR, "/etc/ingrain/tls", A(tls_dir),
	  "Directory with tls.crt, tls.key and ca.crt (the layout of a Kubernetes TLS Secret): "
	  "this agent's certificate and key, and the CA that signed the aggregator's. Re-read "
	  "when the files change.",
	  .flags = IG_OPTF_RESTART },
	{ "tls_server_name", IG_OPT_STR, "", A(tls_server_name),
	  "Name (DNS SAN or IP) the aggregator's certificate must carry. Empty: the host of "
	  "aggregator.",
	  .flags = IG_OPTF_RESTART },
	{ "tls_shared_identity", IG_OPT_BOOL, "false", A(tls_shared_identity),
	  "The certificate in tls_dir is shared by many agents (the Helm chart's generated one) "
	  "rather than issued for this node: skip the check that it carries node_name. The "
	  "aggregator must list its name in aggregator.tls_shared_names.",
	  .flags = IG_OPTF_RESTART },
	{ "plaintext", IG_OPT_BOOL, "false", A(plaintext),
	  "Send without TLS (tcp:// or ipc://). Anyone who reaches the aggregator can then forge "
	  "this agent's events; see docs/security.md. Logged as a warning at start.",
	  .flags = IG_OPTF_RESTART },
	{ "aggregator_resolve", IG_OPT_DURATION, "30s", A(aggregator_resolve_ns),
	  "How often agent.aggregator's name is resolved again. When it has several addresses "
	  "(a headless Service: one per aggregator replica) the agent dials the one a stable "
	  "hash of its agent_id picks, and moves when the set changes; with one address it is "
	  "dialed by name as written, and so is a tls+tcp:// URL (its certificate names the "
	  "name). 0: resolve once.",
	  .min = 0, .max = (int64_t)(3600 * SEC), .flags = IG_OPTF_RESTART },
	{ "wire_version", IG_OPT_UINT, "2", A(wire_version),
	  "Envelope format sent to the aggregator (docs/wire-format.md): 2, or 1 while "
	  "aggregators older than this agent still run (they speak only 1). Aggregators of this "
	  "version accept both.",
	  .min = 1, .max = 2, .flags = IG_OPTF_RESTART },
	{ "batch_max_records", IG_OPT_UINT, "512", A(batch_max_records),
	  "Records per envelope sent to the aggregator.", .min = 1, .max = 65536 },
	{ "batch_max_age", IG_OPT_DURATION, "200ms", A(batch_max_age_ns),
	  "Send a partial envelope after this long.", .min = (int64_t)MS,
	  .max = (int64_t)(60 * SEC) },
	{ "queue_max_batches", IG_OPT_UINT, "4096", A(queue_max_batches),
	  "Unacknowledged envelopes kept in memory; beyond it the oldest is dropped and counted.",
	  .min = 1, .max = 1048576, .flags = IG_OPTF_RESTART },
	{ "queue_max_bytes", IG_OPT_SIZE, "256MiB", A(queue_max_bytes),
	  "Memory bound of the unacknowledged queue.", .min = MIB, .max = 64 * GIB,
	  .flags = IG_OPTF_RESTART },
	{ "ack_timeout", IG_OPT_DURATION, "5s", A(ack_timeout_ns),
	  "Resend an envelope the aggregator has not acknowledged within this time.",
	  .min = (int64_t)(100 * MS), .max = (int64_t)(600 * SEC), .flags = IG_OPTF_RESTART },
	{ "reconnect_min", IG_OPT_DURATION, "100ms", A(reconnect_min_ns),
	  "First delay before redialling a lost aggregator.", .min = (int64_t)MS,
	  .max = (int64_t)(600 * SEC), .flags = IG_OPTF_RESTART },
	{ "reconnect_max", IG_OPT_DURATION, "5s", A(reconnect_max_ns),
	  "Cap of the exponential redial delay.", .min = (int64_t)MS, .max = (int64_t)(600 * SEC),
	  .flags = IG_OPTF_RESTART },
	{ "ringbuf_bytes", IG_OPT_SIZE, "8MiB", A(ringbuf_bytes),
	  "Size of each probe's BPF ring buffer (a power of two).", .min = 64 * KIB, .max = GIB },
	{ "wakeup_records", IG_OPT_UINT, "64", A(wakeup_records),
	  "The ring buffer consumer is woken every this many records...", .min = 1,
	  .max = 1048576 },
	{ "poll_interval", IG_OPT_DURATION, "100ms", A(poll_interval_ns),
	  "...or at least this often.", .min = (int64_t)MS, .max = (int64_t)(10 * SEC) },
	{ "shutdown_timeout", IG_OPT_DURATION, "5s", A(shutdown_timeout_ns),
	  "On SIGTERM, how long to wait for queued envelopes to be acknowledged.", .min = 0,
	  .max = (int64_t)(600 * SEC) },
	{ "buffer_dir", IG_OPT_STR, IG_AGENT_BUFFER_DIR_DEFAULT, A(buffer_dir),
	  "Directory of the unacknowledged queue on disk (write-ahead segments; at most "
	  "queue_max_bytes plus one 8 MiB segment), replayed after a crash or restart; one agent "
	  "per directory (a hostPath in Kubernetes). Empty: memory only. The default, when "
	  "unusable, only warns; a directory set here must work.",
	  .flags = IG_OPTF_RESTART },
	{ "buffer_fsync", IG_OPT_BOOL, "true", A(buffer_fsync),
	  "fdatasync each envelope written to buffer_dir (survives power loss); false: written "
	  "only, survives a crash of the agent, not of the machine.",
	  .flags = IG_OPTF_RESTART },
	{ "drop_capabilities", IG_OPT_BOOL, "true", A(drop_capabilities),
	  "Once the probes are attached, drop every capability (bounding and effective sets; "
	  "the probes' load set stays permitted for reloads) and set no_new_privs.",
	  .flags = IG_OPTF_RESTART },
	{ "mount_tracefs", IG_OPT_BOOL, "true", A(mount_tracefs),
	  "Mount tracefs at /sys/kernel/tracing if it is not mounted.", .flags = IG_OPTF_RESTART },
	{ "mount_bpffs", IG_OPT_BOOL, "true", A(mount_bpffs),
	  "Mount bpffs at /sys/fs/bpf if it is not mounted.", .flags = IG_OPTF_RESTART },
	{ "cgroup_root", IG_OPT_STR, "auto", A(cgroup_root),
	  "Path of the cgroup v2 hierarchy, or auto to find it in /proc/self/mounts.",
	  .flags = IG_OPTF_RESTART },
	{ "log_level", IG_OPT_ENUM, "info", A(log_level), "Least severe log level written.",
	  .choices = log_levels },
	{ "log_format", IG_OPT_ENUM, "logfmt", A(log_format),
	  "Log line format: logfmt (key=value) or json.", .choices = log_formats },
	{ "metrics_listen", IG_OPT_STR, "", A(metrics_listen),
	  "host:port serving Prometheus /metrics over HTTP. Empty: off.",
	  .flags = IG_OPTF_RESTART },
	{ 0 }
};
#undef A

#define G(f) offsetof(struct ig_aggregator_conf, f)
static const struct ig_opt aggregator_opts[] = {
	{ "listen", IG_OPT_STR, "tls+tcp://127.0.0.1:7700", G(listen),
	  "nng URL agents dial: tls+tcp://host:port (mutual TLS; each agent is known by its "
	  "certificate), or tcp://host:port / ipc:///path in plaintext, which needs "
	  "plaintext: true.",
	  .flags = IG_OPTF_RESTART },
	{ "tls_dir", IG_OPT_STR, "/etc/ingrain/tls", G(tls_dir),
	  "Directory with tls.crt, tls.key and ca.crt (the layout of a Kubernetes TLS Secret): "
	  "the aggregator's certificate and key, and the CA that signs agents' certificates. "
	  "Re-read when the files change; new connections use the new files.",
	  .flags = IG_OPTF_RESTART },
	{ "plaintext", IG_OPT_BOOL, "false", G(plaintext),
	  "Listen without TLS (tcp:// or ipc://). Agents are then known only by what their "
	  "envelopes claim: anyone who reaches the port can inject events or forge loss "
	  "counters (docs/security.md). Logged as a warning at start.",
	  .flags = IG_OPTF_RESTART },
	{ "tls_shared_names", IG_OPT_STRLIST, "[]", G(tls_shared_names),
	  "Client certificate names (DNS SAN or CN) that many agents share, e.g. the Helm "
	  "chart's generated ingrain-agent certificate. An agent presenting one is let in, but "
	  "known only by what its envelopes claim: a holder of that certificate can speak for "
	  "any node (docs/security.md). Empty: every agent needs a certificate naming its node.",
	  .max = 16 },
	{ "max_agents", IG_OPT_UINT, "8192", G(max_agents),
	  "Distinct agent identities the aggregator keeps delivery (dedup) and loss state for; "
	  "envelopes from further identities are refused and counted (reason=\"agent_limit\").",
	  .min = 1, .max = 1000000 },
	{ "metrics_max_agents", IG_OPT_UINT, "256", G(metrics_max_agents),
	  "Agents with their own series on /metrics (the first seen); the others are summed "
	  "into agent=\"_other\".",
	  .min = 0, .max = 100000 },
	{ "max_seq_gap", IG_OPT_UINT, "4294967296", G(max_seq_gap),
	  "An envelope whose seq is more than this far ahead of the last one accepted from the "
	  "same agent process is refused, counted (reason=\"seq_gap\") and not remembered. The "
	  "honest gap is the envelopes the agent dropped from its full queue during an outage "
	  "(at most one per batch_max_age or batch_max_records records): 2^32 is over a year at "
	  "100 envelopes/s, while a forged seq such as 2^64-1 is refused.",
	  .min = 1, .max = INT64_MAX },
	{ "control", IG_OPT_STR, "ipc:///run/ingrain/control.sock", G(control),
	  "nng URL of the control socket ingrainctl uses. Empty: off.", .flags = IG_OPTF_RESTART },
	{ "state_dir", IG_OPT_STR, "/var/lib/ingrain", G(state_dir),
	  "Directory for durable state: per-agent delivery (dedup) records (absolute path). "
	  "Empty: kept in memory only, lost on restart.",
	  .flags = IG_OPTF_RESTART },
	{ "max_msg_bytes", IG_OPT_SIZE, "16MiB", G(max_msg_bytes),
	  "Largest envelope accepted from an agent.", .min = 64 * KIB, .max = GIB,
	  .flags = IG_OPTF_RESTART },
	{ "log_level", IG_OPT_ENUM, "info", G(log_level), "Least severe log level written.",
	  .choices = log_levels },
	{ "log_format", IG_OPT_ENUM, "logfmt", G(log_format),
	  "Log line format: logfmt (key=value) or json.", .choices = log_formats },
	{ "metrics_listen", IG_OPT_STR, "", G(metrics_listen),
	  "host:port serving Prometheus /metrics over HTTP. Empty: off.",
	  .flags = IG_OPTF_RESTART },
	{ 0 }
};
#undef G

#define K(f) offsetof(struct ig_kube_conf, f)
static const struct ig_opt kube_opts[] = {
	{ "enabled", IG_OPT_ENUM, "auto", K(enabled),
	  "Pod identity enrichment: auto (when running in a cluster or a kubeconfig is set), "
	  "on, or off.",
	  .choices = kube_modes, .flags = IG_OPTF_RESTART },
	{ "api_server", IG_OPT_STR, "", K(api_server),
	  "https://host:port of the API server. Empty: from KUBERNETES_SERVICE_HOST/PORT.",
	  .flags = IG_OPTF_RESTART },
	{ "token_file", IG_OPT_STR, "/var/run/secrets/kubernetes.io/serviceaccount/token",
	  K(token_file), "Service-account bearer token (re-read when it rotates).",
	  .flags = IG_OPTF_RESTART },
	{ "ca_file", IG_OPT_STR, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", K(ca_file),
	  "CA bundle that signs the API server's certificate.", .flags = IG_OPTF_RESTART },
	{ "kubeconfig", IG_OPT_STR, "", K(kubeconfig),
	  "Out-of-cluster: path to a kubeconfig. Empty: none.", .flags = IG_OPTF_RESTART },
	{ "label_allowlist", IG_OPT_STRLIST, "[]", K(label_allowlist),
	  "Pod labels copied onto events (others are not kept). A record carries at most "
	  "16 labels on the wire (IG_MAX_LABELS): a longer list would make the agent drop "
	  "records as unencodable.",
	  .max = IG_MAX_LABELS, .flags = IG_OPTF_RESTART },
	{ "watch_timeout", IG_OPT_DURATION, "5m", K(watch_timeout_ns),
	  "Server-side timeout of each pod watch.", .min = (int64_t)SEC,
	  .max = (int64_t)(3600 * SEC), .flags = IG_OPTF_RESTART },
	{ "relist_backoff_max", IG_OPT_DURATION, "30s", K(relist_backoff_max_ns),
	  "Cap of the delay between failed list/watch attempts.", .min = (int64_t)SEC,
	  .max = (int64_t)(3600 * SEC), .flags = IG_OPTF_RESTART },
	{ "cgroup_rescan", IG_OPT_DURATION, "30s", K(cgroup_rescan_ns),
	  "Interval of the full cgroup rescan that catches missed container starts.",
	  .min = (int64_t)SEC, .max = (int64_t)(3600 * SEC), .flags = IG_OPTF_RESTART },
	{ "cache_max_entries", IG_OPT_UINT, "65536", K(cache_max_entries),
	  "Entries of the cgroup id -> pod identity cache.", .min = 16, .max = 16777216,
	  .flags = IG_OPTF_RESTART },
	{ 0 }
};
#undef K

static const char *const files_resolve[] = { "lexical", "real_path", NULL };
#define F(f) offsetof(struct ig_files_conf, f)
static const struct ig_opt files_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", F(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", F(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "monitor_dirs", IG_OPT_STRLIST, "[/]", F(monitor_dirs),
	  "Only opens under these absolute directories are reported (filtered in the kernel; "
	  "at most 16, each at most 255 bytes). [/] = everything.",
	  .flags = 0 },
	{ "include_failed", IG_OPT_BOOL, "true", F(include_failed),
	  "Also report opens that failed (EACCES, ENOENT, ...).", .flags = 0 },
	{ "resolve", IG_OPT_ENUM, "lexical", F(resolve),
	  "Path matched against monitor_dirs: lexical (the name passed, made absolute, with "
	  "'.', '..' and '//' folded) or real_path (also the opened file's path from the new "
	  "fd, which sees through symlinks; costs a dentry walk per successful open).",
	  .choices = files_resolve },
	{ 0 }
};
#undef F

#define T(f) offsetof(struct ig_tcp_conf, f)
static const struct ig_opt tcp_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", T(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", T(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "include_failed", IG_OPT_BOOL, "true", T(include_failed),
	  "Also report connects that failed (refused, timed out, ...).", .flags = 0 },
	{ 0 }
};
#undef T

static const char *const traffic_methods[] = { "auto", "sock_tracepoint", "cgroup_skb", NULL };
#define V(f) offsetof(struct ig_traffic_conf, f)
static const struct ig_opt traffic_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", V(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", V(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "interval", IG_OPT_DURATION, "10s", V(interval_ns),
	  "How often the in-kernel counters are read and reported.", .min = (int64_t)MS,
	  .max = (int64_t)(3600 * SEC) },
	{ "max_entries", IG_OPT_UINT, "16384", V(max_entries),
	  "Size of the in-kernel LRU table of flows; evictions are counted.", .min = 64,
	  .max = 4194304 },
	{ "per_remote", IG_OPT_BOOL, "false", V(per_remote),
	  "Also key volume by remote address and port (more series).", .flags = 0 },
	{ "method", IG_OPT_ENUM, "auto", V(method),
	  "How bytes are counted: auto, sock_tracepoint or cgroup_skb (see docs/probes.md).",
	  .choices = traffic_methods },
	{ 0 }
};
#undef V

#define I(f) offsetof(struct ig_file_io_conf, f)
static const struct ig_opt file_io_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", I(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", I(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "monitor_dirs", IG_OPT_STRLIST, "[/]", I(monitor_dirs),
	  "Only reads/writes of files under these absolute directories are counted (at most "
	  "16, each at most 255 bytes).",
	  .flags = 0 },
	{ "interval", IG_OPT_DURATION, "10s", I(interval_ns),
	  "How often the in-kernel counters are read and reported.", .min = (int64_t)MS,
	  .max = (int64_t)(3600 * SEC) },
	{ "max_entries", IG_OPT_UINT, "16384", I(max_entries),
	  "Size of the in-kernel LRU table of (process, file); evictions are counted.", .min = 64,
	  .max = 4194304 },
	{ 0 }
};
#undef I

#define D(f) offsetof(struct ig_dns_conf, f)
static const struct ig_opt dns_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", D(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", D(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "capture_bytes", IG_OPT_SIZE, "4KiB", D(capture_bytes),
	  "Payload bytes sent to user space per TCP flow direction and per UDP datagram; bytes "
	  "past it are not parsed (counted).",
	  .min = 512, .max = 65536 },
	{ "timeout", IG_OPT_DURATION, "5s", D(timeout_ns),
	  "A query with no answer after this long is reported as dns.timeout.",
	  .min = (int64_t)(10 * MS), .max = (int64_t)(600 * SEC) },
	{ "max_pending", IG_OPT_UINT, "16384", D(max_pending),
	  "Queries waiting for their answer; beyond it the oldest is dropped (counted as lost).",
	  .min = 16, .max = 1048576 },
	{ "max_flows", IG_OPT_UINT, "4096", D(max_flows),
	  "TCP flow directions held for reassembly; beyond it the least recently used is "
	  "evicted (counted).",
	  .min = 16, .max = 1048576 },
	{ "server_side", IG_OPT_BOOL, "true", D(server_side),
	  "Also report exchanges answered by servers on this node (role: server). Learning the "
	  "process of a server's accepted TCP sockets (and of sockets older than the agent) "
	  "takes a program on every socket send/recv of the node; false removes it.",
	  .flags = 0 },
	{ "malformed_records", IG_OPT_BOOL, "true", D(malformed_records),
	  "Report messages that cannot be decoded as dns.malformed records (at most 100 per "
	  "second; all are counted).",
	  .flags = 0 },
	{ 0 }
};
#undef D

#define T(f) offsetof(struct ig_tls_conf, f)
static const struct ig_opt tls_opts[] = {
	{ "enabled", IG_OPT_BOOL, "true", T(c.enabled), "Run this probe.", .flags = 0 },
	{ "pipelines", IG_OPT_STRLIST, "[]", T(c.pipelines),
	  "Pipelines (names under pipelines:) its records feed.", .flags = 0 },
	{ "capture_bytes", IG_OPT_SIZE, "4KiB", T(capture_bytes),
	  "Payload bytes sent to user space per TCP flow direction, from its first byte; also "
	  "the largest ClientHello/ServerHello parsed (larger ones are counted, not reported).",
	  .min = 512, .max = 65536 },
	{ "timeout", IG_OPT_DURATION, "5s", T(timeout_ns),
	  "A ClientHello with no ServerHello after this long is reported alone (answered: 0).",
	  .min = (int64_t)(10 * MS), .max = (int64_t)(600 * SEC) },
	{ "max_conns", IG_OPT_UINT, "16384", T(max_conns),
	  "Connections waiting for their ServerHello; beyond it the oldest is reported alone "
	  "and counted.",
	  .min = 16, .max = 1048576 },
	{ "max_flows", IG_OPT_UINT, "4096", T(max_flows),
	  "TCP flow directions held for reassembly; beyond it the least recently used is "
	  "evicted (counted).",
	  .min = 16, .max = 1048576 },
	{ "server_side", IG_OPT_BOOL, "true", T(server_side),
	  "Also report handshakes answered by servers on this node (role: server), with the "
	  "server's process (a program on every socket send/recv of the node; false removes it).",
	  .flags = 0 },
	{ 0 }
};
#undef T

const struct ig_probe_desc ig_probe_descs[IG_PROBE__COUNT] = {
	[IG_PROBE_FILES] = { "files",
			     "File opens (openat/openat2): who opened what, and the result.",
			     files_opts, sizeof(struct ig_files_conf),
			     offsetof(struct ig_files_conf, c) },
	[IG_PROBE_TCP] = { "tcp", "TCP connections: connect, accept and close, IPv4 and IPv6.",
			   tcp_opts, sizeof(struct ig_tcp_conf), offsetof(struct ig_tcp_conf, c) },
	[IG_PROBE_TRAFFIC] = { "traffic",
			       "TCP/UDP bytes and packets per process and direction, counted in the "
			       "kernel.",
			       traffic_opts, sizeof(struct ig_traffic_conf),
			       offsetof(struct ig_traffic_conf, c) },
	[IG_PROBE_FILE_IO] = { "file_io",
			       "File read/write bytes per process and path, counted in the kernel.",
			       file_io_opts, sizeof(struct ig_file_io_conf),
			       offsetof(struct ig_file_io_conf, c) },
	[IG_PROBE_DNS] = { "dns",
			   "DNS queries and answers on any port, UDP and TCP, IPv4 and IPv6, per "
			   "process and pod.",
			   dns_opts, sizeof(struct ig_dns_conf), offsetof(struct ig_dns_conf, c) },
	[IG_PROBE_TLS] = { "tls",
			   "TLS handshakes on any port, IPv4 and IPv6: SNI, versions, ALPN, "
			   "ciphers, groups, JA3/JA3S/JA4, per process and pod.",
			   tls_opts, sizeof(struct ig_tls_conf), offsetof(struct ig_tls_conf, c) },
};

static const char *const sections[] = { "agent",  "kubernetes", "aggregator",
					"probes", "pipelines",	"backends" };
#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static int default_node_name(char **name)
{
	const char *env = getenv("NODE_NAME");
	char host[HOST_NAME_MAX + 1];

	if (env && *env) {
		free(*name);
		*name = strdup(env);
	} else if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		free(*name);
		*name = strdup(host);
	} else {
		free(*name);
		*name = strdup("unknown");
	}
	return *name ? 0 : -ENOMEM;
}

/* Errors for a key of section: positioned at its value when present. */
static void key_err(struct ig_err *err, const struct ig_ynode *sec, const char *where,
		    const char *key, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void key_err(struct ig_err *err, const struct ig_ynode *sec, const char *where,
		    const char *key, const char *fmt, ...)
{
	const struct ig_ynode *v = ig_ymap_get(sec, key);
	char pos[300], msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v)
		ig_err_add(err, "%s: %s.%s: %s", ig_ynode_pos(v, pos, sizeof(pos)), where, key,
			   msg);
	else
		ig_err_add(err, "%s.%s: %s", where, key, msg);
}

static int is_url(const char *s)
{
	return strstr(s, "://") && s[0] != ':';
}

static int check_url(const struct ig_ynode *sec, const char *where, const char *key, const char *v,
		     int empty_ok, struct ig_err *err)
{
	if (!v || (empty_ok && !*v) || is_url(v))
		return 0;
	key_err(err, sec, where, key,
		"expected an nng URL like tcp://127.0.0.1:7700 or ipc:///run/ingrain/sock; "
		"got '%.200s'",
		v);
	return -1;
}

/* tls+tcp:// unless plaintext is chosen explicitly, and then not tls+. */
static int check_transport(const struct ig_ynode *sec, const char *where, const char *key,
			   const char *url, bool plaintext, struct ig_err *err)
{
	bool tls = url && !strncmp(url, "tls+", 4);

	if (!url || !is_url(url))
		return 0;
	if (!tls && !plaintext) {
		key_err(err, sec, where, key,
			"'%.200s' is plaintext: anyone who reaches it can forge events. Use "
			"tls+tcp://host:port with %s.tls_dir, or set %s.plaintext: true to accept "
			"that (docs/security.md)",
			url, where, where);
		return -1;
	}
	if (tls && plaintext) {
		key_err(err, sec, where, "plaintext",
			"true, but %s.%s is a tls+ URL; remove plaintext or use tcp://", where,
			key);
		return -1;
	}
	return 0;
}

static int check_abs(const struct ig_ynode *sec, const char *where, const char *key, const char *v,
		     const char *also, struct ig_err *err)
{
	if (!v || (also && !strcmp(v, also)) || v[0] == '/')
		return 0;
	key_err(err, sec, where, key, "expected an absolute path%s; got '%.200s'",
		also ? " (or auto)" : "", v);
	return -1;
}

static int finish_agent(struct ig_agent_conf *a, const struct ig_ynode *sec, struct ig_err *err)
{
	int rc = 0;

	if (!a->node_name || !*a->node_name) {
		if (default_node_name(&a->node_name) < 0)
			return -ENOMEM;
	}
	if (!a->agent_id || !*a->agent_id) {
		free(a->agent_id);
		a->agent_id = strdup(a->node_name);
		if (!a->agent_id)
			return -ENOMEM;
	}
	rc |= check_url(sec, "agent", "aggregator", a->aggregator, 0, err);
	rc |= check_transport(sec, "agent", "aggregator", a->aggregator, a->plaintext, err);
	if (!a->plaintext)
		rc |= check_abs(sec, "agent", "tls_dir", a->tls_dir, NULL, err);
	rc |= check_abs(sec, "agent", "cgroup_root", a->cgroup_root, "auto", err);
	/* A field that failed to parse is 0: skip the cross-field rules then. */
	if (a->reconnect_max_ns && a->reconnect_min_ns > a->reconnect_max_ns) {
		key_err(err, sec, "agent", "reconnect_min",
			"must not exceed reconnect_max; lower it or raise reconnect_max");
		rc = -1;
	}
	if (a->ringbuf_bytes & (a->ringbuf_bytes - 1)) {
		key_err(err, sec, "agent", "ringbuf_bytes",
			"must be a power of two like 4MiB, 8MiB, 16MiB");
		rc = -1;
	}
	return rc ? -EINVAL : 0;
}

static int finish_aggregator(struct ig_aggregator_conf *g, const struct ig_ynode *sec,
			     struct ig_err *err)
{
	int rc = 0;

	rc |= check_url(sec, "aggregator", "listen", g->listen, 0, err);
	rc |= check_transport(sec, "aggregator", "listen", g->listen, g->plaintext, err);
	if (!g->plaintext)
		rc |= check_abs(sec, "aggregator", "tls_dir", g->tls_dir, NULL, err);
	rc |= check_url(sec, "aggregator", "control", g->control, 1, err);
	if (g->state_dir && *g->state_dir) /* "" = dedup state in memory only */
		rc |= check_abs(sec, "aggregator", "state_dir", g->state_dir, NULL, err);
	return rc ? -EINVAL : 0;
}

static int finish_kube(struct ig_kube_conf *k, const struct ig_ynode *sec, struct ig_err *err)
{
	int rc = 0;

	if (k->api_server && *k->api_server && strncmp(k->api_server, "https://", 8) &&
	    strncmp(k->api_server, "http://", 7)) {
		key_err(err, sec, "kubernetes", "api_server",
			"expected a URL like https://10.0.0.1:443; got '%.200s'", k->api_server);
		rc = -1;
	}
	return rc ? -EINVAL : 0;
}

/* Normalises one monitor_dirs entry in place: collapses "//" and "/./",
 * drops the trailing "/" (except for "/" itself). Returns a reason when the
 * path is not acceptable, else NULL. */
static const char *normalise_dir(char *p)
{
	char *r = p, *w = p;

	if (!*p)
		return "is empty; use \"/\" for everything";
	if (*p != '/')
		return "must be an absolute path (start with '/')";
	while (*r) {
		if (*r == '/') {
			while (*r == '/')
				r++;
			if (r[0] == '.' && (r[1] == '/' || !r[1])) {
				r++; /* "/." component */
				continue;
			}
			if (r[0] == '.' && r[1] == '.' && (r[2] == '/' || !r[2]))
				return "must not contain '..' (the kernel matches path prefixes "
				       "literally)";
			*w++ = '/';
			continue;
		}
		*w++ = *r++;
	}
	if (w > p + 1 && w[-1] == '/')
		w--;
	*w = '\0';
	if (strlen(p) > IG_MONITOR_DIR_LEN)
		return "is longer than 255 bytes";
	return NULL;
}

/* monitor_dirs of files and file_io: bounded, absolute, normalised. */
static int finish_dirs(struct ig_strlist *dirs, const struct ig_ynode *sec, const char *where,
		       struct ig_err *err)
{
	const struct ig_ynode *list = ig_ymap_get(sec, "monitor_dirs");
	char pos[300];
	size_t i;
	int rc = 0;

	if (dirs->n > IG_MONITOR_DIRS_MAX) {
		ig_err_add(err,
			   "%s: %s.monitor_dirs: at most %d directories; got %zu "
			   "(use a common parent directory)",
			   ig_ynode_pos(list, pos, sizeof(pos)), where, IG_MONITOR_DIRS_MAX,
			   dirs->n);
		rc = -1;
	}
	for (i = 0; i < dirs->n; i++) {
		char *d = dirs->v[i];
		char shown[64];
		const struct ig_ynode *item = NULL;
		const char *why;

		snprintf(shown, sizeof(shown), "%s", d);
		why = normalise_dir(d);
		if (!why)
			continue;
		if (list && list->type == IG_Y_SEQ && i < list->n)
			item = list->items[i];
		if (item)
			ig_err_add(err, "%s: %s.monitor_dirs: '%s%s' %s",
				   ig_ynode_pos(item, pos, sizeof(pos)), where, shown,
				   strlen(d) >= sizeof(shown) ? "..." : "", why);
		else
			ig_err_add(err, "%s.monitor_dirs: '%s' %s", where, shown, why);
		rc = -1;
	}
	if (dirs->n == 0 && rc == 0) {
		ig_err_add(err, "%s: %s.monitor_dirs: empty; use [/] to watch everything",
			   ig_ynode_pos(list, pos, sizeof(pos)), where);
		rc = -1;
	}
	return rc ? -EINVAL : 0;
}

static int load_probes(struct ig_conf *c, const struct ig_ynode *probes, struct ig_err *err)
{
	const char *names[IG_PROBE__COUNT];
	char pos[300], where[64];
	size_t i;
	int k, rc = 0;

	for (k = 0; k < IG_PROBE__COUNT; k++)
		names[k] = ig_probe_descs[k].name;
	for (i = 0; i < probes->n; i++) {
		const struct ig_ynode *key = probes->pairs[i].key;
		const struct ig_ynode *sec = probes->pairs[i].val;
		const struct ig_probe_desc *d = NULL;
		struct ig_probe_common *pc;

		for (k = 0; k < IG_PROBE__COUNT; k++)
			if (!strcmp(key->scalar, ig_probe_descs[k].name))
				d = &ig_probe_descs[k];
		if (!d) {
			const char *g = ig_did_you_mean(key->scalar, names, IG_PROBE__COUNT);

			ig_ynode_pos(key, pos, sizeof(pos));
			if (g)
				ig_err_add(err,
					   "%s: probes.%.100s: unknown probe kind (did you mean "
					   "'%s'?)",
					   pos, key->scalar, g);
			else {
				char known[256];
				size_t o = 0;
				known[0] = 0;
				for (int j = 0; j < IG_PROBE__COUNT && o < sizeof(known); j++)
					o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s",
							      j ? ", " : "", names[j]);
				ig_err_add(err, "%s: probes.%.100s: unknown probe kind (known: %s)",
					   pos, key->scalar, known);
			}
			rc = -EINVAL;
			continue;
		}
		k = (int)(d - ig_probe_descs);
		c->probes[k] = calloc(1, d->conf_size);
		if (!c->probes[k])
			return -ENOMEM;
		snprintf(where, sizeof(where), "probes.%s", d->name);
		if (ig_cfg_apply(d->opts, sec, c->probes[k], where, NULL, err) < 0) {
			rc = -EINVAL;
			continue;
		}
		if (k == IG_PROBE_FILES &&
		    finish_dirs(&((struct ig_files_conf *)c->probes[k])->monitor_dirs, sec, where,
				err) < 0)
			rc = -EINVAL;
		if (k == IG_PROBE_FILE_IO &&
		    finish_dirs(&((struct ig_file_io_conf *)c->probes[k])->monitor_dirs, sec, where,
				err) < 0)
			rc = -EINVAL;
		pc = ig_conf_probe_common(c, k);
		if (pc->enabled && pc->pipelines.n == 0) {
			ig_err_add(
				err, "%s: %s: enabled but feeds no pipeline; add pipelines: [name]",
				ig_ynode_pos(sec->plain_null ? key : sec, pos, sizeof(pos)), where);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* Every name in a probe's pipelines: list is defined under pipelines:, once.
 * Here rather than in the aggregator's graph builder so that the agent,
 * `--check-config` of both binaries and `ingrainctl validate` refuse the same
 * files (the agent would otherwise run a probe whose records the aggregator
 * cannot route). */
static int check_routes(const struct ig_conf *c, struct ig_err *err)
{
	const char *names[64];
	size_t nnames = 0;
	int rc = 0;

	for (size_t i = 0; c->pipelines && i < c->pipelines->n && nnames < 64; i++)
		names[nnames++] = c->pipelines->pairs[i].key->scalar;
	for (int k = 0; k < IG_PROBE__COUNT; k++) {
		const struct ig_probe_common *pc = c->probes[k] ? ig_conf_probe_common(c, k) : NULL;
		const char *probe = ig_probe_descs[k].name;
		const struct ig_ynode *pn = NULL;

		if (!pc)
			continue;
		if (c->doc && c->doc->root)
			pn = ig_ymap_get(ig_ymap_get(ig_ymap_get(c->doc->root, "probes"), probe),
					 "pipelines");
		for (size_t i = 0; i < pc->pipelines.n; i++) {
			const char *pname = pc->pipelines.v[i];
			bool found = ig_ymap_get(c->pipelines, pname) != NULL, dup = false;
			char pos[300] = "<default>";

			if (pn && pn->type == IG_Y_SEQ && i < pn->n)
				ig_ynode_pos(pn->items[i], pos, sizeof(pos));
			for (size_t j = 0; j < i; j++)
				dup |= !strcmp(pc->pipelines.v[j], pname);
			if (!found) {
				const char *g = ig_did_you_mean(pname, names, nnames);
				if (!nnames)
					ig_err_add(err,
						   "%s: probes.%s.pipelines[%zu]: unknown pipeline "
						   "'%.100s' (no pipelines are defined); define it "
						   "under 'pipelines:'",
						   pos, probe, i, pname);
				else
					ig_err_add(err,
						   "%s: probes.%s.pipelines[%zu]: unknown pipeline "
						   "'%.100s'%s%s%s; define it under 'pipelines:'",
						   pos, probe, i, pname,
						   g ? " (did you mean '" : "", g ? g : "",
						   g ? "'?)" : "");
				rc = -EINVAL;
			} else if (dup) {
				ig_err_add(
					err,
					"%s: probes.%s.pipelines[%zu]: pipeline '%.100s' is listed "
					"twice; remove one",
					pos, probe, i, pname);
				rc = -EINVAL;
			}
		}
	}
	return rc;
}

/* pipelines:/backends: a mapping, or absent/empty (NULL). */
static int keep_mapping(const struct ig_ynode *root, const char *name, const struct ig_ynode **out,
			struct ig_err *err)
{
	const struct ig_ynode *n = ig_ymap_get(root, name);
	char pos[300];

	*out = NULL;
	if (!n || (n->type == IG_Y_SCALAR && n->plain_null))
		return 0;
	if (n->type != IG_Y_MAP) {
		ig_err_add(err, "%s: %s: expected a mapping of name: {...}; got %s",
			   ig_ynode_pos(n, pos, sizeof(pos)), name, ig_ynode_type_name(n->type));
		return -EINVAL;
	}
	*out = n;
	return 0;
}

void ig_conf_free(struct ig_conf *c)
{
	int k;

	if (!c)
		return;
	ig_cfg_free(agent_opts, &c->agent);
	ig_cfg_free(aggregator_opts, &c->aggregator);
	ig_cfg_free(kube_opts, &c->kubernetes);
	for (k = 0; k < IG_PROBE__COUNT; k++) {
		if (c->probes[k])
			ig_cfg_free(ig_probe_descs[k].opts, c->probes[k]);
		free(c->probes[k]);
	}
	ig_ydoc_free(c->doc);
	free(c->source);
	free(c);
}

/* Applies the schema to a loaded document; takes ownership of doc. */
static int conf_from_doc(struct ig_ydoc *doc, struct ig_conf **out, struct ig_err *err)
{
	const struct ig_ynode *root = doc->root, *sec;
	struct ig_conf *c;
	char pos[300];
	size_t i;
	int rc = 0, r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		ig_ydoc_free(doc);
		ig_err_add(err, "out of memory while loading the configuration");
		return -ENOMEM;
	}
	c->doc = doc;
	c->source = strdup(doc->file);
	if (!c->source)
		goto oom;
	for (i = 0; i < root->n; i++) {
		const struct ig_ynode *key = root->pairs[i].key;
		size_t s;

		for (s = 0; s < N_SECTIONS && strcmp(key->scalar, sections[s]); s++)
			;
		if (s == N_SECTIONS) {
			const char *g = ig_did_you_mean(key->scalar, sections, N_SECTIONS);

			ig_ynode_pos(key, pos, sizeof(pos));
			if (g)
				ig_err_add(err, "%s: %.100s: unknown section (did you mean '%s'?)",
					   pos, key->scalar, g);
			else
				ig_err_add(err,
					   "%s: %.100s: unknown section (valid: agent, kubernetes, "
					   "aggregator, probes, pipelines, backends)",
					   pos, key->scalar);
			rc = -EINVAL;
		}
	}

	/* The finish_* checks run even when the table reported problems: they
	 * only look at fields that were set, so the operator sees everything. */
	sec = ig_ymap_get(root, "agent");
	if (ig_cfg_apply(agent_opts, sec, &c->agent, "agent", NULL, err) < 0)
		rc = -EINVAL;
	r = finish_agent(&c->agent, sec, err);
	if (r == -ENOMEM)
		goto oom;
	if (r < 0)
		rc = -EINVAL;

	sec = ig_ymap_get(root, "kubernetes");
	if (ig_cfg_apply(kube_opts, sec, &c->kubernetes, "kubernetes", NULL, err) < 0)
		rc = -EINVAL;
	if (finish_kube(&c->kubernetes, sec, err) < 0)
		rc = -EINVAL;

	sec = ig_ymap_get(root, "aggregator");
	if (ig_cfg_apply(aggregator_opts, sec, &c->aggregator, "aggregator", NULL, err) < 0)
		rc = -EINVAL;
	if (finish_aggregator(&c->aggregator, sec, err) < 0)
		rc = -EINVAL;

	sec = ig_ymap_get(root, "probes");
	if (sec && sec->type == IG_Y_MAP) {
		r = load_probes(c, sec, err);
		if (r == -ENOMEM)
			goto oom;
		if (r < 0)
			rc = -EINVAL;
	} else if (sec && !(sec->type == IG_Y_SCALAR && sec->plain_null)) {
		ig_err_add(err, "%s: probes: expected a mapping of probe kind: {...}; got %s",
			   ig_ynode_pos(sec, pos, sizeof(pos)), ig_ynode_type_name(sec->type));
		rc = -EINVAL;
	}

	if (keep_mapping(root, "pipelines", &c->pipelines, err) < 0)
		rc = -EINVAL;
	if (keep_mapping(root, "backends", &c->backends, err) < 0)
		rc = -EINVAL;
	if (check_routes(c, err) < 0)
		rc = -EINVAL;

	if (rc < 0) {
		ig_conf_free(c);
		return rc;
	}
	*out = c;
	return 0;
oom:
	ig_err_add(err, "out of memory while loading the configuration");
	ig_conf_free(c);
	return -ENOMEM;
}

int ig_conf_load_string(const char *name, const char *yaml, size_t len, struct ig_conf **out,
			struct ig_err *err)
{
	struct ig_ydoc *doc = NULL;
	int rc;

	*out = NULL;
	rc = ig_ydoc_load_string(name, yaml, len, &doc, err);
	if (rc < 0)
		return rc;
	return conf_from_doc(doc, out, err);
}

int ig_conf_load(const char *path, struct ig_conf **out, struct ig_err *err)
{
	struct ig_ydoc *doc = NULL;
	int rc;

	if (!path)
		return ig_conf_load_string("<default>", ig_conf_default_yaml,
					   strlen(ig_conf_default_yaml), out, err);
	*out = NULL;
	rc = ig_ydoc_load_file(path, &doc, err);
	if (rc < 0)
		return rc;
	return conf_from_doc(doc, out, err);
}

int ig_conf_keep_restart_agent(struct ig_conf *nc, const struct ig_conf *running, char *pending,
			       size_t pending_len)
{
	int a = ig_cfg_keep_restart(agent_opts, &nc->agent, &running->agent, "agent", pending,
				    pending_len);
	if (a < 0)
		return a;
	int k = ig_cfg_keep_restart(kube_opts, &nc->kubernetes, &running->kubernetes, "kubernetes",
				    pending, pending_len);
	return k < 0 ? k : a + k;
}

int ig_conf_keep_restart_aggregator(struct ig_conf *nc, const struct ig_conf *running,
				    char *pending, size_t pending_len)
{
	return ig_cfg_keep_restart(aggregator_opts, &nc->aggregator, &running->aggregator,
				   "aggregator", pending, pending_len);
}

void ig_conf_doc(FILE *out)
{
	char title[64];
	int k;

	fputs("## Sections\n\n"
	      "The file is one YAML mapping with these sections, all optional "
	      "(an absent section takes every default):\n\n"
	      "- `agent`: the node agent (where to send, batching, queue bounds).\n"
	      "- `kubernetes`: how the agent finds pod metadata.\n"
	      "- `aggregator`: the aggregator (listen address, control socket, state).\n"
	      "- `probes`: one section per probe kind, each naming the pipelines its records "
	      "feed. A probe whose section is absent does not run.\n"
	      "- `pipelines`: name -> `{stages: [...], backends: [...]}`.\n"
	      "- `backends`: name -> `{type: ..., options}`.\n\n"
	      "Durations are written like `250ms`, `10s`, `5m`, `1h` (a bare number is "
	      "seconds); sizes like `512`, `64KiB`, `4MiB`, `1GiB` (`k`, `M`, `G` are powers "
	      "of 1000); booleans as `true`/`false`, `yes`/`no`, `on`/`off`. A key with no "
	      "value (`key:` or `key: ~`) takes its default.\n\n",
	      out);
	ig_cfg_doc(out, "`agent`", "Settings of `ingrain-agent`, the per-node collector.",
		   agent_opts);
	ig_cfg_doc(out, "`kubernetes`",
		   "How the agent maps cgroups to containers and pods. An absent section takes "
		   "every default.",
		   kube_opts);
	ig_cfg_doc(out, "`aggregator`", "Settings of `ingrain-aggregator`.", aggregator_opts);
	for (k = 0; k < IG_PROBE__COUNT; k++) {
		snprintf(title, sizeof(title), "`probes.%s`", ig_probe_descs[k].name);
		ig_cfg_doc(out, title, ig_probe_descs[k].summary, ig_probe_descs[k].opts);
	}
}
