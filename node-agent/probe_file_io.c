/* probe_file_io: the file I/O volume probe, user side (kernel side:
 * bpf/file_io.bpf.c, shared table layout: bpf/file_io.h, reference:
 * docs/probes.md).
 *
 * No ring buffer: the kernel adds to a per-CPU LRU hash ("io") keyed by
 * (process, cgroup, file), and this file reads it every
 * probes.file_io.interval from consume() (which the agent calls at least
 * every agent.poll_interval; epoll_fd() is -1). A pass:
 *   1. walks "io", sums the CPUs of every key and compares with the totals
 *      of the previous pass (an open-addressing table rebuilt every pass;
 *      keys gone from the kernel drop out). An entry's creation time tells
 *      a key evicted and re-created from one that kept counting: the former
 *      reports its whole new total;
 *   2. finds the path of every changed key's file, and merges keys of one
 *      process and cgroup with the same path (a file replaced by rename is
 *      a new inode under the same name) into one "file.io" record carrying
 *      the differences;
 *   3. empties "seen", the kernel's cache of monitored/not-monitored
 *      verdicts, so renames take effect within an interval (and the kernel
 *      sends the paths of the files in use again);
 *   4. forgets the paths no key has referred to for two passes.
 * Paths arrive on the "paths" ring buffer, a record per file the kernel saw
 * for the first time in an interval, drained on every consume() and before
 * a pass looks paths up; they are kept in a table keyed by the file's
 * identity (inode address, number, generation). A path that did not arrive
 * (ring buffer full) is reported as path_unknown, and the file's verdict is
 * dropped so that the kernel sends it again.
 * Evictions: inserts (counted by the kernel) minus the keys a pass found;
 * each may lose the bytes counted since the previous read, so they are
 * reported as other_lost and logged. close() detaches first, then reads a
 * last time, so a shutdown or reload does not lose the partial interval.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_util.h"
#include "file_io.h"
#include "file_io.skel.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "probe_dirs.h"
#include "ig_hash.h"

/* Totals of one key at the previous pass. */
struct prev {
	struct ig_file_io_key key;
	uint64_t rb, wb, ro, wo, born_ns;
	bool used;
};

struct table {
	struct prev *v;
	size_t cap, n; /* cap: a power of two */
};

/* A changed key of this pass, before merging by path. */
struct change {
	struct ig_file_io_fid fid;
	uint32_t pid, uid, gid, ppid;
	uint64_t cgroup_id;
	uint64_t rb, wb, ro, wo;
	uint16_t path_len, path_flags;
	bool path_unknown;
	char comm[IG_FILE_IO_COMM_LEN];
	char path[IG_PATH_MAX];
};

/* A file's path, and the last pass that saw a key referring to it (or the
 * pass it arrived in). */
struct fid_path {
	struct ig_file_io_fid fid;
	char *path; /* NUL-terminated, len bytes */
	uint16_t len, flags;
	uint64_t last_pass;
	bool used;
};

struct path_table {
	struct fid_path *v;
	size_t cap, n; /* cap: a power of two */
};

/* Program variants, by section prefix (bpf/file_io.bpf.c). */
enum file_io_variant { V_TRACEPOINT, V_TP_BTF, V_FEXIT };
static const char *const variant_names[] = { "tracepoint", "tp_btf", "fexit" };

struct file_io_state {
	struct file_io_bpf *skel;
	struct ig_sink sink;
	struct ig_record *rec;
	enum file_io_variant variant;
	bool loaded;
	uint64_t interval_ns, last_read_ns;
	struct table prev;
	struct ring_buffer *rb;
	struct path_table paths;
	struct change *changes;
	size_t nchanges, changes_cap;
	int ncpu;
	size_t val_stride; /* per-CPU value size as the kernel lays it out */
	void *vals; /* ncpu * val_stride */
	uint64_t records, evictions, failed, passes, unknown_paths, malformed;
	uint64_t last_warned_evictions;
	struct ig_ratelimit evict_rl, malformed_rl;
};

static uint64_t hash_bytes(const void *p, size_t len)
{
	return ig_fnv64(IG_FNV64_INIT, p, len);
}

static int table_init(struct table *t, size_t want)
{
	size_t cap = 64;

	while (cap < want * 2)
		cap <<= 1;
	t->v = calloc(cap, sizeof(*t->v));
	t->cap = cap;
	t->n = 0;
	return t->v ? 0 : -ENOMEM;
}

