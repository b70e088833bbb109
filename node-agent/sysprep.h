/* sysprep: makes the node ready for the agent's eBPF probes, or says
 * exactly what is missing.
 *
 * Minimal node images (and some VMs) boot without tracefs or bpffs mounted;
 * syscall tracepoints are looked up by id in tracefs, so the agent mounts
 * what is missing when agent.mount_tracefs / agent.mount_bpffs allow it. It
 * also checks what cannot be fixed from here, kernel BTF (CO-RE needs it),
 * and raises RLIMIT_MEMLOCK for kernels that still charge BPF memory to it
 * (before 5.11). Capabilities are privs.h's, checked per probe.
 */
#ifndef IG_SYSPREP_H
#define IG_SYSPREP_H

#include "ig_conf.h"
#include "ig_err.h"

#define IG_TRACEFS_PATH "/sys/kernel/tracing"
#define IG_TRACEFS_DEBUGFS_PATH "/sys/kernel/debug/tracing"
#define IG_BPFFS_PATH "/sys/fs/bpf"
#define IG_BTF_VMLINUX_PATH "/sys/kernel/btf/vmlinux"

/* 0, or a negative errno after adding one message per failed prerequisite
 * to err (each says what to do). Also routes libbpf's log to ig_log. */
int ig_sysprep(const struct ig_agent_conf *ac, struct ig_err *err);

#endif
