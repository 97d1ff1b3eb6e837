/* SiFive PLIC. See plic.h for the threading contract.
 *
 * Lock order: (device locks) -> plic->lock -> set_external's locks. */
#include "dev/plic.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

#define WORDS            ((PLIC_NUM_SOURCES + 31) / 32)
#define PRIORITY_BASE    0x0u
#define PENDING_BASE     0x1000u
#define ENABLE_BASE      0x2000u
#define ENABLE_STRIDE    0x80u
#define CONTEXT_BASE     0x200000u
#define CONTEXT_STRIDE   0x1000u
#define IRQ_M_EXT        11
#define IRQ_S_EXT        9

struct plic {
    pthread_mutex_t lock;
    uint64_t base;
    unsigned nharts, nctx;
    struct plic_host host;

    uint8_t priority[PLIC_NUM_SOURCES];
    uint32_t level[WORDS];    /* input lines */
    uint32_t pending[WORDS];
    uint32_t claimed[WORDS];  /* gateway closed until completion */
    uint32_t *enable;         /* [nctx][WORDS] */
    uint8_t *threshold;       /* [nctx] */
    bool *out;                /* [nctx]: what set_external was last told */
};

static bool bit(const uint32_t *w, unsigned i)
{
    return (w[i / 32] >> (i % 32)) & 1;
}

static void set_bit(uint32_t *w, unsigned i, bool v)
{
    if (v)
        w[i / 32] |= 1u << (i % 32);
    else
        w[i / 32] &= ~(1u << (i % 32));
}

/* Highest-priority pending enabled source above the threshold, lowest id on a
 * tie; 0 if none. */
static unsigned best_locked(const struct plic *p, unsigned ctx)
{
    unsigned best = 0, best_prio = p->threshold[ctx];
    const uint32_t *en = &p->enable[ctx * WORDS];

    for (unsigned w = 0; w < WORDS; w++) {
        uint32_t cand = p->pending[w] & en[w];
        while (cand) {
            unsigned b = (unsigned)__builtin_ctz(cand);
            unsigned irq = w * 32 + b;
            cand &= cand - 1;
            if (irq < PLIC_NUM_SOURCES && p->priority[irq] > best_prio) {
                best = irq;
                best_prio = p->priority[irq];
            }
        }
    }
    return best;
}

static void update_locked(struct plic *p)
{
    for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
        bool level = best_locked(p, ctx) != 0;
        if (level != p->out[ctx]) {
            p->out[ctx] = level;
            p->host.set_external(p->host.opaque, ctx / 2, ctx & 1, level);
        }
    }
}

static unsigned claim_locked(struct plic *p, unsigned ctx)
{
    unsigned irq = best_locked(p, ctx);
    if (irq) {
        set_bit(p->pending, irq, false);
        set_bit(p->claimed, irq, true);
    }
    return irq;
}

static void complete_locked(struct plic *p, uint32_t irq)
{
    if (irq == 0 || irq >= PLIC_NUM_SOURCES || !bit(p->claimed, irq))
        return;
    set_bit(p->claimed, irq, false);
    if (bit(p->level, irq))
        set_bit(p->pending, irq, true);
}

void plic_set_irq(void *opaque, unsigned irq, bool level)
{
    struct plic *p = opaque;

    if (irq == 0 || irq >= PLIC_NUM_SOURCES)
        return;
    pthread_mutex_lock(&p->lock);
    set_bit(p->level, irq, level);
    if (!level)
        set_bit(p->pending, irq, false);
    else if (!bit(p->claimed, irq))
        set_bit(p->pending, irq, true);
    update_locked(p);
    pthread_mutex_unlock(&p->lock);
}

