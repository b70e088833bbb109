/* privs: see privs.h. */
#include "privs.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ig_log.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif

/* LeakSanitizer suspends the process's threads with ptrace at exit, which
 * fails once CAP_SYS_PTRACE is gone ("Running thread ... was not suspended.
 * False leaks are possible."). Sanitizer builds (tests only) keep it when
 * they have it; release builds never do. */
#if defined(__SANITIZE_ADDRESS__)
#define IG_KEEP_PTRACE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IG_KEEP_PTRACE 1
#endif
#endif
#ifndef IG_KEEP_PTRACE
#define IG_KEEP_PTRACE 0
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct need {
	cap_value_t cap;
	const char *probe, *why;
};

static const char *probe_name(int kind)
{
	return ig_probe_descs[kind].name;
}

static bool enabled(const struct ig_conf *c, int kind)
{
	const struct ig_probe_common *pc = ig_conf_probe_common(c, kind);
	return pc && pc->enabled;
}

/* The capabilities the enabled probes need; returns how many (<= max). */
static int needed(const struct ig_conf *c, struct need *out, int max)
{
	int n = 0;

	for (int k = 0; k < IG_PROBE__COUNT && n + 3 <= max; k++) {
		if (!enabled(c, k))
			continue;
		out[n++] =
			(struct need){ CAP_BPF, probe_name(k), "loading eBPF programs and maps" };
		out[n++] = (struct need){ CAP_PERFMON, probe_name(k),
					  "attaching tracepoints and reading kernel memory" };
		if (k == IG_PROBE_TRAFFIC &&
		    ((const struct ig_traffic_conf *)c->probes[k])->method == 2)
			out[n++] = (struct need){ CAP_NET_ADMIN, probe_name(k),
						  "attaching cgroup_skb programs (method: "
						  "cgroup_skb)" };
		/* The payload capture layer: cgroup_skb and cgroup sock programs. */
		if (k == IG_PROBE_DNS || k == IG_PROBE_TLS)
			out[n++] = (struct need){ CAP_NET_ADMIN, probe_name(k),
						  "attaching the capture layer's cgroup_skb and "
						  "cgroup sock programs" };
	}
	return n;
}

static bool has(cap_t caps, cap_value_t v, cap_flag_t set)
{
	cap_flag_value_t f = CAP_CLEAR;
	return cap_get_flag(caps, v, set, &f) == 0 && f == CAP_SET;
}

int ig_privs_check(const struct ig_conf *conf, struct ig_err *err)
{
	struct need nd[3 * IG_PROBE__COUNT];
	int n = needed(conf, nd, (int)(sizeof(nd) / sizeof(nd[0]))), rc = 0;
	cap_t caps = cap_get_proc();

	if (!caps) {
		ig_err_add(err, "cannot read this process's capabilities (%s)", strerror(errno));
		return -EPERM;
	}
	/* CAP_SYS_ADMIN covers CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN. */
	bool admin = has(caps, CAP_SYS_ADMIN, CAP_EFFECTIVE);
	cap_value_t told[4];
	int ntold = 0;
	for (int i = 0; i < n && !admin; i++) {
		bool dup = false;
		for (int j = 0; j < ntold; j++)
			dup |= told[j] == nd[i].cap;
		if (dup || has(caps, nd[i].cap, CAP_EFFECTIVE))
			continue;
		if (ntold < 4)
			told[ntold++] = nd[i].cap;
		char *name = cap_to_name(nd[i].cap), k8s[32] = "?";
		if (name && strlen(name) > 4 && strlen(name) < sizeof(k8s)) {
			size_t l = 0;
			for (const char *c = name + 4; *c; c++)
				k8s[l++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
			k8s[l] = '\0';
		}
		ig_err_add(
			err,
			"probe %s needs %s (%s), which this process lacks: grant it (in "
			"Kubernetes: securityContext.capabilities.add: [%s]) or disable the probe; "
			"docs/capabilities.md lists each probe's set",
			nd[i].probe, name ? name : "?", nd[i].why, k8s);
		cap_free(name);
		rc = -EPERM;
	}
	cap_free(caps);
	return rc;
}

static cap_t saved_permitted; /* for raise: the permitted set after the drop */

/* Before Linux 6.5 the bpf(2) entry refused every command, reads of maps the
 * agent already holds included, to a caller without CAP_BPF or CAP_SYS_ADMIN
 * while kernel.unprivileged_bpf_disabled is set (Debian's default, 2): loss
 * counters and the traffic/file_io tables would then read as nothing. An
 * invalid call tells which kernel this is: EPERM there, EBADF after. */
static bool bpf_refuses_without_cap(void)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (__u32)-1;
	return syscall(__NR_bpf, BPF_MAP_LOOKUP_ELEM, &attr, sizeof(attr)) < 0 && errno == EPERM;
}