static void table_free(struct table *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* The slot holding key, or the empty slot where it would go. */
static struct prev *table_slot(struct table *t, const struct ig_file_io_key *k)
{
	size_t i = hash_bytes(k, sizeof(*k)) & (t->cap - 1);

	while (t->v[i].used && memcmp(&t->v[i].key, k, sizeof(*k)) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->v[i];
}

static int table_grow(struct table *t)
{
	struct table bigger;

	if (table_init(&bigger, t->cap) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].used) {
			*table_slot(&bigger, &t->v[i].key) = t->v[i];
			bigger.n++;
		}
	table_free(t);
	*t = bigger;
	return 0;
}

static struct prev *table_put(struct table *t, const struct ig_file_io_key *k)
{
	if ((t->n + 1) * 2 > t->cap && table_grow(t) < 0)
		return NULL;
	struct prev *p = table_slot(t, k);
	if (!p->used) {
		p->used = true;
		p->key = *k;
		t->n++;
	}
	return p;
}

static int paths_init(struct path_table *t, size_t want)
{
	size_t cap = 64;

	while (cap < want * 2)
		cap <<= 1;
	t->v = calloc(cap, sizeof(*t->v));
	t->cap = cap;
	t->n = 0;
	return t->v ? 0 : -ENOMEM;
}

static void paths_free(struct path_table *t)
{
	for (size_t i = 0; t->v && i < t->cap; i++)
		free(t->v[i].path);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* The slot holding fid, or the empty slot where it would go. */
static struct fid_path *paths_slot(struct path_table *t, const struct ig_file_io_fid *f)
{
	size_t i = hash_bytes(f, sizeof(*f)) & (t->cap - 1);

	while (t->v[i].used && memcmp(&t->v[i].fid, f, sizeof(*f)) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->v[i];
}

/* A new table with the entries referred to in the last two passes; the
 * others' strings are freed. Also grows the table. */
static int paths_rebuild(struct path_table *t, uint64_t pass)
{
	struct path_table n;

	if (paths_init(&n, t->n + 16) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		struct fid_path *e = &t->v[i];
		if (!e->used)
			continue;
		if (pass - e->last_pass >= 2) {
			free(e->path);
			continue;
		}
		*paths_slot(&n, &e->fid) = *e;
		n.n++;
	}
	free(t->v);
	*t = n;
	return 0;
}

/* A path record from the kernel: (re)places the file's path. */
static int handle_path(void *ctx, void *data, size_t size)
{
	struct file_io_state *st = ctx;
	const struct ig_file_io_path *p = data;

	if (size < IG_FILE_IO_PATH_HDR_SIZE + 1 || p->path_len >= IG_PATH_MAX ||
	    IG_FILE_IO_PATH_HDR_SIZE + (size_t)p->path_len + 1 > size || p->path[p->path_len]) {
		uint64_t suppressed = 0;
		st->malformed++;
		if (ig_ratelimit_ok(&st->malformed_rl, &suppressed))
			ig_warn("file_io probe: malformed path record from the kernel side; this "
				"is a bug, please report it",
				"size=%zu suppressed=%llu", size, (unsigned long long)suppressed);
		return 0;
	}
	if ((st->paths.n + 1) * 2 > st->paths.cap && paths_rebuild(&st->paths, st->passes) < 0)
		return 0;
	struct fid_path *e = paths_slot(&st->paths, &p->fid);
	char *copy = strndup(p->path, p->path_len);
	if (!copy)
		return 0;
	if (!e->used) {
		e->used = true;
		e->fid = p->fid;
		st->paths.n++;
	}
	free(e->path);
	e->path = copy;
	e->len = p->path_len;
	e->flags = p->flags;
	e->last_pass = st->passes;
	return 0;
}

static uint64_t counter_sum(struct file_io_state *st, uint32_t idx)
{
	uint64_t sum = 0;
	uint64_t *vals = calloc((size_t)st->ncpu, sizeof(*vals));

	if (!vals)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(st->skel->maps.counters), &idx, vals) == 0)
		for (int c = 0; c < st->ncpu; c++)
			sum += vals[c];
	free(vals);
	return sum;
}

static struct change *change_add(struct file_io_state *st)
{
	if (st->nchanges == st->changes_cap) {
		size_t cap = st->changes_cap ? st->changes_cap * 2 : 64;
		struct change *c = realloc(st->changes, cap * sizeof(*c));
		if (!c)
			return NULL;
		st->changes = c;
		st->changes_cap = cap;
	}
	struct change *c = &st->changes[st->nchanges++];
	memset(c, 0, offsetof(struct change, path) + 1);
	return c;
}

static int change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->cgroup_id != y->cgroup_id)
		return x->cgroup_id < y->cgroup_id ? -1 : 1;
	if (x->path_unknown != y->path_unknown)
		return x->path_unknown ? 1 : -1;
	return strcmp(x->path, y->path);
}

