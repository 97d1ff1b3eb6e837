/* Unit tests for the qcow2 backend, checked against QEMU's own tools: images
 * made by `qemu-img create/convert`, written and read through the backend,
 * then `qemu-img check` must find no corruption and no leaks and
 * `qemu-img convert -O raw` must give the expected bytes. Also backing
 * chains, compressed clusters, zero clusters, kill -9 in the middle of
 * writes, damaged images, read-only opens and concurrent writers.
 *
 * Linking: the backend opens backing files through block_open(), which lives
 * in block.c with the raw backend (another file of this layer). This file
 * carries weak, minimal stand-ins for block_open() and raw_open() so it
 * links without them; where block.c and raw.c are built in, their strong
 * definitions win and the tests exercise the real ones. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"

#include "check.h"

#undef CHECK
#define CHECK CHECK_MSG

/* ---- weak stand-ins for block.c / raw.c ---- */

struct traw {
    struct block_backend b;
    int fd;
};

static int traw_rw(struct block_backend *b, const struct iovec *iov, int cnt, uint64_t off, bool wr)
{
    struct traw *t = (struct traw *)b;
    uint64_t len = block_iov_length(iov, cnt);
    if (off > b->size || len > b->size - off)
        return -EINVAL;
    for (int i = 0; i < cnt; i++) {
        size_t done = 0;
        while (done < iov[i].iov_len) {
            ssize_t n = wr ? pwrite(t->fd, (char *)iov[i].iov_base + done, iov[i].iov_len - done, (off_t)off)
                           : pread(t->fd, (char *)iov[i].iov_base + done, iov[i].iov_len - done, (off_t)off);
            if (n < 0)
                return -errno;
            if (n == 0) {
                if (wr)
                    return -EIO;
                memset((char *)iov[i].iov_base + done, 0, iov[i].iov_len - done);
                n = (ssize_t)(iov[i].iov_len - done);
            }
            done += (size_t)n;
            off += (uint64_t)n;
        }
    }
    return 0;
}
static int traw_preadv(struct block_backend *b, const struct iovec *iov, int cnt, uint64_t off)
{
    return traw_rw(b, iov, cnt, off, false);
}
static int traw_pwritev(struct block_backend *b, const struct iovec *iov, int cnt, uint64_t off)
{
    return b->readonly ? -EROFS : traw_rw(b, iov, cnt, off, true);
}
static int traw_flush(struct block_backend *b)
{
    return fdatasync(((struct traw *)b)->fd) < 0 ? -errno : 0;
}
static int traw_discard(struct block_backend *b, uint64_t off, uint64_t len)
{
    (void)b, (void)off, (void)len;
    return 0;
}
static int traw_zero(struct block_backend *b, uint64_t off, uint64_t len, bool unmap)
{
    (void)unmap;
    static const char z[4096];
    while (len) {
        size_t n = len < sizeof(z) ? len : sizeof(z);
        struct iovec v = { (void *)z, n };
        int r = traw_pwritev(b, &v, 1, off);
        if (r < 0)
            return r;
        off += n;
        len -= n;
    }
    return 0;
}
static void traw_close(struct block_backend *b)
{
    close(((struct traw *)b)->fd);
    free(b);
}
static const struct block_ops traw_ops = {
    "raw", traw_preadv, traw_pwritev, traw_flush, traw_discard, traw_zero, traw_close, NULL,
};

__attribute__((weak)) int raw_open(const char *path, const struct block_options *opts, struct block_backend **out,
                                   char *err, size_t errlen)
{
    struct traw *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->fd = open(path, opts->readonly ? O_RDONLY : O_RDWR);
    if (t->fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        free(t);
        return -e;
    }
    struct stat st;
    fstat(t->fd, &st);
    t->b.ops = &traw_ops;
    t->b.size = (uint64_t)st.st_size;
    t->b.readonly = opts->readonly;
    snprintf(t->b.path, sizeof(t->b.path), "%s", path);
    *out = &t->b;
    return 0;
}

__attribute__((weak)) int block_open(const char *path, const struct block_options *opts, struct block_backend **out,
                                     char *err, size_t errlen)
{
    unsigned char m[4] = { 0 };
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    bool is_qcow2 = pread(fd, m, 4, 0) == 4 && !memcmp(m, "QFI\xfb", 4);
    close(fd);
    if (opts->format == BLOCK_FORMAT_RAW && is_qcow2) {
        snprintf(err, errlen, "%s: a qcow2 image opened as raw", path);
        return -EINVAL;
    }
    if (is_qcow2 || opts->format == BLOCK_FORMAT_QCOW2)
        return qcow2_open(path, opts, out, err, errlen);
    return raw_open(path, opts, out, err, errlen);
}

/* ---- helpers ---- */

static char tmpdir[64];
static char err[1024];

static const char *P(const char *name)
{
    static char buf[16][512];
    static int next;
    char *p = buf[next++ % 16];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Runs a shell command (quietly); returns its exit status. */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[2200];
    snprintf(full, sizeof(full), "( %s ) >%s/cmd.log 2>&1", cmd, tmpdir);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 24);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    fclose(f);
    return n == len ? 0 : -1;
}

static uint64_t file_hash(const char *path)
{
    size_t n;
    uint8_t *b = read_file(path, &n);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; b && i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    free(b);
    return h ^ n;
}

