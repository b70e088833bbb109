/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* ig_path.bpf.h: file paths in the kernel, shared by the files and file_io
 * probes (kernel side only; each .bpf.c that includes it gets its own copy of
 * the map and functions below).
 *
 * A probe that filters on monitor_dirs needs an absolute, canonical path to
 * compare with the prefixes; a string the process passed is neither:
 *   - relative names are resolved against the cwd or the dirfd's directory
 *     (ig_path_resolve_at), whose path comes from a dentry walk;
 *   - "//", "/./" and "/x/.." are folded lexically (ig_path_normalise), so
 *     "/tmp/../etc/shadow" is matched, and reported, as "/etc/shadow";
 *   - symlinks can only be seen through by looking at what the kernel
 *     opened: ig_path_of_file() walks the dentries of a struct file.
 * The walk goes from a dentry up to the task's root (fs->root: a chrooted or
 * containerised task gets the path it sees), crossing mount points through
 * struct mount (mnt_parent, mnt_mountpoint), bounded at IG_WALK_STEPS steps;
 * then writes the names root first. All kernel reads are CO-RE.
 *
 * Everything works on one per-CPU buffer (ig_path_scratch): the path, the
 * name as passed when it differs (for "requested_path"), the walk's names.
 * Loop-carried values live in that buffer and are re-read through volatile
 * loads, so each loop iteration reaches its head with the same register
 * state and the verifier prunes instead of exploring every combination of
 * branches; the functions are global (__noinline, non-static), so the
 * verifier checks each once per program instead of once per call site.
 *
 * monitor_dirs are .rodata (ig_dirs, ig_dir_len, ig_ndirs, ig_monitor_all),
 * written by user space before load (node-agent/probe_dirs.c), so the
 * verifier sees constants and prunes the unused slots.
 */
#ifndef IG_PATH_BPF_H
#define IG_PATH_BPF_H

#include "ig_bpf.h"
#include "ig_path.h"

#define IG_PATH_MASK (IG_PATH_MAX - 1)
#define IG_PATH_WIDE_MASK (2 * IG_PATH_MAX - 1) /* path + slack */
#define IG_NAME_MASK 255 /* NAME_MAX */
#define IG_WALK_STEPS 48 /* path components + mount crossings walked */
#define IG_WALK_MASK 63
#define IG_LEN_MOUNT 0xffffffffu /* lens[] marker: a mount crossing, no name */
#define IG_PATH_DEPTH (IG_PATH_MAX / 2) /* components a path of IG_PATH_MAX can have */

/* ig_path_scratch.flags */
#define IG_PATH_TRUNCATED 0x1 /* longer than IG_PATH_MAX - 1 bytes; path holds the start */

const volatile __u32 ig_ndirs = 0;
const volatile bool ig_monitor_all = false; /* monitor_dirs contains "/" */
const volatile __u32 ig_dir_len[IG_PATH_MAX_DIRS] = {};
const volatile char ig_dirs[IG_PATH_MAX_DIRS][IG_PATH_DIR_MAX] = {};

struct ig_path_scratch {
	/* The path, NUL-terminated at len. The upper half is slack: accesses
	 * at a masked offset stay inside the map value in the verifier's
	 * eyes; the code never writes a path past path[IG_PATH_MAX - 1]. */
	char path[2 * IG_PATH_MAX];
	/* The name as the process passed it, when path differs from it
	 * (raw_len > 0): relative, or folded by ig_path_normalise. */
	char raw[2 * IG_PATH_MAX];
	const unsigned char *names[IG_WALK_MASK + 1];
	__u32 lens[IG_WALK_MASK + 1];
	__u16 starts[IG_PATH_DEPTH]; /* normalise: where each kept component starts */
	__u32 len; /* strlen(path) */
	__u32 raw_len; /* strlen(raw); 0: path is the name as passed */
	__u32 flags; /* IG_PATH_* */
	/* Loop-carried state (see the top of this file). */
	__u32 nsteps, done, off;
	__u32 w, cs, depth; /* ig_path_fold_step */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_path_scratch);
} ig_path_scratch SEC(".maps");

static __always_inline struct ig_path_scratch *ig_path_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ig_path_scratch, &zero);
}

/* Reads a user path into ps->path. Returns its length, or -1 when the
 * pointer or its page cannot be read (path is then ""). */
