/* SiFive test finisher. See sifive_test.h for the threading contract: the
 * device is immutable after create, so there is no lock. */
#include "dev/sifive_test.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>

#include "state/state.h"

struct sifive_test {
    uint64_t base;
    struct sifive_test_host host;
};

static bool test_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    (void)opaque;
    (void)offset;
    if (size != 2 && size != 4)
        return false;
    *value = 0;
    return true;
}

static bool test_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    const struct sifive_test *t = opaque;

    if (size != 2 && size != 4)
        return false;
    if (offset != 0)
        return true;
    uint32_t status = (uint32_t)value & 0xffff;
    int code = (int)(((uint32_t)value >> 16) & 0xffff);
    switch (status) {
    case FINISHER_PASS_MAGIC:
        t->host.finish(t->host.opaque, FINISHER_PASS, 0);
        break;
    case FINISHER_FAIL_MAGIC:
        t->host.finish(t->host.opaque, FINISHER_FAIL, code);
        break;
    case FINISHER_RESET_MAGIC:
        t->host.finish(t->host.opaque, FINISHER_RESET, 0);
        break;
    default:
        break; /* ignored, as in QEMU */
    }
    return true;
}

static const struct mmio_ops sifive_test_mmio_ops = {
    .read = test_read,
    .write = test_write,
};

int sifive_test_create(struct guest_mem *mem, uint64_t base,
                       const struct sifive_test_host *host, struct sifive_test **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!host || !host->finish)
        return -EINVAL;
    struct sifive_test *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->base = base;
    t->host = *host;
    if (mem) {
        ret = guest_mem_add_mmio(mem, base, SIFIVE_TEST_SIZE, &sifive_test_mmio_ops, t,
                                 "sifive_test");
        if (ret) {
            free(t);
            return ret;
        }
    }
    *out = t;
    return 0;
}

void sifive_test_destroy(struct sifive_test *t)
{
    free(t);
}

void sifive_test_reset(struct sifive_test *t)
{
    (void)t;
}

static int syscon_node(void *fdt, const char *name, const char *compat, uint32_t phandle,
                       uint32_t value)
{
    int err;
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_string(fdt, "compatible", compat)) ||
        (err = fdt_property_u32(fdt, "regmap", phandle)) ||
        (err = fdt_property_u32(fdt, "offset", 0)) ||
        (err = fdt_property_u32(fdt, "value", value)) ||
        (err = fdt_end_node(fdt)))
        return err;
    return 0;
}

int sifive_test_fdt(struct sifive_test *t, struct fdt_ctx *ctx, uint32_t phandle)
{
    static const char compat[] = "sifive,test1\0sifive,test0\0syscon";
    void *fdt = ctx->fdt;
    char name[48];
    int err;

    if (phandle == 0 || phandle == UINT32_MAX)
        return -EINVAL;
    snprintf(name, sizeof(name), "test@%llx", (unsigned long long)t->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property(fdt, "compatible", compat, sizeof(compat))) ||
        (err = device_fdt_reg(fdt, t->base, SIFIVE_TEST_SIZE)) ||
        (err = fdt_property_u32(fdt, "phandle", phandle)) ||
        (err = fdt_end_node(fdt)))
        return device_fdt_errno(err);
    return 0;
}

int sifive_test_fdt_syscon(struct fdt_ctx *ctx, uint32_t phandle)
{
    int err;
    if (phandle == 0 || phandle == UINT32_MAX)
        return -EINVAL;
    if ((err = syscon_node(ctx->fdt, "poweroff", "syscon-poweroff", phandle, FINISHER_PASS_MAGIC)) ||
        (err = syscon_node(ctx->fdt, "reboot", "syscon-reboot", phandle, FINISHER_RESET_MAGIC)))
        return device_fdt_errno(err);
    return 0;
}

int sifive_test_save(struct sifive_test *t, struct state_writer *w)
{
    (void)t;
    state_begin(w, SIFIVE_TEST_STATE_TAG, 0, SIFIVE_TEST_STATE_MAJOR, SIFIVE_TEST_STATE_MINOR);
    return state_end(w);
}

int sifive_test_load(struct sifive_test *t, const struct state_reader *r, char *err,
                     size_t errlen)
{
    struct state_section s;
    (void)t;
    int ret = state_reader_section(r, SIFIVE_TEST_STATE_TAG, 0, SIFIVE_TEST_STATE_MAJOR, &s,
                                   err, errlen);
    return ret ? ret : state_section_done(&s, err, errlen);
}
