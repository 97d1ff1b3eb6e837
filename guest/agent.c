/* nimbus-agent: the Nimbus guest agent (docs/architecture.md, "Guest
 * agent"). A small static program in the guest's initramfs, started by
 * /init when the kernel command line has nimbus.agent=PORT.
 *
 *   nimbus-agent listen PORT     serve commands on vsock port PORT: one
 *                                command per connection, each connection
 *                                served by a thread of its own
 *   nimbus-agent connect CID PORT
 *                                connect to vsock CID:PORT; stdin to the
 *                                socket (then half-close), the socket to
 *                                stdout (a guest-side test tool)
 *   nimbus-agent generation SCRIPT
 *                                run SCRIPT (with NEW_VMGENID=1) whenever
 *                                the VM generation ID changes (a restore
 *                                from a snapshot), at the lowest priority
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
 * Latency: `nimbus exec` waits for each step of a connection in a guest
 * that was just restored and runs cold (every code path decoded afresh by
 * an interpreting monitor), so a connection costs as little guest work as
 * it can: a thread rather than a fork of the agent, and the command
 * started with vfork + exec (no copy of the agent's address space).
 *
 * Built with riscv64-linux-gnu-gcc -static by scripts/guest.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* Starts argv[0] (a PATH lookup, as execvp) with stdin, stdout and stderr
 * on in, out and err. The pid, or -errno when it cannot be run.
 *
 * vfork: the child borrows the agent's address space until its exec, so
 * nothing is copied (posix_spawn does the same but resets all 64 signal
 * actions in the child first, ~130 system calls). What the child does
 * before the exec is only system calls on its own descriptors and signal
 * actions (the agent has no signal handlers, only SIG_IGN); its exec error
 * reaches the parent through exec_errno, in the memory they share. */
static pid_t spawn_command(char **argv, int in, int out, int err)
{
    volatile int exec_errno = 0;
    pid_t pid = vfork();
    if (pid == 0) {
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
            exec_errno = errno;
            _exit(127);
        }
        signal(SIGPIPE, SIG_DFL);   /* the agent ignores it; the command must not */
        execvp(argv[0], argv);
        exec_errno = errno;
        _exit(127);
    }
    if (pid < 0)
        return -errno;
    if (exec_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -exec_errno;
    }
    return pid;
}

/* Reads the argv frames up to `x` into argv (NULL-terminated). The count,
 * or -1 on bad input (what was read is freed). */
static int read_argv(int conn, char *argv[MAX_ARGS + 1])
{
    int argc = 0;
    size_t arg_bytes = 0;
    for (;;) {
        char type;
        uint32_t len;
        if (recv_head(conn, &type, &len))
            break;
        if (type == 'x' && len == 0 && argc > 0) {
            argv[argc] = NULL;
            return argc;
        }
        if (type != 'a' || argc == MAX_ARGS || len > MAX_ARG_BYTES - arg_bytes)
            break;
        char *a = malloc(len + 1);
        if (!a)
            break;
        argv[argc++] = a;
        if (readn(conn, a, len))
            break;
        a[len] = '\0';
        arg_bytes += len;
    }
    while (argc)
        free(argv[--argc]);
    return -1;
}

