/* ig_time: see ig_time.h. */
#include "ig_time.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t mono_to_wall_off;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * IG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t ig_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t ig_wall_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

void ig_time_init(void)
{
	/* Sample mono between two wall reads and keep the tightest pair. */
	int64_t best_gap = INT64_MAX, off = 0;
	for (int i = 0; i < 5; i++) {
		uint64_t m0 = ig_mono_ns(), w = ig_wall_ns(), m1 = ig_mono_ns();
		int64_t gap = (int64_t)(m1 - m0);
		if (gap < best_gap) {
			best_gap = gap;
			off = (int64_t)w - (int64_t)(m0 + (m1 - m0) / 2);
		}
	}
	__atomic_store_n(&mono_to_wall_off, off, __ATOMIC_RELAXED);
}

uint64_t ig_mono_to_wall(uint64_t mono_ns)
{
	return (uint64_t)((int64_t)mono_ns + __atomic_load_n(&mono_to_wall_off, __ATOMIC_RELAXED));
}

char *ig_fmt_rfc3339(uint64_t wall_ns, char *buf, unsigned buflen)
{
	/* Records come in order, so most share the second of the previous one:
	 * its "YYYY-MM-DDTHH:MM:SS." is kept per thread, and only the
	 * nanoseconds are written (gmtime_r + snprintf cost ~0.3 us a call). */
	static __thread uint64_t last_sec = UINT64_MAX;
	static __thread char prefix[32];
	static __thread unsigned prefix_len;
	uint64_t sec = wall_ns / IG_NSEC_PER_SEC;
	unsigned ns = (unsigned)(wall_ns % IG_NSEC_PER_SEC);

	if (sec != last_sec) {
		time_t s = (time_t)sec;
		struct tm tm;
		int n;

		gmtime_r(&s, &tm);
		n = snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			     tm.tm_sec);
		if (n <= 0 || (unsigned)n >= sizeof(prefix)) {
			snprintf(buf, buflen, "%s", "?");
			return buf;
		}
		prefix_len = (unsigned)n;
		last_sec = sec;
	}
	if (buflen < prefix_len + 11) { /* 9 digits, 'Z', NUL: as snprintf would cut */
		char full[48];

		memcpy(full, prefix, prefix_len);
		snprintf(full + prefix_len, sizeof(full) - prefix_len, "%09uZ", ns);
		snprintf(buf, buflen, "%s", full);
		return buf;
	}
	memcpy(buf, prefix, prefix_len);
	for (int i = 8; i >= 0; i--) {
		buf[prefix_len + (unsigned)i] = (char)('0' + ns % 10);
		ns /= 10;
	}
	buf[prefix_len + 9] = 'Z';
	buf[prefix_len + 10] = '\0';
	return buf;
}
