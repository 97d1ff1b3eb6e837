/* nimbusd's lifecycle operations. See daemon.h for the state machine. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "cli/api_client.h"
#include "daemon/cgroup.h"
#include "daemon/daemon.h"
#include "daemon/devices.h"
#include "daemon/migration.h"
#include "daemon/vmdef.h"

#define HISTORY_IN_INFO 20

int nd_fail(struct nd_err *e, int rc, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    snprintf(e->code, sizeof(e->code), "%s", code);
    return rc;
}

int nd_wrong_state(struct nd_err *e, const char *name, const char *state, const char *what)
{
    snprintf(e->state, sizeof(e->state), "%s", state);
    return nd_fail(e, -EBUSY, "wrong_state", "VM '%s' is %s: cannot %s it", name, state, what);
}

static int store_failed(struct nd_err *e, int r, const char *msg)
{
    return nd_fail(e, r, r == -ENOENT ? "not_found" : r == -EEXIST ? "exists" : "failed", "%s",
                   msg);
}

void nd_vm_run_path(const struct nimbusd *d, const char *name, const char *file, char *out,
                    size_t n)
{
    snprintf(out, n, "%s/%s%s%s", d->cfg.run_dir, name, file ? "/" : "", file ? file : "");
}

void nd_vm_data_path(const struct nimbusd *d, const char *name, const char *file, char *out,
                     size_t n)
{
    snprintf(out, n, "%s/vms/%s%s%s", d->cfg.data_dir, name, file ? "/" : "", file ? file : "");
}

struct dvm *nd_find(struct nimbusd *d, const char *name)
{
    for (size_t i = 0; i < d->nvms; i++)
        if (!strcmp(d->vms[i]->name, name))
            return d->vms[i];
    return NULL;
}

struct dvm *nd_get(struct nimbusd *d, const char *name)
{
    struct dvm *v = nd_find(d, name);
    if (v)
        return v;
    if (d->nvms == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct dvm **nv = realloc(d->vms, cap * sizeof(*nv));
        if (!nv)
            return NULL;
        d->vms = nv;
        d->cap = cap;
    }
    if (!(v = malloc(sizeof(*v))))
        return NULL;
    *v = (struct dvm){ .pidfd = -1 };
    d->vms[d->nvms++] = v;
    snprintf(v->name, sizeof(v->name), "%s", name);
    return v;
}

void nd_forget(struct nimbusd *d, const char *name)
{
    for (size_t i = 0; i < d->nvms; i++) {
        struct dvm *v = d->vms[i];
        if (strcmp(v->name, name))
            continue;
        if (v->pidfd >= 0)
            close(v->pidfd);
        json_decref(v->migration);
        free(v);
        d->vms[i] = d->vms[--d->nvms];
        return;
    }
}

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = value ? strdup(value) : NULL;
}

/* An event: into the store's history (`stored`), the ring the /events
 * streams read and the daemon's log (lock held). */
static int record_event(struct nimbusd *d, const char *name, const char *from, const char *to,
                        const char *reason, bool stored)
{
    char err[256];
    struct store_event ev = { 0 };
    snprintf(ev.vm, sizeof(ev.vm), "%s", name);
    snprintf(ev.from, sizeof(ev.from), "%s", from);
    snprintf(ev.to, sizeof(ev.to), "%s", to);
    snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    if (stored && store_event_add(d->store, &ev, err, sizeof(err)))
        fprintf(stderr, "nimbusd: %s\n", err);
    /* seq orders the stream; the store's rowids only grow, so stored and
     * unstored events share one sequence. */
    if (ev.seq <= d->last_seq)
        ev.seq = d->last_seq + 1;
    if (!ev.time_ms) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        ev.time_ms = (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
    }
    d->ring[ev.seq % ND_EVENT_RING] = ev;
    d->last_seq = ev.seq;
    pthread_cond_broadcast(&d->changed);
    fprintf(stderr, "nimbusd: %s: %s -> %s (%s)\n", ev.vm, ev.from, ev.to, ev.reason);
    return 0;
}

int nd_transition(struct nimbusd *d, struct store_vm *vm, const char *to, const char *reason,
                  struct nd_err *e)
{
    char err[256], from[16];
    snprintf(from, sizeof(from), "%s", vm->state);
    set_str(&vm->state, to);
    int r = store_vm_update(d->store, vm, err, sizeof(err));
    if (r)
        return store_failed(e, r, err);
    record_event(d, vm->name, from, to, reason, true);
    return 0;
}

/* ---- what the operations share ---- */

/* Takes the lock, reads the VM and checks that it is in one of `states`
 * (space-separated) and not busy; marks it busy with `op`. On success the
 * lock is held and vm, dv are set. */
static int begin(struct nimbusd *d, const char *name, const char *states, const char *op,
                 struct store_vm *vm, struct dvm **dv, struct nd_err *e)
{
    char err[256];
    pthread_mutex_lock(&d->lock);
    int r = store_vm_get(d->store, name, vm, err, sizeof(err));
    if (r) {
        pthread_mutex_unlock(&d->lock);
        return store_failed(e, r, err);
    }
    struct dvm *v = nd_get(d, name);
    if (!v)
        r = nd_fail(e, -ENOMEM, "failed", "out of memory");
    else if (v->busy) {
        snprintf(e->state, sizeof(e->state), "%s", vm->state);
        r = nd_fail(e, -EBUSY, "wrong_state", "VM '%s' is busy (%s): cannot %s it now", name,
                    v->busy, op);
    } else {
        char want[128];
        snprintf(want, sizeof(want), " %s ", states);
        char have[32];
        snprintf(have, sizeof(have), " %s ", vm->state);
        if (!strstr(want, have))
            r = nd_wrong_state(e, name, vm->state, op);
    }
    if (r) {
        store_vm_free(vm);
        pthread_mutex_unlock(&d->lock);
        return r;
    }
    v->busy = op;
    *dv = v;
    return 0;
}

