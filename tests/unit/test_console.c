/* Unit tests for the console backends: parsing, file output, the unix socket
 * server (connect, output, input, disconnect, reconnect, a stalled client),
 * the stdio escapes over a pipe and raw mode on a pty. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "machine/console.h"

#include "check.h"

/* Every check in this file carries a context message. */
#undef CHECK
#define CHECK CHECK_MSG

static char tmpdir[64];

/* What the callbacks saw. */
struct sink {
    uint8_t in[1 << 16];
    size_t n;
    int quits;
};

static void on_input(void *opaque, const uint8_t *buf, size_t n)
{
    struct sink *s = opaque;
    if (s->n + n <= sizeof(s->in)) {
        memcpy(s->in + s->n, buf, n);
        s->n += n;
    }
}

static void on_quit(void *opaque)
{
    ((struct sink *)opaque)->quits++;
}

static bool sink_is(const struct sink *s, const char *want, size_t len)
{
    return s->n == len && memcmp(s->in, want, len) == 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One I/O-thread iteration: wait up to `ms` for console_fd and handle it. */
static bool pump_once(struct console *c, int ms)
{
    int fd = console_fd(c);
    if (fd < 0)
        return false;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    if (poll(&pfd, 1, ms) <= 0)
        return false;
    console_handle_input(c);
    return true;
}

/* Pumps until the sink holds `len` bytes (or 2 s pass). */
static void pump_until_input(struct console *c, struct sink *s, size_t len)
{
    int64_t end = now_ms() + 2000;
    while (s->n < len && now_ms() < end)
        pump_once(c, 50);
}

/* Reads from fd until `want` has been seen at the end of what arrived, or
 * `ms` pass. Returns the number of bytes read into buf. */
static size_t read_until(int fd, uint8_t *buf, size_t cap, const char *want, int ms)
{
    size_t got = 0, wl = strlen(want);
    int64_t end = now_ms() + ms;
    while (got < cap) {
        if (got >= wl && memcmp(buf + got - wl, want, wl) == 0)
            break;
        int left = (int)(end - now_ms());
        if (left <= 0)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, left) <= 0)
            break;
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static bool nothing_to_read(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    return poll(&pfd, 1, ms) == 0;
}

static void cwrite(struct console *c, const char *s)
{
    console_write(c, (const uint8_t *)s, strlen(s));
}

static void xwrite(int fd, const void *buf, size_t n)
{
    if (write(fd, buf, n) != (ssize_t)n) {
        perror("write");
        exit(2);
    }
}

static int connect_client(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(2);
    }
    return fd;
}

/* ---- parse ---- */

static void test_parse(void)
{
    enum console_kind k = CONSOLE_FILE;
    char path[128] = "x", err[256];
    int rc = console_parse("stdio", &k, path, sizeof(path), err, sizeof(err));
    CHECK(rc == 0 && k == CONSOLE_STDIO && path[0] == 0, "stdio: rc=%d", rc);
    rc = console_parse("file:/tmp/out.log", &k, path, sizeof(path), err, sizeof(err));
    CHECK(rc == 0 && k == CONSOLE_FILE && !strcmp(path, "/tmp/out.log"), "file: rc=%d", rc);
    rc = console_parse("socket:/run/x.sock", &k, path, sizeof(path), err, sizeof(err));
    CHECK(rc == 0 && k == CONSOLE_SOCKET && !strcmp(path, "/run/x.sock"), "socket: rc=%d", rc);
    rc = console_parse("file:a:b", &k, path, sizeof(path), err, sizeof(err));
    CHECK(rc == 0 && !strcmp(path, "a:b"), "colon in path: rc=%d", rc);

    static const char *bad[] = { "", "std", "stdio:", "Stdio", "file", "file:", "socket:",
                                 "tcp:1234", "pty", " stdio" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        rc = console_parse(bad[i], &k, path, sizeof(path), err, sizeof(err));
        CHECK(rc == -EINVAL && err[0] && !strchr(err, '\n'), "'%s' -> rc=%d '%s'", bad[i], rc, err);
    }
    char small[8];
    rc = console_parse("file:/a/long/path", &k, small, sizeof(small), err, sizeof(err));
    CHECK(rc == -ENAMETOOLONG, "path buffer too small: rc=%d", rc);
    char longp[200] = "socket:/";
    memset(longp + 8, 'a', 150);
    longp[158] = 0;
    char big[256];
    rc = console_parse(longp, &k, big, sizeof(big), err, sizeof(err));
    CHECK(rc == -ENAMETOOLONG && strstr(err, "socket"), "socket path > sun_path: rc=%d %s", rc, err);
    rc = console_parse(longp + 1, &k, big, sizeof(big), err, sizeof(err));  /* "ocket:/..." */
    CHECK(rc == -EINVAL, "unknown prefix: rc=%d", rc);
    CHECK(console_parse(NULL, &k, path, sizeof(path), NULL, 0) == -EINVAL, "NULL spec");
}

