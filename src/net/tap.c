/* A tap interface through /dev/net/tun. See net.h.
 *
 * The interface is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a
 * 12-byte vnet header (TUNSETVNETHDRSZ: struct virtio_net_hdr_v1), so
 * frames carry the guest's checksum and segmentation offloads both ways
 * (Documentation/networking/tuntap.rst). TUNSETOFFLOAD tells the kernel
 * which offloaded frames the guest accepts; until the guest says, none.
 *
 * The backend's thread reads the fd while the device has room; sends are
 * writev() calls from the device's worker (the fd is non-blocking: when the
 * interface's queue is full the frame is dropped, as the kernel would). */
#include "net/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/errmsg.h"

struct tap_backend {
    struct net_backend base;
    int fd;
    int evfd;                   /* wakes the thread: room again, or quit */
    _Atomic bool quit;
    bool started;
    pthread_t thread;
    struct net_rx_port port;
    char ifname[IFNAMSIZ];
    uint8_t buf[NET_VNET_HDR_LEN + NET_MAX_FRAME];   /* the thread's */
};

static void *tap_thread(void *arg)
{
    struct tap_backend *t = arg;
    while (!t->quit) {
        bool room = t->port.can_receive(t->port.opaque);
        struct pollfd p[2] = {
            { .fd = t->evfd, .events = POLLIN },
            { .fd = t->fd, .events = room ? POLLIN : 0 },
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(t->evfd, &v, sizeof(v));
            (void)r;
        }
        if (!(p[1].revents & POLLIN))
            continue;
        /* Up to a queue's worth per round, while the device has room. */
        for (int i = 0; i < 64 && t->port.can_receive(t->port.opaque); i++) {
            ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
            if (n < 0)
                break;   /* EAGAIN: empty */
            if ((size_t)n <= NET_VNET_HDR_LEN)
                continue;
            struct iovec iov = { .iov_base = t->buf, .iov_len = (size_t)n };
            t->port.receive(t->port.opaque, &iov, 1);
        }
    }
    return NULL;
}

static int tap_start(struct net_backend *b, const struct net_rx_port *port)
{
    struct tap_backend *t = (struct tap_backend *)b;
    if (t->started)
        return -EBUSY;
    t->port = *port;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);   /* signals go to the I/O thread */
    int e = pthread_create(&t->thread, NULL, tap_thread, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return -e;
    pthread_setname_np(t->thread, "net-tap");
    t->started = true;
    return 0;
}

static int tap_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct tap_backend *t = (struct tap_backend *)b;
    for (;;) {
        ssize_t n = writev(t->fd, iov, iovcnt);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        /* A full queue drops, as a switch would; so does a frame the
         * kernel finds malformed (EINVAL) or an interface that is down. */
        if (errno == EAGAIN || errno == EINVAL || errno == EIO || errno == ENOBUFS)
            return 0;
        return -errno;
    }
}

static void tap_rx_ready(struct net_backend *b)
{
    struct tap_backend *t = (struct tap_backend *)b;
    uint64_t one = 1;
    ssize_t r = write(t->evfd, &one, sizeof(one));
    (void)r;
}

static int tap_set_offload(struct net_backend *b, unsigned offloads)
{
    struct tap_backend *t = (struct tap_backend *)b;
    unsigned long f = 0;
    if (offloads & NET_OFFLOAD_CSUM) {
        f |= TUN_F_CSUM;
        /* The kernel refuses segmentation without checksum offload. */
        if (offloads & NET_OFFLOAD_TSO4)
            f |= TUN_F_TSO4;
        if (offloads & NET_OFFLOAD_TSO6)
            f |= TUN_F_TSO6;
    }
    return ioctl(t->fd, TUNSETOFFLOAD, f) ? -errno : 0;
}

static void tap_close(struct net_backend *b)
{
    struct tap_backend *t = (struct tap_backend *)b;
    if (t->started) {
        t->quit = true;
        tap_rx_ready(b);
        pthread_join(t->thread, NULL);
    }
    if (t->fd >= 0)
        close(t->fd);
    if (t->evfd >= 0)
        close(t->evfd);
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .name = "tap",
    .start = tap_start,
    .send = tap_send,
    .rx_ready = tap_rx_ready,
    .set_offload = tap_set_offload,
    .close = tap_close,
};

static struct tap_backend *tap_new(void)
{
    struct tap_backend *t = calloc(1, sizeof(*t));
    if (t) {
        t->base.ops = &tap_ops;
        t->base.vnet_hdr = true;
        t->fd = t->evfd = -1;
    }
    return t;
}

