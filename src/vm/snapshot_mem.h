/* Guest RAM in a snapshot, apart from the state sections (DESIGN.md
 * "State"). Two forms:
 *
 *  - "memory": RAM as it is, page N at offset N * 4 KiB, the file exactly
 *    RAM-sized; all-zero pages are not written, so they are holes in a
 *    sparse file. A restore can map it privately and load pages on first
 *    touch (guest_mem_map_file), or read it eagerly, skipping the holes.
 *  - "memory.zst": RAM in chunks of SNAPSHOT_MEM_CHUNK bytes, each an
 *    independent zstd frame with its content checksum, or nothing for an
 *    all-zero chunk. Layout (little-endian):
 *      "NIMBUSMZ", u32 version (1), u32 chunk size, u64 RAM size,
 *      u64 number of chunks, then per chunk u64 file offset, u32
 *      compressed size (0: all zero), u32 reserved (0); then the frames.
 *    Restored eagerly (a compressed page can't be mapped).
 *
 * `pages`, when not NULL, is a bitmap of the pages to write (a diff
 * snapshot: only the pages dirtied since the last one; a dirty page that is
 * all zero is written too, as zeros, so the diff says it changed). */
#ifndef NIMBUS_VM_SNAPSHOT_MEM_H
#define NIMBUS_VM_SNAPSHOT_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define SNAPSHOT_MEM_CHUNK (1u << 20)

/* Writes RAM to `fd` (an empty regular file) in the sparse form. Returns 0
 * or -errno; *written gets the bytes of data written, *pages the pages. */
int snapshot_mem_write_sparse(const struct guest_mem *mem, const uint64_t *pages, int fd,
                              uint64_t *written, uint64_t *npages);
/* Writes RAM to `fd` in the compressed form (zstd `level`). */
int snapshot_mem_write_zstd(const struct guest_mem *mem, int fd, int level, uint64_t *written,
                            uint64_t *npages);

/* Checks that `fd` is a regular file of exactly RAM's size, as a sparse
 * memory file (or a diff's) must be; `what` names it in the message.
 * Returns 0, or -errno with a message (-EINVAL: another size). */
int snapshot_mem_check_file(const struct guest_mem *mem, int fd, const char *what, char *err,
                            size_t errlen);

/* Reads a sparse memory file, checked with snapshot_mem_check_file, into
 * RAM (which must read as zero: fresh), skipping its holes. Returns 0, or
 * -errno with a message. */
int snapshot_mem_read_sparse(struct guest_mem *mem, int fd, char *err, size_t errlen);
/* Reads a compressed memory file into fresh RAM, checking every field and
 * frame. Returns 0, or -errno with a message (-EBADMSG: damaged). */
int snapshot_mem_read_zstd(struct guest_mem *mem, int fd, char *err, size_t errlen);

#endif
