/* The platform timebase: the value of the `time` CSR and of ACLINT mtime.
 * Counts at TIMEBASE_HZ from the host monotonic clock, offset so that it
 * starts near zero when the VM is created. Shared read-only by all harts and
 * the timer device of one VM. */
#ifndef NIMBUS_CPU_TIMEBASE_H
#define NIMBUS_CPU_TIMEBASE_H

#include <stdint.h>
#include <time.h>

#define TIMEBASE_HZ 10000000ull /* 10 MHz, as advertised in the device tree */
#define TIMEBASE_NS_PER_TICK (1000000000ull / TIMEBASE_HZ)

struct timebase {
    /* host monotonic ns at which guest time was 0; negative after a restore
     * of a guest older than the host's uptime (timebase_set_now) */
    int64_t offset_ns;
};

/* Guest time saved in a snapshot is below this (about 146 years at 10 MHz),
 * so every conversion below stays within int64 ns. */
#define TIMEBASE_MAX_RESTORE_TICKS ((uint64_t)INT64_MAX / TIMEBASE_NS_PER_TICK / 2)

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
    return (uint64_t)(timebase_host_ns() - tb->offset_ns) / TIMEBASE_NS_PER_TICK;
}

/* Host monotonic ns at which the timebase reaches `ticks`, or INT64_MAX
 * ("never") when that lies beyond what a host deadline can express. `ticks`
 * comes from the guest (mtimecmp, stimecmp): the conversion saturates rather
 * than overflow, so a far deadline can never wrap into the past and make a
 * parked hart spin. */
static inline int64_t timebase_ticks_to_host_ns(const struct timebase *tb, uint64_t ticks)
{
    if (ticks > (uint64_t)INT64_MAX / TIMEBASE_NS_PER_TICK)
        return INT64_MAX;
    int64_t ns = (int64_t)(ticks * TIMEBASE_NS_PER_TICK);
    if (tb->offset_ns > 0 && ns > INT64_MAX - tb->offset_ns)
        return INT64_MAX;
    ns += tb->offset_ns;
    return ns < 0 ? 0 : ns;
}

/* Restore: guest time continues from `ticks` (<= TIMEBASE_MAX_RESTORE_TICKS)
 * as of now. Only while no hart runs (harts read offset_ns unlocked). */
static inline void timebase_set_now(struct timebase *tb, uint64_t ticks)
{
    tb->offset_ns = timebase_host_ns() - (int64_t)(ticks * TIMEBASE_NS_PER_TICK);
}

#endif
