/* Save/load of the platform devices (and, below, the hart): each gets
 * non-trivial state through its MMIO registers, is saved, loaded into a
 * fresh instance, and must then behave the same (the same register reads,
 * with their side effects, the same interrupt outputs); a bad field value
 * in an otherwise valid stream is refused with a message naming the
 * section, and leaves the device as it was.
 *
 * `test_state_devices --write-seeds DIR` writes the fuzz seeds of
 * tests/fuzz/corpus/state/ (snapshots of these rigs; fuzz_state.c builds
 * the same configuration: STATE_SEED_NHARTS harts). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/csr.h"
#include "cpu/hart.h"
#include "cpu/jit/jit.h"
#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/sifive_test.h"
#include "dev/uart16550.h"
#include "mem/guest_mem.h"
#include "state/state.h"

#include "check.h"

#define NHARTS 2

static char err[256];

/* ---- stream helpers ---- */

struct stream {
    uint8_t *data;
    size_t len;
};

static void stream_take(struct state_writer *w, struct stream *s)
{
    CHECK_EQ(state_writer_finish(w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(w, &s->len);
    s->data = malloc(s->len);
    memcpy(s->data, d, s->len);
    state_writer_free(w);
}

/* A copy of `in` (valid CRCs) whose section tag[inst] has payload byte `off`
 * set to `val`, or, with off == SIZE_MAX, one byte more (delta 1) or less
 * (delta -1). */
static struct stream patch(const struct stream *in, const char *tag, uint32_t inst, size_t off,
                           uint8_t val, int delta)
{
    struct state_reader r;
    struct state_writer w;
    struct stream out = { 0 };
    CHECK_EQ(state_reader_open_mem(&r, in->data, in->len, err, sizeof(err)), 0);
    state_writer_init_mem(&w);
    for (uint32_t i = 0; i < r.nsections; i++) {
        struct state_section s;
        state_reader_section_at(&r, i, &s);
        uint8_t *p = malloc(s.len + 1);
        memcpy(p, s.data, s.len);
        size_t n = s.len;
        if (!strcmp(s.info->tag, tag) && s.info->instance == inst) {
            if (off != SIZE_MAX) {
                CHECK(off < n);
                p[off] = val;
            } else if (delta > 0) {
                p[n++] = 0;
            } else if (n) {
                n--;
            }
        }
        state_begin(&w, s.info->tag, s.info->instance, s.info->major, s.info->minor);
        state_put_bytes(&w, p, n);
        state_end(&w);
        free(p);
    }
    state_reader_free(&r);
    stream_take(&w, &out);
    return out;
}

static int open_stream(const struct stream *s, struct state_reader *r)
{
    int ret = state_reader_open_mem(r, s->data, s->len, err, sizeof(err));
    CHECK_EQ(ret, 0);
    return ret;
}

/* ---- PLIC ---- */

struct plic_rig {
    struct guest_mem mem;
    struct plic *p;
    int level[2 * NHARTS];
};

static void plic_out(void *opaque, unsigned hart, bool s_mode, bool level)
{
    struct plic_rig *r = opaque;
    r->level[hart * 2 + s_mode] = level;
}

static void plic_rig_init(struct plic_rig *r, unsigned nharts)
{
    memset(r, 0, sizeof(*r));
    struct plic_host host = { .set_external = plic_out, .opaque = r };
    CHECK_EQ(plic_create(&r->mem, PLIC_VIRT_BASE, nharts, &host, &r->p), 0);
    for (unsigned c = 0; c < 2 * NHARTS; c++)
        r->level[c] = -1; /* load must push every context */
}

static uint32_t plic_rd(struct plic_rig *r, uint64_t off)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&r->mem, PLIC_VIRT_BASE + off, 4, &v));
    return (uint32_t)v;
}

static void plic_wr(struct plic_rig *r, uint64_t off, uint32_t v)
{
    CHECK(guest_mem_mmio_write(&r->mem, PLIC_VIRT_BASE + off, 4, v));
}

/* Every readable register but claim, which is compared by using it. */
static void plic_regs(struct plic_rig *r, uint32_t *v, size_t *n)
{
    *n = 0;
    for (unsigned i = 0; i < PLIC_NUM_SOURCES; i++)
        v[(*n)++] = plic_rd(r, 4 * i);
    for (unsigned w = 0; w < 3; w++)
        v[(*n)++] = plic_rd(r, 0x1000 + 4 * w);
    for (unsigned c = 0; c < 2 * NHARTS; c++) {
        for (unsigned w = 0; w < 3; w++)
            v[(*n)++] = plic_rd(r, 0x2000 + 0x80 * c + 4 * w);
        v[(*n)++] = plic_rd(r, 0x200000 + 0x1000 * c);
    }
}

