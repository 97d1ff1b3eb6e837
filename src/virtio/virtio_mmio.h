/* The virtio-mmio transport, version 2 (VIRTIO 1.2 §4.2.2), and the device
 * interface every virtio device (blk, rng; later net, console, vsock,
 * balloon) implements.
 *
 * Three layers, three ops tables: the transport (this file) owns the
 * registers, feature negotiation, the status state machine, the queues and
 * the interrupt; a device fills `struct virtio_device_ops` and serves its
 * queues; the device's host backend (block_ops, later net's) sits below it.
 *
 * Worker threads. A QueueNotify write from a hart never does host I/O: it
 * marks the queue pending and wakes one of the device's worker threads,
 * which calls ops->queue_notify(). Several workers may serve one device (and
 * one queue) at once: a handler takes one element with virtio_dev_pop(),
 * and if it will block on I/O it calls virtio_dev_kick_if_avail() first so
 * another worker goes on with the rest of the queue. Anything may call
 * virtio_dev_kick() (a network backend with packets to deliver, say).
 * A handler completes every element it popped before it returns: reset
 * waits for the handlers to return and then forgets the rings. (A device
 * may keep an element across calls, as the balloon's statistics buffer,
 * if its reset op forgets it; if the driver stops and restarts that queue
 * meanwhile, the transport drops the element's push.) A QueueNotify after FEATURES_OK but before
 * DRIVER_OK is remembered and served when DRIVER_OK is set. (The fuzz
 * targets switch a device to polled mode instead, virtio_mmio_set_polled:
 * no workers, the caller runs the handlers.)
 *
 * A driver that breaks the rules (bad descriptors, bad ring addresses)
 * makes the device set DEVICE_NEEDS_RESET and raise a configuration change
 * interrupt (§2.1.2); its queues stop until the driver resets it. Other
 * devices are not affected.
 *
 * Locks and order: the transport lock (registers, status, interrupt, worker
 * bookkeeping) -> each queue's lock -> the PLIC lock. Device handlers hold
 * no transport lock; config_read/config_write run under the transport lock
 * and must not call back into the transport.
 *
 * Threads: virtio_mmio_create/destroy on the machine's control thread;
 * MMIO ops on hart threads; virtio_mmio_reset with the harts stopped;
 * virtio_dev_* on the device's workers (and kick/config_changed anywhere). */
#ifndef NIMBUS_VIRTIO_VIRTIO_MMIO_H
#define NIMBUS_VIRTIO_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MMIO_SIZE       0x1000ull
#define VIRTIO_MMIO_MAGIC      0x74726976u   /* "virt" */
#define VIRTIO_MMIO_VENDOR     0x534d494eu   /* "NIMS" */
#define VIRTIO_MAX_QUEUES      64u
#define VIRTIO_MAX_WORKERS     8u

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE        1u
#define VIRTIO_STATUS_DRIVER             2u
#define VIRTIO_STATUS_DRIVER_OK          4u
#define VIRTIO_STATUS_FEATURES_OK        8u
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED             128u

/* Transport feature bits (§6) the transport offers itself. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* InterruptStatus bits (§4.2.2). */
#define VIRTIO_INT_USED   1u
#define VIRTIO_INT_CONFIG 2u

struct virtio_dev;
struct state_writer;
struct state_reader;

struct virtio_device_ops {
    const char *name;           /* "blk", "rng": for messages and threads */
    uint32_t device_id;         /* §5: 2 block, 4 entropy, ... */
    /* Reads/writes `len` (1, 2, 4 or 8) bytes of the device configuration
     * space at `offset`, already checked against config_size. Under the
     * transport lock. write may be NULL (read-only configuration). */
    void (*config_read)(void *dev, uint32_t offset, void *buf, uint32_t len);
    void (*config_write)(void *dev, uint32_t offset, const void *buf, uint32_t len);
    /* Serves queue `q` on a worker thread: pop, process, push (see above). */
    void (*queue_notify)(void *dev, struct virtio_dev *vdev, unsigned q);
    /* Optional: the status just changed to `status` (DRIVER_OK: start
     * polling a backend, say). Under the transport lock; workers idle only
     * on reset (status 0). */
    void (*status_changed)(void *dev, uint8_t status);
    /* Optional: the driver's features were accepted (FEATURES_OK, §3.1.1):
     * set up what depends on them (a tap's offloads, say). Under the
     * transport lock. */
    void (*features_ok)(void *dev, uint64_t features);
    /* Optional: the device was reset (§2.4); no handler is running. */
    void (*reset)(void *dev);
    /* Frees the device and closes its backend; no handler is running. */
    void (*destroy)(void *dev);
    /* Snapshots (virtio_mmio_save/_load). A device whose state, once
     * quiesced, is all in the transport and guest RAM (rng, blk: a handler
     * completes what it pops) sets no_device_state and has no save/load; a
     * device with neither can't be saved (-ENOTSUP), so a device whose
     * state nobody wrote down is never silently lost.
     * save: writes the device's own section(s) with `instance`. The device
     * is quiesced. A chain it holds (popped, not used) it gives back with
     * virtio_dev_unpop() and records what it needs to go on with it when it
     * pops it again; the transport refuses to save a queue with chains
     * still outstanding. Returns the writer's error.
     * load: reads and checks the device's section(s), then applies them;
     * on refusal (-errno, one line in err) nothing changed. The device is
     * quiesced; the transport applies its own state right after, and
     * serves every queue with buffers available. */
    bool no_device_state;
    int (*save)(void *dev, struct virtio_dev *vdev, struct state_writer *w, uint32_t instance);
    int (*load)(void *dev, struct virtio_dev *vdev, const struct state_reader *r,
                uint32_t instance, char *err, size_t errlen);
};

