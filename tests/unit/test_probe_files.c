/* test_probe_files: the files probe against the real kernel.
 *
 * Each test loads the probe with monitor_dirs set to a fresh mkdtemp()
 * directory, makes open calls with syscall(2) (so the flags the kernel sees
 * are exactly the ones written here), drains the ring buffer and compares
 * the records this process produced with what it did. Needs root: without
 * it the tests are skipped with a message, or fail when CI=true.
 *
 * Evasion cases: "..", "." and "//" in absolute and relative names (folded
 * in the kernel), symlinks into and out of the monitored directory, and a
 * relative name climbing out of a cwd too deep to walk, in both resolve
 * modes and, for real_path, both ways of getting the exit-time arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_require.h"

#include "bpf_util.h"
#include "files.h"
#include "ig_conf.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "sysprep.h"

#define MAX_GOT 4096

/* A record, copied out of the sink callback. */
struct got {
	char kind[16], probe[16], comm[IG_COMM_LEN];
	char path[1024], syscall[16], access[4], error[24], requested[1024];
	uint32_t pid, tid, ppid, uid, gid;
	uint64_t ts_ns, cgroup_id, flags, mode;
	int64_t ret, dirfd;
	int has_dirfd, relative, truncated, has_error, has_requested, real_path;
	int requested_truncated;
};

static struct {
	struct got v[MAX_GOT];
	size_t n;
	size_t other_pids; /* records of other processes (monitor_dirs "/") */
} col;

static char dir[PATH_MAX]; /* monitored */
static char outside[PATH_MAX]; /* a sibling, not monitored */
static char cwd0[PATH_MAX];
static bool have_root;
/* probes.files.resolve for the next probe_open (then back to lexical). */
static int next_resolve = IG_FILE_RESOLVE_LEXICAL;

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static void sink_emit(void *ctx, struct ig_record *r)
{
	if (r->pid != (uint32_t)getpid()) {
		col.other_pids++;
		return;
	}
	if (col.n == MAX_GOT)
		return;
	struct got *g = &col.v[col.n++];
	memset(g, 0, sizeof(*g));
	copy_str(g->kind, sizeof(g->kind), r->kind);
	copy_str(g->probe, sizeof(g->probe), r->probe);
	copy_str(g->comm, sizeof(g->comm), r->comm);
	g->pid = r->pid;
	g->tid = r->tid;
	g->ppid = r->ppid;
	g->uid = r->uid;
	g->gid = r->gid;
	g->ts_ns = r->ts_ns;
	g->cgroup_id = r->cgroup_id;
	const struct ig_field *f;
	if ((f = ig_record_field(r, "path")))
		copy_str(g->path, sizeof(g->path), f->s);
	if ((f = ig_record_field(r, "syscall")))
		copy_str(g->syscall, sizeof(g->syscall), f->s);
	if ((f = ig_record_field(r, "access")))
		copy_str(g->access, sizeof(g->access), f->s);
	if ((f = ig_record_field(r, "error"))) {
		g->has_error = 1;
		copy_str(g->error, sizeof(g->error), f->s);
	}
	if ((f = ig_record_field(r, "flags")))
		g->flags = f->u;
	if ((f = ig_record_field(r, "mode")))
		g->mode = f->u;
	if ((f = ig_record_field(r, "ret")))
		g->ret = f->i;
	if ((f = ig_record_field(r, "dirfd"))) {
		g->has_dirfd = 1;
		g->dirfd = f->i;
	}
	if ((f = ig_record_field(r, "relative")))
		g->relative = (int)f->u;
	if ((f = ig_record_field(r, "truncated")))
		g->truncated = (int)f->u;
	if ((f = ig_record_field(r, "requested_path"))) {
		g->has_requested = 1;
		copy_str(g->requested, sizeof(g->requested), f->s);
	}
	if ((f = ig_record_field(r, "real_path")))
		g->real_path = (int)f->u;
	if ((f = ig_record_field(r, "requested_truncated")))
		g->requested_truncated = (int)f->u;
}

static const struct ig_sink sink = { sink_emit, NULL };

struct probe {
	void *state;
	char *dirs[32];
	struct ig_files_conf fc;
	struct ig_agent_conf ac;
};

static void agent_conf(struct ig_agent_conf *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->ringbuf_bytes = 1 << 20;
	ac->wakeup_records = 64;
	ac->poll_interval_ns = 100 * IG_NSEC_PER_MSEC;
	ac->mount_tracefs = true;
	ac->mount_bpffs = true;
}

/* Opens the probe on the given prefixes; fails the test on error. */
static void probe_open_wakeup(struct probe *p, const char *const *dirs, size_t n,
			      bool include_failed, uint64_t ringbuf_bytes, uint64_t wakeup_records)
{
	struct ig_err err;

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p->dirs[i] = (char *)dirs[i];
	p->fc.c.enabled = true;
	p->fc.monitor_dirs.n = n;
	p->fc.monitor_dirs.v = p->dirs;
	p->fc.include_failed = include_failed;
	p->fc.resolve = next_resolve;
	next_resolve = IG_FILE_RESOLVE_LEXICAL;
	agent_conf(&p->ac);
	if (ringbuf_bytes)
		p->ac.ringbuf_bytes = ringbuf_bytes;
	p->ac.wakeup_records = wakeup_records;
	ig_err_init(&err);
	int rv = ig_probe_files_ops.open(&p->state, &p->fc, &p->ac, &sink, &err);
	if (rv < 0)
		fail_msg("files probe open failed: %d %s", rv, ig_err_str(&err));
	assert_non_null(p->state);
	assert_true(ig_probe_files_ops.epoll_fd(p->state) >= 0);
	col.n = 0;
	col.other_pids = 0;
}

static void probe_open(struct probe *p, const char *const *dirs, size_t n, bool include_failed,
		       uint64_t ringbuf_bytes)
{
	probe_open_wakeup(p, dirs, n, include_failed, ringbuf_bytes, 64);
}

static void drain(struct probe *p)
{
	int rv;

	do {
		rv = ig_probe_files_ops.consume(p->state);
		assert_true(rv >= 0);
	} while (rv > 0);
}

