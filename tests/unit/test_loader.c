/* Unit tests for the image loader: hand-built ELF and Image files in a temp
 * directory, loaded into a small guest RAM. */
#include <elf.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/loader.h"
#include "mem/guest_mem.h"

#include "check.h"

/* Every check in this file carries a context message. */
#undef CHECK
#define CHECK CHECK_MSG

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (64ull << 20)
#define REAL_KERNEL "/tmp/gapt/dl/x/boot/vmlinux-6.12.107+deb13-riscv64"

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    return path;
}

/* ---- ELF builder ---- */

struct seg {
    uint64_t paddr, filesz, memsz;
    uint8_t fill;        /* file bytes are fill, fill+1, ... */
    uint64_t offset;     /* 0: laid out automatically */
};

struct sym { const char *name; uint64_t value; };

struct elf_spec {
    uint16_t machine;
    uint8_t class;
    uint64_t entry;
    const struct seg *segs;
    int nseg;
    const struct sym *syms;
    int nsym;
    bool bad_strtab_link;
};

static size_t align16(size_t v) { return (v + 15) & ~(size_t)15; }

/* Returns a malloc'ed ELF image and its size. */
static uint8_t *build_elf(const struct elf_spec *s, size_t *lenp)
{
    size_t off = sizeof(Elf64_Ehdr) + s->nseg * sizeof(Elf64_Phdr);
    size_t data_off[16];
    for (int i = 0; i < s->nseg; i++) {
        off = align16(off);
        data_off[i] = off;
        if (!s->segs[i].offset)
            off += s->segs[i].filesz;
    }
    size_t sym_off = 0, str_off = 0, sh_off = 0, strsize = 1;
    if (s->nsym) {
        for (int i = 0; i < s->nsym; i++)
            strsize += strlen(s->syms[i].name) + 1;
        sym_off = align16(off);
        str_off = sym_off + (s->nsym + 1) * sizeof(Elf64_Sym);
        sh_off = align16(str_off + strsize);
        off = sh_off + 3 * sizeof(Elf64_Shdr);
    }
    size_t len = align16(off);
    uint8_t *b = calloc(1, len);
    if (!b)
        exit(2);

    Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = s->class ? s->class : ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_EXEC;
    eh->e_machine = s->machine ? s->machine : EM_RISCV;
    eh->e_version = EV_CURRENT;
    eh->e_entry = s->entry;
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_ehsize = sizeof(Elf64_Ehdr);
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phnum = s->nseg;
    Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
    for (int i = 0; i < s->nseg; i++) {
        const struct seg *g = &s->segs[i];
        ph[i].p_type = PT_LOAD;
        ph[i].p_flags = PF_R | PF_W | PF_X;
        ph[i].p_offset = g->offset ? g->offset : data_off[i];
        ph[i].p_vaddr = g->paddr;
        ph[i].p_paddr = g->paddr;
        ph[i].p_filesz = g->filesz;
        ph[i].p_memsz = g->memsz;
        ph[i].p_align = 16;
        if (!g->offset)
            for (uint64_t k = 0; k < g->filesz; k++)
                b[data_off[i] + k] = (uint8_t)(g->fill + k);
    }
    if (s->nsym) {
        Elf64_Sym *sym = (Elf64_Sym *)(b + sym_off);
        char *str = (char *)(b + str_off);
        size_t spos = 1;
        for (int i = 0; i < s->nsym; i++) {
            sym[i + 1].st_name = spos;
            sym[i + 1].st_value = s->syms[i].value;
            sym[i + 1].st_shndx = SHN_ABS;
            sym[i + 1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
            strcpy(str + spos, s->syms[i].name);
            spos += strlen(s->syms[i].name) + 1;
        }
        Elf64_Shdr *sh = (Elf64_Shdr *)(b + sh_off);
        sh[1].sh_type = SHT_SYMTAB;
        sh[1].sh_offset = sym_off;
        sh[1].sh_size = (s->nsym + 1) * sizeof(Elf64_Sym);
        sh[1].sh_entsize = sizeof(Elf64_Sym);
        sh[1].sh_link = s->bad_strtab_link ? 7 : 2;
        sh[2].sh_type = SHT_STRTAB;
        sh[2].sh_offset = str_off;
        sh[2].sh_size = strsize;
        eh->e_shoff = sh_off;
        eh->e_shentsize = sizeof(Elf64_Shdr);
        eh->e_shnum = 3;
    }
    *lenp = len;
    return b;
}

static const char *write_elf(const char *name, const struct elf_spec *s)
{
    size_t len;
    uint8_t *b = build_elf(s, &len);
    const char *p = write_file(name, b, len);
    free(b);
    return p;
}

/* ---- Image builder ---- */

static uint8_t *build_image(size_t len, uint64_t text_offset, uint64_t image_size,
                            bool pe, bool magic, bool magic2)
{
    uint8_t *b = calloc(1, len);
    if (!b)
        exit(2);
    for (size_t i = 64; i < len; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    if (pe) {
        b[0] = 'M';
        b[1] = 'Z';
    }
    memcpy(b + 8, &text_offset, 8);
    memcpy(b + 16, &image_size, 8);
    if (magic)
        memcpy(b + 0x30, "RISCV\0\0\0", 8);
    if (magic2)
        memcpy(b + 0x38, "RSC\x05", 4);
    if (pe)
        memcpy(b + 0x40, "PE\0\0", 4);
    return b;
}

static bool ram_equals(struct guest_mem *mem, uint64_t pa, const uint8_t *data, size_t len)
{
    const uint8_t *p = guest_mem_ram_ptr(mem, pa, len);
    return p && memcmp(p, data, len) == 0;
}

static bool ram_is(struct guest_mem *mem, uint64_t pa, uint8_t v, size_t len)
{
    const uint8_t *p = guest_mem_ram_ptr(mem, pa, len);
    if (!p)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

static void scribble(struct guest_mem *mem)
{
    memset(mem->ram, 0xAA, 4 << 20);  /* first 4 MiB: where the small tests load */
}

/* ---- tests ---- */

static void test_elf_ok(struct guest_mem *mem)
{
    const struct seg segs[] = {
        { .paddr = RAM_BASE, .filesz = 0x100, .memsz = 0x100, .fill = 1 },
        { .paddr = RAM_BASE + 0x10000, .filesz = 0x10, .memsz = 0x1000, .fill = 0x40 },
    };
    struct elf_spec s = { .entry = RAM_BASE + 0x20, .segs = segs, .nseg = 2 };
    const char *path = write_elf("ok.elf", &s);
    scribble(mem);
    struct loaded_image img;
    char err[256] = "";
    int rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == 0, "rc=%d %s", rc, err);
    CHECK(img.entry == RAM_BASE + 0x20, "entry 0x%llx", (unsigned long long)img.entry);
    CHECK(img.start == RAM_BASE, "start 0x%llx", (unsigned long long)img.start);
    CHECK(img.end == RAM_BASE + 0x11000, "end 0x%llx", (unsigned long long)img.end);
    uint8_t want[0x100];
    for (int i = 0; i < 0x100; i++)
        want[i] = (uint8_t)(1 + i);
    CHECK(ram_equals(mem, RAM_BASE, want, 0x100), "segment 0 contents");
    for (int i = 0; i < 0x10; i++)
        want[i] = (uint8_t)(0x40 + i);
    CHECK(ram_equals(mem, RAM_BASE + 0x10000, want, 0x10), "segment 1 contents");
    CHECK(ram_is(mem, RAM_BASE + 0x10010, 0, 0x1000 - 0x10), "bss zeroed");
    CHECK(ram_is(mem, RAM_BASE + 0x11000, 0xAA, 0x100), "nothing written past bss");
    CHECK(ram_is(mem, RAM_BASE + 0x100, 0xAA, 0x100), "nothing written between segments");

    /* The same file as firmware: entry from e_entry, no symbols. */
    uint64_t to = 1, from = 1;
    rc = loader_load_firmware(mem, path, RAM_BASE + 0x300000, &img, &to, &from, err, sizeof(err));
    CHECK(rc == 0, "firmware rc=%d %s", rc, err);
    CHECK(img.entry == RAM_BASE + 0x20 && img.start == RAM_BASE, "firmware ELF entry/start");
    CHECK(to == 0 && from == 0, "no symbols -> 0 (%llx %llx)", (unsigned long long)to,
          (unsigned long long)from);
}

static void test_firmware_symbols(struct guest_mem *mem)
{
    const struct seg segs[] = { { .paddr = RAM_BASE, .filesz = 0x2000, .memsz = 0x2000 } };
    const struct sym syms[] = {
        { "_start", RAM_BASE }, { "tohostx", 0x1 }, { "tohost", RAM_BASE + 0x1000 },
        { "fromhost", RAM_BASE + 0x1040 },
    };
    struct elf_spec s = { .entry = RAM_BASE, .segs = segs, .nseg = 1, .syms = syms, .nsym = 4 };
    const char *path = write_elf("fw.elf", &s);
    struct loaded_image img;
    uint64_t to = 0, from = 0;
    char err[256] = "";
    int rc = loader_load_firmware(mem, path, 0, &img, &to, &from, err, sizeof(err));
    CHECK(rc == 0, "rc=%d %s", rc, err);
    CHECK(to == RAM_BASE + 0x1000, "tohost 0x%llx", (unsigned long long)to);
    CHECK(from == RAM_BASE + 0x1040, "fromhost 0x%llx", (unsigned long long)from);
    CHECK(img.entry == RAM_BASE, "entry");
    rc = loader_load_firmware(mem, path, 0, &img, NULL, NULL, err, sizeof(err));
    CHECK(rc == 0, "NULL symbol pointers accepted: rc=%d %s", rc, err);

    s.bad_strtab_link = true;
    path = write_elf("fw-badsym.elf", &s);
    err[0] = 0;
    rc = loader_load_firmware(mem, path, 0, &img, &to, &from, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, path), "bad sh_link rejected: rc=%d %s", rc, err);

    /* Symbol table pointing past the end of the file. */
    size_t len;
    s.bad_strtab_link = false;
    uint8_t *b = build_elf(&s, &len);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
    Elf64_Shdr *sh = (Elf64_Shdr *)(b + eh->e_shoff);
    sh[1].sh_offset = len - 8;
    path = write_file("fw-symoob.elf", b, len);
    err[0] = 0;
    rc = loader_load_firmware(mem, path, 0, &img, &to, &from, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, "symbol"), "symtab outside file rejected: rc=%d %s", rc, err);
    /* String offsets past the string table: ignored, not read out of bounds. */
    sh[1].sh_offset = ((Elf64_Shdr *)(b + eh->e_shoff))[2].sh_offset - 5 * sizeof(Elf64_Sym);
    Elf64_Sym *sym = (Elf64_Sym *)(b + sh[1].sh_offset);
    for (int i = 1; i < 5; i++)
        sym[i].st_name = 0xfffffff0u;
    path = write_file("fw-strobb.elf", b, len);
    rc = loader_load_firmware(mem, path, 0, &img, &to, &from, err, sizeof(err));
    CHECK(rc == 0 && to == 0 && from == 0, "bad st_name ignored: rc=%d %s", rc, err);
    free(b);
}

