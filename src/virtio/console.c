/* virtio-console. See console.h.
 *
 * Lock: `lock` guards the input buffer and `vdev`; it is taken on the worker
 * and by virtio_console_input(), never held across a call into the
 * transport that takes the transport lock (push, kick). The held transmit
 * element (`tx_held`, `tx_done`) belongs to the worker alone. */
#include "virtio/console.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

/* Queues of port 0 (§5.3.2; no MULTIPORT, so no control queues). */
#define Q_RX 0u
#define Q_TX 1u
#define CONSOLE_QUEUE_MAX 64u

/* struct virtio_console_config (§5.3.4); all zero without F_SIZE/MULTIPORT. */
struct console_config {
    uint16_t cols, rows;
    uint32_t max_nr_ports;
    uint32_t emerg_wr;
};

struct virtio_console {
    struct virtio_console_host host;
    pthread_mutex_t lock;
    struct virtio_dev *vdev;    /* set once created */
    /* Kept across a device reset: a driver that resets the device while it
     * probes still gets what was typed during boot. */
    uint8_t in[VIRTIO_CONSOLE_INPUT_MAX];
    size_t in_len;
    /* Back-pressure: a transmit chain the backend did not take whole stays
     * popped (not used) until virtio_console_output_ready(); `tx_done` of
     * its readable bytes are out already. */
    struct vq_elem *tx_held;
    size_t tx_done;
    /* A held chain given back to the ring by a save (worker's, like
     * tx_held): when the chain `resume_head` is popped again, its first
     * `resume_done` bytes are out already. */
    bool resume;
    uint16_t resume_head;
    uint64_t resume_done;
};

static void con_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    static const struct console_config zero;
    (void)dev;
    memcpy(buf, (const uint8_t *)&zero + offset, len);
}

/* Writes the chain's readable bytes from `done` on; returns how far it got
 * (less than the chain holds when the backend is full). */
static size_t con_tx_chain(struct virtio_console *c, const struct vq_elem *e, size_t done)
{
    if (!c->host.output) /* no backend: output is discarded */
        return e->out_len;
    size_t off = 0;
    for (unsigned i = 0; i < e->out_num; i++) {
        const uint8_t *p = e->iov[i].iov_base;
        size_t len = e->iov[i].iov_len;
        if (done >= off + len) {
            off += len;
            continue;
        }
        size_t skip = done - off;
        size_t n = c->host.output(c->host.opaque, p + skip, len - skip);
        done += n;
        if (n < len - skip)
            return done;
        off += len;
    }
    return done;
}

/* transmitq: every readable byte is output (§5.3.6.1); writable buffers in
 * a transmit chain are ignored. A chain is used only once the backend took
 * all of it: while the host's reader is slow the driver's queue fills and
 * hvc0 writers wait, as on a real line, and nothing is lost. */
static void con_tx(struct virtio_console *c, struct virtio_dev *vdev)
{
    for (;;) {
        if (!c->tx_held) {
            c->tx_held = malloc(sizeof(*c->tx_held));
            if (!c->tx_held) {
                virtio_dev_kick(vdev, Q_TX);
                return;
            }
            if (virtio_dev_pop(vdev, Q_TX, c->tx_held) != 1) {
                free(c->tx_held);
                c->tx_held = NULL;
                return;
            }
            c->tx_done = 0;
            /* The chain a save gave back: go on where it stopped. The
             * driver does not reuse a chain before it is used, so the
             * same head with more bytes than were out is the same chain;
             * anything else is sent whole. */
            if (c->resume && c->tx_held->head == c->resume_head &&
                c->resume_done < c->tx_held->out_len)
                c->tx_done = (size_t)c->resume_done;
            c->resume = false;
        }
        c->tx_done = con_tx_chain(c, c->tx_held, c->tx_done);
        if (c->tx_done < c->tx_held->out_len)
            return; /* held until virtio_console_output_ready() */
        virtio_dev_push(vdev, Q_TX, c->tx_held, 0);
        free(c->tx_held);
        c->tx_held = NULL;
    }
}

void virtio_console_output_ready(struct virtio_console *c)
{
    pthread_mutex_lock(&c->lock);
    struct virtio_dev *vdev = c->vdev;
    pthread_mutex_unlock(&c->lock);
    if (vdev)
        virtio_dev_kick(vdev, Q_TX);
}

/* receiveq: fills posted buffers from the input buffer. A buffer is only
 * taken when there is input for it. */
static void con_rx(struct virtio_console *c, struct virtio_dev *vdev)
{
    struct vq_elem *e = malloc(sizeof(*e));
    if (!e) {
        virtio_dev_kick(vdev, Q_RX);
        return;
    }
    for (;;) {
        pthread_mutex_lock(&c->lock);
        if (c->in_len == 0 || virtio_dev_pop(vdev, Q_RX, e) != 1) {
            pthread_mutex_unlock(&c->lock);
            break;
        }
        size_t n = vq_iov_write(e->iov + e->out_num, e->in_num, 0, c->in, c->in_len);
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        pthread_mutex_unlock(&c->lock);
        virtio_dev_push(vdev, Q_RX, e, (uint32_t)n);
    }
    free(e);
}

static void con_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    if (q == Q_TX)
        con_tx(dev, vdev);
    else
        con_rx(dev, vdev);
}

size_t virtio_console_input(struct virtio_console *c, const uint8_t *buf, size_t n)
{
    pthread_mutex_lock(&c->lock);
    size_t room = sizeof(c->in) - c->in_len;
    if (n > room)
        n = room;
    memcpy(c->in + c->in_len, buf, n);
    c->in_len += n;
    struct virtio_dev *vdev = c->vdev;
    pthread_mutex_unlock(&c->lock);
    if (vdev && n)
        virtio_dev_kick(vdev, Q_RX);
    return n;
}

