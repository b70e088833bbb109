/* k8s_client: list + watch this node's pods (see k8s_client.h).
 *
 * Sections: pods from JSON; owner resolution; the watch stream parser;
 * where the API server is (config, kubeconfig, in-cluster); HTTP through
 * libcurl; the client thread's list/watch loop.
 */
#include "k8s_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ig_log.h"
#include "ig_time.h"
#include "ig_yaml.h"

#define IG_K8S_MAX_BODY (256u << 20) /* a PodList larger than this is refused */
#define IG_K8S_MAX_ERRBODY 65536
#define IG_K8S_BACKOFF_MIN_NS (250 * IG_NSEC_PER_MSEC)

/* ------------------------------------------------------------------ pods */

static struct json_object *jget(struct json_object *o, const char *key, json_type type)
{
	struct json_object *v;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v = jget(o, key, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

static int dup_opt(char **dst, const char *s)
{
	*dst = NULL;
	if (!s)
		return 0;
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

static bool label_allowed(const struct ig_strlist *allow, const char *key)
{
	if (!allow)
		return false;
	for (size_t i = 0; i < allow->n; i++) {
		const char *a = allow->v[i];
		size_t n = strlen(a);

		if (n && a[n - 1] == '*') {
			if (strncmp(key, a, n - 1) == 0)
				return true;
		} else if (strcmp(key, a) == 0) {
			return true;
		}
	}
	return false;
}

void ig_pod_free(struct ig_pod *p)
{
	if (!p)
		return;
	free(p->uid);
	free(p->name);
	free(p->namespace_);
	free(p->node);
	free(p->owner_kind);
	free(p->owner_name);
	free(p->resource_version);
	for (uint32_t i = 0; i < p->nlabels; i++) {
		free((void *)p->labels[i].key);
		free((void *)p->labels[i].val);
	}
	free(p->labels);
	for (uint32_t i = 0; i < p->ncontainers; i++) {
		free(p->containers[i].id);
		free(p->containers[i].name);
		free(p->containers[i].image);
	}
	free(p->containers);
	free(p);
}

static const char *runtime_from_scheme(const char *s, size_t len)
{
	static const struct {
		const char *scheme;
		const char *runtime;
	} map[] = { { "containerd", "containerd" }, { "cri-o", "cri-o" }, { "docker", "docker" } };

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].scheme) == len && memcmp(s, map[i].scheme, len) == 0)
			return map[i].runtime;
	return NULL;
}

static int add_statuses(struct ig_pod *p, struct json_object *arr)
{
	size_t n;

	if (!arr)
		return 0;
	n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		struct json_object *cs = json_object_array_get_idx(arr, i);
		struct ig_pod_container *c, *nc;
		const char *cid = jstr(cs, "containerID"), *sep;

		if (!jstr(cs, "name"))
			continue;
		nc = realloc(p->containers, (p->ncontainers + 1) * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		p->containers = nc;
		c = &p->containers[p->ncontainers++];
		memset(c, 0, sizeof(*c));
		if (dup_opt(&c->name, jstr(cs, "name")) || dup_opt(&c->image, jstr(cs, "image")))
			return -ENOMEM;
		if (cid && *cid) {
			sep = strstr(cid, "://");
			if (sep) {
				c->runtime = runtime_from_scheme(cid, (size_t)(sep - cid));
				cid = sep + 3;
			}
			if (*cid && dup_opt(&c->id, cid))
				return -ENOMEM;
		}
	}
	return 0;
}

const char *ig_k8s_resolve_owner(const char *kind, const char *name, const char *template_hash,
				 char *kind_out, size_t kind_len, char *name_out, size_t name_len)
{
	static const char safe[] = "bcdfghjklmnpqrstvwxz2456789";
	const char *dash;

	kind_out[0] = name_out[0] = '\0';
	if (!kind || !name)
		return NULL;
	snprintf(kind_out, kind_len, "%s", kind);
	snprintf(name_out, name_len, "%s", name);
	if (strcmp(kind, "ReplicaSet") != 0)
		return kind_out;
	dash = strrchr(name, '-');
	if (!dash || dash == name || !dash[1])
		return kind_out;
	if (template_hash && *template_hash) {
		if (strcmp(dash + 1, template_hash) != 0)
			return kind_out;
	} else {
		size_t n = strlen(dash + 1);

		if (n > 10 || strspn(dash + 1, safe) != n)
			return kind_out;
	}
	snprintf(kind_out, kind_len, "Deployment");
	snprintf(name_out, name_len, "%.*s", (int)(dash - name), name);
	return kind_out;
}

static int set_owner(struct ig_pod *p, struct json_object *meta, const char *template_hash)
{
	struct json_object *refs = jget(meta, "ownerReferences", json_type_array), *pick = NULL;
	char kind[128], name[512];
	size_t n;

	if (!refs)
		return 0;
	n = json_object_array_length(refs);
	for (size_t i = 0; i < n && !pick; i++) {
		struct json_object *r = json_object_array_get_idx(refs, i), *ctl;

		ctl = jget(r, "controller", json_type_boolean);
		if (ctl && json_object_get_boolean(ctl))
			pick = r;
	}
	if (!pick && n)
		pick = json_object_array_get_idx(refs, 0);
	if (!ig_k8s_resolve_owner(jstr(pick, "kind"), jstr(pick, "name"), template_hash, kind,
				  sizeof(kind), name, sizeof(name)))
		return 0;
	if (dup_opt(&p->owner_kind, kind) || dup_opt(&p->owner_name, name))
		return -ENOMEM;
	return 0;
}

