// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* files.bpf.c: the file-access probe, kernel side. Reports open(2),
 * openat(2), openat2(2) and creat(2) calls whose path lies under one of the
 * configured monitor_dirs, with their result. Modelled on libbpf-tools'
 * opensnoop; docs/probes.md has the design and the measurements behind it.
 *
 * Hooks: this kernel family may lack kprobes and refuse fentry, so the probe
 * uses syscall tracepoints. Two interchangeable variants share all logic:
 *   - tp_btf/sys_enter + tp_btf/sys_exit: one program pair for every syscall,
 *     checking the syscall number first. Cheaper per open than the perf-based
 *     syscall tracepoints, but needs tp_btf (BTF-enabled raw tracepoints).
 *   - tracepoint/syscalls/sys_{enter,exit}_<open call>: the portable baseline.
 * User space enables exactly one variant (set_autoload) after feature probing.
 *
 * On syscall entry the user path is read and, when relative, resolved to an
 * absolute path by walking the dentries of the cwd or of the dirfd's file up
 * to the task's root, crossing mount points. The monitor_dirs filter runs
 * here, in the kernel: only matching opens are stashed (keyed by thread id)
 * in the "inflight" hash map. On exit the stash gets the result and goes to
 * the ring buffer as a variable-sized record, then is deleted. A filtered-out
 * open therefore costs one path read, a few byte compares and one failed hash
 * lookup on exit.
 *
 * Configuration is .rodata, written by user space before load, so the
 * verifier sees constants and prunes unused monitor_dirs slots.
 */
#include "ig_bpf.h"
#include "files.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PATH_MASK (IG_FILE_PATH_MAX - 1)
#define NAME_MASK 255 /* NAME_MAX */
#define WALK_STEPS 48 /* path components + mount crossings resolved for a relative path */
#define WALK_MASK 63
#define LEN_MOUNT 0xffffffffu /* lens[] marker: a mount crossing, no name */
#define DOT_SLASH_MAX 4

/* x86_64 syscall numbers for the tp_btf variant. */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437

const volatile __u32 ig_ndirs = 0;
const volatile bool ig_monitor_all = false; /* monitor_dirs contains "/" */
const volatile bool ig_include_failed = true;
const volatile __u64 ig_wakeup_bytes = 0; /* 0: let the kernel decide */
const volatile __u32 ig_dir_len[IG_FILE_MAX_DIRS] = {};
const volatile char ig_dirs[IG_FILE_MAX_DIRS][IG_FILE_DIR_MAX] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* user space sets agent.ringbuf_bytes */
} events SEC(".maps");

/* Opens that passed the filter, between entry and exit. Not preallocated:
 * memory is used only by opens in flight. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct ig_file_event);
} inflight SEC(".maps");

IG_LOST_MAP(lost);

/* Per-CPU working memory: the event under construction, with slack after
 * path so that writes at a masked offset with a masked length stay inside
 * the map value in the verifier's eyes (the code itself never writes past
 * path[IG_FILE_PATH_MAX - 1]). */
struct scratch {
	struct ig_file_event ev;
	char slack[IG_FILE_PATH_MAX];
	char rel[IG_FILE_PATH_MAX];
	const unsigned char *names[WALK_MASK + 1];
	__u32 lens[WALK_MASK + 1];
	__u32 nsteps, done, off, r, base_only;
	__u64 owner; /* pid_tgid of the program run using this buffer */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Is the scratch event's path (path_len bytes) under a monitor_dirs entry?
 * Boundary first: the byte after the prefix must end the path or start a
 * component, which rejects most paths before comparing anything.
 *
 * A global (non-static) function: the verifier checks it once, on its own,
 * instead of once per call site and caller state; with 16 prefixes of 255
 * bytes, inlining exceeded the verifier's 1M-instruction budget. */
__noinline int ig_files_match(void)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;
	if (ig_monitor_all)
		return 1;
	const char *path = s->ev.path;
	__u32 len = s->ev.path_len;
	for (__u32 i = 0; i < IG_FILE_MAX_DIRS; i++) {
		if (i >= ig_ndirs)
			return 0;
		__u32 dl = ig_dir_len[i];
		if (dl > len || dl >= IG_FILE_DIR_MAX)
			continue;
		char next = path[dl & PATH_MASK];
		if (next != '/' && next != 0)
			continue;
		for (__u32 j = 0; j < IG_FILE_DIR_MAX; j++) {
			if (j >= dl)
				return 1;
			if (path[j] != ig_dirs[i][j])
				break;
		}
	}
	return 0;
}

