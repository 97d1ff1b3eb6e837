/* The `virt` board (see virt.h for the memory map). */
#include "machine/virt.h"

#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/jit/dump.h"
#include "cpu/jit/jit.h"
#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/sifive_test.h"
#include "dev/sunxi_wdt.h"
#include "dev/uart16550.h"
#include "dev/vmgenid.h"
#include "base/errmsg.h"
#include "machine/loader.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "virtio/virtio_mmio.h"

#define FDT_MAX_SIZE 0x10000
/* fw_dynamic_info (OpenSBI docs/firmware/fw_dynamic.md), passed in a2. */
#define FW_DYNAMIC_MAGIC 0x4942534full
#define FW_DYNAMIC_VERSION 2
#define FW_DYNAMIC_NEXT_MODE_S 1

void virt_wake_io(struct virt_machine *m)
{
    uint64_t one = 1;
    ssize_t r = write(m->wake_fd, &one, sizeof(one));
    (void)r;
}

void virt_request_stop(struct virt_machine *m, enum virt_stop why, int64_t exit_code)
{
    /* A quit is also kept apart, sticky: a reset (stop == VIRT_STOP_RESET,
     * then virt_reset() storing VIRT_RUNNING) must not swallow it. Stored
     * before the stop word, so vm_run() sees one or the other. */
    int none = -1;
    if (why == VIRT_STOP_QUIT)
        atomic_compare_exchange_strong(&m->quit_request, &none, exit_code);
    int expected = VIRT_RUNNING;
    if (atomic_compare_exchange_strong(&m->stop, &expected, (int)why))
        m->exit_code = exit_code;
    for (unsigned i = 0; i < m->nharts; i++)
        hart_post_request(m->harts[i], HART_REQ_EXIT);
    /* Paused harts (and a virt_pause() waiting for them) look at `stop`. */
    pthread_mutex_lock(&m->pause_lock);
    pthread_cond_broadcast(&m->pause_cond);
    pthread_mutex_unlock(&m->pause_lock);
    virt_wake_io(m);
}

/* ---- device callbacks ---- */

static void set_msip(void *opaque, unsigned hart, bool level)
{
    struct virt_machine *m = opaque;
    if (hart < m->nharts)
        hart_set_irq(m->harts[hart], MIP_MSIP, level);
}

static void set_mtimecmp(void *opaque, unsigned hart, uint64_t value)
{
    struct virt_machine *m = opaque;
    if (hart >= m->nharts)
        return;
    struct hart *h = m->harts[hart];
    atomic_store(&h->mtimecmp, value);
    /* The hart re-evaluates MTIP itself; clear it now so a handler that just
     * moved mtimecmp forward does not see a stale interrupt, and wake the
     * hart so a parked one re-arms its deadline. */
    if (timebase_now(&m->timebase) < value)
        atomic_fetch_and(&h->arch.mip, ~MIP_MTIP);
    hart_kick(h);
}

static void set_external(void *opaque, unsigned hart, bool s_mode, bool level)
{
    struct virt_machine *m = opaque;
    if (hart < m->nharts)
        hart_set_irq(m->harts[hart], s_mode ? MIP_SEIP : MIP_MEIP, level);
}

/* Guest output from one of its streams to the console, and what the
 * console took to the panic detector. */
static size_t output_from(struct virt_machine *m, enum virt_output src, const uint8_t *buf,
                          size_t n)
{
    size_t k = m->console ? console_write(m->console, buf, n) : n;
    virt_watch_output(m, src, buf, k);
    return k;
}

/* SBI console calls and HTIF. */
static size_t console_out(void *opaque, const uint8_t *buf, size_t n)
{
    return output_from(opaque, VIRT_OUT_SBI, buf, n);
}

static size_t virtio_console_out(void *opaque, const uint8_t *buf, size_t n)
{
    return output_from(opaque, VIRT_OUT_VIRTIO, buf, n);
}

static void uart_tx(void *opaque, const uint8_t *buf, size_t n)
{
    /* The UART waited for THRE (uart_tx_busy). */
    output_from(opaque, VIRT_OUT_UART, buf, n);
}

static bool uart_tx_busy(void *opaque)
{
    struct virt_machine *m = opaque;
    return m->console && console_out_busy(m->console);
}

static void console_output_ready(void *opaque)
{
    struct virt_machine *m = opaque;
    uart16550_tx_ready(m->uart);
    if (m->vconsole)
        virtio_console_output_ready(m->vconsole);
}

static void console_wake(void *opaque)
{
    virt_wake_io(opaque);
}

static void uart_rx_ready(void *opaque)
{
    virt_wake_io(opaque);
}

/* The RTC's alarm or the watchdog's count moved: the I/O thread's poll
 * timeout may have to change. */
static void timer_deadline_changed(void *opaque)
{
    virt_wake_io(opaque);
}

