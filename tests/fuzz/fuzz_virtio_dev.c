/* Fuzz target: the small virtio devices, one per input by a selector byte,
 * each driven through the virtio-mmio transport by the hostile driver of
 * fuzz_virtio.h (see there for the operations and the generic checks):
 *
 *   0  virtio-console (src/virtio/console.c). HOST: bytes typed on the host.
 *      Checks: the host's output is exactly the transmit chains' readable
 *      bytes, chain by chain in used order; what the receive buffers get
 *      is exactly the typed bytes, in order (as many as were taken).
 *   1  virtio-vsock (src/virtio/vsock.c), its host side unix sockets in a
 *      temporary directory, with listeners for guest ports 1024 and 1025.
 *      HOST: accept the guest's connections and write to one, connect a
 *      host client with "CONNECT PORT\n", read or close a host socket, or
 *      wait for the device's thread. Checks: every packet in the receive
 *      buffers is from CID 2 to the guest's CID, a stream packet of a
 *      known op, its len the used length less the header (at most
 *      VIRTIO_VSOCK_MAX_PKT), buf_alloc the device's; an event is
 *      TRANSPORT_RESET. The device's own thread serves the unix sockets:
 *      the target waits for its kicks (at most 200 ms per input), so a
 *      vsock input is deterministic only up to that thread's timing.
 *   2  virtio-balloon (src/virtio/balloon.c), options from the input.
 *      HOST: set the target, ask for statistics, read the info. Checks:
 *      inflate/deflate chains come back with length 0 and every PFN they
 *      carry is counted once (inflated, deflated or ignored); reported
 *      bytes are the reporting chains' lengths; the device writes no guest
 *      page but the ones inflated or reported (which read as zeros then).
 *
 * Input: u8 selector, u8 device options, then fuzz_virtio.h's setup and
 * operations. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_virtio.h"
#include "virtio/balloon.h"
#include "virtio/console.h"
#include "virtio/vsock.h"

static struct fv fv;

/* ---- virtio-console ---- */

#define CON_RX 0u
#define CON_TX 1u
#define CON_MAX (1u << 20)

static struct {
    struct virtio_console *con;
    uint8_t out[CON_MAX];          /* the host's output, not yet matched */
    size_t out_len, out_seen;      /* bytes output / matched with chains */
    uint8_t in[1u << 16];          /* typed and taken, not yet delivered */
    size_t in_len, in_seen;
    bool rx_unsure;
} con;

/* Takes everything: the device never has to hold a chain back here. */
static size_t con_output(void *opaque, const uint8_t *buf, size_t n)
{
    (void)opaque;
    for (size_t i = 0; i < n; i++) {   /* every byte read: ASan sees a bad buffer */
        if (con.out_len < CON_MAX)
            con.out[con.out_len] = buf[i];
        con.out_len++;
    }
    return n;
}

static int con_create(struct fv *f, struct fuzz_in *in)
{
    (void)fuzz_u8(in);   /* no options */
    con.con = NULL;
    con.out_len = con.out_seen = con.in_len = con.in_seen = 0;
    con.rx_unsure = false;
    struct virtio_console_host host = { .output = con_output };
    FUZZ_SETUP(virtio_console_create(&f->mem, FV_MMIO_BASE, (struct irq_line){ 0 }, &host,
                                     &f->vdev, &con.con) == 0);
    f->nq = 2;
    return 0;
}

static int con_keeps(struct fv *f, unsigned q)
{
    (void)f;
    return q == CON_TX ? 0 : -1;
}

