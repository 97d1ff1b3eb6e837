/* Entry for bench programs: stack, FPU on, then bench_main. */
    .section .text.init
    .globl _start
_start:
    la sp, stack_top
    li t0, 1 << 13          /* mstatus.FS = Initial */
    csrs mstatus, t0
    call bench_main
1:  j 1b
    .bss
    .align 4
    .space 65536
stack_top:
