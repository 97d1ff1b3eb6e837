/* Unit tests for the PLIC: priorities (WARL), pending, enables, thresholds,
 * claim ordering, completion and the level-triggered gateway, per-context
 * outputs (only on change), range/size checks, reset, FDT node. */
#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/plic.h"
#include "mem/guest_mem.h"

#include "check.h"

#define BASE PLIC_VIRT_BASE
#define NHARTS 2
#define NCTX (2 * NHARTS)

struct outs {
    pthread_mutex_t lock;
    int level[NCTX];
    int calls[NCTX];
    int bad_calls;   /* a call that did not change the level */
};

static void set_external(void *opaque, unsigned hart, bool s_mode, bool level)
{
    struct outs *o = opaque;
    pthread_mutex_lock(&o->lock);
    unsigned ctx = hart * 2 + (s_mode ? 1 : 0);
    if (ctx < NCTX) {
        if (o->level[ctx] == (int)level)
            o->bad_calls++;
        o->level[ctx] = level;
        o->calls[ctx]++;
    } else {
        o->bad_calls++;
    }
    pthread_mutex_unlock(&o->lock);
}

struct rig {
    struct guest_mem mem;
    struct outs o;
    struct plic *p;
};

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->o.lock, NULL);
    struct plic_host host = { .set_external = set_external, .opaque = &r->o };
    int ret = plic_create(&r->mem, BASE, NHARTS, &host, &r->p);
    CHECK_EQ(ret, 0);
    if (ret)
        exit(1);
}

static void rig_fini(struct rig *r)
{
    CHECK_EQ(r->o.bad_calls, 0);
    plic_destroy(r->p);
    pthread_mutex_destroy(&r->o.lock);
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

static uint64_t prio(unsigned irq) { return 4ull * irq; }
static uint64_t pend(unsigned word) { return 0x1000 + 4ull * word; }
static uint64_t enable(unsigned ctx, unsigned word) { return 0x2000 + 0x80ull * ctx + 4 * word; }
static uint64_t thresh(unsigned ctx) { return 0x200000 + 0x1000ull * ctx; }
static uint64_t claim(unsigned ctx) { return 0x200004 + 0x1000ull * ctx; }

static void test_registers(void)
{
    struct rig r;
    rig_init(&r);
    /* priorities are 3-bit WARL; source 0 does not exist */
    wr(&r, prio(5), 0xff);
    CHECK_EQ(rd(&r, prio(5)), 7);
    wr(&r, prio(6), 3);
    CHECK_EQ(rd(&r, prio(6)), 3);
    wr(&r, prio(0), 5);
    CHECK_EQ(rd(&r, prio(0)), 0);
    wr(&r, prio(95), 2);
    CHECK_EQ(rd(&r, prio(95)), 2);
    CHECK_EQ(rd(&r, prio(96)), 0);          /* past the last source */
    wr(&r, prio(96), 2);
    CHECK_EQ(rd(&r, prio(96)), 0);

    /* enables: bit 0 hard-wired to 0, three words of sources */
    wr(&r, enable(1, 0), 0xffffffff);
    CHECK_EQ(rd(&r, enable(1, 0)), 0xfffffffe);
    wr(&r, enable(1, 2), 0x80000001);
    CHECK_EQ(rd(&r, enable(1, 2)), 0x80000001);
    CHECK_EQ(rd(&r, enable(0, 0)), 0);
    wr(&r, enable(1, 3), 0xffffffff);        /* no word 3 */
    CHECK_EQ(rd(&r, enable(1, 3)), 0);
    wr(&r, enable(NCTX, 0), 0xffffffff);     /* no such context */
    CHECK_EQ(rd(&r, enable(NCTX, 0)), 0);

    /* thresholds WARL */
    wr(&r, thresh(3), 0x1f);
    CHECK_EQ(rd(&r, thresh(3)), 7);
    CHECK_EQ(rd(&r, thresh(NCTX)), 0);
    wr(&r, thresh(NCTX), 1);
    CHECK_EQ(rd(&r, claim(NCTX)), 0);

    /* pending is read-only */
    wr(&r, pend(0), 0xffffffff);
    CHECK_EQ(rd(&r, pend(0)), 0);

    /* only aligned 32-bit accesses */
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + prio(1), 8, &v));
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + prio(1), 1, &v));
    CHECK(!guest_mem_mmio_write(&r.mem, BASE + prio(1) + 2, 4, 1));
    /* the whole QEMU-sized window is ours */
    CHECK(guest_mem_mmio_read(&r.mem, BASE + PLIC_SIZE - 4, 4, &v));
    CHECK_EQ(v, 0);
    CHECK(!guest_mem_mmio_read(&r.mem, BASE + PLIC_SIZE, 4, &v));
    for (int c = 0; c < NCTX; c++)
        CHECK_EQ(r.o.calls[c], 0);
    rig_fini(&r);
}

