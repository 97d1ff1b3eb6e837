/* User-mode networking through libslirp. See net.h.
 *
 * libslirp is not thread-safe, so one thread at a time uses the Slirp
 * instance: the control thread while opening (slirp_new, the host
 * forwards) and after the backend's thread is joined (slirp_cleanup), the
 * backend's thread in between. Frames from the guest reach that thread
 * through a bounded queue and an eventfd; the device's worker waits for room
 * when the queue is full, so the guest's TCP is flow-controlled instead of
 * losing segments.
 *
 * The guest gets what the host user could do with sockets, no more: slirp
 * turns guest connections into the user's own socket calls (10.0.2.2 is the
 * host's loopback, 10.0.2.3 forwards to the host's resolver), and "emulation"
 * of legacy protocols (ftp, irc port rewriting) stays off.
 *
 * Snapshots (user_save/user_load, the control thread): the backend's
 * thread is parked (it waits on u->lock between two rounds, having touched
 * nothing of slirp's since its poll) while the control thread uses the
 * Slirp instance, so the one-thread-at-a-time rule holds.
 *
 * Lock order: u->lock only, never held across a slirp call or a call into
 * the device. */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libslirp.h>

#include "base/dynlib.h"
#include "base/errmsg.h"
#include "state/state.h"

#define TXQ_MAX_FRAMES 256u
#define TXQ_MAX_BYTES  (1u << 20)

struct txq_frame {
    struct txq_frame *next;
    size_t len;
    uint8_t data[];
};

struct user_timer {
    struct user_timer *next;
    SlirpTimerId id;
    void *cb_opaque;
    int64_t expire_ms;   /* -1: not armed */
};

/* libslirp, loaded by net_user_open (base/dynlib.h): with glib it would
 * add some 5 ms to the start of every nimbus process, most of which never
 * use --net user. */
struct slirp_lib {
    __typeof__(&slirp_new) new;
    __typeof__(&slirp_cleanup) cleanup;
    __typeof__(&slirp_input) input;
    __typeof__(&slirp_handle_timer) handle_timer;
    __typeof__(&slirp_pollfds_fill) pollfds_fill;
    __typeof__(&slirp_pollfds_poll) pollfds_poll;
    __typeof__(&slirp_add_hostfwd) add_hostfwd;
    __typeof__(&slirp_state_save) state_save;
    __typeof__(&slirp_state_load) state_load;
    __typeof__(&slirp_state_version) state_version;
    __typeof__(&slirp_version_string) version_string;
};

static int slirp_lib_load(struct slirp_lib *l, char *err, size_t errlen)
{
    static const struct dynlib_sym syms[] = {
        DYNLIB_SYM(struct slirp_lib, new, "slirp_new"),
        DYNLIB_SYM(struct slirp_lib, cleanup, "slirp_cleanup"),
        DYNLIB_SYM(struct slirp_lib, input, "slirp_input"),
        DYNLIB_SYM(struct slirp_lib, handle_timer, "slirp_handle_timer"),
        DYNLIB_SYM(struct slirp_lib, pollfds_fill, "slirp_pollfds_fill"),
        DYNLIB_SYM(struct slirp_lib, pollfds_poll, "slirp_pollfds_poll"),
        DYNLIB_SYM(struct slirp_lib, add_hostfwd, "slirp_add_hostfwd"),
        DYNLIB_SYM(struct slirp_lib, state_save, "slirp_state_save"),
        DYNLIB_SYM(struct slirp_lib, state_load, "slirp_state_load"),
        DYNLIB_SYM(struct slirp_lib, state_version, "slirp_state_version"),
        DYNLIB_SYM(struct slirp_lib, version_string, "slirp_version_string"),
    };
    return dynlib_load("libslirp.so.0", "libslirp0", syms, sizeof(syms) / sizeof(syms[0]), l,
                       err, errlen);
}

struct user_backend {
    struct net_backend base;
    struct slirp_lib lib;
    Slirp *slirp;
    struct net_rx_port port;
    int evfd;                        /* wakes the thread */
    pthread_t thread;
    bool started;

    pthread_mutex_t lock;            /* the queue and quit */
    pthread_cond_t room;
    struct txq_frame *head, **tail;
    unsigned txq_frames;
    size_t txq_bytes;
    bool quit;
    bool park, parked;               /* snapshots: the thread waits (park_cond) */
    pthread_cond_t park_cond;

