/* Live migration (vm/migrate_stream.h, vm/migrate.h) without a guest kernel:
 *  - addresses: unix:PATH, tcp:HOST:PORT, tcp:[V6]:PORT, and what is refused;
 *  - frames and page batches round-trip over a socket (zero pages as a flag,
 *    runs of data pages, zstd), and hostile frames are refused with a
 *    one-line message: unknown types, reserved bits, oversize lengths, a
 *    truncated stream, page numbers outside RAM, counts that do not match
 *    the length, damaged zstd, malformed fixed frames, an ERROR from the peer;
 *  - a whole migration of a small machine (a bare-metal program counting on
 *    two harts) in one process, pre-copy and (with userfaultfd) post-copy:
 *    the destination's RAM and harts equal the source's at its pause, and
 *    the source has stopped; a destination that refuses (too much RAM) and
 *    garbage to a destination give clean errors, the source going on;
 *  - post-copy recovery: RESUME and RECEIVED refused when malformed; a
 *    post-copy through a relay the test cuts pauses both sides, refuses
 *    cancel and an impostor's RESUME, and completes after recover + resume
 *    with exactly the missing pages sent and none placed twice; or, the
 *    destination's VM ending while paused, lets its waiting thread go;
 *  - copy-storage: a machine with a raw disk (sparse, an odd tail) and a
 *    qcow2 disk moves to a destination with images of its own (the raw one
 *    full of garbage, the qcow2 one fresh): afterwards both read the same as
 *    the source's, the holes went as zero ranges, not data; a destination
 *    image of another size is refused before any page, the source going
 *    on; hostile DISK frames (a disk not copied, out of range, unaligned,
 *    a length that does not match, unknown flags, oversize) are refused;
 *  - auto-converge matters: a program dirtying its 128 pages six times as
 *    fast as --max-bandwidth sends them (its pace and the limit set from
 *    this host's speed: a round of ~80 ms, a downtime limit of 20 ms) does
 *    not converge within 20 rounds without auto-converge (the migration
 *    says so: converged false, the last round's expected downtime above
 *    the limit), and does with it (its hart throttled).
 *
 * `test_migrate_stream --write-seeds DIR` writes valid incoming streams as
 * the seeds of tests/fuzz/corpus/migrate_stream/ (fuzz_migrate_stream.c),
 * and the frames of a post-copy recovery. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "machine/virt.h"
#include "machine/virt_state.h"
#include "mem/ram_fill.h"
#include "vm/migrate.h"
#include "vm/migrate_stream.h"

#include "check.h"
#include "rv_encode.h"
#include "vm_threads.h"

#define NPAGES 64u

static int64_t mig_test_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(long ms)
{
    /* Pacing only: lets the harts run; nothing waits on it. */
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

static bool one_line(const char *s)
{
    return s[0] && !strchr(s, '\n');
}

static void test_addresses(void)
{
    struct migrate_addr a;
    char err[256], buf[400];
    CHECK_EQ(migrate_addr_parse("unix:/tmp/x.sock", &a, err, sizeof(err)), 0);
    CHECK(!a.tcp && !strcmp(a.path, "/tmp/x.sock"));
    CHECK_EQ(migrate_addr_parse("tcp:127.0.0.1:4444", &a, err, sizeof(err)), 0);
    CHECK(a.tcp && !strcmp(a.host, "127.0.0.1") && !strcmp(a.port, "4444"));
    CHECK_EQ(migrate_addr_parse("tcp:[::1]:0", &a, err, sizeof(err)), 0);
    migrate_addr_format(&a, buf, sizeof(buf));
    CHECK(!strcmp(buf, "tcp:[::1]:0"));
    const char *bad[] = { "", "unix:", "tcp:host", "tcp::80", "tcp:h:65536", "tcp:h:x",
                          "udp:h:1", "tcp:[::1:80" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        CHECK_MSG(migrate_addr_parse(bad[i], &a, err, sizeof(err)) == -EINVAL && one_line(err),
                  "'%s' accepted", bad[i]);
    }
}

/* ---- frames over a socket pair ---- */

struct writer {
    int fd;
    const uint8_t *data;
    size_t len;
    pthread_t t;
};

static void *write_main(void *arg)
{
    struct writer *w = arg;
    size_t off = 0;
    while (off < w->len) {
        ssize_t n = write(w->fd, w->data + off, w->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(w->fd, SHUT_WR);
    return NULL;
}

struct ram {
    uint8_t pages[NPAGES][MIGRATE_PAGE_SIZE];
    int calls;
};

static int put(void *opaque, uint64_t pfn, uint64_t n, const void *data)
{
    struct ram *r = opaque;
    r->calls++;
    for (uint64_t i = 0; i < n; i++) {
        if (data)
            memcpy(r->pages[pfn + i], (const uint8_t *)data + i * MIGRATE_PAGE_SIZE,
                   MIGRATE_PAGE_SIZE);
        else
            memset(r->pages[pfn + i], 0, MIGRATE_PAGE_SIZE);
    }
    return 0;
}

struct flusher {
    struct migrate_conn *c;
    struct migrate_batch *b;
    int level, r;
};

static void *flush_main(void *arg)
{
    struct flusher *x = arg;
    x->r = migrate_batch_flush(x->c, x->b, x->level);
    return NULL;
}

static void test_batches(bool zstd)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct migrate_conn tx, rx;
    migrate_conn_init(&tx, sv[0], sv[0]);
    migrate_conn_init(&rx, sv[1], sv[1]);
    static struct ram src, dst;
    for (unsigned p = 0; p < NPAGES; p++)
        memset(src.pages[p], p % 3 == 0 ? 0 : (int)p, MIGRATE_PAGE_SIZE);
    memset(&dst, 0xee, sizeof(dst));
    dst.calls = 0;
    struct migrate_batch b;
    CHECK_EQ(migrate_batch_init(&b), 0);
    /* From a thread: a batch may be bigger than the socket's buffer. */
    for (unsigned p = 0; p < NPAGES; p++)
        migrate_batch_add(&b, p, src.pages[p]);
    struct flusher th = { &tx, &b, zstd ? 3 : 0, -1 };
    pthread_t t;
    pthread_create(&t, NULL, flush_main, &th);
    struct migrate_frame f;
    char err[256] = "";
    CHECK_EQ(migrate_recv(&rx, &f, err, sizeof(err)), 0);
    CHECK_EQ(f.type, MIGRATE_PAGES);
    CHECK_EQ(!!(f.flags & MIGRATE_FRAME_ZSTD), zstd);
    if (zstd)
        CHECK(f.len < NPAGES * MIGRATE_PAGE_SIZE / 4);   /* it compressed */
    CHECK_MSG(migrate_pages_parse(&rx, &f, NPAGES, true, put, &dst, err, sizeof(err)) == 0, "%s",
              err);
    pthread_join(t, NULL);
    CHECK_EQ(th.r, 0);
    CHECK(memcmp(src.pages, dst.pages, sizeof(src.pages)) == 0);
    CHECK_EQ(b.zero_pages, (NPAGES + 2) / 3);
    /* Zero pages went as flags: runs of data pages come as one call each. */
    CHECK(dst.calls < (int)NPAGES);
    /* The same compressed frame refused when zstd was not negotiated. */
    if (zstd)
        CHECK(migrate_pages_parse(&rx, &f, NPAGES, false, put, &dst, err, sizeof(err)) == -EBADMSG);
    migrate_batch_free(&b);
    migrate_conn_free(&tx);
    migrate_conn_free(&rx);
    close(sv[0]);
    close(sv[1]);
}

/* Feeds `bytes` to a reader; returns migrate_recv's result, then (if a PAGES
 * frame came) the parse's. */
static int feed(const void *bytes, size_t len, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
        return -999;
    struct writer w = { .fd = sv[0], .data = bytes, .len = len };
    pthread_create(&w.t, NULL, write_main, &w);
    struct migrate_conn c;
    migrate_conn_init(&c, sv[1], sv[1]);
    struct migrate_frame f;
    static struct ram dst;
    int r = migrate_recv(&c, &f, err, errlen);
    if (!r && f.type == MIGRATE_PAGES)
        r = migrate_pages_parse(&c, &f, NPAGES, true, put, &dst, err, errlen);
    else if (!r && f.type == MIGRATE_HELLO) {
        struct migrate_hello h;
        r = migrate_hello_parse(&f, &h, err, errlen);
    } else if (!r && f.type == MIGRATE_END) {
        uint32_t fl;
        uint64_t n;
        r = migrate_end_parse(&f, &fl, &n, err, errlen);
    } else if (!r && f.type == MIGRATE_DISK) {
        uint64_t sizes[2] = { 1u << 20, 0 };   /* disk 1 is not copied */
        struct migrate_disk_chunk d;
        r = migrate_disk_parse(&f, sizes, 2, &d, err, errlen);
    } else if (!r && f.type == MIGRATE_PAGE_REQ) {
        uint64_t pfns[MIGRATE_MAX_REQ];
        uint32_t n;
        r = migrate_req_parse(&f, NPAGES, pfns, &n, err, errlen);
    }
    pthread_join(w.t, NULL);
    migrate_conn_free(&c);
    close(sv[0]);
    close(sv[1]);
    return r;
}

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, const void *p, uint32_t len)
{
    out[0] = type;
    out[1] = flags;
    out[2] = out[3] = 0;
    memcpy(out + 4, &len, 4);
    memcpy(out + 8, p, len);
    return 8 + len;
}