int ig_pod_from_json(struct json_object *obj, const struct ig_strlist *allow, struct ig_pod **out)
{
	struct json_object *meta = jget(obj, "metadata", json_type_object);
	struct json_object *spec = jget(obj, "spec", json_type_object);
	struct json_object *status = jget(obj, "status", json_type_object);
	struct json_object *labels = jget(meta, "labels", json_type_object);
	const char *uid = jstr(meta, "uid"), *name = jstr(meta, "name");
	const char *ns = jstr(meta, "namespace"), *hash = NULL;
	struct ig_pod *p;
	int ret = -ENOMEM;

	*out = NULL;
	if (!uid || !*uid || !name || !*name || !ns || !*ns)
		return -EBADMSG;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (dup_opt(&p->uid, uid) || dup_opt(&p->name, name) || dup_opt(&p->namespace_, ns) ||
	    dup_opt(&p->resource_version, jstr(meta, "resourceVersion")) ||
	    dup_opt(&p->node, jstr(spec, "nodeName")))
		goto fail;
	if (labels) {
		json_object_object_foreach(labels, key, val)
		{
			struct ig_label *nl;
			char *k, *v;

			if (!json_object_is_type(val, json_type_string))
				continue;
			if (strcmp(key, "pod-template-hash") == 0)
				hash = json_object_get_string(val);
			if (!label_allowed(allow, key))
				continue;
			nl = realloc(p->labels, (p->nlabels + 1) * sizeof(*nl));
			if (!nl)
				goto fail;
			p->labels = nl;
			nl = &p->labels[p->nlabels++];
			k = strdup(key);
			v = strdup(json_object_get_string(val));
			nl->key = k;
			nl->val = v;
			if (!k || !v)
				goto fail;
		}
	}
	if (set_owner(p, meta, hash))
		goto fail;
	if (add_statuses(p, jget(status, "initContainerStatuses", json_type_array)) ||
	    add_statuses(p, jget(status, "containerStatuses", json_type_array)) ||
	    add_statuses(p, jget(status, "ephemeralContainerStatuses", json_type_array)))
		goto fail;
	*out = p;
	return 0;
fail:
	ig_pod_free(p);
	return ret;
}

const struct ig_pod_container *ig_pod_container_by_id(const struct ig_pod *p, const char *id)
{
	if (!p || !id)
		return NULL;
	for (uint32_t i = 0; i < p->ncontainers; i++)
		if (p->containers[i].id && strcmp(p->containers[i].id, id) == 0)
			return &p->containers[i];
	return NULL;
}

void ig_k8s_ev_free(struct ig_k8s_ev *ev)
{
	if (!ev)
		return;
	for (size_t i = 0; i < ev->npods; i++)
		ig_pod_free(ev->pods[i]);
	free(ev->pods);
	free(ev);
}

/* ----------------------------------------------------- the watch stream */

struct ig_watch_parser {
	struct json_tokener *tok;
	bool partial;
	ig_watch_event_cb cb;
	void *arg;
};

struct ig_watch_parser *ig_watch_parser_new(ig_watch_event_cb cb, void *arg)
{
	struct ig_watch_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->tok = json_tokener_new_ex(64);
	if (!p->tok) {
		free(p);
		return NULL;
	}
	p->cb = cb;
	p->arg = arg;
	return p;
}

void ig_watch_parser_reset(struct ig_watch_parser *p)
{
	json_tokener_reset(p->tok);
	p->partial = false;
}

bool ig_watch_parser_partial(const struct ig_watch_parser *p)
{
	return p->partial;
}

void ig_watch_parser_free(struct ig_watch_parser *p)
{
	if (!p)
		return;
	json_tokener_free(p->tok);
	free(p);
}

static int dispatch_event(struct ig_watch_parser *p, struct json_object *ev)
{
	const char *type = jstr(ev, "type");
	struct json_object *obj = jget(ev, "object", json_type_object);

	if (!type || !obj)
		return -EBADMSG;
	return p->cb ? p->cb(p->arg, type, obj) : 0;
}

int ig_watch_parser_feed(struct ig_watch_parser *p, const char *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		struct json_object *obj;
		enum json_tokener_error jerr;
		int ret;

		if (!p->partial) {
			while (off < len && isspace((unsigned char)buf[off]))
				off++;
			if (off == len)
				break;
		}
		obj = json_tokener_parse_ex(p->tok, buf + off, (int)(len - off));
		jerr = json_tokener_get_error(p->tok);
		if (jerr == json_tokener_continue) {
			p->partial = true;
			return 0;
		}
		if (jerr != json_tokener_success || !obj) {
			json_object_put(obj);
			ig_watch_parser_reset(p);
			return -EBADMSG;
		}
		off += json_tokener_get_parse_end(p->tok);
		p->partial = false;
		ret = json_object_is_type(obj, json_type_object) ? dispatch_event(p, obj) :
								   -EBADMSG;
		json_object_put(obj);
		if (ret)
			return ret;
	}
	return 0;
}

