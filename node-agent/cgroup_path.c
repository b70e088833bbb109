/* cgroup_path: cgroup path <-> id, and path -> runtime / container / pod.
 * See cgroup_path.h for the layouts and the rules.
 *
 * The parser walks the path one component at a time, keeping what it has
 * learnt so far. A kubepods root (kubepods, kubepods.slice,
 * kubelet-kubepods.slice, ...) starts a fresh Kubernetes context, so prefixes
 * such as a kind node's own docker scope are forgotten; a pod component sets
 * the pod; the first container component below a pod is the pod's container
 * (a container nested inside it, docker-in-docker, keeps the pod's). Outside
 * pods the innermost container wins (RancherOS' docker in system-docker).
 * Components after a container (podman's "container" leaf, kube-proxy's
 * own sub-cgroup, a container's init.scope) do not change the answer.
 */
#include "cgroup_path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#define IG_FILEID_KERNFS 0xfe

struct parse_state {
	struct ig_cgroup_info *out;
	bool in_kube; /* below a kubepods root */
	bool after_qos; /* the previous component was a cgroupfs QoS dir */
	bool have_pod;
	bool have_container; /* a container (or monitor) component matched */
	bool bad_pod;
	bool bad_container;
	bool unknown_hex; /* an unrecognised component carries a 64-hex id */
	bool not_host; /* a component that no host-only layout explains */
	bool units_only; /* every component so far is a systemd unit name */
	unsigned depth; /* index of the component being parsed */
	const char *first; /* the first component ("" before it) */
	size_t first_len;
	const char *prev;
	size_t prev_len;
};

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool ig_container_id_valid(const char *s, size_t len)
{
	if (!s || len != 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_hex_lower(s[i]))
			return false;
	return true;
}

static bool is_hex_any(char c)
{
	return is_hex_lower(c) || (c >= 'A' && c <= 'F');
}

bool ig_pod_uid_valid(const char *s, size_t len, bool underscores_ok)
{
	static const size_t dash_at[] = { 8, 13, 18, 23 };

	if (!s)
		return false;
	if (len == 32) {
		for (size_t i = 0; i < len; i++)
			if (!is_hex_lower(s[i]))
				return false;
		return true;
	}
	if (len != 36)
		return false;
	for (size_t i = 0, d = 0; i < len; i++) {
		if (d < 4 && i == dash_at[d]) {
			if (s[i] != '-' && !(underscores_ok && s[i] == '_'))
				return false;
			d++;
			continue;
		}
		if (!is_hex_any(s[i]))
			return false;
	}
	return true;
}

static bool comp_eq(const char *c, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(c, lit, len) == 0;
}

static bool comp_prefix(const char *c, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len >= n && memcmp(c, lit, n) == 0;
}

static bool comp_suffix(const char *c, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len >= n && memcmp(c + len - n, lit, n) == 0;
}

static const char *memmem_lit(const char *c, size_t len, const char *lit)
{
	return memmem(c, len, lit, strlen(lit));
}

static bool contains_hex64(const char *c, size_t len)
{
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		run = is_hex_lower(c[i]) ? run + 1 : 0;
		if (run >= 64)
			return true;
	}
	return false;
}

/* 8-4-4-4-12 lowercase hex: a container id some runtimes use instead of 64 hex
 * (Kata's and gVisor's sandboxes, the "uuid" layouts). */
static bool is_uuid_lower(const char *c, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c[i] != '-')
				return false;
		} else if (!is_hex_lower(c[i])) {
			return false;
		}
	}
	return true;
}

/* Cloud Foundry garden container handles: lowercase hex groups joined by
 * dashes ("6f265890-5165-7fab-6b52-18d1"), 8 to 64 characters. */
