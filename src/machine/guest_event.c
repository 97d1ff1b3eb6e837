/* Guest health events and actions. See guest_event.h. */
#include "machine/guest_event.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const action_names[] = {
    [GUEST_ACTION_NONE] = "none",
    [GUEST_ACTION_RESET] = "reset",
    [GUEST_ACTION_POWEROFF] = "poweroff",
    [GUEST_ACTION_PAUSE] = "pause",
};

const char *guest_action_name(enum guest_action a)
{
    return (unsigned)a < sizeof(action_names) / sizeof(action_names[0]) ? action_names[a] : "?";
}

int guest_action_parse(const char *s, unsigned allowed, enum guest_action *out)
{
    for (unsigned a = 0; s && a < sizeof(action_names) / sizeof(action_names[0]); a++) {
        if ((allowed & (1u << a)) && !strcmp(s, action_names[a])) {
            *out = (enum guest_action)a;
            return 0;
        }
    }
    return -EINVAL;
}

const char *guest_event_kind_name(enum guest_event_kind k)
{
    return k == GUEST_EVENT_WATCHDOG ? "watchdog" : "guest_panic";
}

void guest_events_init(struct guest_events *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
}

void guest_events_destroy(struct guest_events *g)
{
    pthread_mutex_destroy(&g->lock);
}

void guest_events_push(struct guest_events *g, enum guest_event_kind kind,
                       enum guest_action action, const char *message)
{
    pthread_mutex_lock(&g->lock);
    struct guest_event *e = &g->ring[g->seq % GUEST_EVENT_RING];
    e->kind = kind;
    e->action = action;
    snprintf(e->message, sizeof(e->message), "%s", message ? message : "");
    g->seq++;
    pthread_mutex_unlock(&g->lock);
}

bool guest_events_next(struct guest_events *g, uint64_t *seq, struct guest_event *out)
{
    pthread_mutex_lock(&g->lock);
    bool any = *seq < g->seq;
    if (any) {
        if (g->seq - *seq > GUEST_EVENT_RING)
            *seq = g->seq - GUEST_EVENT_RING;   /* the older ones are gone */
        *out = g->ring[*seq % GUEST_EVENT_RING];
        ++*seq;
    }
    pthread_mutex_unlock(&g->lock);
    return any;
}
