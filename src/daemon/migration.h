/* Live migration through the daemons, as libvirt's client-managed (peer
 * to peer through the client) migration: the client asks the destination
 * daemon to take the VM (PUT /vms/NAME/incoming: it defines the VM if it
 * has to and starts `nimbus restore --incoming URI` under the usual
 * confinement), then the source daemon to send it (PUT /vms/NAME/migrate:
 * it drives the VM process's PUT /vm/migrate). Each daemon follows its own
 * VM process to the end on a thread of its own, so the outcome is
 * recorded on both sides whether the client stays or not, and a restarted
 * daemon follows again a migration its store says is under way:
 *
 *   source       running|paused -migrate-> migrating
 *                  -> shutdown ("migrated to URI"; undefined with
 *                     undefine_source), once the destination runs the VM
 *                  -> running|paused (the VM's own state) when it failed or
 *                     was cancelled, the reason recorded
 *                  -> crashed when the VM process died meanwhile
 *   destination  (undefined)|defined|shutdown|crashed -incoming-> migrating
 *                  -> running|paused once the VM process serves its API
 *                     (the VM process opens it only once the source said go)
 *                  -> back where it was (undefined if it was defined for
 *                     this migration) when the VM process ended before
 *
 * While `migrating` the VM is busy (one operation at a time): only
 * migrate-cancel and info reach it. The migration's record (below) is kept
 * in the VM's row, so a restarted daemon knows which side it is on.
 *
 * This header holds the parts without threads or I/O (unit-tested); the
 * daemon's operations are declared in daemon.h.
 *
 * Threads: any; nothing shared. */
#ifndef NIMBUS_DAEMON_MIGRATION_H
#define NIMBUS_DAEMON_MIGRATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "daemon/store.h"

#define ND_MIG_URI_MAX 256

/* A migration under way, as the VM's row keeps it (JSON). */
struct nd_mig_record {
    bool incoming;               /* destination; else source */
    char uri[ND_MIG_URI_MAX];    /* source: where to; destination: where it listens */
    /* The VM's state before: running or paused (source); defined, shutdown,
     * crashed, or "undefined" when it was defined for this migration. */
    char from[16];
    bool undefine_source;        /* source: undefine the VM once migrated */
};

/* 0, or -EINVAL when `text` is not a record. */
int nd_mig_record_parse(const char *text, struct nd_mig_record *rec);
/* The record's JSON text (malloc'd), NULL when out of memory. */
char *nd_mig_record_text(const struct nd_mig_record *rec);

/* The listen address of vm's incoming migration into uri (true), false if
 * vm is not waiting for one. */
bool nd_migration_incoming_uri(const struct store_vm *vm, char *uri, size_t n);

/* PUT /vms/NAME/migrate's body: the fields of the VM API's PUT /vm/migrate
 * (to, mode, max_bandwidth, downtime_limit_ms, max_rounds, auto_converge,
 * postcopy_after, compress: checked as the VM checks them) and the
 * daemon's own: undefine_source, wait (default true). *vm_body gets the
 * VM's body (malloc'd JSON), rec->uri and rec->undefine_source are set.
 * 0, or -EINVAL with a one-line message. */
int nd_mig_options(const json_t *body, char **vm_body, struct nd_mig_record *rec, bool *wait,
                   char *err, size_t errlen);

/* PUT /vms/NAME/incoming's body: {"definition": {...}, "listen": URI}; the
 * definition's name, when it has one, must be NAME. 0, or -EINVAL. */
int nd_mig_incoming_options(const json_t *body, const char *name, json_t **definition,
                            char *listen, size_t n, char *err, size_t errlen);

/* How a migration ended for the VM: its next state ("undefined": undefine
 * it) and why. */
struct nd_mig_end {
    const char *state;
    char reason[640];            /* the event keeps its first 255 bytes */
};

/* The source. `phase`: the last phase the VM process reported ("" none);
 * `error` its message; `live` the state the VM process reports now (NULL:
 * no answer); `ended`: its process is gone, `clean` with exit status 0,
 * `exit_reason` how. False while the migration goes on. */
bool nd_mig_outgoing_end(const struct nd_mig_record *rec, const char *phase, const char *error,
                         const char *live, bool ended, bool clean, const char *exit_reason,
                         struct nd_mig_end *out);

/* The destination. `live`: the state the VM process reports (NULL: it
 * does not serve its API yet); `ended`, `exit_reason` as above. */
bool nd_mig_incoming_end(const struct nd_mig_record *rec, const char *live, bool ended,
                         const char *exit_reason, struct nd_mig_end *out);

/* True for a phase after which nothing changes (completed, failed,
 * cancelled). */
bool nd_mig_phase_final(const char *phase);

#endif