static struct block_backend *open_img(const char *path, bool ro)
{
    struct block_options o = { .format = BLOCK_FORMAT_QCOW2, .readonly = ro };
    struct block_backend *b = NULL;
    err[0] = 0;
    int r = qcow2_open(path, &o, &b, err, sizeof(err));
    CHECK(r == 0, "open %s: %d %s", path, r, err);
    return r == 0 ? b : NULL;
}

static int bwrite(struct block_backend *b, const void *buf, size_t len, uint64_t off)
{
    struct iovec v = { (void *)buf, len };
    return b->ops->pwritev(b, &v, 1, off);
}

static int bread(struct block_backend *b, void *buf, size_t len, uint64_t off)
{
    struct iovec v = { buf, len };
    return b->ops->preadv(b, &v, 1, off);
}

/* Reads the whole disk through the backend and compares it with `want`. */
static void check_content(struct block_backend *b, const uint8_t *want, uint64_t size, const char *what)
{
    uint8_t *got = malloc(size);
    int r = bread(b, got, size, 0);
    CHECK(r == 0, "%s: read back: %d", what, r);
    uint64_t i = 0;
    while (r == 0 && i < size && got[i] == want[i])
        i++;
    CHECK(r == 0 && i == size, "%s: content differs at byte %llu", what, (unsigned long long)i);
    free(got);
}

/* qemu-img check: 0 = clean; the caller says whether leaks (3) are fine. */
static int qcheck(const char *path)
{
    return sh("qemu-img check %s", path);
}

/* qemu-img convert -O raw equals `want`. */
static void check_converted(const char *img, const uint8_t *want, uint64_t size, const char *what)
{
    const char *raw = P("converted.raw");
    int st = sh("qemu-img convert -O raw %s %s", img, raw);
    CHECK(st == 0, "%s: qemu-img convert exit %d", what, st);
    size_t n = 0;
    uint8_t *got = read_file(raw, &n);
    CHECK(got && n == size, "%s: converted size %zu, want %llu", what, n, (unsigned long long)size);
    uint64_t i = 0;
    while (got && n == size && i < size && got[i] == want[i])
        i++;
    CHECK(got && i == size, "%s: converted content differs at byte %llu", what, (unsigned long long)i);
    free(got);
    unlink(raw);
}

static void write_and_track(struct block_backend *b, uint8_t *model, uint64_t off, size_t len, const char *what)
{
    uint8_t *buf = malloc(len);
    fill_random(buf, len);
    int r = bwrite(b, buf, len, off);
    CHECK(r == 0, "%s: write %zu at %llu: %d", what, len, (unsigned long long)off, r);
    if (r == 0)
        memcpy(model + off, buf, len);
    free(buf);
}

/* ---- tests ---- */

static void test_patterns(unsigned cluster_bits)
{
    char what[64];
    snprintf(what, sizeof(what), "patterns cb=%u", cluster_bits);
    uint64_t cs = 1ull << cluster_bits, size = (cs < (1u << 20) ? 8ull << 20 : 8 * cs) + 3 * 512;
    const char *img = P("pat.qcow2");
    CHECK(sh("qemu-img create -f qcow2 -o cluster_size=%llu %s %llu", (unsigned long long)cs, img,
             (unsigned long long)size) == 0, "%s: create", what);
    uint8_t *model = calloc(1, size);
    struct block_backend *b = open_img(img, false);
    if (!b)
        goto out;
    CHECK(b->size == size, "%s: size %llu", what, (unsigned long long)b->size);
    CHECK(!strcmp(b->ops->name, "qcow2"), "%s: name", what);
    write_and_track(b, model, 0, 4096, what);                     /* aligned */
    write_and_track(b, model, 1000, 5000, what);                  /* unaligned, overwrite */
    write_and_track(b, model, cs - 100, 300, what);               /* spans a cluster boundary */
    write_and_track(b, model, 3 * cs + 7, 2 * cs + 11, what);     /* spans several */
    write_and_track(b, model, size - 700, 700, what);             /* the end of the disk */
    write_and_track(b, model, size - 1, 1, what);
    write_and_track(b, model, (1ull << 20) + 512, 3u << 20, what); /* a long run */
    write_and_track(b, model, (1ull << 20) + 4097, 1234, what);   /* into allocated clusters */
    /* Several iovecs in one request. */
    uint8_t a[700], c[3000];
    fill_random(a, sizeof(a));
    fill_random(c, sizeof(c));
    struct iovec v[3] = { { a, sizeof(a) }, { c, 0 }, { c, sizeof(c) } };
    CHECK(b->ops->pwritev(b, v, 3, 6 * cs + 3) == 0, "%s: iovec write", what);
    memcpy(model + 6 * cs + 3, a, sizeof(a));
    memcpy(model + 6 * cs + 3 + sizeof(a), c, sizeof(c));
    uint8_t ra[700], rc[3000];
    struct iovec rv[2] = { { ra, sizeof(ra) }, { rc, sizeof(rc) } };
    CHECK(b->ops->preadv(b, rv, 2, 6 * cs + 3) == 0 && !memcmp(ra, a, sizeof(a)) && !memcmp(rc, c, sizeof(c)),
          "%s: iovec read", what);
    /* Past the end. */
    CHECK(bwrite(b, a, 2, size - 1) == -EINVAL, "%s: write past end", what);
    CHECK(bread(b, ra, 1, size) == -EINVAL, "%s: read past end", what);
    if (cluster_bits == 9) /* 512-byte clusters: enough data to grow the refcount table */
        for (uint64_t off = 0; off + (256u << 10) <= size; off += 256u << 10)
            write_and_track(b, model, off, 256u << 10, what);
    check_content(b, model, size, what);
    CHECK(b->ops->flush(b) == 0, "%s: flush", what);
    block_close(b);
    int st = qcheck(img);
    CHECK(st == 0, "%s: qemu-img check exit %d", what, st);
    check_converted(img, model, size, what);
    /* Reopen read-only: the same content. */
    b = open_img(img, true);
    if (b) {
        check_content(b, model, size, what);
        block_close(b);
    }
out:
    free(model);
    unlink(img);
}