static bool is_garden_handle(const char *c, size_t len)
{
	if (len < 8 || len > 64 || c[0] == '-' || c[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_hex_lower(c[i]) && c[i] != '-')
			return false;
	return true;
}

/* ECS on Fargate names containers "<32 hex>-<10 digits>". */
static bool is_fargate_id(const char *c, size_t len)
{
	if (len != 43 || c[32] != '-')
		return false;
	for (size_t i = 0; i < 32; i++)
		if (!is_hex_lower(c[i]))
			return false;
	for (size_t i = 33; i < len; i++)
		if (c[i] < '0' || c[i] > '9')
			return false;
	return true;
}

/* A systemd unit name: what the systemd driver and systemd itself create. */
static bool is_unit_name(const char *c, size_t len)
{
	static const char *const suffixes[] = { ".slice", ".service", ".scope", ".socket",
						".mount", ".swap",    ".target" };

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t n = strlen(suffixes[i]);

		if (len > n && memcmp(c + len - n, suffixes[i], n) == 0)
			return true;
	}
	return false;
}

static void reset_kube(struct parse_state *st)
{
	struct ig_cgroup_info *o = st->out;

	st->in_kube = true;
	st->have_pod = st->have_container = false;
	st->bad_pod = st->bad_container = st->unknown_hex = false;
	o->pod_uid[0] = o->container_id[0] = '\0';
	o->runtime = NULL;
	o->conmon = false;
	o->qos = IG_QOS_NONE;
}

static enum ig_cg_qos qos_from(const char *c, size_t len)
{
	if (comp_eq(c, len, "burstable"))
		return IG_QOS_BURSTABLE;
	if (comp_eq(c, len, "besteffort"))
		return IG_QOS_BESTEFFORT;
	if (comp_eq(c, len, "guaranteed"))
		return IG_QOS_GUARANTEED;
	return IG_QOS_NONE;
}

static void set_pod(struct parse_state *st, const char *uid, size_t len, bool systemd)
{
	struct ig_cgroup_info *o = st->out;

	st->have_container = false;
	st->bad_container = false;
	o->container_id[0] = '\0';
	o->runtime = NULL;
	o->conmon = false;
	if (!ig_pod_uid_valid(uid, len, systemd)) {
		st->bad_pod = true;
		st->have_pod = false;
		o->pod_uid[0] = '\0';
		return;
	}
	for (size_t i = 0; i < len; i++)
		o->pod_uid[i] = uid[i] == '_' ? '-' : uid[i];
	o->pod_uid[len] = '\0';
	st->have_pod = true;
	st->bad_pod = false;
	if (o->qos == IG_QOS_NONE)
		o->qos = IG_QOS_GUARANTEED;
}

/* A container component matched: id of len bytes, valid when id_ok. */
static void set_container_id(struct parse_state *st, const char *runtime, const char *id,
			     size_t len, bool conmon, bool id_ok)
{
	struct ig_cgroup_info *o = st->out;

	/* Inside a pod the first container is the pod's own. */
	if (st->have_pod && st->have_container)
		return;
	if (!id_ok || len >= IG_CONTAINER_ID_MAX) {
		st->bad_container = true;
		return;
	}
	st->have_container = true;
	st->bad_container = false;
	o->runtime = runtime;
	o->conmon = conmon;
	if (conmon) {
		o->container_id[0] = '\0';
		return;
	}
	memcpy(o->container_id, id, len);
	o->container_id[len] = '\0';
}

/* A container component of an OCI runtime: the id must be 64 lowercase hex. */
static void set_container(struct parse_state *st, const char *runtime, const char *id, size_t len,
			  bool conmon)
{
	set_container_id(st, runtime, id, len, conmon, ig_container_id_valid(id, len));
}

