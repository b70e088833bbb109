/* probe_files: the file-access probe, user side (kernel side:
 * bpf/files.bpf.c, shared event: bpf/files.h, reference: docs/probes.md).
 *
 * open() validates monitor_dirs, writes the configuration into the
 * skeleton's .rodata (prefixes, include_failed, wakeup threshold, resolve
 * mode), sizes the ring buffer from agent.ringbuf_bytes, enables one program
 * variant (fentry/fexit on the syscall functions where the kernel allows
 * them, else syscall tracepoints, or tp_btf when those are missing), loads
 * and attaches. With resolve = real_path it also decides where the exit program
 * gets the arguments of an open that did not match at entry: the saved user
 * registers when the kernel has bpf_task_pt_regs for tracepoint programs,
 * else a per-open stash. consume() turns each "file.open" event into a
 * struct ig_record (one heap record, reused) and hands it to the sink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_util.h"
#include "files.h"
#include "files.skel.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "probe_dirs.h"

#define RINGBUF_DEFAULT (8 * 1024 * 1024)
/* Wakeup threshold estimate: header + a typical path + ring-buffer header. */
#define EVENT_TYPICAL_SIZE (IG_FILE_EVENT_HDR_SIZE + 64 + 8)

/* Program variants, by section prefix (bpf/files.bpf.c). */
enum files_variant { V_TRACEPOINT, V_TP_BTF, V_FENTRY };
static const char *const variant_names[] = { "tracepoint", "tp_btf", "fentry" };

struct files_state {
	struct files_bpf *skel;
	struct ring_buffer *rb;
	struct ig_sink sink;
	struct ig_record *rec;
	uint64_t events;
	uint64_t malformed;
	struct ig_ratelimit malformed_rl;
	enum files_variant variant;
	bool exit_args_stash;
};

static const char *const syscall_names[] = {
	[IG_FILE_SC_OPENAT] = "openat",
	[IG_FILE_SC_OPENAT2] = "openat2",
	[IG_FILE_SC_OPEN] = "open",
	[IG_FILE_SC_CREAT] = "creat",
};

static const char *access_mode(uint64_t flags)
{
	switch (flags & O_ACCMODE) {
	case O_RDONLY:
		return "r";
	case O_WRONLY:
		return "w";
	default:
		return "rw";
	}
}

static void build_record(struct files_state *st, const struct ig_file_event *ev)
{
	struct ig_record *r = st->rec;

	ig_record_reset(r);
	r->kind = "file.open";
	r->probe = "files";
	r->ts_ns = ig_mono_to_wall(ev->ts_ns);
	r->pid = ev->pid;
	r->tid = ev->tid;
	r->ppid = ev->ppid;
	r->uid = ev->uid;
	r->gid = ev->gid;
	r->cgroup_id = ev->cgroup_id;
	r->comm = ig_record_strndup(r, ev->comm, strnlen(ev->comm, sizeof(ev->comm)));

	const char *sc = ev->syscall < sizeof(syscall_names) / sizeof(syscall_names[0]) &&
					 syscall_names[ev->syscall] ?
				 syscall_names[ev->syscall] :
				 "unknown";
	ig_record_add_str(r, "path", ev->path, ev->path_len);
	ig_record_add_uint(r, "flags", ev->flags);
	ig_record_add_uint(r, "mode", ev->mode);
	ig_record_add_int(r, "ret", ev->ret);
	ig_record_add_str(r, "syscall", sc, strlen(sc));
	const char *acc = access_mode(ev->flags);
	ig_record_add_str(r, "access", acc, strlen(acc));
	if (ev->ret < 0) {
		const char *name = strerrorname_np((int)-ev->ret);
		char buf[24];
		if (!name) {
			snprintf(buf, sizeof(buf), "E%lld", (long long)-ev->ret);
			name = buf;
		}
		ig_record_add_str(r, "error", name, strlen(name));
	}
	if (ev->eflags & IG_FILE_F_RELATIVE) {
		ig_record_add_int(r, "dirfd", ev->dirfd);
		ig_record_add_uint(r, "relative", 1);
	}
	if (ev->eflags & IG_FILE_F_TRUNCATED)
		ig_record_add_uint(r, "truncated", 1);
	if (ev->eflags & IG_FILE_F_UNREADABLE)
		ig_record_add_uint(r, "path_unreadable", 1);
	if (ev->eflags & IG_FILE_F_REAL_PATH)
		ig_record_add_uint(r, "real_path", 1);
	if (ev->req_len) {
		ig_record_add_str(r, "requested_path", ev->path + ev->path_len + 1, ev->req_len);
		if (ev->eflags & IG_FILE_F_REQ_TRUNCATED)
			ig_record_add_uint(r, "requested_truncated", 1);
	}
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct files_state *st = ctx;
	const struct ig_file_event *ev = data;

	/* The kernel side sends header + path_len + 1 bytes (+ req_len + 1),
	 * rounded up; both strings NUL-terminated. */
	size_t need = IG_FILE_EVENT_HDR_SIZE + (size_t)ev->path_len + 1;
	if (size >= IG_FILE_EVENT_HDR_SIZE && ev->req_len)
		need += (size_t)ev->req_len + 1;
	if (size < IG_FILE_EVENT_HDR_SIZE + 1 || ev->path_len >= IG_FILE_PATH_MAX ||
	    ev->req_len >= IG_FILE_PATH_MAX || need > size || ev->path[ev->path_len] != 0 ||
	    (ev->req_len && ev->path[ev->path_len + 1 + ev->req_len] != 0)) {
		uint64_t suppressed = 0;
		st->malformed++;
		if (ig_ratelimit_ok(&st->malformed_rl, &suppressed))
			ig_warn("files probe: malformed event from the kernel side; this is a bug, "
				"please report it",
				"size=%zu suppressed=%llu", size, (unsigned long long)suppressed);
		return 0;
	}
	st->events++;
	build_record(st, ev);
	st->sink.emit(st->sink.ctx, st->rec);
	return 0;
}

