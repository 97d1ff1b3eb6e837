/* Unit tests for nimbusd's database (src/daemon/store) and its VM
 * supervisor (src/daemon/supervisor):
 *  - a new database gets the current schema; a VM's row round-trips every
 *    field; names and UUIDs are unique; update/remove of a missing VM say so;
 *  - events come back in order, per VM and the newest N; removing a VM
 *    removes its history;
 *  - the database survives a reopen (the daemon's restart), a database
 *    from a newer nimbusd (a higher user_version) is refused, one of
 *    schema 1 is migrated with its rows;
 *  - the VMs' own user ids: the smallest free one, none left, unique;
 *  - the shim: a VM process that exits, and one killed by a signal, leave
 *    exit records that read as the right reasons; the pids are right and
 *    the start time identifies the process;
 *  - descriptors handed to the VM process through the shim: at their
 *    numbers (even when their own numbers are the targets of others), none
 *    kept by the shim, none of the daemon's other descriptors passed. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/store.h"
#include "daemon/supervisor.h"

#include "check.h"

static char dir[64], db[128];

static struct store *open_store(void)
{
    struct store *s = NULL;
    char err[256] = "";
    int r = store_open(db, &s, err, sizeof(err));
    CHECK_MSG(r == 0, "store_open: %s", err);
    return s;
}

static void test_vms(void)
{
    struct store *s = open_store();
    char err[256];
    struct store_vm vm = {
        .name = "a", .uuid = "u-a", .definition = "{\"name\":\"a\"}", .state = "defined",
        .created = 1234, .autostart = true,
    };
    CHECK(store_vm_add(s, &vm, err, sizeof(err)) == 0);
    CHECK(store_vm_add(s, &vm, err, sizeof(err)) == -EEXIST);
    CHECK(strstr(err, "'a'") != NULL);
    struct store_vm other = vm;
    other.name = "b";
    CHECK(store_vm_add(s, &other, err, sizeof(err)) == -EEXIST);   /* same uuid */
    other.uuid = "u-b";
    CHECK(store_vm_add(s, &other, err, sizeof(err)) == 0);

    struct store_vm got;
    CHECK(store_vm_get(s, "a", &got, err, sizeof(err)) == 0);
    CHECK(!strcmp(got.uuid, "u-a") && !strcmp(got.state, "defined") && got.autostart);
    CHECK(got.exit_reason == NULL && got.snapshot == NULL && got.created == 1234);
    free(got.state);
    got.state = strdup("running");
    got.pid = 42;
    got.shim_pid = 41;
    got.pid_start = 1ull << 40;
    got.snapshot = strdup("/snap");
    got.exit_reason = strdup("why");
    CHECK(store_vm_update(s, &got, err, sizeof(err)) == 0);
    store_vm_free(&got);
    CHECK(store_vm_get(s, "a", &got, err, sizeof(err)) == 0);
    CHECK(!strcmp(got.state, "running") && got.pid == 42 && got.shim_pid == 41);
    CHECK(got.pid_start == 1ull << 40);
    CHECK(got.snapshot && !strcmp(got.snapshot, "/snap"));
    CHECK(got.exit_reason && !strcmp(got.exit_reason, "why"));
    store_vm_free(&got);

    CHECK(store_vm_get(s, "zz", &got, err, sizeof(err)) == -ENOENT);
    struct store_vm ghost = vm;
    ghost.name = "zz";
    CHECK(store_vm_update(s, &ghost, err, sizeof(err)) == -ENOENT);
    CHECK(store_vm_remove(s, "zz", err, sizeof(err)) == -ENOENT);

    struct store_vm *list;
    size_t n;
    CHECK(store_vm_list(s, &list, &n, err, sizeof(err)) == 0);
    CHECK_EQ(n, 2);
    CHECK(n == 2 && !strcmp(list[0].name, "a") && !strcmp(list[1].name, "b"));
    store_vm_list_free(list, n);
    store_close(s);
}

