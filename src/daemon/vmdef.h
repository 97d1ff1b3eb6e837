/* VM definitions: the DEFINITION JSON that nimbusd keeps for each VM
 * (docs/cli.md, "Definitions") as a plain struct: parsed and validated
 * field by field, defaults filled, written back as normalized JSON, and
 * turned into the argv of the VM's `nimbus run` process.
 *
 * A definition goes through, at `define`:
 *   vmdef_parse        types, ranges, names, absolute paths, device count
 *                      (no file system, no randomness);
 *   vmdef_check_files  the files exist and can be read (disks written too,
 *                      unless read-only); a disk without "format" gets the
 *                      probed one, so that a raw disk whose guest later
 *                      writes a qcow2 header stays raw (nimbus run refuses
 *                      format=raw on such a file rather than trust it);
 *   vmdef_conflicts    host-wide uniqueness against the other definitions;
 *   vmdef_assign_ids   a UUID and MACs where absent (random, unique).
 * vmdef_define does the four in that order. A definition read back from the
 * daemon's store needs vmdef_parse only (it is normalized already).
 *
 * Errors: -errno and one line "FIELD: what is wrong", FIELD being the JSON
 * path of the field ("vcpus", "disks[1].path", "nets[0].hostfwd[2]"), so
 * vmdef_err_field() can give the contract's "field". The errno tells the
 * daemon which error code to answer with:
 *   -EEXIST       the name (or UUID) is another VM's       -> 409 exists
 *   -ENOMEM, -EIO out of memory, no randomness              -> 500 failed
 *   anything else (-EINVAL, -ENOENT, -EACCES, -EADDRINUSE for a MAC, CID,
 *                 disk or host port another VM has, ...)   -> 400 invalid_definition
 *
 * Threads: any; a struct vmdef is not shared while it is written. */
#ifndef NIMBUS_DAEMON_VMDEF_H
#define NIMBUS_DAEMON_VMDEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "machine/guest_event.h"
#include "net/net.h"

#define VMDEF_NAME_MAX   63u       /* [a-z0-9][a-z0-9_.-]{0,62} */
#define VMDEF_UUID_TEXT  37u       /* 8-4-4-4-12 hex digits and the NUL */
#define VMDEF_MAX_VCPUS  64u
#define VMDEF_MIN_MIB    16u
#define VMDEF_MAX_MIB    1048576u  /* 1 TiB, the board's limit */
/* Disks, cards, a virtio console, vsock and balloon share the board's
 * virtio-mmio slots but the entropy device's (nimbus run --help). */
#define VMDEF_MAX_DEVICES 7u
/* Paths and the kernel command line: what a snapshot's board section keeps. */
#define VMDEF_STRING_MAX 4095u

enum vmdef_net_type { VMDEF_NET_USER, VMDEF_NET_TAP };
enum vmdef_console { VMDEF_CONSOLE_SERIAL, VMDEF_CONSOLE_VIRTIO };
enum vmdef_jit { VMDEF_JIT_DEFAULT, VMDEF_JIT_OFF, VMDEF_JIT_ON };

struct vmdef_disk {
    char *path;
    enum block_format format;     /* PROBE until vmdef_check_files */
    bool readonly;
    enum block_cache cache;
};

struct vmdef_net {
    enum vmdef_net_type type;
    bool has_mac;                 /* false until vmdef_assign_ids */
    uint8_t mac[6];
    char ifname[16];              /* tap */
    char *hostfwd[NET_MAX_HOSTFWD];   /* user: QEMU's rule text */
    unsigned nhostfwd;
};

struct vmdef {
    char name[VMDEF_NAME_MAX + 1];
    char uuid[VMDEF_UUID_TEXT];   /* lower case; "" until vmdef_assign_ids */
    unsigned vcpus;
    uint64_t memory_mib;
    char *kernel, *initrd, *cmdline, *bios;   /* NULL: absent */
    struct vmdef_disk disks[VMDEF_MAX_DEVICES];
    unsigned ndisks;
    struct vmdef_net nets[VMDEF_MAX_DEVICES];
    unsigned nnets;
    uint32_t vsock_cid;           /* 0: no vsock device */
    bool balloon;
    enum vmdef_console console;
    enum vmdef_jit jit;
    /* nimbus run --watchdog=ACTION and --on-panic ACTION (machine/guest_event.h). */
    bool watchdog;                /* false: the board has no watchdog */
    enum guest_action watchdog_action;    /* reset, poweroff, pause, none */
    enum guest_action panic_action;       /* none (default), pause, poweroff */
    bool autostart;
    unsigned cpu_weight;          /* 1..10000 */
    unsigned cpu_max_percent;     /* 0: no cap */
    uint64_t memory_max_mib;      /* 0: the daemon's default */
};

