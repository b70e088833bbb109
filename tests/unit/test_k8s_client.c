/* k8s_client: pods from JSON, the watch stream parser, where the API server
 * is, and the list/watch loop against tests/k8s-api-standin/server.py (real
 * HTTPS with a CA made here, bearer token checked, real PodList and watch
 * JSON, 410 Gone, connections cut mid-object). The last test puts it all
 * together: real cgroups + the stand-in, and pod metadata on events.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup_path.h"
#include "identity.h"
#include "ig_time.h"
#include "k8s_client.h"

#ifndef IG_SOURCE_DIR
#define IG_SOURCE_DIR "."
#endif

#define C1 "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define C2 "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
#define C3 "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"
#define UID1 "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
#define UID1_ "5d6e7f80_9a0b_4c1d_8e2f_3a4b5c6d7e8f"
#define UID2 "1b2c3d4e-5f60-4b7c-9d8e-0f1a2b3c4d5e"
#define UID2_ "1b2c3d4e_5f60_4b7c_9d8e_0f1a2b3c4d5e"
#define UID3 "2c3d4e5f-6071-4c8d-8e9f-1a2b3c4d5e6f"

static char pki[PATH_MAX]; /* CA, server certificate, an unrelated CA */

/* ------------------------------------------------------------ pod JSON */

/* A Pod as the API serves it. owner_kind may be NULL (no ownerReferences). */
static void pod_json(char *buf, size_t n, const char *name, const char *uid, const char *node,
		     const char *owner_kind, const char *owner_name, const char *hash,
		     const char *cid_uri)
{
	/* only the web pod (UID1) has C3 as its init container: ids are unique */
	const char *init_cid = strcmp(uid, UID1) == 0 ? C3 : "";
	char owner[512] = "", labels[256];

	if (owner_kind)
		snprintf(
			owner, sizeof(owner),
			",\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
			"\"name\":\"not-the-controller\",\"uid\":\"x\"},{\"apiVersion\":\"apps/v1\","
			"\"kind\":\"%s\",\"name\":\"%s\",\"uid\":\"o-1\",\"controller\":true}]",
			owner_kind, owner_name);
	snprintf(labels, sizeof(labels),
		 "{\"app\":\"%s\",\"team\":\"payments\",\"tier\":\"backend\"%s%s%s}", name,
		 hash ? ",\"pod-template-hash\":\"" : "", hash ? hash : "", hash ? "\"" : "");
	snprintf(
		buf, n,
		"{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
		"\"namespace\":\"shop\",\"uid\":\"%s\",\"labels\":%s%s,"
		"\"managedFields\":[{\"manager\":\"kubelet\",\"fieldsV1\":{\"f:status\":{}}}]},"
		"\"spec\":{\"nodeName\":\"%s\",\"containers\":[{\"name\":\"app\","
		"\"image\":\"nginx:1.25\"}]},\"status\":{\"phase\":\"Running\","
		"\"initContainerStatuses\":[{\"name\":\"init\",\"image\":\"busybox:1.36\","
		"\"containerID\":\"containerd://%s\"}],"
		"\"containerStatuses\":[{\"name\":\"app\",\"image\":\"docker.io/library/nginx:1.25\","
		"\"containerID\":\"%s\"},{\"name\":\"waiting\",\"image\":\"redis:7\"}]}}",
		name, uid, labels, owner, node, init_cid, cid_uri);
}

static struct ig_strlist allow_list(void)
{
	static char *v[] = { "app", "team" };

	return (struct ig_strlist){ 2, v };
}

static const char *label(const struct ig_label *l, uint32_t n, const char *key)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(l[i].key, key) == 0)
			return l[i].val;
	return NULL;
}

static void test_pod_keeps_allowlisted_labels_and_resolves_the_deployment(void **state)
{
	char buf[4096];
	struct json_object *o;
	struct ig_pod *p;
	struct ig_strlist allow = allow_list();
	const struct ig_pod_container *c;

	(void)state;
	pod_json(buf, sizeof(buf), "web-7d4b9c8f6-x2x9q", UID1, "node-a", "ReplicaSet",
		 "web-7d4b9c8f6", "7d4b9c8f6", "containerd://" C1);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	assert_int_equal(ig_pod_from_json(o, &allow, &p), 0);
	assert_string_equal(p->uid, UID1);
	assert_string_equal(p->name, "web-7d4b9c8f6-x2x9q");
	assert_string_equal(p->namespace_, "shop");
	assert_string_equal(p->node, "node-a");
	assert_string_equal(p->owner_kind, "Deployment");
	assert_string_equal(p->owner_name, "web");
	assert_int_equal(p->nlabels, 2); /* tier and pod-template-hash are not allowed */
	assert_string_equal(label(p->labels, p->nlabels, "app"), "web-7d4b9c8f6-x2x9q");
	assert_string_equal(label(p->labels, p->nlabels, "team"), "payments");
	assert_null(label(p->labels, p->nlabels, "tier"));
	assert_int_equal(p->ncontainers, 3);
	c = ig_pod_container_by_id(p, C1);
	assert_non_null(c);
	assert_string_equal(c->name, "app");
	assert_string_equal(c->image, "docker.io/library/nginx:1.25");
	assert_string_equal(c->runtime, "containerd");
	c = ig_pod_container_by_id(p, C3);
	assert_non_null(c);
	assert_string_equal(c->name, "init"); /* init containers count */
	assert_null(ig_pod_container_by_id(p, C2));
	ig_pod_free(p);
	json_object_put(o);
}

