/* Unit tests for the sun6i watchdog: the registers as Linux's sunxi_wdt
 * writes them, the key on CTRL, the interval table, expiry on the guest's
 * clock (moved by hand, so nothing sleeps), one-shot counting, the
 * interrupt mode, reset, save/load relative to the guest's clock (and bad
 * sections refused), a pause longer than the count (the guest's clock
 * stopped: no expiry, the count saved and loaded as it stood), the FDT
 * node. */
#include <time.h>
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/sunxi_wdt.h"
#include "mem/guest_mem.h"
#include "state/state.h"

#include "check.h"

#define BASE SUNXI_WDT_VIRT_BASE
#define HZ   TIMEBASE_HZ
#define SEC  1000000000ll

enum { IRQ_EN = SUNXI_WDT_IRQ_EN, IRQ_STA = SUNXI_WDT_IRQ_STA, CTRL = SUNXI_WDT_CTRL,
       CFG = SUNXI_WDT_CFG, MODE = SUNXI_WDT_MODE };

static char err[256];

struct rig {
    struct guest_mem mem;
    struct timebase tb;
    struct sunxi_wdt *w;
    int level;
    int deadline_changed;
};

static void fake_set_level(void *controller, unsigned irq, bool level)
{
    (void)irq;
    ((struct rig *)controller)->level = level;
}

static void fake_deadline_changed(void *opaque)
{
    ((struct rig *)opaque)->deadline_changed++;
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    timebase_init(&r->tb);
    struct irq_line line = { .set_level = fake_set_level, .controller = r, .irq = 13 };
    struct sunxi_wdt_host host = { .deadline_changed = fake_deadline_changed, .opaque = r };
    int ret = sunxi_wdt_create(&r->mem, BASE, line, &r->tb, &host, &r->w);
    CHECK_EQ(ret, 0);
    if (ret)
        exit(1);
}

static void rig_free(struct rig *r)
{
    sunxi_wdt_destroy(r->w);
    guest_mem_destroy(&r->mem);
}

static uint32_t rd(struct rig *r, uint64_t off)
{
    uint64_t v = 0xdeadbeef;
    CHECK(guest_mem_mmio_read(&r->mem, BASE + off, 4, &v));
    return (uint32_t)v;
}

static void wr(struct rig *r, uint64_t off, uint32_t v)
{
    CHECK(guest_mem_mmio_write(&r->mem, BASE + off, 4, v));
}

/* Guest time moves on by `ns` (the timebase's origin moves back). */
static void advance(struct rig *r, int64_t ns)
{
    r->tb.offset_ns -= ns;
}

/* ticks_left is `want` (ticks), less whatever real time passed meanwhile
 * (at most 0.2 s on a loaded host). */
static bool left_about(struct rig *r, uint64_t want)
{
    uint64_t left = sunxi_wdt_ticks_left(r->w);
    return left <= want && left + HZ / 5 >= want;
}

/* What the driver's sunxi_wdt_start does for `timeout` (a register value). */
static void driver_start(struct rig *r, unsigned intv)
{
    wr(r, MODE, (rd(r, MODE) & ~0xf0u) | intv << 4);
    wr(r, CTRL, SUNXI_WDT_RESTART);
    wr(r, CFG, (rd(r, CFG) & ~3u) | SUNXI_WDT_CFG_SYSTEM);
    wr(r, MODE, rd(r, MODE) | SUNXI_WDT_MODE_EN);
}

