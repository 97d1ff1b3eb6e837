/* The live migration stream: addresses, framing, page batches and the fixed
 * frames. See migrate_stream.h. */
#include "vm/migrate_stream.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <zstd.h>

#include "base/errmsg.h"
#include "state/state.h"

#define READ_CHUNK (1u << 20)   /* a payload buffer grows by at most this per read */

/* ---- little-endian fields ---- */

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, 8);
}

/* ---- addresses ---- */

int migrate_addr_parse(const char *s, struct migrate_addr *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (!strncmp(s, "unix:", 5)) {
        size_t n = strlen(s + 5);
        if (n == 0 || n >= sizeof(a->path))
            return errmsg(err, errlen, -EINVAL, "'%s': a unix socket path of 1 to %zu bytes",
                          s, sizeof(a->path) - 1);
        memcpy(a->path, s + 5, n + 1);
        return 0;
    }
    if (strncmp(s, "tcp:", 4))
        return errmsg(err, errlen, -EINVAL, "'%s': an address is unix:PATH or tcp:HOST:PORT", s);
    const char *h = s + 4, *colon;
    size_t hl;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        if (!e || e[1] != ':')
            return errmsg(err, errlen, -EINVAL, "'%s': tcp:[ADDR]:PORT for IPv6", s);
        h++;
        hl = (size_t)(e - h);
        colon = e + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return errmsg(err, errlen, -EINVAL, "'%s': tcp:HOST:PORT needs a port", s);
        hl = (size_t)(colon - h);
    }
    const char *port = colon + 1;
    char *end;
    unsigned long p = strtoul(port, &end, 10);
    if (hl == 0 || hl >= sizeof(a->host) || !*port || *end || p > 65535 ||
        strlen(port) >= sizeof(a->port))
        return errmsg(err, errlen, -EINVAL, "'%s': tcp:HOST:PORT with a port of 0 to 65535", s);
    memcpy(a->host, h, hl);
    a->host[hl] = '\0';
    snprintf(a->port, sizeof(a->port), "%lu", p);
    a->tcp = true;
    return 0;
}

void migrate_addr_format(const struct migrate_addr *a, char *buf, size_t len)
{
    if (!a->tcp)
        snprintf(buf, len, "unix:%s", a->path);
    else if (strchr(a->host, ':'))
        snprintf(buf, len, "tcp:[%s]:%s", a->host, a->port);
    else
        snprintf(buf, len, "tcp:%s:%s", a->host, a->port);
}

/* TCP_NODELAY: a post-copy page request must not wait for Nagle. The
 * buffers stay the kernel's: bigger ones would only queue more background
 * pages in front of a requested one. */
static void tune_socket(int fd, bool tcp)
{
    int one = 1;
    if (!tcp)
        return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A silent peer (host down, link cut: no FIN, no RST) is found by
     * keepalives while idle and by the user timeout while data waits for
     * its ACK; either way reads and writes then fail, and a post-copy
     * pauses instead of waiting forever (docs/migration.md). */
    int idle = 5, intvl = 2, cnt = 5;
    unsigned int ut = MIGRATE_TCP_TIMEOUT_MS;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
}

static int unix_sockaddr(const struct migrate_addr *a, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, a->path, strlen(a->path) + 1);
    return 0;
}

int migrate_connect(const struct migrate_addr *a, int timeout_ms, char *err, size_t errlen)
{
    char name[400];
    migrate_addr_format(a, name, sizeof(name));
    if (!a->tcp) {
        struct sockaddr_un sun;
        unix_sockaddr(a, &sun);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return errmsg(err, errlen, -errno, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
            int e = errno;
            close(fd);
            return errmsg(err, errlen, -e, "cannot connect to %s: %s", name, strerror(e));
        }
        tune_socket(fd, false);
        return fd;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
    int g = getaddrinfo(a->host, a->port, &hints, &res);
    if (g)
        return errmsg(err, errlen, -EHOSTUNREACH, "%s: %s", name, gai_strerror(g));
    int fd = -1, e = ECONNREFUSED;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
            e = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int so = 0;
        socklen_t sl = sizeof(so);
        int n = poll(&p, 1, timeout_ms);
        if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) || so) {
            e = n == 0 ? ETIMEDOUT : so ? so : errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return errmsg(err, errlen, -e, "cannot connect to %s: %s", name, strerror(e));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    tune_socket(fd, true);
    return fd;
}

