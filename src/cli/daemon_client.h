/* What the CLI's nimbusd commands share (define, list, info, start, save,
 * undefine, console, logs, top; and pause, resume, shutdown, destroy given a
 * VM name): finding nimbusd's socket, one request with the daemon's errors
 * turned into one line and an exit status, and VM paths. The requests
 * themselves go through api_client.h (libcurl over a unix socket).
 *
 * nimbusd's API: HTTP/1.1 + JSON, routes under /vms (docs/cli.md). Errors
 * are {"error": one line, "code": ..., "state"/"field": ...}.
 *
 * Exit statuses of the commands: 0 done; 1 the daemon refused or failed,
 * or could not be reached; 2 a usage error.
 *
 * Threads: the command's (main) thread. */
#ifndef NIMBUS_CLI_DAEMON_CLIENT_H
#define NIMBUS_CLI_DAEMON_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli/api_client.h"

/* The --connect line of every daemon command's usage. */
#define DAEMON_CONNECT_USAGE \
    "  --connect PATH  nimbusd's socket (default: $NIMBUS_CONNECT, else\n" \
    "                  /run/nimbus/nimbusd.sock as root, else\n" \
    "                  $XDG_RUNTIME_DIR/nimbus/nimbusd.sock)\n"

/* The options of a command that takes a VM name or --api (pause, ...). */
#define DAEMON_VM_OR_API_USAGE \
    "  VM              the VM's name, through nimbusd\n" \
    DAEMON_CONNECT_USAGE \
    "  --api PATH      a VM process's own API socket (nimbus run --api PATH)\n" \
    "  --json          print the server's JSON reply\n" \
    "Prints the outcome; on an error (a VM in the wrong state, say) prints the\n" \
    "server's message and exits with status 1.\n"

/* nimbusd's default socket for user `uid`: /run/nimbus/nimbusd.sock for
 * root; else $XDG_RUNTIME_DIR/nimbus/nimbusd.sock (`xdg_runtime_dir`, NULL
 * or "" when unset), else /tmp/nimbus-UID/nimbusd.sock. */
void daemon_default_socket(unsigned uid, const char *xdg_runtime_dir, char *buf, size_t len);

/* The socket to use: --connect, else $NIMBUS_CONNECT (when not empty), else
 * the default for this user. Returns buf. */
const char *daemon_socket(const struct api_cmd_args *a, char *buf, size_t len);

/* "/vms/VM" followed by `suffix` (may be ""), VM percent-encoded. */
void daemon_vm_path(char *buf, size_t len, const char *vm, const char *suffix);

/* One request to nimbusd. 0 with *reply set for a 2xx (the caller frees
 * it); otherwise prints "nimbus CMD: message" to stderr (the JSON error to
 * stdout under --json) and returns 1. `vm` (may be NULL) names the VM in
 * the message for not_found: "no VM named VM". */
int daemon_call(const char *cmd, const struct api_cmd_args *a, const char *vm,
                const char *method, const char *path, const char *body, json_t **reply);

/* daemon_call in two steps, for a request made on another thread than the
 * one that reports (nimbus save's progress): daemon_request only does the
 * request (prints nothing); daemon_check reports as daemon_call does. */
struct daemon_reply {
    int r;                 /* api_call's */
    long status;
    json_t *reply;
    char sock[4096];
    char err[512];
};
void daemon_request(const struct api_cmd_args *a, const char *method, const char *path,
                    const char *body, struct daemon_reply *out);
int daemon_check(const char *cmd, const struct api_cmd_args *a, const char *vm,
                 struct daemon_reply *rep, json_t **reply);

/* The message of daemon_call for an error reply (status, JSON) already
 * received (a stream's, say). Frees reply; returns 1. */
int daemon_report(const char *cmd, const struct api_cmd_args *a, const char *vm, long status,
                  json_t *reply);

/* The message for a request that got no reply: says when nimbusd is not
 * running at `sock` (r = -ECONNREFUSED). Returns 1. */
int daemon_report_unreachable(const char *cmd, const char *sock, int r, const char *err);

/* The command's one VM operand (VM), or a usage error (2) with *vm NULL. */
int daemon_vm_operand(int argc, char **argv, const struct api_cmd_args *a, const char **vm);

/* api_cmd_parse_spec and daemon_vm_operand for a command that takes one VM:
 * *vm set to go on (returns 0); else *vm is NULL and the return value is
 * the exit status (0 after --help, 2 for a usage error). */
int daemon_vm_cmd_parse(int argc, char **argv, const struct api_cmd_spec *spec,
                        struct api_cmd_args *a, const char **vm);

/* Prints a daemon reply: as it is under --json, else "VM NAME TEXT".
 * Frees it. */
void daemon_print_done(const struct api_cmd_args *a, json_t *reply, const char *vm,
                       const char *text);

/* The commands that are one request on a VM by name through nimbusd
 * (METHOD /vms/VM/SUFFIX), printing "VM NAME DONE": start, undefine; and,
 * with `api_path`, the ones that take --api PATH instead of a name, to do
 * PUT API_PATH on a VM process's own API as api_cmd_simple does: pause,
 * resume, destroy. Returns the exit status. */
int daemon_vm_simple(int argc, char **argv, const char *usage, const char *api_path,
                     const char *method, const char *suffix, const char *done);

#endif
