/* The host side of the guest agent protocol (docs/architecture.md, "Guest
 * agent"; the agent is guest/agent.c): connect to a guest's vsock port
 * through the unix socket of `nimbus run --vsock`, run one command there,
 * relay its stdin/stdout/stderr, get its exit status; or start a command
 * and go (agent_start: the API's graceful shutdown runs `poweroff` so). In
 * vm/ so that both the CLI and the API may use it; `nimbus exec` is built on
 * it; tests/tools/agent_client.c uses it.
 *
 * Threads: any; the calls block (on the sockets and the given fds).
 * Errors: -errno and a one-line message in err. */
#ifndef NIMBUS_VM_AGENT_CLIENT_H
#define NIMBUS_VM_AGENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_MAX_ARGS      256
#define AGENT_MAX_ARG_BYTES (64 * 1024)

/* The agent's vsock port from a kernel command line (`append`, may be
 * NULL): the last word nimbus.agent=PORT (guest/init starts the agent so).
 * Returns 0, -ENOENT when there is none, -EINVAL when it is not a port. */
int agent_port_from_cmdline(const char *append, uint32_t *port);

/* Connects to `uds_path` (the --vsock socket), asks for guest port `port`
 * ("CONNECT PORT\n") and waits for "OK HOSTPORT\n", at most timeout_ms
 * (0: no limit; -ETIMEDOUT after it). On success *fd is the stream to the
 * guest's listener. -ECONNREFUSED when the guest refused (no listener on
 * the port). `early` (early_len bytes; NULL, 0 for none) is written right
 * behind the CONNECT line, before the answer: the vsock device keeps it
 * until the guest has accepted, and it reaches the guest with the
 * connection, a round trip sooner (nimbus exec sends its command so). If
 * the guest refuses, it is lost with the connection. */
int agent_vsock_connect(const char *uds_path, uint32_t port, const void *early, size_t early_len,
                        int timeout_ms, int *fd, char *err, size_t errlen);

/* The same on a stream already connected to the vsock device's host side
 * (virtio_vsock_connect_local): "CONNECT PORT\n", `early`, and the answer,
 * at most timeout_ms. The caller keeps fd either way. */
int agent_vsock_handshake(int fd, uint32_t port, const void *early, size_t early_len,
                          int timeout_ms, char *err, size_t errlen);

/* The frames that run argv (argc >= 1): an `a` frame per argument, `x`,
 * and with no_stdin an empty `i` (the command's stdin closed at once), in
 * a new buffer *buf (the caller frees it) of *len bytes. */
int agent_command(int argc, char *const argv[], bool no_stdin, uint8_t **buf, size_t *len,
                  char *err, size_t errlen);

/* Sends argv (argc >= 1) to the agent on `fd` to run with an empty stdin,
 * and returns without waiting for it: the caller may close fd at once (the
 * agent lets the command finish). */
int agent_start(int fd, int argc, char *const argv[], char *err, size_t errlen);

/* Runs argv (argc >= 1) through the agent on `fd`: bytes of in_fd (-1: an
 * empty stdin) go to the command's stdin, its stdout/stderr to out_fd and
 * err_fd, *status gets its exit status (128 + N for signal N). The fd is
 * left open. */
int agent_exec(int fd, int argc, char *const argv[], int in_fd, int out_fd, int err_fd,
               int *status, char *err, size_t errlen);

/* agent_exec's part after the command was sent (agent_command, with
 * no_stdin when in_fd is -1): stdin, output and the status. */
int agent_relay(int fd, int in_fd, int out_fd, int err_fd, int *status, char *err, size_t errlen);

#endif