/* A reset forgets the rings, and with them the held chain (§2.4). */
static void con_reset(void *dev)
{
    struct virtio_console *c = dev;
    free(c->tx_held);
    c->tx_held = NULL;
    c->tx_done = 0;
    c->resume = false;
}

/* Section "virtio-console"[instance] v1.0: u32 input length, the input
 * bytes, u8 resume, u16 head, u64 bytes of it already out.
 *
 * A transmit chain held for back-pressure is given back to the ring
 * (virtio_dev_give_back) rather than saved: the transport's ring indices
 * then have nothing outstanding, the loaded device pops the chain again
 * from guest RAM, and only its head and progress are saved, so no byte is
 * output twice or lost. The source goes on the same way after resume. */
static int con_save(void *dev, struct virtio_dev *vdev, struct state_writer *w, uint32_t instance)
{
    struct virtio_console *c = dev;
    if (c->tx_held) {
        if (virtio_dev_give_back(vdev, Q_TX, c->tx_held)) {
            c->resume = true;
            c->resume_head = c->tx_held->head;
            c->resume_done = c->tx_done;
            virtio_dev_kick(vdev, Q_TX);   /* served at resume */
        }
        /* Otherwise it belongs to a ring the driver restarted since: its
         * push would be dropped, nothing in this ring waits for it. */
        free(c->tx_held);
        c->tx_held = NULL;
        c->tx_done = 0;
    }
    pthread_mutex_lock(&c->lock);
    state_begin(w, VIRTIO_CONSOLE_STATE_TAG, instance, VIRTIO_CONSOLE_STATE_MAJOR,
                VIRTIO_CONSOLE_STATE_MINOR);
    state_put_u32(w, (uint32_t)c->in_len);
    state_put_bytes(w, c->in, c->in_len);
    pthread_mutex_unlock(&c->lock);
    state_put_u8(w, c->resume);
    state_put_u16(w, c->resume ? c->resume_head : 0);
    state_put_u64(w, c->resume ? c->resume_done : 0);
    return state_end(w);
}

static int con_load(void *dev, struct virtio_dev *vdev, const struct state_reader *r,
                    uint32_t instance, char *err, size_t errlen)
{
    struct virtio_console *c = dev;
    struct state_section s;
    uint32_t in_len;
    uint8_t *in = NULL;
    bool resume;
    uint16_t head;
    uint64_t done;
    (void)vdev;
    int ret = state_reader_section(r, VIRTIO_CONSOLE_STATE_TAG, instance,
                                   VIRTIO_CONSOLE_STATE_MAJOR, &s, err, errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &in_len);
    if (in_len > VIRTIO_CONSOLE_INPUT_MAX)
        return state_section_error(&s, err, errlen, -EINVAL, "%u input bytes, at most %u", in_len,
                                   VIRTIO_CONSOLE_INPUT_MAX);
    in = malloc(in_len ? in_len : 1);
    if (!in)
        return state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
    state_get_bytes(&s, in, in_len);
    state_get_bool(&s, &resume);
    state_get_u16(&s, &head);
    state_get_u64(&s, &done);
    if ((ret = state_section_done(&s, err, errlen)))
        goto out;
    ret = -EINVAL;
    /* A held chain has some but not all of its bytes out; its head is an
     * index of the transmit queue (at most CONSOLE_QUEUE_MAX entries). */
    if (resume && (head >= CONSOLE_QUEUE_MAX || done == 0)) {
        state_section_error(&s, err, errlen, ret, "held chain %u with %" PRIu64 " bytes out", head, done);
        goto out;
    }
    if (!resume && (head || done)) {
        state_section_error(&s, err, errlen, ret, "no held chain but head %u, %" PRIu64 " bytes", head, done);
        goto out;
    }

    free(c->tx_held);   /* the old ring's: gone with it */
    c->tx_held = NULL;
    c->tx_done = 0;
    c->resume = resume;
    c->resume_head = head;
    c->resume_done = done;
    pthread_mutex_lock(&c->lock);
    memcpy(c->in, in, in_len);
    c->in_len = in_len;
    pthread_mutex_unlock(&c->lock);
    ret = 0;
out:
    free(in);
    return ret;
}

static void con_destroy(void *dev)
{
    struct virtio_console *c = dev;
    free(c->tx_held);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const struct virtio_device_ops con_ops = {
    .name = "console",
    .device_id = VIRTIO_ID_CONSOLE,
    .config_read = con_config_read,
    .queue_notify = con_queue_notify,
    .reset = con_reset,
    .destroy = con_destroy,
    .save = con_save,
    .load = con_load,
};

int virtio_console_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                          const struct virtio_console_host *host, struct virtio_dev **out,
                          struct virtio_console **con)
{
    struct virtio_console *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL)) {
        free(c);
        return -ENOMEM;
    }
    if (host)
        c->host = *host;
    struct virtio_device_params p = {
        .ops = &con_ops, .dev = c, .features = 0, .config_size = sizeof(struct console_config),
        .num_queues = 2, .queue_max = CONSOLE_QUEUE_MAX, .nworkers = 1,
    };
    int ret = virtio_mmio_create(mem, base, irq, &p, out);
    if (ret) {
        con_destroy(c);
        return ret;
    }
    pthread_mutex_lock(&c->lock);
    c->vdev = *out;
    pthread_mutex_unlock(&c->lock);
    *con = c;
    return 0;
}
