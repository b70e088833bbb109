/* reasm: see reasm.h.
 *
 * Streams live in a chained hash keyed by (cookie, dir) and on an LRU list
 * (most recent first). A stream's contiguous bytes sit in one buffer whose
 * first byte has sequence number `base`; `end` = base + len is the next
 * byte expected. Waiting segments (ahead of end) are a list sorted by
 * sequence number. Sequence arithmetic is modulo 2^32 (int32 differences),
 * which is exact while a stream holds less than 2 GiB.
 */
#include "reasm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct seg {
	struct seg *next;
	uint32_t seq;
	uint32_t len;
	uint8_t data[];
};

struct ig_reasm_stream {
	struct ig_reasm_stream *hnext; /* hash chain */
	struct ig_reasm_stream *prev, *next; /* LRU */
	uint64_t cookie;
	uint8_t dir;
	bool started, gap;
	uint32_t end; /* sequence number of the byte after buf[len-1] */
	uint8_t *buf;
	size_t len, cap;
	struct seg *wait;
	size_t wait_bytes;
	uint64_t last_ns;
	unsigned char user[]; /* opts.user_size */
};

struct ig_reasm {
	struct ig_reasm_opts o;
	ig_reasm_drop_fn drop;
	void *ctx;
	struct ig_reasm_stream **buckets;
	size_t nbuckets; /* a power of two */
	struct ig_reasm_stream *lru_head, *lru_tail;
	struct ig_reasm_stats st;
};

static size_t bucket_of(const struct ig_reasm *r, uint64_t cookie, uint8_t dir)
{
	uint64_t h = (cookie ^ ((uint64_t)dir << 63)) * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 32) & (r->nbuckets - 1);
}

struct ig_reasm *ig_reasm_new(const struct ig_reasm_opts *o, ig_reasm_drop_fn drop, void *ctx)
{
	struct ig_reasm *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->o = *o;
	if (!r->o.max_flows)
		r->o.max_flows = 4096;
	if (!r->o.max_flow_bytes)
		r->o.max_flow_bytes = 8192;
	if (!r->o.max_age_ns)
		r->o.max_age_ns = 30ULL * 1000000000ULL;
	r->drop = drop;
	r->ctx = ctx;
	r->nbuckets = 64;
	while (r->nbuckets < r->o.max_flows)
		r->nbuckets <<= 1;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	if (!r->buckets) {
		free(r);
		return NULL;
	}
	return r;
}

static void lru_unlink(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		r->lru_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		r->lru_tail = s->prev;
	s->prev = s->next = NULL;
}

static void lru_push(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	s->next = r->lru_head;
	s->prev = NULL;
	if (r->lru_head)
		r->lru_head->prev = s;
	r->lru_head = s;
	if (!r->lru_tail)
		r->lru_tail = s;
}

static void stream_free(struct ig_reasm_stream *s)
{
	struct seg *g = s->wait;

	while (g) {
		struct seg *n = g->next;
		free(g);
		g = n;
	}
	free(s->buf);
	free(s);
}

