/* ingrainctl: the aggregator's command-line client.
 *
 *   ingrainctl [-s URL] [-o text|json] status
 *   ingrainctl [-s URL] [-o text|json] reload [FILE]
 *   ingrainctl [-s URL] [-o text|json] pipelines
 *   ingrainctl [-o text|json] validate FILE      (local: no aggregator needed)
 *   ingrainctl archive query [OPTIONS] [FILTER...] (local: reads the S3 archive)
 *
 * Exit codes: 0 success, 1 the command failed (e.g. invalid configuration,
 * reload rejected), 2 usage error, 3 the aggregator could not be reached. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "archive_cli.h"
#include "control.h"
#include "ig_conf.h"
#include "ig_pipeline.h"

#define DEFAULT_SOCKET "ipc:///run/ingrain/control.sock"

static int json_out;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ingrainctl [-s URL] [-o text|json] COMMAND\n"
		"\n"
		"Commands:\n"
		"  status           uptime, agents (last seq, losses), pipelines, backends, config\n"
		"  reload [FILE]    reload the aggregator's configuration (or switch to FILE);\n"
		"                   an invalid file is rejected and the running one kept\n"
		"  validate FILE    check FILE with the aggregator's own rules (runs locally)\n"
		"  pipelines        show the active graph: probes -> pipelines -> backends\n"
		"  archive query [OPTIONS] [FILTER...]\n"
		"                   records of a time window from the S3 archive, filtered on\n"
		"                   tags (path=/etc/passwd, 'path~^/etc/', pod=..., ...); runs\n"
		"                   locally with the s3 backend's configuration; see\n"
		"                   'ingrainctl archive --help'\n"
		"\n"
		"Options:\n"
		"  -s, --socket URL  control socket (default " DEFAULT_SOCKET ",\n"
		"                    or $INGRAIN_CONTROL)\n"
		"  -o, --output FMT  text (default) or json\n"
		"  -h, --help\n"
		"\n"
		"Exit codes: 0 ok, 1 command failed, 2 usage, 3 aggregator unreachable.\n");
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static long long jint(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? (long long)json_object_get_int64(v) : 0;
}

static int jok(struct json_object *o)
{
	struct json_object *v;
	return json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
}

static void print_pipelines(struct json_object *o);

static void print_status(struct json_object *o)
{
	struct json_object *cfg, *arr, *pl;
	json_object_object_get_ex(o, "config", &cfg);
	printf("uptime: %llds  listen: %s\n", jint(o, "uptime_s"), jstr(o, "listen"));
	printf("config: %s (sha256 %.12s)  reloads: %lld ok, %lld rejected%s\n", jstr(cfg, "file"),
	       jstr(cfg, "sha256"), jint(cfg, "reloads"), jint(cfg, "reload_failures"),
	       *jstr(cfg, "last_reload_errors") ? "  (last reload rejected)" : "");
	struct json_object *rp = NULL;
	if (cfg && json_object_object_get_ex(cfg, "restart_pending", &rp) &&
	    json_object_array_length(rp) > 0) {
		printf("restart pending (the file changed these; the running values stay):");
		for (size_t i = 0; i < json_object_array_length(rp); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(rp, i)));
		printf("\n");
	}
	printf("envelopes: %lld  records: %lld  duplicates: %lld  malformed: %lld\n",
	       jint(o, "envelopes"), jint(o, "records"), jint(o, "duplicates"),
	       jint(o, "malformed"));
	if (json_object_object_get_ex(o, "pipelines", &pl))
		printf("pipelines: in %lld  out %lld  dropped %lld  unrouted %lld\n",
		       jint(pl, "records_in"), jint(pl, "metrics_out"), jint(pl, "dropped"),
		       jint(pl, "unrouted"));
	if (json_object_object_get_ex(o, "agents", &arr)) {
		printf("agents: %zu\n", json_object_array_length(arr));
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *a = json_object_array_get_idx(arr, i), *lost;
			printf("  %-24s node=%s seq=%lld records=%lld dups=%lld lost:",
			       jstr(a, "agent_id"), jstr(a, "node"), jint(a, "last_seq"),
			       jint(a, "records"), jint(a, "duplicates"));
			if (json_object_object_get_ex(a, "lost", &lost)) {
				json_object_object_foreach(lost, k, v)
					printf(" %s=%lld", k, (long long)json_object_get_int64(v));
			}
			printf("\n");
		}
	}
	if (json_object_object_get_ex(o, "backends", &arr)) {
		printf("backends:\n");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *b = json_object_array_get_idx(arr, i);
			printf("  %-16s %-10s received=%lld sent=%lld dropped=%lld errors=%lld queued=%lld\n",
			       jstr(b, "name"), jstr(b, "type"), jint(b, "received"),
			       jint(b, "sent"), jint(b, "dropped"), jint(b, "errors"),
			       jint(b, "queued"));
		}
	}
	print_pipelines(o);
}

static void print_pipelines(struct json_object *o)
{
	struct json_object *g, *routes, *pls;
	if (!json_object_object_get_ex(o, "graph", &g))
		return;
	if (json_object_object_get_ex(g, "routes", &routes)) {
		json_object_object_foreach(routes, probe, list)
		{
			printf("probe %s ->", probe);
			for (size_t i = 0; i < json_object_array_length(list); i++)
				printf(" %s",
				       json_object_get_string(json_object_array_get_idx(list, i)));
			printf("\n");
		}
	}
	if (json_object_object_get_ex(g, "pipelines", &pls)) {
		for (size_t i = 0; i < json_object_array_length(pls); i++) {
			struct json_object *p = json_object_array_get_idx(pls, i), *st, *be;
			printf("pipeline %s:", jstr(p, "name"));
			if (json_object_object_get_ex(p, "stages", &st))
				for (size_t j = 0; j < json_object_array_length(st); j++) {
					struct json_object *s = json_object_array_get_idx(st, j);
					printf(" [%s in=%lld out=%lld drop=%lld] ->",
					       jstr(s, "type"), jint(s, "in"), jint(s, "out"),
					       jint(s, "dropped"));
				}
			if (json_object_object_get_ex(p, "backends", &be))
				for (size_t j = 0; j < json_object_array_length(be); j++)
					printf(" %s", json_object_get_string(
							      json_object_array_get_idx(be, j)));
			printf("\n");
		}
	}
}

static int finish(struct json_object *rep, void (*text)(struct json_object *))
{
	int ok = jok(rep);
	if (json_out) {
		printf("%s\n", json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PRETTY));
	} else if (!ok) {
		fprintf(stderr, "ingrainctl: %s%s", jstr(rep, "error"), jstr(rep, "errors"));
		fputc('\n', stderr);
	} else if (text) {
		text(rep);
	} else {
		printf("ok\n");
	}
	json_object_put(rep);
	return ok ? 0 : 1;
}

static int validate_local(const char *file)
{
	struct ig_conf *c = NULL;
	struct ig_err err;
	ig_err_init(&err);
	int rv = ig_conf_load(file, &c, &err);
	if (rv == 0)
		rv = ig_graph_check(c, &err);
	ig_conf_free(c);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(rv == 0));
	json_object_object_add(o, "file", json_object_new_string(file));
	if (rv)
		json_object_object_add(o, "errors", json_object_new_string(ig_err_str(&err)));
	if (!json_out && rv == 0)
		printf("%s: configuration OK\n", file);
	if (!json_out && rv == 0) {
		json_object_put(o);
		return 0;
	}
	return finish(o, NULL);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *url = getenv("INGRAIN_CONTROL") ? getenv("INGRAIN_CONTROL") : DEFAULT_SOCKET;
	int c;

	while ((c = getopt_long(argc, argv, "+s:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			url = optarg;
			break;
		case 'o':
			if (!strcmp(optarg, "json"))
				json_out = 1;
			else if (strcmp(optarg, "text")) {
				fprintf(stderr, "ingrainctl: --output must be text or json\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "archive"))
		return ig_archive_cli(argc - optind, argv + optind);
	const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 < argc) {
		fprintf(stderr, "ingrainctl: too many arguments (try --help)\n");
		return 2;
	}
	if (!strcmp(cmd, "validate")) {
		if (!arg) {
			fprintf(stderr, "ingrainctl: validate needs a FILE\n");
			return 2;
		}
		return validate_local(arg);
	}
	if (strcmp(cmd, "status") && strcmp(cmd, "reload") && strcmp(cmd, "pipelines")) {
		fprintf(stderr, "ingrainctl: unknown command '%s' (try --help)\n", cmd);
		return 2;
	}
	if (arg && strcmp(cmd, "reload")) {
		fprintf(stderr, "ingrainctl: %s takes no argument\n", cmd);
		return 2;
	}
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (arg) {
		char *abs = realpath(arg, NULL);
		if (!abs) {
			fprintf(stderr, "ingrainctl: cannot read %s\n", arg);
			json_object_put(req);
			return 1;
		}
		json_object_object_add(req, "file", json_object_new_string(abs));
		free(abs);
	}
	struct ig_err err;
	ig_err_init(&err);
	struct json_object *rep = ig_control_call(url, req, 10000, &err);
	json_object_put(req);
	if (!rep) {
		fprintf(stderr, "ingrainctl: %s", ig_err_str(&err));
		return 3;
	}
	if (!strcmp(cmd, "status"))
		return finish(rep, print_status);
	if (!strcmp(cmd, "pipelines"))
		return finish(rep, print_pipelines);
	return finish(rep, NULL);
}
