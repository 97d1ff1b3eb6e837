/* A command run through the shell on a guest's console: `nimbus exec`'s
 * way into a guest without the agent (no vsock device, or no
 * nimbus.agent=PORT), docs/snapshots.md "nimbus exec".
 *
 * The command line is typed into the console as a shell command line that
 * prints a start marker, runs argv (each word single-quoted, stdin
 * /dev/null), and prints an end marker with the exit status:
 *
 *   printf '\n%s%s\n' S TOKEN; 'ARG0' 'ARG1' ... </dev/null; printf '\n%s%s %d\n' E TOKEN $?
 *
 * TOKEN is random per run. What the console shows between the markers is
 * the command's output; what comes before (the echo of the typed line, a
 * prompt, kernel messages) is not. The typed line never holds a marker
 * itself (S and TOKEN are two words there), so its echo cannot be taken for
 * one. A console is one stream seen through a terminal: stdout and stderr
 * come out together, with the terminal's CR LF line ends turned back into
 * LF, and the command gets no stdin.
 *
 * The guest must be at a shell prompt on that console (as the default
 * initramfs guest is without a command after " -- "): when no start marker
 * comes within start_timeout_ms, the call fails with -ETIMEDOUT.
 *
 * Threads: any; the call blocks on the console connection and out_fd.
 * Errors: -errno and a one-line message in err. */
#ifndef NIMBUS_VM_CONSOLE_EXEC_H
#define NIMBUS_VM_CONSOLE_EXEC_H

#include <stddef.h>
#include <stdint.h>

/* The longest command line typed (busybox's line editor takes 1 KiB). */
#define CONSOLE_EXEC_MAX_LINE 1000

/* The typed line for argv (argc >= 1) with `token` into line (linelen
 * bytes). Its length, or -E2BIG when it would be longer than
 * CONSOLE_EXEC_MAX_LINE, -EINVAL for no argument or a control character in
 * one (a terminal would act on it). */
int console_exec_line(int argc, char *const argv[], const char *token, char *line,
                      size_t linelen);

/* Runs argv on the console connected at `fd` (the console socket of
 * `nimbus run --console socket:PATH`, or a clone's): types the line, sends
 * the command's output to out_fd as it comes, and puts its exit status in
 * *status; *started_ns (if not NULL) gets the CLOCK_MONOTONIC time at which
 * the start marker came. Returns 0, -ETIMEDOUT when no shell answered
 * within start_timeout_ms, -ECONNRESET when the console closed first. */
int console_exec(int fd, int argc, char *const argv[], int out_fd, int start_timeout_ms,
                 int *status, int64_t *started_ns, char *err, size_t errlen);

#endif