static void end(struct nimbusd *d, struct store_vm *vm, struct dvm *dv)
{
    dv->busy = NULL;
    store_vm_free(vm);
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
}

/* One request to the VM's API, without the lock; timeout_ms: 0 for none. */
static int vm_call(struct nimbusd *d, const char *name, const char *method, const char *path,
                   const char *body, long timeout_ms, json_t **reply, struct nd_err *e)
{
    char sock[ND_PATH_MAX], err[512];
    nd_vm_run_path(d, name, "api.sock", sock, sizeof(sock));
    long status = 0;
    json_t *rep = NULL;
    int r = api_call_timeout(sock, method, path, body, timeout_ms, &status, &rep, err,
                             sizeof(err));
    if (r)
        return nd_fail(e, r, "failed", "VM '%s': %s", name, err);
    if (status < 200 || status > 299) {
        const char *msg = json_string_value(json_object_get(rep, "error"));
        const char *st = json_string_value(json_object_get(rep, "state"));
        /* The VM's own wrong state (changed behind the daemon's back) is
         * the client's wrong state too, not the daemon's failure. */
        bool wrong = status == 409 && st;
        if (wrong)
            snprintf(e->state, sizeof(e->state), "%s", st);
        r = nd_fail(e, wrong ? -EBUSY : -EIO, wrong ? "wrong_state" : "failed",
                    "VM '%s': %s %s: HTTP %ld: %s", name, method, path, status,
                    msg ? msg : "no message");
        json_decref(rep);
        return r;
    }
    if (reply)
        *reply = rep;
    else
        json_decref(rep);
    return 0;
}

/* The state the VM process reports (running/paused/...), NULL if none. */
static const char *vm_live_state(struct nimbusd *d, const char *name, char *buf, size_t n)
{
    struct nd_err e;
    json_t *rep = NULL;
    if (vm_call(d, name, "GET", "/vm", NULL, ND_QUERY_TIMEOUT_MS, &rep, &e))
        return NULL;
    const char *s = json_string_value(json_object_get(rep, "state"));
    snprintf(buf, n, "%s", s ? s : "");
    json_decref(rep);
    return s ? buf : NULL;
}

/* Waits (lock held) until dv's process ended or the deadline passed. */
static bool wait_exit(struct nimbusd *d, struct dvm *dv, int timeout_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += timeout_ms / 1000;
    t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    while (!dv->exited && dv->proc.pid)
        if (pthread_cond_timedwait(&d->changed, &d->lock, &t))
            break;
    return dv->exited || !dv->proc.pid;
}

/* Kills a VM process that would not stop (lock held). */
static void kill_vm(struct dvm *dv)
{
    if (supervisor_alive(dv->proc.pid, dv->proc.pid_start))
        kill(dv->proc.pid, SIGKILL);
}

/* After the process ended: forget its pids in the row. */
static void clear_proc(struct nimbusd *d, struct store_vm *vm, struct dvm *dv)
{
    nd_cgroup_release(d, vm->name);
    vm->pid = vm->shim_pid = 0;
    vm->pid_start = 0;
    set_str(&vm->exit_reason, dv->exit_reason[0] ? dv->exit_reason : NULL);
    dv->proc = (struct vm_proc){ 0 };
    dv->exited = false;
}

/* ---- cgroups ---- */

void nd_cgroup_release(struct nimbusd *d, const char *name)
{
    char err[256];
    if (d->cgroups && cgroup_remove(d->cgroup_root, name, err, sizeof(err)))
        fprintf(stderr, "nimbusd: %s: %s\n", name, err);
}

/* The VM's cgroup, with the definition's limits (lock held): `procs` gets
 * its cgroup.procs for the supervisor, "" without cgroups. */
static int vm_cgroup(struct nimbusd *d, const struct store_vm *vm, char *procs, size_t n,
                     struct nd_err *e)
{
    procs[0] = '\0';
    if (!d->cgroups)
        return 0;
    json_t *def = json_loads(vm->definition, 0, NULL);
    json_int_t weight = json_integer_value(json_object_get(def, "cpu_weight"));
    json_int_t cap = json_integer_value(json_object_get(def, "cpu_max_percent"));
    json_int_t ram = json_integer_value(json_object_get(def, "memory_mib"));
    json_int_t mem = json_integer_value(json_object_get(def, "memory_max_mib"));
    json_decref(def);
    /* cpu_max_percent of one CPU per 100 ms period; memory: the guest's
     * RAM and room for the VMM itself (block caches, device buffers, the
     * translator's code cache) unless the definition says. */
    struct cgroup_limits l = {
        .cpu_weight = weight > 0 ? (unsigned)weight : 100,
        .cpu_quota_us = cap > 0 ? (uint64_t)cap * 1000 : 0,
        .cpu_period_us = 100000,
        .memory_max = (uint64_t)(mem > 0 ? mem : ram + ND_VMM_OVERHEAD_MIB) << 20,
    };
    char err[256];
    int r = cgroup_create(d->cgroup_root, vm->name, &l, err, sizeof(err));
    if (r)
        return nd_fail(e, r, "failed", "VM '%s': its cgroup: %s", vm->name, err);
    snprintf(procs, n, "%.*s/%s/%s/cgroup.procs", ND_DIR_MAX, d->cgroup_root, CGROUP_SUBTREE,
             vm->name);
    return 0;
}

