/* bench_pipeline: the aggregator's in-process pipeline throughput, and the
 * regex engine choice behind the regex stage.
 *
 *   bench_pipeline [RECORDS]        (default 2000000)
 *
 * 1. Pipeline: records shaped like the files probe's (identity, process,
 *    a path among /proc/<pid>/..., kubelet pod volumes, /etc, /usr/lib)
 *    through ig_graph_process with the pipeline of issue 5:
 *        whitelist [namespace, pod, process, path]
 *        regex     /proc/<pid>/ -> /proc/N/
 *        regex     /var/lib/kubelet/pods/<uid>/ -> .../pods/ID/
 *        regex     process conn<digits> -> conn_proxy
 *        rollup    10 s window
 *    and, to show where the time goes, the same graph with fewer stages.
 *    Timed on the thread's CPU clock: records/s per core. The figure
 *    includes building each metric from its record (ig_metric_from_record),
 *    as in the aggregator; the backend (console to /dev/null) only sees the
 *    rolled-up series, once, at the final flush.
 *
 * 2. Regex engines side by side on the same three rewrites over the same
 *    values: PCRE2 with JIT, PCRE2 interpreted, and POSIX regcomp/regexec
 *    (glibc) with the replacement expanded by hand ($1). Each variant must
 *    produce the same strings (checked) and prints ns per value.
 *
 * The figures and their reading are in docs/pipelines.md ("Performance").
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_alloc.h"
#include "ig_log.h"
#include "ig_pipeline.h"
#include "ig_record.h"
#include "ig_time.h"
#include "re.h"

#define NREC 4096

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static char paths[NREC][160];
static char comms[NREC][24];

static const char *const namespaces[] = { "prod", "staging", "kube-system", "monitoring" };

static void make_records(struct ig_record *recs)
{
	for (int i = 0; i < NREC; i++) {
		struct ig_record *r = &recs[i];
		uint32_t pid = 1000 + rnd(30000);
		char *p = paths[i];

		switch (rnd(4)) {
		case 0:
			snprintf(p, sizeof(paths[i]), "/proc/%u/%s", pid,
				 rnd(2) ? "status" : "cgroup");
			break;
		case 1:
			snprintf(
				p, sizeof(paths[i]),
				"/var/lib/kubelet/pods/%08x-%04x-%04x-%04x-%012x/volumes/kubernetes.io~secret/token",
				rnd(1u << 31), rnd(65536), rnd(65536), rnd(65536), rnd(1u << 31));
			break;
		case 2:
			snprintf(p, sizeof(paths[i]), "/etc/%s",
				 rnd(2) ? "passwd" : "ssl/certs/ca-certificates.crt");
			break;
		default:
			snprintf(p, sizeof(paths[i]), "/usr/lib/x86_64-linux-gnu/lib%c.so.6",
				 'a' + rnd(26));
			break;
		}
		if (rnd(8) == 0)
			snprintf(comms[i], sizeof(comms[i]), "conn%u", rnd(100000));
		else
			snprintf(comms[i], sizeof(comms[i]), "%s", rnd(2) ? "nginx" : "python3");
		ig_record_reset(r);
		r->kind = "file.open";
		r->probe = "files";
		r->node = "node-1";
		r->ts_ns = 1700000000000000000ULL + (uint64_t)i;
		r->pid = r->tid = pid;
		r->ppid = 1;
		r->uid = 1000;
		r->comm = comms[i];
		r->cgroup_id = 4242;
		r->id.scope = "pod";
		r->id.namespace_ = namespaces[rnd(4)];
		r->id.pod_name = "web-7d9f8b6c4-x2x9q";
		r->id.container_name = "app";
		r->id.container_id =
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
		r->id.image = "registry.example.com/shop/web:1.42.0";
		ig_record_add_str(r, "path", p, strlen(p));
		ig_record_add_uint(r, "flags", 0x80000);
		ig_record_add_int(r, "ret", 3);
	}
}

#define DROP_ALL "{type: filter, drop_if: {key: __name__, op: exists}}"
#define WHITELIST "{type: whitelist, allow: [namespace, pod, process, path]}"
#define REGEX3                                                                          \
	"{type: regex, key: path, pattern: '^/proc/[0-9]+/', replace_with: /proc/N/}, " \
	"{type: regex, key: path, pattern: '^(/var/lib/kubelet/pods/)[^/]+/', "         \
	"replace_with: '${1}ID/'}, "                                                    \
	"{type: regex, key: process, pattern: '^conn[0-9]+$', replace_with: conn_proxy}"

/* Each variant ends in a stage that keeps the metric from the backend (a
 * filter dropping all, or the rollup), so the figures are the stages' cost. */
