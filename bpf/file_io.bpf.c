// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/* file_io.bpf.c: the file I/O volume probe, kernel side. Counts the bytes
 * and calls of read(2), write(2), pread64(2), pwrite64(2), readv(2),
 * writev(2), preadv(2), pwritev(2), preadv2(2) and pwritev2(2) on regular
 * files under monitor_dirs, per (process, cgroup, file), into a per-CPU LRU
 * hash that user space reads on an interval (node-agent/probe_file_io.c).
 * Nothing is sent per call.
 *
 * Hooks: syscall exits only; the byte count is the return value and the fd
 * is read from the task's saved user registers (di on x86_64), so no entry
 * program and no per-call stash are needed. Three variants, one enabled by
 * user space:
 *   - fexit/__x64_sys_<call>: runs for these calls only, the registers are
 *     the argument, and the other syscalls stay off the syscall-tracing slow
 *     path; needs BPF trampolines and a kernel that allows them.
 *   - tracepoint/syscalls/sys_exit_<call>: runs for these calls only;
 *     the registers come from bpf_task_pt_regs (5.15+).
 *   - tp_btf/sys_exit: runs for every syscall and checks the number first;
 *     has the registers as an argument (5.11+).
 *
 * Per call: fd -> struct file (task->files->fdt->fd[fd]) -> inode. Anything
 * but a regular file stops there (sockets, pipes, ttys). The file's identity
 * (inode address, number, generation) is looked up in "seen", a small LRU
 * cache of verdicts; only a file not seen before pays for the path: its
 * f_path is walked (bpf/ig_path.bpf.h, the same walk as the files probe's),
 * matched against monitor_dirs, and, when monitored, sent to user space on
 * the "paths" ring buffer (no memory held in the kernel per file). User
 * space clears "seen" on every read, so a rename into or out of a monitored
 * directory takes effect, and the paths of the files in use are sent again,
 * within one interval. A monitored file then costs one lookup and per-CPU
 * adds in "io".
 *
 * Map maintenance as in traffic.bpf.c: an existing key is a lookup and adds
 * on this CPU's copy (no atomics); a new key is inserted with BPF_NOEXIST
 * (a lost race falls back to the lookup) and counted, so that user space can
 * tell evictions (inserts - live keys) from a quiet table.
 */
#include "ig_path.bpf.h"
#include "file_io.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define S_IFMT 00170000
#define S_IFREG 0100000

/* x86_64 syscall numbers for the tp_btf variant. */
#define NR_read 0
#define NR_write 1
#define NR_pread64 17
#define NR_pwrite64 18
#define NR_readv 19
#define NR_writev 20
#define NR_preadv 295
#define NR_pwritev 296
#define NR_preadv2 327
#define NR_pwritev2 328

enum { V_NO = 1, V_YES = 2 }; /* seen: verdicts */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384); /* user space sets probes.file_io.max_entries */
	__type(key, struct ig_file_io_key);
	__type(value, struct ig_file_io_val);
} io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); /* user space: max_entries */
	__type(key, struct ig_file_io_fid);
	__type(value, __u32);
} seen SEC(".maps");

/* Paths of newly seen monitored files; user space drains it on its poll
 * interval (no wakeups: it does not sleep on this buffer). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_FILE_IO_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Per-CPU room for a paths value (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_file_io_path);
} pathbuf SEC(".maps");

/* Walks f's path, matches it, and sends it with fid when monitored;
 * returns the verdict. */
static __always_inline __u32 learn(struct file *f, struct inode *inode,
				   const struct ig_file_io_fid *fid)
{
	__u32 zero = 0;
	struct ig_file_io_path *pb = bpf_map_lookup_elem(&pathbuf, &zero);
	struct ig_path_scratch *ps = ig_path_get();
	if (!pb || !ps)
		return V_NO;

	long len = ig_path_of_file((__u64)f);
	if (len < 0) {
		/* Deeper than the walk, or outside the task's root: only
		 * "/" can claim it, without a path. */
		ig_count(&counters, IG_FILE_IO_CNT_UNRESOLVED);
		if (!ig_monitor_all)
			return V_NO;
		pb->path_len = 0;
		pb->path[0] = 0;
	} else {
		if (!ig_path_match())
			return V_NO;
		__u32 plen = ps->len & IG_PATH_MASK;
		pb->path_len = plen;
		bpf_probe_read_kernel(pb->path, plen + 1, ps->path);
	}
	pb->flags = (ps->flags & IG_PATH_TRUNCATED) ? IG_FILE_IO_PATH_TRUNCATED : 0;
	pb->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	pb->fid = *fid;
	__u64 size = IG_FILE_IO_PATH_HDR_SIZE + (pb->path_len & IG_PATH_MASK) + 1;
	if (bpf_ringbuf_output(&paths, pb, size, BPF_RB_NO_WAKEUP))
		ig_count(&counters, IG_FILE_IO_CNT_PATH_FAILED);
	return V_YES;
}

