/* The control socket (`nimbus run --control PATH`): a unix stream socket,
 * served by the VM's I/O thread, that speaks one JSON object per line in
 * and one JSON object per line out:
 *
 *   {"cmd":"balloon","target_mib":N}   set the balloon target
 *   {"cmd":"balloon-stats"}            the balloon's size and the guest's statistics
 *   {"cmd":"status"}                   harts, RAM, the VMM's RSS, devices
 *
 * Every line is at most CONTROL_MAX_LINE bytes; longer ones, malformed
 * JSON, unknown commands or fields and values of the wrong type get
 * {"error":"..."} and the connection (and the VM) go on. Up to
 * CONTROL_MAX_CLIENTS connections at once; more are told so and closed.
 * A client that does not read its replies is dropped once
 * CONTROL_MAX_OUTPUT bytes wait for it. Blank lines are ignored.
 *
 * This file parses and validates, then hands a typed request to the ops
 * (control_vm.c serves a running VM); the lifecycle API will grow it into
 * HTTP/JSON.
 *
 * Threads: everything on the I/O thread (control_open/close on the thread
 * that runs the VM, before and after). */
#ifndef NIMBUS_API_CONTROL_H
#define NIMBUS_API_CONTROL_H

#include <jansson.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "vm/vm.h"

#define CONTROL_MAX_LINE    4096u
#define CONTROL_MAX_CLIENTS 8u
#define CONTROL_MAX_OUTPUT  (64u * 1024)

enum control_cmd {
    CONTROL_CMD_BALLOON,          /* target_mib */
    CONTROL_CMD_BALLOON_STATS,
    CONTROL_CMD_STATUS,
    CONTROL_CMD_PAUSE,
    CONTROL_CMD_RESUME,
};

struct control_request {
    enum control_cmd cmd;
    uint64_t target_mib;
};

struct control_ops {
    /* Serves one request: fills the JSON object `reply` and returns 0, or
     * returns -errno with a one-line message in `err`. */
    int (*handle)(void *opaque, const struct control_request *req, json_t *reply, char *err,
                  size_t errlen);
    void *opaque;
};

struct control;

/* Listens on `path`. An existing socket there that nobody serves is
 * replaced; a live one, or anything that is not a socket, is refused.
 * Returns 0 or -errno with a one-line message naming the path. */
int control_open(const char *path, const struct control_ops *ops, struct control **out,
                 char *err, size_t errlen);

/* Closes every connection and removes the socket file. NULL is fine. */
void control_close(struct control *c);

/* The descriptors for the I/O thread's poll(), and serving them. */
unsigned control_fill(struct control *c, struct pollfd *fds, unsigned max);
void control_handle(struct control *c, const struct pollfd *fds, unsigned n);

/* control_fill/control_handle as a source for vm_run_io. */
struct vm_io_source control_io_source(struct control *c);

/* Parses one request line (without its newline). Returns 0, or -EINVAL
 * with the reason in `err`. Exposed for the tests. */
int control_parse(const char *line, size_t len, struct control_request *req, char *err,
                  size_t errlen);

#endif
