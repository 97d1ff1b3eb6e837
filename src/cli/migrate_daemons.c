/* nimbus migrate VM through two nimbusd. See migrate_daemons.h. */
#include "cli/migrate_daemons.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

#define POLL_MS 200              /* the source's progress, looked at */
#define DEST_WAIT_MS 30000       /* the destination records the VM running by then */

struct job {
    const struct api_cmd_args *a;
    const char *path, *body;
    struct daemon_reply rep;
    int done_fd;
};

static void *migrate_thread(void *opaque)
{
    struct job *j = opaque;
    daemon_request(j->a, "PUT", j->path, j->body, &j->rep);
    char c = 1;
    ssize_t n;
    do {
        n = write(j->done_fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return NULL;
}

/* GET /vms/VM, quietly: NULL when there is no answer. */
static json_t *info_of(const struct api_cmd_args *a, const char *vm)
{
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, "");
    struct daemon_reply rep;
    daemon_request(a, "GET", path, NULL, &rep);
    if (rep.r == 0 && rep.status / 100 == 2)
        return rep.reply;
    json_decref(rep.reply);
    return NULL;
}

/* Where the source sends the VM: `to`, with the port the destination bound
 * when `to` asked for any (tcp:HOST:0). */
static void target_of(const char *to, const char *bound, char *out, size_t n)
{
    const char *colon = strrchr(to, ':');
    const char *bcolon = bound ? strrchr(bound, ':') : NULL;
    if (!strncmp(to, "tcp:", 4) && colon && !strcmp(colon, ":0") && bcolon)
        snprintf(out, n, "%.*s%s", (int)(colon - to), to, bcolon);
    else
        snprintf(out, n, "%s", to);
}

/* The progress, each time it moved on: a bar on a terminal, a line per
 * phase or round otherwise, the object under --json. */
static void show(const struct migrate_daemons_args *m, json_t *mig, bool tty, char *last,
                 size_t n)
{
    const char *phase = json_string_value(json_object_get(mig, "phase"));
    if (!phase)
        return;
    char now[128];
    snprintf(now, sizeof(now), "%s %lld %lld", phase,
             json_integer_value(json_object_get(mig, "round")),
             tty || m->a->json ? json_integer_value(json_object_get(mig, "pages_sent")) : 0);
    if (!strcmp(now, last))
        return;
    snprintf(last, n, "%s", now);
    if (m->a->json) {
        json_t *ev = json_pack("{s:s, s:O}", "kind", "migration", "migration", mig);
        api_print_json(ev);
        fflush(stdout);
    } else {
        migrate_print_progress(mig, tty);
    }
}

/* The request to the source on a thread; the progress here meanwhile. */
static void run_and_watch(const struct migrate_daemons_args *m, struct job *j)
{
    int p[2];
    pthread_t t;
    if (pipe2(p, O_CLOEXEC) < 0) {
        daemon_request(j->a, "PUT", j->path, j->body, &j->rep);
        return;
    }
    j->done_fd = p[1];
    if (pthread_create(&t, NULL, migrate_thread, j)) {
        close(p[0]);
        close(p[1]);
        daemon_request(j->a, "PUT", j->path, j->body, &j->rep);
        return;
    }
    bool tty = isatty(STDOUT_FILENO) && !m->a->json;
    char last[128] = "";
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    for (;;) {
        int n = poll(&pf, 1, POLL_MS);
        if (n > 0 || (n < 0 && errno != EINTR))
            break;
        json_t *info = info_of(m->a, m->vm);
        json_t *mig = json_object_get(info, "migration");
        if (json_is_object(mig) && !m->no_wait)
            show(m, mig, tty, last, sizeof(last));
        json_decref(info);
    }
    if (tty && last[0])
        printf("\n");
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
}

/* The destination's VM, once it leaves `migrating` (or the time is up). */
static json_t *dest_outcome(const struct api_cmd_args *da, const char *vm)
{
    int64_t end = cli_now_ns() + (int64_t)DEST_WAIT_MS * 1000000;
    for (;;) {
        json_t *info = info_of(da, vm);
        const char *st = json_string_value(json_object_get(info, "state"));
        if (!info || (st && strcmp(st, "migrating")) || cli_now_ns() > end)
            return info;
        json_decref(info);
        usleep(POLL_MS * 1000);
    }
}

int migrate_through_daemons(const struct migrate_daemons_args *m)
{
    const char *cmd = "migrate";
    struct api_cmd_args da = *m->a;
    da.connect = m->dest_connect;
    char path[512];

    /* 1. The definition, from the source. */
    json_t *src = NULL;
    daemon_vm_path(path, sizeof(path), m->vm, "");
    int r = daemon_call(cmd, m->a, m->vm, "GET", path, NULL, &src);
    if (r)
        return r;
    json_t *def = json_object_get(src, "definition");
    if (!json_is_object(def)) {
        json_decref(src);
        fprintf(stderr, "nimbus %s: the source daemon gave no definition of %s\n", cmd, m->vm);
        return 1;
    }

    /* 2. The destination defines it (if it has to) and listens. */
    json_t *ib = json_pack("{s:O, s:s}", "definition", def, "listen", m->to);
    json_decref(src);
    char *text = ib ? json_dumps(ib, JSON_COMPACT) : NULL;
    json_decref(ib);
    if (!text) {
        fprintf(stderr, "nimbus %s: out of memory\n", cmd);
        return 1;
    }
    json_t *dst = NULL;
    daemon_vm_path(path, sizeof(path), m->vm, "/incoming");
    r = daemon_call(cmd, &da, m->vm, "PUT", path, text, &dst);
    free(text);
    if (r)
        return r;
    char target[512];
    target_of(m->to, json_string_value(json_object_get(dst, "listen")), target, sizeof(target));
    json_decref(dst);

    /* 3. The source sends it. */
    json_object_set_new(m->body, "to", json_string(target));
    if (m->undefine_source)
        json_object_set_new(m->body, "undefine_source", json_true());
    if (m->no_wait)
        json_object_set_new(m->body, "wait", json_false());
    text = json_dumps(m->body, JSON_COMPACT);
    if (!text) {
        fprintf(stderr, "nimbus %s: out of memory\n", cmd);
        return 1;
    }
    daemon_vm_path(path, sizeof(path), m->vm, "/migrate");
    struct job j = { .a = m->a, .path = path, .body = text };
    run_and_watch(m, &j);
    free(text);
    json_t *reply = NULL;
    bool answered = j.rep.r == 0;
    if ((r = daemon_check(cmd, m->a, m->vm, &j.rep, &reply))) {
        /* Without an answer (the source daemon restarted, say) the
         * migration may go on: the daemons record its end. */
        if (!answered) {
            fprintf(stderr, "nimbus %s: the source daemon did not answer: the migration may go "
                    "on ('nimbus info %s' on both sides shows its end)\n", cmd, m->vm);
            return r;
        }
        /* It failed: the destination's VM process, if the source never
         * reached it, would wait on. (Refused there once the VM runs.) */
        char cpath[512];
        daemon_vm_path(cpath, sizeof(cpath), m->vm, "/migrate-cancel");
        struct daemon_reply c;
        daemon_request(&da, "PUT", cpath, NULL, &c);
        json_decref(c.reply);
        return r;
    }
    if (m->no_wait) {
        if (m->a->json)
            api_print_json(reply);
        else {
            printf("VM %s migrating to %s (nimbus info %s follows it)\n", m->vm, target, m->vm);
            json_decref(reply);
        }
        return 0;
    }

    /* 4. The destination records it running. */
    json_t *dinfo = dest_outcome(&da, m->vm);
    const char *dstate = json_string_value(json_object_get(dinfo, "state"));
    bool ok = dstate && (!strcmp(dstate, "running") || !strcmp(dstate, "paused"));
    if (m->a->json) {
        json_t *res = json_pack("{s:s, s:O, s:O}", "kind", "result", "source", reply,
                                "destination", dinfo ? dinfo : json_null());
        api_print_json(res);
    } else {
        json_t *mig = json_object_get(reply, "migration");
        if (json_is_object(mig))
            migrate_print_result(mig);
        printf("VM %s: %s at the source, %s at the destination\n", m->vm,
               json_string_value(json_object_get(reply, "state")) ?: "?", dstate ? dstate : "?");
    }
    if (!ok)
        fprintf(stderr, "nimbus %s: the destination has the VM %s, not running\n", cmd,
                dstate ? dstate : "(no answer)");
    json_decref(reply);
    json_decref(dinfo);
    return ok ? 0 : 1;
}
