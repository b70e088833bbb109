// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* files.bpf.c: the file-access probe, kernel side. Reports open(2),
 * openat(2), openat2(2) and creat(2) calls whose path lies under one of the
 * configured monitor_dirs, with their result. Modelled on libbpf-tools'
 * opensnoop; docs/probes.md has the design and the measurements behind it.
 *
 * Hooks: some kernels lack kprobes and refuse fentry, so the baseline is
 * syscall tracepoints. Three interchangeable variants share all logic:
 *   - fentry/fexit on the syscall functions (__x64_sys_openat, ...): run
 *     for opens only, with the saved registers as argument and the result at
 *     exit, and without the syscall-tracing slow path that syscall
 *     tracepoints switch on for every syscall of every task. Needs BPF
 *     trampolines (5.5+) and a kernel that allows them (docs/kernels.md).
 *   - tp_btf/sys_enter + tp_btf/sys_exit: one program pair for every syscall,
 *     checking the syscall number first. Cheaper per open than the perf-based
 *     syscall tracepoints, but needs tp_btf (BTF-enabled raw tracepoints).
 *   - tracepoint/syscalls/sys_{enter,exit}_<open call>: the portable baseline.
 * User space enables exactly one variant (set_autoload) after feature probing.
 *
 * On syscall entry the user path is read, made absolute when relative (the
 * cwd's or the dirfd's path from a dentry walk) and folded lexically ("//",
 * "/./", "/x/.."), all in bpf/ig_path.bpf.h; the monitor_dirs filter runs on
 * that canonical string, in the kernel. Only matching opens are stashed
 * (keyed by thread id) in the "inflight" hash map. On exit the stash gets the
 * result and goes to the ring buffer as a variable-sized record, then is
 * deleted. A filtered-out open therefore costs one path read, a scan for
 * "/." and "//", a few byte compares and one failed hash lookup on exit.
 *
 * A string says nothing about symlinks or bind mounts. With resolve =
 * real_path, the exit program of a successful open that did not match at
 * entry walks the new fd's f_path and matches the path of the file the
 * kernel actually opened; the event then carries that path and the name as
 * passed ("requested_path"). Its syscall arguments come from the task's
 * saved registers (bpf_task_pt_regs, 5.15+) or, on older kernels, from a
 * small per-thread stash written at entry ("args"; every open pays for it).
 * Reported opens get the real path too. A relative name whose base cannot
 * be walked (deeper than the walk bound) is matched the same way, in both
 * modes: it is stashed at entry and its fd walked at exit.
 *
 * Configuration is .rodata, written by user space before load, so the
 * verifier sees constants and prunes the unused branches.
 */
#include "ig_path.bpf.h"
#include "files.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PATH_MASK (IG_FILE_PATH_MAX - 1)
/* In a stash, the name as passed sits at this fixed offset of path[]. */
#define RAW_OFF IG_FILE_PATH_MAX
/* Internal eflags bit (never sent): the stash did not match at entry;
 * match the opened file's path at exit. */
#define F_CHECK_AT_EXIT 0x8000

/* x86_64 syscall numbers for the tp_btf variant. */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437

/* Where a non-matching open's arguments come from at exit (real_path). */
enum { EXIT_ARGS_REGS = 0, EXIT_ARGS_STASH = 1 };

const volatile bool ig_include_failed = true;
const volatile __u64 ig_wakeup_bytes = 0; /* 0: let the kernel decide */
const volatile __u32 ig_resolve = IG_FILE_RESOLVE_LEXICAL;
const volatile __u32 ig_exit_args = EXIT_ARGS_REGS;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* user space sets agent.ringbuf_bytes */
} events SEC(".maps");

/* Opens that passed the filter (or await the exit-time check), between
 * entry and exit: path at path[0], the name as passed (req_len > 0) at
 * path[RAW_OFF]. Not preallocated: memory is used only by opens in
 * flight. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct ig_file_event);
} inflight SEC(".maps");

/* real_path without bpf_task_pt_regs: every other open's arguments. */
struct open_args {
	__u64 upath, flags, mode;
	__s32 dirfd;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct open_args);
} args SEC(".maps");

IG_LOST_MAP(lost);

