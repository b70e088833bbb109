/* ig_config: declarative option tables, in the manner of Fluent Bit's
 * config_map. Every component (agent, aggregator, each probe, each stage,
 * each backend) declares its options once:
 *
 *   static const struct ig_opt statsd_opts[] = {
 *       { "address", IG_OPT_STR, "127.0.0.1:8125", offsetof(struct statsd_conf, address),
 *         "StatsD server host:port (UDP).", .flags = 0 },
 *       { "mtu", IG_OPT_SIZE, "1432", offsetof(struct statsd_conf, mtu),
 *         "Largest datagram sent.", .min = 512, .max = 65507 },
 *       { 0 } };
 *
 * (Each entry needs at least one designated field, e.g. `.flags = 0`, or
 * -Wextra's -Wmissing-field-initializers fails the build.)
 *
 * ig_cfg_apply() then fills the struct from a YAML mapping, applies defaults,
 * checks types and bounds, rejects unknown keys with a did-you-mean, and
 * reports each problem as "file:line:col: <section>.<key>: <what is wrong>".
 * ig_cfg_doc() prints the table as Markdown for docs/configuration.md.
 */
#ifndef IG_CONFIG_H
#define IG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ig_err.h"
#include "ig_yaml.h"

enum ig_opt_type {
	IG_OPT_STR = 1, /* char * (malloc'd; NULL when no default and absent) */
	IG_OPT_BOOL, /* bool */
	IG_OPT_INT, /* int64_t */
	IG_OPT_UINT, /* uint64_t */
	IG_OPT_DURATION, /* uint64_t ns; "250ms", "10s", "5m", "1h"; a bare number is seconds */
	IG_OPT_SIZE, /* uint64_t bytes; "512", "64KiB", "4MiB", "1GiB", "1k" (=1000) */
	IG_OPT_ENUM, /* int: index into .choices */
	IG_OPT_STRLIST, /* struct ig_strlist; a YAML sequence of scalars */
	IG_OPT_NODE, /* const struct ig_ynode *: left for the component to interpret
			    (sub-sections whose schema depends on a type: key); NULL when
			    absent: .def is shown in the docs only */
};

#define IG_OPTF_REQUIRED 0x1
/* Read once at start: a reload keeps the running value and says so by name
 * (ig_cfg_keep_restart); the reference marks it "restart to change". */
#define IG_OPTF_RESTART 0x2

struct ig_strlist {
	size_t n;
	char **v;
};

struct ig_opt {
	const char *name;
	enum ig_opt_type type;
	const char *def; /* default as YAML text; NULL = none */
	size_t offset; /* into the destination struct */
	const char *desc;
	unsigned flags;
	const char *const *choices; /* IG_OPT_ENUM, NULL-terminated */
	int64_t min, max; /* INT/UINT/SIZE/DURATION bounds when min < max */
	const char *doc_type; /* IG_OPT_NODE: what it holds, for the docs */
};

/* Fills dst from map (NULL map, or an empty "section:", = all defaults; a key
 * with no value, "key:" or "key: ~", takes its default too). `where` names the section in
 * messages ("backends.out"). Keys listed in `ignore` (NULL-terminated, may be
 * NULL) are accepted without being in the table (e.g. "type" handled by the
 * caller). Returns 0 or -EINVAL after adding every problem to err. Fields
 * already filled are freed by ig_cfg_free even on error. */
int ig_cfg_apply(const struct ig_opt *table, const struct ig_ynode *map, void *dst,
		 const char *where, const char *const *ignore, struct ig_err *err);
/* Frees the strings and lists ig_cfg_apply allocated in dst. */
void ig_cfg_free(const struct ig_opt *table, void *dst);
/* For a reload: each IG_OPTF_RESTART option whose value in newc differs from
 * the running oldc is set back to the running value in newc (so newc holds
 * what is in force), logged as a warning naming "<where>.<name>" with both
 * values, and its name appended to pending ("a.b,c.d"; may be NULL) when it
 * fits. Returns how many were kept, or -ENOMEM (newc then still valid). */
int ig_cfg_keep_restart(const struct ig_opt *table, void *newc, const void *oldc, const char *where,
			char *pending, size_t pending_len);
/* Markdown table of the options (name, type, default, description). */
void ig_cfg_doc(FILE *out, const char *title, const char *intro, const struct ig_opt *table);

/* Helpers for components that interpret IG_OPT_NODE values themselves. */
int ig_parse_duration(const char *s, uint64_t *ns);
int ig_parse_size(const char *s, uint64_t *bytes);
/* Closest of the candidates to `word` (Damerau-Levenshtein <= 2 or a prefix),
 * or NULL. Used for "unknown key 'adress' (did you mean 'address'?)". */
const char *ig_did_you_mean(const char *word, const char *const *candidates, size_t n);
/* Formats "file:line:col" of a node into buf. */
const char *ig_ynode_pos(const struct ig_ynode *n, char *buf, size_t len);
void ig_strlist_free(struct ig_strlist *l);

#endif
