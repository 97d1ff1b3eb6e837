/* nimbus logs: GET /vms/VM/log on nimbusd: the VM process's log (its
 * stderr and the console's output), all of it or the last lines, and with
 * -f what is written to it from then on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/daemon_client.h"

struct logs_opts {
    long lines;       /* -1: all */
    bool follow;
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct logs_opts *o = opaque;
    if (opt == 'f') {
        o->follow = true;
        return 0;
    }
    if (opt != 'n')
        return -1;
    char *end;
    errno = 0;
    o->lines = strtol(arg, &end, 10);
    return errno || !*arg || *end || o->lines < 0 ? -1 : 0;
}

static bool on_line(void *opaque, const char *s)
{
    bool follow = *(bool *)opaque;
    puts(s);
    if (follow)
        fflush(stdout);
    return true;
}

int cmd_logs(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus logs VM [-n LINES] [-f] [--connect PATH]\n"
        "Prints the VM's log: what its process wrote to stderr and what the guest\n"
        "wrote to its console, across starts.\n"
        "  -n, --lines LINES  only the last LINES lines\n"
        "  -f, --follow       then print what is added, until interrupted\n"
        DAEMON_CONNECT_USAGE;
    static const struct option extra[] = {
        { "lines", required_argument, NULL, 'n' },
        { "follow", no_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    struct logs_opts o = { .lines = -1 };
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_CONNECT, .shortopts = "n:f", .extra = extra,
        .on_extra = on_opt, .opaque = &o,
    };
    struct api_cmd_args a;
    const char *vm;
    int r = daemon_vm_cmd_parse(argc, argv, &spec, &a, &vm);
    if (!vm)
        return r;
    if (a.json) {
        fprintf(stderr, "nimbus logs: the log is text: no --json\n");
        return 2;
    }
    char path[600], query[64] = "";
    if (o.lines >= 0)
        snprintf(query, sizeof(query), "?lines=%ld", o.lines);
    if (o.follow)
        snprintf(query + strlen(query), sizeof(query) - strlen(query), "%cfollow=1",
                 query[0] ? '&' : '?');
    daemon_vm_path(path, sizeof(path), vm, "/log");
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", query);
    char sock[4096], err[512];
    long status;
    json_t *reply;
    daemon_socket(&a, sock, sizeof(sock));
    r = api_stream_reply(sock, path, on_line, &o.follow, &status, &reply, err, sizeof(err));
    if (r)
        return daemon_report_unreachable(argv[0], sock, r, err);
    if (reply)
        return daemon_report(argv[0], &a, vm, status, reply);
    return 0;
}
