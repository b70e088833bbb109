/* ig_wal: see ig_wal.h. */
#include "ig_wal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <zlib.h>

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t frame_crc(uint32_t aux, const void *p, size_t len)
{
	unsigned char a[4];
	put32(a, aux);
	uLong c = crc32(0L, a, 4);
	return (uint32_t)crc32(c, p, (uInt)len);
}

int ig_wal_append(int fd, const void *payload, size_t len, uint32_t aux)
{
	unsigned char hdr[IG_WAL_HDR];
	struct iovec iov[2];
	size_t want = IG_WAL_HDR + len, done = 0;

	if (len > IG_WAL_MAX_FRAME)
		return -EMSGSIZE;
	put32(hdr, IG_WAL_MAGIC);
	put32(hdr + 4, (uint32_t)len);
	put32(hdr + 8, aux);
	put32(hdr + 12, frame_crc(aux, payload, len));
	while (done < want) {
		int n = 0;
		if (done < IG_WAL_HDR) {
			iov[n].iov_base = hdr + done;
			iov[n++].iov_len = IG_WAL_HDR - done;
			iov[n].iov_base = (void *)payload;
			iov[n++].iov_len = len;
		} else {
			iov[n].iov_base = (char *)payload + (done - IG_WAL_HDR);
			iov[n++].iov_len = want - done;
		}
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO;
		done += (size_t)w;
	}
	return 0;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (int)(got == len);
}

int ig_wal_read(int fd, off_t start, int (*fn)(void *ctx, const void *p, size_t len, uint32_t aux),
		void *ctx, struct ig_wal_scan *out)
{
	struct stat st;
	unsigned char hdr[IG_WAL_HDR];
	off_t off = start;
	void *buf = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (fstat(fd, &st))
		return -errno;
	while (off < st.st_size) {
		int r = read_at(fd, hdr, IG_WAL_HDR, off);
		if (r < 0) {
			rc = r;
			break;
		}
		if (r == 0 || get32(hdr) != IG_WAL_MAGIC)
			break;
		uint32_t len = get32(hdr + 4), aux = get32(hdr + 8), crc = get32(hdr + 12);
		if (len > IG_WAL_MAX_FRAME || off + IG_WAL_HDR + (off_t)len > st.st_size) {
			out->bad_aux = aux;
			break;
		}
		void *nb = realloc(buf, len ? len : 1);
		if (!nb) {
			rc = -ENOMEM;
			break;
		}
		buf = nb;
		if ((r = read_at(fd, buf, len, off + IG_WAL_HDR)) <= 0) {
			rc = r < 0 ? r : 0;
			out->bad_aux = aux;
			break;
		}
		if (frame_crc(aux, buf, len) != crc) {
			out->bad_aux = aux;
			break;
		}
		off += IG_WAL_HDR + (off_t)len;
		out->frames++;
		if (fn && (rc = fn(ctx, buf, len, aux)))
			break;
	}
	free(buf);
	out->valid_end = off;
	out->bad_bytes = st.st_size > off ? (uint64_t)(st.st_size - off) : 0;
	return rc;
}
