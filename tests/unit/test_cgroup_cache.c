/* cgroup_cache and identity: the id -> identity table, then the whole cgroup
 * side of identity enrichment on real directories.
 *
 * The real-cgroup tests build kubelet-shaped hierarchies under the cgroup v2
 * mount (this machine: /sys/fs/cgroup/unified), move a forked child into
 * each container's cgroup, check that the kernel's cgroup id of the child
 * (the kernfs id: what bpf_get_current_cgroup_id() returns) is the
 * directory's inode, and assert ig_ident_fill gives that id the right
 * runtime, container id and pod uid. They need root: with CI=true they fail
 * without it, otherwise they say SKIPPED loudly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_cache.h"
#include "identity.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "sysprep.h"

/* ---------------------------------------------------------------- cache */

static void test_cache_finds_what_was_put_and_forgets_what_was_deleted(void **state)
{
	struct ig_cg_cache *c;
	enum { N = 5000 };
	static uint64_t ids[N];
	uint64_t seed = 42;

	(void)state;
	assert_int_equal(ig_cg_cache_new(&c, N), 0);
	for (int i = 0; i < N; i++) {
		/* half sequential (inode-like), half scattered */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		ids[i] = i % 2 ? 4096 + (uint64_t)i : (seed >> 1) | 1;
		assert_int_equal(ig_cg_cache_put(c, ig_cg_entry_new(ids[i], "/x", 0)), 0);
	}
	assert_int_equal(ig_cg_cache_count(c), N);
	for (int i = 0; i < N; i++) {
		struct ig_cg_entry *e = ig_cg_cache_get(c, ids[i]);

		assert_non_null(e);
		assert_int_equal(e->id, ids[i]);
	}
	/* delete every third: the rest must stay reachable (backward shift) */
	for (int i = 0; i < N; i += 3)
		assert_int_equal(ig_cg_cache_del(c, ids[i]), 0);
	for (int i = 0; i < N; i++) {
		if (i % 3 == 0)
			assert_null(ig_cg_cache_get(c, ids[i]));
		else
			assert_non_null(ig_cg_cache_get(c, ids[i]));
	}
	assert_int_equal(ig_cg_cache_del(c, ids[0]), -ENOENT);
	assert_null(ig_cg_cache_get(c, 0));
	assert_null(ig_cg_cache_get(c, 1));
	ig_cg_cache_reclaim(c);
	ig_cg_cache_free(c);
}

static void test_cache_refuses_past_its_bound_and_id_zero(void **state)
{
	struct ig_cg_cache *c;
	struct ig_cg_entry *e;

	(void)state;
	assert_int_equal(ig_cg_cache_new(&c, 3), 0);
	for (uint64_t i = 1; i <= 3; i++)
		assert_int_equal(ig_cg_cache_put(c, ig_cg_entry_new(i, "/", 0)), 0);
	e = ig_cg_entry_new(4, "/", 0);
	assert_int_equal(ig_cg_cache_put(c, e), -ENOSPC);
	ig_cg_entry_free(e);
	/* replacing an existing id is not growth */
	assert_int_equal(ig_cg_cache_put(c, ig_cg_entry_new(2, "/b", 0)), 0);
	assert_string_equal(ig_cg_cache_get(c, 2)->path, "/b");
	e = ig_cg_entry_new(0, "/", 0);
	assert_int_equal(ig_cg_cache_put(c, e), -EINVAL);
	ig_cg_entry_free(e);
	assert_int_equal(ig_cg_cache_put(c, NULL), -EINVAL);
	ig_cg_cache_free(c);
}

