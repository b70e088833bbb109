/* agent: see agent.h. */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "identity.h"
#include "ig_httpd.h"
#include "ig_log.h"
#include "ig_prom.h"
#include "ig_time.h"
#include "ig_tls.h"
#include "ig_wire.h"
#include "probe.h"
#include "privs.h"
#include "sender.h"
#include "sysprep.h"

#define STATS_LOG_INTERVAL_NS (60 * IG_NSEC_PER_SEC)
#define ENVELOPE_MAX_BYTES (4u << 20)

struct probe_inst {
	const struct ig_probe_ops *ops;
	void *state;
};

struct ig_agent {
	struct ig_conf *conf;
	char *config_path;
	int epfd, sigfd;
	struct probe_inst probes[IG_PROBE__COUNT];
	struct ig_sink sink; /* probes hand their records to sink_emit through it */
	int nprobes;
	struct ig_wire_enc *enc;
	struct ig_sender *sender;
	uint64_t boot_id, seq;
	uint64_t batch_started_ns; /* mono time of the first record in the open batch */
	uint64_t lost_reported; /* sum of the loss counters in the last sealed envelope */
	uint64_t records; /* records encoded */
	uint64_t lost_encode; /* records that could not be encoded */
	uint64_t ringbuf_full_closed, other_lost_closed; /* from probes closed by a reload */
	char restart_pending[512]; /* restart-only settings the file changed, kept (reload) */
	char *ov_aggregator, *ov_node_name, *ov_buffer_dir; /* command line: win on reload */
	uint64_t last_stats_ns, last_publish_ns;
	struct ig_httpd *httpd;
	struct ig_ident *ident;
	uint64_t last_ident_tick_ns;
	uint64_t last_tls_check_ns;
	bool stopping;
	struct ig_ratelimit rl_encode;
};

static void close_probes(struct ig_agent *a)
{
	for (int i = 0; i < a->nprobes; i++) {
		struct ig_probe_stats st = { 0 };
		a->probes[i].ops->stats(a->probes[i].state, &st);
		a->ringbuf_full_closed += st.ringbuf_full;
		a->other_lost_closed += st.other_lost;
		int fd = a->probes[i].ops->epoll_fd(a->probes[i].state);
		if (fd >= 0)
			epoll_ctl(a->epfd, EPOLL_CTL_DEL, fd, NULL);
		a->probes[i].ops->close(a->probes[i].state);
	}
	a->nprobes = 0;
}

static void sink_emit(void *ctx, struct ig_record *r);