    /* The thread's own (no lock). */
    struct user_timer *timers;
    struct pollfd *pfd;
    unsigned npfd, cap_pfd;
    bool rx_blocked;                 /* the device was full at the last fill */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(struct user_backend *u)
{
    uint64_t one = 1;
    ssize_t r = write(u->evfd, &one, sizeof(one));
    (void)r;   /* a full counter still wakes the thread */
}

/* ---- callbacks from slirp (the backend's thread, or the control thread
 * before start / after join) ---- */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct user_backend *u = opaque;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    /* A full device drops the frame, as a wire would; TCP resends. */
    if (u->port.receive)
        u->port.receive(u->port.opaque, &iov, 1);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)msg, (void)opaque;   /* the guest's mistakes are not the host's news */
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    return now_ns();
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct user_backend *u = opaque;
    struct user_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->id = id;
    t->cb_opaque = cb_opaque;
    t->expire_ms = -1;
    t->next = u->timers;
    u->timers = t;
    return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
    struct user_backend *u = opaque;
    for (struct user_timer **p = &u->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = (*p)->next;
            free(timer);
            return;
        }
    }
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    if (timer)
        ((struct user_timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
    (void)fd, (void)opaque;   /* slirp_pollfds_fill lists the fds each round */
}

static void cb_notify(void *opaque)
{
    wake(opaque);
}

static const SlirpCb user_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_register_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the backend's thread ---- */

static int add_poll(int fd, int events, void *opaque)
{
    struct user_backend *u = opaque;
    if (u->npfd == u->cap_pfd) {
        unsigned cap = u->cap_pfd ? 2 * u->cap_pfd : 64;
        struct pollfd *p = realloc(u->pfd, cap * sizeof(*p));
        if (!p)
            return -1;   /* slirp skips a socket without an index this round */
        u->pfd = p;
        u->cap_pfd = cap;
    }
    short ev = 0;
    /* While the device is full, read nothing: the host peers wait. */
    if ((events & SLIRP_POLL_IN) && !u->rx_blocked)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    u->pfd[u->npfd] = (struct pollfd){ .fd = fd, .events = ev };
    return (int)u->npfd++;
}

static int get_revents(int idx, void *opaque)
{
    struct user_backend *u = opaque;
    if (idx < 0 || (unsigned)idx >= u->npfd)
        return 0;
    short r = u->pfd[idx].revents;
    int ev = 0;
    if (r & POLLIN)
        ev |= SLIRP_POLL_IN;
    if (r & POLLOUT)
        ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI)
        ev |= SLIRP_POLL_PRI;
    if (r & (POLLERR | POLLNVAL))
        ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP)
        ev |= SLIRP_POLL_HUP;
    return ev;
}

/* Feeds the queued guest frames to slirp. Returns false on quit. */
static bool drain_tx(struct user_backend *u)
{
    pthread_mutex_lock(&u->lock);
    bool quit = u->quit;
    struct txq_frame *f = u->head;
    u->head = NULL;
    u->tail = &u->head;
    u->txq_frames = 0;
    u->txq_bytes = 0;
    pthread_cond_broadcast(&u->room);
    pthread_mutex_unlock(&u->lock);
    while (f) {
        struct txq_frame *next = f->next;
        if (!quit)
            u->lib.input(u->slirp, f->data, (int)f->len);
        free(f);
        f = next;
    }
    return !quit;
}

static void run_timers(struct user_backend *u)
{
    int64_t now = now_ns() / 1000000;
    /* A handler may re-arm or free timers: rescan after each one fires. */
    for (bool again = true; again;) {
        again = false;
        for (struct user_timer *t = u->timers; t; t = t->next) {
            if (t->expire_ms >= 0 && t->expire_ms <= now) {
                t->expire_ms = -1;
                u->lib.handle_timer(u->slirp, t->id, t->cb_opaque);
                again = true;
                break;
            }
        }
    }
}

/* Waits here while the control thread uses slirp (a snapshot). */
static void park_point(struct user_backend *u)
{
    pthread_mutex_lock(&u->lock);
    if (u->park && !u->quit) {
        u->parked = true;
        pthread_cond_broadcast(&u->park_cond);
        while (u->park && !u->quit)
            pthread_cond_wait(&u->park_cond, &u->lock);
        u->parked = false;
    }
    pthread_mutex_unlock(&u->lock);
}

