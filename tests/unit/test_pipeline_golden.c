/* test_pipeline_golden: the pipeline engine's outputs, byte for byte, against
 * outputs recorded from the engine before its per-record work was optimised
 * (tests/fixtures/pipeline_golden/, written by the engine of commit 2f3c8a9
 * with IG_GOLDEN_WRITE=1).
 *
 * 600 deterministic records shaped like the files probe's (pod identities
 * with labels, /proc/<pid>/ and kubelet pod paths, conn<N> process names,
 * negative returns, strings needing JSON escapes and invalid UTF-8) go
 * through four pipelines, each into a console backend writing JSON lines:
 *   full:    no stages (every tag, numbers typed)
 *   regex:   whitelist + the 3 rewrites of bench_pipeline
 *   rollup:  whitelist + 3 rewrites + rollup (lines sorted and their "ts",
 *            the flush time, blanked: a rollup's emission order and clock are
 *            not part of its contract)
 *   text:    add_tags + filter, text format
 * Each must equal its fixture exactly. Records are fed both as built and
 * after a round trip through wire v1 and wire v2 (the aggregator's path).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ig_log.h"
#include "ig_pipeline.h"
#include "ig_record.h"
#include "ig_time.h"
#include "ig_wire.h"

#define NREC 600

static char tmpdir[64];

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const char *const namespaces[] = { "prod", "staging", "kube-system", "monitoring" };
static const char *const pods[] = { "web-7d9f8b6c4-x2x9q", "api-5c6d7e8f9-abcde", "db-0" };

static void make(struct ig_record *r, int i, char *path, size_t plen, char *comm, size_t clen)
{
	uint32_t pid = 1000 + rnd(30000);

	switch (rnd(6)) {
	case 0:
		snprintf(path, plen, "/proc/%u/%s", pid, rnd(2) ? "status" : "cgroup");
		break;
	case 1: {
		/* One draw per statement: the order of a call's arguments is not
		 * specified (the fixtures were made with these draws in this
		 * order). */
		uint32_t e = rnd(1u << 31), d = rnd(65536), c = rnd(65536), b = rnd(65536);
		uint32_t a = rnd(1u << 31);

		snprintf(path, plen,
			 "/var/lib/kubelet/pods/%08x-%04x-%04x-%04x-%012x/volumes/"
			 "kubernetes.io~secret/token",
			 a, b, c, d, e);
		break;
	}
	case 2:
		snprintf(path, plen, "/etc/%s",
			 rnd(2) ? "passwd" : "ssl/certs/ca-certificates.crt");
		break;
	case 3:
		snprintf(path, plen, "/tmp/odd \"quoted\"\\name\t%u", rnd(4));
		break;
	case 4:
		snprintf(path, plen, "/tmp/bad-utf8-\xff\xfe-%u", rnd(3));
		break;
	default:
		snprintf(path, plen, "/usr/lib/x86_64-linux-gnu/lib%c.so.6", 'a' + rnd(26));
		break;
	}
	if (rnd(8) == 0)
		snprintf(comm, clen, "conn%u", rnd(100000));
	else
		snprintf(comm, clen, "%s", rnd(2) ? "nginx" : "python3");
	ig_record_reset(r);
	r->kind = rnd(10) ? "file.open" : "file.close";
	r->probe = "files";
	r->node = "node-1";
	r->ts_ns = 1700000000000000000ULL + (uint64_t)i * 1000003ULL;
	r->pid = pid;
	r->tid = pid + rnd(3);
	r->ppid = 1;
	r->uid = rnd(3) ? 1000 : 0;
	r->gid = r->uid;
	r->comm = ig_record_strdup(r, comm);
	r->cgroup_id = 4242 + rnd(3);
	if (rnd(5)) {
		r->id.scope = "pod";
		r->id.namespace_ = namespaces[rnd(4)];
		r->id.pod_name = pods[rnd(3)];
		r->id.container_name = "app";
		r->id.container_id =
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
		r->id.image = "registry.example.com/shop/web:1.42.0";
		r->id.runtime = "containerd";
		r->id.owner_kind = "Deployment";
		r->id.owner_name = "web";
		r->id.pod_uid = "8a1e2c34-5b6d-4e7f-8091-a2b3c4d5e6f7";
		ig_record_add_label(r, "app", "web");
		if (rnd(2))
			ig_record_add_label(r, "tier", "");
	} else {
		r->id.scope = "host";
	}
	ig_record_add_str(r, "path", path, strlen(path));
	ig_record_add_uint(r, "flags", rnd(2) ? 0x80000 : 0x241);
	ig_record_add_uint(r, "mode", rnd(2) ? 0 : 0644);
	{
		int64_t ret = rnd(7) ? (int64_t)rnd(40) : -(int64_t)(1 + rnd(30));

		ig_record_add_int(r, "ret", ret);
		if (ret < 0)
			ig_record_add_str(r, "error", "ENOENT", 6);
	}
	ig_record_add_str(r, "syscall", "openat", 6);
	if (rnd(9) == 0)
		ig_record_add_uint(r, "umax", UINT64_MAX);
	if (rnd(9) == 0)
		ig_record_add_int(r, "imin", INT64_MIN);
}

