/* Fuzz target: the built-in SBI (src/machine/sbi.c, sbi_handle_ecall) on a
 * platform of up to MAX_HARTS harts, against a model of the SBI v2.0 spec.
 *
 * Input: one byte (number of harts, 1 + b % MAX_HARTS), then 34-byte records:
 *   u8 op, u8 hart, u32 a7 (EID), u32 a6 (FID), u64 a0, u64 a1, u64 a2
 * op bit 0 = 0: the hart (the first started one from `hart` on) makes the
 *               ecall; op >> 1 bytes are waiting on the console for reads;
 * op bit 0 = 1: hart `hart` runs for zero instructions: it serves posted
 *               requests and, if start-pending, applies its HSM start.
 *
 * While a call runs, a helper thread plays the other started harts' threads
 * (it serves their fence requests as hart_run() does), so a remote fence
 * completes as it would on a running machine.
 *
 * Checks after each call:
 *   - only a0/a1 of the caller change (a0 only, for the legacy calls); no
 *     other hart's registers change; pc and privilege stay;
 *   - a0 is an SBI v2.0 error code (0 .. -9);
 *   - each extension against the model: spec/impl version, probe, set_timer
 *     (stimecmp), IPI and remote fences (hart mask rules of SBI spec 3.1:
 *     the target harts and only they get SSIP / their fence; a bad mask is
 *     SBI_ERR_INVALID_PARAM with no effect), HSM (start/stop/status state
 *     machine; a started hart enters at the address and opaque of the call
 *     that started it), SRST (the platform callback sees the type and
 *     reason), DBCN (the console callback gets exactly the guest RAM range
 *     asked for; out-of-RAM ranges are SBI_ERR_INVALID_PARAM).
 * The console callbacks read/write every byte they are given, so ASan (or a
 * fault) reports a buffer that is not what it claims to be. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/csr.h"
#include "cpu/hart.h"
#include "fuzz_util.h"
#include "machine/sbi.h"
#include "mem/guest_mem.h"

#define RAM_BASE  0x80000000ull
#define RAM_SIZE  (16ull << 20)
#define MAX_HARTS 8u
#define RECORD    34u

enum {
    EXT_LEGACY_PUTCHAR = 0x01, EXT_LEGACY_GETCHAR = 0x02, EXT_BASE = 0x10,
    EXT_TIME = 0x54494d45, EXT_IPI = 0x735049, EXT_RFENCE = 0x52464e43, EXT_HSM = 0x48534d,
    EXT_SRST = 0x53525354, EXT_DBCN = 0x4442434e,
};
enum {
    SBI_SUCCESS = 0, ERR_FAILED = -1, ERR_NOT_SUPPORTED = -2, ERR_INVALID_PARAM = -3,
    ERR_DENIED = -4, ERR_INVALID_ADDRESS = -5, ERR_ALREADY_AVAILABLE = -6,
    ERR_ALREADY_STARTED = -7, ERR_ALREADY_STOPPED = -8, ERR_NO_SHMEM = -9,
};

static struct guest_mem mem;
static struct timebase tb;
static struct hart *harts[MAX_HARTS];
static struct sbi_platform plat;

/* What the callbacks saw during one call. */
static struct {
    const uint8_t *wbuf;
    size_t wlen;
    unsigned writes;
    uint8_t wbyte, wsum;
    uint8_t *rbuf;
    size_t rlen, rgot;
    unsigned reads;
    size_t console_pending;
    unsigned resets;
    enum sbi_reset_type reset_type;
    uint32_t reset_reason;
} seen;

/* The model's view of each hart. */
static struct {
    int state;
    uint64_t start_addr, start_opaque;
} model[MAX_HARTS];

/* ---- platform callbacks ---- */

/* Takes everything, so DBCN console_write must report all n bytes. */
static size_t cb_console_write(void *opaque, const uint8_t *buf, size_t n)
{
    (void)opaque;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= buf[i]; /* touch every byte */
    seen.wsum = x;
    seen.wbuf = buf;
    seen.wlen = n;
    seen.wbyte = n ? buf[0] : 0;
    seen.writes++;
    return n;
}

static size_t cb_console_read(void *opaque, uint8_t *buf, size_t n)
{
    (void)opaque;
    size_t k = n < seen.console_pending ? n : seen.console_pending;
    for (size_t i = 0; i < k; i++)
        buf[i] = (uint8_t)('a' + i % 26);
    seen.console_pending -= k;
    seen.rbuf = buf;
    seen.rlen = n;
    seen.rgot = k;
    seen.reads++;
    return k;
}