static const char *const stage_sets[] = {
	"[]", /* to the console backend: what bench_files' "delivered" does per record */
	"[" DROP_ALL "]",
	"[" WHITELIST ", " DROP_ALL "]",
	"[" WHITELIST ", " REGEX3 ", " DROP_ALL "]",
	"[" WHITELIST ", " REGEX3 ", {type: rollup, window: 10s}]",
};

static const char *const stage_names[] = {
	"metric build + console text backend",
	"metric build + a filter",
	"metric build + whitelist + filter",
	"metric build + whitelist + 3 regex + filter",
	"metric build + whitelist + 3 regex + rollup",
};

static double graph_ns[8]; /* per stage set, for the breakdown */

static int bench_graph(size_t which, const struct ig_record *recs, long n)
{
	char yaml[2048];
	struct ig_conf *c = NULL;
	struct ig_graph *g = NULL;
	struct ig_graph_stats gs;
	struct ig_err err;
	double t0, t;
	uint64_t a0, a1;

	snprintf(yaml, sizeof(yaml),
		 "probes:\n  files: {pipelines: [p]}\n"
		 "pipelines:\n  p:\n    stages: %s\n    backends: [null]\n"
		 "backends:\n  null: {type: console, format: %s, output: /dev/null}\n",
		 stage_sets[which], which == 0 ? "text" : "json");
	ig_err_init(&err);
	if (ig_conf_load_string("bench.yaml", yaml, strlen(yaml), &c, &err) < 0 ||
	    ig_graph_build(c, &g, &err) < 0) {
		fprintf(stderr, "bench_pipeline: %s", ig_err_str(&err));
		ig_conf_free(c);
		return -1;
	}
	/* one pass untimed: memos and buffers warm, as in a running aggregator */
	for (long i = 0; i < NREC; i++)
		ig_graph_process(g, &recs[i]);
	a0 = bench_alloc_count();
	t0 = cpu_s();
	for (long i = 0; i < n; i++)
		ig_graph_process(g, &recs[i & (NREC - 1)]);
	t = cpu_s() - t0;
	a1 = bench_alloc_count();
	ig_graph_flush(g);
	ig_graph_stats(g, &gs);
	ig_graph_free(g);
	ig_conf_free(c);
	graph_ns[which] = t * 1e9 / (double)n;
	printf("  %-44s %8.2f M records/s per core  %6.0f ns/record  %6.4f allocs/record  "
	       "(series out %llu)\n",
	       stage_names[which], (double)n / t / 1e6, t * 1e9 / (double)n,
	       (double)(a1 - a0) / (double)n, (unsigned long long)gs.metrics_out);
	return 0;
}

/* ---- regex engines ---- */

struct rw {
	const char *pattern, *posix_repl, *pcre_repl;
};

static const struct rw rws[] = {
	{ "^/proc/[0-9]+/", "/proc/N/", "/proc/N/" },
	{ "^(/var/lib/kubelet/pods/)[^/]+/", "\\1ID/", "${1}ID/" },
	{ "conn[0-9]+", "conn_proxy", "conn_proxy" },
};

#define NRW (sizeof(rws) / sizeof(rws[0]))

/* POSIX: regexec, then the replacement with \1..\9 expanded by hand; global. */
static size_t posix_rewrite(const regex_t *re, const char *repl, const char *s, char *out,
			    size_t cap)
{
	regmatch_t m[10];
	size_t o = 0;
	int flags = 0;

	while (*s && regexec(re, s, 10, m, flags) == 0) {
		size_t pre = (size_t)m[0].rm_so;

		if (o + pre >= cap)
			return 0;
		memcpy(out + o, s, pre);
		o += pre;
		for (const char *r = repl; *r; r++) {
			if (r[0] == '\\' && r[1] >= '0' && r[1] <= '9') {
				int g = r[1] - '0';
				size_t l = m[g].rm_so < 0 ? 0 : (size_t)(m[g].rm_eo - m[g].rm_so);

				if (o + l >= cap)
					return 0;
				memcpy(out + o, s + m[g].rm_so, l);
				o += l;
				r++;
			} else if (o + 1 < cap) {
				out[o++] = *r;
			}
		}
		s += m[0].rm_eo > m[0].rm_so ? m[0].rm_eo : m[0].rm_eo + 1;
		flags = REG_NOTBOL;
	}
	size_t rest = strlen(s);

	if (o + rest >= cap)
		return 0;
	memcpy(out + o, s, rest + 1);
	return o + rest;
}

