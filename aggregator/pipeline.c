/* pipeline: the aggregator's processing graph (see ig_pipeline.h).
 *
 * Building walks the configuration in three passes and reports every problem
 * it finds, each with file:line:col:
 *   1. backends:  name -> {type: ..., options}: the type selects the ops, the
 *      ops' option table parses the rest (ig_cfg_apply, `type` ignored).
 *   2. pipelines: name -> {stages: [...], backends: [...]}: each stage is
 *      parsed and initialised the same way (stages are pure, so this also runs
 *      for ig_graph_check and catches bad regexes and the like); each backend
 *      name must be defined in pass 1.
 *   3. probes:    each probe's `pipelines:` names (checked to exist, once, by
 *      ig_conf_load, so the agent refuses the same files); the result is a
 *      route table probe name -> pipelines, hashed once, so routing a record
 *      costs one hash and one string compare.
 * Only when all of that is clean are the backends that some pipeline uses
 * started (their init opens files and sockets); a backend that is defined
 * but unused is validated, logged and not started. ig_graph_check does the
 * three passes and starts nothing.
 *
 * Messages from a stage's or backend's init() are scoped by the engine: a
 * line "file:l:c: key: what" becomes "file:l:c: pipelines.p.stages[0].key:
 * what", a line without a position gets the stage's (or backend's) position.
 *
 * Processing: each record becomes one metric per pipeline it feeds
 * (ig_metric_from_record into one buffer owned by the graph, rebuilt per
 * pipeline so stages may modify their copy), which runs through the stages in
 * order: PASS continues, DROP discards (counted), CONSUMED stops (the stage
 * keeps what it needs and emits later). A stage's emit callback runs the
 * emitted metric through the stages after it, then the pipeline's backends.
 * Each stage counts what it was given (in), handed on or emitted (out) and
 * dropped, for ig_graph_describe. Nothing is allocated per record.
 */
#include "ig_pipeline.h"
#include "spool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ig_log.h"
#include "ig_metric.h"
#include "ig_stage.h"
#include "ig_time.h"
#include "ig_hash.h"

#define WHERE_LEN 320
#define NAMES_MAX 128

struct pipeline;

struct stage_inst {
	const struct ig_stage_ops *ops;
	void *conf;
	void *state;
	struct pipeline *p;
	size_t idx;
	struct ig_emit emit;
	uint64_t in, out, dropped; /* for ig_graph_describe */
};

struct backend_inst {
	char *name;
	const struct ig_ynode *node; /* only valid while building */
	const struct ig_backend_ops *ops;
	void *conf;
	void *state; /* NULL until started */
	bool used;
};

struct pipeline {
	/* first stage selects tags by key: built with sel (see ig_graph_process) */
	bool sel_checked, has_sel;
	struct ig_metric_sel sel;
	char *name;
	char *def; /* the definition without positions, for ig_graph_adopt */
	struct ig_graph *g;
	bool fed;
	size_t nstages;
	struct stage_inst *stages;
	size_t nbackends;
	struct backend_inst **backends;
};

struct route {
	const char *probe; /* static: ig_probe_descs[].name */
	size_t n;
	struct pipeline **p;
};

struct ig_graph {
	size_t nbackends;
	struct backend_inst *backends;
	size_t npipelines;
	struct pipeline *pipelines;
	size_t nroutes;
	struct route *routes;
	uint32_t *slots; /* route index + 1, 0 = empty */
	uint32_t slot_mask;
	struct ig_metric *m; /* the per-record work buffer */
	struct ig_graph_stats st;
	bool flushed; /* nothing written since the last flush: free need not flush */
	uint64_t truncated; /* records whose tags did not all fit a metric */
	struct ig_ratelimit rl_truncated;
};

/* Build state: where messages go, and whether any problem was found (err
 * may be NULL, so its count cannot tell). */
struct bctx {
	const struct ig_conf *conf;
	struct ig_err *err;
	bool failed;
};

static const char *const type_key[] = { "type", NULL };

static void problem(struct bctx *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct bctx *b, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	b->failed = true;
	ig_err_add(b->err, "%s", line);
}

static uint32_t hash_str(const char *s)
{
	return ig_fnv32_str(IG_FNV32_INIT, s);
}

/* "a, b, c" of names into buf. */
static const char *join(const char *const *names, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	return buf;
}

