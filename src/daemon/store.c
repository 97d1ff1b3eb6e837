/* nimbusd's database. See store.h. */
#include "daemon/store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "base/errmsg.h"

struct store {
    sqlite3 *db;
};

/* Migration N takes a database at user_version N to N + 1. Append only:
 * a released migration is never edited. */
static const char *const migrations[] = {
    /* 0 -> 1: VMs and their history. */
    "CREATE TABLE vms ("
    "  name TEXT PRIMARY KEY,"
    "  uuid TEXT NOT NULL UNIQUE,"
    "  definition TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  exit_reason TEXT,"
    "  snapshot TEXT,"
    "  shim_pid INTEGER NOT NULL DEFAULT 0,"
    "  pid INTEGER NOT NULL DEFAULT 0,"
    "  pid_start INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  autostart INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL,"
    "  vm TEXT NOT NULL,"
    "  from_state TEXT NOT NULL,"
    "  to_state TEXT NOT NULL,"
    "  reason TEXT NOT NULL);"
    "CREATE INDEX events_vm ON events (vm, seq);",
    /* 1 -> 2: each VM's own user for its process (0: none), unique. */
    ("ALTER TABLE vms ADD COLUMN uid INTEGER NOT NULL DEFAULT 0;"
     "CREATE UNIQUE INDEX vms_uid ON vms (uid) WHERE uid != 0;"),
    /* 2 -> 3: a migration under way (daemon/migration.h), JSON; NULL: none. */
    "ALTER TABLE vms ADD COLUMN migration TEXT;",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int store_schema_version(void)
{
    return NMIGRATIONS;
}

static int db_error(struct store *s, int rc, char *err, size_t errlen, const char *what)
{
    int e = rc == SQLITE_CONSTRAINT ? -EEXIST : rc == SQLITE_BUSY ? -EBUSY : -EIO;
    return errmsg(err, errlen, e, "database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_sql(struct store *s, const char *sql, char *err, size_t errlen)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_error(s, rc, err, errlen, sql);
}

static int user_version(struct store *s, int *v, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "user_version");
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return *v < 0 ? db_error(s, rc, err, errlen, "user_version") : 0;
}

static int migrate(struct store *s, const char *path, char *err, size_t errlen)
{
    int v = 0;
    int r = user_version(s, &v, err, errlen);
    if (r)
        return r;
    if (v > NMIGRATIONS)
        return errmsg(err, errlen, -EPROTO,
                      "%s: schema version %d is newer than this nimbusd's (%d)", path, v,
                      NMIGRATIONS);
    for (; v < NMIGRATIONS; v++) {
        char bump[64];
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
        if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)))
            return r;
        if ((r = exec_sql(s, migrations[v], err, errlen)) ||
            (r = exec_sql(s, bump, err, errlen)) || (r = exec_sql(s, "COMMIT", err, errlen))) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return r;
        }
    }
    return 0;
}

int store_open(const char *path, struct store **out, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_FULLMUTEX, NULL);
    int r = 0;
    if (rc != SQLITE_OK) {
        r = errmsg(err, errlen, -EIO, "%s: %s", path,
                   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* Another daemon (or sqlite3 reading) may hold a lock for a moment. */
    sqlite3_busy_timeout(s->db, 5000);
    if ((r = exec_sql(s, "PRAGMA journal_mode = WAL", err, errlen)) ||
        (r = exec_sql(s, "PRAGMA synchronous = NORMAL", err, errlen)) ||
        (r = exec_sql(s, "PRAGMA foreign_keys = ON", err, errlen)) ||
        (r = migrate(s, path, err, errlen)))
        goto fail;
    *out = s;
    return 0;
fail:
    sqlite3_close(s->db);
    free(s);
    return r;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? strdup((const char *)t) : NULL;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

#define VM_COLUMNS \
    "name, uuid, definition, state, exit_reason, snapshot, shim_pid, pid, pid_start, created, autostart, uid, migration"

static void bind_vm(sqlite3_stmt *st, const struct store_vm *vm)
{
    bind_text_or_null(st, 1, vm->name);
    bind_text_or_null(st, 2, vm->uuid);
    bind_text_or_null(st, 3, vm->definition);
    bind_text_or_null(st, 4, vm->state);
    bind_text_or_null(st, 5, vm->exit_reason);
    bind_text_or_null(st, 6, vm->snapshot);
    sqlite3_bind_int64(st, 7, vm->shim_pid);
    sqlite3_bind_int64(st, 8, vm->pid);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)vm->pid_start);
    sqlite3_bind_int64(st, 10, vm->created);
    sqlite3_bind_int(st, 11, vm->autostart);
    sqlite3_bind_int64(st, 12, vm->uid);
    bind_text_or_null(st, 13, vm->migration);
}

