/* nimbus info: GET /vms/VM on nimbusd, shown as virsh dominfo does: one
 * "Key: value" line each. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

#define KEY "%-15s "

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void line_str(const char *key, const char *value)
{
    if (value)
        printf(KEY "%s\n", key, value);
}

static void print_disk(size_t i, const json_t *d)
{
    char key[32];
    snprintf(key, sizeof(key), "Disk %zu:", i);
    const char *fmt = str(d, "format"), *cache = str(d, "cache");
    printf(KEY "%s (%s%s%s)\n", key, str(d, "path") ?: "?", fmt ? fmt : "format probed",
           json_is_true(json_object_get(d, "readonly")) ? ", read-only" : "",
           cache && !strcmp(cache, "none") ? ", cache none" : "");
}

static void print_net(size_t i, const json_t *n)
{
    char key[32];
    snprintf(key, sizeof(key), "Net %zu:", i);
    const char *type = str(n, "type") ?: "?";
    printf(KEY "%s", key, type);
    if (str(n, "ifname"))
        printf(" %s", str(n, "ifname"));
    if (str(n, "mac"))
        printf(", mac %s", str(n, "mac"));
    size_t k;
    json_t *f;
    json_array_foreach(json_object_get(n, "hostfwd"), k, f)
        printf(", hostfwd %s", json_string_value(f) ?: "?");
    printf("\n");
}

static void print_info(const json_t *r)
{
    const json_t *d = json_object_get(r, "definition");
    json_t *pid = json_object_get(r, "pid");
    if (json_is_integer(pid))
        printf(KEY "%lld\n", "Id:", (long long)json_integer_value(pid));
    else
        printf(KEY "-\n", "Id:");
    line_str("Name:", str(r, "name"));
    line_str("UUID:", str(r, "uuid"));
    line_str("State:", str(r, "state"));
    line_str("Exit reason:", str(r, "exit_reason"));
    printf(KEY "%lld\n", "CPU(s):", (long long)json_integer_value(json_object_get(r, "vcpus")));
    printf(KEY "%lld MiB\n", "Memory:",
           (long long)json_integer_value(json_object_get(r, "memory_mib")));
    printf(KEY "%s\n", "Autostart:", json_is_true(json_object_get(r, "autostart")) ? "yes" : "no");
    line_str("Kernel:", str(d, "kernel"));
    line_str("Initrd:", str(d, "initrd"));
    line_str("Command line:", str(d, "cmdline"));
    line_str("BIOS:", str(d, "bios"));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(d, "disks"), i, v)
        print_disk(i, v);
    json_array_foreach(json_object_get(d, "nets"), i, v)
        print_net(i, v);
    json_t *vsock = json_object_get(d, "vsock");
    if (json_is_object(vsock))
        printf(KEY "%lld\n", "Vsock CID:", (long long)json_integer_value(json_object_get(vsock, "cid")));
    if (json_is_true(json_object_get(d, "balloon")))
        printf(KEY "yes\n", "Balloon:");
    line_str("Console:", str(d, "console"));
    line_str("Console socket:", str(r, "console_socket"));
    line_str("API socket:", str(r, "api_socket"));
    line_str("Log:", str(r, "log"));
    line_str("Snapshot:", str(r, "snapshot"));
    json_t *m = json_object_get(r, "migration");
    if (json_is_object(m) && str(m, "phase"))
        printf(KEY "%s%s%s, round %lld, %lld of %lld pages sent, %.1f MiB/s, downtime %.1f ms\n",
               "Migration:", str(m, "phase"), str(m, "to") ? " to " : str(m, "listen") ? " on " : "",
               str(m, "to") ?: str(m, "listen") ?: "",
               (long long)json_integer_value(json_object_get(m, "round")),
               (long long)json_integer_value(json_object_get(m, "pages_sent")),
               (long long)json_integer_value(json_object_get(m, "ram_pages")),
               (double)json_integer_value(json_object_get(m, "bandwidth_bytes_per_s")) / 1048576.0,
               (double)json_integer_value(json_object_get(m, "downtime_us")) / 1000.0);
    json_t *h = json_object_get(r, "history");
    json_t *last = json_array_get(h, json_array_size(h) ? json_array_size(h) - 1 : 0);
    if (json_is_object(last))
        printf(KEY "%s %s -> %s (%s)\n", "Last change:", str(last, "time") ?: "?",
               str(last, "from") ?: "?", str(last, "to") ?: "?", str(last, "reason") ?: "");
}

int cmd_info(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus info VM [--connect PATH] [--json]\n"
        "Shows a VM as nimbusd knows it, one 'Key: value' a line (as virsh dominfo):\n"
        "Id (the pid of its process, '-' without one), name, UUID, state, why it\n"
        "last stopped, vCPUs, memory, autostart, its kernel, disks and cards, its\n"
        "sockets and log, a saved VM's snapshot, its last migration's figures and\n"
        "the last state change.\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply (with the definition and the\n"
        "                  last 20 state changes)\n";
    const struct api_cmd_spec spec = { .usage = usage, .which = API_CMD_CONNECT };
    struct api_cmd_args a;
    const char *vm;
    int r = daemon_vm_cmd_parse(argc, argv, &spec, &a, &vm);
    if (!vm)
        return r;
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, "");
    json_t *reply;
    if ((r = daemon_call(argv[0], &a, vm, "GET", path, NULL, &reply)))
        return r;
    if (a.json) {
        api_print_json(reply);
        return 0;
    }
    print_info(reply);
    json_decref(reply);
    return 0;
}
