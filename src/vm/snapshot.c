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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/errmsg.h"
#include "dev/vmgenid.h"
#include "machine/virt_dirty.h"
#include "mem/ram_fill.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vm/announce.h"
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

/* The identity of an open image: its virtual size and the CRC of the
 * first DISK_ID_BYTES of its file, read through the backend's own
 * descriptor (no second open: a writable qcow2 image holds an exclusive
 * lock, and a disk handed in as a descriptor has no path to open). */
static int backend_identify(const struct block_backend *b, struct disk_id *id, char *err,
                            size_t errlen)
{
    id->size = b->size;
    uint8_t *buf = calloc(1, DISK_ID_BYTES);
    if (!buf)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", b->path);
    ssize_t n = pread(b->file_fd, buf, DISK_ID_BYTES, 0);
    if (n < 0) {
        int e = errno;
        free(buf);
        return errmsg(err, errlen, -e, "%s: %s", b->path, strerror(e));
    }
    if (!strcmp(b->ops->name, "qcow2") && n >= 80)
        buf[79] &= (uint8_t)~1u;   /* incompatible_features bit 0: dirty (qcow2 spec) */
    id->crc = (uint32_t)crc32(0, buf, (uInt)n);
    free(buf);
    return 0;
}

/* The identity of a disk that is not open yet (a restore's). */
static int disk_identify(const struct virt_disk *d, struct disk_id *id, char *err, size_t errlen)
{
    struct block_options opts = d->opts;
    opts.readonly = true;
    opts.cache = BLOCK_CACHE_WRITEBACK;
    struct block_backend *b;
    int r = block_open(d->path, &opts, &b, err, errlen);
    if (r)
        return r;
    r = backend_identify(b, id, err, errlen);
    block_close(b);
    return r;
}

/* Flushes every writable disk (with `flush`) and records its identity,
 * section "disk"[i]. */
