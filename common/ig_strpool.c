/* ig_strpool: see ig_strpool.h. */
#include "ig_strpool.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN (64 * 1024)

struct ig_strpool_chunk {
	struct ig_strpool_chunk *next;
	size_t used, cap;
	char data[];
};

const char *ig_strpool_copy(struct ig_strpool *p, const void *src, size_t n)
{
	struct ig_strpool_chunk *c = p->cur;

	while (c && c->cap - c->used < n)
		c = c->next;
	if (!c) {
		size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = NULL;
		if (p->cur) {
			c->next = p->cur->next;
			p->cur->next = c;
		} else {
			p->chunks = c;
		}
	}
	p->cur = c;
	char *d = c->data + c->used;
	memcpy(d, src, n);
	c->used += n;
	return d;
}

void ig_strpool_reset(struct ig_strpool *p)
{
	for (struct ig_strpool_chunk *c = p->chunks; c; c = c->next)
		c->used = 0;
	p->cur = p->chunks;
}

void ig_strpool_free(struct ig_strpool *p)
{
	while (p->chunks) {
		struct ig_strpool_chunk *n = p->chunks->next;

		free(p->chunks);
		p->chunks = n;
	}
	p->cur = NULL;
}