static void probe_close(struct probe *p)
{
	ig_probe_files_ops.close(p->state);
	p->state = NULL;
}

static long sys_openat(int dfd, const char *path, int flags, mode_t mode)
{
	long fd = syscall(SYS_openat, dfd, path, flags, mode);
	return fd < 0 ? -errno : fd;
}

static void close_fd(long fd)
{
	if (fd >= 0)
		close((int)fd);
}

static void join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < cap);
}

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
}

/* The one record with this path; fails when there is not exactly one. */
static const struct got *find_one(const char *path)
{
	const struct got *hit = NULL;
	int n = 0;

	for (size_t i = 0; i < col.n; i++)
		if (strcmp(col.v[i].path, path) == 0) {
			hit = &col.v[i];
			n++;
		}
	if (n != 1) {
		for (size_t i = 0; i < col.n; i++)
			print_message("  got: %s %s ret=%lld\n", col.v[i].syscall, col.v[i].path,
				      (long long)col.v[i].ret);
		fail_msg("expected exactly one record for %s, got %d", path, n);
	}
	return hit;
}

static void assert_header(const struct got *g)
{
	char comm[IG_COMM_LEN] = "";
	FILE *f = fopen("/proc/self/comm", "r");

	assert_string_equal(g->kind, "file.open");
	assert_string_equal(g->probe, "files");
	assert_int_equal(g->pid, getpid());
	assert_int_equal(g->tid, gettid());
	assert_int_equal(g->ppid, getppid());
	assert_int_equal(g->uid, getuid());
	assert_int_equal(g->gid, getgid());
	assert_true(g->cgroup_id != 0);
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	assert_string_equal(g->comm, comm);
	/* Wall clock, within the last minute. */
	uint64_t now = ig_wall_ns();
	assert_true(g->ts_ns <= now + IG_NSEC_PER_SEC && g->ts_ns + 60 * IG_NSEC_PER_SEC > now);
}

/* Called first by every test that loads the probe. */
static void require_root(void)
{
	ig_test_require(have_root, "test_probe_files needs root to load eBPF programs",
			"run it as root (sudo ctest -R probe_files)");
}

static void test_absolute_open_inside_reports_exact_fields(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX];

	(void)state;
	require_root();
	join(path, sizeof(path), dir, "created");
	probe_open(&p, dirs, 1, true, 0);
	uint64_t before = ig_wall_ns();
	long fd = sys_openat(AT_FDCWD, path, O_CREAT | O_WRONLY, 0640);
	assert_true(fd >= 0);
	drain(&p);

	const struct got *g = find_one(path);
	assert_header(g);
	assert_true(g->ts_ns + 5 * IG_NSEC_PER_MSEC >= before);
	assert_string_equal(g->syscall, "openat");
	assert_int_equal(g->flags, O_CREAT | O_WRONLY);
	assert_int_equal(g->mode, 0640);
	assert_int_equal(g->ret, fd);
	assert_string_equal(g->access, "w");
	assert_false(g->has_error);
	assert_false(g->relative);
	assert_false(g->has_dirfd);
	assert_false(g->truncated);
	assert_int_equal(col.n, 1);
	close_fd(fd);
	probe_close(&p);
}

static void test_relative_path_from_cwd_is_resolved(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX];

	(void)state;
	require_root();
	join(path, sizeof(path), dir, "rel");
	touch(path);
	probe_open(&p, dirs, 1, true, 0);
	assert_int_equal(chdir(dir), 0);
	long fd1 = sys_openat(AT_FDCWD, "rel", O_RDONLY, 0);
	long fd2 = sys_openat(AT_FDCWD, "./rel", O_RDWR, 0);
	long fd3 = sys_openat(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY, 0);
	assert_int_equal(chdir(cwd0), 0);
	assert_true(fd1 >= 0 && fd2 >= 0 && fd3 >= 0);
	drain(&p);

	assert_int_equal(col.n, 3);
	assert_string_equal(col.v[0].path, path);
	assert_int_equal(col.v[0].ret, fd1);
	assert_string_equal(col.v[0].access, "r");
	assert_false(col.v[0].relative);
	assert_false(col.v[0].has_dirfd);
	assert_string_equal(col.v[1].path, path);
	assert_int_equal(col.v[1].ret, fd2);
	assert_string_equal(col.v[1].access, "rw");
	assert_string_equal(col.v[2].path, dir);
	assert_int_equal(col.v[2].flags, O_RDONLY | O_DIRECTORY);
	close_fd(fd1);
	close_fd(fd2);
	close_fd(fd3);
	probe_close(&p);
}

static void test_relative_path_from_dirfd_is_resolved(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char sub[PATH_MAX], path[PATH_MAX];

	(void)state;
	require_root();
	join(sub, sizeof(sub), dir, "sub");
	mkdir(sub, 0755);
	join(path, sizeof(path), sub, "f");
	touch(path);
	probe_open(&p, dirs, 1, true, 0);
	long dfd = sys_openat(AT_FDCWD, sub, O_RDONLY | O_DIRECTORY, 0);
	assert_true(dfd >= 0);
	long fd = sys_openat((int)dfd, "f", O_RDONLY, 0);
	assert_true(fd >= 0);
	drain(&p);

	assert_int_equal(col.n, 2);
	assert_string_equal(col.v[0].path, sub);
	assert_int_equal(col.v[0].ret, dfd);
	const struct got *g = find_one(path);
	assert_header(g);
	assert_int_equal(g->ret, fd);
	assert_false(g->relative);
	close_fd(fd);
	close_fd(dfd);
	probe_close(&p);
}

static void test_failed_open_reports_negative_errno(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX];

	(void)state;
	require_root();
	join(path, sizeof(path), dir, "missing");
	probe_open(&p, dirs, 1, true, 0);
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY, 0);
	assert_int_equal(fd, -ENOENT);
	drain(&p);

	const struct got *g = find_one(path);
	assert_int_equal(g->ret, -ENOENT);
	assert_true(g->has_error);
	assert_string_equal(g->error, "ENOENT");
	assert_int_equal(col.n, 1);
	probe_close(&p);
}

