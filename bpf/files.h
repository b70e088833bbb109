/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* files.h: the file-open event, shared by bpf/files.bpf.c (which writes it
 * into the ring buffer) and node-agent/probe_files.c (which reads it).
 *
 * Records are variable-sized: the kernel side emits the fixed header plus
 * path_len + 1 bytes of path (the ring buffer rounds to 8), so a short path
 * does not cost IG_FILE_PATH_MAX bytes of ring buffer. User space must check
 * the record size against path_len before reading the path.
 */
#ifndef IG_FILES_H
#define IG_FILES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define IG_FILE_PATH_MAX 512 /* path bytes kept, NUL included; longer = truncated */
#define IG_FILE_MAX_DIRS 16 /* monitor_dirs entries */
#define IG_FILE_DIR_MAX 256 /* bytes per monitor_dirs entry, NUL included */
#define IG_FILE_COMM_LEN 16

/* Which syscall opened the file. */
enum ig_file_syscall {
	IG_FILE_SC_OPENAT = 1,
	IG_FILE_SC_OPENAT2 = 2,
	IG_FILE_SC_OPEN = 3,
	IG_FILE_SC_CREAT = 4,
};

/* ig_file_event.eflags */
#define IG_FILE_F_RELATIVE 0x1 /* path is relative to dirfd: it could not be resolved */
#define IG_FILE_F_TRUNCATED 0x2 /* path longer than IG_FILE_PATH_MAX - 1 bytes */
#define IG_FILE_F_UNREADABLE 0x4 /* the user path could not be read (path is "") */

/* Indices of the per-CPU loss counter map ("lost"). */
#define IG_FILE_LOST_RINGBUF 0 /* no ring-buffer space */
#define IG_FILE_LOST_OTHER 1 /* in-flight map full: the open was not reported */

struct ig_file_event {
	__u64 ts_ns; /* CLOCK_MONOTONIC at syscall exit */
	__u64 cgroup_id; /* cgroup v2 id of the task */
	__u64 flags; /* open flags (openat2: open_how.flags) */
	__u64 mode; /* creation mode */
	__s64 ret; /* fd, or -errno */
	__u32 pid, tid, ppid, uid, gid;
	__s32 dirfd; /* AT_FDCWD (-100) or the directory fd the path is relative to */
	__u16 syscall; /* enum ig_file_syscall */
	__u16 eflags; /* IG_FILE_F_* */
	__u16 path_len; /* strlen(path) */
	__u16 pad;
	char comm[IG_FILE_COMM_LEN];
	char path[IG_FILE_PATH_MAX]; /* NUL-terminated; only path_len + 1 bytes are sent */
};

#define IG_FILE_EVENT_HDR_SIZE __builtin_offsetof(struct ig_file_event, path)

#endif