/* ------------------------------------------------ where the API server is */

void ig_k8s_target_free(struct ig_k8s_target *t)
{
	if (!t)
		return;
	free(t->server);
	free(t->token);
	free(t->token_file);
	free(t->ca_file);
	free(t->ca_pem);
	free(t->cert_file);
	free(t->key_file);
	free(t->cert_pem);
	free(t->key_pem);
	memset(t, 0, sizeof(*t));
}

static const char *nz(const char *s)
{
	return s && *s ? s : NULL;
}

static int check_readable(const char *what, const char *path, const char *fix, struct ig_err *err)
{
	if (access(path, R_OK) == 0)
		return 0;
	ig_err_add(err, "%s: cannot read %s (%s): %s", what, path, strerror(errno), fix);
	return -EINVAL;
}

static int set_server(struct ig_k8s_target *t, const char *url, const char *what,
		      struct ig_err *err)
{
	size_t n;

	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		ig_err_add(err, "%s: '%s' is not an http(s) URL: write it as https://host:port",
			   what, url);
		return -EINVAL;
	}
	t->server = strdup(url);
	if (!t->server)
		return -ENOMEM;
	n = strlen(t->server);
	while (n > 8 && t->server[n - 1] == '/')
		t->server[--n] = '\0';
	return 0;
}

static char *b64_decode(const char *in)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *out;
	int len;

	out = malloc(n / 4 * 3 + 4);
	if (!out)
		return NULL;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(out);
		return NULL;
	}
	while (n > 0 && in[n - 1] == '=') {
		pad++;
		n--;
	}
	len -= (int)pad;
	out[len < 0 ? 0 : len] = '\0';
	return (char *)out;
}

static const char *yscalar(const struct ig_ynode *map, const char *key)
{
	const struct ig_ynode *n = ig_ymap_get(map, key);

	return n && n->type == IG_Y_SCALAR && !n->plain_null ? n->scalar : NULL;
}

/* The `what` map of the entry named name in a kubeconfig list (clusters,
 * contexts, users: [{name: x, cluster: {...}}]). */
static const struct ig_ynode *kc_find(const struct ig_ynode *root, const char *list,
				      const char *what, const char *name)
{
	const struct ig_ynode *seq = ig_ymap_get(root, list);

	if (!seq || seq->type != IG_Y_SEQ)
		return NULL;
	for (size_t i = 0; i < seq->n; i++) {
		const char *nm = yscalar(seq->items[i], "name");
		const struct ig_ynode *v = ig_ymap_get(seq->items[i], what);

		if (nm && name && strcmp(nm, name) == 0 && v && v->type == IG_Y_MAP)
			return v;
	}
	return NULL;
}

