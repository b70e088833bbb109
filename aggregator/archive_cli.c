/* archive_cli: `ingrainctl archive query ...`: options, the S3 backend's
 * settings from the configuration file, then archive_query.h. */
#include "archive_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive_line.h"
#include "archive_query.h"
#include "ig_backend.h"
#include "ig_conf.h"
#include "ig_log.h"
#include "s3_reader.h"

#define DEFAULT_CONFIG "/etc/ingrain/config.yaml" /* the Helm chart's */

extern const struct ig_backend_ops ig_backend_s3;

void ig_archive_usage(FILE *f)
{
	fprintf(f,
		"Usage: ingrainctl archive query [OPTIONS] [FILTER...]\n"
		"\n"
		"Prints the archived records (S3 backend) of a time window that match every\n"
		"FILTER. Reads the backend's bucket, endpoint and credentials from the same\n"
		"configuration file as the aggregator.\n"
		"\n"
		"Filters (ANDed; KEY is a tag, or name/kind/probe; tags.KEY forces a tag):\n"
		"  KEY=VALUE  KEY!=VALUE  KEY~REGEX  KEY!~REGEX   (PCRE2, unanchored)\n"
		"  e.g. path=/etc/passwd  'path~^/etc/'  pod=web-1  namespace=shop  process=cat\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE   configuration file (default $INGRAIN_CONFIG, else\n"
		"                      " DEFAULT_CONFIG ")\n"
		"  -b, --backend NAME  the s3 backend to read (needed when there are several)\n"
		"      --cluster NAME  the cluster= partition (default: the backend's cluster)\n"
		"      --since DUR     window: the last DUR (30m, 24h, 7d; default 24h)\n"
		"      --from TIME     window start, RFC 3339 (2026-12-01T10:00:00Z)\n"
		"      --to TIME       window end, exclusive (default: now)\n"
		"  -o, --output FMT    table (default), json (the stored lines) or csv\n"
		"      --no-index      read every object (ignore the indexes beside them)\n"
		"  -j, --parallel N    objects fetched at once (default 8)\n"
		"      --max-line SIZE longer lines are reported and skipped (default 1MiB)\n"
		"      --progress / --no-progress   progress on stderr (default: when a tty)\n"
		"      --stats         print the query's counters as JSON on stderr at the end\n"
		"\n"
		"Exit codes: 0 every object read, 1 the query failed (listing, credentials),\n"
		"2 usage, 4 done but some objects or lines could not be read (reported).\n");
}

