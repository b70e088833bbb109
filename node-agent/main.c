/* ingrain-agent: the node agent. Loads the eBPF probes named in the
 * configuration, and streams their records to the aggregator with
 * acknowledged delivery. See docs/architecture.md and `ingrain-agent --help`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ig_cli.h"
#include "ig_log.h"
#include "ig_time.h"

#ifndef IG_VERSION
#define IG_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ingrain-agent [options]\n"
		"\n"
		"Loads ingrain's eBPF probes on this node and streams what they see to the\n"
		"aggregator (agent.aggregator in the configuration).\n"
		"\n"
		"  -c, --config FILE          configuration file (default: the embedded one)\n"
		"  -a, --aggregator URL       override agent.aggregator (e.g. tcp://10.0.0.5:7700)\n"
		"  -n, --node-name NAME       override agent.node_name\n"
		"  -l, --log-level LEVEL      debug|info|warn|error (overrides agent.log_level)\n"
		"      --buffer-dir DIR       overrides agent.buffer_dir (\"\" = memory only)\n"
		"      --check-config FILE    validate FILE and exit (0 = valid)\n"
		"      --print-default-config print the embedded configuration and exit\n"
		"  -V, --version              print the version and exit\n"
		"  -h, --help                 this help\n"
		"\n"
		"Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the configuration file.\n"
		"Needs CAP_BPF and CAP_PERFMON (+ CAP_NET_ADMIN for traffic's cgroup_skb method,\n"
		"CAP_SYS_ADMIN to mount tracefs/bpffs); see docs/capabilities.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "aggregator", required_argument, NULL, 'a' },
		{ "node-name", required_argument, NULL, 'n' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "check-config", required_argument, NULL, 1 },
		{ "print-default-config", no_argument, NULL, 2 },
		{ "buffer-dir", required_argument, NULL, 3 },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = NULL, *aggregator = NULL, *node = NULL, *level = NULL;
	const char *buffer_dir = NULL;
	struct ig_err err;
	int c;

	while ((c = getopt_long(argc, argv, "c:a:n:l:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'a':
			aggregator = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'l':
			level = optarg;
			break;
		case 1:
			return ig_cli_check_config("ingrain-agent", optarg, NULL);
		case 2:
			ig_cli_print_default_config();
			return 0;
		case 3:
			buffer_dir = optarg;
			break;
		case 'V':
			printf("ingrain-agent %s\n", IG_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ingrain-agent: unexpected argument '%s' (try --help)\n",
			argv[optind]);
		return 2;
	}
	ig_cli_block_signals();
	ig_time_init();
	struct ig_conf *conf = ig_cli_load("ingrain-agent", config, NULL);
	if (!conf)
		return 1;
	const struct ig_agent_overrides ov = { aggregator, node, buffer_dir };
	if (ig_agent_overrides_apply(&ov, conf) < 0) {
		fprintf(stderr, "ingrain-agent: out of memory\n");
		ig_conf_free(conf);
		return 1;
	}
	enum ig_log_level lvl = (enum ig_log_level)conf->agent.log_level;
	if (level && ig_log_level_parse(level, &lvl) < 0) {
		fprintf(stderr,
			"ingrain-agent: --log-level: '%s' is not one of debug|info|warn|error\n",
			level);
		ig_conf_free(conf);
		return 2;
	}
	ig_log_init("agent", lvl, (enum ig_log_format)conf->agent.log_format);

	struct ig_agent *a = NULL;
	ig_err_init(&err);
	if (ig_agent_new(&a, conf, config, &ov, &err) < 0) {
		ig_error("cannot start the agent", "errors=\"%s\"", ig_err_str(&err));
		fprintf(stderr, "ingrain-agent: cannot start:\n%s", ig_err_str(&err));
		ig_conf_free(conf);
		return 1;
	}
	int rv = ig_agent_run(a);
	ig_agent_free(a);
	return rv == 0 ? 0 : 1;
}
