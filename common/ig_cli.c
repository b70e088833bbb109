/* ig_cli: see ig_cli.h. */
#include "ig_cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct ig_conf *ig_cli_load(const char *prog, const char *path, ig_conf_check_fn check)
{
	struct ig_conf *c = NULL;
	struct ig_err err;

	ig_err_init(&err);
	if (ig_conf_load(path, &c, &err) < 0 || (check && check(c, &err) < 0)) {
		fprintf(stderr, "%s: invalid configuration %s:\n%s", prog,
			path ? path : "<default>", ig_err_str(&err));
		ig_conf_free(c);
		return NULL;
	}
	return c;
}

int ig_cli_check_config(const char *prog, const char *path, ig_conf_check_fn check)
{
	struct ig_conf *c = ig_cli_load(prog, path, check);
	if (!c)
		return 1;
	printf("%s: configuration OK\n", path ? path : "<default>");
	ig_conf_free(c);
	return 0;
}

void ig_cli_print_default_config(void)
{
	fputs(ig_conf_default_yaml, stdout);
}

void ig_cli_block_signals(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
}