static void finisher_done(void *opaque, enum finisher_action action, int code)
{
    struct virt_machine *m = opaque;
    switch (action) {
    case FINISHER_PASS: virt_request_stop(m, VIRT_STOP_POWEROFF, 0); break;
    case FINISHER_FAIL: virt_request_stop(m, VIRT_STOP_FAIL, code); break;
    case FINISHER_RESET: virt_request_stop(m, VIRT_STOP_RESET, 0); break;
    }
}

static size_t sbi_console_read(void *opaque, uint8_t *buf, size_t n)
{
    struct virt_machine *m = opaque;
    pthread_mutex_lock(&m->input_lock);
    size_t k = n < m->input_len ? n : m->input_len;
    memcpy(buf, m->input, k);
    memmove(m->input, m->input + k, m->input_len - k);
    m->input_len -= k;
    pthread_mutex_unlock(&m->input_lock);
    return k;
}

static void sbi_reset(void *opaque, enum sbi_reset_type type, uint32_t reason)
{
    struct virt_machine *m = opaque;
    if (type == SBI_RESET_SHUTDOWN)
        virt_request_stop(m, reason ? VIRT_STOP_FAIL : VIRT_STOP_POWEROFF, reason ? 1 : 0);
    else
        virt_request_stop(m, VIRT_STOP_RESET, 0);
}

void virt_pump_input(struct virt_machine *m)
{
    pthread_mutex_lock(&m->input_lock);
    if (m->input_len) {
        int n = uart16550_receive(m->uart, m->input, m->input_len);
        if (n > 0) {
            memmove(m->input, m->input + n, m->input_len - (size_t)n);
            m->input_len -= (size_t)n;
        }
    }
    pthread_mutex_unlock(&m->input_lock);
}

static void console_in(void *opaque, const uint8_t *buf, size_t n)
{
    struct virt_machine *m = opaque;
    if (m->vconsole) {
        /* hvc0 is the console: input goes there, not to the UART. */
        virtio_console_input(m->vconsole, buf, n);
        return;
    }
    pthread_mutex_lock(&m->input_lock);
    size_t room = sizeof(m->input) - m->input_len;
    if (n > room)
        n = room; /* a paste larger than 4 KiB beyond what the guest reads is dropped */
    memcpy(m->input + m->input_len, buf, n);
    m->input_len += n;
    pthread_mutex_unlock(&m->input_lock);
    virt_pump_input(m);
}

static void console_quit(void *opaque)
{
    virt_request_stop(opaque, VIRT_STOP_QUIT, 0);
}

/* ---- HTIF (the tohost/fromhost convention of Spike and riscv-tests) ---- */

static void htif_syscall(struct virt_machine *m, uint64_t addr)
{
    uint64_t args[4];
    if (guest_mem_read(&m->mem, addr, args, sizeof(args)))
        return;
    uint64_t ret = (uint64_t)-1;
    if (args[0] == 64 && (args[1] == 1 || args[1] == 2)) { /* write(fd, buf, len) */
        const uint8_t *buf = guest_mem_ram_ptr(&m->mem, args[2], args[3]);
        if (buf) {
            ret = console_out(m, buf, args[3]);
        }
    } else if (args[0] == 93) { /* exit(code): any non-zero code is a failure */
        virt_request_stop(m, args[1] ? VIRT_STOP_FAIL : VIRT_STOP_POWEROFF, (int64_t)args[1]);
        return;
    }
    guest_mem_write(&m->mem, addr, &ret, sizeof(ret));
    uint64_t one = 1;
    guest_mem_write(&m->mem, m->fromhost, &one, sizeof(one));
}

