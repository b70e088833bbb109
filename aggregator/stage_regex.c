/* stage_regex: rewrites tag values (or the metric name) with regular
 * expressions, to fold values that differ only in an id into one series:
 *
 *   - type: regex
 *     rules:
 *       - {key: path, pattern: '^/proc/[0-9]+/', replace_with: /proc/N/}
 *       - {key: path, pattern: '^(/var/lib/kubelet/pods/)[^/]+/', replace_with: '${1}ID/'}
 *       - {key: __name__, pattern: '^file\.', replace_with: 'fs.'}
 *   - {type: regex, key: process, regex: 'conn\d+', replace_with: docker_conn_proxy}
 *
 * A rule is {key, pattern (or its alias regex), replace_with, global}; the
 * second form is a stage with a single rule. Rules run in order, each on the
 * result of the previous ones. Every match in the value is replaced (global:
 * false replaces the first only); the replacement may insert capture groups
 * as $1, ${1}, ${name} or $name, and "$$" is a literal '$'. A value with no
 * match, or a metric without the key, is left as it is. The key `__name__`
 * means the metric's name.
 *
 * Patterns are PCRE2 (re.h: UTF-8 aware, safe on invalid UTF-8, JIT), chosen
 * over POSIX <regex.h> by measurement (bench/bench_pipeline.c): the JIT
 * matches a typical path rule several times faster, and offers \d and named
 * groups. Each pattern is compiled once at load; a bad pattern is reported
 * with its position in the file and the offset in the pattern
 * ("rules[0].pattern: missing closing parenthesis at offset 7"), and a
 * replacement naming a group the pattern does not have is rejected then too,
 * so nothing can fail per metric except for space: a rewritten value goes
 * into the metric's arena (IG_METRIC_ARENA bytes); when it does not fit, the
 * value stays unchanged and the stage logs it (rate-limited).
 *
 * Cost per metric and rule: one tag lookup, then a lookup of the value in
 * the rule's memo: values repeat heavily (process names, paths, pod volume
 * paths), so each rule remembers, per distinct value, whether it matched and
 * what it was rewritten to, and runs the JIT match (and pcre2_substitute on
 * a match) only for values it has not seen. The memo is bounded: MEMO_SLOTS
 * entries at most half full and MEMO_ARENA bytes of strings per rule; when
 * either is used up it is emptied and refills with the values seen next.
 * Probing is bounded too (MEMO_PROBE), so values crafted to collide only
 * cost the uncached path. A memo is per stage instance (one thread).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ig_hash.h"
#include "ig_log.h"
#include "ig_stage.h"
#include "ig_time.h"
#include "re.h"

#define NAME_KEY "__name__"

struct rule_conf {
	const struct ig_ynode *key, *pattern, *regex, *replace_with;
	bool global;
};

struct regex_conf {
	struct rule_conf one; /* the single-rule form */
	const struct ig_ynode *rules;
};

#define MEMO_SLOTS 16384u
#define MEMO_ARENA (1u << 20)
#define MEMO_PROBE 8
#define MEMO_NOMATCH UINT32_MAX

/* A remembered value: its rewrite at out_off (MEMO_NOMATCH: it did not
 * match, or did not fit, and stays as it is). Offsets into the rule's arena;
 * used = 0 marks a free slot. */
struct memo_ent {
	uint32_t hash; /* the low half is the slot; this is the high half */
	uint32_t in_off, out_off;
	uint16_t in_len, out_len; /* values up to MEMO_ARENA / 64 bytes */
	bool used, out_is_num;
};

struct memo {
	struct memo_ent *slot;
	uint32_t nused;
	char *arena;
	uint32_t arena_used;
	uint64_t hits, misses, resets;
};

struct rule {
	struct memo memo;
	char *key;
	bool is_name;
	bool global;
	pcre2_code *re;
	pcre2_match_data *md;
	bool jit; /* pcre2_jit_match: skips pcre2_match's checks */
	char *replace;
};

