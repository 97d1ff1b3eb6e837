/* The CLI's client of the per-VM API (docs/api.md) and of nimbusd
 * (daemon_client.h): libcurl over a unix socket, and what every API command
 * shares: --api PATH (or --connect PATH), --json, --help, the error line and
 * the exit status.
 * Threads: the command's (main) thread. */
#ifndef NIMBUS_CLI_API_CLIENT_H
#define NIMBUS_CLI_API_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One request: METHOD PATH with `body` (NULL: none) to the socket `sock`.
 * *status gets the HTTP status and *reply the JSON reply (NULL if it was
 * none). Returns 0, or -errno with a one-line message when no reply came
 * (no server at sock, say). */
int api_call(const char *sock, const char *method, const char *path, const char *body,
             long *status, json_t **reply, char *err, size_t errlen);
/* api_call with a limit on the whole request: -ETIMEDOUT when no reply came
 * within timeout_ms (0: none). nimbusd's calls to its VMs, so that a VM
 * process that does not answer (stopped, or compromised) cannot hold up a
 * request about all VMs, or its own destroy. */
int api_call_timeout(const char *sock, const char *method, const char *path, const char *body,
                     long timeout_ms, long *status, json_t **reply, char *err, size_t errlen);

/* GET PATH as a stream: `line` gets each line (without its newline) of a
 * 2xx reply as it comes; it returns false to stop. Returns 0 at the end of
 * the stream (or when stopped), -errno with a message otherwise (an error
 * reply's "error" among it). */
int api_stream(const char *sock, const char *path, bool (*line)(void *opaque, const char *s),
               void *opaque, char *err, size_t errlen);

/* api_stream that also ends (returning 0) once `stop` (asked about once a
 * second, on this thread, while the stream is open) returns true: a
 * stream that may stay quiet long can still be given up. */
int api_stream_until(const char *sock, const char *path,
                     bool (*line)(void *opaque, const char *s), bool (*stop)(void *opaque),
                     void *opaque, char *err, size_t errlen);
/* api_stream, but an error reply is returned as api_call returns it: 0 with
 * *status and *reply (its JSON; NULL after a 2xx stream). */
int api_stream_reply(const char *sock, const char *path,
                     bool (*line)(void *opaque, const char *s), void *opaque, long *status,
                     json_t **reply, char *err, size_t errlen);

/* What an API command was given. */
struct api_cmd_args {
    const char *sock;       /* --api */
    const char *connect;    /* --connect: nimbusd's socket (daemon_client.h) */
    bool json;              /* --json: print the server's JSON reply as it is */
    int first_arg;          /* argv index of the first operand */
};

/* How a command's options are parsed: --json and --help always; --api
 * and/or --connect as `which` says (--api alone: it is required); then the command's own (getopt_long
 * form, may be NULL; `shortopts` their one-letter forms in getopt's
 * notation, may be NULL), each handed to on_extra with optarg (non-zero:
 * a bad value). */
#define API_CMD_API     1u
#define API_CMD_CONNECT 2u
struct option;
struct api_cmd_spec {
    const char *usage;
    unsigned which;
    const char *shortopts;
    const struct option *extra;
    int (*on_extra)(void *opaque, int opt, const char *arg);
    void *opaque;
};

/* Prints `usage` on --help (returns 0 with *done set) and to stderr on
 * errors (returns 2); a->first_arg is the first operand (getopt_long
 * permutes: operands may come before options). */
int api_cmd_parse_spec(int argc, char **argv, const struct api_cmd_spec *s,
                       struct api_cmd_args *a, bool *done);

/* api_cmd_parse_spec for a command of the per-VM API (which = API_CMD_API). */
int api_cmd_parse(int argc, char **argv, const char *usage, const struct option *extra,
                  int (*on_extra)(void *opaque, int opt, const char *arg), void *opaque,
                  struct api_cmd_args *a, bool *done);

/* Does the request and reports: 0 with *reply set (the caller prints it
 * and frees it) for a 2xx; otherwise prints "nimbus NAME: message" to
 * stderr (and the JSON error to stdout under --json) and returns 1. */
int api_cmd_call(const char *name, const struct api_cmd_args *a, const char *method,
                 const char *path, const char *body, json_t **reply);

/* Prints the reply as one JSON line (--json). Frees it. */
void api_print_json(json_t *reply);

/* Prints a reply: as it is under --json, else with `human` (NULL: "state:
 * STATE"). Frees it. */
void api_cmd_print(const struct api_cmd_args *a, json_t *reply, void (*human)(json_t *reply));

/* 0 when the command was given no operands, else 2 after a message. */
int api_cmd_no_operands(int argc, char **argv, const struct api_cmd_args *a);

/* One request with no body for a command whose options are parsed and
 * which takes no operands: does it and prints the reply with api_cmd_print.
 * Returns the exit status. */
int api_cmd_run(int argc, char **argv, const struct api_cmd_args *a, const char *method,
                const char *path, void (*human)(json_t *reply));

/* A command that is one request with no body and no options or operands
 * of its own (pause, resume, destroy, reset, status, counters): does it
 * and prints the reply with api_cmd_print. */
int api_cmd_simple(int argc, char **argv, const char *usage, const char *method,
                   const char *path, void (*human)(json_t *reply));

#endif
