/* test_probe_file_io: the file I/O volume probe against the real kernel.
 *
 * Each test loads the probe with monitor_dirs set to a fresh mkdtemp()
 * directory, does exactly known reads and writes with syscall(2) (read,
 * write, pread64, pwrite64, readv, writev, preadv, pwritev, preadv2,
 * pwritev2), makes the probe read its tables
 * (consume() after the interval, or close()) and compares the "file.io"
 * records with what it did: bytes and calls per path, deltas between
 * reads, nothing for files outside monitor_dirs or for pipes. Needs root:
 * without it the tests are skipped with a message, or fail when CI=true.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_require.h"

#include "bpf_util.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "sysprep.h"

#define MAX_GOT 1024

struct got {
	char kind[16], probe[16], comm[IG_COMM_LEN], path[1024];
	uint32_t pid, uid, gid, ppid;
	uint64_t cgroup_id, rb, wb, ro, wo, interval_ns;
	int path_unknown, truncated;
};

static struct {
	struct got v[MAX_GOT];
	size_t n;
} col;

static char dir[PATH_MAX]; /* monitored */
static char outside[PATH_MAX]; /* a sibling, not monitored */
static bool have_root;
static pid_t watched_child; /* records of this pid are kept too */

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static void sink_emit(void *ctx, struct ig_record *r)
{
	(void)ctx;
	if (r->pid != (uint32_t)getpid() && (!watched_child || r->pid != (uint32_t)watched_child))
		return;
	if (col.n == MAX_GOT)
		return;
	struct got *g = &col.v[col.n++];
	memset(g, 0, sizeof(*g));
	copy_str(g->kind, sizeof(g->kind), r->kind);
	copy_str(g->probe, sizeof(g->probe), r->probe);
	copy_str(g->comm, sizeof(g->comm), r->comm);
	g->pid = r->pid;
	g->uid = r->uid;
	g->gid = r->gid;
	g->ppid = r->ppid;
	g->cgroup_id = r->cgroup_id;
	const struct ig_field *f;
	if ((f = ig_record_field(r, "path")))
		copy_str(g->path, sizeof(g->path), f->s);
	if ((f = ig_record_field(r, "read_bytes")))
		g->rb = f->u;
	if ((f = ig_record_field(r, "write_bytes")))
		g->wb = f->u;
	if ((f = ig_record_field(r, "read_ops")))
		g->ro = f->u;
	if ((f = ig_record_field(r, "write_ops")))
		g->wo = f->u;
	if ((f = ig_record_field(r, "interval_ns")))
		g->interval_ns = f->u;
	if ((f = ig_record_field(r, "path_unknown")))
		g->path_unknown = (int)f->u;
	if ((f = ig_record_field(r, "truncated")))
		g->truncated = (int)f->u;
}

static const struct ig_sink sink = { sink_emit, NULL };

struct probe {
	void *state;
	char *dirs[32];
	struct ig_file_io_conf fc;
	struct ig_agent_conf ac;
};

static void agent_conf(struct ig_agent_conf *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->poll_interval_ns = 100 * IG_NSEC_PER_MSEC;
	ac->mount_tracefs = true;
	ac->mount_bpffs = true;
}

static void require_root(void)
{
	ig_test_require(have_root, "test_probe_file_io needs root to load eBPF programs",
			"run it as root (sudo ctest -R probe_file_io)");
}

static int try_open(struct probe *p, const char *const *dirs, size_t n, uint64_t max_entries,
		    struct ig_err *err)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p->dirs[i] = (char *)dirs[i];
	p->fc.c.enabled = true;
	p->fc.monitor_dirs.n = n;
	p->fc.monitor_dirs.v = p->dirs;
	p->fc.interval_ns = 5 * IG_NSEC_PER_MSEC;
	p->fc.max_entries = max_entries;
	agent_conf(&p->ac);
	ig_err_init(err);
	return ig_probe_file_io_ops.open(&p->state, &p->fc, &p->ac, &sink, err);
}

static void probe_open(struct probe *p, const char *const *dirs, size_t n, uint64_t max_entries)
{
	struct ig_err err;
	int rv = try_open(p, dirs, n, max_entries, &err);
	if (rv < 0)
		fail_msg("file_io probe open failed: %d %s", rv, ig_err_str(&err));
	assert_non_null(p->state);
	assert_int_equal(ig_probe_file_io_ops.epoll_fd(p->state), -1);
	col.n = 0;
}