static void test_firmware_flat(struct guest_mem *mem)
{
    uint8_t blob[300];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i ^ 0x5a);
    const char *path = write_file("fw.bin", blob, sizeof(blob));
    struct loaded_image img;
    uint64_t to = 7, from = 7;
    char err[256] = "";
    int rc = loader_load_firmware(mem, path, RAM_BASE + 0x1000, &img, &to, &from, err, sizeof(err));
    CHECK(rc == 0, "rc=%d %s", rc, err);
    CHECK(img.entry == RAM_BASE + 0x1000 && img.start == RAM_BASE + 0x1000 &&
          img.end == RAM_BASE + 0x1000 + sizeof(blob), "flat firmware extent");
    CHECK(to == 0 && from == 0, "flat firmware has no HTIF symbols");
    CHECK(ram_equals(mem, RAM_BASE + 0x1000, blob, sizeof(blob)), "flat firmware contents");
    err[0] = 0;
    rc = loader_load_firmware(mem, path, RAM_BASE + RAM_SIZE - 10, &img, &to, &from, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, "does not fit in guest RAM") && strstr(err, path),
          "flat firmware past RAM: rc=%d %s", rc, err);
}

static void test_raw(struct guest_mem *mem)
{
    uint8_t blob[5000];
    for (size_t i = 0; i < sizeof(blob); i++)
        blob[i] = (uint8_t)(i * 13);
    const char *path = write_file("initrd", blob, sizeof(blob));
    struct loaded_image img;
    char err[256] = "";
    uint64_t addr = RAM_BASE + 0x200000 + 3;
    int rc = loader_load_raw(mem, path, addr, &img, err, sizeof(err));
    CHECK(rc == 0, "rc=%d %s", rc, err);
    CHECK(img.start == addr && img.end == addr + sizeof(blob) && img.entry == addr, "raw extent");
    CHECK(ram_equals(mem, addr, blob, sizeof(blob)), "raw contents");

    err[0] = 0;
    rc = loader_load_raw(mem, path, RAM_BASE - 100, &img, err, sizeof(err));
    CHECK(rc == -E2BIG && strstr(err, "does not fit"), "raw below RAM: rc=%d %s", rc, err);
    err[0] = 0;
    rc = loader_load_raw(mem, path, UINT64_MAX - 10, &img, err, sizeof(err));
    CHECK(rc == -E2BIG, "raw at wrapping address: rc=%d %s", rc, err);
    const char *empty = write_file("empty-initrd", "", 0);
    err[0] = 0;
    rc = loader_load_raw(mem, empty, RAM_BASE, &img, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, empty), "empty raw file: rc=%d %s", rc, err);
}

