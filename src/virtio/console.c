/* virtio-console. See console.h.
 *
 * Lock: `lock` guards the input buffer and `vdev`; it is taken on the worker
 * and by virtio_console_input(), never held across a call into the
 * transport that takes the transport lock (push, kick). The held transmit
 * element (`tx_held`, `tx_done`) belongs to the worker alone. */
#include "virtio/console.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Queues of port 0 (§5.3.2; no MULTIPORT, so no control queues). */
#define Q_RX 0u
#define Q_TX 1u

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
        .num_queues = 2, .queue_max = 64, .nworkers = 1,
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