/* One read of the tables: waits out the interval, then consume(). */
static void pass(struct probe *p)
{
	struct timespec ts = { 0, 6 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	assert_true(ig_probe_file_io_ops.consume(p->state) >= 0);
}

static void probe_close(struct probe *p)
{
	ig_probe_file_io_ops.close(p->state);
	p->state = NULL;
}

static void join(char *out, size_t cap, const char *a, const char *b)
{
	int n = snprintf(out, cap, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < cap);
}

static int open_rw(const char *path)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail_msg("open(%s): %s", path, strerror(errno));
	return fd;
}

static long sys_write(int fd, const void *b, size_t n)
{
	return syscall(SYS_write, fd, b, n);
}

static long sys_read(int fd, void *b, size_t n)
{
	return syscall(SYS_read, fd, b, n);
}

/* The one record with this path and pid; fails when there is not exactly one. */
static const struct got *find_one(const char *path, pid_t pid)
{
	const struct got *hit = NULL;
	int n = 0;

	for (size_t i = 0; i < col.n; i++)
		if (strcmp(col.v[i].path, path) == 0 && col.v[i].pid == (uint32_t)pid) {
			hit = &col.v[i];
			n++;
		}
	if (n != 1) {
		for (size_t i = 0; i < col.n; i++)
			print_message("  got: pid=%u %s r=%llu/%llu w=%llu/%llu\n", col.v[i].pid,
				      col.v[i].path, (unsigned long long)col.v[i].rb,
				      (unsigned long long)col.v[i].ro,
				      (unsigned long long)col.v[i].wb,
				      (unsigned long long)col.v[i].wo);
		fail_msg("expected exactly one record for %s (pid %d), got %d", path, (int)pid, n);
	}
	return hit;
}

static void assert_counts(const struct got *g, uint64_t rb, uint64_t ro, uint64_t wb, uint64_t wo)
{
	if (g->rb != rb || g->ro != ro || g->wb != wb || g->wo != wo)
		fail_msg("%s: read %llu bytes/%llu ops, write %llu/%llu; expected %llu/%llu, "
			 "%llu/%llu",
			 g->path, (unsigned long long)g->rb, (unsigned long long)g->ro,
			 (unsigned long long)g->wb, (unsigned long long)g->wo,
			 (unsigned long long)rb, (unsigned long long)ro, (unsigned long long)wb,
			 (unsigned long long)wo);
}

static void assert_header(const struct got *g)
{
	char comm[IG_COMM_LEN] = "";
	FILE *f = fopen("/proc/self/comm", "r");

	assert_string_equal(g->kind, "file.io");
	assert_string_equal(g->probe, "file_io");
	assert_int_equal(g->pid, getpid());
	assert_int_equal(g->ppid, getppid());
	assert_int_equal(g->uid, getuid());
	assert_int_equal(g->gid, getgid());
	assert_true(g->cgroup_id != 0);
	assert_true(g->interval_ns > 0);
	assert_false(g->path_unknown);
	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	assert_string_equal(g->comm, comm);
}

