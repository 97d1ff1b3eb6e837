/* A command through a guest's console shell. See console_exec.h. */
#include "vm/console_exec.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "base/io.h"

#define TOKEN_LEN 16
#define KILL_LINE 0x15   /* ^U: a line left half typed on the console is dropped */

static int put(char *line, size_t linelen, size_t *n, const char *s, size_t len)
{
    if (*n + len >= linelen || *n + len > CONSOLE_EXEC_MAX_LINE)
        return -E2BIG;
    memcpy(line + *n, s, len);
    *n += len;
    line[*n] = '\0';
    return 0;
}

int console_exec_line(int argc, char *const argv[], const char *token, char *line,
                      size_t linelen)
{
    char marker[64];
    size_t n = 0;
    int r;
    if (argc < 1)
        return -EINVAL;
    snprintf(marker, sizeof(marker), "printf '\\n%%s%%s\\n' S %s;", token);
    if ((r = put(line, linelen, &n, marker, strlen(marker))))
        return r;
    for (int i = 0; i < argc; i++) {
        /* ' ' then the word in single quotes, each ' in it as '\'' */
        if ((r = put(line, linelen, &n, " '", 2)))
            return r;
        for (const char *p = argv[i]; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return -EINVAL;   /* the terminal would act on it (newline, ^C, tab) */
            if ((r = *p == '\'' ? put(line, linelen, &n, "'\\''", 4) : put(line, linelen, &n, p, 1)))
                return r;
        }
        if ((r = put(line, linelen, &n, "'", 1)))
            return r;
    }
    snprintf(marker, sizeof(marker), " </dev/null; printf '\\n%%s%%s %%d\\n' E %s $?\n", token);
    if ((r = put(line, linelen, &n, marker, strlen(marker))))
        return r;
    return (int)n;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The console's bytes with the terminal's CR LF turned into LF: a CR at
 * the end of one read waits for the next. Returns the bytes in out. */
static size_t crlf_to_lf(const uint8_t *in, size_t n, bool *cr_held, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (*cr_held) {
            *cr_held = false;
            if (in[i] != '\n')
                out[k++] = '\r';
        }
        if (in[i] == '\r')
            *cr_held = true;
        else
            out[k++] = in[i];
    }
    return k;
}

/* Where `pat` (len bytes) starts in buf[0, n), or -1. */
static long find(const uint8_t *buf, size_t n, const char *pat, size_t len)
{
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(buf + i, pat, len))
            return (long)i;
    return -1;
}

int console_exec(int fd, int argc, char *const argv[], int out_fd, int start_timeout_ms,
                 int *status, int64_t *started_ns, char *err, size_t errlen)
{
    uint8_t rnd[TOKEN_LEN / 2];
    char token[TOKEN_LEN + 1];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return errmsg(err, errlen, -EIO, "console: no randomness for the markers");
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(token + 2 * i, 3, "%02x", rnd[i]);

    char line[CONSOLE_EXEC_MAX_LINE + 2];
    line[0] = KILL_LINE;
    int len = console_exec_line(argc, argv, token, line + 1, sizeof(line) - 1);
    if (len == -E2BIG)
        return errmsg(err, errlen, len, "console: the command line is longer than %d bytes "
                      "(the guest's line editor would cut it)", CONSOLE_EXEC_MAX_LINE);
    if (len < 0)
        return errmsg(err, errlen, len, "console: an argument holds a control character "
                      "(a newline, a tab, ...), which a terminal would act on");
    int r = io_write_all(fd, line, (size_t)len + 1);
    if (r)
        return errmsg(err, errlen, r, "console: typing the command: %s", strerror(-r));

    /* The markers as the console shows them (after CR LF -> LF). */
    char start[TOKEN_LEN + 3], end[TOKEN_LEN + 4];
    size_t start_len = (size_t)snprintf(start, sizeof(start), "S%s\n", token);
    size_t end_len = (size_t)snprintf(end, sizeof(end), "\nE%s ", token);

    enum { WAIT_START, OUTPUT, STATUS } phase = WAIT_START;
    uint8_t in[4096], buf[2 * sizeof(in) + 64];
    size_t have = 0;   /* normalised bytes in buf not dealt with yet */
    bool cr_held = false;
    int64_t deadline = now_ns() + (int64_t)start_timeout_ms * 1000000;
    for (;;) {
        int wait = -1;
        if (phase == WAIT_START) {
            int64_t left = (deadline - now_ns() + 999999) / 1000000;
            if (left <= 0)
                return errmsg(err, errlen, -ETIMEDOUT, "no shell answered on the guest's "
                              "console in %d s (it must be at a shell prompt there)",
                              start_timeout_ms / 1000);
            wait = (int)left;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int k = poll(&p, 1, wait);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errmsg(err, errlen, -errno, "console: poll: %s", strerror(errno));
        if (k == 0)
            continue;   /* the deadline, checked above */
        ssize_t got = read(fd, in, sizeof(in));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return errmsg(err, errlen, -ECONNRESET,
                          "the guest's console closed before the command finished");
        have += crlf_to_lf(in, (size_t)got, &cr_held, buf + have);

        if (phase == WAIT_START) {
            long at = find(buf, have, start, start_len);
            size_t keep = start_len - 1;   /* a start marker may be cut across reads */
            if (at < 0) {
                if (have > keep) {
                    memmove(buf, buf + have - keep, keep);
                    have = keep;
                }
                continue;
            }
            have -= (size_t)at + start_len;
            memmove(buf, buf + at + start_len, have);
            phase = OUTPUT;
            if (started_ns)
                *started_ns = now_ns();
        }
        if (phase == OUTPUT) {
            long at = find(buf, have, end, end_len);
            size_t out = at >= 0 ? (size_t)at : have > end_len - 1 ? have - (end_len - 1) : 0;
            if (out && (r = io_write_all(out_fd, buf, out)))
                return errmsg(err, errlen, r, "console: writing the output: %s", strerror(-r));
            if (at >= 0) {
                out += end_len;
                phase = STATUS;
            }
            have -= out;
            memmove(buf, buf + out, have);
        }
        if (phase == STATUS) {
            uint8_t *nl = memchr(buf, '\n', have);
            if (!nl) {
                if (have > 8)
                    break;
                continue;
            }
            *nl = '\0';
            char *e;
            long v = strtol((char *)buf, &e, 10);
            if (e == (char *)buf || *e || v < 0 || v > 255)
                break;
            *status = (int)v;
            return 0;
        }
    }
    return errmsg(err, errlen, -EPROTO, "console: a garbled exit status after the command");
}