static void test_image(struct guest_mem *mem)
{
    struct loaded_image img;
    char err[256] = "";
    const size_t len = 0x1000;

    /* Plain header, text_offset 2 MiB, image_size larger than the file. */
    uint8_t *b = build_image(len, 0x200000, 0x10000, false, true, true);
    const char *path = write_file("Image", b, len);
    memset(mem->ram + 0x200000, 0xAA, 0x20000);
    int rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == 0, "rc=%d %s", rc, err);
    CHECK(img.entry == RAM_BASE + 0x200000 && img.start == RAM_BASE + 0x200000 &&
          img.end == RAM_BASE + 0x210000, "Image extent 0x%llx-0x%llx",
          (unsigned long long)img.start, (unsigned long long)img.end);
    CHECK(ram_equals(mem, RAM_BASE + 0x200000, b, len), "Image contents");
    CHECK(ram_is(mem, RAM_BASE + 0x200000 + len, 0, 0x10000 - len), "Image tail zeroed");
    CHECK(ram_is(mem, RAM_BASE + 0x210000, 0xAA, 0x100), "nothing past image_size");

    /* Explicit load address; misaligned one refused. */
    rc = loader_load_kernel(mem, path, RAM_BASE + 0x400000, &img, err, sizeof(err));
    CHECK(rc == 0 && img.entry == RAM_BASE + 0x400000 && img.end == RAM_BASE + 0x410000,
          "explicit load address: rc=%d %s", rc, err);
    err[0] = 0;
    rc = loader_load_kernel(mem, path, RAM_BASE + 0x1000, &img, err, sizeof(err));
    CHECK(rc == -EINVAL && strstr(err, "aligned"), "misaligned load address: rc=%d %s", rc, err);
    free(b);

    /* text_offset 0 -> ram_base + 2 MiB; image_size smaller than file -> file size. */
    b = build_image(len, 0, 0x100, false, false, true);
    path = write_file("Image0", b, len);
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == 0 && img.start == RAM_BASE + 0x200000 && img.end == RAM_BASE + 0x200000 + len,
          "text_offset 0: rc=%d %s end 0x%llx", rc, err, (unsigned long long)img.end);
    free(b);

    /* PE-prefixed (Debian's EFI stub): MZ at 0, both magics. */
    b = build_image(len, 0x200000, 0x2000, true, true, true);
    path = write_file("Image.efi", b, len);
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == 0 && img.entry == RAM_BASE + 0x200000 && img.end == RAM_BASE + 0x202000,
          "PE-prefixed Image: rc=%d %s", rc, err);
    CHECK(ram_equals(mem, RAM_BASE + 0x200000, b, len), "PE Image contents");
    free(b);

    /* Old header with only the deprecated magic. */
    b = build_image(len, 0x200000, 0, false, true, false);
    path = write_file("Image-old", b, len);
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == 0 && img.end == RAM_BASE + 0x200000 + len, "old magic: rc=%d %s", rc, err);
    free(b);

    /* Absurd header values. */
    b = build_image(len, 0x200000, UINT64_MAX, false, true, true);
    path = write_file("Image-huge", b, len);
    err[0] = 0;
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == -E2BIG && strstr(err, "does not fit in guest RAM") && strstr(err, path),
          "image_size absurd: rc=%d %s", rc, err);
    free(b);
    b = build_image(len, 0xfffffffffff00000ull, 0x1000, false, true, true);
    path = write_file("Image-off", b, len);
    err[0] = 0;
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == -E2BIG && strstr(err, path), "text_offset absurd: rc=%d %s", rc, err);
    free(b);
    b = build_image(len, RAM_SIZE - 0x800, 0, false, true, true);
    path = write_file("Image-end", b, len);
    err[0] = 0;
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == -E2BIG, "Image crossing end of RAM: rc=%d %s", rc, err);
    free(b);

    /* Too short to hold the header: not an Image. */
    b = build_image(len, 0x200000, 0, false, true, true);
    path = write_file("Image-short", b, 0x3c);
    err[0] = 0;
    rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    CHECK(rc == -ENOEXEC && strstr(err, "not a RISC-V ELF or Image"), "short Image: rc=%d %s", rc, err);
    free(b);
}

