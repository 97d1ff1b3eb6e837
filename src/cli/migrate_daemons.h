/* nimbus migrate VM: a live migration through two nimbusd, driven by the
 * client as libvirt's client-managed migration (docs/daemon.md,
 * "Migration"): the destination daemon is asked to take the VM
 * (PUT /vms/VM/incoming: it defines it if it has to and starts its process
 * listening), then the source daemon to send it (PUT /vms/VM/migrate),
 * while the source's GET /vms/VM shows the progress.
 *
 * Threads: the command's (main) thread, and one for the request that
 * waits for the migration's end. */
#ifndef NIMBUS_CLI_MIGRATE_DAEMONS_H
#define NIMBUS_CLI_MIGRATE_DAEMONS_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/api_client.h"

struct migrate_daemons_args {
    const struct api_cmd_args *a;   /* --connect (the source), --json */
    const char *vm;
    const char *dest_connect;
    const char *to;                 /* where the destination listens */
    json_t *body;                   /* PUT /vm/migrate's body, as for --api */
    bool undefine_source, no_wait;
};

/* Does it; returns the exit status (0 the destination runs the VM, 1 it
 * failed: the VM goes on at the source). */
int migrate_through_daemons(const struct migrate_daemons_args *m);

/* cmd_migrate.c's: a progress line (a bar on a terminal) and the result,
 * from a GET /vm/migration object. */
void migrate_print_progress(json_t *mig, bool tty);
void migrate_print_result(json_t *mig);

#endif
