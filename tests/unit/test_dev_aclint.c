/* Unit tests for the ACLINT (CLINT layout): msip and mtimecmp callbacks,
 * register read-back, 32-bit halves, mtime following the timebase (and
 * standing still while it is stopped: a paused VM), range and size checks,
 * reset, FDT node. */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/aclint.h"
#include "mem/guest_mem.h"

#include "check.h"

#define BASE ACLINT_VIRT_BASE
#define NHARTS 3

struct harts {
    int msip[NHARTS];
    uint64_t mtimecmp[NHARTS];
    int msip_calls, cmp_calls;
    unsigned last_hart;
};

static void set_msip(void *opaque, unsigned hart, bool level)
{
    struct harts *h = opaque;
    h->msip_calls++;
    h->last_hart = hart;
    if (hart < NHARTS)
        h->msip[hart] = level;
}

static void set_mtimecmp(void *opaque, unsigned hart, uint64_t value)
{
    struct harts *h = opaque;
    h->cmp_calls++;
    h->last_hart = hart;
    if (hart < NHARTS)
        h->mtimecmp[hart] = value;
}

struct rig {
    struct guest_mem mem;
    struct timebase tb;
    struct harts h;
    struct aclint *a;
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    timebase_init(&r->tb);
    struct aclint_host host = { .set_msip = set_msip, .set_mtimecmp = set_mtimecmp, .opaque = &r->h };
    int ret = aclint_create(&r->mem, BASE, NHARTS, &r->tb, &host, &r->a);
    CHECK_EQ(ret, 0);
    if (ret)
        exit(1);
}

static uint64_t rd(struct rig *r, uint64_t off, unsigned size)
{
    uint64_t v = 0xdeadbeef;
    CHECK(guest_mem_mmio_read(&r->mem, BASE + off, size, &v));
    return v;
}

static void wr(struct rig *r, uint64_t off, unsigned size, uint64_t v)
{
    CHECK(guest_mem_mmio_write(&r->mem, BASE + off, size, v));
}

static void test_msip(void)
{
    struct rig r;
    rig_init(&r);
    CHECK_EQ(rd(&r, 0x4, 4), 0);
    wr(&r, 0x4, 4, 1);
    CHECK_EQ(r.h.msip_calls, 1);
    CHECK_EQ(r.h.last_hart, 1);
    CHECK_EQ(r.h.msip[1], 1);
    CHECK_EQ(r.h.msip[0], 0);
    CHECK_EQ(rd(&r, 0x4, 4), 1);
    CHECK_EQ(rd(&r, 0x0, 4), 0);
    wr(&r, 0x4, 4, 0xfffffffe);      /* only bit 0 counts */
    CHECK_EQ(r.h.msip[1], 0);
    CHECK_EQ(rd(&r, 0x4, 4), 0);
    wr(&r, 0x8, 4, 3);
    CHECK_EQ(r.h.msip[2], 1);
    CHECK_EQ(rd(&r, 0x8, 4), 1);

    /* out-of-range hart: reads 0, no callback */
    int calls = r.h.msip_calls;
    wr(&r, 4 * NHARTS, 4, 1);
    CHECK_EQ(r.h.msip_calls, calls);
    CHECK_EQ(rd(&r, 4 * NHARTS, 4), 0);
    wr(&r, 0x3ffc, 4, 1);
    CHECK_EQ(r.h.msip_calls, calls);

    /* wrong size or alignment faults */
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + 0x0, 8, &v));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + 0x0, 1, 1));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + 0x2, 4, 1));
    CHECK_EQ(r.h.msip_calls, calls);
    aclint_destroy(r.a);
}

static void test_mtimecmp(void)
{
    struct rig r;
    rig_init(&r);
    const uint64_t cmp0 = ACLINT_MTIMECMP_OFFSET, cmp2 = ACLINT_MTIMECMP_OFFSET + 16;

    /* reset value: never fires */
    CHECK_EQ(rd(&r, cmp0, 8), UINT64_MAX);
    CHECK_EQ(rd(&r, cmp2, 8), UINT64_MAX);

    wr(&r, cmp2, 8, 0x1122334455667788ull);
    CHECK_EQ(r.h.cmp_calls, 1);
    CHECK_EQ(r.h.last_hart, 2);
    CHECK_EQ(r.h.mtimecmp[2], 0x1122334455667788ull);
    CHECK_EQ(rd(&r, cmp2, 8), 0x1122334455667788ull);
    CHECK_EQ(rd(&r, cmp2, 4), 0x55667788);
    CHECK_EQ(rd(&r, cmp2 + 4, 4), 0x11223344);
    CHECK_EQ(rd(&r, cmp0, 8), UINT64_MAX);   /* other harts untouched */

    /* RV32-style update through halves: each write reports the full value */
    wr(&r, cmp0, 4, 0xffffffff);
    CHECK_EQ(r.h.mtimecmp[0], UINT64_MAX);
    wr(&r, cmp0 + 4, 4, 0x00000001);
    CHECK_EQ(r.h.mtimecmp[0], 0x00000001ffffffffull);
    wr(&r, cmp0, 4, 0x23456789);
    CHECK_EQ(r.h.mtimecmp[0], 0x0000000123456789ull);
    CHECK_EQ(rd(&r, cmp0, 8), 0x0000000123456789ull);
    CHECK_EQ(r.h.cmp_calls, 4);

    /* out-of-range hart and bad accesses */
    int calls = r.h.cmp_calls;
    wr(&r, ACLINT_MTIMECMP_OFFSET + 8 * NHARTS, 8, 5);
    CHECK_EQ(rd(&r, ACLINT_MTIMECMP_OFFSET + 8 * NHARTS, 8), 0);
    wr(&r, 0xbff0, 8, 5);
    CHECK_EQ(r.h.cmp_calls, calls);
    uint64_t v;
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + cmp0 + 4, 8, 1));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + cmp0, 2, 1));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + cmp0, 1, &v));
    CHECK_EQ(r.h.cmp_calls, calls);
    aclint_destroy(r.a);
}

