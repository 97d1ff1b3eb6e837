/* The `virt` board: QEMU-compatible memory map, devices, device tree, image
 * loading and the firmware choice (built-in SBI or an M-mode --bios).
 *
 *   0x0010_0000  sifive_test finisher     0x0c00_0000  PLIC
 *   0x0010_1000  goldfish RTC (IRQ 11)    0x1000_0000  NS16550A UART (IRQ 10)
 *   0x0010_2000  VM generation ID (IRQ 12)
 *   0x0010_3000  sun6i watchdog (IRQ 13; only with config.watchdog)
 *   0x0200_0000  ACLINT (CLINT layout)    0x1000_1000+ virtio-mmio slots (IRQ 1+n)
 *   0x8000_0000  RAM
 *
 * Threads: virt_create/virt_destroy on the control thread; the rest says. */
#ifndef NIMBUS_MACHINE_VIRT_H
#define NIMBUS_MACHINE_VIRT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "cpu/hart.h"
#include "cpu/timebase.h"
#include "machine/console.h"
#include "machine/guest_event.h"
#include "machine/panic_detect.h"
#include "machine/sbi.h"
#include "mem/guest_mem.h"
#include "net/net.h"
#include "virtio/balloon.h"

#define VIRT_RAM_BASE    0x80000000ull
#define VIRT_MAX_HARTS   64u
#define VIRT_MIN_RAM     (16ull << 20)
#define VIRT_MAX_RAM     (1ull << 40)
#define VIRT_KERNEL_ADDR (VIRT_RAM_BASE + 0x200000ull)
#define VIRT_VIRTIO_BASE 0x10001000ull
#define VIRT_VIRTIO_SLOTS 8u
#define VIRT_VIRTIO_IRQ  1u      /* slot n interrupts on PLIC source 1 + n */
/* Slot use: disks from slot 0 in command-line order, then the network
 * cards in command-line order, then the virtio console (--console virtio),
 * the vsock device (--vsock) and the balloon (--balloon), each in the next
 * free slot; the entropy device in the last slot, so its address never
 * depends on the others. */
#define VIRT_RNG_SLOT    (VIRT_VIRTIO_SLOTS - 1)
#define VIRT_MAX_DISKS   (VIRT_VIRTIO_SLOTS - 1)
#define VIRT_MAX_NETS    (VIRT_VIRTIO_SLOTS - 1)
#define VIRT_ISA_STRING  "rv64imafdc_zicntr_zicsr_zifencei_zihintpause_zba_zbb_zbs_sstc"

struct virt_disk {
    const char *path;
    struct block_options opts;
};

enum virt_net_kind { VIRT_NET_USER, VIRT_NET_TAP };

struct virt_net {
    enum virt_net_kind kind;
    struct net_user_options user;   /* VIRT_NET_USER: host forwards */
    char ifname[16];                /* VIRT_NET_TAP (filled in when tap_by_fd) */
    bool tap_by_fd;                 /* VIRT_NET_TAP on the attached descriptor tap_fd
                                       (net_tap_open_fd), not by opening ifname */
    int tap_fd;
    bool has_mac;
    uint8_t mac[6];                 /* else 52:54:00:12:34:56 + the card's index */
};

struct virt_config {
    const char *kernel;     /* NULL: bare-metal run of `bios` */
    bool kernel_raw;        /* load `kernel` as a flat binary, not an ELF or Image */
    const char *initrd;
    const char *append;     /* kernel command line */
    const char *bios;       /* NULL: built-in SBI */
    const char *dump_dtb;   /* write the device tree here, if set */
    uint64_t ram_size;
    unsigned nharts;
    enum console_kind console_kind;
    char console_path[4096];
    bool jit;               /* binary translator (cpu/jit) on every hart */
    uint64_t jit_cache;     /* its code cache per hart, bytes (0: default) */
    unsigned jit_threshold; /* block executions before translation */
    const char *jit_dump;   /* write each translated unit here (cpu/jit/dump.h) */
    bool jit_perf_map;      /* and/or name them in /tmp/perf-PID.map */
    bool console_virtio;    /* the console backend serves a virtio-console (hvc0) */
    uint64_t vsock_cid;     /* 0: no vsock device; else the guest's CID (>= 3) */
    char vsock_path[108];   /* the host side's unix socket (sockaddr_un.sun_path) */
    struct virt_disk disks[VIRT_MAX_DISKS];   /* virtio-blk, slots 0.. */
    unsigned ndisks;
    struct virt_net nets[VIRT_MAX_NETS];      /* virtio-net, the slots after the disks */
    unsigned nnets;
    bool balloon;                              /* virtio-balloon, after the disks */
    struct virtio_balloon_options balloon_opts;
    bool watchdog;                   /* the sun6i watchdog (dev/sunxi_wdt.h) */
    enum guest_action watchdog_action;   /* what its expiry does (virt_watch.c) */
    enum guest_action panic_action;  /* what a guest panic does: none, poweroff, pause */
    /* The caller fills RAM and every component's state itself (a snapshot
     * restore, virt_state.c): virt_create loads no image and starts no
     * hart. The kernel, initrd and firmware are still named for a later
     * guest reboot. */
    bool no_boot;
};