/* " (did you mean 'x'?)" or " (valid <what>: a, b)" for an unknown name. */
static const char *hint(const char *word, const char *const *names, size_t n, const char *what,
			char *buf, size_t len)
{
	const char *guess = ig_did_you_mean(word, names, n);
	char list[512];

	if (guess)
		snprintf(buf, len, " (did you mean '%s'?)", guess);
	else if (n)
		snprintf(buf, len, " (%s: %s)", what, join(names, n, list, sizeof(list)));
	else
		snprintf(buf, len, " (none are defined)");
	return buf;
}

static size_t stage_type_names(const char **names)
{
	size_t n = 0;

	for (; ig_stage_table[n] && n < NAMES_MAX; n++)
		names[n] = ig_stage_table[n]->type;
	return n;
}

static size_t backend_type_names(const char **names)
{
	size_t n = 0;

	for (; ig_backend_table[n] && n < NAMES_MAX; n++)
		names[n] = ig_backend_table[n]->type;
	return n;
}

/* True when s is "file:line:col" (or one of the placeholders ig_ynode_pos
 * and the option parser use). */
static bool is_position(const char *s, size_t len)
{
	size_t i = len, digits;

	if ((len == 9 && !strncmp(s, "<unknown>", 9)) || (len == 9 && !strncmp(s, "<default>", 9)))
		return true;
	for (int part = 0; part < 2; part++) {
		digits = 0;
		while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') {
			i--;
			digits++;
		}
		if (!digits || i == 0 || s[i - 1] != ':')
			return false;
		i--;
	}
	return i > 0;
}

/* Re-adds the messages of a stage's or backend's init() under `where` (see the
 * top of this file). `at` positions lines that have no position. */
static void add_scoped(struct bctx *b, const struct ig_err *le, const struct ig_ynode *at,
		       const char *where, int rc)
{
	char pos[300];
	const char *line = le->buf;

	ig_ynode_pos(at, pos, sizeof(pos));
	if (!le->n || !*line) {
		problem(b, "%s: %s: could not start: %s", pos, where,
			strerror(rc < 0 ? -rc : EINVAL));
		return;
	}
	while (*line) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		const char *sep = memmem(line, len, ": ", 2);
		const char *lpos = pos, *rest = line;
		size_t lposlen = strlen(pos), restlen = len;
		size_t wl = strlen(where);

		if (sep && is_position(line, (size_t)(sep - line))) {
			lpos = line;
			lposlen = (size_t)(sep - line);
			rest = sep + 2;
			restlen = len - lposlen - 2;
		}
		/* rest is "key: what" when its first token (up to ": ") has no
		 * space; already scoped when it starts with where. */
		const char *ksep = memmem(rest, restlen, ": ", 2);
		bool keyed = ksep && !memchr(rest, ' ', (size_t)(ksep - rest)) && ksep > rest;
		bool scoped = restlen >= wl && !strncmp(rest, where, wl) &&
			      (rest[wl] == '.' || rest[wl] == ':' || rest[wl] == '[');

		if (!strncmp(rest, "...", 3) || scoped)
			problem(b, "%.*s: %.*s", (int)lposlen, lpos, (int)restlen, rest);
		else if (keyed)
			problem(b, "%.*s: %s.%.*s", (int)lposlen, lpos, where, (int)restlen, rest);
		else
			problem(b, "%.*s: %s: %.*s", (int)lposlen, lpos, where, (int)restlen, rest);
		line += len;
		if (*line == '\n')
			line++;
	}
}

/* The `type:` of a component mapping, or NULL after reporting why not. */
static const char *type_of(struct bctx *b, const struct ig_ynode *n, const char *where,
			   const char *const *names, size_t nnames, const struct ig_ynode **tnode)
{
	char pos[300], list[512];
	const struct ig_ynode *t;

	*tnode = NULL;
	if (!n || n->type != IG_Y_MAP) {
		problem(b, "%s: %s: expected a mapping with a 'type:' key (one of %s); got %s",
			ig_ynode_pos(n, pos, sizeof(pos)), where,
			join(names, nnames, list, sizeof(list)),
			!n		       ? "nothing" :
			n->type == IG_Y_SCALAR ? "a scalar" :
						 ig_ynode_type_name(n->type));
		return NULL;
	}
	t = ig_ymap_get(n, "type");
	if (!t || (t->type == IG_Y_SCALAR && t->plain_null)) {
		problem(b, "%s: %s: missing 'type'; add 'type: <%s>'",
			ig_ynode_pos(n, pos, sizeof(pos)), where,
			join(names, nnames, list, sizeof(list)));
		return NULL;
	}
	if (t->type != IG_Y_SCALAR) {
		problem(b, "%s: %s.type: expected one of %s; got %s",
			ig_ynode_pos(t, pos, sizeof(pos)), where,
			join(names, nnames, list, sizeof(list)), ig_ynode_type_name(t->type));
		return NULL;
	}
	*tnode = t;
	return t->scalar;
}

