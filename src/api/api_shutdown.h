/* Graceful shutdown (PUT /vm/shutdown, docs/api.md "Shutdown"): RISC-V has
 * no ACPI power button, so the guest agent (guest/agent.c, over vsock) is
 * asked to run `poweroff`; a worker thread does the asking (the handshake
 * may take a guest's while, and the I/O thread never blocks on the guest),
 * and the VM is destroyed if it is still running when the timeout is up.
 *
 * Threads: the I/O thread for every call; the worker only talks to the
 * agent's socket and then writes the eventfd. */
#ifndef NIMBUS_API_API_SHUTDOWN_H
#define NIMBUS_API_API_SHUTDOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_AGENT_CONNECT_MS 5000   /* the agent's handshake, at most */

struct api_shutdown;

int api_shutdown_create(struct api_shutdown **out, char *err, size_t errlen);
/* Joins the worker (it ends within API_AGENT_CONNECT_MS). NULL is fine. */
void api_shutdown_free(struct api_shutdown *s);

/* Starts asking the agent on guest port `port` through `fd` (a stream to
 * the vsock device's host side before its handshake; taken over, closed
 * in every case), and sets the deadline timeout_s from now. -EBUSY while
 * one is under way. */
int api_shutdown_start(struct api_shutdown *s, int fd, uint32_t port, unsigned timeout_s,
                       char *err, size_t errlen);
/* True from api_shutdown_start until the deadline passed. */
bool api_shutdown_pending(const struct api_shutdown *s);
/* The eventfd the worker writes when it is done (poll for POLLIN). */
int api_shutdown_fd(const struct api_shutdown *s);
/* CLOCK_MONOTONIC ns of the deadline, INT64_MAX for none. */
int64_t api_shutdown_deadline(const struct api_shutdown *s);

/* After the fd polled readable: true once when the worker finished, with
 * its result (0: the agent took the command; -errno and msg otherwise). */
bool api_shutdown_agent_done(struct api_shutdown *s, int *result, char *msg, size_t msglen);
/* True once when the deadline has passed at `now_ns` (then no longer pending). */
bool api_shutdown_expired(struct api_shutdown *s, int64_t now_ns);

#endif