static void test_every_read_and_write_call_is_counted_exactly_per_path(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char a[PATH_MAX], b[PATH_MAX], buf[4096];

	(void)state;
	require_root();
	join(a, sizeof(a), dir, "a");
	join(b, sizeof(b), dir, "b");
	memset(buf, 'x', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int fa = open_rw(a), fb = open_rw(b);

	/* a: writes 100 + 50 + (30 + 20) = 200 bytes in 3 calls. */
	assert_int_equal(sys_write(fa, buf, 100), 100);
	assert_int_equal(syscall(SYS_pwrite64, fa, buf, 50, 1000), 50);
	struct iovec wv[2] = { { buf, 30 }, { buf, 20 } };
	assert_int_equal(syscall(SYS_writev, fa, wv, 2), 50);
	/* ... reads 64 + 10 + (8 + 8) = 90 bytes in 3 calls, and one read
	 * at the end of the file (0 bytes, a call all the same). */
	assert_int_equal(lseek(fa, 0, SEEK_SET), 0);
	assert_int_equal(sys_read(fa, buf, 64), 64);
	assert_int_equal(syscall(SYS_pread64, fa, buf, 10, 5), 10);
	struct iovec rv[2] = { { buf, 8 }, { buf + 8, 8 } };
	assert_int_equal(syscall(SYS_readv, fa, rv, 2), 16);
	assert_int_equal(syscall(SYS_pread64, fa, buf, 10, 5000), 0);
	/* A failed call (bad buffer) counts nothing. */
	assert_int_equal(sys_read(fa, (void *)8, 10), -1);
	/* b: 7 bytes written, 3 read; then the positioned vector calls:
	 * pwritev 5 + pwritev2 6 bytes, preadv 4 + preadv2 2 bytes. */
	assert_int_equal(sys_write(fb, buf, 7), 7);
	assert_int_equal(syscall(SYS_pread64, fb, buf, 100, 4), 3);
	struct iovec v5 = { buf, 5 }, v6 = { buf, 6 }, v4 = { buf, 4 }, v2 = { buf, 2 };
	assert_int_equal(syscall(SYS_pwritev, fb, &v5, 1, 0, 0), 5);
	assert_int_equal(syscall(SYS_pwritev2, fb, &v6, 1, 0, 0, 0), 6);
	assert_int_equal(syscall(SYS_preadv, fb, &v4, 1, 0, 0), 4);
	assert_int_equal(syscall(SYS_preadv2, fb, &v2, 1, 0, 0, 0), 2);
	pass(&p);

	const struct got *g = find_one(a, getpid());
	assert_header(g);
	assert_counts(g, 90, 4, 200, 3);
	g = find_one(b, getpid());
	assert_counts(g, 3 + 4 + 2, 3, 7 + 5 + 6, 3);
	assert_int_equal(col.n, 2);
	close(fa);
	close(fb);
	probe_close(&p);
}

static void test_each_read_reports_the_change_since_the_previous_one(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char a[PATH_MAX], buf[512];

	(void)state;
	require_root();
	join(a, sizeof(a), dir, "delta");
	memset(buf, 'y', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int fd = open_rw(a);
	assert_int_equal(sys_write(fd, buf, 300), 300);
	pass(&p);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(a, getpid()), 0, 0, 300, 1);

	col.n = 0;
	pass(&p); /* nothing happened: nothing reported */
	assert_int_equal(col.n, 0);

	assert_int_equal(sys_write(fd, buf, 11), 11);
	assert_int_equal(syscall(SYS_pread64, fd, buf, 100, 0), 100);
	pass(&p);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(a, getpid()), 100, 1, 11, 1);

	/* What happened since the last read is reported on close. */
	col.n = 0;
	assert_int_equal(sys_write(fd, buf, 5), 5);
	probe_close(&p);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(a, getpid()), 0, 0, 5, 1);
	close(fd);
}

static void test_files_outside_monitor_dirs_and_pipes_are_not_counted(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char o[PATH_MAX], etcetera[PATH_MAX + 32], buf[256];
	int pfd[2];

	(void)state;
	require_root();
	join(o, sizeof(o), outside, "o");
	/* "<dir>etera" shares the monitored prefix but is another directory. */
	snprintf(etcetera, sizeof(etcetera), "%setera", dir);
	mkdir(etcetera, 0755);
	char sib[PATH_MAX + 40];
	snprintf(sib, sizeof(sib), "%s/f", etcetera);
	memset(buf, 'z', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int fo = open_rw(o), fs = open_rw(sib);
	assert_int_equal(sys_write(fo, buf, 100), 100);
	assert_int_equal(sys_write(fs, buf, 100), 100);
	assert_int_equal(syscall(SYS_pread64, fo, buf, 10, 0), 10);
	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(sys_write(pfd[1], buf, 10), 10);
	assert_int_equal(sys_read(pfd[0], buf, 10), 10);
	int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(dn >= 0);
	assert_int_equal(sys_write(dn, buf, 10), 10);
	/* A monitored file read through a dup'd fd is counted under its path. */
	char in[PATH_MAX];
	join(in, sizeof(in), dir, "in");
	int fi = open_rw(in);
	int fi2 = dup(fi);
	assert_int_equal(sys_write(fi2, buf, 42), 42);
	pass(&p);

	for (size_t i = 0; i < col.n; i++)
		if (strcmp(col.v[i].path, in) != 0)
			print_message("  unexpected: %s\n", col.v[i].path);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(in, getpid()), 0, 0, 42, 1);
	close(fo);
	close(fs);
	close(fi);
	close(fi2);
	close(dn);
	close(pfd[0]);
	close(pfd[1]);
	probe_close(&p);
}

