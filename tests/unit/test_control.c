/* Unit tests for the control socket (api/control.c) with fake request
 * handlers: request parsing and validation, the socket path rules (a
 * regular file refused and kept, a stale socket replaced, a live one
 * refused, too long a path), replies and errors over a real unix socket,
 * a line over the limit (error, then the connection goes on), a last
 * request without its newline, several clients at once, one client too
 * many, a client that vanishes, the socket file removed on close. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/control.h"

#include "check.h"

struct fake {
    int calls;
    struct control_request last;
};

static int fake_handle(void *opaque, const struct control_request *req, json_t *reply, char *err,
                       size_t errlen)
{
    struct fake *f = opaque;
    f->calls++;
    f->last = *req;
    if (req->cmd == CONTROL_CMD_BALLOON && req->target_mib == 666) {
        snprintf(err, errlen, "no balloon here");
        return -ENODEV;
    }
    json_object_set_new(reply, "ok", json_integer(req->cmd));
    return 0;
}

static char dir[64];
static char path[96];

static int parse(const char *s, struct control_request *req, char *err)
{
    return control_parse(s, strlen(s), req, err, 256);
}

static void test_parse(void)
{
    struct control_request r;
    char err[256];
    CHECK_EQ(parse("{\"cmd\":\"status\"}", &r, err), 0);
    CHECK_EQ(r.cmd, CONTROL_CMD_STATUS);
    CHECK_EQ(parse(" {\"target_mib\": 300, \"cmd\": \"balloon\"} ", &r, err), 0);
    CHECK(r.cmd == CONTROL_CMD_BALLOON && r.target_mib == 300);
    CHECK_EQ(parse("{\"cmd\":\"balloon-stats\"}", &r, err), 0);
    CHECK_EQ(r.cmd, CONTROL_CMD_BALLOON_STATS);

    static const struct {
        const char *in, *msg;
    } bad[] = {
        { "{", "malformed JSON" },
        { "{\"cmd\":\"status\"} {}", "malformed JSON" },
        { "[]", "a request is a JSON object" },
        { "42", "a request is a JSON object" },
        { "{}", "\"cmd\" must be a string" },
        { "{\"cmd\":null}", "\"cmd\" must be a string" },
        { "{\"cmd\":\"reboot\"}", "unknown command \"reboot\"" },
        { "{\"cmd\":\"status\",\"x\":1}", "unknown field \"x\" for status" },
        { "{\"cmd\":\"balloon\"}", "balloon needs \"target_mib\"" },
        { "{\"cmd\":\"balloon\",\"target_mib\":\"5\"}", "non-negative integer" },
        { "{\"cmd\":\"balloon\",\"target_mib\":-5}", "non-negative integer" },
        { "{\"cmd\":\"balloon\",\"target_mib\":5.0}", "non-negative integer" },
        { "{\"cmd\":\"balloon\",\"target_mib\":true}", "non-negative integer" },
        { "{\"cmd\":\"status\",\"cmd\":\"status\"}", "duplicate" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ(parse(bad[i].in, &r, err), -EINVAL);
        CHECK_MSG(strstr(err, bad[i].msg) != NULL, "%s -> '%s' (want '%s')", bad[i].in, err,
                  bad[i].msg);
    }
    /* Embedded NUL bytes are malformed, not a shorter request. */
    CHECK_EQ(control_parse("{\"cmd\":\"status\"}\0x", 18, &r, err, sizeof(err)), -EINVAL);
}

static int connect_to(const char *p)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Serves the control socket for a while (the I/O thread's job). */
static void pump(struct control *c, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        struct pollfd fds[VM_IO_SOURCE_MAX_FDS];
        unsigned n = control_fill(c, fds, VM_IO_SOURCE_MAX_FDS);
        if (poll(fds, n, 2) > 0)
            control_handle(c, fds, n);
    }
}

/* Reads one reply line from `fd`, serving the socket meanwhile. */
static bool reply(struct control *c, int fd, char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; i < 2000 && got < len - 1; i++) {
        pump(c, 1);
        ssize_t n = recv(fd, buf + got, 1, MSG_DONTWAIT);
        if (n == 1) {
            if (buf[got] == '\n') {
                buf[got] = '\0';
                return true;
            }
            got++;
            i = 0;
        } else if (n == 0) {
            break;
        }
    }
    buf[got] = '\0';
    return false;
}