static __always_inline long ig_path_read_user(struct ig_path_scratch *ps, const char *upath)
{
	long n = bpf_probe_read_user_str(ps->path, IG_PATH_MAX, upath);

	ps->flags = 0;
	ps->raw_len = 0;
	if (n <= 0) {
		ps->path[0] = 0;
		ps->len = 0;
		return -1;
	}
	if (n == IG_PATH_MAX) {
		char c = 0;
		bpf_probe_read_user(&c, 1, upath + IG_PATH_MAX - 1);
		if (c)
			ps->flags |= IG_PATH_TRUNCATED;
	}
	ps->len = (n - 1) & IG_PATH_MASK;
	return n - 1;
}

/* Is ps->path under a monitor_dirs entry? Boundary first: the byte after
 * the prefix must end the path or start a component, which rejects most
 * paths before comparing anything. Global: with 16 prefixes of 255 bytes,
 * inlining exceeded the verifier's 1M-instruction budget. */
__noinline int ig_path_match(void)
{
	struct ig_path_scratch *ps = ig_path_get();

	if (!ps)
		return 0;
	if (ig_monitor_all)
		return 1;
	const char *path = ps->path;
	__u32 len = ps->len;
	for (__u32 i = 0; i < IG_PATH_MAX_DIRS; i++) {
		if (i >= ig_ndirs)
			return 0;
		__u32 dl = ig_dir_len[i];
		if (dl > len || dl >= IG_PATH_DIR_MAX)
			continue;
		char next = path[dl & IG_PATH_MASK];
		if (next != '/' && next != 0)
			continue;
		for (__u32 j = 0; j < IG_PATH_DIR_MAX; j++) {
			if (j >= dl)
				return 1;
			if (path[j] != ig_dirs[i][j])
				break;
		}
	}
	return 0;
}

/* Does the absolute ps->path need folding: a "//", a "." or ".."
 * component, or a trailing "/"? Loads only; most paths need none. Global,
 * so its caller continues from one state, not one per early return. */
__noinline int ig_path_needs_folding(void)
{
	struct ig_path_scratch *ps = ig_path_get();

	if (!ps)
		return 0;
	__u32 len = ps->len & IG_PATH_MASK;
	if (len < 2 || ps->path[0] != '/')
		return 0;
	if (ps->path[(len - 1) & IG_PATH_MASK] == '/')
		return 1;
	for (__u32 i = 0; i < IG_PATH_MAX; i++) {
		if (i >= len)
			break;
		if (ps->path[i] != '/')
			continue;
		char c1 = ps->path[(i + 1) & IG_PATH_WIDE_MASK];
		if (c1 == '/')
			return 1;
		if (c1 != '.')
			continue;
		char c2 = ps->path[(i + 2) & IG_PATH_WIDE_MASK];
		if (c2 == '/' || c2 == 0)
			return 1;
		if (c2 != '.')
			continue;
		char c3 = ps->path[(i + 3) & IG_PATH_WIDE_MASK];
		if (c3 == '/' || c3 == 0)
			return 1;
	}
	return 0;
}

/* One step of ig_path_normalise: input byte i (i == len: the end of the
 * path, which acts as a final "/"). w (write offset) never passes i. cs is
 * where the component being copied starts; at its end, "" and "." are
 * dropped, ".." returns to the start of the previous kept component
 * (starts[]), anything else is kept and followed by "/". A global function:
 * the verifier checks the step once instead of once per byte. */
__noinline int ig_path_fold_step(__u32 i)
{
	struct ig_path_scratch *ps = ig_path_get();

	if (!ps)
		return 0;
	__u32 len = ps->len & IG_PATH_MASK;
	char c = i < len ? ps->path[i & IG_PATH_MASK] : '/';
	__u32 w = ps->w & IG_PATH_MASK;
	if (c != '/') {
		ps->path[w] = c;
		ps->w = w + 1;
		return 0;
	}
	__u32 cs = ps->cs & IG_PATH_MASK;
	if (w == cs)
		return 0; /* "//" */
	if (w == cs + 1 && ps->path[cs] == '.') {
		ps->w = cs; /* "." */
		return 0;
	}
	__u32 d = ps->depth & (IG_PATH_DEPTH - 1);
	if (w == cs + 2 && ps->path[cs] == '.' && ps->path[(cs + 1) & IG_PATH_MASK] == '.') {
		if (d > 0) {
			/* The barrier keeps the mask: clang drops it (d > 0), and
			 * verifiers before 6.x cannot bound d - 1 without it. */
			__u32 pd = d - 1;
			barrier_var(pd);
			__u32 prev = ps->starts[pd & (IG_PATH_DEPTH - 1)];
			ps->depth = d - 1;
			ps->w = prev;
			ps->cs = prev;
		} else {
			ps->w = cs; /* ".." at the root */
		}
		return 0;
	}
	ps->starts[d] = cs;
	ps->depth = d + 1;
	ps->path[w] = '/';
	ps->w = w + 1;
	ps->cs = w + 1;
	return 0;
}

