/* SPDX-License-Identifier: BSL-1.0 */
/* musl-compat.h — forced into every *-linux-musl compile (-include).
 * The static musl builds use the host's libstdc++ headers, which were
 * configured for glibc; this fills the three gaps they meet:
 *  - they test __GLIBC_PREREQ, which musl does not define (defined here
 *    rather than as '-D__GLIBC_PREREQ(a,b)=0' so the printed flags of
 *    toolchains/flags.mk print-flags need no shell quoting);
 *  - <bits/c++locale.h> names glibc's __locale_t (musl: locale_t);
 *  - from C++20 on, <atomic> reaches <bits/std_mutex.h>, which calls
 *    glibc's pthread_cond_clockwait (musl 1.2.3 has none). The one below
 *    waits on the condition's own clock (CLOCK_REALTIME, the default)
 *    after moving the deadline there from the clock asked for. */
#ifndef __GLIBC_PREREQ
#define __GLIBC_PREREQ(major, minor) 0
#endif

#ifdef __cplusplus
#include <locale.h>
#include <pthread.h>
#include <time.h>

typedef locale_t __locale_t;

static inline int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                                         clockid_t clock, const struct timespec *deadline) {
  struct timespec on_realtime = *deadline;
  if (clock != CLOCK_REALTIME) {
    struct timespec now, realtime_now;
    clock_gettime(clock, &now);
    clock_gettime(CLOCK_REALTIME, &realtime_now);
    long long left_ns = (long long)(deadline->tv_sec - now.tv_sec) * 1000000000LL +
                        (deadline->tv_nsec - now.tv_nsec);
    if (left_ns < 0) left_ns = 0;
    long long at_ns = (long long)realtime_now.tv_nsec + left_ns % 1000000000LL;
    on_realtime.tv_sec = realtime_now.tv_sec + (time_t)(left_ns / 1000000000LL) + (time_t)(at_ns / 1000000000LL);
    on_realtime.tv_nsec = (long)(at_ns % 1000000000LL);
  }
  return pthread_cond_timedwait(cond, mutex, &on_realtime);
}
#endif