static void expect_kernel_error(struct guest_mem *mem, const char *path, const char *what,
                                const char *needle)
{
    struct loaded_image img = { 0 };
    char err[256] = "";
    int rc = loader_load_kernel(mem, path, 0, &img, err, sizeof(err));
    if (getenv("TEST_VERBOSE"))
        printf("  %-28s rc=%-4d %s\n", what, rc, err);
    CHECK(rc < 0, "%s: accepted", what);
    CHECK(err[0] && strstr(err, path), "%s: message does not name the file: '%s'", what, err);
    CHECK(!needle || strstr(err, needle), "%s: message '%s' lacks '%s'", what, err, needle);
    CHECK(!strchr(err, '\n'), "%s: message is one line", what);
}

static void test_rejects(struct guest_mem *mem)
{
    uint8_t rnd[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof(rnd); i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        rnd[i] = (uint8_t)x;
    }
    expect_kernel_error(mem, write_file("random", rnd, sizeof(rnd)), "random bytes",
                        "not a RISC-V ELF or Image");
    expect_kernel_error(mem, write_file("empty", "", 0), "empty file", "not a RISC-V ELF or Image");
    expect_kernel_error(mem, tmp_path("does-not-exist"), "nonexistent file", "No such file");
    expect_kernel_error(mem, tmpdir, "directory", "not a regular file");

    const struct seg one[] = { { .paddr = RAM_BASE, .filesz = 0x40, .memsz = 0x80 } };
    struct elf_spec s = { .entry = RAM_BASE, .segs = one, .nseg = 1 };
    size_t len;
    uint8_t *b = build_elf(&s, &len);
    expect_kernel_error(mem, write_file("trunc-hdr.elf", b, 20), "truncated ELF header", "truncated");
    expect_kernel_error(mem, write_file("trunc-ph.elf", b, sizeof(Elf64_Ehdr) + 10),
                        "truncated program headers", "program headers");
    expect_kernel_error(mem, write_file("trunc-data.elf", b, len - 0x20), "truncated segment data",
                        "outside the file");
    Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
    eh->e_phnum = 0xffff;
    expect_kernel_error(mem, write_file("phnum.elf", b, len), "absurd e_phnum", "program headers");
    eh->e_phnum = 1;
    eh->e_phentsize = 32;
    expect_kernel_error(mem, write_file("phentsize.elf", b, len), "bad e_phentsize", "header size");
    eh->e_phentsize = sizeof(Elf64_Phdr);
    eh->e_phoff = UINT64_MAX - 8;
    expect_kernel_error(mem, write_file("phoff.elf", b, len), "e_phoff wraps", "outside the file");
    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_type = ET_REL;
    expect_kernel_error(mem, write_file("rel.elf", b, len), "relocatable ELF", "executable");
    eh->e_type = ET_EXEC;
    eh->e_entry = RAM_BASE + 0x1000;
    expect_kernel_error(mem, write_file("entry.elf", b, len), "entry outside image", "entry");
    free(b);

    s.machine = EM_X86_64;
    expect_kernel_error(mem, write_elf("x86.elf", &s), "x86-64 ELF", "x86-64");
    s.machine = 0;
    s.class = ELFCLASS32;
    expect_kernel_error(mem, write_elf("rv32.elf", &s), "ELFCLASS32", "64-bit");
    s.class = 0;

    const struct seg low[] = { { .paddr = 0x1000, .filesz = 0x40, .memsz = 0x40 } };
    s = (struct elf_spec){ .entry = 0x1000, .segs = low, .nseg = 1 };
    expect_kernel_error(mem, write_elf("low.elf", &s), "segment below RAM",
                        "kernel segment 0x1000 (size 0x40) does not fit in guest RAM");
    const struct seg cross[] = { { .paddr = RAM_BASE + RAM_SIZE - 0x20, .filesz = 0x40, .memsz = 0x40 } };
    s = (struct elf_spec){ .entry = RAM_BASE + RAM_SIZE - 0x20, .segs = cross, .nseg = 1 };
    expect_kernel_error(mem, write_elf("cross.elf", &s), "segment crossing end of RAM",
                        "does not fit in guest RAM");
    const struct seg wrap[] = { { .paddr = RAM_BASE, .filesz = 0x40, .memsz = UINT64_MAX - 4 } };
    s = (struct elf_spec){ .entry = RAM_BASE, .segs = wrap, .nseg = 1 };
    expect_kernel_error(mem, write_elf("wrap.elf", &s), "memsz wrapping", "does not fit");
    const struct seg big[] = { { .paddr = RAM_BASE, .filesz = 0x80, .memsz = 0x40 } };
    s = (struct elf_spec){ .entry = RAM_BASE, .segs = big, .nseg = 1 };
    expect_kernel_error(mem, write_elf("filesz.elf", &s), "filesz > memsz", "larger");
    const struct seg oob[] = { { .paddr = RAM_BASE, .filesz = 0x40, .memsz = 0x40,
                                 .offset = 0xffffffffffffff00ull } };
    s = (struct elf_spec){ .entry = RAM_BASE, .segs = oob, .nseg = 1 };
    expect_kernel_error(mem, write_elf("offset.elf", &s), "segment offset outside file", "outside the file");
    const struct seg ovl[] = {
        { .paddr = RAM_BASE, .filesz = 0x40, .memsz = 0x2000 },
        { .paddr = RAM_BASE + 0x1000, .filesz = 0x40, .memsz = 0x40 },
    };
    s = (struct elf_spec){ .entry = RAM_BASE, .segs = ovl, .nseg = 2 };
    expect_kernel_error(mem, write_elf("overlap.elf", &s), "overlapping segments", "overlap");
    s = (struct elf_spec){ .entry = RAM_BASE, .segs = ovl, .nseg = 0 };
    expect_kernel_error(mem, write_elf("nophdr.elf", &s), "no program headers", "program headers");

    /* NULL err buffer is allowed. */
    struct loaded_image img;
    CHECK(loader_load_kernel(mem, tmp_path("does-not-exist"), 0, &img, NULL, 0) == -ENOENT,
          "NULL err buffer");
}