static void emit(struct file_io_state *st, const struct change *c, uint64_t now_wall,
		 uint64_t span_ns)
{
	struct ig_record *r = st->rec;

	ig_record_reset(r);
	r->kind = "file.io";
	r->probe = "file_io";
	r->ts_ns = now_wall;
	r->pid = c->pid;
	r->uid = c->uid;
	r->gid = c->gid;
	r->ppid = c->ppid;
	r->cgroup_id = c->cgroup_id;
	r->comm = ig_record_strndup(r, c->comm, strnlen(c->comm, sizeof(c->comm)));
	ig_record_add_str(r, "path", c->path, c->path_len);
	ig_record_add_uint(r, "read_bytes", c->rb);
	ig_record_add_uint(r, "write_bytes", c->wb);
	ig_record_add_uint(r, "read_ops", c->ro);
	ig_record_add_uint(r, "write_ops", c->wo);
	ig_record_add_uint(r, "interval_ns", span_ns);
	if (c->path_flags & IG_FILE_IO_PATH_TRUNCATED)
		ig_record_add_uint(r, "truncated", 1);
	if (c->path_unknown)
		ig_record_add_uint(r, "path_unknown", 1);
	st->records++;
	st->sink.emit(st->sink.ctx, r);
}

/* The path of c's file; a missing one is reported as unknown and the
 * file's verdict forgotten, so that the kernel sends the path again. */
static void change_path(struct file_io_state *st, struct change *c)
{
	struct fid_path *e = paths_slot(&st->paths, &c->fid);

	if (e->used) {
		memcpy(c->path, e->path, e->len);
		c->path[e->len] = 0;
		c->path_len = e->len;
		c->path_flags = e->flags;
		return;
	}
	c->path[0] = 0;
	c->path_len = 0;
	c->path_unknown = true;
	st->unknown_paths++;
	bpf_map_delete_elem(bpf_map__fd(st->skel->maps.seen), &c->fid);
}

/* Merges changes with the same (pid, cgroup, path) and emits them. */
static int emit_changes(struct file_io_state *st, uint64_t now_wall, uint64_t span)
{
	int emitted = 0;

	if (st->nchanges > 1)
		qsort(st->changes, st->nchanges, sizeof(*st->changes), change_cmp);
	for (size_t i = 0; i < st->nchanges;) {
		struct change m = st->changes[i];
		size_t j = i + 1;
		for (; j < st->nchanges && change_cmp(&st->changes[j], &m) == 0; j++) {
			m.rb += st->changes[j].rb;
			m.wb += st->changes[j].wb;
			m.ro += st->changes[j].ro;
			m.wo += st->changes[j].wo;
		}
		emit(st, &m, now_wall, span);
		emitted++;
		i = j;
	}
	st->nchanges = 0;
	return emitted;
}

/* Empties "seen": every file's verdict is taken again on its next use. */
static void clear_seen(struct file_io_state *st)
{
	int fd = bpf_map__fd(st->skel->maps.seen);
	struct ig_file_io_fid key;
	uint64_t max = bpf_map__max_entries(st->skel->maps.seen);

	for (uint64_t i = 0; i < 2 * max + 16; i++) {
		if (bpf_map_get_next_key(fd, NULL, &key) != 0)
			break;
		bpf_map_delete_elem(fd, &key);
	}
}

/* One pass over the kernel tables: emits the differences, returns how many
 * records (or a negative errno when the table could not be read at all). */
