/* ig_time: clocks. BPF programs stamp events with bpf_ktime_get_ns()
 * (CLOCK_MONOTONIC); records carry wall-clock nanoseconds. The offset between
 * the two is measured once at start (ig_time_init) and refreshed on demand, so
 * conversion is one addition per event. */
#ifndef IG_TIME_H
#define IG_TIME_H

#include <stdint.h>

#define IG_NSEC_PER_SEC 1000000000ULL
#define IG_NSEC_PER_MSEC 1000000ULL

uint64_t ig_mono_ns(void);
uint64_t ig_wall_ns(void);
void ig_time_init(void);
/* CLOCK_MONOTONIC ns -> wall-clock ns since the epoch. */
uint64_t ig_mono_to_wall(uint64_t mono_ns);
/* Formats wall ns as RFC 3339 UTC with nanoseconds ("2026-11-25T12:00:00.123456789Z").
 * buf must hold 32 bytes. Returns buf. */
char *ig_fmt_rfc3339(uint64_t wall_ns, char *buf, unsigned buflen);

#endif