static void test_registers(void)
{
    struct rig r;
    rig_init(&r);
    for (unsigned off = 0; off < 0x20; off += 4)
        CHECK_EQ(rd(&r, off), 0);
    wr(&r, IRQ_EN, 0xffffffff);
    wr(&r, CFG, 0xffffffff);
    wr(&r, MODE, 0xfffffff0);   /* interval bits only: no count */
    CHECK_EQ(rd(&r, IRQ_EN), 1);
    CHECK_EQ(rd(&r, CFG), 3);
    CHECK_EQ(rd(&r, MODE), 0xf0);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);
    wr(&r, CTRL, SUNXI_WDT_RESTART);   /* a restart while disabled starts nothing */
    CHECK_EQ(rd(&r, CTRL), 0);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);
    wr(&r, IRQ_STA, 1);                /* nothing to clear */
    CHECK_EQ(rd(&r, IRQ_STA), 0);
    wr(&r, 0x08, 0x1234);              /* a hole: ignored */
    CHECK_EQ(rd(&r, 0x08), 0);
    CHECK_EQ(rd(&r, 0x800), 0);
    /* Only aligned 32-bit accesses. */
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + MODE, 1, &v));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + MODE, 2, &v));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + MODE, 8, &v));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + MODE + 2, 4, &v));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + MODE, 1, 1));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + MODE + 1, 4, 1));
    CHECK_EQ(rd(&r, MODE), 0xf0);
    CHECK_EQ(r.level, 0);
    rig_free(&r);
}

static void test_intervals(void)
{
    static const unsigned halves[16] = { 1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32,
                                         32, 32, 32, 32 };
    for (unsigned v = 0; v < 16; v++) {
        struct rig r;
        rig_init(&r);
        driver_start(&r, v);
        CHECK_MSG(left_about(&r, halves[v] * HZ / 2), "INTV_VALUE %u: %llu ticks left", v,
                  (unsigned long long)sunxi_wdt_ticks_left(r.w));
        rig_free(&r);
    }
}

static void test_expiry(void)
{
    struct rig r;
    rig_init(&r);
    driver_start(&r, 0x2);   /* 2 s, as the driver's wdt_timeout_map[2] */
    CHECK_EQ(rd(&r, MODE), 0x21);
    CHECK_EQ(rd(&r, CFG), 1);
    CHECK(left_about(&r, 2 * HZ));
    CHECK(r.deadline_changed > 0);
    /* The deadline is where the guest's clock reaches the count's end. */
    int64_t d = sunxi_wdt_next_deadline_ns(r.w), now = timebase_host_ns();
    CHECK_MSG(d > now + SEC && d <= now + 2 * SEC, "deadline in %lld ns", (long long)(d - now));

    advance(&r, 1500 * 1000000ll);
    CHECK(!sunxi_wdt_poll(r.w));
    CHECK(left_about(&r, HZ / 2));
    /* A ping (the driver's sunxi_wdt_ping) starts the count again ... */
    int calls = r.deadline_changed;
    wr(&r, CTRL, SUNXI_WDT_RESTART);
    CHECK(left_about(&r, 2 * HZ));
    CHECK(r.deadline_changed > calls);
    /* ... a write with another key does not, nor one without RSTART. */
    advance(&r, 1500 * 1000000ll);
    wr(&r, CTRL, (0xa56u << 1) | 1);
    wr(&r, CTRL, 0xa57u << 1);
    CHECK(left_about(&r, HZ / 2));
    /* A new interval while counting waits for the next restart. */
    wr(&r, MODE, 0xb1);
    CHECK(left_about(&r, HZ / 2));
    wr(&r, MODE, 0x21);
    advance(&r, 600 * 1000000ll);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), 0);
    CHECK(sunxi_wdt_next_deadline_ns(r.w) <= timebase_host_ns());
    calls = r.deadline_changed;
    CHECK(sunxi_wdt_poll(r.w));                /* expired: the system reset */
    CHECK(r.deadline_changed > calls);
    /* One-shot: quiet until restarted, though still enabled. */
    CHECK(!sunxi_wdt_poll(r.w));
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);
    CHECK_EQ(sunxi_wdt_next_deadline_ns(r.w), INT64_MAX);
    CHECK_EQ(rd(&r, MODE), 0x21);
    CHECK_EQ(r.level, 0);                      /* reset mode raises no interrupt */
    wr(&r, CTRL, SUNXI_WDT_RESTART);
    CHECK(left_about(&r, 2 * HZ));
    /* The driver's stop: MODE = 0 ends the count. */
    wr(&r, MODE, 0);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);
    advance(&r, 10 * SEC);
    CHECK(!sunxi_wdt_poll(r.w));

    /* Interrupt mode: IRQ_STA, the line with IRQ_EN, write 1 to clear. */
    wr(&r, CFG, SUNXI_WDT_CFG_IRQ);
    wr(&r, MODE, 0x01);                        /* 0.5 s */
    advance(&r, SEC);
    CHECK(!sunxi_wdt_poll(r.w));
    CHECK_EQ(rd(&r, IRQ_STA), 1);
    CHECK_EQ(r.level, 0);
    wr(&r, IRQ_EN, 1);
    CHECK_EQ(r.level, 1);
    wr(&r, IRQ_STA, 0);                        /* writing 0 clears nothing */
    CHECK_EQ(r.level, 1);
    wr(&r, IRQ_STA, 1);
    CHECK_EQ(rd(&r, IRQ_STA), 0);
    CHECK_EQ(r.level, 0);
    /* CFG 0 (or 3): an expiry does nothing. */
    wr(&r, CFG, 0);
    wr(&r, CTRL, SUNXI_WDT_RESTART);
    advance(&r, SEC);
    CHECK(!sunxi_wdt_poll(r.w));
    CHECK_EQ(rd(&r, IRQ_STA), 0);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);

    /* Reset: power-on state. */
    wr(&r, CFG, SUNXI_WDT_CFG_IRQ);
    wr(&r, CTRL, SUNXI_WDT_RESTART);
    advance(&r, SEC);
    sunxi_wdt_poll(r.w);
    CHECK_EQ(r.level, 1);
    wr(&r, CTRL, SUNXI_WDT_RESTART);
    sunxi_wdt_reset(r.w);
    CHECK_EQ(r.level, 0);
    for (unsigned off = 0; off < 0x20; off += 4)
        CHECK_EQ(rd(&r, off), 0);
    CHECK_EQ(sunxi_wdt_ticks_left(r.w), UINT64_MAX);
    advance(&r, 20 * SEC);
    CHECK(!sunxi_wdt_poll(r.w));
    rig_free(&r);
}

