/* Whole-VM snapshots: save to a directory, restore from one. See
 * snapshot.h and docs/snapshots.md. */
#include "vm/snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/errmsg.h"
#include "dev/vmgenid.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vm/snapshot_mem.h"

#define STATE_FILE      "vm.state"
#define MEMORY_FILE     "memory"
#define MEMORY_ZST_FILE "memory.zst"
#define DISK_ID_MAJOR   1
#define DISK_ID_BYTES   (64u << 10)
#define ZSTD_LEVEL      3

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- disks ---- */

/* What identifies a disk image: its virtual size and a CRC of the file's
 * first 64 KiB (a raw disk's partition table and first blocks; a qcow2
 * image's header and first tables, with the dirty bit, which only says
 * whether a process has it open, masked). */
struct disk_id {
    uint64_t size;
    uint32_t crc;
};

static int disk_identify(const char *path, const struct block_options *saved_opts,
                         struct disk_id *id, char *err, size_t errlen)
{
    struct block_options opts = *saved_opts;
    opts.readonly = true;
    opts.cache = BLOCK_CACHE_WRITEBACK;
    struct block_backend *b;
    int r = block_open(path, &opts, &b, err, errlen);
    if (r)
        return r;
    id->size = b->size;
    bool qcow2 = !strcmp(b->ops->name, "qcow2");
    block_close(b);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "%s: %s", path, strerror(errno));
    uint8_t *buf = calloc(1, DISK_ID_BYTES);
    ssize_t n = buf ? pread(fd, buf, DISK_ID_BYTES, 0) : -1;
    int e = errno;
    close(fd);
    if (n < 0) {
        free(buf);
        return errmsg(err, errlen, buf ? -e : -ENOMEM, "%s: %s", path, strerror(buf ? e : ENOMEM));
    }
    if (qcow2 && n >= 80)
        buf[79] &= (uint8_t)~1u;   /* incompatible_features bit 0: dirty (qcow2 spec) */
    id->crc = (uint32_t)crc32(0, buf, (uInt)n);
    free(buf);
    return 0;
}

/* Flushes every writable disk and records its identity, section "disk"[i]. */
static int save_disks(struct virt_machine *m, struct state_writer *w, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->config.ndisks; i++) {
        int r = virtio_blk_flush(m->virtio[i]);
        if (r)
            return errmsg(err, errlen, r, "flushing disk %s: %s", m->config.disks[i].path,
                          strerror(-r));
        struct disk_id id;
        r = disk_identify(m->config.disks[i].path, &m->config.disks[i].opts, &id, err, errlen);
        if (r)
            return r;
        state_begin(w, "disk", i, DISK_ID_MAJOR, 0);
        state_put_u64(w, id.size);
        state_put_u32(w, id.crc);
        if ((r = state_end(w)))
            return errmsg(err, errlen, r, "writing the snapshot: %s", strerror(-r));
    }
    return 0;
}

/* Checks the disks the restore will use against the saved identities. */
static int check_disks(const struct state_reader *rd, const struct virt_config *c,
                       const struct vm_restore_options *o, char *err, size_t errlen)
{
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct state_section s;
        struct disk_id saved, now;
        int r = state_reader_section(rd, "disk", i, DISK_ID_MAJOR, &s, err, errlen);
        if (r)
            return r;
        state_get_u64(&s, &saved.size);
        state_get_u32(&s, &saved.crc);
        if ((r = state_section_done(&s, err, errlen)))
            return r;
        bool replaced = i < o->ndisks && o->disks[i];
        r = disk_identify(c->disks[i].path, &c->disks[i].opts, &now, err, errlen);
        if (r)
            return r;
        if (o->force_disks)
            continue;
        if (now.size != saved.size)
            return errmsg(err, errlen, -ESTALE, "disk %u (%s) is %llu bytes, the snapshot's was "
                          "%llu (--force-disks to restore anyway)", i, c->disks[i].path,
                          (unsigned long long)now.size, (unsigned long long)saved.size);
        if (!replaced && now.crc != saved.crc)
            return errmsg(err, errlen, -ESTALE, "disk %u (%s) changed since the snapshot was "
                          "taken (--force-disks to restore anyway)", i, c->disks[i].path);
    }
    return 0;
}