/* monitor_dirs into the skeleton's .rodata (shared with file_io). */
static int configure_dirs(struct files_bpf *skel, const struct ig_files_conf *fc,
			  struct ig_err *err)
{
	const struct ig_probe_dirs_rodata ro = {
		.dirs = skel->rodata->ig_dirs,
		.dir_len = skel->rodata->ig_dir_len,
		.ndirs = &skel->rodata->ig_ndirs,
		.monitor_all = &skel->rodata->ig_monitor_all,
	};
	return ig_probe_dirs_fill(&fc->monitor_dirs, "probes.files", &ro, err);
}

static uint64_t ringbuf_size(uint64_t want)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t sz = page > 0 ? (uint64_t)page : 4096;

	if (want == 0)
		want = RINGBUF_DEFAULT;
	/* A power of two, at least one page. */
	while (sz < want && sz < (1ULL << 30))
		sz <<= 1;
	return sz;
}

static enum files_variant variant_of(const char *sec)
{
	if (strncmp(sec, "tp_btf/", 7) == 0)
		return V_TP_BTF;
	if (strncmp(sec, "fentry/", 7) == 0 || strncmp(sec, "fexit/", 6) == 0)
		return V_FENTRY;
	return V_TRACEPOINT;
}

/* Enables exactly one variant (libbpf-tools style autoload toggles). */
static void select_variant(struct files_bpf *skel, enum files_variant v)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj)
	{
		const char *sec = bpf_program__section_name(p);
		bool on = variant_of(sec) == v;
		/* A syscall tracepoint or function this kernel lacks
		 * (open/creat are x86-only) is skipped rather than failing
		 * the probe. */
		if (on && v == V_TRACEPOINT && strncmp(sec, "tracepoint/syscalls/", 20) == 0 &&
		    !ig_bpf_has_tracepoint("syscalls", sec + 20)) {
			ig_warn("files probe: syscall tracepoint missing; that syscall is not "
				"monitored",
				"tracepoint=%s", sec + 11);
			on = false;
		}
		if (on && v == V_FENTRY) {
			const char *fn = strchr(sec, '/') + 1;
			if (!ig_bpf_has_fentry_target(fn)) {
				ig_warn("files probe: syscall function missing from the kernel's "
					"BTF; that syscall is not monitored",
					"function=%s", fn);
				on = false;
			}
		}
		bpf_program__set_autoload(p, on);
	}
}

/* fentry/fexit on the syscall functions where the kernel allows them: they
 * run for opens only and leave the other syscalls alone. Else syscall
 * tracepoints: they tax every other syscall about half as much as tp_btf
 * sys_enter/sys_exit programs (which run for every syscall), and opens are
 * a small share of a real workload's syscalls (docs/probes.md has the
 * measurements). tp_btf when the syscall tracepoints are not available
 * (tracefs missing). INGRAIN_FILES_VARIANT=fentry|tracepoint|tp_btf
 * overrides, for tests, benchmarks and open-heavy nodes. */