static void plic_setup(struct plic_rig *r)
{
    for (unsigned i = 1; i < PLIC_NUM_SOURCES; i++)
        plic_wr(r, 4 * i, i % 8);
    plic_wr(r, 0x2000 + 0x80 * 1, 0xfffffffe);    /* ctx 1 (hart 0 S): sources 1..31 */
    plic_wr(r, 0x2000 + 0x80 * 2 + 4, 0x0000ffff); /* ctx 2 (hart 1 M): 32..47 */
    plic_wr(r, 0x200000 + 0x1000 * 2, 3);
    plic_set_irq(r->p, 5, true);
    plic_set_irq(r->p, 7, true);
    plic_set_irq(r->p, 33, true);  /* priority 1: below ctx 2's threshold */
    plic_set_irq(r->p, 39, true);  /* priority 7 */
    plic_set_irq(r->p, 60, true);  /* enabled nowhere */
    CHECK_EQ(plic_rd(r, 0x200004 + 0x1000 * 1), 7); /* claim 7 on ctx 1 */
    plic_set_irq(r->p, 7, false);
}

static void test_plic(struct stream *seed)
{
    struct plic_rig a, b, c;
    uint32_t va[256], vb[256];
    size_t na, nb;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;

    plic_rig_init(&a, NHARTS);
    plic_setup(&a);
    state_writer_init_mem(&w);
    CHECK_EQ(plic_save(a.p, &w), 0);
    stream_take(&w, &s);

    plic_rig_init(&b, NHARTS);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(plic_load(b.p, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    plic_regs(&a, va, &na);
    plic_regs(&b, vb, &nb);
    CHECK_EQ(na, nb);
    CHECK(!memcmp(va, vb, na * sizeof(va[0])));
    for (unsigned ctx = 0; ctx < 2 * NHARTS; ctx++)
        CHECK_EQ(b.level[ctx], a.level[ctx] == 1);
    CHECK_EQ(b.level[1], 1);   /* 5 pending for hart 0 S */
    CHECK_EQ(b.level[2], 1);   /* 39 above threshold 3 */
    /* Same behaviour: claims, completion of the claimed-then-dropped 7. */
    for (unsigned ctx = 0; ctx < 2 * NHARTS; ctx++)
        CHECK_EQ(plic_rd(&b, 0x200004 + 0x1000 * ctx), plic_rd(&a, 0x200004 + 0x1000 * ctx));
    plic_wr(&a, 0x200004 + 0x1000 * 1, 7);
    plic_wr(&b, 0x200004 + 0x1000 * 1, 7);
    plic_set_irq(a.p, 7, true);
    plic_set_irq(b.p, 7, true);
    CHECK_EQ(plic_rd(&b, 0x200004 + 0x1000 * 1), 7);
    CHECK_EQ(plic_rd(&a, 0x200004 + 0x1000 * 1), 7);
    CHECK_EQ(b.level[1], a.level[1]);

    /* Bad values: each refused, naming the section; the device unchanged. */
    struct { size_t off; uint8_t val; const char *what; } bad[] = {
        { 8 + 3, 8, "priority" },            /* source 3 priority 8 */
        { 8 + 0, 1, "source 0" },
        { 8 + 96 + 4, 0x60, "pending" },     /* pending word 0 not level & ~claimed */
        { 8 + 96 + 36 + 12, 9, "threshold" },/* ctx 0 threshold 9 */
        { 8 + 96 + 36, 1, "source 0" },      /* ctx 0 enables source 0 */
        { 0, 3, "harts" },
    };
    plic_rig_init(&c, NHARTS);
    uint32_t before = plic_rd(&c, 4 * 3);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct stream p = patch(&s, "plic", 0, bad[i].off, bad[i].val, 0);
        if (!open_stream(&p, &rd)) {
            CHECK_EQ(plic_load(c.p, &rd, err, sizeof(err)), -EINVAL);
            CHECK_MSG(strstr(err, "plic[0]") && strstr(err, bad[i].what), "%s", err);
            state_reader_free(&rd);
        }
        free(p.data);
    }
    CHECK_EQ(plic_rd(&c, 4 * 3), before);
    /* Wrong sizes, and a PLIC of another size. */
    for (int d = -1; d <= 1; d += 2) {
        struct stream p = patch(&s, "plic", 0, SIZE_MAX, 0, d);
        if (!open_stream(&p, &rd)) {
            CHECK_EQ(plic_load(c.p, &rd, err, sizeof(err)), -EBADMSG);
            state_reader_free(&rd);
        }
        free(p.data);
    }
    plic_destroy(c.p);
    plic_rig_init(&c, 1);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(plic_load(c.p, &rd, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "2 harts") != NULL);
        state_reader_free(&rd);
    }
    plic_destroy(c.p);
    plic_destroy(a.p);
    plic_destroy(b.p);
    *seed = s;
}

/* ---- ACLINT ---- */

struct aclint_rig {
    struct guest_mem mem;
    struct timebase tb;
    struct aclint *a;
    int msip[NHARTS];
    uint64_t cmp[NHARTS];
};