/* Folds the absolute ps->path lexically, in place: "//" and "/./" become
 * "/", "/x/.." drops x, ".." at the root stays at the root, a trailing "/"
 * goes. The name as passed is kept in ps->raw first. Returns 1 when the
 * path changed. Symlinks are not looked at: "/link/.." is the directory
 * holding link, not the parent of link's target (ig_path_of_file sees
 * through them). Paths that need no folding cost one scan of loads. */
__noinline int ig_path_normalise(void)
{
	if (!ig_path_needs_folding())
		return 0;
	struct ig_path_scratch *ps = ig_path_get();
	if (!ps)
		return 0;
	__u32 len = ps->len & IG_PATH_MASK;
	if (!ps->raw_len) {
		bpf_probe_read_kernel(ps->raw, len + 1, ps->path);
		ps->raw[len] = 0;
		ps->raw_len = len;
	}
	ps->w = 1;
	ps->cs = 1;
	ps->depth = 0;
	for (__u32 i = 1; i <= IG_PATH_MAX; i++) {
		if (i > len)
			break;
		ig_path_fold_step(i);
	}
	__u32 w = ps->w & IG_PATH_MASK;
	if (w > 1)
		w--; /* the "/" after the last component */
	ps->path[w] = 0;
	ps->len = w;
	return 1;
}

/* Writes the absolute path of (dentry, vfsmount) as seen from (root_dentry,
 * root_mnt), the task's fs->root, into ps->path. Returns the length, or -1
 * when it cannot be known (deeper than IG_WALK_STEPS, a disconnected
 * dentry, or outside the root); ps->path is left untouched then. Pointers
 * come as scalars: a global function takes no kernel pointers. */
__noinline long ig_path_walk(__u64 dentry, __u64 vfsmount, __u64 root_dentry, __u64 root_mnt)
{
	struct ig_path_scratch *ps = ig_path_get();
	struct dentry *d = (struct dentry *)dentry;
	struct vfsmount *m = (struct vfsmount *)vfsmount;
	struct path root = { .dentry = (struct dentry *)root_dentry,
			     .mnt = (struct vfsmount *)root_mnt };

	if (!ps || !d || !m)
		return -1;

	/* Leaf to root: names[i]/lens[i] per step, IG_LEN_MOUNT for a step
	 * that crossed from a mount's root to its mount point. */
	struct mount *mnt = (struct mount *)((char *)m - bpf_core_field_offset(struct mount, mnt));
	struct dentry *mnt_root = BPF_CORE_READ(m, mnt_root);
	ps->done = 0;
	ps->nsteps = 0;
	for (__u32 i = 0; i < IG_WALK_STEPS; i++) {
		if (d == root.dentry && m == root.mnt) {
			ps->done = 1;
			ps->nsteps = i;
			break;
		}
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (d == mnt_root || d == parent) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
			/* The global root without passing the task's root (a
			 * path outside a chroot), or a disconnected dentry. */
			if (mp == mnt || d != mnt_root)
				break;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			m = (struct vfsmount *)((char *)mp +
						bpf_core_field_offset(struct mount, mnt));
			mnt_root = BPF_CORE_READ(m, mnt_root);
			ps->lens[i & IG_WALK_MASK] = IG_LEN_MOUNT;
			continue;
		}
		/* The whole qstr in one helper call (~25 ns each here). */
		struct qstr q = {};
		BPF_CORE_READ_INTO(&q, d, d_name);
		ps->names[i & IG_WALK_MASK] = q.name;
		ps->lens[i & IG_WALK_MASK] = q.len;
		d = parent;
	}
	if (!*(volatile __u32 *)&ps->done)
		return -1;

	/* Root to leaf: "/" name per component. */
	ps->off = 0;
	for (int k = IG_WALK_STEPS - 1; k >= 0; k--) {
		if ((__u32)k >= *(volatile __u32 *)&ps->nsteps)
			continue;
		__u32 l = ps->lens[k & IG_WALK_MASK];
		if (l == IG_LEN_MOUNT)
			continue;
		l &= IG_NAME_MASK;
		__u32 off = *(volatile __u32 *)&ps->off & IG_PATH_MASK;
		if (off + 1 + l > IG_PATH_MAX - 1) {
			ps->flags |= IG_PATH_TRUNCATED;
			break;
		}
		ps->path[off] = '/';
		bpf_probe_read_kernel(&ps->path[off + 1], l, ps->names[k & IG_WALK_MASK]);
		ps->off = off + 1 + l;
	}
	__u32 off = *(volatile __u32 *)&ps->off & IG_PATH_MASK;
	if (off == 0)
		ps->path[off++] = '/';
	ps->path[off] = 0;
	ps->len = off;
	return off;
}

