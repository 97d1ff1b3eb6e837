/* Dirty-page logging (mem/dirty_log.h, machine/virt_dirty.h):
 *  - the bitmap: enable makes every page dirty, collect fetches and clears;
 *  - host writers: guest_mem_write/zero and the balloon's guest_mem_discard
 *    mark exactly the pages they change;
 *  - a hart running a small M-mode program, interpreted and translated:
 *    stores, AMOs, LR/SC and misaligned page-crossing stores mark exactly
 *    the pages written; after a collect nothing until written again; a
 *    store through a write TLB entry cached before the collect is caught;
 *  - virtqueue DMA: a device-writable buffer written after a collect is
 *    reported once the chain is used;
 *  - a whole virt machine with two hart threads running random stores and
 *    AMOs (interpreter, then translator): a shadow copy built from round
 *    after round of collects (taken while running) equals RAM whenever the
 *    VM is paused and collected once more, as pre-copy migration needs. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "rv_encode.h"
#include "cpu/cpu_internal.h"
#include "cpu/jit/jit.h"
#include "machine/virt.h"
#include "machine/virt_dirty.h"
#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"
#include "vm_threads.h"

#define RAM_BASE 0x80000000ull

/* ---- instruction encoders (rv_encode.h), and: ---- */
static uint32_t lui(unsigned rd, uint32_t imm20) { return imm20 << 12 | rd << 7 | 0x37; }
static uint32_t add(unsigned rd, unsigned a, unsigned b) { return r_type(0, b, a, 0, rd, 0x33); }
static uint32_t xor_(unsigned rd, unsigned a, unsigned b) { return r_type(0, b, a, 4, rd, 0x33); }
static uint32_t addi(unsigned rd, unsigned a, int32_t imm) { return i_type(imm, a, 0, rd, 0x13); }
static uint32_t andi(unsigned rd, unsigned a, int32_t imm) { return i_type(imm, a, 7, rd, 0x13); }
static uint32_t slli(unsigned rd, unsigned a, unsigned sh) { return i_type((int32_t)sh, a, 1, rd, 0x13); }
static uint32_t srli(unsigned rd, unsigned a, unsigned sh) { return i_type((int32_t)sh, a, 5, rd, 0x13); }
static uint32_t sd(unsigned rs2, unsigned base, int32_t off) { return s_type(off, rs2, base, 3); }
static uint32_t amoadd_d(unsigned rd, unsigned rs2, unsigned base) { return r_type(0x00, rs2, base, 3, rd, 0x2f); }
static uint32_t lr_d(unsigned rd, unsigned base) { return r_type(0x08, 0, base, 3, rd, 0x2f); }
static uint32_t sc_d(unsigned rd, unsigned rs2, unsigned base) { return r_type(0x0c, rs2, base, 3, rd, 0x2f); }
#define WFI 0x10500073u

/* ---- helpers ---- */

static bool bit(const uint64_t *bm, uint64_t pfn)
{
    return (bm[pfn / 64] >> (pfn % 64)) & 1;
}

/* True if exactly the pages in want[0, n) are set in bm (of `words`). */
static bool exactly(const uint64_t *bm, size_t words, const uint64_t *want, unsigned n)
{
    uint64_t count = 0;
    for (size_t w = 0; w < words; w++)
        count += (uint64_t)__builtin_popcountll(bm[w]);
    if (count != n) {
        fprintf(stderr, "  %llu pages dirty, %u expected:", (unsigned long long)count, n);
        for (size_t w = 0; w < words; w++)
            for (uint64_t b = bm[w]; b; b &= b - 1)
                fprintf(stderr, " %llu", (unsigned long long)(w * 64 + (uint64_t)__builtin_ctzll(b)));
        fprintf(stderr, "\n");
        return false;
    }
    for (unsigned i = 0; i < n; i++)
        if (!bit(bm, want[i]))
            return false;
    return true;
}

/* ---- the bitmap and host writers ---- */

