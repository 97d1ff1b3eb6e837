/* The control socket's requests served on a running virt machine. See
 * control_vm.h. */
#include "api/control_vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/errmsg.h"

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

int control_vm_handle(void *opaque, const struct control_request *req, json_t *reply, char *err,
                      size_t errlen)
{
    struct virt_machine *m = opaque;
    switch (req->cmd) {
    case CONTROL_CMD_BALLOON:
    case CONTROL_CMD_BALLOON_STATS:
        if (!m->balloon)
            return errmsg(err, errlen, -ENODEV, "no balloon device (start the VM with --balloon)");
        if (req->cmd == CONTROL_CMD_BALLOON)
            return set_target(m, req->target_mib, reply, err, errlen);
        balloon_stats(m, reply);
        return 0;
    case CONTROL_CMD_PAUSE:
    case CONTROL_CMD_RESUME: {
        int r = req->cmd == CONTROL_CMD_PAUSE ? virt_pause(m, err, errlen) : virt_resume(m, err, errlen);
        if (r)
            return r;
        json_object_set_new(reply, "state", json_string(req->cmd == CONTROL_CMD_PAUSE ? "paused" : "running"));
        return 0;
    }
    case CONTROL_CMD_STATUS:
        json_object_set_new(reply, "state", json_string(virt_is_paused(m) ? "paused" : "running"));
        json_object_set_new(reply, "harts", json_integer(m->nharts));
        json_object_set_new(reply, "ram_mib", json_integer((json_int_t)(m->config.ram_size >> 20)));
        json_object_set_new(reply, "rss_kib", json_integer(rss_kib()));
        json_object_set_new(reply, "disks", json_integer(m->config.ndisks));
        json_object_set_new(reply, "balloon", json_boolean(m->balloon != NULL));
        return 0;
    }
    return errmsg(err, errlen, -EINVAL, "unknown command");
}