static int parse_dur(const char *s, int64_t *ns)
{
	char *end;
	double v = strtod(s, &end);
	double mul;

	if (end == s || v < 0)
		return -EINVAL;
	if (!strcmp(end, "s"))
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60;
	else if (!strcmp(end, "h"))
		mul = 3600;
	else if (!strcmp(end, "d"))
		mul = 86400;
	else if (!strcmp(end, "w"))
		mul = 7 * 86400;
	else
		return -EINVAL;
	*ns = (int64_t)(v * mul * 1e9);
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (end == s)
		return -EINVAL;
	if (!strcmp(end, "KiB") || !strcmp(end, "k"))
		v <<= 10;
	else if (!strcmp(end, "MiB") || !strcmp(end, "M"))
		v <<= 20;
	else if (*end)
		return -EINVAL;
	if (v < 64)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static const char *human(uint64_t b, char out[32])
{
	if (b < 10 * 1024)
		snprintf(out, 32, "%llu B", (unsigned long long)b);
	else if (b < 10 * 1048576ULL)
		snprintf(out, 32, "%.1f KiB", (double)b / 1024);
	else if (b < 10 * 1073741824ULL)
		snprintf(out, 32, "%.1f MiB", (double)b / 1048576);
	else
		snprintf(out, 32, "%.2f GiB", (double)b / 1073741824);
	return out;
}

/* The s3 backend's options node: the one named, or the only one. */
static const struct ig_ynode *find_backend(const struct ig_conf *c, const char *want,
					   const char **name, char *msg, size_t msglen)
{
	const struct ig_ynode *map = c->backends, *found = NULL;
	size_t n = 0;

	for (size_t i = 0; map && map->type == IG_Y_MAP && i < map->n; i++) {
		const struct ig_ynode *v = map->pairs[i].val, *t = ig_ymap_get(v, "type");
		const char *bn = map->pairs[i].key->scalar;
		bool s3 = t && t->type == IG_Y_SCALAR && !strcmp(t->scalar, "s3");
		if (want && !strcmp(bn, want)) {
			if (!s3) {
				snprintf(msg, msglen, "backend '%s' is not of type s3", want);
				return NULL;
			}
			*name = bn;
			return v;
		}
		if (s3) {
			n++;
			found = v;
			*name = bn;
		}
	}
	if (want)
		snprintf(msg, msglen, "no backend named '%s' in %s", want, c->source);
	else if (!n)
		snprintf(msg, msglen, "%s defines no backend of type s3", c->source);
	else if (n > 1)
		snprintf(msg, msglen, "%s defines several s3 backends: choose one with --backend",
			 c->source);
	else
		return found;
	return NULL;
}

int ig_archive_cli(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "backend", required_argument, NULL, 'b' },
		{ "cluster", required_argument, NULL, 'C' },
		{ "since", required_argument, NULL, 'S' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "output", required_argument, NULL, 'o' },
		{ "no-index", no_argument, NULL, 'N' },
		{ "parallel", required_argument, NULL, 'j' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "progress", no_argument, NULL, 'P' },
		{ "no-progress", no_argument, NULL, 'Q' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = getenv("INGRAIN_CONFIG") ? getenv("INGRAIN_CONFIG") : DEFAULT_CONFIG;
	const char *backend = NULL, *from = NULL, *to = NULL;
	struct ig_aq_opts o = { .use_index = true,
				.parallel = 8,
				.max_line = 1 << 20,
				.progress = isatty(2),
				.out = stdout };
	int64_t since = 24 * 3600 * 1000000000LL;
	bool have_since = false, stats = false;
	int c, rc = 2;

	if (argc < 2 || strcmp(argv[1], "query")) {
		if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
			ig_archive_usage(stdout);
			return 0;
		}
		fprintf(stderr, "ingrainctl archive: expected 'query' (try ingrainctl archive "
				"--help)\n");
		return 2;
	}
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:b:o:j:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'b':
			backend = optarg;
			break;
		case 'C':
			o.cluster = optarg;
			break;
		case 'S':
			if (parse_dur(optarg, &since)) {
				fprintf(stderr,
					"ingrainctl archive: --since: '%s' is not a duration "
					"like 30m, 24h or 7d\n",
					optarg);
				return 2;
			}
			have_since = true;
			break;
		case 'F':
			from = optarg;
			break;
		case 'T':
			to = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "table"))
				o.format = IG_AQ_TABLE;
			else if (!strcmp(optarg, "json") || !strcmp(optarg, "jsonl"))
				o.format = IG_AQ_JSONL;
			else if (!strcmp(optarg, "csv"))
				o.format = IG_AQ_CSV;
			else {
				fprintf(stderr, "ingrainctl archive: --output must be table, json "
						"or csv\n");
				return 2;
			}
			break;
		case 'N':
			o.use_index = false;
			break;
		case 'j':
			o.parallel = (unsigned)atoi(optarg);
			if (o.parallel < 1 || o.parallel > 256) {
				fprintf(stderr,
					"ingrainctl archive: --parallel must be 1 to 256\n");
				return 2;
			}
			break;
		case 'L':
			if (parse_size(optarg, &o.max_line)) {
				fprintf(stderr,
					"ingrainctl archive: --max-line: '%s' is not a size "
					"(64 or more; 512KiB, 4MiB)\n",
					optarg);
				return 2;
			}
			break;
		case 'P':
			o.progress = true;
			break;
		case 'Q':
			o.progress = false;
			break;
		case 's':
			stats = true;
			break;
		case 'h':
			ig_archive_usage(stdout);
			return 0;
		default:
			ig_archive_usage(stderr);
			return 2;
		}
	}
	/* The window. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ns = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
	if (have_since && from) {
		fprintf(stderr, "ingrainctl archive: give --since or --from, not both\n");
		return 2;
	}
	o.to_ns = now_ns;
	if (to && ig_rfc3339_parse(to, strlen(to), &o.to_ns)) {
		fprintf(stderr,
			"ingrainctl archive: --to: '%s' is not an RFC 3339 time like "
			"2026-12-01T10:00:00Z\n",
			to);
		return 2;
	}
	o.from_ns = o.to_ns - since;
	if (from && ig_rfc3339_parse(from, strlen(from), &o.from_ns)) {
		fprintf(stderr,
			"ingrainctl archive: --from: '%s' is not an RFC 3339 time like "
			"2026-12-01T10:00:00Z\n",
			from);
		return 2;
	}
	if (o.to_ns <= o.from_ns) {
		fprintf(stderr, "ingrainctl archive: the window is empty: --to must be after "
				"--from\n");
		return 2;
	}
	/* Filters. */
	o.nfilters = (size_t)(argc - optind);
	o.filters = calloc(o.nfilters ? o.nfilters : 1, sizeof(*o.filters));
	if (!o.filters)
		return 1;
	for (size_t i = 0; i < o.nfilters; i++) {
		char msg[512];
		if (ig_aq_filter_parse(argv[optind + (int)i], &o.filters[i], msg, sizeof(msg))) {
			fprintf(stderr, "ingrainctl archive: %s\n", msg);
			o.nfilters = i;
			goto out;
		}
	}

	/* The backend, as the aggregator would configure it. */
	ig_log_init("ingrainctl", IG_LOG_WARN, IG_LOG_LOGFMT);
	struct ig_conf *conf = NULL;
	struct ig_err err;
	const char *name = NULL;
	void *bconf = NULL;
	struct ig_s3_reader *r = NULL;
	char msg[512];
	static const char *const ignore[] = { "type", NULL };
	ig_err_init(&err);
	rc = 1;
	if (ig_conf_load(config, &conf, &err)) {
		fprintf(stderr, "ingrainctl archive: %s", ig_err_str(&err));
		goto out;
	}
	const struct ig_ynode *node = find_backend(conf, backend, &name, msg, sizeof(msg));
	if (!node) {
		fprintf(stderr, "ingrainctl archive: %s\n", msg);
		goto out_conf;
	}
	char where[300];
	snprintf(where, sizeof(where), "backends.%s", name);
	if (!(bconf = calloc(1, ig_backend_s3.conf_size)) ||
	    ig_cfg_apply(ig_backend_s3.opts, node, bconf, where, ignore, &err) ||
	    !(r = ig_s3_reader_new(bconf, name, &err))) {
		fprintf(stderr, "ingrainctl archive: %s", ig_err_str(&err));
		goto out_conf;
	}
	struct ig_aq_stats st;
	if (ig_archive_query(r, &o, &st, &err)) {
		fprintf(stderr, "ingrainctl archive: %s", ig_err_str(&err));
		rc = 1;
		goto out_conf;
	}
	rc = st.bad_objects || st.bad_lines ? 4 : 0;
	char b1[32], b2[32], b3[32];
	fprintf(stderr,
		"archive: %llu partitions, %llu objects (%s); %llu skipped by their index, "
		"%llu read (%s, %llu records, %s uncompressed) in %.2f s; %llu matches%s\n",
		(unsigned long long)st.partitions, (unsigned long long)st.objects,
		human(st.object_bytes, b1), (unsigned long long)st.skipped,
		(unsigned long long)st.scanned, human(st.bytes_read, b2),
		(unsigned long long)st.records, human(st.record_bytes, b3), st.seconds,
		(unsigned long long)st.matches,
		st.bad_objects || st.bad_lines || st.bad_indexes || st.index_lies ?
			"; problems reported above" :
			"");
	if (st.other_objects)
		fprintf(stderr,
			"archive: %llu objects in these partitions are not jsonl (format: msgpack?) "
			"and were not read\n",
			(unsigned long long)st.other_objects);
	if (stats) {
		ig_aq_stats_json(&st, stderr);
		fputc('\n', stderr);
	}
out_conf:
	ig_s3_reader_free(r);
	if (bconf)
		ig_cfg_free(ig_backend_s3.opts, bconf);
	free(bconf);
	ig_conf_free(conf);
out:
	for (size_t i = 0; i < o.nfilters; i++)
		ig_aq_filter_free(&o.filters[i]);
	free(o.filters);
	return rc;
}
