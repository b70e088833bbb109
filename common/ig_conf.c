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
#define IG_MONITOR_DIR_LEN 255

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "logfmt", "json", NULL };
static const char *const kube_modes[] = { "auto", "on", "off", NULL };

#define A(f) offsetof(struct ig_agent_conf, f)
static const struct ig_opt agent_opts[] = {
	{ "node_name", IG_OPT_STR, "", A(node_name),
	  "Name of this node in records. Empty: $NODE_NAME (set it from the downward API), "
	  "else the host name.",
	  .flags = 0 },
	{ "agent_id", IG_OPT_STR, "", A(agent_id),
	  "Identity the aggregator tracks delivery under. Empty: the node name.", .flags = 0 },
	{ "aggregator", IG_OPT_STR, "tcp://127.0.0.1:7700", A(aggregator),
	  "nng URL of the aggregator (tcp://host:port or ipc:///path).", .flags = 0 },
	{ "batch_max_records", IG_OPT_UINT, "512", A(batch_max_records),
	  "Records per envelope sent to the aggregator.", .min = 1, .max = 65536 },
	{ "batch_max_age", IG_OPT_DURATION, "200ms", A(batch_max_age_ns),
	  "Send a partial envelope after this long.", .min = (int64_t)MS,
	  .max = (int64_t)(60 * SEC) },
	{ "queue_max_batches", IG_OPT_UINT, "4096", A(queue_max_batches),
	  "Unacknowledged envelopes kept in memory; beyond it the oldest is dropped and counted.",
	  .min = 1, .max = 1048576 },
	{ "queue_max_bytes", IG_OPT_SIZE, "256MiB", A(queue_max_bytes),
	  "Memory bound of the unacknowledged queue.", .min = MIB, .max = 64 * GIB },
	{ "ack_timeout", IG_OPT_DURATION, "5s", A(ack_timeout_ns),
	  "Resend an envelope the aggregator has not acknowledged within this time.",
	  .min = (int64_t)(100 * MS), .max = (int64_t)(600 * SEC) },
	{ "reconnect_min", IG_OPT_DURATION, "100ms", A(reconnect_min_ns),
	  "First delay before redialling a lost aggregator.", .min = (int64_t)MS,
	  .max = (int64_t)(600 * SEC) },
	{ "reconnect_max", IG_OPT_DURATION, "5s", A(reconnect_max_ns),
	  "Cap of the exponential redial delay.", .min = (int64_t)MS, .max = (int64_t)(600 * SEC) },
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
	  .flags = 0 },
	{ "buffer_fsync", IG_OPT_BOOL, "true", A(buffer_fsync),
	  "fdatasync each envelope written to buffer_dir (survives power loss); false: written "
	  "only, survives a crash of the agent, not of the machine.",
	  .flags = 0 },
	{ "drop_capabilities", IG_OPT_BOOL, "true", A(drop_capabilities),
	  "Once the probes are attached, drop every capability (bounding and effective sets; "
	  "the probes' load set stays permitted for reloads) and set no_new_privs.",
	  .flags = 0 },
	{ "mount_tracefs", IG_OPT_BOOL, "true", A(mount_tracefs),
	  "Mount tracefs at /sys/kernel/tracing if it is not mounted.", .flags = 0 },
	{ "mount_bpffs", IG_OPT_BOOL, "true", A(mount_bpffs),
	  "Mount bpffs at /sys/fs/bpf if it is not mounted.", .flags = 0 },
	{ "cgroup_root", IG_OPT_STR, "auto", A(cgroup_root),
	  "Path of the cgroup v2 hierarchy, or auto to find it in /proc/self/mounts.", .flags = 0 },
	{ "log_level", IG_OPT_ENUM, "info", A(log_level), "Least severe log level written.",
	  .choices = log_levels },
	{ "log_format", IG_OPT_ENUM, "logfmt", A(log_format),
	  "Log line format: logfmt (key=value) or json.", .choices = log_formats },
	{ "metrics_listen", IG_OPT_STR, "", A(metrics_listen),
	  "host:port serving Prometheus /metrics over HTTP. Empty: off.", .flags = 0 },
	{ 0 }
};
#undef A

