/* ig_mpack: a bounds-checked, allocation-free msgpack reader for hostile input.
 *
 * msgpack-c builds an object tree and, for an array or map header, allocates
 * room for every declared element before it knows the bytes exist: five bytes
 * (0xdd ffffffff) make it ask for ~100 GB. It also folds signed and unsigned
 * integers together, which the wire format uses to keep a field's type. So
 * ingrain encodes with msgpack-c's packer but decodes with this cursor: it
 * reads one header at a time straight from the buffer, checks every length
 * and count against the bytes that are left (an element takes at least one
 * byte), and returns strings as pointers into the buffer. Nothing is
 * allocated, so the cost of a message is bounded by its size.
 *
 * Integers keep the family of their format byte: positive fixint and uint
 * 8/16/32/64 are IG_MP_UINT; negative fixint and int 8/16/32/64 are
 * IG_MP_INT (even when the value is not negative).
 */
#ifndef IG_MPACK_H
#define IG_MPACK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Deepest nesting ig_mp_skip accepts. */
#define IG_MP_MAX_DEPTH 32

enum ig_mp_type {
	IG_MP_NIL,
	IG_MP_BOOL,
	IG_MP_UINT,
	IG_MP_INT,
	IG_MP_FLOAT,
	IG_MP_STR,
	IG_MP_BIN,
	IG_MP_ARRAY,
	IG_MP_MAP,
	IG_MP_EXT,
};

struct ig_mp_val {
	enum ig_mp_type type;
	union {
		bool b;
		uint64_t u;
		int64_t i;
		double f;
		uint32_t n; /* IG_MP_ARRAY: elements; IG_MP_MAP: key/value pairs */
		struct {
			const char *ptr; /* IG_MP_STR, IG_MP_BIN, IG_MP_EXT: into the buffer */
			uint32_t len;
			int8_t ext_type;
		} s;
	};
};

struct ig_mp {
	const uint8_t *start, *p, *end;
};

void ig_mp_init(struct ig_mp *m, const void *buf, size_t len);
/* Reads one value's header: scalars and strings whole, arrays and maps only
 * their count (the elements follow). 0, -ENODATA when the buffer ends inside
 * the value (or a count exceeds the bytes left), -EBADMSG on the byte 0xc1,
 * which msgpack never uses. The cursor does not move on error. */
int ig_mp_read(struct ig_mp *m, struct ig_mp_val *v);
/* ig_mp_read with the one-byte formats (fixints, nil, booleans), fixstr
 * and fixarray inline: the wire decoder's second pass reads ~20 values per
 * record, nearly all of these. Same results as ig_mp_read. */
static inline int ig_mp_read_fast(struct ig_mp *m, struct ig_mp_val *v)
{
	uint8_t b;

	if (m->p >= m->end)
		return -ENODATA;
	b = *m->p;
	if (b <= 0x7f) {
		v->type = IG_MP_UINT;
		v->u = b;
	} else if (b >= 0xe0) {
		v->type = IG_MP_INT;
		v->i = (int8_t)b;
	} else if (b == 0xc0) {
		v->type = IG_MP_NIL;
		v->u = 0;
	} else if ((b & 0xf0) == 0x90 && (size_t)(b & 0x0f) <= (size_t)(m->end - m->p - 1)) {
		v->type = IG_MP_ARRAY;
		v->u = 0;
		v->n = b & 0x0f;
	} else {
		return ig_mp_read(m, v);
	}
	m->p++;
	return 0;
}

/* Skips one whole value, containers included, nested at most max_depth
 * containers deep (capped at IG_MP_MAX_DEPTH). As ig_mp_read, plus -ELOOP
 * when nested deeper. The cursor is unspecified on error. */
int ig_mp_skip(struct ig_mp *m, unsigned max_depth);
/* Bytes consumed / left. */
size_t ig_mp_pos(const struct ig_mp *m);
size_t ig_mp_left(const struct ig_mp *m);
/* "a string", "an array", ... for error messages. */
const char *ig_mp_type_name(enum ig_mp_type t);
/* Whether an integer value (UINT, or INT >= 0) fits in [0, max]. */
bool ig_mp_uint_val(const struct ig_mp_val *v, uint64_t max, uint64_t *out);

/* --- writing ---
 *
 * A growable buffer and the msgpack formats the wire format's v2 encoder
 * uses, as inline functions: the encoder writes ~25 values per record, and
 * msgpack-c's packer pays an indirect call per value (its sbuffer write
 * callback). Each writer picks the smallest format of its family: unsigned
 * values use positive fixint / uint 8..64, signed ones negative fixint /
 * int 8..64 even when non-negative (see docs/wire-format.md). On allocation
 * failure the buffer keeps its contents and `failed` is set; callers check it
 * once after a sequence of writes. */
