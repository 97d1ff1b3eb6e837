/* virtio-vsock. See vsock.h.
 *
 * Queues (§5.10.2): 0 rx (device to driver), 1 tx (driver to device),
 * 2 event. One transport worker serves all three.
 *
 * Lock: `lock` guards the connection table, the RST ring and every
 * connection's state and buffers. The worker holds it while it pops and
 * fills, and may call virtio_dev_pop/push under it (device lock ->
 * transport lock). The epoll thread never calls into the transport while it
 * holds it: it records which queues need a kick and kicks after unlocking.
 * ops->reset (under the transport lock, workers idle) takes it last; nobody
 * who holds it waits for the transport lock there.
 *
 * Connection states:
 *   PENDING      a host client that has not sent its CONNECT line yet
 *   CONNECTING   host-initiated, REQUEST sent (or queued), no RESPONSE yet
 *   ESTABLISHED  data flows
 *   CLOSING      socket closed, an RST for the guest still queued; the slot
 *                is freed once the RST is sent
 * Sequence counters are uint32_t and wrap, as the spec's (§5.10.6.3). */
#include "virtio/vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "state/state.h"

#define Q_RX    0u
#define Q_TX    1u
#define Q_EVENT 2u

#define HDR_LEN ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define LINE_MAX_LEN 32u              /* "CONNECT 4294967295\n" fits */

_Static_assert(sizeof(struct virtio_vsock_hdr) == 44, "virtio_vsock_hdr layout");

enum conn_state { C_FREE = 0, C_PENDING, C_CONNECTING, C_ESTABLISHED, C_CLOSING };

/* Control packets a connection owes the guest. */
#define P_REQUEST  1u
#define P_RESPONSE 2u
#define P_RST      4u
#define P_CREDIT   8u
#define P_SHUTDOWN 16u

struct ring {
    uint8_t *buf;                  /* VIRTIO_VSOCK_BUF_ALLOC bytes */
    size_t head, len;
};

struct conn {
    enum conn_state state;
    int fd;                        /* -1 once closed */
    uint32_t guest_port, host_port;
    unsigned pend;                 /* P_* */
    /* PENDING: the CONNECT line so far. */
    char line[LINE_MAX_LEN];
    size_t line_len;
    /* ESTABLISHED: "OK HOSTPORT\n" still to write to the host client. */
    char ok[24];
    size_t ok_len;
    /* guest -> host */
    struct ring g2h;
    uint32_t fwd_cnt;              /* bytes written to the host socket */
    uint32_t fwd_cnt_told;         /* fwd_cnt in the last packet sent */
    bool guest_shut_send;          /* the guest sends no more */
    bool guest_shut_rcv;           /* the guest reads no more */
    bool host_wr_shut;             /* shutdown(SHUT_WR) done */
    /* host -> guest */
    struct ring h2g;
    uint32_t tx_cnt;               /* bytes given to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt;
    bool host_eof;                 /* the host client sends no more */
    bool shutdown_sent;
    bool service;                  /* the worker changed something: the
                                      epoll thread should read/write again */
    uint32_t gen;                  /* bumped each time the slot is taken */
};

struct rst_entry {
    uint32_t guest_port, host_port;
};

struct virtio_vsock {
    uint64_t cid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t sock_dev;
    ino_t sock_ino;
    int listen_fd, epoll_fd, wake_fd;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t lock;
    bool quit;
    struct virtio_dev *vdev;       /* set once created */
    struct conn conns[VIRTIO_VSOCK_MAX_CONNS];
    unsigned rr;                   /* round-robin start for the rx queue */
    uint32_t next_host_port;
    struct rst_entry rst[VIRTIO_VSOCK_RST_RING];
    unsigned rst_head, rst_len;
    bool tx_stalled;               /* tx waits for room in the RST ring */
    bool event_pending;            /* TRANSPORT_RESET owed to the driver */
    /* After a load, until the driver reads guest_cid again (Linux does on
     * the TRANSPORT_RESET event): it may still send from its old CID, so a
     * host-initiated REQUEST waits, or the answer would come from the old
     * CID and be dropped (a clone's first connection would hang). Atomic:
     * the config read runs under the transport's lock, not ours. */
    _Atomic bool cid_unread;
    _Atomic bool kick_rx_owed;     /* cid_unread ended: held requests may go */
    uint64_t config_cid;           /* config space: guest_cid (§5.10.4) */
    struct vq_elem elem;           /* the worker's (there is one worker) */
};

/* epoll data: a connection's slot index and generation (so an event that
 * was waiting for a connection already gone never reaches the next one in
 * its slot), or one of these tags. */
#define TAG_LISTEN UINT64_MAX
#define TAG_WAKE   (UINT64_MAX - 1)

/* ---- small helpers ---- */

