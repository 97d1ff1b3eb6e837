/* Fuzz target: the state format's reader (src/state) and every component's
 * load (PLIC, ACLINT, UART, goldfish RTC, test finisher, harts 0 and 1,
 * virtio-mmio with virtio-rng as instance 0, virtio-console as 1,
 * virtio-net as 2 (over a thread-less vnet-header backend), virtio-vsock
 * as 3, virtio-balloon as 4; and the user network backend's libslirp state,
 * "net-user"[2], into a backend that is not started).
 *
 * Input: a state stream. It is opened as it is (from memory and from a
 * memfd: both must agree), and again with every section CRC and the end
 * record recomputed, so that mutated payloads reach the loads past the
 * checksums. Seeds (tests/fuzz/corpus/state/) are snapshots written by
 * `build/tests/test_state_devices --write-seeds DIR` of PLICs and ACLINTs
 * with 2 harts, the rest single instances, and by test_virtio_state,
 * test_virtio_net, test_virtio_vsock and test_virtio_balloon with the same
 * option.
 *
 * Checks:
 *   - the reader fails only with -EBADMSG / -ENOTSUP / -EFBIG and a
 *     one-line message; never reads out of bounds (ASan);
 *   - each load returns 0 or a negative errno with a one-line "state: "
 *     message;
 *   - a load that succeeds is canonical: saving the component again gives
 *     the same payload bytes (the ACLINT's mtime excepted: it must not go
 *     backwards and not jump by more than a minute; vsock's CID and owed
 *     reset, which a load sets from the device; the balloon's statistics
 *     age; a transport section with fewer queues than the device, from a
 *     build before virtio-net's control queue, comes back with the
 *     missing queues unconfigured);
 *   - a loaded hart then runs (a small budget) without crashing;
 *   - a loaded virtio device (polled, created once over the fuzz RAM and
 *     reset before each input) then serves its rings as restored. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/hart.h"
#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/sifive_test.h"
#include "dev/uart16550.h"
#include "fuzz_state_util.h"
#include "fuzz_util.h"
#include "mem/guest_mem.h"
#include "state/state.h"
#include "net/net.h"
#include "virtio/balloon.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define NHARTS   2

static struct guest_mem mem;
static struct timebase tb;
static struct hart *harts[NHARTS];
static int memfd = -1;
static struct virtio_dev *vrng, *vcon, *vnet, *vvsock, *vbal;
static struct virtio_console *con;
static struct virtio_balloon *bal;
static struct net_backend *user;   /* not started: no thread */

/* A vnet-header backend without a thread: frames sent are dropped. */
static int nb_start(struct net_backend *b, const struct net_rx_port *p) { (void)b; (void)p; return 0; }
static int nb_send(struct net_backend *b, const struct iovec *iov, int n) { (void)b; (void)iov; (void)n; return 0; }
static void nb_rx_ready(struct net_backend *b) { (void)b; }
static int nb_offload(struct net_backend *b, unsigned o) { (void)b; (void)o; return 0; }
static void nb_close(struct net_backend *b) { (void)b; }
static const struct net_backend_ops nb_ops = {
    .name = "fake", .start = nb_start, .send = nb_send, .rx_ready = nb_rx_ready,
    .set_offload = nb_offload, .close = nb_close,
};
static struct net_backend nb = { .ops = &nb_ops, .vnet_hdr = true };

static void noop_irq(void *c, unsigned irq, bool level);
static size_t take_all(void *o, const uint8_t *b, size_t n) { (void)o; (void)b; return n; }

static void setup(void)
{
    if (harts[0])
        return;
    FUZZ_SETUP(guest_mem_init(&mem, RAM_BASE, RAM_SIZE) == 0);
    timebase_init(&tb);
    for (unsigned i = 0; i < NHARTS; i++) {
        FUZZ_SETUP(posix_memalign((void **)&harts[i], 4096, sizeof(*harts[i])) == 0);
        FUZZ_SETUP(hart_init(harts[i], i, &mem, &tb, RAM_BASE) == 0);
    }
    char path[64];
    memfd = fuzz_memfd("state", path, sizeof(path));
    /* Created once: the MMIO table only grows. Polled: deterministic. */
    struct irq_line line = { .set_level = noop_irq };
    struct virtio_console_host ch = { .output = take_all };
    FUZZ_SETUP(virtio_rng_create(&mem, 0x10001000, line, &vrng) == 0);
    FUZZ_SETUP(virtio_console_create(&mem, 0x10002000, line, &ch, &vcon, &con) == 0);
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };
    FUZZ_SETUP(virtio_net_create(&mem, 0x10003000, line, &nb, mac, &vnet) == 0);
    char vpath[64], e[256];
    snprintf(vpath, sizeof(vpath), "/tmp/nimbus-fuzz-state-%d.sock", (int)getpid());
    FUZZ_SETUP(virtio_vsock_create(&mem, 0x10004000, line, 3, vpath, &vvsock, e, sizeof(e)) == 0);
    struct virtio_balloon_options bo = { .deflate_on_oom = true, .reporting = true };
    FUZZ_SETUP(virtio_balloon_create(&mem, 0x10005000, line, &bo, &bal, &vbal) == 0);
    struct net_user_options uo = { .nfwd = 0 };
    FUZZ_SETUP(net_user_open(&uo, &user, e, sizeof(e)) == 0);
    virtio_mmio_set_polled(vrng);
    virtio_mmio_set_polled(vcon);
    virtio_mmio_set_polled(vnet);
    virtio_mmio_set_polled(vvsock);
    virtio_mmio_set_polled(vbal);
}