static int kc_path(char **dst, const char *kubeconfig, const char *p)
{
	char dir[PATH_MAX], buf[PATH_MAX];

	if (p[0] == '/')
		return dup_opt(dst, p);
	snprintf(dir, sizeof(dir), "%s", kubeconfig);
	if (snprintf(buf, sizeof(buf), "%s/%s", dirname(dir), p) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	return dup_opt(dst, buf);
}

static int kc_data(char **dst, const char *b64, const char *what, const char *file,
		   struct ig_err *err)
{
	*dst = b64_decode(b64);
	if (!*dst) {
		ig_err_add(err, "%s: %s is not valid base64: re-export the kubeconfig", file, what);
		return -EINVAL;
	}
	return 0;
}

static int load_kubeconfig(const char *file, struct ig_k8s_target *t, struct ig_err *err)
{
	struct ig_ydoc *doc = NULL;
	const struct ig_ynode *root, *ctx = NULL, *cluster, *user;
	const char *cur, *s;
	int ret;

	ret = ig_ydoc_load_file(file, &doc, err);
	if (ret)
		return ret == -ENOENT ? -EINVAL : ret;
	root = doc->root;
	cur = yscalar(root, "current-context");
	if (cur && *cur) {
		ctx = kc_find(root, "contexts", "context", cur);
	} else {
		const struct ig_ynode *seq = ig_ymap_get(root, "contexts");

		if (seq && seq->type == IG_Y_SEQ && seq->n == 1) {
			ctx = ig_ymap_get(seq->items[0], "context");
			cur = yscalar(seq->items[0], "name");
		}
	}
	if (!ctx) {
		ig_err_add(err,
			   "%s: no context '%s': set current-context to one of contexts[].name",
			   file, cur ? cur : "");
		ret = -EINVAL;
		goto out;
	}
	cluster = kc_find(root, "clusters", "cluster", yscalar(ctx, "cluster"));
	user = kc_find(root, "users", "user", yscalar(ctx, "user"));
	if (!cluster || !yscalar(cluster, "server")) {
		ig_err_add(err, "%s: context '%s' names no cluster with a server: fix its cluster",
			   file, cur);
		ret = -EINVAL;
		goto out;
	}
	ret = set_server(t, yscalar(cluster, "server"), file, err);
	if (ret)
		goto out;
	if ((s = yscalar(cluster, "certificate-authority-data")))
		ret = kc_data(&t->ca_pem, s, "certificate-authority-data", file, err);
	else if ((s = yscalar(cluster, "certificate-authority")))
		ret = kc_path(&t->ca_file, file, s);
	if (!ret && (s = yscalar(cluster, "insecure-skip-tls-verify")))
		t->insecure = strcmp(s, "true") == 0;
	if (ret || !user)
		goto out;
	if (ig_ymap_get(user, "exec") || ig_ymap_get(user, "auth-provider")) {
		ig_err_add(
			err,
			"%s: user '%s' gets credentials from an exec/auth-provider plugin, which "
			"ingrain does not run: use a token, tokenFile or client certificate",
			file, yscalar(ctx, "user"));
		ret = -EINVAL;
		goto out;
	}
	if ((s = yscalar(user, "token")))
		ret = dup_opt(&t->token, s);
	else if ((s = yscalar(user, "tokenFile")))
		ret = kc_path(&t->token_file, file, s);
	if (!ret && (s = yscalar(user, "client-certificate-data")))
		ret = kc_data(&t->cert_pem, s, "client-certificate-data", file, err);
	else if (!ret && (s = yscalar(user, "client-certificate")))
		ret = kc_path(&t->cert_file, file, s);
	if (!ret && (s = yscalar(user, "client-key-data")))
		ret = kc_data(&t->key_pem, s, "client-key-data", file, err);
	else if (!ret && (s = yscalar(user, "client-key")))
		ret = kc_path(&t->key_file, file, s);
out:
	ig_ydoc_free(doc);
	return ret;
}

static int sa_files(struct ig_k8s_target *t, const struct ig_kube_conf *kc, struct ig_err *err)
{
	const char *tok = kc ? nz(kc->token_file) : NULL;
	const char *ca = kc ? nz(kc->ca_file) : NULL;
	int ret = 0;

	if (dup_opt(&t->token_file, tok ? tok : IG_K8S_SA_DIR "/token") ||
	    dup_opt(&t->ca_file, ca ? ca : IG_K8S_SA_DIR "/ca.crt"))
		return -ENOMEM;
	ret |= check_readable(
		"kubernetes.token_file", t->token_file,
		"mount the service-account token (automountServiceAccountToken) or set "
		"kubernetes.token_file",
		err);
	ret |= check_readable("kubernetes.ca_file", t->ca_file,
			      "mount the service-account CA or set kubernetes.ca_file", err);
	return ret ? -EINVAL : 0;
}

int ig_k8s_target_resolve(const struct ig_kube_conf *kc, struct ig_k8s_target *t,
			  struct ig_err *err)
{
	const char *api = kc ? nz(kc->api_server) : NULL;
	const char *kcfg = kc ? nz(kc->kubeconfig) : NULL;
	const char *host = nz(getenv("KUBERNETES_SERVICE_HOST"));
	int enabled = kc ? kc->enabled : 0;
	int ret;

	memset(t, 0, sizeof(*t));
	if (enabled == 2)
		return -ENODEV;
	if (api) {
		snprintf(t->source, sizeof(t->source), "kubernetes.api_server");
		ret = set_server(t, api, "kubernetes.api_server", err);
		if (!ret)
			ret = sa_files(t, kc, err);
	} else if (kcfg) {
		snprintf(t->source, sizeof(t->source), "kubeconfig");
		ret = load_kubeconfig(kcfg, t, err);
		if (!ret && kc && nz(kc->token_file) && !t->token && !t->token_file)
			ret = dup_opt(&t->token_file, kc->token_file);
	} else if (host) {
		const char *port = nz(getenv("KUBERNETES_SERVICE_PORT"));
		char url[512];

		snprintf(t->source, sizeof(t->source), "in-cluster");
		snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			 host, port ? port : "443");
		ret = set_server(t, url, "KUBERNETES_SERVICE_HOST", err);
		if (!ret)
			ret = sa_files(t, kc, err);
	} else {
		if (enabled == 1) {
			ig_err_add(err,
				   "kubernetes.enabled is on but no API server is known: set "
				   "kubernetes.api_server or kubernetes.kubeconfig, or run the "
				   "agent in a pod");
			return -EINVAL;
		}
		return -ENODEV;
	}
	if (ret) {
		ig_k8s_target_free(t);
		return ret == -ENOMEM ? ret : -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------- the client */

const char *ig_api_state_name(enum ig_api_state s)
{
	switch (s) {
	case IG_API_DISABLED:
		return "disabled";
	case IG_API_CONNECTING:
		return "connecting";
	case IG_API_CONNECTED:
		return "connected";
	case IG_API_RELISTING:
		return "relisting";
	case IG_API_UNREACHABLE:
		return "unreachable";
	}
	return "unknown";
}

enum req_kind { REQ_LIST, REQ_WATCH };

/* Why a watch ended (beyond curl's own result). */
enum watch_end { END_NONE, END_GONE, END_ERROR_EVENT, END_BAD_STREAM, END_NOMEM };

struct ig_k8s_client {
	struct ig_k8s_target t;
	char *node;
	char *list_url;
	struct ig_strlist allow;
	uint64_t watch_timeout_s;
	uint64_t backoff_max_ns;
	ig_k8s_cb cb;
	void *arg;

	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	CURLM *multi;
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];

	/* the request in flight */
	enum req_kind kind;
	long http;
	struct json_tokener *list_tok;
	struct json_object *list_obj;
	size_t body_bytes;
	char *errbody;
	size_t errlen;
	struct ig_watch_parser *wp;
	enum watch_end wend;
	char *wend_msg;
	bool connected_logged;

	char rv[128];

	atomic_int state;
	atomic_uint_fast64_t lists, restarts, relists, errors, events;
	atomic_int last_http;
	struct ig_ratelimit rl;
	unsigned seed;
};

static void set_state(struct ig_k8s_client *c, enum ig_api_state s)
{
	atomic_store(&c->state, (int)s);
}

static void emit(struct ig_k8s_client *c, enum ig_k8s_ev_type type, struct ig_pod **pods, size_t n)
{
	struct ig_k8s_ev *ev = calloc(1, sizeof(*ev));

	if (!ev) {
		for (size_t i = 0; i < n; i++)
			ig_pod_free(pods[i]);
		free(pods);
		return;
	}
	ev->type = type;
	ev->pods = pods;
	ev->npods = n;
	if (c->cb)
		c->cb(c->arg, ev);
	else
		ig_k8s_ev_free(ev);
}

static void note_rv(struct ig_k8s_client *c, const char *rv)
{
	if (rv && *rv)
		snprintf(c->rv, sizeof(c->rv), "%s", rv);
}

static int on_watch_event(void *arg, const char *type, struct json_object *obj)
{
	struct ig_k8s_client *c = arg;
	struct ig_pod *pod, **one;
	int ret;

	if (strcmp(type, "BOOKMARK") == 0) {
		note_rv(c, jstr(jget(obj, "metadata", json_type_object), "resourceVersion"));
		return 0;
	}
	if (strcmp(type, "ERROR") == 0) {
		struct json_object *code = jget(obj, "code", json_type_int);
		const char *msg = jstr(obj, "message");

		c->wend = code && json_object_get_int(code) == 410 ? END_GONE : END_ERROR_EVENT;
		free(c->wend_msg);
		c->wend_msg = msg ? strdup(msg) : NULL;
		return 1;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED") && strcmp(type, "DELETED"))
		return 0; /* unknown event types are skipped, as client-go does */
	ret = ig_pod_from_json(obj, &c->allow, &pod);
	if (ret == -ENOMEM) {
		c->wend = END_NOMEM;
		return 1;
	}
	if (ret) {
		uint64_t sup;

		if (ig_ratelimit_ok(&c->rl, &sup))
			ig_warn("kubernetes watch event without pod metadata skipped",
				"type=%s suppressed=%llu", type, (unsigned long long)sup);
		return 0;
	}
	note_rv(c, pod->resource_version);
	one = malloc(sizeof(*one));
	if (!one) {
		ig_pod_free(pod);
		c->wend = END_NOMEM;
		return 1;
	}
	one[0] = pod;
	atomic_fetch_add(&c->events, 1);
	emit(c, type[0] == 'D' ? IG_K8S_DELETE : IG_K8S_UPSERT, one, 1);
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct ig_k8s_client *c = arg;
	size_t len = size * nmemb;

	if (atomic_load(&c->stop))
		return 0;
	if (!c->http)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http);
	c->body_bytes += len;
	if (c->http != 200) {
		size_t keep = len;

		if (c->errlen + keep > IG_K8S_MAX_ERRBODY)
			keep = IG_K8S_MAX_ERRBODY - c->errlen;
		if (keep) {
			char *nb = realloc(c->errbody, c->errlen + keep + 1);

			if (!nb)
				return 0;
			memcpy(nb + c->errlen, data, keep);
			c->errlen += keep;
			nb[c->errlen] = '\0';
			c->errbody = nb;
		}
		return len;
	}
	if (c->kind == REQ_WATCH) {
		int ret = ig_watch_parser_feed(c->wp, data, len);

		if (ret < 0) {
			c->wend = END_BAD_STREAM;
			return 0;
		}
		return ret > 0 ? 0 : len;
	}
	/* list: one JSON document, parsed as it arrives */
	if (c->body_bytes > IG_K8S_MAX_BODY || c->list_obj)
		return c->list_obj ? len : 0;
	c->list_obj = json_tokener_parse_ex(c->list_tok, data, (int)len);
	if (!c->list_obj && json_tokener_get_error(c->list_tok) != json_tokener_continue)
		return 0;
	return len;
}

static char *read_token(const char *file)
{
	FILE *f = fopen(file, "re");
	char buf[16384];
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	return n ? strdup(buf) : NULL;
}

static void blob_opt(CURL *e, CURLoption opt, const char *pem)
{
	struct curl_blob b = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };

	curl_easy_setopt(e, opt, &b);
}

