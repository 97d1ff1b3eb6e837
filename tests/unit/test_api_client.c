/* Unit test of the API client's limits (src/cli/api_client: api_call_timeout),
 * which nimbusd uses for its requests to the VM processes: a VM process
 * that is stopped (SIGSTOP) or hung still has its socket's connections
 * accepted by the kernel (the listen backlog) but never answers.
 *  - against a socket that listens and never answers, api_call_timeout
 *    gives -ETIMEDOUT after about its limit, with a message that says so;
 *  - a request that is answered within the limit succeeds;
 *  - no server at the path: -ECONNREFUSED at once, limit or not. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/api_client.h"

#include "check.h"

static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    CHECK(fd >= 0);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(fd, 8) == 0);
    return fd;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Answers one request with a small JSON reply. */
static void *answer_one(void *arg)
{
    int lfd = *(int *)arg;
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Content-Length: 19\r\nConnection: close\r\n\r\n"
                                "{\"state\": \"paused\"}";
    if (write(c, reply, sizeof(reply) - 1) < 0) {
        /* the client's failure shows */
    }
    close(c);
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/nimbus-test-api-client.XXXXXX", path[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/api.sock", dir);
    long status = 0;
    json_t *reply = NULL;

    /* Listening, never answering. */
    int lfd = listen_at(path);
    double t0 = now_s();
    int r = api_call_timeout(path, "GET", "/vm", NULL, 300, &status, &reply, err, sizeof(err));
    double took = now_s() - t0;
    CHECK_MSG(r == -ETIMEDOUT, "no answer: %d (%s)", r, err);
    CHECK_MSG(took >= 0.25 && took < 10, "no answer: gave up after %.3f s", took);
    CHECK_MSG(strstr(err, "no reply within 300 ms") != NULL, "message: %s", err);
    CHECK(reply == NULL);

    /* Answered within the limit (a new socket: the backlog holds the
     * connection given up on). */
    close(lfd);
    unlink(path);
    lfd = listen_at(path);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, answer_one, &lfd) == 0);
    r = api_call_timeout(path, "GET", "/vm", NULL, 10000, &status, &reply, err, sizeof(err));
    CHECK_MSG(r == 0, "answered: %d (%s)", r, err);
    CHECK(status == 200);
    CHECK(reply && !strcmp(json_string_value(json_object_get(reply, "state")) ?: "", "paused"));
    json_decref(reply);
    reply = NULL;
    pthread_join(th, NULL);
    close(lfd);
    unlink(path);

    /* Nobody there. */
    r = api_call_timeout(path, "GET", "/vm", NULL, 300, &status, &reply, err, sizeof(err));
    CHECK_MSG(r == -ECONNREFUSED, "no server: %d (%s)", r, err);
    r = api_call(path, "GET", "/vm", NULL, &status, &reply, err, sizeof(err));
    CHECK_MSG(r == -ECONNREFUSED, "no server, no limit: %d (%s)", r, err);
    rmdir(dir);
    return check_summary("test_api_client");
}
