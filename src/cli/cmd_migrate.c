/* nimbus migrate: PUT /vm/migrate on the VM's API and follow its progress
 * on the event stream until it ends (docs/migration.md, docs/api.md); or,
 * given a VM's name, the same through two nimbusd (migrate_daemons.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/daemon_client.h"
#include "cli/migrate_daemons.h"

struct migrate_cmd {
    const char *to, *mode, *prepage;   /* prepage: "on", "off" or NULL */
    unsigned long long max_bandwidth, downtime_ms, max_rounds, postcopy_after;
    bool auto_converge, compress, no_wait, has_postcopy_after, resume, tuned, copy_storage;
    long long attempt;   /* --resume: recover_attempts of ours (events before it are old) */
    /* through the daemons */
    const char *dest_connect;
    bool undefine_source, cancel;
    /* following */
    const struct api_cmd_args *a;
    const char *body;
    bool started, tty;
    int status;        /* the command's exit status once known; -1: not yet */
    char error[512];
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct migrate_cmd *c = opaque;
    char *end = NULL;
    switch (opt) {
    case 't': c->to = arg; return 0;
    case 'b':
        c->tuned = true;
        if (cli_parse_size(arg, &c->max_bandwidth))
            return -1;
        /* cli_parse_size reads a bare number as MiB; bandwidth is bytes/s
         * with K/M/G suffixes: a bare number means bytes. */
        if (arg[strlen(arg) - 1] >= '0' && arg[strlen(arg) - 1] <= '9')
            c->max_bandwidth >>= 20;
        return 0;
    case 'd': c->downtime_ms = strtoull(arg, &end, 10); break;
    case 'r': c->max_rounds = strtoull(arg, &end, 10); break;
    case 'a': c->auto_converge = c->tuned = true; return 0;
    case 'p': c->mode = "postcopy"; c->tuned = true; return 0;
    case 'P':
        c->mode = "hybrid";
        c->has_postcopy_after = true;
        c->postcopy_after = strtoull(arg, &end, 10);
        break;
    case 'G':
        if (strcmp(arg, "on") && strcmp(arg, "off"))
            return -1;
        c->prepage = arg;
        c->tuned = true;
        return 0;
    case 'z': c->compress = c->tuned = true; return 0;
    case 's': c->copy_storage = c->tuned = true; return 0;
    case 'n': c->no_wait = true; return 0;
    case 'R': c->resume = true; return 0;
    case 'D': c->dest_connect = arg; return 0;
    case 'u': c->undefine_source = true; return 0;
    case 'c': c->cancel = true; return 0;
    default: return -1;
    }
    c->tuned = true;
    return end && *arg && !*end ? 0 : -1;
}

void migrate_print_progress(json_t *mig, bool tty)
{
    const char *phase = json_string_value(json_object_get(mig, "phase"));
    long long ram = json_integer_value(json_object_get(mig, "ram_pages"));
    long long sent = json_integer_value(json_object_get(mig, "pages_sent"));
    long long left = json_integer_value(json_object_get(mig, "pages_remaining"));
    long long bytes = json_integer_value(json_object_get(mig, "bytes"));
    long long bw = json_integer_value(json_object_get(mig, "bandwidth_bytes_per_s"));
    int pct = ram ? (int)((ram - (left < ram ? left : ram)) * 100 / ram) : 0;
    char bar[21];
    for (int i = 0; i < 20; i++)
        bar[i] = i < pct / 5 ? '#' : '.';
    bar[20] = '\0';
    char disk[64] = "";
    if (json_is_true(json_object_get(mig, "copy_storage")))
        snprintf(disk, sizeof(disk), ", disk %.1f MiB sent",
                 (double)json_integer_value(json_object_get(mig, "disk_bytes_sent")) / 1048576.0);
    printf("%s[%s] %3d%% %-9s round %lld, %lld pages sent (%.1f MiB), %lld left%s, %.0f MiB/s, "
           "throttle %lld%%%s", tty ? "\r" : "", bar, pct, phase ? phase : "?",
           json_integer_value(json_object_get(mig, "round")), sent, (double)bytes / 1048576.0,
           left, disk, (double)bw / 1048576.0,
           json_integer_value(json_object_get(mig, "throttle_pct")), tty ? "   " : "\n");
    fflush(stdout);
}

