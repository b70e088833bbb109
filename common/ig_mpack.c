/* ig_mpack: see ig_mpack.h. The format is the msgpack specification
 * (https://github.com/msgpack/msgpack/blob/master/spec.md); multi-byte
 * numbers are big-endian. */
#include "ig_mpack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ig_mp_init(struct ig_mp *m, const void *buf, size_t len)
{
	m->start = buf;
	m->p = buf;
	m->end = m->p + len;
}

size_t ig_mp_pos(const struct ig_mp *m)
{
	return (size_t)(m->p - m->start);
}

size_t ig_mp_left(const struct ig_mp *m)
{
	return (size_t)(m->end - m->p);
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t x = 0;

	for (unsigned i = 0; i < n; i++)
		x = (x << 8) | p[i];
	return x;
}

static int64_t be_signed(const uint8_t *p, unsigned n)
{
	uint64_t x = be(p, n);
	unsigned shift = 64 - 8 * n;

	/* Sign-extend without shifting into the sign bit of a signed type. */
	if (shift && (x >> (8 * n - 1)))
		x |= ~0ULL << (8 * n);
	return (int64_t)x;
}

/* A header of 1 + nlen bytes, then a payload of the length it announces. */
static int read_sized(const uint8_t *p, size_t left, unsigned nlen, unsigned extra,
		      struct ig_mp_val *v, size_t *used)
{
	uint64_t len;

	if (left < 1 + (size_t)nlen + extra)
		return -ENODATA;
	len = nlen ? be(p + 1, nlen) : 0;
	v->s.len = (uint32_t)len;
	if (len > left - 1 - nlen - extra)
		return -ENODATA;
	if (extra)
		v->s.ext_type = (int8_t)p[1 + nlen];
	v->s.ptr = (const char *)p + 1 + nlen + extra;
	*used = 1 + nlen + extra + len;
	return 0;
}

static int read_count(const uint8_t *p, size_t left, unsigned nlen, uint64_t n, int per,
		      struct ig_mp_val *v, size_t *used)
{
	if (left < 1 + (size_t)nlen)
		return -ENODATA;
	if (nlen)
		n = be(p + 1, nlen);
	/* Every element takes at least one byte: a count the rest of the
	 * buffer cannot hold is a truncation, caught before anyone loops on it. */
	if (n * (uint64_t)per > left - 1 - nlen)
		return -ENODATA;
	v->n = (uint32_t)n;
	*used = 1 + nlen;
	return 0;
}

static int read_fixed(const uint8_t *p, size_t left, unsigned n, size_t *used)
{
	if (left < 1 + (size_t)n)
		return -ENODATA;
	*used = 1 + n;
	return 0;
}

int ig_mp_read(struct ig_mp *m, struct ig_mp_val *v)
{
	const uint8_t *p = m->p;
	size_t left = ig_mp_left(m), used = 1;
	uint8_t b;
	int rv = 0;

	if (left < 1)
		return -ENODATA;
	b = p[0];
	memset(v, 0, sizeof(*v));
	if (b <= 0x7f) {
		v->type = IG_MP_UINT;
		v->u = b;
	} else if (b >= 0xe0) {
		v->type = IG_MP_INT;
		v->i = (int8_t)b;
	} else if ((b & 0xf0) == 0x80) {
		v->type = IG_MP_MAP;
		rv = read_count(p, left, 0, b & 0x0f, 2, v, &used);
	} else if ((b & 0xf0) == 0x90) {
		v->type = IG_MP_ARRAY;
		rv = read_count(p, left, 0, b & 0x0f, 1, v, &used);
	} else if ((b & 0xe0) == 0xa0) {
		v->type = IG_MP_STR;
		if (left < 1 + (size_t)(b & 0x1f))
			return -ENODATA;
		v->s.ptr = (const char *)p + 1;
		v->s.len = b & 0x1f;
		used = 1 + v->s.len;
	} else {
		switch (b) {
		case 0xc0:
			v->type = IG_MP_NIL;
			break;
		case 0xc2:
		case 0xc3:
			v->type = IG_MP_BOOL;
			v->b = b == 0xc3;
			break;
		case 0xc4:
		case 0xc5:
		case 0xc6:
			v->type = IG_MP_BIN;
			rv = read_sized(p, left, 1u << (b - 0xc4), 0, v, &used);
			break;
		case 0xc7:
		case 0xc8:
		case 0xc9:
			v->type = IG_MP_EXT;
			rv = read_sized(p, left, 1u << (b - 0xc7), 1, v, &used);
			break;
		case 0xca:
		case 0xcb:
			v->type = IG_MP_FLOAT;
			rv = read_fixed(p, left, b == 0xca ? 4 : 8, &used);
			if (rv == 0 && b == 0xca) {
				uint32_t x = (uint32_t)be(p + 1, 4);
				float f;
				memcpy(&f, &x, sizeof(f));
				v->f = f;
			} else if (rv == 0) {
				uint64_t x = be(p + 1, 8);
				memcpy(&v->f, &x, sizeof(v->f));
			}
			break;
		case 0xcc:
		case 0xcd:
		case 0xce:
		case 0xcf:
			v->type = IG_MP_UINT;
			rv = read_fixed(p, left, 1u << (b - 0xcc), &used);
			if (rv == 0)
				v->u = be(p + 1, 1u << (b - 0xcc));
			break;
		case 0xd0:
		case 0xd1:
		case 0xd2:
		case 0xd3:
			v->type = IG_MP_INT;
			rv = read_fixed(p, left, 1u << (b - 0xd0), &used);
			if (rv == 0)
				v->i = be_signed(p + 1, 1u << (b - 0xd0));
			break;
		case 0xd4:
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8:
			v->type = IG_MP_EXT;
			rv = read_fixed(p, left, 1 + (1u << (b - 0xd4)), &used);
			if (rv == 0) {
				v->s.ext_type = (int8_t)p[1];
				v->s.ptr = (const char *)p + 2;
				v->s.len = 1u << (b - 0xd4);
			}
			break;
		case 0xd9:
		case 0xda:
		case 0xdb:
			v->type = IG_MP_STR;
			rv = read_sized(p, left, 1u << (b - 0xd9), 0, v, &used);
			break;
		case 0xdc:
		case 0xdd:
			v->type = IG_MP_ARRAY;
			rv = read_count(p, left, b == 0xdc ? 2 : 4, 0, 1, v, &used);
			break;
		case 0xde:
		case 0xdf:
			v->type = IG_MP_MAP;
			rv = read_count(p, left, b == 0xde ? 2 : 4, 0, 2, v, &used);
			break;
		default: /* 0xc1: "never used" */
			return -EBADMSG;
		}
	}
	if (rv < 0)
		return rv;
	m->p += used;
	return 0;
}