static void say(int fd, const char *s)
{
    CHECK_EQ(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void test_paths(const struct control_ops *ops)
{
    struct control *c = NULL;
    char err[256];
    char file[96];

    snprintf(file, sizeof(file), "%s/file", dir);
    FILE *f = fopen(file, "w");
    fputs("keep", f);
    fclose(f);
    CHECK_EQ(control_open(file, ops, &c, err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, "exists and is not a socket") && strstr(err, file));
    struct stat st;
    CHECK(stat(file, &st) == 0 && st.st_size == 4);

    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    CHECK_EQ(control_open(longp, ops, &c, err, sizeof(err)), -ENAMETOOLONG);

    /* A stale socket file: bound, never served, its owner gone. */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    CHECK_EQ(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    close(s);
    CHECK_EQ(control_open(path, ops, &c, err, sizeof(err)), 0);
    CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_EQ(st.st_mode & 0077, 0);   /* owner only */

    /* A live one is not taken over. */
    struct control *c2 = NULL;
    CHECK_EQ(control_open(path, ops, &c2, err, sizeof(err)), -EADDRINUSE);
    CHECK(strstr(err, "in use") != NULL);
    control_close(c);
    CHECK(stat(path, &st) != 0 && errno == ENOENT);
    control_close(NULL);
}

static void test_serve(const struct control_ops *ops, struct fake *fk)
{
    struct control *c = NULL;
    char err[256], buf[8192];
    CHECK_EQ(control_open(path, ops, &c, err, sizeof(err)), 0);

    int a = connect_to(path);
    CHECK(a >= 0);
    say(a, "{\"cmd\":\"status\"}\n");
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":2}"));
    CHECK_EQ(fk->calls, 1);
    say(a, "{\"cmd\":\"balloon\",\"target_mib\":666}\r\n");
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"error\":\"no balloon here\"}"));
    CHECK(fk->last.cmd == CONTROL_CMD_BALLOON && fk->last.target_mib == 666);
    say(a, "nonsense\n\n   \n{\"cmd\":\"balloon\",\"target_mib\":12}\n");
    CHECK(reply(c, a, buf, sizeof(buf)) && strstr(buf, "{\"error\":\"malformed JSON"));
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":0}"));   /* blank lines: nothing */
    CHECK_EQ(fk->last.target_mib, 12);

    /* Over the limit: one error, the rest of that line skipped, then on. */
    static char big[3 * CONTROL_MAX_LINE];
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"cmd\":\"status\"", 15);
    int calls = fk->calls;
    for (size_t off = 0; off < sizeof(big); off += 1024) {
        CHECK_EQ(send(a, big + off, 1024, MSG_NOSIGNAL), 1024);
        pump(c, 2);
    }
    say(a, "}\n{\"cmd\":\"balloon-stats\"}\n");
    CHECK(reply(c, a, buf, sizeof(buf)) && strstr(buf, "request longer than 4096 bytes"));
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":1}"));
    CHECK_EQ(fk->calls, calls + 1);

    /* Exactly the limit is fine. */
    memset(big, ' ', CONTROL_MAX_LINE);
    memcpy(big, "{\"cmd\":\"status\"}", 16);
    big[CONTROL_MAX_LINE] = '\n';
    CHECK_EQ(send(a, big, CONTROL_MAX_LINE + 1, MSG_NOSIGNAL), (ssize_t)CONTROL_MAX_LINE + 1);
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":2}"));

    /* Several clients; one with half a request waiting. */
    int b = connect_to(path);
    say(a, "{\"cmd\":\"sta");
    say(b, "{\"cmd\":\"balloon-stats\"}\n");
    CHECK(reply(c, b, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":1}"));
    say(a, "tus\"}\n");
    CHECK(reply(c, a, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":2}"));

    /* The limit on connections: the one too many is told and closed. */
    int more[CONTROL_MAX_CLIENTS];
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS - 2; i++) {
        more[i] = connect_to(path);
        pump(c, 3);
    }
    int extra = connect_to(path);
    CHECK(extra >= 0);
    CHECK(reply(c, extra, buf, sizeof(buf)) && strstr(buf, "too many control connections"));
    CHECK(!reply(c, extra, buf, sizeof(buf)));   /* closed */
    close(extra);

    /* A client that vanishes with a request unanswered harms no one. */
    say(more[0], "{\"cmd\":\"status\"}\n");
    close(more[0]);
    pump(c, 10);
    for (unsigned i = 1; i < CONTROL_MAX_CLIENTS - 2; i++)
        close(more[i]);
    pump(c, 10);

    /* A last request without its newline, then end of input. */
    int e = connect_to(path);
    say(e, "{\"cmd\":\"balloon\",\"target_mib\":7}");
    shutdown(e, SHUT_WR);
    CHECK(reply(c, e, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":0}"));
    CHECK(!reply(c, e, buf, sizeof(buf)));
    close(e);

    say(b, "{\"cmd\":\"status\"}\n");
    CHECK(reply(c, b, buf, sizeof(buf)) && !strcmp(buf, "{\"ok\":2}"));
    close(a);
    close(b);
    control_close(c);
    CHECK(access(path, F_OK) != 0);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nimbus-test-control.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/ctl.sock", dir);
    struct fake fk = { 0 };
    struct control_ops ops = { .handle = fake_handle, .opaque = &fk };

    test_parse();
    test_paths(&ops);
    test_serve(&ops, &fk);

    char file[96];
    snprintf(file, sizeof(file), "%s/file", dir);
    unlink(file);
    rmdir(dir);
    return check_summary("test_control");
}
