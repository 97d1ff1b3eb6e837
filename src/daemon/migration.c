/* Live migration through the daemons. See migration.h for the design and
 * the states, daemon.h for the lock rules: an operation marks its VM busy
 * and never holds d->lock across a call to a VM's API.
 *
 * Each migration is followed by a thread of its own (a "follower"), on
 * either side, from the request to the outcome; the request that started
 * it may wait for it (the source's does unless told not to). The followers
 * end when the daemon stops (nd_migration_stop), leaving the VM
 * `migrating` in the store with its record; the restarted daemon starts
 * them again (nd_migration_reattach), and they find where the VM process
 * has got to meanwhile. */
#include "daemon/migration.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "base/errmsg.h"
#include "cli/api_client.h"
#include "daemon/daemon.h"

#define LISTEN_TIMEOUT_MS 10000   /* the incoming VM process must listen by then */
#define POLL_MS 50                /* a destination's look for its VM's API */
#define LISTENING_LINE "nimbus restore: waiting for a migration on "

/* ---- the parts without I/O ---- */

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int nd_mig_record_parse(const char *text, struct nd_mig_record *rec)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *role = json_string_value(json_object_get(j, "role"));
    const char *uri = json_string_value(json_object_get(j, "uri"));
    const char *from = json_string_value(json_object_get(j, "from"));
    int r = -EINVAL;
    if (role && uri && from && (!strcmp(role, "incoming") || !strcmp(role, "outgoing")) &&
        strlen(uri) < sizeof(rec->uri) && strlen(from) < sizeof(rec->from)) {
        *rec = (struct nd_mig_record){
            .incoming = !strcmp(role, "incoming"),
            .undefine_source = json_is_true(json_object_get(j, "undefine_source")),
        };
        copy_str(rec->uri, sizeof(rec->uri), uri);
        copy_str(rec->from, sizeof(rec->from), from);
        r = 0;
    }
    json_decref(j);
    return r;
}

char *nd_mig_record_text(const struct nd_mig_record *rec)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:b}", "role", rec->incoming ? "incoming" : "outgoing",
                          "uri", rec->uri, "from", rec->from, "undefine_source",
                          rec->undefine_source);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

bool nd_migration_incoming_uri(const struct store_vm *vm, char *uri, size_t n)
{
    struct nd_mig_record rec;
    if (!vm->state || strcmp(vm->state, "migrating") || nd_mig_record_parse(vm->migration, &rec) ||
        !rec.incoming)
        return false;
    copy_str(uri, n, rec.uri);
    return true;
}

int nd_mig_options(const json_t *body, char **vm_body, struct nd_mig_record *rec, bool *wait,
                   char *err, size_t errlen)
{
    *vm_body = NULL;
    *wait = true;
    if (!json_is_object(body))
        return errmsg(err, errlen, -EINVAL, "the body must be a JSON object with \"to\"");
    json_t *vmb = json_deep_copy(body);
    if (!vmb)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    /* The daemon's own fields; the rest is the VM's request. */
    static const char *const own[] = { "undefine_source", "wait" };
    bool flags[2] = { false, true };
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(vmb, own[i]);
        if (v && !json_is_boolean(v)) {
            json_decref(vmb);
            return errmsg(err, errlen, -EINVAL, "\"%s\" must be true or false", own[i]);
        }
        if (v)
            flags[i] = json_is_true(v);
        json_object_del(vmb, own[i]);
    }
    char *text = json_dumps(vmb, JSON_COMPACT);
    json_decref(vmb);
    if (!text)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    /* Checked as the VM process will check it, so that a bad request is
     * refused before the VM changes state. */
    struct api_request req;
    json_t *error = NULL;
    if (api_route("PUT", "/vm/migrate", text, strlen(text), VM_STATE_RUNNING, &req, &error)) {
        const char *msg = json_string_value(json_object_get(error, "error"));
        int r = errmsg(err, errlen, -EINVAL, "%s", msg ? msg : "a bad migration request");
        json_decref(error);
        free(text);
        return r;
    }
    json_decref(error);
    const char *to = json_string_value(json_object_get(body, "to"));
    if (strlen(to) >= sizeof(rec->uri)) {
        free(text);
        return errmsg(err, errlen, -EINVAL, "\"to\" is longer than %zu bytes",
                      sizeof(rec->uri) - 1);
    }
    *rec = (struct nd_mig_record){ .undefine_source = flags[0] };
    copy_str(rec->uri, sizeof(rec->uri), to);
    *wait = flags[1];
    *vm_body = text;
    return 0;
}