/* How a run of the machine ended. */
enum virt_stop {
    VIRT_RUNNING = 0,
    VIRT_STOP_POWEROFF,   /* guest powered off (exit code 0) */
    VIRT_STOP_FAIL,       /* finisher fail / HTIF fail: exit code in `exit_code` */
    VIRT_STOP_RESET,      /* guest asked for a reboot */
    VIRT_STOP_QUIT,       /* the user quit (Ctrl-A x, a signal) */
    VIRT_STOP_ERROR,      /* the monitor failed */
};

/* The guest's console output streams (each has its own panic detector). */
enum virt_output {
    VIRT_OUT_UART,
    VIRT_OUT_VIRTIO,      /* the virtio console (hvc0) */
    VIRT_OUT_SBI,         /* SBI console calls (earlycon=sbi), HTIF */
    VIRT_OUT_COUNT,
};

struct plic;
struct aclint;
struct uart16550;
struct goldfish_rtc;
struct sifive_test;
struct vmgenid;
struct sunxi_wdt;
struct jit_dump;
struct virtio_dev;
struct virtio_console;
struct vm_migration;

struct virt_machine {
    struct virt_config config;
    struct jit_dump *jit_dump;  /* shared by the harts' translators, or NULL */
    struct guest_mem mem;
    struct timebase timebase;
    struct hart *harts[VIRT_MAX_HARTS];
    unsigned nharts;

    struct plic *plic;
    struct aclint *aclint;
    struct uart16550 *uart;
    struct goldfish_rtc *rtc;
    struct sifive_test *finisher;
    struct vmgenid *genid;
    struct sunxi_wdt *wdt;          /* config.watchdog, else NULL */
    struct console *console;
    struct sbi_platform sbi;
    struct virtio_dev *virtio[VIRT_VIRTIO_SLOTS];   /* NULL: empty slot */
    struct virtio_console *vconsole;   /* --console virtio: takes the console input */
    struct virtio_balloon *balloon;                 /* in its slot's transport, or NULL */
    struct virtio_dev *vsock;                       /* --vsock's transport, or NULL */

    uint64_t tohost, fromhost;     /* HTIF words of a bare-metal program, or 0 */
    pthread_mutex_t htif_lock;

    /* Console input waiting for the UART's receive FIFO. */
    pthread_mutex_t input_lock;
    uint8_t input[4096];
    size_t input_len;

    int wake_fd;                   /* eventfd: wakes the I/O thread */
    _Atomic int stop;              /* enum virt_stop; first writer wins */
    int64_t exit_code;             /* VIRT_STOP_FAIL: the guest's full failure code */
    _Atomic int quit_request;      /* -1, or the exit code of the first user quit:
                                      survives virt_reset(), so a quit wins over a reboot */
    void *fdt;                     /* the device tree blob */
    size_t fdt_size;

    /* Pause (virt_pause.c): harts wait at virt_pause_point() while
     * pause_request is set; `paused` once all of them do and the devices
     * are quiesced. Guest time (timebase) stands still meanwhile. */
    pthread_mutex_t pause_lock;
    pthread_cond_t pause_cond;
    _Atomic bool pause_request;
    unsigned harts_waiting;        /* under pause_lock */
    bool paused;                   /* under pause_lock */

    /* The snapshot this VM last saved or was restored from (vm/snapshot.c):
     * a diff snapshot records only the pages written since, and names it as
     * its parent. Empty: none. */
    char last_snapshot[4096];
    uint32_t last_snapshot_crc;    /* CRC-32 of its vm.state */

