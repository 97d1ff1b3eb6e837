/* nimbus shutdown: PUT /vm/shutdown on the VM's API (docs/api.md,
 * "Shutdown"): the guest agent is asked to power the guest off. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli/api_client.h"
#include "cli/cli.h"

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

int cmd_shutdown(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus shutdown --api PATH [--json] [--timeout SECONDS] [--wait]\n"
        "Asks the guest to power off: its agent (started by nimbus.agent=PORT on the\n"
        "kernel command line, over --vsock) runs poweroff. A guest still running\n"
        "after the timeout (default 30 s) is destroyed. A VM without an agent is\n"
        "refused (use nimbus destroy).\n"
        "  --api PATH         the VM's API socket (nimbus run --api PATH)\n"
        "  --timeout SECONDS  destroy the VM after this long (1..3600)\n"
        "  --wait             return once the VM has ended\n"
        "  --json             print the server's JSON reply\n";
    static const struct option extra[] = {
        { "timeout", required_argument, NULL, 't' },
        { "wait", no_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { 0 };
    struct api_cmd_args a;
    bool done;
    int r = api_cmd_parse(argc, argv, usage, extra, on_opt, &o, &a, &done);
    if (r || done)
        return r;
    char body[64] = "";
    if (o.timeout_s)
        snprintf(body, sizeof(body), "{\"timeout_s\":%ld}", o.timeout_s);
    json_t *reply;
    if ((r = api_cmd_call(argv[0], &a, "PUT", "/vm/shutdown", body[0] ? body : NULL, &reply)))
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