int nd_mig_incoming_options(const json_t *body, const char *name, json_t **definition,
                            char *listen, size_t n, char *err, size_t errlen)
{
    json_t *def = json_object_get(body, "definition");
    const char *l = json_string_value(json_object_get(body, "listen"));
    if (!json_is_object(body) || json_object_size(body) != 2 || !json_is_object(def) || !l)
        return errmsg(err, errlen, -EINVAL,
                      "the body must be {\"definition\": {...}, \"listen\": \"tcp:HOST:PORT\"}");
    if (strncmp(l, "tcp:", 4) && strncmp(l, "unix:", 5))
        return errmsg(err, errlen, -EINVAL, "listen: tcp:HOST:PORT or unix:PATH");
    if (strlen(l) >= n || strlen(l) >= ND_MIG_URI_MAX)
        return errmsg(err, errlen, -EINVAL, "listen: too long");
    const char *dn = json_string_value(json_object_get(def, "name"));
    if (json_object_get(def, "name") && (!dn || strcmp(dn, name)))
        return errmsg(err, errlen, -EINVAL, "definition.name: not '%s', the VM in the path",
                      name);
    json_t *copy = json_deep_copy(def);
    if (!copy || json_object_set_new(copy, "name", json_string(name))) {
        json_decref(copy);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    copy_str(listen, n, l);
    *definition = copy;
    return 0;
}

bool nd_mig_phase_final(const char *phase)
{
    return phase && (!strcmp(phase, "completed") || !strcmp(phase, "failed") ||
                     !strcmp(phase, "cancelled"));
}

bool nd_mig_outgoing_end(const struct nd_mig_record *rec, const char *phase, const char *error,
                         const char *live, bool ended, bool clean, const char *exit_reason,
                         struct nd_mig_end *out)
{
    phase = phase ? phase : "";
    if (!strcmp(phase, "completed")) {
        out->state = rec->undefine_source ? "undefined" : "shutdown";
        snprintf(out->reason, sizeof(out->reason), "migrated to %s", rec->uri);
        return true;
    }
    if (ended) {
        /* The VM process ends with status 0 after a migration and after a
         * guest's power-off alike: without the "completed" report (the
         * daemon was not there to see it) it cannot tell which. */
        out->state = clean ? "shutdown" : "crashed";
        snprintf(out->reason, sizeof(out->reason), "%.160s during the migration to %s%s",
                 clean || !exit_reason ? "the VM process ended" : exit_reason, rec->uri,
                 clean ? " (migrated, or the guest powered off: see the destination)" : "");
        return true;
    }
    if (!strcmp(phase, "failed") || !strcmp(phase, "cancelled")) {
        /* The VM goes on here, in the state its process says (a post-copy
         * broken after the handover leaves it paused). */
        out->state = live && !strcmp(live, "paused") ? "paused"
                     : live ? "running" : rec->from;
        snprintf(out->reason, sizeof(out->reason), "migration to %s %s%s%.250s", rec->uri, phase,
                 error && *error ? ": " : "", error ? error : "");
        return true;
    }
    return false;
}

bool nd_mig_incoming_end(const struct nd_mig_record *rec, const char *live, bool ended,
                         const char *exit_reason, struct nd_mig_end *out)
{
    if (live) {
        /* Post-copy: the VM runs here while its last pages come, "migrating"
         * to its process. */
        out->state = !strcmp(live, "paused") ? "paused" : "running";
        snprintf(out->reason, sizeof(out->reason), "migrated in on %s", rec->uri);
        return true;
    }
    if (ended) {
        out->state = rec->from;
        snprintf(out->reason, sizeof(out->reason), "the incoming migration on %s failed: %s",
                 rec->uri, exit_reason && *exit_reason ? exit_reason : "the VM process ended");
        return true;
    }
    return false;
}

/* ---- followers ---- */

struct follower {
    struct nimbusd *d;
    char name[64];
    struct nd_mig_record rec;
    char *vm_body;          /* source: PUT /vm/migrate's body; NULL when re-attached */
    /* Under d->lock: */
    int refs;               /* the thread's, and the waiting request's */
    int started;            /* source: 1 the VM took the request, -1 it refused, 0 not yet */
    bool done;
    int result;             /* 0: migrated; else -errno, err says why */
    struct nd_err err;
    json_t *last;           /* the last progress report */
    /* The thread's own: */
    char phase[16];
    char error[256];
    bool first_line;
    /* Re-attached to a VM with no migration: until then a request the
     * stopped daemon made may still reach it (CLOCK_MONOTONIC ns; 0: none). */
    int64_t grace_until;
};

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Re-attached: no migration came within the grace period. */
static bool never_asked(const struct follower *f)
{
    return f->grace_until && !f->phase[0] && now_ns() > f->grace_until;
}

static void release(struct follower *f)
{
    struct nimbusd *d = f->d;
    pthread_mutex_lock(&d->lock);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&d->lock);
    if (last) {
        free(f->vm_body);
        json_decref(f->last);
        free(f);
    }
}