static int read_pass(struct file_io_state *st)
{
	int fd = bpf_map__fd(st->skel->maps.io);
	uint64_t max = bpf_map__max_entries(st->skel->maps.io);
	uint64_t inserts = counter_sum(st, IG_FILE_IO_CNT_INSERTS);
	uint64_t now = ig_mono_ns();
	uint64_t now_wall = ig_wall_ns();
	uint64_t span = st->last_read_ns ? now - st->last_read_ns : 0;
	struct ig_file_io_key key, next;
	struct table cur;
	bool first = true;

	st->passes++;
	if (table_init(&cur, st->prev.n + 16) < 0)
		return -ENOMEM;
	ring_buffer__consume(st->rb);
	/* A key evicted between two get_next_key calls restarts the walk from
	 * the first key; the bound keeps a churning table from holding us. */
	for (uint64_t steps = 0; steps < 4 * max + 16; steps++) {
		if (bpf_map_get_next_key(fd, first ? NULL : &key, &next) != 0)
			break;
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, st->vals) != 0)
			continue; /* evicted meanwhile */
		struct prev *c = table_slot(&cur, &key);
		if (c->used)
			continue; /* seen before a restart */
		uint64_t rb = 0, wb = 0, ro = 0, wo = 0, born = 0;
		const struct ig_file_io_val *meta = NULL;
		for (int cpu = 0; cpu < st->ncpu; cpu++) {
			const struct ig_file_io_val *v =
				(const void *)((char *)st->vals + (size_t)cpu * st->val_stride);
			rb += v->read_bytes;
			wb += v->write_bytes;
			ro += v->read_ops;
			wo += v->write_ops;
			if (v->born_ns > born) {
				born = v->born_ns;
				meta = v;
			}
		}
		c = table_put(&cur, &key);
		if (!c)
			break;
		*c = (struct prev){ .key = key,
				    .rb = rb,
				    .wb = wb,
				    .ro = ro,
				    .wo = wo,
				    .born_ns = born,
				    .used = true };
		struct fid_path *ref = paths_slot(&st->paths, &key.fid);
		if (ref->used)
			ref->last_pass = st->passes;

		struct prev *p = st->prev.v ? table_slot(&st->prev, &key) : NULL;
		if (p && p->used && p->born_ns == born && rb >= p->rb && wb >= p->wb &&
		    ro >= p->ro && wo >= p->wo) {
			rb -= p->rb;
			wb -= p->wb;
			ro -= p->ro;
			wo -= p->wo;
		}
		if (!(rb || wb || ro || wo))
			continue;
		struct change *ch = change_add(st);
		if (!ch)
			break;
		ch->pid = key.pid;
		ch->cgroup_id = key.cgroup_id;
		ch->rb = rb;
		ch->wb = wb;
		ch->ro = ro;
		ch->wo = wo;
		ch->fid = key.fid;
		if (meta) {
			ch->uid = meta->uid;
			ch->gid = meta->gid;
			ch->ppid = meta->ppid;
			memcpy(ch->comm, meta->comm, sizeof(ch->comm));
		}
	}
	uint64_t live_keys = cur.n;
	table_free(&st->prev);
	st->prev = cur;
	st->last_read_ns = now;
	/* The kernel sends a path before it inserts the first key of the
	 * file: every key read above has its path in the buffer by now. */
	ring_buffer__consume(st->rb);
	for (size_t i = 0; i < st->nchanges; i++)
		change_path(st, &st->changes[i]);
	int emitted = emit_changes(st, now_wall, span);
	clear_seen(st);
	paths_rebuild(&st->paths, st->passes);

	if (inserts > live_keys && inserts - live_keys > st->evictions)
		st->evictions = inserts - live_keys;
	st->failed = counter_sum(st, IG_FILE_IO_CNT_FAILED);
	if (st->evictions > st->last_warned_evictions) {
		uint64_t sup = 0;
		if (ig_ratelimit_ok(&st->evict_rl, &sup)) {
			ig_warn("file_io probe: table full, entries evicted (bytes counted since the "
				"last read of an evicted entry are lost): raise "
				"probes.file_io.max_entries or shorten probes.file_io.interval",
				"evictions=%llu max_entries=%llu live=%llu",
				(unsigned long long)st->evictions, (unsigned long long)max,
				(unsigned long long)live_keys);
			st->last_warned_evictions = st->evictions;
		}
	}
	return emitted;
}

/* fexit on the syscall functions where the kernel allows it (they run for
 * the counted calls only, and the other syscalls stay off the tracing slow
 * path). Else syscall tracepoints (they run for the counted calls only)
 * when tracefs has them and tracepoint programs can read the saved
 * registers (bpf_task_pt_regs, 5.15+); else tp_btf/sys_exit (runs for
 * every syscall). INGRAIN_FILE_IO_VARIANT=fexit|tracepoint|tp_btf overrides
 * (tests, benchmarks). docs/probes.md has the measurements. */
static bool can_fexit(void)
{
	return ig_bpf_has_fentry() && ig_bpf_has_fentry_target("__x64_sys_read");
}

