#!/usr/bin/env python3
"""Writes the seed corpora tests/fuzz/corpus/<name>/ and the hand-made
regression inputs tests/fuzz/regressions/<name>/ (both checked into git; run
again after changing an input format). Each seed is a small, valid input
that reaches the interesting code paths: tiny RISC-V ELFs and Linux Image
headers for `loader`, machine configurations for `fdt`, SBI call sequences
for `sbi`, instruction words for `decode`, program choices for
`jit_diff`."""
import os
import random
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


# ---- virtqueue: ring layout + operations + RAM (see fuzz_virtqueue.c) ----

def vq_desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def vq_input(sel, flags, ops, descs, avail, data, offs=(0x0, 0x1000, 0x2000)):
    """sel: queue size selector; ops: (kind, param) pairs; descs: the
    descriptor table's bytes; avail: (flags, idx, [heads], used_event)."""
    num = 1 << (sel % 9)
    table = b"".join(descs).ljust(16 * num, b"\0")
    fl, idx, heads, ev = avail
    ring = struct.pack("<HH", fl, idx) + b"".join(struct.pack("<H", h) for h in heads)
    ring = ring.ljust(4 + 2 * num, b"\0") + struct.pack("<H", ev)
    return (struct.pack("<BBHHHB", sel, flags, *offs, len(ops))
            + b"".join(bytes(op) for op in ops) + table + ring + data)


VQ_RAM, VQ_DATA = 0x10000, 0x18000
POP, PUSH, PUSHN, UNPOP, HAS, IDX, EVT, ENT = range(8)
put("virtqueue", "direct_chains", vq_input(4, 0, [(HAS, 0), (POP, 1), (POP, 2), (PUSH, 1),
                                                  (POP, 3), (PUSHN, 1), (HAS, 0)],
    [vq_desc(VQ_DATA, 16, 1, 1), vq_desc(VQ_DATA + 16, 512, 3, 2), vq_desc(VQ_DATA + 528, 1, 2),
     vq_desc(VQ_DATA + 600, 64, 0), vq_desc(VQ_DATA + 700, 32, 2)],
    (0, 3, [0, 3, 4], 0), b"request header!!" + bytes(range(64))))
put("virtqueue", "indirect_event_idx", vq_input(3, 3, [(POP, 5), (PUSH, 1), (POP, 0), (IDX, 1),
                                                       (POP, 0), (EVT, 17), (PUSH, 1)],
    [vq_desc(VQ_DATA + 0x100, 48, 4), vq_desc(VQ_DATA, 8, 2)],
    (0, 2, [0, 1], 1),
    bytes(0x100) + vq_desc(VQ_DATA, 16, 1, 1) + vq_desc(VQ_DATA + 16, 100, 3, 2)
    + vq_desc(VQ_DATA + 200, 1, 2)))
put("virtqueue", "loop_and_unpop", vq_input(2, 0, [(POP, 0), (UNPOP, 1), (POP, 0), (POP, 0),
                                                   (HAS, 0), (PUSH, 0)],
    [vq_desc(VQ_DATA, 4, 1, 1), vq_desc(VQ_DATA, 4, 1, 0)],
    (0, 2, [0, 1], 0), b"abcd"))
put("virtqueue", "hostile_layouts", vq_input(4, 2, [(POP, 0), (ENT, 3), (IDX, 0xff), (POP, 0)],
    [vq_desc(VQ_RAM + 0x10000 - 8, 16, 0), vq_desc(VQ_DATA, 16, 6), vq_desc(2**64 - 4, 8, 2)],
    (0, 1, [1], 0), b""))


# ---- virtio devices: fuzz_virtio.h's hostile driver ----

def fv_setup(nq, flags=0, features=2**64 - 1, sizes=None):
    sizes = sizes if sizes is not None else [4] * nq
    return struct.pack("<BQ", flags, features) + bytes(sizes)


def fv_buf(length, content=b"", write=False, where=0, zero=False):
    fl = (1 if write else 0) | (2 if zero else 0) | (where << 2)
    content = content[:min(length, 255)]   # the rest of the buffer keeps what RAM held
    return struct.pack("<BHB", fl, length, len(content)) + content


