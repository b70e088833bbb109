/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* ig_bpf.h: helpers shared by ingrain's BPF programs (kernel side only).
 *
 * Every probe needs the same few things: the libbpf BPF headers against the
 * committed vmlinux.h, constants that vmlinux.h cannot carry (macros such as
 * AT_FDCWD are not in BTF), the process header of an event (pid, tid, ppid,
 * uid, gid, cgroup id, comm) read the same way everywhere, and per-CPU loss
 * counters that user space sums in stats(). All reads of kernel structures go
 * through BPF_CORE_READ so one object runs on any BTF-enabled kernel.
 */
#ifndef IG_BPF_H
#define IG_BPF_H

/* Kernel types of the target architecture (bpf/CMakeLists.txt: IG_BPF_ARCH). */
#if defined(__TARGET_ARCH_arm64)
#include "arm64/vmlinux.h"
#else
#include "vmlinux.h"
#endif
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* Macros from uapi headers that BTF does not describe. */
#ifndef AT_FDCWD
#define AT_FDCWD -100
#endif
#ifndef O_WRONLY
#define O_WRONLY 00000001
#endif
#ifndef O_CREAT
#define O_CREAT 00000100
#endif
#ifndef O_TRUNC
#define O_TRUNC 00001000
#endif
/* arch/x86/include/asm/thread_info.h: the task is in a 32-bit syscall. */
#define IG_TS_COMPAT 0x0002

#ifndef container_of
#define container_of(ptr, type, member)                                \
	({                                                             \
		void *__mptr = (void *)(ptr);                          \
		((type *)(__mptr - __builtin_offsetof(type, member))); \
	})
#endif

/* Loss counters: a per-CPU array each probe declares with IG_LOST_MAP();
 * index IG_LOST_RINGBUF = no ring-buffer space, IG_LOST_OTHER = anything else
 * (entry map full, ...). User space sums the CPUs. */
enum { IG_LOST_RINGBUF = 0, IG_LOST_OTHER = 1, IG_LOST__COUNT };

#define IG_LOST_MAP(name)                                \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, IG_LOST__COUNT);     \
		__type(key, __u32);                      \
		__type(value, __u64);                    \
	} name SEC(".maps")

static __always_inline void ig_count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/* The task's thread group leader's parent, as ps shows it. */
static __always_inline __u32 ig_task_ppid(struct task_struct *task)
{
	return BPF_CORE_READ(task, real_parent, tgid);
}

/* True for a 32-bit (ia32) syscall on x86_64, whose syscall numbers differ.
 * Syscall tracepoints ignore those; raw sys_enter/sys_exit programs must
 * check themselves. */
static __always_inline bool ig_task_in_compat_syscall(struct task_struct *task)
{
#if defined(__TARGET_ARCH_x86)
	return BPF_CORE_READ(task, thread_info.status) & IG_TS_COMPAT;
#else
	return false;
#endif
}

/* The same for the current task, for tp_btf programs: a BTF load where
 * bpf_get_current_task_btf exists (5.11+), else a probe read (5.10). The
 * CO-RE enum relocation makes the test a load-time constant, so the verifier
 * never walks the call a kernel lacks (docs/kernels.md). */
static __always_inline bool ig_current_in_compat_syscall(void)
{
#if defined(__TARGET_ARCH_x86)
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->thread_info.status & IG_TS_COMPAT;
	return ig_task_in_compat_syscall((struct task_struct *)bpf_get_current_task());
#else
	return false;
#endif
}

/* The process header every event carries. */
static __always_inline void ig_fill_proc(__u32 *pid, __u32 *tid, __u32 *ppid, __u32 *uid,
					 __u32 *gid, __u64 *cgroup_id, char *comm,
					 unsigned comm_len)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	*pid = pid_tgid >> 32;
	*tid = (__u32)pid_tgid;
	*uid = (__u32)uid_gid;
	*gid = uid_gid >> 32;
	*ppid = ig_task_ppid(task);
	*cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(comm, comm_len);
}

#endif
