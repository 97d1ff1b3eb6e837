/* nimbus events: follows GET /vm/events on the VM's API (docs/api.md):
 * one line per event until the VM ends. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/api_client.h"
#include "cli/cli.h"

struct follow {
    bool json;
    long count;       /* stop after this many events; 0: never */
    long seen;
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct follow *f = opaque;
    char *end;
    if (opt != 'n')
        return -1;
    f->count = strtol(arg, &end, 10);
    return *arg && !*end && f->count > 0 ? 0 : -1;
}

static bool on_line(void *opaque, const char *s)
{
    struct follow *f = opaque;
    if (f->json) {
        puts(s);
    } else {
        json_t *e = json_loads(s, 0, NULL);
        time_t t = (time_t)(json_integer_value(json_object_get(e, "time_ms")) / 1000);
        char when[32];
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
        const char *kind = json_string_value(json_object_get(e, "kind"));
        printf("%s %s", when, kind ? kind : "?");
        const char *key;
        json_t *v;
        json_object_foreach(e, key, v) {
            if (!strcmp(key, "kind") || !strcmp(key, "time_ms") || !strcmp(key, "uptime_ms"))
                continue;
            char *vs = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            printf(" %s=%s", key, vs ? vs : "?");
            free(vs);
        }
        printf("\n");
        json_decref(e);
    }
    fflush(stdout);
    return !f->count || ++f->seen < f->count;
}

int cmd_events(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus events --api PATH [--json] [-n COUNT]\n"
        "Follows the VM's events, one line each, until the VM ends: the state first,\n"
        "then every state change (running, paused, shutdown), shutdown progress,\n"
        "destroy and reset requests.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  -n COUNT     stop after COUNT events\n"
        "  --json       print the events as the server sends them (JSON lines)\n";
    static const struct option extra[] = {
        { "count", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    struct follow f = { 0 };
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_API, .shortopts = "n:", .extra = extra,
        .on_extra = on_opt, .opaque = &f,
    };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done)
        return r;
    f.json = a.json;
    char err[256];
    if (api_stream(a.sock, "/vm/events", on_line, &f, err, sizeof(err))) {
        fprintf(stderr, "nimbus events: %s\n", err);
        return 1;
    }
    return 0;
}
