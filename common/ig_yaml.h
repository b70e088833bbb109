/* ig_yaml: a YAML document as a small tree that remembers where each node
 * came from (file, line, column; 1-based), so configuration errors can name
 * file:line:column. Built with libyaml's parser API. Anchors/aliases are
 * resolved by copying; documents with more than one YAML document, or a
 * non-mapping root, are rejected by the loader with a positioned error. */
#ifndef IG_YAML_H
#define IG_YAML_H

#include <stddef.h>

#include "ig_err.h"

enum ig_ynode_type { IG_Y_SCALAR, IG_Y_SEQ, IG_Y_MAP };

struct ig_ynode;

struct ig_ypair {
	struct ig_ynode *key; /* always a scalar */
	struct ig_ynode *val;
};

struct ig_ynode {
	enum ig_ynode_type type;
	const char *file; /* owned by the document */
	unsigned line, col;
	char *scalar; /* IG_Y_SCALAR: the value ("" for empty/null) */
	int plain_null; /* scalar was an unquoted empty / ~ / null */
	size_t n; /* SEQ: items, MAP: pairs */
	struct ig_ynode **items;
	struct ig_ypair *pairs;
};

struct ig_ydoc {
	char *file;
	struct ig_ynode *root; /* a mapping */
};

/* 0, or -EINVAL/-ENOENT/-ENOMEM with a "file:line:col: ..." message in err. */
int ig_ydoc_load_file(const char *path, struct ig_ydoc **out, struct ig_err *err);
int ig_ydoc_load_string(const char *name, const char *text, size_t len, struct ig_ydoc **out,
			struct ig_err *err);
void ig_ydoc_free(struct ig_ydoc *d);

/* The value for key in a mapping, NULL if absent (or map is not a mapping). */
const struct ig_ynode *ig_ymap_get(const struct ig_ynode *map, const char *key);
const char *ig_ynode_type_name(enum ig_ynode_type t);

#endif
