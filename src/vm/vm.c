#include "vm/vm.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "dev/goldfish_rtc.h"

/* Instructions a hart runs between looks at the outside world (HTIF, stop
 * requests). Interrupts are checked far more often, inside hart_run. */
#define HART_BUDGET 65536

struct hart_thread {
    struct virt_machine *machine;
    struct hart *hart;
    pthread_t thread;
};

static void *hart_thread_main(void *arg)
{
    struct hart_thread *t = arg;
    struct virt_machine *m = t->machine;
    while (atomic_load(&m->stop) == VIRT_RUNNING) {
        enum hart_exit e = hart_run(t->hart, HART_BUDGET);
        virt_htif_poll(m);
        if (e == HART_EXIT_WFI || e == HART_EXIT_STOPPED)
            hart_park(t->hart);
    }
    return NULL;
}

static int run_io_loop(struct virt_machine *m, int sig_fd, const struct vm_io_source *src)
{
    while (atomic_load(&m->stop) == VIRT_RUNNING) {
        struct pollfd fds[3 + VM_IO_SOURCE_MAX_FDS];
        int n = 0, console_idx = -1;
        fds[n++] = (struct pollfd){ .fd = m->wake_fd, .events = POLLIN };
        fds[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
        int cfd = console_fd(m->console);
        if (cfd >= 0) {
            console_idx = n;
            fds[n++] = (struct pollfd){ .fd = cfd, .events = POLLIN };
        }
        int src_idx = n;
        unsigned src_n = src ? src->fill(src->opaque, fds + n, VM_IO_SOURCE_MAX_FDS) : 0;
        n += (int)src_n;
        int timeout = -1;
        int64_t deadline = goldfish_rtc_next_deadline_ns(m->rtc);
        if (deadline != INT64_MAX) {
            int64_t wait_ms = (deadline - timebase_host_ns() + 999999) / 1000000;
            timeout = wait_ms < 0 ? 0 : wait_ms > 60000 ? 60000 : (int)wait_ms;
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
        if (src && r > 0)
            src->handle(src->opaque, fds + src_idx, src_n);
        goldfish_rtc_poll(m->rtc);
        virt_pump_input(m);
    }
    return 0;
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

    struct hart_thread threads[VIRT_MAX_HARTS];
    int status = 1;
    for (;;) {
        unsigned started = 0;
        for (unsigned i = 0; i < m->nharts; i++) {
            threads[i] = (struct hart_thread){ .machine = m, .hart = m->harts[i] };
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

        enum virt_stop why = (enum virt_stop)atomic_load(&m->stop);
        if (why == VIRT_STOP_RESET) {
            char err[256];
            if (virt_reset(m, err, sizeof(err))) {
                fprintf(stderr, "nimbus: reboot failed: %s\n", err);
                break;
            }
            continue;
        }
        if (why == VIRT_STOP_FAIL && m->tohost)
            fprintf(stderr, "nimbus: bare-metal program reported failure %d\n", m->exit_code);
        status = why == VIRT_STOP_POWEROFF ? 0
                 : why == VIRT_STOP_QUIT ? (m->exit_code > 128 ? m->exit_code : 0)
                 : why == VIRT_STOP_FAIL ? (m->exit_code ? m->exit_code : 1)
                 : 1;
        break;
    }
    close(sig_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}
