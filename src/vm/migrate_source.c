/* The source of a live migration, on its own thread: handshake, pre-copy
 * rounds, stop-and-copy, or the switch to post-copy and serving pages until
 * the destination has them all. See migrate.h and docs/migration.md.
 *
 * Until the destination has been told GO, any failure leaves the VM here,
 * running as before (resumed if the migration paused it). After GO the
 * destination is the VM: the source never runs again, and (post-copy) keeps
 * every page not yet sent until the destination confirms it has them all. */
#include "vm/migrate_internal.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "machine/virt_dirty.h"
#include "virtio/blk.h"

#define CONNECT_MS       5000
#define ZSTD_LEVEL       1
#define BW_MIN_BYTES     (256u << 10)   /* a round this small says nothing about bandwidth */
#define THROTTLE_FIRST   20u            /* auto-converge steps, as QEMU's defaults */
#define THROTTLE_STEP    10u
#define THROTTLE_MAX     99u
#define PREPAGE_MIN      8u             /* pages sent after a faulting one, at first */
#define PREPAGE_MAX      256u
#define QUEUE_LEN        1024u          /* pre-paging queue (a ring) */
#define POLL_EVERY       16u            /* post-copy: look for requests every N pages */

struct src {
    struct vm_migration *g;
    struct virt_machine *m;
    uint64_t npages;
    size_t words;
    uint64_t *dirty, *scratch, *sent, *backed;
    struct migrate_batch batch;
    int zstd;
    bool sync;                   /* the destination answers SYNC */
    bool was_paused, paused_by_us, log_was_on, log_started;
    int64_t t_pause, rate_t0;
    uint64_t rate_bytes0;
    uint64_t bandwidth;          /* bytes/s, measured */
    uint64_t nsent;              /* bits set in `sent` */
    bool resumed;                /* post-copy recovered (at least once) */
    uint64_t resume_base;        /* pages flushed before the last recovery */
    /* post-copy pre-paging */
    uint64_t queue[QUEUE_LEN];
    unsigned qhead, qlen;
    uint64_t last_fault, window, cursor;
    /* copy-storage */
    struct mig_storage st;
    bool storage;
    char err[256];
};

static uint64_t popcount_bm(const uint64_t *b, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(b[i]);
    return n;
}

static int check_going(struct src *s)
{
    if (atomic_load(&s->g->cancel))
        return errmsg(s->err, sizeof(s->err), -ECANCELED, "cancelled");
    if (atomic_load(&s->m->stop) != VIRT_RUNNING)
        return errmsg(s->err, sizeof(s->err), -ESHUTDOWN, "the VM stopped");
    return 0;
}

/* Keeps the whole stream (pages and disks) to max_bandwidth. */
static void pace(struct src *s)
{
    struct vm_migration *g = s->g;
    uint64_t bw = g->opts.max_bandwidth;
    if (bw) {
        int64_t elapsed = mig_now_ns() - s->rate_t0;
        int64_t need = (int64_t)((double)(g->conn.bytes_out - s->rate_bytes0) * 1e9 / (double)bw);
        if (need > elapsed) {
            int64_t ns = need - elapsed;
            struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
            nanosleep(&ts, NULL);
        }
    }
}

/* After each disk frame: give up when asked to, else keep the pace. */
static int pace_disk(void *opaque)
{
    struct src *s = opaque;
    int r = check_going(s);
    if (!r)
        pace(s);
    return r;
}

/* Sends the batch, counts it, and keeps to max_bandwidth. */
static int flush(struct src *s)
{
    int r = check_going(s);
    if (r)
        return r;
    if (!s->batch.count)
        return 0;
    if ((r = migrate_batch_flush(&s->g->conn, &s->batch, s->zstd)))
        return errmsg(s->err, sizeof(s->err), r, "sending pages: %s", strerror(-r));
    struct vm_migration *g = s->g;
    mig_lock(g);
    g->p.pages_sent = s->batch.zero_pages + s->batch.data_pages;
    g->p.zero_pages = s->batch.zero_pages;
    if (s->resumed)
        g->p.recover_sent = g->p.pages_sent - s->resume_base;
    g->p.bytes = g->conn.bytes_out;
    mig_unlock(g, false);
    pace(s);
    return 0;
}