#define WHITELIST "{type: whitelist, allow: [namespace, pod, process, path, ret]}"
#define REGEX3                                                                          \
	"{type: regex, key: path, pattern: '^/proc/[0-9]+/', replace_with: /proc/N/}, " \
	"{type: regex, key: path, pattern: '^(/var/lib/kubelet/pods/)[^/]+/', "         \
	"replace_with: '${1}ID/'}, "                                                    \
	"{type: regex, key: process, pattern: '^conn[0-9]+$', replace_with: conn_proxy}"

static const char *const names[] = { "full", "regex", "rollup", "text" };

static struct ig_graph *build(void)
{
	char yaml[4096];
	struct ig_conf *c = NULL;
	struct ig_graph *g = NULL;
	struct ig_err err;

	snprintf(yaml, sizeof(yaml),
		 "probes:\n  files: {pipelines: [full, regex, rollup, text]}\n"
		 "pipelines:\n"
		 "  full: {stages: [], backends: [full]}\n"
		 "  regex: {stages: [" WHITELIST ", " REGEX3 "], backends: [regex]}\n"
		 "  rollup: {stages: [" WHITELIST ", " REGEX3 ", {type: rollup, window: 60s}], "
		 "backends: [rollup]}\n"
		 "  text: {stages: [{type: add_tags, tags: {cluster: c1}}, {type: filter, "
		 "drop_if: {key: namespace, op: eq, value: kube-system}}], backends: [text]}\n"
		 "backends:\n"
		 "  full: {type: console, format: json, output: %s/full}\n"
		 "  regex: {type: console, format: json, output: %s/regex}\n"
		 "  rollup: {type: console, format: json, output: %s/rollup}\n"
		 "  text: {type: console, format: text, output: %s/text}\n",
		 tmpdir, tmpdir, tmpdir, tmpdir);
	ig_err_init(&err);
	if (ig_conf_load_string("golden.yaml", yaml, strlen(yaml), &c, &err) < 0 ||
	    ig_graph_build(c, &g, &err) < 0)
		fail_msg("golden pipeline: %s", ig_err_str(&err));
	ig_conf_free(c);
	return g;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rollup output: "ts" blanked, lines sorted. In place; returns the new text. */
static char *normalise_rollup(char *text)
{
	size_t n = 0, cap = 1024, out = 0, total = strlen(text) + 1;
	char **lines = malloc(cap * sizeof(*lines)), *res = malloc(total + 1);

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *ts = strstr(l, "\"ts\":\"");

		if (ts) {
			char *end = strchr(ts + 6, '"');

			if (end)
				memmove(ts + 7, end, strlen(end) + 1), ts[6] = '-';
		}
		if (n == cap)
			lines = realloc(lines, (cap *= 2) * sizeof(*lines));
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(*lines), cmp_lines);
	for (size_t i = 0; i < n; i++)
		out += (size_t)sprintf(res + out, "%s\n", lines[i]);
	res[out] = '\0';
	free(lines);
	free(text);
	return res;
}