static bool plic_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct plic *p = opaque;
    uint32_t v = 0;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&p->lock);
    if (offset < PENDING_BASE) {
        uint64_t irq = (offset - PRIORITY_BASE) / 4;
        if (irq < PLIC_NUM_SOURCES)
            v = p->priority[irq];
    } else if (offset < ENABLE_BASE) {
        uint64_t w = (offset - PENDING_BASE) / 4;
        if (w < WORDS)
            v = p->pending[w];
    } else if (offset < CONTEXT_BASE) {
        uint64_t ctx = (offset - ENABLE_BASE) / ENABLE_STRIDE;
        uint64_t w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) / 4;
        if (ctx < p->nctx && w < WORDS)
            v = p->enable[ctx * WORDS + w];
    } else {
        uint64_t ctx = (offset - CONTEXT_BASE) / CONTEXT_STRIDE;
        uint64_t reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
        if (ctx < p->nctx) {
            if (reg == 0) {
                v = p->threshold[ctx];
            } else if (reg == 4) {
                v = claim_locked(p, (unsigned)ctx);
                update_locked(p);
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
    *value = v;
    return true;
}

static bool plic_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct plic *p = opaque;
    uint32_t v = (uint32_t)value;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&p->lock);
    if (offset < PENDING_BASE) {
        uint64_t irq = (offset - PRIORITY_BASE) / 4;
        /* Source 0 does not exist; priorities are WARL: keep the low bits. */
        if (irq > 0 && irq < PLIC_NUM_SOURCES)
            p->priority[irq] = v & PLIC_MAX_PRIORITY;
    } else if (offset < ENABLE_BASE) {
        /* pending bits are read-only */
    } else if (offset < CONTEXT_BASE) {
        uint64_t ctx = (offset - ENABLE_BASE) / ENABLE_STRIDE;
        uint64_t w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) / 4;
        if (ctx < p->nctx && w < WORDS)
            p->enable[ctx * WORDS + w] = w == 0 ? (v & ~1u) : v;
    } else {
        uint64_t ctx = (offset - CONTEXT_BASE) / CONTEXT_STRIDE;
        uint64_t reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
        if (ctx < p->nctx) {
            if (reg == 0)
                p->threshold[ctx] = v & PLIC_MAX_PRIORITY;
            else if (reg == 4)
                complete_locked(p, v);
        }
    }
    update_locked(p);
    pthread_mutex_unlock(&p->lock);
    return true;
}

static const struct mmio_ops plic_mmio_ops = {
    .read = plic_read,
    .write = plic_write,
};

static void clear_regs_locked(struct plic *p)
{
    for (unsigned i = 0; i < PLIC_NUM_SOURCES; i++)
        p->priority[i] = 0;
    for (unsigned w = 0; w < WORDS; w++) {
        p->claimed[w] = 0;
        p->pending[w] = p->level[w];
    }
    for (unsigned i = 0; i < p->nctx * WORDS; i++)
        p->enable[i] = 0;
    for (unsigned c = 0; c < p->nctx; c++)
        p->threshold[c] = 0;
}

int plic_create(struct guest_mem *mem, uint64_t base, unsigned nharts,
                const struct plic_host *host, struct plic **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!host || !host->set_external || nharts == 0 || nharts > PLIC_MAX_HARTS)
        return -EINVAL;
    struct plic *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->nharts = nharts;
    p->nctx = 2 * nharts;
    ret = -ENOMEM;
    p->enable = calloc((size_t)p->nctx * WORDS, sizeof(*p->enable));
    p->threshold = calloc(p->nctx, sizeof(*p->threshold));
    p->out = calloc(p->nctx, sizeof(*p->out));
    if (!p->enable || !p->threshold || !p->out)
        goto err_free;
    ret = -pthread_mutex_init(&p->lock, NULL);
    if (ret)
        goto err_free;
    p->base = base;
    p->host = *host;

    if (mem) {
        ret = guest_mem_add_mmio(mem, base, PLIC_SIZE, &plic_mmio_ops, p, "plic");
        if (ret)
            goto err_mutex;
    }
    *out = p;
    return 0;

err_mutex:
    pthread_mutex_destroy(&p->lock);
err_free:
    free(p->out);
    free(p->threshold);
    free(p->enable);
    free(p);
    return ret;
}

void plic_destroy(struct plic *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p->out);
    free(p->threshold);
    free(p->enable);
    free(p);
}

void plic_reset(struct plic *p)
{
    pthread_mutex_lock(&p->lock);
    clear_regs_locked(p);
    for (unsigned ctx = 0; ctx < p->nctx; ctx++) {
        p->out[ctx] = false;
        p->host.set_external(p->host.opaque, ctx / 2, ctx & 1, false);
    }
    pthread_mutex_unlock(&p->lock);
}

int plic_fdt(struct plic *p, struct fdt_ctx *ctx)
{
    static const char compat[] = "sifive,plic-1.0.0\0riscv,plic0";
    void *fdt = ctx->fdt;
    char name[48];
    int err;

    snprintf(name, sizeof(name), "plic@%llx", (unsigned long long)p->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_u32(fdt, "#interrupt-cells", 1)) ||
        (err = fdt_property_u32(fdt, "#address-cells", 0)) ||
        (err = fdt_property(fdt, "compatible", compat, sizeof(compat))) ||
        (err = fdt_property(fdt, "interrupt-controller", NULL, 0)))
        return device_fdt_errno(err);
    if ((err = device_fdt_hart_irqs(ctx, p->nharts, IRQ_M_EXT, IRQ_S_EXT)))
        return err;
    if ((err = device_fdt_reg(fdt, p->base, PLIC_SIZE)) ||
        (err = fdt_property_u32(fdt, "riscv,ndev", PLIC_NUM_SOURCES - 1)) ||
        (err = fdt_property_u32(fdt, "phandle", ctx->plic_phandle)) ||
        (err = fdt_end_node(fdt)))
        return device_fdt_errno(err);
    return 0;
}