int migrate_listen(const struct migrate_addr *a, struct migrate_addr *bound, char *err,
                   size_t errlen)
{
    char name[400];
    migrate_addr_format(a, name, sizeof(name));
    if (bound)
        *bound = *a;
    if (!a->tcp) {
        struct sockaddr_un sun;
        unix_sockaddr(a, &sun);
        struct stat st;
        if (lstat(a->path, &st) == 0) {
            /* Replace a stale socket nobody serves; anything else stays. */
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            bool live = probe >= 0 && S_ISSOCK(st.st_mode) &&
                        connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
            if (probe >= 0)
                close(probe);
            if (!S_ISSOCK(st.st_mode) || live)
                return errmsg(err, errlen, -EADDRINUSE, "%s: %s", name,
                              live ? "someone listens there already" : "a file is in the way");
            unlink(a->path);
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return errmsg(err, errlen, -errno, "socket: %s", strerror(errno));
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 1)) {
            int e = errno;
            close(fd);
            return errmsg(err, errlen, -e, "cannot listen on %s: %s", name, strerror(e));
        }
        return fd;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *res;
    int g = getaddrinfo(a->host, a->port, &hints, &res);
    if (g)
        return errmsg(err, errlen, -EADDRNOTAVAIL, "%s: %s", name, gai_strerror(g));
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol), one = 1;
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1)) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return errmsg(err, errlen, -e, "cannot listen on %s: %s", name, strerror(e));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (bound && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        char host[256], port[8];
        if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(bound->port, sizeof(bound->port), "%s", port);
    }
    return fd;
}

int migrate_accept(int lfd, bool tcp, char *err, size_t errlen)
{
    int fd;
    do
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "accepting the migration: %s", strerror(errno));
    tune_socket(fd, tcp);
    return fd;
}

/* ---- framing ---- */

int migrate_conn_init(struct migrate_conn *c, int rfd, int wfd)
{
    memset(c, 0, sizeof(*c));
    c->rfd = rfd;
    c->wfd = wfd;
    return -pthread_mutex_init(&c->wlock, NULL);
}

void migrate_conn_rebind(struct migrate_conn *c, int rfd, int wfd)
{
    pthread_mutex_lock(&c->wlock);
    c->rfd = rfd;
    c->wfd = wfd;
    pthread_mutex_unlock(&c->wlock);
}

void migrate_conn_free(struct migrate_conn *c)
{
    free(c->buf);
    free(c->zbuf);
    ZSTD_freeCCtx(c->zctx);
    ZSTD_freeDCtx(c->dctx);
    pthread_mutex_destroy(&c->wlock);
    c->buf = c->zbuf = NULL;
    c->zctx = c->dctx = NULL;
}

static const char *const frame_names[MIGRATE_FRAME_TYPES] = {
    [MIGRATE_HELLO] = "HELLO", [MIGRATE_ACCEPT] = "ACCEPT", [MIGRATE_ERROR] = "ERROR",
    [MIGRATE_PAGES] = "PAGES", [MIGRATE_DISCARD] = "DISCARD", [MIGRATE_STATE] = "STATE",
    [MIGRATE_END] = "END", [MIGRATE_READY] = "READY", [MIGRATE_GO] = "GO",
    [MIGRATE_PAGE_REQ] = "PAGE_REQ", [MIGRATE_PAGES_DONE] = "PAGES_DONE",
    [MIGRATE_COMPLETE] = "COMPLETE", [MIGRATE_RESUME] = "RESUME",
    [MIGRATE_RECEIVED] = "RECEIVED",
    [MIGRATE_DISK] = "DISK", [MIGRATE_DISK_SYNC] = "DISK_SYNC",
    [MIGRATE_DISK_SYNCED] = "DISK_SYNCED", [MIGRATE_SYNC] = "SYNC",
    [MIGRATE_SYNCED] = "SYNCED",
};

