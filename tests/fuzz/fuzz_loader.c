/* Fuzz target: the kernel and firmware loaders (src/machine/loader.c).
 *
 * Input: one selector byte, then the image file. The file goes to a memfd
 * that the loader opens as /proc/self/fd/N. Selector bits:
 *   0     loader_load_firmware (else loader_load_kernel)
 *   1-2   kernel: image_load_addr = 0, RAM + 2 MiB, an unaligned address,
 *         or a 2 MiB aligned address past the end of RAM
 *   3     firmware: ask for tohost/fromhost (else pass NULL)
 *
 * Checks, from loader.h's contract:
 *   - failure: rc is one of the documented errnos and `err` is one
 *     non-empty line that names the file;
 *   - success: start <= entry < end, [start, end) is guest RAM, the bytes
 *     there are the file's (flat images, each ELF PT_LOAD segment) and the
 *     rest of the extent is zero, and no RAM page outside [start, end) was
 *     written; loading the file again over garbage gives the same result
 *     (and zeroes the bss again); a firmware ELF's tohost/fromhost are
 *     the ones an independent walk of its .symtab finds.
 * Guest RAM (64 MiB, lazily backed) is made once and dropped with
 * MADV_DONTNEED after each input. */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fuzz_util.h"
#include "machine/loader.h"
#include "mem/guest_mem.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (64ull << 20)
#define NPAGES   (RAM_SIZE / GUEST_PAGE_SIZE)

static struct guest_mem mem;
static int file_fd = -1;
static char file_path[64];
static unsigned char resident[NPAGES];

static void setup(void)
{
    FUZZ_SETUP(guest_mem_init(&mem, RAM_BASE, RAM_SIZE) == 0);
    file_fd = fuzz_memfd("fuzz-image", file_path, sizeof(file_path));
}

static bool is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static uint8_t *ram(uint64_t pa) { return mem.ram + (pa - RAM_BASE); }

/* Every resident RAM page outside [start, end) must still be all zero. */
static void check_untouched_outside(uint64_t start, uint64_t end)
{
    FUZZ_SETUP(mincore(mem.ram, RAM_SIZE, resident) == 0);
    for (uint64_t i = 0; i < NPAGES; i++) {
        if (!(resident[i] & 1))
            continue;
        uint64_t pa = RAM_BASE + i * GUEST_PAGE_SIZE;
        uint64_t lo = pa, hi = pa + GUEST_PAGE_SIZE;
        /* the part of the page before start and after end */
        if (lo < start) {
            uint64_t e = hi < start ? hi : start;
            FUZZ_CHECK(is_zero(ram(lo), e - lo), "RAM written below the image at 0x%llx",
                       (unsigned long long)lo);
        }
        if (hi > end) {
            uint64_t s = lo > end ? lo : end;
            FUZZ_CHECK(is_zero(ram(s), hi - s), "RAM written past the image end 0x%llx",
                       (unsigned long long)end);
        }
    }
}

/* The file bytes [off, off + filesz) are at pa, then zeroes up to memsz. */
static void check_copy(const uint8_t *file, uint64_t off, uint64_t filesz, uint64_t pa,
                       uint64_t memsz)
{
    FUZZ_CHECK(guest_mem_ram_ptr(&mem, pa, memsz), "extent 0x%llx+0x%llx is not RAM",
               (unsigned long long)pa, (unsigned long long)memsz);
    FUZZ_CHECK(memcmp(ram(pa), file + off, filesz) == 0, "bytes at 0x%llx differ from the file",
               (unsigned long long)pa);
    FUZZ_CHECK(is_zero(ram(pa) + filesz, memsz - filesz), "bss at 0x%llx not zeroed",
               (unsigned long long)(pa + filesz));
}

/* ELF success: each PT_LOAD segment is where its header says. The loader
 * accepted the file, so the headers lie inside it. */
