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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
