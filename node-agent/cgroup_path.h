/* cgroup_path: from a cgroup v2 path to "which container, which pod".
 *
 * The kernel gives every event a cgroup id (the cgroup directory's inode
 * number on the v2 hierarchy). The path of that directory is the only thing
 * on a node that names the container and the pod without asking a runtime:
 * kubelet and the runtimes encode both in directory names. This module
 *
 *   - parses a path into scope (host / container / pod), runtime, container
 *     id, pod uid and QoS class (ig_cgroup_path_parse),
 *   - finds the v2 hierarchy ("auto": /sys/fs/cgroup or, on hybrid hosts,
 *     /sys/fs/cgroup/unified) (ig_cgroup_root_detect),
 *   - turns an id back into a path without walking the tree, through a
 *     kernfs file handle (ig_cgroup_path_by_id), and
 *   - walks a hierarchy listing (id, path) of every directory
 *     (ig_cgroup_walk).
 *
 * Layouts understood (components may sit below any prefix, e.g. a kind or
 * minikube node's own container cgroup):
 *   systemd driver  kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/
 *                   {cri-containerd,crio,docker}-<64hex>.scope[/...]
 *                   (guaranteed pods: kubepods.slice/kubepods-pod<uid_>.slice/...;
 *                   kind: kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-...)
 *   cgroupfs driver kubepods/<qos>/pod<uid>/[crio-]<64hex>[/...]
 *   containerd's unexpanded systemd form  ...pod<uid_>.slice:cri-containerd:<64hex>
 *   outside Kubernetes  system.slice/docker-<id>.scope, docker/<id>,
 *                   machine.slice/libpod-<id>.scope[/container], libpod-<id>,
 *                   system.slice/nerdctl-<id>.scope, lxc/<name>, lxc.payload.<name>
 *   runtime monitors  crio-conmon-<id>.scope, libpod-conmon-<id>.scope: not a
 *                   container (conmon runs on the host); inside a pod they
 *                   get the pod, never a container id.
 *   other platforms  ecs/<task>/<64hex>, ecs/[<task>/]<32hex>-<10 digits> (Fargate),
 *                   [system.slice/garden.service/]garden/<handle> (Cloud Foundry),
 *                   a UUID-shaped container directly below a pod.
 * Only layouts known to be host-only are the host: "/", systemd units below
 * systemd units (init.scope, system.slice/x.service, user sessions; in
 * machine.slice only libvirt's machine-qemu VMs), Talos' /init, old systemd's
 * /user/<n>.user/<x>.session and LXC monitors. Any other path is "unknown",
 * and so is a component that looks like a runtime's but whose id does not
 * parse (truncated, not hex): never a guess.
 */
#ifndef IG_CGROUP_PATH_H
#define IG_CGROUP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG_CONTAINER_ID_MAX 129 /* 64 hex for every OCI runtime; LXC names up to 128 */
#define IG_POD_UID_MAX 64 /* 36-char UUID, or 32 hex for static pods */

enum ig_cg_scope {
	IG_CG_UNKNOWN = 0, /* could not tell: never reported as host */
	IG_CG_HOST,
	IG_CG_CONTAINER,
	IG_CG_POD,
};

enum ig_cg_qos { IG_QOS_NONE = 0, IG_QOS_GUARANTEED, IG_QOS_BURSTABLE, IG_QOS_BESTEFFORT };

struct ig_cgroup_info {
	enum ig_cg_scope scope;
	const char *runtime; /* static: "containerd", "cri-o", "docker", "podman", "lxc", "ecs",
			      * "garden"; NULL */
	char container_id[IG_CONTAINER_ID_MAX]; /* "" when none */
	char pod_uid[IG_POD_UID_MAX]; /* with dashes; "" when none */
	enum ig_cg_qos qos;
	bool conmon; /* a runtime monitor's cgroup (crio-conmon, libpod-conmon) */
	bool malformed; /* a runtime- or pod-shaped component did not parse */
};

/* Parses a cgroup path ("/kubepods.slice/...", relative to the v2 root; a
 * leading "0::" of /proc/<pid>/cgroup is accepted too). 0 on success (out
 * filled, scope may be IG_CG_UNKNOWN), -EINVAL for NULL/empty input or a
 * path that is not absolute. */
int ig_cgroup_path_parse(const char *path, struct ig_cgroup_info *out);

/* "host", "container", "pod"; NULL for IG_CG_UNKNOWN (the wire leaves scope
 * out when unknown). */
const char *ig_cg_scope_name(enum ig_cg_scope s);
const char *ig_cg_qos_name(enum ig_cg_qos q); /* "guaranteed"...; NULL for none */

/* True when s (len bytes) is a well-formed pod uid: a UUID (8-4-4-4-12 hex,
 * dashes or, with underscores_ok, underscores as systemd spells them) or 32
 * hex digits (static/mirror pods). */
bool ig_pod_uid_valid(const char *s, size_t len, bool underscores_ok);
/* True when s (len bytes) is exactly 64 lowercase hex digits. */
bool ig_container_id_valid(const char *s, size_t len);

/* Resolves the cgroup v2 hierarchy. conf is "auto" (or NULL/""): the first of
 * /sys/fs/cgroup, /sys/fs/cgroup/unified that is a cgroup2 mount. Any other
 * value is used as given and must be a directory; *is_cgroup2 says whether it
 * is a cgroup2 mount (tests use plain directories). 0, -ENOENT (auto found
 * no v2 hierarchy), -ENOTDIR (the path is not a directory). */
int ig_cgroup_root_detect(const char *conf, char *out, size_t outlen, bool *is_cgroup2);

/* The path (relative to the root, "/a/b") of the cgroup with this id,
 * through open_by_handle_at() on a kernfs file handle; root_fd is an O_PATH
 * or O_DIRECTORY fd of the v2 root (only meaningful on a cgroup2 mount: other
 * file systems read the handle their own way). Needs CAP_DAC_READ_SEARCH.
 * 0, -ESTALE (the cgroup is gone), -EPERM (no capability), -EOPNOTSUPP
 * (handles refused: fall back to ig_cgroup_walk), -EXDEV (outside the root),
 * -ENAMETOOLONG, or another -errno. */
int ig_cgroup_path_by_id(int root_fd, uint64_t id, char *out, size_t outlen);

/* Calls cb(id, path) for the root ("/") and every directory below it, depth
 * first, without following other mounts. The id is the directory's inode
 * number (as the kernel reports it for the cgroup). A cb returning non-zero
 * stops the walk and is returned. Directories that vanish mid-walk are
 * skipped. max_depth bounds recursion (64 is plenty). */
typedef int (*ig_cgroup_walk_cb)(void *arg, uint64_t id, const char *path);
int ig_cgroup_walk(const char *root, unsigned max_depth, ig_cgroup_walk_cb cb, void *arg);

#endif
