/* ig_yaml: libyaml's event stream folded into a positioned node tree.
 *
 * Why events and not libyaml's document API: the document API loses nothing
 * we need, but it resolves aliases by sharing nodes and offers no hook to
 * reject duplicate keys or to bound alias expansion. Walking the events
 * ourselves lets every check name file:line:col, and keeps the tree simple
 * (each node owned by exactly one parent, freed recursively).
 *
 * How it works: build_node() consumes one node's events recursively (depth
 * bounded by IG_Y_MAX_DEPTH so hostile input cannot exhaust the stack).
 * Anchored nodes are remembered once complete; an alias is replaced by a deep
 * copy of its anchor, and every node created, copies included, counts
 * against IG_Y_MAX_NODES, which defeats "billion laughs" documents. libyaml
 * marks are 0-based; nodes store 1-based line and column.
 */
#include "ig_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define IG_Y_MAX_FILE (4u << 20) /* 4 MiB */
#define IG_Y_MAX_NODES 10000
#define IG_Y_MAX_DEPTH 64

struct anchor {
	char *name;
	const struct ig_ynode *node;
};

struct builder {
	yaml_parser_t parser;
	const char *text; /* for positions of reader errors */
	size_t len;
	const char *file;
	struct ig_err *err;
	size_t nodes;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	int failed; /* an error was reported: stop */
};

const char *ig_ynode_type_name(enum ig_ynode_type t)
{
	switch (t) {
	case IG_Y_SCALAR:
		return "a scalar";
	case IG_Y_SEQ:
		return "a sequence";
	case IG_Y_MAP:
		return "a mapping";
	}
	return "an unknown node";
}

static void node_free(struct ig_ynode *n)
{
	size_t i;

	if (!n)
		return;
	free(n->scalar);
	if (n->type == IG_Y_SEQ) {
		for (i = 0; i < n->n; i++)
			node_free(n->items[i]);
	} else if (n->type == IG_Y_MAP) {
		for (i = 0; i < n->n; i++) {
			node_free(n->pairs[i].key);
			node_free(n->pairs[i].val);
		}
	}
	free(n->items);
	free(n->pairs);
	free(n);
}

void ig_ydoc_free(struct ig_ydoc *d)
{
	if (!d)
		return;
	node_free(d->root);
	free(d->file);
	free(d);
}

