/* Restores raw terminals on fatal signals. See term_guard.h. */
#include "vm/term_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

/* Catchable signals whose default action ends the process, except the quit
 * requests (SIGINT, SIGTERM, SIGHUP: signalfd in vm_run) and SIGPIPE (ignored
 * by vm_run: a closed stdout is not fatal). */
static const int fatal_signals[] = {
    SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGUSR1, SIGSEGV, SIGUSR2, SIGALRM,
#ifdef SIGSTKFLT
    SIGSTKFLT,
#endif
    SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,
#ifdef SIGPWR
    SIGPWR,
#endif
    SIGSYS,
};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

/* Process-wide by nature (see term_guard.h). */
static _Atomic(const struct console *) guarded[TERM_GUARD_MAX];
static struct sigaction previous[NFATAL];
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_fatal_signal(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    int saved_errno = errno;
    for (unsigned i = 0; i < TERM_GUARD_MAX; i++)
        console_restore_terminal(atomic_load(&guarded[i]));
    for (unsigned i = 0; i < NFATAL; i++) {
        if (fatal_signals[i] != sig)
            continue;
        sigaction(sig, &previous[i], NULL);
        break;
    }
    errno = saved_errno;
    /* A fault (si_code > 0 from the kernel for SIGSEGV/SIGBUS/SIGILL/SIGFPE)
     * happens again when we return, now under the previous disposition, so
     * a sanitizer or a core dump still sees the faulting instruction.
     * Anything else (kill, raise, abort: si_code <= 0; a SIGTRAP, which does
     * not repeat) is raised again; SA_NODEFER leaves it unblocked, so it acts
     * at once. */
    bool fault = info && info->si_code > 0 &&
                 (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE);
    if (!fault)
        raise(sig);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < NFATAL; i++) {
        if (sigaction(fatal_signals[i], NULL, &previous[i]) < 0) {
            install_error = -errno;
            return;
        }
        /* Ignored (e.g. by nohup) stays ignored. */
        if (!(previous[i].sa_flags & SA_SIGINFO) && previous[i].sa_handler == SIG_IGN)
            continue;
        if (sigaction(fatal_signals[i], &sa, NULL) < 0) {
            install_error = -errno;
            return;
        }
    }
}

int term_guard_add(const struct console *c)
{
    pthread_once(&install_once, install);
    if (install_error)
        return install_error;
    int rc = -ENOSPC;
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < TERM_GUARD_MAX; i++) {
        if (!atomic_load(&guarded[i])) {
            atomic_store(&guarded[i], c);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void term_guard_remove(const struct console *c)
{
    pthread_mutex_lock(&table_lock);
    for (unsigned i = 0; i < TERM_GUARD_MAX; i++)
        if (atomic_load(&guarded[i]) == c)
            atomic_store(&guarded[i], NULL);
    pthread_mutex_unlock(&table_lock);
}
