/* Goldfish RTC. See goldfish_rtc.h for the threading contract.
 *
 * Lock order: rtc->lock -> PLIC lock (irq line), deadline_changed's locks. */
#include "dev/goldfish_rtc.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "state/state.h"

enum {
    RTC_TIME_LOW        = 0x00,
    RTC_TIME_HIGH       = 0x04,
    RTC_ALARM_LOW       = 0x08,
    RTC_ALARM_HIGH      = 0x0c,
    RTC_IRQ_ENABLED     = 0x10,
    RTC_CLEAR_ALARM     = 0x14,
    RTC_ALARM_STATUS    = 0x18,
    RTC_CLEAR_INTERRUPT = 0x1c,
};

struct goldfish_rtc {
    pthread_mutex_t lock;
    uint64_t base;
    struct irq_line irq;
    struct goldfish_rtc_host host;

    uint64_t tick_offset;   /* guest ns = host realtime ns + tick_offset (mod 2^64) */
    uint64_t alarm_next;
    uint32_t time_high;     /* latched by reading TIME_LOW */
    bool alarm_running;
    bool irq_pending;
    bool irq_enabled;
    bool irq_level;
};

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint64_t now_locked(const struct goldfish_rtc *r)
{
    return (uint64_t)clock_ns(CLOCK_REALTIME) + r->tick_offset;
}

static void update_irq_locked(struct goldfish_rtc *r)
{
    bool level = r->irq_pending && r->irq_enabled;
    if (level != r->irq_level) {
        r->irq_level = level;
        irq_line_set(&r->irq, level);
    }
}

static void deadline_changed_locked(struct goldfish_rtc *r)
{
    if (r->host.deadline_changed)
        r->host.deadline_changed(r->host.opaque);
}

static void fire_locked(struct goldfish_rtc *r)
{
    r->alarm_running = false;
    r->irq_pending = true;
    update_irq_locked(r);
}

static void set_alarm_locked(struct goldfish_rtc *r)
{
    if (r->alarm_next <= now_locked(r))
        fire_locked(r);
    else
        r->alarm_running = true;
    deadline_changed_locked(r);
}

static void set_time_half_locked(struct goldfish_rtc *r, unsigned shift, uint32_t v)
{
    uint64_t cur = now_locked(r);
    uint64_t mask = 0xffffffffull << shift;
    uint64_t want = (cur & ~mask) | ((uint64_t)v << shift);
    r->tick_offset += want - cur;
    if (r->alarm_running)
        deadline_changed_locked(r);
}

static bool rtc_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct goldfish_rtc *r = opaque;
    uint64_t v = 0;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&r->lock);
    switch (offset) {
    case RTC_TIME_LOW: {
        uint64_t t = now_locked(r);
        r->time_high = (uint32_t)(t >> 32);
        v = (uint32_t)t;
        break;
    }
    case RTC_TIME_HIGH:
        v = r->time_high;
        break;
    case RTC_ALARM_LOW:
        v = (uint32_t)r->alarm_next;
        break;
    case RTC_ALARM_HIGH:
        v = (uint32_t)(r->alarm_next >> 32);
        break;
    case RTC_IRQ_ENABLED:
        v = r->irq_enabled;
        break;
    case RTC_ALARM_STATUS:
        v = r->alarm_running;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&r->lock);
    *value = v;
    return true;
}

static bool rtc_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct goldfish_rtc *r = opaque;
    uint32_t v = (uint32_t)value;

    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&r->lock);
    switch (offset) {
    case RTC_TIME_LOW:
        set_time_half_locked(r, 0, v);
        break;
    case RTC_TIME_HIGH:
        set_time_half_locked(r, 32, v);
        break;
    case RTC_ALARM_LOW:
        r->alarm_next = (r->alarm_next & 0xffffffff00000000ull) | v;
        set_alarm_locked(r);
        break;
    case RTC_ALARM_HIGH:
        r->alarm_next = (r->alarm_next & 0xffffffffull) | ((uint64_t)v << 32);
        break;
    case RTC_IRQ_ENABLED:
        r->irq_enabled = v & 1;
        update_irq_locked(r);
        break;
    case RTC_CLEAR_ALARM:
        if (r->alarm_running) {
            r->alarm_running = false;
            deadline_changed_locked(r);
        }
        break;
    case RTC_CLEAR_INTERRUPT:
        r->irq_pending = false;
        update_irq_locked(r);
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return true;
}

static const struct mmio_ops goldfish_rtc_mmio_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

