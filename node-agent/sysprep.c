/* sysprep: node prerequisites for the eBPF probes. See sysprep.h.
 *
 * Checks run in order and all of them run, so one start-up reports every
 * problem. Filesystems are recognised by their statfs magic number, not by
 * parsing /proc/mounts: a path can sit on another filesystem (an empty
 * directory of sysfs) even when the mount table mentions it elsewhere.
 */
#include "sysprep.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bpf_util.h"
#include "ig_log.h"

#define TRACEFS_MAGIC_NR 0x74726163 /* linux/magic.h TRACEFS_MAGIC */
#define BPF_FS_MAGIC_NR 0xcafe4a11 /* linux/magic.h BPF_FS_MAGIC */

static int keep(int rv, int cur)
{
	return cur < 0 ? cur : rv;
}

static bool is_fs(const char *path, unsigned long magic)
{
	struct statfs st;

	return statfs(path, &st) == 0 && (unsigned long)st.f_type == magic;
}

static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* With the capabilities in place, bpf(2) with an invalid command fails with
 * EINVAL in the kernel; EPERM means a seccomp filter stopped it first (a
 * container runtime's default profile that allows bpf(2) only to
 * CAP_SYS_ADMIN). Said here, the operator is not sent hunting for a
 * capability that is already granted. */
static int check_seccomp(struct ig_err *err)
{
	if (syscall(SYS_bpf, -1, NULL, 0) == 0 || errno != EPERM)
		return 0;
	ig_err_add(err, "a seccomp filter refuses bpf(2) although the capabilities are granted: "
			"the container runtime's default profile allows it only to CAP_SYS_ADMIN; "
			"set the agent's seccompProfile to Unconfined (Helm: "
			"agent.seccompProfile.type=Unconfined) or to a profile allowing bpf and "
			"perf_event_open");
	return -EPERM;
}

/* The seccomp check only means something when the capabilities are there
 * (privs.c checks those, per probe): without them bpf(2) says EPERM too. */
static int check_seccomp_if_capable(struct ig_err *err)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	if (has_cap(data, CAP_SYS_ADMIN) || (has_cap(data, CAP_BPF) && has_cap(data, CAP_PERFMON)))
		return check_seccomp(err);
	return 0;
}

static int check_btf(struct ig_err *err)
{
	if (access(IG_BTF_VMLINUX_PATH, R_OK) == 0)
		return 0;
	int e = errno;
	if (e == ENOENT)
		ig_err_add(err, "kernel has no BTF (CONFIG_DEBUG_INFO_BTF); ingrain needs a "
				"BTF-enabled kernel (" IG_BTF_VMLINUX_PATH " is missing): use a "
				"distribution kernel built with CONFIG_DEBUG_INFO_BTF=y");
	else
		ig_err_add(err,
			   "cannot read " IG_BTF_VMLINUX_PATH " (%s): run ingrain-agent as "
			   "root, and in a container mount the host's /sys",
			   strerror(e));
	return -e;
}

static int prep_tracefs(const struct ig_agent_conf *ac, struct ig_err *err)
{
	if (is_fs(IG_TRACEFS_PATH, TRACEFS_MAGIC_NR) ||
	    is_fs(IG_TRACEFS_DEBUGFS_PATH, TRACEFS_MAGIC_NR))
		return 0;
	if (!ac->mount_tracefs) {
		ig_err_add(err, "tracefs is not mounted at " IG_TRACEFS_PATH ": mount it "
				"(mount -t tracefs tracefs " IG_TRACEFS_PATH ") or set "
				"agent.mount_tracefs: true");
		return -ENOENT;
	}
	if (mount("tracefs", IG_TRACEFS_PATH, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) <
	    0) {
		int e = errno;
		if (ig_bpf_has_tp_btf()) {
			ig_warn("tracefs is not mounted and mounting it failed; probes fall back "
				"to tp_btf raw tracepoints, which cost every syscall more: mount "
				"tracefs at " IG_TRACEFS_PATH,
				"err=\"%s\"", strerror(e));
			return 0;
		}
		ig_err_add(
			err,
			"tracefs is not mounted at " IG_TRACEFS_PATH " and mounting it "
			"failed (%s): mount it on the host (mount -t tracefs tracefs " IG_TRACEFS_PATH
			"), or give the agent CAP_SYS_ADMIN and a writable "
			"/sys/kernel",
			strerror(e));
		return -e;
	}
	ig_info("mounted tracefs", "path=%s", IG_TRACEFS_PATH);
	return 0;
}

/* bpffs is for pinning; no probe pins today, so a failure only warns. */
static void prep_bpffs(const struct ig_agent_conf *ac)
{
	if (is_fs(IG_BPFFS_PATH, BPF_FS_MAGIC_NR) || !ac->mount_bpffs)
		return;
	if (mount("bpf", IG_BPFFS_PATH, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		ig_warn("bpffs is not mounted and mounting it failed; nothing needs it yet, but "
			"mount it (mount -t bpf bpf /sys/fs/bpf) to silence this",
			"path=%s err=\"%s\"", IG_BPFFS_PATH, strerror(errno));
		return;
	}
	ig_info("mounted bpffs", "path=%s", IG_BPFFS_PATH);
}

static void raise_memlock(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };

	if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		ig_debug("could not raise RLIMIT_MEMLOCK; only kernels before 5.11 need it "
			 "(grant CAP_SYS_RESOURCE or run ulimit -l unlimited there)",
			 "err=\"%s\"", strerror(errno));
}

int ig_sysprep(const struct ig_agent_conf *ac, struct ig_err *err)
{
	int rv = 0;

	ig_bpf_log_init();
	/* Capabilities: privs.c (checked by the caller, per probe). */
	rv = keep(check_seccomp_if_capable(err), rv);
	rv = keep(check_btf(err), rv);
	rv = keep(prep_tracefs(ac, err), rv);
	prep_bpffs(ac);
	raise_memlock();
	return rv;
}