static void test_claim_complete(void)
{
    struct rig r;
    rig_init(&r);
    const unsigned S0 = 1; /* hart 0 S-mode context */

    /* pending shows even with priority 0, but nothing is signalled */
    plic_set_irq(r.p, 5, true);
    CHECK_EQ(rd(&r, pend(0)), 1u << 5);
    CHECK_EQ(r.o.calls[S0], 0);

    wr(&r, enable(S0, 0), 1u << 5);
    CHECK_EQ(r.o.level[S0], 0);              /* priority 0 never interrupts */
    wr(&r, prio(5), 1);
    CHECK_EQ(r.o.level[S0], 1);
    CHECK_EQ(r.o.level[0], 0);               /* M-mode context not enabled */
    CHECK_EQ(r.o.level[2], 0);
    CHECK_EQ(r.o.level[3], 0);

    /* threshold: strictly greater priority needed */
    wr(&r, thresh(S0), 1);
    CHECK_EQ(r.o.level[S0], 0);
    CHECK_EQ(rd(&r, claim(S0)), 0);          /* claim respects the threshold */
    wr(&r, thresh(S0), 0);
    CHECK_EQ(r.o.level[S0], 1);

    /* claim: returns the id, clears pending, drops the output */
    CHECK_EQ(rd(&r, claim(S0)), 5);
    CHECK_EQ(rd(&r, pend(0)), 0);
    CHECK_EQ(r.o.level[S0], 0);
    CHECK_EQ(rd(&r, claim(S0)), 0);

    /* while claimed, the gateway holds further requests */
    plic_set_irq(r.p, 5, false);
    plic_set_irq(r.p, 5, true);
    CHECK_EQ(rd(&r, pend(0)), 0);
    CHECK_EQ(r.o.level[S0], 0);

    /* completion of another id changes nothing */
    wr(&r, claim(S0), 6);
    CHECK_EQ(r.o.level[S0], 0);
    /* completion reopens it: the line is still high, so pending again */
    wr(&r, claim(S0), 5);
    CHECK_EQ(rd(&r, pend(0)), 1u << 5);
    CHECK_EQ(r.o.level[S0], 1);
    /* a line dropping before the claim retracts the request */
    plic_set_irq(r.p, 5, false);
    CHECK_EQ(rd(&r, pend(0)), 0);
    CHECK_EQ(r.o.level[S0], 0);
    CHECK_EQ(rd(&r, claim(S0)), 0);

    /* claim, line drops, complete: nothing pending afterwards */
    plic_set_irq(r.p, 5, true);
    CHECK_EQ(rd(&r, claim(S0)), 5);
    plic_set_irq(r.p, 5, false);
    wr(&r, claim(S0), 5);
    CHECK_EQ(rd(&r, pend(0)), 0);
    CHECK_EQ(r.o.level[S0], 0);

    /* disabling the source drops the output without touching pending */
    plic_set_irq(r.p, 5, true);
    CHECK_EQ(r.o.level[S0], 1);
    wr(&r, enable(S0, 0), 0);
    CHECK_EQ(r.o.level[S0], 0);
    CHECK_EQ(rd(&r, pend(0)), 1u << 5);
    /* completion is honoured even for a source not enabled (like QEMU) */
    wr(&r, enable(S0, 0), 1u << 5);
    CHECK_EQ(rd(&r, claim(S0)), 5);
    wr(&r, enable(S0, 0), 0);
    wr(&r, claim(S0), 5);
    CHECK_EQ(rd(&r, pend(0)), 1u << 5);

    /* out-of-range sources are ignored */
    plic_set_irq(r.p, 0, true);
    plic_set_irq(r.p, 96, true);
    plic_set_irq(r.p, 100000, true);
    CHECK_EQ(rd(&r, pend(0)), 1u << 5);
    CHECK_EQ(rd(&r, pend(3)), 0);
    rig_fini(&r);
}

