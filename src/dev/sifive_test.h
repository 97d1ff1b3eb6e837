/* SiFive test finisher ("sifive,test0"), as on QEMU's `virt` board
 * (0x0010_0000, size 0x1000). A 16- or 32-bit write at offset 0 with
 *   0x5555               -> power off, success (FINISHER_PASS, code 0)
 *   0x7777               -> reset              (FINISHER_RESET, code 0)
 *   (code << 16) | 0x3333 -> power off, failure (FINISHER_FAIL, code)
 * calls the host's `finish` callback; every other write is ignored, reads
 * return 0, 8-bit and 64-bit accesses fault (as in QEMU). Linux drives it
 * through syscon-poweroff / syscon-reboot, so the FDT node is also a syscon.
 *
 * Threads: MMIO ops on hart threads. The device holds no mutable state after
 * create (the callback is fixed), so it needs no lock; `finish` runs on the
 * writing hart's thread and must only request the VM exit or reset (never
 * exit() the process, never block on the hart). */
#ifndef NIMBUS_DEV_SIFIVE_TEST_H
#define NIMBUS_DEV_SIFIVE_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"

#define SIFIVE_TEST_VIRT_BASE 0x00100000ull
#define SIFIVE_TEST_SIZE      0x1000ull

#define FINISHER_FAIL_MAGIC   0x3333u
#define FINISHER_PASS_MAGIC   0x5555u
#define FINISHER_RESET_MAGIC  0x7777u

enum finisher_action {
    FINISHER_PASS,
    FINISHER_FAIL,
    FINISHER_RESET,
};

struct sifive_test;

struct sifive_test_host {
    void (*finish)(void *opaque, enum finisher_action action, int code); /* required */
    void *opaque;
};

/* Creates the finisher and, when `mem` is not NULL, registers
 * [base, base + SIFIVE_TEST_SIZE). Returns 0 or -errno. */
int sifive_test_create(struct guest_mem *mem, uint64_t base,
                       const struct sifive_test_host *host, struct sifive_test **out);

/* Frees the device; no access may be in flight. Accepts NULL. */
void sifive_test_destroy(struct sifive_test *t);

/* Nothing to reset (kept for the uniform device interface). */
void sifive_test_reset(struct sifive_test *t);

struct state_writer;
struct state_reader;

#define SIFIVE_TEST_STATE_TAG   "sifive_test"
#define SIFIVE_TEST_STATE_MAJOR 1
#define SIFIVE_TEST_STATE_MINOR 0

/* Saves section "sifive_test"[0], empty: the device has no guest-visible
 * state, but a snapshot records that it was there. */
int sifive_test_save(struct sifive_test *t, struct state_writer *w);
/* Checks that section "sifive_test"[0] exists and is empty. Returns 0, or
 * -errno with a one-line message. */
int sifive_test_load(struct sifive_test *t, const struct state_reader *r, char *err,
                     size_t errlen);

/* Writes the finisher's node, in the open /soc (a simple-bus):
 *   test@<base> { compatible = "sifive,test1", "sifive,test0", "syscon";
 *                 reg; phandle = <phandle>; }
 * `phandle` must be unique in the tree and non-zero; the caller allocates it.
 * Returns 0 or -errno. */
int sifive_test_fdt(struct sifive_test *t, struct fdt_ctx *ctx, uint32_t phandle);

/* Writes the nodes through which Linux powers off and reboots with the
 * finisher, at the root as QEMU does (a simple-bus child needs a reg):
 *   poweroff { compatible = "syscon-poweroff"; regmap = <phandle>;
 *              offset = <0>; value = <0x5555>; }
 *   reboot   { compatible = "syscon-reboot"; regmap = <phandle>;
 *              offset = <0>; value = <0x7777>; }
 * Returns 0 or -errno. */
int sifive_test_fdt_syscon(struct fdt_ctx *ctx, uint32_t phandle);

#endif
