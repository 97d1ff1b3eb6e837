/* Unit tests of migration through the daemons (src/daemon/migration.c's
 * parts without threads or I/O, and the store's migration column):
 *  - a migration's record round-trips through its JSON; garbage, an unknown
 *    role and an over-long address are refused; only a `migrating` VM with
 *    an incoming record restores from a stream;
 *  - PUT /vms/NAME/migrate's body: the VM's fields pass through as the VM
 *    would check them (a bad mode, postcopy_after without hybrid, a missing
 *    "to", an unknown field refused), the daemon's own (undefine_source,
 *    wait) are taken out and typed;
 *  - PUT /vms/NAME/incoming's body: the definition gets the path's name,
 *    another name or a listen address that is not tcp:/unix: is refused;
 *  - the outcomes, as the states the VM goes to on each side: completed
 *    (shutdown, or undefined with undefine_source), failed or cancelled
 *    (back to what the VM process says it is: running, paused; its state
 *    before when it does not answer), the process gone without a report
 *    (shutdown when clean, crashed otherwise), still going (no outcome);
 *    the destination running, paused, or back where it was (undefined when
 *    defined for the migration);
 *  - the store keeps the record (written, read back, cleared), and a
 *    database of schema 2 gains the column with NULL in its rows. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/migration.h"
#include "daemon/store.h"

#include "check.h"

static void test_record(void)
{
    struct nd_mig_record r = { .incoming = true, .undefine_source = false };
    snprintf(r.uri, sizeof(r.uri), "tcp:0.0.0.0:4444");
    snprintf(r.from, sizeof(r.from), "undefined");
    char *text = nd_mig_record_text(&r);
    CHECK(text != NULL);
    struct nd_mig_record back;
    CHECK(nd_mig_record_parse(text, &back) == 0);
    CHECK(back.incoming && !back.undefine_source && !strcmp(back.uri, r.uri) &&
          !strcmp(back.from, "undefined"));

    struct store_vm vm = { .state = "migrating", .migration = text };
    char uri[64];
    CHECK(nd_migration_incoming_uri(&vm, uri, sizeof(uri)) && !strcmp(uri, r.uri));
    vm.state = "defined";   /* a stale record never makes a start a restore */
    CHECK(!nd_migration_incoming_uri(&vm, uri, sizeof(uri)));
    free(text);

    r = (struct nd_mig_record){ .incoming = false, .undefine_source = true };
    snprintf(r.uri, sizeof(r.uri), "tcp:10.0.0.2:4444");
    snprintf(r.from, sizeof(r.from), "paused");
    text = nd_mig_record_text(&r);
    CHECK(nd_mig_record_parse(text, &back) == 0 && !back.incoming && back.undefine_source &&
          !strcmp(back.from, "paused"));
    vm = (struct store_vm){ .state = "migrating", .migration = text };
    CHECK(!nd_migration_incoming_uri(&vm, uri, sizeof(uri)));
    free(text);

    CHECK(nd_mig_record_parse(NULL, &back) == -EINVAL);
    CHECK(nd_mig_record_parse("not json", &back) == -EINVAL);
    CHECK(nd_mig_record_parse("{\"role\":\"sideways\",\"uri\":\"x\",\"from\":\"running\"}",
                              &back) == -EINVAL);
    CHECK(nd_mig_record_parse("{\"role\":\"incoming\",\"from\":\"running\"}", &back) == -EINVAL);
    char big[600];
    snprintf(big, sizeof(big), "{\"role\":\"outgoing\",\"from\":\"running\",\"uri\":\"%0300d\"}",
             0);
    CHECK(nd_mig_record_parse(big, &back) == -EINVAL);
}

/* nd_mig_options on `text`: its return value; the VM's body in vm_body. */
static int options(const char *text, char **vm_body, struct nd_mig_record *rec, bool *wait,
                   char *err, size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    CHECK_MSG(j != NULL, "bad test JSON %s", text);
    int r = nd_mig_options(j, vm_body, rec, wait, err, errlen);
    json_decref(j);
    return r;
}