/* Runs one request to completion (or stop). Returns the curl result, or -1
 * when stopped. */
static int perform(struct ig_k8s_client *c, const char *url, long timeout_s)
{
	struct curl_slist *hdrs = NULL;
	char *token = NULL, auth[16400];
	CURLcode res = CURLE_OK;
	CURLMsg *m;
	int running = 1, left;

	token = c->t.token_file ? read_token(c->t.token_file) : NULL;
	if (!token && c->t.token)
		token = strdup(c->t.token);
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
		memset(auth, 0, sizeof(auth));
		free(token);
	}
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	curl_easy_reset(c->easy);
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "ingrain-agent");
	if (c->t.ca_pem)
		blob_opt(c->easy, CURLOPT_CAINFO_BLOB, c->t.ca_pem);
	else if (c->t.ca_file)
		curl_easy_setopt(c->easy, CURLOPT_CAINFO, c->t.ca_file);
	if (c->t.cert_pem)
		blob_opt(c->easy, CURLOPT_SSLCERT_BLOB, c->t.cert_pem);
	else if (c->t.cert_file)
		curl_easy_setopt(c->easy, CURLOPT_SSLCERT, c->t.cert_file);
	if (c->t.key_pem)
		blob_opt(c->easy, CURLOPT_SSLKEY_BLOB, c->t.key_pem);
	else if (c->t.key_file)
		curl_easy_setopt(c->easy, CURLOPT_SSLKEY, c->t.key_file);
	if (c->t.insecure) {
		curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	c->errbuf[0] = '\0';
	c->http = 0;
	c->body_bytes = 0;
	c->errlen = 0;
	curl_multi_add_handle(c->multi, c->easy);
	while (running && !atomic_load(&c->stop)) {
		if (curl_multi_perform(c->multi, &running) != CURLM_OK)
			break;
		if (!c->http)
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http);
		if (c->kind == REQ_WATCH && c->http == 200 &&
		    atomic_load(&c->state) != IG_API_CONNECTED)
			set_state(c, IG_API_CONNECTED);
		if (running)
			curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
	}
	while ((m = curl_multi_info_read(c->multi, &left)))
		if (m->msg == CURLMSG_DONE)
			res = m->data.result;
	if (!c->http)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->http);
	curl_multi_remove_handle(c->multi, c->easy);
	curl_slist_free_all(hdrs);
	atomic_store(&c->last_http, (int)c->http);
	if (atomic_load(&c->stop))
		return -1;
	return (int)res;
}

