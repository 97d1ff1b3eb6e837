/* Guest agent client. See agent_client.h. */
#include "vm/agent_client.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "base/io.h"

#define CHUNK (32 * 1024)

static int read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int agent_port_from_cmdline(const char *append, uint32_t *port)
{
    const char *p = NULL;
    for (const char *q = append; q && (q = strstr(q, "nimbus.agent=")); q++)
        if (q == append || q[-1] == ' ')
            p = q + strlen("nimbus.agent=");
    if (!p)
        return -ENOENT;
    char *end;
    errno = 0;
    unsigned long v = strtoul(p, &end, 10);
    if (errno || end == p || *p == '-' || (*end && *end != ' ') || v == 0 || v > UINT32_MAX)
        return -EINVAL;
    *port = (uint32_t)v;
    return 0;
}

/* Both directions' limit; 0: none. */
static int set_timeouts(int fd, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
        return errmsg(err, errlen, -errno, "setsockopt: %s", strerror(errno));
    return 0;
}

int agent_vsock_handshake(int fd, uint32_t port, const void *early, size_t early_len,
                          int timeout_ms, char *err, size_t errlen)
{
    int r;
    if (timeout_ms > 0 && (r = set_timeouts(fd, timeout_ms, err, errlen)))
        return r;
    char line[32];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if ((r = io_write_all(fd, line, (size_t)n)) || (early_len && (r = io_write_all(fd, early, early_len))))
        return errmsg(err, errlen, r, "vsock: %s", strerror(-r));
    /* The answer, a byte at a time: what follows it is the guest's. */
    size_t len = 0;
    for (;;) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return errmsg(err, errlen, -ETIMEDOUT, "guest port %u did not answer in %d ms", port,
                          timeout_ms);
        if (k <= 0)
            return errmsg(err, errlen, -ECONNREFUSED,
                          "guest port %u refused the connection (no listener?)", port);
        if (ch == '\n')
            break;
        if (len + 1 >= sizeof(line))
            return errmsg(err, errlen, -EPROTO, "vsock: answer too long");
        line[len++] = ch;
    }
    line[len] = '\0';
    if (strncmp(line, "OK ", 3))
        return errmsg(err, errlen, -EPROTO, "vsock: unexpected answer '%s'", line);
    /* The limit was for the handshake; the guest's command takes its time. */
    return set_timeouts(fd, 0, err, errlen);
}

int agent_vsock_connect(const char *uds_path, uint32_t port, const void *early, size_t early_len,
                        int timeout_ms, int *fd_out, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(uds_path) >= sizeof(sa.sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "vsock socket path too long: %s", uds_path);
    strcpy(sa.sun_path, uds_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "socket: %s", strerror(errno));
    /* The limit holds for the connect too (a full backlog blocks it). */
    int r = timeout_ms > 0 ? set_timeouts(fd, timeout_ms, err, errlen) : 0;
    if (!r && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        errmsg(err, errlen, r, "cannot connect to %s: %s", uds_path, strerror(-r));
    }
    if (!r)
        r = agent_vsock_handshake(fd, port, early, early_len, timeout_ms, err, errlen);
    if (r) {
        close(fd);
        return r;
    }
    *fd_out = fd;
    return 0;
}

static void put_frame(uint8_t *p, char type, const void *data, uint32_t len)
{
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(len >> 24);
    p[2] = (uint8_t)(len >> 16);
    p[3] = (uint8_t)(len >> 8);
    p[4] = (uint8_t)len;
    if (len)
        memcpy(p + 5, data, len);
}

int agent_command(int argc, char *const argv[], bool no_stdin, uint8_t **buf, size_t *len,
                  char *err, size_t errlen)
{
    size_t total = 0;
    if (argc < 1 || argc > AGENT_MAX_ARGS)
        return errmsg(err, errlen, -EINVAL, "agent: 1 to %d arguments", AGENT_MAX_ARGS);
    for (int i = 0; i < argc; i++) {
        total += strlen(argv[i]);
        if (total > AGENT_MAX_ARG_BYTES)
            return errmsg(err, errlen, -E2BIG, "agent: arguments longer than %d bytes",
                          AGENT_MAX_ARG_BYTES);
    }
    size_t n = total + 5 * ((size_t)argc + 2);
    uint8_t *b = malloc(n), *p = b;
    if (!b)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    for (int i = 0; i < argc; i++) {
        uint32_t l = (uint32_t)strlen(argv[i]);
        put_frame(p, 'a', argv[i], l);
        p += 5 + l;
    }
    put_frame(p, 'x', NULL, 0);
    p += 5;
    if (no_stdin) {   /* an empty `i` closes the command's stdin */
        put_frame(p, 'i', NULL, 0);
        p += 5;
    }
    *buf = b;
    *len = (size_t)(p - b);
    return 0;
}