static void rig_msip(void *opaque, unsigned hart, bool level)
{
    struct aclint_rig *r = opaque;
    r->msip[hart] = level;
}

static void rig_cmp(void *opaque, unsigned hart, uint64_t v)
{
    struct aclint_rig *r = opaque;
    r->cmp[hart] = v;
}

static void aclint_rig_init(struct aclint_rig *r)
{
    memset(r, 0, sizeof(*r));
    timebase_init(&r->tb);
    struct aclint_host host = { .set_msip = rig_msip, .set_mtimecmp = rig_cmp, .opaque = r };
    CHECK_EQ(aclint_create(&r->mem, ACLINT_VIRT_BASE, NHARTS, &r->tb, &host, &r->a), 0);
    for (unsigned h = 0; h < NHARTS; h++) {
        r->msip[h] = -1;
        r->cmp[h] = 12345;
    }
}

static uint64_t aclint_rd(struct aclint_rig *r, uint64_t off, unsigned size)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&r->mem, ACLINT_VIRT_BASE + off, size, &v));
    return v;
}

static void test_aclint(struct stream *seed)
{
    struct aclint_rig a, b;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;

    aclint_rig_init(&a);
    /* Guest time well past the host's uptime: the restored timebase's
     * offset goes negative and must still convert. */
    a.tb.offset_ns -= 3600ll * 24 * 365 * 1000000000ll;
    CHECK(guest_mem_mmio_write(&a.mem, ACLINT_VIRT_BASE + 4, 4, 1));
    CHECK(guest_mem_mmio_write(&a.mem, ACLINT_VIRT_BASE + 0x4000, 8, 0x1122334455667788ull));
    CHECK(guest_mem_mmio_write(&a.mem, ACLINT_VIRT_BASE + 0x4008, 4, 0xabcd));
    uint64_t t0 = timebase_now(&a.tb);
    state_writer_init_mem(&w);
    CHECK_EQ(aclint_save(a.a, &w), 0);
    stream_take(&w, &s);

    aclint_rig_init(&b);
    usleep(20000); /* time spent "saved" does not exist for the guest */
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    uint64_t t1 = aclint_rd(&b, ACLINT_MTIME_OFFSET, 8);
    CHECK_MSG(t1 >= t0 && t1 - t0 < TIMEBASE_HZ / 100, "mtime %llu after restore of %llu",
              (unsigned long long)t1, (unsigned long long)t0);
    CHECK(b.tb.offset_ns < 0);
    CHECK(timebase_ticks_to_host_ns(&b.tb, t1) > 0);
    CHECK(timebase_ticks_to_host_ns(&b.tb, t1 + TIMEBASE_HZ) > timebase_ticks_to_host_ns(&b.tb, t1));
    for (unsigned h = 0; h < NHARTS; h++) {
        CHECK_EQ(aclint_rd(&b, 4 * h, 4), aclint_rd(&a, 4 * h, 4));
        CHECK_EQ(aclint_rd(&b, 0x4000 + 8 * h, 8), aclint_rd(&a, 0x4000 + 8 * h, 8));
        CHECK_EQ(b.msip[h], h == 1);
        CHECK_EQ(b.cmp[h], a.cmp[h]);
    }
    CHECK_EQ(b.cmp[1], 0xffffffff0000abcdull);

    /* msip 2; an mtime beyond the restorable range; wrong harts; sizes. */
    struct stream p = patch(&s, "aclint", 0, 12, 2, 0);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), -EBADMSG);
        CHECK(strstr(err, "aclint[0]") != NULL);
        state_reader_free(&rd);
    }
    free(p.data);
    p = patch(&s, "aclint", 0, 11, 0x80, 0);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), -EINVAL);
        CHECK(strstr(err, "mtime") != NULL);
        state_reader_free(&rd);
    }
    free(p.data);
    p = patch(&s, "aclint", 0, 0, 3, 0);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), -EINVAL);
        state_reader_free(&rd);
    }
    free(p.data);
    p = patch(&s, "aclint", 0, SIZE_MAX, 0, -1);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), -EBADMSG);
        state_reader_free(&rd);
    }
    free(p.data);
    CHECK_EQ(aclint_rd(&b, 0x4008, 8), 0xffffffff0000abcdull); /* unchanged */
    aclint_destroy(a.a);
    aclint_destroy(b.a);
    *seed = s;
}

/* A VM paused long before its save (timebase stopped, an hour of host time
 * meanwhile) saves the time of its pause; a load into a stopped timebase
 * (virt_load) stands there until the start, however long the restore
 * waits: the guest sees neither wait. */