static int save_disks(struct virt_machine *m, struct state_writer *w, bool flush, char *err,
                      size_t errlen)
{
    for (unsigned i = 0; i < m->config.ndisks; i++) {
        int r = flush ? virtio_blk_flush(m->virtio[i]) : 0;
        if (r)
            return errmsg(err, errlen, r, "flushing disk %s: %s", m->config.disks[i].path,
                          strerror(-r));
        struct disk_id id;
        r = backend_identify(virtio_blk_backend(m->virtio[i]), &id, err, errlen);
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
        bool replaced = i < o->ndisks && o->disks[i] && !o->disk_by_fd[i];
        r = disk_identify(&c->disks[i], &now, err, errlen);
        if (r)
            return r;
        if (o->force_disks)
            continue;
        if (o->disks_size_only)
            replaced = true;
        if (now.size != saved.size && o->disks_size_only)
            return errmsg(err, errlen, -ESTALE, "disk %u (%s) is %llu bytes, the migrating VM's "
                          "is %llu: the destination's disk must have the same virtual size",
                          i, c->disks[i].path, (unsigned long long)now.size,
                          (unsigned long long)saved.size);
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

/* ---- the chain of snapshots: diffs and their parents ---- */

#define DIFF_MAJOR     1
#define DIFF_MAX_DEPTH 32u

/* CRC-32 of a whole file (a vm.state: at most STATE_MAX_SIZE). */
static int file_crc(int dirfd, const char *name, uint32_t *crc)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint8_t buf[65536];
    uLong c = crc32(0, NULL, 0);
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        c = crc32(c, buf, (uInt)n);
    int e = n < 0 ? -errno : 0;
    close(fd);
    *crc = (uint32_t)c;
    return e;
}

/* From now on the VM's writes are logged, relative to the snapshot in `dir`
 * (just saved, or restored from): the next diff snapshot names it as its
 * parent. The VM is paused; `restored`: its harts have never run (no TLB
 * entry to drop, no hart thread to ask). On failure diffs are simply not
 * possible. */
static void track_from(struct virt_machine *m, const char *dir, int dirfd, const char *state_file,
                       bool restored)
{
    m->last_snapshot[0] = '\0';
    char *abs = realpath(dir, NULL);
    uint32_t crc;
    if (!abs || strlen(abs) >= sizeof(m->last_snapshot) || file_crc(dirfd, state_file, &crc)) {
        free(abs);
        return;
    }
    size_t words = virt_dirty_bitmap_words(m);
    uint64_t *scratch = calloc(words, 8);
    char err[256];
    if (dirty_log_on(&m->mem.dirty) || virt_dirty_start(m, err, sizeof(err)) == 0) {
        /* Starting marks every page; the snapshot holds them all. */
        int64_t n = !scratch ? -ENOMEM
                    : restored ? dirty_log_collect(&m->mem.dirty, scratch, words)
                               : virt_dirty_collect(m, scratch, words, err, sizeof(err));
        if (n >= 0) {
            strcpy(m->last_snapshot, abs);
            m->last_snapshot_crc = crc;
        }
    }
    free(scratch);
    free(abs);
}

/* Section "memory-diff"[0] of a diff snapshot: its parent (a path, absolute
 * or relative to the diff's directory), the CRC-32 of the parent's vm.state,
 * and the bitmap of the pages its memory file holds. */
static int save_diff_section(struct state_writer *w, const struct virt_machine *m,
                             const uint64_t *bitmap, size_t words)
{
    size_t n = strlen(m->last_snapshot);
    state_begin(w, "memory-diff", 0, DIFF_MAJOR, 0);
    state_put_u16(w, (uint16_t)n);
    state_put_bytes(w, m->last_snapshot, n);
    state_put_u32(w, m->last_snapshot_crc);
    state_put_u64(w, m->mem.ram_size / GUEST_PAGE_SIZE);
    for (size_t i = 0; i < words; i++)
        state_put_u64(w, bitmap[i]);
    return state_end(w);
}

struct diff_info {
    char parent[4096];
    uint32_t parent_crc;
    uint64_t *bitmap;   /* owned */
};

/* 1 and `d` filled for a diff snapshot, 0 for a full one, or -errno. */
static int read_diff_section(const struct state_reader *rd, uint64_t ram_size,
                             struct diff_info *d, char *err, size_t errlen)
{
    struct state_section s;
    memset(d, 0, sizeof(*d));
    int r = state_reader_section(rd, "memory-diff", 0, DIFF_MAJOR, &s, err, errlen);
    if (r == -ENOENT)
        return 0;
    if (r)
        return r;
    uint16_t n = 0;
    uint64_t npages = 0;
    state_get_u16(&s, &n);
    if (n == 0 || n >= sizeof(d->parent))
        return state_section_error(&s, err, errlen, -EINVAL, "parent path of %u bytes", n);
    state_get_bytes(&s, d->parent, n);
    state_get_u32(&s, &d->parent_crc);
    state_get_u64(&s, &npages);
    if (s.overrun)
        return state_section_done(&s, err, errlen);
    if (memchr(d->parent, 0, n) || npages != ram_size / GUEST_PAGE_SIZE)
        return state_section_error(&s, err, errlen, -EINVAL, "a parent path with a NUL, or "
                                   "%llu pages for %llu MiB of RAM", (unsigned long long)npages,
                                   (unsigned long long)(ram_size >> 20));
    size_t words = (size_t)((npages + 63) / 64);
    d->bitmap = calloc(words, 8);
    if (!d->bitmap)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < words; i++)
        state_get_u64(&s, &d->bitmap[i]);
    if ((r = state_section_done(&s, err, errlen))) {
        free(d->bitmap);
        d->bitmap = NULL;
        return r;
    }
    return 1;
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

static int write_state(struct virt_machine *m, int dirfd, const uint64_t *diff, size_t words,
                       uint64_t *bytes, char *err, size_t errlen)
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
        r = save_disks(m, &w, true, err, errlen);
    if (!r && diff && (r = save_diff_section(&w, m, diff, words)))
        errmsg(err, errlen, r, "writing %s: %s", STATE_FILE, strerror(-r));
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

/* Writes the memory file under its temporary name, synced. Returns 0 or
 * -errno (no message: the caller names the file). */
static int write_memory_tmp(struct virt_machine *m, int dirfd, bool compress, const uint64_t *diff,
                            uint64_t *bytes, uint64_t *pages)
{
    const char *tmp = compress ? MEMORY_ZST_FILE ".tmp" : MEMORY_FILE ".tmp";
    int fd = open_in(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return -errno;
    int r = compress ? snapshot_mem_write_zstd(&m->mem, fd, ZSTD_LEVEL, bytes, pages)
                     : snapshot_mem_write_sparse(&m->mem, diff, fd, bytes, pages);
    if (!r && fsync(fd))
        r = -errno;
    close(fd);
    return r;
}

/* What the child that writes the memory file reports through its pipe. */
struct memory_report {
    int32_t r;
    uint64_t bytes, pages;
};

/* Forks a child that writes the memory file from its copy-on-write view
 * of RAM - RAM as it is now, while the VM is paused - so the parent can
 * resume the guest at once (`resume`, called in the parent right after
 * the fork) and only wait for the child. The child uses what glibc keeps
 * safe after a fork (malloc included) and nothing of the VM's threads.
 * Returns 0 or -errno; res gets the bytes and pages written. */
static int write_memory_forked(struct virt_machine *m, int dirfd, bool compress,
                               const uint64_t *diff, struct vm_snapshot_result *res,
                               void (*resume)(void *opaque), void *opaque)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC))
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = -errno;
        close(pfd[0]);
        close(pfd[1]);
        return e;
    }
    if (pid == 0) {
        struct memory_report rep = { 0 };
        close(pfd[0]);
        rep.r = write_memory_tmp(m, dirfd, compress, diff, &rep.bytes, &rep.pages);
        ssize_t w = write(pfd[1], &rep, sizeof(rep));
        _exit(w == (ssize_t)sizeof(rep) ? 0 : 1);
    }
    close(pfd[1]);
    resume(opaque);
    struct memory_report rep = { .r = -EIO };
    ssize_t n;
    do
        n = read(pfd[0], &rep, sizeof(rep));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (n != (ssize_t)sizeof(rep))
        return -EIO;   /* the child died before it could report */
    res->memory_bytes = rep.bytes;
    res->pages_written = rep.pages;
    return rep.r;
}

