/* Hart threads for unit tests that run a struct virt_machine without
 * vm_run(): each runs the loop of vm.c's hart threads (vm_hart_turn: pause
 * points, the auto-converge throttle, HTIF, parking on WFI) until the
 * machine stops. */
#ifndef NIMBUS_TESTS_UNIT_VM_THREADS_H
#define NIMBUS_TESTS_UNIT_VM_THREADS_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "machine/virt.h"
#include "vm/vm.h"

struct vm_thread {
    struct virt_machine *m;
    struct hart *hart;
    pthread_t thread;
};

static void *vm_hart_thread(void *arg)
{
    struct vm_thread *t = arg;
    while (atomic_load(&t->m->stop) == VIRT_RUNNING)
        vm_hart_turn(t->m, t->hart);
    return NULL;
}

/* Starts one thread per hart (t: m->nharts entries); 0 or -errno. */
static inline int vm_threads_start(struct virt_machine *m, struct vm_thread *t)
{
    for (unsigned i = 0; i < m->nharts; i++) {
        t[i] = (struct vm_thread){ .m = m, .hart = m->harts[i] };
        if (pthread_create(&t[i].thread, NULL, vm_hart_thread, &t[i]))
            return -EAGAIN;   /* (the threads started so far run on: the test fails) */
    }
    return 0;
}

/* Stops the machine (VIRT_STOP_QUIT) and joins its hart threads. */
static inline void vm_threads_stop(struct virt_machine *m, struct vm_thread *t)
{
    virt_request_stop(m, VIRT_STOP_QUIT, 0);
    for (unsigned i = 0; i < m->nharts; i++)
        pthread_join(t[i].thread, NULL);
}

#endif