static void test_events(void)
{
    struct store *s = open_store();
    char err[256];
    for (int i = 0; i < 5; i++) {
        struct store_event ev = { 0 };
        snprintf(ev.vm, sizeof(ev.vm), "%s", i % 2 ? "b" : "a");
        snprintf(ev.from, sizeof(ev.from), "s%d", i);
        snprintf(ev.to, sizeof(ev.to), "s%d", i + 1);
        snprintf(ev.reason, sizeof(ev.reason), "step %d", i);
        CHECK(store_event_add(s, &ev, err, sizeof(err)) == 0);
        CHECK(ev.seq > 0 && ev.time_ms > 0);
    }
    struct store_event *ev;
    size_t n;
    CHECK(store_event_list(s, "a", 2, &ev, &n, err, sizeof(err)) == 0);
    CHECK_EQ(n, 2);   /* a's are steps 0, 2, 4: the newest two, oldest first */
    CHECK(n == 2 && !strcmp(ev[0].reason, "step 2") && !strcmp(ev[1].reason, "step 4"));
    CHECK(n == 2 && ev[0].seq < ev[1].seq);
    free(ev);
    CHECK(store_event_list(s, NULL, 10, &ev, &n, err, sizeof(err)) == 0);
    CHECK_EQ(n, 5);
    CHECK(n == 5 && !strcmp(ev[0].reason, "step 0") && !strcmp(ev[4].to, "s5"));
    free(ev);
    CHECK(store_vm_remove(s, "a", err, sizeof(err)) == 0);
    CHECK(store_event_list(s, "a", 10, &ev, &n, err, sizeof(err)) == 0);
    CHECK_EQ(n, 0);
    free(ev);
    CHECK(store_event_list(s, "b", 10, &ev, &n, err, sizeof(err)) == 0);
    CHECK_EQ(n, 2);
    free(ev);
    store_close(s);
}

