/* nimbus list: GET /vms on nimbusd, as virsh list: the running (and
 * paused) VMs, or every VM with --all. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

struct list_opts {
    bool all, names;
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct list_opts *o = opaque;
    (void)arg;
    if (opt == 'a')
        o->all = true;
    else if (opt == 'N')
        o->names = true;
    else
        return -1;
    return 0;
}

/* A VM with a process: what virsh calls active. */
static bool active(const json_t *vm)
{
    const char *st = json_string_value(json_object_get(vm, "state"));
    return st && (!strcmp(st, "running") || !strcmp(st, "paused") || !strcmp(st, "migrating"));
}

static int by_name(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));
    return strcmp(x ? x : "", y ? y : "");
}

static void print_table(json_t *vms)
{
    /* The pid is the Id: the one number that names a VM's process. */
    int idw = 2, namew = 4, statew = 5;
    size_t i;
    json_t *vm;
    json_array_foreach(vms, i, vm) {
        const char *name = json_string_value(json_object_get(vm, "name"));
        const char *st = json_string_value(json_object_get(vm, "state"));
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(vm, "pid")));
        if ((int)strlen(id) > idw)
            idw = (int)strlen(id);
        if (name && (int)strlen(name) > namew)
            namew = (int)strlen(name);
        if (st && (int)strlen(st) > statew)
            statew = (int)strlen(st);
    }
    printf(" %-*s   %-*s   %s\n", idw, "Id", namew, "Name", "State");
    for (int k = 0; k < idw + namew + statew + 8; k++)
        putchar('-');
    putchar('\n');
    json_array_foreach(vms, i, vm) {
        const char *name = json_string_value(json_object_get(vm, "name"));
        const char *st = json_string_value(json_object_get(vm, "state"));
        json_t *pid = json_object_get(vm, "pid");
        char id[24] = "-";
        if (json_is_integer(pid))
            snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(pid));
        printf(" %-*s   %-*s   %s\n", idw, id, namew, name ? name : "?", st ? st : "?");
    }
}

int cmd_list(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus list [--all] [--name] [--connect PATH] [--json]\n"
        "Lists the VMs that run (running or paused; with --all every defined VM),\n"
        "sorted by name, as virsh list does: the VM process's pid as Id ('-' for a\n"
        "VM without one), the name and the state (defined, running, paused, saved,\n"
        "shutdown, crashed, migrating).\n"
        "  -a, --all       every VM, whatever its state\n"
        "  --name          only the names, one a line\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply ({\"vms\": [...]}, the same VMs)\n";
    static const struct option extra[] = {
        { "all", no_argument, NULL, 'a' },
        { "name", no_argument, NULL, 'N' },
        { NULL, 0, NULL, 0 },
    };
    struct list_opts o = { 0 };
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_CONNECT, .shortopts = "a", .extra = extra,
        .on_extra = on_opt, .opaque = &o,
    };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done || (r = api_cmd_no_operands(argc, argv, &a)))
        return r;
    json_t *reply;
    if ((r = daemon_call(argv[0], &a, NULL, "GET", "/vms", NULL, &reply)))
        return r;
    json_t *vms = json_object_get(reply, "vms");
    if (!json_is_array(vms)) {
        fprintf(stderr, "nimbus list: nimbusd's reply has no \"vms\" list\n");
        json_decref(reply);
        return 1;
    }
    /* Sorted, and filtered in place (the --json reply too). */
    size_t n = json_array_size(vms), k = 0;
    json_t **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        if (o.all || active(json_array_get(vms, i)))
            v[k++] = json_incref(json_array_get(vms, i));
    if (!v) {
        fprintf(stderr, "nimbus list: out of memory\n");
        json_decref(reply);
        return 1;
    }
    qsort(v, k, sizeof(*v), by_name);
    json_array_clear(vms);
    for (size_t i = 0; i < k; i++)
        json_array_append_new(vms, v[i]);
    free(v);
    if (a.json) {
        api_print_json(reply);
        return 0;
    }
    if (o.names) {
        size_t i;
        json_t *vm;
        json_array_foreach(vms, i, vm)
            puts(json_string_value(json_object_get(vm, "name")) ?: "?");
    } else {
        print_table(vms);
    }
    json_decref(reply);
    return 0;
}