static void test_replaced_entries_stay_readable_until_reclaim(void **state)
{
	struct ig_cg_cache *c;
	struct ig_cg_entry *old;
	const char *path;

	(void)state;
	assert_int_equal(ig_cg_cache_new(&c, 0), 0);
	assert_int_equal(ig_cg_cache_max(c), 65536);
	assert_int_equal(
		ig_cg_cache_put(
			c,
			ig_cg_entry_new(
				7,
				"/docker/"
				"31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30",
				0)),
		0);
	old = ig_cg_cache_get(c, 7);
	path = old->ident.cgroup_path;
	assert_int_equal(ig_cg_cache_put(c, ig_cg_entry_new(7, "/other", 0)), 0);
	/* a record filled before the replace still points at readable memory */
	assert_string_equal(
		path, "/docker/31cb02944da7a12196a193cf0e0f6c226d7c453a1db62e65ba98287593a2ee30");
	assert_int_equal(ig_cg_cache_del(c, 7), 0);
	ig_cg_cache_reclaim(c); /* now both are freed (ASan checks) */
	ig_cg_cache_free(c);
}

static int drop_odd(void *arg, struct ig_cg_entry *e)
{
	(*(int *)arg)++;
	return e->id % 2;
}

static void test_sweep_removes_what_the_predicate_picks(void **state)
{
	struct ig_cg_cache *c;
	int visited = 0;

	(void)state;
	assert_int_equal(ig_cg_cache_new(&c, 100), 0);
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(ig_cg_cache_put(c, ig_cg_entry_new(i, "/", 0)), 0);
	assert_int_equal(ig_cg_cache_sweep(c, drop_odd, &visited), 50);
	assert_int_equal(visited, 100);
	assert_int_equal(ig_cg_cache_count(c), 50);
	assert_null(ig_cg_cache_get(c, 3));
	assert_non_null(ig_cg_cache_get(c, 4));
	ig_cg_cache_free(c);
}

static void test_entry_identity_comes_from_the_path(void **state)
{
	struct ig_cg_entry *e = ig_cg_entry_new(
		9,
		"/kubepods.slice/kubepods-besteffort.slice/"
		"kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice/"
		"cri-containerd-f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830.scope",
		5);
	struct ig_cg_entry *n = ig_cg_entry_new_unresolved(10, IG_CGE_PENDING, 5);

	(void)state;
	assert_int_equal(e->state, IG_CGE_READY);
	assert_string_equal(e->ident.scope, "pod");
	assert_string_equal(e->ident.runtime, "containerd");
	assert_string_equal(e->ident.pod_uid, "dd1bf9d1-241d-47f5-8e25-12de83135812");
	assert_string_equal(e->ident.container_id,
			    "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830");
	assert_ptr_equal(e->ident.cgroup_path, e->path);
	assert_null(e->ident.pod_name);
	assert_int_equal(n->state, IG_CGE_PENDING);
	assert_null(n->ident.scope);
	assert_null(n->path);
	ig_cg_entry_free(e);
	ig_cg_entry_free(n);
}

static void test_ident_copy_caps_labels(void **state)
{
	struct ig_label labels[IG_MAX_LABELS + 4];
	struct ig_cg_ident src = { .scope = "pod", .pod_name = "web-1" };
	struct ig_identity dst;

	(void)state;
	for (int i = 0; i < IG_MAX_LABELS + 4; i++)
		labels[i] = (struct ig_label){ "k", "v" };
	src.labels = labels;
	src.nlabels = IG_MAX_LABELS + 4;
	memset(&dst, 0xff, sizeof(dst));
	ig_cg_ident_copy(&dst, &src);
	assert_int_equal(dst.nlabels, IG_MAX_LABELS);
	assert_string_equal(dst.pod_name, "web-1");
	assert_null(dst.image);
}

/* ------------------------------------------------------- identity helpers */

static struct ig_kube_conf kube_off(void)
{
	struct ig_kube_conf kc;

	memset(&kc, 0, sizeof(kc));
	kc.enabled = 2;
	kc.cgroup_rescan_ns = 60 * IG_NSEC_PER_SEC;
	return kc;
}

static struct ig_record *new_record(uint64_t cgid)
{
	struct ig_record *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->cgroup_id = cgid;
	return r;
}

static uint64_t ino_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	return st.st_ino;
}