static void test_mtime(void)
{
    struct rig r;
    rig_init(&r);
    uint64_t t0 = rd(&r, ACLINT_MTIME_OFFSET, 8);
    uint64_t tb0 = timebase_now(&r.tb);
    CHECK(tb0 >= t0);
    CHECK(tb0 - t0 < TIMEBASE_HZ);           /* same clock, well under a second apart */
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 5 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    uint64_t t1 = rd(&r, ACLINT_MTIME_OFFSET, 8);
    CHECK(t1 - t0 >= 5 * TIMEBASE_HZ / 1000); /* 5 ms at 10 MHz = 50000 ticks */
    CHECK(t1 - t0 < 5 * TIMEBASE_HZ);

    /* 32-bit halves */
    uint64_t lo = rd(&r, ACLINT_MTIME_OFFSET, 4);
    uint64_t hi = rd(&r, ACLINT_MTIME_OFFSET + 4, 4);
    uint64_t t2 = (hi << 32) | lo;
    CHECK(t2 >= t1);
    CHECK(t2 - t1 < TIMEBASE_HZ);

    /* writes are ignored (documented) */
    wr(&r, ACLINT_MTIME_OFFSET, 8, 0);
    uint64_t t3 = rd(&r, ACLINT_MTIME_OFFSET, 8);
    CHECK(t3 >= t2);
    CHECK_EQ(r.h.cmp_calls + r.h.msip_calls, 0);
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + ACLINT_MTIME_OFFSET + 4, 8, &v));

    /* the rest of the window reads 0 */
    CHECK_EQ(rd(&r, 0xc000, 4), 0);
    aclint_destroy(r.a);
}

/* A pause (timebase_stop .. timebase_start) of 0.3 s of real time and an
 * hour of host time (the timebase's origin moved back), longer than the
 * timer's period:
 * mtime stands still, the timer's deadline is "never" meanwhile (a parked
 * hart does not wake), and after the start mtime goes on from where it
 * stood: the time stopped never shows, the timer is due when it was. */
static void test_mtime_paused(void)
{
    struct rig r;
    rig_init(&r);
    /* Far enough that a loaded host's delays cannot reach it before the
     * stop; the pause is an hour of host time. */
    const uint64_t period = 60 * TIMEBASE_HZ;
    uint64_t cmp = rd(&r, ACLINT_MTIME_OFFSET, 8) + period;
    wr(&r, ACLINT_MTIMECMP_OFFSET, 8, cmp);
    CHECK_EQ(r.h.mtimecmp[0], cmp);

    timebase_stop(&r.tb);
    CHECK(timebase_stopped(&r.tb));
    uint64_t t0 = rd(&r, ACLINT_MTIME_OFFSET, 8);
    CHECK(t0 < cmp);
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 300 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    r.tb.offset_ns -= 3600ll * 1000000000ll;   /* and an hour more of host time */
    CHECK_EQ(rd(&r, ACLINT_MTIME_OFFSET, 8), t0);
    CHECK_EQ(rd(&r, ACLINT_MTIME_OFFSET + 4, 4), t0 >> 32);
    CHECK_EQ(timebase_ticks_to_host_ns(&r.tb, cmp), INT64_MAX);   /* not due */
    CHECK_EQ(timebase_ticks_to_host_ns(&r.tb, t0), 0);            /* due already */
    timebase_stop(&r.tb);                                          /* no-op */
    CHECK_EQ(timebase_now(&r.tb), t0);

    int64_t h0 = timebase_host_ns();
    timebase_start(&r.tb);
    uint64_t t1 = rd(&r, ACLINT_MTIME_OFFSET, 8);
    int64_t h1 = timebase_host_ns();
    CHECK(!timebase_stopped(&r.tb));
    CHECK(t1 >= t0);
    CHECK_MSG(t1 - t0 <= (uint64_t)(h1 - h0) / TIMEBASE_NS_PER_TICK + 1,
              "mtime moved %llu ticks over a start that took %lld ns",
              (unsigned long long)(t1 - t0), (long long)(h1 - h0));
    /* The deadline is where it was in guest time: period - (t0 - start)
     * from t0, i.e. still in the future, not hours past. */
    int64_t due = timebase_ticks_to_host_ns(&r.tb, cmp);
    CHECK(due > h0 && due <= h1 + (int64_t)(period * TIMEBASE_NS_PER_TICK));
    timebase_start(&r.tb);                                         /* no-op */
    CHECK(timebase_ticks_to_host_ns(&r.tb, cmp) == due);

    /* set_now while stopped: stands at the value given until the start. */
    timebase_stop(&r.tb);
    timebase_set_now(&r.tb, 12345);
    CHECK_EQ(rd(&r, ACLINT_MTIME_OFFSET, 8), 12345);
    timebase_start(&r.tb);
    CHECK(rd(&r, ACLINT_MTIME_OFFSET, 8) - 12345 < TIMEBASE_HZ);
    CHECK_EQ(r.h.cmp_calls, 1);   /* the guest's write only */
    aclint_destroy(r.a);
}