/* ---- file ---- */

static void test_file(void)
{
    char path[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/out.log", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("old contents that must go away\n", f);
    fclose(f);

    struct console *c;
    int rc = console_open(CONSOLE_FILE, path, NULL, &c, err, sizeof(err));
    CHECK(rc == 0, "open: rc=%d %s", rc, err);
    if (rc)
        return;
    CHECK(console_fd(c) == -1, "file console has no input fd");
    console_handle_input(c);  /* harmless */
    cwrite(c, "Linux version 6.12\r\n");
    cwrite(c, "login: ");
    console_close(c);

    char buf[256] = "";
    f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    CHECK(!strcmp(buf, "Linux version 6.12\r\nlogin: "), "file contents '%s'", buf);

    char bad[160];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/out.log", tmpdir);
    err[0] = 0;
    rc = console_open(CONSOLE_FILE, bad, NULL, &c, err, sizeof(err));
    CHECK(rc == -ENOENT && strstr(err, bad) && c == NULL, "bad dir: rc=%d %s", rc, err);
}

/* ---- socket ---- */

static void test_socket(void)
{
    char path[100], notsock[128], err[256] = "";
    snprintf(path, sizeof(path), "%s/con.sock", tmpdir);
    snprintf(notsock, sizeof(notsock), "%s/regular", tmpdir);
    struct sink s = { .n = 0 };
    struct console_ops_cb cb = { .input = on_input, .quit = on_quit, .opaque = &s };
    struct console *c;

    /* A regular file at the path is not replaced. */
    close(open(notsock, O_CREAT | O_WRONLY, 0644));
    int rc = console_open(CONSOLE_SOCKET, notsock, &cb, &c, err, sizeof(err));
    CHECK(rc == -EEXIST && strstr(err, notsock), "non-socket path: rc=%d %s", rc, err);
    struct stat st;
    CHECK(stat(notsock, &st) == 0 && S_ISREG(st.st_mode), "regular file left alone");

    /* A stale socket (bound, nobody listening) is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path) + 1);  /* tmpdir paths are short */
    CHECK(bind(stale, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind stale");
    close(stale);
    rc = console_open(CONSOLE_SOCKET, path, &cb, &c, err, sizeof(err));
    CHECK(rc == 0, "open over stale socket: rc=%d %s", rc, err);
    if (rc)
        return;
    int listen_fd = console_fd(c);
    CHECK(listen_fd >= 0, "listening fd");

    /* A second server on the same live path is refused. */
    struct console *c2;
    err[0] = 0;
    rc = console_open(CONSOLE_SOCKET, path, &cb, &c2, err, sizeof(err));
    CHECK(rc == -EADDRINUSE && strstr(err, path), "live socket: rc=%d %s", rc, err);
    /* That probe connected and left; the console reaps it like any client. */
    CHECK(pump_once(c, 500), "probe accepted");
    CHECK(pump_once(c, 500) && console_fd(c) == listen_fd, "probe reaped");

    /* Output before any client is kept and replayed on connect. */
    cwrite(c, "early boot\r\n");
    int a = connect_client(path);
    CHECK(pump_once(c, 1000), "accept A");
    CHECK(console_fd(c) != listen_fd, "fd switches to the client");
    uint8_t buf[4096];
    size_t n = read_until(a, buf, sizeof(buf), "early boot\r\n", 1000);
    CHECK(n == 12 && !memcmp(buf, "early boot\r\n", 12), "replay to A (%zu bytes)", n);

    cwrite(c, "hello");
    n = read_until(a, buf, sizeof(buf), "hello", 1000);
    CHECK(n == 5 && !memcmp(buf, "hello", 5), "output reaches A (%zu)", n);

    xwrite(a, "ls\r\x01x", 5);  /* no escapes on a socket: Ctrl-A x is data */
    pump_until_input(c, &s, 5);
    CHECK(sink_is(&s, "ls\r\x01x", 5) && s.quits == 0, "input from A (%zu bytes)", s.n);

    /* B connects while A is attached: it waits. */
    int b = connect_client(path);
    cwrite(c, "one");
    n = read_until(a, buf, sizeof(buf), "one", 1000);
    CHECK(n == 3 && !memcmp(buf, "one", 3), "A still gets output");
    CHECK(nothing_to_read(b, 100), "B gets nothing while A is attached");

    /* A leaves; B is accepted. */
    close(a);
    CHECK(pump_once(c, 1000) && console_fd(c) == listen_fd, "A reaped");
    CHECK(pump_once(c, 1000) && console_fd(c) != listen_fd, "B accepted");
    cwrite(c, "two");
    n = read_until(b, buf, sizeof(buf), "two", 1000);
    CHECK(n == 3 && !memcmp(buf, "two", 3), "output reaches B (%zu)", n);
    s.n = 0;
    xwrite(b, "xyz", 3);
    pump_until_input(c, &s, 3);
    CHECK(sink_is(&s, "xyz", 3), "input from B");

    /* B leaves, output while nobody is there, C reconnects and gets it. */
    close(b);
    CHECK(pump_once(c, 1000) && console_fd(c) == listen_fd, "B reaped");
    cwrite(c, "while away");
    int cc = connect_client(path);
    CHECK(pump_once(c, 1000), "accept C");
    n = read_until(cc, buf, sizeof(buf), "while away", 1000);
    CHECK(n == 10 && !memcmp(buf, "while away", 10), "replay to C (%zu)", n);

    /* C stops reading: writes must not block, the newest output survives. */
    uint8_t chunk[1024];
    int64_t t0 = now_ms();
    uint32_t seq = 0;
    for (int i = 0; i < 4096; i++) {  /* 4 MiB */
        for (size_t k = 0; k < sizeof(chunk); k += 4, seq++)
            memcpy(chunk + k, &seq, 4);
        console_write(c, chunk, sizeof(chunk));
    }
    int64_t dt = now_ms() - t0;
    CHECK(dt < 2000, "4 MiB to a stalled client took %lld ms", (long long)dt);
    /* Drain C; then one more write flushes the ring behind it. */
    static uint8_t big[8 << 20];
    size_t got = read_until(cc, big, sizeof(big), "\xff\xff\xff\xff", 200);
    cwrite(c, "END");
    got += read_until(cc, big + got, sizeof(big) - got, "END", 2000);
    CHECK(got >= 3 && !memcmp(big + got - 3, "END", 3), "END arrives after the backlog (%zu)", got);
    if (got >= 7) {
        uint32_t last;
        memcpy(&last, big + got - 7, 4);
        CHECK(last == seq - 1, "newest bytes kept: last seq %u want %u", last, seq - 1);
    }
    CHECK(got <= 4u * 1024 * 1024 + 3, "bounded buffering (%zu)", got);

    /* Client reset while output is pending: reaped, server keeps going. */
    cwrite(c, "x");
    close(cc);
    cwrite(c, "after close");  /* may hit EPIPE: must not raise SIGPIPE */
    int64_t end = now_ms() + 1000;
    while (console_fd(c) != listen_fd && now_ms() < end)
        pump_once(c, 50);
    CHECK(console_fd(c) == listen_fd, "C reaped");
    int d = connect_client(path);
    CHECK(pump_once(c, 1000), "accept D");
    cwrite(c, "D!");
    n = read_until(d, buf, sizeof(buf), "D!", 1000);
    CHECK(n >= 2 && !memcmp(buf + n - 2, "D!", 2), "output reaches D");
    close(d);

    console_close(c);
    CHECK(access(path, F_OK) != 0, "socket file removed on close");

    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = 0;
    rc = console_open(CONSOLE_SOCKET, longpath, &cb, &c, err, sizeof(err));
    CHECK(rc == -ENAMETOOLONG, "long socket path: rc=%d", rc);
}

/* Writers on several threads while the I/O thread accepts and reaps
 * clients: no crash, no deadlock, no data race (run under TSan too). */
struct writer_arg {
    struct console *c;
    volatile int *stop;
    long writes;
};

static void *writer_main(void *opaque)
{
    struct writer_arg *w = opaque;
    while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
        console_write(w->c, (const uint8_t *)"0123456789abcdef", 16);
        w->writes++;
    }
    return NULL;
}

static void test_socket_threads(void)
{
    char path[100], err[256] = "";
    snprintf(path, sizeof(path), "%s/mt.sock", tmpdir);
    struct sink s = { .n = 0 };
    struct console_ops_cb cb = { .input = on_input, .opaque = &s };
    struct console *c;
    int rc = console_open(CONSOLE_SOCKET, path, &cb, &c, err, sizeof(err));
    CHECK(rc == 0, "open: rc=%d %s", rc, err);
    if (rc)
        return;
    volatile int stop = 0;
    struct writer_arg w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer_arg){ .c = c, .stop = &stop };
        if (pthread_create(&th[i], NULL, writer_main, &w[i]) != 0) {
            printf("pthread_create failed\n");
            exit(2);
        }
    }
    int sessions = 0;
    size_t received = 0;
    for (int round = 0; round < 20; round++) {
        int fd = connect_client(path);
        pump_once(c, 1000);                      /* accept */
        uint8_t buf[8192];
        for (int k = 0; k < 5; k++) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n > 0)
                received += (size_t)n;
            xwrite(fd, "k", 1);
            pump_once(c, 10);
        }
        close(fd);
        int64_t end = now_ms() + 1000;
        while (console_fd(c) != -1 && now_ms() < end && pump_once(c, 20) &&
               s.n < sizeof(s.in))
            ;
        sessions++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    long writes = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        writes += w[i].writes;
    }
    CHECK(sessions == 20 && received > 0 && writes > 0, "threaded: %d sessions, %zu bytes "
          "received, %ld writes", sessions, received, writes);
    CHECK(s.n > 0, "threaded: input arrived (%zu)", s.n);
    console_close(c);
}