/* What one instance offers. */
struct virtio_device_params {
    const struct virtio_device_ops *ops;
    void *dev;                  /* passed back to every op */
    uint64_t features;          /* device-specific feature bits; the transport
                                   adds VERSION_1, INDIRECT_DESC, EVENT_IDX */
    uint32_t config_size;       /* bytes of configuration space */
    unsigned num_queues;        /* 1..VIRTIO_MAX_QUEUES */
    uint16_t queue_max;         /* QueueNumMax, a power of two <= VQ_MAX_SIZE */
    unsigned nworkers;          /* worker threads, 1..VIRTIO_MAX_WORKERS */
};

/* Creates the transport for one device at `base` (a VIRTIO_MMIO_SIZE window
 * registered with `mem`) with interrupt `irq`, and starts its workers. On
 * success the transport owns `params->dev` (ops->destroy frees it in
 * virtio_mmio_destroy); on failure the caller still does. Returns 0 or
 * -errno. */
int virtio_mmio_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                       const struct virtio_device_params *params, struct virtio_dev **out);

/* Stops the workers, destroys the device, frees the transport. NULL is fine.
 * No hart may be running. */
void virtio_mmio_destroy(struct virtio_dev *vdev);

/* Device reset as on power-up (§2.4): waits for the handlers, resets the
 * device and the queues, lowers the interrupt. Thread: any, harts stopped
 * (a Status=0 write from a hart does the same from its thread). */
void virtio_mmio_reset(struct virtio_dev *vdev);

/* Polled mode, for the fuzz targets (tests/fuzz/fuzz_virtio_*.c): makes
 * the device's handling deterministic and single-threaded. Stops the worker
 * threads; from then on QueueNotify, DRIVER_OK and virtio_dev_kick() only
 * mark queues pending, and virtio_mmio_poll() runs the handlers on the
 * caller's thread. Call it right after creating the device, before the
 * driver touches it. Thread: the one that created the device. */
void virtio_mmio_set_polled(struct virtio_dev *vdev);

/* Polled mode: serves pending queues on the calling thread, one handler
 * call at a time as a worker would, until none is pending (nor halted or
 * paused) or `max_calls` calls were made. When nothing is pending at first,
 * waits up to `wait_ms` for a kick from another thread (a backend's). Returns
 * the number of handler calls; max_calls means work was still pending (a
 * handler that keeps re-kicking itself). Thread: the one driving the
 * device's registers, never inside a handler. */
unsigned virtio_mmio_poll(struct virtio_dev *vdev, unsigned max_calls, unsigned wait_ms);

/* ---- snapshots (docs/architecture.md "State format") ---- */

#define VIRTIO_MMIO_STATE_TAG   "virtio-mmio"
#define VIRTIO_MMIO_STATE_MAJOR 1
#define VIRTIO_MMIO_STATE_MINOR 0

/* Stops the device taking work: waits until no handler runs and keeps new
 * ones from starting (notifications and kicks are remembered) until
 * virtio_mmio_resume(). Save and load need it; the VM is paused as well
 * (no hart touches the registers). Thread: the machine's control thread,
 * never a handler. */
void virtio_mmio_quiesce(struct virtio_dev *vdev);
void virtio_mmio_resume(struct virtio_dev *vdev);

/* Saves the device's section(s) (ops->save) and then section
 * "virtio-mmio"[instance]: device id and queue count, status (with
 * DEVICE_NEEDS_RESET), feature selects, driver features, ConfigGeneration,
 * InterruptStatus, QueueSel, the notifications kept for DRIVER_OK, and per
 * queue: num, ready, broken, event_idx, indirect, the three ring addresses,
 * last_avail and used_idx. No host pointers. Precondition: quiesced, no
 * chain outstanding after the device's save (a ready queue's last_avail ==
 * used_idx). Returns 0, -EBUSY (not quiesced, chains outstanding), -ENOTSUP
 * (a device that can't be saved) or the writer's error. A device op may
 * give back held chains (see struct virtio_device_ops), so the device goes
 * on correctly after resume too. */