static void test_mem_writers(void)
{
    struct guest_mem mem;
    const uint64_t pages = 300;   /* not a multiple of 64 */
    CHECK_EQ(guest_mem_init(&mem, RAM_BASE, pages * GUEST_PAGE_SIZE), 0);
    size_t words = dirty_log_words(&mem.dirty);
    CHECK_EQ(words, 5);
    uint64_t bm[5];
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, 4), -EINVAL);   /* too short */

    /* Off: nothing is marked. */
    uint8_t buf[3 * 4096];
    memset(buf, 0x5a, sizeof(buf));
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE + 0x1000, buf, 16), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);

    dirty_log_enable(&mem.dirty);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), (int64_t)pages);
    CHECK_EQ(bm[4], (1ull << (pages - 256)) - 1);   /* no bits past the last page */
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);

    /* A write across a page boundary marks both pages. */
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE + 5 * 4096 - 4, buf, 8), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 2);
    CHECK(exactly(bm, words, (const uint64_t[]){ 4, 5 }, 2));
    /* Out of RAM: refused, nothing marked. */
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE + pages * 4096 - 4, buf, 8), -EFAULT);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);

    /* guest_mem_zero: a partial page, whole pages, a partial page. */
    memset(mem.ram + 10 * 4096, 0x77, 4 * 4096);
    CHECK_EQ(guest_mem_zero(&mem, RAM_BASE + 10 * 4096 + 100, 3 * 4096), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 4);
    CHECK(exactly(bm, words, (const uint64_t[]){ 10, 11, 12, 13 }, 4));
    CHECK_EQ(mem.ram[10 * 4096 + 99], 0x77);
    CHECK_EQ(mem.ram[13 * 4096 + 100], 0x77);
    CHECK_EQ(mem.ram[12 * 4096], 0);

    /* The balloon's path: discarded pages (now reading zero) are marked;
     * partial host pages at the ends are not touched, so not marked. */
    memset(mem.ram + 40 * 4096, 0x33, 4 * 4096);
    CHECK_EQ(guest_mem_discard(&mem, RAM_BASE + 40 * 4096, 3 * 4096), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 3);
    CHECK(exactly(bm, words, (const uint64_t[]){ 40, 41, 42 }, 3));
    CHECK_EQ(mem.ram[41 * 4096 + 7], 0);
    CHECK_EQ(guest_mem_discard(&mem, RAM_BASE + 50 * 4096 + 8, 100), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);

    /* Re-enabling makes everything dirty again; disabled, nothing counts. */
    dirty_log_enable(&mem.dirty);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), (int64_t)pages);
    dirty_log_disable(&mem.dirty);
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE, buf, sizeof(buf)), 0);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);
    guest_mem_destroy(&mem);
}

/* ---- one hart, driven by this thread ---- */

#define HART_RAM   (4ull << 20)
#define HART_PAGES (HART_RAM >> 12)
#define CODE_OFF   0x1000u

struct rig {
    struct guest_mem mem;
    struct timebase tb;
    struct hart *hart;
    uint64_t bm[HART_PAGES / 64];
};

static void rig_init(struct rig *r, bool jit)
{
    memset(r, 0, sizeof(*r));
    CHECK_EQ(guest_mem_init(&r->mem, RAM_BASE, HART_RAM), 0);
    timebase_init(&r->tb);
    if (posix_memalign((void **)&r->hart, 4096, sizeof(*r->hart)))
        exit(1);
    CHECK_EQ(hart_init(r->hart, 0, &r->mem, &r->tb, RAM_BASE + CODE_OFF), 0);
    if (jit)
        CHECK_EQ(jit_create(r->hart, 1u << 20, 0), 0);   /* translate at once */
    atomic_store(&r->hart->arch.state, HART_STARTED);
}

static void rig_destroy(struct rig *r)
{
    jit_destroy(r->hart);
    hart_destroy(r->hart);
    free(r->hart);
    guest_mem_destroy(&r->mem);
}

/* Writes `code` at CODE_OFF and makes the hart start there, keeping its
 * TLB: a store may go through a write entry of an earlier run. x10 holds
 * RAM's base, x6 the value to store. */
