/* Unit tests for the SiFive test finisher: pass/fail/reset codes, ignored
 * values and offsets, access sizes, and the syscon FDT nodes. */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev/sifive_test.h"
#include "mem/guest_mem.h"

#include "check.h"

#define BASE SIFIVE_TEST_VIRT_BASE

struct rec {
    int calls;
    enum finisher_action action;
    int code;
};

static void finish(void *opaque, enum finisher_action action, int code)
{
    struct rec *r = opaque;
    r->calls++;
    r->action = action;
    r->code = code;
}

static void test_codes(void)
{
    struct guest_mem mem;
    memset(&mem, 0, sizeof(mem));
    struct rec rec = { 0 };
    struct sifive_test_host host = { .finish = finish, .opaque = &rec };
    struct sifive_test *t = NULL;
    CHECK_EQ(sifive_test_create(&mem, BASE, &host, &t), 0);
    if (!t)
        return;

    CHECK(guest_mem_mmio_write(&mem, BASE, 4, 0x5555));
    CHECK_EQ(rec.calls, 1);
    CHECK_EQ(rec.action, FINISHER_PASS);
    CHECK_EQ(rec.code, 0);

    CHECK(guest_mem_mmio_write(&mem, BASE, 4, 0x7777));
    CHECK_EQ(rec.calls, 2);
    CHECK_EQ(rec.action, FINISHER_RESET);

    CHECK(guest_mem_mmio_write(&mem, BASE, 4, (42u << 16) | 0x3333));
    CHECK_EQ(rec.calls, 3);
    CHECK_EQ(rec.action, FINISHER_FAIL);
    CHECK_EQ(rec.code, 42);

    CHECK(guest_mem_mmio_write(&mem, BASE, 4, (0xffffu << 16) | 0x3333));
    CHECK_EQ(rec.calls, 4);
    CHECK_EQ(rec.action, FINISHER_FAIL);
    CHECK_EQ(rec.code, 0xffff);

    /* a 16-bit write works too (QEMU accepts 2..4 bytes) */
    CHECK(guest_mem_mmio_write(&mem, BASE, 2, 0x5555));
    CHECK_EQ(rec.calls, 5);
    CHECK_EQ(rec.action, FINISHER_PASS);

    /* other values and offsets are ignored */
    CHECK(guest_mem_mmio_write(&mem, BASE, 4, 0x1234));
    CHECK(guest_mem_mmio_write(&mem, BASE, 4, 0x5556));
    CHECK(guest_mem_mmio_write(&mem, BASE, 4, 0));
    CHECK(guest_mem_mmio_write(&mem, BASE + 4, 4, 0x5555));
    CHECK_EQ(rec.calls, 5);

    /* byte and 64-bit accesses fault; reads return 0 */
    uint64_t v = 1;
    CHECK(!guest_mem_mmio_write(&mem, BASE, 1, 0x55));
    CHECK(!guest_mem_mmio_write(&mem, BASE, 8, 0x5555));
    CHECK_EQ(rec.calls, 5);
    CHECK(guest_mem_mmio_read(&mem, BASE, 4, &v));
    CHECK_EQ(v, 0);
    CHECK(!guest_mem_mmio_read(&mem, BASE, 1, &v));

    sifive_test_reset(t);
    sifive_test_destroy(t);
    sifive_test_destroy(NULL);
}

static void test_create_errors(void)
{
    struct sifive_test *t = (void *)1;
    struct sifive_test_host none = { 0 };
    CHECK_EQ(sifive_test_create(NULL, BASE, &none, &t), -EINVAL);
    CHECK(t == NULL);
    CHECK_EQ(sifive_test_create(NULL, BASE, NULL, &t), -EINVAL);
    struct guest_mem mem;
    memset(&mem, 0, sizeof(mem));
    struct rec rec = { 0 };
    struct sifive_test_host host = { .finish = finish, .opaque = &rec };
    struct sifive_test *a = NULL, *b = NULL;
    CHECK_EQ(sifive_test_create(&mem, BASE, &host, &a), 0);
    CHECK_EQ(sifive_test_create(&mem, BASE + 0x800, &host, &b), -EEXIST);
    CHECK(b == NULL);
    sifive_test_destroy(a);
}

static void test_fdt(void)
{
    struct rec rec = { 0 };
    struct sifive_test_host host = { .finish = finish, .opaque = &rec };
    struct sifive_test *t = NULL;
    CHECK_EQ(sifive_test_create(NULL, BASE, &host, &t), 0);
    if (!t)
        return;
    char buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 1, .nharts = 1 };
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(fdt_begin_node(buf, "soc"), 0);
    CHECK_EQ(sifive_test_fdt(t, &ctx, 0), -EINVAL);
    CHECK_EQ(sifive_test_fdt(t, &ctx, 12), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(sifive_test_fdt_syscon(&ctx, 0), -EINVAL);
    CHECK_EQ(sifive_test_fdt_syscon(&ctx, 12), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);

    /* a read-write copy, as the machine would use to patch /chosen */
    char *rw = malloc(8192);
    CHECK(rw != NULL);
    if (!rw)
        return;
    CHECK_EQ(fdt_open_into(buf, rw, 8192), 0);

    int node = fdt_path_offset(rw, "/soc/test@100000");
    CHECK(node >= 0);
    int len = 0;
    const char *compat = fdt_getprop(rw, node, "compatible", &len);
    static const char want[] = "sifive,test1\0sifive,test0\0syscon";
    CHECK(compat && len == (int)sizeof(want) && memcmp(compat, want, sizeof(want)) == 0);
    CHECK_EQ(fdt_get_phandle(rw, node), 12);
    CHECK_EQ(fdt_node_offset_by_phandle(rw, 12), node);
    const fdt32_t *reg = fdt_getprop(rw, node, "reg", &len);
    CHECK(reg && len == 16);
    if (reg && len == 16) {
        CHECK_EQ(fdt32_to_cpu(reg[1]), 0x100000);
        CHECK_EQ(fdt32_to_cpu(reg[3]), 0x1000);
    }

    static const struct { const char *path, *compat; uint32_t value; } syscon[] = {
        { "/poweroff", "syscon-poweroff", 0x5555 },
        { "/reboot", "syscon-reboot", 0x7777 },
    };
    for (int i = 0; i < 2; i++) {
        int n = fdt_path_offset(rw, syscon[i].path);
        CHECK(n >= 0);
        CHECK_EQ(fdt_node_check_compatible(rw, n, syscon[i].compat), 0);
        const fdt32_t *p = fdt_getprop(rw, n, "regmap", &len);
        CHECK(p && len == 4 && fdt32_to_cpu(*p) == 12);
        p = fdt_getprop(rw, n, "offset", &len);
        CHECK(p && len == 4 && fdt32_to_cpu(*p) == 0);
        p = fdt_getprop(rw, n, "value", &len);
        CHECK(p && len == 4 && fdt32_to_cpu(*p) == syscon[i].value);
    }
    free(rw);
    sifive_test_destroy(t);
}

int main(void)
{
    test_codes();
    test_create_errors();
    test_fdt();
    return check_summary("sifive_test");
}