static int open_probes(struct ig_agent *a, const struct ig_conf *conf, struct ig_err *err)
{
	a->sink.emit = sink_emit;
	a->sink.ctx = a;
	for (int i = 0; ig_probe_table[i]; i++) {
		const struct ig_probe_ops *ops = ig_probe_table[i];
		struct ig_probe_common *pc = ig_conf_probe_common(conf, (int)ops->kind);
		if (!pc || !pc->enabled)
			continue;
		void *state = NULL;
		int rv = ops->open(&state, conf->probes[ops->kind], &conf->agent, &a->sink, err);
		if (rv < 0) {
			ig_err_add(err, "probe %s: cannot start (%s)", ops->name, strerror(-rv));
			close_probes(a);
			return rv;
		}
		int fd = ops->epoll_fd(state);
		if (fd >= 0) {
			struct epoll_event ev = { .events = EPOLLIN,
						  .data.u32 = 1 + (uint32_t)a->nprobes };
			epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
		a->probes[a->nprobes].ops = ops;
		a->probes[a->nprobes].state = state;
		a->nprobes++;
		ig_info("probe started", "probe=%s", ops->name);
	}
	if (a->nprobes == 0) {
		ig_err_add(err,
			   "no probe is enabled: enable at least one under probes: (e.g. files)");
		return -EINVAL;
	}
	return 0;
}

static void lost_totals(struct ig_agent *a, uint64_t *ringbuf, uint64_t *other)
{
	*ringbuf = a->ringbuf_full_closed;
	*other = a->other_lost_closed;
	for (int i = 0; i < a->nprobes; i++) {
		struct ig_probe_stats st = { 0 };
		a->probes[i].ops->stats(a->probes[i].state, &st);
		*ringbuf += st.ringbuf_full;
		*other += st.other_lost;
	}
}

static void seal_batch(struct ig_agent *a)
{
	struct ig_envelope_hdr h = { 0 };
	struct ig_sender_stats ss;
	uint64_t rb, other;
	void *buf = NULL;
	size_t len = 0;
	uint32_t n = ig_wire_enc_count(a->enc);

	ig_sender_stats(a->sender, &ss);
	lost_totals(a, &rb, &other);
	uint64_t lost_sum = rb + other + ss.lost_queue_overflow + ss.lost_rejected +
			    ss.lost_buffer_corrupt + a->lost_encode;
	/* An envelope without records still goes out when there is new loss to
	 * report (e.g. counted at start, with nothing else to send). */
	if (n == 0 && lost_sum == a->lost_reported)
		return;
	a->lost_reported = lost_sum;
	h.v = 0; /* the encoder's version */
	h.agent_id = a->conf->agent.agent_id;
	h.node = a->conf->agent.node_name;
	h.boot_id = a->boot_id;
	h.seq = ++a->seq;
	h.sent_ns = ig_wall_ns();
	h.lost[h.nlost++] = (struct ig_wire_lost){ "ringbuf_full", rb };
	h.lost[h.nlost++] = (struct ig_wire_lost){ "probe_other", other };
	h.lost[h.nlost++] = (struct ig_wire_lost){ "queue_overflow", ss.lost_queue_overflow };
	h.lost[h.nlost++] = (struct ig_wire_lost){ "rejected", ss.lost_rejected };
	h.lost[h.nlost++] = (struct ig_wire_lost){ "buffer_corrupt", ss.lost_buffer_corrupt };
	h.lost[h.nlost++] = (struct ig_wire_lost){ "encode", a->lost_encode };
	if (ig_wire_enc_finish(a->enc, &h, &buf, &len) < 0) {
		a->lost_encode += n;
		ig_error("cannot build envelope (out of memory); records lost", "records=%u", n);
	} else {
		ig_sender_enqueue(a->sender, h.seq, buf, len, n);
	}
	ig_wire_enc_reset(a->enc);
	a->batch_started_ns = 0;
}

static void sink_emit(void *ctx, struct ig_record *r)
{
	struct ig_agent *a = ctx;

	r->node = a->conf->agent.node_name;
	ig_ident_fill(a->ident, r);
	if (ig_wire_enc_add(a->enc, r) < 0) {
		uint64_t sup = 0;
		a->lost_encode++;
		if (ig_ratelimit_ok(&a->rl_encode, &sup))
			ig_error("cannot encode record; counted as lost", "kind=%s suppressed=%llu",
				 r->kind, (unsigned long long)sup);
		return;
	}
	a->records++;
	if (!a->batch_started_ns)
		a->batch_started_ns = ig_mono_ns();
	if (ig_wire_enc_count(a->enc) >= a->conf->agent.batch_max_records ||
	    ig_wire_enc_bytes(a->enc) >= ENVELOPE_MAX_BYTES)
		seal_batch(a);
}

static void log_stats(struct ig_agent *a)
{
	struct ig_sender_stats ss;
	struct ig_ident_stats is = { 0 };
	uint64_t rb, other;
	ig_sender_stats(a->sender, &ss);
	if (a->ident) {
		ig_ident_stats(a->ident, &is);
		ig_info("identity stats",
			"hits=%llu misses=%llu vanished=%llu lazy_resolved=%llu lazy_failed=%llu "
			"cgroups=%llu pods=%llu api=%s watch_restarts=%llu relists_410=%llu "
			"api_errors=%llu",
			(unsigned long long)is.hits, (unsigned long long)is.misses,
			(unsigned long long)is.vanished, (unsigned long long)is.lazy_resolved,
			(unsigned long long)is.lazy_failed, (unsigned long long)is.cgroups_known,
			(unsigned long long)is.pods_known, ig_api_state_name(is.api_state),
			(unsigned long long)is.watch_restarts, (unsigned long long)is.relists_410,
			(unsigned long long)is.api_errors);
	}
	lost_totals(a, &rb, &other);
	ig_info("stats",
		"records=%llu acked=%llu envelopes=%llu resends=%llu duplicates=%llu queued=%llu "
		"connected=%d lost_ringbuf_full=%llu lost_probe_other=%llu lost_queue_overflow=%llu "
		"lost_rejected=%llu lost_encode=%llu lost_buffer_corrupt=%llu buffered=%llu "
		"replayed=%llu buffer_errors=%llu",
		(unsigned long long)a->records, (unsigned long long)ss.records_acked,
		(unsigned long long)ss.batches_sent, (unsigned long long)ss.resends,
		(unsigned long long)ss.duplicates, (unsigned long long)ss.queued_records,
		ss.connected, (unsigned long long)rb, (unsigned long long)other,
		(unsigned long long)ss.lost_queue_overflow, (unsigned long long)ss.lost_rejected,
		(unsigned long long)a->lost_encode, (unsigned long long)ss.lost_buffer_corrupt,
		(unsigned long long)ss.buffered_records, (unsigned long long)ss.replayed_records,
		(unsigned long long)ss.buffer_errors);
}

/* The /metrics snapshot (ig_httpd), rendered about once a second. */
static void publish_metrics(struct ig_agent *a)
{
	struct ig_sender_stats ss;
	struct ig_prom p;

	if (!a->httpd)
		return;
	ig_sender_stats(a->sender, &ss);
	ig_prom_init(&p);
	ig_prom_family(&p, "ingrain_agent_probe_events_total", "counter",
		       "Events read from a probe's ring buffer.");
	const char *variants[IG_PROBE__COUNT] = { 0 };
	for (int i = 0; i < a->nprobes; i++) {
		struct ig_probe_stats st = { 0 };
		a->probes[i].ops->stats(a->probes[i].state, &st);
		ig_prom_sample(&p, "ingrain_agent_probe_events_total", "probe",
			       a->probes[i].ops->name, (double)st.events);
		variants[i] = st.variant;
	}
	ig_prom_family(&p, "ingrain_agent_probe_variant", "gauge",
		       "1 for the program variant each probe runs, as chosen by feature "
		       "probing at start-up (docs/kernels.md).");
	for (int i = 0; i < a->nprobes; i++)
		if (variants[i])
			ig_prom_sample2(&p, "ingrain_agent_probe_variant", "probe",
					a->probes[i].ops->name, "variant", variants[i], 1);
	uint64_t rb, other;
	lost_totals(a, &rb, &other);
	ig_prom_family(&p, "ingrain_agent_lost_records_total", "counter",
		       "Records lost before reaching the aggregator, by cause.");
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "ringbuf_full", (double)rb);
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "probe_other",
		       (double)other);
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "queue_overflow",
		       (double)ss.lost_queue_overflow);
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "rejected",
		       (double)ss.lost_rejected);
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "buffer_corrupt",
		       (double)ss.lost_buffer_corrupt);
	ig_prom_sample(&p, "ingrain_agent_lost_records_total", "cause", "encode",
		       (double)a->lost_encode);
	ig_prom_family(&p, "ingrain_agent_records_total", "counter",
		       "Records encoded for sending.");
	ig_prom_sample(&p, "ingrain_agent_records_total", NULL, NULL, (double)a->records);
	ig_prom_family(&p, "ingrain_agent_records_acked_total", "counter",
		       "Records the aggregator acknowledged.");
	ig_prom_sample(&p, "ingrain_agent_records_acked_total", NULL, NULL,
		       (double)ss.records_acked);
	ig_prom_family(&p, "ingrain_agent_resends_total", "counter", "Envelopes sent again.");
	ig_prom_sample(&p, "ingrain_agent_resends_total", NULL, NULL, (double)ss.resends);
	ig_prom_family(&p, "ingrain_agent_queue_records", "gauge", "Records waiting for an ack.");
	ig_prom_sample(&p, "ingrain_agent_queue_records", NULL, NULL, (double)ss.queued_records);
	ig_prom_family(&p, "ingrain_agent_queue_bytes", "gauge", "Bytes waiting for an ack.");
	ig_prom_sample(&p, "ingrain_agent_queue_bytes", NULL, NULL, (double)ss.queued_bytes);
	ig_prom_family(&p, "ingrain_agent_buffer_records", "gauge",
		       "Records waiting for an ack that are in buffer_dir (survive a crash).");
	ig_prom_sample(&p, "ingrain_agent_buffer_records", NULL, NULL, (double)ss.buffered_records);
	if (a->ident) {
		struct ig_ident_stats is;
		ig_ident_stats(a->ident, &is);
		ig_prom_family(&p, "ingrain_agent_identity_lookups_total", "counter",
			       "Identity lookups by result (miss = event sent without identity).");
		ig_prom_sample(&p, "ingrain_agent_identity_lookups_total", "result", "hit",
			       (double)is.hits);
		ig_prom_sample(&p, "ingrain_agent_identity_lookups_total", "result", "miss",
			       (double)is.misses);
		ig_prom_sample(&p, "ingrain_agent_identity_lookups_total", "result", "vanished",
			       (double)is.vanished);
		ig_prom_family(&p, "ingrain_agent_identity_cgroups", "gauge", "cgroups cached.");
		ig_prom_sample(&p, "ingrain_agent_identity_cgroups", NULL, NULL,
			       (double)is.cgroups_known);
		ig_prom_family(&p, "ingrain_agent_identity_pods", "gauge",
			       "Pods known from the API.");
		ig_prom_sample(&p, "ingrain_agent_identity_pods", NULL, NULL,
			       (double)is.pods_known);
		ig_prom_family(&p, "ingrain_agent_kubernetes_api_up", "gauge",
			       "1 when the pod watch is connected.");
		ig_prom_sample(&p, "ingrain_agent_kubernetes_api_up", "state",
			       ig_api_state_name(is.api_state),
			       is.api_state == IG_API_CONNECTED ? 1 : 0);
	}
	ig_prom_family(&p, "ingrain_agent_connected", "gauge",
		       "1 when connected to the aggregator.");
	ig_prom_sample(&p, "ingrain_agent_connected", NULL, NULL, ss.connected ? 1 : 0);
	if (ig_tls_url_is_tls(a->conf->agent.aggregator)) {
		uint64_t tf[IG_TLS_FAIL__COUNT];
		ig_tls_fail_counts(tf);
		ig_prom_family(&p, "ingrain_tls_handshake_failures_total", "counter",
			       "TLS handshakes with the aggregator that failed, by reason.");
		for (int i = 0; i < IG_TLS_FAIL__COUNT; i++)
			ig_prom_sample(&p, "ingrain_tls_handshake_failures_total", "reason",
				       ig_tls_fail_names[i], (double)tf[i]);
	}
	ig_prom_family(&p, "ingrain_agent_aggregator_moves_total", "counter",
		       "Switches to another aggregator replica (the replica set changed).");
	ig_prom_sample(&p, "ingrain_agent_aggregator_moves_total", NULL, NULL, (double)ss.moves);
	ig_httpd_publish(a->httpd, p.buf ? p.buf : "", p.len);
	ig_prom_free(&p);
}

