/* server: see server.h. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "agents.h"
#include "control.h"
#include "ig_httpd.h"
#include "ig_prom.h"
#include "ig_log.h"
#include "ig_pipeline.h"
#include "ig_time.h"
#include "ig_tls.h"
#include "ig_wire.h"

#define TICK_NS (100 * IG_NSEC_PER_MSEC)
#define EV_SIGNAL 0
#define EV_DATA 1
#define EV_CONTROL 2
#define EV_INOTIFY 3
#define STATS_LOG_INTERVAL_NS (60 * IG_NSEC_PER_SEC)

struct ig_server {
	struct ig_conf *conf;
	char *config_path;
	struct ig_graph *graph;
	struct ig_agents *agents;
	struct ig_wire_dec *dec;
	struct ig_record *rec;
	nng_socket sock;
	bool sock_open;
	nng_listener listener;
	bool tls; /* listen is tls+tcp://: agents are known by their certificates */
	struct ig_tls_watch tls_watch;
	uint64_t last_tls_check_ns;
	int epfd, sigfd, recvfd;
	bool stopping;
	struct ig_control *control;
	struct ig_httpd *httpd;
	int inofd; /* watches the config file's directory */
	char config_digest[65]; /* sha256 of the running config file */
	uint64_t started_ns; /* wall */
	bool last_reload_ok;
	char *last_reload_errors;
	char restart_pending[512]; /* restart-only settings the file changed, kept */
	struct ig_server_stats st;
	uint64_t last_tick_ns, last_stats_ns;
	struct ig_ratelimit rl_malformed, rl_lost, rl_ack, rl_refused, rl_too_large;
};

static void reply(struct ig_server *s, uint64_t seq, enum ig_ack_status st, const char *msg)
{
	void *buf = NULL;
	size_t len = 0;
	nng_msg *m = NULL;

	if (ig_wire_ack_encode(seq, st, msg, &buf, &len) < 0)
		return;
	if (nng_msg_alloc(&m, len) == 0) {
		memcpy(nng_msg_body(m), buf, len);
		/* Blocking, bounded by NNG_OPT_SENDTIMEO: a non-blocking send can
		 * fail with EAGAIN while the pipe still writes the previous reply,
		 * and a lost ack costs the agent an ack_timeout and a resend. */
		int rv = nng_sendmsg(s->sock, m, 0);
		if (rv != 0) {
			nng_msg_free(m);
			uint64_t sup = 0;
			if (ig_ratelimit_ok(&s->rl_ack, &sup))
				ig_warn("could not send an ack; the agent will resend",
					"seq=%llu err=\"%s\" suppressed=%llu",
					(unsigned long long)seq, nng_strerror(rv),
					(unsigned long long)sup);
		}
	}
	free(buf);
}

/* An envelope refused after decoding: counted, logged (rate-limited), and
 * answered so the agent drops it and counts its records as lost. */
static void refuse(struct ig_server *s, const struct ig_envelope_hdr *h, uint64_t *counter,
		   const char *reason, const char *why, const char *extra)
{
	uint64_t sup = 0;
	char msg[768];

	(*counter)++;
	snprintf(msg, sizeof(msg), "%s: %s%s%s", reason, why, extra && *extra ? ": " : "",
		 extra ? extra : "");
	if (ig_ratelimit_ok(&s->rl_refused, &sup))
		ig_warn("refused an envelope",
			"reason=%s agent=%.253s node=%.253s seq=%llu records=%u detail=\"%s\" "
			"suppressed=%llu",
			reason, h->agent_id, h->node, (unsigned long long)h->seq, h->nrecords, msg,
			(unsigned long long)sup);
	reply(s, h->seq, IG_ACK_REJECTED, msg);
}

/* Larger than max_msg_bytes (nng lets through up to twice that, see
 * ig_server_new): not decoded, but answered with its seq when it can be read,
 * so the agent drops it instead of resending it forever. */
static void too_large(struct ig_server *s, const void *body, size_t len)
{
	uint64_t seq = 0, sup = 0;
	char msg[256];

	s->st.too_large++;
	(void)ig_wire_peek_seq(body, len, &seq);
	snprintf(msg, sizeof(msg),
		 "too_large: %zu bytes, more than aggregator.max_msg_bytes=%llu (lower the "
		 "agent's batch_max_records or raise max_msg_bytes)",
		 len, (unsigned long long)s->conf->aggregator.max_msg_bytes);
	if (ig_ratelimit_ok(&s->rl_too_large, &sup))
		ig_warn("refused an envelope",
			"reason=too_large bytes=%zu max_msg_bytes=%llu "
			"seq=%llu suppressed=%llu",
			len, (unsigned long long)s->conf->aggregator.max_msg_bytes,
			(unsigned long long)seq, (unsigned long long)sup);
	reply(s, seq, IG_ACK_REJECTED, msg);
}

/* With TLS the sender is whoever its verified certificate names; the
 * envelope's agent_id and node must be among those names. */