static void test_include_failed_false_drops_failed_opens(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char missing[PATH_MAX], present[PATH_MAX];

	(void)state;
	require_root();
	join(missing, sizeof(missing), dir, "missing");
	join(present, sizeof(present), dir, "present");
	touch(present);
	probe_open(&p, dirs, 1, false, 0);
	assert_int_equal(sys_openat(AT_FDCWD, missing, O_RDONLY, 0), -ENOENT);
	long fd = sys_openat(AT_FDCWD, present, O_RDONLY, 0);
	assert_true(fd >= 0);
	drain(&p);

	assert_int_equal(col.n, 1);
	assert_string_equal(col.v[0].path, present);
	close_fd(fd);
	probe_close(&p);
}

static void test_opens_outside_monitor_dirs_are_not_reported(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX], etcetera[PATH_MAX + 16], sibling[PATH_MAX + 32];

	(void)state;
	require_root();
	join(path, sizeof(path), outside, "f");
	touch(path);
	/* "<dir>etera" shares the monitored prefix but is another directory. */
	snprintf(etcetera, sizeof(etcetera), "%setera", dir);
	mkdir(etcetera, 0755);
	snprintf(sibling, sizeof(sibling), "%s/f", etcetera);
	touch(sibling);
	probe_open(&p, dirs, 1, true, 0);

	long fds[6];
	fds[0] = sys_openat(AT_FDCWD, path, O_RDONLY, 0);
	fds[1] = sys_openat(AT_FDCWD, sibling, O_RDONLY, 0);
	fds[2] = sys_openat(AT_FDCWD, etcetera, O_RDONLY | O_DIRECTORY, 0);
	assert_int_equal(chdir(outside), 0);
	fds[3] = sys_openat(AT_FDCWD, "f", O_RDONLY, 0);
	assert_int_equal(chdir(etcetera), 0);
	fds[4] = sys_openat(AT_FDCWD, "f", O_RDONLY, 0);
	assert_int_equal(chdir(cwd0), 0);
	fds[5] = sys_openat(AT_FDCWD, "/nonexistent-ingrain-test", O_RDONLY, 0);
	drain(&p);

	for (size_t i = 0; i < col.n; i++)
		print_message("  unexpected: %s\n", col.v[i].path);
	assert_int_equal(col.n, 0);
	for (int i = 0; i < 6; i++)
		close_fd(fds[i]);
	rmdir(etcetera); /* may fail: f is inside; harmless */
	probe_close(&p);
}

static void test_trailing_slash_and_several_dirs_match(void **state)
{
	struct probe p;
	char slash[PATH_MAX + 2];
	char a[PATH_MAX], b[PATH_MAX];

	(void)state;
	require_root();
	snprintf(slash, sizeof(slash), "%s/", dir);
	const char *dirs[] = { "/nonexistent-ingrain-a", slash, outside };
	join(a, sizeof(a), dir, "a");
	join(b, sizeof(b), outside, "b");
	touch(a);
	touch(b);
	probe_open(&p, dirs, 3, true, 0);
	long fa = sys_openat(AT_FDCWD, a, O_RDONLY, 0);
	long fb = sys_openat(AT_FDCWD, b, O_RDONLY, 0);
	drain(&p);

	assert_int_equal(col.n, 2);
	find_one(a);
	find_one(b);
	close_fd(fa);
	close_fd(fb);
	probe_close(&p);
}

static void test_open_creat_and_openat2_are_named(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char po[PATH_MAX], pc[PATH_MAX], p2[PATH_MAX];

	(void)state;
	require_root();
	join(po, sizeof(po), dir, "via-open");
	join(pc, sizeof(pc), dir, "via-creat");
	join(p2, sizeof(p2), dir, "via-openat2");
	touch(po);
	probe_open(&p, dirs, 1, true, 0);
	long fo = syscall(SYS_open, po, O_RDONLY, 0);
	long fc = syscall(SYS_creat, pc, 0600);
	struct open_how how = { .flags = O_CREAT | O_RDWR | O_CLOEXEC, .mode = 0604 };
	long f2 = syscall(SYS_openat2, AT_FDCWD, p2, &how, sizeof(how));
	assert_true(fo >= 0 && fc >= 0 && f2 >= 0);
	drain(&p);

	assert_int_equal(col.n, 3);
	const struct got *g = find_one(po);
	assert_string_equal(g->syscall, "open");
	assert_int_equal(g->ret, fo);
	g = find_one(pc);
	assert_string_equal(g->syscall, "creat");
	assert_int_equal(g->flags, O_CREAT | O_WRONLY | O_TRUNC);
	assert_int_equal(g->mode, 0600);
	assert_int_equal(g->ret, fc);
	g = find_one(p2);
	assert_string_equal(g->syscall, "openat2");
	assert_int_equal(g->flags, O_CREAT | O_RDWR | O_CLOEXEC);
	assert_int_equal(g->mode, 0604);
	assert_int_equal(g->ret, f2);
	assert_string_equal(g->access, "rw");
	close_fd(fo);
	close_fd(fc);
	close_fd(f2);
	probe_close(&p);
}

/* dir/xxx.../xxx.../... deeper than the event's path buffer. */
static void make_long_dir(char *out, size_t cap)
{
	char comp[201];

	memset(comp, 'x', 200);
	comp[200] = 0;
	snprintf(out, cap, "%s", dir);
	for (int i = 0; i < 3; i++) {
		size_t len = strlen(out);
		snprintf(out + len, cap - len, "/%s", comp);
		mkdir(out, 0755);
	}
}

static void test_path_longer_than_buffer_is_truncated(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char deep[PATH_MAX], path[PATH_MAX];

	(void)state;
	require_root();
	make_long_dir(deep, sizeof(deep));
	join(path, sizeof(path), deep, "f");
	touch(path);
	assert_true(strlen(path) > 511);
	probe_open(&p, dirs, 1, true, 0);
	long fd1 = sys_openat(AT_FDCWD, path, O_RDONLY, 0);
	assert_int_equal(chdir(deep), 0);
	long fd2 = sys_openat(AT_FDCWD, "f", O_RDONLY, 0);
	assert_int_equal(chdir(cwd0), 0);
	assert_true(fd1 >= 0 && fd2 >= 0);
	drain(&p);

	assert_int_equal(col.n, 2);
	for (int i = 0; i < 2; i++) {
		const struct got *g = &col.v[i];
		assert_true(g->truncated);
		assert_true(strlen(g->path) <= 511);
		assert_true(strlen(g->path) > strlen(dir));
		assert_memory_equal(g->path, path, strlen(g->path));
		assert_int_equal(g->ret, i == 0 ? fd1 : fd2);
	}
	assert_int_equal(strlen(col.v[0].path), 511);
	close_fd(fd1);
	close_fd(fd2);
	probe_close(&p);
}