static const char *hint_for(long http, int res)
{
	if (http == 401)
		return "the API server rejected the token: check that the service-account token "
		       "is mounted and current (kubernetes.token_file)";
	if (http == 403)
		return "forbidden: grant the agent's service account get, list and watch on pods "
		       "(ClusterRole in docs/kubernetes.md)";
	if (http >= 500)
		return "the API server failed: it will be retried";
	switch (res) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
		return "TLS failed: check kubernetes.ca_file (or the kubeconfig's CA) matches the "
		       "API server's certificate";
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		return "cannot reach the API server: check kubernetes.api_server and network "
		       "policies for the agent";
	default:
		return "it will be retried";
	}
}

static void report_failure(struct ig_k8s_client *c, const char *what, int res)
{
	uint64_t sup;
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror((CURLcode)res);
	char msg[512] = "";

	if (c->http && c->http != 200 && c->errbody) {
		struct json_object *st = json_tokener_parse(c->errbody);

		if (st && jstr(st, "message"))
			snprintf(msg, sizeof(msg), "%s", jstr(st, "message"));
		json_object_put(st);
		detail = msg[0] ? msg : detail;
	}
	atomic_fetch_add(&c->errors, 1);
	c->connected_logged = false;
	if (ig_ratelimit_ok(&c->rl, &sup))
		ig_warn("kubernetes API unreachable: events keep their container identity, pod "
			"fields fill in when it returns",
			"request=%s server=%s http=%ld error=\"%s\" hint=\"%s\" suppressed=%llu",
			what, c->t.server, c->http, detail, hint_for(c->http, res),
			(unsigned long long)sup);
}

