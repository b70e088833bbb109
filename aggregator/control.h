/* control: the aggregator's control socket, spoken by ingrainctl.
 *
 * An nng REP socket on aggregator.control (default
 * ipc:///run/ingrain/control.sock, created with permissions 0600 so only the
 * aggregator's user can reload it; tcp:// works too, for a sidecar). Each
 * request is a JSON object {"cmd": "...", ...}; each reply a JSON object with
 * "ok": true|false. The socket is polled from the aggregator's own loop
 * (ig_control_fd + ig_control_serve), so handlers run on that thread and
 * need no locks. Requests are bounded (1 MiB) and malformed JSON gets an
 * {"ok": false, "error": ...} reply.
 */
#ifndef IG_CONTROL_H
#define IG_CONTROL_H

#include <json-c/json.h>

#include "ig_err.h"

struct ig_control;

/* Returns a new reply object (ownership passes to the caller). */
typedef struct json_object *(*ig_control_handler)(void *ctx, struct json_object *req);

int ig_control_new(struct ig_control **out, const char *url, ig_control_handler fn, void *ctx,
		   struct ig_err *err);
/* Pollable fd: readable when a request waits. */
int ig_control_fd(const struct ig_control *c);
/* Answers every waiting request. */
void ig_control_serve(struct ig_control *c);
void ig_control_free(struct ig_control *c);

/* Client side (ingrainctl): one request, one reply. NULL + err on failure. */
struct json_object *ig_control_call(const char *url, struct json_object *req, int timeout_ms,
				    struct ig_err *err);

#endif
