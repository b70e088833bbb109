/* record_json: one metric -> one JSON object (one line of an archive).
 *
 * The line is what the pipeline made of the record, so an archive reflects
 * the pipeline's whitelists and rewrites:
 *
 *   {"ts":"2026-11-25T12:00:00.123456789Z","name":"file.open","kind":"counter",
 *    "value":1,"probe":"files","tags":{"node":"n1","namespace":"default",
 *    "pod":"web-1",...,"process":"cat","pid":4242,...,"path":"/etc/passwd","ret":3}}
 *
 *   ts     RFC 3339 UTC with nanoseconds (sorts as text)
 *   name   metric name (the record kind unless a stage renamed it)
 *   kind   counter|gauge|histogram|set;  value: number;  member: set members
 *   probe  the probe that produced the source record (absent for rolled-up
 *          metrics, which have no single source record)
 *   tags   the metric's tags after every stage, in order: identity (node,
 *          scope, namespace, pod, container, container_id, runtime, image,
 *          owner_kind, owner_name, pod_uid, label_<k>), process (process,
 *          pid, tid, ppid, uid, gid, cgroup_id), then the record's fields.
 *          A tag a stage removed is absent; one it rewrote has the new value.
 *          Tags that came from numbers are JSON numbers (unless a stage made
 *          them non-numeric); a repeated key keeps its last value.
 *
 * Strings are valid UTF-8 JSON whatever the input: bytes that are not UTF-8
 * (a file name can be any bytes) become U+FFFD. docs/archive.md documents
 * the schema for query engines.
 */
#ifndef IG_RECORD_JSON_H
#define IG_RECORD_JSON_H

#include <stddef.h>

#include "ig_metric.h"

struct json_object;
/* The same as a json-c object (for other encodings, e.g. msgpack); NULL on
 * allocation failure. Release with json_object_put. */
struct json_object *ig_metric_to_jobj(const struct ig_metric *m);
/* The JSON object for m, without a newline, malloc'd into *out (length in
 * *len). 0 or -ENOMEM. */
int ig_metric_to_json(const struct ig_metric *m, char **out, size_t *len);
/* Copies s[0..len) into a malloc'd NUL-terminated string where every invalid
 * UTF-8 sequence is replaced by U+FFFD. NULL on allocation failure. */
char *ig_utf8_sanitize(const char *s, size_t len);

#endif