/* Resolves s->ev.path (relative, len bytes) against dirfd into an absolute
 * path. Returns the new length, or -1 when the base directory cannot be
 * resolved (path left as is). Sets IG_FILE_F_TRUNCATED when the result does
 * not fit.
 *
 * Verifier note: loop-carried values (step count, write offset) live in the
 * per-CPU scratch value and are re-read through volatile loads, so every
 * iteration reaches the loop head with the same register state and the
 * verifier prunes instead of exploring each combination of branches. */
static __always_inline long resolve_relative(struct scratch *s, int dirfd, __u32 len)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct path root = {}, base = {};

	/* Whole struct path / qstr reads: one helper call each instead of
	 * one per member (each call costs ~25 ns here). */
	BPF_CORE_READ_INTO(&root, fs, root);
	if (dirfd == AT_FDCWD) {
		BPF_CORE_READ_INTO(&base, fs, pwd);
	} else {
		struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
		struct file **fda = BPF_CORE_READ(fdt, fd);
		struct file *f = NULL;

		if (dirfd < 0 || (__u32)dirfd >= BPF_CORE_READ(fdt, max_fds))
			return -1;
		bpf_probe_read_kernel(&f, sizeof(f), &fda[dirfd]);
		if (!f)
			return -1;
		BPF_CORE_READ_INTO(&base, f, f_path);
	}
	struct dentry *d = base.dentry;
	struct vfsmount *m = base.mnt;
	if (!d || !m)
		return -1;

	/* Leaf to root: names[i]/lens[i] per step, LEN_MOUNT for a step
	 * that crossed from a mount's root to its mount point. */
	struct mount *mnt = container_of(m, struct mount, mnt);
	struct dentry *mnt_root = BPF_CORE_READ(m, mnt_root);
	s->done = 0;
	s->nsteps = 0;
	for (__u32 i = 0; i < WALK_STEPS; i++) {
		if (d == root.dentry && m == root.mnt) {
			s->done = 1;
			s->nsteps = i;
			break;
		}
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == mnt_root || d == parent) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
			/* The global root without passing the task's root (cwd
			 * outside a chroot), or a disconnected dentry. */
			if (mp == mnt || d != mnt_root)
				break;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			m = (struct vfsmount *)((char *)mp +
						bpf_core_field_offset(struct mount, mnt));
			mnt_root = BPF_CORE_READ(m, mnt_root);
			s->lens[i & WALK_MASK] = LEN_MOUNT;
			continue;
		}
		struct qstr q = {};
		BPF_CORE_READ_INTO(&q, d, d_name);
		s->names[i & WALK_MASK] = q.name;
		s->lens[i & WALK_MASK] = q.len;
		d = parent;
	}
	if (!*(volatile __u32 *)&s->done)
		return -1;

	/* The relative name moves aside; a leading "./" is dropped. */
	__u32 copy = len + 1;
	if (copy > IG_FILE_PATH_MAX)
		copy = IG_FILE_PATH_MAX;
	bpf_probe_read_kernel(s->rel, copy, s->ev.path);
	__u32 r = 0;
	for (int k = 0; k < DOT_SLASH_MAX; k++) {
		if (s->rel[r & PATH_MASK] == '.' && s->rel[(r + 1) & PATH_MASK] == '/')
			r += 2;
		else
			break;
	}
	s->r = r;
	s->base_only = s->rel[r & PATH_MASK] == 0 ||
		       (s->rel[r & PATH_MASK] == '.' && s->rel[(r + 1) & PATH_MASK] == 0);

	/* Root to leaf: "/" name per component. */
	s->off = 0;
	for (int k = WALK_STEPS - 1; k >= 0; k--) {
		if ((__u32)k >= *(volatile __u32 *)&s->nsteps)
			continue;
		__u32 l = s->lens[k & WALK_MASK];
		if (l == LEN_MOUNT)
			continue;
		l &= NAME_MASK;
		__u32 off = *(volatile __u32 *)&s->off & PATH_MASK;
		if (off + 1 + l > IG_FILE_PATH_MAX - 1) {
			s->ev.eflags |= IG_FILE_F_TRUNCATED;
			s->base_only = 1;
			break;
		}
		s->ev.path[off] = '/';
		bpf_probe_read_kernel(&s->ev.path[off + 1], l, s->names[k & WALK_MASK]);
		s->off = off + 1 + l;
	}

	__u32 off = *(volatile __u32 *)&s->off & PATH_MASK;
	if (*(volatile __u32 *)&s->base_only) {
		if (off == 0) {
			s->ev.path[0] = '/';
			off = 1;
		}
		s->ev.path[off & PATH_MASK] = 0;
		return off;
	}
	if (off + 1 >= IG_FILE_PATH_MAX - 1) {
		s->ev.eflags |= IG_FILE_F_TRUNCATED;
		s->ev.path[off] = 0;
		return off;
	}
	s->ev.path[off] = '/';
	off += 1;
	__u32 room = IG_FILE_PATH_MAX - off; /* bytes incl. NUL, 2..511 */
	r = *(volatile __u32 *)&s->r & PATH_MASK;
	long n = bpf_probe_read_kernel_str(&s->ev.path[off & PATH_MASK], room & PATH_MASK,
					   &s->rel[r]);
	if (n <= 0) {
		s->ev.path[off & PATH_MASK] = 0;
		return off;
	}
	/* The relative part did not fit when it is longer than what was copied. */
	if ((__u32)n == room && len - r > (__u32)n - 1)
		s->ev.eflags |= IG_FILE_F_TRUNCATED;
	return off + n - 1;
}

