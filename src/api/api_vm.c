/* The API's requests served on a virt machine. See api_vm.h. */
#include "api/api_vm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errmsg.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/vsock.h"
#include "vm/agent_client.h"
#include "vm/migrate.h"
#include "vm/snapshot.h"

/* The VmRSS line of /proc/self/status, in KiB; -1 if unreadable. */
static long long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

#define MIB_PAGES (1ull << (20 - VIRTIO_BALLOON_PFN_SHIFT))

static int set_target(struct virt_machine *m, uint64_t mib, json_t *reply, char *err,
                      size_t errlen)
{
    uint64_t ram_mib = m->config.ram_size >> 20;
    if (mib > ram_mib)
        return errmsg(err, errlen, -EINVAL, "target_mib %llu is more than the guest's RAM "
                      "(%llu MiB)", (unsigned long long)mib, (unsigned long long)ram_mib);
    virtio_balloon_set_target(m->balloon, (uint32_t)(mib * MIB_PAGES));
    json_object_set_new(reply, "target_mib", json_integer((json_int_t)mib));
    return 0;
}

static void balloon_stats(struct virt_machine *m, json_t *reply)
{
    struct virtio_balloon_info info;
    virtio_balloon_get_info(m->balloon, &info);
    /* The figures in this reply are the last ones; ask for fresh ones for
     * the next (when the interval timer is slow or off). */
    virtio_balloon_request_stats(m->balloon);
    json_object_set_new(reply, "target_mib", json_integer((json_int_t)(info.target_pages / MIB_PAGES)));
    json_object_set_new(reply, "actual_mib", json_integer((json_int_t)(info.actual_pages / MIB_PAGES)));
    json_object_set_new(reply, "actual_pages", json_integer((json_int_t)info.actual_pages));
    json_t *feat = json_object();
    json_object_set_new(feat, "stats", json_boolean(info.features & (1ull << VIRTIO_BALLOON_F_STATS_VQ)));
    json_object_set_new(feat, "deflate_on_oom",
                        json_boolean(info.features & (1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM)));
    json_object_set_new(feat, "reporting", json_boolean(info.features & (1ull << VIRTIO_BALLOON_F_REPORTING)));
    json_object_set_new(reply, "features", feat);
    json_object_set_new(reply, "inflated_pages", json_integer((json_int_t)info.inflated_pages));
    json_object_set_new(reply, "deflated_pages", json_integer((json_int_t)info.deflated_pages));
    json_object_set_new(reply, "reported_mib", json_integer((json_int_t)(info.reported_bytes >> 20)));
    if (!info.stats_valid) {
        json_object_set_new(reply, "stats", json_null());
        return;
    }
    json_t *stats = json_object();
    for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
        if (info.stat_present[t])
            json_object_set_new(stats, virtio_balloon_stat_name(t), json_integer((json_int_t)info.stat[t]));
    json_object_set_new(reply, "stats", stats);
    json_object_set_new(reply, "stats_age_ms", json_integer((json_int_t)info.stats_age_ms));
    json_object_set_new(reply, "stats_updates", json_integer((json_int_t)info.stats_updates));
}

static json_t *config_summary(const struct virt_machine *m)
{
    const struct virt_config *c = &m->config;
    json_t *o = json_object();
    json_object_set_new(o, "harts", json_integer(m->nharts));
    json_object_set_new(o, "ram_mib", json_integer((json_int_t)(c->ram_size >> 20)));
    json_object_set_new(o, "kernel", c->kernel ? json_string(c->kernel) : json_null());
    json_object_set_new(o, "initrd", c->initrd ? json_string(c->initrd) : json_null());
    json_object_set_new(o, "append", c->append ? json_string(c->append) : json_null());
    json_object_set_new(o, "bios", c->bios ? json_string(c->bios) : json_null());
    json_object_set_new(o, "jit", json_boolean(c->jit));
    json_t *disks = json_array();
    for (unsigned i = 0; i < c->ndisks; i++)
        json_array_append_new(disks, json_pack("{s:s, s:b}", "path", c->disks[i].path,
                                               "readonly", c->disks[i].opts.readonly));
    json_object_set_new(o, "disks", disks);
    json_t *nets = json_array();
    for (unsigned i = 0; i < c->nnets; i++) {
        uint8_t mac[6] = { 0 };
        char macs[18];
        if (m->virtio[c->ndisks + i])
            virtio_net_get_mac(m->virtio[c->ndisks + i], mac);
        snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                 mac[3], mac[4], mac[5]);
        json_array_append_new(nets, json_pack("{s:s, s:s}", "kind",
                                              c->nets[i].kind == VIRT_NET_TAP ? "tap" : "user",
                                              "mac", macs));
    }
    json_object_set_new(o, "nets", nets);
    json_object_set_new(o, "balloon", json_boolean(m->balloon != NULL));
    json_object_set_new(o, "vsock_cid", c->vsock_cid ? json_integer((json_int_t)c->vsock_cid)
                                                     : json_null());
    json_object_set_new(o, "console_virtio", json_boolean(c->console_virtio));
    json_object_set_new(o, "watchdog", c->watchdog ? json_string(guest_action_name(c->watchdog_action))
                                                   : json_null());
    json_object_set_new(o, "on_panic", json_string(guest_action_name(c->panic_action)));
    return o;
}