static void check_msg(int ret, const char *err, const char *what)
{
    FUZZ_CHECK(ret < 0, "%s: %d", what, ret);
    FUZZ_CHECK(err[0] && !strchr(err, '\n') && !strncmp(err, "state: ", 7),
               "%s: bad message '%s'", what, err);
}

/* The payload of tag[inst] in a stream the writer just made. */
static void resaved(struct state_writer *w, const char *tag, uint32_t inst,
                    const struct state_section *orig, size_t skip_from, size_t skip_len)
{
    char err[256] = "";
    struct state_reader r;
    struct state_section s;
    size_t len;
    FUZZ_CHECK(state_writer_finish(w, err, sizeof(err)) == 0, "%s: save: %s", tag, err);
    const uint8_t *d = state_writer_data(w, &len);
    FUZZ_CHECK(state_reader_open_mem(&r, d, len, err, sizeof(err)) == 0, "%s: reopen: %s", tag, err);
    FUZZ_CHECK(state_reader_section(&r, tag, inst, UINT16_MAX, &s, err, sizeof(err)) == 0, "%s", err);
    FUZZ_CHECK(s.len == orig->len, "%s[%u]: saved %u bytes, loaded %u", tag, inst, s.len, orig->len);
    for (uint32_t i = 0; i < s.len; i++)
        if (i < skip_from || i >= skip_from + skip_len)
            FUZZ_CHECK(s.data[i] == orig->data[i], "%s[%u]: byte %u saved 0x%02x, loaded 0x%02x",
                       tag, inst, i, s.data[i], orig->data[i]);
    state_reader_free(&r);
    state_writer_free(w);
}

static void noop_irq(void *c, unsigned irq, bool level) { (void)c; (void)irq; (void)level; }
static void noop_ext(void *o, unsigned h, bool s, bool l) { (void)o; (void)h; (void)s; (void)l; }
static void noop_msip(void *o, unsigned h, bool l) { (void)o; (void)h; (void)l; }
static void noop_cmp(void *o, unsigned h, uint64_t v) { (void)o; (void)h; (void)v; }
static void noop_tx(void *o, const uint8_t *b, size_t n) { (void)o; (void)b; (void)n; }
static void noop_fin(void *o, enum finisher_action a, int c) { (void)o; (void)a; (void)c; }

static bool section_of(const struct state_reader *r, const char *tag, uint32_t inst,
                       struct state_section *s)
{
    char err[256];
    return state_reader_section(r, tag, inst, UINT16_MAX, s, err, sizeof(err)) == 0;
}

/* Transport instance `inst` into `dev` (reset first: every input starts
 * from power-up). */
static bool same_but(const struct state_section *a, const struct state_section *b, size_t from,
                     size_t n)
{
    if (a->len != b->len)
        return false;
    for (uint32_t i = 0; i < a->len; i++)
        if ((i < from || i >= from + n) && a->data[i] != b->data[i])
            return false;
    return true;
}

/* Saved again after a load: the same, or (a section with fewer queues
 * than the device) the same with the queue count raised and the missing
 * queues appended unconfigured (34 zero bytes each, virtio_mmio_save). */
static bool mmio_resaved(const struct state_section *now, const struct state_section *orig)
{
    if (now->len == orig->len)
        return !memcmp(now->data, orig->data, now->len);
    uint32_t nq_now, nq_orig;
    if (orig->len < 8 || now->len < orig->len)
        return false;
    memcpy(&nq_now, now->data + 4, 4);
    memcpy(&nq_orig, orig->data + 4, 4);
    if (nq_orig >= nq_now || now->len - orig->len != (size_t)(nq_now - nq_orig) * 34 ||
        memcmp(now->data, orig->data, 4) || memcmp(now->data + 8, orig->data + 8, orig->len - 8))
        return false;
    for (size_t i = orig->len; i < now->len; i++)
        if (now->data[i])
            return false;
    return true;
}

