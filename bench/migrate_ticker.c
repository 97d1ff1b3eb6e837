/* The guest side of bench/migrate.sh's in-guest downtime: built static for
 * riscv64 and added to the default initramfs by the benchmark.
 *
 * Every millisecond of guest time it writes one line to stdout (the
 * console): "t SEQ GAP_US", SEQ counting up from 1 and GAP_US the guest
 * clock's (CLOCK_MONOTONIC) time since the line before. The host stamps each
 * line as it comes out of the VMM; the largest host-side gap between
 * consecutive SEQs (the last on the source, the first on the destination)
 * is the time the guest could not run or be heard from. GAP_US shows what
 * the guest's own clock saw of it: both VMMs stop guest time over the pause
 * (docs/migration.md), so a clock read inside the guest cannot see the
 * downtime by itself. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(void)
{
    const struct timespec tick = { .tv_sec = 0, .tv_nsec = 1000000 };
    uint64_t last = now_ns();
    for (uint64_t seq = 1;; seq++) {
        nanosleep(&tick, NULL);
        uint64_t t = now_ns();
        char line[64];
        int n = snprintf(line, sizeof(line), "t %llu %llu\n", (unsigned long long)seq,
                         (unsigned long long)((t - last) / 1000));
        last = t;
        /* One write per line: the console sees whole lines, unbuffered. */
        if (write(STDOUT_FILENO, line, (size_t)n) != n)
            return 1;
    }
}
