/* The control socket. See control.h. */
#include "api/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/errmsg.h"

struct client {
    int fd;                         /* -1: free slot */
    char in[CONTROL_MAX_LINE + 1];
    size_t in_len;
    bool skipping;                  /* inside a line that was too long */
    bool closing;                   /* end of input: close once out is sent */
    char *out;
    size_t out_len, out_cap;
};

struct control {
    int listen_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;                      /* the socket file we made, to remove only it */
    ino_t ino;
    struct control_ops ops;
    struct client clients[CONTROL_MAX_CLIENTS];
    /* What control_fill put at each poll index: -1 the listener, else a client. */
    int slot_of[1 + CONTROL_MAX_CLIENTS];
};

/* ---- requests ---- */

static const struct {
    const char *name;
    enum control_cmd cmd;
    const char *fields[2];          /* besides "cmd"; NULL-terminated */
} commands[] = {
    { "balloon", CONTROL_CMD_BALLOON, { "target_mib", NULL } },
    { "balloon-stats", CONTROL_CMD_BALLOON_STATS, { NULL } },
    { "status", CONTROL_CMD_STATUS, { NULL } },
    { "pause", CONTROL_CMD_PAUSE, { NULL } },
    { "resume", CONTROL_CMD_RESUME, { NULL } },
};

int control_parse(const char *line, size_t len, struct control_request *req, char *err,
                  size_t errlen)
{
    json_error_t je;
    int r = -EINVAL;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root)
        return errmsg(err, errlen, -EINVAL, "malformed JSON: %s", je.text);
    if (!json_is_object(root)) {
        errmsg(err, errlen, -EINVAL, "a request is a JSON object, e.g. {\"cmd\":\"status\"}");
        goto out;
    }
    const char *name = json_string_value(json_object_get(root, "cmd"));
    if (!name) {
        errmsg(err, errlen, -EINVAL, "\"cmd\" must be a string (balloon, balloon-stats, status, pause, resume)");
        goto out;
    }
    size_t i;
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(commands[i].name, name))
            break;
    if (i == sizeof(commands) / sizeof(commands[0])) {
        errmsg(err, errlen, -EINVAL, "unknown command \"%.64s\" (balloon, balloon-stats, status, pause, resume)",
               name);
        goto out;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        bool known = !strcmp(key, "cmd");
        for (const char *const *f = commands[i].fields; *f && !known; f++)
            known = !strcmp(key, *f);
        if (!known) {
            errmsg(err, errlen, -EINVAL, "unknown field \"%.64s\" for %s", key, name);
            goto out;
        }
    }
    *req = (struct control_request){ .cmd = commands[i].cmd };
    if (req->cmd == CONTROL_CMD_BALLOON) {
        json_t *t = json_object_get(root, "target_mib");
        if (!t) {
            errmsg(err, errlen, -EINVAL, "balloon needs \"target_mib\"");
            goto out;
        }
        if (!json_is_integer(t) || json_integer_value(t) < 0) {
            errmsg(err, errlen, -EINVAL, "\"target_mib\" must be a non-negative integer");
            goto out;
        }
        req->target_mib = (uint64_t)json_integer_value(t);
    }
    r = 0;
out:
    json_decref(root);
    return r;
}

/* ---- connections ---- */

static void drop_client(struct client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    free(cl->out);
    *cl = (struct client){ .fd = -1 };
}

/* Queues `len` bytes for the client; false when it has too much unread. */
static bool queue_out(struct client *cl, const char *buf, size_t len)
{
    if (cl->out_len + len > CONTROL_MAX_OUTPUT)
        return false;
    if (cl->out_len + len > cl->out_cap) {
        size_t cap = cl->out_cap ? cl->out_cap : 1024;
        while (cap < cl->out_len + len)
            cap *= 2;
        char *p = realloc(cl->out, cap);
        if (!p)
            return false;
        cl->out = p;
        cl->out_cap = cap;
    }
    memcpy(cl->out + cl->out_len, buf, len);
    cl->out_len += len;
    return true;
}

/* Sends what it can without blocking; false if the client is gone. */
static bool flush_out(struct client *cl)
{
    while (cl->out_len) {
        ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
        cl->out_len -= (size_t)n;
    }
    return true;
}

static bool reply_json(struct client *cl, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    bool ok = s && queue_out(cl, s, strlen(s)) && queue_out(cl, "\n", 1);
    free(s);
    return ok;
}

static bool reply_error(struct client *cl, const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    bool ok = reply_json(cl, o);
    json_decref(o);
    return ok;
}

/* One complete line from a client; false drops the client. */
static bool serve_line(struct control *c, struct client *cl, char *line, size_t len)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return true;
    char err[256];
    struct control_request req;
    if (control_parse(line, len, &req, err, sizeof(err)))
        return reply_error(cl, err);
    json_t *reply = json_object();
    if (!reply)
        return false;
    err[0] = '\0';
    int r = c->ops.handle(c->ops.opaque, &req, reply, err, sizeof(err));
    bool ok = r ? reply_error(cl, err[0] ? err : strerror(-r)) : reply_json(cl, reply);
    json_decref(reply);
    return ok;
}