/* A VM with a user of its own writes its saved state into its data
 * directory after it dropped root: the directory is that user's. */
static int own_vm_dir(struct nimbusd *d, const char *name, uid_t uid, struct nd_err *e)
{
    char dir[ND_PATH_MAX];
    nd_vm_data_path(d, name, NULL, dir, sizeof(dir));
    if (chown(dir, uid, (gid_t)uid))
        return nd_fail(e, -errno, "failed", "%s: cannot give it to the VM's user %u: %s", dir,
                       (unsigned)uid, strerror(errno));
    return 0;
}

/* Adds one argument at the end of a NULL-terminated, heap-owned argv. */
static int append_arg(char ***argv, const char *arg, char *err, size_t errlen)
{
    size_t n = 0;
    while ((*argv)[n])
        n++;
    char **a = realloc(*argv, (n + 2) * sizeof(*a));
    if (!a)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    *argv = a;
    if (!(a[n] = strdup(arg)))
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    a[n + 1] = NULL;
    return 0;
}

/* Removes a directory tree the daemon made (a snapshot: flat files). */
static void remove_snapshot(const char *dir)
{
    if (!dir)
        return;
    static const char *const files[] = { "vm.state", "memory", "memory.zst", NULL };
    char p[ND_PATH_MAX + 32];
    for (int i = 0; files[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* ---- define / undefine ---- */

/* Every other VM's definition, for the host-wide checks (lock held). */
static int other_defs(struct nimbusd *d, struct vmdef **out, size_t *n, struct nd_err *e)
{
    char err[256];
    struct store_vm *vms;
    size_t nvms;
    int r = store_vm_list(d->store, &vms, &nvms, err, sizeof(err));
    if (r)
        return store_failed(e, r, err);
    struct vmdef *defs = calloc(nvms ? nvms : 1, sizeof(*defs));
    size_t k = 0;
    for (size_t i = 0; defs && i < nvms; i++) {
        json_t *j = json_loads(vms[i].definition, 0, NULL);
        /* Stored definitions are normalized: parsing is all they need. */
        if (j && vmdef_parse(j, &defs[k], err, sizeof(err)) == 0)
            k++;
        json_decref(j);
    }
    store_vm_list_free(vms, nvms);
    if (!defs)
        return nd_fail(e, -ENOMEM, "failed", "out of memory");
    *out = defs;
    *n = k;
    return 0;
}

static void free_defs(struct vmdef *defs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vmdef_free(&defs[i]);
    free(defs);
}

static json_t *info_json(struct nimbusd *d, const struct store_vm *vm);

/* nd_define with the lock held (an incoming migration defines its VM and
 * marks it busy at once). */
static int define_locked(struct nimbusd *d, json_t *definition, json_t **info, struct nd_err *e)
{
    char err[512];
    struct vmdef def;
    struct vmdef *others = NULL;
    size_t nothers = 0;
    int r = other_defs(d, &others, &nothers, e);
    if (r)
        return r;
    r = vmdef_define(definition, others, nothers, &def, err, sizeof(err));
    free_defs(others, nothers);
    if (r) {
        vmdef_err_field(err, e->field, sizeof(e->field));
        return nd_fail(e, r, r == -EEXIST ? "exists" : r == -ENOMEM || r == -EIO ? "failed"
                                                                                : "invalid_definition",
                       "%s", err);
    }
    char sock[ND_PATH_MAX];
    nd_vm_run_path(d, def.name, "console.sock", sock, sizeof(sock));
    char *text = NULL;
    if (strlen(sock) >= ND_SUN_PATH) {
        snprintf(e->field, sizeof(e->field), "name");
        r = nd_fail(e, -EINVAL, "invalid_definition",
                    "name: too long for a socket under the run directory %s", d->cfg.run_dir);
        goto out;
    }
    json_t *norm = vmdef_to_json(&def);
    text = norm ? json_dumps(norm, JSON_COMPACT) : NULL;
    json_decref(norm);
    if (!text) {
        r = nd_fail(e, -ENOMEM, "failed", "out of memory");
        goto out;
    }
    struct store_vm vm = {
        .name = def.name, .uuid = def.uuid, .definition = text, .state = (char *)"defined",
        .created = (int64_t)time(NULL), .autostart = def.autostart,
    };
    if (d->cfg.vm_uid_base &&
        (r = store_free_uid(d->store, d->cfg.vm_uid_base, ND_VM_UIDS, &vm.uid, err,
                            sizeof(err)))) {
        r = nd_fail(e, r, "failed", "%s", err);
        goto out;
    }
    char dir[ND_PATH_MAX];
    nd_vm_data_path(d, def.name, NULL, dir, sizeof(dir));
    if ((r = nd_mkdir_p(dir, 0750, err, sizeof(err)))) {
        r = nd_fail(e, r, "failed", "%s", err);
        goto out;
    }
    if ((r = store_vm_add(d->store, &vm, err, sizeof(err)))) {
        r = store_failed(e, r, err);
        goto out;
    }
    record_event(d, def.name, "undefined", "defined", "defined", true);
    struct store_vm got;
    if (info && store_vm_get(d->store, def.name, &got, err, sizeof(err)) == 0) {
        *info = info_json(d, &got);
        store_vm_free(&got);
    }
out:
    free(text);
    vmdef_free(&def);
    return r;
}

int nd_define(struct nimbusd *d, json_t *definition, json_t **info, struct nd_err *e)
{
    pthread_mutex_lock(&d->lock);
    int r = define_locked(d, definition, info, e);
    pthread_mutex_unlock(&d->lock);
    return r;
}

static int remove_vm(struct nimbusd *d, struct store_vm *vm, struct nd_err *e);

int nd_undefine(struct nimbusd *d, const char *name, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, "defined saved shutdown crashed", "undefine", &vm, &dv, e);
    if (r)
        return r;
    if ((r = remove_vm(d, &vm, e))) {
        end(d, &vm, dv);
        return r;
    }
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* Undefines a VM whose operation holds it (lock held): its row, history
 * and files go, and its entry (dv) with them; frees vm on success. */
static int remove_vm(struct nimbusd *d, struct store_vm *vm, struct nd_err *e)
{
    const char *name = vm->name;
    char err[256], path[ND_PATH_MAX];
    int r = store_vm_remove(d->store, name, err, sizeof(err));
    if (r)
        return store_failed(e, r, err);
    /* The daemon's files go; the disks are the user's and stay. */
    remove_snapshot(vm->snapshot);
    nd_vm_data_path(d, name, "log", path, sizeof(path));
    unlink(path);
    nd_vm_data_path(d, name, NULL, path, sizeof(path));
    rmdir(path);
    nd_vm_run_path(d, name, "exit", path, sizeof(path));
    unlink(path);
    nd_vm_run_path(d, name, NULL, path, sizeof(path));
    rmdir(path);
    /* Not in the store: the VM's history went with it. */
    record_event(d, name, vm->state, "undefined", "undefined", false);
    nd_forget(d, name);
    store_vm_free(vm);
    pthread_cond_broadcast(&d->changed);
    return 0;
}

/* ---- start ---- */

/* The VM's disks and taps, opened here and handed in (daemon/devices.h).
 * A disk or tap the host cannot give (missing, no permission, locked by
 * another process, not a tap) is the client's to fix: 409
 * device_unavailable, naming the field; the VM stays as it was. */
static int open_devices(const struct store_vm *vm, const struct vmdef *def,
                        struct vm_devices *dev, struct nd_err *e)
{
    char err[512];
    int r = vm_devices_open(def, SUPERVISOR_FIRST_FD, dev, e->field, sizeof(e->field), err,
                            sizeof(err));
    if (r == 0)
        return 0;
    bool host = r == -ENOMEM || r == -EMFILE || r == -ENFILE;
    if (host)
        e->field[0] = '\0';
    /* The message starts with the field, as define's do. */
    return nd_fail(e, r, host ? "failed" : "device_unavailable", "%s (VM '%s' cannot start)", err,
                   vm->name);
}

/* The VM process's command line and its devices: a boot from the
 * definition, or a restore of the saved state (the machine is the saved
 * one; only the host side - sockets, the translator, the descriptors of
 * its disks and taps, in slot and card order - comes from here). */
static int vm_argv(struct nimbusd *d, const struct store_vm *vm, struct vm_devices *dev,
                   char ***argv, struct nd_err *e)
{
    char err[512];
    json_t *j = json_loads(vm->definition, 0, NULL);
    struct vmdef def;
    int r = j ? vmdef_parse(j, &def, err, sizeof(err)) : -EINVAL;
    json_decref(j);
    if (r)
        return nd_fail(e, -EINVAL, "failed", "VM '%s': its stored definition: %s", vm->name,
                       j ? err : "not JSON");
    if ((r = open_devices(vm, &def, dev, e))) {
        vmdef_free(&def);
        return r;
    }
    char api[ND_PATH_MAX], console[ND_PATH_MAX], vsock[ND_PATH_MAX];
    nd_vm_run_path(d, vm->name, "api.sock", api, sizeof(api));
    nd_vm_run_path(d, vm->name, "console.sock", console, sizeof(console));
    nd_vm_run_path(d, vm->name, "vsock.sock", vsock, sizeof(vsock));
    struct vmdef_paths p = { .nimbus = d->cfg.nimbus_bin, .api_socket = api,
                             .console_socket = console, .vsock_socket = vsock,
                             .disk_fds = dev->disk_fd, .tap_fds = dev->tap_fd };
    char **args = NULL;
    /* An incoming migration is a restore from the stream (migration.c). */
    char uri[ND_MIG_URI_MAX];
    const char *incoming = nd_migration_incoming_uri(vm, uri, sizeof(uri)) ? uri : NULL;
    if (!strcmp(vm->state, "saved") || incoming) {
        char con[ND_PATH_MAX + 16];
        snprintf(con, sizeof(con), "socket:%s", console);
        const char *jit = def.jit == VMDEF_JIT_ON ? "on" : def.jit == VMDEF_JIT_OFF ? "off" : NULL;
        const char *fixed[] = { d->cfg.nimbus_bin, "restore", "--api", api, "--console", con,
                                incoming ? "--incoming" : vm->snapshot, incoming,
                                jit ? "--jit" : NULL, jit, NULL };
        if (!incoming)   /* a snapshot is one operand, --incoming URI two */
            memmove(&fixed[7], &fixed[8], 3 * sizeof(fixed[0]));
        args = calloc(sizeof(fixed) / sizeof(fixed[0]) + 2, sizeof(*args));
        for (size_t i = 0; args && fixed[i]; i++)
            if (!(args[i] = strdup(fixed[i])))
                r = -ENOMEM;
        if (!args || r)
            r = errmsg(err, sizeof(err), -ENOMEM, "out of memory");
        char opt[32];
        for (unsigned i = 0; r == 0 && i < def.ndisks; i++) {
            snprintf(opt, sizeof(opt), "fd=%d", dev->disk_fd[i]);
            if ((r = append_arg(&args, "--disk", err, sizeof(err))) == 0)
                r = append_arg(&args, opt, err, sizeof(err));
        }
        for (unsigned i = 0; r == 0 && i < def.nnets; i++) {
            if (dev->tap_fd[i] < 0)
                continue;
            snprintf(opt, sizeof(opt), "tap,fd=%d", dev->tap_fd[i]);
            if ((r = append_arg(&args, "--net", err, sizeof(err))) == 0)
                r = append_arg(&args, opt, err, sizeof(err));
        }
    } else {
        r = vmdef_argv(&def, &p, &args, err, sizeof(err));
    }
    vmdef_free(&def);
    if (r == 0 && d->cfg.sandbox)
        r = append_arg(&args, "--sandbox", err, sizeof(err));
    if (r == 0 && vm->uid) {
        char ids[48];
        snprintf(ids, sizeof(ids), "%lld:%lld", (long long)vm->uid, (long long)vm->uid);
        if ((r = append_arg(&args, "--run-as", err, sizeof(err))) == 0)
            r = append_arg(&args, ids, err, sizeof(err));
    }
    if (r) {
        vmdef_argv_free(args);
        vm_devices_close(dev);
        return nd_fail(e, r, "failed", "VM '%s': %s", vm->name, err);
    }
    *argv = args;
    return 0;
}

/* Waits (without the lock) until the VM serves its API, or its process
 * ended, or the deadline. Polls: the API socket is the readiness signal a
 * VM process gives. */
static int wait_ready(struct nimbusd *d, struct dvm *dv, const char *name, char *state,
                      size_t n, struct nd_err *e)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (vm_live_state(d, name, state, n))
            return 0;
        pthread_mutex_lock(&d->lock);
        bool exited = dv->exited;
        pthread_mutex_unlock(&d->lock);
        if (exited)
            return nd_fail(e, -ECHILD, "failed", "VM '%s' ended as it started: %s (its log: %s)",
                           name, dv->exit_reason, "nimbus logs");
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > ND_READY_TIMEOUT_MS)
            return nd_fail(e, -ETIMEDOUT, "failed", "VM '%s' did not serve its API within %d s",
                           name, ND_READY_TIMEOUT_MS / 1000);
        usleep(10000);
    }
}