/* "kubepods...slice" components of the systemd driver. True when handled. */
static bool parse_kube_slice(struct parse_state *st, const char *c, size_t len)
{
	const char *name = c, *k, *rest, *end;
	size_t nlen;

	if (!comp_suffix(c, len, ".slice"))
		return false;
	nlen = len - strlen(".slice");
	k = memmem_lit(name, nlen, "kubepods");
	if (!k || (k != name && k[-1] != '-'))
		return false;
	rest = k + strlen("kubepods");
	end = name + nlen;
	if (rest == end) { /* kubepods.slice, kubelet-kubepods.slice */
		reset_kube(st);
		return true;
	}
	if (*rest != '-')
		return false;
	rest++;
	if (!st->in_kube)
		reset_kube(st);
	for (enum ig_cg_qos q = IG_QOS_GUARANTEED; q <= IG_QOS_BESTEFFORT; q++) {
		const char *qn = ig_cg_qos_name(q);
		size_t ql = strlen(qn);

		if ((size_t)(end - rest) >= ql && memcmp(rest, qn, ql) == 0 &&
		    (rest + ql == end || rest[ql] == '-')) {
			st->out->qos = q;
			rest += ql;
			if (rest == end)
				return true; /* kubepods-burstable.slice */
			rest++;
			break;
		}
	}
	if ((size_t)(end - rest) >= 3 && memcmp(rest, "pod", 3) == 0) {
		set_pod(st, rest + 3, (size_t)(end - rest - 3), true);
		return true;
	}
	/* A kubepods slice of a shape we do not know. */
	st->bad_pod = true;
	return true;
}

struct rt_prefix {
	const char *prefix;
	const char *runtime;
	bool conmon;
};

/* Longer prefixes first: crio-conmon- before crio-, libpod-conmon- before libpod-. */
static const struct rt_prefix rt_prefixes[] = {
	{ "cri-containerd-", "containerd", false },
	{ "crio-conmon-", "cri-o", true },
	{ "crio-", "cri-o", false },
	{ "docker-", "docker", false },
	{ "libpod-conmon-", "podman", true },
	{ "libpod-payload-", "podman", false },
	{ "libpod-", "podman", false },
	{ "nerdctl-", "containerd", false },
};

/* "<prefix><id>[.scope]". True when handled. */
static bool parse_runtime_prefixed(struct parse_state *st, const char *c, size_t len)
{
	for (size_t i = 0; i < sizeof(rt_prefixes) / sizeof(rt_prefixes[0]); i++) {
		const struct rt_prefix *p = &rt_prefixes[i];
		const char *id;
		size_t idlen;

		if (!comp_prefix(c, len, p->prefix))
			continue;
		id = c + strlen(p->prefix);
		idlen = len - strlen(p->prefix);
		if (comp_suffix(id, idlen, ".scope"))
			idlen -= strlen(".scope");
		else if (memchr(id, '.', idlen))
			return false; /* docker-cleanup.service, crio-wipe.service: units */
		set_container(st, p->runtime, id, idlen, p->conmon);
		return true;
	}
	return false;
}

/* containerd/CRI-O without cgroup expansion: "<slice>:<prefix>:<id>". */
static bool parse_colon_form(struct parse_state *st, const char *c, size_t len)
{
	const char *c1 = memchr(c, ':', len), *c2, *end = c + len;
	static const struct {
		const char *prefix;
		const char *runtime;
	} forms[] = { { "cri-containerd", "containerd" },
		      { "crio", "cri-o" },
		      { "docker", "docker" } };

	if (!c1)
		return false;
	c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (!c2)
		return false;
	if (!parse_kube_slice(st, c, (size_t)(c1 - c)) && contains_hex64(c, (size_t)(c1 - c)))
		st->unknown_hex = true;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (comp_eq(c1 + 1, (size_t)(c2 - c1 - 1), forms[i].prefix)) {
			set_container(st, forms[i].runtime, c2 + 1, (size_t)(end - c2 - 1), false);
			return true;
		}
	}
	st->bad_container = true;
	return true;
}

/* Is this component (not claimed by a container or pod layout) one that only
 * the host creates? Only such paths may be reported as the host: anything else
 * is "unknown" (docs/kubernetes.md: never guessed). Known host-only shapes:
 * systemd units below systemd units (system.slice/x.service, user.slice/...,
 * init.scope; machine.slice only for libvirt's machine-qemu VMs, since
 * systemd-nspawn containers live there too), Talos' /init, old systemd's
 * /user/<n>.user/<x>.session, and LXC's monitor cgroups. */
