/* Hart lifecycle, reset state, and the cross-thread parts: interrupt lines
 * from devices, requests, and parking a hart that waits for an interrupt. */
#include "cpu/cpu_internal.h"
#include "cpu/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* misa: RV64 (MXL=2) with A, C, D, F, I, M, S, U. */
#define MISA_VALUE ((2ull << 62) | (1u << 0) | (1u << 2) | (1u << 3) | (1u << 5) | \
                    (1u << 8) | (1u << 12) | (1u << 18) | (1u << 20))

#define BLOCKS_BYTES (sizeof(struct decoded_block) << BLOCK_CACHE_BITS)

int hart_init(struct hart *h, uint64_t hartid, struct guest_mem *mem,
              const struct timebase *tb, uint64_t reset_pc)
{
    memset(h, 0, sizeof(*h));
    h->hartid = hartid;
    h->mem = mem;
    h->timebase = tb;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr))
        return -ENOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&h->park_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err)
        return -err;
    err = pthread_mutex_init(&h->park_lock, NULL);
    if (err) {
        pthread_cond_destroy(&h->park_cond);
        return -err;
    }
    /* Backed at once (MAP_POPULATE), not page by page: a block's slot
     * follows its code's host address, so nearly every block a cold hart
     * decodes lands on a page of its own, and a lazily backed cache took
     * two page faults for each (the lookup maps the zero page, the decode
     * copies it) - about 1,100 faults, 10-15 ms, before a restored guest
     * had run 30,000 instructions. Populating its 2.3 MiB takes ~0.6 ms. */
    void *blocks = mmap(NULL, BLOCKS_BYTES, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    h->blocks = blocks == MAP_FAILED ? NULL : blocks;
    if (!h->blocks) {
        pthread_mutex_destroy(&h->park_lock);
        pthread_cond_destroy(&h->park_cond);
        return -ENOMEM;
    }
    hart_reset(h, reset_pc);
    return 0;
}

void hart_destroy(struct hart *h)
{
    if (h->blocks)
        munmap(h->blocks, BLOCKS_BYTES);
    h->blocks = NULL;
    pthread_mutex_destroy(&h->park_lock);
    pthread_cond_destroy(&h->park_cond);
}

void hart_reset(struct hart *h, uint64_t reset_pc)
{
    memset(h->arch.x, 0, sizeof(h->arch.x));
    memset(&h->arch.fp, 0, sizeof(h->arch.fp));
    h->arch.pc = reset_pc;
    h->arch.priv = PRIV_M;
    h->arch.mstatus = 0;
    h->arch.misa = MISA_VALUE;
    h->arch.medeleg = h->arch.mideleg = h->arch.mie = 0;
    atomic_store(&h->arch.mip, 0);
    h->arch.mip_sw_seip = 0;
    h->arch.mtvec = h->arch.mscratch = h->arch.mepc = h->arch.mcause = h->arch.mtval = 0;
    h->arch.mcounteren = h->arch.menvcfg = h->arch.mcountinhibit = 0;
    h->arch.stvec = h->arch.sscratch = h->arch.sepc = h->arch.scause = h->arch.stval = h->arch.satp = 0;
    h->arch.scounteren = h->arch.senvcfg = 0;
    h->arch.stimecmp = ~0ull;
    atomic_store(&h->mtimecmp, ~0ull);
    h->arch.mcycle_offset = h->arch.minstret_offset = 0;
    memset(h->arch.pmpcfg, 0, sizeof(h->arch.pmpcfg));
    memset(h->arch.pmpaddr, 0, sizeof(h->arch.pmpaddr));
    mmu_pmp_changed(h);
    h->arch.resv_valid = false;
    atomic_store(&h->requests, 0);
    hart_flush_tlb(h);
    /* A dirty-logging request dropped with the others above is served by
     * the flush: acknowledge it, or its collector would wait for nothing. */
    hart_drop_writes(h);
    mmu_update_regime(h);
    /* New memory contents may be loaded: no decoded block stays valid. */
    h->code_epoch++;
    h->next_timer_check = 0;
}

void hart_fence_i(struct hart *h)
{
    h->code_epoch++;
}

bool hart_wfi_wakeup(struct hart *h)
{
    return (hart_mip(h) & h->arch.mie) != 0;
}

int64_t hart_timer_deadline_ns(struct hart *h)
{
    int64_t deadline = INT64_MAX;
    if (h->arch.mie & MIP_MTIP) {
        int64_t t = timebase_ticks_to_host_ns(h->timebase, atomic_load(&h->mtimecmp));
        if (t < deadline)
            deadline = t;
    }
    if ((h->arch.mie & MIP_STIP) && (h->arch.menvcfg & MENVCFG_STCE)) {
        int64_t t = timebase_ticks_to_host_ns(h->timebase, h->arch.stimecmp);
        if (t < deadline)
            deadline = t;
    }
    return deadline;
}

void hart_park(struct hart *h)
{
    pthread_mutex_lock(&h->park_lock);
    for (;;) {
        if (atomic_load(&h->requests))
            break;
        int state = atomic_load(&h->arch.state);
        int64_t deadline = INT64_MAX;
        if (state == HART_START_PENDING)
            break;
        if (state == HART_STARTED) {
            trap_update_timers(h);
            if (hart_wfi_wakeup(h))
                break;
            deadline = hart_timer_deadline_ns(h);
        }
        if (deadline == INT64_MAX) {
            pthread_cond_wait(&h->park_cond, &h->park_lock);
        } else {
            struct timespec ts = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 };
            pthread_cond_timedwait(&h->park_cond, &h->park_lock, &ts);
        }
    }
    pthread_mutex_unlock(&h->park_lock);
}

void hart_kick(struct hart *h)
{
    pthread_mutex_lock(&h->park_lock);
    pthread_cond_signal(&h->park_cond);
    pthread_mutex_unlock(&h->park_lock);
}

void hart_set_irq(struct hart *h, uint64_t bits, bool level)
{
    uint64_t old = level ? atomic_fetch_or(&h->arch.mip, bits) : atomic_fetch_and(&h->arch.mip, ~bits);
    if (level && (old & bits) != bits)
        hart_kick(h);
}

void hart_post_request(struct hart *h, unsigned req)
{
    atomic_fetch_or(&h->requests, req);
    hart_kick(h);
}

uint64_t hart_request_drop_writes(struct hart *h)
{
    uint64_t ticket = atomic_fetch_add(&h->drop_writes_req, 1) + 1;
    hart_post_request(h, HART_REQ_DROP_WRITES);
    return ticket;
}

bool hart_drop_writes_done(struct hart *h, uint64_t ticket)
{
    return atomic_load_explicit(&h->drop_writes_ack, memory_order_acquire) >= ticket;
}

void hart_drop_writes(struct hart *h)
{
    /* The ticket is read before the flush: a request that comes later gets
     * a later ticket and another flush. The acknowledgement is published
     * after the flush and after every store made through the dropped
     * entries (program order, seq_cst), then a waiting collector is woken. */
    uint64_t ticket = atomic_load(&h->drop_writes_req);
    tlb_flush_writes(&h->tlb);
    atomic_store(&h->drop_writes_ack, ticket);
    dirty_log_wake(&h->mem->dirty);
}