/* ---- save ---- */

static int open_in(int dirfd, const char *name, int flags)
{
    return openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0644);
}

/* Creates `path` or takes an empty directory there. */
static int make_dir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return errmsg(err, errlen, -errno, "cannot create %s: %s", path, strerror(errno));
    DIR *d = opendir(path);
    if (!d)
        return errmsg(err, errlen, -errno, "%s: %s", path, strerror(errno));
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            r = -EEXIST;
    closedir(d);
    return r ? errmsg(err, errlen, r, "%s is not empty: a snapshot goes to a new directory", path)
             : 0;
}

static int write_state(struct virt_machine *m, int dirfd, uint64_t *bytes, char *err, size_t errlen)
{
    int fd = open_in(dirfd, STATE_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "cannot create %s: %s", STATE_FILE, strerror(errno));
    struct state_writer w;
    int r = state_writer_init_fd(&w, fd);
    if (r) {
        close(fd);
        return errmsg(err, errlen, r, "writing %s: %s", STATE_FILE, strerror(-r));
    }
    r = virt_save(m, &w, err, errlen);
    if (!r)
        r = save_disks(m, &w, err, errlen);
    if (!r)
        r = state_writer_finish(&w, err, errlen);
    state_writer_free(&w);
    struct stat st;
    if (!r && fstat(fd, &st) == 0)
        *bytes = (uint64_t)st.st_size;
    if (!r && fsync(fd))
        r = errmsg(err, errlen, -errno, "writing %s: %s", STATE_FILE, strerror(errno));
    close(fd);
    return r;
}

static int write_memory(struct virt_machine *m, int dirfd, bool compress,
                        struct vm_snapshot_result *res, char *err, size_t errlen)
{
    const char *name = compress ? MEMORY_ZST_FILE : MEMORY_FILE;
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    int fd = open_in(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "cannot create %s: %s", name, strerror(errno));
    int r = compress ? snapshot_mem_write_zstd(&m->mem, fd, ZSTD_LEVEL, &res->memory_bytes,
                                               &res->pages_written)
                     : snapshot_mem_write_sparse(&m->mem, NULL, fd, &res->memory_bytes,
                                                 &res->pages_written);
    if (!r && fsync(fd))
        r = -errno;
    close(fd);
    if (!r && renameat(dirfd, tmp, dirfd, name))
        r = -errno;
    return r ? errmsg(err, errlen, r, "writing %s: %s", name, strerror(-r)) : 0;
}

