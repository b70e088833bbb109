/* ig_conf: ingrain's configuration file, shared by the agent and the aggregator.
 *
 * One YAML file, six top-level sections (docs/configuration.md):
 *   agent:       the node agent (where to send, batching, queue bounds)
 *   kubernetes:  how the agent finds pod metadata (API server, labels kept)
 *   aggregator:  the aggregator (listen address, control socket, state)
 *   probes:      one section per probe kind (files, ...), each naming the
 *                pipelines its records feed
 *   pipelines:   name -> {stages: [...], backends: [...]}
 *   backends:    name -> {type: console|statsd|..., options}
 * Both binaries load the whole file with the same checks; `pipelines` and
 * `backends` are kept as YAML nodes here and validated by the aggregator's
 * stage and backend tables (ig_conf does check that they are mappings).
 * The default configuration is compiled in (ig_conf_default_yaml).
 */
#ifndef IG_CONF_H
#define IG_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ig_config.h"
#include "ig_err.h"
#include "ig_yaml.h"

#define IG_AGENT_BUFFER_DIR_DEFAULT "/var/lib/ingrain/agent/buffer"

struct ig_agent_conf {
	char *node_name; /* default: $NODE_NAME, else hostname */
	char *agent_id; /* default: node name */
	char *aggregator; /* nng URL */
	char *tls_dir; /* tls.crt, tls.key, ca.crt (a Kubernetes TLS Secret) */
	char *tls_server_name; /* name the aggregator's certificate carries; "" = URL host */
	bool plaintext; /* explicit opt-in to tcp:// without TLS */
	bool tls_shared_identity; /* one certificate for all agents (the chart's default) */
	uint64_t wire_version; /* envelope version sent: 1 or 2 */
	uint64_t batch_max_records;
	uint64_t batch_max_age_ns;
	uint64_t queue_max_batches;
	uint64_t queue_max_bytes;
	uint64_t ack_timeout_ns;
	uint64_t reconnect_min_ns, reconnect_max_ns;
	uint64_t aggregator_resolve_ns;
	uint64_t ringbuf_bytes;
	uint64_t wakeup_records; /* ring buffer consumer woken every N records */
	uint64_t poll_interval_ns; /* ... or at least this often */
	uint64_t shutdown_timeout_ns;
	char *buffer_dir; /* disk form of the unacked queue; "" = memory only */
	bool buffer_fsync;
	bool drop_capabilities;
	bool mount_tracefs, mount_bpffs;
	char *cgroup_root; /* "auto" or a path to the cgroup v2 hierarchy */
	int log_level; /* enum ig_log_level */
	int log_format; /* enum ig_log_format */
	char *metrics_listen; /* HTTP /metrics address, "" = off */
};

struct ig_aggregator_conf {
	char *listen; /* nng URL agents dial */
	char *tls_dir;
	bool plaintext;
	struct ig_strlist tls_shared_names; /* client certificate names shared by many agents */
	uint64_t max_agents; /* distinct agent identities kept (dedup + loss state) */
	uint64_t metrics_max_agents; /* agents with per-agent series on /metrics */
	uint64_t max_seq_gap; /* an envelope further ahead of the last accepted seq is refused */
	char *control; /* ingrainctl control socket URL */
	char *state_dir;
	uint64_t max_msg_bytes;
	int log_level;
	int log_format;
	char *metrics_listen;
};

/* Identity enrichment (node agent): cgroup id -> container -> pod. */
struct ig_kube_conf {
	int enabled; /* 0 auto (in-cluster env or kubeconfig present), 1 on, 2 off */
	char *api_server; /* https://host:port; "" = from KUBERNETES_SERVICE_HOST/PORT */
	char *token_file; /* default /var/run/secrets/kubernetes.io/serviceaccount/token */
	char *ca_file; /* default .../serviceaccount/ca.crt */
	char *kubeconfig; /* out-of-cluster: path to a kubeconfig ("" = none) */
	struct ig_strlist label_allowlist; /* pod labels copied onto events (default []) */
	uint64_t watch_timeout_ns; /* server-side watch timeout (default 5m) */
	uint64_t relist_backoff_max_ns; /* reconnect backoff cap (default 30s) */
	uint64_t cgroup_rescan_ns; /* full cgroup rescan interval (default 30s) */
	uint64_t cache_max_entries; /* cgroup id -> identity entries (default 65536) */
};

/* Settings every probe has. */
struct ig_probe_common {
	bool enabled;
	struct ig_strlist pipelines;
};