static bool ring_init(struct ring *r)
{
    r->buf = malloc(VIRTIO_VSOCK_BUF_ALLOC);
    r->head = r->len = 0;
    return r->buf != NULL;
}

static void ring_free(struct ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->head = r->len = 0;
}

/* Contiguous free space at the tail. */
static size_t ring_tail_room(const struct ring *r, uint8_t **at)
{
    size_t tail = (r->head + r->len) % VIRTIO_VSOCK_BUF_ALLOC;
    size_t room = VIRTIO_VSOCK_BUF_ALLOC - r->len;
    size_t contig = VIRTIO_VSOCK_BUF_ALLOC - tail;
    *at = r->buf + tail;
    return contig < room ? contig : room;
}

/* Contiguous bytes at the head. */
static size_t ring_head_data(const struct ring *r, uint8_t **at)
{
    size_t contig = VIRTIO_VSOCK_BUF_ALLOC - r->head;
    *at = r->buf + r->head;
    return contig < r->len ? contig : r->len;
}

static void ring_consume(struct ring *r, size_t n)
{
    r->head = (r->head + n) % VIRTIO_VSOCK_BUF_ALLOC;
    r->len -= n;
    if (r->len == 0)
        r->head = 0;
}

/* The bytes the guest can still take on this connection (its credit). */
static uint32_t peer_credit(const struct conn *c)
{
    uint32_t in_flight = c->tx_cnt + (uint32_t)c->h2g.len - c->peer_fwd_cnt;
    return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static unsigned conn_count(const struct virtio_vsock *v, enum conn_state only, bool any)
{
    unsigned n = 0;
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
        if (v->conns[i].state != C_FREE && (any || v->conns[i].state == only))
            n++;
    return n;
}

static struct conn *conn_alloc(struct virtio_vsock *v)
{
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conns[i];
        if (c->state == C_FREE) {
            uint32_t gen = c->gen + 1;
            memset(c, 0, sizeof(*c));
            c->fd = -1;
            c->gen = gen;
            return c;
        }
    }
    return NULL;
}

static struct conn *conn_find(struct virtio_vsock *v, uint32_t guest_port, uint32_t host_port)
{
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conns[i];
        if (c->state >= C_CONNECTING && c->guest_port == guest_port &&
            c->host_port == host_port)
            return c;
    }
    return NULL;
}

/* Edge-triggered: the epoll thread reads and writes until the socket would
 * block or flow control stops it; what flow control stopped is taken up again
 * when the worker marks the connection for service. */
static int conn_watch(struct virtio_vsock *v, struct conn *c)
{
    uint64_t tag = (uint64_t)c->gen << 32 | (uint64_t)(c - v->conns);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = tag };
    return epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) ? -errno : 0;
}

static void conn_close_fd(struct virtio_vsock *v, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(v->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    ring_free(&c->g2h);
    ring_free(&c->h2g);
}

/* Ends a connection: closes the host side; with `rst` the guest is told
 * (the slot lives on until the RST is sent), else the slot is free now. */
static void conn_end(struct virtio_vsock *v, struct conn *c, bool rst)
{
    conn_close_fd(v, c);
    if (rst && c->state >= C_CONNECTING) {
        c->state = C_CLOSING;
        c->pend = P_RST;
    } else {
        c->state = C_FREE;
        c->pend = 0;
    }
}

static bool rst_push(struct virtio_vsock *v, uint32_t guest_port, uint32_t host_port)
{
    if (v->rst_len == VIRTIO_VSOCK_RST_RING)
        return false;
    v->rst[(v->rst_head + v->rst_len) % VIRTIO_VSOCK_RST_RING] =
        (struct rst_entry){ guest_port, host_port };
    v->rst_len++;
    return true;
}

static void wake_thread(struct virtio_vsock *v)
{
    uint64_t one = 1;
    ssize_t r = write(v->wake_fd, &one, sizeof(one));
    (void)r;
}

/* ---- the host side: the epoll thread ---- */

/* After the guest's data is all written: the half-close or close it asked for. */
static void conn_after_drain(struct virtio_vsock *v, struct conn *c)
{
    if (c->state != C_ESTABLISHED || c->g2h.len || c->ok_len)
        return;
    if (c->guest_shut_send && c->guest_shut_rcv) {
        /* §5.10.6.5: both directions shut: the connection ends with RST. */
        conn_end(v, c, true);
        return;
    }
    if (c->guest_shut_send && !c->host_wr_shut) {
        shutdown(c->fd, SHUT_WR);
        c->host_wr_shut = true;
    }
}

/* Parses "CONNECT PORT" (the newline already cut). */
static bool parse_connect(const char *line, uint32_t *port)
{
    if (strncmp(line, "CONNECT ", 8))
        return false;
    const char *p = line + 8;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > 0xffffffffull)
            return false;
    }
    if (*p == '\r')
        p++;
    if (*p)
        return false;
    *port = (uint32_t)v;
    return true;
}