static void mkdirs(const char *root, const char *rel)
{
	char cmd[PATH_MAX * 2];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s%s'", root, rel);
	assert_int_equal(system(cmd), 0);
}

/* Ticks until fill(cgid) has a scope (or the timeout). */
static bool wait_known(struct ig_ident *id, struct ig_record *r, uint64_t timeout_ms)
{
	uint64_t end = ig_mono_ns() + timeout_ms * IG_NSEC_PER_MSEC;

	for (;;) {
		ig_ident_tick(id, ig_mono_ns());
		ig_ident_fill(id, r);
		if (r->id.scope || ig_mono_ns() > end)
			return r->id.scope != NULL;
		usleep(10000);
	}
}

#define CTR_A "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"
#define CTR_B "49f9e8e5395d57c1083996c09e2e6f042d5fe1ec0310facab32f94912b35ce59"

static char g_tree[64];

static int tree_teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (!g_tree[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tree);
	g_tree[0] = '\0';
	return system(cmd) == 0 ? 0 : -1;
}

/* On a plain directory (no root needed): initial walk, inotify for a new
 * container, lazy lookups of unknown ids, vanished cgroups. */
static void test_identity_on_a_directory_tree(void **state)
{
	char *root = g_tree, p[PATH_MAX];
	const char *pod = "/kubepods.slice/kubepods-besteffort.slice/"
			  "kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812.slice";
	struct ig_kube_conf kc = kube_off();
	struct ig_ident *id;
	struct ig_ident_stats st, st0;
	struct ig_record *r = new_record(0);
	struct ig_err err;
	uint64_t a, b, svc;

	(void)state;
	ig_err_init(&err);
	snprintf(g_tree, sizeof(g_tree), "/tmp/ig_ident_XXXXXX");
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/cri-containerd-%s.scope", pod, CTR_A);
	mkdirs(root, p);
	mkdirs(root, "/system.slice/sshd.service");
	snprintf(p, sizeof(p), "%s%s/cri-containerd-%s.scope", root, pod, CTR_A);
	a = ino_of(p);
	snprintf(p, sizeof(p), "%s/system.slice/sshd.service", root);
	svc = ino_of(p);

	assert_int_equal(ig_ident_new(&id, &kc, "node-a", root, &err), 0);
	/* found by the walk in ig_ident_new: a hit on the first event */
	r->cgroup_id = a;
	ig_ident_fill(id, r);
	assert_non_null(r->id.scope);
	assert_string_equal(r->id.scope, "pod");
	assert_string_equal(r->id.container_id, CTR_A);
	assert_string_equal(r->id.runtime, "containerd");
	assert_string_equal(r->id.pod_uid, "dd1bf9d1-241d-47f5-8e25-12de83135812");
	assert_null(r->id.pod_name); /* no API: never guessed */
	r->cgroup_id = svc;
	ig_ident_fill(id, r);
	assert_string_equal(r->id.scope, "host");
	assert_null(r->id.container_id);

	/* a container created after start: inotify, then a tick */
	snprintf(p, sizeof(p), "%s/crio-%s.scope/container", pod, CTR_B);
	mkdirs(root, p);
	snprintf(p, sizeof(p), "%s%s/crio-%s.scope/container", root, pod, CTR_B);
	b = ino_of(p);
	r->cgroup_id = b;
	assert_true(wait_known(id, r, 5000));
	assert_string_equal(r->id.container_id, CTR_B);
	assert_string_equal(r->id.runtime, "cri-o");

	/* an id nobody has: a miss, one lazy lookup, then a negative answer
	 * (the new container above may have been looked up too: count from here) */
	ig_ident_stats(id, &st0);
	r->cgroup_id = 987654321987ULL;
	ig_ident_fill(id, r);
	assert_null(r->id.scope);
	ig_ident_fill(id, r);
	for (int i = 0; i < 300; i++) {
		ig_ident_tick(id, ig_mono_ns());
		ig_ident_stats(id, &st);
		if (st.lazy_failed)
			break;
		usleep(10000);
	}
	ig_ident_fill(id, r);
	ig_ident_stats(id, &st);
	assert_int_equal(st.lazy_lookups - st0.lazy_lookups, 1);
	assert_int_equal(st.lazy_failed - st0.lazy_failed, 1);
	assert_int_equal(st.misses - st0.misses, 3);
	assert_null(r->id.scope);

	/* the container goes away: late events keep its identity, counted */
	snprintf(p, sizeof(p), "%s%s/crio-%s.scope/container", root, pod, CTR_B);
	assert_int_equal(rmdir(p), 0);
	for (int i = 0; i < 50; i++) {
		ig_ident_tick(id, ig_mono_ns());
		usleep(10000);
	}
	r->cgroup_id = b;
	ig_ident_fill(id, r);
	assert_non_null(r->id.scope);
	assert_string_equal(r->id.container_id, CTR_B);
	ig_ident_stats(id, &st);
	assert_int_equal(st.vanished, 1);
	assert_true(st.inotify_watches >= 6);
	assert_int_equal(st.api_state, IG_API_DISABLED);
	assert_int_equal(st.pods_known, 0);

	ig_ident_free(id);
	free(r);
}

