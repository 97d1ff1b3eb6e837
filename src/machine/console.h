/* Host side of the guest console: where the UART's (or virtio-console's)
 * output goes and where its input comes from.
 *
 * Backends:
 *   stdio        the terminal. If stdin is a tty, console_start() puts it in
 *                full raw mode (restored by console_close() or
 *                console_restore_terminal()); console_open() leaves the
 *                terminal alone, so Ctrl-C works while the images load.
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
 *                a 64 KiB ring, oldest bytes dropped first, and sent when the
 *                client can take it (the I/O thread polls for that) or
 *                replayed when a client connects. So a late client sees the
 *                last 64 KiB of output it missed (e.g. the boot log), and a
 *                stalled client never blocks the guest.
 *
 * Output of stdio and file never blocks the caller either: it goes to a
 * non-blocking fd (stdout is reopened through /proc/self/fd so that the
 * shell's terminal or pipe keeps its own flags; regular files, which never
 * block for long, are written directly). What the fd does not take at once
 * waits in a CONSOLE_RING_SIZE buffer that the I/O thread flushes when the fd
 * is writable (console_out_fd/console_handle_output). A full buffer refuses
 * bytes instead of dropping old ones, and console_out_busy() tells devices
 * that can wait (the UART's LSR.THRE, SBI DBCN's partial writes) to hold
 * their output: a slow reader gets every byte, paced like a real serial
 * line, while a reader that never reads costs the guest only its output.
 * Once the fd fails (EPIPE, EIO), output is discarded.
 *
 * Threads: console_write() and console_out_busy() may be called from any
 * thread (hart threads via the UART); they take the console lock and call
 * only the `wake` callback, after dropping it. console_fd(),
 * console_handle_input(), console_out_fd() and console_handle_output() run
 * on the VM's I/O thread only, which is also the only place where the fd set
 * changes; the input/quit/output_ready callbacks are called from them without
 * the console lock held. console_open(), console_start(), console_flush() and
 * console_close() run while no other thread uses the console (the I/O thread
 * is the caller, or stopped). console_restore_terminal() is async-signal-safe.
 *
 * Errors: -errno and a one-line message in `err` (may be NULL if errlen 0). */
#ifndef NIMBUS_MACHINE_CONSOLE_H
#define NIMBUS_MACHINE_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_SOCKET };

/* Bytes of output kept while the fd (or socket client) does not take them. */
#define CONSOLE_RING_SIZE (64u * 1024u)
/* console_out_busy() says busy when less than this is free in the buffer:
 * room for the bytes a driver may still write after it last saw the
 * transmitter ready (16 for a 16550 FIFO, a DBCN chunk). */
#define CONSOLE_OUT_SLACK (4u * 1024u)

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
    /* console_out_busy() said busy (or a write was cut short) and the buffer
     * has drained to half since: devices may send again. I/O thread. */
    void (*output_ready)(void *opaque);
    /* console_out_fd() may have changed (output got buffered): the I/O
     * thread should look again. Any thread, console lock not held. */
    void (*wake)(void *opaque);
    void *opaque;
};

/* Opens a backend (`path` is ignored for CONSOLE_STDIO, which uses fds 0 and
 * 1). `cb` is copied. On success *out is the console, else -errno. */
int console_open(enum console_kind kind, const char *path, const struct console_ops_cb *cb,
                 struct console **out, char *err, size_t errlen);

/* The stdio backend on an arbitrary fd pair (tests; a pty). The fds stay
 * owned by the caller: console_close() restores in_fd's terminal mode if it
 * changed it (and out_fd's file flags, see console.c), but closes neither. */
int console_open_fds(int in_fd, int out_fd, const struct console_ops_cb *cb,
                     struct console **out, char *err, size_t errlen);

/* The guest is about to run: a stdio console on a tty enters raw mode (the
 * mode before is saved for console_restore_terminal()). A no-op for the
 * other backends and for a console already started. */
int console_start(struct console *c, char *err, size_t errlen);

/* Guest output. Any thread; never blocks. Returns how many bytes were
 * accepted (written or buffered): fewer than n only for stdio/file with a
 * full buffer (see above). A socket accepts everything (the ring drops its
 * oldest bytes); a failed fd accepts and discards everything. */
size_t console_write(struct console *c, const uint8_t *buf, size_t n);

/* True while the stdio/file output buffer is nearly full (less than
 * CONSOLE_OUT_SLACK free): a device that can hold its output should, until
 * the output_ready callback. Any thread. */
bool console_out_busy(struct console *c);

/* The fd the I/O thread polls for POLLOUT while output is buffered, else -1.
 * Re-read it after every poll and after the `wake` callback. I/O thread. */
int console_out_fd(struct console *c);

/* Writes what the fd takes of the buffered output; calls output_ready when
 * a busy buffer drained to half. Returns the bytes written. Never blocks.
 * I/O thread. */
size_t console_handle_output(struct console *c);

/* Tries for at most timeout_ms to write out what is buffered (at the end of
 * a run, so that a slow reader still gets the guest's last words). Returns
 * at once when nothing is buffered or the output failed. Control thread,
 * with the harts and the I/O loop stopped. */
void console_flush(struct console *c, int timeout_ms);

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

/* Puts the terminal back into the mode it had before console_start() (and
 * stdout's file flags back, if the console had to change them). Only calls
 * tcsetattr() and fcntl(): safe from a signal handler or an atexit() hook
 * (the caller keeps the console pointer for that); harmless to call
 * repeatedly or for a non-tty console. NULL is a no-op. */
void console_restore_terminal(const struct console *c);

#endif
