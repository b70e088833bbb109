/* ig_cli: what ingrain-agent and ingrain-aggregator share on their command
 * lines: loading the configuration (with every error printed), --check-config,
 * --print-default-config, and blocking the signals the event loops read from
 * a signalfd (done before any thread starts, so no thread takes them). */
#ifndef IG_CLI_H
#define IG_CLI_H

#include "ig_conf.h"
#include "ig_err.h"

/* Extra validation a binary adds to the shared one (the aggregator checks
 * pipelines and backends); may be NULL. */
typedef int (*ig_conf_check_fn)(const struct ig_conf *c, struct ig_err *err);

/* Loads path (NULL = embedded default) and runs check; prints every error to
 * stderr prefixed with prog. NULL on failure. */
struct ig_conf *ig_cli_load(const char *prog, const char *path, ig_conf_check_fn check);
/* --check-config: prints "<file>: configuration OK" or the errors. Exit code. */
int ig_cli_check_config(const char *prog, const char *path, ig_conf_check_fn check);
void ig_cli_print_default_config(void);
/* Blocks SIGTERM, SIGINT, SIGHUP (and ignores SIGPIPE) in the calling thread
 * and every thread created after. */
void ig_cli_block_signals(void);

#endif
