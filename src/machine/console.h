/* Host side of the guest console: where the UART's (or virtio-console's)
 * output goes and where its input comes from.
 *
 * Backends:
 *   stdio        the terminal. If stdin is a tty it is put in full raw mode
 *                (restored by console_close() or console_restore_terminal()).
 *                QEMU-style escapes on input: Ctrl-A x quits, Ctrl-A Ctrl-A
 *                sends one Ctrl-A, Ctrl-A h prints the escape help, Ctrl-A
 *                followed by anything else passes both bytes through. EOF on
 *                stdin (pipe, file, /dev/null) only ends input; it does not
 *                quit: the guest keeps running.
 *   file:PATH    output written to PATH (truncated on open); no input.
 *   socket:PATH  a unix stream socket server at PATH (a stale socket is
 *                replaced; anything else at PATH is an error; a live server
 *                at PATH is -EADDRINUSE). One client at a time, like QEMU:
 *                further clients wait in the listen backlog and are accepted
 *                when the current one disconnects. Client bytes go to the
 *                guest unchanged (no escapes: disconnecting is how a socket
 *                user leaves). Output is sent non-blocking; what cannot be
 *                sent (no client, or a client that does not read) is kept in
 *                a 64 KiB ring, oldest bytes dropped first, and replayed when
 *                a client connects / on the next write or input event. So a
 *                late client sees the last 64 KiB of output it missed (e.g.
 *                the boot log), and a stalled client never blocks the guest.
 *
 * Threads: console_write() may be called from any thread (hart threads via
 * the UART); it takes the console lock and never calls back. console_fd(),
 * console_handle_input() run on the VM's I/O thread only, which is also the
 * only place where the fd set changes; the input/quit callbacks are called
 * from console_handle_input() without the console lock held. console_open()
 * and console_close() run while no other thread uses the console.
 * console_restore_terminal() is async-signal-safe.
 *
 * Errors: -errno and a one-line message in `err` (may be NULL if errlen 0). */
#ifndef NIMBUS_MACHINE_CONSOLE_H
#define NIMBUS_MACHINE_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_SOCKET };

/* Bytes kept for a socket console with no (or a slow) client. */
#define CONSOLE_RING_SIZE (64u * 1024u)

/* Parses "stdio", "file:PATH", "socket:PATH" into *kind and path (empty for
 * stdio). -EINVAL with a message for anything else or an empty PATH;
 * -ENAMETOOLONG if PATH does not fit in pathlen (or, for a socket, in
 * sockaddr_un.sun_path). */
int console_parse(const char *spec, enum console_kind *kind, char *path, size_t pathlen,
                  char *err, size_t errlen);

struct console;  /* opaque */

struct console_ops_cb {  /* set by the machine; any member may be NULL */
    void (*input)(void *opaque, const uint8_t *buf, size_t n); /* bytes for the guest */
    void (*quit)(void *opaque);                                 /* Ctrl-A x */
    void *opaque;
};

/* Opens a backend (`path` is ignored for CONSOLE_STDIO, which uses fds 0 and
 * 1). `cb` is copied. On success *out is the console, else -errno. */
int console_open(enum console_kind kind, const char *path, const struct console_ops_cb *cb,
                 struct console **out, char *err, size_t errlen);

/* The stdio backend on an arbitrary fd pair (tests; a pty). The fds stay
 * owned by the caller: console_close() restores in_fd's terminal mode if it
 * changed it, but closes neither. */
int console_open_fds(int in_fd, int out_fd, const struct console_ops_cb *cb,
                     struct console **out, char *err, size_t errlen);

/* Guest output. Any thread. stdio/file: written fully (retrying on EINTR /
 * short writes; dropped on error). socket: non-blocking, see above. */
void console_write(struct console *c, const uint8_t *buf, size_t n);

/* The fd the I/O thread polls for POLLIN (treat POLLHUP/POLLERR the same:
 * call console_handle_input()), or -1 when there is no input (file backend,
 * stdin at EOF). For a socket it is the listening fd while no client is
 * connected and the client's fd while one is. The value may change inside
 * console_handle_input(), so re-read it after every call. I/O thread only. */
int console_fd(struct console *c);

/* Does the work for a readable console_fd(): reads input (one read of up to
 * 4 KiB), runs the escapes, calls the callbacks; for a socket also accepts a
 * client (replaying buffered output) or reaps a disconnected one. Never
 * blocks: a spurious call is harmless. I/O thread only. */
void console_handle_input(struct console *c);

/* Restores the terminal (stdio on a tty), closes what the console opened,
 * removes its socket file and frees it. NULL is a no-op. */
void console_close(struct console *c);

/* Puts the terminal back into the mode it had before console_open(). Only
 * calls tcsetattr(): safe from a signal handler or an atexit() hook (the
 * caller keeps the console pointer for that); harmless to call repeatedly
 * or for a non-tty console. NULL is a no-op. */
void console_restore_terminal(const struct console *c);

#endif
