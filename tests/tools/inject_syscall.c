/* inject_syscall PID NR [ARG0]: makes process PID's main thread perform
 * system call NR (with ARG0 as its first argument, the others 0), as a
 * monitor taken over by its guest could: attaches with ptrace, writes a
 * `syscall` instruction at the thread's pc (ptrace writes through the
 * read-only text, into a private copy), sets the registers and steps over
 * it. For the tests of the seccomp filter: a forbidden call kills the
 * process with SIGSYS; an allowed one returns, and the thread goes on as
 * it was (pc, registers and text restored).
 *
 * Prints "killed by signal N" or "returned R" and exits 0; 1 when the
 * injection itself failed. x86-64 only (what the tests run on). Takes
 * milliseconds, where gdb's `call` takes seconds to load symbols. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#if !defined(__x86_64__)
int main(void)
{
    fprintf(stderr, "inject_syscall: x86-64 only\n");
    return 1;
}
#else

static int fail(const char *what)
{
    fprintf(stderr, "inject_syscall: %s: %s\n", what, strerror(errno));
    return 1;
}

/* Waits for the thread's next stop or end; 1 if it ended (printed). */
static int wait_thread(pid_t pid, int *status)
{
    if (waitpid(pid, status, __WALL) < 0)
        return -1;
    if (WIFSIGNALED(*status)) {
        printf("killed by signal %d\n", WTERMSIG(*status));
        return 1;
    }
    if (WIFEXITED(*status)) {
        printf("exited with %d\n", WEXITSTATUS(*status));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: inject_syscall PID NR [ARG0]\n");
        return 2;
    }
    pid_t pid = (pid_t)atoi(argv[1]);
    long nr = strtol(argv[2], NULL, 0);
    unsigned long arg0 = argc > 3 ? strtoul(argv[3], NULL, 0) : 0;
    int st;
    if (ptrace(PTRACE_SEIZE, pid, 0, 0))
        return fail("PTRACE_SEIZE");
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0))
        return fail("PTRACE_INTERRUPT");
    int r = wait_thread(pid, &st);
    if (r)
        return r < 0 ? fail("waitpid") : 0;
    struct user_regs_struct saved, regs;
    if (ptrace(PTRACE_GETREGS, pid, 0, &saved))
        return fail("PTRACE_GETREGS");
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, pid, (void *)saved.rip, 0);
    if (errno)
        return fail("PTRACE_PEEKTEXT");
    long patched = (long)(((unsigned long)word & ~0xffffUL) | 0x050fUL);   /* 0f 05: syscall */
    if (ptrace(PTRACE_POKETEXT, pid, (void *)saved.rip, (void *)patched))
        return fail("PTRACE_POKETEXT");
    regs = saved;
    regs.rax = (unsigned long)nr;
    regs.orig_rax = (unsigned long)-1;   /* not a syscall to restart: an interrupted one */
    regs.rdi = arg0;
    regs.rsi = regs.rdx = regs.r10 = regs.r8 = regs.r9 = 0;
    if (ptrace(PTRACE_SETREGS, pid, 0, &regs))
        return fail("PTRACE_SETREGS");
    if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0))
        return fail("PTRACE_SINGLESTEP");
    /* A signal the thread got meanwhile may stop it before the step: pass
     * on nothing, step again. */
    for (;;) {
        r = wait_thread(pid, &st);
        if (r)
            return r < 0 ? fail("waitpid") : 0;
        if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGTRAP)
            break;
        if (ptrace(PTRACE_SINGLESTEP, pid, 0, 0))
            return fail("PTRACE_SINGLESTEP");
    }
    if (ptrace(PTRACE_GETREGS, pid, 0, &regs))
        return fail("PTRACE_GETREGS");
    printf("returned %lld\n", (long long)regs.rax);
    ptrace(PTRACE_POKETEXT, pid, (void *)saved.rip, (void *)word);
    ptrace(PTRACE_SETREGS, pid, 0, &saved);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return 0;
}
#endif