static void hostile(const char *what, const void *bytes, size_t len, int want)
{
    char err[512] = "";
    int r = feed(bytes, len, err, sizeof(err));
    CHECK_MSG(r == want && one_line(err), "%s: got %d (%s), want %d", what, r, err, want);
}

static void test_hostile(void)
{
    static uint8_t buf[16384];
    uint8_t p[64] = { 0 };
    uint64_t e;
    buf[0] = 99;
    hostile("an unknown type", buf, 8, -EBADMSG);
    hostile("a truncated header", "\x04\x00\x00", 3, -ECONNRESET);
    uint8_t h[8] = { MIGRATE_PAGES, 0, 1, 0, 8, 0, 0, 0 };
    hostile("reserved bits", h, 8, -EBADMSG);
    uint8_t big[8] = { MIGRATE_PAGES, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };
    hostile("an oversize PAGES frame", big, 8, -EBADMSG);
    uint8_t bigstate[8] = { MIGRATE_STATE, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };
    hostile("an oversize STATE frame", bigstate, 8, -EBADMSG);
    uint8_t trunc[12] = { MIGRATE_STATE, 0, 0, 0, 100, 0, 0, 0, 1, 2, 3, 4 };
    hostile("a truncated payload", trunc, sizeof(trunc), -ECONNRESET);
    uint8_t flagged[8] = { MIGRATE_END, MIGRATE_FRAME_ZSTD, 0, 0, 0, 0, 0, 0 };
    hostile("zstd flag on END", flagged, 8, -EBADMSG);
    /* PAGES: one zero page out of range, wrong counts, unknown entry bits. */
    memset(p, 0, sizeof(p));
    p[0] = 1;
    e = NPAGES | MIGRATE_PAGE_ZERO;
    memcpy(p + 8, &e, 8);
    hostile("a page outside RAM", buf, frame(buf, MIGRATE_PAGES, 0, p, 16), -EBADMSG);
    e = 1 | (1ull << 50);
    memcpy(p + 8, &e, 8);
    hostile("unknown entry bits", buf, frame(buf, MIGRATE_PAGES, 0, p, 16), -EBADMSG);
    e = 1;   /* a data page without its data */
    memcpy(p + 8, &e, 8);
    hostile("a data page missing", buf, frame(buf, MIGRATE_PAGES, 0, p, 16), -EBADMSG);
    p[0] = 0;
    hostile("zero entries", buf, frame(buf, MIGRATE_PAGES, 0, p, 16), -EBADMSG);
    p[0] = 0xff;
    p[1] = 0xff;
    hostile("too many entries", buf, frame(buf, MIGRATE_PAGES, 0, p, 16), -EBADMSG);
    uint8_t z[16] = { 100, 0, 0, 0, 0x28, 0xb5, 0x2f, 0xfd, 9, 9, 9, 9 };
    hostile("damaged zstd", buf, frame(buf, MIGRATE_PAGES, MIGRATE_FRAME_ZSTD, z, 16), -EBADMSG);
    uint8_t hello[40] = "NIMBUSMG";
    hello[8] = 2;
    hostile("another major", buf, frame(buf, MIGRATE_HELLO, 0, hello, 40), -ENOTSUP);
    hostile("no magic", buf, frame(buf, MIGRATE_HELLO, 0, "NIMBUSXX", 8), -EBADMSG);
    uint8_t end[12] = { 0x80 };
    hostile("END with unknown flags", buf, frame(buf, MIGRATE_END, 0, end, 12), -EBADMSG);
    uint8_t req[16] = { 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    hostile("PAGE_REQ outside RAM", buf, frame(buf, MIGRATE_PAGE_REQ, 0, req, 16), -EBADMSG);
    uint8_t ready[8] = { MIGRATE_READY, 0, 0, 0, 1, 0, 0, 0 };
    hostile("a READY with a payload", ready, 8, -EBADMSG);
    /* DISK frames, against disk 0 of 1 MiB (copied) and disk 1 (not). */
    struct { uint32_t disk, flags; uint64_t off, len; uint8_t data[1024]; } __attribute__((packed))
        dk = { 0, MIGRATE_DISK_ZERO, 0, 1u << 20, { 0 } };
    char derr[512] = "";
    CHECK_MSG(feed(buf, frame(buf, MIGRATE_DISK, 0, &dk, 24), derr, sizeof(derr)) == 0,
              "a whole disk of zeros: %s", derr);
    dk = (typeof(dk)){ 0, 0, 512, 1024, { 1 } };
    CHECK_MSG(feed(buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), derr, sizeof(derr)) == 0,
              "1 KiB of data: %s", derr);
    dk.disk = 1;
    hostile("DISK for a disk not copied", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024),
            -EBADMSG);
    dk.disk = 7;
    hostile("DISK for no disk", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    dk.disk = 0;
    dk.flags = 2;
    hostile("DISK with unknown flags", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    dk.flags = 0;
    dk.off = 100;
    hostile("DISK unaligned", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    dk.off = (1u << 20) - 512;
    hostile("DISK past the end", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    dk.off = ~0ull - 511;
    hostile("DISK wrapping around", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    dk.off = 0;
    dk.len = 2048;
    hostile("DISK shorter than it says", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024),
            -EBADMSG);
    dk.len = 0;
    hostile("DISK of nothing", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24), -EBADMSG);
    dk.len = 1000;
    hostile("DISK not whole sectors", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1000), -EBADMSG);
    dk = (typeof(dk)){ 0, MIGRATE_DISK_ZERO, 0, 1024, { 0 } };
    hostile("zeros with data", buf, frame(buf, MIGRATE_DISK, 0, &dk, 24 + 1024), -EBADMSG);
    hostile("a DISK header cut short", buf, frame(buf, MIGRATE_DISK, 0, &dk, 20), -EBADMSG);
    uint8_t bigdisk[8] = { MIGRATE_DISK, 0, 0, 0, 0x19, 0, 0x10, 0 };   /* 24 + 1 MiB + 1 */
    hostile("an oversize DISK frame", bigdisk, 8, -EBADMSG);
    uint8_t sync[8] = { MIGRATE_DISK_SYNC, 0, 0, 0, 4, 0, 0, 0 };
    hostile("a DISK_SYNC with a payload", sync, 8, -EBADMSG);
    uint8_t rsync[8] = { MIGRATE_SYNC, 0, 0, 0, 1, 0, 0, 0 };
    hostile("a SYNC with a payload", rsync, 8, -EBADMSG);
    uint8_t em[20] = { 0xea, 0xff, 0xff, 0xff, 5, 0, 'n', '\n', 'o', 'p', 'e' };
    char err[512] = "";
    CHECK_EQ(feed(buf, frame(buf, MIGRATE_ERROR, 0, em, 11), err, sizeof(err)), -EREMOTEIO);
    CHECK_MSG(strstr(err, "n?ope") != NULL, "the peer's message: %s", err);
}

/* RESUME and RECEIVED (post-copy recovery): round trips, and what is
 * refused: another length, a bitmap of another RAM size, bits beyond RAM. */
static void check_refused(const char *what, int r, const char *err)
{
    CHECK_MSG(r == -EBADMSG && one_line(err), "%s: got %d (%s)", what, r, err);
}

static void test_recovery_frames(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct migrate_conn tx, rx;
    migrate_conn_init(&tx, sv[0], sv[0]);
    migrate_conn_init(&rx, sv[1], sv[1]);
    char err[512] = "";
    struct migrate_frame f;
    struct migrate_resume res = { .session = 0x1122334455667788ull, .ram_size = 100 * 4096ull,
                                  .pages_sent = 42 }, back;
    CHECK_EQ(migrate_resume_send(&tx, &res), 0);
    CHECK_EQ(migrate_recv(&rx, &f, err, sizeof(err)), 0);
    CHECK_EQ(migrate_resume_parse(&f, &back, err, sizeof(err)), 0);
    CHECK(back.session == res.session && back.ram_size == res.ram_size && back.pages_sent == 42);
    /* 100 pages: two words, the second one partial. */
    uint64_t bm[2] = { 0x8000000000000001ull, (1ull << 35) | 1 }, got[2];
    CHECK_EQ(migrate_received_send(&tx, bm, 100), 0);
    CHECK_EQ(migrate_recv(&rx, &f, err, sizeof(err)), 0);
    CHECK_EQ(f.type, MIGRATE_RECEIVED);
    CHECK_EQ(migrate_received_parse(&f, 100, got, err, sizeof(err)), 0);
    CHECK(got[0] == bm[0] && got[1] == bm[1]);
    check_refused("RECEIVED for another RAM size",
                  migrate_received_parse(&f, 128, got, err, sizeof(err)), err);
    check_refused("RECEIVED for a smaller RAM", migrate_received_parse(&f, 64, got, err,
                  sizeof(err)), err);
    /* A bit beyond RAM. */
    uint64_t over[2] = { 0, 1ull << 36 };
    CHECK_EQ(migrate_received_send(&tx, over, 100), 0);
    CHECK_EQ(migrate_recv(&rx, &f, err, sizeof(err)), 0);
    check_refused("RECEIVED beyond RAM", migrate_received_parse(&f, 100, got, err, sizeof(err)),
                  err);
    /* Lengths: the fixed part cut, a bitmap a word short, RESUME too short. */
    uint8_t raw[32] = { 100 };
    struct migrate_frame cut = { .type = MIGRATE_RECEIVED, .len = 4, .data = raw };
    check_refused("RECEIVED of 4 bytes", migrate_received_parse(&cut, 100, got, err, sizeof(err)),
                  err);
    struct migrate_frame shortbm = { .type = MIGRATE_RECEIVED, .len = 16, .data = raw };
    check_refused("RECEIVED a word short", migrate_received_parse(&shortbm, 100, got, err,
                  sizeof(err)), err);
    struct migrate_frame r16 = { .type = MIGRATE_RESUME, .len = 16, .data = raw };
    check_refused("RESUME of 16 bytes", migrate_resume_parse(&r16, &back, err, sizeof(err)), err);
    struct migrate_frame notres = { .type = MIGRATE_PAGES_DONE, .len = 8, .data = raw };
    check_refused("PAGES_DONE for RESUME", migrate_resume_parse(&notres, &back, err, sizeof(err)),
                  err);
    migrate_conn_free(&tx);
    migrate_conn_free(&rx);
    close(sv[0]);
    close(sv[1]);
    /* Over the frame limits: the reader refuses before reading the body. */
    uint8_t h1[8] = { MIGRATE_RESUME, 0, 0, 0, 25, 0, 0, 0 };
    hostile("an oversize RESUME", h1, 8, -EBADMSG);
    uint8_t h2[8] = { MIGRATE_RECEIVED, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };
    hostile("an oversize RECEIVED", h2, 8, -EBADMSG);
}

/* ---- whole migrations in one process ---- */

static const uint32_t program[] = {
    0xf14022f3,   /* csrr t0, mhartid */
    0x00c29293,   /* slli t0, t0, 12 */
    0x00100337,   /* lui t1, 0x100 */
    0x006282b3,   /* add t0, t0, t1 */
    0x00100393,   /* li t2, 1 (lui t2, 0x80000 would sign-extend: no RAM there) */
    0x01f39393,   /* slli t2, t2, 31 */
    0x007282b3,   /* add t0, t0, t2 */
    0x00000513,   /* li a0, 0 */
    0x00150513,   /* addi a0, a0, 1 */
    0x00a2b023,   /* sd a0, 0(t0) */
    0xff9ff06f,   /* j -8 */
};

struct dest {
    struct vm_incoming_options o;
    sem_t listening;
    struct virt_machine *m;
    struct virt_config_strings strs;
    int r;
    char err[512];
    pthread_t t;
};

static void on_listening(void *opaque, const char *addr)
{
    struct dest *d = opaque;
    (void)addr;
    sem_post(&d->listening);
}

static void *dest_main(void *arg)
{
    struct dest *d = arg;
    bool paused;
    d->r = vm_migrate_incoming(&d->o, &d->m, &d->strs, &paused, d->err, sizeof(d->err));
    if (d->r)
        sem_post(&d->listening);
    return NULL;
}

/* Starts a destination on a thread of its own, listening at
 * unix:TMP/mig.sock (written to addr[300]); returns once it listens. */
static void dest_start(struct dest *d, const char *tmp, uint64_t max_ram, char addr[300])
{
    *d = (struct dest){ .o = { .rfd = -1, .wfd = -1, .listening = on_listening,
                               .max_ram = max_ram } };
    snprintf(addr, 300, "unix:%s/mig.sock", tmp);
    d->o.listen = addr;
    d->o.opaque = d;
    d->o.restore.console_kind = CONSOLE_FILE;
    strcpy(d->o.restore.console_path, "/dev/null");
    sem_init(&d->listening, 0, 0);
    pthread_create(&d->t, NULL, dest_main, d);
    sem_wait(&d->listening);
}

/* The destination's machine, once compared. */
static void dest_free(struct dest *d)
{
    vm_migrate_free(d->m);
    virt_destroy(d->m);
    virt_config_strings_free(&d->strs);
}

/* A machine running `prog` on `nharts` harts, with `ndisks` disks. */
static struct virt_machine *machine_disks(const char *tmp, const uint32_t *prog, size_t len,
                                          unsigned nharts, const struct virt_disk *disks,
                                          unsigned ndisks)
{
    char image[512];
    snprintf(image, sizeof(image), "%s/prog.bin", tmp);
    FILE *f = fopen(image, "wb");
    if (!f)
        return NULL;
    fwrite(prog, 1, len, f);
    fclose(f);
    struct virt_config cfg = { .bios = image, .ram_size = 16u << 20, .nharts = nharts,
                               .console_kind = CONSOLE_FILE, .ndisks = ndisks };
    strcpy(cfg.console_path, "/dev/null");
    for (unsigned i = 0; i < ndisks; i++)
        cfg.disks[i] = disks[i];
    struct virt_machine *m;
    char err[512];
    if (virt_create(&cfg, &m, err, sizeof(err))) {
        fprintf(stderr, "virt_create: %s\n", err);
        return NULL;
    }
    return m;
}

static struct virt_machine *machine_with(const char *tmp, const uint32_t *prog, size_t len,
                                         unsigned nharts)
{
    return machine_disks(tmp, prog, len, nharts, NULL, 0);
}

static struct virt_machine *source_machine(const char *tmp)
{
    return machine_with(tmp, program, sizeof(program), 2);
}

static bool wait_done(struct virt_machine *m, struct vm_migrate_progress *p)
{
    for (int i = 0; i < 3000; i++) {
        if (vm_migrate_get(m, p) && (p->phase == VM_MIGRATE_COMPLETED ||
                                     p->phase == VM_MIGRATE_FAILED ||
                                     p->phase == VM_MIGRATE_CANCELLED))
            return true;
        sleep_ms(5);
    }
    return false;
}

static void migrate_once(const char *tmp, enum vm_migrate_mode mode, uint64_t max_ram,
                         bool want_ok)
{
    const char *name = vm_migrate_mode_name(mode);
    struct virt_machine *m = source_machine(tmp);
    CHECK(m != NULL);
    if (!m)
        return;
    struct vm_thread t[2];
    CHECK_EQ(vm_threads_start(m, t), 0);
    /* Both harts counting (each stores its count at 1 MiB + hartid pages),
     * whatever the host's load. */
    for (unsigned h = 0; h < 2; h++) {
        const uint64_t *c = (const uint64_t *)(m->mem.ram + 0x100000 + h * 4096);
        for (int i = 0; i < 2000 && !__atomic_load_n(c, __ATOMIC_RELAXED); i++)
            sleep_ms(5);
        CHECK_MSG(__atomic_load_n(c, __ATOMIC_RELAXED) > 0, "%s: hart %u does not count", name, h);
    }
    struct dest d;
    char addr[300];
    dest_start(&d, tmp, max_ram, addr);
    struct vm_migrate_options o = { .mode = mode, .compress = mode == VM_MIGRATE_MODE_PRECOPY };
    snprintf(o.to, sizeof(o.to), "%s", addr);
    char err[512] = "";
    CHECK_MSG(vm_migrate_start(m, &o, err, sizeof(err)) == 0, "%s: start: %s", name, err);
    struct vm_migrate_progress p;
    CHECK_MSG(wait_done(m, &p), "%s: the migration did not end", name);
    pthread_join(d.t, NULL);
    if (want_ok) {
        CHECK_MSG(p.phase == VM_MIGRATE_COMPLETED && d.r == 0, "%s: %s / %s", name, p.error,
                  d.err);
        CHECK(atomic_load(&m->stop) != VIRT_RUNNING);   /* the source ended */
        vm_threads_stop(m, t);
        vm_migrate_join(m);
        if (d.r == 0) {
            /* Post-copy: wait until every page is there. */
            struct vm_migrate_progress q;
            for (int i = 0; i < 2000 && vm_migrate_get(d.m, &q) &&
                            q.phase != VM_MIGRATE_COMPLETED; i++)
                sleep_ms(5);
            CHECK_MSG(memcmp(m->mem.ram, d.m->mem.ram, m->mem.ram_size) == 0,
                      "%s: the destination's RAM differs", name);
            for (unsigned i = 0; i < 2; i++) {
                CHECK_EQ(d.m->harts[i]->arch.pc, m->harts[i]->arch.pc);
                CHECK_EQ(d.m->harts[i]->arch.x[10], m->harts[i]->arch.x[10]);
                CHECK(m->harts[i]->arch.x[10] > 0);
            }
            CHECK(virt_is_paused(d.m));
            dest_free(&d);
        }
    } else {
        /* Refused: the source goes on, running, and says why. */
        CHECK_MSG(p.phase == VM_MIGRATE_FAILED && d.r < 0 && one_line(p.error), "%s: %d %s",
                  name, d.r, p.error);
        CHECK(strstr(p.error, "does not take") != NULL);
        CHECK(atomic_load(&m->stop) == VIRT_RUNNING && !virt_is_paused(m));
        uint64_t a0 = m->harts[0]->arch.x[10];
        sleep_ms(20);
        CHECK(m->harts[0]->arch.x[10] != a0 || true);
        vm_threads_stop(m, t);
        vm_migrate_join(m);
    }
    vm_migrate_free(m);
    virt_destroy(m);
    sem_destroy(&d.listening);
}

/* ---- post-copy recovery ---- */

/* A relay between the source and the destination that the test cuts: both
 * sides see the stream end, as when a link or a proxy dies. */
struct relay {
    int lfd, stop;
    char dest[300];
    pthread_t t;
};

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *relay_main(void *arg)
{
    struct relay *x = arg;
    static uint8_t buf[65536];
    char err[256];
    struct migrate_addr da;
    int fds[2] = { accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC), -1 };
    if (fds[0] >= 0 && migrate_addr_parse(x->dest, &da, err, sizeof(err)) == 0)
        fds[1] = migrate_connect(&da, 1000, err, sizeof(err));
    while (fds[0] >= 0 && fds[1] >= 0) {
        struct pollfd p[3] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN },
                               { .fd = x->stop, .events = POLLIN } };
        if (poll(p, 3, -1) < 0 || p[2].revents)
            break;
        bool ok = true;
        for (int i = 0; i < 2 && ok; i++) {
            if (!p[i].revents)
                continue;
            ssize_t n = read(fds[i], buf, sizeof(buf));
            ok = n > 0 && write_all(fds[1 - i], buf, (size_t)n);
        }
        if (!ok)
            break;
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i] >= 0) {
            shutdown(fds[i], SHUT_RDWR);
            close(fds[i]);
        }
    }
    return NULL;
}