static void expect_open_fails(const char *path, bool ro, const char *needle, const char *what);

/* Refcount widths other than QEMU's default 16 bits. */
static void test_refcount_bits(unsigned bits)
{
    char what[64];
    snprintf(what, sizeof(what), "refcount_bits=%u", bits);
    uint64_t size = 4ull << 20;
    const char *img = P("rc.qcow2");
    CHECK(sh("qemu-img create -f qcow2 -o cluster_size=4096,refcount_bits=%u %s %llu", bits, img,
             (unsigned long long)size) == 0, "%s: create", what);
    uint8_t *model = calloc(1, size);
    if (bits < 8) {
        expect_open_fails(img, false, "read-only", what);
        struct block_backend *b = open_img(img, true);
        if (b)
            check_content(b, model, size, what);
        block_close(b);
        goto out;
    }
    struct block_backend *b = open_img(img, false);
    if (!b)
        goto out;
    for (int i = 0; i < 40; i++)
        write_and_track(b, model, rnd() % (size - 70000), 1 + rnd() % 70000, what);
    CHECK(b->ops->discard(b, 65536, 65536) == 0, "%s: discard", what);
    memset(model + 65536, 0, 65536);
    check_content(b, model, size, what);
    block_close(b);
    int st = qcheck(img);
    CHECK(st == 0, "%s: qemu-img check exit %d", what, st);
    check_converted(img, model, size, what);
out:
    free(model);
    unlink(img);
}

static void test_backing(bool qcow2_base)
{
    const char *what = qcow2_base ? "backing (qcow2 base)" : "backing (raw base)";
    uint64_t size = 4ull << 20;
    uint8_t *model = malloc(size);
    fill_random(model, size);
    const char *raw = P("base.raw"), *base = qcow2_base ? P("base.qcow2") : raw;
    const char *ov1 = P("ov1.qcow2"), *ov2 = P("ov2.qcow2");
    CHECK(write_file(raw, model, size) == 0, "%s: base", what);
    if (qcow2_base)
        CHECK(sh("qemu-img convert -O qcow2 %s %s", raw, base) == 0, "%s: convert base", what);
    CHECK(sh("qemu-img create -f qcow2 -b %s -F %s %s", base, qcow2_base ? "qcow2" : "raw", ov1) == 0, "%s: ov1", what);
    /* The second overlay names its backing file relative to its directory. */
    CHECK(sh("cd %s && qemu-img create -f qcow2 -b ov1.qcow2 -F qcow2 ov2.qcow2", tmpdir) == 0, "%s: ov2", what);
    uint64_t hb = file_hash(base), h1 = file_hash(ov1);
    struct block_backend *b = open_img(ov2, false);
    if (!b)
        goto out;
    check_content(b, model, size, what);   /* reads fall through two levels */
    write_and_track(b, model, 1000, 100, what);           /* partial: COW from the base */
    write_and_track(b, model, 65536 * 3 - 10, 20, what);
    write_and_track(b, model, 200000, 300000, what);
    write_and_track(b, model, size - 10, 10, what);
    /* Zeroing and discard read zeros even over a backing file. */
    CHECK(b->ops->write_zeroes(b, 1u << 20, 200000, true) == 0, "%s: write_zeroes", what);
    memset(model + (1u << 20), 0, 200000);
    CHECK(b->ops->discard(b, 2u << 20, 65536 * 2) == 0, "%s: discard", what);
    memset(model + (2u << 20), 0, 65536 * 2);
    check_content(b, model, size, what);
    /* The block status through the chain: a cluster neither overlay has is
     * the base's data; zeroed ones read zeros over it. */
    uint64_t n = 0;
    CHECK(block_status(b, 5 * 65536, 65536, &n) == BLOCK_DATA && n == 65536,
          "%s: status through the chain: %llu", what, (unsigned long long)n);
    CHECK(block_status(b, 1u << 20, 3 * 65536, &n) == BLOCK_ZERO && n == 3 * 65536,
          "%s: status of zero clusters: %llu", what, (unsigned long long)n);
    block_close(b);
    CHECK(file_hash(base) == hb, "%s: base file changed", what);
    CHECK(file_hash(ov1) == h1, "%s: middle overlay changed", what);
    int st = qcheck(ov2);
    CHECK(st == 0, "%s: qemu-img check exit %d", what, st);
    check_converted(ov2, model, size, what);
out:
    free(model);
    unlink(raw);
    unlink(base);
    unlink(ov1);
    unlink(ov2);
}