    /* Watchdog expiries and guest panics (virt_watch.c): the events for the
     * API, the panic detectors of the output streams (under watch_lock),
     * whether this boot's panic was reported, and an action a hart's thread
     * leaves for the I/O thread (-1: none). */
    struct guest_events events;
    uint64_t watch_told;           /* events told on stderr (I/O thread) */
    pthread_mutex_t watch_lock;
    struct panic_detect panic_detect[VIRT_OUT_COUNT];
    _Atomic bool panic_seen;
    _Atomic int watch_action;

    /* Auto-converge of a live migration: the hart threads sleep this
     * percentage of their time (0..99), so the guest dirties memory more
     * slowly (vm/vm.c). Any thread writes it. */
    _Atomic unsigned throttle_pct;
    /* The live migration of this VM, in or out (vm/migrate.h), or NULL;
     * owned by vm/ (the machine never looks inside). */
    struct vm_migration *migration;
    /* Announcing the network cards after the VM moved or came back
     * (vm/announce.h): rounds still to send, and when the next is due
     * (timebase_host_ns). The I/O thread's once the VM runs. */
    unsigned announce_rounds;
    int64_t announce_due_ns;
};

/* Builds the machine: RAM, devices, harts, images, device tree. On failure
 * returns -errno with a one-line message in err. */
int virt_create(const struct virt_config *config, struct virt_machine **out, char *err, size_t errlen);
void virt_destroy(struct virt_machine *m);

/* Puts every hart and device back to power-on state and reloads the images
 * (used for a guest reboot). Harts must not be running. */
int virt_reset(struct virt_machine *m, char *err, size_t errlen);

/* Pauses the VM (VM lifecycle: running -> paused): every hart stops at an
 * instruction boundary, the virtio devices finish what they were doing and
 * take no new work, and guest time stops. Returns 0, -EALREADY when paused
 * already, or -ESHUTDOWN when the VM stopped meanwhile; err says so. Not
 * from a hart thread. */
int virt_pause(struct virt_machine *m, char *err, size_t errlen);
/* Resumes a paused VM: guest time goes on from where it stopped. Returns 0
 * or -EINVAL when the VM is not paused. Not from a hart thread. */
int virt_resume(struct virt_machine *m, char *err, size_t errlen);
/* True while paused. Any thread. */
bool virt_is_paused(struct virt_machine *m);
/* A hart thread's stop while pause_request is set: waits until resumed or
 * the VM stops. */
void virt_pause_point(struct virt_machine *m);

/* Records why the machine stops (the first reason wins) and tells every
 * hart and the I/O thread. A VIRT_STOP_QUIT is also recorded in
 * quit_request, which virt_reset() keeps. Any thread. */
void virt_request_stop(struct virt_machine *m, enum virt_stop why, int64_t exit_code);

/* Wakes the I/O thread (its poll returns). Any thread. */
void virt_wake_io(struct virt_machine *m);

/* ---- virt_watch.c: the watchdog's expiry and guest panics ---- */

/* Host CLOCK_MONOTONIC ns at which virt_watch_poll() should run next, or
 * INT64_MAX (no watchdog counts, or the VM is paused: guest time stands
 * still). I/O thread. */
int64_t virt_watch_deadline_ns(struct virt_machine *m);
/* Expires the watchdog when it is due and takes the actions asked for: on
 * expiry, a "watchdog" event, a line on stderr and config.watchdog_action;
 * after a panic, its line on stderr and config.panic_action. I/O thread. */
void virt_watch_poll(struct virt_machine *m);
/* Tells on stderr the events not told yet (also once the run ended, for a
 * panic the guest stopped right after). I/O thread. */
void virt_watch_tell(struct virt_machine *m);
/* Guest console output from `src` (the bytes the console took): looks for
 * the kernel's panic banner (panic_detect.h); the first panic of a boot
 * gives a "guest_panic" event and leaves its line on stderr and
 * config.panic_action to the I/O thread. Any thread. */
void virt_watch_output(struct virt_machine *m, enum virt_output src, const uint8_t *buf,
                       size_t n);
/* A new boot: the panic detectors start afresh and the next panic is
 * reported again. Harts not running. */
void virt_watch_reset(struct virt_machine *m);

/* Polls the HTIF tohost word of a bare-metal program. Any hart thread. */
void virt_htif_poll(struct virt_machine *m);

/* I/O thread: moves buffered console input into the UART as it has room. */
void virt_pump_input(struct virt_machine *m);

#endif