static void test_pod_owner_and_runtime_variants(void **state)
{
	char buf[4096];
	struct json_object *o;
	struct ig_pod *p;
	struct ig_strlist prefix = { 1, (char *[]){ "t*" } };

	(void)state;
	/* a StatefulSet is kept as is; cri-o ids; prefix allowlist */
	pod_json(buf, sizeof(buf), "db-0", UID2, "node-a", "StatefulSet", "db", NULL,
		 "cri-o://" C2);
	o = json_tokener_parse(buf);
	assert_int_equal(ig_pod_from_json(o, &prefix, &p), 0);
	assert_string_equal(p->owner_kind, "StatefulSet");
	assert_string_equal(p->owner_name, "db");
	assert_string_equal(ig_pod_container_by_id(p, C2)->runtime, "cri-o");
	assert_int_equal(p->nlabels, 2); /* team, tier */
	assert_null(label(p->labels, p->nlabels, "app"));
	ig_pod_free(p);
	json_object_put(o);
	/* a bare pod: no owner; no allowlist: no labels */
	pod_json(buf, sizeof(buf), "debug", UID3, "node-a", NULL, NULL, NULL, "docker://" C2);
	o = json_tokener_parse(buf);
	assert_int_equal(ig_pod_from_json(o, NULL, &p), 0);
	assert_null(p->owner_kind);
	assert_null(p->owner_name);
	assert_int_equal(p->nlabels, 0);
	assert_string_equal(ig_pod_container_by_id(p, C2)->runtime, "docker");
	ig_pod_free(p);
	json_object_put(o);
}

static void test_replicaset_names_resolve_to_deployments_only_when_the_hash_matches(void **state)
{
	char k[64], n[128];

	(void)state;
	assert_string_equal(ig_k8s_resolve_owner("ReplicaSet", "web-7d4b9c8f6", "7d4b9c8f6", k,
						 sizeof(k), n, sizeof(n)),
			    "Deployment");
	assert_string_equal(n, "web");
	/* label present but different: a hand-made ReplicaSet */
	ig_k8s_resolve_owner("ReplicaSet", "web-7d4b9c8f6", "5f6d7c8b9", k, sizeof(k), n,
			     sizeof(n));
	assert_string_equal(k, "ReplicaSet");
	assert_string_equal(n, "web-7d4b9c8f6");
	/* no label: Kubernetes' safe alphabet (no vowels, no 0/1/3) */
	ig_k8s_resolve_owner("ReplicaSet", "my-api-5f6d7c8b9", NULL, k, sizeof(k), n, sizeof(n));
	assert_string_equal(k, "Deployment");
	assert_string_equal(n, "my-api");
	ig_k8s_resolve_owner("ReplicaSet", "frontend-prod", NULL, k, sizeof(k), n, sizeof(n));
	assert_string_equal(k, "ReplicaSet"); /* 'o' and 'e' are not in the alphabet */
	ig_k8s_resolve_owner("ReplicaSet", "nodash", NULL, k, sizeof(k), n, sizeof(n));
	assert_string_equal(k, "ReplicaSet");
	ig_k8s_resolve_owner("Job", "backup-28391520", NULL, k, sizeof(k), n, sizeof(n));
	assert_string_equal(k, "Job");
	assert_null(ig_k8s_resolve_owner(NULL, "x", NULL, k, sizeof(k), n, sizeof(n)));
}

static void test_pod_without_identity_is_rejected(void **state)
{
	static const char *const bad[] = {
		"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"}}",
		"{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"u\",\"namespace\":\"b\"}}",
		"{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":7}}",
		"{\"kind\":\"Pod\",\"metadata\":\"nope\"}",
		"[1,2,3]",
		"{\"kind\":\"Pod\",\"metadata\":{\"uid\":\"\",\"name\":\"a\",\"namespace\":\"b\"}}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = json_tokener_parse(bad[i]);
		struct ig_pod *p = (void *)1;

		assert_int_equal(ig_pod_from_json(o, NULL, &p), -EBADMSG);
		assert_null(p);
		json_object_put(o);
	}
	/* odd but valid: non-string labels and statuses without names are skipped */
	{
		struct json_object *o = json_tokener_parse(
			"{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"b\","
			"\"labels\":{\"app\":5}},\"status\":{\"containerStatuses\":[{\"image\":\"x\"},"
			"{\"name\":\"c\",\"containerID\":\"\"}]}}");
		struct ig_pod *p;
		struct ig_strlist allow = allow_list();

		assert_int_equal(ig_pod_from_json(o, &allow, &p), 0);
		assert_int_equal(p->nlabels, 0);
		assert_int_equal(p->ncontainers, 1);
		assert_null(p->containers[0].id);
		ig_pod_free(p);
		json_object_put(o);
	}
}

/* ------------------------------------------------------- watch parser */

struct evlog {
	int n;
	char types[16][16];
	char names[16][64];
	int stop_after; /* return 1 from the callback after this many (0 = never) */
};

static int log_event(void *arg, const char *type, struct json_object *obj)
{
	struct evlog *l = arg;
	struct json_object *meta, *name;

	if (l->n < 16) {
		snprintf(l->types[l->n], sizeof(l->types[0]), "%s", type);
		l->names[l->n][0] = '\0';
		if (json_object_object_get_ex(obj, "metadata", &meta) &&
		    json_object_object_get_ex(meta, "name", &name))
			snprintf(l->names[l->n], sizeof(l->names[0]), "%s",
				 json_object_get_string(name));
	}
	l->n++;
	return l->stop_after && l->n >= l->stop_after ? 1 : 0;
}