static void expect_open_fails(const char *path, bool ro, const char *needle, const char *what)
{
    struct block_options o = { .format = BLOCK_FORMAT_QCOW2, .readonly = ro };
    struct block_backend *b = NULL;
    err[0] = 0;
    uint64_t h = file_hash(path);
    int r = qcow2_open(path, &o, &b, err, sizeof(err));
    CHECK(r < 0, "%s: open (%s) should fail", what, ro ? "ro" : "rw");
    CHECK(strstr(err, path) && (!needle || strstr(err, needle)) && !strchr(err, '\n'),
          "%s: message '%s' should name the file and say '%s'", what, err, needle ? needle : "");
    CHECK(file_hash(path) == h, "%s: a failed open changed the file", what);
    if (r == 0)
        block_close(b);
}

static void test_chain_errors(void)
{
    const char *a = P("loop_a.qcow2"), *bb = P("loop_b.qcow2"), *base = P("loop_base.raw");
    CHECK(sh("qemu-img create -f raw %s 1M", base) == 0, "loop: base");
    CHECK(sh("qemu-img create -f qcow2 -b %s -F raw %s", base, bb) == 0, "loop: b");
    CHECK(sh("qemu-img create -f qcow2 -b %s -F qcow2 %s", bb, a) == 0, "loop: a");
    CHECK(sh("qemu-img rebase -u -b %s -F qcow2 %s", a, bb) == 0, "loop: rebase b onto a");
    expect_open_fails(a, false, "loop", "backing loop");
    expect_open_fails(a, true, "loop", "backing loop");
    /* A loop seen from below the top (chain_depth > 0) is caught by depth. */
    struct block_options o = { .format = BLOCK_FORMAT_QCOW2, .readonly = true, .chain_depth = 1 };
    struct block_backend *b = NULL;
    CHECK(qcow2_open(a, &o, &b, err, sizeof(err)) < 0 && strstr(err, "deeper"), "loop by depth: '%s'", err);
    /* Self loop. */
    CHECK(sh("qemu-img rebase -u -b %s -F qcow2 %s", a, a) == 0, "self loop");
    expect_open_fails(a, true, "loop", "self loop");
    /* Missing backing file. */
    const char *ov = P("miss.qcow2"), *gone = P("gone.raw");
    CHECK(sh("qemu-img create -f raw %s 1M && qemu-img create -f qcow2 -b %s -F raw %s", gone, gone, ov) == 0,
          "missing: create");
    unlink(gone);
    expect_open_fails(ov, false, "gone.raw", "missing backing");
    /* An unknown backing format. */
    CHECK(sh("qemu-img create -f raw %s 1M && qemu-img rebase -u -b %s -F vmdk %s", gone, gone, ov) == 0,
          "fmt: rebase");
    expect_open_fails(ov, true, "vmdk", "backing format");
    /* Depth: 16 backing files below the top are fine, 17 are not. */
    CHECK(sh("cd %s && qemu-img create -f raw d0.img 1M && qemu-io -f raw -c 'write -P 0x77 0 512' d0.img && "
             "for i in $(seq 1 17); do qemu-img create -f qcow2 -b d$((i-1)).img -F $([ $i = 1 ] && echo raw || "
             "echo qcow2) d$i.img || exit 1; done", tmpdir) == 0, "depth: create");
    struct block_options top = { .format = BLOCK_FORMAT_QCOW2, .readonly = true };
    b = NULL;
    CHECK(qcow2_open(P("d16.img"), &top, &b, err, sizeof(err)) == 0, "depth 16: %s", err);
    if (b) {
        uint8_t x[512];
        CHECK(bread(b, x, sizeof(x), 0) == 0 && x[0] == 0x77 && x[511] == 0x77, "depth 16: read through");
        block_close(b);
    }
    expect_open_fails(P("d17.img"), true, "deeper than 16", "depth 17");
    sh("rm -f %s/d*.img", tmpdir);
    unlink(a);
    unlink(bb);
    unlink(base);
    unlink(ov);
    unlink(gone);
}

static void test_compressed(const char *ctype)
{
    char what[64];
    snprintf(what, sizeof(what), "compressed %s", ctype);
    uint64_t size = 3ull << 20;
    uint8_t *model = calloc(1, size);
    /* Compressible text, random (incompressible) stretches and zeros. */
    for (uint64_t i = 0; i < size; i++)
        model[i] = (uint8_t)("qcow2 compressed cluster test "[i % 30] + (i >> 16));
    fill_random(model + 500000, 100000);
    memset(model + (2u << 20), 0, 300000);
    const char *src = P("csrc.raw"), *img = P("c.qcow2");
    CHECK(write_file(src, model, size) == 0, "%s: src", what);
    CHECK(sh("qemu-img convert -c -O qcow2 -o compression_type=%s,cluster_size=4096 %s %s", ctype, src, img) == 0,
          "%s: convert", what);
    CHECK(sh("qemu-img info %s | grep -q 'compression type: %s'", img, ctype) == 0, "%s: type", what);
    struct block_backend *b = open_img(img, true);
    if (b) {
        check_content(b, model, size, what);
        block_close(b);
    }
    b = open_img(img, false);
    if (!b)
        goto out;
    write_and_track(b, model, 4096 * 5 + 100, 50, what);   /* into a compressed cluster */
    write_and_track(b, model, 4096 * 9, 4096 * 3, what);   /* over whole ones */
    CHECK(b->ops->discard(b, 4096 * 20, 4096) == 0, "%s: discard", what);
    memset(model + 4096 * 20, 0, 4096);
    CHECK(b->ops->write_zeroes(b, 4096 * 30 + 1, 4096 * 2, false) == 0, "%s: write_zeroes", what);
    memset(model + 4096 * 30 + 1, 0, 4096 * 2);
    check_content(b, model, size, what);
    block_close(b);
    int st = qcheck(img);
    CHECK(st == 0, "%s: qemu-img check exit %d", what, st);
    check_converted(img, model, size, what);
out:
    free(model);
    unlink(src);
    unlink(img);
}