struct resume_ctx {
    struct virt_machine *m;
    uint64_t t0, pause_us;
    bool resumed;
    char err[256];
};

static void resume_now(void *opaque)
{
    struct resume_ctx *c = opaque;
    c->resumed = virt_resume(c->m, c->err, sizeof(c->err)) == 0;
    c->pause_us = now_us() - c->t0;
}

int vm_snapshot_save(struct virt_machine *m, const struct vm_snapshot_options *opts,
                     struct vm_snapshot_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    if (!opts->path || !*opts->path)
        return errmsg(err, errlen, -EINVAL, "a snapshot needs a path");
    if (opts->diff && opts->compress)
        return errmsg(err, errlen, -EINVAL, "a diff snapshot is not compressed");
    if (opts->diff && !m->last_snapshot[0])
        return errmsg(err, errlen, -EINVAL, "a diff snapshot needs a full one first: this VM has "
                      "neither saved a snapshot nor been restored from one");
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
    uint64_t *diff = NULL;
    size_t words = virt_dirty_bitmap_words(m);
    if (opts->diff) {
        int64_t n;
        diff = calloc(words, 8);
        if (!diff)
            r = errmsg(err, errlen, -ENOMEM, "out of memory");
        else if ((n = virt_dirty_collect(m, diff, words, err, errlen)) < 0)
            r = (int)n;
    }
    /* The device state while paused (small); from now on writes are logged
     * against this snapshot. */
    if (!r)
        r = write_state(m, dirfd, diff, words, &res->state_bytes, err, errlen);
    if (!r)
        track_from(m, opts->path, dirfd, STATE_FILE ".tmp", false);
    /* The memory: a running VM that goes on is resumed as soon as a child
     * process holds a copy-on-write view of RAM and writes it; otherwise
     * (stop, a paused VM, RAM still being filled through userfaultfd,
     * which a child would not see) it is written here. */
    struct ram_fill_stats fill = { .done_us = 1 };
    if (m->mem.filler)
        ram_fill_get_stats(m->mem.filler, &fill);
    struct resume_ctx rc = { .m = m, .t0 = t0 };
    const char *mem_name = opts->compress ? MEMORY_ZST_FILE : MEMORY_FILE;
    if (!r) {
        int mr;
        if (was_running && !opts->stop && fill.done_us)
            mr = write_memory_forked(m, dirfd, opts->compress, diff, res, resume_now, &rc);
        else
            mr = write_memory_tmp(m, dirfd, opts->compress, diff, &res->memory_bytes,
                                  &res->pages_written);
        if (mr)
            r = errmsg(err, errlen, mr, "writing %s: %s", mem_name, strerror(-mr));
    }
    /* Memory first, the state last: a directory with vm.state in it is a
     * whole snapshot. */
    char mem_tmp[32];
    snprintf(mem_tmp, sizeof(mem_tmp), "%s.tmp", mem_name);
    if (!r && renameat(dirfd, mem_tmp, dirfd, mem_name))
        r = errmsg(err, errlen, -errno, "writing %s: %s", mem_name, strerror(errno));
    if (!r && renameat(dirfd, STATE_FILE ".tmp", dirfd, STATE_FILE))
        r = errmsg(err, errlen, -errno, "writing %s: %s", STATE_FILE, strerror(errno));
    if (!r && fsync(dirfd))
        r = errmsg(err, errlen, -errno, "%s: %s", opts->path, strerror(errno));
    if (r) {
        unlinkat(dirfd, STATE_FILE ".tmp", 0);
        unlinkat(dirfd, STATE_FILE, 0);
        unlinkat(dirfd, mem_name, 0);
        unlinkat(dirfd, mem_tmp, 0);
        /* No parent for a diff any more, and the pages a diff collected
         * are still unsaved. */
        m->last_snapshot[0] = '\0';
        if (diff)
            guest_mem_mark_dirty(&m->mem, m->mem.ram_base, m->mem.ram_size);
    }
    free(diff);
    close(dirfd);
    res->save_us = now_us() - t1;
    if (!r && opts->stop) {
        /* running/paused -> saved: the process ends, the snapshot is the VM. */
        virt_request_stop(m, VIRT_STOP_QUIT, 0);
    } else if (was_running && !rc.resumed) {
        if (rc.err[0] || virt_resume(m, rc.err, sizeof(rc.err)))
            r = r ? r : errmsg(err, errlen, -EIO, "resuming after the save: %s", rc.err);
        rc.pause_us = now_us() - t0;
    }
    if (was_running)   /* with stop, the guest stood still to the end */
        res->pause_us = rc.pause_us ? rc.pause_us : now_us() - t0;
    return r;
}