static int choose_variant(enum file_io_variant *out, struct ig_err *err)
{
	const char *v = getenv("INGRAIN_FILE_IO_VARIANT");
	bool tp = ig_bpf_has_tracepoint("syscalls", "sys_exit_read") &&
		  libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_task_pt_regs, NULL) ==
			  1 &&
		  libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_task_btf,
					  NULL) == 1;

	if (v && strcmp(v, "tracepoint") == 0) {
		*out = V_TRACEPOINT;
		if (tp)
			return 0;
		ig_err_add(
			err,
			"INGRAIN_FILE_IO_VARIANT=tracepoint but the syscall tracepoints or "
			"bpf_task_pt_regs (kernel 5.15+) are missing: mount tracefs or unset it");
		return -ENOENT;
	}
	if (v && strcmp(v, "tp_btf") == 0) {
		*out = V_TP_BTF;
		if (ig_bpf_has_tp_btf())
			return 0;
		ig_err_add(err, "INGRAIN_FILE_IO_VARIANT=tp_btf but this kernel cannot attach "
				"tp_btf programs: unset it");
		return -EOPNOTSUPP;
	}
	if (v && strcmp(v, "fexit") == 0) {
		*out = V_FEXIT;
		if (can_fexit())
			return 0;
		ig_err_add(err, "INGRAIN_FILE_IO_VARIANT=fexit but this kernel cannot attach "
				"fexit programs to __x64_sys_read (no BPF trampolines, or refused "
				"by policy): unset it");
		return -EOPNOTSUPP;
	}
	if (v && *v) {
		ig_err_add(err,
			   "INGRAIN_FILE_IO_VARIANT='%s' is not a variant: use fexit, tracepoint "
			   "or tp_btf, or unset it",
			   v);
		return -EINVAL;
	}
	if (can_fexit()) {
		*out = V_FEXIT;
		return 0;
	}
	*out = V_TRACEPOINT;
	if (tp)
		return 0;
	if (ig_bpf_has_tp_btf()) {
		*out = V_TP_BTF;
		return 0;
	}
	ig_err_add(err, "probes.file_io: no syscall tracepoints usable (is tracefs mounted? set "
			"agent.mount_tracefs: true; kernel 5.15+ is needed) and the kernel cannot "
			"run tp_btf programs");
	return -ENOENT;
}

static enum file_io_variant variant_of(const char *sec)
{
	if (strncmp(sec, "tp_btf/", 7) == 0)
		return V_TP_BTF;
	if (strncmp(sec, "fexit/", 6) == 0)
		return V_FEXIT;
	return V_TRACEPOINT;
}

/* Enables exactly one variant (libbpf-tools style autoload toggles); a
 * syscall function missing from the kernel's BTF is skipped with a
 * warning rather than failing the probe. */
static void select_variant(struct file_io_bpf *skel, enum file_io_variant v)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, skel->obj)
	{
		const char *sec = bpf_program__section_name(p);
		bool on = variant_of(sec) == v;
		if (on && v == V_FEXIT && !ig_bpf_has_fentry_target(sec + 6)) {
			ig_warn("file_io probe: syscall function missing from the kernel's BTF; "
				"that call is not counted",
				"function=%s", sec + 6);
			on = false;
		}
		bpf_program__set_autoload(p, on);
	}
}

static void file_io_close(void *state);

