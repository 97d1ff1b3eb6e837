/* Guest RAM in a snapshot: sparse and zstd-compressed memory files. See
 * snapshot_mem.h. */
#include "vm/snapshot_mem.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "base/errmsg.h"

#define ZST_MAGIC       "NIMBUSMZ"
#define ZST_VERSION     1u
#define ZST_HEADER_SIZE 32u
#define ZST_INDEX_ENTRY 16u

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i += 4)
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
            return false;
    return true;
}

static bool range_is_zero(const uint8_t *p, size_t len)
{
    for (size_t off = 0; off < len; off += GUEST_PAGE_SIZE)
        if (!page_is_zero(p + off))
            return false;
    return true;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;   /* EOF inside: the file shrank */
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

static bool page_wanted(const uint64_t *pages, uint64_t pfn)
{
    return !pages || (pages[pfn / 64] >> (pfn % 64) & 1);
}

/* The pages that may be non-zero (guest_mem_backed_pages), or NULL when out
 * of memory. */
static uint64_t *backed_pages(const struct guest_mem *mem)
{
    uint64_t words = (mem->ram_size / GUEST_PAGE_SIZE + 63) / 64;
    uint64_t *bitmap = calloc(words, 8);
    if (bitmap && guest_mem_backed_pages(mem, bitmap))
        memset(bitmap, 0xff, words * 8);
    return bitmap;
}

int snapshot_mem_write_sparse(const struct guest_mem *mem, const uint64_t *pages, int fd,
                              uint64_t *written, uint64_t *npages)
{
    uint64_t total = mem->ram_size / GUEST_PAGE_SIZE;
    *written = *npages = 0;
    if (ftruncate(fd, (off_t)mem->ram_size))
        return -errno;
    uint64_t *backed = backed_pages(mem);
    if (!backed)
        return -ENOMEM;
    int r = 0;
    /* Runs of pages to write go out in one pwrite each. */
    uint64_t run = 0, run_len = 0;
    for (uint64_t pfn = 0; pfn <= total; pfn++) {
        bool take = false;
        if (pfn < total && page_wanted(pages, pfn))
            take = pages || (page_wanted(backed, pfn) &&
                             !page_is_zero(mem->ram + pfn * GUEST_PAGE_SIZE));
        if (take && run_len < 1024) {
            if (!run_len)
                run = pfn;
            run_len++;
            continue;
        }
        if (run_len) {
            r = pwrite_all(fd, mem->ram + run * GUEST_PAGE_SIZE, run_len * GUEST_PAGE_SIZE,
                           run * GUEST_PAGE_SIZE);
            if (r)
                break;
            *written += run_len * GUEST_PAGE_SIZE;
            *npages += run_len;
            run_len = 0;
        }
        if (take) {
            run = pfn;
            run_len = 1;
        }
    }
    free(backed);
    return r;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

int snapshot_mem_write_zstd(const struct guest_mem *mem, int fd, int level, uint64_t *written,
                            uint64_t *npages)
{
    uint64_t nchunks = (mem->ram_size + SNAPSHOT_MEM_CHUNK - 1) / SNAPSHOT_MEM_CHUNK;
    size_t bound = ZSTD_compressBound(SNAPSHOT_MEM_CHUNK);
    uint8_t *index = calloc(nchunks, ZST_INDEX_ENTRY);
    uint8_t *out = malloc(bound);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    uint64_t *backed = backed_pages(mem);
    int r = 0;
    *written = *npages = 0;
    if (!index || !out || !cctx || !backed) {
        r = -ENOMEM;
        goto done;
    }
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    uint64_t off = ZST_HEADER_SIZE + nchunks * ZST_INDEX_ENTRY;
    for (uint64_t c = 0; c < nchunks && !r; c++) {
        uint64_t start = c * SNAPSHOT_MEM_CHUNK;
        size_t len = mem->ram_size - start < SNAPSHOT_MEM_CHUNK ? (size_t)(mem->ram_size - start)
                                                                : SNAPSHOT_MEM_CHUNK;
        bool any = false;
        for (uint64_t pfn = start / GUEST_PAGE_SIZE; pfn < (start + len) / GUEST_PAGE_SIZE; pfn++)
            any = any || page_wanted(backed, pfn);
        if (!any || range_is_zero(mem->ram + start, len))
            continue;
        size_t n = ZSTD_compress2(cctx, out, bound, mem->ram + start, len);
        if (ZSTD_isError(n)) {
            r = -EIO;
            break;
        }
        put_le64(index + c * ZST_INDEX_ENTRY, off);
        put_le32(index + c * ZST_INDEX_ENTRY + 8, (uint32_t)n);
        r = pwrite_all(fd, out, n, off);
        off += n;
        *written += n;
        *npages += len / GUEST_PAGE_SIZE;
    }
    if (!r) {
        uint8_t hdr[ZST_HEADER_SIZE] = { 0 };
        memcpy(hdr, ZST_MAGIC, 8);
        put_le32(hdr + 8, ZST_VERSION);
        put_le32(hdr + 12, SNAPSHOT_MEM_CHUNK);
        put_le64(hdr + 16, mem->ram_size);
        put_le64(hdr + 24, nchunks);
        r = pwrite_all(fd, hdr, sizeof(hdr), 0);
        if (!r)
            r = pwrite_all(fd, index, nchunks * ZST_INDEX_ENTRY, ZST_HEADER_SIZE);
        *written += ZST_HEADER_SIZE + nchunks * ZST_INDEX_ENTRY;
    }
done:
    free(backed);
    ZSTD_freeCCtx(cctx);
    free(out);
    free(index);
    return r;
}

int snapshot_mem_check_file(const struct guest_mem *mem, int fd, const char *what, char *err,
                            size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st))
        return errmsg(err, errlen, -errno, "%s: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != mem->ram_size)
        return errmsg(err, errlen, -EINVAL, "%s: %llu bytes, but the VM has %llu MiB of RAM",
                      what, (unsigned long long)st.st_size,
                      (unsigned long long)(mem->ram_size >> 20));
    return 0;
}

int snapshot_mem_read_sparse(struct guest_mem *mem, int fd, char *err, size_t errlen)
{
    /* Only the data extents: holes are zero, and fresh RAM is too. */
    off_t pos = 0, end = (off_t)mem->ram_size;
    while (pos < end) {
        off_t data = lseek(fd, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break;
            return errmsg(err, errlen, -errno, "memory file: %s", strerror(errno));
        }
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0 || hole > end)
            hole = end;
        int r = pread_all(fd, mem->ram + data, (size_t)(hole - data), (uint64_t)data);
        if (r)
            return errmsg(err, errlen, r, "reading the memory file: %s", strerror(-r));
        pos = hole;
    }
    return 0;
}

