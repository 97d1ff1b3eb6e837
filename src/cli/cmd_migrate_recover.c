/* nimbus migrate-recover: on the destination of a post-copy whose stream
 * broke (phase postcopy-paused), listen for the source again
 * (PUT /vm/migration/recover; docs/migration.md "Post-copy recovery").
 * The source then resumes with `nimbus migrate --resume --to ADDR`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/api_client.h"
#include "cli/cli.h"

static int on_opt(void *opaque, int opt, const char *arg)
{
    if (opt != 'l')
        return -1;
    *(const char **)opaque = arg;
    return 0;
}

static void print_listening(json_t *r)
{
    const char *at = json_string_value(json_object_get(json_object_get(r, "migration"),
                                                       "recover_listen"));
    printf("waiting for the source to resume at %s\n", at ? at : "?");
}

int cmd_migrate_recover(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus migrate-recover --api PATH --listen ADDR [--json]\n"
        "On the destination of a post-copy migration whose stream broke (phase\n"
        "postcopy-paused: the VM runs here, harts that need a page still on the source\n"
        "wait): listen at ADDR for the source, which then resumes with\n"
        "'nimbus migrate --api SRC --resume --to ADDR'. Returns once listening; GET\n"
        "/vm/migration follows the rest. May be repeated after a failed recovery.\n"
        "  --api PATH     the destination's API socket (nimbus restore --incoming --api)\n"
        "  --listen ADDR  unix:PATH or tcp:HOST:PORT (port 0: any; the reply says which)\n"
        "  --json         print the server's JSON reply\n";
    static const struct option extra[] = {
        { "listen", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen = NULL;
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse(argc, argv, usage, extra, on_opt, &listen, &a, &done);
    if (r || done)
        return r;
    if (!listen || a.first_arg != argc) {
        fputs(usage, stderr);
        return 2;
    }
    json_t *body = json_pack("{s:s}", "listen", listen);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        fprintf(stderr, "nimbus migrate-recover: out of memory\n");
        return 1;
    }
    json_t *reply;
    r = api_cmd_call(argv[0], &a, "PUT", "/vm/migration/recover", s, &reply);
    free(s);
    if (r)
        return r;
    api_cmd_print(&a, reply, print_listening);
    return 0;
}