static bool identity_ok(struct ig_server *s, nng_msg *m, const struct ig_envelope_hdr *h,
			char *names, size_t len)
{
	struct ig_tls_peer peer;
	size_t pos = 0;

	names[0] = '\0';
	if (!s->tls)
		return true;
	if (ig_tls_peer(nng_msg_get_pipe(m), &peer) < 0) {
		snprintf(names, len, "the connection has no verified certificate");
		return false;
	}
	if (ig_tls_peer_has(&peer, h->agent_id) && ig_tls_peer_has(&peer, h->node))
		return true;
	/* A certificate shared by many agents (tls_shared_names): verified, but
	 * the identity is what the envelope says (docs/security.md). */
	for (size_t i = 0; i < s->conf->aggregator.tls_shared_names.n; i++)
		if (ig_tls_peer_has(&peer, s->conf->aggregator.tls_shared_names.v[i]))
			return true;
	pos = (size_t)snprintf(names, len, "the sender's certificate names ");
	for (uint32_t i = 0; i < peer.nnames && pos + 2 < len; i++)
		pos += (size_t)snprintf(names + pos, len - pos, "%s%s", i ? "," : "",
					peer.names[i]);
	return false;
}

static void handle(struct ig_server *s, nng_msg *m)
{
	const void *body = nng_msg_body(m);
	size_t len = nng_msg_len(m);
	struct ig_envelope_hdr h = { 0 };
	struct ig_err err;
	char names[600];

	if (len > s->conf->aggregator.max_msg_bytes) {
		too_large(s, body, len);
		return;
	}
	ig_err_init(&err);
	if (ig_wire_decode(s->dec, body, len, &h, &err) < 0) {
		uint64_t sup = 0;
		s->st.malformed++;
		if (ig_ratelimit_ok(&s->rl_malformed, &sup))
			ig_warn("rejected a malformed envelope",
				"bytes=%zu malformed_total=%llu "
				"suppressed=%llu reason=\"%.300s\"",
				len, (unsigned long long)s->st.malformed, (unsigned long long)sup,
				ig_err_str(&err));
		/* The decoder fills seq when it could read it, so the agent can match
		 * the rejection to its envelope and drop it; otherwise 0. */
		reply(s, h.seq, IG_ACK_REJECTED, ig_err_str(&err));
		return;
	}
	if (!identity_ok(s, m, &h, names, sizeof(names))) {
		refuse(s, &h, &s->st.identity, "identity",
		       "agent_id and node must be names of the sender's TLS certificate", names);
		return;
	}
	switch (ig_agents_check(s->agents, &h)) {
	case IG_AGENT_DUPLICATE:
		s->st.duplicates++;
		ig_agents_note_duplicate(s->agents, &h);
		reply(s, h.seq, IG_ACK_DUPLICATE, "");
		return;
	case IG_AGENT_LIMIT:
		refuse(s, &h, &s->st.agent_limit, "agent_limit",
		       "the aggregator already keeps state for aggregator.max_agents agents", NULL);
		return;
	case IG_AGENT_SEQ_GAP:
		refuse(s, &h, &s->st.seq_gap, "seq_gap",
		       "seq is more than aggregator.max_seq_gap ahead of the last accepted "
		       "envelope of this agent process",
		       NULL);
		return;
	case IG_AGENT_NEW:
		break;
	}
	while (ig_wire_next(s->dec, s->rec) == 1) {
		ig_graph_process(s->graph, s->rec);
		s->st.records++;
	}
	ig_graph_sync(s->graph);
	uint64_t lost = ig_agents_accept(s->agents, &h);
	s->st.envelopes++;
	if (lost) {
		uint64_t sup = 0;
		if (ig_ratelimit_ok(&s->rl_lost, &sup)) {
			char causes[512];
			size_t pos = 0;
			causes[0] = '\0';
			for (uint32_t i = 0; i < h.nlost && pos < sizeof(causes) - 64; i++)
				if (h.lost[i].count)
					pos += (size_t)snprintf(
						causes + pos, sizeof(causes) - pos, "%s%s=%llu",
						pos ? "," : "", h.lost[i].cause,
						(unsigned long long)h.lost[i].count);
			ig_warn("agent reports lost records", "agent=%s node=%s new=%llu totals=%s",
				h.agent_id, h.node, (unsigned long long)lost, causes);
		}
	}
	reply(s, h.seq, IG_ACK_OK, "");
}

static void receive_all(struct ig_server *s)
{
	for (;;) {
		nng_msg *m = NULL;
		int rv = nng_recvmsg(s->sock, &m, NNG_FLAG_NONBLOCK);
		if (rv != 0)
			return;
		handle(s, m);
		nng_msg_free(m);
	}
}

