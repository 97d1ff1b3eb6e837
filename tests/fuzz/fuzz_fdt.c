/* Fuzz target: the virt board's construction and device tree
 * (src/machine/virt.c, virt_create) over random machine configurations.
 *
 * Input: u8 harts (1 + b % 64), u16 RAM MiB (16 + v % 8177, so up to 8 GiB:
 * past 4 GiB the device tree stays below 4 GiB), u8 flags, u16 initrd size
 * in 4 KiB pages (% 4096), then the kernel command line (up to the first
 * NUL). Flags:
 *   0  an initrd          1  --bios (a flat firmware blob)
 *   2  with --bios: a kernel too (without --bios there always is one)
 *   3  the kernel is an ELF (else a flat Image)
 *   4-6 RAM + n * 4 KiB (sizes that are not MiB multiples)
 *   7  no --append (bootargs must then be empty)
 * Images, the console (file backend) and --dump-dtb are memfds reopened
 * through /proc/self/fd/N: regular files, no temp files left behind.
 *
 * Checks: virt_create succeeds unless the initrd cannot fit (then the one-
 * line error names it); the dumped blob is the machine's, passes libfdt's
 * fdt_check_full(), has /chosen/bootargs == the command line, one cpu node
 * per hart, /memory reg == RAM, an initrd range (only with an initrd) that
 * holds the initrd's bytes, unique phandles that every reference resolves;
 * the blob sits in guest RAM where the boot hart's a1 points, clear of the
 * kernel and initrd; harts start as the boot protocol says (bios: all in
 * M-mode; built-in SBI: hart 0 in S-mode, the rest stopped). virt_destroy()
 * after each input (LeakSanitizer checks it frees everything). */
#include <elf.h>
#include <errno.h>
#include <libfdt.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "machine/virt.h"

#define MAX_APPEND 4096
#define INITRD_FILL(i) ((uint8_t)(0x5a ^ (i) ^ ((i) >> 12)))

static int kernel_fd = -1, bios_fd, initrd_fd, con_fd, dtb_fd;
static char kernel_path[64], bios_path[64], initrd_path[64], console_path[64], dtb_path[64];
static uint8_t *dtb_buf;

static void setup(void)
{
    kernel_fd = fuzz_memfd("fuzz-kernel", kernel_path, sizeof(kernel_path));
    bios_fd = fuzz_memfd("fuzz-bios", bios_path, sizeof(bios_path));
    initrd_fd = fuzz_memfd("fuzz-initrd", initrd_path, sizeof(initrd_path));
    con_fd = fuzz_memfd("fuzz-console", console_path, sizeof(console_path));
    dtb_fd = fuzz_memfd("fuzz-dtb", dtb_path, sizeof(dtb_path));
    dtb_buf = malloc(1 << 20);
    FUZZ_SETUP(dtb_buf != NULL);
    /* firmware: a loop at the reset address (never run here) */
    static const uint8_t loop[4] = { 0x6f, 0x00, 0x00, 0x00 };
    fuzz_memfd_set(bios_fd, loop, sizeof(loop));
}

/* A flat Image (boot-image-header.rst) or a one-segment ELF at 0x80200000. */
static void write_kernel(bool elf)
{
    uint8_t buf[256];
    memset(buf, 0, sizeof(buf));
    if (!elf) {
        uint64_t text_offset = 0x200000, image_size = 0x1000;
        memcpy(buf + 8, &text_offset, 8);
        memcpy(buf + 16, &image_size, 8);
        memcpy(buf + 0x38, "RSC\x05", 4);
        fuzz_memfd_set(kernel_fd, buf, 128);
        return;
    }
    Elf64_Ehdr eh = { 0 };
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_RISCV;
    eh.e_version = EV_CURRENT;
    eh.e_entry = VIRT_KERNEL_ADDR;
    eh.e_phoff = sizeof(eh);
    eh.e_ehsize = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph = { .p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 128,
                      .p_paddr = VIRT_KERNEL_ADDR, .p_vaddr = VIRT_KERNEL_ADDR, .p_filesz = 16,
                      .p_memsz = 0x3000, .p_align = 16 };
    memcpy(buf, &eh, sizeof(eh));
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    memset(buf + 128, 0x13, 16);
    fuzz_memfd_set(kernel_fd, buf, 144);
}

