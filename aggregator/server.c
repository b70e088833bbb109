/* server: see server.h. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "agents.h"
#include "ig_log.h"
#include "ig_pipeline.h"
#include "ig_time.h"
#include "ig_wire.h"

#define TICK_NS (100 * IG_NSEC_PER_MSEC)
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
	struct ig_server_stats st;
	uint64_t last_tick_ns, last_stats_ns;
	struct ig_ratelimit rl_malformed, rl_lost;
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
		if (nng_sendmsg(s->sock, m, NNG_FLAG_NONBLOCK) != 0)
			nng_msg_free(m);
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
			ig_warn("rejected a malformed envelope", "bytes=%zu malformed_total=%llu "
				"suppressed=%llu reason=\"%.300s\"", len,
				(unsigned long long)s->st.malformed, (unsigned long long)sup,
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
					pos += (size_t)snprintf(causes + pos, sizeof(causes) - pos,
								"%s%s=%llu", pos ? "," : "",
								h.lost[i].cause,
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

static void reload(struct ig_server *s)
{
	struct ig_conf *nc = NULL;
	struct ig_graph *ng = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_conf_load(s->config_path, &nc, &err) < 0 || ig_graph_build(nc, &ng, &err) < 0) {
		s->st.reload_failures++;
		ig_error("reload rejected: configuration invalid; the running pipelines are unchanged",
			 "file=%s errors=\"%s\"", s->config_path ? s->config_path : "<default>",
			 ig_err_str(&err));
		ig_conf_free(nc);
		return;
	}
	if (strcmp(nc->aggregator.listen, s->conf->aggregator.listen))
		ig_warn("aggregator.listen changed; restart the aggregator to apply it", "old=%s new=%s",
			s->conf->aggregator.listen, nc->aggregator.listen);
	ig_graph_free(s->graph); /* flushes stages and backends first */
	s->graph = ng;
	ig_conf_free(s->conf);
	s->conf = nc;
	s->st.reloads++;
	ig_log_set_level((enum ig_log_level)nc->aggregator.log_level);
	ig_info("configuration reloaded", "file=%s", s->config_path ? s->config_path : "<default>");
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

int ig_server_new(struct ig_server **out, struct ig_conf *conf, const char *config_path,
		  struct ig_err *err)
{
	struct ig_server *s = calloc(1, sizeof(*s));
	struct ig_wire_limits lim;
	sigset_t mask;
	int rv;

	if (!s)
		return -ENOMEM;
	s->epfd = s->sigfd = -1;
	s->rl_malformed = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_lost = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
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
	ev.data.u32 = 1;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->recvfd, &ev);
	s->conf = conf;
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
			if (evs[i].data.u32 == 1) {
				receive_all(s);
				continue;
			}
			struct signalfd_siginfo si;
			while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					ig_info("SIGHUP: reloading configuration", NULL);
					reload(s);
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