static void rig_run(struct rig *r, const uint32_t *code, unsigned n, uint64_t value)
{
    memcpy(r->mem.ram + CODE_OFF, code, n * 4);
    hart_fence_i(r->hart);
    r->hart->arch.pc = RAM_BASE + CODE_OFF;
    r->hart->arch.x[10] = RAM_BASE;
    r->hart->arch.x[6] = value;
    enum hart_exit e = hart_run(r->hart, 100000);
    CHECK_EQ(e, HART_EXIT_WFI);
}

/* The whole collect on this thread, the hart not running: (1) fetch and
 * clear, (2) drop write entries. */
static int64_t rig_collect(struct rig *r)
{
    int64_t n = dirty_log_collect(&r->mem.dirty, r->bm, HART_PAGES / 64);
    hart_drop_writes(r->hart);
    return n;
}

/* A program storing x6 to offset 8 of each page in pages[], twice (a loop,
 * so the second pass hits the write TLB entries the first installed). */
static unsigned store_program(uint32_t *code, const uint64_t *pages, unsigned n)
{
    unsigned k = 0;
    code[k++] = addi(7, 0, 2);
    unsigned loop = k;
    for (unsigned i = 0; i < n; i++) {
        code[k++] = lui(5, (uint32_t)pages[i]);   /* pages[i] << 12 */
        code[k++] = add(5, 5, 10);
        code[k++] = sd(6, 5, 8);
    }
    code[k++] = addi(7, 7, -1);
    code[k] = b_type((int32_t)(loop - k) * 4, 0, 7, 1);   /* bne x7, x0, loop */
    k++;
    code[k++] = WFI;
    return k;
}

static uint64_t ram_word(struct rig *r, uint64_t page, unsigned off)
{
    uint64_t v;
    memcpy(&v, r->mem.ram + page * 4096 + off, 8);
    return v;
}

static void test_hart(bool jit)
{
    static struct rig r;
    rig_init(&r, jit);
    uint32_t code[256];
    const uint64_t pages[] = { 3, 7, 8, 100, 1000 };
    unsigned np = sizeof(pages) / sizeof(pages[0]);
    unsigned n = store_program(code, pages, np);

    /* The code page is written by the test, before logging starts. */
    rig_run(&r, code, n, 1);   /* warm: TLB entries (read, fetch, write) */
    dirty_log_enable(&r.mem.dirty);
    CHECK_EQ(rig_collect(&r), (int64_t)HART_PAGES);

    /* Exactly the pages stored to, then nothing until written again. */
    rig_run(&r, code, n, 2);
    CHECK_EQ(rig_collect(&r), np);
    CHECK(exactly(r.bm, HART_PAGES / 64, pages, np));
    CHECK_EQ(rig_collect(&r), 0);
    rig_run(&r, code, n, 3);
    CHECK_EQ(rig_collect(&r), np);
    CHECK(exactly(r.bm, HART_PAGES / 64, pages, np));

    /* The race of a collect with a hart holding write entries: the bits are
     * fetched and cleared (1), the hart stores through its cached entries
     * before it drops them, unmarked; the copy made after (2) has those
     * stores, and every store after (2) is marked again. */
    rig_run(&r, code, n, 4);                         /* entries installed */
    CHECK_EQ(dirty_log_collect(&r.mem.dirty, r.bm, HART_PAGES / 64), np);   /* (1) */
    rig_run(&r, code, n, 5);                         /* through cached entries */
    uint64_t peek[HART_PAGES / 64];
    CHECK_EQ(dirty_log_collect(&r.mem.dirty, peek, HART_PAGES / 64), 0);    /* unmarked */
    hart_drop_writes(r.hart);                        /* (2) */
    for (unsigned i = 0; i < np; i++)                /* (3) the copy sees them */
        CHECK_EQ(ram_word(&r, pages[i], 8), 5);
    rig_run(&r, code, n, 6);
    CHECK_EQ(rig_collect(&r), np);                   /* caught */
    CHECK(exactly(r.bm, HART_PAGES / 64, pages, np));

    /* AMO, LR/SC and a misaligned store across a page boundary. */
    n = 0;
    code[n++] = lui(5, 20);
    code[n++] = add(5, 5, 10);
    code[n++] = amoadd_d(0, 6, 5);                   /* page 20 */
    code[n++] = lui(5, 21);
    code[n++] = add(5, 5, 10);
    code[n++] = lr_d(8, 5);
    code[n++] = sc_d(9, 6, 5);                       /* page 21 */
    code[n++] = lui(5, 31);
    code[n++] = add(5, 5, 10);
    code[n++] = sd(6, 5, -4);                        /* pages 30 and 31 */
    code[n++] = lui(5, 40);
    code[n++] = add(5, 5, 10);
    code[n++] = lr_d(8, 5);                          /* a load: page 40 stays clean */
    code[n++] = WFI;
    rig_run(&r, code, n, 7);
    CHECK_EQ(r.hart->arch.x[9], 0);                  /* the SC succeeded */
    CHECK_EQ(rig_collect(&r), 4);
    CHECK(exactly(r.bm, HART_PAGES / 64, (const uint64_t[]){ 20, 21, 30, 31 }, 4));
    rig_run(&r, code, n, 8);                         /* again, entries dropped */
    CHECK_EQ(rig_collect(&r), 4);
    CHECK(exactly(r.bm, HART_PAGES / 64, (const uint64_t[]){ 20, 21, 30, 31 }, 4));

    /* A request posted from another thread is served at the next run. */
    rig_run(&r, code, n, 9);
    CHECK_EQ(dirty_log_collect(&r.mem.dirty, r.bm, HART_PAGES / 64), 4);
    uint64_t ticket = hart_request_drop_writes(r.hart);
    CHECK(!hart_drop_writes_done(r.hart, ticket));
    rig_run(&r, code, n, 10);
    CHECK(hart_drop_writes_done(r.hart, ticket));
    CHECK_EQ(dirty_log_collect(&r.mem.dirty, r.bm, HART_PAGES / 64), 4);
    if (jit) {   /* the stores did run in translated code */
        struct jit_stats st;
        jit_get_stats(r.hart->jit, &st);
        CHECK(st.insns_run > 0);
    }
    rig_destroy(&r);
}