/* sha256 of a file's bytes as hex; "" when unreadable (the embedded default). */
static void file_digest(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char buf[65536];
	size_t n;
	FILE *f;

	out[0] = '\0';
	if (!path || !(f = fopen(path, "rb")))
		return;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(ctx, buf, n);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	fclose(f);
	for (unsigned int i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Builds the new graph completely before it replaces the running one; on any
 * error the running graph stays. path NULL = the current config path.
 * Returns 0 or -EINVAL with the errors in err. */
static int reload(struct ig_server *s, const char *path, struct ig_err *err)
{
	struct ig_conf *nc = NULL;
	struct ig_graph *ng = NULL;
	const char *file = path ? path : s->config_path;

	if (ig_conf_load(file, &nc, err) < 0 || ig_graph_build(nc, &ng, err) < 0) {
		s->st.reload_failures++;
		s->last_reload_ok = false;
		free(s->last_reload_errors);
		s->last_reload_errors = strdup(ig_err_str(err));
		ig_error(
			"reload rejected: configuration invalid; the running pipelines are unchanged",
			"file=%s errors=\"%s\"", file ? file : "<default>", ig_err_str(err));
		ig_conf_free(nc);
		return -EINVAL;
	}
	/* Settings read once at start keep their running values, by name. */
	char pending[sizeof(s->restart_pending)] = "";
	if (ig_conf_keep_restart_aggregator(nc, s->conf, pending, sizeof(pending)) < 0) {
		ig_graph_free(ng);
		ig_conf_free(nc);
		ig_err_add(err, "out of memory");
		return -ENOMEM;
	}
	memcpy(s->restart_pending, pending, sizeof(pending));
	ig_agents_set_limits(s->agents, nc->aggregator.max_agents, nc->aggregator.max_seq_gap);
	/* Unchanged pipelines keep their rollup windows; the rest flush. */
	size_t kept = ig_graph_adopt(ng, s->graph);
	ig_graph_free(s->graph); /* flushes stages and backends first */
	s->graph = ng;
	ig_conf_free(s->conf);
	s->conf = nc;
	if (path && (!s->config_path || strcmp(path, s->config_path))) {
		free(s->config_path);
		s->config_path = strdup(path);
	}
	file_digest(s->config_path, s->config_digest);
	s->st.reloads++;
	s->last_reload_ok = true;
	free(s->last_reload_errors);
	s->last_reload_errors = NULL;
	ig_log_set_level((enum ig_log_level)nc->aggregator.log_level);
	ig_log_set_format((enum ig_log_format)nc->aggregator.log_format);
	ig_info("configuration reloaded",
		"file=%s sha256=%s pipelines_carried_over=%zu restart_pending=%s",
		s->config_path ? s->config_path : "<default>", s->config_digest, kept,
		s->restart_pending[0] ? s->restart_pending : "none");
	return 0;
}

static void reload_logged(struct ig_server *s)
{
	struct ig_err err;
	ig_err_init(&err);
	reload(s, NULL, &err);
}

/* ConfigMap updates swap a symlink (..data) in the file's directory; editors
 * rewrite or rename the file. Any of these for our file triggers a reload,
 * unless the content is unchanged. */
static void watch_config(struct ig_server *s)
{
	char dir[4096];
	if (!s->config_path)
		return;
	snprintf(dir, sizeof(dir), "%s", s->config_path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	s->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->inofd < 0 ||
	    inotify_add_watch(s->inofd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
		ig_warn("cannot watch the configuration directory; reload with SIGHUP or ingrainctl",
			"dir=%s", dir);
		return;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_INOTIFY };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->inofd, &ev);
}

static void on_inotify(struct ig_server *s)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = strrchr(s->config_path, '/');
	bool hit = false;
	ssize_t n;

	base = base ? base + 1 : s->config_path;
	while ((n = read(s->inofd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (e->len && (!strcmp(e->name, base) || !strcmp(e->name, "..data")))
				hit = true;
			p += sizeof(*e) + e->len;
		}
	}
	if (!hit)
		return;
	char digest[65];
	file_digest(s->config_path, digest);
	if (!digest[0] || !strcmp(digest, s->config_digest))
		return;
	ig_info("configuration file changed: reloading", "file=%s", s->config_path);
	reload_logged(s);
	/* A rejected file is not retried until it changes again. */
	snprintf(s->config_digest, sizeof(s->config_digest), "%s", digest);
}

static void log_stats(struct ig_server *s)
{
	struct ig_graph_stats gs;
	ig_graph_stats(s->graph, &gs);
	ig_info("stats",
		"agents=%u envelopes=%llu records=%llu duplicates=%llu malformed=%llu "
		"refused_identity=%llu refused_agent_limit=%llu refused_seq_gap=%llu "
		"refused_too_large=%llu metrics_out=%llu stage_dropped=%llu unrouted=%llu",
		ig_agents_count(s->agents), (unsigned long long)s->st.envelopes,
		(unsigned long long)s->st.records, (unsigned long long)s->st.duplicates,
		(unsigned long long)s->st.malformed, (unsigned long long)s->st.identity,
		(unsigned long long)s->st.agent_limit, (unsigned long long)s->st.seq_gap,
		(unsigned long long)s->st.too_large, (unsigned long long)gs.metrics_out,
		(unsigned long long)gs.dropped, (unsigned long long)gs.unrouted);
}

static void prom_backend(void *ctx, const char *name, const char *type,
			 const struct ig_backend_stats *st)
{
	struct ig_prom *p = ctx;
	(void)type;
	ig_prom_sample(p, "ingrain_backend_received_total", "backend", name, (double)st->received);
	ig_prom_sample(p, "ingrain_backend_sent_total", "backend", name, (double)st->sent);
	ig_prom_sample(p, "ingrain_backend_dropped_total", "backend", name, (double)st->dropped);
	ig_prom_sample(p, "ingrain_backend_errors_total", "backend", name, (double)st->errors);
	ig_prom_sample(p, "ingrain_backend_queued", "backend", name, (double)st->queued);
	ig_prom_sample(p, "ingrain_backend_memory_held_records", "backend", name,
		       (double)st->memory_held);
	ig_prom_sample(p, "ingrain_backend_unjournaled_records_total", "backend", name,
		       (double)st->unjournaled);
	ig_prom_sample(p, "ingrain_backend_crash_lost_records_total", "backend", name,
		       (double)st->crash_lost);
}

/* Per-agent series for the first metrics_max_agents agents (hash order,
 * stable while they are known); the rest are summed into agent="_other", so
 * /metrics stays small whatever the number of agents. */
struct prom_agents {
	struct ig_prom *p;
	uint64_t n, max;
	double other_env, other_rec, other_lost;
};

static void prom_agent(void *ctx, const struct ig_agent_info *ai)
{
	struct prom_agents *pa = ctx;
	struct ig_prom *p = pa->p;

	if (pa->n++ >= pa->max) {
		pa->other_env += (double)ai->envelopes;
		pa->other_rec += (double)ai->records;
		for (uint32_t i = 0; i < ai->nlost; i++)
			pa->other_lost += (double)ai->lost[i].count;
		return;
	}
	ig_prom_sample(p, "ingrain_agent_envelopes_total", "agent", ai->agent_id,
		       (double)ai->envelopes);
	ig_prom_sample(p, "ingrain_agent_records_total", "agent", ai->agent_id,
		       (double)ai->records);
	for (uint32_t i = 0; i < ai->nlost; i++)
		ig_prom_sample2(p, "ingrain_agent_lost_records_total", "agent", ai->agent_id,
				"cause", ai->lost[i].cause, (double)ai->lost[i].count);
}

/* Renders the Prometheus snapshot served on /metrics (every tick). */
static void publish_metrics(struct ig_server *s)
{
	struct ig_graph_stats gs;
	struct ig_prom p;

	if (!s->httpd)
		return;
	ig_graph_stats(s->graph, &gs);
	ig_prom_init(&p);
	ig_prom_family(&p, "ingrain_aggregator_envelopes_total", "counter", "Envelopes accepted.");
	ig_prom_sample(&p, "ingrain_aggregator_envelopes_total", NULL, NULL,
		       (double)s->st.envelopes);
	ig_prom_family(&p, "ingrain_aggregator_records_total", "counter", "Records accepted.");
	ig_prom_sample(&p, "ingrain_aggregator_records_total", NULL, NULL, (double)s->st.records);
	ig_prom_family(&p, "ingrain_aggregator_rejected_total", "counter",
		       "Envelopes rejected or skipped, by reason.");
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "malformed",
		       (double)s->st.malformed);
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "duplicate",
		       (double)s->st.duplicates);
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "identity",
		       (double)s->st.identity);
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "agent_limit",
		       (double)s->st.agent_limit);
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "seq_gap",
		       (double)s->st.seq_gap);
	ig_prom_sample(&p, "ingrain_aggregator_rejected_total", "reason", "too_large",
		       (double)s->st.too_large);
	if (s->tls) {
		uint64_t tf[IG_TLS_FAIL__COUNT];
		ig_tls_fail_counts(tf);
		ig_prom_family(&p, "ingrain_tls_handshake_failures_total", "counter",
			       "TLS handshakes with agents that failed, by reason.");
		for (int i = 0; i < IG_TLS_FAIL__COUNT; i++)
			ig_prom_sample(&p, "ingrain_tls_handshake_failures_total", "reason",
				       ig_tls_fail_names[i], (double)tf[i]);
		ig_prom_family(
			&p, "ingrain_tls_reloads_total", "counter",
			"Re-reads of aggregator.tls_dir after its files changed, by result.");
		ig_prom_sample(&p, "ingrain_tls_reloads_total", "result", "ok",
			       (double)s->st.tls_reloads);
		ig_prom_sample(&p, "ingrain_tls_reloads_total", "result", "rejected",
			       (double)s->st.tls_reload_failures);
	}
	ig_prom_family(&p, "ingrain_pipeline_records_total", "counter",
		       "Records routed to pipelines.");
	ig_prom_sample(&p, "ingrain_pipeline_records_total", NULL, NULL, (double)gs.records_in);
	ig_prom_family(&p, "ingrain_pipeline_unrouted_total", "counter",
		       "Records whose probe feeds no pipeline.");
	ig_prom_sample(&p, "ingrain_pipeline_unrouted_total", NULL, NULL, (double)gs.unrouted);
	ig_prom_family(&p, "ingrain_pipeline_dropped_total", "counter",
		       "Metrics dropped by stages.");
	ig_prom_sample(&p, "ingrain_pipeline_dropped_total", NULL, NULL, (double)gs.dropped);
	ig_prom_family(&p, "ingrain_pipeline_metrics_out_total", "counter",
		       "Metrics written to backends.");
	ig_prom_sample(&p, "ingrain_pipeline_metrics_out_total", NULL, NULL,
		       (double)gs.metrics_out);
	ig_prom_family(&p, "ingrain_config_reloads_total", "counter",
		       "Configuration reloads, by result.");
	ig_prom_sample(&p, "ingrain_config_reloads_total", "result", "ok", (double)s->st.reloads);
	ig_prom_sample(&p, "ingrain_config_reloads_total", "result", "rejected",
		       (double)s->st.reload_failures);
	ig_prom_family(&p, "ingrain_config_last_reload_ok", "gauge",
		       "1 if the last reload succeeded (or none happened).");
	ig_prom_sample(&p, "ingrain_config_last_reload_ok", NULL, NULL, s->last_reload_ok ? 1 : 0);
	ig_prom_family(&p, "ingrain_agents", "gauge",
		       "Agents seen since start (at most aggregator.max_agents).");
	ig_prom_sample(&p, "ingrain_agents", NULL, NULL, (double)ig_agents_count(s->agents));
	ig_prom_family(&p, "ingrain_agent_envelopes_total", "counter",
		       "Envelopes accepted per agent.");
	ig_prom_family(&p, "ingrain_agent_records_total", "counter", "Records accepted per agent.");
	ig_prom_family(
		&p, "ingrain_agent_lost_records_total", "counter",
		"Records an agent reports lost, by cause (cumulative for its current process).");
	struct prom_agents pa = { .p = &p, .max = s->conf->aggregator.metrics_max_agents };
	ig_agents_foreach(s->agents, prom_agent, &pa);
	if (pa.n > pa.max) {
		ig_prom_sample(&p, "ingrain_agent_envelopes_total", "agent", "_other",
			       pa.other_env);
		ig_prom_sample(&p, "ingrain_agent_records_total", "agent", "_other", pa.other_rec);
		ig_prom_sample2(&p, "ingrain_agent_lost_records_total", "agent", "_other", "cause",
				"all", pa.other_lost);
	}
	ig_prom_family(&p, "ingrain_backend_received_total", "counter",
		       "Metrics given to a backend.");
	ig_prom_family(&p, "ingrain_backend_sent_total", "counter", "Metrics a backend delivered.");
	ig_prom_family(&p, "ingrain_backend_dropped_total", "counter", "Metrics a backend lost.");
	ig_prom_family(&p, "ingrain_backend_errors_total", "counter", "Failed sends.");
	ig_prom_family(&p, "ingrain_backend_queued", "gauge", "Metrics buffered in a backend.");
	ig_prom_family(&p, "ingrain_backend_memory_held_records", "gauge",
		       "Records of batches the spool's disk refused (full?), held in memory.");
	ig_prom_family(&p, "ingrain_backend_unjournaled_records_total", "counter",
		       "Acked records that could not be journaled: a crash before their batch is "
		       "stored loses them.");
	ig_prom_family(&p, "ingrain_backend_crash_lost_records_total", "counter",
		       "Unjournaled acked records the previous run lost (counted at start).");
	ig_graph_foreach_backend(s->graph, prom_backend, &p);
	ig_httpd_publish(s->httpd, p.buf ? p.buf : "", p.len);
	ig_prom_free(&p);
}