/* The end of the kernel's extent: the ELF's memsz, the Image's image_size. */
static uint64_t kernel_end(bool elf)
{
    return VIRT_KERNEL_ADDR + (elf ? 0x3000 : 0x1000);
}

static void write_initrd(size_t size)
{
    FUZZ_SETUP(ftruncate(initrd_fd, 0) == 0);
    uint8_t page[4096];
    for (size_t off = 0; off < size; off += sizeof(page)) {
        for (size_t i = 0; i < sizeof(page); i++)
            page[i] = INITRD_FILL(off + i);
        FUZZ_SETUP(pwrite(initrd_fd, page, sizeof(page), (off_t)off) == (ssize_t)sizeof(page));
    }
}

/* Cells are only 4-byte aligned in the blob. */
static uint64_t be64_at(const void *p)
{
    fdt64_t v;
    memcpy(&v, p, sizeof(v));
    return fdt64_to_cpu(v);
}

static uint64_t prop_u64(const void *fdt, int node, const char *name, bool *found)
{
    int len = 0;
    const void *p = fdt_getprop(fdt, node, name, &len);
    *found = p && len == 8;
    return *found ? be64_at(p) : 0;
}

static uint32_t phandles[4096];
static unsigned nphandles;

static bool phandle_exists(uint32_t ph)
{
    for (unsigned i = 0; i < nphandles; i++)
        if (phandles[i] == ph)
            return true;
    return false;
}

/* Every phandle is unique and every phandle a property refers to exists. */
static void check_phandles(const void *fdt)
{
    uint32_t *seen = phandles;
    unsigned n = 0;
    for (int node = fdt_next_node(fdt, -1, NULL); node >= 0; node = fdt_next_node(fdt, node, NULL)) {
        uint32_t ph = fdt_get_phandle(fdt, node);
        if (!ph)
            continue;
        for (unsigned i = 0; i < n; i++)
            FUZZ_CHECK(seen[i] != ph, "phandle %u used twice", ph);
        FUZZ_SETUP(n < 4096);
        seen[n++] = ph;
    }
    nphandles = n;
    for (int node = fdt_next_node(fdt, -1, NULL); node >= 0; node = fdt_next_node(fdt, node, NULL)) {
        int len;
        const fdt32_t *p = fdt_getprop(fdt, node, "interrupt-parent", &len);
        if (p && len == 4)
            FUZZ_CHECK(phandle_exists(fdt32_to_cpu(*p)),
                       "interrupt-parent %u does not exist", fdt32_to_cpu(*p));
        p = fdt_getprop(fdt, node, "cpu", &len);
        if (p && len == 4)
            FUZZ_CHECK(phandle_exists(fdt32_to_cpu(*p)),
                       "cpu-map entry %u does not exist", fdt32_to_cpu(*p));
        /* interrupts-extended: <phandle irq> pairs (cpu-intc has
         * #interrupt-cells = 1) */
        p = fdt_getprop(fdt, node, "interrupts-extended", &len);
        for (int i = 0; p && i + 1 < len / 4; i += 2)
            FUZZ_CHECK(phandle_exists(fdt32_to_cpu(p[i])),
                       "interrupts-extended names phandle %u that does not exist",
                       fdt32_to_cpu(p[i]));
    }
}