#define G(f) offsetof(struct ig_aggregator_conf, f)
static const struct ig_opt aggregator_opts[] = {
	{ "listen", IG_OPT_STR, "tcp://127.0.0.1:7700", G(listen),
	  "nng URL agents dial (tcp://host:port or ipc:///path).", .flags = 0 },
	{ "control", IG_OPT_STR, "ipc:///run/ingrain/control.sock", G(control),
	  "nng URL of the control socket ingrainctl uses. Empty: off.", .flags = 0 },
	{ "state_dir", IG_OPT_STR, "/var/lib/ingrain", G(state_dir),
	  "Directory for durable state: per-agent delivery (dedup) records (absolute path). "
	  "Empty: kept in memory only, lost on restart.",
	  .flags = 0 },
	{ "max_msg_bytes", IG_OPT_SIZE, "16MiB", G(max_msg_bytes),
	  "Largest envelope accepted from an agent.", .min = 64 * KIB, .max = GIB },
	{ "log_level", IG_OPT_ENUM, "info", G(log_level), "Least severe log level written.",
	  .choices = log_levels },
	{ "log_format", IG_OPT_ENUM, "logfmt", G(log_format),
	  "Log line format: logfmt (key=value) or json.", .choices = log_formats },
	{ "metrics_listen", IG_OPT_STR, "", G(metrics_listen),
	  "host:port serving Prometheus /metrics over HTTP. Empty: off.", .flags = 0 },
	{ 0 }
};
#undef G

#define K(f) offsetof(struct ig_kube_conf, f)
static const struct ig_opt kube_opts[] = {
	{ "enabled", IG_OPT_ENUM, "auto", K(enabled),
	  "Pod identity enrichment: auto (when running in a cluster or a kubeconfig is set), "
	  "on, or off.",
	  .choices = kube_modes },
	{ "api_server", IG_OPT_STR, "", K(api_server),
	  "https://host:port of the API server. Empty: from KUBERNETES_SERVICE_HOST/PORT.",
	  .flags = 0 },
	{ "token_file", IG_OPT_STR, "/var/run/secrets/kubernetes.io/serviceaccount/token",
	  K(token_file), "Service-account bearer token (re-read when it rotates).", .flags = 0 },
	{ "ca_file", IG_OPT_STR, "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", K(ca_file),
	  "CA bundle that signs the API server's certificate.", .flags = 0 },
	{ "kubeconfig", IG_OPT_STR, "", K(kubeconfig),
	  "Out-of-cluster: path to a kubeconfig. Empty: none.", .flags = 0 },
	{ "label_allowlist", IG_OPT_STRLIST, "[]", K(label_allowlist),
	  "Pod labels copied onto events (others are not kept).", .flags = 0 },
	{ "watch_timeout", IG_OPT_DURATION, "5m", K(watch_timeout_ns),
	  "Server-side timeout of each pod watch.", .min = (int64_t)SEC,
	  .max = (int64_t)(3600 * SEC) },
	{ "relist_backoff_max", IG_OPT_DURATION, "30s", K(relist_backoff_max_ns),
	  "Cap of the delay between failed list/watch attempts.", .min = (int64_t)SEC,
	  .max = (int64_t)(3600 * SEC) },
	{ "cgroup_rescan", IG_OPT_DURATION, "30s", K(cgroup_rescan_ns),
	  "Interval of the full cgroup rescan that catches missed container starts.",
	  .min = (int64_t)SEC, .max = (int64_t)(3600 * SEC) },
	{ "cache_max_entries", IG_OPT_UINT, "65536", K(cache_max_entries),
	  "Entries of the cgroup id -> pod identity cache.", .min = 16, .max = 16777216 },
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
			else
				ig_err_add(
					err,
					"%s: probes.%.100s: unknown probe kind (known: files, tcp, traffic, file_io)",
					pos, key->scalar);
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