static void unlink_stream(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	struct ig_reasm_stream **pp = &r->buckets[bucket_of(r, s->cookie, s->dir)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
	lru_unlink(r, s);
	r->st.live--;
}

void ig_reasm_close(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	if (!s)
		return;
	unlink_stream(r, s);
	stream_free(s);
}

static void drop_stream(struct ig_reasm *r, struct ig_reasm_stream *s, bool evicted)
{
	size_t held = ig_reasm_held(s);

	if (evicted) {
		r->st.evicted++;
		r->st.evicted_bytes += held;
	} else {
		r->st.aged++;
		r->st.aged_bytes += held;
	}
	if (r->drop)
		r->drop(r->ctx, s, evicted);
	ig_reasm_close(r, s);
}

void ig_reasm_free(struct ig_reasm *r)
{
	if (!r)
		return;
	while (r->lru_head)
		ig_reasm_close(r, r->lru_head);
	free(r->buckets);
	free(r);
}

struct ig_reasm_stream *ig_reasm_get(struct ig_reasm *r, uint64_t cookie, uint8_t dir,
				     uint64_t now_ns, bool create)
{
	size_t b = bucket_of(r, cookie, dir);
	struct ig_reasm_stream *s;

	for (s = r->buckets[b]; s; s = s->hnext)
		if (s->cookie == cookie && s->dir == dir) {
			s->last_ns = now_ns;
			lru_unlink(r, s);
			lru_push(r, s);
			return s;
		}
	if (!create)
		return NULL;
	if (r->st.live >= r->o.max_flows && r->lru_tail)
		drop_stream(r, r->lru_tail, true);
	s = calloc(1, sizeof(*s) + r->o.user_size);
	if (!s)
		return NULL;
	s->cookie = cookie;
	s->dir = dir;
	s->last_ns = now_ns;
	s->hnext = r->buckets[b];
	r->buckets[b] = s;
	lru_push(r, s);
	r->st.live++;
	r->st.streams++;
	return s;
}

static int append(struct ig_reasm *r, struct ig_reasm_stream *s, const uint8_t *d, size_t n)
{
	if (n == 0)
		return 0;
	if (s->len + s->wait_bytes + n > r->o.max_flow_bytes) {
		r->st.overflow++;
		r->st.overflow_bytes += n;
		return -ENOSPC;
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 512;
		while (cap < s->len + n)
			cap *= 2;
		uint8_t *nb = realloc(s->buf, cap);
		if (!nb) {
			r->st.overflow++;
			r->st.overflow_bytes += n;
			return -ENOSPC;
		}
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, d, n);
	s->len += n;
	s->end += (uint32_t)n;
	return 0;
}

/* Moves waiting segments that now touch the stream's end into the buffer. */
static void pull_waiting(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	while (s->wait) {
		struct seg *g = s->wait;
		int32_t off = (int32_t)(s->end - g->seq); /* bytes of g already present */
		if (off < 0)
			return; /* still a hole */
		s->wait = g->next;
		s->wait_bytes -= g->len;
		if ((uint32_t)off < g->len) {
			if (off > 0)
				r->st.dup_bytes += (uint64_t)off;
			append(r, s, g->data + off, g->len - (uint32_t)off);
		} else {
			r->st.dup_bytes += g->len;
		}
		free(g);
	}
}

/* Gives up the hole before the first waiting segment. */
static void skip_hole(struct ig_reasm *r, struct ig_reasm_stream *s)
{
	if (!s->wait)
		return;
	/* The unconsumed bytes before the hole can never be completed: they
	 * go with it, and the reader is told of the gap. */
	r->st.gap_bytes += (uint32_t)(s->wait->seq - s->end) + s->len;
	s->len = 0;
	s->end = s->wait->seq;
	s->gap = true;
	pull_waiting(r, s);
}

int ig_reasm_add(struct ig_reasm *r, struct ig_reasm_stream *s, uint32_t seq, const uint8_t *data,
		 size_t len, uint64_t now_ns)
{
	s->last_ns = now_ns;
	if (len == 0)
		return 0;
	if (len > r->o.max_flow_bytes) {
		r->st.overflow++;
		r->st.overflow_bytes += len;
		return -ENOSPC;
	}
	if (!s->started) {
		s->started = true;
		s->end = seq;
	}
	int32_t rel = (int32_t)(seq - s->end);
	if (rel <= 0) {
		size_t skip = (size_t)(-(int64_t)rel);
		if (skip >= len) {
			r->st.dup_bytes += len;
			return 0;
		}
		r->st.dup_bytes += skip;
		int rv = append(r, s, data + skip, len - skip);
		pull_waiting(r, s);
		return rv;
	}
	/* Ahead of the stream: wait for the hole to fill. */
	if (s->len + s->wait_bytes + len > r->o.max_flow_bytes) {
		if (s->wait) {
			skip_hole(r, s);
			return ig_reasm_add(r, s, seq, data, len, now_ns);
		}
		/* Only this segment waits: it is what comes after the hole. */
		r->st.gap_bytes += (uint32_t)rel + s->len;
		s->len = 0;
		s->end = seq;
		s->gap = true;
		return ig_reasm_add(r, s, seq, data, len, now_ns);
	}
	struct seg *g = malloc(sizeof(*g) + len);
	if (!g) {
		r->st.overflow++;
		r->st.overflow_bytes += len;
		return -ENOSPC;
	}
	g->seq = seq;
	g->len = (uint32_t)len;
	memcpy(g->data, data, len);
	struct seg **pp = &s->wait;
	while (*pp && (int32_t)((*pp)->seq - seq) <= 0)
		pp = &(*pp)->next;
	g->next = *pp;
	*pp = g;
	s->wait_bytes += len;
	return 0;
}

const uint8_t *ig_reasm_data(const struct ig_reasm_stream *s, size_t *len)
{
	*len = s->len;
	return s->buf;
}

void ig_reasm_consume(struct ig_reasm_stream *s, size_t n)
{
	if (n >= s->len) {
		s->len = 0;
		return;
	}
	memmove(s->buf, s->buf + n, s->len - n);
	s->len -= n;
}

bool ig_reasm_take_gap(struct ig_reasm_stream *s)
{
	bool g = s->gap;

	s->gap = false;
	return g;
}

void *ig_reasm_user(struct ig_reasm_stream *s)
{
	return s->user;
}

uint64_t ig_reasm_cookie(const struct ig_reasm_stream *s)
{
	return s->cookie;
}

uint8_t ig_reasm_dir(const struct ig_reasm_stream *s)
{
	return s->dir;
}

size_t ig_reasm_held(const struct ig_reasm_stream *s)
{
	return s->len + s->wait_bytes;
}

void ig_reasm_expire(struct ig_reasm *r, uint64_t now_ns)
{
	while (r->lru_tail && now_ns - r->lru_tail->last_ns > r->o.max_age_ns)
		drop_stream(r, r->lru_tail, false);
}

void ig_reasm_stats(const struct ig_reasm *r, struct ig_reasm_stats *out)
{
	*out = r->st;
}