/* The bandwidth seen while `bytes` went in `dt` ns (too little says nothing). */
static void measure(struct src *s, int64_t dt, uint64_t bytes)
{
    if (bytes >= BW_MIN_BYTES && dt > 0) {
        uint64_t bw = (uint64_t)((double)bytes * 1e9 / (double)dt);
        s->bandwidth = s->bandwidth ? (s->bandwidth + bw) / 2 : bw;
    }
}

/* The disks' last dirty chunks, the VM paused: flushed first, so that no
 * write is in a cache the copy would not see. */
static int storage_last(struct src *s)
{
    if (!s->storage)
        return 0;
    int r = mig_storage_flush(&s->st);
    if (!r) {
        mig_storage_collect(&s->st);
        r = mig_storage_send(&s->st);
    }
    return r;
}

/* Queues page pfn (zero without reading it when the host never backed it
 * and `backed_only`); sends when the batch is full. */
static int send_page(struct src *s, uint64_t pfn, bool use_backed)
{
    const void *data = use_backed && !bm_test(s->backed, pfn)
                       ? NULL : s->m->mem.ram + pfn * GUEST_PAGE_SIZE;
    if (!bm_test(s->sent, pfn)) {
        bm_set(s->sent, pfn);
        s->nsent++;
    }
    return migrate_batch_add(&s->batch, pfn, data) ? flush(s) : 0;
}

/* Sends every page of bitmap `b` and clears it. */
static int send_bitmap(struct src *s, uint64_t *b, bool use_backed)
{
    for (size_t w = 0; w < s->words; w++) {
        for (uint64_t bits = b[w]; bits; bits &= bits - 1) {
            int r = send_page(s, w * 64 + (uint64_t)__builtin_ctzll(bits), use_backed);
            if (r)
                return r;
        }
        b[w] = 0;
    }
    return flush(s);
}

static int collect(struct src *s, uint64_t *into)
{
    int64_t n = virt_dirty_collect(s->m, into, s->words, s->err, sizeof(s->err));
    return n < 0 ? (int)n : 0;
}

/* The pages written since the last collect join s->dirty (scratch holds
 * them too). */
static int collect_dirty(struct src *s)
{
    int r = collect(s, s->scratch);
    if (!r)
        for (size_t w = 0; w < s->words; w++)
            s->dirty[w] |= s->scratch[w];
    return r;
}

static int pause_vm(struct src *s)
{
    s->t_pause = mig_now_ns();
    if (s->was_paused)
        return 0;
    int r = virt_pause(s->m, s->err, sizeof(s->err));
    if (!r)
        s->paused_by_us = true;
    return r;
}

/* Flushes the disks (the destination opens the same images) and sends the
 * device state. The VM is paused. */
static int send_state(struct src *s)
{
    struct virt_machine *m = s->m;
    for (unsigned i = 0; i < m->config.ndisks; i++) {
        int r = virtio_blk_flush(m->virtio[i]);
        if (r)
            return errmsg(s->err, sizeof(s->err), r, "flushing disk %s: %s",
                          m->config.disks[i].path, strerror(-r));
    }
    struct state_writer w;
    int r = state_writer_init_mem(&w);
    if (r)
        return errmsg(s->err, sizeof(s->err), r, "out of memory");
    r = virt_save(m, &w, s->err, sizeof(s->err));
    if (!r)
        r = state_writer_finish(&w, s->err, sizeof(s->err));
    if (!r) {
        size_t len;
        const uint8_t *data = state_writer_data(&w, &len);
        s->g->session = mig_session_id(data, len);
        if ((r = migrate_send(&s->g->conn, MIGRATE_STATE, 0, data, len, NULL, 0)))
            errmsg(s->err, sizeof(s->err), r, "sending the device state: %s", strerror(-r));
    }
    state_writer_free(&w);
    return r;
}