static void test_unresolvable_relative_path_is_reported_only_for_root(void **state)
{
	struct probe p;
	char deep[PATH_MAX];

	(void)state;
	require_root();
	/* More levels than the kernel side walks. */
	snprintf(deep, sizeof(deep), "%s", dir);
	for (int i = 0; i < 60; i++) {
		size_t len = strlen(deep);
		snprintf(deep + len, sizeof(deep) - len, "/d");
		mkdir(deep, 0755);
	}
	char f[PATH_MAX];
	join(f, sizeof(f), deep, "f");
	touch(f);

	const char *mine[] = { dir };
	probe_open(&p, mine, 1, true, 0);
	assert_int_equal(chdir(deep), 0);
	long fd = sys_openat(AT_FDCWD, "f", O_RDONLY, 0);
	assert_int_equal(chdir(cwd0), 0);
	assert_true(fd >= 0);
	drain(&p);
	assert_int_equal(col.n, 0);
	close_fd(fd);
	probe_close(&p);

	const char *all[] = { "/" };
	probe_open(&p, all, 1, true, 0);
	assert_int_equal(chdir(deep), 0);
	fd = sys_openat(AT_FDCWD, "f", O_RDONLY, 0);
	assert_int_equal(chdir(cwd0), 0);
	assert_true(fd >= 0);
	drain(&p);
	const struct got *g = find_one("f");
	assert_true(g->relative);
	assert_true(g->has_dirfd);
	assert_int_equal(g->dirfd, AT_FDCWD);
	assert_int_equal(g->ret, fd);
	close_fd(fd);
	probe_close(&p);
}

static void test_full_ring_buffer_counts_every_lost_event(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX];
	const int opens = 3000;
	struct ig_probe_stats st;

	(void)state;
	require_root();
	join(path, sizeof(path), dir, "loss");
	touch(path);
	probe_open(&p, dirs, 1, true, 4096); /* one page: a few dozen records */
	for (int i = 0; i < opens; i++)
		close_fd(sys_openat(AT_FDCWD, path, O_RDONLY, 0));
	ig_probe_files_ops.stats(p.state, &st);
	assert_int_equal(st.events, 0);
	assert_true(st.ringbuf_full > 0);
	drain(&p);
	ig_probe_files_ops.stats(p.state, &st);
	print_message("  opens=%d events=%llu ringbuf_full=%llu other_lost=%llu\n", opens,
		      (unsigned long long)st.events, (unsigned long long)st.ringbuf_full,
		      (unsigned long long)st.other_lost);
	assert_true(st.events > 0);
	assert_int_equal(st.events + st.ringbuf_full, opens);
	assert_int_equal(st.other_lost, 0);
	assert_int_equal(col.n, st.events);
	probe_close(&p);
}

static int epoll_ready(int ep)
{
	struct epoll_event ev;
	return epoll_wait(ep, &ev, 1, 0);
}

static void test_consumer_is_woken_only_past_the_wakeup_threshold(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char path[PATH_MAX];

	(void)state;
	require_root();
	join(path, sizeof(path), dir, "wake");
	touch(path);
	/* 4 records' worth of bytes: the first open must not wake the
	 * consumer, a burst of 20 must. */
	probe_open_wakeup(&p, dirs, 1, true, 0, 4);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN };
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ig_probe_files_ops.epoll_fd(p.state), &ev),
			 0);
	assert_int_equal(epoll_ready(ep), 0);
	close_fd(sys_openat(AT_FDCWD, path, O_RDONLY, 0));
	assert_int_equal(epoll_ready(ep), 0);
	for (int i = 0; i < 20; i++)
		close_fd(sys_openat(AT_FDCWD, path, O_RDONLY, 0));
	assert_int_equal(epoll_ready(ep), 1);
	drain(&p);
	assert_int_equal(col.n, 21);
	close(ep);
	probe_close(&p);

	/* wakeup_records 0: the kernel's default, a wakeup per record when
	 * the consumer is idle. */
	probe_open_wakeup(&p, dirs, 1, true, 0, 0);
	ep = epoll_create1(EPOLL_CLOEXEC);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ig_probe_files_ops.epoll_fd(p.state), &ev),
			 0);
	close_fd(sys_openat(AT_FDCWD, path, O_RDONLY, 0));
	assert_int_equal(epoll_ready(ep), 1);
	drain(&p);
	assert_int_equal(col.n, 1);
	close(ep);
	probe_close(&p);
}

static void test_sixteen_long_monitor_dirs_load_and_match(void **state)
{
	struct probe p;
	static char long_dirs[15][256];
	const char *dirs[16];
	char path[PATH_MAX];

	(void)state;
	require_root();
	for (int i = 0; i < 15; i++) {
		memset(long_dirs[i], 'a' + i, 255);
		long_dirs[i][0] = '/';
		long_dirs[i][255] = 0;
		dirs[i] = long_dirs[i];
	}
	dirs[15] = dir;
	join(path, sizeof(path), dir, "sixteen");
	touch(path);
	probe_open(&p, dirs, 16, true, 0);
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY, 0);
	drain(&p);
	find_one(path);
	close_fd(fd);
	probe_close(&p);
}

/* A record for this exact path/requested pair, in order: col.v[*next]. */
static void expect_next(size_t *next, const char *path, const char *requested, long ret)
{
	if (*next >= col.n) {
		for (size_t i = 0; i < col.n; i++)
			print_message("  got: %s (requested %s)\n", col.v[i].path,
				      col.v[i].requested);
		fail_msg("expected a record for %s, got only %zu", path, col.n);
	}
	const struct got *g = &col.v[(*next)++];
	if (strcmp(g->path, path) != 0)
		fail_msg("record %zu: path '%s', expected '%s' (requested '%s')", *next - 1,
			 g->path, path, requested ? requested : "");
	if (requested) {
		assert_true(g->has_requested);
		assert_string_equal(g->requested, requested);
	} else if (g->has_requested) {
		fail_msg("record for %s has requested_path '%s', expected none", path,
			 g->requested);
	}
	assert_int_equal(g->ret, ret);
	assert_false(g->relative);
}