static const char stream[] =
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"a\",\"labels\":"
	"{\"x\":\"{\\\"}\\n\"}}}}\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":"
	"\"12\"}}}\n\n  "
	"{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"b\"}}}\n";

static void test_watch_events_split_at_every_byte_are_reassembled(void **state)
{
	size_t len = strlen(stream);

	(void)state;
	/* every chunk size, including one byte at a time */
	for (size_t step = 1; step <= len; step++) {
		struct evlog l = { 0 };
		struct ig_watch_parser *p = ig_watch_parser_new(log_event, &l);

		for (size_t off = 0; off < len; off += step)
			assert_int_equal(ig_watch_parser_feed(p, stream + off,
							      off + step > len ? len - off : step),
					 0);
		assert_int_equal(l.n, 3);
		assert_string_equal(l.types[0], "ADDED");
		assert_string_equal(l.names[0], "a");
		assert_string_equal(l.types[1], "BOOKMARK");
		assert_string_equal(l.types[2], "DELETED");
		assert_string_equal(l.names[2], "b");
		assert_false(ig_watch_parser_partial(p));
		ig_watch_parser_free(p);
	}
}

static void test_watch_parser_reports_partial_and_malformed_streams(void **state)
{
	struct evlog l = { 0 };
	struct ig_watch_parser *p = ig_watch_parser_new(log_event, &l);

	(void)state;
	assert_int_equal(ig_watch_parser_feed(p, "{\"type\":\"ADDED\",\"obj", 20), 0);
	assert_true(ig_watch_parser_partial(p)); /* the connection dropped here */
	ig_watch_parser_reset(p);
	assert_false(ig_watch_parser_partial(p));
	assert_int_equal(ig_watch_parser_feed(p, "{\"type\":}\n", 10), -EBADMSG);
	assert_int_equal(ig_watch_parser_feed(p, "{\"type\":\"ADDED\"}\n", 17), -EBADMSG);
	assert_int_equal(ig_watch_parser_feed(p, "[1]\n", 4), -EBADMSG);
	assert_int_equal(ig_watch_parser_feed(p, "{\"type\":\"ADDED\",\"object\":[]}", 28),
			 -EBADMSG);
	assert_int_equal(l.n, 0);
	/* a callback can stop the feed */
	l.stop_after = 1;
	assert_int_equal(ig_watch_parser_feed(p, stream, strlen(stream)), 1);
	assert_int_equal(l.n, 1);
	ig_watch_parser_free(p);
}

/* ------------------------------------------------------------- targets */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct ig_kube_conf kconf(const char *api, const char *token_file, const char *ca)
{
	struct ig_kube_conf kc;

	memset(&kc, 0, sizeof(kc));
	kc.api_server = (char *)api;
	kc.token_file = (char *)token_file;
	kc.ca_file = (char *)ca;
	kc.label_allowlist = allow_list();
	kc.watch_timeout_ns = 30 * IG_NSEC_PER_SEC;
	kc.relist_backoff_max_ns = 1 * IG_NSEC_PER_SEC;
	kc.cgroup_rescan_ns = 60 * IG_NSEC_PER_SEC;
	return kc;
}

static void test_target_comes_from_config_in_cluster_env_or_kubeconfig(void **state)
{
	char dir[] = "/tmp/ig_k8starget_XXXXXX", tok[PATH_MAX], ca[PATH_MAX], kcfg[PATH_MAX];
	char text[2048];
	struct ig_k8s_target t;
	struct ig_kube_conf kc;
	struct ig_err err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(tok, sizeof(tok), "%s/token", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	write_file(tok, "abc\n");
	write_file(ca, "-----BEGIN CERTIFICATE-----\n");

	/* off, and nothing found */
	kc = kconf(NULL, NULL, NULL);
	kc.enabled = 2;
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, NULL), -ENODEV);
	kc.enabled = 0;
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, NULL), -ENODEV);
	assert_int_equal(ig_k8s_target_resolve(NULL, &t, NULL), -ENODEV);
	kc.enabled = 1;
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "kubernetes.api_server"));

	/* explicit server; trailing slash dropped */
	kc = kconf("https://10.0.0.1:6443/", tok, ca);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, NULL), 0);
	assert_string_equal(t.server, "https://10.0.0.1:6443");
	assert_string_equal(t.token_file, tok);
	assert_string_equal(t.ca_file, ca);
	assert_string_equal(t.source, "kubernetes.api_server");
	ig_k8s_target_free(&t);
	/* ... but not a non-URL, nor unreadable files; the message says which */
	kc = kconf("10.0.0.1:6443", tok, ca);
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "https://host:port"));
	kc = kconf("https://10.0.0.1:6443", "/nonexistent/token", ca);
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "kubernetes.token_file"));

	/* in-cluster: the service's env vars (IPv6 host bracketed) */
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	kc = kconf(NULL, tok, ca);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, NULL), 0);
	assert_string_equal(t.server, "https://[fd00::1]:443");
	assert_string_equal(t.source, "in-cluster");
	ig_k8s_target_free(&t);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");

	/* kubeconfig: current-context -> cluster + user, inline data decoded,
	 * relative paths from the kubeconfig's directory */
	snprintf(kcfg, sizeof(kcfg), "%s/kubeconfig", dir);
	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
		 "clusters:\n- name: other\n  cluster:\n    server: https://wrong:1\n"
		 "- name: kind\n  cluster:\n    server: https://127.0.0.1:40000\n"
		 "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n"
		 "contexts:\n- name: dev\n  context:\n    cluster: kind\n    user: agent\n"
		 "users:\n- name: agent\n  user:\n    tokenFile: token\n"
		 "    client-certificate: certs/agent.crt\n");
	write_file(kcfg, text);
	kc = kconf(NULL, NULL, NULL);
	kc.kubeconfig = kcfg;
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), 0);
	assert_string_equal(t.server, "https://127.0.0.1:40000");
	assert_string_equal(t.ca_pem, "-----BEGIN CERTIFICATE-----\n");
	assert_string_equal(t.token_file, tok);
	assert_non_null(strstr(t.cert_file, "/certs/agent.crt"));
	assert_string_equal(t.source, "kubeconfig");
	ig_k8s_target_free(&t);
	/* exec plugins are not run: said so */
	write_file(kcfg, "current-context: c\nclusters:\n- name: k\n  cluster:\n    server: "
			 "https://x:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n    user: "
			 "u\nusers:\n- name: u\n  user:\n    exec:\n      command: aws\n");
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "exec"));
	/* a context that is not there */
	write_file(kcfg, "current-context: nope\ncontexts: []\n");
	ig_err_init(&err);
	assert_int_equal(ig_k8s_target_resolve(&kc, &t, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "current-context"));

	snprintf(text, sizeof(text), "rm -rf '%s'", dir);
	assert_int_equal(system(text), 0);
}

