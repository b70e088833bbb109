/* server: see server.h. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
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
	int epfd, sigfd, recvfd;
	bool stopping;
	struct ig_control *control;
	struct ig_httpd *httpd;
	int inofd; /* watches the config file's directory */
	char config_digest[65]; /* sha256 of the running config file */
	uint64_t started_ns; /* wall */
	bool last_reload_ok;
	char *last_reload_errors;
	struct ig_server_stats st;
	uint64_t last_tick_ns, last_stats_ns;
	struct ig_ratelimit rl_malformed, rl_lost, rl_ack;
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

static void handle(struct ig_server *s, const void *body, size_t len)
{
	struct ig_envelope_hdr h = { 0 };
	struct ig_err err;

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
	if (ig_agents_is_duplicate(s->agents, &h)) {
		s->st.duplicates++;
		ig_agents_note_duplicate(s->agents, &h);
		reply(s, h.seq, IG_ACK_DUPLICATE, "");
		return;
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
		handle(s, nng_msg_body(m), nng_msg_len(m));
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
	if (strcmp(nc->aggregator.listen, s->conf->aggregator.listen))
		ig_warn("aggregator.listen changed; restart the aggregator to apply it",
			"old=%s new=%s", s->conf->aggregator.listen, nc->aggregator.listen);
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
	ig_info("configuration reloaded", "file=%s sha256=%s pipelines_carried_over=%zu",
		s->config_path ? s->config_path : "<default>", s->config_digest, kept);
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
		"metrics_out=%llu stage_dropped=%llu unrouted=%llu",
		ig_agents_count(s->agents), (unsigned long long)s->st.envelopes,
		(unsigned long long)s->st.records, (unsigned long long)s->st.duplicates,
		(unsigned long long)s->st.malformed, (unsigned long long)gs.metrics_out,
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

static void prom_agent(void *ctx, const struct ig_agent_info *ai)
{
	struct ig_prom *p = ctx;
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
	ig_prom_family(&p, "ingrain_agents", "gauge", "Agents seen since start.");
	ig_prom_sample(&p, "ingrain_agents", NULL, NULL, (double)ig_agents_count(s->agents));
	ig_prom_family(&p, "ingrain_agent_envelopes_total", "counter",
		       "Envelopes accepted per agent.");
	ig_prom_family(&p, "ingrain_agent_records_total", "counter", "Records accepted per agent.");
	ig_prom_family(
		&p, "ingrain_agent_lost_records_total", "counter",
		"Records an agent reports lost, by cause (cumulative for its current process).");
	ig_agents_foreach(s->agents, prom_agent, &p);
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
	json_object_object_add(o, "config", cfg);
	json_object_object_add(o, "envelopes", ju64(s->st.envelopes));
	json_object_object_add(o, "records", ju64(s->st.records));
	json_object_object_add(o, "duplicates", ju64(s->st.duplicates));
	json_object_object_add(o, "malformed", ju64(s->st.malformed));
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
	if ((rv = ig_graph_build(conf, &s->graph, err)) < 0)
		goto fail;
	if ((rv = nng_rep0_open(&s->sock)) != 0) {
		ig_err_add(err, "cannot open nng REP socket: %s", nng_strerror(rv));
		rv = -EIO;
		goto fail;
	}
	s->sock_open = true;
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, (size_t)conf->aggregator.max_msg_bytes);
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, 1000);
	if ((rv = nng_listen(s->sock, conf->aggregator.listen, NULL, 0)) != 0) {
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
