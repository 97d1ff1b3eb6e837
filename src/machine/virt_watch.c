/* What the virt board does when the guest's watchdog expires or its kernel
 * panics (virt.h, "virt_watch.c"). The watchdog is polled on the I/O thread,
 * so its action runs there at once; a panic is seen on whichever thread
 * writes the console (a hart's, for the UART), which must neither pause the
 * harts nor block on stderr: it leaves the event and its action for the I/O
 * thread, which tells both on stderr and acts. */
#include "machine/virt.h"

#include <stdio.h>
#include <unistd.h>

#include "dev/sunxi_wdt.h"

void virt_watch_tell(struct virt_machine *m)
{
    struct guest_event e;
    while (guest_events_next(&m->events, &m->watch_told, &e)) {
        /* stderr may be the terminal the console made raw (no "\n" ->
         * "\r\n" translation there). */
        fprintf(stderr, "nimbus: %s%s; action: %s%s",
                e.kind == GUEST_EVENT_WATCHDOG ? "the guest's watchdog expired" : "guest panic: ",
                e.message, guest_action_name(e.action), isatty(STDERR_FILENO) ? "\r\n" : "\n");
    }
}

static void take_action(struct virt_machine *m, enum guest_action a)
{
    char err[256];
    switch (a) {
    case GUEST_ACTION_RESET:
        virt_request_stop(m, VIRT_STOP_RESET, 0);
        break;
    case GUEST_ACTION_POWEROFF:
        virt_request_stop(m, VIRT_STOP_POWEROFF, 0);
        break;
    case GUEST_ACTION_PAUSE:
        /* Paused already (by the API, a migration's stop-copy), or
         * stopping: so be it. */
        if (!virt_is_paused(m) && virt_pause(m, err, sizeof(err)) &&
            atomic_load(&m->stop) == VIRT_RUNNING && !virt_is_paused(m))
            fprintf(stderr, "nimbus: cannot pause: %s\n", err);
        break;
    case GUEST_ACTION_NONE:
        break;
    }
}

int64_t virt_watch_deadline_ns(struct virt_machine *m)
{
    if (!m->wdt || virt_is_paused(m))
        return INT64_MAX;
    return sunxi_wdt_next_deadline_ns(m->wdt);
}

void virt_watch_poll(struct virt_machine *m)
{
    bool expired = m->wdt && !virt_is_paused(m) && sunxi_wdt_poll(m->wdt);
    if (expired)
        guest_events_push(&m->events, GUEST_EVENT_WATCHDOG, m->config.watchdog_action, NULL);
    virt_watch_tell(m);
    int a = atomic_exchange(&m->watch_action, -1);   /* a panic's */
    if (a >= 0)
        take_action(m, (enum guest_action)a);
    if (expired)
        take_action(m, m->config.watchdog_action);
}

void virt_watch_output(struct virt_machine *m, enum virt_output src, const uint8_t *buf,
                       size_t n)
{
    char msg[GUEST_EVENT_MESSAGE_MAX];
    if (!n || (unsigned)src >= VIRT_OUT_COUNT)
        return;
    pthread_mutex_lock(&m->watch_lock);
    bool panic = panic_detect_feed(&m->panic_detect[src], buf, n, msg, sizeof(msg));
    pthread_mutex_unlock(&m->watch_lock);
    if (!panic || atomic_exchange(&m->panic_seen, true))
        return;   /* once per boot */
    enum guest_action a = m->config.panic_action;
    guest_events_push(&m->events, GUEST_EVENT_PANIC, a, msg);
    if (a != GUEST_ACTION_NONE)
        atomic_store(&m->watch_action, (int)a);
    virt_wake_io(m);   /* stderr, the action, the API's event stream */
}

void virt_watch_reset(struct virt_machine *m)
{
    pthread_mutex_lock(&m->watch_lock);
    for (unsigned i = 0; i < VIRT_OUT_COUNT; i++)
        panic_detect_reset(&m->panic_detect[i]);
    pthread_mutex_unlock(&m->watch_lock);
    atomic_store(&m->panic_seen, false);
    atomic_store(&m->watch_action, -1);
}