static int read_vm(sqlite3_stmt *st, struct store_vm *vm)
{
    *vm = (struct store_vm){
        .name = dup_col(st, 0),
        .uuid = dup_col(st, 1),
        .definition = dup_col(st, 2),
        .state = dup_col(st, 3),
        .exit_reason = dup_col(st, 4),
        .snapshot = dup_col(st, 5),
        .shim_pid = sqlite3_column_int64(st, 6),
        .pid = sqlite3_column_int64(st, 7),
        .pid_start = (uint64_t)sqlite3_column_int64(st, 8),
        .created = sqlite3_column_int64(st, 9),
        .autostart = sqlite3_column_int(st, 10) != 0,
        .uid = sqlite3_column_int64(st, 11),
        .migration = dup_col(st, 12),
    };
    if (!vm->name || !vm->uuid || !vm->definition || !vm->state) {
        store_vm_free(vm);
        return -ENOMEM;
    }
    return 0;
}

/* Runs a statement that returns no rows; *changes gets the rows touched. */
static int run_write(struct store *s, const char *sql, const struct store_vm *vm,
                     const char *name, int *changes, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    if (vm)
        bind_vm(st, vm);
    else
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(s, rc, err, errlen, vm ? vm->name : name);
    if (changes)
        *changes = sqlite3_changes(s->db);
    return 0;
}