/* The struct file behind the current task's fd, or NULL. */
static __always_inline struct file *ig_fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fda = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	return f;
}

/* ig_fd_file with direct BTF loads for task->files->fdt (no helper calls
 * but the fd array element's) where bpf_get_current_task_btf exists
 * (5.11+); ig_fd_file on 5.10 (a load-time constant, see
 * ig_current_in_compat_syscall). */
static __always_inline struct file *ig_fd_file_btf(int fd)
{
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return ig_fd_file(fd);
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file **fda = fdt->fd;
	struct file *f = NULL;

	if (fd < 0 || (__u32)fd >= fdt->max_fds)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fda[fd]);
	return f;
}

/* Resolves the relative ps->path (as read by ig_path_read_user) against
 * dirfd (AT_FDCWD: the cwd) into an absolute path, and keeps the name as
 * passed in ps->raw. Returns the new length, or -1 when the base directory
 * cannot be resolved (ps->path is left as it was). The result still needs
 * ig_path_normalise ("a/../b", "./x", ".").
 */
__noinline long ig_path_resolve_at(int dirfd)
{
	struct ig_path_scratch *ps = ig_path_get();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fs_struct *fs = BPF_CORE_READ(task, fs);
	struct path base = {}, root = {};

	if (!ps)
		return -1;
	/* Whole struct path reads: one helper call each (~25 ns here). */
	BPF_CORE_READ_INTO(&root, fs, root);
	if (dirfd == AT_FDCWD) {
		BPF_CORE_READ_INTO(&base, fs, pwd);
	} else {
		struct file *f = ig_fd_file(dirfd);
		if (!f)
			return -1;
		BPF_CORE_READ_INTO(&base, f, f_path);
	}
	__u32 rlen = ps->len & IG_PATH_MASK;
	/* The walk overwrites ps->path: the relative name moves aside. */
	bpf_probe_read_kernel(ps->raw, rlen + 1, ps->path);
	ps->raw[rlen] = 0;
	__u32 name_truncated = ps->flags & IG_PATH_TRUNCATED;
	ps->flags &= ~IG_PATH_TRUNCATED;
	if (ig_path_walk((__u64)base.dentry, (__u64)base.mnt, (__u64)root.dentry, (__u64)root.mnt) <
	    0) {
		ps->flags |= name_truncated;
		ps->raw_len = 0;
		return -1;
	}
	ps->raw_len = rlen;

	__u32 off = ps->len & IG_PATH_MASK;
	/* A base that did not fit is all there is to report. */
	if ((ps->flags & IG_PATH_TRUNCATED) || off + 1 >= IG_PATH_MAX - 1) {
		ps->flags |= IG_PATH_TRUNCATED;
		return off;
	}
	ps->flags |= name_truncated;
	if (off > 1) /* not after the root's "/" */
		ps->path[off++] = '/';
	__u32 room = IG_PATH_MAX - off; /* bytes incl. NUL, 2..511 */
	long n = bpf_probe_read_kernel_str(&ps->path[off & IG_PATH_MASK], room & IG_PATH_MASK,
					   ps->raw);
	if (n <= 0) {
		ps->path[off & IG_PATH_MASK] = 0;
		ps->len = off;
		return off;
	}
	/* The relative name did not fit when it is longer than what was copied. */
	if ((__u32)n == room && rlen > (__u32)n - 1)
		ps->flags |= IG_PATH_TRUNCATED;
	ps->len = (off + n - 1) & IG_PATH_MASK;
	return ps->len;
}

/* ps->path = the path of an open file (its f_path walked), and ps->raw_len
 * = 0. Returns the length, or -1 (see ig_path_walk). */
__noinline long ig_path_of_file(__u64 file)
{
	struct ig_path_scratch *ps = ig_path_get();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *f = (struct file *)file;
	struct path p = {}, root = {};

	if (!ps || !f)
		return -1;
	BPF_CORE_READ_INTO(&p, f, f_path);
	BPF_CORE_READ_INTO(&root, task, fs, root);
	ps->flags = 0;
	ps->raw_len = 0;
	return ig_path_walk((__u64)p.dentry, (__u64)p.mnt, (__u64)root.dentry, (__u64)root.mnt);
}

#endif
