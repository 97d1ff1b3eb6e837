/* nimbus-agent: the Nimbus guest agent (docs/architecture.md, "Guest
 * agent"). A small static program in the guest's initramfs, started by
 * /init when the kernel command line has nimbus.agent=PORT.
 *
 *   nimbus-agent listen PORT     serve commands on vsock port PORT: one
 *                                command per connection, each in its own
 *                                process
 *   nimbus-agent connect CID PORT
 *                                connect to vsock CID:PORT; stdin to the
 *                                socket (then half-close), the socket to
 *                                stdout (a guest-side test tool)
 *
 * The protocol is frames both ways: type (1 byte), length (4 bytes,
 * big-endian), payload.
 *   host -> agent  'a' one argv string (not NUL-terminated), repeated
 *                  'x' run argv (empty payload); then
 *                  'i' bytes for the command's stdin; an empty 'i' closes it
 *   agent -> host  'o' stdout bytes, 'e' stderr bytes (as they come),
 *                  's' the exit status, 4 bytes big-endian (128 + N when
 *                  killed by signal N; 127 when argv cannot be run), last.
 * Then the agent closes the connection. Bad input closes it at once.
 *
 * Built with riscv64-linux-gnu-gcc -static by scripts/guest.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define MAX_ARGS      256
#define MAX_ARG_BYTES (64 * 1024)
#define MAX_IN_FRAME  (1024 * 1024)
#define OUT_CHUNK     (32 * 1024)

static int readn(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int writen(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, char type, const void *buf, uint32_t len)
{
    uint8_t h[5] = { (uint8_t)type, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                     (uint8_t)(len >> 8), (uint8_t)len };
    if (writen(fd, h, 5))
        return -1;
    return len ? writen(fd, buf, len) : 0;
}

/* Reads one frame header; -1 at EOF or on error. */
static int recv_head(int fd, char *type, uint32_t *len)
{
    uint8_t h[5];
    if (readn(fd, h, 5))
        return -1;
    *type = (char)h[0];
    *len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    return 0;
}

/* One connection: argv, run, relay, status. */
static int serve(int conn)
{
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    size_t arg_bytes = 0;
    for (;;) {
        char type;
        uint32_t len;
        if (recv_head(conn, &type, &len))
            return 1;
        if (type == 'x' && len == 0 && argc > 0)
            break;
        if (type != 'a' || argc == MAX_ARGS || len > MAX_ARG_BYTES - arg_bytes)
            return 1;
        char *a = malloc(len + 1);
        if (!a || readn(conn, a, len))
            return 1;
        a[len] = '\0';
        argv[argc++] = a;
        arg_bytes += len;
    }
    argv[argc] = NULL;

    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execvp(argv[0], argv);
        dprintf(2, "nimbus-agent: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);

    int stdin_fd = in[1];
    bool conn_open = true;
    uint8_t *pend = NULL;          /* stdin bytes not yet taken by the command */
    size_t pend_len = 0, pend_off = 0;
    int outs[2] = { out[0], err[0] };
    static uint8_t buf[OUT_CHUNK];

    while (outs[0] >= 0 || outs[1] >= 0) {
        struct pollfd p[4];
        int n = 0, ic = -1, is = -1, io[2] = { -1, -1 };
        if (conn_open && stdin_fd >= 0 && pend_len == 0) {
            ic = n;
            p[n++] = (struct pollfd){ .fd = conn, .events = POLLIN };
        }
        if (stdin_fd >= 0 && pend_len) {
            is = n;
            p[n++] = (struct pollfd){ .fd = stdin_fd, .events = POLLOUT };
        }
        for (int k = 0; k < 2; k++)
            if (outs[k] >= 0) {
                io[k] = n;
                p[n++] = (struct pollfd){ .fd = outs[k], .events = POLLIN };
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ic >= 0 && p[ic].revents) {
            char type;
            uint32_t len;
            if (recv_head(conn, &type, &len) || type != 'i' || len > MAX_IN_FRAME) {
                conn_open = false;   /* the host is gone or broke the protocol */
                close(stdin_fd);
                stdin_fd = -1;
            } else if (len == 0) {
                close(stdin_fd);
                stdin_fd = -1;
            } else {
                free(pend);
                pend = malloc(len);
                if (!pend || readn(conn, pend, len))
                    return 1;
                pend_len = len;
                pend_off = 0;
            }
        }
        if (is >= 0 && p[is].revents) {
            ssize_t w = write(stdin_fd, pend + pend_off, pend_len - pend_off);
            if (w > 0) {
                pend_off += (size_t)w;
                if (pend_off == pend_len)
                    pend_len = pend_off = 0;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(stdin_fd);   /* the command closed its stdin: drop the rest */
                stdin_fd = -1;
                pend_len = pend_off = 0;
            }
        }
        for (int k = 0; k < 2; k++) {
            if (io[k] < 0 || !p[io[k]].revents)
                continue;
            ssize_t r = read(outs[k], buf, sizeof(buf));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(outs[k]);
                outs[k] = -1;
                continue;
            }
            if (send_frame(conn, k ? 'e' : 'o', buf, (uint32_t)r))
                conn_open = false;   /* keep draining so the command can finish */
        }
        if (!conn_open && stdin_fd >= 0 && pend_len == 0) {
            close(stdin_fd);
            stdin_fd = -1;
        }
    }
    if (stdin_fd >= 0)
        close(stdin_fd);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    uint32_t code = WIFEXITED(st) ? (uint32_t)WEXITSTATUS(st)
                    : WIFSIGNALED(st) ? 128u + (uint32_t)WTERMSIG(st) : 255u;
    uint8_t s[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
                     (uint8_t)code };
    send_frame(conn, 's', s, 4);
    return 0;
}

static int listen_main(unsigned port)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "nimbus-agent: vsock socket: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
        fprintf(stderr, "nimbus-agent: vsock port %u: %s\n", port, strerror(errno));
        return 1;
    }
    signal(SIGCHLD, SIG_IGN);   /* connection handlers reap themselves */
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENOMEM)
                continue;
            fprintf(stderr, "nimbus-agent: accept: %s\n", strerror(errno));
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(fd);
            signal(SIGCHLD, SIG_DFL);
            _exit(serve(c));
        }
        close(c);
    }
}

static int connect_main(unsigned cid, unsigned port)
{
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        fprintf(stderr, "nimbus-agent: connect %u:%u: %s\n", cid, port, strerror(errno));
        return 1;
    }
    static uint8_t buf[OUT_CHUNK];
    bool in_open = true;
    for (;;) {
        struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
        if (poll(p, in_open ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (in_open && p[1].revents) {
            ssize_t r = read(0, buf, sizeof(buf));
            if (r <= 0) {
                in_open = false;
                shutdown(fd, SHUT_WR);
            } else if (writen(fd, buf, (size_t)r)) {
                return 1;
            }
        }
        if (p[0].revents) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                return r < 0;
            if (writen(1, buf, (size_t)r))
                return 1;
        }
    }
}

static int parse_u32(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 0xffffffffUL)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned a, b;
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && !strcmp(argv[1], "listen") && !parse_u32(argv[2], &a))
        return listen_main(a);
    if (argc == 4 && !strcmp(argv[1], "connect") && !parse_u32(argv[2], &a) &&
        !parse_u32(argv[3], &b))
        return connect_main(a, b);
    fprintf(stderr, "usage: nimbus-agent listen PORT | nimbus-agent connect CID PORT\n");
    return 2;
}
