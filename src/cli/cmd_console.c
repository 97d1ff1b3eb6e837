/* nimbus console: the VM's console through the unix socket nimbusd gives
 * it (INFO's console_socket), as virsh console: the terminal in raw mode,
 * Ctrl-] detaches.
 *
 * The terminal side is a stdio struct console (machine/console.h) on fds 0
 * and 1, used for what it does already: raw mode restored however we end
 * (term_guard for fatal signals, a signalfd here for SIGINT/SIGTERM/SIGHUP)
 * and output that never blocks. Input is read here, not by the console:
 * its Ctrl-A escapes are nimbus run's, this command has Ctrl-] alone. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"
#include "machine/console.h"
#include "vm/term_guard.h"

#define DETACH_BYTE 0x1d   /* Ctrl-], virsh's escape */

enum end { END_NONE, END_DETACH, END_CLOSED, END_SIGNAL, END_ERROR };

struct session {
    int sock;
    int sigfd;
    struct console *term;
    bool in_eof;           /* stdin ended: output goes on until the console closes */
    int signo;
    char err[256];
};

/* All of buf to the console socket. */
static int send_all(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static enum end on_stdin(struct session *s)
{
    uint8_t buf[4096];
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return END_NONE;
    if (n < 0 && errno != EIO) {
        snprintf(s->err, sizeof(s->err), "reading standard input: %s", strerror(errno));
        return END_ERROR;
    }
    if (n <= 0) {   /* EOF, or the terminal went away (EIO) */
        if (isatty(STDIN_FILENO))
            return END_DETACH;
        s->in_eof = true;
        return END_NONE;
    }
    uint8_t *esc = memchr(buf, DETACH_BYTE, (size_t)n);
    size_t keep = esc ? (size_t)(esc - buf) : (size_t)n;
    int r = send_all(s->sock, buf, keep);
    if (r) {
        snprintf(s->err, sizeof(s->err), "writing to the console: %s", strerror(-r));
        return END_ERROR;
    }
    return esc ? END_DETACH : END_NONE;
}

static enum end on_socket(struct session *s)
{
    uint8_t buf[CONSOLE_OUT_SLACK];   /* what console_write takes while not busy */
    ssize_t n = recv(s->sock, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return END_NONE;
    if (n < 0) {
        snprintf(s->err, sizeof(s->err), "reading the console: %s", strerror(errno));
        return END_ERROR;
    }
    if (n == 0)
        return END_CLOSED;
    console_write(s->term, buf, (size_t)n);
    return END_NONE;
}

static enum end session_loop(struct session *s)
{
    for (;;) {
        struct pollfd p[4] = {
            { .fd = s->sigfd, .events = POLLIN },
            { .fd = s->in_eof ? -1 : STDIN_FILENO, .events = POLLIN },
            /* A terminal that does not keep up holds the guest's output
             * back (in the VM's console ring), not our memory. */
            { .fd = console_out_busy(s->term) ? -1 : s->sock, .events = POLLIN },
            { .fd = console_out_fd(s->term), .events = POLLOUT },
        };
        if (poll(p, 4, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(s->err, sizeof(s->err), "poll: %s", strerror(errno));
            return END_ERROR;
        }
        enum end e = END_NONE;
        if (p[0].revents) {
            struct signalfd_siginfo si;
            if (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                s->signo = (int)si.ssi_signo;
                return END_SIGNAL;
            }
        }
        if (p[3].revents)
            console_handle_output(s->term);
        if (p[1].revents && (e = on_stdin(s)) != END_NONE)
            return e;
        if (p[2].revents && (e = on_socket(s)) != END_NONE)
            return e;
    }
}

static int connect_console(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%.200s: path too long for a unix socket", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot connect to the console at %.200s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The console socket of a running VM, from nimbusd; 0 or the exit status. */
static int console_path(const struct api_cmd_args *a, const char *vm, char *out, size_t len)
{
    char path[512];
    json_t *reply;
    daemon_vm_path(path, sizeof(path), vm, "");
    int r = daemon_call("console", a, vm, "GET", path, NULL, &reply);
    if (r)
        return r;
    const char *sock = json_string_value(json_object_get(reply, "console_socket"));
    const char *state = json_string_value(json_object_get(reply, "state"));
    r = 0;
    if (!sock || !*sock) {
        fprintf(stderr, "nimbus console: VM %s is not running (it is %s)\n", vm,
                state ? state : "?");
        r = 1;
    } else {
        snprintf(out, len, "%s", sock);
    }
    json_decref(reply);
    return r;
}

static int run_session(struct session *s, const char *vm)
{
    char err[256];
    sigset_t quit, block;
    sigemptyset(&quit);
    sigaddset(&quit, SIGINT);
    sigaddset(&quit, SIGTERM);
    sigaddset(&quit, SIGHUP);
    block = quit;
    sigaddset(&block, SIGPIPE);   /* a closed stdout is an error to report */
    sigprocmask(SIG_BLOCK, &block, NULL);
    s->sigfd = signalfd(-1, &quit, SFD_CLOEXEC);
    if (s->sigfd < 0) {
        fprintf(stderr, "nimbus console: signalfd: %s\n", strerror(errno));
        return 1;
    }
    if (console_open_fds(STDIN_FILENO, STDOUT_FILENO, NULL, &s->term, err, sizeof(err))) {
        fprintf(stderr, "nimbus console: %s\n", err);
        close(s->sigfd);
        return 1;
    }
    fprintf(stderr, "Connected to VM %s\nEscape character is ^] (Ctrl + ])\n", vm);
    int r = term_guard_add(s->term);
    if (r)
        snprintf(s->err, sizeof(s->err), "cannot guard the terminal: %s", strerror(-r));
    else if ((r = console_start(s->term, err, sizeof(err))))
        snprintf(s->err, sizeof(s->err), "%s", err);
    enum end e = r ? END_ERROR : session_loop(s);
    console_flush(s->term, 1000);   /* the last of the output */
    term_guard_remove(s->term);
    console_close(s->term);
    close(s->sigfd);
    /* Back in cooked mode: the cursor may be anywhere on a line. */
    switch (e) {
    case END_CLOSED:
        fprintf(stderr, "\nnimbus console: the console of VM %s closed\n", vm);
        return 0;
    case END_SIGNAL:
        fprintf(stderr, "\n");
        return 128 + s->signo;
    case END_ERROR:
        fprintf(stderr, "\nnimbus console: %s\n", s->err);
        return 1;
    default:
        fprintf(stderr, "\n");
        return 0;
    }
}

int cmd_console(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus console VM [--connect PATH]\n"
        "Connects the terminal to a running VM's console (its serial port, or hvc0\n"
        "with \"console\": \"virtio\"), in raw mode: every key goes to the guest but\n"
        "Ctrl-], which detaches (the VM runs on). What the guest wrote while nobody\n"
        "was attached (the last 64 KiB) comes first. One client at a time: a second\n"
        "one waits until the first detaches.\n"
        "Standard input need not be a terminal: what it holds is sent (up to a\n"
        "Ctrl-] byte, which detaches), and output is shown until the console\n"
        "closes or the command is interrupted.\n"
        DAEMON_CONNECT_USAGE
        "Exit status: 0 after Ctrl-] or when the VM's console closes (the VM\n"
        "ended); 128+N when ended by signal N (SIGINT, SIGTERM, SIGHUP); 1 on errors\n"
        "(no such VM, not running, no nimbusd).\n";
    const struct api_cmd_spec spec = { .usage = usage, .which = API_CMD_CONNECT };
    struct api_cmd_args a;
    const char *vm;
    int r = daemon_vm_cmd_parse(argc, argv, &spec, &a, &vm);
    if (!vm)
        return r;
    if (a.json) {
        fprintf(stderr, "nimbus console: a console is not JSON: no --json\n");
        return 2;
    }
    char path[4096], err[512];
    if ((r = console_path(&a, vm, path, sizeof(path))))
        return r;
    struct session s = { .sock = connect_console(path, err, sizeof(err)) };
    if (s.sock < 0) {
        fprintf(stderr, "nimbus console: %s\n", err);
        return 1;
    }
    r = run_session(&s, vm);
    close(s.sock);
    return r;
}
