/* Random SBI calls from S-mode on 8 harts, forever. Loaded as --kernel
 * (built with kernel.ld) and served by the built-in SBI.
 *
 * Hart 0 starts the others with HSM hart_start. Every hart then loops: pick
 * an extension from a table (the v2.0 ones, the legacy calls, a few absent
 * ones, a fully random EID), a random FID 0..7 and random a0-a5; half of the
 * time a0 is a small length and a1 an address in RAM, so the calls that take
 * memory (DBCN, the legacy IPI/fence masks) reach their checks. System reset
 * and the legacy shutdown are left out (they would end the run), and the
 * addresses HSM starts or resumes harts at point back into this program;
 * hart 0 never calls hart_stop, so that someone is left to restart the rest.
 * S-mode traps (none are expected, but the arguments are random) are
 * skipped. Hart 0 prints "@@sbi alive@@" (one DBCN write, so that no other
 * hart's output lands inside it) every 16384 calls.
 *
 * nimbus-args: --smp 8 --mem 64M */
#define SBI_HSM  0x48534d
#define SBI_DBCN 0x4442434e
#define NHARTS   8

    .option nopic
    .section .text.init, "ax", @progbits
    .globl _start
_start:
    mv s0, a0               /* hartid */
    call setup
    li s1, 1
1:  mv a0, s1               /* hart_start(hartid, secondary, opaque) */
    la a1, secondary
    mv a2, s1
    li a7, SBI_HSM
    li a6, 0
    ecall
    addi s1, s1, 1
    li t0, NHARTS
    bne s1, t0, 1b
    j chaos

secondary:
    mv s0, a0
    call setup
    j chaos

/* sp = this hart's stack, stvec = skip handler, SSIE/STIE enabled (with
 * sstatus.SIE = 0: WFI-like calls wake, nothing traps), seed the PRNG. */
setup:
    andi t0, s0, NHARTS - 1
    addi t0, t0, 1
    slli t0, t0, 12
    la sp, stacks
    add sp, sp, t0
    la t0, skip_trap
    csrw stvec, t0
    csrci sstatus, 2
    li t0, (1 << 1) | (1 << 5)
    csrw sie, t0
    li t0, 0x9e3779b97f4a7c15
    addi t1, s0, 1
    mul s2, t0, t1          /* s2: PRNG state, never 0 */
    rdtime t0
    xor s2, s2, t0
    bnez s2, 1f
    li s2, 1
1:  li s3, 0                /* calls made */
    ret

/* s2 = next xorshift64 value, also in a0. */
rand:
    slli t0, s2, 13
    xor s2, s2, t0
    srli t0, s2, 7
    xor s2, s2, t0
    slli t0, s2, 17
    xor s2, s2, t0
    mv a0, s2
    ret

chaos:
    call rand
    andi t0, a0, 15
    slli t0, t0, 3
    la t1, eids
    add t1, t1, t0
    ld s4, 0(t1)            /* EID */
    call rand
    bnez s4, 1f             /* EID 0 in the table: a random one */
    mv s4, a0
    li t0, 0x53525354       /* but never system reset */
    bne s4, t0, 1f
    li s4, 0x10
1:  call rand
    andi s5, a0, 7          /* FID */
    call rand
    mv s6, a0
    call rand
    mv s7, a0
    call rand
    mv s8, a0
    call rand
    mv s9, a0
    call rand
    mv s10, a0
    call rand
    mv s11, a0
    andi t0, a0, 1
    beqz t0, 2f
    /* Half of the calls: a small length and an address in RAM. */
    li t0, 0xfff
    and s6, s6, t0
    li t0, 0x3ffffff
    and s7, s7, t0
    li t0, 0x80000000
    add s7, s7, t0
    li s8, 0                /* base_hi */
2:  li t0, SBI_HSM
    bne s4, t0, 3f
    andi s6, s6, NHARTS - 1 /* mostly valid hart ids */
    la s7, secondary        /* start / resume address: back into this program */
    bnez s0, 3f
    li t0, 1
    bne s5, t0, 3f
    li s5, 2                /* hart 0 never stops itself (hart_stop -> get_status): */
                            /* it keeps restarting the others */
3:  mv a0, s6
    mv a1, s7
    mv a2, s8
    mv a3, s9
    mv a4, s10
    mv a5, s11
    mv a6, s5
    mv a7, s4
    ecall
    addi s3, s3, 1
    bnez s0, chaos
    li t0, 0x3fff
    and t0, s3, t0
    bnez t0, chaos
    li a0, 17               /* DBCN console_write(len, addr, 0): len(msg_alive) */
    la a1, msg_alive
    li a2, 0
    li a6, 0
    li a7, SBI_DBCN
    ecall
    j chaos

    .align 6
skip_trap:
    csrr t6, scause
    bltz t6, 1f
    csrr t6, sepc
    addi t6, t6, 4
    csrw sepc, t6
1:  sret

    .data
    .align 3
eids:
    .dword 0x10, 0x54494d45, 0x735049, 0x52464e43      /* BASE TIME IPI RFENCE */
    .dword SBI_HSM, SBI_DBCN, SBI_HSM, SBI_DBCN
    .dword 0, 1, 2, 3                                  /* random; legacy putchar getchar clear_ipi */
    .dword 4, 5, 6, 7                                  /* legacy send_ipi, fences */
msg_alive: .ascii "\r\n@@sbi alive@@\r\n"
    .if . - msg_alive - 17
    .error "msg_alive is not 17 bytes"
    .endif
    .bss
    .align 12
stacks: .space 4096 * NHARTS