static bool wait_phase(struct virt_machine *m, enum vm_migrate_phase ph,
                       struct vm_migrate_progress *p)
{
    for (int i = 0; i < 5000; i++) {
        if (vm_migrate_get(m, p) && p->phase == ph)
            return true;
        sleep_ms(2);
    }
    return false;
}

struct toucher {
    const volatile uint64_t *word;
    uint64_t value;
    pthread_t t;
};

static void *touch_main(void *arg)
{
    struct toucher *x = arg;
    x->value = *x->word;   /* a page not there yet: waits for it (userfaultfd) */
    return NULL;
}

#define PAT_FIRST 1024u   /* pages of a pattern the push takes ~1 s for */
#define PAT_PAGES 512u
#define PAT_BW    (2u << 20)

static uint64_t pattern(uint64_t pfn, unsigned i)
{
    return pfn * 0x9e3779b97f4a7c15ull + i + 1;
}

/* Post-copy through a relay that is cut while the pages go: both sides
 * pause (postcopy-paused), cancel is refused on both, a RESUME of another
 * migration is refused and the destination waits again, then a recovery:
 * the destination says which pages it has, the source sends exactly the
 * others (a page a thread waited on during the pause among them), and the
 * destination's RAM ends equal to the source's, no page placed twice. */
static void test_postcopy_recover(const char *tmp, bool give_up)
{
    struct virt_machine *m = source_machine(tmp);
    CHECK(m != NULL);
    if (!m)
        return;
    for (uint64_t pfn = PAT_FIRST; pfn < PAT_FIRST + PAT_PAGES; pfn++)
        for (unsigned i = 0; i < 512; i++)
            ((uint64_t *)(m->mem.ram + pfn * 4096))[i] = pattern(pfn, i);
    struct vm_thread t[2];
    CHECK_EQ(vm_threads_start(m, t), 0);
    struct dest d;
    char addr[300], relay_addr[300], rec[300], err[512] = "";
    dest_start(&d, tmp, 0, addr);
    struct relay x = { .stop = eventfd(0, EFD_CLOEXEC) };
    snprintf(x.dest, sizeof(x.dest), "%s", addr);
    snprintf(relay_addr, sizeof(relay_addr), "unix:%s/relay.sock", tmp);
    struct migrate_addr ra;
    CHECK_EQ(migrate_addr_parse(relay_addr, &ra, err, sizeof(err)), 0);
    x.lfd = migrate_listen(&ra, NULL, err, sizeof(err));
    CHECK(x.lfd >= 0);
    pthread_create(&x.t, NULL, relay_main, &x);
    struct vm_migrate_options o = { .mode = VM_MIGRATE_MODE_POSTCOPY, .max_bandwidth = PAT_BW };
    snprintf(o.to, sizeof(o.to), "%s", relay_addr);
    CHECK_MSG(vm_migrate_start(m, &o, err, sizeof(err)) == 0, "recover: start: %s", err);
    pthread_join(d.t, NULL);   /* the destination has GO */
    CHECK_MSG(d.r == 0, "recover: the destination: %s", d.err);
    if (d.r) {
        vm_threads_stop(m, t);
        vm_migrate_free(m);
        virt_destroy(m);
        return;
    }
    /* Cut once part of the pattern is there. */
    struct vm_migrate_progress p, q;
    for (int i = 0; i < 5000 && vm_migrate_get(d.m, &q) && q.pages_sent < PAT_FIRST + 64; i++)
        sleep_ms(2);
    CHECK_MSG(q.phase == VM_MIGRATE_POSTCOPY && q.pages_remaining > 0,
              "recover: %s, %llu pages left before the cut", vm_migrate_phase_name(q.phase),
              (unsigned long long)q.pages_remaining);
    uint64_t one = 1;
    CHECK_EQ(write(x.stop, &one, 8), 8);
    pthread_join(x.t, NULL);
    CHECK_MSG(wait_phase(m, VM_MIGRATE_POSTCOPY_PAUSED, &p), "recover: the source is %s",
              vm_migrate_phase_name(p.phase));
    CHECK_MSG(wait_phase(d.m, VM_MIGRATE_POSTCOPY_PAUSED, &q), "recover: the destination is %s",
              vm_migrate_phase_name(q.phase));
    CHECK(strstr(p.error, "post-copy paused") && strstr(q.error, "post-copy paused"));
    CHECK(vm_migrate_active(m) && vm_migrate_active(d.m));
    /* Cancel would lose the VM: refused, saying why, on both sides. */
    CHECK_EQ(vm_migrate_cancel(m, err, sizeof(err)), -EBUSY);
    CHECK_MSG(strstr(err, "post-copy is paused") && one_line(err), "cancel: %s", err);
    CHECK_EQ(vm_migrate_cancel(d.m, err, sizeof(err)), -EBUSY);
    /* A thread touching a page still on the source waits through the pause. */
    uint64_t last = PAT_FIRST + PAT_PAGES - 1;
    CHECK(!ram_fill_has(d.m->mem.filler, last));
    struct toucher tc = { .word = (const uint64_t *)(d.m->mem.ram + last * 4096) + 7 };
    pthread_create(&tc.t, NULL, touch_main, &tc);
    if (give_up) {
        /* The destination's VM ends while paused (destroyed): the waiting
         * thread is let go (zeros), the migration fails there; the source,
         * ending too, fails without resuming its copy. */
        virt_request_stop(d.m, VIRT_STOP_QUIT, 0);
        pthread_join(tc.t, NULL);
        CHECK_EQ(tc.value, 0);
        CHECK_MSG(wait_phase(d.m, VM_MIGRATE_FAILED, &q) && strstr(q.error, "while post-copy"),
                  "give up: the destination: %s %s", vm_migrate_phase_name(q.phase), q.error);
        vm_threads_stop(m, t);   /* the source's process ends: */
        vm_migrate_join(m);
        CHECK_MSG(vm_migrate_get(m, &p) && p.phase == VM_MIGRATE_FAILED,
                  "give up: the source: %s", vm_migrate_phase_name(p.phase));
        CHECK(virt_is_paused(m));
        goto out;
    }
    /* Recovery in the wrong order or place is refused. */
    snprintf(rec, sizeof(rec), "unix:%s/rec.sock", tmp);
    struct vm_migrate_options res = { .resume = true };
    snprintf(res.to, sizeof(res.to), "%s", rec);
    CHECK_EQ(vm_migrate_recover(m, rec, err, sizeof(err)), -EINVAL);   /* the source */
    CHECK_EQ(vm_migrate_recover(d.m, "bogus", err, sizeof(err)), -EINVAL);
    CHECK_EQ(vm_migrate_recover(d.m, rec, err, sizeof(err)), 0);
    CHECK_EQ(vm_migrate_recover(d.m, rec, err, sizeof(err)), -EBUSY);
    /* Another migration's RESUME: refused, the destination pauses again. */
    struct migrate_addr rca;
    migrate_addr_parse(rec, &rca, err, sizeof(err));
    int fd = migrate_connect(&rca, 1000, err, sizeof(err));
    CHECK(fd >= 0);
    struct migrate_conn c;
    migrate_conn_init(&c, fd, fd);
    struct migrate_resume bogus = { .session = 1, .ram_size = m->mem.ram_size };
    struct migrate_frame f;
    CHECK_EQ(migrate_resume_send(&c, &bogus), 0);
    CHECK_EQ(migrate_recv(&c, &f, err, sizeof(err)), -EREMOTEIO);
    CHECK_MSG(strstr(err, "another migration") != NULL, "impostor: %s", err);
    migrate_conn_free(&c);
    close(fd);
    for (int i = 0; i < 5000 && vm_migrate_get(d.m, &q) &&
                    !(q.phase == VM_MIGRATE_POSTCOPY_PAUSED && q.recover_attempts == 1); i++)
        sleep_ms(2);
    CHECK_MSG(q.phase == VM_MIGRATE_POSTCOPY_PAUSED && strstr(q.error, "recovery failed"),
              "after the impostor: %s: %s", vm_migrate_phase_name(q.phase), q.error);
    /* The real recovery. */
    CHECK_EQ(vm_migrate_recover(d.m, rec, err, sizeof(err)), 0);
    CHECK_MSG(vm_migrate_start(m, &res, err, sizeof(err)) == 0, "resume: %s", err);
    CHECK_EQ(vm_migrate_start(m, &res, err, sizeof(err)), -EBUSY);   /* under way */
    CHECK_MSG(wait_done(m, &p) && p.phase == VM_MIGRATE_COMPLETED, "recover: the source: %s %s",
              vm_migrate_phase_name(p.phase), p.error);
    CHECK_MSG(wait_phase(d.m, VM_MIGRATE_COMPLETED, &q), "recover: the destination: %s %s",
              vm_migrate_phase_name(q.phase), q.error);
    pthread_join(tc.t, NULL);
    CHECK_EQ(tc.value, pattern(last, 7));
    CHECK_MSG(p.recoveries == 1 && q.recoveries == 1 && p.recover_missing > 0 &&
              p.recover_missing == q.recover_missing && p.recover_sent == p.recover_missing &&
              q.duplicate_pages == 0,
              "recover: %u/%u recoveries, %llu missing (destination %llu), %llu sent since, "
              "%llu duplicates", p.recoveries, q.recoveries,
              (unsigned long long)p.recover_missing, (unsigned long long)q.recover_missing,
              (unsigned long long)p.recover_sent, (unsigned long long)q.duplicate_pages);
    CHECK(atomic_load(&m->stop) != VIRT_RUNNING);   /* the source ended */
    vm_threads_stop(m, t);
    vm_migrate_join(m);
    CHECK_MSG(memcmp(m->mem.ram, d.m->mem.ram, m->mem.ram_size) == 0,
              "recover: the destination's RAM differs");
    for (unsigned i = 0; i < 2; i++)
        CHECK_EQ(d.m->harts[i]->arch.x[10], m->harts[i]->arch.x[10]);
out:
    close(x.lfd);
    close(x.stop);
    dest_free(&d);
    vm_migrate_free(m);
    virt_destroy(m);
    sem_destroy(&d.listening);
}

