/* nimbusd, the host daemon: one per host, it keeps the VM definitions and
 * their lifecycle in sqlite3 (store.h), starts each VM as its own confined
 * `nimbus run` process under a supervisor that outlives the daemon
 * (supervisor.h), drives it through the VM's own API socket, and serves
 * its API (daemon_http.c, docs/daemon.md) and metrics (metrics.c).
 *
 * Lifecycle (a VM's `state` in the store; the VM process's states are in
 * vm/vm_state.h, "crashed" is the daemon's own):
 *
 *   (undefined) -define-> defined -start-> running <-pause/resume-> paused
 *   running|paused -save-> saved -start (restores)-> running
 *   running|paused -shutdown|destroy-> shutdown;  the guest powers off -> shutdown
 *   the VM process dies any other way -> crashed (with its exit reason)
 *   defined|saved|shutdown|crashed -undefine-> (undefined)
 *
 * Threads: libmicrohttpd runs a thread per connection; a monitor thread
 * watches the VM processes. Everything in struct nimbusd is under `lock`,
 * which is never held across a call to a VM's API: an operation marks the
 * VM busy, drops the lock, talks to the VM, and takes the lock to record
 * the outcome. One operation per VM at a time; others get wrong_state. */
#ifndef NIMBUS_DAEMON_DAEMON_H
#define NIMBUS_DAEMON_DAEMON_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/api_socket.h"
#include "daemon/store.h"
#include "daemon/supervisor.h"

#define ND_PATH_MAX 4096
#define ND_DIR_MAX 1024               /* the daemon's directories: room for a VM's files below */
#define ND_SUN_PATH 108              /* sockaddr_un.sun_path */
#define ND_EVENT_RING 256            /* events kept for the /events streams */
#define ND_READY_TIMEOUT_MS 30000    /* a started VM must serve its API by then */
#define ND_STOP_TIMEOUT_MS 10000     /* a destroyed VM's process must be gone by then */
/* A VM process's API may not answer (stopped, hung, or compromised): the
 * daemon's requests to it have limits. Its state and counters: the store's
 * figures are shown without them. Pause and resume: they fail. Destroy: the
 * process is killed after ND_STOP_TIMEOUT_MS. (A save's request has none:
 * writing a large guest's memory may take long.) */
#define ND_QUERY_TIMEOUT_MS 2000
#define ND_OP_TIMEOUT_MS 10000
#define ND_VM_UID_BASE 1000000       /* above any distribution's users and subuid ranges' start */
#define ND_VM_UIDS 65536
#define ND_VMM_OVERHEAD_MIB 512      /* memory.max beyond the guest's RAM, by default */

struct daemon_config {
    char socket_path[ND_SUN_PATH];
    char data_dir[ND_DIR_MAX];      /* nimbus.db, vms/NAME/{log,snapshot-N} */
    char run_dir[ND_DIR_MAX];       /* NAME/{api,console,vsock}.sock, NAME/exit */
    char nimbus_bin[ND_PATH_MAX];    /* the VM processes' binary */
    char self_bin[ND_PATH_MAX];      /* nimbusd, run again as each VM's --shim */
    bool sandbox;                    /* start VMs with --sandbox */
    bool autostart;                  /* start the autostart VMs (off: --no-autostart) */
    /* Each VM's process runs as a user of its own, uid = gid in
     * [vm_uid_base, vm_uid_base + ND_VM_UIDS) (root only; 0: off). */
    int64_t vm_uid_base;
};

/* A VM's process as the daemon watches it. */
struct dvm {
    char name[64];
    struct vm_proc proc;             /* pids; 0 when it has no process */
    int pidfd;                       /* readable when the shim (or the VM) ends; -1 */
    const char *busy;                /* the operation in progress, NULL if none */
    bool exited;                     /* the process ended (reason below) */
    bool exit_clean;
    int exit_signal;
    char exit_reason[160];
    json_t *migration;               /* the last migration's progress (GET /vm/migration), NULL */
};