static void test_priority_order(void)
{
    struct rig r;
    rig_init(&r);
    const unsigned M1 = 2; /* hart 1 M-mode context */

    wr(&r, prio(3), 2);
    wr(&r, prio(40), 5);
    wr(&r, prio(9), 5);
    wr(&r, prio(95), 1);
    wr(&r, enable(M1, 0), (1u << 3) | (1u << 9));
    wr(&r, enable(M1, 1), 1u << (40 - 32));
    wr(&r, enable(M1, 2), 1u << (95 - 64));
    plic_set_irq(r.p, 3, true);
    plic_set_irq(r.p, 40, true);
    plic_set_irq(r.p, 9, true);
    plic_set_irq(r.p, 95, true);
    CHECK_EQ(rd(&r, pend(0)), (1u << 3) | (1u << 9));
    CHECK_EQ(rd(&r, pend(1)), 1u << 8);
    CHECK_EQ(rd(&r, pend(2)), 1u << 31);
    CHECK_EQ(r.o.level[M1], 1);
    CHECK_EQ(r.o.calls[M1], 1);              /* only on change */

    /* highest priority first, lowest id on a tie */
    CHECK_EQ(rd(&r, claim(M1)), 9);
    CHECK_EQ(rd(&r, claim(M1)), 40);
    CHECK_EQ(r.o.level[M1], 1);
    wr(&r, thresh(M1), 2);                   /* hides 3 (prio 2) and 95 (prio 1) */
    CHECK_EQ(r.o.level[M1], 0);
    CHECK_EQ(rd(&r, claim(M1)), 0);
    wr(&r, thresh(M1), 1);
    CHECK_EQ(rd(&r, claim(M1)), 3);
    CHECK_EQ(r.o.level[M1], 0);              /* 95 has priority 1 = threshold */
    wr(&r, thresh(M1), 0);
    CHECK_EQ(rd(&r, claim(M1)), 95);
    CHECK_EQ(r.o.level[M1], 0);

    /* complete all, lines still high: all pending again, 9 first */
    wr(&r, claim(M1), 3);
    wr(&r, claim(M1), 9);
    wr(&r, claim(M1), 40);
    wr(&r, claim(M1), 95);
    CHECK_EQ(r.o.level[M1], 1);
    CHECK_EQ(rd(&r, claim(M1)), 9);
    /* raising a source's priority reorders */
    wr(&r, prio(3), 7);
    CHECK_EQ(rd(&r, claim(M1)), 3);
    CHECK_EQ(rd(&r, claim(M1)), 40);
    rig_fini(&r);
}