static void test_identity_rejects_an_unusable_cgroup_root(void **state)
{
	struct ig_kube_conf kc = kube_off();
	struct ig_ident *id = (void *)1;
	struct ig_err err;

	(void)state;
	ig_err_init(&err);
	assert_int_equal(ig_ident_new(&id, &kc, "n", "/nonexistent/cgroup", &err), -EINVAL);
	assert_null(id);
	assert_non_null(strstr(ig_err_str(&err), "agent.cgroup_root"));
	ig_err_init(&err);
	assert_int_equal(ig_ident_new(&id, &kc, "n", "/etc/hostname", &err), -EINVAL);
}

/* ------------------------------------------------------------ real cgroups */

struct layout {
	const char *dir; /* below the v2 root */
	const char *scope;
	const char *runtime;
	const char *container_id;
	const char *pod_uid;
};

#define UID1 "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define UID1_ "0a1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d"
#define STATIC_UID "9729a196c4723b60ab401eaff722982d"
#define C1 "1111111111111111111111111111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222222222222222222222222222"
#define C3 "3333333333333333333333333333333333333333333333333333333333333333"
#define C4 "4444444444444444444444444444444444444444444444444444444444444444"
#define C5 "5555555555555555555555555555555555555555555555555555555555555555"
#define C6 "6666666666666666666666666666666666666666666666666666666666666666"
#define C7 "7777777777777777777777777777777777777777777777777777777777777777"
#define C8 "8888888888888888888888888888888888888888888888888888888888888888"

static const struct layout layouts[] = {
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID1_
	  ".slice/cri-containerd-" C1 ".scope",
	  "pod", "containerd", C1, UID1 },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID1_
	  ".slice/crio-" C2 ".scope",
	  "pod", "cri-o", C2, UID1 },
	{ "/kubepods.slice/kubepods-pod" UID1_ ".slice/docker-" C3 ".scope", "pod", "docker", C3,
	  UID1 },
	{ "/kubepods/besteffort/pod" UID1 "/" C4, "pod", NULL, C4, UID1 },
	{ "/kubepods/pod" STATIC_UID "/" C5, "pod", NULL, C5, STATIC_UID },
	{ "/system.slice/docker-" C6 ".scope", "container", "docker", C6, NULL },
	{ "/machine.slice/libpod-" C7 ".scope/container", "container", "podman", C7, NULL },
	{ "/system.slice/ig-test.service", "host", NULL, NULL, NULL },
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

struct real {
	char root[PATH_MAX];
	char made[64][PATH_MAX]; /* directories we created, in creation order */
	int nmade;
	pid_t kids[NLAYOUTS + 4];
	int nkids;
};