static void cb_reset(void *opaque, enum sbi_reset_type type, uint32_t reason)
{
    (void)opaque;
    seen.resets++;
    seen.reset_type = type;
    seen.reset_reason = reason;
}

/* ---- the helper thread: the other harts' threads ---- */

static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t helper_cond = PTHREAD_COND_INITIALIZER;
static _Atomic bool helper_active;
static bool helper_busy;
static _Atomic unsigned helper_caller, helper_nharts;

static void *helper_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&helper_lock);
        while (!atomic_load(&helper_active))
            pthread_cond_wait(&helper_cond, &helper_lock);
        helper_busy = true;
        pthread_mutex_unlock(&helper_lock);
        while (atomic_load(&helper_active)) {
            unsigned caller = atomic_load(&helper_caller), n = atomic_load(&helper_nharts);
            for (unsigned i = 0; i < n; i++) {
                struct hart *h = harts[i];
                /* A running hart serves requests at its next instruction:
                 * hart_run with no budget does just that. */
                if (i != caller && atomic_load(&h->arch.state) == HART_STARTED &&
                    atomic_load(&h->requests))
                    hart_run(h, 0);
            }
            sched_yield();
        }
        pthread_mutex_lock(&helper_lock);
        helper_busy = false;
        pthread_cond_broadcast(&helper_cond);
        pthread_mutex_unlock(&helper_lock);
    }
    return NULL;
}

static void helper_start(unsigned caller, unsigned nharts)
{
    pthread_mutex_lock(&helper_lock);
    atomic_store(&helper_caller, caller);
    atomic_store(&helper_nharts, nharts);
    atomic_store(&helper_active, true);
    pthread_cond_broadcast(&helper_cond);
    pthread_mutex_unlock(&helper_lock);
}

static void helper_stop(void)
{
    pthread_mutex_lock(&helper_lock);
    atomic_store(&helper_active, false);
    while (helper_busy)
        pthread_cond_wait(&helper_cond, &helper_lock);
    pthread_mutex_unlock(&helper_lock);
}

static void setup(void)
{
    FUZZ_SETUP(guest_mem_init(&mem, RAM_BASE, RAM_SIZE) == 0);
    timebase_init(&tb);
    for (unsigned i = 0; i < MAX_HARTS; i++) {
        FUZZ_SETUP(posix_memalign((void **)&harts[i], 4096, sizeof(struct hart)) == 0);
        FUZZ_SETUP(hart_init(harts[i], i, &mem, &tb, RAM_BASE) == 0);
    }
    plat = (struct sbi_platform){ .harts = harts, .console_write = cb_console_write,
                                  .console_read = cb_console_read, .system_reset = cb_reset };
    pthread_t t;
    FUZZ_SETUP(pthread_create(&t, NULL, helper_main, NULL) == 0);
    pthread_detach(t);
}

/* The state the built-in SBI boot leaves (virt.c): hart 0 started in S-mode,
 * the others stopped. */
static void reset_machine(unsigned nharts)
{
    FUZZ_SETUP(madvise(mem.ram, RAM_SIZE, MADV_DONTNEED) == 0);
    plat.nharts = nharts;
    for (unsigned i = 0; i < MAX_HARTS; i++) {
        struct hart *h = harts[i];
        hart_reset(h, RAM_BASE);
        sbi_prepare_hart(h);
        hart_set_priv(h, PRIV_S);
        for (unsigned r = 1; r < 32; r++)
            h->arch.x[r] = 0x1111111111111111ull * r; /* recognisable values */
        atomic_store(&h->arch.state, i == 0 ? HART_STARTED : HART_STOPPED);
        model[i].state = atomic_load(&h->arch.state);
        model[i].start_addr = model[i].start_opaque = 0;
    }
}

static bool in_ram(uint64_t pa, uint64_t len)
{
    return guest_mem_ram_ptr(&mem, pa, len) != NULL;
}

/* The harts a (mask, base) pair names (SBI spec 3.1), or false if the
 * pair names a hart that does not exist. */
static bool mask_targets(uint64_t mask, uint64_t base, unsigned nharts, bool out[MAX_HARTS])
{
    memset(out, 0, MAX_HARTS * sizeof(bool));
    if (base == ~0ull) {
        for (unsigned i = 0; i < nharts; i++)
            out[i] = true;
        return true;
    }
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!((mask >> bit) & 1))
            continue;
        if (base + bit < base || base + bit >= nharts)
            return false;
        out[base + bit] = true;
    }
    return true;
}