static int do_list(struct ig_k8s_client *c)
{
	struct json_object *items, *meta;
	struct ig_pod **pods = NULL;
	size_t n = 0;
	int res;

	c->kind = REQ_LIST;
	c->list_obj = NULL;
	json_tokener_reset(c->list_tok);
	res = perform(c, c->list_url, 60);
	if (res < 0)
		return -ECANCELED;
	if (res != CURLE_OK || c->http != 200 || !c->list_obj) {
		if (res == CURLE_OK && c->http == 200)
			snprintf(c->errbuf, sizeof(c->errbuf), "PodList is not valid JSON");
		report_failure(c, "list", res);
		json_object_put(c->list_obj);
		c->list_obj = NULL;
		return -EIO;
	}
	items = jget(c->list_obj, "items", json_type_array);
	meta = jget(c->list_obj, "metadata", json_type_object);
	if (!items || !jstr(meta, "resourceVersion")) {
		snprintf(c->errbuf, sizeof(c->errbuf), "response is not a PodList");
		report_failure(c, "list", CURLE_OK);
		json_object_put(c->list_obj);
		c->list_obj = NULL;
		return -EIO;
	}
	n = json_object_array_length(items);
	pods = calloc(n ? n : 1, sizeof(*pods));
	if (!pods) {
		json_object_put(c->list_obj);
		c->list_obj = NULL;
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (ig_pod_from_json(json_object_array_get_idx(items, i), &c->allow, &pods[k]) == 0)
			k++;
	note_rv(c, jstr(meta, "resourceVersion"));
	json_object_put(c->list_obj);
	c->list_obj = NULL;
	atomic_fetch_add(&c->lists, 1);
	if (!c->connected_logged) {
		ig_info("kubernetes API connected", "server=%s source=%s node=%s pods=%zu",
			c->t.server, c->t.source, c->node, k);
		c->connected_logged = true;
	}
	emit(c, IG_K8S_REPLACE, pods, k);
	return 0;
}

/* 0 = ended normally (server timeout), 1 = 410 Gone (relist), -1 = stopped,
 * -EPIPE = an open stream broke (reconnect), -EIO = failed (back off). */
static int do_watch(struct ig_k8s_client *c)
{
	char *esc = curl_easy_escape(c->easy, c->rv, 0), url[4096];
	uint64_t t0 = ig_mono_ns();
	int res;

	snprintf(url, sizeof(url),
		 "%s&watch=1&resourceVersion=%s&allowWatchBookmarks=true&timeoutSeconds=%llu",
		 c->list_url, esc ? esc : "", (unsigned long long)c->watch_timeout_s);
	curl_free(esc);
	c->kind = REQ_WATCH;
	c->wend = END_NONE;
	ig_watch_parser_reset(c->wp);
	res = perform(c, url, (long)c->watch_timeout_s + 30);
	if (res < 0)
		return -1;
	if (c->wend == END_GONE || c->http == 410) {
		ig_info("kubernetes watch expired (410 Gone): listing pods again",
			"server=%s resource_version=%s message=\"%s\"", c->t.server, c->rv,
			c->wend_msg ? c->wend_msg : "");
		return 1;
	}
	if (c->wend == END_ERROR_EVENT) {
		snprintf(c->errbuf, sizeof(c->errbuf), "watch ERROR event: %s",
			 c->wend_msg ? c->wend_msg : "");
		report_failure(c, "watch", CURLE_OK);
		return -EIO;
	}
	if (c->wend == END_BAD_STREAM)
		snprintf(c->errbuf, sizeof(c->errbuf), "malformed watch stream");
	/* A stream that was flowing and broke (API server restart, load
	 * balancer idle timeout, a cut connection): reconnect at once. */
	if (c->http == 200 && c->wend == END_NONE && res != CURLE_OK &&
	    res != CURLE_OPERATION_TIMEDOUT && res != CURLE_COULDNT_CONNECT) {
		ig_info("kubernetes watch interrupted: reconnecting",
			"server=%s resource_version=%s error=\"%s\" inside_event=%s", c->t.server,
			c->rv, c->errbuf[0] ? c->errbuf : curl_easy_strerror((CURLcode)res),
			ig_watch_parser_partial(c->wp) ? "yes" : "no");
		return -EPIPE;
	}
	if (res != CURLE_OK || c->http != 200 || c->wend != END_NONE ||
	    ig_watch_parser_partial(c->wp)) {
		if (res == CURLE_OK && ig_watch_parser_partial(c->wp))
			snprintf(c->errbuf, sizeof(c->errbuf), "watch ended inside an event");
		report_failure(c, "watch", res);
		return -EIO;
	}
	/* A clean end after less than a second, repeatedly, would spin: back off. */
	if (ig_mono_ns() - t0 < IG_NSEC_PER_SEC && c->body_bytes == 0)
		return -EIO;
	return 0;
}

/* Sleeps up to ns, waking early on stop. */
static void nap(struct ig_k8s_client *c, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ns / IG_NSEC_PER_SEC);
	ts.tv_nsec += (long)(ns % IG_NSEC_PER_SEC);
	if (ts.tv_nsec >= (long)IG_NSEC_PER_SEC) {
		ts.tv_sec++;
		ts.tv_nsec -= (long)IG_NSEC_PER_SEC;
	}
	pthread_mutex_lock(&c->mu);
	while (!atomic_load(&c->stop))
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&c->mu);
}

static void backoff(struct ig_k8s_client *c, uint64_t *cur)
{
	uint64_t jitter;

	*cur = *cur ? *cur * 2 : IG_K8S_BACKOFF_MIN_NS;
	if (*cur > c->backoff_max_ns)
		*cur = c->backoff_max_ns;
	/* per-agent jitter, so agents that lost the API together do not return together */
	jitter = *cur / 5 ? (uint64_t)rand_r(&c->seed) % (*cur / 5) : 0;
	set_state(c, IG_API_UNREACHABLE);
	nap(c, *cur - *cur / 10 + jitter);
}