int ig_privs_drop(const struct ig_conf *conf)
{
	struct need nd[3 * IG_PROBE__COUNT];
	int n = needed(conf, nd, (int)(sizeof(nd) / sizeof(nd[0])));
	cap_t cur = cap_get_proc(), keep = cap_init();
	cap_value_t vals[6];
	int nv = 0;
	char kept[256] = "";
	int rc = 0;

	if (!cur || !keep) {
		cap_free(cur);
		cap_free(keep);
		return -ENOMEM;
	}
	/* What loading needs, as this process holds it (CAP_SYS_ADMIN when it
	 * is what stands in for the others). */
	bool admin_only = false;
	for (int i = 0; i < n; i++) {
		cap_value_t v = nd[i].cap;
		if (!has(cur, v, CAP_EFFECTIVE)) {
			v = CAP_SYS_ADMIN;
			admin_only = true;
		}
		bool dup = false;
		for (int j = 0; j < nv; j++)
			dup |= vals[j] == v;
		if (!dup && nv < 4)
			vals[nv++] = v;
	}
	if (nv)
		cap_set_flag(keep, CAP_PERMITTED, nv, vals, CAP_SET);
	/* CAP_DAC_READ_SEARCH is used after loading, not only for it: the identity
	 * worker resolves unknown cgroup ids through open_by_handle_at(2). Kept
	 * effective when granted (without it the worker walks the hierarchy). */
	bool dac = has(cur, CAP_DAC_READ_SEARCH, CAP_EFFECTIVE);
	if (dac) {
		cap_value_t d = CAP_DAC_READ_SEARCH;
		cap_set_flag(keep, CAP_PERMITTED, 1, &d, CAP_SET);
		cap_set_flag(keep, CAP_EFFECTIVE, 1, &d, CAP_SET);
		vals[nv++] = d;
	}
	if (IG_KEEP_PTRACE && has(cur, CAP_SYS_PTRACE, CAP_EFFECTIVE) && nv < 6) {
		cap_value_t p = CAP_SYS_PTRACE;
		cap_set_flag(keep, CAP_PERMITTED, 1, &p, CAP_SET);
		cap_set_flag(keep, CAP_EFFECTIVE, 1, &p, CAP_SET);
		vals[nv++] = p; /* and in the bounding set */
	}
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which the
	 * capset below gives up. */
	if (CAP_IS_SUPPORTED(CAP_SETPCAP) && has(cur, CAP_SETPCAP, CAP_EFFECTIVE)) {
		for (cap_value_t v = 0; v <= cap_max_bits() - 1; v++) {
			if (!CAP_IS_SUPPORTED(v) || cap_get_bound(v) != 1)
				continue;
			bool k = false;
			for (int j = 0; j < nv; j++)
				k |= vals[j] == v;
			if (!k && cap_drop_bound(v) && errno != EINVAL)
				rc = -errno;
		}
	}
	bool bpf_kept = false, set_ok = false;
	if (cap_set_proc(keep)) {
		rc = -errno;
		ig_warn("cannot drop capabilities; the agent keeps running with the ones it has",
			"err=\"%s\"", strerror(errno));
	} else if ((set_ok = true) && nv && bpf_refuses_without_cap()) {
		/* This kernel checks on every bpf(2) call: the one that stands for
		 * CAP_BPF stays effective (it is permitted already). */
		cap_value_t b = admin_only ? CAP_SYS_ADMIN : CAP_BPF;
		cap_set_flag(keep, CAP_EFFECTIVE, 1, &b, CAP_SET);
		if (cap_set_proc(keep) == 0) {
			bpf_kept = true;
			ig_warn("this kernel refuses bpf(2) map reads without cap_bpf while "
				"kernel.unprivileged_bpf_disabled is set (before Linux 6.5): "
				"cap_bpf stays effective so that loss counters and probe tables "
				"can be read",
				"kept=%s", admin_only ? "cap_sys_admin" : "cap_bpf");
		} else {
			ig_error("this kernel refuses bpf(2) map reads without cap_bpf, and "
				 "cap_bpf could not be kept effective: loss counters and the "
				 "traffic/file_io tables will read as empty; set "
				 "agent.drop_capabilities: false",
				 "err=\"%s\"", strerror(errno));
		}
	}
	if (set_ok) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		for (int j = 0; j < nv; j++) {
			char *nm = cap_to_name(vals[j]);
			size_t l = strlen(kept);
			snprintf(kept + l, sizeof(kept) - l, "%s%s", l ? "," : "", nm ? nm : "?");
			cap_free(nm);
		}
		ig_info(bpf_kept ? "capabilities dropped: cap_bpf (map reads on this kernel) and, "
				   "when granted, cap_dac_read_search effective; the probes' load "
				   "set stays permitted for reloads" :
			dac ? "capabilities dropped: only cap_dac_read_search effective (cgroup "
			      "lookups); the probes' load set stays permitted for reloads" :
			      "capabilities dropped: none effective; the probes' load set stays "
			      "permitted for reloads",
			"permitted=%s%s", kept[0] ? kept : "none",
			admin_only ? " (cap_sys_admin stands in: grant cap_bpf,cap_perfmon "
				     "instead)" :
				     "");
		cap_free(saved_permitted);
		saved_permitted = cap_dup(keep);
	}
	cap_free(cur);
	cap_free(keep);
	return rc;
}

void ig_privs_raise(void)
{
	if (!saved_permitted)
		return;
	cap_t c = cap_dup(saved_permitted);
	cap_value_t v;
	if (!c)
		return;
	for (v = 0; v < cap_max_bits(); v++) {
		cap_flag_value_t f = CAP_CLEAR;
		if (cap_get_flag(saved_permitted, v, CAP_PERMITTED, &f) == 0 && f == CAP_SET)
			cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET);
	}
	if (cap_set_proc(c))
		ig_warn("cannot raise the probes' capabilities for a reload", "err=\"%s\"",
			strerror(errno));
	cap_free(c);
}

void ig_privs_lower(void)
{
	if (saved_permitted && cap_set_proc(saved_permitted))
		ig_warn("cannot lower capabilities after a reload", "err=\"%s\"", strerror(errno));
}
