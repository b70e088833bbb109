/* k8s_client: this node's pods from the Kubernetes API (list + watch).
 *
 * The agent needs, for each pod on its node, the name, namespace, selected
 * labels, owner and, per container id, the container's name and image. It
 * asks the API server for exactly that set: GET /api/v1/pods with
 * fieldSelector=spec.nodeName=<node> (so an agent never receives the rest of
 * the cluster), then watches from the list's resourceVersion with bookmarks.
 *
 * One thread per client runs the loop
 *
 *   list -> REPLACE(all pods) -> watch(rv) -> UPSERT / DELETE ... -> watch(rv)
 *
 * and hands every change to a callback (identity.c queues them for the agent
 * thread). A watch that ends normally (server timeout) is reopened from the
 * last resourceVersion seen (events and bookmarks advance it); a watch that
 * breaks (connection dropped, possibly mid-object) is reopened with backoff;
 * "410 Gone" (as an HTTP status or an ERROR event) means the version is too
 * old: relist. Failures back off exponentially up to relist_backoff_max.
 * HTTP is libcurl (multi interface, so stopping is immediate); JSON is
 * json-c's incremental tokener, so a watch event split across reads is
 * completed by the next read.
 *
 * Where the API server is (ig_k8s_target_resolve), in order:
 *   kubernetes.api_server set      -> that URL, token_file, ca_file
 *   kubernetes.kubeconfig set      -> current-context's cluster and user
 *                                    (token, tokenFile, client certificate)
 *   KUBERNETES_SERVICE_HOST set    -> in-cluster: https://host:port, the
 *                                    service-account token and CA
 * The token file is read again before every request, so a rotated
 * service-account token is picked up without a restart.
 */
#ifndef IG_K8S_CLIENT_H
#define IG_K8S_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ig_conf.h"
#include "ig_err.h"
#include "ig_record.h"

struct json_object;

#define IG_K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* --- pods as the agent keeps them --- */

struct ig_pod_container {
	char *id; /* bare id, "containerd://" stripped; NULL while not started */
	const char *runtime; /* static "containerd", "cri-o", "docker", or NULL */
	char *name;
	char *image;
};

struct ig_pod {
	char *uid;
	char *name;
	char *namespace_;
	char *node;
	char *owner_kind; /* after resolution: Deployment for ReplicaSet "<deploy>-<hash>" */
	char *owner_name;
	char *resource_version;
	uint32_t nlabels; /* only the allowlisted labels; strings owned by the pod */
	struct ig_label *labels;
	uint32_t ncontainers; /* containers, init containers, ephemeral containers */
	struct ig_pod_container *containers;
};

/* Builds a pod from a Pod object. Labels are kept when their key is in
 * allow (exact, or a "prefix*" entry); allow may be NULL (no labels).
 * 0, -EBADMSG (not a Pod: no metadata.uid/name/namespace), -ENOMEM. */
int ig_pod_from_json(struct json_object *obj, const struct ig_strlist *allow, struct ig_pod **out);
void ig_pod_free(struct ig_pod *p);
/* The pod's container with this bare id, or NULL. */
const struct ig_pod_container *ig_pod_container_by_id(const struct ig_pod *p, const char *id);

/* Owner of a pod from its controller reference: a ReplicaSet named
 * "<deployment>-<hash>" where hash is the pod's pod-template-hash label (or,
 * without the label, 1-10 characters of Kubernetes' safe-encoding alphabet)
 * becomes (Deployment, <deployment>). Anything else is returned as given.
 * Writes into kind/name buffers; returns the resolved kind. */
const char *ig_k8s_resolve_owner(const char *kind, const char *name, const char *template_hash,
				 char *kind_out, size_t kind_len, char *name_out, size_t name_len);

/* --- the watch stream --- */

/* Feeds bytes of a newline-delimited JSON stream (a watch response) and calls
 * cb(arg, type, object) for every complete {"type":..., "object":...} event,
 * whatever the read boundaries were. The object is owned by the parser and
 * valid during the call. A cb returning non-zero stops feeding and is
 * returned. -EBADMSG on malformed JSON or an event without type/object
 * (the stream cannot be trusted after that: reconnect). */
