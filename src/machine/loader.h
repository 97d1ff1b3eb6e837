/* Loading guest images into guest RAM: the kernel (RISC-V ELF or flat Linux
 * `Image`), raw blobs (initrd, flat firmware) and --bios firmware.
 *
 * Every function reads the file with pread() after fstat(), bounds-checks
 * every header field against the file size and the guest RAM before copying,
 * and copies straight into guest RAM (no second copy of a 30 MiB kernel).
 * On failure it returns -errno (-ENOEXEC: not a usable image, -E2BIG: does not
 * fit in RAM, -EINVAL: bad argument, -EIO: file shorter than its headers say,
 * or the open()/read() errno) and writes a one-line message naming the file
 * into `err` (may be NULL when errlen is 0). After a failure guest RAM may
 * hold part of the image.
 *
 * Threads: called while the machine is built, before any hart runs; no
 * locking. Functions are reentrant (no global state). */
#ifndef NIMBUS_MACHINE_LOADER_H
#define NIMBUS_MACHINE_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;

/* RV64 Linux needs its physical load address aligned to 2 MiB. */
#define LOADER_KERNEL_ALIGN 0x200000ull

struct loaded_image {
    uint64_t entry;  /* guest-physical address to jump to */
    uint64_t start;  /* guest-physical extent [start, end) the image occupies, */
    uint64_t end;    /* including zero-filled bss / the Image's image_size */
};

/* Kernel: a RISC-V 64-bit little-endian ELF (ET_EXEC or ET_DYN; PT_LOAD
 * segments are loaded at p_paddr, bss zero-filled, entry = e_entry) or a flat
 * RISC-V Linux `Image` (header per Documentation/arch/riscv/boot-image-header.rst,
 * recognised by "RSC\x05" at 0x38 or "RISCV\0\0\0" at 0x30; the EFI "MZ" stub
 * that Debian's vmlinux-*-riscv64 carries at the front changes nothing).
 *
 * A flat Image goes to `image_load_addr` when it is non-zero (must be 2 MiB
 * aligned), else to ram_base + text_offset, or ram_base + 2 MiB when the header's
 * text_offset is 0. Its extent is [load, load + max(image_size, file size)); the
 * part past the file is zeroed; entry = load. `image_load_addr` is ignored
 * for an ELF. Anything else fails with "not a RISC-V ELF or Image: PATH". */
int loader_load_kernel(struct guest_mem *mem, const char *path, uint64_t image_load_addr,
                       struct loaded_image *out, char *err, size_t errlen);

/* Raw file (initrd, flat firmware .bin) copied to guest-physical `addr`;
 * extent [addr, addr + file size), entry = addr. An empty file is an error. */
int loader_load_raw(struct guest_mem *mem, const char *path, uint64_t addr,
                    struct loaded_image *out, char *err, size_t errlen);

/* Firmware given by --bios: a RISC-V 64-bit ELF (loaded at its physical
 * addresses, entry = e_entry) or, when the file does not start with the ELF
 * magic, a flat binary loaded at `flat_addr` (entry = flat_addr). For an ELF
 * the symbols `tohost` and `fromhost` are looked up in .symtab (HTIF
 * convention of bare-metal test programs): *tohost / *fromhost get their
 * addresses, or 0 when absent, stripped, or the image is flat. Either pointer
 * may be NULL. A malformed section or symbol table is an error. */
int loader_load_firmware(struct guest_mem *mem, const char *path, uint64_t flat_addr,
                         struct loaded_image *out, uint64_t *tohost, uint64_t *fromhost,
                         char *err, size_t errlen);

#endif
