/* Allwinner sun6i watchdog. See sunxi_wdt.h for the registers and the
 * threading contract.
 *
 * Lock order: w->lock -> PLIC lock (irq line), deadline_changed's locks. */
#include "dev/sunxi_wdt.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "state/state.h"

#define MODE_INTV_SHIFT 4
#define MODE_BITS       (SUNXI_WDT_MODE_EN | (0xfu << MODE_INTV_SHIFT))
#define CFG_BITS        3u
#define HALF_SECOND     (TIMEBASE_HZ / 2)

/* INTV_VALUE -> half seconds (A31 user manual, WDOG0_MODE_REG; QEMU's
 * allwinner_wdt_count_map); 12..15 are reserved. */
static const uint8_t interval_halves[12] = { 1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32 };
#define MAX_INTERVAL_TICKS (32ull * HALF_SECOND)

struct sunxi_wdt {
    pthread_mutex_t lock;
    uint64_t base;
    struct irq_line irq;
    const struct timebase *tb;
    struct sunxi_wdt_host host;

    uint32_t irq_en, irq_sta, cfg, mode;
    bool counting;
    uint64_t deadline;      /* guest ticks at which the count expires, while counting */
    bool irq_level;
};

static uint64_t interval_ticks(uint32_t mode)
{
    unsigned v = (mode >> MODE_INTV_SHIFT) & 0xf;
    return v < sizeof(interval_halves) ? interval_halves[v] * HALF_SECOND : MAX_INTERVAL_TICKS;
}

static void update_irq_locked(struct sunxi_wdt *w)
{
    bool level = (w->irq_en & w->irq_sta & 1) != 0;
    if (level != w->irq_level) {
        w->irq_level = level;
        irq_line_set(&w->irq, level);
    }
}

static void deadline_changed_locked(struct sunxi_wdt *w)
{
    if (w->host.deadline_changed)
        w->host.deadline_changed(w->host.opaque);
}

static void start_locked(struct sunxi_wdt *w)
{
    w->counting = true;
    w->deadline = timebase_now(w->tb) + interval_ticks(w->mode);
    deadline_changed_locked(w);
}

static void stop_locked(struct sunxi_wdt *w)
{
    if (w->counting) {
        w->counting = false;
        deadline_changed_locked(w);
    }
}

static bool wdt_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct sunxi_wdt *w = opaque;
    uint64_t v = 0;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&w->lock);
    switch (offset) {
    case SUNXI_WDT_IRQ_EN: v = w->irq_en; break;
    case SUNXI_WDT_IRQ_STA: v = w->irq_sta; break;
    case SUNXI_WDT_CFG: v = w->cfg; break;
    case SUNXI_WDT_MODE: v = w->mode; break;
    default: break;   /* CTRL reads 0, like the unused offsets */
    }
    pthread_mutex_unlock(&w->lock);
    *value = v;
    return true;
}

static bool wdt_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct sunxi_wdt *w = opaque;
    uint32_t v = (uint32_t)value;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&w->lock);
    switch (offset) {
    case SUNXI_WDT_IRQ_EN:
        w->irq_en = v & 1;
        update_irq_locked(w);
        break;
    case SUNXI_WDT_IRQ_STA:
        w->irq_sta &= ~(v & 1);   /* write 1 to clear */
        update_irq_locked(w);
        break;
    case SUNXI_WDT_CTRL:
        /* The key guards the restart: a stray write does not pet the dog. */
        if ((v & 0x1fffu) == SUNXI_WDT_RESTART && (w->mode & SUNXI_WDT_MODE_EN))
            start_locked(w);
        break;
    case SUNXI_WDT_CFG:
        w->cfg = v & CFG_BITS;
        break;
    case SUNXI_WDT_MODE: {
        uint32_t old = w->mode;
        w->mode = v & MODE_BITS;
        if (!(w->mode & SUNXI_WDT_MODE_EN))
            stop_locked(w);
        else if (!(old & SUNXI_WDT_MODE_EN))
            start_locked(w);   /* rising edge of EN */
        break;
    }
    default:
        break;
    }
    pthread_mutex_unlock(&w->lock);
    return true;
}

static const struct mmio_ops sunxi_wdt_mmio_ops = {
    .read = wdt_read,
    .write = wdt_write,
};

int sunxi_wdt_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                     const struct timebase *tb, const struct sunxi_wdt_host *host,
                     struct sunxi_wdt **out)
{
    int ret;

    if (!out || !tb)
        return -EINVAL;
    *out = NULL;
    struct sunxi_wdt *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    ret = -pthread_mutex_init(&w->lock, NULL);
    if (ret)
        goto err_free;
    w->base = base;
    w->irq = irq;
    w->tb = tb;
    if (host)
        w->host = *host;
    if (mem) {
        ret = guest_mem_add_mmio(mem, base, SUNXI_WDT_SIZE, &sunxi_wdt_mmio_ops, w, "sunxi_wdt");
        if (ret)
            goto err_mutex;
    }
    *out = w;
    return 0;

err_mutex:
    pthread_mutex_destroy(&w->lock);
err_free:
    free(w);
    return ret;
}

