/* Unit tests for the goldfish RTC: time read/latch/set, alarm in the past and
 * the future, deadline and poll, interrupt enable/clear, reset, FDT node. */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dev/goldfish_rtc.h"
#include "mem/guest_mem.h"

#include "check.h"

#define BASE GOLDFISH_RTC_VIRT_BASE
#define SEC 1000000000ll

enum { TIME_LOW = 0x00, TIME_HIGH = 0x04, ALARM_LOW = 0x08, ALARM_HIGH = 0x0c,
       IRQ_ENABLED = 0x10, CLEAR_ALARM = 0x14, ALARM_STATUS = 0x18, CLEAR_INTERRUPT = 0x1c };

struct fake {
    int level;
    int changes;
    int deadline_changed;
};

static void fake_set_level(void *controller, unsigned irq, bool level)
{
    struct fake *f = controller;
    (void)irq;
    f->level = level;
    f->changes++;
}

static void fake_deadline_changed(void *opaque)
{
    struct fake *f = opaque;
    f->deadline_changed++;
}

struct rig {
    struct guest_mem mem;
    struct fake f;
    struct goldfish_rtc *r;
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    struct irq_line line = { .set_level = fake_set_level, .controller = &r->f, .irq = 11 };
    struct goldfish_rtc_host host = { .deadline_changed = fake_deadline_changed, .opaque = &r->f };
    int ret = goldfish_rtc_create(&r->mem, BASE, line, &host, &r->r);
    CHECK_EQ(ret, 0);
    if (ret)
        exit(1);
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

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* Linux's goldfish_rtc_read_time: TIME_LOW first, then TIME_HIGH. */
static uint64_t read_time(struct rig *r)
{
    uint64_t lo = rd(r, TIME_LOW);
    uint64_t hi = rd(r, TIME_HIGH);
    return (hi << 32) | lo;
}

/* Linux's goldfish_rtc_set_time: TIME_HIGH, then TIME_LOW. */
static void set_time(struct rig *r, uint64_t t)
{
    wr(r, TIME_HIGH, (uint32_t)(t >> 32));
    wr(r, TIME_LOW, (uint32_t)t);
}

/* Linux's goldfish_rtc_set_alarm: ALARM_HIGH, ALARM_LOW, IRQ_ENABLED. */
static void set_alarm(struct rig *r, uint64_t t)
{
    wr(r, ALARM_HIGH, (uint32_t)(t >> 32));
    wr(r, ALARM_LOW, (uint32_t)t);
    wr(r, IRQ_ENABLED, 1);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / SEC, .tv_nsec = ns % SEC };
    nanosleep(&ts, NULL);
}

static void test_time(void)
{
    struct rig r;
    rig_init(&r);
    int64_t host = clock_ns(CLOCK_REALTIME);
    uint64_t t = read_time(&r);
    CHECK((int64_t)t - host >= 0);
    CHECK((int64_t)t - host < SEC);

    /* TIME_HIGH is the value latched by the last TIME_LOW read */
    uint32_t hi = rd(&r, TIME_HIGH);
    CHECK_EQ(hi, (uint32_t)(t >> 32));

    /* setting the time: the RTC then runs on from there */
    const uint64_t want = 946684800ull * SEC; /* 2000-01-01 */
    set_time(&r, want);
    uint64_t t1 = read_time(&r);
    CHECK(t1 >= want);
    CHECK(t1 - want < (uint64_t)SEC);
    sleep_ns(5 * 1000 * 1000);
    uint64_t t2 = read_time(&r);
    CHECK(t2 - t1 >= 5 * 1000 * 1000);
    CHECK(t2 - t1 < (uint64_t)SEC);
    CHECK_EQ(r.f.deadline_changed, 0);       /* no alarm armed */

    /* reset keeps the time (battery-backed) */
    goldfish_rtc_reset(r.r);
    uint64_t t3 = read_time(&r);
    CHECK(t3 >= t2 && t3 - want < 10ull * SEC);

    /* only aligned 32-bit accesses */
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + TIME_LOW, 8, &v));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + TIME_LOW, 1, 0));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + 2, 4, &v));
    CHECK_EQ(rd(&r, 0x20), 0);               /* unknown registers read 0 */
    goldfish_rtc_destroy(r.r);
}

static void test_alarm_past(void)
{
    struct rig r;
    rig_init(&r);
    uint64_t now = read_time(&r);
    /* armed with interrupts disabled: fires at once, line stays low */
    wr(&r, ALARM_HIGH, (uint32_t)((now - SEC) >> 32));
    wr(&r, ALARM_LOW, (uint32_t)(now - SEC));
    CHECK_EQ(rd(&r, ALARM_STATUS), 0);
    CHECK_EQ(r.f.level, 0);
    CHECK_EQ(goldfish_rtc_next_deadline_ns(r.r), INT64_MAX);
    wr(&r, IRQ_ENABLED, 1);
    CHECK_EQ(rd(&r, IRQ_ENABLED), 1);
    CHECK_EQ(r.f.level, 1);
    wr(&r, IRQ_ENABLED, 0);
    CHECK_EQ(r.f.level, 0);
    wr(&r, IRQ_ENABLED, 1);
    CHECK_EQ(r.f.level, 1);
    wr(&r, CLEAR_INTERRUPT, 1);
    CHECK_EQ(r.f.level, 0);
    CHECK_EQ(rd(&r, ALARM_LOW), (uint32_t)(now - SEC));
    CHECK_EQ(rd(&r, ALARM_HIGH), (uint32_t)((now - SEC) >> 32));
    goldfish_rtc_destroy(r.r);
}