/* Reports a problem at a libyaml mark. */
static void fail_at(struct builder *b, yaml_mark_t m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_at(struct builder *b, yaml_mark_t m, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (b->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ig_err_add(b->err, "%s:%zu:%zu: %s", b->file, m.line + 1, m.column + 1, msg);
	b->failed = 1;
}

static void fail_oom(struct builder *b)
{
	if (b->failed)
		return;
	ig_err_add(b->err, "%s: out of memory while reading the configuration", b->file);
	b->failed = -ENOMEM;
}

/* Line and column (1-based) of a byte offset in the input. */
static void offset_pos(const struct builder *b, size_t off, size_t *line, size_t *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < b->len; i++) {
		if (b->text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static void fail_syntax(struct builder *b)
{
	const yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "malformed document";
	size_t line, col;

	if (b->failed)
		return;
	if (p->error == YAML_MEMORY_ERROR) {
		fail_oom(b);
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		offset_pos(b, p->problem_offset, &line, &col);
		ig_err_add(b->err,
			   "%s:%zu:%zu: YAML syntax error: %s (the file must be UTF-8 text)",
			   b->file, line, col, problem);
	} else if (p->context) {
		ig_err_add(b->err, "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu)", b->file,
			   p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
			   p->context, p->context_mark.line + 1);
	} else {
		ig_err_add(b->err, "%s:%zu:%zu: YAML syntax error: %s", b->file,
			   p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
	}
	b->failed = 1;
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&b->parser, ev)) {
		fail_syntax(b);
		return -1;
	}
	return 0;
}

static struct ig_ynode *node_new(struct builder *b, enum ig_ynode_type t, yaml_mark_t m)
{
	struct ig_ynode *n;

	if (++b->nodes > IG_Y_MAX_NODES) {
		fail_at(b, m,
			"document too large: more than 10000 nodes (after expanding aliases); "
			"simplify the configuration");
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		fail_oom(b);
		return NULL;
	}
	n->type = t;
	n->file = b->file;
	n->line = (unsigned)m.line + 1;
	n->col = (unsigned)m.column + 1;
	return n;
}

static int remember_anchor(struct builder *b, const yaml_char_t *name, const struct ig_ynode *n)
{
	size_t i;

	if (!name)
		return 0;
	for (i = 0; i < b->n_anchors; i++) {
		if (!strcmp(b->anchors[i].name, (const char *)name)) {
			b->anchors[i].node = n; /* YAML: a redefinition wins from here on */
			return 0;
		}
	}
	if (b->n_anchors == b->cap_anchors) {
		size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 8;
		struct anchor *a = realloc(b->anchors, cap * sizeof(*a));

		if (!a)
			goto oom;
		b->anchors = a;
		b->cap_anchors = cap;
	}
	b->anchors[b->n_anchors].name = strdup((const char *)name);
	if (!b->anchors[b->n_anchors].name)
		goto oom;
	b->anchors[b->n_anchors++].node = n;
	return 0;
oom:
	fail_oom(b);
	return -1;
}

static struct ig_ynode *node_copy(struct builder *b, const struct ig_ynode *src, yaml_mark_t m)
{
	struct ig_ynode *n = node_new(b, src->type, m);
	size_t i;

	if (!n)
		return NULL;
	/* Copies keep the anchor's positions: that is where the text is. */
	n->line = src->line;
	n->col = src->col;
	n->plain_null = src->plain_null;
	if (src->scalar && !(n->scalar = strdup(src->scalar)))
		goto oom;
	if (src->type == IG_Y_SEQ && src->n) {
		n->items = calloc(src->n, sizeof(*n->items));
		if (!n->items)
			goto oom;
		for (i = 0; i < src->n; i++) {
			n->items[i] = node_copy(b, src->items[i], m);
			if (!n->items[i])
				goto fail;
			n->n++;
		}
	} else if (src->type == IG_Y_MAP && src->n) {
		n->pairs = calloc(src->n, sizeof(*n->pairs));
		if (!n->pairs)
			goto oom;
		for (i = 0; i < src->n; i++) {
			n->pairs[i].key = node_copy(b, src->pairs[i].key, m);
			if (!n->pairs[i].key)
				goto fail;
			n->pairs[i].val = node_copy(b, src->pairs[i].val, m);
			n->n++; /* key set: node_free handles a NULL val */
			if (!n->pairs[i].val)
				goto fail;
		}
	}
	return n;
oom:
	fail_oom(b);
fail:
	node_free(n);
	return NULL;
}

static struct ig_ynode *resolve_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	size_t i;

	for (i = b->n_anchors; i-- > 0;)
		if (!strcmp(b->anchors[i].name, name))
			return node_copy(b, b->anchors[i].node, ev->start_mark);
	fail_at(b, ev->start_mark,
		"unknown alias '*%.100s': define the anchor ('&name') on a complete node before "
		"using it",
		name);
	return NULL;
}

static int is_plain_null(const char *v, size_t len)
{
	return len == 0 || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
	       !strcmp(v, "NULL");
}

static struct ig_ynode *build_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ig_ynode *n;

	if (memchr(v, '\0', len)) {
		fail_at(b, ev->start_mark, "a string contains a NUL character ('\\0')");
		return NULL;
	}
	n = node_new(b, IG_Y_SCALAR, ev->start_mark);
	if (!n)
		return NULL;
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_plain_null(v, len)) {
		n->plain_null = 1;
		n->scalar = strdup("");
	} else {
		n->scalar = strndup(v, len);
	}
	if (!n->scalar) {
		node_free(n);
		fail_oom(b);
		return NULL;
	}
	return n;
}

static struct ig_ynode *build_node(struct builder *b, yaml_event_t *ev, int depth);

static int grow(struct builder *b, void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 4;
	p = realloc(*arr, c * elem);
	if (!p) {
		fail_oom(b);
		return -1;
	}
	*arr = p;
	*cap = c;
	return 0;
}

