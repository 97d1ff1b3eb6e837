/* nimbus-agent-client: a test tool over src/vm/agent_client.c (until
 * `nimbus exec` exists) and a tiny unix socket server for guest-initiated
 * vsock connections.
 *
 *   nimbus-agent-client exec SOCK PORT ARG...
 *       runs ARG... in the guest through the agent on vsock PORT (SOCK is the
 *       --vsock path); our stdin is its stdin, its stdout/stderr ours; exits
 *       with its exit status (1 with a message when that fails)
 *   nimbus-agent-client serve PATH
 *       listens on the unix socket PATH, takes one connection, reads it to
 *       the end, answers "host got N bytes: <the bytes>" and exits; prints
 *       what it got on stdout */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vm/agent_client.h"

static int serve(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return 1;
    strcpy(sa.sun_path, path);
    unlink(path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1)) {
        fprintf(stderr, "serve: %s: %s\n", path, strerror(errno));
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        return 1;
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    printf("got %zu bytes: %s\n", len, buf);
    char reply[4200];
    int n = snprintf(reply, sizeof(reply), "host got %zu bytes: %s", len, buf);
    if (write(c, reply, (size_t)n) != n)
        return 1;
    close(c);
    close(l);
    unlink(path);
    return 0;
}

int main(int argc, char **argv)
{
    char err[256];
    if (argc == 3 && !strcmp(argv[1], "serve"))
        return serve(argv[2]);
    if (argc >= 5 && !strcmp(argv[1], "exec")) {
        char *end;
        unsigned long port = strtoul(argv[3], &end, 10);
        if (*end || end == argv[3] || port > 0xffffffffUL) {
            fprintf(stderr, "nimbus-agent-client: bad port %s\n", argv[3]);
            return 2;
        }
        int fd, status = 0;
        if (agent_vsock_connect(argv[2], (uint32_t)port, NULL, 0, 0, &fd, err, sizeof(err)) ||
            agent_exec(fd, argc - 4, argv + 4, 0, 1, 2, &status, err, sizeof(err))) {
            fprintf(stderr, "nimbus-agent-client: %s\n", err);
            return 1;
        }
        close(fd);
        return status > 255 ? 255 : status;
    }
    fprintf(stderr, "usage: nimbus-agent-client exec SOCK PORT ARG... | serve PATH\n");
    return 2;
}
