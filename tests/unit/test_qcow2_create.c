/* Unit tests for qcow2_create() (src/block/qcow2_create.c): the images it
 * makes open in our backend and in QEMU's tools, `qemu-img check` finds them
 * clean before and after writes, overlays read their backing file (raw or
 * qcow2) until written and never write it, and bad options are refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block/block.h"

#include "check.h"

#undef CHECK
#define CHECK CHECK_MSG

static char tmpdir[256];
static char err[1024];

static const char *P(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

/* Runs a shell command with its output in tmpdir/cmd.log; its exit status. */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[2048], full[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "( %s ) >%s/cmd.log 2>&1", cmd, tmpdir);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool log_has(const char *text)
{
    char buf[8192] = "";
    FILE *f = fopen(P("cmd.log"), "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, text) != NULL;
}

static struct block_backend *open_img(const char *path, enum block_format fmt, bool ro)
{
    struct block_options o = { .format = fmt, .readonly = ro };
    struct block_backend *b = NULL;
    err[0] = 0;
    int r = block_open(path, &o, &b, err, sizeof(err));
    CHECK(r == 0, "open %s: %d %s", path, r, err);
    return r == 0 ? b : NULL;
}

static int bio(struct block_backend *b, bool wr, void *buf, size_t len, uint64_t off)
{
    struct iovec v = { buf, len };
    return wr ? b->ops->pwritev(b, &v, 1, off) : b->ops->preadv(b, &v, 1, off);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static uint64_t file_hash(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    int fd = open(path, O_RDONLY);
    uint8_t buf[65536];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    if (fd >= 0)
        close(fd);
    return h;
}

/* An image without a backing file: empty (zeros), writable, clean. */
static void test_plain(void)
{
    const char *img = P("plain.qcow2");
    struct qcow2_create_options o = { .size = 8ull << 20 };
    int r = qcow2_create(img, &o, err, sizeof(err));
    CHECK(r == 0, "create: %d %s", r, err);
    CHECK(sh("qemu-img check %s", img) == 0, "qemu-img check of a new image");
    CHECK(sh("qemu-img info --output=json %s", img) == 0 && log_has("\"virtual-size\": 8388608") &&
              log_has("\"compat\": \"1.1\""), "qemu-img info: size 8 MiB, version 3");
    struct block_backend *b = open_img(img, BLOCK_FORMAT_PROBE, false);
    if (!b)
        return;
    CHECK(!strcmp(b->ops->name, "qcow2") && b->size == 8ull << 20, "probed %s, %llu bytes",
          b->ops->name, (unsigned long long)b->size);
    uint8_t *buf = malloc(1 << 20), *got = malloc(1 << 20);
    CHECK(bio(b, false, got, 1 << 20, 0) == 0 && got[0] == 0 && !memcmp(got, got + 1, (1 << 20) - 1),
          "a new image reads as zeros");
    fill(buf, 1 << 20, 1);
    CHECK(bio(b, true, buf, 1 << 20, 3ull << 20) == 0, "write 1 MiB");
    CHECK(bio(b, false, got, 1 << 20, 3ull << 20) == 0 && !memcmp(buf, got, 1 << 20), "read back");
    block_close(b);
    CHECK(sh("qemu-img check %s", img) == 0, "qemu-img check after writes");
    CHECK(sh("qemu-img compare -f qcow2 %s %s", img, img) == 0, "qemu-img reads it");
    free(buf);
    free(got);
}

/* An overlay over a raw or a qcow2 base: reads the base, writes stay in
 * the overlay, the base is untouched (the use of `nimbus exec`). */
static void test_overlay(bool qcow2_base)
{
    const char *what = qcow2_base ? "qcow2 base" : "raw base";
    const size_t size = 4u << 20;
    const char *raw = P("base.raw"), *base = qcow2_base ? P("base.qcow2") : raw;
    const char *ov = P("overlay.qcow2");
    unlink(raw);
    unlink(P("base.qcow2"));
    unlink(ov);
    uint8_t *data = malloc(size), *got = malloc(size), *w = malloc(200000);
    fill(data, size, 7);
    FILE *f = fopen(raw, "wb");
    CHECK(f && fwrite(data, 1, size, f) == size, "%s: write the raw file", what);
    if (f)
        fclose(f);
    if (qcow2_base)
        CHECK(sh("qemu-img convert -O qcow2 %s %s", raw, base) == 0, "%s: convert", what);
    uint64_t before = file_hash(base);

    struct qcow2_create_options o = { .size = size, .backing = base,
                                      .backing_format = qcow2_base ? "qcow2" : "raw" };
    int r = qcow2_create(ov, &o, err, sizeof(err));
    CHECK(r == 0, "%s: create: %d %s", what, r, err);
    CHECK(sh("qemu-img check %s", ov) == 0, "%s: qemu-img check of the new overlay", what);
    CHECK(sh("qemu-img info --output=json %s", ov) == 0 && log_has(qcow2_base ?
              "\"backing-filename-format\": \"qcow2\"" : "\"backing-filename-format\": \"raw\""),
          "%s: qemu-img info names the backing format", what);
    CHECK(sh("qemu-img compare %s %s", ov, raw) == 0, "%s: qemu-img sees the base's data", what);

    struct block_backend *b = open_img(ov, BLOCK_FORMAT_QCOW2, false);
    if (b) {
        CHECK(b->size == size, "%s: size %llu", what, (unsigned long long)b->size);
        CHECK(bio(b, false, got, size, 0) == 0 && !memcmp(got, data, size),
              "%s: the overlay reads the base", what);
        /* Unaligned writes across cluster boundaries: copy-on-write of the
         * partial clusters from the base. */
        fill(w, 200000, 9);
        CHECK(bio(b, true, w, 200000, 70000 - 70000 % 512) == 0, "%s: write", what);
        memcpy(data + 70000 - 70000 % 512, w, 200000);
        CHECK(bio(b, false, got, size, 0) == 0 && !memcmp(got, data, size),
              "%s: the overlay reads its writes over the base", what);
        block_close(b);
    }
    CHECK(file_hash(base) == before, "%s: the base file changed", what);
    CHECK(sh("qemu-img check %s", ov) == 0, "%s: qemu-img check after writes", what);
    const char *out = P("out.raw");
    CHECK(sh("qemu-img convert -O raw %s %s", ov, out) == 0, "%s: convert", what);
    f = fopen(out, "rb");
    CHECK(f && fread(got, 1, size, f) == size && !memcmp(got, data, size),
          "%s: qemu-img reads the overlay's writes", what);
    if (f)
        fclose(f);
    free(data);
    free(got);
    free(w);
}

/* A virtual size whose L1 table spans several clusters. */
static void test_large(void)
{
    const char *img = P("large.qcow2");
    struct qcow2_create_options o = { .size = 5ull << 40 };   /* 5 TiB: L1 of 10240 entries */
    int r = qcow2_create(img, &o, err, sizeof(err));
    CHECK(r == 0, "large: create: %d %s", r, err);
    CHECK(sh("qemu-img check %s", img) == 0, "large: qemu-img check");
    struct block_backend *b = open_img(img, BLOCK_FORMAT_QCOW2, false);
    if (b) {
        uint8_t buf[4096];
        fill(buf, sizeof(buf), 3);
        CHECK(bio(b, true, buf, sizeof(buf), (5ull << 40) - 4096) == 0, "large: write at the end");
        block_close(b);
    }
    CHECK(sh("qemu-img check %s", img) == 0, "large: qemu-img check after a write");
}

static void test_refused(void)
{
    struct qcow2_create_options o = { .size = 1 << 20 };
    const char *img = P("plain.qcow2");   /* exists */
    CHECK(qcow2_create(img, &o, err, sizeof(err)) == -EEXIST, "an existing file: %s", err);
    o.size = 1000;
    CHECK(qcow2_create(P("odd.qcow2"), &o, err, sizeof(err)) == -EINVAL, "size 1000");
    o.size = 0;
    CHECK(qcow2_create(P("zero.qcow2"), &o, err, sizeof(err)) == -EINVAL, "size 0");
    o.size = 1 << 20;
    char name[1100];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    o.backing = name;
    CHECK(qcow2_create(P("long.qcow2"), &o, err, sizeof(err)) == -ENAMETOOLONG,
          "a backing name of 1099 bytes");
    o.backing = NULL;
    o.backing_format = "raw";
    CHECK(qcow2_create(P("fmt.qcow2"), &o, err, sizeof(err)) == -EINVAL,
          "a backing format without a backing file");
    CHECK(access(P("odd.qcow2"), F_OK) && access(P("long.qcow2"), F_OK) &&
          access(P("fmt.qcow2"), F_OK), "a refused image leaves no file");
    o.backing_format = NULL;
    CHECK(qcow2_create("/nonexistent-dir/x.qcow2", &o, err, sizeof(err)) == -ENOENT,
          "no such directory");
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nimbus-qcow2c-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    if (sh("qemu-img --version") != 0) {
        printf("FAIL qemu-img is missing (scripts/deps.sh installs qemu-utils)\n");
        return 1;
    }
    test_plain();
    test_overlay(false);
    test_overlay(true);
    test_large();
    test_refused();
    sh("rm -rf %s", tmpdir);
    return check_summary("qcow2_create");
}