struct ig_files_conf {
	struct ig_probe_common c;
	struct ig_strlist monitor_dirs; /* absolute prefixes; ["/"] = everything */
	bool include_failed; /* also report opens that failed */
	int resolve; /* 0 lexical, 1 real_path (enum ig_file_resolve, bpf/files.h) */
};

/* TCP connection lifecycle: connect, accept, close (with bytes and duration). */
struct ig_tcp_conf {
	struct ig_probe_common c;
	bool include_failed; /* report failed connects */
};

/* TCP/UDP traffic volume per process, aggregated in the kernel. */
struct ig_traffic_conf {
	struct ig_probe_common c;
	uint64_t interval_ns; /* how often the kernel maps are read */
	uint64_t max_entries; /* LRU map size; evictions are counted */
	bool per_remote; /* key by remote address/port too */
	int method; /* 0 auto, 1 sock_tracepoint, 2 cgroup_skb */
};

/* File read/write volume per process and path, aggregated in the kernel. */
struct ig_file_io_conf {
	struct ig_probe_common c;
	struct ig_strlist monitor_dirs;
	uint64_t interval_ns;
	uint64_t max_entries;
};

/* DNS exchanges on any port, from the payload capture layer (docs/capture.md). */
struct ig_dns_conf {
	struct ig_probe_common c;
	uint64_t capture_bytes; /* TCP: per flow direction; UDP: per datagram */
	uint64_t timeout_ns; /* a query unanswered this long becomes dns.timeout */
	uint64_t max_pending; /* queries waiting for their answer */
	uint64_t max_flows; /* TCP flow directions held for reassembly */
	bool server_side; /* also report exchanges answered by local servers */
	bool malformed_records; /* report undecodable messages as dns.malformed */
};

/* TLS handshakes on any port, from the payload capture layer (docs/capture.md). */
struct ig_tls_conf {
	struct ig_probe_common c;
	uint64_t capture_bytes; /* per TCP flow direction; also the largest hello parsed */
	uint64_t timeout_ns; /* a ClientHello unanswered this long is reported alone */
	uint64_t max_conns; /* connections waiting for their ServerHello */
	uint64_t max_flows; /* TCP flow directions held for reassembly */
	bool server_side; /* also report handshakes of servers on this node */
};

/* Probe kinds known to the configuration. The order is the order of
 * enum ig_probe_kind. */
enum ig_probe_kind {
	IG_PROBE_FILES = 0,
	IG_PROBE_TCP,
	IG_PROBE_TRAFFIC,
	IG_PROBE_FILE_IO,
	IG_PROBE_DNS,
	IG_PROBE_TLS,
	IG_PROBE__COUNT
};

struct ig_probe_desc {
	const char *name;
	const char *summary;
	const struct ig_opt *opts;
	size_t conf_size;
	size_t common_offset; /* where struct ig_probe_common sits in the conf */
};
extern const struct ig_probe_desc ig_probe_descs[IG_PROBE__COUNT];

struct ig_conf {
	char *source; /* file path, or "<default>" */
	struct ig_ydoc *doc;
	struct ig_agent_conf agent;
	struct ig_aggregator_conf aggregator;
	struct ig_kube_conf kubernetes;
	void *probes[IG_PROBE__COUNT]; /* conf structs; NULL when the section is absent */
	const struct ig_ynode *pipelines; /* mapping or NULL */
	const struct ig_ynode *backends; /* mapping or NULL */
};

extern const char ig_conf_default_yaml[];

/* Loads path (NULL = the embedded default). 0, or -EINVAL/-ENOENT with every
 * problem in err. On success the caller owns *out (ig_conf_free). */
int ig_conf_load(const char *path, struct ig_conf **out, struct ig_err *err);
int ig_conf_load_string(const char *name, const char *yaml, size_t len, struct ig_conf **out,
			struct ig_err *err);
void ig_conf_free(struct ig_conf *c);
static inline struct ig_probe_common *ig_conf_probe_common(const struct ig_conf *c, int kind)
{
	return c->probes[kind] ? (struct ig_probe_common *)((char *)c->probes[kind] +
							    ig_probe_descs[kind].common_offset) :
				 NULL;
}
/* Markdown reference of agent, aggregator and probe options. */
void ig_conf_doc(FILE *out);
/* A reload of the agent (agent:, kubernetes:) or of the aggregator
 * (aggregator:): the options marked restart-only keep their running values
 * in nc, each change warned by name and listed in pending (may be NULL).
 * ig_cfg_keep_restart's return. */
int ig_conf_keep_restart_agent(struct ig_conf *nc, const struct ig_conf *running, char *pending,
			       size_t pending_len);
int ig_conf_keep_restart_aggregator(struct ig_conf *nc, const struct ig_conf *running,
				    char *pending, size_t pending_len);

#endif
