/* virtio-balloon. See balloon.h.
 *
 * Lock order: transport lock -> b->lock (config_read/config_write run under
 * the transport lock and take b->lock); nothing calls into the transport
 * while holding b->lock. */
#include "virtio/balloon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/state.h"

/* struct virtio_balloon_config (§5.5.4). */
struct balloon_config {
    uint32_t num_pages;
    uint32_t actual;
    uint32_t free_page_hint_cmd_id;
    uint32_t poison_val;
};

/* struct virtio_balloon_stat (§5.5.6.3): packed, 10 bytes. */
struct balloon_stat {
    uint16_t tag;
    uint64_t val;
} __attribute__((packed));

_Static_assert(sizeof(struct balloon_config) == 16, "virtio_balloon_config layout");
_Static_assert(sizeof(struct balloon_stat) == 10, "virtio_balloon_stat layout");

enum queue_role { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORTING, Q_NONE };

struct virtio_balloon {
    struct guest_mem *mem;
    struct virtio_dev *vdev;
    struct virtio_balloon_options opts;

    pthread_mutex_t lock;
    pthread_cond_t timer_cond;      /* CLOCK_MONOTONIC */
    bool timer_started, quit;
    pthread_t timer;

    /* Under lock. */
    uint32_t target;
    uint32_t actual;
    bool stats_wanted;              /* return the held buffer when we have one */
    bool stats_valid;
    uint64_t stats_ns;              /* CLOCK_MONOTONIC of the last statistics */
    bool stat_present[VIRTIO_BALLOON_S_NR];
    uint64_t stat[VIRTIO_BALLOON_S_NR];
    uint64_t inflated, deflated, ignored, reported;
    uint64_t stats_updates;

    /* The statistics buffer the device holds: worker only (and reset, when
     * no handler runs). */
    bool held;
    struct vq_elem held_elem;
    /* The held buffer a save gave back to the ring (worker's, like held):
     * when chain `resume_head` is popped again it is held, not taken as
     * fresh figures. */
    bool resume;
    uint16_t resume_head;
};

static const char *const stat_names[VIRTIO_BALLOON_S_NR] = {
    "swap_in", "swap_out", "major_faults", "minor_faults", "free_memory", "total_memory",
    "available_memory", "disk_caches", "hugetlb_allocations", "hugetlb_failures",
    "oom_kills", "alloc_stalls", "async_scans", "direct_scans", "async_reclaims",
    "direct_reclaims",
};

const char *virtio_balloon_stat_name(unsigned tag)
{
    return tag < VIRTIO_BALLOON_S_NR ? stat_names[tag] : NULL;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- configuration space ---- */

static void balloon_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    struct virtio_balloon *b = dev;
    struct balloon_config c = { 0 };
    pthread_mutex_lock(&b->lock);
    c.num_pages = b->target;
    c.actual = b->actual;
    pthread_mutex_unlock(&b->lock);
    memcpy(buf, (const uint8_t *)&c + offset, len);
}

static void balloon_config_write(void *dev, uint32_t offset, const void *buf, uint32_t len)
{
    struct virtio_balloon *b = dev;
    const uint32_t lo = offsetof(struct balloon_config, actual), hi = lo + 4;
    /* Only `actual` is the driver's to write (§5.5.4); poison_val matters
     * only with PAGE_POISON, which is not offered. */
    if (offset < lo || offset + len > hi)
        return;
    pthread_mutex_lock(&b->lock);
    memcpy((uint8_t *)&b->actual + (offset - lo), buf, len);
    pthread_mutex_unlock(&b->lock);
}

/* ---- queues ---- */

/* §5.5.2: the queues after deflateq exist only with their features, and
 * the ones present are numbered consecutively. */
