/* Graceful shutdown through the guest agent. See api_shutdown.h. */
#include "api/api_shutdown.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "vm/agent_client.h"

struct api_shutdown {
    int event_fd;
    pthread_t thread;
    bool thread_live;            /* I/O thread only */
    int64_t deadline_ns;         /* I/O thread only; INT64_MAX: none */
    int fd;                      /* the stream to the agent, the worker's */
    uint32_t port;
    /* Written by the worker before it writes event_fd; read after. */
    int result;
    char msg[256];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *worker(void *arg)
{
    struct api_shutdown *s = arg;
    char *argv[] = { "poweroff", NULL };
    s->msg[0] = '\0';
    s->result = agent_vsock_handshake(s->fd, s->port, NULL, 0, API_AGENT_CONNECT_MS, s->msg,
                                      sizeof(s->msg));
    if (s->result == 0)
        s->result = agent_start(s->fd, 1, argv, s->msg, sizeof(s->msg));
    close(s->fd);   /* the agent lets poweroff finish */
    s->fd = -1;
    uint64_t one = 1;
    ssize_t w = write(s->event_fd, &one, sizeof(one));   /* a release: the result is there */
    (void)w;
    return NULL;
}

int api_shutdown_create(struct api_shutdown **out, char *err, size_t errlen)
{
    struct api_shutdown *s = calloc(1, sizeof(*s));
    if (!s)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    s->deadline_ns = INT64_MAX;
    s->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->event_fd < 0) {
        int r = errmsg(err, errlen, -errno, "eventfd: %s", strerror(errno));
        free(s);
        return r;
    }
    *out = s;
    return 0;
}

static void join(struct api_shutdown *s)
{
    if (s->thread_live) {
        pthread_join(s->thread, NULL);
        s->thread_live = false;
    }
}

void api_shutdown_free(struct api_shutdown *s)
{
    if (!s)
        return;
    join(s);
    close(s->event_fd);
    free(s);
}

int api_shutdown_start(struct api_shutdown *s, int fd, uint32_t port, unsigned timeout_s,
                       char *err, size_t errlen)
{
    if (api_shutdown_pending(s) || s->thread_live) {
        close(fd);
        return errmsg(err, errlen, -EBUSY, "a shutdown is under way already");
    }
    s->fd = fd;
    s->port = port;
    int e = pthread_create(&s->thread, NULL, worker, s);
    if (e) {
        close(fd);
        s->fd = -1;
        return errmsg(err, errlen, -e, "cannot start the shutdown thread: %s", strerror(e));
    }
    s->thread_live = true;
    s->deadline_ns = now_ns() + (int64_t)timeout_s * 1000000000;
    return 0;
}

bool api_shutdown_pending(const struct api_shutdown *s)
{
    return s->deadline_ns != INT64_MAX;
}

int api_shutdown_fd(const struct api_shutdown *s)
{
    return s->event_fd;
}

int64_t api_shutdown_deadline(const struct api_shutdown *s)
{
    return s->deadline_ns;
}

bool api_shutdown_agent_done(struct api_shutdown *s, int *result, char *msg, size_t msglen)
{
    uint64_t v;
    if (read(s->event_fd, &v, sizeof(v)) != sizeof(v))
        return false;
    join(s);
    *result = s->result;
    snprintf(msg, msglen, "%s", s->msg);
    return true;
}

bool api_shutdown_expired(struct api_shutdown *s, int64_t now)
{
    if (s->deadline_ns == INT64_MAX || now < s->deadline_ns)
        return false;
    s->deadline_ns = INT64_MAX;
    return true;
}