struct nimbusd {
    struct daemon_config cfg;
    pthread_mutex_t lock;
    pthread_cond_t changed;          /* an event was recorded, or a VM's process ended */
    struct store *store;
    /* Each VM's entry allocated on its own: an operation keeps its VM's
     * pointer while the lock is dropped (waiting for the VM), and other
     * VMs are added and removed meanwhile. */
    struct dvm **vms;
    size_t nvms, cap;
    struct store_event ring[ND_EVENT_RING];
    int64_t last_seq;                /* the newest event's seq (0: none yet) */
    int wake_fd;                     /* eventfd: the monitor's set of pidfds changed */
    bool stopping;
    unsigned migration_threads;      /* migration.c's followers running */
    pthread_t monitor;
    bool monitor_started;
    /* cgroup v2 (cgroup.h): each VM's limits in ROOT/nimbus/NAME, when the
     * host delegates a hierarchy to us; else why not. */
    bool cgroups;
    char cgroup_root[ND_PATH_MAX];
    char cgroup_why[256];
    struct MHD_Daemon *http;
    struct api_socket http_sock;
    char http_path[ND_SUN_PATH];
};

/* Errors of the operations: -errno as usual, and for the API the
 * machine-readable part. */
struct nd_err {
    char msg[512];
    char code[32];                   /* "not_found", "wrong_state", ... */
    char state[16];                  /* wrong_state: the VM's state */
    char field[64];                  /* invalid_definition, device_unavailable: the field */
};

/* ---- daemon.c: start-up and shutdown ---- */
int nimbusd_open(const struct daemon_config *cfg, struct nimbusd **out, char *err,
                 size_t errlen);
/* Stops serving; running VMs are left running (a restarted daemon finds them). */
void nimbusd_close(struct nimbusd *d);
/* mkdir -p: PATH and its missing parents with `mode`. 0 or -errno with a
 * message naming the directory that could not be made. */
int nd_mkdir_p(const char *path, mode_t mode, char *err, size_t errlen);
/* Fills the defaults: paths for root or for this user (docs/daemon.md). */
int nimbusd_default_config(struct daemon_config *cfg, char *err, size_t errlen);