static void test_zeroes(int version)
{
    char what[64];
    snprintf(what, sizeof(what), "zeroes v%d", version);
    uint64_t size = 2ull << 20, cs = 65536;
    const char *img = P("z.qcow2");
    CHECK(sh("qemu-img create -f qcow2 -o compat=%s %s %llu", version == 2 ? "0.10" : "1.1", img,
             (unsigned long long)size) == 0, "%s: create", what);
    uint8_t *model = calloc(1, size);
    struct block_backend *b = open_img(img, false);
    if (!b)
        goto out;
    write_and_track(b, model, 0, size, what);
    CHECK(b->ops->write_zeroes(b, cs, 2 * cs, true) == 0, "%s: write_zeroes unmap", what);
    memset(model + cs, 0, 2 * cs);
    CHECK(b->ops->write_zeroes(b, 4 * cs, 3 * cs, false) == 0, "%s: write_zeroes keep", what);
    memset(model + 4 * cs, 0, 3 * cs);
    CHECK(b->ops->write_zeroes(b, 8 * cs + 10, cs, true) == 0, "%s: write_zeroes unaligned", what);
    memset(model + 8 * cs + 10, 0, cs);
    CHECK(b->ops->write_zeroes(b, 10 * cs + 3, 100, true) == 0, "%s: write_zeroes within a cluster", what);
    memset(model + 10 * cs + 3, 0, 100);
    CHECK(b->ops->discard(b, 12 * cs, 2 * cs) == 0, "%s: discard", what);
    memset(model + 12 * cs, 0, 2 * cs);   /* no backing file: discarded reads zeros */
    CHECK(b->ops->discard(b, size - cs, cs) == 0, "%s: discard at the end", what);
    memset(model + size - cs, 0, cs);
    check_content(b, model, size, what);
    /* Writing into zeroed clusters allocates again. */
    write_and_track(b, model, cs + 5, 10, what);
    write_and_track(b, model, 5 * cs + 5, 10, what);
    check_content(b, model, size, what);
    /* The block status (v3): data; unmapped (no backing file: zeros); a
     * zero cluster. (v2 zeroes by writing zeros: data.) */
    uint64_t n = 0;
    CHECK(block_status(b, 0, size, &n) == BLOCK_DATA && n >= cs,
          "%s: status of cluster 0: %llu", what, (unsigned long long)n);
    CHECK(version == 2 || (block_status(b, 2 * cs, size - 2 * cs, &n) == BLOCK_ZERO && n == cs),
          "%s: status of an unmapped cluster: %llu", what, (unsigned long long)n);
    CHECK(version == 2 || (block_status(b, 4 * cs, size - 4 * cs, &n) == BLOCK_ZERO && n == cs),
          "%s: status of a zeroed cluster: %llu", what, (unsigned long long)n);
    block_close(b);
    int st = qcheck(img);
    CHECK(st == 0, "%s: qemu-img check exit %d", what, st);
    check_converted(img, model, size, what);
    /* Deallocated clusters really are: of 32, the v3 image unmapped 1-2 (then
     * wrote 1 again), 12-13 and 31; write_zeroes without unmap keeps 4-6.
     * A v2 image has no zero flag, so only the discards deallocate. */
    CHECK(sh("qemu-img check --output=json %s | grep -q '\"allocated-clusters\": %d,'", img,
             version == 2 ? 29 : 28) == 0, "%s: allocated clusters", what);
out:
    free(model);
    unlink(img);
}

/* Writes, zeroes, discards and flushes at random until killed; a byte on
 * `ready` after the first completed write tells the parent it is under way. */
static void child_writer(const char *img, uint64_t seed, int ready)
{
    struct block_options o = { .format = BLOCK_FORMAT_QCOW2 };
    struct block_backend *b;
    char e[512];
    if (qcow2_open(img, &o, &b, e, sizeof(e)) < 0)
        _exit(2);
    rng_state = seed;
    uint8_t *buf = malloc(256u << 10);
    fill_random(buf, 256u << 10);
    for (;;) {
        uint64_t len = 1 + rnd() % ((256u << 10) - 512), off = rnd() % (b->size - len);
        unsigned op = (unsigned)(rnd() % 10);
        int r = op == 0 ? b->ops->discard(b, off, len)
              : op == 1 ? b->ops->write_zeroes(b, off, len, rnd() & 1)
              : op == 2 ? b->ops->flush(b)
                        : bwrite(b, buf + rnd() % 512, len, off);
        if (r < 0)
            _exit(3);
        if (ready >= 0 && op > 2) {
            if (write(ready, "x", 1) != 1)
                _exit(4);
            close(ready);
            ready = -1;
        }
    }
}