/* The thread's end (lock held; dropped). */
static void follower_done(struct follower *f)
{
    struct nimbusd *d = f->d;
    f->done = true;
    d->migration_threads--;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    release(f);
}

static bool stopping(void *opaque)
{
    struct follower *f = opaque;
    pthread_mutex_lock(&f->d->lock);
    bool s = f->d->stopping;
    pthread_mutex_unlock(&f->d->lock);
    return s;
}

/* The event stream's end: the daemon stops, or a re-attached follower
 * learns that no migration is coming. */
static bool stream_over(void *opaque)
{
    return stopping(opaque) || never_asked(opaque);
}

/* The VM process's progress report (GET /vm/migration's object): kept for
 * GET /vms/NAME, and its phase for the outcome. */
static void note_progress(struct follower *f, json_t *mig)
{
    const char *phase = json_string_value(json_object_get(mig, "phase"));
    if (!phase || !strcmp(phase, "none"))
        return;
    copy_str(f->phase, sizeof(f->phase), phase);
    copy_str(f->error, sizeof(f->error), json_string_value(json_object_get(mig, "error")));
    pthread_mutex_lock(&f->d->lock);
    struct dvm *dv = nd_find(f->d, f->name);
    json_decref(f->last);
    f->last = json_deep_copy(mig);
    if (dv) {
        json_decref(dv->migration);
        dv->migration = json_deep_copy(mig);
    }
    pthread_mutex_unlock(&f->d->lock);
}

/* GET /vm/migration: 0 when the VM answered. */
static int poll_progress(struct follower *f)
{
    struct nd_err e;
    json_t *rep = NULL;
    int r = nd_vm_call(f->d, f->name, "GET", "/vm/migration", NULL, ND_QUERY_TIMEOUT_MS, &rep,
                       &e);
    if (r == 0)
        note_progress(f, rep);
    json_decref(rep);
    return r;
}

/* Source: the VM's event stream. Its first line (the state) comes once the
 * stream is open, so the request made then cannot miss an event. */
static bool on_event(void *opaque, const char *line)
{
    struct follower *f = opaque;
    struct nimbusd *d = f->d;
    if (!f->first_line) {
        f->first_line = true;
        if (!f->vm_body) {
            /* Re-attached: where it has got to. None yet: the daemon
             * stopped about when it asked, and its request, if made, may
             * still be on its way; a while, then the VM was not asked. */
            if (poll_progress(f) == 0 && !f->phase[0] && !f->grace_until)
                f->grace_until = now_ns() + (int64_t)ND_OP_TIMEOUT_MS * 1000000;
            return !nd_mig_phase_final(f->phase);
        }
        struct nd_err e = { 0 };
        json_t *rep = NULL;
        int r = nd_vm_call(d, f->name, "PUT", "/vm/migrate", f->vm_body, ND_OP_TIMEOUT_MS, &rep,
                           &e);
        if (r == 0)
            note_progress(f, json_object_get(rep, "migration"));
        json_decref(rep);
        pthread_mutex_lock(&d->lock);
        f->started = r ? -1 : 1;
        if (r) {
            f->err = e;
            f->result = r;
        }
        pthread_cond_broadcast(&d->changed);
        pthread_mutex_unlock(&d->lock);
        return r == 0;
    }
    json_t *ev = json_loads(line, 0, NULL);
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    if (kind && !strcmp(kind, "migration"))
        note_progress(f, json_object_get(ev, "migration"));
    json_decref(ev);
    return !nd_mig_phase_final(f->phase);
}

