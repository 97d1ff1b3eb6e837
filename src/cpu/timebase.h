/* The platform timebase: the value of the `time` CSR and of ACLINT mtime,
 * the guest's clock for every device that counts guest time (the watchdog).
 * Counts at TIMEBASE_HZ from the host monotonic clock, offset so that it
 * starts near zero when the VM is created. Shared read-only by all harts and
 * the timer devices of one VM.
 *
 * It stands still while the VM is paused (timebase_stop/timebase_start), as
 * QEMU's QEMU_CLOCK_VIRTUAL does across `stop`: a paused, saved or migrating
 * guest sees no time pass, so its timers, soft-lockup detector and watchdog
 * do not take the pause for a hang. (Wall-clock devices, the RTC, keep the
 * host's real time.) */
#ifndef NIMBUS_CPU_TIMEBASE_H
#define NIMBUS_CPU_TIMEBASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define TIMEBASE_HZ 10000000ull /* 10 MHz, as advertised in the device tree */
#define TIMEBASE_NS_PER_TICK (1000000000ull / TIMEBASE_HZ)

/* stopped_at of a running timebase: guest time never gets there (58,000
 * years at 10 MHz). */
#define TIMEBASE_RUNNING UINT64_MAX

struct timebase {
    /* host monotonic ns at which guest time was 0 while it runs; negative
     * after a restore of a guest older than the host's uptime */
    _Atomic int64_t offset_ns;
    /* the guest time it stands at while stopped, else TIMEBASE_RUNNING: one
     * word, so a reader on another thread sees one state or the other */
    _Atomic uint64_t stopped_at;
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
    atomic_store(&tb->offset_ns, timebase_host_ns());
    atomic_store(&tb->stopped_at, TIMEBASE_RUNNING);
}

static inline bool timebase_stopped(const struct timebase *tb)
{
    return atomic_load(&tb->stopped_at) != TIMEBASE_RUNNING;
}

static inline uint64_t timebase_now(const struct timebase *tb)
{
    uint64_t at = atomic_load(&tb->stopped_at);
    if (at != TIMEBASE_RUNNING)
        return at;
    return (uint64_t)(timebase_host_ns() - atomic_load(&tb->offset_ns)) / TIMEBASE_NS_PER_TICK;
}

/* Host monotonic ns at which the timebase reaches `ticks`, or INT64_MAX
 * ("never") when that lies beyond what a host deadline can express or the
 * timebase is stopped (a later timebase_start() moves every deadline: whoever
 * waits on one must be woken then to compute it again). `ticks`
 * comes from the guest (mtimecmp, stimecmp): the conversion saturates rather
 * than overflow, so a far deadline can never wrap into the past and make a
 * parked hart spin. */
static inline int64_t timebase_ticks_to_host_ns(const struct timebase *tb, uint64_t ticks)
{
    uint64_t at = atomic_load(&tb->stopped_at);
    if (at != TIMEBASE_RUNNING)
        return ticks <= at ? 0 : INT64_MAX;
    if (ticks > (uint64_t)INT64_MAX / TIMEBASE_NS_PER_TICK)
        return INT64_MAX;
    int64_t ns = (int64_t)(ticks * TIMEBASE_NS_PER_TICK);
    int64_t offset = atomic_load(&tb->offset_ns);
    if (offset > 0 && ns > INT64_MAX - offset)
        return INT64_MAX;
    ns += offset;
    return ns < 0 ? 0 : ns;
}

/* Restore: guest time is `ticks` (<= TIMEBASE_MAX_RESTORE_TICKS) from now
 * on; a stopped timebase stands there until timebase_start(), a running one
 * goes on from there. Only while no hart runs (harts read it unlocked). */
static inline void timebase_set_now(struct timebase *tb, uint64_t ticks)
{
    if (timebase_stopped(tb))
        atomic_store(&tb->stopped_at, ticks);
    else
        atomic_store(&tb->offset_ns, timebase_host_ns() - (int64_t)(ticks * TIMEBASE_NS_PER_TICK));
}

/* Pause: guest time stands at its current value until timebase_start().
 * Callers serialise stop, start and set_now (virt.h: pause_lock); readers
 * may run meanwhile. No-op when stopped already. */
static inline void timebase_stop(struct timebase *tb)
{
    if (!timebase_stopped(tb))
        atomic_store(&tb->stopped_at, timebase_now(tb));
}

/* Resume: guest time goes on from where it stood, so the time stopped is
 * not seen by the guest. No-op when running. */
static inline void timebase_start(struct timebase *tb)
{
    uint64_t at = atomic_load(&tb->stopped_at);
    if (at == TIMEBASE_RUNNING)
        return;
    atomic_store(&tb->offset_ns, timebase_host_ns() - (int64_t)(at * TIMEBASE_NS_PER_TICK));
    atomic_store(&tb->stopped_at, TIMEBASE_RUNNING);
}

#endif