static bool known_extension(uint64_t eid)
{
    switch (eid) {
    case EXT_BASE: case EXT_TIME: case EXT_IPI: case EXT_RFENCE: case EXT_HSM: case EXT_SRST:
    case EXT_DBCN: case EXT_LEGACY_PUTCHAR: case EXT_LEGACY_GETCHAR:
        return true;
    }
    return false;
}

#define EXPECT_ERR(e) FUZZ_CHECK(err == (e), "eid 0x%llx fid %u: error %lld, expected %d", \
                                 (unsigned long long)eid, fid, (long long)err, (e))

static void do_ecall(unsigned self, unsigned nharts, uint64_t eid, unsigned fid, uint64_t a0,
                     uint64_t a1, uint64_t a2)
{
    struct hart *h = harts[self];
    h->arch.x[17] = eid;
    h->arch.x[16] = fid;
    h->arch.x[10] = a0;
    h->arch.x[11] = a1;
    h->arch.x[12] = a2;

    uint64_t before[MAX_HARTS][33], mip_before[MAX_HARTS], epoch_before[MAX_HARTS];
    for (unsigned i = 0; i < MAX_HARTS; i++) {
        memcpy(before[i], harts[i]->arch.x, sizeof(before[i]));
        mip_before[i] = atomic_load(&harts[i]->arch.mip);
        epoch_before[i] = harts[i]->code_epoch;
    }
    uint64_t pc = h->arch.pc;
    enum priv_mode priv = h->arch.priv;
    size_t pending = seen.console_pending;
    memset(&seen, 0, sizeof(seen));
    seen.console_pending = pending;

    /* Only remote fences wait for other harts; waking the helper for
     * every call would cost a context switch each. */
    bool fence = eid == EXT_RFENCE;
    if (fence)
        helper_start(self, nharts);
    bool handled = sbi_handle_ecall(h, &plat);
    if (fence)
        helper_stop();

    if (getenv("NIMBUS_FUZZ_VERBOSE"))
        fprintf(stderr, "sbi: hart %u eid 0x%llx fid %u a0 0x%llx a1 0x%llx a2 0x%llx -> %lld 0x%llx\n",
                self, (unsigned long long)eid, fid, (unsigned long long)a0, (unsigned long long)a1,
                (unsigned long long)a2, (long long)h->arch.x[10], (unsigned long long)h->arch.x[11]);
    FUZZ_CHECK(handled, "ecall not handled");
    FUZZ_CHECK(h->arch.pc == pc && h->arch.priv == priv, "pc or privilege changed");
    bool legacy = eid == EXT_LEGACY_PUTCHAR || eid == EXT_LEGACY_GETCHAR;
    for (unsigned i = 0; i < MAX_HARTS; i++)
        for (unsigned r = 0; r < 32; r++) {
            if (i == self && (r == 10 || (r == 11 && !legacy)))
                continue;
            FUZZ_CHECK(harts[i]->arch.x[r] == before[i][r], "hart %u x%u changed by hart %u's call", i,
                       r, self);
        }
    int64_t err = (int64_t)h->arch.x[10];
    uint64_t val = h->arch.x[11];
    if (!legacy)
        FUZZ_CHECK(err <= 0 && err >= ERR_NO_SHMEM, "error %lld is not an SBI error code",
                   (long long)err);

    bool targets[MAX_HARTS];
    switch (eid) {
    case EXT_LEGACY_PUTCHAR:
        FUZZ_CHECK(h->arch.x[10] == 0 && seen.writes == 1 && seen.wlen == 1 &&
                   seen.wbyte == (uint8_t)a0, "legacy putchar");
        return;
    case EXT_LEGACY_GETCHAR:
        FUZZ_CHECK(seen.reads == 1 && seen.rlen == 1, "legacy getchar");
        FUZZ_CHECK(h->arch.x[10] == (seen.rgot ? (uint64_t)'a' : ~0ull), "legacy getchar value");
        return;
    case EXT_BASE:
        if (fid > 6) {
            EXPECT_ERR(ERR_NOT_SUPPORTED);
            return;
        }
        EXPECT_ERR(SBI_SUCCESS);
        if (fid == 0)
            FUZZ_CHECK(val >> 24 == 2 && (val & 0x80000000ull) == 0, "spec version 0x%llx",
                       (unsigned long long)val);
        if (fid == 3)
            FUZZ_CHECK(val == (known_extension(a0) ? 1 : 0), "probe 0x%llx says %llu",
                       (unsigned long long)a0, (unsigned long long)val);
        return;
    case EXT_TIME:
        if (fid != 0) {
            EXPECT_ERR(ERR_NOT_SUPPORTED);
            return;
        }
        EXPECT_ERR(SBI_SUCCESS);
        uint64_t cmp = 0;
        FUZZ_CHECK(hart_csr_read(h, CSR_STIMECMP, &cmp) == 0 && cmp == a0, "set_timer");
        return;
    case EXT_IPI:
    case EXT_RFENCE: {
        bool ipi = eid == EXT_IPI;
        if ((ipi && fid != 0) || (!ipi && fid > 2)) {
            /* RFENCE 3-6 are the hypervisor fences: no H extension here */
            EXPECT_ERR(ERR_NOT_SUPPORTED);
            return;
        }
        bool ok = mask_targets(a0, a1, nharts, targets);
        EXPECT_ERR(ok ? SBI_SUCCESS : ERR_INVALID_PARAM);
        for (unsigned i = 0; i < MAX_HARTS; i++) {
            struct hart *t = harts[i];
            if (ipi) {
                bool ssip = atomic_load(&t->arch.mip) & MIP_SSIP;
                bool want = (mip_before[i] & MIP_SSIP) || (ok && targets[i]);
                FUZZ_CHECK(ssip == want, "IPI: hart %u SSIP %d, expected %d", i, ssip, want);
                continue;
            }
            /* A fence completes before the call returns: nothing stays
             * posted, and each started target did fence.i. */
            FUZZ_CHECK(!(atomic_load(&t->requests) & (HART_REQ_TLB_FLUSH | HART_REQ_FENCE_I)),
                       "RFENCE: hart %u still has a fence request", i);
            if (ok && targets[i] && fid == 0 && model[i].state == HART_STARTED)
                FUZZ_CHECK(t->code_epoch > epoch_before[i], "remote fence.i skipped hart %u", i);
        }
        return;
    }
    case EXT_HSM:
        switch (fid) {
        case 0: {
            if (a0 >= nharts) {
                EXPECT_ERR(ERR_INVALID_PARAM);
                return;
            }
            bool bad_addr = !in_ram(a1, 2), busy = model[a0].state != HART_STOPPED;
            if (bad_addr && busy)
                FUZZ_CHECK(err == ERR_INVALID_ADDRESS || err == ERR_ALREADY_AVAILABLE,
                           "hart_start: error %lld", (long long)err);
            else if (bad_addr)
                EXPECT_ERR(ERR_INVALID_ADDRESS);
            else if (busy)
                EXPECT_ERR(ERR_ALREADY_AVAILABLE);
            else
                EXPECT_ERR(SBI_SUCCESS);
            if (err == SBI_SUCCESS) {
                model[a0].state = HART_START_PENDING;
                model[a0].start_addr = a1;
                model[a0].start_opaque = a2;
            }
            break;
        }
        case 1:
            EXPECT_ERR(SBI_SUCCESS);
            model[self].state = HART_STOPPED;
            break;
        case 2:
            if (a0 >= nharts) {
                EXPECT_ERR(ERR_INVALID_PARAM);
                return;
            }
            EXPECT_ERR(SBI_SUCCESS);
            /* SBI spec table 9.1: STARTED 0, STOPPED 1, START_PENDING 2 */
            static const uint64_t status[] = { [HART_STARTED] = 0, [HART_STOPPED] = 1,
                                               [HART_START_PENDING] = 2 };
            FUZZ_CHECK(val == status[model[a0].state], "hart_get_status(%llu) = %llu",
                       (unsigned long long)a0, (unsigned long long)val);
            return;
        case 3:
            if ((uint32_t)a0 == 0)
                EXPECT_ERR(SBI_SUCCESS);
            else
                FUZZ_CHECK(err == ERR_NOT_SUPPORTED || err == ERR_INVALID_PARAM,
                           "hart_suspend type 0x%x: %lld", (unsigned)a0, (long long)err);
            return;
        default:
            EXPECT_ERR(ERR_NOT_SUPPORTED);
            return;
        }
        for (unsigned i = 0; i < MAX_HARTS; i++)
            FUZZ_CHECK(atomic_load(&harts[i]->arch.state) == model[i].state,
                       "HSM: hart %u state %d, expected %d", i, atomic_load(&harts[i]->arch.state),
                       model[i].state);
        return;
    case EXT_SRST:
        if (fid != 0) {
            EXPECT_ERR(ERR_NOT_SUPPORTED);
            return;
        }
        if ((uint32_t)a0 > SBI_RESET_WARM) {
            EXPECT_ERR(ERR_INVALID_PARAM);
            FUZZ_CHECK(seen.resets == 0, "reserved reset type reached the platform");
            return;
        }
        EXPECT_ERR(SBI_SUCCESS);
        FUZZ_CHECK(seen.resets == 1 && seen.reset_type == (uint32_t)a0 &&
                   seen.reset_reason == (uint32_t)a1, "system_reset arguments");
        return;
    case EXT_DBCN:
        if (fid == 2) {
            EXPECT_ERR(SBI_SUCCESS);
            FUZZ_CHECK(seen.writes == 1 && seen.wlen == 1 && seen.wbyte == (uint8_t)a0,
                       "console_write_byte");
            return;
        }
        if (fid > 2) {
            /* An unknown function is NOT_SUPPORTED whatever its arguments
             * (SBI spec 3: binary encoding). */
            FUZZ_CHECK_KNOWN("sbi-dbcn-unknown-fid", err == ERR_NOT_SUPPORTED,
                             "DBCN fid %u with a2 0x%llx: error %lld, expected %d", fid,
                             (unsigned long long)a2, (long long)err, ERR_NOT_SUPPORTED);
            return;
        }
        if (a2 != 0 || !in_ram(a1, a0)) {
            EXPECT_ERR(ERR_INVALID_PARAM);
            FUZZ_CHECK(seen.writes == 0 && seen.reads == 0, "console touched on a bad range");
            return;
        }
        EXPECT_ERR(SBI_SUCCESS);
        uint8_t *want = mem.ram + (a1 - RAM_BASE);
        if (fid == 0) {
            FUZZ_CHECK(seen.writes == 1 && seen.wbuf == want && seen.wlen == a0 && val == a0,
                       "console_write(%llu, 0x%llx)", (unsigned long long)a0,
                       (unsigned long long)a1);
        } else {
            FUZZ_CHECK(seen.reads == 1 && seen.rbuf == want && seen.rlen == a0 && val == seen.rgot,
                       "console_read(%llu, 0x%llx)", (unsigned long long)a0,
                       (unsigned long long)a1);
        }
        return;
    default:
        EXPECT_ERR(ERR_NOT_SUPPORTED);
        FUZZ_CHECK(seen.writes + seen.reads + seen.resets == 0, "unknown call had an effect");
        return;
    }
}