struct regex_stage {
	uint32_t n;
	struct rule *rules;
	char *scratch; /* one rewritten value */
	uint64_t too_long;
	struct ig_ratelimit rl;
};

#define KEY_DESC "Tag whose value is rewritten; `__name__` rewrites the metric name."
#define PATTERN_DESC "PCRE2 regular expression matched against the value (`regex` is an alias)."
#define REPLACE_DESC                                                                                 \
	"Replacement for each match: `$1`, `${1}`, `${name}` insert capture groups, `$$` is a `$`; " \
	"`''` deletes the match."
#define GLOBAL_DESC "Replace every match (true) or only the first (false)."

static const struct ig_opt rule_opts[] = {
	{ "key", IG_OPT_NODE, NULL, offsetof(struct rule_conf, key), KEY_DESC,
	  .doc_type = "string" },
	{ "pattern", IG_OPT_NODE, NULL, offsetof(struct rule_conf, pattern), PATTERN_DESC,
	  .doc_type = "string" },
	{ "regex", IG_OPT_NODE, NULL, offsetof(struct rule_conf, regex), "Alias of `pattern`.",
	  .doc_type = "string" },
	{ "replace_with", IG_OPT_NODE, NULL, offsetof(struct rule_conf, replace_with), REPLACE_DESC,
	  .doc_type = "string" },
	{ "global", IG_OPT_BOOL, "true", offsetof(struct rule_conf, global), GLOBAL_DESC,
	  .flags = 0 },
	{ 0 },
};

/* The stage's own table: `rules`, or the keys of one rule. */
static const struct ig_opt regex_opts[] = {
	{ "rules", IG_OPT_NODE, NULL, offsetof(struct regex_conf, rules),
	  "Rewrites applied in order, each a mapping of the keys below (`{key, pattern, replace_with, global}`). Without `rules`, the stage itself is one rule.",
	  .doc_type = "list of rules" },
	{ "key", IG_OPT_NODE, NULL, offsetof(struct regex_conf, one.key), KEY_DESC,
	  .doc_type = "string" },
	{ "pattern", IG_OPT_NODE, NULL, offsetof(struct regex_conf, one.pattern), PATTERN_DESC,
	  .doc_type = "string" },
	{ "regex", IG_OPT_NODE, NULL, offsetof(struct regex_conf, one.regex), "Alias of `pattern`.",
	  .doc_type = "string" },
	{ "replace_with", IG_OPT_NODE, NULL, offsetof(struct regex_conf, one.replace_with),
	  REPLACE_DESC, .doc_type = "string" },
	{ "global", IG_OPT_BOOL, "true", offsetof(struct regex_conf, one.global), GLOBAL_DESC,
	  .flags = 0 },
	{ 0 },
};

static void regex_free(void *state)
{
	struct regex_stage *st = state;

	if (!st)
		return;
	for (uint32_t i = 0; i < st->n; i++) {
		free(st->rules[i].key);
		free(st->rules[i].replace);
		pcre2_match_data_free(st->rules[i].md);
		free(st->rules[i].memo.slot);
		free(st->rules[i].memo.arena);
		pcre2_code_free(st->rules[i].re);
	}
	free(st->rules);
	free(st->scratch);
	free(st);
}

static bool absent(const struct ig_ynode *n)
{
	return !n || (n->type == IG_Y_SCALAR && n->plain_null);
}

/* A scalar option's text, or NULL after reporting what is wrong. */
static const char *scalar(const struct ig_ynode *n, const struct ig_ynode *at, const char *where,
			  const char *name, bool empty_ok, const char *hint, struct ig_err *err)
{
	char pos[300];

	if (absent(n)) {
		/* Without a node to point at, the engine adds the stage's position. */
		if (at)
			ig_err_add(err, "%s: %s%s: missing; %s", ig_ynode_pos(at, pos, sizeof(pos)),
				   where, name, hint);
		else
			ig_err_add(err, "%s%s: missing; %s", where, name, hint);
		return NULL;
	}
	if (n->type != IG_Y_SCALAR) {
		ig_err_add(err, "%s: %s%s: expected a string; got %s",
			   ig_ynode_pos(n, pos, sizeof(pos)), where, name,
			   ig_ynode_type_name(n->type));
		return NULL;
	}
	if (!empty_ok && !*n->scalar) {
		ig_err_add(err, "%s: %s%s: is empty; %s", ig_ynode_pos(n, pos, sizeof(pos)), where,
			   name, hint);
		return NULL;
	}
	return n->scalar;
}