int goldfish_rtc_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                        const struct goldfish_rtc_host *host, struct goldfish_rtc **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    struct goldfish_rtc *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    ret = -pthread_mutex_init(&r->lock, NULL);
    if (ret)
        goto err_free;
    r->base = base;
    r->irq = irq;
    if (host)
        r->host = *host;

    if (mem) {
        ret = guest_mem_add_mmio(mem, base, GOLDFISH_RTC_SIZE, &goldfish_rtc_mmio_ops, r,
                                 "goldfish_rtc");
        if (ret)
            goto err_mutex;
    }
    *out = r;
    return 0;

err_mutex:
    pthread_mutex_destroy(&r->lock);
err_free:
    free(r);
    return ret;
}

void goldfish_rtc_destroy(struct goldfish_rtc *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void goldfish_rtc_reset(struct goldfish_rtc *r)
{
    pthread_mutex_lock(&r->lock);
    bool was_running = r->alarm_running;
    r->alarm_next = 0;
    r->alarm_running = false;
    r->irq_pending = false;
    r->irq_enabled = false;
    r->time_high = 0;
    update_irq_locked(r);
    if (was_running)
        deadline_changed_locked(r);
    pthread_mutex_unlock(&r->lock);
}

int64_t goldfish_rtc_next_deadline_ns(struct goldfish_rtc *r)
{
    int64_t deadline = INT64_MAX;

    pthread_mutex_lock(&r->lock);
    if (r->alarm_running) {
        int64_t mono = clock_ns(CLOCK_MONOTONIC);
        uint64_t now = now_locked(r);
        if (r->alarm_next <= now) {
            deadline = mono;
        } else {
            uint64_t wait = r->alarm_next - now;
            deadline = wait >= (uint64_t)(INT64_MAX - mono) ? INT64_MAX - 1 : mono + (int64_t)wait;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return deadline;
}

void goldfish_rtc_poll(struct goldfish_rtc *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->alarm_running && r->alarm_next <= now_locked(r)) {
        fire_locked(r);
        deadline_changed_locked(r);
    }
    pthread_mutex_unlock(&r->lock);
}

int goldfish_rtc_fdt(struct goldfish_rtc *r, struct fdt_ctx *ctx)
{
    char name[48];
    void *fdt = ctx->fdt;
    int err;

    snprintf(name, sizeof(name), "rtc@%llx", (unsigned long long)r->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_string(fdt, "compatible", "google,goldfish-rtc")) ||
        (err = device_fdt_reg(fdt, r->base, GOLDFISH_RTC_SIZE)))
        return device_fdt_errno(err);
    if (r->irq.set_level) {
        if ((err = fdt_property_u32(fdt, "interrupt-parent", ctx->plic_phandle)) ||
            (err = fdt_property_u32(fdt, "interrupts", r->irq.irq)))
            return device_fdt_errno(err);
    }
    return device_fdt_errno(fdt_end_node(fdt));
}

int goldfish_rtc_save(struct goldfish_rtc *r, struct state_writer *w)
{
    pthread_mutex_lock(&r->lock);
    state_begin(w, GOLDFISH_RTC_STATE_TAG, 0, GOLDFISH_RTC_STATE_MAJOR, GOLDFISH_RTC_STATE_MINOR);
    state_put_u64(w, r->tick_offset);
    state_put_u64(w, r->alarm_next);
    state_put_u32(w, r->time_high);
    state_put_u8(w, r->alarm_running);
    state_put_u8(w, r->irq_pending);
    state_put_u8(w, r->irq_enabled);
    pthread_mutex_unlock(&r->lock);
    return state_end(w);
}

int goldfish_rtc_load(struct goldfish_rtc *r, const struct state_reader *rd, char *err,
                      size_t errlen)
{
    struct state_section s;
    uint64_t offset, alarm;
    uint32_t time_high;
    bool running, pending, enabled;
    int ret = state_reader_section(rd, GOLDFISH_RTC_STATE_TAG, 0, GOLDFISH_RTC_STATE_MAJOR, &s,
                                   err, errlen);
    if (ret)
        return ret;
    state_get_u64(&s, &offset);
    state_get_u64(&s, &alarm);
    state_get_u32(&s, &time_high);
    state_get_bool(&s, &running);
    state_get_bool(&s, &pending);
    state_get_bool(&s, &enabled);
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;

    pthread_mutex_lock(&r->lock);
    r->tick_offset = offset;
    r->alarm_next = alarm;
    r->time_high = time_high;
    r->alarm_running = running;
    r->irq_pending = pending;
    r->irq_enabled = enabled;
    update_irq_locked(r);
    deadline_changed_locked(r);
    pthread_mutex_unlock(&r->lock);
    return 0;
}