/* The hart's thread gets to run: hart_run() with no budget serves requests
 * and applies a pending HSM start (SBI spec 9.1: S-mode, pc = start_addr,
 * a0 = hartid, a1 = opaque). */
static void run_hart(unsigned i)
{
    struct hart *h = harts[i];
    int state = atomic_load(&h->arch.state);
    hart_run(h, 0);
    FUZZ_CHECK(atomic_load(&h->requests) == 0, "hart %u kept requests after running", i);
    if (state != HART_START_PENDING) {
        FUZZ_CHECK(atomic_load(&h->arch.state) == state, "hart %u changed state by running", i);
        return;
    }
    FUZZ_CHECK(atomic_load(&h->arch.state) == HART_STARTED, "hart %u did not start", i);
    FUZZ_CHECK(h->arch.x[10] == i && h->arch.priv == PRIV_S && h->arch.satp == 0, "hart %u start state", i);
    /* A failed hart_start must leave a pending start alone. */
    FUZZ_CHECK_KNOWN("sbi-hsm-start-clobber",
               h->arch.pc == model[i].start_addr && h->arch.x[11] == model[i].start_opaque,
               "hart %u started at 0x%llx opaque 0x%llx; hart_start asked for 0x%llx opaque 0x%llx",
               i, (unsigned long long)h->arch.pc, (unsigned long long)h->arch.x[11],
               (unsigned long long)model[i].start_addr, (unsigned long long)model[i].start_opaque);
    model[i].state = HART_STARTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!harts[0])
        setup();
    struct fuzz_in in = { data, size };
    unsigned nharts = 1 + fuzz_u8(&in) % MAX_HARTS;
    reset_machine(nharts);
    memset(&seen, 0, sizeof(seen));
    while (in.n >= RECORD) {
        uint8_t op = fuzz_u8(&in);
        unsigned who = fuzz_u8(&in) % nharts;
        uint64_t eid = fuzz_u64(&in, 4);
        unsigned fid = (unsigned)fuzz_u64(&in, 4);
        uint64_t a0 = fuzz_u64(&in, 8), a1 = fuzz_u64(&in, 8), a2 = fuzz_u64(&in, 8);
        if (op & 1) {
            run_hart(who);
            continue;
        }
        /* only a started hart can make a call */
        unsigned self = nharts;
        for (unsigned k = 0; k < nharts && self == nharts; k++)
            if (model[(who + k) % nharts].state == HART_STARTED)
                self = (who + k) % nharts;
        if (self == nharts)
            continue;
        seen.console_pending = op >> 1;
        do_ecall(self, nharts, eid, fid, a0, a1, a2);
    }
    return 0;
}