static uint32_t alloc_host_port(struct virtio_vsock *v, uint32_t guest_port)
{
    for (;;) {
        uint32_t p = v->next_host_port++;
        if (v->next_host_port < VIRTIO_VSOCK_HOST_PORT0)
            v->next_host_port = VIRTIO_VSOCK_HOST_PORT0;
        if (!conn_find(v, guest_port, p))
            return p;
    }
}

/* A pending client sent bytes: collect the CONNECT line. Returns true when
 * the guest has a REQUEST to receive. */
static bool pending_read(struct virtio_vsock *v, struct conn *c)
{
    for (;;) {
        char ch;
        ssize_t n = recv(c->fd, &ch, 1, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n <= 0) {
            conn_end(v, c, false);
            return false;
        }
        if (ch != '\n') {
            if (c->line_len + 1 >= sizeof(c->line)) {
                conn_end(v, c, false);   /* no such line is that long */
                return false;
            }
            c->line[c->line_len++] = ch;
            continue;
        }
        c->line[c->line_len] = '\0';
        uint32_t port;
        if (!parse_connect(c->line, &port) || !ring_init(&c->g2h) || !ring_init(&c->h2g)) {
            conn_end(v, c, false);
            return false;
        }
        c->guest_port = port;
        c->host_port = alloc_host_port(v, port);
        c->state = C_CONNECTING;
        c->pend = P_REQUEST;
        return true;
    }
}

static void accept_clients(struct virtio_vsock *v)
{
    for (;;) {
        int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;   /* EAGAIN, or a transient error: try on the next event */
        struct conn *c = NULL;
        if (conn_count(v, C_PENDING, false) < VIRTIO_VSOCK_MAX_PENDING)
            c = conn_alloc(v);
        if (!c) {
            close(fd);   /* too many: the client sees its connection closed */
            continue;
        }
        c->state = C_PENDING;
        c->fd = fd;
        if (conn_watch(v, c)) {
            close(fd);
            c->fd = -1;
            c->state = C_FREE;
        }
    }
}

/* The host client's data for the guest, as much as room and credit allow.
 * Returns true if the rx queue has something new. */
static bool established_read(struct virtio_vsock *v, struct conn *c)
{
    bool news = false;
    while (c->state == C_ESTABLISHED && !c->host_eof && !c->guest_shut_rcv) {
        uint8_t *at;
        size_t room = ring_tail_room(&c->h2g, &at);
        uint32_t credit = peer_credit(c);
        if (room > credit)
            room = credit;
        if (room == 0)
            break;   /* taken up again when the guest reads or gives credit */
        ssize_t n = recv(c->fd, at, room, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            conn_end(v, c, true);
            return true;
        }
        news = true;
        if (n == 0) {
            c->host_eof = true;   /* a SHUTDOWN once the buffered bytes are out */
            break;
        }
        c->h2g.len += (size_t)n;
    }
    return news;
}

/* Writes what the guest sent to the host client. Returns true if the guest
 * should be told something (credit, RST). */
static bool established_write(struct virtio_vsock *v, struct conn *c)
{
    while (c->ok_len) {
        ssize_t n = send(c->fd, c->ok, c->ok_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        if (n < 0) {
            conn_end(v, c, true);
            return true;
        }
        memmove(c->ok, c->ok + n, c->ok_len - (size_t)n);
        c->ok_len -= (size_t)n;
    }
    bool tell = false;
    while (c->g2h.len) {
        uint8_t *at;
        size_t len = ring_head_data(&c->g2h, &at);
        ssize_t n = send(c->fd, at, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            conn_end(v, c, true);
            return true;
        }
        ring_consume(&c->g2h, (size_t)n);
        c->fwd_cnt += (uint32_t)n;
    }
    /* Tell the guest about freed space before it can run out of credit. */
    if (c->fwd_cnt - c->fwd_cnt_told >= VIRTIO_VSOCK_BUF_ALLOC / 4) {
        c->pend |= P_CREDIT;
        tell = true;
    }
    enum conn_state before = c->state;
    conn_after_drain(v, c);
    return tell || c->state != before;
}

/* Moves what can move on one connection; `e` are its epoll events (0 when
 * the worker asked). Returns true if the rx queue has something new. */
static bool conn_service(struct virtio_vsock *v, struct conn *c, uint32_t e)
{
    switch (c->state) {
    case C_PENDING:
        return pending_read(v, c);
    case C_CONNECTING:
        if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            conn_end(v, c, true);   /* the client gave up before the guest answered */
            return true;
        }
        return false;
    case C_ESTABLISHED: {
        bool news = established_write(v, c);
        if (c->state == C_ESTABLISHED)
            news |= established_read(v, c);
        return news;
    }
    default:
        return false;
    }
}