def fv_chain(q, bufs, indirect=False, notify=True, hostile=0, variant=0):
    n = len(bufs)
    nsel = n - 1 if n <= 8 else 0xf8 | ((n - 9) // 16)
    mode = (1 if indirect else 0) | (0 if notify else 2) | (hostile << 2) | (variant << 5)
    return bytes([0, q, nsel, mode]) + b"".join(bufs)


def fv_notify(q):
    return bytes([1, q])


def fv_host(payload):
    return bytes([9]) + payload


def blk_chain(q, t, sector, out=None, in_len=0, indirect=False):
    bufs = [fv_buf(16, struct.pack("<IIQ", t, 0, sector))]
    if out is not None:
        bufs.append(fv_buf(len(out) if len(out) > 255 else len(out), out[:255]))
    if in_len:
        bufs.append(fv_buf(in_len, write=True))
    bufs.append(fv_buf(1, write=True))
    return fv_chain(q, bufs, indirect=indirect)


def blk(opts, cap, nq, ops, setup_flags=0):
    return bytes([opts | ((nq - 1) << 1), cap]) + fv_setup(nq, setup_flags) + b"".join(ops)


SECT = bytes(range(256)) * 2
put("virtio_blk", "write_read", blk(0, 15, 1, [blk_chain(0, 1, 2, SECT), blk_chain(0, 0, 2, in_len=512),
                                               blk_chain(0, 0, 0, in_len=1024)]))
put("virtio_blk", "flush_get_id", blk(0, 7, 1, [blk_chain(0, 4, 0), blk_chain(0, 8, 0, in_len=20),
                                                blk_chain(0, 8, 0, in_len=7)]))
put("virtio_blk", "discard_write_zeroes", blk(0, 63, 2, [
    blk_chain(0, 1, 8, SECT * 2),
    blk_chain(1, 11, 0, struct.pack("<QII", 8, 1, 0) + struct.pack("<QII", 20, 4, 0)),
    blk_chain(1, 13, 0, struct.pack("<QII", 9, 2, 1)),
    blk_chain(0, 13, 0, struct.pack("<QII", 30, 1, 0)),
    blk_chain(0, 0, 8, in_len=2048)]))
put("virtio_blk", "indirect_multiqueue", blk(0, 31, 4, [
    blk_chain(3, 1, 30, SECT, indirect=True), blk_chain(2, 0, 30, in_len=1024, indirect=True),
    blk_chain(1, 99, 0)]))
put("virtio_blk", "readonly_errors", blk(1 | 8, 3, 1, [
    blk_chain(0, 1, 0, SECT), blk_chain(0, 0, 3, in_len=1024), blk_chain(0, 0, 0, in_len=100),
    blk_chain(0, 11, 0, struct.pack("<QII", 0, 1, 0))]))
put("virtio_blk", "hostile_chains", blk(0, 15, 1, [
    fv_chain(0, [fv_buf(16, struct.pack("<IIQ", 0, 0, 0)), fv_buf(512, write=True),
                 fv_buf(1, write=True)], hostile=1),
    bytes([2]) + fv_setup(1),
    fv_chain(0, [fv_buf(16), fv_buf(1, write=True, where=2)]),
    bytes([2]) + fv_setup(1),
    fv_chain(0, [fv_buf(8, b"short"), fv_buf(1, write=True)]),
    bytes([2]) + fv_setup(1, flags=4, sizes=[0xf3])]))


def net_hdr(flags=0, gso=0, hdr_len=0, gso_size=0, start=0, off=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, start, off, 0)


ETH = bytes.fromhex("525400123456") + bytes.fromhex("525400abcdef") + b"\x08\x00"
IP_UDP = (bytes.fromhex("4500002e000040004011") + b"\0\0" + bytes([10, 0, 2, 15, 10, 0, 2, 2])
          + struct.pack(">HHHH", 1234, 53, 26, 0x1234) + b"hello, udp world!!")


def net_tx(q, hdr, frame, indirect=False, split=False):
    if split:
        bufs = [fv_buf(len(hdr), hdr), fv_buf(len(frame), frame)]
    else:
        bufs = [fv_buf(len(hdr + frame), hdr + frame)]
    return fv_chain(q, bufs, indirect=indirect)


def net_rxbufs(n, size, indirect=False):
    return b"".join(fv_chain(0, [fv_buf(size, write=True)], indirect=indirect) for _ in range(n))


def net_frame(length, content=b""):
    content = content[:255]
    return fv_host(struct.pack("<BHB", 0, length, len(content)) + content)


NO_MRG = (2**64 - 1) & ~(1 << 15)
put("virtio_net", "tx_rx_mergeable", bytes([0]) + fv_setup(2, sizes=[4, 4]) + net_rxbufs(3, 256)
    + net_tx(1, net_hdr(), ETH + IP_UDP) + net_frame(600, ETH + IP_UDP)
    + net_frame(60, ETH) + net_tx(1, net_hdr(1, start=34, off=6), ETH + IP_UDP, split=True))
put("virtio_net", "tx_rx_plain", bytes([0]) + fv_setup(2, features=NO_MRG) + net_rxbufs(2, 1526)
    + net_frame(1514, ETH) + net_frame(100, ETH + IP_UDP) + net_rxbufs(1, 40)
    + net_frame(100, ETH) + net_tx(1, net_hdr(), ETH + b"x" * 50, indirect=True))
put("virtio_net", "vnet_tso", bytes([1]) + fv_setup(2) + net_rxbufs(2, 2048, indirect=True)
    + net_tx(1, net_hdr(1, 1, 54, 1448, 34, 16), ETH + IP_UDP + b"y" * 100)
    + net_frame(80, net_hdr() + ETH) + net_tx(1, net_hdr(0, 3), ETH)
    + net_tx(1, net_hdr(), ETH + b"z" * 2000))
put("virtio_net", "hostile", bytes([2]) + fv_setup(2) + net_rxbufs(1, 8)
    + net_frame(300, ETH) + fv_chain(1, [fv_buf(12, net_hdr()), fv_buf(14, ETH, write=True),
                                         fv_buf(20, ETH)])
    + fv_chain(0, [fv_buf(100, write=True), fv_buf(4, write=True, where=2)])
    + net_tx(1, net_hdr(), ETH) + bytes([8, 1, 0]))


def dev(sel, opts, nq, ops, features=2**64 - 1, sizes=None):
    return bytes([sel, opts]) + fv_setup(nq, features=features, sizes=sizes) + b"".join(ops)


def typed(data):
    return fv_host(bytes([len(data)]) + data)


put("virtio_dev", "console_io", dev(0, 0, 2, [
    fv_chain(1, [fv_buf(6, b"hello\n")]), typed(b"early "), fv_chain(0, [fv_buf(4, write=True)]),
    fv_chain(0, [fv_buf(64, write=True)]), typed(b"ls -l\n"),
    fv_chain(1, [fv_buf(3, b"abc"), fv_buf(2, b"de"), fv_buf(5, write=True)], indirect=True)]))
put("virtio_dev", "console_flood", dev(0, 0, 2, [
    fv_host(b"\xff"), fv_chain(0, [fv_buf(4000, write=True)]), fv_chain(0, [fv_buf(1000, write=True)]),
    bytes([4, 0]), bytes([2]) + fv_setup(2), fv_chain(0, [fv_buf(200, write=True)], indirect=True)]))

VS_CID = 3


def vs_pkt(op, src_port, dst_port, payload=b"", flags=0, fwd_cnt=0, cid=VS_CID):
    return struct.pack("<QQIIIHHIII", cid, 2, src_port, dst_port, len(payload), 1, op, flags,
                       65536, fwd_cnt) + payload


def vs_tx(pkt, indirect=False):
    return fv_chain(1, [fv_buf(len(pkt), pkt)], indirect=indirect)


def vs_rx(n, size=44 + 4096):
    return b"".join(fv_chain(0, [fv_buf(size, write=True)]) for _ in range(n))


def vs_host(kind, arg, data=b""):
    return fv_host(bytes([kind, arg, len(data)]) + data)


REQ, RESP, RST, SHUT, RW, CUPD, CREQ = 1, 2, 3, 4, 5, 6, 7
put("virtio_dev", "vsock_guest_connect", dev(1, VS_CID - 3, 3, [
    vs_rx(4), fv_chain(2, [fv_buf(8, write=True)]),
    vs_tx(vs_pkt(REQ, 5000, 1024)), vs_tx(vs_pkt(RW, 5000, 1024, b"hello host")),
    vs_host(0, 0, b"hello guest"), vs_host(3, 7), vs_rx(2),
    vs_tx(vs_pkt(CREQ, 5000, 1024)), vs_tx(vs_pkt(CUPD, 5000, 1024, fwd_cnt=11)),
    vs_host(2, 0), vs_tx(vs_pkt(SHUT, 5000, 1024, flags=3)), vs_host(3, 5), vs_rx(2),
    vs_tx(vs_pkt(REQ, 5001, 999)), vs_tx(vs_pkt(RW, 5002, 1025, b"no such connection"))]))
put("virtio_dev", "vsock_host_connect", dev(1, 4, 3, [
    vs_rx(3, 44 + 64), vs_host(1, 2 * 24 + 1), vs_host(3, 7),
    vs_tx(vs_pkt(RESP, 1024, 0x40000000, cid=7)), vs_host(3, 3),
    vs_tx(vs_pkt(RW, 1024, 0x40000000, b"from the guest", cid=7)), vs_host(2, 0),
    vs_host(2, 0x40), vs_host(3, 5), vs_rx(2), bytes([4, 0]), bytes([2]) + fv_setup(3),
    fv_chain(2, [fv_buf(4, write=True)]), vs_rx(1, 20)]))


def pfns(*p):
    return struct.pack("<%dI" % len(p), *p)


DATA_PFN = (0x80000000 + 0x30000) >> 12
put("virtio_dev", "balloon_inflate_deflate", dev(2, 0, 3, [
    fv_chain(0, [fv_buf(24, pfns(DATA_PFN + 40, DATA_PFN + 41, DATA_PFN + 42, 0x10, 0xffffffff,
                                 DATA_PFN + 100))]),
    fv_chain(1, [fv_buf(8, pfns(DATA_PFN + 40, DATA_PFN + 41))]),
    fv_chain(2, [fv_buf(20, struct.pack("<HQHQ", 4, 1 << 30, 5, 2 << 30))]),
    fv_host(bytes([1, 0, 0, 0, 0])), fv_chain(2, [fv_buf(10, struct.pack("<HQ", 6, 12345))]),
    fv_host(bytes([0, 0, 1, 0, 0])), bytes([5, 4, 2, 1]) + struct.pack("<Q", 256),
    fv_host(bytes([2, 0, 0, 0, 0]))]))
put("virtio_dev", "balloon_reporting", dev(2, 3, 4, [
    fv_chain(3, [fv_buf(8192, write=True)]), fv_chain(3, [fv_buf(4096, write=True),
                                                          fv_buf(100, write=True)], indirect=True),
    fv_chain(0, [fv_buf(7, pfns(DATA_PFN + 60) + b"\x01\x02\x03")]),
    fv_chain(2, [fv_buf(10, struct.pack("<HQ", 4, 7))]), fv_host(bytes([1, 0, 0, 0, 0]))]))
put("virtio_dev", "balloon_reporting_no_stats", dev(2, 2, 4, [
    fv_chain(2, [fv_buf(12288, write=True)]), fv_chain(2, [fv_buf(5000, b"free")]),
    fv_chain(1, [fv_buf(4, pfns(DATA_PFN + 3))]), fv_host(bytes([1, 0, 0, 0, 0])),
    fv_chain(3, [fv_buf(10, write=True)])], features=(2**64 - 1) & ~2))


# ---- jit_diff: u64 seed, u8 flags, u24 page layout, choice bytes (see fuzz_jit_diff.c) ----

def jit_diff(seed, flags, layout=(0, 0, 0, 0, 1, 2, 3, 4), choices=512):
    bits = sum(kind << (3 * page) for page, kind in enumerate(layout))
    rng = random.Random(seed)
    return struct.pack("<QB", seed, flags) + bits.to_bytes(3, "little") + rng.randbytes(choices)


put("jit_diff", "mixed", jit_diff(1, 0x00))
put("jit_diff", "straight", jit_diff(2, 0x01))
put("jit_diff", "straight_native", jit_diff(3, 0x03))
put("jit_diff", "native_threshold_1", jit_diff(4, 0x12))
put("jit_diff", "fs_off", jit_diff(5, 0x04))
put("jit_diff", "small_cache", jit_diff(6, 0x08))
put("jit_diff", "threshold_3", jit_diff(7, 0x20))
put("jit_diff", "threshold_50", jit_diff(8, 0x30, choices=64))
# RW, RO, not accessed, execute-only, RWX, hole, not dirty, unmapped
put("jit_diff", "layout", jit_diff(9, 0x40, (0, 1, 5, 6, 7, 3, 4, 2)))


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

# The balloon kept its statistics buffer across a stop and restart of the
# statistics queue (QueueReady 0, then 1 on fresh rings) and, asked for
# statistics, pushed the old ring's head into the new used ring.
regression("virtio_dev", "balloon-stale-stats-elem", dev(2, 0, 3, [
    fv_chain(2, [fv_buf(10, struct.pack("<HQ", 4, 1))]), bytes([3, 2]),
    fv_host(bytes([1, 0, 0, 0, 0]))]))

# A unit of 33 one-instruction blocks (not-taken bne x0, x0; straight
# rounds) needed 65 side exits (a budget check at each block start, a taken
# exit at each branch) in a table of 48: the translator wrote past it on the
# host stack.
regression("jit_diff", "jit-side-exit-overflow", jit_diff(0, 0x01, choices=0)[:12]
           + bytes([0, 0, 0, 1, 76, 13]) * 40)

sys.exit(0)