void virt_htif_poll(struct virt_machine *m)
{
    if (!m->tohost)
        return;
    uint64_t *tohost = guest_mem_ram_ptr(&m->mem, m->tohost, 8);
    if (!tohost || !__atomic_load_n(tohost, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&m->htif_lock);
    uint64_t v = __atomic_exchange_n(tohost, 0, __ATOMIC_ACQ_REL);
    pthread_mutex_unlock(&m->htif_lock);
    if (!v)
        return;
    unsigned dev = (unsigned)(v >> 56), cmd = (unsigned)(v >> 48) & 0xff;
    uint64_t payload = v & ((1ull << 48) - 1);
    if (dev == 0 && cmd == 0) {
        if (payload & 1) {
            int64_t code = (int64_t)(payload >> 1); /* up to 47 bits: never truncated */
            virt_request_stop(m, code ? VIRT_STOP_FAIL : VIRT_STOP_POWEROFF, code);
        } else {
            htif_syscall(m, payload);
        }
    } else if (dev == 1 && cmd == 1) {
        uint8_t c = (uint8_t)payload;
        console_out(m, &c, 1);  /* dropped if the console is backed up */
        uint64_t ack = (uint64_t)dev << 56 | (uint64_t)cmd << 48;
        if (m->fromhost)
            guest_mem_write(&m->mem, m->fromhost, &ack, sizeof(ack));
    }
}

/* ---- device tree ---- */

#define FDT_CHECK(expr)                 \
    do {                                \
        int fdt_err_ = (expr);          \
        if (fdt_err_ < 0)               \
            return fdt_err_;            \
    } while (0)

static int fdt_cpus(void *fdt, struct fdt_ctx *ctx, unsigned nharts)
{
    static const char extensions[] =
        "i\0m\0a\0f\0d\0c\0zicntr\0zicsr\0zifencei\0zihintpause\0zba\0zbb\0zbs\0sstc";
    FDT_CHECK(fdt_begin_node(fdt, "cpus"));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 1));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 0));
    FDT_CHECK(fdt_property_u32(fdt, "timebase-frequency", (uint32_t)TIMEBASE_HZ));
    for (unsigned i = 0; i < nharts; i++) {
        char name[32];
        snprintf(name, sizeof(name), "cpu@%u", i);
        FDT_CHECK(fdt_begin_node(fdt, name));
        FDT_CHECK(fdt_property_u32(fdt, "phandle", ctx->cpu_intc_phandle[i] + 0x100));
        FDT_CHECK(fdt_property_string(fdt, "device_type", "cpu"));
        FDT_CHECK(fdt_property_u32(fdt, "reg", i));
        FDT_CHECK(fdt_property_string(fdt, "status", "okay"));
        FDT_CHECK(fdt_property_string(fdt, "compatible", "riscv"));
        FDT_CHECK(fdt_property_string(fdt, "riscv,isa", VIRT_ISA_STRING));
        FDT_CHECK(fdt_property_string(fdt, "riscv,isa-base", "rv64i"));
        FDT_CHECK(fdt_property(fdt, "riscv,isa-extensions", extensions, sizeof(extensions)));
        FDT_CHECK(fdt_property_string(fdt, "mmu-type", "riscv,sv57"));
        FDT_CHECK(fdt_begin_node(fdt, "interrupt-controller"));
        FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 0));
        FDT_CHECK(fdt_property_u32(fdt, "#interrupt-cells", 1));
        FDT_CHECK(fdt_property(fdt, "interrupt-controller", NULL, 0));
        FDT_CHECK(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
        FDT_CHECK(fdt_property_u32(fdt, "phandle", ctx->cpu_intc_phandle[i]));
        FDT_CHECK(fdt_end_node(fdt));
        FDT_CHECK(fdt_end_node(fdt));
    }
    FDT_CHECK(fdt_begin_node(fdt, "cpu-map"));
    FDT_CHECK(fdt_begin_node(fdt, "cluster0"));
    for (unsigned i = 0; i < nharts; i++) {
        char name[32];
        snprintf(name, sizeof(name), "core%u", i);
        FDT_CHECK(fdt_begin_node(fdt, name));
        FDT_CHECK(fdt_property_u32(fdt, "cpu", ctx->cpu_intc_phandle[i] + 0x100));
        FDT_CHECK(fdt_end_node(fdt));
    }
    FDT_CHECK(fdt_end_node(fdt));
    FDT_CHECK(fdt_end_node(fdt));
    return fdt_end_node(fdt);
}

