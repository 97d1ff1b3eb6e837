/* Snapshot sections of the virt board. See virt_state.h. */
#include "machine/virt_state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/errmsg.h"
#include "dev/aclint.h"
#include "dev/goldfish_rtc.h"
#include "dev/plic.h"
#include "dev/sifive_test.h"
#include "dev/sunxi_wdt.h"
#include "dev/uart16550.h"
#include "dev/vmgenid.h"
#include "virtio/virtio_mmio.h"

#define BOARD_PATH_MAX 4095u

/* Flag bits of the board section. */
enum {
    BOARD_FIRMWARE       = 1u << 0,   /* an M-mode --bios, not the built-in SBI */
    BOARD_KERNEL_RAW     = 1u << 1,
    BOARD_CONSOLE_VIRTIO = 1u << 2,
    BOARD_BALLOON        = 1u << 3,
    BOARD_DEFLATE_ON_OOM = 1u << 4,
    BOARD_REPORTING      = 1u << 5,
    BOARD_WATCHDOG       = 1u << 6,   /* v1.1: the sun6i watchdog */
    BOARD_FLAGS_ALL      = (1u << 7) - 1,
};

static void put_str(struct state_writer *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    /* 0xffff: no string (NULL), 0..BOARD_PATH_MAX: its bytes. */
    if (!s) {
        state_put_u16(w, 0xffff);
        return;
    }
    if (n > BOARD_PATH_MAX)
        n = BOARD_PATH_MAX;   /* the command line never takes longer ones */
    state_put_u16(w, (uint16_t)n);
    state_put_bytes(w, s, n);
}

/* A file path as an absolute one where it exists, so a restore from another
 * working directory finds it. */
static void put_path(struct state_writer *w, const char *path)
{
    char *abs = path ? realpath(path, NULL) : NULL;
    put_str(w, abs ? abs : path);
    free(abs);
}

int virt_config_save(const struct virt_config *c, uint64_t tohost, uint64_t fromhost,
                     struct state_writer *w)
{
    uint32_t flags = (c->bios ? BOARD_FIRMWARE : 0) | (c->kernel_raw ? BOARD_KERNEL_RAW : 0) |
                     (c->console_virtio ? BOARD_CONSOLE_VIRTIO : 0) |
                     (c->balloon ? BOARD_BALLOON : 0) |
                     (c->balloon_opts.deflate_on_oom ? BOARD_DEFLATE_ON_OOM : 0) |
                     (c->balloon_opts.reporting ? BOARD_REPORTING : 0) |
                     (c->watchdog ? BOARD_WATCHDOG : 0);
    state_begin(w, "board", 0, VIRT_BOARD_MAJOR, VIRT_BOARD_MINOR);
    state_put_u64(w, c->ram_size);
    state_put_u32(w, c->nharts);
    state_put_u32(w, flags);
    state_put_u32(w, c->balloon_opts.stats_interval_ms);
    state_put_u64(w, c->vsock_cid);
    put_str(w, c->vsock_cid ? c->vsock_path : NULL);
    put_path(w, c->kernel);
    put_path(w, c->initrd);
    put_str(w, c->append);
    put_path(w, c->bios);
    state_put_u64(w, tohost);
    state_put_u64(w, fromhost);
    state_put_u32(w, c->ndisks);
    for (unsigned i = 0; i < c->ndisks; i++) {
        put_path(w, c->disks[i].path);
        state_put_u8(w, (uint8_t)c->disks[i].opts.format);
        state_put_u8(w, c->disks[i].opts.readonly);
        state_put_u8(w, (uint8_t)c->disks[i].opts.cache);
    }
    state_put_u32(w, c->nnets);
    for (unsigned i = 0; i < c->nnets; i++) {
        const struct virt_net *n = &c->nets[i];
        state_put_u8(w, (uint8_t)n->kind);
        state_put_u8(w, n->has_mac);
        state_put_bytes(w, n->mac, 6);
        put_str(w, n->kind == VIRT_NET_TAP ? n->ifname : NULL);
        unsigned nfwd = n->kind == VIRT_NET_USER ? n->user.nfwd : 0;
        state_put_u32(w, nfwd);
        for (unsigned f = 0; f < nfwd; f++) {
            const struct net_hostfwd *h = &n->user.fwd[f];
            state_put_u8(w, h->udp);
            state_put_u32(w, h->host_addr);
            state_put_u16(w, h->host_port);
            state_put_u32(w, h->guest_addr);
            state_put_u16(w, h->guest_port);
        }
    }
    /* v1.1 */
    state_put_u8(w, (uint8_t)c->watchdog_action);
    state_put_u8(w, (uint8_t)c->panic_action);
    return state_end(w);
}