static __always_inline void count(bool write, long ret, const struct ig_file_io_fid *fid)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ig_file_io_key k = {};

	k.cgroup_id = bpf_get_current_cgroup_id();
	k.pid = pid_tgid >> 32;
	k.fid = *fid;
	struct ig_file_io_val *v = bpf_map_lookup_elem(&io, &k);
	if (v) {
		if (write) {
			v->write_bytes += ret;
			v->write_ops += 1;
		} else {
			v->read_bytes += ret;
			v->read_ops += 1;
		}
		return;
	}
	struct ig_file_io_val n = {};
	if (write) {
		n.write_bytes = ret;
		n.write_ops = 1;
	} else {
		n.read_bytes = ret;
		n.read_ops = 1;
	}
	n.born_ns = bpf_ktime_get_ns();
	__u64 ug = bpf_get_current_uid_gid();
	n.uid = (__u32)ug;
	n.gid = ug >> 32;
	n.ppid = ig_task_ppid((struct task_struct *)bpf_get_current_task());
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	long err = bpf_map_update_elem(&io, &k, &n, BPF_NOEXIST);
	if (!err) {
		ig_count(&counters, IG_FILE_IO_CNT_INSERTS);
		return;
	}
	v = bpf_map_lookup_elem(&io, &k); /* another CPU inserted it first */
	if (!v) {
		ig_count(&counters, IG_FILE_IO_CNT_FAILED);
		return;
	}
	if (write) {
		v->write_bytes += ret;
		v->write_ops += 1;
	} else {
		v->read_bytes += ret;
		v->read_ops += 1;
	}
}

static __always_inline int on_exit(bool write, long ret, int fd)
{
	if (ret < 0)
		return 0;
	struct file *f = ig_fd_file_btf(fd);
	if (!f)
		return 0;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	if (!inode)
		return 0;

	/* i_mode and i_ino (and what lies between) in one read when the
	 * relocated offsets allow it: each helper call costs ~25 ns here. */
	struct ig_file_io_fid fid = {};
	__u32 o_mode = bpf_core_field_offset(struct inode, i_mode);
	__u32 o_ino = bpf_core_field_offset(struct inode, i_ino);
	__u16 mode;
	if (o_mode + sizeof(__u16) <= 128 && o_ino + sizeof(__u64) <= 128) {
		__u64 chunk[16] = {};
		bpf_probe_read_kernel(chunk, o_ino + sizeof(__u64), inode);
		mode = *(__u16 *)((char *)chunk + o_mode);
		fid.ino = *(__u64 *)((char *)chunk + o_ino);
	} else {
		mode = BPF_CORE_READ(inode, i_mode);
		fid.ino = BPF_CORE_READ(inode, i_ino);
	}
	if ((mode & S_IFMT) != S_IFREG)
		return 0;
	fid.inode = (__u64)inode;
	fid.gen = BPF_CORE_READ(inode, i_generation);

	__u32 *verdict = bpf_map_lookup_elem(&seen, &fid);
	__u32 vd;
	if (verdict) {
		vd = *verdict;
	} else {
		vd = learn(f, inode, &fid);
		bpf_map_update_elem(&seen, &fid, &vd, BPF_ANY);
	}
	if (vd == V_YES)
		count(write, ret, &fid);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* --- tp_btf variant: every syscall exit, number checked first ------------ */

SEC("tp_btf/sys_exit")
int BPF_PROG(ig_file_io_exit_btf, struct pt_regs *regs, long ret)
{
	bool write;

	switch (regs->orig_ax) {
	case NR_read:
	case NR_pread64:
	case NR_readv:
	case NR_preadv:
	case NR_preadv2:
		write = false;
		break;
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
		write = true;
		break;
	default:
		return 0;
	}
	if (ig_current_in_compat_syscall())
		return 0;
	return on_exit(write, ret, (int)regs->di);
}

/* --- fexit variant: the 64-bit syscall functions themselves -------------- */

#define IG_FEXIT(call, write)                                                 \
	SEC("fexit/__x64_sys_" #call)                                         \
	int BPF_PROG(ig_file_io_fexit_##call, struct pt_regs *regs, long ret) \
	{                                                                     \
		return ret < 0 ? 0 : on_exit(write, ret, (int)regs->di);      \
	}

IG_FEXIT(read, false)
IG_FEXIT(pread64, false)
IG_FEXIT(readv, false)
IG_FEXIT(preadv, false)
IG_FEXIT(preadv2, false)
IG_FEXIT(write, true)
IG_FEXIT(pwrite64, true)
IG_FEXIT(writev, true)
IG_FEXIT(pwritev, true)
IG_FEXIT(pwritev2, true)
#endif

/* --- tracepoint variant: one program per syscall exit -------------------- */

/* The fd argument, from the registers saved at syscall entry. */
static __always_inline int saved_fd(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return (int)regs->di; /* a BTF pointer: a direct load */
}

SEC("tracepoint/syscalls/sys_exit_read")
int ig_file_io_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(false, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int ig_file_io_exit_pread64(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(false, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_readv")
int ig_file_io_exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(false, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_preadv")
int ig_file_io_exit_preadv(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(false, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_preadv2")
int ig_file_io_exit_preadv2(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(false, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_write")
int ig_file_io_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(true, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int ig_file_io_exit_pwrite64(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(true, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_writev")
int ig_file_io_exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(true, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_pwritev")
int ig_file_io_exit_pwritev(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(true, ctx->ret, saved_fd());
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int ig_file_io_exit_pwritev2(struct trace_event_raw_sys_exit *ctx)
{
	return ctx->ret < 0 ? 0 : on_exit(true, ctx->ret, saved_fd());
}