static int fdt_build(struct virt_machine *m, uint64_t initrd_start, uint64_t initrd_end)
{
    void *fdt = m->fdt;
    struct fdt_ctx ctx = { .fdt = fdt, .nharts = m->nharts };
    uint32_t test_phandle;
    for (unsigned i = 0; i < m->nharts; i++)
        ctx.cpu_intc_phandle[i] = 1 + i;
    ctx.plic_phandle = 1 + m->nharts;
    test_phandle = 2 + m->nharts;

    FDT_CHECK(fdt_create(fdt, FDT_MAX_SIZE));
    FDT_CHECK(fdt_finish_reservemap(fdt));
    FDT_CHECK(fdt_begin_node(fdt, ""));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "nimbus,virt"));
    FDT_CHECK(fdt_property_string(fdt, "model", "Nimbus RISC-V virt"));

    FDT_CHECK(fdt_begin_node(fdt, "chosen"));
    FDT_CHECK(fdt_property_string(fdt, "bootargs", m->config.append ? m->config.append : ""));
    FDT_CHECK(fdt_property_string(fdt, "stdout-path", "/soc/serial@10000000"));
    if (initrd_end > initrd_start) {
        FDT_CHECK(fdt_property_u64(fdt, "linux,initrd-start", initrd_start));
        FDT_CHECK(fdt_property_u64(fdt, "linux,initrd-end", initrd_end));
    }
    FDT_CHECK(fdt_end_node(fdt));

    char name[48];
    snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)VIRT_RAM_BASE);
    FDT_CHECK(fdt_begin_node(fdt, name));
    FDT_CHECK(fdt_property_string(fdt, "device_type", "memory"));
    uint64_t reg[2] = { cpu_to_fdt64(VIRT_RAM_BASE), cpu_to_fdt64(m->config.ram_size) };
    FDT_CHECK(fdt_property(fdt, "reg", reg, sizeof(reg)));
    FDT_CHECK(fdt_end_node(fdt));

    FDT_CHECK(fdt_cpus(fdt, &ctx, m->nharts));

    FDT_CHECK(fdt_begin_node(fdt, "soc"));
    FDT_CHECK(fdt_property_u32(fdt, "#address-cells", 2));
    FDT_CHECK(fdt_property_u32(fdt, "#size-cells", 2));
    FDT_CHECK(fdt_property_string(fdt, "compatible", "simple-bus"));
    FDT_CHECK(fdt_property(fdt, "ranges", NULL, 0));
    FDT_CHECK(sifive_test_fdt(m->finisher, &ctx, test_phandle));
    FDT_CHECK(goldfish_rtc_fdt(m->rtc, &ctx));
    FDT_CHECK(vmgenid_fdt(m->genid, &ctx));
    if (m->wdt)
        FDT_CHECK(sunxi_wdt_fdt(m->wdt, &ctx));
    FDT_CHECK(aclint_fdt(m->aclint, &ctx));
    FDT_CHECK(plic_fdt(m->plic, &ctx));
    FDT_CHECK(uart16550_fdt(m->uart, &ctx));
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        if (m->virtio[i])
            FDT_CHECK(virtio_mmio_fdt(m->virtio[i], &ctx));
    FDT_CHECK(fdt_end_node(fdt));
    FDT_CHECK(sifive_test_fdt_syscon(&ctx, test_phandle));

    FDT_CHECK(fdt_end_node(fdt));
    FDT_CHECK(fdt_finish(fdt));
    /* Free space inside the blob: boot loaders edit the tree in place (U-Boot
     * adds the kernel's bootargs and initrd to /chosen, growing the blob
     * past what it reserved for a tightly packed one, over its own data). */
    FDT_CHECK(fdt_open_into(fdt, fdt, FDT_MAX_SIZE));
    m->fdt_size = fdt_totalsize(fdt);
    return 0;
}

/* ---- images ---- */

/* Writes a regular file (created or replaced). O_NONBLOCK and the type check
 * come before O_TRUNC's effect: a FIFO must not block us, and a device or
 * directory is refused rather than written to. */
static int write_file(const char *path, const void *buf, size_t len)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return -EINVAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (fstat(fd, &st))
        r = -errno;
    else if (!S_ISREG(st.st_mode))
        r = -EINVAL;
    else if (ftruncate(fd, 0))
        r = -errno;
    const uint8_t *p = buf;
    while (!r && len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = w < 0 ? -errno : -EIO;
        else
            p += w, len -= (size_t)w;
    }
    if (close(fd) && !r)
        r = -errno;
    return r;
}

/* ---- input and output files ---- */

struct named_file {
    const char *what, *path;
    bool written;       /* truncated or written by the VM */
    struct stat st;
};

/* A file the VM writes (console file, device-tree dump, writable disk) may
 * not be any other file it uses: writing it would truncate an input (the
 * kernel, say) before it is read, corrupt a disk, or clobber the other
 * output. Files are compared by device and inode, so links and different
 * spellings of one path are caught. Files that do not exist yet cannot
 * clash. */
static int check_files(const struct virt_config *c, char *err, size_t errlen)
{
    struct named_file f[5 + VIRT_MAX_DISKS];
    size_t n = 0;
    f[n++] = (struct named_file){ .what = "kernel", .path = c->kernel, .written = false };
    f[n++] = (struct named_file){ .what = "initrd", .path = c->initrd, .written = false };
    f[n++] = (struct named_file){ .what = "firmware", .path = c->bios, .written = false };
    f[n++] = (struct named_file){ .what = "--console file:", .path = c->console_kind == CONSOLE_FILE ? c->console_path : NULL, .written = true };
    f[n++] = (struct named_file){ .what = "--dump-dtb", .path = c->dump_dtb, .written = true };
    for (unsigned d = 0; d < c->ndisks && d < VIRT_MAX_DISKS; d++)
        f[n++] = (struct named_file){ .what = "--disk", .path = c->disks[d].path, .written = !c->disks[d].opts.readonly };
    for (size_t i = 0; i < n; i++)
        if (f[i].path && stat(f[i].path, &f[i].st))
            f[i].path = NULL;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n && f[i].path; j++) {
            if (!f[j].path || !(f[i].written || f[j].written) || f[i].st.st_dev != f[j].st.st_dev ||
                f[i].st.st_ino != f[j].st.st_ino)
                continue;
            const struct named_file *w = f[j].written ? &f[j] : &f[i], *o = w == &f[j] ? &f[i] : &f[j];
            return errmsg(err, errlen, -EINVAL, "%s %s is the same file as the %s %s: refusing "
                          "to overwrite it", w->what, w->path, o->what, o->path);
        }
    }
    return 0;
}

