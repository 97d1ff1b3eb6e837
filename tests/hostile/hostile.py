#!/usr/bin/env python3
"""Hostile-guest and terminal tests for nimbus (standard library only).

Runs the programs of tests/hostile/*.S (built into build/hostile/) under
`nimbus run` and checks that the monitor survives them, costs little CPU
while the guest sleeps, and still ends promptly on SIGTERM and on Ctrl-A x
typed on a pseudo-terminal, leaving the terminal exactly as it found it.
Also: every catchable signal that kills by default leaves the terminal
restored; console output that nobody reads never blocks a quit; a slow
reader still gets every byte; the terminal is never touched when the guest
does not start.

    hostile.py --list [all|asan]         names of the tests
    hostile.py --nimbus PATH --elf-dir DIR NAME
                                          runs one test: exit 0 = pass

Each test is bounded in wall time; a hung nimbus is killed with SIGKILL and
the test fails.
"""
import argparse
import os
import random
import select
import signal
import struct
import sys
import tempfile
import termios
import time

QUIT_WITHIN = 2.0          # seconds from SIGTERM / Ctrl-A x to exit
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Fail(Exception):
    pass


def log(msg):
    print(msg, flush=True)


# ---- processes ----

class Vm:
    """One nimbus process. stdin/stdout are fds given to the child; the
    parent keeps its own ends (pty master, pipe read end) in `out_fd`."""

    def __init__(self, ctx, args, stdin_fd, stdout_fd, out_fd=None, name="vm"):
        self.ctx = ctx
        self.out_fd = out_fd
        self.buf = bytearray()
        self.status = None
        self.rusage = None
        self.err_path = os.path.join(ctx.tmp, name + ".stderr")
        err = os.open(self.err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        argv = [ctx.nimbus, "run"] + args
        log("run: " + " ".join(argv))
        try:
            # setsigdef: Python ignores SIGPIPE and SIGXFSZ; nimbus must start
            # with the default dispositions a shell would give it.
            self.pid = os.posix_spawn(ctx.nimbus, argv, os.environ, setsid=True, setsigmask=(),
                                      setsigdef=(signal.SIGPIPE, signal.SIGXFSZ), file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin_fd, 0),
                (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                (os.POSIX_SPAWN_DUP2, err, 2),
            ])
        finally:
            os.close(err)
        self.started = time.monotonic()

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def cpu(self):
        """Host CPU seconds (user + system, all threads) used so far."""
        if self.rusage is not None:
            return self.rusage.ru_utime + self.rusage.ru_stime
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def poll(self):
        if self.status is None:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.status, self.rusage = status, ru
        return self.status

    def drain(self, timeout=0.0):
        """Reads what the guest printed (if we hold its output)."""
        if self.out_fd is None:
            time.sleep(timeout)
            return
        r, _, _ = select.select([self.out_fd], [], [], timeout)
        if r:
            try:
                data = os.read(self.out_fd, 65536)
            except OSError:     # EIO: pty slave side closed
                data = b""
            self.buf += data
            if len(self.buf) > (4 << 20):
                del self.buf[:len(self.buf) - (1 << 20)]

    def pump(self, seconds):
        """Reads output for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.drain(left)

    def wait_for(self, marker, timeout):
        end = time.monotonic() + timeout
        while marker not in self.buf:
            if self.poll() is not None:
                raise Fail("nimbus ended (%s) before printing %r; stderr: %s"
                           % (status_text(self.status), marker, self.stderr()[-500:]))
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("no %r within %.0f s" % (marker, timeout))
            self.drain(min(left, 0.05))

    def wait_exit(self, timeout, read=True):
        """Waits for the exit; returns the seconds it took, or kills the
        process and fails if it takes longer than timeout."""
        t0 = time.monotonic()
        while self.poll() is None:
            if time.monotonic() - t0 > timeout:
                os.kill(self.pid, signal.SIGKILL)
                os.wait4(self.pid, 0)
                self.status = -1
                raise Fail("nimbus did not end within %.1f s (killed with SIGKILL)" % timeout)
            if read:
                self.drain(0.01)
            else:
                time.sleep(0.01)
        return time.monotonic() - t0

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.wait4(self.pid, 0)
            self.status = -1


def status_text(status):
    if status is None:
        return "running"
    if status == -1:
        return "killed by the test"
    if os.WIFSIGNALED(status):
        return "killed by %s" % signal.Signals(os.WTERMSIG(status)).name
    return "exit %d" % os.WEXITSTATUS(status)


def expect_exit(vm, code):
    if not (os.WIFEXITED(vm.status) and os.WEXITSTATUS(vm.status) == code):
        raise Fail("expected exit %d, got %s; stderr: %s"
                   % (code, status_text(vm.status), vm.stderr()[-500:]))


class Ctx:
    def __init__(self, nimbus, elf_dir, tmp):
        self.nimbus = nimbus
        self.elf_dir = elf_dir
        self.tmp = tmp
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def elf(self, name):
        path = os.path.join(self.elf_dir, name + ".elf")
        if not os.path.exists(path):
            raise Fail("missing %s (make hostile)" % path)
        return path

    def bios(self, name, *extra):
        return ["--bios", self.elf(name)] + list(extra)

    def piped(self, args, name="vm"):
        """nimbus with stdin /dev/null and stdout a pipe we read."""
        r, w = os.pipe()
        try:
            vm = Vm(self, args, self.devnull, w, r, name)
        finally:
            os.close(w)
        return vm


# ---- pseudo-terminals ----

class Pty:
    def __init__(self, packet=False):
        self.master, self.slave = os.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[0] |= termios.IXON | termios.ICRNL            # a typical cooked terminal
        attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.before = termios.tcgetattr(self.slave)
        if packet:
            # Packet mode: the master learns of every change of the slave's
            # flow control (IXON), which raw mode turns off, as a control
            # packet, even if the mode is restored before we look.
            import fcntl
            fcntl.ioctl(self.master, termios.TIOCPKT, struct.pack("i", 1))

    def attrs(self):
        return termios.tcgetattr(self.slave)

    def is_raw(self):
        a = self.attrs()
        return not (a[3] & (termios.ICANON | termios.ECHO)) and not (a[0] & termios.IXON)

    def wait_raw(self, vm, timeout=10.0):
        end = time.monotonic() + timeout
        while not self.is_raw():
            if vm.poll() is not None:
                raise Fail("nimbus ended (%s) before the terminal went raw; stderr: %s"
                           % (status_text(vm.status), vm.stderr()[-500:]))
            if time.monotonic() > end:
                raise Fail("the terminal was not put in raw mode within %.0f s" % timeout)
            vm.drain(0.01)

    def check_restored(self):
        after = self.attrs()
        if after != self.before:
            names = ["iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed", "cc"]
            diff = [n for n, a, b in zip(names, after, self.before) if a != b]
            raise Fail("terminal modes not restored (%s differ: raw=%s)"
                       % (", ".join(diff), self.is_raw()))

    def close(self):
        os.close(self.master)
        os.close(self.slave)


def on_pty(ctx, args, name="vm", packet=False):
    p = Pty(packet)
    vm = Vm(ctx, args, p.slave, p.slave, p.master, name)
    return p, vm


# ---- the tests ----

def t_mmio_sweep(ctx):
    """Every width and alignment over every device window and the gaps: the
    program reaches its end (exit 0) and the monitor did not crash."""
    vm = ctx.piped(ctx.bios("mmio_sweep", "--mem", "64M"))
    vm.wait_exit(60)
    expect_exit(vm, 0)
    if b"mmio sweep done" not in vm.buf:
        raise Fail("no 'mmio sweep done' marker")
    log("cpu %.2f s" % vm.cpu())


def sigterm_and_wait(vm, expect_status=128 + signal.SIGTERM):
    os.kill(vm.pid, signal.SIGTERM)
    took = vm.wait_exit(QUIT_WITHIN)
    expect_exit(vm, expect_status)
    log("ended %.3f s after SIGTERM" % took)


def t_timer_extremes(ctx):
    """Extreme mtimecmp/stimecmp values, WFI: the monitor sleeps."""
    vm = ctx.piped(ctx.bios("timer_extremes"))
    try:
        vm.wait_for(b"timer idle begin", 10)
        c0, w0 = vm.cpu(), time.monotonic()
        vm.wait_for(b"timer idle end", 20)
        c1, w1 = vm.cpu(), time.monotonic()
        log("six 200 ms sleeps: %.2f s wall, %.3f s cpu" % (w1 - w0, c1 - c0))
        if w1 - w0 < 1.0:
            raise Fail("the sleeps ended early (%.2f s for 6 x 200 ms)" % (w1 - w0))
        # A sleeping monitor needs a few ms; one that spins on an overflowed
        # deadline burns whatever share of a core it gets (on a loaded host
        # maybe a third of the 0.4 s it spins).
        if c1 - c0 > 0.05:
            raise Fail("%.2f s of host CPU over %.2f s of guest sleeps: the monitor spins"
                       % (c1 - c0, w1 - w0))
        vm.wait_for(b"timer sleep", 10)
        c0 = vm.cpu()
        vm.pump(1.0)
        c1 = vm.cpu()
        log("1 s of WFI with both comparators at UINT64_MAX: %.3f s cpu" % (c1 - c0))
        if c1 - c0 > 0.05:
            raise Fail("%.2f s of host CPU over 1 s of WFI" % (c1 - c0))
        sigterm_and_wait(vm)
    finally:
        vm.kill()


def busy_cpu_check(vm, wall, nharts):
    cpu = vm.cpu()
    log("cpu %.2f s over %.2f s wall (%d harts)" % (cpu, wall, nharts))
    if cpu > (nharts + 0.5) * wall + 0.5:
        raise Fail("%.2f s of CPU in %.2f s with %d harts" % (cpu, wall, nharts))


def t_storm(ctx):
    """IPI/timer/ecall/illegal-instruction storm on 4 harts: SIGTERM ends it."""
    vm = ctx.piped(ctx.bios("storm", "--smp", "4"))
    try:
        vm.wait_for(b"storm running", 20)
        vm.pump(1.0)
        busy_cpu_check(vm, time.monotonic() - vm.started, 4)
        sigterm_and_wait(vm)
    finally:
        vm.kill()


def ctrl_a_x(vm, pty, expect_status=0):
    os.write(pty.master, b"\x01x")
    took = vm.wait_exit(QUIT_WITHIN)
    expect_exit(vm, expect_status)
    pty.check_restored()
    log("ended %.3f s after Ctrl-A x, terminal restored" % took)


def t_storm_ctrl_a_x(ctx):
    """The storm on a pseudo-terminal: Ctrl-A x ends it, modes restored."""
    p, vm = on_pty(ctx, ctx.bios("storm", "--smp", "4"))
    try:
        vm.wait_for(b"storm running", 20)
        if not p.is_raw():
            raise Fail("terminal not raw while the guest runs")
        vm.pump(0.5)
        ctrl_a_x(vm, p)
    finally:
        vm.kill()
        p.close()


def t_reset_storm(ctx, tries=30):
    """Reboot loop from the first instruction: SIGTERM must win every time."""
    rng = random.Random(6)
    for i in range(tries):
        vm = ctx.piped(ctx.bios("reset_storm", "--smp", "2"), "reset%d" % i)
        try:
            vm.wait_for(b"R", 20)
            time.sleep(rng.uniform(0.0, 0.15))
            if vm.poll() is not None:
                raise Fail("try %d: nimbus ended by itself (%s): %s"
                           % (i, status_text(vm.status), vm.stderr()[-300:]))
            sigterm_and_wait(vm)
        except Fail as e:
            raise Fail("try %d of %d: %s" % (i + 1, tries, e))
        finally:
            vm.kill()


def t_reset_storm_asan(ctx):
    t_reset_storm(ctx, tries=10)


def t_reset_storm_ctrl_a_x(ctx, tries=15):
    """Reboot loop on a pseudo-terminal: Ctrl-A x must win every time."""
    rng = random.Random(7)
    for i in range(tries):
        p, vm = on_pty(ctx, ctx.bios("reset_storm", "--smp", "2"), "reset%d" % i)
        try:
            p.wait_raw(vm)
            time.sleep(rng.uniform(0.0, 0.15))
            ctrl_a_x(vm, p)
        except Fail as e:
            raise Fail("try %d of %d: %s" % (i + 1, tries, e))
        finally:
            vm.kill()
            p.close()


def t_sbi_random(ctx):
    """Random SBI calls on 8 harts: the monitor survives and still quits."""
    vm = ctx.piped(["--kernel", ctx.elf("sbi_random"), "--smp", "8", "--mem", "64M"])
    try:
        vm.wait_for(b"@@sbi alive@@", 30)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5 and vm.poll() is None:
            vm.drain(0.05)
        if vm.poll() is not None:
            raise Fail("nimbus ended (%s): %s" % (status_text(vm.status), vm.stderr()[-500:]))
        busy_cpu_check(vm, time.monotonic() - vm.started, 8)
        sigterm_and_wait(vm)
        log("%d 'alive' markers" % vm.buf.count(b"@@sbi alive@@"))
    finally:
        vm.kill()


def spew_expected():
    return bytes(10 if i % 64 == 63 else 97 + i % 26 for i in range(512 * 1024))


def t_output_blocked_pipe(ctx):
    """stdout a pipe nobody reads: SIGTERM still ends nimbus."""
    r, w = os.pipe()
    vm = Vm(ctx, ctx.bios("spew"), ctx.devnull, w, None)
    os.close(w)
    try:
        if not select.select([r], [], [], 20)[0] or not os.read(r, 1):
            raise Fail("no output within 20 s")
        time.sleep(1.0)         # the guest runs, and fills the pipe: then nobody reads
        if vm.poll() is not None:
            raise Fail("nimbus ended (%s) with nobody reading its output"
                       % status_text(vm.status))
        sigterm_and_wait(vm)
    finally:
        vm.kill()
        os.close(r)


def t_output_blocked_pty(ctx):
    """stdout a terminal that does not take output: Ctrl-A x still ends
    nimbus and the modes are restored."""
    p = Pty()
    vm = Vm(ctx, ctx.bios("spew"), p.slave, p.slave, None)   # nobody reads the master
    try:
        p.wait_raw(vm)
        time.sleep(1.0)
        if vm.poll() is not None:
            raise Fail("nimbus ended (%s) with nobody reading its output"
                       % status_text(vm.status))
        ctrl_a_x(vm, p)
    finally:
        vm.kill()
        p.close()


def t_output_stuck_at_exit(ctx):
    """The guest powers off with output buffered for a reader that never
    reads: nimbus waits a bounded time for it, and a SIGTERM cuts the wait."""
    for sigterm in (False, True):
        r, w = os.pipe()
        vm = Vm(ctx, ctx.bios("spew_nowait"), ctx.devnull, w, None, "stuck%d" % sigterm)
        os.close(w)
        try:
            if not select.select([r], [], [], 20)[0] or not os.read(r, 1):
                raise Fail("no output within 20 s")
            if sigterm:
                time.sleep(0.5)
                os.kill(vm.pid, signal.SIGTERM)
                took = vm.wait_exit(QUIT_WITHIN, read=False)
                # Powered off already (0), or still printing when the signal came (143).
                if not (os.WIFEXITED(vm.status) and os.WEXITSTATUS(vm.status) in (0, 143)):
                    raise Fail("after SIGTERM: %s" % status_text(vm.status))
                log("SIGTERM during the final flush: %s after %.3f s"
                    % (status_text(vm.status), took))
            else:
                took = vm.wait_exit(10, read=False)
                expect_exit(vm, 0)
                log("powered off with a stuck reader: ended after %.2f s" % took)
        finally:
            vm.kill()
            os.close(r)


def t_output_slow_reader(ctx):
    """A reader that reads slowly gets every byte, in order."""
    vm = ctx.piped(ctx.bios("spew"))
    try:
        while vm.poll() is None or select.select([vm.out_fd], [], [], 0)[0]:
            time.sleep(0.02)
            r, _, _ = select.select([vm.out_fd], [], [], 0.2)
            if r:
                data = os.read(vm.out_fd, 16384)
                if not data:
                    break
                vm.buf += data
            if time.monotonic() - vm.started > 60:
                raise Fail("not done after 60 s")
        vm.wait_exit(5)
        expect_exit(vm, 0)
        want = spew_expected()
        if bytes(vm.buf) != want:
            n = next((i for i, (a, b) in enumerate(zip(vm.buf, want)) if a != b),
                     min(len(vm.buf), len(want)))
            raise Fail("got %d bytes of %d, first difference at byte %d"
                       % (len(vm.buf), len(want), n))
        log("all %d bytes arrived in order" % len(want))
    finally:
        vm.kill()


def t_no_raw_during_load(ctx):
    """A guest that fails to load: the terminal is never changed at all."""
    big = os.path.join(ctx.tmp, "big.initrd")
    with open(big, "wb") as f:
        f.truncate(24 << 20)                # more than 16 MiB of guest RAM
    p = Pty(packet=True)
    vm = Vm(ctx, ["--kernel", ctx.elf("sbi_random"), "--initrd", big, "--mem", "16M"],
            p.slave, p.slave, None)
    try:
        vm.wait_exit(20)
        expect_exit(vm, 1)
        # In packet mode every read returns one packet whose first byte is 0
        # for data, or TIOCPKT_* flags for a change of the terminal's flow
        # control (raw mode turns IXON off, restoring turns it back on).
        changes = []
        while select.select([p.master], [], [], 0.1)[0]:
            pkt = os.read(p.master, 4096)
            if not pkt:
                break
            if pkt[0] != 0:
                changes.append(pkt[0])
        if changes:
            raise Fail("the terminal's modes were changed although the guest never "
                       "started (TIOCPKT status %s)" % ", ".join(hex(c) for c in changes))
        p.check_restored()
        log("stderr: " + vm.stderr().strip())
    finally:
        vm.kill()
        p.close()


# Signals that end a process by default and can be caught, sent while the
# guest runs on a terminal. SIGINT/SIGTERM/SIGHUP are the monitor's quit
# requests (exit 128 + n); the others must kill it, after the terminal has
# been restored. (SIGPIPE is ignored by nimbus; SIGKILL/SIGSTOP cannot be
# caught.)
QUIT_SIGNALS = ["SIGHUP", "SIGINT", "SIGTERM"]
FATAL_SIGNALS = ["SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGUSR1",
                 "SIGSEGV", "SIGUSR2", "SIGALRM", "SIGSTKFLT", "SIGXCPU", "SIGXFSZ",
                 "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSYS"]


def t_signal(ctx, signame):
    sig = getattr(signal, signame)
    p, vm = on_pty(ctx, ctx.bios("idle"))
    try:
        vm.wait_for(b"idle ready", 20)
        if not p.is_raw():
            raise Fail("terminal not raw while the guest runs")
        os.kill(vm.pid, sig)
        took = vm.wait_exit(QUIT_WITHIN)
        if signame in QUIT_SIGNALS:
            expect_exit(vm, 128 + sig)
        elif not (os.WIFSIGNALED(vm.status) and os.WTERMSIG(vm.status) == sig):
            raise Fail("expected death by %s, got %s; stderr: %s"
                       % (signame, status_text(vm.status), vm.stderr()[-300:]))
        p.check_restored()
        log("%s: %s after %.3f s, terminal restored" % (signame, status_text(vm.status), took))
    finally:
        vm.kill()
        p.close()


TESTS = {
    "mmio_sweep": t_mmio_sweep,
    "timer_extremes": t_timer_extremes,
    "storm": t_storm,
    "storm_ctrl_a_x": t_storm_ctrl_a_x,
    "reset_storm": t_reset_storm,
    "reset_storm_ctrl_a_x": t_reset_storm_ctrl_a_x,
    "sbi_random": t_sbi_random,
    "output_blocked_pipe": t_output_blocked_pipe,
    "output_blocked_pty": t_output_blocked_pty,
    "output_slow_reader": t_output_slow_reader,
    "output_stuck_at_exit": t_output_stuck_at_exit,
    "no_raw_during_load": t_no_raw_during_load,
}
for _s in QUIT_SIGNALS + FATAL_SIGNALS:
    TESTS["signal_" + _s[3:]] = (lambda s: lambda ctx: t_signal(ctx, s))(_s)
TESTS["reset_storm_short"] = t_reset_storm_asan

# Under the sanitizers (slower; ASan owns SIGSEGV/SIGBUS/SIGFPE): a subset.
ASAN_TESTS = ["mmio_sweep", "timer_extremes", "storm", "reset_storm_short", "sbi_random",
              "output_blocked_pipe", "output_blocked_pty", "output_slow_reader",
              "output_stuck_at_exit", "no_raw_during_load",
              "signal_TERM", "signal_QUIT", "signal_USR1", "signal_ABRT"]
ALL_TESTS = [n for n in TESTS if n != "reset_storm_short"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", choices=["all", "asan"])
    ap.add_argument("--nimbus", default="build/nimbus")
    ap.add_argument("--elf-dir", default="build/hostile")
    ap.add_argument("test", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(ALL_TESTS if a.list == "all" else ASAN_TESTS))
        return 0
    if a.test not in TESTS:
        ap.error("unknown test %r (see --list all)" % a.test)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    with tempfile.TemporaryDirectory(prefix="nimbus-hostile-") as tmp:
        ctx = Ctx(os.path.abspath(a.nimbus), os.path.abspath(a.elf_dir), tmp)
        try:
            TESTS[a.test](ctx)
        except Fail as e:
            log("FAIL: %s" % e)
            return 1
    log("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
