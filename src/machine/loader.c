/* Guest image loader: RISC-V ELF, flat Linux Image, raw blobs.
 *
 * Files are read with pread() (never mmap'ed: a file truncated under us would
 * SIGBUS an mmap reader, while pread just comes up short and we report it).
 * Every offset and size taken from a header is checked against the file size
 * and guest RAM with overflow-safe arithmetic before it is used. */
#include "machine/loader.h"
#include "base/errmsg.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem/guest_mem.h"

/* ELF headers are read into the <elf.h> structs as they are on disk. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "loader assumes a little-endian host");

#define MAX_PHNUM      1024u            /* more program headers than this is absurd */
#define MAX_SYMTAB     (256u << 20)     /* cap for .symtab / .strtab reads */

/* Linux RISC-V boot image header (Documentation/arch/riscv/boot-image-header.rst). */
#define IMAGE_HDR_SIZE        64u
#define IMAGE_OFF_TEXT_OFFSET 0x08u
#define IMAGE_OFF_IMAGE_SIZE  0x10u
#define IMAGE_OFF_MAGIC       0x30u
#define IMAGE_OFF_MAGIC2      0x38u
static const uint8_t image_magic[8] = { 'R', 'I', 'S', 'C', 'V', 0, 0, 0 };
static const uint8_t image_magic2[4] = { 'R', 'S', 'C', 0x05 };

struct image_file {
    int fd;
    uint64_t size;
    const char *path;
};


static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* True when [off, off+len) lies inside a file of `size` bytes. */
static bool in_file(uint64_t size, uint64_t off, uint64_t len)
{
    return off <= size && len <= size - off;
}

static const char *file_type_name(mode_t mode)
{
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
         : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : "not a file";
}

