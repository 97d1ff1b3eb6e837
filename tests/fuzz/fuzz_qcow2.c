/* Fuzz target for the qcow2 backend: the input is an image file. It is
 * opened read-write from a memfd (so the fuzzer's bytes are never a real
 * file), then read, written, zeroed, discarded and closed: header
 * validation, the L1/L2 walk, refcount allocation and decompression all see
 * hostile metadata. chain_depth starts at the limit, so a backing file name
 * is parsed but never opened. Every op may fail; none may crash or trip a
 * sanitizer.
 *
 * Build (the fuzz infrastructure does this for every tests/fuzz/fuzz_*.c):
 *   clang -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *       tests/fuzz/fuzz_qcow2.c src/block/...c -lz -lzstd -lpthread
 * Seeds: tests/fuzz/corpus/qcow2/ (tests/block/make_qcow2_seeds.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "block/qcow2.h"

static void io(struct block_backend *b, uint64_t off, size_t len, bool write, uint8_t *buf)
{
    if (off >= b->size)
        return;
    if (len > b->size - off)
        len = (size_t)(b->size - off);
    struct iovec v[2] = { { buf, len / 2 }, { buf + len / 2, len - len / 2 } };
    if (write)
        b->ops->pwritev(b, v, 2, off);
    else
        b->ops->preadv(b, v, 2, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[1 << 17];
    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    char path[64], err[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct block_options o = { .format = BLOCK_FORMAT_QCOW2, .readonly = size & 1,
                               .chain_depth = QCOW2_MAX_CHAIN };
    struct block_backend *b = NULL;
    if (qcow2_open(path, &o, &b, err, sizeof(err)) == 0) {
        /* Offsets from the input's tail, so the fuzzer steers them. */
        uint64_t k = 0;
        for (size_t i = 0; i < 8 && i < size; i++)
            k = k << 8 | data[size - 1 - i];
        uint64_t mid = b->size ? k % b->size : 0;
        memset(buf, 0xa5, sizeof(buf));
        io(b, 0, 65536, false, buf);
        io(b, mid, 70000, false, buf);
        io(b, mid & ~511ull, 4096, true, buf);
        io(b, 1000, 3000, true, buf);
        io(b, b->size > 8192 ? b->size - 8192 : 0, 8192, true, buf);
        b->ops->write_zeroes(b, mid / 2, 131072 < b->size - mid / 2 ? 131072 : b->size - mid / 2, k & 2);
        b->ops->discard(b, mid / 4, 65536 < b->size - mid / 4 ? 65536 : b->size - mid / 4);
        io(b, 0, sizeof(buf), false, buf);
        io(b, mid, 65536, false, buf);
        b->ops->flush(b);
        block_close(b);
    }
    close(fd);
    return 0;
}