static void test_aclint_paused(void)
{
    struct aclint_rig a, b;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;
    const int64_t hour = 3600ll * 1000000000ll;

    aclint_rig_init(&a);
    timebase_stop(&a.tb);
    uint64_t tp = timebase_now(&a.tb);
    a.tb.offset_ns -= hour;
    usleep(20000);
    state_writer_init_mem(&w);
    CHECK_EQ(aclint_save(a.a, &w), 0);
    stream_take(&w, &s);

    aclint_rig_init(&b);
    timebase_stop(&b.tb);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(aclint_load(b.a, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    CHECK_EQ(aclint_rd(&b, ACLINT_MTIME_OFFSET, 8), tp);
    b.tb.offset_ns -= hour;
    usleep(20000);
    CHECK_EQ(aclint_rd(&b, ACLINT_MTIME_OFFSET, 8), tp);
    int64_t h0 = timebase_host_ns();
    timebase_start(&b.tb);
    uint64_t t1 = aclint_rd(&b, ACLINT_MTIME_OFFSET, 8);
    int64_t h1 = timebase_host_ns();
    CHECK_MSG(t1 >= tp && t1 - tp <= (uint64_t)(h1 - h0) / TIMEBASE_NS_PER_TICK + 1,
              "mtime %llu after the start, %llu at the pause", (unsigned long long)t1,
              (unsigned long long)tp);
    free(s.data);
    aclint_destroy(a.a);
    aclint_destroy(b.a);
}

/* ---- UART ---- */

struct uart_rig {
    struct guest_mem mem;
    struct uart16550 *u;
    int level;
    int rx_ready;
    uint8_t out[64];
    size_t nout;
};

static void uart_irq(void *opaque, unsigned irq, bool level)
{
    (void)irq;
    ((struct uart_rig *)opaque)->level = level;
}

static void uart_tx(void *opaque, const uint8_t *buf, size_t n)
{
    struct uart_rig *r = opaque;
    for (size_t i = 0; i < n && r->nout < sizeof(r->out); i++)
        r->out[r->nout++] = buf[i];
}

static void uart_rx_ready(void *opaque)
{
    ((struct uart_rig *)opaque)->rx_ready++;
}

static void uart_rig_init(struct uart_rig *r)
{
    memset(r, 0, sizeof(*r));
    struct irq_line line = { .set_level = uart_irq, .controller = r, .irq = 10 };
    struct uart16550_host host = { .tx = uart_tx, .rx_ready = uart_rx_ready, .opaque = r };
    CHECK_EQ(uart16550_create(&r->mem, UART16550_VIRT_BASE, line, &host, &r->u), 0);
}

static uint8_t uart_rd(struct uart_rig *r, unsigned reg)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&r->mem, UART16550_VIRT_BASE + reg, 1, &v));
    return (uint8_t)v;
}

static void uart_wr(struct uart_rig *r, unsigned reg, uint8_t v)
{
    CHECK(guest_mem_mmio_write(&r->mem, UART16550_VIRT_BASE + reg, 1, v));
}

/* Reads every register (with their side effects) and drains the FIFO. */
static size_t uart_trace(struct uart_rig *r, uint8_t *t)
{
    size_t n = 0;
    t[n++] = (uint8_t)r->level;
    t[n++] = uart_rd(r, 1);  /* IER */
    t[n++] = uart_rd(r, 3);  /* LCR */
    t[n++] = uart_rd(r, 4);  /* MCR */
    t[n++] = uart_rd(r, 7);  /* SCR */
    t[n++] = uart_rd(r, 2);  /* IIR */
    t[n++] = uart_rd(r, 5);  /* LSR (clears OE) */
    t[n++] = uart_rd(r, 6);  /* MSR (clears deltas) */
    t[n++] = uart_rd(r, 6);
    t[n++] = uart_rd(r, 5);
    for (int i = 0; i < 18; i++) {
        t[n++] = uart_rd(r, 0); /* RBR: the FIFO, then the last byte again */
        t[n++] = uart_rd(r, 2);
    }
    uart_wr(r, 3, 0x83);
    t[n++] = uart_rd(r, 0); /* DLL */
    t[n++] = uart_rd(r, 1); /* DLM */
    uart_wr(r, 3, 0x03);
    t[n++] = (uint8_t)r->level;
    return n;
}

