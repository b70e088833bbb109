/* bpf_util: libbpf log routing and kernel feature probes. See bpf_util.h.
 *
 * Each probe loads the smallest valid program ("r0 = 0; exit") of the kind
 * in question and attaches it, because loading alone is not enough: some
 * kernels accept a program and refuse the attach (fentry without
 * trampolines, lockdown, or a VM policy that returns EPERM). Everything is
 * closed again at once; the result is cached for the process lifetime.
 */
#include "bpf_util.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ig_log.h"

#define LOG_HEAD_LINES 10 /* long messages (verifier logs): first lines ... */
#define LOG_TAIL_LINES 50 /* ... and last lines, where the error is */
#define LOG_LINE_MAX 400

static void log_line(enum ig_log_level level, const char *s, size_t len)
{
	char buf[LOG_LINE_MAX + 1];
	size_t n = 0;

	for (size_t i = 0; i < len && n < LOG_LINE_MAX; i++) {
		char c = s[i];
		if (c == '"' || c == '\\')
			c = '\'';
		else if ((unsigned char)c < 0x20)
			c = ' ';
		buf[n++] = c;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	if (n == 0)
		return;
	buf[n] = 0;
	ig_log(level, "libbpf", "detail=\"%s\"", buf);
}

static int libbpf_print(enum libbpf_print_level plevel, const char *fmt, va_list ap)
{
	enum ig_log_level level = plevel == LIBBPF_WARN ? IG_LOG_WARN : IG_LOG_DEBUG;
	char *text = NULL;

	if (!ig_log_enabled(level))
		return 0;
	if (vasprintf(&text, fmt, ap) < 0)
		return 0;

	/* One log line per text line; long texts keep head and tail. */
	size_t nlines = 0;
	for (const char *p = text; *p; p++)
		nlines += *p == '\n' || p[1] == 0;
	size_t idx = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (nlines <= LOG_HEAD_LINES + LOG_TAIL_LINES || idx < LOG_HEAD_LINES ||
		    idx >= nlines - LOG_TAIL_LINES)
			log_line(level, p, len);
		else if (idx == LOG_HEAD_LINES)
			ig_log(level, "libbpf", "skipped_lines=%zu",
			       nlines - LOG_HEAD_LINES - LOG_TAIL_LINES);
		idx++;
		p += len + (nl ? 1 : 0);
	}
	free(text);
	return 0;
}

void ig_bpf_log_init(void)
{
	libbpf_set_print(libbpf_print);
}

/* "r0 = 0; exit" */
static const struct bpf_insn noop_prog[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
	{ .code = BPF_JMP | BPF_EXIT },
};

/* Loads a tracing program against the vmlinux BTF function/tracepoint
 * `target` and attaches it. 1 when both worked, 0 otherwise. */
static int try_tracing(const char *target, enum bpf_attach_type type)
{
	int id = libbpf_find_vmlinux_btf_id(target, type);
	if (id < 0) {
		ig_debug("feature probe: no BTF id", "target=%s err=%d", target, id);
		return 0;
	}
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = type,
		    .attach_btf_id = (uint32_t)id);
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ig_probe", "GPL", noop_prog, 2, &opts);
	if (fd < 0) {
		ig_debug("feature probe: load refused", "target=%s errno=%d", target, errno);
		return 0;
	}
	int lfd = bpf_raw_tracepoint_open(NULL, fd);
	int ok = lfd >= 0;
	if (!ok)
		ig_debug("feature probe: attach refused", "target=%s errno=%d", target, errno);
	if (lfd >= 0)
		close(lfd);
	close(fd);
	return ok;
}

static int cached(int *slot, int (*probe)(void))
{
	if (*slot < 0)
		*slot = probe();
	return *slot;
}

static int probe_tp_btf(void)
{
	return try_tracing("sys_enter", BPF_TRACE_RAW_TP);
}

static int probe_fentry(void)
{
	return try_tracing("do_sys_openat2", BPF_TRACE_FENTRY);
}

static int probe_kprobes(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/kprobe/type", "r");
	int type = -1;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &type) != 1)
		type = -1;
	fclose(f);
	if (type < 0)
		return 0;
	/* A kprobe perf event on a function every kernel has. */
	struct perf_event_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = (uint32_t)type;
	attr.config1 = (uint64_t)(uintptr_t) "do_sys_openat2"; /* kprobe_func */
	int pfd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0) {
		ig_debug("feature probe: kprobe refused", "errno=%d", errno);
		return 0;
	}
	close(pfd);
	return libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL) == 1;
}

bool ig_bpf_has_tp_btf(void)
{
	static int v = -1;
	return cached(&v, probe_tp_btf);
}

bool ig_bpf_has_tp_btf_event(const char *name)
{
	return libbpf_find_vmlinux_btf_id(name, BPF_TRACE_RAW_TP) >= 0;
}

bool ig_bpf_has_fentry_target(const char *name)
{
	return libbpf_find_vmlinux_btf_id(name, BPF_TRACE_FENTRY) >= 0;
}

bool ig_bpf_has_fentry(void)
{
	static int v = -1;
	return cached(&v, probe_fentry);
}

bool ig_bpf_has_kprobes(void)
{
	static int v = -1;
	return cached(&v, probe_kprobes);
}

bool ig_bpf_has_tracepoint(const char *category, const char *name)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char path[512];
	struct stat st;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		snprintf(path, sizeof(path), "%s/events/%s/%s/id", roots[i], category, name);
		if (stat(path, &st) == 0)
			return true;
	}
	return false;
}

uint64_t ig_bpf_prog_misses(struct bpf_object *obj)
{
	struct bpf_program *p;
	uint64_t sum = 0;

	if (!obj)
		return 0;
	bpf_object__for_each_program(p, obj)
	{
		int fd = bpf_program__fd(p);
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);

		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			sum += info.recursion_misses;
	}
	return sum;
}

void ig_bpf_read_lost(int map_fd, uint64_t *ringbuf_full, uint64_t *other)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t sums[2] = { 0, 0 };

	*ringbuf_full = *other = 0;
	if (ncpu <= 0)
		return;
	uint64_t *vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return;
	for (uint32_t idx = 0; idx < 2; idx++)
		if (bpf_map_lookup_elem(map_fd, &idx, vals) == 0)
			for (int c = 0; c < ncpu; c++)
				sums[idx] += vals[c];
	free(vals);
	*ringbuf_full = sums[0];
	*other = sums[1];
}