static int open_image(const char *path, struct image_file *f, char *err, size_t errlen)
{
    f->fd = -1;
    f->size = 0;
    f->path = path;
    if (!path || !*path)
        return errmsg(err, errlen, -EINVAL, "no image file given");
    /* O_NONBLOCK: opening a FIFO (or a tty) must not wait for a writer; such
     * files are refused below. It changes nothing for regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int rc = -errno;
        return errmsg(err, errlen, rc, "cannot open %s: %s", path, strerror(-rc));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return errmsg(err, errlen, rc, "cannot stat %s: %s", path, strerror(-rc));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return errmsg(err, errlen, -EINVAL, "not a regular file (%s): %s", file_type_name(st.st_mode),
                      path);
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    return 0;
}

static void close_image(struct image_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Reads exactly `len` bytes at `off`; a short file is -EIO. */
static int read_at(const struct image_file *f, void *buf, uint64_t len, uint64_t off,
                   char *err, size_t errlen)
{
    if (!in_file(f->size, off, len))
        return errmsg(err, errlen, -EIO, "%s is truncated (needs bytes 0x%" PRIx64 "-0x%" PRIx64
                    ", file has 0x%" PRIx64 ")", f->path, off, off + len, f->size);
    uint8_t *p = buf;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t n = pread(f->fd, p, chunk, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int rc = -errno;
            return errmsg(err, errlen, rc, "cannot read %s: %s", f->path, strerror(-rc));
        }
        if (n == 0)
            return errmsg(err, errlen, -EIO, "%s is truncated (unexpected end of file at 0x%"
                        PRIx64 ")", f->path, off);
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static int no_fit(const struct guest_mem *mem, const char *what, uint64_t addr, uint64_t len,
                  const char *path, char *err, size_t errlen)
{
    return errmsg(err, errlen, -E2BIG, "%s 0x%" PRIx64 " (size 0x%" PRIx64 ") does not fit in guest "
                "RAM (0x%" PRIx64 "-0x%" PRIx64 "): %s", what, addr, len, mem->ram_base,
                mem->ram_base + mem->ram_size, path);
}

/* Copies file bytes [off, off+filesz) to guest `addr` and zeroes up to memsz. */
static int copy_to_ram(struct guest_mem *mem, const struct image_file *f, uint64_t addr,
                       uint64_t off, uint64_t filesz, uint64_t memsz, char *err, size_t errlen)
{
    uint8_t *dst = guest_mem_ram_ptr(mem, addr, memsz);
    if (!dst || filesz > memsz)  /* callers checked; keep the invariant local */
        return errmsg(err, errlen, -EINVAL, "internal: bad copy of %s to 0x%" PRIx64, f->path, addr);
    int rc = read_at(f, dst, filesz, off, err, errlen);
    guest_mem_mark_dirty(mem, addr, filesz);  /* even a partial read wrote */
    if (rc)
        return rc;
    /* Zero the rest without touching pages that are already zero: an image
     * may claim a huge bss (or image_size), and RAM is lazily backed. */
    return guest_mem_zero(mem, addr + filesz, memsz - filesz) ? errmsg(err, errlen, -EIO,
               "cannot clear guest RAM for %s", f->path) : 0;
}

static bool is_elf(const uint8_t *head, uint64_t size)
{
    return size >= SELFMAG && memcmp(head, ELFMAG, SELFMAG) == 0;
}

static bool is_linux_image(const uint8_t *head, uint64_t size)
{
    if (size < IMAGE_HDR_SIZE)
        return false;
    return memcmp(head + IMAGE_OFF_MAGIC2, image_magic2, sizeof(image_magic2)) == 0 ||
           memcmp(head + IMAGE_OFF_MAGIC, image_magic, sizeof(image_magic)) == 0;
}

static const char *elf_machine_name(unsigned m)
{
    switch (m) {
    case EM_RISCV:   return "RISC-V";
    case EM_X86_64:  return "x86-64";
    case EM_386:     return "i386";
    case EM_AARCH64: return "AArch64";
    case EM_ARM:     return "ARM";
    case EM_PPC64:   return "PowerPC64";
    case EM_S390:    return "s390";
    default:         return "unknown machine";
    }
}

static int check_elf_header(const struct image_file *f, const Elf64_Ehdr *eh,
                            char *err, size_t errlen)
{
    const unsigned char *id = eh->e_ident;
    if (id[EI_CLASS] != ELFCLASS64 || id[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_RISCV)
        return errmsg(err, errlen, -ENOEXEC, "not a RISC-V 64-bit little-endian ELF (class %u, "
                    "data %u, machine %u = %s): %s", id[EI_CLASS], id[EI_DATA], eh->e_machine,
                    elf_machine_name(eh->e_machine), f->path);
    if (id[EI_VERSION] != EV_CURRENT)
        return errmsg(err, errlen, -ENOEXEC, "unsupported ELF identification version "
                      "(e_ident[EI_VERSION] = %u, expected %u): %s", id[EI_VERSION], EV_CURRENT, f->path);
    if (eh->e_version != EV_CURRENT)
        return errmsg(err, errlen, -ENOEXEC, "unsupported ELF version (e_version = %u, expected %u): %s",
                      eh->e_version, EV_CURRENT, f->path);
    if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
        return errmsg(err, errlen, -ENOEXEC, "ELF is not an executable (e_type %u): %s",
                    eh->e_type, f->path);
    if (eh->e_phnum == 0)
        return errmsg(err, errlen, -ENOEXEC, "ELF has no program headers: %s", f->path);
    if (eh->e_phentsize != sizeof(Elf64_Phdr))
        return errmsg(err, errlen, -ENOEXEC, "ELF program header size %u is not %zu: %s",
                    eh->e_phentsize, sizeof(Elf64_Phdr), f->path);
    if (eh->e_phnum > MAX_PHNUM)
        return errmsg(err, errlen, -ENOEXEC, "ELF has %u program headers (max %u): %s",
                    eh->e_phnum, MAX_PHNUM, f->path);
    if (!in_file(f->size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
        return errmsg(err, errlen, -ENOEXEC, "ELF program headers at 0x%" PRIx64 " lie outside "
                    "the file: %s", eh->e_phoff, f->path);
    return 0;
}

/* Loads the PT_LOAD segments of an ELF whose header is already checked. */
static int load_elf_segments(struct guest_mem *mem, const struct image_file *f,
                             const Elf64_Ehdr *eh, const char *what,
                             struct loaded_image *out, char *err, size_t errlen)
{
    char label[64];
    snprintf(label, sizeof(label), "%s segment", what);

    size_t n = eh->e_phnum;
    Elf64_Phdr *ph = calloc(n, sizeof(*ph));
    if (!ph)
        return errmsg(err, errlen, -ENOMEM, "out of memory reading %s", f->path);
    int rc = read_at(f, ph, n * sizeof(*ph), eh->e_phoff, err, errlen);
    if (rc)
        goto out;

    /* Keep only the loadable, non-empty segments (compacted in place). */
    size_t nload = 0;
    for (size_t i = 0; i < n; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type != PT_LOAD || p->p_memsz == 0)
            continue;
        if (p->p_filesz > p->p_memsz) {
            rc = errmsg(err, errlen, -ENOEXEC, "%s 0x%" PRIx64 " has file size 0x%" PRIx64
                      " larger than its memory size 0x%" PRIx64 ": %s", label, p->p_paddr,
                      p->p_filesz, p->p_memsz, f->path);
            goto out;
        }
        if (!in_file(f->size, p->p_offset, p->p_filesz)) {
            rc = errmsg(err, errlen, -ENOEXEC, "%s 0x%" PRIx64 " (file bytes 0x%" PRIx64 "+0x%"
                      PRIx64 ") lies outside the file (size 0x%" PRIx64 "): %s", label,
                      p->p_paddr, p->p_offset, p->p_filesz, f->size, f->path);
            goto out;
        }
        if (!guest_mem_ram_ptr(mem, p->p_paddr, p->p_memsz)) {
            rc = no_fit(mem, label, p->p_paddr, p->p_memsz, f->path, err, errlen);
            goto out;
        }
        ph[nload++] = *p;
    }
    if (nload == 0) {
        rc = errmsg(err, errlen, -ENOEXEC, "ELF has no loadable segments: %s", f->path);
        goto out;
    }

    /* Overlapping segments mean a broken or hostile file: refuse them rather
     * than let the later one silently win. All ranges are in RAM, so the
     * ends do not overflow. */
    uint64_t start = UINT64_MAX, end = 0;
    for (size_t i = 0; i < nload; i++) {
        uint64_t a = ph[i].p_paddr, ae = a + ph[i].p_memsz;
        for (size_t j = i + 1; j < nload; j++) {
            uint64_t b = ph[j].p_paddr, be = b + ph[j].p_memsz;
            if (a < be && b < ae) {
                rc = errmsg(err, errlen, -ENOEXEC, "%ss 0x%" PRIx64 "-0x%" PRIx64 " and 0x%" PRIx64
                          "-0x%" PRIx64 " overlap: %s", label, a, ae, b, be, f->path);
                goto out;
            }
        }
        if (a < start)
            start = a;
        if (ae > end)
            end = ae;
    }
    if (eh->e_entry < start || eh->e_entry >= end) {
        rc = errmsg(err, errlen, -ENOEXEC, "ELF entry point 0x%" PRIx64 " is outside the loaded "
                  "image 0x%" PRIx64 "-0x%" PRIx64 ": %s", eh->e_entry, start, end, f->path);
        goto out;
    }

    for (size_t i = 0; i < nload; i++) {
        rc = copy_to_ram(mem, f, ph[i].p_paddr, ph[i].p_offset, ph[i].p_filesz,
                         ph[i].p_memsz, err, errlen);
        if (rc)
            goto out;
    }
    *out = (struct loaded_image){ .entry = eh->e_entry, .start = start, .end = end };
    rc = 0;
out:
    free(ph);
    return rc;
}

/* Finds `tohost` / `fromhost` in .symtab. A file without section headers
 * or without .symtab simply has no symbols; a malformed table is an error. */
static int find_htif_symbols(const struct image_file *f, const Elf64_Ehdr *eh,
                             uint64_t *tohost, uint64_t *fromhost, char *err, size_t errlen)
{
    *tohost = 0;
    *fromhost = 0;
    if (eh->e_shoff == 0 || eh->e_shnum == 0)
        return 0;
    if (eh->e_shentsize != sizeof(Elf64_Shdr))
        return errmsg(err, errlen, -ENOEXEC, "ELF section header size %u is not %zu: %s",
                    eh->e_shentsize, sizeof(Elf64_Shdr), f->path);
    size_t shnum = eh->e_shnum;
    if (!in_file(f->size, eh->e_shoff, (uint64_t)shnum * sizeof(Elf64_Shdr)))
        return errmsg(err, errlen, -ENOEXEC, "ELF section headers at 0x%" PRIx64 " lie outside "
                    "the file: %s", eh->e_shoff, f->path);

    Elf64_Shdr *sh = calloc(shnum, sizeof(*sh));
    Elf64_Sym *syms = NULL;
    char *strs = NULL;
    int rc = -ENOMEM;
    if (!sh) {
        errmsg(err, errlen, rc, "out of memory reading %s", f->path);
        goto out;
    }
    rc = read_at(f, sh, shnum * sizeof(*sh), eh->e_shoff, err, errlen);
    if (rc)
        goto out;

    const Elf64_Shdr *symtab = NULL;
    for (size_t i = 0; i < shnum && !symtab; i++)
        if (sh[i].sh_type == SHT_SYMTAB)
            symtab = &sh[i];
    if (!symtab) {
        rc = 0;
        goto out;
    }
    rc = -ENOEXEC;
    if (symtab->sh_link >= shnum || sh[symtab->sh_link].sh_type != SHT_STRTAB) {
        errmsg(err, errlen, rc, "ELF .symtab has no string table: %s", f->path);
        goto out;
    }
    const Elf64_Shdr *strtab = &sh[symtab->sh_link];
    if (symtab->sh_entsize != sizeof(Elf64_Sym) || symtab->sh_size % sizeof(Elf64_Sym) ||
        symtab->sh_size > MAX_SYMTAB || strtab->sh_size > MAX_SYMTAB ||
        !in_file(f->size, symtab->sh_offset, symtab->sh_size) ||
        !in_file(f->size, strtab->sh_offset, strtab->sh_size)) {
        errmsg(err, errlen, rc, "ELF symbol table is malformed: %s", f->path);
        goto out;
    }
    size_t nsym = symtab->sh_size / sizeof(Elf64_Sym);
    size_t strsize = strtab->sh_size;
    syms = malloc(nsym ? nsym * sizeof(*syms) : 1);
    strs = malloc(strsize ? strsize : 1);
    if (!syms || !strs) {
        rc = errmsg(err, errlen, -ENOMEM, "out of memory reading symbols of %s", f->path);
        goto out;
    }
    rc = read_at(f, syms, nsym * sizeof(*syms), symtab->sh_offset, err, errlen);
    if (!rc)
        rc = read_at(f, strs, strsize, strtab->sh_offset, err, errlen);
    if (rc)
        goto out;

    static const char name_to[] = "tohost", name_from[] = "fromhost";
    for (size_t i = 0; i < nsym; i++) {
        const Elf64_Sym *s = &syms[i];
        if (s->st_shndx == SHN_UNDEF || s->st_name >= strsize)
            continue;
        const char *name = strs + s->st_name;
        size_t room = strsize - s->st_name;  /* compare including the NUL, in bounds */
        if (!*tohost && room >= sizeof(name_to) && !memcmp(name, name_to, sizeof(name_to)))
            *tohost = s->st_value;
        else if (!*fromhost && room >= sizeof(name_from) &&
                 !memcmp(name, name_from, sizeof(name_from)))
            *fromhost = s->st_value;
    }
    rc = 0;
out:
    free(strs);
    free(syms);
    free(sh);
    return rc;
}

/* The monitor polls and writes the HTIF words as aligned 64-bit RAM words:
 * a symbol anywhere else would be silently ignored, so it is an error. */
static int check_htif_word(const struct guest_mem *mem, const char *name, uint64_t addr,
                           const struct image_file *f, char *err, size_t errlen)
{
    if (!addr)
        return 0;
    if ((addr & 7) || !guest_mem_ram_ptr(mem, addr, 8))
        return errmsg(err, errlen, -ENOEXEC, "'%s' symbol at 0x%" PRIx64 " is not an aligned "
                      "64-bit word in guest RAM (0x%" PRIx64 "-0x%" PRIx64 "): %s", name, addr,
                      mem->ram_base, mem->ram_base + mem->ram_size, f->path);
    return 0;
}

/* Reads the first bytes of the file (up to the Image header size). */
static int read_head(const struct image_file *f, uint8_t head[IMAGE_HDR_SIZE],
                     char *err, size_t errlen)
{
    memset(head, 0, IMAGE_HDR_SIZE);
    uint64_t n = f->size < IMAGE_HDR_SIZE ? f->size : IMAGE_HDR_SIZE;
    return read_at(f, head, n, 0, err, errlen);
}

static int load_elf(struct guest_mem *mem, const struct image_file *f, const char *what,
                    struct loaded_image *out, Elf64_Ehdr *eh, char *err, size_t errlen)
{
    if (f->size < sizeof(*eh))
        return errmsg(err, errlen, -ENOEXEC, "truncated ELF header (%" PRIu64 " bytes): %s",
                    f->size, f->path);
    int rc = read_at(f, eh, sizeof(*eh), 0, err, errlen);
    if (!rc)
        rc = check_elf_header(f, eh, err, errlen);
    if (!rc)
        rc = load_elf_segments(mem, f, eh, what, out, err, errlen);
    return rc;
}

static int load_linux_image(struct guest_mem *mem, const struct image_file *f,
                            const uint8_t *head, uint64_t image_load_addr,
                            struct loaded_image *out, char *err, size_t errlen)
{
    /* A header and nothing after it would "boot" whatever RAM holds. */
    if (f->size <= IMAGE_HDR_SIZE)
        return errmsg(err, errlen, -ENOEXEC, "RISC-V Image has a header but no code (%" PRIu64
                      " bytes): %s", f->size, f->path);
    uint64_t text_offset = le64(head + IMAGE_OFF_TEXT_OFFSET);
    uint64_t image_size = le64(head + IMAGE_OFF_IMAGE_SIZE);
    uint64_t load;

    if (image_load_addr) {
        if (image_load_addr & (LOADER_KERNEL_ALIGN - 1))
            return errmsg(err, errlen, -EINVAL, "kernel load address 0x%" PRIx64 " is not 2 MiB "
                        "aligned: %s", image_load_addr, f->path);
        load = image_load_addr;
    } else {
        uint64_t off = text_offset ? text_offset : LOADER_KERNEL_ALIGN;
        if (off >= mem->ram_size)
            return no_fit(mem, "kernel Image at RAM offset", off, image_size, f->path, err, errlen);
        load = mem->ram_base + off;
    }
    uint64_t extent = image_size > f->size ? image_size : f->size;
    if (!guest_mem_ram_ptr(mem, load, extent))
        return no_fit(mem, "kernel Image at", load, extent, f->path, err, errlen);
    int rc = copy_to_ram(mem, f, load, 0, f->size, extent, err, errlen);
    if (rc)
        return rc;
    *out = (struct loaded_image){ .entry = load, .start = load, .end = load + extent };
    return 0;
}

int loader_load_kernel(struct guest_mem *mem, const char *path, uint64_t image_load_addr,
                       struct loaded_image *out, char *err, size_t errlen)
{
    struct image_file f;
    uint8_t head[IMAGE_HDR_SIZE];
    int rc = open_image(path, &f, err, errlen);
    if (rc)
        return rc;
    rc = read_head(&f, head, err, errlen);
    if (rc)
        goto out;
    if (is_elf(head, f.size)) {
        Elf64_Ehdr eh;
        rc = load_elf(mem, &f, "kernel", out, &eh, err, errlen);
    } else if (is_linux_image(head, f.size)) {
        rc = load_linux_image(mem, &f, head, image_load_addr, out, err, errlen);
    } else {
        rc = errmsg(err, errlen, -ENOEXEC, "not a RISC-V ELF or Image: %s", path);
    }
out:
    close_image(&f);
    return rc;
}

static int load_flat(struct guest_mem *mem, const struct image_file *f, uint64_t addr,
                     const char *what, struct loaded_image *out, char *err, size_t errlen)
{
    if (f->size == 0)
        return errmsg(err, errlen, -EINVAL, "%s file is empty: %s", what, f->path);
    if (!guest_mem_ram_ptr(mem, addr, f->size))
        return no_fit(mem, what, addr, f->size, f->path, err, errlen);
    int rc = copy_to_ram(mem, f, addr, 0, f->size, f->size, err, errlen);
    if (rc)
        return rc;
    *out = (struct loaded_image){ .entry = addr, .start = addr, .end = addr + f->size };
    return 0;
}

int loader_load_raw(struct guest_mem *mem, const char *path, uint64_t addr,
                    struct loaded_image *out, char *err, size_t errlen)
{
    struct image_file f;
    int rc = open_image(path, &f, err, errlen);
    if (rc)
        return rc;
    rc = load_flat(mem, &f, addr, "image", out, err, errlen);
    close_image(&f);
    return rc;
}

int loader_load_firmware(struct guest_mem *mem, const char *path, uint64_t flat_addr,
                         struct loaded_image *out, uint64_t *tohost, uint64_t *fromhost,
                         char *err, size_t errlen)
{
    struct image_file f;
    uint8_t head[IMAGE_HDR_SIZE];
    uint64_t to = 0, from = 0;
    int rc = open_image(path, &f, err, errlen);
    if (rc)
        return rc;
    rc = read_head(&f, head, err, errlen);
    if (rc)
        goto out;
    if (is_elf(head, f.size)) {
        Elf64_Ehdr eh;
        rc = load_elf(mem, &f, "firmware", out, &eh, err, errlen);
        if (!rc && (tohost || fromhost))
            rc = find_htif_symbols(&f, &eh, &to, &from, err, errlen);
        if (!rc)
            rc = check_htif_word(mem, "tohost", to, &f, err, errlen);
        if (!rc)
            rc = check_htif_word(mem, "fromhost", from, &f, err, errlen);
    } else {
        rc = load_flat(mem, &f, flat_addr, "firmware", out, err, errlen);
    }
    if (!rc) {
        if (tohost)
            *tohost = to;
        if (fromhost)
            *fromhost = from;
    }
out:
    close_image(&f);
    return rc;
}
