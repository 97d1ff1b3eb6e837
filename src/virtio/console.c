/* virtio-console. See console.h.
 *
 * Lock: `lock` guards the input buffer and `vdev`; it is taken on the worker
 * and by virtio_console_input(), never held across a call into the
 * transport that takes the transport lock (push, kick). */
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
};

static void con_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    static const struct console_config zero;
    (void)dev;
    memcpy(buf, (const uint8_t *)&zero + offset, len);
}

/* transmitq: every readable byte is output (§5.3.6.1); writable buffers in
 * a transmit chain are ignored. */
static void con_tx(struct virtio_console *c, struct virtio_dev *vdev)
{
    struct vq_elem *e = malloc(sizeof(*e));
    if (!e) {
        virtio_dev_kick(vdev, Q_TX);
        return;
    }
    while (virtio_dev_pop(vdev, Q_TX, e) == 1) {
        for (unsigned i = 0; i < e->out_num; i++)
            if (e->iov[i].iov_len && c->host.output)
                c->host.output(c->host.opaque, e->iov[i].iov_base, e->iov[i].iov_len);
        virtio_dev_push(vdev, Q_TX, e, 0);
    }
    free(e);
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

static void con_destroy(void *dev)
{
    struct virtio_console *c = dev;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const struct virtio_device_ops con_ops = {
    .name = "console",
    .device_id = VIRTIO_ID_CONSOLE,
    .config_read = con_config_read,
    .queue_notify = con_queue_notify,
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