const char *migrate_frame_name(unsigned type)
{
    return type && type < MIGRATE_FRAME_TYPES ? frame_names[type] : "unknown";
}

/* The longest payload each type may have. */
static uint32_t max_len(unsigned type)
{
    switch (type) {
    case MIGRATE_HELLO:     return MIGRATE_HELLO_FIXED + (1u << 20);   /* board + disks */
    case MIGRATE_ACCEPT:    return 4;
    case MIGRATE_ERROR:     return 6 + MIGRATE_MAX_MSG;
    case MIGRATE_PAGES:     return MIGRATE_PAGES_MAX;
    case MIGRATE_DISCARD:   return 8 + (uint32_t)((1ull << 28) / 8);   /* 1 TiB of RAM */
    case MIGRATE_STATE:     return STATE_MAX_SIZE;
    case MIGRATE_END:       return 12;
    case MIGRATE_PAGE_REQ:  return 8 + 8 * MIGRATE_MAX_REQ;
    case MIGRATE_PAGES_DONE: return 8;
    case MIGRATE_RESUME:    return 24;
    case MIGRATE_RECEIVED:  return 8 + (uint32_t)((1ull << 28) / 8);   /* as DISCARD */
    case MIGRATE_DISK:      return MIGRATE_DISK_HDR + MIGRATE_DISK_CHUNK_MAX;
    default:                return 0;  /* READY, GO, COMPLETE, DISK_SYNC(ED), SYNC(ED) */
    }
}

static int read_full(struct migrate_conn *c, void *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(c->rfd, (uint8_t *)p + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ECONNRESET;
        *got += (size_t)r;
        c->bytes_in += (uint64_t)r;
    }
    return 0;
}

static int reserve(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < want)
        n *= 2;
    uint8_t *b = realloc(*buf, n);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

int migrate_recv(struct migrate_conn *c, struct migrate_frame *f, char *err, size_t errlen)
{
    uint8_t h[MIGRATE_FRAME_HDR];
    size_t got;
    int r = read_full(c, h, sizeof(h), &got);
    if (r == -ECONNRESET)
        return errmsg(err, errlen, r, got ? "the stream ended inside a frame header"
                                          : "the peer closed the stream");
    if (r)
        return errmsg(err, errlen, r, "reading the stream: %s", strerror(-r));
    f->type = h[0];
    f->flags = h[1];
    f->len = get32(h + 4);
    f->data = NULL;
    if (!f->type || f->type >= MIGRATE_FRAME_TYPES)
        return errmsg(err, errlen, -EBADMSG, "not a migration stream: frame type %u", f->type);
    if (h[2] || h[3] || (f->flags & ~(f->type == MIGRATE_PAGES ? MIGRATE_FRAME_ZSTD : 0u)))
        return errmsg(err, errlen, -EBADMSG, "%s frame with unknown flags %#x or reserved bits",
                      migrate_frame_name(f->type), f->flags);
    if (f->len > max_len(f->type))
        return errmsg(err, errlen, -EBADMSG, "%s frame of %u bytes (at most %u)",
                      migrate_frame_name(f->type), f->len, max_len(f->type));
    /* Grow with what arrives: a lying length costs only the bytes sent. */
    size_t done = 0;
    while (done < f->len) {
        size_t step = f->len - done < READ_CHUNK ? f->len - done : READ_CHUNK;
        if ((r = reserve(&c->buf, &c->cap, done + step)))
            return errmsg(err, errlen, r, "out of memory");
        r = read_full(c, c->buf + done, step, &got);
        done += got;
        if (r == -ECONNRESET)
            return errmsg(err, errlen, r, "the stream ended inside a %s frame (%zu of %u bytes)",
                          migrate_frame_name(f->type), done, f->len);
        if (r)
            return errmsg(err, errlen, r, "reading the stream: %s", strerror(-r));
    }
    f->data = c->buf;
    if (f->type == MIGRATE_ERROR) {
        if (f->len < 6 || (uint32_t)(f->data[4] | f->data[5] << 8) != f->len - 6)
            return errmsg(err, errlen, -EBADMSG, "a malformed ERROR frame from the peer");
        int32_t e = (int32_t)get32(f->data);
        char msg[MIGRATE_MAX_MSG + 1];
        memcpy(msg, f->data + 6, f->len - 6);
        msg[f->len - 6] = '\0';
        sanitize(msg);
        (void)e;
        return errmsg(err, errlen, -EREMOTEIO, "the peer gave up: %s", msg);
    }
    return 0;
}