static void *vsock_thread(void *arg)
{
    struct virtio_vsock *v = arg;
    struct epoll_event evs[16];

    for (;;) {
        int n = epoll_wait(v->epoll_fd, evs, 16, -1);
        if (n < 0 && errno != EINTR)
            break;
        bool kick_rx = false;
        pthread_mutex_lock(&v->lock);
        if (v->quit) {
            pthread_mutex_unlock(&v->lock);
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            uint32_t e = evs[i].events;
            if (tag == TAG_WAKE) {
                uint64_t x;
                ssize_t r = read(v->wake_fd, &x, sizeof(x));
                (void)r;
                continue;
            }
            if (tag == TAG_LISTEN) {
                accept_clients(v);
                continue;
            }
            uint32_t idx = (uint32_t)tag;
            if (idx >= VIRTIO_VSOCK_MAX_CONNS)
                continue;
            struct conn *c = &v->conns[idx];
            if (c->fd >= 0 && c->gen == (uint32_t)(tag >> 32))
                kick_rx |= conn_service(v, c, e);
        }
        if (atomic_exchange(&v->kick_rx_owed, false))
            kick_rx = true;
        /* Connections the worker changed: flow control may let more through. */
        for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
            struct conn *c = &v->conns[i];
            if (c->service) {
                c->service = false;
                if (c->fd >= 0)
                    kick_rx |= conn_service(v, c, 0);
            }
        }
        struct virtio_dev *vdev = v->vdev;
        pthread_mutex_unlock(&v->lock);
        if (kick_rx && vdev)
            virtio_dev_kick(vdev, Q_RX);
    }
    return NULL;
}

int virtio_vsock_connect_local(struct virtio_dev *vdev, int *fd_out, char *err, size_t errlen)
{
    struct virtio_vsock *v = virtio_dev_priv(vdev);
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
        return errmsg(err, errlen, -errno, "vsock: socketpair: %s", strerror(errno));
    int fl = fcntl(sp[1], F_GETFL);
    if (fl < 0 || fcntl(sp[1], F_SETFL, fl | O_NONBLOCK)) {
        int r = -errno;
        close(sp[0]);
        close(sp[1]);
        return errmsg(err, errlen, r, "vsock: %s", strerror(-r));
    }
    /* The device's end is a host client like an accepted one (accept_clients). */
    pthread_mutex_lock(&v->lock);
    struct conn *c = NULL;
    if (conn_count(v, C_PENDING, false) < VIRTIO_VSOCK_MAX_PENDING)
        c = conn_alloc(v);
    int r = c ? 0 : -EAGAIN;
    if (c) {
        c->state = C_PENDING;
        c->fd = sp[1];
        r = conn_watch(v, c);
        if (r) {
            c->fd = -1;
            c->state = C_FREE;
        }
    }
    pthread_mutex_unlock(&v->lock);
    if (r) {
        close(sp[0]);
        close(sp[1]);
        return errmsg(err, errlen, r, r == -EAGAIN ? "vsock: too many connections" : "vsock: %s",
                      strerror(-r));
    }
    *fd_out = sp[0];
    return 0;
}

/* ---- the guest side: the worker ---- */

static void fill_hdr(const struct virtio_vsock *v, struct virtio_vsock_hdr *h, uint32_t guest_port,
                     uint32_t host_port, uint16_t op)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = VIRTIO_VSOCK_HOST_CID;
    h->dst_cid = v->cid;
    h->src_port = host_port;
    h->dst_port = guest_port;
    h->type = VIRTIO_VSOCK_TYPE_STREAM;
    h->op = op;
    h->buf_alloc = VIRTIO_VSOCK_BUF_ALLOC;
}

/* Picks the next packet for the guest and writes it into `e` (whose
 * writable part holds at least a header). Returns the bytes written, or 0
 * when there is nothing to send. With `peek` (e NULL), only says whether
 * there is something (returns 1) and sends nothing. Lock held. */