/* ---- lifecycle.c: the operations (each takes and drops d->lock) ---- */
int nd_define(struct nimbusd *d, json_t *definition, json_t **info, struct nd_err *e);
int nd_undefine(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_start(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_pause(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_resume(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_save(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_shutdown(struct nimbusd *d, const char *name, unsigned timeout_s, struct nd_err *e);
int nd_destroy(struct nimbusd *d, const char *name, struct nd_err *e);
int nd_info(struct nimbusd *d, const char *name, json_t **info, struct nd_err *e);
int nd_list(struct nimbusd *d, json_t **list, struct nd_err *e);
/* Paths of a VM's files. */
void nd_vm_run_path(const struct nimbusd *d, const char *name, const char *file, char *out,
                    size_t n);
void nd_vm_data_path(const struct nimbusd *d, const char *name, const char *file, char *out,
                     size_t n);
/* Records a transition of `vm` (under d->lock): the store's row, an event,
 * the ring for the streams. */
int nd_transition(struct nimbusd *d, struct store_vm *vm, const char *to, const char *reason,
                  struct nd_err *e);
struct dvm *nd_find(struct nimbusd *d, const char *name);
struct dvm *nd_get(struct nimbusd *d, const char *name);   /* creates */
/* Drops a VM's entry (undefine; under d->lock, nothing else holds it). */
void nd_forget(struct nimbusd *d, const char *name);
/* An event as the API shows it. */
json_t *nd_event_json(const struct store_event *ev);
/* Removes the VM's cgroup once its process is gone (lock held). */
void nd_cgroup_release(struct nimbusd *d, const char *name);
/* Starts every autostart VM that is not running (daemon start). */
void nd_autostart(struct nimbusd *d);
/* What the operations share, for those in other files (migration.c).
 * nd_begin: takes the lock, checks the VM is in one of `states`
 * (space-separated) and not busy, marks it busy with `op`; nd_end records
 * nothing, clears busy, frees vm and drops the lock. */
int nd_begin(struct nimbusd *d, const char *name, const char *states, const char *op,
             struct store_vm *vm, struct dvm **dv, struct nd_err *e);
void nd_end(struct nimbusd *d, struct store_vm *vm, struct dvm *dv);
/* Lock held: nd_define's work; an undefine of a VM an operation holds (dv
 * is freed; vm too, on success); the start of vm's process (nd_start's,
 * an incoming migration's too: vm->migration says). */
int nd_define_locked(struct nimbusd *d, json_t *definition, struct nd_err *e);
int nd_remove(struct nimbusd *d, struct store_vm *vm, struct nd_err *e);
int nd_launch(struct nimbusd *d, struct store_vm *vm, struct dvm *dv, struct nd_err *e);
/* Lock not held: one request to the VM's API (timeout_ms 0: none); the
 * state it reports (NULL: no answer). */
int nd_vm_call(struct nimbusd *d, const char *name, const char *method, const char *path,
               const char *body, long timeout_ms, json_t **reply, struct nd_err *e);
const char *nd_vm_live_state(struct nimbusd *d, const char *name, char *buf, size_t n);
/* Lock held: waits for dv's process to end (true if it did); waits, kills
 * it if it will not, and forgets its pids in vm and dv. */
bool nd_wait_exit(struct nimbusd *d, struct dvm *dv, int timeout_ms);
void nd_stop_proc(struct nimbusd *d, struct store_vm *vm, struct dvm *dv);

/* ---- migration.c: live migration through the daemons (docs/daemon.md) ---- */
/* PUT /vms/NAME/migrate: the VM (running or paused) goes to the daemon
 * whose incoming VM listens at body.to; waits for the end unless body.wait
 * is false. *gone gets the reply when the VM was undefined (undefine_source). */
int nd_migrate(struct nimbusd *d, const char *name, json_t *body, json_t **gone,
               struct nd_err *e);
/* PUT /vms/NAME/migrate-cancel: an outgoing migration is cancelled; an
 * incoming one (not running here yet) ends. */
int nd_migrate_cancel(struct nimbusd *d, const char *name, struct nd_err *e);
/* PUT /vms/NAME/incoming {definition, listen}: defines the VM if needed
 * and starts its process waiting for the migration; returns once it
 * listens (info gets the VM's info and "listen", the address bound). */
int nd_incoming(struct nimbusd *d, const char *name, json_t *body, json_t **info,
                struct nd_err *e);
/* The daemon's start (nd_reattach, d->lock held): follows again the
 * migration the store says is under way for `vm`; its stop: waits for the
 * threads that follow them. */
void nd_migration_reattach(struct nimbusd *d, const struct store_vm *vm);
void nd_migration_stop(struct nimbusd *d);
/* Lock held: "migration" of a VM's info (null when none). */
json_t *nd_migration_info(struct nimbusd *d, const struct store_vm *vm);

/* ---- monitor.c: VM processes ending; finding them again at start ---- */
int nd_monitor_init(struct nimbusd *d);     /* the wake eventfd */
int nd_monitor_start(struct nimbusd *d, char *err, size_t errlen);
void nd_monitor_stop(struct nimbusd *d);
void nd_monitor_wake(struct nimbusd *d);
/* Re-attaches to the VMs the store says run, marks the vanished ones, and
 * follows again the migrations it says are under way (nd_migration_reattach). */
void nd_reattach(struct nimbusd *d);
/* Under d->lock: dv takes the process the row `vm` names; true if it
 * still runs (then watched through a pidfd). */
bool nd_attach(struct dvm *dv, const struct store_vm *vm);
/* Under d->lock: reads how dv's process ended into dv. */
void nd_read_exit(struct nimbusd *d, struct dvm *dv);

/* ---- metrics.c ---- */
struct nd_vm_stats {
    double vcpu_seconds, steal_seconds, cpu_seconds;
    uint64_t rss_bytes, balloon_mib;
    uint64_t disk_read_bytes, disk_write_bytes, disk_read_ops, disk_write_ops;
    uint64_t net_rx_bytes, net_tx_bytes, net_rx_frames, net_tx_frames;
    double uptime_s;
};
int nd_vm_stats(struct nimbusd *d, const char *name, json_t **stats, struct nd_err *e);
int nd_host(struct nimbusd *d, json_t **host, struct nd_err *e);
int nd_metrics(struct nimbusd *d, char **text, struct nd_err *e);

/* ---- daemon_http.c ---- */
int nd_http_open(struct nimbusd *d, char *err, size_t errlen);
void nd_http_close(struct nimbusd *d);

/* nd_err helpers: fill and return -errno. */
int nd_fail(struct nd_err *e, int rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int nd_wrong_state(struct nd_err *e, const char *name, const char *state, const char *what);

#endif