static void test_uart(struct stream *seed)
{
    struct uart_rig a, b;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;
    uint8_t ta[128], tb[128];

    uart_rig_init(&a);
    uart_wr(&a, 3, 0x83);       /* DLAB */
    uart_wr(&a, 0, 0x0c);
    uart_wr(&a, 1, 0x01);
    uart_wr(&a, 3, 0x1b);       /* 8E1 */
    uart_wr(&a, 2, 0x81);       /* FIFO on, trigger 8 */
    uart_wr(&a, 4, 0x13);       /* loopback, DTR, RTS: MSR deltas */
    uart_wr(&a, 7, 0x5a);
    for (int i = 0; i < 20; i++)
        uart_wr(&a, 0, (uint8_t)('a' + i)); /* 16 fit, then OE */
    uart_rd(&a, 0);
    uart_rd(&a, 0);             /* a FIFO that wrapped: head 2 */
    uart_wr(&a, 1, 0x0f);       /* every interrupt */
    state_writer_init_mem(&w);
    CHECK_EQ(uart16550_save(a.u, &w, 0), 0);
    stream_take(&w, &s);

    uart_rig_init(&b);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(uart16550_load(b.u, &rd, 0, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    CHECK_EQ(b.level, 1);
    size_t na = uart_trace(&a, ta), nb = uart_trace(&b, tb);
    CHECK_EQ(na, nb);
    CHECK(!memcmp(ta, tb, na));
    CHECK_EQ(ta[6] & 0x02, 0x02); /* OE was saved */
    /* Out of loopback, both transmit alike and take input again. */
    uart_wr(&a, 4, 0x0b);
    uart_wr(&b, 4, 0x0b);
    CHECK(b.rx_ready >= 1);
    uart_wr(&b, 0, 'Z');
    CHECK(b.nout == 1 && b.out[0] == 'Z');
    CHECK_EQ(uart16550_receive(b.u, (const uint8_t *)"xy", 2), 2);
    CHECK_EQ(uart_rd(&b, 0), 'x');

    struct { size_t off; uint8_t val; const char *what; int rc; } bad[] = {
        { 0, 0x10, "IER", -EINVAL },
        { 1, 0x02, "FCR", -EINVAL },   /* FIFO off but a clear bit kept */
        { 3, 0x20, "MCR", -EINVAL },
        { 5, 0x00, "MSR", -EINVAL },   /* loopback lines say otherwise */
        { 6, 0x01, "LSR", -EINVAL },
        { 10, 2, "flag", -EBADMSG },
        { 11, 17, "FIFO", -EINVAL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct stream p = patch(&s, "uart16550", 0, bad[i].off, bad[i].val, 0);
        if (!open_stream(&p, &rd)) {
            CHECK_EQ(uart16550_load(b.u, &rd, 0, err, sizeof(err)), bad[i].rc);
            CHECK_MSG(strstr(err, "uart16550[0]") && strstr(err, bad[i].what), "%s", err);
            state_reader_free(&rd);
        }
        free(p.data);
    }
    CHECK_EQ(uart_rd(&b, 7), 0x5a);
    CHECK_EQ(uart_rd(&b, 4), 0x0b); /* unchanged by the refused loads */
    /* Another instance number is another section. */
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(uart16550_load(b.u, &rd, 1, err, sizeof(err)), -ENOENT);
        state_reader_free(&rd);
    }
    uart16550_destroy(a.u);
    uart16550_destroy(b.u);
    *seed = s;
}

/* ---- goldfish RTC ---- */

struct rtc_rig {
    struct guest_mem mem;
    struct goldfish_rtc *r;
    int level;
    int deadline_calls;
};

static void rtc_irq(void *opaque, unsigned irq, bool level)
{
    (void)irq;
    ((struct rtc_rig *)opaque)->level = level;
}

static void rtc_deadline(void *opaque)
{
    ((struct rtc_rig *)opaque)->deadline_calls++;
}

static void rtc_rig_init(struct rtc_rig *r)
{
    memset(r, 0, sizeof(*r));
    struct irq_line line = { .set_level = rtc_irq, .controller = r, .irq = 11 };
    struct goldfish_rtc_host host = { .deadline_changed = rtc_deadline, .opaque = r };
    CHECK_EQ(goldfish_rtc_create(&r->mem, GOLDFISH_RTC_VIRT_BASE, line, &host, &r->r), 0);
}

static uint32_t rtc_rd(struct rtc_rig *r, unsigned off)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&r->mem, GOLDFISH_RTC_VIRT_BASE + off, 4, &v));
    return (uint32_t)v;
}

static void rtc_wr(struct rtc_rig *r, unsigned off, uint32_t v)
{
    CHECK(guest_mem_mmio_write(&r->mem, GOLDFISH_RTC_VIRT_BASE + off, 4, v));
}