static void test_contexts(void)
{
    struct rig r;
    rig_init(&r);
    /* source 7 enabled on hart 0 S and hart 1 S; source 8 only hart 1 M */
    wr(&r, prio(7), 1);
    wr(&r, prio(8), 1);
    wr(&r, enable(1, 0), 1u << 7);
    wr(&r, enable(3, 0), 1u << 7);
    wr(&r, enable(2, 0), 1u << 8);
    plic_set_irq(r.p, 7, true);
    CHECK_EQ(r.o.level[0], 0);
    CHECK_EQ(r.o.level[1], 1);
    CHECK_EQ(r.o.level[2], 0);
    CHECK_EQ(r.o.level[3], 1);
    /* one claim wins; the other context's output drops too */
    CHECK_EQ(rd(&r, claim(3)), 7);
    CHECK_EQ(r.o.level[1], 0);
    CHECK_EQ(r.o.level[3], 0);
    CHECK_EQ(rd(&r, claim(1)), 0);
    plic_set_irq(r.p, 8, true);
    CHECK_EQ(r.o.level[2], 1);
    CHECK_EQ(r.o.level[1], 0);
    CHECK_EQ(rd(&r, claim(1)), 0);           /* 8 not enabled for context 1 */
    CHECK_EQ(rd(&r, claim(2)), 8);
    CHECK_EQ(r.o.level[2], 0);
    /* complete from a different context than the claimer still reopens */
    wr(&r, claim(1), 7);
    CHECK_EQ(r.o.level[1], 1);
    CHECK_EQ(r.o.level[3], 1);
    rig_fini(&r);
}

static void test_reset(void)
{
    struct rig r;
    rig_init(&r);
    wr(&r, prio(4), 3);
    wr(&r, enable(0, 0), 1u << 4);
    wr(&r, thresh(0), 1);
    plic_set_irq(r.p, 4, true);
    plic_set_irq(r.p, 6, true);
    CHECK_EQ(r.o.level[0], 1);
    CHECK_EQ(rd(&r, claim(0)), 4);
    for (int c = 0; c < NCTX; c++)
        r.o.calls[c] = 0;
    /* reset pushes every output low, even ones already low */
    r.o.level[0] = 1;
    r.o.level[1] = 1;
    r.o.level[2] = 1;
    r.o.level[3] = 1;
    plic_reset(r.p);
    for (int c = 0; c < NCTX; c++) {
        CHECK_EQ(r.o.calls[c], 1);
        CHECK_EQ(r.o.level[c], 0);
    }
    CHECK_EQ(rd(&r, prio(4)), 0);
    CHECK_EQ(rd(&r, enable(0, 0)), 0);
    CHECK_EQ(rd(&r, thresh(0)), 0);
    /* lines still high are pending again (claims are forgotten) */
    CHECK_EQ(rd(&r, pend(0)), (1u << 4) | (1u << 6));
    wr(&r, prio(4), 1);
    wr(&r, enable(0, 0), 1u << 4);
    CHECK_EQ(r.o.level[0], 1);
    CHECK_EQ(rd(&r, claim(0)), 4);
    rig_fini(&r);
}

static void test_create_errors(void)
{
    struct outs o;
    memset(&o, 0, sizeof(o));
    struct plic_host host = { .set_external = set_external, .opaque = &o };
    struct plic_host bad = { .opaque = &o };
    struct plic *p = (void *)1;
    CHECK_EQ(plic_create(NULL, BASE, 0, &host, &p), -EINVAL);
    CHECK(p == NULL);
    CHECK_EQ(plic_create(NULL, BASE, PLIC_MAX_HARTS + 1, &host, &p), -EINVAL);
    CHECK_EQ(plic_create(NULL, BASE, 1, &bad, &p), -EINVAL);
    CHECK_EQ(plic_create(NULL, BASE, PLIC_MAX_HARTS, &host, &p), 0);
    plic_destroy(p);
    plic_destroy(NULL);
}