static void *client_main(void *arg)
{
	struct ig_k8s_client *c = arg;
	uint64_t bo = 0;
	bool need_list = true;
	int quick_breaks = 0; /* consecutive broken streams reconnected without delay */
	uint64_t t0;

	while (!atomic_load(&c->stop)) {
		int ret;

		if (need_list) {
			if (atomic_load(&c->lists))
				set_state(c, IG_API_RELISTING);
			ret = do_list(c);
			if (ret == -ECANCELED)
				break;
			if (ret) {
				backoff(c, &bo);
				continue;
			}
			need_list = false;
			bo = 0;
			set_state(c, IG_API_CONNECTED);
		}
		t0 = ig_mono_ns();
		ret = do_watch(c);
		if (ret == -1)
			break;
		if (ig_mono_ns() - t0 > 10 * IG_NSEC_PER_SEC)
			quick_breaks = 0; /* it had been fine for a while */
		atomic_fetch_add(&c->restarts, 1);
		if (ret == 1) {
			atomic_fetch_add(&c->relists, 1);
			need_list = true;
			continue;
		}
		if (ret == 0) {
			bo = 0;
			quick_breaks = 0;
			continue;
		}
		if (ret == -EPIPE && quick_breaks++ < 3)
			continue;
		if (ret == -EPIPE)
			atomic_fetch_add(&c->errors, 1);
		quick_breaks = ret == -EPIPE ? quick_breaks : 0;
		backoff(c, &bo);
	}
	return NULL;
}

static int copy_strlist(struct ig_strlist *dst, const struct ig_strlist *src)
{
	dst->n = 0;
	dst->v = NULL;
	if (!src || !src->n)
		return 0;
	dst->v = calloc(src->n, sizeof(char *));
	if (!dst->v)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i] = strdup(src->v[i]);
		if (!dst->v[i])
			return -ENOMEM;
		dst->n++;
	}
	return 0;
}

static void free_strlist(struct ig_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void ig_k8s_client_stats(struct ig_k8s_client *c, struct ig_k8s_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->state = (enum ig_api_state)atomic_load(&c->state);
	st->lists = atomic_load(&c->lists);
	st->watch_restarts = atomic_load(&c->restarts);
	st->relists_410 = atomic_load(&c->relists);
	st->errors = atomic_load(&c->errors);
	st->events = atomic_load(&c->events);
	st->last_http = atomic_load(&c->last_http);
}

void ig_k8s_client_free(struct ig_k8s_client *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->mu);
		atomic_store(&c->stop, true);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		if (c->multi)
			curl_multi_wakeup(c->multi);
		pthread_join(c->thread, NULL);
	}
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->list_tok)
		json_tokener_free(c->list_tok);
	json_object_put(c->list_obj);
	ig_watch_parser_free(c->wp);
	free(c->errbody);
	free(c->wend_msg);
	free(c->list_url);
	free(c->node);
	free_strlist(&c->allow);
	ig_k8s_target_free(&c->t);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int ig_k8s_client_new(struct ig_k8s_client **out, const struct ig_kube_conf *kc,
		      const char *node_name, ig_k8s_cb cb, void *arg, struct ig_err *err)
{
	struct ig_k8s_client *c;
	pthread_condattr_t ca;
	char *esc;
	int ret;

	*out = NULL;
	if (!node_name || !*node_name) {
		ig_err_add(err, "agent.node_name is empty: the agent watches only its own node's "
				"pods; set NODE_NAME from spec.nodeName (downward API)");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->rl.interval_ns = 30 * IG_NSEC_PER_SEC;
	c->seed = (unsigned)(ig_wall_ns() ^ ((uint64_t)getpid() << 16));
	ret = ig_k8s_target_resolve(kc, &c->t, err);
	if (ret)
		goto fail;
	if (c->t.insecure)
		ig_warn("kubernetes API TLS verification is off (insecure-skip-tls-verify)",
			"server=%s", c->t.server);
	ret = -ENOMEM;
	c->cb = cb;
	c->arg = arg;
	c->watch_timeout_s =
		kc && kc->watch_timeout_ns ? kc->watch_timeout_ns / IG_NSEC_PER_SEC : 300;
	if (!c->watch_timeout_s)
		c->watch_timeout_s = 1;
	c->backoff_max_ns =
		kc && kc->relist_backoff_max_ns ? kc->relist_backoff_max_ns : 30 * IG_NSEC_PER_SEC;
	if (c->backoff_max_ns < IG_K8S_BACKOFF_MIN_NS)
		c->backoff_max_ns = IG_K8S_BACKOFF_MIN_NS;
	if (copy_strlist(&c->allow, kc ? &kc->label_allowlist : NULL))
		goto fail;
	c->node = strdup(node_name);
	pthread_once(&curl_once, curl_init_once);
	c->multi = curl_multi_init();
	c->easy = curl_easy_init();
	c->list_tok = json_tokener_new_ex(64);
	c->wp = ig_watch_parser_new(on_watch_event, c);
	if (!c->node || !c->multi || !c->easy || !c->list_tok || !c->wp)
		goto fail;
	esc = curl_easy_escape(c->easy, node_name, 0);
	if (!esc)
		goto fail;
	ret = asprintf(&c->list_url, "%s/api/v1/pods?fieldSelector=spec.nodeName%%3D%s",
		       c->t.server, esc);
	curl_free(esc);
	if (ret < 0) {
		c->list_url = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	set_state(c, IG_API_CONNECTING);
	ret = -pthread_create(&c->thread, NULL, client_main, c);
	if (ret)
		goto fail;
	c->started = true;
	*out = c;
	return 0;
fail:
	ig_k8s_client_free(c);
	return ret;
}