static struct json_object *ju64(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}

static void json_backend(void *ctx, const char *name, const char *type,
			 const struct ig_backend_stats *st)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "received", ju64(st->received));
	json_object_object_add(o, "sent", ju64(st->sent));
	json_object_object_add(o, "dropped", ju64(st->dropped));
	json_object_object_add(o, "errors", ju64(st->errors));
	json_object_object_add(o, "queued", ju64(st->queued));
	json_object_object_add(o, "memory_held", ju64(st->memory_held));
	json_object_object_add(o, "unjournaled", ju64(st->unjournaled));
	json_object_object_add(o, "crash_lost", ju64(st->crash_lost));
	json_object_array_add(ctx, o);
}

static void json_agent(void *ctx, const struct ig_agent_info *ai)
{
	struct json_object *o = json_object_new_object(), *lost = json_object_new_object();
	json_object_object_add(o, "agent_id", json_object_new_string(ai->agent_id));
	json_object_object_add(o, "node", json_object_new_string(ai->node ? ai->node : ""));
	json_object_object_add(o, "boot_id", json_object_new_string(""));
	char boot[24];
	snprintf(boot, sizeof(boot), "%016llx", (unsigned long long)ai->boots[0].boot_id);
	json_object_object_add(o, "boot_id", json_object_new_string(boot));
	json_object_object_add(o, "last_seq", ju64(ai->boots[0].seq));
	json_object_object_add(o, "envelopes", ju64(ai->envelopes));
	json_object_object_add(o, "records", ju64(ai->records));
	json_object_object_add(o, "duplicates", ju64(ai->duplicates));
	json_object_object_add(o, "last_seen_unix", ju64(ai->last_seen_ns / IG_NSEC_PER_SEC));
	for (uint32_t i = 0; i < ai->nlost; i++)
		json_object_object_add(lost, ai->lost[i].cause, ju64(ai->lost[i].count));
	json_object_object_add(o, "lost", lost);
	json_object_array_add(ctx, o);
}