int snapshot_mem_read_zstd(struct guest_mem *mem, int fd, char *err, size_t errlen)
{
    struct stat st;
    uint8_t hdr[ZST_HEADER_SIZE];
    if (fstat(fd, &st))
        return errmsg(err, errlen, -errno, "memory file: %s", strerror(errno));
    if (pread_all(fd, hdr, sizeof(hdr), 0) || memcmp(hdr, ZST_MAGIC, 8))
        return errmsg(err, errlen, -EBADMSG, "memory.zst: not a Nimbus compressed memory file");
    uint32_t version = get_le32(hdr + 8), chunk = get_le32(hdr + 12);
    uint64_t ram = get_le64(hdr + 16), nchunks = get_le64(hdr + 24);
    if (version != ZST_VERSION)
        return errmsg(err, errlen, -ENOTSUP, "memory.zst: version %u (this build reads %u)",
                      version, ZST_VERSION);
    if (ram != mem->ram_size)
        return errmsg(err, errlen, -EINVAL, "memory.zst: holds %llu bytes of RAM, but the VM has "
                      "%llu MiB", (unsigned long long)ram, (unsigned long long)(mem->ram_size >> 20));
    if (chunk != SNAPSHOT_MEM_CHUNK || nchunks != (ram + chunk - 1) / chunk)
        return errmsg(err, errlen, -EBADMSG, "memory.zst: chunk size %u or count %llu is wrong",
                      chunk, (unsigned long long)nchunks);
    uint8_t *index = malloc(nchunks * ZST_INDEX_ENTRY);
    size_t bound = ZSTD_compressBound(SNAPSHOT_MEM_CHUNK);
    uint8_t *in = malloc(bound);
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    int r = 0;
    if (!index || !in || !dctx) {
        r = errmsg(err, errlen, -ENOMEM, "out of memory");
        goto done;
    }
    if (pread_all(fd, index, nchunks * ZST_INDEX_ENTRY, ZST_HEADER_SIZE)) {
        r = errmsg(err, errlen, -EBADMSG, "memory.zst: truncated index");
        goto done;
    }
    uint64_t data_start = ZST_HEADER_SIZE + nchunks * ZST_INDEX_ENTRY;
    for (uint64_t c = 0; c < nchunks && !r; c++) {
        const uint8_t *e = index + c * ZST_INDEX_ENTRY;
        uint64_t off = get_le64(e);
        uint32_t csize = get_le32(e + 8);
        uint64_t start = c * chunk;
        size_t len = ram - start < chunk ? (size_t)(ram - start) : chunk;
        if (!csize && !off && !get_le32(e + 12))
            continue;   /* all zero: fresh RAM is */
        if (!csize || csize > bound || get_le32(e + 12) || off < data_start ||
            off > (uint64_t)st.st_size || csize > (uint64_t)st.st_size - off) {
            r = errmsg(err, errlen, -EBADMSG, "memory.zst: chunk %llu's index entry is damaged",
                       (unsigned long long)c);
            break;
        }
        if (pread_all(fd, in, csize, off)) {
            r = errmsg(err, errlen, -EBADMSG, "memory.zst: chunk %llu is truncated",
                       (unsigned long long)c);
            break;
        }
        size_t n = ZSTD_decompressDCtx(dctx, mem->ram + start, len, in, csize);
        if (ZSTD_isError(n) || n != len)
            r = errmsg(err, errlen, -EBADMSG, "memory.zst: chunk %llu: %s", (unsigned long long)c,
                       ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size");
    }
done:
    ZSTD_freeDCtx(dctx);
    free(in);
    free(index);
    return r;
}
