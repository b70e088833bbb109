/* ig_hash: the project's non-cryptographic hashes, one place for each.
 *
 * ig_hash_bytes: fast, for the interning tables of the wire encoder and
 * decoder (strings of a few to a few hundred bytes). Eight bytes at a time, each word mixed by a 64x64->128 multiply folded
 * to 64 bits (the construction of wyhash's mum()), so a 40-byte path costs
 * a handful of multiplies instead of FNV-1a's one per byte. Not resistant to
 * chosen collisions: the tables that use it bound their probe lengths or are
 * filled by the agent itself, never keyed by untrusted input alone.
 */
#ifndef IG_HASH_H
#define IG_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t ig_hash_mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t ig_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ 0x9e3779b97f4a7c15ULL ^ len, w;

	while (len >= 8) {
		memcpy(&w, p, 8);
		h = ig_hash_mix(h ^ w, 0xa0761d6478bd642fULL);
		p += 8;
		len -= 8;
	}
	w = 0;
	if (len)
		memcpy(&w, p, len);
	return ig_hash_mix(h ^ w ^ 0xe7037ed1a0b428dbULL, 0x8ebc6af09c88c6e3ULL);
}

/* FNV-1a, byte at a time, continuing from h (IG_FNV64_INIT / IG_FNV32_INIT to
 * start): for small in-memory tables, and where a hash is part of a format
 * (the archive index's Bloom filter, the agents' replica choice), which must
 * never change. */
#define IG_FNV64_INIT 0xcbf29ce484222325ULL /* 14695981039346656037 */
#define IG_FNV64_PRIME 0x100000001b3ULL
#define IG_FNV32_INIT 2166136261u
#define IG_FNV32_PRIME 16777619u

static inline uint64_t ig_fnv64(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * IG_FNV64_PRIME;
	return h;
}

static inline uint64_t ig_fnv64_str(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * IG_FNV64_PRIME;
	return h;
}

static inline uint32_t ig_fnv32(uint32_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * IG_FNV32_PRIME;
	return h;
}

static inline uint32_t ig_fnv32_str(uint32_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * IG_FNV32_PRIME;
	return h;
}

/* The splitmix64 finaliser: every output bit depends on every input bit
 * (for a hash that must be uniform over the whole 64-bit range). */
static inline uint64_t ig_mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

#endif
