/* The API's unix socket file. See api_socket.h. */
#include "api/api_socket.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/errmsg.h"

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

int api_socket_listen(const char *path, const char *option, struct api_socket *s, char *err,
                      size_t errlen)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct stat st;
    int r;

    _Static_assert(sizeof(s->path) == sizeof(addr.sun_path), "path as sun_path");
    if (!path || !*path || strlen(path) >= sizeof(addr.sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "%s path '%.64s' is empty or longer than %zu "
                      "bytes", option, path ? path : "", sizeof(addr.sun_path) - 1);
    memcpy(addr.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return errmsg(err, errlen, -EEXIST, "%s %s exists and is not a socket", option, path);
        if (socket_alive(&addr))
            return errmsg(err, errlen, -EADDRINUSE, "%s %s is in use by another process", option,
                          path);
        unlink(path);   /* left behind by a VM that is gone */
    }
    *s = (struct api_socket){ .fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) };
    if (s->fd < 0)
        return errmsg(err, errlen, -errno, "%s %s: socket: %s", option, path, strerror(errno));
    memcpy(s->path, path, strlen(path) + 1);
    /* Only the owner may connect: the socket controls the VM. */
    mode_t old = umask(0077);
    r = bind(s->fd, (struct sockaddr *)&addr, sizeof(addr));
    int e = errno;
    umask(old);
    if (r) {
        r = errmsg(err, errlen, -e, "%s %s: cannot bind: %s", option, path, strerror(e));
        goto fail;
    }
    if (listen(s->fd, 16) || stat(path, &st)) {
        r = errmsg(err, errlen, -errno, "%s %s: %s", option, path, strerror(errno));
        unlink(path);
        goto fail;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    return 0;
fail:
    close(s->fd);
    s->fd = -1;
    return r;
}

void api_socket_unlink(const struct api_socket *s)
{
    struct stat st;
    if (s->path[0] && lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
        unlink(s->path);
}