static struct json_object *status_json(struct ig_server *s)
{
	struct json_object *o = json_object_new_object(), *cfg = json_object_new_object();
	struct json_object *agents = json_object_new_array(), *backends = json_object_new_array();
	struct json_object *graph = json_object_new_object();
	struct ig_graph_stats gs;

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	json_object_object_add(o, "uptime_s",
			       ju64((ig_wall_ns() - s->started_ns) / IG_NSEC_PER_SEC));
	json_object_object_add(o, "listen", json_object_new_string(s->conf->aggregator.listen));
	json_object_object_add(
		cfg, "file", json_object_new_string(s->config_path ? s->config_path : "<default>"));
	json_object_object_add(cfg, "sha256", json_object_new_string(s->config_digest));
	json_object_object_add(cfg, "reloads", ju64(s->st.reloads));
	json_object_object_add(cfg, "reload_failures", ju64(s->st.reload_failures));
	json_object_object_add(cfg, "last_reload_ok", json_object_new_boolean(s->last_reload_ok));
	if (s->last_reload_errors)
		json_object_object_add(cfg, "last_reload_errors",
				       json_object_new_string(s->last_reload_errors));
	/* The file changed these since start; the running values stay. */
	struct json_object *rp = json_object_new_array();
	for (const char *p = s->restart_pending; *p;) {
		size_t l = strcspn(p, ",");
		json_object_array_add(rp, json_object_new_string_len(p, (int)l));
		p += l + (p[l] == ',');
	}
	json_object_object_add(cfg, "restart_pending", rp);
	json_object_object_add(o, "config", cfg);
	json_object_object_add(o, "envelopes", ju64(s->st.envelopes));
	json_object_object_add(o, "records", ju64(s->st.records));
	json_object_object_add(o, "duplicates", ju64(s->st.duplicates));
	json_object_object_add(o, "malformed", ju64(s->st.malformed));
	struct json_object *refused = json_object_new_object();
	json_object_object_add(refused, "identity", ju64(s->st.identity));
	json_object_object_add(refused, "agent_limit", ju64(s->st.agent_limit));
	json_object_object_add(refused, "seq_gap", ju64(s->st.seq_gap));
	json_object_object_add(refused, "too_large", ju64(s->st.too_large));
	json_object_object_add(o, "refused", refused);
	json_object_object_add(o, "tls", json_object_new_boolean(s->tls));
	ig_agents_foreach(s->agents, json_agent, agents);
	json_object_object_add(o, "agents", agents);
	ig_graph_stats(s->graph, &gs);
	json_object_object_add(graph, "records_in", ju64(gs.records_in));
	json_object_object_add(graph, "unrouted", ju64(gs.unrouted));
	json_object_object_add(graph, "metrics_out", ju64(gs.metrics_out));
	json_object_object_add(graph, "dropped", ju64(gs.dropped));
	json_object_object_add(o, "pipelines", graph);
	ig_graph_foreach_backend(s->graph, json_backend, backends);
	json_object_object_add(o, "backends", backends);
	/* Per-stage in/out/dropped, as `ingrainctl pipelines` shows them. */
	json_object_object_add(o, "graph", ig_graph_describe(s->graph));
	return o;
}

