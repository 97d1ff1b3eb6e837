/* Writing a whole buffer to a descriptor: what the agent client and the
 * console's command runner both need for their sockets and for stdout. */
#ifndef NIMBUS_BASE_IO_H
#define NIMBUS_BASE_IO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Writes all n bytes of buf to fd, after short writes and EINTR; to a
 * socket with MSG_NOSIGNAL (a peer gone is -EPIPE, not SIGPIPE). Returns 0,
 * or -errno (-EIO when a write took nothing). Blocks on a blocking fd. */
static inline int io_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

#endif