/* Waits for a frame of type `want` (READY, COMPLETE). */
static int expect(struct src *s, uint8_t want)
{
    struct migrate_frame f;
    int r = migrate_recv(&s->g->conn, &f, s->err, sizeof(s->err));
    if (r)
        return r;
    if (f.type != want || f.len)
        return errmsg(s->err, sizeof(s->err), -EBADMSG, "the destination sent %s, not %s",
                      migrate_frame_name(f.type), migrate_frame_name(want));
    return 0;
}

/* GO: from now on the destination is the VM. */
static int send_go(struct src *s)
{
    int r = migrate_send(&s->g->conn, MIGRATE_GO, 0, NULL, 0, NULL, 0);
    if (r)
        return errmsg(s->err, sizeof(s->err), r, "sending GO: %s", strerror(-r));
    atomic_store(&s->g->handed_over, true);
    mig_lock(s->g);
    s->g->p.downtime_us = (uint64_t)(mig_now_ns() - s->t_pause) / 1000;
    mig_unlock(s->g, true);
    return 0;
}

/* ---- pre-copy ---- */

/* The end of a round: waits until the destination has taken in everything
 * sent so far. Without it the socket buffers on both sides (megabytes on
 * loopback) and a destination slower than the source's writes (zstd) hide
 * a backlog: the bandwidth measured at the source is too high, and the
 * backlog is drained after the pause, in the downtime (seen: 15-70 ms of
 * an idle guest's downtime over TCP, most of it the destination still
 * reading the previous round). Waiting costs one round trip per round. */
static int end_round(struct src *s)
{
    if (!s->sync)
        return 0;
    int r = migrate_send(&s->g->conn, MIGRATE_SYNC, 0, NULL, 0, NULL, 0);
    if (r)
        return errmsg(s->err, sizeof(s->err), r, "sending SYNC: %s", strerror(-r));
    return expect(s, MIGRATE_SYNCED);
}

enum next { NEXT_STOP_COPY, NEXT_POSTCOPY };

static void auto_converge(struct src *s, uint64_t dirty_rate)
{
    struct vm_migration *g = s->g;
    if (!g->opts.auto_converge || !s->bandwidth)
        return;
    /* QEMU's rule: the guest dirties more than half of what goes out. */
    if (dirty_rate * GUEST_PAGE_SIZE <= s->bandwidth / 2)
        return;
    unsigned t = atomic_load(&s->m->throttle_pct);
    t = t ? t + THROTTLE_STEP : THROTTLE_FIRST;
    if (t > THROTTLE_MAX)
        t = THROTTLE_MAX;
    atomic_store(&s->m->throttle_pct, t);
    mig_lock(g);
    g->p.throttle_pct = t;
    mig_unlock(g, true);
}