static void print_unexpected(size_t from)
{
	for (size_t i = from; i < col.n; i++)
		print_message("  unexpected: %s (requested %s)\n", col.v[i].path,
			      col.v[i].requested);
}

static void test_dot_and_dotdot_in_absolute_paths_are_folded_before_matching(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char sub[PATH_MAX], f[PATH_MAX], g[PATH_MAX], in[3 * PATH_MAX];
	char bdir[PATH_MAX], bout[PATH_MAX];
	struct {
		const char *
			fmt; /* %1$s = dir, %2$s = outside, %3$s = basename(dir), %4$s = basename(outside) */
		const char
			*want; /* reported path relative to dir ("" = dir), NULL = not reported */
		bool folded; /* the name passed differs from the reported path */
		bool directory;
	} cases[] = {
		{ "%1$s/./f", "/f", true, false },
		{ "%1$s//f", "/f", true, false },
		{ "%1$s/sub/../f", "/f", true, false },
		{ "%1$s/sub/./../f", "/f", true, false },
		{ "%1$s/sub//.//..//f", "/f", true, false },
		{ "%1$s/sub/", "/sub", true, true },
		{ "%1$s/.", "", true, true },
		{ "%1$s/sub/..", "", true, true },
		{ "/../../..%1$s/f", "/f", true, false },
		{ "%2$s/../%3$s/f", "/f", true, false },
		{ "%2$s/../../../../../../../../%1$s/./sub/../f", "/f", true, false },
		/* Names that only look like "." or "..": kept as they are. */
		{ "%1$s/.hidden", "/.hidden", false, false },
		{ "%1$s/..dots", "/..dots", false, false },
		{ "%1$s/sub/...", "/sub/...", false, false },
		{ "%1$s/f.", "/f.", false, false },
		/* Lexically outside: not reported. */
		{ "%1$s/../%4$s/g", NULL, false, false },
		{ "%1$s/./../%4$s/g", NULL, false, false },
		{ "%1$s/sub/../../%4$s/g", NULL, false, false },
		{ "%1$s/sub/../../%3$setera", NULL, false, true },
	};
	size_t ncases = sizeof(cases) / sizeof(cases[0]);
	long fds[sizeof(cases) / sizeof(cases[0])];

	(void)state;
	require_root();
	join(sub, sizeof(sub), dir, "sub");
	mkdir(sub, 0755);
	join(f, sizeof(f), dir, "f");
	touch(f);
	join(g, sizeof(g), outside, "g");
	touch(g);
	const char *names[] = { ".hidden", "..dots", "sub/...", "f." };
	for (size_t i = 0; i < 4; i++) {
		char n[PATH_MAX];
		join(n, sizeof(n), dir, names[i]);
		touch(n);
	}
	snprintf(bdir, sizeof(bdir), "%s", dir);
	snprintf(bout, sizeof(bout), "%s", outside);
	const char *base_dir = basename(bdir), *base_out = basename(bout);
	char etcetera[PATH_MAX + 16];
	snprintf(etcetera, sizeof(etcetera), "%setera", dir);
	mkdir(etcetera, 0755);

	probe_open(&p, dirs, 1, true, 0);
	for (size_t i = 0; i < ncases; i++) {
		snprintf(in, sizeof(in), cases[i].fmt, dir, outside, base_dir, base_out);
		fds[i] = sys_openat(AT_FDCWD, in, O_RDONLY | (cases[i].directory ? O_DIRECTORY : 0),
				    0);
		if (fds[i] < 0)
			fail_msg("open(%s): %s", in, strerror((int)-fds[i]));
	}
	drain(&p);

	size_t next = 0;
	for (size_t i = 0; i < ncases; i++) {
		char want[2 * PATH_MAX];
		if (!cases[i].want)
			continue;
		snprintf(in, sizeof(in), cases[i].fmt, dir, outside, base_dir, base_out);
		snprintf(want, sizeof(want), "%s%s", dir, cases[i].want);
		expect_next(&next, want, cases[i].folded ? in : NULL, fds[i]);
	}
	print_unexpected(next);
	assert_int_equal(col.n, next);
	for (size_t i = 0; i < ncases; i++)
		close_fd(fds[i]);
	probe_close(&p);
}