int migrate_send(struct migrate_conn *c, uint8_t type, uint8_t flags, const void *a, size_t alen,
                 const void *b, size_t blen)
{
    uint8_t h[MIGRATE_FRAME_HDR] = { type, flags, 0, 0 };
    if (alen + blen > UINT32_MAX)
        return -EFBIG;
    put32(h + 4, (uint32_t)(alen + blen));
    struct iovec iov[3] = { { h, sizeof(h) }, { (void *)a, alen }, { (void *)b, blen } };
    size_t total = sizeof(h) + alen + blen, sent = 0;
    int r = 0;
    pthread_mutex_lock(&c->wlock);
    int idx = 0;
    while (sent < total) {
        /* MSG_NOSIGNAL: a peer that went away is an error, not SIGPIPE. */
        struct msghdr mh = { .msg_iov = iov + idx, .msg_iovlen = (size_t)(3 - idx) };
        ssize_t n = sendmsg(c->wfd, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = writev(c->wfd, iov + idx, 3 - idx);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        sent += (size_t)n;
        c->bytes_out += (uint64_t)n;
        while (n > 0 && idx < 3) {
            if ((size_t)n >= iov[idx].iov_len) {
                n -= (ssize_t)iov[idx].iov_len;
                iov[idx].iov_len = 0;
                idx++;
            } else {
                iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + n;
                iov[idx].iov_len -= (size_t)n;
                n = 0;
            }
        }
        while (idx < 3 && !iov[idx].iov_len)
            idx++;
    }
    pthread_mutex_unlock(&c->wlock);
    return r;
}

void migrate_send_error(struct migrate_conn *c, int r, const char *msg)
{
    uint8_t h[6];
    size_t n = strlen(msg);
    if (n > MIGRATE_MAX_MSG)
        n = MIGRATE_MAX_MSG;
    put32(h, (uint32_t)r);
    h[4] = (uint8_t)n;
    h[5] = (uint8_t)(n >> 8);
    migrate_send(c, MIGRATE_ERROR, 0, h, sizeof(h), msg, n);
}

/* ---- pages ---- */

bool migrate_page_is_zero(const void *page)
{
    const uint64_t *p = page;
    uint64_t acc = 0;
    for (size_t i = 0; i < MIGRATE_PAGE_SIZE / 8; i += 8)
        acc |= p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7];
    return acc == 0;
}

int migrate_batch_init(struct migrate_batch *b)
{
    memset(b, 0, sizeof(*b));
    b->data = malloc(MIGRATE_BATCH_PAGES * MIGRATE_PAGE_SIZE);
    return b->data ? 0 : -ENOMEM;
}

void migrate_batch_free(struct migrate_batch *b)
{
    free(b->data);
    b->data = NULL;
}

bool migrate_batch_add(struct migrate_batch *b, uint64_t pfn, const void *page)
{
    if (!page || migrate_page_is_zero(page)) {
        b->entries[b->count++] = htole64(pfn | MIGRATE_PAGE_ZERO);
    } else {
        b->entries[b->count++] = htole64(pfn);
        memcpy(b->data + (size_t)b->ndata++ * MIGRATE_PAGE_SIZE, page, MIGRATE_PAGE_SIZE);
    }
    return b->count == MIGRATE_BATCH_PAGES;
}