void virt_config_strings_free(struct virt_config_strings *strs)
{
    for (unsigned i = 0; i < strs->n; i++)
        free(strs->s[i]);
    strs->n = 0;
}

/* A string: -EBADMSG/-EINVAL through the section's error, else 0 with *out
 * NULL (none) or owned by strs. `max` excludes the NUL. */
static int get_str(struct state_section *s, struct virt_config_strings *strs, size_t max,
                   const char *what, const char **out, char *err, size_t errlen)
{
    uint16_t n;
    *out = NULL;
    if (!state_get_u16(s, &n))
        return state_section_done(s, err, errlen);
    if (n == 0xffff)
        return 0;
    if (n > max)
        return state_section_error(s, err, errlen, -EINVAL, "%s is %u bytes long (at most %zu)",
                                   what, n, max);
    if (strs->n == sizeof(strs->s) / sizeof(strs->s[0]))
        return state_section_error(s, err, errlen, -EINVAL, "too many strings");
    char *p = calloc(1, (size_t)n + 1);
    if (!p)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    strs->s[strs->n++] = p;
    if (!state_get_bytes(s, p, n))
        return state_section_done(s, err, errlen);
    if (memchr(p, 0, n))
        return state_section_error(s, err, errlen, -EINVAL, "%s holds a NUL byte", what);
    *out = p;
    return 0;
}

#define GET_STR(max, what, out)                                                   \
    do {                                                                          \
        if ((rc = get_str(&s, strs, (max), (what), &(out), err, errlen)))         \
            goto fail;                                                            \
    } while (0)

/* An error after the first string: the strings are freed (fail:). */
#define FAIL_WITH(e)                                                              \
    do {                                                                          \
        rc = (e);                                                                 \
        goto fail;                                                                \
    } while (0)