/* Lock held: has dv's process ended (or is it gone)? */
static bool proc_ended(struct dvm *dv)
{
    return dv->exited || !supervisor_alive(dv->proc.pid, dv->proc.pid_start);
}

/* Lock held: records the end `end` of f's migration on the VM `vm` (its
 * row, read again) and lets the VM go. */
static void record_end(struct follower *f, struct store_vm *vm, struct dvm *dv,
                       const struct nd_mig_end *end)
{
    struct nimbusd *d = f->d;
    struct nd_err e = { 0 };
    free(vm->migration);
    vm->migration = NULL;
    bool undefine = !strcmp(end->state, "undefined");
    const char *to = undefine ? f->rec.incoming ? f->rec.from : "shutdown" : end->state;
    if (undefine && !strcmp(to, "undefined"))
        to = "defined";   /* a moment only: the VM goes */
    if (strcmp(to, "running") && strcmp(to, "paused")) {
        free(vm->exit_reason);
        vm->exit_reason = strdup(end->reason);
    }
    int r = nd_transition(d, vm, to, end->reason, &e);
    if (r == 0 && undefine && (r = nd_remove(d, vm, &e)) == 0)
        dv = NULL;   /* gone, with vm */
    if (r)
        fprintf(stderr, "nimbusd: %s: %s\n", f->name, e.msg);
    if (dv)
        dv->busy = NULL;
    if (vm->name)
        store_vm_free(vm);
}

/* Lock held: reads the VM's row and entry for the outcome. */
static int load(struct follower *f, struct store_vm *vm, struct dvm **dv)
{
    char err[256];
    int r = store_vm_get(f->d->store, f->name, vm, err, sizeof(err));
    *dv = nd_find(f->d, f->name);
    if (r || !*dv) {
        if (r == 0)
            store_vm_free(vm);
        fprintf(stderr, "nimbusd: %s: its migration's end: %s\n", f->name,
                r ? err : "no entry");
        return -ENOENT;
    }
    return 0;
}

static void outgoing_finish(struct follower *f)
{
    struct nimbusd *d = f->d;
    char live_buf[32];
    pthread_mutex_lock(&d->lock);
    struct store_vm vm;
    struct dvm *dv;
    if (load(f, &vm, &dv)) {
        f->result = f->result ? f->result : -ENOENT;
        pthread_mutex_unlock(&d->lock);
        return;
    }
    struct nd_mig_end end = { 0 };
    bool ended = proc_ended(dv);
    if (f->started < 0) {
        /* The VM refused: nothing moved. */
        end.state = f->rec.from;
        snprintf(end.reason, sizeof(end.reason), "migration to %s refused: %.250s", f->rec.uri,
                 f->err.msg);
    } else {
        const char *live = NULL;
        if (!ended && strcmp(f->phase, "completed")) {
            pthread_mutex_unlock(&d->lock);
            live = nd_vm_live_state(d, f->name, live_buf, sizeof(live_buf));
            pthread_mutex_lock(&d->lock);
        }
        if (!strcmp(f->phase, "completed") || ended) {
            /* Its process ends (or ended): wait, kill if it would not. */
            nd_stop_proc(d, &vm, dv);
            ended = true;
        }
        nd_mig_outgoing_end(&f->rec, f->phase, f->error, live, ended, dv->exit_clean,
                            dv->exit_reason, &end);
        if (!end.state) {
            end.state = f->rec.from;
            snprintf(end.reason, sizeof(end.reason), "migration to %s: its end unknown",
                     f->rec.uri);
        }
        if (strcmp(f->phase, "completed")) {
            f->result = -EIO;
            nd_fail(&f->err, -EIO, "failed", "VM '%s': %s", f->name, end.reason);
        }
    }
    record_end(f, &vm, dv, &end);
    pthread_mutex_unlock(&d->lock);
}