static __always_inline int on_enter(__u16 sc, int dirfd, const char *upath, __u64 flags, __u64 mode)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct ig_file_event *ev = &s->ev;
	__u64 me = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)me;

	/* BPF programs on syscall tracepoints run with preemption disabled
	 * today; should a kernel run them preemptibly, another task's run
	 * on this CPU could reuse the buffer meanwhile. The owner check
	 * before the stash insert turns that into a counted loss instead of
	 * a mixed-up event. */
	s->owner = me;
	long n = bpf_probe_read_user_str(ev->path, IG_FILE_PATH_MAX, upath);
	__u32 len;

	ev->eflags = 0;
	if (n <= 0) {
		/* Bad pointer (the open will fail with EFAULT) or a page
		 * that is not resident: only "/" can match. */
		if (!ig_monitor_all)
			return 0;
		ev->path[0] = 0;
		ev->eflags = IG_FILE_F_UNREADABLE;
		len = 0;
	} else {
		len = n - 1;
		if (n == IG_FILE_PATH_MAX) {
			char c = 0;
			bpf_probe_read_user(&c, 1, upath + IG_FILE_PATH_MAX - 1);
			if (c)
				ev->eflags |= IG_FILE_F_TRUNCATED;
		}
		if (ev->path[0] != '/') {
			long rl = resolve_relative(s, dirfd, len);
			if (rl < 0) {
				if (!ig_monitor_all)
					return 0;
				ev->eflags |= IG_FILE_F_RELATIVE;
			} else {
				len = rl;
				ev->path_len = len & PATH_MASK;
				if (!ig_files_match())
					return 0;
			}
		} else {
			ev->path_len = len & PATH_MASK;
			if (!ig_files_match())
				return 0;
		}
	}

	ig_fill_proc(&ev->pid, &ev->tid, &ev->ppid, &ev->uid, &ev->gid, &ev->cgroup_id, ev->comm,
		     sizeof(ev->comm));
	ev->syscall = sc;
	ev->flags = flags;
	ev->mode = mode;
	ev->dirfd = dirfd;
	ev->path_len = len & PATH_MASK;
	ev->ret = 0;
	ev->ts_ns = 0;
	ev->pad = 0;
	if (*(volatile __u64 *)&s->owner != me || bpf_map_update_elem(&inflight, &tid, ev, BPF_ANY))
		ig_count(&lost, IG_FILE_LOST_OTHER);
	return 0;
}