static bool need_root(void)
{
	if (geteuid() == 0)
		return true;
	if (getenv("CI") && strcmp(getenv("CI"), "true") == 0)
		fail_msg("real cgroup tests need root (CI=true)");
	fprintf(stderr, "SKIPPED: real cgroup tests need root\n");
	return false;
}

static void real_mkdir(struct real *rl, const char *rel)
{
	char path[PATH_MAX], *p;

	if (snprintf(path, sizeof(path), "%s%s", rl->root, rel) >= (int)sizeof(path))
		fail_msg("path too long");
	for (p = path + strlen(rl->root) + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = '\0';
			if (mkdir(path, 0755) == 0) {
				assert_true(rl->nmade < 64);
				snprintf(rl->made[rl->nmade++], PATH_MAX, "%s", path);
			} else if (errno != EEXIST) {
				fail_msg("mkdir %s: %s", path, strerror(errno));
			}
			*p = c;
			if (!c)
				break;
		}
	}
}

/* Forks a child that sleeps in the cgroup rel; returns the kernel's cgroup id
 * for it (kernfs file handle of its /proc/<pid>/cgroup path). */
static uint64_t real_child_in(struct real *rl, const char *rel)
{
	char path[PATH_MAX * 2], line[PATH_MAX], want[PATH_MAX];
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	int mnt, fd;
	pid_t pid;
	FILE *f;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
		_exit(0);
	}
	rl->kids[rl->nkids++] = pid;
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", rl->root, rel);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	snprintf(line, sizeof(line), "%d\n", (int)pid);
	assert_true(write(fd, line, strlen(line)) > 0);
	close(fd);
	/* the kernel agrees the child is there */
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	want[0] = '\0';
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0)
			snprintf(want, sizeof(want), "%s", line + 3);
	fclose(f);
	want[strcspn(want, "\n")] = '\0';
	assert_string_equal(want, rel);
	/* the cgroup id BPF reports is the kernfs id: the file handle's, = inode */
	snprintf(path, sizeof(path), "%s%s", rl->root, rel);
	h.fh.handle_bytes = sizeof(h.id);
	assert_int_equal(name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0), 0);
	assert_int_equal(h.fh.handle_type, 0xfe);
	assert_int_equal(h.id, ino_of(path));
	return h.id;
}

static void real_cleanup(struct real *rl)
{
	for (int i = 0; i < rl->nkids; i++) {
		kill(rl->kids[i], SIGKILL);
		waitpid(rl->kids[i], NULL, 0);
	}
	rl->nkids = 0;
	for (int i = rl->nmade - 1; i >= 0; i--) /* deepest first */
		if (rmdir(rl->made[i]) != 0 && errno != ENOENT)
			fprintf(stderr, "warning: rmdir %s: %s\n", rl->made[i], strerror(errno));
	rl->nmade = 0;
}

static void check_layout(const struct layout *l, const struct ig_identity *got)
{
#define EQ(field, want)                                                                           \
	do {                                                                                      \
		if ((want) == NULL ? got->field != NULL :                                         \
				     (got->field == NULL || strcmp(got->field, (want)) != 0))     \
			fail_msg("%s: " #field " is '%s', want '%s'", l->dir,                     \
				 got->field ? got->field : "(null)", (want) ? (want) : "(null)"); \
	} while (0)
	EQ(scope, l->scope);
	EQ(runtime, l->runtime);
	EQ(container_id, l->container_id);
	EQ(pod_uid, l->pod_uid);
	EQ(cgroup_path, l->dir);
#undef EQ
}

static struct real g_real;

/* Runs even when an assertion failed: no process or cgroup is left behind. */
static int real_teardown(void **state)
{
	(void)state;
	real_cleanup(&g_real);
	return 0;
}