/* One connection, on a thread of its own: argv, run, relay, status. */
static void *serve(void *arg)
{
    int conn = (int)(intptr_t)arg;
    char *argv[MAX_ARGS + 1];
    int argc = read_argv(conn, argv);
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    uint8_t *buf = malloc(OUT_CHUNK);
    if (argc < 0 || !buf || pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
        pipe2(err, O_CLOEXEC))
        goto out;
    pid_t pid = spawn_command(argv, in[0], out[1], err[1]);
    if (pid < 0)   /* told as the command's own stderr would, then status 127 */
        dprintf(err[1], "nimbus-agent: cannot run %s: %s\n", argv[0], strerror((int)-pid));
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in[0] = out[1] = err[1] = -1;
    fcntl(in[1], F_SETFL, O_NONBLOCK);

    bool conn_open = true;
    uint8_t *pend = NULL;          /* stdin bytes not yet taken by the command */
    size_t pend_len = 0, pend_off = 0;

    while (out[0] >= 0 || err[0] >= 0) {
        int *outs[2] = { &out[0], &err[0] };
        struct pollfd p[4];
        int n = 0, ic = -1, is = -1, io[2] = { -1, -1 };
        if (conn_open && in[1] >= 0 && pend_len == 0) {
            ic = n;
            p[n++] = (struct pollfd){ .fd = conn, .events = POLLIN };
        }
        if (in[1] >= 0 && pend_len) {
            is = n;
            p[n++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
        }
        for (int k = 0; k < 2; k++)
            if (*outs[k] >= 0) {
                io[k] = n;
                p[n++] = (struct pollfd){ .fd = *outs[k], .events = POLLIN };
            }
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (ic >= 0 && p[ic].revents) {
            char type;
            uint32_t len;
            uint8_t *next = NULL;
            if (recv_head(conn, &type, &len) || type != 'i' || len > MAX_IN_FRAME ||
                (len && (!(next = malloc(len)) || readn(conn, next, len)))) {
                conn_open = false;   /* the host is gone or broke the protocol */
                free(next);
                close(in[1]);
                in[1] = -1;
            } else if (len == 0) {
                close(in[1]);
                in[1] = -1;
            } else {
                free(pend);
                pend = next;
                pend_len = len;
                pend_off = 0;
            }
        }
        if (is >= 0 && p[is].revents) {
            ssize_t w = write(in[1], pend + pend_off, pend_len - pend_off);
            if (w > 0) {
                pend_off += (size_t)w;
                if (pend_off == pend_len)
                    pend_len = pend_off = 0;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                close(in[1]);   /* the command closed its stdin: drop the rest */
                in[1] = -1;
                pend_len = pend_off = 0;
            }
        }
        for (int k = 0; k < 2; k++) {
            if (io[k] < 0 || !p[io[k]].revents)
                continue;
            ssize_t r = read(*outs[k], buf, OUT_CHUNK);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                close(*outs[k]);
                *outs[k] = -1;
                continue;
            }
            if (conn_open && send_frame(conn, k ? 'e' : 'o', buf, (uint32_t)r))
                conn_open = false;   /* keep draining so the command can finish */
        }
        if (!conn_open && in[1] >= 0 && pend_len == 0) {
            close(in[1]);
            in[1] = -1;
        }
    }
    free(pend);
    uint32_t code = 127;
    int st;
    if (pid > 0) {
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        code = WIFEXITED(st) ? (uint32_t)WEXITSTATUS(st)
               : WIFSIGNALED(st) ? 128u + (uint32_t)WTERMSIG(st) : 255u;
    }
    uint8_t s[4] = { (uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
                     (uint8_t)code };
    send_frame(conn, 's', s, 4);
out:
    for (int k = 0; k < 2; k++) {
        if (in[k] >= 0)
            close(in[k]);
        if (out[k] >= 0)
            close(out[k]);
        if (err[k] >= 0)
            close(err[k]);
    }
    while (argc > 0)
        free(argv[--argc]);
    free(buf);
    close(conn);
    return NULL;
}

/* The first connection's thread, ahead of time (see listen_main). */
static void *warm_up(void *arg)
{
    free(malloc(OUT_CHUNK));
    return arg;
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
    /* The first connection may come to a clone of this guest, restored
     * from a snapshot and cold: let it find things ready. One malloc arena
     * for every thread (none to create per thread), and a thread started
     * and joined now, whose stack glibc then keeps for the next one. */
    mallopt(M_ARENA_MAX, 1);
    pthread_t warm;
    if (pthread_create(&warm, NULL, warm_up, NULL) == 0)
        pthread_join(warm, NULL);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) || pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED)) {
        fprintf(stderr, "nimbus-agent: pthread_attr: out of memory\n");
        return 1;
    }
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENOMEM)
                continue;
            fprintf(stderr, "nimbus-agent: accept: %s\n", strerror(errno));
            return 1;
        }
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)c))
            close(c);   /* no thread for it: the host sees the connection end */
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

/* The /proc/interrupts line of the vmgenid device (its counts) into line,
 * read from fd through text (tsize bytes); -1 when there is none. */
static int vmgenid_line(int fd, char *text, size_t tsize, char *line, size_t size)
{
    size_t len = 0;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t r = read(fd, text + len, tsize - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    text[len] = '\0';
    char *at = strstr(text, "vmgenid");
    if (!at)
        return -1;
    char *start = at;
    while (start > text && start[-1] != '\n')
        start--;
    size_t n = (size_t)(at - start) + strlen("vmgenid");
    if (n >= size)
        n = size - 1;
    memcpy(line, start, n);
    line[n] = '\0';
    return 0;
}

/* Runs `script` with NEW_VMGENID=1 in its environment and waits for it. */
static void run_generation_script(const char *script)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("NEW_VMGENID", "1", 1);
        execl(script, script, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

/* Linux's vmgenid driver reseeds the kernel's RNG itself on a new VM
 * generation, and means to tell user space with a NEW_VMGENID uevent, but
 * Debian's 6.12 kernel never sends it for the device-tree variant (it is
 * raised from the interrupt handler; the uevent sequence number does not
 * move). So this watches the interrupt's count in /proc/interrupts, once a
 * second, one read each time. At nice 19: a restored guest has better
 * things to do first, such as the command `nimbus exec` is waiting for,
 * and SCRIPT inherits it. Without a vmgenid device there is nothing to
 * watch: exits 0. */
static int generation_main(const char *script)
{
    int fd = open("/proc/interrupts", O_RDONLY | O_CLOEXEC);
    size_t tsize = 64 * 1024;   /* each hart adds ~11 bytes to each line */
    char *text = malloc(tsize), last[512], now[512];
    if (fd < 0 || !text || vmgenid_line(fd, text, tsize, last, sizeof(last)))
        return 0;
    setpriority(PRIO_PROCESS, 0, 19);
    for (;;) {
        sleep(1);
        if (vmgenid_line(fd, text, tsize, now, sizeof(now)) || !strcmp(now, last))
            continue;
        memcpy(last, now, sizeof(last));
        run_generation_script(script);
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
    if (argc == 3 && !strcmp(argv[1], "generation"))
        return generation_main(argv[2]);
    fprintf(stderr, "usage: nimbus-agent listen PORT | nimbus-agent connect CID PORT | "
                    "nimbus-agent generation SCRIPT\n");
    return 2;
}