static void test_kill9(void)
{
    const char *img = P("kill.qcow2");
    CHECK(sh("qemu-img create -f qcow2 -o cluster_size=4096 %s 64M", img) == 0, "kill9: create");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_nsec | 1;
    for (int round = 0; round < 5; round++) {
        uint64_t before = file_hash(img);
        int pfd[2];
        CHECK(pipe(pfd) == 0, "kill9: pipe");
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child_writer(img, seed + (uint64_t)round * 7919, pfd[1]);
        }
        close(pfd[1]);
        char c;
        CHECK(read(pfd[0], &c, 1) == 1, "kill9 round %d: the writer never started", round);
        close(pfd[0]);
        rng_state = seed + (uint64_t)round;
        usleep((useconds_t)(rnd() % 300000));
        int status = 0;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "kill9 round %d: child died on its own (%d)", round,
              status);
        CHECK(file_hash(img) != before, "kill9 round %d: the writer made no progress", round);
        int st = qcheck(img);
        printf("kill9 round %d: qemu-img check exit %d\n", round, st);
        CHECK(st == 0 || st == 3, "kill9 round %d (seed %llu): qemu-img check exit %d (2 = corruption)", round,
              (unsigned long long)seed, st);
    }
    /* The image stays usable: open, write, read, close, check. */
    struct block_backend *b = open_img(img, false);
    if (b) {
        uint8_t w[10000], r[10000];
        fill_random(w, sizeof(w));
        CHECK(bwrite(b, w, sizeof(w), 12345) == 0 && bread(b, r, sizeof(r), 12345) == 0 && !memcmp(w, r, sizeof(w)),
              "kill9: write after crashes");
        block_close(b);
    }
    int st = qcheck(img);
    CHECK(st == 0 || st == 3, "kill9 final: qemu-img check exit %d", st);
    unlink(img);
}

/* ---- damaged images ---- */

static void put32(const char *path, uint64_t off, uint32_t v)
{
    int fd = open(path, O_WRONLY);
    uint32_t be = htobe32(v);
    CHECK(fd >= 0 && pwrite(fd, &be, 4, (off_t)off) == 4, "patch %s", path);
    close(fd);
}

static void put64(const char *path, uint64_t off, uint64_t v)
{
    int fd = open(path, O_WRONLY);
    uint64_t be = htobe64(v);
    CHECK(fd >= 0 && pwrite(fd, &be, 8, (off_t)off) == 8, "patch %s", path);
    close(fd);
}

static uint64_t get64(const char *path, uint64_t off)
{
    uint64_t be = 0;
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, &be, 8, (off_t)off) == 8, "read %s", path);
    close(fd);
    return be64toh(be);
}

