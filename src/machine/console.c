/* Console backends: stdio (raw tty + Ctrl-A escapes), file, unix socket.
 *
 * Lock: one mutex per console, `lock`. It guards every write to out_fd, the
 * socket client fd, the output ring and the out_* flags. It is a leaf lock:
 * nothing is called with it held except write/send/close on our own fds (all
 * non-blocking, or a regular file) and poll() with a zero timeout.
 *
 * Why output waits in a bounded buffer and pushes back instead of blocking
 * or dropping: a blocking write() on a pipe or terminal whose reader stalls
 * (a full pipe, Ctrl-S, a paused `less`) used to hold a hart thread - and the
 * console lock, and so every other hart that printed, and the shutdown that
 * waits for them - forever; only SIGKILL ended the process. Dropping instead
 * would lose output whenever the reader is merely slower than the guest,
 * which is the normal case for a fast guest and a terminal. So the buffer is
 * bounded (a guest cannot make us hold more than CONSOLE_RING_SIZE), and the
 * devices that can wait are told to (console_out_busy): the guest's driver
 * waits for the UART's THRE as it would behind a slow serial line.
 *
 * Ownership of the rest: `escape`, `in_eof` and the listening fd belong to the
 * I/O thread (console_fd/console_handle_input). `client_fd` is changed only by
 * the I/O thread, with the lock held, so the I/O thread may read it unlocked;
 * writers read it under the lock. A writer that finds the client gone only
 * marks it `client_dead`; the I/O thread sees the hangup and closes it, so an
 * fd number is never closed under a poll() that still watches it.
 *
 * SIGPIPE: socket sends use MSG_NOSIGNAL. Writes to stdout/the file are
 * plain write()s; like QEMU, the process is expected to ignore SIGPIPE (the
 * console does not touch process-wide signal dispositions). */
#include "machine/console.h"
#include "base/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ESCAPE_CHAR   0x01           /* Ctrl-A */
#define INPUT_CHUNK   4096

struct console {
    enum console_kind kind;
    struct console_ops_cb cb;
    pthread_mutex_t lock;

    /* stdio / file */
    int in_fd;                  /* -1 for file */
    int out_fd;                 /* non-blocking unless a regular file */
    bool owns_out;              /* out_fd is ours to close (file, reopened stdout) */
    bool out_flags_set;         /* we set O_NONBLOCK on the caller's out_fd ... */
    int out_flags;              /* ... whose file status flags were these */
    bool out_dead;              /* out_fd failed: output is discarded; lock */
    bool out_owed;              /* busy was reported: output_ready owed; lock */
    bool in_eof;                /* I/O thread */
    bool escape;                /* Ctrl-A seen, waiting for the command; I/O thread */
    bool tty_raw;               /* saved_tio is valid and in_fd was made raw */
    struct termios saved_tio;

    /* socket */
    int listen_fd;
    int client_fd;              /* -1: no client; see the ownership note above */
    bool client_dead;           /* a send failed hard; reaped by the I/O thread */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t sock_dev;
    ino_t sock_ino;
    uint8_t *ring;              /* CONSOLE_RING_SIZE bytes of unsent output (all kinds) */
    size_t ring_head, ring_len;
};


/* ---- parsing ---- */

int console_parse(const char *spec, enum console_kind *kind, char *path, size_t pathlen,
                  char *err, size_t errlen)
{
    static const char expect[] = "expected stdio, file:PATH or socket:PATH";
    if (!spec || !kind || !path || pathlen == 0)
        return errmsg(err, errlen, -EINVAL, "console: bad arguments");
    path[0] = '\0';
    if (strcmp(spec, "stdio") == 0) {
        *kind = CONSOLE_STDIO;
        return 0;
    }
    const char *p;
    enum console_kind k;
    if (strncmp(spec, "file:", 5) == 0) {
        k = CONSOLE_FILE;
        p = spec + 5;
    } else if (strncmp(spec, "socket:", 7) == 0) {
        k = CONSOLE_SOCKET;
        p = spec + 7;
    } else {
        return errmsg(err, errlen, -EINVAL, "unknown console '%s' (%s)", spec, expect);
    }
    size_t len = strlen(p);
    if (len == 0)
        return errmsg(err, errlen, -EINVAL, "console '%s' has an empty path (%s)", spec, expect);
    if (len >= pathlen)
        return errmsg(err, errlen, -ENAMETOOLONG, "console path too long: %s", p);
    if (k == CONSOLE_SOCKET && len >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "socket path longer than %zu bytes: %s",
                    sizeof(((struct sockaddr_un *)0)->sun_path) - 1, p);
    memcpy(path, p, len + 1);
    *kind = k;
    return 0;
}