/* ---- pass 1: backends ---- */

static void parse_backends(struct bctx *b, struct ig_graph *g)
{
	const struct ig_ynode *map = b->conf->backends;
	const char *names[NAMES_MAX];
	size_t nnames = backend_type_names(names);

	if (!map || map->type != IG_Y_MAP || !map->n)
		return;
	g->backends = calloc(map->n, sizeof(*g->backends));
	if (!g->backends) {
		problem(b, "out of memory building backends");
		return;
	}
	for (size_t i = 0; i < map->n; i++) {
		struct backend_inst *bi = &g->backends[g->nbackends];
		const struct ig_ynode *val = map->pairs[i].val, *tnode;
		const char *bname = map->pairs[i].key->scalar, *type;
		char where[WHERE_LEN], pos[300], h[600];

		/* Every name is kept, even with a bad type, so that pipelines
		 * naming it do not get a second, misleading error. */
		bi->name = strdup(bname);
		if (!bi->name) {
			problem(b, "out of memory building backends");
			return;
		}
		bi->node = val;
		g->nbackends++;
		snprintf(where, sizeof(where), "backends.%.200s", bname);
		type = type_of(b, val, where, names, nnames, &tnode);
		if (!type)
			continue;
		bi->ops = ig_backend_find(type);
		if (!bi->ops) {
			problem(b, "%s: %s.type: unknown backend type '%.100s'%s",
				ig_ynode_pos(tnode, pos, sizeof(pos)), where, type,
				hint(type, names, nnames, "valid types", h, sizeof(h)));
			continue;
		}
		bi->conf = calloc(1, bi->ops->conf_size ? bi->ops->conf_size : 1);
		if (!bi->conf) {
			bi->ops = NULL;
			problem(b, "out of memory building backends");
			continue;
		}
		if (ig_cfg_apply(bi->ops->opts, val, bi->conf, where, type_key, b->err) < 0)
			b->failed = true;
	}
}

static struct backend_inst *find_backend(struct ig_graph *g, const char *name)
{
	for (size_t i = 0; i < g->nbackends; i++)
		if (!strcmp(g->backends[i].name, name))
			return &g->backends[i];
	return NULL;
}

static struct pipeline *find_pipeline(struct ig_graph *g, const char *name)
{
	for (size_t i = 0; i < g->npipelines; i++)
		if (!strcmp(g->pipelines[i].name, name))
			return &g->pipelines[i];
	return NULL;
}

/* ---- pass 2: pipelines ---- */