/* Starts the VM process of `vm` (lock held, dv busy): its run directory,
 * cgroup and supervisor; records its pids in vm (not yet stored). */
static int launch(struct nimbusd *d, struct store_vm *vm, struct dvm *dv, struct nd_err *e)
{
    const char *name = vm->name;
    int r;
    char **argv = NULL;
    struct vm_devices dev = { .nfds = 0 };
    char run[ND_PATH_MAX], log[ND_PATH_MAX], exitp[ND_PATH_MAX], err[512];
    nd_vm_run_path(d, name, NULL, run, sizeof(run));
    nd_vm_data_path(d, name, "log", log, sizeof(log));
    nd_vm_run_path(d, name, "exit", exitp, sizeof(exitp));
    if ((r = vm_argv(d, vm, &dev, &argv, e)))
        goto out;
    /* Crossable by a VM with a user of its own (it connects to its own
     * vsock socket there), not writable: the exit record is the shim's. */
    if ((r = nd_mkdir_p(run, 0711, err, sizeof(err))) ||
        (r = chmod(run, 0711) ? errmsg(err, sizeof(err), -errno, "%s: %s", run, strerror(errno))
                              : 0)) {
        r = nd_fail(e, r, "failed", "%s", err);
        goto out;
    }
    if (vm->uid && (r = own_vm_dir(d, name, (uid_t)vm->uid, e)))
        goto out;
    char procs[ND_PATH_MAX];
    if ((r = vm_cgroup(d, vm, procs, sizeof(procs), e)))
        goto out;
    struct vm_launch l = {
        .shim = d->cfg.self_bin, .argv = argv, .log_path = log, .exit_path = exitp,
        .cgroup_procs = procs[0] ? procs : NULL, .fds = dev.fds, .nfds = dev.nfds,
    };
    dv->exited = false;
    dv->exit_reason[0] = '\0';
    r = supervisor_launch(&l, &dv->proc, err, sizeof(err));
    vm_devices_close(&dev);   /* the VM process's now (or nobody's) */
    if (r) {
        nd_cgroup_release(d, name);
        r = nd_fail(e, r, "failed", "VM '%s': %s", name, err);
        goto out;
    }
    dv->pidfd = supervisor_pidfd(dv->proc.shim_pid);
    vm->pid = dv->proc.pid;
    vm->shim_pid = dv->proc.shim_pid;
    vm->pid_start = dv->proc.pid_start;
    set_str(&vm->exit_reason, NULL);
    nd_monitor_wake(d);
out:
    vm_devices_close(&dev);
    vmdef_argv_free(argv);
    return r;
}