/* ---- common ---- */

static struct console *console_alloc(enum console_kind kind, const struct console_ops_cb *cb)
{
    struct console *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->ring = malloc(CONSOLE_RING_SIZE);
    if (!c->ring) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    c->kind = kind;
    if (cb)
        c->cb = *cb;
    c->in_fd = -1;
    c->out_fd = -1;
    c->listen_fd = -1;
    c->client_fd = -1;
    return c;
}

static void console_free(struct console *c)
{
    pthread_mutex_destroy(&c->lock);
    free(c->ring);
    free(c);
}

/* One write() to out_fd, retried on EINTR: bytes written, 0 when the fd is
 * full, -1 when it failed (errno set). */
static ssize_t out_write(int fd, const uint8_t *buf, size_t n)
{
    for (;;) {
        ssize_t w = write(fd, buf, n);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

static void ring_push(struct console *c, const uint8_t *buf, size_t n);
static size_t stdio_out_locked(struct console *c, const uint8_t *buf, size_t n, bool *wake);
static void stdio_flush_locked(struct console *c);

static void deliver(struct console *c, const uint8_t *buf, size_t n)
{
    if (n && c->cb.input)
        c->cb.input(c->cb.opaque, buf, n);
}

/* ---- stdio ---- */

static const char escape_help[] =
    "\r\n"
    "C-a h    print this help\r\n"
    "C-a x    exit emulator\r\n"
    "C-a C-a  sends C-a\r\n";

/* Runs the Ctrl-A escapes over one chunk of terminal input. */
static void stdio_process(struct console *c, const uint8_t *buf, size_t n)
{
    uint8_t out[2 * INPUT_CHUNK];  /* an unknown escape expands to two bytes */
    size_t o = 0;
    for (size_t i = 0; i < n && i < INPUT_CHUNK; i++) {
        uint8_t b = buf[i];
        if (!c->escape) {
            if (b == ESCAPE_CHAR)
                c->escape = true;
            else
                out[o++] = b;
            continue;
        }
        c->escape = false;
        switch (b) {
        case 'x':
            deliver(c, out, o);
            if (c->cb.quit)
                c->cb.quit(c->cb.opaque);
            return;  /* the VM is going away: the rest of the chunk is dropped */
        case 'h':
            deliver(c, out, o);
            o = 0;
            bool wake = false;  /* unused: the I/O thread polls anyway */
            pthread_mutex_lock(&c->lock);
            stdio_out_locked(c, (const uint8_t *)escape_help, sizeof(escape_help) - 1, &wake);
            pthread_mutex_unlock(&c->lock);
            break;
        case ESCAPE_CHAR:
            out[o++] = ESCAPE_CHAR;
            break;
        default:
            out[o++] = ESCAPE_CHAR;
            out[o++] = b;
            break;
        }
    }
    deliver(c, out, o);
}

static void stdio_handle_input(struct console *c)
{
    if (c->in_eof)
        return;
    struct pollfd pfd = { .fd = c->in_fd, .events = POLLIN };
    int r = poll(&pfd, 1, 0);
    if (r <= 0)
        return;  /* spurious call (or EINTR): nothing to read now */
    if (pfd.revents & POLLNVAL) {
        c->in_eof = true;
        return;
    }
    uint8_t buf[INPUT_CHUNK];
    ssize_t n = read(c->in_fd, buf, sizeof(buf));
    if (n > 0) {
        stdio_process(c, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        /* EOF, or the terminal went away (EIO): no more input, the guest runs on. */
        c->in_eof = true;
    }
}

/* Makes c->out_fd a non-blocking fd for `fd`, without changing the flags
 * of a file description that others share (the shell's terminal or pipe):
 * stdout is reopened through /proc/self/fd, which gives a description of our
 * own. If that is impossible (a socket, no /proc), the caller's description
 * is made non-blocking and its flags are restored by
 * console_restore_terminal(). Regular files and block devices stay blocking:
 * their writes do not wait on a reader. `owned`: fd is ours already. */
static int out_prepare(struct console *c, int fd, bool owned, char *err, size_t errlen)
{
    struct stat st;
    c->out_fd = fd;
    c->owns_out = owned;
    if (fstat(fd, &st) < 0)
        return errmsg(err, errlen, -errno, "console: cannot stat output fd %d: %s", fd,
                      strerror(errno));
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
        return 0;
    if (!owned) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        struct stat nst;
        if (nfd >= 0 && fstat(nfd, &nst) == 0 && nst.st_dev == st.st_dev &&
            nst.st_ino == st.st_ino && nst.st_rdev == st.st_rdev) {
            c->out_fd = nfd;
            c->owns_out = true;
            return 0;
        }
        if (nfd >= 0)
            close(nfd);
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
        return errmsg(err, errlen, -errno, "console: cannot make output fd %d non-blocking: %s",
                      fd, strerror(errno));
    if (!owned && !(flags & O_NONBLOCK)) {
        c->out_flags = flags;
        c->out_flags_set = true;
    }
    return 0;
}

int console_open_fds(int in_fd, int out_fd, const struct console_ops_cb *cb,
                     struct console **out, char *err, size_t errlen)
{
    *out = NULL;
    if (fcntl(in_fd, F_GETFD) < 0 || fcntl(out_fd, F_GETFD) < 0)
        return errmsg(err, errlen, -EBADF, "console: invalid fd (in %d, out %d)", in_fd, out_fd);
    struct console *c = console_alloc(CONSOLE_STDIO, cb);
    if (!c)
        return errmsg(err, errlen, -ENOMEM, "console: out of memory");
    c->in_fd = in_fd;
    int rc = out_prepare(c, out_fd, false, err, errlen);
    if (rc) {
        console_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int console_start(struct console *c, char *err, size_t errlen)
{
    if (!c || c->kind != CONSOLE_STDIO || c->tty_raw || !isatty(c->in_fd))
        return 0;
    if (tcgetattr(c->in_fd, &c->saved_tio) < 0)
        return errmsg(err, errlen, -errno, "console: cannot read terminal mode: %s",
                      strerror(errno));
    struct termios raw = c->saved_tio;
    cfmakeraw(&raw);  /* full raw: the guest sends its own \r\n */
    if (tcsetattr(c->in_fd, TCSANOW, &raw) < 0)
        return errmsg(err, errlen, -errno, "console: cannot set raw terminal mode: %s",
                      strerror(errno));
    /* Published after the mode is saved: a signal handler that sees the flag
     * restores the right mode. */
    __atomic_store_n(&c->tty_raw, true, __ATOMIC_RELEASE);
    return 0;
}

void console_restore_terminal(const struct console *c)
{
    if (!c)
        return;
    if (__atomic_load_n(&c->tty_raw, __ATOMIC_ACQUIRE))
        tcsetattr(c->in_fd, TCSANOW, &c->saved_tio);  /* async-signal-safe */
    if (c->out_flags_set)
        fcntl(c->out_fd, F_SETFL, c->out_flags);      /* likewise */
}

/* ---- stdio / file output ---- */

/* Takes what the fd accepts now, buffers what it does not (up to the ring's
 * room), and returns the count accepted. *wake is set when the buffer went
 * from empty to non-empty (the I/O thread must start polling). Lock held. */
static size_t stdio_out_locked(struct console *c, const uint8_t *buf, size_t n, bool *wake)
{
    if (c->out_dead)
        return n;
    size_t done = 0;
    if (c->ring_len == 0) {
        ssize_t w = out_write(c->out_fd, buf, n);
        if (w < 0) {
            c->out_dead = true;  /* EPIPE, EIO, ...: output is lost from now on */
            return n;
        }
        done = (size_t)w;
    }
    size_t room = CONSOLE_RING_SIZE - c->ring_len, k = n - done;
    if (k > room) {
        k = room;
        c->out_owed = true;
    }
    if (k) {
        *wake = c->ring_len == 0;
        ring_push(c, buf + done, k);
    }
    return done + k;
}

/* Writes what the fd takes of the ring. Lock held. */
static void stdio_flush_locked(struct console *c)
{
    while (c->ring_len && !c->out_dead) {
        size_t chunk = CONSOLE_RING_SIZE - c->ring_head;
        if (chunk > c->ring_len)
            chunk = c->ring_len;
        ssize_t w = out_write(c->out_fd, c->ring + c->ring_head, chunk);
        if (w <= 0) {
            if (w < 0)
                c->out_dead = true;
            break;
        }
        c->ring_head = (c->ring_head + (size_t)w) % CONSOLE_RING_SIZE;
        c->ring_len -= (size_t)w;
    }
    if (c->out_dead)
        c->ring_len = 0;
    if (c->ring_len == 0)
        c->ring_head = 0;
}

/* ---- file ---- */

static int file_open(struct console *c, const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK so that a FIFO without a reader cannot block the open; the
     * output goes to a regular file (truncated) or a character device such as
     * /dev/null; anything else is refused. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        return errmsg(err, errlen, -EINVAL, "console file %s is not a regular file or a character "
                      "device", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        int rc = -errno;
        return errmsg(err, errlen, rc, "cannot open console file %s: %s", path, strerror(-rc));
    }
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
        rc = errmsg(err, errlen, -EINVAL, "console file %s is not a regular file or a character "
                    "device", path);
    else if (rc || (S_ISREG(st.st_mode) && ftruncate(fd, 0)))
        rc = errmsg(err, errlen, rc ? rc : -errno, "cannot open console file %s: %s", path,
                    strerror(rc ? -rc : errno));
    if (!rc)
        rc = out_prepare(c, fd, true, err, errlen);  /* a tty must not block us */
    if (rc) {
        close(fd);
        c->out_fd = -1;
        c->owns_out = false;
        return rc;
    }
    c->in_eof = true;
    return 0;
}

/* ---- socket ---- */

/* Appends to the ring. A socket's ring drops the oldest bytes so that it
 * holds the last CONSOLE_RING_SIZE bytes of output; stdio/file callers never
 * push more than the room. Lock held. */
static void ring_push(struct console *c, const uint8_t *buf, size_t n)
{
    if (n >= CONSOLE_RING_SIZE) {
        buf += n - CONSOLE_RING_SIZE;
        n = CONSOLE_RING_SIZE;
        c->ring_head = 0;
        c->ring_len = 0;
    }
    if (c->ring_len + n > CONSOLE_RING_SIZE) {
        size_t drop = c->ring_len + n - CONSOLE_RING_SIZE;
        c->ring_head = (c->ring_head + drop) % CONSOLE_RING_SIZE;
        c->ring_len -= drop;
    }
    size_t tail = (c->ring_head + c->ring_len) % CONSOLE_RING_SIZE;
    size_t first = CONSOLE_RING_SIZE - tail;
    if (first > n)
        first = n;
    memcpy(c->ring + tail, buf, first);
    memcpy(c->ring, buf + first, n - first);
    c->ring_len += n;
}

/* Non-blocking send to the client: bytes sent, or 0 when it would block or
 * the client is gone (then marked dead). Lock held. */
static size_t client_send(struct console *c, const uint8_t *buf, size_t n)
{
    if (c->client_fd < 0 || c->client_dead)
        return 0;
    for (;;) {
        ssize_t s = send(c->client_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (s >= 0)
            return (size_t)s;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            c->client_dead = true;
        return 0;
    }
}

/* Sends as much of the ring as the client takes. Lock held. Returns true
 * when the ring is empty afterwards. */
static bool ring_flush(struct console *c)
{
    while (c->ring_len) {
        size_t chunk = CONSOLE_RING_SIZE - c->ring_head;
        if (chunk > c->ring_len)
            chunk = c->ring_len;
        size_t s = client_send(c, c->ring + c->ring_head, chunk);
        if (s == 0)
            return false;
        c->ring_head = (c->ring_head + s) % CONSOLE_RING_SIZE;
        c->ring_len -= s;
    }
    c->ring_head = 0;
    return true;
}

static void socket_write(struct console *c, const uint8_t *buf, size_t n)
{
    pthread_mutex_lock(&c->lock);
    if (ring_flush(c)) {
        size_t s = client_send(c, buf, n);
        buf += s;
        n -= s;
    }
    if (n)
        ring_push(c, buf, n);
    pthread_mutex_unlock(&c->lock);
}

static void socket_drop_client(struct console *c)
{
    pthread_mutex_lock(&c->lock);
    close(c->client_fd);
    c->client_fd = -1;
    c->client_dead = false;
    pthread_mutex_unlock(&c->lock);
}

static void socket_handle_input(struct console *c)
{
    if (c->client_fd < 0) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;  /* EAGAIN (client gave up), EINTR, ECONNABORTED, EMFILE: try again later */
        pthread_mutex_lock(&c->lock);
        c->client_fd = fd;
        c->client_dead = false;
        ring_flush(c);  /* replay what was written while nobody listened */
        pthread_mutex_unlock(&c->lock);
        return;
    }
    uint8_t buf[INPUT_CHUNK];
    ssize_t n = recv(c->client_fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
        deliver(c, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        socket_drop_client(c);  /* the next client is accepted on the next call */
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (c->client_dead) {
        pthread_mutex_unlock(&c->lock);
        socket_drop_client(c);
        return;
    }
    ring_flush(c);
    pthread_mutex_unlock(&c->lock);
}

/* A socket file at `path` nobody listens on is stale and may be replaced; one
 * with a live server, or any other kind of file, is not ours to remove. */
static int socket_clear_path(const char *path, const struct sockaddr_un *sa,
                             char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        int rc = -errno;
        return errmsg(err, errlen, rc, "cannot stat console socket %s: %s", path, strerror(-rc));
    }
    if (!S_ISSOCK(st.st_mode))
        return errmsg(err, errlen, -EEXIST, "console socket path exists and is not a socket: %s",
                    path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        int rc = -errno;
        return errmsg(err, errlen, rc, "cannot create socket: %s", strerror(-rc));
    }
    int r = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
    close(probe);
    if (r == 0)
        return errmsg(err, errlen, -EADDRINUSE, "another server is listening on %s", path);
    if (unlink(path) < 0 && errno != ENOENT) {
        int rc = -errno;
        return errmsg(err, errlen, rc, "cannot remove stale socket %s: %s", path, strerror(-rc));
    }
    return 0;
}

static int socket_open(struct console *c, const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len == 0)
        return errmsg(err, errlen, -EINVAL, "console socket path is empty");
    if (len >= sizeof(sa.sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "socket path longer than %zu bytes: %s",
                    sizeof(sa.sun_path) - 1, path);
    memcpy(sa.sun_path, path, len + 1);
    memcpy(c->path, path, len + 1);

    int rc = socket_clear_path(path, &sa, err, errlen);
    if (rc)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        return errmsg(err, errlen, rc, "cannot create socket: %s", strerror(-rc));
    }
    struct stat st;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        errmsg(err, errlen, rc, "cannot bind console socket %s: %s", path, strerror(-rc));
        goto fail_close;
    }
    if (listen(fd, 4) < 0 || lstat(path, &st) < 0) {
        rc = -errno;
        errmsg(err, errlen, rc, "cannot listen on console socket %s: %s", path, strerror(-rc));
        unlink(path);
        goto fail_close;
    }
    c->listen_fd = fd;
    c->sock_dev = st.st_dev;
    c->sock_ino = st.st_ino;
    c->in_eof = true;  /* not used for sockets */
    return 0;
fail_close:
    close(fd);
    return rc;
}

/* ---- public ---- */

int console_open(enum console_kind kind, const char *path, const struct console_ops_cb *cb,
                 struct console **out, char *err, size_t errlen)
{
    *out = NULL;
    if (kind == CONSOLE_STDIO)
        return console_open_fds(STDIN_FILENO, STDOUT_FILENO, cb, out, err, errlen);
    if (kind != CONSOLE_FILE && kind != CONSOLE_SOCKET)
        return errmsg(err, errlen, -EINVAL, "console: unknown kind %d", (int)kind);
    if (!path || !*path)
        return errmsg(err, errlen, -EINVAL, "console: no path given");
    struct console *c = console_alloc(kind, cb);
    if (!c)
        return errmsg(err, errlen, -ENOMEM, "console: out of memory");
    int rc = kind == CONSOLE_FILE ? file_open(c, path, err, errlen)
                                  : socket_open(c, path, err, errlen);
    if (rc) {
        console_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

size_t console_write(struct console *c, const uint8_t *buf, size_t n)
{
    if (!c || !n)
        return n;
    if (c->kind == CONSOLE_SOCKET) {
        socket_write(c, buf, n);
        return n;
    }
    bool wake = false;
    pthread_mutex_lock(&c->lock);
    size_t k = stdio_out_locked(c, buf, n, &wake);
    pthread_mutex_unlock(&c->lock);
    if (wake && c->cb.wake)
        c->cb.wake(c->cb.opaque);
    return k;
}

bool console_out_busy(struct console *c)
{
    if (!c || c->kind == CONSOLE_SOCKET)
        return false;
    pthread_mutex_lock(&c->lock);
    bool busy = !c->out_dead && c->ring_len > CONSOLE_RING_SIZE - CONSOLE_OUT_SLACK;
    if (busy)
        c->out_owed = true;
    pthread_mutex_unlock(&c->lock);
    return busy;
}

int console_out_fd(struct console *c)
{
    int fd = -1;
    pthread_mutex_lock(&c->lock);
    if (c->kind == CONSOLE_SOCKET) {
        if (c->ring_len && c->client_fd >= 0 && !c->client_dead)
            fd = c->client_fd;
    } else if (c->ring_len && !c->out_dead) {
        fd = c->out_fd;
    }
    pthread_mutex_unlock(&c->lock);
    return fd;
}

size_t console_handle_output(struct console *c)
{
    bool ready = false;
    pthread_mutex_lock(&c->lock);
    size_t before = c->ring_len;
    if (c->kind == CONSOLE_SOCKET) {
        ring_flush(c);
    } else {
        stdio_flush_locked(c);
        /* Half empty before devices may go on: no ping-pong per byte. */
        if (c->out_owed && (c->out_dead || c->ring_len <= CONSOLE_RING_SIZE / 2)) {
            c->out_owed = false;
            ready = true;
        }
    }
    size_t written = before > c->ring_len ? before - c->ring_len : 0;
    pthread_mutex_unlock(&c->lock);
    if (ready && c->cb.output_ready)
        c->cb.output_ready(c->cb.opaque);
    return written;
}

void console_flush(struct console *c, int timeout_ms)
{
    if (!c)
        return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        console_handle_output(c);
        int fd = console_out_fd(c);
        if (fd < 0)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
                                  (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return;
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
            return;
    }
}

int console_fd(struct console *c)
{
    switch (c->kind) {
    case CONSOLE_STDIO:
        return c->in_eof ? -1 : c->in_fd;
    case CONSOLE_SOCKET:
        return c->client_fd >= 0 ? c->client_fd : c->listen_fd;
    default:
        return -1;
    }
}

void console_handle_input(struct console *c)
{
    if (c->kind == CONSOLE_STDIO)
        stdio_handle_input(c);
    else if (c->kind == CONSOLE_SOCKET)
        socket_handle_input(c);
}

void console_close(struct console *c)
{
    if (!c)
        return;
    console_flush(c, 0);  /* what the fd takes at once; console_flush() to wait */
    console_restore_terminal(c);
    if (c->owns_out && c->out_fd >= 0)
        close(c->out_fd);
    if (c->client_fd >= 0)
        close(c->client_fd);
    if (c->listen_fd >= 0) {
        struct stat st;
        /* Remove the socket file only if it is still the one we created. */
        if (lstat(c->path, &st) == 0 && st.st_dev == c->sock_dev && st.st_ino == c->sock_ino)
            unlink(c->path);
        close(c->listen_fd);
    }
    console_free(c);
}