/* ---- virtqueue DMA ---- */

static void test_virtqueue_dma(void)
{
    struct guest_mem mem;
    CHECK_EQ(guest_mem_init(&mem, RAM_BASE, 64 * 4096), 0);
    size_t words = dirty_log_words(&mem.dirty);
    uint64_t bm[1];
    /* Rings on pages 1-3; a chain: readable page 8, writable pages 10-11. */
    const uint64_t desc = RAM_BASE + 0x1000, avail = RAM_BASE + 0x2000, used = RAM_BASE + 0x3000;
    struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d[2] = {
        { RAM_BASE + 8 * 4096, 64, VRING_DESC_F_NEXT, 1 },
        { RAM_BASE + 10 * 4096 + 2048, 4096, VRING_DESC_F_WRITE, 0 },
    };
    CHECK_EQ(guest_mem_write(&mem, desc, d, sizeof(d)), 0);
    uint16_t av[3] = { 0, 1, 0 };   /* flags, idx, ring[0] = head 0 */
    CHECK_EQ(guest_mem_write(&mem, avail, av, sizeof(av)), 0);
    struct virtqueue vq;
    vq_reset(&vq, &mem);
    vq.num = 4;
    vq.desc_addr = desc;
    vq.avail_addr = avail;
    vq.used_addr = used;
    CHECK_EQ(vq_start(&vq, false, false), 0);

    dirty_log_enable(&mem.dirty);
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 64);
    static struct vq_elem e;
    CHECK_EQ(vq_pop(&vq, &e), 1);
    CHECK_EQ(e.in_num, 1);
    /* Marked when mapped... */
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 2);
    CHECK(exactly(bm, words, (const uint64_t[]){ 10, 11 }, 2));
    /* ...and the device writes after that collect: the completion marks
     * the buffer again, and the used ring. */
    char msg[3000];
    memset(msg, 'x', sizeof(msg));
    CHECK_EQ(vq_iov_write(e.iov + e.out_num, e.in_num, 0, msg, sizeof(msg)), sizeof(msg));
    vq_push(&vq, e.head, sizeof(msg));
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 3);
    CHECK(exactly(bm, words, (const uint64_t[]){ 3, 10, 11 }, 3));
    CHECK_EQ(dirty_log_collect(&mem.dirty, bm, words), 0);
    guest_mem_destroy(&mem);
}