static bool can_fentry(void)
{
	return ig_bpf_has_fentry() && ig_bpf_has_fentry_target("__x64_sys_openat");
}

static int choose_variant(enum files_variant *out, struct ig_err *err)
{
	const char *v = getenv("INGRAIN_FILES_VARIANT");

	if (v && strcmp(v, "tracepoint") == 0) {
		*out = V_TRACEPOINT;
		return 0;
	}
	if (v && strcmp(v, "tp_btf") == 0) {
		*out = V_TP_BTF;
		if (ig_bpf_has_tp_btf())
			return 0;
		ig_err_add(err, "INGRAIN_FILES_VARIANT=tp_btf but this kernel cannot attach "
				"tp_btf programs: unset it to use syscall tracepoints");
		return -EOPNOTSUPP;
	}
	if (v && strcmp(v, "fentry") == 0) {
		*out = V_FENTRY;
		if (can_fentry())
			return 0;
		ig_err_add(err, "INGRAIN_FILES_VARIANT=fentry but this kernel cannot attach "
				"fentry programs to __x64_sys_openat (no BPF trampolines, or "
				"refused by policy): unset it");
		return -EOPNOTSUPP;
	}
	if (v && *v) {
		ig_err_add(err,
			   "INGRAIN_FILES_VARIANT='%s' is not a variant: use fentry, tracepoint "
			   "or tp_btf, or unset it",
			   v);
		return -EINVAL;
	}
	if (can_fentry()) {
		*out = V_FENTRY;
		return 0;
	}
	*out = V_TRACEPOINT;
	if (ig_bpf_has_tracepoint("syscalls", "sys_enter_openat"))
		return 0;
	if (ig_bpf_has_tp_btf()) {
		*out = V_TP_BTF;
		return 0;
	}
	ig_err_add(err, "probes.files: no syscall tracepoints (is tracefs mounted at "
			"/sys/kernel/tracing? set agent.mount_tracefs: true or mount it) and "
			"the kernel cannot run tp_btf programs");
	return -ENOENT;
}

/* real_path: where the exit program gets the arguments of an open that did
 * not match at entry. tp_btf programs have the registers; syscall tracepoint
 * programs need bpf_task_pt_regs (5.15+), else every open is stashed at
 * entry (measurably dearer, docs/probes.md). INGRAIN_FILES_EXIT_ARGS=
 * regs|stash overrides, for tests and benchmarks. */
static int choose_exit_args(enum files_variant var, bool *stash, struct ig_err *err)
{
	const char *v = getenv("INGRAIN_FILES_EXIT_ARGS");
	bool regs_ok = var != V_TRACEPOINT ||
		       (libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_task_pt_regs,
						NULL) == 1 &&
			libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT,
						BPF_FUNC_get_current_task_btf, NULL) == 1);

	if (v && strcmp(v, "stash") == 0) {
		*stash = true;
		return 0;
	}
	if (v && strcmp(v, "regs") == 0) {
		*stash = false;
		if (regs_ok)
			return 0;
		ig_err_add(err, "INGRAIN_FILES_EXIT_ARGS=regs but this kernel has no "
				"bpf_task_pt_regs for tracepoint programs: unset it");
		return -EOPNOTSUPP;
	}
	if (v && *v) {
		ig_err_add(err,
			   "INGRAIN_FILES_EXIT_ARGS='%s' is not a choice: use regs or stash, or "
			   "unset it",
			   v);
		return -EINVAL;
	}
	*stash = !regs_ok;
	return 0;
}

static void files_close(void *state);