static void test_processes_are_reported_separately(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char a[PATH_MAX], buf[128];

	(void)state;
	require_root();
	join(a, sizeof(a), dir, "shared");
	memset(buf, 'c', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int fd = open_rw(a);
	assert_int_equal(sys_write(fd, buf, 10), 10);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* The inherited fd, and a fresh one on the same file. */
		int ok = sys_write(fd, buf, 20) == 20;
		int f2 = open(a, O_RDONLY);
		ok = ok && f2 >= 0 && syscall(SYS_pread64, f2, buf, 25, 0) == 25;
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	watched_child = child;
	pass(&p);
	watched_child = 0;

	assert_counts(find_one(a, getpid()), 0, 0, 10, 1);
	const struct got *g = find_one(a, child);
	assert_counts(g, 25, 1, 20, 1);
	assert_int_equal(g->ppid, getpid());
	assert_int_equal(col.n, 2);
	close(fd);
	probe_close(&p);
}

/* An editor's save: a new file renamed over the old name. Both inodes were
 * written under the same path within one interval: one record. */
static void test_a_file_replaced_by_rename_is_one_record_per_path(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char a[PATH_MAX], tmp[PATH_MAX], buf[64];

	(void)state;
	require_root();
	join(a, sizeof(a), dir, "saved");
	join(tmp, sizeof(tmp), dir, "saved.tmp");
	memset(buf, 'e', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int f1 = open_rw(a);
	assert_int_equal(sys_write(f1, buf, 10), 10);
	int f2 = open_rw(tmp);
	assert_int_equal(rename(tmp, a), 0);
	/* The walk of f2's dentry now gives the final name. */
	assert_int_equal(sys_write(f2, buf, 20), 20);
	pass(&p);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(a, getpid()), 0, 0, 30, 2);
	close(f1);
	close(f2);
	probe_close(&p);
}

/* A file renamed into the monitored directory is counted from the next
 * read of the tables on (the kernel's verdict cache is emptied there). */
static void test_a_file_renamed_into_monitor_dirs_is_counted_after_the_next_read(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char o[PATH_MAX], in[PATH_MAX], buf[64];

	(void)state;
	require_root();
	join(o, sizeof(o), outside, "mover");
	join(in, sizeof(in), dir, "moved");
	memset(buf, 'm', sizeof(buf));
	probe_open(&p, dirs, 1, 0);
	int fd = open_rw(o);
	assert_int_equal(sys_write(fd, buf, 10), 10);
	pass(&p);
	assert_int_equal(col.n, 0);
	assert_int_equal(rename(o, in), 0);
	assert_int_equal(sys_write(fd, buf, 17), 17);
	pass(&p);
	assert_int_equal(col.n, 1);
	assert_counts(find_one(in, getpid()), 0, 0, 17, 1);
	close(fd);
	probe_close(&p);
}

static void test_a_full_table_counts_evictions_as_lost(void **state)
{
	struct probe p;
	const char *dirs[] = { dir };
	char sub[PATH_MAX], f[PATH_MAX + 16], buf[8] = "1234567";
	const int files = 300;

	(void)state;
	require_root();
	join(sub, sizeof(sub), dir, "many");
	mkdir(sub, 0755);
	probe_open(&p, dirs, 1, 64);
	for (int i = 0; i < files; i++) {
		snprintf(f, sizeof(f), "%s/%d", sub, i);
		int fd = open_rw(f);
		assert_int_equal(sys_write(fd, buf, 7), 7);
		close(fd);
	}
	pass(&p);
	struct ig_probe_stats st;
	ig_probe_file_io_ops.stats(p.state, &st);
	print_message("  files=%d records=%zu other_lost=%llu\n", files, col.n,
		      (unsigned long long)st.other_lost);
	assert_true(col.n <= 64);
	assert_true(col.n > 0);
	/* Every key that is not in the table any more was evicted. */
	assert_true(st.other_lost >= (uint64_t)(files - 64));
	assert_int_equal(st.events, col.n);
	for (size_t i = 0; i < col.n; i++)
		assert_counts(&col.v[i], 0, 0, 7, 1);
	probe_close(&p);
}

static void test_bad_monitor_dirs_are_rejected_with_advice(void **state)
{
	struct probe p;
	struct ig_err err;
	const char *rel[] = { "var/log" };

	(void)state;
	assert_int_equal(try_open(&p, rel, 1, 0, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "probes.file_io.monitor_dirs: 'var/log' is not an "
						 "absolute path"));
	assert_non_null(strstr(ig_err_str(&err), "'/var/log'"));
	assert_int_equal(try_open(&p, rel, 0, 0, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "probes.file_io.monitor_dirs is empty"));
	assert_null(p.state);
}

/* Opens with INGRAIN_FILE_IO_VARIANT=v (NULL: unset) and returns the result;
 * *got: the variant that runs ("" when the open failed). */
static int open_variant(const char *v, const char **got, struct ig_err *err)
{
	const char *old = getenv("INGRAIN_FILE_IO_VARIANT");
	char *saved = old ? strdup(old) : NULL;
	const char *dirs[] = { "/tmp" };
	struct probe p;

	if (v)
		setenv("INGRAIN_FILE_IO_VARIANT", v, 1);
	else
		unsetenv("INGRAIN_FILE_IO_VARIANT");
	int rv = try_open(&p, dirs, 1, 0, err);
	*got = "";
	if (rv == 0) {
		struct ig_probe_stats st;
		ig_probe_file_io_ops.stats(p.state, &st);
		*got = st.variant;
		ig_probe_file_io_ops.close(p.state);
	}
	if (saved)
		setenv("INGRAIN_FILE_IO_VARIANT", saved, 1);
	else
		unsetenv("INGRAIN_FILE_IO_VARIANT");
	free(saved);
	return rv;
}

/* fexit where the kernel allows it; a forced variant the kernel cannot run
 * is refused, never replaced. */
static void test_variant_is_chosen_by_probing_and_overrides_are_checked(void **state)
{
	bool fexit = ig_bpf_has_fentry() && ig_bpf_has_fentry_target("__x64_sys_read");
	struct ig_err err;
	const char *got;

	(void)state;
	require_root();
	assert_int_equal(open_variant(NULL, &got, &err), 0);
	if (fexit)
		assert_string_equal(got, "fexit");
	else
		assert_true(strcmp(got, "tracepoint") == 0 || strcmp(got, "tp_btf") == 0);
	print_message("  default variant on this kernel: %s\n", got);
	int rv = open_variant("fexit", &got, &err);
	if (fexit) {
		assert_int_equal(rv, 0);
		assert_string_equal(got, "fexit");
	} else {
		assert_int_equal(rv, -EOPNOTSUPP);
		assert_non_null(strstr(ig_err_str(&err), "cannot attach fexit programs"));
	}
	assert_int_equal(open_variant("kprobe", &got, &err), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "use fexit, tracepoint or tp_btf"));
}