static enum queue_role queue_role(uint64_t features, unsigned q)
{
    if (q == 0)
        return Q_INFLATE;
    if (q == 1)
        return Q_DEFLATE;
    unsigned next = 2;
    if (features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
        if (q == next)
            return Q_STATS;
        next++;
    }
    if ((features & (1ull << VIRTIO_BALLOON_F_REPORTING)) && q == next)
        return Q_REPORTING;
    return Q_NONE;
}

/* Discards the guest-physical run [first, first + n) pages. */
static void discard_pfns(struct virtio_balloon *b, uint64_t first, uint64_t n)
{
    if (n)
        guest_mem_discard(b->mem, first << VIRTIO_BALLOON_PFN_SHIFT, n << VIRTIO_BALLOON_PFN_SHIFT);
}

/* One inflate or deflate buffer: le32 PFNs in the device-readable part. */
static void do_pfns(struct virtio_balloon *b, const struct vq_elem *e, bool inflate)
{
    uint32_t pfns[256];
    uint64_t valid = 0, ignored = 0;
    uint64_t run_start = 0, run_len = 0;
    size_t off = 0;
    size_t total = e->out_len & ~(size_t)3;   /* a trailing partial PFN is ignored */

    while (off < total) {
        size_t want = total - off < sizeof(pfns) ? total - off : sizeof(pfns);
        size_t got = vq_iov_read(e->iov, e->out_num, off, pfns, want);
        if (got < 4)
            break;
        for (size_t i = 0; i < got / 4; i++) {
            uint64_t pfn = pfns[i];
            uint64_t pa = pfn << VIRTIO_BALLOON_PFN_SHIFT;
            if (!guest_mem_ram_ptr(b->mem, pa, 1ull << VIRTIO_BALLOON_PFN_SHIFT)) {
                ignored++;   /* not guest RAM: nothing of ours to give back */
                continue;
            }
            valid++;
            if (!inflate)
                continue;    /* deflate: the guest's next touch maps a zero page */
            if (run_len && pfn == run_start + run_len) {
                run_len++;
            } else {
                discard_pfns(b, run_start, run_len);
                run_start = pfn;
                run_len = 1;
            }
        }
        off += got & ~(size_t)3;
    }
    discard_pfns(b, run_start, run_len);
    pthread_mutex_lock(&b->lock);
    if (inflate)
        b->inflated += valid;
    else
        b->deflated += valid;
    b->ignored += ignored;
    pthread_mutex_unlock(&b->lock);
}

/* One free page report: every buffer of the chain is a free range (Linux
 * adds them device-writable; readable ones count the same). vq_pop already
 * checked that each lies inside guest RAM. */
static void do_report(struct virtio_balloon *b, const struct vq_elem *e)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
        const uint8_t *p = e->iov[i].iov_base;
        uint64_t pa = b->mem->ram_base + (uint64_t)(p - b->mem->ram);
        if (guest_mem_discard(b->mem, pa, e->iov[i].iov_len) == 0)
            bytes += e->iov[i].iov_len;
    }
    pthread_mutex_lock(&b->lock);
    b->reported += bytes;
    pthread_mutex_unlock(&b->lock);
}

/* A statistics buffer arrived: fresh figures. */
static void take_stats(struct virtio_balloon *b, const struct vq_elem *e)
{
    struct balloon_stat s[64];
    size_t got = vq_iov_read(e->iov, e->out_num, 0, s, sizeof(s));
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < got / sizeof(s[0]); i++) {
        if (s[i].tag < VIRTIO_BALLOON_S_NR) {
            b->stat[s[i].tag] = s[i].val;
            b->stat_present[s[i].tag] = true;
        }
    }
    b->stats_valid = true;
    b->stats_ns = now_ns();
    b->stats_updates++;
    b->stats_wanted = false;
    pthread_mutex_unlock(&b->lock);
}