static void con_used(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len)
{
    static uint8_t buf[VQ_MAX_SIZE * 65536u / 16];
    if (q == CON_TX) {
        FUZZ_CHECK(len == 0, "console transmit chain used with length %u", len);
        size_t n = e->c.out_len;
        FUZZ_CHECK(con.out_seen + n <= con.out_len, "console: %zu bytes of output missing",
                   con.out_seen + n - con.out_len);
        if (con.out_len <= CON_MAX && n <= sizeof(buf)) {
            fv_chain_read(f, &e->c, false, 0, buf, n);
            FUZZ_CHECK(memcmp(buf, con.out + con.out_seen, n) == 0,
                       "console output differs from the transmit chain");
        }
        con.out_seen += n;
        return;
    }
    if (e->shared)
        con.rx_unsure = true;   /* the same buffers twice: the later write wins */
    if (con.rx_unsure)
        return;
    FUZZ_CHECK(len <= con.in_len - con.in_seen, "console: %u bytes received, %zu were typed", len,
               con.in_len - con.in_seen);
    fv_chain_read(f, &e->c, true, 0, buf, len);
    FUZZ_CHECK(memcmp(buf, con.in + con.in_seen, len) == 0, "console input reordered or changed");
    con.in_seen += len;
}

/* HOST: u8 n and n bytes typed (n 0xff: 5000 bytes, more than the buffer). */
static void con_host(struct fv *f, struct fuzz_in *in)
{
    static uint8_t buf[5000];
    unsigned n = fuzz_u8(in);
    for (unsigned i = 0; i < n && n != 0xff; i++)
        buf[i] = fuzz_u8(in);
    if (n == 0xff) {
        for (unsigned i = 0; i < sizeof(buf); i++)
            buf[i] = (uint8_t)(i * 7);
        n = sizeof(buf);
    }
    size_t took = virtio_console_input(con.con, buf, n);
    FUZZ_CHECK(took <= n, "console took %zu of %u bytes", took, n);
    if (con.in_len + took > sizeof(con.in)) {
        con.rx_unsure = true;
    } else {
        memcpy(con.in + con.in_len, buf, took);
        con.in_len += took;
    }
    fv_settle(f, -1, false, 0);
}

static void con_finish(struct fv *f)
{
    FUZZ_CHECK(f->chaos || con.out_seen == con.out_len,
               "console: %zu bytes output that no transmit chain carried",
               con.out_len - con.out_seen);
}

static void con_destroy(struct fv *f)
{
    virtio_mmio_destroy(f->vdev);
}

/* ---- virtio-vsock ---- */

#define VS_RX 0u
#define VS_TX 1u
#define VS_EVENT 2u
#define VS_HDR 44u
#define VS_MAX_FDS 8

static struct {
    char dir[64], path[128];
    int listen[2];               /* PATH_1024, PATH_1025 */
    int fds[VS_MAX_FDS];
    unsigned nfds;
    uint64_t cid;
    unsigned wait_ms;            /* left for this input: bounds its time */
    unsigned tx_chains;          /* made available on tx this input */
} vs = { .listen = { -1, -1 } };

static void vs_keep(int fd)
{
    if (fd < 0)
        return;
    if (vs.nfds == VS_MAX_FDS) {
        close(fd);
        return;
    }
    vs.fds[vs.nfds++] = fd;
}