static uint32_t next_packet(struct virtio_vsock *v, const struct vq_elem *e, bool peek)
{
    struct virtio_vsock_hdr h;
    const struct iovec *in = e ? e->iov + e->out_num : NULL;
    unsigned in_num = e ? e->in_num : 0;

    if (v->rst_len) {
        if (peek)
            return 1;
        struct rst_entry r = v->rst[v->rst_head];
        v->rst_head = (v->rst_head + 1) % VIRTIO_VSOCK_RST_RING;
        v->rst_len--;
        fill_hdr(v, &h, r.guest_port, r.host_port, VIRTIO_VSOCK_OP_RST);
        h.buf_alloc = 0;
        vq_iov_write(in, in_num, 0, &h, sizeof(h));
        return HDR_LEN;
    }
    for (unsigned k = 0; k < VIRTIO_VSOCK_MAX_CONNS; k++) {
        unsigned idx = (v->rr + k) % VIRTIO_VSOCK_MAX_CONNS;
        struct conn *c = &v->conns[idx];
        if (c->state < C_CONNECTING)
            continue;
        if (c->pend == P_REQUEST && atomic_load(&v->cid_unread))
            continue;
        /* End of the host's stream once its bytes are all out. */
        if (c->state == C_ESTABLISHED && c->host_eof && !c->h2g.len && !c->shutdown_sent)
            c->pend |= P_SHUTDOWN;
        bool data = c->state == C_ESTABLISHED && c->h2g.len && !c->guest_shut_rcv;
        if (!c->pend && !data)
            continue;
        if (peek)
            return 1;
        v->rr = (idx + 1) % VIRTIO_VSOCK_MAX_CONNS;
        uint16_t op;
        uint32_t len = 0;
        if (c->pend & P_RST) {
            op = VIRTIO_VSOCK_OP_RST;
        } else if (c->pend & P_REQUEST) {
            op = VIRTIO_VSOCK_OP_REQUEST;
        } else if (c->pend & P_RESPONSE) {
            op = VIRTIO_VSOCK_OP_RESPONSE;
        } else if (data) {
            op = VIRTIO_VSOCK_OP_RW;
            size_t room = e->in_len - HDR_LEN;
            len = (uint32_t)(c->h2g.len < room ? c->h2g.len : room);
            if (len > VIRTIO_VSOCK_MAX_PKT)
                len = VIRTIO_VSOCK_MAX_PKT;
            size_t done = 0;
            while (done < len) {
                uint8_t *at;
                size_t chunk = ring_head_data(&c->h2g, &at);
                if (chunk > len - done)
                    chunk = len - done;
                vq_iov_write(in, in_num, HDR_LEN + done, at, chunk);
                ring_consume(&c->h2g, chunk);
                done += chunk;
            }
            c->tx_cnt += len;
        } else if (c->pend & P_CREDIT) {
            op = VIRTIO_VSOCK_OP_CREDIT_UPDATE;
        } else {
            op = VIRTIO_VSOCK_OP_SHUTDOWN;
        }
        fill_hdr(v, &h, c->guest_port, c->host_port, op);
        h.len = len;
        h.fwd_cnt = c->fwd_cnt;
        c->fwd_cnt_told = c->fwd_cnt;
        if (op == VIRTIO_VSOCK_OP_SHUTDOWN) {
            h.flags = VIRTIO_VSOCK_SHUTDOWN_SEND;
            c->shutdown_sent = true;
            c->pend &= ~P_SHUTDOWN;
        }
        vq_iov_write(in, in_num, 0, &h, sizeof(h));
        /* Every packet carries the credit; a separate update is no longer owed. */
        c->pend &= ~P_CREDIT;
        if (op == VIRTIO_VSOCK_OP_RST) {
            c->state = C_FREE;
            c->pend = 0;
        } else if (op == VIRTIO_VSOCK_OP_REQUEST) {
            c->pend &= ~P_REQUEST;
        } else if (op == VIRTIO_VSOCK_OP_RESPONSE) {
            c->pend &= ~P_RESPONSE;
        }
        if (op == VIRTIO_VSOCK_OP_RW)
            c->service = true;   /* room in h2g: read the host socket again */
        return HDR_LEN + len;
    }
    return 0;
}

static void vsock_rx(struct virtio_vsock *v, struct virtio_dev *vdev)
{
    struct vq_elem *e = &v->elem;
    bool sent = false;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        if (!next_packet(v, NULL, true) || virtio_dev_pop(vdev, Q_RX, e) != 1) {
            pthread_mutex_unlock(&v->lock);
            break;
        }
        uint32_t len = 0;
        /* §5.10.6.1: rx buffers are device-writable and hold a header. */
        if (e->in_len >= HDR_LEN)
            len = next_packet(v, e, false);
        bool unstall = v->tx_stalled && v->rst_len < VIRTIO_VSOCK_RST_RING;
        if (unstall)
            v->tx_stalled = false;
        pthread_mutex_unlock(&v->lock);
        virtio_dev_push(vdev, Q_RX, e, len);
        if (unstall)
            virtio_dev_kick(vdev, Q_TX);
        sent = true;
    }
    if (sent)
        wake_thread(v);   /* room in the buffers: read the host sockets again */
}

/* Answers a packet that has no connection with RST (unless it is one). */
static void reply_rst(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
    if (h->op != VIRTIO_VSOCK_OP_RST)
        rst_push(v, h->src_port, h->dst_port);
}