static void serve_stats(struct virtio_balloon *b, struct virtio_dev *vdev, unsigned q,
                        struct vq_elem *e)
{
    while (virtio_dev_pop(vdev, q, e) == 1) {
        /* The buffer a save gave back: the driver does not reuse a chain
         * before it is used, so the same head is the same buffer, with the
         * figures already taken. */
        bool again = b->resume && e->head == b->resume_head && !b->held;
        b->resume = false;
        if (!again)
            take_stats(b, e);
        /* §5.5.6.3: the driver keeps one buffer in the queue; one more is
         * its mistake: hand the older back rather than lose it. */
        if (b->held)
            virtio_dev_push(vdev, q, &b->held_elem, 0);
        memcpy(&b->held_elem, e, sizeof(*e));
        b->held = true;
    }
    pthread_mutex_lock(&b->lock);
    bool want = b->stats_wanted;
    pthread_mutex_unlock(&b->lock);
    if (want && b->held) {
        /* Returning the buffer is the request for new figures. */
        b->held = false;
        virtio_dev_push(vdev, q, &b->held_elem, 0);
    }
}

static void balloon_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct virtio_balloon *b = dev;
    struct vq_elem e;
    enum queue_role role = queue_role(virtio_dev_features(vdev), q);

    if (role == Q_STATS) {
        serve_stats(b, vdev, q, &e);
        return;
    }
    if (role == Q_NONE)
        return;
    while (virtio_dev_pop(vdev, q, &e) == 1) {
        if (role == Q_REPORTING)
            do_report(b, &e);
        else
            do_pfns(b, &e, role == Q_INFLATE);
        virtio_dev_push(vdev, q, &e, 0);
    }
}

static void balloon_reset(void *dev)
{
    struct virtio_balloon *b = dev;
    /* No handler runs: the held statistics buffer belongs to rings the
     * transport forgets now. The host's target stays for the next driver. */
    b->held = false;
    b->resume = false;
    pthread_mutex_lock(&b->lock);
    b->actual = 0;
    b->stats_wanted = false;
    b->stats_valid = false;
    memset(b->stat_present, 0, sizeof(b->stat_present));
    pthread_mutex_unlock(&b->lock);
}

static void stop_timer(struct virtio_balloon *b)
{
    if (!b->timer_started)
        return;
    pthread_mutex_lock(&b->lock);
    b->quit = true;
    pthread_cond_broadcast(&b->timer_cond);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->timer, NULL);
    b->timer_started = false;
}