int ig_mp_skip(struct ig_mp *m, unsigned max_depth)
{
	uint64_t left[IG_MP_MAX_DEPTH + 1];
	unsigned top = 0;
	struct ig_mp_val v;
	int rv;

	if (max_depth > IG_MP_MAX_DEPTH)
		max_depth = IG_MP_MAX_DEPTH;
	left[0] = 1;
	for (;;) {
		while (left[top] == 0) {
			if (top == 0)
				return 0;
			top--;
		}
		left[top]--;
		rv = ig_mp_read(m, &v);
		if (rv < 0)
			return rv;
		if ((v.type == IG_MP_ARRAY || v.type == IG_MP_MAP) && v.n > 0) {
			if (top + 1 > max_depth)
				return -ELOOP;
			left[++top] = v.type == IG_MP_MAP ? 2 * (uint64_t)v.n : v.n;
		} else if (v.type == IG_MP_ARRAY || v.type == IG_MP_MAP) {
			/* An empty container still counts as a level. */
			if (top + 1 > max_depth)
				return -ELOOP;
		}
	}
}

const char *ig_mp_type_name(enum ig_mp_type t)
{
	switch (t) {
	case IG_MP_NIL:
		return "nil";
	case IG_MP_BOOL:
		return "a boolean";
	case IG_MP_UINT:
		return "an unsigned integer";
	case IG_MP_INT:
		return "a signed integer";
	case IG_MP_FLOAT:
		return "a float";
	case IG_MP_STR:
		return "a string";
	case IG_MP_BIN:
		return "binary data";
	case IG_MP_ARRAY:
		return "an array";
	case IG_MP_MAP:
		return "a map";
	case IG_MP_EXT:
		return "an extension value";
	}
	return "an unknown type";
}

bool ig_mp_uint_val(const struct ig_mp_val *v, uint64_t max, uint64_t *out)
{
	uint64_t x;

	if (v->type == IG_MP_UINT)
		x = v->u;
	else if (v->type == IG_MP_INT && v->i >= 0)
		x = (uint64_t)v->i;
	else
		return false;
	if (x > max)
		return false;
	*out = x;
	return true;
}

void ig_mpw_init(struct ig_mpw *w)
{
	memset(w, 0, sizeof(*w));
}

void ig_mpw_free(struct ig_mpw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

bool ig_mpw_grow(struct ig_mpw *w, size_t n)
{
	size_t cap = w->cap ? w->cap : 4096;
	uint8_t *nb;

	while (cap - w->len < n) {
		if (cap > SIZE_MAX / 2)
			return false;
		cap *= 2;
	}
	nb = realloc(w->buf, cap);
	if (!nb)
		return false;
	w->buf = nb;
	w->cap = cap;
	return true;
}