int vm_snapshot_save(struct virt_machine *m, const struct vm_snapshot_options *opts,
                     struct vm_snapshot_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    if (!opts->path || !*opts->path)
        return errmsg(err, errlen, -EINVAL, "a snapshot needs a path");
    if (opts->diff)
        return errmsg(err, errlen, -ENOTSUP, "diff snapshots need dirty logging, not built yet");
    if (atomic_load(&m->stop) != VIRT_RUNNING)
        return errmsg(err, errlen, -ESHUTDOWN, "wrong state: the VM is shut down");
    int r = make_dir(opts->path, err, errlen);
    if (r)
        return r;
    int dirfd = open(opts->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errmsg(err, errlen, -errno, "%s: %s", opts->path, strerror(errno));

    uint64_t t0 = now_us();
    bool was_running = !virt_is_paused(m);
    if (was_running && (r = virt_pause(m, err, errlen))) {
        close(dirfd);
        return r;
    }
    uint64_t t1 = now_us();
    /* Memory first, the state last: a directory with vm.state in it is a
     * whole snapshot. */
    r = write_memory(m, dirfd, opts->compress, res, err, errlen);
    if (!r)
        r = write_state(m, dirfd, &res->state_bytes, err, errlen);
    if (!r && renameat(dirfd, STATE_FILE ".tmp", dirfd, STATE_FILE))
        r = errmsg(err, errlen, -errno, "writing %s: %s", STATE_FILE, strerror(errno));
    if (!r && fsync(dirfd))
        r = errmsg(err, errlen, -errno, "%s: %s", opts->path, strerror(errno));
    if (r) {
        unlinkat(dirfd, STATE_FILE ".tmp", 0);
        unlinkat(dirfd, opts->compress ? MEMORY_ZST_FILE : MEMORY_FILE, 0);
        unlinkat(dirfd, opts->compress ? MEMORY_ZST_FILE ".tmp" : MEMORY_FILE ".tmp", 0);
    }
    close(dirfd);
    uint64_t t2 = now_us();
    res->save_us = t2 - t1;
    if (!r && opts->stop) {
        /* running/paused -> saved: the process ends, the snapshot is the VM. */
        virt_request_stop(m, VIRT_STOP_QUIT, 0);
    } else if (was_running) {
        char rerr[256];
        if (virt_resume(m, rerr, sizeof(rerr)) && !r)
            r = errmsg(err, errlen, -EIO, "resuming after the save: %s", rerr);
    }
    if (was_running)
        res->pause_us = now_us() - t0;
    return r;
}

/* ---- restore ---- */

static int load_memory(struct virt_machine *m, int dirfd, enum vm_restore_memory how, char *err,
                       size_t errlen)
{
    int fd = open_in(dirfd, MEMORY_FILE, O_RDONLY);
    if (fd >= 0) {
        int r;
        if (how == VM_RESTORE_LAZY) {
            r = guest_mem_map_file(&m->mem, fd);
            if (r == -EINVAL) {
                struct stat st;
                fstat(fd, &st);
                r = errmsg(err, errlen, r, "memory file: %llu bytes, but the VM has %llu MiB of RAM",
                           (unsigned long long)st.st_size,
                           (unsigned long long)(m->mem.ram_size >> 20));
            } else if (r) {
                r = errmsg(err, errlen, r, "mapping the memory file: %s", strerror(-r));
            } else {
                /* The mapping must be exactly RAM: a longer file is not ours. */
                struct stat st;
                if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != m->mem.ram_size)
                    r = errmsg(err, errlen, -EINVAL, "memory file: %llu bytes, but the VM has "
                               "%llu MiB of RAM", (unsigned long long)st.st_size,
                               (unsigned long long)(m->mem.ram_size >> 20));
            }
        } else {
            r = snapshot_mem_read_sparse(&m->mem, fd, err, errlen);
        }
        close(fd);   /* the mapping keeps the file */
        return r;
    }
    if (errno != ENOENT)
        return errmsg(err, errlen, -errno, "memory file: %s", strerror(errno));
    fd = open_in(dirfd, MEMORY_ZST_FILE, O_RDONLY);
    if (fd < 0)
        return errmsg(err, errlen, -ENOENT, "the snapshot has no memory file (%s or %s)",
                      MEMORY_FILE, MEMORY_ZST_FILE);
    int r = snapshot_mem_read_zstd(&m->mem, fd, err, errlen);
    close(fd);
    return r;
}