void migrate_print_result(json_t *mig)
{
    const char *phase = json_string_value(json_object_get(mig, "phase"));
    printf("migration %s: %lld ms in all, downtime %.1f ms, %lld rounds, %lld pages "
           "(%lld zero), %.1f MiB on the stream%s%s\n", phase ? phase : "?",
           json_integer_value(json_object_get(mig, "total_ms")),
           (double)json_integer_value(json_object_get(mig, "downtime_us")) / 1000.0,
           json_integer_value(json_object_get(mig, "round")) + 1,
           json_integer_value(json_object_get(mig, "pages_sent")),
           json_integer_value(json_object_get(mig, "zero_pages")),
           (double)json_integer_value(json_object_get(mig, "bytes")) / 1048576.0,
           json_is_true(json_object_get(mig, "converged")) ||
               strcmp(json_string_value(json_object_get(mig, "mode")) ?: "", "precopy")
               ? "" : ", did not converge",
           json_integer_value(json_object_get(mig, "requests"))
               ? " (post-copy: pages fetched on demand)" : "");
}

/* Each line of the event stream; the first one (the state) starts the
 * migration, so no event of it can come before the stream. */
static bool on_line(void *opaque, const char *s)
{
    struct migrate_cmd *c = opaque;
    if (!c->started) {
        c->started = true;
        long status = 0;
        json_t *reply = NULL;
        char err[256];
        if (api_call(c->a->sock, "PUT", "/vm/migrate", c->body, &status, &reply, err,
                     sizeof(err))) {
            snprintf(c->error, sizeof(c->error), "%s", err);
            c->status = 1;
            return false;
        }
        if (status / 100 != 2) {
            const char *e = json_string_value(json_object_get(reply, "error"));
            snprintf(c->error, sizeof(c->error), "%s", e ? e : "the API refused");
            if (c->a->json && reply)
                api_print_json(reply);
            else
                json_decref(reply);
            c->status = 1;
            return false;
        }
        c->attempt = json_integer_value(json_object_get(json_object_get(reply, "migration"),
                                                        "recover_attempts"));
        json_decref(reply);
        return !c->no_wait;
    }
    json_t *e = json_loads(s, 0, NULL);
    const char *kind = json_string_value(json_object_get(e, "kind"));
    json_t *mig = json_object_get(e, "migration");
    if (!kind || strcmp(kind, "migration") || !json_is_object(mig)) {
        json_decref(e);
        return true;
    }
    const char *phase = json_string_value(json_object_get(mig, "phase"));
    if (c->resume && json_integer_value(json_object_get(mig, "recover_attempts")) < c->attempt) {
        json_decref(e);   /* from before our resume */
        return true;
    }
    /* Post-copy paused: the VM lives on the destination, which waits for
     * a recovery; this command's part is over. */
    bool paused = phase && !strcmp(phase, "postcopy-paused");
    bool end = phase && (!strcmp(phase, "completed") || !strcmp(phase, "failed") ||
                         !strcmp(phase, "cancelled") || paused);
    if (c->a->json) {
        puts(s);
        fflush(stdout);
    } else if (!end) {
        migrate_print_progress(mig, c->tty);
    }
    if (end) {
        if (!c->a->json) {
            if (c->tty)
                printf("\n");
            migrate_print_result(mig);
        }
        const char *err = json_string_value(json_object_get(mig, "error"));
        if (paused)
            snprintf(c->error, sizeof(c->error), "%.200s; the destination runs the VM and "
                     "lacks pages only this VM has: recover with nimbus migrate-recover on the "
                     "destination, then nimbus migrate --resume here", err ? err : phase);
        else if (strcmp(phase, "completed"))
            snprintf(c->error, sizeof(c->error), "%s", err ? err : phase);
        c->status = paused ? 3 : strcmp(phase, "completed") ? 1 : 0;
    }
    json_decref(e);
    return !end;
}