/* Loads images, builds the device tree and sets every hart's entry state. */
static int load_and_boot(struct virt_machine *m, char *err, size_t errlen)
{
    const struct virt_config *c = &m->config;
    uint64_t ram_end = VIRT_RAM_BASE + c->ram_size;
    struct loaded_image fw = { 0 }, kernel = { 0 }, initrd = { 0 };
    int r;

    if (c->bios) {
        r = loader_load_firmware(&m->mem, c->bios, VIRT_RAM_BASE, &fw, &m->tohost, &m->fromhost,
                                 err, errlen);
        if (r)
            return r;
    }
    if (c->kernel) {
        if (c->kernel_raw)
            r = loader_load_raw(&m->mem, c->kernel, VIRT_KERNEL_ADDR, &kernel, err, errlen);
        else
            r = loader_load_kernel(&m->mem, c->kernel, VIRT_KERNEL_ADDR, &kernel, err, errlen);
        if (r)
            return r;
        if (c->bios && kernel.start < fw.end) {
            return errmsg(err, errlen, -EINVAL, "kernel at 0x%llx overlaps the firmware (ends at 0x%llx)",
                     (unsigned long long)kernel.start, (unsigned long long)fw.end);
        }
    }

    /* The device tree goes in the last 2 MiB of RAM (below 4 GiB so 32-bit
     * capable firmware can reach it), the initrd just below it. */
    uint64_t top = ram_end < 0x100000000ull ? ram_end : 0x100000000ull;
    uint64_t fdt_addr = (top - 0x200000) & ~0x1fffffull;
    if (fdt_addr < kernel.end || fdt_addr < fw.end) {
        return errmsg(err, errlen, -ENOMEM, "not enough guest memory (%llu MiB) for the kernel and device tree",
                 (unsigned long long)(c->ram_size >> 20));
    }
    if (c->initrd) {
        struct stat st;
        if (stat(c->initrd, &st))
            return errmsg(err, errlen, -errno, "cannot read initrd %s: %s", c->initrd,
                          strerror(errno));
        uint64_t size = (uint64_t)st.st_size;
        uint64_t start = (fdt_addr - size) & ~0xfffull;
        if (size > fdt_addr - VIRT_RAM_BASE || start < kernel.end || start < fw.end)
            return errmsg(err, errlen, -ENOMEM, "initrd %s (%llu bytes) does not fit in guest memory",
                          c->initrd, (unsigned long long)size);
        r = loader_load_raw(&m->mem, c->initrd, start, &initrd, err, errlen);
        if (r)
            return r;
    }

    r = fdt_build(m, initrd.start, initrd.end);
    if (r) {
        return errmsg(err, errlen, -EINVAL, "building the device tree: %s", fdt_strerror(r));
    }
    if (guest_mem_write(&m->mem, fdt_addr, m->fdt, m->fdt_size)) {
        return errmsg(err, errlen, -ENOMEM, "device tree does not fit in guest memory");
    }
    if (c->dump_dtb && (r = write_file(c->dump_dtb, m->fdt, m->fdt_size))) {
        return errmsg(err, errlen, r, "cannot write %s: %s", c->dump_dtb,
                      r == -EINVAL ? "not a regular file" : strerror(-r));
    }

    uint64_t info_addr = 0;
    if (c->bios && c->kernel) {
        /* fw_dynamic_info in the device tree's 2 MiB window, well past the
         * blob (which the firmware may grow in place), clear of the initrd. */
        info_addr = fdt_addr + 0x100000;
        uint64_t info[6] = { FW_DYNAMIC_MAGIC, FW_DYNAMIC_VERSION, kernel.entry,
                             FW_DYNAMIC_NEXT_MODE_S, 0, 0 };
        guest_mem_write(&m->mem, info_addr, info, sizeof(info));
    }

    for (unsigned i = 0; i < m->nharts; i++) {
        struct hart *h = m->harts[i];
        if (c->bios) {
            /* Firmware (or a bare-metal program) starts on every hart in
             * M-mode, as on real boards; it picks its boot hart itself. */
            hart_reset(h, fw.entry);
            h->arch.x[10] = i;
            h->arch.x[11] = fdt_addr;
            h->arch.x[12] = info_addr;
            atomic_store(&h->arch.state, HART_STARTED);
        } else {
            /* Built-in SBI: hart 0 enters the kernel in S-mode with
             * a0 = hartid, a1 = DTB (Linux boot protocol); the others wait
             * for SBI HSM hart_start. */
            hart_reset(h, kernel.entry);
            sbi_prepare_hart(h);
            hart_set_priv(h, PRIV_S);
            h->arch.x[10] = i;
            h->arch.x[11] = fdt_addr;
            atomic_store(&h->arch.state, i == 0 ? HART_STARTED : HART_STOPPED);
        }
    }
    return 0;
}