/* Per-CPU working memory for the event under construction. */
struct scratch {
	struct ig_file_event ev;
	__u64 owner; /* pid_tgid of the program run using this buffer */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline struct scratch *scratch_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void fill_header(struct ig_file_event *ev, __u16 sc, int dirfd, __u64 flags,
					__u64 mode)
{
	ig_fill_proc(&ev->pid, &ev->tid, &ev->ppid, &ev->uid, &ev->gid, &ev->cgroup_id, ev->comm,
		     sizeof(ev->comm));
	ev->syscall = sc;
	ev->flags = flags;
	ev->mode = mode;
	ev->dirfd = dirfd;
	ev->ret = 0;
	ev->ts_ns = 0;
}

static __always_inline int on_enter(__u16 sc, int dirfd, const char *upath, __u64 flags, __u64 mode)
{
	struct ig_path_scratch *ps = ig_path_get();
	struct scratch *s = scratch_get();
	if (!ps || !s)
		return 0;
	struct ig_file_event *ev = &s->ev;
	__u64 me = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)me;
	__u16 eflags = 0;

	/* BPF programs on syscall tracepoints run with preemption disabled
	 * today; should a kernel run them preemptibly, another task's run
	 * on this CPU could reuse the buffers meanwhile. The owner check
	 * before the stash insert turns that into a counted loss instead of
	 * a mixed-up event. */
	s->owner = me;
	if (ig_path_read_user(ps, upath) < 0) {
		/* Bad pointer (the open will fail with EFAULT) or a page
		 * that is not resident: only "/" can match. */
		if (!ig_monitor_all)
			goto unmatched;
		eflags = IG_FILE_F_UNREADABLE;
	} else if (ps->path[0] != '/' && ig_path_resolve_at(dirfd) < 0) {
		/* The base is too deep (or not the task's): the name stays
		 * relative. Reported as such under "/"; otherwise the file
		 * the kernel opens decides, at exit. */
		eflags = ig_monitor_all ? IG_FILE_F_RELATIVE : F_CHECK_AT_EXIT;
	} else {
		ig_path_normalise();
		if (!ig_path_match())
			goto unmatched;
	}
	if (ps->flags & IG_PATH_TRUNCATED)
		eflags |= IG_FILE_F_TRUNCATED;

	fill_header(ev, sc, dirfd, flags, mode);
	ev->eflags = eflags;
	__u32 plen = ps->len & PATH_MASK;
	__u32 rlen = ps->raw_len & PATH_MASK;
	ev->path_len = plen;
	ev->req_len = rlen;
	bpf_probe_read_kernel(ev->path, plen + 1, ps->path);
	if (rlen)
		bpf_probe_read_kernel(&ev->path[RAW_OFF], rlen + 1, ps->raw);
	if (*(volatile __u64 *)&s->owner != me || bpf_map_update_elem(&inflight, &tid, ev, BPF_ANY))
		ig_count(&lost, IG_FILE_LOST_OTHER);
	return 0;

unmatched:
	if (ig_resolve == IG_FILE_RESOLVE_REAL_PATH && ig_exit_args == EXIT_ARGS_STASH) {
		struct open_args a = {
			.upath = (__u64)upath, .flags = flags, .mode = mode, .dirfd = dirfd
		};
		if (bpf_map_update_elem(&args, &tid, &a, BPF_ANY))
			ig_count(&lost, IG_FILE_LOST_OTHER);
	}
	return 0;
}

/* Sends ev (path_len + 1 bytes of path, then req_len + 1 of requested
 * path when req_len > 0) to the ring buffer. */
static __always_inline void emit(struct ig_file_event *ev)
{
	__u64 size = IG_FILE_EVENT_HDR_SIZE + (ev->path_len & PATH_MASK) + 1;
	if (ev->req_len)
		size += (ev->req_len & PATH_MASK) + 1;
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
}

/* Same path_len bytes in a and b? Only for reported opens. */
static __always_inline bool same_path(const char *a, const char *b, __u32 len)
{
	for (__u32 i = 0; i < IG_FILE_PATH_MAX; i++) {
		if (i >= len)
			return true;
		if (a[i] != b[i])
			return false;
	}
	return true;
}

/* A stashed open, reported: path and the name as passed (at RAW_OFF in the
 * stash) laid out back to back in the scratch event. With real set, the
 * path is the opened file's (in ps) and the stashed path becomes the
 * requested one unless they are the same. */