static void test_dotdot_in_relative_paths_is_folded_before_matching(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char sub[PATH_MAX], f[PATH_MAX], g[PATH_MAX], rel[PATH_MAX], rel2[PATH_MAX];
	char rel3[PATH_MAX], rel4[PATH_MAX], bdir[PATH_MAX], bout[PATH_MAX];
	long fds[8];

	(void)state;
	require_root();
	join(sub, sizeof(sub), dir, "sub");
	mkdir(sub, 0755);
	join(f, sizeof(f), dir, "f");
	touch(f);
	join(g, sizeof(g), outside, "g");
	touch(g);
	snprintf(bdir, sizeof(bdir), "%s", dir);
	snprintf(bout, sizeof(bout), "%s", outside);
	snprintf(rel, sizeof(rel), "../%s/f", basename(bdir));
	snprintf(rel2, sizeof(rel2), "../../%s/g", basename(bout));
	snprintf(rel3, sizeof(rel3), "../%s/g", basename(bout));
	snprintf(rel4, sizeof(rel4), "../%s/./sub/../f", basename(bdir));

	probe_open(&p, dirs, 1, true, 0);
	assert_int_equal(chdir(outside), 0);
	fds[0] = sys_openat(AT_FDCWD, rel, O_RDONLY, 0); /* outside -> dir/f */
	assert_int_equal(chdir(sub), 0);
	fds[1] = sys_openat(AT_FDCWD, "../f", O_RDONLY, 0);
	fds[2] = sys_openat(AT_FDCWD, "./../sub/../f", O_RDONLY, 0);
	fds[3] = sys_openat(AT_FDCWD, "..", O_RDONLY | O_DIRECTORY, 0);
	fds[4] = sys_openat(AT_FDCWD, rel2, O_RDONLY, 0); /* sub -> outside/g: not reported */
	assert_int_equal(chdir(dir), 0);
	fds[5] = sys_openat(AT_FDCWD, rel3, O_RDONLY, 0); /* dir -> outside/g: not reported */
	assert_int_equal(chdir(cwd0), 0);
	long dfd = sys_openat(AT_FDCWD, outside, O_RDONLY | O_DIRECTORY, 0);
	assert_true(dfd >= 0);
	fds[6] = sys_openat((int)dfd, rel4, O_RDONLY, 0); /* dirfd outside -> dir/f */
	fds[7] = sys_openat((int)dfd, "g", O_RDONLY, 0); /* not reported */
	for (int i = 0; i < 8; i++)
		assert_true(fds[i] >= 0);
	drain(&p);

	size_t next = 0;
	expect_next(&next, f, rel, fds[0]);
	expect_next(&next, f, "../f", fds[1]);
	expect_next(&next, f, "./../sub/../f", fds[2]);
	expect_next(&next, dir, "..", fds[3]);
	expect_next(&next, f, rel4, fds[6]);
	assert_int_equal(col.v[next - 1].dirfd, 0); /* no dirfd field: resolved */
	print_unexpected(next);
	assert_int_equal(col.n, next);
	for (int i = 0; i < 8; i++)
		close_fd(fds[i]);
	close_fd(dfd);
	probe_close(&p);
}

/* outside/link-in -> dir/secret: a string match cannot see it; real_path
 * matches the opened file. exit_args: NULL (the kernel's choice) or
 * "stash" (arguments stashed at every open's entry). */
static void symlink_into_monitored_dir(const char *exit_args)
{
	struct probe p;
	const char *dirs[] = { dir };
	char secret[PATH_MAX], link_in[PATH_MAX], dangling[PATH_MAX], missing[PATH_MAX];
	char plain[PATH_MAX];

	require_root();
	join(secret, sizeof(secret), dir, "secret");
	touch(secret);
	join(link_in, sizeof(link_in), outside, "link-in");
	unlink(link_in);
	assert_int_equal(symlink(secret, link_in), 0);
	join(missing, sizeof(missing), dir, "missing");
	join(dangling, sizeof(dangling), outside, "dangling");
	unlink(dangling);
	assert_int_equal(symlink(missing, dangling), 0);
	join(plain, sizeof(plain), outside, "plain");
	touch(plain);

	/* lexical: the name is outside, so nothing is reported. */
	probe_open(&p, dirs, 1, true, 0);
	close_fd(sys_openat(AT_FDCWD, link_in, O_RDONLY, 0));
	drain(&p);
	print_unexpected(0);
	assert_int_equal(col.n, 0);
	probe_close(&p);

	if (exit_args)
		setenv("INGRAIN_FILES_EXIT_ARGS", exit_args, 1);
	next_resolve = IG_FILE_RESOLVE_REAL_PATH;
	probe_open(&p, dirs, 1, true, 0);
	unsetenv("INGRAIN_FILES_EXIT_ARGS");
	long fd1 = sys_openat(AT_FDCWD, link_in, O_RDONLY, 0);
	struct open_how how = { .flags = O_RDWR | O_CLOEXEC, .mode = 0 };
	long fd2 = syscall(SYS_openat2, AT_FDCWD, link_in, &how, sizeof(how));
	long fd3 = syscall(SYS_open, link_in, O_WRONLY | O_APPEND, 0);
	assert_int_equal(chdir(outside), 0);
	long fd4 = sys_openat(AT_FDCWD, "link-in", O_RDONLY, 0);
	assert_int_equal(chdir(cwd0), 0);
	long fd5 = sys_openat(AT_FDCWD, dangling, O_RDONLY, 0); /* ENOENT: nothing to walk */
	long fd6 = sys_openat(AT_FDCWD, plain, O_RDONLY, 0); /* outside, no link */
	assert_true(fd1 >= 0 && fd2 >= 0 && fd3 >= 0 && fd4 >= 0 && fd6 >= 0);
	assert_int_equal(fd5, -ENOENT);
	drain(&p);

	size_t next = 0;
	expect_next(&next, secret, link_in, fd1);
	const struct got *g = &col.v[0];
	assert_header(g);
	assert_true(g->real_path);
	assert_string_equal(g->syscall, "openat");
	assert_int_equal(g->flags, O_RDONLY);
	assert_false(g->has_dirfd);
	expect_next(&next, secret, link_in, fd2);
	assert_string_equal(col.v[1].syscall, "openat2");
	assert_int_equal(col.v[1].flags, O_RDWR | O_CLOEXEC);
	assert_string_equal(col.v[1].access, "rw");
	expect_next(&next, secret, link_in, fd3);
	assert_string_equal(col.v[2].syscall, "open");
	assert_int_equal(col.v[2].flags, O_WRONLY | O_APPEND);
	expect_next(&next, secret, "link-in", fd4);
	assert_true(col.v[3].real_path);
	print_unexpected(next);
	assert_int_equal(col.n, next);

	struct ig_probe_stats st;
	ig_probe_files_ops.stats(p.state, &st);
	assert_int_equal(st.other_lost, 0);
	close_fd(fd1);
	close_fd(fd2);
	close_fd(fd3);
	close_fd(fd4);
	close_fd(fd6);
	probe_close(&p);
}

static void test_symlink_into_monitored_dir_is_caught_with_real_path(void **state)
{
	(void)state;
	symlink_into_monitored_dir(NULL);
}

static void test_symlink_into_monitored_dir_is_caught_with_stashed_exit_args(void **state)
{
	(void)state;
	symlink_into_monitored_dir("stash");
}

/* dir/link-out -> outside/target: the name is monitored, so the open is
 * reported in both modes; real_path says where it really went. */