static void test_monitor_dirs_root_counts_every_regular_file(void **state)
{
	struct probe p;
	const char *dirs[] = { "/" };
	char o[PATH_MAX], buf[16] = "abc";

	(void)state;
	require_root();
	join(o, sizeof(o), outside, "anywhere");
	probe_open(&p, dirs, 1, 0);
	int fd = open_rw(o);
	assert_int_equal(sys_write(fd, buf, 3), 3);
	pass(&p);
	assert_counts(find_one(o, getpid()), 0, 0, 3, 1);
	close(fd);
	probe_close(&p);
}

static int group_setup(void **state)
{
	(void)state;
	ig_log_init("test", IG_LOG_WARN, IG_LOG_LOGFMT);
	ig_time_init();
	have_root = geteuid() == 0;
	char t1[] = "/tmp/ig-fio-XXXXXX", t2[] = "/tmp/ig-fio-out-XXXXXX";
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
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%setera'", dir, outside, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_monitor_dirs_are_rejected_with_advice),
		cmocka_unit_test(test_every_read_and_write_call_is_counted_exactly_per_path),
		cmocka_unit_test(test_each_read_reports_the_change_since_the_previous_one),
		cmocka_unit_test(test_files_outside_monitor_dirs_and_pipes_are_not_counted),
		cmocka_unit_test(test_processes_are_reported_separately),
		cmocka_unit_test(test_a_file_replaced_by_rename_is_one_record_per_path),
		cmocka_unit_test(
			test_a_file_renamed_into_monitor_dirs_is_counted_after_the_next_read),
		cmocka_unit_test(test_a_full_table_counts_evictions_as_lost),
		cmocka_unit_test(test_monitor_dirs_root_counts_every_regular_file),
		cmocka_unit_test(test_variant_is_chosen_by_probing_and_overrides_are_checked),
	};
	/* Once with the default variant (syscall tracepoints), once with
	 * tp_btf where the kernel runs it. */
	int failed = cmocka_run_group_tests_name("file_io probe, default variant", tests,
						 group_setup, group_teardown);
	if (geteuid() != 0 || ig_test_default_variant_only())
		return failed;
	if (!ig_bpf_has_tp_btf()) {
		print_message("NOTE: this kernel cannot run tp_btf programs; the tp_btf "
			      "variant of the file_io probe was not tested\n");
		return failed;
	}
	setenv("INGRAIN_FILE_IO_VARIANT", "tp_btf", 1);
	failed += cmocka_run_group_tests_name("file_io probe, tp_btf variant", tests, group_setup,
					      group_teardown);
	return failed;
}
