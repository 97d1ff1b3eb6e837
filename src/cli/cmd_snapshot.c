/* nimbus snapshot: PUT /vm/snapshot on the VM's API (docs/api.md,
 * docs/snapshots.md for what DIR holds). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/api_client.h"
#include "cli/cli.h"

struct flags {
    bool diff, compress, stop;
};

static int on_flag(void *opaque, int opt, const char *arg)
{
    struct flags *f = opaque;
    (void)arg;
    if (opt == 'd')
        f->diff = true;
    else if (opt == 'c')
        f->compress = true;
    else if (opt == 's')
        f->stop = true;
    else
        return -1;
    return 0;
}

int cmd_snapshot(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus snapshot --api PATH [--json] [--diff] [--compress] [--stop] DIR\n"
        "Saves the VM into the directory DIR (made; it must not exist or be empty):\n"
        "its state and its memory. A running VM is paused for the save and goes on\n"
        "after it; a paused one stays paused.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --diff       only the pages written since the last snapshot\n"
        "  --compress   memory in zstd-compressed chunks\n"
        "  --stop       end the VM after saving\n"
        "  --json       print the server's JSON reply\n";
    static const struct option extra[] = {
        { "diff", no_argument, NULL, 'd' },
        { "compress", no_argument, NULL, 'c' },
        { "stop", no_argument, NULL, 's' },
        { NULL, 0, NULL, 0 },
    };
    struct flags f = { 0 };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse(argc, argv, usage, extra, on_flag, &f, &a, &done);
    if (r || done)
        return r;
    if (a.first_arg + 1 != argc) {
        fputs(usage, stderr);
        return 2;
    }
    json_t *body = json_pack("{s:s, s:b, s:b, s:b}", "path", argv[a.first_arg], "diff", f.diff,
                             "compress", f.compress, "stop", f.stop);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        fprintf(stderr, "nimbus snapshot: out of memory\n");
        return 1;
    }
    json_t *reply;
    r = api_cmd_call(argv[0], &a, "PUT", "/vm/snapshot", s, &reply);
    free(s);
    if (r)
        return r;
    if (a.json) {
        api_print_json(reply);
        return 0;
    }
    printf("snapshot %s: state %lld bytes, memory %lld bytes (%lld pages); paused %lld us, "
           "saved in %lld us\n", argv[a.first_arg],
           (long long)json_integer_value(json_object_get(reply, "state_bytes")),
           (long long)json_integer_value(json_object_get(reply, "memory_bytes")),
           (long long)json_integer_value(json_object_get(reply, "pages_written")),
           (long long)json_integer_value(json_object_get(reply, "pause_us")),
           (long long)json_integer_value(json_object_get(reply, "save_us")));
    json_decref(reply);
    return 0;
}