/* Random corruption of a valid ELF with symbols: must never crash or read
 * out of bounds (run under ASan); the result itself does not matter. */
static void test_fuzz(struct guest_mem *mem)
{
    const struct seg segs[] = {
        { .paddr = RAM_BASE, .filesz = 0x40, .memsz = 0x80 },
        { .paddr = RAM_BASE + 0x1000, .filesz = 0x40, .memsz = 0x40 },
    };
    const struct sym syms[] = { { "tohost", RAM_BASE + 8 }, { "fromhost", RAM_BASE + 16 } };
    struct elf_spec s = { .entry = RAM_BASE, .segs = segs, .nseg = 2, .syms = syms, .nsym = 2 };
    size_t len;
    uint8_t *orig = build_elf(&s, &len);
    uint8_t *b = malloc(len);
    if (!b)
        exit(2);
    uint64_t x = 12345;
    int accepted = 0;
    const char *path = tmp_path("fuzz.elf");
    for (int iter = 0; iter < 2000; iter++) {
        memcpy(b, orig, len);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t pos = (x >> 8) % len;
            if (iter % 2)  /* half the time aim at the headers */
                pos = (x >> 8) % (sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr));
            b[pos] = (uint8_t)(x >> 40);
        }
        size_t flen = iter % 7 == 0 ? (x >> 20) % len : len;
        write_file("fuzz.elf", b, flen);
        struct loaded_image img;
        uint64_t to, from;
        char err[256];
        if (loader_load_firmware(mem, path, RAM_BASE, &img, &to, &from, err, sizeof(err)) == 0)
            accepted++;
        else
            CHECK(strstr(err, path) != NULL, "fuzz message lacks the path: %s", err);
    }
    CHECK(accepted > 0, "fuzz: some mutants load");
    free(b);
    free(orig);
}