int vm_snapshot_restore(const struct vm_restore_options *o, struct virt_machine **out,
                        struct virt_config_strings *strs, char *err, size_t errlen)
{
    memset(strs, 0, sizeof(*strs));
    *out = NULL;
    int dirfd = open(o->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errmsg(err, errlen, -errno, "snapshot %s: %s", o->path, strerror(errno));
    int fd = open_in(dirfd, STATE_FILE, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        close(dirfd);
        return errmsg(err, errlen, -e, "snapshot %s: no %s (%s)", o->path, STATE_FILE, strerror(e));
    }
    struct state_reader rd;
    char why[512];
    int r = state_reader_open_fd(&rd, fd, why, sizeof(why));
    close(fd);
    if (r) {
        close(dirfd);
        return errmsg(err, errlen, r, "%s/%s: %s", o->path, STATE_FILE, why);
    }
    struct virt_config c;
    uint64_t tohost = 0, fromhost = 0;
    struct virt_machine *m = NULL;
    r = virt_config_load(&rd, &c, &tohost, &fromhost, strs, why, sizeof(why));
    if (r)
        goto fail_why;
    if (o->ndisks > c.ndisks) {
        r = errmsg(err, errlen, -EINVAL, "%u --disk options, but the snapshot has %u disks",
                   o->ndisks, c.ndisks);
        goto fail;
    }
    if (o->disks_over_saved &&
        (r = check_disks(&rd, &c, &(struct vm_restore_options){ .force_disks = o->force_disks },
                         err, errlen)))
        goto fail;
    for (unsigned i = 0; i < o->ndisks; i++)
        if (o->disks[i]) {
            c.disks[i].path = o->disks[i];
            if (o->disk_formats[i] != BLOCK_FORMAT_PROBE)
                c.disks[i].opts.format = o->disk_formats[i];
        }
    if ((r = check_disks(&rd, &c, o, err, errlen)))
        goto fail;
    unsigned nmacs = o->clone_macs ? c.nnets : o->nmacs;
    bool new_cid = o->vsock_cid && c.vsock_cid;
    if (o->nmacs > c.nnets || (o->vsock_cid && !c.vsock_cid && !o->vsock_cid_optional)) {
        r = errmsg(err, errlen, -EINVAL, "the snapshot has %u network cards and %s vsock device: "
                   "%u MACs%s given", c.nnets, c.vsock_cid ? "a" : "no", o->nmacs,
                   o->vsock_cid ? " and a vsock CID" : "");
        goto fail;
    }
    for (unsigned i = 0; i < nmacs; i++) {
        c.nets[i].has_mac = true;
        memcpy(c.nets[i].mac, o->macs[i], 6);
    }
    if (new_cid) {
        c.vsock_cid = o->vsock_cid;
        memcpy(c.vsock_path, o->vsock_path, sizeof(c.vsock_path));
    }
    c.no_boot = true;
    c.console_kind = o->console_kind;
    memcpy(c.console_path, o->console_path, sizeof(c.console_path));
    c.jit = o->jit;
    c.jit_cache = o->jit_cache;
    c.jit_threshold = o->jit_threshold;
    if ((r = virt_create(&c, &m, err, errlen)))
        goto fail;
    m->tohost = tohost;
    m->fromhost = fromhost;
    /* Network cards sit right after the disks (virt.h). */
    for (unsigned i = 0; i < nmacs; i++)
        virtio_net_keep_mac_on_load(m->virtio[c.ndisks + i], true);
    if ((r = load_memory(m, dirfd, o->memory, err, errlen)))
        goto fail;
    if ((r = virt_load(m, &rd, why, sizeof(why))))
        goto fail_why;
    /* This VM may now run more than once (each restore of the snapshot):
     * a new generation ID makes the guest reseed its RNG (dev/vmgenid.h). */
    if ((r = vmgenid_new_generation(m->genid))) {
        errmsg(err, errlen, r, "a new VM generation ID: %s", strerror(-r));
        goto fail;
    }
    state_reader_free(&rd);
    close(dirfd);
    *out = m;
    return 0;
fail_why:
    errmsg(err, errlen, r, "%s/%s: %s", o->path, STATE_FILE, why);
fail:
    virt_destroy(m);
    state_reader_free(&rd);
    virt_config_strings_free(strs);
    close(dirfd);
    return r;
}