struct ig_watch_parser;
typedef int (*ig_watch_event_cb)(void *arg, const char *type, struct json_object *obj);
struct ig_watch_parser *ig_watch_parser_new(ig_watch_event_cb cb, void *arg);
int ig_watch_parser_feed(struct ig_watch_parser *p, const char *buf, size_t len);
/* True when bytes of an unfinished object are buffered. */
bool ig_watch_parser_partial(const struct ig_watch_parser *p);
void ig_watch_parser_reset(struct ig_watch_parser *p);
void ig_watch_parser_free(struct ig_watch_parser *p);

/* --- where the API server is --- */

struct ig_k8s_target {
	char *server; /* "https://host:port", no trailing slash */
	char *token; /* inline bearer token (kubeconfig), or NULL */
	char *token_file; /* read before each request, or NULL */
	char *ca_file;
	char *ca_pem; /* certificate-authority-data, decoded */
	char *cert_file, *key_file;
	char *cert_pem, *key_pem;
	bool insecure; /* kubeconfig insecure-skip-tls-verify (logged loudly) */
	char source[64]; /* "kubernetes.api_server", "kubeconfig", "in-cluster" */
};

/* 0 (t filled), -ENODEV (kubernetes.enabled is off, or auto found nothing:
 * no api_server, no kubeconfig, no KUBERNETES_SERVICE_HOST), -EINVAL (a
 * configured source is unusable; err says what to fix). */
int ig_k8s_target_resolve(const struct ig_kube_conf *kc, struct ig_k8s_target *t,
			  struct ig_err *err);
void ig_k8s_target_free(struct ig_k8s_target *t);

/* --- the client --- */

enum ig_api_state {
	IG_API_DISABLED = 0,
	IG_API_CONNECTING, /* first list not done yet */
	IG_API_CONNECTED, /* watching */
	IG_API_RELISTING, /* listing again (410, or after a failure) */
	IG_API_UNREACHABLE, /* the last attempt failed; retrying with backoff */
};
const char *ig_api_state_name(enum ig_api_state s);

enum ig_k8s_ev_type {
	IG_K8S_REPLACE = 1, /* pods[0..npods): the complete set after a list */
	IG_K8S_UPSERT, /* pods[0]: added or modified */
	IG_K8S_DELETE, /* pods[0]: deleted */
};

/* An event handed to the callback; the callee owns it (ig_k8s_ev_free). */
struct ig_k8s_ev {
	enum ig_k8s_ev_type type;
	size_t npods;
	struct ig_pod **pods;
};
void ig_k8s_ev_free(struct ig_k8s_ev *ev);
typedef void (*ig_k8s_cb)(void *arg, struct ig_k8s_ev *ev);

struct ig_k8s_stats {
	enum ig_api_state state;
	uint64_t lists; /* successful lists */
	uint64_t watch_restarts; /* watches reopened (timeout, drop, error) */
	uint64_t relists_410; /* relists because the version was gone */
	uint64_t errors; /* failed requests */
	uint64_t events; /* watch events applied */
	int last_http; /* last HTTP status (0: none / transport error) */
};

struct ig_k8s_client;

/* Resolves the target, starts the thread. cb runs on that thread. node_name
 * selects the pods (spec.nodeName). -ENODEV when Kubernetes is off or not
 * found (see ig_k8s_target_resolve), -EINVAL with err filled, -ENOMEM. */
int ig_k8s_client_new(struct ig_k8s_client **out, const struct ig_kube_conf *kc,
		      const char *node_name, ig_k8s_cb cb, void *arg, struct ig_err *err);
void ig_k8s_client_stats(struct ig_k8s_client *c, struct ig_k8s_stats *st);
/* Stops the thread (promptly, even mid-request) and frees. */
void ig_k8s_client_free(struct ig_k8s_client *c);

#endif