static void *outgoing_main(void *opaque)
{
    struct follower *f = opaque;
    struct nimbusd *d = f->d;
    char sock[ND_PATH_MAX], err[256];
    nd_vm_run_path(d, f->name, "api.sock", sock, sizeof(sock));
    bool stop = false;
    for (;;) {
        f->first_line = false;
        int r = api_stream_until(sock, "/vm/events", on_event, stream_over, f, err, sizeof(err));
        if (never_asked(f)) {
            /* The daemon stopped between its record and its request: the
             * VM goes on. */
            copy_str(f->phase, sizeof(f->phase), "failed");
            copy_str(f->error, sizeof(f->error), "nimbusd stopped before it asked the VM");
        }
        if (nd_mig_phase_final(f->phase) || f->started < 0)
            break;
        if ((stop = stopping(f)))
            break;
        pthread_mutex_lock(&d->lock);
        struct dvm *dv = nd_find(d, f->name);
        bool ended = !dv || proc_ended(dv);
        if (!ended && r && f->vm_body && !f->started) {
            /* The stream never opened: the VM was not asked. */
            f->started = -1;
            f->result = nd_fail(&f->err, r, "failed", "VM '%s': %s", f->name, err);
            pthread_cond_broadcast(&d->changed);
        }
        pthread_mutex_unlock(&d->lock);
        if (ended || f->started < 0)
            break;
        /* The stream broke while the VM process lives: look, then follow
         * again (the request was made; a new stream only watches). */
        free(f->vm_body);
        f->vm_body = NULL;
        poll_progress(f);
        if (nd_mig_phase_final(f->phase))
            break;
        usleep(POLL_MS * 1000);
    }
    if (!stop)
        outgoing_finish(f);
    pthread_mutex_lock(&d->lock);
    if (stop && !f->result)
        f->result = nd_fail(&f->err, -ESHUTDOWN, "failed",
                            "nimbusd stops: the migration of '%s' goes on, the restarted "
                            "daemon records its end", f->name);
    if (!f->started)
        f->started = -1;
    follower_done(f);
    return NULL;
}

static void *incoming_main(void *opaque)
{
    struct follower *f = opaque;
    struct nimbusd *d = f->d;
    char live_buf[32];
    const char *live = NULL;
    bool ended = false, stop = false;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        struct dvm *dv = nd_find(d, f->name);
        stop = d->stopping;
        ended = !dv || proc_ended(dv);
        pthread_mutex_unlock(&d->lock);
        if (stop || ended)
            break;
        /* The VM process serves its API once the source said go. */
        if ((live = nd_vm_live_state(d, f->name, live_buf, sizeof(live_buf)))) {
            /* A restore opens its API a moment before it resumes the
             * guest: a paused VM is asked again. */
            if (!strcmp(live, "paused")) {
                usleep(200000);
                live = nd_vm_live_state(d, f->name, live_buf, sizeof(live_buf));
            }
            if (live)
                break;
        }
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += POLL_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&d->lock);
        if (!d->stopping)
            pthread_cond_timedwait(&d->changed, &d->lock, &t);
        pthread_mutex_unlock(&d->lock);
    }
    pthread_mutex_lock(&d->lock);
    struct store_vm vm;
    struct dvm *dv;
    if (!stop && load(f, &vm, &dv) == 0) {
        if (!live)
            nd_stop_proc(d, &vm, dv);
        struct nd_mig_end end = { 0 };
        nd_mig_incoming_end(&f->rec, live, !live, dv->exit_reason, &end);
        f->result = live ? 0 : -EIO;
        record_end(f, &vm, dv, &end);
    }
    follower_done(f);
    return NULL;
}

/* Lock held: a follower for `name`, its thread started (detached). */
static struct follower *follow(struct nimbusd *d, const char *name,
                               const struct nd_mig_record *rec, char *vm_body, int refs)
{
    struct follower *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    *f = (struct follower){ .d = d, .rec = *rec, .vm_body = vm_body, .refs = refs };
    copy_str(f->name, sizeof(f->name), name);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int rc = pthread_create(&t, &at, rec->incoming ? incoming_main : outgoing_main, f);
    pthread_attr_destroy(&at);
    if (rc) {
        free(f);
        return NULL;
    }
    d->migration_threads++;
    return f;
}

/* ---- the source ---- */

