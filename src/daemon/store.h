/* nimbusd's database: VM definitions, their lifecycle state and every
 * transition, in sqlite3 (WAL mode, so `sqlite3 nimbus.db` can read it
 * while the daemon writes). The schema is versioned with PRAGMA
 * user_version and brought up to date by the migrations in store.c, each
 * in one transaction, so a daemon of a newer release opens an older
 * database and an older daemon refuses a newer one.
 *
 * Threads: a store is used under the daemon's lock (one thread at a time). */
#ifndef NIMBUS_DAEMON_STORE_H
#define NIMBUS_DAEMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* One VM's row. Strings are owned by the row (store_vm_free). */
struct store_vm {
    char *name;
    char *uuid;
    char *definition;    /* the normalized definition, JSON */
    char *state;         /* vm_state_name() spelling, or "crashed" */
    char *exit_reason;   /* NULL while it runs or never ran */
    char *snapshot;      /* the saved state's directory, NULL if none */
    int64_t shim_pid;    /* the VM's supervisor process (0: none) */
    int64_t pid;         /* the VM process (0: none) */
    uint64_t pid_start;  /* its start time (/proc/PID/stat field 22): pids get reused */
    int64_t created;     /* unix seconds */
    bool autostart;
    int64_t uid;         /* the VM process's own user and group (0: the daemon's) */
    char *migration;     /* state "migrating": the migration's record (daemon/migration.h) */
};

struct store_event {
    int64_t seq;
    int64_t time_ms;     /* unix milliseconds */
    char vm[64];
    char from[16], to[16];
    char reason[256];
};

/* Opens (creating) the database at `path` and migrates it to the current
 * schema. Returns 0, or -errno with a one-line message. */
int store_open(const char *path, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);

/* The schema version this build writes (and the one found on open). */
int store_schema_version(void);

/* The smallest uid in [base, base + count) that no VM has. -ENOSPC if none. */
int store_free_uid(struct store *s, int64_t base, int64_t count, int64_t *uid, char *err,
                   size_t errlen);

/* Adds a VM (state "defined"). -EEXIST if the name or uuid is taken. */
int store_vm_add(struct store *s, const struct store_vm *vm, char *err, size_t errlen);
/* Writes every field of an existing VM's row. -ENOENT if none. */
int store_vm_update(struct store *s, const struct store_vm *vm, char *err, size_t errlen);
/* Removes a VM and its history. */
int store_vm_remove(struct store *s, const char *name, char *err, size_t errlen);
/* Reads one VM (-ENOENT if none) or all of them, by name. */
int store_vm_get(struct store *s, const char *name, struct store_vm *out, char *err,
                 size_t errlen);
int store_vm_list(struct store *s, struct store_vm **out, size_t *n, char *err, size_t errlen);
void store_vm_free(struct store_vm *vm);
void store_vm_list_free(struct store_vm *vms, size_t n);

/* Records a transition; fills ev->seq and ev->time_ms. */
int store_event_add(struct store *s, struct store_event *ev, char *err, size_t errlen);
/* The last `max` events of `vm` (NULL: of every VM), oldest first. */
int store_event_list(struct store *s, const char *vm, size_t max, struct store_event **out,
                     size_t *n, char *err, size_t errlen);

#endif
