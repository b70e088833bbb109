/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* files.h: the file-open event, shared by bpf/files.bpf.c (which writes it
 * into the ring buffer) and node-agent/probe_files.c (which reads it).
 *
 * Records are variable-sized: the kernel side emits the fixed header, then
 * path_len + 1 bytes of path, then, when req_len > 0, req_len + 1 bytes of
 * the requested path (the ring buffer rounds to 8). A short path does not
 * cost 2 * IG_FILE_PATH_MAX bytes of ring buffer. User space must check the
 * record size against both lengths before reading the strings.
 */
#ifndef IG_FILES_H
#define IG_FILES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "ig_path.h"

#define IG_FILE_PATH_MAX IG_PATH_MAX /* path bytes kept, NUL included; longer = truncated */
#define IG_FILE_MAX_DIRS IG_PATH_MAX_DIRS /* monitor_dirs entries */
#define IG_FILE_DIR_MAX IG_PATH_DIR_MAX /* bytes per monitor_dirs entry, NUL included */
#define IG_FILE_COMM_LEN 16

/* Which syscall opened the file. */
enum ig_file_syscall {
	IG_FILE_SC_OPENAT = 1,
	IG_FILE_SC_OPENAT2 = 2,
	IG_FILE_SC_OPEN = 3,
	IG_FILE_SC_CREAT = 4,
};

/* How the kernel side finds the path it matches (probes.files.resolve). */
enum ig_file_resolve {
	IG_FILE_RESOLVE_LEXICAL = 0, /* the name passed, made absolute and folded */
	IG_FILE_RESOLVE_REAL_PATH = 1, /* ... or else the opened file's path, from the new fd */
};

/* ig_file_event.eflags */
#define IG_FILE_F_RELATIVE 0x1 /* path is relative to dirfd: it could not be resolved */
#define IG_FILE_F_TRUNCATED 0x2 /* path longer than IG_FILE_PATH_MAX - 1 bytes */
#define IG_FILE_F_UNREADABLE 0x4 /* the user path could not be read (path is "") */
#define IG_FILE_F_REAL_PATH 0x8 /* path is the opened file's, walked from the new fd */
#define IG_FILE_F_REQ_TRUNCATED 0x10 /* the requested path is truncated */

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
	__u16 req_len; /* strlen(requested path); 0: path is the name passed */
	char comm[IG_FILE_COMM_LEN];
	/* path, NUL, then (req_len > 0) the name as the process passed it,
	 * NUL; only the used bytes are sent. */
	char path[2 * IG_FILE_PATH_MAX];
};

#define IG_FILE_EVENT_HDR_SIZE __builtin_offsetof(struct ig_file_event, path)

#endif