static int files_open(void **state, const void *conf, const struct ig_agent_conf *ac,
		      const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_files_conf *fc = conf;
	struct files_state *st = calloc(1, sizeof(*st));
	int rv;

	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->malformed_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	st->rec = calloc(1, sizeof(*st->rec));
	if (!st->rec) {
		rv = -ENOMEM;
		goto fail;
	}
	ig_bpf_log_init();

	st->skel = files_bpf__open();
	if (!st->skel) {
		rv = errno ? -errno : -EINVAL;
		ig_err_add(err, "probes.files: cannot open the BPF object (%s)", strerror(-rv));
		goto fail;
	}
	if ((rv = configure_dirs(st->skel, fc, err)) < 0)
		goto fail;
	st->skel->rodata->ig_include_failed = fc->include_failed;

	uint64_t rbsz = ringbuf_size(ac->ringbuf_bytes);
	if (ac->wakeup_records) {
		uint64_t thr = ac->wakeup_records * EVENT_TYPICAL_SIZE;
		/* Wake up before the buffer is half full whatever the setting. */
		st->skel->rodata->ig_wakeup_bytes = thr < rbsz / 2 ? thr : rbsz / 2;
	}
	if ((rv = bpf_map__set_max_entries(st->skel->maps.events, (uint32_t)rbsz)) < 0) {
		ig_err_add(err, "agent.ringbuf_bytes: cannot use %llu bytes (%s)",
			   (unsigned long long)rbsz, strerror(-rv));
		goto fail;
	}

	if ((rv = choose_variant(&st->variant, err)) < 0)
		goto fail;
	select_variant(st->skel, st->variant);
	st->skel->rodata->ig_resolve = (uint32_t)fc->resolve;
	if (fc->resolve == IG_FILE_RESOLVE_REAL_PATH &&
	    (rv = choose_exit_args(st->variant, &st->exit_args_stash, err)) < 0)
		goto fail;
	st->skel->rodata->ig_exit_args = st->exit_args_stash ? 1 : 0;
	if (!(fc->resolve == IG_FILE_RESOLVE_REAL_PATH && st->exit_args_stash))
		bpf_map__set_max_entries(st->skel->maps.args, 1); /* unused */

	if ((rv = files_bpf__load(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.files: the kernel refused the BPF programs (%s); the log "
			   "above has the verifier's reason. ingrain needs a BTF-enabled kernel "
			   "and root (or CAP_BPF + CAP_PERFMON)",
			   strerror(-rv));
		goto fail;
	}
	if ((rv = files_bpf__attach(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.files: attaching the %s programs failed (%s): check that "
			   "tracefs is mounted (agent.mount_tracefs) and that the agent runs as "
			   "root; INGRAIN_FILES_VARIANT=tracepoint forces the baseline",
			   variant_names[st->variant], strerror(-rv));
		goto fail;
	}
	st->rb = ring_buffer__new(bpf_map__fd(st->skel->maps.events), handle_event, st, NULL);
	if (!st->rb) {
		rv = errno ? -errno : -ENOMEM;
		ig_err_add(err, "probes.files: cannot map the ring buffer (%s)", strerror(-rv));
		goto fail;
	}
	ig_info("files probe attached",
		"variant=%s resolve=%s%s monitor_dirs=%zu ringbuf_bytes=%llu "
		"wakeup_bytes=%llu include_failed=%d",
		variant_names[st->variant],
		fc->resolve == IG_FILE_RESOLVE_REAL_PATH ? "real_path" : "lexical",
		fc->resolve == IG_FILE_RESOLVE_REAL_PATH ?
			(st->exit_args_stash ? " exit_args=stash" : " exit_args=regs") :
			"",
		fc->monitor_dirs.n, (unsigned long long)rbsz,
		(unsigned long long)st->skel->rodata->ig_wakeup_bytes, fc->include_failed);
	*state = st;
	return 0;
fail:
	files_close(st);
	return rv;
}

static int files_epoll_fd(void *state)
{
	struct files_state *st = state;

	return ring_buffer__epoll_fd(st->rb);
}

static int files_consume(void *state)
{
	struct files_state *st = state;

	return ring_buffer__consume(st->rb);
}

static void files_stats(void *state, struct ig_probe_stats *out)
{
	struct files_state *st = state;

	memset(out, 0, sizeof(*out));
	out->events = st->events;
	out->variant = variant_names[st->variant];
	ig_bpf_read_lost(bpf_map__fd(st->skel->maps.lost), &out->ringbuf_full, &out->other_lost);
}

static void files_close(void *state)
{
	struct files_state *st = state;

	if (!st)
		return;
	ring_buffer__free(st->rb);
	files_bpf__destroy(st->skel);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_files_ops = {
	.name = "files",
	.kind = IG_PROBE_FILES,
	.open = files_open,
	.epoll_fd = files_epoll_fd,
	.consume = files_consume,
	.stats = files_stats,
	.close = files_close,
};