int nd_migrate(struct nimbusd *d, const char *name, json_t *body, json_t **gone,
               struct nd_err *e)
{
    char err[256];
    char *vm_body = NULL;
    struct nd_mig_record rec;
    bool wait;
    *gone = NULL;
    int r = nd_mig_options(body, &vm_body, &rec, &wait, err, sizeof(err));
    if (r)
        return nd_fail(e, r, r == -ENOMEM ? "failed" : "bad_request", "%s", err);
    struct store_vm vm;
    struct dvm *dv;
    if ((r = nd_begin(d, name, "running paused", "migrate", &vm, &dv, e))) {
        free(vm_body);
        return r;
    }
    copy_str(rec.from, sizeof(rec.from), vm.state);
    char reason[ND_MIG_URI_MAX + 32];
    snprintf(reason, sizeof(reason), "migrating to %s", rec.uri);
    free(vm.migration);
    vm.migration = nd_mig_record_text(&rec);
    r = vm.migration ? nd_transition(d, &vm, "migrating", reason, e)
                     : nd_fail(e, -ENOMEM, "failed", "out of memory");
    json_decref(dv->migration);
    dv->migration = NULL;
    struct follower *f = r ? NULL : follow(d, name, &rec, vm_body, 2);
    if (!f) {
        if (r == 0) {
            free(vm.migration);
            vm.migration = NULL;
            struct nd_err e2;
            nd_transition(d, &vm, rec.from, "the migration could not start", &e2);
            r = nd_fail(e, -ENOMEM, "failed", "cannot start the migration's thread");
        }
        free(vm_body);
        nd_end(d, &vm, dv);
        return r;
    }
    store_vm_free(&vm);
    /* The VM stays busy: its follower lets it go. */
    while (!f->started && !d->stopping)
        pthread_cond_wait(&d->changed, &d->lock);
    while ((wait || f->started < 0) && !f->done && !d->stopping)
        pthread_cond_wait(&d->changed, &d->lock);
    if (f->done || f->started < 0)
        r = f->result;
    if (r)
        *e = f->err;
    else if (!f->done && d->stopping)
        r = nd_fail(e, -ESHUTDOWN, "failed", "nimbusd stops: the migration of '%s' goes on, "
                    "the restarted daemon records its end", name);
    /* Undefined (undefine_source): the reply says so, with the figures. */
    if (r == 0 && f->done && !nd_find(d, name))
        *gone = json_pack("{s:s, s:s, s:s, s:O?}", "name", name, "state", "undefined",
                          "exit_reason", "migrated", "migration", f->last);
    pthread_mutex_unlock(&d->lock);
    release(f);
    return r;
}

int nd_migrate_cancel(struct nimbusd *d, const char *name, struct nd_err *e)
{
    char err[256];
    struct store_vm vm;
    struct nd_mig_record rec;
    pthread_mutex_lock(&d->lock);
    int r = store_vm_get(d->store, name, &vm, err, sizeof(err));
    if (r) {
        pthread_mutex_unlock(&d->lock);
        return nd_fail(e, r, r == -ENOENT ? "not_found" : "failed", "%s", err);
    }
    if (strcmp(vm.state, "migrating") || nd_mig_record_parse(vm.migration, &rec)) {
        r = nd_wrong_state(e, name, vm.state, "cancel a migration of");
        store_vm_free(&vm);
        pthread_mutex_unlock(&d->lock);
        return r;
    }
    store_vm_free(&vm);
    pthread_mutex_unlock(&d->lock);
    if (!rec.incoming) {
        if ((r = nd_vm_call(d, name, "PUT", "/vm/migration/cancel", NULL, ND_OP_TIMEOUT_MS, NULL,
                            e)))
            return r;
    } else {
        /* The destination: a VM process that serves its API runs the VM
         * (the source said go and has ended): it must not be killed. */
        char live[32];
        if (nd_vm_live_state(d, name, live, sizeof(live)))
            return nd_fail(e, -EBUSY, "wrong_state",
                           "VM '%s' runs here already: too late to cancel its migration", name);
    }
    pthread_mutex_lock(&d->lock);
    struct dvm *dv = nd_find(d, name);
    if (rec.incoming && dv && supervisor_alive(dv->proc.pid, dv->proc.pid_start))
        kill(dv->proc.pid, SIGKILL);
    /* Its follower records the end: wait for it, so the reply shows it. */
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ND_STOP_TIMEOUT_MS / 1000;
    while ((dv = nd_find(d, name)) && dv->busy && !d->stopping)
        if (pthread_cond_timedwait(&d->changed, &d->lock, &t))
            break;
    pthread_mutex_unlock(&d->lock);
    return 0;
}

/* ---- the destination ---- */

/* Waits (lock not held) until the VM process's log (from `off`) says it
 * listens, and where; or until it ended, or the deadline. */