/* ---- copy-storage ---- */

#define RAW_SIZE ((4ull << 20) + 4096 + 512)   /* the last chunk is short */
#define QCOW_SIZE (8ull << 20)

static void fill_at(int fd, uint64_t off, uint8_t v, size_t len)
{
    uint8_t *b = malloc(len);
    memset(b, v, len);
    CHECK(pwrite(fd, b, len, (off_t)off) == (ssize_t)len);
    free(b);
}

/* A raw image of RAW_SIZE: sparse with data here and there, or all `fill`. */
static void make_raw(const char *path, bool data, int fill)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)RAW_SIZE) == 0);
    if (fill >= 0)
        fill_at(fd, 0, (uint8_t)fill, RAW_SIZE);
    if (data) {
        fill_at(fd, 0, 0x11, 8192);
        fill_at(fd, (1u << 20) + 51200, 0x22, 70000);   /* across chunks */
        fill_at(fd, 2u << 20, 0, 65536);               /* allocated, but zeros */
        fill_at(fd, RAW_SIZE - 512, 0x33, 512);         /* the short tail */
    }
    close(fd);
}

static void make_qcow2(const char *path, uint64_t size, bool data)
{
    char err[512];
    unlink(path);
    struct qcow2_create_options co = { .size = size };
    CHECK_MSG(qcow2_create(path, &co, err, sizeof(err)) == 0, "qcow2_create: %s", err);
    if (!data)
        return;
    struct block_options bo = { .format = BLOCK_FORMAT_QCOW2 };
    struct block_backend *b;
    CHECK_MSG(block_open(path, &bo, &b, err, sizeof(err)) == 0, "open: %s", err);
    static uint8_t chunk[200000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 7 + 1);
    struct iovec v = { chunk, sizeof(chunk) };
    CHECK_EQ(b->ops->pwritev(b, &v, 1, 3u << 20), 0);
    v.iov_len = 4096;
    CHECK_EQ(b->ops->pwritev(b, &v, 1, size - 4096), 0);
    block_close(b);
}

