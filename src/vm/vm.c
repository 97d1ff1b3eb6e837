#include "vm/vm.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "dev/goldfish_rtc.h"
#include "vm/announce.h"
#include "vm/migrate.h"
#include "vm/term_guard.h"

/* How long the end of a run waits for a slow reader to take the buffered
 * console output (at most CONSOLE_RING_SIZE bytes): as long as the reader
 * makes progress, up to a cap, after the guest stopped by itself; briefly
 * after a user quit (who wants out now, whether or not the reader keeps up).
 * A quit signal or Ctrl-A x during the wait ends it. */
#define FLUSH_MS_STALL      1000
#define FLUSH_MS_GUEST_STOP 10000
#define FLUSH_MS_QUIT       500

/* Instructions a hart runs between looks at the outside world (HTIF, stop
 * requests). Interrupts are checked far more often, inside hart_run. */
#define HART_BUDGET 65536

struct hart_thread {
    struct virt_machine *machine;
    struct hart *hart;
    unsigned index;
    pthread_t thread;
};

/* Auto-converge (virt.h throttle_pct): after a slice that ran `ran_ns`,
 * sleep so that the hart runs (100 - pct)% of the time, at most
 * THROTTLE_MAX_SLEEP_NS at once so a pause or stop is not held up. */
#define THROTTLE_MAX_SLEEP_NS 20000000ll

static void throttle(struct virt_machine *m, unsigned pct, int64_t ran_ns)
{
    int64_t ns = ran_ns * pct / (100 - pct);
    if (ns > THROTTLE_MAX_SLEEP_NS)
        ns = THROTTLE_MAX_SLEEP_NS;
    if (ns <= 0 || atomic_load(&m->pause_request) || atomic_load(&m->stop) != VIRT_RUNNING)
        return;
    struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
    nanosleep(&ts, NULL);
}

void vm_hart_turn(struct virt_machine *m, struct hart *h)
{
    if (atomic_load(&m->pause_request)) {
        virt_pause_point(m);
        return;
    }
    unsigned pct = atomic_load_explicit(&m->throttle_pct, memory_order_relaxed);
    int64_t t0 = pct ? timebase_host_ns() : 0;
    enum hart_exit e = hart_run(h, HART_BUDGET);
    if (pct && pct < 100 && e == HART_EXIT_BUDGET)
        throttle(m, pct, timebase_host_ns() - t0);
    virt_htif_poll(m);
    if (e == HART_EXIT_WFI || e == HART_EXIT_STOPPED)
        hart_park(h);
}

static void *hart_thread_main(void *arg)
{
    struct hart_thread *t = arg;
    struct virt_machine *m = t->machine;
    /* For top -H, perf and the benchmarks' profiles. Named by the thread
     * itself (prctl): naming another thread writes /proc/self/task/N/comm,
     * which a sandboxed VM (--run-as: not dumpable) may not open. */
    char name[16];
    snprintf(name, sizeof(name), "hart%u", t->index);
    pthread_setname_np(pthread_self(), name);
    while (atomic_load(&m->stop) == VIRT_RUNNING)
        vm_hart_turn(m, t->hart);
    return NULL;
}

static int run_io_loop(struct virt_machine *m, int sig_fd, const struct vm_io_source *src)
{
    while (atomic_load(&m->stop) == VIRT_RUNNING) {
        struct pollfd fds[4 + VM_IO_SOURCE_MAX_FDS];
        int n = 0, console_idx = -1, out_idx = -1;
        fds[n++] = (struct pollfd){ .fd = m->wake_fd, .events = POLLIN };
        fds[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
        int cfd = console_fd(m->console);
        if (cfd >= 0) {
            console_idx = n;
            fds[n++] = (struct pollfd){ .fd = cfd, .events = POLLIN };
        }
        int ofd = console_out_fd(m->console);  /* buffered output: wait until writable */
        if (ofd >= 0) {
            out_idx = n;
            fds[n++] = (struct pollfd){ .fd = ofd, .events = POLLOUT };
        }
        int src_idx = n;
        unsigned src_n = src ? src->fill(src->opaque, fds + n, VM_IO_SOURCE_MAX_FDS) : 0;
        n += (int)src_n;
        int timeout = -1;
        int64_t deadline = goldfish_rtc_next_deadline_ns(m->rtc);
        int64_t watch = virt_watch_deadline_ns(m);
        if (watch < deadline)
            deadline = watch;
        int64_t announce = vm_announce_poll(m, timebase_host_ns());
        if (announce < deadline)
            deadline = announce;
        if (deadline != INT64_MAX) {
            /* Both are >= 0, so the difference cannot overflow. */
            int64_t wait_ns = deadline - timebase_host_ns();
            timeout = wait_ns <= 0 ? 0 : wait_ns >= 60000000000ll ? 60000
                    : (int)((wait_ns + 999999) / 1000000);
        }
        int r = poll(fds, (nfds_t)n, timeout);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "nimbus: poll: %s\n", strerror(errno));
            return -errno;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            ssize_t k = read(m->wake_fd, &v, sizeof(v));
            (void)k;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
                virt_request_stop(m, VIRT_STOP_QUIT, 128 + (int)si.ssi_signo);
        }
        if (console_idx >= 0 && fds[console_idx].revents)
            console_handle_input(m->console);
        if (out_idx >= 0 && fds[out_idx].revents)
            console_handle_output(m->console);
        if (src && r > 0)
            src->handle(src->opaque, fds + src_idx, src_n);
        goldfish_rtc_poll(m->rtc);
        virt_watch_poll(m);
        virt_pump_input(m);
    }
    return 0;
}