static void drain_probes(struct ig_agent *a)
{
	for (int i = 0; i < a->nprobes; i++) {
		int rv = a->probes[i].ops->consume(a->probes[i].state);
		if (rv < 0 && rv != -EINTR)
			ig_warn("probe consume failed", "probe=%s err=\"%s\"",
				a->probes[i].ops->name, strerror(-rv));
	}
}

static int set_str(char **dst, const char *v)
{
	char *c;

	if (!v)
		return 0;
	if (!(c = strdup(v)))
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

int ig_agent_overrides_apply(const struct ig_agent_overrides *o, struct ig_conf *c)
{
	if (!o)
		return 0;
	if (set_str(&c->agent.aggregator, o->aggregator) ||
	    set_str(&c->agent.node_name, o->node_name) ||
	    set_str(&c->agent.buffer_dir, o->buffer_dir))
		return -ENOMEM;
	return 0;
}

/* SIGHUP: load and validate the file again; on success restart the probes
 * with the new settings (a short gap in coverage while they reload); on
 * failure keep everything as it is. */
static void reload(struct ig_agent *a)
{
	struct ig_conf *nc = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_conf_load(a->config_path, &nc, &err) < 0) {
		ig_error("reload rejected: configuration invalid; keeping the running one",
			 "file=%s errors=\"%s\"", a->config_path ? a->config_path : "<default>",
			 ig_err_str(&err));
		return;
	}
	/* The command line wins as at start; then settings read once at start
	 * keep their running values, by name (the files in tls_dir themselves
	 * are re-read when they change). */
	struct ig_agent_overrides ov = { a->ov_aggregator, a->ov_node_name, a->ov_buffer_dir };
	a->restart_pending[0] = 0;
	if (ig_agent_overrides_apply(&ov, nc) < 0 ||
	    ig_conf_keep_restart_agent(nc, a->conf, a->restart_pending,
				       sizeof(a->restart_pending)) < 0) {
		ig_error("reload rejected: out of memory; keeping the running configuration", NULL);
		ig_conf_free(nc);
		return;
	}
	drain_probes(a);
	seal_batch(a);
	close_probes(a);
	ig_err_init(&err);
	ig_privs_raise();
	int rv = ig_privs_check(nc, &err);
	if (rv < 0 || open_probes(a, nc, &err) < 0) {
		ig_error("reload failed to start probes; restoring the previous configuration",
			 "errors=\"%s\"", ig_err_str(&err));
		ig_conf_free(nc);
		ig_err_init(&err);
		if (open_probes(a, a->conf, &err) < 0)
			ig_error("previous probes failed to restart too", "errors=\"%s\"",
				 ig_err_str(&err));
		ig_privs_lower();
		return;
	}
	ig_privs_lower();
	ig_log_set_level((enum ig_log_level)nc->agent.log_level);
	ig_log_set_format((enum ig_log_format)nc->agent.log_format);
	ig_conf_free(a->conf);
	a->conf = nc;
	ig_info("configuration reloaded", "file=%s probes=%d restart_pending=%s",
		a->config_path ? a->config_path : "<default>", a->nprobes,
		a->restart_pending[0] ? a->restart_pending : "none");
}