int migrate_batch_flush(struct migrate_conn *c, struct migrate_batch *b, int zstd_level)
{
    if (!b->count)
        return 0;
    uint8_t head[8];
    put32(head, b->count);
    put32(head + 4, 0);
    size_t elen = (size_t)b->count * 8, dlen = (size_t)b->ndata * MIGRATE_PAGE_SIZE;
    int r = -1;
    if (zstd_level > 0 && b->ndata) {
        /* One frame of the whole payload: compressed only when it pays. */
        size_t raw = 8 + elen + dlen, bound = ZSTD_compressBound(raw);
        if (!c->zctx)
            c->zctx = ZSTD_createCCtx();
        if (c->zctx && reserve(&c->zbuf, &c->zcap, 4 + raw + bound) == 0) {
            uint8_t *in = c->zbuf + 4 + bound;
            memcpy(in, head, 8);
            memcpy(in + 8, b->entries, elen);
            memcpy(in + 8 + elen, b->data, dlen);
            size_t z = ZSTD_compressCCtx(c->zctx, c->zbuf + 4, bound, in, raw, zstd_level);
            if (!ZSTD_isError(z) && z + 4 < raw) {
                put32(c->zbuf, (uint32_t)raw);
                r = migrate_send(c, MIGRATE_PAGES, MIGRATE_FRAME_ZSTD, c->zbuf, z + 4, NULL, 0);
                goto out;
            }
        }
    }
    /* Header and entries in one piece, the data in the other. */
    uint8_t hdr[8 + MIGRATE_BATCH_PAGES * 8];
    memcpy(hdr, head, 8);
    memcpy(hdr + 8, b->entries, elen);
    r = migrate_send(c, MIGRATE_PAGES, 0, hdr, 8 + elen, b->data, dlen);
out:
    b->zero_pages += b->count - b->ndata;
    b->data_pages += b->ndata;
    b->count = b->ndata = 0;
    return r;
}

int migrate_pages_parse(struct migrate_conn *c, const struct migrate_frame *f, uint64_t npages,
                        bool features_zstd, migrate_page_fn page, void *opaque, char *err,
                        size_t errlen)
{
    const uint8_t *p = f->data;
    size_t len = f->len;
    if (f->flags & MIGRATE_FRAME_ZSTD) {
        if (!features_zstd)
            return errmsg(err, errlen, -EBADMSG, "a compressed PAGES frame, not negotiated");
        if (len < 4)
            return errmsg(err, errlen, -EBADMSG, "a compressed PAGES frame of %zu bytes", len);
        uint32_t raw = get32(p);
        if (raw < 8 || raw > MIGRATE_PAGES_MAX)
            return errmsg(err, errlen, -EBADMSG, "a compressed PAGES frame of %u bytes raw", raw);
        if (!c->dctx)
            c->dctx = ZSTD_createDCtx();
        if (!c->dctx || reserve(&c->zbuf, &c->zcap, raw))
            return errmsg(err, errlen, -ENOMEM, "out of memory");
        size_t n = ZSTD_decompressDCtx(c->dctx, c->zbuf, raw, p + 4, len - 4);
        if (ZSTD_isError(n) || n != raw)
            return errmsg(err, errlen, -EBADMSG, "a damaged compressed PAGES frame (%s)",
                          ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length");
        p = c->zbuf;
        len = raw;
    }
    if (len < 8)
        return errmsg(err, errlen, -EBADMSG, "a PAGES frame of %zu bytes", len);
    uint32_t count = get32(p), reserved = get32(p + 4);
    if (!count || count > MIGRATE_BATCH_PAGES || reserved || len < 8 + (size_t)count * 8)
        return errmsg(err, errlen, -EBADMSG, "a PAGES frame of %u entries in %zu bytes", count, len);
    const uint8_t *ent = p + 8;
    size_t ndata = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = get64(ent + 8 * i), pfn = e & MIGRATE_PFN_MASK;
        if ((e & ~(MIGRATE_PFN_MASK | MIGRATE_PAGE_ZERO)) || pfn >= npages)
            return errmsg(err, errlen, -EBADMSG, "PAGES entry %u: page %#llx (RAM has %llu "
                          "pages) or unknown flags", i, (unsigned long long)e,
                          (unsigned long long)npages);
        if (!(e & MIGRATE_PAGE_ZERO))
            ndata++;
    }
    if (len != 8 + (size_t)count * 8 + ndata * MIGRATE_PAGE_SIZE)
        return errmsg(err, errlen, -EBADMSG, "a PAGES frame of %zu bytes for %u entries with "
                      "%zu data pages", len, count, ndata);
    const uint8_t *data = ent + (size_t)count * 8;
    for (uint32_t i = 0; i < count;) {
        uint64_t e = get64(ent + 8 * i), pfn = e & MIGRATE_PFN_MASK;
        uint32_t n = 1;
        int r;
        if (e & MIGRATE_PAGE_ZERO) {
            r = page(opaque, pfn, 1, NULL);
        } else {
            /* A run of consecutive data pages: their data is contiguous. */
            while (i + n < count) {
                uint64_t e2 = get64(ent + 8 * (i + n));
                if ((e2 & MIGRATE_PAGE_ZERO) || (e2 & MIGRATE_PFN_MASK) != pfn + n)
                    break;
                n++;
            }
            r = page(opaque, pfn, n, data);
            data += (size_t)n * MIGRATE_PAGE_SIZE;
        }
        if (r)
            return r;
        i += n;
    }
    return 0;
}