static int wait_listening(struct nimbusd *d, struct dvm *dv, const char *name, const char *log,
                          off_t off, char *bound, size_t n, struct nd_err *e)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        FILE *fp = fopen(log, "re");
        char line[512];
        bool found = false;
        if (fp && fseeko(fp, off, SEEK_SET) == 0)
            while (!found && fgets(line, sizeof(line), fp)) {
                char *p = strstr(line, LISTENING_LINE);
                if (p) {
                    p += strlen(LISTENING_LINE);
                    p[strcspn(p, "\r\n")] = '\0';
                    copy_str(bound, n, p);
                    found = true;
                }
            }
        if (fp)
            fclose(fp);
        if (found)
            return 0;
        pthread_mutex_lock(&d->lock);
        bool ended = proc_ended(dv);
        pthread_mutex_unlock(&d->lock);
        if (ended)
            return nd_fail(e, -ECHILD, "failed", "VM '%s': its incoming process ended before "
                           "it listened (nimbus logs %s)", name, name);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > LISTEN_TIMEOUT_MS)
            return nd_fail(e, -ETIMEDOUT, "failed", "VM '%s' did not listen within %d s", name,
                           LISTEN_TIMEOUT_MS / 1000);
        usleep(10000);
    }
}

int nd_incoming(struct nimbusd *d, const char *name, json_t *body, json_t **info,
                struct nd_err *e)
{
    char err[512];
    json_t *def = NULL;
    struct nd_mig_record rec = { .incoming = true };
    int r = nd_mig_incoming_options(body, name, &def, rec.uri, sizeof(rec.uri), err,
                                    sizeof(err));
    if (r)
        return nd_fail(e, r, r == -ENOMEM ? "failed" : "bad_request", "%s", err);
    pthread_mutex_lock(&d->lock);
    struct store_vm vm;
    r = store_vm_get(d->store, name, &vm, err, sizeof(err));
    if (r == -ENOENT) {
        /* Defined here for this migration, with define's checks. */
        copy_str(rec.from, sizeof(rec.from), "undefined");
        if ((r = nd_define_locked(d, def, e)) == 0)
            r = store_vm_get(d->store, name, &vm, err, sizeof(err));
        else
            err[0] = '\0';
    } else if (r == 0) {
        copy_str(rec.from, sizeof(rec.from), vm.state);
        const char *uuid = json_string_value(json_object_get(def, "uuid"));
        if (uuid && strcmp(uuid, vm.uuid)) {
            r = nd_fail(e, -EEXIST, "exists", "another VM named '%s' (uuid %s) is defined here",
                        name, vm.uuid);
            store_vm_free(&vm);
            err[0] = '\0';
        }
    }
    json_decref(def);
    if (r) {
        pthread_mutex_unlock(&d->lock);
        return err[0] ? nd_fail(e, r, "failed", "%s", err) : r;
    }
    struct dvm *dv = nd_get(d, name);
    static const char *const takers[] = { "undefined", "defined", "shutdown", "crashed" };
    bool ok = false;
    for (size_t i = 0; i < sizeof(takers) / sizeof(takers[0]); i++)
        ok |= !strcmp(rec.from, takers[i]);
    if (!dv || dv->busy || !ok) {
        r = !dv ? nd_fail(e, -ENOMEM, "failed", "out of memory")
            : dv->busy ? nd_fail(e, -EBUSY, "wrong_state", "VM '%s' is busy (%s)", name, dv->busy)
                       : nd_wrong_state(e, name, vm.state, "take a migration into");
        if (dv && dv->busy)
            copy_str(e->state, sizeof(e->state), vm.state);
        store_vm_free(&vm);
        pthread_mutex_unlock(&d->lock);
        return r;
    }
    dv->busy = "incoming";
    json_decref(dv->migration);
    dv->migration = NULL;
    char log[ND_PATH_MAX];
    nd_vm_data_path(d, name, "log", log, sizeof(log));
    struct stat st;
    off_t off = stat(log, &st) == 0 ? st.st_size : 0;
    /* The row says incoming before the launch: the VM's command line is
     * made from it. */
    char reason[ND_MIG_URI_MAX + 32];
    snprintf(reason, sizeof(reason), "incoming migration on %s", rec.uri);
    free(vm.migration);
    vm.migration = nd_mig_record_text(&rec);
    r = vm.migration ? nd_transition(d, &vm, "migrating", reason, e)
                     : nd_fail(e, -ENOMEM, "failed", "out of memory");
    /* Its pids, for a restarted daemon. */
    if (r == 0 && (r = nd_launch(d, &vm, dv, e)) == 0 &&
        (r = store_vm_update(d->store, &vm, err, sizeof(err))))
        r = nd_fail(e, r, "failed", "%s", err);
    struct nd_mig_end end = { .state = rec.from };
    if (r) {
        snprintf(end.reason, sizeof(end.reason), "the incoming migration did not start: %.250s",
                 e->msg);
        struct follower tmp = { .d = d, .rec = rec };
        copy_str(tmp.name, sizeof(tmp.name), name);
        if (strcmp(vm.state, "migrating")) {
            /* Not recorded as migrating: only the definition to undo. */
            free(vm.migration);
            vm.migration = NULL;
        }
        record_end(&tmp, &vm, dv, &end);
        pthread_mutex_unlock(&d->lock);
        return r;
    }
    store_vm_free(&vm);
    pthread_mutex_unlock(&d->lock);