/* ---- stdio over a pipe ---- */

static void test_stdio_pipe(void)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        perror("pipe");
        exit(2);
    }
    struct sink s = { .n = 0 };
    struct console_ops_cb cb = { .input = on_input, .quit = on_quit, .opaque = &s };
    struct console *c;
    char err[256] = "";
    int rc = console_open_fds(in[0], out[1], &cb, &c, err, sizeof(err));
    CHECK(rc == 0, "open_fds: rc=%d %s", rc, err);
    if (rc)
        return;
    CHECK(console_fd(c) == in[0], "input fd");
    console_handle_input(c);  /* nothing to read: must not block */

    xwrite(in[1], "ab\x01\x01" "cd", 6);
    pump_until_input(c, &s, 5);
    CHECK(sink_is(&s, "ab\x01" "cd", 5) && s.quits == 0, "C-a C-a -> one C-a (%zu)", s.n);

    s.n = 0;
    xwrite(in[1], "\x01z\x01\x03", 4);
    pump_until_input(c, &s, 4);
    CHECK(sink_is(&s, "\x01z\x01\x03", 4), "unknown escapes pass through");

    s.n = 0;
    xwrite(in[1], "\x01h", 2);
    pump_once(c, 500);
    uint8_t buf[1024];
    size_t n = read_until(out[0], buf, sizeof(buf) - 1, "C-a\r\n", 1000);
    buf[n] = 0;
    CHECK(strstr((char *)buf, "C-a x") && strstr((char *)buf, "C-a h") && s.n == 0,
          "help printed: '%s'", buf);

    /* Escape split across reads. */
    xwrite(in[1], "\x01", 1);
    pump_once(c, 500);
    CHECK(s.quits == 0 && s.n == 0, "lone C-a waits");
    xwrite(in[1], "x", 1);
    pump_once(c, 500);
    CHECK(s.quits == 1 && s.n == 0, "split C-a x quits (quits=%d n=%zu)", s.quits, s.n);

    /* Bytes before the escape are delivered; after it, dropped. */
    xwrite(in[1], "q\x01xrest", 7);
    pump_once(c, 500);
    CHECK(s.quits == 2 && sink_is(&s, "q", 1), "C-a x mid-chunk (quits=%d n=%zu)", s.quits, s.n);

    cwrite(c, "guest says hi\r\n");
    n = read_until(out[0], buf, sizeof(buf), "hi\r\n", 1000);
    CHECK(n == 15 && !memcmp(buf, "guest says hi\r\n", 15), "guest output on out fd");

    /* EOF on input: no quit, no more polling. */
    s.n = 0;
    xwrite(in[1], "last", 4);
    close(in[1]);
    pump_until_input(c, &s, 4);
    pump_once(c, 500);
    CHECK(sink_is(&s, "last", 4), "input before EOF delivered");
    CHECK(console_fd(c) == -1 && s.quits == 2, "EOF ends input without quitting (fd %d quits %d)",
          console_fd(c), s.quits);
    console_handle_input(c);  /* harmless after EOF */
    cwrite(c, "still running");
    n = read_until(out[0], buf, sizeof(buf), "running", 1000);
    CHECK(n == 13, "output after input EOF");

    console_close(c);
    CHECK(fcntl(in[0], F_GETFD) >= 0 && fcntl(out[1], F_GETFD) >= 0, "fds left to the caller");
    close(in[0]);
    close(out[0]);
    close(out[1]);

    rc = console_open_fds(-1, 1, &cb, &c, err, sizeof(err));
    CHECK(rc == -EBADF, "bad fd: rc=%d", rc);
}