static void load_virtio(const struct state_reader *r, struct virtio_dev *dev, uint32_t inst,
                        const char *dev_tag, size_t skip_from, size_t skip_len)
{
    char err[256] = "";
    struct state_writer w;
    struct state_section orig, orig_dev;
    virtio_mmio_reset(dev);
    virtio_mmio_quiesce(dev);
    int ret = virtio_mmio_load(dev, r, inst, err, sizeof(err));
    if (ret == 0 && section_of(r, VIRTIO_MMIO_STATE_TAG, inst, &orig)) {
        bool has_dev = dev_tag && section_of(r, dev_tag, inst, &orig_dev);
        /* virtio-net saves its own backend's name: canonical only for a
         * stream from the same backend ("fake", no backend section). */
        if (has_dev && vnet == dev && !(orig_dev.len > 53 && orig_dev.data[48] == 4 &&
                                         !memcmp(orig_dev.data + 49, "fake", 4) && !orig_dev.data[53]))
            skip_len = SIZE_MAX;
        FUZZ_CHECK(!dev_tag || has_dev, "%s loaded without its section", dev_tag);
        state_writer_init_mem(&w);
        FUZZ_CHECK(virtio_mmio_save(dev, &w, inst) == 0, "virtio save");
        if (has_dev) {
            /* The device section too: copy the writer's stream first. */
            char e2[256];
            struct state_reader r2;
            size_t len;
            FUZZ_CHECK(state_writer_finish(&w, e2, sizeof(e2)) == 0, "virtio finish: %s", e2);
            const uint8_t *d = state_writer_data(&w, &len);
            FUZZ_CHECK(state_reader_open_mem(&r2, d, len, e2, sizeof(e2)) == 0, "reopen: %s", e2);
            struct state_section s2;
            FUZZ_CHECK(section_of(&r2, dev_tag, inst, &s2) &&
                       (skip_len == SIZE_MAX || same_but(&s2, &orig_dev, skip_from, skip_len)),
                       "%s[%u] saved differently", dev_tag, inst);
            FUZZ_CHECK(section_of(&r2, VIRTIO_MMIO_STATE_TAG, inst, &s2) && mmio_resaved(&s2, &orig),
                       "virtio-mmio[%u] saved differently", inst);
            state_reader_free(&r2);
            state_writer_free(&w);
        } else {
            resaved(&w, VIRTIO_MMIO_STATE_TAG, inst, &orig, 0, 0);
        }
        virtio_mmio_resume(dev);
        virtio_mmio_poll(dev, 16, 0);
    } else {
        if (ret)
            check_msg(ret, err, "virtio");
        virtio_mmio_resume(dev);
    }
}