int nd_start(struct nimbusd *d, const char *name, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, "defined saved shutdown crashed", "start", &vm, &dv, e);
    if (r)
        return r;
    if ((r = launch(d, &vm, dv, e)))
        goto out;
    bool restoring = !strcmp(vm.state, "saved");
    pthread_mutex_unlock(&d->lock);

    char live[32] = "";
    r = wait_ready(d, dv, name, live, sizeof(live), e);

    pthread_mutex_lock(&d->lock);
    if (r) {
        kill_vm(dv);
        wait_exit(d, dv, ND_STOP_TIMEOUT_MS);
        nd_read_exit(d, dv);
        clear_proc(d, &vm, dv);
        struct nd_err e2;
        nd_transition(d, &vm, "crashed", e->msg, &e2);
        goto out;
    }
    r = nd_transition(d, &vm, !strcmp(live, "paused") ? "paused" : "running",
                      restoring ? "restored from its saved state" : "booted", e);
out:
    end(d, &vm, dv);
    return r;
}

/* ---- pause, resume ---- */

static int simple_op(struct nimbusd *d, const char *name, const char *from, const char *op,
                     const char *path, const char *to, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, from, op, &vm, &dv, e);
    if (r)
        return r;
    pthread_mutex_unlock(&d->lock);
    r = vm_call(d, name, "PUT", path, NULL, ND_OP_TIMEOUT_MS, NULL, e);
    pthread_mutex_lock(&d->lock);
    if (r == 0)
        r = nd_transition(d, &vm, to, op, e);
    end(d, &vm, dv);
    return r;
}