static void check_elf(const uint8_t *file, size_t size, const struct loaded_image *img)
{
    Elf64_Ehdr eh;
    FUZZ_CHECK(size >= sizeof(eh), "accepted an ELF shorter than its header");
    memcpy(&eh, file, sizeof(eh));
    FUZZ_CHECK(eh.e_machine == EM_RISCV && eh.e_ident[EI_CLASS] == ELFCLASS64,
               "accepted a non-RV64 ELF");
    FUZZ_CHECK(img->entry == eh.e_entry, "entry 0x%llx is not e_entry",
               (unsigned long long)img->entry);
    FUZZ_CHECK(eh.e_phoff <= size && (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) <= size - eh.e_phoff,
               "accepted program headers outside the file");
    bool any = false;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        any = true;
        FUZZ_CHECK(ph.p_paddr >= img->start && ph.p_memsz <= img->end - ph.p_paddr,
                   "segment 0x%llx outside the reported extent", (unsigned long long)ph.p_paddr);
        check_copy(file, ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz);
    }
    FUZZ_CHECK(any, "accepted an ELF with no loadable segment");
}

/* HTIF symbols of an accepted firmware ELF, found independently: the first
 * defined `tohost` / `fromhost` in the first SHT_SYMTAB (loader.h). */
static void check_htif(const uint8_t *file, uint64_t tohost, uint64_t fromhost)
{
    Elf64_Ehdr eh;
    memcpy(&eh, file, sizeof(eh));
    uint64_t want_to = 0, want_from = 0;
    if (eh.e_shoff && eh.e_shnum) {
        /* accepted, so the section headers and tables lie in the file */
        const Elf64_Shdr *sym = NULL, *str = NULL;
        Elf64_Shdr sh[2];
        for (unsigned i = 0; i < eh.e_shnum && !sym; i++) {
            memcpy(&sh[0], file + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof(Elf64_Shdr));
            if (sh[0].sh_type == SHT_SYMTAB) {
                sym = &sh[0];
                memcpy(&sh[1], file + eh.e_shoff + sh[0].sh_link * sizeof(Elf64_Shdr),
                       sizeof(Elf64_Shdr));
                str = &sh[1];
            }
        }
        for (uint64_t k = 0; sym && k < sym->sh_size / sizeof(Elf64_Sym); k++) {
            Elf64_Sym e;
            memcpy(&e, file + sym->sh_offset + k * sizeof(e), sizeof(e));
            if (e.st_shndx == SHN_UNDEF || e.st_name >= str->sh_size)
                continue;
            const char *name = (const char *)file + str->sh_offset + e.st_name;
            size_t room = str->sh_size - e.st_name;
            if (!want_to && room >= 7 && !memcmp(name, "tohost", 7))
                want_to = e.st_value;
            else if (!want_from && room >= 9 && !memcmp(name, "fromhost", 9))
                want_from = e.st_value;
        }
    }
    FUZZ_CHECK(tohost == want_to && fromhost == want_from,
               "tohost 0x%llx fromhost 0x%llx, the symbol table says 0x%llx 0x%llx",
               (unsigned long long)tohost, (unsigned long long)fromhost,
               (unsigned long long)want_to, (unsigned long long)want_from);
}

static void check_failure(int rc, const char *err)
{
    FUZZ_CHECK(rc == -ENOEXEC || rc == -E2BIG || rc == -EINVAL || rc == -EIO || rc == -ENOMEM,
               "undocumented error %d (%s)", rc, err);
    FUZZ_CHECK(err[0] != '\0', "error %d without a message", rc);
    FUZZ_CHECK(!strchr(err, '\n'), "message is not one line: %s", err);
    FUZZ_CHECK(strstr(err, file_path), "message does not name the file: %s", err);
}

#define FLAT_ADDR RAM_BASE
static uint64_t last_tohost, last_fromhost;