/* A pipeline's definition as text without positions: two definitions render
 * alike exactly when they define the same pipeline (ig_graph_adopt). */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;
		char *p = realloc(t->p, cap);

		if (!p) {
			t->oom = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void render(struct text *t, const struct ig_ynode *n)
{
	char head[32];

	if (!n) {
		text_add(t, "~", 1);
		return;
	}
	if (n->type == IG_Y_SCALAR) {
		size_t sl = strlen(n->scalar);

		snprintf(head, sizeof(head), "%c%zu:", n->plain_null ? 'n' : 's', sl);
		text_add(t, head, strlen(head));
		text_add(t, n->scalar, sl);
		return;
	}
	text_add(t, n->type == IG_Y_SEQ ? "[" : "{", 1);
	for (size_t i = 0; i < n->n; i++) {
		if (n->type == IG_Y_SEQ) {
			render(t, n->items[i]);
		} else {
			render(t, n->pairs[i].key);
			render(t, n->pairs[i].val);
		}
	}
	text_add(t, n->type == IG_Y_SEQ ? "]" : "}", 1);
}

static void run(struct pipeline *p, size_t first, struct ig_metric *m);

static void emit_after(void *ctx, struct ig_metric *m)
{
	struct stage_inst *s = ctx;

	s->out++;
	run(s->p, s->idx + 1, m);
}

static void parse_stages(struct bctx *b, struct pipeline *p, const struct ig_ynode *seq,
			 const char *pwhere)
{
	const char *names[NAMES_MAX];
	size_t nnames = stage_type_names(names);
	char pos[300], h[600];

	if (!seq || (seq->type == IG_Y_SCALAR && seq->plain_null))
		return;
	if (seq->type != IG_Y_SEQ) {
		problem(b,
			"%s: %s.stages: expected a list of stages like [{type: add_tags, ...}]; got %s",
			ig_ynode_pos(seq, pos, sizeof(pos)), pwhere,
			seq->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(seq->type));
		return;
	}
	if (!seq->n)
		return;
	p->stages = calloc(seq->n, sizeof(*p->stages));
	if (!p->stages) {
		problem(b, "out of memory building pipeline %s", p->name);
		return;
	}
	for (size_t i = 0; i < seq->n; i++) {
		const struct ig_ynode *sn = seq->items[i], *tnode;
		struct stage_inst *s = &p->stages[p->nstages];
		char where[WHERE_LEN];
		const char *type;
		struct ig_err le;
		int rc;

		snprintf(where, sizeof(where), "%s.stages[%zu]", pwhere, i);
		type = type_of(b, sn, where, names, nnames, &tnode);
		if (!type)
			continue;
		s->ops = ig_stage_find(type);
		if (!s->ops) {
			problem(b, "%s: %s.type: unknown stage type '%.100s'%s",
				ig_ynode_pos(tnode, pos, sizeof(pos)), where, type,
				hint(type, names, nnames, "valid types", h, sizeof(h)));
			continue;
		}
		s->conf = calloc(1, s->ops->conf_size ? s->ops->conf_size : 1);
		if (!s->conf) {
			problem(b, "out of memory building pipeline %s", p->name);
			continue;
		}
		s->p = p;
		s->idx = p->nstages;
		s->emit.fn = emit_after;
		s->emit.ctx = s;
		p->nstages++;
		if (ig_cfg_apply(s->ops->opts, sn, s->conf, where, type_key, b->err) < 0) {
			b->failed = true;
			continue;
		}
		ig_err_init(&le);
		rc = s->ops->init(&s->state, s->conf, &le);
		if (rc < 0) {
			s->state = NULL;
			add_scoped(b, &le, sn, where, rc);
		}
	}
}

static void parse_pipeline_backends(struct bctx *b, struct ig_graph *g, struct pipeline *p,
				    const struct ig_ynode *seq, const struct ig_ynode *pnode,
				    const char *pwhere)
{
	const char *names[NAMES_MAX];
	size_t nnames = 0;
	char pos[300], h[600], list[512];

	for (size_t i = 0; i < g->nbackends && nnames < NAMES_MAX; i++)
		names[nnames++] = g->backends[i].name;
	if (!seq || (seq->type == IG_Y_SCALAR && seq->plain_null) ||
	    (seq->type == IG_Y_SEQ && !seq->n)) {
		if (nnames)
			problem(b,
				"%s: %s.backends: a pipeline needs at least one backend; add 'backends: [<name>]' (defined backends: %s)",
				ig_ynode_pos(seq ? seq : pnode, pos, sizeof(pos)), pwhere,
				join(names, nnames, list, sizeof(list)));
		else
			problem(b,
				"%s: %s.backends: a pipeline needs at least one backend; define one under 'backends:' (e.g. console: {type: console}) and list it here",
				ig_ynode_pos(seq ? seq : pnode, pos, sizeof(pos)), pwhere);
		return;
	}
	if (seq->type != IG_Y_SEQ) {
		problem(b,
			"%s: %s.backends: expected a list of backend names like [console]; got %s",
			ig_ynode_pos(seq, pos, sizeof(pos)), pwhere,
			seq->type == IG_Y_SCALAR ? "a scalar" : ig_ynode_type_name(seq->type));
		return;
	}
	p->backends = calloc(seq->n, sizeof(*p->backends));
	if (!p->backends) {
		problem(b, "out of memory building pipeline %s", p->name);
		return;
	}
	for (size_t i = 0; i < seq->n; i++) {
		const struct ig_ynode *it = seq->items[i];
		struct backend_inst *bi;
		bool dup = false;

		ig_ynode_pos(it, pos, sizeof(pos));
		if (it->type != IG_Y_SCALAR) {
			problem(b, "%s: %s.backends[%zu]: expected a backend name; got %s", pos,
				pwhere, i, ig_ynode_type_name(it->type));
			continue;
		}
		bi = find_backend(g, it->scalar);
		if (!bi) {
			if (nnames)
				problem(b,
					"%s: %s.backends[%zu]: unknown backend '%.100s'%s; define it under 'backends:'",
					pos, pwhere, i, it->scalar,
					hint(it->scalar, names, nnames, "defined backends", h,
					     sizeof(h)));
			else
				problem(b,
					"%s: %s.backends[%zu]: unknown backend '%.100s' (no backends are defined); define it under 'backends:'",
					pos, pwhere, i, it->scalar);
			continue;
		}
		for (size_t j = 0; j < p->nbackends; j++)
			dup |= p->backends[j] == bi;
		if (dup) {
			problem(b,
				"%s: %s.backends[%zu]: backend '%.100s' is listed twice; remove one",
				pos, pwhere, i, it->scalar);
			continue;
		}
		bi->used = true;
		p->backends[p->nbackends++] = bi;
	}
}

struct pipeline_conf {
	const struct ig_ynode *stages;
	const struct ig_ynode *backends;
};

static const struct ig_opt pipeline_opts[] = {
	{ "stages", IG_OPT_NODE, NULL, offsetof(struct pipeline_conf, stages),
	  "Stages run in order on each metric (see the stage types below).",
	  .doc_type = "list of stages" },
	{ "backends", IG_OPT_NODE, NULL, offsetof(struct pipeline_conf, backends),
	  "Names of the backends (defined under `backends:`) that receive what the stages let through. At least one.",
	  .doc_type = "list of backend names" },
	{ 0 },
};

static void parse_pipelines(struct bctx *b, struct ig_graph *g)
{
	const struct ig_ynode *map = b->conf->pipelines;

	if (!map || map->type != IG_Y_MAP || !map->n)
		return;
	g->pipelines = calloc(map->n, sizeof(*g->pipelines));
	if (!g->pipelines) {
		problem(b, "out of memory building pipelines");
		return;
	}
	for (size_t i = 0; i < map->n; i++) {
		struct pipeline *p = &g->pipelines[g->npipelines];
		const struct ig_ynode *pn = map->pairs[i].val;
		struct pipeline_conf pc;
		char where[WHERE_LEN];

		p->name = strdup(map->pairs[i].key->scalar);
		if (!p->name) {
			problem(b, "out of memory building pipelines");
			return;
		}
		p->g = g;
		g->npipelines++;
		{
			struct text t = { 0 };

			render(&t, pn);
			if (t.oom) /* no definition: never adopts, which is safe */
				free(t.p);
			else
				p->def = t.p;
		}
		snprintf(where, sizeof(where), "pipelines.%.200s", p->name);
		if (ig_cfg_apply(pipeline_opts, pn, &pc, where, NULL, b->err) < 0) {
			b->failed = true;
			if (!pn || pn->type != IG_Y_MAP)
				continue;
		}
		parse_stages(b, p, pc.stages, where);
		parse_pipeline_backends(b, g, p, pc.backends, pn, where);
	}
}

/* ---- pass 3: probes -> pipelines ---- */

static void build_routes(struct bctx *b, struct ig_graph *g)
{
	g->routes = calloc(IG_PROBE__COUNT, sizeof(*g->routes));
	if (!g->routes) {
		problem(b, "out of memory building routes");
		return;
	}
	for (int k = 0; k < IG_PROBE__COUNT; k++) {
		const struct ig_probe_common *pc = ig_conf_probe_common(b->conf, k);
		const char *probe = ig_probe_descs[k].name;
		struct route *rt = &g->routes[g->nroutes];

		if (!pc || !pc->pipelines.n)
			continue;
		rt->p = calloc(pc->pipelines.n, sizeof(*rt->p));
		if (!rt->p) {
			problem(b, "out of memory building routes");
			return;
		}
		rt->probe = probe;
		g->nroutes++;
		for (size_t i = 0; i < pc->pipelines.n; i++) {
			const char *pname = pc->pipelines.v[i];
			struct pipeline *p = find_pipeline(g, pname);
			bool dup = false;

			/* Unknown and repeated names were refused by ig_conf_load
			 * (check_routes), for the agent and ingrainctl alike. */
			for (size_t j = 0; p && j < rt->n; j++)
				dup |= rt->p[j] == p;
			if (!p || dup)
				continue;
			p->fed = true;
			rt->p[rt->n++] = p;
		}
	}
}

static int hash_routes(struct ig_graph *g)
{
	uint32_t nslots = 8;

	while (nslots < 2 * g->nroutes)
		nslots <<= 1;
	g->slots = calloc(nslots, sizeof(*g->slots));
	if (!g->slots)
		return -ENOMEM;
	g->slot_mask = nslots - 1;
	for (size_t i = 0; i < g->nroutes; i++) {
		uint32_t s = hash_str(g->routes[i].probe) & g->slot_mask;

		while (g->slots[s])
			s = (s + 1) & g->slot_mask;
		g->slots[s] = (uint32_t)i + 1;
	}
	return 0;
}

static const struct route *route_find(const struct ig_graph *g, const char *probe)
{
	uint32_t s;

	if (!probe || !g->slots)
		return NULL;
	for (s = hash_str(probe) & g->slot_mask; g->slots[s]; s = (s + 1) & g->slot_mask) {
		const struct route *rt = &g->routes[g->slots[s] - 1];

		if (!strcmp(rt->probe, probe))
			return rt;
	}
	return NULL;
}

/* ---- start, free ---- */

static void start_backends(struct bctx *b, struct ig_graph *g)
{
	for (size_t i = 0; i < g->nbackends; i++) {
		struct backend_inst *bi = &g->backends[i];
		char where[WHERE_LEN];
		struct ig_err le;
		int rc;

		snprintf(where, sizeof(where), "backends.%.200s", bi->name);
		if (!bi->used) {
			ig_warn("backend is defined but no pipeline uses it; it is not started (list it in a pipeline's backends, or remove it)",
				"backend=%s type=%s", bi->name, bi->ops->type);
			continue;
		}
		ig_err_init(&le);
		rc = bi->ops->init(&bi->state, bi->conf, bi->name, &le);
		if (rc < 0) {
			bi->state = NULL;
			add_scoped(b, &le, bi->node, where, rc);
		}
	}
	for (size_t i = 0; i < g->npipelines; i++)
		if (!g->pipelines[i].fed)
			ig_warn("pipeline is defined but no probe feeds it (name it in a probe's pipelines)",
				"pipeline=%s", g->pipelines[i].name);
}

static void destroy(struct ig_graph *g, bool flush)
{
	if (!g)
		return;
	if (flush && !g->flushed)
		ig_graph_flush(g);
	for (size_t i = 0; i < g->npipelines; i++) {
		struct pipeline *p = &g->pipelines[i];

		for (size_t j = 0; j < p->nstages; j++) {
			struct stage_inst *s = &p->stages[j];

			if (s->state)
				s->ops->free(s->state);
			ig_cfg_free(s->ops->opts, s->conf);
			free(s->conf);
		}
		free(p->stages);
		free(p->backends);
		free(p->name);
		free(p->def);
	}
	free(g->pipelines);
	for (size_t i = 0; i < g->nbackends; i++) {
		struct backend_inst *bi = &g->backends[i];

		if (bi->state)
			bi->ops->free(bi->state);
		if (bi->ops)
			ig_cfg_free(bi->ops->opts, bi->conf);
		free(bi->conf);
		free(bi->name);
	}
	free(g->backends);
	for (size_t i = 0; i < g->nroutes; i++)
		free(g->routes[i].p);
	free(g->routes);
	free(g->slots);
	free(g->m);
	free(g);
}

static int build(const struct ig_conf *conf, struct ig_graph **out, struct ig_err *err, bool start)
{
	struct bctx b = { .conf = conf, .err = err };
	struct ig_graph *g;

	*out = NULL;
	if (!conf)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g) {
		ig_err_add(err, "out of memory building the pipelines");
		return -ENOMEM;
	}
	g->rl_truncated = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	parse_backends(&b, g);
	parse_pipelines(&b, g);
	build_routes(&b, g);
	if (!b.failed && hash_routes(g) < 0)
		problem(&b, "out of memory building routes");
	if (!b.failed && start) {
		g->m = malloc(sizeof(*g->m));
		if (!g->m)
			problem(&b, "out of memory building the pipelines");
		else
			ig_metric_reset(g->m);
	}
	if (!b.failed && start)
		start_backends(&b, g);
	for (size_t i = 0; i < g->nbackends; i++)
		g->backends[i].node = NULL; /* the document may go before the graph */
	if (b.failed) {
		destroy(g, false);
		return -EINVAL;
	}
	*out = g;
	return 0;
}