static void test_reset(void)
{
    struct rig r;
    rig_init(&r);
    wr(&r, 0x0, 4, 1);
    wr(&r, ACLINT_MTIMECMP_OFFSET + 8, 8, 1234);
    r.h.msip_calls = r.h.cmp_calls = 0;
    aclint_reset(r.a);
    CHECK_EQ(r.h.msip_calls, NHARTS);
    CHECK_EQ(r.h.cmp_calls, NHARTS);
    for (unsigned h = 0; h < NHARTS; h++) {
        CHECK_EQ(r.h.msip[h], 0);
        CHECK_EQ(r.h.mtimecmp[h], UINT64_MAX);
        CHECK_EQ(rd(&r, 4 * h, 4), 0);
        CHECK_EQ(rd(&r, ACLINT_MTIMECMP_OFFSET + 8 * h, 8), UINT64_MAX);
    }
    aclint_destroy(r.a);
}

static void test_create_errors(void)
{
    struct timebase tb;
    timebase_init(&tb);
    struct harts h;
    struct aclint_host host = { .set_msip = set_msip, .set_mtimecmp = set_mtimecmp, .opaque = &h };
    struct aclint_host bad = { .set_msip = set_msip, .opaque = &h };
    struct aclint *a = (void *)1;
    CHECK_EQ(aclint_create(NULL, BASE, 0, &tb, &host, &a), -EINVAL);
    CHECK(a == NULL);
    CHECK_EQ(aclint_create(NULL, BASE, ACLINT_MAX_HARTS + 1, &tb, &host, &a), -EINVAL);
    CHECK_EQ(aclint_create(NULL, BASE, 1, NULL, &host, &a), -EINVAL);
    CHECK_EQ(aclint_create(NULL, BASE, 1, &tb, &bad, &a), -EINVAL);
    CHECK_EQ(aclint_create(NULL, BASE, ACLINT_MAX_HARTS, &tb, &host, &a), 0);
    aclint_destroy(a);
    aclint_destroy(NULL);
}

static void test_fdt(void)
{
    struct rig r;
    rig_init(&r);
    char buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 9, .nharts = NHARTS };
    for (unsigned h = 0; h < NHARTS; h++)
        ctx.cpu_intc_phandle[h] = 100 + h;
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(fdt_begin_node(buf, "soc"), 0);
    CHECK_EQ(aclint_fdt(r.a, &ctx), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);

    int node = fdt_path_offset(buf, "/soc/clint@2000000");
    CHECK(node >= 0);
    CHECK_EQ(fdt_node_check_compatible(buf, node, "riscv,clint0"), 0);
    CHECK_EQ(fdt_node_check_compatible(buf, node, "sifive,clint0"), 0);
    int len = 0;
    const char *compat = fdt_getprop(buf, node, "compatible", &len);
    CHECK(compat && strcmp(compat, "sifive,clint0") == 0);   /* QEMU's order */
    const fdt32_t *reg = fdt_getprop(buf, node, "reg", &len);
    CHECK(reg && len == 16);
    if (reg && len == 16) {
        CHECK_EQ(fdt32_to_cpu(reg[1]), 0x2000000);
        CHECK_EQ(fdt32_to_cpu(reg[3]), 0x10000);
    }
    const fdt32_t *ie = fdt_getprop(buf, node, "interrupts-extended", &len);
    CHECK(ie && len == NHARTS * 16);
    if (ie && len == NHARTS * 16) {
        for (unsigned h = 0; h < NHARTS; h++) {
            CHECK_EQ(fdt32_to_cpu(ie[h * 4 + 0]), 100 + h);
            CHECK_EQ(fdt32_to_cpu(ie[h * 4 + 1]), 3);
            CHECK_EQ(fdt32_to_cpu(ie[h * 4 + 2]), 100 + h);
            CHECK_EQ(fdt32_to_cpu(ie[h * 4 + 3]), 7);
        }
    }
    /* more harts than the context describes */
    ctx.nharts = NHARTS - 1;
    CHECK_EQ(aclint_fdt(r.a, &ctx), -EINVAL);
    aclint_destroy(r.a);
}

int main(void)
{
    test_msip();
    test_mtimecmp();
    test_mtime();
    test_mtime_paused();
    test_reset();
    test_create_errors();
    test_fdt();
    return check_summary("aclint");
}