static int save(struct rig *r, uint8_t **data, size_t *len)
{
    struct state_writer w;
    state_writer_init_mem(&w);
    int ret = sunxi_wdt_save(r->w, &w);
    CHECK_EQ(ret, 0);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(&w, len);
    *data = malloc(*len);
    memcpy(*data, d, *len);
    state_writer_free(&w);
    return ret;
}

static int load(struct rig *r, const uint8_t *data, size_t len)
{
    struct state_reader rd;
    int ret = state_reader_open_mem(&rd, data, len, err, sizeof(err));
    CHECK_EQ(ret, 0);
    if (ret)
        return ret;
    ret = sunxi_wdt_load(r->w, &rd, err, sizeof(err));
    state_reader_free(&rd);
    return ret;
}

/* The section "sunxi_wdt" with payload byte `off` set to `val` (a fresh
 * stream: valid CRCs). Payload: u32 IRQ_EN, IRQ_STA, CFG, MODE, u8
 * counting, u64 ticks left. */
static void patched(const uint8_t *data, size_t len, size_t off, uint8_t val, uint8_t **out,
                    size_t *outlen)
{
    struct state_reader rd;
    struct state_section s;
    struct state_writer w;
    CHECK_EQ(state_reader_open_mem(&rd, data, len, err, sizeof(err)), 0);
    CHECK_EQ(state_reader_section(&rd, SUNXI_WDT_STATE_TAG, 0, 1, &s, err, sizeof(err)), 0);
    uint8_t p[64];
    CHECK(s.len <= sizeof(p) && off < s.len);
    memcpy(p, s.data, s.len);
    p[off] = val;
    state_writer_init_mem(&w);
    state_begin(&w, SUNXI_WDT_STATE_TAG, 0, SUNXI_WDT_STATE_MAJOR, SUNXI_WDT_STATE_MINOR);
    state_put_bytes(&w, p, s.len);
    CHECK_EQ(state_end(&w), 0);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(&w, outlen);
    *out = malloc(*outlen);
    memcpy(*out, d, *outlen);
    state_writer_free(&w);
    state_reader_free(&rd);
}