static void test_corrupt(void)
{
    const char *good = P("good.qcow2"), *bad = P("bad.qcow2");
    /* 64 KiB clusters, 8 MiB: header, reftable, 1 refblock, L1, then data. */
    CHECK(sh("qemu-img create -f qcow2 %s 8M && qemu-io -c 'write -P 0x5a 0 128k' %s", good, good) == 0,
          "corrupt: base image");
    uint64_t l1 = get64(good, 40), rt = get64(good, 48);
    struct { const char *name; uint64_t off; int width; uint64_t val; const char *needle; } cases[] = {
        { "bad magic", 0, 32, 0x12345678, "magic" },
        { "version 1", 4, 32, 1, "version" },
        { "version 4", 4, 32, 4, "version" },
        { "cluster_bits 8", 20, 32, 8, "cluster_bits" },
        { "cluster_bits 22", 20, 32, 22, "cluster_bits" },
        { "huge size", 24, 64, 1ull << 62, "size" },
        { "size beyond l1", 24, 64, 1ull << 40, "L1" },
        { "crypt method", 32, 32, 1, "crypt" },
        { "l1 too large", 36, 32, 1u << 20, "L1" },
        { "l1 past eof", 40, 64, 1ull << 30, "L1" },
        { "l1 unaligned", 40, 64, l1 + 512, "aligned" },
        { "l1 over header", 40, 64, 0, "header" },
        { "reftable over header", 48, 64, 0, "header" },
        { "reftable over l1", 48, 64, l1, "L1" },
        { "reftable unaligned", 48, 64, rt + 8, "aligned" },
        { "reftable past eof", 48, 64, 1ull << 32, "refcount" },
        { "reftable size 0", 56, 32, 0, "refcount" },
        { "unknown incompat bit", 72, 64, 1ull << 20, "feature" },
        { "external data file", 72, 64, 1ull << 2, "external" },
        { "extended l2", 72, 64, 1ull << 4, "extended" },
        { "compression type 7", 104, 32, 7u << 24, "compression" },
        { "zstd without its bit", 104, 32, 1u << 24, "compression" },
        { "refcount order 7", 96, 32, 7, "refcount_order" },
        { "header length", 100, 32, 3, "header_length" },
        { "backing name past cluster", 8, 64, 65530, "backing" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(sh("cp %s %s", good, bad) == 0, "cp");
        if (cases[i].width == 32)
            put32(bad, cases[i].off, (uint32_t)cases[i].val);
        else
            put64(bad, cases[i].off, cases[i].val);
        if (!strcmp(cases[i].name, "backing name past cluster"))
            put32(bad, 16, 100);
        if (!strcmp(cases[i].name, "compression type 7"))
            put64(bad, 72, 1ull << 3);
        expect_open_fails(bad, true, cases[i].needle, cases[i].name);
        expect_open_fails(bad, false, cases[i].needle, cases[i].name);
    }
    /* Truncated: inside the header, and after the header cluster. */
    CHECK(sh("cp %s %s && truncate -s 50 %s", good, bad, bad) == 0, "truncate");
    expect_open_fails(bad, true, "short", "truncated to 50 bytes");
    CHECK(sh("cp %s %s && truncate -s 65536 %s", good, bad, bad) == 0, "truncate");
    expect_open_fails(bad, true, "past the end", "truncated after the header");
    /* The corrupt bit: read-only is fine, read-write is refused. */
    CHECK(sh("cp %s %s", good, bad) == 0, "cp");
    put64(bad, 72, 1ull << 1);
    expect_open_fails(bad, false, "corrupt", "corrupt bit");
    struct block_backend *b = open_img(bad, true);
    block_close(b);
    /* An L2 table pointer past the end of the file: -EIO at the read that
     * reaches it (and the write), nothing else. */
    CHECK(sh("cp %s %s", good, bad) == 0, "cp");
    put64(bad, l1, (1ull << 40) | (1ull << 63));
    b = open_img(bad, false);
    if (b) {
        uint8_t buf[4096];
        CHECK(bread(b, buf, sizeof(buf), 0) == -EIO, "L2 past EOF: read");
        CHECK(bwrite(b, buf, sizeof(buf), 0) == -EIO, "L2 past EOF: write");
        block_close(b);
    }
    /* An L2 entry pointing at the header cluster: writes must not land there. */
    CHECK(sh("cp %s %s", good, bad) == 0, "cp");
    uint64_t l2 = get64(good, l1) & 0x00fffffffffffe00ull;
    put64(bad, l2, (1ull << 63) | l1);   /* guest cluster 0 -> the L1 table's cluster */
    b = open_img(bad, false);
    if (b) {
        uint8_t buf[512] = { 1 };
        CHECK(bwrite(b, buf, sizeof(buf), 0) == -EIO, "L2 entry over L1: write refused");
        block_close(b);
    }
    /* An unaligned data cluster and reserved bits: -EIO. */
    CHECK(sh("cp %s %s", good, bad) == 0, "cp");
    put64(bad, l2, (1ull << 63) | (5ull << 16) | 0x200);
    b = open_img(bad, true);
    if (b) {
        uint8_t buf[512];
        CHECK(bread(b, buf, sizeof(buf), 0) == -EIO, "unaligned data cluster: read");
        block_close(b);
    }
    /* Compressed garbage: -EIO. */
    CHECK(sh("cp %s %s", good, bad) == 0, "cp");
    put64(bad, l2, (1ull << 62) | 0x30000);
    b = open_img(bad, true);
    if (b) {
        uint8_t buf[512];
        CHECK(bread(b, buf, sizeof(buf), 0) == -EIO, "bad compressed data: read");
        block_close(b);
    }
    unlink(good);
    unlink(bad);
}

static void test_readonly(void)
{
    const char *img = P("ro.qcow2");
    CHECK(sh("qemu-img create -f qcow2 %s 4M && qemu-io -c 'write -P 0x11 4k 100k' %s", img, img) == 0, "ro: create");
    struct stat st0, st1;
    stat(img, &st0);
    uint64_t h = file_hash(img);
    usleep(20000);
    struct block_backend *b = open_img(img, true);
    if (b) {
        uint8_t buf[8192];
        CHECK(bread(b, buf, sizeof(buf), 4096) == 0 && buf[0] == 0x11 && buf[8191] == 0x11, "ro: read");
        CHECK(bwrite(b, buf, 512, 0) == -EROFS, "ro: write refused");
        CHECK(b->ops->discard(b, 0, 65536) == -EROFS, "ro: discard refused");
        CHECK(b->ops->write_zeroes(b, 0, 65536, true) == -EROFS, "ro: write_zeroes refused");
        CHECK(b->ops->flush(b) == 0, "ro: flush");
        block_close(b);
    }
    stat(img, &st1);
    CHECK(file_hash(img) == h, "ro: content changed");
    CHECK(st0.st_mtim.tv_sec == st1.st_mtim.tv_sec && st0.st_mtim.tv_nsec == st1.st_mtim.tv_nsec, "ro: mtime changed");
    unlink(img);
}

static void test_dirty_bit(void)
{
    const char *img = P("dirty.qcow2");
    CHECK(sh("qemu-img create -f qcow2 %s 4M", img) == 0, "dirty: create");
    struct block_backend *b = open_img(img, false);
    if (!b)
        return;
    CHECK((get64(img, 72) & 1) == 0, "dirty: clear after open");
    uint8_t buf[512] = { 7 };
    CHECK(bwrite(b, buf, sizeof(buf), 0) == 0, "dirty: write");
    CHECK((get64(img, 72) & 1) == 1, "dirty: set by the first write");
    block_close(b);
    CHECK((get64(img, 72) & 1) == 0, "dirty: cleared on close");
    CHECK(qcheck(img) == 0, "dirty: check");
    /* Lazy refcounts left dirty: refused for writing, readable. */
    put64(img, 72, 1);
    put64(img, 80, 1);
    expect_open_fails(img, false, "lazy", "dirty lazy refcounts");
    b = open_img(img, true);
    block_close(b);
    /* Autoclear bits (here: bitmaps consistent) are dropped by the first
     * write, as a writer that does not maintain them must. */
    CHECK(sh("qemu-img create -f qcow2 %s 4M", img) == 0, "autoclear: create");
    put64(img, 88, 1);
    b = open_img(img, false);
    if (b) {
        CHECK(bread(b, buf, sizeof(buf), 0) == 0 && get64(img, 88) == 1, "autoclear: kept by reads");
        CHECK(bwrite(b, buf, sizeof(buf), 0) == 0 && get64(img, 88) == 0, "autoclear: cleared by a write");
        block_close(b);
    }
    CHECK(qcheck(img) == 0, "autoclear: check");
    unlink(img);
}

/* Internal snapshots: read-only; the active state is what reads see. */
static void test_snapshots(void)
{
    const char *img = P("snap.qcow2");
    CHECK(sh("qemu-img create -f qcow2 %s 1M && qemu-io -c 'write -P 0x61 0 64k' %s && qemu-img snapshot -c s1 %s "
             "&& qemu-io -c 'write -P 0x62 0 4k' %s", img, img, img, img) == 0, "snapshots: create");
    expect_open_fails(img, false, "snapshots", "snapshots rw");
    struct block_backend *b = open_img(img, true);
    if (b) {
        uint8_t buf[8192];
        CHECK(bread(b, buf, sizeof(buf), 0) == 0 && buf[0] == 0x62 && buf[4095] == 0x62 && buf[4096] == 0x61,
              "snapshots: active state");
        block_close(b);
    }
    unlink(img);
}

/* One writer or many readers per image file. */
static void test_locking(void)
{
    const char *img = P("lock.qcow2");
    CHECK(sh("qemu-img create -f qcow2 %s 1M", img) == 0, "lock: create");
    struct block_backend *r1 = open_img(img, true), *r2 = open_img(img, true);
    expect_open_fails(img, false, "in use", "lock: writer while readers");
    block_close(r1);
    block_close(r2);
    struct block_backend *w = open_img(img, false);
    expect_open_fails(img, true, "in use", "lock: reader while a writer");
    block_close(w);
    w = open_img(img, false);
    block_close(w);
    unlink(img);
}

struct worker {
    struct block_backend *b;
    uint8_t *model;
    uint64_t base, span;
    int id, failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint64_t s = 0x1234567ull * (uint64_t)(w->id + 1);
    uint8_t *buf = malloc(70000), *rb = malloc(70000);
    for (int i = 0; i < 200; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t len = 1 + (s >> 33) % 70000, off = w->base + (s >> 20) % (w->span - len);
        for (uint64_t k = 0; k < len; k++)
            buf[k] = (uint8_t)(s >> (k % 7) ^ k);
        if (i % 20 == 19) {
            /* Discard frees clusters while the other threads do I/O; it
             * leaves the partial clusters at its edges as they were. */
            uint64_t a = (off + 4095) & ~4095ull, z = (off + len) & ~4095ull;
            if (w->b->ops->discard(w->b, off, len) < 0)
                w->failures++;
            if (a < z)
                memset(w->model + a, 0, z - a);
            continue;
        }
        if (i % 20 == 9) {
            memset(buf, 0, len);
            if (w->b->ops->write_zeroes(w->b, off, len, true) < 0 || bread(w->b, rb, len, off) < 0 ||
                memcmp(buf, rb, len))
                w->failures++;
        } else if (bwrite(w->b, buf, len, off) < 0 || bread(w->b, rb, len, off) < 0 || memcmp(buf, rb, len)) {
            w->failures++;
        }
        memcpy(w->model + off, buf, len);
    }
    free(buf);
    free(rb);
    return NULL;
}

static void test_threads(void)
{
    const char *img = P("thr.qcow2");
    uint64_t size = 16ull << 20;
    CHECK(sh("qemu-img create -f qcow2 -o cluster_size=4096 %s %llu", img, (unsigned long long)size) == 0,
          "threads: create");
    uint8_t *model = calloc(1, size);
    struct block_backend *b = open_img(img, false);
    if (b) {
        pthread_t t[4];
        struct worker w[4];
        for (int i = 0; i < 4; i++) {
            w[i] = (struct worker){ b, model, (uint64_t)i * (size / 4), size / 4, i, 0 };
            pthread_create(&t[i], NULL, worker_main, &w[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            CHECK(w[i].failures == 0, "threads: worker %d saw %d mismatches", i, w[i].failures);
        }
        check_content(b, model, size, "threads");
        block_close(b);
        int st = qcheck(img);
        CHECK(st == 0, "threads: qemu-img check exit %d", st);
        check_converted(img, model, size, "threads");
    }
    free(model);
    unlink(img);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nimbus-qcow2-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    if (sh("qemu-img --version") != 0) {
        printf("FAIL qemu-img is missing (scripts/deps.sh installs qemu-utils)\n");
        return 1;
    }
    test_patterns(9);
    test_patterns(12);
    test_patterns(16);
    test_patterns(21);
    test_refcount_bits(1);
    test_refcount_bits(8);
    test_refcount_bits(64);
    test_backing(false);
    test_backing(true);
    test_chain_errors();
    test_compressed("zlib");
    test_compressed("zstd");
    test_zeroes(3);
    test_zeroes(2);
    test_readonly();
    test_dirty_bit();
    test_snapshots();
    test_locking();
    test_corrupt();
    test_threads();
    test_kill9();
    sh("rm -rf %s", tmpdir);
    return check_summary("test_qcow2");
}
