/* Pause and resume of the virt machine (virt.h). The hart threads (vm.c)
 * look at pause_request between runs of instructions and wait here; the
 * caller (the control socket's thread) waits until all of them do, then
 * quiesces the virtio devices and stops guest time, as QEMU stops its
 * virtual clock: a paused guest sees no time pass. */
#include "machine/virt.h"

#include <errno.h>

#include "base/errmsg.h"

void virt_pause_point(struct virt_machine *m)
{
    pthread_mutex_lock(&m->pause_lock);
    m->harts_waiting++;
    pthread_cond_broadcast(&m->pause_cond);
    while (atomic_load(&m->pause_request) && atomic_load(&m->stop) == VIRT_RUNNING)
        pthread_cond_wait(&m->pause_cond, &m->pause_lock);
    m->harts_waiting--;
    pthread_mutex_unlock(&m->pause_lock);
}

int virt_pause(struct virt_machine *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->pause_lock);
    if (m->paused || atomic_load(&m->pause_request)) {
        pthread_mutex_unlock(&m->pause_lock);
        return errmsg(err, errlen, -EALREADY, "wrong state: the VM is paused already");
    }
    atomic_store(&m->pause_request, true);
    pthread_mutex_unlock(&m->pause_lock);
    /* Out of hart_run (and out of a WFI park) at once. */
    for (unsigned i = 0; i < m->nharts; i++)
        hart_post_request(m->harts[i], HART_REQ_EXIT);

    pthread_mutex_lock(&m->pause_lock);
    while (m->harts_waiting < m->nharts && atomic_load(&m->stop) == VIRT_RUNNING)
        pthread_cond_wait(&m->pause_cond, &m->pause_lock);
    if (atomic_load(&m->stop) != VIRT_RUNNING) {
        atomic_store(&m->pause_request, false);
        pthread_cond_broadcast(&m->pause_cond);
        pthread_mutex_unlock(&m->pause_lock);
        return errmsg(err, errlen, -ESHUTDOWN, "wrong state: the VM stopped");
    }
    timebase_stop(&m->timebase);
    m->paused = true;
    pthread_mutex_unlock(&m->pause_lock);
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        if (m->virtio[i])
            virtio_mmio_quiesce(m->virtio[i]);
    return 0;
}

int virt_resume(struct virt_machine *m, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->pause_lock);
    if (!m->paused) {
        pthread_mutex_unlock(&m->pause_lock);
        return errmsg(err, errlen, -EINVAL, "wrong state: the VM is not paused");
    }
    pthread_mutex_unlock(&m->pause_lock);
    for (unsigned i = 0; i < VIRT_VIRTIO_SLOTS; i++)
        if (m->virtio[i])
            virtio_mmio_resume(m->virtio[i]);
    pthread_mutex_lock(&m->pause_lock);
    /* No hart runs: guest time goes on from the moment of the pause (or
     * the one a load set). */
    timebase_start(&m->timebase);
    m->paused = false;
    atomic_store(&m->pause_request, false);
    pthread_cond_broadcast(&m->pause_cond);
    pthread_mutex_unlock(&m->pause_lock);
    /* The I/O thread waits for deadlines in host time: those of guest time
     * (the watchdog's) were "never" while it stood. */
    virt_wake_io(m);
    return 0;
}

bool virt_is_paused(struct virt_machine *m)
{
    pthread_mutex_lock(&m->pause_lock);
    bool p = m->paused;
    pthread_mutex_unlock(&m->pause_lock);
    return p;
}