/* Feeds the records (mode 0 as built, 1 through wire v1, 2 through wire v2). */
static void feed(struct ig_graph *g, int mode)
{
	static struct ig_record recs[64];
	static char paths[64][200], comms[64][24];
	struct ig_wire_enc *e = mode ? ig_wire_enc_new_version((unsigned)mode) : NULL;
	struct ig_wire_dec *d = ig_wire_dec_new(NULL);
	struct ig_record *r = malloc(sizeof(*r));

	rng = 0x2545f4914f6cdd1dULL;
	for (int base = 0; base < NREC; base += 64) {
		int n = NREC - base < 64 ? NREC - base : 64;

		for (int i = 0; i < n; i++)
			make(&recs[i], base + i, paths[i], sizeof(paths[i]), comms[i],
			     sizeof(comms[i]));
		if (!mode) {
			for (int i = 0; i < n; i++)
				ig_graph_process(g, &recs[i]);
			continue;
		}
		struct ig_envelope_hdr h = { .agent_id = "a", .node = "node-1", .seq = 1 };
		struct ig_err err;
		void *buf;
		size_t len;

		ig_wire_enc_reset(e);
		for (int i = 0; i < n; i++)
			assert_int_equal(ig_wire_enc_add(e, &recs[i]), 0);
		assert_int_equal(ig_wire_enc_finish(e, &h, &buf, &len), 0);
		ig_err_init(&err);
		assert_int_equal(ig_wire_decode(d, buf, len, &h, &err), 0);
		while (ig_wire_next(d, r) == 1)
			ig_graph_process(g, r);
		free(buf);
	}
	ig_wire_enc_free(e);
	ig_wire_dec_free(d);
	free(r);
}

static void run_mode(int mode)
{
	char path[256], fixture[512];
	bool write = getenv("IG_GOLDEN_WRITE") != NULL;
	struct ig_graph *g = build();

	feed(g, mode);
	ig_graph_flush(g);
	ig_graph_free(g);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len, flen;
		char *got, *want;

		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		snprintf(fixture, sizeof(fixture), "%s/tests/fixtures/pipeline_golden/%s",
			 IG_SOURCE_DIR, names[i]);
		got = slurp(path, &len);
		assert_non_null(got);
		assert_true(len > 1000); /* something was written */
		if (!strcmp(names[i], "rollup"))
			got = normalise_rollup(got);
		if (write && mode == 0) {
			FILE *f = fopen(fixture, "wb");

			assert_non_null(f);
			fputs(got, f);
			fclose(f);
		}
		want = slurp(fixture, &flen);
		if (!want)
			fail_msg("fixture %s is missing (IG_GOLDEN_WRITE=1 writes it)", fixture);
		if (strcmp(got, want)) {
			size_t k = 0;

			while (got[k] && got[k] == want[k])
				k++;
			fail_msg("%s (mode %d) differs from its fixture at byte %zu: got \"%.80s\" "
				 "want \"%.80s\"",
				 names[i], mode, k, got + (k > 20 ? k - 20 : 0),
				 want + (k > 20 ? k - 20 : 0));
		}
		free(got);
		free(want);
		unlink(path);
	}
}

static void test_outputs_match_the_golden_files(void **state)
{
	run_mode(0);
}

static void test_outputs_match_after_wire_v1(void **state)
{
	run_mode(1);
}

static void test_outputs_match_after_wire_v2(void **state)
{
	run_mode(2);
}

static int setup(void **state)
{
	strcpy(tmpdir, "/tmp/ig_test_golden.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	ig_log_init("test", IG_LOG_WARN, IG_LOG_LOGFMT);
	ig_time_init();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outputs_match_the_golden_files),
		cmocka_unit_test(test_outputs_match_after_wire_v1),
		cmocka_unit_test(test_outputs_match_after_wire_v2),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