static int precopy(struct src *s, enum next *next)
{
    struct vm_migration *g = s->g;
    int64_t t_prev = mig_now_ns();
    for (unsigned round = 0;; round++) {
        int64_t t = mig_now_ns();
        int r = collect(s, s->scratch);
        if (r)
            return r;
        uint64_t n = popcount_bm(s->scratch, s->words);
        if (round == 0) {
            /* Every page is dirty now; the destination's fresh RAM reads
             * zero, so only pages the host ever backed go (and a page
             * backed after this is dirtied again after the collect). */
            memset(s->backed, 0, s->words * 8);
            if (guest_mem_backed_pages(&s->m->mem, s->backed))
                memset(s->backed, 0xff, s->words * 8);
            for (size_t w = 0; w < s->words; w++)
                s->dirty[w] = s->scratch[w] & s->backed[w];
        } else {
            for (size_t w = 0; w < s->words; w++)
                s->dirty[w] |= s->scratch[w];
        }
        uint64_t remaining = popcount_bm(s->dirty, s->words);
        uint64_t disk = s->storage ? mig_storage_collect(&s->st) : 0;
        uint64_t rate = round && t > t_prev ? (uint64_t)((double)n * 1e9 / (double)(t - t_prev)) : 0;
        t_prev = t;
        uint64_t expected = s->bandwidth
                            ? (remaining * GUEST_PAGE_SIZE + disk) * 1000 / s->bandwidth
                            : UINT64_MAX;
        mig_lock(g);
        g->p.round = round;
        g->p.pages_remaining = remaining;
        g->p.dirty_rate = rate;
        g->p.bandwidth = s->bandwidth;
        g->p.expected_downtime_ms = expected == UINT64_MAX ? 0 : expected;
        mig_unlock(g, true);
        if (round > 0 && expected <= g->opts.downtime_limit_ms) {
            mig_lock(g);
            g->p.converged = true;
            mig_unlock(g, false);
            *next = NEXT_STOP_COPY;
            return 0;
        }
        if (g->opts.mode == VM_MIGRATE_MODE_HYBRID && round >= g->opts.postcopy_after) {
            *next = NEXT_POSTCOPY;
            return 0;
        }
        if (round >= g->opts.max_rounds) {
            *next = NEXT_STOP_COPY;   /* not converged: the downtime will be longer */
            return 0;
        }
        if (round > 0)
            auto_converge(s, rate);
        int64_t t0 = mig_now_ns();
        uint64_t b0 = g->conn.bytes_out;
        /* The disks' chunks written since the last round first: their
         * destination must not fall behind while RAM converges. */
        if ((s->storage && (r = mig_storage_send(&s->st))) ||
            (r = send_bitmap(s, s->dirty, round == 0)) || (r = end_round(s)))
            return r;
        measure(s, mig_now_ns() - t0, g->conn.bytes_out - b0);
    }
}

/* Copy-storage, before any page: the disks' contents, then rounds of what
 * the guest wrote meanwhile until the rest would fit the downtime limit
 * (or the round limit); the rest goes with the RAM rounds and, paused, in
 * stop-and-copy. Post-copy too runs this first: the destination resumes
 * only with its disks complete. */
static int storage_copy(struct src *s)
{
    struct vm_migration *g = s->g;
    s->storage = true;
    int r = mig_storage_start(&s->st, g, pace_disk, s, s->err, sizeof(s->err));
    for (unsigned round = 0; !r; round++) {
        int64_t t0 = mig_now_ns();
        uint64_t b0 = g->conn.bytes_out;
        if ((r = mig_storage_send(&s->st)))
            break;
        measure(s, mig_now_ns() - t0, g->conn.bytes_out - b0);
        uint64_t left = mig_storage_collect(&s->st);
        if (left == 0 || round >= g->opts.max_rounds ||
            (s->bandwidth && left * 1000 / s->bandwidth <= g->opts.downtime_limit_ms))
            break;
    }
    /* The destination makes what it has durable now, the guest running
     * here, not in the downtime (a sync of the whole copy takes long). */
    if (!r && (r = migrate_send(&g->conn, MIGRATE_DISK_SYNC, 0, NULL, 0, NULL, 0)))
        errmsg(s->err, sizeof(s->err), r, "sending DISK_SYNC: %s", strerror(-r));
    if (!r)
        r = expect(s, MIGRATE_DISK_SYNCED);
    return r;
}

static int stop_copy(struct src *s)
{
    mig_set_phase(s->g, VM_MIGRATE_STOP_COPY);
    int r;
    if ((r = pause_vm(s)) || (r = collect_dirty(s)) || (r = storage_last(s)) ||
        (r = send_bitmap(s, s->dirty, false)) || (r = send_state(s)))
        return r;
    if ((r = migrate_end_send(&s->g->conn, s->was_paused ? MIGRATE_END_PAUSED : 0, s->nsent)))
        return errmsg(s->err, sizeof(s->err), r, "sending END: %s", strerror(-r));
    if ((r = expect(s, MIGRATE_READY)))
        return r;
    return send_go(s);
}