static struct ig_ynode *build_seq(struct builder *b, const yaml_event_t *start, int depth)
{
	struct ig_ynode *n = node_new(b, IG_Y_SEQ, start->start_mark);
	size_t cap = 0;
	yaml_event_t ev;

	if (!n)
		return NULL;
	for (;;) {
		struct ig_ynode *item;

		if (next_event(b, &ev) < 0)
			goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return n;
		}
		item = build_node(b, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!item)
			goto fail;
		if (grow(b, (void **)&n->items, &cap, n->n, sizeof(*n->items)) < 0) {
			node_free(item);
			goto fail;
		}
		n->items[n->n++] = item;
	}
fail:
	node_free(n);
	return NULL;
}

static struct ig_ynode *build_map(struct builder *b, const yaml_event_t *start, int depth)
{
	struct ig_ynode *n = node_new(b, IG_Y_MAP, start->start_mark);
	size_t cap = 0, i;
	yaml_event_t ev;

	if (!n)
		return NULL;
	for (;;) {
		struct ig_ynode *key, *val;
		yaml_mark_t key_mark;

		if (next_event(b, &ev) < 0)
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return n;
		}
		key_mark = ev.start_mark;
		key = build_node(b, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!key)
			goto fail;
		if (key->type != IG_Y_SCALAR) {
			fail_at(b, key_mark, "a mapping key must be a plain string, not %s",
				ig_ynode_type_name(key->type));
			node_free(key);
			goto fail;
		}
		for (i = 0; i < n->n; i++) {
			if (!strcmp(n->pairs[i].key->scalar, key->scalar)) {
				fail_at(b, key_mark,
					"duplicate key '%.200s' (first defined at line %u, column %u); "
					"remove one of them",
					key->scalar, n->pairs[i].key->line, n->pairs[i].key->col);
				node_free(key);
				goto fail;
			}
		}
		if (next_event(b, &ev) < 0) {
			node_free(key);
			goto fail;
		}
		val = build_node(b, &ev, depth + 1);
		yaml_event_delete(&ev);
		if (!val) {
			node_free(key);
			goto fail;
		}
		if (grow(b, (void **)&n->pairs, &cap, n->n, sizeof(*n->pairs)) < 0) {
			node_free(key);
			node_free(val);
			goto fail;
		}
		n->pairs[n->n].key = key;
		n->pairs[n->n++].val = val;
	}
fail:
	node_free(n);
	return NULL;
}

/* Builds the node that starts with *ev (which the caller deletes). */
static struct ig_ynode *build_node(struct builder *b, yaml_event_t *ev, int depth)
{
	struct ig_ynode *n = NULL;
	const yaml_char_t *anchor = NULL;

