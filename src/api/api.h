/* The per-VM control API (`nimbus run --api PATH`): HTTP/1.1 + JSON over a
 * unix socket, in the style of Firecracker's and Cloud Hypervisor's
 * (docs/api.md; every route in docs/openapi.json).
 *
 * Layers: api_http.c serves HTTP (libmicrohttpd, polled by the VM's I/O
 * thread: no thread of the server touches the VM) and the event stream;
 * api_router.c turns a method, a path and a body into a typed request
 * (struct api_request) or a typed error; the ops serve it - api_vm.c on a
 * real machine, the unit tests with a fake; api_shutdown.c asks the guest
 * agent to power the guest off.
 *
 * Threads: everything on the VM's I/O thread (api_open/api_close on the
 * thread that runs the VM, before and after it). */
#ifndef NIMBUS_API_API_H
#define NIMBUS_API_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/virt.h"
#include "vm/migrate.h"
#include "vm/snapshot.h"
#include "vm/vm.h"
#include "vm/vm_state.h"

#define API_MAX_BODY        (16u * 1024)  /* request body */
#define API_MAX_HEADERS     (16u * 1024)  /* request line + headers (the connection's memory) */
#define API_MAX_CONNECTIONS 16u
#define API_MAX_EVENT_STREAMS 8u
#define API_SHUTDOWN_TIMEOUT_S 30u        /* default of PUT /vm/shutdown's timeout_s */
#define API_SHUTDOWN_MAX_TIMEOUT_S 3600u

enum api_action {
    API_GET_VM,
    API_PAUSE,
    API_RESUME,
    API_SHUTDOWN,
    API_DESTROY,
    API_RESET,
    API_SNAPSHOT,
    API_BALLOON,
    API_BALLOON_STATS,
    API_COUNTERS,
    API_EVENTS,
    API_ROUTES,
    API_MIGRATE,
    API_MIGRATION,
    API_MIGRATE_CANCEL,
    API_MIGRATE_RECOVER,
};

struct api_request {
    enum api_action action;
    uint64_t target_mib;                    /* API_BALLOON */
    unsigned timeout_s;                     /* API_SHUTDOWN */
    struct vm_snapshot_options snapshot;    /* API_SNAPSHOT; path points into `path` */
    struct vm_migrate_options migrate;      /* API_MIGRATE */
    char path[4096];                        /* API_SNAPSHOT's file; API_MIGRATE_RECOVER's address */
};

/* What the API serves on. api_vm.c fills this for a virt machine. */
struct api_ops {
    enum vm_state (*state)(void *opaque);
    /* Serves a request the router accepted in the current state (events,
     * routes and the shutdown's agent part are the API's own): fills
     * `reply` and returns 0, or -errno with a one-line message. Errors map
     * to HTTP as api_router.c's error table says (-EALREADY/-EBUSY
     * wrong_state, -ENODEV no_device, -ENOTSUP unsupported, ...). */
    int (*handle)(void *opaque, const struct api_request *req, json_t *reply, char *err,
                  size_t errlen);
    /* The guest agent to ask for a graceful shutdown: a stream to the
     * vsock device's host side, not yet past its CONNECT handshake
     * (agent_client.h), in *fd (the caller closes it), and the agent's
     * port; -ENOTSUP (with why) when the guest has none. */
    int (*agent)(void *opaque, int *fd, uint32_t *port, char *err, size_t errlen);
    /* The migration's progress as an event's fields when it changed since
     * *seq (updated), else NULL. May be NULL (no migrations). */
    json_t *(*migration)(void *opaque, uint64_t *seq);
    /* The guest's next health event after the *seq-th (updated): its fields,
     * with its kind ("watchdog", "guest_panic") in *kind, or NULL when there
     * is none. May be NULL. */
    json_t *(*guest_event)(void *opaque, uint64_t *seq, const char **kind);
    void *opaque;
};

struct api;

/* Listens on `path` (the owner only) and serves `m`. An existing socket there
 * that nobody serves is replaced; a live one, or anything that is not a
 * socket, is refused. Returns 0 or -errno with a one-line message naming
 * the path. */
int api_open(const char *path, struct virt_machine *m, struct api **out, char *err,
             size_t errlen);
/* The same with any ops (the unit tests' fake VM). */
int api_open_ops(const char *path, const struct api_ops *ops, struct api **out, char *err,
                 size_t errlen);

/* Loads the HTTP server library now (api_open loads it otherwise): for a
 * VM that must start serving the moment it runs, such as the destination
 * of a live migration, whose guest stands still until then. Returns 0 or
 * -errno with a one-line message. */
int api_preload(char *err, size_t errlen);

/* The server as a source for vm_run_io. */
struct vm_io_source api_io_source(struct api *a);

/* Ends the event streams (their last event says the state, shutdown for a
 * stopped VM), gives the replies in flight a moment (at most 1 s) to go
 * out, closes every connection and removes the socket file. NULL is fine. */
void api_close(struct api *a);

/* ---- the router (api_router.c) ---- */

struct api_route {
    const char *method;
    const char *path;
    enum api_action action;
    unsigned states;        /* bit (1 << enum vm_state) for each state it may run in; 0: any */
};

/* The route table, for the OpenAPI test (GET /routes serves it too). */
const struct api_route *api_routes(size_t *n);

/* Routes and validates one request. Returns 0 with *req filled, or an HTTP
 * status (4xx) with `*error` a JSON error object ({"error", "code"[,
 * "state"]}) that the caller sends and frees. `body` may be NULL. */
int api_route(const char *method, const char *url, const char *body, size_t len,
              enum vm_state state, struct api_request *req, json_t **error);

/* The HTTP status and the JSON error for an ops failure r (-errno) with
 * message msg, in state `state`. */
int api_error(int r, const char *msg, enum vm_state state, json_t **error);

/* {"error": msg, "code": code}; "state" too when state_name is not NULL. */
json_t *api_error_body(const char *msg, const char *code, const char *state_name);

#endif