static void free_balloon(struct virtio_balloon *b)
{
    pthread_cond_destroy(&b->timer_cond);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static void balloon_destroy(void *dev)
{
    struct virtio_balloon *b = dev;
    stop_timer(b);
    free_balloon(b);
}

/* ---- snapshots ---- */

#define STATS_Q 2u   /* with STATS_VQ (§5.5.2), the only way to hold a buffer */

/* Section "virtio-balloon"[instance] v1.0:
 *   u32 target, u32 actual,
 *   u8 statistics wanted, u8 statistics valid, u64 their age in ns,
 *   u64 statistics updates, u16 bitmap of the tags present, u64 stat[16],
 *   u64 inflated, deflated, ignored PFNs, reported bytes (totals),
 *   u8 a held statistics buffer was given back, u16 its head.
 * The held statistics buffer is given back to the ring (the transport
 * saves no outstanding chain); the loaded device - and the source, if it
 * goes on - holds it again when it pops it, without counting it as new
 * figures. Deflate-on-oom and free page reporting are negotiated features:
 * the transport's section has them, and its load refuses options that no
 * longer offer a negotiated one (reporting also changes the queue count). */
static int balloon_save(void *dev, struct virtio_dev *vdev, struct state_writer *w,
                        uint32_t instance)
{
    struct virtio_balloon *b = dev;
    if (b->held) {
        if (virtio_dev_give_back(vdev, STATS_Q, &b->held_elem)) {
            b->resume = true;
            b->resume_head = b->held_elem.head;
            virtio_dev_kick(vdev, STATS_Q);   /* held again at resume */
        }
        /* Otherwise it belongs to a ring the driver restarted since. */
        b->held = false;
    }
    uint64_t now = now_ns();
    pthread_mutex_lock(&b->lock);
    state_begin(w, VIRTIO_BALLOON_STATE_TAG, instance, VIRTIO_BALLOON_STATE_MAJOR,
                VIRTIO_BALLOON_STATE_MINOR);
    state_put_u32(w, b->target);
    state_put_u32(w, b->actual);
    state_put_u8(w, b->stats_wanted);
    state_put_u8(w, b->stats_valid);
    state_put_u64(w, b->stats_valid ? now - b->stats_ns : 0);
    state_put_u64(w, b->stats_updates);
    uint16_t present = 0;
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        present |= (uint16_t)(b->stat_present[i] << i);
    state_put_u16(w, present);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        state_put_u64(w, b->stat[i]);
    state_put_u64(w, b->inflated);
    state_put_u64(w, b->deflated);
    state_put_u64(w, b->ignored);
    state_put_u64(w, b->reported);
    pthread_mutex_unlock(&b->lock);
    state_put_u8(w, b->resume);
    state_put_u16(w, b->resume ? b->resume_head : 0);
    return state_end(w);
}

static int balloon_load(void *dev, struct virtio_dev *vdev, const struct state_reader *r,
                        uint32_t instance, char *err, size_t errlen)
{
    struct virtio_balloon *b = dev;
    struct state_section s;
    uint32_t target, actual;
    bool wanted, valid, resume;
    uint64_t age, updates, stat[VIRTIO_BALLOON_S_NR], tot[4];
    uint16_t present, head;
    (void)vdev;
    int ret = state_reader_section(r, VIRTIO_BALLOON_STATE_TAG, instance,
                                   VIRTIO_BALLOON_STATE_MAJOR, &s, err, errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &target);
    state_get_u32(&s, &actual);
    state_get_bool(&s, &wanted);
    state_get_bool(&s, &valid);
    state_get_u64(&s, &age);
    state_get_u64(&s, &updates);
    state_get_u16(&s, &present);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        state_get_u64(&s, &stat[i]);
    for (unsigned i = 0; i < 4; i++)
        state_get_u64(&s, &tot[i]);
    state_get_bool(&s, &resume);
    state_get_u16(&s, &head);
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;
    /* What take_stats and reset leave: tags present and an age only with
     * valid statistics, valid statistics only after an update (a reset
     * keeps the old values but not their tags). */
    if ((!valid && (present || age)) || (valid && !updates))
        return state_section_error(&s, err, errlen, -EINVAL,
                                   "statistics valid %d with tags 0x%x, age %llu, %llu updates", valid,
                                   present, (unsigned long long)age, (unsigned long long)updates);
    if (resume && head >= VIRTIO_BALLOON_QUEUE_SIZE)
        return state_section_error(&s, err, errlen, -EINVAL, "held statistics buffer %u", head);
    if (!resume && head)
        return state_section_error(&s, err, errlen, -EINVAL, "no held buffer but head %u", head);

    b->held = false;   /* the old ring's: gone with it */
    b->resume = resume;
    b->resume_head = head;
    uint64_t now = now_ns();
    pthread_mutex_lock(&b->lock);
    b->target = target;
    b->actual = actual;
    b->stats_wanted = wanted;
    b->stats_valid = valid;
    /* Ages carry over, clocks do not (another host, another boot). */
    b->stats_ns = valid && age < now ? now - age : 0;
    b->stats_updates = updates;
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++) {
        b->stat_present[i] = present & (1u << i);
        b->stat[i] = stat[i];
    }
    b->inflated = tot[0];
    b->deflated = tot[1];
    b->ignored = tot[2];
    b->reported = tot[3];
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static const struct virtio_device_ops balloon_ops = {
    .name = "balloon",
    .device_id = VIRTIO_ID_BALLOON,
    .config_read = balloon_config_read,
    .config_write = balloon_config_write,
    .queue_notify = balloon_queue_notify,
    .reset = balloon_reset,
    .destroy = balloon_destroy,
    .save = balloon_save,
    .load = balloon_load,
};

/* ---- host side ---- */

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
    pthread_mutex_lock(&b->lock);
    b->target = pages;
    pthread_mutex_unlock(&b->lock);
    virtio_dev_config_changed(b->vdev);
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
    if (!(virtio_dev_features(b->vdev) & (1ull << VIRTIO_BALLOON_F_STATS_VQ)))
        return;
    pthread_mutex_lock(&b->lock);
    b->stats_wanted = true;
    pthread_mutex_unlock(&b->lock);
    /* The worker returns the buffer: only it may touch the queue. */
    virtio_dev_kick(b->vdev, 2);
}

