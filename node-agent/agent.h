/* agent: the node agent's event loop.
 *
 * One thread drains every probe's ring buffer (epoll on the ring buffers'
 * fds, plus a poll timer because the kernel side wakes us only every N
 * records), stamps each record with node identity, encodes it into the
 * current envelope, and seals the envelope when it is full or old enough.
 * Sealed envelopes go to the sender (sender.h), which owns delivery. Signals
 * arrive through a signalfd in the same loop: SIGTERM/SIGINT drain and exit,
 * SIGHUP reloads the configuration file.
 */
#ifndef IG_AGENT_H
#define IG_AGENT_H

#include "ig_conf.h"
#include "ig_err.h"

struct ig_agent;

/* Command-line settings that win over the file, at start and on every reload
 * (NULL: the file's). */
struct ig_agent_overrides {
	const char *aggregator, *node_name, *buffer_dir;
};
/* Writes o's settings into c. 0 or -ENOMEM. */
int ig_agent_overrides_apply(const struct ig_agent_overrides *o, struct ig_conf *c);

/* Takes ownership of conf (overrides already applied). config_path is re-read
 * on SIGHUP (NULL = default), and ov (copied; may be NULL) applied to it. */
int ig_agent_new(struct ig_agent **out, struct ig_conf *conf, const char *config_path,
		 const struct ig_agent_overrides *ov, struct ig_err *err);
/* Runs until SIGTERM/SIGINT. Returns 0 on a clean shutdown. */
int ig_agent_run(struct ig_agent *a);
void ig_agent_free(struct ig_agent *a);

#endif
