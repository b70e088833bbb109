/* ig_record: the event model shared by the agent, the wire format and the
 * aggregator.
 *
 * A record is one thing that happened on a node: a common header (when, where,
 * which process, which cgroup, which container/pod) and a typed body of named
 * fields that depends on the record's kind ("file.open", "tcp.connect", ...).
 * Bodies are lists of (key, typed value) so that a new probe adds fields
 * without changing the wire decoder or the pipeline engine; each probe
 * documents its fields in docs/probes.md.
 *
 * Strings are NUL-terminated and either static (keys the agent uses) or
 * copied into the record's arena (ig_record_strndup). A record is reused:
 * ig_record_reset() empties it without freeing.
 */
#ifndef IG_RECORD_H
#define IG_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define IG_MAX_FIELDS 32
#define IG_MAX_LABELS 16
#define IG_RECORD_ARENA 16384
#define IG_COMM_LEN 16

enum ig_ftype { IG_F_STR = 1, IG_F_INT = 2, IG_F_UINT = 3 };

struct ig_field {
	const char *key;
	enum ig_ftype type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
	};
};

struct ig_label {
	const char *key;
	const char *val;
};

/* Container / pod identity. Every member is NULL when unknown: it is never
 * guessed. `scope` says what the cgroup was: "host" (no container),
 * "container" (a container outside Kubernetes), "pod" (a Kubernetes pod's
 * container), or NULL when the agent could not tell. */
struct ig_identity {
	const char *scope;
	const char *runtime; /* containerd, cri-o, docker, podman */
	const char *container_id; /* full id as the runtime spells it */
	const char *pod_uid;
	const char *pod_name;
	const char *namespace_;
	const char *container_name;
	const char *image;
	const char *owner_kind; /* Deployment, DaemonSet, StatefulSet, Job, ... */
	const char *owner_name;
	const char *cgroup_path; /* path under the cgroup v2 root, if known */
	uint32_t nlabels;
	struct ig_label labels[IG_MAX_LABELS];
};

struct ig_record {
	const char *kind; /* "file.open" */
	const char *probe; /* the configured probe that produced it: "files" */
	const char *node; /* node name (from the envelope) */
	uint64_t ts_ns; /* wall clock, ns since the epoch */
	uint32_t pid, tid, ppid, uid, gid;
	uint64_t cgroup_id;
	const char *comm;
	struct ig_identity id;
	uint32_t nfields;
	struct ig_field fields[IG_MAX_FIELDS];
	size_t arena_used;
	char arena[IG_RECORD_ARENA];
};

void ig_record_reset(struct ig_record *r);
/* Copies s[0..len) into the arena, NUL-terminated. NULL when it does not fit. */
const char *ig_record_strndup(struct ig_record *r, const char *s, size_t len);
const char *ig_record_strdup(struct ig_record *r, const char *s);
/* Add a body field; key must outlive the record (static, or from
 * ig_record_strdup). -ENOSPC when IG_MAX_FIELDS are used or the string does
 * not fit, -EINVAL when key is NULL; the record is unchanged then. add_str
 * copies the value (NULL is taken as ""). Keys are not checked for
 * duplicates here; the wire encoder refuses records that have them. */
int ig_record_add_str(struct ig_record *r, const char *key, const char *val, size_t len);
int ig_record_add_int(struct ig_record *r, const char *key, int64_t v);
int ig_record_add_uint(struct ig_record *r, const char *key, uint64_t v);
/* NULL when absent. */
const struct ig_field *ig_record_field(const struct ig_record *r, const char *key);
/* Adds a pod label (key and value copied; NULL value = ""); -ENOSPC when
 * full or out of arena (nothing kept), -EINVAL when key is NULL. */
int ig_record_add_label(struct ig_record *r, const char *key, const char *val);

#endif
