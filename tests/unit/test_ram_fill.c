/* Unit test of mem/ram_fill: guest RAM filled through userfaultfd from a
 * page source, on first touch and in the background. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "mem/guest_mem.h"
#include "mem/ram_fill.h"

#define RAM_SIZE (8u << 20)
#define NPAGES   (RAM_SIZE / 4096)

/* Page p holds p in every 8-byte word, except the pages in a hole (every
 * 16-page block's second half from page 1024 on), which are zero. */
static bool in_hole(uint64_t p)
{
    return p >= 1024 && (p % 16) >= 8;
}

struct source {
    int reads;
    int released;
};

static int src_read(void *opaque, uint64_t pfn, uint64_t n, void *buf)
{
    struct source *s = opaque;
    __atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t *w = (uint64_t *)((uint8_t *)buf + i * 4096);
        for (unsigned k = 0; k < 512; k++)
            w[k] = in_hole(pfn + i) ? 0 : pfn + i;
    }
    return 0;
}

static uint64_t src_next_data(void *opaque, uint64_t pfn)
{
    (void)opaque;
    while (pfn < NPAGES && in_hole(pfn))
        pfn++;
    return pfn;
}

static uint64_t src_next_hole(void *opaque, uint64_t pfn)
{
    (void)opaque;
    while (pfn < NPAGES && !in_hole(pfn))
        pfn++;
    return pfn;
}

static void src_release(void *opaque)
{
    struct source *s = opaque;
    s->released++;
}

static bool page_ok(const struct guest_mem *mem, uint64_t p)
{
    const uint64_t *w = (const uint64_t *)(mem->ram + p * 4096);
    uint64_t want = in_hole(p) ? 0 : p;
    return w[0] == want && w[511] == want;
}

int main(void)
{
    struct guest_mem mem;
    CHECK_EQ(guest_mem_init(&mem, 0x80000000ull, RAM_SIZE), 0);
    struct source s = { 0 };
    struct ram_page_source src = { .read = src_read, .next_data = src_next_data,
                                   .next_hole = src_next_hole, .no_prefetch = true,
                                   .release = src_release, .opaque = &s };
    char err[256];
    int r = ram_fill_start(&mem, &src, &mem.filler, err, sizeof(err));
    if (r == -EPERM) {
        /* Not allowed on this host: the message must say what to do. */
        CHECK(strstr(err, "unprivileged_userfaultfd") != NULL);
        guest_mem_destroy(&mem);
        printf("test_ram_fill: userfaultfd not permitted here; checked the message only\n");
        return check_summary("test_ram_fill");
    }
    CHECK_MSG(r == 0, "ram_fill_start: %s", err);

    /* Without the background fill, exactly what is touched is fetched. */
    CHECK(page_ok(&mem, NPAGES - 1));
    CHECK(page_ok(&mem, NPAGES - 8));    /* a hole page */
    CHECK(page_ok(&mem, 1500));
    /* A kernel-mode access: read() into a page not yet present. */
    const uint64_t kp = NPAGES - 28;     /* a data page */
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    uint64_t v = 0x1234;
    CHECK_EQ(write(pfd[1], &v, 8), 8);
    CHECK_EQ(read(pfd[0], mem.ram + kp * 4096, 8), 8);
    CHECK_EQ(*(uint64_t *)(mem.ram + kp * 4096), 0x1234u);
    CHECK_EQ(*(uint64_t *)(mem.ram + kp * 4096 + 8), kp);
    close(pfd[0]);
    close(pfd[1]);
    struct ram_fill_stats st;
    ram_fill_get_stats(mem.filler, &st);
    CHECK_EQ(st.faults, 4u);
    CHECK_EQ(st.prefetched + st.zero, 0u);
    CHECK_EQ(st.done_us, 0u);
    guest_mem_destroy(&mem);
    CHECK_EQ(s.released, 1);

    /* With it: all of RAM arrives, holes as zero pages. */
    CHECK_EQ(guest_mem_init(&mem, 0x80000000ull, RAM_SIZE), 0);
    s.released = 0;
    src.no_prefetch = false;
    CHECK_EQ(ram_fill_start(&mem, &src, &mem.filler, err, sizeof(err)), 0);
    CHECK(page_ok(&mem, NPAGES - 1));
    for (int i = 0; i < 2000; i++) {
        ram_fill_get_stats(mem.filler, &st);
        if (st.done_us)
            break;
        usleep(5000);
    }
    CHECK_MSG(st.done_us != 0, "the background fill did not finish");
    CHECK(st.zero > 0 && st.prefetched > 0);
    CHECK_EQ(st.faults + st.prefetched + st.zero, NPAGES);
    bool all = true;
    for (uint64_t p = 0; p < NPAGES; p++)
        if (!page_ok(&mem, p))
            all = false;
    CHECK_MSG(all, "a page does not hold its source's contents");

    /* After the fill, RAM is plain memory: a discarded page reads zero, a
     * write stays. */
    CHECK_EQ(guest_mem_discard(&mem, 0x80000000ull + 5 * 4096, 4096), 0);
    CHECK_EQ(*(uint64_t *)(mem.ram + 5 * 4096), 0u);
    mem.ram[6 * 4096] = 0x77;
    CHECK_EQ(mem.ram[6 * 4096], 0x77);

    /* A reset stops the filler (and releases its source) and zeroes RAM. */
    CHECK_EQ(guest_mem_clear(&mem), 0);
    CHECK(mem.filler == NULL);
    CHECK_EQ(s.released, 1);
    CHECK_EQ(*(uint64_t *)(mem.ram + 7 * 4096), 0u);
    guest_mem_destroy(&mem);

    /* Stop while still filling: the source is released, RAM reads zero
     * where nothing was fetched, nothing hangs. */
    struct source s2 = { 0 };
    src.opaque = &s2;
    CHECK_EQ(guest_mem_init(&mem, 0x80000000ull, RAM_SIZE), 0);
    CHECK_EQ(ram_fill_start(&mem, &src, &mem.filler, err, sizeof(err)), 0);
    CHECK(page_ok(&mem, 3));
    guest_mem_destroy(&mem);
    CHECK_EQ(s2.released, 1);
    return check_summary("test_ram_fill");
}