static void load_all(const struct state_reader *r)
{
    char err[256];
    struct state_writer w;
    struct state_section orig;
    struct irq_line line = { .set_level = noop_irq };
    int ret;

    struct plic_host ph = { .set_external = noop_ext };
    struct plic *p;
    FUZZ_SETUP(plic_create(NULL, PLIC_VIRT_BASE, NHARTS, &ph, &p) == 0);
    err[0] = 0;
    if ((ret = plic_load(p, r, err, sizeof(err))) == 0 && section_of(r, "plic", 0, &orig)) {
        state_writer_init_mem(&w);
        FUZZ_CHECK(plic_save(p, &w) == 0, "plic save");
        resaved(&w, "plic", 0, &orig, 0, 0);
    } else if (ret) {
        check_msg(ret, err, "plic");
    }
    plic_destroy(p);

    struct aclint_host ah = { .set_msip = noop_msip, .set_mtimecmp = noop_cmp };
    struct aclint *a;
    FUZZ_SETUP(aclint_create(NULL, 0x2000000, NHARTS, &tb, &ah, &a) == 0);
    err[0] = 0;
    if ((ret = aclint_load(a, r, err, sizeof(err))) == 0 && section_of(r, "aclint", 0, &orig)) {
        uint64_t t0 = 0;
        for (int i = 0; i < 8; i++)
            t0 |= (uint64_t)orig.data[4 + i] << (8 * i);
        uint64_t now = timebase_now(&tb);
        FUZZ_CHECK(now >= t0 && now - t0 < 60 * TIMEBASE_HZ, "mtime %llu after loading %llu",
                   (unsigned long long)now, (unsigned long long)t0);
        state_writer_init_mem(&w);
        FUZZ_CHECK(aclint_save(a, &w) == 0, "aclint save");
        resaved(&w, "aclint", 0, &orig, 4, 8);
    } else if (ret) {
        check_msg(ret, err, "aclint");
    }
    aclint_destroy(a);

    struct uart16550_host uh = { .tx = noop_tx };
    struct uart16550 *u;
    FUZZ_SETUP(uart16550_create(NULL, 0x10000000, line, &uh, &u) == 0);
    err[0] = 0;
    if ((ret = uart16550_load(u, r, 0, err, sizeof(err))) == 0 && section_of(r, "uart16550", 0, &orig)) {
        state_writer_init_mem(&w);
        FUZZ_CHECK(uart16550_save(u, &w, 0) == 0, "uart save");
        resaved(&w, "uart16550", 0, &orig, 0, 0);
        uint8_t in[20] = { 0 };
        uart16550_receive(u, in, sizeof(in));
    } else if (ret) {
        check_msg(ret, err, "uart16550");
    }
    uart16550_destroy(u);

    struct goldfish_rtc *rtc;
    FUZZ_SETUP(goldfish_rtc_create(NULL, 0x101000, line, NULL, &rtc) == 0);
    err[0] = 0;
    if ((ret = goldfish_rtc_load(rtc, r, err, sizeof(err))) == 0 &&
        section_of(r, "goldfish_rtc", 0, &orig)) {
        state_writer_init_mem(&w);
        FUZZ_CHECK(goldfish_rtc_save(rtc, &w) == 0, "rtc save");
        resaved(&w, "goldfish_rtc", 0, &orig, 0, 0);
        goldfish_rtc_next_deadline_ns(rtc);
        goldfish_rtc_poll(rtc);
    } else if (ret) {
        check_msg(ret, err, "goldfish_rtc");
    }
    goldfish_rtc_destroy(rtc);

    struct sifive_test_host th = { .finish = noop_fin };
    struct sifive_test *t;
    FUZZ_SETUP(sifive_test_create(NULL, 0x100000, &th, &t) == 0);
    err[0] = 0;
    if ((ret = sifive_test_load(t, r, err, sizeof(err))))
        check_msg(ret, err, "sifive_test");
    sifive_test_destroy(t);

    load_virtio(r, vrng, 0, NULL, 0, 0);
    load_virtio(r, vcon, 1, VIRTIO_CONSOLE_STATE_TAG, 0, 0);
    load_virtio(r, vnet, 2, VIRTIO_NET_STATE_TAG, 0, 0);
    load_virtio(r, vvsock, 3, VIRTIO_VSOCK_STATE_TAG, 0, 9);   /* CID, reset owed */
    load_virtio(r, vbal, 4, VIRTIO_BALLOON_STATE_TAG, 10, 8);  /* statistics age */

    /* libslirp's state into the user backend (not started: no thread). */
    err[0] = 0;
    if ((ret = user->ops->load(user, r, 2, err, sizeof(err))) == 0 &&
        section_of(r, NET_USER_STATE_TAG, 2, &orig)) {
        state_writer_init_mem(&w);
        FUZZ_CHECK(user->ops->save(user, &w, 2) == 0, "net-user save");
        resaved(&w, NET_USER_STATE_TAG, 2, &orig, 0, 0);
    } else if (ret) {
        check_msg(ret, err, "net-user");
    }

    for (unsigned i = 0; i < NHARTS; i++) {
        struct hart *h = harts[i];
        hart_reset(h, RAM_BASE);
        atomic_store(&h->arch.state, HART_STARTED);
        err[0] = 0;
        if ((ret = hart_load(h, r, err, sizeof(err))) == 0 && section_of(r, "hart", i, &orig)) {
            state_writer_init_mem(&w);
            FUZZ_CHECK(hart_save(h, &w) == 0, "hart save");
            resaved(&w, "hart", i, &orig, 0, 0);
            hart_run(h, 64);
        } else if (ret) {
            check_msg(ret, err, "hart");
        }
    }
}

static void one(const uint8_t *data, size_t size, bool via_fd)
{
    char err[256] = "", err2[256] = "";
    struct state_reader r, r2;

    int ret = state_reader_open_mem(&r, data, size, err, sizeof(err));
    if (via_fd) {
        fuzz_memfd_set(memfd, data, size);
        FUZZ_SETUP(lseek(memfd, 0, SEEK_SET) == 0);
        int ret2 = state_reader_open_fd(&r2, memfd, err2, sizeof(err2));
        FUZZ_CHECK(ret2 == ret && !strcmp(err, err2), "fd %d '%s' vs memory %d '%s'", ret2, err2,
                   ret, err);
        if (!ret2)
            state_reader_free(&r2);
    }
    if (ret) {
        FUZZ_CHECK(ret == -EBADMSG || ret == -ENOTSUP || ret == -EFBIG, "open: %d", ret);
        check_msg(ret, err, "open");
        return;
    }
    load_all(&r);
    state_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    one(data, size, true);
    uint8_t *copy = fuzz_state_fixed_copy(data, size);
    if (copy) {
        one(copy, size, false);
        free(copy);
    }
    return 0;
}