/* ---- post-copy ---- */

static void enqueue(struct src *s, uint64_t pfn)
{
    if (pfn >= s->npages || bm_test(s->sent, pfn))
        return;
    if (s->qlen == QUEUE_LEN) {   /* full: the oldest guess goes */
        s->qhead = (s->qhead + 1) % QUEUE_LEN;
        s->qlen--;
    }
    s->queue[(s->qhead + s->qlen++) % QUEUE_LEN] = pfn;
}

/* A fault at pfn: that page at once, then pages after it (and a few before)
 * queued ahead of the background order; the window doubles while faults
 * follow each other closely (a sequential pattern) and shrinks otherwise. */
static int serve_request(struct src *s, uint64_t pfn)
{
    mig_lock(s->g);
    s->g->p.requests++;
    mig_unlock(s->g, false);
    if (bm_test(s->sent, pfn))
        return 0;   /* on its way already: never a page twice */
    int r = send_page(s, pfn, true);
    if (r || s->g->opts.no_prepage)
        return r;
    bool near = s->last_fault != UINT64_MAX && pfn > s->last_fault - s->window &&
                pfn <= s->last_fault + 2 * s->window;
    s->window = near ? (s->window * 2 > PREPAGE_MAX ? PREPAGE_MAX : s->window * 2) : PREPAGE_MIN;
    s->last_fault = pfn;
    /* The newest fault's neighbours first: the queue is served LIFO-ish by
     * putting them in front. */
    s->qhead = s->qlen = 0;
    for (uint64_t i = 1; i <= s->window; i++)
        enqueue(s, pfn + i);
    for (uint64_t i = 1; i <= s->window / 4 && i <= pfn; i++)
        enqueue(s, pfn - i);
    return 0;
}

/* The next page to push: the pre-paging queue, then in order. */
static bool next_page(struct src *s, uint64_t *pfn, bool *prepaged)
{
    while (s->qlen) {
        uint64_t p = s->queue[s->qhead];
        s->qhead = (s->qhead + 1) % QUEUE_LEN;
        s->qlen--;
        if (!bm_test(s->sent, p)) {
            *pfn = p;
            *prepaged = true;
            return true;
        }
    }
    while (s->cursor < s->npages && bm_test(s->sent, s->cursor))
        s->cursor++;
    if (s->cursor >= s->npages)
        return false;
    *pfn = s->cursor;
    *prepaged = false;
    return true;
}

static int handle_frame(struct src *s, bool *ready, bool *complete, bool done_sent)
{
    struct migrate_frame f;
    int r = migrate_recv(&s->g->conn, &f, s->err, sizeof(s->err));
    if (r)
        return r;
    switch (f.type) {
    case MIGRATE_PAGE_REQ: {
        uint64_t pfns[MIGRATE_MAX_REQ];
        uint32_t n;
        if ((r = migrate_req_parse(&f, s->npages, pfns, &n, s->err, sizeof(s->err))))
            return r;
        for (uint32_t i = 0; i < n; i++)
            if ((r = serve_request(s, pfns[i])))
                return r;
        return flush(s);   /* a faulting hart waits for it */
    }
    case MIGRATE_READY:
        if (*ready || f.len)
            break;
        *ready = true;
        if ((r = flush(s)) || (r = send_go(s)))
            return r;
        mig_set_phase(s->g, VM_MIGRATE_POSTCOPY);
        return 0;
    case MIGRATE_COMPLETE:
        if (!done_sent || !*ready || f.len)
            break;
        *complete = true;
        return 0;
    default:
        break;
    }
    return errmsg(s->err, sizeof(s->err), -EBADMSG, "the destination sent %s (%u bytes) during "
                  "post-copy", migrate_frame_name(f.type), f.len);
}

static int serve(struct src *s, bool *ready, uint64_t *prepaged_total);
static void resumed(struct src *s);

