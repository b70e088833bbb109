/* ig_strpool: bytes copied into 64 KiB chunks that are all released at once.
 *
 * Per-interval tables (the StatsD backend's series, a rollup window) keep
 * their keys here: a copy is a memcpy into the current chunk, and the end of
 * the interval rewinds the pool (ig_strpool_reset) without freeing, so a
 * steady state allocates nothing. Pointers stay valid until the next reset. */
#ifndef IG_STRPOOL_H
#define IG_STRPOOL_H

#include <stddef.h>

struct ig_strpool_chunk;

struct ig_strpool {
	struct ig_strpool_chunk *chunks, *cur;
};

/* A zeroed struct is an empty pool. */
/* Copies n bytes (not NUL-terminated unless they include one); NULL on ENOMEM. */
const char *ig_strpool_copy(struct ig_strpool *p, const void *src, size_t n);
/* Forgets every copy, keeping the chunks for reuse. */
void ig_strpool_reset(struct ig_strpool *p);
void ig_strpool_free(struct ig_strpool *p);

#endif