void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *info)
{
    memset(info, 0, sizeof(*info));
    info->features = virtio_dev_status(b->vdev) & VIRTIO_STATUS_FEATURES_OK
                         ? virtio_dev_features(b->vdev) : 0;
    uint64_t now = now_ns();
    pthread_mutex_lock(&b->lock);
    info->target_pages = b->target;
    info->actual_pages = b->actual;
    info->stats_valid = b->stats_valid;
    info->stats_age_ms = b->stats_valid ? (now - b->stats_ns) / 1000000 : 0;
    memcpy(info->stat_present, b->stat_present, sizeof(info->stat_present));
    memcpy(info->stat, b->stat, sizeof(info->stat));
    info->inflated_pages = b->inflated;
    info->deflated_pages = b->deflated;
    info->ignored_pfns = b->ignored;
    info->reported_bytes = b->reported;
    info->stats_updates = b->stats_updates;
    pthread_mutex_unlock(&b->lock);
}

/* Asks for statistics every stats_interval_ms. A thread of its own keeps
 * the device self-contained; it sleeps on a condition variable between
 * requests and costs nothing else. */
static void *timer_main(void *arg)
{
    struct virtio_balloon *b = arg;
    pthread_mutex_lock(&b->lock);
    while (!b->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)b->opts.stats_interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        int r = 0;
        while (!b->quit && r != ETIMEDOUT)
            r = pthread_cond_timedwait(&b->timer_cond, &b->lock, &ts);
        if (b->quit)
            break;
        pthread_mutex_unlock(&b->lock);
        virtio_balloon_request_stats(b);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int virtio_balloon_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                          const struct virtio_balloon_options *opts,
                          struct virtio_balloon **bal, struct virtio_dev **out)
{
    struct virtio_balloon *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->mem = mem;
    b->opts = *opts;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->timer_cond, &ca);
    pthread_condattr_destroy(&ca);

    uint64_t features = 1ull << VIRTIO_BALLOON_F_STATS_VQ;
    if (opts->deflate_on_oom)
        features |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    if (opts->reporting)
        features |= 1ull << VIRTIO_BALLOON_F_REPORTING;
    struct virtio_device_params p = {
        .ops = &balloon_ops, .dev = b, .features = features,
        .config_size = sizeof(struct balloon_config),
        .num_queues = opts->reporting ? 4 : 3,
        .queue_max = VIRTIO_BALLOON_QUEUE_SIZE, .nworkers = 1,
    };
    int r = virtio_mmio_create(mem, base, irq, &p, out);
    if (r) {
        free_balloon(b);
        return r;
    }
    b->vdev = *out;
    if (opts->stats_interval_ms) {
        /* Like the transport's workers: no signals here. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&b->timer, NULL, timer_main, b);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r) {
            virtio_mmio_destroy(*out);   /* frees b through balloon_destroy */
            *out = NULL;
            return -r;
        }
        pthread_setname_np(b->timer, "balloon-stats");
        b->timer_started = true;
    }
    *bal = b;
    return 0;
}
