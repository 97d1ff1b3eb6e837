/* Hostile-guest fuzzing of the CPU core: random instruction streams, random
 * page tables and random CSR state, run through hart_run() on the real board
 * devices. Whatever the guest does, hart_run() must return within its step
 * budget, x0 must stay zero, pc must stay 2-byte aligned, and (under the
 * ASan/UBSan build of `make test`) no host memory error or undefined
 * behaviour may occur. Deterministic: a fixed seed per round. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_internal.h"
#include "cpu/decode.h"
#include "dev/aclint.h"
#include "dev/plic.h"
#include "dev/uart16550.h"
#include "mem/guest_mem.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)
#define ROUNDS 400
#define STEPS 20000

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Mostly valid instructions (so execution goes somewhere interesting), with
 * raw random words and compressed halves mixed in. */
static uint32_t random_insn(void)
{
    static const uint32_t templates[] = {
        0x00000013, /* addi */   0x00000033, /* add */    0x00003003, /* ld */
        0x00003023, /* sd */     0x00002003, /* lw */     0x00000063, /* beq */
        0x0000006f, /* jal */    0x00000067, /* jalr */   0x00001073, /* csrrw */
        0x00002073, /* csrrs */  0x0000200f, /* lr/amo */ 0x1000202f, /* lr.w */
        0x1800302f, /* sc.d */   0x0000302f, /* amoadd.d */ 0x00000073, /* ecall */
        0x30200073, /* mret */   0x10200073, /* sret */   0x10500073, /* wfi */
        0x12000073, /* sfence.vma */ 0x00003007, /* fld */ 0x00003027, /* fsd */
        0x02000053, /* fadd.d */ 0x02000033, /* mul */    0x0000100f, /* fence.i */
        0x00000037, /* lui */    0x00000017, /* auipc */  0x0200003b, /* mulw */
    };
    uint64_t r = rnd();
    switch (r & 7) {
    case 0: return (uint32_t)(r >> 32);                 /* anything */
    case 1: return (uint32_t)(r >> 32) & 0xffff;        /* a compressed half */
    default: {
        uint32_t t = templates[(r >> 8) % (sizeof(templates) / sizeof(templates[0]))];
        /* random registers, funct3 and immediates, keeping the opcode */
        return t | ((uint32_t)(r >> 32) & ~0x7fu);
    }
    }
}

struct board {
    struct guest_mem mem;
    struct timebase tb;
    struct hart *hart;
    struct plic *plic;
    struct aclint *aclint;
    struct uart16550 *uart;
    size_t uart_bytes;
};

static void set_external(void *opaque, unsigned hart, bool s_mode, bool level)
{
    struct board *b = opaque;
    if (hart == 0)
        hart_set_irq(b->hart, s_mode ? MIP_SEIP : MIP_MEIP, level);
}

static void set_msip(void *opaque, unsigned hart, bool level)
{
    struct board *b = opaque;
    if (hart == 0)
        hart_set_irq(b->hart, MIP_MSIP, level);
}

static void set_mtimecmp(void *opaque, unsigned hart, uint64_t value)
{
    struct board *b = opaque;
    if (hart == 0)
        atomic_store(&b->hart->mtimecmp, value);
}

static void uart_tx(void *opaque, const uint8_t *buf, size_t n)
{
    struct board *b = opaque;
    (void)buf;
    b->uart_bytes += n;
}

static void randomize_state(struct hart *h)
{
    static const enum priv_mode modes[] = { PRIV_U, PRIV_S, PRIV_M };
    for (int i = 1; i < 32; i++)
        h->arch.x[i] = (rnd() & 1) ? RAM_BASE + (rnd() % RAM_SIZE) : rnd();
    for (int i = 0; i < 32; i++)
        h->arch.fp.f[i] = rnd();
    h->arch.pc = RAM_BASE + (rnd() % RAM_SIZE & ~1ull);
    h->arch.mtvec = RAM_BASE + (rnd() % RAM_SIZE) + (rnd() & 1);
    h->arch.stvec = RAM_BASE + (rnd() % RAM_SIZE) + (rnd() & 1);
    csr_write(h, 0x300, rnd());          /* mstatus */
    csr_write(h, 0x302, rnd());          /* medeleg */
    csr_write(h, 0x303, rnd());          /* mideleg */
    csr_write(h, 0x304, rnd());          /* mie */
    csr_write(h, 0x30a, rnd());          /* menvcfg */
    csr_write(h, 0x306, rnd());          /* mcounteren */
    csr_write(h, 0x3a0, rnd() | 0x18);   /* pmpcfg0: entry 0 NAPOT */
    csr_write(h, 0x3b0, rnd());          /* pmpaddr0 */
    /* satp: bare or a root table somewhere in (or outside) RAM */
    static const uint64_t satp_modes[] = { 0, 8, 9, 10 };
    uint64_t root = (rnd() & 3) ? (RAM_BASE + (rnd() % RAM_SIZE)) >> 12 : rnd() & ((1ull << 44) - 1);
    csr_write(h, 0x180, satp_modes[rnd() & 3] << 60 | root);
    h->arch.priv = modes[rnd() % 3];
    mmu_update_regime(h);
}