void sunxi_wdt_destroy(struct sunxi_wdt *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void sunxi_wdt_reset(struct sunxi_wdt *w)
{
    pthread_mutex_lock(&w->lock);
    w->irq_en = w->irq_sta = w->cfg = w->mode = 0;
    stop_locked(w);
    update_irq_locked(w);
    pthread_mutex_unlock(&w->lock);
}

int64_t sunxi_wdt_next_deadline_ns(struct sunxi_wdt *w)
{
    pthread_mutex_lock(&w->lock);
    int64_t ns = w->counting ? timebase_ticks_to_host_ns(w->tb, w->deadline) : INT64_MAX;
    pthread_mutex_unlock(&w->lock);
    return ns;
}

bool sunxi_wdt_poll(struct sunxi_wdt *w)
{
    bool reset = false;
    pthread_mutex_lock(&w->lock);
    if (w->counting && timebase_now(w->tb) >= w->deadline) {
        w->counting = false;   /* one-shot: quiet until restarted */
        if ((w->cfg & CFG_BITS) == SUNXI_WDT_CFG_SYSTEM) {
            reset = true;
        } else if ((w->cfg & CFG_BITS) == SUNXI_WDT_CFG_IRQ) {
            w->irq_sta = 1;
            update_irq_locked(w);
        }
        deadline_changed_locked(w);
    }
    pthread_mutex_unlock(&w->lock);
    return reset;
}

uint64_t sunxi_wdt_ticks_left(struct sunxi_wdt *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t left = UINT64_MAX;
    if (w->counting) {
        uint64_t now = timebase_now(w->tb);
        left = w->deadline > now ? w->deadline - now : 0;
    }
    pthread_mutex_unlock(&w->lock);
    return left;
}

int sunxi_wdt_fdt(struct sunxi_wdt *w, struct fdt_ctx *ctx)
{
    char name[48];
    void *fdt = ctx->fdt;
    int err;

    /* Documentation/devicetree/bindings/watchdog/allwinner,sun4i-a10-wdt.yaml:
     * compatible, reg and interrupts (the driver uses neither the
     * interrupt nor a clock). */
    snprintf(name, sizeof(name), "watchdog@%llx", (unsigned long long)w->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_string(fdt, "compatible", "allwinner,sun6i-a31-wdt")) ||
        (err = device_fdt_reg(fdt, w->base, SUNXI_WDT_SIZE)) ||
        (err = fdt_property_u32(fdt, "interrupt-parent", ctx->plic_phandle)) ||
        (err = fdt_property_u32(fdt, "interrupts", w->irq.irq)) ||
        (err = fdt_end_node(fdt)))
        return device_fdt_errno(err);
    return 0;
}

int sunxi_wdt_save(struct sunxi_wdt *w, struct state_writer *wr)
{
    pthread_mutex_lock(&w->lock);
    uint64_t left = 0;
    if (w->counting) {
        uint64_t now = timebase_now(w->tb);
        left = w->deadline > now ? w->deadline - now : 0;
    }
    state_begin(wr, SUNXI_WDT_STATE_TAG, 0, SUNXI_WDT_STATE_MAJOR, SUNXI_WDT_STATE_MINOR);
    state_put_u32(wr, w->irq_en);
    state_put_u32(wr, w->irq_sta);
    state_put_u32(wr, w->cfg);
    state_put_u32(wr, w->mode);
    state_put_u8(wr, w->counting);
    state_put_u64(wr, left);
    pthread_mutex_unlock(&w->lock);
    return state_end(wr);
}

int sunxi_wdt_load(struct sunxi_wdt *w, const struct state_reader *r, char *err,
                   size_t errlen)
{
    struct state_section s;
    uint32_t irq_en, irq_sta, cfg, mode;
    bool counting;
    uint64_t left;
    int ret = state_reader_section(r, SUNXI_WDT_STATE_TAG, 0, SUNXI_WDT_STATE_MAJOR, &s, err,
                                   errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &irq_en);
    state_get_u32(&s, &irq_sta);
    state_get_u32(&s, &cfg);
    state_get_u32(&s, &mode);
    state_get_bool(&s, &counting);
    state_get_u64(&s, &left);
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;
    if (irq_en > 1 || irq_sta > 1 || (cfg & ~CFG_BITS) || (mode & ~MODE_BITS))
        return state_section_error(&s, err, errlen, -EINVAL, "register bits the watchdog does "
                                   "not have (IRQ_EN 0x%x, IRQ_STA 0x%x, CFG 0x%x, MODE 0x%x)",
                                   irq_en, irq_sta, cfg, mode);
    /* The interval may have changed since the count started: bound it by
     * the longest. */
    if ((counting && !(mode & SUNXI_WDT_MODE_EN)) || (!counting && left) ||
        left > MAX_INTERVAL_TICKS)
        return state_section_error(&s, err, errlen, -EINVAL, "a count of %llu ticks that MODE "
                                   "0x%x cannot have", (unsigned long long)left, mode);

    pthread_mutex_lock(&w->lock);
    w->irq_en = irq_en;
    w->irq_sta = irq_sta;
    w->cfg = cfg;
    w->mode = mode;
    w->counting = counting;
    w->deadline = counting ? timebase_now(w->tb) + left : 0;
    w->irq_level = (irq_en & irq_sta) != 0;
    irq_line_set(&w->irq, w->irq_level);
    deadline_changed_locked(w);
    pthread_mutex_unlock(&w->lock);
    return 0;
}