static void test_versions(void)
{
    /* Reopened: still there (the previous tests' b). */
    struct store *s = open_store();
    char err[256];
    struct store_vm got;
    CHECK(store_vm_get(s, "b", &got, err, sizeof(err)) == 0);
    store_vm_free(&got);
    store_close(s);

    sqlite3 *raw;
    CHECK(sqlite3_open(db, &raw) == SQLITE_OK);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", store_schema_version() + 1);
    CHECK(sqlite3_exec(raw, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    s = NULL;
    CHECK(store_open(db, &s, err, sizeof(err)) == -EPROTO);
    CHECK(s == NULL && strstr(err, "newer") != NULL);

    /* Not a database at all. */
    char junk[160];
    snprintf(junk, sizeof(junk), "%s/junk.db", dir);
    FILE *f = fopen(junk, "w");
    fputs("this is not sqlite, but long enough to have a header of sorts............", f);
    fclose(f);
    CHECK(store_open(junk, &s, err, sizeof(err)) < 0);
    unlink(junk);
}

static void test_uids(void)
{
    struct store *s = open_store();
    char err[256];
    int64_t uid = 0;
    CHECK(store_free_uid(s, 5000, 10, &uid, err, sizeof(err)) == 0 && uid == 5000);
    const int64_t used[] = { 5000, 5001, 5003 };
    for (int i = 0; i < 3; i++) {
        char name[32], uuid[32];
        snprintf(name, sizeof(name), "u%d", i);
        snprintf(uuid, sizeof(uuid), "uuid-u%d", i);
        struct store_vm vm = { .name = name, .uuid = uuid, .definition = "{}",
                               .state = "defined", .uid = used[i] };
        CHECK(store_vm_add(s, &vm, err, sizeof(err)) == 0);
    }
    CHECK(store_free_uid(s, 5000, 10, &uid, err, sizeof(err)) == 0);
    CHECK_EQ(uid, 5002);
    CHECK(store_free_uid(s, 5000, 2, &uid, err, sizeof(err)) == -ENOSPC);
    struct store_vm dup = { .name = "u9", .uuid = "uuid-u9", .definition = "{}",
                            .state = "defined", .uid = 5001 };
    CHECK(store_vm_add(s, &dup, err, sizeof(err)) == -EEXIST);
    dup.uid = 0;   /* 0 (no user of its own) may repeat */
    CHECK(store_vm_add(s, &dup, err, sizeof(err)) == 0);
    dup.name = "u10";
    dup.uuid = "uuid-u10";
    CHECK(store_vm_add(s, &dup, err, sizeof(err)) == 0);
    store_close(s);
}

/* A database of schema 1 (before the uid column) opens and is migrated,
 * its rows kept. */
static void test_migration(void)
{
    char old[160], err[256];
    snprintf(old, sizeof(old), "%s/v1.db", dir);
    sqlite3 *raw;
    CHECK(sqlite3_open(old, &raw) == SQLITE_OK);
    CHECK(sqlite3_exec(raw,
                       "CREATE TABLE vms (name TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
                       " definition TEXT NOT NULL, state TEXT NOT NULL, exit_reason TEXT,"
                       " snapshot TEXT, shim_pid INTEGER NOT NULL DEFAULT 0,"
                       " pid INTEGER NOT NULL DEFAULT 0, pid_start INTEGER NOT NULL DEFAULT 0,"
                       " created INTEGER NOT NULL, autostart INTEGER NOT NULL DEFAULT 0);"
                       "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                       " time_ms INTEGER NOT NULL, vm TEXT NOT NULL, from_state TEXT NOT NULL,"
                       " to_state TEXT NOT NULL, reason TEXT NOT NULL);"
                       "CREATE INDEX events_vm ON events (vm, seq);"
                       "INSERT INTO vms (name, uuid, definition, state, created)"
                       " VALUES ('old', 'uuid-old', '{}', 'shutdown', 7);"
                       "PRAGMA user_version = 1;",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(raw);
    struct store *s = NULL;
    int r = store_open(old, &s, err, sizeof(err));
    CHECK_MSG(r == 0, "open a schema-1 database: %s", err);
    if (r)
        return;
    struct store_vm got;
    CHECK(store_vm_get(s, "old", &got, err, sizeof(err)) == 0);
    CHECK(!strcmp(got.state, "shutdown") && got.created == 7 && got.uid == 0);
    store_vm_free(&got);
    store_close(s);
}

static void test_shim(const char *self)
{
    (void)self;
    char exitp[160], logp[160], reason[160];
    snprintf(exitp, sizeof(exitp), "%s/exit", dir);
    snprintf(logp, sizeof(logp), "%s/log", dir);
    /* The shim is nimbusd's --shim; here the test binary plays nimbusd. */
    char *argv1[] = { "/bin/sh", "-c", "echo hello; exit 3", NULL };
    struct vm_launch l = { .shim = self, .argv = argv1, .log_path = logp, .exit_path = exitp };
    struct vm_proc p;
    char err[256] = "";
    int r = supervisor_launch(&l, &p, err, sizeof(err));
    CHECK_MSG(r == 0, "launch: %s", err);
    if (r)
        return;
    CHECK(p.pid > 0 && p.shim_pid > 0 && p.pid != p.shim_pid);
    int st;
    CHECK(waitpid(p.shim_pid, &st, 0) == p.shim_pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    bool clean = true;
    int sig = -1;
    CHECK(supervisor_exit_reason(exitp, reason, sizeof(reason), &clean, &sig) == 0);
    CHECK(!clean && sig == 0 && !strcmp(reason, "exit status 3"));
    FILE *f = fopen(logp, "r");
    char line[32] = "";
    CHECK(f && fgets(line, sizeof(line), f) && !strcmp(line, "hello\n"));
    if (f)
        fclose(f);
    CHECK(!supervisor_alive(p.pid, p.pid_start));

    char *argv2[] = { "/bin/sleep", "30", NULL };
    l.argv = argv2;
    r = supervisor_launch(&l, &p, err, sizeof(err));
    CHECK_MSG(r == 0, "launch: %s", err);
    if (r)
        return;
    CHECK(supervisor_alive(p.pid, p.pid_start));
    CHECK(!supervisor_alive(p.pid, p.pid_start + 1));   /* another process with that pid */
    CHECK(supervisor_exit_reason(exitp, reason, sizeof(reason), &clean, &sig) == -ENOENT);
    kill(p.pid, SIGSYS);
    CHECK(waitpid(p.shim_pid, &st, 0) == p.shim_pid);
    CHECK(supervisor_exit_reason(exitp, reason, sizeof(reason), &clean, &sig) == 0);
    CHECK(!clean && sig == SIGSYS && strstr(reason, "SIGSYS") && strstr(reason, "seccomp"));

    char *argv3[] = { "/nonexistent/binary", NULL };
    l.argv = argv3;
    r = supervisor_launch(&l, &p, err, sizeof(err));
    CHECK(r == 0);
    if (r == 0) {
        waitpid(p.shim_pid, &st, 0);
        CHECK(supervisor_exit_reason(exitp, reason, sizeof(reason), &clean, &sig) == 0);
        CHECK(!strcmp(reason, "exit status 127"));
    }
}

static bool fd_in(pid_t pid, int fd)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    return access(path, F_OK) == 0;
}

static void test_shim_fds(const char *self)
{
    char exitp[160], logp[160], file[160];
    snprintf(exitp, sizeof(exitp), "%s/exit", dir);
    snprintf(logp, sizeof(logp), "%s/log", dir);
    snprintf(file, sizeof(file), "%s/disk", dir);
    FILE *f = fopen(file, "w");
    CHECK(f && fputs("disk\n", f) >= 0 && fclose(f) == 0);
    /* The pipe's write end at 5 and the file at 4, passed as {5, 4}: each
     * source is the other's target. A descriptor of the "daemon" not passed
     * (the read end, the spare) must not reach the VM. */
    CHECK(fcntl(4, F_GETFD) < 0 && fcntl(5, F_GETFD) < 0);
    int p[2];
    CHECK(pipe(p) == 0);
    int spare = open("/dev/null", O_RDONLY);
    CHECK(dup2(p[1], 5) == 5 && close(p[1]) == 0);
    int fd = open(file, O_RDONLY);
    CHECK(fd == 4 || (dup2(fd, 4) == 4 && close(fd) == 0));
    const int fds[] = { 5, 4 };
    char *args[] = { "/bin/sh", "-c", "echo hi >&4; cat <&5 >&4; exec sleep 30", NULL };
    struct vm_launch l = { .shim = self, .argv = args, .log_path = logp, .exit_path = exitp,
                           .fds = fds, .nfds = 2 };
    struct vm_proc vp;
    char err[256] = "";
    int r = supervisor_launch(&l, &vp, err, sizeof(err));
    close(4);
    close(5);
    close(spare);
    CHECK_MSG(r == 0, "launch: %s", err);
    if (r) {
        close(p[0]);
        return;
    }
    char got[32] = "";
    size_t n = 0;
    while (n < 8) {   /* "hi\ndisk\n" */
        ssize_t k = read(p[0], got + n, sizeof(got) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    got[n] = '\0';
    CHECK_MSG(!strcmp(got, "hi\ndisk\n"), "the VM process read '%s'", got);
    /* Once it is sleep and settled (its start-up opens and closes locale
     * files): 0-2, 4 and 5 only, not `spare` nor the pipe's read end. A
     * leaked descriptor never goes away, so the wait ends at its deadline. */
    char comm[64], path[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)vp.pid);
    int bad = -1;
    for (time_t end = time(NULL) + 5; time(NULL) < end;) {
        FILE *c = fopen(path, "r");
        bool slept = c && fgets(comm, sizeof(comm), c) && !strcmp(comm, "sleep\n");
        if (c)
            fclose(c);
        bad = slept ? -1 : 0;
        for (int k = 0; slept && k < 64 && bad < 0; k++)
            if (fd_in(vp.pid, k) != (k <= 2 || k == 4 || k == 5))
                bad = k;
        if (bad < 0)
            break;
        sched_yield();
    }
    CHECK_MSG(bad < 0, "the VM process's descriptors: fd %d is %s", bad,
              fd_in(vp.pid, bad) ? "there" : "missing");
    CHECK(!fd_in(vp.shim_pid, 4) && !fd_in(vp.shim_pid, 5));
    kill(vp.pid, SIGKILL);
    int st;
    CHECK(waitpid(vp.shim_pid, &st, 0) == vp.shim_pid);
    /* Nobody holds the write end any more: end of file, nothing leaked. */
    char rest[16] = "";
    ssize_t k = read(p[0], rest, sizeof(rest) - 1);
    CHECK_MSG(k == 0, "after the VM process: %zd '%s'", k, rest);
    close(p[0]);
    unlink(file);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--shim"))
        return supervisor_shim_main(argc, argv);
    snprintf(dir, sizeof(dir), "/tmp/nimbus-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db, sizeof(db), "%s/nimbus.db", dir);
    test_vms();
    test_events();
    test_versions();
    unlink(db);
    test_uids();
    test_migration();
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CHECK(n > 0);
    if (n > 0) {
        self[n] = '\0';
        test_shim(self);
        test_shim_fds(self);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary("test_daemon_store");
}
