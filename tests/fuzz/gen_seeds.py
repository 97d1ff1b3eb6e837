#!/usr/bin/env python3
"""Writes the seed corpora tests/fuzz/corpus/<name>/ and the hand-made
regression inputs tests/fuzz/regressions/<name>/ (both checked into git; run
again after changing an input format). Each seed is a small, valid input
that reaches the interesting code paths: tiny RISC-V ELFs and Linux Image
headers for `loader`, machine configurations for `fdt`, SBI call sequences
for `sbi`, instruction words for `decode`."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
RAM = 0x80000000


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- loader: selector byte + file (see fuzz_loader.c) ----

def elf(segments, entry, symbols=None):
    """segments: list of (paddr, bytes, memsz). symbols: {name: value} put
    in a .symtab with its .strtab (section headers at the end)."""
    phoff = 64
    off = phoff + 56 * len(segments)
    body = b""
    phdrs = b""
    for paddr, data, memsz in segments:
        while (off + len(body)) % 16:
            body += b"\0"
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, off + len(body), paddr, paddr, len(data),
                             memsz, 16)
        body += data
    shoff = 0
    shdrs = b""
    shnum = 0
    if symbols:
        strtab = b"\0"
        syms = b"\0" * 24
        for name, value in symbols.items():
            syms += struct.pack("<IBBHQQ", len(strtab), 0x11, 0, 1, value, 8)
            strtab += name.encode() + b"\0"
        while (off + len(body)) % 8:
            body += b"\0"
        sym_off = off + len(body)
        body += syms
        str_off = off + len(body)
        body += strtab
        while (off + len(body)) % 8:
            body += b"\0"
        shoff = off + len(body)
        shdrs = b"\0" * 64
        shdrs += struct.pack("<IIQQQQIIQQ", 0, 2, 0, 0, sym_off, len(syms), 2, 1, 8, 24)
        shdrs += struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0)
        shnum = 3
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 243, 1, entry, phoff, shoff, 0, 64, 56,
                             len(segments), 64, shnum, 0)
    return eh + phdrs + body + shdrs


def image(text_offset, image_size, magic2=True, payload=b"\x13\x00\x00\x00" * 4):
    hdr = bytearray(64)
    hdr[0:4] = b"\x6f\x00\x00\x04"          # j +64 over the header (code0)
    struct.pack_into("<QQ", hdr, 8, text_offset, image_size)
    struct.pack_into("<I", hdr, 0x2c, 2)      # header version 0.2
    if magic2:
        hdr[0x38:0x3c] = b"RSC\x05"
    else:
        hdr[0x30:0x38] = b"RISCV\0\0\0"
    return bytes(hdr) + payload


NOPS = b"\x13\x00\x00\x00" * 4
put("loader", "kernel_elf", b"\x00" + elf([(RAM + 0x200000, NOPS, 0x40)], RAM + 0x200000))
put("loader", "kernel_elf_two_segments", b"\x00" + elf(
    [(RAM + 0x200000, NOPS, 0x10), (RAM + 0x201000, b"\x01\x02", 0x2000)], RAM + 0x200004))
put("loader", "firmware_elf_htif", b"\x09" + elf(
    [(RAM, NOPS, 0x20), (RAM + 0x1000, b"", 0x10)], RAM,
    {"tohost": RAM + 0x1000, "fromhost": RAM + 0x1008}))
put("loader", "firmware_flat", b"\x01" + NOPS)
put("loader", "image_rsc", b"\x00" + image(0x200000, 0x1000))
put("loader", "image_riscv_magic", b"\x00" + image(0, 0x80, magic2=False))
put("loader", "image_at_load_addr", b"\x02" + image(0x400000, 0x2000))
put("loader", "image_unaligned_addr", b"\x04" + image(0, 0x40))


# ---- decode: 4-byte little-endian words (see fuzz_decode.c) ----

for name, word in [("addi", 0x00a00093), ("c_addi4spn", 0x0040), ("c_lwsp", 0x4082),
                   ("c_j", 0xa001), ("c_beqz", 0xc111), ("amoadd_d", 0x00b5352f),
                   ("csrrw", 0x34011173), ("fadd_d", 0x02b57553), ("sh1add", 0x20b52533),
                   ("c_addi16sp", 0x7139), ("c_ld", 0x6398), ("c_fsdsp", 0xa022)]:
    put("decode", name, struct.pack("<I", word))


# ---- sbi: header + 8-byte calls (see fuzz_sbi.c) ----

def sbi_call(hart, eid, fid, a0=0, a1=0, a2=0, extra=0):
    """One call record: hart, a7 (eid), a6 (fid), a0-a2, op byte."""
    return struct.pack("<BBIIQQQ", extra, hart, eid, fid, a0, a1, a2)


HSM, IPI, RFENCE, DBCN, BASE, SRST, TIME = 0x48534d, 0x735049, 0x52464e43, 0x4442434e, 0x10, \
    0x53525354, 0x54494d45
put("sbi", "base_probe", bytes([4]) + sbi_call(0, BASE, 0) + sbi_call(0, BASE, 3, HSM))
put("sbi", "hsm_start_ipi_fence", bytes([4]) + sbi_call(0, HSM, 0, 1, RAM + 0x1000, 7)
    + sbi_call(1, 0, 0, extra=1) + sbi_call(1, IPI, 0, 1, 0) + sbi_call(0, RFENCE, 0, 3, 0)
    + sbi_call(0, RFENCE, 1, 0, -1 & (2**64 - 1)) + sbi_call(1, HSM, 2, 0))
put("sbi", "dbcn", bytes([2]) + sbi_call(0, DBCN, 0, 5, RAM + 0x100)
    + sbi_call(0, DBCN, 1, 16, RAM + 0x200) + sbi_call(0, DBCN, 2, 0x41) + sbi_call(0, 1, 0, 0x42)
    + sbi_call(0, 2, 0))
put("sbi", "timer_reset_stop", bytes([3]) + sbi_call(0, TIME, 0, 12345)
    + sbi_call(0, SRST, 0, 0, 1) + sbi_call(0, HSM, 0, 2, RAM) + sbi_call(2, 0, 0, extra=1)
    + sbi_call(2, HSM, 1) + sbi_call(0, HSM, 3, 0))


# ---- fdt: configuration (see fuzz_fdt.c) ----

def fdt_cfg(harts, ram_mib, flags, initrd_pages, append):
    """harts - 1, RAM MiB - 16, flags, initrd pages - 1, command line."""
    return struct.pack("<BHBH", harts, ram_mib, flags, initrd_pages) + append


put("fdt", "one_hart", fdt_cfg(0, 0, 0, 0, b"console=ttyS0"))
put("fdt", "smp4_initrd_elf", fdt_cfg(3, 240, 1 | 8, 15, b"console=ttyS0 root=/dev/vda rw"))
put("fdt", "smp64_bios", fdt_cfg(63, 48, 2, 0, b""))
put("fdt", "bios_kernel_initrd_5g", fdt_cfg(7, 5104, 7 | 0x30, 255, b"quiet \x01\xff earlycon=sbi"))
put("fdt", "initrd_too_big", fdt_cfg(1, 0, 1, 4000, b"x"))
put("fdt", "no_append", fdt_cfg(1, 100, 0x80, 0, b""))
# A long command line of every non-NUL byte value on the most harts: the
# fuzzer grows inputs slowly at this target's rate, so start it long.
put("fdt", "long_append_smp64", fdt_cfg(63, 1000, 0, 0, bytes(range(1, 256)) * 12))


# ---- regressions: minimal inputs for the bugs in tests/fuzz/known-bugs ----

def regression(target, name, data):
    d = os.path.join(os.path.dirname(ROOT), "regressions", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# hart 0 starts hart 1 at 0x80001000; a second hart_start(1, 0x80002000)
# fails (ALREADY_AVAILABLE) but hart 1 then starts at 0x80002000.
regression("sbi", "sbi-hsm-start-clobber", bytes([1])
           + sbi_call(0, HSM, 0, 1, RAM + 0x1000, 1) + sbi_call(0, HSM, 0, 1, RAM + 0x2000, 2)
           + sbi_call(1, 0, 0, extra=1))
# DBCN function 3 (none) with a2 != 0: SBI_ERR_INVALID_PARAM, not NOT_SUPPORTED.
regression("sbi", "sbi-dbcn-unknown-fid", bytes([0]) + sbi_call(0, DBCN, 3, 0, 0, 1))

sys.exit(0)
