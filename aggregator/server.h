/* server: the aggregator's event loop.
 *
 * Agents dial an nng REP socket (aggregator.listen). Each request is one
 * envelope; the reply is its ack. The loop is single-threaded: it validates
 * the envelope whole (ig_wire_decode), skips duplicates (agents.h), runs each
 * record through the pipeline graph, lets backends make the batch durable
 * (ig_graph_sync), records the seq, and only then acks. Malformed messages
 * are rejected with an ack saying why, counted, and logged at most once per
 * rate interval; the socket and the process keep serving. Signals arrive via
 * signalfd: SIGTERM/SIGINT flush backends and exit, SIGHUP reloads the
 * configuration (the new graph is built completely before it replaces the
 * old one; an invalid file leaves the running graph alone).
 */
#ifndef IG_SERVER_H
#define IG_SERVER_H

#include <stdint.h>

#include "ig_conf.h"
#include "ig_err.h"

struct ig_server;

struct ig_server_stats {
	uint64_t envelopes, records, duplicates, malformed, reloads, reload_failures;
	/* refused: sender's certificate does not carry agent_id/node; beyond
	 * max_agents; seq beyond max_seq_gap; larger than max_msg_bytes */
	uint64_t identity, agent_limit, seq_gap, too_large;
	uint64_t tls_reloads, tls_reload_failures;
};

/* Takes ownership of conf on success. */
int ig_server_new(struct ig_server **out, struct ig_conf *conf, const char *config_path,
		  struct ig_err *err);
int ig_server_run(struct ig_server *s);
void ig_server_stats(const struct ig_server *s, struct ig_server_stats *st);
void ig_server_free(struct ig_server *s);

#endif
