/* ig_httpd: the small HTTP endpoint both binaries expose for operators and
 * Kubernetes probes, built on nng's HTTP server (no extra dependency):
 *
 *   GET /metrics  Prometheus text format (ingrain_ prefix), a snapshot the
 *                 owner's event loop renders and publishes (ig_httpd_publish)
 *   GET /healthz  200 while the event loop is alive (it publishes at least
 *                 every few seconds), 503 when it has been stuck for 10 s
 *   GET /readyz   200 once the owner said it is ready (listening, probes
 *                 attached), 503 before
 *
 * Handlers run on nng's threads and only copy the last published snapshot
 * under a mutex, so the event loop never waits for a scrape. */
#ifndef IG_HTTPD_H
#define IG_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include "ig_err.h"

struct ig_httpd;

/* listen: "host:port" or "http://host:port". */
int ig_httpd_new(struct ig_httpd **out, const char *listen, struct ig_err *err);
/* Replaces the /metrics snapshot (copied) and refreshes the liveness heartbeat. */
void ig_httpd_publish(struct ig_httpd *h, const char *metrics, size_t len);
void ig_httpd_set_ready(struct ig_httpd *h, bool ready);
void ig_httpd_free(struct ig_httpd *h);

#endif
