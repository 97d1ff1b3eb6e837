/* nimbus balloon: the balloon's target (PUT /vm/balloon) or its figures
 * (GET /vm/balloon/stats) on the VM's API (docs/api.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/api_client.h"
#include "cli/cli.h"

static void print_stats(json_t *r)
{
    printf("target:   %lld MiB\n", (long long)json_integer_value(json_object_get(r, "target_mib")));
    printf("actual:   %lld MiB\n", (long long)json_integer_value(json_object_get(r, "actual_mib")));
    printf("reported: %lld MiB (free page reporting)\n",
           (long long)json_integer_value(json_object_get(r, "reported_mib")));
    json_t *s = json_object_get(r, "stats");
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
        printf("guest %s: %lld\n", key, (long long)json_integer_value(v));
}

static void print_target(json_t *r)
{
    printf("balloon target: %lld MiB\n", (long long)json_integer_value(json_object_get(r, "target_mib")));
}

int cmd_balloon(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus balloon --api PATH [--json] [TARGET_MIB]\n"
        "With TARGET_MIB, sets the balloon's target: the guest gives that much of its\n"
        "memory back to the host (0 gives it all back to the guest). Without, shows\n"
        "the balloon's size and the guest's memory statistics.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH; the VM needs --balloon)\n"
        "  --json       print the server's JSON reply\n";
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse(argc, argv, usage, NULL, NULL, NULL, &a, &done);
    if (r || done)
        return r;
    json_t *reply;
    if (a.first_arg == argc) {
        if ((r = api_cmd_call(argv[0], &a, "GET", "/vm/balloon/stats", NULL, &reply)))
            return r;
        api_cmd_print(&a, reply, print_stats);
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long mib = strtoull(argv[a.first_arg], &end, 10);
    if (a.first_arg + 1 != argc || end == argv[a.first_arg] || *end || errno ||
        argv[a.first_arg][0] == '-') {
        fputs(usage, stderr);
        return 2;
    }
    char body[64];
    snprintf(body, sizeof(body), "{\"target_mib\":%llu}", mib);
    if ((r = api_cmd_call(argv[0], &a, "PUT", "/vm/balloon", body, &reply)))
        return r;
    api_cmd_print(&a, reply, print_target);
    return 0;
}
