/* virtio-rng. See rng.h. */
#include "virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

struct virtio_rng {
    int unused;
};

static void rng_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    (void)dev, (void)offset, (void)buf, (void)len;   /* no configuration space */
}

/* Fills `len` bytes; false if the host's generator failed. */
static bool fill(void *p, size_t len)
{
    uint8_t *b = p;
    while (len) {
        ssize_t n = getrandom(b, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        b += n;
        len -= (size_t)n;
    }
    return true;
}

static void rng_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct vq_elem elem;
    (void)dev;
    while (virtio_dev_pop(vdev, q, &elem) == 1) {
        /* §5.4.6: only device-writable buffers; readable ones are ignored. */
        size_t done = 0;
        for (unsigned i = elem.out_num; i < elem.out_num + elem.in_num; i++) {
            size_t n = elem.iov[i].iov_len;
            if (n > VIRTIO_RNG_MAX_REQUEST - done)
                n = VIRTIO_RNG_MAX_REQUEST - done;
            if (!n || !fill(elem.iov[i].iov_base, n))
                break;
            done += n;
        }
        virtio_dev_push(vdev, q, &elem, (uint32_t)done);
    }
}

static void rng_destroy(void *dev)
{
    free(dev);
}

static const struct virtio_device_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_ENTROPY,
    .config_read = rng_config_read,
    .queue_notify = rng_queue_notify,
    /* Nothing beyond the transport: a handler pushes every chain it pops. */
    .no_device_state = true,
    .destroy = rng_destroy,
};

int virtio_rng_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct virtio_dev **out)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    struct virtio_device_params p = {
        .ops = &rng_ops, .dev = r, .features = 0, .config_size = 0,
        .num_queues = 1, .queue_max = 64, .nworkers = 1,
    };
    int ret = virtio_mmio_create(mem, base, irq, &p, out);
    if (ret)
        free(r);
    return ret;
}
