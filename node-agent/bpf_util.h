/* bpf_util: the agent's glue to libbpf.
 *
 * libbpf prints through a callback; ig_bpf_log_init() routes it to ig_log so
 * verifier failures and attach errors appear in the agent's log format
 * (libbpf warnings at warn, info and debug chatter at debug).
 *
 * Feature probes answer "can this kernel run a program of that kind?" by
 * trying: a trivial program is loaded and attached, then closed. Probes use
 * the answers to set_autoload(false) on variants the kernel cannot run. The
 * answers are computed once and cached; they are not thread-safe on first
 * use (call them from the agent's main thread).
 */
#ifndef IG_BPF_UTIL_H
#define IG_BPF_UTIL_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_object;

/* Routes libbpf's messages to ig_log. Idempotent. */
void ig_bpf_log_init(void);

/* BTF-enabled raw tracepoints (SEC("tp_btf/...")): loads and attaches a
 * no-op program on sys_enter. */
bool ig_bpf_has_tp_btf(void);
/* The kernel has the tracepoint `name` for tp_btf programs (its
 * btf_trace_<name> type is in the vmlinux BTF); with ig_bpf_has_tp_btf(),
 * a tp_btf program on it loads. */
bool ig_bpf_has_tp_btf_event(const char *name);
/* fentry/fexit (SEC("fentry/...")): loads and attaches a no-op program on
 * do_sys_openat2. Fails on kernels without BPF trampolines or where a
 * security policy forbids them. */
bool ig_bpf_has_fentry(void);
/* The kernel function `name` is in the vmlinux BTF (a possible fentry/fexit
 * target; with ig_bpf_has_fentry() a program on it loads). */
bool ig_bpf_has_fentry_target(const char *name);
/* kprobes: the kprobe perf PMU exists and a kprobe program loads. */
bool ig_bpf_has_kprobes(void);
/* The tracepoint category/name exists in tracefs (needs tracefs mounted,
 * see ig_sysprep). */
bool ig_bpf_has_tracepoint(const char *category, const char *name);

/* Runs the kernel skipped for the loaded programs of obj, summed
 * (bpf_prog_info.recursion_misses, kernel 5.12+; 0 where unknown). A
 * classic tracepoint or kprobe program is skipped when another such
 * program is already running on the CPU (e.g. a softirq interrupting a
 * syscall tracepoint program); tp_btf/fentry programs only when the same
 * program would nest. Probes add this to their other_lost. */
uint64_t ig_bpf_prog_misses(struct bpf_object *obj);

/* Sums a per-CPU array "lost" map of the probes' convention: index 0 counts
 * events the ring buffer had no room for, index 1 everything else lost in
 * the kernel. Missing entries count as 0. */
void ig_bpf_read_lost(int map_fd, uint64_t *ringbuf_full, uint64_t *other);

#endif