static int postcopy(struct src *s)
{
    struct vm_migration *g = s->g;
    mig_set_phase(g, VM_MIGRATE_STOP_COPY);
    /* Which pages the host ever backed (the others go as zero pages
     * unread), found before the pause: reading the page map of a large
     * guest takes milliseconds. A page backed since was written since, so
     * it is among those collected at the pause, added below; the collect
     * just before starts that count (the first collect of a migration
     * says every page; the pages it gives are kept with the last round's). */
    int r = collect_dirty(s);
    if (r)
        return r;
    memset(s->backed, 0, s->words * 8);
    if (guest_mem_backed_pages(&s->m->mem, s->backed))
        memset(s->backed, 0xff, s->words * 8);
    if ((r = pause_vm(s)) || (r = collect(s, s->scratch)) || (r = storage_last(s)))
        return r;
    for (size_t w = 0; w < s->words; w++)
        s->backed[w] |= s->scratch[w];
    /* Pages the destination has that changed since: it drops them and
     * they go again (only in a hybrid; each at most once more). They are
     * the ones written since the last collect and, in a hybrid, those the
     * last round collected but did not send (s->dirty): an old copy of
     * each is at the destination, which would otherwise keep it. */
    bool any = false;
    for (size_t w = 0; w < s->words; w++) {
        s->scratch[w] |= s->dirty[w];
        s->dirty[w] = 0;
        s->scratch[w] &= s->sent[w];
        s->sent[w] &= ~s->scratch[w];
        any |= s->scratch[w] != 0;
    }
    s->nsent = popcount_bm(s->sent, s->words);
    if (any && (r = migrate_discard_send(&g->conn, s->scratch, s->npages)))
        return errmsg(s->err, sizeof(s->err), r, "sending DISCARD: %s", strerror(-r));
    if ((r = send_state(s)))
        return r;
    mig_lock(g);
    g->p.pages_remaining = s->npages - s->nsent;
    mig_unlock(g, true);
    uint32_t flags = MIGRATE_END_POSTCOPY | (s->was_paused ? MIGRATE_END_PAUSED : 0);
    if ((r = migrate_end_send(&g->conn, flags, s->nsent)))
        return errmsg(s->err, sizeof(s->err), r, "sending END: %s", strerror(-r));
    bool ready = false;
    uint64_t prepaged = 0;
    s->last_fault = UINT64_MAX;
    s->window = PREPAGE_MIN;
    /* After GO a broken stream pauses until it is resumed, as often as it
     * breaks (migrate_recover.c); before GO the VM goes on here. */
    while ((r = serve(s, &ready, &prepaged))) {
        if (!atomic_load(&g->handed_over) || atomic_load(&g->cancel) ||
            atomic_load(&s->m->stop) != VIRT_RUNNING)
            return r;
        if ((r = mig_src_paused(g, s->sent, s->npages, s->nsent, s->err, sizeof(s->err))))
            return r;
        resumed(s);
    }
    mig_lock(g);
    g->p.prepaged = prepaged;
    g->p.pages_remaining = 0;
    mig_unlock(g, true);
    return 0;
}

/* The destination said which pages it has (s->sent now): the rest from the
 * start, nothing of the old stream's state kept. */
static void resumed(struct src *s)
{
    s->nsent = popcount_bm(s->sent, s->words);
    s->batch.count = s->batch.ndata = 0;   /* unsent: those pages are not in `sent` */
    s->resumed = true;
    s->resume_base = s->batch.zero_pages + s->batch.data_pages;
    mig_lock(s->g);
    s->g->p.pages_sent = s->resume_base;
    s->g->p.recover_sent = 0;
    mig_unlock(s->g, false);
    s->qhead = s->qlen = 0;
    s->last_fault = UINT64_MAX;
    s->window = PREPAGE_MIN;
    s->cursor = 0;
    s->rate_t0 = mig_now_ns();
    s->rate_bytes0 = s->g->conn.bytes_out;
}

