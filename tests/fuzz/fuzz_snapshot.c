/* Fuzz target: the whole snapshot loader, as `nimbus restore` runs it
 * (vm/snapshot.c) but without the memory file: a vm.state stream is opened
 * (state_reader_open_mem), its board section read (virt_config_load); a
 * small machine it describes is built with config.no_boot (virt_create) and
 * every component's section loaded into it (virt_load); then saved again
 * and destroyed.
 *
 * Only machines that touch nothing on the host are built: RAM of at most
 * 32 MiB, at most 4 harts, no disks, network cards or vsock device (they
 * would open files, sockets or start libslirp); the console goes to
 * /dev/null. The kernel, initrd and firmware paths are only stat()ed by
 * virt_create (no_boot loads no image). Other inputs stop after the board.
 *
 * Input: a state stream, taken as it is and again with every section CRC
 * and the end record recomputed (so mutated payloads get past the
 * checksums). Seeds (tests/fuzz/corpus/snapshot/): the vm.state files of
 * small machines written by `build/tests/test_vm_snapshot --write-seeds DIR`.
 *
 * Checks (besides ASan/UBSan and leaks):
 *   - every failure is a negative errno with a one-line message;
 *   - a loaded machine is paused, and saving it again succeeds. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_state_util.h"
#include "fuzz_util.h"
#include "machine/virt.h"
#include "machine/virt_state.h"
#include "state/state.h"

#define MAX_RAM   (32ull << 20)
#define MAX_HARTS 4u

static void check_msg(int ret, const char *err, const char *what)
{
    FUZZ_CHECK(ret < 0, "%s: %d", what, ret);
    FUZZ_CHECK(err[0] && !strchr(err, '\n'), "%s: bad message '%s'", what, err);
}

static void one(const uint8_t *data, size_t size)
{
    char err[512] = "";
    struct state_reader r;
    int ret = state_reader_open_mem(&r, data, size, err, sizeof(err));
    if (ret) {
        check_msg(ret, err, "open");
        return;
    }
    struct virt_config c;
    struct virt_config_strings strs;
    uint64_t tohost = 0, fromhost = 0;
    err[0] = 0;
    ret = virt_config_load(&r, &c, &tohost, &fromhost, &strs, err, sizeof(err));
    if (ret) {
        check_msg(ret, err, "board");
        state_reader_free(&r);
        return;
    }
    if (c.ram_size > MAX_RAM || c.nharts > MAX_HARTS || c.ndisks || c.nnets || c.vsock_cid)
        goto out;
    c.no_boot = true;
    c.console_kind = CONSOLE_FILE;
    strcpy(c.console_path, "/dev/null");
    struct virt_machine *m = NULL;
    err[0] = 0;
    if ((ret = virt_create(&c, &m, err, sizeof(err)))) {
        /* A kernel path that is /dev/null (the console's file), say. */
        check_msg(ret, err, "virt_create");
        goto out;
    }
    m->tohost = tohost;
    m->fromhost = fromhost;
    err[0] = 0;
    ret = virt_load(m, &r, err, sizeof(err));
    if (ret) {
        check_msg(ret, err, "virt_load");
    } else {
        FUZZ_CHECK(virt_is_paused(m), "loaded but not paused");
        struct state_writer w;
        state_writer_init_mem(&w);
        err[0] = 0;
        ret = virt_save(m, &w, err, sizeof(err));
        FUZZ_CHECK(ret == 0, "saving a loaded machine: %s", err);
        FUZZ_CHECK(state_writer_finish(&w, err, sizeof(err)) == 0, "finish: %s", err);
        state_writer_free(&w);
    }
    virt_destroy(m);
out:
    virt_config_strings_free(&strs);
    state_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    uint8_t *copy = fuzz_state_fixed_copy(data, size);
    if (copy) {
        one(copy, size);
        free(copy);
    }
    return 0;
}
