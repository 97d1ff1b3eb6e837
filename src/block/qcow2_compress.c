/* Compressed qcow2 clusters (qcow2.txt "Compressed Clusters Descriptor"):
 * zlib as raw deflate with a 4 KiB window (compression type 0), or a zstd
 * frame (type 1). The stored data runs to a 512-byte sector boundary, so
 * trailing bytes after the stream are normal and ignored. */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2.h"

static int inflate_raw(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    if (inflateInit2(&s, -12) != Z_OK)
        return -ENOMEM;
    s.next_in = (Bytef *)in;
    s.avail_in = (uInt)inlen;
    s.next_out = out;
    s.avail_out = (uInt)outlen;
    int r = inflate(&s, Z_FINISH);
    /* Z_BUF_ERROR with a full output: the cluster is complete and only the
     * sector padding is left, as QEMU accepts too. */
    bool ok = (r == Z_STREAM_END || r == Z_BUF_ERROR) && s.avail_out == 0;
    inflateEnd(&s);
    return ok ? 0 : -EIO;
}

static int unzstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d)
        return -ENOMEM;
    ZSTD_inBuffer ib = { in, inlen, 0 };
    ZSTD_outBuffer ob = { out, outlen, 0 };
    int rc = -EIO;
    while (ob.pos < ob.size) {
        size_t r = ZSTD_decompressStream(d, &ob, &ib);
        if (ZSTD_isError(r))
            break;
        if (ob.pos == ob.size) {
            rc = 0;
            break;
        }
        /* No progress possible: input used up or the frame ended short. */
        if (ib.pos == ib.size || r == 0)
            break;
    }
    ZSTD_freeDCtx(d);
    return rc;
}

int qcow2_decompress(uint8_t type, const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
    if (type == 0)
        return inflate_raw(in, inlen, out, outlen);
    if (type == 1)
        return unzstd(in, inlen, out, outlen);
    return -EIO;
}