static void test_save_load(void)
{
    struct rig a, b;
    uint8_t *s, *p;
    size_t n, pn;
    rig_init(&a);
    driver_start(&a, 0x4);          /* 4 s */
    wr(&a, IRQ_EN, 1);
    advance(&a, 1500 * 1000000ll);
    CHECK_EQ(save(&a, &s, &n), 0);

    /* Another VM whose guest clock reads 1000 s: the count goes on from
     * 2.5 s left on that clock. */
    rig_init(&b);
    timebase_set_now(&b.tb, 1000 * HZ);
    CHECK_EQ(load(&b, s, n), 0);
    CHECK(b.deadline_changed > 0);
    CHECK_EQ(rd(&b, MODE), 0x41);
    CHECK_EQ(rd(&b, CFG), 1);
    CHECK_EQ(rd(&b, IRQ_EN), 1);
    CHECK_MSG(left_about(&b, 5 * HZ / 2), "%llu ticks left after load",
              (unsigned long long)sunxi_wdt_ticks_left(b.w));
    advance(&b, 2 * SEC);
    CHECK(!sunxi_wdt_poll(b.w));
    wr(&b, CTRL, SUNXI_WDT_RESTART);   /* the loaded device is petted as before */
    CHECK(left_about(&b, 4 * HZ));
    advance(&b, 5 * SEC);
    CHECK(sunxi_wdt_poll(b.w));
    free(s);

    /* An expired interrupt-mode watchdog: the line comes back up. */
    wr(&a, CFG, SUNXI_WDT_CFG_IRQ);
    advance(&a, 5 * SEC);
    CHECK(!sunxi_wdt_poll(a.w));
    CHECK_EQ(a.level, 1);
    CHECK_EQ(save(&a, &s, &n), 0);
    sunxi_wdt_reset(b.w);
    CHECK_EQ(load(&b, s, n), 0);
    CHECK_EQ(b.level, 1);
    CHECK_EQ(rd(&b, IRQ_STA), 1);
    CHECK_EQ(sunxi_wdt_ticks_left(b.w), UINT64_MAX);

    /* Refused, and the device left as it was: bits the registers do not
     * have, a count without EN, a count longer than 16 s, a bad flag, a
     * truncated section. */
    static const struct { size_t off; uint8_t val; int want; } bad[] = {
        { 0, 2, -EINVAL },      /* IRQ_EN bit 1 */
        { 4, 3, -EINVAL },      /* IRQ_STA */
        { 8, 4, -EINVAL },      /* CFG bit 2 */
        { 12, 0x43, -EINVAL },  /* MODE bit 1 */
        { 16, 2, -EBADMSG },    /* counting neither 0 nor 1 */
        { 17, 1, -EINVAL },     /* ticks left without a count */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        patched(s, n, bad[i].off, bad[i].val, &p, &pn);
        CHECK_MSG(load(&b, p, pn) == bad[i].want, "patch %zu: %s", i, err);
        CHECK(strstr(err, "sunxi_wdt[0]") != NULL);
        free(p);
        CHECK_EQ(b.level, 1);
        CHECK_EQ(rd(&b, IRQ_STA), 1);
    }
    free(s);
    /* Counting with more than 16 s left; counting with EN clear. */
    wr(&a, CFG, 1);
    wr(&a, IRQ_STA, 1);
    wr(&a, CTRL, SUNXI_WDT_RESTART);
    CHECK_EQ(save(&a, &s, &n), 0);
    patched(s, n, 24, 0x10, &p, &pn);          /* ticks left += 2^56 */
    CHECK_EQ(load(&b, p, pn), -EINVAL);
    free(p);
    patched(s, n, 12, 0x40, &p, &pn);          /* MODE without EN */
    CHECK_EQ(load(&b, p, pn), -EINVAL);
    free(p);
    CHECK_EQ(rd(&b, IRQ_STA), 1);
    free(s);
    rig_free(&a);
    rig_free(&b);
}