/* The vnet header size, no offloads until the guest takes some, and the
 * eventfd: the rest of an open, on t->fd attached to its interface. */
static int tap_finish(struct tap_backend *t, const char *what, char *err, size_t errlen)
{
    int hdr = NET_VNET_HDR_LEN;
    if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr) || ioctl(t->fd, TUNSETOFFLOAD, 0ul))
        return errmsg(err, errlen, -errno, "%s: cannot set the vnet header: %s", what,
                      strerror(errno));
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->evfd < 0)
        return errmsg(err, errlen, -errno, "%s: eventfd: %s", what, strerror(errno));
    return 0;
}

int net_tap_open(const char *ifname, struct net_backend **out, char *err, size_t errlen)
{
    int r;
    if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ || strchr(ifname, '/'))
        return errmsg(err, errlen, -EINVAL, "--net tap: ifname must be 1 to %u characters",
                      IFNAMSIZ - 1);
    struct tap_backend *t = tap_new();
    if (!t)
        return errmsg(err, errlen, -ENOMEM, "--net tap: out of memory");
    snprintf(t->ifname, sizeof(t->ifname), "%s", ifname);
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        r = errmsg(err, errlen, -errno, "--net tap,ifname=%s: cannot open /dev/net/tun: %s%s",
                   ifname, strerror(errno),
                   errno == EACCES || errno == EPERM ? " (needs access to /dev/net/tun)" : "");
        goto fail;
    }
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(t->fd, TUNSETIFF, &ifr)) {
        int e = errno;
        const char *hint = "";
        if (e == EPERM || e == EACCES)
            hint = " (needs CAP_NET_ADMIN, or a tap made for this user with "
                   "'ip tuntap add NAME mode tap user USER')";
        else if (e == EBUSY)
            hint = " (in use by another process, or not a tap interface)";
        else if (e == EINVAL)
            hint = " (an interface of that name that is not a tap)";
        r = errmsg(err, errlen, -e, "--net tap,ifname=%s: cannot attach: %s%s", ifname,
                   strerror(e), hint);
        goto fail;
    }
    char what[64];
    snprintf(what, sizeof(what), "--net tap,ifname=%s", ifname);
    if ((r = tap_finish(t, what, err, errlen)))
        goto fail;
    *out = &t->base;
    return 0;
fail:
    tap_close(&t->base);
    return r;
}

int net_tap_open_fd(int fd, char ifname[16], struct net_backend **out, char *err,
                    size_t errlen)
{
    char what[64];
    snprintf(what, sizeof(what), "--net tap,fd=%d", fd);
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fstat(fd, &st))
        return errmsg(err, errlen, -EBADF, "%s: not an open descriptor", what);
    /* /dev/net/tun is the misc device 10:200 (Documentation/admin-guide/devices.txt). */
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 10 || minor(st.st_rdev) != 200)
        return errmsg(err, errlen, -EINVAL, "%s: not a /dev/net/tun descriptor", what);
    if ((fl & O_ACCMODE) != O_RDWR)
        return errmsg(err, errlen, -EINVAL, "%s: not open for reading and writing", what);
    struct ifreq ifr = { 0 };
    if (ioctl(fd, TUNGETIFF, &ifr))
        return errmsg(err, errlen, -EINVAL, "%s: not attached to an interface (TUNSETIFF)", what);
    unsigned want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) != want)
        return errmsg(err, errlen, -EINVAL, "%s: interface %.16s is not a tap attached with "
                      "IFF_TAP | IFF_NO_PI | IFF_VNET_HDR", what, ifr.ifr_name);
    struct tap_backend *t = tap_new();
    if (!t)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", what);
    int r;
    snprintf(t->ifname, sizeof(t->ifname), "%.15s", ifr.ifr_name);
    t->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (t->fd < 0) {
        r = errmsg(err, errlen, -errno, "%s: %s", what, strerror(errno));
        goto fail;
    }
    if (!(fl & O_NONBLOCK) && fcntl(t->fd, F_SETFL, fl | O_NONBLOCK)) {
        r = errmsg(err, errlen, -errno, "%s: %s", what, strerror(errno));
        goto fail;
    }
    if ((r = tap_finish(t, what, err, errlen)))
        goto fail;
    snprintf(ifname, 16, "%s", t->ifname);
    *out = &t->base;
    return 0;
fail:
    tap_close(&t->base);
    return r;
}