int ig_graph_build(const struct ig_conf *conf, struct ig_graph **out, struct ig_err *err)
{
	return build(conf, out, err, true);
}

int ig_graph_check(const struct ig_conf *conf, struct ig_err *err)
{
	struct ig_graph *g = NULL;
	int rc = build(conf, &g, err, false);

	destroy(g, false);
	return rc;
}

void ig_graph_free(struct ig_graph *g)
{
	destroy(g, true);
}

size_t ig_graph_adopt(struct ig_graph *ng, struct ig_graph *old)
{
	size_t adopted = 0;

	if (!ng || !old)
		return 0;
	for (size_t i = 0; i < ng->npipelines; i++) {
		struct pipeline *p = &ng->pipelines[i];
		struct pipeline *op = find_pipeline(old, p->name);
		bool any = false;

		if (!op || !p->def || !op->def || strcmp(p->def, op->def) ||
		    p->nstages != op->nstages)
			continue;
		for (size_t j = 0; j < p->nstages; j++) {
			struct stage_inst *s = &p->stages[j], *os = &op->stages[j];

			if (s->ops != os->ops || !s->ops->adopt || !s->state || !os->state)
				continue;
			s->ops->adopt(s->state, os->state);
			any = true;
		}
		adopted += any;
	}
	return adopted;
}