static struct json_object *reply_errors(bool ok, const char *errors)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	if (errors && *errors)
		json_object_object_add(o, "errors", json_object_new_string(errors));
	return o;
}

/* ingrainctl requests (control.h). */
static struct json_object *control_handler(void *ctx, struct json_object *req)
{
	struct ig_server *s = ctx;
	struct json_object *jcmd = NULL, *jfile = NULL;
	struct ig_err err;
	const char *cmd =
		json_object_object_get_ex(req, "cmd", &jcmd) ? json_object_get_string(jcmd) : "";
	const char *file = json_object_object_get_ex(req, "file", &jfile) ?
				   json_object_get_string(jfile) :
				   NULL;

	ig_err_init(&err);
	if (!strcmp(cmd, "status"))
		return status_json(s);
	if (!strcmp(cmd, "reload")) {
		int rv = reload(s, file && *file ? file : NULL, &err);
		struct json_object *o = reply_errors(rv == 0, ig_err_str(&err));
		json_object_object_add(o, "sha256", json_object_new_string(s->config_digest));
		return o;
	}
	if (!strcmp(cmd, "validate")) {
		struct ig_conf *c = NULL;
		int rv = ig_conf_load(file, &c, &err);
		if (rv == 0)
			rv = ig_graph_check(c, &err);
		ig_conf_free(c);
		return reply_errors(rv == 0, ig_err_str(&err));
	}
	if (!strcmp(cmd, "pipelines")) {
		struct json_object *o = reply_errors(true, NULL);
		json_object_object_add(o, "graph", ig_graph_describe(s->graph));
		return o;
	}
	char msg[160];
	snprintf(msg, sizeof(msg), "unknown command '%.64s' (status, reload, validate, pipelines)",
		 cmd);
	return reply_errors(false, msg);
}

