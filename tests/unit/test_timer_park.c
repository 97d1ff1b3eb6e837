/* Guest-controlled timer values (mtimecmp, Sstc stimecmp) against the
 * monitor's time arithmetic: conversions saturate, and a hart parked in WFI
 * with an unreachable deadline sleeps instead of spinning. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cpu/csr.h"
#include "cpu/hart.h"
#include "cpu/timebase.h"
#include "mem/guest_mem.h"

static void test_conversion(void)
{
    struct timebase tb;
    timebase_init(&tb);
    const uint64_t edge = (uint64_t)INT64_MAX / TIMEBASE_NS_PER_TICK;
    const uint64_t values[] = { 0, 1, edge - (uint64_t)tb.offset_ns / TIMEBASE_NS_PER_TICK - 1,
                                edge - 1, edge, edge + 1, (uint64_t)INT64_MAX, UINT64_MAX };
    int64_t prev = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int64_t ns = timebase_ticks_to_host_ns(&tb, values[i]);
        CHECK_MSG(ns >= tb.offset_ns, "ticks 0x%llx -> %lld ns, before the VM started",
                  (unsigned long long)values[i], (long long)ns);
        CHECK_MSG(ns >= prev, "ticks 0x%llx -> %lld ns, earlier than a smaller value",
                  (unsigned long long)values[i], (long long)ns);
        prev = ns;
    }
    CHECK_EQ(timebase_ticks_to_host_ns(&tb, 0), tb.offset_ns);
    CHECK_EQ(timebase_ticks_to_host_ns(&tb, 10), tb.offset_ns + 10 * (int64_t)TIMEBASE_NS_PER_TICK);
    CHECK_EQ(timebase_ticks_to_host_ns(&tb, UINT64_MAX), INT64_MAX);
    CHECK_EQ(timebase_ticks_to_host_ns(&tb, edge), INT64_MAX);
}

struct park_run {
    struct hart *hart;
    clockid_t cpu_clock;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    int started;
};

static void *park_thread(void *arg)
{
    struct park_run *r = arg;
    pthread_getcpuclockid(pthread_self(), &r->cpu_clock);
    pthread_mutex_lock(&r->lock);
    r->started = 1;
    pthread_cond_signal(&r->ready);
    pthread_mutex_unlock(&r->lock);
    hart_park(r->hart);
    return NULL;
}

static int64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Parks a hart whose only enabled interrupt is a timer set to `cmp` and
 * returns the CPU time the parked thread used in 300 ms. */
static int64_t parked_cpu_ns(struct guest_mem *mem, const struct timebase *tb, bool sstc, uint64_t cmp)
{
    struct hart *h;
    if (posix_memalign((void **)&h, 4096, sizeof(*h)) || hart_init(h, 0, mem, tb, mem->ram_base)) {
        CHECK(!"hart_init");
        return -1;
    }
    atomic_store(&h->arch.state, HART_STARTED);
    if (sstc) {
        hart_csr_write(h, CSR_MENVCFG, 1ull << 63); /* STCE */
        hart_csr_write(h, CSR_STIMECMP, cmp);
        hart_csr_write(h, CSR_MIE, MIP_STIP);
    } else {
        atomic_store(&h->mtimecmp, cmp);
        hart_csr_write(h, CSR_MIE, MIP_MTIP);
    }
    struct park_run r = { .hart = h, .lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER };
    pthread_t t;
    pthread_create(&t, NULL, park_thread, &r);
    pthread_mutex_lock(&r.lock);
    while (!r.started)
        pthread_cond_wait(&r.ready, &r.lock);
    pthread_mutex_unlock(&r.lock);
    int64_t before = cpu_ns(r.cpu_clock);
    usleep(300000);
    int64_t used = cpu_ns(r.cpu_clock) - before;
    hart_post_request(h, HART_REQ_EXIT); /* the park must end on a request */
    pthread_join(t, NULL);
    hart_destroy(h);
    free(h);
    return used;
}

int main(void)
{
    test_conversion();

    struct guest_mem mem;
    struct timebase tb;
    CHECK(guest_mem_init(&mem, 0x80000000ull, 16ull << 20) == 0);
    timebase_init(&tb);
    /* Values around the edge of the tick -> ns conversion, and the largest. */
    const uint64_t cmps[] = { (uint64_t)INT64_MAX / 100 - 1, (uint64_t)INT64_MAX / 100,
                              (uint64_t)INT64_MAX - 1, UINT64_MAX - 1 };
    for (int sstc = 0; sstc <= 1; sstc++) {
        for (size_t i = 0; i < sizeof(cmps) / sizeof(cmps[0]); i++) {
            int64_t used = parked_cpu_ns(&mem, &tb, sstc, cmps[i]);
            CHECK_MSG(used >= 0 && used < 30000000, "%s = 0x%llx: the parked hart used %lld us of CPU in 300 ms",
                      sstc ? "stimecmp" : "mtimecmp", (unsigned long long)cmps[i], (long long)used / 1000);
        }
    }
    guest_mem_destroy(&mem);
    return check_summary("timer_park");
}