/* With TLS the aggregator knows this agent by its certificate and refuses
 * envelopes whose node or agent_id it does not carry: say so now rather than
 * lose every record. Plaintext is allowed only explicitly, and warned about. */
static int check_tls_identity(const struct ig_agent_conf *ac, struct ig_err *err)
{
	struct ig_tls_peer names;
	char list[1024];
	size_t pos = 0;

	if (!ig_tls_url_is_tls(ac->aggregator)) {
		ig_warn("sending in plaintext (agent.plaintext: true): anyone on the path can read "
			"these events and anyone who reaches the aggregator can forge them; use "
			"tls+tcp:// with agent.tls_dir (docs/security.md)",
			"aggregator=%s", ac->aggregator);
		return 0;
	}
	int rv = ig_tls_cert_names(ac->tls_dir, &names, err);
	if (rv < 0)
		return rv;
	if (ac->tls_shared_identity) {
		ig_info("TLS with a certificate shared by all agents: the aggregator knows this "
			"agent by what its envelopes claim (docs/security.md)",
			"dir=%s cert_name=%s", ac->tls_dir, names.nnames ? names.names[0] : "");
		return 0;
	}
	list[0] = '\0';
	for (uint32_t i = 0; i < names.nnames && pos < sizeof(list) - 2; i++)
		pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s%s", i ? "," : "",
					names.names[i]);
	if (!ig_tls_peer_has(&names, ac->node_name) || !ig_tls_peer_has(&names, ac->agent_id)) {
		ig_err_add(
			err,
			"agent.node_name '%.253s' and agent.agent_id '%.253s' must both be names "
			"of %s/tls.crt (it carries: %s); the aggregator refuses envelopes "
			"claiming another identity (reason=identity)",
			ac->node_name, ac->agent_id, ac->tls_dir, list);
		return -EINVAL;
	}
	return 0;
}