/* --cancel: PUT /vm/migration/cancel, or nimbusd's migrate-cancel. */
static int migrate_cancel(int argc, char **argv, const struct api_cmd_args *a, bool daemons,
                          const char *usage)
{
    json_t *reply = NULL;
    if (daemons) {
        const char *vm = argv[a->first_arg];
        char path[512];
        daemon_vm_path(path, sizeof(path), vm, "/migrate-cancel");
        if (daemon_call(argv[0], a, vm, "PUT", path, NULL, &reply))
            return 1;
        char text[160];
        snprintf(text, sizeof(text), "migration cancelled (now %s)",
                 json_string_value(json_object_get(reply, "state")) ?: "?");
        daemon_print_done(a, reply, vm, text);
        return 0;
    }
    if (!a->sock || a->first_arg != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (api_cmd_call(argv[0], a, "PUT", "/vm/migration/cancel", NULL, &reply))
        return 1;
    api_cmd_print(a, reply, NULL);
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus migrate --api PATH --to ADDR [options]\n"
        "       nimbus migrate VM --dest-connect PATH --to ADDR [--connect PATH] [options]\n"
        "Moves the running VM to the Nimbus process waiting at ADDR ('nimbus restore\n"
        "--incoming ADDR'), live, and follows it to the end; the VM here ends once the\n"
        "destination runs it, and goes on here if the migration fails (docs/migration.md).\n"
        "Given the name of a VM of nimbusd instead, through two daemons: the one at\n"
        "--dest-connect defines the VM if it has to and waits for it at ADDR, then the\n"
        "one at --connect sends it; both show it 'migrating' meanwhile (docs/daemon.md).\n"
        "  --api PATH            the VM's API socket (nimbus run --api PATH)\n"
        "  VM                    a VM of the nimbusd at --connect (default: as for\n"
        "                        'nimbus list')\n"
        "  --connect PATH        the source nimbusd's socket\n"
        "  --dest-connect PATH   the destination nimbusd's socket\n"
        "  --undefine-source     with VM: undefine it at the source once migrated (as\n"
        "                        virsh's --undefinesource)\n"
        "  --to ADDR             unix:PATH or tcp:HOST:PORT (with VM: where the\n"
        "                        destination listens; port 0 picks a free one)\n"
        "  --cancel              instead, cancel the migration under way (with VM: at\n"
        "                        --connect's daemon, source or destination)\n"
        "  --max-bandwidth RATE  bytes per second (K, M, G suffixes); default: unlimited\n"
        "  --downtime-limit MS   pre-copy stops when the rest fits in MS (default 30)\n"
        "  --max-rounds N        pre-copy rounds at most (default 30), then stop-and-copy\n"
        "  --auto-converge       slow the guest's harts down in steps while it dirties\n"
        "                        memory faster than the stream carries it\n"
        "  --postcopy            post-copy: the destination runs at once, pages follow\n"
        "  --postcopy-after N    hybrid: N pre-copy rounds, then post-copy\n"
        "  --postcopy-prepage on|off\n"
        "                        post-copy: send the pages after a faulting one ahead of\n"
        "                        the rest (adaptive pre-paging; default on)\n"
        "  --compress            zstd-compress the pages\n"
        "  --copy-storage        also copy the writable disks over the stream, into the\n"
        "                        destination's own images (restore --incoming --disk PATH,\n"
        "                        created beforehand with the same virtual size): no shared\n"
        "                        storage needed; the guest's writes meanwhile go again\n"
        "  --no-wait             start it and return (GET /vm/migration follows it)\n"
        "  --resume              a post-copy whose stream broke (postcopy-paused): connect\n"
        "                        to ADDR, where 'nimbus migrate-recover' has the destination\n"
        "                        listen, and send the pages it lacks (no other option)\n"
        "  --json                print the migration events as JSON lines\n"
        "Exit status: 0 when the destination runs the VM, 1 when it failed or was\n"
        "cancelled (the VM goes on here), 2 for bad options, 3 when post-copy paused:\n"
        "the stream broke after the destination took over; it runs the VM but some\n"
        "pages are only here: recover (--resume) or the VM is lost.\n";
    static const struct option extra[] = {
        { "to", required_argument, NULL, 't' },
        { "max-bandwidth", required_argument, NULL, 'b' },
        { "downtime-limit", required_argument, NULL, 'd' },
        { "max-rounds", required_argument, NULL, 'r' },
        { "auto-converge", no_argument, NULL, 'a' },
        { "postcopy", no_argument, NULL, 'p' },
        { "postcopy-after", required_argument, NULL, 'P' },
        { "postcopy-prepage", required_argument, NULL, 'G' },
        { "compress", no_argument, NULL, 'z' },
        { "copy-storage", no_argument, NULL, 's' },
        { "no-wait", no_argument, NULL, 'n' },
        { "resume", no_argument, NULL, 'R' },
        { "dest-connect", required_argument, NULL, 'D' },
        { "undefine-source", no_argument, NULL, 'u' },
        { "cancel", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    struct migrate_cmd c = { .mode = "precopy", .status = -1 };
    struct api_cmd_args a;
    bool done;
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_API | API_CMD_CONNECT, .extra = extra,
        .on_extra = on_opt, .opaque = &c,
    };
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done)
        return r;
    /* --api and no operand; or a VM's name, --dest-connect and no --api
     * (--resume: with --api only). */
    bool daemons = a.first_arg + 1 == argc && !a.sock;
    if (c.cancel)
        return migrate_cancel(argc, argv, &a, daemons, usage);
    if (!c.to || (c.resume && (c.tuned || daemons)) ||
        (daemons ? !c.dest_connect : a.first_arg != argc || !a.sock || a.connect ||
                                         c.dest_connect || c.undefine_source)) {
        fputs(usage, stderr);
        return 2;
    }
    json_t *body = c.resume ? json_pack("{s:s, s:b}", "to", c.to, "resume", 1)
                            : json_pack("{s:s, s:s, s:b, s:b}", "to", c.to, "mode", c.mode,
                                        "auto_converge", c.auto_converge, "compress", c.compress);
    if (body && c.copy_storage)
        json_object_set_new(body, "copy_storage", json_true());
    if (body && c.max_bandwidth)
        json_object_set_new(body, "max_bandwidth", json_integer((json_int_t)c.max_bandwidth));
    if (body && c.downtime_ms)
        json_object_set_new(body, "downtime_limit_ms", json_integer((json_int_t)c.downtime_ms));
    if (body && c.max_rounds)
        json_object_set_new(body, "max_rounds", json_integer((json_int_t)c.max_rounds));
    if (body && c.has_postcopy_after)
        json_object_set_new(body, "postcopy_after", json_integer((json_int_t)c.postcopy_after));
    if (body && c.prepage)
        json_object_set_new(body, "postcopy_prepage", json_boolean(!strcmp(c.prepage, "on")));
    if (daemons && body) {
        struct migrate_daemons_args m = {
            .a = &a, .vm = argv[a.first_arg], .dest_connect = c.dest_connect, .to = c.to,
            .body = body, .undefine_source = c.undefine_source, .no_wait = c.no_wait,
        };
        r = migrate_through_daemons(&m);
        json_decref(body);
        return r;
    }
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        fprintf(stderr, "nimbus migrate: out of memory\n");
        return 1;
    }
    c.a = &a;
    c.body = s;
    c.tty = isatty(STDOUT_FILENO) && !a.json;
    char err[256];
    r = api_stream(a.sock, "/vm/events", on_line, &c, err, sizeof(err));
    free(s);
    if (c.status < 0 && c.started && c.no_wait)
        return 0;
    if (c.status < 0) {
        fprintf(stderr, "nimbus migrate: %s\n", r ? err : "the VM's API went away before the "
                "migration ended (see GET /vm/migration on the destination)");
        return 1;
    }
    if (c.status)
        fprintf(stderr, "nimbus migrate: %s\n", c.error);
    return c.status;
}
