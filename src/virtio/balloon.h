/* virtio-balloon (VIRTIO 1.2 §5.5, device id 5): the host asks the guest to
 * give memory back (the target `num_pages` in the configuration space), the
 * guest's driver returns pages through the inflate queue and takes them
 * back through the deflate queue, reporting its balloon size in `actual`.
 *
 * What the device does with the pages:
 *  - inflateq: page frame numbers of 4 KiB pages (le32 each). A PFN outside
 *    guest RAM is ignored (a hostile or confused driver costs nothing);
 *    runs of consecutive PFNs are discarded from the host at once
 *    (guest_mem_discard: MADV_DONTNEED), so the VMM's RSS falls.
 *  - deflateq: nothing to do on the host: the guest's next touch maps a
 *    fresh zero page. So VIRTIO_BALLOON_F_MUST_TELL_HOST is not offered:
 *    the driver may use deflated pages before the device has seen them.
 *  - statsq (VIRTIO_BALLOON_F_STATS_VQ, §5.5.6.3): the device keeps the
 *    driver's last statistics buffer and returns it (used, length 0) to
 *    ask for fresh figures: every `stats_interval_ms`, and on demand
 *    (virtio_balloon_request_stats).
 *  - reporting_vq (VIRTIO_BALLOON_F_REPORTING, §5.5.6.5): ranges of free
 *    guest memory the driver reports are discarded like inflated pages;
 *    the guest gets them back by using them.
 *  - VIRTIO_BALLOON_F_DEFLATE_ON_OOM: offered when asked for; the guest
 *    deflates by itself instead of failing an allocation.
 *
 * Queue numbering (§5.5.2): inflateq 0, deflateq 1, then statsq, then
 * reporting_vq, each present only when its feature was negotiated, so the
 * reporting queue is 3 with STATS_VQ and 2 without (as Linux and QEMU
 * number them; free_page_vq, FREE_PAGE_HINT, is never offered).
 *
 * Threads: create/destroy on the machine's control thread; one worker
 * thread serves the queues; set_target/request_stats/get_info from any
 * thread (the control socket's I/O thread). A small timer thread asks for
 * statistics every stats_interval_ms. Lock order: transport lock ->
 * balloon lock (config_read/config_write take the balloon lock). */
#ifndef NIMBUS_VIRTIO_BALLOON_H
#define NIMBUS_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_BALLOON 5u

/* Feature bits (§5.5.3). */
#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ       1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_FREE_PAGE_HINT 3
#define VIRTIO_BALLOON_F_PAGE_POISON    4
#define VIRTIO_BALLOON_F_REPORTING      5

#define VIRTIO_BALLOON_PFN_SHIFT 12     /* PFNs count 4 KiB pages (§5.5.6) */
#define VIRTIO_BALLOON_QUEUE_SIZE 128u  /* Linux needs >= 32 for reporting */
/* Statistics tags the device keeps (§5.5.6.3: 0..9; Linux 6.12 sends up
 * to 15). Others are ignored. */
#define VIRTIO_BALLOON_S_NR 16u
#define VIRTIO_BALLOON_S_MEMFREE 4u
#define VIRTIO_BALLOON_S_MEMTOT  5u
#define VIRTIO_BALLOON_S_AVAIL   6u

struct virtio_balloon_options {
    bool deflate_on_oom;            /* offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM */
    bool reporting;                 /* offer VIRTIO_BALLOON_F_REPORTING */
    unsigned stats_interval_ms;     /* ask for statistics this often; 0: only on demand */
};

/* What the host can read about the balloon. */
struct virtio_balloon_info {
    uint64_t target_pages;          /* num_pages, set by the host */
    uint64_t actual_pages;          /* actual, written by the driver */
    uint64_t features;              /* negotiated (0 before the driver is up) */
    bool stats_valid;               /* the driver has sent statistics */
    uint64_t stats_age_ms;          /* since the last statistics arrived */
    uint64_t stats_updates;         /* statistics buffers received so far */
    bool stat_present[VIRTIO_BALLOON_S_NR];
    uint64_t stat[VIRTIO_BALLOON_S_NR];
    /* Totals since the device was created, in 4 KiB pages / bytes. */
    uint64_t inflated_pages, deflated_pages, ignored_pfns, reported_bytes;
};

struct virtio_balloon;

/* Snapshots (docs/architecture.md "State format"). */
#define VIRTIO_BALLOON_STATE_TAG   "virtio-balloon"
#define VIRTIO_BALLOON_STATE_MAJOR 1
#define VIRTIO_BALLOON_STATE_MINOR 0

/* Creates the balloon at `base`; *bal is the device for the calls below,
 * owned by the transport (*out), which frees it. Returns 0 or -errno. */
int virtio_balloon_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                          const struct virtio_balloon_options *opts,
                          struct virtio_balloon **bal, struct virtio_dev **out);

/* Sets the target balloon size (pages of 4 KiB) and tells the driver with
 * a configuration change interrupt. Any thread. */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);

/* Asks the driver for fresh statistics now (if it has given a buffer).
 * Any thread. */
void virtio_balloon_request_stats(struct virtio_balloon *b);

/* Copies the current state. Any thread. */
void virtio_balloon_get_info(struct virtio_balloon *b, struct virtio_balloon_info *info);

/* The name of statistics tag `tag` ("free_memory", ...), NULL if unknown. */
const char *virtio_balloon_stat_name(unsigned tag);

#endif