static size_t pcre_rewrite(pcre2_code *re, pcre2_match_data *md, const char *repl, const char *s,
			   char *out, size_t cap)
{
	PCRE2_SIZE len = strlen(s), olen = cap;

	if (pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL) < 0) {
		memcpy(out, s, len + 1);
		return len;
	}
	if (pcre2_substitute(re, (PCRE2_SPTR)s, len, 0,
			     PCRE2_SUBSTITUTE_MATCHED | PCRE2_SUBSTITUTE_GLOBAL, md, NULL,
			     (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)out,
			     &olen) < 0)
		return 0;
	return olen;
}

static char results[3][NREC][200];

static int bench_regex(long n)
{
	static const char *const names[] = { "PCRE2 JIT", "PCRE2 interpreter", "POSIX regexec" };
	pcre2_code *jit[NRW], *interp[NRW];
	pcre2_match_data *md[NRW];
	regex_t posix[NRW];
	const char *vals[NREC];
	char msg[256];
	int rc = 0;

	for (int i = 0; i < NREC; i++)
		vals[i] = i % 2 ? paths[i] : comms[i];
	for (size_t k = 0; k < NRW; k++) {
		int code;
		PCRE2_SIZE off;

		jit[k] = ig_re_compile(rws[k].pattern, msg, sizeof(msg));
		interp[k] = pcre2_compile((PCRE2_SPTR)rws[k].pattern, PCRE2_ZERO_TERMINATED,
					  PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
		md[k] = pcre2_match_data_create(10, NULL);
		if (!jit[k] || !interp[k] ||
		    regcomp(&posix[k], rws[k].pattern, REG_EXTENDED) != 0) {
			fprintf(stderr, "bench_pipeline: pattern %s does not compile\n",
				rws[k].pattern);
			return -1;
		}
	}
	printf("\nregex engines: %zu rewrites on each of %ld values (paths and process names):\n",
	       NRW, n);
	for (int e = 0; e < 3; e++) {
		double t0 = cpu_s(), t;

		for (long i = 0; i < n; i++) {
			const char *v = vals[i & (NREC - 1)];
			char a[200], b[200];
			const char *cur = v;
			char *dst = a;

			for (size_t k = 0; k < NRW; k++) {
				size_t l = e == 2 ? posix_rewrite(&posix[k], rws[k].posix_repl, cur,
								  dst, sizeof(a)) :
						    pcre_rewrite(e ? interp[k] : jit[k], md[k],
								 rws[k].pcre_repl, cur, dst,
								 sizeof(a));
				(void)l;
				cur = dst;
				dst = dst == a ? b : a;
			}
			if (i < NREC)
				snprintf(results[e][i], sizeof(results[e][i]), "%s", cur);
		}
		t = cpu_s() - t0;
		printf("  %-20s %7.1f ns/value (%zu rules)  %6.2f M values/s\n", names[e],
		       t * 1e9 / (double)n, NRW, (double)n / t / 1e6);
	}
	for (int i = 0; i < NREC && i < n; i++)
		if (strcmp(results[0][i], results[1][i]) || strcmp(results[0][i], results[2][i])) {
			fprintf(stderr,
				"bench_pipeline: engines disagree on '%s': '%s' '%s' '%s'\n",
				vals[i], results[0][i], results[1][i], results[2][i]);
			rc = -1;
			break;
		}
	for (size_t k = 0; k < NRW; k++) {
		pcre2_code_free(jit[k]);
		pcre2_code_free(interp[k]);
		pcre2_match_data_free(md[k]);
		regfree(&posix[k]);
	}
	return rc;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	struct ig_record *recs;

	if (n <= 0) {
		fprintf(stderr, "usage: bench_pipeline [RECORDS]\n");
		return 2;
	}
	ig_log_init("bench", IG_LOG_WARN, IG_LOG_LOGFMT);
	ig_time_init();
	recs = calloc(NREC, sizeof(*recs));
	if (!recs)
		return 1;
	make_records(recs);
	printf("pipeline throughput, %ld records, one thread (CPU time):\n", n);
	for (size_t i = 0; i < sizeof(stage_sets) / sizeof(stage_sets[0]); i++)
		if (bench_graph(i, recs, n) < 0)
			return 1;
	/* Differences between the lines (each adds a stage; the last swaps the
	 * dropping filter for the rollup): where the target pipeline's time goes. */
	printf("\nbreakdown of whitelist + 3 regex + rollup (ns per record, from the lines above):\n"
	       "  metric build with the whitelist   %6.0f\n"
	       "  3 regex rules                     %6.0f\n"
	       "  rollup (instead of the filter)    %6.0f\n"
	       "  console text backend, per record  %6.0f (line 1 minus line 2)\n",
	       graph_ns[2], graph_ns[3] - graph_ns[2], graph_ns[4] - graph_ns[3],
	       graph_ns[0] - graph_ns[1]);
	if (bench_regex(n) < 0)
		return 1;
	free(recs);
	return 0;
}
