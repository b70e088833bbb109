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

/* Routes libbpf's messages to ig_log. Idempotent. */
void ig_bpf_log_init(void);

/* BTF-enabled raw tracepoints (SEC("tp_btf/...")): loads and attaches a
 * no-op program on sys_enter. */
bool ig_bpf_has_tp_btf(void);
/* fentry/fexit (SEC("fentry/...")): loads and attaches a no-op program on
 * do_sys_openat2. Fails on kernels without BPF trampolines or where a
 * security policy forbids them. */
bool ig_bpf_has_fentry(void);
/* kprobes: the kprobe perf PMU exists and a kprobe program loads. */
bool ig_bpf_has_kprobes(void);
/* The tracepoint category/name exists in tracefs (needs tracefs mounted,
 * see ig_sysprep). */
bool ig_bpf_has_tracepoint(const char *category, const char *name);

#endif