/* ---- processing ---- */

static void run(struct pipeline *p, size_t first, struct ig_metric *m)
{
	struct ig_graph *g = p->g;

	for (size_t i = first; i < p->nstages; i++) {
		struct stage_inst *s = &p->stages[i];
		enum ig_stage_result r;

		s->in++;
		r = s->ops->process(s->state, m, &s->emit);
		if (r == IG_STAGE_DROP) {
			s->dropped++;
			g->st.dropped++;
			return;
		}
		if (r == IG_STAGE_CONSUMED)
			return;
		s->out++;
	}
	for (size_t i = 0; i < p->nbackends; i++) {
		struct backend_inst *bi = p->backends[i];

		bi->ops->write(bi->state, m);
		g->st.metrics_out++;
	}
}

void ig_graph_process(struct ig_graph *g, const struct ig_record *r)
{
	const struct route *rt;

	if (!g || !r)
		return;
	g->flushed = false;
	g->st.records_in++;
	rt = route_find(g, r->probe);
	if (!rt) {
		g->st.unrouted++;
		return;
	}
	for (size_t i = 0; i < rt->n; i++) {
		struct pipeline *p = rt->p[i];
		size_t first = 0;
		int rv;

		if (!p->sel_checked) {
			p->sel_checked = true;
			if (p->nstages && p->stages[0].ops->keeps_key && p->stages[0].state) {
				ig_metric_sel_init(&p->sel, p->stages[0].ops->keeps_key,
						   p->stages[0].state);
				p->has_sel = true;
			}
		}
		if (p->has_sel) {
			/* the first stage's work, done while building */
			rv = ig_metric_from_record_sel(g->m, r, &p->sel);
			p->stages[0].in++;
			p->stages[0].out++;
			first = 1;
		} else {
			rv = ig_metric_from_record(g->m, r);
		}
		if (rv == -ENOSPC) {
			uint64_t sup = 0;

			g->truncated++;
			if (ig_ratelimit_ok(&g->rl_truncated, &sup))
				ig_warn("record has more tags than a metric holds; the last ones were left out",
					"kind=%s probe=%s max_tags=%d truncated_total=%llu suppressed=%llu",
					r->kind ? r->kind : "?", r->probe, IG_MAX_TAGS,
					(unsigned long long)g->truncated, (unsigned long long)sup);
		}
		run(p, first, g->m);
	}
}