static void *user_thread(void *arg)
{
    struct user_backend *u = arg;

    for (;;) {
        uint32_t timeout = UINT32_MAX;
        int64_t now = now_ns() / 1000000;
        for (struct user_timer *t = u->timers; t; t = t->next) {
            if (t->expire_ms < 0)
                continue;
            int64_t d = t->expire_ms > now ? t->expire_ms - now : 0;
            if ((uint64_t)d < timeout)
                timeout = (uint32_t)d;
        }
        u->rx_blocked = !u->port.can_receive(u->port.opaque);
        u->npfd = 0;
        add_poll(u->evfd, SLIRP_POLL_IN, u);
        u->pfd[0].events = POLLIN;   /* the wake-up fd, whatever the device's room */
        u->lib.pollfds_fill(u->slirp, &timeout, add_poll, u);
        int n = poll(u->pfd, u->npfd, timeout == UINT32_MAX ? -1 : (int)timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (u->pfd[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t r = read(u->evfd, &v, sizeof(v));
            (void)r;
        }
        park_point(u);
        if (!drain_tx(u))
            break;
        u->lib.pollfds_poll(u->slirp, n < 0, get_revents, u);
        run_timers(u);
    }
    /* Gone (asked to, or poll failed): senders must not wait for room, a
     * snapshot not for the thread to park. */
    pthread_mutex_lock(&u->lock);
    u->quit = true;
    pthread_cond_broadcast(&u->room);
    pthread_cond_broadcast(&u->park_cond);
    pthread_mutex_unlock(&u->lock);
    return NULL;
}

/* ---- ops ---- */

static int user_start(struct net_backend *b, const struct net_rx_port *port)
{
    struct user_backend *u = (struct user_backend *)b;
    if (u->started)
        return -EBUSY;
    u->port = *port;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);   /* signals go to the I/O thread */
    int e = pthread_create(&u->thread, NULL, user_thread, u);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e)
        return -e;
    pthread_setname_np(u->thread, "net-user");
    u->started = true;
    return 0;
}