/* ---- stdio output that the reader does not take ---- */

struct out_cb {
    int ready, wakes;
};

static void on_output_ready(void *opaque)
{
    ((struct out_cb *)opaque)->ready++;
}

static void on_wake(void *opaque)
{
    ((struct out_cb *)opaque)->wakes++;
}

static void test_stdio_backpressure(void)
{
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        perror("pipe");
        exit(2);
    }
    signal(SIGPIPE, SIG_IGN);  /* as nimbus does (vm_run): EPIPE, not death */
    int pipe_size = fcntl(out[1], F_GETPIPE_SZ);
    struct out_cb oc = { 0, 0 };
    struct console_ops_cb cb = { .output_ready = on_output_ready, .wake = on_wake, .opaque = &oc };
    struct console *c;
    char err[256] = "";
    int rc = console_open_fds(in[0], out[1], &cb, &c, err, sizeof(err));
    CHECK(rc == 0, "open_fds: rc=%d %s", rc, err);
    if (rc)
        return;
    CHECK(!(fcntl(out[1], F_GETFL) & O_NONBLOCK), "the caller's pipe stays blocking");
    CHECK(console_out_fd(c) == -1 && !console_out_busy(c), "nothing buffered at first");

    /* Nobody reads: the pipe fills, then the buffer; writes never block. */
    static uint8_t chunk[1000];
    size_t total = 0, k;
    int64_t t0 = now_ms();
    do {
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (uint8_t)((total + i) * 7 + 3);
        k = console_write(c, chunk, sizeof(chunk));
        total += k;
    } while (k == sizeof(chunk) && total < (size_t)pipe_size + 4 * CONSOLE_RING_SIZE);
    CHECK(now_ms() - t0 < 1000, "writes into a full pipe do not block (%lld ms)",
          (long long)(now_ms() - t0));
    CHECK(total >= (size_t)pipe_size / 2 + CONSOLE_RING_SIZE &&  /* pipes fill by pages */
          total <= (size_t)pipe_size + CONSOLE_RING_SIZE,
          "accepted the pipe plus the buffer: %zu (pipe %d)", total, pipe_size);
    CHECK(console_out_busy(c), "busy when full");
    CHECK(oc.wakes == 1, "one wake when output got buffered (%d)", oc.wakes);
    CHECK(console_out_fd(c) >= 0, "the I/O thread polls the output");
    console_handle_output(c);  /* still full: no progress, no ready */
    CHECK(oc.ready == 0, "not ready while full");

    /* A slow reader gets every byte, in order; ready comes once. */
    static uint8_t got[1 << 20];
    size_t n = 0;
    while (n < total) {
        ssize_t r = read(out[0], got + n, 4096);
        if (r <= 0)
            break;
        n += (size_t)r;
        int ofd = console_out_fd(c);
        if (ofd >= 0) {
            struct pollfd pfd = { .fd = ofd, .events = POLLOUT };
            if (poll(&pfd, 1, 0) == 1)
                console_handle_output(c);
        }
    }
    bool same = n == total;
    for (size_t i = 0; same && i < n; i++)
        same = got[i] == (uint8_t)(i * 7 + 3);
    CHECK(same, "reader got all %zu bytes in order (%zu)", total, n);
    CHECK(oc.ready == 1 && !console_out_busy(c) && console_out_fd(c) == -1,
          "drained: ready %d, busy %d, out fd %d", oc.ready, console_out_busy(c), console_out_fd(c));

    /* The reader goes away: output is discarded, never blocks, never busy. */
    close(out[0]);
    int full = 0;
    for (int i = 0; i < 200; i++)
        full += console_write(c, chunk, sizeof(chunk)) == sizeof(chunk);
    CHECK(full == 200, "writes after EPIPE are taken (and dropped): %d of 200", full);
    CHECK(!console_out_busy(c) && console_out_fd(c) == -1, "dead output is not busy");
    console_flush(c, 1000);
    console_close(c);
    close(in[0]);
    close(in[1]);
    close(out[1]);
}