static void test_fdt(void)
{
    struct rig r;
    rig_init(&r);
    char buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 0x42, .nharts = NHARTS };
    ctx.cpu_intc_phandle[0] = 3;
    ctx.cpu_intc_phandle[1] = 5;
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(fdt_begin_node(buf, "soc"), 0);
    CHECK_EQ(plic_fdt(r.p, &ctx), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);

    int node = fdt_path_offset(buf, "/soc/plic@c000000");
    CHECK(node >= 0);
    CHECK_EQ(fdt_node_offset_by_phandle(buf, 0x42), node);
    CHECK_EQ(fdt_get_phandle(buf, node), 0x42);
    CHECK_EQ(fdt_node_check_compatible(buf, node, "riscv,plic0"), 0);
    CHECK_EQ(fdt_node_check_compatible(buf, node, "sifive,plic-1.0.0"), 0);
    int len = -1;
    CHECK(fdt_getprop(buf, node, "interrupt-controller", &len) != NULL);
    CHECK_EQ(len, 0);
    const fdt32_t *p = fdt_getprop(buf, node, "#interrupt-cells", &len);
    CHECK(p && len == 4 && fdt32_to_cpu(*p) == 1);
    p = fdt_getprop(buf, node, "#address-cells", &len);
    CHECK(p && len == 4 && fdt32_to_cpu(*p) == 0);
    p = fdt_getprop(buf, node, "riscv,ndev", &len);
    CHECK(p && len == 4 && fdt32_to_cpu(*p) == 95);
    const fdt32_t *reg = fdt_getprop(buf, node, "reg", &len);
    CHECK(reg && len == 16);
    if (reg && len == 16) {
        CHECK_EQ(fdt32_to_cpu(reg[0]), 0);
        CHECK_EQ(fdt32_to_cpu(reg[1]), 0xc000000);
        CHECK_EQ(fdt32_to_cpu(reg[2]), 0);
        CHECK_EQ(fdt32_to_cpu(reg[3]), 0x600000);
    }
    const fdt32_t *ie = fdt_getprop(buf, node, "interrupts-extended", &len);
    CHECK(ie && len == NHARTS * 16);
    if (ie && len == NHARTS * 16) {
        static const uint32_t want[] = { 3, 11, 3, 9, 5, 11, 5, 9 };
        for (int i = 0; i < 8; i++)
            CHECK_EQ(fdt32_to_cpu(ie[i]), want[i]);
    }
    rig_fini(&r);
}

/* Many threads toggling lines while one claims and completes: every claimed
 * id is valid and no source is lost (each ends pending or idle consistently). */
struct storm {
    struct rig *r;
    unsigned irq;
};

static void *storm_thread(void *arg)
{
    struct storm *s = arg;
    for (int i = 0; i < 20000; i++)
        plic_set_irq(s->r->p, s->irq, i & 1);
    plic_set_irq(s->r->p, s->irq, true);
    return NULL;
}

static void test_concurrency(void)
{
    struct rig r;
    rig_init(&r);
    for (unsigned i = 1; i <= 4; i++) {
        wr(&r, prio(i), i);
    }
    wr(&r, enable(0, 0), 0x1e);
    pthread_t t[4];
    struct storm s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct storm){ .r = &r, .irq = (unsigned)i + 1 };
        pthread_create(&t[i], NULL, storm_thread, &s[i]);
    }
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t id = 0;
        if (!guest_mem_mmio_read(&r.mem, BASE + claim(0), 4, &id) || id > 4)
            bad++;
        if (id && !guest_mem_mmio_write(&r.mem, BASE + claim(0), 4, id))
            bad++;
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ(bad, 0);
    /* all lines end high: each source is claimable exactly once, in order */
    CHECK_EQ(r.o.level[0], 1);
    CHECK_EQ(rd(&r, claim(0)), 4);
    CHECK_EQ(rd(&r, claim(0)), 3);
    CHECK_EQ(rd(&r, claim(0)), 2);
    CHECK_EQ(rd(&r, claim(0)), 1);
    CHECK_EQ(rd(&r, claim(0)), 0);
    CHECK_EQ(r.o.level[0], 0);
    rig_fini(&r);
}

int main(void)
{
    test_registers();
    test_claim_complete();
    test_priority_order();
    test_contexts();
    test_reset();
    test_create_errors();
    test_fdt();
    test_concurrency();
    return check_summary("plic");
}
