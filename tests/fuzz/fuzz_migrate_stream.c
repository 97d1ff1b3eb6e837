/* Fuzz target: the destination of a live migration (vm/migrate.h), as
 * `nimbus restore --incoming` runs it, on a stream read from memory: HELLO
 * and the board, the machine built from it, PAGES (plain and zstd),
 * DISCARD, DISK (copy-storage), STATE (every component's sections loaded),
 * END, GO.
 *
 * Only machines that touch nothing on the host but this target's own
 * files are built: RAM of at most 32 MiB, at most one disk, which is a raw
 * file of 1 MiB of the target's own (the board's path replaced, as with
 * restore --incoming --disk; emptied before each input), no network cards
 * or vsock device, no post-copy (threads, userfaultfd); the console goes
 * to /dev/null. Replies go to /dev/null.
 *
 * Seeds (tests/fuzz/corpus/migrate_stream/): whole valid streams written by
 * `build/tests/test_migrate_stream --write-seeds DIR`.
 *
 * Then the same input as frames for the parsers of post-copy recovery
 * (RESUME, RECEIVED, and PAGE_REQ which follows a recovery), each frame
 * given to them for RAM of 100 and of 4096 pages.
 *
 * Checks (besides ASan/UBSan and leaks): every failure is a negative errno
 * with a one-line message; a success leaves a loaded, paused machine; a
 * RECEIVED taken has no page beyond RAM, a PAGE_REQ none outside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "machine/virt.h"
#include "vm/migrate.h"
#include "vm/migrate_stream.h"

static void check_err(int r, const char *err, const char *what)
{
    FUZZ_CHECK(r < 0 && err[0] && !strchr(err, '\n'), "%s: %d '%s'", what, r, err);
}

/* The recovery frames' parsers on every frame of the stream in rfd. */
static void recovery_frames(int rfd)
{
    static const uint64_t sizes[2] = { 100, 4096 };
    static uint64_t bm[4096 / 64];
    int wfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct migrate_conn c;
    if (wfd < 0 || migrate_conn_init(&c, rfd, wfd)) {
        if (wfd >= 0)
            close(wfd);
        return;
    }
    struct migrate_frame f;
    char err[512];
    for (int n = 0; n < 64; n++) {
        err[0] = '\0';
        if (migrate_recv(&c, &f, err, sizeof(err)))
            break;
        for (int k = 0; k < 2; k++) {
            uint64_t np = sizes[k];
            struct migrate_resume res;
            err[0] = '\0';
            int r = migrate_resume_parse(&f, &res, err, sizeof(err));
            if (r)
                check_err(r, err, "RESUME");
            err[0] = '\0';
            r = migrate_received_parse(&f, np, bm, err, sizeof(err));
            if (r)
                check_err(r, err, "RECEIVED");
            else
                FUZZ_CHECK(np % 64 == 0 || !(bm[(np - 1) / 64] >> (np % 64)),
                           "RECEIVED: a page beyond %llu taken", (unsigned long long)np);
            uint64_t pfns[MIGRATE_MAX_REQ];
            uint32_t cnt;
            err[0] = '\0';
            r = migrate_req_parse(&f, np, pfns, &cnt, err, sizeof(err));
            if (r)
                check_err(r, err, "PAGE_REQ");
            else
                for (uint32_t i = 0; i < cnt; i++)
                    FUZZ_CHECK(pfns[i] < np, "PAGE_REQ: page %llu taken",
                               (unsigned long long)pfns[i]);
        }
    }
    migrate_conn_free(&c);
    close(wfd);
}

#define DISK_SIZE (1u << 20)

static char disk_path[64];

static void remove_disk(void)
{
    unlink(disk_path);
}

/* The target's disk, emptied: 1 MiB of zeros (sparse). */
static bool reset_disk(void)
{
    if (!disk_path[0]) {
        snprintf(disk_path, sizeof(disk_path), "/tmp/nimbus-fuzz-migrate-%d.raw", (int)getpid());
        atexit(remove_disk);
    }
    int fd = open(disk_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && ftruncate(fd, 0) == 0 && ftruncate(fd, DISK_SIZE) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!reset_disk())
        return 0;
    int rfd = memfd_create("fuzz-migrate", MFD_CLOEXEC);
    int wfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (rfd < 0 || wfd < 0 || (size && write(rfd, data, size) != (ssize_t)size) ||
        lseek(rfd, 0, SEEK_SET)) {
        if (rfd >= 0)
            close(rfd);
        if (wfd >= 0)
            close(wfd);
        return 0;
    }
    struct vm_incoming_options o = { .rfd = rfd, .wfd = wfd, .max_ram = 32ull << 20,
                                     .no_host_devices = true, .no_postcopy = true };
    o.restore.disks[0] = disk_path;
    o.restore.disk_formats[0] = BLOCK_FORMAT_RAW;
    o.restore.ndisks = 1;
    o.restore.console_kind = CONSOLE_FILE;
    strcpy(o.restore.console_path, "/dev/null");
    struct virt_machine *m = NULL;
    struct virt_config_strings strs;
    bool paused;
    char err[512] = "";
    int r = vm_migrate_incoming(&o, &m, &strs, &paused, err, sizeof(err));
    if (r) {
        FUZZ_CHECK(r < 0, "incoming: %d", r);
        FUZZ_CHECK(err[0] && !strchr(err, '\n'), "bad message '%s'", err);
    } else {
        FUZZ_CHECK(m && virt_is_paused(m), "incoming: not a paused machine");
        vm_migrate_free(m);
        virt_destroy(m);
        virt_config_strings_free(&strs);
    }
    if (lseek(rfd, 0, SEEK_SET) == 0)
        recovery_frames(rfd);
    close(rfd);
    close(wfd);
    return 0;
}
