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
 * Checks (besides ASan/UBSan and leaks): every failure is a negative errno
 * with a one-line message; a success leaves a loaded, paused machine. */
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
    close(rfd);
    close(wfd);
    return 0;
}
