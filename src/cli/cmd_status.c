/* nimbus status: GET /vm on the VM's API (docs/api.md): state, uptime,
 * configuration. */
#include <stdio.h>

#include "cli/api_client.h"
#include "cli/cli.h"

static void print_human(json_t *r)
{
    json_t *c = json_object_get(r, "config");
    printf("state:   %s\n", json_string_value(json_object_get(r, "state")));
    printf("uptime:  %.1f s\n", (double)json_integer_value(json_object_get(r, "uptime_ms")) / 1000);
    printf("harts:   %lld\n", (long long)json_integer_value(json_object_get(c, "harts")));
    printf("memory:  %lld MiB (host RSS %lld MiB)\n",
           (long long)json_integer_value(json_object_get(c, "ram_mib")),
           (long long)json_integer_value(json_object_get(r, "rss_kib")) / 1024);
    const char *k = json_string_value(json_object_get(c, "kernel"));
    printf("kernel:  %s\n", k ? k : "(none: bare-metal)");
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(c, "disks"), i, d)
        printf("disk %zu:  %s%s\n", i, json_string_value(json_object_get(d, "path")),
               json_is_true(json_object_get(d, "readonly")) ? " (read-only)" : "");
    json_array_foreach(json_object_get(c, "nets"), i, d)
        printf("net %zu:   %s\n", i, json_string_value(json_object_get(d, "kind")));
    if (json_is_true(json_object_get(c, "balloon")))
        printf("balloon: yes\n");
    if (json_is_integer(json_object_get(c, "vsock_cid")))
        printf("vsock:   cid %lld\n", (long long)json_integer_value(json_object_get(c, "vsock_cid")));
}

int cmd_status(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus status --api PATH [--json]\n"
        "Shows a VM's state (running, paused), uptime and configuration.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --json       print the server's JSON reply (GET /vm)\n";
    return api_cmd_simple(argc, argv, usage, "GET", "/vm", print_human);
}