static void test_rtc(struct stream *seed)
{
    struct rtc_rig a, b;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;

    rtc_rig_init(&a);
    rtc_wr(&a, 0x04, 0x12345);    /* the guest sets the year far ahead */
    rtc_wr(&a, 0x10, 1);
    rtc_wr(&a, 0x0c, 0x7fffffff); /* an alarm that will not fire */
    rtc_wr(&a, 0x08, 0);
    uint32_t lo = rtc_rd(&a, 0x00), hi = rtc_rd(&a, 0x04);
    state_writer_init_mem(&w);
    CHECK_EQ(goldfish_rtc_save(a.r, &w), 0);
    stream_take(&w, &s);

    rtc_rig_init(&b);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(goldfish_rtc_load(b.r, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    CHECK_EQ(b.deadline_calls, 1);
    CHECK_EQ(rtc_rd(&b, 0x04), hi);       /* the latched half */
    uint64_t t0 = (uint64_t)hi << 32 | lo;
    uint32_t lo2 = rtc_rd(&b, 0x00);
    uint64_t t1 = (uint64_t)rtc_rd(&b, 0x04) << 32 | lo2;
    CHECK_MSG(t1 >= t0 && t1 - t0 < 1000000000ull, "rtc %llx after %llx",
              (unsigned long long)t1, (unsigned long long)t0);
    CHECK_EQ(rtc_rd(&b, 0x18), 1);
    CHECK_EQ(rtc_rd(&b, 0x10), 1);
    CHECK_EQ(rtc_rd(&b, 0x0c), 0x7fffffff);
    CHECK_EQ(b.level, 0);
    /* The loaded RTC works: an alarm in the past fires at once. */
    rtc_wr(&b, 0x0c, 0);
    rtc_wr(&b, 0x08, 1);
    CHECK_EQ(b.level, 1);

    struct stream p = patch(&s, "goldfish_rtc", 0, 20, 2, 0);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(goldfish_rtc_load(b.r, &rd, err, sizeof(err)), -EBADMSG);
        CHECK(strstr(err, "goldfish_rtc[0]") != NULL);
        state_reader_free(&rd);
    }
    free(p.data);
    CHECK_EQ(b.level, 1); /* unchanged */
    goldfish_rtc_destroy(a.r);
    goldfish_rtc_destroy(b.r);
    *seed = s;
}

/* ---- SiFive test ---- */

static void fin(void *opaque, enum finisher_action a, int code)
{
    (void)opaque;
    (void)a;
    (void)code;
}

static void test_sifive(struct stream *seed)
{
    struct sifive_test *t = NULL;
    struct sifive_test_host host = { .finish = fin };
    struct state_writer w;
    struct state_reader rd;
    struct stream s;

    CHECK_EQ(sifive_test_create(NULL, SIFIVE_TEST_VIRT_BASE, &host, &t), 0);
    state_writer_init_mem(&w);
    CHECK_EQ(sifive_test_save(t, &w), 0);
    stream_take(&w, &s);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(sifive_test_load(t, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    struct stream p = patch(&s, "sifive_test", 0, SIZE_MAX, 0, 1);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(sifive_test_load(t, &rd, err, sizeof(err)), -EBADMSG);
        state_reader_free(&rd);
    }
    free(p.data);
    /* A newer major of the section is refused with a clear message. */
    state_writer_init_mem(&w);
    state_begin(&w, "sifive_test", 0, SIFIVE_TEST_STATE_MAJOR + 1, 0);
    state_end(&w);
    stream_take(&w, &p);
    if (!open_stream(&p, &rd)) {
        CHECK_EQ(sifive_test_load(t, &rd, err, sizeof(err)), -ENOTSUP);
        CHECK(strstr(err, "sifive_test[0]") && strstr(err, "newer"));
        state_reader_free(&rd);
    }
    free(p.data);
    sifive_test_destroy(t);
    *seed = s;
}

/* ---- hart ---- */

#define RAM_BASE 0x80000000ull

static struct hart *new_hart(struct guest_mem *mem, struct timebase *tb, uint64_t id)
{
    struct hart *h = NULL;
    if (posix_memalign((void **)&h, 4096, sizeof(*h)) || hart_init(h, id, mem, tb, RAM_BASE)) {
        printf("cannot set up a hart\n");
        exit(1);
    }
    atomic_store(&h->arch.state, HART_STARTED);
    return h;
}

static void free_hart(struct hart *h)
{
    jit_destroy(h);
    hart_destroy(h);
    free(h);
}

static void same_arch(struct hart *a, struct hart *b)
{
    const struct hart_arch *x = &a->arch, *y = &b->arch;
    CHECK(!memcmp(x->x, y->x, 32 * sizeof(x->x[0])));
    CHECK(!memcmp(&x->fp, &y->fp, sizeof(x->fp)));
    CHECK_EQ(x->pc, y->pc);
    CHECK_EQ(x->priv, y->priv);
    static const unsigned csrs[] = {
        CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG, CSR_MIE, CSR_MIP, CSR_MTVEC,
        CSR_MSCRATCH, CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_MCOUNTEREN, CSR_MENVCFG,
        CSR_MCOUNTINHIBIT, CSR_STVEC, CSR_SSCRATCH, CSR_SEPC, CSR_SCAUSE, CSR_STVAL, CSR_SATP,
        CSR_SCOUNTEREN, CSR_SENVCFG, CSR_STIMECMP, CSR_MCYCLE, CSR_MINSTRET, CSR_FCSR,
        CSR_PMPCFG0, CSR_PMPCFG0 + 2, CSR_PMPADDR0, CSR_PMPADDR0 + 15,
    };
    for (size_t i = 0; i < sizeof(csrs) / sizeof(csrs[0]); i++) {
        uint64_t va = 1, vb = 2;
        CHECK_EQ(hart_csr_read(a, csrs[i], &va), 0);
        CHECK_EQ(hart_csr_read(b, csrs[i], &vb), 0);
        CHECK_MSG(va == vb, "csr 0x%x: 0x%llx vs 0x%llx", csrs[i], (unsigned long long)va,
                  (unsigned long long)vb);
    }
    CHECK_EQ(x->mip_sw_seip, y->mip_sw_seip);
    CHECK_EQ(x->resv_valid, y->resv_valid);
    CHECK_EQ(x->resv_addr, y->resv_addr);
    CHECK_EQ(x->resv_value, y->resv_value);
    CHECK_EQ(x->start_addr, y->start_addr);
    CHECK_EQ(x->start_opaque, y->start_opaque);
    CHECK_EQ(atomic_load(&x->state), atomic_load(&y->state));
    CHECK_EQ(a->pmp_count, b->pmp_count);
    for (unsigned i = 0; i < a->pmp_count && i < b->pmp_count; i++)
        CHECK_MSG(a->pmp[i].lo == b->pmp[i].lo && a->pmp[i].hi == b->pmp[i].hi &&
                  a->pmp[i].cfg == b->pmp[i].cfg, "pmp range %u differs", i);
}

static void test_hart(struct stream *seed)
{
    static const uint32_t code[] = {
        0x00150513, /* addi a0, a0, 1 */
        0x00a585b3, /* add a1, a1, a0 */
        0xff9ff06f, /* j -8 */
    };
    struct guest_mem mem;
    struct timebase tb;
    struct state_writer w;
    struct state_reader rd;
    struct stream s;

    timebase_init(&tb);
    if (guest_mem_init(&mem, RAM_BASE, 16ull << 20)) {
        printf("no guest memory\n");
        exit(1);
    }
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE, code, sizeof(code)), 0);
    struct hart *a = new_hart(&mem, &tb, 0);
    hart_csr_write(a, CSR_MSTATUS, MSTATUS_FS_INITIAL | (1ull << 11) | (1ull << 18));
    hart_csr_write(a, CSR_MEDELEG, 0xb1ff);
    hart_csr_write(a, CSR_MIDELEG, 0x222);
    hart_csr_write(a, CSR_MIE, 0x2a);
    hart_csr_write(a, CSR_MTVEC, RAM_BASE + 0x100);
    hart_csr_write(a, CSR_STVEC, RAM_BASE + 0x201);
    hart_csr_write(a, CSR_MSCRATCH, 0x1234567890abcdefull);
    hart_csr_write(a, CSR_SSCRATCH, 0xfedcba0987654321ull);
    hart_csr_write(a, CSR_MENVCFG, MENVCFG_STCE);
    hart_csr_write(a, CSR_STIMECMP, 0x7fffffffffffull);
    hart_csr_write(a, CSR_MCOUNTEREN, 7);
    hart_csr_write(a, CSR_MCYCLE, 1ull << 40);
    hart_csr_write(a, CSR_MIP, MIP_SSIP | MIP_SEIP);
    hart_csr_write(a, CSR_PMPADDR0 + 3, 0x3ffffffffull);
    hart_csr_write(a, CSR_PMPCFG0, (uint64_t)(PMPCFG_NAPOT | PMPCFG_R | PMPCFG_W | PMPCFG_X) << 24);
    hart_csr_write(a, CSR_FCSR, 0x5f);
    a->arch.fp.f[7] = 0x400921fb54442d18ull;
    a->arch.x[5] = 0x5555;
    a->arch.resv_valid = true;
    a->arch.resv_addr = RAM_BASE + 0x1000;
    a->arch.resv_value = 42;
    a->arch.start_addr = RAM_BASE + 0x2000;
    CHECK_EQ(hart_run(a, 1000), HART_EXIT_BUDGET);
    CHECK(a->arch.x[10] > 300);
    state_writer_init_mem(&w);
    CHECK_EQ(hart_save(a, &w), 0);
    stream_take(&w, &s);

    /* A hart that ran first (TLB, decoded blocks, translations) then loads. */
    struct hart *b = new_hart(&mem, &tb, 0);
    if (jit_create(b, JIT_MIN_CACHE, 0) && jit_create(b, JIT_MIN_CACHE, 0) != -ENOTSUP)
        CHECK(false);
    b->arch.pc = RAM_BASE + 4;
    CHECK_EQ(hart_run(b, 777), HART_EXIT_BUDGET);
    uint64_t epoch = b->code_epoch;
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(hart_load(b, &rd, err, sizeof(err)), 0);
        state_reader_free(&rd);
    }
    CHECK(b->code_epoch != epoch);
    same_arch(a, b);
    /* And both go on alike (the loaded one through the translator). */
    CHECK_EQ(hart_run(a, 500), HART_EXIT_BUDGET);
    CHECK_EQ(hart_run(b, 500), HART_EXIT_BUDGET);
    same_arch(a, b);

    /* Bad fields: each refused, naming the section; the hart unchanged. */
    const size_t csr0 = 2 + 8 + 31 * 8 + 32 * 8 + 2; /* mstatus, then csr_fields order */
    struct { size_t off; uint8_t val; const char *what; int rc; } bad[] = {
        { 0, 3, "HSM", -EINVAL },
        { 1, 2, "privilege", -EINVAL },
        { 2, 0x01, "odd", -EINVAL },
        { csr0 - 2, 0x20, "fflags", -EINVAL },
        { csr0 - 1, 8, "frm", -EINVAL },
        { csr0 + 1, 0x10, "mstatus", -EINVAL },          /* MPP = 2 */
        { csr0 + 5, 0x01, "mstatus", -EINVAL },          /* UXL is read-only */
        { csr0 + 8, 0x00, "misa", -EINVAL },
        { csr0 + 18 * 8 + 7, 0x10, "satp", -EINVAL },    /* mode 1 */
        { csr0 + 2 * 8 + 1, 0x08, "medeleg", -EINVAL },  /* ecall from M */
        { csr0 + 22 * 8 + 1, 0x08, "mip", -EINVAL },     /* MEIP belongs to the PLIC */
        { csr0 + 22 * 8, 0x20, "mip", -EINVAL },         /* STIP while Sstc owns it */
        { csr0 + 23 * 8, 0x01, "SEIP", -EINVAL },
        { csr0 + 26 * 8 + 3, 0x60, "PMP", -EINVAL },     /* reserved pmpcfg bits */
        { csr0 + 26 * 8 + 16 + 16 * 8, 2, "flag", -EBADMSG },
    };
    uint64_t pc = b->arch.pc;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct stream p = patch(&s, "hart", 0, bad[i].off, bad[i].val, 0);
        if (!open_stream(&p, &rd)) {
            CHECK_EQ(hart_load(b, &rd, err, sizeof(err)), bad[i].rc);
            CHECK_MSG(strstr(err, "hart[0]") && strstr(err, bad[i].what), "%zu: %s", i, err);
            state_reader_free(&rd);
        }
        free(p.data);
    }
    for (int d = -1; d <= 1; d += 2) {
        struct stream p = patch(&s, "hart", 0, SIZE_MAX, 0, d);
        if (!open_stream(&p, &rd)) {
            CHECK_EQ(hart_load(b, &rd, err, sizeof(err)), -EBADMSG);
            state_reader_free(&rd);
        }
        free(p.data);
    }
    CHECK_EQ(b->arch.pc, pc);
    CHECK_EQ(b->arch.priv, PRIV_M);
    /* Another hart's section is not this one's. */
    struct hart *c = new_hart(&mem, &tb, 1);
    if (!open_stream(&s, &rd)) {
        CHECK_EQ(hart_load(c, &rd, err, sizeof(err)), -ENOENT);
        CHECK(strstr(err, "hart[1]") != NULL);
        state_reader_free(&rd);
    }
    /* A hart being claimed by hart_start cannot be saved. */
    atomic_store(&c->arch.state, HART_START_CLAIMED);
    state_writer_init_mem(&w);
    CHECK_EQ(hart_save(c, &w), -EBUSY);
    state_writer_free(&w);
    free_hart(a);
    free_hart(b);
    free_hart(c);
    guest_mem_destroy(&mem);
    *seed = s;
}

