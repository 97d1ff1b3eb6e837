/* What the monitor learns about the guest's health - its watchdog expired,
 * its kernel panicked - and what it does about it (nimbus run
 * --watchdog=ACTION, --on-panic ACTION). The events wait in a small ring
 * until the API's event stream takes them (api/api_http.c: "watchdog" and
 * "guest_panic" events); a reader that falls more than GUEST_EVENT_RING
 * events behind loses the oldest.
 *
 * Threads: guest_events_push from any thread (a hart's thread sees a panic
 * on the console, the I/O thread the watchdog), guest_events_next on the
 * I/O thread; one mutex. */
#ifndef NIMBUS_MACHINE_GUEST_EVENT_H
#define NIMBUS_MACHINE_GUEST_EVENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* What the VMM does: as QEMU's -watchdog-action and -action panic=. */
enum guest_action {
    GUEST_ACTION_NONE,       /* only the event and the line on stderr */
    GUEST_ACTION_RESET,      /* reboot the guest, in the same process */
    GUEST_ACTION_POWEROFF,   /* stop the VM as a guest power-off does (exit status 0) */
    GUEST_ACTION_PAUSE,      /* pause the VM (PUT /vm/resume goes on) */
};

/* "none", "reset", "poweroff", "pause". */
const char *guest_action_name(enum guest_action a);
/* The action named `s` among those in `allowed` (bits 1 << action).
 * Returns 0 or -EINVAL. */
int guest_action_parse(const char *s, unsigned allowed, enum guest_action *out);

#define GUEST_ACTIONS_WATCHDOG ((1u << GUEST_ACTION_NONE) | (1u << GUEST_ACTION_RESET) | \
                                (1u << GUEST_ACTION_POWEROFF) | (1u << GUEST_ACTION_PAUSE))
/* No reset: the guest's own panic= setting reboots it when it wants. */
#define GUEST_ACTIONS_PANIC    ((1u << GUEST_ACTION_NONE) | (1u << GUEST_ACTION_POWEROFF) | \
                                (1u << GUEST_ACTION_PAUSE))

enum guest_event_kind {
    GUEST_EVENT_WATCHDOG,
    GUEST_EVENT_PANIC,
};

/* "watchdog", "guest_panic": the API's event kinds. */
const char *guest_event_kind_name(enum guest_event_kind k);

#define GUEST_EVENT_MESSAGE_MAX 256   /* bytes, with the NUL */
#define GUEST_EVENT_RING 16u

struct guest_event {
    enum guest_event_kind kind;
    enum guest_action action;
    char message[GUEST_EVENT_MESSAGE_MAX];   /* printable ASCII; "" for the watchdog */
};

struct guest_events {
    pthread_mutex_t lock;
    uint64_t seq;                            /* events pushed so far */
    struct guest_event ring[GUEST_EVENT_RING];
};

void guest_events_init(struct guest_events *g);
void guest_events_destroy(struct guest_events *g);
/* Adds an event; `message` (NULL: none) is cut to fit. */
void guest_events_push(struct guest_events *g, enum guest_event_kind kind,
                       enum guest_action action, const char *message);
/* The first event a reader that has seen *seq events has not seen, into
 * *out (skipping those the ring lost), and *seq past it. False when there
 * is none. */
bool guest_events_next(struct guest_events *g, uint64_t *seq, struct guest_event *out);

#endif
