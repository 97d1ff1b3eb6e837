/* CPU-bound bare-metal benchmark for `make bench`: integer arithmetic,
 * memory traffic, branches and floating point, in M-mode with no OS.
 * Prints its own retired-instruction count and guest-timer duration through
 * HTIF, then exits with status 0 (or 1 if a checksum is wrong, so a broken
 * CPU cannot post a fast time). */
#include <stdint.h>

volatile uint64_t tohost __attribute__((section(".tohost"), aligned(64)));
volatile uint64_t fromhost __attribute__((section(".tohost"), aligned(64)));

static void putc_htif(char c)
{
    while (tohost)
        ;
    tohost = (1ull << 56) | (1ull << 48) | (uint8_t)c;
}

static void puts_htif(const char *s)
{
    while (*s)
        putc_htif(*s++);
}

static void putu(uint64_t v)
{
    char buf[24];
    int i = 0;
    do {
        buf[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        putc_htif(buf[--i]);
}

static inline uint64_t rdinstret(void) { uint64_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }
static inline uint64_t rdtime(void) { uint64_t v; __asm__ volatile("csrr %0, time" : "=r"(v)); return v; }

static uint32_t table[16384];
static double vec[1024];

static uint64_t integer_work(uint64_t n)
{
    uint64_t a = 0x9e3779b97f4a7c15ull, b = 1, acc = 0;
    for (uint64_t i = 0; i < n; i++) {
        a ^= a << 13; a ^= a >> 7; a ^= a << 17;       /* xorshift */
        b = b * 6364136223846793005ull + 1442695040888963407ull;
        acc += (a >> 3) ^ (b % 1000003);
        if (acc & 1) acc += i; else acc -= i >> 1;     /* data-dependent branch */
    }
    return acc;
}

static uint64_t memory_work(uint64_t rounds)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < 16384; i++)
        table[i] = i * 2654435761u;
    for (uint64_t r = 0; r < rounds; r++) {
        uint32_t idx = (uint32_t)r;
        for (int i = 0; i < 16384; i++) {
            idx = table[idx & 16383] ^ (uint32_t)i;       /* dependent loads */
            table[i] += idx;                               /* stores */
            sum += idx;
        }
    }
    return sum;
}

static uint64_t fp_work(uint64_t rounds)
{
    for (int i = 0; i < 1024; i++)
        vec[i] = 1.0 + i * 0.001;
    double s = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        for (int i = 0; i < 1024; i++) {
            vec[i] = vec[i] * 0.999 + 0.0005 * vec[(i + 1) & 1023];
            s += vec[i] / (1.0 + vec[i]);
        }
    }
    return (uint64_t)(s * 1000.0);
}

void bench_main(void)
{
    uint64_t i0 = rdinstret(), t0 = rdtime();
    uint64_t x = integer_work(20000000);
    uint64_t m = memory_work(400);
    uint64_t f = fp_work(1500);
    uint64_t i1 = rdinstret(), t1 = rdtime();
    puts_htif("cpu bench: instructions ");
    putu(i1 - i0);
    puts_htif(" time_us ");
    putu((t1 - t0) / 10);
    puts_htif(" MIPS ");
    putu((i1 - i0) / ((t1 - t0) / 10 + 1));
    puts_htif(" checksum ");
    putu(x ^ m ^ f);
    puts_htif("\n");
    tohost = 1;
    for (;;)
        ;
}