static void check_machine(struct virt_machine *m, const struct virt_config *cfg, const char *append,
                          bool bios, uint64_t kernel_end, size_t initrd_size)
{
    /* the --dump-dtb file is the machine's blob */
    struct stat st;
    FUZZ_SETUP(fstat(dtb_fd, &st) == 0);
    FUZZ_CHECK((size_t)st.st_size == m->fdt_size && m->fdt_size <= (1 << 20),
               "dumped %lld bytes, blob has %zu", (long long)st.st_size, m->fdt_size);
    FUZZ_SETUP(pread(dtb_fd, dtb_buf, m->fdt_size, 0) == (ssize_t)m->fdt_size);
    FUZZ_CHECK(memcmp(dtb_buf, m->fdt, m->fdt_size) == 0, "dumped blob differs");
    const void *fdt = dtb_buf;
    int rc = fdt_check_full(fdt, m->fdt_size);
    FUZZ_CHECK(rc == 0, "fdt_check_full: %s", fdt_strerror(rc));

    int chosen = fdt_path_offset(fdt, "/chosen");
    FUZZ_CHECK(chosen >= 0, "no /chosen");
    int len = 0;
    const char *bootargs = fdt_getprop(fdt, chosen, "bootargs", &len);
    FUZZ_CHECK(bootargs && len >= 1 && bootargs[len - 1] == '\0' &&
               strcmp(bootargs, append ? append : "") == 0,
               "bootargs \"%s\" (len %d), command line \"%s\"", bootargs ? bootargs : "(none)",
               len, append ? append : "");

    int cpus = fdt_path_offset(fdt, "/cpus");
    FUZZ_CHECK(cpus >= 0, "no /cpus");
    unsigned ncpu = 0;
    int child;
    fdt_for_each_subnode(child, fdt, cpus) {
        const char *type = fdt_getprop(fdt, child, "device_type", &len);
        if (type && strcmp(type, "cpu") == 0)
            ncpu++;
    }
    FUZZ_CHECK(ncpu == cfg->nharts, "%u cpu nodes for %u harts", ncpu, cfg->nharts);

    int memory = fdt_path_offset(fdt, "/memory@80000000");
    FUZZ_CHECK(memory >= 0, "no /memory@80000000");
    const uint8_t *reg = fdt_getprop(fdt, memory, "reg", &len);
    FUZZ_CHECK(reg && len == 16 && be64_at(reg) == VIRT_RAM_BASE &&
               be64_at(reg + 8) == cfg->ram_size, "memory reg");

    bool has_start, has_end;
    uint64_t istart = prop_u64(fdt, chosen, "linux,initrd-start", &has_start);
    uint64_t iend = prop_u64(fdt, chosen, "linux,initrd-end", &has_end);
    if (initrd_size) {
        FUZZ_CHECK(has_start && has_end && iend - istart == initrd_size,
                   "initrd range 0x%llx-0x%llx for %zu bytes", (unsigned long long)istart,
                   (unsigned long long)iend, initrd_size);
        const uint8_t *p = guest_mem_ram_ptr(&m->mem, istart, initrd_size);
        FUZZ_CHECK(p, "initrd range is not RAM");
        for (size_t i = 0; i < initrd_size; i += 4093)
            FUZZ_CHECK(p[i] == INITRD_FILL(i), "initrd byte %zu in guest RAM", i);
        FUZZ_CHECK(p[initrd_size - 1] == INITRD_FILL(initrd_size - 1), "initrd last byte");
    } else {
        FUZZ_CHECK(!has_start && !has_end, "initrd properties without an initrd");
    }
    check_phandles(fdt);

    /* the blob in guest RAM, where a1 of the boot hart points */
    uint64_t fdt_addr = m->harts[0]->arch.x[11];
    const uint8_t *g = guest_mem_ram_ptr(&m->mem, fdt_addr, m->fdt_size);
    FUZZ_CHECK(g && memcmp(g, fdt, m->fdt_size) == 0, "no device tree at a1 = 0x%llx",
               (unsigned long long)fdt_addr);
    FUZZ_CHECK(fdt_addr + m->fdt_size <= 0x100000000ull, "device tree above 4 GiB");
    if (initrd_size)
        FUZZ_CHECK(iend <= fdt_addr || istart >= fdt_addr + m->fdt_size,
                   "initrd overlaps the device tree");
    if (kernel_end)
        FUZZ_CHECK(fdt_addr >= kernel_end && (!initrd_size || istart >= kernel_end),
                   "kernel overlaps the device tree or initrd");

    for (unsigned i = 0; i < cfg->nharts; i++) {
        struct hart *h = m->harts[i];
        int state = atomic_load(&h->arch.state);
        FUZZ_CHECK(h->arch.x[10] == i && h->arch.x[11] == fdt_addr, "hart %u a0/a1", i);
        if (bios)
            FUZZ_CHECK(state == HART_STARTED && h->arch.priv == PRIV_M && h->arch.pc == VIRT_RAM_BASE,
                       "bios: hart %u state %d priv %d", i, state, h->arch.priv);
        else
            FUZZ_CHECK(state == (i == 0 ? HART_STARTED : HART_STOPPED) && h->arch.priv == PRIV_S &&
                       h->arch.pc == VIRT_KERNEL_ADDR, "kernel: hart %u state %d priv %d", i, state,
                       h->arch.priv);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (kernel_fd < 0)
        setup();
    struct fuzz_in in = { data, size };
    unsigned nharts = 1 + fuzz_u8(&in) % VIRT_MAX_HARTS;
    uint64_t ram_mib = 16 + fuzz_u64(&in, 2) % 8177;
    uint8_t flags = fuzz_u8(&in);
    uint64_t initrd_pages = fuzz_u64(&in, 2);
    size_t initrd_size = (flags & 1) ? (1 + initrd_pages % 4096) * 4096 : 0;
    char append[MAX_APPEND + 1];
    size_t alen = strnlen((const char *)in.p, in.n < MAX_APPEND ? in.n : MAX_APPEND);
    memcpy(append, in.p, alen);
    append[alen] = '\0';

    bool bios = flags & 2, kernel = !bios || (flags & 4);
    struct virt_config cfg = {
        .kernel = kernel ? kernel_path : NULL,
        .initrd = initrd_size ? initrd_path : NULL,
        .append = (flags & 0x80) ? NULL : append,
        .bios = bios ? bios_path : NULL,
        .dump_dtb = dtb_path,
        .ram_size = (ram_mib << 20) + ((flags >> 4) & 7) * 4096ull,
        .nharts = nharts,
        .console_kind = CONSOLE_FILE,
    };
    snprintf(cfg.console_path, sizeof(cfg.console_path), "%s", console_path);
    if (kernel)
        write_kernel(flags & 8);
    static size_t initrd_written;
    if (initrd_size && initrd_size != initrd_written) {
        write_initrd(initrd_size);
        initrd_written = initrd_size;
    }
    FUZZ_SETUP(ftruncate(dtb_fd, 0) == 0);

    struct virt_machine *m = NULL;
    char err[512] = "";
    int rc = virt_create(&cfg, &m, err, sizeof(err));
    if (getenv("NIMBUS_FUZZ_VERBOSE"))
        fprintf(stderr, "fdt: %u harts, RAM 0x%llx, bios %d kernel %d initrd %zu, append %zu bytes: %d %s\n",
                nharts, (unsigned long long)cfg.ram_size, bios, kernel, initrd_size, alen, rc, err);
    if (rc) {
        FUZZ_CHECK(m == NULL, "failed virt_create returned a machine");
        FUZZ_CHECK(err[0] && !strchr(err, '\n'), "error message: \"%s\"", err);
        /* The only legitimate failure here: the initrd does not fit below
         * the device tree's 2 MiB window, above the kernel. */
        uint64_t top = VIRT_RAM_BASE + cfg.ram_size;
        if (top > 0x100000000ull)
            top = 0x100000000ull;
        uint64_t fdt_addr = (top - 0x200000) & ~0x1fffffull;
        uint64_t low = kernel ? kernel_end(flags & 8) : VIRT_RAM_BASE + 4;
        uint64_t start = (fdt_addr - initrd_size) & ~0xfffull;
        FUZZ_CHECK(rc == -ENOMEM && initrd_size && strstr(err, initrd_path) &&
                   (initrd_size > fdt_addr - VIRT_RAM_BASE || start < low),
                   "virt_create failed: %d %s", rc, err);
        return 0;
    }
    check_machine(m, &cfg, cfg.append, bios, kernel ? kernel_end(flags & 8) : 0, initrd_size);
    virt_destroy(m);
    return 0;
}