static void test_options(void)
{
    char *vb = NULL, err[256];
    struct nd_mig_record rec;
    bool wait = false;
    CHECK(options("{\"to\":\"tcp:127.0.0.1:4444\",\"mode\":\"hybrid\",\"postcopy_after\":2,"
                  "\"max_bandwidth\":1000000,\"downtime_limit_ms\":50,\"auto_converge\":true,"
                  "\"copy_storage\":true,\"undefine_source\":true}", &vb, &rec, &wait, err,
                  sizeof(err)) == 0);
    CHECK(wait && rec.undefine_source && !strcmp(rec.uri, "tcp:127.0.0.1:4444"));
    json_t *j = vb ? json_loads(vb, 0, NULL) : NULL;
    CHECK(j && !json_object_get(j, "undefine_source") && !json_object_get(j, "wait"));
    CHECK(j && json_integer_value(json_object_get(j, "postcopy_after")) == 2 &&
          json_is_true(json_object_get(j, "auto_converge")) &&
          json_is_true(json_object_get(j, "copy_storage")));
    json_decref(j);
    free(vb);
    vb = NULL;
    CHECK(options("{\"to\":\"unix:/tmp/x\",\"wait\":false}", &vb, &rec, &wait, err,
                  sizeof(err)) == 0);
    CHECK(!wait && !rec.undefine_source && vb && !strstr(vb, "wait"));
    free(vb);

    static const char *const bad[][2] = {
        { "{\"mode\":\"precopy\"}", "to" },
        { "{\"to\":\"tcp:h:1\",\"mode\":\"sideways\"}", "mode" },
        { "{\"to\":\"tcp:h:1\",\"postcopy_after\":3}", "hybrid" },
        { "{\"to\":\"tcp:h:1\",\"colour\":\"red\"}", "colour" },
        { "{\"to\":\"tcp:h:1\",\"undefine_source\":1}", "undefine_source" },
        { "{\"to\":\"tcp:h:1\",\"wait\":\"yes\"}", "wait" },
        { "{\"to\":\"tcp:h:1\",\"max_bandwidth\":-1}", "max_bandwidth" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vb = NULL;
        err[0] = '\0';
        int r = options(bad[i][0], &vb, &rec, &wait, err, sizeof(err));
        CHECK_MSG(r == -EINVAL && !vb && strstr(err, bad[i][1]), "%s: %d '%s'", bad[i][0], r,
                  err);
        free(vb);
    }
}

static int incoming(const char *text, json_t **def, char *listen, size_t n, char *err,
                    size_t errlen)
{
    json_t *j = json_loads(text, 0, NULL);
    CHECK_MSG(j != NULL, "bad test JSON %s", text);
    int r = nd_mig_incoming_options(j, "m", def, listen, n, err, errlen);
    json_decref(j);
    return r;
}

static void test_incoming_options(void)
{
    json_t *def = NULL;
    char listen[64], err[256];
    CHECK(incoming("{\"definition\":{\"memory_mib\":64},\"listen\":\"tcp:0.0.0.0:0\"}", &def,
                   listen, sizeof(listen), err, sizeof(err)) == 0);
    CHECK(def && !strcmp(json_string_value(json_object_get(def, "name")), "m") &&
          !strcmp(listen, "tcp:0.0.0.0:0"));
    json_decref(def);
    static const char *const bad[] = {
        "{\"definition\":{\"name\":\"other\"},\"listen\":\"tcp:0.0.0.0:0\"}",
        "{\"definition\":{\"name\":7},\"listen\":\"tcp:0.0.0.0:0\"}",
        "{\"definition\":{},\"listen\":\"udp:0.0.0.0:1\"}",
        "{\"definition\":{}}",
        "{\"definition\":[],\"listen\":\"tcp:h:1\"}",
        "{\"definition\":{},\"listen\":\"tcp:h:1\",\"extra\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        def = NULL;
        int r = incoming(bad[i], &def, listen, sizeof(listen), err, sizeof(err));
        CHECK_MSG(r == -EINVAL && !def, "%s: %d", bad[i], r);
    }
}

static void test_outcomes(void)
{
    struct nd_mig_record src = { .incoming = false };
    snprintf(src.uri, sizeof(src.uri), "tcp:h:1");
    snprintf(src.from, sizeof(src.from), "running");
    struct nd_mig_end e;

    e = (struct nd_mig_end){ 0 };
    CHECK(nd_mig_outgoing_end(&src, "completed", NULL, NULL, true, true, "", &e));
    CHECK(!strcmp(e.state, "shutdown") && !strcmp(e.reason, "migrated to tcp:h:1"));
    src.undefine_source = true;
    CHECK(nd_mig_outgoing_end(&src, "completed", NULL, NULL, true, true, "", &e) &&
          !strcmp(e.state, "undefined"));
    src.undefine_source = false;
    /* A failure: the VM goes on here, as its process says. */
    CHECK(nd_mig_outgoing_end(&src, "failed", "connection reset", "running", false, false, "",
                              &e));
    CHECK(!strcmp(e.state, "running") && strstr(e.reason, "failed: connection reset"));
    CHECK(nd_mig_outgoing_end(&src, "cancelled", NULL, "paused", false, false, "", &e) &&
          !strcmp(e.state, "paused") && strstr(e.reason, "cancelled"));
    snprintf(src.from, sizeof(src.from), "paused");
    CHECK(nd_mig_outgoing_end(&src, "failed", "x", NULL, false, false, "", &e) &&
          !strcmp(e.state, "paused"));
    /* The process gone without the report. */
    CHECK(nd_mig_outgoing_end(&src, "precopy", NULL, NULL, true, false, "killed by SIGKILL",
                              &e));
    CHECK(!strcmp(e.state, "crashed") && strstr(e.reason, "SIGKILL"));
    CHECK(nd_mig_outgoing_end(&src, "stop-copy", NULL, NULL, true, true, "exit status 0", &e) &&
          !strcmp(e.state, "shutdown") && strstr(e.reason, "see the destination"));
    /* Still going. */
    e = (struct nd_mig_end){ 0 };
    CHECK(!nd_mig_outgoing_end(&src, "precopy", NULL, "migrating", false, false, "", &e));
    CHECK(!nd_mig_outgoing_end(&src, "", NULL, NULL, false, false, "", &e) && !e.state);

    struct nd_mig_record dst = { .incoming = true };
    snprintf(dst.uri, sizeof(dst.uri), "tcp:0.0.0.0:1");
    snprintf(dst.from, sizeof(dst.from), "undefined");
    CHECK(!nd_mig_incoming_end(&dst, NULL, false, "", &e));
    CHECK(nd_mig_incoming_end(&dst, "running", false, "", &e) && !strcmp(e.state, "running"));
    CHECK(nd_mig_incoming_end(&dst, "migrating", false, "", &e) && !strcmp(e.state, "running"));
    CHECK(nd_mig_incoming_end(&dst, "paused", false, "", &e) && !strcmp(e.state, "paused"));
    CHECK(nd_mig_incoming_end(&dst, NULL, true, "exit status 1", &e) &&
          !strcmp(e.state, "undefined") && strstr(e.reason, "exit status 1"));
    snprintf(dst.from, sizeof(dst.from), "shutdown");
    CHECK(nd_mig_incoming_end(&dst, NULL, true, "", &e) && !strcmp(e.state, "shutdown"));

    CHECK(nd_mig_phase_final("completed") && nd_mig_phase_final("failed") &&
          nd_mig_phase_final("cancelled"));
    CHECK(!nd_mig_phase_final("precopy") && !nd_mig_phase_final("") && !nd_mig_phase_final(NULL));
}

static void test_store(const char *dir)
{
    char db[160], err[256];
    snprintf(db, sizeof(db), "%s/nimbus.db", dir);
    struct store *s = NULL;
    int r = store_open(db, &s, err, sizeof(err));
    CHECK_MSG(r == 0, "store_open: %s", err);
    if (r)
        return;
    struct store_vm vm = { .name = "m", .uuid = "u", .definition = "{}", .state = "defined",
                           .created = 1 };
    CHECK(store_vm_add(s, &vm, err, sizeof(err)) == 0);
    struct store_vm got;
    CHECK(store_vm_get(s, "m", &got, err, sizeof(err)) == 0 && got.migration == NULL);
    store_vm_free(&got);
    vm.state = "migrating";
    vm.migration = "{\"role\":\"outgoing\",\"uri\":\"tcp:h:1\",\"from\":\"running\"}";
    CHECK(store_vm_update(s, &vm, err, sizeof(err)) == 0);
    CHECK(store_vm_get(s, "m", &got, err, sizeof(err)) == 0 && got.migration &&
          !strcmp(got.migration, vm.migration) && !strcmp(got.state, "migrating"));
    store_vm_free(&got);
    vm.migration = NULL;
    vm.state = "shutdown";
    CHECK(store_vm_update(s, &vm, err, sizeof(err)) == 0);
    CHECK(store_vm_get(s, "m", &got, err, sizeof(err)) == 0 && got.migration == NULL);
    store_vm_free(&got);
    store_close(s);

    /* Schema 2 (before the column): migrated, its rows kept. */
    char old[160];
    snprintf(old, sizeof(old), "%s/v2.db", dir);
    sqlite3 *raw;
    CHECK(sqlite3_open(old, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw,
                       "CREATE TABLE vms (name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
                       " definition TEXT NOT NULL, state TEXT NOT NULL, exit_reason TEXT,"
                       " snapshot TEXT, shim_pid INTEGER NOT NULL DEFAULT 0,"
                       " pid INTEGER NOT NULL DEFAULT 0, pid_start INTEGER NOT NULL DEFAULT 0,"
                       " created INTEGER NOT NULL, autostart INTEGER NOT NULL DEFAULT 0,"
                       " uid INTEGER NOT NULL DEFAULT 0);"
                       "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                       " time_ms INTEGER NOT NULL, vm TEXT NOT NULL, from_state TEXT NOT NULL,"
                       " to_state TEXT NOT NULL, reason TEXT NOT NULL);"
                       "INSERT INTO vms (name, uuid, definition, state, created, uid)"
                       " VALUES ('old', 'uuid-old', '{}', 'running', 7, 1000001);"
                       "PRAGMA user_version = 2;",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    r = store_open(old, &s, err, sizeof(err));
    CHECK_MSG(r == 0, "open a schema-2 database: %s", err);
    if (r)
        return;
    CHECK(store_vm_get(s, "old", &got, err, sizeof(err)) == 0);
    CHECK(!strcmp(got.state, "running") && got.uid == 1000001 && got.migration == NULL);
    store_vm_free(&got);
    store_close(s);
}

int main(void)
{
    char dir[] = "/tmp/test_daemon_migration.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    test_record();
    test_options();
    test_incoming_options();
    test_outcomes();
    test_store(dir);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_daemon_migration");
}