int virt_config_load(const struct state_reader *r, struct virt_config *c, uint64_t *tohost,
                     uint64_t *fromhost, struct virt_config_strings *strs, char *err,
                     size_t errlen)
{
    struct state_section s;
    memset(c, 0, sizeof(*c));
    memset(strs, 0, sizeof(*strs));
    int rc = state_reader_section(r, "board", 0, VIRT_BOARD_MAJOR, &s, err, errlen);
    if (rc)
        return rc;
    uint32_t nharts = 0, flags = 0, stats_ms = 0, ndisks = 0, nnets = 0;
    const char *vsock_path = NULL;
    state_get_u64(&s, &c->ram_size);
    state_get_u32(&s, &nharts);
    state_get_u32(&s, &flags);
    state_get_u32(&s, &stats_ms);
    state_get_u64(&s, &c->vsock_cid);
    GET_STR(sizeof(c->vsock_path) - 1, "the vsock socket path", vsock_path);
    GET_STR(BOARD_PATH_MAX, "the kernel path", c->kernel);
    GET_STR(BOARD_PATH_MAX, "the initrd path", c->initrd);
    GET_STR(BOARD_PATH_MAX, "the kernel command line", c->append);
    GET_STR(BOARD_PATH_MAX, "the firmware path", c->bios);
    state_get_u64(&s, tohost);
    state_get_u64(&s, fromhost);
    if (s.overrun)
        goto done;
    if (c->ram_size < VIRT_MIN_RAM || c->ram_size > VIRT_MAX_RAM ||
        (c->ram_size & (GUEST_PAGE_SIZE - 1)))
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "RAM size %llu is not a multiple "
                                      "of 4 KiB between %llu MiB and %llu GiB",
                                      (unsigned long long)c->ram_size,
                                      (unsigned long long)(VIRT_MIN_RAM >> 20),
                                      (unsigned long long)(VIRT_MAX_RAM >> 30)));
    if (nharts < 1 || nharts > VIRT_MAX_HARTS)
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "%u harts (1..%u)", nharts,
                                      VIRT_MAX_HARTS));
    if (flags & ~(uint32_t)BOARD_FLAGS_ALL)
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "unknown flags 0x%x", flags));
    if (c->vsock_cid && (c->vsock_cid < 3 || c->vsock_cid > 0xffffffffull || !vsock_path))
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "vsock CID %llu (3..2^32-1, with "
                                      "a socket path)", (unsigned long long)c->vsock_cid));
    if (!c->kernel && !c->bios)
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "neither a kernel nor firmware"));
    if ((flags & BOARD_FIRMWARE) != (c->bios ? BOARD_FIRMWARE : 0u))
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL,
                                      "the firmware flag and path disagree"));
    c->nharts = nharts;
    c->kernel_raw = flags & BOARD_KERNEL_RAW;
    c->console_virtio = flags & BOARD_CONSOLE_VIRTIO;
    c->balloon = flags & BOARD_BALLOON;
    c->balloon_opts.deflate_on_oom = flags & BOARD_DEFLATE_ON_OOM;
    c->balloon_opts.reporting = flags & BOARD_REPORTING;
    c->balloon_opts.stats_interval_ms = stats_ms;
    if (vsock_path)
        strcpy(c->vsock_path, vsock_path);

    state_get_u32(&s, &ndisks);
    if (ndisks > VIRT_MAX_DISKS)
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "%u disks (at most %u)", ndisks,
                                      VIRT_MAX_DISKS));
    c->ndisks = ndisks;
    for (unsigned i = 0; i < ndisks && !s.overrun; i++) {
        struct virt_disk *d = &c->disks[i];
        uint8_t format = 0, cache = 0;
        GET_STR(BOARD_PATH_MAX, "a disk path", d->path);
        state_get_u8(&s, &format);
        state_get_bool(&s, &d->opts.readonly);
        state_get_u8(&s, &cache);
        if (s.overrun || s.bad_bool)
            goto done;
        if (!d->path || format > BLOCK_FORMAT_QCOW2 || cache > BLOCK_CACHE_NONE)
            FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "disk %u: no path, or "
                                          "format %u or cache mode %u unknown", i, format,
                                          cache));
        d->opts.format = (enum block_format)format;
        d->opts.cache = (enum block_cache)cache;
    }
    state_get_u32(&s, &nnets);
    if (s.overrun)
        goto done;
    if (nnets > VIRT_MAX_NETS || ndisks + nnets > VIRT_VIRTIO_SLOTS - 1)
        FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "%u disks and %u network cards "
                                      "(at most %u together)", ndisks, nnets,
                                      VIRT_VIRTIO_SLOTS - 1));
    c->nnets = nnets;
    for (unsigned i = 0; i < nnets && !s.overrun; i++) {
        struct virt_net *n = &c->nets[i];
        uint8_t kind = 0;
        uint32_t nfwd = 0;
        const char *ifname = NULL;
        state_get_u8(&s, &kind);
        state_get_bool(&s, &n->has_mac);
        state_get_bytes(&s, n->mac, 6);
        GET_STR(sizeof(n->ifname) - 1, "a tap interface name", ifname);
        state_get_u32(&s, &nfwd);
        if (s.overrun || s.bad_bool)
            goto done;
        if (kind > VIRT_NET_TAP || (kind == VIRT_NET_TAP) != (ifname != NULL) ||
            (ifname && !*ifname) || nfwd > NET_MAX_HOSTFWD || (kind == VIRT_NET_TAP && nfwd))
            FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "network card %u: kind %u, "
                                          "interface or %u host forwards do not fit", i, kind,
                                          nfwd));
        if (n->has_mac && (n->mac[0] & 1))
            FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL,
                                          "network card %u: multicast MAC", i));
        n->kind = (enum virt_net_kind)kind;
        if (ifname)
            strcpy(n->ifname, ifname);
        n->user.nfwd = nfwd;
        for (unsigned f = 0; f < nfwd; f++) {
            struct net_hostfwd *h = &n->user.fwd[f];
            state_get_bool(&s, &h->udp);
            state_get_u32(&s, &h->host_addr);
            state_get_u16(&s, &h->host_port);
            state_get_u32(&s, &h->guest_addr);
            state_get_u16(&s, &h->guest_port);
        }
    }
    /* v1.1: the actions on a watchdog expiry and a guest panic (v1.0 had
     * neither a watchdog nor panic actions). */
    c->watchdog_action = GUEST_ACTION_RESET;
    c->panic_action = GUEST_ACTION_NONE;
    if (s.info->minor >= 1 && !s.overrun) {
        uint8_t wa = 0, pa = 0;
        state_get_u8(&s, &wa);
        state_get_u8(&s, &pa);
        if (!s.overrun && (wa > GUEST_ACTION_PAUSE || pa > GUEST_ACTION_PAUSE ||
                           !(GUEST_ACTIONS_WATCHDOG & (1u << wa)) ||
                           !(GUEST_ACTIONS_PANIC & (1u << pa))))
            FAIL_WITH(state_section_error(&s, err, errlen, -EINVAL, "watchdog action %u or "
                                          "panic action %u unknown", wa, pa));
        c->watchdog_action = (enum guest_action)wa;
        c->panic_action = (enum guest_action)pa;
    }
    c->watchdog = flags & BOARD_WATCHDOG;