int nd_pause(struct nimbusd *d, const char *name, struct nd_err *e)
{
    return simple_op(d, name, "running", "pause", "/vm/pause", "paused", e);
}

int nd_resume(struct nimbusd *d, const char *name, struct nd_err *e)
{
    return simple_op(d, name, "paused", "resume", "/vm/resume", "running", e);
}

/* ---- the operations that end the process ---- */

/* Sends `path` with `body` and waits for the process to end; kills it if it
 * has not after `timeout_ms` (then *killed). A VM that refuses the request,
 * or does not answer within `call_timeout_ms` (0: no limit), is killed at
 * once if `kill_if_refused`, else left as it is. Lock held on entry and
 * exit. */
static int stop_process(struct nimbusd *d, struct dvm *dv, const char *name, const char *path,
                        const char *body, int call_timeout_ms, int timeout_ms,
                        bool kill_if_refused, bool *killed, struct nd_err *e)
{
    pthread_mutex_unlock(&d->lock);
    json_t *rep = NULL;
    int r = vm_call(d, name, "PUT", path, body, call_timeout_ms, &rep, e);
    json_decref(rep);
    pthread_mutex_lock(&d->lock);
    *killed = false;
    if (r && !kill_if_refused && supervisor_alive(dv->proc.pid, dv->proc.pid_start))
        return r;
    if (!wait_exit(d, dv, r ? 0 : timeout_ms)) {
        kill_vm(dv);
        *killed = true;
        wait_exit(d, dv, ND_STOP_TIMEOUT_MS);
    }
    nd_read_exit(d, dv);
    return r;
}

int nd_destroy(struct nimbusd *d, const char *name, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, "running paused", "destroy", &vm, &dv, e);
    if (r)
        return r;
    bool killed;
    stop_process(d, dv, name, "/vm/destroy", NULL, ND_STOP_TIMEOUT_MS, ND_STOP_TIMEOUT_MS, true,
                 &killed, e);
    clear_proc(d, &vm, dv);
    set_str(&vm.exit_reason, killed ? "destroyed (killed)" : "destroyed");
    r = nd_transition(d, &vm, "shutdown", vm.exit_reason, e);
    end(d, &vm, dv);
    return r;
}

int nd_shutdown(struct nimbusd *d, const char *name, unsigned timeout_s, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, "running paused", "shut down", &vm, &dv, e);
    if (r)
        return r;
    if (!strcmp(vm.state, "paused")) {
        /* The guest must run to power itself off. */
        pthread_mutex_unlock(&d->lock);
        r = vm_call(d, name, "PUT", "/vm/resume", NULL, ND_OP_TIMEOUT_MS, NULL, e);
        pthread_mutex_lock(&d->lock);
        if (r == 0)
            r = nd_transition(d, &vm, "running", "resumed to shut down", e);
        if (r) {
            end(d, &vm, dv);
            return r;
        }
    }
    /* The VM's own shutdown asks the guest and destroys it after its
     * timeout; the daemon waits a little longer than that. */
    char body[64];
    snprintf(body, sizeof(body), "{\"timeout_s\": %u}", timeout_s);
    bool killed;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r = stop_process(d, dv, name, "/vm/shutdown", body, ND_OP_TIMEOUT_MS,
                     (int)timeout_s * 1000 + 5000, false, &killed, e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bool gone = !supervisor_alive(dv->proc.pid, dv->proc.pid_start);
    /* The VM destroys itself at its timeout with the same exit status as a
     * guest that powered off: which one it was, the time says. */
    bool timed_out = t1.tv_sec - t0.tv_sec >= (time_t)timeout_s;
    const char *why = killed ? "shut down: killed after the timeout"
                      : dv->exit_clean && !timed_out ? "shut down: the guest powered off"
                                                     : "shut down: destroyed after the timeout";
    if (r && !gone) {
        end(d, &vm, dv);
        return r;
    }
    clear_proc(d, &vm, dv);
    set_str(&vm.exit_reason, why);
    r = nd_transition(d, &vm, "shutdown", why, e);
    end(d, &vm, dv);
    return r;
}