/* A guest REQUEST to host port P: connect to PATH_P. */
static void guest_connect(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
    struct conn *c = conn_alloc(v);
    if (!c) {
        reply_rst(v, h);
        return;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->path, h->dst_port);
    int fd = -1;
    if (len <= 0 || (size_t)len >= sizeof(sa.sun_path))
        goto refuse;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* A unix connect never waits: it succeeds, or fails at once (no
     * listener, or its backlog full: EAGAIN). */
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        goto refuse;
    if (!ring_init(&c->g2h) || !ring_init(&c->h2g))
        goto refuse;
    c->fd = fd;
    c->state = C_ESTABLISHED;
    c->guest_port = h->src_port;
    c->host_port = h->dst_port;
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    c->pend = P_RESPONSE;
    if (conn_watch(v, c)) {
        c->fd = -1;
        goto refuse;
    }
    return;
refuse:
    if (fd >= 0)
        close(fd);
    ring_free(&c->g2h);
    ring_free(&c->h2g);
    c->state = C_FREE;
    reply_rst(v, h);
}

/* One packet from the guest, already checked to be from it, to the host,
 * with `h->len` payload bytes present in `e`. Lock held. */
static void handle_packet(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
                          const struct vq_elem *e)
{
    if (h->type != VIRTIO_VSOCK_TYPE_STREAM) {
        reply_rst(v, h);
        return;
    }
    struct conn *c = conn_find(v, h->src_port, h->dst_port);
    if (c && c->state == C_CLOSING)
        return;   /* its RST is on the way */
    if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
        if (c)
            conn_end(v, c, true);   /* a second REQUEST on a live connection */
        else
            guest_connect(v, h);
        return;
    }
    if (!c) {
        reply_rst(v, h);
        return;
    }
    c->peer_buf_alloc = h->buf_alloc;
    c->peer_fwd_cnt = h->fwd_cnt;
    switch (h->op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state != C_CONNECTING) {
            conn_end(v, c, true);
            break;
        }
        c->state = C_ESTABLISHED;
        c->ok_len = (size_t)snprintf(c->ok, sizeof(c->ok), "OK %u\n", c->host_port);
        break;
    case VIRTIO_VSOCK_OP_RST:
        conn_end(v, c, false);
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        if (c->state != C_ESTABLISHED) {
            conn_end(v, c, true);
            break;
        }
        if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND)
            c->guest_shut_send = true;
        if (h->flags & VIRTIO_VSOCK_SHUTDOWN_RCV) {
            c->guest_shut_rcv = true;
            c->h2g.len = 0;   /* nobody will read it */
            c->h2g.head = 0;
        }
        conn_after_drain(v, c);
        break;
    case VIRTIO_VSOCK_OP_RW:
        if (c->state != C_ESTABLISHED || c->guest_shut_send) {
            conn_end(v, c, true);
            break;
        }
        if (h->len > VIRTIO_VSOCK_BUF_ALLOC - c->g2h.len) {
            conn_end(v, c, true);   /* beyond the credit we gave */
            break;
        }
        for (size_t done = 0; done < h->len;) {
            uint8_t *at;
            size_t room = ring_tail_room(&c->g2h, &at);
            if (room > h->len - done)
                room = h->len - done;
            vq_iov_read(e->iov, e->out_num, HDR_LEN + done, at, room);
            c->g2h.len += room;
            done += room;
        }
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;   /* the credit was taken above */
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        c->pend |= P_CREDIT;
        break;
    default:
        conn_end(v, c, true);   /* an op we do not know */
        break;
    }
    if (c->state != C_FREE)
        c->service = true;
}

static void vsock_tx(struct virtio_vsock *v, struct virtio_dev *vdev)
{
    struct vq_elem *e = &v->elem;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        /* Each packet may need one RST in reply: wait for room first. */
        if (v->rst_len == VIRTIO_VSOCK_RST_RING) {
            v->tx_stalled = true;
            pthread_mutex_unlock(&v->lock);
            virtio_dev_kick(vdev, Q_RX);
            return;
        }
        if (virtio_dev_pop(vdev, Q_TX, e) != 1) {
            pthread_mutex_unlock(&v->lock);
            break;
        }
        struct virtio_vsock_hdr h;
        /* §5.10.6.2: a header, then len bytes of payload, all readable.
         * Anything else, or a packet not from the guest's CID to the
         * host's, is dropped. */
        if (e->out_len >= HDR_LEN) {
            vq_iov_read(e->iov, e->out_num, 0, &h, sizeof(h));
            if (h.src_cid == v->cid && h.dst_cid == VIRTIO_VSOCK_HOST_CID &&
                h.len <= VIRTIO_VSOCK_MAX_PKT && h.len <= e->out_len - HDR_LEN &&
                (h.op == VIRTIO_VSOCK_OP_RW || h.len == 0))
                handle_packet(v, &h, e);
        }
        pthread_mutex_unlock(&v->lock);
        virtio_dev_push(vdev, Q_TX, e, 0);
    }
    wake_thread(v);             /* new data for the host sockets */
    virtio_dev_kick(vdev, Q_RX);   /* and maybe replies */
}

