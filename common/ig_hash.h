/* ig_hash: a fast non-cryptographic hash for the interning tables of the
 * wire encoder and decoder (strings of a few to a few hundred bytes).
 *
 * Eight bytes at a time, each word mixed by a 64x64->128 multiply folded
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

#endif