/* ---- restore ---- */

/* The sparse memory file as a page source for the userfaultfd filler. */
struct file_source {
    int fd;
    uint64_t npages;
};

static int file_source_read(void *opaque, uint64_t pfn, uint64_t npages, void *buf)
{
    struct file_source *s = opaque;
    size_t len = (size_t)(npages * GUEST_PAGE_SIZE);
    ssize_t n = pread(s->fd, buf, len, (off_t)(pfn * GUEST_PAGE_SIZE));
    return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static uint64_t file_source_next_data(void *opaque, uint64_t pfn)
{
    struct file_source *s = opaque;
    off_t data = lseek(s->fd, (off_t)(pfn * GUEST_PAGE_SIZE), SEEK_DATA);
    if (data < 0)
        return errno == ENXIO ? s->npages : pfn;   /* no data after pfn; or unknown */
    return (uint64_t)data / GUEST_PAGE_SIZE;
}

static uint64_t file_source_next_hole(void *opaque, uint64_t pfn)
{
    struct file_source *s = opaque;
    off_t hole = lseek(s->fd, (off_t)(pfn * GUEST_PAGE_SIZE), SEEK_HOLE);
    return hole < 0 ? s->npages : (uint64_t)hole / GUEST_PAGE_SIZE;
}

static void file_source_release(void *opaque)
{
    struct file_source *s = opaque;
    close(s->fd);
    free(s);
}

static int start_filler(struct virt_machine *m, int fd, char *err, size_t errlen)
{
    struct file_source *s = malloc(sizeof(*s));
    if (!s)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    s->fd = dup(fd);
    s->npages = m->mem.ram_size / GUEST_PAGE_SIZE;
    struct ram_page_source src = { .read = file_source_read, .next_data = file_source_next_data,
                                   .next_hole = file_source_next_hole, .release = file_source_release, .opaque = s };
    int r = s->fd < 0 ? errmsg(err, errlen, -errno, "dup: %s", strerror(errno))
                      : ram_fill_start(&m->mem, &src, &m->mem.filler, err, errlen);
    if (r) {
        if (s->fd >= 0)
            close(s->fd);
        free(s);
    }
    return r;
}

static int load_memory(struct virt_machine *m, int dirfd, enum vm_restore_memory how, char *err,
                       size_t errlen)
{
    int fd = open_in(dirfd, MEMORY_FILE, O_RDONLY);
    if (fd >= 0) {
        int r = snapshot_mem_check_file(&m->mem, fd, "memory file", err, errlen);
        if (!r) {
            switch (how) {
            case VM_RESTORE_LAZY:
                if ((r = guest_mem_map_file(&m->mem, fd)))
                    errmsg(err, errlen, r, "mapping the memory file: %s", strerror(-r));
                break;
            case VM_RESTORE_EAGER:
                r = snapshot_mem_read_sparse(&m->mem, fd, err, errlen);
                break;
            case VM_RESTORE_UFFD:
                r = start_filler(m, fd, err, errlen);
                break;
            }
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

/* Reads the pages `bitmap` names from the diff's memory file into RAM. */
static int apply_diff(struct virt_machine *m, int dirfd, const uint64_t *bitmap, char *err,
                      size_t errlen)
{
    int fd = open_in(dirfd, MEMORY_FILE, O_RDONLY);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "diff memory file: %s", strerror(errno));
    int r = snapshot_mem_check_file(&m->mem, fd, "diff memory file", err, errlen);
    uint64_t npages = m->mem.ram_size / GUEST_PAGE_SIZE;
    for (uint64_t p = 0; p < npages && !r;) {
        if (!(bitmap[p / 64] >> (p % 64) & 1)) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < npages && (bitmap[q / 64] >> (q % 64) & 1) && q - p < 1024)
            q++;
        size_t len = (size_t)((q - p) * GUEST_PAGE_SIZE);
        ssize_t n = pread(fd, m->mem.ram + p * GUEST_PAGE_SIZE, len, (off_t)(p * GUEST_PAGE_SIZE));
        if (n != (ssize_t)len)
            r = errmsg(err, errlen, n < 0 ? -errno : -EIO, "reading the diff memory file: %s",
                       n < 0 ? strerror(errno) : "short read");
        p = q;
    }
    close(fd);
    return r;
}

/* RAM from the snapshot in `dir` (its vm.state already open as `rd`): a full
 * snapshot's memory file, or, for a diff, its parent's RAM (recursively,
 * checked against the CRC the diff recorded) with the diff's pages on top. */
static int load_memory_chain(struct virt_machine *m, const char *dir, int dirfd,
                             const struct state_reader *rd, enum vm_restore_memory how,
                             unsigned depth, char *err, size_t errlen)
{
    struct diff_info d;
    char why[512];
    int r = read_diff_section(rd, m->mem.ram_size, &d, why, sizeof(why));
    if (r < 0)
        return errmsg(err, errlen, r, "%s/%s: %s", dir, STATE_FILE, why);
    if (r == 0)
        return load_memory(m, dirfd, how, err, errlen);
    r = 0;
    int pdirfd = -1;
    uint32_t crc = 0;
    struct state_reader prd = { 0 };
    if (depth >= DIFF_MAX_DEPTH)
        r = errmsg(err, errlen, -ELOOP, "%s: more than %u diff snapshots in a chain", dir,
                   DIFF_MAX_DEPTH);
    /* A relative parent is relative to the diff's directory. */
    if (!r && (pdirfd = openat(dirfd, d.parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        r = errmsg(err, errlen, -errno, "%s: its parent snapshot %s: %s", dir, d.parent,
                   strerror(errno));
    if (!r && (file_crc(pdirfd, STATE_FILE, &crc) || crc != d.parent_crc))
        r = errmsg(err, errlen, -ESTALE, "%s: its parent snapshot %s is not the one it was taken "
                   "after (vm.state differs)", dir, d.parent);
    if (!r) {
        int fd = open_in(pdirfd, STATE_FILE, O_RDONLY);
        r = fd < 0 ? -errno : state_reader_open_fd(&prd, fd, why, sizeof(why));
        if (fd >= 0)
            close(fd);
        if (r)
            r = errmsg(err, errlen, r, "%s/%s: %s", d.parent, STATE_FILE, why);
    }
    if (!r)
        r = load_memory_chain(m, d.parent, pdirfd, &prd, how, depth + 1, err, errlen);
    if (!r)
        r = apply_diff(m, dirfd, d.bitmap, err, errlen);
    state_reader_free(&prd);
    if (pdirfd >= 0)
        close(pdirfd);
    free(d.bitmap);
    return r;
}

int vm_restore_build(const struct state_reader *rd, const struct vm_restore_options *o,
                     struct virt_machine **out, struct virt_config_strings *strs, char *err,
                     size_t errlen)
{
    struct virt_config c;
    uint64_t tohost = 0, fromhost = 0;
    struct virt_machine *m = NULL;
    char why[512];
    *out = NULL;
    memset(strs, 0, sizeof(*strs));
    int r = virt_config_load(rd, &c, &tohost, &fromhost, strs, why, sizeof(why));
    if (r) {
        virt_config_strings_free(strs);
        return errmsg(err, errlen, r, "%s", why);
    }
    if (o->ndisks > c.ndisks) {
        r = errmsg(err, errlen, -EINVAL, "%u --disk options, but the VM has %u disks",
                   o->ndisks, c.ndisks);
        goto fail;
    }
    if (o->disks_over_saved &&
        (r = check_disks(rd, &c, &(struct vm_restore_options){ .force_disks = o->force_disks },
                         err, errlen)))
        goto fail;
    for (unsigned i = 0; i < o->ndisks; i++)
        if (o->disks[i]) {
            c.disks[i].path = o->disks[i];
            c.disks[i].opts.by_fd = o->disk_by_fd[i];
            c.disks[i].opts.fd = o->disk_fd[i];
            if (o->disk_formats[i] != BLOCK_FORMAT_PROBE)
                c.disks[i].opts.format = o->disk_formats[i];
        }
    for (unsigned i = 0, t = 0; i < c.nnets && t < o->ntap_fds; i++)
        if (c.nets[i].kind == VIRT_NET_TAP) {
            c.nets[i].tap_by_fd = true;
            c.nets[i].tap_fd = o->tap_fds[t++];
        }
    unsigned ntaps = 0;
    for (unsigned i = 0; i < c.nnets; i++)
        ntaps += c.nets[i].kind == VIRT_NET_TAP;
    if (o->ntap_fds > ntaps) {
        r = errmsg(err, errlen, -EINVAL, "%u tap descriptors, but the snapshot has %u tap cards",
                   o->ntap_fds, ntaps);
        goto fail;
    }
    if ((r = check_disks(rd, &c, o, err, errlen)))
        goto fail;
    unsigned nmacs = o->clone_macs ? c.nnets : o->nmacs;
    bool new_cid = o->vsock_cid && c.vsock_cid;
    if (o->nmacs > c.nnets || (o->vsock_cid && !c.vsock_cid && !o->vsock_cid_optional)) {
        r = errmsg(err, errlen, -EINVAL, "the VM has %u network cards and %s vsock device: "
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
    *out = m;
    return 0;
fail:
    virt_config_strings_free(strs);
    return r;
}

int vm_snapshot_save_board(struct virt_machine *m, struct state_writer *w, char *err,
                           size_t errlen)
{
    int r = virt_config_save(&m->config, m->tohost, m->fromhost, w);
    if (r)
        return errmsg(err, errlen, r, "writing the board section: %s", strerror(-r));
    return save_disks(m, w, false, err, errlen);
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
    struct virt_machine *m = NULL;
    if ((r = vm_restore_build(&rd, o, &m, strs, why, sizeof(why)))) {
        state_reader_free(&rd);
        close(dirfd);
        return errmsg(err, errlen, r, "%s/%s: %s", o->path, STATE_FILE, why);
    }
    if ((r = load_memory_chain(m, o->path, dirfd, &rd, o->memory, 0, err, errlen)))
        goto fail;
    if ((r = virt_load(m, &rd, why, sizeof(why))))
        goto fail_why;
    /* This VM may now run more than once (each restore of the snapshot):
     * a new generation ID makes the guest reseed its RNG (dev/vmgenid.h). */
    if ((r = vmgenid_new_generation(m->genid))) {
        errmsg(err, errlen, r, "a new VM generation ID: %s", strerror(-r));
        goto fail;
    }
    track_from(m, o->path, dirfd, STATE_FILE, true);
    state_reader_free(&rd);
    close(dirfd);
    /* It may come back on another host or bridge port: the same
     * announcement as after a migration (clones' cards excepted). */
    vm_announce_start(m);
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