/* ------------------------------------------------------------ the stand-in */

struct standin {
	pid_t pid;
	FILE *to, *from;
	int port;
	char url[64];
	char reply[4096];
};

static int gen_pki(void **state)
{
	char cmd[PATH_MAX * 4];

	(void)state;
	snprintf(pki, sizeof(pki), "/tmp/ig_k8spki_XXXXXX");
	if (!mkdtemp(pki))
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout ca.key -out ca.crt -days 2 -subj /CN=ingrain-test-ca && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout srv.key -out srv.csr -subj /CN=127.0.0.1 "
		 "-addext subjectAltName=IP:127.0.0.1,DNS:localhost && "
		 "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		 "-out srv.crt -days 2 -copy_extensions copy && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout other.key -out other-ca.crt -days 2 -subj /CN=someone-else",
		 pki);
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), " >/dev/null 2>&1");
	return system(cmd) == 0 ? 0 : -1;
}

static int rm_pki(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	return system(cmd) == 0 ? 0 : -1;
}

static void pki_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", pki, name);
}

static void standin_start(struct standin *s, const char *token)
{
	int to[2], from[2];
	char cert[PATH_MAX], key[PATH_MAX], line[256];

	memset(s, 0, sizeof(*s));
	pki_path(cert, sizeof(cert), "srv.crt");
	pki_path(key, sizeof(key), "srv.key");
	assert_int_equal(pipe(to), 0);
	assert_int_equal(pipe(from), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		close(to[1]);
		close(from[0]);
		execlp("python3", "python3", IG_SOURCE_DIR "/tests/k8s-api-standin/server.py",
		       "--cert", cert, "--key", key, "--token", token, "--quiet", (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	s->to = fdopen(to[1], "w");
	s->from = fdopen(from[0], "r");
	assert_non_null(fgets(line, sizeof(line), s->from));
	assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
	snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%d", s->port);
}

static const char *standin_cmd(struct standin *s, const char *json)
{
	fprintf(s->to, "%s\n", json);
	fflush(s->to);
	assert_non_null(fgets(s->reply, sizeof(s->reply), s->from));
	s->reply[strcspn(s->reply, "\n")] = '\0';
	if (strncmp(s->reply, "ERR", 3) == 0)
		fail_msg("stand-in refused %s: %s", json, s->reply);
	return s->reply;
}

static void standin_add(struct standin *s, const char *op, const char *pod)
{
	char *cmd = malloc(strlen(pod) + 64);

	sprintf(cmd, "{\"op\":\"%s\",\"pod\":%s}", op, pod);
	standin_cmd(s, cmd);
	free(cmd);
}

static long standin_stat(struct standin *s, const char *key)
{
	struct json_object *o = json_tokener_parse(standin_cmd(s, "{\"op\":\"stats\"}")), *v;
	long n = -1;

	if (o && json_object_object_get_ex(o, key, &v))
		n = json_object_get_int(v);
	json_object_put(o);
	return n;
}

static void standin_stop(struct standin *s)
{
	if (!s->pid)
		return;
	fprintf(s->to, "{\"op\":\"quit\"}\n");
	fflush(s->to);
	if (!fgets(s->reply, sizeof(s->reply), s->from))
		s->reply[0] = '\0';
	fclose(s->to);
	fclose(s->from);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

/* ------------------------------------------------------ client + stand-in */

struct model {
	pthread_mutex_t mu;
	int replaces, upserts, deletes;
	int n;
	char uids[32][64];
	char names[32][64];
	char owner[64];
};

static void on_ev(void *arg, struct ig_k8s_ev *ev)
{
	struct model *m = arg;

	pthread_mutex_lock(&m->mu);
	if (ev->type == IG_K8S_REPLACE) {
		m->replaces++;
		m->n = 0;
	}
	for (size_t i = 0; i < ev->npods; i++) {
		struct ig_pod *p = ev->pods[i];
		int at = -1;

		for (int k = 0; k < m->n; k++)
			if (strcmp(m->uids[k], p->uid) == 0)
				at = k;
		if (ev->type == IG_K8S_DELETE) {
			m->deletes++;
			if (at >= 0) {
				memmove(&m->uids[at], &m->uids[at + 1],
					(size_t)(m->n - at - 1) * 64);
				memmove(&m->names[at], &m->names[at + 1],
					(size_t)(m->n - at - 1) * 64);
				m->n--;
			}
			continue;
		}
		if (ev->type == IG_K8S_UPSERT)
			m->upserts++;
		if (at < 0 && m->n < 32)
			at = m->n++;
		if (at >= 0) {
			snprintf(m->uids[at], 64, "%s", p->uid);
			snprintf(m->names[at], 64, "%s", p->name);
		}
		if (p->owner_kind)
			snprintf(m->owner, sizeof(m->owner), "%s/%s", p->owner_kind, p->owner_name);
	}
	pthread_mutex_unlock(&m->mu);
	ig_k8s_ev_free(ev);
}

static bool model_has(struct model *m, const char *uid)
{
	bool found = false;

	pthread_mutex_lock(&m->mu);
	for (int k = 0; k < m->n; k++)
		found |= strcmp(m->uids[k], uid) == 0;
	pthread_mutex_unlock(&m->mu);
	return found;
}

#define WAIT_UNTIL(cond, ms)                                                    \
	do {                                                                    \
		uint64_t _end = ig_mono_ns() + (uint64_t)(ms)*IG_NSEC_PER_MSEC; \
		while (!(cond)) {                                               \
			if (ig_mono_ns() > _end)                                \
				fail_msg("timed out waiting for: %s", #cond);   \
			usleep(20000);                                          \
		}                                                               \
	} while (0)

static struct ig_k8s_stats kstats(struct ig_k8s_client *c)
{
	struct ig_k8s_stats st;

	ig_k8s_client_stats(c, &st);
	return st;
}

struct fixture {
	struct standin s;
	struct model m;
	struct ig_k8s_client *c;
	char tok[PATH_MAX], ca[PATH_MAX];
};

static void fixture_start(struct fixture *f, const char *server_token, const char *file_token,
			  const char *ca_name)
{
	struct ig_kube_conf kc;
	struct ig_err err;

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->m.mu, NULL);
	standin_start(&f->s, server_token);
	pki_path(f->tok, sizeof(f->tok), "token");
	write_file(f->tok, file_token);
	pki_path(f->ca, sizeof(f->ca), ca_name);
	kc = kconf(f->s.url, f->tok, f->ca);
	ig_err_init(&err);
	if (ig_k8s_client_new(&f->c, &kc, "node-a", on_ev, &f->m, &err))
		fail_msg("client: %s", ig_err_str(&err));
}

static void fixture_stop(struct fixture *f)
{
	ig_k8s_client_free(f->c);
	standin_stop(&f->s);
	pthread_mutex_destroy(&f->m.mu);
}

static void test_client_lists_and_watches_only_this_nodes_pods(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char pod[4096];

	(void)state;
	pod_json(pod, sizeof(pod), "web-7d4b9c8f6-x2x9q", UID1, "node-a", "ReplicaSet",
		 "web-7d4b9c8f6", "7d4b9c8f6", "containerd://" C1);
	memset(&f->s, 0, sizeof(f->s));
	/* the stand-in must hold pods before the client starts: start, add, then client */
	fixture_start(f, "T1", "T1\n", "ca.crt");
	standin_add(&f->s, "add", pod);
	pod_json(pod, sizeof(pod), "elsewhere", UID3, "node-b", NULL, NULL, NULL,
		 "containerd://" C3);
	standin_add(&f->s, "add", pod);
	WAIT_UNTIL(model_has(&f->m, UID1), 10000);
	WAIT_UNTIL(kstats(f->c).state == IG_API_CONNECTED, 5000);
	assert_false(model_has(&f->m, UID3)); /* node-b's pod never reaches node-a */
	assert_string_equal(f->m.owner, "Deployment/web");

	/* added mid-run */
	pod_json(pod, sizeof(pod), "db-0", UID2, "node-a", "StatefulSet", "db", NULL,
		 "cri-o://" C2);
	standin_add(&f->s, "add", pod);
	WAIT_UNTIL(model_has(&f->m, UID2), 5000);
	/* modified, bookmarked, deleted mid-run */
	standin_add(&f->s, "modify", pod);
	standin_cmd(&f->s, "{\"op\":\"bookmark\"}");
	standin_cmd(&f->s, "{\"op\":\"delete\",\"uid\":\"" UID1 "\"}");
	WAIT_UNTIL(!model_has(&f->m, UID1), 5000);
	assert_true(model_has(&f->m, UID2));
	assert_true(f->m.upserts >= 2);
	assert_int_equal(f->m.deletes, 1);
	assert_int_equal(kstats(f->c).relists_410, 0);
	assert_int_equal(kstats(f->c).last_http, 200);
	assert_true(standin_stat(&f->s, "unauthorized") == 0);
	fixture_stop(f);
	free(f);
}

static void test_client_relists_after_410_gone(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char pod[4096];

	(void)state;
	fixture_start(f, "T1", "T1", "ca.crt");
	WAIT_UNTIL(kstats(f->c).lists == 1 && kstats(f->c).state == IG_API_CONNECTED, 10000);
	/* as an ERROR event in the open watch */
	standin_cmd(&f->s, "{\"op\":\"gone\"}");
	WAIT_UNTIL(kstats(f->c).relists_410 >= 1 && kstats(f->c).lists >= 2, 10000);
	pod_json(pod, sizeof(pod), "after-gone", UID1, "node-a", NULL, NULL, NULL,
		 "containerd://" C1);
	standin_add(&f->s, "add", pod);
	WAIT_UNTIL(model_has(&f->m, UID1), 5000);
	/* as an HTTP 410 to a watch from an old version: cut the watch first */
	standin_cmd(&f->s, "{\"op\":\"gone\",\"http\":true}");
	WAIT_UNTIL(kstats(f->c).relists_410 >= 2 && kstats(f->c).lists >= 3, 10000);
	assert_true(model_has(&f->m, UID1)); /* the relist still has it */
	assert_true(f->m.replaces >= 3);
	assert_true(standin_stat(&f->s, "gone") >= 0);
	fixture_stop(f);
	free(f);
}

static void test_client_reconnects_after_a_watch_cut_mid_object(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char pod[4096];
	uint64_t restarts;

	(void)state;
	fixture_start(f, "T1", "T1", "ca.crt");
	WAIT_UNTIL(kstats(f->c).state == IG_API_CONNECTED, 10000);
	WAIT_UNTIL(standin_stat(&f->s, "open_watches") >= 1, 10000); /* the watch is open */
	restarts = kstats(f->c).watch_restarts;
	standin_cmd(&f->s, "{\"op\":\"drop\"}");
	WAIT_UNTIL(kstats(f->c).watch_restarts > restarts, 10000);
	assert_true(standin_stat(&f->s, "dropped") >= 1);
	/* the half object was not delivered; the next real one is */
	assert_false(model_has(&f->m, "half"));
	pod_json(pod, sizeof(pod), "after-drop", UID2, "node-a", NULL, NULL, NULL,
		 "containerd://" C2);
	standin_add(&f->s, "add", pod);
	WAIT_UNTIL(model_has(&f->m, UID2), 10000);
	WAIT_UNTIL(kstats(f->c).state == IG_API_CONNECTED, 5000);
	assert_int_equal(kstats(f->c).relists_410, 0);
	fixture_stop(f);
	free(f);
}

static void test_client_rereads_a_rotated_token(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char pod[4096];

	(void)state;
	/* the token file does not match yet: 401, unreachable, said so */
	fixture_start(f, "T1", "stale-token\n", "ca.crt");
	WAIT_UNTIL(kstats(f->c).last_http == 401 && kstats(f->c).state == IG_API_UNREACHABLE,
		   10000);
	assert_true(kstats(f->c).errors >= 1);
	assert_int_equal(kstats(f->c).lists, 0);
	/* the kubelet writes the current token: picked up without a restart */
	write_file(f->tok, "T1\n");
	WAIT_UNTIL(kstats(f->c).lists >= 1, 10000);
	WAIT_UNTIL(kstats(f->c).state == IG_API_CONNECTED, 5000);
	/* rotation: new token in the file, the server only accepts it, the
	 * connection is cut; the client reconnects with the new one */
	write_file(f->tok, "T2\n");
	standin_cmd(&f->s, "{\"op\":\"token\",\"token\":\"T2\"}");
	standin_cmd(&f->s, "{\"op\":\"drop\"}");
	pod_json(pod, sizeof(pod), "after-rotation", UID1, "node-a", NULL, NULL, NULL,
		 "containerd://" C1);
	standin_add(&f->s, "add", pod);
	WAIT_UNTIL(model_has(&f->m, UID1), 10000);
	fixture_stop(f);
	free(f);
}

static void test_client_refuses_a_server_its_ca_did_not_sign(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	(void)state;
	fixture_start(f, "T1", "T1", "other-ca.crt");
	WAIT_UNTIL(kstats(f->c).errors >= 2, 10000);
	assert_int_equal(kstats(f->c).state, IG_API_UNREACHABLE);
	assert_int_equal(kstats(f->c).lists, 0);
	assert_int_equal(kstats(f->c).last_http, 0); /* no HTTP at all: TLS failed */
	assert_int_equal(standin_stat(&f->s, "lists"), 0);
	fixture_stop(f);
	free(f);
}

static void test_client_backs_off_and_recovers_from_server_errors(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct standin *s;
	uint64_t t0;

	(void)state;
	memset(f, 0, sizeof(*f));
	s = &f->s;
	pthread_mutex_init(&f->m.mu, NULL);
	standin_start(s, "T1");
	standin_cmd(s, "{\"op\":\"fail\",\"status\":503,\"count\":3}");
	{
		struct ig_kube_conf kc;
		struct ig_err err;

		pki_path(f->tok, sizeof(f->tok), "token");
		write_file(f->tok, "T1");
		pki_path(f->ca, sizeof(f->ca), "ca.crt");
		kc = kconf(s->url, f->tok, f->ca);
		ig_err_init(&err);
		t0 = ig_mono_ns();
		assert_int_equal(ig_k8s_client_new(&f->c, &kc, "node-a", on_ev, &f->m, &err), 0);
	}
	WAIT_UNTIL(kstats(f->c).lists == 1, 15000);
	/* three failures, backing off 250ms, 500ms, 1s (capped at 1s), +-20% */
	assert_true(ig_mono_ns() - t0 > 1200 * IG_NSEC_PER_MSEC);
	assert_int_equal(kstats(f->c).errors, 3);
	assert_int_equal(standin_stat(s, "failed"), 3);
	fixture_stop(f);
	free(f);
}

static void test_client_needs_a_node_name(void **state)
{
	struct ig_kube_conf kc = kconf("https://127.0.0.1:1", "/etc/hostname", "/etc/hostname");
	struct ig_k8s_client *c = (void *)1;
	struct ig_err err;

	(void)state;
	ig_err_init(&err);
	assert_int_equal(ig_k8s_client_new(&c, &kc, "", on_ev, NULL, &err), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(ig_err_str(&err), "NODE_NAME"));
	assert_string_equal(ig_api_state_name(IG_API_RELISTING), "relisting");
}

/* -------------------------------- real cgroups + stand-in: pods on events */

struct cg {
	char root[PATH_MAX];
	char made[32][PATH_MAX];
	int nmade;
	pid_t kids[8];
	int nkids;
};

static struct cg g_cg;
static struct standin *g_standin;

static void cg_mkdir(struct cg *c, const char *rel)
{
	char path[PATH_MAX], *p;

	if (snprintf(path, sizeof(path), "%s%s", c->root, rel) >= (int)sizeof(path))
		fail_msg("path too long");
	for (p = path + strlen(c->root) + 1;; p++) {
		if (*p == '/' || !*p) {
			char ch = *p;

			*p = '\0';
			if (mkdir(path, 0755) == 0)
				snprintf(c->made[c->nmade++], PATH_MAX, "%s", path);
			else if (errno != EEXIST)
				fail_msg("mkdir %s: %s", path, strerror(errno));
			*p = ch;
			if (!ch)
				break;
		}
	}
}

static uint64_t cg_child_in(struct cg *c, const char *rel)
{
	char path[PATH_MAX * 2], line[32];
	struct stat st;
	pid_t pid = fork();
	int fd;

	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	c->kids[c->nkids++] = pid;
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", c->root, rel);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	assert_true(write(fd, line, strlen(line)) > 0);
	close(fd);
	snprintf(path, sizeof(path), "%s%s", c->root, rel);
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static int cg_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < g_cg.nkids; i++) {
		kill(g_cg.kids[i], SIGKILL);
		waitpid(g_cg.kids[i], NULL, 0);
	}
	g_cg.nkids = 0;
	for (int i = g_cg.nmade - 1; i >= 0; i--)
		rmdir(g_cg.made[i]);
	g_cg.nmade = 0;
	if (g_standin)
		standin_stop(g_standin);
	return 0;
}

/* Ticks the identity until cond holds (cond may use r after a fill). */
#define TICK_UNTIL(id, r, cond, ms)                                             \
	do {                                                                    \
		uint64_t _end = ig_mono_ns() + (uint64_t)(ms)*IG_NSEC_PER_MSEC; \
		for (;;) {                                                      \
			ig_ident_tick((id), ig_mono_ns());                      \
			ig_ident_fill((id), (r));                               \
			if (cond)                                               \
				break;                                          \
			if (ig_mono_ns() > _end)                                \
				fail_msg("timed out waiting for: %s", #cond);   \
			usleep(20000);                                          \
		}                                                               \
	} while (0)

static bool streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void test_events_carry_pod_metadata_and_follow_pods_added_and_deleted(void **state)
{
	static struct standin s;
	struct cg *c = &g_cg;
	struct ig_kube_conf kc;
	struct ig_ident *id;
	struct ig_ident_stats st;
	struct ig_record *r = calloc(1, sizeof(*r));
	struct ig_err err;
	char pod[4096], tok[PATH_MAX], ca[PATH_MAX];
	/* below a prefix, as on a kind/minikube node, so that this test and
	 * test_cgroup_cache never share a directory when run in parallel */
	const char *dir1 = "/ig-test-k8s/kubepods.slice/kubepods-burstable.slice/"
			   "kubepods-burstable-pod" UID1_ ".slice/cri-containerd-" C1 ".scope";
	const char *dir2 = "/ig-test-k8s/kubepods.slice/kubepods-besteffort.slice/"
			   "kubepods-besteffort-pod" UID2_ ".slice/crio-" C2 ".scope";
	const char *dir3 = "/ig-rootless.slice/cri-containerd-" C3 ".scope";
	uint64_t id1, id2, id3;
	bool cg2;

	(void)state;
	if (geteuid() != 0 || ig_cgroup_root_detect("auto", c->root, sizeof(c->root), &cg2) ||
	    !cg2) {
		free(r);
		if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
			fail_msg("needs root and cgroup v2 (CI=true)");
		fprintf(stderr, "SKIPPED: needs root and a cgroup v2 hierarchy\n");
		skip();
	}
	standin_start(&s, "T1");
	g_standin = &s;
	pod_json(pod, sizeof(pod), "web-7d4b9c8f6-x2x9q", UID1, "node-a", "ReplicaSet",
		 "web-7d4b9c8f6", "7d4b9c8f6", "containerd://" C1);
	standin_add(&s, "add", pod);
	cg_mkdir(c, dir1);
	id1 = cg_child_in(c, dir1);

	pki_path(tok, sizeof(tok), "token");
	write_file(tok, "T1\n");
	pki_path(ca, sizeof(ca), "ca.crt");
	kc = kconf(s.url, tok, ca);
	ig_err_init(&err);
	if (ig_ident_new(&id, &kc, "node-a", "auto", &err))
		fail_msg("ig_ident_new: %s", ig_err_str(&err));

	/* the pod's metadata lands on its container's events */
	r->cgroup_id = id1;
	TICK_UNTIL(id, r, streq(r->id.pod_name, "web-7d4b9c8f6-x2x9q"), 10000);
	assert_string_equal(r->id.scope, "pod");
	assert_string_equal(r->id.namespace_, "shop");
	assert_string_equal(r->id.pod_uid, UID1);
	assert_string_equal(r->id.container_id, C1);
	assert_string_equal(r->id.container_name, "app");
	assert_string_equal(r->id.image, "docker.io/library/nginx:1.25");
	assert_string_equal(r->id.runtime, "containerd");
	assert_string_equal(r->id.owner_kind, "Deployment");
	assert_string_equal(r->id.owner_name, "web");
	assert_string_equal(r->id.cgroup_path, dir1);
	assert_int_equal(r->id.nlabels, 2);
	assert_string_equal(label(r->id.labels, r->id.nlabels, "app"), "web-7d4b9c8f6-x2x9q");
	assert_string_equal(label(r->id.labels, r->id.nlabels, "team"), "payments");
	ig_ident_stats(id, &st);
	assert_int_equal(st.api_state, IG_API_CONNECTED);
	assert_int_equal(st.pods_known, 1);

	/* a pod added mid-run, its container started after */
	pod_json(pod, sizeof(pod), "db-0", UID2, "node-a", "StatefulSet", "db", NULL,
		 "cri-o://" C2);
	standin_add(&s, "add", pod);
	cg_mkdir(c, dir2);
	id2 = cg_child_in(c, dir2);
	r->cgroup_id = id2;
	TICK_UNTIL(id, r, streq(r->id.pod_name, "db-0"), 10000);
	assert_string_equal(r->id.owner_kind, "StatefulSet");
	assert_string_equal(r->id.runtime, "cri-o");
	assert_string_equal(r->id.container_name, "app");

	/* no pod slice in the path (rootless kubelet): the container id finds
	 * the pod (C3 is web's init container) */
	cg_mkdir(c, dir3);
	id3 = cg_child_in(c, dir3);
	r->cgroup_id = id3;
	TICK_UNTIL(id, r, streq(r->id.pod_name, "web-7d4b9c8f6-x2x9q"), 10000);
	assert_string_equal(r->id.scope, "pod");
	assert_string_equal(r->id.container_name, "init");
	assert_string_equal(r->id.image, "busybox:1.36");

	/* the watch is cut mid-object, then the history expires: still current */
	standin_cmd(&s, "{\"op\":\"drop\"}");
	standin_cmd(&s, "{\"op\":\"gone\"}");
	TICK_UNTIL(id, r, (ig_ident_stats(id, &st), st.relists_410 >= 1), 10000);

	/* a pod deleted mid-run: its container's events keep what the path
	 * says (pod uid, container id), the API's fields go */
	standin_cmd(&s, "{\"op\":\"delete\",\"uid\":\"" UID1 "\"}");
	r->cgroup_id = id1;
	TICK_UNTIL(id, r, r->id.pod_name == NULL, 10000);
	assert_string_equal(r->id.pod_uid, UID1);
	assert_string_equal(r->id.container_id, C1);
	assert_null(r->id.owner_kind);
	assert_int_equal(r->id.nlabels, 0);
	ig_ident_stats(id, &st);
	assert_int_equal(st.pods_known, 1);

	/* the API goes away: events keep flowing with what is known */
	standin_stop(&s);
	g_standin = NULL;
	r->cgroup_id = id2;
	TICK_UNTIL(id, r, (ig_ident_stats(id, &st), st.api_state == IG_API_UNREACHABLE), 15000);
	ig_ident_fill(id, r);
	assert_string_equal(r->id.pod_name, "db-0");
	assert_string_equal(r->id.container_id, C2);
	assert_true(st.watch_restarts >= 2);

	ig_ident_free(id);
	free(r);
	cg_teardown(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod_keeps_allowlisted_labels_and_resolves_the_deployment),
		cmocka_unit_test(test_pod_owner_and_runtime_variants),
		cmocka_unit_test(
			test_replicaset_names_resolve_to_deployments_only_when_the_hash_matches),
		cmocka_unit_test(test_pod_without_identity_is_rejected),
		cmocka_unit_test(test_watch_events_split_at_every_byte_are_reassembled),
		cmocka_unit_test(test_watch_parser_reports_partial_and_malformed_streams),
		cmocka_unit_test(test_target_comes_from_config_in_cluster_env_or_kubeconfig),
		cmocka_unit_test(test_client_lists_and_watches_only_this_nodes_pods),
		cmocka_unit_test(test_client_relists_after_410_gone),
		cmocka_unit_test(test_client_reconnects_after_a_watch_cut_mid_object),
		cmocka_unit_test(test_client_rereads_a_rotated_token),
		cmocka_unit_test(test_client_refuses_a_server_its_ca_did_not_sign),
		cmocka_unit_test(test_client_backs_off_and_recovers_from_server_errors),
		cmocka_unit_test(test_client_needs_a_node_name),
		cmocka_unit_test_teardown(
			test_events_carry_pod_metadata_and_follow_pods_added_and_deleted,
			cg_teardown),
	};

	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	signal(SIGPIPE, SIG_IGN);
	ig_time_init();
	return cmocka_run_group_tests(tests, gen_pki, rm_pki);
}