/* ---- seeds ---- */

static void append(struct state_writer *w, const struct stream *s)
{
    struct state_reader r;
    if (open_stream(s, &r))
        return;
    for (uint32_t i = 0; i < r.nsections; i++) {
        struct state_section sec;
        state_reader_section_at(&r, i, &sec);
        state_begin(w, sec.info->tag, sec.info->instance, sec.info->major, sec.info->minor);
        state_put_bytes(w, sec.data, sec.len);
        state_end(w);
    }
    state_reader_free(&r);
}

static void write_file(const char *dir, const char *name, const struct stream *s)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ(fwrite(s->data, 1, s->len, f), s->len);
        fclose(f);
    }
}

int main(int argc, char **argv)
{
    struct stream seeds[6];
    test_plic(&seeds[0]);
    test_aclint(&seeds[1]);
    test_aclint_paused();
    test_uart(&seeds[2]);
    test_rtc(&seeds[3]);
    test_sifive(&seeds[4]);
    test_hart(&seeds[5]);

    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        static const char *names[] = { "plic", "aclint", "uart16550", "goldfish_rtc", "sifive_test",
                                       "hart" };
        struct state_writer w;
        struct stream all;
        state_writer_init_mem(&w);
        for (int i = 0; i < 6; i++) {
            write_file(argv[2], names[i], &seeds[i]);
            append(&w, &seeds[i]);
        }
        stream_take(&w, &all);
        write_file(argv[2], "machine", &all);
        free(all.data);
    }
    for (int i = 0; i < 6; i++)
        free(seeds[i].data);
    return check_summary("test_state_devices");
}
