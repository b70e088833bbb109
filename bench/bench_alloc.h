/* bench_alloc.h: counts heap allocations, so benchmarks can report
 * allocations per record. Include it in exactly one file of a benchmark
 * executable: it defines malloc, calloc and realloc, which then take the
 * place of glibc's for the whole process (glibc 2.34+ has no malloc hooks),
 * and forward to glibc's own entry points.
 */
#ifndef BENCH_ALLOC_H
#define BENCH_ALLOC_H

#include <stddef.h>
#include <stdint.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static uint64_t bench_allocs;

void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);

void *malloc(size_t n)
{
	__atomic_add_fetch(&bench_allocs, 1, __ATOMIC_RELAXED);
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	__atomic_add_fetch(&bench_allocs, 1, __ATOMIC_RELAXED);
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	__atomic_add_fetch(&bench_allocs, 1, __ATOMIC_RELAXED);
	return __libc_realloc(p, n);
}

static inline uint64_t bench_alloc_count(void)
{
	return __atomic_load_n(&bench_allocs, __ATOMIC_RELAXED);
}

#endif