static uint64_t virtio_slot_base(unsigned slot)
{
    return VIRT_VIRTIO_BASE + slot * VIRTIO_MMIO_SIZE;
}

/* The network card `i` in `slot`: its backend, its MAC address. */
static int create_net(struct virt_machine *m, unsigned i, unsigned slot, char *err, size_t errlen)
{
    struct virt_net *c = &m->config.nets[i];
    struct net_backend *b;
    int r = c->kind == VIRT_NET_USER ? net_user_open(&c->user, &b, err, errlen)
            : c->tap_by_fd           ? net_tap_open_fd(c->tap_fd, c->ifname, &b, err, errlen)
                                     : net_tap_open(c->ifname, &b, err, errlen);
    if (r)
        return r;
    /* QEMU's default for its n-th card: guests and scripts know it. */
    uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) };
    if (c->has_mac)
        memcpy(mac, c->mac, 6);
    r = virtio_net_create(&m->mem, virtio_slot_base(slot),
                          plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + slot), b, mac, &m->virtio[slot]);
    if (r) {
        net_backend_close(b);
        return errmsg(err, errlen, r, "cannot create network card %u: %s", i, strerror(-r));
    }
    return 0;
}

/* The virtio-mmio slots: disks from slot 0 in the order given, then the
 * network cards in the order given, then the console, vsock and balloon
 * devices, the entropy device in the last slot (every cloud VM has one; it costs nothing
 * idle and lets the guest's RNG seed at once). */
static int create_virtio(struct virt_machine *m, char *err, size_t errlen)
{
    const struct virt_config *c = &m->config;
    unsigned slot = 0;
    int r;

    if (c->ndisks > VIRT_MAX_DISKS || c->nnets > VIRT_MAX_NETS ||
        c->ndisks + c->nnets > VIRT_VIRTIO_SLOTS - 1)
        return errmsg(err, errlen, -EINVAL, "at most %u --disk and --net options together",
                      VIRT_VIRTIO_SLOTS - 1);
    /* One request queue per hart, as QEMU and Linux's blk-mq like it. */
    unsigned nq = m->nharts < VIRTIO_BLK_MAX_QUEUES ? m->nharts : VIRTIO_BLK_MAX_QUEUES;
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct block_backend *b;
        r = block_open(c->disks[i].path, &c->disks[i].opts, &b, err, errlen);
        if (r)
            return r;
        char serial[32];   /* the device keeps the first 20 bytes */
        snprintf(serial, sizeof(serial), "nimbus-disk%u", i);
        r = virtio_blk_create(&m->mem, virtio_slot_base(i),
                              plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + i), b, nq, serial,
                              &m->virtio[i]);
        if (r) {
            block_close(b);
            return errmsg(err, errlen, r, "cannot create the disk for %s: %s", c->disks[i].path,
                          strerror(-r));
        }
        slot++;
    }
    for (unsigned i = 0; i < c->nnets; i++) {
        r = create_net(m, i, slot, err, errlen);
        if (r)
            return r;
        slot++;
    }
    unsigned extra = (c->console_virtio ? 1 : 0) + (c->vsock_cid ? 1 : 0) + (c->balloon ? 1 : 0);
    if (slot + extra > VIRT_RNG_SLOT)
        return errmsg(err, errlen, -EINVAL, "too many virtio devices: %u slots for disks, network "
                      "cards, console, vsock and balloon", VIRT_RNG_SLOT);
    if (c->console_virtio) {
        struct virtio_console_host host = { .output = virtio_console_out, .opaque = m };
        r = virtio_console_create(&m->mem, virtio_slot_base(slot),
                                  plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + slot), &host,
                                  &m->virtio[slot], &m->vconsole);
        if (r)
            return errmsg(err, errlen, r, "cannot create the virtio console: %s", strerror(-r));
        slot++;
    }
    if (c->vsock_cid) {
        r = virtio_vsock_create(&m->mem, virtio_slot_base(slot),
                                plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + slot), c->vsock_cid,
                                c->vsock_path, &m->virtio[slot], err, errlen);
        if (r)
            return r;
        m->vsock = m->virtio[slot];
        slot++;
    }
    if (c->balloon) {
        r = virtio_balloon_create(&m->mem, virtio_slot_base(slot),
                                  plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + slot),
                                  &c->balloon_opts, &m->balloon, &m->virtio[slot]);
        if (r)
            return errmsg(err, errlen, r, "cannot create the balloon: %s", strerror(-r));
        slot++;
    }
    r = virtio_rng_create(&m->mem, virtio_slot_base(VIRT_RNG_SLOT),
                          plic_irq_line(m->plic, VIRT_VIRTIO_IRQ + VIRT_RNG_SLOT),
                          &m->virtio[VIRT_RNG_SLOT]);
    if (r)
        return errmsg(err, errlen, r, "cannot create the entropy device: %s", strerror(-r));
    return 0;
}