static bool host_only_component(struct parse_state *st, const char *c, size_t len)
{
	if (st->units_only && is_unit_name(c, len)) {
		if (comp_eq(st->prev, st->prev_len, "machine.slice") &&
		    !comp_prefix(c, len, "machine-qemu"))
			return false;
		return true;
	}
	if (st->depth == 0)
		return comp_eq(c, len, "init") || comp_eq(c, len, "user") ||
		       comp_eq(c, len, "lxc.monitor") || comp_prefix(c, len, "lxc.monitor.");
	if (comp_eq(st->first, st->first_len, "lxc.monitor"))
		return true;
	if (comp_eq(st->first, st->first_len, "user"))
		return (st->depth == 1 && comp_suffix(c, len, ".user")) ||
		       (st->depth == 2 && comp_suffix(c, len, ".session"));
	return false;
}

static void parse_component(struct parse_state *st, const char *c, size_t len)
{
	struct ig_cgroup_info *o = st->out;
	enum ig_cg_qos q;

	if (parse_colon_form(st, c, len))
		return;
	if (parse_kube_slice(st, c, len))
		return;
	/* cgroupfs driver: kubepods/<qos>/pod<uid>/<id> */
	if (comp_eq(c, len, "kubepods")) {
		reset_kube(st);
		return;
	}
	if (st->in_kube && !st->have_pod && !st->have_container) {
		q = qos_from(c, len);
		if (q != IG_QOS_NONE && comp_eq(st->prev, st->prev_len, "kubepods")) {
			o->qos = q;
			st->after_qos = true;
			return;
		}
		if (comp_prefix(c, len, "pod") &&
		    (comp_eq(st->prev, st->prev_len, "kubepods") || st->after_qos)) {
			set_pod(st, c + 3, len - 3, false);
			return;
		}
	}
	if (parse_runtime_prefixed(st, c, len))
		return;
	/* LXC: /lxc/<name> (v1), /lxc.payload.<name> (v2); monitors are host */
	if (comp_eq(st->prev, st->prev_len, "lxc") || comp_prefix(c, len, "lxc.payload.")) {
		const char *name = c;
		size_t nlen = len;

		if (comp_prefix(c, len, "lxc.payload.")) {
			name += strlen("lxc.payload.");
			nlen -= strlen("lxc.payload.");
		}
		if (!st->have_container && nlen > 0 && nlen < IG_CONTAINER_ID_MAX) {
			memcpy(o->container_id, name, nlen);
			o->container_id[nlen] = '\0';
			o->runtime = "lxc";
			st->have_container = true;
		}
		return;
	}
	/* Amazon ECS: /ecs/<task>/<64 hex> (EC2), /ecs/<task>/<32 hex>-<10 digits>
	 * and /ecs/<32 hex>-<10 digits> (Fargate). The task level is not a container. */
	if (comp_eq(st->first, st->first_len, "ecs") && st->depth >= 1 && !st->have_pod) {
		if (ig_container_id_valid(c, len) || (is_fargate_id(c, len) && st->depth <= 2)) {
			set_container_id(st, "ecs", c, len, false, true);
			return;
		}
		if (st->depth == 1 && !st->have_container)
			return; /* the task's own cgroup: neither host nor a container */
	}
	/* Cloud Foundry garden: [system.slice/garden.service/]garden/<handle> */
	if (comp_eq(st->prev, st->prev_len, "garden") && !st->have_pod) {
		set_container_id(st, "garden", c, len, false, is_garden_handle(c, len));
		return;
	}
	if (ig_container_id_valid(c, len)) {
		const char *rt = NULL;

		if (comp_eq(st->prev, st->prev_len, "docker"))
			rt = "docker";
		else if (comp_eq(st->prev, st->prev_len, "libpod_parent"))
			rt = "podman";
		set_container(st, rt, c, len, false);
		return;
	}
	/* A UUID-shaped container directly below a pod (sandboxed runtimes). */
	if (st->have_pod && !st->have_container && is_uuid_lower(c, len)) {
		set_container_id(st, NULL, c, len, false, true);
		return;
	}
	if (st->have_container)
		return; /* a container's own sub-cgroup */
	/* Only containers live directly under docker's cgroupfs parent. */
	if (comp_eq(st->prev, st->prev_len, "docker") && !st->have_pod) {
		st->bad_container = true;
		return;
	}
	/* Inside kubepods, before the pod: a pod we cannot read (a cut path). */
	if (st->in_kube && !st->have_pod &&
	    (memmem_lit(c, len, "kubepods") || comp_prefix(c, len, "pod"))) {
		st->bad_pod = true;
		return;
	}
	if (contains_hex64(c, len))
		st->unknown_hex = true;
	if (!host_only_component(st, c, len))
		st->not_host = true;
}