/* Serves requests and pushes the rest until the destination has it all
 * (COMPLETE: 0), or the stream fails (-errno). */
static int serve(struct src *s, bool *ready, uint64_t *prepaged_total)
{
    struct vm_migration *g = s->g;
    int r;
    bool complete = false, done_sent = false;
    unsigned since_poll = 0;
    uint64_t prepaged = *prepaged_total;
    while (!complete) {
        bool all = s->nsent == s->npages;
        if (all && !done_sent) {
            uint8_t b[8];
            uint64_t n = htole64(s->nsent);
            memcpy(b, &n, 8);
            if ((r = flush(s)) || (r = migrate_send(&g->conn, MIGRATE_PAGES_DONE, 0, b, 8, NULL, 0)))
                return r ? r : -EIO;
            done_sent = true;
        }
        /* Nothing is pushed before READY: GO would queue behind those
         * pages, in the downtime (seen: 10-90 ms of it). Requested pages
         * are served meanwhile. */
        bool wait = all || !*ready;
        if (wait || since_poll++ >= POLL_EVERY) {
            since_poll = 0;
            struct pollfd p = { .fd = g->fd, .events = POLLIN };
            int n = poll(&p, 1, wait ? 200 : 0);
            if ((r = check_going(s)) && !atomic_load(&g->handed_over))
                return r;
            if (n > 0) {
                if ((r = handle_frame(s, ready, &complete, done_sent)))
                    return r;
                continue;
            }
            if (wait)
                continue;
        }
        uint64_t pfn;
        bool pre;
        if (!next_page(s, &pfn, &pre))
            continue;
        if (pre)
            *prepaged_total = ++prepaged;
        if ((r = send_page(s, pfn, true)))
            return r;
        if (pre && !(prepaged % 64)) {
            mig_lock(g);
            g->p.prepaged = prepaged;
            g->p.pages_remaining = s->npages - s->nsent;
            mig_unlock(g, false);
        }
    }
    return 0;
}

/* ---- the thread ---- */

static int run(struct src *s)
{
    struct vm_migration *g = s->g;
    struct virt_machine *m = s->m;
    struct migrate_addr a;
    int r = migrate_addr_parse(g->opts.to, &a, s->err, sizeof(s->err));
    if (r)
        return r;
    int fd = migrate_connect(&a, CONNECT_MS, s->err, sizeof(s->err));
    if (fd < 0)
        return fd;
    mig_lock(g);
    g->fd = fd;
    mig_unlock(g, false);
    if (atomic_load(&g->cancel))
        shutdown(fd, SHUT_RDWR);
    if ((r = migrate_conn_init(&g->conn, fd, fd)))
        return errmsg(s->err, sizeof(s->err), r, "out of memory");
    g->conn_ok = true;

    /* The handshake: the destination builds the machine from the board. */
    struct state_writer w;
    if ((r = state_writer_init_mem(&w)))
        return errmsg(s->err, sizeof(s->err), r, "out of memory");
    r = vm_snapshot_save_board(m, &w, s->err, sizeof(s->err));
    if (!r)
        r = state_writer_finish(&w, s->err, sizeof(s->err));
    if (!r) {
        size_t len;
        const uint8_t *board = state_writer_data(&w, &len);
        uint32_t mode = (g->opts.mode == VM_MIGRATE_MODE_PRECOPY ? 0 : MIGRATE_MODE_POSTCOPY) |
                        (g->opts.copy_storage ? MIGRATE_MODE_COPY_STORAGE : 0);
        uint32_t offer = MIGRATE_F_SYNC | (g->opts.compress ? MIGRATE_F_ZSTD : 0);
        r = migrate_hello_send(&g->conn, offer, mode, m->mem.ram_size, board, len);
        if (r)
            errmsg(s->err, sizeof(s->err), r, "sending HELLO: %s", strerror(-r));
    }
    state_writer_free(&w);
    if (r)
        return r;
    struct migrate_frame f;
    uint32_t features;
    if ((r = migrate_recv(&g->conn, &f, s->err, sizeof(s->err))))
        return r;
    if (f.type != MIGRATE_ACCEPT)
        return errmsg(s->err, sizeof(s->err), -EBADMSG, "the destination answered %s to HELLO",
                      migrate_frame_name(f.type));
    if ((r = migrate_u32_parse(&f, MIGRATE_F_ALL, &features, s->err, sizeof(s->err))))
        return r;
    s->zstd = features & MIGRATE_F_ZSTD ? ZSTD_LEVEL : 0;
    s->sync = features & MIGRATE_F_SYNC;

    /* Dirty logging: on already means diff snapshots were tracking; their
     * base is given up (a diff needs a full snapshot again). */
    s->was_paused = virt_is_paused(m);
    if (dirty_log_on(&m->mem.dirty)) {
        s->log_was_on = true;
        m->last_snapshot[0] = '\0';
        dirty_log_enable(&m->mem.dirty);
    } else if ((r = virt_dirty_start(m, s->err, sizeof(s->err)))) {
        return r;
    } else {
        s->log_started = true;
    }
    s->rate_t0 = mig_now_ns();
    s->rate_bytes0 = g->conn.bytes_out;
    enum next next = NEXT_POSTCOPY;
    if (g->opts.copy_storage) {
        mig_set_phase(g, VM_MIGRATE_ROUNDS);
        if ((r = storage_copy(s)))
            return r;
    }
    if (g->opts.mode != VM_MIGRATE_MODE_POSTCOPY) {
        mig_set_phase(g, VM_MIGRATE_ROUNDS);
        if ((r = precopy(s, &next)))
            return r;
    }
    return next == NEXT_STOP_COPY ? stop_copy(s) : postcopy(s);
}