static void test_real_kubelet_hierarchies_resolve_for_processes_inside(void **state)
{
	struct real *rl = &g_real;
	struct ig_kube_conf kc = kube_off();
	struct ig_record *r = new_record(0);
	uint64_t ids[NLAYOUTS], late_id;
	struct ig_ident *id;
	struct ig_ident_stats st;
	struct ig_err err;
	bool cg2;
	char late[PATH_MAX];
	const struct layout late_l = { "/kubepods.slice/kubepods-burstable.slice/"
				       "kubepods-burstable-pod" UID1_ ".slice/cri-containerd-" C8
				       ".scope",
				       "pod", "containerd", C8, UID1 };

	(void)state;
	if (!need_root() || ig_cgroup_root_detect("auto", rl->root, sizeof(rl->root), &cg2) != 0 ||
	    !cg2) {
		free(r);
		if (geteuid() == 0)
			fail_msg("root, but no cgroup v2 hierarchy");
		skip();
	}
	ig_err_init(&err);
	/* half the layouts exist before the agent starts, half appear after */
	for (size_t i = 0; i < NLAYOUTS / 2; i++) {
		real_mkdir(rl, layouts[i].dir);
		ids[i] = real_child_in(rl, layouts[i].dir);
	}
	assert_int_equal(ig_ident_new(&id, &kc, "node-a", "auto", &err), 0);
	for (size_t i = NLAYOUTS / 2; i < NLAYOUTS; i++) {
		real_mkdir(rl, layouts[i].dir);
		ids[i] = real_child_in(rl, layouts[i].dir);
	}
	for (size_t i = 0; i < NLAYOUTS; i++) {
		r->cgroup_id = ids[i];
		if (!wait_known(id, r, 5000))
			fail_msg("%s: not resolved", layouts[i].dir);
		check_layout(&layouts[i], &r->id);
	}

	/* an id the agent has never seen, asked for before any tick: a miss,
	 * then resolved through the kernfs handle (or inotify, whichever wins) */
	snprintf(late, sizeof(late), "%s", late_l.dir);
	real_mkdir(rl, late);
	late_id = real_child_in(rl, late);
	r->cgroup_id = late_id;
	ig_ident_fill(id, r);
	assert_true(wait_known(id, r, 5000));
	check_layout(&late_l, &r->id);

	/* short-lived: the process exits, the cgroup is removed; later events
	 * from the ring buffer still get the identity, and are counted */
	kill(rl->kids[rl->nkids - 1], SIGKILL);
	waitpid(rl->kids[rl->nkids - 1], NULL, 0);
	rl->nkids--;
	assert_int_equal(rmdir(rl->made[rl->nmade - 1]), 0);
	rl->nmade--;
	for (int i = 0; i < 30; i++) {
		ig_ident_tick(id, ig_mono_ns());
		usleep(10000);
	}
	r->cgroup_id = late_id;
	ig_ident_fill(id, r);
	check_layout(&late_l, &r->id);
	ig_ident_stats(id, &st);
	assert_int_equal(st.vanished, 1);
	assert_true(st.hits >= NLAYOUTS);

	ig_ident_free(id);
	real_cleanup(rl);
	free(r);
}

/* ------------------------------------ file events from inside containers */

struct fe_seen {
	pid_t pid;
	uint64_t cgid;
	char path[PATH_MAX];
	struct {
		char scope[16], runtime[16], cid[80], puid[64], cgp[512];
	} id;
};

static struct {
	struct ig_ident *id;
	pid_t pids[NLAYOUTS];
	int npids;
	struct fe_seen v[64];
	int n;
} fe;