/* Parses and checks `j` into *d (defaults filled: vcpus 1, memory_mib 512,
 * console serial, cpu_weight 100, ...). On success free *d with
 * vmdef_free(); on failure *d holds nothing to free. */
int vmdef_parse(const json_t *j, struct vmdef *d, char *err, size_t errlen);

/* The files: kernel, initrd, bios must be readable regular files; disks
 * readable (and writable unless read-only) regular files or block devices.
 * Disks without a format get the probed one. */
int vmdef_check_files(struct vmdef *d, char *err, size_t errlen);

/* Is `d` at odds with the `n` definitions in `others` (the host's other
 * VMs: leave `d`'s own stored definition out when checking an update)?
 * Refused: the same name or UUID (-EEXIST); a MAC, a vsock CID, a
 * user-network host port (same protocol, same or wildcard address) another
 * VM has; a disk another VM has unless both have it read-only
 * (-EADDRINUSE). Paths are compared as written. */
int vmdef_conflicts(const struct vmdef *d, const struct vmdef *others, size_t n, char *err,
                    size_t errlen);

/* Fills what is absent: a version 4 UUID, a MAC 52:54:00:xx:xx:xx for each
 * card without one (none equal to another card's, here or in `others`).
 * -EIO when the host gives no randomness. */
int vmdef_assign_ids(struct vmdef *d, const struct vmdef *others, size_t n, char *err,
                     size_t errlen);

/* vmdef_parse, vmdef_check_files, vmdef_conflicts, vmdef_assign_ids. */
int vmdef_define(const json_t *j, const struct vmdef *others, size_t n, struct vmdef *d,
                 char *err, size_t errlen);

/* The normalized DEFINITION: every field with its value or default, in a
 * fixed order; absent optional ones (kernel, initrd, cmdline, bios, vsock,
 * jit, watchdog, uuid and MACs before assignment) left out. vmdef_parse of it gives
 * *d back. NULL when out of memory. */
json_t *vmdef_to_json(const struct vmdef *d);

/* Where a VM process lives: the binary and its run directory's sockets. */
struct vmdef_paths {
    const char *nimbus;          /* the nimbus binary */
    const char *api_socket;      /* --api */
    const char *console_socket;  /* --console [virtio,]socket: */
    const char *vsock_socket;    /* --vsock CID,path= (used when d->vsock_cid) */
    /* Descriptors handed in (daemon/devices.h): disk i is `--disk
     * fd=disk_fds[i]`, tap card i `--net tap,fd=tap_fds[i]` where the array
     * is given and the number >= 0; else they go by path and name. */
    const int *disk_fds;
    const int *tap_fds;
};

/* The VM process's command line, NULL-terminated, in *argv (free it with
 * vmdef_argv_free):
 *   NIMBUS run [--kernel K] [--initrd I] [--append C] [--bios B] --mem NM
 *     --smp N [--disk PATH|fd=N[,format=F][,readonly][,cache=none]]...
 *     [--net user[,hostfwd=R]...[,mac=M] | --net tap,ifname=T|fd=N[,mac=M]]...
 *     [--vsock CID,path=P] [--balloon] --api P --console [virtio,]socket:P
 *     [--jit on|off] [--watchdog=A] [--on-panic A]
 * -ENAMETOOLONG when a socket path does not fit a sockaddr_un (the vsock
 * one with room for its "_PORT" suffix), -EINVAL when one is missing. */
int vmdef_argv(const struct vmdef *d, const struct vmdef_paths *p, char ***argv, char *err,
               size_t errlen);
void vmdef_argv_free(char **argv);

/* FIELD of an error message "FIELD: ..." into field[len] ("" if the message
 * does not start with one). Returns the length. */
size_t vmdef_err_field(const char *err, char *field, size_t len);

void vmdef_free(struct vmdef *d);

#endif