static void vsock_event(struct virtio_vsock *v, struct virtio_dev *vdev)
{
    struct vq_elem *e = &v->elem;
    pthread_mutex_lock(&v->lock);
    if (v->event_pending && virtio_dev_pop(vdev, Q_EVENT, e) == 1) {
        uint32_t id = VIRTIO_VSOCK_EVENT_TRANSPORT_RESET;
        uint32_t n = (uint32_t)vq_iov_write(e->iov + e->out_num, e->in_num, 0, &id, sizeof(id));
        v->event_pending = false;
        pthread_mutex_unlock(&v->lock);
        virtio_dev_push(vdev, Q_EVENT, e, n);
        return;
    }
    pthread_mutex_unlock(&v->lock);
}

static void vsock_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct virtio_vsock *v = dev;
    if (q == Q_RX)
        vsock_rx(v, vdev);
    else if (q == Q_TX)
        vsock_tx(v, vdev);
    else
        vsock_event(v, vdev);
}

static void vsock_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    struct virtio_vsock *v = dev;
    memcpy(buf, (const uint8_t *)&v->config_cid + offset, len);
    if (atomic_exchange(&v->cid_unread, false)) {
        atomic_store(&v->kick_rx_owed, true);
        wake_thread(v);
    }
}

/* §5.10.6.7-style: every connection is gone; the driver hears of it through
 * a TRANSPORT_RESET event once it posts an event buffer again. */
static void vsock_reset(void *dev)
{
    struct virtio_vsock *v = dev;
    pthread_mutex_lock(&v->lock);
    bool had = false;
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conns[i];
        if (c->state == C_FREE)
            continue;
        had |= c->state != C_PENDING;
        if (c->state == C_PENDING)
            continue;   /* a host client still typing CONNECT may stay */
        conn_end(v, c, false);
    }
    v->rst_len = v->rst_head = 0;
    v->tx_stalled = false;
    v->event_pending |= had;   /* until delivered, through further resets */
    pthread_mutex_unlock(&v->lock);
}

static void vsock_free(struct virtio_vsock *v)
{
    if (v->thread_started) {
        pthread_mutex_lock(&v->lock);
        v->quit = true;
        pthread_mutex_unlock(&v->lock);
        wake_thread(v);
        pthread_join(v->thread, NULL);
    }
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
        conn_close_fd(v, &v->conns[i]);
    if (v->listen_fd >= 0) {
        struct stat st;
        /* Remove the socket file only if it is still the one we made. */
        if (lstat(v->path, &st) == 0 && st.st_dev == v->sock_dev && st.st_ino == v->sock_ino)
            unlink(v->path);
        close(v->listen_fd);
    }
    if (v->epoll_fd >= 0)
        close(v->epoll_fd);
    if (v->wake_fd >= 0)
        close(v->wake_fd);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

static void vsock_destroy(void *dev)
{
    vsock_free(dev);
}

/* ---- snapshots ---- */

/* Section "virtio-vsock"[instance] v1.0: u64 the guest CID at save, u8 a
 * TRANSPORT_RESET still owed, u32 the next host port of host-initiated
 * connections.
 *
 * The connections are not saved: their host side is unix sockets of this
 * process. A load drops every connection the device has (as a reset does)
 * and always owes the driver a TRANSPORT_RESET event (§5.10.6.6), as
 * Firecracker does after a restore: the Linux driver then resets every
 * socket it has and re-reads guest_cid, which is the loading device's own
 * (a clone gets a new CID), not the saved one. */
static int vsock_save(void *dev, struct virtio_dev *vdev, struct state_writer *w, uint32_t instance)
{
    struct virtio_vsock *v = dev;
    (void)vdev;
    pthread_mutex_lock(&v->lock);
    state_begin(w, VIRTIO_VSOCK_STATE_TAG, instance, VIRTIO_VSOCK_STATE_MAJOR,
                VIRTIO_VSOCK_STATE_MINOR);
    state_put_u64(w, v->config_cid);
    state_put_u8(w, v->event_pending);
    state_put_u32(w, v->next_host_port);
    pthread_mutex_unlock(&v->lock);
    return state_end(w);
}

static int vsock_load(void *dev, struct virtio_dev *vdev, const struct state_reader *r,
                      uint32_t instance, char *err, size_t errlen)
{
    struct virtio_vsock *v = dev;
    struct state_section s;
    uint64_t cid;
    bool pending;
    uint32_t port;
    (void)vdev;
    int ret = state_reader_section(r, VIRTIO_VSOCK_STATE_TAG, instance, VIRTIO_VSOCK_STATE_MAJOR,
                                   &s, err, errlen);
    if (ret)
        return ret;
    state_get_u64(&s, &cid);
    state_get_bool(&s, &pending);
    state_get_u32(&s, &port);
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;
    if (cid < 3 || cid >= 0xffffffffull)
        return state_section_error(&s, err, errlen, -EINVAL, "guest CID %llu is reserved",
                                   (unsigned long long)cid);
    if (port < VIRTIO_VSOCK_HOST_PORT0)
        return state_section_error(&s, err, errlen, -EINVAL, "next host port 0x%x below 0x%x", port,
                                   VIRTIO_VSOCK_HOST_PORT0);

    pthread_mutex_lock(&v->lock);
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
        struct conn *c = &v->conns[i];
        /* A host client of this process still typing CONNECT may stay. */
        if (c->state != C_FREE && c->state != C_PENDING)
            conn_end(v, c, false);
    }
    v->rst_len = v->rst_head = 0;
    v->tx_stalled = false;
    v->config_cid = v->cid;        /* this process's CID */
    v->next_host_port = port;      /* host ports go on from the saved ones */
    v->event_pending = true;       /* whatever `pending` was: reset is owed now */
    atomic_store(&v->cid_unread, true);
    pthread_mutex_unlock(&v->lock);
    wake_thread(v);
    return 0;
}

