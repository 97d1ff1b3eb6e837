/* ACLINT MSWI + MTIMER in the SiFive CLINT layout, as on QEMU's `virt` board
 * (0x0200_0000, size 0x10000):
 *   +0x0000 + 4*h   msip[h]      (32-bit, bit 0 significant)
 *   +0x4000 + 8*h   mtimecmp[h]  (64-bit, or 32-bit halves)
 *   +0xBFF8         mtime        (64-bit, or 32-bit halves)
 * Misaligned or wrongly sized accesses fault (msip: 4 bytes; mtimecmp/mtime:
 * 4 or 8 bytes), as in QEMU. Registers of harts >= nharts read 0 and ignore
 * writes.
 *
 * mtime is the VM's shared timebase (struct timebase), the same clock the
 * harts' `time` CSR reads. Guest writes to mtime are IGNORED: the timebase is
 * shared read-only by every hart, and an ACLINT-private offset would make
 * mtime and `time` disagree. Neither OpenSBI nor Linux writes mtime.
 *
 * The device does not compare time against mtimecmp: each hart does that
 * (and so raises MTIP) from the value handed to it through set_mtimecmp, so
 * there is no timer thread here.
 *
 * Threads: MMIO ops run on hart threads; state is under one mutex. The
 * callbacks are invoked with the aclint lock held, in register-write order:
 * they must not call back into the aclint. Lock order: aclint lock -> hart
 * (callback) locks. */
#ifndef NIMBUS_DEV_ACLINT_H
#define NIMBUS_DEV_ACLINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/timebase.h"
#include "dev/device.h"
#include "mem/guest_mem.h"

#define ACLINT_VIRT_BASE      0x02000000ull
#define ACLINT_SIZE           0x10000ull
#define ACLINT_MSIP_OFFSET    0x0000u
#define ACLINT_MTIMECMP_OFFSET 0x4000u
#define ACLINT_MTIME_OFFSET   0xbff8u
#define ACLINT_MAX_HARTS      4095u

struct aclint;

struct aclint_host {
    /* msip[hart] bit 0 was written: drive that hart's MSIP. Required. */
    void (*set_msip)(void *opaque, unsigned hart, bool level);
    /* mtimecmp[hart] was written (either half): the hart's new compare
     * value, full 64 bits. Required. */
    void (*set_mtimecmp)(void *opaque, unsigned hart, uint64_t value);
    void *opaque;
};

/* Creates the ACLINT for `nharts` harts (1..ACLINT_MAX_HARTS) reading mtime
 * from `tb` (which must outlive the device) and, when `mem` is not NULL,
 * registers [base, base + ACLINT_SIZE). The initial state is the reset state
 * (msip 0, mtimecmp UINT64_MAX); create calls no callback, so harts are
 * expected to start the same way (aclint_reset() pushes the state to them).
 * Returns 0 or -errno. Thread: machine setup. */
int aclint_create(struct guest_mem *mem, uint64_t base, unsigned nharts,
                  struct timebase *tb, const struct aclint_host *host,
                  struct aclint **out);

/* Frees the device; no access may be in flight. Accepts NULL. */
void aclint_destroy(struct aclint *a);

/* Clears every msip and sets every mtimecmp to UINT64_MAX, calling both
 * callbacks for every hart. Thread: any. */
void aclint_reset(struct aclint *a);

struct state_writer;
struct state_reader;

#define ACLINT_STATE_TAG   "aclint"
#define ACLINT_STATE_MAJOR 1
#define ACLINT_STATE_MINOR 0

/* Saves section "aclint"[0]: mtime (guest ticks, from the timebase), then
 * msip and mtimecmp of every hart. Returns the writer's error.
 * Thread: any, while no hart runs. */
int aclint_save(struct aclint *a, struct state_writer *w);
/* Loads section "aclint"[0] saved by an ACLINT with the same number of
 * harts. Sets the VM's timebase so that guest time continues from the saved
 * mtime (the time spent saved does not exist for the guest), then pushes
 * msip and mtimecmp of every hart through the callbacks, as reset does.
 * Refuses msip values other than 0/1 and an mtime beyond
 * TIMEBASE_MAX_RESTORE_TICKS. Returns 0, or -errno with a one-line message.
 * Thread: any, while no hart runs. */
int aclint_load(struct aclint *a, const struct state_reader *r, char *err, size_t errlen);

/* Writes /soc/clint@<base>: compatible "sifive,clint0", "riscv,clint0", reg,
 * interrupts-extended = <intc[h] 3 intc[h] 7> for each hart. Needs
 * ctx->nharts >= the device's nharts and nharts <= 64 (the size of
 * ctx->cpu_intc_phandle). Returns 0 or -errno. */
int aclint_fdt(struct aclint *a, struct fdt_ctx *ctx);

#endif
