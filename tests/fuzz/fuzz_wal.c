/* fuzz_wal: the write-ahead frame reader (ig_wal.h) on arbitrary file
 * contents, as a crash, a bad disk or a stray writer could leave them in the
 * agent's buffer_dir or an S3/Datadog journal.
 *
 * Properties beyond "no crash, no leak, no overread": the good frames and
 * the unusable tail add up to the file (valid_end + bad_bytes = size), and
 * re-writing the good frames with ig_wal_append gives exactly the file's
 * valid prefix (the reader accepts only what the writer produces).
 *
 * Seeds: tests/fuzz/corpus/fuzz_wal/ (two frames; a torn last frame; a bad
 * checksum).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ig_wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static int rewrite(void *ctx, const void *p, size_t len, uint32_t aux)
{
	check(ig_wal_append(*(int *)ctx, p, len, aux) == 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int in = memfd_create("fuzz_wal_in", 0), out = memfd_create("fuzz_wal_out", 0);
	struct ig_wal_scan sc;

	check(in >= 0 && out >= 0);
	check(write(in, data, size) == (ssize_t)size);
	check(ig_wal_read(in, 0, rewrite, &out, &sc) == 0);
	check((uint64_t)sc.valid_end + sc.bad_bytes == size);
	off_t n = lseek(out, 0, SEEK_END);
	check(n == sc.valid_end);
	if (n > 0) {
		uint8_t *buf = malloc((size_t)n);
		check(buf && pread(out, buf, (size_t)n, 0) == n);
		check(!memcmp(buf, data, (size_t)n));
		free(buf);
	}
	close(in);
	close(out);
	return 0;
}
