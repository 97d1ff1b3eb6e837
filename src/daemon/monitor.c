/* nimbusd's watch over the VM processes: a thread polls each VM's pidfd
 * (its shim's: the shim ends right after writing how the VM ended) and
 * records the end of a VM that nobody asked to stop as shutdown (the guest
 * powered off) or crashed (with the reason). At start, the daemon finds
 * the VMs its store says run. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"

void nd_monitor_wake(struct nimbusd *d)
{
    uint64_t one = 1;
    if (write(d->wake_fd, &one, sizeof(one)) < 0) {
        /* The counter is full: the monitor is awake anyway. */
    }
}

void nd_read_exit(struct nimbusd *d, struct dvm *dv)
{
    char path[ND_PATH_MAX];
    nd_vm_run_path(d, dv->name, "exit", path, sizeof(path));
    if (supervisor_exit_reason(path, dv->exit_reason, sizeof(dv->exit_reason), &dv->exit_clean,
                               &dv->exit_signal)) {
        dv->exit_clean = false;
        dv->exit_signal = 0;
        snprintf(dv->exit_reason, sizeof(dv->exit_reason),
                 "the VM process vanished (its supervisor left no exit record)");
    }
}

/* dv's process ended (lock held). A VM under an operation is the
 * operation's to record; any other ended on its own. */
static void ended(struct nimbusd *d, struct dvm *dv)
{
    /* Our child while we live: reap it (an adopted one is init's). */
    waitpid(dv->proc.shim_pid, NULL, WNOHANG);
    if (dv->pidfd >= 0)
        close(dv->pidfd);
    dv->pidfd = -1;
    nd_read_exit(d, dv);
    dv->exited = true;
    pthread_cond_broadcast(&d->changed);
    if (dv->busy)
        return;
    struct store_vm vm;
    char err[256];
    if (store_vm_get(d->store, dv->name, &vm, err, sizeof(err)))
        return;
    nd_cgroup_release(d, dv->name);
    vm.pid = vm.shim_pid = 0;
    vm.pid_start = 0;
    free(vm.exit_reason);
    vm.exit_reason = strdup(dv->exit_reason);
    struct nd_err e;
    nd_transition(d, &vm, dv->exit_clean ? "shutdown" : "crashed", dv->exit_reason, &e);
    store_vm_free(&vm);
    dv->proc = (struct vm_proc){ 0 };
    dv->exited = false;
}

static void *monitor_main(void *opaque)
{
    struct nimbusd *d = opaque;
    for (;;) {
        pthread_mutex_lock(&d->lock);
        if (d->stopping) {
            pthread_mutex_unlock(&d->lock);
            return NULL;
        }
        size_t n = 0;
        struct pollfd *fds = calloc(d->nvms + 1, sizeof(*fds));
        char (*names)[64] = calloc(d->nvms + 1, sizeof(*names));
        if (fds && names) {
            fds[n++] = (struct pollfd){ .fd = d->wake_fd, .events = POLLIN };
            for (size_t i = 0; i < d->nvms; i++) {
                if (d->vms[i]->pidfd < 0)
                    continue;
                snprintf(names[n], sizeof(names[n]), "%s", d->vms[i]->name);
                fds[n++] = (struct pollfd){ .fd = d->vms[i]->pidfd, .events = POLLIN };
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (!fds || !names) {
            free(fds);
            free(names);
            sleep(1);
            continue;
        }
        int pr = poll(fds, n, -1);
        if (pr > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            if (read(d->wake_fd, &v, sizeof(v)) < 0) {
                /* EAGAIN: another reader took it. */
            }
        }
        pthread_mutex_lock(&d->lock);
        for (size_t i = 1; pr > 0 && i < n; i++) {
            if (!fds[i].revents)
                continue;
            struct dvm *dv = nd_find(d, names[i]);
            /* The same fd still (the VM may have been undefined meanwhile). */
            if (dv && dv->pidfd == fds[i].fd)
                ended(d, dv);
        }
        pthread_mutex_unlock(&d->lock);
        free(fds);
        free(names);
    }
}

int nd_monitor_start(struct nimbusd *d, char *err, size_t errlen)
{
    int rc = pthread_create(&d->monitor, NULL, monitor_main, d);
    if (rc) {
        snprintf(err, errlen, "cannot start the monitor thread: %s", strerror(rc));
        return -rc;
    }
    pthread_setname_np(d->monitor, "monitor");
    d->monitor_started = true;
    return 0;
}

void nd_monitor_stop(struct nimbusd *d)
{
    if (!d->monitor_started)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_broadcast(&d->changed);
    pthread_mutex_unlock(&d->lock);
    nd_monitor_wake(d);
    pthread_join(d->monitor, NULL);
    d->monitor_started = false;
}

bool nd_attach(struct dvm *dv, const struct store_vm *vm)
{
    dv->proc = (struct vm_proc){ .shim_pid = (pid_t)vm->shim_pid, .pid = (pid_t)vm->pid,
                                 .pid_start = vm->pid_start };
    if (!supervisor_alive(dv->proc.pid, dv->proc.pid_start))
        return false;
    /* The shim tells when it has the record; without a shim (it was
     * killed), the VM process itself. */
    bool shim = dv->proc.shim_pid > 0 && kill(dv->proc.shim_pid, 0) == 0;
    dv->pidfd = supervisor_pidfd(shim ? dv->proc.shim_pid : dv->proc.pid);
    return true;
}

void nd_reattach(struct nimbusd *d)
{
    char err[256];
    struct store_vm *vms;
    size_t n;
    pthread_mutex_lock(&d->lock);
    if (store_vm_list(d->store, &vms, &n, err, sizeof(err))) {
        pthread_mutex_unlock(&d->lock);
        fprintf(stderr, "nimbusd: %s\n", err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct store_vm *vm = &vms[i];
        if (!strcmp(vm->state, "migrating")) {
            nd_migration_reattach(d, vm);
            continue;
        }
        if (strcmp(vm->state, "running") && strcmp(vm->state, "paused"))
            continue;
        struct dvm *dv = nd_get(d, vm->name);
        if (!dv)
            continue;
        if (nd_attach(dv, vm)) {
            fprintf(stderr, "nimbusd: %s: found its process %d again\n", vm->name,
                    (int)vm->pid);
            continue;
        }
        ended(d, dv);
    }
    store_vm_list_free(vms, n);
    pthread_mutex_unlock(&d->lock);
    nd_monitor_wake(d);
}

/* The eventfd is made here so that start-up code needs no other file. */
int nd_monitor_init(struct nimbusd *d)
{
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return d->wake_fd < 0 ? -errno : 0;
}
