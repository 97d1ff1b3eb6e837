/* Restores raw terminals when the process dies of a signal.
 *
 * While a VM runs, its stdio console may hold the user's terminal in raw
 * mode. SIGINT, SIGTERM and SIGHUP are quit requests (vm_run reads them from
 * a signalfd and shuts down cleanly), but any other signal whose default
 * action ends the process (SIGQUIT, SIGUSR1, SIGALRM, SIGABRT, SIGSEGV, ...)
 * would leave the terminal raw. term_guard_add() installs, once per process,
 * handlers for those signals that call console_restore_terminal() (async-
 * signal-safe) for every guarded console and then let the signal take its
 * course: the previous disposition is put back and the signal raised again
 * (a fault just returns and re-faults), so the process still dies of that
 * signal, with a core dump where the default asks for one, and a sanitizer's
 * handler installed before us still runs. Signals that were ignored when the
 * handlers were installed stay ignored.
 *
 * Signal dispositions belong to the process, so this is the one place with
 * process-wide state: a fixed table of guarded consoles shared by every VM of
 * the process.
 *
 * Threads: any; add/remove are not async-signal-safe. */
#ifndef NIMBUS_VM_TERM_GUARD_H
#define NIMBUS_VM_TERM_GUARD_H

#include "machine/console.h"

/* Most consoles guarded at once. */
#define TERM_GUARD_MAX 64

/* Guards `c` until term_guard_remove(c). -ENOSPC when the table is full,
 * -errno if the handlers cannot be installed. */
int term_guard_add(const struct console *c);

/* Stops guarding `c` (before it is freed). Unknown consoles are ignored. */
void term_guard_remove(const struct console *c);

#endif