/* image_load_addr for a kernel: none, RAM + 2 MiB, unaligned, past RAM. */
static uint64_t kernel_addr(uint8_t sel)
{
    static const uint64_t addrs[4] = { 0, RAM_BASE + LOADER_KERNEL_ALIGN, RAM_BASE + 0x1000,
                                       RAM_BASE + RAM_SIZE };
    return addrs[(sel >> 1) & 3];
}

/* The call the selector byte asks for. */
static int load(uint8_t sel, struct loaded_image *img, char *err, size_t errlen)
{
    if (!(sel & 1))
        return loader_load_kernel(&mem, file_path, kernel_addr(sel), img, err, errlen);
    bool syms = sel & 8;
    last_tohost = last_fromhost = 1;
    return loader_load_firmware(&mem, file_path, FLAT_ADDR, img, syms ? &last_tohost : NULL,
                                syms ? &last_fromhost : NULL, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (file_fd < 0)
        setup();
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const uint8_t *file = data + 1;
    size_t fsize = size - 1;
    fuzz_memfd_set(file_fd, file, fsize);

    struct loaded_image img = { 0 };
    char err[512] = "";
    int rc = load(sel, &img, err, sizeof(err));
    bool flat = fsize < SELFMAG || memcmp(file, ELFMAG, SELFMAG) != 0;
    if (rc == 0 && flat && (sel & 1) && (sel & 8))
        FUZZ_CHECK(last_tohost == 0 && last_fromhost == 0, "flat firmware has HTIF symbols");
    if (rc == 0 && flat && !(sel & 1)) {
        uint64_t want = kernel_addr(sel);
        FUZZ_CHECK(want == 0 || img.start == want, "Image at 0x%llx, asked for 0x%llx",
                   (unsigned long long)img.start, (unsigned long long)want);
    }

    if (getenv("NIMBUS_FUZZ_VERBOSE"))
        fprintf(stderr, "loader: rc %d [0x%llx, 0x%llx) entry 0x%llx %s\n", rc,
                (unsigned long long)img.start, (unsigned long long)img.end,
                (unsigned long long)img.entry, err);
    if (rc) {
        check_failure(rc, err);
    } else {
        /* Load again over garbage: the same result, and zeroes where the
         * image has no file bytes (fresh RAM would hide a missing memset). */
        if (img.end > img.start && guest_mem_ram_ptr(&mem, img.start, img.end - img.start))
            memset(ram(img.start), 0xa5, img.end - img.start);
        struct loaded_image again = { 0 };
        int rc2 = load(sel, &again, err, sizeof(err));
        FUZZ_CHECK(rc2 == 0 && memcmp(&again, &img, sizeof(img)) == 0,
                   "second load of the same file: %d %s", rc2, err);
        FUZZ_CHECK(img.start <= img.entry && img.entry < img.end,
                   "entry 0x%llx outside [0x%llx, 0x%llx)", (unsigned long long)img.entry,
                   (unsigned long long)img.start, (unsigned long long)img.end);
        FUZZ_CHECK(guest_mem_ram_ptr(&mem, img.start, img.end - img.start),
                   "extent [0x%llx, 0x%llx) is not RAM", (unsigned long long)img.start,
                   (unsigned long long)img.end);
        if (flat) {
            FUZZ_CHECK(img.entry == img.start, "flat image entry is not its start");
            FUZZ_CHECK(img.end - img.start >= fsize, "extent smaller than the file");
            if (sel & 1)
                FUZZ_CHECK(img.start == FLAT_ADDR && img.end - img.start == fsize,
                           "flat firmware extent");
            check_copy(file, 0, fsize, img.start, img.end - img.start);
        } else {
            check_elf(file, fsize, &img);
            if ((sel & 1) && (sel & 8))
                check_htif(file, last_tohost, last_fromhost);
        }
        check_untouched_outside(img.start, img.end);
    }
    FUZZ_SETUP(madvise(mem.ram, RAM_SIZE, MADV_DONTNEED) == 0);
    return 0;
}