int nd_save(struct nimbusd *d, const char *name, struct nd_err *e)
{
    struct store_vm vm;
    struct dvm *dv;
    int r = begin(d, name, "running paused", "save", &vm, &dv, e);
    if (r)
        return r;
    /* A new directory each time: a VM restored from the last one still
     * maps its memory file until it ends. */
    char snap[ND_PATH_MAX], file[64], body[ND_PATH_MAX + 64];
    snprintf(file, sizeof(file), "snapshot-%lld", (long long)time(NULL));
    nd_vm_data_path(d, name, file, snap, sizeof(snap));
    remove_snapshot(snap);
    json_t *b = json_pack("{s:s, s:b}", "path", snap, "stop", 1);
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    snprintf(body, sizeof(body), "%s", text ? text : "{}");
    free(text);
    bool killed;
    r = stop_process(d, dv, name, "/vm/snapshot", body, 0, ND_READY_TIMEOUT_MS * 4, false,
                     &killed, e);
    if (r || killed) {
        /* The VM went on (or was lost): its state says which. */
        if (!dv->exited && !killed) {
            end(d, &vm, dv);
            return r;
        }
        clear_proc(d, &vm, dv);
        remove_snapshot(snap);
        struct nd_err e2;
        nd_transition(d, &vm, "crashed", r ? e->msg : "killed while saving", &e2);
        end(d, &vm, dv);
        return r ? r : nd_fail(e, -ETIMEDOUT, "failed", "VM '%s': the save did not end", name);
    }
    char *old = vm.snapshot ? strdup(vm.snapshot) : NULL;
    clear_proc(d, &vm, dv);
    set_str(&vm.exit_reason, NULL);
    set_str(&vm.snapshot, snap);
    r = nd_transition(d, &vm, "saved", "saved", e);
    if (r == 0 && old && strcmp(old, snap))
        remove_snapshot(old);
    free(old);
    end(d, &vm, dv);
    return r;
}

/* ---- info, list ---- */

static json_t *summary_json(const struct store_vm *vm, json_t *def)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(vm->name));
    json_object_set_new(o, "uuid", json_string(vm->uuid));
    json_object_set_new(o, "state", json_string(vm->state));
    json_object_set_new(o, "pid", vm->pid ? json_integer(vm->pid) : json_null());
    json_object_set(o, "vcpus", json_object_get(def, "vcpus"));
    json_object_set(o, "memory_mib", json_object_get(def, "memory_mib"));
    json_object_set_new(o, "autostart", json_boolean(vm->autostart));
    return o;
}

static json_t *info_json(struct nimbusd *d, const struct store_vm *vm)
{
    json_t *def = json_loads(vm->definition, 0, NULL);
    json_t *o = summary_json(vm, def);
    bool live = vm->pid != 0;
    char path[ND_PATH_MAX];
    json_object_set_new(o, "definition", def ? def : json_null());
    nd_vm_run_path(d, vm->name, "api.sock", path, sizeof(path));
    json_object_set_new(o, "api_socket", live ? json_string(path) : json_null());
    nd_vm_run_path(d, vm->name, "console.sock", path, sizeof(path));
    json_object_set_new(o, "console_socket", live ? json_string(path) : json_null());
    nd_vm_data_path(d, vm->name, "log", path, sizeof(path));
    json_object_set_new(o, "log", json_string(path));
    json_object_set_new(o, "exit_reason", vm->exit_reason ? json_string(vm->exit_reason)
                                                          : json_null());
    json_object_set_new(o, "snapshot", vm->snapshot ? json_string(vm->snapshot) : json_null());
    json_object_set_new(o, "created", json_integer(vm->created));
    json_object_set_new(o, "migration", nd_migration_info(d, vm));
    json_t *hist = json_array();
    struct store_event *ev;
    size_t n;
    char err[256];
    if (store_event_list(d->store, vm->name, HISTORY_IN_INFO, &ev, &n, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(hist, nd_event_json(&ev[i]));
        free(ev);
    }
    json_object_set_new(o, "history", hist);
    return o;
}

json_t *nd_event_json(const struct store_event *ev)
{
    char when[40];
    time_t t = (time_t)(ev->time_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + k, sizeof(when) - k, ".%03dZ", (int)(ev->time_ms % 1000));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "time", when, "vm", ev->vm, "from",
                     ev->from, "to", ev->to, "reason", ev->reason, "seq", (json_int_t)ev->seq);
}

/* A VM paused or resumed through its own socket (nimbus pause --api):
 * the store follows what the process says (lock not held). */
