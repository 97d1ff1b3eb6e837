/* ACLINT (CLINT layout). See aclint.h for the threading contract.
 *
 * Lock order: aclint->lock -> whatever the host callbacks take. */
#include "dev/aclint.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "state/state.h"

#define IRQ_M_SOFT  3
#define IRQ_M_TIMER 7

struct aclint {
    pthread_mutex_t lock;
    uint64_t base;
    unsigned nharts;
    struct timebase *tb; /* the VM's; written only by aclint_load() */
    struct aclint_host host;
    uint8_t *msip;       /* [nharts], 0 or 1 */
    uint64_t *mtimecmp;  /* [nharts] */
};

/* Reads `size` bytes at byte `shift` (0 or 4) of a 64-bit register. */
static uint64_t extract(uint64_t reg, unsigned shift, unsigned size)
{
    return size == 8 ? reg : (uint32_t)(reg >> (shift * 8));
}

static uint64_t deposit(uint64_t reg, unsigned shift, unsigned size, uint64_t v)
{
    if (size == 8)
        return v;
    uint64_t mask = 0xffffffffull << (shift * 8);
    return (reg & ~mask) | (((uint64_t)(uint32_t)v << (shift * 8)) & mask);
}

static bool valid_64bit_access(uint64_t offset, unsigned size)
{
    return (size == 4 || size == 8) && (offset & (size - 1)) == 0;
}

static bool aclint_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct aclint *a = opaque;
    uint64_t v = 0;

    if (offset < ACLINT_MTIMECMP_OFFSET) {
        if (size != 4 || (offset & 3))
            return false;
        unsigned h = (unsigned)(offset / 4);
        pthread_mutex_lock(&a->lock);
        if (h < a->nharts)
            v = a->msip[h];
        pthread_mutex_unlock(&a->lock);
    } else if (offset >= ACLINT_MTIME_OFFSET && offset < ACLINT_MTIME_OFFSET + 8) {
        if (!valid_64bit_access(offset, size))
            return false;
        v = extract(timebase_now(a->tb), (unsigned)(offset & 7), size);
    } else if (offset < ACLINT_MTIME_OFFSET) {
        if (!valid_64bit_access(offset, size))
            return false;
        uint64_t rel = offset - ACLINT_MTIMECMP_OFFSET;
        unsigned h = (unsigned)(rel / 8);
        pthread_mutex_lock(&a->lock);
        if (h < a->nharts)
            v = extract(a->mtimecmp[h], (unsigned)(rel & 7), size);
        pthread_mutex_unlock(&a->lock);
    }
    /* anything else in the window (past mtime) reads 0 */
    *value = v;
    return true;
}

static bool aclint_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct aclint *a = opaque;

    if (offset < ACLINT_MTIMECMP_OFFSET) {
        if (size != 4 || (offset & 3))
            return false;
        unsigned h = (unsigned)(offset / 4);
        pthread_mutex_lock(&a->lock);
        if (h < a->nharts) {
            a->msip[h] = value & 1;
            a->host.set_msip(a->host.opaque, h, value & 1);
        }
        pthread_mutex_unlock(&a->lock);
    } else if (offset >= ACLINT_MTIME_OFFSET && offset < ACLINT_MTIME_OFFSET + 8) {
        if (!valid_64bit_access(offset, size))
            return false;
        /* mtime writes are ignored: see aclint.h. */
    } else if (offset < ACLINT_MTIME_OFFSET) {
        if (!valid_64bit_access(offset, size))
            return false;
        uint64_t rel = offset - ACLINT_MTIMECMP_OFFSET;
        unsigned h = (unsigned)(rel / 8);
        pthread_mutex_lock(&a->lock);
        if (h < a->nharts) {
            a->mtimecmp[h] = deposit(a->mtimecmp[h], (unsigned)(rel & 7), size, value);
            a->host.set_mtimecmp(a->host.opaque, h, a->mtimecmp[h]);
        }
        pthread_mutex_unlock(&a->lock);
    }
    return true;
}

static const struct mmio_ops aclint_mmio_ops = {
    .read = aclint_read,
    .write = aclint_write,
};