/* ---- stdio on a pty: raw mode and its restoration ---- */

static void test_stdio_pty(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) {
        printf("note: no pty available, raw-mode checks not run\n");
        if (master >= 0)
            close(master);
        return;
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0) {
        printf("note: cannot open pty slave, raw-mode checks not run\n");
        close(master);
        return;
    }
    struct termios before, t;
    tcgetattr(slave, &before);
    CHECK(before.c_lflag & ICANON, "pty starts cooked");

    struct sink s = { .n = 0 };
    struct console_ops_cb cb = { .input = on_input, .quit = on_quit, .opaque = &s };
    struct console *c;
    char err[256] = "";
    int rc = console_open_fds(slave, slave, &cb, &c, err, sizeof(err));
    CHECK(rc == 0, "open on pty: rc=%d %s", rc, err);
    if (rc)
        goto out;
    tcgetattr(slave, &t);
    CHECK(t.c_lflag == before.c_lflag && t.c_iflag == before.c_iflag,
          "open leaves the terminal alone (raw only once the guest starts)");
    rc = console_start(c, err, sizeof(err));
    CHECK(rc == 0, "start: rc=%d %s", rc, err);
    tcgetattr(slave, &t);
    CHECK(!(t.c_lflag & (ICANON | ECHO | ISIG)) && !(t.c_oflag & OPOST) && !(t.c_iflag & ICRNL),
          "raw mode set by console_start");

    xwrite(master, "hi\r\x03\x01x", 6);  /* Ctrl-C goes to the guest in raw mode */
    pump_until_input(c, &s, 4);
    pump_once(c, 100);
    CHECK(sink_is(&s, "hi\r\x03", 4) && s.quits == 1, "pty input (n=%zu quits=%d)", s.n, s.quits);

    console_restore_terminal(c);
    tcgetattr(slave, &t);
    CHECK(t.c_lflag & ICANON, "restore_terminal restores");
    CHECK(!(fcntl(slave, F_GETFL) & O_NONBLOCK), "the caller's pty fd stays blocking");
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    console_close(c);
    tcgetattr(slave, &t);
    CHECK((t.c_lflag & ICANON) && t.c_lflag == before.c_lflag && t.c_oflag == before.c_oflag &&
          t.c_iflag == before.c_iflag, "close restores the original mode");
    console_restore_terminal(NULL);
out:
    close(slave);
    close(master);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nimbus-console-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    test_parse();
    test_file();
    test_socket();
    test_socket_threads();
    test_stdio_pipe();
    test_stdio_backpressure();
    test_stdio_pty();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_summary("console");
}