/* ---- fixed frames ---- */

int migrate_hello_send(struct migrate_conn *c, uint32_t features, uint32_t mode,
                       uint64_t ram_size, const void *board, size_t board_len)
{
    uint8_t h[MIGRATE_HELLO_FIXED];
    memcpy(h, MIGRATE_MAGIC, 8);
    h[8] = MIGRATE_MAJOR;
    h[9] = 0;
    h[10] = MIGRATE_MINOR;
    h[11] = 0;
    put32(h + 12, features);
    put32(h + 16, mode);
    put64(h + 20, ram_size);
    put32(h + 28, MIGRATE_PAGE_SIZE);
    return migrate_send(c, MIGRATE_HELLO, 0, h, sizeof(h), board, board_len);
}

int migrate_hello_parse(const struct migrate_frame *f, struct migrate_hello *h, char *err,
                        size_t errlen)
{
    const uint8_t *p = f->data;
    if (f->type != MIGRATE_HELLO || f->len < MIGRATE_HELLO_FIXED || memcmp(p, MIGRATE_MAGIC, 8))
        return errmsg(err, errlen, -EBADMSG, "not a Nimbus migration stream (no HELLO)");
    h->major = (uint16_t)(p[8] | p[9] << 8);
    h->minor = (uint16_t)(p[10] | p[11] << 8);
    if (h->major != MIGRATE_MAJOR)
        return errmsg(err, errlen, -ENOTSUP, "migration stream version %u.%u; this Nimbus reads "
                      "%u.x", h->major, h->minor, MIGRATE_MAJOR);
    h->features = get32(p + 12);
    h->mode = get32(p + 16);
    h->ram_size = get64(p + 20);
    uint32_t ps = get32(p + 28);
    if (ps != MIGRATE_PAGE_SIZE || (h->mode & ~MIGRATE_MODE_ALL))
        return errmsg(err, errlen, -EBADMSG, "HELLO: page size %u, mode %#x", ps, h->mode);
    h->board = p + MIGRATE_HELLO_FIXED;
    h->board_len = f->len - MIGRATE_HELLO_FIXED;
    return 0;
}

int migrate_u32_parse(const struct migrate_frame *f, uint32_t allowed, uint32_t *v, char *err,
                      size_t errlen)
{
    if (f->len != 4)
        return errmsg(err, errlen, -EBADMSG, "%s frame of %u bytes", migrate_frame_name(f->type),
                      f->len);
    *v = get32(f->data);
    if (*v & ~allowed)
        return errmsg(err, errlen, -EBADMSG, "%s frame with unknown bits %#x",
                      migrate_frame_name(f->type), *v & ~allowed);
    return 0;
}

int migrate_end_send(struct migrate_conn *c, uint32_t flags, uint64_t pages)
{
    uint8_t b[12];
    put32(b, flags);
    put64(b + 4, pages);
    return migrate_send(c, MIGRATE_END, 0, b, sizeof(b), NULL, 0);
}