int store_free_uid(struct store *s, int64_t base, int64_t count, int64_t *uid, char *err,
                   size_t errlen)
{
    /* The smallest free one: the first of the range, or one after a used
     * one whose successor is free. */
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT MIN(c) FROM (SELECT ?1 AS c UNION ALL SELECT uid + 1 FROM vms"
                                " WHERE uid >= ?1 AND uid < ?1 + ?2) WHERE c < ?1 + ?2 AND"
                                " c NOT IN (SELECT uid FROM vms)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    sqlite3_bind_int64(st, 1, base);
    sqlite3_bind_int64(st, 2, count);
    rc = sqlite3_step(st);
    int r = 0;
    if (rc != SQLITE_ROW)
        r = db_error(s, rc, err, errlen, "uid");
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        r = errmsg(err, errlen, -ENOSPC, "no free user id in %lld..%lld", (long long)base,
                   (long long)(base + count - 1));
    else
        *uid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return r;
}

int store_vm_add(struct store *s, const struct store_vm *vm, char *err, size_t errlen)
{
    int r = run_write(s, "INSERT INTO vms (" VM_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", vm,
                      NULL, NULL, err, errlen);
    if (r == -EEXIST)
        return errmsg(err, errlen, -EEXIST, "a VM named '%s' (or with uuid %s) exists",
                      vm->name, vm->uuid);
    return r;
}

int store_vm_update(struct store *s, const struct store_vm *vm, char *err, size_t errlen)
{
    int changes = 0;
    /* Same column order as VM_COLUMNS; the name (?1) is the key. */
    int r = run_write(s,
                      "UPDATE vms SET uuid = ?2, definition = ?3, state = ?4, exit_reason = ?5,"
                      " snapshot = ?6, shim_pid = ?7, pid = ?8, pid_start = ?9, created = ?10,"
                      " autostart = ?11, uid = ?12, migration = ?13 WHERE name = ?1",
                      vm, NULL, &changes, err, errlen);
    if (r == 0 && changes == 0)
        return errmsg(err, errlen, -ENOENT, "no VM named '%s'", vm->name);
    return r;
}

int store_vm_remove(struct store *s, const char *name, char *err, size_t errlen)
{
    int changes = 0, r;
    if ((r = exec_sql(s, "BEGIN IMMEDIATE", err, errlen)))
        return r;
    if ((r = run_write(s, "DELETE FROM events WHERE vm = ?1", NULL, name, NULL, err, errlen)) ||
        (r = run_write(s, "DELETE FROM vms WHERE name = ?1", NULL, name, &changes, err,
                       errlen))) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    if ((r = exec_sql(s, "COMMIT", err, errlen)))
        return r;
    return changes ? 0 : errmsg(err, errlen, -ENOENT, "no VM named '%s'", name);
}

int store_vm_get(struct store *s, const char *name, struct store_vm *out, char *err,
                 size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT " VM_COLUMNS " FROM vms WHERE name = ?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    int r;
    if (rc == SQLITE_ROW)
        r = read_vm(st, out) ? errmsg(err, errlen, -ENOMEM, "out of memory") : 0;
    else if (rc == SQLITE_DONE)
        r = errmsg(err, errlen, -ENOENT, "no VM named '%s'", name);
    else
        r = db_error(s, rc, err, errlen, name);
    sqlite3_finalize(st);
    return r;
}

int store_vm_list(struct store *s, struct store_vm **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT " VM_COLUMNS " FROM vms ORDER BY name", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    struct store_vm *v = NULL;
    size_t count = 0, cap = 0;
    int r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? 2 * cap : 8;
            struct store_vm *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                r = errmsg(err, errlen, -ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (read_vm(st, &v[count])) {
            r = errmsg(err, errlen, -ENOMEM, "out of memory");
            break;
        }
        count++;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = db_error(s, rc, err, errlen, "list");
    sqlite3_finalize(st);
    if (r) {
        store_vm_list_free(v, count);
        return r;
    }
    *out = v;
    *n = count;
    return 0;
}

void store_vm_free(struct store_vm *vm)
{
    free(vm->name);
    free(vm->uuid);
    free(vm->definition);
    free(vm->state);
    free(vm->exit_reason);
    free(vm->snapshot);
    free(vm->migration);
    *vm = (struct store_vm){ 0 };
}

void store_vm_list_free(struct store_vm *vms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_vm_free(&vms[i]);
    free(vms);
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int store_event_add(struct store *s, struct store_event *ev, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO events (time_ms, vm, from_state, to_state, reason)"
                                " VALUES (?,?,?,?,?)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    ev->time_ms = now_ms();
    sqlite3_bind_int64(st, 1, ev->time_ms);
    sqlite3_bind_text(st, 2, ev->vm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, ev->from, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, ev->to, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, ev->reason, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_error(s, rc, err, errlen, "event");
    ev->seq = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

int store_event_list(struct store *s, const char *vm, size_t max, struct store_event **out,
                     size_t *n, char *err, size_t errlen)
{
    /* The newest `max`, then put back in order. */
    const char *sql = vm ? "SELECT seq, time_ms, vm, from_state, to_state, reason FROM events"
                           " WHERE vm = ?1 ORDER BY seq DESC LIMIT ?2"
                         : "SELECT seq, time_ms, vm, from_state, to_state, reason FROM events"
                           " ORDER BY seq DESC LIMIT ?2";
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_error(s, rc, err, errlen, "prepare");
    if (vm)
        sqlite3_bind_text(st, 1, vm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
    struct store_event *e = calloc(max ? max : 1, sizeof(*e));
    if (!e) {
        sqlite3_finalize(st);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    size_t count = 0;
    while (count < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_event *ev = &e[max - 1 - count];
        ev->seq = sqlite3_column_int64(st, 0);
        ev->time_ms = sqlite3_column_int64(st, 1);
        copy_col(ev->vm, sizeof(ev->vm), st, 2);
        copy_col(ev->from, sizeof(ev->from), st, 3);
        copy_col(ev->to, sizeof(ev->to), st, 4);
        copy_col(ev->reason, sizeof(ev->reason), st, 5);
        count++;
    }
    sqlite3_finalize(st);
    if (count < max && rc != SQLITE_DONE) {
        free(e);
        return db_error(s, rc, err, errlen, "events");
    }
    memmove(e, e + (max - count), count * sizeof(*e));
    *out = e;
    *n = count;
    return 0;
}