int virtio_mmio_save(struct virtio_dev *vdev, struct state_writer *w, uint32_t instance);

/* Loads section "virtio-mmio"[instance] (and the device's) into a device of
 * the same type over the same guest RAM, with as many queues as saved or
 * more (a section from a build before the device gained queues: those
 * stay unconfigured, as a driver that has not set them up leaves them).
 * Every field is
 * checked before anything changes: status bits reachable through the
 * registers (DRIVER_OK needs FEATURES_OK; FEATURES_OK needs driver features
 * offered by this device, VERSION_1 among them; NEEDS_RESET and ready
 * queues need FEATURES_OK), InterruptStatus bits, and per ready queue the
 * checks vq_start makes (num a power of two <= QueueNumMax, alignment, every
 * ring byte in RAM), event_idx/indirect as negotiated, and last_avail ==
 * used_idx (nothing outstanding). Then the rings are restarted, the
 * indices restored, queues with available buffers marked for the workers
 * (served at resume) and the interrupt line set from InterruptStatus.
 * Precondition: quiesced. Returns 0 or -errno with a one-line message. */
int virtio_mmio_load(struct virtio_dev *vdev, const struct state_reader *r, uint32_t instance,
                     char *err, size_t errlen);

/* For a device's load op, to check its own section against the
 * transport's: the status and driver features section "virtio-mmio"
 * [instance] holds (already checked by virtio_mmio_load when the device's
 * load runs). Returns 0, or -ENOENT/-EBADMSG. */
int virtio_mmio_saved_features(const struct state_reader *r, uint32_t instance, uint8_t *status,
                               uint64_t *features);

/* Writes /soc/virtio_mmio@<base>: compatible "virtio,mmio", reg,
 * interrupt-parent, interrupts. Returns 0 or -errno. */
int virtio_mmio_fdt(struct virtio_dev *vdev, struct fdt_ctx *ctx);

/* ---- for devices (worker threads unless said otherwise) ---- */

/* Pops the next chain of queue `q`: 1 taken, 0 empty or stopped; a broken
 * chain sets DEVICE_NEEDS_RESET and gives 0. */
int virtio_dev_pop(struct virtio_dev *vdev, unsigned q, struct vq_elem *elem);

/* Returns `elem` with `len` bytes written, interrupting the driver if it
 * wants that. An element popped before the queue was last stopped, started
 * or reset is dropped: its ring is gone. */
void virtio_dev_push(struct virtio_dev *vdev, unsigned q, const struct vq_elem *elem, uint32_t len);

/* Returns several chains with one used-index update (vq_push_many). */
void virtio_dev_push_many(struct virtio_dev *vdev, unsigned q, const struct vq_used *used,
                          unsigned n);

/* Gives back the last `n` chains this handler popped and did not push
 * (vq_unpop). Only for a queue one handler at a time serves. */
void virtio_dev_unpop(struct virtio_dev *vdev, unsigned q, unsigned n);

/* Marks queue `q` pending and wakes a worker. Any thread. */
void virtio_dev_kick(struct virtio_dev *vdev, unsigned q);

/* Gives back `elem`, the last chain popped from queue `q` and not pushed,
 * so the next pop takes it again (a device's save, see struct
 * virtio_device_ops). False, and nothing changed, when it is not the last
 * chain popped from the current ring (the queue restarted since, say).
 * Only on a quiesced device or from the queue's one handler. */
bool virtio_dev_give_back(struct virtio_dev *vdev, unsigned q, const struct vq_elem *elem);

/* virtio_dev_kick() only if queue `q` has buffers nobody took yet: what a
 * handler calls after popping one request it will block on, so another
 * worker serves the rest (and none is woken for nothing). A buffer made
 * available just after the peek is still seen: the handler pops until the
 * ring is empty, and an empty pop asks the driver to notify (§2.7.10). */
void virtio_dev_kick_if_avail(struct virtio_dev *vdev, unsigned q);

/* The driver broke a rule the device found (a request too short for its
 * header, say): DEVICE_NEEDS_RESET and a configuration interrupt. */
void virtio_dev_needs_reset(struct virtio_dev *vdev);

/* The device changed its configuration: bump ConfigGeneration and send a
 * configuration change interrupt. Any thread but under no device lock that
 * config_read takes. */
void virtio_dev_config_changed(struct virtio_dev *vdev);

/* The features both sides agreed on (valid once FEATURES_OK is set). */
uint64_t virtio_dev_features(struct virtio_dev *vdev);

/* The device's own state (params->dev). Any thread. */
void *virtio_dev_priv(struct virtio_dev *vdev);

/* The device status register, e.g. to check DEVICE_NEEDS_RESET. */
uint8_t virtio_dev_status(struct virtio_dev *vdev);

#endif