void *mig_source_main(void *arg)
{
    struct vm_migration *g = arg;
    struct src s = { .g = g, .m = g->m };
    s.npages = g->m->mem.ram_size / GUEST_PAGE_SIZE;
    s.words = virt_dirty_bitmap_words(g->m);
    s.dirty = calloc(s.words, 8);
    s.scratch = calloc(s.words, 8);
    s.sent = calloc(s.words, 8);
    s.backed = calloc(s.words, 8);
    int r;
    if (!s.dirty || !s.scratch || !s.sent || !s.backed || migrate_batch_init(&s.batch))
        r = errmsg(s.err, sizeof(s.err), -ENOMEM, "out of memory");
    else
        r = run(&s);
    struct virt_machine *m = g->m;
    atomic_store(&m->throttle_pct, 0);
    if (s.storage)
        mig_storage_stop(&s.st);
    if (s.log_started)
        virt_dirty_stop(m, NULL, 0);
    if (r) {
        bool handed = atomic_load(&g->handed_over);
        if (g->conn_ok && !handed && r != -EREMOTEIO)
            migrate_send_error(&g->conn, r, s.err);
        if (!handed && s.paused_by_us) {
            char e[128];
            virt_resume(m, e, sizeof(e));   /* the VM goes on here */
        }
        char msg[400];
        snprintf(msg, sizeof(msg), "%.250s%s", s.err[0] ? s.err : strerror(-r),
                 handed ? " (after the handover: the VM stays paused here; the destination may "
                          "lack pages)" : "");
        mig_fail(g, r, msg);
    } else {
        mig_lock(g);
        g->p.phase = VM_MIGRATE_COMPLETED;
        g->p.pages_remaining = 0;
        g->p.bytes = g->conn.bytes_out;
        mig_unlock(g, true);
        /* The destination runs the VM: this one ends (running -> migrating
         * -> shutdown here). */
        virt_request_stop(m, VIRT_STOP_QUIT, 0);
    }
    mig_lock(g);
    mig_unlock(g, true);
    mig_close_stream(g);
    migrate_batch_free(&s.batch);
    free(s.dirty);
    free(s.scratch);
    free(s.sent);
    free(s.backed);
    return NULL;
}