int ig_agent_new(struct ig_agent **out, struct ig_conf *conf, const char *config_path,
		 const struct ig_agent_overrides *ov, struct ig_err *err)
{
	struct ig_agent *a = calloc(1, sizeof(*a));
	sigset_t mask;
	int rv;

	if (!a)
		return -ENOMEM;
	if (ov && (set_str(&a->ov_aggregator, ov->aggregator) ||
		   set_str(&a->ov_node_name, ov->node_name) ||
		   set_str(&a->ov_buffer_dir, ov->buffer_dir))) {
		free(a->ov_aggregator);
		free(a->ov_node_name);
		free(a->ov_buffer_dir);
		free(a);
		return -ENOMEM;
	}
	a->conf = conf;
	a->config_path = config_path ? strdup(config_path) : NULL;
	a->epfd = -1;
	a->sigfd = -1;
	a->rl_encode = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	if (getrandom(&a->boot_id, sizeof(a->boot_id), 0) != sizeof(a->boot_id))
		a->boot_id = ig_wall_ns() ^ ((uint64_t)getpid() << 32);
	a->enc = ig_wire_enc_new_version((unsigned)a->conf->agent.wire_version);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!a->enc || a->epfd < 0) {
		rv = -ENOMEM;
		goto fail;
	}
	/* The caller blocked these signals before any thread started. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	a->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->sigfd, &ev);

	int prv = ig_privs_check(conf, err);
	if ((rv = ig_sysprep(&conf->agent, err)) < 0 || (rv = prv) < 0)
		goto fail;
	/* Identity first: its initial cgroup walk means the first events already
	 * find their containers. */
	if ((rv = ig_ident_new(&a->ident, &conf->kubernetes, conf->agent.node_name,
			       conf->agent.cgroup_root, err)) < 0)
		goto fail;
	struct ig_sender_opts so = {
		.url = conf->agent.aggregator,
		.queue_max_batches = conf->agent.queue_max_batches,
		.queue_max_bytes = conf->agent.queue_max_bytes,
		.ack_timeout_ns = conf->agent.ack_timeout_ns,
		.reconnect_min_ns = conf->agent.reconnect_min_ns,
		.reconnect_max_ns = conf->agent.reconnect_max_ns,
		.tls_dir = conf->agent.tls_dir,
		.tls_server_name = conf->agent.tls_server_name,
		.pick_key = conf->agent.agent_id,
		.resolve_interval_ns = conf->agent.aggregator_resolve_ns,
		.buffer_dir = conf->agent.buffer_dir,
		.buffer_dir_is_default =
			!strcmp(conf->agent.buffer_dir, IG_AGENT_BUFFER_DIR_DEFAULT),
		.buffer_fsync = conf->agent.buffer_fsync,
	};
	if ((rv = check_tls_identity(&conf->agent, err)) < 0)
		goto fail;
	if ((rv = ig_sender_new(&a->sender, &so, err)) < 0)
		goto fail;
	if ((rv = open_probes(a, conf, err)) < 0)
		goto fail;
	if (conf->agent.metrics_listen && *conf->agent.metrics_listen) {
		if ((rv = ig_httpd_new(&a->httpd, conf->agent.metrics_listen, err)) < 0)
			goto fail;
		publish_metrics(a);
		ig_httpd_set_ready(a->httpd, true);
	}
	/* Everything that needs a capability is done: keep only what a reload
	 * needs to load probes again, and only as permitted. */
	if (conf->agent.drop_capabilities)
		ig_privs_drop(conf);
	*out = a;
	return 0;