static int file_io_open(void **state, const void *conf, const struct ig_agent_conf *ac,
			const struct ig_sink *sink, struct ig_err *err)
{
	const struct ig_file_io_conf *fc = conf;
	struct file_io_state *st = calloc(1, sizeof(*st));
	int rv;

	(void)ac;
	*state = NULL;
	if (!st)
		return -ENOMEM;
	st->sink = *sink;
	st->evict_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	st->malformed_rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	if (paths_init(&st->paths, 64) < 0) {
		free(st);
		return -ENOMEM;
	}
	st->interval_ns = fc->interval_ns ? fc->interval_ns : 10 * IG_NSEC_PER_SEC;
	st->ncpu = libbpf_num_possible_cpus();
	st->rec = calloc(1, sizeof(*st->rec));
	if (!st->rec || st->ncpu <= 0) {
		rv = st->ncpu < 0 ? st->ncpu : -ENOMEM;
		goto fail;
	}
	st->val_stride = (sizeof(struct ig_file_io_val) + 7) & ~(size_t)7;
	st->vals = calloc((size_t)st->ncpu, st->val_stride);
	if (!st->vals) {
		rv = -ENOMEM;
		goto fail;
	}
	ig_bpf_log_init();

	st->skel = file_io_bpf__open();
	if (!st->skel) {
		rv = errno ? -errno : -EINVAL;
		ig_err_add(err, "probes.file_io: cannot open the BPF object (%s)", strerror(-rv));
		goto fail;
	}
	const struct ig_probe_dirs_rodata ro = {
		.dirs = st->skel->rodata->ig_dirs,
		.dir_len = st->skel->rodata->ig_dir_len,
		.ndirs = &st->skel->rodata->ig_ndirs,
		.monitor_all = &st->skel->rodata->ig_monitor_all,
	};
	if ((rv = ig_probe_dirs_fill(&fc->monitor_dirs, "probes.file_io", &ro, err)) < 0)
		goto fail;
	uint32_t max = fc->max_entries ? (uint32_t)fc->max_entries : 16384;
	if ((rv = bpf_map__set_max_entries(st->skel->maps.io, max)) < 0 ||
	    (rv = bpf_map__set_max_entries(st->skel->maps.seen, max)) < 0) {
		ig_err_add(err, "probes.file_io.max_entries: cannot use %u (%s)", max,
			   strerror(-rv));
		goto fail;
	}
	if ((rv = choose_variant(&st->variant, err)) < 0)
		goto fail;
	select_variant(st->skel, st->variant);
	if ((rv = file_io_bpf__load(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.file_io: the kernel refused the BPF programs (%s); the log "
			   "above has the verifier's reason. ingrain needs a BTF-enabled kernel "
			   "and root (or CAP_BPF + CAP_PERFMON)",
			   strerror(-rv));
		goto fail;
	}
	if ((rv = file_io_bpf__attach(st->skel)) < 0) {
		ig_err_add(err,
			   "probes.file_io: attaching to the syscall exits failed (%s): check "
			   "that tracefs is mounted (agent.mount_tracefs) and that the agent runs "
			   "as root",
			   strerror(-rv));
		goto fail;
	}
	st->rb = ring_buffer__new(bpf_map__fd(st->skel->maps.paths), handle_path, st, NULL);
	if (!st->rb) {
		rv = errno ? -errno : -ENOMEM;
		ig_err_add(err, "probes.file_io: cannot map the paths ring buffer (%s)",
			   strerror(-rv));
		goto fail;
	}
	st->loaded = true;
	st->last_read_ns = ig_mono_ns();
	ig_info("file_io probe attached",
		"variant=%s interval_ms=%llu max_entries=%u monitor_dirs=%zu",
		variant_names[st->variant],
		(unsigned long long)(st->interval_ns / IG_NSEC_PER_MSEC), max, fc->monitor_dirs.n);
	*state = st;
	return 0;
fail:
	file_io_close(st);
	return rv;
}

static int file_io_epoll_fd(void *state)
{
	(void)state;
	return -1; /* no ring buffer: consume() reads on its interval */
}

static int file_io_consume(void *state)
{
	struct file_io_state *st = state;

	ring_buffer__consume(st->rb); /* paths: keeps the buffer from filling up */
	if (ig_mono_ns() - st->last_read_ns < st->interval_ns)
		return 0;
	return read_pass(st);
}

static void file_io_stats(void *state, struct ig_probe_stats *out)
{
	struct file_io_state *st = state;

	memset(out, 0, sizeof(*out));
	out->events = st->records;
	out->variant = variant_names[st->variant];
	/* Evicted or never inserted keys, and skipped program runs (see
	 * ig_bpf_prog_misses), are uncounted bytes. */
	out->other_lost = st->evictions + st->failed + ig_bpf_prog_misses(st->skel->obj);
}

static void file_io_close(void *state)
{
	struct file_io_state *st = state;

	if (!st)
		return;
	if (st->loaded) {
		/* Detach, then report what was counted since the last pass. */
		file_io_bpf__detach(st->skel);
		read_pass(st);
	}
	ring_buffer__free(st->rb);
	file_io_bpf__destroy(st->skel);
	table_free(&st->prev);
	paths_free(&st->paths);
	free(st->changes);
	free(st->vals);
	free(st->rec);
	free(st);
}

const struct ig_probe_ops ig_probe_file_io_ops = {
	.name = "file_io",
	.kind = IG_PROBE_FILE_IO,
	.open = file_io_open,
	.epoll_fd = file_io_epoll_fd,
	.consume = file_io_consume,
	.stats = file_io_stats,
	.close = file_io_close,
};
