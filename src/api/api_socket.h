/* The API's unix socket file: made for its owner only, a stale one (its server
 * gone) replaced, a live one or a non-socket refused; removed at the end
 * only if it is still the one we made.
 * Threads: the thread that opens and closes the API. */
#ifndef NIMBUS_API_API_SOCKET_H
#define NIMBUS_API_API_SOCKET_H

#include <stddef.h>
#include <sys/types.h>

struct api_socket {
    int fd;             /* listening, non-blocking, close-on-exec */
    char path[108];     /* sockaddr_un.sun_path */
    dev_t dev;          /* the socket file we made, to remove only it */
    ino_t ino;
};

/* Binds and listens on `path`. `option` names the flag in messages
 * ("--api"). Returns 0 or -errno with a one-line message naming the path. */
int api_socket_listen(const char *path, const char *option, struct api_socket *s, char *err,
                      size_t errlen);

/* Removes the socket file if it is still ours (does not close s->fd). */
void api_socket_unlink(const struct api_socket *s);

#endif
