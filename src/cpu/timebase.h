/* The platform timebase: the value of the `time` CSR and of ACLINT mtime.
 * Counts at TIMEBASE_HZ from the host monotonic clock, offset so that it
 * starts near zero when the VM is created. Shared read-only by all harts and
 * the timer device of one VM. */
#ifndef NIMBUS_CPU_TIMEBASE_H
#define NIMBUS_CPU_TIMEBASE_H

#include <stdint.h>
#include <time.h>

#define TIMEBASE_HZ 10000000ull /* 10 MHz, as advertised in the device tree */

struct timebase {
    int64_t offset_ns; /* host monotonic ns at which guest time was 0 */
};

static inline int64_t timebase_host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline void timebase_init(struct timebase *tb)
{
    tb->offset_ns = timebase_host_ns();
}

static inline uint64_t timebase_now(const struct timebase *tb)
{
    return (uint64_t)(timebase_host_ns() - tb->offset_ns) / (1000000000ull / TIMEBASE_HZ);
}

/* Host monotonic ns at which the timebase reaches `ticks`. */
static inline int64_t timebase_ticks_to_host_ns(const struct timebase *tb, uint64_t ticks)
{
    if (ticks > (uint64_t)INT64_MAX / (1000000000ull / TIMEBASE_HZ))
        return INT64_MAX;
    return tb->offset_ns + (int64_t)(ticks * (1000000000ull / TIMEBASE_HZ));
}

#endif
