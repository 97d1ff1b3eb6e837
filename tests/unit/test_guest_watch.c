/* Unit tests for what the monitor watches in the guest: the panic banner on
 * the console (machine/panic_detect.c) - where a line counts, printk
 * prefixes, lines split across writes, "\r\n", the message cut and made
 * printable - and the guest events ring and action names
 * (machine/guest_event.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "machine/guest_event.h"
#include "machine/panic_detect.h"

#include "check.h"

/* Feeds `text` in pieces of `step` bytes; true if a panic line ended, its
 * message in msg. */
static bool feed(struct panic_detect *p, const char *text, size_t step, char *msg, size_t len)
{
    bool found = false;
    size_t n = strlen(text);
    char got[GUEST_EVENT_MESSAGE_MAX];
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        if (panic_detect_feed(p, (const uint8_t *)text + i, k, got, sizeof(got)) && !found) {
            found = true;
            snprintf(msg, len, "%s", got);
        }
    }
    return found;
}

static void expect(const char *text, const char *want)
{
    static const size_t steps[] = { 1, 3, 4096 };
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        struct panic_detect p;
        char msg[GUEST_EVENT_MESSAGE_MAX] = "";
        panic_detect_reset(&p);
        bool found = feed(&p, text, steps[s], msg, sizeof(msg));
        if (want)
            CHECK_MSG(found && !strcmp(msg, want), "%zu-byte writes of \"%s\": %s \"%s\"",
                      steps[s], text, found ? "message" : "no panic", msg);
        else
            CHECK_MSG(!found, "%zu-byte writes of \"%s\": a panic \"%s\"", steps[s], text, msg);
    }
}

static void test_banner(void)
{
    expect("Kernel panic - not syncing: sysrq triggered crash\n", "sysrq triggered crash");
    /* As Debian's kernel prints it on ttyS0 (CONFIG_PRINTK_TIME, "\r\n"). */
    expect("[   17.164367] sysrq: Trigger a crash\r\n"
           "[   17.168627] Kernel panic - not syncing: sysrq triggered crash\r\n"
           "[   17.168900] CPU: 0 UID: 0 PID: 160 Comm: sh\r\n",
           "sysrq triggered crash");
    expect("[    1.000000][    T1] Kernel panic - not syncing: Attempted to kill init! "
           "exitcode=0x00000100\n", "Attempted to kill init! exitcode=0x00000100");
    expect("boot\nKernel panic - not syncing\n", "");
    /* Not at the start of a line, not the banner, or not a line yet. */
    expect("echo Kernel panic - not syncing: x\n", NULL);
    expect("[  9.1] ---[ end Kernel panic - not syncing: x ]---\n", NULL);
    expect(" Kernel panic - not syncing: x\n", NULL);
    expect("Kernel panic - not synced: x\n", NULL);
    expect("Kernel panic - not syncing: no end of line", NULL);
    expect("[0123456789012345678901234567890123456789012345] Kernel panic - not syncing: x\n",
           NULL);
    /* A line that is not one does not hide the next. */
    expect("Kernel oops\nKernel panic - not syncing: second\n", "second");
    /* The message is printable ASCII, at most 255 bytes. */
    expect("Kernel panic - not syncing: a\tb\xc3\xa9\x1b[0m\n", "a?b???[0m");
    char longline[600], want[300];
    snprintf(longline, sizeof(longline), "Kernel panic - not syncing: %0400d\n", 7);
    memset(want, '0', 255);
    want[255] = '\0';
    expect(longline, want);

    /* The first panic line of one write; the detector goes on after it. */
    struct panic_detect p;
    char msg[64];
    panic_detect_reset(&p);
    CHECK(feed(&p, "Kernel panic - not syncing: one\nKernel panic - not syncing: two\n", 4096,
               msg, sizeof(msg)));
    CHECK(!strcmp(msg, "one"));
    CHECK(feed(&p, "Kernel panic - not syncing: three\n", 4096, msg, sizeof(msg)));
    CHECK(!strcmp(msg, "three"));
}

static void test_events(void)
{
    struct guest_events g;
    struct guest_event e;
    uint64_t seq = 0;
    guest_events_init(&g);
    CHECK(!guest_events_next(&g, &seq, &e));
    guest_events_push(&g, GUEST_EVENT_WATCHDOG, GUEST_ACTION_PAUSE, NULL);
    guest_events_push(&g, GUEST_EVENT_PANIC, GUEST_ACTION_NONE, "oops");
    CHECK(guest_events_next(&g, &seq, &e));
    CHECK(e.kind == GUEST_EVENT_WATCHDOG && e.action == GUEST_ACTION_PAUSE && !e.message[0]);
    CHECK(!strcmp(guest_event_kind_name(e.kind), "watchdog"));
    CHECK(guest_events_next(&g, &seq, &e));
    CHECK(e.kind == GUEST_EVENT_PANIC && !strcmp(e.message, "oops"));
    CHECK(!strcmp(guest_event_kind_name(e.kind), "guest_panic"));
    CHECK_EQ(seq, 2);
    CHECK(!guest_events_next(&g, &seq, &e));
    /* A reader too far behind gets the oldest the ring still holds. */
    for (unsigned i = 0; i < GUEST_EVENT_RING + 5; i++) {
        char m[16];
        snprintf(m, sizeof(m), "%u", i);
        guest_events_push(&g, GUEST_EVENT_PANIC, GUEST_ACTION_NONE, m);
    }
    CHECK(guest_events_next(&g, &seq, &e));
    CHECK(!strcmp(e.message, "5"));
    unsigned n = 1;
    while (guest_events_next(&g, &seq, &e))
        n++;
    CHECK_EQ(n, GUEST_EVENT_RING);
    CHECK(!strcmp(e.message, "20"));
    guest_events_destroy(&g);
}

static void test_actions(void)
{
    enum guest_action a = GUEST_ACTION_NONE;
    CHECK_EQ(guest_action_parse("reset", GUEST_ACTIONS_WATCHDOG, &a), 0);
    CHECK_EQ(a, GUEST_ACTION_RESET);
    CHECK_EQ(guest_action_parse("pause", GUEST_ACTIONS_PANIC, &a), 0);
    CHECK_EQ(a, GUEST_ACTION_PAUSE);
    CHECK_EQ(guest_action_parse("reset", GUEST_ACTIONS_PANIC, &a), -EINVAL);
    CHECK_EQ(guest_action_parse("Pause", GUEST_ACTIONS_WATCHDOG, &a), -EINVAL);
    CHECK_EQ(guest_action_parse("", GUEST_ACTIONS_WATCHDOG, &a), -EINVAL);
    CHECK_EQ(a, GUEST_ACTION_PAUSE);
    for (unsigned i = 0; i <= GUEST_ACTION_PAUSE; i++) {
        CHECK_EQ(guest_action_parse(guest_action_name((enum guest_action)i),
                                    GUEST_ACTIONS_WATCHDOG, &a), 0);
        CHECK_EQ(a, i);
    }
}

int main(void)
{
    test_banner();
    test_events();
    test_actions();
    return check_summary("test_guest_watch");
}