static void test_real_kernel(struct guest_mem *mem)
{
    if (access(REAL_KERNEL, R_OK) != 0) {
        printf("note: %s absent, real-kernel check not run\n", REAL_KERNEL);
        return;
    }
    printf("note: checking the real Debian kernel %s\n", REAL_KERNEL);
    struct loaded_image img;
    char err[256] = "";
    int rc = loader_load_kernel(mem, REAL_KERNEL, 0, &img, err, sizeof(err));
    CHECK(rc == 0, "real kernel: rc=%d %s", rc, err);
    CHECK(img.entry == RAM_BASE + 0x200000 && img.start == img.entry, "real kernel entry 0x%llx",
          (unsigned long long)img.entry);
    CHECK(img.end > img.start + (16 << 20) && img.end <= RAM_BASE + RAM_SIZE,
          "real kernel end 0x%llx", (unsigned long long)img.end);
    const uint8_t *p = guest_mem_ram_ptr(mem, img.start, 0x40);
    CHECK(p && p[0] == 'M' && p[1] == 'Z' && !memcmp(p + 0x38, "RSC\x05", 4), "real kernel header in RAM");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nimbus-loader-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    struct guest_mem mem;
    if (guest_mem_init(&mem, RAM_BASE, RAM_SIZE) != 0) {
        printf("guest_mem_init failed\n");
        return 2;
    }
    test_elf_ok(&mem);
    test_firmware_symbols(&mem);
    test_firmware_flat(&mem);
    test_raw(&mem);
    test_image(&mem);
    test_rejects(&mem);
    test_fuzz(&mem);
    test_real_kernel(&mem);
    guest_mem_destroy(&mem);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("loader");
}