/* The process exit status for how the machine stopped. A guest failure is
 * never 0: codes 1..255 pass through as they are, any other (statuses are
 * 8 bits, so 256 would read as success) becomes 255, and the full code is
 * printed. */
static int exit_status(const struct virt_machine *m, enum virt_stop why)
{
    switch (why) {
    case VIRT_STOP_POWEROFF:
        return 0;
    case VIRT_STOP_QUIT: {
        int quit = atomic_load(&m->quit_request);
        return quit > 128 ? quit : 0; /* 128 + signal; Ctrl-A x is 0 */
    }
    case VIRT_STOP_FAIL: {
        int status = m->exit_code >= 1 && m->exit_code <= 255 ? (int)m->exit_code : 255;
        if (m->tohost || status != m->exit_code)
            fprintf(stderr, "nimbus: %s reported failure %lld (exit status %d)\n",
                    m->tohost ? "bare-metal program" : "guest", (long long)m->exit_code, status);
        return status;
    }
    default:
        return 1;
    }
}

/* After the run: gives the console's reader up to timeout_ms (and
 * FLUSH_MS_STALL without progress) to take the buffered output, and stops
 * early on a quit signal or Ctrl-A x (consumed: the user wants out now; the
 * exit status stays the run's). */
static void flush_console(struct virt_machine *m, int sig_fd, int timeout_ms)
{
    int quit_before = atomic_load(&m->quit_request);
    int64_t now = timebase_host_ns(), end = now + (int64_t)timeout_ms * 1000000;
    int64_t stall = now + (int64_t)FLUSH_MS_STALL * 1000000;
    for (;;) {
        size_t wrote = console_handle_output(m->console);
        int ofd = console_out_fd(m->console);
        now = timebase_host_ns();
        if (wrote)
            stall = now + (int64_t)FLUSH_MS_STALL * 1000000;
        int64_t left = ((end < stall ? end : stall) - now) / 1000000;
        if (ofd < 0 || left <= 0 || atomic_load(&m->quit_request) != quit_before)
            return;
        struct pollfd fds[3] = {
            { .fd = ofd, .events = POLLOUT },
            { .fd = sig_fd, .events = POLLIN },
        };
        int n = 2, cfd = console_fd(m->console);
        if (cfd >= 0)
            fds[n++] = (struct pollfd){ .fd = cfd, .events = POLLIN };
        if (poll(fds, (nfds_t)n, (int)left) < 0 && errno != EINTR)
            return;
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            ssize_t k = read(sig_fd, &si, sizeof(si));
            (void)k;
            return;
        }
        if (n > 2 && fds[2].revents)
            console_handle_input(m->console);  /* Ctrl-A x sets quit_request */
    }
}

int vm_run(struct virt_machine *m)
{
    return vm_run_io(m, NULL);
}

int vm_run_io(struct virt_machine *m, const struct vm_io_source *src)
{
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    /* Blocked before the hart threads exist, so they inherit the mask and
     * only the signalfd sees these signals. */
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    signal(SIGPIPE, SIG_IGN);
    int sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) {
        fprintf(stderr, "nimbus: signalfd: %s\n", strerror(errno));
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }

    /* The terminal goes raw now that the guest starts, guarded against fatal
     * signals (the quit signals above end the run cleanly instead). */
    char err[256] = "";
    int status = 1;
    if (term_guard_add(m->console) || console_start(m->console, err, sizeof(err))) {
        fprintf(stderr, "nimbus: %s\n", err[0] ? err : "cannot guard the terminal");
        term_guard_remove(m->console);
        close(sig_fd);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }

    struct hart_thread threads[VIRT_MAX_HARTS];
    for (;;) {
        unsigned started = 0;
        for (unsigned i = 0; i < m->nharts; i++) {
            threads[i] = (struct hart_thread){ .machine = m, .hart = m->harts[i], .index = i };
            int err = pthread_create(&threads[i].thread, NULL, hart_thread_main, &threads[i]);
            if (err) {
                fprintf(stderr, "nimbus: cannot start hart thread: %s\n", strerror(err));
                virt_request_stop(m, VIRT_STOP_ERROR, 1);
                break;
            }
            started++;
        }
        if (started == m->nharts && run_io_loop(m, sig_fd, src))
            virt_request_stop(m, VIRT_STOP_ERROR, 1);
        for (unsigned i = 0; i < started; i++)
            pthread_join(threads[i].thread, NULL);
        virt_watch_tell(m);   /* a panic right before the guest stopped */

        enum virt_stop why = (enum virt_stop)atomic_load(&m->stop);
        /* A migration does not outlive the run it was part of, nor does it
         * touch the machine while it is reset. */
        vm_migrate_join(m);
        if (why == VIRT_STOP_RESET && atomic_load(&m->quit_request) < 0) {
            if (virt_reset(m, err, sizeof(err))) {
                fprintf(stderr, "nimbus: reboot failed: %s\n", err);
                break;
            }
            /* A quit that came in before the reset stored VIRT_RUNNING is
             * only in quit_request; one after it stops the next run. */
            if (atomic_load(&m->quit_request) < 0)
                continue;
        }
        if (why == VIRT_STOP_RESET)
            why = VIRT_STOP_QUIT;  /* the user's quit wins over the guest's reboot */
        status = exit_status(m, why);
        break;
    }
    /* Output first (a reader that is merely slow gets the guest's last words),
     * then the terminal, then the signals that could kill us outright. */
    flush_console(m, sig_fd, atomic_load(&m->quit_request) >= 0 ? FLUSH_MS_QUIT
                                                                : FLUSH_MS_GUEST_STOP);
    console_restore_terminal(m->console);
    term_guard_remove(m->console);
    close(sig_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}
