/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* file_io.h: the in-kernel file I/O tables, shared by bpf/file_io.bpf.c
 * (which counts into them) and node-agent/probe_file_io.c (which reads
 * them).
 *
 * No event per call: the kernel side adds the bytes of every successful
 * read/write on a regular file under monitor_dirs to a per-CPU LRU hash
 * keyed by (process, cgroup, file). A file's path is walked once per
 * interval, when the file is first used in it, and sent to user space as a
 * small variable-sized record on a ring buffer ("paths"); user space keeps
 * the paths of the files its keys refer to. It reads the table every
 * probes.file_io.interval, sums the CPUs and reports the change since its
 * previous read.
 */
#ifndef IG_FILE_IO_H
#define IG_FILE_IO_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "ig_path.h"

#define IG_FILE_IO_COMM_LEN 16

/* Indices of the per-CPU counter map ("counters"). */
#define IG_FILE_IO_CNT_INSERTS 0 /* new (process, file) keys (evictions = inserts - live) */
#define IG_FILE_IO_CNT_FAILED 1 /* a new key could not be added: its bytes are lost */
#define IG_FILE_IO_CNT_PATH_FAILED 2 /* a path record found the ring buffer full */
#define IG_FILE_IO_CNT_UNRESOLVED 3 /* a file's path could not be walked: not counted */
#define IG_FILE_IO_CNT__COUNT 4

/* A file's identity: the inode's address and number, and its generation
 * (random per new inode on ext4, xfs, btrfs, tmpfs), so that a freed inode
 * reused for another file is another key. Every byte is written. */
struct ig_file_io_fid {
	__u64 inode; /* struct inode address */
	__u64 ino;
	__u32 gen;
	__u32 pad;
};

struct ig_file_io_key {
	__u64 cgroup_id;
	__u32 pid; /* thread group id */
	__u32 pad;
	struct ig_file_io_fid fid;
};

/* One per CPU per key; user space sums the counters over the CPUs. The
 * other fields are set on the CPU that created the entry (zero on the
 * others). */
struct ig_file_io_val {
	__u64 read_bytes, write_bytes, read_ops, write_ops;
	__u64 born_ns; /* creation time: a changed value means evicted and re-created */
	__u32 uid, gid, ppid, pad;
	char comm[IG_FILE_IO_COMM_LEN];
};

/* ig_file_io_path.flags */
#define IG_FILE_IO_PATH_TRUNCATED 0x1

/* A ring-buffer record: where a monitored file is. Only the header and
 * path_len + 1 bytes of path are sent. */
struct ig_file_io_path {
	struct ig_file_io_fid fid;
	__u32 dev; /* super_block s_dev, kernel encoding (major << 20 | minor) */
	__u16 path_len;
	__u16 flags; /* IG_FILE_IO_PATH_* */
	char path[IG_PATH_MAX]; /* NUL-terminated */
};

#define IG_FILE_IO_PATH_HDR_SIZE __builtin_offsetof(struct ig_file_io_path, path)

#endif