/* Reads what there is; false drops the client. */
static bool read_client(struct control *c, struct client *cl)
{
    char buf[4096];
    ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) {
        /* A last request without its newline still counts. */
        if (cl->in_len && !cl->skipping && !serve_line(c, cl, cl->in, cl->in_len))
            return false;
        cl->in_len = 0;
        cl->closing = true;
        return true;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (cl->skipping) {
            cl->skipping = ch != '\n';
            continue;
        }
        if (ch == '\n') {
            size_t len = cl->in_len;
            cl->in_len = 0;
            if (!serve_line(c, cl, cl->in, len))
                return false;
            continue;
        }
        if (cl->in_len == CONTROL_MAX_LINE) {
            char msg[80];
            snprintf(msg, sizeof(msg), "request longer than %u bytes", CONTROL_MAX_LINE);
            if (!reply_error(cl, msg))
                return false;
            cl->in_len = 0;
            cl->skipping = true;
            continue;
        }
        cl->in[cl->in_len++] = ch;
    }
    return true;
}

static void accept_client(struct control *c)
{
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
        if (c->clients[i].fd < 0) {
            c->clients[i] = (struct client){ .fd = fd };
            return;
        }
    }
    static const char busy[] = "{\"error\":\"too many control connections\"}\n";
    ssize_t w = send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

unsigned control_fill(struct control *c, struct pollfd *fds, unsigned max)
{
    unsigned n = 0;
    if (n < max) {
        c->slot_of[n] = -1;
        fds[n++] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
    }
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS && n < max; i++) {
        struct client *cl = &c->clients[i];
        if (cl->fd < 0)
            continue;
        short ev = (short)((cl->closing ? 0 : POLLIN) | (cl->out_len ? POLLOUT : 0));
        c->slot_of[n] = (int)i;
        fds[n++] = (struct pollfd){ .fd = cl->fd, .events = ev };
    }
    return n;
}

void control_handle(struct control *c, const struct pollfd *fds, unsigned n)
{
    bool listener_ready = false;
    for (unsigned k = 0; k < n; k++) {
        if (!fds[k].revents)
            continue;
        if (c->slot_of[k] < 0) {
            listener_ready = true;
            continue;
        }
        struct client *cl = &c->clients[c->slot_of[k]];
        if (cl->fd != fds[k].fd)
            continue;
        bool ok = true;
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
            ok = read_client(c, cl);
        if (ok)
            ok = flush_out(cl);
        if (!ok || (cl->closing && !cl->out_len))
            drop_client(cl);
    }
    if (listener_ready)
        accept_client(c);
}

static unsigned source_fill(void *opaque, struct pollfd *fds, unsigned max)
{
    return control_fill(opaque, fds, max);
}

static void source_handle(void *opaque, const struct pollfd *fds, unsigned n)
{
    control_handle(opaque, fds, n);
}

struct vm_io_source control_io_source(struct control *c)
{
    return (struct vm_io_source){ .fill = source_fill, .handle = source_handle, .opaque = c };
}

/* ---- the socket ---- */

/* Is someone accepting connections on the socket at `addr`? */
static bool socket_alive(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool alive = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    close(fd);
    return alive;
}

int control_open(const char *path, const struct control_ops *ops, struct control **out,
                 char *err, size_t errlen)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    int r;

    if (!path || !*path || strlen(path) >= sizeof(addr.sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "--control path '%.64s' is empty or longer "
                      "than %zu bytes", path ? path : "", sizeof(addr.sun_path) - 1);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return errmsg(err, errlen, -EEXIST, "--control %s exists and is not a socket", path);
        if (socket_alive(&addr))
            return errmsg(err, errlen, -EADDRINUSE, "--control %s is in use by another process",
                          path);
        unlink(path);   /* left behind by a VM that is gone */
    }

    struct control *c = calloc(1, sizeof(*c));
    if (!c)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    c->ops = *ops;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->clients[i].fd = -1;
    memcpy(c->path, path, strlen(path) + 1);
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0) {
        r = errmsg(err, errlen, -errno, "--control %s: socket: %s", path, strerror(errno));
        goto fail;
    }
    /* Only the owner may connect: the socket controls the VM. */
    mode_t old = umask(0077);
    r = bind(c->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
    int e = errno;
    umask(old);
    if (r) {
        r = errmsg(err, errlen, -e, "--control %s: cannot bind: %s", path, strerror(e));
        goto fail;
    }
    if (listen(c->listen_fd, 16) || stat(path, &st)) {
        r = errmsg(err, errlen, -errno, "--control %s: %s", path, strerror(errno));
        unlink(path);
        goto fail;
    }
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    *out = c;
    return 0;
fail:
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    free(c);
    return r;
}

void control_close(struct control *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (c->clients[i].fd >= 0)
            drop_client(&c->clients[i]);
    close(c->listen_fd);
    /* Remove the file only if it is still ours (not replaced meanwhile). */
    struct stat st;
    if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
        unlink(c->path);
    free(c);
}