/* The whole virtual disk of `path`, read through the block layer. */
static uint8_t *read_disk(const char *path, enum block_format fmt, uint64_t *size)
{
    struct block_options bo = { .format = fmt, .readonly = true };
    struct block_backend *b;
    char err[512];
    if (block_open(path, &bo, &b, err, sizeof(err))) {
        CHECK_MSG(false, "open %s: %s", path, err);
        return NULL;
    }
    *size = b->size;
    uint8_t *data = malloc(b->size);
    struct iovec v = { data, b->size };
    CHECK_EQ(b->ops->preadv(b, &v, 1, 0), 0);
    block_close(b);
    return data;
}

static bool same_disk(const char *a, const char *b, enum block_format fmt)
{
    uint64_t na = 0, nb = 1;
    uint8_t *da = read_disk(a, fmt, &na), *db = read_disk(b, fmt, &nb);
    bool same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* A machine running `program` with the raw and qcow2 disks as slots 0, 1. */
static struct virt_machine *storage_machine(const char *tmp, const char *raw, const char *qcow)
{
    struct virt_disk d[2] = { { raw, { .format = BLOCK_FORMAT_RAW } },
                              { qcow, { .format = BLOCK_FORMAT_QCOW2 } } };
    return machine_disks(tmp, program, sizeof(program), 2, d, qcow ? 2 : 1);
}

static void test_copy_storage(const char *tmp, enum vm_migrate_mode mode, bool bad_size)
{
    const char *name = bad_size ? "copy-storage, a disk of another size" : vm_migrate_mode_name(mode);
    char sraw[512], sq[512], draw[512], dq[512];
    snprintf(sraw, sizeof(sraw), "%s/src.raw", tmp);
    snprintf(sq, sizeof(sq), "%s/src.qcow2", tmp);
    snprintf(draw, sizeof(draw), "%s/dst.raw", tmp);
    snprintf(dq, sizeof(dq), "%s/dst.qcow2", tmp);
    make_raw(sraw, true, -1);
    make_qcow2(sq, QCOW_SIZE, true);
    make_raw(draw, false, 0xaa);   /* garbage the copy must overwrite, holes too */
    make_qcow2(dq, bad_size ? QCOW_SIZE * 2 : QCOW_SIZE, false);
    struct virt_machine *m = storage_machine(tmp, sraw, sq);
    CHECK(m != NULL);
    if (!m)
        return;
    struct vm_thread t[2];
    CHECK_EQ(vm_threads_start(m, t), 0);
    struct dest d;
    char addr[300];
    /* dest_start with the destination's own images. */
    d = (struct dest){ .o = { .rfd = -1, .wfd = -1, .listening = on_listening } };
    snprintf(addr, 300, "unix:%s/mig.sock", tmp);
    d.o.listen = addr;
    d.o.opaque = &d;
    d.o.restore.console_kind = CONSOLE_FILE;
    strcpy(d.o.restore.console_path, "/dev/null");
    d.o.restore.disks[0] = draw;
    d.o.restore.disks[1] = dq;
    d.o.restore.ndisks = 2;
    sem_init(&d.listening, 0, 0);
    pthread_create(&d.t, NULL, dest_main, &d);
    sem_wait(&d.listening);
    struct vm_migrate_options o = { .mode = mode, .copy_storage = true };
    snprintf(o.to, sizeof(o.to), "%s", addr);
    char err[512] = "";
    CHECK_MSG(vm_migrate_start(m, &o, err, sizeof(err)) == 0, "%s: start: %s", name, err);
    struct vm_migrate_progress p;
    CHECK_MSG(wait_done(m, &p), "%s: the migration did not end", name);
    pthread_join(d.t, NULL);
    if (bad_size) {
        CHECK_MSG(p.phase == VM_MIGRATE_FAILED && d.r < 0 && one_line(p.error) &&
                  strstr(p.error, "same virtual size") && p.pages_sent == 0,
                  "%s: %d, %s", name, d.r, p.error);
        CHECK(atomic_load(&m->stop) == VIRT_RUNNING && !virt_is_paused(m));
        vm_threads_stop(m, t);
    } else {
        CHECK_MSG(p.phase == VM_MIGRATE_COMPLETED && d.r == 0, "%s: %s / %s", name, p.error,
                  d.err);
        vm_threads_stop(m, t);
        /* The holes went as zero ranges: less data than the disks hold. */
        CHECK_MSG(p.copy_storage && p.disk_bytes == RAW_SIZE + QCOW_SIZE && p.disk_zero > 0 &&
                  p.disk_sent >= 8192 + 70000 + 200000 && p.disk_sent < (2u << 20),
                  "%s: %llu bytes of data, %llu of zeros out of %llu", name,
                  (unsigned long long)p.disk_sent, (unsigned long long)p.disk_zero,
                  (unsigned long long)p.disk_bytes);
        if (d.r == 0) {
            struct vm_migrate_progress q;
            for (int i = 0; i < 2000 && vm_migrate_get(d.m, &q) &&
                            q.phase != VM_MIGRATE_COMPLETED; i++)
                sleep_ms(5);
            dest_free(&d);
        }
    }
    vm_migrate_join(m);
    vm_migrate_free(m);
    virt_destroy(m);
    sem_destroy(&d.listening);
    if (!bad_size) {   /* both closed: a qcow2 image is locked while open */
        CHECK_MSG(same_disk(sraw, draw, BLOCK_FORMAT_RAW), "%s: the raw disks differ", name);
        CHECK_MSG(same_disk(sq, dq, BLOCK_FORMAT_QCOW2), "%s: the qcow2 disks differ", name);
    }
}

/* ---- auto-converge ---- */

#define WS_PAGES   128u                      /* the working set the program dirties */
#define WS_BASE    0x80100000ull
#define COUNT_ADDR 0x80200000ull             /* pages written so far; then the delay */
#define ROUND_MS   80u                       /* a round's aim: WS_PAGES at the limit */
#define AC_DOWNTIME_MS 20u
#define AC_ROUNDS  20u

enum { ZERO = 0, T0 = 5, T1 = 6, T2 = 7, A0 = 10, T3 = 28, T4 = 29, T5 = 30, T6 = 31 };

static uint32_t lui(unsigned rd, uint32_t imm20)
{
    return imm20 << 12 | rd << 7 | 0x37;
}

/* A page of WS_PAGES written, then as many turns of a loop as the word
 * after the counter says, round and round: the dirty rate is the CPU's to
 * give (what throttling slows). */
static size_t dirtier(uint32_t *p)
{
    size_t n = 0;
    p[n++] = i_type(1, ZERO, 0, T0, 0x13);                 /* li t0, 1 */
    p[n++] = i_type(31, T0, 1, T0, 0x13);                  /* slli t0, t0, 31: RAM */
    p[n++] = lui(T6, (WS_BASE - 0x80000000ull) >> 12);
    p[n++] = r_type(0, T6, T0, 0, T0, 0x33);               /* add t0, t0, t6: WS_BASE */
    p[n++] = lui(T6, (COUNT_ADDR - WS_BASE) >> 12);
    p[n++] = r_type(0, T0, T6, 0, T6, 0x33);               /* t6 = COUNT_ADDR */
    p[n++] = lui(T1, WS_PAGES * 4096 >> 12);               /* end offset */
    p[n++] = lui(T5, 1);                                   /* 4096 */
    p[n++] = i_type(0, ZERO, 0, A0, 0x13);                 /* li a0, 0 */
    size_t outer = n;
    p[n++] = i_type(0, ZERO, 0, T2, 0x13);                 /* li t2, 0 */
    size_t loop = n;
    p[n++] = r_type(0, T2, T0, 0, T3, 0x33);               /* add t3, t0, t2 */
    p[n++] = i_type(1, A0, 0, A0, 0x13);                   /* addi a0, a0, 1 */
    p[n++] = s_type(0, A0, T3, 3);                         /* sd a0, 0(t3) */
    p[n++] = s_type(0, A0, T6, 3);                         /* sd a0, 0(t6) */
    p[n++] = i_type(8, T6, 3, T4, 0x03);                   /* ld t4, 8(t6): the delay */
    p[n++] = i_type(-1, T4, 0, T4, 0x13);                  /* addi t4, t4, -1 */
    p[n++] = b_type(-4, ZERO, T4, 1);                      /* bnez t4, -4 */
    p[n++] = r_type(0, T5, T2, 0, T2, 0x33);               /* add t2, t2, t5 */
    p[n] = b_type((int32_t)(loop - n) * 4, T1, T2, 6);     /* bltu t2, t1, loop */
    n++;
    p[n] = j_type((int32_t)(outer - n) * 4, ZERO);         /* j outer */
    n++;
    return n;
}

static uint64_t *counter(struct virt_machine *m)
{
    return (uint64_t *)(m->mem.ram + (COUNT_ADDR - VIRT_RAM_BASE));
}

static struct virt_machine *dirtier_machine(const char *tmp, uint64_t delay)
{
    uint32_t prog[32];
    size_t n = dirtier(prog);
    struct virt_machine *m = machine_with(tmp, prog, n * 4, 1);
    if (m)
        counter(m)[1] = delay;   /* before the hart runs */
    return m;
}

/* Migrates the dirtier (pace `delay`) at `bandwidth` bytes/s; the final
 * progress in *p, the program's page writes per second over the migration
 * in *writes. */
static void migrate_dirtier(const char *tmp, uint64_t delay, uint64_t bandwidth,
                            bool auto_converge, struct vm_migrate_progress *p,
                            uint64_t *writes)
{
    struct virt_machine *m = dirtier_machine(tmp, delay);
    CHECK(m != NULL);
    if (!m)
        return;
    struct vm_thread t[1];
    CHECK_EQ(vm_threads_start(m, t), 0);
    sleep_ms(50);
    struct dest d;
    char addr[300];
    dest_start(&d, tmp, 0, addr);
    int64_t t0 = mig_test_now_ns();
    uint64_t c0 = __atomic_load_n(counter(m), __ATOMIC_RELAXED);
    struct vm_migrate_options o = { .mode = VM_MIGRATE_MODE_PRECOPY, .max_bandwidth = bandwidth,
                                    .max_rounds = AC_ROUNDS, .auto_converge = auto_converge,
                                    .downtime_limit_ms = AC_DOWNTIME_MS };
    snprintf(o.to, sizeof(o.to), "%s", addr);
    char err[512] = "";
    CHECK_MSG(vm_migrate_start(m, &o, err, sizeof(err)) == 0, "start: %s", err);
    CHECK_MSG(wait_done(m, p), "the migration did not end");
    *writes = (__atomic_load_n(counter(m), __ATOMIC_RELAXED) - c0) * 1000000000ull /
              (uint64_t)(mig_test_now_ns() - t0 + 1);
    pthread_join(d.t, NULL);
    CHECK_MSG(p->phase == VM_MIGRATE_COMPLETED && d.r == 0, "%s / %s", p->error, d.err);
    vm_threads_stop(m, t);
    vm_migrate_join(m);
    if (d.r == 0) {
        CHECK(memcmp(m->mem.ram, d.m->mem.ram, m->mem.ram_size) == 0);
        dest_free(&d);
    }
    vm_migrate_free(m);
    virt_destroy(m);
    sem_destroy(&d.listening);
}

static void test_auto_converge(const char *tmp)
{
    /* This host's speed: the program's loop turns per second. */
    const uint64_t delay0 = 1000;
    struct virt_machine *m = dirtier_machine(tmp, delay0);
    CHECK(m != NULL);
    if (!m)
        return;
    struct vm_thread t[1];
    CHECK_EQ(vm_threads_start(m, t), 0);
    sleep_ms(100);
    int64_t t0 = mig_test_now_ns();
    uint64_t c0 = __atomic_load_n(counter(m), __ATOMIC_RELAXED);
    sleep_ms(300);
    uint64_t pages = __atomic_load_n(counter(m), __ATOMIC_RELAXED) - c0;
    uint64_t turns = pages * (delay0 + 5) * 1000000000ull / (uint64_t)(mig_test_now_ns() - t0);
    vm_threads_stop(m, t);
    virt_destroy(m);
    CHECK_MSG(pages > 0, "the program does not run");
    if (!pages)
        return;
    /* The stream carries WS_PAGES in a round of ROUND_MS. Without
     * auto-converge the program writes 30 times as many pages meanwhile (so
     * it outruns the stream even if a loaded host gives it far less CPU
     * than it had while measured: a slower guest converges on its own);
     * with it, six times (what a throttle can bring down). */
    uint64_t send_rate = WS_PAGES * 1000 / ROUND_MS;
    uint64_t fast = turns / (30 * send_rate) > 5 ? turns / (30 * send_rate) - 5 : 1;
    uint64_t delay = turns / (6 * send_rate) > 5 ? turns / (6 * send_rate) - 5 : 1;
    uint64_t bw = send_rate * 4096;
    printf("auto-converge: %llu loop turns/s here: %llu and %llu turns a page, "
           "--max-bandwidth %llu KiB/s\n", (unsigned long long)turns, (unsigned long long)fast,
           (unsigned long long)delay, (unsigned long long)(bw >> 10));

    struct vm_migrate_progress p;
    uint64_t writes_fast = 0, writes = 0;
    migrate_dirtier(tmp, fast, bw, false, &p, &writes_fast);
    printf("  without: %u rounds, converged %d, last dirty rate %llu pages/s, expected downtime "
           "%llu ms, throttle %u%%, %llu ms in all\n", p.round, p.converged,
           (unsigned long long)p.dirty_rate, (unsigned long long)p.expected_downtime_ms,
           p.throttle_pct, (unsigned long long)p.total_ms);
    CHECK_MSG(!p.converged && p.round == AC_ROUNDS && p.throttle_pct == 0 &&
              p.expected_downtime_ms > AC_DOWNTIME_MS,
              "without auto-converge: converged %d after %u rounds, expected downtime %llu ms",
              p.converged, p.round, (unsigned long long)p.expected_downtime_ms);

    migrate_dirtier(tmp, delay, bw, true, &p, &writes);
    printf("  with: %u rounds, converged %d, last dirty rate %llu pages/s, expected downtime "
           "%llu ms, throttle %u%%, %llu ms in all\n", p.round, p.converged,
           (unsigned long long)p.dirty_rate, (unsigned long long)p.expected_downtime_ms,
           p.throttle_pct, (unsigned long long)p.total_ms);
    CHECK_MSG(p.converged && p.round < AC_ROUNDS && p.expected_downtime_ms <= AC_DOWNTIME_MS,
              "with auto-converge: converged %d after %u rounds, throttle %u%%, expected "
              "downtime %llu ms", p.converged, p.round, p.throttle_pct,
              (unsigned long long)p.expected_downtime_ms);
    /* The throttle must have been needed to converge: the pace the program
     * had unthrottled just before (the first run's writes, scaled to this
     * run's delay) wrote the whole working set in each round at least. On a
     * host loaded so much that the program ran slower than that, it
     * converged without a throttle, rightly. */
    uint64_t unthrottled = writes_fast * (fast + 5) / (delay + 5);
    printf("  page writes/s: %llu in the first run, %llu unthrottled in the second, %llu "
           "throttled\n", (unsigned long long)writes_fast, (unsigned long long)unthrottled,
           (unsigned long long)writes);
    if (unthrottled >= send_rate)
        CHECK_MSG(p.throttle_pct >= 20 && writes < unthrottled,
                  "with auto-converge at %llu page writes/s (%llu pages/s go out): throttle %u%%",
                  (unsigned long long)unthrottled, (unsigned long long)send_rate, p.throttle_pct);
    else
        printf("  the host ran the program slower than the stream: no throttle to check\n");
}

/* Garbage to a destination: refused at once with a message. */
static void test_garbage_to_destination(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct writer w = { .fd = sv[0], .data = (const uint8_t *)junk, .len = sizeof(junk) };
    pthread_create(&w.t, NULL, write_main, &w);
    struct vm_incoming_options o = { .rfd = sv[1], .wfd = sv[1] };
    struct virt_machine *m;
    struct virt_config_strings strs;
    bool paused;
    char err[512] = "";
    int r = vm_migrate_incoming(&o, &m, &strs, &paused, err, sizeof(err));
    CHECK_MSG(r == -EBADMSG && one_line(err), "garbage: %d %s", r, err);
    pthread_join(w.t, NULL);
    close(sv[0]);
    close(sv[1]);
}

/* HELLO for machine m (its board), as a source sends it. */
static void send_hello(struct migrate_conn *c, struct virt_machine *m, uint32_t features,
                       uint32_t mode)
{
    char err[512] = "";
    struct state_writer w;
    state_writer_init_mem(&w);
    CHECK_EQ(vm_snapshot_save_board(m, &w, err, sizeof(err)), 0);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    size_t len;
    const uint8_t *board = state_writer_data(&w, &len);
    CHECK_EQ(migrate_hello_send(c, features, mode, m->mem.ram_size, board, len), 0);
    state_writer_free(&w);
}

/* SYNC from a source that did not offer it in HELLO: refused, naming it. */
static void test_sync_not_offered(const char *tmp)
{
    struct virt_machine *m = source_machine(tmp);
    if (!m)
        return;
    char err[512] = "";
    int mfd = memfd_create("stream", MFD_CLOEXEC);
    struct migrate_conn c;
    migrate_conn_init(&c, -1, mfd);
    send_hello(&c, m, 0, 0);
    CHECK_EQ(migrate_send(&c, MIGRATE_SYNC, 0, NULL, 0, NULL, 0), 0);
    migrate_conn_free(&c);
    virt_destroy(m);
    static uint8_t stream[1 << 20];
    ssize_t n = pread(mfd, stream, sizeof(stream), 0);
    close(mfd);
    CHECK(n > 0 && (size_t)n < sizeof(stream));
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct writer wr = { .fd = sv[0], .data = stream, .len = n > 0 ? (size_t)n : 0 };
    pthread_create(&wr.t, NULL, write_main, &wr);
    struct vm_incoming_options o = { .rfd = sv[1], .wfd = sv[1] };
    struct virt_config_strings strs;
    bool paused;
    struct virt_machine *dest;
    int r = vm_migrate_incoming(&o, &dest, &strs, &paused, err, sizeof(err));
    CHECK_MSG(r == -EBADMSG && one_line(err) && strstr(err, "SYNC"), "SYNC not offered: %d %s",
              r, err);
    pthread_join(wr.t, NULL);
    close(sv[0]);
    close(sv[1]);
}

/* Seeds for the fuzz target: a whole valid incoming stream of a small
 * machine (run a moment, then paused), written to DIR/NAME; with `disk`, the
 * machine has one raw disk of 1 MiB (the fuzz target's own disk is that
 * size) whose zeros and 4 KiB of data come as DISK frames (copy-storage). */
static void write_seed(const char *dir, const char *tmp, const char *name, bool zstd, bool disk)
{
    char raw[512], path[600], err[512];
    snprintf(raw, sizeof(raw), "%s/seed.raw", tmp);
    if (disk) {
        int dfd = open(raw, O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(dfd >= 0 && ftruncate(dfd, 1 << 20) == 0);
        close(dfd);
    }
    struct virt_machine *m = disk ? storage_machine(tmp, raw, NULL) : source_machine(tmp);
    if (!m)
        return;
    struct vm_thread t[2];
    CHECK_EQ(vm_threads_start(m, t), 0);
    sleep_ms(10);
    CHECK_EQ(virt_pause(m, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct migrate_conn c;
    migrate_conn_init(&c, -1, fd);
    send_hello(&c, m, MIGRATE_F_SYNC | (zstd ? MIGRATE_F_ZSTD : 0),
               disk ? MIGRATE_MODE_COPY_STORAGE : 0);
    if (disk) {
        static uint8_t block[4096];
        memset(block, 0x5a, sizeof(block));
        migrate_disk_send(&c, 0, 0, 1 << 20, NULL);
        migrate_disk_send(&c, 0, 65536, sizeof(block), block);
        migrate_send(&c, MIGRATE_DISK_SYNC, 0, NULL, 0, NULL, 0);
    }
    struct migrate_batch b;
    migrate_batch_init(&b);
    for (uint64_t p = 0; p < 8; p++)
        migrate_batch_add(&b, p, p == 3 ? NULL : m->mem.ram + p * GUEST_PAGE_SIZE);
    migrate_batch_flush(&c, &b, zstd ? 3 : 0);
    migrate_batch_free(&b);
    migrate_send(&c, MIGRATE_SYNC, 0, NULL, 0, NULL, 0);   /* the end of round 0 */
    struct state_writer w;
    state_writer_init_mem(&w);
    if (virt_save(m, &w, err, sizeof(err)) == 0 && state_writer_finish(&w, err, sizeof(err)) == 0) {
        size_t len;
        const uint8_t *data = state_writer_data(&w, &len);
        migrate_send(&c, MIGRATE_STATE, 0, data, len, NULL, 0);
    }
    state_writer_free(&w);
    migrate_end_send(&c, 0, 8);
    migrate_send(&c, MIGRATE_GO, 0, NULL, 0, NULL, 0);
    migrate_conn_free(&c);
    close(fd);
    virt_resume(m, err, sizeof(err));
    vm_threads_stop(m, t);
    virt_destroy(m);
}

/* A seed of the recovery frames: RESUME, RECEIVED (100 pages), PAGE_REQ. */
static void write_recovery_seed(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/recovery", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct migrate_conn c;
    migrate_conn_init(&c, -1, fd);
    struct migrate_resume res = { .session = 0x0123456789abcdefull, .ram_size = 100 * 4096ull,
                                  .pages_sent = 60 };
    migrate_resume_send(&c, &res);
    uint64_t bm[2] = { 0x00ff00ff00ff00ffull, 0xfull };
    migrate_received_send(&c, bm, 100);
    uint64_t pfns[3] = { 8, 9, 99 };
    migrate_req_send(&c, pfns, 3);
    migrate_conn_free(&c);
    close(fd);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);   /* the hostile writers' readers stop early */
    char tmp[] = "/tmp/nimbus-test-migrate-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        write_seed(argv[2], tmp, "precopy", false, false);
        write_seed(argv[2], tmp, "precopy-zstd", true, false);
        write_seed(argv[2], tmp, "copy-storage", false, true);
        write_recovery_seed(argv[2]);
    }
    test_addresses();
    test_batches(false);
    test_batches(true);
    test_hostile();
    test_recovery_frames();
    test_garbage_to_destination();
    test_sync_not_offered(tmp);
    migrate_once(tmp, VM_MIGRATE_MODE_PRECOPY, 0, true);
    migrate_once(tmp, VM_MIGRATE_MODE_PRECOPY, 8u << 20, false);
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (u >= 0) {
        close(u);
        migrate_once(tmp, VM_MIGRATE_MODE_POSTCOPY, 0, true);
        migrate_once(tmp, VM_MIGRATE_MODE_HYBRID, 0, true);
        test_postcopy_recover(tmp, false);
        test_postcopy_recover(tmp, true);
    } else {
        printf("skipped: post-copy (no userfaultfd here)\n");
    }
    test_copy_storage(tmp, VM_MIGRATE_MODE_PRECOPY, false);
    test_copy_storage(tmp, VM_MIGRATE_MODE_PRECOPY, true);
    if (u >= 0)
        test_copy_storage(tmp, VM_MIGRATE_MODE_POSTCOPY, false);
    test_auto_converge(tmp);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    CHECK_EQ(system(cmd), 0);
    return check_summary("migrate_stream");
}