int ig_cgroup_path_parse(const char *path, struct ig_cgroup_info *out)
{
	struct parse_state st = { .out = out };
	const char *p;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!path || !*path)
		return -EINVAL;
	if (strncmp(path, "0::", 3) == 0)
		path += 3;
	if (path[0] != '/')
		return -EINVAL;
	st.prev = st.first = "";
	st.units_only = true;
	for (p = path; *p;) {
		const char *s, *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = p;
		e = strchr(s, '/');
		if (!e)
			e = s + strlen(s);
		/* trailing newline of a /proc/<pid>/cgroup line */
		if (e > s && e[-1] == '\n' && !*e)
			e--;
		if (e > s) {
			bool was_qos = st.after_qos;

			parse_component(&st, s, (size_t)(e - s));
			if (was_qos)
				st.after_qos = false;
			if (!is_unit_name(s, (size_t)(e - s)))
				st.units_only = false;
			if (st.depth == 0) {
				st.first = s;
				st.first_len = (size_t)(e - s);
			}
			st.depth++;
			st.prev = s;
			st.prev_len = (size_t)(e - s);
		}
		p = *e == '\n' ? e + 1 : e;
	}

	if (st.have_pod) {
		out->scope = IG_CG_POD;
		out->malformed = st.bad_container;
	} else if (st.bad_pod) {
		out->scope = IG_CG_UNKNOWN;
		out->malformed = true;
	} else if (st.have_container && !out->conmon) {
		out->scope = IG_CG_CONTAINER;
	} else if (st.bad_container || st.unknown_hex || st.not_host ||
		   (st.in_kube && !st.have_container)) {
		/* Unknown, never host: a runtime-shaped name that did not parse, or a
		 * path no host-only layout explains. */
		out->scope = IG_CG_UNKNOWN;
		out->malformed = st.bad_container;
	} else {
		/* the host; a runtime monitor outside a pod runs on the host */
		out->scope = IG_CG_HOST;
		out->runtime = NULL;
		out->qos = IG_QOS_NONE;
	}
	if (out->scope != IG_CG_POD)
		out->qos = IG_QOS_NONE;
	if (out->scope == IG_CG_UNKNOWN) {
		out->runtime = NULL;
		out->container_id[0] = '\0';
	}
	return 0;
}

const char *ig_cg_scope_name(enum ig_cg_scope s)
{
	switch (s) {
	case IG_CG_HOST:
		return "host";
	case IG_CG_CONTAINER:
		return "container";
	case IG_CG_POD:
		return "pod";
	default:
		return NULL;
	}
}

const char *ig_cg_qos_name(enum ig_cg_qos q)
{
	switch (q) {
	case IG_QOS_GUARANTEED:
		return "guaranteed";
	case IG_QOS_BURSTABLE:
		return "burstable";
	case IG_QOS_BESTEFFORT:
		return "besteffort";
	default:
		return NULL;
	}
}

static bool is_cgroup2(const char *path)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_SUPER_MAGIC;
}