static void test_alarm_future(void)
{
    struct rig r;
    rig_init(&r);
    const int64_t delay = 30 * 1000 * 1000; /* 30 ms */
    int64_t mono0 = clock_ns(CLOCK_MONOTONIC);
    uint64_t now = read_time(&r);
    set_alarm(&r, now + (uint64_t)delay);
    CHECK_EQ(rd(&r, ALARM_STATUS), 1);
    CHECK_EQ(r.f.level, 0);
    CHECK(r.f.deadline_changed >= 1);
    int64_t dl = goldfish_rtc_next_deadline_ns(r.r);
    int64_t mono1 = clock_ns(CLOCK_MONOTONIC);
    CHECK(dl >= mono0 + delay - 5 * 1000 * 1000);
    CHECK(dl <= mono1 + delay);

    /* early poll: nothing */
    goldfish_rtc_poll(r.r);
    CHECK_EQ(rd(&r, ALARM_STATUS), 1);
    CHECK_EQ(r.f.level, 0);

    /* the I/O thread sleeps until the deadline, then polls */
    int64_t wait = dl - clock_ns(CLOCK_MONOTONIC);
    if (wait > 0)
        sleep_ns(wait);
    int changed = r.f.deadline_changed;
    goldfish_rtc_poll(r.r);
    CHECK_EQ(rd(&r, ALARM_STATUS), 0);
    CHECK_EQ(r.f.level, 1);
    CHECK(read_time(&r) >= now + (uint64_t)delay);
    CHECK_EQ(r.f.deadline_changed, changed + 1);
    CHECK_EQ(goldfish_rtc_next_deadline_ns(r.r), INT64_MAX);
    /* polling again does nothing more */
    goldfish_rtc_poll(r.r);
    CHECK_EQ(r.f.deadline_changed, changed + 1);
    wr(&r, CLEAR_INTERRUPT, 1);
    CHECK_EQ(r.f.level, 0);

    /* CLEAR_ALARM disarms */
    now = read_time(&r);
    set_alarm(&r, now + 10ull * SEC);
    CHECK_EQ(rd(&r, ALARM_STATUS), 1);
    CHECK(goldfish_rtc_next_deadline_ns(r.r) < INT64_MAX);
    changed = r.f.deadline_changed;
    wr(&r, CLEAR_ALARM, 1);
    CHECK_EQ(rd(&r, ALARM_STATUS), 0);
    CHECK_EQ(r.f.deadline_changed, changed + 1);
    CHECK_EQ(goldfish_rtc_next_deadline_ns(r.r), INT64_MAX);
    goldfish_rtc_poll(r.r);
    CHECK_EQ(r.f.level, 0);

    /* moving the time past an armed alarm makes it due at once */
    now = read_time(&r);
    set_alarm(&r, now + 3600ull * SEC);
    changed = r.f.deadline_changed;
    set_time(&r, now + 7200ull * SEC);
    CHECK(r.f.deadline_changed > changed);
    CHECK(goldfish_rtc_next_deadline_ns(r.r) <= clock_ns(CLOCK_MONOTONIC));
    goldfish_rtc_poll(r.r);
    CHECK_EQ(r.f.level, 1);

    /* reset: disarmed, disabled, line low */
    set_alarm(&r, read_time(&r) + 10ull * SEC);
    goldfish_rtc_reset(r.r);
    CHECK_EQ(r.f.level, 0);
    CHECK_EQ(rd(&r, ALARM_STATUS), 0);
    CHECK_EQ(rd(&r, IRQ_ENABLED), 0);
    CHECK_EQ(rd(&r, ALARM_LOW), 0);
    CHECK_EQ(goldfish_rtc_next_deadline_ns(r.r), INT64_MAX);
    goldfish_rtc_destroy(r.r);
}

static void test_no_host(void)
{
    struct goldfish_rtc *r = (void *)1;
    CHECK_EQ(goldfish_rtc_create(NULL, BASE, (struct irq_line){ 0 }, NULL, NULL), -EINVAL);
    CHECK_EQ(goldfish_rtc_create(NULL, BASE, (struct irq_line){ 0 }, NULL, &r), 0);
    CHECK(r != NULL);
    goldfish_rtc_poll(r);
    CHECK_EQ(goldfish_rtc_next_deadline_ns(r), INT64_MAX);
    goldfish_rtc_destroy(r);
    goldfish_rtc_destroy(NULL);
}

static void test_fdt(void)
{
    struct rig r;
    rig_init(&r);
    char buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 3, .nharts = 1 };
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(fdt_begin_node(buf, "soc"), 0);
    CHECK_EQ(goldfish_rtc_fdt(r.r, &ctx), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);

    int node = fdt_path_offset(buf, "/soc/rtc@101000");
    CHECK(node >= 0);
    CHECK_EQ(fdt_node_check_compatible(buf, node, "google,goldfish-rtc"), 0);
    int len = 0;
    const fdt32_t *reg = fdt_getprop(buf, node, "reg", &len);
    CHECK(reg && len == 16);
    if (reg && len == 16) {
        CHECK_EQ(fdt32_to_cpu(reg[1]), 0x101000);
        CHECK_EQ(fdt32_to_cpu(reg[3]), 0x1000);
    }
    const fdt32_t *p = fdt_getprop(buf, node, "interrupt-parent", &len);
    CHECK(p && len == 4 && fdt32_to_cpu(*p) == 3);
    p = fdt_getprop(buf, node, "interrupts", &len);
    CHECK(p && len == 4 && fdt32_to_cpu(*p) == 11);
    goldfish_rtc_destroy(r.r);
}

int main(void)
{
    test_time();
    test_alarm_past();
    test_alarm_future();
    test_no_host();
    test_fdt();
    return check_summary("goldfish_rtc");
}
