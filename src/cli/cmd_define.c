/* nimbus define: POST /vms to nimbusd with a DEFINITION (docs/cli.md,
 * "Definitions"), as virsh define. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

#define MAX_DEFINITION (1u << 20)   /* nimbusd takes far less; a mistake, then */

/* The whole of FILE ("-": stdin) as a string in *out. 0, or 1 with a message. */
static int read_definition(const char *file, char **out)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
    *out = NULL;
    if (!f) {
        fprintf(stderr, "nimbus define: %s: %s\n", file, strerror(errno));
        return 1;
    }
    char *buf = malloc(MAX_DEFINITION + 1);
    size_t n = buf ? fread(buf, 1, MAX_DEFINITION + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > MAX_DEFINITION;
    if (bad)
        fprintf(stderr, "nimbus define: %s: %s\n", file,
                !buf ? "out of memory" : n > MAX_DEFINITION ? "larger than 1 MiB" : "read error");
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(buf);
        return 1;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int cmd_define(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus define FILE [--connect PATH] [--json]\n"
        "Defines a VM from the JSON definition in FILE ('-': standard input): its\n"
        "name, vCPUs, memory, kernel, disks, network cards, ... (docs/cli.md,\n"
        "\"Definitions\"). nimbusd checks every field and fills in the defaults, a\n"
        "UUID and the cards' MACs; the VM is then 'defined' (nimbus start boots it).\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply (the VM's info, its definition\n"
        "                  normalized)\n"
        "A definition nimbusd refuses is reported with the field at fault, e.g.\n"
        "'disks[1].path: /x: No such file or directory'; exit status 1.\n";
    const struct api_cmd_spec spec = { .usage = usage, .which = API_CMD_CONNECT };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done)
        return r;
    const char *file;
    if (a.first_arg + 1 != argc) {
        fputs(usage, stderr);
        return 2;
    }
    file = argv[a.first_arg];
    char *text;
    if ((r = read_definition(file, &text)))
        return r;
    /* Syntax errors here, with their place in the file; the fields are
     * nimbusd's to judge. */
    json_error_t e;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!j) {
        fprintf(stderr, "nimbus define: %s:%d:%d: %s\n", file, e.line, e.column, e.text);
        free(text);
        return 1;
    }
    json_decref(j);
    json_t *reply;
    r = daemon_call(argv[0], &a, NULL, "POST", "/vms", text, &reply);
    free(text);
    if (r)
        return r;
    if (a.json) {
        api_print_json(reply);
        return 0;
    }
    const char *name = json_string_value(json_object_get(reply, "name"));
    printf("VM %s defined from %s\n", name ? name : "?", file);
    json_decref(reply);
    return 0;
}