static void sync_live_state(struct nimbusd *d, const char *name)
{
    char live[32];
    /* What the VM says is news only if nothing was recorded meanwhile: a
     * pause that ended while we asked must not be undone by the answer
     * from before it (20 clients at once showed it). */
    pthread_mutex_lock(&d->lock);
    struct dvm *dv = nd_find(d, name);
    bool busy = !dv || dv->busy;
    int64_t seq = d->last_seq;
    pthread_mutex_unlock(&d->lock);
    if (busy || !vm_live_state(d, name, live, sizeof(live)))
        return;
    if (strcmp(live, "running") && strcmp(live, "paused"))
        return;
    pthread_mutex_lock(&d->lock);
    struct store_vm vm;
    char err[256];
    dv = nd_find(d, name);
    if (dv && !dv->busy && d->last_seq == seq &&
        store_vm_get(d->store, name, &vm, err, sizeof(err)) == 0) {
        struct nd_err e;
        if ((!strcmp(vm.state, "running") || !strcmp(vm.state, "paused")) &&
            strcmp(vm.state, live))
            nd_transition(d, &vm, live, "through the VM's own API", &e);
        store_vm_free(&vm);
    }
    pthread_mutex_unlock(&d->lock);
}

static bool is_live(const char *state)
{
    return !strcmp(state, "running") || !strcmp(state, "paused");
}

int nd_info(struct nimbusd *d, const char *name, json_t **info, struct nd_err *e)
{
    char err[256];
    struct store_vm vm;
    pthread_mutex_lock(&d->lock);
    int r = store_vm_get(d->store, name, &vm, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return store_failed(e, r, err);
    bool live = is_live(vm.state);
    store_vm_free(&vm);
    if (live)
        sync_live_state(d, name);
    pthread_mutex_lock(&d->lock);
    r = store_vm_get(d->store, name, &vm, err, sizeof(err));
    if (r == 0) {
        *info = info_json(d, &vm);
        store_vm_free(&vm);
    }
    pthread_mutex_unlock(&d->lock);
    return r ? store_failed(e, r, err) : 0;
}

int nd_list(struct nimbusd *d, json_t **list, struct nd_err *e)
{
    char err[256];
    struct store_vm *vms;
    size_t n;
    pthread_mutex_lock(&d->lock);
    int r = store_vm_list(d->store, &vms, &n, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return store_failed(e, r, err);
    for (size_t i = 0; i < n; i++)
        if (is_live(vms[i].state))
            sync_live_state(d, vms[i].name);
    store_vm_list_free(vms, n);
    pthread_mutex_lock(&d->lock);
    r = store_vm_list(d->store, &vms, &n, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return store_failed(e, r, err);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *def = json_loads(vms[i].definition, 0, NULL);
        json_array_append_new(arr, summary_json(&vms[i], def));
        json_decref(def);
    }
    store_vm_list_free(vms, n);
    *list = json_pack("{s:o}", "vms", arr);
    return 0;
}

void nd_autostart(struct nimbusd *d)
{
    char err[256];
    struct store_vm *vms;
    size_t n;
    pthread_mutex_lock(&d->lock);
    int r = store_vm_list(d->store, &vms, &n, err, sizeof(err));
    pthread_mutex_unlock(&d->lock);
    if (r)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!vms[i].autostart || is_live(vms[i].state))
            continue;
        struct nd_err e = { 0 };
        if (nd_start(d, vms[i].name, &e))
            fprintf(stderr, "nimbusd: autostart of %s: %s\n", vms[i].name, e.msg);
    }
    store_vm_list_free(vms, n);
}

/* ---- for the other operations' files (migration.c) ---- */

int nd_begin(struct nimbusd *d, const char *name, const char *states, const char *op,
             struct store_vm *vm, struct dvm **dv, struct nd_err *e)
{
    return begin(d, name, states, op, vm, dv, e);
}

void nd_end(struct nimbusd *d, struct store_vm *vm, struct dvm *dv)
{
    end(d, vm, dv);
}

int nd_define_locked(struct nimbusd *d, json_t *definition, struct nd_err *e)
{
    return define_locked(d, definition, NULL, e);
}

int nd_remove(struct nimbusd *d, struct store_vm *vm, struct nd_err *e)
{
    return remove_vm(d, vm, e);
}

int nd_launch(struct nimbusd *d, struct store_vm *vm, struct dvm *dv, struct nd_err *e)
{
    return launch(d, vm, dv, e);
}

int nd_vm_call(struct nimbusd *d, const char *name, const char *method, const char *path,
               const char *body, long timeout_ms, json_t **reply, struct nd_err *e)
{
    return vm_call(d, name, method, path, body, timeout_ms, reply, e);
}

const char *nd_vm_live_state(struct nimbusd *d, const char *name, char *buf, size_t n)
{
    return vm_live_state(d, name, buf, n);
}

bool nd_wait_exit(struct nimbusd *d, struct dvm *dv, int timeout_ms)
{
    return wait_exit(d, dv, timeout_ms);
}

void nd_stop_proc(struct nimbusd *d, struct store_vm *vm, struct dvm *dv)
{
    if (!wait_exit(d, dv, ND_STOP_TIMEOUT_MS)) {
        kill_vm(dv);
        wait_exit(d, dv, ND_STOP_TIMEOUT_MS);
    }
    nd_read_exit(d, dv);
    clear_proc(d, vm, dv);
}