/* Loads aggregator.tls_dir and gives the listener a new configuration: new
 * connections use it, established ones keep theirs. */
static int set_tls(struct ig_server *s, const struct ig_conf *conf, struct ig_err *err)
{
	nng_tls_config *cfg = NULL;
	int rv = ig_tls_config_load(conf->aggregator.tls_dir, true, NULL, "aggregator.tls_dir",
				    &cfg, err);
	if (rv < 0)
		return rv;
	rv = nng_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg);
	if (rv != 0) {
		ig_err_add(err, "aggregator.tls_dir: nng refused the TLS configuration: %s",
			   nng_strerror(rv));
		return -EINVAL;
	}
	ig_tls_watch_changed(&s->tls_watch, conf->aggregator.tls_dir);
	return 0;
}

/* nng 1.5 binds a TLS configuration to the accept it has outstanding, before
 * any connection arrives: after a rotation the next agent to connect would
 * still get the old certificate. One empty connection to ourselves completes
 * that accept (the engine ignores connections that close without a byte);
 * the accept after it uses the new configuration. */
static void nudge_listener(struct ig_server *s)
{
	nng_sockaddr sa;
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (nng_listener_get_addr(s->listener, NNG_OPT_LOCADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = sa.s_in.sa_port;
		in->sin_addr.s_addr = sa.s_in.sa_addr ? sa.s_in.sa_addr : htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else if (sa.s_family == NNG_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		static const uint8_t any[16];
		in6->sin6_family = AF_INET6;
		in6->sin6_port = sa.s_in6.sa_port;
		memcpy(&in6->sin6_addr, sa.s_in6.sa_addr, 16);
		if (!memcmp(sa.s_in6.sa_addr, any, 16))
			in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	} else {
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)connect(fd, (struct sockaddr *)&ss, len);
	close(fd);
}

/* Certificate rotation (a Secret updated by cert-manager or by hand). */
static void tls_check(struct ig_server *s)
{
	struct ig_err err;

	if (!s->tls || !ig_tls_watch_changed(&s->tls_watch, s->conf->aggregator.tls_dir))
		return;
	ig_err_init(&err);
	if (set_tls(s, s->conf, &err) < 0) {
		s->st.tls_reload_failures++;
		ig_error("TLS files changed but do not load; new connections keep the previous "
			 "certificate",
			 "dir=%s errors=\"%s\"", s->conf->aggregator.tls_dir, ig_err_str(&err));
		return;
	}
	s->st.tls_reloads++;
	nudge_listener(s);
	ig_info("TLS files changed: new agent connections use them", "dir=%s",
		s->conf->aggregator.tls_dir);
}

int ig_server_new(struct ig_server **out, struct ig_conf *conf, const char *config_path,
		  struct ig_err *err)
{
	struct ig_server *s = calloc(1, sizeof(*s));
	struct ig_wire_limits lim;
	sigset_t mask;
	int rv;

	if (!s)
		return -ENOMEM;
	s->epfd = s->sigfd = s->inofd = -1;
	s->started_ns = ig_wall_ns();
	s->last_reload_ok = true;
	s->rl_malformed = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_lost = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_ack = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_refused = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_too_large = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->config_path = config_path ? strdup(config_path) : NULL;
	ig_wire_limits_default(&lim);
	lim.max_msg_bytes = conf->aggregator.max_msg_bytes;
	s->dec = ig_wire_dec_new(&lim);
	s->rec = malloc(sizeof(*s->rec));
	if (!s->dec || !s->rec) {
		rv = -ENOMEM;
		goto fail;
	}
	if ((rv = ig_agents_new(&s->agents, conf->aggregator.state_dir, err)) < 0)
		goto fail;
	ig_agents_set_limits(s->agents, conf->aggregator.max_agents, conf->aggregator.max_seq_gap);
	if ((rv = ig_graph_build(conf, &s->graph, err)) < 0)
		goto fail;
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		ig_err_add(err, "cannot open nng REP socket: %s", nng_strerror(rv));
		rv = -EIO;
		goto fail;
	}
	s->sock_open = true;
	/* Twice the limit reaches us, so that an envelope a little too large is
	 * counted and answered (too_large()); beyond that nng closes the
	 * connection without telling us (documented in docs/operations.md). */
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, (size_t)conf->aggregator.max_msg_bytes * 2);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 1000);
	s->tls = ig_tls_url_is_tls(conf->aggregator.listen);
	if (s->tls && ig_tls_init() < 0) {
		ig_err_add(err, "cannot register the TLS engine with nng");
		rv = -ENOTSUP;
		goto fail;
	}
	if ((rv = nng_listener_create(&s->listener, s->sock, conf->aggregator.listen)) != 0) {
		ig_err_add(err, "aggregator.listen: cannot use %s: %s", conf->aggregator.listen,
			   nng_strerror(rv));
		rv = -EINVAL;
		goto fail;
	}
	if (s->tls) {
		if ((rv = set_tls(s, conf, err)) < 0)
			goto fail;
	} else {
		ig_warn("listening in plaintext (aggregator.plaintext: true): agents are known only "
			"by what their envelopes claim, so anyone who reaches this address can "
			"inject events and forge loss counters; use tls+tcp:// (docs/security.md)",
			"listen=%s", conf->aggregator.listen);
	}
	if ((rv = nng_listener_start(s->listener, 0)) != 0) {
		ig_err_add(err,
			   "aggregator.listen: cannot listen on %s: %s (is another aggregator "
			   "running, or is the address wrong?)",
			   conf->aggregator.listen, nng_strerror(rv));
		rv = rv == NNG_EADDRINUSE ? -EADDRINUSE : -EINVAL;
		goto fail;
	}
	if ((rv = nng_socket_get_int(s->sock, NNG_OPT_RECVFD, &s->recvfd)) != 0) {
		ig_err_add(err, "cannot get nng receive fd: %s", nng_strerror(rv));
		rv = -EIO;
		goto fail;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev);
	ev.data.u32 = EV_DATA;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->recvfd, &ev);
	s->conf = conf;
	if (conf->aggregator.control && *conf->aggregator.control) {
		if ((rv = ig_control_new(&s->control, conf->aggregator.control, control_handler, s,
					 err)) < 0) {
			s->conf = NULL;
			goto fail;
		}
		ev.data.u32 = EV_CONTROL;
		epoll_ctl(s->epfd, EPOLL_CTL_ADD, ig_control_fd(s->control), &ev);
	}
	if (conf->aggregator.metrics_listen && *conf->aggregator.metrics_listen) {
		if ((rv = ig_httpd_new(&s->httpd, conf->aggregator.metrics_listen, err)) < 0) {
			s->conf = NULL;
			goto fail;
		}
	}
	file_digest(s->config_path, s->config_digest);
	watch_config(s);
	publish_metrics(s);
	ig_httpd_set_ready(s->httpd, true);
	*out = s;
	return 0;