int migrate_end_parse(const struct migrate_frame *f, uint32_t *flags, uint64_t *pages, char *err,
                      size_t errlen)
{
    if (f->len != 12)
        return errmsg(err, errlen, -EBADMSG, "END frame of %u bytes", f->len);
    *flags = get32(f->data);
    *pages = get64(f->data + 4);
    if (*flags & ~MIGRATE_END_ALL)
        return errmsg(err, errlen, -EBADMSG, "END frame with unknown flags %#x", *flags);
    return 0;
}

int migrate_req_send(struct migrate_conn *c, const uint64_t *pfns, uint32_t n)
{
    uint8_t b[8 + 8 * MIGRATE_MAX_REQ];
    if (!n || n > MIGRATE_MAX_REQ)
        return -EINVAL;
    put32(b, n);
    put32(b + 4, 0);
    for (uint32_t i = 0; i < n; i++)
        put64(b + 8 + 8 * i, pfns[i]);
    return migrate_send(c, MIGRATE_PAGE_REQ, 0, b, 8 + 8 * (size_t)n, NULL, 0);
}

int migrate_req_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *pfns,
                      uint32_t *n, char *err, size_t errlen)
{
    if (f->len < 8)
        return errmsg(err, errlen, -EBADMSG, "PAGE_REQ frame of %u bytes", f->len);
    *n = get32(f->data);
    if (!*n || *n > MIGRATE_MAX_REQ || get32(f->data + 4) || f->len != 8 + 8 * *n)
        return errmsg(err, errlen, -EBADMSG, "PAGE_REQ frame of %u pages in %u bytes", *n, f->len);
    for (uint32_t i = 0; i < *n; i++) {
        pfns[i] = get64(f->data + 8 + 8 * i);
        if (pfns[i] >= npages)
            return errmsg(err, errlen, -EBADMSG, "PAGE_REQ for page %#llx (RAM has %llu pages)",
                          (unsigned long long)pfns[i], (unsigned long long)npages);
    }
    return 0;
}

int migrate_discard_send(struct migrate_conn *c, const uint64_t *bitmap, uint64_t npages)
{
    uint8_t h[8];
    put64(h, npages);
    return migrate_send(c, MIGRATE_DISCARD, 0, h, 8, bitmap, (size_t)((npages + 63) / 64) * 8);
}

int migrate_discard_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *bitmap,
                          char *err, size_t errlen)
{
    size_t words = (size_t)((npages + 63) / 64);
    if (f->len != 8 + words * 8 || get64(f->data) != npages)
        return errmsg(err, errlen, -EBADMSG, "DISCARD frame of %u bytes for %llu pages", f->len,
                      (unsigned long long)npages);
    memcpy(bitmap, f->data + 8, words * 8);
    for (size_t i = 0; i < words; i++)
        bitmap[i] = le64toh(bitmap[i]);
    if (npages % 64)
        bitmap[words - 1] &= (1ull << (npages % 64)) - 1;
    return 0;
}

/* ---- post-copy recovery ---- */

int migrate_resume_send(struct migrate_conn *c, const struct migrate_resume *res)
{
    uint8_t b[24];
    put64(b, res->session);
    put64(b + 8, res->ram_size);
    put64(b + 16, res->pages_sent);
    return migrate_send(c, MIGRATE_RESUME, 0, b, sizeof(b), NULL, 0);
}

int migrate_resume_parse(const struct migrate_frame *f, struct migrate_resume *res, char *err,
                         size_t errlen)
{
    if (f->type != MIGRATE_RESUME || f->len != 24)
        return errmsg(err, errlen, -EBADMSG, "%s frame of %u bytes where RESUME (24) was due",
                      migrate_frame_name(f->type), f->len);
    res->session = get64(f->data);
    res->ram_size = get64(f->data + 8);
    res->pages_sent = get64(f->data + 16);
    return 0;
}

int migrate_received_send(struct migrate_conn *c, const uint64_t *bitmap, uint64_t npages)
{
    size_t words = (size_t)((npages + 63) / 64);
    uint64_t *le = malloc(words ? words * 8 : 8);
    if (!le)
        return -ENOMEM;
    for (size_t i = 0; i < words; i++)
        le[i] = htole64(bitmap[i]);
    uint8_t h[8];
    put64(h, npages);
    int r = migrate_send(c, MIGRATE_RECEIVED, 0, h, 8, le, words * 8);
    free(le);
    return r;
}