static json_t *hart_counters(struct hart *h, json_t *totals)
{
    static const struct {
        const char *name;
        size_t off;
    } f[] = {
        { "instructions", offsetof(struct hart_stats, insns) },
        { "tlb_misses", offsetof(struct hart_stats, tlb_misses) },
        { "exceptions", offsetof(struct hart_stats, exceptions) },
        { "interrupts", offsetof(struct hart_stats, interrupts) },
        { "sbi_calls", offsetof(struct hart_stats, sbi_calls) },
        { "wfi_exits", offsetof(struct hart_stats, wfi_exits) },
    };
    json_t *o = json_pack("{s:I}", "hart", (json_int_t)h->hartid);
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)((char *)&h->stats + f[i].off);
        uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
        json_object_set_new(o, f[i].name, json_integer((json_int_t)v));
        json_t *t = json_object_get(totals, f[i].name);
        json_object_set_new(totals, f[i].name,
                            json_integer((t ? json_integer_value(t) : 0) + (json_int_t)v));
    }
    return o;
}

/* Each device's counters: the disks' requests and bytes, the network cards'
 * frames, the balloon's pages. */
static json_t *device_counters(struct virt_machine *m)
{
    const struct virt_config *c = &m->config;
    json_t *list = json_array();
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct virtio_blk_stats st = { 0 };
        if (m->virtio[i])
            virtio_blk_get_stats(m->virtio[i], &st);
        json_t *d = json_pack("{s:s, s:i, s:s}", "kind", "blk", "slot", i, "path",
                              c->disks[i].path);
        json_object_set_new(d, "reads", json_integer((json_int_t)st.reads));
        json_object_set_new(d, "writes", json_integer((json_int_t)st.writes));
        json_object_set_new(d, "flushes", json_integer((json_int_t)st.flushes));
        json_object_set_new(d, "discards", json_integer((json_int_t)st.discards));
        json_object_set_new(d, "errors", json_integer((json_int_t)st.errors));
        json_object_set_new(d, "read_bytes", json_integer((json_int_t)st.read_bytes));
        json_object_set_new(d, "written_bytes", json_integer((json_int_t)st.written_bytes));
        json_array_append_new(list, d);
    }
    for (unsigned i = 0; i < c->nnets; i++) {
        unsigned slot = c->ndisks + i;
        struct virtio_net_stats st = { 0 };
        if (m->virtio[slot])
            virtio_net_get_stats(m->virtio[slot], &st);
        json_t *d = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I}", "kind", "net",
                              "slot", slot,
                              "tx_frames", (json_int_t)st.tx_frames,
                              "tx_dropped", (json_int_t)st.tx_dropped,
                              "tx_bytes", (json_int_t)st.tx_bytes,
                              "rx_frames", (json_int_t)st.rx_frames,
                              "rx_dropped", (json_int_t)st.rx_dropped,
                              "rx_bytes", (json_int_t)st.rx_bytes);
        json_object_set_new(d, "announce_frames", json_integer((json_int_t)st.announce_frames));
        json_object_set_new(d, "announce_requests",
                            json_integer((json_int_t)st.announce_requests));
        json_object_set_new(d, "announce_acks", json_integer((json_int_t)st.announce_acks));
        json_array_append_new(list, d);
    }
    if (m->balloon) {
        struct virtio_balloon_info info;
        virtio_balloon_get_info(m->balloon, &info);
        json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I}", "kind", "balloon",
                                              "inflated_pages", (json_int_t)info.inflated_pages,
                                              "deflated_pages", (json_int_t)info.deflated_pages,
                                              "reported_mib",
                                              (json_int_t)(info.reported_bytes >> 20)));
    }
    return list;
}

static void counters(struct virt_machine *m, json_t *reply)
{
    json_t *harts = json_array(), *totals = json_object();
    for (unsigned i = 0; i < m->nharts; i++)
        json_array_append_new(harts, hart_counters(m->harts[i], totals));
    json_object_set_new(reply, "harts", harts);
    json_object_set_new(reply, "totals", totals);
    json_object_set_new(reply, "devices", device_counters(m));
    json_object_set_new(reply, "rss_kib", json_integer(rss_kib()));
}