/* Checks every $ reference of the replacement against the pattern's groups,
 * so pcre2_substitute cannot fail on it per metric. */
static int check_replacement(const char *r, const pcre2_code *re, const char *where,
			     const struct ig_ynode *at, struct ig_err *err)
{
	uint32_t ngroups = 0;
	char pos[300], name[128];

	pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
	ig_ynode_pos(at, pos, sizeof(pos));
	for (const char *p = r; *p; p++) {
		const char *start = p, *end;
		bool braced;
		size_t len;

		if (*p != '$')
			continue;
		p++;
		if (*p == '$')
			continue;
		braced = *p == '{';
		if (braced) {
			end = strchr(p + 1, '}');
			if (!end) {
				ig_err_add(
					err,
					"%s: %sreplace_with: '${' at offset %zu has no closing '}'",
					pos, where, (size_t)(start - r));
				return -EINVAL;
			}
			p++;
		} else {
			end = p;
			if (isdigit((unsigned char)*end))
				while (isdigit((unsigned char)*end))
					end++;
			else
				while (isalnum((unsigned char)*end) || *end == '_')
					end++;
		}
		len = (size_t)(end - p);
		if (!len || len >= sizeof(name)) {
			ig_err_add(
				err,
				"%s: %sreplace_with: '$' at offset %zu must be followed by a group number, {name} or another '$' (write '$$' for a literal '$')",
				pos, where, (size_t)(start - r));
			return -EINVAL;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		if (isdigit((unsigned char)name[0])) {
			char *e;
			unsigned long g = strtoul(name, &e, 10);

			if (*e) {
				ig_err_add(err,
					   "%s: %sreplace_with: '%s' is not a group number or name",
					   pos, where, name);
				return -EINVAL;
			}
			if (g > ngroups) {
				ig_err_add(
					err,
					"%s: %sreplace_with: $%lu refers to group %lu, but the pattern has %u capture group%s",
					pos, where, g, g, ngroups, ngroups == 1 ? "" : "s");
				return -EINVAL;
			}
		} else if (pcre2_substring_number_from_name(re, (PCRE2_SPTR)name) < 0) {
			ig_err_add(
				err,
				"%s: %sreplace_with: ${%s}: the pattern has no group named '%s' (name one with (?<%s>...))",
				pos, where, name, name, name);
			return -EINVAL;
		}
		p = braced ? end : end - 1;
	}
	return 0;
}

/* Compiles one rule; `where` is "" or "rules[i].", `at` positions missing keys. */
static int rule_init(struct rule *r, const struct rule_conf *c, const char *where,
		     const struct ig_ynode *at, struct ig_err *err)
{
	const struct ig_ynode *pn;
	const char *key, *pat, *rep, *pname;
	char pos[300], msg[300];

	key = scalar(c->key, at, where, "key", false,
		     "name the tag to rewrite, e.g. 'key: path' ('__name__' for the metric name)",
		     err);
	if (!absent(c->pattern) && !absent(c->regex)) {
		ig_err_add(err,
			   "%s: %sregex: 'pattern' and its alias 'regex' are both given; keep one",
			   ig_ynode_pos(c->regex, pos, sizeof(pos)), where);
		return -EINVAL;
	}
	pn = absent(c->regex) ? c->pattern : c->regex;
	pname = absent(c->regex) ? "pattern" : "regex";
	pat = scalar(pn, at, where, pname, false,
		     "give the regular expression to match, e.g. \"pattern: '^/proc/[0-9]+/'\"",
		     err);
	rep = scalar(
		c->replace_with, at, where, "replace_with", true,
		"give the replacement, e.g. \"replace_with: '/proc/N/'\" ('' deletes the match)",
		err);
	if (!key || !pat || !rep)
		return -EINVAL;
	r->re = ig_re_compile(pat, msg, sizeof(msg));
	if (!r->re) {
		ig_err_add(err, "%s: %s%s: %s", ig_ynode_pos(pn, pos, sizeof(pos)), where, pname,
			   msg);
		return -EINVAL;
	}
	if (check_replacement(rep, r->re, where, c->replace_with, err) < 0)
		return -EINVAL;
	r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
	{
		size_t jitsize = 0;

		r->jit = pcre2_pattern_info(r->re, PCRE2_INFO_JITSIZE, &jitsize) == 0 && jitsize;
	}
	r->key = strdup(key);
	r->replace = strdup(rep);
	if (!r->md || !r->key || !r->replace)
		return -ENOMEM;
	r->is_name = !strcmp(key, NAME_KEY);
	r->global = c->global;
	return 0;
}

static bool one_rule_given(const struct rule_conf *c)
{
	return !absent(c->key) || !absent(c->pattern) || !absent(c->regex) ||
	       !absent(c->replace_with);
}

static int regex_init(void **state, const void *conf, struct ig_err *err)
{
	const struct regex_conf *c = conf;
	const struct ig_ynode *rules = c->rules;
	struct regex_stage *st;
	char pos[300];
	size_t n;
	int rc = 0;

	*state = NULL;
	if (!absent(rules) && (one_rule_given(&c->one) || !c->one.global)) {
		ig_err_add(
			err,
			"%s: rules: give either 'rules: [...]' or one rule's key/pattern/replace_with/global on the stage, not both",
			ig_ynode_pos(rules, pos, sizeof(pos)));
		return -EINVAL;
	}
	if (!absent(rules) && rules->type != IG_Y_SEQ) {
		ig_err_add(
			err,
			"%s: rules: expected a list like [{key: path, pattern: '[0-9]+', replace_with: N}]; got %s",
			ig_ynode_pos(rules, pos, sizeof(pos)),
			rules->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(rules->type));
		return -EINVAL;
	}
	if (!absent(rules) && !rules->n) {
		ig_err_add(err, "%s: rules: the list is empty; add a rule or remove the stage",
			   ig_ynode_pos(rules, pos, sizeof(pos)));
		return -EINVAL;
	}
	if (absent(rules) && !one_rule_given(&c->one)) {
		ig_err_add(
			err,
			"give the rewrites as 'rules: [{key: path, pattern: \"^/proc/[0-9]+/\", replace_with: /proc/N/}]' (or one rule's key, pattern and replace_with on the stage)");
		return -EINVAL;
	}
	n = absent(rules) ? 1 : rules->n;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->rl = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	st->rules = calloc(n, sizeof(*st->rules));
	st->scratch = malloc(IG_METRIC_ARENA);
	if (!st->rules || !st->scratch) {
		regex_free(st);
		return -ENOMEM;
	}
	if (absent(rules)) {
		rc = rule_init(&st->rules[0], &c->one, "", NULL, err);
		st->n = 1;
	}
	for (size_t i = 0; !absent(rules) && i < n; i++) {
		const struct ig_ynode *rn = rules->items[i];
		struct rule_conf rc_conf;
		char where[64];
		int r;

		snprintf(where, sizeof(where), "rules[%zu]", i);
		st->n++;
		if (rn->type != IG_Y_MAP) {
			ig_err_add(
				err,
				"%s: %s: expected a mapping like {key: path, pattern: '[0-9]+', replace_with: N}; got %s",
				ig_ynode_pos(rn, pos, sizeof(pos)), where,
				rn->type == IG_Y_SCALAR ? "a scalar" :
							  ig_ynode_type_name(rn->type));
			rc = -EINVAL;
			continue;
		}
		if (ig_cfg_apply(rule_opts, rn, &rc_conf, where, NULL, err) < 0) {
			ig_cfg_free(rule_opts, &rc_conf);
			rc = -EINVAL;
			continue;
		}
		strcat(where, ".");
		r = rule_init(&st->rules[i], &rc_conf, where, rn, err);
		ig_cfg_free(rule_opts, &rc_conf);
		if (r < 0 && (rc == 0 || r == -ENOMEM))
			rc = r;
	}
	if (rc < 0) {
		regex_free(st);
		return rc;
	}
	*state = st;
	return 0;
}

/* A NUM tag stays NUM only while its text is still a number. */
static bool is_number(const char *s)
{
	char *end;

	if (!*s || isspace((unsigned char)*s))
		return false;
	strtod(s, &end);
	return !*end;
}

/* Allocated on first use: about 1.3 MiB per rule. */
static bool memo_alloc(struct memo *mo)
{
	mo->slot = calloc(MEMO_SLOTS, sizeof(*mo->slot));
	mo->arena = malloc(MEMO_ARENA);
	if (!mo->slot || !mo->arena) {
		free(mo->slot);
		free(mo->arena);
		mo->slot = NULL;
		mo->arena = NULL;
		return false;
	}
	return true;
}

static void memo_reset(struct memo *mo)
{
	memset(mo->slot, 0, MEMO_SLOTS * sizeof(*mo->slot));
	mo->nused = 0;
	mo->arena_used = 0;
	mo->resets++;
}

/* The entry for subj, or the free slot it would go in (*found false), or
 * NULL when its probe sequence is full. */
static struct memo_ent *memo_find(struct memo *mo, const char *subj, size_t len, uint64_t h,
				  bool *found)
{
	for (uint32_t k = 0; k < MEMO_PROBE; k++) {
		struct memo_ent *e = &mo->slot[((uint32_t)h + k) & (MEMO_SLOTS - 1)];

		if (!e->used) {
			*found = false;
			return e;
		}
		if (e->hash == (uint32_t)(h >> 32) && e->in_len == len &&
		    !memcmp(mo->arena + e->in_off, subj, len)) {
			*found = true;
			return e;
		}
	}
	*found = false;
	return NULL;
}

/* Runs rule r on subj: 1 = rewritten (into st->scratch, *outlen bytes),
 * 0 = no match, -1 = the rewrite failed (too long for the scratch). */
static int rewrite(struct regex_stage *st, struct rule *r, const char *subj, size_t len,
		   PCRE2_SIZE *outlen)
{
	int rc = r->jit ? pcre2_jit_match(r->re, (PCRE2_SPTR)subj, len, 0, 0, r->md, NULL) :
			  pcre2_match(r->re, (PCRE2_SPTR)subj, len, 0, 0, r->md, NULL);

	if (rc < 0)
		return 0; /* no match (or a match limit hit: leave it) */
	*outlen = IG_METRIC_ARENA;
	rc = pcre2_substitute(r->re, (PCRE2_SPTR)subj, len, 0,
			      PCRE2_SUBSTITUTE_MATCHED | PCRE2_SUBSTITUTE_UNSET_EMPTY |
				      (r->global ? PCRE2_SUBSTITUTE_GLOBAL : 0),
			      r->md, NULL, (PCRE2_SPTR)r->replace, PCRE2_ZERO_TERMINATED,
			      (PCRE2_UCHAR *)st->scratch, outlen);
	return rc >= 0 ? 1 : -1;
}

static void too_long(struct regex_stage *st, const struct rule *r, size_t outlen)
{
	uint64_t sup = 0;

	st->too_long++;
	if (ig_ratelimit_ok(&st->rl, &sup))
		ig_warn("regex stage: a rewritten value does not fit the metric; the value was left unchanged",
			"key=%s bytes=%zu limit=%d unchanged_total=%llu suppressed=%llu", r->key,
			outlen, IG_METRIC_ARENA, (unsigned long long)st->too_long,
			(unsigned long long)sup);
}

static enum ig_stage_result regex_process(void *state, struct ig_metric *m,
					  const struct ig_emit *out)
{
	struct regex_stage *st = state;

	for (uint32_t i = 0; i < st->n; i++) {
		struct rule *r = &st->rules[i];
		struct memo *mo = &r->memo;
		const char *subj = NULL, *v, *res;
		PCRE2_SIZE outlen = 0;
		uint32_t t = 0;
		struct memo_ent *e;
		bool found, is_num;
		uint64_t h;
		int rc;

		if (r->is_name) {
			subj = m->name;
		} else {
			for (t = 0; t < m->ntags; t++)
				if (!strcmp(m->tags[t].key, r->key))
					break;
			if (t < m->ntags)
				subj = m->tags[t].val;
		}
		if (!subj)
			continue;
		size_t len = strlen(subj);

		h = ig_hash_bytes(subj, len, 0);
		if (!mo->slot && !memo_alloc(mo))
			e = NULL, found = false; /* no memory: uncached */
		else
			e = memo_find(mo, subj, len, h, &found);
		if (found) {
			mo->hits++;
			if (e->out_off == MEMO_NOMATCH)
				continue;
			res = mo->arena + e->out_off;
			outlen = e->out_len;
			is_num = e->out_is_num;
		} else {
			mo->misses++;
			rc = rewrite(st, r, subj, len, &outlen);
			if (rc < 0) {
				too_long(st, r, (size_t)outlen);
				continue; /* not remembered: the warning counts each */
			}
			res = rc ? st->scratch : NULL;
			is_num = res && is_number(res);
			/* Remember it, emptying the memo when it is full. */
			size_t need = len + 1 + (res ? outlen + 1 : 0);
			if (mo->slot && need <= MEMO_ARENA / 64) {
				if (2 * (mo->nused + 1) > MEMO_SLOTS ||
				    need > MEMO_ARENA - mo->arena_used) {
					memo_reset(mo);
					e = memo_find(mo, subj, len, h, &found);
				}
				if (e) {
					e->used = true;
					e->hash = (uint32_t)(h >> 32);
					e->in_off = mo->arena_used;
					e->in_len = (uint16_t)len;
					memcpy(mo->arena + mo->arena_used, subj, len + 1);
					mo->arena_used += (uint32_t)len + 1;
					e->out_off = MEMO_NOMATCH;
					if (res) {
						e->out_off = mo->arena_used;
						e->out_len = (uint16_t)outlen;
						memcpy(mo->arena + mo->arena_used, res, outlen);
						mo->arena[mo->arena_used + outlen] = '\0';
						mo->arena_used += (uint32_t)outlen + 1;
						res = mo->arena + e->out_off;
					}
					e->out_is_num = is_num;
					mo->nused++;
				}
			}
			if (!res)
				continue;
		}
		/* A remembered rewrite is used in place: the memo changes only
		 * when this rule runs again, i.e. on a later metric (this one
		 * has gone through the stages and backends by then, and stages
		 * that keep metrics copy their strings). A fresh rewrite that
		 * could not be remembered is copied into the metric. */
		if (res == st->scratch) {
			v = ig_metric_strndup(m, res, outlen);
			if (!v) {
				too_long(st, r, (size_t)outlen);
				continue;
			}
		} else if (outlen >= sizeof(m->arena) - m->arena_used) {
			/* as if copied: the same outcome as a fresh rewrite */
			too_long(st, r, (size_t)outlen);
			continue;
		} else {
			v = res;
		}
		if (r->is_name) {
			m->name = v;
		} else {
			m->tags[t].val = v;
			if (m->tags[t].type == IG_TAG_NUM && !is_num)
				m->tags[t].type = IG_TAG_STR;
		}
	}
	return IG_STAGE_PASS;
}

const struct ig_stage_ops ig_stage_regex = {
	.type = "regex",
	.summary =
		"Rewrites tag values (or the metric name) with PCRE2 regular expressions and capture groups (`/proc/[0-9]+/` -> `/proc/N/`).",
	.opts = regex_opts,
	.conf_size = sizeof(struct regex_conf),
	.init = regex_init,
	.process = regex_process,
	.free = regex_free,
};
