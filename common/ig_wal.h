/* ig_wal: the framing of ingrain's write-ahead files (the aggregator's open
 * batch journals, the agent's disk buffer).
 *
 * A file is a sequence of frames, each
 *   u32 magic 'IGW1' | u32 payload length | u32 aux | u32 crc32(aux, payload)
 * followed by the payload, all little-endian, written with one write(2) so a
 * crash of the writing process leaves whole frames (the kernel has them) and
 * a machine crash at worst a torn last frame. Readers stop at the first frame
 * that is truncated or fails its checksum and report how many bytes (and, when
 * the header is intact, how many items: `aux`) they could not use, so the
 * caller counts what was lost instead of guessing. Durability (fdatasync) is
 * the caller's policy. */
#ifndef IG_WAL_H
#define IG_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IG_WAL_MAGIC 0x31574749u /* "IGW1" */
#define IG_WAL_HDR 16
#define IG_WAL_MAX_FRAME (256u << 20)

/* Appends one frame at the file offset (O_APPEND or the current position).
 * Returns 0 or -errno (a short write is -EIO; the caller may ftruncate back). */
int ig_wal_append(int fd, const void *payload, size_t len, uint32_t aux);

struct ig_wal_scan {
	off_t valid_end; /* offset after the last good frame */
	uint64_t frames; /* good frames */
	uint64_t bad_bytes; /* bytes after valid_end (0 = clean end) */
	uint64_t bad_aux; /* aux of the first bad frame when its header was readable */
};

/* Calls fn(ctx, payload, len, aux) for each good frame from offset `start`;
 * fn returning non-zero stops the scan (its value is returned). Returns 0 or
 * a negative errno from reading. */
int ig_wal_read(int fd, off_t start, int (*fn)(void *ctx, const void *p, size_t len, uint32_t aux),
		void *ctx, struct ig_wal_scan *out);

#endif