done:
    rc = state_section_done(&s, err, errlen);
    if (rc)
        virt_config_strings_free(strs);
    return rc;
fail:
    virt_config_strings_free(strs);
    return rc;
}

int virt_save(struct virt_machine *m, struct state_writer *w, char *err, size_t errlen)
{
    if (!virt_is_paused(m))
        return errmsg(err, errlen, -EBUSY, "wrong state: the VM must be paused to be saved");
    int r = virt_config_save(&m->config, m->tohost, m->fromhost, w);
    for (unsigned i = 0; i < m->nharts && !r; i++) {
        r = hart_save(m->harts[i], w);
        if (r)
            return errmsg(err, errlen, r, "saving hart %u: %s", i, strerror(-r));
    }
    if (!r)
        r = plic_save(m->plic, w);
    if (!r)
        r = aclint_save(m->aclint, w);
    if (!r)
        r = uart16550_save(m->uart, w, 0);
    if (!r)
        r = goldfish_rtc_save(m->rtc, w);
    if (!r)
        r = sifive_test_save(m->finisher, w);
    if (!r)
        r = vmgenid_save(m->genid, w);
    if (!r && m->wdt)
        r = sunxi_wdt_save(m->wdt, w);
    if (r)
        return errmsg(err, errlen, r, "saving the board: %s", strerror(-r));
    for (unsigned slot = 0; slot < VIRT_VIRTIO_SLOTS; slot++) {
        if (!m->virtio[slot])
            continue;
        r = virtio_mmio_save(m->virtio[slot], w, slot);
        if (r == -ENOTSUP)
            return errmsg(err, errlen, r, "the virtio device in slot %u (0x%llx) can't be saved "
                          "yet", slot, (unsigned long long)(VIRT_VIRTIO_BASE + slot * VIRTIO_MMIO_SIZE));
        if (r)
            return errmsg(err, errlen, r, "saving virtio slot %u: %s", slot, strerror(-r));
    }
    return 0;
}

int virt_load(struct virt_machine *m, const struct state_reader *r, char *err, size_t errlen)
{
    int rc = 0;
    /* Guest time stands at the saved mtime (aclint_load) from here until
     * virt_resume(): the time between the load and the start is not the
     * guest's, nor is a migration's downtime. */
    pthread_mutex_lock(&m->pause_lock);
    timebase_stop(&m->timebase);
    pthread_mutex_unlock(&m->pause_lock);
    for (unsigned i = 0; i < m->nharts && !rc; i++)
        rc = hart_load(m->harts[i], r, err, errlen);
    if (!rc)
        rc = plic_load(m->plic, r, err, errlen);
    if (!rc)
        rc = aclint_load(m->aclint, r, err, errlen);   /* sets guest time */
    if (!rc)
        rc = uart16550_load(m->uart, r, 0, err, errlen);
    if (!rc)
        rc = goldfish_rtc_load(m->rtc, r, err, errlen);
    if (!rc)
        rc = sifive_test_load(m->finisher, r, err, errlen);
    if (!rc)
        rc = vmgenid_load(m->genid, r, err, errlen);
    if (!rc && m->wdt)
        rc = sunxi_wdt_load(m->wdt, r, err, errlen);   /* after the aclint: guest time */
    for (unsigned slot = 0; slot < VIRT_VIRTIO_SLOTS && !rc; slot++) {
        if (!m->virtio[slot])
            continue;
        /* Loaded quiesced: the devices take work again at virt_resume(). */
        virtio_mmio_quiesce(m->virtio[slot]);
        rc = virtio_mmio_load(m->virtio[slot], r, slot, err, errlen);
    }
    if (rc)
        return rc;
    pthread_mutex_lock(&m->pause_lock);
    m->paused = true;
    atomic_store(&m->pause_request, true);
    pthread_mutex_unlock(&m->pause_lock);
    return 0;
}