static __always_inline void emit_stash(struct ig_file_event *st, struct ig_path_scratch *ps,
				       bool real, long ret)
{
	struct scratch *s = scratch_get();
	if (!s)
		return;
	struct ig_file_event *ev = &s->ev;
	__u32 slen = st->path_len & PATH_MASK;
	__u32 rlen = st->req_len & PATH_MASK;

	bpf_probe_read_kernel(ev, IG_FILE_EVENT_HDR_SIZE, st);
	ev->eflags &= ~F_CHECK_AT_EXIT;
	if (!real) {
		bpf_probe_read_kernel(ev->path, slen + 1, st->path);
		if (rlen)
			bpf_probe_read_kernel(&ev->path[slen + 1], rlen + 1, &st->path[RAW_OFF]);
	} else {
		__u32 plen = ps->len & PATH_MASK;
		bpf_probe_read_kernel(ev->path, plen + 1, ps->path);
		ev->eflags &= ~(IG_FILE_F_RELATIVE | IG_FILE_F_TRUNCATED);
		if (st->eflags & IG_FILE_F_TRUNCATED)
			ev->eflags |= IG_FILE_F_REQ_TRUNCATED;
		ev->eflags |= IG_FILE_F_REAL_PATH;
		if (ps->flags & IG_PATH_TRUNCATED)
			ev->eflags |= IG_FILE_F_TRUNCATED;
		ev->path_len = plen;
		if (rlen) {
			/* The name as passed differs from its canonical form,
			 * so from the real path too. */
			bpf_probe_read_kernel(&ev->path[plen + 1], rlen + 1, &st->path[RAW_OFF]);
		} else if (slen != plen || !same_path(st->path, ps->path, plen)) {
			bpf_probe_read_kernel(&ev->path[plen + 1], slen + 1, st->path);
			rlen = slen;
		}
		ev->req_len = rlen;
	}
	ev->ret = ret;
	ev->ts_ns = bpf_ktime_get_ns();
	emit(ev);
}

/* real_path: an open that did not match at entry and whose file does (in
 * ps). The arguments come from the saved user registers or the args stash;
 * the requested name is read again from user memory. */
static __always_inline void emit_unstashed(__u16 sc, long ret, struct ig_path_scratch *ps,
					   struct open_args *a)
{
	struct scratch *s = scratch_get();
	if (!s)
		return;
	struct ig_file_event *ev = &s->ev;
	__u32 plen = ps->len & PATH_MASK;

	fill_header(ev, sc, a->dirfd, a->flags, a->mode);
	ev->eflags = IG_FILE_F_REAL_PATH;
	if (ps->flags & IG_PATH_TRUNCATED)
		ev->eflags |= IG_FILE_F_TRUNCATED;
	ev->path_len = plen;
	bpf_probe_read_kernel(ev->path, plen + 1, ps->path);
	const char *upath = (const char *)a->upath;
	long n = bpf_probe_read_user_str(&ev->path[plen + 1], IG_FILE_PATH_MAX, upath);
	ev->req_len = n > 1 ? (n - 1) & PATH_MASK : 0;
	if (n == IG_FILE_PATH_MAX) {
		char c = 0;
		bpf_probe_read_user(&c, 1, upath + IG_FILE_PATH_MAX - 1);
		if (c)
			ev->eflags |= IG_FILE_F_REQ_TRUNCATED;
	}
	ev->ret = ret;
	ev->ts_ns = bpf_ktime_get_ns();
	emit(ev);
}

/* The open's arguments from the saved user registers (x86_64: di, si, dx,
 * r10), as the syscall got them. */
static __always_inline void args_from_regs(struct open_args *a, __u16 sc, struct pt_regs *regs)
{
	struct pt_regs r = {};

	bpf_probe_read_kernel(&r, sizeof(r), regs);
	a->dirfd = AT_FDCWD;
	a->upath = r.di;
	a->flags = (__u32)r.si;
	a->mode = (__u32)r.dx;
	if (sc == IG_FILE_SC_OPENAT || sc == IG_FILE_SC_OPENAT2) {
		a->dirfd = (int)r.di;
		a->upath = r.si;
		a->flags = (__u32)r.dx;
		a->mode = (__u32)r.r10;
		if (sc == IG_FILE_SC_OPENAT2) {
			struct open_how how = {};
			bpf_probe_read_user(&how, sizeof(how), (void *)r.dx);
			a->flags = how.flags;
			a->mode = how.mode;
		}
	} else if (sc == IG_FILE_SC_CREAT) {
		a->flags = O_CREAT | O_WRONLY | O_TRUNC;
		a->mode = (__u32)r.si;
	}
}

/* btf: the caller is the tp_btf program, which has the task's saved user
 * registers in regs (a compile-time constant: the other branch goes). */