static void vs_accept_all(bool keep)
{
    for (int l = 0; l < 2; l++) {
        int fd;
        while ((fd = accept4(vs.listen[l], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            if (keep)
                vs_keep(fd);
            else
                close(fd);
        }
    }
}

/* At exit: the temporary directory and its sockets go. */
static void vs_cleanup(void)
{
    for (int l = 0; l < 2; l++) {
        char p[160];
        snprintf(p, sizeof(p), "%s_%d", vs.path, 1024 + l);
        unlink(p);
    }
    unlink(vs.path);
    rmdir(vs.dir);
}

static int vs_create(struct fv *f, struct fuzz_in *in)
{
    if (!vs.dir[0]) {
        snprintf(vs.dir, sizeof(vs.dir), "/tmp/nimbus-fuzz-vsock-XXXXXX");
        FUZZ_SETUP(mkdtemp(vs.dir));
        snprintf(vs.path, sizeof(vs.path), "%s/v.sock", vs.dir);
        for (int l = 0; l < 2; l++) {
            struct sockaddr_un sa = { .sun_family = AF_UNIX };
            snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%d", vs.path, 1024 + l);
            vs.listen[l] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            FUZZ_SETUP(vs.listen[l] >= 0);
            FUZZ_SETUP(bind(vs.listen[l], (struct sockaddr *)&sa, sizeof(sa)) == 0);
            FUZZ_SETUP(listen(vs.listen[l], 64) == 0);
        }
        atexit(vs_cleanup);
    }
    vs.cid = 3 + fuzz_u8(in);
    vs.nfds = 0;
    vs.wait_ms = 200;
    vs.tx_chains = 0;
    char err[256];
    int r = virtio_vsock_create(&f->mem, FV_MMIO_BASE, (struct irq_line){ 0 }, vs.cid, vs.path,
                                &f->vdev, err, sizeof(err));
    if (r)
        fprintf(stderr, "vsock: %s\n", err);
    FUZZ_SETUP(r == 0);
    f->nq = 3;
    return 0;
}

static void vs_destroy(struct fv *f)
{
    for (unsigned i = 0; i < vs.nfds; i++)
        close(vs.fds[i]);
    vs.nfds = 0;
    virtio_mmio_destroy(f->vdev);
    vs_accept_all(false);   /* the guest's connections still in the backlog */
}

static int vs_keeps(struct fv *f, unsigned q)
{
    (void)f;
    /* rx and event wait for packets. tx waits while its ring of RST replies
     * is full (vsock.h); each tx packet adds at most one, so before
     * VIRTIO_VSOCK_RST_RING of them it must drain. */
    return q == VS_TX && vs.tx_chains < VIRTIO_VSOCK_RST_RING ? 0 : -1;
}

static void vs_avail(struct fv *f, unsigned q, const struct fv_entry *e)
{
    (void)f, (void)e;
    if (q == VS_TX)
        vs.tx_chains++;
}

static void vs_used(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len)
{
    if (q == VS_TX) {
        FUZZ_CHECK(len == 0, "vsock tx chain used with length %u", len);
        return;
    }
    if (e->shared)
        return;
    if (q == VS_EVENT) {
        uint32_t id = 0;
        FUZZ_CHECK(len <= 4, "vsock event of %u bytes", len);
        fv_chain_read(f, &e->c, true, 0, &id, len);
        FUZZ_CHECK(len < 4 || id == VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, "vsock event %u", id);
        return;
    }
    if (len == 0)
        return;   /* a buffer too small for a header, given back empty */
    struct virtio_vsock_hdr h;
    FUZZ_CHECK(len >= VS_HDR, "vsock rx packet of %u bytes", len);
    fv_chain_read(f, &e->c, true, 0, &h, sizeof(h));
    FUZZ_CHECK(h.src_cid == VIRTIO_VSOCK_HOST_CID && h.dst_cid == vs.cid,
               "vsock rx packet from CID %llu to %llu", (unsigned long long)h.src_cid,
               (unsigned long long)h.dst_cid);
    FUZZ_CHECK(h.type == VIRTIO_VSOCK_TYPE_STREAM, "vsock rx packet type %u", h.type);
    FUZZ_CHECK(h.op >= VIRTIO_VSOCK_OP_REQUEST && h.op <= VIRTIO_VSOCK_OP_CREDIT_UPDATE,
               "vsock rx packet op %u", h.op);
    FUZZ_CHECK(h.len == len - VS_HDR && h.len <= VIRTIO_VSOCK_MAX_PKT,
               "vsock rx packet len %u in %u bytes", h.len, len);
    FUZZ_CHECK(h.op == VIRTIO_VSOCK_OP_RW || h.len == 0, "vsock op %u with payload", h.op);
    FUZZ_CHECK(h.op == VIRTIO_VSOCK_OP_RST || h.buf_alloc == VIRTIO_VSOCK_BUF_ALLOC,
               "vsock buf_alloc %u", h.buf_alloc);
}

/* HOST: u8 kind, u8 arg, u8 n, n bytes. */
static void vs_host(struct fv *f, struct fuzz_in *in)
{
    uint8_t kind = fuzz_u8(in), arg = fuzz_u8(in);
    unsigned n = fuzz_u8(in);
    uint8_t buf[256];
    for (unsigned i = 0; i < n; i++)
        buf[i] = fuzz_u8(in);
    switch (kind % 4) {
    case 0:   /* the guest's connections: accept, write to one */
        vs_accept_all(true);
        if (vs.nfds && n) {
            ssize_t w = send(vs.fds[arg % vs.nfds], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w;
        }
        break;
    case 1: { /* a host client */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vs.path);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            char line[32];
            int k = arg & 1 ? snprintf(line, sizeof(line), "CONNECT %u\n", 1000u + (arg >> 1))
                            : snprintf(line, sizeof(line), "%.*s\n", (int)(n < 20 ? n : 20), buf);
            ssize_t w = send(fd, line, (size_t)k, MSG_NOSIGNAL);
            (void)w;
            fcntl(fd, F_SETFL, O_NONBLOCK);
            vs_keep(fd);
        } else if (fd >= 0) {
            close(fd);
        }
        break;
    }
    case 2:   /* read what the guest sent, or close / half-close */
        if (vs.nfds) {
            unsigned i = arg % vs.nfds;
            char sink[4096];
            if (arg & 0x80) {
                shutdown(vs.fds[i], (arg & 0x40) ? SHUT_WR : SHUT_RDWR);
            } else if (arg & 0x40) {
                close(vs.fds[i]);
                vs.fds[i] = vs.fds[--vs.nfds];
            } else {
                while (recv(vs.fds[i], sink, sizeof(sink), MSG_DONTWAIT) > 0)
                    ;
            }
        }
        break;
    case 3:
        break;
    }
    /* The device's thread serves the sockets: give it a moment to kick. */
    unsigned wait = 2 + (kind % 4 == 3 ? arg % 8 : 0);
    if (wait > vs.wait_ms)
        wait = vs.wait_ms;
    vs.wait_ms -= wait;
    fv_settle(f, -1, false, wait);
}

/* ---- virtio-balloon ---- */

#define PFN_SHIFT 12

static struct {
    struct virtio_balloon *b;
    struct virtio_balloon_options opts;
    uint64_t pfns;                  /* PFNs in used inflate/deflate chains */
    uint64_t reported;              /* bytes in used reporting chains */
} bal;

static int bal_create(struct fv *f, struct fuzz_in *in)
{
    uint8_t o = fuzz_u8(in);
    memset(&bal, 0, sizeof(bal));
    bal.opts.deflate_on_oom = o & 1;
    bal.opts.reporting = o & 2;
    FUZZ_SETUP(virtio_balloon_create(&f->mem, FV_MMIO_BASE, (struct irq_line){ 0 }, &bal.opts,
                                     &bal.b, &f->vdev) == 0);
    f->nq = bal.opts.reporting ? 4 : 3;
    return 0;
}

static void bal_destroy(struct fv *f)
{
    virtio_mmio_destroy(f->vdev);
}

/* §5.5.2: inflateq, deflateq, then statsq and reporting_vq when negotiated. */
enum { R_INFLATE, R_DEFLATE, R_STATS, R_REPORT, R_NONE };
static int bal_role(const struct fv *f, unsigned q)
{
    if (q < 2)
        return (int)q;
    unsigned next = 2;
    if (f->features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) {
        if (q == next)
            return R_STATS;
        next++;
    }
    if ((f->features & (1ull << VIRTIO_BALLOON_F_REPORTING)) && q == next)
        return R_REPORT;
    return R_NONE;
}

static int bal_keeps(struct fv *f, unsigned q)
{
    switch (bal_role(f, q)) {
    case R_STATS: return 1;   /* the statistics buffer it holds */
    case R_NONE: return -1;   /* no such queue: nothing is served */
    default: return 0;
    }
}

/* Pages the device may discard (they then read as zeros) must not be the
 * rings or indirect tables: the driver would have given away its own
 * queue. Marks them writable for the canary; chaos if they hit the rings. */
static void bal_may_discard(struct fv *f, uint64_t pa, uint64_t len)
{
    uint64_t first = (pa + 4095) & ~4095ull, end = (pa + len) & ~4095ull;
    if (first >= end || !fv_in_ram(first, end - first))
        return;
    fv_allow(f, first, end - first);
    if (first < FV_RAM_BASE + FV_DATA)
        f->chaos = true;
}

static void bal_avail(struct fv *f, unsigned q, const struct fv_entry *e)
{
    if (!e->valid)
        return;
    int role = bal_role(f, q);
    if (role == R_INFLATE) {
        for (uint64_t off = 0; off + 4 <= e->c.out_len; off += 4) {
            uint32_t pfn;
            fv_chain_read(f, &e->c, false, off, &pfn, 4);
            bal_may_discard(f, (uint64_t)pfn << PFN_SHIFT, 1ull << PFN_SHIFT);
        }
    } else if (role == R_REPORT) {
        for (unsigned i = 0; i < e->c.nbuf; i++)
            bal_may_discard(f, e->c.buf[i].pa, e->c.buf[i].len);
    }
}

static void bal_used(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len)
{
    FUZZ_CHECK(len == 0, "balloon queue %u: used length %u", q, len);
    int role = bal_role(f, q);
    if (role == R_INFLATE || role == R_DEFLATE)
        bal.pfns += e->c.out_len / 4;
    else if (role == R_REPORT)
        bal.reported += e->c.out_len + e->c.in_len;
}

/* HOST: u8 kind, u32 value. */
static void bal_host(struct fv *f, struct fuzz_in *in)
{
    uint8_t kind = fuzz_u8(in);
    uint32_t v = (uint32_t)fuzz_u64(in, 4);
    struct virtio_balloon_info info;
    switch (kind % 3) {
    case 0:
        virtio_balloon_set_target(bal.b, v);
        virtio_balloon_get_info(bal.b, &info);
        FUZZ_CHECK(info.target_pages == v, "balloon target %llu, set %u",
                   (unsigned long long)info.target_pages, v);
        break;
    case 1:
        virtio_balloon_request_stats(bal.b);
        break;
    case 2:
        virtio_balloon_get_info(bal.b, &info);
        FUZZ_CHECK(!(info.features & ~f->features), "balloon features 0x%llx, negotiated 0x%llx",
                   (unsigned long long)info.features, (unsigned long long)f->features);
        break;
    }
    fv_settle(f, -1, false, 0);
}

static void bal_finish(struct fv *f)
{
    if (f->chaos)
        return;
    struct virtio_balloon_info info;
    virtio_balloon_get_info(bal.b, &info);
    FUZZ_CHECK(info.inflated_pages + info.deflated_pages + info.ignored_pfns == bal.pfns,
               "balloon counted %llu + %llu + %llu PFNs, the chains carried %llu",
               (unsigned long long)info.inflated_pages, (unsigned long long)info.deflated_pages,
               (unsigned long long)info.ignored_pfns, (unsigned long long)bal.pfns);
    FUZZ_CHECK(info.reported_bytes == bal.reported, "balloon reported %llu bytes, chains %llu",
               (unsigned long long)info.reported_bytes, (unsigned long long)bal.reported);
}

/* ---- the selector ---- */

static const struct fv_dev devs[3] = {
    { .name = "console", .create = con_create, .destroy = con_destroy, .keeps = con_keeps,
      .used = con_used, .host = con_host, .finish = con_finish },
    { .name = "vsock", .create = vs_create, .destroy = vs_destroy, .keeps = vs_keeps,
      .avail = vs_avail, .used = vs_used, .host = vs_host },
    { .name = "balloon", .create = bal_create, .destroy = bal_destroy, .keeps = bal_keeps,
      .avail = bal_avail, .used = bal_used, .host = bal_host, .finish = bal_finish },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fv_run(&fv, &devs[data[0] % 3], data + 1, size - 1);
    return 0;
}