static int snapshot(struct virt_machine *m, const struct vm_snapshot_options *o, json_t *reply,
                    char *err, size_t errlen)
{
    struct vm_snapshot_result res = { 0 };
    int r = vm_snapshot_save(m, o, &res, err, errlen);
    if (r)
        return r;
    json_object_set_new(reply, "path", json_string(o->path));
    json_object_set_new(reply, "pause_us", json_integer((json_int_t)res.pause_us));
    json_object_set_new(reply, "save_us", json_integer((json_int_t)res.save_us));
    json_object_set_new(reply, "state_bytes", json_integer((json_int_t)res.state_bytes));
    json_object_set_new(reply, "memory_bytes", json_integer((json_int_t)res.memory_bytes));
    json_object_set_new(reply, "pages_written", json_integer((json_int_t)res.pages_written));
    return 0;
}

/* The migration's progress (docs/api.md "Migration"). */
static json_t *migration_json(struct virt_machine *m)
{
    struct vm_migrate_progress p;
    if (!vm_migrate_get(m, &p))
        return json_pack("{s:s}", "phase", "none");
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(p.source ? "source" : "destination"));
    json_object_set_new(o, "phase", json_string(vm_migrate_phase_name(p.phase)));
    json_object_set_new(o, "mode", json_string(vm_migrate_mode_name(p.mode)));
    json_object_set_new(o, "round", json_integer(p.round));
    json_object_set_new(o, "ram_pages", json_integer((json_int_t)p.ram_pages));
    json_object_set_new(o, "pages_sent", json_integer((json_int_t)p.pages_sent));
    json_object_set_new(o, "zero_pages", json_integer((json_int_t)p.zero_pages));
    json_object_set_new(o, "pages_remaining", json_integer((json_int_t)p.pages_remaining));
    json_object_set_new(o, "bytes", json_integer((json_int_t)p.bytes));
    json_object_set_new(o, "dirty_pages_per_s", json_integer((json_int_t)p.dirty_rate));
    json_object_set_new(o, "bandwidth_bytes_per_s", json_integer((json_int_t)p.bandwidth));
    json_object_set_new(o, "expected_downtime_ms", json_integer((json_int_t)p.expected_downtime_ms));
    json_object_set_new(o, "downtime_us", json_integer((json_int_t)p.downtime_us));
    json_object_set_new(o, "total_ms", json_integer((json_int_t)p.total_ms));
    json_object_set_new(o, "throttle_pct", json_integer(p.throttle_pct));
    json_object_set_new(o, "converged", json_boolean(p.converged));
    json_object_set_new(o, "requests", json_integer((json_int_t)p.requests));
    json_object_set_new(o, "prepaged", json_integer((json_int_t)p.prepaged));
    json_object_set_new(o, "recoveries", json_integer(p.recoveries));
    json_object_set_new(o, "recover_attempts", json_integer(p.recover_attempts));
    json_object_set_new(o, "recover_missing", json_integer((json_int_t)p.recover_missing));
    if (p.source)
        json_object_set_new(o, "recover_sent", json_integer((json_int_t)p.recover_sent));
    else
        json_object_set_new(o, "duplicate_pages", json_integer((json_int_t)p.duplicate_pages));
    if (p.recover_listen[0])
        json_object_set_new(o, "recover_listen", json_string(p.recover_listen));
    json_object_set_new(o, "copy_storage", json_boolean(p.copy_storage));
    json_object_set_new(o, "disk_bytes", json_integer((json_int_t)p.disk_bytes));
    json_object_set_new(o, "disk_bytes_sent", json_integer((json_int_t)p.disk_sent));
    json_object_set_new(o, "disk_zero_bytes", json_integer((json_int_t)p.disk_zero));
    json_object_set_new(o, "disk_bytes_remaining", json_integer((json_int_t)p.disk_remaining));
    json_object_set_new(o, "error", p.error[0] ? json_string(p.error) : json_null());
    return o;
}

static json_t *vm_migration_event(void *opaque, uint64_t *seq)
{
    struct virt_machine *m = opaque;
    struct vm_migrate_progress p;
    if (!vm_migrate_get(m, &p) || p.seq == *seq)
        return NULL;
    *seq = p.seq;
    return json_pack("{s:o}", "migration", migration_json(m));
}

/* vm_state_of, except that a reboot under way (the harts stopped for
 * virt_reset, no quit pending) is still a running VM, not a shutdown. */
static enum vm_state vm_state(void *opaque)
{
    struct virt_machine *m = opaque;
    if (atomic_load(&m->stop) == VIRT_STOP_RESET && atomic_load(&m->quit_request) < 0)
        return VM_STATE_RUNNING;
    return vm_state_of(m);
}