int plic_save(struct plic *p, struct state_writer *w)
{
    pthread_mutex_lock(&p->lock);
    state_begin(w, PLIC_STATE_TAG, 0, PLIC_STATE_MAJOR, PLIC_STATE_MINOR);
    state_put_u32(w, p->nharts);
    state_put_u32(w, PLIC_NUM_SOURCES);
    state_put_bytes(w, p->priority, PLIC_NUM_SOURCES);
    for (unsigned i = 0; i < WORDS; i++) {
        state_put_u32(w, p->level[i]);
        state_put_u32(w, p->pending[i]);
        state_put_u32(w, p->claimed[i]);
    }
    for (unsigned c = 0; c < p->nctx; c++) {
        for (unsigned i = 0; i < WORDS; i++)
            state_put_u32(w, p->enable[c * WORDS + i]);
        state_put_u8(w, p->threshold[c]);
    }
    pthread_mutex_unlock(&p->lock);
    return state_end(w);
}

int plic_load(struct plic *p, const struct state_reader *r, char *err, size_t errlen)
{
    struct state_section s;
    uint32_t nharts, nsources;
    uint8_t priority[PLIC_NUM_SOURCES];
    uint32_t level[WORDS], pending[WORDS], claimed[WORDS];
    int ret = state_reader_section(r, PLIC_STATE_TAG, 0, PLIC_STATE_MAJOR, &s, err, errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &nharts);
    state_get_u32(&s, &nsources);
    if (nharts != p->nharts || nsources != PLIC_NUM_SOURCES)
        return state_section_error(&s, err, errlen, -EINVAL,
                                   "saved for %u harts and %u sources, this PLIC has %u and %u",
                                   nharts, nsources, p->nharts, PLIC_NUM_SOURCES);
    uint32_t *enable = calloc((size_t)p->nctx * WORDS, sizeof(*enable));
    uint8_t *threshold = calloc(p->nctx, 1);
    if (!enable || !threshold) {
        ret = state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    state_get_bytes(&s, priority, sizeof(priority));
    for (unsigned i = 0; i < WORDS; i++) {
        state_get_u32(&s, &level[i]);
        state_get_u32(&s, &pending[i]);
        state_get_u32(&s, &claimed[i]);
    }
    for (unsigned c = 0; c < p->nctx; c++) {
        for (unsigned i = 0; i < WORDS; i++)
            state_get_u32(&s, &enable[c * WORDS + i]);
        state_get_u8(&s, &threshold[c]);
    }
    if ((ret = state_section_done(&s, err, errlen)))
        goto out;

    ret = -EINVAL;
    if (priority[0]) {
        state_section_error(&s, err, errlen, ret, "source 0 has a priority");
        goto out;
    }
    for (unsigned i = 1; i < PLIC_NUM_SOURCES; i++)
        if (priority[i] > PLIC_MAX_PRIORITY) {
            state_section_error(&s, err, errlen, ret, "source %u priority %u above %u", i,
                                priority[i], PLIC_MAX_PRIORITY);
            goto out;
        }
    if ((level[0] | pending[0] | claimed[0]) & 1) {
        state_section_error(&s, err, errlen, ret, "source 0 is pending, claimed or raised");
        goto out;
    }
    for (unsigned i = 0; i < WORDS; i++)
        if (pending[i] != (level[i] & ~claimed[i])) {
            state_section_error(&s, err, errlen, ret,
                                "pending bits 0x%08x (word %u) disagree with levels 0x%08x and claims 0x%08x",
                                pending[i], i, level[i], claimed[i]);
            goto out;
        }
    for (unsigned c = 0; c < p->nctx; c++) {
        if (threshold[c] > PLIC_MAX_PRIORITY) {
            state_section_error(&s, err, errlen, ret, "context %u threshold %u above %u", c,
                                threshold[c], PLIC_MAX_PRIORITY);
            goto out;
        }
        if (enable[c * WORDS] & 1) {
            state_section_error(&s, err, errlen, ret, "context %u enables source 0", c);
            goto out;
        }
    }

    pthread_mutex_lock(&p->lock);
    memcpy(p->priority, priority, sizeof(priority));
    memcpy(p->level, level, sizeof(level));
    memcpy(p->pending, pending, sizeof(pending));
    memcpy(p->claimed, claimed, sizeof(claimed));
    memcpy(p->enable, enable, (size_t)p->nctx * WORDS * sizeof(*enable));
    memcpy(p->threshold, threshold, p->nctx);
    /* Push every output: the harts' MEIP/SEIP follow this PLIC, not the snapshot's mip. */
    for (unsigned c = 0; c < p->nctx; c++) {
        p->out[c] = best_locked(p, c) != 0;
        p->host.set_external(p->host.opaque, c / 2, c & 1, p->out[c]);
    }
    pthread_mutex_unlock(&p->lock);
    ret = 0;
out:
    free(enable);
    free(threshold);
    return ret;
}