static void test_symlink_out_of_monitored_dir_reports_the_target_with_real_path(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char target[PATH_MAX], link_out[PATH_MAX], inside[PATH_MAX];

	(void)state;
	require_root();
	join(target, sizeof(target), outside, "target");
	touch(target);
	join(link_out, sizeof(link_out), dir, "link-out");
	unlink(link_out);
	assert_int_equal(symlink(target, link_out), 0);
	join(inside, sizeof(inside), dir, "inside");
	touch(inside);

	probe_open(&p, dirs, 1, true, 0);
	long fd = sys_openat(AT_FDCWD, link_out, O_RDONLY, 0);
	assert_true(fd >= 0);
	drain(&p);
	size_t next = 0;
	expect_next(&next, link_out, NULL, fd);
	assert_false(col.v[0].real_path);
	assert_int_equal(col.n, 1);
	close_fd(fd);
	probe_close(&p);

	next_resolve = IG_FILE_RESOLVE_REAL_PATH;
	probe_open(&p, dirs, 1, true, 0);
	long fd1 = sys_openat(AT_FDCWD, link_out, O_RDONLY, 0);
	long fd2 = sys_openat(AT_FDCWD, inside, O_RDONLY, 0); /* no link: no requested_path */
	char folded[PATH_MAX + 8];
	snprintf(folded, sizeof(folded), "%s/./inside", dir);
	long fd3 = sys_openat(AT_FDCWD, folded, O_RDONLY, 0);
	long fd4 = sys_openat(AT_FDCWD, inside, O_RDONLY | O_NOFOLLOW, 0);
	assert_true(fd1 >= 0 && fd2 >= 0 && fd3 >= 0 && fd4 >= 0);
	assert_int_equal(sys_openat(AT_FDCWD, link_out, O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
	drain(&p);
	next = 0;
	expect_next(&next, target, link_out, fd1);
	assert_true(col.v[0].real_path);
	assert_header(&col.v[0]);
	expect_next(&next, inside, NULL, fd2);
	assert_true(col.v[1].real_path);
	expect_next(&next, inside, folded, fd3);
	expect_next(&next, inside, NULL, fd4);
	/* A failed open keeps the name (nothing was opened to look at). */
	assert_true(next < col.n);
	const struct got *g = &col.v[next++];
	assert_string_equal(g->path, link_out);
	assert_int_equal(g->ret, -ELOOP);
	assert_false(g->real_path);
	print_unexpected(next);
	assert_int_equal(col.n, next);
	close_fd(fd1);
	close_fd(fd2);
	close_fd(fd3);
	close_fd(fd4);
	probe_close(&p);
}

/* A cwd deeper than the kernel walks, and a name that climbs out of it into
 * the monitored directory: the string cannot be resolved at entry, so the
 * opened file's path decides at exit, in both modes. */
static void test_relative_name_escaping_a_too_deep_cwd_is_matched_at_exit(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char deep[PATH_MAX], f[PATH_MAX], g[PATH_MAX], bdir[PATH_MAX], bout[PATH_MAX];
	char up[PATH_MAX] = "", in[PATH_MAX], out[PATH_MAX];
	const int levels = 60;

	(void)state;
	require_root();
	join(f, sizeof(f), dir, "f");
	touch(f);
	join(g, sizeof(g), outside, "g");
	touch(g);
	snprintf(deep, sizeof(deep), "%s", outside);
	for (int i = 0; i < levels; i++) {
		size_t len = strlen(deep);
		snprintf(deep + len, sizeof(deep) - len, "/d");
		mkdir(deep, 0755);
		strcat(up, "../");
	}
	strcat(up, "../"); /* out of outside itself */
	snprintf(bdir, sizeof(bdir), "%s", dir);
	snprintf(bout, sizeof(bout), "%s", outside);
	snprintf(in, sizeof(in), "%s%s/f", up, basename(bdir));
	snprintf(out, sizeof(out), "%s%s/g", up, basename(bout));

	for (int mode = IG_FILE_RESOLVE_LEXICAL; mode <= IG_FILE_RESOLVE_REAL_PATH; mode++) {
		next_resolve = mode;
		probe_open(&p, dirs, 1, true, 0);
		assert_int_equal(chdir(deep), 0);
		long fd1 = sys_openat(AT_FDCWD, in, O_RDONLY, 0);
		long fd2 = sys_openat(AT_FDCWD, out, O_RDONLY, 0);
		char missing[PATH_MAX + 16];
		snprintf(missing, sizeof(missing), "%s%s/missing", up, basename(bdir));
		long fd3 = sys_openat(AT_FDCWD, missing, O_RDONLY, 0);
		assert_int_equal(chdir(cwd0), 0);
		assert_true(fd1 >= 0 && fd2 >= 0);
		assert_int_equal(fd3, -ENOENT);
		drain(&p);
		size_t next = 0;
		expect_next(&next, f, in, fd1);
		assert_true(col.v[0].real_path);
		assert_false(col.v[0].has_dirfd);
		/* The failed open has no file to look at: not reported (the
		 * name alone cannot be placed). */
		print_unexpected(next);
		assert_int_equal(col.n, next);
		close_fd(fd1);
		close_fd(fd2);
		probe_close(&p);
	}
}

static int open_err(const char *const *dirs, size_t n, struct ig_err *err)
{
	struct probe p;
	memset(&p, 0, sizeof(p));
	for (size_t i = 0; i < n; i++)
		p.dirs[i] = (char *)dirs[i];
	p.fc.monitor_dirs.n = n;
	p.fc.monitor_dirs.v = p.dirs;
	agent_conf(&p.ac);
	ig_err_init(err);
	int rv = ig_probe_files_ops.open(&p.state, &p.fc, &p.ac, &sink, err);
	if (rv == 0)
		ig_probe_files_ops.close(p.state);
	return rv;
}

static void test_bad_monitor_dirs_are_rejected_with_advice(void **state)
{
	struct ig_err err;
	const char *rel[] = { "etc" };
	const char *many[17];
	static char longd[300];

	(void)state;
	assert_int_equal(open_err(rel, 1, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "'etc' is not an absolute path"));
	assert_non_null(strstr(ig_err_str(&err), "'/etc'"));

	assert_int_equal(open_err(rel, 0, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "monitor_dirs is empty"));

	for (int i = 0; i < 17; i++)
		many[i] = "/etc";
	assert_int_equal(open_err(many, 17, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "at most 16"));

	memset(longd, 'a', sizeof(longd) - 1);
	longd[0] = '/';
	const char *lp[] = { longd };
	assert_int_equal(open_err(lp, 1, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "longer than 255 bytes"));
}

static void test_resolve_option_is_read_and_checked_by_the_loader(void **state)
{
	static const char ok[] = "probes:\n  files:\n    monitor_dirs: [/etc]\n"
				 "    resolve: real_path\n    pipelines: [p]\npipelines: {p: {}}\n";
	static const char dflt[] = "probes:\n  files:\n    pipelines: [p]\npipelines: {p: {}}\n";
	static const char typo[] = "probes:\n  files:\n    resolve: realpath\n"
				   "    pipelines: [p]\npipelines: {p: {}}\n";
	struct ig_conf *c = NULL;
	struct ig_err err;

	(void)state;
	ig_err_init(&err);
	assert_int_equal(ig_conf_load_string("t.yaml", ok, sizeof(ok) - 1, &c, &err), 0);
	const struct ig_files_conf *fc = c->probes[IG_PROBE_FILES];
	assert_int_equal(fc->resolve, IG_FILE_RESOLVE_REAL_PATH);
	ig_conf_free(c);
	c = NULL;
	assert_int_equal(ig_conf_load_string("t.yaml", dflt, sizeof(dflt) - 1, &c, &err), 0);
	fc = c->probes[IG_PROBE_FILES];
	assert_int_equal(fc->resolve, IG_FILE_RESOLVE_LEXICAL);
	ig_conf_free(c);
	c = NULL;
	assert_int_equal(ig_conf_load_string("t.yaml", typo, sizeof(typo) - 1, &c, &err), -EINVAL);
	print_message("  %s\n", ig_err_str(&err));
	assert_non_null(strstr(ig_err_str(&err), "resolve"));
	assert_non_null(strstr(ig_err_str(&err), "did you mean 'real_path'"));
	assert_null(c);
}

static void test_sysprep_as_root_leaves_tracefs_mounted(void **state)
{
	struct ig_agent_conf ac;
	struct ig_err err;

	(void)state;
	require_root();
	agent_conf(&ac);
	ig_err_init(&err);
	int rv = ig_sysprep(&ac, &err);
	if (rv < 0)
		fail_msg("ig_sysprep: %s", ig_err_str(&err));
	assert_int_equal(access("/sys/kernel/tracing/events/syscalls", F_OK), 0);
}

static int group_setup(void **state)
{
	(void)state;
	ig_log_init("test", IG_LOG_WARN, IG_LOG_LOGFMT);
	ig_time_init();
	have_root = geteuid() == 0;
	if (!getcwd(cwd0, sizeof(cwd0)))
		return -1;
	char t1[] = "/tmp/ig-files-XXXXXX", t2[] = "/tmp/ig-files-out-XXXXXX";
	if (!mkdtemp(t1) || !mkdtemp(t2))
		return -1;
	/* The kernel reports resolved paths: compare with the real path. */
	if (!realpath(t1, dir) || !realpath(t2, outside))
		return -1;
	if (have_root) {
		struct ig_agent_conf ac;
		struct ig_err err;
		agent_conf(&ac);
		ig_err_init(&err);
		if (ig_sysprep(&ac, &err) < 0) {
			print_message("ig_sysprep failed: %s\n", ig_err_str(&err));
			return -1;
		}
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[3 * PATH_MAX + 64];

	(void)state;
	if (chdir(cwd0) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%setera'", dir, outside, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_monitor_dirs_are_rejected_with_advice),
		cmocka_unit_test(test_resolve_option_is_read_and_checked_by_the_loader),
		cmocka_unit_test(test_sysprep_as_root_leaves_tracefs_mounted),
		cmocka_unit_test(test_absolute_open_inside_reports_exact_fields),
		cmocka_unit_test(test_relative_path_from_cwd_is_resolved),
		cmocka_unit_test(test_relative_path_from_dirfd_is_resolved),
		cmocka_unit_test(test_failed_open_reports_negative_errno),
		cmocka_unit_test(test_include_failed_false_drops_failed_opens),
		cmocka_unit_test(test_opens_outside_monitor_dirs_are_not_reported),
		cmocka_unit_test(test_trailing_slash_and_several_dirs_match),
		cmocka_unit_test(test_open_creat_and_openat2_are_named),
		cmocka_unit_test(test_path_longer_than_buffer_is_truncated),
		cmocka_unit_test(test_unresolvable_relative_path_is_reported_only_for_root),
		cmocka_unit_test(test_full_ring_buffer_counts_every_lost_event),
		cmocka_unit_test(test_consumer_is_woken_only_past_the_wakeup_threshold),
		cmocka_unit_test(test_sixteen_long_monitor_dirs_load_and_match),
		cmocka_unit_test(test_dot_and_dotdot_in_absolute_paths_are_folded_before_matching),
		cmocka_unit_test(test_dotdot_in_relative_paths_is_folded_before_matching),
		cmocka_unit_test(test_symlink_into_monitored_dir_is_caught_with_real_path),
		cmocka_unit_test(test_symlink_into_monitored_dir_is_caught_with_stashed_exit_args),
		cmocka_unit_test(
			test_symlink_out_of_monitored_dir_reports_the_target_with_real_path),
		cmocka_unit_test(test_relative_name_escaping_a_too_deep_cwd_is_matched_at_exit),
	};
	/* Once with the default variant (syscall tracepoints), once with
	 * tp_btf where the kernel runs it. */
	int failed = cmocka_run_group_tests_name("files probe, default variant", tests, group_setup,
						 group_teardown);
	if (geteuid() != 0)
		return failed;
	if (!ig_bpf_has_tp_btf()) {
		print_message("NOTE: this kernel cannot run tp_btf programs; the tp_btf "
			      "variant of the files probe was not tested\n");
		return failed;
	}
	setenv("INGRAIN_FILES_VARIANT", "tp_btf", 1);
	failed += cmocka_run_group_tests_name("files probe, tp_btf variant", tests, group_setup,
					      group_teardown);
	return failed;
}