/* agent_command's frames, written to fd. */
static int send_command(int fd, int argc, char *const argv[], bool no_stdin, char *err,
                        size_t errlen)
{
    uint8_t *b;
    size_t n;
    int r = agent_command(argc, argv, no_stdin, &b, &n, err, errlen);
    if (r)
        return r;
    if ((r = io_write_all(fd, b, n)))
        errmsg(err, errlen, r, "agent: sending the command: %s", strerror(-r));
    free(b);
    return r;
}

int agent_start(int fd, int argc, char *const argv[], char *err, size_t errlen)
{
    return send_command(fd, argc, argv, true, err, errlen);
}

int agent_exec(int fd, int argc, char *const argv[], int in_fd, int out_fd, int err_fd,
               int *status, char *err, size_t errlen)
{
    int r = send_command(fd, argc, argv, in_fd < 0, err, errlen);
    return r ? r : agent_relay(fd, in_fd, out_fd, err_fd, status, err, errlen);
}

int agent_relay(int fd, int in_fd, int out_fd, int err_fd, int *status, char *err, size_t errlen)
{
    int r = 0;

    /* Stdin goes out without blocking, so the output keeps being read
     * while the guest is slow to take the input (no deadlock on full
     * buffers both ways). */
    uint8_t *buf = malloc(CHUNK), *obuf = malloc(CHUNK + 5);
    if (!buf || !obuf) {
        free(buf);
        free(obuf);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    size_t olen = 0, ooff = 0;
    bool in_open = in_fd >= 0;
    for (;;) {
        struct pollfd p[2] = {
            { .fd = fd, .events = POLLIN | (olen ? POLLOUT : 0) },
            { .fd = in_fd, .events = POLLIN },
        };
        if (poll(p, in_open && !olen ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            r = errmsg(err, errlen, -errno, "agent: poll: %s", strerror(errno));
            break;
        }
        if (in_open && !olen && p[1].revents) {
            ssize_t n = read(in_fd, obuf + 5, CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                n = 0;
                in_open = false;   /* an empty frame closes the command's stdin */
            }
            obuf[0] = 'i';
            obuf[1] = (uint8_t)((uint32_t)n >> 24);
            obuf[2] = (uint8_t)((uint32_t)n >> 16);
            obuf[3] = (uint8_t)((uint32_t)n >> 8);
            obuf[4] = (uint8_t)n;
            olen = 5 + (size_t)n;
            ooff = 0;
        }
        if (olen && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(fd, obuf + ooff, olen - ooff, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                ooff += (size_t)w;
                if (ooff == olen)
                    olen = ooff = 0;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                olen = ooff = 0;   /* the guest closed: the output may still say why */
                in_open = false;
            }
        }
        if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        uint8_t h[5];
        if ((r = read_all(fd, h, sizeof(h)))) {
            errmsg(err, errlen, r, "agent: connection lost before the exit status");
            break;
        }
        uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (h[0] == 's') {
            uint8_t s[4];
            if (len != 4 || (r = read_all(fd, s, 4))) {
                r = errmsg(err, errlen, -EPROTO, "agent: bad status frame");
                break;
            }
            *status = (int)((uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3]);
            r = 0;
            break;
        }
        if ((h[0] != 'o' && h[0] != 'e') || len > CHUNK) {
            r = errmsg(err, errlen, -EPROTO, "agent: unexpected frame '%c' (%u bytes)",
                       h[0] >= 32 && h[0] < 127 ? h[0] : '?', len);
            break;
        }
        if ((r = read_all(fd, buf, len))) {
            errmsg(err, errlen, r, "agent: connection lost in output");
            break;
        }
        int out = h[0] == 'o' ? out_fd : err_fd;
        if (out >= 0 && (r = io_write_all(out, buf, len))) {
            errmsg(err, errlen, r, "agent: writing output: %s", strerror(-r));
            break;
        }
    }
    free(buf);
    free(obuf);
    return r;
}