    char bound[ND_MIG_URI_MAX];
    r = wait_listening(d, dv, name, log, off, bound, sizeof(bound), e);

    pthread_mutex_lock(&d->lock);
    if (r == 0 && store_vm_get(d->store, name, &vm, err, sizeof(err)) == 0) {
        /* The address bound (tcp:HOST:0 picks a port) is the one to show. */
        copy_str(rec.uri, sizeof(rec.uri), bound);
        char *text = nd_mig_record_text(&rec);
        if (text) {
            free(vm.migration);
            vm.migration = text;
            store_vm_update(d->store, &vm, err, sizeof(err));
        }
        store_vm_free(&vm);
    }
    struct follower *f = NULL;
    if (r == 0 && !(f = follow(d, name, &rec, NULL, 1)))
        r = nd_fail(e, -ENOMEM, "failed", "cannot start the migration's thread");
    if (r) {
        struct follower tmp = { .d = d, .rec = rec };
        copy_str(tmp.name, sizeof(tmp.name), name);
        if (store_vm_get(d->store, name, &vm, err, sizeof(err)) == 0) {
            nd_stop_proc(d, &vm, dv);
            snprintf(end.reason, sizeof(end.reason), "the incoming migration did not start: %.250s",
                     e->msg);
            record_end(&tmp, &vm, dv, &end);
        }
    }
    pthread_mutex_unlock(&d->lock);
    if (r)
        return r;
    if (nd_info(d, name, info, e) == 0)
        json_object_set_new(*info, "listen", json_string(bound));
    else
        *info = json_pack("{s:s, s:s}", "name", name, "listen", bound);
    return 0;
}

/* ---- the daemon's start and stop ---- */

void nd_migration_reattach(struct nimbusd *d, const struct store_vm *vm)
{
    struct nd_mig_record rec;
    struct dvm *dv = nd_get(d, vm->name);
    if (!dv)
        return;
    if (nd_mig_record_parse(vm->migration, &rec)) {
        /* No record (a database edited by hand): as a VM that was running. */
        rec = (struct nd_mig_record){ .incoming = false };
        copy_str(rec.from, sizeof(rec.from), "running");
        copy_str(rec.uri, sizeof(rec.uri), "?");
    }
    if (!nd_attach(dv, vm)) {
        nd_read_exit(d, dv);
        dv->exited = true;
    }
    dv->busy = rec.incoming ? "incoming" : "migrate";
    fprintf(stderr, "nimbusd: %s: following its %s migration again\n", vm->name,
            rec.incoming ? "incoming" : "outgoing");
    if (!follow(d, vm->name, &rec, NULL, 1)) {
        dv->busy = NULL;
        fprintf(stderr, "nimbusd: %s: cannot follow its migration\n", vm->name);
    }
}

void nd_migration_stop(struct nimbusd *d)
{
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->changed);
    while (d->migration_threads)
        pthread_cond_wait(&d->changed, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

json_t *nd_migration_info(struct nimbusd *d, const struct store_vm *vm)
{
    struct dvm *dv = nd_find(d, vm->name);
    struct nd_mig_record rec;
    bool under_way = !strcmp(vm->state, "migrating") && !nd_mig_record_parse(vm->migration, &rec);
    if (!under_way && !(dv && dv->migration))
        return json_null();
    json_t *o = dv && dv->migration ? json_deep_copy(dv->migration) : json_object();
    if (o && under_way) {
        json_object_set_new(o, "direction", json_string(rec.incoming ? "incoming" : "outgoing"));
        json_object_set_new(o, rec.incoming ? "listen" : "to", json_string(rec.uri));
    }
    return o ? o : json_null();
}