int main(void)
{
    struct board b;
    memset(&b, 0, sizeof(b));
    timebase_init(&b.tb);
    CHECK_EQ(guest_mem_init(&b.mem, RAM_BASE, RAM_SIZE), 0);
    if (posix_memalign((void **)&b.hart, 4096, sizeof(struct hart)))
        return 1;
    CHECK_EQ(hart_init(b.hart, 0, &b.mem, &b.tb, RAM_BASE), 0);
    struct plic_host ph = { .set_external = set_external, .opaque = &b };
    struct aclint_host ah = { .set_msip = set_msip, .set_mtimecmp = set_mtimecmp, .opaque = &b };
    struct uart16550_host uh = { .tx = uart_tx, .opaque = &b };
    CHECK_EQ(plic_create(&b.mem, PLIC_VIRT_BASE, 1, &ph, &b.plic), 0);
    CHECK_EQ(aclint_create(&b.mem, ACLINT_VIRT_BASE, 1, &b.tb, &ah, &b.aclint), 0);
    CHECK_EQ(uart16550_create(&b.mem, UART16550_VIRT_BASE, plic_irq_line(b.plic, UART16550_VIRT_IRQ),
                              &uh, &b.uart), 0);

    uint64_t total_steps = 0;
    unsigned budget_violations = 0, x0_violations = 0, pc_violations = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        rng_state = 0x5eed0000ull + round;
        uint32_t *ram = (uint32_t *)b.mem.ram;
        for (size_t i = 0; i < RAM_SIZE / 4; i++)
            ram[i] = random_insn();
        /* Sprinkle page-table-like words so walks find valid-looking PTEs,
         * and device addresses so loads and stores reach MMIO. */
        for (int i = 0; i < 4096; i++) {
            uint64_t *slot = (uint64_t *)(b.mem.ram + (rnd() % (RAM_SIZE / 8)) * 8);
            uint64_t target = (rnd() & 3) ? RAM_BASE + (rnd() % RAM_SIZE)
                            : (rnd() & 1) ? UART16550_VIRT_BASE : PLIC_VIRT_BASE + (rnd() % PLIC_SIZE);
            *slot = ((target >> 12) << 10) | (rnd() & 0x3ff) | 1;
        }
        hart_reset(b.hart, RAM_BASE);
        randomize_state(b.hart);

        for (int call = 0; call < 8; call++) {
            uint64_t before = b.hart->insn_count;
            enum hart_exit e = hart_run(b.hart, STEPS / 8);
            uint64_t ran = b.hart->insn_count - before;
            total_steps += ran;
            /* A slice may overshoot by one basic block (< a page of code). */
            if (ran > STEPS / 8 + 2048)
                budget_violations++;
            if (b.hart->arch.x[0] != 0)
                x0_violations++;
            if (b.hart->arch.pc & 1)
                pc_violations++;
            if (e == HART_EXIT_STOPPED)
                break;
            if (e == HART_EXIT_WFI)
                atomic_fetch_or(&b.hart->arch.mip, MIP_SSIP); /* something to wake on */
        }
    }
    CHECK_EQ(budget_violations, 0);
    CHECK_EQ(x0_violations, 0);
    CHECK_EQ(pc_violations, 0);
    CHECK(total_steps > 0);
    printf("fuzz_cpu: %u rounds, %llu instructions retired, %zu UART bytes\n", ROUNDS,
           (unsigned long long)total_steps, b.uart_bytes);

    uart16550_destroy(b.uart);
    aclint_destroy(b.aclint);
    plic_destroy(b.plic);
    hart_destroy(b.hart);
    free(b.hart);
    guest_mem_destroy(&b.mem);
    return check_summary("fuzz_cpu");
}