struct ig_mpw {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

void ig_mpw_init(struct ig_mpw *w);
void ig_mpw_free(struct ig_mpw *w);
/* Out of line: grows the buffer so that n more bytes fit. false on ENOMEM. */
bool ig_mpw_grow(struct ig_mpw *w, size_t n);

static inline uint8_t *ig_mpw_room(struct ig_mpw *w, size_t n)
{
	if (w->cap - w->len < n && !ig_mpw_grow(w, n)) {
		w->failed = true;
		return NULL;
	}
	return w->buf + w->len;
}

static inline void ig_mpw_be(uint8_t *p, uint64_t x, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
}

static inline void ig_mpw_uint(struct ig_mpw *w, uint64_t x)
{
	uint8_t *p = ig_mpw_room(w, 9);

	if (!p)
		return;
	if (x <= 0x7f) {
		p[0] = (uint8_t)x;
		w->len += 1;
	} else if (x <= 0xff) {
		p[0] = 0xcc, p[1] = (uint8_t)x;
		w->len += 2;
	} else if (x <= 0xffff) {
		p[0] = 0xcd, ig_mpw_be(p + 1, x, 2);
		w->len += 3;
	} else if (x <= 0xffffffffu) {
		p[0] = 0xce, ig_mpw_be(p + 1, x, 4);
		w->len += 5;
	} else {
		p[0] = 0xcf, ig_mpw_be(p + 1, x, 8);
		w->len += 9;
	}
}

static inline void ig_mpw_int(struct ig_mpw *w, int64_t x)
{
	uint8_t *p = ig_mpw_room(w, 9);

	if (!p)
		return;
	if (x >= -32 && x < 0) {
		p[0] = (uint8_t)(int8_t)x;
		w->len += 1;
	} else if (x >= INT8_MIN && x <= INT8_MAX) {
		p[0] = 0xd0, p[1] = (uint8_t)(int8_t)x;
		w->len += 2;
	} else if (x >= INT16_MIN && x <= INT16_MAX) {
		p[0] = 0xd1, ig_mpw_be(p + 1, (uint64_t)x, 2);
		w->len += 3;
	} else if (x >= INT32_MIN && x <= INT32_MAX) {
		p[0] = 0xd2, ig_mpw_be(p + 1, (uint64_t)x, 4);
		w->len += 5;
	} else {
		p[0] = 0xd3, ig_mpw_be(p + 1, (uint64_t)x, 8);
		w->len += 9;
	}
}

/* Array/map/str headers: fix, 16 and 32-bit forms. */
static inline void ig_mpw_hdr(struct ig_mpw *w, uint32_t n, uint8_t fix, uint32_t fixmax,
			      uint8_t b16)
{
	uint8_t *p = ig_mpw_room(w, 5);

	if (!p)
		return;
	if (n <= fixmax) {
		p[0] = (uint8_t)(fix | n);
		w->len += 1;
	} else if (n <= 0xffff) {
		p[0] = b16, ig_mpw_be(p + 1, n, 2);
		w->len += 3;
	} else {
		p[0] = (uint8_t)(b16 + 1), ig_mpw_be(p + 1, n, 4);
		w->len += 5;
	}
}

static inline void ig_mpw_array(struct ig_mpw *w, uint32_t n)
{
	ig_mpw_hdr(w, n, 0x90, 15, 0xdc);
}

static inline void ig_mpw_map(struct ig_mpw *w, uint32_t n)
{
	ig_mpw_hdr(w, n, 0x80, 15, 0xde);
}

static inline void ig_mpw_nil(struct ig_mpw *w)
{
	uint8_t *p = ig_mpw_room(w, 1);

	if (p)
		p[0] = 0xc0, w->len++;
}

static inline void ig_mpw_raw(struct ig_mpw *w, const void *s, size_t len)
{
	uint8_t *p = ig_mpw_room(w, len);

	if (p && len) {
		memcpy(p, s, len);
		w->len += len;
	}
}

static inline void ig_mpw_str(struct ig_mpw *w, const char *s, uint32_t len)
{
	uint8_t *p = ig_mpw_room(w, 5 + (size_t)len);

	if (!p)
		return;
	if (len <= 31) {
		p[0] = (uint8_t)(0xa0 | len);
		w->len += 1;
	} else if (len <= 0xff) {
		p[0] = 0xd9, p[1] = (uint8_t)len;
		w->len += 2;
	} else if (len <= 0xffff) {
		p[0] = 0xda, ig_mpw_be(p + 1, len, 2);
		w->len += 3;
	} else {
		p[0] = 0xdb, ig_mpw_be(p + 1, len, 4);
		w->len += 5;
	}
	if (len)
		memcpy(w->buf + w->len, s, len);
	w->len += len;
}

#endif
