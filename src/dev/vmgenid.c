/* VM generation ID device. See vmgenid.h. */
#include "dev/vmgenid.h"

#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "state/state.h"

struct vmgenid {
    uint64_t base;
    struct irq_line irq;
    pthread_mutex_t lock;
    uint8_t id[VMGENID_ID_LEN];
    bool level;        /* the line: high from a change until the guest reads the ID */
};

static bool vmgenid_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct vmgenid *g = opaque;
    uint64_t v = 0;
    pthread_mutex_lock(&g->lock);
    for (unsigned i = 0; i < size; i++)
        if (offset + i < VMGENID_ID_LEN)
            v |= (uint64_t)g->id[offset + i] << (8 * i);
    if (offset < VMGENID_ID_LEN && g->level) {
        g->level = false;
        irq_line_set(&g->irq, false);
    }
    pthread_mutex_unlock(&g->lock);
    *value = v;
    return true;
}

static bool vmgenid_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    (void)opaque, (void)offset, (void)size, (void)value;
    return true;   /* read-only: writes are ignored */
}

static const struct mmio_ops vmgenid_ops = { .read = vmgenid_read, .write = vmgenid_write };

static int random_id(uint8_t id[VMGENID_ID_LEN])
{
    ssize_t n = getrandom(id, VMGENID_ID_LEN, 0);
    return n == (ssize_t)VMGENID_ID_LEN ? 0 : n < 0 ? -errno : -EIO;
}

int vmgenid_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                   struct vmgenid **out)
{
    struct vmgenid *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->base = base;
    g->irq = irq;
    pthread_mutex_init(&g->lock, NULL);
    int r = random_id(g->id);
    if (!r && mem)
        r = guest_mem_add_mmio(mem, base, VMGENID_SIZE, &vmgenid_ops, g, "vmgenid");
    if (r) {
        vmgenid_destroy(g);
        return r;
    }
    *out = g;
    return 0;
}

void vmgenid_destroy(struct vmgenid *g)
{
    if (!g)
        return;
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int vmgenid_new_generation(struct vmgenid *g)
{
    uint8_t id[VMGENID_ID_LEN];
    int r = random_id(id);
    if (r)
        return r;
    pthread_mutex_lock(&g->lock);
    memcpy(g->id, id, sizeof(id));
    g->level = true;
    irq_line_set(&g->irq, true);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_ID_LEN])
{
    pthread_mutex_lock(&g->lock);
    memcpy(id, g->id, VMGENID_ID_LEN);
    pthread_mutex_unlock(&g->lock);
}

int vmgenid_save(struct vmgenid *g, struct state_writer *w)
{
    pthread_mutex_lock(&g->lock);
    state_begin(w, "vmgenid", 0, 1, 0);
    state_put_bytes(w, g->id, VMGENID_ID_LEN);
    state_put_u8(w, g->level);
    pthread_mutex_unlock(&g->lock);
    return state_end(w);
}

int vmgenid_load(struct vmgenid *g, const struct state_reader *r, char *err, size_t errlen)
{
    struct state_section s;
    int rc = state_reader_section(r, "vmgenid", 0, 1, &s, err, errlen);
    if (rc)
        return rc;
    uint8_t id[VMGENID_ID_LEN];
    bool level = false;
    state_get_bytes(&s, id, sizeof(id));
    state_get_bool(&s, &level);
    if ((rc = state_section_done(&s, err, errlen)))
        return rc;
    pthread_mutex_lock(&g->lock);
    memcpy(g->id, id, sizeof(id));
    g->level = level;
    irq_line_set(&g->irq, level);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

int vmgenid_fdt(struct vmgenid *g, struct fdt_ctx *ctx)
{
    char name[48];
    int err;
    snprintf(name, sizeof(name), "vmgenid@%llx", (unsigned long long)g->base);
    if ((err = fdt_begin_node(ctx->fdt, name)) ||
        (err = fdt_property_string(ctx->fdt, "compatible", "microsoft,vmgenid")) ||
        (err = device_fdt_reg(ctx->fdt, g->base, VMGENID_SIZE)) ||
        (err = fdt_property_u32(ctx->fdt, "interrupt-parent", ctx->plic_phandle)) ||
        (err = fdt_property_u32(ctx->fdt, "interrupts", g->irq.irq)) ||
        (err = fdt_end_node(ctx->fdt)))
        return device_fdt_errno(err);
    return 0;
}