int virt_reset(struct virt_machine *m, char *err, size_t errlen)
{
    /* Virtio devices first: a request still in flight from before the
     * reboot must finish before the RAM it writes is wiped. */
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        if (m->virtio[i])
            virtio_mmio_reset(m->virtio[i]);
    /* Fresh RAM: drop every page, as a power cycle would. */
    int r = guest_mem_clear(&m->mem);
    if (r)
        return errmsg(err, errlen, r, "resetting guest memory: %s", strerror(-r));
    plic_reset(m->plic);
    aclint_reset(m->aclint);
    uart16550_reset(m->uart);
    goldfish_rtc_reset(m->rtc);
    sifive_test_reset(m->finisher);
    if (m->wdt)
        sunxi_wdt_reset(m->wdt);
    virt_watch_reset(m);
    pthread_mutex_lock(&m->input_lock);
    m->input_len = 0;
    pthread_mutex_unlock(&m->input_lock);
    atomic_store(&m->stop, VIRT_RUNNING);
    m->exit_code = 0;
    return load_and_boot(m, err, errlen);
}

int virt_create(const struct virt_config *config, struct virt_machine **out, char *err, size_t errlen)
{
    int r;
    if (!config->kernel && !config->bios && !config->no_boot) {
        return errmsg(err, errlen, -EINVAL, "nothing to run: give --kernel or --bios");
    }
    if (config->nharts < 1 || config->nharts > VIRT_MAX_HARTS) {
        return errmsg(err, errlen, -EINVAL, "--smp must be between 1 and %u", VIRT_MAX_HARTS);
    }
    if (config->ram_size < VIRT_MIN_RAM || config->ram_size > VIRT_MAX_RAM ||
        (config->ram_size & (GUEST_PAGE_SIZE - 1))) {
        return errmsg(err, errlen, -EINVAL, "--mem must be a multiple of 4 KiB between %llu MiB and %llu GiB",
                 (unsigned long long)(VIRT_MIN_RAM >> 20), (unsigned long long)(VIRT_MAX_RAM >> 30));
    }

    if ((r = check_files(config, err, errlen)))
        return r;

    struct virt_machine *m = calloc(1, sizeof(*m));
    if (!m) {
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    m->config = *config;
    m->wake_fd = -1;
    m->quit_request = -1;
    pthread_mutex_init(&m->htif_lock, NULL);
    pthread_mutex_init(&m->pause_lock, NULL);
    pthread_cond_init(&m->pause_cond, NULL);
    pthread_mutex_init(&m->input_lock, NULL);
    pthread_mutex_init(&m->watch_lock, NULL);
    guest_events_init(&m->events);
    m->watch_action = -1;
    for (unsigned i = 0; i < VIRT_OUT_COUNT; i++)
        panic_detect_reset(&m->panic_detect[i]);
    timebase_init(&m->timebase);

    r = guest_mem_init(&m->mem, VIRT_RAM_BASE, config->ram_size);
    if (r) {
        snprintf(err, errlen, "cannot allocate %llu MiB of guest memory: %s",
                 (unsigned long long)(config->ram_size >> 20), strerror(-r));
        goto fail;
    }
    m->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    m->fdt = calloc(1, FDT_MAX_SIZE);
    if (m->wake_fd < 0 || !m->fdt) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    if (config->jit && (config->jit_dump || config->jit_perf_map) &&
        (r = jit_dump_open(config->jit_dump, config->jit_perf_map, &m->jit_dump, err, errlen)))
        goto fail;
    m->nharts = config->nharts;
    for (unsigned i = 0; i < m->nharts; i++) {
        /* Page-aligned: the hart holds its TLB and decode cache inline. */
        if (posix_memalign((void **)&m->harts[i], 4096, sizeof(struct hart))) {
            r = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        r = hart_init(m->harts[i], i, &m->mem, &m->timebase, VIRT_RAM_BASE);
        if (r) {
            free(m->harts[i]);
            m->harts[i] = NULL;
            snprintf(err, errlen, "cannot create hart %u: %s", i, strerror(-r));
            goto fail;
        }
        if (config->jit &&
            (r = jit_create(m->harts[i], config->jit_cache ? config->jit_cache : JIT_DEFAULT_CACHE,
                            config->jit_threshold))) {
            snprintf(err, errlen, "--jit on: cannot create the translator of hart %u: %s", i,
                     strerror(-r));
            goto fail;
        }
        if (m->harts[i]->jit)
            jit_set_dump(m->harts[i]->jit, m->jit_dump);
    }

    m->sbi = (struct sbi_platform){
        .harts = m->harts, .nharts = m->nharts, .console_write = console_out,
        .console_read = sbi_console_read, .system_reset = sbi_reset, .opaque = m,
    };
    if (!config->bios)
        for (unsigned i = 0; i < m->nharts; i++)
            m->harts[i]->hooks = (struct hart_hooks){ .ecall = sbi_handle_ecall, .opaque = &m->sbi };

    struct plic_host plic_host = { .set_external = set_external, .opaque = m };
    struct aclint_host aclint_host = { .set_msip = set_msip, .set_mtimecmp = set_mtimecmp, .opaque = m };
    struct uart16550_host uart_host = { .tx = uart_tx, .rx_ready = uart_rx_ready,
                                        .tx_busy = uart_tx_busy, .opaque = m };
    struct goldfish_rtc_host rtc_host = { .deadline_changed = timer_deadline_changed, .opaque = m };
    struct sifive_test_host test_host = { .finish = finisher_done, .opaque = m };
    if ((r = plic_create(&m->mem, PLIC_VIRT_BASE, m->nharts, &plic_host, &m->plic)) ||
        (r = aclint_create(&m->mem, ACLINT_VIRT_BASE, m->nharts, &m->timebase, &aclint_host, &m->aclint)) ||
        (r = uart16550_create(&m->mem, UART16550_VIRT_BASE, plic_irq_line(m->plic, UART16550_VIRT_IRQ),
                              &uart_host, &m->uart)) ||
        (r = goldfish_rtc_create(&m->mem, GOLDFISH_RTC_VIRT_BASE,
                                 plic_irq_line(m->plic, GOLDFISH_RTC_VIRT_IRQ), &rtc_host, &m->rtc)) ||
        (r = sifive_test_create(&m->mem, SIFIVE_TEST_VIRT_BASE, &test_host, &m->finisher)) ||
        (r = vmgenid_create(&m->mem, VMGENID_VIRT_BASE, plic_irq_line(m->plic, VMGENID_VIRT_IRQ),
                            &m->genid))) {
        snprintf(err, errlen, "cannot create the board's devices: %s", strerror(-r));
        goto fail;
    }
    struct sunxi_wdt_host wdt_host = { .deadline_changed = timer_deadline_changed, .opaque = m };
    if (config->watchdog &&
        (r = sunxi_wdt_create(&m->mem, SUNXI_WDT_VIRT_BASE,
                              plic_irq_line(m->plic, SUNXI_WDT_VIRT_IRQ), &m->timebase,
                              &wdt_host, &m->wdt))) {
        snprintf(err, errlen, "cannot create the watchdog: %s", strerror(-r));
        goto fail;
    }

    r = create_virtio(m, err, errlen);
    if (r)
        goto fail;

    /* Opened here, but the terminal goes raw only when the guest starts
     * (console_start() in vm_run): Ctrl-C still works while images load. */
    struct console_ops_cb cb = { .input = console_in, .quit = console_quit,
                                 .output_ready = console_output_ready, .wake = console_wake,
                                 .opaque = m };
    r = console_open(config->console_kind, config->console_path, &cb, &m->console, err, errlen);
    if (r)
        goto fail;

    if (!config->no_boot && (r = load_and_boot(m, err, errlen)))
        goto fail;
    *out = m;
    return 0;
fail:
    virt_destroy(m);
    return r;
}

void virt_destroy(struct virt_machine *m)
{
    if (!m)
        return;
    /* Virtio workers first: they use guest RAM and the PLIC. */
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        virtio_mmio_destroy(m->virtio[i]);
    if (m->console)
        console_close(m->console);
    sifive_test_destroy(m->finisher);
    vmgenid_destroy(m->genid);
    sunxi_wdt_destroy(m->wdt);
    goldfish_rtc_destroy(m->rtc);
    if (m->uart)
        uart16550_destroy(m->uart);
    if (m->aclint)
        aclint_destroy(m->aclint);
    if (m->plic)
        plic_destroy(m->plic);
    for (unsigned i = 0; i < m->nharts; i++) {
        if (m->harts[i]) {
            jit_destroy(m->harts[i]);
            hart_destroy(m->harts[i]);
            free(m->harts[i]);
        }
    }
    jit_dump_close(m->jit_dump);
    guest_mem_destroy(&m->mem);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    free(m->fdt);
    pthread_mutex_destroy(&m->htif_lock);
    pthread_mutex_destroy(&m->pause_lock);
    pthread_cond_destroy(&m->pause_cond);
    pthread_mutex_destroy(&m->input_lock);
    pthread_mutex_destroy(&m->watch_lock);
    guest_events_destroy(&m->events);
    free(m);
}