int ig_cgroup_root_detect(const char *conf, char *out, size_t outlen, bool *cg2)
{
	static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct stat st;

	if (cg2)
		*cg2 = false;
	if (!conf || !*conf || strcmp(conf, "auto") == 0) {
		for (size_t i = 0; i < 2; i++) {
			if (is_cgroup2(candidates[i])) {
				if (snprintf(out, outlen, "%s", candidates[i]) >= (int)outlen)
					return -ENAMETOOLONG;
				if (cg2)
					*cg2 = true;
				return 0;
			}
		}
		return -ENOENT;
	}
	if (stat(conf, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (snprintf(out, outlen, "%s", conf) >= (int)outlen)
		return -ENAMETOOLONG;
	/* drop trailing slashes, keep "/" */
	for (size_t n = strlen(out); n > 1 && out[n - 1] == '/'; n--)
		out[n - 1] = '\0';
	if (cg2)
		*cg2 = is_cgroup2(out);
	return 0;
}

static ssize_t fd_link(int fd, char *buf, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, buf, len - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= len - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return n;
}

int ig_cgroup_path_by_id(int root_fd, uint64_t id, char *out, size_t outlen)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	char rootpath[PATH_MAX], path[PATH_MAX];
	ssize_t rn, n;
	int fd, ret;

	memset(&h, 0, sizeof(h));
	h.fh.handle_bytes = sizeof(uint64_t);
	h.fh.handle_type = IG_FILEID_KERNFS;
	memcpy(h.fh.f_handle, &id, sizeof(id));
	fd = open_by_handle_at(root_fd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		switch (errno) {
		case ESTALE:
		case ENOENT:
			return -ESTALE;
		case EPERM:
			return -EPERM;
		default:
			return -EOPNOTSUPP;
		}
	}
	rn = fd_link(root_fd, rootpath, sizeof(rootpath));
	n = fd_link(fd, path, sizeof(path));
	close(fd);
	if (rn < 0)
		return (int)rn;
	if (n < 0)
		return (int)n;
	if (n >= 10 && strcmp(path + n - 10, " (deleted)") == 0)
		return -ESTALE;
	if (strcmp(rootpath, "/") == 0)
		rn = 0;
	if (strncmp(path, rootpath, (size_t)rn) != 0 || (path[rn] != '/' && path[rn] != '\0'))
		return -EXDEV;
	ret = snprintf(out, outlen, "%s", path[rn] ? path + rn : "/");
	return ret >= (int)outlen ? -ENAMETOOLONG : 0;
}

static int walk_dir(int dfd, char *path, size_t plen, size_t cap, unsigned depth, unsigned max,
		    ig_cgroup_walk_cb cb, void *arg)
{
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (depth >= max)
		return 0;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nlen;
		int cfd;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		nlen = strlen(de->d_name);
		if (plen + 1 + nlen + 1 > cap)
			continue; /* too deep to name: skip */
		cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue; /* vanished, or not a directory */
		{
			size_t base = plen == 1 ? 0 : plen; /* root is "/" */
			uint64_t ino = de->d_ino;
			struct stat st;

			if (de->d_type == DT_UNKNOWN && fstat(cfd, &st) == 0)
				ino = st.st_ino;
			path[base] = '/';
			memcpy(path + base + 1, de->d_name, nlen + 1);
			ret = cb(arg, ino, path);
			if (!ret)
				ret = walk_dir(cfd, path, base + 1 + nlen, cap, depth + 1, max, cb,
					       arg);
			else
				close(cfd);
			path[plen] = '\0';
			if (plen == 1)
				path[1] = '\0';
		}
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

int ig_cgroup_walk(const char *root, unsigned max_depth, ig_cgroup_walk_cb cb, void *arg)
{
	char path[PATH_MAX] = "/";
	struct stat st;
	int fd, ret;

	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = cb(arg, st.st_ino, "/");
	if (ret) {
		close(fd);
		return ret;
	}
	return walk_dir(fd, path, 1, sizeof(path), 0, max_depth ? max_depth : 64, cb, arg);
}