static __always_inline int on_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ig_file_event *ev = bpf_map_lookup_elem(&inflight, &tid);
	if (!ev)
		return 0;
	if (ret < 0 && !ig_include_failed)
		goto out;
	ev->ret = ret;
	ev->ts_ns = bpf_ktime_get_ns();

	__u64 size = IG_FILE_EVENT_HDR_SIZE + (ev->path_len & PATH_MASK) + 1;
	__u64 wflags = 0;
	if (ig_wakeup_bytes) {
		/* Wake the consumer only when this record takes the unread
		 * data across the threshold: a wakeup (irq_work, then the
		 * agent's epoll) costs far more than writing a record. The
		 * agent also drains on a timer. */
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		__u64 used =
			(size + BPF_RINGBUF_HDR_SZ + 7) & ~7ULL; /* as the ring buffer counts */
		wflags = (avail < ig_wakeup_bytes && avail + used >= ig_wakeup_bytes) ?
				 BPF_RB_FORCE_WAKEUP :
				 BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, ev, size, wflags))
		ig_count(&lost, IG_FILE_LOST_RINGBUF);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* --- tp_btf variant: every syscall, number checked first --------------- */

SEC("tp_btf/sys_enter")
int BPF_PROG(ig_files_enter_btf, struct pt_regs *regs, long id)
{
	int sc;

	switch (id) {
	case NR_openat:
		sc = IG_FILE_SC_OPENAT;
		break;
	case NR_openat2:
		sc = IG_FILE_SC_OPENAT2;
		break;
	case NR_open:
		sc = IG_FILE_SC_OPEN;
		break;
	case NR_creat:
		sc = IG_FILE_SC_CREAT;
		break;
	default:
		return 0;
	}
	/* BTF-typed pointers: direct loads, no helper calls. */
	if (bpf_get_current_task_btf()->thread_info.status & IG_TS_COMPAT)
		return 0;
	/* x86_64 syscall arguments: di, si, dx, r10. */
	unsigned long a0 = regs->di, a1 = regs->si, a2 = regs->dx, a3 = regs->r10;
	int dirfd = AT_FDCWD;
	const char *path = (const char *)a0;
	__u64 flags = (__u32)a1, mode = (__u32)a2;
	struct open_how how = {};

	if (sc == IG_FILE_SC_OPENAT || sc == IG_FILE_SC_OPENAT2) {
		dirfd = (int)a0;
		path = (const char *)a1;
		flags = (__u32)a2;
		mode = (__u32)a3;
		if (sc == IG_FILE_SC_OPENAT2) {
			bpf_probe_read_user(&how, sizeof(how), (void *)a2);
			flags = how.flags;
			mode = how.mode;
		}
	} else if (sc == IG_FILE_SC_CREAT) {
		flags = O_CREAT | O_WRONLY | O_TRUNC;
		mode = (__u32)a1;
	}
	return on_enter(sc, dirfd, path, flags, mode);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ig_files_exit_btf, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;

	if (id != NR_openat && id != NR_openat2 && id != NR_open && id != NR_creat)
		return 0;
	return on_exit(ret);
}
#endif

/* --- tracepoint variant: one pair per syscall ---------------------------- */

SEC("tracepoint/syscalls/sys_enter_openat")
int ig_files_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(IG_FILE_SC_OPENAT, (int)ctx->args[0], (const char *)ctx->args[1],
			(__u32)ctx->args[2], (__u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_files_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int ig_files_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return on_enter(IG_FILE_SC_OPENAT2, (int)ctx->args[0], (const char *)ctx->args[1],
			how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int ig_files_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

#if defined(__TARGET_ARCH_x86)
/* open(2) and creat(2) exist only on x86_64 among the supported arches. */
SEC("tracepoint/syscalls/sys_enter_open")
int ig_files_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(IG_FILE_SC_OPEN, AT_FDCWD, (const char *)ctx->args[0], (__u32)ctx->args[1],
			(__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int ig_files_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int ig_files_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(IG_FILE_SC_CREAT, AT_FDCWD, (const char *)ctx->args[0],
			O_CREAT | O_WRONLY | O_TRUNC, (__u32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int ig_files_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}
#endif
