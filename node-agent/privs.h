/* privs: the agent's capabilities (least privilege).
 *
 * Each enabled probe needs a known set of capabilities to load and attach
 * its programs (docs/capabilities.md): CAP_BPF and CAP_PERFMON for every
 * probe (tracepoints, tp_btf, ring buffers, reading kernel memory), and
 * CAP_NET_ADMIN in addition for the traffic probe's cgroup_skb method.
 * CAP_SYS_ADMIN stands in for all three (kernels before 5.8 have no CAP_BPF
 * or CAP_PERFMON) and is needed at start only to mount tracefs/bpffs when the
 * host has not. ig_privs_check names what is missing, per probe, before
 * anything is loaded.
 *
 * Once the probes are attached nothing else in the agent needs a capability
 * (ring buffers are mmap'd, maps are read through their fds), so
 * ig_privs_drop removes everything from the bounding, inheritable and
 * effective sets and sets no_new_privs; the load set stays in the permitted
 * set only, because a reload (SIGHUP) loads probes again: ig_privs_raise /
 * ig_privs_lower bracket that. With libcap (Debian libcap2). */
#ifndef IG_PRIVS_H
#define IG_PRIVS_H

#include "ig_conf.h"
#include "ig_err.h"

/* 0, or -EPERM with one line per missing capability (which probe needs it,
 * what for, how to grant it). */
int ig_privs_check(const struct ig_conf *conf, struct ig_err *err);
/* After the probes are attached: keep only what loading `conf`'s probes
 * needs, in the permitted set. Logs what is kept. 0 or -errno. */
int ig_privs_drop(const struct ig_conf *conf);
/* Around a reload's probe loading. */
void ig_privs_raise(void);
void ig_privs_lower(void);

#endif