	if (depth > IG_Y_MAX_DEPTH) {
		fail_at(b, ev->start_mark,
			"nesting deeper than %d levels; flatten the configuration", IG_Y_MAX_DEPTH);
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		n = build_scalar(b, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		n = build_seq(b, ev, depth);
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		n = build_map(b, ev, depth);
		break;
	case YAML_ALIAS_EVENT:
		return resolve_alias(b, ev);
	default:
		fail_at(b, ev->start_mark, "unexpected YAML event");
		return NULL;
	}
	if (n && remember_anchor(b, anchor, n) < 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

/* Expects one of the stream/document framing events. */
static int expect(struct builder *b, yaml_event_type_t t)
{
	yaml_event_t ev;
	int ok;

	if (next_event(b, &ev) < 0)
		return -1;
	ok = ev.type == t;
	if (!ok && t == YAML_STREAM_END_EVENT)
		fail_at(b, ev.start_mark,
			"more than one YAML document ('---'); put the whole configuration in one "
			"document");
	else if (!ok)
		fail_at(b, ev.start_mark, "unexpected YAML event");
	yaml_event_delete(&ev);
	return ok ? 0 : -1;
}

static int parse_doc(struct builder *b, struct ig_ynode **root)
{
	yaml_event_t ev;
	struct ig_ynode *n;

	if (expect(b, YAML_STREAM_START_EVENT) < 0)
		return -1;
	if (next_event(b, &ev) < 0)
		return -1;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		ig_err_add(b->err,
			   "%s:1:1: the configuration is empty; it must be a YAML mapping such as "
			   "'agent: {...}' (see --print-default-config)",
			   b->file);
		b->failed = 1;
		return -1;
	}
	yaml_event_delete(&ev); /* DOCUMENT_START */
	if (next_event(b, &ev) < 0)
		return -1;
	n = build_node(b, &ev, 0);
	yaml_event_delete(&ev);
	if (!n)
		return -1;
	if (n->type != IG_Y_MAP) {
		if (n->type == IG_Y_SCALAR && n->plain_null)
			ig_err_add(
				b->err,
				"%s:%u:%u: the configuration is empty; it must be a YAML mapping "
				"such as 'agent: {...}' (see --print-default-config)",
				b->file, n->line, n->col);
		else
			ig_err_add(b->err,
				   "%s:%u:%u: the configuration must be a YAML mapping of sections "
				   "(agent:, probes:, ...), not %s",
				   b->file, n->line, n->col, ig_ynode_type_name(n->type));
		b->failed = 1;
		node_free(n);
		return -1;
	}
	if (expect(b, YAML_DOCUMENT_END_EVENT) < 0 || expect(b, YAML_STREAM_END_EVENT) < 0) {
		node_free(n);
		return -1;
	}
	*root = n;
	return 0;
}

int ig_ydoc_load_string(const char *name, const char *text, size_t len, struct ig_ydoc **out,
			struct ig_err *err)
{
	struct builder b = { .text = text, .len = len, .err = err };
	struct ig_ydoc *d;
	size_t i;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d || !(d->file = strdup(name ? name : "<string>"))) {
		free(d);
		ig_err_add(err, "%s: out of memory while reading the configuration",
			   name ? name : "<string>");
		return -ENOMEM;
	}
	b.file = d->file;
	if (len > IG_Y_MAX_FILE) {
		ig_err_add(err, "%s: configuration is %zu bytes; the limit is 4 MiB", d->file, len);
		ig_ydoc_free(d);
		return -EINVAL;
	}
	if (!yaml_parser_initialize(&b.parser)) {
		ig_err_add(err, "%s: out of memory while reading the configuration", d->file);
		ig_ydoc_free(d);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&b.parser, (const unsigned char *)text, len);
	rc = parse_doc(&b, &d->root);
	yaml_parser_delete(&b.parser);
	for (i = 0; i < b.n_anchors; i++)
		free(b.anchors[i].name);
	free(b.anchors);
	if (rc < 0) {
		ig_ydoc_free(d);
		return b.failed == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	*out = d;
	return 0;
}

int ig_ydoc_load_file(const char *path, struct ig_ydoc **out, struct ig_err *err)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t r;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		ig_err_add(err, "%s: cannot open the configuration file: %s%s", path, strerror(-rc),
			   rc == -ENOENT ? " (check the path given to --config)" : "");
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ig_err_add(err, "%s: not a regular file; --config needs a YAML file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > (off_t)IG_Y_MAX_FILE) {
		ig_err_add(err, "%s: configuration is %lld bytes; the limit is 4 MiB", path,
			   (long long)st.st_size);
		close(fd);
		return -EINVAL;
	}
	/* One spare byte detects a file that grew past its stat size. */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		ig_err_add(err, "%s: out of memory while reading the configuration", path);
		return -ENOMEM;
	}
	while (got <= (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			ig_err_add(err, "%s: cannot read the configuration file: %s", path,
				   strerror(errno));
			free(buf);
			close(fd);
			return rc;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got > (size_t)st.st_size) {
		ig_err_add(err, "%s: the file changed while being read; try again", path);
		free(buf);
		return -EINVAL;
	}
	rc = ig_ydoc_load_string(path, buf, got, out, err);
	free(buf);
	return rc;
}

const struct ig_ynode *ig_ymap_get(const struct ig_ynode *map, const char *key)
{
	size_t i;

	if (!map || map->type != IG_Y_MAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (!strcmp(map->pairs[i].key->scalar, key))
			return map->pairs[i].val;
	return NULL;
}