static void cp(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

/* The agent's sink, cut down: enrich, then keep what the test needs. */
static void fe_emit(void *ctx, struct ig_record *r)
{
	const struct ig_field *f = ig_record_field(r, "path");
	struct fe_seen *s;

	(void)ctx;
	for (int i = 0; i < fe.npids; i++) {
		if ((pid_t)r->pid != fe.pids[i] || fe.n >= 64)
			continue;
		ig_ident_fill(fe.id, r);
		s = &fe.v[fe.n++];
		s->pid = (pid_t)r->pid;
		s->cgid = r->cgroup_id;
		cp(s->path, sizeof(s->path), f ? f->s : NULL);
		cp(s->id.scope, sizeof(s->id.scope), r->id.scope);
		cp(s->id.runtime, sizeof(s->id.runtime), r->id.runtime);
		cp(s->id.cid, sizeof(s->id.cid), r->id.container_id);
		cp(s->id.puid, sizeof(s->id.puid), r->id.pod_uid);
		cp(s->id.cgp, sizeof(s->id.cgp), r->id.cgroup_path);
	}
}

static const struct fe_seen *fe_find(pid_t pid, const char *path)
{
	for (int i = 0; i < fe.n; i++)
		if (fe.v[i].pid == pid && strcmp(fe.v[i].path, path) == 0)
			return &fe.v[i];
	return NULL;
}

static void *g_probe;
static char g_watched[PATH_MAX];

static int files_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	if (g_probe)
		ig_probe_files_ops.close(g_probe);
	g_probe = NULL;
	if (fe.id)
		ig_ident_free(fe.id);
	fe.id = NULL;
	if (g_watched[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_watched);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", g_watched);
		g_watched[0] = '\0';
	}
	return real_teardown(state);
}

static const char *nn(const char *s)
{
	return s ? s : "";
}

/* A process in each kubelet-, docker-, podman-shaped cgroup opens a file;
 * the files probe reports it with the kernel's cgroup id, and the identity
 * stamped on the record is that container's. */