/* A VM paused (its timebase stopped) with under 1.8 s left of a 2 s count,
 * for 0.6 s of real time and an hour more: nothing expires, the count
 * stands, the I/O thread is given no deadline; a save then keeps what was
 * left at the pause, and a load into a stopped VM stands as long again.
 * After the start the count ends that much guest time later, not at once. */
static void test_paused(void)
{
    struct rig a, b;
    uint8_t *s;
    size_t n;
    const int64_t hour = 3600 * SEC;
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 600 * 1000 * 1000 };

    rig_init(&a);
    driver_start(&a, 0x2);          /* 2 s */
    advance(&a, 200 * 1000000ll);
    timebase_stop(&a.tb);
    uint64_t left = sunxi_wdt_ticks_left(a.w);
    CHECK(left > 0 && left <= 18 * HZ / 10);
    nanosleep(&ts, NULL);
    advance(&a, hour);
    CHECK(!sunxi_wdt_poll(a.w));
    CHECK_EQ(sunxi_wdt_ticks_left(a.w), left);
    CHECK_EQ(sunxi_wdt_next_deadline_ns(a.w), INT64_MAX);
    CHECK_EQ(save(&a, &s, &n), 0);

    rig_init(&b);
    timebase_stop(&b.tb);           /* as virt_load does */
    timebase_set_now(&b.tb, 1000 * HZ);
    CHECK_EQ(load(&b, s, n), 0);
    free(s);
    nanosleep(&ts, NULL);
    advance(&b, hour);
    CHECK(!sunxi_wdt_poll(b.w));
    CHECK_EQ(sunxi_wdt_ticks_left(b.w), left);
    CHECK_EQ(sunxi_wdt_next_deadline_ns(b.w), INT64_MAX);

    struct rig *both[] = { &a, &b };
    for (unsigned i = 0; i < 2; i++) {
        struct rig *r = both[i];
        int64_t h0 = timebase_host_ns();
        timebase_start(&r->tb);
        CHECK(!sunxi_wdt_poll(r->w));
        CHECK(left_about(r, left));
        int64_t d = sunxi_wdt_next_deadline_ns(r->w);
        CHECK_MSG(d >= h0 && d <= timebase_host_ns() + (int64_t)(left * TIMEBASE_NS_PER_TICK),
                  "deadline %lld ns after the start", (long long)(d - h0));
        advance(r, (int64_t)(left * TIMEBASE_NS_PER_TICK) + 50 * 1000000ll);
        CHECK(sunxi_wdt_poll(r->w));    /* expired: the system reset */
    }
    rig_free(&a);
    rig_free(&b);
}

static void test_fdt(void)
{
    struct rig r;
    rig_init(&r);
    uint8_t buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 9, .nharts = 1 };
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(sunxi_wdt_fdt(r.w, &ctx), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);
    int node = fdt_path_offset(buf, "/watchdog@103000");
    CHECK(node >= 0);
    const char *compat = fdt_getprop(buf, node, "compatible", NULL);
    CHECK(compat && !strcmp(compat, "allwinner,sun6i-a31-wdt"));
    int len;
    const fdt32_t *reg = fdt_getprop(buf, node, "reg", &len);
    CHECK(reg && len == 16 && fdt32_to_cpu(reg[1]) == BASE && fdt32_to_cpu(reg[3]) == SUNXI_WDT_SIZE);
    const fdt32_t *irq = fdt_getprop(buf, node, "interrupts", &len);
    CHECK(irq && len == 4 && fdt32_to_cpu(*irq) == 13);
    const fdt32_t *parent = fdt_getprop(buf, node, "interrupt-parent", &len);
    CHECK(parent && fdt32_to_cpu(*parent) == 9);
    rig_free(&r);
}

int main(void)
{
    test_registers();
    test_intervals();
    test_expiry();
    test_save_load();
    test_paused();
    test_fdt();
    return check_summary("test_dev_sunxi_wdt");
}