void ig_graph_tick(struct ig_graph *g, uint64_t now_ns)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->npipelines; i++) {
		struct pipeline *p = &g->pipelines[i];

		for (size_t j = 0; j < p->nstages; j++)
			if (p->stages[j].ops->tick)
				p->stages[j].ops->tick(p->stages[j].state, now_ns,
						       &p->stages[j].emit);
	}
	for (size_t i = 0; i < g->nbackends; i++)
		if (g->backends[i].state && g->backends[i].ops->tick)
			g->backends[i].ops->tick(g->backends[i].state, now_ns);
}

void ig_graph_flush(struct ig_graph *g)
{
	if (!g)
		return;
	/* Stages in order: what stage 0 flushes out is held by stage 1 until its
	 * own flush. Then the backends send everything, within one shared
	 * shutdown_timeout (spool.h). */
	ig_spool_flush_begin();
	for (size_t i = 0; i < g->npipelines; i++) {
		struct pipeline *p = &g->pipelines[i];

		for (size_t j = 0; j < p->nstages; j++)
			if (p->stages[j].state && p->stages[j].ops->flush)
				p->stages[j].ops->flush(p->stages[j].state, &p->stages[j].emit);
	}
	for (size_t i = 0; i < g->nbackends; i++)
		if (g->backends[i].state && g->backends[i].ops->flush)
			g->backends[i].ops->flush(g->backends[i].state);
	ig_spool_flush_end();
	g->flushed = true;
}

void ig_graph_sync(struct ig_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nbackends; i++)
		if (g->backends[i].state && g->backends[i].ops->sync)
			g->backends[i].ops->sync(g->backends[i].state);
}

void ig_graph_stats(const struct ig_graph *g, struct ig_graph_stats *st)
{
	if (!g) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = g->st;
}