fail:
	a->conf = NULL; /* the caller still owns conf on failure */
	ig_agent_free(a);
	return rv;
}

int ig_agent_run(struct ig_agent *a)
{
	struct epoll_event evs[16];
	const struct ig_agent_conf *ac = &a->conf->agent;

	ig_info("agent running", "node=%s agent_id=%s aggregator=%s boot_id=%016llx", ac->node_name,
		ac->agent_id, ac->aggregator, (unsigned long long)a->boot_id);
	a->last_stats_ns = ig_mono_ns();
	while (!a->stopping) {
		ac = &a->conf->agent;
		int timeout_ms = (int)(ac->poll_interval_ns / IG_NSEC_PER_MSEC);
		if (a->batch_started_ns) {
			uint64_t age = ig_mono_ns() - a->batch_started_ns;
			int left = age >= ac->batch_max_age_ns ?
					   0 :
					   (int)((ac->batch_max_age_ns - age) / IG_NSEC_PER_MSEC);
			if (left < timeout_ms)
				timeout_ms = left;
		}
		if (timeout_ms < 1)
			timeout_ms = 1;
		int n = epoll_wait(a->epfd, evs, 16, timeout_ms);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 != 0)
				continue; /* a ring buffer: drained below */
			struct signalfd_siginfo si;
			while (read(a->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					ig_info("SIGHUP: reloading configuration", NULL);
					reload(a);
				} else {
					ig_info("shutting down", "signal=%u", si.ssi_signo);
					a->stopping = true;
				}
			}
		}
		uint64_t now = ig_mono_ns();
		if (now - a->last_ident_tick_ns >= 100 * IG_NSEC_PER_MSEC) {
			a->last_ident_tick_ns = now;
			ig_ident_tick(a->ident, now);
		}
		if (now - a->last_tls_check_ns >= IG_NSEC_PER_SEC) {
			a->last_tls_check_ns = now;
			ig_sender_tls_check(a->sender);
		}
		drain_probes(a);
		now = ig_mono_ns();
		if ((a->batch_started_ns &&
		     now - a->batch_started_ns >= a->conf->agent.batch_max_age_ns) ||
		    !a->batch_started_ns)
			seal_batch(a); /* an empty batch is sent only to report new loss */
		if (now - a->last_publish_ns >= IG_NSEC_PER_SEC) {
			a->last_publish_ns = now;
			publish_metrics(a);
		}
		if (now - a->last_stats_ns >= STATS_LOG_INTERVAL_NS) {
			a->last_stats_ns = now;
			log_stats(a);
		}
	}
	/* Detach first so no new events arrive, then drain what the kernel has,
	 * send it, and wait (bounded) for the acks. */
	drain_probes(a);
	close_probes(a);
	seal_batch(a);
	uint64_t left = ig_sender_drain(a->sender, a->conf->agent.shutdown_timeout_ns);
	struct ig_sender_stats ss;
	ig_sender_stats(a->sender, &ss);
	log_stats(a);
	if (left > ss.buffered_records)
		ig_warn("shutdown timeout: records not acknowledged by the aggregator are lost",
			"records=%llu kept_in_buffer_dir=%llu",
			(unsigned long long)(left - ss.buffered_records),
			(unsigned long long)ss.buffered_records);
	else if (left)
		ig_warn("shutdown timeout: records not yet acknowledged stay in buffer_dir and are "
			"sent after the next start",
			"records=%llu dir=%s", (unsigned long long)left, a->conf->agent.buffer_dir);
	else
		ig_info("all records acknowledged; bye", NULL);
	return 0;
}

void ig_agent_free(struct ig_agent *a)
{
	if (!a)
		return;
	close_probes(a);
	ig_ident_free(a->ident);
	ig_httpd_free(a->httpd);
	ig_sender_free(a->sender);
	ig_wire_enc_free(a->enc);
	if (a->sigfd >= 0)
		close(a->sigfd);
	if (a->epfd >= 0)
		close(a->epfd);
	ig_conf_free(a->conf);
	free(a->config_path);
	free(a->ov_aggregator);
	free(a->ov_node_name);
	free(a->ov_buffer_dir);
	free(a);
}