static const struct virtio_device_ops vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .config_read = vsock_config_read,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
    .destroy = vsock_destroy,
    .save = vsock_save,
    .load = vsock_load,
};

/* Binds the host socket at v->path, replacing a stale socket file. */
static int listen_host(struct virtio_vsock *v, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, v->path, strlen(v->path) + 1);
    struct stat st;
    if (lstat(v->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return errmsg(err, errlen, -EEXIST, "vsock path exists and is not a socket: %s",
                          v->path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return errmsg(err, errlen, -errno, "cannot create socket: %s", strerror(errno));
        int r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        close(probe);
        if (r == 0)
            return errmsg(err, errlen, -EADDRINUSE, "another server is listening on %s",
                          v->path);
        unlink(v->path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "cannot create socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ||
        lstat(v->path, &st) < 0) {
        int rc = -errno;
        close(fd);
        return errmsg(err, errlen, rc, "cannot listen on vsock socket %s: %s", v->path,
                      strerror(-rc));
    }
    v->listen_fd = fd;
    v->sock_dev = st.st_dev;
    v->sock_ino = st.st_ino;
    return 0;
}

int virtio_vsock_create(struct guest_mem *mem, uint64_t base, struct irq_line irq, uint64_t cid,
                        const char *path, struct virtio_dev **out, char *err, size_t errlen)
{
    if (cid < 3 || cid >= 0xffffffffull)
        return errmsg(err, errlen, -EINVAL, "vsock CID %llu is reserved (use 3 or more)",
                      (unsigned long long)cid);
    /* Room for "_PORT" after the path in sun_path. */
    if (!path || !*path || strlen(path) + 12 > sizeof(((struct sockaddr_un *)0)->sun_path))
        return errmsg(err, errlen, -ENAMETOOLONG, "vsock path empty or too long: %s",
                      path ? path : "");
    struct virtio_vsock *v = calloc(1, sizeof(*v));
    if (!v)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    v->cid = cid;
    v->config_cid = cid;
    v->listen_fd = v->epoll_fd = v->wake_fd = -1;
    v->next_host_port = VIRTIO_VSOCK_HOST_PORT0;
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
        v->conns[i].fd = -1;
    snprintf(v->path, sizeof(v->path), "%s", path);
    int r;
    if (pthread_mutex_init(&v->lock, NULL)) {
        free(v);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    r = listen_host(v, err, errlen);
    if (r)
        goto fail;
    v->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (v->epoll_fd < 0 || v->wake_fd < 0) {
        r = errmsg(err, errlen, -errno, "vsock: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_LISTEN };
    struct epoll_event wev = { .events = EPOLLIN, .data.u64 = TAG_WAKE };
    if (epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, v->listen_fd, &ev) ||
        epoll_ctl(v->epoll_fd, EPOLL_CTL_ADD, v->wake_fd, &wev)) {
        r = errmsg(err, errlen, -errno, "vsock: epoll: %s", strerror(errno));
        goto fail;
    }
    struct virtio_device_params p = {
        .ops = &vsock_ops, .dev = v, .features = 0, .config_size = sizeof(v->config_cid),
        .num_queues = 3, .queue_max = 128, .nworkers = 1,
    };
    r = virtio_mmio_create(mem, base, irq, &p, out);
    if (r) {
        errmsg(err, errlen, r, "cannot create the vsock device: %s", strerror(-r));
        goto fail;
    }
    /* From here the transport owns v: its destroy op frees it. */
    pthread_mutex_lock(&v->lock);
    v->vdev = *out;
    pthread_mutex_unlock(&v->lock);
    r = pthread_create(&v->thread, NULL, vsock_thread, v);
    if (r) {
        virtio_mmio_destroy(*out);
        *out = NULL;
        return errmsg(err, errlen, -r, "vsock: cannot start its thread: %s", strerror(r));
    }
    v->thread_started = true;
    return 0;
fail:
    vsock_free(v);
    return r;
}
