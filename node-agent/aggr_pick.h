/* aggr_pick: which aggregator replica an agent dials.
 *
 * agent.aggregator names one address or, through a headless Service, every
 * aggregator replica (one A/AAAA record per ready pod). With one address the
 * URL is dialed as written (nng resolves the name itself, so a ClusterIP
 * Service keeps working as before). With several, every agent ranks them by
 * a rendezvous hash of (its agent id, the address) and dials the highest:
 * agents spread evenly, each always picks the same replica for the same set,
 * and when a replica leaves only the agents that were on it move (to their
 * next-highest); when one joins, only the agents that now rank it first move.
 */
#ifndef IG_AGGR_PICK_H
#define IG_AGGR_PICK_H

#include <stddef.h>

/* Resolves url's host and writes the URL to dial into out: url itself when it
 * has one address (or is a literal, or does not resolve), else
 * scheme://<chosen address>:port. Returns the number of addresses found (0
 * when resolution failed), or -EINVAL when url is not scheme://host:port. */
int ig_aggr_pick(const char *url, const char *key, char *out, size_t outlen);

/* The rendezvous score of one candidate (exposed for tests). */
unsigned long long ig_aggr_pick_score(const char *key, const char *addr);

#endif