void ig_graph_foreach_backend(struct ig_graph *g,
			      void (*fn)(void *ctx, const char *name, const char *type,
					 const struct ig_backend_stats *st),
			      void *ctx)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nbackends; i++) {
		struct backend_inst *bi = &g->backends[i];
		struct ig_backend_stats st = { 0 };

		if (!bi->state)
			continue;
		bi->ops->stats(bi->state, &st);
		fn(ctx, bi->name, bi->ops->type, &st);
	}
}

struct json_object *ig_graph_describe(const struct ig_graph *g)
{
	struct json_object *o = json_object_new_object();
	struct json_object *routes = json_object_new_object();
	struct json_object *pipes = json_object_new_array();
	struct json_object *backends = json_object_new_array();

	for (size_t i = 0; g && i < g->nroutes; i++) {
		struct json_object *names = json_object_new_array();

		for (size_t j = 0; j < g->routes[i].n; j++)
			json_object_array_add(names,
					      json_object_new_string(g->routes[i].p[j]->name));
		json_object_object_add(routes, g->routes[i].probe, names);
	}
	for (size_t i = 0; g && i < g->npipelines; i++) {
		const struct pipeline *p = &g->pipelines[i];
		struct json_object *po = json_object_new_object();
		struct json_object *stages = json_object_new_array();
		struct json_object *bnames = json_object_new_array();

		for (size_t j = 0; j < p->nstages; j++) {
			const struct stage_inst *s = &p->stages[j];
			struct json_object *so = json_object_new_object();

			json_object_object_add(so, "type", json_object_new_string(s->ops->type));
			json_object_object_add(so, "in", json_object_new_uint64(s->in));
			json_object_object_add(so, "out", json_object_new_uint64(s->out));
			json_object_object_add(so, "dropped", json_object_new_uint64(s->dropped));
			json_object_array_add(stages, so);
		}
		for (size_t j = 0; j < p->nbackends; j++)
			json_object_array_add(bnames, json_object_new_string(p->backends[j]->name));
		json_object_object_add(po, "name", json_object_new_string(p->name));
		json_object_object_add(po, "stages", stages);
		json_object_object_add(po, "backends", bnames);
		json_object_array_add(pipes, po);
	}
	for (size_t i = 0; g && i < g->nbackends; i++) {
		struct json_object *bo = json_object_new_object();

		json_object_object_add(bo, "name", json_object_new_string(g->backends[i].name));
		json_object_object_add(bo, "type",
				       json_object_new_string(g->backends[i].ops->type));
		json_object_array_add(backends, bo);
	}
	json_object_object_add(o, "routes", routes);
	json_object_object_add(o, "pipelines", pipes);
	json_object_object_add(o, "backends", backends);
	return o;
}

/* ---- documentation ---- */

void ig_graph_doc(FILE *out)
{
	char title[128];

	fputs("## Pipelines\n\n"
	      "Each probe names the pipelines its records feed (`probes.<probe>.pipelines`). A record\n"
	      "becomes one metric per pipeline: name = the record's kind (`file.open`), a counter of\n"
	      "1, tags = the record's identity, process and fields. The pipeline's stages run in\n"
	      "order (each may change, drop or hold the metric), then every backend listed\n"
	      "receives it.\n\n"
	      "```yaml\n"
	      "pipelines:\n"
	      "  live:\n"
	      "    stages:\n"
	      "      - {type: add_tags, tags: {cluster: prod}}\n"
	      "    backends: [console]\n"
	      "backends:\n"
	      "  console: {type: console, format: json}\n"
	      "```\n\n",
	      out);
	ig_cfg_doc(out, "Pipeline `<name>`", "Keys of one entry under `pipelines:`.",
		   pipeline_opts);
	fputs("## Stages\n\nEach stage is a mapping with a `type:` key and that type's options.\n\n",
	      out);
	for (size_t i = 0; ig_stage_table[i]; i++) {
		snprintf(title, sizeof(title), "Stage `%s`", ig_stage_table[i]->type);
		ig_cfg_doc(out, title, ig_stage_table[i]->summary, ig_stage_table[i]->opts);
	}
	fputs("## Backends\n\nEach entry under `backends:` is `<name>: {type: <type>, ...options}`;\n"
	      "pipelines refer to it by name. A backend no pipeline uses is not started.\n\n",
	      out);
	for (size_t i = 0; ig_backend_table[i]; i++) {
		snprintf(title, sizeof(title), "Backend `%s`", ig_backend_table[i]->type);
		ig_cfg_doc(out, title, ig_backend_table[i]->summary, ig_backend_table[i]->opts);
	}
}
