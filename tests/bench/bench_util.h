/* Clocks for the benchmarks: wall time and CPU time in seconds (doubles), so each bench
 * reports a rate beside the CPU time per operation that stays meaningful on a loaded
 * machine. Header only: every bench is its own program. */
#ifndef SMKI_BENCH_UTIL_H
#define SMKI_BENCH_UTIL_H

#include <time.h>

static inline double bench_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall time (monotonic). */
static inline double bench_now(void) { return bench_clock(CLOCK_MONOTONIC); }
/* The calling thread's CPU time. */
static inline double bench_thread_cpu(void) { return bench_clock(CLOCK_THREAD_CPUTIME_ID); }

#endif
