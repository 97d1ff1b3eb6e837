/* nimbus shutdown: a VM by name through nimbusd (PUT /vms/VM/shutdown), or
 * PUT /vm/shutdown on a VM process's own API (docs/api.md, "Shutdown"):
 * the guest agent is asked to power the guest off. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/daemon_client.h"

struct opts {
    long timeout_s;   /* 0: the server's default */
    bool wait;
};

static int on_opt(void *opaque, int opt, const char *arg)
{
    struct opts *o = opaque;
    char *end;
    if (opt == 'w') {
        o->wait = true;
        return 0;
    }
    if (opt != 't')
        return -1;
    o->timeout_s = strtol(arg, &end, 10);
    return *arg && !*end && o->timeout_s > 0 ? 0 : -1;
}

/* nimbusd's default (its contract). */
#define DAEMON_SHUTDOWN_TIMEOUT_S 60

/* Until nothing answers on the socket any more (the VM process ended). */
static int wait_gone(const char *sock, long timeout_s)
{
    struct timespec nap = { 0, 100 * 1000 * 1000 };
    for (long i = 0; i < (timeout_s + 5) * 10; i++) {
        json_t *reply;
        long status;
        char err[256];
        int r = api_call(sock, "GET", "/vm", NULL, &status, &reply, err, sizeof(err));
        json_decref(reply);
        if (r)
            return 0;
        nanosleep(&nap, NULL);
    }
    return -ETIMEDOUT;
}

/* Until nimbusd says the VM is neither running nor paused: 0, or 1 with a
 * message. */
static int wait_stopped(const struct api_cmd_args *a, const char *vm, long timeout_s)
{
    struct timespec nap = { 0, 100 * 1000 * 1000 };
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, "");
    int64_t deadline = cli_now_ns() + (int64_t)(timeout_s + 10) * 1000000000;
    for (;;) {
        json_t *reply;
        if (daemon_call("shutdown", a, vm, "GET", path, NULL, &reply))
            return 1;
        const char *st = json_string_value(json_object_get(reply, "state"));
        char state[32];
        snprintf(state, sizeof(state), "%s", st ? st : "?");
        json_decref(reply);
        if (strcmp(state, "running") && strcmp(state, "paused")) {
            if (!a->json)
                printf("VM %s has ended (%s)\n", vm, state);
            return 0;
        }
        if (cli_now_ns() > deadline) {
            fprintf(stderr, "nimbus shutdown: VM %s is still %s after %ld s\n", vm, state,
                    timeout_s + 10);
            return 1;
        }
        nanosleep(&nap, NULL);
    }
}

static int shutdown_daemon(int argc, char **argv, const struct opts *o,
                           const struct api_cmd_args *a, const char *body)
{
    const char *vm;
    int r = daemon_vm_operand(argc, argv, a, &vm);
    if (r)
        return r;
    char path[512];
    daemon_vm_path(path, sizeof(path), vm, "/shutdown");
    json_t *reply;
    if ((r = daemon_call(argv[0], a, vm, "PUT", path, body, &reply)))
        return r;
    daemon_print_done(a, reply, vm, "is being shut down");
    fflush(stdout);
    return o->wait ? wait_stopped(a, vm, o->timeout_s ? o->timeout_s : DAEMON_SHUTDOWN_TIMEOUT_S)
                   : 0;
}

int cmd_shutdown(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus shutdown VM [--connect PATH] [--json] [--timeout SECONDS] [--wait]\n"
        "       nimbus shutdown --api PATH [--json] [--timeout SECONDS] [--wait]\n"
        "Asks the guest to power off: its agent (started by nimbus.agent=PORT on the\n"
        "kernel command line, over --vsock) runs poweroff. A guest still running\n"
        "after the timeout is destroyed (default: 60 s through nimbusd, 30 s with\n"
        "--api). A VM without an agent is refused with --api (use nimbus destroy).\n"
        "  VM                 the VM's name, through nimbusd\n"
        "  --connect PATH     nimbusd's socket (see nimbus list --help)\n"
        "  --api PATH         a VM process's own API socket (nimbus run --api PATH)\n"
        "  --timeout SECONDS  destroy the VM after this long (1..3600)\n"
        "  --wait             return once the VM has ended\n"
        "  --json             print the server's JSON reply\n";
    static const struct option extra[] = {
        { "timeout", required_argument, NULL, 't' },
        { "wait", no_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { 0 };
    const struct api_cmd_spec spec = {
        .usage = usage, .which = API_CMD_API | API_CMD_CONNECT, .extra = extra,
        .on_extra = on_opt, .opaque = &o,
    };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse_spec(argc, argv, &spec, &a, &done);
    if (r || done)
        return r;
    char body[64] = "";
    if (o.timeout_s)
        snprintf(body, sizeof(body), "{\"timeout_s\":%ld}", o.timeout_s);
    if (!a.sock)
        return shutdown_daemon(argc, argv, &o, &a, body[0] ? body : NULL);
    json_t *reply;
    if ((r = api_cmd_no_operands(argc, argv, &a)) || (r = api_cmd_call(argv[0], &a, "PUT", "/vm/shutdown", body[0] ? body : NULL, &reply)))
        return r;
    long timeout = (long)json_integer_value(json_object_get(reply, "timeout_s"));
    if (a.json)
        api_print_json(reply);
    else {
        printf("shutdown requested: the guest's agent runs poweroff; destroyed after %ld s "
               "if still running\n", timeout);
        json_decref(reply);
    }
    if (o.wait) {
        if (wait_gone(a.sock, timeout)) {
            fprintf(stderr, "nimbus shutdown: the VM still answers after %ld s\n", timeout + 5);
            return 1;
        }
        if (!a.json)
            printf("the VM has ended\n");
    }
    return 0;
}