static int user_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct user_backend *u = (struct user_backend *)b;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    if (len == 0 || len > NET_MAX_FRAME)
        return 0;
    struct txq_frame *f = malloc(sizeof(*f) + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->len = len;
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(f->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    pthread_mutex_lock(&u->lock);
    while (!u->quit && (u->txq_frames >= TXQ_MAX_FRAMES || u->txq_bytes + len > TXQ_MAX_BYTES))
        pthread_cond_wait(&u->room, &u->lock);
    if (u->quit) {
        pthread_mutex_unlock(&u->lock);
        free(f);
        return 0;
    }
    *u->tail = f;
    u->tail = &f->next;
    u->txq_frames++;
    u->txq_bytes += len;
    bool first = u->txq_frames == 1;
    pthread_mutex_unlock(&u->lock);
    if (first)
        wake(u);
    return 0;
}

static void user_rx_ready(struct net_backend *b)
{
    wake((struct user_backend *)b);
}

static int user_set_offload(struct net_backend *b, unsigned offloads)
{
    (void)b;
    return offloads ? -EOPNOTSUPP : 0;
}

static void user_close(struct net_backend *b)
{
    struct user_backend *u = (struct user_backend *)b;
    if (u->started) {
        pthread_mutex_lock(&u->lock);
        u->quit = true;
        pthread_cond_broadcast(&u->room);
        pthread_mutex_unlock(&u->lock);
        wake(u);
        pthread_join(u->thread, NULL);
    }
    for (struct txq_frame *f = u->head, *n; f; f = n) {
        n = f->next;
        free(f);
    }
    if (u->slirp)
        u->lib.cleanup(u->slirp);   /* frees its timers through cb_timer_free */
    while (u->timers) {
        struct user_timer *t = u->timers;
        u->timers = t->next;
        free(t);
    }
    free(u->pfd);
    if (u->evfd >= 0)
        close(u->evfd);
    pthread_cond_destroy(&u->park_cond);
    pthread_cond_destroy(&u->room);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* ---- snapshots ---- */

/* Keeps the backend's thread out of slirp until unpark(). Returns once it
 * waits (or is gone). */
static void park(struct user_backend *u)
{
    if (!u->started)
        return;
    pthread_mutex_lock(&u->lock);
    u->park = true;
    pthread_mutex_unlock(&u->lock);
    wake(u);
    pthread_mutex_lock(&u->lock);
    while (!u->parked && !u->quit)
        pthread_cond_wait(&u->park_cond, &u->lock);
    pthread_mutex_unlock(&u->lock);
}

static void unpark(struct user_backend *u)
{
    if (!u->started)
        return;
    pthread_mutex_lock(&u->lock);
    u->park = false;
    pthread_cond_broadcast(&u->park_cond);
    pthread_mutex_unlock(&u->lock);
}

struct blob {
    uint8_t *data;
    size_t len, cap, pos;
    bool oom;
};

static ssize_t blob_write(const void *buf, size_t len, void *opaque)
{
    struct blob *b = opaque;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->oom = true;
            return -1;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return (ssize_t)len;
}

static ssize_t blob_read(void *buf, size_t len, void *opaque)
{
    struct blob *b = opaque;
    if (len > b->len - b->pos)
        len = b->len - b->pos;   /* never past the end: slirp sees a short read */
    memcpy(buf, b->data + b->pos, len);
    b->pos += len;
    return (ssize_t)len;
}

/* libslirp's own state (slirp_state_save): with no guest forwards (we add
 * none) it is the IP id counter and the DHCP leases (client MAC -> address),
 * a fixed-size record. TCP/UDP connections to host sockets are not in it
 * (libslirp saves only guestfwd sockets): they cannot follow into another
 * process, and the guest's side of them times out or is reset. Parked. */
static int slirp_blob(struct user_backend *u, struct blob *b)
{
    memset(b, 0, sizeof(*b));
    u->lib.state_save(u->slirp, blob_write, b);
    if (b->oom) {
        free(b->data);
        b->data = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* Section "net-user"[instance] v1.0: u32 slirp_state_version(), u32 length,
 * libslirp's state bytes. */
static int user_save(struct net_backend *nb, struct state_writer *w, uint32_t instance)
{
    struct user_backend *u = (struct user_backend *)nb;
    struct blob b;
    park(u);
    int r = slirp_blob(u, &b);
    unpark(u);
    state_begin(w, NET_USER_STATE_TAG, instance, NET_USER_STATE_MAJOR, NET_USER_STATE_MINOR);
    state_put_u32(w, (uint32_t)u->lib.state_version());
    state_put_u32(w, (uint32_t)b.len);
    state_put_bytes(w, b.data, b.len);
    int e = state_end(w);
    free(b.data);
    return r ? r : e;
}

static int user_load(struct net_backend *nb, const struct state_reader *r, uint32_t instance,
                     char *err, size_t errlen)
{
    struct user_backend *u = (struct user_backend *)nb;
    struct state_section s;
    struct blob in = { 0 }, mine = { 0 };
    uint32_t version, len;
    int ret = state_reader_section(r, NET_USER_STATE_TAG, instance, NET_USER_STATE_MAJOR, &s, err,
                                   errlen);
    if (ret)
        return ret;
    state_get_u32(&s, &version);
    state_get_u32(&s, &len);
    if (len > s.len)
        return state_section_error(&s, err, errlen, -EBADMSG, "libslirp state of %u bytes in %u",
                                   len, s.len);
    in.data = malloc(len ? len : 1);
    if (!in.data)
        return state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
    in.len = len;
    state_get_bytes(&s, in.data, len);
    if ((ret = state_section_done(&s, err, errlen)))
        goto out;
    if (version != (uint32_t)u->lib.state_version()) {
        ret = state_section_error(&s, err, errlen, -ENOTSUP,
                                  "libslirp state version %u, this libslirp (%s) reads %d", version,
                                  u->lib.version_string(), u->lib.state_version());
        goto out;
    }
    park(u);
    /* Only the shape this libslirp writes without guest forwards: no socket
     * records (a leading 0), and as long as its own state. libslirp's loader
     * would otherwise attach half-read sockets to the live instance. */
    ret = slirp_blob(u, &mine);
    if (ret) {
        state_section_error(&s, err, errlen, ret, "out of memory");
    } else if (len != mine.len || len == 0 || in.data[0] != 0) {
        ret = state_section_error(&s, err, errlen, -EINVAL,
                                  "libslirp state of %u bytes (first byte %u), expected %zu starting with 0",
                                  len, len ? in.data[0] : 0u, mine.len);
    } else if ((ret = u->lib.state_load(u->slirp, (int)version, blob_read, &in)) < 0) {
        /* Cannot happen for the fixed-size record checked above. */
        state_section_error(&s, err, errlen, -EINVAL, "libslirp refused its state (%d)", ret);
        ret = -EINVAL;
    } else {
        ret = 0;
    }
    unpark(u);
out:
    free(in.data);
    free(mine.data);
    return ret;
}

static const struct net_backend_ops user_ops = {
    .name = "user",
    .start = user_start,
    .send = user_send,
    .rx_ready = user_rx_ready,
    .set_offload = user_set_offload,
    .close = user_close,
    .state_tag = NET_USER_STATE_TAG,
    .save = user_save,
    .load = user_load,
};

/* ---- options and opening ---- */

static int parse_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *out = (uint16_t)v;
    return 0;
}

static int parse_addr(const char *s, size_t n, const char *dflt, uint32_t *out)
{
    char buf[INET_ADDRSTRLEN];
    if (n == 0) {
        s = dflt;
        n = strlen(dflt);
    }
    if (n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, n);
    buf[n] = 0;
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -EINVAL;
    *out = a.s_addr;
    return 0;
}

int net_parse_hostfwd(const char *s, struct net_hostfwd *out, char *err, size_t errlen)
{
    struct net_hostfwd f = { 0 };
    const char *p = s;
    const char *c1 = strchr(p, ':');
    if (!c1)
        goto bad;
    if (c1 == p || (c1 - p == 3 && !strncmp(p, "tcp", 3)))
        f.udp = false;
    else if (c1 - p == 3 && !strncmp(p, "udp", 3))
        f.udp = true;
    else
        goto bad;
    p = c1 + 1;
    const char *dash = strchr(p, '-');
    if (!dash)
        goto bad;
    const char *c2 = memchr(p, ':', (size_t)(dash - p));
    if (!c2 || parse_addr(p, (size_t)(c2 - p), "127.0.0.1", &f.host_addr) ||
        parse_port(c2 + 1, (size_t)(dash - c2 - 1), &f.host_port))
        goto bad;
    p = dash + 1;
    const char *c3 = strchr(p, ':');
    if (!c3 || parse_addr(p, (size_t)(c3 - p), "10.0.2.15", &f.guest_addr) ||
        parse_port(c3 + 1, strlen(c3 + 1), &f.guest_port))
        goto bad;
    *out = f;
    return 0;
bad:
    return errmsg(err, errlen, -EINVAL,
                  "bad hostfwd '%s' (want [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT)", s);
}

/* Why binding `f` on the host fails (slirp only says that it did). */
static int bind_errno(const struct net_hostfwd *f)
{
    int fd = socket(AF_INET, (f->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(f->host_port),
                             .sin_addr.s_addr = f->host_addr };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int e = bind(fd, (struct sockaddr *)&a, sizeof(a)) ? errno : 0;
    close(fd);
    return e ? e : EADDRINUSE;
}

int net_user_open(const struct net_user_options *opts, struct net_backend **out, char *err,
                  size_t errlen)
{
    int r;
    struct user_backend *u = calloc(1, sizeof(*u));
    if (!u)
        return errmsg(err, errlen, -ENOMEM, "--net user: out of memory");
    u->base.ops = &user_ops;
    u->base.vnet_hdr = false;
    u->tail = &u->head;
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->room, NULL);
    pthread_cond_init(&u->park_cond, NULL);
    u->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    u->cap_pfd = 64;   /* the thread's first slot, the eventfd, always exists */
    u->pfd = calloc(u->cap_pfd, sizeof(*u->pfd));
    if (!u->pfd) {
        r = errmsg(err, errlen, -ENOMEM, "--net user: out of memory");
        goto fail;
    }
    if (u->evfd < 0) {
        r = errmsg(err, errlen, -errno, "--net user: eventfd: %s", strerror(errno));
        goto fail;
    }

    /* QEMU's defaults (docs/system/devices/net.rst: "user" networking). */
    SlirpConfig cfg = { .version = 4 };
    cfg.restricted = 0;
    cfg.in_enabled = true;
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.in6_enabled = true;
    inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
    cfg.vprefix_len = 64;
    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
    cfg.disable_host_loopback = false;   /* 10.0.2.2 is the host's 127.0.0.1 */
    cfg.enable_emu = false;
    char why[256];
    if ((r = slirp_lib_load(&u->lib, why, sizeof(why)))) {
        errmsg(err, errlen, r, "--net user: %s", why);
        goto fail;
    }
    u->slirp = u->lib.new(&cfg, &user_callbacks, u);
    if (!u->slirp) {
        r = errmsg(err, errlen, -ENOMEM, "--net user: cannot start libslirp");
        goto fail;
    }
    for (unsigned i = 0; i < opts->nfwd; i++) {
        const struct net_hostfwd *f = &opts->fwd[i];
        struct in_addr h = { .s_addr = f->host_addr }, g = { .s_addr = f->guest_addr };
        if (u->lib.add_hostfwd(u->slirp, f->udp, h, f->host_port, g, f->guest_port) < 0) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &h, a, sizeof(a));
            int e = bind_errno(f);
            r = errmsg(err, errlen, -e, "--net user: cannot forward host port %s:%s:%u: %s",
                       f->udp ? "udp" : "tcp", a, f->host_port, strerror(e));
            goto fail;
        }
    }
    *out = &u->base;
    return 0;
fail:
    user_close(&u->base);
    return r;
}