/* ---- a virt machine with hart threads ---- */

#define VM_RAM     (32ull << 20)
#define REGION_OFF (16u << 20)      /* the programs write [16 MiB, 17 MiB + 12 KiB) */

/* Every hart: an xorshift generator seeded by its hartid; a window of 4
 * pages that moves one page every 2^15 iterations through the first 1 MiB
 * of the region (so pages stop being written for a while, and a lost mark
 * shows); in it, a store to a random doubleword, an AMO and an LR/SC pair
 * one page further; and a misaligned store into the three pages after the
 * 1 MiB that crosses a page now and then. */
static unsigned random_program(uint32_t *c)
{
    unsigned k = 0;
    /* a0 = hartid at entry: seed = (hartid + 1) << 32 | 0x5a5. */
    c[k++] = addi(11, 10, 1);
    c[k++] = slli(11, 11, 32);
    c[k++] = addi(11, 11, 0x5a5);
    c[k++] = slli(14, 10, 20);         /* the harts' windows start apart */
    c[k++] = lui(10, (uint32_t)((RAM_BASE + REGION_OFF) >> 24));
    c[k++] = slli(10, 10, 12);         /* x10: the region */
    c[k++] = lui(13, 0x100);
    c[k++] = add(13, 13, 10);          /* x13: the 1 MiB mark of the region */
    unsigned loop = k;
    c[k++] = slli(5, 11, 13);
    c[k++] = xor_(11, 11, 5);
    c[k++] = srli(5, 11, 7);
    c[k++] = xor_(11, 11, 5);
    c[k++] = slli(5, 11, 17);
    c[k++] = xor_(11, 11, 5);
    c[k++] = addi(14, 14, 1);
    c[k++] = srli(15, 14, 15);         /* the window's first page */
    c[k++] = srli(5, 11, 62);
    c[k++] = add(15, 15, 5);           /* + 0..3 */
    c[k++] = andi(15, 15, 255);
    c[k++] = slli(15, 15, 12);
    c[k++] = srli(6, 11, 55);          /* 9 bits, times 8: 0..0xff8 */
    c[k++] = slli(6, 6, 3);
    c[k++] = add(6, 6, 15);
    c[k++] = add(6, 6, 10);
    c[k++] = sd(11, 6, 0);
    c[k++] = lui(7, 1);
    c[k++] = add(7, 7, 6);             /* a page further (up to 1 MiB + 4 KiB) */
    c[k++] = amoadd_d(0, 11, 7);
    c[k++] = lr_d(8, 7);
    c[k++] = sc_d(9, 11, 7);
    /* Misaligned (emulated on the slow path, which marks every time), so
     * only into pages of their own, or the slow path would mark all of the
     * window and hide stale write entries. */
    c[k++] = srli(12, 11, 54);         /* 10 bits, times 8: 0..0x1ff8 */
    c[k++] = slli(12, 12, 3);
    c[k++] = add(12, 12, 13);
    c[k++] = sd(11, 12, 4);            /* crosses a page at offsets 0xff8/0xffc */
    c[k] = j_type((int32_t)(loop - k) * 4, 0);
    k++;
    return k;
}

static void sleep_ms(long ms)
{
    /* Pacing only: lets the harts run between rounds; nothing waits on it. */
    struct timespec ts = { 0, ms * 1000000 };
    nanosleep(&ts, NULL);
}