static int vm_handle(void *opaque, const struct api_request *req, json_t *reply, char *err,
                     size_t errlen)
{
    struct virt_machine *m = opaque;
    int r;
    switch (req->action) {
    case API_GET_VM:
        json_object_set_new(reply, "config", config_summary(m));
        json_object_set_new(reply, "rss_kib", json_integer(rss_kib()));
        break;
    case API_BALLOON:
    case API_BALLOON_STATS:
        if (!m->balloon)
            return errmsg(err, errlen, -ENODEV, "no balloon device (start the VM with --balloon)");
        if (req->action == API_BALLOON && (r = set_target(m, req->target_mib, reply, err, errlen)))
            return r;
        if (req->action == API_BALLOON_STATS)
            balloon_stats(m, reply);
        break;
    case API_PAUSE:
        if ((r = virt_pause(m, err, errlen)))
            return r;
        break;
    case API_RESUME:
        if ((r = virt_resume(m, err, errlen)))
            return r == -EINVAL ? -EALREADY : r;   /* not paused: a wrong state, not a bad request */
        break;
    case API_DESTROY:
        /* As a user's quit: the process ends with status 0. */
        virt_request_stop(m, VIRT_STOP_QUIT, 0);
        break;
    case API_RESET:
        /* A paused VM is resumed first: the reboot starts it running
         * (harts waiting at the pause point would keep the devices
         * quiesced across virt_reset). */
        if (virt_is_paused(m) && (r = virt_resume(m, err, errlen)))
            return r;
        virt_request_stop(m, VIRT_STOP_RESET, 0);
        break;
    case API_SNAPSHOT:
        if ((r = snapshot(m, &req->snapshot, reply, err, errlen)))
            return r;
        break;
    case API_COUNTERS:
        counters(m, reply);
        break;
    case API_MIGRATE:
        if ((r = vm_migrate_start(m, &req->migrate, err, errlen)))
            return r;
        json_object_set_new(reply, "migration", migration_json(m));
        break;
    case API_MIGRATION:
        json_object_set_new(reply, "migration", migration_json(m));
        break;
    case API_MIGRATE_CANCEL:
        if ((r = vm_migrate_cancel(m, err, errlen)))
            return r;
        json_object_set_new(reply, "migration", migration_json(m));
        break;
    case API_MIGRATE_RECOVER:
        if ((r = vm_migrate_recover(m, req->path, err, errlen)))
            return r;
        json_object_set_new(reply, "migration", migration_json(m));
        break;
    default:
        return errmsg(err, errlen, -EINVAL, "not a VM request");
    }
    if (!json_object_get(reply, "state"))
        json_object_set_new(reply, "state", json_string(vm_state_name(vm_state(m))));
    return 0;
}

/* The agent is there when the VM has a vsock device and the kernel command
 * line starts it (nimbus.agent=PORT, guest/init). */
static int vm_agent(void *opaque, int *fd, uint32_t *port, char *err, size_t errlen)
{
    struct virt_machine *m = opaque;
    int r = agent_port_from_cmdline(m->config.append, port);
    if (!m->config.vsock_cid || r == -ENOENT)
        return errmsg(err, errlen, -ENOTSUP, "the guest has no agent to ask for a power-off "
                      "(start it with --vsock and nimbus.agent=PORT); PUT /vm/destroy stops it");
    if (r)
        return errmsg(err, errlen, -ENOTSUP, "nimbus.agent= on the kernel command line is "
                      "not a port");
    /* In-process, not through the socket file: a sandboxed VM running as
     * its own user need not reach the file it made as root. */
    return virtio_vsock_connect_local(m->vsock, fd, err, errlen);
}

/* "watchdog" {action} and "guest_panic" {action, message} (virt_watch.c). */
static json_t *vm_guest_event(void *opaque, uint64_t *seq, const char **kind)
{
    struct virt_machine *m = opaque;
    struct guest_event e;
    if (!guest_events_next(&m->events, seq, &e))
        return NULL;
    *kind = guest_event_kind_name(e.kind);
    json_t *fields = json_pack("{s:s}", "action", guest_action_name(e.action));
    if (fields && e.kind == GUEST_EVENT_PANIC)
        json_object_set_new(fields, "message", json_string(e.message));
    return fields;
}

struct api_ops api_vm_ops(struct virt_machine *m)
{
    return (struct api_ops){ .state = vm_state, .handle = vm_handle, .agent = vm_agent,
                             .migration = vm_migration_event, .guest_event = vm_guest_event,
                             .opaque = m };
}

int api_open(const char *path, struct virt_machine *m, struct api **out, char *err,
             size_t errlen)
{
    struct api_ops ops = api_vm_ops(m);
    return api_open_ops(path, &ops, out, err, errlen);
}