static void test_file_events_from_inside_containers_carry_their_identity(void **state)
{
	struct real *rl = &g_real;
	struct ig_kube_conf kc = kube_off();
	struct ig_files_conf fc;
	struct ig_agent_conf ac;
	struct ig_sink sink = { fe_emit, NULL };
	struct ig_err err;
	char tmpl[] = "/tmp/ig_idfiles_XXXXXX", *dirs[1];
	uint64_t ids[NLAYOUTS], end;
	int go[NLAYOUTS][2];
	bool cg2;

	(void)state;
	if (!need_root() || ig_cgroup_root_detect("auto", rl->root, sizeof(rl->root), &cg2) != 0 ||
	    !cg2) {
		if (geteuid() == 0)
			fail_msg("root, but no cgroup v2 hierarchy");
		skip();
	}
	memset(&fe, 0, sizeof(fe));
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, g_watched)); /* the kernel reports resolved paths */
	memset(&ac, 0, sizeof(ac));
	ac.ringbuf_bytes = 1 << 20;
	ac.wakeup_records = 1;
	ac.poll_interval_ns = 100 * IG_NSEC_PER_MSEC;
	ac.mount_tracefs = ac.mount_bpffs = true;
	ig_err_init(&err);
	if (ig_sysprep(&ac, &err) < 0)
		fail_msg("ig_sysprep: %s", ig_err_str(&err));
	memset(&fc, 0, sizeof(fc));
	dirs[0] = g_watched;
	fc.c.enabled = true;
	fc.monitor_dirs.n = 1;
	fc.monitor_dirs.v = dirs;
	if (ig_probe_files_ops.open(&g_probe, &fc, &ac, &sink, &err) < 0)
		fail_msg("files probe: %s", ig_err_str(&err));
	assert_int_equal(ig_ident_new(&fe.id, &kc, "node-a", "auto", &err), 0);

	/* the containers start after the agent: found through inotify */
	for (size_t i = 0; i < NLAYOUTS; i++) {
		char path[PATH_MAX * 2];

		real_mkdir(rl, layouts[i].dir);
		snprintf(path, sizeof(path), "%s%s", rl->root, layouts[i].dir);
		ids[i] = ino_of(path);
	}
	end = ig_mono_ns() + 5 * IG_NSEC_PER_SEC;
	for (size_t known = 0; known < NLAYOUTS && ig_mono_ns() < end;) {
		struct ig_record *r = new_record(0);

		ig_ident_tick(fe.id, ig_mono_ns());
		known = 0;
		for (size_t i = 0; i < NLAYOUTS; i++) {
			r->cgroup_id = ids[i];
			ig_ident_fill(fe.id, r);
			known += r->id.scope != NULL;
		}
		free(r);
		usleep(10000);
	}

	/* each process moves into its container, then opens <watched>/<i> */
	for (size_t i = 0; i < NLAYOUTS; i++) {
		char procs[PATH_MAX * 2], line[32];
		pid_t pid;
		int fd;

		assert_int_equal(pipe(go[i]), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char c, file[PATH_MAX + 16];

			close(go[i][1]);
			if (read(go[i][0], &c, 1) != 1)
				_exit(1);
			snprintf(file, sizeof(file), "%s/%zu", g_watched, i);
			fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
			_exit(fd < 0 ? 2 : 0);
		}
		close(go[i][0]);
		rl->kids[rl->nkids++] = pid;
		fe.pids[fe.npids++] = pid;
		snprintf(procs, sizeof(procs), "%s%s/cgroup.procs", rl->root, layouts[i].dir);
		fd = open(procs, O_WRONLY);
		assert_true(fd >= 0);
		snprintf(line, sizeof(line), "%d\n", (int)pid);
		assert_true(write(fd, line, strlen(line)) > 0);
		close(fd);
		assert_int_equal(write(go[i][1], "g", 1), 1);
		close(go[i][1]);
	}
	for (int i = 0; i < rl->nkids; i++) {
		int st;

		assert_int_equal(waitpid(rl->kids[i], &st, 0), rl->kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	rl->nkids = 0;

	end = ig_mono_ns() + 5 * IG_NSEC_PER_SEC;
	while (fe.n < (int)NLAYOUTS && ig_mono_ns() < end) {
		assert_true(ig_probe_files_ops.consume(g_probe) >= 0);
		usleep(20000);
	}
	for (size_t i = 0; i < NLAYOUTS; i++) {
		const struct layout *l = &layouts[i];
		char file[PATH_MAX + 16];
		const struct fe_seen *s;

		snprintf(file, sizeof(file), "%s/%zu", g_watched, i);
		s = fe_find(fe.pids[i], file);
		if (!s)
			fail_msg("%s: no file.open record for %s", l->dir, file);
		if (s->cgid != ids[i])
			fail_msg("%s: cgroup id %llu, directory inode %llu", l->dir,
				 (unsigned long long)s->cgid, (unsigned long long)ids[i]);
		if (strcmp(s->id.scope, l->scope) || strcmp(s->id.runtime, nn(l->runtime)) ||
		    strcmp(s->id.cid, nn(l->container_id)) || strcmp(s->id.puid, nn(l->pod_uid)) ||
		    strcmp(s->id.cgp, l->dir))
			fail_msg("%s: got scope=%s runtime=%s container=%s pod=%s path=%s", l->dir,
				 s->id.scope, s->id.runtime, s->id.cid, s->id.puid, s->id.cgp);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cache_finds_what_was_put_and_forgets_what_was_deleted),
		cmocka_unit_test(test_cache_refuses_past_its_bound_and_id_zero),
		cmocka_unit_test(test_replaced_entries_stay_readable_until_reclaim),
		cmocka_unit_test(test_sweep_removes_what_the_predicate_picks),
		cmocka_unit_test(test_entry_identity_comes_from_the_path),
		cmocka_unit_test(test_ident_copy_caps_labels),
		cmocka_unit_test_teardown(test_identity_on_a_directory_tree, tree_teardown),
		cmocka_unit_test(test_identity_rejects_an_unusable_cgroup_root),
		cmocka_unit_test_teardown(
			test_real_kubelet_hierarchies_resolve_for_processes_inside, real_teardown),
		cmocka_unit_test_teardown(
			test_file_events_from_inside_containers_carry_their_identity,
			files_teardown),
	};

	ig_log_init("test_cgroup_cache", IG_LOG_WARN, IG_LOG_LOGFMT);
	ig_time_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