static void test_machine(bool jit)
{
    char path[] = "/tmp/nimbus-test-dirty-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    uint32_t code[64];
    unsigned n = random_program(code);
    CHECK(write(fd, code, n * 4) == (ssize_t)(n * 4));
    close(fd);

    struct virt_config cfg = { 0 };
    cfg.bios = path;
    cfg.ram_size = VM_RAM;
    cfg.nharts = 2;
    cfg.console_kind = CONSOLE_FILE;
    strcpy(cfg.console_path, "/dev/null");
    cfg.jit = jit;
    cfg.jit_cache = 1u << 20;
    cfg.jit_threshold = 2;
    struct virt_machine *m;
    char err[256] = "";
    int r = virt_create(&cfg, &m, err, sizeof(err));
    CHECK_MSG(r == 0, "virt_create: %s", err);
    unlink(path);
    if (r)
        return;
    struct vm_thread t[2];
    CHECK_EQ(vm_threads_start(m, t), 0);

    size_t words = virt_dirty_bitmap_words(m);
    uint64_t *bm = calloc(words, 8);
    uint8_t *shadow = malloc(VM_RAM);
    if (!bm || !shadow)
        exit(1);
    uint64_t bad_bm;
    CHECK_EQ(virt_dirty_collect(m, &bad_bm, 1, err, sizeof(err)), -EINVAL);   /* off */
    CHECK_EQ(virt_dirty_start(m, err, sizeof(err)), 0);
    CHECK_EQ(virt_dirty_start(m, err, sizeof(err)), -EALREADY);
    CHECK_EQ(virt_dirty_collect(m, &bad_bm, 1, err, sizeof(err)), -EINVAL);   /* short */
    unsigned compared = 0, busy_rounds = 0;
    for (unsigned round = 0; round < 40; round++) {
        sleep_ms(1 + round % 3);
        bool paused = round % 4 == 3;
        if (paused)
            CHECK_EQ(virt_pause(m, err, sizeof(err)), 0);
        int64_t got = virt_dirty_collect(m, bm, words, err, sizeof(err));
        CHECK_MSG(got >= 0, "collect: %s", err);
        if (round == 0)
            CHECK_EQ(got, VM_RAM >> 12);
        if (round > 0 && got > 2)
            busy_rounds++;
        /* Apply the pages dirtied since the last collect to the shadow. */
        uint64_t seen = 0;
        for (size_t w = 0; w < words; w++)
            for (uint64_t b = bm[w]; b; b &= b - 1) {
                uint64_t pfn = w * 64 + (uint64_t)__builtin_ctzll(b);
                memcpy(shadow + pfn * 4096, m->mem.ram + pfn * 4096, 4096);
                seen++;
                /* Only the region (and its one page of overhang) is written. */
                if (round > 0)
                    CHECK_MSG(pfn >= REGION_OFF / 4096 && pfn <= REGION_OFF / 4096 + 258,
                              "page %llu reported", (unsigned long long)pfn);
            }
        CHECK_EQ(seen, (uint64_t)got);
        if (paused) {
            /* The VM is still: the shadow must be RAM. */
            size_t diff = 0;
            for (size_t p = 0; p < VM_RAM / 4096; p++)
                if (memcmp(shadow + p * 4096, m->mem.ram + p * 4096, 4096))
                    diff++;
            CHECK_MSG(diff == 0, "%s round %u: %zu pages differ", jit ? "jit" : "interp", round,
                      diff);
            compared++;
            CHECK_EQ(virt_resume(m, err, sizeof(err)), 0);
        }
    }
    CHECK_EQ(compared, 10);
    CHECK(busy_rounds >= 20);   /* the harts did run between the rounds */
    CHECK_EQ(virt_dirty_stop(m, err, sizeof(err)), 0);
    CHECK_EQ(virt_dirty_stop(m, err, sizeof(err)), -EINVAL);

    for (unsigned i = 0; jit && i < 2; i++) {
        struct jit_stats st;
        jit_get_stats(m->harts[i]->jit, &st);
        CHECK(st.insns_run > 1000);
    }
    vm_threads_stop(m, t);
    /* Stopped: a collect says so rather than wait for harts that are gone. */
    CHECK_EQ(virt_dirty_start(m, err, sizeof(err)), 0);
    CHECK_EQ(virt_dirty_collect(m, bm, words, err, sizeof(err)), -ESHUTDOWN);
    free(bm);
    free(shadow);
    virt_destroy(m);
}

int main(void)
{
    test_mem_writers();
    test_hart(false);
    test_hart(true);
    test_virtqueue_dma();
    test_machine(false);
    test_machine(true);
    return check_summary("dirty_log");
}
