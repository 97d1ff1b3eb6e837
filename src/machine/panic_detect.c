/* The panic banner on the console. See panic_detect.h. */
#include "machine/panic_detect.h"

#include <stdio.h>
#include <string.h>

enum {
    LINE_START,   /* at the start of a line, or after a printk prefix */
    PREFIX,       /* inside "[...]" */
    BANNER,       /* `count` bytes of the banner matched */
    MESSAGE,      /* the banner matched: the rest of the line is the message */
    SKIP,         /* not a panic line: wait for the next */
};

#define PREFIX_MAX 40u   /* "[  123.456789]", "[    T123]", "[  C0]" fit easily */

void panic_detect_reset(struct panic_detect *p)
{
    memset(p, 0, sizeof(*p));
    p->state = LINE_START;
}

static void new_line(struct panic_detect *p)
{
    p->state = LINE_START;
    p->count = 0;
    p->after_prefix = false;
}

bool panic_detect_feed(struct panic_detect *p, const uint8_t *buf, size_t n, char *msg,
                       size_t msglen)
{
    static const char banner[] = PANIC_BANNER;
    bool found = false;

    for (size_t i = 0; i < n; i++) {
        uint8_t c = buf[i];
        if (c == '\r')
            continue;   /* serial consoles end lines with "\r\n" */
        if (c == '\n') {
            if (p->state == MESSAGE) {
                p->line[p->len] = '\0';
                if (!found && msglen)
                    snprintf(msg, msglen, "%s", p->line);
                found = true;
            }
            new_line(p);
            continue;
        }
        switch (p->state) {
        case LINE_START:
            if (c == '[') {
                p->state = PREFIX;
                p->count = 0;
            } else if (c == ' ' && p->after_prefix) {
                /* the space after "[   12.345678]" */
            } else if (c == (uint8_t)banner[0]) {
                p->state = BANNER;
                p->count = 1;
            } else {
                p->state = SKIP;
            }
            break;
        case PREFIX:
            if (c == ']') {
                p->state = LINE_START;
                p->after_prefix = true;
            } else if (++p->count > PREFIX_MAX) {
                p->state = SKIP;
            }
            break;
        case BANNER:
            if (c != (uint8_t)banner[p->count]) {
                p->state = SKIP;
            } else if (++p->count == sizeof(banner) - 1) {
                p->state = MESSAGE;
                p->len = 0;
            }
            break;
        case MESSAGE:
            /* "Kernel panic - not syncing: MESSAGE": the message alone. */
            if (p->len == 0 && (c == ':' || c == ' '))
                break;
            if (p->len < sizeof(p->line) - 1)
                p->line[p->len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            break;
        default:
            break;
        }
    }
    return found;
}