static __always_inline int on_exit(__u16 sc, long ret, struct pt_regs *regs, bool btf)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ig_path_scratch *ps = ig_path_get();
	struct ig_file_event *st = bpf_map_lookup_elem(&inflight, &tid);

	if (!ps)
		return 0;
	if (st) {
		bool check = st->eflags & F_CHECK_AT_EXIT;
		if (ret < 0) {
			if (!check && ig_include_failed)
				emit_stash(st, ps, false, ret);
		} else if (check || ig_resolve == IG_FILE_RESOLVE_REAL_PATH) {
			struct file *f = ig_fd_file((int)ret);
			if (f && ig_path_of_file((__u64)f) >= 0) {
				if (!check || ig_path_match())
					emit_stash(st, ps, true, ret);
			} else if (!check) {
				emit_stash(st, ps, false, ret);
			}
		} else {
			emit_stash(st, ps, false, ret);
		}
		bpf_map_delete_elem(&inflight, &tid);
		return 0;
	}
	if (ig_resolve != IG_FILE_RESOLVE_REAL_PATH)
		return 0;

	/* Did not match at entry: does the file the kernel opened? */
	struct open_args a = {};
	if (ig_exit_args == EXIT_ARGS_STASH) {
		struct open_args *sa = bpf_map_lookup_elem(&args, &tid);
		if (!sa)
			return 0;
		a = *sa;
		bpf_map_delete_elem(&args, &tid);
	}
	if (ret < 0)
		return 0;
	struct file *f = ig_fd_file((int)ret);
	if (!f || ig_path_of_file((__u64)f) < 0 || !ig_path_match())
		return 0;
	if (ig_exit_args == EXIT_ARGS_REGS) {
		if (!btf)
			regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		args_from_regs(&a, sc, regs);
	}
	emit_unstashed(sc, ret, ps, &a);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* Entry with the open's saved user registers (a BTF-typed pointer: direct
 * loads, no helper calls). x86_64 syscall arguments: di, si, dx, r10. */
static __always_inline int on_enter_regs(__u16 sc, struct pt_regs *regs)
{
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

/* --- tp_btf variant: every syscall, number checked first --------------- */

SEC("tp_btf/sys_enter")
int BPF_PROG(ig_files_enter_btf, struct pt_regs *regs, long id)
{
	__u16 sc;

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
	if (ig_current_in_compat_syscall())
		return 0;
	return on_enter_regs(sc, regs);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ig_files_exit_btf, struct pt_regs *regs, long ret)
{
	long id = regs->orig_ax;
	__u16 sc;

	if (id == NR_openat)
		sc = IG_FILE_SC_OPENAT;
	else if (id == NR_openat2)
		sc = IG_FILE_SC_OPENAT2;
	else if (id == NR_open)
		sc = IG_FILE_SC_OPEN;
	else if (id == NR_creat)
		sc = IG_FILE_SC_CREAT;
	else
		return 0;
	if (ig_current_in_compat_syscall())
		return 0;
	return on_exit(sc, ret, regs, true);
}

/* --- fentry variant: the 64-bit syscall functions themselves ------------- */
/* (32-bit calls go through __ia32_* functions: nothing to filter out.) */

#define IG_FENTRY_PAIR(call, sc)                                            \
	SEC("fentry/__x64_sys_" #call)                                      \
	int BPF_PROG(ig_files_fentry_##call, struct pt_regs *regs)          \
	{                                                                   \
		return on_enter_regs(sc, regs);                             \
	}                                                                   \
	SEC("fexit/__x64_sys_" #call)                                       \
	int BPF_PROG(ig_files_fexit_##call, struct pt_regs *regs, long ret) \
	{                                                                   \
		return on_exit(sc, ret, regs, true);                        \
	}

IG_FENTRY_PAIR(openat, IG_FILE_SC_OPENAT)
IG_FENTRY_PAIR(openat2, IG_FILE_SC_OPENAT2)
IG_FENTRY_PAIR(open, IG_FILE_SC_OPEN)
IG_FENTRY_PAIR(creat, IG_FILE_SC_CREAT)
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
	return on_exit(IG_FILE_SC_OPENAT, ctx->ret, NULL, false);
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
	return on_exit(IG_FILE_SC_OPENAT2, ctx->ret, NULL, false);
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
	return on_exit(IG_FILE_SC_OPEN, ctx->ret, NULL, false);
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
	return on_exit(IG_FILE_SC_CREAT, ctx->ret, NULL, false);
}
#endif
