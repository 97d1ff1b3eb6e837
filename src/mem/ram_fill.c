/* Guest RAM filled on demand through userfaultfd. See ram_fill.h. */
#include "mem/ram_fill.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"

#define PREFETCH_PAGES 64u    /* 256 KiB per background copy */

struct ram_filler {
    struct guest_mem *mem;
    struct ram_page_source src;
    int uffd;
    int stop_fd;                /* eventfd: stop the thread */
    pthread_t thread;
    uint64_t npages;
    _Atomic uint64_t *filled;   /* bitmap: pages made present (the filler, ram_fill_place) */
    _Atomic uint64_t nfilled;   /* its bits set */
    uint64_t cursor;            /* next page the prefetch looks at */
    uint8_t *buf;               /* PREFETCH_PAGES pages */
    uint64_t start_ns;
    _Atomic uint64_t faults, prefetched, zero, done_us;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool is_filled(const struct ram_filler *f, uint64_t pfn)
{
    return atomic_load_explicit(&f->filled[pfn / 64], memory_order_acquire) >> (pfn % 64) & 1;
}

/* Marks pages filled; true when that made every page present. */
static bool set_filled(struct ram_filler *f, uint64_t pfn, uint64_t n)
{
    uint64_t added = 0;
    for (uint64_t p = pfn; p < pfn + n; p++) {
        uint64_t bit = 1ull << (p % 64);
        if (!(atomic_fetch_or(&f->filled[p / 64], bit) & bit))
            added++;
    }
    return added && atomic_fetch_add(&f->nfilled, added) + added == f->npages;
}

/* Maps zero pages over [pfn, pfn+n). 0, or -errno (EEXIST: some present). */
static int map_zero(struct ram_filler *f, uint64_t pfn, uint64_t n, bool wake)
{
    struct uffdio_zeropage z = {
        .range = { .start = (uintptr_t)(f->mem->ram + pfn * GUEST_PAGE_SIZE),
                   .len = n * GUEST_PAGE_SIZE },
        .mode = wake ? 0 : UFFDIO_ZEROPAGE_MODE_DONTWAKE,
    };
    return ioctl(f->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
}

/* Copies `n` pages from f->buf to [pfn, pfn+n). 0 or -errno. */
static int map_copy(struct ram_filler *f, uint64_t pfn, uint64_t n, bool wake)
{
    struct uffdio_copy c = {
        .dst = (uintptr_t)(f->mem->ram + pfn * GUEST_PAGE_SIZE),
        .src = (uintptr_t)f->buf,
        .len = n * GUEST_PAGE_SIZE,
        .mode = wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE,
    };
    return ioctl(f->uffd, UFFDIO_COPY, &c) ? -errno : 0;
}

/* A fault at `pfn`: fetch that page (a page we filled before was given back
 * since, by the balloon or a reset: it reads as zero). */
static int serve_fault(struct ram_filler *f, uint64_t pfn)
{
    int r;
    atomic_fetch_add(&f->faults, 1);
    if (is_filled(f, pfn)) {
        r = map_zero(f, pfn, 1, true);
    } else if (f->src.request) {
        /* The page comes through ram_fill_place, which wakes the waiter. */
        return f->src.request(f->src.opaque, pfn);
    } else {
        r = f->src.read(f->src.opaque, pfn, 1, f->buf);
        if (r)
            return r;
        r = map_copy(f, pfn, 1, true);
        set_filled(f, pfn, 1);
    }
    if (r == -EEXIST || r == -EAGAIN) {
        /* Present already, or the mapping is changing: wake the waiter,
         * which faults again if it must. */
        struct uffdio_range w = { .start = (uintptr_t)(f->mem->ram + pfn * GUEST_PAGE_SIZE),
                                  .len = GUEST_PAGE_SIZE };
        ioctl(f->uffd, UFFDIO_WAKE, &w);
        r = 0;
    }
    return r;
}

/* One step of background filling. Returns 1 if there is more to do, 0 when
 * every page is present, -errno on a source error. */
static int prefetch_step(struct ram_filler *f)
{
    while (f->cursor < f->npages && is_filled(f, f->cursor))
        f->cursor++;
    if (f->cursor >= f->npages)
        return 0;
    uint64_t pfn = f->cursor;
    uint64_t data = f->src.next_data ? f->src.next_data(f->src.opaque, pfn) : pfn;
    if (data > pfn) {
        /* A hole: zero pages, in runs that skip pages already filled. */
        uint64_t end = data < f->npages ? data : f->npages, n = 0;
        while (pfn + n < end && !is_filled(f, pfn + n) && n < 4096)
            n++;
        int r = map_zero(f, pfn, n, true);
        if (r && r != -EEXIST)
            return r;
        if (r == -EEXIST)   /* something faulted meanwhile: one page at a time */
            n = 1, map_zero(f, pfn, 1, true);
        set_filled(f, pfn, n);
        atomic_fetch_add(&f->zero, n);
        f->cursor = pfn + n;
        return 1;
    }
    uint64_t hole = f->src.next_hole ? f->src.next_hole(f->src.opaque, pfn) : f->npages;
    uint64_t n = 0;
    while (pfn + n < f->npages && pfn + n < hole && !is_filled(f, pfn + n) &&
           n < PREFETCH_PAGES)
        n++;
    if (!n)
        n = 1;
    int r = f->src.read(f->src.opaque, pfn, n, f->buf);
    if (r)
        return r;
    r = map_copy(f, pfn, n, true);
    if (r == -EEXIST && n > 1) {
        /* Part of the range is present (faulted meanwhile): page by page. */
        for (uint64_t i = 0; i < n; i++) {
            if ((r = f->src.read(f->src.opaque, pfn + i, 1, f->buf)))
                return r;
            if ((r = map_copy(f, pfn + i, 1, true)) && r != -EEXIST)
                return r;
        }
        r = 0;
    }
    if (r && r != -EEXIST)
        return r;
    set_filled(f, pfn, n);
    atomic_fetch_add(&f->prefetched, n);
    f->cursor = pfn + n;
    return 1;
}

static void mark_done(struct ram_filler *f)
{
    atomic_store(&f->done_us, (now_ns() - f->start_ns) / 1000 + 1);
    /* Every page is present: no fault can come any more. */
    struct uffdio_range all = { .start = (uintptr_t)f->mem->ram, .len = f->mem->ram_size };
    ioctl(f->uffd, UFFDIO_UNREGISTER, &all);
}

static void *filler_main(void *arg)
{
    struct ram_filler *f = arg;
    bool prefetching = !f->src.no_prefetch;
    for (;;) {
        struct pollfd p[2] = { { .fd = f->uffd, .events = POLLIN },
                               { .fd = f->stop_fd, .events = POLLIN } };
        /* Faults first; the prefetch only while none is waiting. */
        int n = poll(p, 2, prefetching ? 0 : -1);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (n > 0 && (p[0].revents & POLLIN)) {
            struct uffd_msg msg;
            ssize_t got = read(f->uffd, &msg, sizeof(msg));
            if (got == (ssize_t)sizeof(msg) && msg.event == UFFD_EVENT_PAGEFAULT) {
                uint64_t addr = msg.arg.pagefault.address;
                uint64_t pfn = (addr - (uintptr_t)f->mem->ram) / GUEST_PAGE_SIZE;
                if (pfn < f->npages && serve_fault(f, pfn))
                    break;
            }
            continue;
        }
        if (prefetching) {
            int r = prefetch_step(f);
            if (r < 0)
                break;
            if (r == 0) {
                prefetching = false;
                mark_done(f);
                break;
            }
        }
    }
    return NULL;
}

int ram_fill_start(struct guest_mem *mem, const struct ram_page_source *src,
                   struct ram_filler **out, char *err, size_t errlen)
{
    struct ram_filler *f = calloc(1, sizeof(*f));
    if (!f)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    f->mem = mem;
    f->src = *src;
    f->npages = mem->ram_size / GUEST_PAGE_SIZE;
    f->uffd = f->stop_fd = -1;
    f->filled = calloc((f->npages + 63) / 64, 8);
    f->buf = aligned_alloc(GUEST_PAGE_SIZE, PREFETCH_PAGES * GUEST_PAGE_SIZE);
    int r = 0;
    if (!f->filled || !f->buf) {
        r = errmsg(err, errlen, -ENOMEM, "out of memory");
        goto fail;
    }
    if (src->present) {
        for (uint64_t w = 0; w < (f->npages + 63) / 64; w++) {
            f->filled[w] = src->present[w];
            f->nfilled += (uint64_t)__builtin_popcountll(src->present[w]);
        }
    }
    f->src.present = NULL;
    f->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (f->uffd < 0) {
        r = errmsg(err, errlen, -errno, "userfaultfd: %s%s", strerror(errno),
                   errno == EPERM ? " (needs root, or vm.unprivileged_userfaultfd = 1; "
                                    "or restore with --memory lazy)" : "");
        goto fail;
    }
    /* 4 KiB pages while pages arrive one by one (UFFDIO_COPY places base
     * pages; QEMU turns huge pages off for post-copy too). */
    madvise(mem->ram, mem->ram_size, MADV_NOHUGEPAGE);
    struct uffdio_api api = { .api = UFFD_API };
    struct uffdio_register reg = {
        .range = { .start = (uintptr_t)mem->ram, .len = mem->ram_size },
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    if (ioctl(f->uffd, UFFDIO_API, &api) || ioctl(f->uffd, UFFDIO_REGISTER, &reg)) {
        r = errmsg(err, errlen, -errno, "userfaultfd on guest RAM: %s", strerror(errno));
        goto fail;
    }
    f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (f->stop_fd < 0) {
        r = errmsg(err, errlen, -errno, "eventfd: %s", strerror(errno));
        goto fail;
    }
    f->start_ns = now_ns();
    if ((r = -pthread_create(&f->thread, NULL, filler_main, f))) {
        errmsg(err, errlen, r, "cannot start the RAM filler: %s", strerror(-r));
        goto fail;
    }
    pthread_setname_np(f->thread, "ramfill");
    *out = f;
    return 0;
fail:
    if (f->uffd >= 0)
        close(f->uffd);
    if (f->stop_fd >= 0)
        close(f->stop_fd);
    free(f->filled);
    free(f->buf);
    free(f);
    return r;
}

int ram_fill_place(struct ram_filler *f, uint64_t pfn, uint64_t n, const void *data)
{
    if (pfn >= f->npages || n > f->npages - pfn)
        return -EINVAL;
    for (uint64_t i = 0; i < n;) {
        /* Runs of pages not filled yet; present ones are skipped. */
        if (is_filled(f, pfn + i)) {
            i++;
            continue;
        }
        uint64_t k = 1;
        while (i + k < n && !is_filled(f, pfn + i + k))
            k++;
        uint64_t at = (pfn + i) * GUEST_PAGE_SIZE;
        int r;
        if (data) {
            struct uffdio_copy c = { .dst = (uintptr_t)(f->mem->ram + at),
                                     .src = (uintptr_t)data + i * GUEST_PAGE_SIZE,
                                     .len = k * GUEST_PAGE_SIZE };
            r = ioctl(f->uffd, UFFDIO_COPY, &c) ? -errno : 0;
        } else {
            struct uffdio_zeropage z = { .range = { .start = (uintptr_t)(f->mem->ram + at),
                                                    .len = k * GUEST_PAGE_SIZE } };
            r = ioctl(f->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
        }
        if (r == -EEXIST && k > 1) {
            /* Some are present (a fault got there first): one at a time. */
            for (uint64_t j = 0; j < k; j++) {
                int q = ram_fill_place(f, pfn + i + j, 1, data ? (const uint8_t *)data +
                                       (i + j) * GUEST_PAGE_SIZE : NULL);
                if (q)
                    return q;
            }
            i += k;
            continue;
        }
        if (r && r != -EEXIST)
            return r;
        if (set_filled(f, pfn + i, k))
            mark_done(f);
        if (data)
            atomic_fetch_add(&f->prefetched, k);
        else
            atomic_fetch_add(&f->zero, k);
        i += k;
    }
    return 0;
}

void ram_fill_stop(struct ram_filler *f)
{
    if (!f)
        return;
    uint64_t one = 1;
    ssize_t w = write(f->stop_fd, &one, sizeof(one));
    (void)w;
    pthread_join(f->thread, NULL);
    /* Closing the descriptor unregisters the range and wakes any waiter
     * (it then sees a zero page). */
    close(f->uffd);
    close(f->stop_fd);
    if (f->src.release)
        f->src.release(f->src.opaque);
    free(f->filled);
    free(f->buf);
    free(f);
}

void ram_fill_get_stats(struct ram_filler *f, struct ram_fill_stats *st)
{
    st->faults = atomic_load(&f->faults);
    st->prefetched = atomic_load(&f->prefetched);
    st->zero = atomic_load(&f->zero);
    st->done_us = atomic_load(&f->done_us);
}

uint64_t ram_fill_present(struct ram_filler *f, uint64_t *bitmap)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < (f->npages + 63) / 64; w++) {
        bitmap[w] = atomic_load_explicit(&f->filled[w], memory_order_acquire);
        n += (uint64_t)__builtin_popcountll(bitmap[w]);
    }
    return n;
}

bool ram_fill_has(struct ram_filler *f, uint64_t pfn)
{
    return pfn < f->npages && is_filled(f, pfn);
}