int aclint_create(struct guest_mem *mem, uint64_t base, unsigned nharts,
                  struct timebase *tb, const struct aclint_host *host,
                  struct aclint **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!tb || !host || !host->set_msip || !host->set_mtimecmp ||
        nharts == 0 || nharts > ACLINT_MAX_HARTS)
        return -EINVAL;
    struct aclint *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    ret = -ENOMEM;
    a->msip = calloc(nharts, sizeof(*a->msip));
    a->mtimecmp = calloc(nharts, sizeof(*a->mtimecmp));
    if (!a->msip || !a->mtimecmp)
        goto err_free;
    ret = -pthread_mutex_init(&a->lock, NULL);
    if (ret)
        goto err_free;
    a->base = base;
    a->nharts = nharts;
    a->tb = tb;
    a->host = *host;
    for (unsigned h = 0; h < nharts; h++)
        a->mtimecmp[h] = UINT64_MAX;

    if (mem) {
        ret = guest_mem_add_mmio(mem, base, ACLINT_SIZE, &aclint_mmio_ops, a, "aclint");
        if (ret)
            goto err_mutex;
    }
    *out = a;
    return 0;

err_mutex:
    pthread_mutex_destroy(&a->lock);
err_free:
    free(a->mtimecmp);
    free(a->msip);
    free(a);
    return ret;
}

void aclint_destroy(struct aclint *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    free(a->mtimecmp);
    free(a->msip);
    free(a);
}

void aclint_reset(struct aclint *a)
{
    pthread_mutex_lock(&a->lock);
    for (unsigned h = 0; h < a->nharts; h++) {
        a->msip[h] = 0;
        a->mtimecmp[h] = UINT64_MAX;
        a->host.set_msip(a->host.opaque, h, false);
        a->host.set_mtimecmp(a->host.opaque, h, UINT64_MAX);
    }
    pthread_mutex_unlock(&a->lock);
}

int aclint_save(struct aclint *a, struct state_writer *w)
{
    pthread_mutex_lock(&a->lock);
    state_begin(w, ACLINT_STATE_TAG, 0, ACLINT_STATE_MAJOR, ACLINT_STATE_MINOR);
    state_put_u32(w, a->nharts);
    state_put_u64(w, timebase_now(a->tb));
    for (unsigned h = 0; h < a->nharts; h++) {
        state_put_u8(w, a->msip[h]);
        state_put_u64(w, a->mtimecmp[h]);
    }
    pthread_mutex_unlock(&a->lock);
    return state_end(w);
}

int aclint_load(struct aclint *a, const struct state_reader *r, char *err, size_t errlen)
{
    struct state_section s;
    uint32_t nharts;
    uint64_t mtime;
    int ret = state_reader_section(r, ACLINT_STATE_TAG, 0, ACLINT_STATE_MAJOR, &s, err, errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &nharts);
    state_get_u64(&s, &mtime);
    if (nharts != a->nharts)
        return state_section_error(&s, err, errlen, -EINVAL, "saved for %u harts, this ACLINT has %u",
                                   nharts, a->nharts);
    bool *msip = calloc(nharts, sizeof(*msip));
    uint64_t *cmp = calloc(nharts, sizeof(*cmp));
    if (!msip || !cmp) {
        ret = state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    for (unsigned h = 0; h < nharts; h++) {
        state_get_bool(&s, &msip[h]);
        state_get_u64(&s, &cmp[h]);
    }
    if ((ret = state_section_done(&s, err, errlen)))
        goto out;
    if (mtime > TIMEBASE_MAX_RESTORE_TICKS) {
        ret = state_section_error(&s, err, errlen, -EINVAL, "mtime 0x%llx is beyond 0x%llx",
                                  (unsigned long long)mtime, (unsigned long long)TIMEBASE_MAX_RESTORE_TICKS);
        goto out;
    }

    pthread_mutex_lock(&a->lock);
    timebase_set_now(a->tb, mtime);
    for (unsigned h = 0; h < nharts; h++) {
        a->msip[h] = msip[h];
        a->mtimecmp[h] = cmp[h];
        a->host.set_msip(a->host.opaque, h, msip[h]);
        a->host.set_mtimecmp(a->host.opaque, h, cmp[h]);
    }
    pthread_mutex_unlock(&a->lock);
out:
    free(msip);
    free(cmp);
    return ret;
}

int aclint_fdt(struct aclint *a, struct fdt_ctx *ctx)
{
    static const char compat[] = "sifive,clint0\0riscv,clint0";
    void *fdt = ctx->fdt;
    char name[48];
    int err;

    snprintf(name, sizeof(name), "clint@%llx", (unsigned long long)a->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property(fdt, "compatible", compat, sizeof(compat))) ||
        (err = device_fdt_reg(fdt, a->base, ACLINT_SIZE)))
        return device_fdt_errno(err);
    if ((err = device_fdt_hart_irqs(ctx, a->nharts, IRQ_M_SOFT, IRQ_M_TIMER)))
        return err;
    return device_fdt_errno(fdt_end_node(fdt));
}