fail:
	ig_server_free(s);
	return rv;
}

int ig_server_run(struct ig_server *s)
{
	struct epoll_event evs[4];

	ig_info("aggregator listening", "listen=%s state_dir=%s", s->conf->aggregator.listen,
		s->conf->aggregator.state_dir);
	s->last_tick_ns = s->last_stats_ns = ig_mono_ns();
	while (!s->stopping) {
		int n = epoll_wait(s->epfd, evs, 4, (int)(TICK_NS / IG_NSEC_PER_MSEC));
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == EV_DATA) {
				receive_all(s);
				continue;
			}
			if (evs[i].data.u32 == EV_CONTROL) {
				ig_control_serve(s->control);
				continue;
			}
			if (evs[i].data.u32 == EV_INOTIFY) {
				on_inotify(s);
				continue;
			}
			struct signalfd_siginfo si;
			while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					ig_info("SIGHUP: reloading configuration", NULL);
					reload_logged(s);
				} else {
					ig_info("shutting down", "signal=%u", si.ssi_signo);
					s->stopping = true;
				}
			}
		}
		uint64_t now = ig_mono_ns();
		if (now - s->last_tick_ns >= TICK_NS) {
			s->last_tick_ns = now;
			ig_graph_tick(s->graph, now);
			publish_metrics(s);
		}
		if (now - s->last_tls_check_ns >= IG_NSEC_PER_SEC) {
			s->last_tls_check_ns = now;
			tls_check(s);
		}
		if (now - s->last_stats_ns >= STATS_LOG_INTERVAL_NS) {
			s->last_stats_ns = now;
			log_stats(s);
		}
	}
	/* Stop taking envelopes (unacked ones will be resent by their agents to
	 * the next aggregator), then flush what the pipelines hold. */
	nng_close(s->sock);
	s->sock_open = false;
	ig_graph_flush(s->graph);
	log_stats(s);
	return 0;
}

void ig_server_stats(const struct ig_server *s, struct ig_server_stats *st)
{
	*st = s->st;
}

void ig_server_free(struct ig_server *s)
{
	if (!s)
		return;
	if (s->sock_open)
		nng_close(s->sock);
	ig_control_free(s->control);
	ig_httpd_free(s->httpd);
	if (s->inofd >= 0)
		close(s->inofd);
	free(s->last_reload_errors);
	ig_graph_free(s->graph);
	ig_agents_free(s->agents);
	ig_wire_dec_free(s->dec);
	free(s->rec);
	if (s->sigfd >= 0)
		close(s->sigfd);
	if (s->epfd >= 0)
		close(s->epfd);
	ig_conf_free(s->conf);
	free(s->config_path);
	free(s);
}