int migrate_received_parse(const struct migrate_frame *f, uint64_t npages, uint64_t *bitmap,
                           char *err, size_t errlen)
{
    size_t words = (size_t)((npages + 63) / 64);
    if (f->type != MIGRATE_RECEIVED || f->len < 8)
        return errmsg(err, errlen, -EBADMSG, "%s frame of %u bytes where RECEIVED was due",
                      migrate_frame_name(f->type), f->len);
    uint64_t n = get64(f->data);
    if (n != npages)
        return errmsg(err, errlen, -EBADMSG, "RECEIVED for %llu pages; RAM has %llu",
                      (unsigned long long)n, (unsigned long long)npages);
    if (f->len != 8 + words * 8)
        return errmsg(err, errlen, -EBADMSG, "RECEIVED frame of %u bytes for %llu pages", f->len,
                      (unsigned long long)npages);
    for (size_t i = 0; i < words; i++)
        bitmap[i] = get64(f->data + 8 + 8 * i);
    if (npages % 64 && bitmap[words - 1] >> (npages % 64))
        return errmsg(err, errlen, -EBADMSG, "RECEIVED has pages beyond RAM (%llu pages)",
                      (unsigned long long)npages);
    return 0;
}

/* ---- disk chunks ---- */

int migrate_disk_send(struct migrate_conn *c, uint32_t disk, uint64_t offset, uint64_t len,
                      const void *data)
{
    uint8_t h[MIGRATE_DISK_HDR];
    if (data && (len == 0 || len > MIGRATE_DISK_CHUNK_MAX))
        return -EINVAL;
    put32(h, disk);
    put32(h + 4, data ? 0 : MIGRATE_DISK_ZERO);
    put64(h + 8, offset);
    put64(h + 16, len);
    return migrate_send(c, MIGRATE_DISK, 0, h, sizeof(h), data, data ? (size_t)len : 0);
}

int migrate_disk_parse(const struct migrate_frame *f, const uint64_t *sizes, unsigned ndisks,
                       struct migrate_disk_chunk *d, char *err, size_t errlen)
{
    if (f->len < MIGRATE_DISK_HDR)
        return errmsg(err, errlen, -EBADMSG, "DISK frame of %u bytes", f->len);
    uint32_t flags = get32(f->data + 4);
    d->disk = get32(f->data);
    d->zero = flags & MIGRATE_DISK_ZERO;
    d->offset = get64(f->data + 8);
    d->len = get64(f->data + 16);
    d->data = d->zero ? NULL : f->data + MIGRATE_DISK_HDR;
    if (flags & ~MIGRATE_DISK_ZERO)
        return errmsg(err, errlen, -EBADMSG, "DISK frame with unknown flags %#x", flags);
    if (d->disk >= ndisks || !sizes[d->disk])
        return errmsg(err, errlen, -EBADMSG, "DISK frame for disk %u, which is not copied here "
                      "(%u disks)", d->disk, ndisks);
    uint64_t size = sizes[d->disk];
    if (d->len == 0 || d->offset > size || d->len > size - d->offset || d->offset % 512 ||
        (d->len % 512 && d->offset + d->len != size))
        return errmsg(err, errlen, -EBADMSG, "DISK frame for bytes %llu+%llu of disk %u (%llu "
                      "bytes, 512-byte aligned)", (unsigned long long)d->offset,
                      (unsigned long long)d->len, d->disk, (unsigned long long)size);
    uint64_t want = d->zero ? 0 : d->len;
    if ((!d->zero && d->len > MIGRATE_DISK_CHUNK_MAX) || f->len != MIGRATE_DISK_HDR + want)
        return errmsg(err, errlen, -EBADMSG, "DISK frame of %u bytes for %llu bytes of %s",
                      f->len, (unsigned long long)d->len, d->zero ? "zeros" : "data");
    return 0;
}
